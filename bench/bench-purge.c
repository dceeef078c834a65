/* SPDX-License-Identifier: MIT */
/* bench-purge: how fast ashmd gives unpinned memory back.
 *
 * Each part runs in a forked process of its own with a private ashmd
 * (bench.h) started for it, because libashm keeps one daemon connection
 * per process. Regions are --size MiB (default 256), mapped shared in
 * this process and touched (one byte written per page, so every page is
 * allocated and mapped) before every timed operation; the touch is never
 * timed. Memory really leaving is checked with fstat(): after every purge
 * st_blocks must show exactly the purged bytes gone.
 *
 * Part 1, purge throughput: ashmd --max-unpinned 1024G --interval 60000
 * --cgroup-margin 0 (plus --no-pressure), so that only our requests
 * purge. Interleaved rounds (bench.h), one purge per sample:
 *  whole region unpinned:
 *   ashm_purge     untimed: touch, ashm_region_unpin(region, 0, 0) (its
 *                  cost is printed apart); timed: ashm_purge(0, 0, &n),
 *                  the round trip in which the daemon claims the pages,
 *                  punches them in batched fallocate() calls and marks
 *                  them purged. Then (untimed) n and st_blocks are
 *                  checked and the region pinned again (WAS_PURGED).
 *   fallocate      one fallocate(PUNCH_HOLE|KEEP_SIZE) of the same bytes
 *                  on an identical, identically touched and mapped memfd.
 *   fallocate-32M  the same bytes in 32 MiB fallocate() calls, the batch
 *                  size ashmd's purge passes make (256 chunks of 32
 *                  pages): it separates the cost of batching from the
 *                  daemon's own overhead.
 *   fallocate-peer one fallocate of the same bytes made by another
 *                  process (a forked helper, asked over a pipe; the
 *                  round trip is timed, a few us): what any punch made
 *                  outside this process costs, as the daemon's is. It
 *                  often runs on the other CPU, away from the caches
 *                  that the touch has just filled with these pages'
 *                  metadata. ashm_purge against it is the daemon's own
 *                  overhead; against fallocate, the overhead plus the
 *                  placement.
 *  fragmented, every other page unpinned (pages 1, 3, 5, ...):
 *   ashm_purge-frag    untimed: touch, one unpin per odd page; timed:
 *                      ashm_purge(0, 0, &n), which must punch one run per
 *                      page.
 *   fallocate-frag     one 1-page fallocate(PUNCH_HOLE|KEEP_SIZE) per odd
 *                      page, done directly.
 * Target (issue 3): ashm_purge throughput >= 0.8x one fallocate of the
 * same bytes (ratio of medians, whole region). The fragmented ratio is
 * reported, not judged.
 *
 * Part 2, time from cap violation to memory released: ashmd
 * --max-unpinned 64M --interval N --cgroup-margin 0, for each N of
 * --intervals (default 250, the daemon's default, and 20). Per sample:
 * the region is pinned and fully touched; after a delay (untimed,
 * stratified over one interval so that the unpin lands at every phase of
 * the daemon's timer alike) t0 is taken and the whole region unpinned,
 * which puts size - 64 MiB over the cap. Then fstat() is polled with a
 * 20 us nanosleep between polls until st_blocks shows the excess gone
 * (allocated bytes <= 64 MiB). Three figures per sample:
 *  first drop  t0 to the first fall of st_blocks: until the daemon's
 *              timer fired and its first fallocate began (the kernel's
 *              count of a memfd's pages falls as a punch frees them);
 *  released    t0 to all the excess gone: the figure asked for;
 *  punch       first drop to released.
 * The cap is checked only on the timer (an unpin is atomics in shared
 * memory: the daemon hears nothing of it), so "released" is bounded by
 * one interval plus the punch time.
 *
 * Placement: by default nothing is pinned, so the daemon punches on
 * whichever CPU the scheduler gives it, often not the one that has just
 * touched the pages (cache-cold: measured 10-20% slower on a 2-vCPU VM,
 * see fallocate-peer). --cpu N pins this benchmark, its helpers and its
 * daemon (which inherits the affinity) to CPU N, which removes that
 * effect and isolates the daemon's own overhead.
 *
 * Flags: --rounds N (part 1 samples per peer, default 21), --warmup W,
 * --samples N (part 2 samples per interval, default 24), --size MIB,
 * --intervals MS[,MS...], --cpu N, --quick (3 rounds, 6 samples: a
 * smoke run), --strict (exit 1 when the target is missed); --iters is
 * ignored. */
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ashm.h"
#include "bench.h"

