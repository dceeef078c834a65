/* SPDX-License-Identifier: MIT */
/* What the channel tests share (test-chan.c, test-chan-watch.c,
 * test-chan-crash.c): making channels and endpoints, exec'ing the peer
 * program (tests/chan-peer.c) and reaping it. */
#pragma once

#include <inttypes.h>
#include <time.h>

#include "ashm.h"
#include "chan-test.h"
#include "tests.h"

#define MS (INT64_C(1000000))

/* The start of the header (chan.h struct chan_hdr), for the tests that
 * reach past the API: the control words are at ctl_off, and ring 0's
 * tail is their first word after the 64-byte global block. */
struct test_chan_hdr {
        uint64_t magic;
        uint32_t version, kind, flags, msg_max, depth, peers;
        uint64_t stride, ctl_off, rings_off, ring_bytes, peers_off, total;
};

static inline int64_t clock_monotonic_ns_test(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline ashm_region *make(int kind, uint32_t msg_max, uint32_t depth, uint32_t peers, unsigned flags) {
        ashm_region *region;

        assert_ok(ashm_chan_create("test-chan", kind, msg_max, depth, peers, flags, &region));
        return region;
}

static inline ashm_chan *open_role(ashm_region *region, int role) {
        ashm_chan *ch;

        assert_ok(ashm_chan_open(region, role, 0, &ch));
        return ch;
}

/* Exec the peer with the channel as fd 3 and the log (if any) as fd 4;
 * as nobody (setpriv) if nobody is set and we are root. */
static inline pid_t spawn_chan_peer_as(ashm_region *chan, ashm_region *log, bool nobody, const char *const *argv) {
        const char *args[16] = { CHAN_PEER };
        size_t n = 0;
        pid_t pid;

        if (nobody && geteuid() == 0 && access("/usr/bin/setpriv", X_OK) == 0) {
                const char *pre[] = { "/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups" };

                for (; n < ELEMENTSOF(pre); n++)
                        args[n] = pre[n];
        }
        args[n++] = CHAN_PEER;
        for (size_t i = 0; argv[i] && i < 8; i++)
                args[n++] = argv[i];
        pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
                int c = fcntl(ashm_region_fd(chan), F_DUPFD, 10);
                int l = log ? fcntl(ashm_region_fd(log), F_DUPFD, 10) : -1;

                /* A peer never outlives a test that failed midway. */
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || c < 0 || dup2(c, 3) < 0 || (l >= 0 && dup2(l, 4) < 0))
                        _exit(127);
                execv(args[0], (char *const *) args);
                _exit(127);
        }
        return pid;
}

static inline pid_t spawn_chan_peer(ashm_region *chan, ashm_region *log, const char *const *argv) {
        return spawn_chan_peer_as(chan, log, false, argv);
}

static inline int reap(pid_t pid) {
        int status;

        cr_assert(waitpid(pid, &status, 0) == pid);
        return status;
}

static inline void reap_ok(pid_t pid) {
        int status = reap(pid);

        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "chan peer exited with status 0x%x", status);
}

static inline void send_str(ashm_chan *ch, const char *s) {
        assert_ok(ashm_chan_send(ch, s, strlen(s), 0));
}

static inline void recv_str(ashm_chan *ch, const char *want, int64_t timeout) {
        char buf[256];
        size_t len;

        assert_ok(ashm_chan_recv(ch, buf, sizeof(buf) - 1, &len, timeout));
        buf[len] = '\0';
        cr_assert_str_eq(buf, want);
}

static inline unsigned seed_from_env(void) {
        const char *s = getenv("ASHM_TEST_SEED");
        unsigned seed = s ? (unsigned) strtoul(s, NULL, 0) : (unsigned) time(NULL) ^ (unsigned) getpid();

        fprintf(stderr, "seed %u (ASHM_TEST_SEED=%u reproduces)\n", seed, seed);
        return seed;
}

static inline ashm_region *make_log(void) {
        ashm_region *log;

        assert_ok(ashm_region_create("test-chan-log", TLOG_SIZE, 0, &log));
        return log;
}

/* The exit status of pid, which must end within 10 s (it is told of a
 * death by the kernel; a hang is the bug this looks for). */
static inline int reap_within(pid_t pid) {
        int status;

        for (int tries = 0; waitpid(pid, &status, WNOHANG) == 0; tries++) {
                if (tries >= 10000) {
                        kill(pid, SIGKILL);
                        reap(pid);
                        cr_assert_fail("chan peer %d still blocked 10 s after its peer died", (int) pid);
                }
                usleep(1000);
        }
        return status;
}

static inline void wait_endpoints(ashm_region *r, unsigned want) {
        ashm_chan_info info;

        for (int tries = 0;; tries++) {
                assert_ok(ashm_chan_stat(r, &info, NULL, 0));
                if (info.producers + info.consumers + info.publishers + info.subscribers >= want)
                        return;
                cr_assert(tries < 5000, "endpoints did not attach");
                usleep(1000);
        }
}
