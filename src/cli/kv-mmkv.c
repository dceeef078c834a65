/* SPDX-License-Identifier: MIT */
/* ashm kv STORE import-mmkv / export-mmkv: Tencent MMKV's files in and
 * out of an ashm store, so that an Android app's MMKV data can be looked
 * at and moved. The format is MMKV v1.3.3's (docs/mmkv.md;
 * MMKV_IO.cpp, MMKVMetaInfo.hpp, MiniPBCoder.cpp there):
 *
 *   data  <id>      u32 LE size | body: varint item-size holder, then
 *                   records "varint keyLen | key | varint valueLen | value"
 *                   up to the size; whole pages
 *   meta  <id>.crc  u32 crc32(body) | u32 version | u32 sequence |
 *                   u8 iv[16] | u32 size | u32 lastConfirmed size, crc |
 *                   u32 reserved[16] | u64 flags; one page
 *
 * Values are protobuf-encoded and carry no type: import takes one per key
 * or guesses (the rule is at guess()), and says which it guessed. Where
 * MMKV would roll back or wipe a damaged store without a word, import
 * says what it used and what it left out, or stops. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ashm.h"
#include "cli.h"
#include "fd-util.h"
#include "kv-mmkv.h"
#include "kv.h"
#include "macro.h"

#define MMKV_PAGE 4096u      /* files are whole pages; 4 KiB divides all of Android's */
#define DATA_HEADER_LEN 4u   /* the data file's own u32 size, before the body */
#define META_LEN 112u        /* sizeof(MMKVMetaInfo) */
#define EXPIRY_LEN 4u        /* u32 LE expiry time after each value, with key expiration on */
#define SHOW_BYTES_MAX 16u   /* bytes of a value shown in an error */

/* MMKVMetaInfo.hpp: version 3 put the size in the meta, 4 the flags; 6
 * and up is "specious", and v1.3.3 resets it to 3 with no flags. */
enum { VERSION_RANDOM_IV = 2, VERSION_ACTUAL_SIZE = 3, VERSION_FLAG = 4, VERSION_HOLDER = 6 };
#define FLAG_KEY_EXPIRE 1u

/* The item-size holder v1.3.3 writes: 0x00ffffff as a varint. */
static const uint8_t mmkv_holder[] = { 0xff, 0xff, 0xff, 0x07 };

/* Import types beyond enum ashm_kv_type. */
enum { TYPE_GUESS = 0, TYPE_RAW = 100 };

static const char *prog = "ashm kv"; /* "ashm kv import-mmkv", for messages */

