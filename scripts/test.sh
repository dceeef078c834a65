#!/bin/sh
# The README's second command: install what is missing, build, and run the
# whole test suite twice, plainly and under AddressSanitizer +
# UndefinedBehaviorSanitizer, and the threaded channel cases under
# ThreadSanitizer. Ends with "N passed, N failed".
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

# The threaded cases once more, under ThreadSanitizer: only the program
# that runs channel endpoints, their watcher and fd threads against each
# other in one process (tests/chan-threads.c); Criterion cannot start
# under TSan, so the rest of the suite does not run here.
tsan=build-tsan
if [ ! -f "$tsan/build.ninja" ]; then
        meson setup "$tsan" -Db_sanitize=thread -Db_lundef=false >/dev/null
fi
ninja -C "$tsan" tests/chan-threads
echo "== tests in $tsan (ThreadSanitizer)"
meson test -C "$tsan" --no-rebuild --print-errorlogs chan-threads || true

exec python3 scripts/count-tests.py build build-asan "$tsan"
