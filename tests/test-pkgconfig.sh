#!/bin/sh
# SPDX-License-Identifier: MIT
#
# A program written as Android code (tests/android-program.c) builds with
# nothing but pkg-config's answer for ashm, and gets Android's behaviour:
#  1. against the build tree, through the uninstalled .pc file that Meson
#     writes under meson-uninstalled/;
#  2. against a copy installed with `meson install --destdir`, whose
#     layout (headers, library symlinks, soname, .pc) is checked too.
# Prints TAP. Needs ASHM_BUILD_ROOT and ASHM_SOURCE_ROOT (tests/meson.build
# sets both).
set -eu

: "${ASHM_BUILD_ROOT:?ASHM_BUILD_ROOT must name the build directory}"
: "${ASHM_SOURCE_ROOT:?ASHM_SOURCE_ROOT must name the source directory}"

program_src=$ASHM_SOURCE_ROOT/tests/android-program.c
TAP_NAME=pkgconfig
. "$ASHM_SOURCE_ROOT/tests/tap.sh"
# check DESCRIPTION COMMAND...: run it, its output shown only on failure.
check() {
        desc=$1
        shift
        if "$@" >"$tmp/out" 2>&1; then
                ok "$desc"
        else
                not_ok "$desc"
                diag "$tmp/out"
        fi
}

# What Meson knows about this build: the compiler it used, sanitizers,
# install directories. Printed as shell assignments.
meson_cc=cc prefix=/usr/local libdir=lib includedir=include sanitize=
eval "$(python3 - "$ASHM_BUILD_ROOT/meson-info" <<'EOF'
import json, os, shlex, sys
info = sys.argv[1]
opts = {o["name"]: o["value"] for o in json.load(open(os.path.join(info, "intro-buildoptions.json")))}
san = opts.get("b_sanitize", "none")
if isinstance(san, list):
    san = ",".join(san)
cc = ["cc"]
for t in json.load(open(os.path.join(info, "intro-targets.json"))):
    for s in t.get("target_sources", []):
        if s.get("language") == "c" and s.get("compiler"):
            cc = s["compiler"]
            break
    else:
        continue
    break
for k, v in (("sanitize", "" if san in ("", "none") else san), ("meson_cc", " ".join(map(shlex.quote, cc))),
             ("prefix", opts["prefix"]), ("libdir", opts["libdir"]), ("includedir", opts["includedir"])):
    print("%s=%s" % (k, shlex.quote(v)))
EOF
)"

cc=$meson_cc
cflags="-std=gnu11 -Wall -Wextra -Werror"
if [ -n "$sanitize" ]; then
        # libashm.so carries the sanitizer runtimes as dependencies; a
        # program must be built with them too so that the ASan runtime
        # comes first in the initial library list.
        cflags="$cflags -fsanitize=$sanitize"
        echo "# sanitizer build: compiling with -fsanitize=$sanitize"
fi

