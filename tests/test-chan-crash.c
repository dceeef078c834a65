/* SPDX-License-Identifier: MIT */
/* Channels through crashes and hostile peers: kill -9 loops on every
 * role (seeds printed), a scribbler process as another uid, a fuzz run
 * over the control words, damaged headers, and two unrelated processes
 * that find the channel by its broker name. */
#include <pthread.h>
#include <sys/mman.h>

#include "test-chan.h"

ASHM_SUITE(chan_crash);

/* ------------------------------------------------------------------ */
/* kill -9                                                             */

static void sleep_ms_random(unsigned *seed, unsigned max) {
        usleep(1000 * (1 + rand_r(seed) % max));
}

/* Producers are killed at random points (half of them inside a slowly
 * written zero-copy message) and restarted; the consumer here checks
 * that each ring's stream is whole, in order, never torn. */
ASHM_TEST(chan_crash, kill9_producers) {
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

ASHM_TEST(chan_crash, kill9_consumer) {
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
ASHM_TEST(chan_crash, kill9_subscribers) {
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

ASHM_TEST(chan_crash, hostile_scribbler_process) {
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
ASHM_TEST(chan_crash, fuzz_control_words) {
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

ASHM_TEST(chan_crash, damaged_header_refused) {
        ashm_region *q = make(ASHM_CHAN_QUEUE, 64, 8, 1, 0);
        uint32_t depth = 7, version = 99;
        ashm_chan *c = NULL;

        assert_ok(ashm_region_write(q, 24, &depth, 4)); /* depth: not a power of two */
        assert_fail(ashm_chan_open(q, ASHM_CHAN_CONSUMER, 0, &c), EBADMSG);
        assert_ok(ashm_region_write(q, 8, &version, 4));
        assert_fail(ashm_chan_open(q, ASHM_CHAN_CONSUMER, 0, &c), EPROTONOSUPPORT);
        ashm_region_close(q);
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
ASHM_TEST(chan_crash, by_name_both_patterns_survive_kill9) {
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
