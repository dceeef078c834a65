/* SPDX-License-Identifier: MIT */
/* ashm cat: the bytes of a region, either one another process holds
 * (PID:FD, reached through /proc/PID/fd/FD) or one published in ashmd
 * (NAME). An argument of the form DIGITS:DIGITS is always PID:FD; a
 * published name of that form is reached with --name. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ashm.h"
#include "cli.h"
#include "fd-util.h"
#include "memfd-util.h"

#define COPY_CHUNK (128 * 1024)

/* Why opening failed, in words that say what to try next. */
static const char *open_hint(int pid, int fd, int err, char *buf, size_t len) {
        char proc[32];
        struct stat st;
        bool alive;

        snprintf(proc, sizeof(proc), "/proc/%d", pid);
        alive = stat(proc, &st) == 0;
        if (err == ENOENT && !alive)
                snprintf(buf, len, " (is process %d still running? see 'ashm ls')", pid);
        else if (err == ENOENT)
                snprintf(buf, len, " (process %d has no fd %d; see 'ashm ls')", pid, fd);
        else if ((err == EACCES || err == EPERM) && geteuid() == 0)
                snprintf(buf, len, " (process %d is protected from inspection, even by root)", pid);
        else if ((err == EACCES || err == EPERM) && alive && st.st_uid != geteuid()) {
                struct passwd *pw = getpwuid(st.st_uid);

                if (st.st_uid == 0)
                        snprintf(buf, len, " (process %d belongs to root: run as root)", pid);
                else if (pw)
                        snprintf(buf, len, " (process %d belongs to %s: run as %s or as root)", pid,
                                 pw->pw_name, pw->pw_name);
                else
                        snprintf(buf, len, " (process %d belongs to uid %u: run as that user or as root)",
                                 pid, (unsigned) st.st_uid);
        } else if (err == EACCES || err == EPERM)
                /* Our own process, yet refused: it is not dumpable, or
                 * the region's read permission was removed
                 * (ashm_region_set_prot). */
                snprintf(buf, len, " (process %d or its region refuses reading; run as root)", pid);
        else
                buf[0] = '\0';
        return buf;
}

static int open_failed(const char *path, int pid, int fd, int err) {
        char hint[128];

        fprintf(stderr, "ashm: cannot open %s: %s%s\n", path, strerror(err),
                open_hint(pid, fd, err, hint, sizeof(hint)));
        return -err;
}

static int not_memfd(const char *target) {
        fprintf(stderr, "ashm: %s is not a memfd region (see 'ashm ls')\n", target);
        return -EMEDIUMTYPE;
}

/* Open the region read-only, or print why not. The stat() first keeps us
 * from opening whatever else the fd might be: opening a FIFO can block,
 * opening a device can have side effects. */
static int open_region(int pid, int fd, const char *target) {
        _cleanup_close_ int rfd = -1;
        char path[64];
        struct stat st;

        snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
        if (stat(path, &st) < 0)
                return open_failed(path, pid, fd, errno);
        if (!memfd_stat_is_memfd(&st))
                return not_memfd(target);
        rfd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (rfd < 0)
                return open_failed(path, pid, fd, errno);
        /* The process may have put something else at fd since stat(). */
        if (fstat(rfd, &st) < 0 || !memfd_stat_is_memfd(&st))
                return not_memfd(target);
        return TAKE_FD(rfd);
}

/* From offset 0 with pread(): the fd we opened has its own offset, but
 * pread() says plainly that the region's own position does not matter.
 * Until EOF rather than st_size, as the holder may resize it meanwhile. */
static int copy_out(int fd, const char *target) {
        _cleanup_free_ char *buf = malloc(COPY_CHUNK);
        off_t off = 0;

        if (!buf) {
                fputs("ashm: out of memory\n", stderr);
                return EXIT_FAILURE;
        }
        for (;;) {
                ssize_t n = pread(fd, buf, COPY_CHUNK, off);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        fprintf(stderr, "ashm: cannot read %s: %s\n", target, strerror(errno));
                        return EXIT_FAILURE;
                }
                if (n == 0)
                        return EXIT_SUCCESS;
                if (fwrite(buf, 1, (size_t) n, stdout) != (size_t) n)
                        return cli_stdout_error(errno);
                off += n;
        }
}

/* A published region: the grant the daemon gives for reading, which
 * is frozen (or a frozen copy) or read-only, and read from 0 all the
 * same. Never starts a daemon: a new one would hold no names. */
static int cat_name(const char *name) {
        _cleanup_free_ char *word = NULL;
        ashm_region *region = NULL;
        int r;

        if (!cli_name_valid(name))
                return cli_bad_name("cat", name);
        word = shell_word(name);
        if (!word) {
                fputs("ashm: out of memory\n", stderr);
                return EXIT_FAILURE;
        }
        cli_no_autostart();
        r = ashm_lookup(name, 0, &region);
        if (r < 0)
                return cli_name_failed("look up", name, r);
        r = copy_out(ashm_region_fd(region), word);
        ashm_region_close(region);
        return r;
}

static int cat_target(const char *arg) {
        _cleanup_close_ int fd = -1;
        int pid, target_fd;

        if (!cli_parse_target(arg, &pid, &target_fd)) {
                fprintf(stderr,
                        "ashm: %s is not a valid PID:FD (a process ID from 1 and an fd, each at most %d); "
                        "for a published name of this form use 'ashm cat --name %s'\n",
                        arg, INT_MAX, arg);
                return EXIT_USAGE;
        }
        fd = open_region(pid, target_fd, arg);
        if (fd < 0)
                return EXIT_FAILURE;
        return copy_out(fd, arg);
}

static int cat_args(int argc, char *argv[], const char **ret_name) {
        static const struct option options[] = {
                { "name", required_argument, NULL, 'n' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0)
                switch (c) {
                case 'n':
                        *ret_name = optarg;
                        break;
                case 'h':
                        cli_verb_help("cat", stdout);
                        return EXIT_SUCCESS;
                default:
                        return cli_bad_option("cat", c, argv);
                }
        if (*ret_name && optind != argc) {
                fprintf(stderr, "ashm cat: unexpected argument '%s': --name NAME says what to print\n", argv[optind]);
                return EXIT_USAGE;
        }
        if (!*ret_name && optind + 1 != argc) {
                fputs("ashm cat: expected one published NAME or PID:FD, e.g. myapp-config or 1234:5 "
                      "(see 'ashm names', 'ashm ls')\n",
                      stderr);
                return EXIT_USAGE;
        }
        return -1; /* go on */
}

int verb_cat(int argc, char *argv[]) {
        const char *name = NULL;
        int r;

        r = cat_args(argc, argv, &name);
        if (r >= 0)
                return r;
        if (name)
                return cat_name(name);
        if (cli_looks_like_target(argv[optind]))
                return cat_target(argv[optind]);
        return cat_name(argv[optind]);
}
