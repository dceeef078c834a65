/* SPDX-License-Identifier: MIT */
/*
 * ashm-test-chan-peer: the other process of the channel tests
 * (test-chan*.c), exec'd with the channel's region as fd 3 and, for the
 * readers, a log region as fd 4:
 *
 *   produce N          send N test messages (0: until killed), exit 0
 *   produce-zc N       the same through reserve/commit, slowly filled
 *   publish N          the publisher's version of produce
 *   publish-zc N       and of produce-zc
 *   consume            receive until -EPIPE, checking each message and
 *                      counting it in the log under (source, seq)
 *   subscribe N        the same as a subscriber, until N messages of the
 *                      publisher's stream were seen (by position)
 *   subscribe-copy     the same through recv, for the overwrite policy
 *   scribble SEED N    write N random values at random places of the
 *                      channel's control words and slot headers
 *   lookup-send NAME M look NAME up with the broker, send M, exit
 *   hold ROLE          open as ROLE (producer, consumer, publisher,
 *                      subscriber) and sleep until killed
 *   block ROLE         open as ROLE and send (writers) or receive
 *                      (readers) with no time limit until a call fails;
 *                      exit with that errno as the status
 *
 * With ASHM_TEST_CHAN_NAME=NAME in the environment, every mode but the
 * scribbler finds the channel by NAME with the broker instead of fd 3.
 *
 * Errors go to stderr with the errno name; the exit status is 0 only if
 * every message was intact and in order.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ashm.h"
#include "chan-test.h"

#define CHAN_FD 3
#define LOG_FD 4

static int fail(const char *what, int r) {
        fprintf(stderr, "chan-peer: %s: %s\n", what, strerrorname_np(-r) ?: "?");
        return 1;
}

/* With ASHM_TEST_CHAN_NAME set, the channel is looked up by that name
 * with the broker instead, and the inherited fd closed unused: the peer
 * is then as unrelated to the test as any process. */
static ashm_chan *open_role(int role) {
        const char *name = getenv("ASHM_TEST_CHAN_NAME");
        ashm_region *region;
        ashm_chan *ch;
        int r;

        if (name) {
                close(CHAN_FD);
                r = ashm_lookup(name, ASHM_LOOKUP_WRITE, &region);
        } else
                r = ashm_region_adopt(CHAN_FD, 0, &region);

        if (r < 0) {
                fail(name ? "lookup" : "adopt", r);
                exit(1);
        }
        r = ashm_chan_open(region, role, 0, &ch);
        ashm_region_close(region);
        if (r < 0) {
                fail("open", r);
                exit(1);
        }
        return ch;
}

static int produce(int role, uint64_t n, bool zc) {
        ashm_chan *ch = open_role(role);
        uint8_t buf[TMSG_MAX];

        for (uint64_t i = 0; n == 0 || i < n; i++) {
                unsigned source;
                uint64_t seq;
                size_t len;
                void *p;
                int r;

                ashm_chan_last(ch, &source, &seq);
                len = tmsg_fill(buf, source, seq);
                if (zc) {
                        r = ashm_chan_reserve(ch, len, -1, &p);
                        if (r == -ECONNRESET) {
                                usleep(1000);
                                i--;
                                continue;
                        }
                        if (r < 0)
                                return fail("reserve", r);
                        /* Byte by byte with a pause: a kill lands
                         * inside a half-written message often. */
                        for (size_t k = 0; k < len; k++) {
                                ((uint8_t *) p)[k] = buf[k];
                                if (k % 64 == 0)
                                        usleep(1);
                        }
                        r = ashm_chan_commit(ch, len);
                } else
                        r = ashm_chan_send(ch, buf, len, -1);
                if (r == -ECONNRESET) {
                        /* The consumer died with our ring full: the
                         * test restarts it; try again meanwhile. */
                        usleep(1000);
                        i--;
                        continue;
                }
                if (r < 0)
                        return fail("send", r);
        }
        ashm_chan_close(ch);
        return 0;
}

