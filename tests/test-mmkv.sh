#!/bin/sh
# SPDX-License-Identifier: MIT
#
# `ashm kv STORE import-mmkv` and `export-mmkv` against real MMKV v1.3.3:
#  1. MMKV (tests/mmkv-peer.cpp) writes a store of every type, with
#     overwrites, a deletion and enough keys to grow and rewrite the file;
#     import reads every value back through `ashm kv get`; export writes
#     it out again and MMKV reads every value, appends to the file, and
#     import takes the result back.
#  2. What MMKV would get wrong silently is said: a flipped byte (the last
#     confirmed state is used, and the loss stated), a truncated file, a
#     missing .crc, garbage, an encrypted store, expired keys.
#  3. The codec's corners, on files crafted here (python3): meta versions
#     below 3 and above 5, empty-key records, deletions, 10-byte varints,
#     the guessing rule; and export's bytes, checked one by one.
# Prints TAP. Needs ASHM_BUILD_ROOT and ASHM_SOURCE_ROOT; ASHM_MMKV_PEER
# names the peer (tests/meson.build builds it with -Dmmkv_dir), or is
# empty: part 1 and the MMKV cases of part 2 are then skipped.
set -eu

: "${ASHM_BUILD_ROOT:?ASHM_BUILD_ROOT must name the build directory}"
: "${ASHM_SOURCE_ROOT:?ASHM_SOURCE_ROOT must name the source directory}"
ashm=${ASHM_CLI:-$ASHM_BUILD_ROOT/src/cli/ashm}
peer=${ASHM_MMKV_PEER:-}
TAP_NAME=mmkv
. "$ASHM_SOURCE_ROOT/tests/tap.sh"

# run NAME COMMAND...: stdout to $tmp/NAME.out, stderr to $tmp/NAME.err,
# the exit status in $rc.
run() {
        name=$1
        shift
        rc=0
        "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" || rc=$?
}

# expect DESCRIPTION STATUS [PATTERN...]: the last run exited with STATUS
# and its stderr holds each PATTERN (fixed strings).
expect() {
        desc=$1
        want=$2
        shift 2
        why=
        [ "$rc" -eq "$want" ] || why="exit status $rc, expected $want"
        for p in "$@"; do
                grep -qF -- "$p" "$tmp/$name.err" || why="${why:+$why; }stderr lacks: $p"
        done
        if [ -z "$why" ]; then
                ok "$desc"
        else
                not_ok "$desc"
                echo "# $why"
                diag "$tmp/$name.err"
                diag "$tmp/$name.out"
        fi
}

# same DESCRIPTION EXPECTED ACTUAL: two files hold the same lines.
same() {
        if diff "$2" "$3" >"$tmp/diff" 2>&1; then
                ok "$1"
        else
                not_ok "$1"
                diag "$tmp/diff"
        fi
}

# u32 FILE OFFSET: the little-endian u32 at OFFSET.
u32() {
        od -An -tu4 -j"$2" -N4 "$1" | tr -d ' '
}

# flip FILE OFFSET: invert the byte at OFFSET.
flip() {
        b=$(od -An -tu1 -j"$2" -N1 "$1" | tr -d ' ')
        # shellcheck disable=SC2059 # the format is the octal escape
        printf "\\$(printf '%03o' $((255 - b)))" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}

# hints FILE: --type KEY=TYPE for each line KEY<TAB>TYPE<TAB>VALUE.
hints() {
        awk -F'\t' '{ printf "--type\n%s=%s\n", $1, $2 }' "$1"
}

# ---------------------------------------------------------------------
# 1. Real MMKV writes, ashm imports; ashm exports, real MMKV reads
# ---------------------------------------------------------------------
mmkv=$tmp/mmkv
mkdir -p "$mmkv"
if [ -z "$peer" ]; then
        skip "MMKV interop" "no MMKV peer: configure with -Dmmkv_dir=DIR after scripts/fetch-mmkv.sh DIR"
