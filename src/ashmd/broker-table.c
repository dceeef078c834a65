/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker-table.h"
#include "fd-util.h"
#include "log.h"
#include "memfd-util.h"
#include "quota.h"
#include "registry.h"

/* A bound on what one daemon keeps for everybody, beyond the per-uid
 * quota (quota.h). */
#define NAMES_MAX 65536

struct name {
        char name[PROTO_NAME_MAX + 1];
        int fd;            /* the publisher's, as it sent it */
        bool writable;     /* fd can write: write grants are possible */
        uint32_t mode;     /* 0777-style; r and w bits count */
        uid_t uid;
        gid_t gid;
        pid_t pid;
        uint32_t flags;    /* PROTO_PUBLISH_KEEP */
        const void *owner; /* the connection; NULL once it is gone */
        struct name *next;
};

/* Names belong to their publisher's uid: each uid has a namespace of
 * its own, so nobody can take a name from another (squatting) or pass
 * their region off as another's. */
static struct name *find_owned(struct broker *b, uid_t uid, const char *name) {
        for (struct name *n = b->names; n; n = n->next)
                if (n->uid == uid && strcmp(n->name, name) == 0)
                        return n;
        return NULL;
}

/* A name as a peer asks for it: "~UID/NAME" is UID's NAME; a plain NAME
 * is the peer's own, else root's (the system's), never another user's:
 * whoever asks knows whose region it gets. NULL if there is none. */
static struct name *resolve(struct broker *b, const struct peer *p, const char *asked) {
        struct name *n;
        uint64_t uid = 0;
        const char *c;

        if (asked[0] != PROTO_NAME_OWNER_PREFIX) {
                n = find_owned(b, p->uid, asked);
                return n ?: find_owned(b, 0, asked);
        }
        for (c = asked + 1; *c >= '0' && *c <= '9' && uid <= UINT32_MAX; c++)
                uid = uid * 10 + (uint64_t) (*c - '0');
        if (c == asked + 1 || *c != '/' || uid > UINT32_MAX || c[1] == '\0')
                return NULL;
        return find_owned(b, (uid_t) uid, c + 1);
}

static bool in_group(const struct peer *p, gid_t gid) {
        if (p->gid == gid)
                return true;
        for (size_t i = 0; i < p->n_groups; i++)
                if (p->groups[i] == gid)
                        return true;
        return false;
}

/* PROTO_ACCESS_* the peer has, as for a file: the owner's bits if it is
 * the publisher's uid (root counts as the owner), else the group's if it
 * is in the publisher's group, else the others'. Write implies read: a
 * shared mapping cannot be write-only. */
static uint32_t access_of(const struct name *n, const struct peer *p) {
        uint32_t bits;

        if (p->uid == n->uid || p->uid == 0)
                bits = n->mode >> 6;
        else if (in_group(p, n->gid))
                bits = n->mode >> 3;
        else
                bits = n->mode;
        if (bits & 2)
                return PROTO_ACCESS_READ | PROTO_ACCESS_WRITE;
        return bits & 4 ? PROTO_ACCESS_READ : 0;
}

int broker_publish(struct broker *b, const struct peer *p, int fd, const struct proto_publish_req *req) {
        struct name *n;
        struct stat st;
        int flags, r;

        r = memfd_client_stat(fd, &st);
        if (r < 0)
                return r;
        if (req->name[0] == PROTO_NAME_OWNER_PREFIX)
                return -EINVAL; /* that is how owners are named */
        if (find_owned(b, p->uid, req->name))
                return -EEXIST;
        if (b->n_names >= NAMES_MAX)
                return -ENOSPC;
        r = quota_charge(p->uid, QUOTA_NAMES, 1);
        if (r < 0)
                return r;
        r = quota_charge(p->uid, QUOTA_MEMORY, sizeof(*n));
        if (r < 0) {
                quota_uncharge(p->uid, QUOTA_NAMES, 1);
                return r;
        }
        n = calloc(1, sizeof(*n));
        if (n)
                n->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (!n || n->fd < 0) {
                r = n ? negative_errno() : -ENOMEM;
                quota_uncharge(p->uid, QUOTA_NAMES, 1);
                quota_uncharge(p->uid, QUOTA_MEMORY, sizeof(*n));
                free(n);
                return r;
        }
        flags = fcntl(fd, F_GETFL);
        n->writable = flags >= 0 && (flags & O_ACCMODE) == O_RDWR;
        memcpy(n->name, req->name, sizeof(n->name));
        n->mode = req->mode;
        n->uid = p->uid;
        n->gid = p->gid;
        n->pid = p->pid;
        n->flags = req->flags;
        n->owner = p->owner;
        n->next = b->names;
        b->names = n;
        b->n_names++;
        log_debug("pid %d uid %u published '%s' mode %03o%s", (int) p->pid, (unsigned) p->uid, n->name, n->mode,
                  n->flags & PROTO_PUBLISH_KEEP ? " (kept)" : "");
        return 0;
}

