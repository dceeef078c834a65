/* SPDX-License-Identifier: MIT */
/* Pins through a real ashmd: one state for every holder, real purges. */
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ashm.h"
#include "tests.h"

ASHM_SUITE(pin);

#define PAGES 16

static uint64_t pg(void) {
        return (uint64_t) sysconf(_SC_PAGESIZE);
}

/* A region whose page i holds the byte 'A' + i throughout. */
static ashm_region *patterned(const char *name) {
        ashm_region *r;
        char *p;

        assert_ok(ashm_region_create(name, PAGES * pg(), 0, &r));
        assert_ok(ashm_region_map(r, 0, 0, PROT_READ | PROT_WRITE, (void **) &p));
        for (int i = 0; i < PAGES; i++)
                memset(p + (uint64_t) i * pg(), 'A' + i, pg());
        assert_ok(ashm_region_unmap(r, p, 0));
        return r;
}

/* Page i holds its pattern (intact) or zeros (purged); anything else is
 * corruption. Returns 1 intact, 0 zeros. */
static int page_state(ashm_region *r, int i) {
        static char buf[65536];
        bool zero = true, intact = true;

        cr_assert(pg() <= sizeof(buf));
        cr_assert(pread(ashm_region_fd(r), buf, pg(), (off_t) ((uint64_t) i * pg())) == (ssize_t) pg());
        for (uint64_t k = 0; k < pg(); k++) {
                zero &= buf[k] == 0;
                intact &= buf[k] == 'A' + i;
        }
        cr_assert(zero || intact, "page %d is neither intact nor purged", i);
        return intact;
}

static uint64_t blocks(ashm_region *r) {
        struct stat st;

        cr_assert(fstat(ashm_region_fd(r), &st) == 0);
        return (uint64_t) st.st_blocks * 512;
}

ASHM_TEST(pin, private_state_without_daemon) {
        ashm_region *r = patterned("no-daemon");

        setenv("ASHM_SOCKET", "/nonexistent/ashmd.sock", 1);
        cr_assert_eq(assert_ok(ashm_region_get_pin_status(r, 0, 0)), ASHM_IS_PINNED);
        cr_assert_eq(assert_ok(ashm_region_unpin(r, 0, 4 * pg())), 0);
        cr_assert_eq(ashm_region_get_pin_status(r, 0, 0), ASHM_IS_UNPINNED);
        cr_assert_eq(ashm_region_get_pin_status(r, 4 * pg(), 0), ASHM_IS_PINNED);
        cr_assert_eq(ashm_region_pin(r, 0, 0), ASHM_NOT_PURGED);
        cr_assert_eq(ashm_region_get_pin_status(r, 0, 0), ASHM_IS_PINNED);
        assert_fail(ashm_purge(0, 0, NULL), ECONNREFUSED);
        ashm_region_close(r);
}

/* The "done when": created here, unpinned by an unrelated
 * process that got the fd over a socket, purged, and our pin says so,
 * with zeros in the purged pages and the pinned ones untouched. */
ASHM_TEST(pin, unpinned_elsewhere_purged_seen_here) {
        const char *argv[] = { "unpin", "4", "8", NULL };
        struct test_daemon d;
        ashm_region *r;
        uint64_t purged = 0, before;
        char msg[32];
        int sock;
        pid_t pid;

        daemon_start(&d);
        r = patterned("unpinned-elsewhere");
        cr_assert_eq(ashm_region_get_pin_status(r, 0, 0), ASHM_IS_PINNED);
        pid = spawn_peer(&sock, argv);
        assert_ok(ashm_region_send(sock, r, "r", 1));
        recv_text(sock, msg, sizeof(msg));
        cr_assert_str_eq(msg, "unpinned");
        /* One state for every holder: the peer's unpin is ours to see. */
        cr_assert_eq(ashm_region_get_pin_status(r, 4 * pg(), 8 * pg()), ASHM_IS_UNPINNED);
        cr_assert_eq(ashm_region_get_pin_status(r, 0, 4 * pg()), ASHM_IS_PINNED);
        cr_assert_eq(ashm_region_get_pin_status(r, 12 * pg(), 0), ASHM_IS_PINNED);

        before = blocks(r);
        assert_ok(ashm_purge(0, 0, &purged));
        cr_assert_eq(purged, 8 * pg());
        cr_assert_eq(blocks(r), before - 8 * pg(), "the pages really left memory");
        for (int i = 0; i < PAGES; i++)
                cr_assert_eq(page_state(r, i), i < 4 || i >= 12, "page %d", i);
        cr_assert_eq(ashm_region_pin(r, 0, 4 * pg()), ASHM_NOT_PURGED);
        cr_assert_eq(ashm_region_pin(r, 0, 0), ASHM_WAS_PURGED);
        cr_assert_eq(ashm_region_pin(r, 0, 0), ASHM_NOT_PURGED, "reported once");
        close(sock);
        wait_peer(pid);
        ashm_region_close(r);
        daemon_stop(&d);
}

