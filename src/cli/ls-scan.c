/* SPDX-License-Identifier: MIT */
/* The scan behind ashm ls and ashm top (ls.h): every memfd region on
 * the machine, found the only way the kernel offers, through /proc: the
 * fds each process holds, and the mappings it keeps after closing them,
 * matched with the pin state of the regions ashmd tracks, if one runs. */
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

int ls_region_cmp(const struct ls_row *x, const struct ls_row *y) {
        if (x->dev != y->dev)
                return x->dev < y->dev ? -1 : 1;
        return x->inode < y->inode ? -1 : x->inode > y->inode;
}

static int row_index_cmp(const void *a, const void *b, void *userdata) {
        const struct ls_row *rows = userdata;
        size_t i = *(const size_t *) a, j = *(const size_t *) b;
        int c = ls_region_cmp(&rows[i], &rows[j]);

        if (c != 0)
                return c;
        if (rows[i].pid != rows[j].pid)
                return rows[i].pid < rows[j].pid ? -1 : 1;
        return i < j ? -1 : i > j;
}

/* The indices of the rows, grouped by region (dev, inode), then pid. */
size_t *ls_by_region(const struct ls_scan *s) {
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
        _cleanup_free_ size_t *idx = ls_by_region(s);

        if (!idx)
                return -ENOMEM;
        for (size_t i = 0, j; i < s->n; i = j) {
                for (j = i; j < s->n && ls_region_cmp(&s->rows[idx[i]], &s->rows[idx[j]]) == 0; j++)
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
        _cleanup_free_ size_t *idx = ls_by_region(s);
        struct ls_scan out = { .sizes_denied = s->sizes_denied, .pins_error = s->pins_error };

        if (!idx)
                return -ENOMEM;
        out.rows = reallocarray(NULL, s->n ? s->n : 1, sizeof(*out.rows));
        if (!out.rows)
                return -ENOMEM;
        for (size_t i = 0, j; i < s->n; i = j) {
                bool any = !keep;

                for (j = i; j < s->n && ls_region_cmp(&s->rows[idx[i]], &s->rows[idx[j]]) == 0; j++)
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
