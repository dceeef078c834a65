/* SPDX-License-Identifier: MIT */
#pragma once

/* What cgroup.c (the watches, the sizing, the events) uses of
 * cgroup-proc.c (the reading of /proc and cgroupfs). */

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct proc_cgroup {
        char v1_memory[PATH_MAX]; /* path in the v1 memory hierarchy */
        char v1_mount[256];       /* its mount's name (memory, or co-mounted) */
        char v2[PATH_MAX];
};

/* The whole of a small file, NUL-terminated; its length or -errno. */
int cgroup_read_text(const char *path, char *buf, size_t size);
/* One number, or "max" (UINT64_MAX); values of 2^62 or more mean none. */
int cgroup_read_u64(const char *dir, const char *file, uint64_t *ret);
/* "/a/b" → "/a" → "/"; false once at "/". */
/* The peer's /proc/PID/cgroup under the root prefix pre ("" for /), read
 * while a pidfd proves that PID is still the peer. */
int cgroup_peer(const char *pre, int sock, pid_t pid, struct proc_cgroup *ret);
