/* SPDX-License-Identifier: MIT */
/*
 * The key-value store: typed values, processes sharing a store on a
 * file and on a region, writers killed at random instants, damaged
 * files, check and repair. Links the internal archive to damage the
 * format on purpose (kv-format.h).
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ashm.h"
#include "kv-format.h"
#include "kv.h"
#include "lock.h"
#include "tests.h"

#define KV_PEER BUILD_ROOT "/tests/ashm-test-kv-peer"

ASHM_SUITE(kv);

extern char **environ;

/* A fresh directory per test, and a store path in it. */
static void store_path(char *buf, size_t len, const char *name) {
        char dir[64] = "/tmp/ashm-kv-test-XXXXXX";

        cr_assert_not_null(mkdtemp(dir));
        snprintf(buf, len, "%s/%s", dir, name);
}

static void remove_store(const char *path) {
        char cmd[300];

        snprintf(cmd, sizeof(cmd), "rm -rf \"$(dirname '%s')\"", path);
        (void) !system(cmd);
}

static ashm_kv *open_new(const char *path) {
        ashm_kv *kv;

        assert_ok(ashm_kv_open(path, ASHM_KV_CREATE, &kv));
        return kv;
}

/* Run the peer with argv; extra_fd (if >= 0) stays open in it. */
static pid_t peer(int extra_fd, const char *const *args) {
        const char *argv[8] = { KV_PEER };
        posix_spawn_file_actions_t fa;
        pid_t pid;
        int r;

        for (size_t i = 0; args[i] && i < 6; i++)
                argv[i + 1] = args[i];
        int log = tests_peer_log_open();

        posix_spawn_file_actions_init(&fa);
        if (extra_fd >= 0)
                posix_spawn_file_actions_adddup2(&fa, extra_fd, extra_fd); /* clears FD_CLOEXEC */
        posix_spawn_file_actions_adddup2(&fa, log, 2);
        r = posix_spawn(&pid, KV_PEER, &fa, NULL, (char *const *) argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0)
                close(log);
        cr_assert_eq(r, 0, "spawn: %s", strerror(r));
        tests_peer_log_add(pid, log);
        return pid;
}

/* Reap the peer; its exit status (128 + signal if killed). Its stderr is
 * in tests_peer_stderr until the next peer is reaped. */
