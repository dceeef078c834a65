/* SPDX-License-Identifier: MIT */
/* bench-config: the memory N readers of one shared configuration cost,
 * mapped by name through ashmd, against N readers with a copy each.
 *
 * Set-up: a private ashmd (bench.h). A file of --size MiB (default 16)
 * of non-zero bytes is written to a fresh temporary directory and
 * published as `ashm publish --file` does it: ashm_region_create_from_file()
 * (a frozen memfd holding the file's contents), ashm_publish(..., 0644,
 * ASHM_PUBLISH_KEEP), ashm_region_close(): from then on only the daemon
 * holds the region, and it never maps it.
 *
 * One measurement is a set of N + 1 processes (--readers N, default 8)
 * forked from this one, all alive at once:
 *  shared    each reader: ashm_lookup(NAME, 0, &r) (a read-only grant of
 *            a frozen region: the daemon reopens the region itself
 *            O_RDONLY, checked here to be the published inode),
 *            ashm_region_map(r, 0, 0, PROT_READ), reads every byte (the
 *            sum is checked against the file's).
 *  copies    each reader: read() of the whole file into a private
 *            anonymous mapping of its own, then reads every byte.
 *  baseline  (in both sets) one more process that maps and reads
 *            nothing.
 * Each reader then reports ready on a pipe and waits. With every process
 * of the set alive, this process reads, for each one:
 *  - mapping: "Pss" of the VMA holding the config in /proc/PID/smaps (the
 *    region's mapping, or the copy's buffer: guard pages around it keep
 *    the kernel from merging it with a neighbour, so the VMA is exactly
 *    the buffer);
 *  - rollup: "Pss" of /proc/PID/smaps_rollup, the whole process, minus
 *    the baseline's. The readers are forked without exec: the pages they
 *    share with this process (libc, our heap) are charged to them in
 *    part, alike in every process of the set, and the baseline takes
 *    that out; what is left is all a reader costs beyond existing
 *    (library state, a daemon connection, stack), not only its mapping.
 * Totals are summed over the N readers.
 *
 * What PSS means here: a page's proportional set size charges it 1/M to
 * each of the M processes that map it. The region's shmem pages are
 * mapped by the N readers (the daemon holds the memfd but maps nothing,
 * so it is charged nothing), so each reader is charged size/N and the N
 * together exactly one copy: total PSS measures memory actually
 * resident, not N times what each process sees (RSS). The copies are
 * private pages, each charged in full to its one process: N copies.
 * (The file's own pages in the page cache, the same in both cases, are
 * mapped by nobody and charged to no process.)
 *
 * The two sets are measured --rounds times (default 5; --quick: 3), in
 * alternating order; the table shows every repeat and the medians.
 * Target (issue 4): the shared readers' total PSS (rollup minus
 * baseline) <= 1.1x one copy (the file's size); the mapping-only figure
 * is shown beside it. --iters and --warmup are accepted and ignored
 * (scripts/bench.sh passes its flags to every benchmark). */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ashm.h"
#include "bench.h"

#define TARGET_SHARED 1.1
#define MAX_READERS 256
#define MAX_REPEATS 101

enum kind { KIND_SHARED, KIND_COPY, KIND_BASELINE };

struct config {
        pid_t owner; /* the process that made dir: only it removes it */
        uint64_t size;
        unsigned readers;
        char dir[64];
        char path[96];
        char name[64];
        uint64_t sum; /* of every byte of the file */
        dev_t dev;    /* the published region's inode */
        ino_t ino;
};

/* What a reader tells the parent once its pages are touched. Smaller
 * than PIPE_BUF: one write() each, never interleaved. */
struct ready {
        int32_t pid;
        int32_t err; /* 0 or -errno */
        uint64_t addr, len;
        uint64_t sum;
};

/* PSS in KiB, one entry per repeat, each summed over the readers of a
 * set. */
struct series {
        double map[MAX_REPEATS];  /* the config's VMA */
        double all[MAX_REPEATS];  /* whole process minus the baseline */
        double base[MAX_REPEATS]; /* the baseline's whole-process PSS */
};

static struct config cfg = { .size = (uint64_t) 16 << 20, .readers = 8 };
static uint64_t pg;

/* ---- the config file and its publication ------------------------------ */

/* Also at exit, when the benchmark dies early (bench_die). */
static void remove_file(void) {
        if (cfg.owner != getpid() || !cfg.path[0])
                return;
        unlink(cfg.path);
        rmdir(cfg.dir);
}

/* size bytes, none zero: pages of zeros could be left as holes or met
 * by the kernel's shared zero page, and make memory look free that a
 * real config uses. */
