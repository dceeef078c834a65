/* SPDX-License-Identifier: MIT */
/* Writing an MMKV store (mmkv-format.h), as MMKV v1.3.3 reads it. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ashm.h"
#include "fd-util.h"
#include "macro.h"
#include "mmkv-codec.h"
#include "mmkv-format.h"
#include "unaligned.h"

static int buf_reserve(struct mmkv_writer *b, size_t more) {
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

static void put_varint(struct mmkv_writer *b, uint64_t v) {
        for (; v >= 0x80; v >>= 7)
                b->p[b->len++] = (uint8_t) (v | 0x80);
        b->p[b->len++] = (uint8_t) v;
}

/* value (ashm's encoding of type) as MMKV encodes it, with its varint
 * valueLen in front: the record's second half. */
static int put_value(struct mmkv_writer *b, int type, const uint8_t *v, size_t len) {
        int want = ashm_kv_type_size(type);
        uint64_t n;
        int r;

        if (want < 0)
                return -EPROTOTYPE;
        if (want > 0 && len != (size_t) want)
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
                put_varint(b, mmkv_varint_size(n));
                put_varint(b, n);
                return 0;
        case ASHM_KV_INT64:
        case ASHM_KV_UINT64:
                n = get_le64(v);
                put_varint(b, mmkv_varint_size(n));
                put_varint(b, n);
                return 0;
        case ASHM_KV_FLOAT:
        case ASHM_KV_DOUBLE:
                put_varint(b, len);
                break;
        default: /* string, bytes: MMKV's writeData(), length-prefixed */
                put_varint(b, mmkv_varint_size(len) + len);
                put_varint(b, len);
                break;
        }
        memcpy(b->p + b->len, v, len);
        b->len += len;
        return 0;
}
static int write_temp(const char *path, const void *buf, size_t len, size_t file_len, char **ret_tmp, struct mmkv_notes *notes) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -1;
        int r;

        if (asprintf(&tmp, "%s.XXXXXX", path) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                mmkv_note(notes, "cannot create a file beside %s: %s", path, strerror(-r));
                return r;
        }
        r = write_full(fd, buf, len);
        if (r >= 0 && ftruncate(fd, (off_t) file_len) < 0)
                r = -errno;
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r < 0) {
                mmkv_note(notes, "cannot write %s: %s", tmp, strerror(-r));
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
static int write_pair(const char *path, const struct mmkv_writer *data, size_t data_len, const uint8_t *meta, struct mmkv_notes *notes) {
        _cleanup_free_ char *meta_path = NULL, *data_tmp = NULL, *meta_tmp = NULL;
        int r;

        if (asprintf(&meta_path, "%s.crc", path) < 0)
                return -ENOMEM;
        r = write_temp(path, data->p, data->len, data_len, &data_tmp, notes);
        if (r < 0)
                return r;
        r = write_temp(meta_path, meta, MMKV_META_LEN, MMKV_PAGE, &meta_tmp, notes);
        if (r < 0) {
                unlink(data_tmp);
                return r;
        }
        if (rename(data_tmp, path) < 0) {
                r = -errno;
                mmkv_note(notes, "cannot rename %s to %s: %s", data_tmp, path, strerror(-r));
                unlink(data_tmp);
                unlink(meta_tmp);
                return r;
        }
        if (rename(meta_tmp, meta_path) < 0) {
                r = -errno;
                mmkv_note(notes, "cannot rename %s to %s: %s; %s is new and does not match it", meta_tmp, meta_path,
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
        memset(meta, 0, MMKV_META_LEN);
        put_le32(meta, crc);
        put_le32(meta + 4, VERSION_FLAG);
        put_le32(meta + 8, 1); /* sequence: one full write-back */
        put_le32(meta + 28, size);
        put_le32(meta + 32, size);
        put_le32(meta + 36, crc);
}


int mmkv_writer_init(struct mmkv_writer *w) {
        int r;

        *w = (struct mmkv_writer) {};
        r = buf_reserve(w, DATA_HEADER_LEN + sizeof(mmkv_holder));
        if (r < 0)
                return r;
        w->len = DATA_HEADER_LEN;
        memcpy(w->p + w->len, mmkv_holder, sizeof(mmkv_holder));
        w->len += sizeof(mmkv_holder);
        return 0;
}

int mmkv_writer_add(struct mmkv_writer *w, const char *key, size_t key_len, int type, const uint8_t *v,
                    size_t len) {
        size_t start = w->len;
        int r;

        r = buf_reserve(w, 10 + key_len);
        if (r < 0)
                return r;
        put_varint(w, key_len);
        memcpy(w->p + w->len, key, key_len);
        w->len += key_len;
        r = put_value(w, type, v, len);
        if (r < 0)
                w->len = start; /* nothing of a key that could not be written */
        return r;
}

int mmkv_writer_save(struct mmkv_writer *w, const char *path, struct mmkv_notes *notes) {
        uint8_t meta[MMKV_META_LEN];
        size_t body_len = w->len - DATA_HEADER_LEN, file_len;
        uint32_t crc;

        if (body_len >= UINT32_MAX - MMKV_PAGE) {
                mmkv_note(notes, "%zu bytes of records: more than MMKV's 32-bit sizes can hold", body_len);
                return -EFBIG;
        }
        crc = mmkv_crc32(0, w->p + DATA_HEADER_LEN, body_len);
        put_le32(w->p, (uint32_t) body_len); /* v1.3.3 keeps it here too */
        meta_build(meta, (uint32_t) body_len, crc);
        file_len = (w->len + MMKV_PAGE - 1) / MMKV_PAGE * MMKV_PAGE;
        return write_pair(path, w, file_len, meta, notes);
}

void mmkv_writer_done(struct mmkv_writer *w) {
        free(w->p);
        *w = (struct mmkv_writer) {};
}

