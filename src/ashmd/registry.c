/* SPDX-License-Identifier: MIT */
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

/* What a let-go region had purged, so that a process that still holds
 * it (without ever having registered) learns of it on its first pin.
 * Bounded per region owner (the uid the memfd belongs to): at most
 * TOMB_RUNS runs each (more collapse into one run from the first purged
 * page to the last), and TOMB_BYTES per uid, oldest forgotten first.
 * A forgotten tomb is not forgotten silently: its owner's regions born
 * until then count as purged when they come back (tombs_lost_ns), so
 * one uid's churn can neither grow the daemon nor make another uid's
 * pins lie. */
#define TOMB_RUNS 64
#define TOMB_BYTES (UINT64_C(256) << 10)

struct tomb {
        uint64_t dev, ino;
        uint64_t born_ns; /* the region's birth, for tombs_lost_ns */
        uint32_t uid;     /* the region's owner, whose budget it uses */
        size_t n_runs;
        struct pinstate_run *runs;
        struct tomb *next;
};

static uint64_t tomb_cost(size_t n_runs) {
        return sizeof(struct tomb) + n_runs * sizeof(struct pinstate_run);
}

/* What the daemon spends on a region for its registrant's quota: the
 * record and the pin-state block it maps and scans. */
static uint64_t region_cost(const struct region *r) {
        return sizeof(*r) + r->map_len;
}

