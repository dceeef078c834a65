/* SPDX-License-Identifier: MIT */
/*
 * ashm KV: a key-value store in one shared mapping of a file or memfd.
 * The format is in kv-format.h, the design and its arguments in
 * docs/kv.md. The rules this file keeps:
 *
 *  - Writers hold the robust lock in the header (lock.h). A record is written
 *    past log_head, then log_head is advanced (the record is committed),
 *    then its slot is stored, then indexed_head follows. A writer killed
 *    anywhere leaves a state the next one repairs by replaying the log
 *    from indexed_head (kv_recover()).
 *  - Readers take no lock. A slot changes by one 64-bit atomic store and
 *    records in the active arena never change once committed, so a reader
 *    only has to notice a rebuild: it reads gen before and after, and
 *    starts again if gen moved.
 *  - Everything read from the mapping is bounds-checked first.
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
#include "memfd-util.h"

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

/* ---- errors with a detail ------------------------------------------- */

static __thread char detail[256];

_public_ const char *ashm_kv_error_detail(void) {
        return detail;
}

_printf_(2, 3) int kv_fail(int err, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(detail, sizeof(detail), fmt, ap);
        va_end(ap);
        return err;
}

/* ---- fork ------------------------------------------------------------- */

static unsigned fork_gen;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void) {
        __atomic_add_fetch(&fork_gen, 1, __ATOMIC_RELAXED);
}

static void fork_register(void) {
        (void) pthread_atfork(NULL, NULL, on_fork_child);
}

static int kv_usable(const ashm_kv *kv) {
        if (!kv)
                return -EINVAL;
        if (_unlikely_(__atomic_load_n(&fork_gen, __ATOMIC_RELAXED) != kv->fork_gen))
                return kv_fail(-ECHILD, "a store handle cannot be used after fork(): open it again");
        return 0;
}

/* ---- types ------------------------------------------------------------ */

static const char *const type_names[] = {
        [ASHM_KV_BOOL] = "bool",     [ASHM_KV_INT32] = "int32",   [ASHM_KV_INT64] = "int64",
        [ASHM_KV_UINT64] = "uint64", [ASHM_KV_FLOAT] = "float",   [ASHM_KV_DOUBLE] = "double",
        [ASHM_KV_STRING] = "string", [ASHM_KV_BYTES] = "bytes",
};

_public_ const char *ashm_kv_type_name(int type) {
        return type > 0 && (size_t) type < ELEMENTSOF(type_names) ? type_names[type] : NULL;
}

_public_ int ashm_kv_type_from_name(const char *name) {
        for (size_t i = 1; name && i < ELEMENTSOF(type_names); i++)
                if (strcmp(name, type_names[i]) == 0)
                        return (int) i;
        return -EINVAL;
}

_public_ int ashm_kv_type_size(int type) {
        switch (type) {
        case ASHM_KV_BOOL:
                return 1;
        case ASHM_KV_INT32:
        case ASHM_KV_FLOAT:
                return 4;
        case ASHM_KV_INT64:
        case ASHM_KV_UINT64:
        case ASHM_KV_DOUBLE:
                return 8;
        case ASHM_KV_STRING:
        case ASHM_KV_BYTES:
                return 0;
        default:
                return -EINVAL;
        }
}

bool kv_value_valid(int type, const void *value, uint64_t len) {
        int want = ashm_kv_type_size(type);

        if (want < 0 || len > ASHM_KV_VALUE_MAX)
                return false;
        if (want > 0 && len != (uint64_t) want)
                return false;
        if (type == ASHM_KV_BOOL && *(const uint8_t *) value > 1)
                return false;
        if (type == ASHM_KV_STRING && memchr(value, '\0', len))
                return false;
        return true;
}

/* ---- hashing ---------------------------------------------------------- */

static inline uint64_t mix(uint64_t a, uint64_t b) {
        __uint128_t r = (__uint128_t) a * b;

        return (uint64_t) r ^ (uint64_t) (r >> 64);
}

/* A seeded 64-bit hash in the manner of wyhash: one multiply per 8
 * bytes. The seed is random per store, so keys cannot be chosen to
 * collide without reading the store. */
uint64_t kv_hash(uint64_t seed, const void *key, size_t len) {
        const uint8_t *p = key;
        uint64_t h = seed ^ (len * UINT64_C(0x9E3779B97F4A7C15)), w;

        for (; len >= 8; p += 8, len -= 8) {
                memcpy(&w, p, 8);
                h = mix(h ^ w, UINT64_C(0xBF58476D1CE4E5B9));
        }
        w = 0;
        memcpy(&w, p, len);
        h = mix(h ^ w ^ ((uint64_t) len << 59), UINT64_C(0x94D049BB133111EB));
        return mix(h, UINT64_C(0x2545F4914F6CDD1D));
}

static inline uint32_t hash_tag(uint64_t h) {
        uint32_t t = (uint32_t) (h >> 32);

        return t < 2 ? t + 2 : t;
}

/* ---- the mapping ------------------------------------------------------ */

