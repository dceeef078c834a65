/* SPDX-License-Identifier: MIT */
/* Reading what the kernel says of memory for pressure.h: /proc/self/cgroup,
 * PSI averages, cgroup memory limits and usage (v1 and v2). */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/magic.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <unistd.h>

#include "fd-util.h"
#include "macro.h"
#include "pressure.h"
#include "pressure-read.h"

/* Every cgroup and PSI file the kernel writes fits; a bigger one is not one. */
#define SMALL_FILE_MAX 4096
/* /proc/self/cgroup: up to ~16 hierarchies, each with a path. */
#define PROC_CGROUP_MAX (16 * PATH_MAX)
/* At or above 2^62 bytes a limit means none: v1 prints PAGE_COUNTER_MAX
 * pages as 9223372036854771712 (4 KiB pages), other page sizes differ. */

/* ---- small helpers ---- */

_printf_(3, 4) int pressure_pathf(char *buf, size_t size, const char *fmt, ...) {
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(buf, size, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -EINVAL;
        return (size_t) n < size ? 0 : -ENAMETOOLONG;
}

/* "" for the real root, so that paths never start with "//". */
const char *pressure_root_prefix(const char *root) {
        return root && strcmp(root, "/") != 0 ? root : "";
}

/* A cgroup path as a suffix: "/" joins as "" so no "//" appears. */
const char *pressure_cg_suffix(const char *cgpath) {
        return strcmp(cgpath, "/") == 0 ? "" : cgpath;
}

/* Read a whole small file, NUL-terminated. O_NONBLOCK: a FIFO planted
 * where a kernel file should be must not hang the daemon. Returns the
 * length, -EFBIG if it does not fit, -EBADMSG if it holds a NUL byte. */
static int read_small(const char *path, char *buf, size_t size) {
        _cleanup_close_ int fd = -1;
        size_t len = 0;
        char extra;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        while (len < size - 1) {
                ssize_t n = read(fd, buf + len, size - 1 - len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        if (len == size - 1 && read(fd, &extra, 1) > 0)
                return -EFBIG;
        if (memchr(buf, '\0', len))
                return -EBADMSG;
        buf[len] = '\0';
        return (int) len;
}

/* Decimal digits only: no sign, no space, no overflow. */
static int parse_u64(const char *s, size_t len, uint64_t *ret) {
        uint64_t v = 0;

        if (len == 0 || len > 20)
                return -EBADMSG;
        for (size_t i = 0; i < len; i++) {
                unsigned d = (unsigned char) s[i] - '0';

                if (d > 9 || v > (UINT64_MAX - d) / 10)
                        return -EBADMSG;
                v = v * 10 + d;
        }
        *ret = v;
        return 0;
}

/* A file holding one number (or "max" where allowed) and one newline. */
static int read_u64_file(const char *path, bool allow_max, uint64_t *ret) {
        char buf[64];
        int n;

        n = read_small(path, buf, sizeof(buf));
        if (n == -EFBIG)
                return -EBADMSG;
        if (n < 0)
                return n;
        if (n > 0 && buf[n - 1] == '\n')
                buf[--n] = '\0';
        if (allow_max && strcmp(buf, "max") == 0) {
                *ret = UINT64_MAX;
                return 0;
        }
        return parse_u64(buf, (size_t) n, ret);
}

struct keyed {
        const char *key;
        uint64_t *val;
};

/* "key value" lines (memory.events, memory.oom_control). Every line must
 * parse; keys not asked for are skipped, keys asked for but absent stay. */
static int parse_keyed(const char *text, const struct keyed *k, size_t n) {
        for (const char *line = text; *line;) {
                const char *end = strchrnul(line, '\n');
                const char *sp = memchr(line, ' ', (size_t) (end - line));
                uint64_t v;

                if (!sp || sp == line || parse_u64(sp + 1, (size_t) (end - sp - 1), &v) < 0)
                        return -EBADMSG;
                for (size_t i = 0; i < n; i++)
                        if (strlen(k[i].key) == (size_t) (sp - line) && memcmp(k[i].key, line, (size_t) (sp - line)) == 0)
                                *k[i].val = v;
                line = *end ? end + 1 : end;
        }
        return 0;
}

/* ---- /proc/self/cgroup ---- */

static bool list_has(const char *list, size_t len, const char *word) {
        size_t wl = strlen(word);

        for (const char *p = list, *end = list + len; p < end;) {
                const char *comma = memchr(p, ',', (size_t) (end - p));
                size_t l = comma ? (size_t) (comma - p) : (size_t) (end - p);

                if (l == wl && memcmp(p, word, wl) == 0)
                        return true;
                p += l + 1;
        }
        return false;
}

static int copy_field(char *dst, size_t size, const char *src, size_t len) {
        if (len >= size)
                return -ENAMETOOLONG;
        memcpy(dst, src, len);
        dst[len] = '\0';
        return 0;
}

/* "ID:controllers:path". The path may hold ':' and spaces, so split on the
 * first two colons only. */
static int cgroup_line(const char *line, size_t len, struct self_cgroup *sc) {
        const char *c1 = memchr(line, ':', len), *c2, *path;
        uint64_t id;

        if (!c1 || parse_u64(line, (size_t) (c1 - line), &id) < 0)
                return -EBADMSG;
        c2 = memchr(c1 + 1, ':', (size_t) (line + len - c1 - 1));
        if (!c2 || c2 + 1 >= line + len || c2[1] != '/')
                return -EBADMSG;
        path = c2 + 1;
        if (id == 0 && c2 == c1 + 1)
                return copy_field(sc->v2, sizeof(sc->v2), path, (size_t) (line + len - path));
        if (!list_has(c1 + 1, (size_t) (c2 - c1 - 1), "memory"))
                return 0;
        if (copy_field(sc->v1_controllers, sizeof(sc->v1_controllers), c1 + 1, (size_t) (c2 - c1 - 1)) < 0)
                return -EBADMSG;
        return copy_field(sc->v1_memory, sizeof(sc->v1_memory), path, (size_t) (line + len - path));
}

int pressure_read_self_cgroup(const char *root, struct self_cgroup *ret) {
        _cleanup_free_ char *buf = malloc(PROC_CGROUP_MAX);
        char path[PATH_MAX];
        int r;

        if (!buf)
                return -ENOMEM;
        r = pressure_pathf(path, sizeof(path), "%s/proc/self/cgroup", pressure_root_prefix(root));
        if (r < 0)
                return r;
        r = read_small(path, buf, PROC_CGROUP_MAX);
        if (r < 0)
                return r;
        *ret = (struct self_cgroup) {};
        for (const char *line = buf; *line;) {
                const char *end = strchrnul(line, '\n');

                if (end > line) {
                        r = cgroup_line(line, (size_t) (end - line), ret);
                        if (r < 0)
                                return r;
                }
                line = *end ? end + 1 : end;
        }
        return 0;
}

/* A process outside its cgroup namespace's root sees "/../x": such a path
 * would lead out of the mount, so it is refused. */
bool pressure_cgpath_safe(const char *p) {
        for (const char *c = p; (c = strstr(c, "/..")); c += 3)
                if (c[3] == '/' || c[3] == '\0')
                        return false;
        return true;
}

/* ---- PSI averages ---- */

static int expect(const char **s, const char *lit) {
        size_t n = strlen(lit);

        if (strncmp(*s, lit, n) != 0)
                return -EBADMSG;
        *s += n;
        return 0;
}

static int take_u64(const char **s, size_t max_digits, uint64_t *ret) {
        size_t n = strspn(*s, "0123456789");

        if (n > max_digits || parse_u64(*s, n, ret) < 0)
                return -EBADMSG;
        *s += n;
        return 0;
}

/* The kernel prints "%lu.%02lu": at most 100.00. */
static int take_percent(const char **s, uint32_t *ret) {
        uint64_t whole, frac;

        if (take_u64(s, 3, &whole) < 0 || expect(s, ".") < 0 || strspn(*s, "0123456789") != 2 ||
            take_u64(s, 2, &frac) < 0 || whole * 100 + frac > 10000)
                return -EBADMSG;
        *ret = (uint32_t) (whole * 100 + frac);
        return 0;
}

static int take_psi_line(const char **s, const char *name, struct psi_line *ret) {
        if (expect(s, name) < 0 || expect(s, " avg10=") < 0 || take_percent(s, &ret->avg10) < 0 ||
            expect(s, " avg60=") < 0 || take_percent(s, &ret->avg60) < 0 || expect(s, " avg300=") < 0 ||
            take_percent(s, &ret->avg300) < 0 || expect(s, " total=") < 0 || take_u64(s, 20, &ret->total_usec) < 0)
                return -EBADMSG;
        if (**s == '\n')
                (*s)++;
        else if (**s != '\0')
                return -EBADMSG;
        return 0;
}

int pressure_read_psi(const char *path, struct psi_stats *ret) {
        struct psi_stats st = {};
        char buf[512];
        const char *s = buf;
        int r;

        r = read_small(path, buf, sizeof(buf));
        if (r == -EFBIG)
                return -EBADMSG;
        if (r < 0)
                return r;
        if (take_psi_line(&s, "some", &st.some) < 0)
                return -EBADMSG;
        if (*s) {
                if (take_psi_line(&s, "full", &st.full) < 0 || *s)
                        return -EBADMSG;
                st.has_full = true;
        }
        *ret = st;
        return 0;
}

/* ---- cgroup memory limits ---- */

struct level {
        uint64_t limit; /* UINT64_MAX: none */
        const char *limit_file;
        uint64_t usage; /* UINT64_MAX: unknown */
};

/* A limit file: absent means no limit here; huge means none at all. */
static int read_limit(const char *dir, const char *file, uint64_t *ret) {
        char path[PATH_MAX];
        uint64_t v;
        int r;

        r = pressure_pathf(path, sizeof(path), "%s/%s", dir, file);
        if (r < 0)
                return r;
        r = read_u64_file(path, true, &v);
        if (r == -ENOENT)
                v = UINT64_MAX;
        else if (r < 0)
                return r;
        *ret = v >= CGROUP_LIMIT_UNLIMITED ? UINT64_MAX : v;
        return 0;
}

static int read_usage(const char *dir, const char *file, uint64_t *ret) {
        char path[PATH_MAX];
        int r;

        r = pressure_pathf(path, sizeof(path), "%s/%s", dir, file);
        if (r < 0)
                return r;
        r = read_u64_file(path, false, ret);
        if (r == -ENOENT) {
                *ret = UINT64_MAX;
                return 0;
        }
        return r;
}

static int read_level(int version, const char *dir, struct level *ret) {
        uint64_t max, high = UINT64_MAX;
        int r;

        r = read_limit(dir, version == 2 ? "memory.max" : "memory.limit_in_bytes", &max);
        if (r >= 0 && version == 2)
                r = read_limit(dir, "memory.high", &high);
        if (r >= 0)
                r = read_usage(dir, version == 2 ? "memory.current" : "memory.usage_in_bytes", &ret->usage);
        if (r < 0)
                return r;
        /* Past memory.high the kernel throttles and reclaims hard: purging
         * should begin before either boundary. */
        ret->limit = MIN(max, high);
        ret->limit_file = high < max ? "memory.high" : version == 2 ? "memory.max" : "memory.limit_in_bytes";
        return 0;
}

/* Keep the level with the least headroom; usage there unknown means ours,
 * which is part of it. */
static int consider(struct cgroup_memory *m, const struct level *l, const char *dir, char *binding_dir) {
        uint64_t usage, headroom;

        if (l->limit == UINT64_MAX)
                return 0;
        usage = l->usage != UINT64_MAX ? l->usage : m->own_usage != UINT64_MAX ? m->own_usage : 0;
        headroom = l->limit > usage ? l->limit - usage : 0;
        if (headroom >= m->headroom)
                return 0;
        m->limit = l->limit;
        m->usage = usage;
        m->headroom = headroom;
        strcpy(binding_dir, dir);
        return pressure_pathf(m->source, sizeof(m->source), "%s/%s", dir, l->limit_file);
}

bool pressure_cg_parent(char *cgpath) {
        char *slash = strrchr(cgpath, '/');

        if (strcmp(cgpath, "/") == 0 || !slash)
                return false;
        slash[slash == cgpath ? 1 : 0] = '\0';
        return true;
}

static int walk_levels(int version, const char *base, const char *cgpath, struct cgroup_memory *m,
                       char *binding_dir) {
        char cur[PATH_MAX], dir[PATH_MAX];
        bool own = true;
        int r;

        strcpy(cur, cgpath);
        do {
                struct level l;

                r = pressure_pathf(dir, PATH_MAX, "%s%s", base, pressure_cg_suffix(cur));
                if (r >= 0)
                        r = read_level(version, dir, &l);
                if (r < 0)
                        return r;
                if (own) {
                        m->own_usage = l.usage;
                        strcpy(binding_dir, dir);
                        own = false;
                }
                r = consider(m, &l, dir, binding_dir);
                if (r < 0)
                        return r;
        } while (pressure_cg_parent(cur));
        return 0;
}

static int read_events(int version, const char *dir, struct cgroup_memory *m) {
        char path[PATH_MAX], buf[SMALL_FILE_MAX];
        const struct keyed v2[] = {
                { "high", &m->events_high },
                { "max", &m->events_max },
                { "oom", &m->events_oom },
                { "oom_kill", &m->events_oom_kill },
        };
        const struct keyed v1[] = { { "oom_kill", &m->events_oom_kill } };
        int r;

        if (version == 1) {
                r = pressure_pathf(path, sizeof(path), "%s/memory.failcnt", dir);
                if (r >= 0)
                        r = read_u64_file(path, false, &m->events_max);
                if (r < 0 && r != -ENOENT)
                        return r;
        }
        r = pressure_pathf(path, sizeof(path), "%s/%s", dir, version == 2 ? "memory.events" : "memory.oom_control");
        if (r >= 0)
                r = read_small(path, buf, sizeof(buf));
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r == -EFBIG ? -EBADMSG : r;
        return version == 2 ? parse_keyed(buf, v2, ELEMENTSOF(v2)) : parse_keyed(buf, v1, ELEMENTSOF(v1));
}

bool pressure_is_dir(const char *path) {
        struct stat st;

        return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Where our cgroup lives: the memory hierarchy of v1 when memory is bound
 * there (a hybrid system), else v2, at /sys/fs/cgroup or, on hybrid
 * systems, /sys/fs/cgroup/unified. */
static int find_base(const char *root, const struct self_cgroup *sc, int *ret_version, char *ret_base) {
        const char *pre = pressure_root_prefix(root);
        char dir[PATH_MAX];
        int version = sc->v1_memory[0] ? 1 : 2;
        const char *cg = version == 1 ? sc->v1_memory : sc->v2;
        const char *const v1[] = { "memory", sc->v1_controllers };
        const char *const v2[] = { "", "/unified" };

        if (!cg[0] || !pressure_cgpath_safe(cg))
                return -ENOENT;
        for (size_t i = 0; i < 2; i++) {
                if (pressure_pathf(ret_base, PATH_MAX, version == 1 ? "%s/sys/fs/cgroup/%s" : "%s/sys/fs/cgroup%s",
                                   pre, version == 1 ? v1[i] : v2[i]) < 0 ||
                    pressure_pathf(dir, sizeof(dir), "%s%s", ret_base, pressure_cg_suffix(cg)) < 0)
                        return -ENAMETOOLONG;
                if (pressure_is_dir(dir)) {
                        *ret_version = version;
                        return 0;
                }
        }
        return -ENOENT;
}

int cgroup_memory_state(const char *root, struct cgroup_memory *ret) {
        _cleanup_free_ struct self_cgroup *sc = malloc(sizeof(*sc));
        _cleanup_free_ struct cgroup_memory *m = calloc(1, sizeof(*m));
        char base[PATH_MAX], binding_dir[PATH_MAX];
        int version, r;

        if (!sc || !m)
                return -ENOMEM;
        r = pressure_read_self_cgroup(root, sc);
        if (r < 0)
                return r;
        r = find_base(root, sc, &version, base);
        if (r < 0)
                return r;
        m->version = version;
        m->limit = m->headroom = m->usage = m->own_usage = UINT64_MAX;
        r = walk_levels(version, base, version == 1 ? sc->v1_memory : sc->v2, m, binding_dir);
        if (r >= 0)
                r = read_events(version, binding_dir, m);
        if (r < 0)
                return r;
        if (m->limit == UINT64_MAX) {
                m->usage = m->own_usage;
                strcpy(m->source, binding_dir);
        }
        *ret = *m;
        return 0;
}
