/* SPDX-License-Identifier: MIT */
/*
 * Checking and repairing KV stores: read every record, report each
 * damaged part, and copy every intact record into a new store. Nothing
 * here trusts the file: it may be damaged anywhere.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ashm.h"
#include "fd-util.h"
#include "internal.h"
#include "kv.h"

/* The newest intact record of each key, found by a scan. */
struct winner {
        uint64_t off; /* of the record in the file; 0: empty entry */
        uint32_t serial;
        uint8_t type;
};

struct scan {
        const uint8_t *base;
        uint64_t size;
        uint64_t seed;
        struct winner *w;
        uint64_t cap, n; /* entries in use */
        ashm_kv_damage_fn *fn;
        void *userdata;
        ashm_kv_report rep;
};

static void damage(struct scan *s, uint64_t off, uint64_t len, const char *fmt, ...) _printf_(4, 5);
static void damage(struct scan *s, uint64_t off, uint64_t len, const char *fmt, ...) {
        char what[320];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        if (s->fn)
                s->fn(off, len, what, s->userdata);
}

/* The record at file offset off if it is intact and ends by limit. */
static bool record_ok(const struct scan *s, uint64_t off, uint64_t limit, struct kv_record *rh) {
        const uint8_t *rec = s->base + off;
        uint64_t size;

        if (off + sizeof(*rh) > limit)
                return false;
        memcpy(rh, rec, sizeof(*rh));
        if (rh->key_len == 0 || rh->key_len > ASHM_KV_KEY_MAX || rh->val_len > ASHM_KV_VALUE_MAX ||
            rh->type > ASHM_KV_BYTES || (rh->type == KV_REC_REMOVE && rh->val_len != 0))
                return false;
        size = kv_record_size(rh->key_len, rh->val_len);
        if (size > limit - off || kv_record_crc(rec, rh->key_len, rh->val_len) != rh->crc)
                return false;
        if (memchr(rec + sizeof(*rh), '\0', rh->key_len))
                return false;
        return rh->type == KV_REC_REMOVE || kv_value_valid(rh->type, rec + sizeof(*rh) + rh->key_len, rh->val_len);
}

static const char *rec_key(const struct scan *s, uint64_t off, uint16_t *len) {
        struct kv_record rh;

        memcpy(&rh, s->base + off, sizeof(rh));
        *len = rh.key_len;
        return (const char *) s->base + off + sizeof(rh);
}

static int winners_grow(struct scan *s);

/* The entry for the key of the record at off (a new, empty one if none). */
static struct winner *winner_for(struct scan *s, uint64_t off) {
        uint16_t klen, olen;
        const char *key = rec_key(s, off, &klen);
        uint64_t mask = s->cap - 1, i = kv_hash(s->seed, key, klen) & mask;

        for (;; i = (i + 1) & mask) {
                if (s->w[i].off == 0)
                        return &s->w[i];
                const char *other = rec_key(s, s->w[i].off, &olen);
                if (olen == klen && memcmp(other, key, klen) == 0)
                        return &s->w[i];
        }
}

static int winners_grow(struct scan *s) {
        struct winner *old = s->w;
        uint64_t ocap = s->cap;

        s->cap = ocap ? 2 * ocap : 1024;
        s->w = calloc(s->cap, sizeof(*s->w));
        if (!s->w) {
                s->w = old;
                s->cap = ocap;
                return -ENOMEM;
        }
        for (uint64_t i = 0; i < ocap; i++)
                if (old[i].off)
                        *winner_for(s, old[i].off) = old[i];
        free(old);
        return 0;
}

/* Record the record at off as its key's newest if it is (by position
 * when by_position, else by serial). */
static int note(struct scan *s, uint64_t off, const struct kv_record *rh, bool by_position) {
        struct winner *w;

        if ((s->n + 1) * 2 > s->cap && winners_grow(s) < 0)
                return -ENOMEM;
        w = winner_for(s, off);
        if (w->off == 0)
                s->n++;
        else if (!by_position && (int32_t) (rh->serial - w->serial) < 0)
                return 0;
        *w = (struct winner) { off, rh->serial, rh->type };
        return 0;
}

/* Scan [from, to) of the file for records, resynchronising past damage
 * on the next 8-byte boundary that holds an intact record. */
static int scan_log(struct scan *s, uint64_t from, uint64_t to, bool by_position, bool report_gaps) {
        uint64_t pos = from;

        while (pos + sizeof(struct kv_record) <= to) {
                struct kv_record rh;
                uint64_t start = pos;
                int r;

                if (record_ok(s, pos, to, &rh)) {
                        r = note(s, pos, &rh, by_position);
                        if (r < 0)
                                return r;
                        s->rep.records++;
                        pos += kv_record_size(rh.key_len, rh.val_len);
                        continue;
                }
                for (pos += 8; pos + sizeof(struct kv_record) <= to && !record_ok(s, pos, to, &rh); pos += 8)
                        ;
                if (pos + sizeof(struct kv_record) > to)
                        pos = to;
                if (report_gaps) {
                        s->rep.damaged++;
                        s->rep.damaged_bytes += pos - start;
                        damage(s, start, pos - start, "damaged record%s: %" PRIu64 " bytes that are no intact record",
                               pos - start > 64 ? "s" : "", pos - start);
                }
        }
        return 0;
}

