/* SPDX-License-Identifier: MIT */
/* bench-broker: looking a published region up by name through ashmd,
 * against a raw SCM_RIGHTS round trip on the same socket type.
 *
 * What one operation is: a request from this process and a reply that
 * carries one memfd, received and closed, over AF_UNIX SOCK_SEQPACKET.
 *  lookup-write  ashm_lookup(NAME, ASHM_LOOKUP_WRITE, &r) +
 *                ashm_region_close(r). The daemon answers a write grant
 *                with F_DUPFD_CLOEXEC of the publisher's fd: the main
 *                peer, judged against the target.
 *  lookup-read   ashm_lookup(NAME, 0, &r) + ashm_region_close(r), by the
 *                region's owner (this process) on a region whose mode
 *                gives the owner write (0600) and that is not frozen, so
 *                the daemon opens /proc/self/fd/N O_RDONLY for it: the
 *                path a read-only grant takes when nothing needs
 *                enforcing. Informational. (Other read grants, a frozen
 *                copy for the owner of a region it may only read, cost a
 *                copy of the contents and are not measured here.)
 *  raw           send() of a request of the size ashm's lookup request
 *                has, to a forked server on a socketpair, which recv()s
 *                it and sendmsg()s back a reply of the size of ashm's
 *                lookup reply with one SCM_RIGHTS fd of a 1 MiB memfd it
 *                holds; here recvmsg(MSG_CMSG_CLOEXEC), check MSG_CTRUNC
 *                and the cmsg, close(fd).
 * The sizes are those of src/libashm/internal-api/protocol.h (a
 * benchmark sees only the public header, so they are spelled out below):
 * a lookup request is one datagram of struct proto_hdr (24 bytes) and struct proto_lookup_req
 * (264), a reply struct proto_hdr and struct proto_lookup_rep (24).
 *
 * So lookup against raw is what the broker adds to the bare transport:
 * in the client, the protocol header, a poll() before the recvmsg(), the
 * reply's decoding and adopting the fd (F_GET_SEALS, a small malloc); in
 * the daemon, its epoll loop, the request's decoding and the name's
 * checks (a list search, fstat(), F_GET_SEALS, the access bits).
 *
 * A private ashmd (bench.h: its own socket, --no-pressure, ASHM_SOCKET
 * and ASHM_NO_AUTOSTART=1 for this process) is started for the run and
 * stopped at the end. The region (1 MiB) is published by this process
 * without ASHM_PUBLISH_KEEP and looked up on this process's one daemon
 * connection; before timing, both lookups are checked to return the
 * published inode.
 *
 * Placement (--cpus, as bench-fdpass): by default this process, the raw
 * server and ashmd are pinned to one CPU (the daemon and the server
 * inherit the affinity set before they are forked, and the daemon keeps
 * it across exec), so that an operation is syscalls and context switches
 * only: on this VM a wake-up across CPUs costs tens of microseconds and
 * varies by +-20%, which would drown the comparison. "split" puts the
 * client on one CPU and both servers on another; "any" leaves all three
 * to the scheduler.
 *
 * Interleaved rounds and medians as everywhere in bench/ (bench.h).
 * Target (issue 4): lookup-write <= 1.5x raw (ratio of medians). */
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ashm.h"
#include "bench.h"

#define HDR_LEN 24         /* sizeof(struct proto_hdr) */
#define LOOKUP_REQ_LEN 264 /* sizeof(struct proto_lookup_req) */
#define LOOKUP_REP_LEN 24  /* sizeof(struct proto_lookup_rep) */
#define REQ_LEN (HDR_LEN + LOOKUP_REQ_LEN)
#define REP_LEN (HDR_LEN + LOOKUP_REP_LEN)
#define REGION_SIZE (1u << 20)
#define TARGET_LOOKUP 1.5

static char name[64];
static int raw_sock[2] = { -1, -1 }; /* [0] the client's end, [1] the server's */

/* ---- the raw peer ----------------------------------------------------- */

static void raw_reply(int sock, int fd) {
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int))];
        } control;
        char rep[REP_LEN] = { 0 };
        struct iovec iov = { .iov_base = rep, .iov_len = sizeof(rep) };
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
        if (sendmsg(sock, &mh, MSG_NOSIGNAL) != REP_LEN)
                _exit(3);
}

