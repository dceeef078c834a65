/* SPDX-License-Identifier: MIT */
/*
 * libashm-devshim.so: /dev/ashmem for unmodified programs, by LD_PRELOAD.
 *
 * open("/dev/ashmem") returns a memfd, and the ASHMEM_* ioctls and mmap()
 * on it follow the kernel driver (drivers/staging/android/ashmem.c and
 * Android's common kernel). Everything else goes to the next definition
 * (libc) untouched. docs/devshim.md has the user's view.
 *
 * The ioctls are served on every region: a memfd sealed
 * F_SEAL_GROW|F_SEAL_SHRINK (what every ashm entry point and today's AOSP
 * make), or a region of the shim before its first mmap, known by its
 * memfd name, "dev/ashmem" until SET_NAME and "dev/ashmem/NAME" after
 * (the name the driver gives its shmem file), so that an fd inherited or
 * received over a socket is recognised in any process, and the program's
 * other memfds are never touched. "The first mmap", after which the
 * driver refuses SET_NAME, SET_SIZE, and before which it refuses pins,
 * must be visible to every holder too: it is those two seals, added by
 * the first mmap() through the shim. The protection mask is libashm's
 * (seals and file mode), so it is shared by every holder as well.
 *
 * The fds the shim made (its "device" fds) also answer read, write,
 * lseek and fstat as the driver's do; /dev/ashmem itself answers stat
 * and access. For that, and for pins without a system call, the shim
 * keeps a table per fd number, which close(), dup2(), dup3(),
 * close_range() and closefrom() keep up to date.
 */

/* This file: the definitions the shim interposes, as found after it
 * (libc's), calls forwarded to them, and the shim's start. */
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

static struct next next_fns;

static const struct next no_next; /* every call becomes a raw syscall */
static pthread_once_t next_once = PTHREAD_ONCE_INIT;
/* Set while this thread runs dlsym(), which may open files or allocate
 * (and an allocator may map memory): those calls must not wait on
 * next_once, which this very thread holds. */
static __thread bool resolving __attribute__((tls_model("initial-exec")));

/* Serialises SET_NAME, which swaps the memfd behind an fd number, with
 * the sealing done by a first mmap of the same process: otherwise a map
 * could seal one file and map the other. Between processes the seals
 * alone decide (SET_NAME only ever changes the caller's own fd table). */
static pthread_mutex_t swap_lock = PTHREAD_MUTEX_INITIALIZER;

void swap_lock_take(void) {
        pthread_mutex_lock(&swap_lock);
}

void swap_lock_drop(void) {
        pthread_mutex_unlock(&swap_lock);
}

static void resolve(void) {
        resolving = true;
        next_fns = (struct next) {
                .open = (open_fn *) dlsym(RTLD_NEXT, "open"),
                .open64 = (open_fn *) dlsym(RTLD_NEXT, "open64"),
                .openat = (openat_fn *) dlsym(RTLD_NEXT, "openat"),
                .openat64 = (openat_fn *) dlsym(RTLD_NEXT, "openat64"),
                .open_2 = (open2_fn *) dlsym(RTLD_NEXT, "__open_2"),
                .open64_2 = (open2_fn *) dlsym(RTLD_NEXT, "__open64_2"),
                .openat_2 = (openat2_fn *) dlsym(RTLD_NEXT, "__openat_2"),
                .openat64_2 = (openat2_fn *) dlsym(RTLD_NEXT, "__openat64_2"),
                .ioctl = (ioctl_fn *) dlsym(RTLD_NEXT, "ioctl"),
                .mmap = (mmap_fn *) dlsym(RTLD_NEXT, "mmap"),
                .mmap64 = (mmap64_fn *) dlsym(RTLD_NEXT, "mmap64"),
                .close = (close_fn *) dlsym(RTLD_NEXT, "close"),
                .dup2 = (dup2_fn *) dlsym(RTLD_NEXT, "dup2"),
                .dup3 = (dup3_fn *) dlsym(RTLD_NEXT, "dup3"),
                .close_range = (close_range_fn *) dlsym(RTLD_NEXT, "close_range"),
                .closefrom = (closefrom_fn *) dlsym(RTLD_NEXT, "closefrom"),
                .write = (write_fn *) dlsym(RTLD_NEXT, "write"),
                .read = (read_fn *) dlsym(RTLD_NEXT, "read"),
                .pwrite = (pwrite_fn *) dlsym(RTLD_NEXT, "pwrite64"),
                .pread = (pread_fn *) dlsym(RTLD_NEXT, "pread64"),
                .writev = (writev_fn *) dlsym(RTLD_NEXT, "writev"),
                .lseek = (lseek_fn *) dlsym(RTLD_NEXT, "lseek64"),
                .fstat = (fstat_fn *) dlsym(RTLD_NEXT, "fstat64"),
                .stat = (stat_fn *) dlsym(RTLD_NEXT, "stat64"),
                .lstat = (stat_fn *) dlsym(RTLD_NEXT, "lstat64"),
                .fstatat = (fstatat_fn *) dlsym(RTLD_NEXT, "fstatat64"),
                .access = (access_fn *) dlsym(RTLD_NEXT, "access"),
                .faccessat = (faccessat_fn *) dlsym(RTLD_NEXT, "faccessat"),
        };
        pthread_atfork(swap_lock_take, swap_lock_drop, swap_lock_drop);
        resolving = false;
}

const struct next *next(void) {
        if (resolving)
                return &no_next;
        pthread_once(&next_once, resolve);
        return &next_fns;
}

/* Resolve at load time, so that no later call (in a signal handler, say)
 * takes pthread_once's slow path. */
__attribute__((constructor)) static void devshim_init(void) {
        (void) next();
        /* close() and the dups below keep the cutils pin cache honest. */
        __atomic_store_n(&ashm__fdcache_trusted, true, __ATOMIC_RELAXED);
        scan_inherited();
}

/* ------------------------------------------------------------------ */
/* Forwarding, with raw system calls when there is no next definition   */

int raw_openat(int dirfd, const char *path, int flags, mode_t mode) {
        return (int) syscall(SYS_openat, dirfd, path, flags, mode);
}

int fwd_ioctl(int fd, unsigned long request, unsigned long arg) {
        ioctl_fn *fn = next()->ioctl;

        if (fn)
                return fn(fd, request, arg);
        return (int) syscall(SYS_ioctl, fd, request, arg);
}

void *fwd_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
        mmap_fn *fn = next()->mmap;

        if (fn)
                return fn(addr, len, prot, flags, fd, off);
        return (void *) syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

int fwd_close(int fd) {
        close_fn *fn = next()->close;

        return fn ? fn(fd) : (int) syscall(SYS_close, fd);
}

