/* SPDX-License-Identifier: MIT */
/* The cgroup module's reading of /proc and cgroupfs: small files, whose
 * cgroup a peer is in (/proc/PID/cgroup), leaving the starter's cgroup. */
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

#include "cgroup-proc.h"
#include "cgroup.h"
#include "fd-util.h"
#include "log.h"
#include "macro.h"
#include "pressure-read.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

/* At or above 2^62 bytes a limit means none (v1 prints PAGE_COUNTER_MAX). */

/* ---- small file helpers ---- */

int cgroup_read_text(const char *path, char *buf, size_t size) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        ssize_t n;

        if (fd < 0)
                return -errno;
        do
                n = read(fd, buf, size - 1);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        return (int) n;
}

/* One number, or "max" (UINT64_MAX); values of 2^62 or more mean none. */
int cgroup_read_u64(const char *dir, const char *file, uint64_t *ret) {
        char path[PATH_MAX], buf[64], *end;
        unsigned long long v;
        int r;

        if (snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int) sizeof(path))
                return -ENAMETOOLONG;
        r = cgroup_read_text(path, buf, sizeof(buf));
        if (r < 0)
                return r;
        if (strncmp(buf, "max", 3) == 0) {
                *ret = UINT64_MAX;
                return 0;
        }
        errno = 0;
        v = strtoull(buf, &end, 10);
        if (errno || end == buf || (*end && *end != '\n'))
                return -EBADMSG;
        *ret = v >= CGROUP_LIMIT_UNLIMITED ? UINT64_MAX : (uint64_t) v;
        return 0;
}

/* An absolute path with no ".." step. */
static bool cgpath_safe(const char *p) {
        return p[0] == '/' && pressure_cgpath_safe(p);
}

/* ---- whose cgroup ---- */

static bool has_memory(const char *list) {
        size_t n = strlen("memory");

        for (const char *p = list; (p = strstr(p, "memory")); p += n)
                if ((p == list || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
                        return true;
        return false;
}

static int cgroup_parse_proc(char *text, struct proc_cgroup *ret) {
        *ret = (struct proc_cgroup) {};
        for (char *save = NULL, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

                if (!c2 || !cgpath_safe(c2 + 1) || strlen(c2 + 1) >= PATH_MAX)
                        continue;
                *c2 = '\0';
                if (strcmp(line, "0:") == 0 && c1 + 1 == c2) {
                        strcpy(ret->v2, c2 + 1);
                        continue;
                }
                /* Co-mounted controllers ("cpu,memory") are mounted under
                 * that name; watch_new() tries "memory" first. */
                if (has_memory(c1 + 1)) {
                        snprintf(ret->v1_mount, sizeof(ret->v1_mount), "%s", c1 + 1);
                        strcpy(ret->v1_memory, c2 + 1);
                }
        }
        return ret->v1_memory[0] || ret->v2[0] ? 0 : -ENOENT;
}

/* The peer's /proc/PID/cgroup, read while a pidfd proves that PID is still
 * the peer: SO_PEERPIDFD names the very process that connected; without
 * it (kernels before 6.5) a pidfd opened from the SO_PEERCRED pid at least
 * proves that the pid was not recycled between that open and the read. */
int cgroup_peer(const char *pre, int sock, pid_t pid, struct proc_cgroup *ret) {
        _cleanup_close_ int pidfd = -1;
        _cleanup_free_ char *buf = malloc(16 * PATH_MAX);
        socklen_t len = sizeof(pidfd);
        char path[PATH_MAX];
        int r;

        if (!buf)
                return -ENOMEM;
        if (getsockopt(sock, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) < 0) {
                pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
                if (pidfd < 0)
                        return -errno;
        }
        snprintf(path, sizeof(path), "%s/proc/%d/cgroup", pre, (int) pid);
        r = cgroup_read_text(path, buf, 16 * PATH_MAX);
        if (r < 0)
                return r;
        if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0)
                return -ESRCH; /* gone: what we read may be another's */
        return cgroup_parse_proc(buf, ret);
}

/* ---- leaving the starter's cgroup ---- */

static int move_to_sibling(const char *base, const char *cgpath, const char **ret_why) {
        char dir[PATH_MAX], cur[PATH_MAX], procs[PATH_MAX + 32], pid[32];
        _cleanup_close_ int fd = -1;

        snprintf(cur, sizeof(cur), "%s", cgpath);
        if (!cgpath_safe(cur) || !pressure_cg_parent(cur)) {
                *ret_why = "already in the root cgroup";
                return -EALREADY;
        }
        if (snprintf(dir, sizeof(dir), "%s%s/ashmd", base, strcmp(cur, "/") == 0 ? "" : cur) >= (int) sizeof(dir))
                return *ret_why = "path too long", -ENAMETOOLONG;
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return *ret_why = "cannot make a sibling cgroup", -errno;
        snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
        fd = open(procs, O_WRONLY | O_CLOEXEC);
        snprintf(pid, sizeof(pid), "%d", (int) getpid());
        if (fd < 0 || write(fd, pid, strlen(pid)) < 0)
                return *ret_why = "cannot move into the sibling cgroup", -errno;
        return 0;
}

int cgroups_leave_starter(const char **ret_why) {
        _cleanup_free_ char *buf = malloc(16 * PATH_MAX);
        struct proc_cgroup pc;
        int r, r2 = -ENOENT;
        const char *why2 = NULL;

        *ret_why = "no memory cgroup";
        if (!buf)
                return -ENOMEM;
        if (cgroup_read_text("/proc/self/cgroup", buf, 16 * PATH_MAX) < 0 || cgroup_parse_proc(buf, &pc) < 0)
                return -ENOENT;
        /* The memory controller's hierarchy decides where pages are charged. */
        r = pc.v1_memory[0] ? move_to_sibling("/sys/fs/cgroup/memory", pc.v1_memory, ret_why)
                            : move_to_sibling(pressure_is_dir("/sys/fs/cgroup/unified") ? "/sys/fs/cgroup/unified"
                                                                               : "/sys/fs/cgroup",
                                              pc.v2, ret_why);
        /* On a hybrid system also leave the v2 cgroup, for PSI; best effort. */
        if (pc.v1_memory[0] && pc.v2[0] && pressure_is_dir("/sys/fs/cgroup/unified"))
                r2 = move_to_sibling("/sys/fs/cgroup/unified", pc.v2, &why2);
        (void) r2;
        return r;
}
