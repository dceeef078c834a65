/* SPDX-License-Identifier: MIT */
/* src/ashmd/pressure.c: parsing against a fake root directory of /proc and
 * /sys/fs/cgroup files, systemd's $MEMORY_PRESSURE_WATCH protocol against
 * a FIFO and sockets served here, and the kernel's real PSI files where
 * this kernel has them. */
#include <ftw.h>
#include <limits.h>
#include <linux/capability.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <linux/magic.h>

#include "pressure.h"
#include "tests.h"

ASHM_SUITE(pressure);

/* Bound on every wait for an event that is expected. */
#define WAIT_MS 5000

/* ---- fake root ---- */

static int rm_entry(const char *path, _unused_ const struct stat *st, _unused_ int type, _unused_ struct FTW *ftw) {
        return remove(path);
}

static void rm_rf(char **dir) {
        if (*dir)
                nftw(*dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(*dir);
}
#define _cleanup_rm_rf_ _cleanup_(rm_rf)

static char *make_root(void) {
        char *dir = strdup("/tmp/ashm-test-pressure-XXXXXX");

        cr_assert(dir && mkdtemp(dir), "mkdtemp: %s", strerror(errno));
        return dir;
}

static void mkdirs(const char *path) {
        char buf[PATH_MAX];

        cr_assert(snprintf(buf, sizeof(buf), "%s", path) < (int) sizeof(buf));
        for (char *p = buf + 1; *p; p++)
                if (*p == '/') {
                        *p = '\0';
                        cr_assert(mkdir(buf, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", buf, strerror(errno));
                        *p = '/';
                }
        cr_assert(mkdir(buf, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", buf, strerror(errno));
}

/* Write root/rel (creating parents) with text. */
static void put(const char *root, const char *rel, const char *text) {
        char path[PATH_MAX], dir[PATH_MAX];
        _cleanup_close_ int fd = -1;

        snprintf(path, sizeof(path), "%s/%s", root, rel);
        snprintf(dir, sizeof(dir), "%s", path);
        *strrchr(dir, '/') = '\0';
        mkdirs(dir);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
        assert_ok(write_full(fd, text, strlen(text)));
}

static void link_to(const char *root, const char *rel, const char *target) {
        char path[PATH_MAX], dir[PATH_MAX];

        snprintf(path, sizeof(path), "%s/%s", root, rel);
        snprintf(dir, sizeof(dir), "%s", path);
        *strrchr(dir, '/') = '\0';
        mkdirs(dir);
        cr_assert(symlink(target, path) == 0, "symlink %s: %s", path, strerror(errno));
}

static char *join(const char *a, const char *b) {
        char *s;

        cr_assert(asprintf(&s, "%s/%s", a, b) > 0);
        return s;
}

/* ---- PSI parsing ---- */

static int psi_text(const char *text, struct psi_stats *st) {
        _cleanup_rm_rf_ char *root = make_root();
        _cleanup_free_ char *path = join(root, "memory");

        put(root, "memory", text);
        return pressure_read_psi(path, st);
}

ASHM_TEST(pressure, psi_parse) {
        struct psi_stats st;

        assert_ok(psi_text("some avg10=1.50 avg60=0.25 avg300=100.00 total=123456\n"
                           "full avg10=0.01 avg60=0.00 avg300=9.99 total=18446744073709551615\n",
                           &st));
        cr_assert_eq(st.some.avg10, 150);
        cr_assert_eq(st.some.avg60, 25);
        cr_assert_eq(st.some.avg300, 10000);
        cr_assert_eq(st.some.total_usec, 123456);
        cr_assert(st.has_full);
        cr_assert_eq(st.full.avg10, 1);
        cr_assert_eq(st.full.avg300, 999);
        cr_assert_eq(st.full.total_usec, UINT64_MAX);

        /* Old kernels' cpu file has no "full" line; no final newline either. */
        assert_ok(psi_text("some avg10=0.00 avg60=0.00 avg300=0.00 total=7", &st));
        cr_assert(!st.has_full);
        cr_assert_eq(st.some.total_usec, 7);
}

ASHM_TEST(pressure, psi_parse_rejects_garbage) {
        static const char *const bad[] = {
                "",
                "\n",
                "some",
                "some avg10=0.00 avg60=0.00 avg300=0.00 total=",
                "some avg10=0.00 avg60=0.00 avg300=0.0",
                "some avg10=0.0 avg60=0.00 avg300=0.00 total=0\n",
                "some avg10=.00 avg60=0.00 avg300=0.00 total=0\n",
                "some avg10=100.01 avg60=0.00 avg300=0.00 total=0\n",
                "some avg10=1000.00 avg60=0.00 avg300=0.00 total=0\n",
                "some avg10=-1.00 avg60=0.00 avg300=0.00 total=0\n",
                "some avg10=0.00  avg60=0.00 avg300=0.00 total=0\n",
                "some avg10=0.00 avg60=0.00 avg300=0.00 total=18446744073709551616\n",
                "some avg10=0.00 avg60=0.00 avg300=0.00 total=0 extra=1\n",
                "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n\n",
                "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
                "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00\n",
                ("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
                 "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"),
                "SOME avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
        };
        struct psi_stats st;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                cr_assert_eq(psi_text(bad[i], &st), -EBADMSG, "accepted: \"%s\"", bad[i]);
}

ASHM_TEST(pressure, psi_parse_oversized_and_missing) {
        _cleanup_rm_rf_ char *root = make_root();
        _cleanup_free_ char *path = join(root, "big");
        _cleanup_free_ char *text = malloc(20000);
        struct psi_stats st;

        /* A valid first line followed by far more than a PSI file holds. */
        strcpy(text, "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
        memset(text + strlen(text), 'x', 10000);
        text[strlen("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n") + 10000] = '\0';
        put(root, "big", text);
        assert_fail(pressure_read_psi(path, &st), EBADMSG);
        assert_fail(pressure_read_psi("/nonexistent/pressure", &st), ENOENT);
        assert_fail(pressure_read_psi(root, &st), EISDIR);
}

ASHM_TEST(pressure, psi_parse_real) {
        struct psi_stats st;
        int r = pressure_read_psi("/proc/pressure/memory", &st);

        if (r == -ENOENT || r == -EOPNOTSUPP)
                cr_skip_test("this kernel has no PSI (/proc/pressure/memory: %s)", strerror(-r));
        assert_ok(r);
        cr_assert(st.has_full, "memory has a full line");
        cr_log_info("memory some avg10=%u.%02u total=%lu", st.some.avg10 / 100, st.some.avg10 % 100,
                    (unsigned long) st.some.total_usec);
}

/* ---- cgroup memory limits ---- */

ASHM_TEST(pressure, cgroup_v2_nested_limit) {
        _cleanup_rm_rf_ char *root = make_root();
        struct cgroup_memory m;
        char want[PATH_MAX];

        /* A path with spaces and a colon, under a slice with a limit. */
        put(root, "proc/self/cgroup", "0::/a.slice/b c:d.service\n");
        put(root, "sys/fs/cgroup/a.slice/memory.max", "1073741824\n");
        put(root, "sys/fs/cgroup/a.slice/memory.high", "max\n");
        put(root, "sys/fs/cgroup/a.slice/memory.current", "900000000\n");
        put(root, "sys/fs/cgroup/a.slice/memory.events", "low 0\nhigh 7\nmax 5\noom 1\noom_kill 1\noom_group_kill 0\n");
        put(root, "sys/fs/cgroup/a.slice/b c:d.service/memory.max", "max\n");
        put(root, "sys/fs/cgroup/a.slice/b c:d.service/memory.high", "2147483648\n");
        put(root, "sys/fs/cgroup/a.slice/b c:d.service/memory.current", "100000000\n");
        put(root, "sys/fs/cgroup/a.slice/b c:d.service/memory.events", "low 0\nhigh 3\nmax 0\noom 0\noom_kill 0\n");

        assert_ok(cgroup_memory_state(root, &m));
        cr_assert_eq(m.version, 2);
        cr_assert_eq(m.limit, 1073741824);
        cr_assert_eq(m.usage, 900000000);
        cr_assert_eq(m.headroom, 1073741824 - 900000000);
        cr_assert_eq(m.own_usage, 100000000);
        snprintf(want, sizeof(want), "%s/sys/fs/cgroup/a.slice/memory.max", root);
        cr_assert_str_eq(m.source, want);
        /* Counters of the level that binds. */
        cr_assert_eq(m.events_high, 7);
        cr_assert_eq(m.events_max, 5);
        cr_assert_eq(m.events_oom, 1);
        cr_assert_eq(m.events_oom_kill, 1);
}

ASHM_TEST(pressure, cgroup_v2_own_high_binds) {
        _cleanup_rm_rf_ char *root = make_root();
        struct cgroup_memory m;
        char want[PATH_MAX];

        put(root, "proc/self/cgroup", "0::/app/svc\n");
        put(root, "sys/fs/cgroup/app/memory.max", "8000000000\n");
        put(root, "sys/fs/cgroup/app/memory.current", "1000000000\n");
        put(root, "sys/fs/cgroup/app/svc/memory.max", "600000000\n");
        put(root, "sys/fs/cgroup/app/svc/memory.high", "500000000\n");
        put(root, "sys/fs/cgroup/app/svc/memory.current", "450000000\n");

        assert_ok(cgroup_memory_state(root, &m));
        cr_assert_eq(m.limit, 500000000);
        cr_assert_eq(m.usage, 450000000);
        cr_assert_eq(m.headroom, 50000000);
        snprintf(want, sizeof(want), "%s/sys/fs/cgroup/app/svc/memory.high", root);
        cr_assert_str_eq(m.source, want);
        /* No memory.events anywhere: counters stay zero. */
        cr_assert_eq(m.events_high + m.events_max + m.events_oom + m.events_oom_kill, 0);
}

ASHM_TEST(pressure, cgroup_v2_over_limit_has_no_headroom) {
        _cleanup_rm_rf_ char *root = make_root();
        struct cgroup_memory m;

        put(root, "proc/self/cgroup", "0::/x\n");
        put(root, "sys/fs/cgroup/x/memory.max", "1000\n");
        put(root, "sys/fs/cgroup/x/memory.current", "4096\n");
        assert_ok(cgroup_memory_state(root, &m));
        cr_assert_eq(m.limit, 1000);
        cr_assert_eq(m.headroom, 0);
}

ASHM_TEST(pressure, cgroup_v2_unlimited) {
        _cleanup_rm_rf_ char *root = make_root();
        struct cgroup_memory m;
        char want[PATH_MAX];

        put(root, "proc/self/cgroup", "0::/u/v\n");
        put(root, "sys/fs/cgroup/u/memory.max", "max\n");
        /* u64 max and v1's "unlimited" are no limit either. */
        put(root, "sys/fs/cgroup/u/v/memory.max", "18446744073709551615\n");
        put(root, "sys/fs/cgroup/u/v/memory.high", "9223372036854771712\n");
        put(root, "sys/fs/cgroup/u/v/memory.current", "12345\n");
        /* The root cgroup has no memory.max at all. */
        assert_ok(cgroup_memory_state(root, &m));
        cr_assert_eq(m.version, 2);
        cr_assert_eq(m.limit, UINT64_MAX);
        cr_assert_eq(m.headroom, UINT64_MAX);
        cr_assert_eq(m.usage, 12345);
        cr_assert_eq(m.own_usage, 12345);
        snprintf(want, sizeof(want), "%s/sys/fs/cgroup/u/v", root);
        cr_assert_str_eq(m.source, want);
}

ASHM_TEST(pressure, cgroup_v2_root_cgroup) {
        _cleanup_rm_rf_ char *root = make_root();
        struct cgroup_memory m;

        put(root, "proc/self/cgroup", "0::/\n");
        mkdirs(root);
        put(root, "sys/fs/cgroup/cgroup.procs", "1\n");
        assert_ok(cgroup_memory_state(root, &m));
        cr_assert_eq(m.limit, UINT64_MAX);
        cr_assert_eq(m.own_usage, UINT64_MAX, "root has no memory.current");
}

ASHM_TEST(pressure, cgroup_v2_on_hybrid_unified_mount) {
        _cleanup_rm_rf_ char *root = make_root();
        struct cgroup_memory m;

        put(root, "proc/self/cgroup", "1:name=systemd:/s\n0::/s\n");
        put(root, "sys/fs/cgroup/unified/s/memory.max", "4096\n");
        put(root, "sys/fs/cgroup/unified/s/memory.current", "0\n");
        assert_ok(cgroup_memory_state(root, &m));
        cr_assert_eq(m.version, 2);
        cr_assert_eq(m.limit, 4096);
}

ASHM_TEST(pressure, cgroup_v1_hybrid) {
        _cleanup_rm_rf_ char *root = make_root();
        struct cgroup_memory m;
        char want[PATH_MAX];

        /* The shape of a hybrid system: v1 controllers, memory among them,
         * plus the unified line. */
        put(root, "proc/self/cgroup",
            "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/x y\n3:cpuset:/\n0::/\n");
        put(root, "sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
        put(root, "sys/fs/cgroup/memory/memory.usage_in_bytes", "3000000000\n");
        put(root, "sys/fs/cgroup/memory/process_api/memory.limit_in_bytes", "536870912\n");
        put(root, "sys/fs/cgroup/memory/process_api/memory.usage_in_bytes", "500000000\n");
        put(root, "sys/fs/cgroup/memory/process_api/memory.failcnt", "4\n");
        put(root, "sys/fs/cgroup/memory/process_api/memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
        put(root, "sys/fs/cgroup/memory/process_api/x y/memory.limit_in_bytes", "9223372036854771712\n");
        put(root, "sys/fs/cgroup/memory/process_api/x y/memory.usage_in_bytes", "6098944\n");

        assert_ok(cgroup_memory_state(root, &m));
        cr_assert_eq(m.version, 1);
        cr_assert_eq(m.limit, 536870912);
        cr_assert_eq(m.usage, 500000000);
        cr_assert_eq(m.own_usage, 6098944);
        snprintf(want, sizeof(want), "%s/sys/fs/cgroup/memory/process_api/memory.limit_in_bytes", root);
        cr_assert_str_eq(m.source, want);
        cr_assert_eq(m.events_max, 4);
        cr_assert_eq(m.events_oom_kill, 2);
}

ASHM_TEST(pressure, cgroup_v1_comounted_controllers) {
        _cleanup_rm_rf_ char *root = make_root();
        struct cgroup_memory m;

        put(root, "proc/self/cgroup", "5:cpu,memory:/z\n");
        put(root, "sys/fs/cgroup/cpu,memory/z/memory.limit_in_bytes", "65536\n");
        put(root, "sys/fs/cgroup/cpu,memory/z/memory.usage_in_bytes", "4096\n");
        assert_ok(cgroup_memory_state(root, &m));
        cr_assert_eq(m.version, 1);
        cr_assert_eq(m.headroom, 61440);
}

static int state_of(const char *proc_cgroup, const char *memory_max) {
        _cleanup_rm_rf_ char *root = make_root();
        struct cgroup_memory m;

        memset(&m, 0xaa, sizeof(m));
        put(root, "proc/self/cgroup", proc_cgroup);
        put(root, "sys/fs/cgroup/g/memory.max", memory_max);
        put(root, "sys/fs/cgroup/g/memory.current", "1\n");
        mkdirs(root);
        int r = cgroup_memory_state(root, &m);

        if (r < 0)
                for (size_t i = 0; i < sizeof(m); i++)
                        cr_assert_eq(((unsigned char *) &m)[i], 0xaa, "ret written on failure");
        return r;
}

ASHM_TEST(pressure, cgroup_rejects_garbage) {
        static const char *const bad_max[] = {
                "", "\n", "12abc\n", "-1\n", "1 2\n", " 5\n", "5\n\n", "99999999999999999999\n", "0x10\n", "MAX\n",
        };
        static const char *const bad_cgroup[] = {
                "garbage\n", "x::/g\n", "0::\n", "0::g\n", "0:/g\n", "0::/g\n9\n",
        };

        assert_ok(state_of("0::/g\n", "100\n"));
        for (size_t i = 0; i < ELEMENTSOF(bad_max); i++)
                cr_assert_eq(state_of("0::/g\n", bad_max[i]), -EBADMSG, "memory.max \"%s\" accepted", bad_max[i]);
        for (size_t i = 0; i < ELEMENTSOF(bad_cgroup); i++)
                cr_assert_eq(state_of(bad_cgroup[i], "100\n"), -EBADMSG, "/proc/self/cgroup \"%s\" accepted",
                             bad_cgroup[i]);
        /* Nothing usable: no v2 line, no memory controller, or a path that
         * leads out of our cgroup namespace. */
        assert_fail(state_of("", "100\n"), ENOENT);
        assert_fail(state_of("1:cpu:/g\n", "100\n"), ENOENT);
        assert_fail(state_of("0::/../g\n", "100\n"), ENOENT);
        assert_fail(state_of("0::/nonexistent\n", "100\n"), ENOENT);
}

ASHM_TEST(pressure, cgroup_bad_events_and_missing_root) {
        _cleanup_rm_rf_ char *root = make_root();
        struct cgroup_memory m;

        assert_fail(cgroup_memory_state(root, &m), ENOENT);
        put(root, "proc/self/cgroup", "0::/e\n");
        put(root, "sys/fs/cgroup/e/memory.events", "high x\n");
        assert_fail(cgroup_memory_state(root, &m), EBADMSG);
        put(root, "sys/fs/cgroup/e/memory.events", "high 1\nmax 2\n");
        assert_ok(cgroup_memory_state(root, &m));
        cr_assert_eq(m.events_max, 2);
}

ASHM_TEST(pressure, cgroup_real) {
        struct cgroup_memory m;
        int r = cgroup_memory_state(NULL, &m);

        if (r == -ENOENT)
                cr_skip_test("no memory cgroup found here");
        assert_ok(r);
        cr_assert(m.version == 1 || m.version == 2);
        cr_log_info("cgroup v%d limit %lu usage %lu headroom %lu own %lu source %s", m.version,
                    (unsigned long) m.limit, (unsigned long) m.usage, (unsigned long) m.headroom,
                    (unsigned long) m.own_usage, m.source);
}

/* ---- pressure_open: config and fallthrough ---- */

ASHM_TEST(pressure, config_errors) {
        struct pressure *p = NULL;

        assert_fail(pressure_open(&(struct pressure_config) { .window_usec = 20000000 }, &p), EINVAL);
        assert_fail(pressure_open(&(struct pressure_config) { .threshold_usec = 3000000 }, &p), EINVAL);
        assert_fail(pressure_open(&(struct pressure_config) { .flags = 1u << 7 }, &p), EINVAL);
        assert_fail(pressure_open(&(struct pressure_config) { .write = "aGVsbG8=" }, &p), EINVAL);
        cr_assert_null(p);
        pressure_close(NULL);
        assert_fail(pressure_fd(NULL), EINVAL);
}

static struct pressure *open_or_die(const struct pressure_config *cfg) {
        struct pressure *p = NULL;

        assert_ok(pressure_open(cfg, &p));
        cr_assert_not_null(p);
        cr_log_info("source: %s | notes: %s", pressure_source(p), pressure_notes(p));
        return p;
}

ASHM_TEST(pressure, watch_dev_null_disables) {
        _cleanup_rm_rf_ char *root = make_root();
        struct pressure *p;

        p = open_or_die(&(struct pressure_config) { .root = root, .watch = "/dev/null" });
        assert_fail(pressure_fd(p), EHOSTDOWN);
        cr_assert_eq(pressure_events(p), 0);
        cr_assert_str_eq(pressure_source(p), "none: pressure monitoring disabled by $MEMORY_PRESSURE_WATCH=/dev/null");
        assert_fail(pressure_handle(p, POLLIN), EBADF);
        pressure_close(p);

        /* systemd treats an empty value the same way. */
        p = open_or_die(&(struct pressure_config) { .root = root, .watch = "" });
        assert_fail(pressure_fd(p), EHOSTDOWN);
        pressure_close(p);
}

ASHM_TEST(pressure, environment_is_read_unless_told_not_to) {
        _cleanup_rm_rf_ char *root = make_root();
        struct pressure *p;

        cr_assert(setenv("MEMORY_PRESSURE_WATCH", "/dev/null", 1) == 0);
        p = open_or_die(&(struct pressure_config) { .root = root });
        assert_fail(pressure_fd(p), EHOSTDOWN);
        pressure_close(p);

        p = open_or_die(&(struct pressure_config) { .root = root, .flags = PRESSURE_NO_ENV });
        assert_fail(pressure_fd(p), EOPNOTSUPP);
        cr_assert(strstr(pressure_notes(p), "MEMORY_PRESSURE_WATCH") == NULL);
        pressure_close(p);
}

ASHM_TEST(pressure, fallthrough_reasons_in_order) {
        _cleanup_rm_rf_ char *root = make_root();
        char want[4 * PATH_MAX];
        struct pressure *p;

        /* A relative watch path, a memory.pressure that is a plain file (not
         * on cgroupfs), no unified mount, no /proc/pressure. */
        put(root, "proc/self/cgroup", "0::/svc\n");
        put(root, "sys/fs/cgroup/svc/memory.pressure", "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
        p = open_or_die(&(struct pressure_config) { .root = root, .watch = "relative/path" });
        assert_fail(pressure_fd(p), EOPNOTSUPP);
        cr_assert_eq(pressure_events(p), 0);
        snprintf(want, sizeof(want),
                 "$MEMORY_PRESSURE_WATCH=relative/path: not an absolute, normalized path; "
                 "%1$s/sys/fs/cgroup/svc/memory.pressure: Inappropriate ioctl for device (not a PSI file, FIFO or socket); "
                 "%1$s/sys/fs/cgroup/unified/svc/memory.pressure: No such file or directory; "
                 "%1$s/proc/pressure/memory: No such file or directory",
                 root);
        cr_assert_str_eq(pressure_notes(p), want);
        cr_assert(strncmp(pressure_source(p), "none: pressure monitoring unavailable: ", 39) == 0);
        cr_assert_str_eq(pressure_source(p) + 39, want);
        pressure_close(p);
}

ASHM_TEST(pressure, fallthrough_on_bad_cgroup_file) {
        _cleanup_rm_rf_ char *root = make_root();
        struct pressure *p;

        put(root, "proc/self/cgroup", "this is not a cgroup file\n");
        p = open_or_die(&(struct pressure_config) { .root = root, .flags = PRESSURE_NO_ENV });
        cr_assert(strstr(pressure_notes(p), "/proc/self/cgroup: Bad message"), "%s", pressure_notes(p));
        pressure_close(p);

        put(root, "proc/self/cgroup", "0::/../../escape\n");
        p = open_or_die(&(struct pressure_config) { .root = root, .flags = PRESSURE_NO_ENV });
        cr_assert(strstr(pressure_notes(p), "outside our cgroup namespace"), "%s", pressure_notes(p));
        pressure_close(p);
}

ASHM_TEST(pressure, watch_bad_targets_fall_through) {
        _cleanup_rm_rf_ char *root = make_root();
        _cleanup_free_ char *file = join(root, "plain");
        static const struct {
                const char *watch, *write, *reason;
        } cases[] = {
                { "/nonexistent/memory.pressure", NULL, "No such file or directory" },
                { "/tmp", NULL, "Is a directory" },
                { "/dev/zero", NULL, "not a PSI file, FIFO or socket" },
                { "/a/../b", NULL, "not an absolute, normalized path" },
                { "/a//b", NULL, "not an absolute, normalized path" },
                { "/a/./b", NULL, "not an absolute, normalized path" },
                { "/dev/zero", "not base64!", "not valid base64" },
                { "/dev/zero", "aGVsbG8", "Inappropriate ioctl" }, /* unpadded is fine */
                { "/dev/zero", "aGVsbG8==", "not valid base64" },
                { "/dev/zero", "aGVsbG9=", "not valid base64" }, /* stray bits */
                { "/dev/zero", "a", "not valid base64" },
                { "/dev/zero", "aGVs=bG8=", "not valid base64" },
        };

        put(root, "plain", "x");
        for (size_t i = 0; i <= ELEMENTSOF(cases); i++) {
                const char *watch = i < ELEMENTSOF(cases) ? cases[i].watch : file;
                const char *reason = i < ELEMENTSOF(cases) ? cases[i].reason : "not a PSI file";
                struct pressure *p = open_or_die(&(struct pressure_config) {
                        .root = root, .watch = watch, .write = i < ELEMENTSOF(cases) ? cases[i].write : NULL });

                cr_assert(strstr(pressure_notes(p), reason), "%s: want \"%s\" in \"%s\"", watch, reason,
                          pressure_notes(p));
                cr_assert(strncmp(pressure_source(p), "none:", 5) == 0);
                pressure_close(p);
        }
}

/* ---- $MEMORY_PRESSURE_WATCH: FIFO and sockets ---- */

/* Wait (bounded) for the pressure fd, as the daemon's epoll would. */
static uint32_t wait_events(struct pressure *p) {
        _cleanup_close_ int ep = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event ev = { .events = pressure_events(p) };
        int n;

        cr_assert(ep >= 0);
        cr_assert(epoll_ctl(ep, EPOLL_CTL_ADD, pressure_fd(p), &ev) == 0, "epoll_ctl: %s", strerror(errno));
        n = epoll_wait(ep, &ev, 1, WAIT_MS);
        cr_assert_eq(n, 1, "no event within %d ms", WAIT_MS);
        return ev.events;
}

static bool readable_now(int fd, short events) {
        struct pollfd pfd = { .fd = fd, .events = events };

        return poll(&pfd, 1, 0) == 1;
}

ASHM_TEST(pressure, watch_fifo) {
        _cleanup_rm_rf_ char *root = make_root();
        _cleanup_free_ char *fifo = join(root, "memory-pressure");
        _cleanup_close_ int writer = -1;
        char want[PATH_MAX + 32];
        struct pressure *p;

        cr_assert(mkfifo(fifo, 0600) == 0);
        /* A payload goes into the FIFO but must not read back as pressure. */
        p = open_or_die(&(struct pressure_config) { .root = root, .watch = fifo, .write = "aGVsbG8=" });
        snprintf(want, sizeof(want), "systemd:%s (fifo)", fifo);
        cr_assert_str_eq(pressure_source(p), want);
        cr_assert_eq(pressure_events(p), EPOLLIN);
        cr_assert(!readable_now(pressure_fd(p), POLLIN), "own payload would look like pressure");

        writer = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        cr_assert(writer >= 0, "open writer: %s", strerror(errno));
        assert_ok(write_full(writer, "pressure!", 9));
        cr_assert_eq(pressure_handle(p, wait_events(p)), 1);
        cr_assert_eq(pressure_handle(p, POLLIN), 0, "drained");
        /* The writer leaving is no hang-up: we hold the FIFO read-write. */
        writer = safe_close(writer);
        cr_assert(!readable_now(pressure_fd(p), POLLIN | POLLHUP));
        cr_assert_eq(pressure_handle(p, 0), 0);
        pressure_close(p);
}

static void recv_exact(int fd, void *buf, size_t len) {
        for (size_t got = 0; got < len;) {
                struct pollfd pfd = { .fd = fd, .events = POLLIN };
                ssize_t n;

                cr_assert_eq(poll(&pfd, 1, WAIT_MS), 1, "payload did not arrive");
                n = recv(fd, (char *) buf + got, len - got, 0);
                cr_assert(n > 0, "recv: %s", n < 0 ? strerror(errno) : "EOF");
                got += (size_t) n;
        }
}

static int listen_unix(int type, const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);

        cr_assert(fd >= 0);
        cr_assert(strlen(path) < sizeof(sa.sun_path));
        strcpy(sa.sun_path, path);
        cr_assert(bind(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0, "bind %s: %s", path, strerror(errno));
        cr_assert(listen(fd, 4) == 0);
        return fd;
}

/* Serve the protocol: the client must send exactly the decoded payload;
 * a byte from us is pressure; our hang-up is -ENODEV. */
static void serve_socket(int type, const char *bind_path, const char *watch) {
        static const char payload[] = "some 150000 2000000"; /* sizeof includes the NUL */
        _cleanup_close_ int listener = listen_unix(type, bind_path);
        _cleanup_close_ int conn = -1;
        char buf[sizeof(payload)];
        char want[PATH_MAX + 32];
        struct pressure *p;

        p = open_or_die(&(struct pressure_config) { .watch = watch, .write = "c29tZSAxNTAwMDAgMjAwMDAwMAA=" });
        snprintf(want, sizeof(want), "systemd:%s (socket)", watch);
        cr_assert_str_eq(pressure_source(p), want);
        cr_assert_eq(pressure_events(p), EPOLLIN);
        conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
        cr_assert(conn >= 0);
        recv_exact(conn, buf, sizeof(buf));
        cr_assert(memcmp(buf, payload, sizeof(payload)) == 0, "payload differs");
        cr_assert(recv(conn, buf, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN, "more than the payload arrived");

        cr_assert(!readable_now(pressure_fd(p), POLLIN));
        cr_assert_eq(send(conn, "!", 1, MSG_NOSIGNAL), 1);
        cr_assert_eq(pressure_handle(p, wait_events(p)), 1);
        cr_assert_eq(pressure_handle(p, POLLIN), 0);
        conn = safe_close(conn);
        assert_fail(pressure_handle(p, wait_events(p)), ENODEV);
        pressure_close(p);
}

ASHM_TEST(pressure, watch_stream_socket) {
        _cleanup_rm_rf_ char *root = make_root();
        _cleanup_free_ char *path = join(root, "sock");

        serve_socket(SOCK_STREAM, path, path);
}

ASHM_TEST(pressure, watch_seqpacket_socket) {
        _cleanup_rm_rf_ char *root = make_root();
        _cleanup_free_ char *path = join(root, "sock");

        serve_socket(SOCK_SEQPACKET, path, path);
}

/* A path past sun_path's 108 bytes is reached through an O_PATH fd. */
ASHM_TEST(pressure, watch_socket_long_path) {
        _cleanup_rm_rf_ char *root = make_root();
        char dir[PATH_MAX], path[PATH_MAX + 8];

        snprintf(dir, sizeof(dir), "%s/%s/%s", root, "a-directory-name-long-enough-to-matter-0123456789",
                 "and-another-one-to-pass-the-sun-path-limit-0123456789");
        mkdirs(dir);
        snprintf(path, sizeof(path), "%s/sock", dir);
        cr_assert(strlen(path) >= sizeof(((struct sockaddr_un *) 0)->sun_path));
        cr_assert(chdir(dir) == 0);
        serve_socket(SOCK_STREAM, "sock", path);
}

ASHM_TEST(pressure, watch_socket_nobody_listening) {
        _cleanup_rm_rf_ char *root = make_root();
        _cleanup_free_ char *path = join(root, "sock");
        struct pressure *p;
        int fd = listen_unix(SOCK_STREAM, path);

        close(fd); /* the socket inode stays, nobody accepts */
        p = open_or_die(&(struct pressure_config) { .root = root, .watch = path });
        cr_assert(strstr(pressure_notes(p), "Connection refused"), "%s", pressure_notes(p));
        pressure_close(p);
}

/* ---- the kernel's PSI files ---- */

static void require_psi(void) {
        if (access("/proc/pressure/memory", F_OK) < 0)
                cr_skip_test("this kernel has no PSI: /proc/pressure/memory: %s", strerror(errno));
}

static bool have_cap(int cap) {
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct d[2];

        cr_assert(syscall(SYS_capget, &h, d) == 0);
        return d[cap / 32].effective & (1u << (cap % 32));
}

/* Criterion runs each test in its own process, so this stays local. */
static void drop_cap(int cap) {
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct d[2];

        cr_assert(syscall(SYS_capget, &h, d) == 0);
        d[cap / 32].effective &= ~(1u << (cap % 32));
        cr_assert(syscall(SYS_capset, &h, d) == 0, "capset: %s", strerror(errno));
}

ASHM_TEST(pressure, real_system_default) {
        struct pressure *p;

        require_psi();
        p = open_or_die(&(struct pressure_config) { .flags = PRESSURE_NO_ENV });
        cr_assert(strncmp(pressure_source(p), "psi:", 4) == 0, "%s (%s)", pressure_source(p), pressure_notes(p));
        cr_assert(strstr(pressure_source(p), "(some 150000 2000000)"));
        cr_assert_eq(pressure_events(p), EPOLLPRI);
        /* An armed trigger: no error, no event yet (or a real one). */
        struct pollfd pfd = { .fd = pressure_fd(p), .events = POLLPRI };
        cr_assert(poll(&pfd, 1, 0) >= 0);
        cr_assert_eq(pfd.revents & POLLERR, 0, "trigger not armed");
        pressure_close(p);
}

ASHM_TEST(pressure, real_proc_after_cgroup_fallthrough) {
        _cleanup_rm_rf_ char *root = NULL;
        _cleanup_close_ int ep = epoll_create1(EPOLL_CLOEXEC);
        char want[PATH_MAX + 64];
        struct pressure *p;

        /* Skipping ends the test at once: nothing to clean up before it. */
        require_psi();
        root = make_root();
        put(root, "proc/self/cgroup", "0::/not-here\n");
        link_to(root, "proc/pressure/memory", "/proc/pressure/memory");
        p = open_or_die(&(struct pressure_config) { .root = root, .flags = PRESSURE_NO_ENV });
        snprintf(want, sizeof(want), "psi:%s/proc/pressure/memory (some 150000 2000000)", root);
        cr_assert_str_eq(pressure_source(p), want);
        cr_assert(strstr(pressure_notes(p), "/sys/fs/cgroup/not-here/memory.pressure: No such file or directory"));
        /* The daemon's step: a PSI fd goes into epoll with EPOLLPRI. */
        struct epoll_event ev = { .events = pressure_events(p) };
        cr_assert(epoll_ctl(ep, EPOLL_CTL_ADD, pressure_fd(p), &ev) == 0, "epoll_ctl: %s", strerror(errno));
        cr_assert_eq(pressure_handle(p, 0), 0);
        cr_assert_eq(pressure_handle(p, EPOLLPRI), 1);
        assert_fail(pressure_handle(p, EPOLLERR | EPOLLPRI), ENODEV);
        pressure_close(p);
}

/* The kernel refuses an unprivileged trigger whose window is not a
 * multiple of 2 s; we fall through with that reason. */
ASHM_TEST(pressure, real_unprivileged_window_rule) {
        struct pressure *p;

        require_psi();
        drop_cap(CAP_SYS_RESOURCE);
        cr_assert(!have_cap(CAP_SYS_RESOURCE));

        p = open_or_die(&(struct pressure_config) { .window_usec = 1000000, .flags = PRESSURE_NO_ENV });
        cr_assert(strncmp(pressure_source(p), "none:", 5) == 0, "%s", pressure_source(p));
        cr_assert(strstr(pressure_notes(p),
                         "/proc/pressure/memory: Invalid argument (without CAP_SYS_RESOURCE a PSI window must be "
                         "a multiple of 2 s)"),
                  "%s", pressure_notes(p));
        pressure_close(p);

        p = open_or_die(&(struct pressure_config) { .threshold_usec = 100000, .window_usec = 4000000,
                                                    .flags = PRESSURE_NO_ENV | PRESSURE_FULL });
        cr_assert(strncmp(pressure_source(p), "psi:", 4) == 0, "%s", pressure_source(p));
        cr_assert(strstr(pressure_source(p), "(full 100000 4000000)"));
        pressure_close(p);
}

/* With CAP_SYS_RESOURCE any window up to 10 s is accepted. */
ASHM_TEST(pressure, real_privileged_window) {
        struct pressure *p;

        require_psi();
        if (!have_cap(CAP_SYS_RESOURCE))
                cr_skip_test("no CAP_SYS_RESOURCE here: only 2 s windows can be tested");
        p = open_or_die(&(struct pressure_config) { .window_usec = 1000000, .flags = PRESSURE_NO_ENV });
        cr_assert(strncmp(pressure_source(p), "psi:", 4) == 0, "%s", pressure_notes(p));
        pressure_close(p);
}

ASHM_TEST(pressure, real_watch_psi_file) {
        struct pressure *p;

        require_psi();
        /* systemd's payload, base64 of "some 150000 2000000\0". */
        p = open_or_die(&(struct pressure_config) { .watch = "/proc/pressure/memory",
                                                    .write = "c29tZSAxNTAwMDAgMjAwMDAwMAA=" });
        cr_assert_str_eq(pressure_source(p), "systemd:/proc/pressure/memory (psi)");
        cr_assert_eq(pressure_events(p), EPOLLPRI);
        pressure_close(p);

        /* No payload: a PSI file without a trigger is useless, ours is used. */
        p = open_or_die(&(struct pressure_config) { .watch = "/proc/pressure/memory" });
        cr_assert_str_eq(pressure_source(p), "systemd:/proc/pressure/memory (some 150000 2000000)");
        pressure_close(p);
}

/* Find a writable cgroup2 mount, or NULL. */
static const char *cgroup2_mount(void) {
        static const char *const candidates[] = { "/sys/fs/cgroup", "/sys/fs/cgroup/unified" };
        struct statfs sfs;

        for (size_t i = 0; i < ELEMENTSOF(candidates); i++)
                if (statfs(candidates[i], &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC &&
                    access(candidates[i], W_OK) == 0)
                        return candidates[i];
        return NULL;
}

/* A real cgroup's memory.pressure, as source (2), then the cgroup goes
 * away: the fd reports POLLERR and pressure_handle() says -ENODEV. */
ASHM_TEST(pressure, real_cgroup_removed) {
        _cleanup_rm_rf_ char *root = NULL;
        const char *mnt = cgroup2_mount();
        char cg[PATH_MAX], want[PATH_MAX + 64], line[128];
        struct pressure *p;

        require_psi();
        if (!mnt)
                cr_skip_test("no writable cgroup2 mount");
        snprintf(line, sizeof(line), "ashm-test-pressure-%d", getpid());
        snprintf(cg, sizeof(cg), "%s/%s", mnt, line);
        if (mkdir(cg, 0755) < 0)
                cr_skip_test("cannot create a cgroup: %s", strerror(errno));
        root = make_root();
        snprintf(line, sizeof(line), "0::/ashm-test-pressure-%d\n", getpid());
        put(root, "proc/self/cgroup", line);
        link_to(root, "sys/fs/cgroup", mnt);

        p = open_or_die(&(struct pressure_config) { .root = root, .flags = PRESSURE_NO_ENV });
        snprintf(want, sizeof(want), "psi:%s/sys/fs/cgroup/ashm-test-pressure-%d/memory.pressure (some 150000 2000000)",
                 root, getpid());
        int removed = rmdir(cg);
        cr_assert_str_eq(pressure_source(p), want);
        cr_assert_eq(removed, 0, "rmdir %s: %s", cg, strerror(errno));
        assert_fail(pressure_handle(p, wait_events(p)), ENODEV);
        pressure_close(p);
}

/* A memory cgroup with a small limit, for a child that makes real
 * pressure: v1's memory hierarchy, else a cgroup2 mount whose root
 * delegates the memory controller. Returns false to skip. */
static bool make_small_memcg(char *dir, size_t size) {
        char line[PATH_MAX + 64], file[PATH_MAX + 32];
        _cleanup_free_ char *v1 = NULL;
        const char *mnt = cgroup2_mount();
        FILE *f = fopen("/proc/self/cgroup", "re");

        while (f && fgets(line, sizeof(line), f)) {
                char *m = strstr(line, ":memory:");

                if (m && !v1) {
                        m[strcspn(m, "\n")] = '\0';
                        v1 = strdup(m + strlen(":memory:"));
                }
        }
        if (f)
                fclose(f);
        if (v1)
                snprintf(dir, size, "/sys/fs/cgroup/memory%s/ashm-test-pressure-%d", strcmp(v1, "/") ? v1 : "",
                         getpid());
        else if (mnt)
                snprintf(dir, size, "%s/ashm-test-pressure-%d", mnt, getpid());
        else
                return false;
        if (mkdir(dir, 0755) < 0)
                return false;
        snprintf(file, sizeof(file), "%s/%s", dir, v1 ? "memory.limit_in_bytes" : "memory.max");
        _cleanup_close_ int fd = open(file, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "16777216", 8) != 8) {
                rmdir(dir);
                return false;
        }
        return true;
}

/* Child: join the cgroup, then write files through a 16 MiB page cache
 * until killed. Reclaim under the limit is a memory stall. */
static pid_t spawn_pressure_maker(const char *cg, const char *scratch) {
        pid_t pid = fork();

        cr_assert(pid >= 0);
        if (pid > 0)
                return pid;
        char procs[PATH_MAX + 16], file[PATH_MAX + 16];
        static char block[1 << 20];
        int fd;

        snprintf(procs, sizeof(procs), "%s/cgroup.procs", cg);
        fd = open(procs, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "0", 1) != 1)
                _exit(1);
        close(fd);
        snprintf(file, sizeof(file), "%s/fill", scratch);
        memset(block, 0x5a, sizeof(block));
        for (int round = 0; round < 1000; round++) {
                fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                if (fd < 0)
                        _exit(1);
                for (int i = 0; i < 64; i++)
                        if (write(fd, block, sizeof(block)) != (ssize_t) sizeof(block))
                                _exit(1);
                close(fd);
        }
        _exit(0);
}

/* End to end with the kernel: a real stall fires the trigger through
 * epoll, and the event is gone once epoll has reported it (the reason
 * pressure_handle() takes the revents). */
ASHM_TEST(pressure, real_pressure_event, .timeout = 60) {
        _cleanup_rm_rf_ char *scratch = NULL;
        char cg[PATH_MAX];
        struct pressure *p;
        uint32_t revents;
        pid_t child;

        require_psi();
        if (!make_small_memcg(cg, sizeof(cg)))
                cr_skip_test("cannot create a memory cgroup with a limit here");
        scratch = make_root();
        /* A 50 ms stall in a 2 s window: what a 16 MiB cgroup writing files makes. */
        p = open_or_die(&(struct pressure_config) { .threshold_usec = 50000, .flags = PRESSURE_NO_ENV });
        child = spawn_pressure_maker(cg, scratch);
        revents = wait_events(p);
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        cr_expect(rmdir(cg) == 0, "rmdir %s: %s", cg, strerror(errno));
        cr_assert(revents & EPOLLPRI, "revents %#x", revents);
        cr_assert(!readable_now(pressure_fd(p), POLLPRI), "the event was already taken by epoll");
        cr_assert_eq(pressure_handle(p, revents), 1);
        pressure_close(p);
}
