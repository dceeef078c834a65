/* SPDX-License-Identifier: MIT */
/*
 * Channels: message queues and publish/subscribe on a region of their
 * own. docs/channels.md has the layout, the memory order and the crash
 * and trust rules; the comments here say why each step is where it is.
 *
 * Trust: everything in the region may be scribbled by any holder of a
 * writable fd. So the geometry is read once at open, checked, and kept
 * in the handle; every index read later is taken modulo the depth the
 * handle knows, every position is checked against the handle's own, and
 * every length against msg_max. Nothing read from the region is ever
 * used as an address. Peer liveness comes from OFD locks, which the
 * kernel drops when the holder dies and which no write to memory fakes.
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
/* Small helpers                                                       */

bool ashm__chan_forked(const ashm_chan *ch) {
        return ashm__fork_gen() != ch->fork_gen;
}

static bool is_pow2(uint32_t x) {
        return x && !(x & (x - 1));
}

static uint64_t align_up(uint64_t x, uint64_t a) {
        return (x + a - 1) / a * a;
}

/* The layout for a geometry; -EINVAL if it is not one. */
int ashm__chan_layout(uint32_t kind, uint32_t msg_max, uint32_t depth, uint32_t peers, struct chan_hdr *h) {
        uint64_t rings;

        if ((kind != ASHM_CHAN_QUEUE && kind != ASHM_CHAN_PUBSUB) || msg_max == 0 ||
            msg_max > ASHM_CHAN_MSG_MAX || !is_pow2(depth) || depth < 2 || depth > ASHM_CHAN_DEPTH_MAX ||
            peers == 0 || peers > ASHM_CHAN_PEERS_MAX)
                return -EINVAL;
        rings = kind == ASHM_CHAN_QUEUE ? peers : 1;
        *h = (struct chan_hdr) {
                .magic = CHAN_MAGIC,
                .version = CHAN_VERSION,
                .kind = kind,
                .msg_max = msg_max,
                .depth = depth,
                .peers = peers,
                .stride = align_up(chan_slot_hdr(msg_max) + (uint64_t) msg_max, 64),
                /* The control words share page 0 with the header: a
                 * channel's setup allocates and faults in one page, not
                 * two (the rings stay holes until written). */
                .ctl_off = align_up(sizeof(struct chan_hdr), 64),
        };
        h->rings_off = align_up(h->ctl_off + sizeof(struct chan_global) + rings * sizeof(struct ring_ctl), CHAN_PAGE);
        h->ring_bytes = h->stride * depth;
        h->peers_off = h->rings_off + align_up(h->ring_bytes * rings, CHAN_PAGE);
        h->total = h->peers_off + (kind == ASHM_CHAN_PUBSUB ? (uint64_t) peers * CHAN_PAGE : 0);
        return 0;
}

/* ------------------------------------------------------------------ */
/* The non-blocking steps: each returns -EAGAIN when it would wait     */

/* After the seq_cst store of the slot's seq (commit): a sleeper
 * increments its word (seq_cst) and then looks at the seq, so either it
 * sees the message or we see it asleep. */
static void wake_readers(ashm_chan *ch) {
        if (ch->kind == ASHM_CHAN_QUEUE) {
                if (LOADS(&ch->g->data_sleepers) == 0)
                        return;
        } else {
                bool any = false;

                for (unsigned i = 0; i < ch->peers && !any; i++)
                        any = LOADS(&sub_at(ch, i)->sleeping) != 0;
                if (!any)
                        return;
        }
        chan_bump_wake(&ch->g->data_ev);
}

/* Producer: room for one more in our ring? The consumer's head is read
 * only when the one read last says the ring is full: its cache line
 * stays where it is on the fast path. */
static int producer_space(ashm_chan *ch) {
        uint64_t head;

        if (ch->pos - ch->cached < ch->depth)
                return 0;
        head = LOADS(&ch->rings[ch->index].head);
        if (ch->pos - head > ch->depth)
                return -EBADMSG; /* a head that nobody honest wrote */
        ch->cached = head;
        return ch->pos - head < ch->depth ? 0 : -EAGAIN;
}

/* Publisher with the blocking policy: is slot pos free for every
 * subscriber page in use? A page whose subscriber was killed keeps its
 * place (a restarted subscriber carries on from it without a loss), so
 * it holds us back too, but we do not wait for the dead: -ECONNRESET.
 * *ret_slow gets the index of a live one we wait for. */
