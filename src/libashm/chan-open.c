/* SPDX-License-Identifier: MIT */
/*
 * Channels: create, open and close, peer liveness from OFD locks, stat.
 * The trust rules are at the top of chan.c.
 */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ashm.h"
#include "chan.h"
#include "fd-util.h"
#include "futex-util.h"
#include "fork-gen.h"
#include "internal.h"
/* ------------------------------------------------------------------ */
/* Liveness: OFD locks                                                 */

static int lock_byte(int fd, int cmd, short type, int64_t start, int64_t len, short *ret_type) {
        struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };

        if (fcntl(fd, cmd, &fl) < 0)
                return negative_errno();
        if (ret_type)
                *ret_type = fl.l_type;
        return 0;
}

/* 1 if some other open file description holds a write lock in
 * [start, start + len): an endpoint. The read locks of watchers
 * (chan-watch.c) do not count. */
int ashm__chan_locked(int fd, int64_t start, int64_t len) {
        short type;
        int r = lock_byte(fd, F_OFD_GETLK, F_RDLCK, start, len, &type);

        return r < 0 ? r : type != F_UNLCK;
}

/* The endpoint bytes of the readers (writers: false) or of the writers
 * (true): the single consumer's or publisher's byte, or the range of the
 * producers' or subscribers' bytes. The liveness probes below and the
 * watcher (chan.c watch_peers()) ask about the same bytes. */
void ashm__chan_side(const ashm_chan *ch, bool writers, int64_t *ret_start, int64_t *ret_len) {
        bool single = writers == (ch->kind == ASHM_CHAN_PUBSUB);

        *ret_start = single ? LOCK_BASE : LOCK_BASE + 1;
        *ret_len = single ? 1 : ch->peers;
}

static int side_alive(const ashm_chan *ch, bool writers) {
        int64_t start, len;

        ashm__chan_side(ch, writers, &start, &len);
        return ashm__chan_locked(ch->lock_fd, start, len);
}

int ashm__chan_readers_alive(const ashm_chan *ch) {
        return side_alive(ch, false);
}

int ashm__chan_writers_alive(const ashm_chan *ch) {
        return side_alive(ch, true);
}

/* ------------------------------------------------------------------ */
/* Create and open                                                     */

_public_ int ashm_chan_create(const char *name, int kind, uint32_t msg_max, uint32_t depth, uint32_t peers,
                              unsigned flags, ashm_region **ret_region) {
        ashm_region *region = NULL;
        struct chan_hdr h;
        uint64_t size;
        int r;

        if (!ret_region || (flags & ~(unsigned) ASHM_CHAN_OVERWRITE) ||
            ((flags & ASHM_CHAN_OVERWRITE) && kind != ASHM_CHAN_PUBSUB))
                return -EINVAL;
        r = ashm__chan_layout((uint32_t) kind, msg_max, depth, peers, &h);
        if (r < 0)
                return r;
        h.flags = flags;
        /* The region has its final size from the start: channels never
         * grow, so a region sealed against growing and shrinking works. */
        r = ashm_region_create(name ? name : "ashm-chan", h.total, 0, &region);
        if (r < 0)
                return r;
        /* The header is written last by nobody else: no one can open the
         * channel before it has its magic, and the rest is zeros. Straight
         * to the fd, as ashm_region_write() would without its fstat: the
         * region is new, its size ours, no pin of it purged anything. */
        r = pwrite_full(ashm__region_fd(region, &size), &h, sizeof(h), 0);
        if (r < 0) {
                ashm_region_close(region);
                return r;
        }
        *ret_region = region;
        return 0;
}

/* The header, from the fd (never from a mapping: it is copied once and
 * checked, and the handle keeps the copy). size: the region's, if known
 * (see ashm__region_fd()), else UINT64_MAX for an fstat. */