#define TARGET_THROUGHPUT 0.8
#define CAP_BYTES ((uint64_t) 64 << 20)
#define BATCH_BYTES ((uint64_t) 32 << 20)
#define POLL_NS 20000L
#define RELEASE_TIMEOUT_NS (UINT64_C(20) * 1000000000)
#define MAX_INTERVALS 8

struct purge_opts {
        uint64_t size;
        unsigned samples;
        unsigned intervals[MAX_INTERVALS];
        unsigned n_intervals;
        int cpu; /* -1: not pinned */
};

static struct purge_opts po = { .size = (uint64_t) 256 << 20, .samples = 24, .intervals = { 250, 20 }, .n_intervals = 2,
                           .cpu = -1 };
static uint64_t pg;

/* ---- regions ------------------------------------------------------------- */

struct target {
        ashm_region *region; /* NULL for the raw memfd */
        int fd;
        char *map;
};

static void touch(const struct target *t) {
        for (uint64_t off = 0; off < po.size; off += pg)
                ((volatile char *) t->map)[off] = 1;
}

static uint64_t allocated(int fd) {
        struct stat st;

        if (fstat(fd, &st) < 0)
                bench_die("fstat", errno);
        return (uint64_t) st.st_blocks * 512;
}

/* Touch, and check that every page is allocated. */
static void fill(const struct target *t) {
        touch(t);
        if (allocated(t->fd) < po.size)
                bench_die("touched pages are not all allocated", EIO);
}

static void expect_allocated(const struct target *t, uint64_t bytes, const char *what) {
        uint64_t a = allocated(t->fd);

        if (a != bytes) {
                fprintf(stderr, "bench: %s: %llu bytes allocated, expected %llu\n", what, (unsigned long long) a,
                        (unsigned long long) bytes);
                exit(2);
        }
}

static void target_ashm(struct target *t) {
        void *addr;
        int r;

        r = ashm_region_create("bench-purge", po.size, 0, &t->region);
        if (r < 0)
                bench_die("ashm_region_create", r);
        r = ashm_region_map(t->region, 0, 0, PROT_READ | PROT_WRITE, &addr);
        if (r < 0)
                bench_die("ashm_region_map", r);
        t->fd = ashm_region_fd(t->region);
        t->map = addr;
        /* The first pin call registers the region with the daemon. */
        r = ashm_region_pin(t->region, 0, 0);
        if (r < 0)
                bench_die("ashm_region_pin", r);
}

static void target_raw(struct target *t) {
        t->region = NULL;
        t->fd = memfd_create("bench-purge-raw", MFD_CLOEXEC);
        if (t->fd < 0)
                bench_die("memfd_create", errno);
        if (ftruncate(t->fd, (off_t) po.size) < 0)
                bench_die("ftruncate", errno);
        t->map = mmap(NULL, po.size, PROT_READ | PROT_WRITE, MAP_SHARED, t->fd, 0);
        if (t->map == MAP_FAILED)
                bench_die("mmap", errno);
}

static void punch(int fd, uint64_t off, uint64_t len) {
        if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t) off, (off_t) len) < 0)
                bench_die("fallocate(PUNCH_HOLE)", errno);
}

/* ---- part 1: throughput ------------------------------------------------- */

static struct target ashm_t, raw_t;
static double *unpin_ns; /* the untimed whole-region unpins, for the record */
static unsigned n_unpin;

