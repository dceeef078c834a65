/* SPDX-License-Identifier: MIT */
/* Reading an MMKV store (mmkv-format.h): MMKV v1.3.3's checkDataValid()
 * and decodeOneMap() (docs/mmkv.md; MMKV_IO.cpp, MMKVMetaInfo.hpp there),
 * said out loud. Where MMKV would roll back or wipe a damaged store
 * without a word, this says what it used and what it left out, or stops. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ashm.h"
#include "fd-util.h"
#include "macro.h"
#include "mmkv-codec.h"
#include "mmkv-format.h"
#include "unaligned.h"

/* A key as apps write them: printable UTF-8, not even a tab or newline. */
static bool key_sane(const uint8_t *p, size_t n) {
        return mmkv_utf8_ok(p, n, true) && !memchr(p, '\t', n) && !memchr(p, '\n', n) && !memchr(p, '\r', n);
}

/* Keys as bytes: memcmp() order, a prefix first. */
static int key_cmp(const void *a, size_t a_len, const void *b, size_t b_len) {
        int c = memcmp(a, b, MIN(a_len, b_len));

        return c ? c : (a_len > b_len) - (a_len < b_len);
}

/* ------------------------------------------------------------------ */
/* Reading an MMKV store                                               */
/* ------------------------------------------------------------------ */

void mmkv_image_done(struct mmkv_image *img) {
        free(img->data);
        free(img->path);
        *img = (struct mmkv_image) {};
}

bool mmkv_image_expires_keys(const struct mmkv_image *img) {
        return img->meta.flags & FLAG_KEY_EXPIRE;
}

/* The whole of the regular file fd into *ret (to be freed). */
static int read_file(int fd, uint8_t **ret, size_t *ret_len) {
        struct stat st;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
        /* MMKV's sizes are 32-bit */
        return read_all(fd, (size_t) UINT32_MAX + DATA_HEADER_LEN + MMKV_PAGE, ret, ret_len);
}

static void meta_parse(const uint8_t *p, struct mmkv_meta *m) {
        m->crc = get_le32(p);
        m->version = get_le32(p + 4);
        m->sequence = get_le32(p + 8);
        memcpy(m->iv, p + 12, sizeof(m->iv));
        m->actual_size = get_le32(p + 28);
        m->last_size = get_le32(p + 32);
        m->last_crc = get_le32(p + 36);
        m->flags = get_le64(p + 104);
}

/* The meta file's bytes: MMKV zero-fills a short one to a page, and so
 * does this. */
static void meta_take(const uint8_t *buf, size_t len, const char *meta_path, struct mmkv_image *img,
                      struct mmkv_notes *notes) {
        uint8_t page[MMKV_META_LEN] = {};

        memcpy(page, buf, MIN(len, sizeof(page)));
        meta_parse(page, &img->meta);
        img->have_meta = true;
        img->meta_len = len;
        if (len < MMKV_META_LEN)
                mmkv_note(notes, "warning: %s is %zu bytes, shorter than MMKV's %u-byte meta: the rest is read as zeros, "
                     "as MMKV does", meta_path, len, MMKV_META_LEN);
}

static int load_meta(int fd, const char *meta_path, struct mmkv_image *img, struct mmkv_notes *notes) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len;
        int r;

        r = read_file(fd, &buf, &len);
        if (r < 0) {
                mmkv_note(notes, "cannot read %s: %s", meta_path, strerror(-r));
                return r;
        }
        meta_take(buf, len, meta_path, img, notes);
        return 0;
}

