/* SPDX-License-Identifier: MIT */
#pragma once

/* What kv.c shares with kv-write.c, kv-open.c and kv-check.c. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ashm.h"
#include "kv-format.h"
#include "lock.h"
#include "macro.h"

/* Set the thread's error detail (ashm_kv_error_detail()); returns err. */
_printf_(2, 3) int kv_fail(int err, const char *fmt, ...);

uint64_t kv_hash(uint64_t seed, const void *key, size_t len);
uint32_t kv_record_crc(const void *rec, uint64_t key_len, uint64_t val_len);
uint32_t kv_header_crc(const struct kv_header *h);
int kv_header_check(const struct kv_header *h, uint64_t file_size);
bool kv_arena_bounds_ok(uint64_t off, uint64_t slots, uint64_t log_off, uint64_t log_cap, uint64_t file_size);
bool kv_value_valid(int type, const void *value, uint64_t len);

/* How long a writer waits for the lock before it gives up with a
 * diagnosis (ASHM_KV_LOCK_TIMEOUT_MS overrides it): a rebuild of the
 * largest store takes seconds, a live id written into the lock by a
 * peer would otherwise hold writers for ever. */
#define KV_LOCK_TIMEOUT_NS (INT64_C(30) * 1000 * 1000 * 1000)
/* A reader starts again when a rebuild moved gen under it; no honest
 * writer rebuilds this often during one lookup. */
#define KV_READ_RETRIES 100000

struct ashm_kv {
        int fd;
        unsigned flags;
        bool writable;
        uint8_t *base;
        size_t map_len;
        struct kv_header *h;
        uint64_t seed;
        unsigned fork_gen;
        uint64_t known_size;     /* the file is at least this big (atomic) */
        struct lock_owner owner; /* writers: id 0 until the lock is set up */
};

/* An arena descriptor as read once, checked against the file. */
struct arena_view {
        uint64_t off, slots, log_off, log_cap;
        uint64_t *slot;
        const uint8_t *log;
};

static inline uint32_t hash_tag(uint64_t h) {
        uint32_t t = (uint32_t) (h >> 32);

        return t < 2 ? t + 2 : t;
}

static inline uint64_t load_acq(const uint64_t *p) {
        return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline uint64_t load_rlx(const uint64_t *p) {
        return __atomic_load_n(p, __ATOMIC_RELAXED);
}
static inline void store_rel(uint64_t *p, uint64_t v) {
        __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* kv.c: the error detail, fork detection, the checked views of the mapping. */
void ashm__kv_detail_clear(void);
int ashm__kv_usable(const ashm_kv *kv);
int ashm__kv_check_key(const char *key, size_t *ret_len);
int ashm__kv_file_size_checked(const ashm_kv *kv, uint64_t *ret_size);
int ashm__kv_arena_view(const ashm_kv *kv, const struct kv_arena *a, struct arena_view *v);
/* The record a slot points to, checked: its header and bytes lie inside
 * the log below limit. NULL if not. */
const struct kv_record *ashm__kv_slot_record(const struct arena_view *v, uint64_t s, uint64_t limit,
                                             struct kv_record *rh);

/* kv-write.c: the writers' lock and its recovery, growth. */
void ashm__kv_init_lock(struct kv_header *h);
int ashm__kv_recover(ashm_kv *kv);
int ashm__kv_lock(ashm_kv *kv);
void ashm__kv_unlock(ashm_kv *kv);
uint64_t ashm__kv_round_page(uint64_t n);
int ashm__kv_sync_range(ashm_kv *kv, uint64_t off, uint64_t len);
