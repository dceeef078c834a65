/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared helpers for the benchmarks in bench/: a monotonic clock, the
 * interleaved-rounds runner, order statistics and the result printers.
 *
 * Method, common to every benchmark here: the peers being compared run in
 * the same process and the same run, in rounds. Round r runs every peer
 * for one batch of `iters` operations, starting with peer r % n_peers, so
 * that noise on the machine (another tenant, frequency changes, a page
 * cache flush) lands on every peer alike instead of on whichever ran
 * during it. A batch yields one sample, its ns per operation; each peer is
 * summarised by the median over the rounds (with min and p90), and
 * ratios are taken between medians. Everything is header-only so that
 * each benchmark is a single translation unit. */

#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ELEMENTS(x) (sizeof(x) / sizeof((x)[0]))

struct bench_opts {
        unsigned rounds;
        unsigned iters;
        unsigned warmup; /* untimed batches per peer before round 0 */
        bool touch;      /* bench-region: write one byte per mapping */
        int cpus;        /* bench-fdpass: a BENCH_CPUS_* placement */
        bool strict;     /* exit 1 when a target is missed */
};

/* The benchmark-specific flags bench_parse_args() accepts. */
enum {
        BENCH_FLAG_TOUCH = 1u << 0,
        BENCH_FLAG_CPUS = 1u << 1,
};

/* Where bench-fdpass puts its two processes. */
enum {
        BENCH_CPUS_SAME,  /* both on one CPU: no cross-CPU wake-ups */
        BENCH_CPUS_SPLIT, /* one CPU each */
        BENCH_CPUS_ANY,   /* wherever the scheduler likes */
};

/* A peer runs iters operations and returns the ns they took: it times
 * itself so that per-batch set-up (telling a child process what comes
 * next) stays outside the measurement. */
struct bench_peer {
        const char *name;
        uint64_t (*run)(void *ctx, unsigned iters);
        void *ctx;
        double *samples; /* ns/op, one per round */
};

struct bench_stats {
        double median, min, p90;
};

static inline uint64_t bench_now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * UINT64_C(1000000000) + (uint64_t) ts.tv_nsec;
}

static inline void bench_die(const char *what, int r) {
        fprintf(stderr, "bench: %s: %s\n", what, strerror(r < 0 ? -r : r));
        exit(2);
}

/* The first two CPUs this process may run on (taskset and cpusets are
 * honoured); both the same if there is only one. */
static inline void bench_pick_cpus(int ret_cpus[2]) {
        cpu_set_t set;
        int n = 0;

        if (sched_getaffinity(0, sizeof(set), &set) < 0)
                bench_die("sched_getaffinity", errno);
        for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
                if (CPU_ISSET(c, &set))
                        ret_cpus[n++] = c;
        if (n == 1)
                ret_cpus[1] = ret_cpus[0];
}

static inline void bench_pin_to(int cpu) {
        cpu_set_t set;

        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (sched_setaffinity(0, sizeof(set), &set) < 0)
                bench_die("sched_setaffinity", errno);
}

static inline int bench_cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;

        return (x > y) - (x < y);
}

/* Order statistics of n samples (n >= 1); sorts a copy. */
static inline struct bench_stats bench_stats(const double *samples, size_t n) {
        double *s = malloc(n * sizeof(*s));
        struct bench_stats st;

        if (!s)
                bench_die("malloc", ENOMEM);
        memcpy(s, samples, n * sizeof(*s));
        qsort(s, n, sizeof(*s), bench_cmp_double);
        st.min = s[0];
        st.median = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
        st.p90 = s[(size_t) ((double) (n - 1) * 0.9 + 0.5)];
        free(s);
        return st;
}

/* The median over rounds of the per-round ratio a/b: a cross-check on
 * the ratio of medians that cancels drift between rounds. */
