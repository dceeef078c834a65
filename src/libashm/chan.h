/* SPDX-License-Identifier: MIT */
#pragma once

/* What chan.c (the data path) shares with chan-open.c (create, open,
 * close, liveness, stat). The rules are at the top of chan.c. */

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "ashm.h"
#include "futex-util.h"

#define CHAN_MAGIC UINT64_C(0x314e484341534d41) /* "AMSACHN1" little-endian */
#define CHAN_VERSION 2 /* 2: control words on page 0; big messages 64-byte aligned */
#define CHAN_PAGE 4096u
/* The slot header and a small message share one cache line; a big one
 * starts on a line of its own (memcpy and rep movsb are faster on a
 * 64-byte aligned buffer: 5-7% at 64 KiB here). By msg_max, so the
 * layout follows from the geometry. */
#define CHAN_SLOT_HDR 16u
#define CHAN_SLOT_HDR_BIG 64u
#define CHAN_BIG_MSG 1024u
#define CHAN_WRITING UINT64_MAX
/* A sleeper the watcher cannot serve (a read-only subscriber, whom no
 * writer wakes, or a handle whose watcher thread could not start) looks
 * at its peers' locks this often. */
#define CHAN_SLICE_NS (20 * 1000 * 1000)
#define CHAN_FIRST_SLICE_NS (2 * 1000 * 1000)
/* A spin this long (ashm_chan_set_spin(UINT64_MAX)) never ends. */
#define CHAN_SPIN_FOREVER ((uint64_t) INT64_MAX / 2)
/* The OFD lock bytes, far past any region: byte LOCK_BASE is the single
 * consumer or publisher, LOCK_BASE + 1 + i producer or subscriber i. */
#define LOCK_BASE (INT64_C(1) << 40)

/* The start of page 0, written once by ashm_chan_create(); the control
 * words follow it on the same page, at ctl_off. */
struct chan_hdr {
        uint64_t magic;
        uint32_t version, kind, flags, msg_max, depth, peers;
        uint64_t stride, ctl_off, rings_off, ring_bytes, peers_off, total;
};

/* The control words (page 0 after the header, on to the next pages for
 * many rings): global words, then one ring_ctl per ring. */
struct chan_global {
        _Alignas(64) uint32_t data_ev;  /* bumped by a writer when data_sleepers */
        uint32_t data_sleepers;         /* queue: consumers asleep on data_ev */
        uint32_t writer_gen;            /* producers/publishers that ever attached */
        uint32_t reader_gen;            /* consumers that ever attached */
        uint32_t space_sleepers;        /* pub/sub: the publisher sleeps on a subscriber */
};

struct ring_ctl {
        _Alignas(64) uint64_t tail;     /* written by the ring's writer */
        _Alignas(64) uint64_t head;     /* queue: written by the consumer */
        uint32_t space_ev, space_sleepers;
};

/* One page per subscriber: the only part of the region it writes. */
struct sub_page {
        _Alignas(64) uint64_t cursor;   /* next position it reads */
        uint64_t lost;
        uint32_t active;                /* it has attached once: cursor is meaningful */
        uint32_t sleeping;              /* asleep on chan_global.data_ev */
        uint32_t cursor_ev;             /* bumped when the publisher sleeps on it */
};

struct slot_hdr {
        uint64_t seq; /* 1 + the position it holds (0: never written),
                       * CHAN_WRITING while written */
        uint32_t len;
        uint32_t reserved;
};

_Static_assert(sizeof(struct chan_hdr) <= CHAN_PAGE, "header fits a page");
_Static_assert(sizeof(struct slot_hdr) <= CHAN_SLOT_HDR, "slot header fits");

/* A thread of ours that sleeps on the channel for the handle: the
 * caller's (0) and the fd thread (1). chan-watch.c wakes them. */
#define CHAN_WAITERS 2
struct chan_waiter {
        uint32_t *word;     /* the futex word it sleeps on */
        uint32_t in;        /* it is between its last look and its wake-up */
        uint32_t seen;      /* the watcher's fired count it has acted on */
        uint32_t naps;      /* its sleeps, counted */
        uint32_t tick_naps; /* the ticker's: naps at its last round */
};