int mmkv_image_load(const char *path, struct mmkv_image *img, struct mmkv_notes *notes) {
        _cleanup_free_ char *meta_path = NULL;
        _cleanup_close_ int meta_fd = -1, fd = -1;
        int r;

        *img = (struct mmkv_image) {};
        if (asprintf(&meta_path, "%s.crc", path) < 0 || !(img->path = strdup(path)))
                return -ENOMEM;
        meta_fd = open(meta_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (meta_fd < 0 && errno != ENOENT) {
                r = -errno;
                mmkv_note(notes, "cannot open %s: %s", meta_path, strerror(-r));
                return r;
        }
        /* MMKV in multi-process mode writes under flock() on the .crc
         * file: holding it shared while reading gets a consistent pair
         * from such a store. (Single-process MMKV takes no lock; the
         * checksum tells when the pair was caught mid-write.) */
        if (meta_fd >= 0 && flock(meta_fd, LOCK_SH) < 0)
                mmkv_note(notes, "warning: cannot lock %s (%s): reading it unlocked", meta_path, strerror(errno));
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                r = -errno;
                mmkv_note(notes, "cannot open %s: %s", path, strerror(-r));
                return r;
        }
        r = read_file(fd, &img->data, &img->data_len);
        if (r < 0) {
                mmkv_note(notes, "cannot read %s: %s", path, r == -EINVAL ? "not a regular file" : strerror(-r));
                return r;
        }
        if (meta_fd >= 0)
                return load_meta(meta_fd, meta_path, img, notes);
        return 0;
}

int mmkv_image_from_bytes(const char *path, const uint8_t *data, size_t data_len, const uint8_t *meta,
                          size_t meta_len, struct mmkv_image *img, struct mmkv_notes *notes) {
        _cleanup_free_ char *meta_path = NULL;

        *img = (struct mmkv_image) {};
        if (asprintf(&meta_path, "%s.crc", path) < 0 || !(img->path = strdup(path)) ||
            !(img->data = malloc(data_len ? data_len : 1))) {
                mmkv_image_done(img);
                return -ENOMEM;
        }
        memcpy(img->data, data, data_len);
        img->data_len = data_len;
        if (meta)
                meta_take(meta, meta_len, meta_path, img, notes);
        return 0;
}

/* ------------------------------------------------------------------ */
/* Which bytes to trust: MMKV's checkDataValid(), said out loud         */
/* ------------------------------------------------------------------ */

struct body {
        size_t size;   /* bytes of the body to decode */
        bool verified; /* the checksum matched them */
};

static size_t body_max(const struct mmkv_image *img) {
        return img->data_len - DATA_HEADER_LEN;
}

/* MMKV's own bounds test for a size, then its checksum. */
static bool size_fits(const struct mmkv_image *img, uint32_t size) {
        return size < img->data_len && (size_t) size + DATA_HEADER_LEN <= img->data_len;
}

static bool crc_matches(const struct mmkv_image *img, uint32_t size, uint32_t crc) {
        return size_fits(img, size) && mmkv_crc32(0, img->data + DATA_HEADER_LEN, size) == crc;
}

/* Why size and crc do not check, for messages. */
static void mismatch_reason(const struct mmkv_image *img, uint32_t size, uint32_t crc, char *buf, size_t len) {
        if (!size_fits(img, size))
                snprintf(buf, len, "but the data file holds only %zu bytes after its header%s", body_max(img),
                         img->data_len % MMKV_PAGE ? ", and is not whole pages: truncated?" : "");
        else
                snprintf(buf, len, "whose CRC-32 is %08" PRIx32 " where the meta file says %08" PRIx32,
                         mmkv_crc32(0, img->data + DATA_HEADER_LEN, size), crc);
}

/* The meta's version and flags as v1.3.3 reads them (loadMetaInfoAndCheck). */
static void meta_normalize(struct mmkv_image *img, struct mmkv_notes *notes) {
        struct mmkv_meta *m = &img->meta;

        if (m->version >= VERSION_HOLDER) {
                mmkv_note(notes, "warning: %s.crc has meta version %" PRIu32 ", which MMKV v1.3.3 takes for a half-written meta: "
                    "like MMKV, reading it as version %d with no flags",
                    img->path, m->version, VERSION_ACTUAL_SIZE);
                m->version = VERSION_ACTUAL_SIZE;
                m->flags = 0;
        }
        if (m->version < VERSION_FLAG)
                m->flags = 0;
}