elif ! "$peer" write "$mmkv" app >"$tmp/written" 2>"$tmp/peer.err"; then
        not_ok "real MMKV writes a store"
        diag "$tmp/peer.err"
        peer=
else
        nkeys=$(wc -l <"$tmp/written")
        size=$(wc -c <"$mmkv/app")
        seq=$(u32 "$mmkv/app.crc" 8)
        if [ "$size" -gt 4096 ] && [ "$seq" -gt 1 ]; then
                ok "real MMKV wrote $nkeys keys of every type; it grew the file to $size bytes and rewrote it $seq times"
        else
                not_ok "real MMKV grew and rewrote its file (size $size, sequence $seq)"
        fi

        # Every key with its type: the store gets exactly what MMKV holds.
        store=$tmp/app.kv
        hints "$tmp/written" >"$tmp/hints"
        # shellcheck disable=SC2046 # one argument per line; keys hold no blanks
        run import "$ashm" kv "$store" import-mmkv "$mmkv/app" $(cat "$tmp/hints")
        expect "import-mmkv with a --type for each key" 0
        if grep -qx "imported $nkeys keys from $mmkv/app" "$tmp/import.out"; then
                ok "import says it imported $nkeys keys"
        else
                not_ok "import says it imported $nkeys keys"
                diag "$tmp/import.out"
        fi
        run count "$ashm" kv "$store" count
        if [ "$(cat "$tmp/count.out")" = "$nkeys" ]; then
                ok "the store holds $nkeys keys: the deleted one is gone"
        else
                not_ok "the store holds $nkeys keys"
                diag "$tmp/count.out" "$tmp/count.err"
        fi

        : >"$tmp/got"
        while IFS="$(printf '\t')" read -r key type _; do
                printf '%s\t%s\t%s\n' "$key" "$type" "$("$ashm" kv "$store" get "$key" 2>&1 </dev/null)" >>"$tmp/got"
        done <"$tmp/written"
        same "ashm kv get reads back every value MMKV wrote (bool, int32 incl. negatives, int64, uint64, float, double, strings, bytes, empty ones)" \
                "$tmp/written" "$tmp/got"
        run gone "$ashm" kv "$store" get gone
        expect "the key MMKV deleted is not imported" 1

        # Export, and MMKV reads it all back.
        run export "$ashm" kv "$store" export-mmkv "$mmkv/back"
        expect "export-mmkv" 0
        dsize=$(wc -c <"$mmkv/back")
        msize=$(wc -c <"$mmkv/back.crc")
        if [ $((dsize % 4096)) -eq 0 ] && [ "$msize" -eq 4096 ] &&
                [ "$(u32 "$mmkv/back" 0)" = "$(u32 "$mmkv/back.crc" 28)" ] && [ "$(u32 "$mmkv/back.crc" 4)" = 4 ]; then
                ok "export wrote whole pages ($dsize + $msize bytes), meta version 4, the size in both files"
        else
                not_ok "export wrote whole pages, meta version 4, the size in both files"
                od -An -tx1 -N112 "$mmkv/back.crc" | diag
        fi
        awk -F'\t' '{ print $1 "=" $2 }' "$tmp/written" >"$tmp/keytypes"
        # shellcheck disable=SC2046
        run peer-read "$peer" read "$mmkv" back $(cat "$tmp/keytypes")
        expect "real MMKV opens the exported store" 0
        same "real MMKV reads back every value of the exported store" "$tmp/written" "$tmp/peer-read.out"
        run keys "$peer" keys "$mmkv" back
        if [ "$(head -n1 "$tmp/keys.out")" = "$nkeys" ]; then
                ok "real MMKV counts $nkeys keys in the exported store"
        else
                not_ok "real MMKV counts $nkeys keys in the exported store"
                head -n1 "$tmp/keys.out" | diag
        fi

        # MMKV writes on in the exported file (append, grow), and import
        # takes the result back.
        run set "$peer" set "$mmkv" back added string "written by MMKV after the export"
        run set2 "$peer" set "$mmkv" back s_hello string "changed by MMKV"
        run readback "$peer" read "$mmkv" back added=string s_hello=string i32_neg=int32 fill_399=string
        if [ "$rc" -eq 0 ] && grep -q '^added	string	written by MMKV' "$tmp/readback.out" &&
                grep -q '^s_hello	string	changed by MMKV$' "$tmp/readback.out" &&
                grep -q '^i32_neg	int32	-42$' "$tmp/readback.out"; then
                ok "real MMKV writes on in the exported store, in another process"
        else
                not_ok "real MMKV writes on in the exported store"
                diag "$tmp/readback.out" "$tmp/readback.err"
        fi
        # shellcheck disable=SC2046
        run reimport "$ashm" kv "$tmp/again.kv" import-mmkv "$mmkv/back" $(cat "$tmp/hints") --type added=string
        expect "import-mmkv takes back the store that MMKV wrote on" 0
        if [ "$("$ashm" kv "$tmp/again.kv" get added 2>&1)" = "written by MMKV after the export" ] &&
                [ "$("$ashm" kv "$tmp/again.kv" get s_hello 2>&1)" = "changed by MMKV" ] &&
                [ "$("$ashm" kv "$tmp/again.kv" count 2>&1)" = $((nkeys + 1)) ]; then
                ok "... with MMKV's new key, its change, and every other key"
        else
                not_ok "... with MMKV's new key, its change, and every other key"
                diag "$tmp/reimport.err"
        fi

        # Guessing: no --type at all.
        run guess "$ashm" kv "$tmp/guess.kv" import-mmkv "$mmkv/app"
        expect "import-mmkv guesses every type and says so per key, with its reason" 0 \
                "guessed --type bool_true=bool" "guessed --type i32_small=int32" "guessed --type i32_pos=int32" \
                "guessed --type i32_neg=int32: a 10-byte varint, -42, as protobuf writes a negative int32" \
                "guessed --type i64_big=int64" "guessed --type i64_neg=int64" "guessed --type f_pi=float" \
                "guessed --type f_tenth=float" "guessed --type d_e=double" "guessed --type s_hello=string" \
                "guessed --type s_utf8=string" "guessed --type b_bin=bytes" "guessed --type ow=string" \
                "guessed $nkeys of $nkeys types: check them"
        expect "guessing says where MMKV's encoding is ambiguous (int32 0 and \"\" look like bool false)" 0 \
                "guessed --type i32_zero=bool: one byte 00: an int32 0 or an empty string looks the same" \
                "guessed --type s_empty=bool"
        if grep -q "imported $nkeys keys from .*, $nkeys types guessed" "$tmp/guess.out" &&
                [ "$("$ashm" kv "$tmp/guess.kv" get f_tenth 2>&1)" = 0.1 ] &&
                [ "$("$ashm" kv "$tmp/guess.kv" get i64_big 2>&1)" = 1700000000123 ]; then
                ok "guessed values read back (f_tenth 0.1, i64_big 1700000000123)"
        else
                not_ok "guessed values read back"
                diag "$tmp/guess.out"
        fi
        # A wrong guess still keeps the bytes: MMKV encodes int32 0, false
        # and "" alike, and a uint64 past 2^63 as the int32 of its low
        # bits, so what export writes back reads as the original types.
        run guess-export "$ashm" kv "$tmp/guess.kv" export-mmkv "$mmkv/guessed"
        # shellcheck disable=SC2046
        run guess-read "$peer" read "$mmkv" guessed $(cat "$tmp/keytypes")
        same "MMKV reads every value with its original type from an export of the guessed store" \
                "$tmp/written" "$tmp/guess-read.out"
        run dry "$ashm" kv "$tmp/never.kv" import-mmkv "$mmkv/app" --default-type raw --dry-run
        if [ "$rc" -eq 0 ] && [ ! -e "$tmp/never.kv" ] && grep -q '^i32_neg	raw	d6ffffffffffffffff01$' "$tmp/dry.out"; then
                ok "--dry-run --default-type raw lists the raw bytes and creates no store"
        else
                not_ok "--dry-run --default-type raw lists the raw bytes and creates no store"
                diag "$tmp/dry.err"
        fi
