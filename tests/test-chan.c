/* SPDX-License-Identifier: MIT */
/* Channels (chan.c): both patterns and policies, in one process, across
 * exec'd peers (tests/chan-peer.c), through kill -9 loops, a hostile
 * scribbler and a fuzz run over the control words. */
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sys/mman.h>
#include <time.h>

#include "ashm.h"
#include "chan-test.h"
#include "tests.h"

ASHM_SUITE(chan);

#define MS (INT64_C(1000000))

/* The start of the header (chan.h struct chan_hdr), for the tests that
 * reach past the API: the control words are at ctl_off, and ring 0's
 * tail is their first word after the 64-byte global block. */
struct test_chan_hdr {
        uint64_t magic;
        uint32_t version, kind, flags, msg_max, depth, peers;
        uint64_t stride, ctl_off, rings_off, ring_bytes, peers_off, total;
};

static int64_t clock_monotonic_ns_test(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static ashm_region *make(int kind, uint32_t msg_max, uint32_t depth, uint32_t peers, unsigned flags) {
        ashm_region *region;

        assert_ok(ashm_chan_create("test-chan", kind, msg_max, depth, peers, flags, &region));
        return region;
}

static ashm_chan *open_role(ashm_region *region, int role) {
        ashm_chan *ch;

        assert_ok(ashm_chan_open(region, role, 0, &ch));
        return ch;
}

/* Exec the peer with the channel as fd 3 and the log (if any) as fd 4;
 * as nobody (setpriv) if nobody is set and we are root. */
static pid_t spawn_chan_peer_as(ashm_region *chan, ashm_region *log, bool nobody, const char *const *argv) {
        const char *args[16] = { CHAN_PEER };
        size_t n = 0;
        pid_t pid;

        if (nobody && geteuid() == 0 && access("/usr/bin/setpriv", X_OK) == 0) {
                const char *pre[] = { "/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups" };

                for (; n < ELEMENTSOF(pre); n++)
                        args[n] = pre[n];
        }
        args[n++] = CHAN_PEER;
        for (size_t i = 0; argv[i] && i < 8; i++)
                args[n++] = argv[i];
        pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
                int c = fcntl(ashm_region_fd(chan), F_DUPFD, 10);
                int l = log ? fcntl(ashm_region_fd(log), F_DUPFD, 10) : -1;

                /* A peer never outlives a test that failed midway. */
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || c < 0 || dup2(c, 3) < 0 || (l >= 0 && dup2(l, 4) < 0))
                        _exit(127);
                execv(args[0], (char *const *) args);
                _exit(127);
        }
        return pid;
}

static pid_t spawn_chan_peer(ashm_region *chan, ashm_region *log, const char *const *argv) {
        return spawn_chan_peer_as(chan, log, false, argv);
}

static int reap(pid_t pid) {
        int status;

        cr_assert(waitpid(pid, &status, 0) == pid);
        return status;
}

static void reap_ok(pid_t pid) {
        int status = reap(pid);

        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "chan peer exited with status 0x%x", status);
}

static void send_str(ashm_chan *ch, const char *s) {
        assert_ok(ashm_chan_send(ch, s, strlen(s), 0));
}

static void recv_str(ashm_chan *ch, const char *want, int64_t timeout) {
        char buf[256];
        size_t len;

        assert_ok(ashm_chan_recv(ch, buf, sizeof(buf) - 1, &len, timeout));
        buf[len] = '\0';
        cr_assert_str_eq(buf, want);
}

static unsigned seed_from_env(void) {
        const char *s = getenv("ASHM_TEST_SEED");
        unsigned seed = s ? (unsigned) strtoul(s, NULL, 0) : (unsigned) time(NULL) ^ (unsigned) getpid();

        fprintf(stderr, "seed %u (ASHM_TEST_SEED=%u reproduces)\n", seed, seed);
        return seed;
}

/* ------------------------------------------------------------------ */
/* One process                                                         */

ASHM_TEST(chan, create_refuses_bad_geometry) {
        ashm_region *region = NULL;

        assert_fail(ashm_chan_create(NULL, 0, 64, 8, 1, 0, &region), EINVAL);
        assert_fail(ashm_chan_create(NULL, ASHM_CHAN_QUEUE, 0, 8, 1, 0, &region), EINVAL);
        assert_fail(ashm_chan_create(NULL, ASHM_CHAN_QUEUE, 64, 6, 1, 0, &region), EINVAL);
        assert_fail(ashm_chan_create(NULL, ASHM_CHAN_QUEUE, 64, 8, 0, 0, &region), EINVAL);
        assert_fail(ashm_chan_create(NULL, ASHM_CHAN_QUEUE, 64, 8, ASHM_CHAN_PEERS_MAX + 1, 0, &region), EINVAL);
        assert_fail(ashm_chan_create(NULL, ASHM_CHAN_QUEUE, 64, 8, 1, ASHM_CHAN_OVERWRITE, &region), EINVAL);
        assert_fail(ashm_chan_create(NULL, ASHM_CHAN_PUBSUB, 64, 8, 1, 1u << 7, &region), EINVAL);
        cr_assert_null(region);
}

ASHM_TEST(chan, open_checks_region_and_role) {
        ashm_region *plain, *q = make(ASHM_CHAN_QUEUE, 64, 8, 2, 0);
        ashm_chan *c = NULL, *c2 = NULL;

        assert_ok(ashm_region_create("plain", 65536, 0, &plain));
        assert_fail(ashm_chan_open(plain, ASHM_CHAN_CONSUMER, 0, &c), EBADMSG);
        cr_assert_eq(ashm_chan_is_channel(plain), 0);
        cr_assert_eq(ashm_chan_is_channel(q), 1);
        assert_fail(ashm_chan_open(q, ASHM_CHAN_PUBLISHER, 0, &c), EPROTOTYPE);
        assert_fail(ashm_chan_open(q, ASHM_CHAN_CONSUMER, 1, &c), EINVAL);
        assert_fail(ashm_chan_open(q, 9, 0, &c), EINVAL);
        c = open_role(q, ASHM_CHAN_CONSUMER);
        assert_fail(ashm_chan_open(q, ASHM_CHAN_CONSUMER, 0, &c2), EBUSY);
        /* Two producer places, so a third producer is refused. */
        ashm_chan *p1 = open_role(q, ASHM_CHAN_PRODUCER), *p2 = open_role(q, ASHM_CHAN_PRODUCER), *p3 = NULL;
        assert_fail(ashm_chan_open(q, ASHM_CHAN_PRODUCER, 0, &p3), EBUSY);
        cr_assert_eq(ashm_chan_index(p1), 0);
        cr_assert_eq(ashm_chan_index(p2), 1);
        /* A place freed is taken again. */
        ashm_chan_close(p1);
        p1 = open_role(q, ASHM_CHAN_PRODUCER);
        cr_assert_eq(ashm_chan_index(p1), 0);
        assert_fail(ashm_chan_recv(p1, NULL, 0, NULL, 0), EPROTOTYPE);
        assert_fail(ashm_chan_send(c, "x", 1, 0), EPROTOTYPE);
        ashm_chan_close(p1);
        ashm_chan_close(p2);
        ashm_chan_close(c);
        ashm_region_close(q);
        ashm_region_close(plain);
}