static int read_header(int fd, uint64_t size, struct chan_hdr *ret) {
        struct chan_hdr h, want;
        int r;

        if (size == UINT64_MAX) {
                struct stat st;

                if (fstat(fd, &st) < 0)
                        return negative_errno();
                size = (uint64_t) st.st_size;
        }
        if (size < CHAN_PAGE)
                return -EBADMSG;
        r = pread_full(fd, &h, sizeof(h), 0);
        if (r < 0)
                return r;
        if (h.magic != CHAN_MAGIC)
                return -EBADMSG;
        if (h.version != CHAN_VERSION)
                return -EPROTONOSUPPORT;
        r = ashm__chan_layout(h.kind, h.msg_max, h.depth, h.peers, &want);
        if (r < 0)
                return -EBADMSG;
        want.flags = h.flags;
        if ((h.flags & ~(unsigned) ASHM_CHAN_OVERWRITE) || memcmp(&h, &want, sizeof(h)) != 0 ||
            size < h.total || h.total > SIZE_MAX)
                return -EBADMSG;
        *ret = h;
        return 0;
}

/* Our own open file description of the region: OFD locks belong to it,
 * and every holder of a dup or a passed fd shares the original's. With
 * fd's access mode, so a read-only holder stays one; rdwr: fd is known
 * to be O_RDWR (a region created here), which spares the F_GETFL. */
static int reopen(int fd, bool rdwr, bool *ret_writable) {
        char path[64];
        int r;

        if (!rdwr) {
                int fl = fcntl(fd, F_GETFL);

                if (fl < 0)
                        return negative_errno();
                rdwr = (fl & O_ACCMODE) != O_RDONLY;
        }
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        r = open(path, (rdwr ? O_RDWR : O_RDONLY) | O_CLOEXEC);
        if (r < 0)
                return negative_errno();
        *ret_writable = rdwr;
        return r;
}

/* Take the write lock on the lowest free endpoint byte in [first,
 * first + n): exclusive, so two peers racing for one cannot both get it.
 * -EBUSY when endpoints hold them all. A watcher's read lock
 * (chan-watch.c) lasts two syscalls: a byte read-locked but not
 * write-locked is tried again, for 5 ms at most, sleeping between rounds
 * (a read lock held longer is somebody's mischief: -EBUSY too). */
static int claim(int fd, int64_t first, unsigned n, unsigned *ret_index) {
        int64_t end = 0;

        for (;;) {
                bool transient = false;

                for (unsigned i = 0; i < n; i++) {
                        int r = lock_byte(fd, F_OFD_SETLK, F_WRLCK, first + i, 1, NULL);

                        if (r == 0) {
                                *ret_index = i;
                                return 0;
                        }
                        if (r != -EAGAIN && r != -EACCES)
                                return r;
                        r = ashm__chan_locked(fd, first + i, 1);
                        if (r < 0)
                                return r;
                        transient |= r == 0;
                }
                if (!transient)
                        return -EBUSY;
                if (end == 0)
                        end = clock_monotonic_ns() + 5 * 1000 * 1000;
                else if (clock_monotonic_ns() >= end)
                        return -EBUSY;
                nanosleep(&(struct timespec) { .tv_nsec = 50 * 1000 }, NULL);
        }
}

static int claim_byte(int fd, int64_t byte) {
        unsigned index;

        return claim(fd, byte, 1, &index);
}

static int map_channel(ashm_chan *ch, int fd, const struct chan_hdr *h, bool writable) {
        void *p = mmap(NULL, h->total, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);

        if (p == MAP_FAILED)
                return negative_errno();
        ch->base = p;
        ch->total = h->total;
        ch->kind = h->kind;
        ch->flags = h->flags;
        ch->msg_max = h->msg_max;
        ch->depth = h->depth;
        ch->peers = h->peers;
        ch->stride = h->stride;
        ch->ring_bytes = h->ring_bytes;
        ch->g = (struct chan_global *) (ch->base + h->ctl_off);
        ch->rings = (struct ring_ctl *) (ch->base + h->ctl_off + sizeof(struct chan_global));
        ch->slots = ch->base + h->rings_off;
        ch->subs = (struct sub_page *) (ch->base + h->peers_off);
        return 0;
}

