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
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ashm.h"

static int open_store(const char *store, ashm_kv **kv) {
        if (strncmp(store, "fd:", 3) == 0)
                return ashm_kv_open_fd(atoi(store + 3), ASHM_KV_CREATE, kv);
        return ashm_kv_open(store, ASHM_KV_CREATE, kv);
}

int main(int argc, char *argv[]) {
        ashm_kv *kv;
        char key[32];
        int r;

        if (argc < 4)
                return 2;
        r = open_store(argv[2], &kv);
        if (r < 0) {
                fprintf(stderr, "kv-peer: open %s: %s (%s)\n", argv[2], strerror(-r), ashm_kv_error_detail());
                return 1;
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
