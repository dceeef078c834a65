/* SPDX-License-Identifier: MIT */
/* bench-kv: the ashm key-value store against MMKV v1.3.3, LMDB and SQLite
 * (issue 5, item 6; docs/kv.md; MMKV facts in docs/mmkv.md).
 *
 * Workloads, N keys (--iters, default 100000) named k0..k(N-1):
 *  set int32    a new store; k<i> = i, one set per key
 *  set string   the same store; k<i> = a 100-byte string (8 digits of i,
 *               then 'v's), so each key changes value and type and the
 *               store still holds N keys
 *  get string   the same store; N gets in a shuffled order (Fisher-Yates,
 *               fixed seed, the same order for every peer), each value
 *               copied out and checked
 *  open         the same store; in a new process, the time from before
 *               the open to after one get (of k<N/2>), both timed in
 *               that process. The page cache is warm: the file was just
 *               written.
 *  file size    of the store's files after set int32 + set string:
 *               apparent (st_size) and allocated (st_blocks) bytes,
 *               summed over every file the peer keeps (MMKV: data +
 *               .crc; LMDB: data.mdb + lock.mdb; SQLite: the database,
 *               plus -wal/-shm if left behind)
 *  2 processes  a new, empty store; two writer processes, pinned to two
 *               different CPUs, open it, then on a signal write k0..
 *               k(N/2-1) and k(N/2)..k(N-1) = i as int32. Timed from the
 *               signal until both say they are done (or have died). Then
 *               a fresh process opens the store again and checks every
 *               key: keys missing or holding another value are LOSSES,
 *               printed per round, with the writers that crashed or
 *               failed (a result here, not an error of the benchmark).
 * Each workload runs in a fresh process (forked; MMKV's exec'd); the open
 * and close around the timed loop are not timed, except in "open".
 *
 * Peers, every one in every round, in an order rotated by one peer per
 * round so that noise lands on all alike:
 *  ashm          ashm_kv_* on a file, the default (and only) mode
 *  mmkv-single   MMKV_SINGLE_PROCESS, MMKV's default: no inter-process
 *                locks, so the 2-process run loses writes
 *  mmkv-multi    MMKV_MULTI_PROCESS: flock() per operation, reloads
 *  lmdb-op       one write transaction per set (MDB_NOSYNC: a commit
 *                does not fsync, as no other peer here syncs per op);
 *                one read transaction (reset/renew) per get
 *  lmdb-batch    one transaction for the whole loop
 *  sqlite-op     WAL, synchronous=NORMAL, a prepared statement, autocommit
 *                (one transaction) per op; table (k TEXT PRIMARY KEY, v)
 *                WITHOUT ROWID; busy_timeout 60 s for the 2-process run
 *  sqlite-batch  the same inside one BEGIN IMMEDIATE ... COMMIT (BEGIN for
 *                reads)
 * MMKV runs in bench-kv-mmkv (a C++ program linked with MMKV's static
 * library, built by scripts/bench.sh into this build's bench/), given by
 * --mmkv PATH or $BENCH_KV_MMKV, else the one in this build; without it,
 * or if it fails its probe, the MMKV peers are skipped and the reason
 * printed, and no ratio to MMKV is shown.
 *
 * Results: medians over the rounds (min and p90 beside), ratios of
 * medians to mmkv-single and to mmkv-multi. Targets (issue 5): ashm's time
 * per set and get <= 0.5x MMKV's (judged against each mode), open <= 1 ms,
 * the 2-process run >= 3x faster than mmkv-multi's with no loss.
 *
 * Flags: --rounds N (default 5), --iters N (keys, default 100000),
 * --warmup W (untimed rounds first, default 0), --quick (5 rounds of 200
 * keys: a smoke run), --strict (exit 1 when a target is missed or ashm
 * lost a key), --mmkv PATH, --peers NAME,NAME... (run only those). Store
 * files live in a mkdtemp() directory under $TMPDIR or /tmp, fresh for
 * each round and removed at the end. */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lmdb.h>
#include <sqlite3.h>

#include "ashm.h"
#include "bench.h"

/* Where scripts/bench.sh puts the MMKV driver in this build. */
#ifndef BENCH_KV_MMKV
#define BENCH_KV_MMKV NULL
#endif

#define VALUE_LEN 100
#define KEY_SIZE 16
#define ORDER_SEED UINT64_C(0x6b762d62656e6368) /* "kv-bench" */
#define LMDB_MAP_SIZE ((size_t) 1 << 30)

#define TARGET_OP_RATIO 0.5   /* ashm / MMKV, per set and get */
#define TARGET_OPEN_NS 1e6    /* 1 ms */
#define TARGET_MP_SPEEDUP 3.0 /* mmkv-multi / ashm, 2 processes */

/* ---- the C peers behind one interface -------------------------------- */

/* What the get functions return besides 0 (found) and -1 (error, in
 * s->err). */
enum { GET_MISSING = 1, GET_WRONG_TYPE = 2 };

struct store;

struct store_ops {
        int (*open)(struct store *s, const char *dir, bool create);
        void (*close)(struct store *s);
        /* NULL when the peer has no transactions */
        int (*begin)(struct store *s, bool write);
        int (*commit)(struct store *s);
        int (*set_int32)(struct store *s, const char *key, int32_t value);
        int (*set_string)(struct store *s, const char *key, const char *value);
        int (*get_string)(struct store *s, const char *key, char *buf, size_t size, size_t *ret_len);
        int (*get_int32)(struct store *s, const char *key, int32_t *ret_value);
};

struct store {
        const struct store_ops *ops;
        char err[160];
        ashm_kv *kv;
        MDB_env *env;
        MDB_dbi dbi;
        MDB_txn *txn;  /* the batch transaction, or NULL */
        MDB_txn *rtxn; /* lmdb-op: the read transaction, reset between gets */
        sqlite3 *db;
        sqlite3_stmt *set, *get;
};

static int store_fail(struct store *s, const char *what, const char *why) {
        snprintf(s->err, sizeof(s->err), "%s: %s", what, why);
        return -1;
}

/* ashm */