/* No meta file: only --force goes on, with the data file's own size. */
static int choose_without_meta(const struct mmkv_image *img, bool force, struct body *ret, struct mmkv_notes *notes) {
        uint32_t head = get_le32(img->data);

        if (!force) {
                mmkv_note(notes, "%s.crc: %s: MMKV keeps the checksum and the size of the data there, so %s cannot be verified. "
                    "--force imports the records that decode, unverified",
                    img->path, strerror(ENOENT), img->path);
                return -ENOENT;
        }
        ret->size = size_fits(img, head) ? head : body_max(img);
        ret->verified = false;
        mmkv_note(notes, "--force: no %s.crc: decoding %zu bytes (%s), unverified", img->path, ret->size,
            size_fits(img, head) ? "the size in the data file's header" : "the whole file");
        return 0;
}

/* The meta's size fails: v1.3.3 tries the data file's own size with
 * the meta's crc (a store an old MMKV wrote to), then lastConfirmed,
 * the size and crc of the last full write-back, which it msync()ed. */
static int choose_fallback(const struct mmkv_image *img, uint32_t size, bool force, struct body *ret, struct mmkv_notes *notes) {
        const struct mmkv_meta *m = &img->meta;
        uint32_t head = get_le32(img->data);
        size_t claimed = MIN((size_t) size, body_max(img));
        char why[160], last_why[160];

        mismatch_reason(img, size, m->crc, why, sizeof(why));
        if (m->version >= VERSION_ACTUAL_SIZE && head != size && crc_matches(img, head, m->crc)) {
                mmkv_note(notes, "%s: checksum mismatch over the %" PRIu32 " bytes that %s.crc names (%s); the %" PRIu32
                    " bytes that the data file's own header names match it (a store that an older MMKV wrote "
                    "to): using those%s",
                    img->path, size, img->path, why, head, head < claimed ? ", the rest is ignored" : "");
                *ret = (struct body) { head, true };
                return 0;
        }
        if (m->version >= VERSION_ACTUAL_SIZE && m->last_size > sizeof(mmkv_holder) &&
            crc_matches(img, m->last_size, m->last_crc)) {
                mmkv_note(notes, "%s: checksum mismatch over the %" PRIu32 " bytes that %s.crc names (%s). Using the last "
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
                mmkv_note(notes, "%s: checksum mismatch over the %" PRIu32 " bytes that %s.crc names (%s), and nothing to fall "
                    "back on (%s). MMKV would discard the whole store here. --force imports the records that "
                    "decode, unverified",
                    img->path, size, img->path, why, last_why);
                return -EBADMSG;
        }
        mmkv_note(notes, "--force: checksum mismatch over the %" PRIu32 " bytes that %s.crc names (%s; %s): decoding them "
            "unverified",
            size, img->path, why, last_why);
        *ret = (struct body) { claimed, false };
        return 0;
}

static int choose_body(struct mmkv_image *img, bool force, struct body *ret, struct mmkv_notes *notes) {
        uint32_t size;

        if (img->data_len < DATA_HEADER_LEN) {
                mmkv_note(notes, "%s: not an MMKV data file: %zu bytes (MMKV writes whole pages)", img->path, img->data_len);
                return -EBADMSG;
        }
        if (!img->have_meta)
                return choose_without_meta(img, force, ret, notes);
        meta_normalize(img, notes);
        size = img->meta.version >= VERSION_ACTUAL_SIZE ? img->meta.actual_size : get_le32(img->data);
        if (crc_matches(img, size, img->meta.crc)) {
                *ret = (struct body) { size, true };
                return 0;
        }
        return choose_fallback(img, size, force, ret, notes);
}

/* ------------------------------------------------------------------ */
/* Records                                                             */
/* ------------------------------------------------------------------ */

static int records_add(struct mmkv_records *rs, const struct mmkv_record *r) {
        if (rs->n == rs->cap) {
                size_t cap = rs->cap ? rs->cap * 2 : 64;
                struct mmkv_record *v = reallocarray(rs->v, cap, sizeof(*v));

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
static int parse_records(const uint8_t *body, size_t len, bool sane_keys, struct mmkv_records *rs, size_t *ret_end,
                         const char **ret_why) {
        size_t pos = 0;
        uint64_t holder;
        int r;

        *ret_end = 0;
        if (len == 0)
                return 0;
        pos = mmkv_varint_get(body, len, &holder);
        if (pos == 0) {
                *ret_why = "item-size holder is not a varint";
                return 0;
        }
        while (pos < len) {
                struct mmkv_record rec = { .offset = pos };
                size_t k;

                *ret_end = pos;
                k = mmkv_length_get(body + pos, len - pos, &rec.key_len);
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
                k = mmkv_length_get(body + pos, len - pos, &rec.value_len);
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
        const struct mmkv_record *x = a, *y = b;
        int c = key_cmp(x->key, x->key_len, y->key, y->key_len);

        return c ? c : (x->offset > y->offset) - (x->offset < y->offset);
}

/* Keep the last record of each key, and drop the keys whose last record
 * removes them (valueLen 0). Leaves rs sorted by key. */
static void records_settle(struct mmkv_records *rs) {
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

static bool keys_utf8(const struct mmkv_records *rs) {
        for (size_t i = 0; i < rs->n; i++)
                if (!mmkv_utf8_ok(rs->v[i].key, rs->v[i].key_len, false))
                        return false;
        return true;
}

/* An encrypted store's body is AES-CFB output: its holder is not v1.3.3's
 * plain ff ff ff 07 and its records do not decode, and its meta holds an
 * IV (version 2 and up); its checksum, over the ciphertext, matches. A
 * plain store may hold an IV too (clearAll() writes a random one), so
 * the IV alone says nothing. */
static bool looks_encrypted(const struct mmkv_image *img, const struct body *b, bool decoded) {
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
static int decode_body(const struct mmkv_image *img, const struct body *b, bool force, struct mmkv_records *rs, struct mmkv_notes *notes) {
        const char *why = NULL;
        size_t end;
        int r;

        r = parse_records(img->data + DATA_HEADER_LEN, b->size, !b->verified, rs, &end, &why);
        if (r < 0)
                return r;
        if (looks_encrypted(img, b, end == b->size && keys_utf8(rs))) {
                mmkv_note(notes, "%s: the store looks encrypted (its meta holds an AES IV, and its body is not plain MMKV "
                    "records): ashm cannot decrypt MMKV stores. Have the app decrypt it (MMKV reKey(\"\")) and "
                    "import the copy",
                    img->path);
                return -EPROTONOSUPPORT;
        }
        if (end < b->size && !force) {
                mmkv_note(notes, "%s: the checksum matches, but the record at body offset %zu does not decode (%s): "
                    "not an MMKV store, or one encrypted without an IV in its meta. --force imports the records "
                    "before it",
                    img->path, end, why);
                return -EBADMSG;
        }
        if (end < b->size && rs->n == 0) {
                mmkv_note(notes, "--force: nothing in %s decodes as MMKV records (%s, at body offset %zu)", img->path, why, end);
                return -EBADMSG;
        }
        if (end < b->size)
                mmkv_note(notes, "--force: the records look intact up to body offset %zu of %zu (there: %s): the %zu bytes "
                    "from there on are ignored",
                    end, b->size, why, b->size - end);
        records_settle(rs);
        return 0;
}

int mmkv_decode(struct mmkv_image *img, bool force, struct mmkv_records *ret, struct mmkv_notes *notes) {
        struct mmkv_records rs = {};
        struct body b;
        int r;

        r = choose_body(img, force, &b, notes);
        if (r < 0)
                return r;
        r = decode_body(img, &b, force, &rs, notes);
        if (r < 0) {
                mmkv_records_done(&rs);
                return r;
        }
        *ret = rs;
        return 0;
}

void mmkv_records_done(struct mmkv_records *rs) {
        free(rs->v);
        *rs = (struct mmkv_records) {};
}

