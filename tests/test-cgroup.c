/* SPDX-License-Identifier: MIT */
/* ashmd's cgroup module (src/ashmd/cgroup.c): whose memory a client's is.
 * Fake roots (a /proc/PID/cgroup and a /sys/fs/cgroup tree in a temporary
 * directory) stand in for the kernel's files; the peer is this process
 * through a socketpair, so SO_PEERPIDFD (or pidfd_open) names it. The real
 * cgroups, limits and purges are tests/test-pressure-scenarios.sh's. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "registry.h"
#include "tests.h"

/* server.c's (declared in server.h), which this test does not link. */
uint64_t now_usec(void);
uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static char root[256];

static void put(const char *rel, const char *text) {
        char path[512], dir[600];

        snprintf(path, sizeof(path), "%s/%s", root, rel);
        snprintf(dir, sizeof(dir), "mkdir -p \"$(dirname '%s')\"", path);
        cr_assert_eq(system(dir), 0);
        FILE *f = fopen(path, "we");
        cr_assert_not_null(f, "%s: %s", path, strerror(errno));
        fputs(text, f);
        fclose(f);
}

static void fake_root(void) {
        snprintf(root, sizeof(root), "/tmp/ashm-test-cgroup.XXXXXX");
        cr_assert_not_null(mkdtemp(root));
}

static void remove_root(void) {
        char cmd[300];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
        (void) !system(cmd);
}

