/* SPDX-License-Identifier: MIT */
/* ashm unpublish NAME: remove a name from ashmd. The region lives on in
 * whoever holds it; nobody new can look it up. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "ashm.h"
#include "cli.h"
#include "macro.h"

static int unpublish_args(int argc, char *argv[], const char **ret_name) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        cli_verb_help("unpublish", stdout);
                        return EXIT_SUCCESS;
                default:
                        return cli_bad_option("unpublish", c, argv);
                }
        if (optind + 1 != argc) {
                fputs("ashm unpublish: expected one NAME (see 'ashm names')\n", stderr);
                return EXIT_USAGE;
        }
        *ret_name = argv[optind];
        if (!cli_name_valid(*ret_name))
                return cli_bad_name("unpublish", *ret_name);
        return -1; /* go on */
}

int verb_unpublish(int argc, char *argv[]) {
        _cleanup_free_ char *word = NULL;
        const char *name = NULL;
        int r;

        r = unpublish_args(argc, argv, &name);
        if (r >= 0)
                return r;
        word = shell_word(name);
        if (!word) {
                fputs("ashm: out of memory\n", stderr);
                return EXIT_FAILURE;
        }
        /* A daemon started now would hold no names. */
        cli_no_autostart();
        r = ashm_unpublish(name);
        if (r == -EPERM) {
                fprintf(stderr, "ashm: only its publisher's user or root may unpublish %s\n", word);
                return EXIT_FAILURE;
        }
        if (r < 0)
                return cli_name_failed("unpublish", name, r);
        printf("unpublished %s\n", word);
        return EXIT_SUCCESS;
}
