/* SPDX-License-Identifier: MIT */
/* bench-region: the full lifecycle of a 1 MiB shared-memory region.
 *
 * What one operation is, for each peer (all in this one process):
 *  ashm      ashm_region_create("bench", 1 MiB, 0) + ashm_region_map(0,
 *            whole region, PROT_READ|PROT_WRITE) + ashm_region_unmap() +
 *            ashm_region_close()
 *  memfd     memfd_create("bench", MFD_CLOEXEC|MFD_ALLOW_SEALING|
 *            MFD_NOEXEC_SEAL) + ftruncate + mmap(RW, MAP_SHARED) + munmap
 *            + close. These are the flags ashm uses; like ashm, it learns
 *            once (before timing) whether the kernel takes MFD_NOEXEC_SEAL
 *            and leaves it out if not (EINVAL).
 *  shm_open  shm_open("/ashm-bench-PID-N", O_RDWR|O_CREAT|O_EXCL, 0600) +
 *            shm_unlink + ftruncate + mmap + munmap + close. Formatting
 *            the unique name (snprintf) is part of the cost: a POSIX
 *            object needs one.
 *  shmget    shmget(IPC_PRIVATE, 1 MiB, IPC_CREAT|0600) + shmat +
 *            shmctl(IPC_RMID) + shmdt.
 *
 * No peer touches the memory by default, so no page is ever allocated and
 * the numbers are the pure set-up and tear-down cost, the strictest test
 * of ashm's own overhead. With --touch every peer writes one byte of each
 * mapping (one page fault and one shmem page). Every mapping's address is
 * folded into a volatile sink, and every return value is checked, so that
 * nothing can be optimised away.
 *
 * Target: ashm <= 1.10x raw memfd (ratio of medians over the rounds), ashm
 * sealing its regions F_SEAL_GROW|F_SEAL_SHRINK as AOSP does and the raw
 * peer not sealing (issue 10). */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <unistd.h>

#include "ashm.h"
#include "bench.h"

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif

#define REGION_SIZE ((size_t) 1 << 20)
#define TARGET_LIFECYCLE 1.10

static volatile uintptr_t sink;
static bool touch;
static unsigned memfd_flags;

static inline void use_mapping(void *addr) {
        if (touch)
                *(volatile char *) addr = 1;
        sink ^= (uintptr_t) addr;
}

static uint64_t run_ashm(void *ctx, unsigned iters) {
        uint64_t t0 = bench_now_ns();

        for (unsigned i = 0; i < iters; i++) {
                ashm_region *region;
                void *addr;
                int r;

                r = ashm_region_create("bench", REGION_SIZE, 0, &region);
                if (r < 0)
                        bench_die("ashm_region_create", r);
                r = ashm_region_map(region, 0, REGION_SIZE, PROT_READ | PROT_WRITE, &addr);
                if (r < 0)
                        bench_die("ashm_region_map", r);
                use_mapping(addr);
                r = ashm_region_unmap(region, addr, REGION_SIZE);
                if (r < 0)
                        bench_die("ashm_region_unmap", r);
                ashm_region_close(region);
        }
        return bench_now_ns() - t0;
}

/* The raw peer's flags, settled once as memfd_new() settles ashm's. */
static void memfd_probe(void) {
        int fd;

        memfd_flags = MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL;
        fd = memfd_create("bench", memfd_flags);
        if (fd < 0 && errno == EINVAL) {
                memfd_flags &= ~MFD_NOEXEC_SEAL;
                fd = memfd_create("bench", memfd_flags);
        }
        if (fd < 0)
                bench_die("memfd_create", errno);
        close(fd);
}

