/* SPDX-License-Identifier: MIT */
/* The shared pin state of a region: 2 bits per page in 64-bit words, with
 * atomics only on the fast path. docs/pins.md explains the layout, the
 * state machine and why pin never misses a purge. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ashm.h"
#include "fd-util.h"
#include "futex-util.h"
#include "pinstate.h"

#define MAGIC UINT64_C(0x534e49504d485341) /* "ASHMPINS" in memory order */
#define LINE 64

/* Page states, 2 bits each, page i of a chunk at bits 2i (lo) and 2i+1
 * (hi). Zero is PINNED, so a zero-filled block is a pinned region; the hi
 * bit means "contents discarded or being discarded", so a pin reports a
 * purge exactly when it clears a hi bit. */
enum {
        PINNED = 0,   /* 00 */
        UNPINNED = 1, /* 01: may be claimed */
        PURGED = 2,   /* 10: discarded, not yet reported */
        PURGING = 3,  /* 11: claimed, being punched: only the lock holder changes it */
};

#define LO UINT64_C(0x5555555555555555)
#define HI (LO << 1)

struct header {
        /* Line 0: written by init, read by attach only. */
        uint64_t magic;
        uint32_t version;
        uint32_t header_size;
        uint64_t npages;
        uint64_t nchunks;
        uint32_t chunk_pages;
        uint32_t reserved32;
        uint64_t reserved[3];
        /* Line 1: the LRU clock, bumped by every unpin that changes a page. */
        uint64_t clock;
        uint64_t pad1[7];
        /* Line 2: bumped when a purge ends (a futex), and how many pins
         * wait on it, so a reclaimer skips the wake syscall when none do. */
        uint32_t purge_seq;
        uint32_t waiters;
        uint64_t pad2[7];
};

struct chunk {
        uint64_t state; /* PINSTATE_CHUNK_PAGES x 2 bits */
        uint64_t stamp; /* LRU clock at the latest unpin of one of its pages */
};

_Static_assert(sizeof(struct header) == 3 * LINE, "header is three cache lines");
_Static_assert(offsetof(struct header, clock) == LINE, "clock on its own line");
_Static_assert(offsetof(struct header, purge_seq) == 2 * LINE, "purge futex on its own line");
_Static_assert(sizeof(struct chunk) == 16, "chunks pack four to a line");
_Static_assert(PINSTATE_CHUNK_PAGES * 2 == 64, "a chunk's states fill one word");

struct pinstate {
        struct header *hdr;
        struct chunk *chunks;
        uint64_t npages, nchunks; /* the caller's, never re-read from the block */
        int fd;                   /* the block's memfd, borrowed, or -1 */
        int lock_fd;              /* private description holding the reclaim lock, or -1 */
        uint64_t dev, ino;        /* of fd at attach, to refuse a reused fd number */
        uint64_t *clock;          /* the LRU clock: the block's own, or one shared by all */
};

/* A purge of one run is a few µs of fallocate: spin that long before
 * sleeping, then sleep in growing steps, checking for a dead reclaimer
 * after each timeout. */
#define SPIN_LOOPS 256
#define WAIT_FIRST_NS (1000 * 1000)
#define WAIT_MAX_NS (128 * 1000 * 1000)
/* The daemon side never waits and never loops unboundedly on a word a
 * peer could keep changing: it gives up on that word (nothing purged). */
#define RECLAIM_CAS_TRIES 64

