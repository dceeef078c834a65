#!/bin/sh
# The README's first command: install what is missing, build, run the demo.
set -eu
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
exec ./build/examples/ashm-demo
