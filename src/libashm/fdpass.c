/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "ashm.h"
#include "fd-util.h"
#include "internal.h"
#include "socket-util.h"

_Static_assert(ASHM_FDS_MAX == SOCKET_FDS_MAX, "one cap for both layers");

_public_ int ashm_send_fds(int sock, const int *fds, size_t n_fds, const void *data, size_t len) {
        ssize_t n;

        if ((n_fds > 0 && !fds) || (len > 0 && !data))
                return -EINVAL;
        n = send_fds(sock, data, len, fds, n_fds);
        if (n < 0)
                return (int) n;
        /* A stream socket may take part of a large payload; the fds went
         * with the first byte, the rest follows plainly. */
        if (len > 0 && (size_t) n < len)
                return write_full(sock, (const char *) data + n, len - (size_t) n);
        return 0;
}

_public_ int ashm_recv_fds(int sock, int *fds, size_t max_fds, size_t *ret_n_fds, void *buf, size_t buf_len,
                           size_t *ret_len) {
        size_t n_fds;
        ssize_t n;

        if ((max_fds > 0 && !fds) || (buf_len > 0 && !buf) || !ret_n_fds)
                return -EINVAL;
        n = recv_fds(sock, buf, buf_len, fds, max_fds, &n_fds);
        if (n < 0)
                return (int) n;
        *ret_n_fds = n_fds;
        if (ret_len)
                *ret_len = (size_t) n;
        return 0;
}

_public_ int ashm_send_fd(int sock, int fd, const void *data, size_t len) {
        if (fd < 0)
                return -EBADF;
        return ashm_send_fds(sock, &fd, 1, data, len);
}

_public_ int ashm_recv_fd(int sock, void *buf, size_t buf_len, size_t *ret_len) {
        int fds[SOCKET_FDS_MAX];
        size_t n_fds;
        ssize_t n;

        if (buf_len > 0 && !buf)
                return -EINVAL;
        n = recv_fds(sock, buf, buf_len, fds, SOCKET_FDS_MAX, &n_fds);
        if (n < 0)
                return (int) n;
        if (n_fds != 1) {
                close_many(fds, n_fds);
                return -EBADMSG;
        }
        if (ret_len)
                *ret_len = (size_t) n;
        return fds[0];
}

_public_ int ashm_region_send(int sock, const ashm_region *region, const void *data, size_t len) {
        if (!region)
                return -EINVAL;
        return ashm_send_fd(sock, ashm_region_fd(region), data, len);
}

_public_ int ashm_region_recv(int sock, unsigned flags, void *buf, size_t buf_len, size_t *ret_len,
                              ashm_region **ret_region) {
        size_t len;
        int fd, r;

        if (flags != 0 || !ret_region)
                return -EINVAL;
        fd = ashm_recv_fd(sock, buf, buf_len, &len);
        if (fd < 0)
                return fd;
        r = ashm_region_adopt(fd, flags, ret_region);
        if (r < 0)
                return r;
        if (ret_len)
                *ret_len = len;
        return 0;
}