static int peer_status(pid_t pid) {
        int status;

        cr_assert_eq(waitpid(pid, &status, 0), pid);
        tests_peer_log_take(pid);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The peer must exit 0; its stderr is shown if it does not. */
#define assert_peer_ok(status)                                                                            \
        do {                                                                                              \
                int _s = (status);                                                                        \
                cr_assert_eq(_s, 0, "%s: peer exited with %d; its stderr:\n%s", #status, _s, tests_peer_stderr); \
        } while (0)

#define run_peer(fd, ...) peer_status(peer(fd, (const char *const[]) { __VA_ARGS__, NULL }))

/* ---- values ------------------------------------------------------------ */

ASHM_TEST(kv, every_type_round_trips) {
        char path[128], s[16];
        ashm_kv *kv;
        int b;
        int32_t i32;
        int64_t i64;
        uint64_t u64;
        float f;
        double d;
        uint8_t bytes[3] = { 0, 0xff, 7 }, got[8];
        size_t len;
        char *dup;

        store_path(path, sizeof(path), "types.kv");
        kv = open_new(path);
        assert_ok(ashm_kv_set_bool(kv, "b", 1));
        assert_ok(ashm_kv_set_int32(kv, "i32", INT32_MIN));
        assert_ok(ashm_kv_set_int64(kv, "i64", INT64_MAX));
        assert_ok(ashm_kv_set_uint64(kv, "u64", UINT64_MAX));
        assert_ok(ashm_kv_set_float(kv, "f", 1.5f));
        assert_ok(ashm_kv_set_double(kv, "d", -0.1));
        assert_ok(ashm_kv_set_string(kv, "s", "hello, world"));
        assert_ok(ashm_kv_set_string(kv, "empty", ""));
        assert_ok(ashm_kv_set_bytes(kv, "y", bytes, sizeof(bytes)));
        ashm_kv_close(kv);

        /* Everything is in the file: a new handle sees it. */
        assert_ok(ashm_kv_open(path, ASHM_KV_RDONLY, &kv));
        assert_ok(ashm_kv_get_bool(kv, "b", &b));
        cr_assert_eq(b, 1);
        assert_ok(ashm_kv_get_int32(kv, "i32", &i32));
        cr_assert_eq(i32, INT32_MIN);
        assert_ok(ashm_kv_get_int64(kv, "i64", &i64));
        cr_assert_eq(i64, INT64_MAX);
        assert_ok(ashm_kv_get_uint64(kv, "u64", &u64));
        cr_assert_eq(u64, UINT64_MAX);
        assert_ok(ashm_kv_get_float(kv, "f", &f));
        cr_assert_eq(f, 1.5f);
        assert_ok(ashm_kv_get_double(kv, "d", &d));
        cr_assert_eq(d, -0.1);
        /* Truncated like snprintf(), full length reported. */
        assert_ok(ashm_kv_get_string(kv, "s", s, 6, &len));
        cr_assert_str_eq(s, "hello");
        cr_assert_eq(len, 12);
        assert_ok(ashm_kv_get_string_dup(kv, "s", &dup));
        cr_assert_str_eq(dup, "hello, world");
        free(dup);
        assert_ok(ashm_kv_get_string_dup(kv, "empty", &dup));
        cr_assert_str_eq(dup, "");
        free(dup);
        assert_ok(ashm_kv_get_bytes(kv, "y", got, sizeof(got), &len));
        cr_assert_eq(len, 3);
        cr_assert_arr_eq(got, bytes, 3);
        cr_assert_eq(ashm_kv_contains(kv, "s"), 1);
        cr_assert_eq(ashm_kv_contains(kv, "nope"), 0);
        assert_ok(ashm_kv_count(kv, &u64));
        cr_assert_eq(u64, 9);
        ashm_kv_close(kv);
        remove_store(path);
}

ASHM_TEST(kv, errors_are_clear) {
        char path[128], longkey[ASHM_KV_KEY_MAX + 2];
        ashm_kv *kv, *ro;
        int32_t i32;
        int type;
        size_t len;
        uint8_t two = 2;

        store_path(path, sizeof(path), "errors.kv");
        cr_assert_eq(ashm_kv_open(path, 0, &kv), -ENOENT);
        kv = open_new(path);
        assert_ok(ashm_kv_set_string(kv, "s", "text"));
        cr_assert_eq(ashm_kv_get_int32(kv, "s", &i32), -EPROTOTYPE);
        cr_assert(strstr(ashm_kv_error_detail(), "holds a string, not an int32"), "%s", ashm_kv_error_detail());
        assert_ok(ashm_kv_get(kv, "s", &type, NULL, 0, &len));
        cr_assert_eq(type, ASHM_KV_STRING);
        cr_assert_eq(len, 4);
        cr_assert_eq(ashm_kv_get_int32(kv, "missing", &i32), -ENOENT);
        cr_assert_eq(ashm_kv_set_int32(kv, "", 1), -EINVAL);
        memset(longkey, 'x', sizeof(longkey) - 1);
        longkey[sizeof(longkey) - 1] = '\0';
        cr_assert_eq(ashm_kv_set_int32(kv, longkey, 1), -EINVAL);
        longkey[ASHM_KV_KEY_MAX] = '\0';
        assert_ok(ashm_kv_set_int32(kv, longkey, 1)); /* exactly the limit */
        cr_assert_eq(ashm_kv_set(kv, "b", ASHM_KV_BOOL, &two, 1), -EINVAL);
        cr_assert_eq(ashm_kv_set(kv, "i", ASHM_KV_INT32, &two, 1), -EINVAL);
        cr_assert_eq(ashm_kv_set(kv, "x", 99, &two, 1), -EINVAL);
        cr_assert_eq(ashm_kv_remove(kv, "missing"), -ENOENT);
        cr_assert_eq(ashm_kv_open(path, 0x100, &ro), -EINVAL);

        assert_ok(ashm_kv_open(path, ASHM_KV_RDONLY, &ro));
        cr_assert_eq(ashm_kv_set_int32(ro, "k", 1), -EROFS);
        cr_assert_eq(ashm_kv_remove(ro, "s"), -EROFS);
        cr_assert_eq(ashm_kv_clear(ro), -EROFS);
        ashm_kv_close(ro);
        ashm_kv_close(kv);
        remove_store(path);
}

ASHM_TEST(kv, overwrite_remove_clear_and_compaction) {
        char path[128], key[32];
        ashm_kv *kv;
        ashm_kv_stats st;
        uint64_t n;
        int64_t v;

        store_path(path, sizeof(path), "churn.kv");
        kv = open_new(path);
        /* 200k writes over 100 keys: the log must compact, not grow. */
        for (int i = 0; i < 200000; i++) {
                snprintf(key, sizeof(key), "key%d", i % 100);
                assert_ok(ashm_kv_set_int64(kv, key, i));
        }
        assert_ok(ashm_kv_stats_get(kv, &st));
        cr_assert_eq(st.keys, 100);
        cr_assert(st.rebuilds > 0);
        cr_assert(st.file_size < 1 << 20, "file %" PRIu64 " bytes for 100 keys", st.file_size);
        assert_ok(ashm_kv_get_int64(kv, "key7", &v));
        cr_assert_eq(v, 199907);
        assert_ok(ashm_kv_remove(kv, "key7"));
        cr_assert_eq(ashm_kv_get_int64(kv, "key7", &v), -ENOENT);
        assert_ok(ashm_kv_count(kv, &n));
        cr_assert_eq(n, 99);
        assert_ok(ashm_kv_set_int64(kv, "key7", -1)); /* back, in the tombstone */
        assert_ok(ashm_kv_get_int64(kv, "key7", &v));
        cr_assert_eq(v, -1);
        assert_ok(ashm_kv_compact(kv));
        assert_ok(ashm_kv_get_int64(kv, "key7", &v));
        cr_assert_eq(v, -1);
        assert_ok(ashm_kv_clear(kv));
        assert_ok(ashm_kv_count(kv, &n));
        cr_assert_eq(n, 0);
        cr_assert_eq(ashm_kv_contains(kv, "key1"), 0);
        ashm_kv_close(kv);
        cr_assert_eq(ashm_kv_check(path, NULL, NULL, NULL), 0);
        remove_store(path);
}

static int count_keys(const char *key, int type, size_t len, void *userdata) {
        int *n = userdata;

        cr_assert_eq(type, ASHM_KV_INT32);
        cr_assert_eq(len, 4);
        cr_assert(key[0] == 'k');
        (*n)++;
        return *n == 1000 ? -ECANCELED : 0;
}

ASHM_TEST(kv, foreach_sees_every_key_once) {
        char path[128], key[32];
        ashm_kv *kv;
        int n = 0;

        store_path(path, sizeof(path), "each.kv");
        kv = open_new(path);
        for (int i = 0; i < 500; i++) {
                snprintf(key, sizeof(key), "k%d", i);
                assert_ok(ashm_kv_set_int32(kv, key, i));
        }
        assert_ok(ashm_kv_foreach(kv, count_keys, &n));
        cr_assert_eq(n, 500);
        for (int i = 500; i < 2000; i++) {
                snprintf(key, sizeof(key), "k%d", i);
                assert_ok(ashm_kv_set_int32(kv, key, i));
        }
        n = 0;
        cr_assert_eq(ashm_kv_foreach(kv, count_keys, &n), -ECANCELED); /* the callback's error stops it */
        ashm_kv_close(kv);
        remove_store(path);
}

ASHM_TEST(kv, handle_after_fork_is_refused) {
        char path[128];
        ashm_kv *kv;
        pid_t pid;
        int status;

        store_path(path, sizeof(path), "fork.kv");
        kv = open_new(path);
        pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
                int32_t v;

                _exit(ashm_kv_set_int32(kv, "x", 1) == -ECHILD && ashm_kv_get_int32(kv, "x", &v) == -ECHILD ? 0 : 1);
        }
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        assert_ok(ashm_kv_set_int32(kv, "x", 1));
        ashm_kv_close(kv);
        remove_store(path);
}

/* ---- sharing ----------------------------------------------------------- */

ASHM_TEST(kv, unrelated_processes_share_a_file_store) {
        char path[128];
        ashm_kv *kv;
        int64_t v;

        store_path(path, sizeof(path), "shared.kv");
        kv = open_new(path);
        /* The peer's write is seen here at once, with no reopen. */
        assert_peer_ok(run_peer(-1, "set", path, "from-peer", "41"));
        assert_ok(ashm_kv_get_int64(kv, "from-peer", &v));
        cr_assert_eq(v, 41);
        /* And ours there. */
        assert_ok(ashm_kv_set_int64(kv, "from-test", 42));
        assert_peer_ok(run_peer(-1, "see", path, "from-test", "42"));
        /* A peer writing while we read: growth and all. */
        assert_peer_ok(run_peer(-1, "write", path, "0", "20000"));
        assert_ok(ashm_kv_get_int64(kv, "k19999", &v));
        cr_assert_eq(v, 19999 * 7);
        ashm_kv_close(kv);
        remove_store(path);
}

ASHM_TEST(kv, unrelated_processes_share_a_region_store) {
        ashm_region *region;
        ashm_kv *kv;
        char arg[32];
        int64_t v;
        int fd;

        assert_ok(ashm_region_create("kv-region", 64 << 20, 0, &region));
        assert_ok(ashm_kv_open_region(region, ASHM_KV_CREATE, &kv));
        fd = ashm_region_fd(region);
        snprintf(arg, sizeof(arg), "fd:%d", fd);
        assert_peer_ok(run_peer(fd, "write", arg, "0", "5000"));
        assert_ok(ashm_kv_get_int64(kv, "k4999", &v));
        cr_assert_eq(v, 4999 * 7);
        assert_ok(ashm_kv_set_int64(kv, "from-test", 5));
        assert_peer_ok(run_peer(fd, "see", arg, "from-test", "5"));
        ashm_kv_close(kv);
        ashm_region_close(region);
}

ASHM_TEST(kv, a_region_store_shared_by_broker_name) {
        struct test_daemon d;
        ashm_region *region, *found;
        ashm_kv *kv, *kv2;
        int64_t v;

        daemon_start(&d);
        assert_ok(ashm_region_create("kv-named", 64 << 20, 0, &region));
        assert_ok(ashm_kv_open_region(region, ASHM_KV_CREATE, &kv));
        assert_ok(ashm_kv_set_int64(kv, "answer", 42));
        assert_ok(ashm_publish(region, "kv-test-store", 0600, 0));
        assert_ok(ashm_lookup("kv-test-store", ASHM_LOOKUP_WRITE, &found));
        assert_ok(ashm_kv_open_region(found, 0, &kv2));
        assert_ok(ashm_kv_get_int64(kv2, "answer", &v));
        cr_assert_eq(v, 42);
        assert_ok(ashm_kv_set_int64(kv2, "back", 7));
        assert_ok(ashm_kv_get_int64(kv, "back", &v));
        cr_assert_eq(v, 7);
        ashm_kv_close(kv2);
        ashm_kv_close(kv);
        ashm_region_close(found);
        ashm_region_close(region);
        daemon_stop(&d);
}

ASHM_TEST(kv, two_writers_lose_nothing) {
        char path[128], key[32];
        ashm_kv *kv;
        uint64_t n;
        pid_t a, b;

        store_path(path, sizeof(path), "two.kv");
        kv = open_new(path);
        a = peer(-1, (const char *const[]) { "write", path, "0", "30000", NULL });
        b = peer(-1, (const char *const[]) { "write", path, "30000", "30000", NULL });
        /* Read while they write: every value seen is the right one. */
        for (int round = 0; round < 20; round++)
                for (int i = round; i < 60000; i += 97) {
                        int64_t v;
                        int r;

                        snprintf(key, sizeof(key), "k%d", i);
                        r = ashm_kv_get_int64(kv, key, &v);
                        cr_assert(r == 0 || r == -ENOENT, "get %s: %s", key, errname(r));
                        cr_assert(r < 0 || v == (int64_t) i * 7);
                }
        assert_peer_ok(peer_status(a));
        assert_peer_ok(peer_status(b));
        assert_ok(ashm_kv_count(kv, &n));
        cr_assert_eq(n, 60000);
        for (int i = 0; i < 60000; i++) {
                int64_t v;

                snprintf(key, sizeof(key), "k%d", i);
                assert_ok(ashm_kv_get_int64(kv, key, &v));
                cr_assert_eq(v, (int64_t) i * 7);
        }
        ashm_kv_close(kv);
        cr_assert_eq(ashm_kv_check(path, NULL, NULL, NULL), 0);
        remove_store(path);
}

/* ---- kill -9 -------------------------------------------------------------- */

/* A writer killed at a random instant: every set() it acknowledged is in
 * the store, and the store checks clean. The seed is in every failure. */
ASHM_TEST(kv, kill9_loses_no_acknowledged_write) {
        unsigned seed = (unsigned) time(NULL) ^ (unsigned) getpid();
        const char *env = getenv("ASHM_KV_KILL_TRIALS");
        int trials = env ? atoi(env) : 60;
        char path[128], ackarg[16], key[32];
        uint64_t recoveries = 0;

        store_path(path, sizeof(path), "kill.kv");
        srand(seed);
        for (int t = 0; t < trials; t++) {
                int ack[2];
                int64_t acked = -1, i, v;
                struct timespec ts;
                ashm_kv *kv;
                ashm_kv_stats st;
                pid_t pid;
                char first[24];
                ssize_t n;
                int r;

                cr_assert(pipe2(ack, O_CLOEXEC) == 0);
                snprintf(ackarg, sizeof(ackarg), "%d", ack[1]);
                snprintf(first, sizeof(first), "%d", t * 100000);
                pid = peer(ack[1], (const char *const[]) { "write", path, first, "100000", ackarg, NULL });
                close(ack[1]);
                ts = (struct timespec) { 0, (rand() % 40000) * 1000L }; /* 0 to 40 ms */
                nanosleep(&ts, NULL);
                kill(pid, SIGKILL);
                peer_status(pid);
                while ((n = read(ack[0], &i, sizeof(i))) == sizeof(i))
                        acked = i;
                close(ack[0]);

                /* CREATE: a writer killed before it laid the store out
                 * leaves an empty file, which is laid out again. */
                r = ashm_kv_open(path, ASHM_KV_CREATE, &kv);
                cr_assert_eq(r, 0, "seed %u trial %d: open: %s (%s)", seed, t, errname(r), ashm_kv_error_detail());
                for (i = t * 100000; i <= acked; i++) {
                        snprintf(key, sizeof(key), "k%" PRId64, i);
                        r = ashm_kv_get_int64(kv, key, &v);
                        cr_assert(r == 0 && v == i * 7, "seed %u trial %d: acknowledged %s lost: %s", seed, t, key,
                                  errname(r));
                }
                /* Writing still works after whatever the writer left. */
                assert_ok(ashm_kv_set_int64(kv, "after", t));
                assert_ok(ashm_kv_stats_get(kv, &st));
                recoveries = st.recoveries;
                ashm_kv_close(kv);
                r = ashm_kv_check(path, NULL, NULL, NULL);
                cr_assert_eq(r, 0, "seed %u trial %d: check: %d", seed, t, r);
        }
        cr_log_info("kill -9: %d trials, seed %u, %" PRIu64 " recoveries of a dead writer's lock", trials, seed,
                    recoveries);
        remove_store(path);
}

/* A writer that dies holding the lock (stopped inside it, then killed):
 * the next writer learns it (LOCK_OWNER_DIED), recovers, and carries on. */
ASHM_TEST(kv, dead_lock_holder_is_recovered) {
        char path[128];
        ashm_kv *kv;
        pid_t pid;
        int fds[2], status;
        char c;
        int64_t v;
        ashm_kv_stats st;

        store_path(path, sizeof(path), "dead.kv");
        kv = open_new(path);
        assert_ok(ashm_kv_set_int64(kv, "before", 1));
        cr_assert(pipe(fds) == 0);
        pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
                struct kv_header *h;
                struct lock_owner o;
                ashm_kv *mine;
                int fd;

                /* A handle of its own, then hold the lock and die. */
                if (ashm_kv_open(path, 0, &mine) < 0)
                        _exit(1);
                fd = open(path, O_RDWR | O_CLOEXEC);
                h = mmap(NULL, KV_HEADER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
                if (h == MAP_FAILED || lock_owner_init(&o, fd) < 0 || lock_take(&h->lock.l, &o, -1, NULL) != 0)
                        _exit(1);
                (void) !write(fds[1], "L", 1);
                pause();
                _exit(0);
        }
        close(fds[1]);
        cr_assert_eq(read(fds[0], &c, 1), 1);
        close(fds[0]);
        kill(pid, SIGKILL);
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        assert_ok(ashm_kv_set_int64(kv, "after", 2));
        assert_ok(ashm_kv_get_int64(kv, "before", &v));
        cr_assert_eq(v, 1);
        assert_ok(ashm_kv_stats_get(kv, &st));
        cr_assert_eq(st.recoveries, 1);
        ashm_kv_close(kv);
        remove_store(path);
}

/* ---- damage ---------------------------------------------------------------- */

static void poke(const char *path, uint64_t off, uint8_t xor) {
        int fd = open(path, O_RDWR | O_CLOEXEC);
        uint8_t b;

        cr_assert(fd >= 0);
        cr_assert_eq(pread(fd, &b, 1, (off_t) off), 1);
        b ^= xor;
        cr_assert_eq(pwrite(fd, &b, 1, (off_t) off), 1);
        close(fd);
}

/* The file offset of key's record, from the index. */
static uint64_t record_offset(const char *path, const char *key) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        const uint8_t *p;
        const struct kv_header *h;
        const struct kv_arena *a;
        uint64_t found = 0;

        cr_assert(fd >= 0 && fstat(fd, &st) == 0);
        p = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        cr_assert(p != MAP_FAILED);
        h = (const void *) p;
        a = &h->arenas[h->gen & 1];
        for (uint64_t pos = 0; pos < a->log_head;) {
                struct kv_record rh;

                memcpy(&rh, p + a->log_off + pos, sizeof(rh));
                if (rh.key_len == strlen(key) && memcmp(p + a->log_off + pos + sizeof(rh), key, rh.key_len) == 0)
                        found = a->log_off + pos;
                pos += kv_record_size(rh.key_len, rh.val_len);
        }
        munmap((void *) p, (size_t) st.st_size);
        close(fd);
        cr_assert(found, "no record of %s", key);
        return found;
}

