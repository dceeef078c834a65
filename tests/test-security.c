/* SPDX-License-Identifier: MIT */
/*
 * Hostile peers (issue 8): each test performs one attack on ashmd, as
 * another uid where the attack needs one (the attacker program runs under
 * setpriv) and with raw protocol messages where the library would never
 * send them, and asserts that it fails while honest users go on. The
 * threat model and the limits are in docs/security.md.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "ashm.h"
#include "cutils/ashmem.h"
#include "pinstate.h"
#include "raw-proto.h"
#include "tests.h"

ASHM_SUITE(security);

#define PG 4096u
#define ATTACKER_UID "4242"
#define NOBODY_UID "65534"
/* ashmd logs at most 10 lines per call site in 5 s: a flood that takes
 * longer than that may show twice as many. */
#define LOG_BURST_MAX 20

static void need_root(void) {
        if (geteuid() != 0)
                cr_skip_test("needs root, to run the attacker as another uid");
}

/* A root daemon that every uid may reach, as a system daemon is. */
static void start_shared(struct test_daemon *d, const char *const *extra) {
        const char *args[16] = {"--socket-mode", "0666"};
        size_t n = 2;

        for (size_t i = 0; extra && extra[i] && n < ELEMENTSOF(args) - 1; i++)
                args[n++] = extra[i];
        daemon_start_args(d, args);
        cr_assert(chmod(d->dir, 0755) == 0);
}

/* The attacker program as uid, through setpriv; with ret_sock, one end
 * of a socketpair is its fd 3. Its stderr is ours. */
static pid_t run_as(const char *uid, int *ret_sock, const char *const *argv) {
        char reuid[32], regid[32];
        const char *args[16] = {"setpriv", reuid, regid, "--clear-groups", ATTACKER};
        size_t n = 5;
        int sv[2] = {-1, -1};
        pid_t pid;

        snprintf(reuid, sizeof(reuid), "--reuid=%s", uid);
        snprintf(regid, sizeof(regid), "--regid=%s", uid);
        for (size_t i = 0; argv[i] && n < ELEMENTSOF(args) - 1; i++)
                args[n++] = argv[i];
        if (ret_sock)
                cr_assert(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
        pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
                if (ret_sock && dup2(sv[1], 3) < 0)
                        _exit(127);
                execvp("setpriv", (char *const *) args);
                _exit(127);
        }
        if (ret_sock) {
                close(sv[1]);
                *ret_sock = sv[0];
        }
        return pid;
}

static void attack(const char *uid, const char *const *argv) {
        int status;
        pid_t pid = run_as(uid, NULL, argv);

        cr_assert(waitpid(pid, &status, 0) == pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "attacker '%s' as uid %s: status 0x%x (its stderr says why)", argv[0], uid, status);
}

static void fill(int fd, size_t len, unsigned char seed) {
        unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

        cr_assert(p != MAP_FAILED);
        for (size_t i = 0; i < len; i += PG)
                memset(p + i, seed + (int) (i / PG), PG);
        munmap(p, len);
}

static bool intact(int fd, size_t len, unsigned char seed) {
        unsigned char *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
        bool ok = p != MAP_FAILED;

        for (size_t i = 0; ok && i < len; i += PG)
                ok = p[i] == (unsigned char) (seed + (int) (i / PG)) && p[i + PG - 1] == p[i];
        if (p != MAP_FAILED)
                munmap(p, len);
        return ok;
}

/* Finding 1: a read-only grantee offers the daemon a pin-state block of
 * its own before the owner registers (so that the owner would get it),
 * and tries to write the block the daemon gives it. Both fail, and the
 * owner's pinned pages survive a purge of everything. */
ASHM_TEST(security, read_only_grantee_cannot_touch_pin_state) {
        const size_t len = 64 * PG;
        struct test_daemon d;
        ashm_region *r;

        need_root();
        start_shared(&d, NULL);
        assert_ok(ashm_region_create("owner-data", len, 0, &r));
        fill(ashm_region_fd(r), len, 7);
        assert_ok(ashm_publish(r, "sec.owner-data", 0644, 0));
        attack(NOBODY_UID, (const char *const[]){"ro-adopt", "sec.owner-data", NULL});
        cr_assert_eq(ashm_region_pin(r, 0, 0), ASHM_NOT_PURGED);
        assert_ok(ashm_purge(0, ASHM_PURGE_ALL_USERS, NULL));
        cr_assert_eq(ashm_region_pin(r, 0, 0), ASHM_NOT_PURGED);
        cr_assert(intact(ashm_region_fd(r), len, 7), "the owner's pinned pages were destroyed");
        ashm_region_close(r);
        daemon_stop(&d);
}

