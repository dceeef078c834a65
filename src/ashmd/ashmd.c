/* SPDX-License-Identifier: MIT */
/*
 * ashmd: the userspace Ashmem driver. Holds the pin-state registry of the
 * regions its clients use, and purges unpinned pages, least recently
 * unpinned first, when unpinned memory passes its cap, when the kernel
 * reports memory pressure, or when the cgroup nears its memory limit.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ashm.h"
#include "cgroup.h"
#include "fd-util.h"
#include "log.h"
#include "pressure.h"
#include "quota.h"
#include "runtime.h"
#include "server.h"
#include "size-util.h"

struct options {
        char socket_path[108];
        uint64_t max_unpinned;
        uint64_t cgroup_margin;
        uint64_t idle_exit_sec;
        uint64_t interval_ms;
        uint64_t socket_mode;
        int ready_fd;
        bool autostarted;
        bool idle_exit_set;
        bool no_pressure;
        bool socket_given; /* --socket: the user's path, used as it is */
        bool activated; /* systemd owns the socket: never unlink it */
        bool quota_given[_QUOTA_MAX];
};

static void usage(FILE *f) {
        fprintf(f,
                "Usage: ashmd [OPTIONS]\n"
                "The ashm daemon: pin-state registry and reclaimer of unpinned shared memory.\n\n"
                "  -s, --socket PATH         listen on PATH (default: $ASHM_SOCKET, else\n"
                "                            $XDG_RUNTIME_DIR/ashm/ashmd.sock, else /tmp/ashm-UID/ashmd.sock)\n"
                "  -m, --max-unpinned SIZE   cap on unpinned memory, e.g. 256M or 5%% (of RAM);\n"
                "                            default 10%% of RAM\n"
                "      --cgroup-margin SIZE  purge when the cgroup's memory headroom falls below\n"
                "                            SIZE (default 64M)\n"
                "      --idle-exit SECONDS   exit after SECONDS with no client and no region\n"
                "                            (default: never; 60 when started on demand)\n"
                "      --interval MS         how often to check the cap and the cgroup (default 250)\n"
                "      --no-pressure         do not watch memory pressure (PSI)\n"
                "      --socket-mode MODE    the socket's file mode (default 0600: only this user);\n"
                "                            0666 lets every user use the broker (a system daemon)\n"
                "      --max-user-connections N  connections per uid (default %u)\n"
                "      --max-user-regions N  regions held per uid, counted per connection (default %u)\n"
                "      --max-user-names N    published names per uid (default %u)\n"
                "      --max-user-memory SIZE  daemon memory per uid: pin-state blocks and records\n"
                "                            (default %lluM); root is never limited\n"
                "  -v, --verbose             log every region, client and purge\n"
                "      --version             print the version and exit\n"
                "  -h, --help                print this help and exit\n",
                QUOTA_CONNECTIONS_DEFAULT, QUOTA_REGIONS_DEFAULT, QUOTA_NAMES_DEFAULT,
                (unsigned long long) (QUOTA_MEMORY_DEFAULT >> 20));
}

/* "256M", "1.5G", "4096", "5%" (of physical memory): sizes as the ashm
 * tool reads them (size_parse(): K to P, fractions), or a percentage. */
static int parse_size(const char *s, uint64_t *ret) {
        char *end;
        unsigned long long v;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (!errno && end != s && *s != '-' && *end == '%' && end[1] == '\0') {
                if (v > 100)
                        return -EINVAL;
                *ret = (uint64_t) sysconf(_SC_PHYS_PAGES) * (uint64_t) sysconf(_SC_PAGESIZE) / 100 * v;
                return 0;
        }
        return size_parse(s, ret) < 0 ? -EINVAL : 0;
}

static int parse_uint(const char *s, uint64_t *ret) {
        char *end;

        errno = 0;
        *ret = strtoull(s, &end, 10);
        return errno || end == s || *end || *s == '-' ? -EINVAL : 0;
}

static const char *opt_name(const struct option *opts, int c) {
        for (; opts->name; opts++)
                if (opts->val == c)
                        return opts->name;
        return "?";
}

