/* SPDX-License-Identifier: MIT */
/*
 * The robust lock (lock.h; docs/locks.md has the argument). In short:
 * the word is a futex holding the owner's id; the owner's liveness is an
 * OFD byte lock the kernel keeps for it and drops when it dies; waiters
 * sleep in the futex and look at the owner's byte now and then, since a
 * dead owner wakes nobody.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "futex-util.h"
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
                if (deadline == 0 || spin < SPINS) {
                        if (deadline == 0) {
                                if (ret_holder)
                                        *ret_holder = holder;
                                return -EBUSY;
                        }
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

int lock_take(struct lock_shm *l, const struct lock_owner *o, int64_t timeout_ns, uint32_t *ret_holder) {
        uint32_t cur = 0;

        if (_unlikely_(__atomic_load_n(&l->magic, __ATOMIC_RELAXED) != LOCK_MAGIC))
                return -EBADMSG;
        if (_likely_(cas(&l->word, &cur, o->id)))
                return 0;
        /* The clock is read only here, off the fast path. */
        return take_slow(&l->word, o, timeout_ns <= 0 ? timeout_ns : clock_monotonic_ns() + timeout_ns, ret_holder);
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