/* The timed ashm_purge() of whatever is unpinned, with its checks. */
static uint64_t timed_purge(uint64_t expect) {
        uint64_t purged = 0, t0, ns;
        int r;

        t0 = bench_now_ns();
        r = ashm_purge(0, 0, &purged);
        ns = bench_now_ns() - t0;
        if (r < 0)
                bench_die("ashm_purge", r);
        if (purged != expect) {
                fprintf(stderr, "bench: ashm_purge purged %llu bytes, expected %llu\n", (unsigned long long) purged,
                        (unsigned long long) expect);
                exit(2);
        }
        expect_allocated(&ashm_t, po.size - expect, "after ashm_purge");
        r = ashm_region_pin(ashm_t.region, 0, 0);
        if (r != ASHM_WAS_PURGED)
                bench_die("pin after a purge did not report WAS_PURGED", r < 0 ? r : EIO);
        return ns;
}

static uint64_t run_ashm_whole(void *ctx, unsigned iters) {
        uint64_t ns = 0;

        for (unsigned i = 0; i < iters; i++) {
                uint64_t t0;
                int r;

                fill(&ashm_t);
                t0 = bench_now_ns();
                r = ashm_region_unpin(ashm_t.region, 0, 0);
                if (unpin_ns && n_unpin < 4096)
                        unpin_ns[n_unpin++] = (double) (bench_now_ns() - t0);
                if (r < 0)
                        bench_die("ashm_region_unpin", r);
                ns += timed_purge(po.size);
        }
        return ns;
}

static uint64_t run_raw_whole(void *ctx, unsigned iters) {
        const uint64_t step = ctx ? BATCH_BYTES : po.size;
        uint64_t ns = 0;

        for (unsigned i = 0; i < iters; i++) {
                uint64_t t0;

                fill(&raw_t);
                t0 = bench_now_ns();
                for (uint64_t off = 0; off < po.size; off += step)
                        punch(raw_t.fd, off, po.size - off < step ? po.size - off : step);
                ns += bench_now_ns() - t0;
                expect_allocated(&raw_t, 0, "after fallocate");
        }
        return ns;
}

static uint64_t run_ashm_frag(void *ctx, unsigned iters) {
        uint64_t ns = 0;

        for (unsigned i = 0; i < iters; i++) {
                fill(&ashm_t);
                for (uint64_t off = pg; off < po.size; off += 2 * pg) {
                        int r = ashm_region_unpin(ashm_t.region, off, pg);

                        if (r < 0)
                                bench_die("ashm_region_unpin", r);
                }
                ns += timed_purge(po.size / 2);
        }
        return ns;
}

static uint64_t run_raw_frag(void *ctx, unsigned iters) {
        uint64_t ns = 0;

        for (unsigned i = 0; i < iters; i++) {
                uint64_t t0;

                fill(&raw_t);
                t0 = bench_now_ns();
                for (uint64_t off = pg; off < po.size; off += 2 * pg)
                        punch(raw_t.fd, off, pg);
                ns += bench_now_ns() - t0;
                expect_allocated(&raw_t, po.size / 2, "after fallocate-frag");
        }
        return ns;
}

/* The helper of fallocate-peer: one whole-region punch per byte read. */
static int helper_cmd = -1, helper_ack = -1;

static void helper_start(void) {
        int cmd[2], ack[2];
        pid_t pid;

        if (pipe2(cmd, O_CLOEXEC) < 0 || pipe2(ack, O_CLOEXEC) < 0)
                bench_die("pipe2", errno);
        fflush(NULL);
        pid = fork();
        if (pid < 0)
                bench_die("fork", errno);
        if (pid == 0) {
                char c;

                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() == 1)
                        _exit(2);
                close(cmd[1]);
                close(ack[0]);
                /* Only the benchmark maps the regions, as with the daemon. */
                munmap(raw_t.map, po.size);
                munmap(ashm_t.map, po.size);
                /* Ends when the benchmark closes its end (or dies). */
                while (read(cmd[0], &c, 1) == 1) {
                        if (fallocate(raw_t.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t) po.size) < 0)
                                c = 1;
                        else
                                c = 0;
                        if (write(ack[1], &c, 1) != 1)
                                _exit(2);
                }
                _exit(0);
        }
        close(cmd[0]);
        close(ack[1]);
        helper_cmd = cmd[1];
        helper_ack = ack[0];
}

