/* SPDX-License-Identifier: MIT */
/* The daemon's first line of defence: the decoder refuses anything that
 * is not exactly a well-formed message. */
#include "protocol.h"
#include "tests.h"

ASHM_SUITE(protocol);

static size_t build(char *buf, uint16_t type, int32_t result, uint32_t n_fds, const void *body, size_t len) {
        struct proto_hdr h;

        proto_header(&h, type, 7, result, n_fds);
        h.len = (uint32_t) (sizeof(h) + len);
        memcpy(buf, &h, sizeof(h));
        if (len)
                memcpy(buf + sizeof(h), body, len);
        return sizeof(h) + len;
}

ASHM_TEST(protocol, well_formed_requests) {
        struct proto_register_req reg = { 0 }, adopt = { .flags = PROTO_REGISTER_ADOPT };
        struct proto_purge_req purge = { 0 };
        struct proto_unregister_req un = { 1, 2 };
        char buf[PROTO_MSG_MAX];
        struct proto_msg m;

        assert_ok(proto_decode(buf, build(buf, PROTO_REGISTER, 0, 1, &reg, sizeof(reg)), 1, 0, &m));
        cr_assert_eq(m.hdr.type, PROTO_REGISTER);
        cr_assert_eq(m.hdr.seq, 7);
        cr_assert_eq(m.body_len, sizeof(reg));
        assert_ok(proto_decode(buf, build(buf, PROTO_REGISTER, 0, 2, &adopt, sizeof(adopt)), 2, 0, &m));
        assert_ok(proto_decode(buf, build(buf, PROTO_PURGE, 0, 0, &purge, sizeof(purge)), 0, 0, &m));
        assert_ok(proto_decode(buf, build(buf, PROTO_STATUS, 0, 0, NULL, 0), 0, 0, &m));
        assert_ok(proto_decode(buf, build(buf, PROTO_LIST, 0, 0, NULL, 0), 0, 0, &m));
        assert_ok(proto_decode(buf, build(buf, PROTO_UNREGISTER, 0, 0, &un, sizeof(un)), 0, 0, &m));
}

ASHM_TEST(protocol, well_formed_replies) {
        struct proto_register_rep reg = { 1, 2, 3 };
        struct proto_status_rep st = { 0 };
        char buf[PROTO_MSG_MAX];
        struct proto_msg m;

        assert_ok(proto_decode(buf, build(buf, PROTO_REGISTER | PROTO_REPLY, 0, 2, &reg, sizeof(reg)), 2, 1, &m));
        assert_fail(proto_decode(buf, build(buf, PROTO_REGISTER | PROTO_REPLY, 0, 1, &reg, sizeof(reg)), 1, 1, &m),
                    EBADMSG);
        assert_ok(proto_decode(buf, build(buf, PROTO_STATUS | PROTO_REPLY, 0, 0, &st, sizeof(st)), 0, 1, &m));
        /* An error reply is a bare header with no fd. */
        assert_ok(proto_decode(buf, build(buf, PROTO_REGISTER | PROTO_REPLY, -EPERM, 0, NULL, 0), 0, 1, &m));
        cr_assert_eq(m.hdr.result, -EPERM);
        cr_assert_eq(m.body_len, 0);
}

