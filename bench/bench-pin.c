/* SPDX-License-Identifier: MIT */
/* bench-pin: the cost of ashm_region_pin()/ashm_region_unpin(), the
 * shared-memory fast path, against a trivial syscall measured in the same
 * run.
 *
 * Set-up (not timed): a private ashmd (bench.h) on a socket of its own,
 * default cap (10% of RAM, never reached here) and --no-pressure, so
 * nothing is purged during the run; one 32 MiB region (8192 pages, never
 * touched: pins do not touch the region's memory). The first unpin
 * registers the region with the daemon; set-up then proves it is
 * registered (an unpinned page is really purged by ashm_purge() and the
 * next pin reports WAS_PURGED), so the block is the daemon's shared one,
 * with the daemon's shared LRU clock, as in real use. Warm-up batches run
 * before timing.
 *
 * Phase 1, one process (this one, on one CPU), interleaved rounds
 * (bench.h). What one operation is, for each peer:
 *  pin-1p        ashm_region_pin() of one page that is unpinned (pages
 *                0, 1, 2, ... in turn; before each sweep of the region,
 *                one untimed unpin of the whole region): a real UNPINNED
 *                -> PINNED transition every time.
 *  unpin-1p      ashm_region_unpin() of one pinned page, likewise (one
 *                untimed pin of the whole region before each sweep).
 *  pair-1p       ashm_region_unpin() + ashm_region_pin() of page 0: one
 *                op is the pair (the "ns/op" columns below halve it).
 *  pin-64p, unpin-64p, pair-64p
 *                the same on 64-page ranges (two whole 32-page chunks,
 *                aligned), 0-63, 64-127, ... for pin and unpin.
 *  pin-noop-1p   ashm_region_pin() of a page that is already pinned (one
 *                load, no write): the cheapest call, for reference.
 *  cutils-pair   ashmem_unpin_region(fd) + ashmem_pin_region(fd) of page
 *                0, the Android compat path: it has no handle, so each
 *                call proves with one fstat system call that the fd
 *                number still names the file its cache slot remembers.
 *  cutils-pin-1p, cutils-unpin-1p
 *                ashmem_pin_region()/ashmem_unpin_region() of one page
 *                that changes state, swept as pin-1p and unpin-1p.
 *  shim-pin-1p, shim-unpin-1p
 *                ioctl(fd, ASHMEM_PIN/ASHMEM_UNPIN, &pin) through
 *                libashm-devshim.so's ioctl (dlopen()ed here, found next to
 *                this binary in the build tree or at $ASHM_DEVSHIM), which
 *                keeps its fd table by interposing close() and the dups:
 *                no system call per pin.
 *  shim-cutils-pin-1p
 *                ashmem_pin_region() as the shim serves it to a program it
 *                is preloaded into (the same fd table).
 *  fcntl         fcntl(region fd, F_GETFD): the syscall reference.
 *  ioctl         ioctl(pipe, FIONREAD): a trivial ioctl round trip.
 *  getppid       syscall(SYS_getppid): the cheapest syscall there is.
 *  cas-pair      two CASes on a word of a MAP_SHARED page (unpinned, then
 *                pinned): the hardware floor of a pair, no library code.
 *
 * Phase 2, two processes: a forked child on the other CPU hammers
 * unpin+pin pairs on the same region while this process measures its own
 * pairs (one op = one pair, as pair-1p). The child starts before each
 * timed batch (this process waits until it runs) and stops after it; in
 * between it sleeps on a futex, so the solo peers run alone.
 *  same-page     both processes on page 0;
 *  same-chunk    this process on page 0, the child on page 1: one state
 *                word, so the CASes fight for one cache line;
 *  other-line    this process on page 0, the child on page 256 (another
 *                chunk, another cache line): only the shared LRU clock
 *                word is contended (each unpin takes a stamp from it);
 *  same-64p      both on pages 0-63.
 *  solo-1p       pair-1p with the child idle, the reference of phase 2.
 *  fcntl         as above, child idle.
 * The child's own ns per pair (its mean over the batch) is printed too.
 *
 * Targets (issue 3): pin <= 25 ns and unpin <= 25 ns each, uncontended
 * (pin-1p, unpin-1p); and >= 50x faster than the syscall (fcntl / pin-1p
 * and fcntl / unpin-1p, ratios of medians). Issue 10: a cutils pin and
 * unpin, and one through the shim's ioctl, cost at most one
 * ioctl(FIONREAD) (ratio of medians <= 1). The 64-page and pair figures
 * are shown beside them for information. Every return value is checked
 * (a pin that reported WAS_PURGED would mean the daemon purged: fatal). */