static int parse_args(int argc, char **argv, struct options *o) {
        enum {
                OPT_VERSION = 256,
                OPT_IDLE,
                OPT_INTERVAL,
                OPT_READY,
                OPT_AUTO,
                OPT_MARGIN,
                OPT_NOPRESSURE,
                OPT_MODE,
                OPT_QUOTA, /* + enum quota_kind */
        };
        static const struct option longopts[] = {
                { "socket", required_argument, NULL, 's' },
                { "max-unpinned", required_argument, NULL, 'm' },
                { "cgroup-margin", required_argument, NULL, OPT_MARGIN },
                { "idle-exit", required_argument, NULL, OPT_IDLE },
                { "interval", required_argument, NULL, OPT_INTERVAL },
                { "ready-fd", required_argument, NULL, OPT_READY },
                { "autostarted", no_argument, NULL, OPT_AUTO },
                { "no-pressure", no_argument, NULL, OPT_NOPRESSURE },
                { "socket-mode", required_argument, NULL, OPT_MODE },
                { "max-user-connections", required_argument, NULL, OPT_QUOTA + QUOTA_CONNECTIONS },
                { "max-user-regions", required_argument, NULL, OPT_QUOTA + QUOTA_REGIONS },
                { "max-user-names", required_argument, NULL, OPT_QUOTA + QUOTA_NAMES },
                { "max-user-memory", required_argument, NULL, OPT_QUOTA + QUOTA_MEMORY },
                { "verbose", no_argument, NULL, 'v' },
                { "version", no_argument, NULL, OPT_VERSION },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        uint64_t v;
        int c, r = 0;

        while ((c = getopt_long(argc, argv, "s:m:vh", longopts, NULL)) >= 0) {
                switch (c) {
                case 's':
                        o->socket_given = true;
                        if (snprintf(o->socket_path, sizeof(o->socket_path), "%s", optarg) >=
                            (int) sizeof(o->socket_path))
                                return fprintf(stderr, "ashmd: socket path too long: %s\n", optarg), -EINVAL;
                        break;
                case 'm':
                        r = parse_size(optarg, &o->max_unpinned);
                        break;
                case OPT_MARGIN:
                        r = parse_size(optarg, &o->cgroup_margin);
                        break;
                case OPT_IDLE:
                        r = parse_uint(optarg, &o->idle_exit_sec);
                        o->idle_exit_set = true;
                        break;
                case OPT_INTERVAL:
                        r = parse_uint(optarg, &o->interval_ms);
                        if (r >= 0 && (o->interval_ms == 0 || o->interval_ms > 60000))
                                r = -EINVAL;
                        break;
                case OPT_READY:
                        r = parse_uint(optarg, &v);
                        o->ready_fd = r < 0 || v > 1024 ? -1 : (int) v;
                        break;
                case OPT_AUTO:
                        o->autostarted = true;
                        break;
                case OPT_NOPRESSURE:
                        o->no_pressure = true;
                        break;
                case OPT_MODE: {
                        char *end;

                        errno = 0;
                        o->socket_mode = strtoull(optarg, &end, 8);
                        r = errno || *end || end == optarg || o->socket_mode > 0777 ? -EINVAL : 0;
                        break;
                }
                case OPT_QUOTA + QUOTA_CONNECTIONS:
                case OPT_QUOTA + QUOTA_REGIONS:
                case OPT_QUOTA + QUOTA_NAMES:
                case OPT_QUOTA + QUOTA_MEMORY:
                        r = c == OPT_QUOTA + QUOTA_MEMORY ? parse_size(optarg, &v) : parse_uint(optarg, &v);
                        if (r >= 0 && v == 0)
                                r = -EINVAL;
                        if (r >= 0) {
                                quota_set_limit((enum quota_kind) (c - OPT_QUOTA), v);
                                o->quota_given[c - OPT_QUOTA] = true;
                        }
                        break;
                case 'v':
                        log_max_level = LOG_LEVEL_DEBUG;
                        break;
                case OPT_VERSION:
                        printf("ashmd %s\n", ashm_version());
                        exit(0);
                case 'h':
                        usage(stdout);
                        exit(0);
                default:
                        usage(stderr);
                        return -EINVAL;
                }
                if (r < 0)
                        return fprintf(stderr, "ashmd: bad value for --%s: '%s'; see 'ashmd --help'\n",
                                       opt_name(longopts, c), optarg),
                               -EINVAL;
        }
        if (optind < argc)
                return fprintf(stderr, "ashmd: unexpected argument '%s'; see 'ashmd --help'\n", argv[optind]),
                       -EINVAL;
        return 0;
}

/* Tell whoever started us that we serve (or that another daemon does). */
static void notify_ready(struct options *o) {
        const char *sock = getenv("NOTIFY_SOCKET");

        if (o->ready_fd >= 0) {
                (void) !write(o->ready_fd, "R", 1);
                o->ready_fd = safe_close(o->ready_fd);
        }
        if (sock && (sock[0] == '/' || sock[0] == '@')) {
                struct sockaddr_un sa = { .sun_family = AF_UNIX };
                int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

                snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
                if (sa.sun_path[0] == '@')
                        sa.sun_path[0] = '\0';
                if (fd >= 0)
                        (void) sendto(fd, "READY=1", 7, MSG_NOSIGNAL, (struct sockaddr *) &sa, sizeof(sa));
                safe_close(fd);
        }
}

/* One daemon per socket: the pid file's lock says who. A daemon leaves
 * its pid file behind when it dies, or exits with regions registered: a
 * successor that finds one unlocked knows pin state may have been lost
 * (*ret_unclean). Returns the locked fd, 0 if another daemon holds it,
 * or -errno. */
static int lock_pid_file(const char *socket_path, bool *ret_unclean) {
        char path[128], buf[32];
        struct stat st;
        int fd, n;

        if (ashm__pid_path(socket_path, path, sizeof(path)) < 0)
                return -ENAMETOOLONG;
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return negative_errno();
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                safe_close(fd);
                return errno == EWOULDBLOCK ? 0 : negative_errno();
        }
        *ret_unclean = fstat(fd, &st) == 0 && st.st_size > 0;
        n = snprintf(buf, sizeof(buf), "%d\n", (int) getpid());
        if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t) n, 0) != n) {
                safe_close(fd);
                return negative_errno();
        }
        return fd;
}