static int ashm_open(struct store *s, const char *dir, bool create) {
        char path[PATH_MAX];
        int r;

        snprintf(path, sizeof(path), "%s/kv.ashm", dir);
        r = ashm_kv_open(path, create ? ASHM_KV_CREATE : 0, &s->kv);
        return r < 0 ? store_fail(s, "ashm_kv_open", strerror(-r)) : 0;
}

static void ashm_close(struct store *s) {
        ashm_kv_close(s->kv);
}

static int ashm_set_int32(struct store *s, const char *key, int32_t value) {
        int r = ashm_kv_set_int32(s->kv, key, value);

        return r < 0 ? store_fail(s, "ashm_kv_set_int32", strerror(-r)) : 0;
}

static int ashm_set_string(struct store *s, const char *key, const char *value) {
        int r = ashm_kv_set_string(s->kv, key, value);

        return r < 0 ? store_fail(s, "ashm_kv_set_string", strerror(-r)) : 0;
}

static int ashm_get_result(struct store *s, const char *what, int r) {
        if (r == -ENOENT)
                return GET_MISSING;
        if (r == -EPROTOTYPE)
                return GET_WRONG_TYPE;
        return r < 0 ? store_fail(s, what, strerror(-r)) : 0;
}

static int ashm_get_string(struct store *s, const char *key, char *buf, size_t size, size_t *ret_len) {
        return ashm_get_result(s, "ashm_kv_get_string", ashm_kv_get_string(s->kv, key, buf, size, ret_len));
}

static int ashm_get_int32(struct store *s, const char *key, int32_t *ret_value) {
        return ashm_get_result(s, "ashm_kv_get_int32", ashm_kv_get_int32(s->kv, key, ret_value));
}

static const struct store_ops ashm_ops = {
        .open = ashm_open,
        .close = ashm_close,
        .set_int32 = ashm_set_int32,
        .set_string = ashm_set_string,
        .get_string = ashm_get_string,
        .get_int32 = ashm_get_int32,
};

/* LMDB */

static int lmdb_fail(struct store *s, const char *what, int r) {
        return store_fail(s, what, mdb_strerror(r));
}

/* mdb_env_open() makes data.mdb in dir if it is not there: LMDB has no
 * "open existing only", so create is not needed. */
static int lmdb_open(struct store *s, const char *dir, bool create) {
        MDB_txn *txn;
        int r;

        if ((r = mdb_env_create(&s->env)) || (r = mdb_env_set_mapsize(s->env, LMDB_MAP_SIZE)) ||
            (r = mdb_env_open(s->env, dir, MDB_NOSYNC, 0600)))
                return lmdb_fail(s, "mdb_env_open", r);
        if ((r = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)))
                return lmdb_fail(s, "mdb_txn_begin", r);
        if ((r = mdb_dbi_open(txn, NULL, 0, &s->dbi)) || (r = mdb_txn_commit(txn)))
                return lmdb_fail(s, "mdb_dbi_open", r);
        return 0;
}

static void lmdb_close(struct store *s) {
        if (s->rtxn)
                mdb_txn_abort(s->rtxn);
        if (s->env)
                mdb_env_close(s->env);
}

static int lmdb_begin(struct store *s, bool write) {
        int r = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, &s->txn);

        return r ? lmdb_fail(s, "mdb_txn_begin", r) : 0;
}

static int lmdb_commit(struct store *s) {
        int r = mdb_txn_commit(s->txn);

        s->txn = NULL;
        return r ? lmdb_fail(s, "mdb_txn_commit", r) : 0;
}

static int lmdb_put(struct store *s, const char *key, const void *value, size_t len) {
        MDB_val k = { strlen(key), (void *) key }, v = { len, (void *) value };
        MDB_txn *txn = s->txn;
        int r;

        if (!txn && (r = mdb_txn_begin(s->env, NULL, 0, &txn)))
                return lmdb_fail(s, "mdb_txn_begin", r);
        if ((r = mdb_put(txn, s->dbi, &k, &v, 0))) {
                if (!s->txn)
                        mdb_txn_abort(txn);
                return lmdb_fail(s, "mdb_put", r);
        }
        if (!s->txn && (r = mdb_txn_commit(txn)))
                return lmdb_fail(s, "mdb_txn_commit", r);
        return 0;
}

static int lmdb_set_int32(struct store *s, const char *key, int32_t value) {
        return lmdb_put(s, key, &value, sizeof(value));
}

static int lmdb_set_string(struct store *s, const char *key, const char *value) {
        return lmdb_put(s, key, value, strlen(value));
}

/* The value of key, in the batch transaction or in a read transaction of
 * its own; *ret_v is valid until the next lmdb_get(). */
static int lmdb_get(struct store *s, const char *key, MDB_val *ret_v) {
        MDB_val k = { strlen(key), (void *) key };
        MDB_txn *txn = s->txn;
        int r;

        if (!txn) {
                if (s->rtxn) {
                        mdb_txn_reset(s->rtxn);
                        r = mdb_txn_renew(s->rtxn);
                } else
                        r = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &s->rtxn);
                if (r)
                        return lmdb_fail(s, "mdb_txn_begin(RDONLY)", r);
                txn = s->rtxn;
        }
        r = mdb_get(txn, s->dbi, &k, ret_v);
        if (r == MDB_NOTFOUND)
                return GET_MISSING;
        return r ? lmdb_fail(s, "mdb_get", r) : 0;
}

static int lmdb_get_string(struct store *s, const char *key, char *buf, size_t size, size_t *ret_len) {
        MDB_val v;
        int r = lmdb_get(s, key, &v);

        if (r)
                return r;
        memcpy(buf, v.mv_data, v.mv_size < size ? v.mv_size : size - 1);
        buf[v.mv_size < size ? v.mv_size : size - 1] = 0;
        *ret_len = v.mv_size;
        return 0;
}

static int lmdb_get_int32(struct store *s, const char *key, int32_t *ret_value) {
        MDB_val v;
        int r = lmdb_get(s, key, &v);

        if (r)
                return r;
        if (v.mv_size != sizeof(*ret_value))
                return GET_WRONG_TYPE;
        memcpy(ret_value, v.mv_data, sizeof(*ret_value));
        return 0;
}

