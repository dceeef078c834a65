/* SPDX-License-Identifier: MIT */
/* src/shared/mmkv-format.c, from bytes in memory: which body it trusts,
 * the records it returns, what it says on the way, values typed and
 * guessed, and stores it writes. The checksums come from zlib, not from
 * the module. (tests/test-mmkv.sh runs the same code against real MMKV.) */
#include <zlib.h>

#include "ashm.h"
#include "mmkv-format.h"
#include "tests.h"
#include "unaligned.h"

ASHM_SUITE(mmkv_format);

struct store {
        uint8_t data[2 * MMKV_PAGE];
        size_t len; /* of the body so far, after the 4-byte header */
        uint8_t meta[MMKV_META_LEN];
};

static size_t varint(uint8_t *p, uint64_t v) {
        size_t n = 0;

        for (; v >= 0x80; v >>= 7)
                p[n++] = (uint8_t) (v | 0x80);
        p[n++] = (uint8_t) v;
        return n;
}

static void store_init(struct store *s) {
        static const uint8_t holder[] = { 0xff, 0xff, 0xff, 0x07 };

        memset(s, 0, sizeof(*s));
        memcpy(s->data + 4, holder, sizeof(holder));
        s->len = sizeof(holder);
}

/* A record with the value exactly as MMKV stores it. */
static void put_raw(struct store *s, const char *key, const void *v, size_t len) {
        uint8_t *p = s->data + 4 + s->len;
        size_t n = varint(p, strlen(key));

        memcpy(p + n, key, strlen(key));
        n += strlen(key);
        n += varint(p + n, len);
        memcpy(p + n, v, len);
        s->len += n + len;
}

static void put_str(struct store *s, const char *key, const char *v) {
        uint8_t buf[256];
        size_t n = varint(buf, strlen(v));

        memcpy(buf + n, v, strlen(v));
        put_raw(s, key, buf, n + strlen(v));
}

static void put_int(struct store *s, const char *key, int64_t v) {
        uint8_t buf[10];

        put_raw(s, key, buf, varint(buf, (uint64_t) v));
}

static uint32_t body_crc(const struct store *s, size_t len) {
        return (uint32_t) crc32(0, s->data + 4, (uInt) len);
}

/* The meta MMKV writes after a full write-back: size and crc twice. */
static void seal(struct store *s, uint32_t version) {
        uint32_t crc = body_crc(s, s->len);

        put_le32(s->data, (uint32_t) s->len);
        put_le32(s->meta, crc);
        put_le32(s->meta + 4, version);
        put_le32(s->meta + 8, 1);
        put_le32(s->meta + 28, (uint32_t) s->len);
        put_le32(s->meta + 32, (uint32_t) s->len);
        put_le32(s->meta + 36, crc);
}

static int decode(struct store *s, bool with_meta, bool force, struct mmkv_image *img, struct mmkv_records *rs,
                  struct mmkv_notes *notes) {
        assert_ok(mmkv_image_from_bytes("app.mmkv", s->data, MMKV_PAGE, with_meta ? s->meta : NULL,
                                        with_meta ? MMKV_PAGE : 0, img, notes));
        return mmkv_decode(img, force, rs, notes);
}

static bool noted(const struct mmkv_notes *notes, const char *words) {
        for (size_t i = 0; i < notes->n; i++)
                if (strstr(notes->v[i], words))
                        return true;
        return false;
}

static void assert_record(const struct mmkv_record *r, const char *key, const char *value_hex) {
        char hex[128] = "";

        for (size_t i = 0; i < r->value_len && 2 * i + 2 < sizeof(hex); i++)
                snprintf(hex + 2 * i, 3, "%02x", r->value[i]);
        cr_assert(r->key_len == strlen(key) && memcmp(r->key, key, r->key_len) == 0, "key '%.*s', want '%s'",
                  (int) r->key_len, (const char *) r->key, key);
        cr_assert_str_eq(hex, value_hex, "the value of '%s'", key);
}

