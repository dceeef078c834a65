# SPDX-License-Identifier: MIT
#
# Sourced by the fuzz tests (test-fuzz.sh, test-fuzz-kv.sh) after
# tests/tap.sh: sets $seconds ($ASHM_FUZZ_SECONDS, default 20 per
# target), $CLANG and $sanitize, and ends the test with "1..0 # SKIP"
# when clang or its libFuzzer (Debian: libclang-rt-14-dev, from
# scripts/install-deps.sh) is missing.
seconds=${ASHM_FUZZ_SECONDS:-20}
CLANG=${CLANG:-clang}

if ! command -v "$CLANG" >/dev/null 2>&1; then
        echo "1..0 # SKIP clang not found (scripts/install-deps.sh installs it)"
        exit 0
fi
sanitize=-fsanitize=fuzzer,address,undefined
# A target that does nothing tells a missing libFuzzer from a broken build.
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n);\n%s\n' \
        'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void) d; (void) n; return 0; }' \
        >"$tmp/probe.c"
if ! "$CLANG" $sanitize -o "$tmp/probe" "$tmp/probe.c" >"$tmp/probe.log" 2>&1; then
        echo "1..0 # SKIP clang cannot link libFuzzer (install libclang-rt-14-dev): $(head -n 1 "$tmp/probe.log")"
        exit 0
fi
