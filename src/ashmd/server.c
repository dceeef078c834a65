/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "fd-util.h"
#include "log.h"
#include "memfd-util.h"
#include "pressure.h"
#include "protocol.h"
#include "quota.h"
#include "server.h"
#include "size-util.h"
#include "socket-util.h"

uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static uint64_t page(void) {
        return page_size();
}

/* ---- connections -------------------------------------------------------- */

static void client_free(struct daemon *d, struct client *c) {
        for (size_t i = 0; i < c->n_regions; i++)
                registry_unhold(&d->registry, c->regions[i]);
        quota_uncharge(c->uid, QUOTA_REGIONS, c->n_regions);
        quota_uncharge(c->uid, QUOTA_CONNECTIONS, 1);
        broker_forget(&d->broker, c);
        epoll_ctl(d->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
        safe_close(c->fd);
        free(c->regions);
        free(c->groups);
        free(c);
}

/* The peer's supplementary groups, as the kernel recorded them at
 * connect(): group grants of the broker rest on them. */
static void peer_groups(struct client *c) {
        socklen_t len = 0;

        if (getsockopt(c->fd, SOL_SOCKET, SO_PEERGROUPS, NULL, &len) < 0 && errno != ERANGE)
                return;
        if (len == 0)
                return;
        c->groups = malloc(len);
        if (!c->groups)
                return;
        if (getsockopt(c->fd, SOL_SOCKET, SO_PEERGROUPS, c->groups, &len) < 0) {
                free(c->groups);
                c->groups = NULL;
                return;
        }
        c->n_groups = len / sizeof(gid_t);
}

static void client_close(struct daemon *d, struct client *c) {
        for (struct client **cp = &d->clients; *cp; cp = &(*cp)->next)
                if (*cp == c) {
                        *cp = c->next;
                        break;
                }
        d->n_clients--;
        log_debug("client pid %d uid %u gone", (int) c->pid, (unsigned) c->uid);
        client_free(d, c);
        if (d->n_clients == 0)
                d->idle_since_usec = now_usec();
}

static void accept_one(struct daemon *d, int fd) {
        struct client *c = calloc(1, sizeof(*c));
        struct ucred cred;
        socklen_t len = sizeof(cred);
        struct epoll_event ev = { .events = EPOLLIN };

        /* The kernel says who the peer is; nothing a message claims does. */
        if (!c || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
                log_warning_ratelimited("dropping a connection: %s", c ? strerror(errno) : "out of memory");
                free(c);
                safe_close(fd);
                return;
        }
        /* Over its quota, a uid is hung up on at once: it sees its
         * connection reset. Keeping it open to answer -EDQUOT would cost
         * the fd the quota is there to save. */
        if (quota_charge(cred.uid, QUOTA_CONNECTIONS, 1) < 0) {
                log_warning_ratelimited("uid %u (pid %d) is at its quota of %llu connections: hanging up",
                                        (unsigned) cred.uid, (int) cred.pid,
                                        (unsigned long long) quota_limit(QUOTA_CONNECTIONS));
                free(c);
                safe_close(fd);
                return;
        }
        *c = (struct client) { .fd = fd, .pid = cred.pid, .uid = cred.uid, .gid = cred.gid };
        peer_groups(c);
        c->cgroup = cgroups_client(d->cgroups, fd, c->pid, c->uid);
        ev.data.ptr = c;
        if (epoll_ctl(d->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                log_warning_ratelimited("dropping a connection: epoll: %m");
                quota_uncharge(c->uid, QUOTA_CONNECTIONS, 1);
                free(c->groups);
                free(c);
                safe_close(fd);
                return;
        }
        c->next = d->clients;
        d->clients = c;
        d->n_clients++;
        log_debug("client pid %d uid %u connected", (int) c->pid, (unsigned) c->uid);
}

/* Out of fds, a pending connection can be neither served nor left in the
 * listen backlog: the level-triggered epoll would report it again at
 * once, and the daemon would spin. An fd held in reserve (the classic
 * remedy) lets it take such a connection and hang up: the client sees
 * a closed connection rather than waiting. And a connection that would
 * leave fewer fds than a request needs (PROTO_FDS_MAX received, a couple
 * of its own) is hung up on too, so that the clients already served get
 * error replies, not dropped connections, when names take the rest. */
#define FDS_RESERVE (PROTO_FDS_MAX + 2)
static int spare_fd = -1;
static unsigned refused; /* connections hung up on since fds ran short */

static void refuse(int fd) {
        struct rlimit rl = { 0 };

        safe_close(fd);
        if (refused++ > 0)
                return;
        (void) getrlimit(RLIMIT_NOFILE, &rl);
        log_warning("out of file descriptors (limit %llu): hanging up on new connections until some are "
                    "free; raise the limit (ulimit -n, LimitNOFILE=) if this lasts",
                    (unsigned long long) rl.rlim_cur);
}

void server_accept(struct daemon *d) {
        struct rlimit rl;

        if (spare_fd < 0)
                spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        for (;;) {
                int fd = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK), err = errno;

                if (fd < 0 && (err == EMFILE || err == ENFILE) && spare_fd >= 0) {
                        spare_fd = safe_close(spare_fd);
                        fd = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC);
                        err = errno;
                        if (fd >= 0)
                                refuse(fd); /* first, so its slot takes the spare back */
                        spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                        if (fd >= 0)
                                continue;
                }
                if (fd >= 0) {
                        /* fds are handed out lowest first: every one below
                         * fd is taken, at most limit - 1 - fd are free. */
                        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && (rlim_t) fd + FDS_RESERVE >= rl.rlim_cur) {
                                refuse(fd);
                                continue;
                        }
                        if (refused > 0)
                                log_info("file descriptors free again: accepting connections (%u refused "
                                         "meanwhile)", refused);
                        refused = 0;
                        accept_one(d, fd);
                        continue;
                }
                if (err == EINTR || err == ECONNABORTED)
                        continue;
                /* No spare to refuse it with (the system is out of files,
                 * ENFILE, and took the slot back): the next wake-up, at
                 * once, tries to open one again. */
                if ((err == EMFILE || err == ENFILE) && refused++ == 0)
                        log_warning("cannot accept a connection: %s", strerror(err));
                else if (err != EAGAIN && err != EMFILE && err != ENFILE)
                        log_warning("accept: %s", strerror(err));
                return;
        }
}