/* The seq of the slot at pos of a ring, read through our fd rather than
 * the mapping: a ring page nobody wrote yet is a hole, and a fault on a
 * shmem hole allocates (and zeroes) a page, which pread does not. Only
 * attach reads it this way; a value that is not exactly pos + 1 means
 * "not committed" to every caller, as any torn or scribbled one does. */
static int slot_seq(const ashm_chan *ch, unsigned ring, uint64_t pos, uint64_t *ret_seq) {
        uint64_t off = (uint64_t) ((uint8_t *) slot_at(ch, ring, pos) - ch->base);

        return pread_full(ch->lock_fd, ret_seq, sizeof(*ret_seq), (off_t) off);
}

/* 1 if the slot at pos of a ring holds a committed message, else 0. */
static int committed(const ashm_chan *ch, unsigned ring, uint64_t pos) {
        uint64_t seq;
        int r = slot_seq(ch, ring, pos, &seq);

        return r < 0 ? r : seq == pos + 1;
}

/* Ring i's tail as a restarted producer carries on from, and its head.
 * What the last holder of the ring reserved and never committed is not
 * behind the tail, so it is simply written over. A holder killed
 * between its commit and its tail store may have had that message
 * consumed already (the head is then one past the tail), or not (the
 * slot past the tail holds it, committed): the tail goes past it. */
static int committed_tail(const ashm_chan *ch, unsigned i, uint64_t *ret_tail, uint64_t *ret_head) {
        uint64_t tail = LOAD(&ch->rings[i].tail), head = LOAD(&ch->rings[i].head);

        if (head - tail == 1)
                tail = head;
        if (tail - head > ch->depth)
                return -EBADMSG;
        while (tail - head < ch->depth) {
                int r = committed(ch, i, tail);

                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                tail++;
        }
        *ret_tail = tail;
        *ret_head = head;
        return 0;
}

/* The attach step of each role, after the lock is held. A sleeper that
 * had no peer to watch yet (a receiver before the first writer, a
 * producer before the first consumer) is woken to learn of one. */
static int attach_producer(ashm_chan *ch) {
        uint64_t tail, head;
        int r = committed_tail(ch, ch->index, &tail, &head);

        if (r < 0)
                return r;
        STORE(&ch->rings[ch->index].tail, tail);
        ch->pos = tail;
        ch->cached = head;
        __atomic_fetch_add(&ch->g->writer_gen, 1, __ATOMIC_SEQ_CST);
        chan_bump_wake(&ch->g->data_ev);
        return 0;
}

static int attach_consumer(ashm_chan *ch) {
        ch->heads = calloc(ch->peers, sizeof(uint64_t));
        if (!ch->heads)
                return -ENOMEM;
        for (unsigned i = 0; i < ch->peers; i++) {
                uint64_t head = LOAD(&ch->rings[i].head), tail = LOAD(&ch->rings[i].tail);

                /* head == tail + 1: see attach_producer(). */
                if (tail - head > ch->depth && head - tail != 1)
                        return -EBADMSG;
                ch->heads[i] = head;
        }
        __atomic_fetch_add(&ch->g->reader_gen, 1, __ATOMIC_SEQ_CST);
        for (unsigned i = 0; i < ch->peers; i++)
                chan_bump_wake(&ch->rings[i].space_ev);
        return 0;
}

static int attach_publisher(ashm_chan *ch) {
        uint64_t tail = LOAD(&ch->rings[0].tail);
        int r = committed(ch, 0, tail);

        if (r < 0)
                return r;
        /* As for a producer: a commit whose tail store was cut off. */
        if (r > 0)
                STORE(&ch->rings[0].tail, ++tail);
        ch->pos = tail;
        __atomic_fetch_add(&ch->g->writer_gen, 1, __ATOMIC_SEQ_CST);
        chan_bump_wake(&ch->g->data_ev);
        return 0;
}

