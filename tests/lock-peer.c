/* SPDX-License-Identifier: MIT */
/*
 * ashm-test-lock-peer: the other process of the lock tests (test-lock.c),
 * exec'd. FD is an inherited region fd; the mutex is at offset 0 and the
 * data it guards at 64: a counter (u64) and a "half-written" flag (u32).
 *
 *   count FD N        N times: lock, flag = 1, counter += 1 (a read and a
 *                     write, not atomic), flag = 0, unlock. Exit 3 if a
 *                     lock found the flag set without OWNER_DIED.
 *   forever FD ACKFD  as count, without end; writes a byte to ACKFD after
 *                     the first lock (the kill -9 test kills it anywhere)
 *   hold FD ACKFD     lock, write a byte to ACKFD, sleep until killed
 *   hammer FD SECS    lock (100 ms timeout), count, unlock, for SECS
 *                     seconds, taking errors as they come; counts to stderr
 *   scribble FD SECS SEED
 *                     write random values over the mutex for SECS seconds
 *   wait FD EXPECTED  ashm_wait() on the word at 128 while it holds
 *                     EXPECTED (10 s limit); print what it returned and
 *                     the word's value
 *   threads new N [shared]
 *                     a region of its own; 4 threads with a handle each
 *                     (not with "shared"), then 4 sharing one, each
 *                     counting N times under the
 *                     mutex (a plain increment: ThreadSanitizer's case,
 *                     as Criterion's runner does not start under TSan)
 */
#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "ashm.h"

#define COUNTER 64
#define FLAG 72
#define WORD 128

