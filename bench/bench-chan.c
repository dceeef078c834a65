/* SPDX-License-Identifier: MIT */
/* bench-chan: ashm channels against the limits of the machine and the
 * other IPC means, measured in the same run.
 *
 * Every peer is a pair of processes: this one and a forked child that
 * lives for the whole run and sleeps on a futex between batches (so no
 * idle peer spins while another is measured). A batch is `iters`
 * operations; peers are interleaved round by round (bench.h).
 *
 * Workloads:
 *  rtt-busy     8-byte round trip, both sides busy-polling, cross-core:
 *               raw (two cache lines), ashm (two queue channels, spin
 *               without limit), iceoryx 2.0.3 (C binding: loan, publish,
 *               take, release; two services).
 *  rtt-block    8-byte round trip, both sides sleeping in the kernel,
 *               cross-core and same-core: raw futex (two words, a wake
 *               for every message), ashm (spin 0), eventfd, pipe,
 *               AF_UNIX SEQPACKET, ZeroMQ ipc:// PAIR and nng ipc://
 *               pair1 when built with them, iceoryx (each side asleep
 *               in a WaitSet on its subscriber's data-received event).
 *  tput-64k     64 KiB messages one way, busy-polling, cross-core: a raw
 *               two-copy ring (memcpy in, memcpy out), ashm send/recv and
 *               iceoryx (loan + memcpy in, take + memcpy out: the same two
 *               copies; lossless policies); ns per message and GB/s.
 *  zc-1m        round trip on the zero-copy path (reserve/commit,
 *               peek/release, 8 bytes touched), 1 MiB messages against
 *               8-byte ones, busy-polling.
 *  fanout       one publisher, four subscribers (blocking policy), 8-byte
 *               messages; ns per message delivered to all four; iceoryx:
 *               subscriber queues as deep as the ashm ring, the publisher
 *               waiting for them, subscribers asleep in a WaitSet.
 *  setup        create a channel and open a producer and a consumer on
 *               it, then close all, in one process; iceoryx: a publisher
 *               and a subscriber until connected, then gone (its runtime
 *               and RouDi already up: their start is not counted).
 *  mem          the shared memory each workload's channels hold (their
 *               memfds, every end open) against their rings plus control
 *               pages, and what RouDi reserves (bench-chan-mem.c).
 * Targets, ratios of medians: rtt-busy ashm <= 1.3x raw; rtt-block ashm
 * <= 1.1x raw futex, both placements; tput-64k ashm >= 1.0x raw ring
 * and >= 1.5x iceoryx; zc-1m 1 MiB <= 1.1x 8 bytes; rtt-busy <= 0.1x
 * iceoryx; setup <= 0.1x iceoryx; memory: no byte beyond rings and
 * control pages.
 *
 * iceoryx 2.0.3 runs whenever it is built in (BENCH_CHAN_ICEORYX=0
 * leaves it out): the program moves into a private mount namespace with
 * a fresh /dev/shm and /tmp, starts a RouDi there with a config file of
 * its own (mempools of 128 B and 65 KiB only), runs the benchmark in a
 * child and stops RouDi by pid after it (bench-chan-iox.c says why);
 * without namespaces it says so in one line and runs without iceoryx.
 * BENCH_CHAN_ONLY="busy block tput zc fanout setup mem" picks workloads.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ashm.h"
#include "bench-chan.h"
#include "bench.h"
#include "futex-util.h"

#ifdef HAVE_ZMQ
#include <zmq.h>
#endif
#ifdef HAVE_NNG
#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>
#endif

/* Shared memory of the raw peers. */
struct raw {
        _Alignas(64) uint32_t a;
        _Alignas(64) uint32_t b;
        _Alignas(64) uint64_t head;
        _Alignas(64) uint64_t tail;
        _Alignas(64) uint8_t ring[RING][BIG];
};

void *shared_alloc(size_t len) {
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

        if (p == MAP_FAILED)
                bench_die("mmap", errno);
        return p;
}

static void ck(const char *what, int r) {
        if (r < 0)
                bench_die(what, r);
}

/* ---- the child: wait for a batch, run it, say so ------------------- */