static int publisher_space(ashm_chan *ch, unsigned *ret_slow) {
        uint64_t low = ch->pos;

        if (ch->flags & ASHM_CHAN_OVERWRITE)
                return 0;
        /* Cursors only move forward (a new subscriber starts at the
         * tail): the lowest one seen last is a safe bound. */
        if (ch->pos - ch->cached < ch->depth)
                return 0;
        for (unsigned i = 0; i < ch->peers; i++) {
                uint64_t cur;
                int r;

                if (!LOADS(&sub_at(ch, i)->active))
                        continue;
                cur = LOADS(&sub_at(ch, i)->cursor);
                if (ch->pos - cur < ch->depth) {
                        if (ch->pos - cur > ch->pos - low)
                                low = cur;
                        continue;
                }
                if (ch->pos - cur > ch->depth)
                        return -EBADMSG; /* no honest cursor is that far behind */
                /* Alive or not: the kernel's word, not the page's. */
                r = ashm__chan_locked(ch->lock_fd, LOCK_BASE + 1 + i, 1);
                if (r < 0)
                        return r;
                if (r == 0)
                        return -ECONNRESET;
                *ret_slow = i;
                return -EAGAIN;
        }
        ch->cached = low;
        return 0;
}

static int writer_try(ashm_chan *ch, unsigned *ret_slow) {
        return ch->kind == ASHM_CHAN_QUEUE ? producer_space(ch) : publisher_space(ch, ret_slow);
}

/* Queue consumer: the next ring with a message, from next_ring on. The
 * slot's own seq says a message is there: one cache line, shared with
 * the message itself when it is small. The tail is read only when the
 * slot says no: if the tail says yes, the slot was written over. */
static int consumer_find(ashm_chan *ch, unsigned *ret_ring, bool quick) {
        for (unsigned k = 0; k < ch->peers; k++) {
                unsigned i = ch->next_ring + k < ch->peers ? ch->next_ring + k : ch->next_ring + k - ch->peers;
                uint64_t head = ch->heads[i], tail;

                if (LOADS(&slot_at(ch, i, head)->seq) == head + 1) {
                        *ret_ring = i;
                        return 0;
                }
                if (quick)
                        continue;
                /* The tail moves just after the seq: we may have taken
                 * the message a producer has not counted yet. */
                tail = LOAD(&ch->rings[i].tail);
                if (tail == head || tail + 1 == head)
                        continue;
                if (tail - head > ch->depth || LOAD(&slot_at(ch, i, head)->seq) != head + 1)
                        return -EBADMSG;
                *ret_ring = i;
                return 0;
        }
        return -EAGAIN;
}

/* Subscriber: is there a message at our cursor? Skips what was lost. */
static int subscriber_find(ashm_chan *ch, bool quick) {
        uint64_t tail;

        if (LOADS(&slot_at(ch, 0, ch->pos)->seq) == ch->pos + 1)
                return 0;
        if (quick)
                return -EAGAIN;
        tail = LOAD(&ch->rings[0].tail);
        if (tail == ch->pos || tail + 1 == ch->pos)
                return -EAGAIN; /* the tail moves just after the seq */
        if (tail - ch->pos > (uint64_t) INT64_MAX)
                return -EBADMSG; /* the tail went backwards */
        if (tail - ch->pos > ch->depth) {
                uint64_t skip = tail - ch->pos - ch->depth;

                ch->lost += skip;
                ch->pos += skip;
        }
        return 0;
}

/* quick: look at the slot only, as a spinning reader does between
 * full looks. The tail (which says whether a slot was written over, or
 * a subscriber lapped) is the writer's busiest line: a reader polling it
 * too would pull it away from the writer on every message. */
static int reader_try(ashm_chan *ch, unsigned *ret_ring, bool quick) {
        if (ch->kind == ASHM_CHAN_QUEUE)
                return consumer_find(ch, ret_ring, quick);
        *ret_ring = 0;
        return subscriber_find(ch, quick);
}

static bool is_writer(const ashm_chan *ch) {
        return ch->role == ASHM_CHAN_PRODUCER || ch->role == ASHM_CHAN_PUBLISHER;
}

