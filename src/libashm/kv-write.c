/* SPDX-License-Identifier: MIT */
/*
 * ashm KV: the writers: the lock and its recovery, growth and rebuilds, puts (the rules are in kv.c).
 */

#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ashm.h"
#include "crc32c.h"
#include "fd-util.h"
#include "internal.h"
#include "kv-format.h"
#include "futex-util.h"
#include "kv.h"
#include "lock.h"
#include "macro.h"

/* ---- the writers' lock and recovery --------------------------------- */

/* A fresh lock where the header's lock lives (also over a version 1
 * store's glibc mutex: its bytes are cleared). Nobody else may be using it. */
void ashm__kv_init_lock(struct kv_header *h) {
        memset(&h->lock, 0, sizeof(h->lock));
        lock_init(&h->lock.l);
}

static int64_t lock_timeout_ns(void) {
        static int64_t timeout;
        int64_t t = __atomic_load_n(&timeout, __ATOMIC_RELAXED);

        if (_unlikely_(t == 0)) {
                const char *e = secure_getenv("ASHM_KV_LOCK_TIMEOUT_MS");
                long long ms = e ? strtoll(e, NULL, 10) : 0;

                t = ms > 0 && ms < INT64_MAX / 1000000 ? ms * 1000000 : KV_LOCK_TIMEOUT_NS;
                __atomic_store_n(&timeout, t, __ATOMIC_RELAXED);
        }
        return t;
}

/* The slot for key in v: its index, with *ret_slot its value (0 if the
 * key is absent, and the index then is where it would go: the first
 * tombstone on its probe path, else the empty slot that ends it).
 * -ENOSPC if the table is full of other keys (a damaged index). */
static int64_t find_slot(const struct arena_view *v, uint64_t hash, const void *key, size_t klen, uint64_t limit,
                         uint64_t *ret_slot) {
        uint64_t mask = v->slots - 1, i = hash & mask;
        int64_t tomb = -1;
        uint32_t tag = hash_tag(hash);

        for (uint64_t n = 0; n < v->slots; n++, i = (i + 1) & mask) {
                uint64_t s = load_rlx(&v->slot[i]);
                const struct kv_record *rec;
                struct kv_record rh;

                if (s == KV_SLOT_EMPTY) {
                        *ret_slot = 0;
                        return tomb >= 0 ? tomb : (int64_t) i;
                }
                if ((uint32_t) (s >> 32) == KV_TAG_TOMB) {
                        if (tomb < 0)
                                tomb = (int64_t) i;
                        continue;
                }
                if ((uint32_t) (s >> 32) != tag)
                        continue;
                rec = ashm__kv_slot_record(v, s, limit, &rh);
                if (rec && rh.key_len == klen && memcmp(rec + 1, key, klen) == 0) {
                        *ret_slot = s;
                        return (int64_t) i;
                }
        }
        if (tomb >= 0) {
                *ret_slot = 0;
                return tomb;
        }
        return -ENOSPC;
}

/* Make the index agree with the log: replay the records committed after
 * indexed_head (a writer died between committing one and indexing it),
 * then count keys and bytes again from the index. Under the lock. */