static inline double bench_paired_ratio(const double *a, const double *b, size_t n) {
        double *q = malloc(n * sizeof(*q));
        double m;

        if (!q)
                bench_die("malloc", ENOMEM);
        for (size_t i = 0; i < n; i++)
                q[i] = a[i] / b[i];
        m = bench_stats(q, n).median;
        free(q);
        return m;
}

/* Warm every peer up, then run the interleaved rounds. */
static inline void bench_run(struct bench_peer *peers, size_t n, const struct bench_opts *o) {
        for (unsigned w = 0; w < o->warmup; w++)
                for (size_t i = 0; i < n; i++)
                        (void) peers[i].run(peers[i].ctx, o->iters);
        for (size_t i = 0; i < n; i++) {
                peers[i].samples = calloc(o->rounds, sizeof(double));
                if (!peers[i].samples)
                        bench_die("calloc", ENOMEM);
        }
        for (unsigned r = 0; r < o->rounds; r++)
                for (size_t k = 0; k < n; k++) {
                        struct bench_peer *p = &peers[(r + k) % n];

                        p->samples[r] = (double) p->run(p->ctx, o->iters) / o->iters;
                }
}

static inline void bench_free(struct bench_peer *peers, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(peers[i].samples);
}

static inline void bench_table_header(const char *bench, const struct bench_opts *o, const char *ref) {
        printf("\n== %s: %u rounds x %u ops per peer, interleaved; ns per op ==\n", bench, o->rounds,
               o->iters);
        printf("%-22s %12s %12s %12s %10s %10s\n", "peer", "median", "min", "p90", "vs median",
               "vs paired");
        printf("%-22s %12s %12s %12s %10s %10s\n", "", "", "", "", ref, ref);
}

/* One table row for peer p, compared to ref. */
static inline void bench_table_row(const struct bench_peer *p, const struct bench_peer *ref, unsigned rounds) {
        struct bench_stats s = bench_stats(p->samples, rounds);
        double ratio = s.median / bench_stats(ref->samples, rounds).median;

        printf("%-22s %12.1f %12.1f %12.1f %9.3fx %9.3fx\n", p->name, s.median, s.min, s.p90, ratio,
               bench_paired_ratio(p->samples, ref->samples, rounds));
}

/* The machine-readable line for peer p, compared to ref. */
static inline void bench_result_line(const char *bench, const struct bench_peer *p, const struct bench_peer *ref,
                                     const char *ref_label, const struct bench_opts *o) {
        struct bench_stats s = bench_stats(p->samples, o->rounds);
        double ratio = s.median / bench_stats(ref->samples, o->rounds).median;

        printf("RESULT bench=%s peer=%s rounds=%u iters=%u median_ns=%.1f min_ns=%.1f p90_ns=%.1f "
               "ratio_vs_%s=%.3f paired_ratio_vs_%s=%.3f\n",
               bench, p->name, o->rounds, o->iters, s.median, s.min, s.p90, ref_label, ratio, ref_label,
               bench_paired_ratio(p->samples, ref->samples, o->rounds));
}

/* The ratio of medians a/b. */
static inline double bench_ratio(const struct bench_peer *a, const struct bench_peer *b, unsigned rounds) {
        return bench_stats(a->samples, rounds).median / bench_stats(b->samples, rounds).median;
}

/* Print the verdict line for a target on the ratio of medians a/b
 * ("target lifecycle <= 1.15x raw memfd: 1.070x PASS (paired 1.068x)");
 * true if it is met. The paired ratio is shown beside it because it is
 * the steadier of the two on a busy machine. */
static inline bool bench_verdict(const char *what, const char *ref, double limit, const struct bench_peer *a,
                                 const struct bench_peer *b, unsigned rounds) {
        double ratio = bench_ratio(a, b, rounds);
        bool ok = ratio <= limit;

        printf("target %s <= %.2fx %s: %.3fx %s (paired %.3fx)\n", what, limit, ref, ratio, ok ? "PASS" : "FAIL",
               bench_paired_ratio(a->samples, b->samples, rounds));
        return ok;
}

