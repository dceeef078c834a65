/* SPDX-License-Identifier: MIT */
/*
 * The public lock (ashm_mutex_*) and ashm_wait/ashm_wake: semantics,
 * timeouts, exec'd peers counting under the mutex, owners killed with
 * SIGKILL at random points (the seed is printed; ASHM_TEST_SEED replays),
 * a peer of another uid scribbling over the mutex, a planted live owner,
 * threads contending (also run under ThreadSanitizer), fork.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <spawn.h>
#include <stdint.h>
#include <sys/mman.h>
#include <time.h>

#include "ashm.h"
#include "tests.h"

#define LOCK_PEER BUILD_ROOT "/tests/ashm-test-lock-peer"
#define COUNTER 64
#define FLAG 72
#define WORD 128

ASHM_SUITE(lock);

extern char **environ;

struct shared {
        ashm_region *region;
        uint8_t *base;
};

static void shared_new(struct shared *s) {
        assert_ok(ashm_region_create("lock-test", 8192, 0, &s->region));
        assert_ok(ashm_region_map(s->region, 0, 4096, PROT_READ | PROT_WRITE, (void **) &s->base));
        assert_ok(ashm_mutex_init(s->region, 0, 0));
}

static void shared_done(struct shared *s) {
        assert_ok(ashm_region_unmap(s->region, s->base, 4096));
        ashm_region_close(s->region);
}

static uint64_t counter(const struct shared *s) {
        return __atomic_load_n((uint64_t *) (s->base + COUNTER), __ATOMIC_ACQUIRE);
}

/* Spawn the peer with args (NULL-ended); the region's fd and extra_fd
 * (if >= 0) stay open in it; as_nobody runs it as another uid. */
static pid_t run_peer(const struct shared *s, int extra_fd, int out_fd, bool as_nobody, const char *const *args) {
        const char *argv[16];
        char fdarg[16];
        posix_spawn_file_actions_t fa;
        size_t n = 0;
        pid_t pid;
        int fd = ashm_region_fd(s->region), r;

        if (as_nobody) {
                argv[n++] = "setpriv";
                argv[n++] = "--reuid=nobody";
                argv[n++] = "--regid=nogroup";
                argv[n++] = "--clear-groups";
        }
        argv[n++] = LOCK_PEER;
        argv[n++] = args[0];
        snprintf(fdarg, sizeof(fdarg), "%d", fd);
        argv[n++] = fdarg;
        for (size_t i = 1; args[i] && n < ELEMENTSOF(argv) - 1; i++)
                argv[n++] = args[i];
        argv[n] = NULL;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, fd, fd); /* clears FD_CLOEXEC */
        if (extra_fd >= 0)
                posix_spawn_file_actions_adddup2(&fa, extra_fd, extra_fd);
        if (out_fd >= 0)
                posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
        r = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *) argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        cr_assert_eq(r, 0, "spawn %s: %s", argv[0], strerror(r));
        return pid;
}

#define peer(s, extra_fd, ...) run_peer(s, extra_fd, -1, false, (const char *const[]) { __VA_ARGS__, NULL })

/* The peer's exit status (128 + signal if killed), waiting at most secs
 * seconds by polling; a peer still running then is killed and fails the
 * test. */
static int reap_peer(pid_t pid, int secs) {
        struct timespec ts = { 0, 5 * 1000 * 1000 };
        int status;

        for (int i = 0; i < secs * 200; i++) {
                pid_t r = waitpid(pid, &status, WNOHANG);

                cr_assert(r >= 0);
                if (r == pid)
                        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                nanosleep(&ts, NULL);
        }
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        cr_assert_fail("peer %d still running after %d s", (int) pid, secs);
        return -1;
}

static unsigned test_seed(void) {
        const char *e = getenv("ASHM_TEST_SEED");
        unsigned seed = e ? (unsigned) strtoul(e, NULL, 0) : (unsigned) time(NULL) ^ (unsigned) getpid();

        fprintf(stderr, "# seed %u (ASHM_TEST_SEED=%u replays)\n", seed, seed);
        return seed;
}

/* ---- semantics ------------------------------------------------------------ */