int ashm__kv_recover(ashm_kv *kv) {
        struct kv_header *h = kv->h;
        struct kv_arena *a = &h->arenas[h->gen & 1];
        struct arena_view v;
        uint64_t pos, head, live = 0, keys = 0, used = 0;
        int r;

        r = ashm__kv_arena_view(kv, a, &v);
        if (r < 0)
                return r;
        head = MIN(a->log_head, v.log_cap);
        pos = MIN(a->indexed_head, head);
        if (pos == head && a->indexed_head == a->log_head)
                return 0; /* the last writer finished everything it began */
        while (pos < head) {
                struct kv_record rh;
                const uint8_t *rec = v.log + pos;
                uint64_t size, s;
                int64_t i;

                if (head - pos < sizeof(rh))
                        break;
                memcpy(&rh, rec, sizeof(rh));
                size = kv_record_size(rh.key_len, rh.val_len);
                if (rh.key_len == 0 || size > head - pos || kv_record_crc(rec, rh.key_len, rh.val_len) != rh.crc)
                        break; /* committed but damaged: ashm_kv_check() reports it */
                i = find_slot(&v, kv_hash(kv->seed, rec + sizeof(rh), rh.key_len), rec + sizeof(rh), rh.key_len,
                              head, &s);
                if (i >= 0 && rh.type == KV_REC_REMOVE && s != 0)
                        store_rel(&v.slot[i], KV_SLOT_TOMB);
                else if (i >= 0 && rh.type != KV_REC_REMOVE)
                        store_rel(&v.slot[i],
                                  (uint64_t) hash_tag(kv_hash(kv->seed, rec + sizeof(rh), rh.key_len)) << 32 |
                                          pos / 8);
                pos += size;
        }
        a->log_head = pos;
        a->indexed_head = pos;
        for (uint64_t i = 0; i < v.slots; i++) {
                uint64_t s = load_rlx(&v.slot[i]);
                struct kv_record rh;

                if (s == KV_SLOT_EMPTY)
                        continue;
                used++;
                if ((uint32_t) (s >> 32) == KV_TAG_TOMB || !ashm__kv_slot_record(&v, s, pos, &rh))
                        continue;
                keys++;
                live += kv_record_size(rh.key_len, rh.val_len);
        }
        a->nkeys = keys;
        a->used_slots = used;
        a->live_bytes = live;
        a->dead_bytes = pos - MIN(pos, live);
        return 0;
}

int ashm__kv_lock(ashm_kv *kv) {
        uint32_t holder = 0;
        int r = lock_take(&kv->h->lock.l, &kv->owner, lock_timeout_ns(), &holder);

        switch (r) {
        case 0:
                return 0;
        case LOCK_OWNER_DIED:
                /* A writer died holding the lock (or a peer wrote the id
                 * of no live writer into it): whatever was left half-done,
                 * the log says what was committed. */
                (void) ashm__kv_recover(kv);
                kv->h->recoveries++;
                return 0;
        case -ETIMEDOUT:
                return kv_fail(-ETIMEDOUT,
                               "the writers' lock was held for %" PRId64 " ms by writer %08" PRIx32
                               ", which is alive: a writer is stuck, or a peer wrote a live writer's id "
                               "into the lock",
                               lock_timeout_ns() / 1000000, holder);
        case -EBADMSG:
                return kv_fail(-EBADMSG, "the writers' lock is damaged: open the store again once no writer "
                               "has it open (the first writer lays the lock out anew), or run ashm_kv_repair()");
        default:
                return kv_fail(r, "cannot take the writers' lock: %s", strerror(-r));
        }
}

void ashm__kv_unlock(ashm_kv *kv) {
        /* -EPERM: a peer wrote over the lock while we held it; the word is
         * theirs now, and the next writer finds out what it names. */
        (void) lock_release(&kv->h->lock.l, &kv->owner);
}

/* ---- growth and rebuilds -------------------------------------------- */

uint64_t ashm__kv_round_page(uint64_t n) {
        return (n + KV_PAGE - 1) & ~(uint64_t) (KV_PAGE - 1);
}

/* Callers keep n far below 2^63 (it would loop for ever past it). */
static uint64_t pow2_at_least(uint64_t n) {
        uint64_t p = 1;

        while (p < n && p < (UINT64_C(1) << 62))
                p <<= 1;
        return p;
}

/* Make [off, off + len) of the file zeroed and backed, growing the file
 * if needed: fallocate() reports ENOSPC here rather than as SIGBUS on a
 * store to the mapping later. */