static int attach_subscriber(ashm_chan *ch, int fd) {
        uint64_t tail = LOAD(&ch->rings[0].tail);
        void *p;
        int r;

        if (ch->index == UINT32_MAX) {
                /* Read-only: no page, no say in the publisher's pace. */
                ch->pos = tail;
                return 0;
        }
        p = mmap(NULL, CHAN_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                 (off_t) ((uint8_t *) ch->subs - ch->base) + (off_t) ch->index * CHAN_PAGE);
        if (p == MAP_FAILED)
                return negative_errno();
        ch->mine_map = p;
        ch->mine = p;
        /* A message committed whose tail store is still to come: it is
         * the publisher's, before our time (its last scan of the
         * cursors may not have seen us). */
        r = committed(ch, 0, tail);
        if (r < 0)
                return r;
        tail += (uint64_t) r;
        /* A page that was used before belongs to a subscriber that died:
         * carry on from its cursor, as the same subscriber restarted. */
        if (LOAD(&ch->mine->active) && tail - LOAD(&ch->mine->cursor) <= ch->depth)
                ch->pos = LOAD(&ch->mine->cursor);
        else
                ch->pos = tail;
        STORE(&ch->mine->cursor, ch->pos);
        STORE(&ch->mine->active, 1);
        ch->lost = LOADR(&ch->mine->lost);
        FENCE();
        return 0;
}

_public_ void ashm_chan_close(ashm_chan *ch) {
        if (!ch)
                return;
        if (!ashm__chan_forked(ch)) {
                /* Before anything they look at is unmapped. */
                if (ch->thread_running)
                        ashm__chan_fd_thread_stop(ch);
                ashm__chan_watch_stop(ch);
                ashm__chan_tick_leave(ch);
        }
        pthread_mutex_destroy(&ch->watch_lock);
        if (ch->mine && !ashm__chan_forked(ch)) {
                /* Closed, not killed: give the place up, so it holds the
                 * publisher back no more. */
                STORE(&ch->mine->active, 0);
                ashm__chan_wake_writer(ch, 0);
        }
        if (ch->mine_map)
                munmap(ch->mine_map, CHAN_PAGE);
        if (ch->base)
                munmap(ch->base, ch->total);
        safe_close(ch->event_fd);
        safe_close(ch->lock_fd); /* drops our locks: peers see us gone */
        free(ch->heads);
        free(ch);
}

_public_ int ashm_chan_open(const ashm_region *region, int role, unsigned flags, ashm_chan **ret_chan) {
        ashm_chan *ch;
        struct chan_hdr h;
        uint64_t known_size;
        bool writable;
        int fd, r;

        if (!region || !ret_chan || flags != 0 || role < ASHM_CHAN_PRODUCER || role > ASHM_CHAN_SUBSCRIBER)
                return -EINVAL;
        fd = ashm__region_fd(region, &known_size);
        r = read_header(fd, known_size, &h);
        if (r < 0)
                return r;
        if ((h.kind == ASHM_CHAN_QUEUE) != (role == ASHM_CHAN_PRODUCER || role == ASHM_CHAN_CONSUMER))
                return -EPROTOTYPE;
        ch = calloc(1, sizeof(*ch));
        if (!ch)
                return -ENOMEM;
        pthread_mutex_init(&ch->watch_lock, NULL);
        ch->role = role;
        ch->event_fd = -1;
        ch->spin_ns = ASHM_CHAN_SPIN_DEFAULT_NS;
        ch->fork_gen = ashm__fork_gen_start();
        ch->lock_fd = reopen(fd, known_size != UINT64_MAX, &writable);
        if (ch->lock_fd < 0) {
                r = ch->lock_fd;
                goto err;
        }
        if (!writable && role != ASHM_CHAN_SUBSCRIBER) {
                r = -EPERM;
                goto err;
        }
        r = map_channel(ch, ch->lock_fd, &h, writable && role != ASHM_CHAN_SUBSCRIBER);
        if (r < 0)
                goto err;
        if (role == ASHM_CHAN_CONSUMER || role == ASHM_CHAN_PUBLISHER)
                r = claim_byte(ch->lock_fd, LOCK_BASE);
        else if (writable)
                r = claim(ch->lock_fd, LOCK_BASE + 1, ch->peers, &ch->index);
        else
                ch->index = UINT32_MAX;
        if (r < 0)
                goto err;
        switch (role) {
        case ASHM_CHAN_PRODUCER: r = attach_producer(ch); break;
        case ASHM_CHAN_CONSUMER: r = attach_consumer(ch); break;
        case ASHM_CHAN_PUBLISHER: r = attach_publisher(ch); break;
        default: r = attach_subscriber(ch, ch->lock_fd); break;
        }
        if (r < 0)
                goto err;
        *ret_chan = ch;
        return 0;
err:
        ashm_chan_close(ch);
        return r;
}