static void child_main(struct peer *p, unsigned k) {
        uint32_t seen = 0;
        int cpu = -1;

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (p->child_init)
                p->child_init(p, k);
        for (;;) {
                uint32_t go;

                while ((go = __atomic_load_n(&p->ctl->go, __ATOMIC_ACQUIRE)) == seen)
                        futex_wait(&p->ctl->go, seen, -1);
                seen = go;
                if (__atomic_load_n(&p->ctl->stop, __ATOMIC_ACQUIRE)) {
                        if (p->child_fini)
                                p->child_fini(p);
                        _exit(0);
                }
                if ((int) p->ctl->cpu != cpu) {
                        cpu = (int) p->ctl->cpu;
                        bench_pin_to(cpu);
                }
                p->echo(p, p->ctl->iters);
                if (k == 0) {
                        __atomic_store_n(&p->ctl->done, go, __ATOMIC_RELEASE);
                        futex_wake(&p->ctl->done, INT32_MAX);
                }
        }
}

void peer_start(struct peer *p, unsigned n_children) {
        p->ctl = shared_alloc(sizeof(*p->ctl));
        p->n_children = n_children;
        for (unsigned k = 0; k < n_children; k++) {
                p->child[k] = fork();
                if (p->child[k] < 0)
                        bench_die("fork", errno);
                if (p->child[k] == 0)
                        child_main(p, k);
        }
}

void peer_stop(struct peer *p) {
        if (!p->n_children)
                return;
        __atomic_store_n(&p->ctl->stop, 1, __ATOMIC_RELEASE);
        __atomic_fetch_add(&p->ctl->go, 1, __ATOMIC_RELEASE);
        futex_wake(&p->ctl->go, INT32_MAX);
        for (unsigned k = 0; k < p->n_children; k++)
                waitpid(p->child[k], NULL, 0);
        p->n_children = 0;
}

/* One batch: the child wakes, the parent drives and times itself. */
static uint64_t peer_run(void *ctx, unsigned iters) {
        struct peer *p = ctx;
        uint32_t go;
        uint64_t t0, t1;

        p->ctl->iters = iters;
        p->ctl->cpu = (uint32_t) p->cpu_child;
        go = __atomic_add_fetch(&p->ctl->go, 1, __ATOMIC_RELEASE);
        futex_wake(&p->ctl->go, INT32_MAX);
        t0 = bench_now_ns();
        p->drive(p, iters);
        t1 = bench_now_ns();
        for (uint32_t d; (d = __atomic_load_n(&p->ctl->done, __ATOMIC_ACQUIRE)) != go;)
                futex_wait(&p->ctl->done, d, -1);
        return t1 - t0;
}

/* ---- raw --------------------------------------------------------------- */

static void raw_busy_drive(struct peer *p, unsigned n) {
        for (unsigned i = 0; i < n; i++) {
                uint32_t s = ++p->seq;

                __atomic_store_n(&p->raw->a, s, __ATOMIC_RELEASE);
                while (__atomic_load_n(&p->raw->b, __ATOMIC_ACQUIRE) != s)
                        __builtin_ia32_pause();
        }
}

static void raw_busy_echo(struct peer *p, unsigned n) {
        for (unsigned i = 0; i < n; i++) {
                uint32_t s = ++p->seq;

                while (__atomic_load_n(&p->raw->a, __ATOMIC_ACQUIRE) != s)
                        __builtin_ia32_pause();
                __atomic_store_n(&p->raw->b, s, __ATOMIC_RELEASE);
        }
}

static void raw_futex_drive(struct peer *p, unsigned n) {
        for (unsigned i = 0; i < n; i++) {
                uint32_t s = ++p->seq, v;

                __atomic_store_n(&p->raw->a, s, __ATOMIC_SEQ_CST);
                futex_wake(&p->raw->a, 1);
                while ((v = __atomic_load_n(&p->raw->b, __ATOMIC_SEQ_CST)) != s)
                        futex_wait(&p->raw->b, v, -1);
        }
}

static void raw_futex_echo(struct peer *p, unsigned n) {
        for (unsigned i = 0; i < n; i++) {
                uint32_t s = ++p->seq, v;

                while ((v = __atomic_load_n(&p->raw->a, __ATOMIC_SEQ_CST)) != s)
                        futex_wait(&p->raw->a, v, -1);
                __atomic_store_n(&p->raw->b, s, __ATOMIC_SEQ_CST);
                futex_wake(&p->raw->b, 1);
        }
}