static void fill(const char *path, int n) {
        ashm_kv *kv = open_new(path);
        char key[32];

        for (int i = 0; i < n; i++) {
                snprintf(key, sizeof(key), "k%d", i);
                assert_ok(ashm_kv_set_int64(kv, key, i));
        }
        ashm_kv_close(kv);
}

static void count_damage(uint64_t off, uint64_t len, const char *what, void *userdata) {
        (*(int *) userdata)++;
        cr_assert(len > 0 && off > 0 && what[0]);
}

ASHM_TEST(kv, damaged_record_is_reported_and_repaired) {
        char path[128], backup[160];
        ashm_kv *kv;
        ashm_kv_report rep;
        int64_t v;
        int n = 0;
        struct stat st;

        store_path(path, sizeof(path), "damaged.kv");
        fill(path, 1000);
        poke(path, record_offset(path, "k500") + sizeof(struct kv_record) + 4 + 2, 0x40); /* its value */
        poke(path, record_offset(path, "k600") + sizeof(struct kv_record) + 2, 0x40);     /* its key */

        /* Open is O(1) and succeeds; the damaged key says so, others work. */
        assert_ok(ashm_kv_open(path, 0, &kv));
        cr_assert_eq(ashm_kv_get_int64(kv, "k500", &v), -EBADMSG);
        cr_assert(strstr(ashm_kv_error_detail(), "k500"), "%s", ashm_kv_error_detail());
        cr_assert_eq(ashm_kv_get_int64(kv, "k600", &v), -EBADMSG);
        assert_ok(ashm_kv_get_int64(kv, "k501", &v));
        cr_assert_eq(v, 501);
        /* Repair refuses while a writer has it open. */
        cr_assert_eq(ashm_kv_repair(path, NULL, NULL, NULL), -EBUSY);
        ashm_kv_close(kv);

        cr_assert_eq(ashm_kv_check(path, count_damage, &n, &rep), 1);
        cr_assert_eq(rep.damaged, 2);
        cr_assert_eq(rep.records, 998);
        cr_assert(n >= 1);
        cr_assert_eq(ashm_kv_repair(path, NULL, NULL, &rep), 1);
        snprintf(backup, sizeof(backup), "%s.damaged", path);
        cr_assert(stat(backup, &st) == 0, "the damaged original is kept");
        cr_assert_eq(ashm_kv_check(path, NULL, NULL, NULL), 0);
        assert_ok(ashm_kv_open(path, 0, &kv));
        for (int i = 0; i < 1000; i++) {
                char key[32];

                snprintf(key, sizeof(key), "k%d", i);
                if (i == 500 || i == 600)
                        cr_assert_eq(ashm_kv_get_int64(kv, key, &v), -ENOENT);
                else {
                        assert_ok(ashm_kv_get_int64(kv, key, &v));
                        cr_assert_eq(v, i);
                }
        }
        ashm_kv_close(kv);
        remove_store(path);
}

