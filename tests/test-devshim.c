/* SPDX-License-Identifier: MIT */
/*
 * libashm-devshim.so: unmodified /dev/ashmem programs on plain Linux.
 * Every test execs tests/old-ashmem-program (which links nothing of ashm)
 * or another program with LD_PRELOAD=libashm-devshim.so and a private
 * ashmd, and requires all of its TAP checks to pass; the checks are the
 * driver's answers (see the program's modes).
 */
#include <dlfcn.h>
#include <grp.h>
#include <limits.h>
#include <link.h>
#include <linux/capability.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tests.h"

extern char **environ;

static struct test_daemon daemon_;

static void daemon_up(void) {
        daemon_start(&daemon_);
}

static void daemon_down(void) {
        daemon_stop(&daemon_);
}

ASHM_SUITE(devshim);

/* Each test with a private ashmd, which the preloaded programs reach
 * through $ASHM_SOCKET (the test environment forbids autostarting). */
#define SHIM_TEST(name, ...) ASHM_TEST(devshim, name, .init = daemon_up, .fini = daemon_down, ##__VA_ARGS__)

/* ------------------------------------------------------------------ */

static int find_asan(struct dl_phdr_info *info, size_t size, void *data) {
        if (info->dlpi_name && strstr(info->dlpi_name, "/libasan.so")) {
                snprintf(data, PATH_MAX, "%s", info->dlpi_name);
                return 1;
        }
        return 0;
}

/* LD_PRELOAD for the shim. In a sanitizer build the shim needs the ASan
 * runtime, which must come first in the process: preload it before the
 * shim, as this test binary itself was linked. */
static void preload_value(char *buf, size_t len) {
        char asan[PATH_MAX] = "";

        dl_iterate_phdr(find_asan, asan);
        snprintf(buf, len, "LD_PRELOAD=%s%s%s", asan, asan[0] ? ":" : "", DEVSHIM);
}

struct child {
        pid_t pid;
        int out; /* stdout and stderr */
};

/* Start argv (argv[0] a path) under the shim, with sock (if >= 0) as its
 * fd 3. uid: run as that user (if >= 0), for the tests of privilege. */
static struct child spawn_shimmed(const char *const *argv, int sock, int uid) {
        static char preload[2 * PATH_MAX];
        size_t n = 0, m = 0;
        struct child c;
        char **env;
        int pfd[2];

        preload_value(preload, sizeof(preload));
        while (environ[n])
                n++;
        env = calloc(n + 2, sizeof(char *));
        cr_assert_not_null(env);
        for (size_t i = 0; i < n; i++)
                if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0)
                        env[m++] = environ[i];
        env[m++] = preload;
        cr_assert(pipe2(pfd, O_CLOEXEC) == 0);
        c.pid = fork();
        cr_assert(c.pid >= 0);
        if (c.pid == 0) {
                if (dup2(pfd[1], 1) < 0 || dup2(pfd[1], 2) < 0)
                        _exit(127);
                if (sock >= 0 && (sock == 3 ? fcntl(3, F_SETFD, 0) : dup2(sock, 3)) < 0)
                        _exit(127);
                if (uid >= 0 && (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 ||
                                 setresuid(uid, uid, uid) < 0))
                        _exit(126);
                execve(argv[0], (char *const *) argv, env);
                _exit(127);
        }
        free(env);
        close(pfd[1]);
        c.out = pfd[0];
        return c;
}

/* Wait for a child; its output (NUL-terminated, cut to len) and status. */
static int collect(struct child c, char *buf, size_t len) {
        size_t used = 0;
        int status;

        for (;;) {
                char scratch[4096];
                ssize_t k = read(c.out, used < len - 1 ? buf + used : scratch,
                                 used < len - 1 ? len - 1 - used : sizeof(scratch));

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                if (used < len - 1)
                        used += (size_t) k;
        }
        buf[used] = '\0';
        close(c.out);
        cr_assert(waitpid(c.pid, &status, 0) == c.pid);
        return status;
}

/* The output is TAP with a plan, every test passed, the program exited
 * 0. A plan of 1..0 with a SKIP directive skips the Criterion test. */
