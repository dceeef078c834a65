/* SPDX-License-Identifier: MIT */
/* The shared pin state (src/libashm/pinstate.c): every transition and
 * argument check, Ashmem's semantics in one process, LRU order, corrupt
 * and hostile blocks, dead reclaimers, pinners and waiters, and a
 * randomized multi-process stress test against a reclaimer that really
 * punches holes. Replay a failure with ASHM_TEST_SEED=<seed from the log>. */
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

/* Compiled in rather than linked, so that the test can reach the block's
 * layout: read states page by page, corrupt the header, set hostile bits. */
#include "../src/libashm/pinstate.c"

#include "tests.h"

ASHM_SUITE(pinstate);

#define CHUNK PINSTATE_CHUNK_PAGES

/* A state block on a memfd, mapped, formatted and attached. */
struct block {
        int fd;
        void *base;
        size_t len;
        uint64_t npages;
        struct pinstate *ps;
};

static struct block block_new(uint64_t npages) {
        struct block b = {.npages = npages, .len = ashm__pinstate_size(npages)};

        cr_assert(b.len > 0);
        b.fd = memfd_create("pinstate", MFD_CLOEXEC);
        cr_assert(b.fd >= 0);
        cr_assert(ftruncate(b.fd, (off_t) b.len) == 0);
        b.base = mmap(NULL, b.len, PROT_READ | PROT_WRITE, MAP_SHARED, b.fd, 0);
        cr_assert(b.base != MAP_FAILED);
        assert_ok(ashm__pinstate_init(b.base, b.len, npages));
        assert_ok(ashm__pinstate_attach(b.base, b.len, npages, b.fd, &b.ps));
        return b;
}

static void block_free(struct block *b) {
        ashm__pinstate_detach(b->ps);
        munmap(b->base, b->len);
        safe_close(b->fd);
}

/* A second view of the same block, as another holder would have. */
static struct pinstate *view_new(struct block *b) {
        struct pinstate *ps = NULL;

        assert_ok(ashm__pinstate_attach(b->base, b->len, b->npages, b->fd, &ps));
        return ps;
}

static struct pinstate_info info_of(const struct pinstate *ps) {
        struct pinstate_info i;

        assert_ok(ashm__pinstate_info(ps, &i));
        cr_assert_eq(i.pinned + i.unpinned + i.purging + i.purged, i.npages);
        return i;
}

/* The 2-bit state of one page, straight from the block. */
static unsigned page_state(const struct block *b, uint64_t p) {
        const struct chunk *c = &b->ps->chunks[p / CHUNK];

        return (unsigned) (load(&c->state) >> (2 * (p % CHUNK))) & 3;
}

/* ashm__pinstate_claim(), checking that the pages it returns are those
 * of the runs; returns the number of runs, or -errno. */
static int claim(struct pinstate *ps, uint64_t first, uint64_t n, struct pinstate_run *runs, size_t max,
                 uint64_t *ret_next) {
        size_t nr = 99;
        uint64_t total = 0;
        int k = ashm__pinstate_claim(ps, first, n, runs, max, &nr, ret_next);

        if (k < 0) {
                cr_assert_eq(nr, 99, "ret_nruns untouched on failure");
                return k;
        }
        cr_assert(nr <= max);
        for (size_t i = 0; i < nr; i++) {
                cr_assert(runs[i].npages > 0 && runs[i].first >= first && runs[i].first + runs[i].npages <= first + n);
                if (i > 0)
                        cr_assert(runs[i].first > runs[i - 1].first + runs[i - 1].npages, "runs are maximal");
                total += runs[i].npages;
        }
        cr_assert_eq(total, (uint64_t) k);
        return (int) nr;
}

/* Claim [first, first+n) under a fresh reclaim lock; returns the runs. */
static int claim_all(struct pinstate *ps, uint64_t first, uint64_t n, struct pinstate_run *runs, size_t max) {
        uint64_t next;
        int nr;

        assert_ok(ashm__pinstate_reclaim_begin(ps));
        nr = claim(ps, first, n, runs, max, &next);
        assert_ok(nr);
        cr_assert_eq(next, first + n);
        return nr;
}

static void purge_range(struct pinstate *ps, uint64_t first, uint64_t n) {
        struct pinstate_run runs[64];
        int nr = claim_all(ps, first, n, runs, ELEMENTSOF(runs));

        assert_ok(ashm__pinstate_finish(ps, runs, (size_t) nr));
        ashm__pinstate_reclaim_end(ps);
}

/* fork() for the test's helpers: a child that outlives a failed test
 * (one parked in pause(), say) is killed with it. */
static pid_t fork_child(void) {
        pid_t parent = getpid(), pid = fork();

        cr_assert(pid >= 0);
        if (pid == 0 && (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent))
                _exit(126);
        return pid;
}

static uint64_t now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* Wait (yielding, never sleeping a fixed time) until a pin is blocked on
 * the purge futex; fail after 10 s. */
static void wait_for_waiter(const struct pinstate *ps, uint32_t n) {
        uint64_t deadline = now_ns() + 10ull * 1000000000u;

        while (info_of(ps).waiters < n) {
                cr_assert(now_ns() < deadline, "no pin started waiting");
                sched_yield();
        }
}

/* ------------------------------------------------------------------ */
/* Layout, init and attach                                             */

ASHM_TEST(pinstate, size_and_layout) {
        cr_assert_eq(ashm__pinstate_size(0), 192);
        cr_assert_eq(ashm__pinstate_size(1), 192 + 16);
        cr_assert_eq(ashm__pinstate_size(32), 192 + 16);
        cr_assert_eq(ashm__pinstate_size(33), 192 + 32);
        cr_assert_eq(ashm__pinstate_size(PINSTATE_PAGES_MAX), 192 + (PINSTATE_PAGES_MAX / 32) * 16);
        cr_assert_eq(ashm__pinstate_size(PINSTATE_PAGES_MAX + 1), 0);
        cr_assert_eq(ashm__pinstate_size(UINT64_MAX), 0);
}

ASHM_TEST(pinstate, init_errors) {
        _Alignas(64) static char buf[4096];

        assert_fail(ashm__pinstate_init(NULL, sizeof(buf), 1), EINVAL);
        assert_fail(ashm__pinstate_init(buf + 8, sizeof(buf) - 8, 1), EINVAL);
        assert_fail(ashm__pinstate_init(buf, sizeof(buf), PINSTATE_PAGES_MAX + 1), EINVAL);
        assert_fail(ashm__pinstate_init(buf, 191, 0), ENOSPC);
        assert_fail(ashm__pinstate_init(buf, 192 + 16, 33), ENOSPC);
        assert_ok(ashm__pinstate_init(buf, 192, 0));
        assert_ok(ashm__pinstate_init(buf, sizeof(buf), 100));
}

ASHM_TEST(pinstate, init_formats_reused_memory) {
        _Alignas(64) static char buf[1024];
        struct pinstate *ps = NULL;

        memset(buf, 0xff, sizeof(buf));
        assert_ok(ashm__pinstate_init(buf, sizeof(buf), 64));
        assert_ok(ashm__pinstate_attach(buf, sizeof(buf), 64, -1, &ps));
        cr_assert_eq(ashm__pinstate_status(ps, 0, 64), PINSTATE_IS_PINNED);
        cr_assert_eq(info_of(ps).pinned, 64);
        ashm__pinstate_detach(ps);
}

/* On memory known to be zero (a new memfd), only the header is written:
 * the block is the same as a fully formatted one. */
ASHM_TEST(pinstate, init_zeroed_matches_init) {
        _Alignas(64) static char zeroed[1024], full[1024];
        struct pinstate *ps = NULL;

        memset(full, 0xff, sizeof(full));
        assert_ok(ashm__pinstate_init(full, sizeof(full), 64));
        assert_ok(ashm__pinstate_init_zeroed(zeroed, sizeof(zeroed), 64));
        cr_assert(memcmp(zeroed, full, ashm__pinstate_size(64)) == 0);
        assert_fail(ashm__pinstate_init_zeroed(zeroed, 191, 0), ENOSPC);
        assert_ok(ashm__pinstate_attach(zeroed, sizeof(zeroed), 64, -1, &ps));
        cr_assert_eq(ashm__pinstate_status(ps, 0, 64), PINSTATE_IS_PINNED);
        ashm__pinstate_detach(ps);
}