ASHM_TEST(mmkv_format, live_records_last_wins_removals_drop) {
        struct mmkv_image img;
        struct mmkv_records rs = {};
        struct mmkv_notes notes = {};
        struct store s;

        store_init(&s);
        put_str(&s, "name", "old");
        put_int(&s, "count", 5);
        put_str(&s, "gone", "x");
        put_str(&s, "name", "new");
        put_raw(&s, "gone", "", 0); /* valueLen 0: removed */
        seal(&s, 4);
        assert_ok(decode(&s, true, false, &img, &rs, &notes));
        cr_assert_eq(rs.n, 2u);
        assert_record(&rs.v[0], "count", "05");
        assert_record(&rs.v[1], "name", "036e6577");
        cr_assert_eq(notes.n, 0u, "a sound store needs no words: '%s'", notes.n ? notes.v[0] : "");
        cr_assert(!mmkv_image_expires_keys(&img));
        mmkv_records_done(&rs);
        mmkv_image_done(&img);
}

ASHM_TEST(mmkv_format, damaged_tail_falls_back_to_last_confirmed_and_says_so) {
        struct mmkv_image img;
        struct mmkv_records rs = {};
        struct mmkv_notes notes = {};
        struct store s;
        uint32_t crc;

        store_init(&s);
        put_str(&s, "a", "1");
        seal(&s, 4);
        /* An append MMKV did not finish: the meta names the longer body,
         * with a checksum that matches no bytes. */
        put_str(&s, "b", "2");
        crc = body_crc(&s, s.len) ^ 1;
        put_le32(s.meta, crc);
        put_le32(s.meta + 28, (uint32_t) s.len);
        assert_ok(decode(&s, true, false, &img, &rs, &notes));
        cr_assert_eq(rs.n, 1u);
        assert_record(&rs.v[0], "a", "0131");
        cr_assert(noted(&notes, "Using the last confirmed state instead"), "the fallback is said");
        mmkv_notes_clear(&notes);
        mmkv_records_done(&rs);
        mmkv_image_done(&img);
}

ASHM_TEST(mmkv_format, nothing_to_trust_stops_unless_forced) {
        struct mmkv_image img;
        struct mmkv_records rs = {};
        struct mmkv_notes notes = {};
        struct store s;

        store_init(&s);
        put_str(&s, "a", "1");
        seal(&s, 2); /* version 2 keeps no last confirmed state */
        s.meta[0] ^= 0xff;
        assert_fail(decode(&s, true, false, &img, &rs, &notes), EBADMSG);
        cr_assert(noted(&notes, "MMKV would discard the whole store here"));
        cr_assert_eq(rs.n, 0u);
        mmkv_notes_clear(&notes);
        mmkv_image_done(&img);

        assert_ok(decode(&s, true, true, &img, &rs, &notes));
        cr_assert(noted(&notes, "--force: checksum mismatch"));
        cr_assert_eq(rs.n, 1u);
        mmkv_notes_clear(&notes);
        mmkv_records_done(&rs);
        mmkv_image_done(&img);
}

ASHM_TEST(mmkv_format, no_meta_file) {
        struct mmkv_image img;
        struct mmkv_records rs = {};
        struct mmkv_notes notes = {};
        struct store s;

        store_init(&s);
        put_int(&s, "n", 1);
        seal(&s, 4);
        assert_fail(decode(&s, false, false, &img, &rs, &notes), ENOENT);
        cr_assert(noted(&notes, "cannot be verified"));
        mmkv_notes_clear(&notes);
        mmkv_image_done(&img);
        assert_ok(decode(&s, false, true, &img, &rs, &notes));
        cr_assert_eq(rs.n, 1u);
        cr_assert(noted(&notes, "unverified"));
        mmkv_notes_clear(&notes);
        mmkv_records_done(&rs);
        mmkv_image_done(&img);
}

ASHM_TEST(mmkv_format, garbage_and_short_files) {
        struct mmkv_image img;
        struct mmkv_records rs = {};
        struct mmkv_notes notes = {};
        struct store s;

        assert_ok(mmkv_image_from_bytes("tiny", (const uint8_t *) "ab", 2, NULL, 0, &img, &notes));
        assert_fail(mmkv_decode(&img, true, &rs, &notes), EBADMSG);
        cr_assert(noted(&notes, "not an MMKV data file"));
        mmkv_notes_clear(&notes);
        mmkv_image_done(&img);

        /* A record whose value runs past the body, under a good checksum. */
        store_init(&s);
        put_str(&s, "a", "1");
        s.data[4 + s.len++] = 1;
        s.data[4 + s.len++] = 'k';
        s.data[4 + s.len++] = 50;
        seal(&s, 4);
        assert_fail(decode(&s, true, false, &img, &rs, &notes), EBADMSG);
        cr_assert(noted(&notes, "value runs past the end"));
        mmkv_notes_clear(&notes);
        mmkv_image_done(&img);
        assert_ok(decode(&s, true, true, &img, &rs, &notes));
        cr_assert_eq(rs.n, 1u, "--force keeps the records before the bad one");
        mmkv_notes_clear(&notes);
        mmkv_records_done(&rs);
        mmkv_image_done(&img);
}

