/* SPDX-License-Identifier: MIT */
/* ashm ls: every memfd region on the machine, found the only way the
 * kernel offers, through /proc: the fds each process holds, and the
 * mappings it keeps after closing them. One row per process and region,
 * with the pin state of the regions ashmd tracks, if one runs. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "ashm.h"
#include "cli.h"
#include "fd-util.h"
#include "memfd-util.h"
#include "protocol.h"

#define MEMFD_PREFIX "/memfd:"
#define DELETED_SUFFIX " (deleted)"

enum hold { HOLD_FD, HOLD_MAP, HOLD_ASHMD };

struct row {
        pid_t pid;
        char *comm;
        enum hold hold;
        int fd; /* HOLD_FD */
        unsigned long map_start, map_end; /* HOLD_MAP */
        uint64_t dev, inode;
        int64_t size, resident; /* -1: not readable */
        /* From ashmd: NULL when it does not track the region. */
        const struct proto_list_entry *pins;
        char *name;
        bool channel; /* holds an ashm channel (ashm_chan_is_channel) */
};

/* What ashmd told us, and what of it the scan matched. */
struct pins {
        struct proto_list_entry *e; /* sorted by dev, inode */
        bool *seen;
        size_t n;
        int error; /* of the LIST request; -ECONNREFUSED: no daemon */
};

struct scan {
        struct row *rows;
        size_t n, cap;
        unsigned denied;   /* processes skipped: EACCES or EPERM */
        bool sizes_denied; /* map-only rows whose size needs root */
};

