/* SPDX-License-Identifier: MIT */
#pragma once

/* Functions shared between libashm's modules, all fd-based so that the
 * region handles and the Android compat APIs (which speak raw fds) run the
 * same code. Not exported. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "macro.h"

#define _public_ __attribute__((visibility("default")))

#define ASHM_PROT_ALL (PROT_READ | PROT_WRITE | PROT_EXEC)
#define ASHM_SEALS_FROZEN (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

/* The seals that make a memfd a region (AOSP's): its size is fixed. */
#define ASHM_SEALS_SIZE (F_SEAL_GROW | F_SEAL_SHRINK)

enum {
        ASHM__FD_EXEC = 1u << 0,      /* exec as in memfd_new() */
        ASHM__FD_SEAL_SIZE = 1u << 1, /* seal it ASHM_SEALS_SIZE once sized */
};

/* Create a memfd region fd of size bytes; flags ASHM__FD_*. */
int ashm__fd_create(const char *name, uint64_t size, unsigned flags);

/* The protection mask of a region fd, or -errno. */
int ashm__fd_get_prot(int fd);

/* Reduce the protection mask of a region fd (see ashm_region_set_prot). */
int ashm__fd_set_prot(int fd, int prot);

/* A region's fd for the library's own use, which never hands it out or
 * changes the file's size or mask: unlike ashm_region_fd(), the handle
 * keeps what it knows. *ret_known_size is the region's size when that is
 * known without an fstat (created in this process with its size sealed,
 * the fd never given out, no fork since), else UINT64_MAX; such a fd is
 * also O_RDWR (memfd_create). */
struct ashm_region;
int ashm__region_fd(const struct ashm_region *region, uint64_t *ret_known_size);

/* Check a pin/unpin range the way the Ashmem driver does, against a
 * region of size bytes: page-aligned, len 0 meaning to the end of the
 * last page, nothing past it. */
int ashm__pin_range_check(uint64_t size, uint64_t offset, uint64_t len);

/* Pin, unpin or query a range of the region fd, with Ashmem's return
 * values (ASHM_WAS_PURGED/NOT_PURGED, 0, ASHM_IS_PINNED/UNPINNED) and
 * argument checks (ashm__pin_range_check). Through the region's shared
 * pin state, registered with ashmd on first use in the process; without
 * a daemon (ASHM_NO_AUTOSTART=1 and none running) pins are validated
 * only and nothing is ever purged, Android's memfd mode. */
int ashm__fd_pin(int fd, uint64_t offset, uint64_t len);
int ashm__fd_unpin(int fd, uint64_t offset, uint64_t len);
int ashm__fd_get_pin_status(int fd, uint64_t offset, uint64_t len);

/* What a pin call does to its range. */
enum pin_op {
        PIN_OP_PIN = 0,
        PIN_OP_UNPIN = 1,
        PIN_OP_STATUS = 2,
};

/* The handle path (region.c): *cache is the handle's slot for the
 * region's pin-state reference, filled on first use. Released with
 * ashm__pins_release() at close. */
struct pinref;
int ashm__pins_op(int fd, struct pinref **cache, uint64_t offset, uint64_t len, enum pin_op op);
void ashm__pins_release(struct pinref *ref);
/* 1 if any page of [offset, offset + len) was purged (and not pinned
 * since), else 0; 0 for a NULL ref. */
int ashm__pins_purged(struct pinref *ref, uint64_t offset, uint64_t len);

/* The cutils pins (compat.c): op as for ashm__pins_op, through a cache of
 * each fd number's region. ashm__fdcache_trusted is set by the /dev/ashmem
 * shim, which calls ashm__fdcache_forget*() for every fd number that
 * close(), dup2(), dup3(), close_range() or closefrom() change. */
int ashm__fdcache_pin(int fd, uint64_t offset, uint64_t len, enum pin_op op);
/* The shim's fast path only: true if fd's slot answered (*ret set); for a
 * pin or unpin of a range inside the region, through a known fd. */
bool ashm__fdcache_try(int fd, uint64_t offset, uint64_t len, enum pin_op op, int *ret);
void ashm__fdcache_forget(int fd);
void ashm__fdcache_forget_from(unsigned first, unsigned last);
extern bool ashm__fdcache_trusted;

/* Ask ashmd to purge unpinned pages, least recently unpinned first:
 * bytes 0 means every unpinned page. Without ASHM_PURGE_ALL_USERS only
 * the caller's own regions (those registered by processes of its uid);
 * with it, every region (root only, else -EPERM). *ret_lru_pages is the
 * number of unpinned pages before the purge (what the driver's
 * PURGE_ALL_CACHES returns), *ret_purged the bytes purged; either may be
 * NULL. -ECONNREFUSED when no daemon runs and none may be started. */
int ashm__purge(uint64_t bytes, unsigned flags, uint64_t *ret_lru_pages, uint64_t *ret_purged);
