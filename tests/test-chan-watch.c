/* SPDX-License-Identifier: MIT */
/* The watcher and the ticker (chan-watch.c): a sleeper with no time
 * limit hears its peers' kill -9, the fd thread too; a scribbled
 * sleepers word delays a sleeper, never strands it; fork() while the
 * library's threads run; read locks on the endpoint bytes. */
#include <poll.h>
#include <pthread.h>
#include <sys/mman.h>

#include "test-chan.h"

ASHM_SUITE(chan_watch);

/* ------------------------------------------------------------------ */
/* A sleeper with no time limit hears its peer's death                 */

/* Until the task whose /proc stat file is path (a thread of ours, or
 * the main thread of a peer) is asleep in the kernel (state S), 10 s at
 * most. */
static void wait_asleep(const char *path) {
        char stat[512], *close_paren;

        for (int tries = 0;; tries++) {
                FILE *f = fopen(path, "re");
                size_t n = f ? fread(stat, 1, sizeof(stat) - 1, f) : 0;

                if (f)
                        fclose(f);
                stat[n] = '\0';
                close_paren = strrchr(stat, ')');
                if (close_paren && close_paren[1] == ' ' && close_paren[2] == 'S')
                        return;
                cr_assert(tries < 10000, "%s: never asleep", path);
                usleep(1000);
        }
}

/* Each sleeper blocks with timeout -1 (a ring that is full, or empty)
 * while its one peer holds on; the peer is killed -9, and the sleeper
 * must come back with the error of its side. */
ASHM_TEST(chan_watch, untimed_sleeper_hears_kill9) {
        static const struct {
                int kind;
                const char *sleeper, *peer;
                int err;
        } cases[] = {
                { ASHM_CHAN_QUEUE, "consumer", "producer", EPIPE },
                { ASHM_CHAN_QUEUE, "producer", "consumer", ECONNRESET },
                { ASHM_CHAN_PUBSUB, "subscriber", "publisher", EPIPE },
                { ASHM_CHAN_PUBSUB, "publisher", "subscriber", ECONNRESET },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                ashm_region *r = make(cases[i].kind, TMSG_MAX, 2, 1, 0);
                pid_t peer = spawn_chan_peer(r, NULL, (const char *[]) { "hold", cases[i].peer, NULL }), sleeper;
                char path[64];
                int status;

                wait_endpoints(r, 1);
                sleeper = spawn_chan_peer(r, NULL, (const char *[]) { "block", cases[i].sleeper, NULL });
                wait_endpoints(r, 2);
                /* Asleep (the kill must find it there, not on its way). */
                snprintf(path, sizeof(path), "/proc/%d/stat", (int) sleeper);
                wait_asleep(path);
                cr_assert_eq(waitpid(sleeper, &status, WNOHANG), 0, "%s did not block", cases[i].sleeper);
                kill(peer, SIGKILL);
                reap(peer);
                status = reap_within(sleeper);
                cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == cases[i].err, "%s: status 0x%x, want %s",
                          cases[i].sleeper, status, errname(-cases[i].err));
                ashm_region_close(r);
        }
}

/* The same for the pollable fd: its thread sleeps untimed too. */
ASHM_TEST(chan_watch, poll_fd_hears_kill9) {
        ashm_region *q = make(ASHM_CHAN_QUEUE, TMSG_MAX, 4, 1, 0);
        ashm_chan *c = open_role(q, ASHM_CHAN_CONSUMER);
        int fd = assert_ok(ashm_chan_fd(c));
        struct pollfd p = { .fd = fd, .events = POLLIN };
        pid_t peer = spawn_chan_peer(q, NULL, (const char *[]) { "hold", "producer", NULL });
        uint8_t buf[TMSG_MAX];
        size_t len;

        wait_endpoints(q, 2);
        cr_assert_eq(poll(&p, 1, 20), 0, "readable with nothing to read");
        kill(peer, SIGKILL);
        reap(peer);
        cr_assert_eq(poll(&p, 1, 10000), 1, "fd never told of the producer's death");
        assert_fail(ashm_chan_recv(c, buf, sizeof(buf), &len, 0), EPIPE);
        ashm_chan_close(c);
        ashm_region_close(q);
}

struct recv_arg {
        ashm_chan *c;
        int r;
        bool done;
        pid_t tid;
};

static void *recv_thread(void *a) {
        struct recv_arg *t = a;
        char buf[64];
        size_t len;

        __atomic_store_n(&t->tid, gettid(), __ATOMIC_SEQ_CST);
        t->r = ashm_chan_recv(t->c, buf, sizeof(buf), &len, -1);
        __atomic_store_n(&t->done, true, __ATOMIC_SEQ_CST);
        return NULL;
}

/* A scribbler zeroes the word that says a consumer sleeps, so the
 * producer's commit wakes nobody: the sleeper (no time limit) still gets
 * the message, at the ticker's next rounds. Twice: the second time after
 * nobody slept for a while, so the ticker had parked and the sleeper's
 * nudge must bring it back. */
