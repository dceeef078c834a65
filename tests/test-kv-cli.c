/* SPDX-License-Identifier: MIT */
/* Tests of `ashm kv`: the real binary (ASHM_CLI), run with its output
 * captured, on stores in a private temporary directory, in a region this
 * process holds (PID:FD), and in a region published with a private ashmd
 * (@NAME). What the tool wrote is read back through libashm as well. */
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "ashm.h"
#include "tests.h"
#include "run-cli.h"

ASHM_SUITE(kv_cli);

/* ---- running the tool ---------------------------------------------- */

#define run_kv(ret, ...) run_cli(ret, "kv", __VA_ARGS__)
#define run_kv_mode(ret, mode, ...) \
        run_argv(ret, mode, -1, (const char *const[]) { ASHM_CLI, "kv", __VA_ARGS__, NULL })
#define run_kv_in(ret, in, ...) run_argv(ret, RUN_PLAIN, in, (const char *const[]) { ASHM_CLI, "kv", __VA_ARGS__, NULL })

/* Run, and require status 0, empty stderr and exactly want on stdout. */
#define assert_kv_out(want, ...)                                                                          \
        do {                                                                                              \
                struct run _r;                                                                            \
                run_kv(&_r, __VA_ARGS__);                                                                 \
                assert_run(&_r, 0, "", "");                                                               \
                cr_assert_eq(_r.err_len, 0, "stderr: %s", _r.err);                                        \
                cr_assert_str_eq(_r.out, (want), "stdout \"%s\", expected \"%s\"", _r.out, (want));       \
                run_done(&_r);                                                                            \
        } while (0)

#define assert_kv_ok(...) assert_kv_out("", __VA_ARGS__)

/* ---- a private directory per test ----------------------------------- */

struct dir {
        char path[64];
};

static void dir_make(struct dir *d) {
        snprintf(d->path, sizeof(d->path), "/tmp/ashm-kv-cli-XXXXXX");
        cr_assert_not_null(mkdtemp(d->path));
}

static void dir_remove(struct dir *d) {
        char cmd[128];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->path);
        cr_expect_eq(system(cmd), 0);
}

static void in_dir(char *buf, size_t len, const struct dir *d, const char *name) {
        snprintf(buf, len, "%s/%s", d->path, name);
}

static bool exists(const char *path) {
        return access(path, F_OK) == 0;
}

static void write_file(const char *path, const void *data, size_t len) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        cr_assert(fd >= 0, "%s: %s", path, strerror(errno));
        cr_assert_eq(write(fd, data, len), (ssize_t) len);
        close(fd);
}

/* Flip one byte of the first place the file holds needle: a value we
 * put there, which lies in one record, past the header. */
static void corrupt(const char *path, const char *needle) {
        int fd = open(path, O_RDWR | O_CLOEXEC);
        struct stat st;
        char *buf, *hit;
        off_t at;

        cr_assert(fd >= 0 && fstat(fd, &st) == 0);
        buf = malloc((size_t) st.st_size);
        cr_assert_not_null(buf);
        cr_assert_eq(pread(fd, buf, (size_t) st.st_size, 0), st.st_size);
        hit = memmem(buf, (size_t) st.st_size, needle, strlen(needle));
        cr_assert_not_null(hit, "%s does not hold \"%s\"", path, needle);
        at = hit - buf;
        cr_assert_gt(at, 4096, "the value lies in the header?");
        buf[at] ^= 0x55;
        cr_assert_eq(pwrite(fd, buf + at, 1, at), 1);
        free(buf);
        close(fd);
}

/* python3 (which meson needs, so it is there) checks a JSON document:
 * script runs with the parsed document as d and must exit 0. */
static void check_json(const struct dir *d, const char *json, const char *script) {
        char path[128], cmd[4096];
        int status;

        in_dir(path, sizeof(path), d, "out.json");
        write_file(path, json, strlen(json));
        snprintf(cmd, sizeof(cmd), "python3 -c 'import json, sys\nd = json.load(open(sys.argv[1]))\n%s' '%s'",
                 script, path);
        status = system(cmd);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "JSON check failed (%s) on:\n%s", script, json);
        unlink(path);
}

/* ---- set and get, every type ---------------------------------------- */

struct round_trip {
        const char *type, *in, *out;
};

static const struct round_trip round_trips[] = {
        { "bool", "true", "true\n" },
        { "bool", "0", "false\n" },
        { "bool", "1", "true\n" },
        { "bool", "false", "false\n" },
        { "int32", "-2147483648", "-2147483648\n" },
        { "int32", "2147483647", "2147483647\n" },
        { "int32", "+7", "7\n" },
        { "int32", "-5", "-5\n" },
        { "int64", "-9223372036854775808", "-9223372036854775808\n" },
        { "int64", "9223372036854775807", "9223372036854775807\n" },
        { "uint64", "18446744073709551615", "18446744073709551615\n" },
        { "uint64", "0", "0\n" },
        { "float", "0.1", "0.1\n" },
        { "float", "3.4028235e38", "3.4028235e+38\n" },
        { "float", "-inf", "-inf\n" },
        { "float", "nan", "nan\n" },
        { "float", "1e-50", "0\n" }, /* too small rounds to zero */
        { "double", "0.1", "0.1\n" },
        { "double", "0.3333333333333333", "0.3333333333333333\n" },
        { "double", "1.7976931348623157e308", "1.7976931348623157e+308\n" },
        { "double", "5e-324", "5e-324\n" },
        { "double", "-0", "-0\n" },
        { "double", "0x1p4", "16\n" },
        { "string", "hello, world", "hello, world\n" },
        { "string", "", "\n" },
        { "string", "ünïcødé \\ \"q\"", "ünïcødé \\ \"q\"\n" },
        { "bytes", "00FF10", "00ff10\n" },
        { "bytes", "", "\n" },
};

/* The value as libashm reads it, as text: what the tool stored. */
static void library_value(const char *store, const char *key, const char *type, char *buf, size_t len) {
        uint8_t v[64];
        size_t n = 0;
        ashm_kv *kv;
        int t;

        assert_ok(ashm_kv_open(store, ASHM_KV_RDONLY, &kv));
        assert_ok(ashm_kv_get(kv, key, &t, v, sizeof(v), &n));
        cr_assert_str_eq(ashm_kv_type_name(t), type);
        buf[0] = '\0';
        for (size_t i = 0; i < n && 2 * i + 3 < len; i++)
                sprintf(buf + 2 * i, "%02x", v[i]);
        ashm_kv_close(kv);
}