ASHM_TEST(pinstate, attach_errors) {
        struct block b = block_new(100);
        struct pinstate *ps = NULL;

        assert_fail(ashm__pinstate_attach(NULL, b.len, 100, -1, &ps), EINVAL);
        assert_fail(ashm__pinstate_attach((char *) b.base + 8, b.len - 8, 100, -1, &ps), EINVAL);
        assert_fail(ashm__pinstate_attach(b.base, b.len, 100, -2, &ps), EINVAL);
        assert_fail(ashm__pinstate_attach(b.base, b.len, 100, 1000, &ps), EBADF);
        {
                _cleanup_close_ int small = memfd_create("small", MFD_CLOEXEC);

                cr_assert(small >= 0 && ftruncate(small, 64) == 0);
                assert_fail(ashm__pinstate_attach(b.base, b.len, 100, small, &ps), EINVAL);
        }
        assert_fail(ashm__pinstate_attach(b.base, b.len, 100, -1, NULL), EINVAL);
        assert_fail(ashm__pinstate_attach(b.base, b.len, PINSTATE_PAGES_MAX + 1, -1, &ps), EINVAL);
        /* Too short for a header, or for the pages it says it has. */
        assert_fail(ashm__pinstate_attach(b.base, 100, 100, -1, &ps), EBADMSG);
        assert_fail(ashm__pinstate_attach(b.base, b.len - 1, 100, -1, &ps), EBADMSG);
        /* A valid block for another region size. */
        assert_fail(ashm__pinstate_attach(b.base, b.len, 99, -1, &ps), ESTALE);
        assert_fail(ashm__pinstate_attach(b.base, b.len, 101, -1, &ps), ESTALE);
        cr_assert_null(ps, "ret untouched on failure");
        block_free(&b);
}

/* Corrupt one header field at a time; every one is refused, and the
 * untouched block attaches again once the field is restored. */
ASHM_TEST(pinstate, attach_corrupt_header) {
        struct block b = block_new(100);
        struct header *h = b.base, saved = *h;
        struct pinstate *ps = NULL;

        h->magic ^= 1;
        assert_fail(ashm__pinstate_attach(b.base, b.len, 100, -1, &ps), EBADMSG);
        *h = saved;
        h->version = PINSTATE_VERSION + 1;
        assert_fail(ashm__pinstate_attach(b.base, b.len, 100, -1, &ps), EPROTONOSUPPORT);
        *h = saved;
        h->header_size = 128;
        assert_fail(ashm__pinstate_attach(b.base, b.len, 100, -1, &ps), EBADMSG);
        *h = saved;
        h->chunk_pages = 16;
        assert_fail(ashm__pinstate_attach(b.base, b.len, 100, -1, &ps), EBADMSG);
        *h = saved;
        h->nchunks = 3;
        assert_fail(ashm__pinstate_attach(b.base, b.len, 100, -1, &ps), EBADMSG);
        *h = saved;
        /* A hostile page count far larger than the block, consistent
         * otherwise: refused whatever the caller expects. */
        h->npages = 1u << 30;
        h->nchunks = (1u << 30) / 32;
        assert_fail(ashm__pinstate_attach(b.base, b.len, 1u << 30, -1, &ps), EBADMSG);
        assert_fail(ashm__pinstate_attach(b.base, b.len, 100, -1, &ps), EBADMSG);
        h->npages = UINT64_MAX;
        h->nchunks = UINT64_MAX / 32 + 1;
        assert_fail(ashm__pinstate_attach(b.base, b.len, 100, -1, &ps), EBADMSG);
        cr_assert_null(ps);
        *h = saved;
        assert_ok(ashm__pinstate_attach(b.base, b.len, 100, -1, &ps));
        ashm__pinstate_detach(ps);
        block_free(&b);
}

/* The view keeps what it checked: a header rewritten after attach
 * changes nothing, and nothing reaches past the block. */
ASHM_TEST(pinstate, header_rewritten_after_attach) {
        struct block b = block_new(64);
        struct header *h = b.base;
        struct pinstate_chunk ch[4];

        h->npages = UINT64_MAX;
        h->nchunks = UINT64_MAX;
        h->magic = 0;
        assert_ok(ashm__pinstate_unpin(b.ps, 0, 64));
        assert_fail(ashm__pinstate_unpin(b.ps, 0, 65), EINVAL);
        cr_assert_eq(info_of(b.ps).unpinned, 64);
        cr_assert_eq(ashm__pinstate_oldest(b.ps, ch, 4), 2);
        cr_assert_eq(ashm__pinstate_pin(b.ps, 0, 64), ASHM_NOT_PURGED);
        block_free(&b);
}

ASHM_TEST(pinstate, detach_null) {
        ashm__pinstate_detach(NULL);
}

/* ------------------------------------------------------------------ */
/* Arguments                                                           */

ASHM_TEST(pinstate, range_errors) {
        struct block b = block_new(100);
        struct pinstate_run runs[16] = {{0, 1}};
        uint64_t next = 7;
        const struct {
                uint64_t first, n;
        } bad[] = {
                {0, 0},          {99, 0},         {100, 1},
                {99, 2},         {0, 101},        {200, 1},
                {UINT64_MAX, 1}, {1, UINT64_MAX}, {UINT64_MAX - 1, 4},
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_fail(ashm__pinstate_pin(b.ps, bad[i].first, bad[i].n), EINVAL);
                assert_fail(ashm__pinstate_unpin(b.ps, bad[i].first, bad[i].n), EINVAL);
                assert_fail(ashm__pinstate_status(b.ps, bad[i].first, bad[i].n), EINVAL);
                assert_fail(claim(b.ps, bad[i].first, bad[i].n, runs, 16, &next), EINVAL);
                runs[0] = (struct pinstate_run){bad[i].first, bad[i].n};
                assert_ok(ashm__pinstate_reclaim_begin(b.ps));
                assert_fail(ashm__pinstate_finish(b.ps, runs, 1), EINVAL);
                assert_fail(ashm__pinstate_abort(b.ps, runs, 1), EINVAL);
                ashm__pinstate_reclaim_end(b.ps);
        }
        cr_assert_eq(next, 7, "ret_next untouched on failure");
        assert_fail(ashm__pinstate_pin(NULL, 0, 1), EINVAL);
        assert_fail(ashm__pinstate_status(NULL, 0, 1), EINVAL);
        assert_fail(ashm__pinstate_info(NULL, NULL), EINVAL);
        assert_fail(ashm__pinstate_info(b.ps, NULL), EINVAL);
        assert_fail(ashm__pinstate_oldest(b.ps, NULL, 1), EINVAL);
        cr_assert_eq(ashm__pinstate_oldest(b.ps, NULL, 0), 0);
        /* Edges that are valid. */
        cr_assert_eq(ashm__pinstate_pin(b.ps, 99, 1), ASHM_NOT_PURGED);
        cr_assert_eq(ashm__pinstate_unpin(b.ps, 0, 100), 0);
        cr_assert_eq(info_of(b.ps).unpinned, 100, "nothing changed by the failed calls but this");
        block_free(&b);
}

ASHM_TEST(pinstate, zero_pages) {
        struct block b = block_new(0);

        assert_fail(ashm__pinstate_pin(b.ps, 0, 1), EINVAL);
        assert_fail(ashm__pinstate_pin(b.ps, 0, 0), EINVAL);
        cr_assert_eq(info_of(b.ps).npages, 0);
        cr_assert_eq(ashm__pinstate_recover(b.ps), 0);
        block_free(&b);
}

ASHM_TEST(pinstate, reclaim_arguments) {
        struct block b = block_new(100);
        struct pinstate_run runs[16];
        uint64_t next;

        assert_ok(ashm__pinstate_unpin(b.ps, 0, 100));
        assert_fail(claim(b.ps, 0, 100, runs, 16, &next), ENOLCK);
        assert_fail(ashm__pinstate_finish(b.ps, runs, 0), ENOLCK);
        assert_fail(ashm__pinstate_abort(b.ps, runs, 0), ENOLCK);
        assert_ok(ashm__pinstate_reclaim_begin(b.ps));
        assert_fail(ashm__pinstate_reclaim_begin(b.ps), EBUSY);
        assert_fail(claim(b.ps, 0, 100, runs, 15, &next), EINVAL);
        assert_fail(claim(b.ps, 0, 100, NULL, 16, &next), EINVAL);
        assert_fail(claim(b.ps, 0, 100, runs, 16, NULL), EINVAL);
        assert_fail(ashm__pinstate_finish(b.ps, NULL, 1), EINVAL);
        assert_ok(ashm__pinstate_finish(b.ps, NULL, 0));
        ashm__pinstate_reclaim_end(b.ps);
        ashm__pinstate_reclaim_end(b.ps); /* twice is harmless */
        cr_assert_eq(info_of(b.ps).unpinned, 100);
        block_free(&b);
}

/* The view's fd closed and its number reused for another file: the lock
 * must not be taken there (a waiter would settle a live reclaimer's pages). */
ASHM_TEST(pinstate, reclaim_refuses_reused_fd) {
        struct block b = block_new(64);
        int fd = b.fd, other;

        close(fd);
        other = memfd_create("another", MFD_CLOEXEC);
        cr_assert(other >= 0);
        if (other != fd) {
                cr_assert(dup2(other, fd) == fd);
                close(other);
        }
        cr_assert(ftruncate(fd, (off_t) b.len) == 0);
        assert_fail(ashm__pinstate_reclaim_begin(b.ps), ESTALE);
        assert_fail(ashm__pinstate_recover(b.ps), ESTALE);
        block_free(&b);
}

