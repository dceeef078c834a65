/* SPDX-License-Identifier: MIT */
/*
 * Channels: the watcher, how a sleeper hears at once that its peers are
 * gone, without a timer.
 *
 * A peer's liveness is its OFD write lock on its byte (chan-open.c). A
 * sleeper cannot wait on a futex and a lock at once, so each handle that
 * sleeps gets a thread of its own, started on the first sleep, that sits
 * in F_OFD_SETLKW asking for a read lock on the bytes of the peers the
 * handle waits for. The kernel grants it when the last of them is gone
 * (killed or closed): the thread drops the lock at once, counts a
 * "fired", and wakes the sleeper's futex word. The sleeper then asks the
 * kernel (peer_gone() in chan.c) what really happened: a fire is only a
 * reason to look. So the data path waits untimed, and a death costs the
 * sleepers one wake-up.
 *
 * Read locks never stand for a live endpoint: every endpoint holds a
 * write lock, and liveness is probed with a read lock (which conflicts
 * with write locks only), so a watcher is never taken for a peer. A
 * watcher does hold its read lock for two syscalls while it drops it: an
 * endpoint that claims its byte in that instant retries (chan-open.c).
 *
 * The fire must not be lost between the sleeper's last look and its
 * futex_wait(): the sleeper marks itself waiting, then reads the fired
 * count; the watcher counts the fire, then wakes the word for as long as
 * a waiting sleeper has not seen it (backing off). Nothing here writes to
 * the region: a read-only subscriber's word is woken the same way.
 *
 * The ticker, one thread per process while any handle sleeps, bounds
 * what a scribbler can do to a sleeper: a zeroed sleepers word means no
 * writer wakes it, so every slice the ticker wakes each sleeper that has
 * slept through the whole slice, and it looks at its ring again. The
 * data path arms no timer for that.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "chan.h"
#include "fork-gen.h"
#include "futex-util.h"
#include "internal.h"

/* Our threads take no signal meant for the application: they start
 * with every signal blocked (glibc keeps its cancel signal out of it). */
int ashm__chan_thread_start(pthread_t *ret_thread, void *(*fn)(void *), void *arg, bool detached) {
        pthread_attr_t attr;
        sigset_t all, old;
        int r;

        r = pthread_attr_init(&attr);
        if (r != 0)
                return -r;
        if (detached)
                pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = pthread_create(ret_thread, &attr, fn, arg);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&attr);
        return -r;
}

static bool fire_pending(ashm_chan *ch, uint32_t fired) {
        for (unsigned k = 0; k < CHAN_WAITERS; k++)
                if (LOADS(&ch->waiters[k].in) && LOADS(&ch->waiters[k].seen) != fired)
                        return true;
        return false;
}

/* Wake the sleepers until each has seen the fire (or left its wait).
 * Never inlined into watch_thread(): its stack objects (the backoff, the
 * timespec) must not live in the frame a cancel unwinds without its
 * epilogue, or AddressSanitizer finds their redzones still poisoned when
 * the thread's stack is used again. */
static __attribute__((noinline)) void kick(ashm_chan *ch, uint32_t fired) {
        for (long ns = 10 * 1000; fire_pending(ch, fired) && !LOADS(&ch->watch_stop);) {
                for (unsigned k = 0; k < CHAN_WAITERS; k++) {
                        uint32_t *word = __atomic_load_n(&ch->waiters[k].word, __ATOMIC_SEQ_CST);

                        if (word)
                                futex_wake(word, INT32_MAX);
                }
                if (!fire_pending(ch, fired))
                        break;
                chan_backoff(&ns);
        }
}