ASHM_TEST(protocol, malformed) {
        struct proto_register_req reg = { 0 }, bad_flags = { .flags = 4 }, reserved = { .reserved = 1 };
        struct proto_purge_req purge = { 0 };
        char buf[PROTO_MSG_MAX + 8], body[PROTO_MSG_MAX] = { 0 };
        struct proto_msg m;
        struct proto_hdr h;
        size_t n;

        n = build(buf, PROTO_STATUS, 0, 0, NULL, 0);
        assert_fail(proto_decode(buf, n - 1, 0, 0, &m), EBADMSG);     /* short */
        assert_fail(proto_decode(buf, 0, 0, 0, &m), EBADMSG);
        assert_fail(proto_decode(buf, n, 1, 0, &m), EBADMSG);         /* an fd it does not carry */
        assert_fail(proto_decode(buf, n, 0, 1, &m), EBADMSG);         /* a request where a reply is due */

        memcpy(&h, buf, sizeof(h));
        h.magic ^= 1;
        memcpy(buf, &h, sizeof(h));
        assert_fail(proto_decode(buf, n, 0, 0, &m), EBADMSG);
        h.magic ^= 1;
        h.version = 2;
        memcpy(buf, &h, sizeof(h));
        assert_fail(proto_decode(buf, n, 0, 0, &m), EPROTONOSUPPORT);
        h.version = PROTO_VERSION;
        h.len = (uint32_t) n + 1; /* claims more than arrived */
        memcpy(buf, &h, sizeof(h));
        assert_fail(proto_decode(buf, n, 0, 0, &m), EBADMSG);
        h.len = (uint32_t) n;
        h.result = -1; /* requests carry no result */
        memcpy(buf, &h, sizeof(h));
        assert_fail(proto_decode(buf, n, 0, 0, &m), EBADMSG);

        for (uint16_t t = 0; t < 32; t++)
                if (proto_body_size(t) < 0)
                        assert_fail(proto_decode(buf, build(buf, t, 0, 0, NULL, 0), 0, 0, &m), EBADMSG);
        assert_fail(proto_decode(buf, build(buf, PROTO_STATUS, 0, 0, body, 8), 0, 0, &m), EBADMSG);
        assert_fail(proto_decode(buf, build(buf, PROTO_PURGE, 0, 0, &purge, sizeof(purge) - 1), 0, 0, &m), EBADMSG);
        assert_fail(proto_decode(buf, build(buf, PROTO_REGISTER, 0, 0, &reg, sizeof(reg)), 0, 0, &m), EBADMSG);
        assert_fail(proto_decode(buf, build(buf, PROTO_REGISTER, 0, 2, &reg, sizeof(reg)), 2, 0, &m), EBADMSG);
        assert_fail(proto_decode(buf, build(buf, PROTO_REGISTER, 0, 1, &bad_flags, sizeof(reg)), 1, 0, &m), EBADMSG);
        assert_fail(proto_decode(buf, build(buf, PROTO_REGISTER, 0, 1, &reserved, sizeof(reg)), 1, 0, &m), EBADMSG);
        assert_fail(proto_decode(buf, PROTO_MSG_MAX + 1, 0, 0, &m), EBADMSG);
        /* A reply with a result out of errno's range, or positive. */
        assert_fail(proto_decode(buf, build(buf, PROTO_LIST | PROTO_REPLY, -5000, 0, NULL, 0), 0, 1, &m), EBADMSG);
        assert_fail(proto_decode(buf, build(buf, PROTO_STATUS | PROTO_REPLY, 1, 0, body, sizeof(struct proto_status_rep)),
                                 0, 1, &m),
                    EBADMSG);
}

/* Random bytes never crash the decoder and are almost always refused. */
ASHM_TEST(protocol, random_garbage) {
        char buf[PROTO_MSG_MAX];
        struct proto_msg m;
        unsigned seed = (unsigned) getpid();

        for (int i = 0; i < 100000; i++) {
                size_t n = (size_t) rand_r(&seed) % sizeof(buf);

                for (size_t k = 0; k < n; k++)
                        buf[k] = (char) rand_r(&seed);
                if (n >= sizeof(struct proto_hdr) && i % 2) {
                        struct proto_hdr h;

                        proto_header(&h, (uint16_t) (rand_r(&seed) % 8), 1, 0, (uint32_t) (rand_r(&seed) % 3));
                        h.len = (uint32_t) n;
                        memcpy(buf, &h, sizeof(h));
                }
                (void) proto_decode(buf, n, (size_t) rand_r(&seed) % 3, rand_r(&seed) % 2, &m);
        }
}
