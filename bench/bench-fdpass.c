/* SPDX-License-Identifier: MIT */
/* bench-fdpass: passing a region's fd to another process, ashm against
 * raw SCM_RIGHTS.
 *
 * What one operation is: a round trip between this process and a forked
 * child over an AF_UNIX socketpair. The parent sends the fd of one 1 MiB
 * region (created once, before timing; the same memfd for every peer)
 * with an 8-byte payload; the child receives it, checks the payload,
 * closes what it received and sends back a 1-byte ack (send(), the same
 * for both peers); the parent's recv() of the ack ends the operation.
 *  ashm  parent: ashm_region_send(sock, region, payload, 8)
 *        child:  ashm_region_recv(sock, 0, buf, 8, &len, &r) +
 *                ashm_region_close(r)
 *  raw   parent: sendmsg(MSG_NOSIGNAL) of 8 bytes with one SCM_RIGHTS fd
 *        child:  recvmsg(MSG_CMSG_CLOEXEC) into 8 bytes, check MSG_CTRUNC
 *                and the cmsg, close(fd)
 * Both peers run on a SOCK_SEQPACKET pair (the target) and on a
 * SOCK_STREAM pair, all four interleaved in one run. Before each batch the
 * parent tells the child, over a separate control socket, which peer and
 * how many operations come next, and waits for its ready byte: that
 * exchange is not timed.
 *
 * A third pair, "local", is informational: send and receive in this one
 * process on a SEQPACKET pair with no ack and no child, so no context
 * switch hides the library's own overhead.
 *
 * Placement (--cpus): by default both processes are pinned to one CPU,
 * so an operation is syscalls plus two context switches and nothing
 * else: the measurement is stable, and the library's own cost is the
 * largest share of it, the strictest setting for the target. "split"
 * puts them on two CPUs and "any" leaves them to the scheduler; there,
 * on a VM, each wake-up of an idle CPU costs tens of microseconds and
 * varies by +-20%, which hides sub-microsecond differences in noise.
 *
 * Target: ashm <= 1.10x raw on SOCK_SEQPACKET (ratio of medians). */
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ashm.h"
#include "bench.h"

#define PAYLOAD_LEN 8
#define TARGET_FDPASS 1.10

enum kind { KIND_ASHM, KIND_RAW };
enum pair { PAIR_SEQPACKET, PAIR_STREAM, PAIR_LOCAL, N_PAIRS };

struct command {
        uint32_t kind, sock, iters;
};

struct peer_ctx {
        enum kind kind;
        enum pair pair;
};

static const char payload[PAYLOAD_LEN] = "region!";
static ashm_region *region;
static int ctl[2];
static int socks[N_PAIRS][2]; /* [0] the parent's end, [1] the child's */

static void raw_send(int sock, int fd) {
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int))];
        } control;
        struct iovec iov = { .iov_base = (void *) payload, .iov_len = PAYLOAD_LEN };
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = control.buf,
                .msg_controllen = sizeof(control.buf),
        };
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

        memset(&control, 0, sizeof(control));
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
        if (sendmsg(sock, &mh, MSG_NOSIGNAL) != PAYLOAD_LEN)
                bench_die("sendmsg", errno);
}

static void raw_recv_close(int sock) {
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int))];
        } control;
        char buf[PAYLOAD_LEN];
        struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = control.buf,
                .msg_controllen = sizeof(control.buf),
        };
        struct cmsghdr *c;
        ssize_t n;
        int fd;

        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        if (n < 0)
                bench_die("recvmsg", errno);
        c = CMSG_FIRSTHDR(&mh);
        if (n != PAYLOAD_LEN || (mh.msg_flags & MSG_CTRUNC) || !c || c->cmsg_level != SOL_SOCKET ||
            c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int)))
                bench_die("recvmsg: unexpected message", EBADMSG);
        memcpy(&fd, CMSG_DATA(c), sizeof(int));
        if (memcmp(buf, payload, PAYLOAD_LEN) != 0)
                bench_die("recvmsg: payload", EBADMSG);
        close(fd);
}

