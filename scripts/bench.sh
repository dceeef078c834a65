#!/bin/sh
# SPDX-License-Identifier: MIT
# Build ashm in release mode and run both benchmarks, printing everything.
#
#   ./scripts/bench.sh [BENCH FLAGS...]
#
# BUILD_DIR   the build directory (default: build-bench, next to this
#             script's repository); created with --buildtype=release
#             -Db_ndebug=true if missing, switched to them if not.
# Flags such as --rounds N, --iters K, --quick or --strict go to both
# benchmarks; with --strict the script fails when a target is missed.
# BENCH_REGION_FLAGS (e.g. --touch) and BENCH_FDPASS_FLAGS (e.g. --cpus split)
# go to one benchmark each.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${BUILD_DIR:-build-bench}

if [ -f "$build/build.ninja" ]; then
        meson configure "$build" -Dbuildtype=release -Db_ndebug=true
else
        meson setup "$build" --buildtype=release -Db_ndebug=true
fi
ninja -C "$build" bench/bench-region bench/bench-fdpass

echo "== $(uname -srm), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)," \
        "$(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git describe --always --dirty 2>/dev/null || echo unknown)"

status=0
# shellcheck disable=SC2086 # the per-benchmark flags are word lists
"$build/bench/bench-region" ${BENCH_REGION_FLAGS:-} "$@" || status=$?
# shellcheck disable=SC2086
"$build/bench/bench-fdpass" ${BENCH_FDPASS_FLAGS:-} "$@" || status=$?
exit "$status"