static uint64_t run_memfd(void *ctx, unsigned iters) {
        uint64_t t0 = bench_now_ns();

        for (unsigned i = 0; i < iters; i++) {
                void *addr;
                int fd;

                fd = memfd_create("bench", memfd_flags);
                if (fd < 0)
                        bench_die("memfd_create", errno);
                if (ftruncate(fd, (off_t) REGION_SIZE) < 0)
                        bench_die("ftruncate", errno);
                addr = mmap(NULL, REGION_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
                if (addr == MAP_FAILED)
                        bench_die("mmap", errno);
                use_mapping(addr);
                if (munmap(addr, REGION_SIZE) < 0)
                        bench_die("munmap", errno);
                close(fd);
        }
        return bench_now_ns() - t0;
}

static uint64_t run_shm_open(void *ctx, unsigned iters) {
        static unsigned long serial;
        uint64_t t0 = bench_now_ns();
        pid_t pid = getpid();

        for (unsigned i = 0; i < iters; i++) {
                char name[64];
                void *addr;
                int fd;

                snprintf(name, sizeof(name), "/ashm-bench-%d-%lu", (int) pid, serial++);
                fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
                if (fd < 0)
                        bench_die("shm_open", errno);
                if (shm_unlink(name) < 0)
                        bench_die("shm_unlink", errno);
                if (ftruncate(fd, (off_t) REGION_SIZE) < 0)
                        bench_die("ftruncate", errno);
                addr = mmap(NULL, REGION_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
                if (addr == MAP_FAILED)
                        bench_die("mmap", errno);
                use_mapping(addr);
                if (munmap(addr, REGION_SIZE) < 0)
                        bench_die("munmap", errno);
                close(fd);
        }
        return bench_now_ns() - t0;
}

static uint64_t run_shmget(void *ctx, unsigned iters) {
        uint64_t t0 = bench_now_ns();

        for (unsigned i = 0; i < iters; i++) {
                void *addr;
                int id;

                id = shmget(IPC_PRIVATE, REGION_SIZE, IPC_CREAT | 0600);
                if (id < 0)
                        bench_die("shmget", errno);
                addr = shmat(id, NULL, 0);
                if (addr == (void *) -1)
                        bench_die("shmat", errno);
                /* Marked for removal at once, as the others are unlinked
                 * at once: it goes when the last attachment does. */
                if (shmctl(id, IPC_RMID, NULL) < 0)
                        bench_die("shmctl(IPC_RMID)", errno);
                use_mapping(addr);
                if (shmdt(addr) < 0)
                        bench_die("shmdt", errno);
        }
        return bench_now_ns() - t0;
}

int main(int argc, char **argv) {
        struct bench_opts o = { .rounds = 51, .iters = 1000, .warmup = 2 };
        struct bench_peer peers[] = {
                { .name = "ashm", .run = run_ashm },
                { .name = "memfd", .run = run_memfd },
                { .name = "shm_open", .run = run_shm_open },
                { .name = "shmget", .run = run_shmget },
        };
        const struct bench_peer *ashm = &peers[0], *memfd = &peers[1];
        double ratio;
        bool ok;

        bench_parse_args(argc, argv, &o, BENCH_FLAG_TOUCH);
        touch = o.touch;
        memfd_probe();
        printf("bench-region: 1 MiB region lifecycle (create+map+unmap+close), %s, memfd flags 0x%x, "
               "libashm %s\n",
               touch ? "one byte written per mapping" : "memory not touched", memfd_flags, ashm_version());

        bench_run(peers, ELEMENTS(peers), &o);

        bench_table_header("lifecycle", &o, "memfd");
        for (size_t i = 0; i < ELEMENTS(peers); i++)
                bench_table_row(&peers[i], memfd, o.rounds);
        printf("\n");
        for (size_t i = 0; i < ELEMENTS(peers); i++)
                bench_result_line("lifecycle", &peers[i], memfd, "memfd", &o);
        ratio = bench_ratio(ashm, memfd, o.rounds);
        printf("RATIO bench=lifecycle touch=%d ashm/memfd=%.3f ashm/shm_open=%.3f ashm/shmget=%.3f\n", touch,
               ratio, bench_ratio(ashm, &peers[2], o.rounds), bench_ratio(ashm, &peers[3], o.rounds));
        bench_noise_note(memfd, o.rounds);
        ok = bench_verdict("lifecycle", "raw memfd", TARGET_LIFECYCLE, ashm, memfd, o.rounds);

        bench_free(peers, ELEMENTS(peers));
        return ok || !o.strict ? 0 : 1;
}
