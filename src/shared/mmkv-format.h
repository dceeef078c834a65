/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Tencent MMKV's files, as MMKV v1.3.3 writes them on Android
 * (docs/mmkv.md): reading a store into its live records, typing and
 * guessing values, and writing a store. Uses libashm's public header for
 * the value types and never prints: what it finds on the way (a
 * fallback taken, a warning, why it stopped) it adds to a note list in
 * words a user can act on, for the caller to show.
 *
 *   data  <id>      u32 LE size | body: varint item-size holder, then
 *                   records "varint keyLen | key | varint valueLen | value"
 *                   up to the size; whole pages
 *   meta  <id>.crc  u32 crc32(body) | u32 version | u32 sequence |
 *                   u8 iv[16] | u32 size | u32 lastConfirmed size, crc |
 *                   u32 reserved[16] | u64 flags; one page
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MMKV_PAGE 4096u      /* files are whole pages; 4 KiB divides all of Android's */
#define MMKV_META_LEN 112u   /* sizeof(MMKVMetaInfo) */

/* Import types beyond enum ashm_kv_type: "guess" (name none) and "raw"
 * (the value's bytes exactly as MMKV stored them). */
enum { MMKV_TYPE_GUESS = 0, MMKV_TYPE_RAW = 100 };

/* What reading or writing found, one line each, in the order found. A
 * line that starts "warning: " is one; the others say what was done or
 * why it stopped. */
struct mmkv_notes {
        char **v;
        size_t n;
};
void mmkv_notes_clear(struct mmkv_notes *notes);

struct mmkv_meta {
        uint32_t crc, version, sequence, actual_size, last_size, last_crc;
        uint8_t iv[16];
        uint64_t flags;
};

struct mmkv_image {
        char *path;    /* the data file's, for the notes */
        uint8_t *data; /* the whole data file */
        size_t data_len;
        struct mmkv_meta meta;
        bool have_meta;
        size_t meta_len; /* bytes of the .crc file */
};

/* Read PATH and PATH.crc (a missing .crc is not an error here: decoding
 * then needs force), holding PATH.crc's flock() shared meanwhile as
 * MMKV's multi-process writers expect. 0 or -errno, said in notes. */
int mmkv_image_load(const char *path, struct mmkv_image *img, struct mmkv_notes *notes);

/* The same from bytes in memory (meta NULL: no .crc file); copies them. */
int mmkv_image_from_bytes(const char *path, const uint8_t *data, size_t data_len, const uint8_t *meta,
                          size_t meta_len, struct mmkv_image *img, struct mmkv_notes *notes);
void mmkv_image_done(struct mmkv_image *img);

/* With key expiration on, each value ends in its u32 LE expiry time. */
bool mmkv_image_expires_keys(const struct mmkv_image *img);

struct mmkv_record {
        const uint8_t *key, *value; /* into the image's data */
        uint32_t key_len, value_len;
        size_t offset; /* in the body: later records win */
};

struct mmkv_records {
        struct mmkv_record *v;
        size_t n, cap;
};

/* The live records of img, sorted by key (memcmp order), one per key:
 * MMKV's checkDataValid() and decodeOneMap(), said out loud. Strict: a
 * checksum that matches nothing, or a record that does not decode, and
 * nothing is returned (-EBADMSG), where MMKV would roll back or wipe the
 * store without a word; -ENOENT without a .crc; -EPROTONOSUPPORT for an
 * encrypted store. force decodes what it can, unverified. The records
 * point into img. Every choice made is said in notes. */
int mmkv_decode(struct mmkv_image *img, bool force, struct mmkv_records *ret, struct mmkv_notes *notes);
void mmkv_records_done(struct mmkv_records *rs);

/* One value, typed. */
struct mmkv_value {
        const uint8_t *mmkv; /* as MMKV stored it */
        size_t mmkv_len;
        int type;            /* enum ashm_kv_type, or MMKV_TYPE_RAW */
        uint8_t scalar[8];   /* the value in ashm's encoding, for scalars */
        size_t payload, len; /* else mmkv[payload, payload + len) */
};

/* "raw", "guess", or ashm_kv_type_name(); the type named so (guess_too:
 * "guess" too), or -EINVAL. */
const char *mmkv_type_name(int type);
int mmkv_type_from_name(const char *name, bool guess_too);

/* Decode v as MMKV encodes type: NULL, or why it is not one. */
const char *mmkv_value_decode(struct mmkv_value *v, int type);

/* The type of a value nobody named, decoded, with the reason in why
 * (the rule is at its definition). */
void mmkv_value_guess(struct mmkv_value *v, char *why, size_t size);

/* The value in ashm's encoding of v->type: v->len bytes. */
const void *mmkv_value_data(const struct mmkv_value *v);

/* Drop the expiry time from the end of v (with key expiration on): 0,
 * or 1 if it has expired by now (MMKV would not return it: *ret_ago
 * says how long ago), or -EBADMSG if v is too short to hold one (kept
 * as it is). */
int mmkv_value_strip_expiry(struct mmkv_value *v, uint32_t now, uint32_t *ret_ago);

/* Writing a store: add each key (in the order to write), then finish. */
struct mmkv_writer {
        uint8_t *p;
        size_t len, cap;
};
int mmkv_writer_init(struct mmkv_writer *w);
/* -EPROTOTYPE for a type MMKV has no encoding for, -EBADMSG for a value
 * not of its type's size, -ENOMEM. */
int mmkv_writer_add(struct mmkv_writer *w, const char *key, size_t key_len, int type, const uint8_t *v,
                    size_t len);
/* Both files written in full under temporary names, flushed, renamed over
 * the old ones, data first. -EFBIG past MMKV's 32-bit sizes. */
int mmkv_writer_save(struct mmkv_writer *w, const char *path, struct mmkv_notes *notes);
void mmkv_writer_done(struct mmkv_writer *w);
