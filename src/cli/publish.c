/* SPDX-License-Identifier: MIT */
/* ashm publish --file PATH NAME: the shared-configuration case. The
 * file is loaded into a region, frozen, and published under NAME with
 * ASHM_PUBLISH_KEEP: the tool exits at once, and the name must outlive
 * it, for as long as the daemon lives. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ashm.h"
#include "cli.h"
#include "macro.h"

/* A shared configuration: everyone may read it. Read is all anyone gets,
 * whatever the write bits say: the region is frozen. */
#define DEFAULT_MODE 0644

struct publish_args {
        const char *path, *name;
        unsigned mode;
};

/* Octal, as chmod takes it: "644", "0640". */
static const char *parse_octal(const char *s, unsigned *ret) {
        unsigned v = 0;
        size_t n = 0;

        for (; *s >= '0' && *s <= '7'; s++, n++)
                v = v * 8 + (unsigned) (*s - '0');
        if (*s || n > 4)
                return "expected octal digits, as 0644, or a symbolic mode, as u=rw,g=r,o=";
        if (v & ~0777u)
                return "setuid, setgid and sticky bits mean nothing for a published region";
        *ret = v;
        return NULL;
}

/* The letters of chmod's symbolic modes that make sense here: clauses
 * [ugoa]*[=+-][rw]*, separated by commas, applied in turn to 0. No who
 * is "a" (there is no umask to honour). */
static const char *parse_symbolic(const char *s, unsigned *ret) {
        unsigned mode = 0;

        for (;;) {
                unsigned who = 0;

                for (; *s && strchr("ugoa", *s); s++)
                        who |= *s == 'u' ? 0700 : *s == 'g' ? 0070 : *s == 'o' ? 0007 : 0777;
                if (!who)
                        who = 0777;
                if (!*s || !strchr("=+-", *s))
                        return "expected octal digits, as 0644, or a symbolic mode, as u=rw,g=r,o=";
                while (*s && strchr("=+-", *s)) {
                        char op = *s++;
                        unsigned perm = 0;

                        for (; *s == 'r' || *s == 'w'; s++)
                                perm |= *s == 'r' ? 0444 : 0222;
                        perm &= who;
                        if (op == '=')
                                mode = (mode & ~who) | perm;
                        else if (op == '+')
                                mode |= perm;
                        else
                                mode &= ~perm;
                }
                if (*s == 'x' || *s == 'X' || *s == 's' || *s == 't')
                        return "only r and w mean something for a published region";
                if (!*s)
                        break;
                if (*s++ != ',' || !*s)
                        return "expected octal digits, as 0644, or a symbolic mode, as u=rw,g=r,o=";
        }
        *ret = mode;
        return NULL;
}

static int parse_mode(const char *s, unsigned *ret) {
        unsigned mode = 0;
        const char *why = *s >= '0' && *s <= '9' ? parse_octal(s, &mode) : parse_symbolic(s, &mode);

        if (!why && (mode & 0111))
                why = "execute bits mean nothing for a published region: use read (4) and write (2)";
        /* The daemon decides by the owner's bits for the owner and for
         * root: without them nobody could read the name, nor remove it. */
        else if (!why && !(mode & 0400))
                why = "its owner must be able to read it (e.g. 0600, 0644)";
        if (why) {
                _cleanup_free_ char *shown = cescape(s);

                fprintf(stderr, "ashm publish: invalid mode '%s': %s\n", shown ? shown : "?", why);
                return EXIT_USAGE;
        }
        *ret = mode;
        return 0;
}

