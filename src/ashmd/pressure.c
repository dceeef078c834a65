/* SPDX-License-Identifier: MIT */

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

/* Every cgroup and PSI file the kernel writes fits; a bigger one is not one. */
#define SMALL_FILE_MAX 4096
/* /proc/self/cgroup: up to ~16 hierarchies, each with a path. */
#define PROC_CGROUP_MAX (16 * PATH_MAX)
/* A $MEMORY_PRESSURE_WRITE payload is a trigger line; refuse anything big. */
#define PAYLOAD_MAX 4096
/* At or above 2^62 bytes a limit means none: v1 prints PAGE_COUNTER_MAX
 * pages as 9223372036854771712 (4 KiB pages), other page sizes differ. */
#define LIMIT_UNLIMITED (UINT64_C(1) << 62)
/* A flooding peer must not keep pressure_handle() reading forever;
 * level-triggered epoll calls again for the rest. */
#define DRAIN_MAX (1024 * 1024)

enum kind { KIND_NONE, KIND_PSI, KIND_FIFO, KIND_SOCKET };

struct pressure {
        int fd;
        enum kind kind;
        bool disabled;
        char *source;
        char *notes;
        /* The trigger line with its NUL: psi_write() overwrites the last
         * byte written with '\0', so a line sent without one loses a digit. */
        char trigger[64];
        size_t trigger_len;
        uint64_t window_usec;
};

/* What /proc/self/cgroup says about us. Empty strings when absent. */
struct self_cgroup {
        char v2[PATH_MAX];
        char v1_memory[PATH_MAX];
        char v1_controllers[256];
};

/* ---- small helpers ---- */

_printf_(3, 4) static int appendf(char **s, const char *sep, const char *fmt, ...) {
        _cleanup_free_ char *piece = NULL;
        char *joined;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&piece, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        if (asprintf(&joined, "%s%s%s", *s ? *s : "", *s && **s ? sep : "", piece) < 0)
                return -ENOMEM;
        free(*s);
        *s = joined;
        return 0;
}