static int client_hold(struct client *c, struct region *r) {
        for (size_t i = 0; i < c->n_regions; i++)
                if (c->regions[i] == r)
                        return 0; /* one connection holds a region once */
        if (c->n_regions == c->cap_regions) {
                size_t cap = c->cap_regions ? c->cap_regions * 2 : 8;
                struct region **m = realloc(c->regions, cap * sizeof(*m));

                if (!m)
                        return -ENOMEM;
                c->regions = m;
                c->cap_regions = cap;
        }
        c->regions[c->n_regions++] = r;
        return 1;
}

static bool client_unhold(struct client *c, struct region *r) {
        for (size_t i = 0; i < c->n_regions; i++)
                if (c->regions[i] == r) {
                        c->regions[i] = c->regions[--c->n_regions];
                        quota_uncharge(c->uid, QUOTA_REGIONS, 1);
                        return true;
                }
        return false;
}

/* ---- requests ----------------------------------------------------------- */

struct reply {
        char body[PROTO_MSG_MAX];
        size_t len;
        int fds[2];
        size_t n_fds;
        bool owned; /* fds[0] is ours to close once sent */
        int result;
};

static void reply_body(struct reply *rep, const void *body, size_t len) {
        memcpy(rep->body, body, len);
        rep->len = len;
}