static uint64_t run_raw_peer(void *ctx, unsigned iters) {
        uint64_t ns = 0;

        for (unsigned i = 0; i < iters; i++) {
                uint64_t t0;
                char c = 0;

                fill(&raw_t);
                t0 = bench_now_ns();
                if (write(helper_cmd, &c, 1) != 1 || read(helper_ack, &c, 1) != 1)
                        bench_die("the fallocate helper is gone", EPIPE);
                ns += bench_now_ns() - t0;
                if (c != 0)
                        bench_die("the fallocate helper's punch failed", EIO);
                expect_allocated(&raw_t, 0, "after fallocate-peer");
        }
        return ns;
}

static double gib_per_s(uint64_t bytes, double ns) {
        return (double) bytes / ns * 1e9 / (double) (UINT64_C(1) << 30);
}

static void throughput_table(const char *title, struct bench_peer *peers, size_t n, uint64_t bytes,
                             const struct bench_opts *o) {
        printf("\n-- %s: %.0f MiB purged per op; throughput of the median --\n%-18s %10s %10s %10s\n", title,
               (double) bytes / (1 << 20), "peer", "median ms", "GiB/s", "vs last");
        for (size_t i = 0; i < n; i++) {
                double m = bench_stats(peers[i].samples, o->rounds).median;

                printf("%-18s %10.2f %10.2f %9.3fx\n", peers[i].name, m / 1e6, gib_per_s(bytes, m),
                       bench_stats(peers[n - 1].samples, o->rounds).median / m);
        }
}