static void *watch_thread(void *arg) {
        ashm_chan *ch = arg;
        uint32_t served = LOADS(&ch->watch_served);

        /* Only the lock wait may be cancelled (ashm__chan_watch_stop()). */
        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
        for (;;) {
                uint32_t req = LOADS(&ch->watch_req);
                /* Not on this stack: a cancel unwinds it without the
                 * epilogue, and AddressSanitizer would find the redzones
                 * of a local still poisoned when the thread ends. */
                struct flock *fl = &ch->watch_fl;
                int r;

                if (LOADS(&ch->watch_stop))
                        break;
                if (req == served) {
                        futex_wait(&ch->watch_req, req, -1);
                        continue;
                }
                *fl = (struct flock) { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = LOADS(&ch->watch_start),
                                       .l_len = LOADS(&ch->watch_len) };
                pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
                r = fcntl(ch->lock_fd, F_OFD_SETLKW, fl);
                pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r == 0) {
                        fl->l_type = F_UNLCK;
                        (void) fcntl(ch->lock_fd, F_OFD_SETLK, fl);
                } else
                        /* ENOLCK, say: from now on the handle sleeps in
                         * slices (ashm__chan_watch() says so), and this
                         * fire makes the sleeper look now. */
                        STORES(&ch->watch_error, errno);
                served = req;
                STORES(&ch->watch_served, served);
                kick(ch, __atomic_add_fetch(&ch->watch_fired, 1, __ATOMIC_SEQ_CST));
        }
        return NULL;
}

/* With watch_lock held. */
static void watch_stop_locked(ashm_chan *ch) {
        if (!LOADS(&ch->watch_running))
                return;
        STORES(&ch->watch_stop, true);
        __atomic_fetch_add(&ch->watch_req, 1, __ATOMIC_SEQ_CST);
        futex_wake(&ch->watch_req, 1);
        pthread_cancel(ch->watch_thread);
        pthread_join(ch->watch_thread, NULL);
        /* A cancel that came as the kernel granted the lock leaves it
         * held: drop it (the range is never our endpoint's own byte). */
        (void) fcntl(ch->lock_fd, F_OFD_SETLK,
                     &(struct flock) { .l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = LOADS(&ch->watch_start),
                                       .l_len = LOADS(&ch->watch_len) });
        STORES(&ch->watch_running, false);
        STORES(&ch->watch_stop, false);
}

void ashm__chan_watch_stop(ashm_chan *ch) {
        pthread_mutex_lock(&ch->watch_lock);
        watch_stop_locked(ch);
        pthread_mutex_unlock(&ch->watch_lock);
}

static bool watching(ashm_chan *ch, int64_t start, int64_t len) {
        return LOADS(&ch->watch_running) && LOADS(&ch->watch_served) != LOADS(&ch->watch_req) &&
               LOADS(&ch->watch_start) == start && LOADS(&ch->watch_len) == len;
}

/* Have the watcher wait for [start, start + len) to be free of write
 * locks. 0 when it does (or did: its fire may be on its way); a
 * negative errno when no thread could be started, and the caller falls
 * back to sleeping in slices. Called before every sleep, by the caller's
 * thread and the fd thread: the common case takes no lock. */
int ashm__chan_watch(ashm_chan *ch, int64_t start, int64_t len) {
        int r = LOADS(&ch->watch_error);

        if (r != 0)
                return -r;
        if (watching(ch, start, len))
                return 0;
        pthread_mutex_lock(&ch->watch_lock);
        if (watching(ch, start, len))
                goto out;
        /* A publisher that now waits for another subscriber: the thread
         * sits in the lock wait for the old one, and only leaves it
         * cancelled. */
        if (LOADS(&ch->watch_served) != LOADS(&ch->watch_req))
                watch_stop_locked(ch);
        STORES(&ch->watch_start, start);
        STORES(&ch->watch_len, len);
        __atomic_fetch_add(&ch->watch_req, 1, __ATOMIC_SEQ_CST);
        if (LOADS(&ch->watch_running)) {
                futex_wake(&ch->watch_req, 1);
                goto out;
        }
        r = ashm__chan_thread_start(&ch->watch_thread, watch_thread, ch, false);
        if (r == 0)
                STORES(&ch->watch_running, true);
out:
        pthread_mutex_unlock(&ch->watch_lock);
        return r;
}

/* ------------------------------------------------------------------ */
/* The ticker                                                          */

static struct {
        pthread_mutex_t lock;
        ashm_chan *list; /* the handles that ever slept, by tick_next */
        unsigned fork_gen;
        bool running;
        uint32_t parked; /* nobody sleeps: the thread waits for a sleeper */
} ticker = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Is any of our threads between its last look and its wake-up? With
 * the lock held. */
static bool anyone_in(void) {
        for (ashm_chan *ch = ticker.list; ch; ch = ch->tick_next)
                for (unsigned k = 0; k < CHAN_WAITERS; k++)
                        if (LOADS(&ch->waiters[k].in))
                                return true;
        return false;
}

