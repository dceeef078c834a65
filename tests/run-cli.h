/* SPDX-License-Identifier: MIT */
#pragma once

/* Running the ashm tool (ASHM_CLI) from a test with its stdout, stderr
 * and exit status captured: shared by test-cli.c and test-kv-cli.c.
 * Include after tests.h. */

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct run {
        int status; /* exit status, or 128 + signal */
        char *out, *err;
        size_t out_len, err_len;
};

enum run_mode {
        RUN_PLAIN,
        RUN_STDOUT_CLOSED, /* the reader of stdout has gone: EPIPE */
        RUN_STDOUT_FULL,   /* stdout is /dev/full: ENOSPC */
        RUN_AS_NOBODY,     /* as uid and gid 65534 */
};

static inline void run_done(struct run *r) {
        free(r->out);
        free(r->err);
}

/* Read what is there from fd into *buf; false at EOF. */
static inline bool run_slurp(int fd, char **buf, size_t *len) {
        char *p = realloc(*buf, *len + 65536 + 1);
        ssize_t n;

        cr_assert_not_null(p);
        *buf = p;
        do
                n = read(fd, p + *len, 65536);
        while (n < 0 && errno == EINTR);
        cr_assert(n >= 0, "read: %s", strerror(errno));
        *len += (size_t) n;
        p[*len] = '\0';
        return n > 0;
}

static inline void run_child_exec(enum run_mode mode, int in, int out, int err, const char *const *argv) {
        if (mode == RUN_STDOUT_FULL)
                out = open("/dev/full", O_WRONLY | O_CLOEXEC);
        if (in < 0)
                in = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (dup2(in, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 || dup2(err, STDERR_FILENO) < 0)
                _exit(126);
        if (mode == RUN_AS_NOBODY && (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0))
                _exit(126);
        execv(ASHM_CLI, (char *const *) argv);
        _exit(127);
}

/* Run ASHM_CLI with argv (argv[0] included, NULL-terminated), stdin from
 * in (-1: /dev/null), and collect its stdout, stderr and exit status.
 * Reads both pipes as they fill, so a large output cannot deadlock us
 * against the child. */
static inline void run_argv(struct run *ret, enum run_mode mode, int in, const char *const *argv) {
        int out[2], err[2], status;
        struct pollfd p[2];
        pid_t pid;

        *ret = (struct run) {};
        cr_assert(pipe2(out, O_CLOEXEC) == 0 && pipe2(err, O_CLOEXEC) == 0);
        pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0)
                run_child_exec(mode, in, out[1], err[1], argv);
        close(out[1]);
        close(err[1]);
        if (mode == RUN_STDOUT_CLOSED)
                out[0] = safe_close(out[0]);
        p[0] = (struct pollfd) { .fd = out[0], .events = POLLIN };
        p[1] = (struct pollfd) { .fd = err[0], .events = POLLIN };
        while (p[0].fd >= 0 || p[1].fd >= 0) {
                cr_assert(poll(p, 2, -1) > 0 || errno == EINTR);
                if (p[0].revents && !run_slurp(p[0].fd, &ret->out, &ret->out_len))
                        p[0].fd = safe_close(p[0].fd);
                if (p[1].revents && !run_slurp(p[1].fd, &ret->err, &ret->err_len))
                        p[1].fd = safe_close(p[1].fd);
        }
        cr_assert(waitpid(pid, &status, 0) == pid);
        ret->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        /* Empty rather than NULL, so that string checks read plainly. */
        if (!ret->out)
                ret->out = strdup("");
        if (!ret->err)
                ret->err = strdup("");
}

#define run_cli(ret, ...) run_argv(ret, RUN_PLAIN, -1, (const char *const[]) { ASHM_CLI, __VA_ARGS__, NULL })
#define run_cli_mode(ret, mode, ...) run_argv(ret, mode, -1, (const char *const[]) { ASHM_CLI, __VA_ARGS__, NULL })

#define assert_run(r, want_status, out_has, err_has)                                                          \
        do {                                                                                                  \
                cr_assert_eq((r)->status, (want_status), "exit status %d, expected %d; stderr: %s", (r)->status, \
                             (want_status), (r)->err);                                                        \
                cr_assert_not_null(strstr((r)->out, (out_has)), "stdout lacks \"%s\":\n%s", (out_has), (r)->out); \
                cr_assert_not_null(strstr((r)->err, (err_has)), "stderr lacks \"%s\":\n%s", (err_has), (r)->err); \
        } while (0)