static inline uint64_t load(const uint64_t *p) {
        return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline bool cas(uint64_t *p, uint64_t *old, uint64_t new) {
        return __atomic_compare_exchange_n(p, old, new, true, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ __volatile__("yield" ::: "memory");
#endif
}

/* Per-page predicates of a state word, one bit per page at its lo bit. */
static inline uint64_t purging_of(uint64_t v) {
        return v & (v >> 1) & LO;
}

static inline uint64_t unpinned_of(uint64_t v) {
        return v & ~(v >> 1) & LO;
}

static inline uint64_t purged_of(uint64_t v) {
        return (v >> 1) & ~v & LO;
}

static uint64_t chunks_for(uint64_t npages) {
        return (npages + PINSTATE_CHUNK_PAGES - 1) / PINSTATE_CHUNK_PAGES;
}

/* Both bits of the pages of chunk c that lie in [first, end). */
static uint64_t range_mask(uint64_t c, uint64_t first, uint64_t end) {
        uint64_t base = c * PINSTATE_CHUNK_PAGES;
        uint64_t a = MAX(first, base) - base, b = MIN(end, base + PINSTATE_CHUNK_PAGES) - base;

        if (b - a == PINSTATE_CHUNK_PAGES)
                return UINT64_MAX;
        return ((UINT64_C(1) << (2 * (b - a))) - 1) << (2 * a);
}

/* The bits of chunk c that belong to real pages: a peer may set the bits
 * past the last page, and nothing may count or claim them. */
static uint64_t chunk_mask(const struct pinstate *ps, uint64_t c) {
        return range_mask(c, 0, ps->npages);
}

static int range_check(const struct pinstate *ps, uint64_t first, uint64_t npages) {
        if (!ps || npages == 0 || first >= ps->npages || npages > ps->npages - first)
                return -EINVAL;
        return 0;
}

size_t ashm__pinstate_size(uint64_t npages) {
        if (npages > PINSTATE_PAGES_MAX)
                return 0;
        return sizeof(struct header) + (size_t) chunks_for(npages) * sizeof(struct chunk);
}

static int init(void *base, size_t len, uint64_t npages, bool zeroed) {
        struct header *h = base;
        size_t size = ashm__pinstate_size(npages);

        if (!base || (uintptr_t) base % LINE || size == 0)
                return -EINVAL;
        if (len < size)
                return -ENOSPC;
        memset(base, 0, zeroed ? sizeof(*h) : size);
        h->version = PINSTATE_VERSION;
        h->header_size = sizeof(struct header);
        h->npages = npages;
        h->nchunks = chunks_for(npages);
        h->chunk_pages = PINSTATE_CHUNK_PAGES;
        /* Last, so that whoever sees the magic sees a complete block. */
        __atomic_store_n(&h->magic, MAGIC, __ATOMIC_RELEASE);
        return 0;
}

int ashm__pinstate_init(void *base, size_t len, uint64_t npages) {
        return init(base, len, npages, false);
}

int ashm__pinstate_init_zeroed(void *base, size_t len, uint64_t npages) {
        return init(base, len, npages, true);
}

/* Each field is read once into a local: a peer may change the header
 * while we look at it, and a value checked must be the value used. */
static int header_check(const void *base, size_t len, uint64_t npages) {
        const struct header *h = base;
        uint64_t hn;

        if (len < sizeof(struct header))
                return -EBADMSG;
        if (__atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) != MAGIC)
                return -EBADMSG;
        if (__atomic_load_n(&h->version, __ATOMIC_RELAXED) != PINSTATE_VERSION)
                return -EPROTONOSUPPORT;
        if (__atomic_load_n(&h->header_size, __ATOMIC_RELAXED) != sizeof(struct header) ||
            __atomic_load_n(&h->chunk_pages, __ATOMIC_RELAXED) != PINSTATE_CHUNK_PAGES)
                return -EBADMSG;
        hn = __atomic_load_n(&h->npages, __ATOMIC_RELAXED);
        if (hn > PINSTATE_PAGES_MAX || __atomic_load_n(&h->nchunks, __ATOMIC_RELAXED) != chunks_for(hn) ||
            len < ashm__pinstate_size(hn))
                return -EBADMSG;
        if (hn != npages)
                return -ESTALE;
        return 0;
}

int ashm__pinstate_attach(void *base, size_t len, uint64_t npages, int state_fd, struct pinstate **ret_ps) {
        struct pinstate *ps;
        struct stat st;
        int r;

        if (!base || (uintptr_t) base % LINE || npages > PINSTATE_PAGES_MAX || state_fd < -1 || !ret_ps)
                return -EINVAL;
        r = header_check(base, len, npages);
        if (r < 0)
                return r;
        /* Not proof that state_fd is the memfd mapped at base (that is the
         * caller's promise), but it catches a wrong or closed fd early. */
        if (state_fd >= 0) {
                if (fstat(state_fd, &st) < 0)
                        return negative_errno();
                if (!S_ISREG(st.st_mode) || (uint64_t) st.st_size < len)
                        return -EINVAL;
        }
        ps = malloc(sizeof(*ps));
        if (!ps)
                return -ENOMEM;
        *ps = (struct pinstate){
                .hdr = base,
                .chunks = (struct chunk *) ((char *) base + sizeof(struct header)),
                .npages = npages,
                .nchunks = chunks_for(npages),
                .fd = state_fd,
                .lock_fd = -1,
                .dev = state_fd >= 0 ? (uint64_t) st.st_dev : 0,
                .ino = state_fd >= 0 ? (uint64_t) st.st_ino : 0,
                .clock = &((struct header *) base)->clock,
        };
        *ret_ps = ps;
        return 0;
}

void ashm__pinstate_detach(struct pinstate *ps) {
        if (!ps)
                return;
        ashm__pinstate_reclaim_end(ps);
        free(ps);
}

/* Bump the sequence, then read the waiter count; a waiter counts itself,
 * then the kernel compares the sequence. Both sides sequentially
 * consistent, so either we see the waiter and wake it, or its futex call
 * sees the new sequence and returns at once: no lost wake-up. */
static void purge_done(struct pinstate *ps) {
        __atomic_fetch_add(&ps->hdr->purge_seq, 1, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&ps->hdr->waiters, __ATOMIC_SEQ_CST) != 0)
                (void) futex_wake(&ps->hdr->purge_seq, INT32_MAX);
}

