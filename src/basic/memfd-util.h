/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

/* Constants newer than the C library headers on Debian 12. */
#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif

/* The longest name memfd_create() accepts: NAME_MAX less "memfd:". */
#define MEMFD_NAME_MAX 249

/* memfd_create(name, MFD_CLOEXEC|MFD_ALLOW_SEALING|extra). With exec false
 * it asks for MFD_NOEXEC_SEAL, with exec true for MFD_EXEC, and retries
 * without either on kernels that predate them (EINVAL). */
int memfd_new(const char *name, bool exec);

/* After a memfd_new() call: did the kernel honour MFD_EXEC/MFD_NOEXEC_SEAL? */
bool memfd_exec_flags_supported(void);

/* True if st describes a memfd: a regular file on the kernel's internal
 * shmem mount, which every memfd shares and no path-reachable file does. */
bool memfd_stat_is_memfd(const struct stat *st);

/* fstat() fd (the system call, see fd_stat_raw()) and check that it is a
 * memfd: 0, -EBADF, -EMEDIUMTYPE or another -errno of fstat. */
int memfd_fstat(int fd, struct stat *ret_st);

/* Name of a memfd, from /proc/self/fd ("/memfd:NAME (deleted)"), copied
 * into buf (at least MEMFD_NAME_MAX+1 bytes). */
int memfd_get_name(int fd, char *buf, size_t len);