fi

# ---------------------------------------------------------------------
# 2. Damage, said out loud
# ---------------------------------------------------------------------
if [ -n "$peer" ]; then
        actual=$(u32 "$mmkv/app.crc" 28)
        last=$(u32 "$mmkv/app.crc" 32)

        # A byte flipped after the last full write-back: the checksum
        # fails, lastConfirmed checks, and the loss is stated.
        cp "$mmkv/app" "$mmkv/late"
        cp "$mmkv/app.crc" "$mmkv/late.crc"
        flip "$mmkv/late" $((4 + last + 8))
        run late "$ashm" kv "$tmp/late.kv" import-mmkv "$mmkv/late" --default-type raw
        expect "a flipped byte after the last full write-back: the last confirmed state is used, and said" 0 \
                "checksum mismatch over the $actual bytes" "Using the last confirmed state instead" \
                "its $last bytes check" "The $((actual - last)) bytes after them are ignored"

        # A byte flipped before it: nothing checks; import stops, --force
        # goes as far as the records look intact.
        cp "$mmkv/app" "$mmkv/early"
        cp "$mmkv/app.crc" "$mmkv/early.crc"
        flip "$mmkv/early" 200
        run early "$ashm" kv "$tmp/early.kv" import-mmkv "$mmkv/early" --default-type raw
        expect "a flipped byte before it: a clear error, nothing imported" 1 \
                "checksum mismatch" "do not match its CRC-32 either" "MMKV would discard the whole store here" \
                "--force imports"
        if [ "$("$ashm" kv "$tmp/early.kv" count 2>/dev/null || echo 0)" = 0 ]; then
                ok "... and the store stays empty"
        else
                not_ok "... and the store stays empty"
        fi
        run early-force "$ashm" kv "$tmp/early.kv" import-mmkv "$mmkv/early" --default-type raw --force
        expect "--force imports the records before the damage, unverified, and says what it ignored" 0 \
                "--force: checksum mismatch" "the records look intact up to body offset" "are ignored"

        head -c 20000 "$mmkv/app" >"$mmkv/short"
        cp "$mmkv/app.crc" "$mmkv/short.crc"
        run short "$ashm" kv "$tmp/short.kv" import-mmkv "$mmkv/short" --default-type raw
        expect "a truncated data file: a clear error" 1 \
                "but the data file holds only 19996 bytes after its header, and is not whole pages: truncated?" \
                "lie past the end too"
        run short-force "$ashm" kv "$tmp/short.kv" import-mmkv "$mmkv/short" --default-type raw --force
        expect "--force on a truncated file imports the records it holds whole" 0 "--force" "are ignored"

        cp "$mmkv/app" "$mmkv/nometa"
        run nometa "$ashm" kv "$tmp/nometa.kv" import-mmkv "$mmkv/nometa"
        expect "a missing .crc: a clear error" 1 "nometa.crc: No such file or directory" "cannot be verified"
        run nometa-force "$ashm" kv "$tmp/nometa.kv" import-mmkv "$mmkv/nometa" --default-type raw --force
        expect "--force without .crc imports, saying it is unverified" 0 "unverified"

        "$peer" write-crypt "$mmkv" secret 'a key of 16 bytes' >/dev/null 2>&1
        run crypt "$ashm" kv "$tmp/crypt.kv" import-mmkv "$mmkv/secret"
        expect "an encrypted store is refused, and said so" 1 "looks encrypted" "cannot decrypt"
        run crypt-force "$ashm" kv "$tmp/crypt.kv" import-mmkv "$mmkv/secret" --force
        expect "... even with --force" 1 "looks encrypted"

        "$peer" write-expire "$mmkv" expiring >/dev/null 2>&1
        run expire "$ashm" kv "$tmp/expire.kv" import-mmkv "$mmkv/expiring"
        expect "key expiration: each value's expiry time is dropped, the expired key left out and named" 0 \
                "key expiration is on" "'expiring' expired" "guessed --type keep_int=int32"
        if [ "$("$ashm" kv "$tmp/expire.kv" get keep_string 2>&1)" = stays ] &&
                [ "$("$ashm" kv "$tmp/expire.kv" get keep_int 2>&1)" = -7 ] &&
                [ "$("$ashm" kv "$tmp/expire.kv" count 2>&1)" = 2 ]; then
                ok "... and the keys that had not expired read back"
        else
                not_ok "... and the keys that had not expired read back"
                diag "$tmp/expire.err"
        fi