#include <dlfcn.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ashm.h"
#include "bench.h"
#include "cutils/ashmem.h"
#include "linux/ashmem.h"

#define REGION_PAGES 8192u
#define RANGE_PAGES 64u
#define TARGET_NS 25.0
#define TARGET_SPEEDUP 50.0

static ashm_region *region;
static int region_fd;
static uint64_t pg;
static int pipe_rd;
static uint64_t *cas_word;
static volatile uint64_t sink;

static void check_pin(int r, const char *what) {
        if (r < 0)
                bench_die(what, r);
        if (r != ASHM_NOT_PURGED)
                bench_die("a pin reported WAS_PURGED: the daemon purged during the run", EIO);
}

static void check_unpin(int r, const char *what) {
        if (r != 0)
                bench_die(what, r < 0 ? r : EIO);
}

/* ---- phase 1 peers ------------------------------------------------------ */

enum via { VIA_HANDLE, VIA_CUTILS, VIA_SHIM_IOCTL, VIA_SHIM_CUTILS };

struct sweep {
        unsigned pages; /* per operation */
        bool pin;       /* pin (after unpinning all) or unpin (after pinning all) */
        enum via via;
};

/* The shim's entry points, dlopen()ed (NULL: not found). */
static int (*shim_ioctl)(int, unsigned long, ...);
static int (*shim_pin_region)(int, size_t, size_t);

static void load_shim(const char *argv0) {
        char path[PATH_MAX + 64], exe[PATH_MAX];
        const char *env = getenv("ASHM_DEVSHIM");
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        void *h;

        (void) argv0;
        if (env)
                snprintf(path, sizeof(path), "%s", env);
        else {
                char *slash;

                if (n < 0)
                        return;
                exe[n] = '\0';
                slash = strrchr(exe, '/');
                if (slash)
                        *slash = '\0';
                snprintf(path, sizeof(path), "%s/../src/devshim/libashm-devshim.so", exe);
        }
        h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
                fprintf(stderr, "bench-pin: no shim (%s): the shim peers are skipped\n", dlerror());
                return;
        }
        shim_ioctl = (int (*)(int, unsigned long, ...)) dlsym(h, "ioctl");
        shim_pin_region = (int (*)(int, size_t, size_t)) dlsym(h, "ashmem_pin_region");
}

/* One pin or unpin of [offset, offset + len) by the sweep's route. */
static int op_via(const struct sweep *s, uint64_t offset, uint64_t len) {
        struct ashmem_pin pin = { (uint32_t) offset, (uint32_t) len };

        switch (s->via) {
        case VIA_CUTILS:
                return s->pin ? ashmem_pin_region(region_fd, offset, len) : ashmem_unpin_region(region_fd, offset, len);
        case VIA_SHIM_IOCTL:
                return shim_ioctl(region_fd, s->pin ? ASHMEM_PIN : ASHMEM_UNPIN, &pin);
        case VIA_SHIM_CUTILS:
                return s->pin ? shim_pin_region(region_fd, offset, len) : ashmem_unpin_region(region_fd, offset, len);
        default:
                return s->pin ? ashm_region_pin(region, offset, len) : ashm_region_unpin(region, offset, len);
        }
}

/* iters state-changing pins or unpins of consecutive ranges, in sweeps of
 * the region, each sweep prepared by one untimed call on the whole
 * region. */
