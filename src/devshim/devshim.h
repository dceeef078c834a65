/* SPDX-License-Identifier: MIT */
#pragma once

/* What the files of libashm-devshim.so share (libc.c, fd-table.c,
 * ioctl.c, interpose.c); private to src/devshim/. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "linux/ashmem.h"


#define DEVICE_PATH "/dev/ashmem"
/* Driver name prefix, as in /proc/PID/maps: "dev/ashmem/NAME". */
#define NAME_PREFIX ASHMEM_NAME_DEF "/"
#define NAME_PREFIX_LEN (sizeof(NAME_PREFIX) - 1)
#define SEALS_MAPPED (F_SEAL_SHRINK | F_SEAL_GROW)
/* What stat() says of /dev/ashmem and fstat() of its fds: a misc
 * character device (major 10) with a minor of our choosing. */
#define DEVICE_RDEV makedev(10, 61)
/* Names longer than a memfd's keep their whole text here (tmpfs keeps
 * user xattrs since Linux 6.6) and in this process's memory. */
#define NAME_XATTR "user.ashmem.name"
#define FD_TABLE 1024

#ifndef FIBMAP
#define FIBMAP _IO(0x00, 1)
#endif

/* The fortify entry points of open, which <fcntl.h> declares only under
 * _FORTIFY_SOURCE. */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);

typedef int open_fn(const char *, int, ...);
typedef int openat_fn(int, const char *, int, ...);
typedef int open2_fn(const char *, int);
typedef int openat2_fn(int, const char *, int);
typedef int ioctl_fn(int, unsigned long, ...);
typedef int close_fn(int);
typedef int dup2_fn(int, int);
typedef int dup3_fn(int, int, int);
typedef int close_range_fn(unsigned, unsigned, int);
typedef void closefrom_fn(int);
typedef ssize_t write_fn(int, const void *, size_t);
typedef ssize_t read_fn(int, void *, size_t);
typedef ssize_t pwrite_fn(int, const void *, size_t, off_t);
typedef ssize_t pread_fn(int, void *, size_t, off_t);
typedef ssize_t writev_fn(int, const struct iovec *, int);
typedef off_t lseek_fn(int, off_t, int);
typedef int fstat_fn(int, struct stat *);
typedef int stat_fn(const char *, struct stat *);
typedef int fstatat_fn(int, const char *, struct stat *, int);
typedef int access_fn(const char *, int);
typedef int faccessat_fn(int, const char *, int, int);
typedef void *mmap_fn(void *, size_t, int, int, int, off_t);
typedef void *mmap64_fn(void *, size_t, int, int, int, off64_t);

/* The definitions we interpose, as found after us (libc's, or another
 * preloaded library's, e.g. a sanitizer's). */
struct next {
        open_fn *open, *open64;
        openat_fn *openat, *openat64;
        open2_fn *open_2, *open64_2;
        openat2_fn *openat_2, *openat64_2;
        ioctl_fn *ioctl;
        mmap_fn *mmap;
        mmap64_fn *mmap64;
        close_fn *close;
        dup2_fn *dup2;
        dup3_fn *dup3;
        close_range_fn *close_range;
        closefrom_fn *closefrom;
        write_fn *write;
        read_fn *read;
        pwrite_fn *pwrite;
        pread_fn *pread;
        writev_fn *writev;
        lseek_fn *lseek;
        fstat_fn *fstat;
        stat_fn *stat, *lstat;
        fstatat_fn *fstatat;
        access_fn *access;
        faccessat_fn *faccessat;
};

/* libc.c: the next definitions, and calls forwarded to them. */
void swap_lock_take(void);
void swap_lock_drop(void);
const struct next *next(void);
int raw_openat(int dirfd, const char *path, int flags, mode_t mode);
int fwd_ioctl(int fd, unsigned long request, unsigned long arg);
void *fwd_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int fwd_close(int fd);

/* fd-table.c: the device fds' table, the caller's memory, region checks. */
void scan_inherited(void);
void device_mark(int fd, uint64_t ino);
uint64_t device_marked(int fd);
bool device_fd(int fd, struct stat *ret_st);
void fd_forget(int fd);
bool is_ashmem_name(const char *name);
void device_stat(struct stat *st);
int copy_in(void *dst, unsigned long src, size_t len);
int copy_out(unsigned long dst, const void *src, size_t len);
int copy_string_in(char *dst, unsigned long src, size_t len);
bool is_device_path(const char *path);
bool device_name(int fd, const struct stat *st, char *ret_name);
int mapped(int fd);
