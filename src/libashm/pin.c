/* SPDX-License-Identifier: MIT */
/*
 * Pins, as a process sees them: a cache of the pin-state blocks of the
 * regions this process uses, each registered once with ashmd (the region
 * fd proves we hold it; the daemon answers with the block every holder
 * shares), then pinned and unpinned with atomics only (pinstate.c).
 *
 * Without a daemon (ASHM_NO_AUTOSTART=1 and none running, or ashmd not
 * installed) a region gets a private block: pins are checked and
 * remembered in this process, and nothing is ever purged, which is what
 * Android's memfd mode does.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ashm.h"
#include "client.h"
#include "fd-util.h"
#include "internal.h"
#include "memfd-util.h"
#include "pinstate.h"
#include "protocol.h"

/* Blocks no handle holds stay cached, up to this many, for the fd-based
 * APIs (cutils, the shim) that have nowhere to keep them, while the fd
 * they were last used with is open. A block only handles used is let go
 * with the last handle: the daemon then drops the region's memfd, and
 * its memory is freed once nothing else holds it, as the driver frees
 * it on the last close. */
#define IDLE_REFS_MAX 64
/* After a failed attempt to reach or start the daemon, work without one
 * for this long before trying again: a spawn per region would be slow. */
#define NO_DAEMON_RETRY_SEC 5

struct pinref {
        uint64_t dev, ino;
        struct pinstate *ps;
        void *map;
        size_t map_len;
        int state_fd;      /* -1 for a private block */
        uint64_t npages;   /* pages the block covers */
        uint64_t gen;      /* connection it was registered on; 0: private */
        bool read_only;    /* the daemon gave a read-only block: no pin/unpin */
        bool via_ro_fd;    /* registered through a read-only fd: part of the key */
        unsigned refs;     /* handles holding it */
        int raw_fd;        /* the fd the fd-based API last used it with; -1: handles only */
        struct pinref *next;
};

static pthread_mutex_t pins_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pinref *pins;
/* Blocks replaced while some thread could still be using them: kept
 * mapped, never freed (it takes a hostile peer or a daemon restart). */
static struct pinref *graveyard;
static time_t no_daemon_until;

static void pins_lock_take(void) {
        pthread_mutex_lock(&pins_lock);
}

static void pins_lock_drop(void) {
        pthread_mutex_unlock(&pins_lock);
}

static void pins_atfork(void) {
        pthread_atfork(pins_lock_take, pins_lock_drop, pins_lock_drop);
}

/* pins_lock, made safe across fork() on first use. */
static void lock_pins(void) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;

        pthread_once(&once, pins_atfork);
        pins_lock_take();
}

static uint64_t page(void) {
        return page_size();
}

int ashm__pin_range_check(uint64_t size, uint64_t offset, uint64_t len) {
        uint64_t end = page_align_u64(size, page());

        if ((offset | len) & (page() - 1))
                return -EINVAL;
        if (offset > end)
                return -EINVAL;
        if (len == 0)
                len = end - offset;
        if (len > end - offset)
                return -EINVAL;
        return 0;
}

static void ref_unmap(struct pinref *ref) {
        ashm__pinstate_detach(ref->ps);
        if (ref->map)
                munmap(ref->map, ref->map_len);
        safe_close(ref->state_fd);
}

static time_t now_sec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
        return ts.tv_sec;
}

/* A private block, when there is no daemon. */
static int ref_make_private(struct pinref *ref, uint64_t npages) {
        size_t len = ashm__pinstate_size(npages);
        void *map;
        int r;

        if (len == 0)
                return -EFBIG;
        map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (map == MAP_FAILED)
                return negative_errno();
        r = ashm__pinstate_init(map, len, npages);
        if (r >= 0)
                r = ashm__pinstate_attach(map, len, npages, -1, &ref->ps);
        if (r < 0) {
                munmap(map, len);
                return r;
        }
        ref->map = map;
        ref->map_len = len;
        ref->state_fd = -1;
        ref->npages = npages;
        ref->gen = 0;
        return 0;
}

/* The daemon's LRU clock word, shared by the blocks of every region so
 * that least-recently-unpinned order holds across regions. One per
 * daemon; an older one stays mapped for views that may still use it. */
static uint64_t *clock_word;
static uint64_t clock_dev, clock_ino;