/* Warn when the reference peer's samples spread widely: something else
 * was running, and ratios of medians move by several percent. */
static inline void bench_noise_note(const struct bench_peer *ref, unsigned rounds) {
        struct bench_stats s = bench_stats(ref->samples, rounds);

        if (s.p90 > 1.25 * s.min)
                printf("note: %s spread p90/min = %.2fx: the machine was busy during this run; "
                       "the paired ratio is the steadier figure\n",
                       ref->name, s.p90 / s.min);
}

static inline void bench_usage(const char *prog, unsigned allowed) {
        fprintf(stderr,
                "usage: %s [--rounds N] [--iters K] [--warmup W] [--quick] [--strict]%s%s\n"
                "  --quick   5 rounds x 200 ops (a smoke run, not a measurement)\n"
                "  --strict  exit 1 when a target is missed\n%s%s",
                prog, allowed & BENCH_FLAG_TOUCH ? " [--touch]" : "",
                allowed & BENCH_FLAG_CPUS ? " [--cpus same|split|any]" : "",
                allowed & BENCH_FLAG_TOUCH ? "  --touch   every peer writes one byte to each mapping\n" : "",
                allowed & BENCH_FLAG_CPUS ? "  --cpus    both processes on one CPU (default), one CPU each, "
                                            "or unpinned\n"
                                          : "");
}

/* A number in [min, 10^8] from s, or exit. */
static inline unsigned bench_parse_uint(const char *prog, const char *s, unsigned long min) {
        char *end;
        unsigned long v;

        errno = 0;
        v = s ? strtoul(s, &end, 10) : 0;
        if (!s || !*s || errno || *end || v < min || v > 100000000) {
                fprintf(stderr, "%s: expected a number >= %lu, got '%s'\n", prog, min, s ? s : "");
                exit(2);
        }
        return (unsigned) v;
}

/* The value of the flag at argv[*i], or NULL if it is the last word. */
static inline const char *bench_optarg(int argc, char **argv, int *i) {
        return *i + 1 < argc ? argv[++*i] : NULL;
}

static inline int bench_parse_cpus(const char *prog, const char *s) {
        static const char *const names[] = { "same", "split", "any" };

        for (size_t i = 0; s && i < ELEMENTS(names); i++)
                if (strcmp(s, names[i]) == 0)
                        return (int) i;
        fprintf(stderr, "%s: --cpus takes same, split or any, got '%s'\n", prog, s ? s : "");
        exit(2);
}

/* Parse the common flags and those of the BENCH_FLAG_* in allowed. */
static inline void bench_parse_args(int argc, char **argv, struct bench_opts *o, unsigned allowed) {
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];

                if (strcmp(a, "--rounds") == 0)
                        o->rounds = bench_parse_uint(argv[0], bench_optarg(argc, argv, &i), 1);
                else if (strcmp(a, "--iters") == 0)
                        o->iters = bench_parse_uint(argv[0], bench_optarg(argc, argv, &i), 1);
                else if (strcmp(a, "--warmup") == 0)
                        o->warmup = bench_parse_uint(argv[0], bench_optarg(argc, argv, &i), 0);
                else if (strcmp(a, "--quick") == 0) {
                        o->rounds = 5;
                        o->iters = 200;
                        o->warmup = 1;
                } else if (strcmp(a, "--strict") == 0)
                        o->strict = true;
                else if ((allowed & BENCH_FLAG_TOUCH) && strcmp(a, "--touch") == 0)
                        o->touch = true;
                else if ((allowed & BENCH_FLAG_CPUS) && strcmp(a, "--cpus") == 0)
                        o->cpus = bench_parse_cpus(argv[0], bench_optarg(argc, argv, &i));
                else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
                        bench_usage(argv[0], allowed);
                        exit(0);
                } else {
                        bench_usage(argv[0], allowed);
                        exit(2);
                }
        }
}

