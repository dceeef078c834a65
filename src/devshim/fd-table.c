/* SPDX-License-Identifier: MIT */
/* libashm-devshim.so: the fds the shim made (its "device" fds), the
 * caller's memory read and written as the kernel does, and which fds are
 * ashmem regions. See libc.c for the whole. */
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
/* The fds the shim made: the driver's "device" fds                     */

/* device_ino[fd]: the inode of the region fd was last seen as, if that
 * region is one of the shim's own; 0 otherwise. Checked against fstat
 * before anything is refused on its word, so a stale entry (an fd closed
 * behind our back, by a raw system call) can only make us answer as for
 * a plain memfd, never refuse another file's read or write. */
static uint64_t device_ino[FD_TABLE];

void device_mark(int fd, uint64_t ino) {
        if (fd >= 0 && fd < FD_TABLE)
                __atomic_store_n(&device_ino[fd], ino, __ATOMIC_RELAXED);
}

uint64_t device_marked(int fd) {
        return fd >= 0 && fd < FD_TABLE ? __atomic_load_n(&device_ino[fd], __ATOMIC_RELAXED) : 0;
}

/* Is fd one of the shim's regions? Fills *ret_st (fstat's answer). */
bool device_fd(int fd, struct stat *ret_st) {
        uint64_t ino = device_marked(fd);

        return ino != 0 && fd_stat_raw(fd, ret_st) >= 0 && memfd_stat_is_memfd(ret_st) &&
               (uint64_t) ret_st->st_ino == ino;
}

/* fd's number now names another file, or none. */
void fd_forget(int fd) {
        device_mark(fd, 0);
        ashm__fdcache_forget(fd);
}

bool is_ashmem_name(const char *name);

/* Regions inherited across exec (the table starts empty in a new
 * program): mark those the shim made. */
void scan_inherited(void) {
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;

        if (!d)
                return;
        while ((de = readdir(d))) {
                char name[MEMFD_NAME_MAX + 1];
                struct stat st;
                int fd = atoi(de->d_name);

                if (de->d_name[0] == '.' || fd == dirfd(d) || fd >= FD_TABLE)
                        continue;
                if (fd_stat_raw(fd, &st) < 0 || !memfd_stat_is_memfd(&st))
                        continue;
                if (memfd_get_name(fd, name, sizeof(name)) >= 0 && is_ashmem_name(name))
                        device_mark(fd, (uint64_t) st.st_ino);
        }
        closedir(d);
}

/* The driver's device, as stat() of /dev/ashmem and fstat() of any of its
 * fds show it: one character device, size 0. */
void device_stat(struct stat *st) {
        static const struct timespec epoch;

        *st = (struct stat) {
                .st_dev = makedev(0, 5),
                .st_ino = 1,
                .st_mode = S_IFCHR | 0666,
                .st_nlink = 1,
                .st_rdev = DEVICE_RDEV,
                .st_blksize = (blksize_t) page_size(),
                .st_atim = epoch,
                .st_mtim = epoch,
                .st_ctim = epoch,
        };
}

/* ------------------------------------------------------------------ */
/* The caller's memory, read and written without faulting, as the       */
/* kernel's copy_from_user/copy_to_user do: -EFAULT instead of SIGSEGV. */

/* process_vm_*() on ourselves: always allowed for one's own process,
 * unless a seccomp filter forbids the calls, where we can only trust the
 * pointer. */
int copy_in(void *dst, unsigned long src, size_t len) {
        struct iovec local = { dst, len }, remote = { (void *) src, len };
        ssize_t n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);

        if (n == (ssize_t) len)
                return 0;
        if (n >= 0 || errno == EFAULT)
                return -EFAULT;
        memcpy(dst, (const void *) src, len);
        return 0;
}

int copy_out(unsigned long dst, const void *src, size_t len) {
        struct iovec local = { (void *) src, len }, remote = { (void *) dst, len };
        ssize_t n = process_vm_writev(getpid(), &local, 1, &remote, 1, 0);

        if (n == (ssize_t) len)
                return 0;
        if (n >= 0 || errno == EFAULT)
                return -EFAULT;
        memcpy((void *) dst, src, len);
        return 0;
}

/* strncpy_from_user(): a NUL-terminated string of at most len - 1 bytes
 * (longer ones are cut), read page by page so that a short string just
 * before an unmapped page is fine, as it is for the driver. */
int copy_string_in(char *dst, unsigned long src, size_t len) {
        size_t done = 0, page = page_size();

        while (done < len - 1) {
                size_t chunk = MIN(len - 1 - done, page - (src + done) % page);
                int r = copy_in(dst + done, src + done, chunk);

                if (r < 0)
                        return r;
                if (memchr(dst + done, '\0', chunk))
                        return 0;
                done += chunk;
        }
        dst[len - 1] = '\0';
        return 0;
}

/* ------------------------------------------------------------------ */
/* Which fds are ashmem regions                                         */

bool is_device_path(const char *path) {
        /* The nonnull attribute of open() is a promise about the caller,
         * not one we can rely on: open(NULL) must fail with EFAULT. */
        const char *volatile p = path;

        return p && strcmp(p, DEVICE_PATH) == 0;
}

bool is_ashmem_name(const char *name) {
        size_t n = sizeof(ASHMEM_NAME_DEF) - 1;

        return strncmp(name, ASHMEM_NAME_DEF, n) == 0 && (name[n] == '\0' || name[n] == '/');
}

/* The memfd name of fd, if it is one of the shim's ("dev/ashmem...");
 * marks fd as such. */
bool device_name(int fd, const struct stat *st, char *ret_name) {
        if (memfd_get_name(fd, ret_name, MEMFD_NAME_MAX + 1) < 0 || !is_ashmem_name(ret_name))
                return false;
        device_mark(fd, (uint64_t) st->st_ino);
        return true;
}

/* Has the region been mapped (sealed by a first mmap)? 1, 0 or -errno. */
int mapped(int fd) {
        int seals = fcntl(fd, F_GET_SEALS);

        if (seals < 0)
                return negative_errno();
        return (seals & SEALS_MAPPED) == SEALS_MAPPED;
}