ASHM_TEST(kv_cli, set_get_every_type) {
        char store[128], raw[160];
        struct dir d;

        dir_make(&d);
        in_dir(store, sizeof(store), &d, "s.kv");
        for (size_t i = 0; i < ELEMENTSOF(round_trips); i++) {
                const struct round_trip *t = &round_trips[i];

                assert_kv_ok(store, "set", "k", t->in, "--type", t->type);
                assert_kv_out(t->out, store, "get", "k");
                library_value(store, "k", t->type, raw, sizeof(raw));
        }
        /* What get prints, set reads back as the same value. */
        assert_kv_ok(store, "set", "f", "0.1", "--type", "float");
        library_value(store, "f", "float", raw, sizeof(raw));
        cr_assert_str_eq(raw, "cdcccc3d"); /* 0.1f, little-endian */
        assert_kv_ok(store, "set", "i", "-2", "--type=int32");
        library_value(store, "i", "int32", raw, sizeof(raw));
        cr_assert_str_eq(raw, "feffffff");
        /* The default type is string. */
        assert_kv_ok(store, "set", "s", "12");
        library_value(store, "s", "string", raw, sizeof(raw));
        cr_assert_str_eq(raw, "3132");
        dir_remove(&d);
}

ASHM_TEST(kv_cli, get_raw) {
        char store[128];
        struct dir d;
        struct run r;

        dir_make(&d);
        in_dir(store, sizeof(store), &d, "s.kv");
        assert_kv_ok(store, "set", "b", "00ff0a", "--type", "bytes");
        assert_kv_ok(store, "set", "s", "text");
        assert_kv_ok(store, "set", "n", "258", "--type", "int32");
        run_kv(&r, store, "get", "b", "--raw");
        assert_run(&r, 0, "", "");
        cr_assert_eq(r.out_len, 3);
        cr_assert(memcmp(r.out, "\x00\xff\x0a", 3) == 0);
        run_done(&r);
        assert_kv_out("text", store, "get", "--raw", "s");
        run_kv(&r, store, "get", "n", "--raw");
        assert_run(&r, 0, "", "");
        cr_assert_eq(r.out_len, 4);
        cr_assert(memcmp(r.out, "\x02\x01\x00\x00", 4) == 0, "not little-endian");
        run_done(&r);
        dir_remove(&d);
}

/* get --type: a value of another type is an error that names both. */
ASHM_TEST(kv_cli, get_type_mismatch) {
        char store[128];
        struct dir d;
        struct run r;

        dir_make(&d);
        in_dir(store, sizeof(store), &d, "s.kv");
        assert_kv_ok(store, "set", "s", "text");
        assert_kv_ok(store, "set", "n", "258", "--type", "int32");
        assert_kv_out("text\n", store, "get", "s", "--type", "string");
        assert_kv_out("258\n", store, "get", "n", "--type", "int32");
        run_kv(&r, store, "get", "s", "--type", "int32");
        assert_run(&r, 1, "", "ashm: key s in ");
        cr_assert_not_null(strstr(r.err, " holds a string, not an int32\n"), "%s", r.err);
        cr_assert_eq(r.out_len, 0, "%s", r.out);
        run_done(&r);
        run_kv(&r, store, "get", "n", "--type", "bytes");
        assert_run(&r, 1, "", " holds an int32, not a bytes\n");
        run_done(&r);
        run_kv(&r, store, "get", "n", "--type", "int8");
        assert_run(&r, 2, "", "ashm kv get: unknown type 'int8'");
        run_done(&r);
        dir_remove(&d);
}

/* Values are read strictly; a bad one writes nothing and creates no
 * store, and the message names the type and what it takes. */
ASHM_TEST(kv_cli, bad_values) {
        static const struct {
                const char *type, *value, *says;
        } bad[] = {
                { "bool", "yes", "'yes' is not a bool: expected true, false, 1 or 0" },
                { "bool", "TRUE", "is not a bool" },
                { "int32", "12x", "'12x' is not an int32: expected a whole number from -2147483648 to 2147483647" },
                { "int32", "2147483648", "is not an int32" },
                { "int32", "-2147483649", "is not an int32" },
                { "int32", " 5", "is not an int32" },
                { "int32", "0x10", "is not an int32" },
                { "int32", "1.5", "is not an int32" },
                { "int32", "", "is not an int32" },
                { "int64", "9223372036854775808", "is not an int64: expected a whole number from" },
                { "uint64", "-1", "'-1' is not a uint64: expected a whole number from 0 to 18446744073709551615" },
                { "uint64", "18446744073709551616", "is not a uint64" },
                { "float", "1e39", "'1e39' is not a float: expected a number" },
                { "float", "1.5f", "is not a float" },
                { "double", "1e309", "is not a double" },
                { "double", "abc", "is not a double" },
                { "double", "", "is not a double" },
                { "bytes", "0", "'0' is not bytes: expected hexadecimal digits" },
                { "bytes", "zz", "is not bytes" },
        };
        char store[128];
        struct dir d;
        struct run r;

        dir_make(&d);
        in_dir(store, sizeof(store), &d, "s.kv");
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                run_kv(&r, store, "set", "k", bad[i].value, "--type", bad[i].type);
                cr_assert_eq(r.status, 2, "%s '%s': status %d", bad[i].type, bad[i].value, r.status);
                cr_assert_not_null(strstr(r.err, bad[i].says), "%s '%s': %s", bad[i].type, bad[i].value, r.err);
                cr_assert_eq(r.out_len, 0);
                run_done(&r);
                cr_assert(!exists(store), "a bad value created the store");
        }
        run_kv(&r, store, "set", "k", "1", "--type", "int8");
        assert_run(&r, 2, "", "unknown type 'int8'; expected bool, int32, int64, uint64, float, double, string or bytes");
        run_done(&r);
        run_kv(&r, store, "set", "", "v");
        assert_run(&r, 2, "", "a key is 1 to 4096 bytes; this one has 0");
        run_done(&r);
        cr_assert(!exists(store));
        dir_remove(&d);
}

