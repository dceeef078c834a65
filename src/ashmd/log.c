/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

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