/* Finding 9: an O_PATH fd opens nothing; the daemon must not open the
 * memfd on its sender's behalf. */
ASHM_TEST(security, o_path_fds_refused) {
        struct test_daemon d;
        char path[64];
        int c, region, opath;

        daemon_start(&d);
        c = raw_dial(d.sock);
        cr_assert(c >= 0);
        region = memfd_create("o-path", MFD_CLOEXEC);
        cr_assert(region >= 0 && ftruncate(region, PG) == 0);
        snprintf(path, sizeof(path), "/proc/self/fd/%d", region);
        opath = open(path, O_PATH | O_CLOEXEC);
        cr_assert(opath >= 0);
        cr_assert_eq(raw_publish(c, "sec.o-path", opath, 0644, 0), -EBADF);
        cr_assert_eq(raw_register(c, opath, -1, NULL, NULL), -EBADF);
        /* Offered as a block to adopt: ignored, the daemon makes its own. */
        assert_ok(raw_register(c, region, opath, NULL, NULL));
        assert_ok(raw_publish(c, "sec.o-path", region, 0644, 0)); /* the connection is still served */
        close(opath);
        close(region);
        close(c);
        daemon_stop(&d);
}

static uint64_t daemon_rss_kb(pid_t pid) {
        char path[64], line[256];
        uint64_t kb = 0;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
        f = fopen(path, "re");
        cr_assert_not_null(f);
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "VmRSS: %" SCNu64, &kb) == 1)
                        break;
        fclose(f);
        return kb;
}

/* Finding 2: sparse memfds of 4 TiB and 2^48 bytes would have cost the
 * daemon a block of 512 MiB and 32 GiB. Now they cost the caller's
 * quota: -EDQUOT at once, and the daemon does not grow. */
ASHM_TEST(security, sparse_region_is_refused_by_quota) {
        struct test_daemon d;
        uint64_t before;

        need_root();
        start_shared(&d, NULL);
        before = daemon_rss_kb(d.pid);
        attack(NOBODY_UID, (const char *const[]){"big", NULL});
        cr_assert_lt(daemon_rss_kb(d.pid), before + 16 * 1024, "the daemon grew by the attacker's claim");
        daemon_stop(&d);
}

struct view {
        int block;
        void *map;
        size_t len;
        struct pinstate *ps;
};

/* Register region on c and map the block it gets, writable. */
static void view_open(struct view *v, int c, int region) {
        struct proto_register_rep rep;

        v->block = -1;
        assert_ok(raw_register(c, region, -1, &rep, &v->block));
        v->len = rep.state_len;
        v->map = mmap(NULL, v->len, PROT_READ | PROT_WRITE, MAP_SHARED, v->block, 0);
        cr_assert(v->map != MAP_FAILED);
        assert_ok(ashm__pinstate_attach(v->map, v->len, rep.npages, v->block, &v->ps));
}

/* Unmap first, then let go: the daemon then finds no mapping of it. */
static void view_close(struct view *v, int c, int region) {
        struct proto_unregister_req un;
        struct stat st;

        ashm__pinstate_detach(v->ps);
        munmap(v->map, v->len);
        close(v->block);
        cr_assert(fstat(region, &st) == 0);
        un = (struct proto_unregister_req){(uint64_t) st.st_dev, (uint64_t) st.st_ino};
        assert_ok(raw_ask(c, PROTO_UNREGISTER, &un, sizeof(un), NULL, 0, NULL, 0, NULL));
}

static void purge_mine(int c) {
        struct proto_purge_req req = {0};
        struct proto_purge_rep rep;

        assert_ok(raw_ask(c, PROTO_PURGE, &req, sizeof(req), NULL, 0, &rep, sizeof(rep), NULL));
}

/* Finding 3: the record of what a let-go region had purged was one
 * entry per purged run, kept for good. Now many runs collapse into one
 * (conservatively: the pages between count as purged), each uid's
 * records have a byte budget, and a region whose record was forgotten
 * comes back all purged, never NOT_PURGED for pages that read zeros. */