ASHM_TEST(mmkv_format, encrypted_store_is_refused) {
        struct mmkv_image img;
        struct mmkv_records rs = {};
        struct mmkv_notes notes = {};
        struct store s;

        store_init(&s);
        for (size_t i = 0; i < 40; i++)
                s.data[4 + i] = (uint8_t) (0x9e ^ (i * 37));
        s.len = 40;
        seal(&s, 4);
        memset(s.meta + 12, 0x5a, 16); /* an AES IV */
        assert_fail(decode(&s, true, false, &img, &rs, &notes), EPROTONOSUPPORT);
        cr_assert(noted(&notes, "looks encrypted"));
        mmkv_notes_clear(&notes);
        mmkv_image_done(&img);
}

ASHM_TEST(mmkv_format, meta_version_six_reads_as_three) {
        struct mmkv_image img;
        struct mmkv_records rs = {};
        struct mmkv_notes notes = {};
        struct store s;

        store_init(&s);
        put_int(&s, "n", 1);
        seal(&s, 6);
        put_le64(s.meta + 104, 1); /* key expiration, which v3 has not */
        assert_ok(decode(&s, true, false, &img, &rs, &notes));
        cr_assert(noted(&notes, "warning: app.mmkv.crc has meta version 6"));
        cr_assert(!mmkv_image_expires_keys(&img), "the flags go with the version");
        mmkv_notes_clear(&notes);
        mmkv_records_done(&rs);
        mmkv_image_done(&img);
}

static struct mmkv_value value(const uint8_t *p, size_t n) {
        return (struct mmkv_value) { .mmkv = p, .mmkv_len = n };
}

ASHM_TEST(mmkv_format, values_as_named) {
        static const uint8_t neg[] = { 0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 };
        static const uint8_t str[] = { 3, 'a', 0, 'b' };
        float half = 0.5f;
        struct mmkv_value v = value(neg, sizeof(neg));

        cr_assert_null(mmkv_value_decode(&v, ASHM_KV_INT32));
        cr_assert_eq((int32_t) get_le32(mmkv_value_data(&v)), -5, "protobuf's 10-byte negative int32");
        cr_assert_eq(v.len, 4u);
        cr_assert_null(mmkv_value_decode(&v, ASHM_KV_INT64));
        cr_assert_eq((int64_t) get_le64(mmkv_value_data(&v)), -5);
        v = value((const uint8_t *) &half, 4);
        cr_assert_null(mmkv_value_decode(&v, ASHM_KV_FLOAT));
        cr_assert_str_eq(mmkv_value_decode(&v, ASHM_KV_DOUBLE), "not 8 bytes");
        v = value(str, sizeof(str));
        cr_assert_null(mmkv_value_decode(&v, ASHM_KV_BYTES));
        cr_assert_eq(v.len, 3u);
        cr_assert_not_null(strstr(mmkv_value_decode(&v, ASHM_KV_STRING), "NUL byte"));
        cr_assert_null(mmkv_value_decode(&v, MMKV_TYPE_RAW));
        cr_assert_eq(v.len, sizeof(str));
        cr_assert_str_eq(mmkv_type_name(MMKV_TYPE_RAW), "raw");
        cr_assert_eq(mmkv_type_from_name("guess", true), MMKV_TYPE_GUESS);
        cr_assert_eq(mmkv_type_from_name("guess", false), -EINVAL);
        cr_assert_eq(mmkv_type_from_name("int64", false), ASHM_KV_INT64);
}

static int guessed(const uint8_t *p, size_t n, char *why, size_t size) {
        struct mmkv_value v = value(p, n);

        mmkv_value_guess(&v, why, size);
        return v.type;
}