ASHM_TEST(kv_cli, values_from_files) {
        static const char data[] = "bin\0ary\xff";
        char store[128], file[128];
        struct dir d;
        struct run r;
        int in;

        dir_make(&d);
        in_dir(store, sizeof(store), &d, "s.kv");
        in_dir(file, sizeof(file), &d, "value.bin");
        write_file(file, data, sizeof(data));
        assert_kv_ok(store, "set", "b", "--file", file, "--type", "bytes");
        run_kv(&r, store, "get", "b", "--raw");
        assert_run(&r, 0, "", "");
        cr_assert_eq(r.out_len, sizeof(data));
        cr_assert(memcmp(r.out, data, sizeof(data)) == 0);
        run_done(&r);
        assert_kv_out("62696e00617279ff00\n", store, "get", "b");
        /* A string cannot hold NUL. */
        run_kv(&r, store, "set", "s", "--file", file);
        assert_run(&r, 2, "", "holds a NUL byte, which a string cannot; use --type bytes");
        run_done(&r);
        /* Standard input, as '-'. */
        write_file(file, "line one\nline two\n", 18);
        in = open(file, O_RDONLY | O_CLOEXEC);
        cr_assert(in >= 0);
        run_kv_in(&r, in, store, "set", "s", "--file", "-");
        close(in);
        assert_run(&r, 0, "", "");
        run_done(&r);
        assert_kv_out("line one\nline two\n\n", store, "get", "s");
        run_kv(&r, store, "set", "n", "--file", file, "--type", "int32");
        assert_run(&r, 2, "", "--file is for string and bytes values");
        run_done(&r);
        run_kv(&r, store, "set", "k", "v", "--file", file);
        assert_run(&r, 2, "", "expected KEY --file FILE");
        run_done(&r);
        in_dir(file, sizeof(file), &d, "missing");
        run_kv(&r, store, "set", "k", "--file", file);
        assert_run(&r, 1, "", "No such file or directory");
        run_done(&r);
        dir_remove(&d);
}

/* "--" lets a key or value start with a dash; a negative number needs
 * none. */
ASHM_TEST(kv_cli, dashes) {
        char store[128];
        struct dir d;
        struct run r;

        dir_make(&d);
        in_dir(store, sizeof(store), &d, "s.kv");
        assert_kv_ok(store, "set", "n", "-5", "--type", "int32");
        assert_kv_ok(store, "set", "--type", "double", "x", "-.5");
        assert_kv_out("-0.5\n", store, "get", "x");
        assert_kv_ok(store, "set", "--", "-k", "-v");
        assert_kv_out("-v\n", store, "get", "--", "-k");
        run_kv(&r, store, "set", "k", "-v");
        assert_run(&r, 2, "", "unknown option '-v' (put -- before a KEY or VALUE that starts with a dash)");
        run_done(&r);
        dir_remove(&d);
}

/* ---- missing things ------------------------------------------------ */

ASHM_TEST(kv_cli, missing_store) {
        static const char *const verbs[][2] = { { "get", "k" }, { "del", "k" },  { "ls", NULL },
                                                { "count", NULL }, { "stats", NULL }, { "compact", NULL },
                                                { "check", NULL }, { "repair", NULL } };
        char store[128];
        struct dir d;
        struct run r;

        dir_make(&d);
        in_dir(store, sizeof(store), &d, "none.kv");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
                run_argv(&r, RUN_PLAIN, -1,
                         (const char *const[]) { ASHM_CLI, "kv", store, verbs[i][0], verbs[i][1], NULL });
                cr_assert_eq(r.status, 1, "%s: status %d", verbs[i][0], r.status);
                cr_assert_not_null(strstr(r.err, "ashm: no such store "), "%s: %s", verbs[i][0], r.err);
                cr_assert_eq(r.out_len, 0, "%s: %s", verbs[i][0], r.out);
                run_done(&r);
                cr_assert(!exists(store), "%s created the store", verbs[i][0]);
        }
        run_kv(&r, store, "dump", "--json");
        assert_run(&r, 1, "", "no such store");
        run_done(&r);
        cr_assert(!exists(store));
        dir_remove(&d);
}

ASHM_TEST(kv_cli, not_a_store) {
        char path[128];
        struct dir d;
        struct run r;

        dir_make(&d);
        in_dir(path, sizeof(path), &d, "text");
        write_file(path, "just some text, long enough to be no store at all\n", 51);
        run_kv(&r, path, "ls");
        assert_run(&r, 1, "", "ashm: cannot open store ");
        cr_assert_not_null(strstr(r.err, "not an ashm KV store"), "%s", r.err);
        run_done(&r);
        run_kv(&r, path, "check");
        assert_run(&r, 1, "", "ashm: cannot check ");
        cr_assert_not_null(strstr(r.err, "not an ashm KV store"), "%s", r.err);
        run_done(&r);
        in_dir(path, sizeof(path), &d, "empty");
        write_file(path, "", 0);
        run_kv(&r, path, "get", "k");
        assert_run(&r, 1, "", "is empty: not a store yet");
        run_done(&r);
        /* set makes an empty file a store. */
        assert_kv_ok(path, "set", "k", "v");
        assert_kv_out("v\n", path, "get", "k");
        dir_remove(&d);
}

ASHM_TEST(kv_cli, missing_key) {
        char store[128];
        struct dir d;
        struct run r;

        dir_make(&d);
        in_dir(store, sizeof(store), &d, "s.kv");
        assert_kv_ok(store, "set", "a", "1");
        run_kv(&r, store, "get", "b");
        assert_run(&r, 1, "", "ashm: no such key b in ");
        cr_assert_eq(r.out_len, 0);
        run_done(&r);
        run_kv(&r, store, "del", "b");
        assert_run(&r, 1, "", "no such key b");
        run_done(&r);
        run_kv(&r, store, "get", "a b");
        assert_run(&r, 1, "", "no such key 'a b'");
        run_done(&r);
        dir_remove(&d);
}

/* ---- del, count, compact, stats -------------------------------------- */

