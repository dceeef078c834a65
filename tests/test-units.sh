#!/bin/sh
# SPDX-License-Identifier: MIT
#
# The systemd units as built: the user units (socket activation on
# %t/ashm/ashmd.sock) and the system units (one root ashmd on
# /run/ashm/ashmd.sock) pass `systemd-analyze verify` without a word,
# `systemd-analyze security` rates both services OK or better, and the
# tmpfiles.d entry makes /run/ashm. ExecStart is pointed at the ashmd of
# this build, so that verify finds the program. Prints TAP.
set -eu

: "${ASHM_BUILD_ROOT:?ASHM_BUILD_ROOT must name the build directory}"
: "${ASHM_SOURCE_ROOT:?ASHM_SOURCE_ROOT must name the source directory}"
TAP_NAME=units
. "$ASHM_SOURCE_ROOT/tests/tap.sh"

units=$ASHM_BUILD_ROOT/src/ashmd
ashmd=$ASHM_BUILD_ROOT/src/ashmd/ashmd
echo "1..6"
if ! command -v systemd-analyze >/dev/null 2>&1; then
        for i in 1 2 3 4 5 6; do skip "systemd units" "systemd-analyze is not installed"; done
        exit 0
fi

mkdir -p "$tmp/system" "$tmp/user" "$tmp/xdg" "$tmp/root"
chmod 700 "$tmp/xdg"
for k in service socket; do
        sed "s|^ExecStart=[^ ]*/ashmd|ExecStart=$ashmd|" "$units/ashmd-system.$k" >"$tmp/system/ashmd.$k"
        sed "s|^ExecStart=[^ ]*/ashmd|ExecStart=$ashmd|" "$units/ashmd.$k" >"$tmp/user/ashmd.$k"
done
# The user manager's units need a runtime directory (%t), even offline.
export XDG_RUNTIME_DIR="$tmp/xdg"

# check_verify NAME DIR [--user]
check_verify() {
        if systemd-analyze verify --man=no $3 "$2/ashmd.service" "$2/ashmd.socket" >"$tmp/out" 2>&1 &&
                ! [ -s "$tmp/out" ]; then
                ok "systemd-analyze verify: $1 units"
        else
                not_ok "systemd-analyze verify: $1 units"
                diag "$tmp/out"
        fi
}
check_verify system "$tmp/system" ""
check_verify user "$tmp/user" --user

# check_security NAME DIR [--user]: the overall level, OK or better.
check_security() {
        systemd-analyze security --offline=yes $3 "$2/ashmd.service" >"$tmp/out" 2>&1 || true
        line=$(grep "Overall exposure level" "$tmp/out" || true)
        case "$line" in
        *" PERFECT"* | *" SAFE"* | *" OK"*)
                ok "systemd-analyze security: $1 service rated OK or better (${line#*: })" ;;
        *)
                not_ok "systemd-analyze security: $1 service rated OK or better"
                diag "$tmp/out" ;;
        esac
}
check_security system "$tmp/system" ""
check_security user "$tmp/user" --user

# The system units serve /run/ashm/ashmd.sock to everyone.
if grep -qx "ListenSequentialPacket=/run/ashm/ashmd.sock" "$tmp/system/ashmd.socket" &&
        grep -qx "SocketMode=0666" "$tmp/system/ashmd.socket" &&
        grep -q "^ExecStart=.* --socket /run/ashm/ashmd.sock" "$tmp/system/ashmd.service"; then
        ok "the system socket is /run/ashm/ashmd.sock, mode 0666"
else
        not_ok "the system socket is /run/ashm/ashmd.sock, mode 0666"
        diag "$tmp/system/ashmd.socket"
fi

if command -v systemd-tmpfiles >/dev/null 2>&1; then
        if systemd-tmpfiles --root="$tmp/root" --create "$ASHM_SOURCE_ROOT/src/ashmd/ashm.tmpfiles" >"$tmp/out" 2>&1 &&
                [ "$(stat -c %a "$tmp/root/run/ashm")" = 755 ]; then
                ok "tmpfiles.d makes /run/ashm, mode 0755"
        else
                not_ok "tmpfiles.d makes /run/ashm, mode 0755"
                diag "$tmp/out"
        fi
else
        skip "tmpfiles.d makes /run/ashm" "systemd-tmpfiles is not installed"
fi
[ "$failed" -eq 0 ]