ASHM_TEST(pinstate, reclaim_needs_state_fd) {
        _Alignas(64) static char buf[1024];
        struct pinstate *ps = NULL;

        assert_ok(ashm__pinstate_init(buf, sizeof(buf), 64));
        assert_ok(ashm__pinstate_attach(buf, sizeof(buf), 64, -1, &ps));
        assert_fail(ashm__pinstate_reclaim_begin(ps), EBADF);
        assert_fail(ashm__pinstate_recover(ps), EBADF);
        ashm__pinstate_detach(ps);
}

/* ------------------------------------------------------------------ */
/* Ashmem semantics in one process                                     */

ASHM_TEST(pinstate, starts_pinned) {
        struct block b = block_new(1000);
        struct pinstate_info i = info_of(b.ps);

        cr_assert_eq(i.npages, 1000);
        cr_assert_eq(i.pinned, 1000);
        cr_assert_eq(i.clock, 0);
        cr_assert_eq(ashm__pinstate_status(b.ps, 0, 1000), PINSTATE_IS_PINNED);
        cr_assert_eq(ashm__pinstate_pin(b.ps, 0, 1000), ASHM_NOT_PURGED);
        cr_assert_eq(info_of(b.ps).clock, 0, "pinning pinned pages writes nothing");
        block_free(&b);
}

ASHM_TEST(pinstate, unpin_status_pin) {
        struct block b = block_new(100);

        cr_assert_eq(ashm__pinstate_unpin(b.ps, 10, 40), 0);
        cr_assert_eq(info_of(b.ps).unpinned, 40);
        for (uint64_t p = 0; p < 100; p++)
                cr_assert_eq(page_state(&b, p), p >= 10 && p < 50 ? UNPINNED : PINNED, "page %" PRIu64, p);
        cr_assert_eq(ashm__pinstate_status(b.ps, 10, 40), PINSTATE_IS_UNPINNED);
        cr_assert_eq(ashm__pinstate_status(b.ps, 0, 11), PINSTATE_IS_UNPINNED, "any page unpinned");
        cr_assert_eq(ashm__pinstate_status(b.ps, 49, 51), PINSTATE_IS_UNPINNED);
        cr_assert_eq(ashm__pinstate_status(b.ps, 0, 10), PINSTATE_IS_PINNED);
        cr_assert_eq(ashm__pinstate_status(b.ps, 50, 50), PINSTATE_IS_PINNED);
        cr_assert_eq(ashm__pinstate_pin(b.ps, 20, 5), ASHM_NOT_PURGED);
        cr_assert_eq(ashm__pinstate_status(b.ps, 20, 5), PINSTATE_IS_PINNED);
        cr_assert_eq(ashm__pinstate_status(b.ps, 10, 40), PINSTATE_IS_UNPINNED);
        cr_assert_eq(ashm__pinstate_pin(b.ps, 0, 100), ASHM_NOT_PURGED);
        cr_assert_eq(ashm__pinstate_status(b.ps, 0, 100), PINSTATE_IS_PINNED);
        cr_assert_eq(info_of(b.ps).pinned, 100);
        block_free(&b);
}

/* Pins are not counted and unpins are not either: repeating one is a
 * no-op, and it does not refresh the LRU stamp. */
ASHM_TEST(pinstate, repeats_are_noops) {
        struct block b = block_new(64);
        uint64_t clock;

        assert_ok(ashm__pinstate_unpin(b.ps, 0, 8));
        clock = info_of(b.ps).clock;
        cr_assert_eq(clock, 1);
        assert_ok(ashm__pinstate_unpin(b.ps, 0, 8));
        assert_ok(ashm__pinstate_unpin(b.ps, 2, 3));
        cr_assert_eq(info_of(b.ps).clock, clock);
        cr_assert_eq(ashm__pinstate_pin(b.ps, 0, 8), ASHM_NOT_PURGED);
        cr_assert_eq(ashm__pinstate_pin(b.ps, 0, 8), ASHM_NOT_PURGED);
        cr_assert_eq(ashm__pinstate_status(b.ps, 0, 8), PINSTATE_IS_PINNED, "one pin undoes any number of unpins");
        block_free(&b);
}

ASHM_TEST(pinstate, was_purged_reported_once) {
        struct block b = block_new(100);

        assert_ok(ashm__pinstate_unpin(b.ps, 0, 100));
        purge_range(b.ps, 30, 10);
        for (uint64_t p = 0; p < 100; p++)
                cr_assert_eq(page_state(&b, p), p >= 30 && p < 40 ? PURGED : UNPINNED);
        cr_assert_eq(info_of(b.ps).purged, 10);
        cr_assert_eq(ashm__pinstate_status(b.ps, 30, 10), PINSTATE_IS_UNPINNED, "purged pages are unpinned");
        cr_assert_eq(ashm__pinstate_pin(b.ps, 0, 30), ASHM_NOT_PURGED);
        cr_assert_eq(ashm__pinstate_pin(b.ps, 39, 2), ASHM_WAS_PURGED, "any purged page of the range");
        cr_assert_eq(ashm__pinstate_pin(b.ps, 39, 2), ASHM_NOT_PURGED, "reported once");
        cr_assert_eq(ashm__pinstate_pin(b.ps, 0, 100), ASHM_WAS_PURGED);
        cr_assert_eq(ashm__pinstate_pin(b.ps, 0, 100), ASHM_NOT_PURGED);
        cr_assert_eq(info_of(b.ps).pinned, 100);
        block_free(&b);
}

/* Unpinning a purged page leaves it purged: its contents are gone, and
 * the next pin must still say so. */
ASHM_TEST(pinstate, unpin_keeps_purged) {
        struct block b = block_new(64);

        assert_ok(ashm__pinstate_unpin(b.ps, 0, 64));
        purge_range(b.ps, 0, 64);
        assert_ok(ashm__pinstate_unpin(b.ps, 0, 64));
        cr_assert_eq(info_of(b.ps).purged, 64);
        cr_assert_eq(ashm__pinstate_pin(b.ps, 5, 1), ASHM_WAS_PURGED);
        assert_ok(ashm__pinstate_unpin(b.ps, 5, 1));
        cr_assert_eq(page_state(&b, 5), UNPINNED, "pinned again, then unpinned: intact from now on");
        cr_assert_eq(ashm__pinstate_pin(b.ps, 5, 1), ASHM_NOT_PURGED);
        block_free(&b);
}

ASHM_TEST(pinstate, claim_skips_pinned_and_purged) {
        struct block b = block_new(100);
        struct pinstate_run runs[16];
        int nr;

        assert_ok(ashm__pinstate_unpin(b.ps, 0, 10));
        cr_assert_eq(ashm__pinstate_pin(b.ps, 3, 2), ASHM_NOT_PURGED);
        assert_ok(ashm__pinstate_unpin(b.ps, 60, 4));
        purge_range(b.ps, 62, 1); /* page 62 purged already */
        nr = claim_all(b.ps, 0, 100, runs, ELEMENTSOF(runs));
        cr_assert_eq(nr, 4);
        cr_assert(runs[0].first == 0 && runs[0].npages == 3);
        cr_assert(runs[1].first == 5 && runs[1].npages == 5);
        cr_assert(runs[2].first == 60 && runs[2].npages == 2);
        cr_assert(runs[3].first == 63 && runs[3].npages == 1);
        for (uint64_t p = 0; p < 100; p++) {
                unsigned want = PINNED;
                if ((p < 10 && (p < 3 || p > 4)) || p == 60 || p == 61 || p == 63)
                        want = PURGING;
                else if (p == 62)
                        want = PURGED;
                cr_assert_eq(page_state(&b, p), want, "page %" PRIu64, p);
        }
        cr_assert_eq(info_of(b.ps).purging, 11);
        cr_assert_eq(ashm__pinstate_status(b.ps, 0, 3), PINSTATE_IS_UNPINNED, "purging pages are unpinned");
        /* Unpinning PURGING and PURGED pages changes nothing. */
        assert_ok(ashm__pinstate_unpin(b.ps, 0, 3));
        assert_ok(ashm__pinstate_unpin(b.ps, 60, 4));
        cr_assert_eq(page_state(&b, 0), PURGING);
        cr_assert_eq(page_state(&b, 62), PURGED);
        /* A second claim finds nothing more to take of those. */
        uint64_t next;
        cr_assert_eq(claim(b.ps, 0, 10, runs, 16, &next), 0);
        assert_ok(ashm__pinstate_finish(b.ps, runs, 0));
        ashm__pinstate_reclaim_end(b.ps);
        block_free(&b);
}

