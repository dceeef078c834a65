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
 *    from indexed_head (ashm__kv_recover()).
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
#include "fork-gen.h"
#include "internal.h"
#include "kv-format.h"
#include "futex-util.h"
#include "kv.h"
#include "lock.h"
#include "macro.h"
#include "memfd-util.h"

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

void ashm__kv_detail_clear(void) {
        detail[0] = '\0';
}

int ashm__kv_usable(const ashm_kv *kv) {
        if (!kv)
                return -EINVAL;
        if (_unlikely_(ashm__fork_gen() != kv->fork_gen))
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

/* ---- the mapping ------------------------------------------------------ */

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
int ashm__kv_file_size_checked(const ashm_kv *kv, uint64_t *ret_size) {
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

int ashm__kv_arena_view(const ashm_kv *kv, const struct kv_arena *a, struct arena_view *v) {
        uint64_t fsz = 0;
        int r = ashm__kv_file_size_checked(kv, &fsz);

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
const struct kv_record *ashm__kv_slot_record(const struct arena_view *v, uint64_t s, uint64_t limit,
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
                int r = tries < KV_READ_RETRIES ? ashm__kv_arena_view(kv, &kv->h->arenas[gen & 1], &v) : gen_unstable();

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
                                rec = ashm__kv_slot_record(&v, s, v.log_cap, &rh);
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

int ashm__kv_check_key(const char *key, size_t *ret_len) {
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

        r = ashm__kv_usable(kv);
        if (r < 0)
                return r;
        r = ashm__kv_check_key(key, &klen);
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

        r = ashm__kv_usable(kv);
        if (r < 0)
                return r;
        r = ashm__kv_check_key(key, &klen);
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

        r = ashm__kv_usable(kv);
        if (r < 0)
                return r;
        r = ashm__kv_check_key(key, &klen);
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
        int r = ashm__kv_usable(kv);

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
                int r = ashm__kv_arena_view(kv, a, &v);

                for (uint64_t i = 0; r == 0 && i < v.slots; i++) {
                        uint64_t s = load_acq(&v.slot[i]);
                        const struct kv_record *rec;
                        struct kv_record rh;

                        if (s == KV_SLOT_EMPTY || (uint32_t) (s >> 32) == KV_TAG_TOMB)
                                continue;
                        rec = ashm__kv_slot_record(&v, s, limit, &rh);
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

        r = ashm__kv_usable(kv);
        if (r < 0)
                return r;
        if (!fn)
                return -EINVAL;
        if (kv->writable) {
                r = ashm__kv_lock(kv);
                if (r < 0)
                        return r;
                locked = true;
        }
        r = snapshot(kv, &e, &n, &keys);
        if (locked)
                ashm__kv_unlock(kv);
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
        int r = ashm__kv_usable(kv);

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

