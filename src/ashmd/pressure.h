/* SPDX-License-Identifier: MIT */
#pragma once

/* Memory pressure and cgroup memory limits for ashmd's reclaimer.
 *
 * Two independent parts. pressure_open() finds one pollable pressure
 * source, in this order: systemd's $MEMORY_PRESSURE_WATCH protocol, the
 * PSI file memory.pressure of our own cgroup (v2), the system-wide
 * /proc/pressure/memory. When none works the handle still opens, with no
 * fd and a source string that says why, and the daemon relies on its
 * unpinned cap alone. cgroup_memory_state() reads the memory limit and
 * usage that bind this process (v1 or v2) so the daemon can purge before
 * the limit is reached. docs/pressure.md has the user's view.
 *
 * Only src/basic is used here. Nothing prints; reasons are returned as
 * text for the daemon to log. */

#include <stdbool.h>
#include <stdint.h>

/* The kernel's bounds for a PSI trigger (kernel/sched/psi.c). */
#define PRESSURE_WINDOW_MAX_USEC 10000000ULL
/* Without CAP_SYS_RESOURCE the window must be a multiple of this. */
#define PRESSURE_WINDOW_UNPRIV_USEC 2000000ULL
#define PRESSURE_DEFAULT_THRESHOLD_USEC 150000ULL
#define PRESSURE_DEFAULT_WINDOW_USEC 2000000ULL

/* Ignore $MEMORY_PRESSURE_WATCH/$MEMORY_PRESSURE_WRITE; only cfg->watch
 * and cfg->write count (tests, and a daemon told to ignore systemd). */
#define PRESSURE_NO_ENV (1u << 0)
/* Ask for "full" stalls (every task stalled) rather than "some". */
#define PRESSURE_FULL (1u << 1)

struct pressure_config {
        uint64_t threshold_usec; /* stall time per window; 0: 150 ms */
        uint64_t window_usec;    /* 0: 2 s; at most 10 s */
        const char *root;        /* prefix for /proc and /sys/fs/cgroup; NULL: "/" */
        const char *watch;       /* if set, replaces $MEMORY_PRESSURE_WATCH */
        const char *write;       /* base64 payload used with .watch */
        unsigned flags;          /* PRESSURE_*; unknown bits: -EINVAL */
};

struct pressure;

/* Open the first pressure source that works. Sources that fail are
 * skipped and the reason is kept (pressure_notes()). Returns 0 with a
 * handle even when no source works (pressure_fd() then fails); -EINVAL for
 * a bad config (threshold or window out of the kernel's bounds, unknown
 * flags); -ENOMEM. */
int pressure_open(const struct pressure_config *cfg, struct pressure **ret);

/* The fd to poll, borrowed: valid until pressure_close(). -EHOSTDOWN if
 * monitoring was turned off ($MEMORY_PRESSURE_WATCH=/dev/null or empty),
 * -EOPNOTSUPP if no source works. */
int pressure_fd(const struct pressure *p);

/* EPOLLPRI for a PSI file, EPOLLIN for a FIFO or a socket (same values as
 * POLLPRI/POLLIN); 0 without a source. */
uint32_t pressure_events(const struct pressure *p);

/* Call when the fd is ready, with the revents that epoll or poll reported.
 * The events are needed because the kernel clears a PSI event while it
 * answers poll: once epoll has seen POLLPRI, polling again shows nothing.
 * Drains FIFO and socket data. Returns 1 for pressure, 0 for nothing, and
 * -ENODEV when the source is gone (cgroup removed, peer hung up: close and
 * reopen), or another -errno. */
int pressure_handle(struct pressure *p, uint32_t revents);

/* What is watched, for `ashm status` and logs:
 *   "psi:/sys/fs/cgroup/app.slice/memory.pressure (some 150000 2000000)"
 *   "systemd:/run/x/memory-pressure (fifo)"
 *   "none: pressure monitoring disabled by $MEMORY_PRESSURE_WATCH=/dev/null"
 *   "none: pressure monitoring unavailable: <reasons>"
 * Valid until pressure_close(). */
const char *pressure_source(const struct pressure *p);

/* Why earlier sources were skipped, "; "-separated; "" if none were. */
const char *pressure_notes(const struct pressure *p);

void pressure_close(struct pressure *p);

/* One line of a PSI file. Averages in hundredths of a percent (0..10000). */
struct psi_line {
        uint32_t avg10, avg60, avg300;
        uint64_t total_usec;
};

struct psi_stats {
        struct psi_line some;
        struct psi_line full; /* zero when !has_full */
        bool has_full;
};

/* Parse a PSI file ("some avg10=0.00 avg60=0.00 avg300=0.00 total=0", then
 * optionally the same for "full"). -EBADMSG for anything else, -errno if
 * the file cannot be read. */
int pressure_read_psi(const char *path, struct psi_stats *ret);

struct cgroup_memory {
        int version;        /* 1 or 2 */
        uint64_t limit;     /* bytes at the binding level; UINT64_MAX: no limit */
        uint64_t usage;     /* bytes charged at that level (own cgroup if no limit) */
        uint64_t headroom;  /* limit - usage, 0 when over; UINT64_MAX: no limit */
        uint64_t own_usage; /* bytes charged to our own cgroup; UINT64_MAX unknown */
        /* Counters of the binding level (v2 memory.events; v1: failcnt as
         * max, oom_control's oom_kill); 0 where the kernel has none. */
        uint64_t events_high, events_max, events_oom, events_oom_kill;
        char source[4096]; /* limit file that binds, else our cgroup dir */
};

/* The memory limit that binds this process: of our cgroup and every
 * ancestor with a limit (v2: memory.max and memory.high; v1:
 * memory.limit_in_bytes), the one with the least headroom. root is the
 * prefix for /proc and /sys/fs/cgroup (NULL: "/"). -ENOENT when no memory
 * cgroup is found, -EBADMSG for a file that does not parse. */
int cgroup_memory_state(const char *root, struct cgroup_memory *ret);
