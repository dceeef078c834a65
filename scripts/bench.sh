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
# 250,20), BENCH_KV_FLAGS (e.g. --peers ashm,mmkv-multi) go to one
# benchmark each (BENCH_CHAN_FLAGS for bench-chan, whose BENCH_CHAN_ONLY=
# "busy block tput zc fanout setup mem" picks workloads; BENCH_CHAN_ICEORYX=0
# leaves its iceoryx peers out). BENCH_ONLY="pin purge"
# runs only the benchmarks named (region, fdpass, pin, purge, broker,
# config, kv, lock, chan, python; default: all).
# BENCH_PYTHON_FLAGS go to bench/python/bench_python.py.
# bench-pin and bench-purge start a private ashmd of this build on a
# socket of their own and stop it when they end.
# bench-kv takes --iters as the number of keys (default 100000). Its MMKV
# peers run in bench-kv-mmkv, which this script compiles into
# BUILD_DIR/bench after scripts/fetch-mmkv.sh has fetched and built MMKV
# v1.3.3 in MMKV_DIR (default: build-mmkv); if that fails bench-kv runs
# without MMKV and says so. BENCH_KV_MMKV names a driver built elsewhere.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${BUILD_DIR:-build-bench}

if [ -f "$build/build.ninja" ]; then
        meson configure "$build" -Dbuildtype=release -Db_ndebug=true
else
        meson setup "$build" --buildtype=release -Db_ndebug=true
fi
only=${BENCH_ONLY:-region fdpass pin purge broker config kv lock chan python}
wanted() {
        case " $only " in *" $1 "*) return 0 ;; esac
        return 1
}

# bench-kv is configured only where LMDB and SQLite are installed.
kv_target=
if wanted kv; then
        if grep -q '^build bench/bench-kv:' "$build/build.ninja"; then
                kv_target=bench/bench-kv
        else
                echo "bench.sh: bench-kv is not configured in $build (apt-get install liblmdb-dev libsqlite3-dev)" >&2
        fi
fi
ninja -C "$build" bench/bench-region bench/bench-fdpass bench/bench-pin bench/bench-purge bench/bench-broker \
        bench/bench-config src/ashmd/ashmd $kv_target bench/bench-chan

# The MMKV driver of bench-kv: MMKV is fetched, not a meson dependency.
build_mmkv_driver() {
        mmkv_dir=${MMKV_DIR:-build-mmkv}
        driver=$build/bench/bench-kv-mmkv
        lib=$mmkv_dir/build/libcore.a

        scripts/fetch-mmkv.sh "$mmkv_dir" >&2 || return 1
        if [ ! -x "$driver" ] || [ -n "$(find bench/bench-kv-mmkv.cpp "$lib" -newer "$driver")" ]; then
                echo "bench.sh: g++ bench/bench-kv-mmkv.cpp -> $driver" >&2
                g++ -O2 -std=c++17 -Wall -Wextra -I"$mmkv_dir/src/MMKV/Core" bench/bench-kv-mmkv.cpp "$lib" \
                        -lz -lpthread -o "$driver" || return 1
        fi
        BENCH_KV_MMKV=$(pwd)/$driver
}
if [ -n "$kv_target" ] && [ -z "${BENCH_KV_MMKV:-}" ]; then
        build_mmkv_driver || echo "bench.sh: could not build the MMKV driver; bench-kv runs without MMKV" >&2
fi

echo "== $(uname -srm), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)," \
        "$(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git describe --always --dirty 2>/dev/null || echo unknown)"

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
# shellcheck disable=SC2086
if [ -n "$kv_target" ]; then
        BENCH_KV_MMKV=${BENCH_KV_MMKV:-} "$build/bench/bench-kv" ${BENCH_KV_FLAGS:-} "$@" || status=$?
fi
# bench-lock: ashm_mutex against a robust pthread mutex and a raw futex.
# shellcheck disable=SC2086
if wanted lock; then
        ninja -C "$build" bench/bench-lock >&2 && "$build/bench/bench-lock" ${BENCH_LOCK_FLAGS:-} "$@" || status=$?
fi
# bench/python: the Python package against multiprocessing.shared_memory
# and multiprocessing.Queue, under the first python3 that has numpy
# (Debian's python3-numpy), on this build's libashm.
if wanted python; then
        py=
        for c in /usr/bin/python3 python3; do
                if "$c" -c 'import numpy' 2>/dev/null; then
                        py=$c
                        break
                fi
        done
        if [ -n "$py" ]; then
                # shellcheck disable=SC2086
                ASHM_LIBRARY="$root/$build/src/libashm/libashm.so.0" PYTHONPATH="$root/python" PYTHONDONTWRITEBYTECODE=1 \
                        "$py" bench/python/bench_python.py ${BENCH_PYTHON_FLAGS:-} "$@" || status=$?
        else
                echo "bench.sh: no python3 with numpy (apt-get install python3-numpy): bench-python skipped" >&2
        fi
fi
# shellcheck disable=SC2086
if wanted chan; then "$build/bench/bench-chan" ${BENCH_CHAN_FLAGS:-} "$@" || status=$?; fi
exit "$status"