static void scan_done(struct scan *s) {
        for (size_t i = 0; i < s->n; i++) {
                free(s->rows[i].comm);
                free(s->rows[i].name);
        }
        free(s->rows);
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
static bool have_inode(const struct scan *s, size_t first, uint64_t inode) {
        for (size_t i = first; i < s->n; i++)
                if (s->rows[i].inode == inode)
                        return true;
        return false;
}

static int add_row(struct scan *s, const struct row *r) {
        struct row *row;

        if (s->n == s->cap) {
                size_t cap = s->cap ? s->cap * 2 : 64;
                struct row *rows = reallocarray(s->rows, cap, sizeof(*rows));

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
        int fd = openat(dir_fd, entry, O_RDONLY | O_CLOEXEC), r;

        if (fd < 0 || ashm_region_adopt(fd, 0, &region) < 0)
                return false;
        r = ashm_chan_is_channel(region);
        ashm_region_close(region);
        return r > 0;
}

/* A region is a channel in every row if it is in one. */
static void channels_mark(struct scan *s) {
        for (size_t i = 0; i < s->n; i++)
                for (size_t j = 0; j < s->n && !s->rows[i].channel; j++)
                        if (s->rows[j].channel && s->rows[j].dev == s->rows[i].dev &&
                            s->rows[j].inode == s->rows[i].inode)
                                s->rows[i].channel = true;
}

/* One fd of the process: a row if it is a memfd we have not seen yet.
 * Entries read in increasing fd order, so a region held twice shows its
 * lowest fd. Returns -errno only when the process as a whole is lost. */
static int scan_fd(struct scan *s, size_t first, struct row *r, int dir_fd, const char *entry) {
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
        r->hold = HOLD_FD;
        r->fd = atoi(entry);
        r->dev = st.st_dev;
        r->inode = st.st_ino;
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

static int scan_fds(struct scan *s, size_t first, struct row *r, int pid_fd) {
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
static int map_details(struct scan *s, struct row *r, int pid_fd, char *path, unsigned maj,
                       unsigned min) {
        char entry[64], link[PATH_MAX];
        struct stat st = { .st_mode = S_IFREG, .st_dev = makedev(maj, min) };
        ssize_t n;

        snprintf(entry, sizeof(entry), "map_files/%lx-%lx", r->map_start, r->map_end);
        r->size = r->resident = -1;
        if (fstatat(pid_fd, entry, &st, 0) == 0) {
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
static int scan_map(struct scan *s, size_t first, struct row *r, int pid_fd, char *line) {
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
        r->hold = HOLD_MAP;
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

static int scan_maps(struct scan *s, size_t first, struct row *r, int pid_fd) {
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

/* Every failure but ENOMEM means the process is gone or hidden from us:
 * it is skipped, and counted when permissions were the reason. */
static int scan_pid(struct scan *s, pid_t pid) {
        char path[64], comm[64];
        struct row r = { .pid = pid, .comm = comm };
        size_t first = s->n;
        _cleanup_close_ int pid_fd = -1;
        int ret;

        /* Everything below is read relative to this fd, so a pid reused
         * by a new process halfway through cannot mix two processes. */
        snprintf(path, sizeof(path), "/proc/%d", (int) pid);
        pid_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (pid_fd < 0)
                return 0;
        ret = read_comm(pid_fd, comm, sizeof(comm));
        if (ret >= 0)
                ret = scan_fds(s, first, &r, pid_fd);
        if (ret >= 0)
                ret = scan_maps(s, first, &r, pid_fd);
        if (ret == -ENOMEM)
                return ret;
        if (is_denied(ret))
                s->denied++;
        return 0;
}

static int scan_proc(struct scan *s) {
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

/* Bytes from the daemon, as a size to show: none is past 2^63. */
static int64_t pin_bytes(uint64_t v) {
        return v > INT64_MAX ? INT64_MAX : (int64_t) v;
}

static void pins_done(struct pins *p) {
        free(p->e);
        free(p->seen);
}

/* Ask ashmd what it tracks, without starting one to ask: with no daemon
 * the pin columns show "-". Only running out of memory is fatal. */
static int pins_fetch(struct pins *p) {
        cli_no_autostart();
        p->error = cli_daemon_list(&p->e, &p->n);
        if (p->error < 0)
                return p->error == -ENOMEM ? -ENOMEM : 0;
        p->seen = calloc(p->n ? p->n : 1, sizeof(*p->seen));
        return p->seen ? 0 : -ENOMEM;
}

/* A region is the same in every process: one device and inode. */
static void pins_match(struct scan *s, struct pins *p) {
        for (size_t i = 0; i < s->n; i++) {
                struct row *r = &s->rows[i];

                r->pins = cli_list_find(p->e, p->n, r->dev, r->inode);
                if (r->pins)
                        p->seen[r->pins - p->e] = true;
        }
}

/* Regions ashmd tracks that no process we could read holds: their
 * holders are hidden from us (another user's processes that got the fd,
 * or a daemon we may not inspect). ashmd holds every region it tracks,
 * so they are shown as its own, with the size it counts (whole pages)
 * and no residency. */
static int add_ashmd_rows(struct scan *s, const struct pins *p) {
        struct row r = { .comm = "ashmd", .hold = HOLD_ASHMD, .fd = -1, .resident = -1 };
        struct proto_status_rep st;
        size_t unseen = 0;
        int ret;

        for (size_t i = 0; i < p->n; i++)
                unseen += !p->seen[i];
        /* No answer: the daemon has gone since, and its regions with it. */
        if (unseen == 0 || cli_daemon_status(&st) < 0)
                return 0;
        r.pid = (pid_t) st.pid;
        for (size_t i = 0; i < p->n; i++) {
                if (p->seen[i])
                        continue;
                r.dev = p->e[i].dev;
                r.inode = p->e[i].ino;
                r.size = pin_bytes(p->e[i].size);
                r.pins = &p->e[i];
                r.name = strdup(p->e[i].name);
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

static int row_cmp(const void *a, const void *b) {
        const struct row *x = a, *y = b;

        if (x->pid != y->pid)
                return x->pid < y->pid ? -1 : 1;
        return x->inode < y->inode ? -1 : x->inode > y->inode;
}

/* The cells of one table row, except NAME, which goes last unpadded. */
enum { C_PID, C_COMM, C_HOLD, C_INODE, C_SIZE, C_RESIDENT, C_PINNED, C_UNPINNED, C_PURGED, N_CELLS };
static const char *const headers[N_CELLS] = { "PID",      "COMM",   "HOLD",     "INODE", "SIZE",
                                              "RESIDENT", "PINNED", "UNPINNED", "PURGED" };

static int row_cells(const struct row *r, char cells[N_CELLS][64]) {
        _cleanup_free_ char *comm = cescape(r->comm);

        if (!comm)
                return -ENOMEM;
        snprintf(cells[C_PID], 64, "%d", (int) r->pid);
        snprintf(cells[C_COMM], 64, "%s", comm);
        if (r->hold == HOLD_FD)
                snprintf(cells[C_HOLD], 64, "fd %d", r->fd);
        else if (r->hold == HOLD_MAP)
                snprintf(cells[C_HOLD], 64, "map %lx-%lx", r->map_start, r->map_end);
        else
                snprintf(cells[C_HOLD], 64, "ashmd");
        snprintf(cells[C_INODE], 64, "%" PRIu64, r->inode);
        format_size(r->size, cells[C_SIZE], 64);
        format_size(r->resident, cells[C_RESIDENT], 64);
        format_size(r->pins ? pin_bytes(r->pins->pinned) : -1, cells[C_PINNED], 64);
        format_size(r->pins ? pin_bytes(r->pins->unpinned) : -1, cells[C_UNPINNED], 64);
        format_size(r->pins ? pin_bytes(r->pins->purged) : -1, cells[C_PURGED], 64);
        return 0;
}

static void print_cells(char cells[N_CELLS][64], const size_t *widths) {
        /* Numbers align right, text left, as in ps(1). */
        static const bool right[N_CELLS] = { [C_PID] = true,    [C_INODE] = true,    [C_SIZE] = true,
                                             [C_RESIDENT] = true, [C_PINNED] = true,   [C_UNPINNED] = true,
                                             [C_PURGED] = true };

        for (int c = 0; c < N_CELLS; c++)
                print_cell(cells[c], widths[c], right[c]);
}

static int print_table(const struct scan *s) {
        char cells[N_CELLS][64];
        size_t widths[N_CELLS];

        for (int c = 0; c < N_CELLS; c++) {
                snprintf(cells[c], 64, "%s", headers[c]);
                widths[c] = strlen(headers[c]);
        }
        for (size_t i = 0; i < s->n; i++) {
                if (row_cells(&s->rows[i], cells) < 0)
                        return -ENOMEM;
                for (int c = 0; c < N_CELLS; c++)
                        widths[c] = MAX(widths[c], text_width(cells[c]));
        }
        for (int c = 0; c < N_CELLS; c++)
                snprintf(cells[c], 64, "%s", headers[c]);
        print_cells(cells, widths);
        puts("NAME");
        for (size_t i = 0; i < s->n && !ferror(stdout); i++) {
                _cleanup_free_ char *name = cescape(s->rows[i].name);

                if (!name || row_cells(&s->rows[i], cells) < 0)
                        return -ENOMEM;
                print_cells(cells, widths);
                printf("%s%s\n", name, s->rows[i].channel ? " (channel)" : "");
        }
        return 0;
}

static void json_put_size(const char *key, int64_t v) {
        if (v < 0)
                printf(",\"%s\":null", key);
        else
                printf(",\"%s\":%" PRIi64, key, v);
}

static void json_put_row(const struct row *r) {
        printf("{\"pid\":%d,\"comm\":", (int) r->pid);
        json_put_string(r->comm, stdout);
        if (r->hold == HOLD_FD)
                printf(",\"fd\":%d,\"map\":null", r->fd);
        else if (r->hold == HOLD_MAP)
                printf(",\"fd\":null,\"map\":\"%lx-%lx\"", r->map_start, r->map_end);
        else
                fputs(",\"fd\":null,\"map\":null", stdout);
        printf(",\"inode\":%" PRIu64, r->inode);
        json_put_size("size", r->size);
        json_put_size("resident", r->resident);
        json_put_size("pinned", r->pins ? pin_bytes(r->pins->pinned) : -1);
        json_put_size("unpinned", r->pins ? pin_bytes(r->pins->unpinned) : -1);
        json_put_size("purged", r->pins ? pin_bytes(r->pins->purged) : -1);
        /* Only on channels: rows of plain regions keep the shape they
         * always had. */
        if (r->channel)
                fputs(",\"kind\":\"channel\"", stdout);
        fputs(",\"name\":", stdout);
        json_put_string(r->name, stdout);
        putchar('}');
}

/* One object per line, so that grep still works on the output. */
static void print_json(const struct scan *s) {
        putchar('[');
        for (size_t i = 0; i < s->n && !ferror(stdout); i++) {
                fputs(i == 0 ? "\n  " : ",\n  ", stdout);
                json_put_row(&s->rows[i]);
        }
        puts(s->n ? "\n]" : "]");
}

static void print_hints(const struct scan *s, const struct pins *p) {
        bool root = geteuid() == 0;

        /* No daemon is no error: most memfds are not ashm's anyway. */
        if (p->error < 0 && p->error != -ECONNREFUSED)
                cli_daemon_error("read the pin state from ashmd (shown as \"-\")", p->error);
        if (s->denied > 0)
                fprintf(stderr, "ashm: %u process%s could not be read%s\n", s->denied,
                        s->denied == 1 ? "" : "es",
                        root ? " (permission denied)" : "; run as root to see every region");
        if (s->sizes_denied && !root)
                fputs("ashm: the size of a region that is only mapped (\"-\") can be read by root only\n",
                      stderr);
}

int verb_ls(int argc, char *argv[]) {
        _cleanup_(scan_done) struct scan s = {};
        _cleanup_(pins_done) struct pins p = {};
        bool json = false;
        int r;

        r = cli_json_args("ls", argc, argv, &json);
        if (r >= 0)
                return r;
        /* The daemon first: a region made after we asked then shows "-",
         * where asking after the scan would list it as held by ashmd
         * alone, a holder the scan missed. */
        if (pins_fetch(&p) < 0) {
                fputs("ashm: out of memory\n", stderr);
                return EXIT_FAILURE;
        }
        r = scan_proc(&s);
        if (r < 0) {
                fprintf(stderr, "ashm: cannot read /proc: %s%s\n", strerror(-r),
                        r == -ENOENT ? " (is procfs mounted?)" : "");
                return EXIT_FAILURE;
        }
        pins_match(&s, &p);
        if (add_ashmd_rows(&s, &p) < 0) {
                fputs("ashm: out of memory\n", stderr);
                return EXIT_FAILURE;
        }
        channels_mark(&s);
        if (s.n > 1) /* with no row, s.rows is NULL: not for qsort() */
                qsort(s.rows, s.n, sizeof(*s.rows), row_cmp);
        if (json)
                print_json(&s);
        else if (print_table(&s) < 0) {
                fputs("ashm: out of memory\n", stderr);
                return EXIT_FAILURE;
        }
        /* Flush now: the table comes before the hints, and fflush() knows
         * the errno of a failed write, ferror() does not. */
        errno = 0;
        if (fflush(stdout) != 0 || ferror(stdout))
                return cli_stdout_error(errno > 0 ? errno : EIO);
        print_hints(&s, &p);
        return EXIT_SUCCESS;
}
