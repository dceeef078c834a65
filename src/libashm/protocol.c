/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "protocol.h"

_Static_assert(sizeof(struct proto_hdr) == 24, "wire header layout");
_Static_assert(sizeof(struct proto_status_rep) + sizeof(struct proto_hdr) <= PROTO_MSG_MAX, "status fits");

/* Body sizes of requests, indexed by type. */
static const long request_size[PROTO_TYPE_MAX + 1] = {
        [PROTO_REGISTER] = sizeof(struct proto_register_req),
        [PROTO_PURGE] = sizeof(struct proto_purge_req),
        [PROTO_STATUS] = 0,
        [PROTO_LIST] = 0,
        [PROTO_UNREGISTER] = sizeof(struct proto_unregister_req),
};

static const long reply_size[PROTO_TYPE_MAX + 1] = {
        [PROTO_REGISTER] = sizeof(struct proto_register_rep),
        [PROTO_PURGE] = sizeof(struct proto_purge_rep),
        [PROTO_STATUS] = sizeof(struct proto_status_rep),
        [PROTO_LIST] = sizeof(struct proto_list_rep),
        [PROTO_UNREGISTER] = 0,
};

long proto_body_size(uint16_t type) {
        uint16_t base = type & (uint16_t) ~PROTO_REPLY;

        if (base < 1 || base > PROTO_TYPE_MAX)
                return -1;
        return type & PROTO_REPLY ? reply_size[base] : request_size[base];
}

/* How many fds a well-formed message of this kind carries. */
static int fds_expected(const struct proto_hdr *h, const void *body) {
        uint16_t base = h->type & (uint16_t) ~PROTO_REPLY;

        if (h->type & PROTO_REPLY) {
                if (h->result < 0)
                        return 0;
                return base == PROTO_REGISTER ? 2 : base == PROTO_LIST ? 1 : 0;
        }
        if (base == PROTO_REGISTER) {
                struct proto_register_req req;

                memcpy(&req, body, sizeof(req));
                if ((req.flags & ~PROTO_REGISTER_ADOPT) || req.reserved)
                        return -1;
                return req.flags & PROTO_REGISTER_ADOPT ? 2 : 1;
        }
        return 0;
}

int proto_decode(const void *buf, size_t len, size_t n_fds, int expect_reply, struct proto_msg *ret) {
        struct proto_hdr h;
        long body;

        if (len < sizeof(h) || len > PROTO_MSG_MAX)
                return -EBADMSG;
        memcpy(&h, buf, sizeof(h));
        if (h.magic != PROTO_MAGIC)
                return -EBADMSG;
        if (h.version != PROTO_VERSION)
                return -EPROTONOSUPPORT;
        if (h.len != len || !!(h.type & PROTO_REPLY) != !!expect_reply)
                return -EBADMSG;
        body = proto_body_size(h.type);
        if (body < 0)
                return -EBADMSG;
        if (expect_reply ? (h.result > 0 || h.result < -4095) : h.result != 0)
                return -EBADMSG;
        if (expect_reply && h.result < 0)
                body = 0; /* an error reply is a bare header */
        if ((size_t) body != len - sizeof(h))
                return -EBADMSG;
        if (h.n_fds != n_fds || (int) n_fds != fds_expected(&h, (const char *) buf + sizeof(h)))
                return -EBADMSG;
        ret->hdr = h;
        ret->body = (const char *) buf + sizeof(h);
        ret->body_len = (size_t) body;
        return 0;
}

void proto_header(struct proto_hdr *h, uint16_t type, uint32_t seq, int32_t result, uint32_t n_fds) {
        long body = result < 0 ? 0 : proto_body_size(type);

        *h = (struct proto_hdr) {
                .magic = PROTO_MAGIC,
                .version = PROTO_VERSION,
                .type = type,
                .len = (uint32_t) (sizeof(*h) + (size_t) (body < 0 ? 0 : body)),
                .seq = seq,
                .result = result,
                .n_fds = n_fds,
        };
}
