/* SPDX-License-Identifier: MIT */
/* Tests of the ashm tool: the real binary (ASHM_CLI), run with its output
 * captured, against regions held by other processes. Those processes are
 * forked "holders" that create a region, report on a pipe, and wait for
 * their release pipe to close: no sleeps, and a crashed test releases them. */
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include "ashm.h"
#include "tests.h"
#include "run-cli.h"

ASHM_SUITE(cli);

#define HOLDER_COMM "ashm-holder"

/* ---- holders: regions in another process -------------------------- */

enum hold_how { HOLD_FD, HOLD_MAP };

/* What a holder tells the test once its region is in place. */
struct report {
        int error; /* -errno of the step that failed, or 0 */
        int fd;    /* -1 for HOLD_MAP */
        uintptr_t map_start, map_end;
        uint64_t inode;
        int64_t resident;
};

struct holder {
        pid_t pid;
        int release; /* closing it lets the holder exit */
        struct report rep;
};

static int holder_setup(const char *name, const void *data, size_t len, uint64_t size, enum hold_how how,
                        struct report *rep) {
        ashm_region *region;
        struct stat st;
        void *addr;
        int r;

        r = ashm_region_create(name, size, 0, &region);
        if (r < 0)
                return r;
        if (len > 0 && (r = ashm_region_write(region, 0, data, len)) < 0)
                return r;
        if (fstat(ashm_region_fd(region), &st) < 0)
                return -errno;
        rep->fd = ashm_region_fd(region);
        rep->inode = st.st_ino;
        rep->resident = (int64_t) st.st_blocks * 512;
        if (how == HOLD_MAP) {
                r = ashm_region_map(region, 0, 0, PROT_READ, &addr);
                if (r < 0)
                        return r;
                rep->map_start = (uintptr_t) addr;
                rep->map_end = (uintptr_t) addr + ((size + page_size() - 1) & ~(page_size() - 1));
                /* The mapping outlives the handle and its fd. */
                ashm_region_close(region);
                rep->fd = -1;
        }
        return 0;
}

static void holder_main(int ready, int release, const char *name, const void *data, size_t len, uint64_t size,
                        enum hold_how how) {
        struct report rep = {};
        char c;

        /* Keep only our two pipe ends: holding another holder's release
         * pipe would keep that holder alive after the test lets it go.
         * (An empty range fails with EINVAL and closes nothing.) */
        close_range(3, (unsigned) MIN(ready, release) - 1, 0);
        close_range((unsigned) MIN(ready, release) + 1, (unsigned) MAX(ready, release) - 1, 0);
        close_range((unsigned) MAX(ready, release) + 1, ~0U, 0);
        prctl(PR_SET_NAME, HOLDER_COMM);
        rep.error = holder_setup(name, data, len, size, how, &rep);
        if (write(ready, &rep, sizeof(rep)) != sizeof(rep))
                _exit(1);
        while (read(release, &c, 1) < 0 && errno == EINTR)
                ;
        _exit(rep.error < 0);
}

static void holder_start(struct holder *h, const char *name, const void *data, size_t len, uint64_t size,
                         enum hold_how how) {
        int ready[2], release[2];

        cr_assert(pipe2(ready, O_CLOEXEC) == 0 && pipe2(release, O_CLOEXEC) == 0);
        h->pid = fork();
        cr_assert(h->pid >= 0);
        if (h->pid == 0) {
                close(ready[0]);
                close(release[1]);
                holder_main(ready[1], release[0], name, data, len, size, how);
        }
        close(ready[1]);
        close(release[0]);
        h->release = release[1];
        cr_assert(read(ready[0], &h->rep, sizeof(h->rep)) == sizeof(h->rep), "the holder died");
        close(ready[0]);
        cr_assert(h->rep.error == 0, "holder: %s", strerror(-h->rep.error));
}

static void holder_stop(struct holder *h) {
        int status;

        close(h->release);
        cr_assert(waitpid(h->pid, &status, 0) == h->pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "holder status 0x%x", status);
}

static void unique_name(char *buf, size_t len, const char *what) {
        snprintf(buf, len, "cli-%s-%d", what, (int) getpid());
}

/* The one line of text holding needle; fails if there are none or two. */
static void line_with(const char *text, const char *needle, char *buf, size_t len) {
        const char *hit = strstr(text, needle), *start, *end;

        cr_assert_not_null(hit, "no line holds \"%s\" in:\n%s", needle, text);
        cr_assert_null(strstr(hit + 1, needle), "two lines hold \"%s\" in:\n%s", needle, text);
        for (start = hit; start > text && start[-1] != '\n'; start--)
                ;
        end = strchrnul(hit, '\n');
        cr_assert_lt((size_t) (end - start), len);
        memcpy(buf, start, (size_t) (end - start));
        buf[end - start] = '\0';
}

/* ---- ls ------------------------------------------------------------- */

ASHM_TEST(cli, ls_shows_region_held_by_fd) {
        char name[64], line[512], want[512], size[16], unit[16];
        int pid, fd;
        unsigned long long inode;
        struct holder h;
        struct run r;

        unique_name(name, sizeof(name), "fd");
        holder_start(&h, name, "abc", 3, 12388, HOLD_FD);
        run_cli(&r, "ls");
        assert_run(&r, 0, "PID USER COMM", "");
        cr_assert(strncmp(r.out + strcspn(r.out, "P"), "PID USER COMM ", 14) == 0 &&
                          strncmp(r.out + strcspn(r.out, "\n") - 5, " NAME", 5) == 0,
                  "the header comes first:\n%s", r.out);
        line_with(r.out, name, line, sizeof(line));
        cr_assert_eq(sscanf(line, "%d %*s " HOLDER_COMM " fd %d %llu %15s %15s", &pid, &fd, &inode, size, unit), 5,
                     "unexpected row: %s", line);
        cr_assert_eq(pid, h.pid);
        cr_assert_eq(fd, h.rep.fd);
        cr_assert_eq(inode, h.rep.inode);
        cr_assert_str_eq(size, "12.1", "12388 bytes are 12.1 KiB: %s", line);
        cr_assert_str_eq(unit, "KiB");
        run_done(&r);

        run_cli(&r, "ls", "--json");
        assert_run(&r, 0, "[", "");
        line_with(r.out, name, line, sizeof(line));
        snprintf(want, sizeof(want),
                 "{\"pid\":%d,\"comm\":\"" HOLDER_COMM "\",\"uid\":%u,\"user\":\"%s\",\"fd\":%d,\"map\":null,"
                 "\"inode\":%" PRIu64 ",\"size\":12388,\"resident\":%" PRIi64 ",\"pss\":%" PRIi64
                 ",\"holders\":1,\"pinned\":null,\"unpinned\":null,\"purged\":null,\"name\":\"%s\"}",
                 h.pid, (unsigned) geteuid(), getpwuid(geteuid())->pw_name, h.rep.fd, h.rep.inode, h.rep.resident,
                 h.rep.resident, name);
        cr_assert_not_null(strstr(line, want), "json row\n  %s\nexpected\n  %s", line, want);
        run_done(&r);
        holder_stop(&h);
}

ASHM_TEST(cli, ls_shows_region_held_by_mapping) {
        char name[64], line[512], want[512];
        struct holder h;
        struct run r;

        unique_name(name, sizeof(name), "map");
        holder_start(&h, name, NULL, 0, 3 * 4096 + 1, HOLD_MAP);
        run_cli(&r, "ls");
        assert_run(&r, 0, "PID", "");
        line_with(r.out, name, line, sizeof(line));
        snprintf(want, sizeof(want), " map %" PRIxPTR "-%" PRIxPTR " ", h.rep.map_start, h.rep.map_end);
        cr_assert_not_null(strstr(line, want), "row %s lacks %s", line, want);
        run_done(&r);

        run_cli(&r, "ls", "--json");
        assert_run(&r, 0, "[", "");
        line_with(r.out, name, line, sizeof(line));
        /* Following /proc/PID/map_files, for the size, takes root. */
        if (geteuid() == 0)
                snprintf(want, sizeof(want),
                         "\"fd\":null,\"map\":\"%" PRIxPTR "-%" PRIxPTR "\",\"inode\":%" PRIu64
                         ",\"size\":12289,\"resident\":0,",
                         h.rep.map_start, h.rep.map_end, h.rep.inode);
        else
                snprintf(want, sizeof(want),
                         "\"fd\":null,\"map\":\"%" PRIxPTR "-%" PRIxPTR "\",\"inode\":%" PRIu64
                         ",\"size\":null,\"resident\":null,",
                         h.rep.map_start, h.rep.map_end, h.rep.inode);
        cr_assert_not_null(strstr(line, want), "json row\n  %s\nexpected\n  %s", line, want);
        run_done(&r);
        holder_stop(&h);
}

/* A name is bytes: a newline in it must not make a second row, nor an
 * invalid byte break the JSON. */
static void check_escaped_name(enum hold_how how) {
        char name[64], tag[48], line[512], want[128];
        struct holder h;
        struct run r;

        unique_name(tag, sizeof(tag), how == HOLD_FD ? "esc-fd" : "esc-map");
        snprintf(name, sizeof(name), "%s\"\\\n\t\xff\xc3\xa9!", tag);
        holder_start(&h, name, NULL, 0, 4096, how);

        run_cli(&r, "ls");
        assert_run(&r, 0, "PID", "");
        line_with(r.out, tag, line, sizeof(line));
        snprintf(want, sizeof(want), " %s\"\\\\\\x0a\\x09\\xff\xc3\xa9!", tag);
        cr_assert(strlen(line) > strlen(want) && strcmp(line + strlen(line) - strlen(want), want) == 0,
                  "row\n  %s\nshould end in\n  %s", line, want);
        run_done(&r);

        run_cli(&r, "ls", "--json");
        assert_run(&r, 0, "[", "");
        line_with(r.out, tag, line, sizeof(line));
        snprintf(want, sizeof(want), "\"name\":\"%s\\\"\\\\\\n\\t\\u00ff\xc3\xa9!\"}", tag);
        cr_assert_not_null(strstr(line, want), "json row\n  %s\nexpected\n  %s", line, want);
        run_done(&r);
        holder_stop(&h);
}

ASHM_TEST(cli, ls_escapes_names) {
        check_escaped_name(HOLD_FD);
        check_escaped_name(HOLD_MAP);
}

