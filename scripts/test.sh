#!/bin/sh
# The README's second command: install what is missing, build, and run the
# whole test suite twice, plainly and under AddressSanitizer +
# UndefinedBehaviorSanitizer. Ends with "N passed, N failed".
set -eu
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
# Real MMKV for the interop test (tests/test-mmkv.sh). Without it (no
# network) that test still runs, and skips what needs MMKV.
./scripts/fetch-mmkv.sh build-mmkv || echo "test.sh: MMKV could not be fetched: the MMKV interop test will skip" >&2

suite() {
        dir=$1
        shift
        if [ ! -f "$dir/build.ninja" ]; then
                meson setup "$dir" "$@" >/dev/null
        fi
        # meson 1.0's configure refuses an option that the build directory
        # was set up without (mmkv_dir in an old one): --reconfigure reads
        # meson_options.txt anew.
        meson configure "$dir" -Dwerror=true "$@" 2>/dev/null ||
                meson setup --reconfigure "$dir" -Dwerror=true "$@" >/dev/null
        ninja -C "$dir"
        echo "== tests in $dir"
        # Failures are counted below, from the TAP records, not here.
        meson test -C "$dir" --print-errorlogs --num-processes 2 || true
}

suite build -Dmmkv_dir="$PWD/build-mmkv"
suite build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dmmkv_dir="$PWD/build-mmkv"

exec python3 scripts/count-tests.py build build-asan
