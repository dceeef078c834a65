/* SPDX-License-Identifier: MIT */
/*
 * The robust lock (lock.h), and ashm's public lock and wait/wake on it
 * (ashm_mutex_*, ashm_wait, ashm_wake: ashm.h). docs/locks.md has the
 * argument. In short:
 * the word is a futex holding the owner's id; the owner's liveness is an
 * OFD byte lock the kernel keeps for it and drops when it dies; waiters
 * sleep in the futex and look at the owner's byte now and then, since a
 * dead owner wakes nobody.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "ashm.h"
#include "fd-util.h"
#include "futex-util.h"
#include "internal.h"
#include "fork-gen.h"
#include "lock.h"
#include "macro.h"

/* A dead owner is noticed this long after a waiter starts to wait, then
 * at growing intervals up to the cap (no wake-up comes from the dead). */
#define PROBE_FIRST_NS (1000 * 1000)
#define PROBE_MAX_NS (100 * 1000 * 1000)
#define SPINS 100

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ __volatile__("yield");
#endif
}

static uint32_t random_id(void) {
        static uint32_t counter;
        uint32_t id = 0;

        if (getrandom(&id, sizeof(id), GRND_NONBLOCK) != sizeof(id)) {
                struct timespec ts;

                clock_gettime(CLOCK_MONOTONIC, &ts);
                id = (uint32_t) ts.tv_nsec * 2654435761u ^ (uint32_t) getpid() * 40503u ^
                     __atomic_add_fetch(&counter, 0x9E3779B9u, __ATOMIC_RELAXED);
        }
        return id & LOCK_ID_MASK;
}

static int byte_lock(int fd, short type, int cmd, uint32_t id, struct flock *fl) {
        *fl = (struct flock) { .l_type = type, .l_whence = SEEK_SET, .l_start = LOCK_LIVE_BASE + id, .l_len = 1 };
        while (fcntl(fd, cmd, fl) < 0)
                if (errno != EINTR)
                        return negative_errno();
        return 0;
}

int lock_owner_init(struct lock_owner *o, int fd) {
        struct flock fl;

        /* 2^31 ids: two live holders draw the same one about never, and
         * F_OFD_SETLK refuses an id a live holder has anyway. */
        for (int i = 0; i < 64; i++) {
                uint32_t id = random_id();
                int r;

                if (id == 0)
                        continue;
                r = byte_lock(fd, F_WRLCK, F_OFD_SETLK, id, &fl);
                if (r == -EAGAIN || r == -EACCES)
                        continue;
                if (r < 0)
                        return r;
                o->fd = fd;
                o->id = id;
                return 0;
        }
        return -EADDRINUSE;
}

void lock_owner_done(struct lock_owner *o) {
        struct flock fl;

        if (o->id != 0)
                (void) byte_lock(o->fd, F_UNLCK, F_OFD_SETLK, o->id, &fl);
        o->id = 0;
}

int lock_owner_alive(const struct lock_owner *o, uint32_t id) {
        struct flock fl;
        int r = byte_lock(o->fd, F_WRLCK, F_OFD_GETLK, id, &fl);

        if (r < 0)
                return r;
        return fl.l_type != F_UNLCK;
}

void lock_init(struct lock_shm *l) {
        __atomic_store_n(&l->word, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&l->magic, LOCK_MAGIC, __ATOMIC_RELEASE);
}