ASHM_TEST(cli, ls_sorted_by_pid_and_json_framed) {
        char name[64];
        struct holder a, b;
        struct run r;
        int last = 0, rows = 0;

        unique_name(name, sizeof(name), "sort");
        holder_start(&a, name, NULL, 0, 1, HOLD_FD);
        holder_start(&b, name, NULL, 0, 1, HOLD_MAP);
        run_cli(&r, "ls");
        assert_run(&r, 0, "PID", "");
        for (char *l = strchr(r.out, '\n'); l && l[1]; l = strchr(l + 1, '\n')) {
                int pid = atoi(l + 1);

                cr_assert_geq(pid, last, "rows out of order:\n%s", r.out);
                last = pid;
                rows++;
        }
        cr_assert_geq(rows, 2);
        run_done(&r);

        run_cli(&r, "ls", "--json");
        assert_run(&r, 0, "", "");
        cr_assert(strncmp(r.out, "[\n", 2) == 0 && strcmp(r.out + r.out_len - 3, "\n]\n") == 0, "framing:\n%s",
                  r.out);
        run_done(&r);
        holder_stop(&a);
        holder_stop(&b);
}

ASHM_TEST(cli, ls_usage_errors) {
        struct run r;

        run_cli(&r, "ls", "--bogus");
        assert_run(&r, 2, "", "unknown option '--bogus'");
        run_done(&r);
        run_cli(&r, "ls", "extra");
        assert_run(&r, 2, "", "unexpected argument 'extra'");
        run_done(&r);
        run_cli(&r, "ls", "--help");
        assert_run(&r, 0, "--json", "");
        run_done(&r);
        run_cli(&r, "ls", "-o", "pid,bogus");
        assert_run(&r, 2, "", "unknown column 'bogus'");
        run_done(&r);
        run_cli(&r, "ls", "--regions", "-o", "comm");
        assert_run(&r, 2, "", "unknown column 'comm' with --regions");
        run_done(&r);
        run_cli(&r, "ls", "--sort", "-nope");
        assert_run(&r, 2, "", "cannot sort by 'nope'");
        run_done(&r);
        run_cli(&r, "ls", "--user", "no-such-user-here");
        assert_run(&r, 2, "", "no user 'no-such-user-here'");
        run_done(&r);
        run_cli(&r, "ls", "--pid", "12x");
        assert_run(&r, 2, "", "invalid process ID");
        run_done(&r);
}

/* The lines of text, NUL-separated in place; returns how many. */
static size_t split_lines(char *text, char **lines, size_t max) {
        size_t n = 0;

        for (char *l = text; *l && n < max; n++) {
                char *end = strchrnul(l, '\n');

                lines[n] = l;
                l = *end ? end + 1 : end;
                *end = '\0';
        }
        return n;
}

ASHM_TEST(cli, ls_filters_columns_sort_and_totals) {
        char glob[64], a_name[80], b_name[80], pid_arg[16], *lines[8];
        struct holder a, b;
        struct run r;

        unique_name(glob, sizeof(glob), "filt");
        snprintf(a_name, sizeof(a_name), "%s-a", glob);
        snprintf(b_name, sizeof(b_name), "%s-b", glob);
        strcat(glob, "-?");
        holder_start(&a, a_name, "abc", 3, 12388, HOLD_FD);
        holder_start(&b, b_name, NULL, 0, 1, HOLD_FD);

        /* --name, -o, --no-headings, --sort with "-": b before a. */
        run_cli(&r, "ls", "--name", glob, "-o", "pid,name", "--no-headings", "--sort", "-name");
        assert_run(&r, 0, "", "");
        cr_assert_eq(split_lines(r.out, lines, 8), 2, "%s", r.out);
        cr_assert_eq(atoi(lines[0]), b.pid, "%s", lines[0]);
        cr_assert(strstr(lines[0], b_name) && strstr(lines[1], a_name), "%s\n%s", lines[0], lines[1]);
        run_done(&r);

        /* --pid and exact bytes. */
        snprintf(pid_arg, sizeof(pid_arg), "%d", (int) a.pid);
        run_cli(&r, "ls", "--pid", pid_arg, "-b", "-o", "pid,size,name");
        assert_run(&r, 0, " SIZE NAME\n", "");
        cr_assert_eq(split_lines(r.out, lines, 8), 2, "%s", r.out);
        cr_assert_eq(atoi(lines[1]), a.pid);
        cr_assert_not_null(strstr(lines[1], " 12388 "), "%s", lines[1]);
        run_done(&r);

        /* --user: nobody holds none of them. */
        run_cli(&r, "ls", "--user", "nobody", "--name", glob, "--no-headings");
        assert_run(&r, 0, "", "");
        cr_assert_eq(r.out_len, 0, "%s", r.out);
        run_done(&r);

        /* The totals line: sizes added up. */
        run_cli(&r, "ls", "--name", glob, "-t", "-b", "-o", "name,size");
        assert_run(&r, 0, "TOTAL", "");
        cr_assert_eq(split_lines(r.out, lines, 8), 4, "%s", r.out);
        cr_assert(strncmp(lines[3], "TOTAL", 5) == 0 && strstr(lines[3], " 12389"), "%s", lines[3]);
        run_done(&r);
        holder_stop(&a);
        holder_stop(&b);
}

/* One region, two holders: each is charged half of it (PSS), the
 * region view shows it once with both, and totals count it once. */
ASHM_TEST(cli, ls_regions_shares_and_totals) {
        char name[64], line[1024], want[256], *lines[8];
        ashm_region *region;
        int release[2];
        struct stat st;
        struct run r;
        pid_t child;
        int64_t page = (int64_t) page_size();
        char buf[3 * 4096] = {};

        unique_name(name, sizeof(name), "share");
        assert_ok(ashm_region_create(name, 3 * (uint64_t) page, 0, &region));
        memset(buf, 'x', sizeof(buf));
        assert_ok(ashm_region_write(region, 0, buf, (size_t) (3 * page) < sizeof(buf) ? (size_t) (3 * page) : sizeof(buf)));
        cr_assert(fstat(ashm_region_fd(region), &st) == 0);
        cr_assert(pipe2(release, O_CLOEXEC) == 0);
        child = fork();
        cr_assert(child >= 0);
        if (child == 0) {
                char c;

                close(release[1]);
                while (read(release[0], &c, 1) < 0 && errno == EINTR)
                        ;
                _exit(0);
        }
        close(release[0]);

        run_cli(&r, "ls", "--regions", "--name", name, "--json");
        assert_run(&r, 0, "[", "");
        line_with(r.out, name, line, sizeof(line));
        snprintf(want, sizeof(want), "{\"inode\":%" PRIu64 ",\"uid\":%u,", (uint64_t) st.st_ino,
                 (unsigned) geteuid());
        cr_assert(strncmp(line, "  ", 2) == 0 && strstr(line, want), "%s\nlacks %s", line, want);
        snprintf(want, sizeof(want), "\"pids\":[%d,%d],", (int) MIN(getpid(), child), (int) MAX(getpid(), child));
        cr_assert_not_null(strstr(line, want), "%s\nlacks %s", line, want);
        snprintf(want, sizeof(want), "\"resident\":%" PRIi64 ",\"pss\":%" PRIi64 ",\"holders\":2,",
                 (int64_t) st.st_blocks * 512, (int64_t) st.st_blocks * 256);
        cr_assert_not_null(strstr(line, want), "%s\nlacks %s", line, want);
        run_done(&r);

        /* Holder view: two rows of half each; the total counts the
         * region's residency once, and the shares add up to it. */
        run_cli(&r, "ls", "--name", name, "-t", "-b", "-o", "pid,resident,pss");
        assert_run(&r, 0, "PID RESIDENT", "");
        cr_assert_eq(split_lines(r.out, lines, 8), 4, "%s", r.out);
        snprintf(want, sizeof(want), " %" PRIi64 " %" PRIi64, (int64_t) st.st_blocks * 512,
                 (int64_t) st.st_blocks * 512);
        cr_assert(strncmp(lines[3], "TOTAL", 5) == 0 && strstr(lines[3], want), "%s\nlacks %s", lines[3], want);
        run_done(&r);

        /* The region view's table, with its own columns. */
        run_cli(&r, "ls", "--regions", "--name", name, "-o", "holders,name", "--no-headings");
        assert_run(&r, 0, "", "");
        snprintf(want, sizeof(want), "2 %s\n", name);
        cr_assert_str_eq(r.out, want);
        run_done(&r);

        close(release[1]);
        cr_assert(waitpid(child, NULL, 0) == child);
        ashm_region_close(region);
}

/* As another user, ls names the processes it could not read. */
ASHM_TEST(cli, ls_names_unreadable_processes) {
        struct run r;

        if (geteuid() != 0)
                cr_skip_test("needs root, to run the tool as another user");
        run_cli_mode(&r, RUN_AS_NOBODY, "ls");
        /* PID 1 is root's, and first in /proc. */
        assert_run(&r, 0, "PID", "could not be read (permission denied): 1 (");
        run_done(&r);
}

/* ---- cat ------------------------------------------------------------ */

static void target(char *buf, size_t len, pid_t pid, int fd) {
        snprintf(buf, len, "%d:%d", (int) pid, fd);
}

ASHM_TEST(cli, cat_prints_exact_bytes) {
        static const char data[] = "hello\0world\0\xff\x01";
        char name[64], arg[32];
        struct holder h;
        struct run r;

        unique_name(name, sizeof(name), "cat");
        holder_start(&h, name, data, sizeof(data), sizeof(data), HOLD_FD);
        target(arg, sizeof(arg), h.pid, h.rep.fd);
        run_cli(&r, "cat", arg);
        assert_run(&r, 0, "", "");
        cr_assert_eq(r.out_len, sizeof(data));
        cr_assert(memcmp(r.out, data, sizeof(data)) == 0, "cat changed the bytes");
        cr_assert_eq(r.err_len, 0, "stderr: %s", r.err);
        run_done(&r);
        holder_stop(&h);
}

ASHM_TEST(cli, cat_large_region) {
        const size_t len = 1000 * 1000 + 7; /* several copy chunks and a short tail */
        char name[64], arg[32];
        char *data = malloc(len);
        struct holder h;
        struct run r;

        cr_assert_not_null(data);
        for (size_t i = 0; i < len; i++)
                data[i] = (char) (i * 7 % 251);
        unique_name(name, sizeof(name), "large");
        holder_start(&h, name, data, len, len, HOLD_FD);
        target(arg, sizeof(arg), h.pid, h.rep.fd);
        run_cli(&r, "cat", arg);
        assert_run(&r, 0, "", "");
        cr_assert_eq(r.out_len, len);
        cr_assert(memcmp(r.out, data, len) == 0);
        run_done(&r);
        holder_stop(&h);
        free(data);
}

/* DIGITS:DIGITS is PID:FD by its shape alone: out of range, it is a
 * usage error that points at --name, never the lookup of a name. */