/* PURGING -> PURGED for the whole block. Only a holder of the reclaim
 * lock calls this, and only holders change PURGING pages, so a snapshot
 * of them stays true until our fetch_and: no retry loop, whatever a peer
 * does to the other pages of the word. */
static uint64_t settle_all(struct pinstate *ps) {
        uint64_t n = 0;

        for (uint64_t c = 0; c < ps->nchunks; c++) {
                uint64_t p = purging_of(load(&ps->chunks[c].state)) & chunk_mask(ps, c);

                if (p) {
                        __atomic_fetch_and(&ps->chunks[c].state, ~p, __ATOMIC_ACQ_REL);
                        n += (uint64_t) __builtin_popcountll(p);
                }
        }
        if (n)
                purge_done(ps);
        return n;
}

/* Take the reclaim lock: an OFD write lock on byte 0 of the block's
 * memfd, through a description of our own. OFD locks belong to the open
 * file description, so a description shared with other processes (as
 * SCM_RIGHTS and fork share them) could not tell us apart; ours is closed,
 * and the lock dropped by the kernel, when we die. A lock taken on any
 * other file would let a waiter settle pages a live reclaimer is still
 * punching, so the reopened file must be the one seen at attach (an fd
 * closed and its number reused since then is refused). */
static int lock_private(const struct pinstate *ps, int *ret_fd) {
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
        char path[sizeof("/proc/self/fd/") + 12];
        _cleanup_close_ int lfd = -1;
        struct stat st;

        if (ps->fd < 0)
                return -EBADF;
        snprintf(path, sizeof(path), "/proc/self/fd/%d", ps->fd);
        lfd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (lfd < 0)
                return negative_errno();
        if (fstat(lfd, &st) < 0)
                return negative_errno();
        if ((uint64_t) st.st_dev != ps->dev || (uint64_t) st.st_ino != ps->ino)
                return -ESTALE;
        if (fcntl(lfd, F_OFD_SETLK, &fl) < 0)
                return errno == EAGAIN || errno == EACCES ? -EAGAIN : negative_errno();
        *ret_fd = TAKE_FD(lfd);
        return 0;
}

/* A pin has waited a while for a purge. If no reclaimer holds the lock,
 * the one that claimed these pages died (or ended without finishing): it
 * cannot punch any more, so declaring its pages purged is safe, and
 * conservative since it may have punched some. */
static void settle_if_orphaned(struct pinstate *ps) {
        int lfd;

        if (lock_private(ps, &lfd) < 0)
                return;
        (void) settle_all(ps);
        safe_close(lfd);
}