ASHM_TEST(kv_cli, del_count_compact) {
        char store[128], key[16];
        struct dir d;
        struct run r;

        dir_make(&d);
        in_dir(store, sizeof(store), &d, "s.kv");
        assert_kv_ok(store, "set", "x", "1");
        assert_kv_out("1\n", store, "count");
        for (int i = 0; i < 20; i++) {
                snprintf(key, sizeof(key), "k%d", i);
                assert_kv_ok(store, "set", key, "a value long enough to weigh something");
        }
        assert_kv_out("21\n", store, "count");
        assert_kv_ok(store, "del", "x");
        for (int i = 0; i < 10; i++) {
                snprintf(key, sizeof(key), "k%d", i);
                assert_kv_ok(store, "del", key);
        }
        assert_kv_out("10\n", store, "count");
        run_kv(&r, store, "get", "x");
        assert_run(&r, 1, "", "no such key");
        run_done(&r);
        run_kv(&r, store, "compact");
        assert_run(&r, 0, "compacted ", "");
        cr_assert_not_null(strstr(r.out, " before, "), "%s", r.out);
        run_done(&r);
        assert_kv_out("10\n", store, "count");
        assert_kv_out("a value long enough to weigh something\n", store, "get", "k15");
        run_kv(&r, store, "stats", "--json");
        assert_run(&r, 0, "", "");
        check_json(&d, r.out, "assert d[\"keys\"] == 10 and d[\"dead_bytes\"] == 0 and d[\"version\"] == 2");
        run_done(&r);
        dir_remove(&d);
}

ASHM_TEST(kv_cli, stats) {
        char store[128];
        ashm_kv_stats s;
        ashm_kv *kv;
        struct dir d;
        struct run r;
        char script[512];

        dir_make(&d);
        in_dir(store, sizeof(store), &d, "s.kv");
        assert_kv_ok(store, "set", "a", "1", "--type", "int64");
        assert_kv_ok(store, "set", "a", "2", "--type", "int64");
        assert_kv_ok(store, "set", "b", "hello");
        run_kv(&r, store, "stats");
        assert_run(&r, 0, "keys:        2\n", "");
        cr_assert_not_null(strstr(r.out, "\nfile:        "), "%s", r.out);
        cr_assert_not_null(strstr(r.out, " KiB ("), "sizes in units: %s", r.out);
        cr_assert_not_null(strstr(r.out, "\nrecords:     "), "%s", r.out);
        cr_assert_not_null(strstr(r.out, " live, "), "%s", r.out);
        cr_assert_not_null(strstr(r.out, "\nlog:         "), "%s", r.out);
        cr_assert_not_null(strstr(r.out, "\nindex:       "), "%s", r.out);
        cr_assert_not_null(strstr(r.out, "\nrebuilds:    "), "%s", r.out);
        cr_assert_not_null(strstr(r.out, "\nrecoveries:  0\n"), "%s", r.out);
        cr_assert_not_null(strstr(r.out, "\nformat:      version 2\n"), "%s", r.out);
        run_done(&r);
        assert_ok(ashm_kv_open(store, ASHM_KV_RDONLY, &kv));
        assert_ok(ashm_kv_stats_get(kv, &s));
        ashm_kv_close(kv);
        run_kv(&r, store, "stats", "--json");
        assert_run(&r, 0, "", "");
        cr_assert_eq(strchr(r.out, '\n'), r.out + r.out_len - 1, "one line: %s", r.out);
        snprintf(script, sizeof(script),
                 "assert d == {\"keys\": 2, \"file_size\": %" PRIu64 ", \"allocated\": %" PRIu64
                 ", \"live_bytes\": %" PRIu64 ", \"dead_bytes\": %" PRIu64 ", \"log_used\": %" PRIu64
                 ", \"log_size\": %" PRIu64 ", \"slots\": %" PRIu64 ", \"rebuilds\": %" PRIu64
                 ", \"recoveries\": 0, \"version\": 2}, d",
                 s.file_size, s.allocated, s.live_bytes, s.dead_bytes, s.log_used, s.log_size, s.slots, s.rebuilds);
        check_json(&d, r.out, script);
        run_done(&r);
        dir_remove(&d);
}

/* ---- ls and dump ------------------------------------------------------ */

ASHM_TEST(kv_cli, ls_table_and_json) {
        char store[128];
        struct dir d;
        struct run r;

        dir_make(&d);
        in_dir(store, sizeof(store), &d, "s.kv");
        run_kv(&r, store, "ls");
        assert_run(&r, 1, "", "no such store");
        run_done(&r);
        assert_kv_ok(store, "set", "b", "x");
        assert_kv_ok(store, "del", "b");
        assert_kv_out("TYPE SIZE KEY\n", store, "ls");
        assert_kv_out("[]\n", store, "ls", "--json");
        assert_kv_ok(store, "set", "zeta", "1", "--type", "int32");
        assert_kv_ok(store, "set", "alpha", "0011", "--type", "bytes");
        assert_kv_ok(store, "set", "mid", "a string");
        assert_kv_out("TYPE   SIZE KEY\n"
                      "bytes   2 B alpha\n"
                      "string  8 B mid\n"
                      "int32   4 B zeta\n",
                      store, "ls");
        assert_kv_out("[\n"
                      "  {\"key\":\"alpha\",\"type\":\"bytes\",\"size\":2},\n"
                      "  {\"key\":\"mid\",\"type\":\"string\",\"size\":8},\n"
                      "  {\"key\":\"zeta\",\"type\":\"int32\",\"size\":4}\n"
                      "]\n",
                      store, "ls", "--json");
        run_kv(&r, store, "ls", "extra");
        assert_run(&r, 2, "", "ashm kv ls: unexpected argument 'extra'");
        run_done(&r);
        run_kv(&r, store, "ls", "--raw");
        assert_run(&r, 2, "", "ashm kv ls: unknown option '--raw'");
        run_done(&r);
        dir_remove(&d);
}

/* Keys are bytes: one holding a newline or an escape sequence must not
 * forge a line of output or drive the terminal. */
ASHM_TEST(kv_cli, ls_escapes_keys) {
        static const char evil[] = "line\nbreak\x1b[31mred\\ \xff";
        char store[128];
        struct dir d;
        struct run r;

        dir_make(&d);
        in_dir(store, sizeof(store), &d, "s.kv");
        assert_kv_ok(store, "set", evil, "v");
        assert_kv_ok(store, "set", "tab\there", "w");
        run_kv(&r, store, "ls");
        assert_run(&r, 0, "string  1 B line\\x0abreak\\x1b[31mred\\\\ \\xff\n", "");
        cr_assert_not_null(strstr(r.out, "string  1 B tab\\x09here\n"), "%s", r.out);
        cr_assert_null(strchr(r.out, '\x1b'), "a raw escape reached the terminal");
        cr_assert_eq(strlen(r.out), r.out_len);
        run_done(&r);
        run_kv(&r, store, "ls", "--json");
        assert_run(&r, 0, "", "");
        check_json(&d, r.out,
                   "assert [e[\"key\"] for e in d] == [\"line\\nbreak\\x1b[31mred\\\\ \\xff\", \"tab\\there\"], d");
        run_done(&r);
        /* The key, as typed, reaches the value. */
        assert_kv_out("v\n", store, "get", evil);
        run_kv(&r, store, "get", "line\nbreak");
        assert_run(&r, 1, "", "no such key $'line\\x0abreak' in");
        run_done(&r);
        dir_remove(&d);
}