else
        skip "damage cases on stores real MMKV wrote" "no MMKV peer"
fi

yes 'not an MMKV store' | head -c 8192 >"$mmkv/garbage"
yes 'nor its meta' | head -c 4096 >"$mmkv/garbage.crc"
run garbage "$ashm" kv "$tmp/garbage.kv" import-mmkv "$mmkv/garbage"
expect "garbage: a clear error" 1 "checksum mismatch" "MMKV would discard the whole store here"
run garbage-force "$ashm" kv "$tmp/garbage.kv" import-mmkv "$mmkv/garbage" --force
expect "garbage with --force: nothing decodes, and that is an error too" 1 "nothing in"
: >"$mmkv/empty"
run empty "$ashm" kv "$tmp/garbage.kv" import-mmkv "$mmkv/empty"
expect "an empty data file: a clear error" 1 "not an MMKV data file: 0 bytes"
run missing "$ashm" kv "$tmp/garbage.kv" import-mmkv "$mmkv/no-such-store"
expect "no data file: a clear error" 1 "cannot open $mmkv/no-such-store: No such file or directory"
run usage "$ashm" kv "$tmp/garbage.kv" import-mmkv "$mmkv/garbage" --type nokey
expect "--type without =TYPE is a usage error" 2 "--type takes KEY=TYPE"
run usage2 "$ashm" kv "$tmp/garbage.kv" import-mmkv "$mmkv/garbage" --default-type int8
expect "an unknown --default-type is a usage error" 2 "--default-type takes"