static int prepare_space(ashm_kv *kv, uint64_t off, uint64_t len) {
        uint64_t fsz = 0;
        struct stat st;
        int seals, r = ashm__kv_file_size_checked(kv, &fsz);

        if (r < 0)
                return r;
        if (off + len > kv->map_len)
                return kv_fail(-EFBIG, "the store would exceed %" PRIu64 " GiB", (uint64_t) KV_MAP_MAX >> 30);
        seals = fcntl(kv->fd, F_GET_SEALS);
        if (seals > 0 && (seals & F_SEAL_GROW) && (fstat(kv->fd, &st) < 0 || off + len > (uint64_t) st.st_size))
                return kv_fail(-ENOSPC, "the store's region is sealed against growing and full: create the "
                               "region larger");
        if (off < fsz && fallocate(kv->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t) off,
                                   (off_t) MIN(len, fsz - off)) < 0) {
                if (errno != EOPNOTSUPP)
                        return kv_fail(negative_errno(), "cannot clear space in the store: %m");
                memset(kv->base + off, 0, MIN(len, fsz - off));
        }
        if (fallocate(kv->fd, 0, (off_t) off, (off_t) len) < 0) {
                if (errno != EOPNOTSUPP)
                        return kv_fail(negative_errno(), "cannot grow the store: %m");
                if (off + len > fsz && ftruncate(kv->fd, (off_t) (off + len)) < 0)
                        return kv_fail(negative_errno(), "cannot grow the store: %m");
        }
        if (off + len > fsz) {
                if (off + len > load_rlx(&kv->known_size))
                        __atomic_store_n(&kv->known_size, off + len, __ATOMIC_RELAXED);
                store_rel(&kv->h->file_size, off + len);
        }
        return 0;
}

/* Release a dead arena's pages (readers that still look at it see zeros
 * and start again on the new gen). */
static void release_space(ashm_kv *kv, uint64_t off, uint64_t len) {
        (void) fallocate(kv->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t) off, (off_t) len);
}

int ashm__kv_sync_range(ashm_kv *kv, uint64_t off, uint64_t len) {
        uint64_t start = off & ~(uint64_t) (KV_PAGE - 1);

        if (msync(kv->base + start, off + len - start, MS_SYNC) < 0)
                return kv_fail(negative_errno(), "cannot write the store to disk: %m");
        return 0;
}

/* Write a new arena with room for extra_keys more keys and extra_bytes
 * more log, holding every live record of the active one (none with
 * empty), and publish it. Under the lock. */
