/* SPDX-License-Identifier: MIT */
#pragma once

/* The daemon's log: one line per event on stderr (the journal, under
 * systemd), prefixed with its level. %m works as in printf(3). */

#include "macro.h"

enum { LOG_LEVEL_ERR, LOG_LEVEL_WARNING, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

extern int log_max_level;

void log_at(int level, const char *fmt, ...) _printf_(2, 3);

#define log_error(...) log_at(LOG_LEVEL_ERR, __VA_ARGS__)
#define log_warning(...) log_at(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_info(...) log_at(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_at(LOG_LEVEL_DEBUG, __VA_ARGS__)