ASHM_TEST(lock, lock_trylock_unlock) {
        struct shared s;
        ashm_mutex *a, *b;

        shared_new(&s);
        assert_ok(ashm_mutex_open(s.region, 0, 0, &a));
        assert_ok(ashm_mutex_open(s.region, 0, 0, &b));
        cr_expect_eq(ashm_mutex_lock(a, -1), 0);
        assert_fail(ashm_mutex_trylock(b), EBUSY);
        assert_fail(ashm_mutex_unlock(b), EPERM);
        cr_expect_eq(ashm_mutex_unlock(a), 0);
        assert_fail(ashm_mutex_unlock(a), EPERM);
        cr_expect_eq(ashm_mutex_trylock(b), 0);
        cr_expect_eq(ashm_mutex_unlock(b), 0);
        ashm_mutex_close(a);
        ashm_mutex_close(b);
        ashm_mutex_close(NULL);
        shared_done(&s);
}

ASHM_TEST(lock, arguments_are_checked) {
        struct shared s;
        ashm_mutex *m;

        shared_new(&s);
        assert_fail(ashm_mutex_open(s.region, 2, 0, &m), EINVAL);
        assert_fail(ashm_mutex_open(s.region, 8188, 0, &m), ERANGE);
        assert_fail(ashm_mutex_open(s.region, UINT64_MAX - 3, 0, &m), ERANGE);
        assert_fail(ashm_mutex_open(s.region, 0, 1, &m), EINVAL);
        assert_fail(ashm_mutex_open(NULL, 0, 0, &m), EINVAL);
        assert_fail(ashm_mutex_init(s.region, 0, 8), EINVAL);
        assert_fail(ashm_mutex_init(s.region, 6, 0), EINVAL);
        assert_fail(ashm_mutex_lock(NULL, 0), EINVAL);
        assert_fail(ashm_wait((uint32_t *) (s.base + 2), 0, 0), EINVAL);
        assert_fail(ashm_wake((uint32_t *) (s.base + WORD), 0), EINVAL);
        /* Zero bytes are not a mutex. */
        assert_ok(ashm_mutex_open(s.region, 1024, 0, &m));
        assert_fail(ashm_mutex_lock(m, 0), EBADMSG);
        ashm_mutex_close(m);
        /* A mutex across a page boundary works. */
        assert_ok(ashm_mutex_init(s.region, 4092, 0));
        assert_ok(ashm_mutex_open(s.region, 4092, 0, &m));
        cr_expect_eq(ashm_mutex_lock(m, -1), 0);
        cr_expect_eq(ashm_mutex_unlock(m), 0);
        ashm_mutex_close(m);
        shared_done(&s);
}

ASHM_TEST(lock, timeouts) {
        struct shared s;
        ashm_mutex *a, *b;
        uint32_t *word;

        shared_new(&s);
        assert_ok(ashm_mutex_open(s.region, 0, 0, &a));
        assert_ok(ashm_mutex_open(s.region, 0, 0, &b));
        cr_expect_eq(ashm_mutex_lock(a, 0), 0);
        assert_fail(ashm_mutex_lock(b, 0), ETIMEDOUT);
        assert_fail(ashm_mutex_lock(b, 20 * 1000 * 1000), ETIMEDOUT);
        cr_expect_eq(ashm_mutex_unlock(a), 0);
        cr_expect_eq(ashm_mutex_lock(b, 20 * 1000 * 1000), 0);
        cr_expect_eq(ashm_mutex_unlock(b), 0);
        /* A timeout past the clock's range is no timeout (no overflow). */
        cr_expect_eq(ashm_mutex_lock(a, INT64_MAX), 0);
        assert_fail(ashm_mutex_trylock(b), EBUSY);
        cr_expect_eq(ashm_mutex_unlock(a), 0);

        word = (uint32_t *) (s.base + WORD);
        *word = 5;
        assert_fail(ashm_wait(word, 4, -1), EAGAIN);
        assert_fail(ashm_wait(word, 4, INT64_MAX), EAGAIN);
        assert_fail(ashm_wait(word, 5, 0), ETIMEDOUT);
        assert_fail(ashm_wait(word, 5, 10 * 1000 * 1000), ETIMEDOUT);
        cr_expect_eq(ashm_wake(word, 1), 0);
        ashm_mutex_close(a);
        ashm_mutex_close(b);
        shared_done(&s);
}