static void ashm_recv_close(int sock) {
        char buf[PAYLOAD_LEN];
        ashm_region *r;
        size_t len;
        int ret;

        ret = ashm_region_recv(sock, 0, buf, sizeof(buf), &len, &r);
        if (ret < 0)
                bench_die("ashm_region_recv", ret);
        if (len != PAYLOAD_LEN || memcmp(buf, payload, PAYLOAD_LEN) != 0)
                bench_die("ashm_region_recv: payload", EBADMSG);
        ashm_region_close(r);
}

static void ashm_send(int sock) {
        int r = ashm_region_send(sock, region, payload, PAYLOAD_LEN);

        if (r < 0)
                bench_die("ashm_region_send", r);
}

static void send_byte(int sock) {
        if (send(sock, "k", 1, MSG_NOSIGNAL) != 1)
                bench_die("send(ack)", errno);
}

static void recv_byte(int sock) {
        char b;

        if (recv(sock, &b, 1, 0) != 1)
                bench_die("recv(ack)", errno ? errno : ECONNRESET);
}


/* The child: run the batches the parent announces until told to stop. */
static _Noreturn void child_main(void) {
        struct command cmd;

        while (recv(ctl[1], &cmd, sizeof(cmd), 0) == sizeof(cmd) && cmd.iters > 0) {
                int sock = socks[cmd.sock][1];

                send_byte(ctl[1]);
                for (uint32_t i = 0; i < cmd.iters; i++) {
                        if (cmd.kind == KIND_ASHM)
                                ashm_recv_close(sock);
                        else
                                raw_recv_close(sock);
                        send_byte(sock);
                }
        }
        _exit(0);
}

static uint64_t run_remote(void *ctx, unsigned iters) {
        const struct peer_ctx *p = ctx;
        struct command cmd = { .kind = p->kind, .sock = p->pair, .iters = iters };
        int sock = socks[p->pair][0], fd = ashm_region_fd(region);
        uint64_t t0;

        if (send(ctl[0], &cmd, sizeof(cmd), MSG_NOSIGNAL) != sizeof(cmd))
                bench_die("send(command)", errno);
        recv_byte(ctl[0]);

        t0 = bench_now_ns();
        for (unsigned i = 0; i < iters; i++) {
                if (p->kind == KIND_ASHM)
                        ashm_send(sock);
                else
                        raw_send(sock, fd);
                recv_byte(sock);
        }
        return bench_now_ns() - t0;
}

static uint64_t run_local(void *ctx, unsigned iters) {
        const struct peer_ctx *p = ctx;
        int tx = socks[PAIR_LOCAL][0], rx = socks[PAIR_LOCAL][1], fd = ashm_region_fd(region);
        uint64_t t0 = bench_now_ns();

        for (unsigned i = 0; i < iters; i++) {
                if (p->kind == KIND_ASHM) {
                        ashm_send(tx);
                        ashm_recv_close(rx);
                } else {
                        raw_send(tx, fd);
                        raw_recv_close(rx);
                }
        }
        return bench_now_ns() - t0;
}

/* Create the region and the sockets, fork the child and place both. */
static void setup(int placement, const int cpus[2], pid_t *ret_child) {
        static const int types[N_PAIRS] = { SOCK_SEQPACKET, SOCK_STREAM, SOCK_SEQPACKET };
        pid_t pid;
        int r;

        r = ashm_region_create("bench", 1 << 20, 0, &region);
        if (r < 0)
                bench_die("ashm_region_create", r);
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) < 0)
                bench_die("socketpair", errno);
        for (int i = 0; i < N_PAIRS; i++)
                if (socketpair(AF_UNIX, types[i] | SOCK_CLOEXEC, 0, socks[i]) < 0)
                        bench_die("socketpair", errno);
        fflush(stdout);
        pid = fork();
        if (pid < 0)
                bench_die("fork", errno);
        if (pid == 0) {
                if (placement != BENCH_CPUS_ANY)
                        bench_pin_to(placement == BENCH_CPUS_SAME ? cpus[0] : cpus[1]);
                child_main();
        }
        if (placement != BENCH_CPUS_ANY)
                bench_pin_to(cpus[0]);
        *ret_child = pid;
}