/* A v1 memory cgroup /a/b whose parent /a is limited to 512 MiB. */
static void v1_tree(const char *leaf_usage) {
        char rel[128];

        snprintf(rel, sizeof(rel), "proc/%d/cgroup", (int) getpid());
        put(rel, "4:memory:/a/b\n1:name=systemd:/\n0::/\n");
        put("sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
        put("sys/fs/cgroup/memory/memory.usage_in_bytes", "1000000\n");
        put("sys/fs/cgroup/memory/a/memory.limit_in_bytes", "536870912\n");
        put("sys/fs/cgroup/memory/a/memory.usage_in_bytes", "104857600\n");
        put("sys/fs/cgroup/memory/a/b/memory.limit_in_bytes", "9223372036854771712\n");
        put("sys/fs/cgroup/memory/a/b/memory.usage_in_bytes", leaf_usage);
}

static struct cgroups *open_cgroups(struct registry *reg) {
        struct cgroups_config cfg = { .margin = 64 << 20, .root = root, .no_psi = true };
        struct cgroups *cgs = NULL;

        cr_assert_eq(cgroups_new(&cfg, reg, &cgs), 0);
        return cgs;
}

ASHM_TEST(cgroup, peer_found_through_pidfd_and_shared_by_cgroup) {
        struct registry reg = { .clock_fd = -1 };
        struct cgroups_stats st;
        struct cgroups *cgs;
        int sv[2];
        uint32_t a, b;

        fake_root();
        v1_tree("52428800\n");
        cgs = open_cgroups(&reg);
        cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        a = cgroups_client(cgs, sv[0], getpid(), 0);
        b = cgroups_client(cgs, sv[0], getpid(), 0);
        cr_expect_gt(a, 0, "the peer's cgroup was not found");
        cr_expect_eq(a, b, "one cgroup, one watch: %u then %u", a, b);
        cgroups_stats(cgs, &st);
        cr_expect_eq(st.watched, 1);
        close(sv[0]);
        close(sv[1]);
        cgroups_free(cgs);
        remove_root();
}

ASHM_TEST(cgroup, another_cgroup_another_id) {
        struct registry reg = { .clock_fd = -1 };
        struct cgroups *cgs;
        char rel[128];
        int sv[2];
        uint32_t a, b;

        fake_root();
        v1_tree("52428800\n");
        cgs = open_cgroups(&reg);
        cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        a = cgroups_client(cgs, sv[0], getpid(), 0);
        snprintf(rel, sizeof(rel), "proc/%d/cgroup", (int) getpid());
        put(rel, "4:cpu,memory:/a/c\n0::/\n");
        put("sys/fs/cgroup/memory/a/c/memory.limit_in_bytes", "9223372036854771712\n");
        put("sys/fs/cgroup/memory/a/c/memory.usage_in_bytes", "0\n");
        b = cgroups_client(cgs, sv[0], getpid(), 0);
        cr_expect(a > 0 && b > 0 && a != b, "ids %u and %u", a, b);
        close(sv[0]);
        close(sv[1]);
        cgroups_free(cgs);
        remove_root();
}

/* A user with cgroups of its own to hand out (a delegated subtree) may
 * have the daemon watch 16 of them; the 17th is not watched (the client
 * works, unheard), while root's and other users' still are. */
ASHM_TEST(cgroup, one_user_cannot_use_up_the_watches) {
        struct registry reg = { .clock_fd = -1 };
        struct cgroups_stats st;
        struct cgroups *cgs;
        char rel[128], text[64];
        int sv[2];
        uint32_t id;

        fake_root();
        v1_tree("52428800\n");
        cgs = open_cgroups(&reg);
        cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        snprintf(rel, sizeof(rel), "proc/%d/cgroup", (int) getpid());
        for (int i = 0; i < 19; i++) {
                snprintf(text, sizeof(text), "4:memory:/a/u%d\n0::/\n", i);
                put(rel, text);
                snprintf(text, sizeof(text), "sys/fs/cgroup/memory/a/u%d/memory.usage_in_bytes", i);
                put(text, "0\n");
                snprintf(text, sizeof(text), "sys/fs/cgroup/memory/a/u%d/memory.limit_in_bytes", i);
                put(text, "9223372036854771712\n");
                id = cgroups_client(cgs, sv[0], getpid(), i < 17 ? 4242 : i == 17 ? 4343 : 0);
                if (i < 16 || i > 16)
                        cr_expect_gt(id, 0, "cgroup %d (uid %d) was not watched", i, i < 17 ? 4242 : i == 17 ? 4343 : 0);
                else
                        cr_expect_eq(id, 0, "a 17th cgroup of uid 4242 was watched");
        }
        cgroups_stats(cgs, &st);
        cr_expect_eq(st.watched, 18);
        close(sv[0]);
        close(sv[1]);
        cgroups_free(cgs);
        remove_root();
}

/* A pid that is gone (here: a reaped child, whose pid nobody has yet)
 * has no pidfd: no cgroup, rather than someone else's. */
ASHM_TEST(cgroup, dead_peer_has_no_cgroup) {
        struct registry reg = { .clock_fd = -1 };
        struct cgroups *cgs;
        char rel[128];
        pid_t pid = fork();

        if (pid == 0)
                _exit(0);
        cr_assert_gt(pid, 0);
        waitpid(pid, NULL, 0);
        fake_root();
        v1_tree("0\n");
        snprintf(rel, sizeof(rel), "proc/%d/cgroup", (int) pid);
        put(rel, "4:memory:/a/b\n0::/\n");
        cgs = open_cgroups(&reg);
        /* No socket: the SO_PEERCRED pid's route (pidfd_open) is taken. */
        cr_expect_eq(cgroups_client(cgs, -1, pid, 0), 0);
        cgroups_free(cgs);
        remove_root();
}

ASHM_TEST(cgroup, unsafe_paths_refused) {
        struct registry reg = { .clock_fd = -1 };
        struct cgroups *cgs;
        char rel[128];
        int sv[2];

        fake_root();
        v1_tree("0\n");
        snprintf(rel, sizeof(rel), "proc/%d/cgroup", (int) getpid());
        put(rel, "4:memory:/../../etc\n0::/../x\n");
        cgs = open_cgroups(&reg);
        cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        cr_expect_eq(cgroups_client(cgs, sv[0], getpid(), 0), 0);
        close(sv[0]);
        close(sv[1]);
        cgroups_free(cgs);
        remove_root();
}

ASHM_TEST(cgroup, a_region_records_up_to_four_cgroups_newest_kept) {
        struct registry reg = { .clock_fd = -1 };
        struct region r = { 0 };
        struct cgroups *cgs;

        fake_root();
        cgs = open_cgroups(&reg);
        cgroups_charge(cgs, &r, 0); /* id 0: nothing */
        for (uint32_t id = 1; id <= 4; id++)
                cgroups_charge(cgs, &r, id);
        cgroups_charge(cgs, &r, 2); /* already there */
        cr_expect(r.charged[0] == 1 && r.charged[1] == 2 && r.charged[2] == 3 && r.charged[3] == 4);
        cgroups_charge(cgs, &r, 5);
        cr_expect(r.charged[0] == 2 && r.charged[3] == 5, "%u %u %u %u", r.charged[0], r.charged[1],
                  r.charged[2], r.charged[3]);
        cgroups_free(cgs);
        remove_root();
}