/* A body and one fd of our own, closed once sent. */
static void reply_with_fd(struct reply *rep, const void *body, size_t len, int fd) {
        reply_body(rep, body, len);
        rep->fds[0] = fd;
        rep->n_fds = 1;
        rep->owned = true;
}

static void handle_register(struct daemon *d, struct client *c, const struct proto_msg *m, const int *fds,
                            struct reply *rep) {
        struct proto_register_rep out;
        struct region *r;
        int held;

        /* A hold is charged first: a uid at its quota makes the daemon
         * create nothing. */
        rep->result = quota_charge(c->uid, QUOTA_REGIONS, 1);
        if (rep->result < 0)
                return;
        rep->result = registry_register(&d->registry, fds[0], m->hdr.n_fds > 1 ? fds[1] : -1, c->uid, &r);
        if (rep->result < 0) {
                quota_uncharge(c->uid, QUOTA_REGIONS, 1);
                return;
        }
        /* registry_register() counted a holder: keep the count only for a
         * connection that did not hold the region yet. */
        held = client_hold(c, r);
        cgroups_charge(d->cgroups, r, c->cgroup);
        if (held <= 0) {
                registry_unhold(&d->registry, r);
                quota_uncharge(c->uid, QUOTA_REGIONS, 1);
        }
        if (held < 0) {
                rep->result = held;
                return;
        }
        out = (struct proto_register_rep) { r->npages, r->map_len, page(), 0 };
        rep->fds[0] = r->state_fd;
        if (fd_can_write(fds[0]) <= 0) {
                char path[64];

                /* Read-only holders get a read-only open of the block. */
                snprintf(path, sizeof(path), "/proc/self/fd/%d", r->state_fd);
                rep->fds[0] = open(path, O_RDONLY | O_CLOEXEC);
                if (rep->fds[0] < 0) {
                        rep->result = negative_errno();
                        return;
                }
                rep->owned = true;
                out.flags |= PROTO_REGISTER_READ_ONLY;
        }
        reply_body(rep, &out, sizeof(out));
        rep->fds[1] = d->registry.clock_fd;
        rep->n_fds = 2;
}

static void handle_unregister(struct daemon *d, struct client *c, const struct proto_msg *m, struct reply *rep) {
        struct proto_unregister_req req;
        struct region *r;

        memcpy(&req, m->body, sizeof(req));
        r = registry_find(&d->registry, req.dev, req.ino);
        if (!r || !client_unhold(c, r)) {
                rep->result = -ENOENT;
                return;
        }
        registry_unhold(&d->registry, r);
}

/* Root purges everyone's regions if asked to; anyone else only regions
 * they own. */
static void handle_purge(struct daemon *d, struct client *c, const struct proto_msg *m, struct reply *rep) {
        struct proto_purge_req req;
        struct proto_purge_rep out;
        struct registry_totals t;
        char size[SIZE_FORMAT_MAX];
        uid_t scope = c->uid;

        memcpy(&req, m->body, sizeof(req));
        if ((req.flags & ~PROTO_PURGE_ALL_USERS) || req.reserved) {
                rep->result = -EINVAL;
                return;
        }
        if (req.flags & PROTO_PURGE_ALL_USERS) {
                if (c->uid != 0) {
                        rep->result = -EPERM;
                        return;
                }
                scope = (uid_t) -1;
        }
        registry_totals(&d->registry, scope, &t);
        out.lru_pages = t.unpinned;
        out.purged_bytes = registry_purge(&d->registry, scope, req.bytes ? req.bytes : UINT64_MAX);
        size_format(out.purged_bytes, size, sizeof(size));
        log_ratelimited(LOG_LEVEL_INFO, "pid %d uid %u purged %s", (int) c->pid, (unsigned) c->uid, size);
        reply_body(rep, &out, sizeof(out));
}