/* Two copies, as a channel's send and recv make: in from the sender's
 * buffer, out to the receiver's. */
static uint8_t src_buf[BIG], dst_buf[BIG];

static void raw_ring_drive(struct peer *p, unsigned n) {
        uint64_t tail = __atomic_load_n(&p->raw->tail, __ATOMIC_RELAXED);

        for (unsigned i = 0; i < n; i++, tail++) {
                while (tail - __atomic_load_n(&p->raw->head, __ATOMIC_ACQUIRE) >= RING)
                        __builtin_ia32_pause();
                memcpy(p->raw->ring[tail % RING], src_buf, BIG);
                __atomic_store_n(&p->raw->tail, tail + 1, __ATOMIC_RELEASE);
        }
        /* One way: the batch ends when the last message is out. */
        while (__atomic_load_n(&p->raw->head, __ATOMIC_ACQUIRE) != tail)
                __builtin_ia32_pause();
}

static void raw_ring_echo(struct peer *p, unsigned n) {
        uint64_t head = __atomic_load_n(&p->raw->head, __ATOMIC_RELAXED);

        for (unsigned i = 0; i < n; i++, head++) {
                while (__atomic_load_n(&p->raw->tail, __ATOMIC_ACQUIRE) == head)
                        __builtin_ia32_pause();
                memcpy(dst_buf, p->raw->ring[head % RING], BIG);
                __atomic_store_n(&p->raw->head, head + 1, __ATOMIC_RELEASE);
        }
}

/* ---- ashm channels ------------------------------------------------------ */

/* Two queues: ping (parent -> child) in r1, pong in r2. */
static void chan_pair_make(struct peer *p, size_t msg_max, uint32_t depth) {
        ck("chan create", ashm_chan_create("bench-ping", ASHM_CHAN_QUEUE, (uint32_t) msg_max, depth, 1, 0, &p->r1));
        ck("chan create", ashm_chan_create("bench-pong", ASHM_CHAN_QUEUE, (uint32_t) msg_max, depth, 1, 0, &p->r2));
}

static void chan_open_side(struct peer *p, bool parent) {
        ck("chan open", ashm_chan_open(p->r1, parent ? ASHM_CHAN_PRODUCER : ASHM_CHAN_CONSUMER, 0, &p->c1));
        ck("chan open", ashm_chan_open(p->r2, parent ? ASHM_CHAN_CONSUMER : ASHM_CHAN_PRODUCER, 0, &p->c2));
        ashm_chan_set_spin(p->c1, p->spin);
        ashm_chan_set_spin(p->c2, p->spin);
}

static void chan_child_init(struct peer *p, unsigned k) {
        chan_open_side(p, false);
}

static void chan_rtt_drive(struct peer *p, unsigned n) {
        uint8_t buf[MSG] = { 0 };
        size_t len;

        for (unsigned i = 0; i < n; i++) {
                ck("send", ashm_chan_send(p->c1, buf, MSG, -1));
                ck("recv", ashm_chan_recv(p->c2, buf, sizeof(buf), &len, -1));
        }
}

static void chan_rtt_echo(struct peer *p, unsigned n) {
        uint8_t buf[MSG];
        size_t len;

        for (unsigned i = 0; i < n; i++) {
                ck("recv", ashm_chan_recv(p->c1, buf, sizeof(buf), &len, -1));
                ck("send", ashm_chan_send(p->c2, buf, len, -1));
        }
}

/* Zero-copy round trip of p->len-byte messages, 8 bytes touched. */
static void chan_zc_drive(struct peer *p, unsigned n) {
        for (unsigned i = 0; i < n; i++) {
                const void *in;
                void *out;
                size_t len;

                ck("reserve", ashm_chan_reserve(p->c1, p->len, -1, &out));
                memcpy(out, &i, sizeof(i));
                ck("commit", ashm_chan_commit(p->c1, p->len));
                ck("peek", ashm_chan_peek(p->c2, -1, &in, &len));
                ck("release", ashm_chan_release(p->c2));
        }
}