static int part_throughput(const struct bench_opts *o) {
        static const char *const args[] = { "--max-unpinned", "1024G", "--interval", "60000", "--cgroup-margin", "0",
                                            NULL };
        struct bench_peer whole[] = {
                { .name = "ashm_purge", .run = run_ashm_whole },
                { .name = "fallocate-32M", .run = run_raw_whole, .ctx = (void *) 1 },
                { .name = "fallocate-peer", .run = run_raw_peer },
                { .name = "fallocate", .run = run_raw_whole },
        };
        struct bench_peer *one = &whole[ELEMENTS(whole) - 1];
        struct bench_peer frag[] = {
                { .name = "ashm_purge-frag", .run = run_ashm_frag },
                { .name = "fallocate-frag", .run = run_raw_frag },
        };
        struct bench_daemon d;
        struct bench_stats us;
        char note[128];
        double ratio, ratio_frag;
        bool ok;

        bench_daemon_start(&d, args);
        target_ashm(&ashm_t);
        target_raw(&raw_t);
        helper_start();
        printf("\npart 1: purge throughput, %llu MiB regions, private ashmd pid %d (%s)\n",
               (unsigned long long) (po.size >> 20), (int) d.pid, "--max-unpinned 1024G --interval 60000");

        unpin_ns = calloc(4096, sizeof(double));
        if (!unpin_ns)
                bench_die("calloc", ENOMEM);
        bench_run(whole, ELEMENTS(whole), o);
        bench_run(frag, ELEMENTS(frag), o);

        bench_table_header("purge, whole region unpinned (ns per purge)", o, "fallocate");
        for (size_t i = 0; i < ELEMENTS(whole); i++)
                bench_table_row(&whole[i], one, o->rounds);
        throughput_table("whole region", whole, ELEMENTS(whole), po.size, o);
        bench_table_header("purge, every other page unpinned (ns per purge)", o, "fallocate-frag");
        for (size_t i = 0; i < ELEMENTS(frag); i++)
                bench_table_row(&frag[i], &frag[1], o->rounds);
        throughput_table("every other page", frag, ELEMENTS(frag), po.size / 2, o);
        printf("\n");
        for (size_t i = 0; i < ELEMENTS(whole); i++)
                bench_result_line("purge-whole", &whole[i], one, "fallocate", o);
        for (size_t i = 0; i < ELEMENTS(frag); i++)
                bench_result_line("purge-frag", &frag[i], &frag[1], "fallocate_frag", o);

        /* Throughput ratio = time ratio inverted. */
        ratio = bench_ratio(one, &whole[0], o->rounds);
        ratio_frag = bench_ratio(&frag[1], &frag[0], o->rounds);
        printf("RATIO bench=purge size_mib=%llu ashm/fallocate_throughput=%.3f ashm/fallocate32M_throughput=%.3f "
               "ashm/fallocate_peer_throughput=%.3f fallocate_peer/fallocate_throughput=%.3f "
               "frag_ashm/fallocate_throughput=%.3f\n",
               (unsigned long long) (po.size >> 20), ratio, bench_ratio(&whole[1], &whole[0], o->rounds),
               bench_ratio(&whole[2], &whole[0], o->rounds), bench_ratio(one, &whole[2], o->rounds), ratio_frag);
        bench_noise_note(one, o->rounds);
        snprintf(note, sizeof(note), "paired %.3fx; %.2f vs %.2f GiB/s", 1.0 / bench_paired_ratio(whole[0].samples,
                 one->samples, o->rounds), gib_per_s(po.size, bench_stats(whole[0].samples, o->rounds).median),
                 gib_per_s(po.size, bench_stats(one->samples, o->rounds).median));
        ok = bench_verdict_figure("purge throughput / one fallocate", true, TARGET_THROUGHPUT, ratio, "x", note);
        printf("info: fragmented (every other page): ashm_purge %.3fx the throughput of one fallocate per run "
               "(paired %.3fx)\n",
               ratio_frag, 1.0 / bench_paired_ratio(frag[0].samples, frag[1].samples, o->rounds));
        if (n_unpin) {
                us = bench_stats(unpin_ns, n_unpin);
                printf("info: the untimed ashm_region_unpin() of the whole region (%llu pages) took median %.1f us "
                       "(min %.1f, p90 %.1f)\n",
                       (unsigned long long) (po.size / pg), us.median / 1e3, us.min / 1e3, us.p90 / 1e3);
        }
        bench_free(whole, ELEMENTS(whole));
        bench_free(frag, ELEMENTS(frag));
        close(helper_cmd); /* the helper exits */
        close(helper_ack);
        bench_daemon_stop(&d);
        return ok ? 0 : 1;
}

/* ---- part 2: from cap violation to memory released ------------------------ */

