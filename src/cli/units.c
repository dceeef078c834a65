/* SPDX-License-Identifier: MIT */
/* Sizes and durations as people read and type them. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "macro.h"

void format_size_u64(uint64_t v, char *buf, size_t len) {
        static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
        double d = (double) v / 1024;
        size_t u = 0;

        if (v < 1024) {
                snprintf(buf, len, "%" PRIu64 " B", v);
                return;
        }
        /* 1023.96 KiB would print as "1024.0 KiB": move up first. */
        for (; d >= 1023.95 && u + 1 < ELEMENTSOF(units); u++)
                d /= 1024;
        snprintf(buf, len, "%.1f %s", d, units[u]);
}

void format_size(int64_t v, char *buf, size_t len) {
        if (v < 0)
                snprintf(buf, len, "-");
        else
                format_size_u64((uint64_t) v, buf, len);
}

/* The shift of a unit letter, either case, or 0. */
static int unit_shift(char c) {
        switch (c) {
        case 'K': case 'k': return 10;
        case 'M': case 'm': return 20;
        case 'G': case 'g': return 30;
        case 'T': case 't': return 40;
        case 'P': case 'p': return 50;
        default: return 0;
        }
}

int parse_size(const char *s, uint64_t *ret) {
        uint64_t v = 0;
        int shift = 0;

        if (*s < '0' || *s > '9')
                return -EINVAL; /* no sign, no space, no empty string */
        for (; *s >= '0' && *s <= '9'; s++) {
                if (v > (UINT64_MAX - (uint64_t) (*s - '0')) / 10)
                        return -ERANGE;
                v = v * 10 + (uint64_t) (*s - '0');
        }
        shift = unit_shift(*s);
        if (shift)
                s++;
        /* "4K", "4KiB", "4KB" and "4096B" all mean what they say. */
        if (shift && strcmp(s, "iB") == 0)
                s += 2;
        else if (*s == 'B')
                s++;
        if (*s)
                return -EINVAL;
        if (shift && v > UINT64_MAX >> shift)
                return -ERANGE;
        *ret = v << shift;
        return 0;
}

void format_duration(uint64_t ms, char *buf, size_t len) {
        static const struct {
                const char *suffix;
                uint64_t ms;
        } units[] = {
                { "d", 86400000 }, { "h", 3600000 }, { "min", 60000 }, { "s", 1000 },
        };
        size_t n = 0;
        int shown = 0;

        if (ms < 1000) {
                snprintf(buf, len, "%" PRIu64 "ms", ms);
                return;
        }
        buf[0] = '\0';
        /* The two largest units, as systemd shows a service's uptime:
         * "3d 4h", "2min 5s". */
        for (size_t i = 0; i < ELEMENTSOF(units) && shown < 2 && n < len; i++) {
                uint64_t q = ms / units[i].ms;

                if (q == 0 && shown == 0)
                        continue;
                ms -= q * units[i].ms;
                if (q > 0)
                        n += (size_t) snprintf(buf + n, len - n, "%s%" PRIu64 "%s", n ? " " : "", q,
                                               units[i].suffix);
                shown++;
        }
}