static void chan_zc_echo(struct peer *p, unsigned n) {
        for (unsigned i = 0; i < n; i++) {
                const void *in;
                void *out;
                size_t len;
                unsigned v;

                ck("peek", ashm_chan_peek(p->c1, -1, &in, &len));
                memcpy(&v, in, sizeof(v));
                ck("release", ashm_chan_release(p->c1));
                ck("reserve", ashm_chan_reserve(p->c2, len, -1, &out));
                memcpy(out, &v, sizeof(v));
                ck("commit", ashm_chan_commit(p->c2, len));
        }
}

static void chan_tput_drive(struct peer *p, unsigned n) {
        uint8_t b;
        size_t len;

        for (unsigned i = 0; i < n; i++)
                ck("send", ashm_chan_send(p->c1, src_buf, BIG, -1));
        /* The child's ack of the last one ends the batch. */
        ck("recv", ashm_chan_recv(p->c2, &b, 1, &len, -1));
}

static void chan_tput_echo(struct peer *p, unsigned n) {
        size_t len;

        for (unsigned i = 0; i < n; i++)
                ck("recv", ashm_chan_recv(p->c1, dst_buf, BIG, &len, -1));
        ck("send", ashm_chan_send(p->c2, "", 1, -1));
}

/* ---- fan-out: one publisher, four subscriber children ------------------ */

static void fanout_child_init(struct peer *p, unsigned k) {
        ck("open sub", ashm_chan_open(p->r1, ASHM_CHAN_SUBSCRIBER, 0, &p->c1));
        ashm_chan_set_spin(p->c1, p->spin);
        p->sub_index = k;
}

static void fanout_drive(struct peer *p, unsigned n) {
        uint8_t buf[MSG] = { 0 };
        ashm_chan_info info;
        ashm_chan_peer peers[SUBS];

        for (unsigned i = 0; i < n; i++)
                ck("publish", ashm_chan_send(p->c1, buf, MSG, -1));
        /* Until every subscriber has read everything. */
        for (;;) {
                bool all = true;

                ck("stat", ashm_chan_stat(p->r1, &info, peers, SUBS));
                for (unsigned k = 0; k < SUBS; k++)
                        all &= peers[k].lag == 0;
                if (all)
                        break;
                sched_yield();
        }
}

static void fanout_echo(struct peer *p, unsigned n) {
        uint8_t buf[MSG];
        size_t len;

        for (unsigned i = 0; i < n; i++)
                ck("recv", ashm_chan_recv(p->c1, buf, sizeof(buf), &len, -1));
}

/* ---- kernel IPC: eventfd, pipe, SEQPACKET --------------------------------- */

/* fd[0] parent writes, fd[1] child reads; fd[2] child writes, fd[3] parent reads. */
static void fd_drive(struct peer *p, unsigned n) {
        uint64_t v = 1;

        for (unsigned i = 0; i < n; i++) {
                if (write(p->fd[0], &v, MSG) != MSG || read(p->fd[3], &v, MSG) != MSG)
                        bench_die("fd io", errno);
        }
}

static void fd_echo(struct peer *p, unsigned n) {
        uint64_t v;

        for (unsigned i = 0; i < n; i++) {
                if (read(p->fd[1], &v, MSG) != MSG || write(p->fd[2], &v, MSG) != MSG)
                        bench_die("fd io", errno);
        }
}

static void make_eventfds(struct peer *p) {
        int a = eventfd(0, EFD_CLOEXEC), b = eventfd(0, EFD_CLOEXEC);

        if (a < 0 || b < 0)
                bench_die("eventfd", errno);
        p->fd[0] = p->fd[1] = a;
        p->fd[2] = p->fd[3] = b;
}

static void make_pipes(struct peer *p) {
        int a[2], b[2];

        if (pipe2(a, O_CLOEXEC) < 0 || pipe2(b, O_CLOEXEC) < 0)
                bench_die("pipe", errno);
        p->fd[0] = a[1];
        p->fd[1] = a[0];
        p->fd[2] = b[1];
        p->fd[3] = b[0];
}

static void make_seqpacket(struct peer *p) {
        int s[2];

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, s) < 0)
                bench_die("socketpair", errno);
        p->fd[0] = p->fd[3] = s[0];
        p->fd[1] = p->fd[2] = s[1];
}

/* ---- ZeroMQ and nng ---------------------------------------------------- */

