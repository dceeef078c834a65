#!/bin/sh
# The README's second command: install what is missing, build, and run the
# whole test suite twice, plainly and under AddressSanitizer +
# UndefinedBehaviorSanitizer. Ends with "N passed, N failed".
set -eu
cd "$(dirname "$0")/.."

./scripts/install-deps.sh

suite() {
        dir=$1
        shift
        if [ ! -f "$dir/build.ninja" ]; then
                meson setup "$dir" "$@" >/dev/null
        fi
        meson configure "$dir" -Dwerror=true "$@"
        ninja -C "$dir"
        echo "== tests in $dir"
        # Failures are counted below, from the TAP records, not here.
        meson test -C "$dir" --print-errorlogs --num-processes 2 || true
}

suite build
suite build-asan -Db_sanitize=address,undefined -Db_lundef=false

exec python3 scripts/count-tests.py build build-asan
