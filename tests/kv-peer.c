/* SPDX-License-Identifier: MIT */
/*
 * ashm-test-kv-peer: the other process of the KV tests, exec'd (an
 * unrelated program, not a fork). STORE is a path, or "fd:N" for an
 * inherited fd (a region store).
 *
 *   write STORE FIRST COUNT [ACKFD]
 *                     set k<i> = int64 i * 7 for i in [FIRST, FIRST+COUNT),
 *                     and after each set returned write i as 8 bytes to
 *                     ACKFD (the kill -9 test reads them)
 *   get STORE KEY     print the int64 under KEY, or the error name
 *   see STORE KEY V   wait (up to 10 s) until KEY holds int64 V; exit 0
 *   set STORE KEY V   set KEY = int64 V
 *   hammer STORE SECS set, get, remove and compact for SECS seconds,
 *                     taking errors as they come (a peer scribbles on the
 *                     store meanwhile); print the counts to stderr
 *   scribble STORE SECS SEED
 *                     no store handle: write random values over the
 *                     writers' lock and the header's counters and arena
 *                     descriptors, and now and then anywhere in the file,
 *                     for SECS seconds (pwrite: the file is never mapped)
 *   truncate fd:N     ftruncate the store's region to 0 and to 4096;
 *                     print the errno names ("ok" if it went through)
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ashm.h"

static int open_store(const char *store, ashm_kv **kv) {
        if (strncmp(store, "fd:", 3) == 0)
                return ashm_kv_open_fd(atoi(store + 3), ASHM_KV_CREATE, kv);
        return ashm_kv_open(store, ASHM_KV_CREATE, kv);
}

static double now_s(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int scribble(const char *path, double secs, unsigned seed) {
        int fd = open(path, O_RDWR | O_CLOEXEC);
        double end = now_s() + secs;
        uint64_t n = 0;
        struct stat st;

        uint8_t saved[512];

        if (fd < 0 || pread(fd, saved, sizeof(saved), 0) != sizeof(saved))
                return 1;
        srandom(seed);
        while (now_s() < end) {
                uint64_t v = (uint64_t) random() << 33 ^ (uint64_t) random() << 2 ^ (uint64_t) random();
                off_t off;
                size_t len = 4;

                switch (random() % 32) {
                case 0: /* put the header of the start back (stale descriptors) */
                        if (pwrite(fd, saved + 68, sizeof(saved) - 68, 68) < 0)
                                return 1;
                        continue;
                case 1 ... 27: /* the lock word: a random id, free, or waiters only */
                        off = 64;
                        v = random() % 3 == 0 ? 0 : random() % 3 == 0 ? 0x80000000u : v;
                        break;
                case 28: /* the lock's magic */
                        off = 68;
                        break;
                case 29 ... 30: /* gen, serial, file size, counters, descriptors */
                        off = 128 + 8 * (random() % 48);
                        len = 8;
                        if (random() % 2)
                                v %= 1 << 20;
                        break;
                default: /* anywhere */
                        if (fstat(fd, &st) < 0 || st.st_size < 8)
                                continue;
                        off = (off_t) ((uint64_t) random() % (uint64_t) (st.st_size - 8));
                        len = 8;
                        break;
                }
                if (pwrite(fd, &v, len, off) != (ssize_t) len)
                        return 1;
                n++;
        }
        fprintf(stderr, "kv-peer: scribbled %" PRIu64 " times\n", n);
        close(fd);
        return 0;
}

static int hammer(ashm_kv *kv, double secs) {
        double end = now_s() + secs;
        uint64_t ops = 0, errors = 0;
        char key[32];
        int64_t v;

        for (uint64_t i = 0; now_s() < end; i++, ops++) {
                int r;

                snprintf(key, sizeof(key), "h%" PRIu64, i % 200);
                switch (i % 16) {
                case 0:
                        r = ashm_kv_remove(kv, key);
                        break;
                case 1:
                        r = i % 256 == 1 ? ashm_kv_compact(kv) : ashm_kv_get_int64(kv, key, &v);
                        break;
                default:
                        r = ashm_kv_set_int64(kv, key, (int64_t) i);
                }
                if (r < 0 && r != -ENOENT)
                        errors++;
        }
        fprintf(stderr, "kv-peer: %" PRIu64 " operations, %" PRIu64 " errors (last: %s)\n", ops, errors,
                ashm_kv_error_detail());
        return 0;
}

static int truncate_region(const char *store) {
        int fd = strncmp(store, "fd:", 3) == 0 ? atoi(store + 3) : -1;
        int a = ftruncate(fd, 0) < 0 ? errno : 0;
        int b = ftruncate(fd, 4096) < 0 ? errno : 0;

        printf("%s %s\n", a ? strerrorname_np(a) : "ok", b ? strerrorname_np(b) : "ok");
        return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char *argv[]) {
        ashm_kv *kv;
        char key[32];
        int r;

        if (argc >= 3 && strcmp(argv[1], "truncate") == 0)
                return truncate_region(argv[2]);
        if (argc >= 5 && strcmp(argv[1], "scribble") == 0)
                return scribble(argv[2], atof(argv[3]), (unsigned) atoi(argv[4]));
        if (argc < 4)
                return 2;
        r = open_store(argv[2], &kv);
        if (r < 0) {
                fprintf(stderr, "kv-peer: open %s: %s (%s)\n", argv[2], strerror(-r), ashm_kv_error_detail());
                return 1;
        }
        if (strcmp(argv[1], "hammer") == 0) {
                r = hammer(kv, atof(argv[3]));
                ashm_kv_close(kv);
                return r;
        }
        if (strcmp(argv[1], "write") == 0 && argc >= 5) {
                int64_t first = atoll(argv[3]), count = atoll(argv[4]);
                int ack = argc > 5 ? atoi(argv[5]) : -1;

                for (int64_t i = first; i < first + count; i++) {
                        snprintf(key, sizeof(key), "k%" PRId64, i);
                        r = ashm_kv_set_int64(kv, key, i * 7);
                        if (r < 0) {
                                fprintf(stderr, "kv-peer: set %s: %s (%s)\n", key, strerror(-r),
                                        ashm_kv_error_detail());
                                return 1;
                        }
                        if (ack >= 0 && write(ack, &i, sizeof(i)) != sizeof(i))
                                return 1;
                }
        } else if (strcmp(argv[1], "get") == 0) {
                int64_t v;

                r = ashm_kv_get_int64(kv, argv[3], &v);
                if (r < 0)
                        printf("%s\n", strerrorname_np(-r));
                else
                        printf("%" PRId64 "\n", v);
        } else if (strcmp(argv[1], "see") == 0 && argc >= 5) {
                int64_t want = atoll(argv[4]), v = 0;
                struct timespec ts = { 0, 1000000 };

                for (int i = 0; i < 10000; i++) {
                        if (ashm_kv_get_int64(kv, argv[3], &v) == 0 && v == want)
                                break;
                        nanosleep(&ts, NULL);
                }
                if (v != want)
                        return 1;
        } else if (strcmp(argv[1], "set") == 0 && argc >= 5) {
                r = ashm_kv_set_int64(kv, argv[3], atoll(argv[4]));
                if (r < 0)
                        return 1;
        } else
                return 2;
        ashm_kv_close(kv);
        return fflush(stdout) == 0 ? 0 : 1;
}
