/* SPDX-License-Identifier: MIT */
/*
 * ashm-test-peer: the other process in cross-process tests. The tests
 * exec it (an unrelated program image, not a fork of the test) with a
 * connected AF_UNIX socket as fd 3 and a mode:
 *
 *   recv-echo      receive a region, answer "got:<payload>|<first bytes>",
 *                  then write "peer was here" at offset 0 with write() on
 *                  the fd, answer "done"
 *   send-new N S   create region N of S bytes holding "from peer", send it
 *                  with payload "new", wait for the socket to close
 *   try-write      receive a region and try to write it by every route;
 *                  answer "write=E map=E mmap=E mprotect=E reopen=E" with
 *                  errno names ("ok" where the write went through)
 *   send-pipe      send a pipe's read end (not a memfd) with payload "pipe"
 *   send-fds K     send K copies of a memfd in one message
 *   hold           receive a region, map it, close the fd, answer
 *                  "mapped", keep the mapping until the socket closes
 *   unpin F N      receive a region, unpin pages [F, F+N) (N 0: to the
 *                  end), answer "unpinned", wait for the socket to close
 *   pin F N        receive a region, pin pages [F, F+N), answer
 *                  "pin=<result>", wait for the socket to close
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ashm.h"
#include "fd-util.h"

#define SOCK 3

static int reply(const char *msg) {
        return ashm_send_fds(SOCK, NULL, 0, msg, strlen(msg));
}

static void wait_for_close(void) {
        char c;

        while (read(SOCK, &c, 1) > 0)
                ;
}

static const char *result(int r) {
        return r >= 0 ? "ok" : strerrorname_np(-r);
}

static int recv_region(ashm_region **ret, char *payload, size_t len) {
        size_t n = 0;
        int r = ashm_region_recv(SOCK, 0, payload, len - 1, &n, ret);

        payload[r < 0 ? 0 : n] = '\0';
        return r;
}

static int mode_recv_echo(void) {
        ashm_region *region;
        char payload[64], contents[64] = "", msg[160];
        static const char mark[] = "peer was here";
        uint64_t size;
        int r;

        r = recv_region(&region, payload, sizeof(payload));
        if (r < 0)
                return r;
        r = ashm_region_get_size(region, &size);
        if (r >= 0)
                r = ashm_region_read(region, 0, contents, MIN(size, sizeof(contents) - 1));
        if (r >= 0) {
                snprintf(msg, sizeof(msg), "got:%s|%s", payload, contents);
                r = reply(msg);
        }
        if (r >= 0)
                r = pwrite_full(ashm_region_fd(region), mark, sizeof(mark), 0);
        if (r >= 0)
                r = reply("done");
        ashm_region_close(region);
        return r;
}

static int mode_send_new(const char *name, const char *size) {
        ashm_region *region;
        int r;

        r = ashm_region_create(name, strtoull(size, NULL, 0), 0, &region);
        if (r < 0)
                return r;
        r = ashm_region_write(region, 0, "from peer", 10);
        if (r >= 0)
                r = ashm_region_send(SOCK, region, "new", 3);
        ashm_region_close(region);
        wait_for_close();
        return r;
}

static int try_reopen_write(int fd) {
        char path[64];
        int rw, r;

        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        rw = open(path, O_RDWR | O_CLOEXEC);
        if (rw < 0)
                return -errno;
        r = pwrite_full(rw, "x", 1, 0);
        safe_close(rw);
        return r;
}

static int try_mprotect(ashm_region *region) {
        void *p;
        int r = ashm_region_map(region, 0, 0, PROT_READ, &p);

        if (r < 0)
                return r;
        r = mprotect(p, page_size(), PROT_READ | PROT_WRITE) < 0 ? -errno : 0;
        ashm_region_unmap(region, p, 0);
        return r;
}

static int mode_try_write(void) {
        ashm_region *region;
        char payload[16], msg[160];
        void *p;
        int fd, w, m, raw, mp, ro;

        if (recv_region(&region, payload, sizeof(payload)) < 0)
                return -EBADMSG;
        fd = ashm_region_fd(region);
        w = pwrite(fd, "x", 1, 0) < 0 ? -errno : 0;
        m = ashm_region_map(region, 0, 0, PROT_READ | PROT_WRITE, &p);
        if (m >= 0)
                ashm_region_unmap(region, p, 0);
        p = mmap(NULL, page_size(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        raw = p == MAP_FAILED ? -errno : 0;
        if (p != MAP_FAILED)
                munmap(p, page_size());
        mp = try_mprotect(region);
        ro = try_reopen_write(fd);
        snprintf(msg, sizeof(msg), "write=%s map=%s mmap=%s mprotect=%s reopen=%s", result(w), result(m),
                 result(raw), result(mp), result(ro));
        ashm_region_close(region);
        return reply(msg);
}

static int mode_send_pipe(void) {
        int p[2], r;

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        r = ashm_send_fd(SOCK, p[0], "pipe", 4);
        close_many(p, 2);
        wait_for_close();
        return r;
}

static int mode_send_fds(const char *count) {
        int fds[ASHM_FDS_MAX], k = atoi(count), fd, r;

        fd = memfd_create("many", MFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        for (int i = 0; i < k && i < ASHM_FDS_MAX; i++)
                fds[i] = fd;
        r = ashm_send_fds(SOCK, fds, (size_t) MIN(k, ASHM_FDS_MAX), "many", 4);
        safe_close(fd);
        wait_for_close();
        return r;
}

static int mode_hold(void) {
        ashm_region *region;
        char payload[16];
        void *p;
        int r;

        r = recv_region(&region, payload, sizeof(payload));
        if (r < 0)
                return r;
        r = ashm_region_map(region, 0, 0, PROT_READ, &p);
        ashm_region_close(region); /* the mapping alone keeps it */
        if (r < 0)
                return r;
        r = reply("mapped");
        wait_for_close();
        munmap(p, page_size());
        return r;
}

