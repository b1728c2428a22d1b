#!/usr/bin/env bash
# Runs the fuzz targets in fuzz/ (cargo-fuzz, libFuzzer, the nightly toolchain) for a
# bounded time each, starting from the committed seeds (fuzz/seeds/, written by
# `cargo run --manifest-path fuzz/Cargo.toml --bin seed_corpus`) and a working corpus in
# fuzz/corpus/ that grows between runs. Prints one line per target: executions, coverage,
# corpus size, time. Exits non-zero if a target crashes; the input is then in
# fuzz/artifacts/<target>/ (reproduce: cargo +nightly fuzz run <target> <file>).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     # default: 30 s each, every target
#
# docs/testing.md records the long runs.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-30}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(decode_client decode_server zmq_guard http_sniff client_core server_core)
fi
cargo +nightly fuzz build >/dev/null
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    # Inputs stay small: the client core's records and the server's op lists mutate faster.
    max_len=4096
    [ "$t" = client_core ] && max_len=2048
    log=$(mktemp)
    if ! cargo +nightly fuzz run "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$seconds" -max_len="$max_len" -print_final_stats=1 >"$log" 2>&1; then
        tail -40 "$log"
        echo "fuzz: $t CRASHED (input in fuzz/artifacts/$t/)" >&2
        exit 1
    fi
    runs=$(grep -oE '^Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' || echo '?')
    cov=$(grep -E 'DONE' "$log" | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9a-zA-Z]+' | tail -1)
    echo "fuzz: $t: $runs runs in ${seconds}s, $cov"
    rm -f "$log"
done