ASHM_TEST(pinstate, claim_runs_merge_across_chunks) {
        struct block b = block_new(200);
        struct pinstate_run runs[16];
        int nr;

        assert_ok(ashm__pinstate_unpin(b.ps, 20, 150)); /* chunks 0..5 */
        nr = claim_all(b.ps, 0, 200, runs, ELEMENTSOF(runs));
        cr_assert_eq(nr, 1);
        cr_assert(runs[0].first == 20 && runs[0].npages == 150);
        assert_ok(ashm__pinstate_finish(b.ps, runs, 1));
        ashm__pinstate_reclaim_end(b.ps);
        cr_assert_eq(info_of(b.ps).purged, 150);
        block_free(&b);
}

/* Every other page unpinned: 16 runs per chunk. With room for 16 runs
 * the claim takes one chunk at a time and says where to go on. */
ASHM_TEST(pinstate, claim_stops_when_runs_full) {
        struct block b = block_new(96);
        struct pinstate_run runs[20];
        uint64_t next = 0, total = 0;
        int nr;

        for (uint64_t p = 0; p < 96; p += 2)
                assert_ok(ashm__pinstate_unpin(b.ps, p, 1));
        assert_ok(ashm__pinstate_reclaim_begin(b.ps));
        nr = claim(b.ps, 0, 96, runs, 20, &next);
        cr_assert_eq(nr, 16);
        cr_assert_eq(next, 32);
        for (int i = 0; i < nr; i++)
                cr_assert(runs[i].first == (uint64_t) i * 2 && runs[i].npages == 1);
        while (next < 96) {
                nr = claim(b.ps, next, 96 - next, runs, 20, &next);
                cr_assert_eq(nr, 16);
                for (int i = 0; i < nr; i++)
                        total += runs[i].npages;
        }
        cr_assert_eq(total, 32);
        cr_assert_eq(info_of(b.ps).purging, 48);
        ashm__pinstate_reclaim_end(b.ps);
        block_free(&b);
}

ASHM_TEST(pinstate, claim_partial_chunks) {
        struct block b = block_new(100);
        struct pinstate_run runs[16];
        int nr;

        assert_ok(ashm__pinstate_unpin(b.ps, 0, 100));
        nr = claim_all(b.ps, 33, 30, runs, ELEMENTSOF(runs));
        cr_assert_eq(nr, 1);
        cr_assert(runs[0].first == 33 && runs[0].npages == 30);
        cr_assert_eq(page_state(&b, 32), UNPINNED);
        cr_assert_eq(page_state(&b, 63), UNPINNED);
        nr = claim(b.ps, 96, 4, runs, 16, &(uint64_t){0});
        cr_assert(nr == 1 && runs[0].first == 96 && runs[0].npages == 4, "the short last chunk");
        ashm__pinstate_reclaim_end(b.ps);
        block_free(&b);
}

ASHM_TEST(pinstate, abort_restores_unpinned) {
        struct block b = block_new(64);
        struct pinstate_run runs[16];
        int nr;

        assert_ok(ashm__pinstate_unpin(b.ps, 0, 64));
        assert_ok(ashm__pinstate_pin(b.ps, 10, 1));
        nr = claim_all(b.ps, 0, 64, runs, ELEMENTSOF(runs));
        cr_assert_eq(nr, 2);
        assert_ok(ashm__pinstate_abort(b.ps, runs, (size_t) nr));
        ashm__pinstate_reclaim_end(b.ps);
        cr_assert_eq(info_of(b.ps).unpinned, 63);
        cr_assert_eq(page_state(&b, 10), PINNED);
        cr_assert_eq(ashm__pinstate_pin(b.ps, 0, 64), ASHM_NOT_PURGED, "nothing was punched");
        block_free(&b);
}

/* finish and abort touch only the PURGING pages of their runs. */
ASHM_TEST(pinstate, settle_touches_only_purging) {
        struct block b = block_new(64);
        struct pinstate_run all = {0, 64};
        struct pinstate_run runs[16];
        const unsigned want1[8] = {PURGED, PURGED, UNPINNED, UNPINNED, UNPINNED, UNPINNED, UNPINNED, UNPINNED};
        const unsigned want2[8] = {PURGED, PURGED, UNPINNED, UNPINNED, UNPINNED, UNPINNED, PURGED, UNPINNED};

        assert_ok(ashm__pinstate_unpin(b.ps, 0, 8));
        purge_range(b.ps, 0, 2);
        assert_ok(ashm__pinstate_reclaim_begin(b.ps));
        cr_assert_eq(claim(b.ps, 4, 2, runs, 16, &(uint64_t){0}), 1);
        assert_ok(ashm__pinstate_abort(b.ps, &all, 1));
        for (uint64_t p = 0; p < 8; p++)
                cr_assert_eq(page_state(&b, p), want1[p], "abort: page %" PRIu64, p);
        cr_assert_eq(claim(b.ps, 6, 1, runs, 16, &(uint64_t){0}), 1);
        assert_ok(ashm__pinstate_finish(b.ps, &all, 1));
        ashm__pinstate_reclaim_end(b.ps);
        for (uint64_t p = 0; p < 8; p++)
                cr_assert_eq(page_state(&b, p), want2[p], "finish: page %" PRIu64, p);
        for (uint64_t p = 8; p < 64; p++)
                cr_assert_eq(page_state(&b, p), PINNED);
        block_free(&b);
}

/* ------------------------------------------------------------------ */
/* LRU                                                                 */

ASHM_TEST(pinstate, lru_oldest_first) {
        struct block b = block_new(200);
        struct pinstate_chunk ch[8];
        int n;

        assert_ok(ashm__pinstate_unpin(b.ps, 130, 5)); /* A: chunk 4 */
        assert_ok(ashm__pinstate_unpin(b.ps, 0, 3));   /* B: chunk 0 */
        assert_ok(ashm__pinstate_unpin(b.ps, 64, 40)); /* C: chunks 2 and 3, one stamp */
        n = ashm__pinstate_oldest(b.ps, ch, ELEMENTSOF(ch));
        cr_assert_eq(n, 4);
        cr_assert(ch[0].first == 128 && ch[0].unpinned == 5 && ch[0].npages == 32);
        cr_assert(ch[1].first == 0 && ch[1].unpinned == 3);
        cr_assert(ch[2].first == 64 && ch[2].unpinned == 32);
        cr_assert(ch[3].first == 96 && ch[3].unpinned == 8);
        cr_assert(ch[0].stamp < ch[1].stamp && ch[1].stamp < ch[2].stamp && ch[2].stamp == ch[3].stamp);
        /* Only the oldest when asked for fewer. */
        cr_assert_eq(ashm__pinstate_oldest(b.ps, ch, 1), 1);
        cr_assert_eq(ch[0].first, 128);
        cr_assert_eq(ashm__pinstate_oldest(b.ps, ch, 2), 2);
        cr_assert(ch[0].first == 128 && ch[1].first == 0);
        /* A re-unpin of an unpinned range is a no-op: A stays oldest.
         * Pin and unpin it again: it becomes the newest. */
        assert_ok(ashm__pinstate_unpin(b.ps, 130, 5));
        cr_assert_eq(ashm__pinstate_oldest(b.ps, ch, 1), 1);
        cr_assert_eq(ch[0].first, 128);
        assert_ok(ashm__pinstate_pin(b.ps, 130, 5));
        assert_ok(ashm__pinstate_unpin(b.ps, 130, 5));
        n = ashm__pinstate_oldest(b.ps, ch, ELEMENTSOF(ch));
        cr_assert(n == 4 && ch[0].first == 0 && ch[3].first == 128);
        /* Claimed or pinned chunks drop out. */
        assert_ok(ashm__pinstate_pin(b.ps, 0, 3));
        purge_range(b.ps, 64, 32);
        n = ashm__pinstate_oldest(b.ps, ch, ELEMENTSOF(ch));
        cr_assert(n == 2 && ch[0].first == 96 && ch[1].first == 128);
        block_free(&b);
}

ASHM_TEST(pinstate, lru_short_last_chunk) {
        struct block b = block_new(40);
        struct pinstate_chunk ch[2];

        assert_ok(ashm__pinstate_unpin(b.ps, 32, 8));
        cr_assert_eq(ashm__pinstate_oldest(b.ps, ch, 2), 1);
        cr_assert(ch[0].first == 32 && ch[0].npages == 8 && ch[0].unpinned == 8);
        block_free(&b);
}

/* Many chunks, few slots: the heap keeps exactly the oldest, in order. */
ASHM_TEST(pinstate, lru_many_chunks) {
        struct block b = block_new(32 * 300);
        struct pinstate_chunk ch[17];
        int n;

        /* Unpin chunks in a scrambled order; remember when each went. */
        for (uint64_t i = 0; i < 300; i++)
                assert_ok(ashm__pinstate_unpin(b.ps, ((i * 7) % 300) * 32 + i % 32, 1));
        n = ashm__pinstate_oldest(b.ps, ch, ELEMENTSOF(ch));
        cr_assert_eq(n, 17);
        for (int i = 0; i < n; i++) {
                cr_assert_eq(ch[i].first, (((uint64_t) i * 7) % 300) * 32);
                cr_assert_eq(ch[i].stamp, (uint64_t) i + 1);
        }
        block_free(&b);
}