#ifdef HAVE_ZMQ
static void zmq_open_side(struct peer *p, bool parent) {
        p->zmq_ctx = zmq_ctx_new();
        p->zmq_sock = zmq_socket(p->zmq_ctx, ZMQ_PAIR);
        if (!p->zmq_sock || (parent ? zmq_bind(p->zmq_sock, p->path) : zmq_connect(p->zmq_sock, p->path)) != 0)
                bench_die("zmq", errno);
}

static void zmq_child_init(struct peer *p, unsigned k) {
        zmq_open_side(p, false);
}

static void zmq_drive(struct peer *p, unsigned n) {
        uint8_t buf[MSG] = { 0 };

        for (unsigned i = 0; i < n; i++)
                if (zmq_send(p->zmq_sock, buf, MSG, 0) != MSG || zmq_recv(p->zmq_sock, buf, MSG, 0) != MSG)
                        bench_die("zmq io", errno);
}

static void zmq_echo(struct peer *p, unsigned n) {
        uint8_t buf[MSG];

        for (unsigned i = 0; i < n; i++)
                if (zmq_recv(p->zmq_sock, buf, MSG, 0) != MSG || zmq_send(p->zmq_sock, buf, MSG, 0) != MSG)
                        bench_die("zmq io", errno);
}
#endif

#ifdef HAVE_NNG
static void nng_open_side(struct peer *p, bool parent) {
        int r = nng_pair1_open(&p->nng);

        if (r == 0)
                r = parent ? nng_listen(p->nng, p->path, NULL, 0) : nng_dial(p->nng, p->path, NULL, NNG_FLAG_NONBLOCK);
        if (r != 0) {
                fprintf(stderr, "bench: nng: %s\n", nng_strerror(r));
                exit(2);
        }
}

static void nng_child_init(struct peer *p, unsigned k) {
        nng_open_side(p, false);
}

static void nng_drive(struct peer *p, unsigned n) {
        uint8_t buf[MSG] = { 0 };

        for (unsigned i = 0; i < n; i++) {
                size_t len = MSG;

                if (nng_send(p->nng, buf, MSG, 0) != 0 || nng_recv(p->nng, buf, &len, 0) != 0)
                        bench_die("nng io", EIO);
        }
}

static void nng_echo(struct peer *p, unsigned n) {
        uint8_t buf[MSG];

        for (unsigned i = 0; i < n; i++) {
                size_t len = MSG;

                if (nng_recv(p->nng, buf, &len, 0) != 0 || nng_send(p->nng, buf, len, 0) != 0)
                        bench_die("nng io", EIO);
        }
}
#endif


/* ---- tables ---------------------------------------------------------------- */

static struct bench_opts opts = { .rounds = 11, .iters = 2000, .warmup = 1 };
static int cpus[2];
static bool all_ok = true;

static void place(struct peer *peers, size_t n, bool same) {
        bench_pin_to(cpus[0]);
        for (size_t i = 0; i < n; i++) {
                peers[i].cpu_parent = cpus[0];
                peers[i].cpu_child = same ? cpus[0] : cpus[1];
        }
}

/* Run one table: every peer interleaved, a row each, the RESULT lines.
 * Returns the bench_peer array (samples kept) for the verdicts. */
static struct bench_peer *table(const char *title, struct peer *peers, size_t n, unsigned iters, size_t ref) {
        struct bench_opts o = opts;
        struct bench_peer *bp = calloc(n, sizeof(*bp));

        if (!bp)
                bench_die("calloc", ENOMEM);
        o.iters = iters;
        for (size_t i = 0; i < n; i++)
                bp[i] = (struct bench_peer) { .name = peers[i].name, .run = peer_run, .ctx = &peers[i] };
        bench_run(bp, n, &o);
        bench_table_header(title, &o, peers[ref].name);
        for (size_t i = 0; i < n; i++)
                bench_table_row(&bp[i], &bp[ref], o.rounds);
        for (size_t i = 0; i < n; i++)
                bench_result_line(title, &bp[i], &bp[ref], peers[ref].name, &o);
        bench_noise_note(&bp[ref], o.rounds);
        return bp;
}

/* Stops the first own peers: the rest are lent (iceoryx's). */
static void table_done(struct bench_peer *bp, size_t n, struct peer *peers, size_t own) {
        for (size_t i = 0; i < own; i++)
                peer_stop(&peers[i]);
        bench_free(bp, n);
        free(bp);
}