static const struct store_ops lmdb_ops = {
        .open = lmdb_open,
        .close = lmdb_close,
        .begin = lmdb_begin,
        .commit = lmdb_commit,
        .set_int32 = lmdb_set_int32,
        .set_string = lmdb_set_string,
        .get_string = lmdb_get_string,
        .get_int32 = lmdb_get_int32,
};

/* SQLite */

static int sqlite_fail(struct store *s, const char *what) {
        return store_fail(s, what, s->db ? sqlite3_errmsg(s->db) : "out of memory");
}

static int sqlite_open(struct store *s, const char *dir, bool create) {
        char path[PATH_MAX];
        int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);

        snprintf(path, sizeof(path), "%s/kv.sqlite", dir);
        if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK)
                return sqlite_fail(s, "sqlite3_open_v2");
        sqlite3_busy_timeout(s->db, 60000);
        if (sqlite3_exec(s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL", NULL, NULL, NULL))
                return sqlite_fail(s, "PRAGMA");
        if (create && sqlite3_exec(s->db, "CREATE TABLE IF NOT EXISTS kv(k TEXT PRIMARY KEY NOT NULL, v) WITHOUT ROWID",
                                   NULL, NULL, NULL))
                return sqlite_fail(s, "CREATE TABLE");
        if (sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO kv(k, v) VALUES(?1, ?2)", -1, &s->set, NULL) ||
            sqlite3_prepare_v2(s->db, "SELECT v FROM kv WHERE k = ?1", -1, &s->get, NULL))
                return sqlite_fail(s, "sqlite3_prepare_v2");
        return 0;
}

static void sqlite_close(struct store *s) {
        sqlite3_finalize(s->set);
        sqlite3_finalize(s->get);
        sqlite3_close(s->db);
}

static int sqlite_begin(struct store *s, bool write) {
        return sqlite3_exec(s->db, write ? "BEGIN IMMEDIATE" : "BEGIN", NULL, NULL, NULL) ? sqlite_fail(s, "BEGIN") : 0;
}

static int sqlite_commit(struct store *s) {
        return sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) ? sqlite_fail(s, "COMMIT") : 0;
}

/* Run the bound set statement. */
static int sqlite_step_set(struct store *s) {
        int r = sqlite3_step(s->set);

        sqlite3_reset(s->set);
        return r == SQLITE_DONE ? 0 : sqlite_fail(s, "INSERT");
}

