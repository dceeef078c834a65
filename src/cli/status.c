/* SPDX-License-Identifier: MIT */
/* ashm status: what ashmd holds and has done, from one STATUS request.
 * Looking never starts a daemon; no daemon is exit status 3, as an
 * inactive unit is for `systemctl status`. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "macro.h"
#include "protocol.h"

#define LABEL "  %-10s "

static void print_size_line(const char *label, uint64_t v) {
        char size[32];

        format_size_u64(v, size, sizeof(size));
        printf(LABEL "%s\n", label, size);
}

/* UINT64_MAX: no limit, or a usage not known. */
static void print_cgroup(const struct proto_status_rep *s) {
        char limit[32], usage[32];

        format_size_u64(s->cgroup_usage, usage, sizeof(usage));
        format_size_u64(s->cgroup_limit, limit, sizeof(limit));
        /* No live process has a zero limit: both 0 is a daemon that has
         * not read its cgroup (yet), or cannot. */
        if ((s->cgroup_usage == UINT64_MAX && s->cgroup_limit == UINT64_MAX) ||
            (s->cgroup_limit == 0 && s->cgroup_usage == 0))
                printf(LABEL "unknown\n", "cgroup:");
        else if (s->cgroup_usage == UINT64_MAX)
                printf(LABEL "a %s limit, usage unknown\n", "cgroup:", limit);
        else if (s->cgroup_limit == UINT64_MAX)
                printf(LABEL "no limit, %s in use\n", "cgroup:", usage);
        else
                printf(LABEL "%s in use of a %s limit\n", "cgroup:", usage, limit);
}

static int print_human(const struct proto_status_rep *s) {
        _cleanup_free_ char *sock = cescape(cli_socket_path());
        _cleanup_free_ char *source = cescape(s->pressure_source);
        char uptime[64], a[32], b[32];

        if (!sock || !source)
                return -ENOMEM;
        format_duration(s->uptime_ms, uptime, sizeof(uptime));
        puts("ashmd: running");
        printf(LABEL "%" PRIu64 "\n", "pid:", s->pid);
        printf(LABEL "%s\n", "socket:", sock);
        printf(LABEL "%s\n", "uptime:", uptime);
        printf(LABEL "%" PRIu64 "\n", "regions:", s->regions);
        printf(LABEL "%" PRIu64 "\n", "clients:", s->clients);
        print_size_line("pinned:", s->pinned_bytes);
        format_size_u64(s->unpinned_bytes, a, sizeof(a));
        format_size_u64(s->max_unpinned, b, sizeof(b));
        printf(LABEL "%s (cap %s)\n", "unpinned:", a, b);
        print_size_line("purged:", s->purged_bytes);
        format_size_u64(s->purged_total, a, sizeof(a));
        printf(LABEL "%" PRIu64 " since start, %s in all\n", "purges:", s->purges, a);
        if (strcmp(s->pressure_source, "none") == 0)
                printf(LABEL "not watched\n", "pressure:");
        else
                printf(LABEL "%s, %" PRIu64 " event%s\n", "pressure:", source, s->pressure_events,
                       s->pressure_events == 1 ? "" : "s");
        print_cgroup(s);
        return 0;
}

static void json_put_u64(const char *key, uint64_t v, bool max_is_null) {
        if (max_is_null && v == UINT64_MAX)
                printf(",\"%s\":null", key);
        else
                printf(",\"%s\":%" PRIu64, key, v);
}

/* Exact numbers, bytes and milliseconds, in the order of the table. */
static void print_json(const struct proto_status_rep *s) {
        printf("{\"running\":true,\"pid\":%" PRIu64 ",\"socket\":", s->pid);
        json_put_string(cli_socket_path(), stdout);
        json_put_u64("uptime_ms", s->uptime_ms, false);
        json_put_u64("regions", s->regions, false);
        json_put_u64("clients", s->clients, false);
        json_put_u64("pinned", s->pinned_bytes, false);
        json_put_u64("unpinned", s->unpinned_bytes, false);
        json_put_u64("max_unpinned", s->max_unpinned, false);
        json_put_u64("purged", s->purged_bytes, false);
        json_put_u64("purges", s->purges, false);
        json_put_u64("purged_total", s->purged_total, false);
        fputs(",\"pressure_source\":", stdout);
        json_put_string(s->pressure_source, stdout);
        json_put_u64("pressure_events", s->pressure_events, false);
        json_put_u64("cgroup_limit", s->cgroup_limit, true);
        json_put_u64("cgroup_usage", s->cgroup_usage, true);
        puts("}");
}

static int not_running(bool json) {
        _cleanup_free_ char *sock = cescape(cli_socket_path());

        if (json) {
                fputs("{\"running\":false,\"socket\":", stdout);
                json_put_string(cli_socket_path(), stdout);
                puts("}");
        } else
                printf("ashmd: not running (socket %s)\n", sock ? sock : cli_socket_path());
        return EXIT_NOT_RUNNING;
}

int verb_status(int argc, char *argv[]) {
        struct proto_status_rep s;
        bool json = false;
        int r;

        r = cli_json_args("status", argc, argv, &json);
        if (r >= 0)
                return r;
        cli_no_autostart();
        r = cli_daemon_status(&s);
        if (r == -ECONNREFUSED)
                return not_running(json);
        if (r < 0) {
                cli_daemon_error("ask ashmd for its status", r);
                return EXIT_FAILURE;
        }
        if (json)
                print_json(&s);
        else if (print_human(&s) < 0) {
                fputs("ashm: out of memory\n", stderr);
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}