ASHM_TEST(mmkv_format, guesses_follow_the_documented_order) {
        static const uint8_t text[] = { 5, 'h', 'e', 'l', 'l', 'o' }, one[] = { 1 }, small[] = { 0xac, 0x02 },
                             big[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 }, blob[] = { 2, 0xff, 0xfe },
                             junk[] = { 0xff, 0xff, 0xff };
        double d = 2.25;
        char why[256];

        cr_assert_eq(guessed(text, sizeof(text), why, sizeof(why)), ASHM_KV_STRING);
        cr_assert_eq(guessed(one, sizeof(one), why, sizeof(why)), ASHM_KV_BOOL);
        cr_assert_eq(guessed((const uint8_t *) &d, 8, why, sizeof(why)), ASHM_KV_DOUBLE);
        cr_assert_eq(guessed(small, sizeof(small), why, sizeof(why)), ASHM_KV_INT32);
        cr_assert_not_null(strstr(why, "300"), "the reason shows the value: %s", why);
        cr_assert_eq(guessed(big, sizeof(big), why, sizeof(why)), ASHM_KV_INT64);
        cr_assert_eq(guessed(blob, sizeof(blob), why, sizeof(why)), ASHM_KV_BYTES);
        cr_assert_eq(guessed(junk, sizeof(junk), why, sizeof(why)), MMKV_TYPE_RAW);
}

ASHM_TEST(mmkv_format, expiry_times) {
        uint8_t v[5] = { 1 };
        struct mmkv_value val = value(v, sizeof(v));
        uint32_t ago = 0;

        put_le32(v + 1, 1000);
        cr_assert_eq(mmkv_value_strip_expiry(&val, 1500, &ago), 1);
        cr_assert_eq(ago, 500u);
        cr_assert_eq(val.mmkv_len, 1u);
        val = value(v, sizeof(v));
        cr_assert_eq(mmkv_value_strip_expiry(&val, 999, &ago), 0, "not yet");
        put_le32(v + 1, 0);
        val = value(v, sizeof(v));
        cr_assert_eq(mmkv_value_strip_expiry(&val, 5000, &ago), 0, "0 is never");
        val = value(v, 3);
        cr_assert_eq(mmkv_value_strip_expiry(&val, 5000, &ago), -EBADMSG);
        cr_assert_eq(val.mmkv_len, 3u, "too short: kept as it is");
}

ASHM_TEST(mmkv_format, written_store_reads_back) {
        char dir[] = "/tmp/test-mmkv-format.XXXXXX", path[64], cmd[96];
        struct mmkv_writer w;
        struct mmkv_image img;
        struct mmkv_records rs = {};
        struct mmkv_notes notes = {};
        uint8_t i32[4], d[8];
        double x = -0.25;

        cr_assert(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/store", dir);
        put_le32(i32, (uint32_t) -7);
        memcpy(d, &x, 8);
        assert_ok(mmkv_writer_init(&w));
        assert_ok(mmkv_writer_add(&w, "i", 1, ASHM_KV_INT32, i32, 4));
        assert_ok(mmkv_writer_add(&w, "s", 1, ASHM_KV_STRING, (const uint8_t *) "text", 4));
        assert_ok(mmkv_writer_add(&w, "x", 1, ASHM_KV_DOUBLE, d, 8));
        assert_fail(mmkv_writer_add(&w, "bad", 3, ASHM_KV_INT64, i32, 4), EBADMSG);
        assert_fail(mmkv_writer_add(&w, "bad", 3, 42, i32, 4), EPROTOTYPE);
        assert_ok(mmkv_writer_save(&w, path, &notes));
        mmkv_writer_done(&w);

        assert_ok(mmkv_image_load(path, &img, &notes));
        assert_ok(mmkv_decode(&img, false, &rs, &notes));
        cr_assert_eq(notes.n, 0u, "%s", notes.n ? notes.v[0] : "");
        cr_assert_eq(rs.n, 3u, "the refused keys left nothing behind");
        assert_record(&rs.v[0], "i", "f9ffffffffffffffff01");
        assert_record(&rs.v[1], "s", "0474657874");
        assert_record(&rs.v[2], "x", "000000000000d0bf");
        cr_assert_eq(img.data_len % MMKV_PAGE, 0u, "whole pages");
        mmkv_records_done(&rs);
        mmkv_image_done(&img);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        cr_assert_eq(system(cmd), 0);
}
