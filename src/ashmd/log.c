/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"

int log_max_level = LOG_LEVEL_INFO;

void log_at(int level, const char *fmt, ...) {
        /* The journal reads a <N> priority prefix; a terminal reads words. */
        static const char *const journal[] = { "<3>", "<4>", "<6>", "<7>" };
        static const char *const words[] = { "error: ", "warning: ", "", "debug: " };
        int saved = errno;
        va_list ap;

        if (level > log_max_level)
                return;
        va_start(ap, fmt);
        errno = saved; /* for %m */
        if (getenv("JOURNAL_STREAM"))
                fprintf(stderr, "%s", journal[level]);
        else
                fprintf(stderr, "ashmd: %s", words[level]);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        errno = saved;
}

bool log_ratelimit(struct ratelimit *rl, unsigned *ret_suppressed) {
        struct timespec ts;
        uint64_t now;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        now = (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
        *ret_suppressed = 0;
        if (rl->begin_usec == 0 || now - rl->begin_usec >= LOG_INTERVAL_USEC) {
                *ret_suppressed = rl->suppressed;
                rl->begin_usec = now;
                rl->n = 0;
                rl->suppressed = 0;
        }
        if (rl->n < LOG_BURST) {
                rl->n++;
                return true;
        }
        rl->suppressed++;
        return false;
}