static inline uint64_t load_acq(const uint64_t *p) {
        return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline uint64_t load_rlx(const uint64_t *p) {
        return __atomic_load_n(p, __ATOMIC_RELAXED);
}
static inline void store_rel(uint64_t *p, uint64_t v) {
        __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* An arena descriptor as read once, checked against the file. */
struct arena_view {
        uint64_t off, slots, log_off, log_cap;
        uint64_t *slot;
        const uint8_t *log;
};

bool kv_arena_bounds_ok(uint64_t off, uint64_t slots, uint64_t log_off, uint64_t log_cap, uint64_t file_size) {
        /* Each sum is formed only once its terms are known to fit below
         * file_size: a peer's off near 2^64 must not wrap past the test. */
        return off >= KV_HEADER_SIZE && slots >= KV_MIN_SLOTS && (slots & (slots - 1)) == 0 &&
               slots <= KV_LOG_MAX / 8 && off % 8 == 0 && log_off % 8 == 0 && off <= file_size &&
               slots * 8 <= file_size - off && log_off >= off + slots * 8 &&
               log_cap <= KV_LOG_MAX && log_off <= file_size && log_cap <= file_size - log_off &&
               file_size <= KV_MAP_MAX;
}

/* The header's file size, checked against the file itself: a size
 * larger than the file would send accesses past its end (SIGBUS). The
 * file only grows, so fstat() runs once per growth per handle. */
static int file_size_checked(const ashm_kv *kv, uint64_t *ret_size) {
        uint64_t fsz = load_rlx(&kv->h->file_size), known = load_rlx(&kv->known_size);
        struct stat st;

        if (_likely_(fsz <= known)) {
                *ret_size = fsz;
                return 0;
        }
        if (fstat(kv->fd, &st) < 0)
                return negative_errno();
        if ((uint64_t) st.st_size > known)
                __atomic_store_n((uint64_t *) &kv->known_size, (uint64_t) st.st_size, __ATOMIC_RELAXED);
        if (fsz > (uint64_t) st.st_size)
                return kv_fail(-EBADMSG, "the header says %" PRIu64 " bytes, the file has %jd", fsz,
                               (intmax_t) st.st_size);
        *ret_size = fsz;
        return 0;
}

static int arena_view(const ashm_kv *kv, const struct kv_arena *a, struct arena_view *v) {
        uint64_t fsz = 0;
        int r = file_size_checked(kv, &fsz);

        if (r < 0)
                return r;

        v->off = load_rlx(&a->off);
        v->slots = load_rlx(&a->slots);
        v->log_off = load_rlx(&a->log_off);
        v->log_cap = load_rlx(&a->log_cap);
        if (fsz > kv->map_len || !kv_arena_bounds_ok(v->off, v->slots, v->log_off, v->log_cap, fsz))
                return kv_fail(-EBADMSG, "the arena descriptor is out of bounds (index at %" PRIu64
                               ", %" PRIu64 " slots, log at %" PRIu64 " of %" PRIu64 " bytes, file %" PRIu64
                               " bytes)",
                               v->off, v->slots, v->log_off, v->log_cap, fsz);
        v->slot = (uint64_t *) (kv->base + v->off);
        v->log = kv->base + v->log_off;
        return 0;
}

/* The record a slot points to, checked: its header and bytes lie inside
 * the log below limit. NULL if not. */
static const struct kv_record *slot_record(const struct arena_view *v, uint64_t s, uint64_t limit,
                                           struct kv_record *rh) {
        uint64_t ro = (s & 0xffffffffu) * 8;

        if (limit > v->log_cap)
                limit = v->log_cap;
        if (ro + sizeof(*rh) > limit)
                return NULL;
        memcpy(rh, v->log + ro, sizeof(*rh));
        if (ro + sizeof(*rh) + rh->key_len + (uint64_t) rh->val_len > limit)
                return NULL;
        return (const struct kv_record *) (v->log + ro);
}

uint32_t kv_record_crc(const void *rec, uint64_t key_len, uint64_t val_len) {
        return crc32c(0, (const uint8_t *) rec + 4, sizeof(struct kv_record) - 4 + key_len + val_len);
}

/* ---- reads -------------------------------------------------------------- */

struct found {
        int type;
        size_t len;
};

static int gen_unstable(void) {
        return kv_fail(-EBADMSG, "the store's generation keeps changing under the reader (%d times): "
                       "a peer is writing over the header", KV_READ_RETRIES);
}

/* Look key up and copy up to size bytes of its value into buf. */
static int lookup(ashm_kv *kv, const char *key, size_t klen, void *buf, size_t size, struct found *f) {
        uint64_t hash = kv_hash(kv->seed, key, klen);
        uint32_t tag = hash_tag(hash);

        for (int tries = 0;; tries++) {
                uint64_t gen = load_acq(&kv->h->gen);
                struct arena_view v;
                int r = tries < KV_READ_RETRIES ? arena_view(kv, &kv->h->arenas[gen & 1], &v) : gen_unstable();

                if (r == 0) {
                        uint64_t mask = v.slots - 1, i = hash & mask;

                        r = -ENOENT;
                        for (uint64_t n = 0; n < v.slots; n++, i = (i + 1) & mask) {
                                uint64_t s = load_acq(&v.slot[i]);
                                const struct kv_record *rec;
                                struct kv_record rh;

                                if (s == KV_SLOT_EMPTY)
                                        break;
                                if ((uint32_t) (s >> 32) != tag)
                                        continue;
                                rec = slot_record(&v, s, v.log_cap, &rh);
                                if (!rec) {
                                        r = kv_fail(-EBADMSG, "index slot %" PRIu64 " points outside the log", i);
                                        break;
                                }
                                if (rh.key_len != klen || memcmp((const uint8_t *) (rec + 1), key, klen) != 0) {
                                        /* The tag matched: another key, or this one damaged.
                                         * Tags of two keys agree once in 2^32 probes. */
                                        if (kv_record_crc(rec, rh.key_len, rh.val_len) == rh.crc)
                                                continue;
                                        r = kv_fail(-EBADMSG, "a damaged record sits where key \"%.64s\" "
                                                    "would be", key);
                                        break;
                                }
                                if (rh.type == KV_REC_REMOVE || rh.type > ASHM_KV_BYTES ||
                                    kv_record_crc(rec, klen, rh.val_len) != rh.crc) {
                                        r = kv_fail(-EBADMSG, "the record of key \"%.64s\" fails its checksum",
                                                    key);
                                        break;
                                }
                                if (size > 0)
                                        memcpy(buf, (const uint8_t *) (rec + 1) + klen,
                                               MIN(size, (size_t) rh.val_len));
                                f->type = rh.type;
                                f->len = rh.val_len;
                                r = 0;
                                break;
                        }
                }
                __atomic_thread_fence(__ATOMIC_ACQUIRE);
                if (load_rlx(&kv->h->gen) == gen || tries >= KV_READ_RETRIES)
                        return r;
                /* A rebuild published a new arena meanwhile: look again. */
        }
}

static int check_key(const char *key, size_t *ret_len) {
        size_t n;

        if (!key)
                return kv_fail(-EINVAL, "no key");
        n = strnlen(key, ASHM_KV_KEY_MAX + 1);
        if (n == 0 || n > ASHM_KV_KEY_MAX)
                return kv_fail(-EINVAL, "a key is 1 to %d bytes", ASHM_KV_KEY_MAX);
        *ret_len = n;
        return 0;
}

_public_ int ashm_kv_get(ashm_kv *kv, const char *key, int *ret_type, void *buf, size_t size, size_t *ret_len) {
        struct found f;
        size_t klen = 0;
        int r;

        r = kv_usable(kv);
        if (r < 0)
                return r;
        r = check_key(key, &klen);
        if (r < 0)
                return r;
        if (!buf && size > 0)
                return -EINVAL;
        r = lookup(kv, key, klen, buf, size, &f);
        if (r < 0)
                return r;
        if (ret_type)
                *ret_type = f.type;
        if (ret_len)
                *ret_len = f.len;
        return 0;
}

/* A value of a fixed-size type. */
/* "an int32", "a string": the article of a type's name, for messages. */
static const char *type_article(int type) {
        return type == ASHM_KV_INT32 || type == ASHM_KV_INT64 ? "an" : "a";
}

static int get_fixed(ashm_kv *kv, const char *key, int type, void *ret, size_t len) {
        uint8_t tmp[8];
        size_t klen = 0;
        struct found f;
        int r;

        r = kv_usable(kv);
        if (r < 0)
                return r;
        r = check_key(key, &klen);
        if (r < 0)
                return r;
        r = lookup(kv, key, klen, tmp, sizeof(tmp), &f);
        if (r < 0)
                return r;
        if (f.type != type || f.len != len)
                return kv_fail(-EPROTOTYPE, "key \"%.64s\" holds %s %s, not %s %s", key, type_article(f.type),
                               ashm_kv_type_name(f.type), type_article(type), ashm_kv_type_name(type));
        memcpy(ret, tmp, len);
        return 0;
}

_public_ int ashm_kv_get_bool(ashm_kv *kv, const char *key, int *ret_value) {
        uint8_t b = 0;
        int r = get_fixed(kv, key, ASHM_KV_BOOL, &b, 1);

        if (r == 0)
                *ret_value = b != 0;
        return r;
}

_public_ int ashm_kv_get_int32(ashm_kv *kv, const char *key, int32_t *ret_value) {
        return get_fixed(kv, key, ASHM_KV_INT32, ret_value, 4);
}

_public_ int ashm_kv_get_int64(ashm_kv *kv, const char *key, int64_t *ret_value) {
        return get_fixed(kv, key, ASHM_KV_INT64, ret_value, 8);
}

_public_ int ashm_kv_get_uint64(ashm_kv *kv, const char *key, uint64_t *ret_value) {
        return get_fixed(kv, key, ASHM_KV_UINT64, ret_value, 8);
}

_public_ int ashm_kv_get_float(ashm_kv *kv, const char *key, float *ret_value) {
        return get_fixed(kv, key, ASHM_KV_FLOAT, ret_value, 4);
}

_public_ int ashm_kv_get_double(ashm_kv *kv, const char *key, double *ret_value) {
        return get_fixed(kv, key, ASHM_KV_DOUBLE, ret_value, 8);
}

/* A string or bytes value, of any length: read into buf if it fits, else
 * into a buffer of the right size (the value may grow meanwhile: loop).
 * *ret_buf is buf or a malloc()ed buffer; extra bytes are allocated past
 * the value (for a NUL). */
static int get_var(ashm_kv *kv, const char *key, int type, void *buf, size_t size, size_t extra, void **ret_buf,
                   size_t *ret_len) {
        void *p = buf;
        size_t cap = size, klen = 0;
        struct found f;
        int r;

        r = kv_usable(kv);
        if (r < 0)
                return r;
        r = check_key(key, &klen);
        if (r < 0)
                return r;
        for (;;) {
                r = lookup(kv, key, klen, p, cap, &f);
                if (r < 0)
                        break;
                if (f.type != type) {
                        r = kv_fail(-EPROTOTYPE, "key \"%.64s\" holds %s %s, not %s %s", key,
                                    type_article(f.type), ashm_kv_type_name(f.type), type_article(type),
                                    ashm_kv_type_name(type));
                        break;
                }
                if (f.len + extra <= cap || !ret_buf) {
                        *ret_len = f.len;
                        if (ret_buf)
                                *ret_buf = p;
                        return 0;
                }
                if (p != buf)
                        free(p);
                cap = f.len + extra;
                p = malloc(cap);
                if (!p)
                        return -ENOMEM;
        }
        if (p != buf)
                free(p);
        return r;
}

_public_ int ashm_kv_get_bytes(ashm_kv *kv, const char *key, void *buf, size_t size, size_t *ret_len) {
        size_t len;
        int r;

        if (!buf && size > 0)
                return -EINVAL;
        r = get_var(kv, key, ASHM_KV_BYTES, buf, size, 0, NULL, &len);
        if (r == 0 && ret_len)
                *ret_len = len;
        return r;
}

_public_ int ashm_kv_get_string(ashm_kv *kv, const char *key, char *buf, size_t size, size_t *ret_len) {
        size_t len;
        int r;

        if (!buf && size > 0)
                return -EINVAL;
        r = get_var(kv, key, ASHM_KV_STRING, buf, size, 0, NULL, &len);
        if (r < 0)
                return r;
        if (size > 0)
                buf[MIN(len, size - 1)] = '\0';
        if (ret_len)
                *ret_len = len;
        return 0;
}

_public_ int ashm_kv_get_string_dup(ashm_kv *kv, const char *key, char **ret_value) {
        char small[256], *s;
        void *p;
        size_t len;
        int r;

        if (!ret_value)
                return -EINVAL;
        r = get_var(kv, key, ASHM_KV_STRING, small, sizeof(small), 1, &p, &len);
        if (r < 0)
                return r;
        if (p == small) {
                s = malloc(len + 1);
                if (!s)
                        return -ENOMEM;
                memcpy(s, small, len);
        } else
                s = p;
        s[len] = '\0';
        *ret_value = s;
        return 0;
}

_public_ int ashm_kv_contains(ashm_kv *kv, const char *key) {
        int r = ashm_kv_get(kv, key, NULL, NULL, 0, NULL);

        return r == 0 ? 1 : r == -ENOENT ? 0 : r;
}

_public_ int ashm_kv_count(ashm_kv *kv, uint64_t *ret_count) {
        int r = kv_usable(kv);

        if (r < 0)
                return r;
        for (int tries = 0;; tries++) {
                uint64_t gen = load_acq(&kv->h->gen);
                uint64_t n = load_rlx(&kv->h->arenas[gen & 1].nkeys);

                __atomic_thread_fence(__ATOMIC_ACQUIRE);
                if (tries >= KV_READ_RETRIES)
                        return gen_unstable();
                if (load_rlx(&kv->h->gen) == gen) {
                        *ret_count = n;
                        return 0;
                }
        }
}

/* ---- the writers' lock and recovery --------------------------------- */

/* A fresh lock where the header's lock lives (also over a version 1
 * store's glibc mutex: its bytes are cleared). Nobody else may be using it. */
static void init_lock(struct kv_header *h) {
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
                rec = slot_record(v, s, limit, &rh);
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
static int kv_recover(ashm_kv *kv) {
        struct kv_header *h = kv->h;
        struct kv_arena *a = &h->arenas[h->gen & 1];
        struct arena_view v;
        uint64_t pos, head, live = 0, keys = 0, used = 0;
        int r;

        r = arena_view(kv, a, &v);
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
                if ((uint32_t) (s >> 32) == KV_TAG_TOMB || !slot_record(&v, s, pos, &rh))
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

static int kv_lock(ashm_kv *kv) {
        uint32_t holder = 0;
        int r = lock_take(&kv->h->lock.l, &kv->owner, lock_timeout_ns(), &holder);

        switch (r) {
        case 0:
                return 0;
        case LOCK_OWNER_DIED:
                /* A writer died holding the lock (or a peer wrote the id
                 * of no live writer into it): whatever was left half-done,
                 * the log says what was committed. */
                (void) kv_recover(kv);
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
                               "has it open (the first writer lays the lock out anew), or run ashm kv repair");
        default:
                return kv_fail(r, "cannot take the writers' lock: %s", strerror(-r));
        }
}

static void kv_unlock(ashm_kv *kv) {
        /* -EPERM: a peer wrote over the lock while we held it; the word is
         * theirs now, and the next writer finds out what it names. */
        (void) lock_release(&kv->h->lock.l, &kv->owner);
}

/* ---- growth and rebuilds -------------------------------------------- */

static uint64_t round_page(uint64_t n) {
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
        int seals, r = file_size_checked(kv, &fsz);

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

static int sync_range(ashm_kv *kv, uint64_t off, uint64_t len) {
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

        r = arena_view(kv, old, &ov);
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
        log_cap = MAX((uint64_t) KV_MIN_LOG, round_page(2 * (live + extra_bytes)));
        if (log_cap > KV_LOG_MAX || slots > KV_LOG_MAX / 8)
                return kv_fail(-EFBIG, "the store would exceed %" PRIu64 " GiB of log",
                               (uint64_t) KV_LOG_MAX >> 30);
        index_bytes = round_page(slots * 8);
        size = index_bytes + log_cap;
        /* Before the active arena if it fits there, else after it. */
        off = KV_HEADER_SIZE + size <= ov.off ? KV_HEADER_SIZE : round_page(ov.log_off + ov.log_cap);
        r = prepare_space(kv, off, size);
        if (r == -ENOSPC && log_cap > round_page(live + extra_bytes)) {
                /* A region of fixed size: no slack for growth, just room. */
                log_cap = MAX((uint64_t) KV_MIN_LOG, round_page(live + extra_bytes));
                size = index_bytes + log_cap;
                off = KV_HEADER_SIZE + size <= ov.off ? KV_HEADER_SIZE : round_page(ov.log_off + ov.log_cap);
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
                rec = slot_record(&ov, s, old_head, &rh);
                if (!rec || rh.type == KV_REC_REMOVE || kv_record_crc(rec, rh.key_len, rh.val_len) != rh.crc) {
                        release_space(kv, off, size);
                        return kv_fail(-EBADMSG,
                                       "index slot %" PRIu64 " leads to a damaged record: run ashm kv repair", i);
                }
                size_rec = kv_record_size(rh.key_len, rh.val_len);
                if (head + size_rec > log_cap || 2 * (n + 1) > slots) {
                        release_space(kv, off, size);
                        return kv_fail(-EBADMSG, "the live records outgrow their count: run ashm kv repair");
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
                r = sync_range(kv, off, index_bytes + head);
                if (r < 0)
                        return r;
        }
        h->rebuilds++;
        store_rel(&h->gen, gen + 1);
        if (kv->flags & ASHM_KV_SYNC)
                (void) sync_range(kv, 0, KV_HEADER_SIZE);
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
                r = arena_view(kv, a, &v);
                if (r < 0)
                        return r;
                head = load_rlx(&a->log_head);
                if (head > v.log_cap || head % 8 != 0)
                        return kv_fail(-EBADMSG, "the log's length (%" PRIu64 ") is out of bounds: run ashm kv "
                                       "repair", head);
                i = find_slot(&v, hash, key, klen, head, &old);
                if (i < 0 && attempt > 0)
                        return kv_fail(-EBADMSG, "the index is full of damaged slots: run ashm kv repair");
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
                slot_record(&v, old, head, &orh);
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
                r = sync_range(kv, (uint64_t) (rec - kv->base), need);
                if (r == 0)
                        r = sync_range(kv, v.off + (uint64_t) i * 8, 8);
                if (r == 0)
                        r = sync_range(kv, 0, KV_HEADER_SIZE);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int write_begin(ashm_kv *kv) {
        int r = kv_usable(kv);

        if (r < 0)
                return r;
        if (!kv->writable)
                return kv_fail(-EROFS, "the store was opened read-only");
        return kv_lock(kv);
}

_public_ int ashm_kv_set(ashm_kv *kv, const char *key, int type, const void *value, size_t len) {
        size_t klen = 0;
        int r;

        r = check_key(key, &klen);
        if (r < 0)
                return r;
        if ((!value && len > 0) || !kv_value_valid(type, value, len))
                return kv_fail(-EINVAL, "not a valid %s value", ashm_kv_type_name(type) ?: "typed");
        r = write_begin(kv);
        if (r < 0)
                return r;
        r = put(kv, key, klen, type, value, len);
        kv_unlock(kv);
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

        r = check_key(key, &klen);
        if (r < 0)
                return r;
        r = write_begin(kv);
        if (r < 0)
                return r;
        r = put(kv, key, klen, KV_REC_REMOVE, NULL, 0);
        kv_unlock(kv);
        return r;
}

/* A rebuild on request: with no live record (clear) or all of them. */
static int rebuild_now(ashm_kv *kv, bool empty) {
        int r = write_begin(kv);

        if (r < 0)
                return r;
        r = rebuild(kv, 0, 0, empty);
        kv_unlock(kv);
        return r;
}

_public_ int ashm_kv_clear(ashm_kv *kv) {
        return rebuild_now(kv, true);
}

_public_ int ashm_kv_compact(ashm_kv *kv) {
        return rebuild_now(kv, false);
}

_public_ int ashm_kv_sync(ashm_kv *kv) {
        int r = kv_usable(kv);

        if (r < 0)
                return r;
        if (!kv->writable)
                return 0;
        r = kv_lock(kv);
        if (r < 0)
                return r;
        r = sync_range(kv, 0, load_rlx(&kv->h->file_size));
        if (r == 0 && fdatasync(kv->fd) < 0 && errno != EINVAL)
                r = kv_fail(negative_errno(), "cannot write the store to disk: %m");
        if (r == 0 && kv->h->dirty) {
                kv->h->dirty = 0;
                r = sync_range(kv, 0, KV_HEADER_SIZE);
        }
        kv_unlock(kv);
        return r;
}

/* ---- iteration and stats ------------------------------------------------ */

struct snap_entry {
        uint32_t key_off; /* into the key buffer */
        uint32_t type;
        uint64_t len;
};

/* Copy the keys of the active arena. Writers hold the lock for it, so it
 * is one instant; read-only handles retry until no rebuild came between. */
static int snapshot(ashm_kv *kv, struct snap_entry **ret_e, size_t *ret_n, char **ret_keys) {
        for (int tries = 0;; tries++) {
                uint64_t gen = load_acq(&kv->h->gen);
                const struct kv_arena *a = &kv->h->arenas[gen & 1];
                struct arena_view v;
                struct snap_entry *e = NULL;
                char *keys = NULL;
                size_t n = 0, cap = 0, kused = 0, kcap = 0;
                uint64_t limit = load_acq(&a->log_head);
                int r = arena_view(kv, a, &v);

                for (uint64_t i = 0; r == 0 && i < v.slots; i++) {
                        uint64_t s = load_acq(&v.slot[i]);
                        const struct kv_record *rec;
                        struct kv_record rh;

                        if (s == KV_SLOT_EMPTY || (uint32_t) (s >> 32) == KV_TAG_TOMB)
                                continue;
                        rec = slot_record(&v, s, limit, &rh);
                        if (!rec || rh.type == KV_REC_REMOVE || rh.type > ASHM_KV_BYTES) {
                                r = kv_fail(-EBADMSG, "index slot %" PRIu64 " leads to a damaged record", i);
                                break;
                        }
                        if (n == cap) {
                                void *p = realloc(e, (cap = cap ? 2 * cap : 256) * sizeof(*e));

                                if (!p) {
                                        r = -ENOMEM;
                                        break;
                                }
                                e = p;
                        }
                        if (kused + rh.key_len + 1 > kcap) {
                                void *p;

                                kcap = MAX(2 * kcap, kused + rh.key_len + 1 + 4096);
                                p = realloc(keys, kcap);
                                if (!p) {
                                        r = -ENOMEM;
                                        break;
                                }
                                keys = p;
                        }
                        memcpy(keys + kused, rec + 1, rh.key_len);
                        keys[kused + rh.key_len] = '\0';
                        e[n++] = (struct snap_entry) { (uint32_t) kused, rh.type, rh.val_len };
                        kused += rh.key_len + 1;
                }
                __atomic_thread_fence(__ATOMIC_ACQUIRE);
                if (load_rlx(&kv->h->gen) == gen && (r == 0 || r == -ENOMEM)) {
                        if (r < 0) {
                                free(e);
                                free(keys);
                                return r;
                        }
                        *ret_e = e;
                        *ret_n = n;
                        *ret_keys = keys;
                        return 0;
                }
                free(e);
                free(keys);
                if (load_rlx(&kv->h->gen) == gen)
                        return r;
                if (tries >= KV_READ_RETRIES)
                        return gen_unstable();
        }
}

_public_ int ashm_kv_foreach(ashm_kv *kv, ashm_kv_foreach_fn *fn, void *userdata) {
        struct snap_entry *e = NULL;
        char *keys = NULL;
        size_t n = 0;
        bool locked = false;
        int r;

        r = kv_usable(kv);
        if (r < 0)
                return r;
        if (!fn)
                return -EINVAL;
        if (kv->writable) {
                r = kv_lock(kv);
                if (r < 0)
                        return r;
                locked = true;
        }
        r = snapshot(kv, &e, &n, &keys);
        if (locked)
                kv_unlock(kv);
        for (size_t i = 0; r == 0 && i < n; i++) {
                int q = fn(keys + e[i].key_off, (int) e[i].type, e[i].len, userdata);

                if (q < 0)
                        r = q;
        }
        free(e);
        free(keys);
        return r;
}

_public_ int ashm_kv_stats_get(ashm_kv *kv, ashm_kv_stats *ret_stats) {
        struct kv_header *h;
        struct stat st;
        int r = kv_usable(kv);

        if (r < 0)
                return r;
        if (!ret_stats)
                return -EINVAL;
        if (fstat(kv->fd, &st) < 0)
                return negative_errno();
        h = kv->h;
        for (int tries = 0;; tries++) {
                uint64_t gen = load_acq(&h->gen);
                const struct kv_arena *a = &h->arenas[gen & 1];
                ashm_kv_stats s = {
                        .keys = load_rlx(&a->nkeys),
                        .file_size = (uint64_t) st.st_size,
                        .allocated = (uint64_t) st.st_blocks * 512,
                        .live_bytes = load_rlx(&a->live_bytes),
                        .dead_bytes = load_rlx(&a->dead_bytes),
                        .log_used = load_rlx(&a->log_head),
                        .log_size = load_rlx(&a->log_cap),
                        .slots = load_rlx(&a->slots),
                        .rebuilds = load_rlx(&h->rebuilds),
                        .recoveries = load_rlx(&h->recoveries),
                        .version = h->version,
                };

                __atomic_thread_fence(__ATOMIC_ACQUIRE);
                if (tries >= KV_READ_RETRIES)
                        return gen_unstable();
                if (load_rlx(&h->gen) == gen) {
                        *ret_stats = s;
                        return 0;
                }
        }
}

/* ---- open and close ----------------------------------------------------- */

static void read_boot_id(uint8_t id[16]) {
        char buf[64] = "";
        int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
        uint32_t a = 0, b = 0;

        if (fd >= 0) {
                ssize_t n = read(fd, buf, sizeof(buf) - 1);

                buf[n > 0 ? n : 0] = '\0';
                close(fd);
        }
        a = crc32c(0, buf, strlen(buf));
        b = crc32c(a, buf, strlen(buf));
        memset(id, 0, 16);
        memcpy(id, &a, 4);
        memcpy(id + 4, &b, 4);
        memcpy(id + 8, buf, MIN(strlen(buf), (size_t) 8));
}

uint32_t kv_header_crc(const struct kv_header *h) {
        return crc32c(0, h, offsetof(struct kv_header, static_crc));
}

/* Lay a new store out in the mapping of an empty file. */
static int init_store(ashm_kv *kv) {
        struct kv_header *h = kv->h;
        uint64_t index_bytes = round_page(KV_MIN_SLOTS * 8);
        struct timespec ts;
        uint64_t seed = 0;
        uint64_t size = KV_HEADER_SIZE + index_bytes + KV_MIN_LOG;
        struct stat st;

        /* Not prepare_space(): there is no header to read the size from. */
        if (fstat(kv->fd, &st) < 0)
                return negative_errno();
        if (fallocate(kv->fd, 0, 0, (off_t) size) < 0 &&
            (errno != EOPNOTSUPP || ((uint64_t) st.st_size < size && ftruncate(kv->fd, (off_t) size) < 0))) {
                if (errno == EPERM && (uint64_t) st.st_size < size)
                        return kv_fail(-ENOSPC, "the region is sealed against growing and smaller (%jd bytes) "
                                       "than a store's %" PRIu64 ": create it larger",
                                       (intmax_t) st.st_size, size);
                return kv_fail(negative_errno(), "cannot make room for the store: %m");
        }
        if ((uint64_t) st.st_size > size)
                size = (uint64_t) st.st_size & ~(uint64_t) 7;
        memset(kv->base, 0, KV_HEADER_SIZE + index_bytes);
        clock_gettime(CLOCK_REALTIME, &ts);
        if (getentropy(&seed, sizeof(seed)) < 0)
                seed = (uint64_t) ts.tv_nsec * UINT64_C(0x9E3779B97F4A7C15) ^ (uint64_t) getpid();
        h->version = KV_VERSION;
        h->header_size = KV_HEADER_SIZE;
        h->seed = seed;
        h->created_ns = (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
        h->file_size = size;
        h->arenas[0] = (struct kv_arena) {
                .off = KV_HEADER_SIZE,
                .slots = KV_MIN_SLOTS,
                .log_off = KV_HEADER_SIZE + index_bytes,
                .log_cap = KV_MIN_LOG,
        };
        init_lock(h);
        /* The magic last: a creator killed before it leaves an empty
         * file, which the next creator lays out again. */
        h->magic = KV_MAGIC;
        h->static_crc = kv_header_crc(h);
        h->magic = 0;
        store_rel(&h->magic, KV_MAGIC);
        if (kv->flags & ASHM_KV_SYNC)
                return sync_range(kv, 0, KV_HEADER_SIZE);
        return 0;
}

int kv_header_check(const struct kv_header *h, uint64_t file_size) {
        if (h->magic != KV_MAGIC)
                return kv_fail(-EBADMSG, "not an ashm KV store (no magic)");
        /* Version 1 differs only in the lock: readable, and migrated by
         * the first writer (first_writer()). */
        if (h->version != KV_VERSION && h->version != KV_VERSION_PTHREAD)
                return kv_fail(h->version > KV_VERSION ? -EPROTONOSUPPORT : -EBADMSG,
                               "store format version %u, this library reads versions %u and %u", h->version,
                               KV_VERSION_PTHREAD, KV_VERSION);
        if (h->header_size != KV_HEADER_SIZE || h->static_crc != kv_header_crc(h))
                return kv_fail(-EBADMSG, "the store's header is damaged (checksum mismatch)");
        if (h->file_size > file_size)
                return kv_fail(-EBADMSG, "the store is truncated: %" PRIu64 " bytes of %" PRIu64, file_size,
                               h->file_size);
        return 0;
}

_public_ void ashm_kv_close(ashm_kv *kv) {
        if (!kv)
                return;
        if (kv->owner.id != 0)
                lock_owner_done(&kv->owner);
        if (kv->base)
                munmap(kv->base, kv->map_len);
        safe_close(kv->fd);
        free(kv);
}

static int lock_range(int fd, short type, int cmd) {
        struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };

        while (fcntl(fd, cmd, &fl) < 0)
                if (errno != EINTR)
                        return negative_errno();
        return 0;
}

/* The first writer to open the store since every other left: the lock
 * word may name a thread of another boot, and a crash may have left the
 * index behind the log. */
static int first_writer(ashm_kv *kv) {
        struct kv_header *h = kv->h;
        uint8_t boot[16];
        int r;

        init_lock(h);
        if (h->version == KV_VERSION_PTHREAD) {
                /* Migrate: the glibc mutex gave way to the lock above. A
                 * writer of an older ashm would hold the flock we hold
                 * alone, and refuses version 2 from now on. */
                h->version = KV_VERSION;
                h->static_crc = kv_header_crc(h);
        }
        read_boot_id(boot);
        if (memcmp(boot, h->boot_id, sizeof(boot)) != 0) {
                if (h->dirty) {
                        /* The machine went down with writes not synced:
                         * pages may have reached the disk in any order. */
                        ashm_kv_report rep;

                        r = ashm_kv_check_fd(kv->fd, NULL, NULL, &rep);
                        if (r != 0)
                                return kv_fail(r < 0 ? r : -EUCLEAN,
                                               "the store was being written when the machine went down and "
                                               "%" PRIu64 " part(s) are damaged: run ashm kv repair",
                                               rep.damaged + rep.index_errors);
                }
                memcpy(h->boot_id, boot, sizeof(boot));
        }
        return kv_recover(kv);
}

/* A store on a memfd (a region) is sealed against shrinking before it is
 * mapped: a peer's ftruncate() would otherwise raise SIGBUS in every
 * process that has it mapped. Growth stays allowed unless the region
 * was sealed against it (then the store has the region's size). */
static int seal_shrink(int fd) {
        int seals = fcntl(fd, F_GET_SEALS);

        if (seals < 0 || (seals & F_SEAL_SHRINK))
                return 0; /* a file on a file system without seals */
        if (memfd_fstat(fd, &(struct stat) {}) < 0)
                return 0; /* a tmpfs file that is not a memfd: an ordinary file */
        if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) < 0)
                return kv_fail(negative_errno(), "cannot seal the store's region against shrinking (%m): "
                               "a store needs a region that allows sealing (MFD_ALLOW_SEALING)");
        return 0;
}

static int open_internal(int fd, unsigned flags, ashm_kv **ret_kv) {
        _cleanup_close_ int owned = fd;
        ashm_kv *kv;
        struct stat st;
        bool writable = !(flags & ASHM_KV_RDONLY);
        void *p;
        int r;

        pthread_once(&fork_once, fork_register);
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return kv_fail(-EBADMSG, "not an ashm KV store (not a regular file or memfd)");
        r = lock_range(fd, writable ? F_WRLCK : F_RDLCK, F_OFD_SETLKW);
        if (r < 0)
                return kv_fail(r, "cannot lock the store: %s", strerror(-r));
        if (writable) {
                r = seal_shrink(fd);
                if (r < 0)
                        return r;
        }
        if (fstat(fd, &st) < 0)
                return negative_errno();

        kv = calloc(1, sizeof(*kv));
        if (!kv)
                return -ENOMEM;
        kv->fd = TAKE_FD(owned);
        kv->flags = flags;
        kv->writable = writable;
        kv->fork_gen = __atomic_load_n(&fork_gen, __ATOMIC_RELAXED);
        kv->map_len = KV_MAP_MAX;
        p = mmap(NULL, kv->map_len, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, kv->fd, 0);
        if (p == MAP_FAILED) {
                r = kv_fail(negative_errno(), "cannot map the store: %m");
                goto fail;
        }
        kv->base = p;
        kv->h = p;

        if (st.st_size == 0 || load_acq(&kv->h->magic) == 0) {
                if (!(flags & ASHM_KV_CREATE) || !writable) {
                        r = kv_fail(-ENODATA, "the file is empty: no store yet");
                        goto fail;
                }
                r = init_store(kv);
                if (r == 0 && fstat(kv->fd, &st) < 0)
                        r = negative_errno();
                if (r < 0)
                        goto fail;
        } else if (st.st_size < (off_t) KV_HEADER_SIZE) {
                r = kv_fail(-EBADMSG, "not an ashm KV store (%jd bytes)", (intmax_t) st.st_size);
                goto fail;
        }
        r = kv_header_check(kv->h, (uint64_t) st.st_size);
        if (r < 0)
                goto fail;
        kv->seed = kv->h->seed;
        kv->known_size = (uint64_t) st.st_size;

        if (writable) {
                /* Every writer holds a shared flock for its life; one that
                 * can take it exclusively is alone. Opens are serialized by
                 * the byte lock above, so nobody slips in between. */
                if (flock(kv->fd, LOCK_EX | LOCK_NB) == 0) {
                        r = first_writer(kv);
                        if (r < 0)
                                goto fail;
                }
                if (flock(kv->fd, LOCK_SH) < 0) {
                        r = negative_errno();
                        goto fail;
                }
                if (kv->h->version == KV_VERSION_PTHREAD) {
                        r = kv_fail(-EBUSY, "a writer of an older ashm (store format 1) has the store open: "
                                    "close it first");
                        goto fail;
                }
                /* Our own open file description (ashm_kv_open_fd() made
                 * one), so the lock's owner byte dies with this handle. */
                r = lock_owner_init(&kv->owner, kv->fd);
                if (r < 0) {
                        r = kv_fail(r, "cannot take a writer id on the store: %s", strerror(-r));
                        goto fail;
                }
        }
        (void) lock_range(kv->fd, F_UNLCK, F_OFD_SETLK);
        *ret_kv = kv;
        return 0;
fail:
        ashm_kv_close(kv);
        return r;
}

_public_ int ashm_kv_open(const char *path, unsigned flags, ashm_kv **ret_kv) {
        int fd, oflags = O_CLOEXEC | O_NOCTTY;

        if (!path || !ret_kv || (flags & ~(unsigned) (ASHM_KV_CREATE | ASHM_KV_RDONLY | ASHM_KV_SYNC)))
                return -EINVAL;
        detail[0] = '\0';
        oflags |= flags & ASHM_KV_RDONLY ? O_RDONLY : O_RDWR;
        if ((flags & ASHM_KV_CREATE) && !(flags & ASHM_KV_RDONLY))
                oflags |= O_CREAT;
        fd = open(path, oflags, 0600);
        if (fd < 0)
                return kv_fail(negative_errno(), "cannot open %s: %m", path);
        return open_internal(fd, flags, ret_kv);
}

_public_ int ashm_kv_open_fd(int fd, unsigned flags, ashm_kv **ret_kv) {
        char path[64];
        int nfd;

        if (fd < 0 || !ret_kv || (flags & ~(unsigned) (ASHM_KV_CREATE | ASHM_KV_RDONLY | ASHM_KV_SYNC)))
                return fd < 0 ? -EBADF : -EINVAL;
        detail[0] = '\0';
        if (fcntl(fd, F_GETFD) < 0)
                return -EBADF;
        /* A new open file description of our own: flock() and the byte
         * locks belong to it, not to whoever shares fd with us. */
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        nfd = open(path, (flags & ASHM_KV_RDONLY ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOCTTY);
        if (nfd < 0)
                return kv_fail(negative_errno(), "cannot open the store's fd again: %m");
        return open_internal(nfd, flags, ret_kv);
}

_public_ int ashm_kv_open_region(const ashm_region *region, unsigned flags, ashm_kv **ret_kv) {
        if (!region)
                return -EINVAL;
        return ashm_kv_open_fd(ashm_region_fd(region), flags, ret_kv);
}

_public_ int ashm_kv_fd(const ashm_kv *kv) {
        return kv ? kv->fd : -EINVAL;
}
