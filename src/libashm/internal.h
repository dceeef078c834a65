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

/* Create a memfd region fd of size bytes. exec as in memfd_new(). */
int ashm__fd_create(const char *name, uint64_t size, bool exec);

/* fstat() fd and check it is a memfd: -EBADF, -EMEDIUMTYPE. */
int ashm__fd_stat(int fd, struct stat *ret_st);

/* The protection mask of a region fd, or -errno. */
int ashm__fd_get_prot(int fd);

/* Reduce the protection mask of a region fd (see ashm_region_set_prot). */
int ashm__fd_set_prot(int fd, int prot);

/* Check a pin/unpin range the way the Ashmem driver does, against a
 * region of size bytes: page-aligned, len 0 meaning to the end of the
 * last page, nothing past it. */
int ashm__pin_range_check(uint64_t size, uint64_t offset, uint64_t len);

/* Pin or unpin a range of the region fd. */
int ashm__fd_pin(int fd, uint64_t offset, uint64_t len);
int ashm__fd_unpin(int fd, uint64_t offset, uint64_t len);

static inline uint64_t page_align_u64(uint64_t x, uint64_t page) {
        return (x + page - 1) & ~(page - 1);
}