/* ------------------------------------------------------------------ */
/* Stat: from a region, without being an endpoint                      */


_public_ int ashm_chan_stat(const ashm_region *region, ashm_chan_info *ret_info, ashm_chan_peer *ret_peers,
                            size_t n_peers) {
        ashm_chan ch = { .lock_fd = -1 };
        struct chan_hdr h;
        ashm_chan_info info = { 0 };
        uint64_t size;
        int fd, r;

        if (!region || !ret_info)
                return -EINVAL;
        fd = ashm__region_fd(region, &size);
        r = read_header(fd, size, &h);
        if (r < 0)
                return r;
        r = map_channel(&ch, fd, &h, false);
        if (r < 0)
                return r;
        ch.lock_fd = fd;
        info.kind = h.kind;
        info.flags = h.flags;
        info.msg_max = h.msg_max;
        info.depth = h.depth;
        info.peers = h.peers;
        info.size = h.total;
        for (unsigned i = 0; i < h.peers; i++) {
                ashm_chan_peer p = { .index = i };
                int alive = ashm__chan_locked(fd, LOCK_BASE + 1 + i, 1);

                p.alive = alive > 0;
                if (h.kind == ASHM_CHAN_QUEUE) {
                        uint64_t t, hd;

                        /* Counting a message committed by a producer
                         * killed before its tail store; a damaged ring
                         * as it stands. */
                        if (committed_tail(&ch, i, &t, &hd) < 0) {
                                t = LOAD(&ch.rings[i].tail);
                                hd = LOAD(&ch.rings[i].head);
                        }

                        p.position = t;
                        p.lag = t - hd <= h.depth ? t - hd : 0;
                        info.queued += p.lag;
                        info.sent += t;
                        info.producers += p.alive;
                } else {
                        uint64_t t = LOAD(&ch.rings[0].tail);

                        p.position = LOAD(&sub_at(&ch, i)->cursor);
                        p.lag = t - p.position;
                        p.lost = LOAD(&sub_at(&ch, i)->lost);
                        p.active = LOAD(&sub_at(&ch, i)->active);
                        /* Subscribed: alive, and its cursor set. */
                        info.subscribers += p.alive && p.active;
                        info.lost += p.lost;
                }
                if (i < n_peers && ret_peers)
                        ret_peers[i] = p;
        }
        r = ashm__chan_locked(fd, LOCK_BASE, 1);
        if (h.kind == ASHM_CHAN_QUEUE)
                info.consumers = r > 0;
        else {
                info.publishers = r > 0;
                info.sent = LOAD(&ch.rings[0].tail);
        }
        munmap(ch.base, ch.total);
        *ret_info = info;
        return 0;
}

_public_ int ashm_chan_is_channel(const ashm_region *region) {
        struct chan_hdr h;
        uint64_t size;
        int fd, r;

        if (!region)
                return -EINVAL;
        fd = ashm__region_fd(region, &size);
        r = read_header(fd, size, &h);
        if (r == -EBADMSG)
                return 0;
        return r < 0 ? r : 1;
}
