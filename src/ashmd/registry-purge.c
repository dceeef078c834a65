/* SPDX-License-Identifier: MIT */
/* The registry's purging: the unpinned runs of the regions it tracks,
 * claimed in their pin-state blocks and punched out (registry.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fd-util.h"
#include "log.h"
#include "memfd-util.h"
#include "quota.h"
#include "registry.h"
#include "registry-internal.h"

/* Claimed runs of one region waiting to be punched, merged where they
 * touch so fallocate works in large calls. */
struct batch {
        struct region *region;
        struct pinstate_run *runs;
        size_t n, cap;
        bool locked;
};

static int batch_add(struct batch *b, const struct pinstate_run *runs, size_t n) {
        for (size_t i = 0; i < n; i++) {
                struct pinstate_run *last = b->n ? &b->runs[b->n - 1] : NULL;

                if (last && last->first + last->npages == runs[i].first) {
                        last->npages += runs[i].npages;
                        continue;
                }
                if (b->n == b->cap) {
                        size_t cap = b->cap ? b->cap * 2 : 64;
                        struct pinstate_run *m = realloc(b->runs, cap * sizeof(*m));

                        if (!m)
                                return -ENOMEM;
                        b->runs = m;
                        b->cap = cap;
                }
                b->runs[b->n++] = runs[i];
        }
        return 0;
}

/* Punch the batch's runs and mark them purged. If not even the first
 * punch worked (a region sealed against writing, say), nothing was
 * discarded: give the pages back as unpinned. Returns bytes purged. */
static uint64_t batch_flush(struct batch *b) {
        struct region *r = b->region;
        uint64_t bytes = 0;
        bool any = false;

        for (size_t i = 0; i < b->n; i++) {
                off_t off = (off_t) (b->runs[i].first * registry_page());
                off_t len = (off_t) (b->runs[i].npages * registry_page());

                if (fallocate(r->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) < 0) {
                        log_warning_ratelimited("region %s: cannot purge %lld bytes at %lld: %m", r->name,
                                                (long long) len, (long long) off);
                        if (!any) {
                                ashm__pinstate_abort(r->ps, b->runs, b->n);
                                r->punchable = false;
                                b->n = 0;
                                return 0;
                        }
                }
                any = true;
                bytes += (uint64_t) len;
        }
        ashm__pinstate_finish(r->ps, b->runs, b->n);
        b->n = 0;
        return bytes;
}

/* Set only during registry_purge_filtered(). */
static bool (*purge_keep)(const struct region *r, void *userdata);
static void *purge_keep_userdata;

static bool purgeable(const struct region *r, uid_t uid) {
        int seals;

        if (!r->ps || !r->punchable || (uid != (uid_t) -1 && r->uid != uid))
                return false;
        if (purge_keep && !purge_keep(r, purge_keep_userdata))
                return false;
        seals = fcntl(r->fd, F_GET_SEALS);
        return seals >= 0 && !(seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE));
}

struct candidate {
        struct pinstate_chunk chunk;
        size_t batch; /* index into the batches */
};

static int candidate_cmp(const void *a, const void *b) {
        uint64_t x = ((const struct candidate *) a)->chunk.stamp, y = ((const struct candidate *) b)->chunk.stamp;

        return x < y ? -1 : x > y;
}

/* Up to per_region oldest chunks of every purgeable region. */
static size_t gather(struct registry *reg, uid_t uid, size_t per_region, struct batch *batches,
                     struct candidate **ret) {
        struct candidate *c = NULL;
        struct pinstate_chunk *tmp = malloc(per_region * sizeof(*tmp));
        size_t n = 0, nb = 0;

        if (!tmp)
                return 0;
        for (struct region *r = reg->regions; r; r = r->next) {
                int k;

                if (!purgeable(r, uid))
                        continue;
                k = ashm__pinstate_oldest(r->ps, tmp, per_region);
                if (k <= 0)
                        continue;
                struct candidate *m = realloc(c, (n + (size_t) k) * sizeof(*m));
                if (!m)
                        break;
                c = m;
                batches[nb] = (struct batch) { .region = r };
                for (int i = 0; i < k; i++)
                        c[n++] = (struct candidate) { tmp[i], nb };
                nb++;
        }
        free(tmp);
        if (n > 1)
                qsort(c, n, sizeof(*c), candidate_cmp);
        *ret = c;
        return n;
}