/* The region is sealed against shrinking: a peer's truncation would fault
 * every holder's next access. */
ASHM_TEST(lock, region_is_sealed_against_shrinking) {
        struct shared s;
        ashm_mutex *m;

        shared_new(&s);
        assert_ok(ashm_mutex_open(s.region, 0, 0, &m));
        cr_expect(fcntl(ashm_region_fd(s.region), F_GET_SEALS) & F_SEAL_SHRINK);
        assert_fail_errno(ftruncate(ashm_region_fd(s.region), 0), EPERM);
        ashm_mutex_close(m);
        shared_done(&s);
}

ASHM_TEST(lock, inherited_handle_fails_after_fork) {
        struct shared s;
        ashm_mutex *m;
        pid_t pid;
        int status;

        shared_new(&s);
        assert_ok(ashm_mutex_open(s.region, 0, 0, &m));
        pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0)
                _exit(ashm_mutex_lock(m, 0) == -ECHILD && ashm_mutex_unlock(m) == -ECHILD ? 0 : 1);
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        cr_expect_eq(ashm_mutex_lock(m, 0), 0);
        cr_expect_eq(ashm_mutex_unlock(m), 0);
        ashm_mutex_close(m);
        shared_done(&s);
}

/* ---- processes ------------------------------------------------------------ */

/* Three unrelated processes count to 3 x 20000 under the mutex. */
ASHM_TEST(lock, exec_peers_exclude_each_other) {
        struct shared s;
        pid_t p[3];

        shared_new(&s);
        for (int i = 0; i < 3; i++)
                p[i] = peer(&s, -1, "count", "20000");
        for (int i = 0; i < 3; i++)
                cr_expect_eq(reap_peer(p[i], 50), 0, "peer %d", i);
        cr_expect_eq(counter(&s), 60000);
        shared_done(&s);
}

/* An owner killed while it holds the mutex: the next locker gets it with
 * ASHM_MUTEX_OWNER_DIED, at once for a waiter already asleep. */
ASHM_TEST(lock, dead_owner_is_reported) {
        struct shared s;
        ashm_mutex *m;
        int fds[2];
        char ack[16], c;
        pid_t pid;

        shared_new(&s);
        assert_ok(ashm_mutex_open(s.region, 0, 0, &m));
        cr_assert(pipe2(fds, O_CLOEXEC) == 0);
        snprintf(ack, sizeof(ack), "%d", fds[1]);
        pid = peer(&s, fds[1], "hold", ack);
        close(fds[1]);
        cr_assert_eq(read(fds[0], &c, 1), 1, "the peer did not take the lock");
        close(fds[0]);
        assert_fail(ashm_mutex_trylock(m), EBUSY);
        kill(pid, SIGKILL);
        cr_expect_eq(reap_peer(pid, 30), 128 + SIGKILL);
        cr_expect_eq(ashm_mutex_lock(m, 10 * INT64_C(1000000000)), ASHM_MUTEX_OWNER_DIED);
        cr_expect_eq(ashm_mutex_unlock(m), 0);
        cr_expect_eq(ashm_mutex_lock(m, 0), 0, "reported once");
        cr_expect_eq(ashm_mutex_unlock(m), 0);
        ashm_mutex_close(m);
        shared_done(&s);
}

/* Peers that count under the mutex are killed at random instants, inside
 * or outside it. Whoever locks next gets OWNER_DIED whenever the victim
 * died mid-write (its half-written flag is set; the peers check the same
 * rule on each of their own locks), and nobody waits for ever. */
