/* SPDX-License-Identifier: MIT */
/*
 * bench-lock: ashm's public lock (ashm_mutex_*) against its two peers,
 * measured in the same run on the same shared page:
 *   - a glibc robust process-shared pthread mutex (what the KV store used
 *     before, and what a C programmer reaches for);
 *   - a raw futex mutex (Drepper's "mutex3": a CAS to lock, a decrement
 *     to unlock, FUTEX_WAIT/WAKE when contended): the floor, with no
 *     owner death detection at all.
 *
 * 1. Uncontended lock+unlock in one thread (ns per pair).
 * 2. Two-process ping-pong: a forked child and this process hand a turn
 *    word back and forth under the lock (lock; if it is my turn, give it
 *    to the other; unlock), on two CPUs when two are allowed: ns per
 *    hand-over, the lock's contended path and its cache line crossing
 *    between the processes.
 *
 * Rounds interleave the peers (bench.h); medians, ratios to the pthread
 * mutex, and "target" lines.
 */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ashm.h"
#include "bench.h"

#define OFF_ASHM 0
#define OFF_PTHREAD 64
#define OFF_FUTEX 128
#define OFF_TURN 192
#define OFF_GO 256
#define OFF_DONE 320

static ashm_region *region;
static uint8_t *page;
static int cpus[2];

enum { PEER_ASHM, PEER_PTHREAD, PEER_FUTEX };

/* ---- the raw futex mutex ----------------------------------------------- */

static void futex_call(uint32_t *w, int op, uint32_t val) {
        (void) syscall(SYS_futex, w, op, val, NULL, NULL, 0);
}