ASHM_TEST(pinstate, clock_advance) {
        struct block b = block_new(64);
        struct pinstate_chunk ch[2];

        assert_ok(ashm__pinstate_unpin(b.ps, 0, 1));
        cr_assert_eq(ashm__pinstate_clock_advance(b.ps, 1000), 1000);
        cr_assert_eq(ashm__pinstate_clock_advance(b.ps, 10), 1000, "never backwards");
        assert_ok(ashm__pinstate_unpin(b.ps, 32, 1));
        cr_assert_eq(ashm__pinstate_oldest(b.ps, ch, 2), 2);
        cr_assert(ch[0].stamp == 1 && ch[1].stamp == 1001);
        block_free(&b);
}

/* One clock word for the blocks of every region (ashmd's): stamps of
 * different regions then compare; NULL goes back to the block's own. */
ASHM_TEST(pinstate, shared_clock) {
        struct block a = block_new(64), b = block_new(64);
        static uint64_t clock;
        struct pinstate_chunk ch[2];

        ashm__pinstate_use_clock(a.ps, &clock);
        ashm__pinstate_use_clock(b.ps, &clock);
        assert_ok(ashm__pinstate_unpin(a.ps, 0, 1));
        assert_ok(ashm__pinstate_unpin(b.ps, 0, 1));
        assert_ok(ashm__pinstate_unpin(a.ps, 32, 1));
        cr_assert_eq(ashm__pinstate_oldest(a.ps, ch, 2), 2);
        cr_assert(ch[0].stamp == 1 && ch[1].stamp == 3);
        cr_assert_eq(ashm__pinstate_oldest(b.ps, ch, 2), 1);
        cr_assert_eq(ch[0].stamp, 2);
        cr_assert_eq(info_of(a.ps).clock, 3);
        cr_assert_eq(ashm__pinstate_clock_advance(b.ps, 10), 10);
        cr_assert_eq(clock, 10);
        ashm__pinstate_use_clock(a.ps, NULL);
        cr_assert_eq(info_of(a.ps).clock, 0, "the block's own clock was never used");
        assert_ok(ashm__pinstate_unpin(a.ps, 40, 1));
        cr_assert_eq(ashm__pinstate_oldest(a.ps, ch, 2), 2);
        cr_assert(ch[0].first == 0 && ch[0].stamp == 1);
        cr_assert(ch[1].first == 32 && ch[1].stamp == 1, "chunk 1 restamped from the block's clock");
        block_free(&a);
        block_free(&b);
}

ASHM_TEST(pinstate, info_counts) {
        struct block b = block_new(100);
        struct pinstate_run runs[16];
        struct pinstate_info i;
        int nr;

        assert_ok(ashm__pinstate_unpin(b.ps, 0, 50));
        purge_range(b.ps, 0, 10);
        nr = claim_all(b.ps, 10, 5, runs, 16);
        i = info_of(b.ps);
        cr_assert(i.pinned == 50 && i.unpinned == 35 && i.purged == 10 && i.purging == 5);
        assert_ok(ashm__pinstate_finish(b.ps, runs, (size_t) nr));
        ashm__pinstate_reclaim_end(b.ps);
        i = info_of(b.ps);
        cr_assert(i.pinned == 50 && i.unpinned == 35 && i.purged == 15 && i.purging == 0);
        cr_assert_eq(i.waiters, 0);
        block_free(&b);
}

/* A peer sets bits past the last page, and PURGING bits with no
 * reclaimer: nothing counts or claims the tail, pins of the last pages do
 * not wait on it, and recovery settles only real pages. */
ASHM_TEST(pinstate, hostile_bits) {
        struct block b = block_new(40);
        struct chunk *c = &b.ps->chunks[1];
        struct pinstate_run runs[16];

        c->state = ~UINT64_C(0) << 16; /* pages 40..63 of chunk 1: PURGING */
        cr_assert_eq(info_of(b.ps).pinned, 40);
        cr_assert_eq(ashm__pinstate_pin(b.ps, 32, 8), ASHM_NOT_PURGED);
        cr_assert_eq(ashm__pinstate_status(b.ps, 32, 8), PINSTATE_IS_PINNED);
        assert_ok(ashm__pinstate_unpin(b.ps, 0, 40));
        cr_assert_eq(claim_all(b.ps, 0, 40, runs, 16), 1);
        cr_assert(runs[0].first == 0 && runs[0].npages == 40);
        ashm__pinstate_reclaim_end(b.ps);
        cr_assert_eq(ashm__pinstate_recover(b.ps), 40, "the real pages left PURGING, not the tail");
        cr_assert_eq(c->state & (~UINT64_C(0) << 16), ~UINT64_C(0) << 16, "tail untouched");
        /* PURGING written by a peer into real pages, no reclaimer alive. */
        cr_assert_eq(ashm__pinstate_pin(b.ps, 0, 40), ASHM_WAS_PURGED);
        c->state |= 3; /* page 32 */
        cr_assert_eq(ashm__pinstate_pin(b.ps, 32, 1), ASHM_WAS_PURGED, "settled as purged, not waited on forever");
        block_free(&b);
}

/* ------------------------------------------------------------------ */
/* Reclaim lock, waiting and recovery                                  */

ASHM_TEST(pinstate, reclaim_lock_exclusive) {
        struct block b = block_new(64);
        struct pinstate *other = view_new(&b);

        assert_ok(ashm__pinstate_reclaim_begin(b.ps));
        assert_fail(ashm__pinstate_reclaim_begin(other), EAGAIN);
        assert_fail(ashm__pinstate_recover(other), EAGAIN);
        ashm__pinstate_reclaim_end(b.ps);
        assert_ok(ashm__pinstate_reclaim_begin(other));
        assert_fail(ashm__pinstate_reclaim_begin(b.ps), EAGAIN);
        ashm__pinstate_detach(other); /* ends its reclaim */
        assert_ok(ashm__pinstate_recover(b.ps));
        block_free(&b);
}

/* A reclaimer that ended without finishing leaves PURGING pages; the
 * next one declares them purged, and pins then say so. */
ASHM_TEST(pinstate, recover_leftovers) {
        struct block b = block_new(100);
        struct pinstate *other = view_new(&b);
        struct pinstate_run runs[16];

        assert_ok(ashm__pinstate_unpin(b.ps, 0, 100));
        cr_assert_eq(claim_all(b.ps, 10, 20, runs, 16), 1);
        assert_fail(ashm__pinstate_recover(other), EAGAIN);
        cr_assert_eq(info_of(b.ps).purging, 20, "a live reclaimer's claim is left alone");
        ashm__pinstate_reclaim_end(b.ps);
        cr_assert_eq(ashm__pinstate_recover(other), 20);
        cr_assert_eq(ashm__pinstate_recover(other), 0);
        cr_assert_eq(info_of(b.ps).purged, 20);
        cr_assert_eq(ashm__pinstate_pin(b.ps, 0, 10), ASHM_NOT_PURGED);
        cr_assert_eq(ashm__pinstate_pin(b.ps, 29, 2), ASHM_WAS_PURGED);
        ashm__pinstate_detach(other);
        block_free(&b);
}

struct pin_job {
        struct pinstate *ps;
        uint64_t first, n;
        int result;
};

static void *pin_thread(void *arg) {
        struct pin_job *j = arg;

        j->result = ashm__pinstate_pin(j->ps, j->first, j->n);
        return NULL;
}

/* A pin that meets a page being purged waits for the purge to end, and
 * then reports it. */
ASHM_TEST(pinstate, pin_waits_for_finish) {
        struct block b = block_new(64);
        struct pin_job job = {.ps = view_new(&b), .first = 0, .n = 64, .result = -1};
        struct pinstate_run runs[16];
        pthread_t t;
        int nr;

        assert_ok(ashm__pinstate_unpin(b.ps, 30, 4));
        nr = claim_all(b.ps, 0, 64, runs, 16);
        cr_assert_eq(pthread_create(&t, NULL, pin_thread, &job), 0);
        wait_for_waiter(b.ps, 1);
        cr_assert_eq(__atomic_load_n(&job.result, __ATOMIC_SEQ_CST), -1, "still waiting");
        cr_assert_eq(page_state(&b, 30), PURGING);
        assert_ok(ashm__pinstate_finish(b.ps, runs, (size_t) nr));
        cr_assert_eq(pthread_join(t, NULL), 0);
        ashm__pinstate_reclaim_end(b.ps);
        cr_assert_eq(job.result, ASHM_WAS_PURGED);
        cr_assert_eq(info_of(b.ps).pinned, 64);
        ashm__pinstate_detach(job.ps);
        block_free(&b);
}