static void *tick_thread(void *arg) {
        (void) arg;
        for (;;) {
                bool anyone;

                nanosleep(&(struct timespec) { .tv_nsec = CHAN_SLICE_NS }, NULL);
                pthread_mutex_lock(&ticker.lock);
                if (!ticker.list) {
                        ticker.running = false;
                        pthread_mutex_unlock(&ticker.lock);
                        return NULL;
                }
                for (ashm_chan *ch = ticker.list; ch; ch = ch->tick_next)
                        for (unsigned k = 0; k < CHAN_WAITERS; k++) {
                                struct chan_waiter *w = &ch->waiters[k];
                                uint32_t naps = LOADS(&w->naps);

                                /* Asleep now and at the last round, in one nap. */
                                if (LOADS(&w->in) && naps == w->tick_naps)
                                        futex_wake(__atomic_load_n(&w->word, __ATOMIC_SEQ_CST), INT32_MAX);
                                w->tick_naps = naps;
                        }
                /* Nobody sleeps: park, so an idle process is not woken
                 * 50 times a second. A sleeper marks itself in, then
                 * looks at parked (ashm__chan_tick_nudge()); we say
                 * parked, then look at the marks: one of us sees the
                 * other. */
                anyone = anyone_in();
                if (!anyone) {
                        STORES(&ticker.parked, 1);
                        if (anyone_in()) {
                                anyone = true;
                                STORES(&ticker.parked, 0);
                        }
                }
                pthread_mutex_unlock(&ticker.lock);
                while (!anyone && LOADS(&ticker.parked))
                        futex_wait(&ticker.parked, 1, -1);
        }
}

/* A sleeper, marked in, before it sleeps: wake a parked ticker. One
 * load when it is not parked. */
void ashm__chan_tick_nudge(void) {
        if (LOADS(&ticker.parked) && __atomic_exchange_n(&ticker.parked, 0, __ATOMIC_SEQ_CST))
                futex_wake(&ticker.parked, 1);
}

/* A child forked while the ticker held its lock must not inherit it
 * held; and it has neither the thread nor its parent's handles. */
static void tick_lock(void) {
        pthread_mutex_lock(&ticker.lock);
}

static void tick_unlock(void) {
        pthread_mutex_unlock(&ticker.lock);
}

static void tick_child(void) {
        ticker.list = NULL;
        ticker.running = false;
        ticker.parked = 0;
        ticker.fork_gen = ashm__fork_gen();
        pthread_mutex_unlock(&ticker.lock);
}

static void tick_atfork(void) {
        pthread_atfork(tick_lock, tick_unlock, tick_child);
}

/* Before the handle's first sleep. -errno if no thread could start:
 * the caller sleeps in slices then. */
int ashm__chan_tick_join(ashm_chan *ch) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        pthread_t t;
        int r = 0;

        if (LOADS(&ch->tick_joined))
                return 0;
        pthread_once(&once, tick_atfork);
        pthread_mutex_lock(&ticker.lock);
        if (ch->tick_joined) {
                /* The fd thread's first sleep came first. */
                pthread_mutex_unlock(&ticker.lock);
                return 0;
        }
        if (ticker.fork_gen != ashm__fork_gen()) {
                /* A child: the parent's thread and handles are not here. */
                ticker.fork_gen = ashm__fork_gen();
                ticker.list = NULL;
                ticker.running = false;
        }
        if (!ticker.running) {
                r = ashm__chan_thread_start(&t, tick_thread, NULL, true);
                ticker.running = r == 0;
        }
        if (r == 0) {
                ch->tick_next = ticker.list;
                ticker.list = ch;
                STORES(&ch->tick_joined, true);
        }
        pthread_mutex_unlock(&ticker.lock);
        return r;
}

void ashm__chan_tick_leave(ashm_chan *ch) {
        if (!LOADS(&ch->tick_joined))
                return;
        pthread_mutex_lock(&ticker.lock);
        if (ticker.fork_gen == ashm__fork_gen())
                for (ashm_chan **p = &ticker.list; *p; p = &(*p)->tick_next)
                        if (*p == ch) {
                                *p = ch->tick_next;
                                break;
                        }
        /* The last handle gone: a parked ticker wakes to end. */
        if (!ticker.list)
                ashm__chan_tick_nudge();
        pthread_mutex_unlock(&ticker.lock);
        ch->tick_joined = false;
}