/* When an endpoint would wait: is it for good, because its peers are
 * gone? A receiver is told once every writer has gone and it has read
 * everything (after at least one writer came: a receiver that starts
 * first waits); a queue producer is told once the consumer it had is
 * gone and the ring is full. */
static int peer_gone(ashm_chan *ch) {
        int r;

        if (is_writer(ch)) {
                if (ch->kind != ASHM_CHAN_QUEUE || LOADR(&ch->g->reader_gen) == 0)
                        return 0;
                r = ashm__chan_readers_alive(ch);
                return r < 0 ? r : r ? 0 : -ECONNRESET;
        }
        if (LOADR(&ch->g->writer_gen) == 0)
                return 0;
        r = ashm__chan_writers_alive(ch);
        return r < 0 ? r : r ? 0 : -EPIPE;
}

/* ------------------------------------------------------------------ */
/* Waiting: spin, then sleep on a futex in slices                     */

uint32_t *ashm__chan_wait_word(ashm_chan *ch, unsigned slow, uint32_t **ret_sleepers) {
        if (!is_writer(ch)) {
                *ret_sleepers = ch->kind == ASHM_CHAN_QUEUE ? &ch->g->data_sleepers :
                                ch->mine                    ? &ch->mine->sleeping :
                                                              NULL;
                return &ch->g->data_ev;
        }
        if (ch->kind == ASHM_CHAN_QUEUE) {
                *ret_sleepers = &ch->rings[ch->index].space_sleepers;
                return &ch->rings[ch->index].space_ev;
        }
        *ret_sleepers = &ch->g->space_sleepers;
        return &sub_at(ch, slow)->cursor_ev;
}

static int try_step(ashm_chan *ch, unsigned *io) {
        return is_writer(ch) ? writer_try(ch, io) : reader_try(ch, io, false);
}

static int try_quick(ashm_chan *ch, unsigned *io) {
        return is_writer(ch) ? writer_try(ch, io) : reader_try(ch, io, true);
}

/* Drain the event fd, then look again: a wake-up the fd thread gave for
 * a message that arrived meanwhile is not lost. */
static int try_drained(ashm_chan *ch, unsigned *io) {
        int r = try_step(ch, io);
        uint64_t v;

        if (r != -EAGAIN || ch->event_fd < 0)
                return r;
        (void) !read(ch->event_fd, &v, sizeof(v));
        return try_step(ch, io);
}

/* Before a sleep: have the watcher wait for the peers this sleep is
 * for (chan-watch.c), so their death wakes it. 0 when it does or there
 * is nobody to watch yet (a receiver before any writer came: the first
 * one's attach wakes it); a negative errno when the sleep must be in
 * slices instead: nobody wakes a read-only subscriber, or no watcher
 * thread could be started. */
static int watch_peers(ashm_chan *ch, unsigned slow) {
        int64_t start, len;

        if (ch->role == ASHM_CHAN_PUBLISHER)
                /* It waits for one slow subscriber, alive when
                 * publisher_space() looked. */
                return ashm__chan_watch(ch, LOCK_BASE + 1 + slow, 1);
        if (ch->role == ASHM_CHAN_SUBSCRIBER && !ch->mine)
                return -EOPNOTSUPP;
        if (LOADR(is_writer(ch) ? &ch->g->reader_gen : &ch->g->writer_gen) == 0)
                return 0;
        ashm__chan_side(ch, !is_writer(ch), &start, &len);
        return ashm__chan_watch(ch, start, len);
}