static void write_file(void) {
        uint64_t x = UINT64_C(0x9e3779b97f4a7c15), done = 0;
        unsigned char buf[65536];
        int fd;

        strcpy(cfg.dir, "/tmp/bench-config-XXXXXX");
        if (!mkdtemp(cfg.dir))
                bench_die("mkdtemp", errno);
        snprintf(cfg.path, sizeof(cfg.path), "%s/config", cfg.dir);
        cfg.owner = getpid();
        atexit(remove_file);
        fd = open(cfg.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
                bench_die("open(config)", errno);
        while (done < cfg.size) {
                size_t n = cfg.size - done < sizeof(buf) ? (size_t) (cfg.size - done) : sizeof(buf);

                for (size_t i = 0; i < n; i++) {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        buf[i] = (unsigned char) (x >> 24) | 1;
                        cfg.sum += buf[i];
                }
                if (write(fd, buf, n) != (ssize_t) n)
                        bench_die("write(config)", errno ? errno : EIO);
                done += n;
        }
        if (close(fd) < 0)
                bench_die("close(config)", errno);
}

static void publish(void) {
        ashm_region *r;
        struct stat st;
        int ret;

        snprintf(cfg.name, sizeof(cfg.name), "bench-config-%d", (int) getpid());
        ret = ashm_region_create_from_file(cfg.path, cfg.name, 0, &r);
        if (ret < 0)
                bench_die("ashm_region_create_from_file", ret);
        ret = ashm_publish(r, cfg.name, 0644, ASHM_PUBLISH_KEEP);
        if (ret < 0)
                bench_die("ashm_publish", ret);
        if (fstat(ashm_region_fd(r), &st) < 0)
                bench_die("fstat", errno);
        cfg.dev = st.st_dev;
        cfg.ino = st.st_ino;
        ashm_region_close(r);
}

/* ---- the readers --------------------------------------------------------- */

static uint64_t sum_bytes(const unsigned char *p, uint64_t len) {
        uint64_t s = 0;

        for (uint64_t i = 0; i < len; i++)
                s += p[i];
        return s;
}

/* Map the config by name, as a reader of a published config does. */
static int read_shared(struct ready *rd) {
        ashm_region *r;
        struct stat st;
        void *addr;
        int ret;

        ret = ashm_lookup(cfg.name, 0, &r);
        if (ret < 0)
                return ret;
        /* The grant must be the published region itself, not a copy. */
        if (fstat(ashm_region_fd(r), &st) < 0 || st.st_dev != cfg.dev || st.st_ino != cfg.ino ||
            ashm_region_is_frozen(r) != 1)
                return -EPROTO;
        ret = ashm_region_map(r, 0, 0, PROT_READ, &addr);
        if (ret < 0)
                return ret;
        rd->addr = (uint64_t) (uintptr_t) addr;
        rd->len = (uint64_t) st.st_size;
        rd->sum = sum_bytes(addr, rd->len);
        /* The handle may go: the mapping holds the pages by itself. */
        ashm_region_close(r);
        return 0;
}

/* A private copy of the file, in an anonymous mapping between two
 * PROT_NONE guard pages, so that its VMA is exactly the buffer. */
static int read_copy(struct ready *rd) {
        uint64_t len = (cfg.size + pg - 1) / pg * pg, done = 0;
        unsigned char *guard, *buf;
        int fd;

        guard = mmap(NULL, len + 2 * pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (guard == MAP_FAILED)
                return -errno;
        buf = guard + pg;
        if (mprotect(buf, len, PROT_READ | PROT_WRITE) < 0)
                return -errno;
        fd = open(cfg.path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        while (done < cfg.size) {
                ssize_t n = read(fd, buf + done, (size_t) (cfg.size - done));

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        close(fd);
                        return n < 0 ? -errno : -EIO;
                }
                done += (uint64_t) n;
        }
        close(fd);
        rd->addr = (uint64_t) (uintptr_t) buf;
        rd->len = cfg.size;
        rd->sum = sum_bytes(buf, cfg.size);
        return 0;
}

/* A reader: do its part, report, and wait until the parent closes hold. */
static _Noreturn void reader(enum kind kind, int ready_fd, int hold_fd) {
        struct ready rd = { .pid = (int32_t) getpid() };
        char c;

        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() == 1)
                _exit(2);
        if (kind == KIND_SHARED)
                rd.err = read_shared(&rd);
        else if (kind == KIND_COPY)
                rd.err = read_copy(&rd);
        if (write(ready_fd, &rd, sizeof(rd)) != sizeof(rd))
                _exit(2);
        while (read(hold_fd, &c, 1) < 0 && errno == EINTR)
                ;
        _exit(0);
}

/* ---- PSS --------------------------------------------------------------- */

/* The "Pss:" line of /proc/PID/smaps_rollup, in KiB. */
static double rollup_pss(pid_t pid) {
        char path[64], line[256];
        unsigned long kib;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int) pid);
        f = fopen(path, "re");
        if (!f)
                bench_die("open smaps_rollup", errno);
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "Pss: %lu kB", &kib) == 1) {
                        fclose(f);
                        return (double) kib;
                }
        fclose(f);
        bench_die("smaps_rollup has no Pss line", EPROTO);
        return 0;
}

