/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ashm.h"
#include "tests.h"

ASHM_SUITE(fdpass);

static void seqpacket_pair(int sv[2]) {
        cr_assert(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
}

static void same_inode(int a, int b) {
        struct stat sa, sb;

        cr_assert(fstat(a, &sa) == 0 && fstat(b, &sb) == 0);
        cr_assert(sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev, "the received fd is the same file");
}

ASHM_TEST(fdpass, send_recv_region_in_process) {
        ashm_region *a, *b;
        char payload[16] = "";
        size_t len = 0;
        int sv[2];

        seqpacket_pair(sv);
        assert_ok(ashm_region_create("passed", 4096, 0, &a));
        assert_ok(ashm_region_send(sv[0], a, "hello", 5));
        assert_ok(ashm_region_recv(sv[1], 0, payload, sizeof(payload), &len, &b));
        cr_assert_eq(len, 5);
        cr_assert_str_eq(payload, "hello");
        same_inode(ashm_region_fd(a), ashm_region_fd(b));
        cr_assert(fcntl(ashm_region_fd(b), F_GETFD) & FD_CLOEXEC, "received fds are close-on-exec");
        cr_assert_str_eq(ashm_region_name(b), "passed");
        ashm_region_close(a);
        ashm_region_close(b);
        close_many(sv, 2);
}

ASHM_TEST(fdpass, several_fds_and_empty_payload) {
        int sv[2], fds[3], got[ASHM_FDS_MAX];
        size_t n = 0, len = 0;
        char buf[4];

        seqpacket_pair(sv);
        for (int i = 0; i < 3; i++)
                fds[i] = memfd_create("several", MFD_CLOEXEC);
        assert_ok(ashm_send_fds(sv[0], fds, 3, NULL, 0));
        assert_ok(ashm_recv_fds(sv[1], got, ELEMENTSOF(got), &n, buf, sizeof(buf), &len));
        cr_assert_eq(n, 3);
        cr_assert_eq(len, 1, "an empty payload travels as one NUL byte");
        cr_assert_eq(buf[0], '\0');
        for (int i = 0; i < 3; i++)
                same_inode(fds[i], got[i]);
        close_many(fds, 3);
        close_many(got, 3);
        close_many(sv, 2);
}

ASHM_TEST(fdpass, empty_payload_into_no_buffer) {
        ashm_region *a, *b;
        size_t len = 9;
        int sv[2];

        seqpacket_pair(sv);
        assert_ok(ashm_region_create("nobuf", 4096, 0, &a));
        assert_ok(ashm_region_send(sv[0], a, NULL, 0));
        assert_ok(ashm_region_recv(sv[1], 0, NULL, 0, &len, &b));
        cr_assert_eq(len, 0);
        ashm_region_close(b);
        close(sv[0]);
        assert_fail(ashm_recv_fd(sv[1], NULL, 0, NULL), ECONNRESET);
        ashm_region_close(a);
        close(sv[1]);
}

ASHM_TEST(fdpass, payload_only) {
        int sv[2], got[1];
        size_t n = 9, len = 0;
        char buf[8] = "";

        seqpacket_pair(sv);
        assert_ok(ashm_send_fds(sv[0], NULL, 0, "abc", 3));
        assert_ok(ashm_recv_fds(sv[1], got, 1, &n, buf, sizeof(buf), &len));
        cr_assert_eq(n, 0);
        cr_assert_eq(len, 3);
        close_many(sv, 2);
}

ASHM_TEST(fdpass, recv_fd_requires_exactly_one) {
        int sv[2], fds[2];
        char buf[4];

        seqpacket_pair(sv);
        fds[0] = memfd_create("one", MFD_CLOEXEC);
        fds[1] = memfd_create("two", MFD_CLOEXEC);
        assert_ok(ashm_send_fds(sv[0], NULL, 0, "x", 1));
        assert_fail(ashm_recv_fd(sv[1], buf, sizeof(buf), NULL), EBADMSG);
        assert_ok(ashm_send_fds(sv[0], fds, 2, "x", 1));
        assert_fail(ashm_recv_fd(sv[1], buf, sizeof(buf), NULL), EBADMSG); /* both closed: fixture checks */
        /* A datagram longer than the buffer is refused, its fd closed. */
        assert_ok(ashm_send_fds(sv[0], fds, 1, "xy", 2));
        assert_fail(ashm_recv_fd(sv[1], NULL, 0, NULL), EMSGSIZE);
        close_many(fds, 2);
        close_many(sv, 2);
}

ASHM_TEST(fdpass, too_many_fds_refused_and_closed) {
        int sv[2], fds[ASHM_FDS_MAX + 1], got[2];
        size_t n = 77, len;
        char buf[8];

        seqpacket_pair(sv);
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                fds[i] = memfd_create("many", MFD_CLOEXEC);
        assert_fail(ashm_send_fds(sv[0], fds, ASHM_FDS_MAX + 1, "x", 1), EINVAL);
        assert_ok(ashm_send_fds(sv[0], fds, 3, "x", 1));
        assert_fail(ashm_recv_fds(sv[1], got, 2, &n, buf, sizeof(buf), &len), EMSGSIZE);
        cr_assert_eq(n, 77, "ret_n_fds untouched on failure");
        close_many(fds, ELEMENTSOF(fds));
        close_many(sv, 2);
}

ASHM_TEST(fdpass, truncated_payload_refused_and_fd_closed) {
        ashm_region *a, *b = NULL;
        char buf[4];
        int sv[2];

        seqpacket_pair(sv);
        assert_ok(ashm_region_create("trunc", 4096, 0, &a));
        assert_ok(ashm_region_send(sv[0], a, "too long for buf", 16));
        assert_fail(ashm_region_recv(sv[1], 0, buf, sizeof(buf), NULL, &b), EMSGSIZE);
        cr_assert_null(b);
        ashm_region_close(a);
        close_many(sv, 2);
}

ASHM_TEST(fdpass, peer_closed) {
        char buf[4];
        int sv[2];

        seqpacket_pair(sv);
        close(sv[0]);
        assert_fail(ashm_recv_fd(sv[1], buf, sizeof(buf), NULL), ECONNRESET);
        close(sv[1]);
}

ASHM_TEST(fdpass, send_to_gone_peer_no_sigpipe) {
        int sv[2], fd = memfd_create("gone", MFD_CLOEXEC);

        cr_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        close(sv[1]);
        /* The test would die of SIGPIPE if the send raised it. */
        assert_fail(ashm_send_fd(sv[0], fd, "x", 1), EPIPE);
        close(sv[0]);
        close(fd);
}

ASHM_TEST(fdpass, nonblocking_empty) {
        int sv[2];

        cr_assert(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) == 0);
        assert_fail(ashm_recv_fd(sv[1], NULL, 0, NULL), EAGAIN);
        close_many(sv, 2);
}