/* After an abort the pages are intact again: the waiting pin says so. */
ASHM_TEST(pinstate, pin_waits_for_abort) {
        struct block b = block_new(64);
        struct pin_job job = {.ps = view_new(&b), .first = 30, .n = 4, .result = -1};
        struct pinstate_run runs[16];
        pthread_t t;
        int nr;

        assert_ok(ashm__pinstate_unpin(b.ps, 30, 4));
        nr = claim_all(b.ps, 0, 64, runs, 16);
        cr_assert_eq(pthread_create(&t, NULL, pin_thread, &job), 0);
        wait_for_waiter(b.ps, 1);
        assert_ok(ashm__pinstate_abort(b.ps, runs, (size_t) nr));
        cr_assert_eq(pthread_join(t, NULL), 0);
        ashm__pinstate_reclaim_end(b.ps);
        cr_assert_eq(job.result, ASHM_NOT_PURGED);
        ashm__pinstate_detach(job.ps);
        block_free(&b);
}

/* The reclaimer lets go without finishing (as if it had died): the
 * waiting pin finds the lock free, settles the pages as purged itself. */
ASHM_TEST(pinstate, pin_settles_orphaned_purge) {
        struct block b = block_new(64);
        struct pin_job job = {.ps = view_new(&b), .first = 0, .n = 40, .result = -1};
        struct pinstate_run runs[16];
        pthread_t t;

        assert_ok(ashm__pinstate_unpin(b.ps, 0, 64));
        cr_assert_eq(claim_all(b.ps, 35, 10, runs, 16), 1);
        cr_assert_eq(pthread_create(&t, NULL, pin_thread, &job), 0);
        wait_for_waiter(b.ps, 1);
        ashm__pinstate_reclaim_end(b.ps);
        cr_assert_eq(pthread_join(t, NULL), 0);
        cr_assert_eq(job.result, ASHM_WAS_PURGED);
        cr_assert_eq(page_state(&b, 44), PURGED, "the rest of the orphaned claim, settled too");
        cr_assert_eq(info_of(b.ps).purging, 0);
        ashm__pinstate_detach(job.ps);
        block_free(&b);
}

/* A reclaimer process claims, punches part of its claim, and is killed
 * before finish while another process waits in pin. The kernel drops its
 * lock; the waiter settles and reports WAS_PURGED, never NOT_PURGED. */
ASHM_TEST(pinstate, dead_reclaimer_waiting_pin) {
        struct block b = block_new(64);
        _cleanup_close_ int region = memfd_create("region", MFD_CLOEXEC);
        size_t page = page_size();
        int pipefd[2];
        pid_t rec, pinner;
        char c;
        int status;

        cr_assert(region >= 0 && ftruncate(region, (off_t) (64 * page)) == 0);
        assert_ok(ashm__pinstate_unpin(b.ps, 0, 64));
        cr_assert(pipe2(pipefd, O_CLOEXEC) == 0);
        rec = fork_child();
        if (rec == 0) {
                struct pinstate_run runs[16];
                uint64_t next;
                size_t nr;

                if (ashm__pinstate_reclaim_begin(b.ps) < 0)
                        _exit(1);
                if (ashm__pinstate_claim(b.ps, 0, 64, runs, 16, &nr, &next) != 64 || nr != 1 ||
                    fallocate(region, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t) (8 * page)))
                        _exit(2);
                if (write(pipefd[1], "c", 1) != 1)
                        _exit(3);
                for (;;)
                        pause();
        }
        cr_assert_eq(read(pipefd[0], &c, 1), 1);
        cr_assert_eq(info_of(b.ps).purging, 64);
        pinner = fork_child();
        if (pinner == 0) {
                int r = ashm__pinstate_pin(b.ps, 16, 8);
                _exit(r == ASHM_WAS_PURGED ? 0 : 10 + r);
        }
        wait_for_waiter(b.ps, 1);
        assert_fail(ashm__pinstate_recover(b.ps), EAGAIN);
        cr_assert_eq(kill(rec, SIGKILL), 0);
        cr_assert_eq(waitpid(rec, &status, 0), rec);
        cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        cr_assert_eq(waitpid(pinner, &status, 0), pinner);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "pin after a dead reclaimer: status 0x%x", status);
        cr_assert_eq(info_of(b.ps).purging, 0);
        cr_assert_eq(ashm__pinstate_pin(b.ps, 0, 64), ASHM_WAS_PURGED);
        close(pipefd[0]);
        close(pipefd[1]);
        block_free(&b);
}

/* The same death with nobody waiting: the daemon's recovery at start
 * settles it, and every pin of the claimed pages reports a purge. */
ASHM_TEST(pinstate, dead_reclaimer_recover) {
        struct block b = block_new(100);
        int pipefd[2];
        pid_t rec;
        char c;

        assert_ok(ashm__pinstate_unpin(b.ps, 0, 100));
        cr_assert(pipe2(pipefd, O_CLOEXEC) == 0);
        rec = fork_child();
        if (rec == 0) {
                struct pinstate_run runs[16];
                uint64_t next;
                size_t nr;

                if (ashm__pinstate_reclaim_begin(b.ps) < 0 ||
                    ashm__pinstate_claim(b.ps, 20, 50, runs, 16, &nr, &next) != 50 || nr != 1)
                        _exit(1);
                if (write(pipefd[1], "c", 1) != 1)
                        _exit(2);
                for (;;)
                        pause();
        }
        cr_assert_eq(read(pipefd[0], &c, 1), 1);
        assert_fail(ashm__pinstate_recover(b.ps), EAGAIN);
        cr_assert_eq(info_of(b.ps).purging, 50);
        cr_assert_eq(kill(rec, SIGKILL), 0);
        cr_assert_eq(waitpid(rec, NULL, 0), rec);
        cr_assert_eq(ashm__pinstate_recover(b.ps), 50);
        for (uint64_t p = 0; p < 100; p++)
                cr_assert_eq(ashm__pinstate_pin(b.ps, p, 1), p >= 20 && p < 70 ? ASHM_WAS_PURGED : ASHM_NOT_PURGED);
        close(pipefd[0]);
        close(pipefd[1]);
        block_free(&b);
}

/* A pinner killed at random points of big pin/unpin calls: every word is
 * whole (each is one CAS), nothing is PURGING or PURGED, and the block
 * goes on working. */
ASHM_TEST(pinstate, dead_pinner) {
        struct block b = block_new(32 * 256);
        uint64_t seed = (uint64_t) getpid() * 0x9e3779b97f4a7c15u;

        for (int round = 0; round < 10; round++) {
                int pipefd[2];
                char c;
                pid_t pid;

                cr_assert(pipe2(pipefd, O_CLOEXEC) == 0);
                pid = fork_child();
                if (pid == 0) {
                        for (uint64_t i = 0;; i++) {
                                (void) ashm__pinstate_unpin(b.ps, i % 7, b.npages - i % 7);
                                (void) ashm__pinstate_pin(b.ps, 0, b.npages - i % 5);
                                if (i == 0 && write(pipefd[1], "s", 1) != 1)
                                        _exit(1);
                        }
                }
                cr_assert_eq(read(pipefd[0], &c, 1), 1);
                seed = seed * 6364136223846793005u + 1442695040888963407u;
                for (volatile uint64_t spin = 0; spin < (seed >> 44); spin++)
                        ;
                cr_assert_eq(kill(pid, SIGKILL), 0);
                cr_assert_eq(waitpid(pid, NULL, 0), pid);
                close(pipefd[0]);
                close(pipefd[1]);

                struct pinstate_info i = info_of(b.ps);
                cr_assert(i.purging == 0 && i.purged == 0);
                cr_assert_eq(ashm__pinstate_pin(b.ps, 0, b.npages), ASHM_NOT_PURGED);
                cr_assert_eq(ashm__pinstate_status(b.ps, 0, b.npages), PINSTATE_IS_PINNED);
                assert_ok(ashm__pinstate_unpin(b.ps, 0, b.npages));
                cr_assert_eq(info_of(b.ps).unpinned, b.npages);
                assert_ok(ashm__pinstate_pin(b.ps, 0, b.npages));
        }
        block_free(&b);
}

/* A pin killed while it waits leaves the waiter count one too high: it
 * only costs the reclaimer a wake syscall, and the next pin still works. */
ASHM_TEST(pinstate, dead_waiter) {
        struct block b = block_new(64);
        struct pinstate_run runs[16];
        pid_t pid;
        int nr;

        assert_ok(ashm__pinstate_unpin(b.ps, 0, 32));
        nr = claim_all(b.ps, 0, 64, runs, 16);
        pid = fork_child();
        if (pid == 0)
                _exit(ashm__pinstate_pin(b.ps, 0, 32) == ASHM_WAS_PURGED ? 0 : 1);
        wait_for_waiter(b.ps, 1);
        cr_assert_eq(kill(pid, SIGKILL), 0);
        cr_assert_eq(waitpid(pid, NULL, 0), pid);
        cr_assert_eq(info_of(b.ps).waiters, 1);
        assert_ok(ashm__pinstate_finish(b.ps, runs, (size_t) nr));
        ashm__pinstate_reclaim_end(b.ps);
        cr_assert_eq(ashm__pinstate_pin(b.ps, 0, 32), ASHM_WAS_PURGED);
        block_free(&b);
}

