/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared by the Criterion test files: the fd-leak fixture and assertions
 * that print the errno name, after the kernel's memfd selftest. */

#include <criterion/criterion.h>
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fd-util.h"

static pid_t tests_daemon_pid;
static char tests_daemon_dir[64];

/* A test that failed midway leaves its daemon running: stop it here,
 * where Criterion ends every test, failed or not. */
static inline void tests_daemon_reap(void) {
        char path[128];

        if (tests_daemon_pid <= 0)
                return;
        kill(tests_daemon_pid, SIGKILL);
        waitpid(tests_daemon_pid, NULL, 0);
        tests_daemon_pid = 0;
        snprintf(path, sizeof(path), "rm -rf '%s'", tests_daemon_dir);
        if (tests_daemon_dir[0])
                (void) !system(path);
}

/* fds libashm keeps for the life of the process once pins were used: its
 * connection to ashmd and the pin-state blocks it caches. Not leaks. */
static inline bool tests_fd_is_library(int fd) {
        struct sockaddr_un sa;
        socklen_t len = sizeof(sa);
        const char *sock = getenv("ASHM_SOCKET");
        char path[64], link[256];
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        n = readlink(path, link, sizeof(link) - 1);
        if (n < 0)
                return false;
        link[n] = '\0';
        if (strcmp(link, "/memfd:ashm-pinstate (deleted)") == 0)
                return true;
        return sock && strncmp(link, "socket:", 7) == 0 && getpeername(fd, (struct sockaddr *) &sa, &len) == 0 &&
               sa.sun_family == AF_UNIX && strcmp(sa.sun_path, sock) == 0;
}

static inline int tests_fd_count(void) {
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;
        int n = 0;

        if (!d)
                return -1;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.' && atoi(de->d_name) != dirfd(d) && !tests_fd_is_library(atoi(de->d_name)))
                        n++;
        closedir(d);
        return n;
}

static inline void tests_fd_verify(int before) {
        int now = tests_fd_count();

        cr_expect_eq(now, before, "fd leak: %d fds open before the test, %d after", before, now);
}

#define ASHM_SUITE(name) TestSuite(name, .fini = tests_daemon_reap, .timeout = 60)

/* A Criterion test that fails if it leaves an fd open (libwayland's
 * runner does the same). Criterion ignores failures in .fini, so the
 * check runs at the end of the test itself. */
#define ASHM_TEST(suite, name, ...)                        \
        static void suite##__##name##_body(void);          \
        Test(suite, name, ##__VA_ARGS__) {                 \
                int before_ = tests_fd_count();            \
                suite##__##name##_body();                  \
                tests_fd_verify(before_);                  \
        }                                                  \
        static void suite##__##name##_body(void)

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

/* A peer's stderr goes to a memfd of ours, so that a failing peer's own
 * words reach the failure message (Criterion's TAP drops stderr). */
static struct {
        pid_t pid;
        int fd;
} tests_peer_logs[16];
static char tests_peer_stderr[2048];

/* A memfd for the stderr of the peer about to start. */
static inline int tests_peer_log_open(void) {
        int fd = memfd_create("peer-stderr", MFD_CLOEXEC);

        cr_assert(fd >= 0, "memfd_create: %s", strerror(errno));
        return fd;
}

static inline void tests_peer_log_add(pid_t pid, int fd) {
        for (size_t i = 0; i < sizeof(tests_peer_logs) / sizeof(tests_peer_logs[0]); i++)
                if (tests_peer_logs[i].pid == 0) {
                        tests_peer_logs[i].pid = pid;
                        tests_peer_logs[i].fd = fd;
                        return;
                }
        close(fd); /* more peers at once than slots: this one's words are lost */
}

/* After pid was reaped: its stderr in tests_peer_stderr (at most its
 * last 2 KiB), and the memfd closed. */
static inline const char *tests_peer_log_take(pid_t pid) {
        tests_peer_stderr[0] = '\0';
        for (size_t i = 0; i < sizeof(tests_peer_logs) / sizeof(tests_peer_logs[0]); i++) {
                off_t end;
                ssize_t n;

                if (tests_peer_logs[i].pid != pid)
                        continue;
                end = lseek(tests_peer_logs[i].fd, 0, SEEK_END);
                if (end > (off_t) sizeof(tests_peer_stderr) - 1)
                        end -= (off_t) sizeof(tests_peer_stderr) - 1;
                else
                        end = 0;
                n = pread(tests_peer_logs[i].fd, tests_peer_stderr, sizeof(tests_peer_stderr) - 1, end);
                tests_peer_stderr[n > 0 ? n : 0] = '\0';
                close(tests_peer_logs[i].fd);
                tests_peer_logs[i].pid = 0;
                break;
        }
        return tests_peer_stderr;
}