struct ashm_chan {
        int role;
        int lock_fd;           /* our own open file description, for OFD locks */
        int event_fd;          /* -1 until ashm_chan_fd() */
        unsigned index;        /* producer or subscriber index */
        /* The geometry, from the header at open: never read again. */
        uint32_t kind, flags, msg_max, depth, peers;
        uint64_t stride, total;
        uint8_t *base;         /* the whole region (read-only for a subscriber) */
        struct chan_global *g;
        struct ring_ctl *rings;
        uint8_t *slots;        /* ring 0's first slot */
        uint64_t ring_bytes;
        struct sub_page *subs; /* read-only view of every subscriber page */
        struct sub_page *mine; /* a subscriber's writable page, or NULL */
        void *mine_map;
        /* Positions this handle owns. */
        uint64_t pos;          /* writer: next tail; subscriber: cursor */
        uint64_t cached;       /* producer: the head last read; publisher: the
                                * lowest cursor last read */
        uint64_t *heads;       /* consumer: its head per ring */
        unsigned next_ring;    /* consumer: where the next scan starts */
        bool held;             /* a reserve or peek is outstanding */
        unsigned held_ring;
        uint64_t held_pos;
        uint64_t lost;
        unsigned last_source;
        uint64_t last_seq;
        uint64_t spin_ns;
        unsigned fork_gen;
        /* The fd thread. */
        pthread_t thread;
        bool thread_running;
        atomic_bool thread_stop;
        /* The watcher (chan-watch.c); watch_* are atomics. */
        pthread_mutex_t watch_lock;
        pthread_t watch_thread;
        bool watch_running, watch_stop;
        uint32_t watch_req, watch_served, watch_fired;
        int watch_error;        /* the lock wait failed: sleep in slices */
        int64_t watch_start, watch_len;
        struct flock watch_fl; /* the watcher thread's own */
        /* On the ticker's list (chan-watch.c, under its lock). */
        struct ashm_chan *tick_next;
        bool tick_joined;
        struct chan_waiter waiters[CHAN_WAITERS];
};


#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define LOADR(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define FENCE() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define LOADS(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define STORES(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ volatile("yield");
#endif
}

/* Bump an event word and wake every sleeper on it: a sleeper that read
 * the word before the bump does not sleep on a stale value. */
static inline void chan_bump_wake(uint32_t *ev) {
        __atomic_fetch_add(ev, 1, __ATOMIC_SEQ_CST);
        futex_wake(ev, INT32_MAX);
}

/* Sleep *ns, then double it up to 10 ms: the pace of a thread that wakes
 * another until it answers (chan-watch.c's kick, the fd thread's stop). */
static inline void chan_backoff(long *ns) {
        nanosleep(&(struct timespec) { .tv_nsec = *ns }, NULL);
        *ns = *ns < 10 * 1000 * 1000 ? *ns * 2 : *ns;
}

static inline struct slot_hdr *slot_at(const ashm_chan *ch, unsigned ring, uint64_t pos) {
        return (struct slot_hdr *) (ch->slots + ring * ch->ring_bytes + (pos & (ch->depth - 1)) * ch->stride);
}

/* Subscriber pages are a page apart, so each can be mapped on its own. */
static inline struct sub_page *sub_at(const ashm_chan *ch, unsigned i) {
        return (struct sub_page *) ((uint8_t *) ch->subs + (size_t) i * CHAN_PAGE);
}

static inline uint32_t chan_slot_hdr(uint32_t msg_max) {
        return msg_max >= CHAN_BIG_MSG ? CHAN_SLOT_HDR_BIG : CHAN_SLOT_HDR;
}

static inline void *slot_data(const ashm_chan *ch, struct slot_hdr *s) {
        return (uint8_t *) s + chan_slot_hdr(ch->msg_max);
}


/* chan.c: fork detection, the geometry, the wait words. */
bool ashm__chan_forked(const ashm_chan *ch);
int ashm__chan_layout(uint32_t kind, uint32_t msg_max, uint32_t depth, uint32_t peers, struct chan_hdr *h);
uint32_t *ashm__chan_wait_word(ashm_chan *ch, unsigned slow, uint32_t **ret_sleepers);
void ashm__chan_fd_thread_stop(ashm_chan *ch);
void ashm__chan_wake_writer(ashm_chan *ch, unsigned ring);

/* chan-watch.c: the watcher. */
int ashm__chan_watch(ashm_chan *ch, int64_t start, int64_t len);
void ashm__chan_watch_stop(ashm_chan *ch);
int ashm__chan_tick_join(ashm_chan *ch);
int ashm__chan_thread_start(pthread_t *ret_thread, void *(*fn)(void *), void *arg, bool detached);
void ashm__chan_tick_leave(ashm_chan *ch);
void ashm__chan_tick_nudge(void);

/* chan-open.c: peer liveness from OFD locks. */
int ashm__chan_locked(int fd, int64_t start, int64_t len);
void ashm__chan_side(const ashm_chan *ch, bool writers, int64_t *ret_start, int64_t *ret_len);
int ashm__chan_readers_alive(const ashm_chan *ch);
int ashm__chan_writers_alive(const ashm_chan *ch);
