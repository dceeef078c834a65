/* SPDX-License-Identifier: MIT */
/* What the ashm tool asks ashmd, through libashm's own connection, and
 * why that failed, in words a user can act on. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "fd-util.h"
#include "protocol.h"
#include "runtime.h"

/* A LIST reply larger than this is not one a sane daemon sends: about
 * two million regions. */
#define LIST_MAX_BYTES (1024u * 1024 * 1024)

void cli_no_autostart(void) {
        /* libashm reads this at each connection attempt. */
        setenv("ASHM_NO_AUTOSTART", "1", 1);
}

/* The library's own rule (client.c): unset, empty or "0" allows it. */
static bool autostart_allowed(void) {
        const char *e = getenv("ASHM_NO_AUTOSTART");

        return !e || !*e || strcmp(e, "0") == 0;
}

/* Run from a build tree (build/src/cli/ashm), the daemon to start on
 * demand is the one built beside us (build/src/ashmd/ashmd), not an
 * installed one of another version, or none. */
void cli_find_ashmd(void) {
        char exe[PATH_MAX], *slash;
        ssize_t n;
        const char *tail = "/src/cli";

        if (getenv("ASHMD") && *getenv("ASHMD"))
                return;
        n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n <= 0 || (size_t) n >= sizeof(exe) - 32)
                return;
        exe[n] = '\0';
        slash = strrchr(exe, '/');
        if (!slash || (size_t) (slash - exe) < strlen(tail) || strncmp(slash - strlen(tail), tail, strlen(tail)) != 0)
                return;
        strcpy(slash, "/../ashmd/ashmd");
        if (access(exe, X_OK) == 0 && access(exe, F_OK) == 0)
                setenv("ASHMD", exe, 1);
}

const char *cli_socket_path(void) {
        static char path[108];

        if (!path[0] && ashm__client_socket_path(path, sizeof(path), NULL) < 0)
                strcpy(path, "(too long)");
        return path;
}

void cli_daemon_error(const char *doing, int r) {
        const char *sock = cli_socket_path();
        char why[512];

        switch (r) {
        case -ECONNREFUSED:
        case -ETIMEDOUT:
                if (autostart_allowed() && ashm__autostart_error(why, sizeof(why)) >= 0) {
                        _cleanup_free_ char *e = cescape(why);

                        fprintf(stderr, "ashm: cannot %s: no ashmd was running at %s, and starting one failed: %s\n",
                                doing, sock, e ? e : why);
                } else if (r == -ETIMEDOUT)
                        fprintf(stderr,
                                "ashm: cannot %s: ashmd at %s did not answer in time (stopped or stuck? see its log)\n",
                                doing, sock);
                else if (autostart_allowed())
                        fprintf(stderr,
                                "ashm: no ashmd is running and none could be started (is ashmd installed? "
                                "$ASHMD names the program to start)\n");
                else
                        fputs("ashm: no ashmd is running (start it with 'ashmd', or unset ASHM_NO_AUTOSTART)\n",
                              stderr);
                break;
        case -EACCES:
                fprintf(stderr, "ashm: cannot %s: permission denied on %s (another user's daemon? set ASHM_SOCKET)\n",
                        doing, sock);
                break;
        case -EPERM:
                /* The runtime directory check of an autostart. */
                fprintf(stderr,
                        "ashm: cannot %s: the directory of %s is not yours or is open to others "
                        "(remove it, or set ASHM_SOCKET)\n",
                        doing, sock);
                break;
        case -ENAMETOOLONG:
                fprintf(stderr, "ashm: cannot %s: the socket path is too long (at most 107 bytes; check ASHM_SOCKET "
                                "and XDG_RUNTIME_DIR)\n",
                        doing);
                break;
        case -EBADMSG:
        case -EPROTONOSUPPORT:
                fprintf(stderr,
                        "ashm: cannot %s: ashmd at %s sent a reply this ashm does not understand "
                        "(ashm and ashmd of different versions? restart ashmd)\n",
                        doing, sock);
                break;
        default:
                fprintf(stderr, "ashm: cannot %s: %s (ashmd at %s)\n", doing, strerror(-r), sock);
        }
}

int cli_daemon_status(struct proto_status_rep *ret) {
        struct proto_status_rep rep;
        int r;

        r = ashm__request(PROTO_STATUS, NULL, 0, NULL, 0, &rep, sizeof(rep), NULL, 0);
        if (r < 0)
                return r;
        /* From a socket: trust no terminator. */
        rep.pressure_source[sizeof(rep.pressure_source) - 1] = '\0';
        *ret = rep;
        return 0;
}

static int entry_cmp(const void *a, const void *b) {
        const struct proto_list_entry *x = a, *y = b;

        if (x->dev != y->dev)
                return x->dev < y->dev ? -1 : 1;
        return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* Copy count entries of entry_size bytes (a later daemon may append
 * fields; we read the ones we know) out of the daemon's memfd. Reading,
 * not mapping: a file that shrank under us would be SIGBUS. */
static int read_entries(int fd, uint64_t count, uint64_t entry_size, struct proto_list_entry **ret) {
        _cleanup_free_ struct proto_list_entry *e = NULL;
        struct stat st;
        int r;

        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (entry_size < sizeof(*e) || entry_size > LIST_MAX_BYTES || count > LIST_MAX_BYTES / entry_size ||
            (uint64_t) st.st_size < count * entry_size)
                return -EBADMSG;
        e = calloc(count ? count : 1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        for (uint64_t i = 0; i < count; i++) {
                r = pread_full(fd, &e[i], sizeof(*e), (off_t) (i * entry_size));
                if (r < 0)
                        return r == -EIO ? -EBADMSG : r;
                e[i].name[sizeof(e[i].name) - 1] = '\0';
        }
        *ret = TAKE_PTR(e);
        return 0;
}

const struct proto_list_entry *cli_list_find(const struct proto_list_entry *e, size_t n, uint64_t dev,
                                             uint64_t ino) {
        const struct proto_list_entry key = { .dev = dev, .ino = ino };

        return n ? bsearch(&key, e, n, sizeof(*e), entry_cmp) : NULL;
}

int cli_daemon_list(struct proto_list_entry **ret, size_t *ret_n) {
        struct proto_list_entry *e = NULL;
        struct proto_list_rep rep;
        _cleanup_close_ int fd = -1;
        int r;

        r = ashm__request(PROTO_LIST, NULL, 0, NULL, 0, &rep, sizeof(rep), &fd, 1);
        if (r < 0)
                return r;
        if (fd < 0)
                return -EBADMSG;
        r = read_entries(fd, rep.count, rep.entry_size, &e);
        if (r < 0)
                return r;
        qsort(e, (size_t) rep.count, sizeof(*e), entry_cmp);
        *ret = e;
        *ret_n = (size_t) rep.count;
        return 0;
}