static int publish_args(int argc, char *argv[], struct publish_args *a) {
        static const struct option options[] = {
                { "file", required_argument, NULL, 'f' },
                { "mode", required_argument, NULL, 'm' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0)
                switch (c) {
                case 'f':
                        a->path = optarg;
                        break;
                case 'm':
                        if (parse_mode(optarg, &a->mode) != 0)
                                return EXIT_USAGE;
                        break;
                case 'h':
                        cli_verb_help("publish", stdout);
                        return EXIT_SUCCESS;
                default:
                        return cli_bad_option("publish", c, argv);
                }
        if (optind + 1 != argc) {
                fputs("ashm publish: expected one NAME, e.g. 'ashm publish --file /etc/myapp.conf myapp-config'\n",
                      stderr);
                return EXIT_USAGE;
        }
        if (!a->path) {
                fputs("ashm publish: say what to publish: --file PATH\n", stderr);
                return EXIT_USAGE;
        }
        a->name = argv[optind];
        if (!cli_name_valid(a->name))
                return cli_bad_name("publish", a->name);
        return -1; /* go on */
}

static const char *file_type(mode_t m) {
        return S_ISDIR(m)    ? "a directory"
               : S_ISFIFO(m) ? "a FIFO"
               : S_ISSOCK(m) ? "a socket"
               : S_ISCHR(m)  ? "a character device"
               : S_ISBLK(m)  ? "a block device"
                             : "not a regular file";
}

/* Only a regular file: opening a FIFO would block, a device may have
 * side effects. The library checks again once the file is open. */
static int check_file(const char *path, const char *shown) {
        struct stat st;

        if (stat(path, &st) < 0) {
                fprintf(stderr, "ashm: cannot read %s: %s\n", shown, strerror(errno));
                return EXIT_FAILURE;
        }
        if (!S_ISREG(st.st_mode)) {
                fprintf(stderr, "ashm: %s is %s; only a regular file can be published\n", shown,
                        file_type(st.st_mode));
                return EXIT_FAILURE;
        }
        return 0;
}

static int load(const struct publish_args *a, const char *shown, ashm_region **ret) {
        char region_name[ASHM_NAME_MAX + 1];
        int r;

        /* The published name, as far as a memfd name goes: what `ashm ls`
         * shows for the copy ashmd holds. */
        snprintf(region_name, sizeof(region_name), "%.*s", ASHM_NAME_MAX, a->name);
        r = ashm_region_create_from_file(a->path, region_name, 0, ret);
        if (r == -EINVAL)
                fprintf(stderr, "ashm: %s is not a regular file; only a regular file can be published\n", shown);
        else if (r == -EFBIG)
                fprintf(stderr, "ashm: %s is too large to load\n", shown);
        else if (r < 0)
                fprintf(stderr, "ashm: cannot load %s: %s\n", shown, strerror(-r));
        return r < 0 ? EXIT_FAILURE : 0;
}

static int publish(const ashm_region *region, const struct publish_args *a, const char *word) {
        int r = ashm_publish(region, a->name, a->mode, ASHM_PUBLISH_KEEP);
        char doing[512];

        if (r == -EEXIST)
                fprintf(stderr, "ashm: %s is already published; 'ashm unpublish %s' first\n", word, word);
        else if (r == -ENOSPC)
                fprintf(stderr, "ashm: cannot publish %s: ashmd holds as many names as it may\n", word);
        else if (r < 0) {
                snprintf(doing, sizeof(doing), "publish %s", word);
                cli_daemon_error(doing, r);
        }
        return r < 0 ? EXIT_FAILURE : 0;
}

int verb_publish(int argc, char *argv[]) {
        struct publish_args a = { .mode = DEFAULT_MODE };
        _cleanup_free_ char *shown = NULL, *word = NULL;
        ashm_region *region = NULL;
        uint64_t size = 0;
        char human[32];
        int r;

        r = publish_args(argc, argv, &a);
        if (r >= 0)
                return r;
        shown = cescape(a.path);
        word = shell_word(a.name);
        if (!shown || !word) {
                fputs("ashm: out of memory\n", stderr);
                return EXIT_FAILURE;
        }
        r = check_file(a.path, shown);
        if (r == 0)
                r = load(&a, shown, &region);
        if (r == 0)
                r = publish(region, &a, word);
        if (r == 0)
                (void) ashm_region_get_size(region, &size);
        /* The daemon holds its own fd now: the name keeps the region. */
        ashm_region_close(region);
        if (r != 0)
                return r;
        format_size_u64(size, human, sizeof(human));
        printf("published %s (%s, mode %04o)\n", word, human, a.mode);
        return EXIT_SUCCESS;
}
