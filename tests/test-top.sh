#!/bin/sh
# SPDX-License-Identifier: MIT
#
# `ashm top` in a real terminal: tmux runs it in a pane of its own (a
# private tmux server), the test reads the screen with capture-pane and
# types with send-keys. A private ashmd holds a published region, so the
# screen has a row to show. Every wait polls the screen with a bound.
# The last screen is kept in $ASHM_BUILD_ROOT/top-screen.txt. Prints TAP.
set -eu

: "${ASHM_BUILD_ROOT:?ASHM_BUILD_ROOT must name the build directory}"
: "${ASHM_SOURCE_ROOT:?ASHM_SOURCE_ROOT must name the source directory}"
TAP_NAME=top
. "$ASHM_SOURCE_ROOT/tests/tap.sh"

ashm=$ASHM_BUILD_ROOT/src/cli/ashm
ashmd=$ASHM_BUILD_ROOT/src/ashmd/ashmd
screen=$ASHM_BUILD_ROOT/top-screen.txt
echo "1..5"
if ! command -v tmux >/dev/null 2>&1; then
        for i in 1 2 3 4 5; do skip "ashm top in tmux" "tmux is not installed (scripts/install-deps.sh)"; done
        exit 0
fi
if ! grep -q "HAVE_NCURSES=1" "$ASHM_BUILD_ROOT/build.ninja" 2>/dev/null; then
        for i in 1 2 3 4 5; do skip "ashm top in tmux" "built without ncurses"; done
        exit 0
fi

export ASHM_SOCKET="$tmp/ashmd.sock"
"$ashmd" --socket "$ASHM_SOCKET" --no-pressure 2>"$tmp/ashmd.log" &
daemon=$!
tmux_() { tmux -S "$tmp/tmux.sock" "$@"; }
cleanup() {
        tmux_ kill-server 2>/dev/null || true
        kill "$daemon" 2>/dev/null || true
        wait "$daemon" 2>/dev/null || true
        rm -rf "$tmp"
}
trap cleanup EXIT

# until_screen PATTERN: poll the pane (up to 10 s) until it shows PATTERN.
until_screen() {
        i=0
        while [ $i -lt 100 ]; do
                tmux_ capture-pane -p -t top >"$tmp/screen" 2>/dev/null || true
                grep -q -- "$1" "$tmp/screen" && return 0
                sleep 0.1
                i=$((i + 1))
        done
        return 1
}

i=0
until [ -S "$ASHM_SOCKET" ] || [ $i -ge 100 ]; do sleep 0.1; i=$((i + 1)); done
printf 'frame cache contents\n' >"$tmp/cache"
name="top-test-$$"
if "$ashm" publish --file "$tmp/cache" "$name" >"$tmp/out" 2>&1; then
        ok "a private ashmd holds a region"
else
        not_ok "a private ashmd holds a region"
        diag "$tmp/out" "$tmp/ashmd.log"
fi

tmux_ -f /dev/null new-session -d -s top -x 132 -y 24 \
        "env ASHM_SOCKET='$ASHM_SOCKET' TERM=xterm '$ashm' top -d 0.2; echo top-exited-\$?; sleep 30"
if until_screen "$name"; then
        ok "the screen shows the region, its holder and the totals"
else
        not_ok "the screen shows the region, its holder and the totals"
        diag "$tmp/screen"
fi
if grep -q "^ashm top - " "$tmp/screen" && grep -q "pinned: .*unpinned: .*purged: " "$tmp/screen" &&
        grep -q "^purges: .*pressure: " "$tmp/screen" && grep -q "q: quit  s: sort (resident)" "$tmp/screen"; then
        ok "summary lines, table and key help"
else
        not_ok "summary lines, table and key help"
        diag "$tmp/screen"
fi
cp "$tmp/screen" "$screen"

tmux_ send-keys -t top s
if until_screen "s: sort (size)"; then
        ok "s changes the order"
else
        not_ok "s changes the order"
        diag "$tmp/screen"
fi

tmux_ send-keys -t top q
if until_screen "top-exited-0"; then
        ok "q quits, with status 0"
else
        not_ok "q quits, with status 0"
        diag "$tmp/screen"
fi
[ "$failed" -eq 0 ]