# ---------------------------------------------------------------------
# 3. The codec's corners, on crafted files
# ---------------------------------------------------------------------
if ! command -v python3 >/dev/null 2>&1; then
        skip "crafted MMKV files" "python3 is not installed"
        echo "1..$n"
        [ "$failed" -eq 0 ]
        exit
fi
craft=$tmp/craft
mkdir -p "$craft"
python3 - "$craft" <<'EOF'
import os, struct, sys, zlib

d = sys.argv[1]
HOLDER = b"\xff\xff\xff\x07"

def varint(v):
    v &= (1 << 64) - 1
    out = b""
    while v >= 0x80:
        out += bytes([v & 0x7F | 0x80])
        v >>= 7
    return out + bytes([v])

def rec(k, v):
    k = k.encode()
    return varint(len(k)) + k + varint(len(v)) + v

def s(x):
    x = x.encode() if isinstance(x, str) else x
    return varint(len(x)) + x

def write(name, body, version=4, meta_size=None, header=None, crc=None, last=None, flags=0, iv=bytes(16)):
    size = len(body)
    data = struct.pack("<I", size if header is None else header) + body
    data += bytes(-len(data) % 4096 or (4096 if not data else 0))
    crc = zlib.crc32(body) if crc is None else crc
    last_size, last_crc = last if last else (size, zlib.crc32(body))
    meta = struct.pack("<III16sIII64xQ", crc, version, 1, iv, size if meta_size is None else meta_size,
                       last_size, last_crc, flags)
    open(os.path.join(d, name), "wb").write(data)
    open(os.path.join(d, name + ".crc"), "wb").write(meta + bytes(4096 - len(meta)))

