/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared by the Criterion test files: the fd-leak fixture and assertions
 * that print the errno name, after the kernel's memfd selftest. */

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fd-util.h"

/* Every suite installs these: a test that leaves an fd open fails. */
static int tests_fd_baseline;

static inline void tests_fd_init(void) {
        tests_fd_baseline = fd_count();
}

static inline void tests_fd_fini(void) {
        int now = fd_count();

        cr_expect_eq(now, tests_fd_baseline, "fd leak: %d fds open before the test, %d after", tests_fd_baseline,
                     now);
}

#define ASHM_SUITE(name) TestSuite(name, .init = tests_fd_init, .fini = tests_fd_fini, .timeout = 60)

static inline const char *errname(int e) {
        const char *n = strerrorname_np(e < 0 ? -e : e);
        return n ? n : "?";
}

/* r must be >= 0 (success); print the errno name otherwise. */
#define assert_ok(expr)                                                                                  \
        ({                                                                                               \
                long _r = (long) (expr);                                                                 \
                cr_assert(_r >= 0, "%s failed: %ld (%s)", #expr, _r, _r < 0 ? errname((int) _r) : ""); \
                _r;                                                                                      \
        })

/* expr must fail with exactly -err. */
#define assert_fail(expr, err)                                                                                 \
        do {                                                                                                   \
                long _r = (long) (expr);                                                                       \
                cr_assert(_r == -(long) (err), "%s returned %ld (%s), expected -%s", #expr, _r,               \
                          _r < 0 ? errname((int) _r) : "success", errname(err));                               \
        } while (0)

/* A libc-style call must fail with -1 and errno err. */
#define assert_fail_errno(expr, err)                                                                         \
        do {                                                                                                 \
                errno = 0;                                                                                   \
                long _r = (long) (expr);                                                                     \
                int _e = errno;                                                                              \
                cr_assert(_r == -1 && _e == (err), "%s returned %ld errno %s, expected -1 errno %s", #expr, \
                          _r, errname(_e), errname(err));                                                    \
        } while (0)

/* Start the exec'd helper ashm-test-peer (tests/peer.c) with argv[] (argv[0]
 * is the mode) and one end of a SOCK_SEQPACKET socketpair as its fd 3.
 * Returns its pid; *ret_sock is our end. */
static inline pid_t spawn_peer(int *ret_sock, const char *const *argv) {
        const char *args[8] = { TEST_PEER };
        int sv[2];
        pid_t pid;

        for (size_t i = 0; argv[i] && i < 6; i++)
                args[i + 1] = argv[i];
        cr_assert(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
        pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
                if (sv[1] == 3)
                        fcntl(3, F_SETFD, 0);
                else if (dup2(sv[1], 3) < 0)
                        _exit(127);
                execv(TEST_PEER, (char *const *) args);
                _exit(127);
        }
        close(sv[1]);
        *ret_sock = sv[0];
        return pid;
}

/* Reap a peer and require a clean exit. */
static inline void wait_peer(pid_t pid) {
        int status;

        cr_assert(waitpid(pid, &status, 0) == pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "peer exited with status 0x%x", status);
}

/* Receive one text message (no fds) from a peer, NUL-terminated. */
static inline void recv_text(int sock, char *buf, size_t len) {
        ssize_t n = recv(sock, buf, len - 1, 0);

        cr_assert(n > 0, "peer sent nothing: %s", n < 0 ? strerror(errno) : "EOF");
        buf[n] = '\0';
}