ASHM_TEST(kv_cli, dump_json) {
        char store[128];
        struct dir d;
        struct run r;

        dir_make(&d);
        in_dir(store, sizeof(store), &d, "s.kv");
        assert_kv_ok(store, "set", "bool", "true", "--type", "bool");
        assert_kv_ok(store, "set", "i32", "-7", "--type", "int32");
        assert_kv_ok(store, "set", "i64", "-9223372036854775808", "--type", "int64");
        assert_kv_ok(store, "set", "u64", "18446744073709551615", "--type", "uint64");
        assert_kv_ok(store, "set", "f", "0.1", "--type", "float");
        assert_kv_ok(store, "set", "d", "1e300", "--type", "double");
        assert_kv_ok(store, "set", "nan", "nan", "--type", "double");
        assert_kv_ok(store, "set", "inf", "-inf", "--type", "float");
        assert_kv_ok(store, "set", "s", "quote \" backslash \\ newline \n tab \t ünï");
        assert_kv_ok(store, "set", "bin", "00ff7f", "--type", "bytes");
        assert_kv_ok(store, "set", "ctl\x01key", "x");
        run_kv(&r, store, "dump", "--json");
        assert_run(&r, 0, "[\n  {\"key\":\"bin\",\"type\":\"bytes\",\"value\":\"00ff7f\"},\n", "");
        cr_assert_not_null(strstr(r.out, "\n  {\"key\":\"i32\",\"type\":\"int32\",\"value\":-7},\n"), "%s", r.out);
        cr_assert_eq(r.out[r.out_len - 2], ']');
        check_json(&d, r.out,
                   "exp = {\"bool\": (\"bool\", True), \"i32\": (\"int32\", -7),\n"
                   "       \"i64\": (\"int64\", -9223372036854775808), \"u64\": (\"uint64\", 18446744073709551615),\n"
                   "       \"f\": (\"float\", 0.1), \"d\": (\"double\", 1e300), \"nan\": (\"double\", \"nan\"),\n"
                   "       \"inf\": (\"float\", \"-inf\"), \"bin\": (\"bytes\", \"00ff7f\"),\n"
                   "       \"s\": (\"string\", \"quote \\\" backslash \\\\ newline \\n tab \\t \\u00fcn\\u00ef\"),\n"
                   "       \"ctl\\x01key\": (\"string\", \"x\")}\n"
                   "got = {e[\"key\"]: (e[\"type\"], e[\"value\"]) for e in d}\n"
                   "assert got == exp, got\n"
                   "assert [e[\"key\"] for e in d] == sorted(exp), d\n"
                   "assert all(len(e) == 3 for e in d)");
        run_done(&r);
        /* One object a line. */
        run_kv(&r, store, "dump", "--json");
        {
                size_t lines = 0;

                for (size_t i = 0; i < r.out_len; i++)
                        lines += r.out[i] == '\n';
                cr_assert_eq(lines, 11 + 2, "%s", r.out);
        }
        run_done(&r);
        run_kv(&r, store, "dump");
        assert_run(&r, 2, "", "ashm kv dump: --json is the only format for now");
        run_done(&r);
        dir_remove(&d);
}

ASHM_TEST(kv_cli, dump_empty) {
        char store[128];
        struct dir d;

        dir_make(&d);
        in_dir(store, sizeof(store), &d, "s.kv");
        assert_kv_ok(store, "set", "k", "v");
        assert_kv_ok(store, "del", "k");
        assert_kv_out("[]\n", store, "dump", "--json");
        dir_remove(&d);
}

/* ---- check and repair ------------------------------------------------- */

static void fill_for_damage(const char *store) {
        char key[16], value[32];

        for (int i = 0; i < 8; i++) {
                snprintf(key, sizeof(key), "keep%d", i);
                snprintf(value, sizeof(value), "kept value %d", i);
                assert_kv_ok(store, "set", key, value);
        }
        assert_kv_ok(store, "set", "victim", "VICTIM-VALUE-1234");
        assert_kv_ok(store, "set", "after", "written after the victim");
}

static void assert_kept(const char *store) {
        char key[16], want[32];

        for (int i = 0; i < 8; i++) {
                snprintf(key, sizeof(key), "keep%d", i);
                snprintf(want, sizeof(want), "kept value %d\n", i);
                assert_kv_out(want, store, "get", key);
        }
        assert_kv_out("written after the victim\n", store, "get", "after");
        assert_kv_out("9\n", store, "count");
}

ASHM_TEST(kv_cli, check_clean_store) {
        char store[128];
        struct dir d;

        dir_make(&d);
        in_dir(store, sizeof(store), &d, "s.kv");
        fill_for_damage(store);
        {
                char want[256];

                snprintf(want, sizeof(want), "%s: intact: 10 records, 10 keys\n", store);
                assert_kv_out(want, store, "check");
                snprintf(want, sizeof(want), "%s: intact, nothing to repair: 10 records, 10 keys\n", store);
                assert_kv_out(want, store, "repair");
        }
        cr_assert(!exists(strcat(store, ".damaged")), "an intact store was set aside");
        dir_remove(&d);
}

