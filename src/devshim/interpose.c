/* SPDX-License-Identifier: MIT */
/* libashm-devshim.so: the libc calls interposed on /dev/ashmem and its
 * fds: open, mmap, close and the dups, read/write/lseek, stat and access.
 * See libc.c for the whole. */
/* We define open() and open64() themselves: neither the fortify inline
 * wrappers nor the large-file renaming (open -> open64) may apply. */
#undef _FORTIFY_SOURCE
#undef _FILE_OFFSET_BITS

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ashm.h"
#include "fd-util.h"
#include "internal.h"
#include "linux/ashmem.h"
#include "memfd-util.h"
#include "devshim.h"

/* ------------------------------------------------------------------ */
/* open                                                                 */

/* A new region, the way the driver's open() makes one: no name, size 0,
 * mask PROT_READ|PROT_WRITE|PROT_EXEC. */
static int ashmem_open(int flags) {
        int saved_errno = errno, fd;

        if (flags & O_DIRECTORY) {
                errno = ENOTDIR;
                return -1;
        }
        if ((flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL)) {
                errno = EEXIST;
                return -1;
        }
        fd = ashm__fd_create(ASHMEM_NAME_DEF, 0, ASHM__FD_EXEC);
        /* vm.memfd_noexec=2 refuses executable memfds: the mask then
         * starts without PROT_EXEC. */
        if (fd == -EACCES)
                fd = ashm__fd_create(ASHMEM_NAME_DEF, 0, 0);
        if (fd < 0) {
                errno = -fd;
                return -1;
        }
        if (!(flags & O_CLOEXEC) && fcntl(fd, F_SETFD, 0) < 0) {
                int e = errno;

                safe_close(fd);
                errno = e;
                return -1;
        }
        {
                struct stat st;

                fd_forget(fd);
                if (fd_stat_raw(fd, &st) >= 0)
                        device_mark(fd, (uint64_t) st.st_ino);
        }
        errno = saved_errno;
        return fd;
}

/* The mode argument, which open() reads only when it creates a file. */
#define OPEN_MODE(flags, mode)                                  \
        do {                                                    \
                va_list _ap;                                    \
                va_start(_ap, flags);                           \
                mode = __OPEN_NEEDS_MODE(flags) ? va_arg(_ap, mode_t) : 0; \
                va_end(_ap);                                    \
        } while (0)

_public_ int open(const char *path, int flags, ...) {
        open_fn *fn;
        mode_t mode;

        if (is_device_path(path))
                return ashmem_open(flags);
        OPEN_MODE(flags, mode);
        fn = next()->open;
        return fn ? fn(path, flags, mode) : raw_openat(AT_FDCWD, path, flags, mode);
}

_public_ int open64(const char *path, int flags, ...) {
        open_fn *fn;
        mode_t mode;

        if (is_device_path(path))
                return ashmem_open(flags);
        OPEN_MODE(flags, mode);
        fn = next()->open64;
        return fn ? fn(path, flags, mode) : raw_openat(AT_FDCWD, path, flags | O_LARGEFILE, mode);
}

/* An absolute path ignores dirfd, so openat(any, "/dev/ashmem") is ours;
 * a relative one ("ashmem" in /dev) is not recognised. */
_public_ int openat(int dirfd, const char *path, int flags, ...) {
        openat_fn *fn;
        mode_t mode;

        if (is_device_path(path))
                return ashmem_open(flags);
        OPEN_MODE(flags, mode);
        fn = next()->openat;
        return fn ? fn(dirfd, path, flags, mode) : raw_openat(dirfd, path, flags, mode);
}

_public_ int openat64(int dirfd, const char *path, int flags, ...) {
        openat_fn *fn;
        mode_t mode;

        if (is_device_path(path))
                return ashmem_open(flags);
        OPEN_MODE(flags, mode);
        fn = next()->openat64;
        return fn ? fn(dirfd, path, flags, mode) : raw_openat(dirfd, path, flags | O_LARGEFILE, mode);
}

/* What _FORTIFY_SOURCE builds call when the flags are not constant. */
_public_ int __open_2(const char *path, int flags) {
        open2_fn *fn;

        if (is_device_path(path))
                return ashmem_open(flags);
        fn = next()->open_2;
        return fn ? fn(path, flags) : raw_openat(AT_FDCWD, path, flags, 0);
}

