/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "fd-util.h"
#include "socket-util.h"

ssize_t send_fds(int sock, const void *data, size_t len, const int *fds, size_t n_fds) {
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * SOCKET_FDS_MAX)];
        } control;
        static const char nul;
        struct iovec iov = {
                .iov_base = (void *) (len > 0 ? data : &nul),
                .iov_len = len > 0 ? len : 1,
        };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        ssize_t n;

        if (n_fds > SOCKET_FDS_MAX)
                return -EINVAL;
        if (n_fds > 0) {
                struct cmsghdr *c;

                memset(&control, 0, sizeof(control));
                mh.msg_control = control.buf;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
        }
        do
                n = sendmsg(sock, &mh, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        return n < 0 ? negative_errno() : n;
}

/* Collect every SCM_RIGHTS fd in mh into fds[]; returns how many there
 * were in all, which may exceed max (the extra ones are closed). */
static size_t collect_fds(struct msghdr *mh, int *fds, size_t max) {
        size_t n = 0;

        for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
                size_t k;

                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < k; i++) {
                        int fd;

                        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                        if (n < max)
                                fds[n] = fd;
                        else
                                safe_close(fd);
                        n++;
                }
        }
        return n;
}

ssize_t recv_fds(int sock, void *buf, size_t len, int *fds, size_t max_fds, size_t *ret_n_fds) {
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * SOCKET_FDS_MAX)];
        } control;
        char scratch;
        /* With no room for a payload, take the one byte that always
         * travels into scratch: a lone NUL is an empty payload. */
        struct iovec iov = { .iov_base = len > 0 ? buf : &scratch, .iov_len = len > 0 ? len : 1 };
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = control.buf,
                .msg_controllen = sizeof(control.buf),
        };
        size_t n_fds;
        ssize_t n;

        if (max_fds > SOCKET_FDS_MAX)
                max_fds = SOCKET_FDS_MAX;
        do
                n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return negative_errno();

        n_fds = collect_fds(&mh, fds, max_fds);
        /* MSG_CTRUNC with room to spare: the kernel could not install the
         * fds (we are out of them), not a sender that sent too many. */
        if ((mh.msg_flags & MSG_CTRUNC) && n_fds < max_fds && !(mh.msg_flags & MSG_TRUNC)) {
                close_many(fds, n_fds);
                return -EMFILE;
        }
        if (n_fds > max_fds || (mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) || (len == 0 && n > 0 && scratch != 0)) {
                close_many(fds, MIN(n_fds, max_fds));
                return -EMSGSIZE;
        }
        if (n == 0 && n_fds == 0)
                return -ECONNRESET;
        *ret_n_fds = n_fds;
        return len > 0 ? n : 0;
}
