/* SPDX-License-Identifier: MIT */
/* What the commands that share regions by name (publish, cat NAME,
 * unpublish, names) have in common: checking a name before asking
 * ashmd, and saying why a request about a name failed. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ashm.h"
#include "cli.h"
#include "macro.h"
#include "protocol.h"

/* The daemon's rule, checked here too, so that a bad name is a usage
 * error that says why, not an EINVAL from afar. */
bool cli_name_valid(const char *name) {
        return proto_name_valid(name);
}

int cli_bad_name(const char *verb, const char *name) {
        _cleanup_free_ char *shown = cescape(name);
        size_t n = strlen(name);

        if (n == 0)
                fprintf(stderr, "ashm %s: a name cannot be empty\n", verb);
        else if (n > ASHM_PUBLISH_NAME_MAX)
                fprintf(stderr, "ashm %s: a name is at most %d bytes; this one has %zu\n", verb,
                        ASHM_PUBLISH_NAME_MAX, n);
        else
                fprintf(stderr, "ashm %s: invalid name '%s': a name cannot hold control characters\n", verb,
                        shown ? shown : "?");
        return EXIT_USAGE;
}

int cli_name_failed(const char *doing, const char *name, int r) {
        _cleanup_free_ char *word = shell_word(name);
        char what[512];

        if (!word) {
                fputs("ashm: out of memory\n", stderr);
                return EXIT_FAILURE;
        }
        if (r == -ENOENT)
                fprintf(stderr, "ashm: no published region %s that you may read (see 'ashm names')\n", word);
        else if (r == -ECONNREFUSED)
                /* No daemon, no names: not worth starting one to ask. */
                fprintf(stderr, "ashm: no published region %s that you may read (no ashmd is running at %s)\n",
                        word, cli_socket_path());
        else {
                snprintf(what, sizeof(what), "%s %s", doing, word);
                cli_daemon_error(what, r);
        }
        return EXIT_FAILURE;
}