static struct peer raw_peer(const char *name, side_fn drive, side_fn echo) {
        struct peer p = { .name = name, .drive = drive, .echo = echo };

        p.raw = shared_alloc(sizeof(struct raw));
        return p;
}

/* A channel pair; the parent's endpoints are opened after the fork. */
static struct peer chan_peer(const char *name, side_fn drive, side_fn echo, size_t msg_max, uint32_t depth,
                             uint64_t spin) {
        struct peer p = { .name = name, .drive = drive, .echo = echo, .child_init = chan_child_init, .spin = spin };

        chan_pair_make(&p, msg_max, depth);
        return p;
}

static void fork_all(struct peer *peers, size_t n) {
        for (size_t i = 0; i < n; i++)
                peer_start(&peers[i], 1);
}

/* After every child of the table is forked: nng refuses to run in a
 * child forked after the parent used it. */
static void open_parent_sides(struct peer *peers, size_t n) {
        for (size_t i = 0; i < n; i++) {
                if (peers[i].r1 && peers[i].child_init == chan_child_init)
                        chan_open_side(&peers[i], true);
#ifdef HAVE_ZMQ
                if (peers[i].child_init == zmq_child_init)
                        zmq_open_side(&peers[i], true);
#endif
#ifdef HAVE_NNG
                if (peers[i].child_init == nng_child_init)
                        nng_open_side(&peers[i], true);
#endif
        }
}

static void start_all(struct peer *peers, size_t n) {
        fork_all(peers, n);
        open_parent_sides(peers, n);
}


/* The iceoryx peers (bench-chan-iox.c): forked and connected before any
 * table, each lent to its table as a copy, all stopped at the end. */
#ifdef HAVE_ICEORYX
static struct peer iox_peers[IOX_N];
#endif
static bool have_iox;

/* peers[n] = iceoryx peer k if there is iceoryx; the new count. */
static size_t add_iox(struct peer *peers, size_t n, int k) {
#ifdef HAVE_ICEORYX
        if (have_iox)
                peers[n++] = iox_peers[k];
#endif
        return n;
}

static void rtt_busy(void) {
        struct peer peers[3] = {
                raw_peer("raw-busy", raw_busy_drive, raw_busy_echo),
                chan_peer("ashm-busy", chan_rtt_drive, chan_rtt_echo, MSG, 8, UINT64_MAX),
        };
        size_t own = 2, n;
        struct bench_peer *bp;

        place(peers, own, false);
        start_all(peers, own);
        n = add_iox(peers, own, IOX_BUSY);
        bp = table("rtt-busy cross-core", peers, n, opts.iters * 10, 0);
        all_ok &= bench_verdict("rtt-busy ashm", "raw busy-poll", 1.3, &bp[1], &bp[0], opts.rounds);
        if (n > own)
                all_ok &= bench_verdict("rtt-busy ashm", "iceoryx", 0.1, &bp[1], &bp[2], opts.rounds);
        else
                printf("target rtt-busy ashm <= 0.10x iceoryx: SKIP (no iceoryx)\n");
        table_done(bp, n, peers, own);
}

static size_t rtt_block_peers(struct peer *peers, bool same) {
        size_t n = 0;

        peers[n++] = raw_peer("raw-futex", raw_futex_drive, raw_futex_echo);
        peers[n++] = chan_peer("ashm-block", chan_rtt_drive, chan_rtt_echo, MSG, 8, 0);
        peers[n] = (struct peer) { .name = "eventfd", .drive = fd_drive, .echo = fd_echo };
        make_eventfds(&peers[n++]);
        peers[n] = (struct peer) { .name = "pipe", .drive = fd_drive, .echo = fd_echo };
        make_pipes(&peers[n++]);
        peers[n] = (struct peer) { .name = "unix-seqpacket", .drive = fd_drive, .echo = fd_echo };
        make_seqpacket(&peers[n++]);
#ifdef HAVE_ZMQ
        peers[n] = (struct peer) { .name = "zeromq-ipc", .drive = zmq_drive, .echo = zmq_echo,
                                   .child_init = zmq_child_init };
        snprintf(peers[n++].path, sizeof(peers[0].path), "ipc:///tmp/bench-chan-%d-%d-zmq", (int) getpid(), same);
#endif
#ifdef HAVE_NNG
        peers[n] = (struct peer) { .name = "nng-ipc", .drive = nng_drive, .echo = nng_echo,
                                   .child_init = nng_child_init };
        snprintf(peers[n++].path, sizeof(peers[0].path), "ipc:///tmp/bench-chan-%d-%d-nng", (int) getpid(), same);
#endif
        place(peers, n, same);
        return n;
}