case $libdir in
/*) ;;
*) libdir=$prefix/$libdir ;;
esac
case $includedir in
/*) ;;
*) includedir=$prefix/$includedir ;;
esac

# build_and_run NAME PKG_CONFIG_ENV... -- : compile android-program.c with
# the flags pkg-config gives for module ashm under the environment given,
# then run it with the library directories of those flags on the path.
# Sets $flags, $exe.
build_and_run() {
        name=$1
        module=$2
        shift 2
        exe=$tmp/android-program-$name
        if ! flags=$(env "$@" pkg-config --cflags --libs "$module" 2>"$tmp/out"); then
                not_ok "$name: pkg-config --cflags --libs $module"
                diag "$tmp/out"
                return 0
        fi
        ok "$name: pkg-config --cflags --libs $module"
        echo "# $flags"

        # shellcheck disable=SC2086 # flags are words
        check "$name: android-program.c builds with -Werror and pkg-config's flags only" \
                $cc $cflags -o "$exe" "$program_src" $flags
        if [ ! -x "$exe" ]; then
                skip "$name: android-program runs" "it did not build"
                skip "$name: android-program loads libashm.so.0 from the expected copy" "it did not build"
                return 0
        fi

        libpath=
        case $flags in
        *rpath*) ;;
        *)
                for f in $flags; do
                        case $f in -L*) libpath=${libpath:+$libpath:}${f#-L} ;; esac
                done
                ;;
        esac

        # The program is linked against the soname, not a path.
        if readelf -d "$exe" | grep -q 'NEEDED.*\[libashm\.so\.0\]'; then
                ok "$name: android-program needs libashm.so.0 (the soname)"
        else
                not_ok "$name: android-program needs libashm.so.0 (the soname)"
                readelf -d "$exe" | diag
        fi
        resolved=$(LD_LIBRARY_PATH=$libpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} ldd "$exe" |
                sed -n 's/^[[:space:]]*libashm\.so\.0 => \([^ ]*\) .*/\1/p')
        if [ -n "$resolved" ] && [ "$(readlink -f "$resolved")" = "$(readlink -f "$expect_lib")" ]; then
                ok "$name: android-program loads libashm.so.0 from $expect_lib"
        else
                not_ok "$name: android-program loads libashm.so.0 from $expect_lib"
                echo "# resolved to: ${resolved:-nothing}"
        fi

        if LD_LIBRARY_PATH=$libpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$exe" >"$tmp/out" 2>&1; then
                ok "$name: android-program runs and passes $(grep -c '^ok' "$tmp/out") checks"
        else
                not_ok "$name: android-program runs and passes all its checks"
                diag "$tmp/out"
        fi
}

# ---------------------------------------------------------------------
# 1. The uninstalled .pc file, against the build tree
# ---------------------------------------------------------------------
uninstalled=$ASHM_BUILD_ROOT/meson-uninstalled
if [ -f "$uninstalled/ashm-uninstalled.pc" ]; then
        ok "meson-uninstalled/ashm-uninstalled.pc exists"
else
        not_ok "meson-uninstalled/ashm-uninstalled.pc exists"
        find "$uninstalled" 2>&1 | diag
fi
expect_lib=$ASHM_BUILD_ROOT/src/libashm/libashm.so.0
# PKG_CONFIG_LIBDIR alone: an ashm.pc installed on the system must not
# answer instead.
build_and_run uninstalled ashm-uninstalled PKG_CONFIG_LIBDIR="$uninstalled" PKG_CONFIG_PATH=
# pkg-config itself prefers NAME-uninstalled.pc when it finds one.
if v=$(PKG_CONFIG_LIBDIR=$uninstalled PKG_CONFIG_PATH='' pkg-config --modversion ashm 2>&1); then
        ok "uninstalled: pkg-config finds module ashm (version $v) through ashm-uninstalled.pc"
else
        not_ok "uninstalled: pkg-config finds module ashm through ashm-uninstalled.pc"
        echo "$v" | diag
fi

# ---------------------------------------------------------------------
# 2. meson install --destdir, and the installed copy
# ---------------------------------------------------------------------
# From a build directory of the test's own: `meson install` writes its
# install log into the build directory it installs from, and `ninja
# uninstall` in the user's build/ reads that log.
dest=$tmp/root
own=$tmp/build
if meson setup "$own" "$ASHM_SOURCE_ROOT" -Dtests=disabled -Dprefix="$prefix" -Dlibdir="$libdir" \
        -Dincludedir="$includedir" ${sanitize:+-Db_sanitize=$sanitize -Db_lundef=false} >"$tmp/install.log" 2>&1 &&
        ninja -C "$own" >>"$tmp/install.log" 2>&1 &&
        meson install -C "$own" --no-rebuild --quiet --destdir "$dest" >>"$tmp/install.log" 2>&1; then
        ok "meson install --destdir (from a build directory of its own)"
else
        not_ok "meson install --destdir (from a build directory of its own)"
        diag "$tmp/install.log"
fi

for h in ashm.h cutils/ashmem.h android/sharedmem.h linux/ashmem.h; do
        if cmp -s "$dest$includedir/ashm/$h" "$ASHM_SOURCE_ROOT/include/$h"; then
                ok "installed: $includedir/ashm/$h"
        else
                not_ok "installed: $includedir/ashm/$h (missing or differs from include/$h)"
        fi
