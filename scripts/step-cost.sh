#!/usr/bin/env bash
# Instructions per 4-player simulation step (and state hash), counted by callgrind: a number
# that does not move with the machine's load (see docs/benchmarks.md).
# Usage: scripts/step-cost.sh [STEPS]   (default 100000)
#
# It runs `step_cost` for STEPS and for 2 × STEPS iterations and divides the difference of
# the program's instruction totals by STEPS: the setup cancels out, and nothing depends on
# what the compiler inlined. It also prints callgrind's inclusive count of
# `MatchState::step` itself (excluding the hash and the loop).
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${1:-100000}"
cargo build --release -q -p pong-bench --bin step_cost
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
total() {
    valgrind --tool=callgrind --callgrind-out-file="$out/cg.$1" target/release/step_cost "$1" \
        >/dev/null 2>"$out/valgrind.log"
    callgrind_annotate --inclusive=yes "$out/cg.$1" >"$out/annotate.$1" 2>/dev/null
    grep 'PROGRAM TOTALS' "$out/annotate.$1" | awk '{gsub(",", "", $1); print $1}'
}
one="$(total "$steps")"
two="$(total "$((2 * steps))")"
echo "step + hash + loop, 4 players mid-rally: $(((two - one) / steps)) instructions per iteration"
ir="$(grep -F 'pong_domain::sim::MatchState::step ' "$out/annotate.$steps" | head -1 \
    | awk '{gsub(",", "", $1); print $1}')"
[ -n "$ir" ] && echo "MatchState::step alone (inclusive): $((ir / steps)) instructions per call"