/* Compare the index of the active arena with the winners of its log. */
static void check_index(struct scan *s, const struct kv_header *h, const struct kv_arena *a) {
        const uint64_t *slot = (const uint64_t *) (s->base + a->off);
        uint64_t live = 0, keys = 0, head = MIN(a->log_head, a->log_cap);

        for (uint64_t i = 0; i < a->slots; i++) {
                uint64_t sv = slot[i], off;
                struct winner *w;
                struct kv_record rh;

                if (sv == KV_SLOT_EMPTY || (uint32_t) (sv >> 32) == KV_TAG_TOMB)
                        continue;
                off = a->log_off + (sv & 0xffffffffu) * 8;
                if ((sv & 0xffffffffu) * 8 >= head || !record_ok(s, off, a->log_off + head, &rh)) {
                        s->rep.index_errors++;
                        damage(s, a->off + i * 8, 8, "index slot %" PRIu64 " leads to no intact record", i);
                        continue;
                }
                w = winner_for(s, off);
                if (w->off != off || rh.type == KV_REC_REMOVE) {
                        uint16_t klen;
                        const char *key = rec_key(s, off, &klen);

                        s->rep.index_errors++;
                        damage(s, a->off + i * 8, 8, "index slot %" PRIu64 " leads to an old record of key \"%.*s\"",
                               i, (int) MIN(klen, 64), key);
                        continue;
                }
                keys++;
        }
        for (uint64_t i = 0; i < s->cap; i++)
                if (s->w[i].off && s->w[i].type != KV_REC_REMOVE)
                        live++;
        if (live != keys) {
                s->rep.index_errors++;
                damage(s, a->off, a->slots * 8, "the index holds %" PRIu64 " of the %" PRIu64 " keys in the log",
                       keys, live);
        } else if (a->nkeys != keys) {
                s->rep.index_errors++;
                damage(s, (uint64_t) ((const uint8_t *) &a->nkeys - (const uint8_t *) h), 8,
                       "the key count says %" PRIu64 ", the index holds %" PRIu64, a->nkeys, keys);
        }
}

static int scan_store(int fd, struct scan *s) {
        const struct kv_header *h;
        struct stat st;
        void *p;
        int r;

        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode) || st.st_size < (off_t) sizeof(uint64_t))
                return kv_fail(-EBADMSG, "not an ashm KV store (%s)", S_ISREG(st.st_mode) ? "too short" : "not a file");
        p = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
                return negative_errno();
        s->base = p;
        s->size = (uint64_t) st.st_size;
        h = p;
        if (s->size < KV_HEADER_SIZE || h->magic != KV_MAGIC) {
                munmap(p, s->size);
                s->base = NULL;
                return kv_fail(-EBADMSG, "not an ashm KV store (no magic)");
        }
        s->seed = h->seed;
        s->rep.header_ok = kv_header_check(h, s->size) == 0;
        if (s->rep.header_ok) {
                uint64_t gen = __atomic_load_n(&h->gen, __ATOMIC_ACQUIRE);
                const struct kv_arena *a = &h->arenas[gen & 1];

                if (!kv_arena_bounds_ok(a->off, a->slots, a->log_off, a->log_cap, h->file_size) ||
                    a->log_head > a->log_cap) {
                        s->rep.header_ok = 0;
                        damage(s, (uint64_t) ((const uint8_t *) a - (const uint8_t *) h), sizeof(*a),
                               "the arena descriptor is out of bounds");
                } else {
                        r = scan_log(s, a->log_off, a->log_off + a->log_head, true, true);
                        if (r < 0)
                                return r;
                        check_index(s, h, a);
                }
        } else
                damage(s, 0, KV_HEADER_SIZE, "the header is damaged: %s", ashm_kv_error_detail());
        if (!s->rep.header_ok) {
                /* No arena to trust: every intact record in the file, the
                 * newest serial of each key winning. */
                s->seed = h->seed;
                r = scan_log(s, KV_HEADER_SIZE, s->size & ~(uint64_t) 7, false, false);
                if (r < 0)
                        return r;
        }
        for (uint64_t i = 0; i < s->cap; i++)
                if (s->w[i].off && s->w[i].type != KV_REC_REMOVE)
                        s->rep.keys++;
        return 0;
}

static void scan_done(struct scan *s) {
        if (s->base)
                munmap((void *) s->base, s->size);
        free(s->w);
}

