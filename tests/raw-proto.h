/* SPDX-License-Identifier: MIT */
#pragma once

/* The daemon's wire protocol spoken by hand, for the attacks of
 * test-security.c and its attacker program (tests/attacker.c): no
 * Criterion here, errors come back as negative errno. */

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fd-util.h"
#include "protocol.h"
#include "socket-util.h"

/* A new connection to the daemon at path, or -errno. */
static inline int raw_dial(const char *path) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0), r;

        if (fd < 0)
                return -errno;
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

/* One request, one reply: the reply's result (0 or -errno), -ECONNRESET
 * when the daemon hung up, -EBADMSG for a reply that does not decode.
 * The reply's first fd goes to *ret_fd (if given; others are closed). */
static inline int raw_ask(int fd, uint16_t type, const void *body, size_t len, const int *fds, size_t n_fds, void *rep,
                          size_t rep_len, int *ret_fd) {
        char buf[PROTO_MSG_MAX];
        struct proto_hdr h;
        struct proto_msg m;
        int got[PROTO_FDS_MAX];
        size_t n_got = 0;
        ssize_t n;

        proto_header(&h, type, 1, 0, (uint32_t) n_fds);
        memcpy(buf, &h, sizeof(h));
        if (len)
                memcpy(buf + sizeof(h), body, len);
        n = send_fds(fd, buf, sizeof(h) + len, fds, n_fds);
        if (n < 0)
                return n == -EPIPE ? -ECONNRESET : (int) n;
        n = recv_fds(fd, buf, sizeof(buf), got, PROTO_FDS_MAX, &n_got);
        if (n == 0)
                return -ECONNRESET;
        if (n < 0)
                return (int) n;
        if (proto_decode(buf, (size_t) n, n_got, 1, &m) < 0) {
                close_many(got, n_got);
                return -EBADMSG;
        }
        if (m.hdr.result >= 0 && rep_len)
                memcpy(rep, m.body, rep_len < m.body_len ? rep_len : m.body_len);
        if (n_got && ret_fd) {
                *ret_fd = got[0];
                close_many(got + 1, n_got - 1);
        } else
                close_many(got, n_got);
        return m.hdr.result;
}

static inline int raw_register(int fd, int region_fd, int adopt_fd, struct proto_register_rep *rep, int *ret_block) {
        struct proto_register_req req = {.flags = adopt_fd >= 0 ? PROTO_REGISTER_ADOPT : 0};
        int fds[2] = {region_fd, adopt_fd};
        struct proto_register_rep ignored;

        return raw_ask(fd, PROTO_REGISTER, &req, sizeof(req), fds, adopt_fd >= 0 ? 2 : 1, rep ?: &ignored, sizeof(*rep),
                       ret_block);
}

static inline int raw_publish(int fd, const char *name, int region_fd, uint32_t mode, uint32_t flags) {
        struct proto_publish_req req = {.mode = mode, .flags = flags};

        snprintf(req.name, sizeof(req.name), "%s", name);
        return raw_ask(fd, PROTO_PUBLISH, &req, sizeof(req), &region_fd, 1, NULL, 0, NULL);
}

static inline int raw_lookup(int fd, const char *name, uint32_t access, struct proto_lookup_rep *rep, int *ret_fd) {
        struct proto_lookup_req req = {.access = access};

        snprintf(req.name, sizeof(req.name), "%s", name);
        return raw_ask(fd, PROTO_LOOKUP, &req, sizeof(req), NULL, 0, rep, sizeof(*rep), ret_fd);
}
