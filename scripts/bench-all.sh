#!/usr/bin/env bash
# Runs every measurement of docs/benchmarks.md, one after the other, each output saved to
# OUTDIR (default target/bench-results/DATE). Before each step it waits (up to WAIT_MAX
# seconds, default 900) for the 1-minute load average to fall below MAX_LOAD (default 0.5)
# and notes the load it started at: numbers taken while other work runs are noise.
# Usage: scripts/bench-all.sh [OUTDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/bench-results/$(date +%Y-%m-%dT%H%M)}"
max_load="${MAX_LOAD:-0.5}"
wait_max="${WAIT_MAX:-900}"
mkdir -p "$out"
cargo build --release -q -p pong-bench --bins
cargo bench -q --no-run -p pong-domain -p pong-bench 2>/dev/null

quiet() {
    local waited=0
    while awk -v m="$max_load" '{ exit !($1 >= m) }' /proc/loadavg && [ "$waited" -lt "$wait_max" ]; do
        sleep 15
        waited=$((waited + 15))
    done
}

step() {
    local name="$1"
    shift
    quiet
    {
        echo "\$ $*"
        echo "# $(date -Iseconds), load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
        "$@" 2>&1 | grep -v -E 'WARN|^\s*$' || true
        echo "# finished $(date -Iseconds), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    } >"$out/$name.txt"
    echo "$name done ($out/$name.txt)"
}

step domain cargo bench -p pong-domain --bench domain
step step-cost scripts/step-cost.sh
step wire-sizes cargo test -q -p pong-domain --test wire_sizes -- --nocapture
step server-core cargo bench -p pong-bench --bench server
step rtt target/release/rtt
step input-latency target/release/input_latency
step loadtest-light target/release/loadtest --sweep 1,10,100,1000,2000,2500,3000,4000
step loadtest-full target/release/loadtest --clients full --sweep 10,50,100,200,400
step loadtest-ws target/release/loadtest --transport ws --sweep 1,10,100,500,1000
step alloc-profile target/release/alloc_profile
step alloc-test cargo test -q -p pong-bench --test alloc_per_tick
step profile scripts/loadtest-profile.sh 2500