edge = HOLDER + b"".join([
    rec("neg", varint(-1)),                       # int32 -1: 10 bytes
    rec("u32", varint(0xFFFFFFFF)),               # set(uint32_t) 4294967295: 5 bytes
    b"\x00",                                      # an empty key: MMKV skips the byte
    rec("gone", varint(1)), rec("gone", b""),     # set, then removed
    rec("last", s("first")), rec("last", s("second")),
    rec("vec", s(s("a") + s("bc"))),              # vector<string>{"a", "bc"}
    rec("ctrl", s("a\x07b")),
    rec("junk", b"\xff\xff"),
    rec("tab", s("a\tb\n")),
    rec("f32", struct.pack("<f", 0.1)),
    rec("f64", struct.pack("<d", 2.5e-3)),
    rec("i7", varint(7)),
])
write("edge", edge)
old = HOLDER + rec("old", s("format"))
write("v2", old, version=2, meta_size=0, last=(0, 0))
write("v2bad", old, version=2, meta_size=0, header=len(old) - 1, last=(0, 0))
write("v7", old, version=7, flags=1)
write("head", old, meta_size=len(old) - 2)            # the data file's own size checks
write("lastempty", old, crc=12345, last=(0, 0))
write("iv", old, iv=bytes(range(1, 17)))              # plain, with an IV (after clearAll())
write("empty", b"", last=(0, 0))
write("holder1", b"\x0a" + rec("h", varint(1)))       # a 1-byte item-size holder
expire = HOLDER + rec("keep", s("x") + struct.pack("<I", 0)) + rec("old", varint(5) + struct.pack("<I", 1))
write("expire", expire, flags=1)
EOF

run edge "$ashm" kv "$tmp/x.kv" import-mmkv "$craft/edge" --dry-run
cat >"$tmp/want" <<'EOF'
ctrl	bytes	610762
f32	float	0.1
f64	double	0.0025
i7	int32	7
junk	raw	ffff
last	string	second
neg	int32	-1
tab	string	a\x09b\x0a
u32	int64	4294967295
vec	bytes	0161026263
EOF
expect "crafted: empty-key records skipped, deletions and overwrites settled, every guess said" 0 \
        "guessed --type neg=int32: a 10-byte varint, -1" "guessed --type u32=int64: a 5-byte varint, 4294967295" \
        "guessed --type vec=bytes" "guessed --type ctrl=bytes" "guessed --type junk=raw: no MMKV encoding fits" \
        "guessed --type tab=string" "guessed --type f32=float" "guessed --type f64=double"
same "crafted: --dry-run prints each key, its guessed type and value" "$tmp/want" "$tmp/edge.out"

run hinted "$ashm" kv "$tmp/x.kv" import-mmkv "$craft/edge" --dry-run --type u32=int32 --type neg=uint64 \
        --type neg=int64 --type vec=raw --type nosuch=bool
grep -v -e '^ctrl' -e '^f32' -e '^f64' -e '^i7' -e '^junk' -e '^last' -e '^tab' "$tmp/hinted.out" >"$tmp/hinted.got" || true
printf 'neg\tint64\t-1\nu32\tint32\t-1\nvec\traw\t050161026263\n' >"$tmp/want"
expect "crafted: --type wins over guessing (the last one per key); an unused --type is warned of" 0 \
        "warning: --type nosuch=bool: no such key"
same "crafted: a uint32 read as int32 is -1, as MMKV's getInt32() says; raw keeps the length prefix" \
        "$tmp/want" "$tmp/hinted.got"