/* An fd of the region opened read-only, from our own. */
static int reopen_read_only(int fd) {
        char path[64];
        int r;

        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        r = open(path, O_RDONLY | O_CLOEXEC);
        return r < 0 ? negative_errno() : r;
}

/* Copy [off, end) of from into to, whose file position is off. */
static int copy_range(int to, int from, off_t off, off_t end) {
        while (off < end) {
                off_t in = off;
                ssize_t k = sendfile(to, from, &in, (size_t) (end - off));

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return k < 0 ? negative_errno() : -EIO;
                off += k;
        }
        return 0;
}

/* A frozen copy of the region: the only read-only grant that binds a
 * process the file mode cannot bind (one of the publisher's own uid,
 * which owns the inode and may chmod it or reopen it for writing). It
 * costs what the region holds, not its size: holes stay holes (a sparse
 * terabyte costs nothing), and the daemon memory it takes is checked
 * against the asker's quota first, then charged while the asker holds
 * it (server.c). */
static int frozen_copy(const struct name *n, const struct peer *p) {
        _cleanup_close_ int copy = -1;
        struct quota_user *u;
        struct stat st;
        off_t data = 0, hole;

        if (fstat(n->fd, &st) < 0)
                return negative_errno();
        u = quota_user(p->uid);
        if (p->uid != 0 && (!u || u->used[QUOTA_MEMORY] + (uint64_t) st.st_blocks * 512 > quota_limit(QUOTA_MEMORY)))
                return -EDQUOT;
        copy = memfd_new(n->name, false);
        if (copy < 0)
                return copy;
        if (ftruncate(copy, st.st_size) < 0)
                return negative_errno();
        while ((data = lseek(n->fd, data, SEEK_DATA)) >= 0) {
                int r;

                hole = lseek(n->fd, data, SEEK_HOLE);
                if (hole < 0)
                        return negative_errno();
                if (lseek(copy, data, SEEK_SET) < 0)
                        return negative_errno();
                r = copy_range(copy, n->fd, data, MIN(hole, st.st_size));
                if (r < 0)
                        return r;
                data = hole;
        }
        if (errno != ENXIO)
                return negative_errno();
        if (fcntl(copy, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
                return negative_errno();
        return reopen_read_only(copy);
}

/* A read-only grant that no route can turn into a write:
 *  - a frozen region: any fd is safe (the kernel refuses every write);
 *  - a peer of another uid than the region's owner: an O_RDONLY fd, with
 *    the inode's group and other write bits cleared, so the peer can
 *    neither write it, map it writable, mprotect a mapping writable, nor
 *    reopen it for writing through /proc;
 *  - a peer of the owner's uid (not root): a frozen copy. */
static int read_grant(const struct name *n, const struct peer *p, int seals, const struct stat *st,
                      uint32_t *ret_flags) {
        if (seals & F_SEAL_WRITE) {
                *ret_flags |= PROTO_LOOKUP_FROZEN;
                return reopen_read_only(n->fd);
        }
        if (p->uid != st->st_uid && p->uid != 0) {
                if ((st->st_mode & 0022) && fchmod(n->fd, st->st_mode & 07755) < 0)
                        return negative_errno();
                return reopen_read_only(n->fd);
        }
        *ret_flags |= PROTO_LOOKUP_COPY | PROTO_LOOKUP_FROZEN;
        return frozen_copy(n, p);
}

/* Write grants need a writable fd from the publisher and a region that
 * can still be written (not frozen, write permission not removed). */
static bool name_writable(const struct name *n, int seals) {
        return n->writable && seals >= 0 && !(seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE));
}

int broker_lookup(struct broker *b, const struct peer *p, const struct proto_lookup_req *req,
                  struct proto_lookup_rep *ret_rep, int *ret_fd) {
        struct name *n = resolve(b, p, req->name);
        struct proto_lookup_rep rep = { 0 };
        uint32_t granted;
        struct stat st;
        int fd, seals;

        if (!n)
                return -ENOENT;
        granted = access_of(n, p);
        if (!granted)
                return -ENOENT;
        /* The seals and the inode once each: this is the broker's hot path. */
        seals = fcntl(n->fd, F_GET_SEALS);
        if (seals < 0 || fstat(n->fd, &st) < 0)
                return negative_errno();
        if (!name_writable(n, seals))
                granted &= ~PROTO_ACCESS_WRITE;
        if ((req->access & PROTO_ACCESS_WRITE) && !(granted & PROTO_ACCESS_WRITE))
                return -EACCES;
        if (req->access & PROTO_ACCESS_WRITE)
                fd = fcntl(n->fd, F_DUPFD_CLOEXEC, 3);
        else if (granted & PROTO_ACCESS_WRITE)
                fd = reopen_read_only(n->fd); /* may write, asked to read: nothing to enforce */
        else
                fd = read_grant(n, p, seals, &st, &rep.flags);
        if (fd < 0)
                return fd < -1 ? fd : negative_errno();
        rep.size = (uint64_t) st.st_size;
        rep.mode = n->mode;
        rep.uid = n->uid;
        rep.gid = n->gid;
        *ret_rep = rep;
        *ret_fd = fd;
        return 0;
}

static void name_free(struct broker *b, struct name **np) {
        struct name *n = *np;

        *np = n->next;
        b->n_names--;
        quota_uncharge(n->uid, QUOTA_NAMES, 1);
        quota_uncharge(n->uid, QUOTA_MEMORY, sizeof(*n));
        safe_close(n->fd);
        free(n);
}

int broker_unpublish(struct broker *b, const struct peer *p, const char *name) {
        struct name *found = resolve(b, p, name);

        for (struct name **np = &b->names; *np; np = &(*np)->next) {
                if (*np != found)
                        continue;
                /* The publisher's uid and root may, whatever the mode;
                 * others learn no more than a lookup would tell them. */
                if (p->uid != (*np)->uid && p->uid != 0)
                        return access_of(*np, p) ? -EPERM : -ENOENT;
                log_debug("pid %d uid %u unpublished '%s'", (int) p->pid, (unsigned) p->uid, name);
                name_free(b, np);
                return 0;
        }
        return -ENOENT;
}

int broker_names(struct broker *b, const struct peer *p, int fd, uint64_t *ret_count) {
        uint64_t count = 0;
        int r;

        for (struct name *n = b->names; n; n = n->next) {
                struct proto_name_entry e = { 0 };
                struct stat st;
                uint32_t granted = access_of(n, p);

                if (!granted || fstat(n->fd, &st) < 0)
                        continue;
                memcpy(e.name, n->name, sizeof(e.name));
                e.size = (uint64_t) st.st_size;
                e.mode = n->mode;
                e.uid = n->uid;
                e.gid = n->gid;
                e.flags = n->flags;
                e.pid = n->owner ? (uint32_t) n->pid : 0;
                e.access = granted & (name_writable(n, fcntl(n->fd, F_GET_SEALS)) ? ~0u : ~PROTO_ACCESS_WRITE);
                r = write_full(fd, &e, sizeof(e));
                if (r < 0)
                        return r;
                count++;
        }
        *ret_count = count;
        return 0;
}

void broker_forget(struct broker *b, const void *owner) {
        struct name **np = &b->names;

        while (*np) {
                if ((*np)->owner != owner) {
                        np = &(*np)->next;
                        continue;
                }
                if ((*np)->flags & PROTO_PUBLISH_KEEP) {
                        (*np)->owner = NULL;
                        np = &(*np)->next;
                        continue;
                }
                log_debug("'%s' unpublished: its publisher is gone", (*np)->name);
                name_free(b, np);
        }
}

void broker_free(struct broker *b) {
        while (b->names)
                name_free(b, &b->names);
}