static void handle_status(struct daemon *d, struct reply *rep) {
        struct proto_status_rep out = { 0 };
        struct registry_totals t;

        registry_totals(&d->registry, (uid_t) -1, &t);
        out.pid = (uint64_t) getpid();
        out.uptime_ms = (now_usec() - d->start_usec) / 1000;
        out.max_unpinned = d->max_unpinned;
        out.regions = d->registry.n_regions;
        out.clients = d->n_clients;
        out.pinned_bytes = t.pinned * page();
        out.unpinned_bytes = t.unpinned * page();
        out.purged_bytes = (t.purged + t.purging) * page();
        out.purges = d->registry.purges;
        out.purged_total = d->registry.purged_total;
        out.pressure_events = d->pressure_events;
        out.cgroup_limit = d->cgroup_limit;
        out.cgroup_usage = d->cgroup_usage;
        snprintf(out.pressure_source, sizeof(out.pressure_source), "%s",
                 d->pressure ? pressure_source(d->pressure) : "none");
        reply_body(rep, &out, sizeof(out));
}

static void list_entry(const struct region *r, struct proto_list_entry *e) {
        struct pinstate_info info = { 0 };

        if (r->ps)
                ashm__pinstate_info(r->ps, &info);
        *e = (struct proto_list_entry) {
                .dev = r->dev,
                .ino = r->ino,
                .size = r->npages * page(),
                .pinned = info.pinned * page(),
                .unpinned = info.unpinned * page(),
                .purged = (info.purged + info.purging) * page(),
                .uid = r->uid,
                .holders = r->holders,
        };
        snprintf(e->name, sizeof(e->name), "%s", r->name);
}

/* ---- list replies ------------------------------------------------------- */

/* A list (LIST, NAMES) goes in a memfd: no size limit on the socket. Its
 * asker keeps that memfd as long as it likes, and the memory is the
 * daemon's: charged to the asker's uid while the asker holds it. The
 * asker gets a read-only open of a file of mode 0444 (nobody else can
 * write it); the daemon keeps the memfd to punch it and a read-only
 * probe: a write lease on the probe is granted only once no other open
 * file of it is left (the kernel counts read-only opens, mappings
 * included), which is how the daemon learns that the asker let go.
 * Past the quota, or past HELD_MAX replies, the uid's oldest replies are
 * punched (it reads zeros from them: an honest client has read its list
 * long before). A released reply is punched too: an O_PATH reopen,
 * which the count misses, would keep nothing. */
#define HELD_MAX 16

struct held_reply {
        int fd, probe;
        uid_t uid;
        uint64_t cost;
        struct held_reply *next;
};

static bool held_released(const struct held_reply *h) {
        if (fcntl(h->probe, F_SETLEASE, F_WRLCK) < 0)
                return errno == EINVAL; /* no leases here: only the quota bounds them */
        (void) fcntl(h->probe, F_SETLEASE, F_UNLCK);
        return true;
}

static void held_free(struct held_reply **hp) {
        struct held_reply *h = *hp;
        struct stat st;

        if (h->fd >= 0 && fstat(h->fd, &st) == 0 && st.st_size > 0)
                (void) fallocate(h->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, st.st_size);
        quota_uncharge(h->uid, QUOTA_MEMORY, h->cost);
        *hp = h->next;
        safe_close(h->fd);
        safe_close(h->probe);
        free(h);
}

/* Free the released replies of uid ((uid_t) -1: of everyone); returns
 * how many of uid's are still held. */
static unsigned held_sweep(struct daemon *d, uid_t uid) {
        unsigned n = 0;

        for (struct held_reply **hp = &d->held; *hp;) {
                if ((uid == (uid_t) -1 || (*hp)->uid == uid) && held_released(*hp)) {
                        held_free(hp);
                        continue;
                }
                n += (*hp)->uid == uid;
                hp = &(*hp)->next;
        }
        return n;
}

void server_sweep_replies(struct daemon *d) {
        held_sweep(d, (uid_t) -1);
}

/* Free the uid's released replies; then, while it holds HELD_MAX or
 * cannot afford cost more, its oldest. */
