/* SPDX-License-Identifier: MIT */
/*
 * ashm-test-attacker: the hostile peer of test-security.c, run as another
 * uid (setpriv). Each mode performs one attack of issue 8 on the daemon
 * at $ASHM_SOCKET, with raw protocol messages where the library would
 * not send them, and exits 0 when every step failed as it must (or, for
 * the honest modes, worked). What went wrong goes to stderr.
 *
 *   ro-adopt NAME        look NAME up read-only, then try to hand the
 *                        daemon a pin-state block of our own for it and
 *                        to write the block the daemon gives us
 *   squat NAME           publish NAME (0666, kept), and exit
 *   lookup NAME UID      NAME must resolve to UID's region
 *   big                  register sparse memfds of 4 TiB and 2^48 bytes
 *   hammer C R N         sit at quotas of C connections, R regions, N
 *                        names (checked exactly), flood the log with
 *                        malformed messages, then say so on fd 3 and
 *                        hold everything until fd 3 closes
 *   honest NAME ROOTNAME publish NAME and use it; ROOTNAME is root's
 *   hold-lists N         ask for the name list N times and keep every
 *                        reply: the oldest must have been taken back
 *   copies               make the daemon copy our own regions (a
 *                        read-only lookup of our own name): a sparse
 *                        TiB costs nothing, 4 MiB of data past a 1M
 *                        quota is refused
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "ashm.h"
#include "pinstate.h"
#include "raw-proto.h"

static const char *sock;

#define FAIL(...) (fprintf(stderr, "attacker: " __VA_ARGS__), fputc('\n', stderr), 1)

static int memfd_of(const char *name, uint64_t size) {
        int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);

        if (fd < 0 || ftruncate(fd, (off_t) size) < 0)
                return -1;
        return fd;
}

static int mode_ro_adopt(const char *name) {
        struct proto_lookup_rep lrep;
        struct proto_register_rep rep;
        int c = raw_dial(sock), region = -1, evil, block = -1, r, rw;
        uint64_t npages;
        size_t len;
        void *map;
        char path[64];
        struct stat st;

        if (c < 0)
                return FAIL("dial: %s", strerror(-c));
        r = raw_lookup(c, name, PROTO_ACCESS_READ, &lrep, &region);
        if (r < 0)
                return FAIL("lookup %s: %s", name, strerror(-r));
        if (fstat(region, &st) < 0)
                return FAIL("fstat: %m");
        /* A valid block of our own, every page unpinned with the oldest
         * stamp: what the reclaimer would purge first. */
        npages = ((uint64_t) st.st_size + 4095) / 4096;
        len = ashm__pinstate_size(npages);
        evil = memfd_of("evil-pinstate", len);
        map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, evil, 0);
        if (evil < 0 || map == MAP_FAILED || ashm__pinstate_init(map, len, npages) < 0)
                return FAIL("cannot make a block");
        r = raw_register(c, region, evil, &rep, &block);
        if (r != -EPERM)
                return FAIL("REGISTER with a block of ours from a read-only fd: %s, expected EPERM",
                            r < 0 ? strerror(-r) : "accepted");
        r = raw_register(c, region, -1, &rep, &block);
        if (r < 0)
                return FAIL("plain REGISTER: %s", strerror(-r));
        if (!(rep.flags & PROTO_REGISTER_READ_ONLY))
                return FAIL("a read-only holder was not told READ_ONLY");
        if (fcntl(block, F_GETFL) < 0 || (fcntl(block, F_GETFL) & O_ACCMODE) != O_RDONLY)
                return FAIL("the block fd we got can write");
        snprintf(path, sizeof(path), "/proc/self/fd/%d", block);
        rw = open(path, O_RDWR | O_CLOEXEC);
        if (rw >= 0 || errno != EACCES)
                return FAIL("reopening the block for writing: %s", rw >= 0 ? "worked" : strerror(errno));
        if (mmap(NULL, rep.state_len, PROT_READ | PROT_WRITE, MAP_SHARED, block, 0) != MAP_FAILED)
                return FAIL("the block maps writable");
        snprintf(path, sizeof(path), "/proc/self/fd/%d", region);
        rw = open(path, O_RDWR | O_CLOEXEC);
        if (rw >= 0)
                return FAIL("reopening the region for writing worked");
        return 0;
}

