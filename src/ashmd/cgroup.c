/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cgroup.h"
#include "cgroup-proc.h"
#include "fd-util.h"
#include "log.h"
#include "macro.h"
#include "pressure-read.h"
#include "server.h"

/* More distinct cgroups than this share no watch: their clients get id 0
 * (the daemon's own limit and the system-wide sources still cover them). */
#define WATCHES_MAX 256
/* Of which a user other than root may have started at most this many: a
 * user with a delegated cgroup subtree must not use up the watches and
 * leave the others' cgroups unheard. */
#define WATCHES_PER_UID_MAX 16
/* A rate seen decays with this time constant once allocation stops. */
#define RATE_DECAY_USEC 2000000
/* Until a purge was timed: the reaction time assumed (wake-up + purge;
 * 10-40 ms were measured on a loaded 2-core machine). */
#define REACTION_DEFAULT_USEC 40000
/* How often a watched cgroup's limits are read again. */
#define LIMIT_RECHECK_USEC 4000000
/* One purge line per cgroup per this long; the rest are counted. */
#define CGROUP_LOG_INTERVAL_USEC 1000000

enum src_kind { SRC_THRESHOLD, SRC_EVENTS, SRC_PSI, SRC_PSI_LIMIT, SRC_GLOBAL_PSI, SRC_MAX };

struct watch;

struct source {
        struct cgroups *cgs;
        struct watch *w; /* NULL for the system-wide source */
        enum src_kind kind;
        int fd;
};

struct watch {
        uint32_t id;
        uid_t uid;                /* of the client that made us watch it */
        int version;              /* of the memory controller's hierarchy */
        char mem_dir[PATH_MAX];   /* the client's memory cgroup */
        char lim_dir[PATH_MAX];   /* the level whose limit binds it; "" none */
        const char *lim_file;     /* which file set that limit */
        uint64_t limit;           /* UINT64_MAX: none */
        char v2_dir[PATH_MAX];    /* the client's v2 cgroup (PSI); "" none */
        char base[PATH_MAX];      /* the memory hierarchy's mount */
        char cgpath[PATH_MAX];    /* the client's cgroup in it */
        uint64_t limit_checked;   /* when find_limit() last ran */
        uint64_t armed;           /* v1 threshold armed at, bytes; 0 none */
        uint64_t usage, sampled_usec, rate; /* last sample; bytes per second */
        uint64_t events_high, events_max;
        uint64_t last_log_usec, unlogged;
        struct source src[SRC_MAX];
        struct watch *next;
};

struct cgroups {
        struct cgroups_config cfg;
        struct registry *reg;
        int epoll_fd;
        struct watch *watches;
        unsigned n_watches;
        uint32_t next_id;
        struct source global;
        uint64_t reaction_usec;   /* wake-up lag + purge time, averaged */
        uint64_t lag_usec, purge_usec;
        uint64_t mem_total;
        bool warned_limit;
        struct cgroups_stats stats;
};

/* ---- small file helpers ---- */

static const char *pre(const struct cgroups *cgs) {
        return cgs->cfg.root && strcmp(cgs->cfg.root, "/") != 0 ? cgs->cfg.root : "";
}


static uint64_t usage_of(const struct watch *w, const char *dir) {
        uint64_t u;

        if (cgroup_read_u64(dir, w->version == 1 ? "memory.usage_in_bytes" : "memory.current", &u) < 0)
                return UINT64_MAX;
        return u;
}
/* ---- limits ---- */

/* The level from dir up that binds: the least headroom among limited
 * levels. v2: memory.high counts (past it the kernel throttles). */