ASHM_TEST(fdpass, bad_arguments) {
        int sv[2], fd = memfd_create("bad", MFD_CLOEXEC);
        ashm_region *r;
        size_t n;

        seqpacket_pair(sv);
        assert_fail(ashm_send_fd(sv[0], -1, "x", 1), EBADF);
        assert_fail(ashm_send_fds(sv[0], NULL, 1, "x", 1), EINVAL);
        assert_fail(ashm_send_fds(sv[0], &fd, 1, NULL, 4), EINVAL);
        assert_fail(ashm_send_fd(fd, fd, "x", 1), ENOTSOCK);
        assert_fail(ashm_recv_fds(sv[1], NULL, 1, &n, NULL, 0, NULL), EINVAL);
        assert_fail(ashm_recv_fd(sv[1], NULL, 4, NULL), EINVAL);
        assert_fail(ashm_region_send(sv[0], NULL, "x", 1), EINVAL);
        assert_fail(ashm_region_recv(sv[1], 1, NULL, 0, NULL, &r), EINVAL);
        close(fd);
        close_many(sv, 2);
}

ASHM_TEST(fdpass, stream_socket_large_payload) {
        static char big[256 * 1024], back[sizeof(big)];
        int sv[2], fd = memfd_create("stream", MFD_CLOEXEC), got;
        size_t have = 0, len;
        pid_t pid;

        for (size_t i = 0; i < sizeof(big); i++)
                big[i] = (char) (i * 7);
        cr_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0)
                _exit(ashm_send_fd(sv[0], fd, big, sizeof(big)) == 0 ? 0 : 1);
        got = ashm_recv_fd(sv[1], back, sizeof(back), &len);
        cr_assert(got >= 0, "recv: %s", strerror(-got));
        same_inode(fd, got);
        for (have = len; have < sizeof(back); have += len) {
                ssize_t k = read(sv[1], back + have, sizeof(back) - have);

                cr_assert(k > 0);
                len = (size_t) k;
        }
        cr_assert(memcmp(big, back, sizeof(big)) == 0, "the whole payload arrives");
        wait_peer(pid);
        close(got);
        close(fd);
        close_many(sv, 2);
}

/* The receiver has no fd slot left: the kernel drops the fds and sets
 * MSG_CTRUNC, which must be an error, not a silent loss, and say why. */
ASHM_TEST(fdpass, ctrunc_when_out_of_fds) {
        int sv[2], fd = memfd_create("ctrunc", MFD_CLOEXEC);
        pid_t pid;

        seqpacket_pair(sv);
        assert_ok(ashm_send_fd(sv[0], fd, "x", 1));
        pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
                struct rlimit rl;
                int r;

                /* Lower the limit to the current highest fd + 1, then
                 * fill every free slot below it. */
                rl.rlim_cur = rl.rlim_max = (rlim_t) fcntl(sv[1], F_DUPFD, 0) + 1;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                        _exit(10);
                while (dup(0) >= 0)
                        ;
                r = ashm_recv_fd(sv[1], NULL, 0, NULL);
                _exit(r == -EMFILE ? 0 : 11);
        }
        wait_peer(pid);
        close(fd);
        close_many(sv, 2);
}