_public_ int __open64_2(const char *path, int flags) {
        open2_fn *fn;

        if (is_device_path(path))
                return ashmem_open(flags);
        fn = next()->open64_2;
        return fn ? fn(path, flags) : raw_openat(AT_FDCWD, path, flags | O_LARGEFILE, 0);
}

_public_ int __openat_2(int dirfd, const char *path, int flags) {
        openat2_fn *fn;

        if (is_device_path(path))
                return ashmem_open(flags);
        fn = next()->openat_2;
        return fn ? fn(dirfd, path, flags) : raw_openat(dirfd, path, flags, 0);
}

_public_ int __openat64_2(int dirfd, const char *path, int flags) {
        openat2_fn *fn;

        if (is_device_path(path))
                return ashmem_open(flags);
        fn = next()->openat64_2;
        return fn ? fn(dirfd, path, flags) : raw_openat(dirfd, path, flags | O_LARGEFILE, 0);
}

/* ------------------------------------------------------------------ */
/* mmap                                                                 */

/* The driver's checks, then the first map seals the size. The region is
 * sealed before it is mapped, and its size read again after, so that no
 * SET_SIZE of another holder can slip between the check and the map. */
static void *ashmem_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off, struct stat *st) {
        uintptr_t page = page_size();
        int mask, r;

        /* What the kernel refuses before it calls the driver must not
         * count as a first mmap. */
        if (len == 0 || (uintptr_t) off % page != 0 || ((flags & MAP_FIXED) && (uintptr_t) addr % page != 0)) {
                errno = EINVAL;
                return MAP_FAILED;
        }
        for (;;) {
                if (st->st_size == 0 || len > page_align_u64((uint64_t) st->st_size, page_size())) {
                        errno = EINVAL;
                        return MAP_FAILED;
                }
                mask = ashm__fd_get_prot(fd);
                if (mask < 0 || (prot & ASHM_PROT_ALL & ~mask)) {
                        errno = mask < 0 ? -mask : EPERM;
                        return MAP_FAILED;
                }
                r = mapped(fd);
                if (r != 0)
                        break; /* mapped already, or cannot tell: map anyway */
                swap_lock_take();
                r = fcntl(fd, F_ADD_SEALS, SEALS_MAPPED);
                swap_lock_drop();
                /* A region sealed against new seals (F_SEAL_SEAL) or an
                 * fd opened read-only cannot be marked: map it unmarked. */
                if (r < 0 || fd_stat_raw(fd, st) < 0)
                        break;
        }
        /* The driver maps MAP_PRIVATE as anonymous memory: private pages
         * start as zeros, not as a copy of the region. */
        if ((flags & MAP_TYPE) == MAP_PRIVATE)
                return fwd_mmap(addr, len, prot, flags | MAP_ANONYMOUS, -1, 0);
        return fwd_mmap(addr, len, prot, flags, fd, off);
}

/* The shim's own regions get the driver's mmap; any other file, other
 * regions included (their size is sealed already), the kernel's. */
_public_ void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
        char name[MEMFD_NAME_MAX + 1];
        int saved_errno = errno, seals;
        struct stat st;
        void *p;

        if (fd < 0 || (flags & MAP_ANONYMOUS) || (seals = fcntl(fd, F_GET_SEALS)) < 0)
                goto forward;
        if (fd_stat_raw(fd, &st) < 0 || !memfd_stat_is_memfd(&st))
                goto forward;
        /* Its name tells a region of the shim received from elsewhere. */
        if (device_marked(fd) != (uint64_t) st.st_ino && ((seals & F_SEAL_SEAL) || !device_name(fd, &st, name)))
                goto forward;
        p = ashmem_mmap(addr, len, prot, flags, fd, off, &st);
        if (p != MAP_FAILED)
                errno = saved_errno;
        return p;
forward:
        errno = saved_errno;
        return fwd_mmap(addr, len, prot, flags, fd, off);
}

_Static_assert(sizeof(off_t) == sizeof(off64_t), "mmap64 is mmap: a 64-bit ABI");

