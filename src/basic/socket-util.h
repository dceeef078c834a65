/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* The most fds one message may carry, in either direction. */
#define SOCKET_FDS_MAX 16

/* sendmsg() of len bytes (at least one; len 0 sends one NUL byte) with
 * n_fds borrowed fds as SCM_RIGHTS. Returns bytes sent or -errno. */
ssize_t send_fds(int sock, const void *data, size_t len, const int *fds, size_t n_fds);

/* recvmsg() with MSG_CMSG_CLOEXEC, retried on EINTR. Stores at most
 * max_fds fds; more fds, a truncated control buffer (MSG_CTRUNC) or a
 * truncated datagram (MSG_TRUNC) fail with -EMSGSIZE, fds the kernel could
 * not install because this process is out of them with -EMFILE (the
 * payload is in buf all the same), end of stream with -ECONNRESET, and
 * every fd received is closed on every error path.
 * Returns bytes received; *ret_n_fds is set on success only. */
ssize_t recv_fds(int sock, void *buf, size_t len, int *fds, size_t max_fds, size_t *ret_n_fds);