static void teardown(pid_t child) {
        struct command stop = { 0 };
        int status;

        (void) send(ctl[0], &stop, sizeof(stop), MSG_NOSIGNAL);
        if (waitpid(child, &status, 0) < 0)
                bench_die("waitpid", errno);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "bench-fdpass: the child failed\n");
                exit(2);
        }
        ashm_region_close(region);
}

static bool report(const char *bench, const struct bench_peer *ashm, const struct bench_peer *raw,
                   const struct bench_opts *o, bool target) {
        double ratio = bench_ratio(ashm, raw, o->rounds);

        bench_table_header(bench, o, "raw");
        bench_table_row(ashm, raw, o->rounds);
        bench_table_row(raw, raw, o->rounds);
        printf("\n");
        bench_result_line(bench, ashm, raw, "raw", o);
        bench_result_line(bench, raw, raw, "raw", o);
        if (!target) {
                printf("info %s (no target): ashm/raw %.3fx\n", bench, ratio);
                return true;
        }
        bench_noise_note(raw, o->rounds);
        return bench_verdict(bench, "raw SCM_RIGHTS", TARGET_FDPASS, ashm, raw, o->rounds);
}

int main(int argc, char **argv) {
        struct bench_opts o = { .rounds = 51, .iters = 1000, .warmup = 2 };
        struct peer_ctx ctx[] = {
                { KIND_ASHM, PAIR_SEQPACKET }, { KIND_RAW, PAIR_SEQPACKET },
                { KIND_ASHM, PAIR_STREAM },    { KIND_RAW, PAIR_STREAM },
                { KIND_ASHM, PAIR_LOCAL },     { KIND_RAW, PAIR_LOCAL },
        };
        struct bench_peer peers[ELEMENTS(ctx)];
        char where[64];
        int cpus[2];
        pid_t child;
        bool ok;

        bench_parse_args(argc, argv, &o, BENCH_FLAG_CPUS);
        bench_pick_cpus(cpus);
        if (o.cpus == BENCH_CPUS_SPLIT && cpus[0] == cpus[1]) {
                fprintf(stderr, "bench-fdpass: --cpus split needs two CPUs; using one\n");
                o.cpus = BENCH_CPUS_SAME;
        }
        if (o.cpus == BENCH_CPUS_ANY)
                snprintf(where, sizeof(where), "CPUs left to the scheduler");
        else
                snprintf(where, sizeof(where), "parent on CPU %d, child on CPU %d", cpus[0],
                         o.cpus == BENCH_CPUS_SAME ? cpus[0] : cpus[1]);
        for (size_t i = 0; i < ELEMENTS(ctx); i++)
                peers[i] = (struct bench_peer) {
                        .name = ctx[i].kind == KIND_ASHM ? "ashm" : "raw",
                        .run = ctx[i].pair == PAIR_LOCAL ? run_local : run_remote,
                        .ctx = &ctx[i],
                };
        printf("bench-fdpass: one memfd + %d-byte payload per message; round trip to a forked child "
               "(fd, then a 1-byte ack); %s; libashm %s\n",
               PAYLOAD_LEN, where, ashm_version());

        setup(o.cpus, cpus, &child);
        bench_run(peers, ELEMENTS(peers), &o);
        teardown(child);

        ok = report("fdpass-seqpacket", &peers[0], &peers[1], &o, true);
        ok = report("fdpass-stream", &peers[2], &peers[3], &o, true) && ok;
        (void) report("fdpass-local", &peers[4], &peers[5], &o, false);

        bench_free(peers, ELEMENTS(peers));
        return ok || !o.strict ? 0 : 1;
}