ASHM_TEST(pin, pinned_pages_never_purged) {
        struct test_daemon d;
        ashm_region *r;
        uint64_t purged;

        daemon_start(&d);
        r = patterned("pinned-stays");
        for (int i = 0; i < PAGES; i += 2)
                assert_ok(ashm_region_unpin(r, (uint64_t) i * pg(), pg()));
        assert_ok(ashm_purge(0, 0, &purged));
        cr_assert_eq(purged, PAGES / 2 * pg());
        for (int i = 0; i < PAGES; i++)
                cr_assert_eq(page_state(r, i), i % 2, "page %d", i);
        for (int i = 0; i < PAGES; i++)
                cr_assert_eq(ashm_region_pin(r, (uint64_t) i * pg(), pg()), i % 2 ? ASHM_NOT_PURGED : ASHM_WAS_PURGED);
        ashm_region_close(r);
        daemon_stop(&d);
}

ASHM_TEST(pin, purge_takes_least_recently_unpinned_first) {
        struct test_daemon d;
        ashm_region *old, *young;
        uint64_t purged;

        daemon_start(&d);
        old = patterned("old");
        young = patterned("young");
        assert_ok(ashm_region_unpin(old, 0, 0));
        assert_ok(ashm_region_unpin(young, 0, 0));
        assert_ok(ashm_purge(PAGES * pg(), 0, &purged));
        cr_assert_eq(purged, PAGES * pg());
        cr_assert_eq(ashm_region_pin(old, 0, 0), ASHM_WAS_PURGED);
        cr_assert_eq(ashm_region_pin(young, 0, 0), ASHM_NOT_PURGED);
        cr_assert_eq(page_state(young, 3), 1);
        ashm_region_close(old);
        ashm_region_close(young);
        daemon_stop(&d);
}

/* The cap alone: no purge request, the daemon acts on its timer. Waits
 * for the condition (pages released), bounded, never a fixed sleep. */
ASHM_TEST(pin, cap_purges_excess) {
        const char *args[] = { "--max-unpinned", "32K", "--interval", "20", NULL };
        struct test_daemon d;
        ashm_region *r;
        struct timespec tick = { 0, 5 * 1000 * 1000 };
        uint64_t full;
        int waited = 0;

        daemon_start_args(&d, args);
        r = patterned("capped");
        full = blocks(r);
        assert_ok(ashm_region_unpin(r, 0, 0));
        while (blocks(r) > full - (PAGES * pg() - 32768) && waited++ < 2000)
                nanosleep(&tick, NULL);
        cr_assert_eq(blocks(r), full - (PAGES * pg() - 32768), "the daemon brought unpinned memory under the cap");
        cr_assert_eq(ashm_region_pin(r, 0, 0), ASHM_WAS_PURGED);
        ashm_region_close(r);
        daemon_stop(&d);
}

