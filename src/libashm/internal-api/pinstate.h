/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared pin state of one region: the state every holder of the region
 * reads and writes with atomics only, and that a reclaimer (ashmd) uses to
 * purge unpinned pages safely. It lives in its own small shared-memory
 * block (a memfd, never the region's own bytes); this module works on a
 * mapping of it, (base, len). docs/pins.md has the layout, the state
 * machine and the argument for the invariant. Internal, not exported.
 *
 * Page numbers and counts are in pages of the region. Ranges are
 * [first, first + npages); npages 0 and ranges past the end fail with
 * -EINVAL before anything is changed (callers turn Ashmem's "len 0 = to
 * the end" into a page count first). */

#include <stddef.h>
#include <stdint.h>

#define PINSTATE_VERSION 1u
/* Pages whose state shares one 64-bit word (2 bits each) and one LRU
 * stamp: a "chunk". */
#define PINSTATE_CHUNK_PAGES 32u
/* A sanity bound on the page count (256 TiB of 4 KiB pages). */
#define PINSTATE_PAGES_MAX (UINT64_C(1) << 36)
/* ashm__pinstate_claim() needs room for this many runs: one chunk can
 * yield that many (every other page unpinned). */
#define PINSTATE_CLAIM_RUNS_MIN (PINSTATE_CHUNK_PAGES / 2)

/* Return values of ashm__pinstate_status(), the Ashmem driver's
 * (ashm.h will carry them publicly as ASHM_IS_*). */
#define PINSTATE_IS_UNPINNED 0
#define PINSTATE_IS_PINNED 1

/* A process-local view of a mapped state block. Opaque, never in shared
 * memory. After fork() the child may use its copy; a reclaim lock held at
 * fork time is then held by both copies until both end it (so don't). */
struct pinstate;

/* Pages [first, first + npages), as claimed for purging. */
struct pinstate_run {
        uint64_t first;
        uint64_t npages;
};

/* One chunk with unpinned pages, as ashm__pinstate_oldest() lists them. */
struct pinstate_chunk {
        uint64_t first;    /* first page of the chunk */
        uint64_t stamp;    /* LRU clock value of its latest unpin */
        uint32_t npages;   /* pages in the chunk (the last may be short) */
        uint32_t unpinned; /* pages currently UNPINNED (claimable) */
};

/* A snapshot, page by page consistent within each chunk. */
struct pinstate_info {
        uint64_t npages;
        uint64_t pinned, unpinned, purging, purged; /* they add up to npages */
        uint64_t clock;                             /* the LRU clock (the shared one, see use_clock) */
        uint32_t waiters;                           /* pins waiting for a purge to finish (a hint) */
};

/* Bytes a block for npages pages needs; 0 if npages > PINSTATE_PAGES_MAX. */
size_t ashm__pinstate_size(uint64_t npages);

/* Format a block: every page PINNED (regions start pinned), clock 0. base
 * must be 64-byte aligned (a mapping is). Done by the block's creator
 * before anybody else maps it.
 * Errors: -EINVAL bad base or npages; -ENOSPC len < size(npages). */
int ashm__pinstate_init(void *base, size_t len, uint64_t npages);

/* The same, on memory known to read as zeros (a new memfd or anonymous
 * mapping): only the header is written, so a block costs no time and
 * no memory for the pages nobody touches. */
int ashm__pinstate_init_zeroed(void *base, size_t len, uint64_t npages);

/* Check a mapped block and make a view of it. npages is what the caller
 * knows the region to have; the view never re-reads the block's header,
 * so a peer that rewrites it later changes nothing. state_fd (borrowed,
 * or -1) is an fd of the block's memfd: a pin waiting on a purge uses it
 * to find out whether the reclaimer died (docs/pins.md); the reclaim
 * functions need it. It must stay open while the view is used.
 * Errors: -EINVAL bad arguments; -EBADMSG not a pin-state block, or one
 * whose header contradicts itself or its length (hostile page count);
 * -EPROTONOSUPPORT another format version; -ESTALE a valid block for a
 * different number of pages; -EBADF state_fd is not open, -EINVAL it
 * is not a file at least len bytes long; -ENOMEM. */
int ashm__pinstate_attach(void *base, size_t len, uint64_t npages, int state_fd, struct pinstate **ret_ps);

/* Free a view (ending its reclaim, if any). The mapping stays the
 * caller's. Accepts NULL. */
void ashm__pinstate_detach(struct pinstate *ps);

/* Pin a range: PINNED stays, UNPINNED becomes PINNED, PURGED becomes
 * PINNED and is reported. Pins are not counted (Ashmem): pinning a pinned
 * page is a no-op. Returns ASHM_WAS_PURGED (1) if any page of the range
 * was purged since it was unpinned, else ASHM_NOT_PURGED (0); never fails
 * once the range is valid. A CAS per chunk touched, no syscall, unless a
 * page of the range is being purged (PURGING): then it waits for the
 * purge to end, for as long as a live reclaimer holds the reclaim lock,
 * and settles the purge itself when that reclaimer died. So never pin
 * pages you claimed and have not finished or aborted. */
int ashm__pinstate_pin(struct pinstate *ps, uint64_t first, uint64_t npages);

/* Unpin a range: PINNED pages become UNPINNED and their chunks take a new
 * LRU stamp; other pages are left alone (unpinning an unpinned page is a
 * no-op). Returns 0. */
int ashm__pinstate_unpin(struct pinstate *ps, uint64_t first, uint64_t npages);

/* PINSTATE_IS_UNPINNED (0) if any page of the range is not pinned, else
 * PINSTATE_IS_PINNED (1). Loads only. */
int ashm__pinstate_status(const struct pinstate *ps, uint64_t first, uint64_t npages);

/* 1 if any page of the range is PURGED or PURGING (its contents are, or
 * are being, discarded), else 0. Loads only; changes nothing, so a purge
 * stays to be reported by the next pin. For MemoryFile-style reads and
 * writes, and for the daemon. */
int ashm__pinstate_purged(const struct pinstate *ps, uint64_t first, uint64_t npages);

/* Counts by a scan of the block (popcounts: ~1 ns per chunk). */
int ashm__pinstate_info(const struct pinstate *ps, struct pinstate_info *ret_info);

/* Fill ret[] with up to max chunks that hold UNPINNED pages, least
 * recently unpinned first. Returns how many. Loads only, bounded by the
 * page count whatever the block holds. */
int ashm__pinstate_oldest(const struct pinstate *ps, struct pinstate_chunk *ret, size_t max);

/* Take unpin stamps from clock, a word shared by the blocks of every
 * region (ashmd hands it out), so that least-recently-unpinned order holds
 * across regions; NULL goes back to the block's own clock. The word must
 * stay mapped while the view lives. */
void ashm__pinstate_use_clock(struct pinstate *ps, uint64_t *clock);

/* Raise the LRU clock to at least at_least and return its value. The
 * daemon uses it to keep stamps of different regions comparable. */
uint64_t ashm__pinstate_clock_advance(struct pinstate *ps, uint64_t at_least);

/* Reclaimer side. A purge is:
 *     ashm__pinstate_reclaim_begin()            the reclaim lock
 *     ashm__pinstate_claim()                    UNPINNED -> PURGING
 *     fallocate(PUNCH_HOLE|KEEP_SIZE) each run
 *     ashm__pinstate_finish() (or _abort() if nothing was punched)
 *     ashm__pinstate_reclaim_end()
 * The lock is an OFD lock on a private open file description of the block
 * (reopened through /proc/self/fd), so the kernel drops it when the
 * reclaimer dies; that is how waiting pins learn of the death. None of
 * these functions ever waits. */

/* Take the reclaim lock and finish any purge a dead reclaimer left
 * (PURGING -> PURGED). Returns the number of such pages, or -EAGAIN
 * another reclaimer (or a pin cleaning up after a dead one) holds it,
 * -EBADF the view has no state fd, -EBUSY this view holds it already,
 * -ESTALE the state fd's number now names another file, or an error from
 * reopening the memfd. */
int ashm__pinstate_reclaim_begin(struct pinstate *ps);

/* Release the lock. Pages still PURGING are left for the next reclaimer
 * or a waiting pin to declare purged (as if we had died). */
void ashm__pinstate_reclaim_end(struct pinstate *ps);

/* Move the UNPINNED pages of a range to PURGING; PINNED, PURGED and
 * PURGING pages are never touched. Claimed pages are stored as maximal
 * runs (adjacent pages merged, across chunks too) in runs[]; claiming
 * stops early when runs[] could not take the next chunk's, and *ret_next is
 * the first page not looked at (first + npages when all were). Returns
 * the number of pages claimed (at most about INT_MAX per call), with
 * *ret_nruns runs stored; every page claimed is in one of them. A chunk
 * that peers keep changing under us is skipped, not waited for.
 * Errors: -ENOLCK no reclaim lock; -EINVAL bad range or max_runs <
 * PINSTATE_CLAIM_RUNS_MIN. */
int ashm__pinstate_claim(struct pinstate *ps, uint64_t first, uint64_t npages, struct pinstate_run *runs,
                         size_t max_runs, size_t *ret_nruns, uint64_t *ret_next);

/* After the runs were punched: PURGING -> PURGED, and wake waiting pins.
 * Errors: -ENOLCK, -EINVAL a run out of range (nothing changed). */
int ashm__pinstate_finish(struct pinstate *ps, const struct pinstate_run *runs, size_t nruns);

/* The runs were not punched at all (fallocate failed, e.g. EPERM on a
 * sealed region): PURGING -> UNPINNED, contents intact. Never use it
 * after a partial punch: finish then. Errors as finish. */
int ashm__pinstate_abort(struct pinstate *ps, const struct pinstate_run *runs, size_t nruns);

/* For the daemon at start: reclaim_begin() + reclaim_end(). Returns the
 * number of PURGING pages declared PURGED, or an error as reclaim_begin. */
int ashm__pinstate_recover(struct pinstate *ps);
