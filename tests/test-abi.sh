#!/bin/sh
# SPDX-License-Identifier: MIT
#
# libashm's ABI, checked the way libwayland checks its own (nm -D against
# the list): the library exports exactly the symbols of the version script
# src/libashm/libashm.sym, each under its version node; the soname is
# libashm.so.0; every function declared in a public header is in the
# script and the other way round; and -fvisibility=hidden plus _public_
# mark the same set the script lists. Prints TAP. Needs ASHM_BUILD_ROOT
# and ASHM_SOURCE_ROOT (tests/meson.build sets both).
set -eu

: "${ASHM_BUILD_ROOT:?ASHM_BUILD_ROOT must name the build directory}"
: "${ASHM_SOURCE_ROOT:?ASHM_SOURCE_ROOT must name the source directory}"

sym_file=$ASHM_SOURCE_ROOT/src/libashm/libashm.sym
lib_dir=$ASHM_BUILD_ROOT/src/libashm
TAP_NAME=abi
. "$ASHM_SOURCE_ROOT/tests/tap.sh"
# expect_empty DESCRIPTION FILE: ok if FILE is empty, else list it.
expect_empty() {
        if [ -s "$2" ]; then
                not_ok "$1"
                diag "$2"
        else
                ok "$1"
        fi
}

for tool in nm readelf; do
        if ! command -v "$tool" >/dev/null 2>&1; then
                echo "1..0 # SKIP $tool (binutils) is not installed"
                exit 0
        fi
done

# ---------------------------------------------------------------------
# The library file and its soname
# ---------------------------------------------------------------------
lib=$(readlink -f "$lib_dir/libashm.so.0" 2>/dev/null || true)
if [ -L "$lib_dir/libashm.so.0" ] && [ -f "$lib" ]; then
        ok "src/libashm/libashm.so.0 is a symlink to $(basename "$lib")"
else
        not_ok "src/libashm/libashm.so.0 is a symlink to the library"
        find "$lib_dir" -maxdepth 1 -name 'libashm*' 2>&1 | diag
        echo "1..$n"
        exit 1
fi
case $(basename "$lib") in
libashm.so.0.*) ok "the library file is named libashm.so.0.<minor>.<patch>: $(basename "$lib")" ;;
*) not_ok "the library file is named libashm.so.0.<minor>.<patch>: $(basename "$lib")" ;;
esac
if readelf -d "$lib" | grep -q '(SONAME).*\[libashm\.so\.0\]$'; then
        ok "SONAME is libashm.so.0"
else
        not_ok "SONAME is libashm.so.0"
        readelf -d "$lib" | grep SONAME | diag
fi
if [ "$(readlink -f "$lib_dir/libashm.so")" = "$lib" ]; then
        ok "src/libashm/libashm.so (the link-time name) points to the same library"
else
        not_ok "src/libashm/libashm.so (the link-time name) points to the same library"
fi