/* Both placements' children are forked before either table runs (see
 * open_parent_sides()); iceoryx's WaitSet peer last. */
static void rtt_block(void) {
        struct peer peers[2][9];
        size_t own[2], n;

        for (int same = 0; same < 2; same++) {
                own[same] = rtt_block_peers(peers[same], same);
                fork_all(peers[same], own[same]);
        }
        for (int same = 0; same < 2; same++)
                open_parent_sides(peers[same], own[same]);
        for (int same = 0; same < 2; same++) {
                struct bench_peer *bp;
                char title[64];

                n = add_iox(peers[same], own[same], same ? IOX_BLOCK_SAME : IOX_BLOCK_CROSS);
                place(peers[same], n, same);
                snprintf(title, sizeof(title), "rtt-block %s", same ? "same-core" : "cross-core");
                bp = table(title, peers[same], n, opts.iters, 0);
                snprintf(title, sizeof(title), "rtt-block %s ashm", same ? "same-core" : "cross-core");
                all_ok &= bench_verdict(title, "raw futex", 1.1, &bp[1], &bp[0], opts.rounds);
                table_done(bp, n, peers[same], own[same]);
                for (size_t i = 0; i < own[same]; i++)
                        if (peers[same][i].path[0])
                                unlink(peers[same][i].path + strlen("ipc://"));
        }
}

static void tput(void) {
        struct peer peers[3] = {
                raw_peer("raw-ring-64k", raw_ring_drive, raw_ring_echo),
                chan_peer("ashm-64k", chan_tput_drive, chan_tput_echo, BIG, RING, UINT64_MAX),
        };
        size_t own = 2, n;
        struct bench_peer *bp;

        memset(src_buf, 0x5a, sizeof(src_buf));
        place(peers, own, false);
        start_all(peers, own);
        n = add_iox(peers, own, IOX_TPUT);
        bp = table("tput-64k cross-core (ns per 64 KiB message)", peers, n, opts.iters, 0);
        for (size_t i = 0; i < n; i++)
                printf("throughput %s: %.2f GB/s\n", peers[i].name,
                       (double) BIG / bench_stats(bp[i].samples, opts.rounds).median);
        all_ok &= bench_verdict("tput-64k ashm ns/message (= throughput >= 1.0x)", "raw two-copy ring", 1.0, &bp[1],
                                &bp[0], opts.rounds);
        if (n > own)
                all_ok &= bench_verdict("tput-64k ashm ns/message (= throughput >= 1.5x)", "iceoryx", 1.0 / 1.5,
                                        &bp[1], &bp[2], opts.rounds);
        else
                printf("target tput-64k ashm >= 1.5x iceoryx: SKIP (no iceoryx)\n");
        table_done(bp, n, peers, own);
}

static void zero_copy(void) {
        struct peer peers[] = {
                chan_peer("ashm-zc-8", chan_zc_drive, chan_zc_echo, MSG, 2, UINT64_MAX),
                chan_peer("ashm-zc-1m", chan_zc_drive, chan_zc_echo, MIB, 2, UINT64_MAX),
        };
        struct bench_peer *bp;

        peers[0].len = MSG;
        peers[1].len = MIB;
        place(peers, ELEMENTS(peers), false);
        start_all(peers, ELEMENTS(peers));
        bp = table("zc-1m cross-core round trip", peers, ELEMENTS(peers), opts.iters * 10, 0);
        all_ok &= bench_verdict("zc 1 MiB round trip", "8-byte", 1.1, &bp[1], &bp[0], opts.rounds);
        table_done(bp, ELEMENTS(peers), peers, ELEMENTS(peers));
}

/* ashm: a pub/sub channel of FANOUT_DEPTH; iceoryx: subscriber queues
 * of FANOUT_DEPTH, both sides blocking (WaitSet). */