/* ------------------------------------------------------------------ */
/* An exec'd process: only the memfd crosses, no pointers.             */

/* Runs before Criterion's main() when the test binary is exec'd as a
 * helper: fd 3 is the state memfd, argv-free to keep Criterion out. */
__attribute__((constructor)) static void exec_helper(void) {
        const char *op = getenv("PINSTATE_HELPER"), *np = getenv("PINSTATE_NPAGES");
        struct pinstate *ps;
        void *base;
        uint64_t npages;
        size_t len;
        int r;

        if (!op || !np)
                return;
        npages = strtoull(np, NULL, 10);
        len = ashm__pinstate_size(npages);
        base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, 3, 0);
        if (base == MAP_FAILED || ashm__pinstate_attach(base, len, npages, 3, &ps) < 0)
                _exit(100);
        if (strcmp(op, "unpin") == 0)
                r = ashm__pinstate_unpin(ps, 8, 8);
        else
                r = ashm__pinstate_pin(ps, 0, npages);
        _exit(r < 0 ? 101 : r);
}

static int run_helper(struct block *b, const char *op) {
        char np[32];
        pid_t pid;
        int status;

        snprintf(np, sizeof(np), "%" PRIu64, b->npages);
        pid = fork_child();
        if (pid == 0) {
                if (dup2(b->fd, 3) < 0)
                        _exit(127);
                setenv("PINSTATE_HELPER", op, 1);
                setenv("PINSTATE_NPAGES", np, 1);
                execl("/proc/self/exe", "pinstate-helper", (char *) NULL);
                _exit(127);
        }
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFEXITED(status), "helper status 0x%x", status);
        return WEXITSTATUS(status);
}

ASHM_TEST(pinstate, exec_peer) {
        struct block b = block_new(64);

        cr_assert_eq(run_helper(&b, "unpin"), 0);
        cr_assert_eq(ashm__pinstate_status(b.ps, 8, 8), PINSTATE_IS_UNPINNED);
        cr_assert_eq(ashm__pinstate_status(b.ps, 0, 8), PINSTATE_IS_PINNED);
        purge_range(b.ps, 0, 64);
        cr_assert_eq(run_helper(&b, "pin"), ASHM_WAS_PURGED);
        cr_assert_eq(ashm__pinstate_status(b.ps, 0, 64), PINSTATE_IS_PINNED);
        cr_assert_eq(run_helper(&b, "pin"), ASHM_NOT_PURGED);
        block_free(&b);
}

/* ------------------------------------------------------------------ */
/* Randomized multi-process stress                                     */

#define S_BLOCK 11 /* pages per block: blocks straddle chunk boundaries */
#define S_NBLOCKS 24
#define S_NPAGES (S_BLOCK * S_NBLOCKS)
#define S_WORKERS 3
#define S_ITERS 80000
/* A worker may run at most this many operations ahead of the reclaimer's
 * rounds, so that on two cores the reclaimer is not starved and purges
 * really interleave with pins (waiting by yielding, not by sleeping). */
#define S_OPS_PER_ROUND 6

/* Shared by the test's processes (an anonymous shared mapping, not the
 * state block). The model of each page is what its last pin wrote and
 * whether the region has it pinned. Per-block locks serialise the
 * workers' operations on a block in the shared mode, so that the model
 * is exact; the reclaimer never takes them. */
struct stress {
        bool shared;
        uint64_t seed;
        uint32_t done, stop, failed;
        uint64_t pins, was_purged, intact_after_unpin, punched, rounds, aborts, rounds_with_waiters;
        char msg[512];
        pthread_mutex_t locks[S_NBLOCKS];
        struct {
                uint64_t sig;
                bool pinned;
        } model[S_NPAGES];
};

static uint64_t rnd(uint64_t *s) {
        uint64_t z = (*s += 0x9e3779b97f4a7c15u);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
        return z ^ (z >> 31);
}

static _printf_(3, 4) _Noreturn void stress_fail(struct stress *st, int id, const char *fmt, ...) {
        va_list ap;
        uint32_t zero = 0;

        if (__atomic_compare_exchange_n(&st->failed, &zero, (uint32_t) id + 1, false, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST)) {
                va_start(ap, fmt);
                vsnprintf(st->msg, sizeof(st->msg), fmt, ap);
                va_end(ap);
        }
        __atomic_fetch_add(&st->done, 1, __ATOMIC_SEQ_CST);
        _exit(1);
}

static void page_write(char *mem, size_t page, uint64_t p, uint64_t sig) {
        char *pg = mem + p * page;

        memcpy(pg, &sig, 8);
        memcpy(pg + page / 2, &sig, 8);
        memcpy(pg + page - 8, &sig, 8);
}

/* 1: holds sig; 0: zeros (punched); -1: anything else. */
static int page_check(const char *mem, size_t page, uint64_t p, uint64_t sig) {
        const char *pg = mem + p * page;
        uint64_t a, b, c;

        memcpy(&a, pg, 8);
        memcpy(&b, pg + page / 2, 8);
        memcpy(&c, pg + page - 8, 8);
        if (a == sig && b == sig && c == sig)
                return 1;
        return a == 0 && b == 0 && c == 0 ? 0 : -1;
}

/* Every page the model has pinned still holds what was written there. */
static void check_pinned(struct stress *st, int id, const char *mem, size_t page, uint64_t first, uint64_t end) {
        for (uint64_t p = first; p < end; p++)
                if (st->model[p].pinned && page_check(mem, page, p, st->model[p].sig) != 1)
                        stress_fail(st, id, "page %" PRIu64 " lost its contents while pinned", p);
}

static void stress_pin(struct stress *st, struct pinstate *ps, int id, char *mem, size_t page, uint64_t a, uint64_t end,
                       uint64_t *seq) {
        bool any_unpinned = false, any_zero = false;
        int r;

        for (uint64_t p = a; p < end; p++)
                any_unpinned |= !st->model[p].pinned;
        r = ashm__pinstate_pin(ps, a, end - a);
        if (r != ASHM_NOT_PURGED && r != ASHM_WAS_PURGED)
                stress_fail(st, id, "pin(%" PRIu64 ", %" PRIu64 ") returned %d", a, end - a, r);
        for (uint64_t p = a; p < end; p++) {
                int k = page_check(mem, page, p, st->model[p].sig);

                if (k < 0 || (k == 0 && (r == ASHM_NOT_PURGED || st->model[p].pinned)))
                        stress_fail(st, id, "pin(%" PRIu64 ", %" PRIu64 ") = %d but page %" PRIu64 " %s (was %s)", a,
                                    end - a, r, p, k < 0 ? "holds garbage" : "was discarded",
                                    st->model[p].pinned ? "pinned" : "unpinned");
                any_zero |= k == 0;
        }
        if (r == ASHM_WAS_PURGED && (!any_unpinned || !any_zero))
                stress_fail(st, id, "pin(%" PRIu64 ", %" PRIu64 ") = WAS_PURGED but nothing was discarded", a, end - a);
        if (ashm__pinstate_status(ps, a, end - a) != PINSTATE_IS_PINNED)
                stress_fail(st, id, "status after pin is not IS_PINNED");
        __atomic_fetch_add(r == ASHM_WAS_PURGED ? &st->was_purged : &st->pins, 1, __ATOMIC_RELAXED);
        if (r == ASHM_NOT_PURGED && any_unpinned)
                __atomic_fetch_add(&st->intact_after_unpin, 1, __ATOMIC_RELAXED);
        ++*seq;
        for (uint64_t p = a; p < end; p++) {
                st->model[p].sig = ((uint64_t) id + 1) << 56 | *seq << 16 | p;
                st->model[p].pinned = true;
                page_write(mem, page, p, st->model[p].sig);
        }
}

static void stress_unpin(struct stress *st, struct pinstate *ps, int id, const char *mem, size_t page, uint64_t a,
                         uint64_t end) {
        check_pinned(st, id, mem, page, a, end);
        if (ashm__pinstate_unpin(ps, a, end - a) != 0)
                stress_fail(st, id, "unpin failed");
        if (ashm__pinstate_status(ps, a, end - a) != PINSTATE_IS_UNPINNED)
                stress_fail(st, id, "status after unpin is not IS_UNPINNED");
        for (uint64_t p = a; p < end; p++)
                st->model[p].pinned = false;
}

/* Worker id owns blocks b with b % S_WORKERS == id, or, shared, all of
 * them under their locks. Ranges stay inside one block. */