ASHM_TEST(lock, owners_killed_at_random_points) {
        unsigned seed = test_seed();
        struct shared s;
        ashm_mutex *m;
        int died = 0, half = 0;

        shared_new(&s);
        assert_ok(ashm_mutex_open(s.region, 0, 0, &m));
        srandom(seed);
        for (int trial = 0; trial < 40; trial++) {
                int fds[2], r;
                char ack[16], c;
                pid_t a, b;
                struct timespec ts = { 0, random() % 3000000 };
                volatile uint32_t *flag = (volatile uint32_t *) (s.base + FLAG);

                cr_assert(pipe2(fds, O_CLOEXEC) == 0);
                snprintf(ack, sizeof(ack), "%d", fds[1]);
                a = peer(&s, fds[1], "forever", ack);
                b = peer(&s, fds[1], "forever", ack);
                close(fds[1]);
                cr_assert_eq(read(fds[0], &c, 1), 1, "trial %d: no peer started", trial);
                nanosleep(&ts, NULL);
                kill(a, SIGKILL);
                if (random() % 2)
                        kill(b, SIGKILL);
                r = reap_peer(a, 30);
                cr_expect_eq(r, 128 + SIGKILL, "trial %d (seed %u): peer a exited %d", trial, seed, r);
                kill(b, SIGKILL);
                r = reap_peer(b, 30);
                cr_expect_eq(r, 128 + SIGKILL, "trial %d (seed %u): peer b exited %d", trial, seed, r);
                close(fds[0]);

                r = ashm_mutex_lock(m, 10 * INT64_C(1000000000));
                cr_assert(r == 0 || r == ASHM_MUTEX_OWNER_DIED, "trial %d (seed %u): lock %d", trial, seed, r);
                cr_expect(*flag == 0 || r == ASHM_MUTEX_OWNER_DIED,
                          "trial %d (seed %u): lock returned %d with the flag %u", trial, seed, r, *flag);
                half += *flag != 0;
                died += r == ASHM_MUTEX_OWNER_DIED;
                *flag = 0; /* the repair a user would make */
                cr_assert_eq(ashm_mutex_unlock(m), 0);
        }
        fprintf(stderr, "# %d of 40 trials killed an owner holding the mutex, %d of them mid-write\n", died,
                half);
        ashm_mutex_close(m);
        shared_done(&s);
}

/* A process of another uid holding the region's fd writes random values
 * over the mutex while two peers use it with a timeout: they get errors,
 * never a crash, and each finishes in bounded time; once the scribbler
 * stops and the magic is back, the mutex works. */
ASHM_TEST(lock, hostile_scribbler_crashes_and_hangs_nobody) {
        unsigned seed = test_seed();
        struct shared s;
        ashm_mutex *m;
        char seedarg[16];
        pid_t a, b, x;
        int r;

        shared_new(&s);
        snprintf(seedarg, sizeof(seedarg), "%u", seed);
        a = peer(&s, -1, "hammer", "2");
        b = peer(&s, -1, "hammer", "2");
        x = run_peer(&s, -1, -1, true, (const char *const[]) { "scribble", "2", seedarg, NULL });
        cr_expect_eq(reap_peer(x, 20), 0, "the scribbler failed");
        cr_expect_eq(reap_peer(a, 20), 0, "peer a died (>= 128: a signal)");
        cr_expect_eq(reap_peer(b, 20), 0, "peer b died (>= 128: a signal)");

        assert_ok(ashm_mutex_init(s.region, 0, 0));
        assert_ok(ashm_mutex_open(s.region, 0, 0, &m));
        r = ashm_mutex_lock(m, 10 * INT64_C(1000000000));
        cr_expect_eq(r, 0, "lock after the attack: %d", r);
        cr_expect_eq(ashm_mutex_unlock(m), 0);
        ashm_mutex_close(m);
        shared_done(&s);
}

/* The word names a live holder that does not hold the mutex (a peer
 * planted it): lockers wait their timeout and fail, never for ever. */
ASHM_TEST(lock, planted_live_owner_ends_in_a_timeout) {
        struct shared s;
        ashm_mutex *a, *b;
        uint32_t id;

        shared_new(&s);
        assert_ok(ashm_mutex_open(s.region, 0, 0, &a));
        assert_ok(ashm_mutex_open(s.region, 0, 0, &b));
        cr_assert_eq(ashm_mutex_lock(a, 0), 0);
        id = __atomic_load_n((uint32_t *) s.base, __ATOMIC_ACQUIRE);
        cr_assert_eq(ashm_mutex_unlock(a), 0);
        __atomic_store_n((uint32_t *) s.base, id, __ATOMIC_RELEASE);
        assert_fail(ashm_mutex_lock(b, 50 * 1000 * 1000), ETIMEDOUT);
        assert_fail(ashm_mutex_trylock(b), EBUSY);
        /* Once a's handle is gone, its id is dead and b takes over. */
        ashm_mutex_close(a);
        cr_expect_eq(ashm_mutex_lock(b, 10 * INT64_C(1000000000)), ASHM_MUTEX_OWNER_DIED);
        cr_expect_eq(ashm_mutex_unlock(b), 0);
        ashm_mutex_close(b);
        shared_done(&s);
}

