/* SPDX-License-Identifier: MIT */
#pragma once

/* Whose memory it is, and pressure where it happens (docs/pressure.md).
 *
 * A memfd's pages are charged to the memory cgroup of the process that
 * touched them, not to the daemon's. So for every client the daemon finds
 * the client's memory cgroup (through a pidfd, so a recycled pid cannot
 * lie), and for that cgroup the limited level that binds it (itself or an
 * ancestor: v1 memory.limit_in_bytes, v2 memory.max and memory.high).
 * Each such cgroup is watched, event-driven:
 *   v1: a threshold on memory.usage_in_bytes through cgroup.event_control,
 *       armed `headroom` below the limit;
 *   v2: memory.events (high, max) polled for its change notification;
 *   PSI: a trigger on the client's v2 memory.pressure (and, on pure v2,
 *       the limited level's);
 * plus, for pressure with no limit at all, /proc/pressure/memory and
 * MemAvailable. An event purges at once the unpinned pages of the regions
 * charged to that cgroup, least recently unpinned first, in one batch
 * sized to bring usage back under limit - 2 * headroom, where headroom
 * covers the cgroup's recent allocation rate times the daemon's reaction
 * time. Every purge is logged with its reason (rate-limited).
 *
 * All fds live in one epoll fd of this module, which the daemon polls. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "registry.h"

struct cgroups;

struct cgroups_config {
        uint64_t margin;        /* least headroom kept below a limit, bytes */
        const char *root;       /* prefix for /proc and /sys/fs/cgroup; NULL: "/" */
        bool no_psi;            /* no PSI triggers (the daemon's --no-pressure) */
};

int cgroups_new(const struct cgroups_config *cfg, struct registry *reg, struct cgroups **ret);
void cgroups_free(struct cgroups *cgs);

/* The fd for the daemon's epoll (EPOLLIN), borrowed. */
int cgroups_fd(const struct cgroups *cgs);

/* Find (or start watching) the memory cgroup of the peer of the
 * connected socket sock (borrowed), whose SO_PEERCRED pid and uid are
 * pid and uid. Returns the cgroup's id (> 0), 0 when it cannot be known
 * or watched (the reason is logged, rate-limited), never an error: a
 * client works without it. At most 256 cgroups are watched, at most 16
 * of them started by one user other than root. */
uint32_t cgroups_client(struct cgroups *cgs, int sock, pid_t pid, uid_t uid);

/* Record that region r is charged to cgroup id (0: nothing). */
void cgroups_charge(struct cgroups *cgs, struct region *r, uint32_t id);

/* The epoll fd is ready: handle every event, purging as needed. */
void cgroups_dispatch(struct cgroups *cgs);

/* From the daemon's timer: sample usage (allocation rates), re-arm
 * thresholds, catch what an event missed, check MemAvailable. */
void cgroups_tick(struct cgroups *cgs);

/* Statistics for logs and benches. */
struct cgroups_stats {
        unsigned watched;         /* cgroups watched */
        uint64_t events;          /* events that led to a look */
        uint64_t purges;          /* purges started by this module */
        uint64_t purged_bytes;
        uint64_t last_latency_usec; /* event seen to first punch done, last purge */
};
void cgroups_stats(const struct cgroups *cgs, struct cgroups_stats *ret);

/* Leave the cgroup we were started in (an autostarted daemon sits in its
 * first client's): a sibling "ashmd" cgroup of our v1 memory cgroup and
 * of our v2 cgroup, made if need be. Returns 0 when moved, -errno with
 * *ret_why set to a static reason otherwise. */
int cgroups_leave_starter(const char **ret_why);
