#!/usr/bin/env bash
# Takes a screenshot of a running 4-player game: the real window under Xvfb, rendered by
# Mesa's software Vulkan driver (llvmpipe), `pong play --local --bots 3`.
#
#   scripts/screenshot.sh [OUT.png] [SECONDS] [EXTRA PONG PLAY OPTIONS...]
#
# OUT defaults to docs/screenshot.png, SECONDS (how long the game runs before the picture)
# to 9. Installs Xvfb and Mesa's Vulkan drivers with apt-get if they are missing (Debian;
# needs root). Set PONG_BIN to use an already built binary instead of a release build.
# A window that fails to start can still exit 0, so success is judged by the PNG alone.
set -euo pipefail

cd "$(dirname "$0")/.."
out="${1:-docs/screenshot.png}"
secs="${2:-9}"
shift $(( $# < 2 ? $# : 2 ))
# e.g. --net-overlay: docs/screenshot-overlay.png is `scripts/screenshot.sh
# docs/screenshot-overlay.png 9 --net-overlay`.

missing=()
command -v xvfb-run >/dev/null || missing+=(xvfb xauth)
compgen -G "/usr/share/vulkan/icd.d/lvp_icd*.json" >/dev/null || missing+=(mesa-vulkan-drivers)
ldconfig -p | grep -q 'libvulkan.so.1' || missing+=(libvulkan1)
for lib in libxkbcommon-x11.so.0:libxkbcommon-x11-0 libXcursor.so.1:libxcursor1 \
           libXi.so.6:libxi6 libXrandr.so.2:libxrandr2; do
    ldconfig -p | grep -q "${lib%%:*}" || missing+=("${lib##*:}")
done
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

bin="${PONG_BIN:-}"
if [[ -z "$bin" ]]; then
    cargo build --release -p pong
    bin="target/release/pong"
fi

mkdir -p "$(dirname "$out")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
shot="$tmp/shot.png"

# Software rendering: no GPU needed, Vulkan through llvmpipe (wgpu's GL backend does not
# work under Xvfb here).
export WGPU_BACKEND="${WGPU_BACKEND:-vulkan}"
export RUST_LOG="${RUST_LOG:-info,wgpu_core=warn,wgpu_hal=warn,naga=warn}"
status=0
timeout $((secs + 60)) xvfb-run -a -s "-screen 0 1280x800x24" \
    "$bin" play --local --bots 3 --name Ada --screenshot "$shot" --exit-after "$secs" "$@" || status=$?

if [[ ! -s "$shot" ]] || [[ "$(head -c 8 "$shot" | od -An -tx1 | tr -d ' \n')" != "89504e470d0a1a0a" ]]; then
    echo "no screenshot was taken (pong exited with $status)" >&2
    exit 1
fi
mv "$shot" "$out"
echo "screenshot saved to $out ($(stat -c %s "$out") bytes)"