ASHM_TEST(pin, memoryfile_read_write_of_purged_fails) {
        struct test_daemon d;
        ashm_region *r;
        char buf[8];

        daemon_start(&d);
        r = patterned("memoryfile");
        assert_ok(ashm_region_unpin(r, 0, 0));
        assert_ok(ashm_region_read(r, 0, buf, sizeof(buf))); /* unpinned, not purged: readable */
        cr_assert_eq(buf[0], 'A');
        assert_ok(ashm_purge(0, 0, NULL));
        assert_fail(ashm_region_read(r, 0, buf, sizeof(buf)), ENODATA);
        assert_fail(ashm_region_write(r, pg(), "x", 1), ENODATA);
        cr_assert_eq(ashm_region_pin(r, 0, 0), ASHM_WAS_PURGED);
        assert_ok(ashm_region_write(r, 0, "fresh", 5));
        assert_ok(ashm_region_read(r, 0, buf, 5));
        cr_assert(memcmp(buf, "fresh", 5) == 0);
        ashm_region_close(r);
        daemon_stop(&d);
}

/* A holder that dies: its unpins stay, the region stays (we hold it). */
ASHM_TEST(pin, unpinner_killed) {
        const char *argv[] = { "unpin", "0", "0", NULL };
        struct test_daemon d;
        ashm_region *r;
        char msg[32];
        int sock;
        pid_t pid;

        daemon_start(&d);
        r = patterned("killed-unpinner");
        assert_ok(ashm_region_pin(r, 0, 0)); /* we are a registered holder too */
        pid = spawn_peer(&sock, argv);
        assert_ok(ashm_region_send(sock, r, "r", 1));
        recv_text(sock, msg, sizeof(msg));
        kill(pid, SIGKILL);
        cr_assert(waitpid(pid, NULL, 0) == pid);
        tests_peer_log_take(pid);
        close(sock);
        assert_ok(ashm_purge(0, 0, NULL));
        cr_assert_eq(ashm_region_pin(r, 0, 0), ASHM_WAS_PURGED);
        cr_assert_eq(page_state(r, 0), 0);
        ashm_region_close(r);
        daemon_stop(&d);
}

/* A daemon killed and started again: holders keep their state block and
 * the new daemon takes it over; pins are never reported unpurged for
 * purged pages. */
ASHM_TEST(pin, daemon_killed_and_restarted) {
        struct test_daemon d;
        ashm_region *r;
        uint64_t purged = 0;

        daemon_start(&d);
        r = patterned("restart");
        assert_ok(ashm_region_unpin(r, 0, 8 * pg()));
        daemon_kill(&d);
        daemon_spawn(&d, NULL); /* same socket path; the old socket file is stale */
        /* The next request reconnects; the next unpin registers again,
         * offering the state block, which the new daemon takes over. */
        assert_ok(ashm_purge(0, 0, &purged));
        cr_assert_eq(purged, 0, "the new daemon knows no region yet");
        assert_ok(ashm_region_unpin(r, 8 * pg(), pg()));
        assert_ok(ashm_purge(0, 0, &purged));
        cr_assert_eq(purged, 9 * pg(), "the new daemon took over the old unpins");
        cr_assert_eq(ashm_region_pin(r, 0, 0), ASHM_WAS_PURGED);
        for (int i = 0; i < PAGES; i++)
                cr_assert_eq(page_state(r, i), i >= 9, "page %d", i);
        ashm_region_close(r);
        daemon_stop(&d);
}

ASHM_TEST(pin, arguments) {
        struct test_daemon d;
        ashm_region *r;

        daemon_start(&d);
        r = patterned("args");
        assert_fail(ashm_region_pin(r, 1, 0), EINVAL);
        assert_fail(ashm_region_unpin(r, 0, pg() + 1), EINVAL);
        assert_fail(ashm_region_get_pin_status(r, (PAGES + 1) * pg(), 0), EINVAL);
        assert_fail(ashm_region_unpin(r, PAGES * pg(), pg()), EINVAL);
        assert_ok(ashm_region_unpin(r, PAGES * pg(), 0)); /* empty, at the end */
        assert_fail(ashm_purge(0, 8, NULL), EINVAL);
        if (geteuid() != 0) {
                assert_fail(ashm_purge(0, ASHM_PURGE_ALL_USERS, NULL), EPERM);
        }
        assert_fail(ashm_region_get_pin_status(NULL, 0, 0), EINVAL);
        ashm_region_close(r);
        daemon_stop(&d);
}