static int sqlite_set_int32(struct store *s, const char *key, int32_t value) {
        sqlite3_bind_text(s->set, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_int(s->set, 2, value);
        return sqlite_step_set(s);
}

static int sqlite_set_string(struct store *s, const char *key, const char *value) {
        sqlite3_bind_text(s->set, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(s->set, 2, value, -1, SQLITE_STATIC);
        return sqlite_step_set(s);
}

/* Step the get statement for key: 0 with a row of type want, or
 * GET_MISSING, GET_WRONG_TYPE, -1; the caller resets it. */
static int sqlite_step_get(struct store *s, const char *key, int want) {
        int r;

        sqlite3_bind_text(s->get, 1, key, -1, SQLITE_STATIC);
        r = sqlite3_step(s->get);
        if (r == SQLITE_DONE)
                return GET_MISSING;
        if (r != SQLITE_ROW)
                return sqlite_fail(s, "SELECT");
        return sqlite3_column_type(s->get, 0) == want ? 0 : GET_WRONG_TYPE;
}

static int sqlite_get_string(struct store *s, const char *key, char *buf, size_t size, size_t *ret_len) {
        int r = sqlite_step_get(s, key, SQLITE_TEXT);

        if (r == 0) {
                const unsigned char *text = sqlite3_column_text(s->get, 0);
                size_t len = (size_t) sqlite3_column_bytes(s->get, 0);

                memcpy(buf, text, len < size ? len : size - 1);
                buf[len < size ? len : size - 1] = 0;
                *ret_len = len;
        }
        sqlite3_reset(s->get);
        return r;
}

static int sqlite_get_int32(struct store *s, const char *key, int32_t *ret_value) {
        int r = sqlite_step_get(s, key, SQLITE_INTEGER);

        if (r == 0)
                *ret_value = sqlite3_column_int(s->get, 0);
        sqlite3_reset(s->get);
        return r;
}

static const struct store_ops sqlite_ops = {
        .open = sqlite_open,
        .close = sqlite_close,
        .begin = sqlite_begin,
        .commit = sqlite_commit,
        .set_int32 = sqlite_set_int32,
        .set_string = sqlite_set_string,
        .get_string = sqlite_get_string,
        .get_int32 = sqlite_get_int32,
};

/* ---- peers, workloads, results ---------------------------------------- */

enum workload { W_CREATE, W_SET_INT32, W_SET_STRING, W_GET_STRING, W_OPEN, W_MP_WRITE, W_VERIFY };

static const char *const workload_names[] = {
        [W_CREATE] = "create",         [W_SET_INT32] = "set-int32", [W_SET_STRING] = "set-string",
        [W_GET_STRING] = "get-string", [W_OPEN] = "open",           [W_MP_WRITE] = "mp-write",
        [W_VERIFY] = "verify",
};

/* What is recorded per peer and round. */
enum metric {
        M_SET_INT32,
        M_SET_STRING,
        M_GET_STRING,
        M_OPEN,
        M_SIZE,
        M_ALLOCATED,
        M_MP,
        M_MISSING, /* 2-process: keys not there afterwards */
        M_WRONG,   /* 2-process: keys with another value or type */
        M_FAILED,  /* 2-process: writers that crashed or gave up */
        M_COUNT,
};

struct peer {
        const char *name;
        const struct store_ops *ops; /* NULL: MMKV, in the driver */
        bool batch;
        const char *mmkv_mode; /* the driver's "single" or "multi" */
        bool enabled;
        double *m[M_COUNT];     /* one sample per round */
        char writer_error[200]; /* how the last failed 2-process writer ended */
};

static struct peer peers[] = {
        { .name = "ashm", .ops = &ashm_ops },
        { .name = "mmkv-single", .mmkv_mode = "single" },
        { .name = "mmkv-multi", .mmkv_mode = "multi" },
        { .name = "lmdb-op", .ops = &lmdb_ops },
        { .name = "lmdb-batch", .ops = &lmdb_ops, .batch = true },
        { .name = "sqlite-op", .ops = &sqlite_ops },
        { .name = "sqlite-batch", .ops = &sqlite_ops, .batch = true },
};

/* One workload for one process to run. */
struct job {
        enum workload w;
        const char *dir;
        unsigned first, count; /* keys k<first>.. */
        int go_fd;             /* mp-write: start when a byte arrives here */
        int cpu;               /* pin the process there; -1: do not */
};

static unsigned n_keys;
static char (*keys)[KEY_SIZE];
static uint32_t *order;   /* the shuffled get order */
static char tmp_dir[256]; /* short, so that every path under it fits */
static char order_path[PATH_MAX];
static const char *mmkv_driver;
static pid_t main_pid;

static uint64_t splitmix64(uint64_t *state) {
        uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));

        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

/* The 100-byte value of key i: 8 decimal digits of i, then 'v's (the
 * driver's fill_value() writes the same bytes). */
static void fill_value(char *v, unsigned i) {
        for (int d = 7; d >= 0; d--, i /= 10)
                v[d] = (char) ('0' + i % 10);
}

static void make_inputs(void) {
        uint64_t state = ORDER_SEED;
        FILE *f;

        keys = calloc(n_keys, KEY_SIZE);
        order = calloc(n_keys, sizeof(*order));
        if (!keys || !order)
                bench_die("calloc", ENOMEM);
        for (unsigned i = 0; i < n_keys; i++) {
                snprintf(keys[i], KEY_SIZE, "k%u", i);
                order[i] = i;
        }
        for (unsigned i = n_keys - 1; i > 0; i--) {
                unsigned j = (unsigned) (splitmix64(&state) % (i + 1));
                uint32_t t = order[i];

                order[i] = order[j];
                order[j] = t;
        }
        snprintf(order_path, sizeof(order_path), "%s/order", tmp_dir);
        f = fopen(order_path, "wbe");
        if (!f || fwrite(order, sizeof(*order), n_keys, f) != n_keys || fclose(f) != 0)
                bench_die("writing the order file", errno);
}

/* ---- the C workloads, in the child process ---------------------------- */

static int c_begin(struct store *s, bool write) {
        return s->ops->begin ? s->ops->begin(s, write) : 0;
}

static int c_commit(struct store *s) {
        return s->ops->begin ? s->ops->commit(s) : 0;
}

static int c_set_int32(struct store *s, bool batch, unsigned first, unsigned count) {
        int r = batch ? c_begin(s, true) : 0;

        for (unsigned i = first; r == 0 && i < first + count; i++)
                r = s->ops->set_int32(s, keys[i], (int32_t) i);
        return r == 0 && batch ? c_commit(s) : r;
}

static int c_set_string(struct store *s, bool batch) {
        char value[VALUE_LEN + 1];
        int r = batch ? c_begin(s, true) : 0;

        memset(value, 'v', VALUE_LEN);
        value[VALUE_LEN] = 0;
        for (unsigned i = 0; r == 0 && i < n_keys; i++) {
                fill_value(value, i);
                r = s->ops->set_string(s, keys[i], value);
        }
        return r == 0 && batch ? c_commit(s) : r;
}

/* Get key i's string and check it: 0, 1 wrong or missing, -1 error. */
static int c_get_check(struct store *s, unsigned i) {
        char buf[VALUE_LEN + 28], want[8];
        size_t len = 0;
        int r = s->ops->get_string(s, keys[i], buf, sizeof(buf), &len);

        if (r < 0)
                return r;
        fill_value(want, i);
        return r != 0 || len != VALUE_LEN || memcmp(buf, want, sizeof(want)) != 0;
}

static int c_get_string(struct store *s, bool batch, unsigned *ret_bad) {
        int r = batch ? c_begin(s, false) : 0;

        for (unsigned i = 0; r >= 0 && i < n_keys; i++) {
                r = c_get_check(s, order[i]);
                *ret_bad += r > 0;
        }
        if (r < 0)
                return r;
        return batch ? c_commit(s) : 0;
}

static int c_verify(struct store *s) {
        unsigned missing = 0, wrong = 0;
        int32_t v;

        for (unsigned i = 0; i < n_keys; i++) {
                int r = s->ops->get_int32(s, keys[i], &v);

                if (r < 0)
                        return r;
                missing += r == GET_MISSING;
                wrong += r == GET_WRONG_TYPE || (r == 0 && v != (int32_t) i);
        }
        printf("missing=%u wrong=%u\n", missing, wrong);
        return 0;
}

static int c_mp_write(struct store *s, const struct peer *p, const struct job *j) {
        char c;

        printf("ready\n");
        fflush(stdout);
        if (read(j->go_fd, &c, 1) != 1)
                return store_fail(s, "go pipe", "closed");
        if (c_set_int32(s, p->batch, j->first, j->count) < 0)
                return -1;
        printf("done\n");
        fflush(stdout); /* before the close: it is not timed */
        return 0;
}

/* The timed open + one get of the open workload. */
static int c_open(struct store *s, const char *dir) {
        uint64_t t0 = bench_now_ns(), t1;
        int r = s->ops->open(s, dir, false);

        if (r == 0)
                r = c_get_check(s, n_keys / 2);
        t1 = bench_now_ns();
        if (r >= 0)
                printf("ns=%" PRIu64 " bad=%d\n", t1 - t0, r);
        return r;
}

static int c_run(struct store *s, const struct peer *p, const struct job *j) {
        uint64_t t0;
        unsigned bad = 0;
        int r;

        if (j->w == W_OPEN)
                return c_open(s, j->dir);
        if ((r = s->ops->open(s, j->dir, j->w == W_CREATE || j->w == W_SET_INT32)) < 0)
                return r;
        t0 = bench_now_ns();
        switch (j->w) {
        case W_SET_INT32:
                r = c_set_int32(s, p->batch, 0, n_keys);
                break;
        case W_SET_STRING:
                r = c_set_string(s, p->batch);
                break;
        case W_GET_STRING:
                r = c_get_string(s, p->batch, &bad);
                break;
        case W_MP_WRITE:
                return c_mp_write(s, p, j);
        case W_VERIFY:
                return c_verify(s);
        default:
                printf("ok\n");
                return 0;
        }
        if (r == 0)
                printf("ns=%" PRIu64 " bad=%u\n", bench_now_ns() - t0, bad);
        return r;
}

/* The child's body for a C peer: output on stdout, status 0 or 1. */
static int c_child(const struct peer *p, const struct job *j) {
        struct store s = { .ops = p->ops };
        int r = c_run(&s, p, j);

        if (r < 0)
                printf("error=%s\n", s.err);
        if (s.kv || s.env || s.db)
                p->ops->close(&s);
        fflush(stdout);
        return r < 0;
}

/* ---- processes ---------------------------------------------------------- */

struct child {
        const struct peer *peer;
        enum workload w;
        pid_t pid;
        int fd;         /* its stdout */
        char out[1024]; /* what it printed so far */
        size_t len;
};

static void mmkv_exec(const struct peer *p, const struct job *j) {
        char a[3][16];
        char *argv[8] = {(char *) mmkv_driver, (char *) p->mmkv_mode, (char *) j->dir, (char *) workload_names[j->w]};

        switch (j->w) {
        case W_SET_INT32:
        case W_SET_STRING:
        case W_VERIFY:
                snprintf(a[0], sizeof(a[0]), "%u", n_keys);
                argv[4] = a[0];
                break;
        case W_GET_STRING:
                snprintf(a[0], sizeof(a[0]), "%u", n_keys);
                argv[4] = a[0];
                argv[5] = order_path;
                break;
        case W_OPEN:
                argv[4] = keys[n_keys / 2];
                break;
        case W_MP_WRITE:
                snprintf(a[0], sizeof(a[0]), "%u", j->first);
                snprintf(a[1], sizeof(a[1]), "%u", j->count);
                snprintf(a[2], sizeof(a[2]), "%d", j->go_fd);
                argv[4] = a[0], argv[5] = a[1], argv[6] = a[2];
                fcntl(j->go_fd, F_SETFD, 0);
                break;
        case W_CREATE:
                break;
        }
        execv(mmkv_driver, argv);
        printf("error=exec %s: %s\n", mmkv_driver, strerror(errno));
        fflush(stdout);
        _exit(127);
}

/* Start the process that runs j for p; its stdout is c->fd. */
static void child_start(struct child *c, const struct peer *p, const struct job *j) {
        int pfd[2];

        *c = (struct child){.peer = p, .w = j->w};
        if (pipe2(pfd, O_CLOEXEC) < 0)
                bench_die("pipe2", errno);
        fflush(stdout);
        c->pid = fork();
        if (c->pid < 0)
                bench_die("fork", errno);
        if (c->pid == 0) {
                if (dup2(pfd[1], STDOUT_FILENO) < 0)
                        _exit(127);
                if (j->cpu >= 0)
                        bench_pin_to(j->cpu);
                if (!p->ops)
                        mmkv_exec(p, j);
                _exit(c_child(p, j));
        }
        close(pfd[1]);
        c->fd = pfd[0];
}

/* Read the child's output until it holds word (true) or ends (false). */
static bool child_read_until(struct child *c, const char *word) {
        while (!strstr(c->out, word)) {
                ssize_t n = read(c->fd, c->out + c->len, sizeof(c->out) - 1 - c->len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        bench_die("read", errno);
                if (n == 0)
                        return false;
                c->len += (size_t) n;
                c->out[c->len] = 0;
        }
        return true;
}

/* Read the rest of the output and reap the child: true if it ended
 * well, else false and why in buf. */
static bool child_reap(struct child *c, char *buf, size_t size) {
        const char *error;
        int status;

        (void) child_read_until(c, "\1"); /* to the end */
        close(c->fd);
        while (waitpid(c->pid, &status, 0) < 0)
                if (errno != EINTR)
                        bench_die("waitpid", errno);
        error = strstr(c->out, "error=");
        if (WIFSIGNALED(status))
                snprintf(buf, size, "killed by SIG%s", sigabbrev_np(WTERMSIG(status)));
        else if (WEXITSTATUS(status) != 0 || error)
                snprintf(buf, size, "exit status %d: %.*s", WEXITSTATUS(status), error ? (int) strcspn(error, "\n") : 0,
                         error ? error : "");
        else
                return true;
        return false;
}

/* Read the rest of the output, reap the child, die if it failed. */
static void child_finish(struct child *c) {
        char why[256];

        if (!child_reap(c, why, sizeof(why))) {
                fprintf(stderr, "bench-kv: %s %s failed: %s\n", c->peer->name, workload_names[c->w], why);
                exit(2);
        }
}

/* The number after "name=" in the child's output. */
static uint64_t child_field(const struct child *c, const char *name) {
        char pat[32];
        const char *at;

        snprintf(pat, sizeof(pat), "%s=", name);
        at = strstr(c->out, pat);
        if (!at) {
                fprintf(stderr, "bench-kv: %s %s printed no %s: %s\n", c->peer->name, workload_names[c->w], name,
                        c->out);
                exit(2);
        }
        return strtoull(at + strlen(pat), NULL, 10);
}

/* Run j for p in a fresh process and wait for it. */
static void run_job(struct child *c, const struct peer *p, enum workload w, const char *dir) {
        struct job j = { .w = w, .dir = dir, .go_fd = -1, .cpu = -1 };

        child_start(c, p, &j);
        child_finish(c);
        if ((w == W_GET_STRING || w == W_OPEN) && child_field(c, "bad") != 0) {
                fprintf(stderr, "bench-kv: %s %s read wrong values: %s\n", p->name, workload_names[w], c->out);
                exit(2);
        }
}

/* Run workload w for p; its time in ns. */
static double run_timed(const struct peer *p, enum workload w, const char *dir) {
        struct child c;

        run_job(&c, p, w, dir);
        return (double) child_field(&c, "ns");
}

/* ---- the round --------------------------------------------------------- */

static void make_dir(char *buf, size_t size, const struct peer *p, const char *suffix) {
        static unsigned serial;

        snprintf(buf, size, "%s/%u-%s%s", tmp_dir, serial++, p->name, suffix);
        if (mkdir(buf, 0700) < 0)
                bench_die("mkdir", errno);
}

/* Sum of st_size and of allocated bytes over the files in dir. */
static void dir_size(const char *dir, double *ret_size, double *ret_allocated) {
        DIR *d = opendir(dir);
        struct dirent *e;
        struct stat st;
        uint64_t size = 0, allocated = 0;

        if (!d)
                bench_die("opendir", errno);
        while ((e = readdir(d)))
                if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
                        size += (uint64_t) st.st_size;
                        allocated += (uint64_t) st.st_blocks * 512;
                }
        closedir(d);
        *ret_size = (double) size;
        *ret_allocated = (double) allocated;
}

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        (void) st, (void) type, (void) ftw;
        return remove(path) < 0 ? -1 : 0;
}