/* Map the clock the daemon sent, unless it is the one we have. Locked;
 * consumes fd. */
static uint64_t *clock_take(int fd) {
        struct stat st;
        void *p;

        if (fd_stat_raw(fd, &st) < 0 || st.st_size < (off_t) sizeof(uint64_t)) {
                safe_close(fd);
                return clock_word;
        }
        if (clock_word && (uint64_t) st.st_dev == clock_dev && (uint64_t) st.st_ino == clock_ino) {
                safe_close(fd);
                return clock_word;
        }
        p = mmap(NULL, sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        safe_close(fd);
        if (p == MAP_FAILED)
                return clock_word;
        clock_word = p;
        clock_dev = (uint64_t) st.st_dev;
        clock_ino = (uint64_t) st.st_ino;
        return clock_word;
}

/* Ask the daemon for the region's block; offer ours (adopt) if we had
 * one from an earlier connection. Fills ref's block fields. */
static int ref_register(struct pinref *ref, int fd, const struct pinref *old) {
        struct proto_register_req req = { .flags = old ? PROTO_REGISTER_ADOPT : 0 };
        struct proto_register_rep rep;
        int fds[2] = { fd, old ? old->state_fd : -1 }, got[2] = { -1, -1 }, r;
        void *map;

        r = ashm__request(PROTO_REGISTER, &req, sizeof(req), fds, old ? 2 : 1, &rep, sizeof(rep), got, 2);
        if (r < 0)
                return r;
        if (got[0] < 0 || got[1] < 0 || rep.page_size != page() || rep.state_len != ashm__pinstate_size(rep.npages) ||
            rep.state_len == 0 || (rep.flags & ~(uint64_t) PROTO_REGISTER_READ_ONLY)) {
                close_many(got, 2);
                return -EBADMSG;
        }
        ref->read_only = rep.flags & PROTO_REGISTER_READ_ONLY;
        /* pinstate never writes through a view of a read-only block: only
         * pin and unpin write, and apply() refuses those. */
        map = mmap(NULL, rep.state_len, ref->read_only ? PROT_READ : PROT_READ | PROT_WRITE, MAP_SHARED, got[0], 0);
        if (map == MAP_FAILED) {
                r = negative_errno();
                close_many(got, 2);
                return r;
        }
        r = ashm__pinstate_attach(map, rep.state_len, rep.npages, got[0], &ref->ps);
        if (r < 0) {
                munmap(map, rep.state_len);
                close_many(got, 2);
                return r;
        }
        ashm__pinstate_use_clock(ref->ps, clock_take(got[1]));
        ref->map = map;
        ref->map_len = rep.state_len;
        ref->state_fd = got[0];
        ref->npages = rep.npages;
        /* The request may have made the connection: take its generation
         * now, not the one from before. */
        ref->gen = ashm__client_generation();
        return 0;
}

/* Blocks are cached per region and per kind of fd: a writer's fd of a
 * region must not share the read-only view a reader's fd got. */
static struct pinref *ref_find(const struct stat *st, bool ro_fd) {
        for (struct pinref *p = pins; p; p = p->next)
                if (p->dev == (uint64_t) st->st_dev && p->ino == (uint64_t) st->st_ino && p->via_ro_fd == ro_fd)
                        return p;
        return NULL;
}

/* Whether an idle block may still be needed: its raw fd is open on the
 * region (or on another fd of it that took the number: just as good). */
static bool ref_fd_open(const struct pinref *p) {
        struct stat st;

        return p->raw_fd >= 0 && fd_stat_raw(p->raw_fd, &st) == 0 && (uint64_t) st.st_dev == p->dev &&
               (uint64_t) st.st_ino == p->ino;
}

/* Forget a block: unmapped first, so that the daemon, told next, finds
 * no mapping of ours and lets the region go at once. Locked. */
static void ref_drop(struct pinref **pp) {
        struct pinref *p = *pp;
        struct proto_unregister_req req = { p->dev, p->ino };
        bool registered = p->gen != 0 && p->gen == ashm__client_generation();

        *pp = p->next;
        ref_unmap(p);
        if (registered)
                (void) ashm__request(PROTO_UNREGISTER, &req, sizeof(req), NULL, 0, NULL, 0, NULL, 0);
        free(p);
}

/* Forget idle blocks beyond the cache size, and with sweep those whose
 * fd is closed, telling the daemon. Locked. */
static void refs_trim(bool sweep) {
        struct pinref **pp = &pins;
        unsigned idle = 0;

        while (*pp) {
                struct pinref *p = *pp;

                if (p->refs == 0 && (p->raw_fd < 0 || ++idle > IDLE_REFS_MAX || (sweep && !ref_fd_open(p)))) {
                        ref_drop(pp);
                        continue;
                }
                pp = &p->next;
        }
}

static int ref_create(int fd, const struct stat *st, bool ro_fd, struct pinref **ret) {
        struct pinref *ref = calloc(1, sizeof(*ref));
        uint64_t npages = page_align_u64((uint64_t) st->st_size, page()) / page();
        int r = -ECONNREFUSED;

        if (!ref)
                return -ENOMEM;
        ref->dev = (uint64_t) st->st_dev;
        ref->ino = (uint64_t) st->st_ino;
        ref->via_ro_fd = ro_fd;
        ref->raw_fd = -1;
        if (now_sec() >= no_daemon_until) {
                r = ref_register(ref, fd, NULL);
                /* At its quota the daemon answers: it is there for the
                 * next region. */
                if (r < 0 && r != -ENOMEM && r != -EDQUOT)
                        no_daemon_until = now_sec() + NO_DAEMON_RETRY_SEC;
        }
        /* Whatever kept us from the daemon (none runs, it cannot be
         * started, its directory is not ours, it is out of fds, our uid
         * is at its quota...), pins still work, privately: nothing is
         * purged then. */
        if (r < 0 && r != -ENOMEM)
                r = ref_make_private(ref, npages);
        if (r < 0) {
                free(ref);
                return r;
        }
        ref->next = pins;
        pins = ref;
        *ret = ref;
        return 0;
}

static bool same_file(int a, int b) {
        struct stat sa, sb;

        return fd_stat_raw(a, &sa) == 0 && fd_stat_raw(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* A block registered on a connection that has since broken: register
 * again, offering it, so the new daemon carries on with it. Locked. */
static void ref_refresh(struct pinref *ref, int fd) {
        struct pinref fresh = *ref;
        struct pinref *old;

        /* Only a holder that can write the region may offer its block
         * (the daemon refuses the others with EPERM): a read-only one
         * never changed its block anyway. */
        if (ref_register(&fresh, fd, ref->read_only || fd_can_write(fd) == 0 ? NULL : ref) < 0)
                return; /* no daemon now: keep the block; nothing purges it */
        if (same_file(fresh.state_fd, ref->state_fd)) {
                ref_unmap(&fresh);
                ref->gen = fresh.gen;
                return;
        }
        /* The daemon holds another block for the region: use it from now
         * on, and keep the old one mapped for threads still in it. */
        old = malloc(sizeof(*old));
        if (!old) {
                ref_unmap(&fresh);
                return;
        }
        *old = *ref;
        old->next = graveyard;
        graveyard = old;
        __atomic_store_n(&ref->ps, fresh.ps, __ATOMIC_RELEASE);
        ref->map = fresh.map;
        ref->map_len = fresh.map_len;
        ref->state_fd = fresh.state_fd;
        ref->npages = fresh.npages;
        ref->read_only = fresh.read_only;
        ref->gen = fresh.gen;
}

/* The block of the region fd, registering it if needed. hold: a handle
 * or a call keeps it (released with ashm__pins_release); raw: the
 * fd-based API, which keeps it cached while fd is open. */
static int ref_get(int fd, const struct stat *st, bool hold, bool raw, struct pinref **ret) {
        bool ro_fd = fd_can_write(fd) == 0, created = false;
        struct pinref *ref;
        int r = 0;

        lock_pins();
        ref = ref_find(st, ro_fd);
        if (!ref) {
                r = ref_create(fd, st, ro_fd, &ref);
                created = r >= 0;
        } else if (ref->gen != 0 && ref->gen != ashm__client_generation())
                ref_refresh(ref, fd);
        if (r >= 0) {
                if (hold)
                        ref->refs++;
                if (raw)
                        ref->raw_fd = fd;
                *ret = ref;
        }
        /* A new region is a good time to look for closed ones. */
        refs_trim(created);
        pthread_mutex_unlock(&pins_lock);
        return r;
}

/* sweep: also drop idle blocks whose fd was closed (a handle went, or
 * pins_sweep()): a few fstat calls, not on the pin path. */
static void release(struct pinref *ref, bool sweep) {
        if (!ref)
                return;
        lock_pins();
        ref->refs--;
        refs_trim(sweep);
        pthread_mutex_unlock(&pins_lock);
}

void ashm__pins_release(struct pinref *ref) {
        release(ref, true);
}

static void pins_sweep(void) {
        lock_pins();
        refs_trim(true);
        pthread_mutex_unlock(&pins_lock);
}

/* Apply op to [offset, offset + len) of a region of size bytes, checked
 * as the driver checks. Pages past the block (the region grew after it
 * was registered) are never purged: they count as pinned. */
static int apply(struct pinref *ref, uint64_t size, uint64_t offset, uint64_t len, enum pin_op op) {
        struct pinstate *ps = __atomic_load_n(&ref->ps, __ATOMIC_ACQUIRE);
        uint64_t first, n;
        int r;

        r = ashm__pin_range_check(size, offset, len);
        if (r < 0)
                return r;
        if (len == 0)
                len = page_align_u64(size, page()) - offset;
        first = offset / page();
        n = len / page();
        if (op != PIN_OP_STATUS && ref->read_only)
                return -EPERM;
        if (first >= ref->npages || n == 0)
                return op == PIN_OP_STATUS ? ASHM_IS_PINNED : 0;
        n = MIN(n, ref->npages - first);
        switch (op) {
        case PIN_OP_PIN:
                return ashm__pinstate_pin(ps, first, n);
        case PIN_OP_UNPIN:
                return ashm__pinstate_unpin(ps, first, n);
        default:
                return ashm__pinstate_status(ps, first, n);
        }
}

/* Every 1024 unpins, a poll() to notice a daemon that died, so that a
 * restarted one takes our blocks over (ashm__client_check). */
static void maybe_check_daemon(void) {
        /* Per thread, so counting costs no locked instruction. */
        static __thread unsigned tick __attribute__((tls_model("initial-exec")));

        if ((++tick & 1023) == 0) {
                ashm__client_check();
                pins_sweep();
        }
}

static int fd_op(int fd, uint64_t offset, uint64_t len, enum pin_op op) {
        struct pinref *ref;
        struct stat st;
        int r;

        r = memfd_fstat(fd, &st);
        if (r < 0)
                return r;
        r = ashm__pin_range_check((uint64_t) st.st_size, offset, len);
        if (r < 0)
                return r;
        /* Held while in use: another thread's trim could free an idle
         * reference under us. */
        r = ref_get(fd, &st, true, true, &ref);
        if (r < 0)
                return r;
        if (op == PIN_OP_UNPIN)
                maybe_check_daemon();
        r = apply(ref, (uint64_t) st.st_size, offset, len, op);
        release(ref, false);
        return r;
}

int ashm__fd_pin(int fd, uint64_t offset, uint64_t len) {
        return fd_op(fd, offset, len, PIN_OP_PIN);
}

int ashm__fd_unpin(int fd, uint64_t offset, uint64_t len) {
        return fd_op(fd, offset, len, PIN_OP_UNPIN);
}

int ashm__fd_get_pin_status(int fd, uint64_t offset, uint64_t len) {
        return fd_op(fd, offset, len, PIN_OP_STATUS);
}

/* The page size as a mask and a shift, and the connection's generation
 * word: the fast path below reads them without a call or a division. */
static uint64_t pg_mask;
static unsigned pg_shift;
static const uint64_t *gen_word;

__attribute__((constructor)) static void pins_init(void) {
        pg_mask = page() - 1;
        pg_shift = (unsigned) __builtin_ctzll(page());
        gen_word = ashm__client_generation_word();
}

static int pins_op_slow(int fd, struct pinref **cache, uint64_t offset, uint64_t len, enum pin_op op);

/* The handle path: after the first call the block is cached in the
 * handle, and a pin or unpin of an aligned range inside it is a few loads,
 * shifts and the atomics. Everything else (first use, a new connection,
 * len 0, status, errors) takes the slow path, which checks it all. */
int ashm__pins_op(int fd, struct pinref **cache, uint64_t offset, uint64_t len, enum pin_op op) {
        struct pinref *ref = __atomic_load_n(cache, __ATOMIC_ACQUIRE);
        struct pinstate *ps;
        uint64_t first, n;

        if (__builtin_expect(!ref || (ref->gen != 0 && ref->gen != __atomic_load_n(gen_word, __ATOMIC_ACQUIRE)) ||
                                     ((offset | len) & pg_mask) || len == 0 || op == PIN_OP_STATUS, 0))
                return pins_op_slow(fd, cache, offset, len, op);
        first = offset >> pg_shift;
        n = len >> pg_shift;
        if (__builtin_expect(first >= ref->npages || n > ref->npages - first, 0))
                return pins_op_slow(fd, cache, offset, len, op);
        if (ref->read_only)
                return -EPERM;
        ps = __atomic_load_n(&ref->ps, __ATOMIC_ACQUIRE);
        if (op == PIN_OP_UNPIN) {
                maybe_check_daemon();
                return ashm__pinstate_unpin(ps, first, n);
        }
        return ashm__pinstate_pin(ps, first, n);
}

__attribute__((noinline)) static int pins_op_slow(int fd, struct pinref **cache, uint64_t offset, uint64_t len,
                                                  enum pin_op op) {
        struct pinref *ref = __atomic_load_n(cache, __ATOMIC_ACQUIRE);
        uint64_t bytes;

        if (!ref || (ref->gen != 0 && ref->gen != ashm__client_generation())) {
                struct stat st;
                int r = memfd_fstat(fd, &st);

                if (r < 0)
                        return r;
                if (!ref) {
                        struct pinref *expected = NULL;

                        r = ref_get(fd, &st, true, false, &ref);
                        if (r < 0)
                                return r;
                        if (!__atomic_compare_exchange_n(cache, &expected, ref, false, __ATOMIC_ACQ_REL,
                                                         __ATOMIC_ACQUIRE)) {
                                release(ref, false); /* another thread got there first */
                                ref = expected;
                        }
                } else {
                        r = ref_get(fd, &st, false, false, &ref);
                        if (r < 0)
                                return r;
                }
        }
        if (op == PIN_OP_UNPIN)
                maybe_check_daemon();
        /* The block's page count stands in for the size: the region's
         * size is fixed as far as pins go once registered. A range past
         * it takes the slow path, which asks the kernel. */
        bytes = ref->npages * page();
        if (offset > bytes || len > bytes - offset) {
                struct stat st;

                /* The system call: under the /dev/ashmem shim, libc's
                 * fstat() of a shim fd shows the device, size 0. */
                int r = fd_stat_raw(fd, &st);

                if (r < 0)
                        return r;
                return apply(ref, (uint64_t) st.st_size, offset, len, op);
        }
        return apply(ref, bytes, offset, len, op);
}

int ashm__pins_purged(struct pinref *ref, uint64_t offset, uint64_t len) {
        uint64_t first = offset / page(), last;

        if (!ref || len == 0 || first >= ref->npages)
                return 0;
        last = MIN(ref->npages, page_align_u64(offset + len, page()) / page());
        return ashm__pinstate_purged(__atomic_load_n(&ref->ps, __ATOMIC_ACQUIRE), first, last - first);
}

int ashm__purge(uint64_t bytes, unsigned flags, uint64_t *ret_lru_pages, uint64_t *ret_purged) {
        struct proto_purge_req req = {
                .bytes = bytes,
                .flags = flags & ASHM_PURGE_ALL_USERS ? PROTO_PURGE_ALL_USERS : 0,
        };
        struct proto_purge_rep rep;
        int r;

        if (flags & ~(unsigned) ASHM_PURGE_ALL_USERS)
                return -EINVAL;
        r = ashm__request(PROTO_PURGE, &req, sizeof(req), NULL, 0, &rep, sizeof(rep), NULL, 0);
        if (r < 0)
                return r;
        if (ret_lru_pages)
                *ret_lru_pages = rep.lru_pages;
        if (ret_purged)
                *ret_purged = rep.purged_bytes;
        return 0;
}

_public_ int ashm_purge(uint64_t bytes, unsigned flags, uint64_t *ret_purged) {
        return ashm__purge(bytes, flags, NULL, ret_purged);
}
