/* SPDX-License-Identifier: MIT */
#pragma once

/* The wire protocol between libashm and ashmd: one request, one reply, on
 * an AF_UNIX SOCK_SEQPACKET connection, each a single datagram of a fixed
 * header and a fixed-size body per type, with fds as SCM_RIGHTS. Every
 * field is fixed-width and little-endian (both ends are on one machine,
 * but the decoder must not care what a hostile peer sends). The decoder
 * is the daemon's first line of defence: it checks everything before any
 * field is used, and anything it refuses closes the connection. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_MAGIC UINT32_C(0x4d485341) /* "ASHM" */
#define PROTO_VERSION 1
#define PROTO_MSG_MAX 512
#define PROTO_FDS_MAX 2

enum proto_type {
        PROTO_REGISTER = 1, /* fds: region [, pin state to adopt]; reply fds: pin state, LRU clock */
        PROTO_PURGE = 2,
        PROTO_STATUS = 3,
        PROTO_LIST = 4,     /* reply fds: a sealed memfd holding proto_list_entry[] */
        PROTO_UNREGISTER = 5,
        PROTO_PUBLISH = 6,   /* fds: the region */
        PROTO_LOOKUP = 7,    /* reply fds: the region, as granted */
        PROTO_UNPUBLISH = 8,
        PROTO_NAMES = 9,     /* reply fds: a sealed memfd holding proto_name_entry[] */
        PROTO_TYPE_MAX = PROTO_NAMES,
        PROTO_REPLY = 0x8000,
};

struct proto_hdr {
        uint32_t magic;
        uint16_t version;
        uint16_t type;
        uint32_t len;    /* of the whole datagram, header included */
        uint32_t seq;    /* the reply echoes the request's */
        int32_t result;  /* replies: 0 or -errno; requests: 0 */
        uint32_t n_fds;  /* how many fds travel with the datagram */
};

/* REGISTER: the caller proves it holds the region by sending its fd. With
 * PROTO_REGISTER_ADOPT a second fd offers a pin-state block the caller
 * already uses (after a daemon restart), which the daemon takes over if
 * it knows no state for the region. */
#define PROTO_REGISTER_ADOPT 1u
struct proto_register_req {
        uint32_t flags;
        uint32_t reserved;
};
/* The state fd of a holder whose region fd cannot write is read-only:
 * it may ask about pins, not change them (unpinning lets the reclaimer
 * destroy contents, which a read-only holder must not be able to do). */
#define PROTO_REGISTER_READ_ONLY 1u
struct proto_register_rep {
        uint64_t npages;    /* pages the pin state covers */
        uint64_t state_len; /* bytes to map of the state fd */
        uint64_t page_size;
        uint64_t flags;     /* PROTO_REGISTER_READ_ONLY */
};

/* UNREGISTER: this connection no longer uses the region. */
struct proto_unregister_req {
        uint64_t dev, ino;
};

#define PROTO_PURGE_ALL_USERS 1u
struct proto_purge_req {
        uint64_t bytes; /* 0: every unpinned page */
        uint32_t flags;
        uint32_t reserved;
};
struct proto_purge_rep {
        uint64_t lru_pages;    /* unpinned pages before the purge */
        uint64_t purged_bytes;
};

struct proto_status_rep {
        uint64_t pid;
        uint64_t uptime_ms;
        uint64_t max_unpinned;
        uint64_t regions, clients;
        uint64_t pinned_bytes, unpinned_bytes, purged_bytes;
        uint64_t purges, purged_total;   /* purges run, bytes purged since start */
        uint64_t pressure_events;
        uint64_t cgroup_limit, cgroup_usage; /* UINT64_MAX: no limit */
        char pressure_source[160];       /* NUL-terminated */
};

struct proto_list_rep {
        uint64_t count;
        uint64_t entry_size;
};

struct proto_list_entry {
        uint64_t dev, ino, size;
        uint64_t pinned, unpinned, purged; /* bytes, by the pin state */
        uint32_t uid;                      /* the region's owner */
        uint32_t holders;                  /* connections that registered it */
        char name[256];                    /* NUL-terminated */
};

/* The broker. Names are 1 to PROTO_NAME_MAX bytes of printable
 * characters, NUL-terminated in a fixed field (the decoder checks). */
#define PROTO_NAME_MAX 255
/* "~UID/NAME" names UID's NAME (names are per owner); a published name
 * never starts with it. A plain NAME is the asker's own, else root's. */
#define PROTO_NAME_OWNER_PREFIX '~'
/* Keep the name after the publisher's connection closes, while the
 * daemon lives (what a command-line publish needs). */
#define PROTO_PUBLISH_KEEP 1u
struct proto_publish_req {
        char name[PROTO_NAME_MAX + 1];
        uint32_t mode;  /* 0600-style: owner, group, other; r and w bits */
        uint32_t flags; /* PROTO_PUBLISH_KEEP */
};

#define PROTO_ACCESS_READ 1u
#define PROTO_ACCESS_WRITE 2u
struct proto_lookup_req {
        char name[PROTO_NAME_MAX + 1];
        uint32_t access; /* PROTO_ACCESS_* */
        uint32_t reserved;
};

/* The fd a lookup returns may be a frozen copy rather than the region
 * itself: a read-only grant to a process the file mode cannot bind. */
#define PROTO_LOOKUP_COPY 1u
#define PROTO_LOOKUP_FROZEN 2u
struct proto_lookup_rep {
        uint64_t size;
        uint32_t mode, uid, gid;
        uint32_t flags; /* PROTO_LOOKUP_* */
};

struct proto_unpublish_req {
        char name[PROTO_NAME_MAX + 1];
};

struct proto_name_entry {
        char name[PROTO_NAME_MAX + 1];
        uint64_t size;
        uint32_t mode, uid, gid;
        uint32_t flags;  /* PROTO_PUBLISH_KEEP */
        uint32_t pid;    /* the publisher, 0 once it is gone (kept names) */
        uint32_t access; /* what the asker may do: PROTO_ACCESS_* */
};

/* A decoded datagram. body points into the buffer given to the decoder. */
struct proto_msg {
        struct proto_hdr hdr;
        const void *body;
        size_t body_len;
};

/* 1 to PROTO_NAME_MAX bytes, no control characters. */
bool proto_name_valid(const char *name);

/* The exact body size of a message type (request or reply), or -1 for a
 * type that does not exist. */
long proto_body_size(uint16_t type);

/* Check a received datagram: magic, version (-EPROTONOSUPPORT),
 * length, type, body size, fd count as the type demands, result field.
 * expect_reply selects which side's types are allowed. Returns 0 or
 * -EBADMSG; nothing in ret is valid on failure. */
int proto_decode(const void *buf, size_t len, size_t n_fds, int expect_reply, struct proto_msg *ret);

/* Fill a header for a message of the given type with body_len bytes. */
void proto_header(struct proto_hdr *h, uint16_t type, uint32_t seq, int32_t result, uint32_t n_fds);
