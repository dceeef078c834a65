/* SPDX-License-Identifier: MIT */
/* Sharing by name through ashmd: who may look a name up, and that a
 * read-only grant stays read-only against a hostile client. */
#include <grp.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "ashm.h"
#include "tests.h"

ASHM_SUITE(broker);

#define NOBODY 65534

/* A daemon every uid may reach, as a system-wide one would be. */
static void start_shared(struct test_daemon *d) {
        const char *args[] = { "--socket-mode", "0666", NULL };

        daemon_start_args(d, args);
        cr_assert(chmod(d->dir, 0755) == 0);
}

static ashm_region *published(const char *name, const char *text, unsigned mode, unsigned flags) {
        ashm_region *r;

        assert_ok(ashm_region_create(name, 8192, 0, &r));
        assert_ok(ashm_region_write(r, 0, text, strlen(text) + 1));
        assert_ok(ashm_publish(r, name, mode, flags));
        return r;
}

/* Run fn in a child that has become uid (and gid, and groups); the
 * child's exit status is fn's step number on failure, 0 on success. */
static void as_user(uid_t uid, gid_t gid, const gid_t *groups, size_t n, int (*fn)(void)) {
        pid_t pid = fork();
        int status;

        cr_assert(pid >= 0);
        if (pid == 0) {
                if (setgroups(n, groups) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
                        _exit(100);
                _exit(fn());
        }
        cr_assert(waitpid(pid, &status, 0) == pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "as uid %u: failed at step %d", (unsigned) uid,
                  WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

ASHM_TEST(broker, publish_lookup_unpublish) {
        struct test_daemon d;
        ashm_region *r, *w, *ro;
        char buf[32] = "";

        daemon_start(&d);
        r = published("greeting", "hello", 0600, 0);
        assert_ok(ashm_lookup("greeting", ASHM_LOOKUP_WRITE, &w));
        assert_ok(ashm_region_write(w, 0, "HELLO", 5));
        assert_ok(ashm_region_read(r, 0, buf, 6));
        cr_assert_str_eq(buf, "HELLO", "a write grant is the region itself");
        /* May write, asks to read: the live region, through a read-only fd. */
        assert_ok(ashm_lookup("greeting", 0, &ro));
        cr_assert_eq(ashm_region_is_frozen(ro), 0);
        assert_ok(ashm_region_write(w, 0, "Hello", 5));
        assert_ok(ashm_region_read(ro, 0, buf, 6));
        cr_assert_str_eq(buf, "Hello", "it sees later writes");
        cr_assert(write(ashm_region_fd(ro), "x", 1) < 0 && errno == EBADF);
        ashm_region_close(ro);
        assert_fail(ashm_publish(r, "greeting", 0600, 0), EEXIST);
        assert_ok(ashm_unpublish("greeting"));
        assert_fail(ashm_lookup("greeting", 0, &ro), ENOENT);
        /* The publisher may unpublish a name it cannot read itself. */
        assert_ok(ashm_publish(r, "write-only-mode", 0044, 0));
        assert_ok(ashm_unpublish("write-only-mode"));
        assert_fail(ashm_unpublish("greeting"), ENOENT);
        ashm_region_close(w);
        ashm_region_close(r);
        daemon_stop(&d);
}

/* The owner's own uid may only read (0400): file modes cannot bind the
 * owner, so the grant is a frozen copy of the contents as they are. */
ASHM_TEST(broker, read_only_owner_gets_frozen_copy) {
        struct test_daemon d;
        ashm_region *r, *ro;
        char buf[8] = "";

        daemon_start(&d);
        r = published("owner-ro", "v1", 0400, 0);
        assert_fail(ashm_lookup("owner-ro", ASHM_LOOKUP_WRITE, &ro), EACCES);
        assert_ok(ashm_lookup("owner-ro", 0, &ro));
        cr_assert_eq(ashm_region_is_frozen(ro), 1);
        assert_ok(ashm_region_write(r, 0, "v2", 3));
        assert_ok(ashm_region_read(ro, 0, buf, 3));
        cr_assert_str_eq(buf, "v1", "a copy: later writes are not seen");
        assert_fail(ashm_region_write(ro, 0, "x", 1), EBADF);
        ashm_region_close(ro);
        ashm_region_close(r);
        daemon_stop(&d);
}

ASHM_TEST(broker, frozen_region_shared_as_is) {
        struct test_daemon d;
        ashm_region *r, *ro;
        struct stat a, b;

        daemon_start(&d);
        assert_ok(ashm_region_create("cfg", 4096, 0, &r));
        assert_ok(ashm_region_write(r, 0, "k=v", 4));
        assert_ok(ashm_region_freeze(r));
        assert_ok(ashm_publish(r, "cfg", 0644, 0));
        assert_ok(ashm_lookup("cfg", 0, &ro));
        cr_assert(fstat(ashm_region_fd(r), &a) == 0 && fstat(ashm_region_fd(ro), &b) == 0);
        cr_assert_eq(a.st_ino, b.st_ino, "a frozen region needs no copy");
        assert_fail(ashm_lookup("cfg", ASHM_LOOKUP_WRITE, &ro), EACCES);
        ashm_region_close(ro);
        ashm_region_close(r);
        daemon_stop(&d);
}

ASHM_TEST(broker, bad_arguments) {
        char long_name[300];
        struct test_daemon d;
        ashm_region *r, *x = NULL;

        daemon_start(&d);
        assert_ok(ashm_region_create("args", 4096, 0, &r));
        memset(long_name, 'n', sizeof(long_name) - 1);
        long_name[sizeof(long_name) - 1] = '\0';
        assert_fail(ashm_publish(r, "", 0600, 0), EINVAL);
        assert_fail(ashm_publish(r, long_name, 0600, 0), EINVAL);
        assert_fail(ashm_publish(r, "tab\there", 0600, 0), EINVAL);
        assert_fail(ashm_publish(r, "ok", 01000, 0), EINVAL);
        assert_fail(ashm_publish(r, "ok", 0600, 8), EINVAL);
        assert_fail(ashm_publish(NULL, "ok", 0600, 0), EINVAL);
        assert_fail(ashm_lookup("ok", 4, &x), EINVAL);
        assert_fail(ashm_lookup(NULL, 0, &x), EINVAL);
        assert_fail(ashm_lookup("nothing-here", 0, &x), ENOENT);
        cr_assert_null(x);
        ashm_region_close(r);
        daemon_stop(&d);
}

ASHM_TEST(broker, names_die_with_their_publisher_unless_kept) {
        struct test_daemon d;
        ashm_region *r;
        pid_t pid;

        daemon_start(&d);
        pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
                ashm_region *a, *b;

                if (ashm_region_create("a", 4096, 0, &a) < 0 || ashm_publish(a, "transient", 0600, 0) < 0 ||
                    ashm_region_create("b", 4096, 0, &b) < 0 || ashm_region_write(b, 0, "kept", 5) < 0 ||
                    ashm_publish(b, "kept", 0600, ASHM_PUBLISH_KEEP) < 0)
                        _exit(1);
                _exit(0);
        }
        cr_assert(waitpid(pid, NULL, 0) == pid);
        /* The daemon may not have seen the hang-up yet: a kept name is
         * there either way; the transient one goes once it has. */
        assert_ok(ashm_lookup("kept", ASHM_LOOKUP_WRITE, &r));
        cr_assert_eq(ashm_region_read(r, 0, (char[5]) { 0 }, 5), 0);
        ashm_region_close(r);
        for (int i = 0; i < 1000 && ashm_lookup("transient", 0, &r) == 0; i++) {
                ashm_region_close(r);
                usleep(2000);
        }
        assert_fail(ashm_lookup("transient", 0, &r), ENOENT);
        daemon_stop(&d);
}

ASHM_TEST(broker, names_lists_what_the_caller_may_read) {
        struct test_daemon d;
        ashm_region *a, *b;
        ashm_name_info *names;
        size_t n;

        daemon_start(&d);
        a = published("listed-a", "a", 0640, 0);
        b = published("listed-b", "b", 0600, ASHM_PUBLISH_KEEP);
        assert_ok(ashm_names(&names, &n));
        cr_assert_eq(n, 2);
        for (size_t i = 0; i < n; i++) {
                cr_assert_eq(names[i].uid, geteuid());
                cr_assert_eq(names[i].size, 8192);
                cr_assert_eq(names[i].writable, 1);
                cr_assert_eq(names[i].pid, (uint32_t) getpid());
                if (strcmp(names[i].name, "listed-b") == 0)
                        cr_assert_eq(names[i].flags, ASHM_PUBLISH_KEEP);
                else
                        cr_assert_eq(names[i].mode, 0640);
        }
        free(names);
        ashm_region_close(a);
        ashm_region_close(b);
        daemon_stop(&d);
}

/* ---- another uid ------------------------------------------------------ */

/* Every route to writing a read-only grant, as a hostile client tries
 * them. Returns the step that wrongly succeeded, or 0. */
static int hostile_reader(void) {
        ashm_region *r;
        char path[64], buf[16] = "";
        void *p;
        int fd, rw;

        if (ashm_lookup("shared-config", 0, &r) < 0)
                return 1;
        fd = ashm_region_fd(r);
        if (ashm_region_read(r, 0, buf, 7) < 0 || strcmp(buf, "config") != 0)
                return 2;
        if (write(fd, "x", 1) >= 0 || pwrite(fd, "x", 1, 0) >= 0)
                return 3;
        if (ashm_region_write(r, 0, "x", 1) >= 0)
                return 4;
        if (mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) != MAP_FAILED)
                return 5;
        p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED || mprotect(p, 4096, PROT_READ | PROT_WRITE) == 0)
                return 6;
        munmap(p, 4096);
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        rw = open(path, O_RDWR | O_CLOEXEC);
        if (rw >= 0)
                return 7;
        if (ftruncate(fd, 0) == 0 || fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096) == 0)
                return 8;
        if (fchmod(fd, 0666) == 0 || fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL) == 0)
                return 9;
        if (ashm_region_unpin(r, 0, 0) >= 0)
                return 10; /* unpinning would let the reclaimer zero it */
        if (ashm_lookup("shared-config", ASHM_LOOKUP_WRITE, &r) != -EACCES)
                return 11;
        if (ashm_unpublish("shared-config") != -EPERM)
                return 12;
        ashm_region_close(r);
        return 0;
}