static int rebuild(ashm_kv *kv, uint64_t extra_keys, uint64_t extra_bytes, bool empty) {
        struct kv_header *h = kv->h;
        uint64_t gen = h->gen;
        struct kv_arena *old = &h->arenas[gen & 1], *new = &h->arenas[(gen + 1) & 1];
        struct arena_view ov, nv;
        uint64_t keys, live, old_head, slots, log_cap, index_bytes, size, off, head = 0, n = 0;
        int r;

        r = ashm__kv_arena_view(kv, old, &ov);
        if (r < 0)
                return r;
        /* The counts size the new arena; read from the file, they are
         * clamped to what the old one can hold (a damaged count must not
         * overflow the sizes below), and the copy checks them again. */
        old_head = MIN(load_rlx(&old->log_head), ov.log_cap);
        keys = empty ? 0 : MIN(load_rlx(&old->nkeys), ov.slots);
        live = empty ? 0 : MIN(load_rlx(&old->live_bytes), old_head);
        extra_keys = MIN(extra_keys, (uint64_t) KV_LOG_MAX);
        extra_bytes = MIN(extra_bytes, (uint64_t) KV_LOG_MAX);
        slots = MAX((uint64_t) KV_MIN_SLOTS, pow2_at_least(2 * (keys + extra_keys)));
        log_cap = MAX((uint64_t) KV_MIN_LOG, ashm__kv_round_page(2 * (live + extra_bytes)));
        if (log_cap > KV_LOG_MAX || slots > KV_LOG_MAX / 8)
                return kv_fail(-EFBIG, "the store would exceed %" PRIu64 " GiB of log",
                               (uint64_t) KV_LOG_MAX >> 30);
        index_bytes = ashm__kv_round_page(slots * 8);
        size = index_bytes + log_cap;
        /* Before the active arena if it fits there, else after it. */
        off = KV_HEADER_SIZE + size <= ov.off ? KV_HEADER_SIZE : ashm__kv_round_page(ov.log_off + ov.log_cap);
        r = prepare_space(kv, off, size);
        if (r == -ENOSPC && log_cap > ashm__kv_round_page(live + extra_bytes)) {
                /* A region of fixed size: no slack for growth, just room. */
                log_cap = MAX((uint64_t) KV_MIN_LOG, ashm__kv_round_page(live + extra_bytes));
                size = index_bytes + log_cap;
                off = KV_HEADER_SIZE + size <= ov.off ? KV_HEADER_SIZE : ashm__kv_round_page(ov.log_off + ov.log_cap);
                r = prepare_space(kv, off, size);
        }
        if (r < 0)
                return r;
        nv = (struct arena_view) { .off = off, .slots = slots, .log_off = off + index_bytes, .log_cap = log_cap };
        nv.slot = (uint64_t *) (kv->base + nv.off);
        nv.log = kv->base + nv.log_off;

        for (uint64_t i = 0; !empty && i < ov.slots; i++) {
                uint64_t s = load_rlx(&ov.slot[i]), size_rec, hash, j;
                const struct kv_record *rec;
                struct kv_record rh;

                if (s == KV_SLOT_EMPTY || (uint32_t) (s >> 32) == KV_TAG_TOMB)
                        continue;
                rec = ashm__kv_slot_record(&ov, s, old_head, &rh);
                if (!rec || rh.type == KV_REC_REMOVE || kv_record_crc(rec, rh.key_len, rh.val_len) != rh.crc) {
                        release_space(kv, off, size);
                        return kv_fail(-EBADMSG,
                                       "index slot %" PRIu64 " leads to a damaged record: run ashm_kv_repair()", i);
                }
                size_rec = kv_record_size(rh.key_len, rh.val_len);
                if (head + size_rec > log_cap || 2 * (n + 1) > slots) {
                        release_space(kv, off, size);
                        return kv_fail(-EBADMSG, "the live records outgrow their count: run ashm_kv_repair()");
                }
                memcpy((uint8_t *) nv.log + head, rec, size_rec);
                hash = kv_hash(kv->seed, rec + 1, rh.key_len);
                for (j = hash & (slots - 1); nv.slot[j]; j = (j + 1) & (slots - 1))
                        ;
                nv.slot[j] = (uint64_t) hash_tag(hash) << 32 | head / 8;
                head += size_rec;
                n++;
        }
        *new = (struct kv_arena) {
                .off = nv.off,
                .slots = slots,
                .log_off = nv.log_off,
                .log_cap = log_cap,
                .log_head = head,
                .indexed_head = head,
                .nkeys = n,
                .used_slots = n,
                .live_bytes = head,
        };
        if (kv->flags & ASHM_KV_SYNC) {
                r = ashm__kv_sync_range(kv, off, index_bytes + head);
                if (r < 0)
                        return r;
        }
        h->rebuilds++;
        store_rel(&h->gen, gen + 1);
        if (kv->flags & ASHM_KV_SYNC)
                (void) ashm__kv_sync_range(kv, 0, KV_HEADER_SIZE);
        release_space(kv, ov.off, ov.log_off + ov.log_cap - ov.off);
        return 0;
}

/* ---- writes ------------------------------------------------------------- */

/* Append a record (type KV_REC_REMOVE: a removal) and index it. Under the
 * lock. Returns -ENOENT for the removal of an absent key. */
