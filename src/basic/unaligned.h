/* SPDX-License-Identifier: MIT */
#pragma once

/* Little-endian integers at any address: what the formats on disk and in
 * shared memory store (MMKV's files, the KV store's values). */

#include <endian.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t get_le32(const void *p) {
        uint32_t v;

        memcpy(&v, p, sizeof(v));
        return le32toh(v);
}

static inline uint64_t get_le64(const void *p) {
        uint64_t v;

        memcpy(&v, p, sizeof(v));
        return le64toh(v);
}

static inline void put_le32(void *p, uint32_t v) {
        v = htole32(v);
        memcpy(p, &v, sizeof(v));
}

static inline void put_le64(void *p, uint64_t v) {
        v = htole64(v);
        memcpy(p, &v, sizeof(v));
}