static int wait_step(ashm_chan *ch, int64_t timeout_ns, unsigned *io) {
        struct chan_waiter *w = &ch->waiters[0];
        int64_t now, deadline, spin_end;
        bool clocked;
        int r;

        /* A call that will spin starts with the quick look (the slot
         * only): in a ping-pong the message is seldom there yet, and a
         * full look would pull the writer's tail line over for nothing.
         * The full look comes within 64 rounds, and before any sleep. */
        if (timeout_ns != 0 && ch->spin_ns > 0 && ch->event_fd < 0)
                r = try_quick(ch, io);
        else
                r = try_drained(ch, io);
        if (r != -EAGAIN)
                return r;
        if (timeout_ns == 0) {
                r = peer_gone(ch);
                if (r < 0) {
                        /* The writer's last commit came before its lock
                         * went: look once more after seeing it gone. */
                        int again = try_step(ch, io);
                        return again == -EAGAIN ? r : again;
                }
                return -EAGAIN;
        }
        /* No clock for a wait that has no end, and spins not at all or
         * for ever (a busy-poller's clock reads were 8% of its time). */
        clocked = timeout_ns >= 0 || (ch->spin_ns > 0 && ch->spin_ns < CHAN_SPIN_FOREVER);
        now = clocked ? clock_monotonic_ns() : 0;
        deadline = timeout_ns < 0 ? INT64_MAX : now + timeout_ns;
        spin_end = ch->spin_ns >= CHAN_SPIN_FOREVER ? INT64_MAX : now + (int64_t) ch->spin_ns;
        for (unsigned n = 0; ch->spin_ns > 0; n++) {
                /* A full look every 64 rounds: a lapped subscriber or a
                 * damaged slot is seen there. */
                r = (n & 63) == 63 ? try_step(ch, io) : try_quick(ch, io);
                if (r != -EAGAIN)
                        return r;
                if ((n & 63) == 63 && clocked) {
                        now = clock_monotonic_ns();
                        if (now >= spin_end || now >= deadline)
                                break;
                }
                cpu_relax();
        }
        for (int64_t slice = CHAN_FIRST_SLICE_NS, woke = 0;; slice = CHAN_SLICE_NS) {
                unsigned want = *io;
                uint32_t *sleepers, *ev = ashm__chan_wait_word(ch, want, &sleepers);
                bool sliced = false;
                uint32_t v;

                STORES(&w->word, ev);
                STORES(&w->in, 1);
                if (sleepers)
                        __atomic_fetch_add(sleepers, 1, __ATOMIC_SEQ_CST);
                v = LOADS(ev);
                r = try_step(ch, io);
                /* A publisher now held back by another subscriber than
                 * the one whose word it read: that word, not this one. */
                if (r == -EAGAIN && *io != want)
                        goto again;
                if (r == -EAGAIN) {
                        uint32_t fired;
                        bool fire;

                        sliced = watch_peers(ch, *io) < 0 || ashm__chan_tick_join(ch) < 0;
                        fired = LOADS(&ch->watch_fired);
                        fire = fired != w->seen;
                        if (fire || woke == -ETIMEDOUT) {
                                int gone;

                                STORES(&w->seen, fired);
                                gone = peer_gone(ch);
                                if (gone < 0)
                                        r = gone;
                                else if (fire) {
                                        /* Not gone after all (one came back,
                                         * or a publisher's slow subscriber is
                                         * the one that died): look again and
                                         * watch anew, never sleep unwatched. */
                                        woke = 0;
                                        goto again;
                                }
                        }
                }
                if (r == -EAGAIN) {
                        __atomic_store_n(&w->naps, w->naps + 1, __ATOMIC_RELAXED);
                        ashm__chan_tick_nudge();
                        if (!sliced && deadline == INT64_MAX)
                                woke = futex_wait(ev, v, -1);
                        else if ((now = clock_monotonic_ns()) >= deadline)
                                r = -ETIMEDOUT;
                        else
                                woke = futex_wait_until(ev, v, sliced ? MIN(deadline, now + slice) : deadline);
                } else if (r == -EPIPE || r == -ECONNRESET) {
                        int again = try_step(ch, io);
                        r = again == -EAGAIN ? r : again;
                }
again:
                if (sleepers)
                        __atomic_fetch_sub(sleepers, 1, __ATOMIC_SEQ_CST);
                STORES(&w->in, 0);
                if (r != -EAGAIN)
                        return r;
        }
}

static int check_handle(ashm_chan *ch, int role1, int role2) {
        if (!ch)
                return -EINVAL;
        if (ashm__chan_forked(ch))
                return -ECHILD;
        if (ch->role != role1 && ch->role != role2)
                return -EPROTOTYPE;
        return 0;
}

/* ------------------------------------------------------------------ */
/* Writing                                                             */

