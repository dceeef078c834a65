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
#include "pressure-read.h"

/* A $MEMORY_PRESSURE_WRITE payload is a trigger line; refuse anything big. */
#define PAYLOAD_MAX 4096
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

        r = pressure_read_self_cgroup(root, &sc);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return appendf(&p->notes, "; ", "%s/proc/self/cgroup: %s", pressure_root_prefix(root), strerror(-r));
        if (!sc.v2[0])
                return appendf(&p->notes, "; ", "%s/proc/self/cgroup: no cgroup v2 entry", pressure_root_prefix(root));
        if (!pressure_cgpath_safe(sc.v2))
                return appendf(&p->notes, "; ", "cgroup %s: outside our cgroup namespace", sc.v2);
        for (size_t i = 0; i < ELEMENTSOF(bases); i++) {
                if (pressure_pathf(path, sizeof(path), "%s%s%s/memory.pressure", pressure_root_prefix(root),
                                   bases[i], pressure_cg_suffix(sc.v2)) < 0) {
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

        if (pressure_pathf(path, sizeof(path), "%s/proc/pressure/memory", pressure_root_prefix(root)) < 0)
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
