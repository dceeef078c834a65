#!/bin/sh
# Fetch Tencent MMKV core v1.3.3 from the npm registry (it ships inside
# react-native-mmkv@2.12.2 under MMKV/Core) and build it as a static
# library with its own CMakeLists.txt, for the KV benchmark and the MMKV
# import/export interop tests. Nothing fetched here is ever committed.
#
# Usage: scripts/fetch-mmkv.sh [DIR]        (default: build-mmkv)
# Result:
#   DIR/src/MMKV/Core/        MMKV sources + headers (include with -I)
#   DIR/build/libcore.a       static library
# Link a C++17 program with:
#   g++ -O2 -std=c++17 -IDIR/src/MMKV/Core prog.cpp DIR/build/libcore.a -lz -lpthread
#
# Needs Debian packages: npm, cmake, g++, make, zlib1g-dev.
# On x86_64 Debian 12 the stock CMakeLists.txt builds unmodified: the ARM
# .S files assemble to nothing (guarded by __arm__/__aarch64__), crc32 uses
# the system zlib (found as libz), AES/CFB is built in (no OpenSSL needed).
# No MMKV_DISABLE_CRYPT or other flags are required.
set -eu

PKG=react-native-mmkv
PKG_VERSION=2.12.2
MMKV_VERSION=v1.3.3
# sha512 integrity reported by `npm view react-native-mmkv@2.12.2 dist.integrity`
INTEGRITY='sha512-6058Aq0p57chPrUutLGe9fYoiDVDNMU2PKV+lLFUJ3GhoHvUrLdsS1PDSCLr00yqzL4WJQ7TTzH+V8cpyrNcfg=='

DIR=${1:-build-mmkv}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)

missing=
for tool in npm cmake g++ make; do
	command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
[ -e /usr/include/zlib.h ] || missing="$missing zlib1g-dev"
if [ -n "$missing" ]; then
	echo "fetch-mmkv: missing:$missing" >&2
	echo "fetch-mmkv: apt-get install -y npm cmake g++ make zlib1g-dev" >&2
	exit 1
fi

if [ -f "$DIR/build/libcore.a" ] && [ -f "$DIR/src/MMKV/Core/MMKV.h" ]; then
	echo "fetch-mmkv: $DIR/build/libcore.a already built"
	exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

echo "fetch-mmkv: npm pack $PKG@$PKG_VERSION"
(cd "$tmp" && npm pack --silent "$PKG@$PKG_VERSION" >/dev/null)
tgz="$tmp/$PKG-$PKG_VERSION.tgz"
[ -f "$tgz" ] || { echo "fetch-mmkv: npm pack produced no $tgz" >&2; exit 1; }

got="sha512-$(openssl dgst -sha512 -binary "$tgz" 2>/dev/null | base64 -w0 || true)"
if [ "$got" != "$INTEGRITY" ]; then
	if command -v openssl >/dev/null 2>&1; then
		echo "fetch-mmkv: integrity mismatch: $got" >&2
		exit 1
	fi
	echo "fetch-mmkv: openssl not found, integrity not checked (npm pack checks it too)" >&2
fi

rm -rf "$DIR/src"
mkdir -p "$DIR/src"
tar -xzf "$tgz" -C "$DIR/src" --strip-components=1 package/MMKV
core="$DIR/src/MMKV/Core"
grep -q "MMKV_VERSION = \"$MMKV_VERSION\"" "$core/MMKVPredef.h" || {
	echo "fetch-mmkv: $core is not MMKV $MMKV_VERSION" >&2
	exit 1
}

echo "fetch-mmkv: building MMKV $MMKV_VERSION core in $DIR/build"
cmake -S "$core" -B "$DIR/build" -DCMAKE_BUILD_TYPE=Release >"$DIR/cmake.log" 2>&1 || {
	tail -20 "$DIR/cmake.log" >&2; exit 1; }
make -C "$DIR/build" -j"$(nproc)" core >"$DIR/make.log" 2>&1 || {
	tail -20 "$DIR/make.log" >&2; exit 1; }

echo "fetch-mmkv: ok: $DIR/build/libcore.a (headers: $core)"