/* The raw server: answer every request until the client closes. */
static _Noreturn void raw_server(void) {
        char req[REQ_LEN + 1];
        int fd;

        /* Dies with the benchmark, whatever happens to it. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() == 1)
                _exit(2);
        close(raw_sock[0]);
        fd = memfd_create("bench-broker-raw", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0 || ftruncate(fd, REGION_SIZE) < 0)
                _exit(2);
        for (;;) {
                ssize_t n = recv(raw_sock[1], req, sizeof(req), 0);

                if (n == 0)
                        _exit(0);
                if (n != REQ_LEN)
                        _exit(3);
                raw_reply(raw_sock[1], fd);
        }
}

static void raw_request(int sock) {
        static const char req[REQ_LEN] = "lookup";
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int))];
        } control;
        char rep[REP_LEN];
        struct iovec iov = { .iov_base = rep, .iov_len = sizeof(rep) };
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = control.buf,
                .msg_controllen = sizeof(control.buf),
        };
        struct cmsghdr *c;
        ssize_t n;
        int fd;

        if (send(sock, req, sizeof(req), MSG_NOSIGNAL) != REQ_LEN)
                bench_die("send(request)", errno);
        do
                n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                bench_die("recvmsg", errno);
        c = CMSG_FIRSTHDR(&mh);
        if (n != REP_LEN || (mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) || !c || c->cmsg_level != SOL_SOCKET ||
            c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int)))
                bench_die("recvmsg: unexpected reply from the raw server", EBADMSG);
        memcpy(&fd, CMSG_DATA(c), sizeof(int));
        close(fd);
}

static uint64_t run_raw(void *ctx, unsigned iters) {
        uint64_t t0 = bench_now_ns();

        (void) ctx;
        for (unsigned i = 0; i < iters; i++)
                raw_request(raw_sock[0]);
        return bench_now_ns() - t0;
}

/* ---- the ashm peers ------------------------------------------------------ */

static uint64_t run_lookup(void *ctx, unsigned iters) {
        const unsigned flags = (unsigned) (uintptr_t) ctx;
        uint64_t t0 = bench_now_ns();

        for (unsigned i = 0; i < iters; i++) {
                ashm_region *r;
                int ret = ashm_lookup(name, flags, &r);

                if (ret < 0)
                        bench_die("ashm_lookup", ret);
                ashm_region_close(r);
        }
        return bench_now_ns() - t0;
}

/* Both lookups must hand out the published inode itself, writable or
 * read-only as asked: not a copy, not another file. */
static void check_lookup(const ashm_region *published, unsigned flags) {
        struct stat a, b;
        ashm_region *r;
        int ret, fl;

        ret = ashm_lookup(name, flags, &r);
        if (ret < 0)
                bench_die("ashm_lookup", ret);
        if (fstat(ashm_region_fd(published), &a) < 0 || fstat(ashm_region_fd(r), &b) < 0)
                bench_die("fstat", errno);
        fl = fcntl(ashm_region_fd(r), F_GETFL);
        if (a.st_dev != b.st_dev || a.st_ino != b.st_ino || fl < 0 ||
            (fl & O_ACCMODE) != (flags & ASHM_LOOKUP_WRITE ? O_RDWR : O_RDONLY))
                bench_die("ashm_lookup returned another file or open mode than expected", EPROTO);
        ashm_region_close(r);
}

/* ---- placement --------------------------------------------------------- */


/* "Cpus_allowed_list" of pid, as the kernel shows it, for the header. */
static void cpus_of(pid_t pid, char *buf, size_t len) {
        char path[64], line[256];
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
        snprintf(buf, len, "?");
        f = fopen(path, "re");
        if (!f)
                return;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "Cpus_allowed_list: %31s", buf) == 1)
                        break;
        fclose(f);
        buf[len - 1] = 0;
}

/* ---- set-up, report ------------------------------------------------------ */

static pid_t raw_start(void) {
        pid_t pid;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, raw_sock) < 0)
                bench_die("socketpair", errno);
        fflush(NULL);
        pid = fork();
        if (pid < 0)
                bench_die("fork", errno);
        if (pid == 0)
                raw_server();
        close(raw_sock[1]);
        raw_sock[1] = -1;
        return pid;
}

static void raw_stop(pid_t pid) {
        int status;

        close(raw_sock[0]); /* the server reads EOF and exits */
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        bench_die("waitpid(raw server)", errno);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "bench-broker: the raw server failed (status 0x%x)\n", status);
                exit(2);
        }
}