static int verdict(const struct scan *s) {
        return s->rep.damaged || s->rep.index_errors || !s->rep.header_ok ? 1 : 0;
}

_public_ int ashm_kv_check_fd(int fd, ashm_kv_damage_fn *fn, void *userdata, ashm_kv_report *ret_report) {
        struct scan s = { .fn = fn, .userdata = userdata };
        int r;

        r = scan_store(fd, &s);
        if (r == 0) {
                r = verdict(&s);
                if (ret_report)
                        *ret_report = s.rep;
        }
        scan_done(&s);
        return r;
}

_public_ int ashm_kv_check(const char *path, ashm_kv_damage_fn *fn, void *userdata, ashm_kv_report *ret_report) {
        _cleanup_close_ int fd = -1;

        if (!path)
                return -EINVAL;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return kv_fail(negative_errno(), "cannot open %s: %m", path);
        return ashm_kv_check_fd(fd, fn, userdata, ret_report);
}

_public_ int ashm_kv_repair_fd(int src_fd, int dst_fd, ashm_kv_damage_fn *fn, void *userdata, ashm_kv_report *ret_report) {
        struct scan s = { .fn = fn, .userdata = userdata };
        ashm_kv *dst = NULL;
        struct stat st;
        int r;

        if (fstat(dst_fd, &st) < 0)
                return negative_errno();
        if (st.st_size != 0)
                return kv_fail(-ENOTEMPTY, "the repaired store must go into an empty file");
        r = scan_store(src_fd, &s);
        if (r < 0)
                goto out;
        r = ashm_kv_open_fd(dst_fd, ASHM_KV_CREATE, &dst);
        if (r < 0)
                goto out;
        for (uint64_t i = 0; i < s.cap && r >= 0; i++) {
                const uint8_t *rec = s.base + s.w[i].off;
                struct kv_record rh;
                char key[ASHM_KV_KEY_MAX + 1];

                if (!s.w[i].off || s.w[i].type == KV_REC_REMOVE)
                        continue;
                memcpy(&rh, rec, sizeof(rh));
                memcpy(key, rec + sizeof(rh), rh.key_len);
                key[rh.key_len] = '\0';
                r = ashm_kv_set(dst, key, rh.type, rec + sizeof(rh) + rh.key_len, rh.val_len);
        }
        if (r >= 0)
                r = ashm_kv_sync(dst);
        if (r >= 0) {
                r = verdict(&s);
                if (ret_report)
                        *ret_report = s.rep;
        }
out:
        ashm_kv_close(dst);
        scan_done(&s);
        return r;
}

_public_ int ashm_kv_repair(const char *path, ashm_kv_damage_fn *fn, void *userdata, ashm_kv_report *ret_report) {
        _cleanup_close_ int fd = -1, tmp = -1;
        _cleanup_free_ char *tmp_path = NULL, *backup = NULL;
        ashm_kv_report rep;
        struct stat st;
        int r;

        if (!path)
                return -EINVAL;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return kv_fail(negative_errno(), "cannot open %s: %m", path);
        /* Writers hold a shared flock for as long as they have it open. */
        if (flock(fd, LOCK_EX | LOCK_NB) < 0)
                return kv_fail(errno == EWOULDBLOCK ? -EBUSY : negative_errno(),
                               "%s is open for writing by a process: close it first", path);
        r = ashm_kv_check_fd(fd, NULL, NULL, &rep);
        if (r <= 0) {
                if (r == 0 && ret_report)
                        *ret_report = rep;
                return r;
        }
        if (fstat(fd, &st) < 0 || asprintf(&tmp_path, "%s.repair-XXXXXX", path) < 0 ||
            asprintf(&backup, "%s.damaged", path) < 0)
                return -ENOMEM;
        tmp = mkostemp(tmp_path, O_CLOEXEC);
        if (tmp < 0)
                return kv_fail(negative_errno(), "cannot create %s: %m", tmp_path);
        (void) fchmod(tmp, st.st_mode & 07777);
        r = ashm_kv_repair_fd(fd, tmp, fn, userdata, &rep);
        if (r >= 0 && fsync(tmp) < 0)
                r = negative_errno();
        /* The damaged original stays as PATH.damaged; the repaired store
         * takes its name in one rename, so PATH always names a store. */
        if (r >= 0 && (unlink(backup) < 0 && errno != ENOENT))
                r = kv_fail(negative_errno(), "cannot replace %s: %m", backup);
        if (r >= 0 && link(path, backup) < 0)
                r = kv_fail(negative_errno(), "cannot keep the damaged store as %s: %m", backup);
        if (r >= 0 && rename(tmp_path, path) < 0)
                r = kv_fail(negative_errno(), "cannot put the repaired store in place: %m");
        if (r < 0) {
                (void) unlink(tmp_path);
                return r;
        }
        if (ret_report)
                *ret_report = rep;
        return 1;
}