static void find_limit(struct watch *w, const char *base, const char *cgpath) {
        char cur[PATH_MAX], dir[PATH_MAX + 64];
        uint64_t best = UINT64_MAX;

        snprintf(cur, sizeof(cur), "%s", cgpath);
        w->limit = UINT64_MAX;
        w->lim_dir[0] = '\0';
        do {
                uint64_t max = UINT64_MAX, high = UINT64_MAX, limit, usage;

                if (snprintf(dir, sizeof(dir), "%s%s", base, strcmp(cur, "/") == 0 ? "" : cur) >= PATH_MAX)
                        return;
                if (w->version == 1)
                        (void) cgroup_read_u64(dir, "memory.limit_in_bytes", &max);
                else {
                        (void) cgroup_read_u64(dir, "memory.max", &max);
                        (void) cgroup_read_u64(dir, "memory.high", &high);
                }
                limit = MIN(max, high);
                if (limit == UINT64_MAX)
                        continue;
                usage = usage_of(w, dir);
                if (usage == UINT64_MAX)
                        continue;
                if ((limit > usage ? limit - usage : 0) < best) {
                        best = limit > usage ? limit - usage : 0;
                        w->limit = limit;
                        strcpy(w->lim_dir, dir);
                        w->lim_file = high < max ? "memory.high" : w->version == 2 ? "memory.max"
                                                                                    : "memory.limit_in_bytes";
                }
        } while (pressure_cg_parent(cur));
}

/* ---- sources ---- */

static int source_add(struct cgroups *cgs, struct watch *w, enum src_kind kind, int fd, uint32_t events) {
        struct source *s = w ? &w->src[kind] : &cgs->global;
        struct epoll_event ev = { .events = events };

        *s = (struct source) { cgs, w, kind, fd };
        ev.data.ptr = s;
        if (epoll_ctl(cgs->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                int err = -errno;

                s->fd = safe_close(fd);
                return err;
        }
        return 0;
}

static void source_drop(struct cgroups *cgs, struct source *s) {
        if (s->fd < 0)
                return;
        epoll_ctl(cgs->epoll_fd, EPOLL_CTL_DEL, s->fd, NULL);
        s->fd = safe_close(s->fd);
}

/* A PSI trigger: a short window when we may (CAP_SYS_RESOURCE), else the
 * 2 s window the kernel allows everyone (checked only every 2 s). */
static int psi_open(const char *path) {
        static const char *const triggers[] = { "some 50000 500000", "some 100000 2000000" };
        int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);

        if (fd < 0)
                return -errno;
        for (size_t i = 0; i < ELEMENTSOF(triggers); i++)
                if (write(fd, triggers[i], strlen(triggers[i]) + 1) > 0)
                        return fd;
        safe_close(fd);
        return -EINVAL;
}

static int psi_watch(struct cgroups *cgs, struct watch *w, enum src_kind kind, const char *dir) {
        char path[PATH_MAX + 32];
        int fd;

        if (cgs->cfg.no_psi || !dir[0])
                return 0;
        snprintf(path, sizeof(path), "%s/memory.pressure", dir);
        fd = psi_open(path);
        return fd < 0 ? fd : source_add(cgs, w, kind, fd, EPOLLPRI);
}

/* v1: an eventfd that fires when usage crosses `at`, either way. The
 * kernel drops the threshold when the eventfd is closed. */
static int threshold_arm(struct cgroups *cgs, struct watch *w, uint64_t at) {
        char path[PATH_MAX + 32], line[64];
        _cleanup_close_ int ufd = -1, cfd = -1;
        int efd, r;

        source_drop(cgs, &w->src[SRC_THRESHOLD]);
        w->armed = 0;
        snprintf(path, sizeof(path), "%s/memory.usage_in_bytes", w->lim_dir);
        ufd = open(path, O_RDONLY | O_CLOEXEC);
        snprintf(path, sizeof(path), "%s/cgroup.event_control", w->lim_dir);
        cfd = open(path, O_WRONLY | O_CLOEXEC);
        if (ufd < 0 || cfd < 0)
                return -errno;
        efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (efd < 0)
                return -errno;
        snprintf(line, sizeof(line), "%d %d %" PRIu64, efd, ufd, at);
        if (write(cfd, line, strlen(line)) < 0) {
                r = -errno;
                safe_close(efd);
                return r;
        }
        r = source_add(cgs, w, SRC_THRESHOLD, efd, EPOLLIN);
        if (r >= 0)
                w->armed = at;
        return r;
}