static int mode_squat(const char *name) {
        int c = raw_dial(sock), fd = memfd_of("squatter", 4096), r;

        if (c < 0 || fd < 0)
                return FAIL("setup");
        r = raw_publish(c, name, fd, 0666, PROTO_PUBLISH_KEEP);
        return r < 0 ? FAIL("publish %s: %s", name, strerror(-r)) : 0;
}

static int mode_lookup(const char *name, const char *uid) {
        struct proto_lookup_rep rep;
        int c = raw_dial(sock), fd = -1, r;

        if (c < 0)
                return FAIL("dial");
        r = raw_lookup(c, name, PROTO_ACCESS_READ, &rep, &fd);
        if (r < 0)
                return FAIL("lookup %s: %s", name, strerror(-r));
        if (rep.uid != (uint32_t) strtoul(uid, NULL, 10))
                return FAIL("lookup %s gave uid %u's region, expected %s's", name, rep.uid, uid);
        return 0;
}

static int mode_big(void) {
        static const uint64_t sizes[] = {UINT64_C(4) << 40, UINT64_C(1) << 48};
        int c = raw_dial(sock);

        if (c < 0)
                return FAIL("dial");
        for (size_t i = 0; i < 2; i++) {
                int fd = memfd_of("sparse", sizes[i]), r;

                if (fd < 0)
                        return FAIL("memfd of %llu bytes: %m", (unsigned long long) sizes[i]);
                r = raw_register(c, fd, -1, NULL, NULL);
                if (r != -EDQUOT)
                        return FAIL("REGISTER of a sparse %llu-byte memfd: %s, expected EDQUOT",
                                    (unsigned long long) sizes[i], r < 0 ? strerror(-r) : "accepted");
                close(fd);
        }
        close(c);
        return 0;
}

/* Open connections until refused: exactly max must be accepted. */
static int fill_connections(int *conns, unsigned max) {
        struct proto_status_rep st;
        int extra, r;

        for (unsigned i = 0; i < max; i++) {
                /* A connection we closed just before may not be counted
                 * out yet: the daemon sees closes and new connections in
                 * no set order. */
                for (int tries = 0;; tries++) {
                        conns[i] = raw_dial(sock);
                        r = conns[i] < 0 ? conns[i]
                                         : raw_ask(conns[i], PROTO_STATUS, NULL, 0, NULL, 0, &st, sizeof(st), NULL);
                        if (r >= 0)
                                break;
                        if (conns[i] >= 0)
                                close(conns[i]);
                        if (tries == 100)
                                return FAIL("connection %u of %u refused: %s", i + 1, max, strerror(-r));
                        usleep(10000);
                }
        }
        extra = raw_dial(sock);
        r = extra < 0 ? extra : raw_ask(extra, PROTO_STATUS, NULL, 0, NULL, 0, &st, sizeof(st), NULL);
        if (r != -ECONNRESET)
                return FAIL("connection %u past the quota: %s, expected a hang-up", max + 1,
                            r < 0 ? strerror(-r) : "served");
        close(extra);
        return 0;
}

static int fill_regions(int c, unsigned max) {
        for (unsigned i = 0;; i++) {
                int fd = memfd_of("hammer", 4096), r;

                if (fd < 0)
                        return FAIL("memfd: %m");
                r = raw_register(c, fd, -1, NULL, NULL);
                close(fd);
                if (r == -EDQUOT)
                        return i == max ? 0 : FAIL("EDQUOT after %u regions, quota %u", i, max);
                if (r < 0 || i > max)
                        return FAIL("region %u: %s", i + 1, r < 0 ? strerror(-r) : "past the quota");
        }
}

