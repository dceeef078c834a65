/* SPDX-License-Identifier: MIT */
/*
 * The correctness invariant under random interleavings, end to end, with
 * a real ashmd purging as fast as it can (a tiny cap on a fast timer, and
 * a process asking for purges all the time):
 *   - pin never reports ASHM_NOT_PURGED for a page whose contents were
 *     discarded;
 *   - nothing ever discards a byte of a pinned page.
 * Worker processes share one region, each owning a block of pages that
 * straddles the others' chunks (so their atomics collide), and check
 * every page against what they last wrote. The seed is printed; set
 * ASHM_TEST_SEED to replay. Bounded by a deadline and an iteration count.
 */
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "ashm.h"
#include "tests.h"

ASHM_SUITE(stress);

#define WORKERS 3
#define BLOCK 21 /* pages per worker: blocks straddle 32-page chunks */
#define PAGES (WORKERS * BLOCK)
#define ITERATIONS 200000
#define SECONDS 2

struct tally {
        unsigned long pins, unpins, was_purged, purges;
        char error[256];
};

static uint64_t pg(void) {
        return (uint64_t) sysconf(_SC_PAGESIZE);
}

static double now(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* A page's signature lives in its first and last words. */
static void sign(char *page, uint64_t sig) {
        memcpy(page, &sig, sizeof(sig));
        memcpy(page + pg() - sizeof(sig), &sig, sizeof(sig));
}

static int check(const char *page, uint64_t sig) {
        uint64_t a, b;

        memcpy(&a, page, sizeof(a));
        memcpy(&b, page + pg() - sizeof(b), sizeof(b));
        if (a == sig && b == sig)
                return 1;
        if (a == 0 && b == 0)
                return 0;
        return -1;
}

#define FAIL(t, ...)                                                  \
        do {                                                          \
                snprintf((t)->error, sizeof((t)->error), __VA_ARGS__); \
                return 1;                                             \
        } while (0)

static int worker(ashm_region *r, char *map, int w, unsigned seed, struct tally *t, double deadline) {
        uint64_t sig[BLOCK], seq = 0;
        bool pinned[BLOCK];
        int first = w * BLOCK;

        for (int i = 0; i < BLOCK; i++) {
                sig[i] = ((uint64_t) (w + 1) << 48) | ((uint64_t) i << 32) | ++seq;
                sign(map + (uint64_t) (first + i) * pg(), sig[i]);
                pinned[i] = true;
        }
        for (int it = 0; it < ITERATIONS && (it % 256 || now() < deadline); it++) {
                int a = rand_r(&seed) % BLOCK, n = 1 + rand_r(&seed) % (BLOCK - a), res;
                bool unpin = rand_r(&seed) % 2;

                /* Pinned pages are untouchable, whatever the reclaimer does. */
                for (int i = a; i < a + n; i++)
                        if (pinned[i] && check(map + (uint64_t) (first + i) * pg(), sig[i]) != 1)
                                FAIL(t, "worker %d: pinned page %d lost its contents", w, first + i);
                if (unpin) {
                        if (ashm_region_unpin(r, (uint64_t) (first + a) * pg(), (uint64_t) n * pg()) != 0)
                                FAIL(t, "worker %d: unpin failed", w);
                        for (int i = a; i < a + n; i++)
                                pinned[i] = false;
                        t->unpins++;
                        continue;
                }
                res = ashm_region_pin(r, (uint64_t) (first + a) * pg(), (uint64_t) n * pg());
                if (res < 0)
                        FAIL(t, "worker %d: pin failed: %s", w, strerror(-res));
                t->pins++;
                t->was_purged += res == ASHM_WAS_PURGED;
                for (int i = a; i < a + n; i++) {
                        char *page = map + (uint64_t) (first + i) * pg();
                        int c = check(page, sig[i]);

                        if (c < 0)
                                FAIL(t, "worker %d: page %d holds neither its data nor zeros", w, first + i);
                        if (c == 0 && res == ASHM_NOT_PURGED)
                                FAIL(t, "worker %d: pin said NOT_PURGED but page %d was discarded (seed %u)", w,
                                     first + i, seed);
                        if (c == 0 && pinned[i])
                                FAIL(t, "worker %d: page %d was purged while pinned", w, first + i);
                        sig[i] = ((uint64_t) (w + 1) << 48) | ((uint64_t) i << 32) | ++seq;
                        sign(page, sig[i]);
                        pinned[i] = true;
                }
        }
        return 0;
}

static int purger(unsigned seed, struct tally *t, double deadline) {
        while (now() < deadline) {
                if (ashm_purge((uint64_t) (1 + rand_r(&seed) % 8) * pg(), 0, NULL) < 0)
                        FAIL(t, "purger: purge failed");
                t->purges++;
        }
        return 0;
}

ASHM_TEST(stress, pins_never_miss_a_purge) {
        const char *args[] = { "--max-unpinned", "8K", "--interval", "2", NULL };
        const char *env = getenv("ASHM_TEST_SEED");
        unsigned seed = env ? (unsigned) strtoul(env, NULL, 0) : (unsigned) time(NULL) ^ (unsigned) getpid();
        struct tally *t;
        struct test_daemon d;
        unsigned long pins = 0, unpins = 0, was_purged = 0, purges = 0;
        ashm_region *r;
        double deadline;
        pid_t pids[WORKERS + 1];
        char *map;

        cr_log_info("stress seed=%u (replay with ASHM_TEST_SEED=%u)", seed, seed);
        fprintf(stderr, "stress seed=%u\n", seed);
        daemon_start_args(&d, args);
        t = mmap(NULL, sizeof(*t) * (WORKERS + 1), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        cr_assert(t != MAP_FAILED);
        memset(t, 0, sizeof(*t) * (WORKERS + 1));
        assert_ok(ashm_region_create("stress", PAGES * pg(), 0, &r));
        assert_ok(ashm_region_map(r, 0, 0, PROT_READ | PROT_WRITE, (void **) &map));
        assert_ok(ashm_region_pin(r, 0, 0)); /* registered before the forks */
        deadline = now() + SECONDS;
        for (int w = 0; w <= WORKERS; w++) {
                pids[w] = fork();
                cr_assert(pids[w] >= 0);
                if (pids[w] == 0)
                        _exit(w < WORKERS ? worker(r, map, w, seed + (unsigned) w, &t[w], deadline)
                                          : purger(seed + 99, &t[w], deadline));
        }
        for (int w = 0; w <= WORKERS; w++) {
                int status;

                cr_assert(waitpid(pids[w], &status, 0) == pids[w]);
                cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "seed %u: %s (status 0x%x)", seed,
                          t[w].error[0] ? t[w].error : "crashed", status);
                pins += t[w].pins;
                unpins += t[w].unpins;
                was_purged += t[w].was_purged;
                purges += t[w].purges;
        }
        fprintf(stderr, "stress seed=%u: %lu pins (%lu reported purged), %lu unpins, %lu purge requests\n", seed,
                pins, was_purged, unpins, purges);
        cr_assert_gt(pins, 1000, "the workers did work");
        cr_assert_gt(was_purged, 0, "the reclaimer did purge pages under them");
        assert_ok(ashm_region_unmap(r, map, 0));
        ashm_region_close(r);
        munmap(t, sizeof(*t) * (WORKERS + 1));
        daemon_stop(&d);
}

/* A worker that takes over a dead one's block: whatever that one left
 * unpinned is pinned again first (the result says nothing about our
 * pages: we write them anew). */
static int respawned_worker(ashm_region *r, char *map, int w, unsigned seed, struct tally *t, double deadline) {
        if (ashm_region_pin(r, (uint64_t) w * BLOCK * pg(), (uint64_t) BLOCK * pg()) < 0)
                FAIL(t, "worker %d: first pin failed", w);
        return worker(r, map, w, seed, t, deadline);
}

static int tolerant_purger(unsigned seed, double deadline) {
        /* The daemon dies under it now and then: errors are expected. */
        while (now() < deadline)
                (void) ashm_purge((uint64_t) (1 + rand_r(&seed) % 8) * pg(), 0, NULL);
        return 0;
}

static pid_t spawn_worker(ashm_region *r, char *map, int w, unsigned seed, struct tally *t, double deadline) {
        pid_t pid = fork();

        cr_assert(pid >= 0);
        if (pid == 0)
                _exit(respawned_worker(r, map, w, seed, t, deadline));
        return pid;
}

/* A killed worker must have died of the kill, not of a violation. */
static void reap_killed(pid_t pid, const struct tally *t, unsigned seed) {
        int status;

        cr_assert(waitpid(pid, &status, 0) == pid);
        cr_assert(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0), "seed %u: %s (status 0x%x)",
                  seed, t->error[0] ? t->error : "crashed", status);
}