/* v2 memory.events: "high N" and "max N" lines. Read through the fd that
 * epoll watches when there is one: kernfs counts an event as seen only
 * once it was read through the same open file, or poll reports it on. */
static int read_events(const struct watch *w, uint64_t *ret_high, uint64_t *ret_max) {
        char path[PATH_MAX + 32], buf[512], *p;
        int fd = w->src[SRC_EVENTS].fd;
        ssize_t n;

        if (fd >= 0) {
                do
                        n = pread(fd, buf, sizeof(buf) - 1, 0);
                while (n < 0 && errno == EINTR);
                if (n < 0)
                        return -errno;
                buf[n] = '\0';
        } else {
                int r;

                snprintf(path, sizeof(path), "%s/memory.events", w->lim_dir);
                r = cgroup_read_text(path, buf, sizeof(buf));
                if (r < 0)
                        return r;
        }
        if (strncmp(buf, "high ", 5) == 0)
                *ret_high = strtoull(buf + 5, NULL, 10);
        else if ((p = strstr(buf, "\nhigh ")))
                *ret_high = strtoull(p + 6, NULL, 10);
        if ((p = strstr(buf, "\nmax ")))
                *ret_max = strtoull(p + 5, NULL, 10);
        return 0;
}

static int events_watch(struct cgroups *cgs, struct watch *w) {
        char path[PATH_MAX + 32];
        int fd;

        snprintf(path, sizeof(path), "%s/memory.events", w->lim_dir);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        return source_add(cgs, w, SRC_EVENTS, fd, EPOLLPRI);
}

/* ---- sizing ---- */

static void sample(struct watch *w, uint64_t usage, uint64_t now) {
        if (w->sampled_usec && now > w->sampled_usec) {
                uint64_t dt = now - w->sampled_usec;
                uint64_t decayed = (uint64_t) ((double) w->rate * RATE_DECAY_USEC / (RATE_DECAY_USEC + dt));
                uint64_t seen = usage > w->usage && dt >= 1000 ? (uint64_t) ((double) (usage - w->usage) * 1e6 / dt) : 0;

                w->rate = MAX(decayed, seen);
        }
        w->usage = usage;
        w->sampled_usec = now;
}

/* Headroom below the limit: what the cgroup allocates while we react
 * (twice over, for the wake-up that comes late), at least the margin,
 * at most a third of the limit. */
static uint64_t headroom(const struct cgroups *cgs, const struct watch *w) {
        uint64_t h = MAX(cgs->cfg.margin, (uint64_t) ((double) w->rate * 2 * cgs->reaction_usec / 1e6));

        return MIN(h, w->limit / 3);
}

static bool same_limit(const struct region *r, void *userdata) {
        const struct watch *w = userdata;
        const struct cgroups *cgs = w->src[0].cgs;

        for (size_t i = 0; i < REGION_CHARGED_MAX; i++) {
                if (!r->charged[i])
                        continue;
                for (const struct watch *o = cgs->watches; o; o = o->next)
                        if (o->id == r->charged[i] &&
                            (o == w || (w->lim_dir[0] && strcmp(o->lim_dir, w->lim_dir) == 0)))
                                return true;
        }
        return false;
}

static void purge_for(struct cgroups *cgs, struct watch *w, uint64_t want, const char *why, uint64_t woke) {
        uint64_t got, now, before = w->usage;

        if (want == 0)
                return;
        got = registry_purge_filtered(cgs->reg, same_limit, w, want);
        now = now_usec();
        /* The next sample's rate counts from what is left. */
        w->usage -= MIN(got, w->usage);
        if (got > 0) {
                /* The reaction time feeds the headroom: slow purges ask for more. */
                cgs->purge_usec = (cgs->purge_usec * 3 + (now - woke)) / 4;
                cgs->reaction_usec = MAX(REACTION_DEFAULT_USEC, cgs->lag_usec + cgs->purge_usec + 5000);
                cgs->stats.purges++;
                cgs->stats.purged_bytes += got;
                cgs->stats.last_latency_usec = now - woke;
        }
        if (now - w->last_log_usec < CGROUP_LOG_INTERVAL_USEC && w->last_log_usec) {
                w->unlogged++;
                return;
        }
        log_info("cgroup %s: %s: usage %" PRIu64 " MiB of %s %" PRIu64 " MiB, allocating %" PRIu64
                 " MiB/s: purged %" PRIu64 " of %" PRIu64 " MiB asked in %" PRIu64 " us (%" PRIu64
                 " more purges since the last line)",
                 w->mem_dir, why, before >> 20, w->lim_file ? w->lim_file : "no limit",
                 w->limit == UINT64_MAX ? 0 : w->limit >> 20, w->rate >> 20, got >> 20, want >> 20, now - woke,
                 w->unlogged);
        w->last_log_usec = now;
        w->unlogged = 0;
}