static uint64_t run_sweep(void *ctx, unsigned iters) {
        const struct sweep *s = ctx;
        const unsigned per_sweep = REGION_PAGES / s->pages;
        const uint64_t len = s->pages * pg;
        uint64_t ns = 0;

        for (unsigned done = 0; done < iters;) {
                unsigned n = iters - done < per_sweep ? iters - done : per_sweep;
                uint64_t t0;

                if (s->pin)
                        check_unpin(ashm_region_unpin(region, 0, 0), "ashm_region_unpin(all)");
                else
                        check_pin(ashm_region_pin(region, 0, 0), "ashm_region_pin(all)");
                t0 = bench_now_ns();
                if (s->pin)
                        for (unsigned i = 0; i < n; i++)
                                check_pin(op_via(s, i * len, len), "pin");
                else
                        for (unsigned i = 0; i < n; i++)
                                check_unpin(op_via(s, i * len, len), "unpin");
                ns += bench_now_ns() - t0;
                done += n;
        }
        /* Leave the region pinned for the next peer. */
        check_pin(ashm_region_pin(region, 0, 0), "ashm_region_pin(all)");
        return ns;
}

/* unpin + pin of [offset, offset + len) iters times. */
static uint64_t pairs(uint64_t offset, uint64_t len, unsigned iters) {
        uint64_t t0 = bench_now_ns();

        for (unsigned i = 0; i < iters; i++) {
                check_unpin(ashm_region_unpin(region, offset, len), "ashm_region_unpin");
                check_pin(ashm_region_pin(region, offset, len), "ashm_region_pin");
        }
        return bench_now_ns() - t0;
}

static uint64_t run_pair_1p(void *ctx, unsigned iters) {
        return pairs(0, pg, iters);
}

static uint64_t run_pair_64p(void *ctx, unsigned iters) {
        return pairs(0, RANGE_PAGES * pg, iters);
}

static uint64_t run_pin_noop(void *ctx, unsigned iters) {
        uint64_t t0 = bench_now_ns();

        for (unsigned i = 0; i < iters; i++)
                check_pin(ashm_region_pin(region, 0, pg), "ashm_region_pin");
        return bench_now_ns() - t0;
}

static uint64_t run_cutils_pair(void *ctx, unsigned iters) {
        uint64_t t0 = bench_now_ns();

        for (unsigned i = 0; i < iters; i++) {
                if (ashmem_unpin_region(region_fd, 0, pg) != 0)
                        bench_die("ashmem_unpin_region", errno);
                if (ashmem_pin_region(region_fd, 0, pg) != ASHM_NOT_PURGED)
                        bench_die("ashmem_pin_region", errno ? errno : EIO);
        }
        return bench_now_ns() - t0;
}

static uint64_t run_fcntl(void *ctx, unsigned iters) {
        uint64_t t0 = bench_now_ns();

        for (unsigned i = 0; i < iters; i++) {
                int r = fcntl(region_fd, F_GETFD);

                if (r < 0)
                        bench_die("fcntl(F_GETFD)", errno);
                sink += (uint64_t) r;
        }
        return bench_now_ns() - t0;
}

static uint64_t run_ioctl(void *ctx, unsigned iters) {
        uint64_t t0 = bench_now_ns();

        for (unsigned i = 0; i < iters; i++) {
                int n;

                if (ioctl(pipe_rd, FIONREAD, &n) < 0)
                        bench_die("ioctl(FIONREAD)", errno);
                sink += (uint64_t) n;
        }
        return bench_now_ns() - t0;
}

static uint64_t run_getppid(void *ctx, unsigned iters) {
        uint64_t t0 = bench_now_ns();

        for (unsigned i = 0; i < iters; i++)
                sink += (uint64_t) syscall(SYS_getppid);
        return bench_now_ns() - t0;
}

static uint64_t run_cas_pair(void *ctx, unsigned iters) {
        uint64_t t0 = bench_now_ns();

        for (unsigned i = 0; i < iters; i++) {
                uint64_t old = __atomic_load_n(cas_word, __ATOMIC_ACQUIRE);

                while (!__atomic_compare_exchange_n(cas_word, &old, old | 1, true, __ATOMIC_ACQ_REL,
                                                    __ATOMIC_ACQUIRE))
                        ;
                old = __atomic_load_n(cas_word, __ATOMIC_ACQUIRE);
                while (!__atomic_compare_exchange_n(cas_word, &old, old & ~UINT64_C(1), true, __ATOMIC_ACQ_REL,
                                                    __ATOMIC_ACQUIRE))
                        ;
        }
        return bench_now_ns() - t0;
}