ASHM_TEST(security, tombs_bounded_and_never_lie) {
        const unsigned npages = 4096, churn = 4000;
        struct test_daemon d;
        struct view v;
        int c, region, victim;

        daemon_start(&d);
        c = raw_dial(d.sock);
        cr_assert(c >= 0);
        region = memfd_create("tomb-alternating", MFD_CLOEXEC);
        cr_assert(region >= 0 && ftruncate(region, (off_t) npages * PG) == 0);
        view_open(&v, c, region);
        for (unsigned p = 1; p < npages; p += 2)
                assert_ok(ashm__pinstate_unpin(v.ps, p, 1));
        purge_mine(c);
        view_close(&v, c, region);
        view_open(&v, c, region); /* a fresh block, told of the tomb */
        cr_assert_eq(ashm__pinstate_pin(v.ps, 0, 1), 0, "page 0 was never unpinned");
        cr_assert_eq(ashm__pinstate_pin(v.ps, 1, 1), 1, "page 1 was purged");
        cr_assert_eq(ashm__pinstate_pin(v.ps, npages - 1, 1), 1, "the last page was purged");
        cr_assert_eq(ashm__pinstate_pin(v.ps, 2, 1), 1, "2048 runs collapse into one: conservative");
        view_close(&v, c, region);
        close(region);

        /* Churn enough let-go regions to exceed the uid's tomb budget:
         * the victim's tomb is forgotten, and its page still comes back
         * purged. */
        victim = memfd_create("tomb-victim", MFD_CLOEXEC);
        cr_assert(victim >= 0 && ftruncate(victim, PG) == 0);
        view_open(&v, c, victim);
        assert_ok(ashm__pinstate_unpin(v.ps, 0, 1));
        purge_mine(c);
        view_close(&v, c, victim);
        for (unsigned i = 0; i < churn; i++) {
                int fd = memfd_create("tomb-churn", MFD_CLOEXEC);

                cr_assert(fd >= 0 && ftruncate(fd, PG) == 0);
                view_open(&v, c, fd);
                assert_ok(ashm__pinstate_unpin(v.ps, 0, 1));
                purge_mine(c);
                view_close(&v, c, fd);
                close(fd);
        }
        view_open(&v, c, victim);
        cr_assert_eq(ashm__pinstate_pin(v.ps, 0, 1), 1, "a forgotten tomb made a pin say NOT_PURGED");
        view_close(&v, c, victim);
        close(victim);
        close(c);
        daemon_stop(&d);
}

static unsigned count_lines(const char *path, const char *needle) {
        char line[1024];
        unsigned n = 0;
        FILE *f = fopen(path, "re");

        cr_assert_not_null(f);
        while (fgets(line, sizeof(line), f))
                n += strstr(line, needle) != NULL;
        fclose(f);
        return n;
}

/* Finding 4 and "done when": a root daemon with --socket-mode 0666;
 * one uid sits at every quota (connections, regions, names, memory) and
 * floods the log with malformed messages, while root and nobody publish,
 * look up and pin as usual. The flood leaves a bounded log. */