static void raw_lock(uint32_t *w) {
        uint32_t c = 0;

        if (__atomic_compare_exchange_n(w, &c, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
                return;
        if (c != 2)
                c = __atomic_exchange_n(w, 2, __ATOMIC_ACQUIRE);
        while (c != 0) {
                futex_call(w, FUTEX_WAIT, 2);
                c = __atomic_exchange_n(w, 2, __ATOMIC_ACQUIRE);
        }
}

static void raw_unlock(uint32_t *w) {
        if (__atomic_fetch_sub(w, 1, __ATOMIC_RELEASE) != 1) {
                __atomic_store_n(w, 0, __ATOMIC_RELEASE);
                futex_call(w, FUTEX_WAKE, 1);
        }
}

/* ---- one interface over the three ---------------------------------------- */

struct lock_ops {
        int kind;
        ashm_mutex *m; /* PEER_ASHM: this process's handle */
};

static inline void do_lock(struct lock_ops *l) {
        switch (l->kind) {
        case PEER_ASHM:
                if (ashm_mutex_lock(l->m, -1) < 0)
                        bench_die("ashm_mutex_lock", -EIO);
                break;
        case PEER_PTHREAD:
                if (pthread_mutex_lock((pthread_mutex_t *) (page + OFF_PTHREAD)) != 0)
                        bench_die("pthread_mutex_lock", EIO);
                break;
        default:
                raw_lock((uint32_t *) (page + OFF_FUTEX));
        }
}

static inline void do_unlock(struct lock_ops *l) {
        switch (l->kind) {
        case PEER_ASHM:
                (void) ashm_mutex_unlock(l->m);
                break;
        case PEER_PTHREAD:
                pthread_mutex_unlock((pthread_mutex_t *) (page + OFF_PTHREAD));
                break;
        default:
                raw_unlock((uint32_t *) (page + OFF_FUTEX));
        }
}

static void ops_open(struct lock_ops *l, int kind) {
        int r;

        l->kind = kind;
        l->m = NULL;
        if (kind == PEER_ASHM && (r = ashm_mutex_open(region, OFF_ASHM, 0, &l->m)) < 0)
                bench_die("ashm_mutex_open", r);
}

/* ---- 1. uncontended ------------------------------------------------------ */

static uint64_t run_uncontended(void *ctx, unsigned iters) {
        struct lock_ops *l = ctx;
        uint64_t t0 = bench_now_ns();

        for (unsigned i = 0; i < iters; i++) {
                do_lock(l);
                do_unlock(l);
        }
        return bench_now_ns() - t0;
}

/* ---- 2. ping-pong between two processes --------------------------------- */

/* Take the turn iters times: wait (through the lock) until it is ours,
 * hand it over. */
static void pingpong(struct lock_ops *l, uint32_t me, unsigned iters) {
        volatile uint32_t *turn = (volatile uint32_t *) (page + OFF_TURN);

        for (unsigned i = 0; i < iters; i++)
                for (;;) {
                        do_lock(l);
                        if (*turn == me) {
                                *turn = !me;
                                do_unlock(l);
                                break;
                        }
                        do_unlock(l);
                }
}

static uint64_t run_pingpong(void *ctx, unsigned iters) {
        int kind = (int) (intptr_t) ctx, status;
        uint32_t *go = (uint32_t *) (page + OFF_GO);
        struct lock_ops l;
        uint64_t t0, t;
        pid_t pid;

        __atomic_store_n((uint32_t *) (page + OFF_TURN), 0, __ATOMIC_RELAXED);
        __atomic_store_n(go, 0, __ATOMIC_RELEASE);
        pid = fork();
        if (pid < 0)
                bench_die("fork", errno);
        if (pid == 0) {
                bench_pin_to(cpus[1]);
                ops_open(&l, kind); /* the child's own handle (a handle is per process) */
                while (!__atomic_load_n(go, __ATOMIC_ACQUIRE))
                        ;
                pingpong(&l, 1, iters);
                _exit(0);
        }
        ops_open(&l, kind);
        t0 = bench_now_ns();
        __atomic_store_n(go, 1, __ATOMIC_RELEASE);
        pingpong(&l, 0, iters);
        /* The child's last hand-over back to us ends the run. */
        while (__atomic_load_n((uint32_t *) (page + OFF_TURN), __ATOMIC_ACQUIRE) != 0)
                ;
        t = bench_now_ns() - t0;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                bench_die("the ping-pong child", EIO);
        ashm_mutex_close(l.m);
        return t / 2; /* per hand-over: iters each way */
}

/* ---- setup and main -------------------------------------------------------- */

static void setup(void) {
        pthread_mutexattr_t a;
        int r;

        r = ashm_region_create("bench-lock", 4096, 0, &region);
        if (r == 0)
                r = ashm_region_map(region, 0, 4096, PROT_READ | PROT_WRITE, (void **) &page);
        if (r == 0)
                r = ashm_mutex_init(region, OFF_ASHM, 0);
        if (r < 0)
                bench_die("region", r);
        pthread_mutexattr_init(&a);
        pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
        pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
        if (pthread_mutex_init((pthread_mutex_t *) (page + OFF_PTHREAD), &a) != 0)
                bench_die("pthread_mutex_init", EINVAL);
        pthread_mutexattr_destroy(&a);
}

int main(int argc, char **argv) {
        struct bench_opts o1 = { .rounds = 31, .iters = 200000, .warmup = 2 };
        struct bench_opts o2;
        struct lock_ops ops[3];
        struct bench_peer p1[3], p2[3];
        static const char *const names[] = { "ashm_mutex", "pthread robust", "raw futex" };
        bool ok = true;

        bench_parse_args(argc, argv, &o1, 0);
        o2 = o1;
        o2.iters = o1.iters / 10 ? o1.iters / 10 : 1;
        o2.rounds = o1.rounds / 2 + 1;
        bench_pick_cpus(cpus);
        bench_pin_to(cpus[0]);
        setup();
        printf("bench-lock: libashm %s; this process on CPU %d, the ping-pong child on CPU %d%s\n",
               ashm_version(), cpus[0], cpus[1], cpus[0] == cpus[1] ? " (one CPU allowed)" : "");

        for (int k = 0; k < 3; k++) {
                ops_open(&ops[k], k);
                p1[k] = (struct bench_peer) { .name = names[k], .run = run_uncontended, .ctx = &ops[k] };
                p2[k] = (struct bench_peer) { .name = names[k], .run = run_pingpong, .ctx = (void *) (intptr_t) k };
        }

        bench_run(p1, 3, &o1);
        bench_table_header("uncontended lock+unlock, one thread", &o1, "pthread");
        for (int k = 0; k < 3; k++)
                bench_table_row(&p1[k], &p1[PEER_PTHREAD], o1.rounds);
        for (int k = 0; k < 3; k++)
                bench_result_line("lock-uncontended", &p1[k], &p1[PEER_PTHREAD], "pthread", &o1);
        bench_noise_note(&p1[PEER_PTHREAD], o1.rounds);
        ok &= bench_verdict("uncontended ashm_mutex", "pthread robust", 1.5, &p1[PEER_ASHM], &p1[PEER_PTHREAD],
                            o1.rounds);

        bench_run(p2, 3, &o2);
        bench_table_header("two-process ping-pong, ns per hand-over", &o2, "pthread");
        for (int k = 0; k < 3; k++)
                bench_table_row(&p2[k], &p2[PEER_PTHREAD], o2.rounds);
        for (int k = 0; k < 3; k++)
                bench_result_line("lock-pingpong", &p2[k], &p2[PEER_PTHREAD], "pthread", &o2);
        bench_noise_note(&p2[PEER_PTHREAD], o2.rounds);
        ok &= bench_verdict("ping-pong ashm_mutex", "pthread robust", 1.3, &p2[PEER_ASHM], &p2[PEER_PTHREAD],
                            o2.rounds);

        ashm_mutex_close(ops[PEER_ASHM].m);
        bench_free(p1, 3);
        bench_free(p2, 3);
        ashm_region_close(region);
        return ok || !o1.strict ? 0 : 1;
}
