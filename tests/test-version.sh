#!/bin/sh
# SPDX-License-Identifier: MIT
#
# One version everywhere: meson's project version is the one of
# ASHM_VERSION_* in <ashm.h>, of ashm_version() and `ashm --version`, of
# the pkg-config file, of the Python package, of debian/changelog (the
# packages) and of the man
# pages, which also share one date; and the newest symbol node of
# libashm.sym is LIBASHM_MAJOR.MINOR of that version (a release that adds
# a node bumps the version). Prints TAP.
set -eu

: "${ASHM_BUILD_ROOT:?ASHM_BUILD_ROOT must name the build directory}"
: "${ASHM_SOURCE_ROOT:?ASHM_SOURCE_ROOT must name the source directory}"
TAP_NAME=version
. "$ASHM_SOURCE_ROOT/tests/tap.sh"
src=$ASHM_SOURCE_ROOT

version=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["version"])' \
        "$ASHM_BUILD_ROOT/meson-info/intro-projectinfo.json")
echo "1..7"
echo "# meson project version: $version"

# same WHAT GOT: ok when GOT is $version.
same() {
        if [ "$2" = "$version" ]; then
                ok "$1 says $version"
        else
                not_ok "$1 says '$2', meson.build says $version"
        fi
}

h=$(sed -n 's/^#define ASHM_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)$/\2/p' "$src/include/ashm.h" | paste -sd.)
s=$(sed -n 's/^#define ASHM_VERSION_STRING "\(.*\)"$/\1/p' "$src/include/ashm.h")
if [ "$h" = "$version" ] && [ "$s" = "$version" ]; then
        ok "<ashm.h> says $version"
else
        not_ok "<ashm.h> says $h / $s, meson.build says $version"
fi

out=$("$ASHM_BUILD_ROOT/src/cli/ashm" --version)
same "ashm --version and ashm_version()" "$(echo "$out" | sed -n 's/^ashm \([^ ]*\) (libashm \([^)]*\))$/\1 \2/p' |
        awk '$1 == $2 { print $1 }')"

same "the pkg-config file" "$(sed -n 's/^Version: //p' "$ASHM_BUILD_ROOT/meson-private/ashm.pc")"

same "the Python package (ashm.__version__)" \
        "$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$src/python/ashm/__init__.py")"

same "debian/changelog" "$(sed -n '1s/^ashm (\([^)]*\)).*/\1/p' "$src/debian/changelog")"

pages=$(grep -h '^\.TH ' "$src"/man/*.[1-8])
bad=$(echo "$pages" | grep -v "\"ashm $version\"" || true)
dates=$(echo "$pages" | awk '{ print $4 }' | sort -u | wc -l)
if [ -z "$bad" ] && [ "$dates" -eq 1 ]; then
        ok "every man page says ashm $version, with one date"
else
        not_ok "every man page says ashm $version, with one date"
        echo "$pages" | diag
fi

node=$(sed -n 's/^\(LIBASHM_[0-9.]*\) *{.*/\1/p' "$src/src/libashm/libashm.sym" | tail -n 1)
want=LIBASHM_$(echo "$version" | cut -d. -f1-2)
if [ "$node" = "$want" ]; then
        ok "the newest symbol node is $want"
else
        not_ok "the newest symbol node is $node, the version $version wants $want (bump the version in meson.build, <ashm.h>, debian/changelog and the man pages)"
fi
[ "$failed" -eq 0 ]
