/* SPDX-License-Identifier: MIT */
#pragma once

/* What the MMKV modules (mmkv-read.c, mmkv-value.c, mmkv-write.c) share:
 * the format's constants, its varints, its checksum and its notes.
 * Private to src/shared/. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"
#include "mmkv-format.h"

#define DATA_HEADER_LEN 4u   /* the data file's own u32 size, before the body */
#define EXPIRY_LEN 4u        /* u32 LE expiry time after each value, with key expiration on */

/* MMKVMetaInfo.hpp: version 3 put the size in the meta, 4 the flags; 6
 * and up is "specious", and v1.3.3 resets it to 3 with no flags. */
enum { VERSION_RANDOM_IV = 2, VERSION_ACTUAL_SIZE = 3, VERSION_FLAG = 4, VERSION_HOLDER = 6 };
#define FLAG_KEY_EXPIRE 1u

/* The item-size holder v1.3.3 writes: 0x00ffffff as a varint. */
extern const uint8_t mmkv_holder[4];

/* Add one line to notes (lost, never the work, when out of memory). */
_printf_(2, 3) void mmkv_note(struct mmkv_notes *notes, const char *fmt, ...);

/* zlib's CRC-32 (reflected 0xedb88320), which MMKV takes from libz. */
uint32_t mmkv_crc32(uint32_t crc, const uint8_t *p, size_t len);

/* The varint at p (n bytes available): its length, 1 to 10, or 0 when
 * it runs past n or past 10 bytes. Bits past 64 are dropped. */
size_t mmkv_varint_get(const uint8_t *p, size_t n, uint64_t *ret);
size_t mmkv_varint_size(uint64_t v);

/* A length as MMKV's readRawVarint32() reads it: bits past 32 dropped,
 * and a negative int32 refused. */
size_t mmkv_length_get(const uint8_t *p, size_t n, uint32_t *ret);

/* Well-formed UTF-8 (no overlong forms, surrogates, or past U+10FFFF).
 * text: also no NUL, and no control character but tab, CR and LF. */
bool mmkv_utf8_ok(const uint8_t *p, size_t n, bool text);
