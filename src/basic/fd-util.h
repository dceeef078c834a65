/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "macro.h"

/* Close an fd if it is valid. Never retries on EINTR: on Linux the fd is
 * gone whatever close() returned, and retrying could close a descriptor
 * that another thread has just been handed. Returns -1 for assignment. */
int safe_close(int fd);
void close_many(const int *fds, size_t n);

static inline void closep(int *fd) {
        safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

/* Full-length pread/pwrite: loop over short transfers and EINTR.
 * Return 0, or -errno; -EIO if the file ended early. */
int pread_full(int fd, void *buf, size_t len, off_t off);
int pwrite_full(int fd, const void *buf, size_t len, off_t off);
int write_full(int fd, const void *buf, size_t len);

/* All of fd from where it stands to its end, into *ret (malloc'd, with a
 * NUL byte past *ret_len that is not counted). -EFBIG past max bytes. */
int read_all(int fd, size_t max, uint8_t **ret, size_t *ret_len);

/* Whether fd was opened for writing: 1 if so, 0 if read-only or O_PATH
 * (which opens nothing), -errno if fcntl() fails (-EBADF). */
int fd_can_write(int fd);

/* The fstat system call itself, not libc's: glibc's fstat() is
 * fstatat(fd, "", AT_EMPTY_PATH), slower, and the /dev/ashmem shim
 * interposes it. Returns 0 or -errno. */
int fd_stat_raw(int fd, struct stat *ret_st);

/* Number of open fds in this process (from /proc/self/fd). */
int fd_count(void);

/* The system page size, read once. */
size_t page_size(void);

/* x rounded up to a multiple of page, a power of two. */
static inline uint64_t page_align_u64(uint64_t x, uint64_t page) {
        return (x + page - 1) & ~(page - 1);
}
