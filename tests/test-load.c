/* SPDX-License-Identifier: MIT */
/* ashmd under load and at its limits: a thousand clients connected at
 * once publishing and looking up names, and a daemon that runs out of
 * file descriptors. The library keeps one connection per process, so
 * these tests speak the raw protocol on many sockets per process. Run
 * with --verbose for the timings and CPU numbers. */
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "protocol.h"
#include "socket-util.h"
#include "tests.h"

ASHM_SUITE(load);

#define WORKERS 10
#define PER_WORKER 100
#define CLIENTS (WORKERS * PER_WORKER)
#define REGION_SIZE 4096

/* What a daemon with a low fd limit gets, and a flood that exceeds it. */
#define LOW_LIMIT 64
#define FLOOD 100

/* ---- raw protocol, without assertions (workers use it too) ------------- */

static int dial_raw(const char *sock) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

        if (fd < 0)
                return -errno;
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                int r = -errno;

                close(fd);
                return r;
        }
        return fd;
}

/* 0, or -ECONNRESET when the daemon has hung up. */
static int send_req(int fd, uint16_t type, const void *body, size_t len, const int *fds, size_t n_fds) {
        char buf[PROTO_MSG_MAX];
        struct proto_hdr h;
        ssize_t n;

        proto_header(&h, type, 1, 0, (uint32_t) n_fds);
        memcpy(buf, &h, sizeof(h));
        if (len)
                memcpy(buf + sizeof(h), body, len);
        n = send_fds(fd, buf, sizeof(h) + len, fds, n_fds);
        if (n == -EPIPE || n == -ECONNRESET)
                return -ECONNRESET;
        return n < 0 ? (int) n : 0;
}

/* The reply's result (0 or the daemon's -errno); -ECONNRESET when the
 * daemon hung up, -ETIMEDOUT when nothing came, -EBADMSG for a reply
 * that is not one to this request. The first fd goes to *ret_fd. */
static int recv_rep(int fd, uint16_t type, void *rep, size_t rep_len, int *ret_fd, int timeout_ms) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        char buf[PROTO_MSG_MAX];
        int got[PROTO_FDS_MAX];
        size_t n_got = 0;
        struct proto_msg m;
        ssize_t n;
        int r;

        r = poll(&p, 1, timeout_ms);
        if (r <= 0)
                return r == 0 ? -ETIMEDOUT : -errno;
        n = recv_fds(fd, buf, sizeof(buf), got, PROTO_FDS_MAX, &n_got);
        if (n == -ECONNRESET || n == -EPIPE)
                return -ECONNRESET;
        if (n < 0)
                return (int) n;
        if (proto_decode(buf, (size_t) n, n_got, 1, &m) < 0 || m.hdr.type != (type | PROTO_REPLY)) {
                close_many(got, n_got);
                return -EBADMSG;
        }
        if (m.hdr.result >= 0 && rep_len)
                memcpy(rep, m.body, MIN(rep_len, m.body_len));
        if (n_got && ret_fd) {
                *ret_fd = got[0];
                close_many(got + 1, n_got - 1);
        } else
                close_many(got, n_got);
        return m.hdr.result;
}

static int ask_raw(int fd, uint16_t type, const void *body, size_t len, const int *fds, size_t n_fds, void *rep,
                   size_t rep_len, int *ret_fd) {
        int r = send_req(fd, type, body, len, fds, n_fds);

        return r < 0 ? r : recv_rep(fd, type, rep, rep_len, ret_fd, 10000);
}

/* The contents of client k's region: its name, then a byte pattern. */
static void region_contents(int k, char *buf) {
        for (int i = 0; i < REGION_SIZE; i++)
                buf[i] = (char) ((k * 7 + i) & 0xff);
        snprintf(buf, 32, "load-%04d", k);
}

static int region_new(int k) {
        char buf[REGION_SIZE];
        int fd = memfd_create("load", MFD_CLOEXEC | MFD_ALLOW_SEALING);

        if (fd < 0)
                return -errno;
        region_contents(k, buf);
        if (write_full(fd, buf, sizeof(buf)) < 0) {
                close(fd);
                return -EIO;
        }
        return fd;
}