static void assert_tap_ok(const char *what, const char *out, int status) {
        int ok = 0, not_ok = 0, plan = -1;
        const char *skip;

        for (const char *l = out; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l)) {
                if (strncmp(l, "ok ", 3) == 0)
                        ok++;
                else if (strncmp(l, "not ok ", 7) == 0)
                        not_ok++;
                else if (strncmp(l, "1..", 3) == 0)
                        plan = atoi(l + 3);
        }
        if (plan == 0 && (skip = strstr(out, "# SKIP")))
                cr_skip_test("%s: %s", what, skip + 7);
        cr_assert(plan > 0 && not_ok == 0 && ok == plan && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "%s: %d ok, %d not ok, plan %d, status 0x%x; its output:\n%s", what, ok, not_ok, plan, status,
                  out);
}

static void run_mode(const char *mode) {
        const char *argv[] = { OLD_ASHMEM_PROGRAM, mode, NULL };
        static char out[1 << 16];
        int status = collect(spawn_shimmed(argv, -1, -1), out, sizeof(out));

        assert_tap_ok(mode, out, status);
}

/* Run a command and return its first line of output ("" if none). */
static void command_line(const char *cmd, char *buf, size_t len) {
        FILE *f = popen(cmd, "re");

        cr_assert_not_null(f);
        if (!fgets(buf, (int) len, f))
                buf[0] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        pclose(f);
}

/* ------------------------------------------------------------------ */
/* The binaries                                                         */

ASHM_TEST(devshim, old_program_links_nothing_of_ashm) {
        char line[1024];

        command_line("command -v readelf nm", line, sizeof(line));
        if (!line[0])
                cr_skip_test("binutils (readelf, nm) is not installed");
        command_line("readelf -d " OLD_ASHMEM_PROGRAM " | grep NEEDED | grep -i ashm", line, sizeof(line));
        cr_expect_str_empty(line, "old-ashmem-program needs an ashm library: %s", line);
        command_line("readelf -d " OLD_ASHMEM_PROGRAM " | grep -c NEEDED", line, sizeof(line));
        cr_expect(atoi(line) >= 1, "readelf found no NEEDED entry at all");
        command_line("nm -u " OLD_ASHMEM_PROGRAM " | grep -Ei 'ashm_|ashmem_|ASharedMemory'", line, sizeof(line));
        cr_expect_str_empty(line, "old-ashmem-program calls into ashm: %s", line);
}

/* The global names of devshim.sym, sorted, one a line. */
static void script_names(char *buf, size_t len) {
        FILE *f = popen("awk '/global:/ { g = 1; next } /local:/ { g = 0 } g { gsub(/[ \\t;]/, \"\"); "
                        "if ($0 != \"\") print }' " SOURCE_ROOT "/src/devshim/devshim.sym | sort",
                        "re");
        char line[256];

        cr_assert_not_null(f);
        buf[0] = '\0';
        while (fgets(line, sizeof(line), f))
                strncat(buf, line, len - strlen(buf) - 1);
        pclose(f);
}

ASHM_TEST(devshim, shim_exports_only_what_it_interposes) {
        char got[4096] = "", script[4096], line[256];
        FILE *f;

        command_line("command -v nm", line, sizeof(line));
        if (!line[0])
                cr_skip_test("binutils (nm) is not installed");
        f = popen("nm -D --defined-only " DEVSHIM " | awk '$2 != \"A\" { print $3 }' | sort", "re");
        cr_assert_not_null(f);
        while (fgets(line, sizeof(line), f))
                strncat(got, line, sizeof(got) - strlen(got) - 1);
        pclose(f);
        script_names(script, sizeof(script));
        cr_assert_str_eq(got, script, "the shim exports:\n%s\nbut devshim.sym lists:\n%s", got, script);

        /* Each of them is a libc entry point, which the shim interposes,
         * or one of the libcutils pins, which it serves from its fd table. */
        for (char *name = strtok(script, "\n"); name; name = strtok(NULL, "\n"))
                cr_expect(strncmp(name, "ashmem_", 7) == 0 || dlsym(RTLD_DEFAULT, name),
                          "%s is not a C library function", name);
        cr_expect(strstr(got, "open\n") && strstr(got, "ioctl\n") && strstr(got, "mmap\n"),
                  "open, ioctl and mmap are not all exported:\n%s", got);

        /* No version node: a versioned open@@X would not bind the
         * programs' references to open@GLIBC_2.2.5. */
        command_line("readelf -V " DEVSHIM " | grep -c 'Version definition'", line, sizeof(line));
        cr_expect(atoi(line) == 0, "the shim defines symbol versions");
}