/* Look at w's binding level; purge back to limit - 2 * headroom when
 * usage is within headroom of the limit (or forced, by an event that
 * says the limit was hit); re-arm the threshold. */
static void evaluate(struct cgroups *cgs, struct watch *w, const char *why, bool forced, uint64_t woke) {
        uint64_t usage, h, floor;

        if (w->limit == UINT64_MAX)
                return;
        usage = usage_of(w, w->lim_dir);
        if (usage == UINT64_MAX)
                return;
        sample(w, usage, woke);
        /* How late we woke: what was allocated past the threshold, at
         * the rate seen. A loaded machine wakes us late; the headroom
         * must cover that too. */
        if (w->armed && usage > w->armed && w->rate > 0 && !forced) {
                uint64_t lag = MIN((uint64_t) ((double) (usage - w->armed) * 1e6 / w->rate), 500000);

                cgs->lag_usec = (cgs->lag_usec * 3 + lag) / 4;
                cgs->reaction_usec = MAX(REACTION_DEFAULT_USEC, cgs->lag_usec + cgs->purge_usec + 5000);
        }
        h = headroom(cgs, w);
        floor = w->limit > 2 * h ? w->limit - 2 * h : 0;
        /* At or past the armed threshold purge, whatever the headroom
         * says now: it was the headroom when armed, and a decayed rate
         * must not leave usage above a threshold that fires no more. */
        if (usage + h >= w->limit || forced || (w->armed && usage >= w->armed))
                purge_for(cgs, w, usage > floor ? usage - floor : h, why, woke);
        /* A threshold off by more than an eighth of the headroom: move it. */
        if (w->version == 1) {
                uint64_t at = w->limit - h, off = at > w->armed ? at - w->armed : w->armed - at;

                if (!w->armed || off > h / 8) {
                        int r = threshold_arm(cgs, w, at);

                        if (r < 0 && !cgs->warned_limit) {
                                cgs->warned_limit = true;
                                log_warning("cgroup %s: cannot arm a threshold in %s: %s; checking every tick only",
                                            w->mem_dir, w->lim_dir, strerror(-r));
                        }
                }
        }
}

/* ---- watches ---- */

static struct watch *watch_new(struct cgroups *cgs, const struct proc_cgroup *pc) {
        struct watch *w = calloc(1, sizeof(*w));
        char base[PATH_MAX], v2base[PATH_MAX];
        const char *cg;

