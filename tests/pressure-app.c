/* SPDX-License-Identifier: MIT */
/*
 * ashm-pressure-app: the app of issue 9's scenarios, run by
 * tests/test-pressure-scenarios.sh and bench/bench-pressure.sh inside a
 * memory-limited cgroup, talking to an ashmd in another cgroup.
 *
 *   ashm-pressure-app [--pinned] CACHE_MIB STEP_MIB TOTAL_MIB PAUSE_MS
 *
 * Makes a CACHE_MIB region, touches every page, unpins all of it (unless
 * --pinned: the baseline that shows the OOM the daemon prevents), then
 * allocates and touches anonymous memory STEP_MIB at a time up to
 * TOTAL_MIB, sleeping PAUSE_MS between steps (0: a burst). Then pins the
 * region back. Prints one line per step, "step N MiB at T us" (CLOCK_
 * MONOTONIC), and at the end "pin=WAS_PURGED" or "pin=NOT_PURGED" and
 * "survived". Exit 0 when it got there; the OOM killer's SIGKILL
 * otherwise.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "ashm.h"

static unsigned long long now_us(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (unsigned long long) ts.tv_sec * 1000000ULL + (unsigned long long) ts.tv_nsec / 1000;
}

static void touch(char *p, size_t len) {
        long pg = sysconf(_SC_PAGESIZE);

        for (size_t i = 0; i < len; i += (size_t) pg)
                p[i] = 1;
}

int main(int argc, char **argv) {
        unsigned long cache, step, total, pause_ms;
        bool pinned = argc > 1 && strcmp(argv[1], "--pinned") == 0;
        ashm_region *region;
        void *map;
        int r;

        setvbuf(stdout, NULL, _IOLBF, 0);
        if (pinned) {
                argv++;
                argc--;
        }
        if (argc != 5) {
                fprintf(stderr, "usage: %s [--pinned] CACHE_MIB STEP_MIB TOTAL_MIB PAUSE_MS\n", argv[0]);
                return 2;
        }
        cache = strtoul(argv[1], NULL, 10);
        step = strtoul(argv[2], NULL, 10);
        total = strtoul(argv[3], NULL, 10);
        pause_ms = strtoul(argv[4], NULL, 10);
        r = ashm_region_create("pressure-cache", (uint64_t) cache << 20, 0, &region);
        if (r >= 0)
                r = ashm_region_map(region, 0, cache << 20, PROT_READ | PROT_WRITE, &map);
        if (r < 0) {
                fprintf(stderr, "region: %s\n", strerror(-r));
                return 1;
        }
        touch(map, cache << 20);
        /* Unmapped: only the region's fd keeps the pages, as a cache would. */
        ashm_region_unmap(region, map, cache << 20);
        r = ashm_region_unpin(region, 0, 0);
        if (r < 0 && !pinned) {
                fprintf(stderr, "unpin: %s\n", strerror(-r));
                return 1;
        }
        if (pinned) /* registers with the daemon all the same, pinned */
                r = ashm_region_pin(region, 0, 0);
        printf("cache %lu MiB %s at %llu us\n", cache, pinned ? "pinned" : "unpinned", now_us());
        for (unsigned long done = 0; done < total; done += step) {
                char *p = mmap(NULL, step << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

                if (p == MAP_FAILED) {
                        fprintf(stderr, "mmap: %m\n");
                        return 1;
                }
                touch(p, step << 20);
                printf("step %lu MiB at %llu us\n", done + step, now_us());
                if (pause_ms)
                        usleep((useconds_t) pause_ms * 1000);
        }
        r = ashm_region_pin(region, 0, 0);
        printf("pin=%s\n", r == ASHM_WAS_PURGED ? "WAS_PURGED" : r == 0 ? "NOT_PURGED" : strerror(-r));
        printf("survived\n");
        ashm_region_close(region);
        return 0;
}