static inline bool cas(uint32_t *w, uint32_t *cur, uint32_t want) {
        return __atomic_compare_exchange_n(w, cur, want, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

static int take_slow(uint32_t *w, const struct lock_owner *o, int64_t deadline, uint32_t *ret_holder) {
        int64_t probe_at = -1, interval = PROBE_FIRST_NS;
        uint32_t want = o->id;

        for (int spin = 0;;) {
                uint32_t cur = __atomic_load_n(w, __ATOMIC_RELAXED), holder = cur & LOCK_ID_MASK;
                int64_t now, until;

                if (holder == 0) {
                        /* Free (a WAITERS bit alone is kept for whoever sleeps). */
                        if (cas(w, &cur, want | (cur & LOCK_WAITERS)))
                                return 0;
                        continue;
                }
                if (deadline == 0) {
                        /* One attempt, but a dead owner still hands over. */
                        int alive = holder == o->id ? 1 : lock_owner_alive(o, holder);

                        if (alive == 0) {
                                if (cas(w, &cur, o->id | (cur & LOCK_WAITERS)))
                                        return LOCK_OWNER_DIED;
                                continue;
                        }
                        if (ret_holder)
                                *ret_holder = holder;
                        return alive < 0 ? alive : -EBUSY;
                }
                if (spin < SPINS) {
                        spin++;
                        cpu_relax();
                        continue;
                }
                now = clock_monotonic_ns();
                if (probe_at < 0)
                        probe_at = now + interval;
                if (holder != o->id && now >= probe_at) {
                        int alive = lock_owner_alive(o, holder);

                        if (alive < 0)
                                return alive;
                        if (alive == 0) {
                                /* Waiters may sleep behind us: keep the bit. */
                                if (cas(w, &cur, o->id | LOCK_WAITERS))
                                        return LOCK_OWNER_DIED;
                                continue;
                        }
                        interval = MIN(2 * interval, (int64_t) PROBE_MAX_NS);
                        probe_at = now + interval;
                }
                if (deadline > 0 && now >= deadline) {
                        if (ret_holder)
                                *ret_holder = holder;
                        return -ETIMEDOUT;
                }
                if (!(cur & LOCK_WAITERS)) {
                        if (!__atomic_compare_exchange_n(w, &cur, cur | LOCK_WAITERS, false, __ATOMIC_RELAXED,
                                                         __ATOMIC_RELAXED))
                                continue;
                        cur |= LOCK_WAITERS;
                }
                /* Once we slept, others may too: take the lock with the
                 * bit set so our unlock wakes the next one. */
                want = o->id | LOCK_WAITERS;
                until = holder != o->id ? probe_at : -1;
                if (deadline > 0 && (until < 0 || deadline < until))
                        until = deadline;
                (void) futex_wait_until(w, cur, until);
        }
}

/* now + timeout_ns (> 0), saturated: a timeout past the clock's range
 * is no timeout (-1). */
static int64_t deadline_after(int64_t timeout_ns) {
        int64_t now = clock_monotonic_ns();

        return timeout_ns > INT64_MAX - now ? -1 : now + timeout_ns;
}

int lock_take(struct lock_shm *l, const struct lock_owner *o, int64_t timeout_ns, uint32_t *ret_holder) {
        uint32_t cur = 0;

        if (_unlikely_(__atomic_load_n(&l->magic, __ATOMIC_RELAXED) != LOCK_MAGIC))
                return -EBADMSG;
        if (_likely_(cas(&l->word, &cur, o->id)))
                return 0;
        /* The clock is read only here, off the fast path. */
        return take_slow(&l->word, o, timeout_ns <= 0 ? timeout_ns : deadline_after(timeout_ns), ret_holder);
}

int lock_release(struct lock_shm *l, const struct lock_owner *o) {
        uint32_t cur = __atomic_load_n(&l->word, __ATOMIC_RELAXED);

        do
                if ((cur & LOCK_ID_MASK) != o->id)
                        return -EPERM;
        while (!__atomic_compare_exchange_n(&l->word, &cur, 0, false, __ATOMIC_RELEASE, __ATOMIC_RELAXED));
        if (cur & LOCK_WAITERS)
                (void) futex_wake(&l->word, 1);
        return 0;
}

/* ---- the public lock: ashm_mutex_* ----------------------------------- */

struct ashm_mutex {
        struct lock_owner owner; /* owner.fd: our own open file description */
        void *map;
        size_t map_len;
        struct lock_shm *l;
        unsigned fork_gen;
};

/* A region that holds a lock is sealed against shrinking: a peer's
 * ftruncate() would raise SIGBUS in every process that has it mapped. */
static int seal_shrink(int fd) {
        int seals = fcntl(fd, F_GET_SEALS);

        if (seals < 0)
                return negative_errno();
        if (seals & F_SEAL_SHRINK)
                return 0;
        if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) < 0)
                return negative_errno();
        return 0;
}

/* Check that [offset, offset + ASHM_MUTEX_SIZE) is an aligned place in
 * the region; ret_size: the region's size. */
static int place_check(const ashm_region *region, uint64_t offset) {
        uint64_t size = 0;
        int r;

        if (!region || offset % ASHM_MUTEX_ALIGN != 0)
                return -EINVAL;
        r = ashm_region_get_size(region, &size);
        if (r < 0)
                return r;
        if (offset > size || size - offset < ASHM_MUTEX_SIZE)
                return -ERANGE;
        return 0;
}