ASHM_TEST(chan, queue_send_recv_in_order) {
        ashm_region *q = make(ASHM_CHAN_QUEUE, 64, 4, 1, 0);
        ashm_chan *p = open_role(q, ASHM_CHAN_PRODUCER), *c = open_role(q, ASHM_CHAN_CONSUMER);
        char big[65] = { 0 }, small[2];
        size_t len = 0;

        assert_fail(ashm_chan_recv(c, small, sizeof(small), &len, 0), EAGAIN);
        assert_fail(ashm_chan_recv(c, small, sizeof(small), &len, 5 * MS), ETIMEDOUT);
        send_str(p, "one");
        send_str(p, "two");
        send_str(p, "three");
        send_str(p, "four");
        /* Full: the producer waits or is told. */
        assert_fail(ashm_chan_send(p, "five", 4, 0), EAGAIN);
        assert_fail(ashm_chan_send(p, "five", 4, 5 * MS), ETIMEDOUT);
        assert_fail(ashm_chan_send(p, big, sizeof(big), 0), EMSGSIZE);
        /* Too small a buffer leaves the message where it is. */
        assert_fail(ashm_chan_recv(c, small, sizeof(small), &len, 0), EMSGSIZE);
        cr_assert_eq(len, 3);
        recv_str(c, "one", 0);
        recv_str(c, "two", 0);
        send_str(p, "five");
        recv_str(c, "three", 0);
        recv_str(c, "four", 0);
        recv_str(c, "five", 0);
        assert_fail(ashm_chan_recv(c, small, sizeof(small), &len, 0), EAGAIN);
        ashm_chan_close(p);
        ashm_chan_close(c);
        ashm_region_close(q);
}

ASHM_TEST(chan, zero_copy_one_mib) {
        const size_t mib = 1u << 20;
        ashm_region *q = make(ASHM_CHAN_QUEUE, (uint32_t) mib, 2, 1, 0);
        ashm_chan *p = open_role(q, ASHM_CHAN_PRODUCER), *c = open_role(q, ASHM_CHAN_CONSUMER);
        const void *in;
        void *out;
        size_t len;

        assert_fail(ashm_chan_commit(p, 1), EINVAL);
        assert_ok(ashm_chan_reserve(p, mib, 0, &out));
        memset(out, 0x5a, mib);
        /* Not committed: not there. */
        assert_fail(ashm_chan_peek(c, 0, &in, &len), EAGAIN);
        assert_ok(ashm_chan_commit(p, mib));
        assert_ok(ashm_chan_peek(c, 0, &in, &len));
        cr_assert_eq(len, mib);
        cr_assert_eq(((const uint8_t *) in)[0], 0x5a);
        cr_assert_eq(((const uint8_t *) in)[mib - 1], 0x5a);
        assert_ok(ashm_chan_release(c));
        assert_fail(ashm_chan_release(c), EINVAL);
        ashm_chan_close(p);
        ashm_chan_close(c);
        ashm_region_close(q);
}

ASHM_TEST(chan, receiver_hears_producer_gone_after_drain) {
        ashm_region *q = make(ASHM_CHAN_QUEUE, 64, 4, 2, 0);
        ashm_chan *c = open_role(q, ASHM_CHAN_CONSUMER), *p;
        char buf[64];
        size_t len;

        /* No producer yet: a receiver that starts first waits. */
        assert_fail(ashm_chan_recv(c, buf, sizeof(buf), &len, 0), EAGAIN);
        p = open_role(q, ASHM_CHAN_PRODUCER);
        send_str(p, "last words");
        ashm_chan_close(p);
        recv_str(c, "last words", 0);
        assert_fail(ashm_chan_recv(c, buf, sizeof(buf), &len, 0), EPIPE);
        assert_fail(ashm_chan_recv(c, buf, sizeof(buf), &len, -1), EPIPE);
        /* A restarted producer carries on. */
        p = open_role(q, ASHM_CHAN_PRODUCER);
        send_str(p, "again");
        recv_str(c, "again", 0);
        ashm_chan_close(p);
        ashm_chan_close(c);
        ashm_region_close(q);
}

ASHM_TEST(chan, producer_hears_consumer_gone) {
        ashm_region *q = make(ASHM_CHAN_QUEUE, 64, 2, 1, 0);
        ashm_chan *p = open_role(q, ASHM_CHAN_PRODUCER), *c;

        /* No consumer yet: a producer fills the ring and is told -EAGAIN. */
        send_str(p, "a");
        send_str(p, "b");
        assert_fail(ashm_chan_send(p, "c", 1, 0), EAGAIN);
        c = open_role(q, ASHM_CHAN_CONSUMER);
        recv_str(c, "a", 0);
        ashm_chan_close(c);
        send_str(p, "c");
        assert_fail(ashm_chan_send(p, "d", 1, 0), ECONNRESET);
        assert_fail(ashm_chan_send(p, "d", 1, -1), ECONNRESET);
        /* The messages wait for the next consumer. */
        c = open_role(q, ASHM_CHAN_CONSUMER);
        recv_str(c, "b", 0);
        recv_str(c, "c", 0);
        ashm_chan_close(c);
        ashm_chan_close(p);
        ashm_region_close(q);
}

ASHM_TEST(chan, pubsub_block_holds_publisher) {
        ashm_region *ps = make(ASHM_CHAN_PUBSUB, 64, 2, 2, 0);
        ashm_chan *pub = open_role(ps, ASHM_CHAN_PUBLISHER);
        ashm_chan *s1 = open_role(ps, ASHM_CHAN_SUBSCRIBER), *s2 = open_role(ps, ASHM_CHAN_SUBSCRIBER);
        ashm_chan_info info;
        ashm_chan_peer peers[2];
        uint64_t lost;

        send_str(pub, "m0");
        send_str(pub, "m1");
        assert_fail(ashm_chan_send(pub, "m2", 2, 0), EAGAIN);
        recv_str(s1, "m0", 0);
        recv_str(s1, "m1", 0);
        /* s2 still holds m0's slot. */
        assert_fail(ashm_chan_send(pub, "m2", 2, 0), EAGAIN);
        assert_ok(ashm_chan_stat(ps, &info, peers, 2));
        cr_assert_eq(info.subscribers, 2);
        cr_assert_eq(info.publishers, 1);
        cr_assert_eq(peers[1].lag, 2);
        recv_str(s2, "m0", 0);
        send_str(pub, "m2");
        recv_str(s2, "m1", 0);
        recv_str(s2, "m2", 0);
        recv_str(s1, "m2", 0);
        assert_ok(ashm_chan_lost(s1, &lost));
        cr_assert_eq(lost, 0);
        /* A dead subscriber holds nobody back. */
        ashm_chan_close(s2);
        send_str(pub, "m3");
        send_str(pub, "m4");
        recv_str(s1, "m3", 0);
        ashm_chan_close(pub);
        recv_str(s1, "m4", 0);
        assert_fail(ashm_chan_recv(s1, NULL, 0, NULL, 0), EPIPE);
        ashm_chan_close(s1);
        ashm_region_close(ps);
}