/* The invariant while the daemon is SIGKILLed and restarted (the
 * workers' blocks are taken over by the new one) and workers are
 * SIGKILLed mid-operation and replaced, with a purger asking all along. */
ASHM_TEST(stress, pins_survive_daemon_and_worker_kills) {
        const char *args[] = { "--max-unpinned", "8K", "--interval", "2", NULL };
        const char *env = getenv("ASHM_TEST_SEED");
        unsigned seed = env ? (unsigned) strtoul(env, NULL, 0) : (unsigned) time(NULL) ^ (unsigned) getpid();
        unsigned rng = seed, daemon_kills = 0, worker_kills = 0;
        unsigned long pins = 0, was_purged = 0;
        double deadline, next_daemon, next_worker;
        pid_t pids[WORKERS], purger_pid;
        struct test_daemon d;
        struct tally *t;
        ashm_region *r;
        char *map;

        fprintf(stderr, "kill stress seed=%u\n", seed);
        daemon_start_args(&d, args);
        t = mmap(NULL, sizeof(*t) * WORKERS, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        cr_assert(t != MAP_FAILED);
        memset(t, 0, sizeof(*t) * WORKERS);
        assert_ok(ashm_region_create("kill-stress", PAGES * pg(), 0, &r));
        assert_ok(ashm_region_map(r, 0, 0, PROT_READ | PROT_WRITE, (void **) &map));
        assert_ok(ashm_region_pin(r, 0, 0));
        deadline = now() + SECONDS + 1;
        for (int w = 0; w < WORKERS; w++)
                pids[w] = spawn_worker(r, map, w, seed + (unsigned) w, &t[w], deadline);
        purger_pid = fork();
        cr_assert(purger_pid >= 0);
        if (purger_pid == 0)
                _exit(tolerant_purger(seed + 99, deadline));
        next_daemon = now() + 0.3;
        next_worker = now() + 0.1;
        while (now() < deadline - 0.3) {
                if (now() >= next_worker) {
                        int w = (int) (rand_r(&rng) % WORKERS);

                        kill(pids[w], SIGKILL);
                        reap_killed(pids[w], &t[w], seed);
                        pins += t[w].pins;
                        was_purged += t[w].was_purged;
                        memset(&t[w], 0, sizeof(t[w]));
                        pids[w] = spawn_worker(r, map, w, seed + 1000 * ++worker_kills + (unsigned) w, &t[w],
                                               deadline);
                        next_worker = now() + 0.05 + (rand_r(&rng) % 100) / 1000.0;
                }
                if (now() >= next_daemon) {
                        daemon_kill(&d);
                        daemon_spawn(&d, args);
                        daemon_kills++;
                        next_daemon = now() + 0.2 + (rand_r(&rng) % 300) / 1000.0;
                }
                usleep(5000);
        }
        for (int w = 0; w < WORKERS; w++) {
                int status;

                cr_assert(waitpid(pids[w], &status, 0) == pids[w]);
                cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "seed %u: %s (status 0x%x)", seed,
                          t[w].error[0] ? t[w].error : "crashed", status);
                pins += t[w].pins;
                was_purged += t[w].was_purged;
        }
        cr_assert(waitpid(purger_pid, NULL, 0) == purger_pid);
        fprintf(stderr, "kill stress seed=%u: %u daemon kills, %u worker kills, %lu pins (%lu reported purged)\n",
                seed, daemon_kills, worker_kills, pins, was_purged);
        cr_assert_gt(daemon_kills, 0);
        cr_assert_gt(worker_kills, 0);
        cr_assert_gt(pins, 1000, "the workers did work");
        assert_ok(ashm_region_unmap(r, map, 0));
        ashm_region_close(r);
        munmap(t, sizeof(*t) * WORKERS);
        daemon_stop(&d);
}