        if (!w)
                return NULL;
        for (size_t i = 0; i < SRC_MAX; i++)
                w->src[i] = (struct source) { cgs, w, (enum src_kind) i, -1 };
        w->src[0].cgs = cgs;
        /* v2 lives at /sys/fs/cgroup, or at .../unified on a hybrid system. */
        snprintf(v2base, sizeof(v2base), "%s/sys/fs/cgroup/unified", pre(cgs));
        if (!pressure_is_dir(v2base))
                snprintf(v2base, sizeof(v2base), "%s/sys/fs/cgroup", pre(cgs));
        w->version = pc->v1_memory[0] ? 1 : 2;
        cg = w->version == 1 ? pc->v1_memory : pc->v2;
        if (w->version == 1) {
                snprintf(base, sizeof(base), "%s/sys/fs/cgroup/memory", pre(cgs));
                if (!pressure_is_dir(base))
                        snprintf(base, sizeof(base), "%s/sys/fs/cgroup/%s", pre(cgs), pc->v1_mount);
        }
        else
                snprintf(base, sizeof(base), "%s", v2base);
        if (snprintf(w->mem_dir, sizeof(w->mem_dir), "%s%s", base, strcmp(cg, "/") == 0 ? "" : cg) >=
            (int) sizeof(w->mem_dir))
                goto fail;
        /* The root's own PSI file is the system's: the global source has it. */
        if (pc->v2[0] && strcmp(pc->v2, "/") != 0 &&
            snprintf(w->v2_dir, sizeof(w->v2_dir), "%s%s", v2base, pc->v2) >= (int) sizeof(w->v2_dir))
                goto fail;
        snprintf(w->base, sizeof(w->base), "%s", base);
        snprintf(w->cgpath, sizeof(w->cgpath), "%s", cg);
        return w;
fail:
        free(w);
        return NULL;
}

static void watch_start(struct cgroups *cgs, struct watch *w) {
        int r;

        w->id = ++cgs->next_id;
        find_limit(w, w->base, w->cgpath);
        w->limit_checked = now_usec();
        r = psi_watch(cgs, w, SRC_PSI, w->v2_dir);
        if (r < 0)
                log_debug("cgroup %s: no PSI trigger on %s: %s", w->mem_dir, w->v2_dir, strerror(-r));
        if (w->version == 2 && w->lim_dir[0] && strcmp(w->lim_dir, w->v2_dir) != 0)
                (void) psi_watch(cgs, w, SRC_PSI_LIMIT, w->lim_dir);
        if (w->version == 2 && w->lim_dir[0]) {
                r = events_watch(cgs, w);
                if (r < 0)
                        log_debug("cgroup %s: cannot watch memory.events: %s", w->mem_dir, strerror(-r));
                (void) read_events(w, &w->events_high, &w->events_max);
        }
        log_info("cgroup %s: client memory charged here; %s%s%s%s", w->mem_dir,
                 w->lim_dir[0] ? "limited by " : "no memory limit", w->lim_dir[0] ? w->lim_dir : "",
                 w->lim_dir[0] ? "/" : "", w->lim_dir[0] ? w->lim_file : "");
        evaluate(cgs, w, "first look", false, now_usec());
}

static unsigned watches_of(const struct cgroups *cgs, uid_t uid) {
        unsigned n = 0;

        for (const struct watch *w = cgs->watches; w; w = w->next)
                n += w->uid == uid;
        return n;
}

uint32_t cgroups_client(struct cgroups *cgs, int sock, pid_t pid, uid_t uid) {
        struct proc_cgroup pc;
        struct watch *w;
        char dir[PATH_MAX];
        int r;

        if (!cgs)
                return 0;
        r = cgroup_peer(pre(cgs), sock, pid, &pc);
        if (r < 0) {
                log_debug("client pid %d: memory cgroup unknown: %s", (int) pid, strerror(-r));
                return 0;
        }
        /* Match on the path as watch_new() would build it. */
        w = watch_new(cgs, &pc);
        if (!w)
                return 0;
        snprintf(dir, sizeof(dir), "%s", w->mem_dir);
        for (struct watch *o = cgs->watches; o; o = o->next)
                if (strcmp(o->mem_dir, dir) == 0) {
                        free(w);
                        return o->id;
                }
        if (cgs->n_watches >= WATCHES_MAX || (uid != 0 && watches_of(cgs, uid) >= WATCHES_PER_UID_MAX)) {
                log_warning_ratelimited("client pid %d uid %u: cgroup %s not watched: %s", (int) pid, (unsigned) uid,
                                        dir, cgs->n_watches >= WATCHES_MAX ? "too many cgroups watched"
                                                                           : "its user's cgroups are watched already");
                free(w);
                return 0;
        }
        w->uid = uid;
        w->next = cgs->watches;
        cgs->watches = w;
        cgs->n_watches++;
        watch_start(cgs, w);
        return w->id;
}