/* Start the exec'd helper ashm-test-peer (tests/peer.c) with argv[] (argv[0]
 * is the mode) and one end of a SOCK_SEQPACKET socketpair as its fd 3.
 * Returns its pid; *ret_sock is our end. */
static inline pid_t spawn_peer(int *ret_sock, const char *const *argv) {
        const char *args[8] = { TEST_PEER };
        int sv[2];
        pid_t pid;

        for (size_t i = 0; argv[i] && i < 6; i++)
                args[i + 1] = argv[i];
        int log;

        cr_assert(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
        log = tests_peer_log_open();
        pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
                if (sv[1] == 3)
                        fcntl(3, F_SETFD, 0);
                else if (dup2(sv[1], 3) < 0)
                        _exit(127);
                if (dup2(log, 2) < 0)
                        _exit(127);
                execv(TEST_PEER, (char *const *) args);
                _exit(127);
        }
        tests_peer_log_add(pid, log);
        close(sv[1]);
        *ret_sock = sv[0];
        return pid;
}

/* Reap a peer and require a clean exit. */
static inline void wait_peer(pid_t pid) {
        int status;

        cr_assert(waitpid(pid, &status, 0) == pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "peer exited with status 0x%x; its stderr:\n%s",
                  status, tests_peer_log_take(pid));
        tests_peer_log_take(pid);
}

/* Receive one text message (no fds) from a peer, NUL-terminated. */
static inline void recv_text(int sock, char *buf, size_t len) {
        ssize_t n = recv(sock, buf, len - 1, 0);

        cr_assert(n > 0, "peer sent nothing: %s", n < 0 ? strerror(errno) : "EOF");
        buf[n] = '\0';
}

/* A private ashmd for one test: its own runtime directory and socket
 * (exported as $ASHM_SOCKET for the library), started and stopped by the
 * test itself. */
struct test_daemon {
        pid_t pid;
        char dir[64];
        char sock[96];
};

/* Start ashmd on d->sock, which stays as it is. */
static inline void daemon_spawn(struct test_daemon *d, const char *const *extra) {
        const char *args[24] = { ASHMD, "--socket", d->sock, "--ready-fd", "3", "--no-pressure" };
        struct pollfd p;
        size_t n = 6;
        int pfd[2];
        char c;

        for (size_t i = 0; extra && extra[i] && n < ELEMENTSOF(args) - 1; i++)
                args[n++] = extra[i];
        cr_assert(pipe2(pfd, O_CLOEXEC) == 0);
        d->pid = fork();
        cr_assert(d->pid >= 0);
        if (d->pid == 0) {
                /* Dies with the test, whatever happens to it. */
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || dup2(pfd[1], 3) < 0)
                        _exit(127);
                execv(ASHMD, (char *const *) args);
                _exit(127);
        }
        close(pfd[1]);
        p = (struct pollfd) { .fd = pfd[0], .events = POLLIN };
        cr_assert(poll(&p, 1, 10000) == 1 && read(pfd[0], &c, 1) == 1, "ashmd did not start");
        close(pfd[0]);
        setenv("ASHM_SOCKET", d->sock, 1);
        tests_daemon_pid = d->pid;
        snprintf(tests_daemon_dir, sizeof(tests_daemon_dir), "%s", d->dir);
}

static inline void daemon_start_args(struct test_daemon *d, const char *const *extra) {
        strcpy(d->dir, "/tmp/ashm-test-XXXXXX");
        cr_assert_not_null(mkdtemp(d->dir));
        snprintf(d->sock, sizeof(d->sock), "%s/ashmd.sock", d->dir);
        daemon_spawn(d, extra);
}

static inline void daemon_start(struct test_daemon *d) {
        daemon_start_args(d, NULL);
}

/* SIGTERM, reap (it must exit 0), remove its directory. */
static inline void daemon_stop(struct test_daemon *d) {
        char path[128];
        int status;

        cr_assert(kill(d->pid, SIGTERM) == 0);
        cr_assert(waitpid(d->pid, &status, 0) == d->pid);
        tests_daemon_pid = 0;
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "ashmd exited with status 0x%x", status);
        snprintf(path, sizeof(path), "%s/ashmd.pid", d->dir);
        unlink(path);
        unlink(d->sock);
        rmdir(d->dir);
}

/* SIGKILL: a daemon that dies without cleaning up. */
static inline void daemon_kill(struct test_daemon *d) {
        cr_assert(kill(d->pid, SIGKILL) == 0);
        cr_assert(waitpid(d->pid, NULL, 0) == d->pid);
        tests_daemon_pid = 0;
}