static uint8_t *map_log(void) {
        struct stat st;
        void *p;

        if (fstat(LOG_FD, &st) < 0)
                return NULL;
        p = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, LOG_FD, 0);
        return p == MAP_FAILED ? NULL : p;
}

/* Peek, check, count in the log, release: a kill between the count and
 * the release counts the message twice, which the test allows once per
 * kill; anything else twice is a bug. */
static int read_loop(int role, uint64_t until) {
        ashm_chan *ch = open_role(role);
        uint8_t *log = map_log();
        uint64_t last[TLOG_ROWS];
        bool started[TLOG_ROWS] = { false };

        if (!log)
                return fail("log", -errno);
        for (;;) {
                const void *p;
                unsigned source;
                uint64_t seq;
                size_t len;
                int r, row;

                r = ashm_chan_peek(ch, -1, &p, &len);
                if (r == -EPIPE)
                        break;
                if (r < 0)
                        return fail("peek", r);
                ashm_chan_last(ch, &source, &seq);
                if (!tmsg_check(p, len, source, seq)) {
                        fprintf(stderr, "chan-peer: message %u/%llu damaged\n", source, (unsigned long long) seq);
                        return 1;
                }
                row = role == ASHM_CHAN_SUBSCRIBER ? ashm_chan_index(ch) : (int) source;
                if (row < 0 || row >= TLOG_ROWS || seq >= TLOG_COLS)
                        return fail("log row", -ERANGE);
                if (started[row] && seq != last[row] + 1 && role == ASHM_CHAN_CONSUMER) {
                        fprintf(stderr, "chan-peer: source %u: %llu after %llu\n", source,
                                (unsigned long long) seq, (unsigned long long) last[row]);
                        return 1;
                }
                started[row] = true;
                last[row] = seq;
                __atomic_fetch_add(&log[row * TLOG_COLS + seq], 1, __ATOMIC_SEQ_CST);
                r = ashm_chan_release(ch);
                if (r < 0)
                        return fail("release", r);
                if (until && seq + 1 >= until)
                        break;
        }
        ashm_chan_close(ch);
        return 0;
}

/* The overwrite policy: a held message may be written over, so copy it
 * out (recv drops torn copies) and count it after. */
static int read_copy_loop(void) {
        ashm_chan *ch = open_role(ASHM_CHAN_SUBSCRIBER);
        uint8_t *log = map_log(), buf[TMSG_MAX];

        if (!log)
                return fail("log", -errno);
        for (;;) {
                unsigned source;
                uint64_t seq;
                size_t len;
                int r = ashm_chan_recv(ch, buf, sizeof(buf), &len, -1);

                if (r == -EPIPE)
                        break;
                if (r < 0)
                        return fail("recv", r);
                ashm_chan_last(ch, &source, &seq);
                if (!tmsg_check(buf, len, source, seq) || seq >= TLOG_COLS) {
                        fprintf(stderr, "chan-peer: message %u/%llu damaged\n", source, (unsigned long long) seq);
                        return 1;
                }
                __atomic_fetch_add(&log[ashm_chan_index(ch) * TLOG_COLS + seq], 1, __ATOMIC_SEQ_CST);
        }
        ashm_chan_close(ch);
        return 0;
}

static int scribble(unsigned seed, unsigned n) {
        struct stat st;
        uint8_t *p;

        if (fstat(CHAN_FD, &st) < 0)
                return fail("fstat", -errno);
        p = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, CHAN_FD, 0);
        if (p == MAP_FAILED)
                return fail("mmap", -errno);
        srand(seed);
        for (unsigned i = 0; i < n; i++) {
                /* The control words (page 0 past the 128-byte header),
                 * the first slot headers, or further: aligned 8-byte
                 * words. */
                uint64_t off = 128 + (uint64_t) (rand() % 8192) / 8 * 8;
                uint64_t v = rand() % 4 == 0 ? ((uint64_t) rand() << 32 | (uint64_t) rand()) : (uint64_t) (rand() % 64);

                if (off + 8 <= (uint64_t) st.st_size)
                        __atomic_store_n((uint64_t *) (p + off), v, __ATOMIC_RELAXED);
                if (i % 16 == 0)
                        usleep(100);
        }
        return 0;
}