/* The "Pss:" of the VMA [addr, addr + PAGE_ALIGN(len)) in
 * /proc/PID/smaps, in KiB; the VMA must be exactly that range. */
static double mapping_pss(pid_t pid, uint64_t addr, uint64_t len) {
        char path[64], line[512];
        unsigned long start, end, kib;
        bool in = false;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/smaps", (int) pid);
        f = fopen(path, "re");
        if (!f)
                bench_die("open smaps", errno);
        while (fgets(line, sizeof(line), f)) {
                if (sscanf(line, "%lx-%lx ", &start, &end) == 2) {
                        in = start == addr;
                        if (in && end - start != (len + pg - 1) / pg * pg)
                                bench_die("the config's VMA is not exactly its mapping", EPROTO);
                } else if (in && sscanf(line, "Pss: %lu kB", &kib) == 1) {
                        fclose(f);
                        return (double) kib;
                }
        }
        fclose(f);
        bench_die("the config's mapping is not in smaps", ENOENT);
        return 0;
}

/* ---- one measurement ----------------------------------------------------- */

static void reap(const pid_t *pids, unsigned n) {
        for (unsigned i = 0; i < n; i++) {
                int status;

                while (waitpid(pids[i], &status, 0) < 0)
                        if (errno != EINTR)
                                bench_die("waitpid(reader)", errno);
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                        fprintf(stderr, "bench-config: a reader failed (status 0x%x)\n", status);
                        exit(2);
                }
        }
}

/* Fork the readers of kind and the baseline (the last), collect their
 * reports into rds[] (in pids[] order), with all of them waiting. */
static void start_set(enum kind kind, pid_t *pids, struct ready *rds, int *ret_hold) {
        const unsigned n = cfg.readers + 1;
        int ready[2], hold[2];

        if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(hold, O_CLOEXEC) < 0)
                bench_die("pipe2", errno);
        fflush(NULL);
        for (unsigned i = 0; i < n; i++) {
                pids[i] = fork();
                if (pids[i] < 0)
                        bench_die("fork", errno);
                if (pids[i] == 0) {
                        close(ready[0]);
                        close(hold[1]);
                        reader(i < cfg.readers ? kind : KIND_BASELINE, ready[1], hold[0]);
                }
        }
        close(ready[1]);
        close(hold[0]);
        for (unsigned got = 0; got < n; got++) {
                struct ready rd;
                unsigned i;

                if (read(ready[0], &rd, sizeof(rd)) != sizeof(rd))
                        bench_die("a reader died before it was ready", errno ? errno : EPIPE);
                for (i = 0; i < n && pids[i] != rd.pid; i++)
                        ;
                if (i == n)
                        bench_die("a report from an unknown reader", EPROTO);
                if (rd.err < 0)
                        bench_die(kind == KIND_SHARED ? "reader: lookup and map" : "reader: read the copy", rd.err);
                if (i < cfg.readers && (rd.sum != cfg.sum || rd.len != cfg.size))
                        bench_die("a reader saw other contents than the file's", EBADMSG);
                rds[i] = rd;
        }
        close(ready[0]);
        *ret_hold = hold[1];
}

/* Measure one set of kind into entry i of out. */
static void measure(enum kind kind, struct series *out, unsigned i) {
        pid_t pids[MAX_READERS + 1];
        struct ready rds[MAX_READERS + 1];
        double map = 0, rollup = 0, base;
        int hold;

        start_set(kind, pids, rds, &hold);
        base = rollup_pss(pids[cfg.readers]);
        for (unsigned k = 0; k < cfg.readers; k++) {
                map += mapping_pss(pids[k], rds[k].addr, rds[k].len);
                rollup += rollup_pss(pids[k]);
        }
        out->map[i] = map;
        out->all[i] = rollup - cfg.readers * base;
        out->base[i] = base;
        close(hold); /* every reader reads EOF and exits */
        reap(pids, cfg.readers + 1);
}

/* ---- report -------------------------------------------------------------- */

static double mib(double kib) {
        return kib / 1024;
}

static double median(const double *v, unsigned n) {
        return bench_stats(v, n).median;
}

static void row(const char *label, double sm, double sa, double cm, double ca, double sb, double cb) {
        printf("%-8s %12.2f %12.2f %12.2f %12.2f %10.2f %10.2f\n", label, mib(sm), mib(sa), mib(cm), mib(ca),
               mib(sb), mib(cb));
}