static int fill_names(int c, unsigned max) {
        int fd = memfd_of("hammer-name", 4096);

        for (unsigned i = 0;; i++) {
                char name[64];
                int r;

                snprintf(name, sizeof(name), "hammer-%u", i);
                r = raw_publish(c, name, fd, 0644, 0);
                if (r == -EDQUOT)
                        return i == max ? 0 : FAIL("EDQUOT after %u names, quota %u", i, max);
                if (r < 0 || i > max)
                        return FAIL("name %u: %s", i + 1, r < 0 ? strerror(-r) : "past the quota");
        }
}

/* Malformed datagrams, each on a connection of its own (the daemon hangs
 * up on each): in the slot the last of our connections leaves free. */
static int flood(int *last) {
        static const char junk[32] = "not a header";

        close(*last);
        for (int i = 0; i < 200; i++) {
                char buf[PROTO_MSG_MAX];
                int fd = -1;

                for (int tries = 0; tries < 1000 && fd < 0; tries++) {
                        fd = raw_dial(sock);
                        if (fd >= 0 && send(fd, junk, sizeof(junk), MSG_NOSIGNAL) < 0) {
                                close(fd);
                                fd = -1;
                        }
                }
                if (fd < 0)
                        return FAIL("cannot reach the daemon to flood it");
                while (recv(fd, buf, sizeof(buf), 0) > 0)
                        ;
                close(fd);
        }
        *last = -1;
        return 0;
}

static int mode_hammer(unsigned max_conns, unsigned max_regions, unsigned max_names) {
        int *conns = calloc(max_conns, sizeof(int));
        char c;

        if (!conns || max_conns < 2)
                return FAIL("bad arguments");
        if (mode_big() || fill_connections(conns, max_conns) || fill_regions(conns[0], max_regions) ||
            fill_names(conns[1], max_names) || flood(&conns[max_conns - 1]))
                return 1;
        if (write(3, "R", 1) != 1)
                return FAIL("cannot say ready: %m");
        while (read(3, &c, 1) > 0)
                ;
        free(conns);
        return 0;
}

/* An honest user of its own uid: its publish, lookup and pins work. */
static int mode_honest(const char *name, const char *root_name) {
        struct proto_register_rep rep;
        struct proto_lookup_rep lrep;
        ashm_region *region;
        int c = raw_dial(sock), fd = -1, r;

        if (c < 0)
                return FAIL("dial: %s", strerror(-c));
        r = ashm_region_create(name, 16 * 4096, 0, &region);
        if (r >= 0)
                r = ashm_publish(region, name, 0644, 0);
        if (r < 0)
                return FAIL("publish %s: %s", name, strerror(-r));
        r = raw_lookup(c, name, PROTO_ACCESS_READ | PROTO_ACCESS_WRITE, &lrep, &fd);
        if (r < 0 || lrep.uid != getuid())
                return FAIL("lookup of our own %s: %s", name, r < 0 ? strerror(-r) : "another uid's");
        close(fd);
        fd = -1;
        r = raw_lookup(c, root_name, PROTO_ACCESS_READ, &lrep, &fd);
        if (r < 0 || lrep.uid != 0)
                return FAIL("lookup of root's %s: %s", root_name, r < 0 ? strerror(-r) : "another uid's");
        close(fd);
        fd = -1;
        r = raw_register(c, ashm_region_fd(region), -1, &rep, &fd);
        if (r < 0 || (rep.flags & PROTO_REGISTER_READ_ONLY))
                return FAIL("REGISTER: %s", r < 0 ? strerror(-r) : "read-only");
        close(fd);
        if ((r = ashm_region_unpin(region, 0, 0)) < 0 || (r = ashm_region_pin(region, 0, 0)) < 0)
                return FAIL("pins: %s", strerror(-r));
        ashm_region_close(region);
        return 0;
}

static bool list_zeroed(int fd, uint64_t count) {
        size_t len = (size_t) count * sizeof(struct proto_name_entry);
        const unsigned char *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
        bool zero = p != MAP_FAILED;

        for (size_t i = 0; zero && i < len; i++)
                zero = p[i] == 0;
        if (p != MAP_FAILED)
                munmap((void *) p, len);
        return zero;
}

