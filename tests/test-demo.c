/* SPDX-License-Identifier: MIT */
/* The demo (examples/), run as a user runs it: the real ashm-demo binary,
 * which starts the real ashm-demo-client. Its stdout is the contract:
 * what each side saw, in order, then "demo: OK". */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests.h"

#define DEMO BUILD_ROOT "/examples/ashm-demo"

extern char **environ;

ASHM_SUITE(demo);

struct demo_run {
        int status;      /* as from waitpid() */
        char out[16384]; /* everything the demo printed on stdout */
};

/* A private TMPDIR for one run, so the test can tell that the demo
 * removed its socket directory. */
static void make_tmpdir(char buf[static 64]) {
        strcpy(buf, "/tmp/test-demo.XXXXXX");
        cr_assert(mkdtemp(buf), "mkdtemp: %s", strerror(errno));
}

static size_t read_output(int fd, char *buf, size_t len) {
        size_t used = 0;

        for (;;) {
                ssize_t n = read(fd, buf + used, len - 1 - used);

                if (n < 0 && errno == EINTR)
                        continue;
                cr_assert(n >= 0, "read: %s", strerror(errno));
                if (n == 0)
                        break;
                used += (size_t) n;
                cr_assert(used < len - 1, "the demo printed more than %zu bytes", len - 1);
        }
        buf[used] = '\0';
        return used;
}

/* Run the demo with TMPDIR=tmpdir and capture its stdout (stderr is left
 * alone, so sanitizer reports show up in the test log). */
static void run_demo(const char *tmpdir, struct demo_run *run) {
        char *argv[] = { (char *) DEMO, NULL };
        posix_spawn_file_actions_t fa;
        int pipefd[2], r;
        pid_t pid;

        cr_assert(setenv("TMPDIR", tmpdir, 1) == 0); /* each test is its own process */
        cr_assert(pipe2(pipefd, O_CLOEXEC) == 0);
        cr_assert(posix_spawn_file_actions_init(&fa) == 0);
        cr_assert(posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO) == 0);
        r = posix_spawn(&pid, DEMO, &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        cr_assert(r == 0, "cannot run %s: %s", DEMO, strerror(r));
        close(pipefd[1]);
        read_output(pipefd[0], run->out, sizeof(run->out));
        close(pipefd[0]);
        cr_assert(waitpid(pid, &run->status, 0) == pid);
}

/* Run the demo in a private TMPDIR and check it exited 0. */
static void run_demo_ok(struct demo_run *run) {
        char tmpdir[64];

        make_tmpdir(tmpdir);
        run_demo(tmpdir, run);
        cr_assert(rmdir(tmpdir) == 0, "the demo left files in its TMPDIR: %s", strerror(errno));
        cr_assert(WIFEXITED(run->status) && WEXITSTATUS(run->status) == 0,
                  "the demo failed (status 0x%x):\n%s", run->status, run->out);
}

/* Each string in lines[] occurs in out, each after the one before. */
static void assert_in_order(const char *out, const char *const *lines, size_t n) {
        const char *at = out;

        for (size_t i = 0; i < n; i++) {
                const char *found = strstr(at, lines[i]);

                cr_assert(found, "expected, after what came before:\n  %s\nin the demo's output:\n%s", lines[i],
                          out);
                at = found + strlen(lines[i]);
        }
}

ASHM_TEST(demo, exits_0_and_says_ok) {
        static struct demo_run run;
        size_t len;

        run_demo_ok(&run);
        len = strlen(run.out);
        cr_assert(len >= 9 && strcmp(run.out + len - 9, "demo: OK\n") == 0, "last line is not \"demo: OK\":\n%s",
                  run.out);
        cr_assert_null(strstr(run.out, "FAILED"), "%s", run.out);
}

ASHM_TEST(demo, hello_world_both_ways) {
        static const char *const lines[] = {
                "[service] client pid ",
                "[service] created region 'ProcessMemoryService' (1048576 bytes), fd ",
                ", wrote \"Hello world!\"\n",
                "[client ] received region 'ProcessMemoryService', 1048576 bytes",
                "[client ] read() on the fd: \"Hello world!\"\n",
                "[client ] through a mapping: \"Hello world!\"\n",
                "[client ] wrote \"Hello from the client!\" with write() at offset 0\n",
                "[service] sees: \"Hello from the client!\"\n",
        };
        static struct demo_run run;

        run_demo_ok(&run);
        assert_in_order(run.out, lines, ELEMENTSOF(lines));
}