static bool report(const struct series *sh, const struct series *cp, unsigned n) {
        const double one = (double) cfg.size / 1024;
        double sm = median(sh->map, n), sa = median(sh->all, n), cm = median(cp->map, n), ca = median(cp->all, n);
        char note[128];

        printf("\n== config: total PSS of %u readers, MiB (one copy = %.2f MiB); %u repeats ==\n", cfg.readers,
               mib(one), n);
        printf("%-8s %12s %12s %12s %12s %10s %10s\n", "repeat", "shared map", "shared all", "copies map",
               "copies all", "base sh", "base cp");
        for (unsigned i = 0; i < n; i++) {
                char label[16];

                snprintf(label, sizeof(label), "%u", i + 1);
                row(label, sh->map[i], sh->all[i], cp->map[i], cp->all[i], sh->base[i], cp->base[i]);
        }
        row("median", sm, sa, cm, ca, median(sh->base, n), median(cp->base, n));
        printf("(map: the config's VMA in smaps; all: smaps_rollup minus the baseline reader's, per reader; "
               "base: the baseline's own rollup PSS)\n\n");
        printf("shared / one copy:  map %.3fx, all %.3fx\n", sm / one, sa / one);
        printf("copies / one copy:  map %.3fx, all %.3fx\n", cm / one, ca / one);
        printf("copies / shared:    map %.2fx, all %.2fx\n", cm / sm, ca / sa);
        printf("RESULT bench=config readers=%u size_mib=%.2f repeats=%u one_copy_kib=%.0f shared_map_kib=%.0f "
               "shared_all_kib=%.0f copies_map_kib=%.0f copies_all_kib=%.0f shared_vs_one=%.3f "
               "shared_map_vs_one=%.3f copies_vs_shared=%.2f\n",
               cfg.readers, (double) cfg.size / (1 << 20), n, one, sm, sa, cm, ca, sa / one, sm / one, ca / sa);
        snprintf(note, sizeof(note), "median of %u; mapping only %.3fx; %u copies %.3fx", n, sm / one, cfg.readers,
                 ca / one);
        return bench_verdict_figure("shared config total PSS / one copy", false, TARGET_SHARED, sa / one, "x", note);
}

/* ---- main ---------------------------------------------------------------- */

/* Take out the flags of this benchmark; pass the rest to bench.h. */
static int own_args(int argc, char **argv, struct bench_opts *o) {
        int n = 1;

        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];

                if (strcmp(a, "--size") == 0)
                        cfg.size = (uint64_t) bench_parse_uint(argv[0], bench_optarg(argc, argv, &i), 1) << 20;
                else if (strcmp(a, "--readers") == 0)
                        cfg.readers = bench_parse_uint(argv[0], bench_optarg(argc, argv, &i), 1);
                else if (strcmp(a, "--quick") == 0)
                        o->rounds = 3;
                else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
                        fprintf(stderr, "usage: %s [--size MIB] [--readers N] [--rounds REPEATS] [--quick] "
                                        "[--strict]\n",
                                argv[0]);
                        exit(0);
                } else
                        argv[n++] = argv[i];
        }
        return n;
}

int main(int argc, char **argv) {
        struct bench_opts o = { .rounds = 5, .iters = 1 };
        static struct series shared, copies;
        struct bench_daemon d;
        bool ok;

        argc = own_args(argc, argv, &o);
        bench_parse_args(argc, argv, &o, 0);
        if (cfg.readers > MAX_READERS || o.rounds > MAX_REPEATS) {
                fprintf(stderr, "%s: at most %d readers and %d repeats\n", argv[0], MAX_READERS, MAX_REPEATS);
                return 2;
        }
        pg = (uint64_t) sysconf(_SC_PAGESIZE);
        bench_daemon_start(&d, NULL);
        write_file();
        publish();
        printf("bench-config: a %.2f MiB config, published frozen by a private ashmd (pid %d); %u readers that map "
               "it by name vs %u that read() a copy each, + 1 baseline reader per set; libashm %s\n",
               (double) cfg.size / (1 << 20), (int) d.pid, cfg.readers, cfg.readers, ashm_version());

        for (unsigned i = 0; i < o.rounds; i++) {
                if (i % 2 == 0) {
                        measure(KIND_SHARED, &shared, i);
                        measure(KIND_COPY, &copies, i);
                } else {
                        measure(KIND_COPY, &copies, i);
                        measure(KIND_SHARED, &shared, i);
                }
        }

        ok = report(&shared, &copies, o.rounds);
        if (ashm_unpublish(cfg.name) < 0)
                fprintf(stderr, "bench-config: could not unpublish %s\n", cfg.name);
        remove_file();
        cfg.path[0] = 0;
        bench_daemon_stop(&d);
        return ok || !o.strict ? 0 : 1;
}
