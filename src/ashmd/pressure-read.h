/* SPDX-License-Identifier: MIT */
#pragma once

/* What pressure.c (the pollable source) shares with pressure-read.c
 * (the readers of /proc and cgroupfs). */

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

/* What /proc/self/cgroup says about us. Empty strings when absent. */
struct self_cgroup {
        char v2[PATH_MAX];
        char v1_memory[PATH_MAX];
        char v1_controllers[256];
};

/* Formats into buf; -ENAMETOOLONG when it does not fit. */
_printf_(3, 4) int pressure_pathf(char *buf, size_t size, const char *fmt, ...);
/* "" for the real root, so that paths never start with "//". */
const char *pressure_root_prefix(const char *root);
/* A cgroup path as a suffix: "/" joins as "" so no "//" appears. */
const char *pressure_cg_suffix(const char *cgpath);
int pressure_read_self_cgroup(const char *root, struct self_cgroup *ret);
/* A process outside its cgroup namespace's root sees "/../x": such a path
 * would lead out of the mount, so it is refused. */
bool pressure_cgpath_safe(const char *p);

/* A cgroup memory limit of 2^62 or more means none (the kernel's
 * "unlimited" in v1, rounded to pages). */
#define CGROUP_LIMIT_UNLIMITED (UINT64_C(1) << 62)

/* "/a/b" → "/a" → "/"; false once at "/". */
bool pressure_cg_parent(char *cgpath);

/* Whether path is a directory (stat(2), links followed). */
bool pressure_is_dir(const char *path);