static _Noreturn void stress_worker(struct stress *st, struct pinstate *ps, int id, char *mem, size_t page) {
        uint64_t rng = st->seed ^ ((uint64_t) id + 1) * 0xd1b54a32d192ed03u, seq = 0;

        for (int i = 0; i < S_ITERS; i++) {
                uint64_t b = rnd(&rng) % S_NBLOCKS, a, end;

                while (__atomic_load_n(&st->rounds, __ATOMIC_ACQUIRE) * S_OPS_PER_ROUND < (uint64_t) i &&
                       !__atomic_load_n(&st->failed, __ATOMIC_RELAXED))
                        sched_yield();

                if (!st->shared) /* one of its own: id, id + S_WORKERS, ... */
                        b = (uint64_t) id + S_WORKERS * (b % ((S_NBLOCKS - (uint64_t) id + S_WORKERS - 1) / S_WORKERS));
                a = b * S_BLOCK + rnd(&rng) % S_BLOCK;
                end = a + 1 + rnd(&rng) % ((b + 1) * S_BLOCK - a);
                if (st->shared)
                        pthread_mutex_lock(&st->locks[b]);
                if (rnd(&rng) % 2)
                        stress_pin(st, ps, id, mem, page, a, end, &seq);
                else
                        stress_unpin(st, ps, id, mem, page, a, end);
                check_pinned(st, id, mem, page, b * S_BLOCK, (b + 1) * S_BLOCK);
                if (st->shared)
                        pthread_mutex_unlock(&st->locks[b]);
                if (__atomic_load_n(&st->failed, __ATOMIC_RELAXED))
                        break;
        }
        __atomic_fetch_add(&st->done, 1, __ATOMIC_SEQ_CST);
        _exit(0);
}

/* The reclaimer: oldest chunks first (or, now and then, a random range),
 * claim, sometimes yield to let pins run into the purge, punch each run
 * for real (or abort now and then), finish. */
static _Noreturn void stress_reclaimer(struct stress *st, struct pinstate *ps, int region, size_t page) {
        uint64_t rng = st->seed ^ 0x5851f42d4c957f2du;
        struct pinstate_chunk ch[3];
        struct pinstate_run runs[32];

        while (__atomic_load_n(&st->done, __ATOMIC_SEQ_CST) < S_WORKERS &&
               !__atomic_load_n(&st->stop, __ATOMIC_SEQ_CST)) {
                int r = ashm__pinstate_reclaim_begin(ps), nch;

                if (r == -EAGAIN) { /* a pin is settling: no reclaimer died here, so it finds nothing */
                        sched_yield();
                        continue;
                }
                if (r != 0)
                        stress_fail(st, 99, "reclaim_begin: %d", r);
                nch = ashm__pinstate_oldest(ps, ch, ELEMENTSOF(ch));
                if (rnd(&rng) % 4 == 0) {
                        ch[0].first = rnd(&rng) % S_NPAGES;
                        ch[0].npages = (uint32_t) (1 + rnd(&rng) % (S_NPAGES - ch[0].first));
                        nch = 1;
                }
                for (int i = 0; i < nch; i++) {
                        uint64_t next;
                        size_t nr = 0;
                        int k = ashm__pinstate_claim(ps, ch[i].first, ch[i].npages, runs, ELEMENTSOF(runs), &nr, &next);
                        bool abort = rnd(&rng) % 10 == 0;

                        if (k < 0)
                                stress_fail(st, 99, "claim: %d", k);
                        if (nr > 0 && rnd(&rng) % 4 == 0) {
                                sched_yield();
                                st->rounds_with_waiters += __atomic_load_n(&ps->hdr->waiters, __ATOMIC_RELAXED) > 0;
                        }
                        for (size_t j = 0; j < nr && !abort; j++) {
                                if (fallocate(region, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                              (off_t) (runs[j].first * page), (off_t) (runs[j].npages * page)) < 0)
                                        stress_fail(st, 99, "fallocate: %m");
                                __atomic_fetch_add(&st->punched, runs[j].npages, __ATOMIC_RELAXED);
                        }
                        r = abort ? ashm__pinstate_abort(ps, runs, nr) : ashm__pinstate_finish(ps, runs, nr);
                        if (r < 0)
                                stress_fail(st, 99, "finish: %d", r);
                        st->aborts += abort;
                }
                ashm__pinstate_reclaim_end(ps);
                __atomic_store_n(&st->rounds, st->rounds + 1, __ATOMIC_RELEASE);
                if (nch == 0)
                        sched_yield();
        }
        _exit(0);
}

static uint64_t test_seed(void) {
        const char *s = getenv("ASHM_TEST_SEED");

        if (s && *s)
                return strtoull(s, NULL, 0);
        return now_ns() ^ (uint64_t) getpid() << 32;
}

static void stress(bool shared) {
        struct block b = block_new(S_NPAGES);
        size_t page = page_size();
        _cleanup_close_ int region = memfd_create("stress-region", MFD_CLOEXEC);
        struct stress *st;
        pthread_mutexattr_t ma;
        pid_t workers[S_WORKERS], rec;
        uint64_t t0 = now_ns();
        char *mem;

        cr_assert(region >= 0 && ftruncate(region, (off_t) (S_NPAGES * page)) == 0);
        mem = mmap(NULL, S_NPAGES * page, PROT_READ | PROT_WRITE, MAP_SHARED, region, 0);
        st = mmap(NULL, sizeof(*st), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        cr_assert(mem != MAP_FAILED && st != MAP_FAILED);
        st->shared = shared;
        st->seed = test_seed();
        /* Shown when the test binary runs by itself (Criterion's TAP mode
         * drops it); every failure message repeats the seed. */
        fprintf(stderr, "pinstate stress (%s): seed=%" PRIu64 "\n", shared ? "shared pages" : "disjoint pages",
                st->seed);
        pthread_mutexattr_init(&ma);
        pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
        for (int i = 0; i < S_NBLOCKS; i++)
                pthread_mutex_init(&st->locks[i], &ma);
        for (uint64_t p = 0; p < S_NPAGES; p++) { /* regions start pinned */
                st->model[p].sig = UINT64_C(0xff) << 56 | p;
                st->model[p].pinned = true;
                page_write(mem, page, p, st->model[p].sig);
        }

        rec = fork_child();
        if (rec == 0)
                stress_reclaimer(st, b.ps, region, page);
        for (int i = 0; i < S_WORKERS; i++) {
                workers[i] = fork_child();
                if (workers[i] == 0)
                        stress_worker(st, b.ps, i, mem, page);
        }
        for (int i = 0; i < S_WORKERS; i++) {
                int status;

                cr_assert_eq(waitpid(workers[i], &status, 0), workers[i]);
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                        __atomic_store_n(&st->stop, 1, __ATOMIC_SEQ_CST);
                cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "seed=%" PRIu64 ": worker %d: status 0x%x",
                          st->seed, i, status);
        }
        __atomic_store_n(&st->stop, 1, __ATOMIC_SEQ_CST);
        wait_peer(rec);
        cr_assert_eq(st->failed, 0, "seed=%" PRIu64 ": %s (process %u)", st->seed, st->msg, st->failed - 1);

        /* The end state agrees with the model, page by page. */
        assert_ok(ashm__pinstate_recover(b.ps));
        cr_assert_eq(info_of(b.ps).purging, 0, "seed=%" PRIu64, st->seed);
        for (uint64_t p = 0; p < S_NPAGES; p++) {
                unsigned s = page_state(&b, p);
                cr_assert_eq(s == PINNED, st->model[p].pinned, "seed=%" PRIu64 " page %" PRIu64, st->seed, p);
                if (s != PURGED)
                        cr_assert_eq(page_check(mem, page, p, st->model[p].sig), 1, "seed=%" PRIu64 " page %" PRIu64,
                                     st->seed, p);
        }
        fprintf(stderr,
                "pinstate stress (%s): %.2f s, %" PRIu64 " pins (%" PRIu64 " WAS_PURGED, %" PRIu64
                " found unpinned pages intact), %" PRIu64 " reclaim rounds (%" PRIu64
                " seen with pins waiting), %" PRIu64 " pages punched, %" PRIu64 " aborts\n",
                shared ? "shared pages" : "disjoint pages", (double) (now_ns() - t0) / 1e9, st->pins + st->was_purged,
                st->was_purged, st->intact_after_unpin, st->rounds, st->rounds_with_waiters, st->punched, st->aborts);
        /* The run must have exercised both outcomes of a pin after unpin. */
        cr_assert(st->was_purged > 0 && st->intact_after_unpin > 0 && st->punched > 0, "seed=%" PRIu64, st->seed);
        for (int i = 0; i < S_NBLOCKS; i++)
                pthread_mutex_destroy(&st->locks[i]);
        munmap(st, sizeof(*st));
        munmap(mem, S_NPAGES * page);
        block_free(&b);
}

ASHM_TEST(pinstate, stress_disjoint_pages) {
        stress(false);
}

ASHM_TEST(pinstate, stress_shared_pages) {
        stress(true);
}