static void sleep_ns(uint64_t ns) {
        struct timespec ts = { (time_t) (ns / 1000000000), (long) (ns % 1000000000) };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static void print_dist(const char *what, const double *ms, size_t n) {
        double sum = 0;

        for (size_t i = 0; i < n; i++)
                sum += ms[i];
        printf("%-30s %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f\n", what, bench_quantile(ms, n, 0.5),
               bench_quantile(ms, n, 0), bench_quantile(ms, n, 0.1), bench_quantile(ms, n, 0.9),
               bench_quantile(ms, n, 1), sum / (double) n);
}

static int part_cap(unsigned interval_ms) {
        char interval[16];
        const char *args[] = { "--max-unpinned", "64M", "--interval", interval, "--cgroup-margin", "0", NULL };
        double *first = calloc(po.samples, sizeof(double)), *done = calloc(po.samples, sizeof(double)),
               *punch_ms = calloc(po.samples, sizeof(double));
        struct bench_daemon d;
        struct target t;
        uint64_t rng = UINT64_C(0x9e3779b97f4a7c15) ^ interval_ms;
        unsigned *slots;

        if (!first || !done || !punch_ms)
                bench_die("calloc", ENOMEM);
        if (po.size <= CAP_BYTES)
                bench_die("--size must exceed the 64 MiB cap", EINVAL);
        /* Stratified phases: sample i waits (slot + 0.5) / n of an
         * interval after its set-up, the slots in a shuffled order, so
         * that the unpin meets every phase of the daemon's timer alike. */
        slots = calloc(po.samples, sizeof(*slots));
        if (!slots)
                bench_die("calloc", ENOMEM);
        for (unsigned i = 0; i < po.samples; i++)
                slots[i] = i;
        for (unsigned i = po.samples - 1; i > 0; i--) {
                unsigned j, tmp;

                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                j = (unsigned) (rng % (i + 1));
                tmp = slots[i];
                slots[i] = slots[j];
                slots[j] = tmp;
        }
        snprintf(interval, sizeof(interval), "%u", interval_ms);
        bench_daemon_start(&d, args);
        target_ashm(&t);
        printf("\npart 2: cap violation to memory released, --max-unpinned 64M --interval %u, %llu MiB region, "
               "ashmd pid %d, %u samples\n",
               interval_ms, (unsigned long long) (po.size >> 20), (int) d.pid, po.samples);

        for (unsigned i = 0; i < po.samples; i++) {
                unsigned slot = slots[i];
                uint64_t t0, t_first = 0, t_done = 0, deadline;
                int r;

                fill(&t);
                sleep_ns((uint64_t) ((slot + 0.5) / po.samples * interval_ms * 1e6));
                t0 = bench_now_ns();
                r = ashm_region_unpin(t.region, 0, 0);
                if (r < 0)
                        bench_die("ashm_region_unpin", r);
                deadline = t0 + RELEASE_TIMEOUT_NS;
                for (;;) {
                        uint64_t a = allocated(t.fd), now = bench_now_ns();

                        if (!t_first && a < po.size)
                                t_first = now;
                        if (a <= CAP_BYTES) {
                                t_done = now;
                                break;
                        }
                        if (now > deadline)
                                bench_die("the excess over the cap was not released within 20 s", ETIMEDOUT);
                        sleep_ns(POLL_NS);
                }
                first[i] = (double) (t_first - t0) / 1e6;
                done[i] = (double) (t_done - t0) / 1e6;
                punch_ms[i] = (double) (t_done - t_first) / 1e6;
                /* Exactly the excess went, oldest first: the rest stays. */
                expect_allocated(&t, CAP_BYTES, "after the cap purge");
                r = ashm_region_pin(t.region, 0, 0);
                if (r != ASHM_WAS_PURGED)
                        bench_die("pin after the cap purge did not report WAS_PURGED", r < 0 ? r : EIO);
        }

        printf("%-30s %9s %9s %9s %9s %9s %9s\n", "ms from the unpin", "median", "min", "p10", "p90", "max", "mean");
        print_dist("first drop (punch started)", first, po.samples);
        print_dist("released (excess gone)", done, po.samples);
        print_dist("punch (first drop to gone)", punch_ms, po.samples);
        printf("RESULT bench=cap-release interval_ms=%u size_mib=%llu samples=%u median_ms=%.2f min_ms=%.2f "
               "p90_ms=%.2f max_ms=%.2f first_drop_median_ms=%.2f punch_median_ms=%.2f\n",
               interval_ms, (unsigned long long) (po.size >> 20), po.samples, bench_quantile(done, po.samples, 0.5),
               bench_quantile(done, po.samples, 0), bench_quantile(done, po.samples, 0.9),
               bench_quantile(done, po.samples, 1), bench_quantile(first, po.samples, 0.5),
               bench_quantile(punch_ms, po.samples, 0.5));
        printf("bound: released <= interval (%u ms) + punch (median %.2f ms) + one poll: max %.2f ms %s\n",
               interval_ms, bench_quantile(punch_ms, po.samples, 0.5), bench_quantile(done, po.samples, 1),
               bench_quantile(done, po.samples, 1) <= interval_ms + 2 * bench_quantile(punch_ms, po.samples, 1) + 5
                       ? "(within)"
                       : "(EXCEEDED)");
        ashm_region_close(t.region);
        bench_daemon_stop(&d);
        free(first);
        free(done);
        free(punch_ms);
        free(slots);
        return 0;
}

/* ---- main ------------------------------------------------------------------ */

/* Run part in a child process of its own (one daemon connection per
 * process); returns its exit status (0 ok, 1 target missed, else error). */
static int in_child(int (*part)(const struct bench_opts *, unsigned), const struct bench_opts *o, unsigned arg) {
        int status;
        pid_t pid;

        fflush(NULL);
        pid = fork();
        if (pid < 0)
                bench_die("fork", errno);
        if (pid == 0) {
                int r;

                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() == 1)
                        _exit(2);
                r = part(o, arg);
                fflush(NULL);
                exit(r);
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        bench_die("waitpid", errno);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 2;
}

static int do_throughput(const struct bench_opts *o, unsigned unused) {
        return part_throughput(o);
}

static int do_cap(const struct bench_opts *o, unsigned interval_ms) {
        return part_cap(interval_ms);
}

static void parse_intervals(const char *s) {
        char *copy = strdup(s ? s : ""), *save = NULL;

        po.n_intervals = 0;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (po.n_intervals == MAX_INTERVALS)
                        break;
                po.intervals[po.n_intervals++] = bench_parse_uint("bench-purge", t, 1);
        }
        free(copy);
        if (po.n_intervals == 0) {
                fprintf(stderr, "bench-purge: --intervals takes MS[,MS...]\n");
                exit(2);
        }
}