void cgroups_charge(struct cgroups *cgs, struct region *r, uint32_t id) {
        if (!cgs || !id)
                return;
        for (size_t i = 0; i < REGION_CHARGED_MAX; i++) {
                if (r->charged[i] == id)
                        return;
                if (!r->charged[i]) {
                        r->charged[i] = id;
                        return;
                }
        }
        /* Full: the newest charge replaces the oldest. */
        memmove(r->charged, r->charged + 1, (REGION_CHARGED_MAX - 1) * sizeof(r->charged[0]));
        r->charged[REGION_CHARGED_MAX - 1] = id;
}

/* ---- events ---- */

static void on_events(struct cgroups *cgs, struct watch *w, uint64_t woke) {
        uint64_t high = 0, max = 0;
        const char *why;

        /* A removed cgroup's file polls as ready for ever: let it go. */
        if (read_events(w, &high, &max) < 0) {
                source_drop(cgs, &w->src[SRC_EVENTS]);
                return;
        }
        why = max > w->events_max ? "memory.events max" : "memory.events high";
        if (high > w->events_high || max > w->events_max)
                evaluate(cgs, w, why, true, woke);
        w->events_high = high;
        w->events_max = max;
}

static void on_global(struct cgroups *cgs, const char *why, uint64_t want, uint64_t woke) {
        uint64_t got = registry_purge(cgs->reg, (uid_t) -1, want), now = now_usec();

        if (got == 0)
                return;
        cgs->stats.purges++;
        cgs->stats.purged_bytes += got;
        cgs->stats.last_latency_usec = now - woke;
        log_info("system: %s: purged %" PRIu64 " MiB in %" PRIu64 " us", why, got >> 20, now - woke);
}

static void handle(struct cgroups *cgs, struct source *s, uint32_t revents) {
        uint64_t woke = now_usec(), v;
        struct watch *w = s->w;

        cgs->stats.events++;
        if ((revents & EPOLLERR) && (s->kind == SRC_PSI || s->kind == SRC_PSI_LIMIT || s->kind == SRC_GLOBAL_PSI)) {
                /* The cgroup went away (or PSI was turned off). */
                source_drop(cgs, s);
                return;
        }
        switch (s->kind) {
        case SRC_THRESHOLD:
                (void) !read(s->fd, &v, sizeof(v));
                evaluate(cgs, w, "usage crossed the threshold", false, woke);
                break;
        case SRC_EVENTS:
                on_events(cgs, w, woke);
                break;
        case SRC_PSI:
        case SRC_PSI_LIMIT:
                if (w->limit != UINT64_MAX) {
                        evaluate(cgs, w, "PSI stall in the cgroup", false, woke);
                        break;
                }
                /* Stalls with no limit: the machine is short. A margin's
                 * worth of this cgroup's unpinned pages; more if it lasts. */
                purge_for(cgs, w, cgs->cfg.margin, "PSI stall in the cgroup", woke);
                break;
        case SRC_GLOBAL_PSI:
                on_global(cgs, "system-wide PSI stall", cgs->cfg.margin, woke);
                break;
        case SRC_MAX:
                break;
        }
}

void cgroups_dispatch(struct cgroups *cgs) {
        struct epoll_event evs[16];
        int n = epoll_wait(cgs->epoll_fd, evs, (int) ELEMENTSOF(evs), 0);

        for (int i = 0; i < n; i++)
                handle(cgs, evs[i].data.ptr, evs[i].events);
}

static uint64_t mem_available(const struct cgroups *cgs) {
        char path[PATH_MAX], buf[4096], *p;

        snprintf(path, sizeof(path), "%s/proc/meminfo", pre(cgs));
        if (cgroup_read_text(path, buf, sizeof(buf)) < 0 || !(p = strstr(buf, "MemAvailable:")))
                return UINT64_MAX;
        return strtoull(p + 13, NULL, 10) * 1024;
}