_public_ int ashm_mutex_init(ashm_region *region, uint64_t offset, unsigned flags) {
        struct lock_shm l = { .word = 0, .magic = LOCK_MAGIC };
        int r;

        if (flags != 0)
                return -EINVAL;
        r = place_check(region, offset);
        if (r < 0)
                return r;
        /* pwrite() lands in the same page cache every mapping shows. */
        if (pwrite(ashm_region_fd(region), &l, sizeof(l), (off_t) offset) != (ssize_t) sizeof(l))
                return negative_errno();
        return 0;
}

_public_ void ashm_mutex_close(ashm_mutex *m) {
        if (!m)
                return;
        if (m->map)
                munmap(m->map, m->map_len);
        safe_close(m->owner.fd); /* drops the owner byte with the description */
        free(m);
}

_public_ int ashm_mutex_open(ashm_region *region, uint64_t offset, unsigned flags, ashm_mutex **ret_mutex) {
        _cleanup_close_ int fd = -1;
        uint64_t page = (uint64_t) sysconf(_SC_PAGESIZE), start;
        char path[64];
        ashm_mutex *m;
        void *p;
        int r;

        if (!ret_mutex || flags != 0)
                return -EINVAL;
        r = place_check(region, offset);
        if (r < 0)
                return r;
        /* An open file description of our own: the owner byte must die
         * with this process, not live on in whoever shares the region's
         * fd with us (SCM_RIGHTS, fork). */
        snprintf(path, sizeof(path), "/proc/self/fd/%d", ashm_region_fd(region));
        fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        r = seal_shrink(fd);
        if (r < 0)
                return r;
        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->owner.fd = TAKE_FD(fd);
        m->fork_gen = ashm__fork_gen_start();
        start = offset / page * page;
        m->map_len = (size_t) ((offset + ASHM_MUTEX_SIZE - start + page - 1) / page * page);
        p = mmap(NULL, m->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, m->owner.fd, (off_t) start);
        if (p == MAP_FAILED) {
                r = errno == EACCES ? -EPERM : negative_errno();
                goto fail;
        }
        m->map = p;
        m->l = (struct lock_shm *) ((uint8_t *) p + (offset - start));
        r = lock_owner_init(&m->owner, m->owner.fd);
        if (r < 0)
                goto fail;
        *ret_mutex = m;
        return 0;
fail:
        ashm_mutex_close(m);
        return r;
}

static int mutex_usable(const ashm_mutex *m) {
        if (!m)
                return -EINVAL;
        /* A child shares our open file description: its owner byte would
         * outlive it in us, and ours in it. */
        if (_unlikely_(ashm__fork_gen() != m->fork_gen))
                return -ECHILD;
        return 0;
}

_public_ int ashm_mutex_lock(ashm_mutex *m, int64_t timeout_ns) {
        int r = mutex_usable(m);

        if (r < 0)
                return r;
        r = lock_take(m->l, &m->owner, timeout_ns < 0 ? -1 : timeout_ns, NULL);
        if (r == -EBUSY) /* timeout 0: one attempt */
                r = -ETIMEDOUT;
        return r == LOCK_OWNER_DIED ? ASHM_MUTEX_OWNER_DIED : r;
}

_public_ int ashm_mutex_trylock(ashm_mutex *m) {
        int r = mutex_usable(m);

        if (r < 0)
                return r;
        r = lock_take(m->l, &m->owner, 0, NULL);
        return r == LOCK_OWNER_DIED ? ASHM_MUTEX_OWNER_DIED : r;
}

_public_ int ashm_mutex_unlock(ashm_mutex *m) {
        int r = mutex_usable(m);

        if (r < 0)
                return r;
        return lock_release(m->l, &m->owner);
}

/* ---- wait and wake on a word ------------------------------------------ */

_public_ int ashm_wait(const uint32_t *word, uint32_t expected, int64_t timeout_ns) {
        int64_t deadline = timeout_ns < 0 ? -1 : timeout_ns == 0 ? clock_monotonic_ns() : deadline_after(timeout_ns);
        int r;

        if (!word || (uintptr_t) word % 4 != 0)
                return -EINVAL;
        /* A signal is not a wake-up: sleep again until the deadline (the
         * kernel compares the word again each time). */
        do
                r = futex_wait_until((uint32_t *) word, expected, deadline);
        while (r == -EINTR);
        return r;
}

_public_ int ashm_wake(const uint32_t *word, int n) {
        if (!word || (uintptr_t) word % 4 != 0 || n <= 0)
                return -EINVAL;
        return futex_wake((uint32_t *) word, n);
}
