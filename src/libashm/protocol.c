/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
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
        [PROTO_PUBLISH] = sizeof(struct proto_publish_req),
        [PROTO_LOOKUP] = sizeof(struct proto_lookup_req),
        [PROTO_UNPUBLISH] = sizeof(struct proto_unpublish_req),
        [PROTO_NAMES] = 0,
};

static const long reply_size[PROTO_TYPE_MAX + 1] = {
        [PROTO_REGISTER] = sizeof(struct proto_register_rep),
        [PROTO_PURGE] = sizeof(struct proto_purge_rep),
        [PROTO_STATUS] = sizeof(struct proto_status_rep),
        [PROTO_LIST] = sizeof(struct proto_list_rep),
        [PROTO_UNREGISTER] = 0,
        [PROTO_PUBLISH] = 0,
        [PROTO_LOOKUP] = sizeof(struct proto_lookup_rep),
        [PROTO_UNPUBLISH] = 0,
        [PROTO_NAMES] = sizeof(struct proto_list_rep),
};

long proto_body_size(uint16_t type) {
        uint16_t base = type & (uint16_t) ~PROTO_REPLY;

        if (base < 1 || base > PROTO_TYPE_MAX)
                return -1;
        return type & PROTO_REPLY ? reply_size[base] : request_size[base];
}

bool proto_name_valid(const char *name) {
        size_t n = strnlen(name, PROTO_NAME_MAX + 1);

        if (n == 0 || n > PROTO_NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) name[i] < 0x20 || name[i] == 0x7f)
                        return false;
        return true;
}

/* The name field of a broker request: a valid name, NUL-padded. */
static bool body_name_ok(uint16_t type, const void *body) {
        const char *name = body; /* every broker request starts with it */
        size_t n;

        if (type != PROTO_PUBLISH && type != PROTO_LOOKUP && type != PROTO_UNPUBLISH)
                return true;
        if (!proto_name_valid(name))
                return false;
        n = strlen(name);
        for (size_t i = n; i <= PROTO_NAME_MAX; i++)
                if (name[i] != '\0')
                        return false;
        return true;
}

/* Fields of requests that must hold known values. */
static bool body_fields_ok(uint16_t type, const void *body) {
        if (type == PROTO_PUBLISH) {
                struct proto_publish_req r;

                memcpy(&r, body, sizeof(r));
                return !(r.mode & ~0777u) && !(r.flags & ~PROTO_PUBLISH_KEEP);
        }
        if (type == PROTO_LOOKUP) {
                struct proto_lookup_req r;

                memcpy(&r, body, sizeof(r));
                return r.access && !(r.access & ~(PROTO_ACCESS_READ | PROTO_ACCESS_WRITE)) && !r.reserved;
        }
        return true;
}

/* How many fds a well-formed message of this kind carries. */
static int fds_expected(const struct proto_hdr *h, const void *body) {
        uint16_t base = h->type & (uint16_t) ~PROTO_REPLY;

        if (h->type & PROTO_REPLY) {
                if (h->result < 0)
                        return 0;
                if (base == PROTO_REGISTER)
                        return 2;
                return base == PROTO_LIST || base == PROTO_LOOKUP || base == PROTO_NAMES ? 1 : 0;
        }
        if (base == PROTO_PUBLISH)
                return 1;
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
        if (!expect_reply && (!body_name_ok(h.type, (const char *) buf + sizeof(h)) ||
                              !body_fields_ok(h.type, (const char *) buf + sizeof(h))))
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
