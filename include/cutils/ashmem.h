/* SPDX-License-Identifier: MIT */
/*
 * Android's libcutils ashmem API, served by libashm on plain Linux with
 * the same semantics and errno: every function returns -1 and sets errno
 * on failure, as libcutils does. Regions are memfds (see <ashm.h>).
 */
#ifndef _CUTILS_ASHMEM_H
#define _CUTILS_ASHMEM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 1 if fd is an ashmem region, 0 for anything else. A region is a memfd
 * sealed F_SEAL_GROW|F_SEAL_SHRINK, as in today's AOSP: every region ashm
 * makes is. A memfd someone else made, unsealed or carrying only one of
 * the two seals, is not (0); nor are -1, a closed fd, /dev/null, a pipe
 * or a file. The one exception is a region of libashm-devshim.so before
 * its first mmap (a memfd named "dev/ashmem..." that is not sealed yet),
 * which the driver counts as ashmem: 1. Never fails. */
int ashmem_valid(int fd);

/* Create a region of size bytes named name (NULL: "dev/ashmem"; longer
 * names are truncated, as the driver does). Its size is fixed: sealed
 * F_SEAL_GROW|F_SEAL_SHRINK as AOSP's memfd regions are, so no holder can
 * truncate it under another's mapping. Returns a new fd with FD_CLOEXEC, whose protection mask is PROT_READ|PROT_WRITE|PROT_EXEC,
 * or -1 with errno set. */
int ashmem_create_region(const char *name, size_t size);

/* Reduce the region's protection mask to prot: 0, or -1 with errno
 * EINVAL if prot asks for a bit the mask lacks or a bit outside
 * PROT_READ|PROT_WRITE|PROT_EXEC. Every holder in every process sees the
 * new mask; existing mappings keep theirs. Removing PROT_WRITE is a seal
 * the kernel enforces on every mmap(), write() and mprotect(). Removed
 * PROT_EXEC and PROT_READ are enforced by libashm's mapping calls and the
 * /dev/ashmem shim, not by a plain mmap(); PROT_READ lives in the file's
 * mode, so only the region's owner (or root) may remove it (EPERM
 * otherwise). */
int ashmem_set_prot_region(int fd, int prot);

/* Pin or unpin [offset, offset + len): page-aligned, len 0 meaning to
 * the end. Pin returns ASHMEM_NOT_PURGED (0) or ASHMEM_WAS_PURGED (1),
 * unpin 0; -1 with errno EINVAL for an unaligned or out-of-range range.
 *
 * For every function here an fd that is not open fails with EBADF and an
 * fd that is not a region with ENOTTY, as the driver's ioctls do. */
int ashmem_pin_region(int fd, size_t offset, size_t len);
int ashmem_unpin_region(int fd, size_t offset, size_t len);

/* The region's size in bytes, exact, or -1 with errno set (EOVERFLOW
 * for a region larger than INT_MAX). */
int ashmem_get_size_region(int fd);

#ifdef __cplusplus
}
#endif

#ifndef __ASHMEMIOC /* <linux/ashmem.h> defines them too, identically */

#define ASHMEM_NAME_LEN 256
#define ASHMEM_NAME_DEF "dev/ashmem"

/* ashmem_pin_region() returns whether the range was purged while unpinned. */
#define ASHMEM_NOT_PURGED 0
#define ASHMEM_WAS_PURGED 1

/* ASHMEM_GET_PIN_STATUS returns whether the whole range is pinned. */
#define ASHMEM_IS_UNPINNED 0
#define ASHMEM_IS_PINNED 1

#endif /* !__ASHMEMIOC */

#endif /* _CUTILS_ASHMEM_H */