/* systemd socket activation: the listening socket is fd 3. */
static int activated_socket(void) {
        const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
        int type = 0;
        socklen_t len = sizeof(type);

        if (!pid || !fds || atoi(pid) != getpid() || atoi(fds) != 1)
                return -1;
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_FDNAMES");
        if (getsockopt(3, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_SEQPACKET)
                return -1;
        fcntl(3, F_SETFD, FD_CLOEXEC);
        fcntl(3, F_SETFL, fcntl(3, F_GETFL) | O_NONBLOCK);
        return 3;
}

/* The file system path a listening socket is bound to, if it has one. */
static void socket_path_of(int fd, char *buf, size_t len) {
        struct sockaddr_un sa = {};
        socklen_t sl = sizeof(sa);

        if (getsockname(fd, (struct sockaddr *) &sa, &sl) < 0 || sl <= offsetof(struct sockaddr_un, sun_path) ||
            sa.sun_path[0] != '/')
                return;
        sa.sun_path[MIN(sl - offsetof(struct sockaddr_un, sun_path), sizeof(sa.sun_path) - 1)] = '\0';
        if (strlen(sa.sun_path) < len)
                strcpy(buf, sa.sun_path);
}

static int listen_on(const char *path, mode_t mode) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        mode_t old;
        int fd, r;

        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return negative_errno();
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        /* We hold the pid-file lock: a socket file left here is stale. */
        (void) unlink(path);
        old = umask(0177);
        r = bind(fd, (struct sockaddr *) &sa, sizeof(sa));
        umask(old);
        /* Wider only on request, after bind: never a moment wider. */
        if (r >= 0 && mode != 0600)
                r = chmod(path, mode);
        if (r < 0 || listen(fd, SOMAXCONN) < 0) {
                r = negative_errno();
                safe_close(fd);
                return r;
        }
        return fd;
}