static void rm_tree(const char *path) {
        if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
                fprintf(stderr, "bench-kv: could not remove %s: %s\n", path, strerror(errno));
}

static void cleanup(void) {
        if (getpid() == main_pid && tmp_dir[0])
                rm_tree(tmp_dir);
}

/* The 2-process workload: its time in ns (until both writers are done,
 * or have died), the losses and the writers that failed (a crash is a
 * result, not an error of the benchmark). */
static void run_mp(struct peer *p, const char *dir, double *ret_ns, double *ret_missing, double *ret_wrong,
                   double *ret_failed) {
        struct child c[2], v;
        int go[2], cpus[2];
        uint64_t t0, t1;

        run_job(&v, p, W_CREATE, dir);
        bench_pick_cpus(cpus);
        if (pipe2(go, O_CLOEXEC) < 0)
                bench_die("pipe2", errno);
        for (int i = 0; i < 2; i++) {
                struct job j = { .w = W_MP_WRITE, .dir = dir, .go_fd = go[0], .cpu = cpus[i] };

                j.first = i ? n_keys / 2 : 0;
                j.count = i ? n_keys - n_keys / 2 : n_keys / 2;
                child_start(&c[i], p, &j);
        }
        close(go[0]);
        for (int i = 0; i < 2; i++)
                if (!child_read_until(&c[i], "ready\n"))
                        child_finish(&c[i]); /* dies, saying why */
        t0 = bench_now_ns();
        if (write(go[1], "gg", 2) != 2)
                bench_die("write(go)", errno);
        for (int i = 0; i < 2; i++)
                (void) child_read_until(&c[i], "done\n");
        t1 = bench_now_ns();
        close(go[1]);
        *ret_failed = 0;
        for (int i = 0; i < 2; i++)
                if (!child_reap(&c[i], p->writer_error, sizeof(p->writer_error)))
                        (*ret_failed)++;
        run_job(&v, p, W_VERIFY, dir);
        *ret_ns = (double) (t1 - t0);
        *ret_missing = (double) child_field(&v, "missing");
        *ret_wrong = (double) child_field(&v, "wrong");
}

