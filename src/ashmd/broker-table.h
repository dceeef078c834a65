/* SPDX-License-Identifier: MIT */
#pragma once

/* The name broker: regions published under a name with a file-like access
 * mode, looked up by any process the mode allows. Access is decided on
 * the kernel's word about the peer (SO_PEERCRED, SO_PEERGROUPS), never on
 * what a message says; a read-only grant is an fd that cannot write the
 * region by any route. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "protocol.h"

struct peer {
        pid_t pid;
        uid_t uid;
        gid_t gid;
        gid_t *groups; /* supplementary groups */
        size_t n_groups;
        const void *owner; /* the connection, for names that die with it */
};

struct broker {
        struct name *names;
        unsigned n_names;
};

/* Publish the region fd (borrowed) under req->name. Errors: -EEXIST the
 * name is taken; -EMEDIUMTYPE not a memfd; -ENOSPC too many names. */
int broker_publish(struct broker *b, const struct peer *p, int fd, const struct proto_publish_req *req);

/* The fd a lookup grants (owned by the caller) and what it is. -ENOENT
 * for a name the peer may not even read (its existence is not told),
 * -EACCES for write asked without the right. */
int broker_lookup(struct broker *b, const struct peer *p, const struct proto_lookup_req *req,
                  struct proto_lookup_rep *ret_rep, int *ret_fd);

/* Only the publisher's uid or root. -ENOENT, -EPERM. */
int broker_unpublish(struct broker *b, const struct peer *p, const char *name);

/* Names the peer may read, written to fd (borrowed). */
int broker_names(struct broker *b, const struct peer *p, int fd, uint64_t *ret_count);

/* The connection went away: its names go, unless published to be kept. */
void broker_forget(struct broker *b, const void *owner);

void broker_free(struct broker *b);