/* Limits change (systemctl set-property, a container manager): follow. */
static void recheck_limit(struct cgroups *cgs, struct watch *w, uint64_t now) {
        char old[PATH_MAX];
        uint64_t old_limit = w->limit;

        snprintf(old, sizeof(old), "%s", w->lim_dir);
        find_limit(w, w->base, w->cgpath);
        w->limit_checked = now;
        if (strcmp(old, w->lim_dir) == 0 && old_limit == w->limit)
                return;
        source_drop(cgs, &w->src[SRC_THRESHOLD]);
        source_drop(cgs, &w->src[SRC_EVENTS]);
        w->armed = 0;
        if (w->version == 2 && w->lim_dir[0] && events_watch(cgs, w) >= 0)
                (void) read_events(w, &w->events_high, &w->events_max);
        log_info("cgroup %s: now %s%s%s%s", w->mem_dir, w->lim_dir[0] ? "limited by " : "without a memory limit",
                 w->lim_dir, w->lim_dir[0] ? "/" : "", w->lim_dir[0] ? w->lim_file : "");
}

static void watch_free(struct cgroups *cgs, struct watch *w) {
        for (size_t i = 0; i < SRC_MAX; i++)
                source_drop(cgs, &w->src[i]);
        free(w);
}

void cgroups_tick(struct cgroups *cgs) {
        uint64_t now = now_usec(), avail;

        for (struct watch **wp = &cgs->watches, *w; (w = *wp);) {
                /* A cgroup removed (a scope that ended): its regions'
                 * charge ids now match nothing, and the slot is free. */
                if (now - w->limit_checked >= LIMIT_RECHECK_USEC && !pressure_is_dir(w->mem_dir)) {
                        log_debug("cgroup %s: gone; no longer watched", w->mem_dir);
                        *wp = w->next;
                        cgs->n_watches--;
                        watch_free(cgs, w);
                        continue;
                }
                wp = &w->next;
                if (now - w->limit_checked >= LIMIT_RECHECK_USEC)
                        recheck_limit(cgs, w, now);
                evaluate(cgs, w, "checked on the timer", false, now);
        }
        /* No limit anywhere, and yet the machine runs short. */
        avail = mem_available(cgs);
        if (avail != UINT64_MAX && avail < cgs->cfg.margin * 2 && cgs->mem_total > cgs->cfg.margin * 8)
                on_global(cgs, "MemAvailable low", cgs->cfg.margin * 2 - avail, now);
}

/* ---- life ---- */

int cgroups_new(const struct cgroups_config *cfg, struct registry *reg, struct cgroups **ret) {
        struct cgroups *cgs = calloc(1, sizeof(*cgs));
        char path[PATH_MAX];

        if (!cgs)
                return -ENOMEM;
        cgs->cfg = *cfg;
        cgs->reg = reg;
        cgs->reaction_usec = REACTION_DEFAULT_USEC;
        cgs->global.fd = -1;
        cgs->mem_total = (uint64_t) sysconf(_SC_PHYS_PAGES) * (uint64_t) sysconf(_SC_PAGESIZE);
        cgs->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (cgs->epoll_fd < 0) {
                free(cgs);
                return -errno;
        }
        snprintf(path, sizeof(path), "%s/proc/pressure/memory", pre(cgs));
        if (!cfg->no_psi) {
                int fd = psi_open(path);

                if (fd >= 0)
                        (void) source_add(cgs, NULL, SRC_GLOBAL_PSI, fd, EPOLLPRI);
        }
        *ret = cgs;
        return 0;
}

int cgroups_fd(const struct cgroups *cgs) {
        return cgs->epoll_fd;
}

void cgroups_stats(const struct cgroups *cgs, struct cgroups_stats *ret) {
        *ret = cgs->stats;
        ret->watched = cgs->n_watches;
}

void cgroups_free(struct cgroups *cgs) {
        if (!cgs)
                return;
        while (cgs->watches) {
                struct watch *w = cgs->watches;

                cgs->watches = w->next;
                watch_free(cgs, w);
        }
        safe_close(cgs->global.fd);
        safe_close(cgs->epoll_fd);
        free(cgs);
}
