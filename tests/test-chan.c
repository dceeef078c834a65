/* SPDX-License-Identifier: MIT */
/* Channels (chan.c, chan-open.c): both patterns and policies, in one
 * process and across exec'd peers (tests/chan-peer.c), the ashm chan
 * command, and what setup touches. The watcher and the ticker are in
 * test-chan-watch.c, kill -9, hostile peers and lookups by name in
 * test-chan-crash.c. */
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sys/mman.h>
#include <time.h>

#include "test-chan.h"

ASHM_SUITE(chan);

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