ASHM_TEST(chan, pubsub_overwrite_counts_lost) {
        ashm_region *ps = make(ASHM_CHAN_PUBSUB, 64, 4, 1, ASHM_CHAN_OVERWRITE);
        ashm_chan *pub = open_role(ps, ASHM_CHAN_PUBLISHER), *s = open_role(ps, ASHM_CHAN_SUBSCRIBER);
        char name[16];
        uint64_t lost;

        for (int i = 0; i < 10; i++) {
                snprintf(name, sizeof(name), "m%d", i);
                send_str(pub, name);
        }
        recv_str(s, "m6", 0);
        assert_ok(ashm_chan_lost(s, &lost));
        cr_assert_eq(lost, 6);
        recv_str(s, "m7", 0);
        /* A held message written over is reported at release. */
        const void *p;
        size_t len;
        assert_ok(ashm_chan_peek(s, 0, &p, &len));
        for (int i = 10; i < 15; i++) {
                snprintf(name, sizeof(name), "m%d", i);
                send_str(pub, name);
        }
        assert_fail(ashm_chan_release(s), ESTALE);
        recv_str(s, "m11", 0);
        assert_ok(ashm_chan_lost(s, &lost));
        cr_assert_eq(lost, 6 + 1 + 2);
        ashm_chan_close(s);
        ashm_chan_close(pub);
        ashm_region_close(ps);
}

/* The permissions of the mapping that holds addr, from /proc/self/maps. */
static void mapping_perms(const void *addr, char perms[5]) {
        FILE *f = fopen("/proc/self/maps", "re");
        char line[512];

        cr_assert_not_null(f);
        strcpy(perms, "?");
        while (fgets(line, sizeof(line), f)) {
                unsigned long lo, hi;
                char p[5];

                if (sscanf(line, "%lx-%lx %4s", &lo, &hi, p) == 3 && (uintptr_t) addr >= lo && (uintptr_t) addr < hi) {
                        strcpy(perms, p);
                        break;
                }
        }
        fclose(f);
}

/* Subscribers map the messages read-only: a stray write faults in the
 * subscriber, and changes nothing others read. Their cursor page alone
 * is writable. */
ASHM_TEST(chan, subscriber_maps_messages_read_only) {
        ashm_region *ps = make(ASHM_CHAN_PUBSUB, 64, 4, 1, 0);
        ashm_chan *pub = open_role(ps, ASHM_CHAN_PUBLISHER), *s = open_role(ps, ASHM_CHAN_SUBSCRIBER);
        const void *p;
        void *w;
        size_t len;
        char perms[5];

        send_str(pub, "hello");
        assert_ok(ashm_chan_peek(s, 0, &p, &len));
        mapping_perms(p, perms);
        cr_assert_str_eq(perms, "r--s", "a subscriber's message mapping is %s", perms);
        assert_ok(ashm_chan_reserve(pub, 8, 0, &w));
        mapping_perms(w, perms);
        cr_assert_str_eq(perms, "rw-s");
        assert_ok(ashm_chan_commit(pub, 0));
        assert_ok(ashm_chan_release(s));
        ashm_chan_close(s);
        ashm_chan_close(pub);
        ashm_region_close(ps);
}

ASHM_TEST(chan, fork_child_gets_echild) {
        ashm_region *q = make(ASHM_CHAN_QUEUE, 64, 4, 1, 0);
        ashm_chan *p = open_role(q, ASHM_CHAN_PRODUCER);
        pid_t pid = fork();

        cr_assert(pid >= 0);
        if (pid == 0)
                _exit(ashm_chan_send(p, "x", 1, 0) == -ECHILD ? 0 : 1);
        reap_ok(pid);
        ashm_chan_close(p);
        ashm_region_close(q);
}

/* The threaded cases are in chan-threads.c: Criterion cannot run under
 * ThreadSanitizer, and they must. */

/* ------------------------------------------------------------------ */
/* Across processes                                                    */

ASHM_TEST(chan, processes_queue_two_producers) {
        ashm_region *q = make(ASHM_CHAN_QUEUE, TMSG_MAX, 16, 2, 0);
        ashm_chan *c = open_role(q, ASHM_CHAN_CONSUMER);
        pid_t a = spawn_chan_peer(q, NULL, (const char *[]) { "produce", "5000", NULL });
        pid_t b = spawn_chan_peer(q, NULL, (const char *[]) { "produce-zc", "300", NULL });
        uint64_t next[2] = { 0, 0 };
        uint8_t buf[TMSG_MAX];
        int r;

        /* Until both producers have come and gone and all is read. */
        for (;;) {
                unsigned source;
                uint64_t seq;
                size_t len;

                r = ashm_chan_recv(c, buf, sizeof(buf), &len, 10000 * MS);
                if (r == -EPIPE && next[0] + next[1] == 5300)
                        break;
                if (r == -EPIPE)
                        continue; /* one came and went before the other */
                assert_ok(r);
                ashm_chan_last(c, &source, &seq);
                cr_assert(source < 2 && seq == next[source], "source %u seq %" PRIu64, source, seq);
                cr_assert(tmsg_check(buf, len, source, seq), "message %u/%" PRIu64 " damaged", source, seq);
                next[source]++;
        }
        reap_ok(a);
        reap_ok(b);
        /* One ring each, or ring 0 for both when the first had gone
         * before the second came: 5300 either way, in order per ring. */
        cr_assert_eq(next[0] + next[1], 5300);
        ashm_chan_close(c);
        ashm_region_close(q);
}

static ashm_region *make_log(void) {
        ashm_region *log;

        assert_ok(ashm_region_create("test-chan-log", TLOG_SIZE, 0, &log));
        return log;
}

ASHM_TEST(chan, processes_pubsub_block_and_overwrite) {
        for (int policy = 0; policy < 2; policy++) {
                unsigned flags = policy ? ASHM_CHAN_OVERWRITE : 0;
                ashm_region *ps = make(ASHM_CHAN_PUBSUB, TMSG_MAX, 8, 3, flags), *log = make_log();
                ashm_chan_info info;
                pid_t s[3], pub;
                uint8_t *l;

                for (int i = 0; i < 3; i++)
                        s[i] = spawn_chan_peer(ps, log, (const char *[]) { policy ? "subscribe-copy" : "subscribe", "0", NULL });
                for (int tries = 0; assert_ok(ashm_chan_stat(ps, &info, NULL, 0)), info.subscribers < 3; tries++) {
                        cr_assert(tries < 5000, "subscribers did not attach");
                        usleep(1000);
                }
                pub = spawn_chan_peer(ps, NULL, (const char *[]) { "publish", "20000", NULL });
                reap_ok(pub);
                for (int i = 0; i < 3; i++)
                        reap_ok(s[i]);
                assert_ok(ashm_region_map(log, 0, 0, PROT_READ, (void **) &l));
                for (unsigned row = 0; row < 3; row++) {
                        unsigned seen = 0;

                        for (unsigned k = 0; k < 20000; k++) {
                                cr_assert(l[row * TLOG_COLS + k] <= 1, "page %u got %u twice", row, k);
                                seen += l[row * TLOG_COLS + k];
                        }
                        if (!policy)
                                cr_assert_eq(seen, 20000, "blocking policy: page %u saw %u of 20000", row, seen);
                        else
                                cr_assert(seen > 0);
                }
                assert_ok(ashm_region_unmap(log, l, 0));
                ashm_region_close(log);
                ashm_region_close(ps);
        }
}