ASHM_TEST(demo, frozen_config_refuses_every_write) {
        char eperm[3][128];
        const char *lines[] = {
                "[service] created region 'config' (",
                "[client ] received region 'config', ",
                "[client ] ashm_region_is_frozen() = 1",
                "[client ]     name = ProcessMemoryService\n",
                eperm[0],
                eperm[1],
                eperm[2],
                "[service] client confirms: config is frozen",
                "[service] config unchanged\n",
                "[service] client exited with status 0\n",
                "demo: OK\n",
        };
        static struct demo_run run;

        snprintf(eperm[0], sizeof(eperm[0]), "[client ] write() on the fd: refused: %s\n", strerror(EPERM));
        snprintf(eperm[1], sizeof(eperm[1]), "[client ] ashm_region_map(PROT_WRITE): refused: %s\n",
                 strerror(EPERM));
        snprintf(eperm[2], sizeof(eperm[2]), "[client ] mmap(PROT_WRITE, MAP_SHARED): refused: %s\n",
                 strerror(EPERM));
        run_demo_ok(&run);
        assert_in_order(run.out, lines, ELEMENTSOF(lines));
}

/* Act 4, the heart of Ashmem: an unpinned cache is purged by
 * `ashm purge --all` (a private ashmd), the next pin says so, and the
 * memory figures show it go and come back. */
ASHM_TEST(demo, unpinned_cache_is_purged_and_rebuilt) {
        static const char *const lines[] = {
                "[service] config unchanged\n",
                "[service] built an 8 MiB cache in region 'frame-cache': 8.0 MiB resident\n",
                "[service] unpinned it: the system may take it back when memory runs low\n",
                "[service] $ ashm purge --all ",
                "[ashm   ] purged 8.0 MiB\n",
                "[service] the region now holds 0.0 MiB (8.0 MiB before the purge)\n",
                "[service] pinned it again: ASHM_WAS_PURGED, so the cache is rebuilt\n",
                "[service] rebuilt: 8.0 MiB resident\n",
                "demo: OK\n",
        };
        static struct demo_run run;

        run_demo_ok(&run);
        assert_in_order(run.out, lines, ELEMENTSOF(lines));
}

/* Line buffering on both sides: no line is split or merged with another
 * process's, and each says who is speaking. */
ASHM_TEST(demo, every_line_says_who_speaks) {
        static struct demo_run run;
        char *line, *save = NULL;
        int n = 0;

        run_demo_ok(&run);
        for (line = strtok_r(run.out, "\n", &save); line; line = strtok_r(NULL, "\n", &save), n++)
                cr_assert(strncmp(line, "[service] ", 10) == 0 || strncmp(line, "[client ] ", 10) == 0 ||
                                  strncmp(line, "[ashm   ] ", 10) == 0 || strncmp(line, "demo: ", 6) == 0,
                          "unlabelled line %d: \"%s\"", n + 1, line);
        cr_assert_gt(n, 10);
}

/* The socket lives in a fresh directory under $TMPDIR, and both are gone
 * when the demo ends (run_demo_ok() checks that TMPDIR is empty again). */
ASHM_TEST(demo, socket_in_private_dir_removed) {
        static struct demo_run run;
        char tmpdir[64], prefix[128], path[256];
        const char *at;
        struct stat st;

        make_tmpdir(tmpdir);
        run_demo(tmpdir, &run);
        snprintf(prefix, sizeof(prefix), "[service] listening on %s/ashm-demo.", tmpdir);
        at = strstr(run.out, prefix);
        cr_assert(at, "no \"%s\" in:\n%s", prefix, run.out);
        cr_assert(sscanf(at + strlen("[service] listening on "), "%255s", path) == 1);
        cr_assert(stat(path, &st) < 0 && errno == ENOENT, "%s still exists", path);
        cr_assert(rmdir(tmpdir) == 0, "the demo left files in its TMPDIR: %s", strerror(errno));
        cr_assert(WIFEXITED(run.status) && WEXITSTATUS(run.status) == 0, "%s", run.out);
}

/* A failure is reported on the summary line, with the reason, and the
 * exit status says so too. */
ASHM_TEST(demo, failure_is_reported) {
        static struct demo_run run;

        run_demo("/nonexistent/ashm-test-demo", &run);
        cr_assert(WIFEXITED(run.status) && WEXITSTATUS(run.status) == 1, "status 0x%x", run.status);
        cr_assert(strstr(run.out, "demo: FAILED: cannot create a directory in /nonexistent/ashm-test-demo: "),
                  "%s", run.out);
        cr_assert_null(strstr(run.out, "demo: OK"));
}
