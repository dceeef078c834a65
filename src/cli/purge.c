/* SPDX-License-Identifier: MIT */
/* ashm purge: have ashmd discard unpinned memory now, as the kernel's
 * ASHMEM_PURGE_ALL_CACHES did, or only so many bytes of it. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ashm.h"
#include "cli.h"

struct purge_args {
        bool all, all_users;
        uint64_t bytes; /* 0: not given */
};

static int bad_size(const char *arg, int r) {
        if (r == -ERANGE)
                fprintf(stderr, "ashm purge: size '%s' is too large\n", arg);
        else if (r == 0)
                fputs("ashm purge: --bytes needs at least 1 byte; for everything use --all\n", stderr);
        else
                fprintf(stderr, "ashm purge: invalid size '%s'; expected bytes, or a number with K, M, G, T or P (powers of 1024), "
                        "e.g. 4096, 4K or 1.5G\n",
                        arg);
        return EXIT_USAGE;
}

static int purge_args(int argc, char *argv[], struct purge_args *a) {
        enum { OPT_ALL_USERS = 256 };
        static const struct option options[] = {
                { "all", no_argument, NULL, 'a' },
                { "bytes", required_argument, NULL, 'b' },
                { "all-users", no_argument, NULL, OPT_ALL_USERS },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c, r;

        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0)
                switch (c) {
                case 'a':
                        a->all = true;
                        break;
                case 'b':
                        r = parse_size(optarg, &a->bytes);
                        if (r < 0 || a->bytes == 0)
                                return bad_size(optarg, r);
                        break;
                case OPT_ALL_USERS:
                        a->all_users = true;
                        break;
                case 'h':
                        cli_verb_help("purge", stdout);
                        return 0;
                default:
                        return cli_bad_option("purge", c, argv);
                }
        if (optind < argc) {
                fprintf(stderr, "ashm purge: unexpected argument '%s'; see 'ashm help purge'\n", argv[optind]);
                return EXIT_USAGE;
        }
        /* Purging is not undone: say how much, never guess. */
        if (a->all == (a->bytes > 0)) {
                fprintf(stderr, "ashm purge: %s; see 'ashm help purge'\n",
                        a->all ? "--all and --bytes exclude each other" : "say how much: --all or --bytes SIZE");
                return EXIT_USAGE;
        }
        return -1; /* go on */
}

int verb_purge(int argc, char *argv[]) {
        struct purge_args a = {};
        char size[32];
        uint64_t purged = 0;
        int r;

        r = purge_args(argc, argv, &a);
        if (r >= 0)
                return r;
        /* The daemon decides (it knows the peer's uid), but a daemon
         * must not be started only to refuse us. */
        if (a.all_users && geteuid() != 0)
                r = -EPERM;
        else
                /* Root purges every user's regions, as the issue of the
                 * tool promises operators; others only their own. */
                r = ashm_purge(a.bytes, a.all_users || geteuid() == 0 ? ASHM_PURGE_ALL_USERS : 0, &purged);
        if (r == -EPERM && a.all_users) {
                fputs("ashm: only root may purge other users' regions (run without --all-users to purge "
                      "your own)\n",
                      stderr);
                return EXIT_FAILURE;
        }
        if (r < 0) {
                cli_daemon_error("purge", r);
                return EXIT_FAILURE;
        }
        format_size_u64(purged, size, sizeof(size));
        printf("purged %s\n", size);
        return EXIT_SUCCESS;
}