ASHM_TEST(chan, poll_fd_wakes_on_other_process) {
        ashm_region *q = make(ASHM_CHAN_QUEUE, TMSG_MAX, 4, 1, 0);
        ashm_chan *c = open_role(q, ASHM_CHAN_CONSUMER);
        int fd = assert_ok(ashm_chan_fd(c));
        struct pollfd p = { .fd = fd, .events = POLLIN };
        uint8_t buf[TMSG_MAX];
        size_t len;
        unsigned got = 0;
        int r;

        assert_fail(ashm_chan_recv(c, buf, sizeof(buf), &len, 0), EAGAIN);
        cr_assert_eq(poll(&p, 1, 0), 0, "readable with nothing to read");
        pid_t pid = spawn_chan_peer(q, NULL, (const char *[]) { "produce", "100", NULL });
        /* Only poll and non-blocking calls from here: the fd must tell. */
        for (;;) {
                cr_assert_eq(poll(&p, 1, 10000), 1, "fd never became readable");
                while ((r = ashm_chan_recv(c, buf, sizeof(buf), &len, 0)) == 0)
                        got++;
                if (r == -EPIPE)
                        break;
                cr_assert_eq(r, -EAGAIN, "%s", errname(r));
        }
        cr_assert_eq(got, 100);
        reap_ok(pid);
        ashm_chan_close(c);
        ashm_region_close(q);
}

/* ------------------------------------------------------------------ */
/* A sleeper with no time limit hears its peer's death                 */

/* The exit status of pid, which must end within 10 s (it is told of a
 * death by the kernel; a hang is the bug this looks for). */
static int reap_within(pid_t pid) {
        int status;

        for (int tries = 0; waitpid(pid, &status, WNOHANG) == 0; tries++) {
                if (tries >= 10000) {
                        kill(pid, SIGKILL);
                        reap(pid);
                        cr_assert_fail("chan peer %d still blocked 10 s after its peer died", (int) pid);
                }
                usleep(1000);
        }
        return status;
}

static void wait_endpoints(ashm_region *r, unsigned want) {
        ashm_chan_info info;

        for (int tries = 0;; tries++) {
                assert_ok(ashm_chan_stat(r, &info, NULL, 0));
                if (info.producers + info.consumers + info.publishers + info.subscribers >= want)
                        return;
                cr_assert(tries < 5000, "endpoints did not attach");
                usleep(1000);
        }
}

/* Each sleeper blocks with timeout -1 (a ring that is full, or empty)
 * while its one peer holds on; the peer is killed -9, and the sleeper
 * must come back with the error of its side. */
