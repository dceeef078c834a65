/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for proto_decode(), the daemon's first line of
 * defence. The first input byte picks how many fds "travel" with the
 * datagram (0..2, what recv_fds() can report), the rest is the datagram.
 * Each input is decoded both as a request (the daemon's side) and as a
 * reply (the library's side). A message the decoder accepts must be
 * exactly what a well-behaved peer sends: its body is read to the last
 * byte (ASan catches a body that points past the buffer), its header
 * re-encodes byte for byte with proto_header(), and it decodes again.
 *
 * Built and run by tests/test-fuzz.sh. Run with "--seed DIR" (first
 * argument), it writes a few valid messages into DIR as a starting
 * corpus and exits.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define check(cond)                                                                        \
        do {                                                                               \
                if (!(cond)) {                                                             \
                        fprintf(stderr, "fuzz-protocol: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
                        abort();                                                           \
                }                                                                          \
        } while (0)

/* Read every body byte: an out-of-bounds body is an ASan report here. */
static unsigned touch(const void *body, size_t len) {
        const volatile unsigned char *p = body;
        unsigned sum = 0;

        for (size_t i = 0; i < len; i++)
                sum += p[i];
        return sum;
}

static void check_accepted(const uint8_t *buf, size_t len, size_t n_fds, int expect_reply,
                           const struct proto_msg *m) {
        struct proto_hdr h;
        struct proto_msg again;
        uint16_t base = m->hdr.type & (uint16_t) ~PROTO_REPLY;

        check(m->body == buf + sizeof(struct proto_hdr));
        check(m->body_len == len - sizeof(struct proto_hdr));
        check(m->hdr.len == len && m->hdr.n_fds == n_fds);
        check(base >= 1 && base <= PROTO_TYPE_MAX);
        check(!!(m->hdr.type & PROTO_REPLY) == !!expect_reply);
        check(expect_reply ? m->hdr.result <= 0 && m->hdr.result >= -4095 : m->hdr.result == 0);
        (void) touch(m->body, m->body_len);

        /* What a sender of this message would have put in the header. */
        proto_header(&h, m->hdr.type, m->hdr.seq, m->hdr.result, m->hdr.n_fds);
        check(h.len == m->hdr.len);
        check(memcmp(&h, buf, sizeof(h)) == 0);
        check(proto_decode(buf, len, n_fds, expect_reply, &again) == 0);
        check(memcmp(&again.hdr, &m->hdr, sizeof(h)) == 0 && again.body_len == m->body_len);

        /* A request's name is a valid, NUL-padded name. */
        if (!expect_reply && (base == PROTO_PUBLISH || base == PROTO_LOOKUP || base == PROTO_UNPUBLISH))
                check(proto_name_valid(m->body));
        /* A message is a request or a reply, never both. */
        check(proto_decode(buf, len, n_fds, !expect_reply, &again) < 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct proto_msg m;
        size_t n_fds, len;
        uint8_t *buf;

        if (size < 1)
                return 0;
        n_fds = data[0] % 3;
        len = size - 1;
        /* A heap copy of exactly len bytes: a read past it is caught. */
        buf = malloc(len ? len : 1);
        check(buf);
        memcpy(buf, data + 1, len);
        for (int reply = 0; reply <= 1; reply++) {
                int r = proto_decode(buf, len, n_fds, reply, &m);

                check(r == 0 || r == -EBADMSG || r == -EPROTONOSUPPORT);
                if (r == 0)
                        check_accepted(buf, len, n_fds, reply, &m);
        }
        free(buf);
        return 0;
}

/* ---- seed corpus -------------------------------------------------------- */

static void seed(const char *dir, const char *name, uint16_t type, int32_t result, uint32_t n_fds, const void *body,
                 size_t body_len) {
        uint8_t buf[1 + PROTO_MSG_MAX];
        struct proto_hdr h;
        char path[4096];
        FILE *f;

        proto_header(&h, type, 7, result, n_fds);
        buf[0] = (uint8_t) n_fds;
        memcpy(buf + 1, &h, sizeof(h));
        if (body_len)
                memcpy(buf + 1 + sizeof(h), body, body_len);
        snprintf(path, sizeof(path), "%s/seed-%s", dir, name);
        f = fopen(path, "we");
        if (!f || fwrite(buf, 1, 1 + sizeof(h) + body_len, f) != 1 + sizeof(h) + body_len || fclose(f) != 0) {
                perror(path);
                exit(1);
        }
}

static void write_seeds(const char *dir) {
        struct proto_register_req reg = { 0 }, adopt = { PROTO_REGISTER_ADOPT, 0 };
        struct proto_purge_req purge = { 4096, PROTO_PURGE_ALL_USERS, 0 };
        struct proto_unregister_req unreg = { 1, 2 };
        struct proto_publish_req pub = { "config", 0644, PROTO_PUBLISH_KEEP };
        struct proto_lookup_req look = { "config", PROTO_ACCESS_READ, 0 };
        struct proto_unpublish_req unpub = { "config" };
        struct proto_register_rep reg_rep = { 4, 4096, 4096, 0 };
        struct proto_purge_rep purge_rep = { 3, 8192 };
        struct proto_status_rep st = { .pid = 1, .pressure_source = "none" };
        struct proto_list_rep list = { 1, sizeof(struct proto_list_entry) };
        struct proto_lookup_rep look_rep = { 4096, 0644, 0, 0, PROTO_LOOKUP_FROZEN };

        seed(dir, "register", PROTO_REGISTER, 0, 1, &reg, sizeof(reg));
        seed(dir, "register-adopt", PROTO_REGISTER, 0, 2, &adopt, sizeof(adopt));
        seed(dir, "purge", PROTO_PURGE, 0, 0, &purge, sizeof(purge));
        seed(dir, "status", PROTO_STATUS, 0, 0, NULL, 0);
        seed(dir, "list", PROTO_LIST, 0, 0, NULL, 0);
        seed(dir, "unregister", PROTO_UNREGISTER, 0, 0, &unreg, sizeof(unreg));
        seed(dir, "publish", PROTO_PUBLISH, 0, 1, &pub, sizeof(pub));
        seed(dir, "lookup", PROTO_LOOKUP, 0, 0, &look, sizeof(look));
        seed(dir, "unpublish", PROTO_UNPUBLISH, 0, 0, &unpub, sizeof(unpub));
        seed(dir, "names", PROTO_NAMES, 0, 0, NULL, 0);
        seed(dir, "register-reply", PROTO_REGISTER | PROTO_REPLY, 0, 2, &reg_rep, sizeof(reg_rep));
        seed(dir, "purge-reply", PROTO_PURGE | PROTO_REPLY, 0, 0, &purge_rep, sizeof(purge_rep));
        seed(dir, "status-reply", PROTO_STATUS | PROTO_REPLY, 0, 0, &st, sizeof(st));
        seed(dir, "list-reply", PROTO_LIST | PROTO_REPLY, 0, 1, &list, sizeof(list));
        seed(dir, "lookup-reply", PROTO_LOOKUP | PROTO_REPLY, 0, 1, &look_rep, sizeof(look_rep));
        seed(dir, "publish-reply", PROTO_PUBLISH | PROTO_REPLY, 0, 0, NULL, 0);
        seed(dir, "error-reply", PROTO_LOOKUP | PROTO_REPLY, -ENOENT, 0, NULL, 0);
}

/* libFuzzer calls this before it parses its own flags. */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
        if (*argc == 3 && strcmp((*argv)[1], "--seed") == 0) {
                write_seeds((*argv)[2]);
                exit(0);
        }
        return 0;
}