static int watch(struct daemon *d, int fd, uint32_t events, uint64_t tag) {
        struct epoll_event ev = { .events = events, .data.u64 = tag };

        return epoll_ctl(d->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0 ? negative_errno() : 0;
}

static int setup_events(struct daemon *d, const struct options *o) {
        struct itimerspec it = { 0 };
        sigset_t mask;
        int r;

        d->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        d->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        d->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (d->epoll_fd < 0 || d->timer_fd < 0 || d->signal_fd < 0)
                return negative_errno();
        it.it_interval.tv_sec = (time_t) (o->interval_ms / 1000);
        it.it_interval.tv_nsec = (long) (o->interval_ms % 1000) * 1000000;
        it.it_value = it.it_interval;
        if (timerfd_settime(d->timer_fd, 0, &it, NULL) < 0)
                return negative_errno();
        r = watch(d, d->listen_fd, EPOLLIN, EV_LISTEN);
        if (r >= 0)
                r = watch(d, d->timer_fd, EPOLLIN, EV_TIMER);
        if (r >= 0)
                r = watch(d, d->signal_fd, EPOLLIN, EV_SIGNAL);
        return r;
}

static void setup_pressure(struct daemon *d) {
        struct pressure_config cfg = { 0 };
        int fd;

        if (pressure_open(&cfg, &d->pressure) < 0) {
                log_warning("memory pressure monitoring unavailable; relying on the cap");
                return;
        }
        fd = pressure_fd(d->pressure);
        if (fd >= 0 && watch(d, fd, pressure_events(d->pressure), EV_PRESSURE) < 0)
                fd = -1;
        log_info("memory pressure: %s", pressure_source(d->pressure));
        if (*pressure_notes(d->pressure))
                log_debug("memory pressure sources skipped: %s", pressure_notes(d->pressure));
}

/* Every client's memory cgroup, watched where its limit is (cgroup.c). */
static void setup_cgroups(struct daemon *d, const struct options *o) {
        struct cgroups_config cfg = { .margin = o->cgroup_margin, .no_psi = o->no_pressure };
        int r = cgroups_new(&cfg, &d->registry, &d->cgroups);

        if (r >= 0)
                r = watch(d, cgroups_fd(d->cgroups), EPOLLIN, EV_CGROUPS);
        if (r < 0) {
                log_warning("cannot watch the clients' memory cgroups: %s", strerror(-r));
                cgroups_free(d->cgroups);
                d->cgroups = NULL;
        }
}

/* An autostarted daemon was born in its first client's cgroup, where it
 * would see only that client's limit and be killed with it. */
static void leave_starter_cgroup(void) {
        const char *why = NULL;
        int r = cgroups_leave_starter(&why);

        if (r < 0)
                log_info("staying in the cgroup we were started in: %s: %s", why, strerror(-r));
        else
                log_info("moved out of the starter's cgroup into a sibling \"ashmd\" cgroup");
}

/* Memory is short: give back half of what is unpinned, oldest first; the
 * next event, if the pressure lasts, takes half of the rest. */
static void on_pressure(struct daemon *d, uint32_t revents) {
        struct registry_totals t;
        int r = pressure_handle(d->pressure, revents);

        if (r == -ENODEV) {
                log_warning("memory pressure source went away; relying on the cap");
                epoll_ctl(d->epoll_fd, EPOLL_CTL_DEL, pressure_fd(d->pressure), NULL);
                pressure_close(d->pressure);
                d->pressure = NULL;
                return;
        }
        if (r <= 0)
                return;
        d->pressure_events++;
        registry_totals(&d->registry, (uid_t) -1, &t);
        if (t.unpinned > 0) {
                uint64_t got = registry_purge(&d->registry, (uid_t) -1, (t.unpinned + 1) / 2 * page_size());
                char size[SIZE_FORMAT_MAX];

                size_format(got, size, sizeof(size));
                log_info("memory pressure: purged %s", size);
        }
}

static void on_timer(struct daemon *d) {
        uint64_t ticks;

        (void) !read(d->timer_fd, &ticks, sizeof(ticks));
        registry_maintain(&d->registry);
        server_sweep_replies(d);
        server_enforce_limits(d);
        if (d->cgroups)
                cgroups_tick(d->cgroups);
        if (d->idle_exit_usec && d->n_clients == 0 && d->registry.n_regions == 0 && d->broker.n_names == 0 &&
            now_usec() - d->idle_since_usec >= d->idle_exit_usec) {
                log_info("idle: no clients, regions or names; exiting");
                d->quit = true;
        }
}

/* SIGTERM or SIGINT: say so, and leave the loop. */
static void on_signal(struct daemon *d) {
        struct signalfd_siginfo si = {};

        if (read(d->signal_fd, &si, sizeof(si)) == (ssize_t) sizeof(si))
                log_info("exiting on SIG%s", sigabbrev_np((int) si.ssi_signo) ?: "?");
        else
                log_info("exiting on a signal");
        d->quit = true;
}

static void run(struct daemon *d) {
        struct epoll_event evs[32];

        while (!d->quit) {
                int n = epoll_wait(d->epoll_fd, evs, (int) ELEMENTSOF(evs), -1);

                if (n < 0 && errno != EINTR) {
                        log_error("epoll_wait: %m");
                        return;
                }
                for (int i = 0; i < n && !d->quit; i++) {
                        uint64_t tag = evs[i].data.u64;

                        if (tag == EV_LISTEN)
                                server_accept(d);
                        else if (tag == EV_TIMER)
                                on_timer(d);
                        else if (tag == EV_SIGNAL)
                                on_signal(d);
                        else if (tag == EV_PRESSURE)
                                on_pressure(d, evs[i].events);
                        else if (tag == EV_CGROUPS)
                                cgroups_dispatch(d->cgroups);
                        else
                                server_client_ready(d, evs[i].data.ptr);
                }
        }
}

/* An autostarted daemon leaves its starter's session; its first process
 * exits at once so the starter can reap it. */
static void detach(void) {
        pid_t pid = fork();

        if (pid < 0) {
                log_error("fork: %m");
                exit(1);
        }
        if (pid > 0)
                _exit(0);
        setsid();
}

static void raise_fd_limit(void) {
        struct rlimit rl;

        /* Two fds per region: take every one we are allowed. */
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
}

/* The default quotas, fitted to our fd limit: one uid at all of its
 * quotas (two fds per region, one per name and per connection) takes at
 * most about a third of the fds, so it cannot lock the others out. */
static void fit_quotas(const struct options *o) {
        static const uint64_t share[_QUOTA_MAX] = {
                [QUOTA_CONNECTIONS] = 16, [QUOTA_REGIONS] = 8, [QUOTA_NAMES] = 16 };
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
                return;
        for (int k = 0; k < _QUOTA_MAX; k++)
                if (share[k] && !o->quota_given[k])
                        quota_set_limit((enum quota_kind) k,
                                        MAX(UINT64_C(1), MIN(quota_limit((enum quota_kind) k),
                                                             (uint64_t) rl.rlim_cur / share[k])));
}

/* The reclaimer must run before an app allocating at GiB/s reaches its
 * limit: on a loaded machine a daemon at nice 0 was measured waking too
 * late for 1 burst in 5 (docs/pressure.md). Where allowed (root,
 * CAP_SYS_NICE, RLIMIT_NICE), run at nice -10; else say so and go on. */
#define RECLAIM_NICE (-10)
static void raise_priority(void) {
        errno = 0;
        int cur = getpriority(PRIO_PROCESS, 0);

        if (errno != 0 || cur <= RECLAIM_NICE)
                return;
        if (setpriority(PRIO_PROCESS, 0, RECLAIM_NICE) < 0)
                log_debug("staying at nice %d (cannot take %d: %m): purges may start late on a busy machine", cur,
                          RECLAIM_NICE);
}

static void defaults(struct options *o) {
        *o = (struct options) {
                .max_unpinned = (uint64_t) sysconf(_SC_PHYS_PAGES) * (uint64_t) sysconf(_SC_PAGESIZE) / 10,
                .cgroup_margin = 64 << 20,
                .interval_ms = 250,
                .socket_mode = 0600,
                .ready_fd = -1,
        };
}

static int start(struct daemon *d, struct options *o, int *ret_lock) {
        bool unclean = false;
        int lock, r;

        if (!o->socket_path[0] && ashm__socket_path(o->socket_path, sizeof(o->socket_path)) < 0)
                return log_error("socket path too long; set ASHM_SOCKET or --socket"), -ENAMETOOLONG;
        d->listen_fd = activated_socket();
        o->activated = d->listen_fd >= 0;
        /* Handed a socket and told no path: the pid file goes beside the
         * socket we serve, not beside the default path. */
        if (o->activated && !o->socket_given)
                socket_path_of(d->listen_fd, o->socket_path, sizeof(o->socket_path));
        r = o->socket_given || o->activated ? 0 : ashm__runtime_dir_prepare(o->socket_path);
        if (r < 0)
                return log_error("cannot use the directory of %s: %s (it must be ours and mode 0700)",
                                 o->socket_path, strerror(-r)), r;
        lock = lock_pid_file(o->socket_path, &unclean);
        if (lock == 0) {
                log_info("another ashmd already serves %s", o->socket_path);
                notify_ready(o); /* the starter may go ahead: one serves */
                return 0;
        }
        if (lock < 0)
                return log_error("cannot lock the pid file beside %s: %s", o->socket_path, strerror(-lock)), lock;
        *ret_lock = lock;
        if (unclean) {
                struct timespec ts;

                clock_gettime(CLOCK_REALTIME, &ts);
                d->registry.restarted_ns = (uint64_t) ts.tv_sec * 1000000000 + (uint64_t) ts.tv_nsec;
                log_warning("the previous ashmd did not exit cleanly: regions older than now count as purged "
                            "unless a holder brings their pin state back");
        }
        if (d->listen_fd < 0)
                d->listen_fd = listen_on(o->socket_path, (mode_t) o->socket_mode);
        if (d->listen_fd < 0)
                return log_error("cannot listen on %s: %s", o->socket_path, strerror(-d->listen_fd)),
                       d->listen_fd;
        r = setup_events(d, o);
        if (r >= 0)
                r = registry_init(&d->registry);
        if (r < 0)
                return log_error("cannot set up the event loop: %s", strerror(-r)), r;
        if (!o->no_pressure)
                setup_pressure(d);
        setup_cgroups(d, o);
        return 1;
}

int main(int argc, char **argv) {
        struct options o;
        struct daemon d = { .listen_fd = -1, .epoll_fd = -1, .timer_fd = -1, .signal_fd = -1,
                            .registry.clock_fd = -1, .cgroup_limit = UINT64_MAX,
                            .cgroup_usage = UINT64_MAX };
        char pid_path[128], cap[SIZE_FORMAT_MAX];
        int lock = -1, r;

        defaults(&o);
        if (parse_args(argc, argv, &o) < 0)
                return 2;
        if (o.autostarted) {
                if (!o.idle_exit_set)
                        o.idle_exit_sec = 60;
                detach();
                leave_starter_cgroup();
        }
        signal(SIGPIPE, SIG_IGN);
        raise_fd_limit();
        fit_quotas(&o);
        raise_priority();
        d.max_unpinned = o.max_unpinned;
        d.cgroup_margin = o.cgroup_margin;
        d.idle_exit_usec = o.idle_exit_sec * 1000000;
        d.start_usec = d.idle_since_usec = now_usec();
        r = start(&d, &o, &lock);
        if (r <= 0) {
                safe_close(o.ready_fd);
                return r < 0 ? 1 : 0;
        }
        size_format(d.max_unpinned, cap, sizeof(cap));
        log_info("listening on %s (pid %d, unpinned cap %s)", o.socket_path, (int) getpid(), cap);
        size_format(quota_limit(QUOTA_MEMORY), cap, sizeof(cap));
        log_info("quotas per uid: %llu connections, %llu regions, %llu names, %s of daemon memory",
                 (unsigned long long) quota_limit(QUOTA_CONNECTIONS), (unsigned long long) quota_limit(QUOTA_REGIONS),
                 (unsigned long long) quota_limit(QUOTA_NAMES), cap);
        server_enforce_limits(&d); /* reads the cgroup once before the first tick */
        notify_ready(&o);
        run(&d);

        if (!o.activated)
                (void) unlink(o.socket_path);
        /* With regions registered, pin state lives on in their holders:
         * the pid file tells the next daemon (see lock_pid_file). */
        if (d.registry.n_regions == 0 && ashm__pid_path(o.socket_path, pid_path, sizeof(pid_path)) >= 0)
                (void) unlink(pid_path);
        server_close_all(&d);
        server_free_replies(&d);
        registry_free(&d.registry);
        broker_free(&d.broker);
        quota_free();
        pressure_close(d.pressure);
        cgroups_free(d.cgroups);
        safe_close(d.listen_fd);
        safe_close(d.epoll_fd);
        safe_close(d.timer_fd);
        safe_close(d.signal_fd);
        safe_close(lock);
        return 0;
}
