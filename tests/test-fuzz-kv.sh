#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Fuzz the KV store's format (tests/fuzz-kv.c: open, get, set, remove,
# compact, foreach, check and repair of patched stores, checksums fixed
# up) and the MMKV importer (tests/fuzz-mmkv.c: src/shared/'s MMKV decoder and
# src/cli/kv-mmkv.c, as the CLI links them) for a bounded time each, as test-fuzz.sh does for the
# protocol: clang's libFuzzer with ASan and UBSan, $ASHM_FUZZ_SECONDS
# (default 20) seconds per target. Prints TAP; skips without clang or
# libFuzzer. Needs ASHM_SOURCE_ROOT (tests/meson.build sets it).
set -eu

: "${ASHM_SOURCE_ROOT:?ASHM_SOURCE_ROOT must name the source directory}"
TAP_NAME=fuzz-kv
. "$ASHM_SOURCE_ROOT/tests/tap.sh"

. "$ASHM_SOURCE_ROOT/tests/fuzz-common.sh"

echo "1..5"

cd "$ASHM_SOURCE_ROOT"
# The project's warnings (meson.build), and libashm as a whole: the store
# reaches regions, and the CLI reaches the rest.
cflags="-g -O1 -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wmissing-prototypes
        -Wstrict-prototypes -D_GNU_SOURCE -DASHMD_PATH=\"/nonexistent\" -DPROGRAM_VERSION=\"fuzz\"
        -I src/libashm -I src/libashm/internal-api -I src/basic -I src/shared -I src/cli -I include"
libashm=$(ls src/libashm/*.c)
cli=$(ls src/cli/*.c src/shared/*.c | grep -v '/ashm\.c$')

build() { # NAME SOURCES...
        name=$1
        shift
        if "$CLANG" $cflags $sanitize "$@" -o "$tmp/$name" -lpthread >"$tmp/$name.build.log" 2>&1 &&
                [ ! -s "$tmp/$name.build.log" ]; then
                ok "$name builds without warnings"
        else
                diag "$tmp/$name.build.log"
                not_ok "$name builds without warnings"
        fi
}

# NAME WHAT MAX_LEN [libFuzzer options]
run() {
        name=$1 what=$2 max_len=$3
        shift 3
        if [ ! -x "$tmp/$name" ]; then
                not_ok "$what survives ${seconds}s of fuzzing (no target)"
                return
        fi
        mkdir "$tmp/$name.corpus"
        "$tmp/$name" --seed "$tmp/$name.corpus"
        # Inputs that once found a bug (tests/corpus/NAME/) run first, every time.
        if [ -d "tests/corpus/$name" ]; then
                cp "tests/corpus/$name"/* "$tmp/$name.corpus/"
        fi
        rc=0
        (cd "$tmp" && timeout -k 5 $((seconds + 60)) "./$name" -max_total_time="$seconds" -timeout=10 \
                -rss_limit_mb=2048 -max_len="$max_len" -print_final_stats=1 -artifact_prefix="$tmp/$name-" \
                "$@" "$name.corpus" >"$name.log" 2>&1) || rc=$?
        grep -E '^Done [0-9]+ runs|^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' \
                "$tmp/$name.log" | diag
        if [ "$rc" -eq 0 ] && grep -q '^Done [0-9]* runs' "$tmp/$name.log"; then
                ok "$what survives ${seconds}s of fuzzing"
        else
                echo "# libFuzzer exited with status $rc:"
                sed -n '/==ERROR\|runtime error:\|ALARM\|^fuzz-/,/^SUMMARY/p' "$tmp/$name.log" | head -n 60 >"$tmp/report"
                [ -s "$tmp/report" ] || tail -n 40 "$tmp/$name.log" >"$tmp/report"
                diag "$tmp/report"
                for f in "$tmp/$name"-crash-* "$tmp/$name"-leak-* "$tmp/$name"-timeout-* "$tmp/$name"-oom-*; do
                        [ -e "$f" ] || continue
                        echo "# reproducer $(basename "$f"):"
                        od -A d -t x1 "$f" | head -n 40 | diag
                done
                not_ok "$what survives ${seconds}s of fuzzing"
        fi
}

build fuzz-kv $libashm src/basic/*.c tests/fuzz-kv.c
# ashm.c as it is, its main() renamed: libFuzzer brings the program's main.
if "$CLANG" $cflags -fsanitize=fuzzer-no-link,address,undefined -Wno-missing-prototypes -Dmain=ashm_cli_main \
        -c src/cli/ashm.c -o "$tmp/cli-main.o" >"$tmp/cli-main.log" 2>&1; then
        ok "the CLI's main file builds for the MMKV target"
else
        diag "$tmp/cli-main.log"
        not_ok "the CLI's main file builds for the MMKV target"
fi
build fuzz-mmkv $libashm src/basic/*.c $cli tests/fuzz-mmkv.c "$tmp/cli-main.o"

run fuzz-kv "the store format (open/get/set/compact/check/repair)" 512
# The importer prints what it does: -close_fd_mask=3 keeps the log short.
run fuzz-mmkv "MMKV import (kv-mmkv.c)" 4096 -close_fd_mask=3

[ "$failed" -eq 0 ]
