/* SPDX-License-Identifier: MIT */
#pragma once

/* The daemon's log: one line per event on stderr (the journal, under
 * systemd), prefixed with its level. %m works as in printf(3). */

#include <stdbool.h>
#include <stdint.h>

#include "macro.h"

enum { LOG_LEVEL_ERR, LOG_LEVEL_WARNING, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

extern int log_max_level;

void log_at(int level, const char *fmt, ...) _printf_(2, 3);

#define log_error(...) log_at(LOG_LEVEL_ERR, __VA_ARGS__)
#define log_warning(...) log_at(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_info(...) log_at(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_at(LOG_LEVEL_DEBUG, __VA_ARGS__)

/* At most LOG_BURST lines per LOG_INTERVAL from one call site: a peer
 * that sends junk in a loop must not fill the disk. The first line after
 * a quiet spell says how many were suppressed. */
#define LOG_BURST 10
#define LOG_INTERVAL_USEC (UINT64_C(5) * 1000000)

struct ratelimit {
        uint64_t begin_usec;
        unsigned n;
        unsigned suppressed;
};

/* Whether this call site may log now; *ret_suppressed: lines dropped
 * since it last could. */
bool log_ratelimit(struct ratelimit *rl, unsigned *ret_suppressed);

#define log_ratelimited(level, fmt, ...)                                                                     \
        do {                                                                                                 \
                static struct ratelimit _rl;                                                                 \
                unsigned _dropped;                                                                           \
                if (log_ratelimit(&_rl, &_dropped)) {                                                        \
                        if (_dropped)                                                                        \
                                log_at(level, "(%u similar messages suppressed)", _dropped);                 \
                        log_at(level, fmt, ##__VA_ARGS__);                                                   \
                }                                                                                            \
        } while (0)

#define log_warning_ratelimited(...) log_ratelimited(LOG_LEVEL_WARNING, __VA_ARGS__)
