/* SPDX-License-Identifier: MIT */
/* ashm kv: finding the STORE the command line names (a file, @NAME, or
 * PID:FD), and saying in words why a request on it failed. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ashm.h"
#include "cli.h"
#include "fd-util.h"
#include "kv-cmd.h"
#include "kv-mmkv.h"
#include "kv-value.h"
#include "macro.h"

enum store_kind kv_store_kind(const char *store) {
        if (store[0] == '@')
                return STORE_NAME;
        return cli_looks_like_target(store) ? STORE_TARGET : STORE_FILE;
}

/* The file behind /proc/PID/fd/FD, if it is a regular file (memfds are).
 * stat() first: opening a FIFO can block, opening a device can have
 * side effects. */
static int target_open(const char *store, bool write) {
        _cleanup_close_ int fd = -1;
        char path[64];
        struct stat st;
        int pid, target;

        if (!cli_parse_target(store, &pid, &target))
                return -EINVAL;
        snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, target);
        if (stat(path, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EMEDIUMTYPE;
        fd = open(path, (write ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return negative_errno();
        /* The process may have put something else at FD since stat(). */
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return -EMEDIUMTYPE;
        return TAKE_FD(fd);
}

/* Never starts a daemon: a new one would hold no names. */
static int name_lookup(const char *store, bool write, ashm_region **ret_region) {
        if (!cli_name_valid(store + 1))
                return -EINVAL;
        cli_no_autostart();
        return ashm_lookup(store + 1, write ? ASHM_LOOKUP_WRITE : 0, ret_region);
}

int kv_store_open_step(const char *store, unsigned flags, ashm_kv **ret_kv, enum store_step *ret_step) {
        bool write = !(flags & ASHM_KV_RDONLY);
        _cleanup_close_ int fd = -1;
        ashm_region *region = NULL;
        int r;

        switch (kv_store_kind(store)) {
        case STORE_NAME:
                *ret_step = STEP_LOOKUP;
                r = name_lookup(store, write, &region);
                if (r < 0)
                        return r;
                *ret_step = STEP_KV;
                r = ashm_kv_open_region(region, flags, ret_kv);
                ashm_region_close(region);
                return r;
        case STORE_TARGET:
                *ret_step = STEP_PROC;
                fd = target_open(store, write);
                if (fd < 0)
                        return fd;
                *ret_step = STEP_KV;
                return ashm_kv_open_fd(fd, flags, ret_kv);
        default:
                *ret_step = STEP_KV;
                return ashm_kv_open(store, flags, ret_kv);
        }
}

int kv_store_open(const char *store, unsigned flags, ashm_kv **ret_kv) {
        enum store_step step;

        return kv_store_open_step(store, flags, ret_kv, &step);
}

/* A read-only fd on the store's file or region, for check and repair,
 * which read a store that may be too damaged to open. */
int kv_store_fd(const char *store, enum store_step *ret_step) {
        ashm_region *region = NULL;
        int fd, r;

        switch (kv_store_kind(store)) {
        case STORE_NAME:
                *ret_step = STEP_LOOKUP;
                r = name_lookup(store, false, &region);
                if (r < 0)
                        return r;
                fd = fcntl(ashm_region_fd(region), F_DUPFD_CLOEXEC, 3);
                r = fd < 0 ? negative_errno() : fd;
                ashm_region_close(region);
                return r;
        case STORE_TARGET:
                *ret_step = STEP_PROC;
                return target_open(store, false);
        default:
                *ret_step = STEP_KV;
                fd = open(store, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
                return fd < 0 ? negative_errno() : fd;
        }
}

int kv_oom(void) {
        fputs("ashm: out of memory\n", stderr);
        return EXIT_FAILURE;
}

/* A key, or another value from the command line, as a shell word. */
int kv_with_word(const char *s, char **ret) {
        *ret = shell_word(s);
        return *ret ? 0 : -ENOMEM;
}

/* libashm's word on the failure just returned, as ": DETAIL", escaped
 * (it may quote a key), or "". */
const char *kv_detail(char *buf, size_t len) {
        _cleanup_free_ char *d = NULL;
        const char *s = ashm_kv_error_detail();

        buf[0] = '\0';
        if (s && *s && (d = cescape(s)))
                snprintf(buf, len, ": %s", d);
        return buf;
}

/* A request about key (NULL: about the store) failed with r. */
int kv_failed(const struct kv_cmd *c, const char *doing, const char *key, int r) {
        _cleanup_free_ char *k = NULL;
        char d[1100];

        if (key && kv_with_word(key, &k) < 0)
                return kv_oom();
        if (r == -ENOENT && key)
                fprintf(stderr, "ashm: no such key %s in %s\n", k, c->shown);
        else if (r == -EBADMSG && key)
                fprintf(stderr, "ashm: the record of %s in %s is damaged%s (see 'ashm kv %s check')\n", k,
                        c->shown, kv_detail(d, sizeof(d)), c->shown);
        else if (r == -EROFS)
                fprintf(stderr, "ashm: cannot %s: %s is read-only\n", doing, c->shown);
        else if (r == -EPROTOTYPE && key && *kv_detail(d, sizeof(d)))
                /* libashm's words: "key "K" holds a string, not an int32". */
                fprintf(stderr, "ashm: cannot %s %s in %s%s\n", doing, k, c->shown, d);
        else if (key)
                fprintf(stderr, "ashm: cannot %s %s in %s: %s\n", doing, k, c->shown, strerror(-r));
        else
                fprintf(stderr, "ashm: cannot %s %s: %s\n", doing, c->shown, strerror(-r));
        return EXIT_FAILURE;
}

static int lookup_failed(const struct kv_cmd *c, int r) {
        if (r == -EACCES) {
                fprintf(stderr, "ashm: you may only read %s, and '%s' writes to it\n", c->shown, c->verb->name);
                return EXIT_FAILURE;
        }
        return cli_name_failed("look up", c->store + 1, r);
}

static int target_failed(const struct kv_cmd *c, int r) {
        char path[64], proc[32];
        int pid = 0, fd = 0;

        cli_parse_target(c->store, &pid, &fd);
        snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
        snprintf(proc, sizeof(proc), "/proc/%d", pid);
        if (r == -ENOENT && access(proc, F_OK) < 0)
                fprintf(stderr, "ashm: no process %d (see 'ashm ls')\n", pid);
        else if (r == -ENOENT)
                fprintf(stderr, "ashm: process %d has no fd %d (see 'ashm ls')\n", pid, fd);
        else if (r == -EMEDIUMTYPE)
                fprintf(stderr, "ashm: %s is not a file or a memfd region, so not a store\n", c->store);
        else if (r == -EACCES || r == -EPERM)
                fprintf(stderr, "ashm: cannot open %s: %s (another user's process needs that user or root)\n",
                        path, strerror(-r));
        else
                fprintf(stderr, "ashm: cannot open %s: %s\n", path, strerror(-r));
        return EXIT_FAILURE;
}

static int open_failed(const struct kv_cmd *c, int r) {
        const char *s = c->shown;
        char d[1100];

        if (r == -ENOENT && c->kind == STORE_FILE && c->verb->open != NO_OPEN &&
            (c->verb->open & ASHM_KV_CREATE))
                fprintf(stderr, "ashm: cannot create store %s: %s\n", s, strerror(-r));
        else if (r == -ENOENT && c->kind == STORE_FILE)
                fprintf(stderr, "ashm: no such store %s ('ashm kv %s set KEY VALUE' creates it)\n", s, s);
        else if (r == -ENODATA)
                fprintf(stderr, "ashm: %s is empty: not a store yet ('ashm kv %s set KEY VALUE' makes it one)\n", s,
                        s);
        else if (r == -EBADMSG && *kv_detail(d, sizeof(d)))
                fprintf(stderr, "ashm: cannot open store %s%s (see 'ashm kv %s check')\n", s, d, s);
        else if (r == -EBADMSG)
                fprintf(stderr, "ashm: %s is not an ashm kv store, or its header is damaged (see 'ashm kv %s check')\n",
                        s, s);
        else if (r == -EUCLEAN)
                fprintf(stderr,
                        "ashm: %s was open when the machine went down, and records written since its last sync "
                        "are damaged%s: run 'ashm kv %s repair'\n",
                        s, kv_detail(d, sizeof(d)), s);
        else if (r == -EPROTONOSUPPORT)
                fprintf(stderr, "ashm: %s is a store of a newer format than libashm %s reads%s\n", s,
                        ashm_version(), kv_detail(d, sizeof(d)));
        else
                fprintf(stderr, "ashm: cannot open store %s: %s\n", s, strerror(-r));
        return EXIT_FAILURE;
}

int kv_store_failed(const struct kv_cmd *c, enum store_step step, int r) {
        if (r == -ENOMEM)
                return kv_oom();
        if (step == STEP_LOOKUP)
                return lookup_failed(c, r);
        if (step == STEP_PROC)
                return target_failed(c, r);
        return open_failed(c, r);
}

