#!/usr/bin/env bash
# Does a server keep working, or keep memory, for matches and links that are gone?
# Starts `pong server` (2 players, 1 life, 1000 ticks a second), measures its CPU over 10 idle
# seconds, plays BLOCKS blocks of 100 matches of `pong bot`s (10 rooms at a time), prints its
# resident memory and CPU after each block, and its idle CPU once more at the end.
#
#   scripts/idle-after-churn.sh [BLOCKS=4] [PONG=target/release/pong]
set -euo pipefail
cd "$(dirname "$0")/.."
blocks=${1:-4}
pong=${2:-target/release/pong}
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$pong" server --listen "127.0.0.1:$port" --players 2 --lives 1 --tick-hz 1000 --countdown-ms 100 \
    --max-links-per-address 100000 --matches-per-minute-per-address 100000 \
    >/tmp/idle-after-churn-server.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null' EXIT
sleep 2
cpu() { awk '{ print $14 + $15 }' "/proc/$server/stat"; }
rss() { awk '/VmRSS/ { print $2 }' "/proc/$server/status"; }
idle() {
    local a b
    a=$(cpu); sleep 10; b=$(cpu)
    echo "idle CPU over 10 s: $((b - a)) ticks of 1/100 s; threads $(ls "/proc/$server/task" | wc -l); RSS $(rss) kB"
}
idle
for block in $(seq 1 "$blocks"); do
    for round in $(seq 1 10); do
        bots=()
        for i in $(seq 1 10); do
            "$pong" bot --server "ws://127.0.0.1:$port" --count 2 --players 2 \
                --room "r$block-$round-$i" --skill 0.1 >/dev/null 2>&1 &
            bots+=($!)
        done
        wait "${bots[@]}"
    done
    sleep 3
    echo "after $((block * 100)) matches: RSS $(rss) kB, CPU so far $(cpu) ticks"
done
sleep 12
idle
echo "matches over: $(grep -c 'match over' /tmp/idle-after-churn-server.log)"