/* ---- phase 2: the second process ---------------------------------------- */

enum mode { MODE_IDLE, MODE_SAME_PAGE, MODE_SAME_CHUNK, MODE_OTHER_LINE, MODE_SAME_64P, MODE_EXIT, N_MODES };

/* Shared with the child; each field the other side polls on a line of
 * its own. */
struct ctl {
        _Alignas(64) unsigned mode; /* written by the parent */
        _Alignas(64) unsigned ack;  /* written by the child: the mode it runs */
        _Alignas(64) uint64_t child_pairs[N_MODES];
        uint64_t child_ns[N_MODES];
};

static struct ctl *ctl;
static pid_t child;

static void child_range(enum mode m, uint64_t *ret_offset, uint64_t *ret_len) {
        *ret_offset = m == MODE_SAME_CHUNK ? pg : m == MODE_OTHER_LINE ? 256 * pg : 0;
        *ret_len = m == MODE_SAME_64P ? RANGE_PAGES * pg : pg;
}

static void child_main(void) {
        for (;;) {
                unsigned m = __atomic_load_n(&ctl->mode, __ATOMIC_ACQUIRE);
                uint64_t offset, len, n = 0, t0;

                if (m == MODE_EXIT)
                        _exit(0);
                __atomic_store_n(&ctl->ack, m, __ATOMIC_RELEASE);
                if (m == MODE_IDLE) {
                        /* Asleep, not polling, while this process measures
                         * alone. A shared futex: the page is MAP_SHARED. */
                        (void) syscall(SYS_futex, &ctl->mode, FUTEX_WAIT, m, NULL, NULL, 0);
                        continue;
                }
                child_range(m, &offset, &len);
                t0 = bench_now_ns();
                while (__atomic_load_n(&ctl->mode, __ATOMIC_RELAXED) == m) {
                        if (ashm_region_unpin(region, offset, len) != 0 || ashm_region_pin(region, offset, len) < 0)
                                _exit(3);
                        n++;
                }
                ctl->child_ns[m] += bench_now_ns() - t0;
                ctl->child_pairs[m] += n;
        }
}

static void wait_ack(unsigned m) {
        while (__atomic_load_n(&ctl->ack, __ATOMIC_ACQUIRE) != m) {
                int status;

                if (waitpid(child, &status, WNOHANG) == child)
                        bench_die("the hammering child died", EIO);
                sched_yield();
        }
}

static void set_mode(unsigned m) {
        __atomic_store_n(&ctl->mode, m, __ATOMIC_RELEASE);
        (void) syscall(SYS_futex, &ctl->mode, FUTEX_WAKE, 1, NULL, NULL, 0);
        if (m != MODE_EXIT)
                wait_ack(m);
}

struct contended {
        enum mode mode;
};

static uint64_t run_contended(void *ctx, unsigned iters) {
        const struct contended *c = ctx;
        uint64_t ns;

        set_mode(c->mode);
        ns = pairs(0, c->mode == MODE_SAME_64P ? RANGE_PAGES * pg : pg, iters);
        set_mode(MODE_IDLE);
        return ns;
}

/* ---- set-up and reporting ------------------------------------------------ */

/* Pin this process to the first allowed CPU; return the second (or -1). */
static int place_self(void) {
        int cpus[2];

        bench_pick_cpus(cpus);
        bench_pin_to(cpus[0]);
        return cpus[1] != cpus[0] ? cpus[1] : -1;
}

static void start_child(int cpu) {
        ctl = mmap(NULL, sizeof(*ctl), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (ctl == MAP_FAILED)
                bench_die("mmap", errno);
        fflush(NULL);
        child = fork();
        if (child < 0)
                bench_die("fork", errno);
        if (child == 0) {
                cpu_set_t set;

                /* Never outlive this process, whatever happens to it. */
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() == 1)
                        _exit(4);
                CPU_ZERO(&set);
                if (cpu >= 0) {
                        CPU_SET(cpu, &set);
                        if (sched_setaffinity(0, sizeof(set), &set) < 0)
                                _exit(4);
                }
                child_main();
        }
        wait_ack(MODE_IDLE);
}