/* Every workload for peer p in round r (r < 0: a warm-up round, kept
 * nowhere). */
static void run_peer_round(struct peer *p, int r) {
        char dir[PATH_MAX], mp_dir[PATH_MAX];
        double v[M_COUNT];

        make_dir(dir, sizeof(dir), p, "");
        make_dir(mp_dir, sizeof(mp_dir), p, "-mp");
        v[M_SET_INT32] = run_timed(p, W_SET_INT32, dir) / n_keys;
        v[M_SET_STRING] = run_timed(p, W_SET_STRING, dir) / n_keys;
        dir_size(dir, &v[M_SIZE], &v[M_ALLOCATED]);
        v[M_GET_STRING] = run_timed(p, W_GET_STRING, dir) / n_keys;
        v[M_OPEN] = run_timed(p, W_OPEN, dir);
        run_mp(p, mp_dir, &v[M_MP], &v[M_MISSING], &v[M_WRONG], &v[M_FAILED]);
        rm_tree(dir);
        rm_tree(mp_dir);
        if (r >= 0)
                for (int m = 0; m < M_COUNT; m++)
                        p->m[m][r] = v[m];
}

/* ---- set-up ------------------------------------------------------------ */

/* Can the MMKV driver run? NULL if so, else why not. */
static const char *mmkv_probe(void) {
        static char why[PATH_MAX + 64];
        char dir[PATH_MAX];
        struct child c;
        struct job j = { .w = W_CREATE, .dir = dir, .go_fd = -1, .cpu = -1 };
        int status;

        if (!mmkv_driver || !*mmkv_driver)
                return "no driver given (--mmkv PATH or $BENCH_KV_MMKV; scripts/bench.sh builds it)";
        if (access(mmkv_driver, X_OK) < 0) {
                snprintf(why, sizeof(why), "%s: %s (scripts/bench.sh builds it)", mmkv_driver, strerror(errno));
                return why;
        }
        snprintf(dir, sizeof(dir), "%s/probe", tmp_dir);
        if (mkdir(dir, 0700) < 0)
                bench_die("mkdir", errno);
        child_start(&c, &peers[1], &j);
        (void) child_read_until(&c, "\1");
        close(c.fd);
        waitpid(c.pid, &status, 0);
        rm_tree(dir);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !strstr(c.out, "ok\n")) {
                snprintf(why, sizeof(why), "%s create failed (status 0x%x): %.200s", mmkv_driver, status, c.out);
                return why;
        }
        return NULL;
}

/* Take --mmkv and --peers out of argv (the rest goes to bench.h). */
static int parse_own_args(int argc, char **argv, const char **ret_peers) {
        int n = 1;

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--mmkv") == 0 && i + 1 < argc)
                        mmkv_driver = argv[++i];
                else if (strcmp(argv[i], "--peers") == 0 && i + 1 < argc)
                        *ret_peers = argv[++i];
                else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
                        bench_usage(argv[0], 0);
                        fprintf(stderr, "  --mmkv PATH   the bench-kv-mmkv driver (default: $BENCH_KV_MMKV, else "
                                        "the one scripts/bench.sh builds)\n"
                                        "  --peers LIST  run only these peers (comma-separated)\n"
                                        "  --iters N     the number of keys (default 100000)\n");
                        exit(0);
                } else
                        argv[n++] = argv[i];
        }
        return n;
}

