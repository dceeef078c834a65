/* SPDX-License-Identifier: MIT */
#pragma once

/* The daemon's registry of regions: for each region some client proved it
 * holds (by sending its fd), the pin-state block every holder shares, the
 * daemon's own fd to punch holes with, and who holds it. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "pinstate.h"

#define REGION_CHARGED_MAX 4

struct region {
        uint64_t dev, ino;
        int fd;             /* the daemon's, read-write where it could get one */
        bool punchable;     /* fd is writable: fallocate can purge */
        int state_fd;       /* the pin-state memfd handed to holders */
        void *map;          /* the daemon's mapping of it (NULL while released) */
        size_t map_len;
        struct pinstate *ps;
        uint64_t npages;
        uint32_t uid;       /* the region's owner */
        uid_t charge_uid;   /* whose memory quota pays for the record and block */
        uint64_t born_ns;   /* the memfd's birth (wall clock), 0 if unknown */
        unsigned holders;   /* connections that registered it */
        /* The memory cgroups its pages are charged to, as ids of cgroup.c
         * (0: free slot): those of the clients that registered it. */
        uint32_t charged[REGION_CHARGED_MAX];
        char name[256];
        struct region *next;
};

struct registry {
        struct region *regions;
        unsigned n_regions;
        int clock_fd;             /* the LRU clock every block stamps unpins from */
        uint64_t *clock;
        struct tomb *tombs;       /* what was purged in regions let go */
        unsigned n_tombs;
        uint64_t purges, purged_total;
        /* Set (wall clock, ns) when this daemon found that the one before
         * it died with regions: regions born earlier count as purged. */
        uint64_t restarted_ns;
};

/* Make the shared LRU clock. It starts at the wall clock in ns, so the
 * stamps of blocks taken over from an earlier daemon are older than any
 * this one gives (it would take over one unpin per ns to catch up). */
int registry_init(struct registry *reg);

/* Find or make the region of fd (borrowed), taking over the block of
 * adopt_fd (borrowed, or -1) when the registry has none for it. The new
 * holder is counted. Errors: -EMEDIUMTYPE not a memfd, -EFBIG too large,
 * and those of memfd_create(), mmap(). */
/* Register the region fd (borrowed) for a connection of charge_uid, who
 * pays for a new region's record and block (quota.h). adopt_fd: a block
 * the caller used with an earlier daemon, or -1. Errors: -EBADF (O_PATH
 * too), -EMEDIUMTYPE not a memfd, -EPERM adopt_fd from a holder that
 * cannot write the region, -EFBIG, -EDQUOT, -ENOMEM. */
int registry_register(struct registry *reg, int fd, int adopt_fd, uid_t charge_uid, struct region **ret);

/* fstat of a client's memfd; an O_PATH fd is -EBADF. */
struct stat;
int memfd_client_stat(int fd, struct stat *ret_st);

/* A holder is gone: when none is left and nobody maps the block any
 * more, the region's unpinned pages are purged and it is let go. */
void registry_unhold(struct registry *reg, struct region *r);

/* Let go of regions whose last holder left while their block was still
 * mapped somewhere (an inherited mapping), once it no longer is. Called
 * from the daemon's timer. */
void registry_maintain(struct registry *reg);

struct region *registry_find(struct registry *reg, uint64_t dev, uint64_t ino);

/* Totals over every region (uid (uid_t)-1) or one owner's, in pages. */
struct registry_totals {
        uint64_t pinned, unpinned, purging, purged;
};
void registry_totals(struct registry *reg, uid_t uid, struct registry_totals *ret);

/* Purge unpinned pages, least recently unpinned first, until at least
 * bytes are gone (UINT64_MAX: all of them), in the regions of uid (or of
 * everyone with (uid_t)-1). Returns the bytes purged. */
uint64_t registry_purge(struct registry *reg, uid_t uid, uint64_t bytes);

/* registry_purge() limited to the regions keep() accepts (cgroup.c:
 * the regions charged to one memory cgroup). */
uint64_t registry_purge_filtered(struct registry *reg, bool (*keep)(const struct region *r, void *userdata),
                                 void *userdata, uint64_t bytes);

void registry_free(struct registry *reg);