_public_ void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off) {
        mmap64_fn *fn;

        if (fd >= 0 && !(flags & MAP_ANONYMOUS))
                return mmap(addr, len, prot, flags, fd, (off_t) off);
        fn = next()->mmap64;
        return fn ? fn(addr, len, prot, flags, fd, off) : fwd_mmap(addr, len, prot, flags, fd, (off_t) off);
}

/* ------------------------------------------------------------------ */
/* close and the dups: the fd table follows every fd number's file       */

_public_ int close(int fd) {
        fd_forget(fd);
        return fwd_close(fd);
}

_public_ int dup2(int oldfd, int newfd) {
        dup2_fn *fn = next()->dup2;
        uint64_t ino = device_marked(oldfd);
        int r;

        if (oldfd == newfd)
                return fn ? fn(oldfd, newfd) : (int) syscall(SYS_dup2, oldfd, newfd);
        fd_forget(newfd);
        r = fn ? fn(oldfd, newfd) : (int) syscall(SYS_dup2, oldfd, newfd);
        if (r >= 0) {
                fd_forget(newfd);
                device_mark(newfd, ino);
        }
        return r;
}

_public_ int dup3(int oldfd, int newfd, int flags) {
        dup3_fn *fn = next()->dup3;
        uint64_t ino = device_marked(oldfd);
        int r;

        if (oldfd != newfd)
                fd_forget(newfd);
        r = fn ? fn(oldfd, newfd, flags) : (int) syscall(SYS_dup3, oldfd, newfd, flags);
        if (r >= 0) {
                fd_forget(newfd);
                device_mark(newfd, ino);
        }
        return r;
}

static void forget_range(unsigned first, unsigned last) {
        for (unsigned fd = first; fd <= last && fd < FD_TABLE; fd++)
                device_mark((int) fd, 0);
        ashm__fdcache_forget_from(first, last);
}

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

_public_ int close_range(unsigned first, unsigned last, int flags) {
        close_range_fn *fn = next()->close_range;

        if (!(flags & CLOSE_RANGE_CLOEXEC))
                forget_range(first, last);
        return fn ? fn(first, last, flags) : (int) syscall(SYS_close_range, first, last, flags);
}

_public_ void closefrom(int lowfd) {
        closefrom_fn *fn = next()->closefrom;

        forget_range(lowfd < 0 ? 0 : (unsigned) lowfd, UINT_MAX);
        if (fn)
                fn(lowfd);
        else
                (void) syscall(SYS_close_range, lowfd < 0 ? 0 : (unsigned) lowfd, UINT_MAX, 0);
}

/* ------------------------------------------------------------------ */
/* read, write, lseek on the shim's fds: the driver's answers            */

/* The driver has no write: every write is EINVAL. */
static bool refuse_write(int fd) {
        struct stat st;

        if (!device_fd(fd, &st))
                return false;
        errno = EINVAL;
        return true;
}

/* The driver's read and llseek: a region of size 0 reads as empty and
 * refuses lseek (EINVAL); before the first mmap there is no file behind
 * it (EBADF); after, the region's file answers. 0: pass the call on. */
static int read_check(int fd, bool seek) {
        struct stat st;
        int r;

        if (!device_fd(fd, &st))
                return 0;
        if (st.st_size == 0)
                return seek ? -EINVAL : 1;
        r = mapped(fd);
        if (r == 0)
                return -EBADF;
        return 0;
}

_public_ ssize_t write(int fd, const void *buf, size_t len) {
        write_fn *fn = next()->write;

        if (refuse_write(fd))
                return -1;
        return fn ? fn(fd, buf, len) : syscall(SYS_write, fd, buf, len);
}

_public_ ssize_t writev(int fd, const struct iovec *iov, int n) {
        writev_fn *fn = next()->writev;

        if (refuse_write(fd))
                return -1;
        return fn ? fn(fd, iov, n) : syscall(SYS_writev, fd, iov, n);
}

_public_ ssize_t pwrite(int fd, const void *buf, size_t len, off_t off) {
        pwrite_fn *fn = next()->pwrite;

        if (refuse_write(fd))
                return -1;
        return fn ? fn(fd, buf, len, off) : syscall(SYS_pwrite64, fd, buf, len, off);
}