/* Take out the flags of this benchmark; pass the rest to bench.h. */
static int own_args(int argc, char **argv, struct bench_opts *o) {
        int n = 1;

        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];

                if (strcmp(a, "--samples") == 0)
                        po.samples = bench_parse_uint(argv[0], bench_optarg(argc, argv, &i), 1);
                else if (strcmp(a, "--size") == 0)
                        po.size = (uint64_t) bench_parse_uint(argv[0], bench_optarg(argc, argv, &i), 1) << 20;
                else if (strcmp(a, "--intervals") == 0)
                        parse_intervals(bench_optarg(argc, argv, &i));
                else if (strcmp(a, "--cpu") == 0)
                        po.cpu = (int) bench_parse_uint(argv[0], bench_optarg(argc, argv, &i), 0);
                else if (strcmp(a, "--quick") == 0) {
                        o->rounds = 3;
                        o->warmup = 0;
                        po.samples = 6;
                } else if (strcmp(a, "--iters") == 0) {
                        /* bench.sh passes its flags to every benchmark. */
                        (void) bench_optarg(argc, argv, &i);
                        fprintf(stderr, "%s: --iters ignored: one purge per sample (--rounds sets how many)\n",
                                argv[0]);
                } else
                        argv[n++] = argv[i];
        }
        return n;
}

int main(int argc, char **argv) {
        struct bench_opts o = { .rounds = 21, .iters = 1, .warmup = 1 };
        int status = 0, r;

        argc = own_args(argc, argv, &o);
        bench_parse_args(argc, argv, &o, 0);
        o.iters = 1;
        pg = (uint64_t) sysconf(_SC_PAGESIZE);
        if (po.cpu >= 0)
                bench_pin_to(po.cpu);
        printf("bench-purge: unpinned memory given back by ashmd; %llu MiB regions, touched; libashm %s; %s\n",
               (unsigned long long) (po.size >> 20), ashm_version(),
               po.cpu >= 0 ? "benchmark and daemon pinned to one CPU (--cpu)" : "nothing pinned to a CPU");

        r = in_child(do_throughput, &o, 0);
        if (r > 1)
                return r;
        status |= r;
        for (unsigned i = 0; i < po.n_intervals; i++) {
                r = in_child(do_cap, &o, po.intervals[i]);
                if (r > 1)
                        return r;
        }
        return status && o.strict ? 1 : 0;
}