ASHM_TEST(security, one_uid_at_quota_others_work) {
        static const char *const quotas[] = {"--max-user-connections",
                                             "8",
                                             "--max-user-regions",
                                             "64",
                                             "--max-user-names",
                                             "16",
                                             "--max-user-memory",
                                             "1M",
                                             NULL};
        char log[] = "/tmp/ashm-sec-log-XXXXXX", c;
        struct proto_register_rep rep;
        struct test_daemon d;
        struct pollfd p;
        ashm_region *r, *found;
        int logfd, saved, sock, raw, block = -1, status;
        pid_t pid;

        need_root();
        /* The daemon's stderr goes to a file we count lines in. */
        logfd = mkstemp(log);
        cr_assert(logfd >= 0);
        saved = fcntl(2, F_DUPFD_CLOEXEC, 3);
        cr_assert(saved >= 0 && dup2(logfd, 2) == 2);
        start_shared(&d, quotas);
        dup2(saved, 2);
        close(saved);
        close(logfd);

        pid = run_as(ATTACKER_UID, &sock, (const char *const[]){"hammer", "8", "64", "16", NULL});
        p = (struct pollfd){.fd = sock, .events = POLLIN};
        cr_assert(poll(&p, 1, 60000) == 1 && recv(sock, &c, 1, 0) == 1, "the attacker never reached its quotas");

        /* Root: publish, look up, pin, through the daemon. */
        assert_ok(ashm_region_create("root-config", 16 * PG, 0, &r));
        assert_ok(ashm_publish(r, "root-config", 0644, 0));
        assert_ok(ashm_lookup("root-config", ASHM_LOOKUP_WRITE, &found));
        ashm_region_close(found);
        raw = raw_dial(d.sock);
        cr_assert(raw >= 0);
        assert_ok(raw_register(raw, ashm_region_fd(r), -1, &rep, &block));
        close(block);
        close(raw);
        assert_ok(ashm_region_unpin(r, 0, 0));
        assert_ok(ashm_purge(0, 0, NULL));
        cr_assert_eq(ashm_region_pin(r, 0, 0), ASHM_WAS_PURGED, "root's pins go through the daemon");
        /* nobody: the same, as another uid. */
        attack(NOBODY_UID, (const char *const[]){"honest", "nobody-config", "root-config", NULL});

        close(sock);
        cr_assert(waitpid(pid, &status, 0) == pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "attacker status 0x%x (its stderr says why)", status);
        ashm_region_close(r);
        daemon_stop(&d);
        cr_assert_leq(count_lines(log, "malformed message"), LOG_BURST_MAX, "200 malformed messages, %u lines",
                      count_lines(log, "malformed message"));
        cr_assert_geq(count_lines(log, "malformed message"), 1);
        cr_assert_geq(count_lines(log, "quota"), 1);
        unlink(log);
}

/* Finding 5: nobody squats a name before its real owner. The owner's
 * publish works, a plain lookup finds the caller's own name or root's,
 * never the squatter's; the squatter's is reached only by asking for it
 * by owner ("~UID/NAME" or "~USER/NAME"). */
ASHM_TEST(security, names_are_per_owner) {
        struct test_daemon d;
        ashm_region *mine, *found;
        struct stat a, b;

        need_root();
        start_shared(&d, NULL);
        attack(NOBODY_UID, (const char *const[]){"squat", "com.example.config", NULL});
        assert_ok(ashm_region_create("config", PG, 0, &mine));
        assert_ok(ashm_publish(mine, "com.example.config", 0644, 0));
        assert_fail(ashm_publish(mine, "com.example.config", 0644, 0), EEXIST);
        assert_fail(ashm_publish(mine, "~0/com.example.config", 0644, 0), EINVAL);
        assert_ok(ashm_lookup("com.example.config", ASHM_LOOKUP_WRITE, &found));
        cr_assert(fstat(ashm_region_fd(mine), &a) == 0 && fstat(ashm_region_fd(found), &b) == 0);
        cr_assert(a.st_ino == b.st_ino, "root's lookup found another's region");
        ashm_region_close(found);
        assert_ok(ashm_lookup("~nobody/com.example.config", 0, &found));
        cr_assert(fstat(ashm_region_fd(found), &b) == 0 && b.st_uid == 65534);
        ashm_region_close(found);
        assert_ok(ashm_lookup("~65534/com.example.config", 0, &found));
        ashm_region_close(found);
        /* A third user gets root's (the system's) name, or nobody's when
         * it says so. */
        attack(ATTACKER_UID, (const char *const[]){"lookup", "com.example.config", "0", NULL});
        attack(ATTACKER_UID, (const char *const[]){"lookup", "~65534/com.example.config", NOBODY_UID, NULL});
        assert_ok(ashm_unpublish("~65534/com.example.config")); /* root may */
        ashm_region_close(mine);
        daemon_stop(&d);
}

static uint64_t shmem_kb(void) {
        char line[256];
        uint64_t kb = 0;
        FILE *f = fopen("/proc/meminfo", "re");

        cr_assert_not_null(f);
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "Shmem: %" SCNu64, &kb) == 1)
                        break;
        fclose(f);
        return kb;
}

/* The daemon's fds, and whether one of them is the memfd named name. */
static unsigned daemon_fds(pid_t pid, const char *name, bool *ret_holds) {
        char dir[64], path[400], link[300], want[300];
        struct dirent *de;
        unsigned n = 0;
        DIR *dp;

        snprintf(dir, sizeof(dir), "/proc/%d/fd", (int) pid);
        snprintf(want, sizeof(want), "/memfd:%s (deleted)", name);
        dp = opendir(dir);
        cr_assert_not_null(dp);
        *ret_holds = false;
        while ((de = readdir(dp))) {
                ssize_t k;

                if (de->d_name[0] == '.')
                        continue;
                n++;
                snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
                k = readlink(path, link, sizeof(link) - 1);
                if (k > 0) {
                        link[k] = '\0';
                        *ret_holds |= strcmp(link, want) == 0;
                }
        }
        closedir(dp);
        return n - 1; /* opendir's own */
}