/* ------------------------------------------------------------------ */
/* The old program, whole and mode by mode                              */

SHIM_TEST(old_program_runs_unchanged) {
        run_mode("all");
}

/* Android code of today and of Android 9 (tests/android-program.c): cutils
 * constants, ashmem_valid on foreign memfds, the driver's ioctls on
 * cutils-made regions, read/write/lseek/stat on /dev/ashmem fds, a
 * 255-byte name, Android 9's st_rdev check. */
SHIM_TEST(android_program_under_the_shim) {
        const char *argv[] = { ANDROID_PROGRAM, NULL };
        static char out[1 << 16];
        int status = collect(spawn_shimmed(argv, -1, -1), out, sizeof(out));

        assert_tap_ok("android-program", out, status);
        cr_expect(strstr(out, "Android 9's st_rdev check accepts the fd"), "the driver checks did not run:\n%s", out);
}

/* The shim's pins without a system call follow fd numbers through close,
 * dup2 and close_range. */
SHIM_TEST(pin_cache_follows_fd_reuse) {
        run_mode("reuse");
}

SHIM_TEST(peer_cannot_resize_a_mapped_region) {
        run_mode("resize");
}

SHIM_TEST(names_sizes_maps_file_id) {
        run_mode("basic");
}

SHIM_TEST(errno_of_every_refusal) {
        run_mode("errors");
}

SHIM_TEST(prot_mask) {
        run_mode("prot");
}

SHIM_TEST(forked_and_execd_holders) {
        run_mode("fork");
}

SHIM_TEST(pins) {
        run_mode("pins");
}

SHIM_TEST(other_fds_untouched) {
        run_mode("other-fds");
}

/* Two unrelated programs under the shim: one makes a region and sends it
 * over a socket, the other takes it as an ashmem fd. */
SHIM_TEST(fd_passed_over_a_socket) {
        const char *send_argv[] = { OLD_ASHMEM_PROGRAM, "send", NULL };
        const char *recv_argv[] = { OLD_ASHMEM_PROGRAM, "recv", NULL };
        static char out_send[1 << 14], out_recv[1 << 14];
        struct child s, r;
        int sv[2], st_send, st_recv;

        cr_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        s = spawn_shimmed(send_argv, sv[0], -1);
        r = spawn_shimmed(recv_argv, sv[1], -1);
        close(sv[0]);
        close(sv[1]);
        st_recv = collect(r, out_recv, sizeof(out_recv));
        st_send = collect(s, out_send, sizeof(out_send));
        assert_tap_ok("recv", out_recv, st_recv);
        assert_tap_ok("send", out_send, st_send);
}

static bool have_sys_admin(void) {
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3] = {};

        return syscall(SYS_capget, &h, d) == 0 &&
               (d[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective & CAP_TO_MASK(CAP_SYS_ADMIN));
}

SHIM_TEST(purge_all_caches) {
        if (!have_sys_admin())
                cr_skip_test("PURGE_ALL_CACHES needs CAP_SYS_ADMIN");
        run_mode("purge");
}

/* The capability decides, not the uid: root without CAP_SYS_ADMIN. */
SHIM_TEST(purge_all_caches_without_cap_sys_admin) {
        run_mode("purge-noperm");
}

SHIM_TEST(purge_all_caches_as_nobody) {
        const char *argv[] = { OLD_ASHMEM_PROGRAM, "purge-noperm", NULL };
        static char out[1 << 14];

        if (geteuid() != 0)
                cr_skip_test("switching to uid 65534 needs root");
        assert_tap_ok("purge-noperm as nobody", out, collect(spawn_shimmed(argv, -1, 65534), out, sizeof(out)));
}

/* The shim is in every program the preload reaches: those that never
 * touch /dev/ashmem must not notice it. */
ASHM_TEST(devshim, ordinary_programs_run_under_the_shim) {
        const char *argv[] = { "/bin/sh", "-c", "cat /proc/self/maps && echo done", NULL };
        static char out[1 << 16];
        int status = collect(spawn_shimmed(argv, -1, -1), out, sizeof(out));

        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "sh failed, status 0x%x:\n%s", status, out);
        cr_assert(strstr(out, "libashm-devshim.so"), "the shim was not loaded:\n%s", out);
        cr_assert(strstr(out, "done\n"), "no output:\n%s", out);
}