static bool report(struct bench_peer *peers, size_t n, const struct bench_opts *o) {
        struct bench_peer *lw = &peers[0], *lr = &peers[1], *raw = &peers[2];

        bench_table_header("broker-lookup", o, "raw");
        for (size_t i = 0; i < n; i++)
                bench_table_row(&peers[i], raw, o->rounds);
        printf("\n");
        for (size_t i = 0; i < n; i++)
                bench_result_line("broker-lookup", &peers[i], raw, "raw", o);
        printf("info lookup-read (no target; /proc reopen by the owner): lookup-read/raw %.3fx, "
               "lookup-read/lookup-write %.3fx\n",
               bench_ratio(lr, raw, o->rounds), bench_ratio(lr, lw, o->rounds));
        bench_noise_note(raw, o->rounds);
        return bench_verdict("lookup", "raw SCM_RIGHTS", TARGET_LOOKUP, lw, raw, o->rounds);
}

/* Start ashmd and the raw server where placement says, then place this
 * process; ret_where describes where everything runs. The servers
 * inherit the affinity this process has when it forks them (the daemon
 * keeps it across exec). */
static pid_t start_servers(int placement, struct bench_daemon *d, char *ret_where, size_t len) {
        static const char *const names[] = { [BENCH_CPUS_SAME] = "same", [BENCH_CPUS_SPLIT] = "split",
                                             [BENCH_CPUS_ANY] = "any" };
        char client[32], server[32], daemon[32];
        int cpus[2];
        pid_t pid;

        bench_pick_cpus(cpus);
        if (placement == BENCH_CPUS_SPLIT && cpus[0] == cpus[1]) {
                fprintf(stderr, "bench-broker: --cpus split needs two CPUs; using one\n");
                placement = BENCH_CPUS_SAME;
        }
        if (placement != BENCH_CPUS_ANY)
                bench_pin_to(placement == BENCH_CPUS_SAME ? cpus[0] : cpus[1]);
        bench_daemon_start(d, NULL);
        pid = raw_start();
        if (placement != BENCH_CPUS_ANY)
                bench_pin_to(cpus[0]);
        cpus_of(getpid(), client, sizeof(client));
        cpus_of(pid, server, sizeof(server));
        cpus_of(d->pid, daemon, sizeof(daemon));
        snprintf(ret_where, len, "--cpus %s: client on CPU %s, raw server on %s, ashmd on %s", names[placement],
                 client, server, daemon);
        return pid;
}

int main(int argc, char **argv) {
        struct bench_opts o = { .rounds = 51, .iters = 1000, .warmup = 2 };
        struct bench_peer peers[] = {
                { .name = "lookup-write", .run = run_lookup, .ctx = (void *) (uintptr_t) ASHM_LOOKUP_WRITE },
                { .name = "lookup-read", .run = run_lookup, .ctx = (void *) (uintptr_t) 0 },
                { .name = "raw", .run = run_raw },
        };
        struct bench_daemon d;
        ashm_region *region;
        char where[160];
        pid_t server;
        bool ok;
        int r;

        bench_parse_args(argc, argv, &o, BENCH_FLAG_CPUS);
        server = start_servers(o.cpus, &d, where, sizeof(where));

        snprintf(name, sizeof(name), "bench-broker-%d", (int) getpid());
        r = ashm_region_create("bench-broker", REGION_SIZE, 0, &region);
        if (r < 0)
                bench_die("ashm_region_create", r);
        r = ashm_publish(region, name, 0600, 0);
        if (r < 0)
                bench_die("ashm_publish", r);
        check_lookup(region, ASHM_LOOKUP_WRITE);
        check_lookup(region, 0);

        printf("bench-broker: lookup of a published 1 MiB region through a private ashmd (pid %d) vs a raw "
               "SCM_RIGHTS round trip (%d-byte request, %d-byte reply + 1 fd) on SOCK_SEQPACKET; %s; libashm %s\n",
               (int) d.pid, REQ_LEN, REP_LEN, where, ashm_version());

        bench_run(peers, ELEMENTS(peers), &o);

        raw_stop(server);
        r = ashm_unpublish(name);
        if (r < 0)
                bench_die("ashm_unpublish", r);
        ashm_region_close(region);
        bench_daemon_stop(&d);

        ok = report(peers, ELEMENTS(peers), &o);
        bench_free(peers, ELEMENTS(peers));
        return ok || !o.strict ? 0 : 1;
}