static void fanout(void) {
        struct peer peers[2] = { { .name = "ashm-pubsub-1to4", .drive = fanout_drive, .echo = fanout_echo,
                                   .child_init = fanout_child_init, .spin = 0 } };
        struct peer *p = &peers[0];
        struct bench_peer *bp;
        ashm_chan_info info;
        size_t n;

        ck("create", ashm_chan_create("bench-fanout", ASHM_CHAN_PUBSUB, MSG, FANOUT_DEPTH, SUBS, 0, &p->r1));
        place(p, 1, false);
        peer_start(p, SUBS);
        ck("open pub", ashm_chan_open(p->r1, ASHM_CHAN_PUBLISHER, 0, &p->c1));
        do
                ck("stat", ashm_chan_stat(p->r1, &info, NULL, 0));
        while (info.subscribers < SUBS && usleep(1000) == 0);
        n = add_iox(peers, 1, IOX_FANOUT);
        bp = table("fanout 1 publisher -> 4 subscribers (ns per message, all delivered)", peers, n, opts.iters * 5,
                   0);
        table_done(bp, n, peers, 1);
}

static uint64_t setup_run(void *ctx, unsigned iters) {
        uint64_t t0 = bench_now_ns();

        for (unsigned i = 0; i < iters; i++) {
                ashm_region *r;
                ashm_chan *a, *b;

                ck("create", ashm_chan_create("bench-setup", ASHM_CHAN_QUEUE, 4096, 64, 1, 0, &r));
                ck("open", ashm_chan_open(r, ASHM_CHAN_PRODUCER, 0, &a));
                ck("open", ashm_chan_open(r, ASHM_CHAN_CONSUMER, 0, &b));
                ashm_chan_close(a);
                ashm_chan_close(b);
                ashm_region_close(r);
        }
        return bench_now_ns() - t0;
}

static void setup(void) {
        struct bench_peer bp[2] = { { .name = "ashm-create+attach", .run = setup_run } };
        struct bench_opts o = opts;
        size_t n = 1;

#ifdef HAVE_ICEORYX
        if (have_iox)
                bp[n++] = (struct bench_peer) { .name = "iceoryx-pub+sub", .run = iox_setup_run };
#endif
        o.iters = 20;
        bench_run(bp, n, &o);
        bench_table_header("setup: create a channel and attach both ends (iceoryx: a publisher and a subscriber, "
                           "until connected)", &o, bp[0].name);
        for (size_t i = 0; i < n; i++)
                bench_table_row(&bp[i], &bp[0], o.rounds);
        for (size_t i = 0; i < n; i++)
                bench_result_line("setup", &bp[i], &bp[0], bp[0].name, &o);
        if (n > 1)
                all_ok &= bench_verdict("setup ashm", "iceoryx", 0.1, &bp[0], &bp[1], o.rounds);
        else
                printf("target setup ashm <= 0.10x iceoryx: SKIP (no iceoryx)\n");
        bench_free(bp, n);
}

static bool wanted(const char *only, const char *what) {
        return !only || strstr(only, what);
}

int main(int argc, char **argv) {
        const char *only = getenv("BENCH_CHAN_ONLY");

        bench_parse_args(argc, argv, &opts, 0);
        bench_pick_cpus(cpus);
#ifdef HAVE_ICEORYX
        have_iox = iox_world_enter(wanted(only, "busy") || wanted(only, "block") || wanted(only, "tput") ||
                                   wanted(only, "fanout") || wanted(only, "setup") || wanted(only, "mem"));
#endif
        signal(SIGPIPE, SIG_IGN);
        printf("bench-chan: parent on CPU %d, child on CPU %d (cross-core) or %d (same-core)\n", cpus[0], cpus[1],
               cpus[0]);
#ifdef HAVE_ICEORYX
        if (have_iox)
                iox_peers_start(iox_peers, cpus);
#endif
        if (wanted(only, "busy"))
                rtt_busy();
        if (wanted(only, "block"))
                rtt_block();
        if (wanted(only, "tput"))
                tput();
        if (wanted(only, "zc"))
                zero_copy();
        if (wanted(only, "fanout"))
                fanout();
        if (wanted(only, "setup"))
                setup();
        if (wanted(only, "mem"))
                all_ok &= chan_memory(have_iox);
#ifdef HAVE_ICEORYX
        if (have_iox)
                iox_peers_stop(iox_peers);
#endif
        return opts.strict && !all_ok ? 1 : 0;
}
