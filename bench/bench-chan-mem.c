/* SPDX-License-Identifier: MIT */
/* bench-chan's memory workload: the shared memory a channel really
 * holds, against its rings, and what iceoryx's RouDi reserves.
 *
 * ashm: the memfds this process holds after creating the channels of a
 * workload and opening every end of them in this process, minus those
 * it held before (distinct inodes: each end reopens the region through
 * /proc/self/fd), their sizes (st_size: what is reserved) and resident
 * bytes (st_blocks). That is checked against what the layout of
 * docs/channels.md allows: the rings (rings x depth x align64(H +
 * msg_max), rounded up to pages, where the slot header H is 16 bytes,
 * 64 when msg_max >= 1 KiB) plus the control pages (the header and the
 * control words from page 0 on: ceil((128 + 64 + 128 x rings) / 4096)
 * pages, and one page per subscriber in pub/sub). Any other memfd, or
 * a region larger than that, is memory reserved beyond the rings: FAIL.
 *
 * iceoryx: the files in RouDi's private /dev/shm (the management segment
 * and the user's payload segment), sizes and resident bytes, for this
 * benchmark's RouDi config (mempools 1000 x 128 B and 64 x 66560 B);
 * RouDi reserves them at its start, whatever channels exist.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench-chan.h"
#include "bench.h"

#define PAGE UINT64_C(4096)
#define MAX_INODES 256

struct usage {
        uint64_t bytes, resident;
        unsigned memfds;
        ino_t ino[MAX_INODES];
};

static uint64_t round_up(uint64_t v, uint64_t to) {
        return (v + to - 1) / to * to;
}

static bool seen(const struct usage *u, ino_t ino) {
        for (unsigned i = 0; i < u->memfds; i++)
                if (u->ino[i] == ino)
                        return true;
        return false;
}

/* The distinct memfds among this process's fds. */
static void memfd_usage(struct usage *u) {
        DIR *d = opendir("/proc/self/fd");
        struct dirent *e;

        if (!d)
                bench_die("opendir /proc/self/fd", errno);
        memset(u, 0, sizeof(*u));
        while ((e = readdir(d))) {
                char target[256];
                struct stat st;
                ssize_t n = readlinkat(dirfd(d), e->d_name, target, sizeof(target) - 1);

                if (n < 0)
                        continue;
                target[n] = 0;
                if (strncmp(target, "/memfd:", 7) != 0 || fstat(atoi(e->d_name), &st) < 0 || seen(u, st.st_ino))
                        continue;
                if (u->memfds == MAX_INODES)
                        bench_die("memfd_usage: too many memfds", E2BIG);
                u->ino[u->memfds++] = st.st_ino;
                u->bytes += (uint64_t) st.st_size;
                u->resident += (uint64_t) st.st_blocks * 512;
        }
        closedir(d);
}

struct mem_case {
        const char *name;
        uint32_t kind, msg_max, depth, peers;
        unsigned count; /* channels of this shape in the workload */
};

/* Ring bytes and control pages the layout allows for count channels. */
static void allowed(const struct mem_case *c, uint64_t *ret_ring, uint64_t *ret_control) {
        uint64_t rings = c->kind == ASHM_CHAN_QUEUE ? c->peers : 1;
        uint64_t hdr = c->msg_max >= 1024 ? 64 : 16;
        uint64_t ring = rings * c->depth * round_up(hdr + (uint64_t) c->msg_max, 64);
        /* Page 0: the 128 bytes of the header, then the control words. */
        uint64_t control = round_up(128 + 64 + 128 * rings, PAGE);

        if (c->kind == ASHM_CHAN_PUBSUB)
                control += c->peers * PAGE;
        *ret_ring = c->count * round_up(ring, PAGE);
        *ret_control = c->count * control;
}

static void ck(const char *what, int r) {
        if (r < 0)
                bench_die(what, r);
}

