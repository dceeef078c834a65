# SPDX-License-Identifier: MIT
# Sourced by the shell tests: a private temp directory ($tmp, removed at
# exit) named after the test, and the TAP printers. Set TAP_NAME first.

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ashm-test-${TAP_NAME:?}.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

n=0
failed=0
ok() {
        n=$((n + 1))
        echo "ok $n - $*"
}
not_ok() {
        n=$((n + 1))
        failed=$((failed + 1))
        echo "not ok $n - $*"
}
# skip DESCRIPTION REASON
skip() {
        n=$((n + 1))
        echo "ok $n - $1 # SKIP $2"
}
# Print a file (or stdin) as TAP diagnostics.
diag() {
        sed 's/^/# /' "$@"
}
