#!/usr/bin/env bash
# Builds the browser frontend (app/web) into app/web/dist/, the files the `pong` binary
# embeds and serves (app/pong/src/web.rs). The output is committed, so building the game
# needs no WebAssembly tools; CI rebuilds it and fails if it differs from what is committed.
#
#   scripts/build-web.sh           rebuild app/web/dist/ (after changing app/web, the domain
#                                  or pong-presentation; then rebuild `pong` and commit both)
#   scripts/build-web.sh --check   build into a temporary directory; fail if dist/ is stale
#
# Needs the wasm32-unknown-unknown target and wasm-bindgen-cli at the version of the
# wasm-bindgen crate in Cargo.lock; both are installed when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

check=false
if [[ "${1:-}" == "--check" ]]; then check=true; fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    rustup target add wasm32-unknown-unknown
fi
version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
if ! wasm-bindgen --version 2>/dev/null | grep -qx "wasm-bindgen $version"; then
    # Its own lock file first; if a crate it pins is not on the registry this machine sees
    # (seen with webpki-roots), the newest compatible versions.
    cargo install wasm-bindgen-cli --version "=$version" --locked ||
        cargo install wasm-bindgen-cli --version "=$version"
fi

# Panic messages carry source paths: map them to fixed names, so the module is the same
# whoever builds it, wherever the repository and the cargo registry are.
cargo_home=${CARGO_HOME:-$HOME/.cargo}
export CARGO_ENCODED_RUSTFLAGS="--remap-path-prefix=$PWD=/pong"$'\x1f'"--remap-path-prefix=$cargo_home=/cargo"
cargo build -p pong-web --lib --target wasm32-unknown-unknown --profile web

out=app/web/dist
if $check; then out=$(mktemp -d); fi
mkdir -p "$out"
wasm-bindgen --target web --no-typescript --remove-name-section --remove-producers-section \
    --out-dir "$out" target/wasm32-unknown-unknown/web/pong_web.wasm
cp app/web/static/index.html "$out/index.html"

size=$(stat -c %s "$out/pong_web_bg.wasm")
echo "pong_web_bg.wasm: $size bytes ($(gzip -9c "$out/pong_web_bg.wasm" | wc -c) gzipped)"
if $check; then
    if ! diff -r "$out" app/web/dist; then
        echo "app/web/dist is stale: run scripts/build-web.sh and commit the result" >&2
        exit 1
    fi
    rm -rf "$out"
    echo "app/web/dist is what the source builds"
fi
