/* SPDX-License-Identifier: MIT */
#pragma once

/* The scan behind `ashm ls` and `ashm top` (ls-scan.c): every memfd region
 * held by a process we may read, through /proc, matched with the pin
 * state ashmd keeps. A table of rows, one per process and region (the
 * holder view), or one per region (the region view); the columns of
 * both are described by one table in ls.c, so that a new kind of row
 * (channels, say) is a new set of columns, not a new printer. */

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/types.h>

struct proto_list_entry;

enum ls_hold { LS_HOLD_FD, LS_HOLD_MAP, LS_HOLD_ASHMD, LS_HOLD_REGION };

struct ls_row {
        pid_t pid;          /* 0 in the region view */
        uid_t uid;          /* the process's owner; (uid_t) -1: unknown */
        uid_t region_uid;   /* the region's owner; (uid_t) -1: unknown */
        char *comm;
        enum ls_hold hold;
        int fd;             /* LS_HOLD_FD */
        unsigned long map_start, map_end; /* LS_HOLD_MAP */
        uint64_t dev, inode;
        int64_t size, resident; /* -1: not readable */
        int64_t pss;        /* resident / holders; -1: not readable */
        unsigned holders;   /* processes seen holding the region */
        pid_t *pids;        /* region view: the holders, sorted */
        /* From ashmd: NULL when it does not track the region. */
        const struct proto_list_entry *pins;
        char *name;
        bool channel;       /* holds an ashm channel (ashm_chan_is_channel) */
};

struct ls_denied {
        pid_t pid;
        char comm[64]; /* "" when even that was hidden */
};

struct ls_scan {
        struct ls_row *rows;
        size_t n, cap;
        struct ls_denied *denied; /* processes skipped for lack of permission */
        size_t n_denied;
        bool sizes_denied;        /* map-only rows whose size needs root */
        /* What ashmd told us. */
        struct proto_list_entry *pins; /* sorted by dev, inode */
        size_t n_pins;
        int pins_error; /* of the LIST request; -ECONNREFUSED: no daemon */
};

/* Scan everything, holder view, with holders and pss filled in. Never
 * starts a daemon. 0, or -ENOMEM, or the error reading /proc. */
int ls_scan(struct ls_scan *s);

/* The region view of the rows of s that keep[i] selects (NULL: all):
 * one row per region, holders counted over every row of s. */
int ls_regions(const struct ls_scan *s, const bool *keep, struct ls_scan *ret);

void ls_scan_done(struct ls_scan *s);

/* Bytes from the daemon, as a size to show: none is past 2^63. */
int64_t ls_pin_bytes(uint64_t v);

/* The name of uid into buf, or its number when it has none; "-" for
 * (uid_t) -1. Names are cached: a table asks for the same few often. */
void ls_user_name(uid_t uid, char *buf, size_t len);

/* The rows of s as ls prints them, to f: the region view or the holder
 * view, with the columns cols (NULL: ls's), sorted by sort (as --sort
 * takes it; NULL: ls's order), which reorders s. bytes and total as -b
 * and -t. With f NULL, only sorts. -EINVAL for an unknown column (said on stderr), -ENOMEM. */
int ls_table(FILE *f, struct ls_scan *s, bool regions, const char *cols, const char *sort, bool bytes, bool total);

/* One row of the region view as a JSON object, on stdout. */
void ls_json_put_region(const struct ls_row *r);

/* Two rows' regions in (dev, inode) order, as qsort compares. */
int ls_region_cmp(const struct ls_row *x, const struct ls_row *y);

/* The indices of the rows of s, grouped by region (dev, inode), then
 * pid; NULL on -ENOMEM. Free it. */
size_t *ls_by_region(const struct ls_scan *s);
