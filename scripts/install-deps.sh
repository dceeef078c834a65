#!/bin/sh
# Install, from Debian's archive, whatever the build and the tests need and
# the machine lacks. Safe to run again: it installs only what is missing.
set -eu

# The KV store's benchmark and MMKV interop tests build MMKV v1.3.3 from
# npm (scripts/fetch-mmkv.sh: npm, cmake, make, zlib1g-dev) and compare
# with LMDB and SQLite.
packages="meson ninja-build gcc g++ pkg-config libcriterion-dev python3 binutils clang llvm libclang-rt-14-dev man-db groff-base cmake make zlib1g-dev openssl liblmdb-dev libsqlite3-dev"
# bench-chan compares channels with ZeroMQ, nng and iceoryx (RouDi and
# its C binding), each optional in meson.
packages="$packages libzmq3-dev libnng-dev iceoryx libiceoryx-binding-c-dev"
# npm may come with a Node.js that is not Debian's (nodesource ships it in
# its nodejs package, which conflicts with Debian's npm): any npm will do.
command -v npm >/dev/null 2>&1 || packages="$packages npm"

missing=""
for p in $packages; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
                missing="$missing $p"
        fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
                SUDO=sudo
        else
                echo "install-deps: need root (or sudo) to install:$missing" >&2
                exit 1
        fi
else
        SUDO=
fi
echo "install-deps: installing$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