static struct peer *find_any_peer(const char *name) {
        for (size_t i = 0; i < ELEMENTS(peers); i++)
                if (strcmp(peers[i].name, name) == 0)
                        return &peers[i];
        return NULL;
}

/* Enable the peers named in list (comma-separated; NULL: all). */
static void select_peers(const char *list, unsigned rounds) {
        char *copy = list ? strdup(list) : NULL, *save = NULL;

        for (size_t i = 0; i < ELEMENTS(peers); i++) {
                peers[i].enabled = !list;
                for (int m = 0; m < M_COUNT; m++)
                        if (!(peers[i].m[m] = calloc(rounds, sizeof(double))))
                                bench_die("calloc", ENOMEM);
        }
        for (char *name = copy ? strtok_r(copy, ",", &save) : NULL; name; name = strtok_r(NULL, ",", &save)) {
                struct peer *p = find_any_peer(name);

                if (!p) {
                        fprintf(stderr, "bench-kv: no peer '%s'\n", name);
                        exit(2);
                }
                p->enabled = true;
        }
        free(copy);
}

/* ---- output ------------------------------------------------------------ */

static struct peer *find_peer(const char *name) {
        for (size_t i = 0; i < ELEMENTS(peers); i++)
                if (strcmp(peers[i].name, name) == 0 && peers[i].enabled)
                        return &peers[i];
        return NULL;
}

static double median(const struct peer *p, enum metric m, unsigned rounds) {
        return bench_stats(p->m[m], rounds).median;
}

/* "  0.123x" for a / ref's median, or "-" if there is no ref. */
static void print_ratio(const struct peer *p, const struct peer *ref, enum metric m, unsigned rounds) {
        if (ref)
                printf(" %13.3fx", median(p, m, rounds) / median(ref, m, rounds));
        else
                printf(" %14s", "-");
}

/* One table: medians of m divided by scale, in unit. */
static void print_table(const char *title, enum metric m, double scale, const char *unit, unsigned rounds) {
        const struct peer *single = find_peer("mmkv-single"), *multi = find_peer("mmkv-multi");

        printf("\n%s (%s)\n%-13s %10s %10s %10s %14s %14s\n", title, unit, "peer", "median", "min", "p90",
               "vs mmkv-single", "vs mmkv-multi");
        for (size_t i = 0; i < ELEMENTS(peers); i++) {
                const struct peer *p = &peers[i];
                struct bench_stats s;

                if (!p->enabled)
                        continue;
                s = bench_stats(p->m[m], rounds);
                printf("%-13s %10.3f %10.3f %10.3f", p->name, s.median / scale, s.min / scale, s.p90 / scale);
                print_ratio(p, single, m, rounds);
                print_ratio(p, multi, m, rounds);
                printf("\n");
        }
}

static void print_sizes(unsigned rounds) {
        const struct peer *single = find_peer("mmkv-single"), *multi = find_peer("mmkv-multi");

        printf("\nfile size after set int32 + set string (MiB, median; ratios of allocated bytes)\n"
               "%-13s %10s %10s %14s %14s\n",
               "peer", "apparent", "allocated", "vs mmkv-single", "vs mmkv-multi");
        for (size_t i = 0; i < ELEMENTS(peers); i++) {
                const struct peer *p = &peers[i];

                if (!p->enabled)
                        continue;
                printf("%-13s %10.2f %10.2f", p->name, median(p, M_SIZE, rounds) / 1048576,
                       median(p, M_ALLOCATED, rounds) / 1048576);
                print_ratio(p, single, M_ALLOCATED, rounds);
                print_ratio(p, multi, M_ALLOCATED, rounds);
                printf("\n");
        }
}

/* The losses of the 2-process run, per round: "0 0 0 0 0". */
static double sum(const struct peer *p, enum metric m, unsigned rounds) {
        double t = 0;

        for (unsigned r = 0; r < rounds; r++)
                t += p->m[m][r];
        return t;
}

/* Per round: keys lost (missing + wrong), wrong, failed writers. */
static void print_losses(unsigned rounds) {
        printf("\n2-process losses: keys missing or wrong afterwards, of %u, per round "
               "[of them wrong] {writers that crashed or failed}\n",
               n_keys);
        for (size_t i = 0; i < ELEMENTS(peers); i++) {
                const struct peer *p = &peers[i];

                if (!p->enabled)
                        continue;
                printf("%-13s", p->name);
                for (unsigned r = 0; r < rounds; r++)
                        printf(" %6.0f [%.0f] {%.0f}", p->m[M_MISSING][r] + p->m[M_WRONG][r], p->m[M_WRONG][r],
                               p->m[M_FAILED][r]);
                printf("\n");
                if (sum(p, M_FAILED, rounds) > 0)
                        printf("%-13s   a failed writer: %s\n", "", p->writer_error);
        }
}

/* A ratio field of the RESULT line, if there is a ref. */
static void print_result_ratio(const char *label, const struct peer *p, const struct peer *ref, enum metric m,
                               unsigned rounds) {
        if (ref)
                printf(" ratio_vs_%s=%.3f", label, median(p, m, rounds) / median(ref, m, rounds));
}

static void print_results(unsigned rounds) {
        static const char *const names[] = { "set-int32", "set-string", "get-string", "open",
                                            "size",      "allocated",  "2proc"};
        static const char *const units[] = { "ns/op", "ns/op", "ns/op", "ns", "bytes", "bytes", "ns" };
        const struct peer *single = find_peer("mmkv-single"), *multi = find_peer("mmkv-multi");

        printf("\n");
        for (size_t i = 0; i < ELEMENTS(peers); i++)
                for (int m = 0; m <= M_MP && peers[i].enabled; m++) {
                        const struct peer *p = &peers[i];

                        printf("RESULT bench=kv workload=%s peer=%s rounds=%u n=%u median=%.1f unit=%s", names[m],
                               p->name, rounds, n_keys, median(p, m, rounds), units[m]);
                        print_result_ratio("mmkv_single", p, single, m, rounds);
                        print_result_ratio("mmkv_multi", p, multi, m, rounds);
                        if (m == M_MP)
                                printf(" lost_total=%.0f failed_writers=%.0f",
                                       sum(p, M_MISSING, rounds) + sum(p, M_WRONG, rounds), sum(p, M_FAILED, rounds));
                        printf("\n");
                }
}