static int publish_raw(int sock, const char *name, int region) {
        struct proto_publish_req req = { .mode = 0600 };

        snprintf(req.name, sizeof(req.name), "%s", name);
        return ask_raw(sock, PROTO_PUBLISH, &req, sizeof(req), &region, 1, NULL, 0, NULL);
}

static struct proto_lookup_req lookup_req(const char *name, uint32_t access) {
        struct proto_lookup_req req = { .access = access };

        snprintf(req.name, sizeof(req.name), "%s", name);
        return req;
}

static int unpublish_raw(int sock, const char *name) {
        struct proto_unpublish_req req;

        memset(&req, 0, sizeof(req));
        snprintf(req.name, sizeof(req.name), "%s", name);
        return ask_raw(sock, PROTO_UNPUBLISH, &req, sizeof(req), NULL, 0, NULL, 0, NULL);
}

/* Does fd hold client k's region? */
static bool region_is(int fd, int k) {
        char want[REGION_SIZE], got[REGION_SIZE];

        region_contents(k, want);
        return pread_full(fd, got, sizeof(got), 0) >= 0 && memcmp(want, got, sizeof(got)) == 0;
}

static void raise_nofile(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
}

static double now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

/* ---- the test process's side, with assertions --------------------------- */

static int dial(const struct test_daemon *d) {
        int fd = dial_raw(d->sock);

        cr_assert(fd >= 0, "connect: %s", strerror(-fd));
        return fd;
}

/* A reply must come: the daemon's result, or -ECONNRESET for a hang-up. */
static int ask(int fd, uint16_t type, const void *body, size_t len, const int *fds, size_t n_fds, void *rep,
               size_t rep_len, int *ret_fd) {
        int r = ask_raw(fd, type, body, len, fds, n_fds, rep, rep_len, ret_fd);

        cr_assert(r != -ETIMEDOUT && r != -EBADMSG, "request %u: %s", type, errname(r));
        return r;
}

static void status(int fd, struct proto_status_rep *st) {
        assert_ok(ask(fd, PROTO_STATUS, NULL, 0, NULL, 0, st, sizeof(*st), NULL));
}

static int lookup(int sock, const char *name, uint32_t access, int *ret_fd) {
        struct proto_lookup_req req = lookup_req(name, access);
        struct proto_lookup_rep rep;

        return ask(sock, PROTO_LOOKUP, &req, sizeof(req), NULL, 0, &rep, sizeof(rep), ret_fd);
}

/* How many names the daemon holds (all of them: we are their owner). */
static uint64_t names_count(int sock) {
        struct proto_list_rep rep;
        int fd = -1;

        assert_ok(ask(sock, PROTO_NAMES, NULL, 0, NULL, 0, &rep, sizeof(rep), &fd));
        safe_close(fd);
        return rep.count;
}

/* The daemon notices hang-ups in its own time: poll, with a bound. */
static void wait_clients(int sock, uint64_t n) {
        struct proto_status_rep st;

        for (int i = 0; i < 2000; i++) {
                status(sock, &st);
                if (st.clients == n)
                        return;
                usleep(5000);
        }
        cr_assert_fail("the daemon still counts %llu clients, expected %llu", (unsigned long long) st.clients,
                       (unsigned long long) n);
}