/* Create the channels, open every end, measure, close all. */
static void measure(const struct mem_case *c, struct usage *ret) {
        ashm_region *r[2];
        ashm_chan *ends[2][1 + SUBS];
        unsigned n_ends = 1 + c->peers;
        struct usage before;

        memfd_usage(&before);
        for (unsigned i = 0; i < c->count; i++) {
                bool q = c->kind == ASHM_CHAN_QUEUE;

                ck("chan create", ashm_chan_create("bench-mem", c->kind, c->msg_max, c->depth, c->peers, 0, &r[i]));
                ck("chan open", ashm_chan_open(r[i], q ? ASHM_CHAN_CONSUMER : ASHM_CHAN_PUBLISHER, 0, &ends[i][0]));
                for (unsigned k = 1; k < n_ends; k++)
                        ck("chan open", ashm_chan_open(r[i], q ? ASHM_CHAN_PRODUCER : ASHM_CHAN_SUBSCRIBER, 0,
                                                       &ends[i][k]));
        }
        memfd_usage(ret);
        ret->bytes -= before.bytes;
        ret->resident -= before.resident;
        ret->memfds -= before.memfds;
        for (unsigned i = 0; i < c->count; i++) {
                for (unsigned k = 0; k < n_ends; k++)
                        ashm_chan_close(ends[i][k]);
                ashm_region_close(r[i]);
        }
}

bool chan_memory(bool have_iox) {
        static const struct mem_case cases[] = {
                { "setup (queue 4096 B x 64)", ASHM_CHAN_QUEUE, 4096, 64, 1, 1 },
                { "rtt (2 queues 8 B x 8)", ASHM_CHAN_QUEUE, MSG, 8, 1, 2 },
                { "tput-64k (2 queues 64 KiB x 8)", ASHM_CHAN_QUEUE, BIG, RING, 1, 2 },
                { "fanout (pub/sub 8 B x 64, 4 subs)", ASHM_CHAN_PUBSUB, MSG, FANOUT_DEPTH, SUBS, 1 },
        };
        struct usage u[ELEMENTS(cases)];
        bool ok = true;

        printf("\n== memory: shared memory held by a workload's channels, every end open (bytes) ==\n");
        printf("%-34s %6s %12s %10s %12s %9s %12s\n", "channels", "memfds", "region", "resident", "ring pages",
               "control", "limit");
        for (size_t i = 0; i < ELEMENTS(cases); i++) {
                uint64_t ring, control;

                measure(&cases[i], &u[i]);
                allowed(&cases[i], &ring, &control);
                printf("%-34s %6u %12" PRIu64 " %10" PRIu64 " %12" PRIu64 " %9" PRIu64 " %12" PRIu64 "\n",
                       cases[i].name, u[i].memfds, u[i].bytes, u[i].resident, ring, control, ring + control);
                printf("RESULT bench=memory peer=ashm channels=\"%s\" memfds=%u region_bytes=%" PRIu64
                       " resident_bytes=%" PRIu64 " ring_bytes=%" PRIu64 " control_bytes=%" PRIu64 "\n",
                       cases[i].name, u[i].memfds, u[i].bytes, u[i].resident, ring, control);
        }
        for (size_t i = 0; i < ELEMENTS(cases); i++) {
                uint64_t ring, control;
                bool pass;

                allowed(&cases[i], &ring, &control);
                pass = u[i].memfds == cases[i].count && u[i].bytes <= ring + control;
                printf("target memory %s: region bytes <= ring pages + control pages (%" PRIu64 " + %" PRIu64
                       "), one memfd per channel: %" PRIu64 " in %u memfds %s\n",
                       cases[i].name, ring, control, u[i].bytes, u[i].memfds, pass ? "PASS" : "FAIL");
                ok &= pass;
        }
#ifdef HAVE_ICEORYX
        if (have_iox) {
                uint64_t bytes, resident;
                unsigned files;

                iox_shm_usage(&bytes, &resident, &files);
                printf("iceoryx RouDi (mempools 1000 x 128 B + 64 x 66560 B): %u files in its private /dev/shm, "
                       "%" PRIu64 " bytes reserved, %" PRIu64 " resident\n",
                       files, bytes, resident);
                printf("RESULT bench=memory peer=iceoryx-roudi files=%u reserved_bytes=%" PRIu64
                       " resident_bytes=%" PRIu64 "\n",
                       files, bytes, resident);
                printf("memory: ashm's setup channel reserves %.4fx what this RouDi does (%.4fx resident)\n",
                       (double) u[0].bytes / (double) bytes,
                       resident ? (double) u[0].resident / (double) resident : 0.0);
        }
#endif
        return ok;
}