static int lookup_send(const char *name, const char *msg) {
        ashm_region *region;
        ashm_chan *ch;
        int r = ashm_lookup(name, ASHM_LOOKUP_WRITE, &region);

        if (r < 0)
                return fail("lookup", r);
        r = ashm_chan_open(region, ASHM_CHAN_PRODUCER, 0, &ch);
        ashm_region_close(region);
        if (r < 0)
                return fail("open", r);
        r = ashm_chan_send(ch, msg, strlen(msg), -1);
        ashm_chan_close(ch);
        return r < 0 ? fail("send", r) : 0;
}

static int role_of(const char *name) {
        static const char *const names[] = { "producer", "consumer", "publisher", "subscriber" };
        static const int roles[] = { ASHM_CHAN_PRODUCER, ASHM_CHAN_CONSUMER, ASHM_CHAN_PUBLISHER, ASHM_CHAN_SUBSCRIBER };

        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                if (strcmp(name, names[i]) == 0)
                        return roles[i];
        fprintf(stderr, "chan-peer: unknown role '%s'\n", name);
        exit(2);
}

static _Noreturn void hold(int role) {
        open_role(role);
        for (;;)
                pause();
}

/* Exits with the errno of the first call that fails: the tests want
 * the peer's death told, and to a sleeper with no timeout. */
static int block(int role) {
        ashm_chan *ch = open_role(role);
        uint8_t buf[TMSG_MAX] = { 0 };
        int r;

        do {
                size_t len;

                if (role == ASHM_CHAN_PRODUCER || role == ASHM_CHAN_PUBLISHER)
                        r = ashm_chan_send(ch, buf, 8, -1);
                else
                        r = ashm_chan_recv(ch, buf, sizeof(buf), &len, -1);
        } while (r == 0);
        ashm_chan_close(ch);
        return -r;
}

int main(int argc, char **argv) {
        const char *mode = argc > 1 ? argv[1] : "";
        uint64_t n = argc > 2 ? strtoull(argv[2], NULL, 0) : 0;

        if (strcmp(mode, "produce") == 0)
                return produce(ASHM_CHAN_PRODUCER, n, false);
        if (strcmp(mode, "produce-zc") == 0)
                return produce(ASHM_CHAN_PRODUCER, n, true);
        if (strcmp(mode, "publish") == 0)
                return produce(ASHM_CHAN_PUBLISHER, n, false);
        if (strcmp(mode, "publish-zc") == 0)
                return produce(ASHM_CHAN_PUBLISHER, n, true);
        if (strcmp(mode, "consume") == 0)
                return read_loop(ASHM_CHAN_CONSUMER, 0);
        if (strcmp(mode, "subscribe") == 0)
                return read_loop(ASHM_CHAN_SUBSCRIBER, n);
        if (strcmp(mode, "subscribe-copy") == 0)
                return read_copy_loop();
        if (strcmp(mode, "scribble") == 0 && argc > 3)
                return scribble((unsigned) n, (unsigned) strtoul(argv[3], NULL, 0));
        if (strcmp(mode, "hold") == 0 && argc > 2)
                hold(role_of(argv[2]));
        if (strcmp(mode, "block") == 0 && argc > 2)
                return block(role_of(argv[2]));
        if (strcmp(mode, "lookup-send") == 0 && argc > 3)
                return lookup_send(argv[2], argv[3]);
        fprintf(stderr, "chan-peer: unknown mode '%s'\n", mode);
        return 2;
}