ASHM_TEST(kv, damaged_header_fails_open_and_repair_keeps_records) {
        char path[128];
        ashm_kv *kv;
        ashm_kv_report rep;
        int64_t v;

        store_path(path, sizeof(path), "header.kv");
        fill(path, 300);
        poke(path, offsetof(struct kv_header, seed), 1);
        cr_assert_eq(ashm_kv_open(path, 0, &kv), -EBADMSG);
        cr_assert(strstr(ashm_kv_error_detail(), "header is damaged"), "%s", ashm_kv_error_detail());
        cr_assert_eq(ashm_kv_check(path, NULL, NULL, &rep), 1);
        cr_assert_eq(rep.header_ok, 0);
        cr_assert_eq(rep.keys, 300);
        cr_assert_eq(ashm_kv_repair(path, NULL, NULL, NULL), 1);
        assert_ok(ashm_kv_open(path, 0, &kv));
        assert_ok(ashm_kv_get_int64(kv, "k299", &v));
        cr_assert_eq(v, 299);
        ashm_kv_close(kv);
        remove_store(path);
}

ASHM_TEST(kv, not_a_store) {
        char path[128];
        ashm_kv *kv;
        int fd;

        store_path(path, sizeof(path), "garbage");
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        cr_assert(fd >= 0);
        cr_assert_eq(ashm_kv_open(path, 0, &kv), -ENODATA); /* empty: nobody made a store yet */
        cr_assert_eq(write(fd, "#!/bin/sh\necho hello\n", 21), 21);
        cr_assert_eq(ashm_kv_open(path, ASHM_KV_CREATE, &kv), -EBADMSG);
        cr_assert(strstr(ashm_kv_error_detail(), "not an ashm KV store"), "%s", ashm_kv_error_detail());
        cr_assert_eq(ashm_kv_check(path, NULL, NULL, NULL), -EBADMSG);
        close(fd);
        unlink(path);

        /* Truncated by someone: refused, not a SIGBUS later. */
        fill(path, 10);
        cr_assert(truncate(path, 5000) == 0);
        cr_assert_eq(ashm_kv_open(path, 0, &kv), -EBADMSG);
        cr_assert(strstr(ashm_kv_error_detail(), "truncated"), "%s", ashm_kv_error_detail());
        remove_store(path);
}