static void held_make_room(struct daemon *d, uid_t uid, uint64_t cost) {
        struct held_reply **oldest;
        struct quota_user *u = quota_user(uid);
        unsigned n = held_sweep(d, uid);

        while (n > 0 && (n >= HELD_MAX || (u && uid != 0 && u->used[QUOTA_MEMORY] + cost > quota_limit(QUOTA_MEMORY)))) {
                oldest = NULL;
                for (struct held_reply **hp = &d->held; *hp; hp = &(*hp)->next)
                        if ((*hp)->uid == uid)
                                oldest = hp;
                held_free(oldest);
                n--;
        }
}

/* Keep a reply (fd, -1 for none to punch, and a read-only probe, both
 * consumed) charged to uid. -EDQUOT past its quota. */
static int held_add(struct daemon *d, uid_t uid, int fd, int probe, uint64_t cost) {
        struct held_reply *h = malloc(sizeof(*h));
        int r;

        cost += sizeof(*h) + 1024; /* and the inode */
        held_make_room(d, uid, cost);
        r = h ? quota_charge(uid, QUOTA_MEMORY, cost) : -ENOMEM;
        if (r < 0) {
                free(h);
                safe_close(fd);
                safe_close(probe);
                return r;
        }
        *h = (struct held_reply) { fd, probe, uid, cost, d->held };
        d->held = h;
        return 0;
}

static int reopen_ro(int fd) {
        char path[64];
        int r;

        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        r = open(path, O_RDONLY | O_CLOEXEC);
        return r < 0 ? negative_errno() : r;
}

static int list_begin(const char *name) {
        return memfd_new(name, false);
}

/* The list in fd (consumed) is complete: keep it, charged to the asker,
 * and give the reply a read-only open of it. */
