/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "fd-util.h"
#include "protocol.h"
#include "runtime.h"
#include "socket-util.h"

#ifndef ASHMD_PATH
#define ASHMD_PATH "/usr/local/bin/ashmd"
#endif

/* How long to wait for a reply, or for an autostarted daemon to listen.
 * A bound, not a pace: a healthy daemon answers in microseconds. */
#define REPLY_TIMEOUT_MS 10000
#define START_TIMEOUT_MS 5000

extern char **environ;

/* Why the last start of the daemon failed, in the daemon's own words
 * when it said any (ashm__autostart_error()). Under conn.lock. */
static char start_error[512];

static struct {
        pthread_mutex_t lock;
        int fd;
        pid_t pid; /* the process that made fd: a forked child makes its own */
        uint32_t seq;
        uint64_t generation;
} conn = { PTHREAD_MUTEX_INITIALIZER, -1, 0, 0, 0 };

static void conn_atfork_prepare(void) {
        pthread_mutex_lock(&conn.lock);
}

static void conn_atfork_release(void) {
        pthread_mutex_unlock(&conn.lock);
}

static void conn_init(void) {
        pthread_atfork(conn_atfork_prepare, conn_atfork_release, conn_atfork_release);
}

static int connect_to(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -1;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return negative_errno();
        return TAKE_FD(fd);
}

static bool autostart_allowed(void) {
        const char *e = getenv("ASHM_NO_AUTOSTART");

        return !e || !*e || strcmp(e, "0") == 0;
}

/* The daemon's own words, from its stderr (a pipe we hold the read
 * end of): it has exited, or is stuck, so what it said is there to read
 * without waiting. Its last line is its reason; keep that one. */
static void keep_daemon_error(int err_fd, const char *exe, int r) {
        char buf[sizeof(start_error)], *line = NULL, *save = NULL;
        ssize_t n;

        (void) fcntl(err_fd, F_SETFL, O_NONBLOCK);
        n = read(err_fd, buf, sizeof(buf) - 1);
        buf[n > 0 ? n : 0] = '\0';
        for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
                line = l;
        if (r == -ETIMEDOUT)
                snprintf(start_error, sizeof(start_error), "%s did not say it was ready in %d s%s%s", exe,
                         START_TIMEOUT_MS / 1000, line ? "; it said: " : "", line ? line : "");
        else if (line)
                snprintf(start_error, sizeof(start_error), "%s", line);
        else
                snprintf(start_error, sizeof(start_error), "%s exited without saying why", exe);
}

int ashm__autostart_error(char *buf, size_t len) {
        int r = -ENOENT;

        pthread_mutex_lock(&conn.lock);
        if (start_error[0]) {
                snprintf(buf, len, "%s", start_error);
                r = 0;
        }
        pthread_mutex_unlock(&conn.lock);
        return r;
}

/* Wait for the daemon's one-byte "listening" note on the pipe. */
static int wait_ready(int fd) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        char c;
        int r;

        do
                r = poll(&p, 1, START_TIMEOUT_MS);
        while (r < 0 && errno == EINTR);
        if (r < 0)
                return negative_errno();
        if (r == 0)
                return -ETIMEDOUT;
        return read(fd, &c, 1) == 1 ? 0 : -ECONNREFUSED;
}

/* Start ashmd the way gpg-agent is started: it detaches itself (its
 * first process exits at once, and we reap it), then writes a byte to
 * fd 3 once it listens, or exits and closes it on failure, e.g. because
 * another client started one first (which it also reports as ready). */
static int spawn_daemon(const char *socket_path) {
        const char *exe = getenv("ASHMD");
        char *argv[] = { "ashmd", "--autostarted", "--ready-fd", "3", "--socket", (char *) socket_path, NULL };
        posix_spawn_file_actions_t fa;
        _cleanup_close_ int rd = -1, err_rd = -1;
        char **env = NULL;
        size_t n = 0, k = 0;
        int p[2], e[2], r, status;
        pid_t pid;

        start_error[0] = '\0';
        if (!exe || !*exe)
                exe = ASHMD_PATH;
        if (pipe2(p, O_CLOEXEC) < 0)
                return negative_errno();
        rd = p[0];
        /* The daemon's stderr, read only if it fails to start: after
         * that it writes into a pipe nobody reads (EPIPE, which it
         * ignores), as it wrote to /dev/null before. */
        if (pipe2(e, O_CLOEXEC) < 0) {
                safe_close(p[1]);
                return negative_errno();
        }
        err_rd = e[0];
        /* Not LD_PRELOAD: a program under the /dev/ashmem shim would hand
         * the shim to the daemon too. */
        while (environ[n])
                n++;
        env = calloc(n + 1, sizeof(char *));
        if (!env) {
                safe_close(p[1]);
                safe_close(e[1]);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
                if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0)
                        env[k++] = environ[i];
        posix_spawn_file_actions_init(&fa);
        /* Nothing of the starter's: a daemon holding its stdout would keep
         * "prog | cat" waiting until the daemon's idle exit. */
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, e[1], 2);
        posix_spawn_file_actions_adddup2(&fa, p[1], 3);
        r = -posix_spawn(&pid, exe, &fa, NULL, argv, env);
        posix_spawn_file_actions_destroy(&fa);
        free(env);
        safe_close(p[1]);
        safe_close(e[1]);
        if (r < 0) {
                snprintf(start_error, sizeof(start_error), "cannot run %s: %s%s", exe, strerror(-r),
                         r == -ENOENT ? " (is ashmd installed? $ASHMD names the program to start)" : "");
                return r == -ENOENT ? -ECONNREFUSED : r;
        }
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        r = wait_ready(rd);
        if (r < 0)
                keep_daemon_error(err_rd, exe, r);
        return r;
}