done

lib=$dest$libdir
real=$(readlink -f "$lib/libashm.so.0" 2>/dev/null || true)
if [ -L "$lib/libashm.so.0" ] && [ -f "$real" ]; then
        ok "installed: $libdir/libashm.so.0 is a symlink to $(basename "$real")"
else
        not_ok "installed: $libdir/libashm.so.0 is a symlink to the library"
        find "$lib" -maxdepth 1 -name 'libashm*' 2>&1 | diag
fi
if [ -L "$lib/libashm.so" ] && [ "$(readlink -f "$lib/libashm.so")" = "$real" ]; then
        ok "installed: $libdir/libashm.so (the link-time name) points to the same library"
else
        not_ok "installed: $libdir/libashm.so (the link-time name) points to the same library"
fi
if [ -f "$real" ] && readelf -d "$real" | grep -q 'SONAME.*\[libashm\.so\.0\]'; then
        ok "installed: the library's SONAME is libashm.so.0"
else
        not_ok "installed: the library's SONAME is libashm.so.0"
        [ -f "$real" ] && readelf -d "$real" | grep SONAME | diag
fi

pcdir=$lib/pkgconfig
if [ -f "$pcdir/ashm.pc" ]; then
        ok "installed: $libdir/pkgconfig/ashm.pc"
else
        not_ok "installed: $libdir/pkgconfig/ashm.pc"
fi
# Nothing of the installed .pc may point back into the build or the
# source tree.
if [ -f "$pcdir/ashm.pc" ] && ! grep -qF -e "$ASHM_BUILD_ROOT" -e "$ASHM_SOURCE_ROOT" "$pcdir/ashm.pc"; then
        ok "installed: ashm.pc refers to no build or source directory"
else
        not_ok "installed: ashm.pc refers to no build or source directory"
        [ -f "$pcdir/ashm.pc" ] && diag "$pcdir/ashm.pc"
fi

expect_lib=$lib/libashm.so.0
build_and_run installed ashm PKG_CONFIG_SYSROOT_DIR="$dest" PKG_CONFIG_LIBDIR="$pcdir" PKG_CONFIG_PATH=
case $flags in
*"$dest"*) ok "installed: pkg-config's flags point into the installed copy" ;;
*) not_ok "installed: pkg-config's flags point into the installed copy" ;;
esac

# C++ code includes the same headers (they carry extern "C").
cxx=${CXX:-c++}
if command -v "$cxx" >/dev/null 2>&1; then
        cat >"$tmp/program.cc" <<'EOF'
#include <android/sharedmem.h>
#include <ashm.h>
#include <cutils/ashmem.h>
#include <linux/ashmem.h>
#include <unistd.h>

int main() {
        int fd = ASharedMemory_create("c++", 4096);
        int ok = fd >= 0 && ashmem_valid(fd) == 1 && ashmem_get_size_region(fd) == 4096 &&
                 ashm_version()[0] != '\0';
        if (fd >= 0)
                close(fd);
        return ok ? 0 : 1;
}
EOF
        cxxflags=$(echo "$cflags" | sed 's/-std=gnu11//')
        # shellcheck disable=SC2086
        if flags=$(PKG_CONFIG_SYSROOT_DIR=$dest PKG_CONFIG_LIBDIR=$pcdir PKG_CONFIG_PATH='' \
                pkg-config --cflags --libs ashm) &&
                $cxx $cxxflags -o "$tmp/program-cxx" "$tmp/program.cc" $flags >"$tmp/out" 2>&1 &&
                LD_LIBRARY_PATH=$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$tmp/program-cxx" >>"$tmp/out" 2>&1; then
                ok "installed: a C++ program includes the headers, links and runs"
        else
                not_ok "installed: a C++ program includes the headers, links and runs"
                diag "$tmp/out"
        fi
else
        skip "installed: a C++ program includes the headers, links and runs" "no C++ compiler ($cxx)"
fi

echo "1..$n"
[ "$failed" -eq 0 ]
