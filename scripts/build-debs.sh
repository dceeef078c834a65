#!/bin/sh
# SPDX-License-Identifier: MIT
# Build the Debian packages (libashm0, libashm-dev, ashm) from this tree
# with dpkg-buildpackage, in a copy of the tree so that the tree itself
# stays clean, then run lintian on them (errors fail the build).
# Usage: scripts/build-debs.sh [OUTDIR]   (default: ./debs)
# Needs debhelper, dpkg-dev, lintian, fakeroot (scripts/install-deps.sh).
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-$src/debs}" && cd "${1:-$src/debs}" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/ashm-debs.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "build-debs: copying the tree to $work/ashm"
mkdir "$work/ashm"
# The sources only: no build directories, no packages, no VCS.
tar -C "$src" --exclude='./build*' --exclude='./debs' --exclude='./.git' --exclude='./subprojects' -cf - . |
        tar -C "$work/ashm" -xf -
echo "build-debs: dpkg-buildpackage -us -uc -b (log: $out/build.log)"
if ! (cd "$work/ashm" && dpkg-buildpackage -us -uc -b) >"$out/build.log" 2>&1; then
        tail -n 30 "$out/build.log" >&2
        echo "build-debs: dpkg-buildpackage failed; see $out/build.log" >&2
        exit 1
fi
rm -f "$out"/*.deb
mv "$work"/*.deb "$out"/
cp "$work"/*.changes "$out"/ 2>/dev/null || true
echo "build-debs: lintian"
# Errors fail; warnings are shown.
if ! lintian --fail-on error --suppress-tags bad-distribution-in-changes-file "$out"/*.deb >"$out/lintian.log" 2>&1; then
        cat "$out/lintian.log" >&2
        echo "build-debs: lintian found errors" >&2
        exit 1
fi
cat "$out/lintian.log"
ls -1 "$out"/*.deb
