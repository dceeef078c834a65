/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "futex-util.h"

int64_t clock_monotonic_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int futex_wait(uint32_t *addr, uint32_t val, int64_t ns) {
        struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};

        if (syscall(SYS_futex, addr, FUTEX_WAIT, val, ns < 0 ? NULL : &ts, NULL, 0) < 0)
                return -errno;
        return 0;
}

int futex_wait_until(uint32_t *addr, uint32_t val, int64_t deadline_ns) {
        struct timespec ts = {.tv_sec = deadline_ns / 1000000000, .tv_nsec = deadline_ns % 1000000000};

        /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time, so a
         * loop over spurious wake-ups never stretches the deadline. */
        if (syscall(SYS_futex, addr, FUTEX_WAIT_BITSET, val, deadline_ns < 0 ? NULL : &ts, NULL,
                    FUTEX_BITSET_MATCH_ANY) < 0)
                return -errno;
        return 0;
}

int futex_wake(uint32_t *addr, int32_t n) {
        long r = syscall(SYS_futex, addr, FUTEX_WAKE, n, NULL, NULL, 0);

        return r < 0 ? -errno : (int) r;
}