_public_ ssize_t pwrite64(int fd, const void *buf, size_t len, off64_t off) {
        return pwrite(fd, buf, len, (off_t) off);
}

_public_ ssize_t read(int fd, void *buf, size_t len) {
        read_fn *fn = next()->read;
        int r = read_check(fd, false);

        if (r != 0) {
                if (r > 0)
                        return 0;
                errno = -r;
                return -1;
        }
        return fn ? fn(fd, buf, len) : syscall(SYS_read, fd, buf, len);
}

_public_ ssize_t pread(int fd, void *buf, size_t len, off_t off) {
        pread_fn *fn = next()->pread;
        int r = read_check(fd, false);

        if (r != 0) {
                if (r > 0)
                        return 0;
                errno = -r;
                return -1;
        }
        return fn ? fn(fd, buf, len, off) : syscall(SYS_pread64, fd, buf, len, off);
}

_public_ ssize_t pread64(int fd, void *buf, size_t len, off64_t off) {
        return pread(fd, buf, len, (off_t) off);
}

_public_ off_t lseek(int fd, off_t off, int whence) {
        lseek_fn *fn = next()->lseek;
        int r = read_check(fd, true);

        if (r < 0) {
                errno = -r;
                return -1;
        }
        return fn ? fn(fd, off, whence) : (off_t) syscall(SYS_lseek, fd, off, whence);
}

_public_ off64_t lseek64(int fd, off64_t off, int whence) {
        return lseek(fd, (off_t) off, whence);
}

/* ------------------------------------------------------------------ */
/* stat and access: /dev/ashmem and its fds are one character device      */

_public_ int fstat(int fd, struct stat *st) {
        fstat_fn *fn = next()->fstat;
        struct stat real;

        if (device_fd(fd, &real)) {
                device_stat(st);
                return 0;
        }
        return fn ? fn(fd, st) : (int) syscall(SYS_fstat, fd, st);
}

_public_ int fstat64(int fd, struct stat64 *st) {
        return fstat(fd, (struct stat *) st);
}

_public_ int stat(const char *path, struct stat *st) {
        stat_fn *fn = next()->stat;

        if (is_device_path(path)) {
                device_stat(st);
                return 0;
        }
        return fn ? fn(path, st) : (int) syscall(SYS_newfstatat, AT_FDCWD, path, st, 0);
}

_public_ int stat64(const char *path, struct stat64 *st) {
        return stat(path, (struct stat *) st);
}

_public_ int lstat(const char *path, struct stat *st) {
        stat_fn *fn = next()->lstat;

        if (is_device_path(path)) {
                device_stat(st);
                return 0;
        }
        return fn ? fn(path, st) : (int) syscall(SYS_newfstatat, AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW);
}

_public_ int lstat64(const char *path, struct stat64 *st) {
        return lstat(path, (struct stat *) st);
}

_public_ int fstatat(int dirfd, const char *path, struct stat *st, int flags) {
        fstatat_fn *fn = next()->fstatat;
        const char *volatile p = path;
        struct stat real;

        if (is_device_path(path) || (p && p[0] == '\0' && (flags & AT_EMPTY_PATH) && device_fd(dirfd, &real))) {
                device_stat(st);
                return 0;
        }
        return fn ? fn(dirfd, path, st, flags) : (int) syscall(SYS_newfstatat, dirfd, path, st, flags);
}

_public_ int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags) {
        return fstatat(dirfd, path, (struct stat *) st, flags);
}

/* Mode 0666: read and write for everyone, execute for no one. */
static int device_access(int mode) {
        if (mode & X_OK) {
                errno = EACCES;
                return -1;
        }
        return 0;
}

_public_ int access(const char *path, int mode) {
        access_fn *fn = next()->access;

        if (is_device_path(path))
                return device_access(mode);
        return fn ? fn(path, mode) : (int) syscall(SYS_faccessat, AT_FDCWD, path, mode);
}

_public_ int faccessat(int dirfd, const char *path, int mode, int flags) {
        faccessat_fn *fn = next()->faccessat;

        if (is_device_path(path))
                return device_access(mode);
        return fn ? fn(dirfd, path, mode, flags) : (int) syscall(SYS_faccessat, dirfd, path, mode);
}