static double now_s(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* One turn of the counter under the lock; 3 if the owner-died rule broke. */
static int turn(ashm_mutex *m, uint8_t *base, int64_t timeout_ns, int work) {
        volatile uint64_t *counter = (volatile uint64_t *) (base + COUNTER);
        volatile uint32_t *flag = (volatile uint32_t *) (base + FLAG);
        int r = ashm_mutex_lock(m, timeout_ns);

        if (r < 0)
                return r;
        /* A half-written flag is only ever met with OWNER_DIED (an owner
         * may also die holding the lock outside the flag's window). */
        if (*flag != 0 && r != ASHM_MUTEX_OWNER_DIED) {
                fprintf(stderr, "lock-peer: lock returned %d with the flag %s\n", r, *flag ? "set" : "clear");
                return 3;
        }
        *flag = 1;
        *counter = *counter + 1;
        for (volatile int k = 0; k < work; k++) /* a longer half-written window */
                ;
        *flag = 0;
        r = ashm_mutex_unlock(m);
        return r < 0 ? r : 0;
}

static int scribble(uint8_t *base, double secs, unsigned seed) {
        volatile uint32_t *w = (volatile uint32_t *) base;
        double end = now_s() + secs;
        uint64_t n = 0;

        srandom(seed);
        while (now_s() < end) {
                uint32_t v = (uint32_t) random() ^ (uint32_t) random() << 16;

                switch (random() % 8) {
                case 0:
                        w[1] = v; /* the magic */
                        break;
                case 1:
                        w[1] = 0x4b434f4c; /* the magic back */
                        break;
                case 2:
                        w[0] = 0;
                        break;
                default:
                        w[0] = v;
                }
                n++;
        }
        fprintf(stderr, "lock-peer: scribbled %" PRIu64 " times\n", n);
        return 0;
}

struct contend {
        ashm_region *region;
        ashm_mutex *shared; /* NULL: each thread opens its own */
        uint64_t *counter;
        long n;
};

static void *contend_thread(void *p) {
        struct contend *c = p;
        ashm_mutex *m = c->shared;

        if (!m && ashm_mutex_open(c->region, 0, 0, &m) < 0)
                return (void *) 1;
        for (long i = 0; i < c->n; i++) {
                if (ashm_mutex_lock(m, -1) != 0)
                        return (void *) 2;
                (*c->counter)++;
                if (ashm_mutex_unlock(m) != 0)
                        return (void *) 3;
        }
        if (!c->shared)
                ashm_mutex_close(m);
        return NULL;
}

static int threads(ashm_region *region, uint8_t *base, long n, bool shared_only) {
        struct contend c = { region, NULL, (uint64_t *) (base + COUNTER), n };
        pthread_t t[4];
        int r = 0;

        for (int round = shared_only; round < 2; round++) {
                if (round == 1 && ashm_mutex_open(region, 0, 0, &c.shared) < 0)
                        return 1;
                for (int i = 0; i < 4; i++)
                        if (pthread_create(&t[i], NULL, contend_thread, &c) != 0)
                                return 1;
                for (int i = 0; i < 4; i++) {
                        void *ret;

                        if (pthread_join(t[i], &ret) != 0 || ret)
                                r = 1;
                }
        }
        ashm_mutex_close(c.shared);
        printf("%" PRIu64 "\n", *c.counter);
        return r == 0 && *c.counter == (uint64_t) ((shared_only ? 4 : 8) * n) ? 0 : 1;
}

int main(int argc, char *argv[]) {
        ashm_region *region;
        ashm_mutex *m = NULL;
        uint8_t *base;
        int r;

        if (argc < 3)
                return 2;
        if (strcmp(argv[2], "new") == 0) {
                r = ashm_region_create("lock-peer", 8192, 0, &region);
                if (r == 0)
                        r = ashm_mutex_init(region, 0, 0);
                if (r == 0)
                        r = ashm_region_map(region, 0, 4096, PROT_READ | PROT_WRITE, (void **) &base);
                if (r < 0 || argc < 4 || strcmp(argv[1], "threads") != 0)
                        return 2;
                r = threads(region, base, atol(argv[3]), argc > 4 && strcmp(argv[4], "shared") == 0);
                ashm_region_close(region);
                return r;
        }
        r = ashm_region_adopt(atoi(argv[2]), 0, &region);
        if (r == 0)
                r = ashm_region_map(region, 0, 4096, PROT_READ | PROT_WRITE, (void **) &base);
        if (r == 0 && strcmp(argv[1], "scribble") != 0 && strcmp(argv[1], "wait") != 0)
                r = ashm_mutex_open(region, 0, 0, &m);
        if (r < 0) {
                fprintf(stderr, "lock-peer: setting up: %s\n", strerror(-r));
                return 1;
        }
        if (strcmp(argv[1], "count") == 0 && argc >= 4) {
                for (long i = 0, n = atol(argv[3]); i < n; i++) {
                        r = turn(m, base, -1, 0);
                        if (r != 0) {
                                fprintf(stderr, "lock-peer: count: %d (%s)\n", r, r < 0 ? strerror(-r) : "");
                                return r == 3 ? 3 : 1;
                        }
                }
        } else if (strcmp(argv[1], "forever") == 0 && argc >= 4) {
                for (long i = 0;; i++) {
                        r = turn(m, base, -1, 300);
                        if (r != 0)
                                return r == 3 ? 3 : 1;
                        if (i == 0 && write(atoi(argv[3]), "1", 1) != 1)
                                return 1;
                }
        } else if (strcmp(argv[1], "hold") == 0 && argc >= 4) {
                r = ashm_mutex_lock(m, -1);
                if (r < 0 || write(atoi(argv[3]), "L", 1) != 1)
                        return 1;
                for (;;)
                        pause();
        } else if (strcmp(argv[1], "hammer") == 0 && argc >= 4) {
                double end = now_s() + atof(argv[3]);
                uint64_t ok = 0, errors = 0;

                while (now_s() < end) {
                        r = turn(m, base, 100 * 1000 * 1000, 0);
                        if (r == 0)
                                ok++;
                        else {
                                errors++;
                                if (r == -EPERM || r == 3)
                                        continue; /* the scribbler took the word, or cleared the flag's meaning */
                        }
                }
                fprintf(stderr, "lock-peer: %" PRIu64 " turns, %" PRIu64 " errors\n", ok, errors);
        } else if (strcmp(argv[1], "scribble") == 0 && argc >= 5) {
                r = scribble(base, atof(argv[3]), (unsigned) atoi(argv[4]));
        } else if (strcmp(argv[1], "wait") == 0 && argc >= 4) {
                uint32_t *word = (uint32_t *) (base + WORD);

                r = ashm_wait(word, (uint32_t) strtoul(argv[3], NULL, 0), INT64_C(10000000000));
                printf("%d %" PRIu32 "\n", r, __atomic_load_n(word, __ATOMIC_ACQUIRE));
        } else
                return 2;
        ashm_mutex_close(m);
        ashm_region_close(region);
        return fflush(stdout) == 0 ? 0 : 1;
}