# ---------------------------------------------------------------------
# The version script: "name node" for every global symbol
# ---------------------------------------------------------------------
# Handles several nodes (LIBASHM_0.2 { global: ... } LIBASHM_0.1;) and
# comments (/* */ on their own lines, # and //).
awk '
        { sub(/#.*/, ""); sub(/\/\/.*/, "") }
        /\/\*/ { in_comment = 1 }
        in_comment { if ($0 ~ /\*\//) in_comment = 0; next }
        /^[ \t]*[A-Za-z_][A-Za-z0-9_.]*[ \t]*\{/ { node = $1; sub(/\{.*/, "", node); section = ""; next }
        /global:/ { section = "global"; sub(/.*global:/, "") }
        /local:/ { section = "local"; sub(/.*local:/, "") }
        /^[ \t]*\}/ { node = ""; section = ""; next }
        section == "global" {
                gsub(/[ \t;]/, " ")
                for (i = 1; i <= NF; i++) print $i, node
        }
' "$sym_file" | sort -u >"$tmp/script"
cut -d' ' -f1 "$tmp/script" | sort -u >"$tmp/script-names"

if [ -s "$tmp/script" ]; then
        ok "libashm.sym lists $(wc -l <"$tmp/script") global symbols"
else
        not_ok "libashm.sym lists global symbols"
fi
if tr -s ' \t\n' ' ' <"$sym_file" | grep -q 'local: \*; *}'; then
        ok "libashm.sym hides everything else with local: *;"
else
        not_ok "libashm.sym hides everything else with local: *;"
fi
sed -n 's/^[[:space:]]*\(LIBASHM_[0-9.]*\)[[:space:]]*{.*/\1/p' "$sym_file" >"$tmp/nodes"
if [ "$(head -n1 "$tmp/nodes")" = LIBASHM_0.1 ]; then
        ok "the first version node is LIBASHM_0.1"
else
        not_ok "the first version node is LIBASHM_0.1"
        diag "$tmp/nodes"
fi
cut -d' ' -f2 "$tmp/script" | grep -v '^LIBASHM_[0-9]*\.[0-9]*$' >"$tmp/bad-nodes" || true
expect_empty "every global symbol of libashm.sym sits in a LIBASHM_x.y node" "$tmp/bad-nodes"

# ---------------------------------------------------------------------
# What the library exports: nm -D
# ---------------------------------------------------------------------
# "name@@node" for definitions; the version nodes show as absolute (A)
# symbols named after themselves.
nm -D --defined-only "$lib" >"$tmp/nm"
awk '$2 != "A" { print $3 }' "$tmp/nm" | sort -u >"$tmp/exported"
awk '$2 == "A" { print $3 }' "$tmp/nm" | sort -u >"$tmp/exported-nodes"
sed 's/@.*//' "$tmp/exported" | sort -u >"$tmp/exported-names"

comm -23 "$tmp/exported-names" "$tmp/script-names" >"$tmp/extra"
expect_empty "the library exports nothing that libashm.sym does not list" "$tmp/extra"
comm -13 "$tmp/exported-names" "$tmp/script-names" >"$tmp/missing"
expect_empty "the library exports everything libashm.sym lists" "$tmp/missing"

# Default versions (@@) of exactly the node the script puts them in.
awk '{ print $1 "@@" $2 }' "$tmp/script" | sort -u >"$tmp/want-versioned"
comm -3 "$tmp/exported" "$tmp/want-versioned" >"$tmp/version-diff"
expect_empty "every exported symbol carries its node's version (name@@LIBASHM_0.1)" "$tmp/version-diff"
cut -d' ' -f2 "$tmp/script" | sort -u >"$tmp/script-nodes"
if cmp -s "$tmp/exported-nodes" "$tmp/script-nodes"; then
        ok "the library defines the version nodes $(tr '\n' ' ' <"$tmp/script-nodes" | sed 's/ $//')"
else
        not_ok "the library defines exactly the version nodes of libashm.sym"
        diag "$tmp/exported-nodes"
fi
# Only functions are exported: data would tie the ABI to a layout.
awk '$2 != "A" && $2 != "T" { print }' "$tmp/nm" >"$tmp/not-text"
expect_empty "every exported symbol is a function" "$tmp/not-text"

# ---------------------------------------------------------------------
# The public headers against the script
# ---------------------------------------------------------------------
# Declarations start in column 0 with a lower-case type (int, const,
# size_t, void...) and name a function; doc comments start with " *".
: >"$tmp/declared-by"
for h in $(cd "$ASHM_SOURCE_ROOT/include" && find . -name '*.h' | sed 's|^\./||' | sort); do
        # Function types (typedef int ashm_kv_foreach_fn(...)) are no symbols.
        grep -E '^[a-z].*\b(ashm_|ashmem_|ASharedMemory_)[A-Za-z0-9_]*\(' "$ASHM_SOURCE_ROOT/include/$h" |
                grep -v '^typedef ' |
                grep -oE '\b(ashm_|ashmem_|ASharedMemory_)[A-Za-z0-9_]*\(' |
                sed "s|($| include/$h|" >>"$tmp/declared-by" || true
done
sort -u "$tmp/declared-by" -o "$tmp/declared-by"
cut -d' ' -f1 "$tmp/declared-by" | sort -u >"$tmp/declared"

if [ -s "$tmp/declared" ]; then
        ok "the public headers declare $(wc -l <"$tmp/declared") functions"
else
        not_ok "the public headers declare functions (none found by the parser)"
fi
while read -r name header; do
        version=$(awk -v n="$name" '$1 == n { print $2 }' "$tmp/script")
        if [ -z "$version" ]; then
                not_ok "$name ($header) is listed in libashm.sym"
        elif grep -qx "$name@@$version" "$tmp/exported"; then
                ok "$name ($header) is exported as $name@@$version"
        else
                not_ok "$name ($header) is exported as $name@@$version"
        fi
done <"$tmp/declared-by"
comm -13 "$tmp/declared" "$tmp/script-names" >"$tmp/undeclared"
expect_empty "every symbol of libashm.sym is declared in a public header" "$tmp/undeclared"

# ---------------------------------------------------------------------
# -fvisibility=hidden: the objects mark the same set public
# ---------------------------------------------------------------------
# The script hides whatever it does not list, so a function missing its
# _public_ would still be exported; the objects tell: their global
# definitions with default visibility must be exactly the script's list.
objs=$(find "$lib_dir" "$ASHM_BUILD_ROOT/src/basic" \( -path '*libashm-internal.a.p/*.o' -o -path '*libbasic*.p/*.o' \) 2>/dev/null | sort)
if [ -z "$objs" ]; then
        echo "ok $((n + 1)) - objects mark exactly libashm.sym public # SKIP no object files under $lib_dir"
        n=$((n + 1))
else
        # shellcheck disable=SC2086 # one word per object
        readelf -sW $objs |
                awk '$5 == "GLOBAL" || $5 == "WEAK" { if ($6 == "DEFAULT" && $7 != "UND") print $8 }' |
                grep -v '^__' | sort -u >"$tmp/default-vis" || true
        comm -3 "$tmp/default-vis" "$tmp/script-names" >"$tmp/vis-diff"
        if [ -s "$tmp/vis-diff" ]; then
                not_ok "the objects' default-visibility definitions are exactly libashm.sym's list"
                echo "# left: only in the objects (missing -fvisibility=hidden?); right: only in libashm.sym (missing _public_?)"
                diag "$tmp/vis-diff"
        else
                ok "the objects' default-visibility definitions are exactly libashm.sym's list"
        fi
fi

echo "1..$n"
[ "$failed" -eq 0 ]