ASHM_TEST(cli, cat_bad_syntax) {
        static const char *const bad_targets[] = { "0:1", "99999999999:1", "1:99999999999", "00:5" };
        char long_name[ASHM_PUBLISH_NAME_MAX + 2];
        struct run r;

        /* A leading dash reads as an option: a usage error as well. */
        run_cli(&r, "cat", "-1:2");
        assert_run(&r, 2, "", "unknown option");
        run_done(&r);
        for (size_t i = 0; i < ELEMENTSOF(bad_targets); i++) {
                run_cli(&r, "cat", bad_targets[i]);
                cr_assert_eq(r.status, 2, "'%s': status %d", bad_targets[i], r.status);
                cr_assert_not_null(strstr(r.err, "is not a valid PID:FD"), "'%s': %s", bad_targets[i], r.err);
                cr_assert_not_null(strstr(r.err, "'ashm cat --name "), "'%s': %s", bad_targets[i], r.err);
                run_done(&r);
        }
        run_cli(&r, "cat", "");
        assert_run(&r, 2, "", "ashm cat: a name cannot be empty");
        run_done(&r);
        run_cli(&r, "cat", "a\nb");
        assert_run(&r, 2, "", "invalid name 'a\\x0ab': a name cannot hold control characters");
        run_done(&r);
        memset(long_name, 'x', sizeof(long_name) - 1);
        long_name[sizeof(long_name) - 1] = '\0';
        run_cli(&r, "cat", long_name);
        assert_run(&r, 2, "", "a name is at most 255 bytes; this one has 256");
        run_done(&r);
        run_cli(&r, "cat");
        assert_run(&r, 2, "", "expected one published NAME or PID:FD");
        run_done(&r);
        run_cli(&r, "cat", "1:2", "3:4");
        assert_run(&r, 2, "", "expected one published NAME or PID:FD");
        run_done(&r);
        run_cli(&r, "cat", "--name", "a", "b");
        assert_run(&r, 2, "", "ashm cat: unexpected argument 'b': --name NAME says what to print");
        run_done(&r);
        run_cli(&r, "cat", "--name");
        assert_run(&r, 2, "", "missing argument to option '--name'");
        run_done(&r);
}

/* /proc/sys/kernel/pid_max: no process ever has that pid. */
static int pid_never_used(void) {
        FILE *f = fopen("/proc/sys/kernel/pid_max", "re");
        int max = 0;

        cr_assert_not_null(f);
        cr_assert_eq(fscanf(f, "%d", &max), 1);
        fclose(f);
        return max;
}

ASHM_TEST(cli, cat_no_such_process) {
        char arg[32], path[64];
        struct run r;
        int pid = pid_never_used();

        target(arg, sizeof(arg), pid, 3);
        snprintf(path, sizeof(path), "cannot open /proc/%d/fd/3: No such file or directory", pid);
        run_cli(&r, "cat", arg);
        assert_run(&r, 1, "", path);
        cr_assert_not_null(strstr(r.err, "still running"), "%s", r.err);
        cr_assert_not_null(strstr(r.err, "ashm ls"), "%s", r.err);
        cr_assert_eq(r.out_len, 0);
        run_done(&r);
}

ASHM_TEST(cli, cat_no_such_fd) {
        char arg[32], want[64];
        struct run r;
        int fd = 900;

        while (fcntl(fd, F_GETFD) >= 0)
                fd++;
        target(arg, sizeof(arg), getpid(), fd);
        snprintf(want, sizeof(want), "has no fd %d", fd);
        run_cli(&r, "cat", arg);
        assert_run(&r, 1, "", "No such file or directory");
        cr_assert_not_null(strstr(r.err, want), "%s", r.err);
        run_done(&r);
}

static void check_not_memfd(int fd) {
        char arg[32], want[64];
        struct run r;

        target(arg, sizeof(arg), getpid(), fd);
        snprintf(want, sizeof(want), "ashm: %s is not a memfd region", arg);
        run_cli(&r, "cat", arg);
        assert_run(&r, 1, "", want);
        cr_assert_eq(r.out_len, 0);
        run_done(&r);
}

ASHM_TEST(cli, cat_not_a_memfd) {
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC), p[2];

        cr_assert(null >= 0);
        check_not_memfd(null);
        close(null);
        /* A pipe without writers: opening it would block. It must be
         * refused without being opened. */
        cr_assert(pipe2(p, O_CLOEXEC) == 0);
        close(p[1]);
        check_not_memfd(p[0]);
        close(p[0]);
}

ASHM_TEST(cli, cat_permission_denied) {
        ashm_region *region;
        char arg[32];
        struct run r;

        if (geteuid() != 0)
                cr_skip_test("needs root, to run the tool as another user");
        assert_ok(ashm_region_create("cli-private", 4096, 0, &region));
        target(arg, sizeof(arg), getpid(), ashm_region_fd(region));
        run_cli_mode(&r, RUN_AS_NOBODY, "cat", arg);
        assert_run(&r, 1, "", "Permission denied");
        cr_assert_not_null(strstr(r.err, "as root"), "%s", r.err);
        cr_assert_not_null(strstr(r.err, "belongs to"), "%s", r.err);
        cr_assert_eq(r.out_len, 0);
        run_done(&r);
        ashm_region_close(region);
}

/* `ashm cat ... | head -c 10`: the reader leaving is not an error. */
ASHM_TEST(cli, reader_gone_is_quiet) {
        ashm_region *region;
        char arg[32];
        struct run r;

        assert_ok(ashm_region_create("cli-epipe", 4 << 20, 0, &region));
        target(arg, sizeof(arg), getpid(), ashm_region_fd(region));
        run_cli_mode(&r, RUN_STDOUT_CLOSED, "cat", arg);
        assert_run(&r, 0, "", "");
        cr_assert_eq(r.err_len, 0, "stderr: %s", r.err);
        run_done(&r);
        ashm_region_close(region);

        run_cli_mode(&r, RUN_STDOUT_CLOSED, "ls");
        assert_run(&r, 0, "", "");
        cr_assert_eq(r.err_len, 0, "stderr: %s", r.err);
        run_done(&r);
}

ASHM_TEST(cli, write_errors_reported) {
        ashm_region *region;
        char arg[32];
        struct run r;

        assert_ok(ashm_region_create("cli-full", 4096, 0, &region));
        target(arg, sizeof(arg), getpid(), ashm_region_fd(region));
        run_cli_mode(&r, RUN_STDOUT_FULL, "cat", arg);
        assert_run(&r, 1, "", "cannot write to standard output: No space left on device");
        run_done(&r);
        ashm_region_close(region);

        run_cli_mode(&r, RUN_STDOUT_FULL, "help");
        assert_run(&r, 1, "", "No space left on device");
        run_done(&r);
        run_cli_mode(&r, RUN_STDOUT_FULL, "ls");
        assert_run(&r, 1, "", "No space left on device");
        run_done(&r);
}

/* ---- ashmd: pin columns, purge, status ------------------------------ */

#define NPAGES 4
/* ashmd keeps the LRU order per chunk of this many pages (pinstate.h):
 * pages unpinned at different times in one chunk count as unpinned at
 * the latest of them. */
#define LRU_CHUNK_PAGES 32

/* A region of npages pages in this process, filled with 'a', 'b', ...
 * page by page, and registered with the test's daemon by a pin. */
static ashm_region *pinned_region_n(const char *what, size_t npages, uint64_t *ret_inode) {
        char name[64], *buf = malloc(npages * page_size());
        ashm_region *region;
        struct stat st;

        cr_assert_not_null(buf);
        for (size_t i = 0; i < npages; i++)
                memset(buf + i * page_size(), 'a' + (int) (i % 26), page_size());
        unique_name(name, sizeof(name), what);
        assert_ok(ashm_region_create(name, npages * page_size(), 0, &region));
        assert_ok(ashm_region_write(region, 0, buf, npages * page_size()));
        free(buf);
        cr_assert_eq(assert_ok(ashm_region_pin(region, 0, 0)), ASHM_NOT_PURGED);
        cr_assert(fstat(ashm_region_fd(region), &st) == 0);
        *ret_inode = st.st_ino;
        return region;
}

static ashm_region *pinned_region(const char *what, uint64_t *ret_inode) {
        return pinned_region_n(what, NPAGES, ret_inode);
}

static void unpin_pages(ashm_region *region, size_t first, size_t n) {
        assert_ok(ashm_region_unpin(region, first * page_size(), n * page_size()));
}

static int pin_pages(ashm_region *region, size_t first, size_t n) {
        return (int) assert_ok(ashm_region_pin(region, first * page_size(), n * page_size()));
}

/* The byte every byte of page i holds, or 0 when it was purged. */
static void check_page(ashm_region *region, size_t i, char want) {
        char c = 1;

        assert_ok(pread(ashm_region_fd(region), &c, 1, (off_t) (i * page_size() + page_size() / 2)));
        cr_assert_eq(c, want, "page %zu holds 0x%02x, expected 0x%02x", i, (unsigned char) c, (unsigned char) want);
}

/* The one line of `ashm ls --json` for pid and inode. */
static void ls_json_row(const char *out, pid_t pid, uint64_t inode, char *buf, size_t len) {
        char pid_key[32], inode_key[48];

        snprintf(pid_key, sizeof(pid_key), "{\"pid\":%d,", (int) pid);
        snprintf(inode_key, sizeof(inode_key), ",\"inode\":%" PRIu64 ",", inode);
        for (const char *l = out; *l;) {
                const char *end = strchrnul(l, '\n');

                if ((size_t) (end - l) < len) {
                        memcpy(buf, l, (size_t) (end - l));
                        buf[end - l] = '\0';
                        if (strstr(buf, pid_key) && strstr(buf, inode_key))
                                return;
                }
                l = *end ? end + 1 : end;
        }
        cr_assert_fail("no row for pid %d inode %" PRIu64 " in:\n%s", (int) pid, inode, out);
}

/* The number after "key": in a JSON line; -1 for null. */
static int64_t json_number(const char *line, const char *key) {
        char k[64];
        const char *p;

        snprintf(k, sizeof(k), "\"%s\":", key);
        p = strstr(line, k);
        cr_assert_not_null(p, "no %s in %s", k, line);
        p += strlen(k);
        if (strncmp(p, "null", 4) == 0)
                return -1;
        return strtoll(p, NULL, 10);
}

static void check_pin_columns(const char *line, int64_t pinned, int64_t unpinned, int64_t purged) {
        cr_assert_eq(json_number(line, "pinned"), pinned, "pinned, in %s", line);
        cr_assert_eq(json_number(line, "unpinned"), unpinned, "unpinned, in %s", line);
        cr_assert_eq(json_number(line, "purged"), purged, "purged, in %s", line);
}

/* A size as ashm prints it, for whole pages: "8.0 KiB". */
static const char *kib(int64_t bytes, char buf[16]) {
        snprintf(buf, 16, "%.1f KiB", (double) bytes / 1024);
        return buf;
}

/* A socket path in a fresh directory, where no daemon listens; the
 * directory is removed by the caller (rmdir). */