/* One pass over the oldest chunks of every region. Returns bytes purged;
 * *ret_more tells whether regions may hold more unpinned chunks. */
static uint64_t purge_pass(struct registry *reg, uid_t uid, uint64_t bytes, bool *ret_more) {
        const size_t per_region = 256;
        struct batch *batches = calloc(reg->n_regions ? reg->n_regions : 1, sizeof(*batches));
        struct candidate *c = NULL;
        uint64_t claimed = 0, purged = 0;
        size_t n;

        *ret_more = false;
        if (!batches)
                return 0;
        n = gather(reg, uid, per_region, batches, &c);
        *ret_more = n > 0;
        for (size_t i = 0; i < n && claimed < bytes; i++) {
                struct batch *b = &batches[c[i].batch];
                struct pinstate_run runs[RUNS_PER_CLAIM];
                uint64_t next, end = c[i].chunk.first + c[i].chunk.npages;
                size_t nruns = 0;
                int k;

                if (!b->locked) {
                        if (ashm__pinstate_reclaim_begin(b->region->ps) < 0)
                                continue; /* a pin is cleaning up after a dead reclaimer */
                        b->locked = true;
                }
                for (next = c[i].chunk.first; next < end && claimed < bytes;) {
                        /* Claim no more pages than are still owed: the cap
                         * is kept to the page, not to the chunk. */
                        uint64_t owed = (bytes - claimed) / registry_page() + !!((bytes - claimed) % registry_page());
                        uint64_t before = next;

                        k = ashm__pinstate_claim(b->region->ps, next, MIN(end - next, owed), runs, RUNS_PER_CLAIM,
                                                 &nruns, &next);
                        /* Nothing in that window (pinned pages first in the
                         * chunk): look on from where the claim stopped. */
                        if (k < 0 || next == before)
                                break;
                        if (k == 0)
                                continue;
                        if (batch_add(b, runs, nruns) < 0) {
                                ashm__pinstate_abort(b->region->ps, runs, nruns);
                                break;
                        }
                        claimed += (uint64_t) k * registry_page();
                }
        }
        for (size_t i = 0; i < reg->n_regions && batches[i].region; i++) {
                if (batches[i].n)
                        purged += batch_flush(&batches[i]);
                if (batches[i].locked)
                        ashm__pinstate_reclaim_end(batches[i].region->ps);
                free(batches[i].runs);
        }
        free(c);
        free(batches);
        return purged;
}

uint64_t registry_purge(struct registry *reg, uid_t uid, uint64_t bytes) {
        uint64_t total = 0;
        bool more = true;

        /* Each pass takes the oldest chunks of each region; more passes
         * only when a region had more than that and bytes are still owed. */
        while (total < bytes && more) {
                uint64_t got = purge_pass(reg, uid, bytes - total, &more);

                total += got;
                if (got == 0)
                        break;
        }
        if (total > 0) {
                reg->purges++;
                reg->purged_total += total;
                log_debug("purged %llu bytes", (unsigned long long) total);
        }
        return total;
}

uint64_t registry_purge_filtered(struct registry *reg, bool (*keep)(const struct region *r, void *userdata),
                                 void *userdata, uint64_t bytes) {
        uint64_t got;

        purge_keep = keep;
        purge_keep_userdata = userdata;
        got = registry_purge(reg, (uid_t) -1, bytes);
        purge_keep = NULL;
        purge_keep_userdata = NULL;
        return got;
}