_printf_(1, 2) static void say(const char *fmt, ...) {
        va_list ap;

        fprintf(stderr, "%s: ", prog);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

/* ------------------------------------------------------------------ */
/* Encoding helpers                                                    */
/* ------------------------------------------------------------------ */

static uint32_t get_le32(const uint8_t *p) {
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p) {
        return (uint64_t) get_le32(p) | (uint64_t) get_le32(p + 4) << 32;
}

static void put_le32(uint8_t *p, uint32_t v) {
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v) {
        put_le32(p, (uint32_t) v);
        put_le32(p + 4, (uint32_t) (v >> 32));
}

/* zlib's CRC-32 (reflected 0xedb88320), which MMKV takes from libz. */
static uint32_t crc32_zlib(uint32_t crc, const uint8_t *p, size_t len) {
        static uint32_t table[256];

        if (!table[1])
                for (uint32_t i = 0; i < 256; i++) {
                        uint32_t c = i;

                        for (int k = 0; k < 8; k++)
                                c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
                        table[i] = c;
                }
        crc = ~crc;
        while (len--)
                crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
        return ~crc;
}

/* The varint at p (n bytes available): its length, 1 to 10, or 0 when
 * it runs past n or past 10 bytes. Bits past 64 are dropped. */
static size_t varint_get(const uint8_t *p, size_t n, uint64_t *ret) {
        uint64_t v = 0;

        for (size_t i = 0; i < n && i < 10; i++) {
                v |= (uint64_t) (p[i] & 0x7f) << (7 * i);
                if (!(p[i] & 0x80)) {
                        *ret = v;
                        return i + 1;
                }
        }
        return 0;
}

static size_t varint_size(uint64_t v) {
        size_t n = 1;

        for (; v >= 0x80; v >>= 7)
                n++;
        return n;
}

/* A length as MMKV's readRawVarint32() reads it: bits past 32 dropped,
 * and a negative int32 refused. */
static size_t length_get(const uint8_t *p, size_t n, uint32_t *ret) {
        uint64_t v;
        size_t k = varint_get(p, n, &v);

        if (k == 0 || (uint32_t) v > INT32_MAX)
                return 0;
        *ret = (uint32_t) v;
        return k;
}

/* Well-formed UTF-8 (no overlong forms, surrogates, or past U+10FFFF).
 * text: also no NUL, and no control character but tab, CR and LF. */
static bool utf8_ok(const uint8_t *p, size_t n, bool text) {
        size_t i = 0;

        while (i < n) {
                uint32_t cp = p[i], min;
                size_t len;

                if (cp < 0x80)
                        len = 1, min = 0;
                else if (cp >= 0xc2 && cp <= 0xdf)
                        len = 2, cp &= 0x1f, min = 0x80;
                else if (cp >= 0xe0 && cp <= 0xef)
                        len = 3, cp &= 0x0f, min = 0x800;
                else if (cp >= 0xf0 && cp <= 0xf4)
                        len = 4, cp &= 0x07, min = 0x10000;
                else
                        return false;
                if (len > n - i)
                        return false;
                for (size_t k = 1; k < len; k++) {
                        if ((p[i + k] & 0xc0) != 0x80)
                                return false;
                        cp = cp << 6 | (p[i + k] & 0x3f);
                }
                if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                if (text && (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) && cp != '\t' && cp != '\n' && cp != '\r')
                        return false;
                i += len;
        }
        return true;
}

/* A key as apps write them: printable UTF-8, not even a tab or newline. */
static bool key_sane(const uint8_t *p, size_t n) {
        return utf8_ok(p, n, true) && !memchr(p, '\t', n) && !memchr(p, '\n', n) && !memchr(p, '\r', n);
}

/* Keys as bytes: memcmp() order, a prefix first. */
static int key_cmp(const void *a, size_t a_len, const void *b, size_t b_len) {
        int c = memcmp(a, b, MIN(a_len, b_len));

        return c ? c : (a_len > b_len) - (a_len < b_len);
}

static void print_hex(FILE *f, const uint8_t *p, size_t n) {
        for (size_t i = 0; i < n; i++)
                fprintf(f, "%02x", p[i]);
}

/* ------------------------------------------------------------------ */
/* Reading an MMKV store                                               */
/* ------------------------------------------------------------------ */

struct meta {
        uint32_t crc, version, sequence, actual_size, last_size, last_crc;
        uint8_t iv[16];
        uint64_t flags;
};

struct image {
        const char *path;
        uint8_t *data; /* the whole data file */
        size_t data_len;
        struct meta meta;
        bool have_meta;
        size_t meta_len; /* bytes of the .crc file */
};

static void image_done(struct image *img) {
        free(img->data);
}

/* The whole of the regular file fd into *ret (to be freed). */
static int read_all(int fd, uint8_t **ret, size_t *ret_len) {
        struct stat st;
        uint8_t *buf;
        int r;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
        if ((uint64_t) st.st_size > (uint64_t) UINT32_MAX + DATA_HEADER_LEN + MMKV_PAGE)
                return -EFBIG; /* MMKV's sizes are 32-bit */
        buf = malloc(st.st_size ? (size_t) st.st_size : 1);
        if (!buf)
                return -ENOMEM;
        r = pread_full(fd, buf, (size_t) st.st_size, 0);
        if (r < 0) {
                free(buf);
                return r;
        }
        *ret = buf;
        *ret_len = (size_t) st.st_size;
        return 0;
}

static void meta_parse(const uint8_t *p, struct meta *m) {
        m->crc = get_le32(p);
        m->version = get_le32(p + 4);
        m->sequence = get_le32(p + 8);
        memcpy(m->iv, p + 12, sizeof(m->iv));
        m->actual_size = get_le32(p + 28);
        m->last_size = get_le32(p + 32);
        m->last_crc = get_le32(p + 36);
        m->flags = get_le64(p + 104);
}

/* Read the meta file: a missing one is not an error here (have_meta
 * false). MMKV zero-fills a short one to a page, and so does this. */
static int load_meta(int fd, const char *meta_path, struct image *img) {
        _cleanup_free_ uint8_t *buf = NULL;
        uint8_t page[META_LEN] = {};
        size_t len;
        int r;

        r = read_all(fd, &buf, &len);
        if (r < 0) {
                say("cannot read %s: %s", meta_path, strerror(-r));
                return r;
        }
        memcpy(page, buf, MIN(len, sizeof(page)));
        meta_parse(page, &img->meta);
        img->have_meta = true;
        img->meta_len = len;
        if (len < META_LEN)
                say("warning: %s is %zu bytes, shorter than MMKV's %u-byte meta: the rest is read as zeros, "
                    "as MMKV does", meta_path, len, META_LEN);
        return 0;
}

static int load_image(const char *path, struct image *img) {
        _cleanup_free_ char *meta_path = NULL;
        _cleanup_close_ int meta_fd = -1, fd = -1;
        int r;

        if (asprintf(&meta_path, "%s.crc", path) < 0)
                return -ENOMEM;
        img->path = path;
        meta_fd = open(meta_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (meta_fd < 0 && errno != ENOENT) {
                r = -errno;
                say("cannot open %s: %s", meta_path, strerror(-r));
                return r;
        }
        /* MMKV in multi-process mode writes under flock() on the .crc
         * file: holding it shared while reading gets a consistent pair
         * from such a store. (Single-process MMKV takes no lock; the
         * checksum tells when the pair was caught mid-write.) */
        if (meta_fd >= 0 && flock(meta_fd, LOCK_SH) < 0)
                say("warning: cannot lock %s (%s): reading it unlocked", meta_path, strerror(errno));
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                r = -errno;
                say("cannot open %s: %s", path, strerror(-r));
                return r;
        }
        r = read_all(fd, &img->data, &img->data_len);
        if (r < 0) {
                say("cannot read %s: %s", path, r == -EINVAL ? "not a regular file" : strerror(-r));
                return r;
        }
        if (meta_fd >= 0)
                return load_meta(meta_fd, meta_path, img);
        return 0;
}

/* ------------------------------------------------------------------ */
/* Which bytes to trust: MMKV's checkDataValid(), said out loud         */
/* ------------------------------------------------------------------ */

struct body {
        size_t size;   /* bytes of the body to decode */
        bool verified; /* the checksum matched them */
};

static size_t body_max(const struct image *img) {
        return img->data_len - DATA_HEADER_LEN;
}

/* MMKV's own bounds test for a size, then its checksum. */
static bool size_fits(const struct image *img, uint32_t size) {
        return size < img->data_len && (size_t) size + DATA_HEADER_LEN <= img->data_len;
}

static bool crc_matches(const struct image *img, uint32_t size, uint32_t crc) {
        return size_fits(img, size) && crc32_zlib(0, img->data + DATA_HEADER_LEN, size) == crc;
}

/* Why size and crc do not check, for messages. */
static void mismatch_reason(const struct image *img, uint32_t size, uint32_t crc, char *buf, size_t len) {
        if (!size_fits(img, size))
                snprintf(buf, len, "but the data file holds only %zu bytes after its header%s", body_max(img),
                         img->data_len % MMKV_PAGE ? ", and is not whole pages: truncated?" : "");
        else
                snprintf(buf, len, "whose CRC-32 is %08" PRIx32 " where the meta file says %08" PRIx32,
                         crc32_zlib(0, img->data + DATA_HEADER_LEN, size), crc);
}

/* The meta's version and flags as v1.3.3 reads them (loadMetaInfoAndCheck). */
static void meta_normalize(struct image *img) {
        struct meta *m = &img->meta;

        if (m->version >= VERSION_HOLDER) {
                say("warning: %s.crc has meta version %" PRIu32 ", which MMKV v1.3.3 takes for a half-written meta: "
                    "like MMKV, reading it as version %d with no flags",
                    img->path, m->version, VERSION_ACTUAL_SIZE);
                m->version = VERSION_ACTUAL_SIZE;
                m->flags = 0;
        }
        if (m->version < VERSION_FLAG)
                m->flags = 0;
}

/* No meta file: only --force goes on, with the data file's own size. */
static int choose_without_meta(const struct image *img, bool force, struct body *ret) {
        uint32_t head = get_le32(img->data);

        if (!force) {
                say("%s.crc: %s: MMKV keeps the checksum and the size of the data there, so %s cannot be verified. "
                    "--force imports the records that decode, unverified",
                    img->path, strerror(ENOENT), img->path);
                return -ENOENT;
        }
        ret->size = size_fits(img, head) ? head : body_max(img);
        ret->verified = false;
        say("--force: no %s.crc: decoding %zu bytes (%s), unverified", img->path, ret->size,
            size_fits(img, head) ? "the size in the data file's header" : "the whole file");
        return 0;
}

/* The meta's size fails: v1.3.3 tries the data file's own size with
 * the meta's crc (a store an old MMKV wrote to), then lastConfirmed,
 * the size and crc of the last full write-back, which it msync()ed. */
static int choose_fallback(const struct image *img, uint32_t size, bool force, struct body *ret) {
        const struct meta *m = &img->meta;
        uint32_t head = get_le32(img->data);
        size_t claimed = MIN((size_t) size, body_max(img));
        char why[160], last_why[160];

        mismatch_reason(img, size, m->crc, why, sizeof(why));
        if (m->version >= VERSION_ACTUAL_SIZE && head != size && crc_matches(img, head, m->crc)) {
                say("%s: checksum mismatch over the %" PRIu32 " bytes that %s.crc names (%s); the %" PRIu32
                    " bytes that the data file's own header names match it (a store that an older MMKV wrote "
                    "to): using those%s",
                    img->path, size, img->path, why, head, head < claimed ? ", the rest is ignored" : "");
                *ret = (struct body) { head, true };
                return 0;
        }
        if (m->version >= VERSION_ACTUAL_SIZE && m->last_size > sizeof(mmkv_holder) &&
            crc_matches(img, m->last_size, m->last_crc)) {
                say("%s: checksum mismatch over the %" PRIu32 " bytes that %s.crc names (%s). Using the last "
                    "confirmed state instead, as MMKV would (silently): its %" PRIu32 " bytes check. The %zu bytes "
                    "after them are ignored, and with them every key set or removed since MMKV last rewrote the file",
                    img->path, size, img->path, why, m->last_size, claimed > m->last_size ? claimed - m->last_size : 0);
                *ret = (struct body) { m->last_size, true };
                return 0;
        }
        if (m->version < VERSION_ACTUAL_SIZE)
                snprintf(last_why, sizeof(last_why), "a version %" PRIu32 " meta keeps no last confirmed state",
                         m->version);
        else if (m->last_size <= sizeof(mmkv_holder))
                snprintf(last_why, sizeof(last_why), "the last confirmed state is the empty store");
        else
                snprintf(last_why, sizeof(last_why), "the last confirmed state's %" PRIu32 " bytes %s", m->last_size,
                         size_fits(img, m->last_size) ? "do not match its CRC-32 either" : "lie past the end too");
        if (!force) {
                say("%s: checksum mismatch over the %" PRIu32 " bytes that %s.crc names (%s), and nothing to fall "
                    "back on (%s). MMKV would discard the whole store here. --force imports the records that "
                    "decode, unverified",
                    img->path, size, img->path, why, last_why);
                return -EBADMSG;
        }
        say("--force: checksum mismatch over the %" PRIu32 " bytes that %s.crc names (%s; %s): decoding them "
            "unverified",
            size, img->path, why, last_why);
        *ret = (struct body) { claimed, false };
        return 0;
}

static int choose_body(struct image *img, bool force, struct body *ret) {
        uint32_t size;

        if (img->data_len < DATA_HEADER_LEN) {
                say("%s: not an MMKV data file: %zu bytes (MMKV writes whole pages)", img->path, img->data_len);
                return -EBADMSG;
        }
        if (!img->have_meta)
                return choose_without_meta(img, force, ret);
        meta_normalize(img);
        size = img->meta.version >= VERSION_ACTUAL_SIZE ? img->meta.actual_size : get_le32(img->data);
        if (crc_matches(img, size, img->meta.crc)) {
                *ret = (struct body) { size, true };
                return 0;
        }
        return choose_fallback(img, size, force, ret);
}

/* ------------------------------------------------------------------ */
/* Records                                                             */
/* ------------------------------------------------------------------ */

struct record {
        const uint8_t *key, *value;
        uint32_t key_len, value_len;
        size_t offset; /* in the body: later records win */
};

struct records {
        struct record *v;
        size_t n, cap;
};

static int records_add(struct records *rs, const struct record *r) {
        if (rs->n == rs->cap) {
                size_t cap = rs->cap ? rs->cap * 2 : 64;
                struct record *v = reallocarray(rs->v, cap, sizeof(*v));

                if (!v)
                        return -ENOMEM;
                rs->v = v;
                rs->cap = cap;
        }
        rs->v[rs->n++] = *r;
        return 0;
}

/* MMKV's decodeOneMap() over body[0, len): the item-size holder, then
 * records to the end; a record with an empty key is one byte that MMKV
 * skips. sane_keys: also stop at a key that is not printable UTF-8,
 * which MMKV would take, but which in an unverified body means that the
 * records went astray. *ret_end is where decoding stopped: len when all of it
 * decoded, else the start of the record that did not, *ret_why saying
 * why. Returns 0 or -ENOMEM. */
static int parse_records(const uint8_t *body, size_t len, bool sane_keys, struct records *rs, size_t *ret_end,
                         const char **ret_why) {
        size_t pos = 0;
        uint64_t holder;
        int r;

        *ret_end = 0;
        if (len == 0)
                return 0;
        pos = varint_get(body, len, &holder);
        if (pos == 0) {
                *ret_why = "item-size holder is not a varint";
                return 0;
        }
        while (pos < len) {
                struct record rec = { .offset = pos };
                size_t k;

                *ret_end = pos;
                k = length_get(body + pos, len - pos, &rec.key_len);
                if (k == 0 || rec.key_len > len - pos - k) {
                        *ret_why = k == 0 ? "malformed key length" : "key runs past the end";
                        return 0;
                }
                rec.key = body + pos + k;
                if (sane_keys && !key_sane(rec.key, rec.key_len)) {
                        *ret_why = "key is not printable UTF-8";
                        return 0;
                }
                pos += k + rec.key_len;
                if (rec.key_len == 0)
                        continue;
                k = length_get(body + pos, len - pos, &rec.value_len);
                if (k == 0 || rec.value_len > len - pos - k) {
                        *ret_why = k == 0 ? "malformed value length" : "value runs past the end";
                        return 0;
                }
                pos += k;
                rec.value = body + pos;
                pos += rec.value_len;
                r = records_add(rs, &rec);
                if (r < 0)
                        return r;
        }
        *ret_end = len;
        return 0;
}

static int record_cmp(const void *a, const void *b) {
        const struct record *x = a, *y = b;
        int c = key_cmp(x->key, x->key_len, y->key, y->key_len);

        return c ? c : (x->offset > y->offset) - (x->offset < y->offset);
}

/* Keep the last record of each key, and drop the keys whose last record
 * removes them (valueLen 0). Leaves rs sorted by key. */
static void records_settle(struct records *rs) {
        size_t out = 0;

        if (rs->n > 1)
                qsort(rs->v, rs->n, sizeof(*rs->v), record_cmp);
        for (size_t i = 0; i < rs->n; i++) {
                bool last = i + 1 == rs->n ||
                            key_cmp(rs->v[i + 1].key, rs->v[i + 1].key_len, rs->v[i].key, rs->v[i].key_len) != 0;

                if (last && rs->v[i].value_len > 0)
                        rs->v[out++] = rs->v[i];
        }
        rs->n = out;
}

static bool keys_utf8(const struct records *rs) {
        for (size_t i = 0; i < rs->n; i++)
                if (!utf8_ok(rs->v[i].key, rs->v[i].key_len, false))
                        return false;
        return true;
}

/* An encrypted store's body is AES-CFB output: its holder is not v1.3.3's
 * plain ff ff ff 07 and its records do not decode, and its meta holds an
 * IV (version 2 and up); its checksum, over the ciphertext, matches. A
 * plain store may hold an IV too (clearAll() writes a random one), so
 * the IV alone says nothing. */
static bool looks_encrypted(const struct image *img, const struct body *b, bool decoded) {
        static const uint8_t zero[16];
        const uint8_t *body = img->data + DATA_HEADER_LEN;

        if (!b->verified || img->meta.version < VERSION_RANDOM_IV || !memcmp(img->meta.iv, zero, sizeof(zero)))
                return false;
        if (b->size >= sizeof(mmkv_holder) && !memcmp(body, mmkv_holder, sizeof(mmkv_holder)))
                return false;
        return !decoded;
}

/* Decode the chosen body into live records: strictly (one bad record and
 * nothing is imported, as MMKV does), or with --force as far as it
 * decodes (MMKV's greedy decode). */
static int decode_body(const struct image *img, const struct body *b, bool force, struct records *rs) {
        const char *why = NULL;
        size_t end;
        int r;

        r = parse_records(img->data + DATA_HEADER_LEN, b->size, !b->verified, rs, &end, &why);
        if (r < 0)
                return r;
        if (looks_encrypted(img, b, end == b->size && keys_utf8(rs))) {
                say("%s: the store looks encrypted (its meta holds an AES IV, and its body is not plain MMKV "
                    "records): ashm cannot decrypt MMKV stores. Have the app decrypt it (MMKV reKey(\"\")) and "
                    "import the copy",
                    img->path);
                return -EPROTONOSUPPORT;
        }
        if (end < b->size && !force) {
                say("%s: the checksum matches, but the record at body offset %zu does not decode (%s): "
                    "not an MMKV store, or one encrypted without an IV in its meta. --force imports the records "
                    "before it",
                    img->path, end, why);
                return -EBADMSG;
        }
        if (end < b->size && rs->n == 0) {
                say("--force: nothing in %s decodes as MMKV records (%s, at body offset %zu)", img->path, why, end);
                return -EBADMSG;
        }
        if (end < b->size)
                say("--force: the records look intact up to body offset %zu of %zu (there: %s): the %zu bytes "
                    "from there on are ignored",
                    end, b->size, why, b->size - end);
        records_settle(rs);
        return 0;
}

/* ------------------------------------------------------------------ */
/* Types                                                               */
/* ------------------------------------------------------------------ */

struct item {
        char *key;            /* NUL-terminated */
        const uint8_t *mmkv;  /* the value as MMKV stored it */
        size_t mmkv_len;
        int type;             /* enum ashm_kv_type, or TYPE_RAW */
        uint8_t scalar[8];    /* the value in ashm's encoding, for scalars */
        size_t payload, len;  /* else mmkv[payload, payload + len) */
};

static bool type_scalar(int type) {
        return type != ASHM_KV_STRING && type != ASHM_KV_BYTES && type != TYPE_RAW;
}

static const void *item_value(const struct item *it) {
        return type_scalar(it->type) ? (const void *) it->scalar : it->mmkv + it->payload;
}

static const char *type_name(int type) {
        return type == TYPE_RAW ? "raw" : type == TYPE_GUESS ? "guess" : ashm_kv_type_name(type);
}

static int type_from_name(const char *name, bool guess_too) {
        if (strcmp(name, "raw") == 0)
                return TYPE_RAW;
        if (guess_too && strcmp(name, "guess") == 0)
                return TYPE_GUESS;
        return ashm_kv_type_from_name(name);
}

/* The whole value as one varint: 0 or why not. */
static const char *whole_varint(const struct item *it, uint64_t *ret) {
        size_t k = varint_get(it->mmkv, it->mmkv_len, ret);

        if (k == 0)
                return "not a varint";
        if (k != it->mmkv_len)
                return "a varint followed by more bytes";
        return NULL;
}

/* A length-prefixed string or bytes, MMKV's writeData(): the payload. */
static const char *length_prefixed(struct item *it) {
        uint32_t len;
        size_t k = length_get(it->mmkv, it->mmkv_len, &len);

        if (k == 0)
                return "no length prefix";
        if (k + len != it->mmkv_len)
                return "its length prefix does not match its size";
        it->payload = k;
        it->len = len;
        return NULL;
}

static const char *decode_int(struct item *it, int type) {
        uint64_t v;
        const char *why = whole_varint(it, &v);

        if (why)
                return why;
        switch (type) {
        case ASHM_KV_BOOL:
                it->scalar[0] = v != 0; /* MMKV's readBool() */
                it->len = 1;
                return NULL;
        case ASHM_KV_INT32:
                /* int32 as protobuf writes it (negatives sign-extended to
                 * 10 bytes), or a uint32 from MMKV's set(uint32_t). */
                if ((int64_t) v < INT32_MIN || ((int64_t) v > INT32_MAX && v > UINT32_MAX))
                        return "a varint beyond 32 bits";
                put_le32(it->scalar, (uint32_t) v);
                it->len = 4;
                return NULL;
        default: /* int64, uint64: the same 64 bits */
                put_le64(it->scalar, v);
                it->len = 8;
                return NULL;
        }
}

/* The value as MMKV encodes type, into it: NULL, or why it is not one. */
static const char *decode_as(struct item *it, int type) {
        const char *why;

        it->type = type;
        it->payload = 0;
        switch (type) {
        case ASHM_KV_BOOL:
        case ASHM_KV_INT32:
        case ASHM_KV_INT64:
        case ASHM_KV_UINT64:
                return decode_int(it, type);
        case ASHM_KV_FLOAT:
        case ASHM_KV_DOUBLE:
                it->len = type == ASHM_KV_FLOAT ? 4 : 8;
                if (it->mmkv_len != it->len)
                        return type == ASHM_KV_FLOAT ? "not 4 bytes" : "not 8 bytes";
                memcpy(it->scalar, it->mmkv, it->len); /* IEEE 754 LE in both */
                return NULL;
        case ASHM_KV_STRING:
        case ASHM_KV_BYTES:
                why = length_prefixed(it);
                if (!why && type == ASHM_KV_STRING && memchr(it->mmkv + it->payload, '\0', it->len))
                        why = "it holds a NUL byte, which an ashm string cannot: take it as bytes";
                return why;
        case TYPE_RAW:
                it->len = it->mmkv_len;
                return NULL;
        default:
                return "unknown type";
        }
}

/* A float or double that someone probably typed: zero, or normal, of a
 * likely magnitude, and the same when printed with few digits (0.1f
 * is "0.1"; an int32 of 2^21..2^28 read as a float is noise). */
static bool plausible_real(const struct item *it) {
        char buf[40];

        if (it->mmkv_len == 4) {
                float f, back, a;

                memcpy(&f, it->scalar, 4);
                a = f < 0 ? -f : f;
                if (f == 0)
                        return true;
                if (a < 1e-6f || a > 1e12f)
                        return false;
                snprintf(buf, sizeof(buf), "%.6g", (double) f);
                back = strtof(buf, NULL);
                return memcmp(&back, &f, 4) == 0;
        } else {
                double d, back, a;

                memcpy(&d, it->scalar, 8);
                a = d < 0 ? -d : d;
                if (d == 0)
                        return true;
                if (a < 1e-9 || a > 1e15)
                        return false;
                snprintf(buf, sizeof(buf), "%.12g", d);
                back = strtod(buf, NULL);
                return memcmp(&back, &d, 8) == 0;
        }
}

static double real_value(const struct item *it) {
        float f;
        double d;

        if (it->mmkv_len == 4) {
                memcpy(&f, it->scalar, 4);
                return f;
        }
        memcpy(&d, it->scalar, 8);
        return d;
}

/* A minimal varint filling the value: int32 when it fits (a 10-byte
 * varint of a negative int32 is how protobuf writes one), else int64. */
static bool guess_varint(struct item *it, char *why, size_t size) {
        uint64_t v;
        int64_t s;
        size_t n = it->mmkv_len;

        if (whole_varint(it, &v) || varint_size(v) != n)
                return false;
        s = (int64_t) v;
        if (s >= INT32_MIN && s <= INT32_MAX) {
                decode_as(it, ASHM_KV_INT32);
                snprintf(why, size, "a %zu-byte varint, %" PRId64 "%s", n, s,
                         n == 10 ? ", as protobuf writes a negative int32 (a negative int64 or a uint64 "
                                   "past 2^63 looks the same)"
                                 : "");
        } else {
                decode_as(it, ASHM_KV_INT64);
                snprintf(why, size, "a %zu-byte varint, %" PRId64 ", past int32%s", n, s,
                         s < 0 ? " (or the uint64 of the same bits)" : "");
        }
        return true;
}

/* A float or double: plausible, or the last fixed-size reading left. */
static bool guess_real(struct item *it, bool plausible_only, char *why, size_t size) {
        int type = it->mmkv_len == 4 ? ASHM_KV_FLOAT : ASHM_KV_DOUBLE;
        char num[64], also[64] = "";
        uint64_t v;

        if (it->mmkv_len != 4 && it->mmkv_len != 8)
                return false;
        decode_as(it, type);
        if (plausible_only && !plausible_real(it))
                return false;
        kv_format_real(real_value(it), type == ASHM_KV_FLOAT, num, sizeof(num));
        if (!whole_varint(it, &v) && varint_size(v) == it->mmkv_len)
                snprintf(also, sizeof(also), "; as a varint they would be %" PRIu64, v);
        snprintf(why, size, "%zu bytes reading as %s%s%s", it->mmkv_len, num,
                 plausible_only ? "" : " (neither text nor a varint)", also);
        return true;
}

/*
 * The type of a value nobody named, in this order:
 *  1. a length-prefixed, non-empty, printable UTF-8 text: string;
 *  2. one byte, 00 or 01: bool (an int32 0 or 1, and "" for 00, look
 *     the same: MMKV writes all of them that way);
 *  3. 4 or 8 bytes that read as a plausible float or double (above);
 *  4. a minimal varint filling the value: int32 if it fits, else int64;
 *  5. length-prefixed bytes that are not text: bytes;
 *  6. 4 or 8 bytes: float or double, the only fixed-size encodings;
 *  7. anything else: raw, the bytes as MMKV stored them.
 * Every guess is printed with its reason, so a wrong one can be
 * corrected with --type.
 */
static void guess(struct item *it, char *why, size_t size) {
        if (!decode_as(it, ASHM_KV_STRING) && it->len > 0 && utf8_ok(it->mmkv + it->payload, it->len, true)) {
                snprintf(why, size, "length-prefixed UTF-8 text, %zu bytes", it->len);
                return;
        }
        if (it->mmkv_len == 1 && it->mmkv[0] <= 1) {
                decode_as(it, ASHM_KV_BOOL);
                snprintf(why, size, "one byte %02x: an int32 %d%s looks the same", it->mmkv[0], it->mmkv[0],
                         it->mmkv[0] ? "" : " or an empty string");
                return;
        }
        if (guess_real(it, true, why, size) || guess_varint(it, why, size))
                return;
        if (!decode_as(it, ASHM_KV_BYTES)) {
                snprintf(why, size, "%zu length-prefixed bytes that are not text", it->len);
                return;
        }
        if (guess_real(it, false, why, size))
                return;
        decode_as(it, TYPE_RAW);
        snprintf(why, size, "no MMKV encoding fits these %zu bytes: kept as they are", it->mmkv_len);
}

/* ------------------------------------------------------------------ */
/* import-mmkv                                                         */
/* ------------------------------------------------------------------ */

struct hint {
        const char *arg; /* "KEY=TYPE", as given */
        size_t key_len;
        size_t order; /* on the command line */
        int type;
        bool used;
};

/* By key, then by order: hints are looked up once per key of the store,
 * and a script may pass one for each of 100 000 keys. */
static int hint_cmp(const void *x, const void *y) {
        const struct hint *a = x, *b = y;
        int c = key_cmp(a->arg, a->key_len, b->arg, b->key_len);

        return c ? c : (a->order > b->order) - (a->order < b->order);
}

struct import_args {
        const char *path;
        struct hint *hints;
        size_t n_hints;
        int default_type;
        bool dry_run, force;
};

static int parse_hint(const char *arg, struct import_args *a) {
        const char *eq = strrchr(arg, '=');
        struct hint *h;
        int type = eq ? type_from_name(eq + 1, false) : -EINVAL;

        if (!eq || eq == arg || type < 0) {
                _cleanup_free_ char *shown = cescape(arg);

                fprintf(stderr, "%s: --type takes KEY=TYPE with TYPE one of bool int32 int64 uint64 float double "
                        "string bytes raw, not '%s'\n", prog, shown ? shown : "?");
                return -EINVAL;
        }
        h = reallocarray(a->hints, a->n_hints + 1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        a->hints = h;
        a->hints[a->n_hints] = (struct hint) { .arg = arg, .key_len = (size_t) (eq - arg), .order = a->n_hints,
                                               .type = type };
        a->n_hints++;
        return 0;
}

/* -1 to go on, else the exit status. */
static int import_args(int argc, char *argv[], struct import_args *a) {
        static const struct option options[] = {
                { "type", required_argument, NULL, 't' },
                { "default-type", required_argument, NULL, 'd' },
                { "dry-run", no_argument, NULL, 'n' },
                { "force", no_argument, NULL, 'f' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;

        optind = 0; /* glibc: start getopt afresh */
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0)
                switch (c) {
                case 't':
                        if (parse_hint(optarg, a) < 0)
                                return EXIT_USAGE;
                        break;
                case 'd':
                        a->default_type = type_from_name(optarg, true);
                        if (a->default_type < 0) {
                                fprintf(stderr, "%s: --default-type takes bool int32 int64 uint64 float double "
                                        "string bytes raw or guess, not '%s'\n", prog, optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case 'n':
                        a->dry_run = true;
                        break;
                case 'f':
                        a->force = true;
                        break;
                case 'h': /* the dispatcher answers --help first; this is for -h */
                        cli_verb_help("kv", stdout);
                        return EXIT_SUCCESS;
                default:
                        return cli_bad_option("kv", c, argv);
                }
        if (optind + 1 != argc) {
                fprintf(stderr, "%s: %s; see 'ashm help kv'\n", prog,
                        optind == argc ? "which MMKV data file?" : "one MMKV data file only");
                return EXIT_USAGE;
        }
        a->path = argv[optind];
        if (a->n_hints > 1)
                qsort(a->hints, a->n_hints, sizeof(*a->hints), hint_cmp);
        return -1;
}

/* The --type for key, marking every one given for it as used: the last
 * one wins, as the last of an option usually does. */
static struct hint *hint_find(struct import_args *a, const char *key) {
        size_t len = strlen(key), lo = 0, hi = a->n_hints;
        struct hint *found = NULL;

        while (lo < hi) { /* the first hint not below key */
                size_t mid = lo + (hi - lo) / 2;

                if (key_cmp(a->hints[mid].arg, a->hints[mid].key_len, key, len) < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        for (; lo < a->n_hints && key_cmp(a->hints[lo].arg, a->hints[lo].key_len, key, len) == 0; lo++) {
                a->hints[lo].used = true;
                found = &a->hints[lo];
        }
        return found;
}

/* With key expiration on, every value ends in its u32 expiry time (0:
 * never). Returns true if the key has expired (MMKV would not return
 * it), having said so. */
static bool strip_expiry(struct item *it, uint32_t now) {
        _cleanup_free_ char *shown = cescape(it->key);
        uint32_t when;

        if (it->mmkv_len < EXPIRY_LEN) {
                say("warning: '%s': %zu bytes, too short to end in an expiry time: taken as they are",
                    shown ? shown : "?", it->mmkv_len);
                return false;
        }
        it->mmkv_len -= EXPIRY_LEN;
        when = get_le32(it->mmkv + it->mmkv_len);
        if (when == 0 || when > now)
                return false;
        say("'%s' expired %" PRIu32 " s ago: left out, as MMKV would", shown ? shown : "?", now - when);
        return true;
}

struct import {
        struct item *items;
        size_t n, expired, guessed, errors, left_out;
};

static void import_done(struct import *im) {
        for (size_t i = 0; i < im->n; i++)
                free(im->items[i].key);
        free(im->items);
}

/* A key as ashm takes it: 1 to ASHM_KV_KEY_MAX bytes, no NUL. -EINVAL,
 * said, if not. */
static int item_key(struct item *it, const struct record *rec, bool force) {
        if (rec->key_len > ASHM_KV_KEY_MAX || memchr(rec->key, '\0', rec->key_len)) {
                say("a key of %" PRIu32 " bytes at body offset %zu %s: it cannot be an ashm key%s", rec->key_len,
                    rec->offset, rec->key_len > ASHM_KV_KEY_MAX ? "is too long" : "holds a NUL byte",
                    force ? "; left out (--force)" : "");
                return -EINVAL;
        }
        it->key = strndup((const char *) rec->key, rec->key_len);
        return it->key ? 0 : -ENOMEM;
}

/* Type one item by its hint, the default type, or a guess: 0, -EBADMSG
 * (said) when the value is not of the type named for it, or -ENOMEM. */
static int item_type(struct item *it, struct import_args *a, struct import *im) {
        struct hint *h = hint_find(a, it->key);
        int type = h ? h->type : a->default_type;
        const char *why;
        char reason[256];

        if (type == TYPE_GUESS) {
                _cleanup_free_ char *word = NULL, *arg = NULL;

                guess(it, reason, sizeof(reason));
                im->guessed++;
                if (asprintf(&arg, "%s=%s", it->key, type_name(it->type)) < 0 || !(word = shell_word(arg)))
                        return -ENOMEM;
                say("guessed --type %s: %s", word, reason);
                return 0;
        }
        why = decode_as(it, type);
        if (why) {
                _cleanup_free_ char *shown = cescape(it->key);

                fprintf(stderr, "%s: '%s' is not an MMKV %s: %s (%zu bytes: ", prog, shown ? shown : "?",
                        type_name(type), why, it->mmkv_len);
                print_hex(stderr, it->mmkv, MIN(it->mmkv_len, SHOW_BYTES_MAX));
                if (a->force)
                        fprintf(stderr, "%s); left out (--force)\n", it->mmkv_len > SHOW_BYTES_MAX ? "..." : "");
                else
                        fprintf(stderr, "%s); --type %s=raw keeps the bytes\n",
                                it->mmkv_len > SHOW_BYTES_MAX ? "..." : "", shown ? shown : "KEY");
                return -EBADMSG;
        }
        return 0;
}

/* Live records to typed items. A key or value that cannot be imported
 * is said and counted: in im->left_out with --force, else in
 * im->errors. -ENOMEM when out of memory. */
static int import_items(struct records *rs, struct import_args *a, bool expiry, struct import *im) {
        uint32_t now = (uint32_t) time(NULL);
        int r;

        im->items = calloc(rs->n ? rs->n : 1, sizeof(*im->items));
        if (!im->items)
                return -ENOMEM;
        for (size_t i = 0; i < rs->n; i++) {
                struct item *it = &im->items[im->n];

                *it = (struct item) { .mmkv = rs->v[i].value, .mmkv_len = rs->v[i].value_len };
                r = item_key(it, &rs->v[i], a->force);
                if (r == 0 && expiry && strip_expiry(it, now)) {
                        im->expired++;
                        r = 1;
                } else if (r == 0)
                        r = item_type(it, a, im);
                if (r == -ENOMEM)
                        return r;
                if (r == 0) {
                        im->n++;
                        continue;
                }
                free(it->key);
                if (r < 0 && a->force)
                        im->left_out++;
                else if (r < 0)
                        im->errors++;
        }
        return 0;
}

static void print_string(FILE *f, const uint8_t *p, size_t len) {
        _cleanup_free_ char *s = strndup((const char *) p, len), *shown = s ? cescape(s) : NULL;

        fputs(shown ? shown : "?", f);
}

/* KEY<TAB>TYPE<TAB>VALUE, the key and strings escaped as ashm prints
 * names, bytes in hex. */
static void print_item(FILE *f, const struct item *it) {
        _cleanup_free_ char *key = cescape(it->key);
        const uint8_t *v = item_value(it);
        char num[64];
        float fl;
        double d;

        fprintf(f, "%s\t%s\t", key ? key : "?", type_name(it->type));
        switch (it->type) {
        case ASHM_KV_BOOL:
                fputs(v[0] ? "true" : "false", f);
                break;
        case ASHM_KV_INT32:
                fprintf(f, "%" PRId32, (int32_t) get_le32(v));
                break;
        case ASHM_KV_INT64:
                fprintf(f, "%" PRId64, (int64_t) get_le64(v));
                break;
        case ASHM_KV_UINT64:
                fprintf(f, "%" PRIu64, get_le64(v));
                break;
        case ASHM_KV_FLOAT:
                memcpy(&fl, v, 4);
                kv_format_real(fl, true, num, sizeof(num));
                fputs(num, f);
                break;
        case ASHM_KV_DOUBLE:
                memcpy(&d, v, 8);
                kv_format_real(d, false, num, sizeof(num));
                fputs(num, f);
                break;
        case ASHM_KV_STRING:
                print_string(f, v, it->len);
                break;
        default:
                print_hex(f, v, it->len);
                break;
        }
        fputc('\n', f);
}

static int import_write(ashm_kv *kv, const struct import *im, const char *path) {
        for (size_t i = 0; i < im->n; i++) {
                const struct item *it = &im->items[i];
                int type = it->type == TYPE_RAW ? ASHM_KV_BYTES : it->type;
                int r = ashm_kv_set(kv, it->key, type, item_value(it), it->len);

                if (r < 0) {
                        _cleanup_free_ char *shown = cescape(it->key);

                        say("cannot set '%s': %s; %zu of the %zu keys were imported", shown ? shown : "?",
                            strerror(-r), i, im->n);
                        return EXIT_FAILURE;
                }
        }
        printf("imported %zu keys from %s", im->n, path);
        if (im->guessed)
                printf(", %zu types guessed", im->guessed);
        if (im->left_out)
                printf(", %zu keys left out", im->left_out);
        if (im->expired)
                printf(", %zu expired keys left out", im->expired);
        printf("\n");
        return EXIT_SUCCESS;
}

/* After typing: unused hints, the summary of guesses, then write or
 * print. */
static int import_finish(ashm_kv *kv, struct import_args *a, struct import *im) {
        for (size_t i = 0; i < a->n_hints; i++)
                if (!a->hints[i].used) {
                        _cleanup_free_ char *shown = cescape(a->hints[i].arg);

                        say("warning: --type %s: no such key in %s", shown ? shown : "?", a->path);
                }
        if (im->errors) {
                say("%zu %s: nothing imported", im->errors, im->errors == 1 ? "problem" : "problems");
                return EXIT_FAILURE;
        }
        if (im->guessed)
                say("guessed %zu of %zu types: check them, and give --type KEY=TYPE where a guess is wrong",
                    im->guessed, im->n);
        if (a->dry_run) {
                for (size_t i = 0; i < im->n; i++)
                        print_item(stdout, &im->items[i]);
                return EXIT_SUCCESS;
        }
        return import_write(kv, im, a->path);
}

int kv_import_mmkv(ashm_kv *kv, int argc, char *argv[]) {
        struct import_args a = { .default_type = TYPE_GUESS };
        struct image img = {};
        struct records rs = {};
        struct import im = {};
        struct body body;
        int r, ret = EXIT_FAILURE;

        prog = "ashm kv import-mmkv";
        r = import_args(argc, argv, &a);
        if (r >= 0) {
                free(a.hints);
                return r;
        }
        if (load_image(a.path, &img) < 0 || choose_body(&img, a.force, &body) < 0)
                goto out;
        r = decode_body(&img, &body, a.force, &rs);
        if (r == -ENOMEM)
                say("out of memory");
        if (r < 0)
                goto out;
        if (img.meta.flags & FLAG_KEY_EXPIRE)
                say("key expiration is on in %s: each value's expiry time is dropped (ashm keys do not expire)",
                    a.path);
        r = import_items(&rs, &a, img.meta.flags & FLAG_KEY_EXPIRE, &im);
        if (r < 0) {
                say("out of memory");
                goto out;
        }
        ret = import_finish(kv, &a, &im);
out:
        import_done(&im);
        free(rs.v);
        image_done(&img);
        free(a.hints);
        return ret;
}

/* ------------------------------------------------------------------ */
/* export-mmkv                                                         */
/* ------------------------------------------------------------------ */

struct buf {
        uint8_t *p;
        size_t len, cap;
};

static int buf_reserve(struct buf *b, size_t more) {
        size_t cap = b->cap ? b->cap : MMKV_PAGE;
        uint8_t *p;

        if (more > SIZE_MAX / 2 - b->len)
                return -ENOMEM;
        while (cap < b->len + more)
                cap *= 2;
        if (cap == b->cap)
                return 0;
        p = realloc(b->p, cap);
        if (!p)
                return -ENOMEM;
        b->p = p;
        b->cap = cap;
        return 0;
}

static void put_varint(struct buf *b, uint64_t v) {
        for (; v >= 0x80; v >>= 7)
                b->p[b->len++] = (uint8_t) (v | 0x80);
        b->p[b->len++] = (uint8_t) v;
}

/* value (ashm's encoding of type) as MMKV encodes it, with its varint
 * valueLen in front: the record's second half. */
static int put_value(struct buf *b, int type, const uint8_t *v, size_t len) {
        static const size_t sizes[] = { [ASHM_KV_BOOL] = 1, [ASHM_KV_INT32] = 4, [ASHM_KV_INT64] = 8,
                                        [ASHM_KV_UINT64] = 8, [ASHM_KV_FLOAT] = 4, [ASHM_KV_DOUBLE] = 8 };
        uint64_t n;
        int r;

        if (type < ASHM_KV_BOOL || type > ASHM_KV_BYTES)
                return -EPROTOTYPE;
        if (type_scalar(type) && len != sizes[type])
                return -EBADMSG;
        r = buf_reserve(b, 2 * 10 + len);
        if (r < 0)
                return r;
        switch (type) {
        case ASHM_KV_BOOL:
                put_varint(b, 1);
                put_varint(b, v[0] != 0);
                return 0;
        case ASHM_KV_INT32:
                /* protobuf's int32: a negative one as its int64, 10 bytes */
                n = (uint64_t) (int64_t) (int32_t) get_le32(v);
                put_varint(b, varint_size(n));
                put_varint(b, n);
                return 0;
        case ASHM_KV_INT64:
        case ASHM_KV_UINT64:
                n = get_le64(v);
                put_varint(b, varint_size(n));
                put_varint(b, n);
                return 0;
        case ASHM_KV_FLOAT:
        case ASHM_KV_DOUBLE:
                put_varint(b, len);
                break;
        default: /* string, bytes: MMKV's writeData(), length-prefixed */
                put_varint(b, varint_size(len) + len);
                put_varint(b, len);
                break;
        }
        memcpy(b->p + b->len, v, len);
        b->len += len;
        return 0;
}

struct export_key {
        char *key;
        size_t len; /* of the value, as foreach saw it */
};

struct export_keys {
        struct export_key *v;
        size_t n, cap;
};

static int collect_key(const char *key, int type, size_t value_len, void *userdata) {
        struct export_keys *ks = userdata;

        if (ks->n == ks->cap) {
                size_t cap = ks->cap ? ks->cap * 2 : 256;
                struct export_key *v = reallocarray(ks->v, cap, sizeof(*v));

                if (!v)
                        return -ENOMEM;
                ks->v = v;
                ks->cap = cap;
        }
        ks->v[ks->n].key = strdup(key);
        if (!ks->v[ks->n].key)
                return -ENOMEM;
        ks->v[ks->n++].len = value_len;
        return 0;
}

static int export_key_cmp(const void *a, const void *b) {
        return strcmp(((const struct export_key *) a)->key, ((const struct export_key *) b)->key);
}

/* Get one value whole, however it changed since foreach saw it. */
static int get_value(ashm_kv *kv, const char *key, size_t hint, int *ret_type, uint8_t **ret, size_t *ret_len) {
        size_t size = hint, len = 0;

        for (;;) {
                _cleanup_free_ uint8_t *v = malloc(size ? size : 1);
                int r;

                if (!v)
                        return -ENOMEM;
                r = ashm_kv_get(kv, key, ret_type, v, size, &len);
                if (r < 0)
                        return r;
                if (len <= size) {
                        *ret = TAKE_PTR(v);
                        *ret_len = len;
                        return 0;
                }
                size = len;
        }
}

/* The records of every key into b (after its header and holder). */
static int export_records(ashm_kv *kv, struct export_keys *ks, struct buf *b, size_t *ret_n) {
        size_t n = 0;

        for (size_t i = 0; i < ks->n; i++) {
                _cleanup_free_ char *shown = NULL;
                _cleanup_free_ uint8_t *v = NULL;
                size_t key_len = strlen(ks->v[i].key), len;
                int type, r;

                r = get_value(kv, ks->v[i].key, ks->v[i].len, &type, &v, &len);
                if (r == -ENOENT)
                        continue; /* removed since foreach: not in the snapshot we write */
                if (r >= 0)
                        r = buf_reserve(b, 10 + key_len);
                if (r >= 0) {
                        put_varint(b, key_len);
                        memcpy(b->p + b->len, ks->v[i].key, key_len);
                        b->len += key_len;
                        r = put_value(b, type, v, len);
                }
                if (r < 0) {
                        shown = cescape(ks->v[i].key);
                        say("cannot export '%s': %s", shown ? shown : "?",
                            r == -EPROTOTYPE ? "a type MMKV has no encoding for" : strerror(-r));
                        return r;
                }
                n++;
        }
        *ret_n = n;
        return 0;
}

/* Write buf (len bytes, zero-filled to file_len) to a new file beside
 * path, flushed: *ret_tmp names it. */
static int write_temp(const char *path, const void *buf, size_t len, size_t file_len, char **ret_tmp) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -1;
        int r;

        if (asprintf(&tmp, "%s.XXXXXX", path) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                say("cannot create a file beside %s: %s", path, strerror(-r));
                return r;
        }
        r = write_full(fd, buf, len);
        if (r >= 0 && ftruncate(fd, (off_t) file_len) < 0)
                r = -errno;
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r < 0) {
                say("cannot write %s: %s", tmp, strerror(-r));
                unlink(tmp);
                return r;
        }
        *ret_tmp = TAKE_PTR(tmp);
        return 0;
}

static void fsync_dir_of(const char *path) {
        _cleanup_free_ char *copy = strdup(path);
        _cleanup_close_ int fd = -1;

        if (!copy)
                return;
        fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0)
                (void) fsync(fd);
}

/* Both files are written in full and flushed under temporary names, then
 * renamed over the old ones, data first: a crash leaves each file whole,
 * old or new. Between the two renames a new data file sits beside the
 * old meta; MMKV and import both see the checksum fail and say so (the
 * export is to be run again), but never read half of a file. */
static int write_pair(const char *path, const struct buf *data, size_t data_len, const uint8_t *meta) {
        _cleanup_free_ char *meta_path = NULL, *data_tmp = NULL, *meta_tmp = NULL;
        int r;

        if (asprintf(&meta_path, "%s.crc", path) < 0)
                return -ENOMEM;
        r = write_temp(path, data->p, data->len, data_len, &data_tmp);
        if (r < 0)
                return r;
        r = write_temp(meta_path, meta, META_LEN, MMKV_PAGE, &meta_tmp);
        if (r < 0) {
                unlink(data_tmp);
                return r;
        }
        if (rename(data_tmp, path) < 0) {
                r = -errno;
                say("cannot rename %s to %s: %s", data_tmp, path, strerror(-r));
                unlink(data_tmp);
                unlink(meta_tmp);
                return r;
        }
        if (rename(meta_tmp, meta_path) < 0) {
                r = -errno;
                say("cannot rename %s to %s: %s; %s is new and does not match it", meta_tmp, meta_path,
                    strerror(-r), path);
                unlink(meta_tmp);
                return r;
        }
        fsync_dir_of(path);
        return 0;
}

/* The meta of a store just rewritten whole: version 4, no flags, no IV,
 * and lastConfirmed equal to the current state, as after MMKV's own full
 * write-back (so a later damaged append rolls back to this). */
static void meta_build(uint8_t *meta, uint32_t size, uint32_t crc) {
        memset(meta, 0, META_LEN);
        put_le32(meta, crc);
        put_le32(meta + 4, VERSION_FLAG);
        put_le32(meta + 8, 1); /* sequence: one full write-back */
        put_le32(meta + 28, size);
        put_le32(meta + 32, size);
        put_le32(meta + 36, crc);
}

static int export_args(int argc, char *argv[], const char **ret_path) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        cli_verb_help("kv", stdout);
                        return EXIT_SUCCESS;
                default:
                        return cli_bad_option("kv", c, argv);
                }
        if (optind + 1 != argc) {
                fprintf(stderr, "%s: %s; see 'ashm help kv'\n", prog,
                        optind == argc ? "which MMKV data file?" : "one MMKV data file only");
                return EXIT_USAGE;
        }
        *ret_path = argv[optind];
        return -1;
}

static void export_keys_done(struct export_keys *ks) {
        for (size_t i = 0; i < ks->n; i++)
                free(ks->v[i].key);
        free(ks->v);
}

int kv_export_mmkv(ashm_kv *kv, int argc, char *argv[]) {
        struct export_keys ks = {};
        struct buf b = {};
        uint8_t meta[META_LEN];
        const char *path = NULL;
        size_t n, body_len, file_len;
        uint32_t crc;
        int r, ret = EXIT_FAILURE;

        prog = "ashm kv export-mmkv";
        r = export_args(argc, argv, &path);
        if (r >= 0)
                return r;
        r = ashm_kv_foreach(kv, collect_key, &ks);
        if (r < 0) {
                say("cannot list the keys of the store: %s", strerror(-r));
                goto out;
        }
        if (ks.n > 1)
                qsort(ks.v, ks.n, sizeof(*ks.v), export_key_cmp);
        r = buf_reserve(&b, DATA_HEADER_LEN + sizeof(mmkv_holder));
        if (r < 0) {
                say("out of memory");
                goto out;
        }
        b.len = DATA_HEADER_LEN;
        memcpy(b.p + b.len, mmkv_holder, sizeof(mmkv_holder));
        b.len += sizeof(mmkv_holder);
        if (export_records(kv, &ks, &b, &n) < 0)
                goto out;
        body_len = b.len - DATA_HEADER_LEN;
        if (body_len >= UINT32_MAX - MMKV_PAGE) {
                say("%zu bytes of records: more than MMKV's 32-bit sizes can hold", body_len);
                goto out;
        }
        crc = crc32_zlib(0, b.p + DATA_HEADER_LEN, body_len);
        put_le32(b.p, (uint32_t) body_len); /* v1.3.3 keeps it here too */
        meta_build(meta, (uint32_t) body_len, crc);
        file_len = (b.len + MMKV_PAGE - 1) / MMKV_PAGE * MMKV_PAGE;
        if (write_pair(path, &b, file_len, meta) < 0)
                goto out;
        printf("exported %zu keys to %s and %s.crc\n", n, path, path);
        ret = EXIT_SUCCESS;
out:
        free(b.p);
        export_keys_done(&ks);
        return ret;
}