static void list_finish(struct daemon *d, struct client *c, int fd, const void *body, size_t len,
                        struct reply *rep) {
        _cleanup_close_ int list = fd, probe = -1, ro = -1;
        struct stat st;

        if (fcntl(list, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0 || fchmod(list, 0444) < 0 ||
            fstat(list, &st) < 0) {
                rep->result = negative_errno();
                return;
        }
        probe = reopen_ro(list);
        ro = reopen_ro(list);
        if (probe < 0 || ro < 0) {
                rep->result = probe < 0 ? probe : ro;
                return;
        }
        rep->result = held_add(d, c->uid, TAKE_FD(list), TAKE_FD(probe), (uint64_t) st.st_size);
        if (rep->result >= 0)
                reply_with_fd(rep, body, len, TAKE_FD(ro));
}

void server_free_replies(struct daemon *d) {
        while (d->held)
                held_free(&d->held);
}

static void handle_list(struct daemon *d, struct client *c, struct reply *rep) {
        struct proto_list_rep out = { 0, sizeof(struct proto_list_entry) };
        struct proto_list_entry e;
        int fd = list_begin("ashmd-list");

        if (fd < 0) {
                rep->result = fd;
                return;
        }
        for (struct region *r = d->registry.regions; r; r = r->next) {
                if (c->uid != 0 && r->uid != c->uid)
                        continue;
                list_entry(r, &e);
                if (write_full(fd, &e, sizeof(e)) < 0) {
                        rep->result = -ENOMEM;
                        safe_close(fd);
                        return;
                }
                out.count++;
        }
        list_finish(d, c, fd, &out, sizeof(out), rep);
}

/* ---- the broker ---------------------------------------------------------- */

static struct peer peer_of(const struct client *c) {
        return (struct peer) { c->pid, c->uid, c->gid, c->groups, c->n_groups, c };
}

static void handle_publish(struct daemon *d, struct client *c, const struct proto_msg *m, const int *fds,
                           struct reply *rep) {
        struct proto_publish_req req;
        struct peer p = peer_of(c);

        memcpy(&req, m->body, sizeof(req));
        rep->result = broker_publish(&d->broker, &p, fds[0], &req);
}

static void handle_lookup(struct daemon *d, struct client *c, const struct proto_msg *m, struct reply *rep) {
        struct proto_lookup_req req;
        struct proto_lookup_rep out;
        struct peer p = peer_of(c);
        int fd;

        memcpy(&req, m->body, sizeof(req));
        rep->result = broker_lookup(&d->broker, &p, &req, &out, &fd);
        if (rep->result < 0)
                return;
        /* A frozen copy is daemon memory the asker holds: charged like a
         * list reply (it is sealed: nothing to punch). */
        if (out.flags & PROTO_LOOKUP_COPY) {
                struct stat st;
                int probe = fstat(fd, &st) < 0 ? negative_errno() : reopen_ro(fd);

                rep->result = probe < 0 ? probe : held_add(d, c->uid, -1, probe, (uint64_t) st.st_blocks * 512);
                if (rep->result < 0) {
                        safe_close(fd);
                        return;
                }
        }
        reply_with_fd(rep, &out, sizeof(out), fd);
}

static void handle_unpublish(struct daemon *d, struct client *c, const struct proto_msg *m, struct reply *rep) {
        struct proto_unpublish_req req;
        struct peer p = peer_of(c);

        memcpy(&req, m->body, sizeof(req));
        rep->result = broker_unpublish(&d->broker, &p, req.name);
}

static void handle_names(struct daemon *d, struct client *c, struct reply *rep) {
        struct proto_list_rep out = { 0, sizeof(struct proto_name_entry) };
        struct peer p = peer_of(c);
        int fd = list_begin("ashmd-names");

        if (fd < 0) {
                rep->result = fd;
                return;
        }
        rep->result = broker_names(&d->broker, &p, fd, &out.count);
        if (rep->result < 0) {
                safe_close(fd);
                return;
        }
        list_finish(d, c, fd, &out, sizeof(out), rep);
}

static int send_reply(struct client *c, const struct proto_msg *m, const struct reply *rep) {
        char buf[PROTO_MSG_MAX];
        struct proto_hdr h;
        bool ok = rep->result >= 0;
        ssize_t n;

        proto_header(&h, m->hdr.type | PROTO_REPLY, m->hdr.seq, rep->result, ok ? (uint32_t) rep->n_fds : 0);
        memcpy(buf, &h, sizeof(h));
        if (ok)
                memcpy(buf + sizeof(h), rep->body, rep->len);
        n = send_fds(c->fd, buf, h.len, rep->fds, h.n_fds);
        return n < 0 ? (int) n : 0;
}

static int dispatch(struct daemon *d, struct client *c, const struct proto_msg *m, const int *fds) {
        struct reply rep = { .fds = { -1, -1 } };
        int r;

        /* A list reply is usually closed before the next request. */
        if (d->held)
                held_sweep(d, c->uid);
        switch (m->hdr.type) {
        case PROTO_REGISTER:
                handle_register(d, c, m, fds, &rep);
                break;
        case PROTO_UNREGISTER:
                handle_unregister(d, c, m, &rep);
                break;
        case PROTO_PURGE:
                handle_purge(d, c, m, &rep);
                break;
        case PROTO_STATUS:
                handle_status(d, &rep);
                break;
        case PROTO_LIST:
                handle_list(d, c, &rep);
                break;
        case PROTO_PUBLISH:
                handle_publish(d, c, m, fds, &rep);
                break;
        case PROTO_LOOKUP:
                handle_lookup(d, c, m, &rep);
                break;
        case PROTO_UNPUBLISH:
                handle_unpublish(d, c, m, &rep);
                break;
        case PROTO_NAMES:
                handle_names(d, c, &rep);
                break;
        }
        r = send_reply(c, m, &rep);
        if (rep.owned)
                safe_close(rep.fds[0]);
        return r;
}

/* The request's fds could not be installed: we are out of fds. Say so
 * to the client, on a connection that stays open, if the header that did
 * arrive (buf was zeroed before the receive) is one of ours. */
static int refuse_emfile(struct client *c, const char *buf) {
        struct proto_hdr h, out;

        memcpy(&h, buf, sizeof(h));
        if (h.magic != PROTO_MAGIC || h.version != PROTO_VERSION || proto_body_size(h.type) < 0 ||
            (h.type & PROTO_REPLY))
                return -EBADMSG;
        log_warning_ratelimited("client pid %d uid %u: out of fds for its request; answered EMFILE", (int) c->pid,
                                (unsigned) c->uid);
        proto_header(&out, h.type | PROTO_REPLY, h.seq, -EMFILE, 0);
        return send_fds(c->fd, &out, sizeof(out), NULL, 0) < 0 ? -EIO : 0;
}

void server_client_ready(struct daemon *d, struct client *c) {
        char buf[PROTO_MSG_MAX];
        int fds[PROTO_FDS_MAX];
        size_t n_fds = 0;
        struct proto_msg m;
        ssize_t n;
        int r;

        memset(buf, 0, sizeof(struct proto_hdr)); /* see refuse_emfile() */
        n = recv_fds(c->fd, buf, sizeof(buf), fds, PROTO_FDS_MAX, &n_fds);
        if (n == -EAGAIN || n == -EINTR)
                return;
        if (n == -EMFILE && refuse_emfile(c, buf) >= 0)
                return;
        if (n < 0) {
                if (n != -ECONNRESET)
                        log_warning_ratelimited("client pid %d uid %u: %s; closing its connection", (int) c->pid,
                                                (unsigned) c->uid,
                                                n == -EMSGSIZE ? "oversized message or too many fds" :
                                                                 strerror((int) -n));
                client_close(d, c);
                return;
        }
        r = proto_decode(buf, (size_t) n, n_fds, 0, &m);
        if (r < 0) {
                log_warning_ratelimited("client pid %d uid %u: malformed message (%s, %zd bytes, %zu fds); closing "
                                        "its connection",
                                        (int) c->pid, (unsigned) c->uid,
                                        r == -EPROTONOSUPPORT ? "unknown protocol version" : "bad header or body",
                                        n, n_fds);
                close_many(fds, n_fds);
                client_close(d, c);
                return;
        }
        r = dispatch(d, c, &m, fds);
        close_many(fds, n_fds);
        if (r < 0) {
                log_warning_ratelimited("client pid %d uid %u: cannot reply: %s; closing its connection",
                                        (int) c->pid, (unsigned) c->uid, strerror(-r));
                client_close(d, c);
        }
}

/* ---- limits ------------------------------------------------------------- */

void server_enforce_limits(struct daemon *d) {
        struct registry_totals t;
        uint64_t unpinned, want = 0;
        struct cgroup_memory cg;

        registry_totals(&d->registry, (uid_t) -1, &t);
        unpinned = t.unpinned * page();
        if (unpinned > d->max_unpinned)
                want = unpinned - d->max_unpinned;
        if (cgroup_memory_state(NULL, &cg) >= 0) {
                d->cgroup_limit = cg.limit;
                d->cgroup_usage = cg.usage;
                if (cg.limit != UINT64_MAX && cg.headroom < d->cgroup_margin)
                        want = MAX(want, d->cgroup_margin - cg.headroom);
        }
        if (want == 0)
                return;
        want = MIN(want, unpinned);
        if (want > 0)
                registry_purge(&d->registry, (uid_t) -1, want);
}

/* At exit the regions are not let go: their holders keep their blocks,
 * and the next daemon takes them over when they register again. */
void server_close_all(struct daemon *d) {
        while (d->clients) {
                struct client *c = d->clients;

                d->clients = c->next;
                safe_close(c->fd);
                free(c->regions);
                free(c->groups);
                free(c);
        }
        d->n_clients = 0;
}