static int daemon_fds(pid_t pid) {
        char path[64];
        struct dirent *de;
        DIR *dir;
        int n = 0;

        snprintf(path, sizeof(path), "/proc/%d/fd", (int) pid);
        dir = opendir(path);
        cr_assert_not_null(dir);
        while ((de = readdir(dir)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(dir);
        return n;
}

static int daemon_lowest_free_fd(pid_t pid) {
        bool used[LOW_LIMIT + 1] = { false };
        char path[64];
        struct dirent *de;
        DIR *dir;
        int lowest = 0;

        snprintf(path, sizeof(path), "/proc/%d/fd", (int) pid);
        dir = opendir(path);
        cr_assert_not_null(dir);
        while ((de = readdir(dir)))
                if (de->d_name[0] != '.' && atoi(de->d_name) <= LOW_LIMIT)
                        used[atoi(de->d_name)] = true;
        closedir(dir);
        while (used[lowest])
                lowest++;
        return lowest;
}

/* CPU time (user + system) the process has used, in ms. */
static long cpu_ms(pid_t pid) {
        char path[64], buf[1024], *p;
        unsigned long long utime, stime;
        ssize_t n;
        int fd;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        cr_assert(fd >= 0);
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        cr_assert(n > 0);
        buf[n] = '\0';
        /* After the command name, in parentheses: state is field 3,
         * utime 14, stime 15. */
        p = strrchr(buf, ')');
        cr_assert(p && sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) == 2);
        return (long) ((utime + stime) * 1000 / (unsigned long long) sysconf(_SC_CLK_TCK));
}

/* CPU the daemon burns over a fixed window while it is under pressure:
 * the window is the measurement, not a wait for the daemon. */
static long cpu_over_window(pid_t pid, int window_ms) {
        struct timespec ts = { window_ms / 1000, (long) (window_ms % 1000) * 1000000 };
        long before = cpu_ms(pid);

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
        return cpu_ms(pid) - before;
}

/* ---- a private daemon with a low fd limit ------------------------------- */

/* daemon_spawn() of tests.h, with RLIMIT_NOFILE set in the child: ashmd
 * raises its soft limit to the hard one, so both are set. */
static void daemon_start_limited(struct test_daemon *d, rlim_t limit) {
        const char *args[] = { ASHMD, "--socket", d->sock, "--ready-fd", "3", "--no-pressure", NULL };
        struct rlimit rl = { limit, limit };
        struct pollfd p;
        int pfd[2];
        char c;

        strcpy(d->dir, "/tmp/ashm-test-XXXXXX");
        cr_assert_not_null(mkdtemp(d->dir));
        snprintf(d->sock, sizeof(d->sock), "%s/ashmd.sock", d->dir);
        cr_assert(pipe2(pfd, O_CLOEXEC) == 0);
        d->pid = fork();
        cr_assert(d->pid >= 0);
        if (d->pid == 0) {
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || dup2(pfd[1], 3) < 0 ||
                    setrlimit(RLIMIT_NOFILE, &rl) < 0)
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

/* A daemon out of fds may hang up before the request is even sent. */
static void send_status(int fd) {
        int r = send_req(fd, PROTO_STATUS, NULL, 0, NULL, 0);

        cr_assert(r == 0 || r == -ECONNRESET, "send: %s", errname(r));
}

/* Every connection in conns[] sent a STATUS: each must be answered or
 * hung up on, not left waiting, within one deadline for all. Hung-up
 * ones are closed and set to -1. */
static void resolve(int *conns, int n, int *ret_served, int *ret_hungup) {
        double deadline = now_ms() + 5000;
        struct proto_status_rep st;
        int served = 0, hungup = 0;

        for (int i = 0; i < n; i++) {
                int left = (int) (deadline - now_ms()), r;

                r = recv_rep(conns[i], PROTO_STATUS, &st, sizeof(st), NULL, left > 0 ? left : 0);
                if (r == 0)
                        served++;
                else if (r == -ECONNRESET) {
                        hungup++;
                        conns[i] = safe_close(conns[i]);
                } else
                        cr_assert_fail("connection %d of %d: %s; the daemon left it waiting", i, n, errname(r));
        }
        *ret_served = served;
        *ret_hungup = hungup;
}

/* Publish fresh regions as "<prefix>-N" until the daemon says it cannot;
 * returns how many it took, the refusal in *ret_last. */
static int publish_until_refused(int sock, const char *prefix, int *ret_last) {
        char name[64];
        int n, r = 0;

        for (n = 0; n < 4 * LOW_LIMIT; n++) {
                int region = region_new(n);

                cr_assert(region >= 0);
                snprintf(name, sizeof(name), "%s-%d", prefix, n);
                r = publish_raw(sock, name, region);
                close(region);
                if (r < 0)
                        break;
        }
        *ret_last = r;
        return n;
}

static void unpublish_all(int sock, const char *prefix, int n) {
        char name[64];

        for (int i = 0; i < n; i++) {
                snprintf(name, sizeof(name), "%s-%d", prefix, i);
                assert_ok(unpublish_raw(sock, name));
        }
}

/* Publishing stopped with -EMFILE on sock: the daemon has one fd left,
 * for a request that brings one and keeps none, or takes one for its
 * reply. What needs more is refused with an error reply, again and
 * again, and the connection stays; what needs no more is served. */
static void expect_at_limit(int sock, const char *prefix) {
        struct proto_register_req reg = { 0 };
        struct proto_register_rep reg_rep;
        char name[64];
        int region = region_new(0), fd = -1;

        cr_assert(region >= 0);
        assert_fail(publish_raw(sock, "one-more", region), EMFILE);
        assert_fail(publish_raw(sock, "one-more", region), EMFILE);
        assert_fail(ask(sock, PROTO_REGISTER, &reg, sizeof(reg), &region, 1, &reg_rep, sizeof(reg_rep), NULL),
                    EMFILE);
        close(region);
        snprintf(name, sizeof(name), "%s-0", prefix);
        assert_ok(lookup(sock, name, PROTO_ACCESS_READ, &fd));
        cr_assert(region_is(fd, 0));
        close(fd);
}

/* What a daemon that was out of fds must do again once some are free:
 * take a new connection, publish, look up; and hold no fd more than at
 * rest before the pressure. */
static void expect_recovered(const struct test_daemon *d, int sock, int rest_fds) {
        int fresh, region, fd = -1;

        wait_clients(sock, 1);
        fresh = dial(d);
        region = region_new(4242);
        cr_assert(region >= 0);
        assert_ok(publish_raw(fresh, "fresh", region));
        close(region);
        assert_ok(lookup(fresh, "fresh", PROTO_ACCESS_READ, &fd));
        cr_assert(region_is(fd, 4242), "the looked-up region holds what was published");
        close(fd);
        assert_ok(unpublish_raw(fresh, "fresh"));
        close(fresh);
        wait_clients(sock, 1);
        cr_assert_eq(daemon_fds(d->pid), rest_fds, "the daemon holds %d fds, %d at rest before: a leak",
                     daemon_fds(d->pid), rest_fds);
}

/* ---- a thousand clients -------------------------------------------------- */

enum { PH_CONNECT, PH_PUBLISH, PH_LOOKUP, PH_CLOSE, PH_N };
static const char *const phase_name[PH_N] = { "connect", "publish", "lookup", "close" };

struct report {
        int phase;
        int err;   /* 0, or -errno of the first failure */
        int line;  /* where it failed */
        int index; /* which client */
};

static void client_name(int k, char *buf, size_t len) {
        snprintf(buf, len, "load-%04d", k);
}

#define WCHECK(expr, i)                                             \
        do {                                                        \
                int r_ = (expr);                                    \
                if (r_ < 0) {                                       \
                        rep.err = r_;                               \
                        rep.line = __LINE__;                        \
                        rep.index = (i);                            \
                        goto out;                                   \
                }                                                   \
        } while (0)

/* Wait for the go of the next phase; a parent that is gone means stop. */
static int worker_wait(int ctl) {
        struct pollfd p = { .fd = ctl, .events = POLLIN };
        char c;

        if (poll(&p, 1, 30000) != 1 || read(ctl, &c, 1) != 1)
                return -ECANCELED;
        return 0;
}

static void worker_publish(int w, const int *socks, struct report *ret) {
        struct report rep = *ret;
        char name[32];

        /* Every request goes out before the first reply is read: the
         * daemon has a hundred requests of this worker queued at once. */
        for (int i = 0; i < PER_WORKER; i++) {
                struct proto_publish_req req = { .mode = 0600 };
                int k = w * PER_WORKER + i, region = region_new(k);

                WCHECK(region, i);
                client_name(k, name, sizeof(name));
                memcpy(req.name, name, strlen(name));
                WCHECK(send_req(socks[i], PROTO_PUBLISH, &req, sizeof(req), &region, 1), i);
                close(region); /* in flight: the kernel holds it */
        }
        for (int i = 0; i < PER_WORKER; i++)
                WCHECK(recv_rep(socks[i], PROTO_PUBLISH, NULL, 0, NULL, 20000), i);
out:
        *ret = rep;
}

/* Client i of worker w looks up client i of the next worker: a name
 * another process published. */
static void worker_lookup(int w, const int *socks, struct report *ret) {
        struct report rep = *ret;
        char name[32];

        for (int i = 0; i < PER_WORKER; i++) {
                int k = ((w + 1) % WORKERS) * PER_WORKER + i;
                struct proto_lookup_req req;

                client_name(k, name, sizeof(name));
                req = lookup_req(name, PROTO_ACCESS_READ);
                WCHECK(send_req(socks[i], PROTO_LOOKUP, &req, sizeof(req), NULL, 0), i);
        }
        for (int i = 0; i < PER_WORKER; i++) {
                int k = ((w + 1) % WORKERS) * PER_WORKER + i, fd = -1;
                struct proto_lookup_rep lr;

                WCHECK(recv_rep(socks[i], PROTO_LOOKUP, &lr, sizeof(lr), &fd, 20000), i);
                WCHECK(fd >= 0 && lr.size == REGION_SIZE ? 0 : -EBADMSG, i);
                WCHECK(region_is(fd, k) ? 0 : -EILSEQ, i);
                close(fd);
        }
out:
        *ret = rep;
}

/* One worker: PER_WORKER connections, driven phase by phase from ctl. */
static void __attribute__((noreturn)) worker(int w, int ctl, const char *sock) {
        int socks[PER_WORKER];
        struct report rep = { 0 };
        int opened = 0;

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        raise_nofile();
        for (rep.phase = 0; rep.phase < PH_N; rep.phase++) {
                WCHECK(worker_wait(ctl), -1);
                switch (rep.phase) {
                case PH_CONNECT:
                        for (; opened < PER_WORKER; opened++) {
                                socks[opened] = dial_raw(sock);
                                WCHECK(socks[opened], opened);
                        }
                        break;
                case PH_PUBLISH:
                        worker_publish(w, socks, &rep);
                        break;
                case PH_LOOKUP:
                        worker_lookup(w, socks, &rep);
                        break;
                case PH_CLOSE:
                        close_many(socks, (size_t) opened);
                        opened = 0;
                        break;
                }
                if (rep.err < 0)
                        goto out;
                if (write(ctl, &rep, sizeof(rep)) != sizeof(rep))
                        _exit(2);
        }
        _exit(0);
out:
        (void) !write(ctl, &rep, sizeof(rep));
        _exit(1);
}

/* Start every worker on the next phase and wait until all have done it. */
static double run_phase(const int *ctl, int phase) {
        double start = now_ms();
        struct report rep;

        for (int w = 0; w < WORKERS; w++)
                cr_assert(write(ctl[w], "g", 1) == 1);
        for (int w = 0; w < WORKERS; w++) {
                struct pollfd p = { .fd = ctl[w], .events = POLLIN };

                cr_assert(poll(&p, 1, 25000) == 1, "worker %d: no word on the %s phase", w, phase_name[phase]);
                cr_assert(read(ctl[w], &rep, sizeof(rep)) == sizeof(rep), "worker %d died in the %s phase", w,
                          phase_name[phase]);
                cr_assert(rep.err == 0 && rep.phase == phase, "worker %d, client %d, %s phase (line %d): %s", w,
                          rep.index, phase_name[rep.phase], rep.line, errname(rep.err));
        }
        return now_ms() - start;
}

ASHM_TEST(load, thousand_clients_publish_and_lookup, .timeout = 60) {
        struct test_daemon d;
        struct proto_status_rep st;
        struct rlimit rl;
        double ms[PH_N], start;
        int ctl[WORKERS], sock, fd = -1, rest_fds;
        pid_t pids[WORKERS];

        cr_assert(getrlimit(RLIMIT_NOFILE, &rl) == 0);
        if (rl.rlim_max < 2 * CLIENTS + 64)
                cr_skip_test("the hard fd limit (%llu) is too low for %d clients", (unsigned long long) rl.rlim_max,
                             CLIENTS);
        daemon_start(&d);
        sock = dial(&d);
        status(sock, &st);
        rest_fds = daemon_fds(d.pid);
        start = now_ms();
        for (int w = 0; w < WORKERS; w++) {
                int sv[2];

                cr_assert(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
                pids[w] = fork();
                cr_assert(pids[w] >= 0);
                if (pids[w] == 0) {
                        close(sv[0]);
                        worker(w, sv[1], d.sock);
                }
                close(sv[1]);
                ctl[w] = sv[0];
        }

        ms[PH_CONNECT] = run_phase(ctl, PH_CONNECT);
        wait_clients(sock, CLIENTS + 1); /* all of them at once, and us */
        ms[PH_PUBLISH] = run_phase(ctl, PH_PUBLISH);
        cr_assert_eq(names_count(sock), CLIENTS);
        ms[PH_LOOKUP] = run_phase(ctl, PH_LOOKUP);
        ms[PH_CLOSE] = run_phase(ctl, PH_CLOSE);
        for (int w = 0; w < WORKERS; w++) {
                int status_;

                cr_assert(waitpid(pids[w], &status_, 0) == pids[w]);
                cr_assert(WIFEXITED(status_) && WEXITSTATUS(status_) == 0, "worker %d: status 0x%x", w, status_);
                close(ctl[w]);
        }

        /* Healthy, and the names of the publishers that left are gone. */
        wait_clients(sock, 1);
        cr_assert_eq(names_count(sock), 0);
        assert_fail(lookup(sock, "load-0000", PROTO_ACCESS_READ, &fd), ENOENT);
        cr_assert_eq(daemon_fds(d.pid), rest_fds, "the daemon holds %d fds, %d at rest before", daemon_fds(d.pid),
                     rest_fds);
        cr_log_info("load: %d clients (%d processes): connect %.0f ms, publish %.0f ms, lookup %.0f ms, "
                        "close %.0f ms; %.0f ms in all",
                CLIENTS, WORKERS, ms[PH_CONNECT], ms[PH_PUBLISH], ms[PH_LOOKUP], ms[PH_CLOSE], now_ms() - start);
        cr_expect_lt(now_ms() - start, 30000.0, "a thousand clients must not take 30 s");
        close(sock);
        daemon_stop(&d);
}

/* ---- out of file descriptors --------------------------------------------- */

/* More connections than the daemon has fds: those it cannot take are
 * hung up on at once (not left in the backlog, which would make a
 * level-triggered epoll spin), and those it took are all still served,
 * with error replies for what needs an fd it does not have. */
ASHM_TEST(load, connection_flood_beyond_fd_limit) {
        struct test_daemon d;
        struct proto_status_rep st;
        int c0, conns[FLOOD], served, hungup, rest_fds, n_names, last;
        long cpu;

        daemon_start_limited(&d, LOW_LIMIT);
        c0 = dial(&d);
        status(c0, &st);
        rest_fds = daemon_fds(d.pid);

        for (int i = 0; i < FLOOD; i++) {
                conns[i] = dial(&d); /* the listen backlog takes them all */
                send_status(conns[i]);
        }
        cpu = cpu_over_window(d.pid, 500);
        cr_log_info("flood: ashmd used %ld ms of CPU in 500 ms with %d connections beyond its limit", cpu,
                FLOOD);
        cr_expect_lt(cpu, 100, "ashmd spins when out of fds: %ld ms of CPU in 500 ms", cpu);
        resolve(conns, FLOOD, &served, &hungup);
        cr_log_info("flood: %d served, %d hung up (fd limit %d, %d fds at rest)", served, hungup, LOW_LIMIT,
                rest_fds);
        cr_assert_gt(hungup, 0);
        cr_assert_gt(served, LOW_LIMIT / 2);

        /* Saturated by connections, it still answers: requests that need
         * an fd it lacks get an error reply, and nobody is dropped. */
        n_names = publish_until_refused(c0, "flood", &last);
        cr_assert(last == -EMFILE || last == -ENFILE, "publish at the limit: %s after %d names", errname(last),
                  n_names);
        expect_at_limit(c0, "flood");
        status(c0, &st);
        for (int i = 0; i < FLOOD; i++)
                if (conns[i] >= 0)
                        status(conns[i], &st);
        cr_assert_eq(st.clients, (uint64_t) served + 1, "no connection was dropped");

        for (int i = 0; i < FLOOD; i++)
                safe_close(conns[i]);
        wait_clients(c0, 1);
        unpublish_all(c0, "flood", n_names);
        expect_recovered(&d, c0, rest_fds);
        close(c0);
        daemon_stop(&d);
}

/* Names hold fds: publish until the daemon has none left. Whatever needs
 * one is refused with -EMFILE on a connection that stays open. */
ASHM_TEST(load, names_exhaust_fd_limit) {
        struct test_daemon d;
        struct proto_status_rep st;
        int c0, conns[20], served, hungup, rest_fds, n_names, last;
        long cpu;

        daemon_start_limited(&d, LOW_LIMIT);
        c0 = dial(&d);
        status(c0, &st);
        rest_fds = daemon_fds(d.pid);

        n_names = publish_until_refused(c0, "name", &last);
        cr_log_info("names: %d names published, then %s (fd limit %d, %d fds at rest)", n_names, errname(last),
                LOW_LIMIT, rest_fds);
        cr_assert(last == -EMFILE || last == -ENFILE, "publish at the limit: %s", errname(last));
        cr_assert_gt(n_names, LOW_LIMIT / 2);

        expect_at_limit(c0, "name");
        status(c0, &st);
        cr_assert_eq(st.clients, 1);

        /* New connections while it is full: answered by a hang-up. */
        for (size_t i = 0; i < ELEMENTSOF(conns); i++) {
                conns[i] = dial(&d);
                send_status(conns[i]);
        }
        cpu = cpu_over_window(d.pid, 500);
        cr_log_info("names: ashmd used %ld ms of CPU in 500 ms, full, with %zu connections pending", cpu,
                ELEMENTSOF(conns));
        cr_expect_lt(cpu, 100, "ashmd spins when out of fds: %ld ms of CPU in 500 ms", cpu);
        resolve(conns, (int) ELEMENTSOF(conns), &served, &hungup);
        cr_assert_eq(served + hungup, (int) ELEMENTSOF(conns));
        cr_assert_gt(hungup, 0);
        for (size_t i = 0; i < ELEMENTSOF(conns); i++)
                safe_close(conns[i]);

        unpublish_all(c0, "name", n_names);
        expect_recovered(&d, c0, rest_fds);
        close(c0);
        daemon_stop(&d);
}

/* The fd limit lowered under a running daemon (prlimit), below what it
 * holds: accept4() itself fails with EMFILE. The pending connections are
 * hung up on, and the daemon does not spin. */
ASHM_TEST(load, accept_at_emfile_does_not_spin) {
        struct test_daemon d;
        struct proto_status_rep st;
        struct rlimit low, rl = { LOW_LIMIT, LOW_LIMIT };
        struct proto_list_rep list;
        int c0, conns[20], served, hungup, rest_fds, region, lowest_free, fd = -1;
        long cpu;

        daemon_start_limited(&d, LOW_LIMIT);
        c0 = dial(&d);
        status(c0, &st);
        region = region_new(7);
        cr_assert(region >= 0);
        assert_ok(publish_raw(c0, "kept", region));
        close(region);
        status(c0, &st); /* it closes what a request brought after replying */
        rest_fds = daemon_fds(d.pid);

        /* Every fd below the new limit is taken: no new fd fits. */
        lowest_free = daemon_lowest_free_fd(d.pid);
        low = (struct rlimit) { (rlim_t) lowest_free, LOW_LIMIT };
        cr_assert(prlimit(d.pid, RLIMIT_NOFILE, &low, NULL) == 0, "prlimit: %s", strerror(errno));

        for (size_t i = 0; i < ELEMENTSOF(conns); i++) {
                conns[i] = dial(&d);
                send_status(conns[i]);
        }
        cpu = cpu_over_window(d.pid, 500);
        cr_log_info("emfile: ashmd used %ld ms of CPU in 500 ms with accept4() failing (limit %d)", cpu,
                lowest_free);
        cr_expect_lt(cpu, 100, "ashmd spins on EMFILE: %ld ms of CPU in 500 ms", cpu);
        resolve(conns, (int) ELEMENTSOF(conns), &served, &hungup);
        cr_assert_eq(hungup, (int) ELEMENTSOF(conns), "%d connections served with no fd to serve them", served);
        for (size_t i = 0; i < ELEMENTSOF(conns); i++)
                safe_close(conns[i]);
        status(c0, &st);
        cr_assert_eq(st.clients, 1, "the connection it had stays");
        assert_fail(lookup(c0, "kept", PROTO_ACCESS_READ, &fd), EMFILE);
        assert_fail(ask(c0, PROTO_NAMES, NULL, 0, NULL, 0, &list, sizeof(list), &fd), EMFILE);
        status(c0, &st);

        cr_assert(prlimit(d.pid, RLIMIT_NOFILE, &rl, NULL) == 0);
        assert_ok(lookup(c0, "kept", PROTO_ACCESS_READ, &fd));
        cr_assert(region_is(fd, 7));
        close(fd);
        assert_ok(unpublish_raw(c0, "kept"));
        rest_fds--; /* the name's fd */
        expect_recovered(&d, c0, rest_fds);
        close(c0);
        daemon_stop(&d);
}
