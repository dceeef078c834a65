#!/bin/sh
# SPDX-License-Identifier: MIT
# Build ashm in release mode and run the benchmarks, printing everything.
#
#   ./scripts/bench.sh [BENCH FLAGS...]
#
# BUILD_DIR   the build directory (default: build-bench, next to this
#             script's repository); created with --buildtype=release
#             -Db_ndebug=true if missing, switched to them if not.
# Flags such as --rounds N, --iters K, --quick or --strict go to every
# benchmark (bench-purge takes one purge per sample and ignores --iters);
# with --strict the script fails when a target is missed.
# BENCH_REGION_FLAGS (e.g. --touch), BENCH_FDPASS_FLAGS (e.g. --cpus split),
# BENCH_PIN_FLAGS and BENCH_PURGE_FLAGS (e.g. --samples 48 --intervals
# 250,20) go to one benchmark each. BENCH_ONLY="pin purge" runs only the
# benchmarks named (region, fdpass, pin, purge; default: all).
# bench-pin and bench-purge start a private ashmd of this build on a
# socket of their own and stop it when they end.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${BUILD_DIR:-build-bench}

if [ -f "$build/build.ninja" ]; then
        meson configure "$build" -Dbuildtype=release -Db_ndebug=true
else
        meson setup "$build" --buildtype=release -Db_ndebug=true
fi
ninja -C "$build" bench/bench-region bench/bench-fdpass bench/bench-pin bench/bench-purge bench/bench-broker \
        bench/bench-config src/ashmd/ashmd

echo "== $(uname -srm), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)," \
        "$(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git describe --always --dirty 2>/dev/null || echo unknown)"

only=${BENCH_ONLY:-region fdpass pin purge broker config}
wanted() {
        case " $only " in *" $1 "*) return 0 ;; esac
        return 1
}

status=0
# shellcheck disable=SC2086 # the per-benchmark flags are word lists
if wanted region; then "$build/bench/bench-region" ${BENCH_REGION_FLAGS:-} "$@" || status=$?; fi
# shellcheck disable=SC2086
if wanted fdpass; then "$build/bench/bench-fdpass" ${BENCH_FDPASS_FLAGS:-} "$@" || status=$?; fi
# shellcheck disable=SC2086
if wanted pin; then "$build/bench/bench-pin" ${BENCH_PIN_FLAGS:-} "$@" || status=$?; fi
# shellcheck disable=SC2086
if wanted purge; then "$build/bench/bench-purge" ${BENCH_PURGE_FLAGS:-} "$@" || status=$?; fi
# shellcheck disable=SC2086
if wanted broker; then "$build/bench/bench-broker" ${BENCH_BROKER_FLAGS:-} "$@" || status=$?; fi
# shellcheck disable=SC2086
if wanted config; then "$build/bench/bench-config" ${BENCH_CONFIG_FLAGS:-} "$@" || status=$?; fi
exit "$status"