static void wait_purge(struct pinstate *ps, const struct chunk *c, uint64_t m, unsigned attempt) {
        struct header *h = ps->hdr;
        long ns = attempt < 8 ? (long) WAIT_FIRST_NS << attempt : WAIT_MAX_NS;
        uint32_t seq;
        int r;

        for (unsigned i = 0; i < SPIN_LOOPS; i++) {
                cpu_relax();
                if (!(purging_of(load(&c->state)) & m))
                        return;
        }
        /* Read the sequence before checking the state again: a purge that
         * ends after the check bumps it, and the futex then returns at once. */
        seq = __atomic_load_n(&h->purge_seq, __ATOMIC_SEQ_CST);
        if (!(purging_of(load(&c->state)) & m))
                return;
        __atomic_fetch_add(&h->waiters, 1, __ATOMIC_SEQ_CST);
        r = futex_wait(&h->purge_seq, seq, MIN(ns, (long) WAIT_MAX_NS));
        __atomic_fetch_sub(&h->waiters, 1, __ATOMIC_SEQ_CST);
        if (r == -ETIMEDOUT)
                settle_if_orphaned(ps);
}

/* Returns the hi bits of the pages it cleared: non-zero iff one was purged. */
static uint64_t pin_chunk(struct pinstate *ps, struct chunk *c, uint64_t m) {
        uint64_t old = load(&c->state);
        unsigned attempt = 0;

        for (;;) {
                if (!(old & m))
                        return 0; /* all pinned already: no write */
                if (purging_of(old) & m) {
                        wait_purge(ps, c, m, attempt++);
                        old = load(&c->state);
                        continue;
                }
                if (cas(&c->state, &old, old & ~m))
                        return old & HI & m;
        }
}

/* The mask of npages pages from first, if they lie in one chunk; else 0. */
static inline uint64_t one_chunk_mask(const struct pinstate *ps, uint64_t first, uint64_t npages) {
        uint64_t a = first % PINSTATE_CHUNK_PAGES;

        if (!ps || npages == 0 || first >= ps->npages || npages > ps->npages - first ||
            a + npages > PINSTATE_CHUNK_PAGES)
                return 0;
        return (npages == PINSTATE_CHUNK_PAGES ? UINT64_MAX : (UINT64_C(1) << (2 * npages)) - 1) << (2 * a);
}

int ashm__pinstate_pin(struct pinstate *ps, uint64_t first, uint64_t npages) {
        uint64_t end = first + npages, purged = 0, m = one_chunk_mask(ps, first, npages);
        int r;

        if (m)
                return pin_chunk(ps, &ps->chunks[first / PINSTATE_CHUNK_PAGES], m) ? ASHM_WAS_PURGED
                                                                                    : ASHM_NOT_PURGED;
        r = range_check(ps, first, npages);

        if (r < 0)
                return r;
        for (uint64_t c = first / PINSTATE_CHUNK_PAGES; c <= (end - 1) / PINSTATE_CHUNK_PAGES; c++)
                purged |= pin_chunk(ps, &ps->chunks[c], range_mask(c, first, end));
        return purged ? ASHM_WAS_PURGED : ASHM_NOT_PURGED;
}

/* PINNED -> UNPINNED for the pages of m; the stamp is taken from the
 * clock at the first chunk that changes and shared by the whole call. It
 * is stored before the CAS publishes the pages, so a reclaimer never sees
 * them unpinned under an older stamp. */
static void unpin_chunk(struct pinstate *ps, struct chunk *c, uint64_t m, uint64_t *stamp, bool *stamped) {
        uint64_t old = __atomic_load_n(&c->state, __ATOMIC_RELAXED);

        for (;;) {
                uint64_t add = LO & m & ~old & ~(old >> 1);

                if (!add)
                        return;
                if (!*stamped) {
                        *stamp = __atomic_add_fetch(ps->clock, 1, __ATOMIC_RELAXED);
                        *stamped = true;
                }
                __atomic_store_n(&c->stamp, *stamp, __ATOMIC_RELAXED);
                if (cas(&c->state, &old, old | add))
                        return;
        }
}

