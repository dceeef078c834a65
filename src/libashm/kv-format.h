/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The layout of an ashm KV store, in a file or a memfd, mapped shared by
 * every process that opens it. docs/kv.md explains it; in short:
 *
 *   [0, 4096)       the header: static part (CRC32C-checked), the writers'
 *                   robust lock (lock.h: no pointers), counters, and two arena descriptors;
 *                   gen & 1 picks the active one.
 *   arena           an index (open addressing, 8-byte slots, power-of-two
 *                   count) followed by an append-only log of records.
 *                   A rebuild (growth, compaction, clear) writes a new
 *                   arena elsewhere in the file, fills the inactive
 *                   descriptor, and publishes it by one store to gen.
 *
 * Little-endian, fixed-width fields. Every offset or length read from
 * the file is checked against the file before use: the file is shared
 * with other processes and may be damaged.
 */

#include <stdint.h>

#include "lock.h"

#define KV_MAGIC UINT64_C(0x0100564B4D485341) /* "ASHMKV\0\1" */
/* 2: the writers' lock is lock.h's (version 1 kept a glibc robust mutex
 * there, whose list pointers a peer could aim; the rest is the same, and
 * the first writer migrates a version 1 store in place). */
#define KV_VERSION 2
#define KV_VERSION_PTHREAD 1
#define KV_HEADER_SIZE 4096u
#define KV_PAGE 4096u

/* The largest store: one mapping of this much address space is reserved
 * per handle (no memory: the file backs it), so growth never remaps. */
#define KV_MAP_MAX (UINT64_C(64) << 30)
/* A log offset is stored in 8-byte units in 32 bits. */
#define KV_LOG_MAX (UINT64_C(32) << 30)

#define KV_MIN_SLOTS 256u
#define KV_MIN_LOG (64u << 10)

/* A slot: 0 empty; tag << 32 | (record offset in the log / 8). Tag 1 is
 * a tombstone (a removed key); real tags are 2 and up. */
#define KV_SLOT_EMPTY UINT64_C(0)
#define KV_TAG_TOMB 1u
#define KV_SLOT_TOMB ((uint64_t) KV_TAG_TOMB << 32)

struct kv_arena {
        uint64_t off;          /* file offset of the index */
        uint64_t slots;        /* index slots, a power of two */
        uint64_t log_off;      /* file offset of the log */
        uint64_t log_cap;      /* bytes of log */
        uint64_t log_head;     /* bytes of log committed (atomic) */
        uint64_t indexed_head; /* bytes of log the index reflects */
        uint64_t nkeys;
        uint64_t used_slots; /* live and tombstones */
        uint64_t live_bytes;
        uint64_t dead_bytes;
        uint64_t reserved[6];
};

struct kv_header {
        /* static, covered by static_crc */
        uint64_t magic;
        uint32_t version;
        uint32_t header_size;
        uint64_t seed; /* of the key hash */
        uint64_t created_ns;
        uint32_t flags;
        uint32_t static_crc; /* CRC32C of the bytes before it */
        uint8_t pad0[24];

        /* 64: the writers' lock, on its own cache line */
        union {
                struct lock_shm l;
                uint8_t pad[64];
        } lock;

        /* 128: changed by writers under the lock */
        uint64_t gen;       /* arenas[gen & 1] is active (atomic) */
        uint64_t serial;    /* the next record's serial */
        uint64_t file_size; /* only ever grows (atomic) */
        uint64_t rebuilds;
        uint64_t recoveries;
        uint8_t boot_id[16]; /* the boot the store was last opened for writing in */
        uint32_t dirty;      /* written to since the last ashm_kv_sync() */
        uint32_t pad1;
        uint8_t pad2[64];

        /* 256 */
        struct kv_arena arenas[2];
};

_Static_assert(sizeof(struct kv_arena) == 128, "arena descriptor layout");
_Static_assert(sizeof(struct kv_header) == 512, "header layout");

/* A record in the log, 8-byte aligned, followed by key and value bytes
 * and padding to 8. crc is CRC32C over everything after it up to the end
 * of the value. Type 0 records a removal. */
struct kv_record {
        uint32_t crc;
        uint32_t serial;
        uint32_t val_len;
        uint16_t key_len;
        uint8_t type;
        uint8_t flags;
};

_Static_assert(sizeof(struct kv_record) == 16, "record header layout");

#define KV_REC_REMOVE 0

static inline uint64_t kv_align8(uint64_t n) {
        return (n + 7) & ~UINT64_C(7);
}

static inline uint64_t kv_record_size(uint64_t key_len, uint64_t val_len) {
        return kv_align8(sizeof(struct kv_record) + key_len + val_len);
}
