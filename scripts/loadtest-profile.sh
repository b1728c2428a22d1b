#!/usr/bin/env bash
# Where the CPU goes at capacity: runs the load tool at MATCHES running 4-player matches
# (default 2500) under `perf record` (sampling, no call graphs) and prints the hottest
# symbols of the server thread and of the load generator's threads (see docs/benchmarks.md).
# Usage: scripts/loadtest-profile.sh [MATCHES] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
matches="${1:-2500}"
seconds="${2:-10}"
cargo build --release -q -p pong-bench --bin loadtest
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
perf record -q -F 499 -o "$out/perf.data" -- \
    target/release/loadtest --matches "$matches" --seconds "$seconds" --warmup 3 >"$out/report.txt" 2>/dev/null
tail -1 "$out/report.txt"
echo
echo "== samples by thread =="
perf report -q -i "$out/perf.data" --sort comm 2>/dev/null | grep -v '^$'
for who in server tokio-rt-worker; do
    echo
    echo "== thread '$who': share of its own samples, top 25 symbols =="
    perf report -q -i "$out/perf.data" --comm "$who" --percentage relative --sort dso,symbol \
        --percent-limit 0.7 2>/dev/null | grep -v '^$' | cut -c1-140 | sed 's/ *$//' | head -25
done