int ashm__pinstate_unpin(struct pinstate *ps, uint64_t first, uint64_t npages) {
        uint64_t end = first + npages, stamp = 0, m = one_chunk_mask(ps, first, npages);
        bool stamped = false;
        int r;

        if (m) {
                unpin_chunk(ps, &ps->chunks[first / PINSTATE_CHUNK_PAGES], m, &stamp, &stamped);
                return 0;
        }
        r = range_check(ps, first, npages);

        if (r < 0)
                return r;
        for (uint64_t c = first / PINSTATE_CHUNK_PAGES; c <= (end - 1) / PINSTATE_CHUNK_PAGES; c++)
                unpin_chunk(ps, &ps->chunks[c], range_mask(c, first, end), &stamp, &stamped);
        return 0;
}

int ashm__pinstate_status(const struct pinstate *ps, uint64_t first, uint64_t npages) {
        uint64_t end = first + npages;
        int r = range_check(ps, first, npages);

        if (r < 0)
                return r;
        for (uint64_t c = first / PINSTATE_CHUNK_PAGES; c <= (end - 1) / PINSTATE_CHUNK_PAGES; c++)
                if (load(&ps->chunks[c].state) & range_mask(c, first, end))
                        return PINSTATE_IS_UNPINNED;
        return PINSTATE_IS_PINNED;
}

int ashm__pinstate_purged(const struct pinstate *ps, uint64_t first, uint64_t npages) {
        uint64_t end = first + npages;
        int r = range_check(ps, first, npages);

        if (r < 0)
                return r;
        for (uint64_t c = first / PINSTATE_CHUNK_PAGES; c <= (end - 1) / PINSTATE_CHUNK_PAGES; c++)
                if (load(&ps->chunks[c].state) & HI & range_mask(c, first, end))
                        return 1;
        return 0;
}

int ashm__pinstate_info(const struct pinstate *ps, struct pinstate_info *ret_info) {
        struct pinstate_info info = {};

        if (!ps || !ret_info)
                return -EINVAL;
        info.npages = ps->npages;
        for (uint64_t c = 0; c < ps->nchunks; c++) {
                uint64_t v = load(&ps->chunks[c].state) & chunk_mask(ps, c);

                info.unpinned += (uint64_t) __builtin_popcountll(unpinned_of(v));
                info.purged += (uint64_t) __builtin_popcountll(purged_of(v));
                info.purging += (uint64_t) __builtin_popcountll(purging_of(v));
        }
        info.pinned = info.npages - info.unpinned - info.purged - info.purging;
        info.clock = __atomic_load_n(ps->clock, __ATOMIC_RELAXED);
        info.waiters = __atomic_load_n(&ps->hdr->waiters, __ATOMIC_RELAXED);
        *ret_info = info;
        return 0;
}

static bool chunk_older(const struct pinstate_chunk *a, const struct pinstate_chunk *b) {
        return a->stamp != b->stamp ? a->stamp < b->stamp : a->first < b->first;
}

/* Sift the newest kept chunk to the root of a max-heap of n. */
static void heap_down(struct pinstate_chunk *h, size_t n, size_t i) {
        for (;;) {
                size_t l = 2 * i + 1, r = l + 1, top = i;

                if (l < n && chunk_older(&h[top], &h[l]))
                        top = l;
                if (r < n && chunk_older(&h[top], &h[r]))
                        top = r;
                if (top == i)
                        return;
                struct pinstate_chunk t = h[i];
                h[i] = h[top];
                h[top] = t;
                i = top;
        }
}

static void heap_up(struct pinstate_chunk *h, size_t i) {
        while (i > 0 && chunk_older(&h[(i - 1) / 2], &h[i])) {
                struct pinstate_chunk t = h[i];
                h[i] = h[(i - 1) / 2];
                h[(i - 1) / 2] = t;
                i = (i - 1) / 2;
        }
}

/* Keep the max oldest chunks in a max-heap (the newest of them at the
 * root, to be replaced by anything older), then heap-sort it ascending. */