/* A peer sleeps in ashm_wait() until this process changes the word and
 * wakes it. */
ASHM_TEST(lock, wait_and_wake_across_processes) {
        struct shared s;
        uint32_t *word;
        char out[64] = "";
        int fds[2], woken = 0;
        ssize_t n;
        pid_t pid;

        shared_new(&s);
        word = (uint32_t *) (s.base + WORD);
        __atomic_store_n(word, 7, __ATOMIC_RELEASE);
        cr_assert(pipe2(fds, O_CLOEXEC) == 0);
        pid = run_peer(&s, -1, fds[1], false, (const char *const[]) { "wait", "7", NULL });
        close(fds[1]);
        /* Wake until the peer was asleep when we woke it (it may not be
         * yet): bounded, no fixed sleep. */
        __atomic_store_n(word, 8, __ATOMIC_RELEASE);
        for (int i = 0; i < 10000 && woken == 0; i++) {
                struct timespec ts = { 0, 1000 * 1000 };
                int r = ashm_wake(word, 1);

                cr_assert(r >= 0);
                woken = r;
                if (waitpid(pid, NULL, WNOHANG) == pid) {
                        pid = -1;
                        break;
                }
                nanosleep(&ts, NULL);
        }
        n = read(fds[0], out, sizeof(out) - 1);
        close(fds[0]);
        out[n > 0 ? n : 0] = '\0';
        if (pid > 0)
                cr_expect_eq(reap_peer(pid, 30), 0);
        /* Woken (0), or it came after the store (-EAGAIN): never a timeout. */
        cr_expect(strcmp(out, "0 8\n") == 0 || strcmp(out, "-11 8\n") == 0, "peer said %s", out);
        shared_done(&s);
}

/* ---- threads -------------------------------------------------------------- */

struct contend {
        ashm_region *region;
        ashm_mutex *shared_handle; /* NULL: each thread opens its own */
        uint64_t *counter;
        int iterations;
};

static void *contend_thread(void *p) {
        struct contend *c = p;
        ashm_mutex *m = c->shared_handle;

        if (!m && ashm_mutex_open(c->region, 0, 0, &m) < 0)
                return (void *) 1;
        for (int i = 0; i < c->iterations; i++) {
                if (ashm_mutex_lock(m, -1) != 0)
                        return (void *) 2;
                (*c->counter)++; /* plain: the mutex is the only guard (TSan checks) */
                if (ashm_mutex_unlock(m) != 0)
                        return (void *) 3;
        }
        if (!c->shared_handle)
                ashm_mutex_close(m);
        return NULL;
}

static void contend(bool one_handle) {
        struct shared s;
        pthread_t t[4];
        ashm_mutex *m = NULL;
        struct contend c;

        shared_new(&s);
        if (one_handle)
                assert_ok(ashm_mutex_open(s.region, 0, 0, &m));
        c = (struct contend) { s.region, m, (uint64_t *) (s.base + COUNTER), 20000 };
        for (int i = 0; i < 4; i++)
                cr_assert_eq(pthread_create(&t[i], NULL, contend_thread, &c), 0);
        for (int i = 0; i < 4; i++) {
                void *ret;

                cr_assert_eq(pthread_join(t[i], &ret), 0);
                cr_expect_null(ret, "thread %d failed at step %p", i, ret);
        }
        cr_expect_eq(counter(&s), 80000);
        ashm_mutex_close(m);
        shared_done(&s);
}

ASHM_TEST(lock, threads_with_their_own_handles) {
        contend(false);
}

ASHM_TEST(lock, threads_sharing_a_handle) {
        contend(true);
}
