/* SPDX-License-Identifier: MIT */
#pragma once

/* What bench-chan.c shares with bench-chan-iox.c (its iceoryx peers and
 * the private world they run in): the peer, its control block, the
 * message sizes, and the entry points of each side. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "ashm.h"

#ifdef HAVE_ICEORYX
#include <iceoryx_binding_c/publisher.h>
#include <iceoryx_binding_c/subscriber.h>
#include <iceoryx_binding_c/wait_set.h>
#endif
#ifdef HAVE_NNG
#include <nng/nng.h>
#endif

#define MSG 8
#define BIG (64u << 10)
#define MIB (1u << 20)
#define RING 8
#define SUBS 4
#define FANOUT_DEPTH 64

/* The control block each peer shares with its children. */
struct ctl {
        _Alignas(64) uint32_t go;   /* bumped by the parent per batch */
        uint32_t iters, cpu, stop;
        _Alignas(64) uint32_t done; /* set to go by child 0 after the batch */
        _Alignas(64) uint32_t ready; /* children that finished their init (iceoryx) */
        _Alignas(64) uint32_t fin;   /* batches finished, summed over children (fan-out) */
};

struct raw;
struct peer;
typedef void (*side_fn)(struct peer *p, unsigned iters);

struct peer {
        const char *name;
        struct ctl *ctl;
        pid_t child[SUBS];
        unsigned n_children;
        side_fn drive, echo;
        void (*child_init)(struct peer *p, unsigned k);
        void (*child_fini)(struct peer *p); /* before the child exits; may not return */
        /* per kind */
        struct raw *raw;
        ashm_region *r1, *r2;
        ashm_chan *c1, *c2;
        int fd[4];
        uint32_t seq;
        uint64_t spin;
        size_t len;
        unsigned sub_index;
        uint32_t batches;
        void *zmq_ctx, *zmq_sock;
        char path[108];
#ifdef HAVE_NNG
        nng_socket nng;
#endif
#ifdef HAVE_ICEORYX
        iox_pub_storage_t pub_storage;
        iox_sub_storage_t sub_storage;
        iox_ws_storage_t ws_storage;
        iox_pub_t pub;
        iox_sub_t sub;
        iox_ws_t ws;   /* the subscriber's data-received event, when blocking */
        bool blocking; /* sleeps in a WaitSet rather than busy-polling */
        bool fan;      /* the fan-out peer: a publisher, SUBS subscriber children */
        unsigned iox_id;
#endif
        int cpu_parent, cpu_child;
};

/* bench-chan.c */
void *shared_alloc(size_t len);
void peer_start(struct peer *p, unsigned n_children);
void peer_stop(struct peer *p); /* idempotent */

/* bench-chan-mem.c: the memory table and its targets; true if met. */
bool chan_memory(bool have_iox);

/* bench-chan-iox.c. The iceoryx peers, forked and connected by
 * iox_peers_start() before the other tables run (iceoryx is not
 * fork-safe, and this process's own runtime starts there). */
enum {
        IOX_BUSY,        /* rtt-busy: loan/publish/take, busy-polling */
        IOX_TPUT,        /* tput-64k */
        IOX_BLOCK_CROSS, /* rtt-block cross-core: WaitSet */
        IOX_BLOCK_SAME,  /* rtt-block same-core: WaitSet */
        IOX_FANOUT,      /* 1 publisher -> SUBS subscribers, WaitSet */
        IOX_N,
};

#ifdef HAVE_ICEORYX
/* First thing in main(), while single-threaded. Unless
 * BENCH_CHAN_ICEORYX=0 or want is false: move into a private mount
 * namespace (fresh tmpfs on /dev/shm and /tmp), start RouDi there, and
 * fork the process that runs the benchmark, in which this returns true;
 * the calling process stays behind as a supervisor that stops RouDi by
 * pid once the benchmark is over and exits with its status (it never
 * returns). False, with the reason printed on one line: no iceoryx. */
bool iox_world_enter(bool want);
void iox_peers_start(struct peer peers[IOX_N], const int cpus[2]);
void iox_peers_stop(struct peer peers[IOX_N]);
uint64_t iox_setup_run(void *ctx, unsigned iters);
/* What RouDi reserved: the files in the private /dev/shm. */
void iox_shm_usage(uint64_t *ret_bytes, uint64_t *ret_resident, unsigned *ret_files);
#endif