static void no_daemon_socket(char *dir, size_t dir_len) {
        char sock[128];

        snprintf(dir, dir_len, "/tmp/ashm-test-XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
        snprintf(sock, sizeof(sock), "%s/ashmd.sock", dir);
        setenv("ASHM_SOCKET", sock, 1);
}

/* The PINNED, UNPINNED and PURGED cells of the `ashm ls` row of pid
 * and inode, as "A|B|C". The row reads PID USER COMM fd N INODE, then
 * SIZE, RESIDENT and PSS as "16.0 KiB" (two words). */
static void table_pin_cells(const char *out, pid_t pid, uint64_t inode, char *buf, size_t len) {
        for (const char *l = out; *l;) {
                char w[6][16] = {};
                unsigned long long ino;
                int row_pid, n, used = 0;

                n = sscanf(l, "%d %*s %*s fd %*d %llu %*s %*s %*s %*s %*s %*s %n", &row_pid, &ino, &used);
                if (n == 2 && used > 0 && row_pid == pid && ino == inode) {
                        const char *p = l + used;
                        size_t k = 0;

                        /* "-" is one word, "8.0 KiB" two. */
                        for (int cell = 0; cell < 3; cell++) {
                                int m = 0;

                                cr_assert_eq(sscanf(p, "%15s %n", w[k], &m), 1);
                                p += m;
                                if (strcmp(w[k], "-") != 0) {
                                        cr_assert_eq(sscanf(p, "%15s %n", w[k + 1], &m), 1);
                                        p += m;
                                        snprintf(w[k] + strlen(w[k]), sizeof(w[k]) - strlen(w[k]), " %s", w[k + 1]);
                                }
                                k++;
                        }
                        snprintf(buf, len, "%s|%s|%s", w[0], w[1], w[2]);
                        return;
                }
                l = strchrnul(l, '\n');
                if (*l)
                        l++;
        }
        cr_assert_fail("no table row for pid %d inode %" PRIu64 " in:\n%s", (int) pid, inode, out);
}

ASHM_TEST(cli, ls_shows_pin_state) {
        char line[1024], cells[64], want[64], a[16], b[16];
        uint64_t inode, other_inode;
        ashm_region *region, *other;
        struct test_daemon d;
        struct stat st;
        struct run r;
        int64_t page = (int64_t) page_size();

        daemon_start(&d);
        region = pinned_region("pins", &inode);
        unpin_pages(region, 1, 2);
        /* Never pinned nor unpinned: ashmd does not know it. */
        assert_ok(ashm_region_create("cli-unknown", 4096, 0, &other));
        cr_assert(fstat(ashm_region_fd(other), &st) == 0);
        other_inode = st.st_ino;

        run_cli(&r, "ls", "--json");
        assert_run(&r, 0, "[", "");
        ls_json_row(r.out, getpid(), inode, line, sizeof(line));
        check_pin_columns(line, 2 * page, 2 * page, 0);
        ls_json_row(r.out, getpid(), other_inode, line, sizeof(line));
        check_pin_columns(line, -1, -1, -1);
        /* ashmd holds a descriptor of every region it tracks. */
        ls_json_row(r.out, d.pid, inode, line, sizeof(line));
        check_pin_columns(line, 2 * page, 2 * page, 0);
        run_done(&r);

        run_cli(&r, "ls");
        assert_run(&r, 0, " PINNED UNPINNED PURGED NAME\n", "");
        table_pin_cells(r.out, getpid(), inode, cells, sizeof(cells));
        snprintf(want, sizeof(want), "%s|%s|0 B", kib(2 * page, a), kib(2 * page, b));
        cr_assert_str_eq(cells, want);
        table_pin_cells(r.out, getpid(), other_inode, cells, sizeof(cells));
        cr_assert_str_eq(cells, "-|-|-");
        run_done(&r);

        ashm_region_close(other);
        ashm_region_close(region);
        daemon_stop(&d);
}

/* ashm top in batch mode: frames of the region view with the totals of
 * the pin states; the second frame has the purge rate. */
ASHM_TEST(cli, top_batch_text_and_json) {
        char line[2048], want[128], name[64], *lines[4];
        ashm_region *region;
        struct test_daemon d;
        uint64_t inode;
        struct run r;
        int64_t page = (int64_t) page_size();

        daemon_start(&d);
        region = pinned_region("top", &inode);
        unpin_pages(region, 1, 2);
        snprintf(name, sizeof(name), "cli-top-%d", (int) getpid());

        run_cli(&r, "top", "-n", "2", "-d", "0.1", "--json");
        assert_run(&r, 0, "{\"time\":", "");
        cr_assert_eq(split_lines(r.out, lines, 4), 2, "two frames, one per line:\n%s", r.out);
        snprintf(want, sizeof(want), ",\"ashmd\":{\"pid\":%d,", (int) d.pid);
        cr_assert_not_null(strstr(lines[0], want), "%s", lines[0]);
        cr_assert_not_null(strstr(lines[0], ",\"purges_per_s\":null,"), "%s", lines[0]);
        cr_assert_null(strstr(lines[1], ",\"purges_per_s\":null,"), "%s", lines[1]);
        snprintf(want, sizeof(want), "{\"inode\":%" PRIu64 ",", inode);
        cr_assert_not_null(strstr(lines[1], want), "%s", lines[1]);
        /* Only ours are tracked by this daemon: the totals are ours. */
        snprintf(want, sizeof(want), ",\"pinned\":%" PRIi64 ",\"unpinned\":%" PRIi64 ",\"purged\":0,", 2 * page,
                 2 * page);
        cr_assert_not_null(strstr(lines[1], want), "%s\nlacks %s", lines[1], want);
        run_done(&r);

        /* Not a terminal: one frame of text. */
        run_cli(&r, "top");
        assert_run(&r, 0, "ashm top - ", "");
        snprintf(want, sizeof(want), "ashmd: pid %d, up ", (int) d.pid);
        cr_assert_not_null(strstr(r.out, want), "%s", r.out);
        cr_assert_not_null(strstr(r.out, "\npurges: -, 0 since start  pressure: "), "%s", r.out);
        line_with(r.out, name, line, sizeof(line));
        cr_assert_null(strstr(r.out + 1, "ashm top - "), "one frame:\n%s", r.out);
        run_done(&r);

        run_cli(&r, "top", "-n", "0");
        assert_run(&r, 2, "", "invalid number of iterations '0'");
        run_done(&r);
        run_cli(&r, "top", "--sort", "name");
        assert_run(&r, 2, "", "cannot sort by 'name'");
        run_done(&r);
        run_cli(&r, "top", "-d", "0");
        assert_run(&r, 2, "", "invalid delay '0'");
        run_done(&r);
        ashm_region_close(region);
        daemon_stop(&d);
}

/* The done-when of issue 3, from the command line: purge, and the
 * holder's pin says so; pinned pages keep their bytes. */
ASHM_TEST(cli, purge_all) {
        char line[1024], want[64], a[16];
        ashm_region *region;
        struct test_daemon d;
        uint64_t inode;
        struct run r;
        int64_t page = (int64_t) page_size();

        daemon_start(&d);
        region = pinned_region("purge-all", &inode);
        unpin_pages(region, 0, 2);

        run_cli(&r, "purge", "--all");
        snprintf(want, sizeof(want), "purged %s\n", kib(2 * page, a));
        assert_run(&r, 0, "", "");
        cr_assert_str_eq(r.out, want);
        cr_assert_eq(r.err_len, 0, "stderr: %s", r.err);
        run_done(&r);

        run_cli(&r, "ls", "--json");
        assert_run(&r, 0, "[", "");
        ls_json_row(r.out, getpid(), inode, line, sizeof(line));
        check_pin_columns(line, 2 * page, 0, 2 * page);
        run_done(&r);

        cr_assert_eq(pin_pages(region, 0, 2), ASHM_WAS_PURGED);
        check_page(region, 0, 0);
        check_page(region, 1, 0);
        check_page(region, 2, 'c');
        check_page(region, 3, 'd');

        /* Nothing is unpinned any more. */
        run_cli(&r, "purge", "--all");
        assert_run(&r, 0, "purged 0 B\n", "");
        run_done(&r);
        ashm_region_close(region);
        daemon_stop(&d);
}

/* --bytes takes the least recently unpinned page first, and no more
 * than it needs. */
ASHM_TEST(cli, purge_bytes) {
        char size[32], want[64], a[16];
        ashm_region *region;
        struct test_daemon d;
        uint64_t inode;
        struct run r;

        daemon_start(&d);
        region = pinned_region_n("purge-bytes", 2 * LRU_CHUNK_PAGES, &inode);
        unpin_pages(region, LRU_CHUNK_PAGES, 1); /* the older */
        unpin_pages(region, 0, 1);
        if (page_size() == 4096)
                snprintf(size, sizeof(size), "4K");
        else
                snprintf(size, sizeof(size), "%zu", page_size());

        run_cli(&r, "purge", "--bytes", size);
        snprintf(want, sizeof(want), "purged %s\n", kib((int64_t) page_size(), a));
        assert_run(&r, 0, "", "");
        cr_assert_str_eq(r.out, want);
        run_done(&r);

        cr_assert_eq(pin_pages(region, 0, 1), ASHM_NOT_PURGED);
        check_page(region, 0, 'a');
        cr_assert_eq(pin_pages(region, LRU_CHUNK_PAGES, 1), ASHM_WAS_PURGED);
        check_page(region, LRU_CHUNK_PAGES, 0);
        check_page(region, LRU_CHUNK_PAGES + 1, 'a' + (LRU_CHUNK_PAGES + 1) % 26);
        ashm_region_close(region);
        daemon_stop(&d);
}

ASHM_TEST(cli, status_reports_daemon) {
        static const char *const cap[] = { "--max-unpinned", "64M", NULL };
        char want[256], a[16];
        ashm_region *region;
        struct test_daemon d;
        uint64_t inode;
        struct run r;
        int64_t page = (int64_t) page_size();

        daemon_start_args(&d, cap);
        region = pinned_region("status", &inode);
        unpin_pages(region, 3, 1);
        assert_ok(ashm_purge(0, 0, NULL));
        unpin_pages(region, 1, 1);

        run_cli(&r, "status");
        assert_run(&r, 0, "ashmd: running\n", "");
        snprintf(want, sizeof(want), "\n  pid:       %d\n", (int) d.pid);
        cr_assert_not_null(strstr(r.out, want), "no \"%s\" in\n%s", want, r.out);
        snprintf(want, sizeof(want), "\n  socket:    %s\n", d.sock);
        cr_assert_not_null(strstr(r.out, want), "no \"%s\" in\n%s", want, r.out);
        cr_assert_not_null(strstr(r.out, "\n  regions:   1\n"), "%s", r.out);
        snprintf(want, sizeof(want), "\n  pinned:    %s\n", kib(2 * page, a));
        cr_assert_not_null(strstr(r.out, want), "no \"%s\" in\n%s", want, r.out);
        snprintf(want, sizeof(want), "\n  unpinned:  %s (cap 64.0 MiB)\n", kib(page, a));
        cr_assert_not_null(strstr(r.out, want), "no \"%s\" in\n%s", want, r.out);
        snprintf(want, sizeof(want), "\n  purges:    1 since start, %s in all\n", kib(page, a));
        cr_assert_not_null(strstr(r.out, want), "no \"%s\" in\n%s", want, r.out);
        /* tests.h starts ashmd with --no-pressure. */
        cr_assert_not_null(strstr(r.out, "\n  pressure:  not watched\n"), "%s", r.out);
        cr_assert_not_null(strstr(r.out, "\n  cgroup:    "), "%s", r.out);
        run_done(&r);

        run_cli(&r, "status", "--json");
        assert_run(&r, 0, "{\"running\":true,", "");
        cr_assert_eq(json_number(r.out, "pid"), d.pid);
        cr_assert_eq(json_number(r.out, "regions"), 1);
        /* Ours and the tool's own; the daemon may not have seen the
         * previous run's connection close yet. */
        cr_assert_geq(json_number(r.out, "clients"), 2);
        cr_assert_eq(json_number(r.out, "pinned"), 2 * page);
        cr_assert_eq(json_number(r.out, "unpinned"), page);
        cr_assert_eq(json_number(r.out, "purged"), page);
        cr_assert_eq(json_number(r.out, "max_unpinned"), 64 << 20);
        cr_assert_eq(json_number(r.out, "purges"), 1);
        cr_assert_eq(json_number(r.out, "purged_total"), page);
        cr_assert_eq(json_number(r.out, "pressure_events"), 0);
        snprintf(want, sizeof(want), "\"socket\":\"%s\",", d.sock);
        cr_assert_not_null(strstr(r.out, want), "%s", r.out);
        cr_assert_not_null(strstr(r.out, "\"pressure_source\":\"none\","), "%s", r.out);
        cr_assert(r.out_len > 2 && strcmp(r.out + r.out_len - 2, "}\n") == 0, "one object: %s", r.out);
        run_done(&r);
        ashm_region_close(region);
        daemon_stop(&d);
}

/* Whether word stands in err on a line other than the one where ls
 * names the processes it could not read: without CAP_SYS_PTRACE (CI's
 * root) that line may name another test's ashmd, and is no complaint. */
static bool said_besides_unreadable(const char *err, const char *word) {
        for (const char *line = err; *line;) {
                const char *end = strchrnul(line, '\n');
                bool unreadable = memmem(line, (size_t) (end - line), "could not be read", 17) != NULL;

                if (!unreadable && memmem(line, (size_t) (end - line), word, strlen(word)))
                        return true;
                line = *end ? end + 1 : end;
        }
        return false;
}

/* Looking must not start a daemon, even where one could be started. */
ASHM_TEST(cli, status_and_ls_without_daemon) {
        char dir[64], want[160], sock[128];
        struct stat st;
        struct run r;

        no_daemon_socket(dir, sizeof(dir));
        snprintf(sock, sizeof(sock), "%s", getenv("ASHM_SOCKET"));
        unsetenv("ASHM_NO_AUTOSTART");
        setenv("ASHMD", ASHMD, 1);

        run_cli(&r, "status");
        snprintf(want, sizeof(want), "ashmd: not running (socket %s)\n", sock);
        assert_run(&r, 3, "", "");
        cr_assert_str_eq(r.out, want);
        run_done(&r);
        run_cli(&r, "status", "--json");
        snprintf(want, sizeof(want), "{\"running\":false,\"socket\":\"%s\"}\n", sock);
        assert_run(&r, 3, "", "");
        cr_assert_str_eq(r.out, want);
        run_done(&r);
        run_cli(&r, "ls");
        assert_run(&r, 0, " PINNED UNPINNED PURGED NAME\n", "");
        cr_assert(!said_besides_unreadable(r.err, "ashmd"), "no daemon is no error: %s", r.err);
        run_done(&r);

        cr_assert(stat(sock, &st) < 0 && errno == ENOENT, "a daemon was started at %s", sock);
        cr_assert(rmdir(dir) == 0, "rmdir %s: %s", dir, strerror(errno));
}

ASHM_TEST(cli, purge_without_daemon) {
        char dir[64];
        struct run r;

        no_daemon_socket(dir, sizeof(dir));
        setenv("ASHM_NO_AUTOSTART", "1", 1);
        run_cli(&r, "purge", "--all");
        assert_run(&r, 1, "", "");
        cr_assert_str_eq(r.err, "ashm: no ashmd is running (start it with 'ashmd', or unset ASHM_NO_AUTOSTART)\n");
        cr_assert_eq(r.out_len, 0);
        run_done(&r);
        cr_assert(rmdir(dir) == 0);
}

ASHM_TEST(cli, purge_and_status_usage_errors) {
        static const char *const bad_sizes[] = { "0", "", "4X", "-1", "1.5", " 4K", "4 K", "4KK",
                                                  "18446744073709551616", "17179869184G" };
        struct run r;

        run_cli(&r, "purge");
        assert_run(&r, 2, "", "--all or --bytes");
        run_done(&r);
        run_cli(&r, "purge", "--all", "--bytes", "4K");
        assert_run(&r, 2, "", "exclude each other");
        run_done(&r);
        run_cli(&r, "purge", "--all", "extra");
        assert_run(&r, 2, "", "unexpected argument 'extra'");
        run_done(&r);
        run_cli(&r, "purge", "--bytes");
        assert_run(&r, 2, "", "missing argument to option '--bytes'");
        run_done(&r);
        for (size_t i = 0; i < ELEMENTSOF(bad_sizes); i++) {
                run_cli(&r, "purge", "--bytes", bad_sizes[i]);
                cr_assert_eq(r.status, 2, "'%s': status %d", bad_sizes[i], r.status);
                cr_assert_null(strstr(r.out, "purged"), "'%s' purged: %s", bad_sizes[i], r.out);
                run_done(&r);
        }
        run_cli(&r, "status", "extra");
        assert_run(&r, 2, "", "unexpected argument 'extra'");
        run_done(&r);
        run_cli(&r, "status", "--bogus");
        assert_run(&r, 2, "", "unknown option '--bogus'");
        run_done(&r);
        run_cli(&r, "purge", "--help");
        assert_run(&r, 0, "Usage: ashm purge --all | --bytes SIZE [--all-users]", "");
        cr_assert_not_null(strstr(r.out, "      --all-users    "), "%s", r.out);
        run_done(&r);
        run_cli(&r, "purge", "--bytes", "5X");
        assert_run(&r, 2, "", "invalid size '5X'; expected bytes, or a number with K, M, G, T or P (powers of 1024)");
        run_done(&r);
        run_cli(&r, "help", "status");
        assert_run(&r, 0, "Usage: ashm status [--json]", "");
        run_done(&r);
}

/* No daemon is asked (nor started) only to refuse. */
ASHM_TEST(cli, purge_all_users_needs_root) {
        char dir[64];
        struct run r;

        no_daemon_socket(dir, sizeof(dir));
        if (geteuid() == 0)
                run_cli_mode(&r, RUN_AS_NOBODY, "purge", "--all", "--all-users");
        else
                run_cli(&r, "purge", "--all", "--all-users");
        assert_run(&r, 1, "", "ashm: only root may purge other users' regions");
        run_done(&r);
        cr_assert(rmdir(dir) == 0);
}

ASHM_TEST(cli, purge_all_users_as_root) {
        ashm_region *region;
        struct test_daemon d;
        uint64_t inode;
        struct run r;

        if (geteuid() != 0)
                cr_skip_test("needs root");
        daemon_start(&d);
        region = pinned_region("all-users", &inode);
        unpin_pages(region, 0, NPAGES);
        run_cli(&r, "purge", "--all", "--all-users");
        assert_run(&r, 0, "purged ", "");
        run_done(&r);
        cr_assert_eq(pin_pages(region, 0, NPAGES), ASHM_WAS_PURGED);
        ashm_region_close(region);
        daemon_stop(&d);
}

/* A region whose holders the caller may not see (root's processes here)
 * is still the caller's: ls shows it as held by ashmd. */
ASHM_TEST(cli, ls_shows_regions_only_ashmd_holds) {
        char line[1024], want[160];
        ashm_region *region;
        struct test_daemon d;
        struct stat st;
        uint64_t inode;
        struct run r;
        int64_t page = (int64_t) page_size();

        if (geteuid() != 0)
                cr_skip_test("needs root, to run the tool as another user");
        daemon_start(&d);
        /* Let nobody reach the daemon. */
        cr_assert(chmod(d.dir, 0711) == 0 && chmod(d.sock, 0666) == 0);
        assert_ok(ashm_region_create("cli-nobody", NPAGES * page_size(), 0, &region));
        cr_assert(fchown(ashm_region_fd(region), 65534, 65534) == 0);
        unpin_pages(region, 0, 1);
        cr_assert(fstat(ashm_region_fd(region), &st) == 0);
        inode = st.st_ino;

        run_cli_mode(&r, RUN_AS_NOBODY, "ls", "--json");
        assert_run(&r, 0, "[", "");
        ls_json_row(r.out, d.pid, inode, line, sizeof(line));
        snprintf(want, sizeof(want),
                 "{\"pid\":%d,\"comm\":\"ashmd\",\"uid\":0,\"user\":\"root\",\"fd\":null,\"map\":null,"
                 "\"inode\":%" PRIu64 ",\"size\":%" PRIi64 ",\"resident\":null,\"pss\":null,",
                 (int) d.pid, inode, NPAGES * page);
        cr_assert_not_null(strstr(line, want), "row\n  %s\nexpected\n  %s", line, want);
        check_pin_columns(line, (NPAGES - 1) * page, page, 0);
        cr_assert_not_null(strstr(line, ",\"name\":\"cli-nobody\"}"), "%s", line);
        run_done(&r);

        run_cli_mode(&r, RUN_AS_NOBODY, "ls");
        assert_run(&r, 0, " ashmd ", "");
        snprintf(want, sizeof(want), " %" PRIu64 " ", inode);
        line_with(r.out, want, line, sizeof(line));
        cr_assert_eq(atoi(line), d.pid, "%s", line);
        cr_assert_not_null(strstr(line, " ashmd "), "%s", line);
        run_done(&r);
        ashm_region_close(region);
        daemon_stop(&d);
}

/* ---- starting the daemon on demand ---------------------------------- */

/* When the start fails, the tool says why in the daemon's own words, or
 * why it could not be run at all. */
ASHM_TEST(cli, autostart_failure_names_the_cause) {
        char dir[64], sock[128], want[256], file[128];
        struct run r;
        int fd;

        snprintf(dir, sizeof(dir), "/tmp/ashm-test-XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
        snprintf(file, sizeof(file), "%s/config", dir);
        fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        cr_assert(fd >= 0 && write(fd, "x", 1) == 1);
        close(fd);
        unsetenv("ASHM_NO_AUTOSTART");
        setenv("ASHMD", ASHMD, 1);
        /* The directory of the socket does not exist. */
        snprintf(sock, sizeof(sock), "%s/missing/ashmd.sock", dir);
        setenv("ASHM_SOCKET", sock, 1);
        run_cli(&r, "publish", "--file", file, "cli-autostart");
        snprintf(want, sizeof(want), "starting one failed: ashmd: error: cannot lock the pid file beside %s: %s\n",
                 sock, strerror(ENOENT));
        assert_run(&r, 1, "", want);
        run_done(&r);

        setenv("ASHMD", "/nonexistent/ashmd", 1);
        snprintf(sock, sizeof(sock), "%s/ashmd.sock", dir);
        setenv("ASHM_SOCKET", sock, 1);
        run_cli(&r, "publish", "--file", file, "cli-autostart");
        assert_run(&r, 1, "", "starting one failed: cannot run /nonexistent/ashmd: No such file or directory");
        run_done(&r);
        cr_assert(unlink(file) == 0 && rmdir(dir) == 0);
}

/* Run from the build tree with no $ASHMD, the tool starts the ashmd
 * built beside it. */
ASHM_TEST(cli, autostart_from_build_tree) {
        char dir[64], sock[128], file[128], pidfile[128], buf[32] = {};
        struct run r;
        int fd;
        pid_t pid;

        snprintf(dir, sizeof(dir), "/tmp/ashm-test-XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
        snprintf(file, sizeof(file), "%s/config", dir);
        fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        cr_assert(fd >= 0 && write(fd, "x", 1) == 1);
        close(fd);
        unsetenv("ASHM_NO_AUTOSTART");
        unsetenv("ASHMD");
        snprintf(sock, sizeof(sock), "%s/ashmd.sock", dir);
        setenv("ASHM_SOCKET", sock, 1);
        run_cli(&r, "publish", "--file", file, "cli-autostart");
        assert_run(&r, 0, "published cli-autostart", "");
        run_done(&r);

        /* Stop the daemon it started, by its pid file. */
        snprintf(pidfile, sizeof(pidfile), "%s/ashmd.pid", dir);
        fd = open(pidfile, O_RDONLY | O_CLOEXEC);
        cr_assert(fd >= 0);
        cr_assert(read(fd, buf, sizeof(buf) - 1) > 0);
        close(fd);
        pid = atoi(buf);
        cr_assert_gt(pid, 1);
        cr_assert(kill(pid, SIGTERM) == 0);
        /* Not our child: poll until it is gone, with a bound. */
        for (int i = 0; i < 1000 && kill(pid, 0) == 0; i++)
                usleep(10000);
        cr_assert(kill(pid, 0) < 0, "ashmd %d did not exit on SIGTERM", (int) pid);
        unlink(pidfile);
        unlink(file);
        cr_assert(rmdir(dir) == 0, "rmdir %s: %s", dir, strerror(errno));
}

/* With no daemon of the user's, the tool (and libashm) use the system
 * daemon's socket; never when ASHM_SOCKET is set, as in every test. */
ASHM_TEST(cli, system_daemon_when_no_user_daemon) {
        char xdg[64], want[160], user_sock[128];
        struct test_daemon d;
        struct run r;

        daemon_start(&d);
        snprintf(xdg, sizeof(xdg), "/tmp/ashm-test-XXXXXX");
        cr_assert_not_null(mkdtemp(xdg));
        setenv("ASHM_SYSTEM_SOCKET", d.sock, 1);

        /* A test's private path is never redirected. */
        snprintf(user_sock, sizeof(user_sock), "%s/ashm/ashmd.sock", xdg);
        setenv("ASHM_SOCKET", user_sock, 1);
        run_cli(&r, "status", "--json");
        assert_run(&r, 3, "{\"running\":false,", "");
        run_done(&r);

        /* No ASHM_SOCKET, no socket in XDG_RUNTIME_DIR: the system's. */
        unsetenv("ASHM_SOCKET");
        setenv("XDG_RUNTIME_DIR", xdg, 1);
        run_cli(&r, "status", "--json");
        snprintf(want, sizeof(want), "{\"running\":true,\"pid\":%d,\"socket\":\"%s\",", (int) d.pid, d.sock);
        assert_run(&r, 0, want, "");
        run_done(&r);
        cr_assert(rmdir(xdg) == 0, "nothing was made in %s", xdg);
        daemon_stop(&d);
}

/* ---- sharing by name: publish, cat NAME, unpublish, names ------------ */

/* A config file with what text tools trip on: NUL bytes, no final
 * newline, bytes that are not UTF-8. */
static const char config_bytes[] = "# myapp\nkey=value\n\0\0binary\xff\x01\0tail";
#define CONFIG_LEN (sizeof(config_bytes) - 1)

/* Write len bytes of data to dir/file; the path goes to path. */
static void write_file(char *path, size_t path_len, const char *dir, const char *file, const void *data,
                       size_t len) {
        int fd;

        snprintf(path, path_len, "%s/%s", dir, file);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        cr_assert(fd >= 0, "%s: %s", path, strerror(errno));
        cr_assert_eq(write(fd, data, len), (ssize_t) len);
        close(fd);
}

/* A private daemon with a config file in its directory (removed by
 * unpublish_and_stop(), so that daemon_stop() can remove the directory). */
static void start_with_config(struct test_daemon *d, const char *const *args, char *path, size_t path_len) {
        daemon_start_args(d, args);
        write_file(path, path_len, d->dir, "myapp.conf", config_bytes, CONFIG_LEN);
}

static void stop_with_config(struct test_daemon *d, const char *path) {
        cr_assert(unlink(path) == 0);
        daemon_stop(d);
}

/* s with every run of spaces made one space, for table rows. */
static void squeeze(char *s) {
        char *q = s;

        for (const char *p = s; *p; p++)
                if (*p != ' ' || (q > s && q[-1] != ' '))
                        *q++ = *p;
        *q = '\0';
}

static const char *user_name(uid_t uid) {
        struct passwd *pw = getpwuid(uid);

        cr_assert_not_null(pw, "no user %u", (unsigned) uid);
        return pw->pw_name;
}

static const char *group_name(gid_t gid) {
        struct group *gr = getgrgid(gid);

        cr_assert_not_null(gr, "no group %u", (unsigned) gid);
        return gr->gr_name;
}

/* The entry of name in ashmd's list (copied), or false. */
static bool find_name(const char *name, ashm_name_info *ret) {
        ashm_name_info *names = NULL;
        bool found = false;
        size_t n = 0;

        assert_ok(ashm_names(&names, &n));
        for (size_t i = 0; i < n; i++)
                if (strcmp(names[i].name, name) == 0) {
                        *ret = names[i];
                        found = true;
                }
        free(names);
        return found;
}

/* The tool exits right after publishing, and ashmd handles the end of
 * its connection in its own time: wait until it has (the publisher's
 * pid reads 0). A name without ASHM_PUBLISH_KEEP would go at that same
 * moment, so this also proves that it stays. */
static void wait_publisher_gone(const char *name) {
        ashm_name_info info;

        for (int i = 0; i < 20000; i++) {
                cr_assert(find_name(name, &info), "%s went away with the tool that published it", name);
                if (info.pid == 0)
                        return;
                cr_assert_eq(poll(NULL, 0, 1), 0); /* 1 ms between questions, 20 s in all */
        }
        cr_assert_fail("ashmd still counts publisher %u of %s", info.pid, name);
}

ASHM_TEST(cli, publish_names_cat_unpublish) {
        char path[128], name[64], want[512], line[512];
        struct test_daemon d;
        struct run r;

        start_with_config(&d, NULL, path, sizeof(path));
        unique_name(name, sizeof(name), "config");

        run_cli(&r, "publish", "--file", path, name);
        snprintf(want, sizeof(want), "published %s (%zu B, mode 0644)\n", name, CONFIG_LEN);
        assert_run(&r, 0, "", "");
        cr_assert_str_eq(r.out, want);
        cr_assert_eq(r.err_len, 0, "stderr: %s", r.err);
        run_done(&r);
        wait_publisher_gone(name);

        run_cli(&r, "names");
        assert_run(&r, 0, "", "");
        cr_assert(strncmp(r.out, "SIZE MODE ", 10) == 0, "header:\n%s", r.out);
        line_with(r.out, "NAME", line, sizeof(line));
        squeeze(line);
        cr_assert_str_eq(line, "SIZE MODE OWNER GROUP PUBLISHER KEPT ACCESS NAME");
        line_with(r.out, name, line, sizeof(line));
        squeeze(line);
        snprintf(want, sizeof(want), "%zu B 0644 rw-r--r-- %s %s - yes r %s", CONFIG_LEN, user_name(geteuid()),
                 group_name(getegid()), name);
        cr_assert_str_eq(line, want);
        run_done(&r);

        run_cli(&r, "names", "--json");
        assert_run(&r, 0, "[\n  {", "");
        snprintf(want, sizeof(want),
                 "[\n  {\"name\":\"%s\",\"size\":%zu,\"mode\":\"0644\",\"uid\":%u,\"owner\":\"%s\",\"gid\":%u,"
                 "\"group\":\"%s\",\"publisher\":null,\"kept\":true,\"access\":\"r\"}\n]\n",
                 name, CONFIG_LEN, (unsigned) geteuid(), user_name(geteuid()), (unsigned) getegid(),
                 group_name(getegid()));
        cr_assert_str_eq(r.out, want);
        run_done(&r);

        run_cli(&r, "cat", name);
        assert_run(&r, 0, "", "");
        cr_assert_eq(r.out_len, CONFIG_LEN);
        cr_assert(memcmp(r.out, config_bytes, CONFIG_LEN) == 0, "cat changed the bytes");
        cr_assert_eq(r.err_len, 0, "stderr: %s", r.err);
        run_done(&r);

        run_cli(&r, "publish", "--file", path, name);
        snprintf(want, sizeof(want), "ashm: %s is already published; 'ashm unpublish %s' first\n", name, name);
        assert_run(&r, 1, "", "");
        cr_assert_str_eq(r.err, want);
        cr_assert_eq(r.out_len, 0);
        run_done(&r);

        run_cli(&r, "unpublish", name);
        snprintf(want, sizeof(want), "unpublished %s\n", name);
        assert_run(&r, 0, "", "");
        cr_assert_str_eq(r.out, want);
        run_done(&r);

        snprintf(want, sizeof(want), "ashm: no published region %s that you may read (see 'ashm names')\n", name);
        run_cli(&r, "cat", name);
        assert_run(&r, 1, "", "");
        cr_assert_str_eq(r.err, want);
        cr_assert_eq(r.out_len, 0);
        run_done(&r);
        run_cli(&r, "unpublish", name);
        assert_run(&r, 1, "", "");
        cr_assert_str_eq(r.err, want);
        run_done(&r);

        run_cli(&r, "names");
        assert_run(&r, 0, "", "");
        squeeze(r.out);
        cr_assert_str_eq(r.out, "SIZE MODE OWNER GROUP PUBLISHER KEPT ACCESS NAME\n");
        run_done(&r);
        run_cli(&r, "names", "--json");
        assert_run(&r, 0, "", "");
        cr_assert_str_eq(r.out, "[]\n");
        run_done(&r);
        stop_with_config(&d, path);
}

/* The tool is gone, the name stays (ASHM_PUBLISH_KEEP), and it is the
 * file: frozen, all of it, looked up by a process that never saw the
 * file. A large file takes several reads and writes both ways. */
ASHM_TEST(cli, published_name_outlives_the_tool) {
        const size_t len = 1000 * 1000 + 7;
        char path[128], name[64], *data = malloc(len), *back = malloc(len);
        ashm_region *region;
        struct test_daemon d;
        uint64_t size = 0;
        struct run r;

        cr_assert(data && back);
        for (size_t i = 0; i < len; i++)
                data[i] = (char) (i * 7 % 251);
        daemon_start(&d);
        write_file(path, sizeof(path), d.dir, "big.conf", data, len);
        unique_name(name, sizeof(name), "kept");
        run_cli(&r, "publish", "--file", path, name);
        assert_run(&r, 0, "published ", "");
        cr_assert_not_null(strstr(r.out, " (976.6 KiB, mode 0644)\n"), "%s", r.out);
        run_done(&r);
        wait_publisher_gone(name);

        assert_ok(ashm_lookup(name, 0, &region));
        cr_assert_eq(assert_ok(ashm_region_is_frozen(region)), 1);
        assert_ok(ashm_region_get_size(region, &size));
        cr_assert_eq(size, len);
        assert_ok(ashm_region_read(region, 0, back, len));
        cr_assert(memcmp(back, data, len) == 0);
        ashm_region_close(region);

        run_cli(&r, "cat", name);
        assert_run(&r, 0, "", "");
        cr_assert_eq(r.out_len, len);
        cr_assert(memcmp(r.out, data, len) == 0);
        run_done(&r);
        free(data);
        free(back);
        cr_assert(unlink(path) == 0);
        daemon_stop(&d);
}

/* What `ashm names` says of a name a program published itself: its
 * pid, not kept, and writable by its owner. */
ASHM_TEST(cli, names_shows_a_programs_name) {
        char name[64], want[256], line[512], *q;
        ashm_region *region;
        struct test_daemon d;
        struct run r;

        daemon_start(&d);
        unique_name(name, sizeof(name), "prog");
        /* A backslash and a byte that is not UTF-8 are shown escaped. */
        q = name + strlen(name);
        strcpy(q, "\\\xff");
        assert_ok(ashm_region_create("prog", 5000, 0, &region));
        assert_ok(ashm_publish(region, name, 0600, 0));

        run_cli(&r, "names");
        assert_run(&r, 0, "", "");
        *q = '\0';
        line_with(r.out, name, line, sizeof(line));
        squeeze(line);
        snprintf(want, sizeof(want), "4.9 KiB 0600 rw------- %s %s %d no rw %s\\\\\\xff", user_name(geteuid()),
                 group_name(getegid()), (int) getpid(), name);
        cr_assert_str_eq(line, want);
        run_done(&r);

        run_cli(&r, "names", "--json");
        assert_run(&r, 0, "", "");
        line_with(r.out, name, line, sizeof(line));
        snprintf(want, sizeof(want), "{\"name\":\"%s\\\\\\u00ff\",\"size\":5000,\"mode\":\"0600\",", name);
        cr_assert_not_null(strstr(line, want), "%s\nlacks\n%s", line, want);
        snprintf(want, sizeof(want), ",\"publisher\":%d,\"kept\":false,\"access\":\"rw\"}", (int) getpid());
        cr_assert_not_null(strstr(line, want), "%s\nlacks\n%s", line, want);
        run_done(&r);
        ashm_region_close(region);
        daemon_stop(&d);
}

ASHM_TEST(cli, publish_modes) {
        static const struct {
                const char *arg;
                unsigned mode;
        } modes[] = {
                { "0640", 0640 }, { "600", 0600 },      { "0444", 0444 },        { "u=rw,g=r,o=", 0640 },
                { "a=r", 0444 },  { "u=rw,go=r", 0644 }, { "a=rw,go-w", 0644 }, { "=r,u+w", 0644 },
        };
        char path[128], name[64], want[128];
        struct test_daemon d;
        ashm_name_info info;
        struct run r;

        start_with_config(&d, NULL, path, sizeof(path));
        for (size_t i = 0; i < ELEMENTSOF(modes); i++) {
                snprintf(name, sizeof(name), "cli-mode-%zu", i);
                run_cli(&r, "publish", "--file", path, "--mode", modes[i].arg, name);
                snprintf(want, sizeof(want), "published %s (%zu B, mode %04o)\n", name, CONFIG_LEN, modes[i].mode);
                assert_run(&r, 0, "", "");
                cr_assert_str_eq(r.out, want, "--mode %s", modes[i].arg);
                run_done(&r);
                cr_assert(find_name(name, &info));
                cr_assert_eq(info.mode, modes[i].mode, "--mode %s: %o", modes[i].arg, info.mode);
                /* Frozen: whatever the mode says, nobody may write. */
                cr_assert_eq(info.writable, 0);
        }
        stop_with_config(&d, path);
}

/* Checked before anything is loaded or asked: no daemon is needed to
 * be told. */
ASHM_TEST(cli, publish_usage_errors) {
        static const struct {
                const char *mode, *why;
        } bad_modes[] = {
                { "0755", "execute bits mean nothing" },
                { "u=rwx", "only r and w mean something" },
                { "1644", "setuid, setgid and sticky bits mean nothing" },
                { "0044", "its owner must be able to read it" },
                { "0", "its owner must be able to read it" },
                { "go=r", "its owner must be able to read it" },
                { "0800", "expected octal digits" },
                { "00644", "expected octal digits" },
                { "abc", "expected octal digits" },
                { "", "expected octal digits" },
                { "u=rw,", "expected octal digits" },
                { "u:rw", "expected octal digits" },
                { "-0644", "expected octal digits" },
        };
        char dir[64], path[128], long_name[ASHM_PUBLISH_NAME_MAX + 2], want[160];
        struct run r;

        no_daemon_socket(dir, sizeof(dir));
        write_file(path, sizeof(path), dir, "c.conf", "x", 1);
        for (size_t i = 0; i < ELEMENTSOF(bad_modes); i++) {
                run_cli(&r, "publish", "--file", path, "--mode", bad_modes[i].mode, "cli-bad-mode");
                snprintf(want, sizeof(want), "ashm publish: invalid mode '%s': %s", bad_modes[i].mode,
                         bad_modes[i].why);
                assert_run(&r, 2, "", want);
                cr_assert_eq(r.out_len, 0);
                run_done(&r);
        }
        run_cli(&r, "publish", "--file", path, "");
        assert_run(&r, 2, "", "ashm publish: a name cannot be empty\n");
        run_done(&r);
        run_cli(&r, "publish", "--file", path, "tab\there");
        assert_run(&r, 2, "", "ashm publish: invalid name 'tab\\x09here': a name cannot hold control characters\n");
        run_done(&r);
        memset(long_name, 'n', sizeof(long_name) - 1);
        long_name[sizeof(long_name) - 1] = '\0';
        run_cli(&r, "publish", "--file", path, long_name);
        assert_run(&r, 2, "", "a name is at most 255 bytes; this one has 256");
        run_done(&r);
        run_cli(&r, "publish", "cli-no-file");
        assert_run(&r, 2, "", "ashm publish: say what to publish: --file PATH\n");
        run_done(&r);
        run_cli(&r, "publish", "--file", path);
        assert_run(&r, 2, "", "ashm publish: expected one NAME");
        run_done(&r);
        run_cli(&r, "publish", "--file", path, "a", "b");
        assert_run(&r, 2, "", "ashm publish: expected one NAME");
        run_done(&r);
        run_cli(&r, "publish", "--file");
        assert_run(&r, 2, "", "missing argument to option '--file'");
        run_done(&r);
        run_cli(&r, "unpublish");
        assert_run(&r, 2, "", "ashm unpublish: expected one NAME");
        run_done(&r);
        run_cli(&r, "unpublish", "a\x7f");
        assert_run(&r, 2, "", "ashm unpublish: invalid name 'a\\x7f'");
        run_done(&r);
        run_cli(&r, "names", "extra");
        assert_run(&r, 2, "", "ashm names: unexpected argument 'extra'");
        run_done(&r);
        cr_assert(unlink(path) == 0 && rmdir(dir) == 0);
}

/* Only a regular file, and one that exists: said before a daemon is
 * asked, and without opening a FIFO (which would block). */
ASHM_TEST(cli, publish_file_errors) {
        char dir[64], path[128], want[192];
        struct run r;

        no_daemon_socket(dir, sizeof(dir));
        snprintf(path, sizeof(path), "%s/missing.conf", dir);
        run_cli(&r, "publish", "--file", path, "cli-missing");
        snprintf(want, sizeof(want), "ashm: cannot read %s: No such file or directory\n", path);
        assert_run(&r, 1, "", "");
        cr_assert_str_eq(r.err, want);
        cr_assert_eq(r.out_len, 0);
        run_done(&r);

        run_cli(&r, "publish", "--file", dir, "cli-dir");
        snprintf(want, sizeof(want), "ashm: %s is a directory; only a regular file can be published\n", dir);
        assert_run(&r, 1, "", "");
        cr_assert_str_eq(r.err, want);
        run_done(&r);

        snprintf(path, sizeof(path), "%s/fifo", dir);
        cr_assert(mkfifo(path, 0600) == 0);
        run_cli(&r, "publish", "--file", path, "cli-fifo");
        snprintf(want, sizeof(want), "ashm: %s is a FIFO; only a regular file can be published\n", path);
        assert_run(&r, 1, "", "");
        cr_assert_str_eq(r.err, want);
        run_done(&r);
        cr_assert(unlink(path) == 0 && rmdir(dir) == 0);
}

ASHM_TEST(cli, publish_without_daemon) {
        char dir[64], path[128];
        struct stat st;
        struct run r;

        no_daemon_socket(dir, sizeof(dir));
        write_file(path, sizeof(path), dir, "c.conf", "x", 1);
        setenv("ASHM_NO_AUTOSTART", "1", 1);
        run_cli(&r, "publish", "--file", path, "cli-nodaemon");
        assert_run(&r, 1, "", "");
        cr_assert_str_eq(r.err, "ashm: no ashmd is running (start it with 'ashmd', or unset ASHM_NO_AUTOSTART)\n");
        cr_assert_eq(r.out_len, 0);
        run_done(&r);
        cr_assert(stat(getenv("ASHM_SOCKET"), &st) < 0 && errno == ENOENT);
        cr_assert(unlink(path) == 0 && rmdir(dir) == 0);
}

/* Looking a name up, listing and removing names never start a daemon:
 * a new one would hold none. */
ASHM_TEST(cli, names_cat_unpublish_without_daemon) {
        char dir[64], want[192], sock[128];
        struct stat st;
        struct run r;

        no_daemon_socket(dir, sizeof(dir));
        snprintf(sock, sizeof(sock), "%s", getenv("ASHM_SOCKET"));
        unsetenv("ASHM_NO_AUTOSTART");
        setenv("ASHMD", ASHMD, 1);

        run_cli(&r, "names");
        snprintf(want, sizeof(want), "ashmd: not running (socket %s)\n", sock);
        assert_run(&r, 3, "", "");
        cr_assert_str_eq(r.err, want);
        cr_assert_eq(r.out_len, 0, "stdout: %s", r.out);
        run_done(&r);
        run_cli(&r, "names", "--json");
        assert_run(&r, 3, "", "ashmd: not running");
        cr_assert_eq(r.out_len, 0, "stdout: %s", r.out);
        run_done(&r);

        /* What used to be malformed PID:FDs are names now. */
        snprintf(want, sizeof(want), "(no ashmd is running at %s)\n", sock);
        run_cli(&r, "cat", "myapp-config");
        assert_run(&r, 1, "", "ashm: no published region myapp-config that you may read");
        cr_assert_not_null(strstr(r.err, want), "%s", r.err);
        run_done(&r);
        run_cli(&r, "cat", "1:2x");
        assert_run(&r, 1, "", "ashm: no published region 1:2x that you may read");
        run_done(&r);
        run_cli(&r, "cat", "1 :2");
        assert_run(&r, 1, "", "ashm: no published region '1 :2' that you may read");
        run_done(&r);
        run_cli(&r, "unpublish", "myapp-config");
        assert_run(&r, 1, "", "ashm: no published region myapp-config that you may read");
        cr_assert_not_null(strstr(r.err, want), "%s", r.err);
        run_done(&r);

        cr_assert(stat(sock, &st) < 0 && errno == ENOENT, "a daemon was started at %s", sock);
        cr_assert(rmdir(dir) == 0, "rmdir %s: %s", dir, strerror(errno));
}

/* A name of the form PID:FD is reached with --name; so is one that
 * starts with a dash. Names needing shell quotes are quoted in what the
 * tool says. */
ASHM_TEST(cli, cat_name_that_looks_like_pid_fd) {
        char path[128], name[64], want[256];
        struct test_daemon d;
        struct run r;

        start_with_config(&d, NULL, path, sizeof(path));
        snprintf(name, sizeof(name), "%d:3", pid_never_used());
        run_cli(&r, "publish", "--file", path, name);
        assert_run(&r, 0, "published ", "");
        run_done(&r);

        run_cli(&r, "cat", name);
        assert_run(&r, 1, "", "cannot open /proc/");
        run_done(&r);
        run_cli(&r, "cat", "--name", name);
        assert_run(&r, 0, "", "");
        cr_assert(r.out_len == CONFIG_LEN && memcmp(r.out, config_bytes, CONFIG_LEN) == 0);
        run_done(&r);

        run_cli(&r, "publish", "--file", path, "--", "-dash");
        assert_run(&r, 0, "published -dash (", "");
        run_done(&r);
        run_cli(&r, "cat", "--name", "-dash");
        assert_run(&r, 0, "", "");
        cr_assert_eq(r.out_len, CONFIG_LEN);
        run_done(&r);
        run_cli(&r, "cat", "--", "-dash");
        assert_run(&r, 0, "", "");
        cr_assert_eq(r.out_len, CONFIG_LEN);
        run_done(&r);

        run_cli(&r, "publish", "--file", path, "it's a config");
        assert_run(&r, 0, "published 'it'\\''s a config' (", "");
        run_done(&r);
        run_cli(&r, "publish", "--file", path, "it's a config");
        snprintf(want, sizeof(want), "ashm: %s is already published; 'ashm unpublish %s' first\n",
                 "'it'\\''s a config'", "'it'\\''s a config'");
        assert_run(&r, 1, "", "");
        cr_assert_str_eq(r.err, want);
        run_done(&r);
        run_cli(&r, "unpublish", "it's a config");
        assert_run(&r, 0, "unpublished 'it'\\''s a config'\n", "");
        run_done(&r);
        stop_with_config(&d, path);
}

/* The shared-config use case across users: root publishes, nobody
 * reads the same bytes, and can neither remove the name nor see one it
 * has no grant for. */
ASHM_TEST(cli, shared_config_across_uids) {
        static const char *const shared[] = { "--socket-mode", "0666", NULL };
        char path[128], name[64], secret[64], want[256], line[512];
        struct test_daemon d;
        struct run r;

        if (geteuid() != 0)
                cr_skip_test("needs root, to run the tool as another user");
        start_with_config(&d, shared, path, sizeof(path));
        cr_assert(chmod(d.dir, 0755) == 0);
        unique_name(name, sizeof(name), "shared");
        unique_name(secret, sizeof(secret), "secret");
        run_cli(&r, "publish", "--file", path, name, "--mode", "0644");
        assert_run(&r, 0, "published ", "");
        run_done(&r);
        run_cli(&r, "publish", "--file", path, secret, "--mode", "0600");
        assert_run(&r, 0, "published ", "");
        run_done(&r);

        run_cli_mode(&r, RUN_AS_NOBODY, "cat", name);
        assert_run(&r, 0, "", "");
        cr_assert_eq(r.out_len, CONFIG_LEN);
        cr_assert(memcmp(r.out, config_bytes, CONFIG_LEN) == 0, "nobody read other bytes");
        cr_assert_eq(r.err_len, 0, "stderr: %s", r.err);
        run_done(&r);

        run_cli_mode(&r, RUN_AS_NOBODY, "names", "--json");
        assert_run(&r, 0, "", "");
        line_with(r.out, name, line, sizeof(line));
        snprintf(want, sizeof(want), "\"mode\":\"0644\",\"uid\":0,\"owner\":\"%s\",", user_name(0));
        cr_assert_not_null(strstr(line, want), "%s", line);
        cr_assert_not_null(strstr(line, ",\"access\":\"r\"}"), "%s", line);
        cr_assert_null(strstr(r.out, secret), "nobody sees a name it may not read:\n%s", r.out);
        run_done(&r);

        run_cli_mode(&r, RUN_AS_NOBODY, "cat", secret);
        snprintf(want, sizeof(want), "ashm: no published region %s that you may read (see 'ashm names')\n", secret);
        assert_run(&r, 1, "", "");
        cr_assert_str_eq(r.err, want);
        cr_assert_eq(r.out_len, 0);
        run_done(&r);

        run_cli_mode(&r, RUN_AS_NOBODY, "unpublish", name);
        snprintf(want, sizeof(want), "ashm: only its publisher's user or root may unpublish %s\n", name);
        assert_run(&r, 1, "", "");
        cr_assert_str_eq(r.err, want);
        run_done(&r);
        run_cli(&r, "cat", name);
        assert_run(&r, 0, "", "");
        cr_assert_eq(r.out_len, CONFIG_LEN, "the name is still there");
        run_done(&r);
        stop_with_config(&d, path);
}

/* ---- the rest ------------------------------------------------------- */

ASHM_TEST(cli, version) {
        char want[64];
        struct run r;

        snprintf(want, sizeof(want), "ashm " ASHM_VERSION_STRING " (libashm %s)\n", ashm_version());
        run_cli(&r, "--version");
        assert_run(&r, 0, "", "");
        cr_assert_str_eq(r.out, want);
        cr_assert_eq(r.err_len, 0);
        run_done(&r);
}

ASHM_TEST(cli, help) {
        static const char *const spellings[] = { "help", "--help", "-h" };
        struct run r;

        for (size_t i = 0; i < ELEMENTSOF(spellings); i++) {
                run_cli(&r, spellings[i]);
                assert_run(&r, 0, "Usage: ashm COMMAND", "");
                cr_assert_not_null(strstr(r.out, "\n  ls "), "%s: %s", spellings[i], r.out);
                cr_assert_not_null(strstr(r.out, "\n  cat NAME | PID:FD "), "%s: %s", spellings[i], r.out);
                cr_assert_not_null(strstr(r.out, "\n  publish --file PATH [--mode MODE] NAME\n"), "%s: %s",
                                   spellings[i], r.out);
                cr_assert_not_null(strstr(r.out, "\n  unpublish NAME "), "%s: %s", spellings[i], r.out);
                cr_assert_not_null(strstr(r.out, "\n  names [--json] "), "%s: %s", spellings[i], r.out);
                cr_assert_not_null(strstr(r.out, "--version"));
                cr_assert_eq(r.err_len, 0);
                run_done(&r);
        }
        run_cli(&r, "help", "cat");
        assert_run(&r, 0, "Usage: ashm cat NAME | PID:FD", "");
        cr_assert_not_null(strstr(r.out, "--name NAME"), "%s", r.out);
        run_done(&r);
        run_cli(&r, "cat", "--help");
        assert_run(&r, 0, "Usage: ashm cat NAME | PID:FD", "");
        run_done(&r);
        run_cli(&r, "publish", "--help");
        assert_run(&r, 0, "Usage: ashm publish --file PATH [--mode MODE] NAME", "");
        cr_assert_not_null(strstr(r.out, "default 0644"), "%s", r.out);
        run_done(&r);
        run_cli(&r, "help", "names");
        assert_run(&r, 0, "Usage: ashm names [--json]", "");
        run_done(&r);
        run_cli(&r, "unpublish", "-h");
        assert_run(&r, 0, "Usage: ashm unpublish NAME", "");
        run_done(&r);
        run_cli(&r, "help", "nope");
        assert_run(&r, 2, "", "unknown command 'nope'");
        run_done(&r);
}

ASHM_TEST(cli, no_command) {
        static const char *const argv[] = { ASHM_CLI, NULL };
        struct run r;

        run_argv(&r, RUN_PLAIN, -1, argv);
        assert_run(&r, 2, "", "Usage: ashm COMMAND");
        cr_assert_eq(r.out_len, 0, "usage goes to stderr: %s", r.out);
        run_done(&r);
}

ASHM_TEST(cli, unknown_command_and_option) {
        struct run r;

        run_cli(&r, "foo");
        assert_run(&r, 2, "", "");
        cr_assert_str_eq(r.err, "ashm: unknown command 'foo'; see 'ashm help'\n");
        cr_assert_eq(r.out_len, 0);
        run_done(&r);
        run_cli(&r, "--frobnicate");
        assert_run(&r, 2, "", "unknown option '--frobnicate'");
        run_done(&r);
}