ASHM_TEST(kv_cli, check_and_repair_damaged_store) {
        char store[128], copy[128], damaged[160], want[256];
        struct dir d;
        struct run r;

        dir_make(&d);
        in_dir(store, sizeof(store), &d, "s.kv");
        in_dir(copy, sizeof(copy), &d, "repaired.kv");
        fill_for_damage(store);
        corrupt(store, "VICTIM-VALUE");

        run_kv(&r, store, "check");
        assert_run(&r, 4, "damaged: offset ", "");
        snprintf(want, sizeof(want), "%s: damaged (1 damaged part of the log, ", store);
        cr_assert_not_null(strstr(r.out, want), "%s", r.out);
        snprintf(want, sizeof(want), "intact: 9 records, 9 keys, which 'ashm kv %s repair' keeps\n", store);
        cr_assert_not_null(strstr(r.out, want), "%s", r.out);
        cr_assert_eq(r.err_len, 0, "%s", r.err);
        run_done(&r);

        run_kv(&r, store, "get", "victim");
        assert_run(&r, 1, "", "ashm: the record of victim in ");
        cr_assert_not_null(strstr(r.err, " is damaged"), "%s", r.err);
        run_done(&r);
        /* The others read on; dump says what it left out. */
        assert_kv_out("kept value 3\n", store, "get", "keep3");
        run_kv(&r, store, "dump", "--json");
        assert_run(&r, 1, "{\"key\":\"keep7\"", "the record of victim");
        cr_assert_null(strstr(r.out, "VICTIM"), "%s", r.out);
        check_json(&d, r.out, "assert len(d) == 9, d");
        run_done(&r);

        /* A copy, leaving the store as it is. */
        run_kv(&r, store, "repair", "--output", copy);
        assert_run(&r, 0, "damaged: offset ", "");
        snprintf(want, sizeof(want), "repaired %s (1 damaged part of the log, ", store);
        cr_assert_not_null(strstr(r.out, want), "%s", r.out);
        snprintf(want, sizeof(want), "kept 9 records, 9 keys; %s is the repaired copy\n", copy);
        cr_assert_not_null(strstr(r.out, want), "%s", r.out);
        run_done(&r);
        assert_kept(copy);
        snprintf(want, sizeof(want), "%s: intact: 9 records, 9 keys\n", copy);
        assert_kv_out(want, copy, "check");
        run_kv(&r, store, "check");
        assert_run(&r, 4, "", "");
        run_done(&r);
        /* Never over an existing file. */
        run_kv(&r, store, "repair", "--output", copy);
        assert_run(&r, 1, "", "File exists (give a new file to write the repaired store to)");
        run_done(&r);
        assert_kept(copy);

        /* In place, the original set aside. */
        run_kv(&r, store, "repair");
        snprintf(want, sizeof(want), "; the damaged original is %s.damaged\n", store);
        assert_run(&r, 0, want, "");
        run_done(&r);
        snprintf(damaged, sizeof(damaged), "%s.damaged", store);
        cr_assert(exists(damaged));
        assert_kept(store);
        snprintf(want, sizeof(want), "%s: intact: 9 records, 9 keys\n", store);
        assert_kv_out(want, store, "check");
        run_kv(&r, damaged, "check");
        assert_run(&r, 4, "", "");
        run_done(&r);
        dir_remove(&d);
}

/* A damaged header: the store will not open, check says so, and repair
 * still keeps every record. */
ASHM_TEST(kv_cli, damaged_header) {
        char store[128], copy[128], want[256];
        struct dir d;
        struct run r;
        int fd;
        char c;

        dir_make(&d);
        in_dir(store, sizeof(store), &d, "s.kv");
        in_dir(copy, sizeof(copy), &d, "repaired.kv");
        fill_for_damage(store);
        /* Byte 20 lies in the hash seed, which the header's checksum covers. */
        fd = open(store, O_RDWR | O_CLOEXEC);
        cr_assert(fd >= 0 && pread(fd, &c, 1, 20) == 1);
        c ^= 0x01;
        cr_assert(pwrite(fd, &c, 1, 20) == 1);
        close(fd);
        run_kv(&r, store, "get", "keep1");
        assert_run(&r, 1, "", "ashm: cannot open store ");
        snprintf(want, sizeof(want), "(see 'ashm kv %s check')", store);
        cr_assert_not_null(strstr(r.err, want), "%s", r.err);
        run_done(&r);
        run_kv(&r, store, "check");
        assert_run(&r, 4, "damaged: offset 0, 4096 bytes: ", "");
        snprintf(want, sizeof(want), "%s: damaged (the header); intact: ", store);
        cr_assert_not_null(strstr(r.out, want), "%s", r.out);
        run_done(&r);
        run_kv(&r, store, "repair", "--output", copy);
        assert_run(&r, 0, "", "");
        run_done(&r);
        assert_kv_out("kept value 4\n", copy, "get", "keep4");
        assert_kv_out("VICTIM-VALUE-1234\n", copy, "get", "victim");
        dir_remove(&d);
}

ASHM_TEST(kv_cli, repair_refuses_a_store_in_use) {
        char store[128];
        struct dir d;
        struct run r;
        ashm_kv *kv;

        dir_make(&d);
        in_dir(store, sizeof(store), &d, "s.kv");
        fill_for_damage(store);
        corrupt(store, "VICTIM-VALUE");
        /* A writer's handle: it would go on writing to the old file. */
        assert_ok(ashm_kv_open(store, 0, &kv));
        run_kv(&r, store, "repair");
        assert_run(&r, 1, "", "is open in another process; repair it once nothing uses it");
        run_done(&r);
        ashm_kv_close(kv);
        dir_remove(&d);
}

/* ---- PID:FD and @NAME ------------------------------------------------- */

/* A store in a region this process holds, with key "k" = "v". */
static ashm_kv *region_store(ashm_region **ret_region) {
        ashm_region *region;
        ashm_kv *kv;

        assert_ok(ashm_region_create("kv-cli-store", 64 << 20, 0, &region));
        assert_ok(ashm_kv_open_region(region, ASHM_KV_CREATE, &kv));
        assert_ok(ashm_kv_set_string(kv, "k", "v"));
        *ret_region = region;
        return kv;
}

ASHM_TEST(kv_cli, pid_fd_store) {
        char target[32], out[128], want[256];
        ashm_region *region;
        ashm_kv *kv = region_store(&region);
        int32_t n = 0;
        struct dir d;
        struct run r;

        dir_make(&d);
        snprintf(target, sizeof(target), "%d:%d", (int) getpid(), ashm_region_fd(region));
        assert_kv_out("v\n", target, "get", "k");
        /* Writes through the tool are seen here at once, and ours there. */
        assert_kv_ok(target, "set", "n", "42", "--type", "int32");
        assert_ok(ashm_kv_get_int32(kv, "n", &n));
        cr_assert_eq(n, 42);
        assert_ok(ashm_kv_set_int32(kv, "n", 43));
        assert_kv_out("43\n", target, "get", "n");
        assert_kv_out("TYPE   SIZE KEY\nstring  1 B k\nint32   4 B n\n", target, "ls");
        snprintf(want, sizeof(want), "%s: intact: ", target);
        run_kv(&r, target, "check");
        assert_run(&r, 0, want, "");
        run_done(&r);
        /* A region is repaired into a file, never in place. */
        run_kv(&r, target, "repair");
        assert_run(&r, 2, "", "a store in a region cannot be replaced in place: give --output FILE");
        run_done(&r);
        in_dir(out, sizeof(out), &d, "copy.kv");
        run_kv(&r, target, "repair", "--output", out);
        assert_run(&r, 0, "intact, nothing to repair", "");
        run_done(&r);
        assert_kv_out("43\n", out, "get", "n");
        ashm_kv_close(kv);
        ashm_region_close(region);
        dir_remove(&d);
}