ASHM_TEST(chan, untimed_sleeper_hears_kill9) {
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
                int status;

                wait_endpoints(r, 1);
                sleeper = spawn_chan_peer(r, NULL, (const char *[]) { "block", cases[i].sleeper, NULL });
                wait_endpoints(r, 2);
                usleep(20 * 1000); /* most likely asleep by now; either way it must hear */
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
ASHM_TEST(chan, poll_fd_hears_kill9) {
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
};

static void *recv_thread(void *a) {
        struct recv_arg *t = a;
        char buf[64];
        size_t len;

        t->r = ashm_chan_recv(t->c, buf, sizeof(buf), &len, -1);
        __atomic_store_n(&t->done, true, __ATOMIC_SEQ_CST);
        return NULL;
}

/* A scribbler zeroes the word that says a consumer sleeps, so the
 * producer's commit wakes nobody: the sleeper (no time limit) still gets
 * the message, at the ticker's next round. */
ASHM_TEST(chan, zeroed_sleepers_word_delays_not_strands) {
        ashm_region *q = make(ASHM_CHAN_QUEUE, 64, 4, 1, 0);
        ashm_chan *p = open_role(q, ASHM_CHAN_PRODUCER);
        struct recv_arg t = { .c = open_role(q, ASHM_CHAN_CONSUMER) };
        volatile uint32_t *sleepers;
        pthread_t th;
        void *m;

        assert_ok(ashm_region_map(q, 0, 0, PROT_READ | PROT_WRITE, &m));
        /* chan_global.data_sleepers */
        sleepers = (volatile uint32_t *) ((uint8_t *) m + ((struct test_chan_hdr *) m)->ctl_off + 4);
        ashm_chan_set_spin(t.c, 0);
        cr_assert(pthread_create(&th, NULL, recv_thread, &t) == 0);
        for (int tries = 0; __atomic_load_n(sleepers, __ATOMIC_SEQ_CST) == 0; tries++) {
                cr_assert(tries < 10000, "the consumer never slept");
                usleep(1000);
        }
        __atomic_store_n(sleepers, 0, __ATOMIC_SEQ_CST);
        send_str(p, "hidden");
        for (int tries = 0; !__atomic_load_n(&t.done, __ATOMIC_SEQ_CST); tries++) {
                cr_assert(tries < 10000, "the sleeper was stranded");
                usleep(1000);
        }
        pthread_join(th, NULL);
        assert_ok(t.r);
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
ASHM_TEST(chan, fork_while_threads_sleep) {
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
ASHM_TEST(chan, read_lock_on_endpoint_byte) {
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

/* ------------------------------------------------------------------ */
/* kill -9                                                             */

static void sleep_ms_random(unsigned *seed, unsigned max) {
        usleep(1000 * (1 + rand_r(seed) % max));
}

/* Producers are killed at random points (half of them inside a slowly
 * written zero-copy message) and restarted; the consumer here checks
 * that each ring's stream is whole, in order, never torn. */
ASHM_TEST(chan, kill9_producers) {
        unsigned seed = seed_from_env();
        ashm_region *q = make(ASHM_CHAN_QUEUE, TMSG_MAX, 8, 3, 0);
        ashm_chan *c = open_role(q, ASHM_CHAN_CONSUMER);
        pid_t prod[3];
        uint64_t next[3] = { 0 }, kills = 0;
        uint8_t buf[TMSG_MAX];
        ashm_chan_peer peers[3];
        ashm_chan_info info;

        for (int i = 0; i < 3; i++)
                prod[i] = spawn_chan_peer(q, NULL, (const char *[]) { i % 2 ? "produce-zc" : "produce", "0", NULL });
        for (int round = 0; round < 40; round++) {
                int64_t until = clock_monotonic_ns_test() + (int64_t) (1 + rand_r(&seed) % 20) * MS;

                /* Read for a while, then kill one. */
                while (clock_monotonic_ns_test() < until) {
                        unsigned source;
                        uint64_t seq;
                        size_t len;
                        int r = ashm_chan_recv(c, buf, sizeof(buf), &len, 5 * MS);

                        if (r == -ETIMEDOUT)
                                continue;
                        if (r == -EPIPE) {
                                /* Every producer is gone for now: the
                                 * victim, and the others not started yet. */
                                usleep(1000);
                                continue;
                        }
                        assert_ok(r);
                        ashm_chan_last(c, &source, &seq);
                        cr_assert(source < 3 && seq == next[source], "round %d: source %u seq %" PRIu64 " expected %" PRIu64,
                                  round, source, seq, source < 3 ? next[source] : 0);
                        cr_assert(tmsg_check(buf, len, source, seq), "round %d: message %u/%" PRIu64 " torn", round,
                                  source, seq);
                        next[source]++;
                }
                int victim = rand_r(&seed) % 3;
                kill(prod[victim], SIGKILL);
                int st = reap(prod[victim]);
                cr_assert(WIFSIGNALED(st), "round %d: producer exited by itself, status 0x%x (its stderr is above)",
                          round, st);
                kills++;
                prod[victim] = spawn_chan_peer(q, NULL, (const char *[]) { victim % 2 ? "produce-zc" : "produce", "0", NULL });
        }
        for (int i = 0; i < 3; i++) {
                kill(prod[i], SIGKILL);
                reap(prod[i]);
        }
        /* Drain: every committed message arrives, once. */
        for (;;) {
                unsigned source;
                uint64_t seq;
                size_t len;
                int r = ashm_chan_recv(c, buf, sizeof(buf), &len, 0);

                if (r == -EPIPE)
                        break;
                assert_ok(r);
                ashm_chan_last(c, &source, &seq);
                cr_assert(source < 3 && seq == next[source]);
                cr_assert(tmsg_check(buf, len, source, seq));
                next[source]++;
        }
        assert_ok(ashm_chan_stat(q, &info, peers, 3));
        for (int i = 0; i < 3; i++)
                cr_assert_eq(peers[i].position, next[i], "ring %d: %" PRIu64 " committed, %" PRIu64 " received", i,
                             peers[i].position, next[i]);
        cr_assert(next[0] + next[1] + next[2] > 0);
        fprintf(stderr, "kill9_producers: %" PRIu64 " kills, %" PRIu64 " messages\n", kills, next[0] + next[1] + next[2]);
        ashm_chan_close(c);
        ashm_region_close(q);
}

/* The consumer is killed and restarted; it counts what it gets in the
 * log under (source, seq). At the end every committed message was
 * counted once; a message counted twice is allowed only for a kill that
 * fell between the count and the release (at most one per kill). */
static void check_log(ashm_region *log, unsigned rows, const uint64_t *ends, uint64_t kills, const char *what) {
        uint64_t twice = 0;
        uint8_t *l;

        assert_ok(ashm_region_map(log, 0, 0, PROT_READ, (void **) &l));
        for (unsigned row = 0; row < rows; row++)
                for (uint64_t k = 0; k < ends[row]; k++) {
                        uint8_t n = l[row * TLOG_COLS + k];

                        cr_assert(n >= 1, "%s: row %u message %" PRIu64 " never delivered", what, row, k);
                        cr_assert(n <= 2, "%s: row %u message %" PRIu64 " delivered %u times", what, row, k, n);
                        twice += n == 2;
                }
        cr_assert(twice <= kills, "%s: %" PRIu64 " messages twice, only %" PRIu64 " kills", what, twice, kills);
        fprintf(stderr, "%s: %" PRIu64 " kills, %" PRIu64 " counted twice (killed between count and release)\n", what,
                kills, twice);
        assert_ok(ashm_region_unmap(log, l, 0));
}

ASHM_TEST(chan, kill9_consumer) {
        unsigned seed = seed_from_env();
        ashm_region *q = make(ASHM_CHAN_QUEUE, TMSG_MAX, 8, 2, 0), *log = make_log();
        pid_t prod[2], cons;
        uint64_t kills = 0, ends[2];
        bool finished = false;
        ashm_chan_peer peers[2];
        ashm_chan_info info;

        cons = spawn_chan_peer(q, log, (const char *[]) { "consume", NULL });
        prod[0] = spawn_chan_peer(q, NULL, (const char *[]) { "produce", "40000", NULL });
        prod[1] = spawn_chan_peer(q, NULL, (const char *[]) { "produce-zc", "2000", NULL });
        for (int round = 0; round < 30; round++) {
                sleep_ms_random(&seed, 15);
                kill(cons, SIGKILL);
                int st = reap(cons);
                if (!WIFSIGNALED(st)) {
                        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "consumer failed: 0x%x", st);
                        finished = true; /* it finished before we killed it */
                        break;
                }
                kills++;
                cons = spawn_chan_peer(q, log, (const char *[]) { "consume", NULL });
        }
        reap_ok(prod[0]);
        reap_ok(prod[1]);
        /* The last consumer drains and sees the producers gone. */
        if (!finished)
                reap_ok(cons);
        assert_ok(ashm_chan_stat(q, &info, peers, 2));
        ends[0] = peers[0].position;
        ends[1] = peers[1].position;
        cr_assert_eq(ends[0] + ends[1], 42000);
        cr_assert_eq(info.queued, 0);
        check_log(log, 2, ends, kills, "kill9_consumer");
        ashm_region_close(log);
        ashm_region_close(q);
}

/* Subscribers (blocking policy) are killed and restarted; a restarted
 * one takes a free page and carries on from its cursor. Every page sees
 * the whole stream: nothing lost, nothing twice beyond the kill window. */
ASHM_TEST(chan, kill9_subscribers) {
        unsigned seed = seed_from_env();
        ashm_region *ps = make(ASHM_CHAN_PUBSUB, TMSG_MAX, 8, 2, 0), *log = make_log();
        ashm_chan_info info;
        pid_t sub[2], pub;
        uint64_t kills = 0, ends[2] = { 30000, 30000 };
        bool done[2] = { false, false };

        for (int i = 0; i < 2; i++) {
                sub[i] = spawn_chan_peer(ps, log, (const char *[]) { "subscribe", "30000", NULL });
                /* One at a time, so each takes page i from the start. */
                for (int tries = 0; assert_ok(ashm_chan_stat(ps, &info, NULL, 0)), info.subscribers < (uint32_t) i + 1;
                     tries++) {
                        cr_assert(tries < 5000, "subscriber did not attach");
                        usleep(1000);
                }
        }
        pub = spawn_chan_peer(ps, NULL, (const char *[]) { "publish", "30000", NULL });
        for (int round = 0; round < 30 && !(done[0] && done[1]); round++) {
                int v = rand_r(&seed) % 2;

                sleep_ms_random(&seed, 15);
                if (done[v])
                        continue;
                kill(sub[v], SIGKILL);
                int st = reap(sub[v]);
                if (!WIFSIGNALED(st)) {
                        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "subscriber failed: 0x%x", st);
                        done[v] = true;
                        continue;
                }
                kills++;
                sub[v] = spawn_chan_peer(ps, log, (const char *[]) { "subscribe", "30000", NULL });
        }
        for (int i = 0; i < 2; i++)
                if (!done[i])
                        reap_ok(sub[i]);
        reap_ok(pub);
        check_log(log, 2, ends, kills, "kill9_subscribers");
        ashm_region_close(log);
        ashm_region_close(ps);
}

/* ------------------------------------------------------------------ */
/* Hostile peers                                                       */

static bool acceptable(int r) {
        return r >= 0 || r == -EBADMSG || r == -EAGAIN || r == -ETIMEDOUT || r == -EPIPE || r == -ECONNRESET ||
               r == -EMSGSIZE || r == -ESTALE;
}

/* Run every endpoint's calls with short timeouts against a channel that
 * something scribbles on: each call returns in bounded time with a
 * result from the documented set (ASan catches any access outside). */
static void exercise(ashm_chan *w, ashm_chan *r1, unsigned n, uint64_t *ret_badmsg) {
        uint8_t buf[TMSG_MAX];

        for (unsigned i = 0; i < n; i++) {
                const void *p;
                size_t len;
                int r;

                r = ashm_chan_send(w, buf, tmsg_fill(buf, 0, i), i % 3 ? 0 : MS);
                cr_assert(acceptable(r), "send: %s", errname(r));
                *ret_badmsg += r == -EBADMSG;
                r = ashm_chan_peek(r1, i % 3 ? 0 : MS, &p, &len);
                cr_assert(acceptable(r), "peek: %s", errname(r));
                *ret_badmsg += r == -EBADMSG;
                if (r == 0) {
                        cr_assert(len <= TMSG_MAX);
                        /* Every byte the pointer claims is inside the channel. */
                        volatile uint8_t sum = 0;
                        for (size_t k = 0; k < len; k++)
                                sum += ((const uint8_t *) p)[k];
                        r = ashm_chan_release(r1);
                        cr_assert(acceptable(r), "release: %s", errname(r));
                }
        }
}

ASHM_TEST(chan, hostile_scribbler_process) {
        unsigned seed = seed_from_env();

        for (int kind = ASHM_CHAN_QUEUE; kind <= ASHM_CHAN_PUBSUB; kind++) {
                ashm_region *region = make(kind, TMSG_MAX, 8, 2, 0);
                bool q = kind == ASHM_CHAN_QUEUE;
                ashm_chan *w = open_role(region, q ? ASHM_CHAN_PRODUCER : ASHM_CHAN_PUBLISHER);
                ashm_chan *r1 = open_role(region, q ? ASHM_CHAN_CONSUMER : ASHM_CHAN_SUBSCRIBER);
                char s[16];
                uint64_t bad = 0;
                pid_t pid;

                snprintf(s, sizeof(s), "%u", seed + (unsigned) kind);
                pid = spawn_chan_peer_as(region, NULL, true, (const char *[]) { "scribble", s, "4000", NULL });
                while (waitpid(pid, NULL, WNOHANG) == 0)
                        exercise(w, r1, 50, &bad);
                exercise(w, r1, 50, &bad);
                fprintf(stderr, "hostile_scribbler_process: kind %d: %" PRIu64 " -EBADMSG\n", kind, bad);
                ashm_chan_close(w);
                ashm_chan_close(r1);
                ashm_region_close(region);
        }
}

/* A bounded fuzz: random words into the control page, the ring's slot
 * headers and the subscriber pages, in this process, between calls. */
ASHM_TEST(chan, fuzz_control_words) {
        unsigned seed = seed_from_env();

        for (int iter = 0; iter < 400; iter++) {
                int kind = iter % 2 ? ASHM_CHAN_PUBSUB : ASHM_CHAN_QUEUE;
                ashm_region *region = make(kind, 64 + rand_r(&seed) % 200, 1u << (1 + rand_r(&seed) % 4), 2,
                                           kind == ASHM_CHAN_PUBSUB && rand_r(&seed) % 2 ? ASHM_CHAN_OVERWRITE : 0);
                bool q = kind == ASHM_CHAN_QUEUE;
                ashm_chan *w = open_role(region, q ? ASHM_CHAN_PRODUCER : ASHM_CHAN_PUBLISHER);
                ashm_chan *r1 = open_role(region, q ? ASHM_CHAN_CONSUMER : ASHM_CHAN_SUBSCRIBER);
                uint64_t size, bad = 0;
                uint8_t *m;

                assert_ok(ashm_region_get_size(region, &size));
                assert_ok(ashm_region_map(region, 0, 0, PROT_READ | PROT_WRITE, (void **) &m));
                for (int round = 0; round < 8; round++) {
                        exercise(w, r1, 4, &bad);
                        for (int k = 0; k < 4; k++) {
                                /* Mostly the control words (page 0 past the
                                 * 128-byte header) and the first slot
                                 * headers, sometimes anywhere. */
                                uint64_t off = rand_r(&seed) % 3 ? 128 + (uint64_t) (rand_r(&seed) % 4096) / 4 * 4
                                                                 : (rand_r(&seed) % size) / 4 * 4;
                                uint32_t v = rand_r(&seed) % 2 ? (uint32_t) rand_r(&seed) : (uint32_t) (rand_r(&seed) % 16);

                                if (off >= 128 && off + 4 <= size)
                                        __atomic_store_n((uint32_t *) (m + off), v, __ATOMIC_RELAXED);
                        }
                }
                assert_ok(ashm_region_unmap(region, m, 0));
                ashm_chan_close(w);
                ashm_chan_close(r1);
                /* A damaged header is refused at open. */
                ashm_region_close(region);
        }
}

ASHM_TEST(chan, damaged_header_refused) {
        ashm_region *q = make(ASHM_CHAN_QUEUE, 64, 8, 1, 0);
        uint32_t depth = 7, version = 99;
        ashm_chan *c = NULL;

        assert_ok(ashm_region_write(q, 24, &depth, 4)); /* depth: not a power of two */
        assert_fail(ashm_chan_open(q, ASHM_CHAN_CONSUMER, 0, &c), EBADMSG);
        assert_ok(ashm_region_write(q, 8, &version, 4));
        assert_fail(ashm_chan_open(q, ASHM_CHAN_CONSUMER, 0, &c), EPROTONOSUPPORT);
        ashm_region_close(q);
}

/* ------------------------------------------------------------------ */
/* By broker name, and the ashm chan command                           */

#include "run-cli.h"

ASHM_TEST(chan, unrelated_process_finds_channel_by_name) {
        struct test_daemon d;
        ashm_region *q = make(ASHM_CHAN_QUEUE, 64, 4, 1, 0);
        ashm_chan *c;

        daemon_start(&d);
        assert_ok(ashm_publish(q, "by-name", 0600, 0));
        c = open_role(q, ASHM_CHAN_CONSUMER);
        pid_t pid = spawn_chan_peer(q, NULL, (const char *[]) { "lookup-send", "by-name", "found you", NULL });
        recv_str(c, "found you", 10000 * MS);
        reap_ok(pid);
        ashm_chan_close(c);
        ashm_region_close(q);
        daemon_stop(&d);
}

static void kill_reap(pid_t pid) {
        kill(pid, SIGKILL);
        reap(pid);
}

/* Two unrelated processes, each finding the channel by its broker name
 * (not by an inherited fd), through both patterns; each side is killed
 * -9 while the other runs and comes back by name. Every message up to
 * the end arrives in order, once (twice only for a reader killed between
 * its count and its release); a reader whose writer was killed drains
 * and gets -EPIPE. */
ASHM_TEST(chan, by_name_both_patterns_survive_kill9) {
        unsigned seed = seed_from_env();
        struct test_daemon d;
        ashm_region *q = make(ASHM_CHAN_QUEUE, TMSG_MAX, 8, 2, 0), *ps = make(ASHM_CHAN_PUBSUB, TMSG_MAX, 8, 1, 0);
        ashm_region *qlog = make_log(), *pslog = make_log();
        const char *consume[] = { "consume", NULL }, *subscribe[] = { "subscribe", "0", NULL };
        ashm_chan_peer peers[2];
        ashm_chan_info info;
        uint64_t kills = 0, ends[2];
        pid_t r, w, w2;

        daemon_start(&d);
        assert_ok(ashm_publish(q, "by-name-queue", 0600, 0));
        assert_ok(ashm_publish(ps, "by-name-pubsub", 0600, 0));

        /* Queue: the consumer is killed and comes back; then a second
         * producer comes, the first is killed and comes back on its ring. */
        setenv("ASHM_TEST_CHAN_NAME", "by-name-queue", 1);
        r = spawn_chan_peer(q, qlog, consume);
        /* Slow ones (zero-copy, filled with pauses): alive when killed. */
        w = spawn_chan_peer(q, NULL, (const char *[]) { "produce-zc", "0", NULL });
        for (int round = 0; round < 3; round++, kills++) {
                sleep_ms_random(&seed, 20);
                kill_reap(r);
                r = spawn_chan_peer(q, qlog, consume);
        }
        w2 = spawn_chan_peer(q, NULL, (const char *[]) { "produce-zc", "3000", NULL });
        wait_endpoints(q, 3);
        sleep_ms_random(&seed, 20);
        kill_reap(w);
        w = spawn_chan_peer(q, NULL, (const char *[]) { "produce", "2000", NULL });
        reap_ok(w);
        reap_ok(w2);
        reap_ok(r); /* drained, then -EPIPE */
        assert_ok(ashm_chan_stat(q, &info, peers, 2));
        cr_assert_eq(info.queued, 0);
        ends[0] = peers[0].position;
        ends[1] = peers[1].position;
        check_log(qlog, 2, ends, kills, "by_name queue");

        /* Pub/sub: the subscriber is killed and takes its page over by
         * name; then both are killed, and a new publisher carries the
         * stream on for a new subscriber that takes the page over. */
        setenv("ASHM_TEST_CHAN_NAME", "by-name-pubsub", 1);
        kills = 0;
        r = spawn_chan_peer(ps, pslog, subscribe);
        wait_endpoints(ps, 1);
        w = spawn_chan_peer(ps, NULL, (const char *[]) { "publish-zc", "0", NULL });
        for (int round = 0; round < 4; round++, kills++) {
                sleep_ms_random(&seed, 20);
                kill_reap(r);
                if (round < 3)
                        r = spawn_chan_peer(ps, pslog, subscribe);
        }
        kill_reap(w);
        /* The dead subscriber's page holds the new publisher back until
         * the new subscriber takes it over; that one comes once the
         * publisher is there (a subscriber whose publisher is gone gets
         * -EPIPE at once). */
        w = spawn_chan_peer(ps, NULL, (const char *[]) { "publish", "2000", NULL });
        for (int tries = 0; assert_ok(ashm_chan_stat(ps, &info, NULL, 0)), info.publishers == 0; tries++) {
                cr_assert(tries < 5000, "publisher did not attach");
                usleep(1000);
        }
        r = spawn_chan_peer(ps, pslog, subscribe);
        reap_ok(w);
        reap_ok(r); /* drained, then -EPIPE */
        unsetenv("ASHM_TEST_CHAN_NAME");
        assert_ok(ashm_chan_stat(ps, &info, NULL, 0));
        ends[0] = info.sent;
        cr_assert_eq(info.lost, 0);
        check_log(pslog, 1, ends, kills, "by_name pubsub");

        ashm_region_close(qlog);
        ashm_region_close(pslog);
        ashm_region_close(q);
        ashm_region_close(ps);
        daemon_stop(&d);
}

static void pipe_input(int fds[2], const char *text) {
        cr_assert(pipe2(fds, O_CLOEXEC) == 0);
        cr_assert(write(fds[1], text, strlen(text)) == (ssize_t) strlen(text));
        fds[1] = safe_close(fds[1]);
}

ASHM_TEST(chan, cli_send_first_then_recv) {
        struct test_daemon d;
        struct run r;
        int in[2];

        daemon_start(&d);
        pipe_input(in, "one\ntwo\n");
        run_argv(&r, RUN_PLAIN, in[0], (const char *const[]) { ASHM_CLI, "chan", "x", "send", NULL });
        safe_close(in[0]);
        assert_run(&r, 0, "", "");
        run_done(&r);
        run_cli(&r, "chan", "x", "stat");
        assert_run(&r, 0, "depth:       2 waiting", "");
        run_done(&r);
        run_cli(&r, "chan", "x", "recv");
        assert_run(&r, 0, "one\ntwo\n", "");
        cr_assert_str_eq(r.out, "one\ntwo\n");
        run_done(&r);
        run_cli(&r, "chan", "x", "stat", "--json");
        assert_run(&r, 0, "\"kind\":\"queue\"", "");
        cr_assert_not_null(strstr(r.out, "\"queued\":0"), "%s", r.out);
        run_done(&r);
        run_cli(&r, "chan", "x", "bogus");
        assert_run(&r, 2, "", "unknown command");
        run_done(&r);
        daemon_stop(&d);
}

ASHM_TEST(chan, cli_recv_first_then_send) {
        struct test_daemon d;
        struct run r;
        char out[256] = "";
        size_t n = 0;
        int o[2], in[2];
        pid_t pid;

        daemon_start(&d);
        cr_assert(pipe2(o, O_CLOEXEC) == 0);
        pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
                int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

                if (dup2(null, 0) < 0 || dup2(o[1], 1) < 0)
                        _exit(126);
                execl(ASHM_CLI, ASHM_CLI, "chan", "y", "recv", (char *) NULL);
                _exit(127);
        }
        close(o[1]);
        /* Once the receiver has created the channel and waits on it. */
        for (int tries = 0;; tries++) {
                ashm_region *region;
                ashm_chan_info info = { 0 };

                cr_assert(tries < 10000, "the receiver never attached");
                if (ashm_lookup("y", ASHM_LOOKUP_WRITE, &region) >= 0) {
                        (void) ashm_chan_stat(region, &info, NULL, 0);
                        ashm_region_close(region);
                        if (info.consumers == 1)
                                break;
                }
                usleep(1000);
        }
        pipe_input(in, "one\ntwo\n");
        run_argv(&r, RUN_PLAIN, in[0], (const char *const[]) { ASHM_CLI, "chan", "y", "send", NULL });
        safe_close(in[0]);
        assert_run(&r, 0, "", "");
        run_done(&r);
        for (ssize_t k; (k = read(o[0], out + n, sizeof(out) - 1 - n)) > 0;)
                n += (size_t) k;
        out[n] = '\0';
        close(o[0]);
        reap_ok(pid);
        cr_assert_str_eq(out, "one\ntwo\n");
        daemon_stop(&d);
}

ASHM_TEST(chan, cli_raw_framing) {
        struct test_daemon d;
        struct run r;
        static const char framed[] = "\003\000\000\000a\nb\000\000\000\000";
        int in[2];

        daemon_start(&d);
        cr_assert(pipe2(in, O_CLOEXEC) == 0);
        cr_assert(write(in[1], framed, sizeof(framed) - 1) == sizeof(framed) - 1);
        in[1] = safe_close(in[1]);
        run_argv(&r, RUN_PLAIN, in[0], (const char *const[]) { ASHM_CLI, "chan", "z", "send", "--raw", NULL });
        safe_close(in[0]);
        assert_run(&r, 0, "", "");
        run_done(&r);
        run_cli(&r, "chan", "z", "recv", "--raw");
        assert_run(&r, 0, "", "");
        cr_assert_eq(r.out_len, sizeof(framed) - 1);
        cr_assert(memcmp(r.out, framed, r.out_len) == 0);
        run_done(&r);
        daemon_stop(&d);
}

ASHM_TEST(chan, ls_shows_channels) {
        ashm_region *q = make(ASHM_CHAN_QUEUE, 64, 4, 1, 0), *plain;
        char want[128];
        struct run r;

        assert_ok(ashm_region_create("not-a-channel", 4096, 0, &plain));
        run_cli(&r, "ls", "--json");
        assert_run(&r, 0, "", "");
        snprintf(want, sizeof(want), "{\"pid\":%d,", (int) getpid());
        for (char *line = strtok(r.out, "\n"); line; line = strtok(NULL, "\n")) {
                if (!strstr(line, want))
                        continue;
                if (strstr(line, "\"name\":\"test-chan\""))
                        cr_assert_not_null(strstr(line, "\"kind\":\"channel\""), "%s", line);
                if (strstr(line, "\"name\":\"not-a-channel\""))
                        cr_assert_null(strstr(line, "\"kind\":\"channel\""), "%s", line);
        }
        run_done(&r);
        run_cli(&r, "ls");
        assert_run(&r, 0, "test-chan (channel)", "");
        cr_assert_null(strstr(r.out, "not-a-channel (channel)"));
        run_done(&r);
        ashm_region_close(plain);
        ashm_region_close(q);
}

/* ------------------------------------------------------------------ */
/* Setup: what create and attach touch                                 */

static uint64_t allocated(ashm_region *region) {
        struct stat st;

        cr_assert(fstat(ashm_region_fd(region), &st) == 0);
        return (uint64_t) st.st_blocks * 512;
}

/* Create and attach allocate page 0 (header and control words) and
 * nothing else: the rings stay holes until a message is written, each
 * subscriber's page until it attaches. */
ASHM_TEST(chan, setup_allocates_page_zero_only) {
        ashm_region *q = make(ASHM_CHAN_QUEUE, 4096, 64, 1, 0), *ps = make(ASHM_CHAN_PUBSUB, 4096, 64, 4, 0);
        ashm_chan *p = open_role(q, ASHM_CHAN_PRODUCER), *c = open_role(q, ASHM_CHAN_CONSUMER);
        ashm_chan *pub = open_role(ps, ASHM_CHAN_PUBLISHER), *s = open_role(ps, ASHM_CHAN_SUBSCRIBER);

        cr_assert_eq(allocated(q), 4096, "queue: %" PRIu64 " bytes allocated by setup", allocated(q));
        cr_assert_eq(allocated(ps), 2 * 4096, "pub/sub: %" PRIu64 " bytes allocated by setup", allocated(ps));
        send_str(p, "one");
        recv_str(c, "one", 0);
        send_str(pub, "two");
        recv_str(s, "two", 0);
        ashm_chan_close(s);
        ashm_chan_close(pub);
        ashm_chan_close(c);
        ashm_chan_close(p);
        ashm_region_close(ps);
        ashm_region_close(q);
}

/* The other open path: a region this process did not create (a dup, a
 * read-only fd) has its size and access mode asked from the kernel; a
 * read-only holder is a subscriber only. */
ASHM_TEST(chan, open_through_dup_and_read_only_fd) {
        ashm_region *ps = make(ASHM_CHAN_PUBSUB, 64, 8, 2, 0), *dup, *ro;
        ashm_chan *pub, *s, *x = NULL;
        char path[64];
        int fd;

        assert_ok(ashm_region_dup(ps, &dup));
        snprintf(path, sizeof(path), "/proc/self/fd/%d", ashm_region_fd(ps));
        fd = open(path, O_RDONLY | O_CLOEXEC);
        cr_assert(fd >= 0);
        assert_ok(ashm_region_adopt(fd, 0, &ro));
        assert_fail(ashm_chan_open(ro, ASHM_CHAN_PUBLISHER, 0, &x), EPERM);
        cr_assert_null(x);
        s = open_role(dup, ASHM_CHAN_SUBSCRIBER);
        pub = open_role(dup, ASHM_CHAN_PUBLISHER);
        ashm_chan *rs = open_role(ro, ASHM_CHAN_SUBSCRIBER);
        send_str(pub, "both");
        recv_str(s, "both", 0);
        recv_str(rs, "both", 0);
        ashm_chan_close(rs);
        ashm_chan_close(pub);
        ashm_chan_close(s);
        ashm_region_close(ro);
        ashm_region_close(dup);
        ashm_region_close(ps);
}

/* A writer killed between its commit (the slot's seq) and its tail
 * store, made by hand: its successor finds the committed slot past the
 * tail (attach reads that seq through the fd) and moves the tail over
 * it, so the message is delivered once and not written over. */
ASHM_TEST(chan, restarted_writer_moves_tail_over_cut_commit) {
        for (int kind = ASHM_CHAN_QUEUE; kind <= ASHM_CHAN_PUBSUB; kind++) {
                bool q = kind == ASHM_CHAN_QUEUE;
                ashm_region *region = make(kind, 64, 8, 1, 0);
                ashm_chan *r = open_role(region, q ? ASHM_CHAN_CONSUMER : ASHM_CHAN_SUBSCRIBER);
                ashm_chan *w = open_role(region, q ? ASHM_CHAN_PRODUCER : ASHM_CHAN_PUBLISHER);
                struct test_chan_hdr h;
                uint64_t *tail;
                uint8_t *m;

                assert_ok(ashm_region_read(region, 0, &h, sizeof(h)));
                assert_ok(ashm_region_map(region, 0, 0, PROT_READ | PROT_WRITE, (void **) &m));
                tail = (uint64_t *) (m + h.ctl_off + 64);
                send_str(w, "first");
                cr_assert_eq(__atomic_load_n(tail, __ATOMIC_ACQUIRE), 1);
                ashm_chan_close(w);
                __atomic_store_n(tail, 0, __ATOMIC_RELEASE);
                w = open_role(region, q ? ASHM_CHAN_PRODUCER : ASHM_CHAN_PUBLISHER);
                cr_assert_eq(__atomic_load_n(tail, __ATOMIC_ACQUIRE), 1, "kind %d: the tail stayed behind", kind);
                send_str(w, "second");
                recv_str(r, "first", 0);
                recv_str(r, "second", 0);
                assert_fail(ashm_chan_recv(r, NULL, 0, NULL, 0), EAGAIN);
                assert_ok(ashm_region_unmap(region, m, 0));
                ashm_chan_close(w);
                ashm_chan_close(r);
                ashm_region_close(region);
        }
}