/* Poll (bounded) until the daemon holds no fd of name, is back to fds
 * fds, and Shmem fell by most of len from peak. */
static void wait_freed(pid_t pid, const char *name, unsigned fds, uint64_t peak_kb, size_t len) {
        bool holds = true;
        unsigned now = 0;

        for (int i = 0; i < 1000; i++) {
                now = daemon_fds(pid, name, &holds);
                if (!holds && now <= fds && shmem_kb() + len / 1024 / 2 < peak_kb)
                        return;
                usleep(10000);
        }
        cr_assert_fail("after the last close: daemon holds %s: %d, fds %u (were %u), Shmem %" PRIu64
                       " kB (peak %" PRIu64 ")",
                       name, holds, now, fds, shmem_kb(), peak_kb);
}

/* Finding 8: closing the last fd and handle of a region that was
 * unpinned frees its memory, as the driver does: the daemon lets go of
 * its memfd at once. Through a handle, and through a raw fd (the cutils
 * API), whose close the library notices at its next registration. */
ASHM_TEST(security, closed_region_frees_memory) {
        const size_t len = 128u << 20;
        struct test_daemon d;
        ashm_region *r;
        unsigned fds;
        uint64_t peak;
        bool holds;
        int fd, other;

        daemon_start(&d);
        assert_ok(ashm_purge(0, 0, NULL)); /* our connection is made */
        fds = daemon_fds(d.pid, "-", &holds);
        assert_ok(ashm_region_create("sec-free", len, 0, &r));
        fill(ashm_region_fd(r), len, 1);
        assert_ok(ashm_region_unpin(r, 0, len / 2));
        peak = shmem_kb();
        ashm_region_close(r);
        wait_freed(d.pid, "sec-free", fds, peak, len);

        fd = ashmem_create_region("sec-free-raw", len);
        cr_assert(fd >= 0);
        fill(fd, len, 2);
        cr_assert_eq(ashmem_unpin_region(fd, 0, 0), 0);
        peak = shmem_kb();
        close(fd);
        other = ashmem_create_region("sec-other", PG);
        cr_assert(other >= 0);
        cr_assert_eq(ashmem_pin_region(other, 0, 0), ASHM_NOT_PURGED); /* a new registration */
        wait_freed(d.pid, "sec-free-raw", fds + 2, peak, len);
        close(other);
        daemon_stop(&d);
}

/* Finding 4, the held replies: each NAMES reply is a memfd of the
 * daemon's that the asker keeps. One uid asking for the list 200 times
 * and keeping every reply: its oldest are taken back (punched), the
 * daemon keeps a bounded number, and the last one is whole. */
ASHM_TEST(security, held_list_replies_bounded) {
        static const char *const quota[] = {"--max-user-memory", "1M", NULL};
        struct test_daemon d;
        ashm_region *r;
        unsigned fds;
        bool holds;

        need_root();
        start_shared(&d, quota);
        assert_ok(ashm_region_create("listed", PG, 0, &r));
        for (int i = 0; i < 1000; i++) {
                char name[32];

                snprintf(name, sizeof(name), "listed-%d", i);
                assert_ok(ashm_publish(r, name, 0644, 0));
        }
        fds = daemon_fds(d.pid, "-", &holds);
        attack(NOBODY_UID, (const char *const[]){"hold-lists", "200", NULL});
        cr_assert_leq(daemon_fds(d.pid, "-", &holds), fds + 2 * 16, "the daemon keeps every reply");
        ashm_region_close(r);
        daemon_stop(&d);
}

/* Finding 4, frozen copies: a read-only lookup by the publisher's own
 * uid makes the daemon copy the region. A sparse terabyte copies as
 * holes; data past the asker's memory quota is refused. */
ASHM_TEST(security, frozen_copies_cost_quota) {
        static const char *const quota[] = {"--max-user-memory", "1M", NULL};
        struct test_daemon d;

        need_root();
        start_shared(&d, quota);
        attack(NOBODY_UID, (const char *const[]){"copies", NULL});
        daemon_stop(&d);
}
