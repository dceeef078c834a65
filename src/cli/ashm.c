/* SPDX-License-Identifier: MIT */
/* ashm: the command-line tool. This file reads the global options and
 * hands the rest of the command line to one command; each command lives
 * in its own file. A new command is one row in verbs[]. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ashm.h"
#include "cli.h"
#include "kv-cmd.h"
#include "macro.h"

struct verb {
        const char *name;
        int (*run)(int argc, char *argv[]);
        const char *args;    /* what follows the name in the synopsis */
        const char *summary;
        const char *options; /* the command's own options, for its help */
        const char *details; /* after the options: a command's own commands */
};

static int verb_help(int argc, char *argv[]);

static const struct verb verbs[] = {
        { "ls", verb_ls, "[--regions] [OPTIONS...]", "List the memfd regions of every process you may see",
          "      --regions      One row per region, with its holders, rather than one\n"
          "                     per process and region\n"
          "      --pid PID[,PID...]  Only the regions these processes hold\n"
          "  -u, --user USER    Only processes of USER (with --regions: regions USER owns)\n"
          "      --name GLOB    Only regions whose name matches GLOB (as in the shell)\n"
          "      --sort [-]COLUMN  Sort by COLUMN, decreasing with '-' (e.g. --sort -pss)\n"
          "  -o, --output COLUMNS  The columns to show, comma-separated (see below)\n"
          "      --no-headings  Leave out the header line\n"
          "  -t, --total        End with a line of totals, each region counted once\n"
          "  -b, --bytes        Sizes in exact bytes\n"
          "      --json         Print a JSON array, sizes in bytes\n",
          "\nColumns: PID USER COMM HOLD INODE HOLDERS SIZE RESIDENT PSS PINNED UNPINNED\n"
          "PURGED NAME (by default all but HOLDERS); with --regions: INODE USER HOLDERS\n"
          "PIDS SIZE RESIDENT PSS PINNED UNPINNED PURGED NAME. PSS is a holder's share\n"
          "of RESIDENT (RESIDENT / HOLDERS), so that shares add up without counting a\n"
          "region twice.\n" },
        { "top", verb_top, "[-n N] [-d SECONDS] [--json] [--sort KEY]",
          "Show the regions and their holders, refreshed, with purges and pressure",
          "  -n, --iterations N Print N frames as text (or JSON) and exit\n"
          "  -d, --delay SECONDS  Between frames (default 2, at least 0.1)\n"
          "  -b, --batch        Print frames as text until interrupted\n"
          "      --json         One JSON object per frame and line, sizes in bytes\n"
          "      --sort KEY     resident (the default), size, unpinned, purged, pinned\n"
          "                     or holders, largest first\n",
          "\nKeys: q quits, s changes the order, space refreshes now.\n" },
        { "cat", verb_cat, "NAME | PID:FD", "Write the bytes of a region to standard output",
          "      --name NAME    The region published as NAME, even if NAME reads\n"
          "                     as PID:FD (without it, DIGITS:DIGITS is PID:FD)\n" },
        { "purge", verb_purge, "--all | --bytes SIZE [--all-users]", "Have ashmd discard unpinned memory now",
          "      --all          Every unpinned page of your regions\n"
          "      --bytes SIZE   SIZE bytes, in whole pages, least recently unpinned\n"
          "                     first (e.g. 4096, 4K, 16M, 1.5G; K to P)\n"
          "      --all-users    Everyone's regions, not only yours (root only)\n" },
        { "status", verb_status, "[--json]", "Show whether ashmd runs, and what it holds",
          "      --json         Print one JSON object, sizes in bytes\n" },
        { "names", verb_names, "[--json]", "List the published names you may read",
          "      --json         Print a JSON array, sizes in bytes\n" },
        { "publish", verb_publish, "--file PATH [--mode MODE] NAME",
          "Share a file's contents, frozen, under NAME",
          "      --file PATH    The file to load (a regular file)\n"
          "      --mode MODE    Who may look NAME up, as a file mode: octal (0640)\n"
          "                     or symbolic (u=rw,g=r,o=); only read is ever\n"
          "                     granted, as the region is frozen (default 0644)\n" },
        { "unpublish", verb_unpublish, "NAME", "Remove a published name", NULL },
        { "kv", verb_kv, "STORE COMMAND [ARGUMENTS...]", "Read and change a key-value store",
          "      --type TYPE    (set) bool, int32, int64, uint64, float, double,\n"
          "                     string (the default) or bytes (VALUE in hex);\n"
          "                     (get) fail unless KEY holds a TYPE\n"
          "      --file FILE    (set) The value is FILE's contents ('-': standard input)\n"
          "      --raw          (get) Write the value's bytes as stored, no newline\n"
          "      --json         (ls, dump, stats) Print JSON, sizes in bytes\n"
          "      --output FILE  (repair) Write the repaired store to FILE, a new file,\n"
          "                     rather than replace STORE (needed for @NAME, PID:FD)\n",
          "\nCommands:\n"
          "  set KEY VALUE [--type TYPE]  Set KEY, creating a file STORE if need be\n"
          "  set KEY --file FILE [--type string|bytes]\n"
          "  get KEY [--raw] [--type TYPE]  Print the value of KEY\n"
          "  del KEY                      Remove KEY\n"
          "  ls [--json]                  List the keys, with their types and sizes\n"
          "  dump --json                  Print every key with its type and value\n"
          "  count                        Print the number of keys\n"
          "  stats [--json]               Show the store's sizes and counters\n"
          "  compact                      Rewrite the store without dead records\n"
          "  check                        Verify every record (exit status 4: damaged)\n"
          "  repair [--output FILE]       Keep every intact record, drop the rest\n"
          "  import-mmkv MMKV_FILE [...]  Import an MMKV store (see its --help)\n"
          "  export-mmkv MMKV_FILE        Write the store out as an MMKV store\n"
          "\nSTORE is a file (a store on disk), @NAME (a region store published with\n"
          "ashmd) or PID:FD (the store process PID holds as fd FD). Put -- before a\n"
          "KEY or VALUE that starts with a dash (a negative number needs none).\n" },
        { "chan", verb_chan, "NAME send|recv|stat", "Send and receive messages through a channel",
          "      --raw          (send, recv) Messages framed by a 4-byte little-endian\n"
          "                     length, not one per line\n"
          "      --size SIZE    (the end that creates NAME) The largest message\n"
          "                     (default 64K)\n"
          "      --depth N      (the end that creates NAME) Messages per sender's\n"
          "                     ring, a power of two (default 64)\n"
          "      --producers N  (the end that creates NAME) Senders at once (default 4)\n"
          "      --json         (stat) Print one JSON object\n",
          "\nCommands:\n"
          "  send    Send each line of standard input as a message\n"
          "  recv    Print each message on a line, until the senders have gone\n"
          "  stat    Show the depth, the producers, the subscribers and their lag\n"
          "\nEither end may start first: the first creates the channel (a queue)\n"
          "and publishes it as NAME with ashmd, kept until 'ashm unpublish NAME'.\n" },
        { "help", verb_help, "[COMMAND]", "Show this help, or a command's", NULL },
};