ASHM_TEST(kv_cli, pid_fd_errors) {
        char target[64];
        struct run r;
        int p[2];

        /* A pipe is refused without being opened (that could block). */
        cr_assert(pipe2(p, O_CLOEXEC) == 0);
        close(p[1]);
        snprintf(target, sizeof(target), "%d:%d", (int) getpid(), p[0]);
        run_kv(&r, target, "ls");
        assert_run(&r, 1, "", "is not a file or a memfd region, so not a store");
        run_done(&r);
        close(p[0]);
        snprintf(target, sizeof(target), "%d:%d", (int) getpid(), 999);
        run_kv(&r, target, "ls");
        assert_run(&r, 1, "", "has no fd 999");
        run_done(&r);
        run_kv(&r, "0:3", "ls");
        assert_run(&r, 2, "", "0:3 is not a valid PID:FD");
        cr_assert_not_null(strstr(r.err, "use ./0:3"), "%s", r.err);
        run_done(&r);
        run_kv(&r, "1:99999999999", "ls");
        assert_run(&r, 2, "", "is not a valid PID:FD");
        run_done(&r);
}

ASHM_TEST(kv_cli, published_store) {
        char name[64], at[72], want[128];
        struct test_daemon d;
        ashm_region *region;
        ashm_kv *kv;
        int64_t v = 0;
        struct run r;

        daemon_start(&d);
        kv = region_store(&region);
        snprintf(name, sizeof(name), "kv-cli-%d", (int) getpid());
        snprintf(at, sizeof(at), "@%s", name);
        assert_ok(ashm_publish(region, name, 0600, 0));
        assert_kv_out("v\n", at, "get", "k");
        assert_kv_ok(at, "set", "big", "-9000000000", "--type", "int64");
        assert_ok(ashm_kv_get_int64(kv, "big", &v));
        cr_assert_eq(v, INT64_C(-9000000000));
        assert_kv_out("-9000000000\n", at, "get", "big");
        assert_kv_out("2\n", at, "count");
        assert_kv_ok(at, "del", "k");
        cr_assert_eq(ashm_kv_contains(kv, "k"), 0);
        run_kv(&r, at, "dump", "--json");
        assert_run(&r, 0, "[\n  {\"key\":\"big\",\"type\":\"int64\",\"value\":-9000000000}\n]\n", "");
        run_done(&r);
        snprintf(want, sizeof(want), "%s: intact: ", at);
        run_kv(&r, at, "check");
        assert_run(&r, 0, want, "");
        run_done(&r);
        run_kv(&r, at, "stats", "--json");
        assert_run(&r, 0, "{\"keys\":1,", "");
        run_done(&r);
        run_kv(&r, "@no-such-name", "get", "k");
        assert_run(&r, 1, "", "ashm: no published region no-such-name that you may read");
        run_done(&r);
        run_kv(&r, "@", "ls");
        assert_run(&r, 2, "", "ashm kv: a name cannot be empty");
        run_done(&r);
        assert_ok(ashm_unpublish(name));
        ashm_kv_close(kv);
        ashm_region_close(region);
        daemon_stop(&d);
}

/* A frozen region (what `ashm publish` makes) is read-only for all. */
ASHM_TEST(kv_cli, published_frozen_store) {
        char store[128], name[64], at[72];
        struct test_daemon d;
        struct run r;

        daemon_start(&d);
        snprintf(store, sizeof(store), "%s/frozen.kv", d.dir);
        snprintf(name, sizeof(name), "kv-cli-frozen-%d", (int) getpid());
        snprintf(at, sizeof(at), "@%s", name);
        assert_kv_ok(store, "set", "k", "frozen value");
        run_cli(&r, "publish", "--file", store, name);
        assert_run(&r, 0, "published ", "");
        run_done(&r);
        assert_kv_out("frozen value\n", at, "get", "k");
        assert_kv_out("TYPE   SIZE KEY\nstring 12 B k\n", at, "ls");
        run_kv(&r, at, "set", "k", "new");
        assert_run(&r, 1, "", "ashm: you may only read @");
        run_done(&r);
        run_cli(&r, "unpublish", name);
        assert_run(&r, 0, "", "");
        run_done(&r);
        unlink(store);
        daemon_stop(&d);
}

ASHM_TEST(kv_cli, no_daemon_for_names) {
        struct run r;

        setenv("ASHM_SOCKET", "/nonexistent/ashmd.sock", 1);
        run_kv(&r, "@name", "ls");
        assert_run(&r, 1, "", "no published region name that you may read (no ashmd is running");
        run_done(&r);
}

/* ---- the rest ----------------------------------------------------------- */

ASHM_TEST(kv_cli, help) {
        struct run r;

        run_cli(&r, "help");
        assert_run(&r, 0, "\n  kv STORE COMMAND [ARGUMENTS...]\n", "");
        run_done(&r);
        run_cli(&r, "help", "kv");
        assert_run(&r, 0, "Usage: ashm kv STORE COMMAND [ARGUMENTS...]", "");
        cr_assert_not_null(strstr(r.out, "\nCommands:\n"), "%s", r.out);
        cr_assert_not_null(strstr(r.out, "  set KEY VALUE [--type TYPE]"), "%s", r.out);
        cr_assert_not_null(strstr(r.out, "  dump --json "), "%s", r.out);
        cr_assert_not_null(strstr(r.out, "  repair [--output FILE] "), "%s", r.out);
        run_done(&r);
        {
                struct run r2;

                run_kv(&r2, "--help");
                cr_assert_eq(r2.status, 0);
                run_cli(&r, "help", "kv");
                cr_assert_str_eq(r2.out, r.out);
                run_done(&r);
                run_done(&r2);
        }
        run_kv(&r, "some.kv", "get", "--help");
        assert_run(&r, 0, "Usage: ashm kv ", "");
        run_done(&r);
        cr_assert(!exists("some.kv"));
}

