/* SPDX-License-Identifier: MIT */
/*
 * The Android NDK's shared memory API (ASharedMemory), served by libashm
 * on plain Linux with the NDK's semantics.
 */
#ifndef ANDROID_SHARED_MEMORY_H
#define ANDROID_SHARED_MEMORY_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Create a region of size bytes; returns an fd (FD_CLOEXEC) the caller
 * owns. Its size is fixed (sealed F_SEAL_GROW|F_SEAL_SHRINK, as Android's
 * memfd regions are). size 0 returns -EINVAL; other failures return -1 with errno set,
 * as on Android. The name appears in /proc/PID/maps as /memfd:NAME. */
int ASharedMemory_create(const char *name, size_t size);

/* The region's size, or 0 if fd is not a region. */
size_t ASharedMemory_getSize(int fd);

/* Restrict access: prot may only remove PROT_READ, PROT_WRITE or
 * PROT_EXEC, never add them back. It applies to every fd of the region in
 * every process; existing mappings are not affected. 0, or -1 with errno
 * EINVAL. */
int ASharedMemory_setProt(int fd, int prot);

#ifdef __cplusplus
}
#endif

#endif /* ANDROID_SHARED_MEMORY_H */