/* Connect, starting the daemon if none listens. Called locked. */
static int conn_open(void) {
        char path[108];
        bool system;
        int fd, r;

        r = ashm__client_socket_path(path, sizeof(path), &system);
        if (r < 0)
                return r;
        fd = connect_to(path);
        /* A system daemon that has gone: start the user's own. */
        if (system && (fd == -ENOENT || fd == -ECONNREFUSED)) {
                r = ashm__socket_path(path, sizeof(path));
                if (r < 0)
                        return r;
                fd = connect_to(path);
        }
        if (fd == -ENOENT || fd == -ECONNREFUSED) {
                if (!autostart_allowed())
                        return -ECONNREFUSED;
                r = ashm__runtime_dir_prepare(path);
                if (r < 0)
                        return r;
                r = spawn_daemon(path);
                if (r < 0)
                        return r;
                fd = connect_to(path);
                if (fd == -ENOENT)
                        fd = -ECONNREFUSED;
        }
        if (fd < 0)
                return fd;
        conn.fd = fd;
        conn.pid = getpid();
        __atomic_add_fetch(&conn.generation, 1, __ATOMIC_RELEASE);
        return 0;
}

static void conn_drop(void) {
        /* In a forked child the fd is the parent's connection too: close
         * only our copy, never talk on it. */
        conn.fd = safe_close(conn.fd);
}

static int conn_ensure(void) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;

        pthread_once(&once, conn_init);
        if (conn.fd >= 0 && conn.pid != getpid())
                conn_drop();
        return conn.fd >= 0 ? 0 : conn_open();
}

static int recv_reply(void *buf, size_t len, int *fds, size_t *ret_n_fds) {
        struct pollfd p = { .fd = conn.fd, .events = POLLIN };
        ssize_t n;
        int r;

        do
                r = poll(&p, 1, REPLY_TIMEOUT_MS);
        while (r < 0 && errno == EINTR);
        if (r < 0)
                return negative_errno();
        if (r == 0)
                return -ETIMEDOUT;
        n = recv_fds(conn.fd, buf, len, fds, PROTO_FDS_MAX, ret_n_fds);
        return (int) n;
}

/* One exchange on the current connection. Transport errors are
 * negative; the daemon's own answer goes to *ret_result. */
static int exchange(uint16_t type, const void *body, size_t body_len, const int *fds, size_t n_fds, void *rep,
                    size_t rep_len, int *ret_fds, size_t n_ret_fds, int *ret_result) {
        char out[PROTO_MSG_MAX], in[PROTO_MSG_MAX];
        int got[PROTO_FDS_MAX];
        struct proto_hdr h;
        struct proto_msg m;
        size_t n_got = 0;
        int n, r;

        proto_header(&h, type, ++conn.seq, 0, (uint32_t) n_fds);
        if (h.len != sizeof(h) + body_len)
                return -EINVAL;
        memcpy(out, &h, sizeof(h));
        if (body_len)
                memcpy(out + sizeof(h), body, body_len);
        n = (int) send_fds(conn.fd, out, h.len, fds, n_fds);
        if (n < 0)
                return n;
        n = recv_reply(in, sizeof(in), got, &n_got);
        if (n < 0)
                return n;
        r = proto_decode(in, (size_t) n, n_got, 1, &m);
        if (r < 0 || m.hdr.type != (type | PROTO_REPLY) || m.hdr.seq != h.seq) {
                close_many(got, n_got);
                return -EBADMSG;
        }
        *ret_result = m.hdr.result;
        if (m.hdr.result >= 0) {
                if (m.body_len != rep_len) {
                        close_many(got, n_got);
                        return -EBADMSG;
                }
                if (rep_len)
                        memcpy(rep, m.body, rep_len);
        }
        for (size_t i = 0; i < n_got; i++) {
                if (i < n_ret_fds)
                        ret_fds[i] = got[i];
                else
                        safe_close(got[i]);
        }
        return 0;
}

int ashm__request(uint16_t type, const void *body, size_t body_len, const int *fds, size_t n_fds, void *rep,
                  size_t rep_len, int *ret_fds, size_t n_ret_fds) {
        int r = 0, result = 0;

        pthread_mutex_lock(&conn.lock);
        for (int attempt = 0; attempt < 2; attempt++) {
                r = conn_ensure();
                if (r < 0)
                        break;
                r = exchange(type, body, body_len, fds, n_fds, rep, rep_len, ret_fds, n_ret_fds, &result);
                if (r >= 0)
                        break;
                /* The daemon went away (or talks nonsense): a new
                 * connection, perhaps to a new daemon, gets one more try. */
                conn_drop();
                if (r != -EPIPE && r != -ECONNRESET && r != -ENOTCONN)
                        break;
        }
        pthread_mutex_unlock(&conn.lock);
        return r < 0 ? r : result;
}

uint64_t ashm__client_generation(void) {
        return __atomic_load_n(&conn.generation, __ATOMIC_ACQUIRE);
}

const uint64_t *ashm__client_generation_word(void) {
        return &conn.generation;
}

void ashm__client_check(void) {
        struct pollfd p;

        if (pthread_mutex_trylock(&conn.lock) != 0)
                return; /* someone is talking to the daemon right now */
        if (conn.fd >= 0 && conn.pid == getpid()) {
                p = (struct pollfd) { .fd = conn.fd, .events = POLLIN };
                /* Nothing is ever sent unasked: readable means hung up. */
                if (poll(&p, 1, 0) > 0) {
                        conn_drop();
                        (void) conn_open();
                }
        }
        pthread_mutex_unlock(&conn.lock);
}