static int mode_pin_op(bool unpin, const char *first, const char *count) {
        uint64_t page = page_size(), f = strtoull(first, NULL, 0), n = strtoull(count, NULL, 0);
        ashm_region *region;
        char payload[16], msg[32];
        int r;

        r = recv_region(&region, payload, sizeof(payload));
        if (r < 0)
                return r;
        r = unpin ? ashm_region_unpin(region, f * page, n * page) : ashm_region_pin(region, f * page, n * page);
        if (r >= 0) {
                if (unpin)
                        snprintf(msg, sizeof(msg), "unpinned");
                else
                        snprintf(msg, sizeof(msg), "pin=%d", r);
                r = reply(msg);
        }
        if (r >= 0)
                wait_for_close();
        ashm_region_close(region);
        return r;
}

int main(int argc, char **argv) {
        int r = -EINVAL;

        if (argc < 2) {
                fprintf(stderr, "usage: ashm-test-peer MODE [ARGS]\n");
                return 2;
        }
        if (strcmp(argv[1], "recv-echo") == 0)
                r = mode_recv_echo();
        else if (strcmp(argv[1], "send-new") == 0 && argc == 4)
                r = mode_send_new(argv[2], argv[3]);
        else if (strcmp(argv[1], "try-write") == 0)
                r = mode_try_write();
        else if (strcmp(argv[1], "send-pipe") == 0)
                r = mode_send_pipe();
        else if (strcmp(argv[1], "send-fds") == 0 && argc == 3)
                r = mode_send_fds(argv[2]);
        else if (strcmp(argv[1], "hold") == 0)
                r = mode_hold();
        else if ((strcmp(argv[1], "unpin") == 0 || strcmp(argv[1], "pin") == 0) && argc == 4)
                r = mode_pin_op(argv[1][0] == 'u', argv[2], argv[3]);
        if (r < 0) {
                fprintf(stderr, "ashm-test-peer %s: %s\n", argv[1], strerror(-r));
                return 1;
        }
        return 0;
}