static int put(ashm_kv *kv, const char *key, size_t klen, int type, const void *value, size_t len) {
        struct kv_header *h = kv->h;
        uint64_t hash = kv_hash(kv->seed, key, klen), need = kv_record_size(klen, len), old;
        struct kv_arena *a;
        struct arena_view v;
        struct kv_record rh, orh = { 0 };
        uint8_t *rec;
        uint64_t head;
        int64_t i;
        int r;

        /* Every value read from the header is read once, checked, and
         * used from a local: a peer may change the file at any time. */
        for (int attempt = 0;; attempt++) {
                a = &h->arenas[load_rlx(&h->gen) & 1];
                r = ashm__kv_arena_view(kv, a, &v);
                if (r < 0)
                        return r;
                head = load_rlx(&a->log_head);
                if (head > v.log_cap || head % 8 != 0)
                        return kv_fail(-EBADMSG, "the log's length (%" PRIu64 ") is out of bounds: run ashm kv "
                                       "repair", head);
                i = find_slot(&v, hash, key, klen, head, &old);
                if (i < 0 && attempt > 0)
                        return kv_fail(-EBADMSG, "the index is full of damaged slots: run ashm_kv_repair()");
                if (i >= 0 && type == KV_REC_REMOVE && old == 0)
                        return -ENOENT;
                if (i >= 0 && head + need <= v.log_cap &&
                    (old != 0 || load_rlx(&v.slot[i]) != KV_SLOT_EMPTY ||
                     (MIN(load_rlx(&a->used_slots), v.slots) + 1) * 4 <= v.slots * 3))
                        break;
                if (attempt > 0)
                        return kv_fail(-EFBIG, "no room after a rebuild");
                r = rebuild(kv, 1, need, false);
                if (r < 0)
                        return r;
        }

        /* 1. the record, past the committed log */
        rh = (struct kv_record) {
                .serial = (uint32_t) h->serial++,
                .val_len = (uint32_t) len,
                .key_len = (uint16_t) klen,
                .type = (uint8_t) type,
        };
        rec = (uint8_t *) v.log + head;
        memcpy(rec, &rh, sizeof(rh));
        memcpy(rec + sizeof(rh), key, klen);
        if (len)
                memcpy(rec + sizeof(rh) + klen, value, len);
        memset(rec + sizeof(rh) + klen + len, 0, need - sizeof(rh) - klen - len);
        rh.crc = kv_record_crc(rec, klen, len);
        memcpy(rec, &rh.crc, sizeof(rh.crc));
        if (!h->dirty)
                h->dirty = 1;

        /* 2. commit */
        head += need;
        store_rel(&a->log_head, head);

        /* 3. the index */
        if (old != 0)
                ashm__kv_slot_record(&v, old, head, &orh);
        if (type == KV_REC_REMOVE) {
                store_rel(&v.slot[i], KV_SLOT_TOMB);
                a->nkeys--;
                a->live_bytes -= kv_record_size(orh.key_len, orh.val_len);
                a->dead_bytes += kv_record_size(orh.key_len, orh.val_len) + need;
        } else {
                if (load_rlx(&v.slot[i]) == KV_SLOT_EMPTY)
                        a->used_slots++;
                store_rel(&v.slot[i], (uint64_t) hash_tag(hash) << 32 | (head - need) / 8);
                a->live_bytes += need;
                if (old != 0) {
                        a->live_bytes -= kv_record_size(orh.key_len, orh.val_len);
                        a->dead_bytes += kv_record_size(orh.key_len, orh.val_len);
                } else
                        a->nkeys++;
        }
        a->indexed_head = head;

        if (kv->flags & ASHM_KV_SYNC) {
                r = ashm__kv_sync_range(kv, (uint64_t) (rec - kv->base), need);
                if (r == 0)
                        r = ashm__kv_sync_range(kv, v.off + (uint64_t) i * 8, 8);
                if (r == 0)
                        r = ashm__kv_sync_range(kv, 0, KV_HEADER_SIZE);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int write_begin(ashm_kv *kv) {
        int r = ashm__kv_usable(kv);

        if (r < 0)
                return r;
        if (!kv->writable)
                return kv_fail(-EROFS, "the store was opened read-only");
        return ashm__kv_lock(kv);
}

_public_ int ashm_kv_set(ashm_kv *kv, const char *key, int type, const void *value, size_t len) {
        size_t klen = 0;
        int r;

        r = ashm__kv_check_key(key, &klen);
        if (r < 0)
                return r;
        if ((!value && len > 0) || !kv_value_valid(type, value, len))
                return kv_fail(-EINVAL, "not a valid %s value", ashm_kv_type_name(type) ?: "typed");
        r = write_begin(kv);
        if (r < 0)
                return r;
        r = put(kv, key, klen, type, value, len);
        ashm__kv_unlock(kv);
        return r;
}

_public_ int ashm_kv_set_bool(ashm_kv *kv, const char *key, int value) {
        uint8_t b = value != 0;

        return ashm_kv_set(kv, key, ASHM_KV_BOOL, &b, 1);
}

_public_ int ashm_kv_set_int32(ashm_kv *kv, const char *key, int32_t value) {
        return ashm_kv_set(kv, key, ASHM_KV_INT32, &value, 4);
}

_public_ int ashm_kv_set_int64(ashm_kv *kv, const char *key, int64_t value) {
        return ashm_kv_set(kv, key, ASHM_KV_INT64, &value, 8);
}

_public_ int ashm_kv_set_uint64(ashm_kv *kv, const char *key, uint64_t value) {
        return ashm_kv_set(kv, key, ASHM_KV_UINT64, &value, 8);
}

_public_ int ashm_kv_set_float(ashm_kv *kv, const char *key, float value) {
        return ashm_kv_set(kv, key, ASHM_KV_FLOAT, &value, 4);
}

_public_ int ashm_kv_set_double(ashm_kv *kv, const char *key, double value) {
        return ashm_kv_set(kv, key, ASHM_KV_DOUBLE, &value, 8);
}

_public_ int ashm_kv_set_string(ashm_kv *kv, const char *key, const char *value) {
        if (!value)
                return kv_fail(-EINVAL, "no string");
        return ashm_kv_set(kv, key, ASHM_KV_STRING, value, strnlen(value, (size_t) ASHM_KV_VALUE_MAX + 1));
}

_public_ int ashm_kv_set_bytes(ashm_kv *kv, const char *key, const void *value, size_t len) {
        return ashm_kv_set(kv, key, ASHM_KV_BYTES, value, len);
}

_public_ int ashm_kv_remove(ashm_kv *kv, const char *key) {
        size_t klen = 0;
        int r;

        r = ashm__kv_check_key(key, &klen);
        if (r < 0)
                return r;
        r = write_begin(kv);
        if (r < 0)
                return r;
        r = put(kv, key, klen, KV_REC_REMOVE, NULL, 0);
        ashm__kv_unlock(kv);
        return r;
}

/* A rebuild on request: with no live record (clear) or all of them. */
static int rebuild_now(ashm_kv *kv, bool empty) {
        int r = write_begin(kv);

        if (r < 0)
                return r;
        r = rebuild(kv, 0, 0, empty);
        ashm__kv_unlock(kv);
        return r;
}

_public_ int ashm_kv_clear(ashm_kv *kv) {
        return rebuild_now(kv, true);
}

_public_ int ashm_kv_compact(ashm_kv *kv) {
        return rebuild_now(kv, false);
}

_public_ int ashm_kv_sync(ashm_kv *kv) {
        int r = ashm__kv_usable(kv);

        if (r < 0)
                return r;
        if (!kv->writable)
                return 0;
        r = ashm__kv_lock(kv);
        if (r < 0)
                return r;
        r = ashm__kv_sync_range(kv, 0, load_rlx(&kv->h->file_size));
        if (r == 0 && fdatasync(kv->fd) < 0 && errno != EINVAL)
                r = kv_fail(negative_errno(), "cannot write the store to disk: %m");
        if (r == 0 && kv->h->dirty) {
                kv->h->dirty = 0;
                r = ashm__kv_sync_range(kv, 0, KV_HEADER_SIZE);
        }
        ashm__kv_unlock(kv);
        return r;
}