static void stop_child(void) {
        int status;

        set_mode(MODE_EXIT);
        if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                bench_die("the hammering child failed", EIO);
}

/* The region, registered with the daemon, and proof that it is. */
static void setup_region(void) {
        uint64_t purged = 0;
        int fds[2], r;

        pg = (uint64_t) sysconf(_SC_PAGESIZE);
        r = ashm_region_create("bench-pin", REGION_PAGES * pg, 0, &region);
        if (r < 0)
                bench_die("ashm_region_create", r);
        region_fd = ashm_region_fd(region);
        check_unpin(ashm_region_unpin(region, 0, pg), "ashm_region_unpin (registers)");
        r = ashm_purge(0, 0, &purged);
        if (r < 0)
                bench_die("ashm_purge", r);
        if (purged != pg || ashm_region_pin(region, 0, pg) != ASHM_WAS_PURGED)
                bench_die("the region is not registered with the daemon (nothing was purged)", EPROTO);
        if (pipe2(fds, O_CLOEXEC) < 0)
                bench_die("pipe2", errno);
        pipe_rd = fds[0];
        cas_word = mmap(NULL, (size_t) pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (cas_word == MAP_FAILED)
                bench_die("mmap", errno);
}

static double med(const struct bench_peer *p, unsigned rounds) {
        return bench_stats(p->samples, rounds).median;
}

/* One line of the per-operation summary: ops is how many calls one
 * sample's operation made (2 for a pair). */
static void summary_row(const char *what, const struct bench_peer *p, unsigned ops, const struct bench_peer *fcntl_p,
                        const struct bench_peer *ioctl_p, unsigned rounds) {
        double v = med(p, rounds) / ops;

        printf("%-34s %9.2f %10.1fx %10.1fx\n", what, v, med(fcntl_p, rounds) / v, med(ioctl_p, rounds) / v);
}

static bool phase1(const struct bench_opts *o) {
        struct sweep pin1 = { 1, true }, unpin1 = { 1, false }, pin64 = { RANGE_PAGES, true },
                     unpin64 = { RANGE_PAGES, false }, cpin = { 1, true, VIA_CUTILS },
                     cunpin = { 1, false, VIA_CUTILS }, spin = { 1, true, VIA_SHIM_IOCTL },
                     sunpin = { 1, false, VIA_SHIM_IOCTL }, scpin = { 1, true, VIA_SHIM_CUTILS };
        struct bench_peer peers[] = {
                { .name = "pin-1p", .run = run_sweep, .ctx = &pin1 },
                { .name = "unpin-1p", .run = run_sweep, .ctx = &unpin1 },
                { .name = "pair-1p", .run = run_pair_1p },
                { .name = "pin-64p", .run = run_sweep, .ctx = &pin64 },
                { .name = "unpin-64p", .run = run_sweep, .ctx = &unpin64 },
                { .name = "pair-64p", .run = run_pair_64p },
                { .name = "pin-noop-1p", .run = run_pin_noop },
                { .name = "cutils-pair-1p", .run = run_cutils_pair },
                { .name = "fcntl", .run = run_fcntl },
                { .name = "ioctl", .run = run_ioctl },
                { .name = "getppid", .run = run_getppid },
                { .name = "cas-pair", .run = run_cas_pair },
                { .name = "cutils-pin-1p", .run = run_sweep, .ctx = &cpin },
                { .name = "cutils-unpin-1p", .run = run_sweep, .ctx = &cunpin },
                { .name = "shim-pin-1p", .run = run_sweep, .ctx = &spin },
                { .name = "shim-unpin-1p", .run = run_sweep, .ctx = &sunpin },
                { .name = "shim-cutils-pin-1p", .run = run_sweep, .ctx = &scpin },
        };
        const struct bench_peer *pin = &peers[0], *unpin = &peers[1], *fc = &peers[8], *io = &peers[9];
        size_t n_peers = shim_ioctl && shim_pin_region ? ELEMENTS(peers) : ELEMENTS(peers) - 3;
        unsigned r = o->rounds;
        char note[96];
        bool ok = true;

        bench_run(peers, n_peers, o);

        bench_table_header("pin, one process (pair peers: ns per unpin+pin pair)", o, "fcntl");
        for (size_t i = 0; i < n_peers; i++)
                bench_table_row(&peers[i], fc, r);

        printf("\n-- per call (medians; pairs halved) --\n%-34s %9s %11s %11s\n", "operation", "ns/op", "fcntl/op",
               "ioctl/op");
        summary_row("pin, 1 page (was unpinned)", pin, 1, fc, io, r);
        summary_row("unpin, 1 page (was pinned)", unpin, 1, fc, io, r);
        summary_row("unpin+pin pair, 1 page, per call", &peers[2], 2, fc, io, r);
        summary_row("pin, 64 pages", &peers[3], 1, fc, io, r);
        summary_row("unpin, 64 pages", &peers[4], 1, fc, io, r);
        summary_row("unpin+pin pair, 64 pages, per call", &peers[5], 2, fc, io, r);
        summary_row("pin of a pinned page (no write)", &peers[6], 1, fc, io, r);
        summary_row("cutils unpin+pin pair, per call", &peers[7], 2, fc, io, r);
        summary_row("raw CAS pair, per CAS", &peers[11], 2, fc, io, r);
        summary_row("cutils pin, 1 page", &peers[12], 1, fc, io, r);
        summary_row("cutils unpin, 1 page", &peers[13], 1, fc, io, r);
        if (n_peers == ELEMENTS(peers)) {
                summary_row("shim ioctl(ASHMEM_PIN), 1 page", &peers[14], 1, fc, io, r);
                summary_row("shim ioctl(ASHMEM_UNPIN), 1 page", &peers[15], 1, fc, io, r);
                summary_row("shim's ashmem_pin_region, 1 page", &peers[16], 1, fc, io, r);
        }
        printf("%-34s %9.2f\n%-34s %9.2f\n%-34s %9.2f\n", "fcntl(F_GETFD)", med(fc, r), "ioctl(FIONREAD)", med(io, r),
               "getppid", med(&peers[10], r));

        printf("\n");
        for (size_t i = 0; i < n_peers; i++)
                bench_result_line("pin", &peers[i], fc, "fcntl", o);
        printf("RATIO bench=pin fcntl/pin=%.1f fcntl/unpin=%.1f ioctl/pin=%.1f ioctl/unpin=%.1f "
               "cutils_pair/pair=%.1f\n",
               med(fc, r) / med(pin, r), med(fc, r) / med(unpin, r), med(io, r) / med(pin, r),
               med(io, r) / med(unpin, r), med(&peers[7], r) / med(&peers[2], r));
        bench_noise_note(fc, r);

        ok &= bench_verdict_figure("pin (1 page) uncontended", false, TARGET_NS, med(pin, r), " ns", NULL);
        ok &= bench_verdict_figure("unpin (1 page) uncontended", false, TARGET_NS, med(unpin, r), " ns", NULL);
        snprintf(note, sizeof(note), "paired %.1fx; ioctl/pin %.1fx", 1.0 / bench_paired_ratio(pin->samples,
                 fc->samples, r), med(io, r) / med(pin, r));
        ok &= bench_verdict_figure("fcntl/pin (1 page)", true, TARGET_SPEEDUP, med(fc, r) / med(pin, r), "x", note);
        snprintf(note, sizeof(note), "paired %.1fx; ioctl/unpin %.1fx", 1.0 / bench_paired_ratio(unpin->samples,
                 fc->samples, r), med(io, r) / med(unpin, r));
        ok &= bench_verdict_figure("fcntl/unpin (1 page)", true, TARGET_SPEEDUP, med(fc, r) / med(unpin, r), "x",
                                   note);
        /* Issue 10: Android's entry points cost no more than one ioctl. */
        for (size_t i = 12; i < n_peers; i++) {
                char what[64];

                snprintf(what, sizeof(what), "%s / ioctl(FIONREAD)", peers[i].name);
                snprintf(note, sizeof(note), "%.1f ns vs %.1f ns", med(&peers[i], r), med(io, r));
                ok &= bench_verdict_figure(what, false, 1.0, med(&peers[i], r) / med(io, r), "x", note);
        }
        printf("info: 64 pages: pin %.1f ns (fcntl/pin %.1fx), unpin %.1f ns (fcntl/unpin %.1fx)\n",
               med(&peers[3], r), med(fc, r) / med(&peers[3], r), med(&peers[4], r), med(fc, r) / med(&peers[4], r));
        bench_free(peers, n_peers);
        return ok;
}

static void phase2(const struct bench_opts *o, int cpu) {
        static const struct contended same_page = { MODE_SAME_PAGE }, same_chunk = { MODE_SAME_CHUNK },
                                      other_line = { MODE_OTHER_LINE }, same_64p = { MODE_SAME_64P };
        struct bench_peer peers[] = {
                { .name = "2p-same-page", .run = run_contended, .ctx = (void *) &same_page },
                { .name = "2p-same-chunk", .run = run_contended, .ctx = (void *) &same_chunk },
                { .name = "2p-other-line", .run = run_contended, .ctx = (void *) &other_line },
                { .name = "2p-same-64p", .run = run_contended, .ctx = (void *) &same_64p },
                { .name = "solo-1p", .run = run_pair_1p },
                { .name = "solo-64p", .run = run_pair_64p },
                { .name = "fcntl", .run = run_fcntl },
        };
        const struct bench_peer *solo = &peers[4];
        unsigned r = o->rounds;

        start_child(cpu);
        bench_run(peers, ELEMENTS(peers), o);
        stop_child();

        bench_table_header("pin, two processes (ns per unpin+pin pair of this process)", o, "solo-1p");
        for (size_t i = 0; i < ELEMENTS(peers); i++)
                bench_table_row(&peers[i], solo, r);
        printf("\n-- per call (medians; pairs halved), and the child's mean ns per pair --\n%-34s %9s %11s %12s\n",
               "variant", "ns/op", "vs solo", "child ns/pr");
        for (size_t i = 0; i < 4; i++) {
                const struct contended *c = peers[i].ctx;
                double child_ns = ctl->child_pairs[c->mode] ? (double) ctl->child_ns[c->mode] /
                                                                      (double) ctl->child_pairs[c->mode]
                                                            : 0;
                const struct bench_peer *ref = c->mode == MODE_SAME_64P ? &peers[5] : solo;

                printf("%-34s %9.2f %10.2fx %12.1f\n", peers[i].name, med(&peers[i], r) / 2,
                       med(&peers[i], r) / med(ref, r), child_ns);
        }
        printf("%-34s %9.2f\n%-34s %9.2f\n%-34s %9.2f\n", "solo-1p (child idle)", med(solo, r) / 2,
               "solo-64p (child idle)", med(&peers[5], r) / 2, "fcntl (child idle)", med(&peers[6], r));
        printf("\n");
        for (size_t i = 0; i < ELEMENTS(peers); i++)
                bench_result_line("pin-2proc", &peers[i], solo, "solo", o);
        bench_free(peers, ELEMENTS(peers));
}

int main(int argc, char **argv) {
        struct bench_opts o = { .rounds = 51, .iters = 20000, .warmup = 2 };
        struct bench_daemon d;
        bool ok;
        int cpu;

        bench_parse_args(argc, argv, &o, 0);
        /* The daemon first: it must not inherit this process's CPU. */
        bench_daemon_start(&d, NULL);
        cpu = place_self();
        setup_region();
        load_shim(argv[0]);
        printf("bench-pin: ashm_region_pin/unpin on a %u-page region registered with a private ashmd "
               "(pid %d), libashm %s; this process on one CPU, the phase-2 child on CPU %d\n",
               REGION_PAGES, (int) d.pid, ashm_version(), cpu);

        ok = phase1(&o);
        if (cpu >= 0)
                phase2(&o, cpu);
        else
                printf("\nphase 2 skipped: only one CPU is allowed\n");

        ashm_region_close(region);
        bench_daemon_stop(&d);
        return ok || !o.strict ? 0 : 1;
}