ASHM_TEST(kv_cli, usage_errors) {
        struct run r;

        run_cli(&r, "kv");
        assert_run(&r, 2, "", "ashm kv: expected a STORE and a command");
        run_done(&r);
        run_kv(&r, "x.kv");
        assert_run(&r, 2, "", "ashm kv: expected a command after STORE");
        run_done(&r);
        run_kv(&r, "x.kv", "frob");
        assert_run(&r, 2, "", "ashm kv: unknown command 'frob'; see 'ashm help kv'");
        run_done(&r);
        run_kv(&r, "x.kv", "get");
        assert_run(&r, 2, "", "ashm kv get: expected KEY");
        run_done(&r);
        run_kv(&r, "x.kv", "get", "a", "b");
        assert_run(&r, 2, "", "unexpected argument 'b'");
        run_done(&r);
        run_kv(&r, "x.kv", "set", "k");
        assert_run(&r, 2, "", "ashm kv set: expected KEY VALUE, or KEY --file FILE");
        run_done(&r);
        run_kv(&r, "x.kv", "set", "k", "v", "--type");
        assert_run(&r, 2, "", "missing argument to option '--type'");
        run_done(&r);
        run_kv(&r, "x.kv", "ls", "--json=yes");
        assert_run(&r, 2, "", "no value goes with option '--json'");
        run_done(&r);
        run_kv(&r, "x.kv", "count", "--json");
        assert_run(&r, 2, "", "ashm kv count: unknown option '--json'");
        run_done(&r);
        cr_assert(!exists("x.kv"));
}

/* The MMKV commands (kv-mmkv.c, tested in depth elsewhere) get the store
 * opened as they need it: export read-only, import created if need be;
 * asking for help or a dry run creates none. */
ASHM_TEST(kv_cli, mmkv_commands) {
        char store[128], copy[128], mmkv[128];
        struct dir d;
        struct run r;

        dir_make(&d);
        in_dir(store, sizeof(store), &d, "s.kv");
        in_dir(copy, sizeof(copy), &d, "copy.kv");
        in_dir(mmkv, sizeof(mmkv), &d, "mmkv-data");
        run_kv(&r, store, "import-mmkv", "--help");
        assert_run(&r, 0, "Usage: ashm kv STORE ", "");
        run_done(&r);
        run_kv(&r, store, "export-mmkv", mmkv);
        assert_run(&r, 1, "", "no such store");
        run_done(&r);
        cr_assert(!exists(store));
        assert_kv_ok(store, "set", "n", "42", "--type", "int32");
        assert_kv_ok(store, "set", "s", "text");
        run_kv(&r, store, "export-mmkv", mmkv);
        assert_run(&r, 0, "", "");
        run_done(&r);
        run_kv(&r, copy, "import-mmkv", mmkv, "--dry-run");
        assert_run(&r, 0, "n\tint32\t42\n", "");
        run_done(&r);
        cr_assert(!exists(copy), "a dry run created the store");
        /* Words that are wrong are said before any store is made. */
        run_kv(&r, copy, "import-mmkv", mmkv, "--type", "n");
        assert_run(&r, 2, "", "--type takes KEY=TYPE");
        run_done(&r);
        run_kv(&r, copy, "import-mmkv", mmkv, "--default-type", "int8");
        assert_run(&r, 2, "", "--default-type takes");
        run_done(&r);
        run_kv(&r, copy, "import-mmkv");
        assert_run(&r, 2, "", "expected MMKV_DATA_FILE");
        run_done(&r);
        run_kv(&r, copy, "import-mmkv", mmkv, "--json");
        assert_run(&r, 2, "", "unknown option '--json'");
        run_done(&r);
        cr_assert(!exists(copy), "bad arguments created the store");
        run_kv(&r, copy, "import-mmkv", mmkv, "--type", "n=int32", "--type=s=string");
        assert_run(&r, 0, "", "");
        run_done(&r);
        assert_kv_out("[\n  {\"key\":\"n\",\"type\":\"int32\",\"value\":42},\n"
                      "  {\"key\":\"s\",\"type\":\"string\",\"value\":\"text\"}\n]\n",
                      copy, "dump", "--json");
        dir_remove(&d);
}

ASHM_TEST(kv_cli, reader_gone_is_quiet) {
        char store[128];
        struct dir d;
        struct run r;

        dir_make(&d);
        in_dir(store, sizeof(store), &d, "s.kv");
        assert_kv_ok(store, "set", "k", "v");
        run_kv_mode(&r, RUN_STDOUT_CLOSED, store, "dump", "--json");
        assert_run(&r, 0, "", "");
        cr_assert_eq(r.err_len, 0, "stderr: %s", r.err);
        run_done(&r);
        run_kv_mode(&r, RUN_STDOUT_CLOSED, store, "get", "k");
        assert_run(&r, 0, "", "");
        cr_assert_eq(r.err_len, 0, "stderr: %s", r.err);
        run_done(&r);
        dir_remove(&d);
}

ASHM_TEST(kv_cli, write_errors_reported) {
        static const char *const verbs[][2] = { { "get", "k" }, { "ls", NULL }, { "dump", "--json" },
                                                { "stats", NULL }, { "count", NULL }, { "check", NULL } };
        char store[128];
        struct dir d;
        struct run r;

        dir_make(&d);
        in_dir(store, sizeof(store), &d, "s.kv");
        assert_kv_ok(store, "set", "k", "v");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
                run_argv(&r, RUN_STDOUT_FULL, -1,
                         (const char *const[]) { ASHM_CLI, "kv", store, verbs[i][0], verbs[i][1], NULL });
                cr_assert_eq(r.status, 1, "%s: status %d", verbs[i][0], r.status);
                cr_assert_not_null(strstr(r.err, "cannot write to standard output: No space left on device"), "%s: %s",
                                   verbs[i][0], r.err);
                run_done(&r);
        }
        dir_remove(&d);
}

/* The C locale whatever the environment says: "0.5", never "0,5". */
ASHM_TEST(kv_cli, numbers_ignore_the_locale) {
        char store[128];
        struct dir d;

        dir_make(&d);
        in_dir(store, sizeof(store), &d, "s.kv");
        setenv("LC_ALL", "de_DE.UTF-8", 1);
        setenv("LC_NUMERIC", "de_DE.UTF-8", 1);
        assert_kv_ok(store, "set", "x", "0.5", "--type", "double");
        assert_kv_out("0.5\n", store, "get", "x");
        dir_remove(&d);
}