int ashm__pinstate_oldest(const struct pinstate *ps, struct pinstate_chunk *ret, size_t max) {
        size_t n = 0;

        if (!ps || (!ret && max > 0))
                return -EINVAL;
        max = MIN(max, (size_t) INT_MAX);
        if (max == 0)
                return 0;
        for (uint64_t c = 0; c < ps->nchunks; c++) {
                uint64_t v = load(&ps->chunks[c].state) & chunk_mask(ps, c);
                struct pinstate_chunk k = {
                        .first = c * PINSTATE_CHUNK_PAGES,
                        .stamp = __atomic_load_n(&ps->chunks[c].stamp, __ATOMIC_RELAXED),
                        .npages = (uint32_t) MIN(ps->npages - c * PINSTATE_CHUNK_PAGES, PINSTATE_CHUNK_PAGES),
                        .unpinned = (uint32_t) __builtin_popcountll(unpinned_of(v)),
                };

                if (k.unpinned == 0)
                        continue;
                if (n < max) {
                        ret[n] = k;
                        heap_up(ret, n++);
                } else if (chunk_older(&k, &ret[0])) {
                        ret[0] = k;
                        heap_down(ret, n, 0);
                }
        }
        for (size_t i = n; i > 1; i--) {
                struct pinstate_chunk t = ret[0];
                ret[0] = ret[i - 1];
                ret[i - 1] = t;
                heap_down(ret, i - 1, 0);
        }
        return (int) n;
}

void ashm__pinstate_use_clock(struct pinstate *ps, uint64_t *clock) {
        ps->clock = clock ? clock : &ps->hdr->clock;
}

