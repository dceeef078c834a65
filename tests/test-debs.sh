#!/bin/sh
# SPDX-License-Identifier: MIT
#
# The Debian packages: scripts/build-debs.sh builds libashm0, libashm-dev
# and ashm with dpkg-buildpackage (lintian clean of errors), and they are
# unpacked into a throwaway root (dpkg -x), where the tool runs with the
# library and the daemon of the packages: ls, publish (starting the
# packaged ashmd), names. Slow (a whole build): it runs in the plain
# build only. Prints TAP.
set -eu

: "${ASHM_BUILD_ROOT:?ASHM_BUILD_ROOT must name the build directory}"
: "${ASHM_SOURCE_ROOT:?ASHM_SOURCE_ROOT must name the source directory}"
TAP_NAME=debs
. "$ASHM_SOURCE_ROOT/tests/tap.sh"

echo "1..7"
skip_all() {
        for i in 1 2 3 4 5 6; do skip "Debian packages" "$1"; done
        exit 0
}
sanitize=$(python3 -c 'import json, sys
print([o["value"] for o in json.load(open(sys.argv[1])) if o["name"] == "b_sanitize"][0])' \
        "$ASHM_BUILD_ROOT/meson-info/intro-buildoptions.json")
[ "$sanitize" = none ] || skip_all "a sanitizer build ($sanitize): the packages build without it, in the plain build's run"
for tool in dpkg-buildpackage dh lintian fakeroot; do
        command -v $tool >/dev/null 2>&1 || skip_all "$tool is not installed (scripts/install-deps.sh)"
done
version=$(sed -n '1s/^ashm (\([^)]*\)).*/\1/p' "$ASHM_SOURCE_ROOT/debian/changelog")
arch=$(dpkg --print-architecture)
triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH)

if "$ASHM_SOURCE_ROOT/scripts/build-debs.sh" "$tmp/debs" >"$tmp/build.out" 2>&1; then
        ok "dpkg-buildpackage builds the packages, lintian finds no error"
else
        not_ok "dpkg-buildpackage builds the packages, lintian finds no error"
        diag "$tmp/build.out"
        exit 1
fi

root=$tmp/root
missing=""
for p in libashm0 libashm-dev ashm; do
        deb=$tmp/debs/${p}_${version}_$arch.deb
        if [ -f "$deb" ]; then
                dpkg -x "$deb" "$root"
        else
                missing="$missing $p"
        fi
done
deb=$tmp/debs/python3-ashm_${version}_all.deb
if [ -f "$deb" ]; then
        dpkg -x "$deb" "$root"
else
        missing="$missing python3-ashm"
fi
if [ -z "$missing" ]; then
        ok "libashm0, libashm-dev, ashm and python3-ashm $version unpack into a throwaway root"
else
        not_ok "packages missing:$missing"
        ls "$tmp/debs" | diag
fi

files_ok=true
for f in usr/bin/ashm usr/bin/ashmd "usr/lib/$triplet/libashm.so.0" "usr/lib/$triplet/libashm.so" \
        "usr/lib/$triplet/pkgconfig/ashm.pc" usr/include/ashm/ashm.h "usr/lib/$triplet/ashm/libashm-devshim.so" \
        usr/lib/systemd/system/ashmd.socket usr/lib/systemd/system/ashmd.service \
        usr/lib/systemd/user/ashmd.socket usr/lib/tmpfiles.d/ashm.conf \
        usr/share/man/man1/ashm.1.gz usr/share/man/man3/ashm.3.gz usr/share/man/man8/ashmd.8.gz; do
        if ! [ -e "$root/$f" ]; then
                files_ok=false
                echo "missing: /$f" >>"$tmp/missing"
        fi
done
if $files_ok; then
        ok "tool, daemon, library, headers, pkg-config, shim, units and man pages are there"
else
        not_ok "tool, daemon, library, headers, pkg-config, shim, units and man pages are there"
        diag "$tmp/missing"
fi

# The tool of the package (it carries libashm inside), and a program
# built with libashm-dev's pkg-config file against libashm0.
export LD_LIBRARY_PATH="$root/usr/lib/$triplet"
ashm=$root/usr/bin/ashm
printf '#include <ashm.h>\n#include <stdio.h>\nint main(void) { puts(ashm_version()); return 0; }\n' >"$tmp/v.c"
out=$("$ashm" --version 2>&1 || true)
flags=$(PKG_CONFIG_PATH="$root/usr/lib/$triplet/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$root" \
        pkg-config --cflags --libs ashm 2>&1 || true)
lib=$(cc -o "$tmp/v" "$tmp/v.c" $flags 2>&1 && "$tmp/v" 2>&1 || true)
if [ "$out" = "ashm $version (libashm $version)" ] && [ "$lib" = "$version" ] &&
        ldd "$tmp/v" | grep -q "libashm.so.0 => $root/usr/lib/$triplet/libashm.so.0"; then
        ok "the packaged ashm says $version; a program built with libashm-dev runs with libashm0 $lib"
else
        not_ok "the packaged ashm says $version; a program built with libashm-dev runs with libashm0"
        { echo "$out"; echo "pkg-config: $flags"; echo "program: $lib"; ldd "$tmp/v" 2>&1; } | diag
fi

if "$ashm" ls --regions >"$tmp/ls.out" 2>&1 && grep -q "^ *INODE USER HOLDERS" "$tmp/ls.out"; then
        ok "ashm ls --regions runs from the throwaway root"
else
        not_ok "ashm ls --regions runs from the throwaway root"
        diag "$tmp/ls.out"
fi

# Debian's python3 imports the packaged module, which loads libashm0.
py=$(PYTHONPATH="$root/usr/lib/python3/dist-packages" /usr/bin/python3 -c \
        'import ashm; print(ashm.__version__, ashm.library_version(), ashm.__file__)' 2>&1 || true)
if [ "$py" = "$version $version $root/usr/lib/python3/dist-packages/ashm/__init__.py" ]; then
        ok "python3-ashm imports from the throwaway root, on libashm0 $version"
else
        not_ok "python3-ashm imports from the throwaway root, on libashm0 $version"
        echo "$py" | diag
fi

# publish starts the packaged daemon on demand, on a private socket.
export ASHM_SOCKET="$tmp/ashmd.sock" ASHMD="$root/usr/bin/ashmd"
unset ASHM_NO_AUTOSTART
echo "packaged" >"$tmp/conf"
if "$ashm" publish --file "$tmp/conf" debs-test >"$tmp/pub.out" 2>&1 &&
        "$ashm" names >>"$tmp/pub.out" 2>&1 && grep -q " debs-test$" "$tmp/pub.out"; then
        ok "ashm publish starts the packaged ashmd, names lists the name"
else
        not_ok "ashm publish starts the packaged ashmd, names lists the name"
        diag "$tmp/pub.out"
fi
if [ -f "$tmp/ashmd.pid" ]; then
        kill "$(cat "$tmp/ashmd.pid")" 2>/dev/null || true
fi
[ "$failed" -eq 0 ]
