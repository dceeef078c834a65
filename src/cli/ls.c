/* SPDX-License-Identifier: MIT */
/* ashm ls: every memfd region on the machine, found the only way the
 * kernel offers, through /proc: the fds each process holds, and the
 * mappings it keeps after closing them. One row per process and region
 * (or per region, --regions), with the pin state of the regions ashmd
 * tracks, if one runs. The scan is shared with ashm top (ls.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "ashm.h"
#include "cli.h"
#include "fd-util.h"
#include "ls.h"
#include "macro.h"
#include "memfd-util.h"
#include "protocol.h"

#define MEMFD_PREFIX "/memfd:"
#define DELETED_SUFFIX " (deleted)"

#define MEMFD_PREFIX "/memfd:"
#define DELETED_SUFFIX " (deleted)"

void ls_scan_done(struct ls_scan *s) {
        for (size_t i = 0; i < s->n; i++) {
                free(s->rows[i].comm);
                free(s->rows[i].name);
                free(s->rows[i].pids);
        }
        free(s->rows);
        free(s->denied);
        free(s->pins);
        *s = (struct ls_scan) {};
}

static bool is_denied(int r) {
        return r == -EACCES || r == -EPERM;
}

static bool is_memfd_path(const char *p) {
        return strncmp(p, MEMFD_PREFIX, strlen(MEMFD_PREFIX)) == 0;
}

/* "/memfd:NAME (deleted)" -> NAME. Memfds never have a path, so the
 * kernel always appends the suffix: strip it exactly once, since a name
 * may itself end in " (deleted)". */
static char *name_from_link(const char *link) {
        size_t len = strlen(link), suffix = strlen(DELETED_SUFFIX);

        link += strlen(MEMFD_PREFIX);
        len -= strlen(MEMFD_PREFIX);
        if (len >= suffix && strcmp(link + len - suffix, DELETED_SUFFIX) == 0)
                len -= suffix;
        return strndup(link, len);
}

/* The rows of this process are the last ones, from index first. */
static bool have_inode(const struct ls_scan *s, size_t first, uint64_t inode) {
        for (size_t i = first; i < s->n; i++)
                if (s->rows[i].inode == inode)
                        return true;
        return false;
}

static int add_row(struct ls_scan *s, const struct ls_row *r) {
        struct ls_row *row;

        if (s->n == s->cap) {
                size_t cap = s->cap ? s->cap * 2 : 64;
                struct ls_row *rows = reallocarray(s->rows, cap, sizeof(*rows));

                if (!rows)
                        return -ENOMEM;
                s->rows = rows;
                s->cap = cap;
        }
        row = &s->rows[s->n];
        *row = *r;
        row->comm = strdup(r->comm);
        if (!row->comm)
                return -ENOMEM;
        s->n++;
        return 0;
}

static int read_comm(int pid_fd, char *buf, size_t len) {
        _cleanup_close_ int fd = openat(pid_fd, "comm", O_RDONLY | O_CLOEXEC);
        ssize_t n;

        if (fd < 0)
                return negative_errno();
        n = read(fd, buf, len - 1);
        if (n < 0)
                return negative_errno();
        buf[n] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        return 0;
}

/* Whether the memfd behind /proc/PID/fd/ENTRY holds a channel: its
 * header says so (a process of ours, or root, may open it). */
static bool is_channel(int dir_fd, const char *entry) {
        ashm_region *region;
        int fd = openat(dir_fd, entry, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK), r;

        if (fd < 0 || ashm_region_adopt(fd, 0, &region) < 0)
                return false;
        r = ashm_chan_is_channel(region);
        ashm_region_close(region);
        return r > 0;
}

/* A region is a channel in every row if it is in one. */
static void channels_mark(struct ls_scan *s) {
        for (size_t i = 0; i < s->n; i++)
                for (size_t j = 0; j < s->n && !s->rows[i].channel; j++)
                        if (s->rows[j].channel && s->rows[j].dev == s->rows[i].dev &&
                            s->rows[j].inode == s->rows[i].inode)
                                s->rows[i].channel = true;
}

/* One fd of the process: a row if it is a memfd we have not seen yet.
 * Entries read in increasing fd order, so a region held twice shows its
 * lowest fd. Returns -errno only when the process as a whole is lost. */