/* Unrelated processes: the peer is a separately exec'd program. */
ASHM_TEST(fdpass, cross_process_exec_peer) {
        const char *argv[] = { "recv-echo", NULL };
        ashm_region *r;
        char msg[128], buf[32] = "";
        int sock;
        pid_t pid = spawn_peer(&sock, argv);

        assert_ok(ashm_region_create("ProcessMemoryService", 1024 * 1024, 0, &r));
        assert_ok(ashm_region_write(r, 0, "Hello world!", 13));
        assert_ok(ashm_region_send(sock, r, "cookie", 6));
        recv_text(sock, msg, sizeof(msg));
        cr_assert_str_eq(msg, "got:cookie|Hello world!");
        recv_text(sock, msg, sizeof(msg));
        cr_assert_str_eq(msg, "done");
        assert_ok(ashm_region_read(r, 0, buf, 14));
        cr_assert_str_eq(buf, "peer was here", "the peer's write() is seen by the creator");
        wait_peer(pid);
        ashm_region_close(r);
        close(sock);
}

ASHM_TEST(fdpass, region_from_exec_peer) {
        const char *argv[] = { "send-new", "made-by-peer", "8192", NULL };
        ashm_region *r;
        char payload[8] = "", buf[16] = "";
        uint64_t size;
        size_t len;
        int sock;
        pid_t pid = spawn_peer(&sock, argv);

        assert_ok(ashm_region_recv(sock, 0, payload, sizeof(payload), &len, &r));
        cr_assert_str_eq(payload, "new");
        close(sock); /* the peer exits; its region lives on in our fd */
        wait_peer(pid);
        cr_assert_str_eq(ashm_region_name(r), "made-by-peer");
        assert_ok(ashm_region_get_size(r, &size));
        cr_assert_eq(size, 8192);
        assert_ok(ashm_region_read(r, 0, buf, 10));
        cr_assert_str_eq(buf, "from peer");
        ashm_region_close(r);
}

ASHM_TEST(fdpass, frozen_region_cannot_be_written_by_peer) {
        const char *argv[] = { "try-write", NULL };
        ashm_region *r;
        char msg[160];
        int sock;
        pid_t pid = spawn_peer(&sock, argv);

        assert_ok(ashm_region_create("frozen-config", 4096, 0, &r));
        assert_ok(ashm_region_write(r, 0, "key=value", 9));
        assert_ok(ashm_region_freeze(r));
        assert_ok(ashm_region_send(sock, r, "cfg", 3));
        recv_text(sock, msg, sizeof(msg));
        cr_assert_str_eq(msg, "write=EPERM map=EPERM mmap=EPERM mprotect=EACCES reopen=EPERM");
        wait_peer(pid);
        ashm_region_close(r);
        close(sock);
}

ASHM_TEST(fdpass, read_only_region_cannot_be_written_by_peer) {
        const char *argv[] = { "try-write", NULL };
        ashm_region *r;
        char msg[160];
        int sock;
        pid_t pid = spawn_peer(&sock, argv);

        assert_ok(ashm_region_create("ro", 4096, 0, &r));
        assert_ok(ashm_region_set_prot(r, PROT_READ));
        assert_ok(ashm_region_send(sock, r, "ro", 2));
        recv_text(sock, msg, sizeof(msg));
        cr_assert_str_eq(msg, "write=EPERM map=EPERM mmap=EPERM mprotect=EACCES reopen=EPERM");
        wait_peer(pid);
        ashm_region_close(r);
        close(sock);
}

ASHM_TEST(fdpass, non_memfd_from_peer_rejected) {
        const char *argv[] = { "send-pipe", NULL };
        ashm_region *r = NULL;
        char buf[8];
        int sock;
        pid_t pid = spawn_peer(&sock, argv);

        assert_fail(ashm_region_recv(sock, 0, buf, sizeof(buf), NULL, &r), EMEDIUMTYPE);
        cr_assert_null(r);
        close(sock);
        wait_peer(pid);
}

ASHM_TEST(fdpass, too_many_fds_from_peer_closed) {
        const char *argv[] = { "send-fds", "16", NULL };
        int sock, fds[4];
        size_t n, len;
        char buf[8];
        pid_t pid = spawn_peer(&sock, argv);

        assert_fail(ashm_recv_fds(sock, fds, 4, &n, buf, sizeof(buf), &len), EMSGSIZE);
        close(sock);
        wait_peer(pid);
}