/* ---- targets ----------------------------------------------------------- */

static bool verdict_ratio(const char *what, enum metric m, const struct peer *a, const char *ref_name,
                          unsigned rounds) {
        const struct peer *ref = find_peer(ref_name);
        struct bench_peer pa = { .name = a->name, .samples = a->m[m] }, pr;

        if (!ref) {
                printf("target %s <= %.2fx %s: not judged (MMKV not run, see above)\n", what, TARGET_OP_RATIO,
                       ref_name);
                return true;
        }
        pr = (struct bench_peer) { .name = ref->name, .samples = ref->m[m] };
        return bench_verdict(what, ref->name, TARGET_OP_RATIO, &pa, &pr, rounds);
}

static bool verdict_mp(const struct peer *ashm, const struct peer *multi, unsigned rounds) {
        double lost = sum(ashm, M_MISSING, rounds) + sum(ashm, M_WRONG, rounds) + sum(ashm, M_FAILED, rounds);
        char note[96];

        if (!multi) {
                printf("target 2-process speed-up vs mmkv-multi >= %gx: not judged (MMKV not run, see above); "
                       "ashm lost %.0f keys or writers\n",
                       TARGET_MP_SPEEDUP, lost);
                return lost == 0;
        }
        snprintf(note, sizeof(note), "ashm lost %.0f keys or writers over %u rounds%s", lost, rounds,
                 lost ? ": FAIL" : "");
        return bench_verdict_figure("2-process speed-up vs mmkv-multi", true, TARGET_MP_SPEEDUP,
                                    median(multi, M_MP, rounds) / median(ashm, M_MP, rounds), "x", note) &&
               lost == 0;
}

static bool print_verdicts(unsigned rounds) {
        static const struct {
                const char *what;
                enum metric m;
        } ops[] = {
                { "set int32", M_SET_INT32 },
                { "set string", M_SET_STRING },
                { "get string", M_GET_STRING },
        };
        const struct peer *ashm = find_peer("ashm");
        bool ok = true;

        if (!ashm)
                return true;
        printf("\ntargets (issue 5), on ashm's medians. Per set and get each is judged against both MMKV "
               "modes:\nmmkv-single is MMKV's default mode (no inter-process locking: unsafe with 2 "
               "processes), mmkv-multi\nthe like-for-like one (ashm is always safe for many processes).\n");
        for (size_t i = 0; i < ELEMENTS(ops); i++) {
                ok &= verdict_ratio(ops[i].what, ops[i].m, ashm, "mmkv-single", rounds);
                ok &= verdict_ratio(ops[i].what, ops[i].m, ashm, "mmkv-multi", rounds);
        }
        ok &= bench_verdict_figure("open + first get", false, TARGET_OPEN_NS / 1e3, median(ashm, M_OPEN, rounds) / 1e3,
                                   " us", NULL);
        ok &= verdict_mp(ashm, find_peer("mmkv-multi"), rounds);
        return ok;
}

int main(int argc, char **argv) {
        struct bench_opts o = { .rounds = 5, .iters = 100000 };
        const char *only = NULL, *why_no_mmkv;
        size_t n = ELEMENTS(peers);
        bool ok;

        mmkv_driver = getenv("BENCH_KV_MMKV") ? getenv("BENCH_KV_MMKV") : BENCH_KV_MMKV;
        argc = parse_own_args(argc, argv, &only);
        bench_parse_args(argc, argv, &o, 0);
        n_keys = o.iters < 2 ? 2 : o.iters;
        main_pid = getpid();
        if ((size_t) snprintf(tmp_dir, sizeof(tmp_dir), "%s/bench-kv.XXXXXX",
                              getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp") >= sizeof(tmp_dir))
                bench_die("$TMPDIR is too long", ENAMETOOLONG);
        if (!mkdtemp(tmp_dir))
                bench_die("mkdtemp", errno);
        atexit(cleanup);
        select_peers(only, o.rounds);
        make_inputs();
        why_no_mmkv = peers[1].enabled || peers[2].enabled ? mmkv_probe() : "not selected";
        if (why_no_mmkv) {
                printf("bench-kv: MMKV skipped: %s\n", why_no_mmkv);
                peers[1].enabled = peers[2].enabled = false;
        }

        printf("bench-kv: N=%u keys k0..k%u, %u rounds (+%u warm-up), each workload in a fresh process, "
               "peers interleaved; get order seed 0x%" PRIx64 "; libashm %s, %s, SQLite %s, MMKV %s; "
               "stores in %s\n",
               n_keys, n_keys - 1, o.rounds, o.warmup, ORDER_SEED, ashm_version(), mdb_version(NULL, NULL, NULL),
               sqlite3_libversion(), why_no_mmkv ? "skipped" : "v1.3.3 (bench-kv-mmkv)", tmp_dir);
        for (int r = -(int) o.warmup; r < (int) o.rounds; r++)
                for (size_t k = 0; k < n; k++) {
                        struct peer *p = &peers[((size_t) (r + (int) o.warmup) + k) % n];

                        if (p->enabled)
                                run_peer_round(p, r);
                }

        print_table("set int32, new store", M_SET_INT32, 1, "ns per set", o.rounds);
        print_table("set 100-byte string, over the int32 keys", M_SET_STRING, 1, "ns per set", o.rounds);
        print_table("get string, shuffled", M_GET_STRING, 1, "ns per get", o.rounds);
        print_table("open + first get, new process", M_OPEN, 1e3, "us", o.rounds);
        print_sizes(o.rounds);
        print_table("2 processes x N/2 int32, start to both done", M_MP, 1e6, "ms", o.rounds);
        print_losses(o.rounds);
        print_results(o.rounds);
        ok = print_verdicts(o.rounds);
        for (size_t i = 0; i < n; i++)
                for (int m = 0; m < M_COUNT; m++)
                        free(peers[i].m[m]);
        free(keys);
        free(order);
        return ok || !o.strict ? 0 : 1;
}