_public_ int ashm_chan_reserve(ashm_chan *ch, size_t len, int64_t timeout_ns, void **ret_ptr) {
        struct slot_hdr *s;
        unsigned slow = 0;
        int r = check_handle(ch, ASHM_CHAN_PRODUCER, ASHM_CHAN_PUBLISHER);

        if (r < 0)
                return r;
        if (!ret_ptr || ch->held)
                return -EINVAL;
        if (len > ch->msg_max)
                return -EMSGSIZE;
        /* Room already (the common case): no need of the waiting
         * machinery. */
        r = writer_try(ch, &slow);
        if (r == -EAGAIN)
                r = wait_step(ch, timeout_ns, &slow);
        if (r < 0)
                return r;
        s = slot_at(ch, ch->kind == ASHM_CHAN_QUEUE ? ch->index : 0, ch->pos);
        if (ch->kind == ASHM_CHAN_PUBSUB) {
                /* Seqlock: a subscriber still copying the message this
                 * slot held sees the mark change and drops its copy. */
                __atomic_store_n(&s->seq, CHAN_WRITING, __ATOMIC_RELAXED);
                __atomic_thread_fence(__ATOMIC_RELEASE);
        }
        ch->held = true;
        *ret_ptr = slot_data(ch, s);
        return 0;
}

_public_ int ashm_chan_commit(ashm_chan *ch, size_t len) {
        unsigned ring;
        struct slot_hdr *s;
        int r = check_handle(ch, ASHM_CHAN_PRODUCER, ASHM_CHAN_PUBLISHER);

        if (r < 0)
                return r;
        if (!ch->held)
                return -EINVAL;
        if (len > ch->msg_max)
                return -EMSGSIZE;
        ring = ch->kind == ASHM_CHAN_QUEUE ? ch->index : 0;
        s = slot_at(ch, ring, ch->pos);
        /* The message, then its slot header, then the tail: a reader
         * sees the tail move only once everything before it is written,
         * and a writer that dies before the tail store leaves nothing. */
        s->len = (uint32_t) len;
        STORES(&s->seq, ch->pos + 1);
        ch->pos++;
        STORE(&ch->rings[ring].tail, ch->pos);
        ch->held = false;
        wake_readers(ch);
        return 0;
}