static int scan_fd(struct ls_scan *s, size_t first, struct ls_row *r, int dir_fd, const char *entry) {
        char link[PATH_MAX];
        struct stat st;
        ssize_t n;
        int ret;

        n = readlinkat(dir_fd, entry, link, sizeof(link) - 1);
        if (n < 0)
                return errno == ENOENT ? 0 : negative_errno(); /* ENOENT: closed meanwhile */
        link[n] = '\0';
        if (!is_memfd_path(link))
                return 0;
        if (fstatat(dir_fd, entry, &st, 0) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        if (!memfd_stat_is_memfd(&st) || have_inode(s, first, st.st_ino))
                return 0;
        r->hold = LS_HOLD_FD;
        r->fd = atoi(entry);
        r->dev = st.st_dev;
        r->inode = st.st_ino;
        r->region_uid = st.st_uid;
        r->size = st.st_size;
        /* For shmem, st_blocks counts the pages the region holds in RAM
         * or swap: what it costs, not how large it claims to be. */
        r->resident = (int64_t) st.st_blocks * 512;
        r->name = name_from_link(link);
        if (!r->name)
                return -ENOMEM;
        r->channel = is_channel(dir_fd, entry);
        ret = add_row(s, r);
        if (ret < 0)
                free(r->name);
        return ret;
}

static int scan_fds(struct ls_scan *s, size_t first, struct ls_row *r, int pid_fd) {
        int fd = openat(pid_fd, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct dirent *de;
        DIR *d;
        int ret = 0;

        if (fd < 0)
                return negative_errno();
        d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return negative_errno();
        }
        while (ret >= 0 && (errno = 0, de = readdir(d)))
                if (de->d_name[0] != '.')
                        ret = scan_fd(s, first, r, dirfd(d), de->d_name);
        if (ret >= 0 && errno != 0)
                ret = negative_errno();
        closedir(d);
        return ret;
}

/* The kernel writes a newline in a path in /proc/PID/maps as "\012",
 * and nothing else escaped: undo that. */
static void unescape_maps_path(char *p) {
        char *q = p;

        for (; *p; p++)
                if (strncmp(p, "\\012", 4) == 0) {
                        *q++ = '\n';
                        p += 3;
                } else
                        *q++ = *p;
        *q = '\0';
}

/* The region's name, size and residency through /proc/PID/map_files,
 * which only root may follow; otherwise the name as maps shows it and
 * no size. */
static int map_details(struct ls_scan *s, struct ls_row *r, int pid_fd, char *path, unsigned maj,
                       unsigned min) {
        char entry[64], link[PATH_MAX];
        struct stat st = { .st_mode = S_IFREG, .st_dev = makedev(maj, min) };
        ssize_t n;

        snprintf(entry, sizeof(entry), "map_files/%lx-%lx", r->map_start, r->map_end);
        r->size = r->resident = -1;
        r->region_uid = (uid_t) -1;
        if (fstatat(pid_fd, entry, &st, 0) == 0) {
                r->region_uid = st.st_uid;
                r->size = st.st_size;
                r->resident = (int64_t) st.st_blocks * 512;
        } else if (is_denied(negative_errno()))
                s->sizes_denied = true;
        /* Without map_files, st holds only the device from maps: all that
         * memfd_stat_is_memfd() looks at besides the file type. */
        if (!memfd_stat_is_memfd(&st))
                return 0;
        n = readlinkat(pid_fd, entry, link, sizeof(link) - 1);
        if (n > 0)
                link[n] = '\0';
        if (n > 0 && is_memfd_path(link))
                path = link; /* the exact bytes */
        else
                unescape_maps_path(path);
        r->name = name_from_link(path);
        return r->name ? 1 : -ENOMEM;
}

/* One line of /proc/PID/maps: a row if it maps a memfd that the process
 * holds no fd for and that no earlier line mapped. */
static int scan_map(struct ls_scan *s, size_t first, struct ls_row *r, int pid_fd, char *line) {
        unsigned long long inode;
        unsigned maj, min;
        int n = 0, ret;

        line[strcspn(line, "\n")] = '\0';
        if (sscanf(line, "%lx-%lx %*s %*x %x:%x %llu %n", &r->map_start, &r->map_end, &maj, &min, &inode,
                   &n) < 5 ||
            n == 0)
                return 0;
        if (!is_memfd_path(line + n) || have_inode(s, first, inode))
                return 0;
        r->hold = LS_HOLD_MAP;
        r->fd = -1;
        r->dev = makedev(maj, min);
        r->inode = inode;
        ret = map_details(s, r, pid_fd, line + n, maj, min);
        if (ret <= 0)
                return ret;
        ret = add_row(s, r);
        if (ret < 0)
                free(r->name);
        return ret;
}

static int scan_maps(struct ls_scan *s, size_t first, struct ls_row *r, int pid_fd) {
        int fd = openat(pid_fd, "maps", O_RDONLY | O_CLOEXEC);
        _cleanup_free_ char *line = NULL;
        size_t len = 0;
        FILE *f;
        int ret = 0;

        if (fd < 0)
                return negative_errno();
        f = fdopen(fd, "r");
        if (!f) {
                safe_close(fd);
                return negative_errno();
        }
        while (ret >= 0 && getline(&line, &len, f) > 0)
                ret = scan_map(s, first, r, pid_fd, line);
        if (ret >= 0 && ferror(f))
                ret = -EIO;
        fclose(f);
        return ret;
}

static int add_denied(struct ls_scan *s, pid_t pid, const char *comm) {
        struct ls_denied *d = reallocarray(s->denied, s->n_denied + 1, sizeof(*d));

        if (!d)
                return -ENOMEM;
        s->denied = d;
        d[s->n_denied].pid = pid;
        snprintf(d[s->n_denied].comm, sizeof(d->comm), "%s", comm);
        s->n_denied++;
        return 0;
}

/* Every failure but ENOMEM means the process is gone or hidden from us:
 * it is skipped, and remembered when permissions were the reason. */
static int scan_pid(struct ls_scan *s, pid_t pid) {
        char path[64], comm[64] = "";
        struct ls_row r = { .pid = pid, .comm = comm };
        size_t first = s->n;
        _cleanup_close_ int pid_fd = -1;
        struct stat st;
        int ret;

        /* Everything below is read relative to this fd, so a pid reused
         * by a new process halfway through cannot mix two processes. */
        snprintf(path, sizeof(path), "/proc/%d", (int) pid);
        pid_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (pid_fd < 0)
                return 0;
        /* The owner of /proc/PID is the process's effective uid, as ps
         * shows it (or root, for a process that is not dumpable). */
        r.uid = fstat(pid_fd, &st) == 0 ? st.st_uid : (uid_t) -1;
        ret = read_comm(pid_fd, comm, sizeof(comm));
        if (ret >= 0)
                ret = scan_fds(s, first, &r, pid_fd);
        if (ret >= 0)
                ret = scan_maps(s, first, &r, pid_fd);
        if (ret == -ENOMEM)
                return ret;
        if (is_denied(ret))
                return add_denied(s, pid, comm);
        return 0;
}

static int scan_proc(struct ls_scan *s) {
        DIR *d = opendir("/proc");
        struct dirent *de;
        int ret = 0;

        if (!d)
                return negative_errno();
        while (ret >= 0 && (de = readdir(d))) {
                pid_t pid = atoi(de->d_name);

                /* ashm itself holds no region worth showing. */
                if (pid > 0 && pid != getpid())
                        ret = scan_pid(s, pid);
        }
        closedir(d);
        return ret;
}


int64_t ls_pin_bytes(uint64_t v) {
        return v > INT64_MAX ? INT64_MAX : (int64_t) v;
}

/* Ask ashmd what it tracks, without starting one to ask: with no daemon
 * the pin columns show "-". Only running out of memory is fatal. */
static int pins_fetch(struct ls_scan *s) {
        cli_no_autostart();
        s->pins_error = cli_daemon_list(&s->pins, &s->n_pins);
        if (s->pins_error < 0) {
                s->pins = NULL;
                s->n_pins = 0;
                return s->pins_error == -ENOMEM ? -ENOMEM : 0;
        }
        return 0;
}

/* A region is the same in every process: one device and inode. */
static int pins_match(struct ls_scan *s, bool **ret_seen) {
        bool *seen = calloc(s->n_pins ? s->n_pins : 1, sizeof(*seen));

        if (!seen)
                return -ENOMEM;
        for (size_t i = 0; i < s->n; i++) {
                struct ls_row *r = &s->rows[i];

                r->pins = cli_list_find(s->pins, s->n_pins, r->dev, r->inode);
                if (r->pins)
                        seen[r->pins - s->pins] = true;
        }
        *ret_seen = seen;
        return 0;
}

/* Regions ashmd tracks that no process we could read holds: their
 * holders are hidden from us (another user's processes that got the fd,
 * or a daemon we may not inspect). ashmd holds every region it tracks,
 * so they are shown as its own, with the size it counts (whole pages)
 * and no residency. */
static int add_ashmd_rows(struct ls_scan *s, const bool *seen) {
        struct ls_row r = { .comm = "ashmd", .hold = LS_HOLD_ASHMD, .fd = -1, .resident = -1 };
        struct proto_status_rep st;
        char path[64];
        struct stat pst;
        size_t unseen = 0;
        int ret;

        for (size_t i = 0; i < s->n_pins; i++)
                unseen += !seen[i];
        /* No answer: the daemon has gone since, and its regions with it. */
        if (unseen == 0 || cli_daemon_status(&st) < 0)
                return 0;
        r.pid = (pid_t) st.pid;
        snprintf(path, sizeof(path), "/proc/%d", (int) r.pid);
        r.uid = stat(path, &pst) == 0 ? pst.st_uid : (uid_t) -1;
        for (size_t i = 0; i < s->n_pins; i++) {
                if (seen[i])
                        continue;
                r.dev = s->pins[i].dev;
                r.inode = s->pins[i].ino;
                r.region_uid = s->pins[i].uid;
                r.size = ls_pin_bytes(s->pins[i].size);
                r.pins = &s->pins[i];
                r.name = strdup(s->pins[i].name);
                if (!r.name)
                        return -ENOMEM;
                ret = add_row(s, &r);
                if (ret < 0) {
                        free(r.name);
                        return ret;
                }
        }
        return 0;
}

static int region_cmp(const struct ls_row *x, const struct ls_row *y) {
        if (x->dev != y->dev)
                return x->dev < y->dev ? -1 : 1;
        return x->inode < y->inode ? -1 : x->inode > y->inode;
}

static int row_index_cmp(const void *a, const void *b, void *userdata) {
        const struct ls_row *rows = userdata;
        size_t i = *(const size_t *) a, j = *(const size_t *) b;
        int c = region_cmp(&rows[i], &rows[j]);

        if (c != 0)
                return c;
        if (rows[i].pid != rows[j].pid)
                return rows[i].pid < rows[j].pid ? -1 : 1;
        return i < j ? -1 : i > j;
}

/* The indices of the rows, grouped by region (dev, inode), then pid. */
static size_t *by_region(const struct ls_scan *s) {
        size_t *idx = reallocarray(NULL, s->n ? s->n : 1, sizeof(*idx));

        if (!idx)
                return NULL;
        for (size_t i = 0; i < s->n; i++)
                idx[i] = i;
        if (s->n > 1)
                qsort_r(idx, s->n, sizeof(*idx), row_index_cmp, s->rows);
        return idx;
}

/* smem's PSS: each holder is charged resident / holders, so that the
 * shares of a region add up to what it costs, once. A process counts
 * once per region, which it holds as one row. */
static int count_holders(struct ls_scan *s) {
        _cleanup_free_ size_t *idx = by_region(s);

        if (!idx)
                return -ENOMEM;
        for (size_t i = 0, j; i < s->n; i = j) {
                for (j = i; j < s->n && region_cmp(&s->rows[idx[i]], &s->rows[idx[j]]) == 0; j++)
                        ;
                for (size_t k = i; k < j; k++) {
                        struct ls_row *r = &s->rows[idx[k]];

                        r->holders = (unsigned) (j - i);
                        r->pss = r->resident < 0 ? -1 : r->resident / (int64_t) (j - i);
                }
        }
        return 0;
}

int ls_scan(struct ls_scan *s) {
        _cleanup_free_ bool *seen = NULL;
        int r;

        *s = (struct ls_scan) {};
        /* The daemon first: a region made after we asked then shows "-",
         * where asking after the scan would list it as held by ashmd
         * alone, a holder the scan missed. */
        r = pins_fetch(s);
        if (r >= 0)
                r = scan_proc(s);
        if (r >= 0)
                r = pins_match(s, &seen);
        if (r >= 0)
                r = add_ashmd_rows(s, seen);
        if (r >= 0)
                r = count_holders(s);
        if (r >= 0)
                channels_mark(s);
        if (r < 0)
                ls_scan_done(s);
        return r;
}

/* One region row from the holder rows idx[0..n) of s, all of it. */
static int region_row(const struct ls_scan *s, const size_t *idx, size_t n, struct ls_row *ret) {
        const struct ls_row *first = &s->rows[idx[0]];
        struct ls_row r = { .hold = LS_HOLD_REGION, .fd = -1, .uid = (uid_t) -1, .region_uid = (uid_t) -1,
                            .dev = first->dev, .inode = first->inode, .size = -1, .resident = -1,
                            .holders = (unsigned) n, .pins = first->pins, .channel = first->channel };

        for (size_t k = 0; k < n; k++) {
                const struct ls_row *h = &s->rows[idx[k]];

                /* Rows of one region differ only in what each could read. */
                r.size = MAX(r.size, h->size);
                r.resident = MAX(r.resident, h->resident);
                if (r.region_uid == (uid_t) -1)
                        r.region_uid = h->region_uid;
        }
        if (r.region_uid == (uid_t) -1 && r.pins)
                r.region_uid = r.pins->uid;
        r.pss = r.resident < 0 ? -1 : r.resident / (int64_t) n;
        r.comm = strdup("");
        r.name = strdup(first->name);
        r.pids = reallocarray(NULL, n, sizeof(*r.pids));
        if (!r.comm || !r.name || !r.pids) {
                free(r.comm);
                free(r.name);
                free(r.pids);
                return -ENOMEM;
        }
        for (size_t k = 0; k < n; k++)
                r.pids[k] = s->rows[idx[k]].pid;
        *ret = r;
        return 0;
}

int ls_regions(const struct ls_scan *s, const bool *keep, struct ls_scan *ret) {
        _cleanup_free_ size_t *idx = by_region(s);
        struct ls_scan out = { .sizes_denied = s->sizes_denied, .pins_error = s->pins_error };

        if (!idx)
                return -ENOMEM;
        out.rows = reallocarray(NULL, s->n ? s->n : 1, sizeof(*out.rows));
        if (!out.rows)
                return -ENOMEM;
        for (size_t i = 0, j; i < s->n; i = j) {
                bool any = !keep;

                for (j = i; j < s->n && region_cmp(&s->rows[idx[i]], &s->rows[idx[j]]) == 0; j++)
                        any = any || keep[idx[j]];
                if (!any)
                        continue;
                if (region_row(s, idx + i, j - i, &out.rows[out.n]) < 0) {
                        ls_scan_done(&out);
                        return -ENOMEM;
                }
                out.n++;
        }
        out.cap = s->n;
        *ret = out;
        return 0;
}

void ls_user_name(uid_t uid, char *buf, size_t len) {
        static struct {
                uid_t uid;
                char name[33];
        } cache[32];
        static size_t n_cache, next;
        struct passwd *pw;

        if (uid == (uid_t) -1) {
                snprintf(buf, len, "-");
                return;
        }
        for (size_t i = 0; i < n_cache; i++)
                if (cache[i].uid == uid) {
                        snprintf(buf, len, "%s", cache[i].name);
                        return;
                }
        pw = getpwuid(uid);
        /* A name longer than a column deserves is shown as the number. */
        if (pw && strlen(pw->pw_name) < sizeof(cache[0].name))
                snprintf(buf, len, "%s", pw->pw_name);
        else
                snprintf(buf, len, "%u", (unsigned) uid);
        snprintf(cache[next].name, sizeof(cache[next].name), "%s", buf);
        cache[next].uid = uid;
        next = (next + 1) % ELEMENTSOF(cache);
        n_cache = MAX(n_cache, next == 0 ? ELEMENTSOF(cache) : next);
}

/* ---- the table: one list of columns for both views ------------------- */

enum { V_HOLDER = 1, V_REGION = 2 };
enum kind { K_TEXT, K_NUMBER, K_SIZE };

/* A cell: a name escaped (4 bytes per byte at most) fits. */
#define CELL_MAX 1100

struct column {
        const char *name;
        unsigned views;
        enum kind kind;
        /* K_NUMBER and K_SIZE: the value, -1 for "-"; K_TEXT: the text. */
        int64_t (*num)(const struct ls_row *r);
        int (*text)(const struct ls_row *r, char *buf, size_t len);
};

static int64_t c_pid(const struct ls_row *r) { return r->pid; }
static int64_t c_inode(const struct ls_row *r) { return r->inode > INT64_MAX ? INT64_MAX : (int64_t) r->inode; }
static int64_t c_holders(const struct ls_row *r) { return r->holders; }
static int64_t c_size(const struct ls_row *r) { return r->size; }
static int64_t c_resident(const struct ls_row *r) { return r->resident; }
static int64_t c_pss(const struct ls_row *r) { return r->pss; }
static int64_t c_pinned(const struct ls_row *r) { return r->pins ? ls_pin_bytes(r->pins->pinned) : -1; }
static int64_t c_unpinned(const struct ls_row *r) { return r->pins ? ls_pin_bytes(r->pins->unpinned) : -1; }
static int64_t c_purged(const struct ls_row *r) { return r->pins ? ls_pin_bytes(r->pins->purged) : -1; }

static int escaped(const char *s, char *buf, size_t len) {
        _cleanup_free_ char *e = cescape(s);

        if (!e)
                return -ENOMEM;
        snprintf(buf, len, "%s", e);
        return 0;
}

static int c_user(const struct ls_row *r, char *buf, size_t len) {
        char name[64];

        /* A process's owner, or a region's in the region view. */
        ls_user_name(r->hold == LS_HOLD_REGION ? r->region_uid : r->uid, name, sizeof(name));
        return escaped(name, buf, len);
}

static int c_comm(const struct ls_row *r, char *buf, size_t len) {
        return escaped(r->comm, buf, len);
}

static int c_name(const struct ls_row *r, char *buf, size_t len) {
        int ret = escaped(r->name, buf, len);

        if (ret >= 0 && r->channel)
                strncat(buf, " (channel)", len - strlen(buf) - 1);
        return ret;
}

static int c_hold(const struct ls_row *r, char *buf, size_t len) {
        if (r->hold == LS_HOLD_FD)
                snprintf(buf, len, "fd %d", r->fd);
        else if (r->hold == LS_HOLD_MAP)
                snprintf(buf, len, "map %lx-%lx", r->map_start, r->map_end);
        else
                snprintf(buf, len, "ashmd");
        return 0;
}

/* "1234,5678": the holders, as many as fit, then ",+N". */
static int c_pids(const struct ls_row *r, char *buf, size_t len) {
        size_t n = 0;

        buf[0] = '\0';
        for (unsigned i = 0; i < r->holders; i++) {
                char one[16];
                int w = snprintf(one, sizeof(one), "%s%d", i ? "," : "", (int) r->pids[i]);

                if (n + (size_t) w + 16 >= len) {
                        snprintf(buf + n, len - n, ",+%u", r->holders - i);
                        break;
                }
                memcpy(buf + n, one, (size_t) w + 1);
                n += (size_t) w;
        }
        return 0;
}

static const struct column columns[] = {
        { "PID", V_HOLDER, K_NUMBER, c_pid, NULL },
        { "USER", V_HOLDER | V_REGION, K_TEXT, NULL, c_user },
        { "COMM", V_HOLDER, K_TEXT, NULL, c_comm },
        { "HOLD", V_HOLDER, K_TEXT, NULL, c_hold },
        { "INODE", V_HOLDER | V_REGION, K_NUMBER, c_inode, NULL },
        { "HOLDERS", V_HOLDER | V_REGION, K_NUMBER, c_holders, NULL },
        { "PIDS", V_REGION, K_TEXT, NULL, c_pids },
        { "SIZE", V_HOLDER | V_REGION, K_SIZE, c_size, NULL },
        { "RESIDENT", V_HOLDER | V_REGION, K_SIZE, c_resident, NULL },
        { "PSS", V_HOLDER | V_REGION, K_SIZE, c_pss, NULL },
        { "PINNED", V_HOLDER | V_REGION, K_SIZE, c_pinned, NULL },
        { "UNPINNED", V_HOLDER | V_REGION, K_SIZE, c_unpinned, NULL },
        { "PURGED", V_HOLDER | V_REGION, K_SIZE, c_purged, NULL },
        { "NAME", V_HOLDER | V_REGION, K_TEXT, NULL, c_name },
};

static const char default_holder_columns[] = "PID,USER,COMM,HOLD,INODE,SIZE,RESIDENT,PSS,PINNED,UNPINNED,PURGED,NAME";
static const char default_region_columns[] = "INODE,USER,HOLDERS,PIDS,SIZE,RESIDENT,PSS,PINNED,UNPINNED,PURGED,NAME";

#define MAX_COLUMNS 32

static const struct column *column_find(const char *name, size_t len, unsigned view) {
        for (size_t i = 0; i < ELEMENTSOF(columns); i++)
                if (strlen(columns[i].name) == len && strncasecmp(columns[i].name, name, len) == 0 &&
                    (columns[i].views & view))
                        return &columns[i];
        return NULL;
}

struct ls_options {
        unsigned view;
        bool json, bytes, headings, total;
        const struct column *cols[MAX_COLUMNS];
        size_t n_cols;
        const struct column *sort;
        bool sort_desc;
        pid_t *pids;
        size_t n_pids;
        uid_t *uids;
        size_t n_uids;
        const char *glob;
};

static void cell_of(const struct ls_options *o, const struct column *c, int64_t v, char *buf, size_t len) {
        if (v < 0)
                snprintf(buf, len, "-");
        else if (c->kind == K_SIZE && !o->bytes)
                format_size(v, buf, len);
        else
                snprintf(buf, len, "%" PRIi64, v);
}

static int cell(const struct ls_options *o, const struct column *c, const struct ls_row *r, char *buf,
                size_t len) {
        if (c->text)
                return c->text(r, buf, len);
        cell_of(o, c, c->num(r), buf, len);
        return 0;
}

/* The totals line: sizes once per region, so that a region held by
 * ten processes counts once; PSS adds up over the rows, which is the
 * same sum for the regions whose holders we all saw. */
struct totals {
        int64_t v[ELEMENTSOF(columns)];
        bool known[ELEMENTSOF(columns)];
};

static int add_totals(const struct ls_scan *s, struct totals *t) {
        _cleanup_free_ size_t *idx = by_region(s);

        if (!idx)
                return -ENOMEM;
        *t = (struct totals) {};
        for (size_t i = 0; i < s->n; i++) {
                const struct ls_row *r = &s->rows[idx[i]];
                bool again = i > 0 && region_cmp(r, &s->rows[idx[i - 1]]) == 0;

                for (size_t c = 0; c < ELEMENTSOF(columns); c++) {
                        int64_t v;

                        if (columns[c].kind != K_SIZE || (again && columns[c].num != c_pss))
                                continue;
                        /* A region's share of one holder adds up to nothing. */
                        if (r->hold == LS_HOLD_REGION && columns[c].num == c_pss)
                                continue;
                        v = columns[c].num(r);
                        if (v < 0)
                                continue;
                        t->v[c] = v > INT64_MAX - t->v[c] ? INT64_MAX : t->v[c] + v;
                        t->known[c] = true;
                }
        }
        return 0;
}

static void total_cell(const struct ls_options *o, const struct totals *t, size_t k, char *buf, size_t len) {
        size_t c = (size_t) (o->cols[k] - columns);

        if (t->known[c])
                cell_of(o, o->cols[k], t->v[c], buf, len);
        else
                snprintf(buf, len, k == 0 ? "TOTAL" : "");
}

static void print_line(FILE *f, const struct ls_options *o, char cells[][CELL_MAX], const size_t *widths) {
        for (size_t k = 0; k < o->n_cols; k++) {
                int pad = (int) (widths[k] - text_width(cells[k]));

                /* The last column goes unpadded: no trailing blanks.
                 * Numbers align right, text left, as in ps(1). */
                if (k + 1 == o->n_cols)
                        fprintf(f, "%s\n", cells[k]);
                else if (o->cols[k]->kind != K_TEXT)
                        fprintf(f, "%*s%s ", pad, "", cells[k]);
                else
                        fprintf(f, "%s%*s ", cells[k], pad, "");
        }
}

static int print_table(FILE *f, const struct ls_options *o, const struct ls_scan *s) {
        _cleanup_free_ char (*cells)[CELL_MAX] = calloc(o->n_cols, CELL_MAX);
        size_t widths[MAX_COLUMNS];
        struct totals t;

        if (!cells || (o->total && add_totals(s, &t) < 0))
                return -ENOMEM;
        for (size_t k = 0; k < o->n_cols; k++)
                widths[k] = o->headings ? strlen(o->cols[k]->name) : 0;
        for (size_t i = 0; i < s->n; i++)
                for (size_t k = 0; k < o->n_cols; k++) {
                        if (cell(o, o->cols[k], &s->rows[i], cells[k], CELL_MAX) < 0)
                                return -ENOMEM;
                        widths[k] = MAX(widths[k], text_width(cells[k]));
                }
        if (o->total)
                for (size_t k = 0; k < o->n_cols; k++) {
                        total_cell(o, &t, k, cells[k], CELL_MAX);
                        widths[k] = MAX(widths[k], text_width(cells[k]));
                }
        if (o->headings) {
                for (size_t k = 0; k < o->n_cols; k++)
                        snprintf(cells[k], CELL_MAX, "%s", o->cols[k]->name);
                print_line(f, o, cells, widths);
        }
        for (size_t i = 0; i < s->n && !ferror(f); i++) {
                for (size_t k = 0; k < o->n_cols; k++)
                        if (cell(o, o->cols[k], &s->rows[i], cells[k], CELL_MAX) < 0)
                                return -ENOMEM;
                print_line(f, o, cells, widths);
        }
        if (o->total) {
                for (size_t k = 0; k < o->n_cols; k++)
                        total_cell(o, &t, k, cells[k], CELL_MAX);
                print_line(f, o, cells, widths);
        }
        return 0;
}

static void json_put_size(const char *key, int64_t v) {
        if (v < 0)
                printf(",\"%s\":null", key);
        else
                printf(",\"%s\":%" PRIi64, key, v);
}

static void json_put_uid(uid_t uid) {
        char name[64];

        if (uid == (uid_t) -1) {
                fputs(",\"uid\":null,\"user\":null", stdout);
                return;
        }
        ls_user_name(uid, name, sizeof(name));
        printf(",\"uid\":%u,\"user\":", (unsigned) uid);
        json_put_string(name, stdout);
}

static void json_put_sizes(const struct ls_row *r) {
        json_put_size("size", r->size);
        json_put_size("resident", r->resident);
        json_put_size("pss", r->pss);
        printf(",\"holders\":%u", r->holders);
        json_put_size("pinned", c_pinned(r));
        json_put_size("unpinned", c_unpinned(r));
        json_put_size("purged", c_purged(r));
        /* Only on channels: rows of plain regions keep the shape they
         * always had. */
        if (r->channel)
                fputs(",\"kind\":\"channel\"", stdout);
        fputs(",\"name\":", stdout);
        json_put_string(r->name, stdout);
        putchar('}');
}

static void json_put_row(const struct ls_row *r) {
        printf("{\"pid\":%d,\"comm\":", (int) r->pid);
        json_put_string(r->comm, stdout);
        json_put_uid(r->uid);
        if (r->hold == LS_HOLD_FD)
                printf(",\"fd\":%d,\"map\":null", r->fd);
        else if (r->hold == LS_HOLD_MAP)
                printf(",\"fd\":null,\"map\":\"%lx-%lx\"", r->map_start, r->map_end);
        else
                fputs(",\"fd\":null,\"map\":null", stdout);
        printf(",\"inode\":%" PRIu64, r->inode);
        json_put_sizes(r);
}

void ls_json_put_region(const struct ls_row *r) {
        printf("{\"inode\":%" PRIu64, r->inode);
        json_put_uid(r->region_uid);
        fputs(",\"pids\":[", stdout);
        for (unsigned i = 0; i < r->holders; i++)
                printf("%s%d", i ? "," : "", (int) r->pids[i]);
        putchar(']');
        json_put_sizes(r);
}

/* One object per line, so that grep still works on the output. */
static void print_json(const struct ls_scan *s) {
        putchar('[');
        for (size_t i = 0; i < s->n && !ferror(stdout); i++) {
                fputs(i == 0 ? "\n  " : ",\n  ", stdout);
                if (s->rows[i].hold == LS_HOLD_REGION)
                        ls_json_put_region(&s->rows[i]);
                else
                        json_put_row(&s->rows[i]);
        }
        puts(s->n ? "\n]" : "]");
}

/* Which processes could not be read, by name, as lsof would want. */
static void print_denied(const struct ls_scan *s) {
        enum { SHOWN = 8 };

        fprintf(stderr, "ashm: %zu process%s could not be read (permission denied):", s->n_denied,
                s->n_denied == 1 ? "" : "es");
        for (size_t i = 0; i < s->n_denied && i < SHOWN; i++) {
                _cleanup_free_ char *comm = cescape(s->denied[i].comm);

                fprintf(stderr, "%s %d", i ? "," : "", (int) s->denied[i].pid);
                if (comm && *comm)
                        fprintf(stderr, " (%s)", comm);
        }
        if (s->n_denied > SHOWN)
                fprintf(stderr, " and %zu more", s->n_denied - SHOWN);
        fputs(geteuid() == 0 ? "\n" : "; run as root to see every region\n", stderr);
}

static void print_hints(const struct ls_scan *s) {
        /* No daemon is no error: most memfds are not ashm's anyway. */
        if (s->pins_error < 0 && s->pins_error != -ECONNREFUSED)
                cli_daemon_error("read the pin state from ashmd (shown as \"-\")", s->pins_error);
        if (s->n_denied > 0)
                print_denied(s);
        if (s->sizes_denied && geteuid() != 0)
                fputs("ashm: the size of a region that is only mapped (\"-\") can be read by root only\n",
                      stderr);
}

/* ---- options, filters, order ----------------------------------------- */

static int parse_columns(struct ls_options *o, const char *list) {
        o->n_cols = 0;
        for (const char *p = list;;) {
                size_t len = strcspn(p, ",");
                const struct column *c = column_find(p, len, o->view);

                if (!c) {
                        fprintf(stderr, "ashm ls: unknown column '%.*s'%s; see 'ashm help ls'\n", (int) len, p,
                                o->view == V_REGION ? " with --regions" : "");
                        return -EINVAL;
                }
                if (o->n_cols == MAX_COLUMNS) {
                        fputs("ashm ls: too many columns\n", stderr);
                        return -EINVAL;
                }
                o->cols[o->n_cols++] = c;
                if (!p[len])
                        return 0;
                p += len + 1;
        }
}

static int parse_sort(struct ls_options *o, const char *arg) {
        /* ps(1): "-" sorts in decreasing order, "+" (or nothing) in
         * increasing order. */
        o->sort_desc = arg[0] == '-';
        if (arg[0] == '-' || arg[0] == '+')
                arg++;
        o->sort = column_find(arg, strlen(arg), o->view);
        if (!o->sort) {
                fprintf(stderr, "ashm ls: cannot sort by '%s': no such column%s; see 'ashm help ls'\n", arg,
                        o->view == V_REGION ? " with --regions" : "");
                return -EINVAL;
        }
        return 0;
}

static int add_pids(struct ls_options *o, const char *arg) {
        for (const char *p = arg;;) {
                char *end;
                long v;
                pid_t *a;

                errno = 0;
                v = strtol(p, &end, 10);
                if (errno || end == p || v <= 0 || v > INT_MAX || (*end && *end != ',')) {
                        fprintf(stderr, "ashm ls: invalid process ID in '%s'\n", arg);
                        return -EINVAL;
                }
                a = reallocarray(o->pids, o->n_pids + 1, sizeof(*a));
                if (!a)
                        return -ENOMEM;
                o->pids = a;
                o->pids[o->n_pids++] = (pid_t) v;
                if (!*end)
                        return 0;
                p = end + 1;
        }
}

static int add_user(struct ls_options *o, const char *arg) {
        struct passwd *pw = getpwnam(arg);
        uid_t *a, uid;
        char *end;

        if (pw)
                uid = pw->pw_uid;
        else {
                unsigned long v;

                errno = 0;
                v = strtoul(arg, &end, 10);
                if (errno || end == arg || *end || v >= (uid_t) -1 || arg[0] == '-') {
                        fprintf(stderr, "ashm ls: no user '%s'\n", arg);
                        return -EINVAL;
                }
                uid = (uid_t) v;
        }
        a = reallocarray(o->uids, o->n_uids + 1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        o->uids = a;
        o->uids[o->n_uids++] = uid;
        return 0;
}

static bool has_pid(const struct ls_options *o, pid_t pid) {
        for (size_t i = 0; i < o->n_pids; i++)
                if (o->pids[i] == pid)
                        return true;
        return false;
}

static bool has_uid(const struct ls_options *o, uid_t uid) {
        for (size_t i = 0; i < o->n_uids; i++)
                if (o->uids[i] == uid)
                        return true;
        return false;
}

/* The holder rows the filters keep. In the region view a region stays
 * when one of its holders passes --pid and --name; --user is then
 * matched with the region's owner, by the caller. */
static bool row_kept(const struct ls_options *o, const struct ls_row *r) {
        if (o->n_pids && !has_pid(o, r->pid))
                return false;
        if (o->view == V_HOLDER && o->n_uids && !has_uid(o, r->uid))
                return false;
        return !o->glob || fnmatch(o->glob, r->name, 0) == 0;
}

static int row_order(const void *a, const void *b, void *userdata) {
        const struct ls_options *o = userdata;
        const struct ls_row *x = a, *y = b;
        int c = 0;

        if (o->sort && o->sort->num) {
                int64_t u = o->sort->num(x), v = o->sort->num(y);

                c = u < v ? -1 : u > v;
        } else if (o->sort) {
                char p[CELL_MAX], q[CELL_MAX];

                /* Out of memory here sorts as equal: the order only. */
                if (o->sort->text(x, p, sizeof(p)) == 0 && o->sort->text(y, q, sizeof(q)) == 0)
                        c = strcmp(p, q);
        }
        if (c != 0)
                return o->sort_desc ? -c : c;
        if (x->pid != y->pid)
                return x->pid < y->pid ? -1 : 1;
        return region_cmp(x, y);
}

/* Keep the rows that pass, in s, and put them in order. */
static int select_rows(const struct ls_options *o, struct ls_scan *s) {
        _cleanup_free_ bool *keep = calloc(s->n ? s->n : 1, sizeof(*keep));
        size_t n = 0;

        if (!keep)
                return -ENOMEM;
        for (size_t i = 0; i < s->n; i++)
                keep[i] = row_kept(o, &s->rows[i]);
        if (o->view == V_REGION) {
                struct ls_scan regions;
                int r = ls_regions(s, keep, &regions);

                if (r < 0)
                        return r;
                regions.denied = TAKE_PTR(s->denied);
                regions.n_denied = s->n_denied;
                /* The region rows point into the daemon's list. */
                regions.pins = TAKE_PTR(s->pins);
                regions.n_pins = s->n_pins;
                ls_scan_done(s);
                *s = regions;
                for (size_t i = 0; i < s->n; i++)
                        keep[i] = !o->n_uids || has_uid(o, s->rows[i].region_uid);
        }
        for (size_t i = 0; i < s->n; i++) {
                if (keep[i])
                        s->rows[n++] = s->rows[i];
                else {
                        free(s->rows[i].comm);
                        free(s->rows[i].name);
                        free(s->rows[i].pids);
                }
        }
        s->n = n;
        if (s->n > 1) /* with no row, s->rows may be NULL: not for qsort() */
                qsort_r(s->rows, s->n, sizeof(*s->rows), row_order, (void *) o);
        return 0;
}

static int ls_args(int argc, char *argv[], struct ls_options *o) {
        static const struct option options[] = {
                { "json", no_argument, NULL, 'j' },
                { "regions", no_argument, NULL, 'r' },
                { "pid", required_argument, NULL, 'p' },
                { "user", required_argument, NULL, 'u' },
                { "name", required_argument, NULL, 'n' },
                { "sort", required_argument, NULL, 's' },
                { "bytes", no_argument, NULL, 'b' },
                { "output", required_argument, NULL, 'o' },
                { "no-headings", no_argument, NULL, 'H' },
                { "total", no_argument, NULL, 't' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *cols = NULL, *sort = NULL;
        int c, r;

        *o = (struct ls_options) { .view = V_HOLDER, .headings = true };
        while ((c = getopt_long(argc, argv, ":hbo:tp:u:", options, NULL)) >= 0) {
                r = 0;
                switch (c) {
                case 'j': o->json = true; break;
                case 'r': o->view = V_REGION; break;
                case 'p': r = add_pids(o, optarg); break;
                case 'u': r = add_user(o, optarg); break;
                case 'n': o->glob = optarg; break;
                case 's': sort = optarg; break;
                case 'b': o->bytes = true; break;
                case 'o': cols = optarg; break;
                case 'H': o->headings = false; break;
                case 't': o->total = true; break;
                case 'h':
                        cli_verb_help("ls", stdout);
                        return EXIT_SUCCESS;
                default:
                        return cli_bad_option("ls", c, argv);
                }
                if (r == -ENOMEM) {
                        fputs("ashm: out of memory\n", stderr);
                        return EXIT_FAILURE;
                }
                if (r < 0)
                        return EXIT_USAGE;
        }
        if (optind < argc) {
                fprintf(stderr, "ashm ls: unexpected argument '%s'; see 'ashm help ls'\n", argv[optind]);
                return EXIT_USAGE;
        }
        /* The view first: it decides which columns exist. */
        if (parse_columns(o, cols ? cols : o->view == V_REGION ? default_region_columns : default_holder_columns) < 0 ||
            (sort && parse_sort(o, sort) < 0))
                return EXIT_USAGE;
        return -1; /* go on */
}

int verb_ls(int argc, char *argv[]) {
        _cleanup_(ls_scan_done) struct ls_scan s = {};
        struct ls_options o;
        int r;

        r = ls_args(argc, argv, &o);
        if (r >= 0) {
                free(o.pids);
                free(o.uids);
                return r;
        }
        r = ls_scan(&s);
        if (r >= 0)
                r = select_rows(&o, &s);
        if (r >= 0 && !o.json)
                r = print_table(stdout, &o, &s);
        else if (r >= 0)
                print_json(&s);
        free(o.pids);
        free(o.uids);
        if (r == -ENOMEM) {
                fputs("ashm: out of memory\n", stderr);
                return EXIT_FAILURE;
        }
        if (r < 0) {
                fprintf(stderr, "ashm: cannot read /proc: %s%s\n", strerror(-r),
                        r == -ENOENT ? " (is procfs mounted?)" : "");
                return EXIT_FAILURE;
        }
        /* Flush now: the table comes before the hints, and fflush() knows
         * the errno of a failed write, ferror() does not. */
        errno = 0;
        if (fflush(stdout) != 0 || ferror(stdout))
                return cli_stdout_error(errno > 0 ? errno : EIO);
        print_hints(&s);
        return EXIT_SUCCESS;
}

int ls_table(FILE *f, struct ls_scan *s, bool regions, const char *cols, const char *sort, bool bytes, bool total) {
        struct ls_options o = { .view = regions ? V_REGION : V_HOLDER, .headings = true, .bytes = bytes,
                                .total = total };

        if (parse_columns(&o, cols ? cols : regions ? default_region_columns : default_holder_columns) < 0 ||
            (sort && parse_sort(&o, sort) < 0))
                return -EINVAL;
        if (s->n > 1)
                qsort_r(s->rows, s->n, sizeof(*s->rows), row_order, &o);
        return f ? print_table(f, &o, s) : 0;
}
