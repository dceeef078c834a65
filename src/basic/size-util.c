/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "size-util.h"

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

int size_parse(const char *s, uint64_t *ret) {
        uint64_t v = 0, frac = 0, scale = 1;
        int shift;

        if (*s < '0' || *s > '9')
                return -EINVAL; /* no sign, no space, no empty string */
        for (; *s >= '0' && *s <= '9'; s++) {
                if (v > (UINT64_MAX - (uint64_t) (*s - '0')) / 10)
                        return -ERANGE;
                v = v * 10 + (uint64_t) (*s - '0');
        }
        if (*s == '.') {
                s++;
                if (*s < '0' || *s > '9')
                        return -EINVAL;
                /* Digits past the 15th cannot add a byte below 2^50. */
                for (; *s >= '0' && *s <= '9'; s++)
                        if (scale < 1000000000000000ULL) {
                                frac = frac * 10 + (uint64_t) (*s - '0');
                                scale *= 10;
                        }
        }
        shift = unit_shift(*s);
        if (shift)
                s++;
        else if (scale > 1)
                return -EINVAL; /* "1.5": a fraction of a byte */
        /* "4K", "4KiB", "4KB" and "4096B" all mean what they say. */
        if (shift && strcmp(s, "iB") == 0)
                s += 2;
        else if (*s == 'B')
                s++;
        if (*s)
                return -EINVAL;
        if (shift && v > UINT64_MAX >> shift)
                return -ERANGE;
        v <<= shift;
        /* frac / scale of a unit: frac < scale < 2^50, so frac << shift
         * may overflow; divide first, then the remainder. */
        if (frac) {
                uint64_t unit = (uint64_t) 1 << shift;
                uint64_t add = unit / scale * frac + unit % scale * frac / scale;

                if (v > UINT64_MAX - add)
                        return -ERANGE;
                v += add;
        }
        *ret = v;
        return 0;
}

void size_format(uint64_t v, char *buf, size_t len) {
        static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
        double d = (double) v / 1024;
        size_t u = 0;

        if (v < 1024) {
                snprintf(buf, len, "%" PRIu64 " B", v);
                return;
        }
        /* 1023.96 KiB would print as "1024.0 KiB": move up first. */
        for (; d >= 1023.95 && u + 1 < sizeof(units) / sizeof(units[0]); u++)
                d /= 1024;
        snprintf(buf, len, "%.1f %s", d, units[u]);
}