static const struct verb *verb_find(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (strcmp(verbs[i].name, name) == 0)
                        return &verbs[i];
        return NULL;
}

static void usage(FILE *f) {
        fputs("Usage: ashm COMMAND [ARGUMENTS...]\n"
              "       ashm --help | --version\n\n"
              "Show the anonymous shared memory (memfd regions) of this machine,\n"
              "and the pin state ashmd keeps for them; share regions by name;\n"
              "read and change key-value stores, on disk or in regions.\n\n"
              "Commands:\n",
              f);
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
                char synopsis[64];

                snprintf(synopsis, sizeof(synopsis), "%s %s", verbs[i].name, verbs[i].args);
                /* A long synopsis gets a line of its own. */
                if (strlen(synopsis) > 26)
                        fprintf(f, "  %s\n  %-26s %s\n", synopsis, "", verbs[i].summary);
                else
                        fprintf(f, "  %-26s %s\n", synopsis, verbs[i].summary);
        }
        fputs("\nOptions:\n"
              "  -h, --help         Show this help\n"
              "      --version      Show the versions of ashm and libashm\n\n"
              "See ashm(1) for details.\n",
              f);
}

void cli_verb_help(const char *name, FILE *f) {
        const struct verb *v = verb_find(name);

        if (!v)
                return;
        fprintf(f, "Usage: ashm %s %s\n\n%s.\n\nOptions:\n%s", v->name, v->args, v->summary,
                v->options ? v->options : "");
        fputs("  -h, --help         Show this help\n", f);
        if (v->details)
                fputs(v->details, f);
}