static bool same_inode(int a, int b) {
        struct stat sa, sb;

        return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static size_t purged_runs(struct region *r, struct pinstate_run **ret);

/* The registry's clock, for every view the daemon makes. */
static uint64_t *shared_clock;

int registry_init(struct registry *reg) {
        struct timespec ts;
        void *p;
        int fd = memfd_new("ashmd-clock", false), err;

        if (fd < 0)
                return fd;
        if (ftruncate(fd, (off_t) registry_page()) < 0 || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0) {
                err = negative_errno();
                safe_close(fd);
                return err;
        }
        p = mmap(NULL, registry_page(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
                err = negative_errno();
                safe_close(fd);
                return err;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        *(uint64_t *) p = (uint64_t) ts.tv_sec * 1000000000 + (uint64_t) ts.tv_nsec;
        reg->clock_fd = fd;
        reg->clock = p;
        shared_clock = p;
        return 0;
}

struct region *registry_find(struct registry *reg, uint64_t dev, uint64_t ino) {
        for (struct region *r = reg->regions; r; r = r->next)
                if (r->dev == dev && r->ino == ino)
                        return r;
        return NULL;
}

/* A memfd of a client, opened for reading or writing. An O_PATH fd opens
 * nothing (the kernel checked no permission to make it): taking it as a
 * region would let the daemon open for its sender what the sender could
 * not. Errors: -EBADF (an O_PATH fd too), -EMEDIUMTYPE. */
int memfd_client_stat(int fd, struct stat *ret_st) {
        int flags = fcntl(fd, F_GETFL);

        if (flags < 0)
                return negative_errno();
        if (flags & O_PATH)
                return -EBADF;
        return memfd_fstat(fd, ret_st);
}

/* Our own fd of the region, for fallocate: a dup of the client's. Never
 * a reopen for writing through /proc: that would give a read-only
 * holder's region a writer it never had. */
static int region_take_fd(struct region *r, int fd) {
        int dup = fcntl(fd, F_DUPFD_CLOEXEC, 3);

        if (dup < 0)
                return negative_errno();
        safe_close(r->fd);
        r->fd = dup;
        r->punchable = fd_can_write(fd) > 0;
        return 0;
}

static int block_map(struct region *r) {
        void *map = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, r->state_fd, 0);
        int err;

        if (map == MAP_FAILED)
                return negative_errno();
        err = ashm__pinstate_attach(map, r->map_len, r->npages, r->state_fd, &r->ps);
        if (err < 0) {
                munmap(map, r->map_len);
                return err;
        }
        ashm__pinstate_use_clock(r->ps, shared_clock);
        r->map = map;
        return 0;
}

static void block_unmap(struct region *r) {
        ashm__pinstate_detach(r->ps);
        r->ps = NULL;
        if (r->map)
                munmap(r->map, r->map_len);
        r->map = NULL;
}

/* A fresh block, sealed so no holder can resize it under the others. */
static int block_new(struct region *r) {
        int fd = memfd_new("ashm-pinstate", false), err;
        void *map;

        if (fd < 0)
                return fd;
        /* 0600: the read-only open a read-only holder gets cannot be
         * reopened for writing through /proc by another uid. */
        if (ftruncate(fd, (off_t) r->map_len) < 0 || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0 ||
            fchmod(fd, 0600) < 0) {
                err = negative_errno();
                safe_close(fd);
                return err;
        }
        map = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED) {
                err = negative_errno();
                safe_close(fd);
                return err;
        }
        /* A new memfd reads as zeros, which is "every page pinned": only
         * the header is written, so a big region costs no memset. */
        err = ashm__pinstate_init_zeroed(map, r->map_len, r->npages);
        munmap(map, r->map_len);
        if (err < 0) {
                safe_close(fd);
                return err;
        }
        r->state_fd = fd;
        return block_map(r);
}

/* Take over a block a client used with a daemon before us. Only a holder
 * that can write the region may offer one (registry_register() checks):
 * whatever the block says, such a holder could destroy the contents
 * anyway, so the state the daemon then acts on is in memory only those
 * who may write the region can write. Every holder that shared the old
 * block goes on sharing it with the new daemon, which keeps their pins
 * consistent (a copy would split a quiet holder from the others). It
 * must be a memfd of the right size that we can seal against resizing
 * (else a client could truncate it under us: SIGBUS), and a valid block
 * for this region's page count; it is made mode 0600 like ours, so no
 * read-only holder can reopen it for writing. A reclaimer that died
 * mid-purge left PURGING pages: they count as purged. */
static int block_adopt(struct region *r, int adopt_fd) {
        struct stat st;
        int seals, err;

        if (memfd_client_stat(adopt_fd, &st) < 0 || (uint64_t) st.st_size != r->map_len ||
            fd_can_write(adopt_fd) <= 0 || fchmod(adopt_fd, 0600) < 0)
                return -EBADMSG;
        seals = fcntl(adopt_fd, F_GET_SEALS);
        if (seals < 0 || (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)))
                return -EBADMSG;
        if ((seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW) &&
            fcntl(adopt_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0)
                return -EBADMSG;
        r->state_fd = fcntl(adopt_fd, F_DUPFD_CLOEXEC, 3);
        if (r->state_fd < 0)
                return negative_errno();
        err = block_map(r);
        if (err < 0) {
                r->state_fd = safe_close(r->state_fd);
                return err;
        }
        err = ashm__pinstate_recover(r->ps);
        if (err > 0)
                log_ratelimited(LOG_LEVEL_INFO, "region %s: %d pages left mid-purge by the last daemon count as purged",
                                r->name, err);
        return 0;
}

/* Mark the pages of runs PURGED, without punching: they are holes
 * already, or their history is unknown and must be reported as lost. A
 * page a holder has pinned meanwhile is taken too (conservative: its
 * next pin says WAS_PURGED, and nothing of it is discarded). */
static void mark_purged(struct region *r, const struct pinstate_run *marks, size_t n_marks) {
        struct pinstate_run runs[RUNS_PER_CLAIM];

        if (ashm__pinstate_reclaim_begin(r->ps) < 0)
                return;
        for (size_t i = 0; i < n_marks; i++) {
                uint64_t first = marks[i].first, n = marks[i].npages;

                if (first >= r->npages)
                        continue;
                n = MIN(n, r->npages - first);
                ashm__pinstate_unpin(r->ps, first, n);
                for (uint64_t next = first, end = first + n; next < end;) {
                        size_t nruns = 0;

                        if (ashm__pinstate_claim(r->ps, next, end - next, runs, RUNS_PER_CLAIM, &nruns, &next) < 0)
                                break;
                        ashm__pinstate_finish(r->ps, runs, nruns);
                }
        }
        ashm__pinstate_reclaim_end(r->ps);
}

static void tomb_free(struct registry *reg, struct tomb **tp) {
        struct tomb *t = *tp;
        struct quota_user *u = quota_user(t->uid);

        if (u)
                u->tomb_bytes -= MIN(u->tomb_bytes, tomb_cost(t->n_runs));
        *tp = t->next;
        reg->n_tombs--;
        free(t->runs);
        free(t);
}

/* Pages a let-go region had purged come back purged. */
static bool tomb_apply(struct registry *reg, struct region *r) {
        struct tomb **tp = &reg->tombs;

        while (*tp && ((*tp)->dev != r->dev || (*tp)->ino != r->ino))
                tp = &(*tp)->next;
        if (!*tp)
                return false;
        mark_purged(r, (*tp)->runs, (*tp)->n_runs);
        tomb_free(reg, tp);
        return true;
}

/* The memfd's birth (wall clock, ns), 0 when the kernel does not say. */
static uint64_t born_ns(int fd) {
        struct statx stx;

        if (statx(fd, "", AT_EMPTY_PATH, STATX_BTIME, &stx) < 0 || !(stx.stx_mask & STATX_BTIME))
                return 0;
        return (uint64_t) stx.stx_btime.tv_sec * 1000000000 + stx.stx_btime.tv_nsec;
}

/* Born before this daemon took over from one that did not exit cleanly?
 * Then its pages may have been purged under the old daemon, and unless a
 * holder brings the old block, that history is lost: every page counts
 * as purged (conservative, as a restart allows; never the other way).
 * The same holds for a region whose owner had a tomb forgotten. */
static bool region_history_lost(const struct registry *reg, const struct region *r, uint64_t born) {
        struct quota_user *u;

        if (reg->restarted_ns != 0 && (born == 0 || born < reg->restarted_ns))
                return true;
        u = quota_user(r->uid);
        return u && u->tombs_lost_ns != 0 && (born == 0 || born <= u->tombs_lost_ns);
}

static int region_new(struct registry *reg, int fd, const struct stat *st, int adopt_fd, uid_t charge_uid,
                      struct region **ret) {
        struct region *r = calloc(1, sizeof(*r));
        uint64_t born;
        int err;

        if (!r)
                return -ENOMEM;
        r->dev = (uint64_t) st->st_dev;
        r->ino = (uint64_t) st->st_ino;
        r->uid = st->st_uid;
        r->state_fd = -1;
        r->npages = page_align_u64((uint64_t) st->st_size, registry_page()) / registry_page();
        r->map_len = ashm__pinstate_size(r->npages);
        if (r->map_len == 0) {
                free(r);
                return -EFBIG;
        }
        /* Charged before anything is made: a sparse memfd of 2^48 bytes
         * must not cost the daemon a 32 GiB block. */
        err = quota_charge(charge_uid, QUOTA_MEMORY, region_cost(r));
        if (err < 0) {
                free(r);
                return err;
        }
        r->charge_uid = charge_uid;
        if (memfd_get_name(fd, r->name, sizeof(r->name)) < 0)
                strcpy(r->name, "?");
        r->fd = -1;
        err = region_take_fd(r, fd);
        if (err < 0) {
                quota_uncharge(charge_uid, QUOTA_MEMORY, region_cost(r));
                free(r);
                return err;
        }
        born = born_ns(fd);
        err = adopt_fd >= 0 ? block_adopt(r, adopt_fd) : -ENOENT;
        if (err < 0) {
                err = block_new(r);
                if (err >= 0 && !tomb_apply(reg, r) && region_history_lost(reg, r, born)) {
                        struct pinstate_run all = { 0, r->npages };

                        log_ratelimited(LOG_LEVEL_INFO,
                                        "region %s predates this daemon, whose predecessor died: its pages count "
                                        "as purged",
                                        r->name);
                        mark_purged(r, &all, r->npages ? 1 : 0);
                }
        }
        if (err < 0) {
                quota_uncharge(charge_uid, QUOTA_MEMORY, region_cost(r));
                safe_close(r->fd);
                free(r);
                return err;
        }
        r->born_ns = born;
        r->next = reg->regions;
        reg->regions = r;
        reg->n_regions++;
        *ret = r;
        return 0;
}

/* A holder offers the block it used with an earlier daemon, but the
 * region has one already (another holder came first). What the old block
 * knows was purged must not be lost: mark it purged in ours. */
static void block_merge(struct region *r, int adopt_fd) {
        struct pinstate *old = NULL;
        struct pinstate_run *runs = NULL;
        struct stat st;
        void *map;
        size_t n = 0;

        if (fstat(adopt_fd, &st) < 0 || (uint64_t) st.st_size != r->map_len || same_inode(adopt_fd, r->state_fd))
                return;
        map = mmap(NULL, r->map_len, PROT_READ, MAP_SHARED, adopt_fd, 0);
        if (map == MAP_FAILED)
                return;
        if (ashm__pinstate_attach(map, r->map_len, r->npages, -1, &old) >= 0) {
                struct region view = { .ps = old, .npages = r->npages };

                n = purged_runs(&view, &runs);
                ashm__pinstate_detach(old);
        }
        munmap(map, r->map_len);
        if (n > 0) {
                log_ratelimited(LOG_LEVEL_INFO, "region %s: a holder's earlier block tells of %zu purged runs", r->name,
                                n);
                mark_purged(r, runs, n);
        }
        free(runs);
}

int registry_register(struct registry *reg, int fd, int adopt_fd, uid_t charge_uid, struct region **ret) {
        struct region *r;
        struct stat st;
        int err;

        err = memfd_client_stat(fd, &st);
        if (err < 0)
                return err;
        /* Pin state is for those who may write the region: a read-only
         * holder neither changes it nor hands the daemon a block. */
        if (adopt_fd >= 0 && fd_can_write(fd) <= 0)
                return -EPERM;
        r = registry_find(reg, (uint64_t) st.st_dev, (uint64_t) st.st_ino);
        if (!r) {
                err = region_new(reg, fd, &st, adopt_fd, charge_uid, &r);
                if (err < 0)
                        return err;
                log_debug("region %s (inode %llu, %llu pages, uid %u) registered", r->name,
                          (unsigned long long) r->ino, (unsigned long long) r->npages, r->uid);
        } else if (!r->map) {
                err = block_map(r); /* it was being let go */
                if (err < 0)
                        return err;
        }
        if (adopt_fd >= 0 && r->ps)
                block_merge(r, adopt_fd);
        /* A writer joins a region only readers had registered: now its
         * unpinned pages can be purged. */
        if (!r->punchable && fd_can_write(fd) > 0)
                (void) region_take_fd(r, fd);
        r->holders++;
        *ret = r;
        return 0;
}

/* ---- letting go --------------------------------------------------------- */

/* The PURGED runs of a block, for a tomb. */
static size_t purged_runs(struct region *r, struct pinstate_run **ret) {
        struct pinstate_run *runs = NULL;
        size_t n = 0, cap = 0;

        for (uint64_t p = 0; p < r->npages;) {
                uint64_t q = p;

                while (q < r->npages && ashm__pinstate_purged(r->ps, q, 1) > 0)
                        q++;
                if (q > p) {
                        if (n == cap) {
                                struct pinstate_run *m = realloc(runs, (cap = cap ? cap * 2 : 16) * sizeof(*m));

                                if (!m)
                                        break;
                                runs = m;
                        }
                        runs[n++] = (struct pinstate_run) { p, q - p };
                }
                p = q + 1;
        }
        *ret = runs;
        return n;
}

/* Forget the owner's oldest tomb; its regions born until then count as
 * purged from now on (region_history_lost). False if it has none. */
static bool tomb_forget_oldest(struct registry *reg, struct quota_user *u) {
        struct tomb **oldest = NULL;
        struct timespec ts;
        uint64_t born;

        for (struct tomb **tp = &reg->tombs; *tp; tp = &(*tp)->next)
                if ((*tp)->uid == u->uid)
                        oldest = tp;
        if (!oldest)
                return false;
        born = (*oldest)->born_ns;
        if (born == 0) {
                clock_gettime(CLOCK_REALTIME, &ts);
                born = (uint64_t) ts.tv_sec * 1000000000 + (uint64_t) ts.tv_nsec;
        }
        u->tombs_lost_ns = MAX(u->tombs_lost_ns, born);
        tomb_free(reg, oldest);
        return true;
}

static void tomb_add(struct registry *reg, struct region *r, struct pinstate_run *runs, size_t n) {
        struct quota_user *u = quota_user(r->uid);
        struct tomb *t = calloc(1, sizeof(*t));

        if (!t || !u) {
                free(t);
                free(runs);
                return;
        }
        /* Many runs collapse into one, conservatively: pages between them
         * that were not purged will be told they were. */
        if (n > TOMB_RUNS) {
                runs[0].npages = runs[n - 1].first + runs[n - 1].npages - runs[0].first;
                n = 1;
        }
        while (u->tomb_bytes + tomb_cost(n) > TOMB_BYTES && tomb_forget_oldest(reg, u))
                ;
        *t = (struct tomb) { r->dev, r->ino, r->born_ns, r->uid, n, runs, reg->tombs };
        reg->tombs = t;
        reg->n_tombs++;
        u->tomb_bytes += tomb_cost(n);
}

static void region_unlink(struct registry *reg, struct region *r) {
        for (struct region **rp = &reg->regions; *rp; rp = &(*rp)->next)
                if (*rp == r) {
                        *rp = r->next;
                        reg->n_regions--;
                        return;
                }
}

static void region_free(struct region *r) {
        quota_uncharge(r->charge_uid, QUOTA_MEMORY, region_cost(r));
        block_unmap(r);
        safe_close(r->state_fd);
        safe_close(r->fd);
        free(r);
}

/* No holder is left. Unpinned pages are nobody's any more: purge them.
 * Then the block may be let go if no process maps it: the kernel tells,
 * since F_SEAL_WRITE fails with EBUSY while any writable shared mapping
 * of it exists, ours included, and a forked child's included. Sealed, the
 * block is dead for good (nobody can map it writable again); what it
 * says was purged goes to a tomb, read through a read-only mapping. */
static bool try_let_go(struct registry *reg, struct region *r) {
        struct pinstate_run *runs = NULL;
        size_t n = 0;
        void *map;

        if (r->map && r->punchable) {
                struct registry one = { .regions = r, .n_regions = 1 };
                struct region *next = r->next;

                r->next = NULL;
                registry_purge(&one, (uid_t) -1, UINT64_MAX);
                r->next = next;
                reg->purges += one.purges;
                reg->purged_total += one.purged_total;
        }
        block_unmap(r);
        if (fcntl(r->state_fd, F_ADD_SEALS, F_SEAL_WRITE) < 0)
                return false; /* still mapped somewhere; registry_maintain() tries again */
        map = mmap(NULL, r->map_len, PROT_READ, MAP_SHARED, r->state_fd, 0);
        if (map != MAP_FAILED) {
                if (ashm__pinstate_attach(map, r->map_len, r->npages, -1, &r->ps) >= 0) {
                        n = purged_runs(r, &runs);
                        ashm__pinstate_detach(r->ps);
                        r->ps = NULL;
                }
                munmap(map, r->map_len);
        }
        if (n > 0)
                tomb_add(reg, r, runs, n);
        else
                free(runs);
        log_debug("region %s (inode %llu) let go", r->name, (unsigned long long) r->ino);
        return true;
}

void registry_unhold(struct registry *reg, struct region *r) {
        if (r->holders > 0)
                r->holders--;
        if (r->holders > 0)
                return;
        if (try_let_go(reg, r)) {
                region_unlink(reg, r);
                region_free(r);
        }
        /* Else it stays listed, unmapped: registry_maintain() tries again. */
}

void registry_maintain(struct registry *reg) {
        struct region **rp = &reg->regions;

        while (*rp) {
                struct region *r = *rp;

                if (r->holders == 0 && !r->map && try_let_go(reg, r)) {
                        *rp = r->next;
                        reg->n_regions--;
                        region_free(r);
                        continue;
                }
                rp = &r->next;
        }
}

void registry_totals(struct registry *reg, uid_t uid, struct registry_totals *ret) {
        *ret = (struct registry_totals) { 0 };
        for (struct region *r = reg->regions; r; r = r->next) {
                struct pinstate_info info;

                if (!r->ps || (uid != (uid_t) -1 && r->uid != uid) || ashm__pinstate_info(r->ps, &info) < 0)
                        continue;
                ret->pinned += info.pinned;
                ret->unpinned += info.unpinned;
                ret->purging += info.purging;
                ret->purged += info.purged;
        }
}

void registry_free(struct registry *reg) {
        while (reg->regions) {
                struct region *r = reg->regions;

                reg->regions = r->next;
                region_free(r);
        }
        while (reg->tombs)
                tomb_free(reg, &reg->tombs);
        reg->n_regions = reg->n_tombs = 0;
        if (reg->clock)
                munmap(reg->clock, registry_page());
        reg->clock = NULL;
        reg->clock_fd = safe_close(reg->clock_fd);
}
