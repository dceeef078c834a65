#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Fuzz the protocol decoder, proto_decode(), for a bounded time: build
# tests/fuzz-protocol.c with clang's libFuzzer, ASan and UBSan, seed a
# corpus with valid messages of every type, and run it for
# $ASHM_FUZZ_SECONDS (default 20) seconds. Prints TAP; skips if clang or
# libFuzzer (Debian: libclang-rt-14-dev, from scripts/install-deps.sh)
# is missing. Needs ASHM_SOURCE_ROOT (tests/meson.build sets it).
set -eu

: "${ASHM_SOURCE_ROOT:?ASHM_SOURCE_ROOT must name the source directory}"
TAP_NAME=fuzz
. "$ASHM_SOURCE_ROOT/tests/tap.sh"

. "$ASHM_SOURCE_ROOT/tests/fuzz-common.sh"

echo "1..3"

cd "$ASHM_SOURCE_ROOT"
if "$CLANG" -g -O1 -Wall -Wextra -Wmissing-prototypes -Wstrict-prototypes $sanitize -D_GNU_SOURCE \
        -I src/libashm -I src/libashm/internal-api -I src/basic -I include src/libashm/protocol.c tests/fuzz-protocol.c \
        -o "$tmp/fuzz-protocol" >"$tmp/build.log" 2>&1 && [ ! -s "$tmp/build.log" ]; then
        ok "fuzz target builds without warnings"
else
        diag "$tmp/build.log"
        not_ok "fuzz target builds without warnings"
        [ -x "$tmp/fuzz-protocol" ] || { echo "# cannot go on without the target"; exit 1; }
fi

mkdir "$tmp/corpus"
if "$tmp/fuzz-protocol" --seed "$tmp/corpus" && [ "$(ls "$tmp/corpus" | wc -l)" -ge 10 ]; then
        ok "seed corpus of $(ls "$tmp/corpus" | wc -l) valid messages"
else
        not_ok "seed corpus"
fi

# Bounded: libFuzzer stops itself after max_total_time; timeout(1) is the
# backstop should it hang. Crashes land in $tmp, not the source tree.
rc=0
timeout -k 5 $((seconds + 30)) "$tmp/fuzz-protocol" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=1024 \
        -max_len=1024 -print_final_stats=1 -artifact_prefix="$tmp/" "$tmp/corpus" >"$tmp/fuzz.log" 2>&1 || rc=$?
grep -E '^#[0-9]+[[:space:]]+DONE|^Done [0-9]+ runs|^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' \
        "$tmp/fuzz.log" | diag
if [ "$rc" -eq 0 ] && grep -q '^Done [0-9]* runs' "$tmp/fuzz.log"; then
        ok "proto_decode survives ${seconds}s of fuzzing (requests and replies)"
else
        echo "# libFuzzer exited with status $rc:"
        # The report and its stack; the end of the log if there is none.
        sed -n '/==ERROR\|runtime error:\|^fuzz-protocol:/,/^SUMMARY/p' "$tmp/fuzz.log" | head -n 60 >"$tmp/report"
        [ -s "$tmp/report" ] || tail -n 40 "$tmp/fuzz.log" >"$tmp/report"
        diag "$tmp/report"
        for f in "$tmp"/crash-* "$tmp"/leak-* "$tmp"/timeout-* "$tmp"/oom-*; do
                [ -e "$f" ] || continue
                echo "# reproducer $(basename "$f"):"
                od -A d -t x1 "$f" | diag
        done
        not_ok "proto_decode survives ${seconds}s of fuzzing (requests and replies)"
fi

[ "$failed" -eq 0 ]
