#!/bin/sh
# Install, from Debian's archive, whatever the build and the tests need and
# the machine lacks (with --demo, what the demo needs). Safe to run again:
# it installs only what is missing.
set -eu

# The KV store's benchmark and MMKV interop tests build MMKV v1.3.3 from
# npm (scripts/fetch-mmkv.sh: npm, cmake, make, zlib1g-dev) and compare
# with LMDB and SQLite.
packages="meson ninja-build gcc g++ pkg-config libcriterion-dev python3 binutils clang llvm libclang-rt-14-dev man-db groff-base cmake make zlib1g-dev openssl liblmdb-dev libsqlite3-dev"
# The Python package (python/): its tests run under Debian's python3 with
# pytest, and numpy for the zero-copy test and the benchmark.
packages="$packages python3-pytest python3-numpy"
# ashm top draws with ncurses, and its test runs it in tmux (issue 13).
packages="$packages libncurses-dev tmux"
# The unit tests run systemd-analyze and systemd-tmpfiles.
packages="$packages systemd"
# Debian packages (scripts/build-debs.sh, tests/test-debs.sh).
packages="$packages debhelper dpkg-dev dh-python lintian fakeroot"
# bench-chan compares channels with ZeroMQ, nng and iceoryx (RouDi and
# its C binding), each optional in meson.
packages="$packages libzmq3-dev libnng-dev iceoryx libiceoryx-binding-c-dev"
# npm may come with a Node.js that is not Debian's (nodesource ships it in
# its nodejs package, which conflicts with Debian's npm): any npm will do.
command -v npm >/dev/null 2>&1 || packages="$packages npm"

# --demo: only what the demo needs (scripts/demo.sh): a compiler, meson,
# ninja, pkg-config. The rest above is for the tests and benchmarks.
if [ "${1:-}" = "--demo" ]; then
        packages="gcc libc6-dev meson ninja-build pkg-config"
elif [ $# -gt 0 ]; then
        echo "usage: install-deps.sh [--demo]" >&2
        exit 2
fi

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