/* A holder whose fd cannot write the region may not make its pages
 * purgeable (that would destroy contents it cannot write): it sees the
 * pin state, and pin/unpin are refused. */
ASHM_TEST(pin, read_only_holder_cannot_unpin) {
        struct test_daemon d;
        ashm_region *r, *ro;
        char path[64];
        int fd;

        daemon_start(&d);
        r = patterned("read-only-holder");
        snprintf(path, sizeof(path), "/proc/self/fd/%d", ashm_region_fd(r));
        fd = open(path, O_RDONLY | O_CLOEXEC);
        cr_assert(fd >= 0);
        assert_ok(ashm_region_adopt(fd, 0, &ro));
        cr_assert_eq(ashm_region_get_pin_status(ro, 0, 0), ASHM_IS_PINNED);
        assert_fail(ashm_region_unpin(ro, 0, 0), EPERM);
        assert_fail(ashm_region_pin(ro, 0, 0), EPERM);
        assert_ok(ashm_region_unpin(r, 0, pg()));
        cr_assert_eq(ashm_region_get_pin_status(ro, 0, pg()), ASHM_IS_UNPINNED, "it sees the writer's unpin");
        ashm_region_close(ro);
        ashm_region_close(r);
        daemon_stop(&d);
}

/* After a daemon died, a process that never used a region's pins may be
 * the first to register it with the new daemon: the purge history is
 * then unknown, and pins must say purged, never the other way. Regions
 * born after the restart are not affected. */
ASHM_TEST(pin, restart_first_registrant_is_told_purged) {
        const char *argv[] = { "pin", "0", "8", NULL };
        struct test_daemon d;
        ashm_region *r, *fresh;
        char msg[32];
        int sock;
        pid_t pid;

        daemon_start(&d);
        r = patterned("restart-conservative");
        assert_ok(ashm_region_unpin(r, 0, 8 * pg()));
        assert_ok(ashm_purge(0, 0, NULL));
        daemon_kill(&d);
        daemon_spawn(&d, NULL);
        pid = spawn_peer(&sock, argv);
        assert_ok(ashm_region_send(sock, r, "r", 1));
        recv_text(sock, msg, sizeof(msg));
        cr_assert_str_eq(msg, "pin=1", "the peer's first pin after the restart reports the purge");
        close(sock);
        wait_peer(pid);
        cr_assert_eq(ashm_region_pin(r, 0, 8 * pg()), ASHM_WAS_PURGED);
        assert_ok(ashm_region_create("born-after", 4 * pg(), 0, &fresh));
        assert_ok(ashm_region_unpin(fresh, 0, 0));
        cr_assert_eq(ashm_region_pin(fresh, 0, 0), ASHM_NOT_PURGED, "a region born after the restart is exact");
        ashm_region_close(fresh);
        ashm_region_close(r);
        daemon_stop(&d);
}

/* The oldest chunk's unpinned pages need not be first in it: the purge
 * must find them there rather than take a younger chunk. */
ASHM_TEST(pin, purge_finds_old_pages_past_pinned_ones) {
        struct test_daemon d;
        ashm_region *r;
        uint64_t purged;

        daemon_start(&d);
        assert_ok(ashm_region_create("order", 64 * pg(), 0, &r));
        assert_ok(ashm_region_write(r, 0, "x", 1));
        assert_ok(ashm_region_write(r, 34 * pg(), "x", 1));
        assert_ok(ashm_region_unpin(r, 34 * pg(), pg())); /* older, in the second chunk, not first in it */
        assert_ok(ashm_region_unpin(r, 0, pg()));
        assert_ok(ashm_purge(pg(), 0, &purged));
        cr_assert_eq(purged, pg());
        cr_assert_eq(ashm_region_pin(r, 34 * pg(), pg()), ASHM_WAS_PURGED, "the least recently unpinned page went");
        cr_assert_eq(ashm_region_pin(r, 0, pg()), ASHM_NOT_PURGED);
        ashm_region_close(r);
        daemon_stop(&d);
}