_public_ int ashm_chan_send(ashm_chan *ch, const void *data, size_t len, int64_t timeout_ns) {
        void *p;
        int r;

        if (!data && len > 0)
                return -EINVAL;
        r = ashm_chan_reserve(ch, len, timeout_ns, &p);
        if (r < 0)
                return r;
        if (len > 0)
                memcpy(p, data, len);
        return ashm_chan_commit(ch, len);
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */

/* After the seq_cst store of the head or cursor (see wake_readers). */
void ashm__chan_wake_writer(ashm_chan *ch, unsigned ring) {
        uint32_t *sleepers, *ev;

        if (ch->kind == ASHM_CHAN_QUEUE) {
                sleepers = &ch->rings[ring].space_sleepers;
                ev = &ch->rings[ring].space_ev;
        } else {
                if (!ch->mine)
                        return;
                sleepers = &ch->g->space_sleepers;
                ev = &ch->mine->cursor_ev;
        }
        if (LOADS(sleepers) == 0)
                return;
        chan_bump_wake(ev);
}

/* Check the slot of the message we are about to hand out. */
static int slot_check(ashm_chan *ch, struct slot_hdr *s, uint64_t pos, uint32_t *ret_len) {
        uint64_t seq = LOAD(&s->seq);
        uint32_t len = LOADR(&s->len);

        if (seq != pos + 1) {
                if (ch->kind == ASHM_CHAN_PUBSUB)
                        return -ESTALE; /* written over since the tail said so */
                return -EBADMSG;
        }
        if (len > ch->msg_max)
                return -EBADMSG;
        *ret_len = len;
        return 0;
}

_public_ int ashm_chan_peek(ashm_chan *ch, int64_t timeout_ns, const void **ret_data, size_t *ret_len) {
        struct slot_hdr *s;
        unsigned ring = 0;
        uint32_t len;
        int r = check_handle(ch, ASHM_CHAN_CONSUMER, ASHM_CHAN_SUBSCRIBER);

        if (r < 0)
                return r;
        if (!ret_data || ch->held)
                return -EINVAL;
        for (;;) {
                uint64_t pos;

                /* A message already (the slot says so): straight to it. */
                r = reader_try(ch, &ring, true);
                if (r == -EAGAIN)
                        r = wait_step(ch, timeout_ns, &ring);
                if (r < 0)
                        return r;
                pos = ch->kind == ASHM_CHAN_QUEUE ? ch->heads[ring] : ch->pos;
                s = slot_at(ch, ring, pos);
                r = slot_check(ch, s, pos, &len);
                if (r == -ESTALE) {
                        /* Overwritten before we got to it: lost. */
                        ch->lost++;
                        ch->pos++;
                        continue;
                }
                if (r < 0)
                        return r;
                ch->held = true;
                ch->held_ring = ring;
                ch->held_pos = pos;
                ch->last_source = ring;
                ch->last_seq = pos;
                *ret_data = slot_data(ch, s);
                if (ret_len)
                        *ret_len = len;
                return 0;
        }
}

static void advance(ashm_chan *ch) {
        if (ch->kind == ASHM_CHAN_QUEUE) {
                unsigned ring = ch->held_ring;

                ch->heads[ring] = ch->held_pos + 1;
                STORES(&ch->rings[ring].head, ch->heads[ring]);
                /* Fairness: the next scan starts at the next ring. */
                ch->next_ring = (ring + 1) % ch->peers;
                ashm__chan_wake_writer(ch, ring);
                return;
        }
        ch->pos = ch->held_pos + 1;
        if (ch->mine) {
                STORE(&ch->mine->lost, ch->lost);
                STORES(&ch->mine->cursor, ch->pos);
                ashm__chan_wake_writer(ch, 0);
        }
}

_public_ int ashm_chan_release(ashm_chan *ch) {
        int r = check_handle(ch, ASHM_CHAN_CONSUMER, ASHM_CHAN_SUBSCRIBER);
        bool stale = false;

        if (r < 0)
                return r;
        if (!ch->held)
                return -EINVAL;
        if (ch->kind == ASHM_CHAN_PUBSUB) {
                __atomic_thread_fence(__ATOMIC_ACQUIRE);
                stale = LOADR(&slot_at(ch, 0, ch->held_pos)->seq) != ch->held_pos + 1;
                if (stale)
                        ch->lost++;
        }
        ch->held = false;
        advance(ch);
        return stale ? -ESTALE : 0;
}

_public_ int ashm_chan_recv(ashm_chan *ch, void *buf, size_t size, size_t *ret_len, int64_t timeout_ns) {
        const void *p;
        size_t len;
        int r;

        for (;;) {
                r = ashm_chan_peek(ch, timeout_ns, &p, &len);
                if (r < 0)
                        return r;
                if (len > size) {
                        /* Left in place: the caller may ask again with a
                         * larger buffer. */
                        ch->held = false;
                        if (ret_len)
                                *ret_len = len;
                        return -EMSGSIZE;
                }
                if (len > 0)
                        memcpy(buf, p, len);
                r = ashm_chan_release(ch);
                if (r == -ESTALE)
                        continue; /* torn by the publisher: counted as lost */
                if (r < 0)
                        return r;
                if (ret_len)
                        *ret_len = len;
                return 0;
        }
}

/* ------------------------------------------------------------------ */
/* Tuning, introspection                                               */

_public_ int ashm_chan_set_spin(ashm_chan *ch, uint64_t spin_ns) {
        if (!ch)
                return -EINVAL;
        ch->spin_ns = spin_ns;
        return 0;
}

_public_ int ashm_chan_lost(const ashm_chan *ch, uint64_t *ret_lost) {
        if (!ch || !ret_lost)
                return -EINVAL;
        *ret_lost = ch->lost;
        return 0;
}

_public_ int ashm_chan_last(const ashm_chan *ch, unsigned *ret_source, uint64_t *ret_seq) {
        if (!ch)
                return -EINVAL;
        if (ret_source)
                *ret_source = is_writer(ch) ? (ch->kind == ASHM_CHAN_QUEUE ? ch->index : 0) : ch->last_source;
        if (ret_seq)
                *ret_seq = is_writer(ch) ? ch->pos : ch->last_seq;
        return 0;
}

_public_ int ashm_chan_index(const ashm_chan *ch) {
        if (!ch)
                return -EINVAL;
        if (ch->role == ASHM_CHAN_CONSUMER || ch->role == ASHM_CHAN_PUBLISHER || ch->index == UINT32_MAX)
                return -ENOENT;
        return (int) ch->index;
}

/* ------------------------------------------------------------------ */
/* The pollable fd: a thread that sleeps on the futex for the handle  */

/* Would the handle's next operation go through (or fail for good)?
 * Reads only; the thread never changes what the handle owns. */
static bool ready(ashm_chan *ch) {
        uint64_t tail;

        switch (ch->role) {
        case ASHM_CHAN_PRODUCER:
                return LOAD(&ch->rings[ch->index].tail) - LOAD(&ch->rings[ch->index].head) < ch->depth;
        case ASHM_CHAN_PUBLISHER:
                return true; /* a blocked publisher waits in its call */
        case ASHM_CHAN_CONSUMER:
                for (unsigned i = 0; i < ch->peers; i++)
                        if (LOAD(&ch->rings[i].tail) != LOAD(&ch->rings[i].head))
                                return true;
                return false;
        default:
                tail = LOAD(&ch->rings[0].tail);
                return tail != (ch->mine ? LOAD(&ch->mine->cursor) : tail);
        }
}

/* Wakes the handle's eventfd whenever its next call would go through
 * or fail for good. It sleeps untimed (the watcher wakes it when the
 * peers go), and ashm__chan_fd_thread_stop() wakes it to leave. */
static void *fd_thread(void *arg) {
        ashm_chan *ch = arg;
        struct chan_waiter *w = &ch->waiters[1];
        uint32_t *sleepers, *ev = ashm__chan_wait_word(ch, 0, &sleepers);
        bool gone = false;
        uint64_t one = 1;

        STORES(&w->word, ev);
        if (sleepers)
                __atomic_fetch_add(sleepers, 1, __ATOMIC_SEQ_CST);
        for (;;) {
                bool sliced = ashm__chan_tick_join(ch) < 0;
                uint32_t v, fired;

                STORES(&w->in, 1);
                if (atomic_load(&ch->thread_stop))
                        break;
                v = LOADS(ev);
                /* Once gone, look again at every wake-up: a restarted
                 * peer's attach is one. */
                fired = LOADS(&ch->watch_fired);
                if (fired != w->seen || gone || sliced) {
                        STORES(&w->seen, fired);
                        gone = ch->role != ASHM_CHAN_PUBLISHER && peer_gone(ch) < 0;
                }
                /* Watch on every round the peers are there (a publisher's
                 * fd is always ready: it never watches), after the look:
                 * a death after it fires the watcher anew. */
                if (!gone && ch->role != ASHM_CHAN_PUBLISHER)
                        sliced |= watch_peers(ch, 0) < 0;
                if (ready(ch) || gone)
                        (void) !write(ch->event_fd, &one, sizeof(one));
                __atomic_store_n(&w->naps, w->naps + 1, __ATOMIC_RELAXED);
                ashm__chan_tick_nudge();
                futex_wait(ev, v, sliced ? CHAN_SLICE_NS : -1);
                STORES(&w->in, 0);
        }
        STORES(&w->in, 0);
        if (sleepers)
                __atomic_fetch_sub(sleepers, 1, __ATOMIC_SEQ_CST);
        return NULL;
}

/* The fd thread reads the stop flag after saying it is in; so either it
 * sees the flag, or we see it in and wake it until it is out. */
void ashm__chan_fd_thread_stop(ashm_chan *ch) {
        atomic_store(&ch->thread_stop, true);
        for (long ns = 10 * 1000; LOADS(&ch->waiters[1].in); chan_backoff(&ns))
                futex_wake(__atomic_load_n(&ch->waiters[1].word, __ATOMIC_SEQ_CST), INT32_MAX);
        pthread_join(ch->thread, NULL);
}

_public_ int ashm_chan_fd(ashm_chan *ch) {
        int r;

        if (!ch)
                return -EINVAL;
        if (ashm__chan_forked(ch))
                return -ECHILD;
        if (ch->event_fd >= 0)
                return ch->event_fd;
        if (ch->role == ASHM_CHAN_SUBSCRIBER && !ch->mine)
                return -EOPNOTSUPP; /* a read-only subscriber cannot say it sleeps */
        ch->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (ch->event_fd < 0)
                return negative_errno();
        r = ashm__chan_thread_start(&ch->thread, fd_thread, ch, false);
        if (r < 0) {
                ch->event_fd = safe_close(ch->event_fd);
                return r;
        }
        ch->thread_running = true;
        return ch->event_fd;
}