_printf_(3, 4) static int pathf(char *buf, size_t size, const char *fmt, ...) {
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
static const char *root_prefix(const char *root) {
        return root && strcmp(root, "/") != 0 ? root : "";
}

/* A cgroup path as a suffix: "/" joins as "" so no "//" appears. */
static const char *cg_suffix(const char *cgpath) {
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

static int read_self_cgroup(const char *root, struct self_cgroup *ret) {
        _cleanup_free_ char *buf = malloc(PROC_CGROUP_MAX);
        char path[PATH_MAX];
        int r;

        if (!buf)
                return -ENOMEM;
        r = pathf(path, sizeof(path), "%s/proc/self/cgroup", root_prefix(root));
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
static bool cgpath_safe(const char *p) {
        for (const char *c = p; (c = strstr(c, "/..")); c += 3)
                if (c[3] == '/' || c[3] == '\0')
                        return false;
        return true;
}

/* ---- PSI triggers ---- */

static int check_psi_file(int fd) {
        struct statfs sfs;
        struct stat st;

        if (fstat(fd, &st) < 0 || fstatfs(fd, &sfs) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -ENOTTY;
        /* Regular files elsewhere never report POLLPRI, and epoll refuses them. */
        if (sfs.f_type != PROC_SUPER_MAGIC && sfs.f_type != CGROUP2_SUPER_MAGIC)
                return -ENOTTY;
        return 0;
}

/* Open a PSI file and install a trigger. The trigger lives as long as the
 * fd; the kernel allows one per open file. */
static int psi_arm(const char *path, const void *trigger, size_t len, int *ret_fd) {
        _cleanup_close_ int fd = -1;
        ssize_t n;
        int r;

        fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        r = check_psi_file(fd);
        if (r < 0)
                return r;
        n = write(fd, trigger, len);
        if (n < 0)
                return -errno;
        if ((size_t) n != len)
                return -EIO;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int format_trigger(struct pressure *p, const struct pressure_config *cfg) {
        uint64_t threshold = cfg->threshold_usec ? cfg->threshold_usec : PRESSURE_DEFAULT_THRESHOLD_USEC;
        uint64_t window = cfg->window_usec ? cfg->window_usec : PRESSURE_DEFAULT_WINDOW_USEC;
        int n;

        /* The kernel's own checks, so that a bad config is an error here
         * rather than a source skipped for a reason that is not its own. */
        if (window > PRESSURE_WINDOW_MAX_USEC || threshold > window)
                return -EINVAL;
        n = snprintf(p->trigger, sizeof(p->trigger), "%s %" PRIu64 " %" PRIu64,
                     cfg->flags & PRESSURE_FULL ? "full" : "some", threshold, window);
        if (n < 0 || (size_t) n >= sizeof(p->trigger))
                return -EINVAL;
        p->trigger_len = (size_t) n + 1;
        p->window_usec = window;
        return 0;
}

/* Record why a source was skipped, with the hint a user needs for the
 * kernel's least obvious refusal. */
static int note(struct pressure *p, const char *what, int err) {
        const char *hint = "";

        if (err == -EINVAL && p->window_usec % PRESSURE_WINDOW_UNPRIV_USEC != 0)
                hint = " (without CAP_SYS_RESOURCE a PSI window must be a multiple of 2 s)";
        else if (err == -ENOTTY)
                hint = " (not a PSI file, FIFO or socket)";
        return appendf(&p->notes, "; ", "%s: %s%s", what, strerror(-err), hint);
}

/* ---- $MEMORY_PRESSURE_WATCH ---- */

static int b64_value(char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Strict base64: standard alphabet, whitespace ignored, padding optional
 * but only at the end, no stray bits. */
static int unbase64(const char *s, uint8_t *out, size_t size, size_t *ret_len) {
        size_t len = 0, chars = 0, pad = 0;
        uint32_t acc = 0;
        unsigned bits = 0;

        for (; *s; s++) {
                int v;

                if (isspace((unsigned char) *s))
                        continue;
                if (*s == '=' && ++pad <= 2)
                        continue;
                v = b64_value(*s);
                if (v < 0 || pad > 0)
                        return -EINVAL;
                acc = (acc << 6) | (uint32_t) v;
                bits += 6;
                chars++;
                if (bits >= 8) {
                        bits -= 8;
                        if (len == size)
                                return -E2BIG;
                        out[len++] = (uint8_t) (acc >> bits);
                        acc &= (1u << bits) - 1;
                }
        }
        if (chars % 4 == 1 || acc != 0 || (pad > 0 && (chars + pad) % 4 != 0))
                return -EINVAL;
        *ret_len = len;
        return 0;
}

/* systemd's rule: absolute, and no ".", ".." or empty components. */
static bool watch_path_valid(const char *path) {
        if (path[0] != '/' || strlen(path) >= PATH_MAX)
                return false;
        for (const char *c = path; *c; c++) {
                if (*c != '/')
                        continue;
                if (c[1] == '/' || (c[1] == '.' && (c[2] == '/' || c[2] == '\0')) ||
                    (c[1] == '.' && c[2] == '.' && (c[3] == '/' || c[3] == '\0')))
                        return false;
        }
        return true;
}

static ssize_t drain(int fd, bool *ret_eof) {
        char buf[4096];
        size_t total = 0;

        *ret_eof = false;
        while (total < DRAIN_MAX) {
                ssize_t n = read(fd, buf, sizeof(buf));

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        break;
                if (n < 0)
                        return -errno;
                if (n == 0) {
                        *ret_eof = true;
                        break;
                }
                total += (size_t) n;
        }
        return (ssize_t) total;
}

static int fifo_open(const char *path, const void *payload, size_t len, int *ret_fd) {
        _cleanup_close_ int fd = -1;
        ssize_t n_read;
        struct stat st;
        bool eof;

        /* Read-write: as a writer ourselves the FIFO never reports POLLHUP
         * when the other side closes, which would spin the event loop. */
        fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd < 0 && errno == EACCES && len == 0)
                fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISFIFO(st.st_mode))
                return -ENOTTY;
        if (len > 0) {
                ssize_t n = write(fd, payload, len);

                if (n < 0)
                        return -errno;
                if ((size_t) n != len)
                        return -EIO;
        }
        /* What we just wrote would read back as a first pressure event. */
        n_read = drain(fd, &eof);
        if (n_read < 0)
                return (int) n_read;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* Paths longer than sun_path go through the O_PATH fd, as systemd does. */
static int connect_path(int fd, const char *path, int path_fd) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        const char *p = path;
        char via[64];

        if (strlen(path) >= sizeof(sa.sun_path)) {
                snprintf(via, sizeof(via), "/proc/self/fd/%d", path_fd);
                p = via;
        }
        strcpy(sa.sun_path, p);
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        return 0;
}

static int send_all(int fd, const uint8_t *buf, size_t len) {
        while (len > 0) {
                ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                buf += n;
                len -= (size_t) n;
        }
        return 0;
}

/* systemd documents a stream socket; a SEQPACKET listener refuses that
 * with EPROTOTYPE, so try it second. Non-blocking throughout: a peer with
 * a full backlog must not stall the daemon's start. */
static int socket_open(const char *path, int path_fd, const void *payload, size_t len, int *ret_fd) {
        static const int types[] = { SOCK_STREAM, SOCK_SEQPACKET };
        int r = -EPROTOTYPE;

        for (size_t i = 0; i < ELEMENTSOF(types) && r == -EPROTOTYPE; i++) {
                _cleanup_close_ int fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

                if (fd < 0)
                        return -errno;
                r = connect_path(fd, path, path_fd);
                if (r >= 0)
                        r = send_all(fd, payload, len);
                if (r >= 0)
                        *ret_fd = TAKE_FD(fd);
        }
        return r;
}

static int watch_open(struct pressure *p, const char *path, const uint8_t *payload, size_t len) {
        _cleanup_close_ int path_fd = -1;
        const char *what;
        struct stat st;
        int r;

        path_fd = open(path, O_PATH | O_CLOEXEC);
        if (path_fd < 0 || fstat(path_fd, &st) < 0)
                return -errno;
        if (S_ISSOCK(st.st_mode)) {
                r = socket_open(path, path_fd, payload, len, &p->fd);
                p->kind = KIND_SOCKET;
                what = "socket";
        } else if (S_ISFIFO(st.st_mode)) {
                r = fifo_open(path, payload, len, &p->fd);
                p->kind = KIND_FIFO;
                what = "fifo";
        } else if (S_ISREG(st.st_mode)) {
                /* Without a payload a PSI file has no trigger and polls as
                 * an error at once, so ours stands in. */
                r = len > 0 ? psi_arm(path, payload, len, &p->fd) : psi_arm(path, p->trigger, p->trigger_len, &p->fd);
                p->kind = KIND_PSI;
                what = len > 0 ? "psi" : p->trigger;
        } else
                return S_ISDIR(st.st_mode) ? -EISDIR : -ENOTTY;
        if (r < 0) {
                p->kind = KIND_NONE;
                return r;
        }
        return appendf(&p->source, "", "systemd:%s (%s)", path, what);
}

static const char *config_value(const struct pressure_config *cfg, const char *field, const char *env) {
        if (cfg->watch)
                return field;
        return cfg->flags & PRESSURE_NO_ENV ? NULL : secure_getenv(env);
}

/* 1: settled (a source, or turned off), 0: go on, <0: fatal. */
static int try_watch(struct pressure *p, const struct pressure_config *cfg) {
        const char *watch = config_value(cfg, cfg->watch, "MEMORY_PRESSURE_WATCH");
        const char *write = config_value(cfg, cfg->write, "MEMORY_PRESSURE_WRITE");
        uint8_t payload[PAYLOAD_MAX];
        char what[PATH_MAX + 64];
        size_t len = 0;
        int r;

        if (!watch)
                return 0;
        if (watch[0] == '\0' || strcmp(watch, "/dev/null") == 0) {
                p->disabled = true;
                r = appendf(&p->source, "", "none: pressure monitoring disabled by $MEMORY_PRESSURE_WATCH=%s",
                            watch[0] ? watch : "\"\"");
                return r < 0 ? r : 1;
        }
        snprintf(what, sizeof(what), "$MEMORY_PRESSURE_WATCH=%s", watch);
        if (!watch_path_valid(watch))
                return appendf(&p->notes, "; ", "%s: not an absolute, normalized path", what);
        if (write && unbase64(write, payload, sizeof(payload), &len) < 0)
                return appendf(&p->notes, "; ", "%s: $MEMORY_PRESSURE_WRITE is not valid base64 (at most %d bytes)",
                               what, PAYLOAD_MAX);
        r = watch_open(p, watch, payload, len);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return note(p, what, r);
        return 1;
}

static int try_psi(struct pressure *p, const char *path) {
        int r = psi_arm(path, p->trigger, p->trigger_len, &p->fd);

        if (r < 0)
                return note(p, path, r);
        p->kind = KIND_PSI;
        r = appendf(&p->source, "", "psi:%s (%s)", path, p->trigger);
        return r < 0 ? r : 1;
}

/* Our cgroup's memory.pressure: on the v2 mount, or on a hybrid system's
 * /sys/fs/cgroup/unified. */
static int try_cgroup(struct pressure *p, const char *root) {
        static const char *const bases[] = { "/sys/fs/cgroup", "/sys/fs/cgroup/unified" };
        struct self_cgroup sc;
        char path[PATH_MAX];
        int r;

        r = read_self_cgroup(root, &sc);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return appendf(&p->notes, "; ", "%s/proc/self/cgroup: %s", root_prefix(root), strerror(-r));
        if (!sc.v2[0])
                return appendf(&p->notes, "; ", "%s/proc/self/cgroup: no cgroup v2 entry", root_prefix(root));
        if (!cgpath_safe(sc.v2))
                return appendf(&p->notes, "; ", "cgroup %s: outside our cgroup namespace", sc.v2);
        for (size_t i = 0; i < ELEMENTSOF(bases); i++) {
                if (pathf(path, sizeof(path), "%s%s%s/memory.pressure", root_prefix(root), bases[i],
                          cg_suffix(sc.v2)) < 0) {
                        r = note(p, "memory.pressure", -ENAMETOOLONG);
                        if (r < 0)
                                return r;
                        continue;
                }
                r = try_psi(p, path);
                if (r != 0)
                        return r;
        }
        return 0;
}

static int try_proc(struct pressure *p, const char *root) {
        char path[PATH_MAX];

        if (pathf(path, sizeof(path), "%s/proc/pressure/memory", root_prefix(root)) < 0)
                return note(p, "/proc/pressure/memory", -ENAMETOOLONG);
        return try_psi(p, path);
}

int pressure_open(const struct pressure_config *cfg, struct pressure **ret) {
        static const struct pressure_config defaults = {};
        struct pressure *p;
        int r;

        cfg = cfg ? cfg : &defaults;
        if (cfg->flags & ~(PRESSURE_NO_ENV | PRESSURE_FULL) || (cfg->write && !cfg->watch))
                return -EINVAL;
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->fd = -1;
        r = format_trigger(p, cfg);
        if (r == 0)
                r = try_watch(p, cfg);
        if (r == 0)
                r = try_cgroup(p, cfg->root);
        if (r == 0)
                r = try_proc(p, cfg->root);
        if (r == 0)
                r = appendf(&p->source, "", "none: pressure monitoring unavailable: %s",
                            p->notes ? p->notes : "no source");
        if (r < 0) {
                pressure_close(p);
                return r;
        }
        *ret = p;
        return 0;
}

int pressure_fd(const struct pressure *p) {
        if (!p)
                return -EINVAL;
        if (p->fd >= 0)
                return p->fd;
        return p->disabled ? -EHOSTDOWN : -EOPNOTSUPP;
}

uint32_t pressure_events(const struct pressure *p) {
        if (!p || p->fd < 0)
                return 0;
        return p->kind == KIND_PSI ? POLLPRI : POLLIN;
}

int pressure_handle(struct pressure *p, uint32_t revents) {
        ssize_t n;
        bool eof;

        if (!p || p->fd < 0)
                return -EBADF;
        /* A PSI file reports POLLERR once its trigger is gone: the cgroup
         * was removed, or PSI was turned off. */
        if (p->kind == KIND_PSI)
                return revents & (POLLERR | POLLNVAL) ? -ENODEV : !!(revents & POLLPRI);
        n = drain(p->fd, &eof);
        /* A socket that fails a read (reset, not connected) is gone. */
        if (n < 0)
                return p->kind == KIND_SOCKET ? -ENODEV : (int) n;
        /* Data first: a hang-up that came with it is seen on the next call. */
        if (n > 0)
                return 1;
        /* EOF on a FIFO only means no writer yet; on a socket the peer left. */
        if ((eof && p->kind == KIND_SOCKET) || (revents & (POLLERR | POLLHUP | POLLNVAL)))
                return -ENODEV;
        return 0;
}

const char *pressure_source(const struct pressure *p) {
        return p && p->source ? p->source : "none";
}

const char *pressure_notes(const struct pressure *p) {
        return p && p->notes ? p->notes : "";
}

void pressure_close(struct pressure *p) {
        if (!p)
                return;
        safe_close(p->fd);
        free(p->source);
        free(p->notes);
        free(p);
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

        r = pathf(path, sizeof(path), "%s/%s", dir, file);
        if (r < 0)
                return r;
        r = read_u64_file(path, true, &v);
        if (r == -ENOENT)
                v = UINT64_MAX;
        else if (r < 0)
                return r;
        *ret = v >= LIMIT_UNLIMITED ? UINT64_MAX : v;
        return 0;
}

static int read_usage(const char *dir, const char *file, uint64_t *ret) {
        char path[PATH_MAX];
        int r;

        r = pathf(path, sizeof(path), "%s/%s", dir, file);
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
        return pathf(m->source, sizeof(m->source), "%s/%s", dir, l->limit_file);
}

/* "/a/b" → "/a" → "/"; false once at "/". */
static bool parent(char *cgpath) {
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

                r = pathf(dir, PATH_MAX, "%s%s", base, cg_suffix(cur));
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
        } while (parent(cur));
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
                r = pathf(path, sizeof(path), "%s/memory.failcnt", dir);
                if (r >= 0)
                        r = read_u64_file(path, false, &m->events_max);
                if (r < 0 && r != -ENOENT)
                        return r;
        }
        r = pathf(path, sizeof(path), "%s/%s", dir, version == 2 ? "memory.events" : "memory.oom_control");
        if (r >= 0)
                r = read_small(path, buf, sizeof(buf));
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r == -EFBIG ? -EBADMSG : r;
        return version == 2 ? parse_keyed(buf, v2, ELEMENTSOF(v2)) : parse_keyed(buf, v1, ELEMENTSOF(v1));
}

static bool is_dir(const char *path) {
        struct stat st;

        return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Where our cgroup lives: the memory hierarchy of v1 when memory is bound
 * there (a hybrid system), else v2, at /sys/fs/cgroup or, on hybrid
 * systems, /sys/fs/cgroup/unified. */
static int find_base(const char *root, const struct self_cgroup *sc, int *ret_version, char *ret_base) {
        const char *pre = root_prefix(root);
        char dir[PATH_MAX];
        int version = sc->v1_memory[0] ? 1 : 2;
        const char *cg = version == 1 ? sc->v1_memory : sc->v2;
        const char *const v1[] = { "memory", sc->v1_controllers };
        const char *const v2[] = { "", "/unified" };

        if (!cg[0] || !cgpath_safe(cg))
                return -ENOENT;
        for (size_t i = 0; i < 2; i++) {
                if (pathf(ret_base, PATH_MAX, version == 1 ? "%s/sys/fs/cgroup/%s" : "%s/sys/fs/cgroup%s", pre,
                          version == 1 ? v1[i] : v2[i]) < 0 ||
                    pathf(dir, sizeof(dir), "%s%s", ret_base, cg_suffix(cg)) < 0)
                        return -ENAMETOOLONG;
                if (is_dir(dir)) {
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
        r = read_self_cgroup(root, sc);
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