/* ---- additions for bench-pin and bench-purge ------------------------- */

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* The q-quantile (0 <= q <= 1, nearest rank, as bench_stats' p90) of n
 * samples (n >= 1); sorts a copy. */
static inline double bench_quantile(const double *samples, size_t n, double q) {
        double *s = malloc(n * sizeof(*s));
        double v;

        if (!s)
                bench_die("malloc", ENOMEM);
        memcpy(s, samples, n * sizeof(*s));
        qsort(s, n, sizeof(*s), bench_cmp_double);
        v = s[(size_t) ((double) (n - 1) * q + 0.5)];
        free(s);
        return v;
}

/* A verdict line on one figure rather than on a ratio of two peers:
 * "target pin <= 25 ns: 9.8 ns PASS", "target fcntl/pin >= 50x: 17.2x
 * FAIL". at_least chooses >= over <=; note (may be NULL) goes after the
 * verdict in parentheses. True if the target is met. */
static inline bool bench_verdict_figure(const char *what, bool at_least, double limit, double value,
                                        const char *unit, const char *note) {
        bool ok = at_least ? value >= limit : value <= limit;

        printf("target %s %s %g%s: %.3g%s %s%s%s%s\n", what, at_least ? ">=" : "<=", limit, unit, value, unit,
               ok ? "PASS" : "FAIL", note ? " (" : "", note ? note : "", note ? ")" : "");
        return ok;
}

/* A private ashmd for a benchmark: started on a socket in a fresh
 * mkdtemp directory with --ready-fd and --no-pressure (plus what the
 * benchmark adds), with ASHM_SOCKET pointing at it and autostart off for
 * this process, so that libashm talks to it and never to a user's
 * daemon. It is stopped (SIGTERM, reaped, directory removed) by
 * bench_daemon_stop(), and also when the benchmark exits early: by
 * bench_die() (through atexit), by SIGINT/SIGTERM/SIGHUP, and by the
 * kernel (PR_SET_PDEATHSIG) if the benchmark is killed outright. The
 * binary is $ASHMD if set, else BENCH_ASHMD from the build. At most one
 * per process at a time; forked children never stop their parent's. */
struct bench_daemon {
        pid_t pid;   /* 0: not running */
        pid_t owner; /* the process that started it */
        char dir[64];
        char sock[96];
        char log[96];
        char pidfile[96];
};

static struct bench_daemon *bench_daemon_current;

static inline void bench_daemon_cleanup_files(const struct bench_daemon *d, bool keep_log) {
        unlink(d->sock);
        unlink(d->pidfile);
        if (!keep_log) {
                unlink(d->log);
                rmdir(d->dir);
        }
}

/* Async-signal-safe: kill, waitpid, unlink and rmdir only. */
static inline void bench_daemon_kill_current(void) {
        struct bench_daemon *d = bench_daemon_current;

        if (!d || d->pid <= 0 || d->owner != getpid())
                return;
        kill(d->pid, SIGTERM);
        while (waitpid(d->pid, NULL, 0) < 0 && errno == EINTR)
                ;
        d->pid = 0;
        bench_daemon_cleanup_files(d, false);
        bench_daemon_current = NULL;
}

static inline void bench_daemon_atexit(void) {
        bench_daemon_kill_current();
}

static inline void bench_daemon_on_signal(int sig) {
        bench_daemon_kill_current();
        signal(sig, SIG_DFL);
        raise(sig);
}

static inline void bench_daemon_print_log(const struct bench_daemon *d) {
        char buf[4096];
        ssize_t n;
        int fd = open(d->log, O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return;
        fprintf(stderr, "bench: ashmd's log (%s):\n", d->log);
        while ((n = read(fd, buf, sizeof(buf))) > 0)
                fwrite(buf, 1, (size_t) n, stderr);
        close(fd);
}

/* extra: more ashmd arguments, NULL-terminated (or NULL). */
static inline void bench_daemon_start(struct bench_daemon *d, const char *const *extra) {
        static bool hooks;
        const char *exe = getenv("ASHMD");
        const char *args[32];
        size_t n = 0;
        struct pollfd p;
        int pfd[2], status;
        char c;

#ifdef BENCH_ASHMD
        if (!exe || !*exe)
                exe = BENCH_ASHMD;
#endif
        if (!exe || !*exe)
                bench_die("no ashmd: set $ASHMD", ENOENT);
        if (bench_daemon_current)
                bench_die("bench_daemon_start: one daemon at a time", EBUSY);
        memset(d, 0, sizeof(*d));
        strcpy(d->dir, "/tmp/ashm-bench-XXXXXX");
        if (!mkdtemp(d->dir))
                bench_die("mkdtemp", errno);
        snprintf(d->sock, sizeof(d->sock), "%s/ashmd.sock", d->dir);
        snprintf(d->pidfile, sizeof(d->pidfile), "%s/ashmd.pid", d->dir);
        snprintf(d->log, sizeof(d->log), "%s/ashmd.log", d->dir);
        args[n++] = exe;
        args[n++] = "--socket";
        args[n++] = d->sock;
        args[n++] = "--ready-fd";
        args[n++] = "3";
        args[n++] = "--no-pressure";
        for (size_t i = 0; extra && extra[i] && n < ELEMENTS(args) - 1; i++)
                args[n++] = extra[i];
        args[n] = NULL;
        if (pipe2(pfd, O_CLOEXEC) < 0)
                bench_die("pipe2", errno);
        fflush(NULL);
        d->pid = fork();
        if (d->pid < 0)
                bench_die("fork", errno);
        if (d->pid == 0) {
                int log = open(d->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

                /* Dies with the benchmark, whatever happens to it. dup2
                 * clears close-on-exec on fd 3, unless it already is 3. */
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || log < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0)
                        _exit(127);
                if (pfd[1] == 3 ? fcntl(3, F_SETFD, 0) < 0 : dup2(pfd[1], 3) < 0)
                        _exit(127);
                execv(exe, (char *const *) args);
                _exit(127);
        }
        d->owner = getpid();
        bench_daemon_current = d;
        if (!hooks) {
                atexit(bench_daemon_atexit);
                signal(SIGINT, bench_daemon_on_signal);
                signal(SIGTERM, bench_daemon_on_signal);
                signal(SIGHUP, bench_daemon_on_signal);
                hooks = true;
        }
        close(pfd[1]);
        p = (struct pollfd) { .fd = pfd[0], .events = POLLIN };
        if (poll(&p, 1, 10000) != 1 || read(pfd[0], &c, 1) != 1) {
                close(pfd[0]);
                bench_daemon_print_log(d);
                if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
                        d->pid = 0;
                        bench_daemon_current = NULL;
                        bench_daemon_cleanup_files(d, false);
                }
                bench_die("ashmd did not start", ECONNREFUSED); /* else atexit kills and reaps it */
        }
        close(pfd[0]);
        setenv("ASHM_SOCKET", d->sock, 1);
        setenv("ASHM_NO_AUTOSTART", "1", 1);
}

/* SIGTERM, reap, remove the directory; ashmd must exit 0 (if not, its
 * log is printed and kept). */
static inline void bench_daemon_stop(struct bench_daemon *d) {
        int status = 0;

        if (d->pid <= 0)
                return;
        if (kill(d->pid, SIGTERM) < 0)
                bench_die("kill(ashmd)", errno);
        while (waitpid(d->pid, &status, 0) < 0)
                if (errno != EINTR)
                        bench_die("waitpid(ashmd)", errno);
        d->pid = 0;
        bench_daemon_current = NULL;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "bench: ashmd exited with status 0x%x\n", status);
                bench_daemon_print_log(d);
                bench_daemon_cleanup_files(d, true);
                return;
        }
        bench_daemon_cleanup_files(d, false);
}