int cli_bad_option(const char *verb, int c, char *argv[]) {
        char opt[3] = { '-', (char) optopt, '\0' };
        const char *arg = argv[optind - 1];
        /* A bad long option leaves optopt 0, or its short twin when it got
         * an argument it does not take: show what was typed. */
        const char *what = optopt && strncmp(arg, "--", 2) != 0 ? opt : arg;

        fprintf(stderr, "ashm%s%s: %s '%s'; see 'ashm help%s%s'\n", verb ? " " : "", verb ? verb : "",
                c == ':' ? "missing argument to option" : "unknown option", what, verb ? " " : "",
                verb ? verb : "");
        return EXIT_USAGE;
}

int cli_json_args(const char *verb, int argc, char *argv[], bool *ret_json) {
        static const struct option options[] = {
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0)
                switch (c) {
                case 'j':
                        *ret_json = true;
                        break;
                case 'h':
                        cli_verb_help(verb, stdout);
                        return EXIT_SUCCESS;
                default:
                        return cli_bad_option(verb, c, argv);
                }
        if (optind < argc) {
                fprintf(stderr, "ashm %s: unexpected argument '%s'; see 'ashm help %s'\n", verb, argv[optind], verb);
                return EXIT_USAGE;
        }
        return -1; /* go on */
}

int cli_stdout_error(int err) {
        static int first;

        /* Remember the first failure: once the reader has gone, later
         * flushes fail too, and must stay as quiet as the first. */
        if (first == 0) {
                first = err;
                if (err != EPIPE)
                        fprintf(stderr, "ashm: cannot write to standard output: %s\n", strerror(err));
        }
        return first == EPIPE ? EXIT_SUCCESS : EXIT_FAILURE;
}

static int verb_help(int argc, char *argv[]) {
        if (argc > 2) {
                fputs("ashm: expected at most one command, e.g. 'ashm help ls'\n", stderr);
                return EXIT_USAGE;
        }
        if (argc == 1) {
                usage(stdout);
                return EXIT_SUCCESS;
        }
        if (!verb_find(argv[1])) {
                fprintf(stderr, "ashm: unknown command '%s'; see 'ashm help'\n", argv[1]);
                return EXIT_USAGE;
        }
        cli_verb_help(argv[1], stdout);
        return EXIT_SUCCESS;
}

/* Whatever a command printed is still in stdout's buffer: a write error
 * (a full disk, a closed pipe) may only show up here. */
static int finish(int r) {
        int q;

        errno = 0;
        if (fflush(stdout) == 0 && !ferror(stdout))
                return r;
        q = cli_stdout_error(errno > 0 ? errno : EIO);
        return r != EXIT_SUCCESS ? r : q;
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {},
        };
        const struct verb *v;
        int c;

        /* A reader that goes away (`ashm cat 1:5 | head`) must show up as
         * EPIPE from write(), which ends the command quietly, rather
         * than as a signal in the middle of a write. */
        signal(SIGPIPE, SIG_IGN);
        cli_find_ashmd();
        opterr = 0;
        /* "+": options after the command belong to the command. */
        while ((c = getopt_long(argc, argv, "+:h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        usage(stdout);
                        return finish(EXIT_SUCCESS);
                case 'V':
                        printf("ashm %s (libashm %s)\n", PROGRAM_VERSION, ashm_version());
                        return finish(EXIT_SUCCESS);
                default:
                        return cli_bad_option(NULL, c, argv);
                }
        if (optind >= argc) {
                usage(stderr);
                return EXIT_USAGE;
        }
        v = verb_find(argv[optind]);
        if (!v) {
                fprintf(stderr, "ashm: unknown command '%s'; see 'ashm help'\n", argv[optind]);
                return EXIT_USAGE;
        }
        argc -= optind;
        argv += optind;
        optind = 0; /* glibc: start getopt afresh for the command */
        return finish(v->run(argc, argv));
}