ASHM_TEST(chan_watch, zeroed_sleepers_word_delays_not_strands) {
        ashm_region *q = make(ASHM_CHAN_QUEUE, 64, 4, 1, 0);
        ashm_chan *p = open_role(q, ASHM_CHAN_PRODUCER);
        struct recv_arg t = { .c = open_role(q, ASHM_CHAN_CONSUMER) };
        volatile uint32_t *sleepers;
        pthread_t th;
        char path[64];
        void *m;

        assert_ok(ashm_region_map(q, 0, 0, PROT_READ | PROT_WRITE, &m));
        /* chan_global.data_sleepers */
        sleepers = (volatile uint32_t *) ((uint8_t *) m + ((struct test_chan_hdr *) m)->ctl_off + 4);
        ashm_chan_set_spin(t.c, 0);
        for (int round = 0; round < 2; round++) {
                if (round == 1)
                        usleep(200 * 1000); /* nobody sleeps: the ticker parks */
                t.done = false;
                t.tid = 0;
                /* (The last sleeper's decrement wrapped the zeroed word.) */
                __atomic_store_n(sleepers, 0, __ATOMIC_SEQ_CST);
                cr_assert(pthread_create(&th, NULL, recv_thread, &t) == 0);
                for (int tries = 0; __atomic_load_n(sleepers, __ATOMIC_SEQ_CST) == 0; tries++) {
                        cr_assert(tries < 10000, "the consumer never slept");
                        usleep(1000);
                }
                /* In its futex wait, so the message comes unseen. */
                snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int) __atomic_load_n(&t.tid, __ATOMIC_SEQ_CST));
                wait_asleep(path);
                __atomic_store_n(sleepers, 0, __ATOMIC_SEQ_CST);
                send_str(p, "hidden");
                for (int tries = 0; !__atomic_load_n(&t.done, __ATOMIC_SEQ_CST); tries++) {
                        cr_assert(tries < 10000, "round %d: the sleeper was stranded", round);
                        usleep(1000);
                }
                pthread_join(th, NULL);
                assert_ok(t.r);
        }
        assert_ok(ashm_region_unmap(q, m, 0));
        ashm_chan_close(p);
        ashm_chan_close(t.c);
        ashm_region_close(q);
}

/* Children forked while the library's threads run (sleepers on 32
 * channels: their watchers, the ticker taking its lock every round) each
 * sleep on a channel of their own with a timeout: none may hang on a
 * lock a thread of the parent held at the fork. (The window is the
 * ticker's round, some µs in 20 ms: a smoke test; the reviewer's 64
 * sleepers and 1500 forks hung 14 children before the atfork handlers.) */
ASHM_TEST(chan_watch, fork_while_threads_sleep) {
        enum { SLEEPERS = 32, FORKS = 300 };
        ashm_region *r[SLEEPERS];
        ashm_chan *p[SLEEPERS];
        struct recv_arg t[SLEEPERS];
        pthread_t th[SLEEPERS];

        for (int i = 0; i < SLEEPERS; i++) {
                r[i] = make(ASHM_CHAN_QUEUE, 64, 4, 1, 0);
                p[i] = open_role(r[i], ASHM_CHAN_PRODUCER);
                t[i] = (struct recv_arg) { .c = open_role(r[i], ASHM_CHAN_CONSUMER) };
                ashm_chan_set_spin(t[i].c, 0);
                cr_assert(pthread_create(&th[i], NULL, recv_thread, &t[i]) == 0);
        }
        for (int i = 0; i < FORKS; i++) {
                pid_t pid = fork();
                int status;

                cr_assert(pid >= 0);
                if (pid == 0) {
                        ashm_region *q;
                        ashm_chan *c;
                        char buf[64];
                        size_t len;

                        alarm(10);
                        if (ashm_chan_create("forked", ASHM_CHAN_QUEUE, 64, 4, 1, 0, &q) < 0 ||
                            ashm_chan_open(q, ASHM_CHAN_CONSUMER, 0, &c) < 0)
                                _exit(2);
                        ashm_chan_set_spin(c, 0);
                        _exit(ashm_chan_recv(c, buf, sizeof(buf), &len, MS) == -ETIMEDOUT ? 0 : 3);
                }
                status = reap_within(pid);
                cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "fork %d: child status 0x%x", i, status);
                usleep(rand() % 2000);
        }
        for (int i = 0; i < SLEEPERS; i++) {
                send_str(p[i], "wake");
                pthread_join(th[i], NULL);
                assert_ok(t[i].r);
                ashm_chan_close(t[i].c);
                ashm_chan_close(p[i]);
                ashm_region_close(r[i]);
        }
}

/* A read lock on an endpoint's byte is how a watcher waits; one held for
 * good by another process neither passes for an endpoint nor makes a
 * claim wait forever. */
ASHM_TEST(chan_watch, read_lock_on_endpoint_byte) {
        ashm_region *q = make(ASHM_CHAN_QUEUE, TMSG_MAX, 4, 1, 0);
        char path[64];
        int fd;
        struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = INT64_C(1) << 40, .l_len = 2 };
        ashm_chan *c, *p;
        ashm_chan_info info;

        snprintf(path, sizeof(path), "/proc/self/fd/%d", ashm_region_fd(q));
        fd = assert_ok(open(path, O_RDONLY | O_CLOEXEC));
        /* The consumer's byte and producer 0's, read-locked. */
        cr_assert(fcntl(fd, F_OFD_SETLK, &fl) == 0);
        assert_ok(ashm_chan_stat(q, &info, NULL, 0));
        cr_assert_eq(info.consumers + info.producers, 0, "a read lock taken for an endpoint");
        cr_assert_eq(ashm_chan_open(q, ASHM_CHAN_CONSUMER, 0, &c), -EBUSY);
        cr_assert_eq(ashm_chan_open(q, ASHM_CHAN_PRODUCER, 0, &p), -EBUSY);
        fl.l_type = F_UNLCK;
        cr_assert(fcntl(fd, F_OFD_SETLK, &fl) == 0);
        c = open_role(q, ASHM_CHAN_CONSUMER);
        p = open_role(q, ASHM_CHAN_PRODUCER);
        send_str(p, "through");
        recv_str(c, "through", 0);
        ashm_chan_close(p);
        ashm_chan_close(c);
        close(fd);
        ashm_region_close(q);
}