static int mode_hold_lists(unsigned n) {
        int c = raw_dial(sock), *fds = calloc(n, sizeof(int)), r;
        struct proto_list_rep rep = {0};

        if (c < 0 || !fds || n < 2)
                return FAIL("setup");
        for (unsigned i = 0; i < n; i++) {
                fds[i] = -1;
                r = raw_ask(c, PROTO_NAMES, NULL, 0, NULL, 0, &rep, sizeof(rep), &fds[i]);
                if (r < 0 || fds[i] < 0)
                        return FAIL("NAMES %u: %s", i + 1, strerror(-r));
                if (rep.count == 0)
                        return FAIL("no names to list");
        }
        r = 0;
        if (!list_zeroed(fds[0], rep.count))
                r = FAIL("the first of %u lists we hold still takes the daemon's memory", n);
        else if (list_zeroed(fds[n - 1], rep.count))
                r = FAIL("the last list was taken back before we could read it");
        close_many(fds, n);
        free(fds);
        return r;
}

static int mode_copies(void) {
        struct proto_lookup_rep rep;
        int c = raw_dial(sock), sparse = memfd_of("sparse", UINT64_C(1) << 40), full = memfd_of("full", 4 << 20);
        int copy = -1, r;
        char byte = 0;

        if (c < 0 || sparse < 0 || full < 0 || pwrite(sparse, "x", 1, (off_t) 1 << 39) != 1)
                return FAIL("setup: %m");
        for (off_t off = 0; off < 4 << 20; off += 4096)
                if (pwrite(full, "y", 1, off) != 1)
                        return FAIL("fill: %m");
        if ((r = raw_publish(c, "copy-sparse", sparse, 0400, 0)) < 0 ||
            (r = raw_publish(c, "copy-full", full, 0400, 0)) < 0)
                return FAIL("publish: %s", strerror(-r));
        r = raw_lookup(c, "copy-sparse", PROTO_ACCESS_READ, &rep, &copy);
        if (r < 0 || !(rep.flags & PROTO_LOOKUP_COPY))
                return FAIL("read-only lookup of our sparse TiB: %s", r < 0 ? strerror(-r) : "not a copy");
        if (pread(copy, &byte, 1, (off_t) 1 << 39) != 1 || byte != 'x')
                return FAIL("the copy lost the data");
        close(copy);
        r = raw_lookup(c, "copy-full", PROTO_ACCESS_READ, &rep, &copy);
        if (r != -EDQUOT)
                return FAIL("a 4 MiB copy past a 1M quota: %s, expected EDQUOT", r < 0 ? strerror(-r) : "made");
        return 0;
}

int main(int argc, char **argv) {
        sock = getenv("ASHM_SOCKET");
        if (!sock || argc < 2)
                return FAIL("usage: ASHM_SOCKET=PATH ashm-test-attacker MODE ARGS");
        if (strcmp(argv[1], "ro-adopt") == 0 && argc == 3)
                return mode_ro_adopt(argv[2]);
        if (strcmp(argv[1], "squat") == 0 && argc == 3)
                return mode_squat(argv[2]);
        if (strcmp(argv[1], "lookup") == 0 && argc == 4)
                return mode_lookup(argv[2], argv[3]);
        if (strcmp(argv[1], "big") == 0)
                return mode_big();
        if (strcmp(argv[1], "hammer") == 0 && argc == 5)
                return mode_hammer((unsigned) atoi(argv[2]), (unsigned) atoi(argv[3]), (unsigned) atoi(argv[4]));
        if (strcmp(argv[1], "hold-lists") == 0 && argc == 3)
                return mode_hold_lists((unsigned) atoi(argv[2]));
        if (strcmp(argv[1], "copies") == 0)
                return mode_copies();
        if (strcmp(argv[1], "honest") == 0 && argc == 4)
                return mode_honest(argv[2], argv[3]);
        return FAIL("unknown mode %s", argv[1]);
}
