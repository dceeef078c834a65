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
#include "size-util.h"

void format_size_u64(uint64_t v, char *buf, size_t len) {
        size_format(v, buf, len);
}

void format_size(int64_t v, char *buf, size_t len) {
        if (v < 0)
                snprintf(buf, len, "-");
        else
                format_size_u64((uint64_t) v, buf, len);
}

int parse_size(const char *s, uint64_t *ret) {
        return size_parse(s, ret);
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