ASHM_TEST(broker, read_only_grant_holds_against_another_uid) {
        struct test_daemon d;
        ashm_region *r;
        char buf[16] = "";

        start_shared(&d);
        r = published("shared-config", "config", 0644, 0);
        as_user(NOBODY, NOBODY, NULL, 0, hostile_reader);
        assert_ok(ashm_region_read(r, 0, buf, 7));
        cr_assert_str_eq(buf, "config", "nothing the reader did changed it");
        ashm_region_close(r);
        daemon_stop(&d);
}

static int no_grant(void) {
        ashm_region *r;
        ashm_name_info *names;
        size_t n;

        if (ashm_lookup("private", 0, &r) != -ENOENT)
                return 1;
        if (ashm_lookup("private", ASHM_LOOKUP_WRITE, &r) != -ENOENT)
                return 2;
        if (ashm_unpublish("private") != -ENOENT)
                return 3;
        if (ashm_names(&names, &n) < 0 || n != 0)
                return 4;
        return 0;
}

ASHM_TEST(broker, no_grant_cannot_even_see_the_name) {
        struct test_daemon d;
        ashm_region *r;

        start_shared(&d);
        r = published("private", "secret", 0600, 0);
        as_user(NOBODY, NOBODY, NULL, 0, no_grant);
        ashm_region_close(r);
        daemon_stop(&d);
}

static int group_reader(void) {
        ashm_region *r;

        if (ashm_lookup("team", 0, &r) < 0)
                return 1;
        ashm_region_close(r);
        return ashm_lookup("team", ASHM_LOOKUP_WRITE, &r) == -EACCES ? 0 : 2;
}

static int outsider(void) {
        ashm_region *r;

        return ashm_lookup("team", 0, &r) == -ENOENT ? 0 : 1;
}

/* Group grants follow the peer's supplementary groups, as the kernel
 * recorded them (SO_PEERGROUPS), not its word. */
ASHM_TEST(broker, group_grant) {
        const gid_t team = 4242;
        struct test_daemon d;
        ashm_region *r;

        start_shared(&d);
        cr_assert(setegid(team) == 0);
        r = published("team", "plans", 0640, 0);
        cr_assert(setegid(0) == 0);
        as_user(NOBODY, NOBODY, &team, 1, group_reader);
        as_user(NOBODY, NOBODY, NULL, 0, outsider);
        ashm_region_close(r);
        daemon_stop(&d);
}