run wrong "$ashm" kv "$tmp/wrong.kv" import-mmkv "$craft/edge" --type last=int32 --type f32=double
expect "crafted: a --type the value cannot be is an error naming the key and the bytes; nothing imported" 1 \
        "'last' is not an MMKV int32: a varint followed by more bytes (7 bytes: 067365636f6e64)" \
        "'f32' is not an MMKV double: not 8 bytes" "2 problems: nothing imported"

for f in v2 v7 head iv holder1; do
        run "$f" "$ashm" kv "$tmp/$f.kv" import-mmkv "$craft/$f" --dry-run
        case $f in
        v2) desc="meta version 2: the size comes from the data file's header" ;;
        v7) desc="meta version 7: read as version 3 with no flags, as v1.3.3 does, and said" ;;
        head) desc="the meta's size fails but the data file's own size checks: used, and said" ;;
        iv) desc="a plain store whose meta holds an IV (clearAll() writes one) is not taken for encrypted" ;;
        holder1) desc="a 1-byte item-size holder decodes" ;;
        esac
        if [ "$rc" -eq 0 ] && [ -s "$tmp/$f.out" ]; then
                ok "crafted: $desc"
        else
                not_ok "crafted: $desc"
                diag "$tmp/$f.err"
        fi
done
if grep -q "meta version 7" "$tmp/v7.err" && grep -q "own header names match it" "$tmp/head.err" &&
        grep -qx 'old	string	format' "$tmp/v2.out"; then
        ok "crafted: ... with the messages and values expected"
else
        not_ok "crafted: ... with the messages and values expected"
        diag "$tmp/v7.err" "$tmp/head.err" "$tmp/v2.out"
fi
run v2bad "$ashm" kv "$tmp/x.kv" import-mmkv "$craft/v2bad" --dry-run
expect "crafted: meta version 2 with a bad size: no fallback, as in MMKV" 1 \
        "a version 2 meta keeps no last confirmed state"
run lastempty "$ashm" kv "$tmp/x.kv" import-mmkv "$craft/lastempty" --dry-run
expect "crafted: a last confirmed state that is the empty store is not silently used" 1 \
        "the last confirmed state is the empty store"
run empty "$ashm" kv "$tmp/empty.kv" import-mmkv "$craft/empty"
expect "crafted: an empty MMKV store imports nothing, fine" 0
run empty-export "$ashm" kv "$tmp/empty.kv" export-mmkv "$craft/empty-back"
if [ "$rc" -eq 0 ] && [ "$(u32 "$craft/empty-back" 0)" = 4 ] && [ "$(u32 "$craft/empty-back.crc" 28)" = 4 ] &&
        { [ -z "$peer" ] || [ "$("$peer" keys "$craft" empty-back 2>&1)" = 0 ]; }; then
        ok "an empty store exports as the item-size holder alone${peer:+, which real MMKV opens as 0 keys}"
else
        not_ok "an empty store exports as the item-size holder alone"
        diag "$tmp/empty-export.err"
fi
run expire "$ashm" kv "$tmp/x.kv" import-mmkv "$craft/expire" --dry-run
if [ "$rc" -eq 0 ] && grep -qx 'keep	string	x' "$tmp/expire.out" && ! grep -q '^old' "$tmp/expire.out" &&
        grep -q "'old' expired" "$tmp/expire.err"; then
        ok "crafted: key expiration: the expiry time stripped, the expired key left out and named"
else
        not_ok "crafted: key expiration"
        diag "$tmp/expire.err" "$tmp/expire.out"
fi

# Export's bytes, one by one, against what MMKV v1.3.3 writes.
enc=$tmp/enc.kv
for kv in "b bool true" "i int32 -1" "j int32 300" "l int64 -2" "u uint64 18446744073709551615" \
        "f float 1.5" "d double -0.125" "s string hé" "e string" "x bytes" "y bytes 00ff"; do
        # shellcheck disable=SC2086 # KEY TYPE [VALUE]
        set -- $kv
        "$ashm" kv "$enc" set --type "$2" -- "$1" "${3:-}" >/dev/null
