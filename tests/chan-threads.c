/* SPDX-License-Identifier: MIT */
/*
 * The threaded channel cases, as a plain program printing TAP: they are
 * meant for ThreadSanitizer (meson setup -Db_sanitize=thread), which
 * Criterion's runner cannot start under (Criterion issue #274). Each
 * case checks every message (tmsg_check) and its order per source.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ashm.h"
#include "chan-test.h"

#define N 20000

struct thread_arg {
        ashm_region *region;
        int role;
        unsigned n;
        bool use_fd;
        int result;
};

static void *writer_thread(void *a) {
        struct thread_arg *t = a;
        ashm_chan *ch;
        uint8_t buf[TMSG_MAX];

        t->result = ashm_chan_open(t->region, t->role, 0, &ch);
        if (t->result < 0)
                return NULL;
        for (unsigned i = 0; i < t->n && t->result >= 0; i++) {
                unsigned source;
                uint64_t seq;

                ashm_chan_last(ch, &source, &seq);
                t->result = ashm_chan_send(ch, buf, tmsg_fill(buf, source, seq), -1);
        }
        ashm_chan_close(ch);
        return NULL;
}

/* Receive t->n messages: blocking calls, or poll() on the endpoint's fd
 * and non-blocking calls (use_fd). */
static void *reader_thread(void *a) {
        struct thread_arg *t = a;
        ashm_chan *ch;
        uint8_t buf[TMSG_MAX];
        uint64_t next[TLOG_ROWS] = { 0 };
        struct pollfd p = { .events = POLLIN };

        t->result = ashm_chan_open(t->region, t->role, 0, &ch);
        if (t->result < 0)
                return NULL;
        ashm_chan_set_spin(ch, 0); /* sleep at once: exercise the futex */
        if (t->use_fd) {
                p.fd = ashm_chan_fd(ch);
                if (p.fd < 0) {
                        t->result = p.fd;
                        goto out;
                }
        }
        for (unsigned got = 0; got < t->n;) {
                unsigned source;
                uint64_t seq;
                size_t len;

                t->result = ashm_chan_recv(ch, buf, sizeof(buf), &len, t->use_fd ? 0 : -1);
                if (t->result == -EAGAIN && t->use_fd) {
                        if (poll(&p, 1, 10000) != 1) {
                                t->result = -ETIMEDOUT;
                                break;
                        }
                        continue;
                }
                if (t->result < 0)
                        break;
                ashm_chan_last(ch, &source, &seq);
                if (source >= TLOG_ROWS || seq != next[source] || !tmsg_check(buf, len, source, seq)) {
                        t->result = -EBADMSG;
                        break;
                }
                next[source]++;
                got++;
        }
out:
        ashm_chan_close(ch);
        return NULL;
}

static int queue_three_producers(bool use_fd) {
        ashm_region *q;
        struct thread_arg prod[3], cons = { .role = ASHM_CHAN_CONSUMER, .n = 3 * N, .use_fd = use_fd };
        pthread_t tp[3], tc;
        int r = ashm_chan_create("threads", ASHM_CHAN_QUEUE, TMSG_MAX, 8, 3, 0, &q);

        if (r < 0)
                return r;
        cons.region = q;
        pthread_create(&tc, NULL, reader_thread, &cons);
        for (int i = 0; i < 3; i++) {
                prod[i] = (struct thread_arg) { q, ASHM_CHAN_PRODUCER, N, false, 0 };
                pthread_create(&tp[i], NULL, writer_thread, &prod[i]);
        }
        for (int i = 0; i < 3; i++) {
                pthread_join(tp[i], NULL);
                if (prod[i].result < 0)
                        r = prod[i].result;
        }
        pthread_join(tc, NULL);
        if (cons.result < 0)
                r = cons.result;
        ashm_region_close(q);
        return r;
}

static int pubsub_two_subscribers(unsigned flags) {
        ashm_region *ps;
        struct thread_arg pub, sub[2];
        ashm_chan_info info;
        pthread_t tp, ts[2];
        int r = ashm_chan_create("threads", ASHM_CHAN_PUBSUB, TMSG_MAX, 8, 2, flags, &ps);

        if (r < 0)
                return r;
        pub = (struct thread_arg) { ps, ASHM_CHAN_PUBLISHER, N, false, 0 };
        for (int i = 0; i < 2; i++) {
                sub[i] = (struct thread_arg) { ps, ASHM_CHAN_SUBSCRIBER, N, i == 1, 0 };
                pthread_create(&ts[i], NULL, reader_thread, &sub[i]);
        }
        /* Not before both have their page: they start at 0. */
        for (int tries = 0; (r = ashm_chan_stat(ps, &info, NULL, 0)) >= 0 && info.subscribers < 2; tries++) {
                if (tries > 10000)
                        return -ETIMEDOUT;
                usleep(1000);
        }
        pthread_create(&tp, NULL, writer_thread, &pub);
        pthread_join(tp, NULL);
        if (pub.result < 0)
                r = pub.result;
        for (int i = 0; i < 2; i++) {
                pthread_join(ts[i], NULL);
                if (sub[i].result < 0)
                        r = sub[i].result;
        }
        ashm_region_close(ps);
        return r;
}

static int failed;

static void report(int n, const char *name, int r) {
        printf("%s %d - %s%s%s\n", r < 0 ? "not ok" : "ok", n, name, r < 0 ? ": " : "",
               r < 0 ? strerrorname_np(-r) : "");
        failed |= r < 0;
}

int main(void) {
        printf("1..3\n");
        report(1, "queue, three producer threads, blocking consumer", queue_three_producers(false));
        report(2, "queue, three producer threads, consumer on poll()", queue_three_producers(true));
        report(3, "pub/sub blocking, two subscribers (one on poll())", pubsub_two_subscribers(0));
        return failed;
}