/* The machine went down with writes not synced (simulated: another boot
 * id in the header, dirty set) and a page of the log did not make it. */
ASHM_TEST(kv, power_loss_damage_is_found_at_open) {
        char path[128];
        ashm_kv *kv;
        int64_t v;

        store_path(path, sizeof(path), "power.kv");
        fill(path, 100);
        poke(path, offsetof(struct kv_header, boot_id), 0xff);
        assert_ok(ashm_kv_open(path, 0, &kv)); /* no damage: opens */
        assert_ok(ashm_kv_get_int64(kv, "k9", &v));
        assert_ok(ashm_kv_sync(kv));
        ashm_kv_close(kv);

        poke(path, offsetof(struct kv_header, boot_id), 0xff);
        poke(path, offsetof(struct kv_header, dirty), 1);
        poke(path, record_offset(path, "k50") + 1, 0x10);
        cr_assert_eq(ashm_kv_open(path, 0, &kv), -EUCLEAN);
        cr_assert(strstr(ashm_kv_error_detail(), "repair"), "%s", ashm_kv_error_detail());
        cr_assert_eq(ashm_kv_repair(path, NULL, NULL, NULL), 1);
        assert_ok(ashm_kv_open(path, 0, &kv));
        assert_ok(ashm_kv_get_int64(kv, "k99", &v));
        cr_assert_eq(v, 99);
        ashm_kv_close(kv);
        remove_store(path);
}