done
run enc-export "$ashm" kv "$enc" export-mmkv "$craft/enc"
python3 - "$craft/enc" >"$tmp/enc.check" 2>&1 <<'EOF' && rc=0 || rc=$?
import struct, sys, zlib
path = sys.argv[1]
data, meta = open(path, "rb").read(), open(path + ".crc", "rb").read()
def varint(v):
    v &= (1 << 64) - 1
    out = b""
    while v >= 0x80:
        out += bytes([v & 0x7F | 0x80]); v >>= 7
    return out + bytes([v])
def rec(k, v):
    return varint(len(k)) + k.encode() + varint(len(v)) + v
body = b"\xff\xff\xff\x07" + b"".join([
    rec("b", b"\x01"),
    rec("d", struct.pack("<d", -0.125)),
    rec("e", b"\x00"),
    rec("f", struct.pack("<f", 1.5)),
    rec("i", bytes.fromhex("ffffffffffffffffff01")),
    rec("j", bytes.fromhex("ac02")),
    rec("l", bytes.fromhex("feffffffffffffffff01")),
    rec("s", bytes.fromhex("0368c3a9")),
    rec("u", bytes.fromhex("ffffffffffffffffff01")),
    rec("x", b"\x00"),
    rec("y", bytes.fromhex("0200ff")),
])
size = len(body)
problems = []
if len(data) != 4096: problems.append("data file is %d bytes, not one page" % len(data))
if len(meta) != 4096: problems.append(".crc is %d bytes, not one page" % len(meta))
if data[4:4 + size] != body: problems.append("body %s, want %s" % (data[4:4 + size].hex(), body.hex()))
if any(data[4 + size:]): problems.append("bytes past the body are not zero")
if struct.unpack_from("<I", data) != (size,): problems.append("data header is not the size")
crc, version, seq = struct.unpack_from("<III", meta)
iv = meta[12:28]
actual, last_size, last_crc = struct.unpack_from("<III", meta, 28)
flags, = struct.unpack_from("<Q", meta, 104)
if crc != zlib.crc32(body): problems.append("crc %08x, zlib says %08x" % (crc, zlib.crc32(body)))
if version != 4 or seq < 1 or any(iv) or flags: problems.append("version %d seq %d iv %s flags %d" % (version, seq, iv.hex(), flags))
if (actual, last_size, last_crc) != (size, size, crc): problems.append("sizes %d %d %08x" % (actual, last_size, last_crc))
print("\n".join(problems) or "ok")
sys.exit(1 if problems else 0)
EOF
if [ "$rc" -eq 0 ]; then
        ok "export encodes every type as MMKV does (negative int32/int64 in 10 bytes, length-prefixed strings and bytes, empty ones as 00), with zlib's CRC-32 and lastConfirmed set"
else
        not_ok "export encodes every type as MMKV does"
        diag "$tmp/enc.check" "$tmp/enc-export.err"
fi
run enc-import "$ashm" kv "$tmp/enc2.kv" import-mmkv "$craft/enc" --dry-run --type b=bool --type i=int32 \
        --type j=int32 --type l=int64 --type u=uint64 --type f=float --type d=double --type s=string --type e=string \
        --type x=bytes --type y=bytes
cat >"$tmp/want" <<'EOF'
b	bool	true
d	double	-0.125
e	string	
f	float	1.5
i	int32	-1
j	int32	300
l	int64	-2
s	string	hé
u	uint64	18446744073709551615
x	bytes	
y	bytes	00ff
EOF
same "import reads back what export wrote, every type" "$tmp/want" "$tmp/enc-import.out"

echo "1..$n"
[ "$failed" -eq 0 ]