uint64_t ashm__pinstate_clock_advance(struct pinstate *ps, uint64_t at_least) {
        uint64_t cur = __atomic_load_n(ps->clock, __ATOMIC_RELAXED);

        for (unsigned i = 0; i < RECLAIM_CAS_TRIES && cur < at_least; i++)
                if (__atomic_compare_exchange_n(ps->clock, &cur, at_least, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
                        return at_least;
        return cur;
}

int ashm__pinstate_reclaim_begin(struct pinstate *ps) {
        uint64_t n;
        int r;

        if (!ps)
                return -EINVAL;
        if (ps->lock_fd >= 0)
                return -EBUSY;
        r = lock_private(ps, &ps->lock_fd);
        if (r < 0)
                return r;
        n = settle_all(ps);
        return (int) MIN(n, (uint64_t) INT_MAX);
}

void ashm__pinstate_reclaim_end(struct pinstate *ps) {
        if (ps)
                ps->lock_fd = safe_close(ps->lock_fd);
}

int ashm__pinstate_recover(struct pinstate *ps) {
        int r = ashm__pinstate_reclaim_begin(ps);

        if (r >= 0)
                ashm__pinstate_reclaim_end(ps);
        return r;
}

/* How many runs the pages of u (lo bits) add to a list whose last run
 * ends right before this chunk (joins) or not: one per page whose
 * predecessor is not in u. */
static size_t runs_of(uint64_t u, bool joins) {
        size_t n = (size_t) __builtin_popcountll(u & ~(u << 2));

        return joins && (u & 1) ? n - 1 : n;
}

/* UNPINNED -> PURGING for the pages of m, if their runs fit in room:
 * *ret_got is then the pages claimed (lo bits). A pin racing with us on
 * the same word makes the CAS fail and we look again, a bounded number
 * of times. -ENOBUFS (nothing claimed) when the runs would not fit. */
static int claim_chunk(struct chunk *c, uint64_t m, size_t room, bool joins, uint64_t *ret_got) {
        uint64_t old = load(&c->state);

        for (unsigned i = 0; i < RECLAIM_CAS_TRIES; i++) {
                uint64_t u = unpinned_of(old) & m;

                if (runs_of(u, joins) > room)
                        return -ENOBUFS;
                if (!u || cas(&c->state, &old, old | (u << 1))) {
                        *ret_got = u;
                        return 0;
                }
        }
        *ret_got = 0;
        return 0;
}

/* Append the pages of got (lo bits, chunk starting at page base) to runs,
 * merging with the previous run where they touch. */
static size_t add_runs(struct pinstate_run *runs, size_t n, uint64_t base, uint64_t got) {
        while (got) {
                unsigned a = (unsigned) __builtin_ctzll(got) / 2;
                uint64_t gaps = ~(got >> (2 * a)) & LO;
                unsigned len = gaps ? (unsigned) __builtin_ctzll(gaps) / 2 : PINSTATE_CHUNK_PAGES;
                uint64_t page = base + a;

                if (n > 0 && runs[n - 1].first + runs[n - 1].npages == page)
                        runs[n - 1].npages += len;
                else
                        runs[n++] = (struct pinstate_run){.first = page, .npages = len};
                got &= len == PINSTATE_CHUNK_PAGES ? 0 : ~(((UINT64_C(1) << (2 * len)) - 1) << (2 * a));
        }
        return n;
}

int ashm__pinstate_claim(struct pinstate *ps, uint64_t first, uint64_t npages, struct pinstate_run *runs,
                         size_t max_runs, size_t *ret_nruns, uint64_t *ret_next) {
        uint64_t end = first + npages, next = end, total = 0;
        size_t n = 0;
        int r = range_check(ps, first, npages);

        if (r < 0)
                return r;
        if (!runs || max_runs < PINSTATE_CLAIM_RUNS_MIN || !ret_nruns || !ret_next)
                return -EINVAL;
        if (ps->lock_fd < 0)
                return -ENOLCK;
        for (uint64_t c = first / PINSTATE_CHUNK_PAGES; c <= (end - 1) / PINSTATE_CHUNK_PAGES; c++) {
                uint64_t base = c * PINSTATE_CHUNK_PAGES, got;
                bool joins = n > 0 && runs[n - 1].first + runs[n - 1].npages == base;

                /* The first chunk always fits (max_runs >= a chunk's worst
                 * case); stop before the page count could overflow int. */
                if (total > (uint64_t) INT_MAX - PINSTATE_CHUNK_PAGES ||
                    claim_chunk(&ps->chunks[c], range_mask(c, first, end), max_runs - n, joins, &got) < 0) {
                        next = base;
                        break;
                }
                n = add_runs(runs, n, base, got);
                total += (uint64_t) __builtin_popcountll(got);
        }
        *ret_nruns = n;
        *ret_next = next;
        return (int) total;
}

static int runs_check(const struct pinstate *ps, const struct pinstate_run *runs, size_t nruns) {
        if (!ps || (!runs && nruns > 0))
                return -EINVAL;
        if (ps->lock_fd < 0)
                return -ENOLCK;
        for (size_t i = 0; i < nruns; i++)
                if (range_check(ps, runs[i].first, runs[i].npages) < 0)
                        return -EINVAL;
        return 0;
}

/* Every PURGING page of the runs becomes PURGED (clear its lo bit) or,
 * with purged false, UNPINNED again (clear its hi bit). The lock holder
 * alone changes PURGING pages, so the snapshot stays true: one fetch_and
 * per chunk, no loop. */
static void settle_runs(struct pinstate *ps, const struct pinstate_run *runs, size_t nruns, bool purged) {
        for (size_t i = 0; i < nruns; i++) {
                uint64_t first = runs[i].first, end = first + runs[i].npages;

                for (uint64_t c = first / PINSTATE_CHUNK_PAGES; c <= (end - 1) / PINSTATE_CHUNK_PAGES; c++) {
                        uint64_t p = purging_of(load(&ps->chunks[c].state)) & range_mask(c, first, end);

                        if (p)
                                __atomic_fetch_and(&ps->chunks[c].state, ~(purged ? p : p << 1), __ATOMIC_ACQ_REL);
                }
        }
        purge_done(ps);
}

int ashm__pinstate_finish(struct pinstate *ps, const struct pinstate_run *runs, size_t nruns) {
        int r = runs_check(ps, runs, nruns);

        if (r < 0)
                return r;
        settle_runs(ps, runs, nruns, true);
        return 0;
}

int ashm__pinstate_abort(struct pinstate *ps, const struct pinstate_run *runs, size_t nruns) {
        int r = runs_check(ps, runs, nruns);

        if (r < 0)
                return r;
        settle_runs(ps, runs, nruns, false);
        return 0;
}