ASHM_TEST(kv, always_sync_stores_work) {
        char path[128];
        ashm_kv *kv;
        int64_t v;

        store_path(path, sizeof(path), "sync.kv");
        assert_ok(ashm_kv_open(path, ASHM_KV_CREATE | ASHM_KV_SYNC, &kv));
        for (int i = 0; i < 50; i++)
                assert_ok(ashm_kv_set_int64(kv, "k", i));
        assert_ok(ashm_kv_sync(kv));
        assert_ok(ashm_kv_get_int64(kv, "k", &v));
        cr_assert_eq(v, 49);
        ashm_kv_close(kv);
        remove_store(path);
}

/* ---- hostile peers (issue 8) ----------------------------------------------- */

/* Wait for pid at most secs seconds (polled, no fixed sleep); kill it and
 * fail if it is still running then. Returns what peer_status() does. */
static int peer_status_within(pid_t pid, int secs) {
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        int status;

        for (int i = 0; i < secs * 100; i++) {
                pid_t r = waitpid(pid, &status, WNOHANG);

                cr_assert(r >= 0);
                if (r == pid) {
                        tests_peer_log_take(pid);
                        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                }
                nanosleep(&ts, NULL);
        }
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        tests_peer_log_take(pid);
        cr_assert_fail("peer %d still running after %d s: a writer hangs", (int) pid, secs);
        return -1;
}

/* A peer of another uid (the file is shared with it, mode 0666) that
 * writes random values over the writers' lock, the header's counters
 * and descriptors, and anywhere in the file, while two writers
 * (exec'd) set, get, remove and compact: the writers get errors, and
 * recover the lock, but never crash (the glibc mutex of format 1 let such
 * a peer aim the writers' stores: 555 SIGSEGVs in 12 s) and never hang. */
ASHM_TEST(kv, scribbling_peer_crashes_and_hangs_no_writer) {
        char path[128], dir[128], seed[16];
        pid_t w1, w2, s;
        ashm_kv *kv;

        store_path(path, sizeof(path), "scribbled.kv");
        kv = open_new(path);
        ashm_kv_close(kv);
        snprintf(seed, sizeof(seed), "%u", (unsigned) time(NULL));
        fprintf(stderr, "# scribble seed %s\n", seed);
        /* The scribbler is another user the store's file is shared with. */
        snprintf(dir, sizeof(dir), "%s", path);
        *strrchr(dir, '/') = '\0';
        cr_assert(chmod(dir, 0755) == 0 && chmod(path, 0666) == 0);
        /* A planted live id costs a writer this long before it gives up. */
        setenv("ASHM_KV_LOCK_TIMEOUT_MS", "300", 1);
        w1 = peer(-1, (const char *const[]) { "hammer", path, "3", NULL });
        w2 = peer(-1, (const char *const[]) { "hammer", path, "3", NULL });
        {
                const char *argv[] = { "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                       KV_PEER, "scribble", path, "3", seed, NULL };

                cr_assert_eq(posix_spawnp(&s, argv[0], NULL, NULL, (char *const *) argv, environ), 0);
        }
        cr_expect_eq(peer_status_within(w1, 20), 0, "writer 1 died (status >= 128 is a signal): %s",
                     tests_peer_stderr);
        cr_expect_eq(peer_status_within(w2, 20), 0, "writer 2 died (status >= 128 is a signal): %s",
                     tests_peer_stderr);
        cr_expect_eq(peer_status_within(s, 20), 0, "the scribbler failed");
        remove_store(path);
}

/* A peer writes the id of a live holder into the lock (here: an id this
 * process holds on its own fd, without holding the lock): a writer waits
 * its timeout and fails with a diagnosis, and recovers the lock once that
 * id's holder is gone. */
ASHM_TEST(kv, planted_live_owner_cannot_hang_writers) {
        char path[128];
        struct kv_header *h;
        struct lock_owner o;
        ashm_kv *kv;
        ashm_kv_stats st;
        int fd;

        setenv("ASHM_KV_LOCK_TIMEOUT_MS", "200", 1);
        store_path(path, sizeof(path), "planted.kv");
        kv = open_new(path);
        assert_ok(ashm_kv_set_int64(kv, "a", 1));
        fd = open(path, O_RDWR | O_CLOEXEC);
        cr_assert(fd >= 0);
        h = mmap(NULL, KV_HEADER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        cr_assert(h != MAP_FAILED);
        assert_ok(lock_owner_init(&o, fd));
        __atomic_store_n(&h->lock.l.word, o.id, __ATOMIC_RELEASE);

        assert_fail(ashm_kv_set_int64(kv, "b", 2), ETIMEDOUT);
        cr_expect_not_null(strstr(ashm_kv_error_detail(), "which is alive"), "detail: %s",
                           ashm_kv_error_detail());
        /* Readers take no lock. */
        cr_expect_eq(ashm_kv_contains(kv, "a"), 1);

        lock_owner_done(&o);
        assert_ok(ashm_kv_set_int64(kv, "b", 2));
        assert_ok(ashm_kv_stats_get(kv, &st));
        cr_expect_eq(st.recoveries, 1);

        /* A damaged magic is an error with a way out, not a hang. */
        __atomic_store_n(&h->lock.l.magic, 0xdeadbeef, __ATOMIC_RELEASE);
        assert_fail(ashm_kv_set_int64(kv, "c", 3), EBADMSG);
        ashm_kv_close(kv);
        kv = open_new(path); /* the first writer lays the lock out anew */
        assert_ok(ashm_kv_set_int64(kv, "c", 3));
        ashm_kv_close(kv);
        munmap(h, KV_HEADER_SIZE);
        close(fd);
        remove_store(path);
}

/* A store of format 1 (a glibc mutex in the header) is read as it is and
 * migrated by its first writer. */
ASHM_TEST(kv, format1_store_is_migrated) {
        char path[128];
        struct kv_header *h;
        ashm_kv *kv;
        ashm_kv_stats st;
        int64_t v;
        int fd;

        store_path(path, sizeof(path), "v1.kv");
        kv = open_new(path);
        assert_ok(ashm_kv_set_int64(kv, "old", 42));
        ashm_kv_close(kv);
        fd = open(path, O_RDWR | O_CLOEXEC);
        h = mmap(NULL, KV_HEADER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        cr_assert(h != MAP_FAILED);
        h->version = 1;
        memset(&h->lock, 0x5a, sizeof(h->lock)); /* what a glibc mutex left */
        h->static_crc = kv_header_crc(h);

        assert_ok(ashm_kv_open(path, ASHM_KV_RDONLY, &kv));
        assert_ok(ashm_kv_get_int64(kv, "old", &v));
        cr_expect_eq(v, 42);
        ashm_kv_close(kv);
        cr_expect_eq(h->version, 1, "a reader changes nothing");

        kv = open_new(path);
        cr_expect_eq(h->version, KV_VERSION);
        assert_ok(ashm_kv_set_int64(kv, "new", 43));
        assert_ok(ashm_kv_stats_get(kv, &st));
        cr_expect_eq(st.version, KV_VERSION);
        ashm_kv_close(kv);
        munmap(h, KV_HEADER_SIZE);
        close(fd);
        remove_store(path);
}

/* A peer of another uid holding the region's fd cannot truncate a store
 * out from under the others (SIGBUS in every process that has it mapped): the region
 * is sealed against shrinking when a writer opens the store. */
ASHM_TEST(kv, region_store_cannot_be_truncated) {
        ashm_region *region;
        ashm_kv *kv;
        int fds[2], fd, seals;
        char out[64] = "", arg[16];
        pid_t pid;
        ssize_t n;
        int64_t v;
        posix_spawn_file_actions_t fa;
        /* The attacker is another user holding the region's fd. */
        const char *argv[] = { "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                               KV_PEER, "truncate", arg, NULL };

        assert_ok(ashm_region_create("kv-truncate", 64 << 20, 0, &region));
        assert_ok(ashm_kv_open_region(region, ASHM_KV_CREATE, &kv));
        assert_ok(ashm_kv_set_int64(kv, "k", 7));
        fd = ashm_region_fd(region);
        seals = fcntl(fd, F_GET_SEALS);
        cr_expect(seals >= 0 && (seals & F_SEAL_SHRINK), "seals %#x", seals);

        cr_assert(pipe2(fds, O_CLOEXEC) == 0);
        snprintf(arg, sizeof(arg), "fd:%d", fd);
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, fd, fd);
        posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
        cr_assert_eq(posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *) argv, environ), 0);
        posix_spawn_file_actions_destroy(&fa);
        close(fds[1]);
        n = read(fds[0], out, sizeof(out) - 1);
        close(fds[0]);
        cr_assert_eq(peer_status_within(pid, 30), 0);
        out[n > 0 ? n : 0] = '\0';
        cr_expect_str_eq(out, "EPERM EPERM\n");

        assert_ok(ashm_kv_get_int64(kv, "k", &v));
        cr_expect_eq(v, 7);
        ashm_kv_close(kv);
        ashm_region_close(region);
}

/* A region sealed against growing holds a store of its size: a write that
 * needs more fails with -ENOSPC and a detail, and the store stays usable
 * (reads, clear). */
ASHM_TEST(kv, region_sealed_against_growth_has_a_fixed_size) {
        ashm_region *region;
        ashm_kv *kv;
        char key[32], val[1000];
        int r = 0, i;

        assert_ok(ashm_region_create("kv-small", 8 << 10, 0, &region));
        cr_assert(fcntl(ashm_region_fd(region), F_ADD_SEALS, F_SEAL_GROW) == 0);
        assert_fail(ashm_kv_open_region(region, ASHM_KV_CREATE, &kv), ENOSPC);
        cr_expect_not_null(strstr(ashm_kv_error_detail(), "create it larger"), "%s", ashm_kv_error_detail());
        ashm_region_close(region);

        assert_ok(ashm_region_create("kv-fixed", 1 << 20, 0, &region));
        cr_assert(fcntl(ashm_region_fd(region), F_ADD_SEALS, F_SEAL_GROW) == 0);
        assert_ok(ashm_kv_open_region(region, ASHM_KV_CREATE, &kv));
        memset(val, 'x', sizeof(val) - 1);
        val[sizeof(val) - 1] = '\0';
        for (i = 0; i < 10000 && r == 0; i++) {
                snprintf(key, sizeof(key), "k%d", i);
                r = ashm_kv_set_string(kv, key, val);
        }
        cr_expect_eq(r, -ENOSPC, "set returned %d (%s) after %d keys", r, errname(r), i);
        cr_expect(i > 100, "only %d keys fit in 1 MiB", i);
        cr_expect_eq(ashm_kv_contains(kv, "k0"), 1);
        /* A removal is a record too; clearing needs no room. */
        assert_ok(ashm_kv_clear(kv));
        assert_ok(ashm_kv_set_string(kv, "k0", val));
        ashm_kv_close(kv);
        ashm_region_close(region);
}
