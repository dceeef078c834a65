/* SPDX-License-Identifier: MIT */
/*
 * libashm-devshim.so: /dev/ashmem for unmodified programs, by LD_PRELOAD.
 *
 * open("/dev/ashmem") returns a memfd, and the ASHMEM_* ioctls and mmap()
 * on it follow the kernel driver (drivers/staging/android/ashmem.c and
 * Android's common kernel). Everything else goes to the next definition
 * (libc) untouched. docs/devshim.md has the user's view.
 *
 * What makes an fd an ashmem fd is its memfd name, "dev/ashmem" until
 * SET_NAME and "dev/ashmem/NAME" after (the name the driver gives its
 * shmem file), so that an fd inherited or received over a socket is
 * recognised in any process, and the program's other memfds are never
 * touched. "The first mmap", after which the driver refuses SET_NAME,
 * SET_SIZE, and before which it refuses pins, must be visible to every
 * holder too: it is F_SEAL_SHRINK|F_SEAL_GROW on the region, added by the
 * first mmap() through the shim. The protection mask is libashm's (seals
 * and file mode), so it is shared by every holder as well.
 */
/* We define open() and open64() themselves: neither the fortify inline
 * wrappers nor the large-file renaming (open -> open64) may apply. */
#undef _FORTIFY_SOURCE
#undef _FILE_OFFSET_BITS

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ashm.h"
#include "fd-util.h"
#include "internal.h"
#include "linux/ashmem.h"
#include "memfd-util.h"

#define DEVICE_PATH "/dev/ashmem"
/* Driver name prefix, as in /proc/PID/maps: "dev/ashmem/NAME". */
#define NAME_PREFIX ASHMEM_NAME_DEF "/"
#define NAME_PREFIX_LEN (sizeof(NAME_PREFIX) - 1)
#define SEALS_MAPPED (F_SEAL_SHRINK | F_SEAL_GROW)

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
typedef void *mmap_fn(void *, size_t, int, int, int, off_t);
typedef void *mmap64_fn(void *, size_t, int, int, int, off64_t);

/* The definitions we interpose, as found after us (libc's, or another
 * preloaded library's, e.g. a sanitizer's). */
static struct next {
        open_fn *open, *open64;
        openat_fn *openat, *openat64;
        open2_fn *open_2, *open64_2;
        openat2_fn *openat_2, *openat64_2;
        ioctl_fn *ioctl;
        mmap_fn *mmap;
        mmap64_fn *mmap64;
} next_fns;

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

static void swap_lock_take(void) {
        pthread_mutex_lock(&swap_lock);
}

static void swap_lock_drop(void) {
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
        };
        pthread_atfork(swap_lock_take, swap_lock_drop, swap_lock_drop);
        resolving = false;
}

static const struct next *next(void) {
        if (resolving)
                return &no_next;
        pthread_once(&next_once, resolve);
        return &next_fns;
}

/* Resolve at load time, so that no later call (in a signal handler, say)
 * takes pthread_once's slow path. */
__attribute__((constructor)) static void devshim_init(void) {
        (void) next();
}

/* ------------------------------------------------------------------ */
/* Forwarding, with raw system calls when there is no next definition   */

static int raw_openat(int dirfd, const char *path, int flags, mode_t mode) {
        return (int) syscall(SYS_openat, dirfd, path, flags, mode);
}

static int fwd_ioctl(int fd, unsigned long request, unsigned long arg) {
        ioctl_fn *fn = next()->ioctl;

        if (fn)
                return fn(fd, request, arg);
        return (int) syscall(SYS_ioctl, fd, request, arg);
}

static void *fwd_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
        mmap_fn *fn = next()->mmap;

        if (fn)
                return fn(addr, len, prot, flags, fd, off);
        return (void *) syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

/* ------------------------------------------------------------------ */
/* The caller's memory, read and written without faulting, as the       */
/* kernel's copy_from_user/copy_to_user do: -EFAULT instead of SIGSEGV. */

/* process_vm_*() on ourselves: always allowed for one's own process,
 * unless a seccomp filter forbids the calls, where we can only trust the
 * pointer. */
static int copy_in(void *dst, unsigned long src, size_t len) {
        struct iovec local = { dst, len }, remote = { (void *) src, len };
        ssize_t n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);

        if (n == (ssize_t) len)
                return 0;
        if (n >= 0 || errno == EFAULT)
                return -EFAULT;
        memcpy(dst, (const void *) src, len);
        return 0;
}

static int copy_out(unsigned long dst, const void *src, size_t len) {
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
static int copy_string_in(char *dst, unsigned long src, size_t len) {
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

static bool is_device_path(const char *path) {
        /* The nonnull attribute of open() is a promise about the caller,
         * not one we can rely on: open(NULL) must fail with EFAULT. */
        const char *volatile p = path;

        return p && strcmp(p, DEVICE_PATH) == 0;
}

static bool is_ashmem_name(const char *name) {
        size_t n = sizeof(ASHMEM_NAME_DEF) - 1;

        return strncmp(name, ASHMEM_NAME_DEF, n) == 0 && (name[n] == '\0' || name[n] == '/');
}

/* Is fd an ashmem region? Fills *ret_st and ret_name (MEMFD_NAME_MAX + 1
 * bytes) when it is. Any failure (a bad fd too) means no: the call then
 * goes to libc, which reports it. */
static bool ashmem_fd(int fd, struct stat *ret_st, char *ret_name) {
        if (fd < 0 || ashm__fd_stat(fd, ret_st) < 0)
                return false;
        if (memfd_get_name(fd, ret_name, MEMFD_NAME_MAX + 1) < 0)
                return false;
        return is_ashmem_name(ret_name);
}

/* Has the region been mapped (sealed by a first mmap)? 1, 0 or -errno. */
static int mapped(int fd) {
        int seals = fcntl(fd, F_GET_SEALS);

        if (seals < 0)
                return negative_errno();
        return (seals & SEALS_MAPPED) == SEALS_MAPPED;
}

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
        fd = ashm__fd_create(ASHMEM_NAME_DEF, 0, true);
        /* vm.memfd_noexec=2 refuses executable memfds: the mask then
         * starts without PROT_EXEC. */
        if (fd == -EACCES)
                fd = ashm__fd_create(ASHMEM_NAME_DEF, 0, false);
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
/* ioctl                                                                */

static long set_name(int fd, unsigned long arg) {
        char name[ASHMEM_NAME_LEN], full[MEMFD_NAME_MAX + 1];
        _cleanup_close_ int new_fd = -1;
        struct stat st;
        int r, prot, fd_flags;
        size_t len;

        r = copy_string_in(name, arg, sizeof(name));
        if (r < 0)
                return r;
        /* "dev/ashmem/NAME", cut to the memfd limit; an empty name is no
         * name, as for the driver. */
        memcpy(full, ASHMEM_NAME_DEF, sizeof(ASHMEM_NAME_DEF));
        if (name[0] != '\0') {
                len = MIN(strlen(name), MEMFD_NAME_MAX - NAME_PREFIX_LEN);
                memcpy(full, NAME_PREFIX, NAME_PREFIX_LEN);
                memcpy(full + NAME_PREFIX_LEN, name, len);
                full[NAME_PREFIX_LEN + len] = '\0';
        }

        swap_lock_take();
        r = mapped(fd);
        if (r != 0) {
                r = r > 0 ? -EINVAL : r;
                goto out;
        }
        /* A memfd cannot be renamed: make a new one like it (before the
         * first mmap only the size and the mask matter) and put it under
         * the caller's fd number, with the same close-on-exec flag. */
        if (fstat(fd, &st) < 0 || (fd_flags = fcntl(fd, F_GETFD)) < 0) {
                r = negative_errno();
                goto out;
        }
        prot = ashm__fd_get_prot(fd);
        if (prot < 0) {
                r = prot;
                goto out;
        }
        new_fd = ashm__fd_create(full, (uint64_t) st.st_size, prot & PROT_EXEC);
        if (new_fd < 0) {
                r = new_fd;
                goto out;
        }
        r = ashm__fd_get_prot(new_fd);
        if (r >= 0 && r != prot)
                r = ashm__fd_set_prot(new_fd, prot);
        if (r < 0)
                goto out;
        if (dup3(new_fd, fd, fd_flags & FD_CLOEXEC ? O_CLOEXEC : 0) < 0)
                r = negative_errno();
        else
                r = 0;
out:
        swap_lock_drop();
        return r;
}

static long get_name(const char *memfd_name, unsigned long arg) {
        const char *name = memfd_name[sizeof(ASHMEM_NAME_DEF) - 1] == '/' && memfd_name[NAME_PREFIX_LEN] != '\0'
                                   ? memfd_name + NAME_PREFIX_LEN
                                   : ASHMEM_NAME_DEF;

        /* The driver copies the string and its NUL, not the whole buffer. */
        return copy_out(arg, name, strlen(name) + 1);
}

static long set_size(int fd, unsigned long size) {
        int r = mapped(fd);

        if (r != 0)
                return r > 0 ? -EINVAL : r;
        if (size > (unsigned long) LONG_MAX)
                return -EINVAL;
        if (ftruncate(fd, (off_t) size) < 0)
                /* EPERM: another holder mapped it since we looked. */
                return errno == EPERM ? -EINVAL : negative_errno();
        return 0;
}

static long set_prot_mask(int fd, unsigned long prot) {
        /* Bits outside RWX are never in the mask: adding them is refused
         * like adding any other bit. */
        if (prot & ~(unsigned long) ASHM_PROT_ALL)
                return -EINVAL;
        return ashm__fd_set_prot(fd, (int) prot);
}

static long pin_op(int fd, unsigned cmd, unsigned long arg) {
        struct ashmem_pin pin;
        int r = mapped(fd);

        if (r <= 0)
                return r < 0 ? r : -EINVAL;
        r = copy_in(&pin, arg, sizeof(pin));
        if (r < 0)
                return r;
        /* The driver computes offset + len in 32 bits. */
        if (pin.len != 0 && (uint64_t) pin.offset + pin.len > UINT32_MAX)
                return -EINVAL;
        switch (cmd) {
        case ASHMEM_PIN:
                return ashm__fd_pin(fd, pin.offset, pin.len);
        case ASHMEM_UNPIN:
                return ashm__fd_unpin(fd, pin.offset, pin.len);
        default:
                return ashm__fd_get_pin_status(fd, pin.offset, pin.len);
        }
}

/* capable(CAP_SYS_ADMIN): the effective set, not the uid. */
static bool has_sys_admin(void) {
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3] = {};

        if (syscall(SYS_capget, &h, d) < 0)
                return false;
        return d[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective & CAP_TO_MASK(CAP_SYS_ADMIN);
}

static long purge_all(void) {
        uint64_t lru = 0;
        int r;

        if (!has_sys_admin())
                return -EPERM;
        r = ashm__purge(0, ASHM_PURGE_ALL_USERS, &lru, NULL);
        /* CAP_SYS_ADMIN without being root (a user namespace): ashmd
         * lets us purge our own regions only. */
        if (r == -EPERM)
                r = ashm__purge(0, 0, &lru, NULL);
        /* No daemon: nothing is ever purged, and nothing waits to be. */
        if (r == -ECONNREFUSED)
                return 0;
        if (r < 0)
                return r;
        return (long) MIN(lru, (uint64_t) INT_MAX);
}

static long get_file_id(int fd, const struct stat *st, unsigned long arg) {
        unsigned long ino = (unsigned long) st->st_ino;
        int r = mapped(fd);

        /* Before the first mmap the driver has no backing file. */
        if (r <= 0)
                return r < 0 ? r : -EINVAL;
        return copy_out(arg, &ino, sizeof(ino));
}

/* Requests that the shim answers on an ashmem fd: the driver's, plus the
 * generic ones the kernel answers differently for a regular file (a
 * memfd) than for a character device (the driver's fd): ENOTTY there. */
static bool ashmem_request(unsigned cmd) {
        return _IOC_TYPE(cmd) == __ASHMEMIOC || cmd == FIONREAD || cmd == FIOQSIZE || cmd == FIBMAP;
}

static long ashmem_ioctl(int fd, const struct stat *st, const char *name, unsigned cmd, unsigned long arg) {
        switch (cmd) {
        case ASHMEM_SET_NAME:
                return set_name(fd, arg);
        case ASHMEM_GET_NAME:
                return get_name(name, arg);
        case ASHMEM_SET_SIZE:
                return set_size(fd, arg);
        case ASHMEM_GET_SIZE:
                return (long) st->st_size;
        case ASHMEM_SET_PROT_MASK:
                return set_prot_mask(fd, arg);
        case ASHMEM_GET_PROT_MASK:
                return ashm__fd_get_prot(fd);
        case ASHMEM_PIN:
        case ASHMEM_UNPIN:
        case ASHMEM_GET_PIN_STATUS:
                return pin_op(fd, cmd, arg);
        case ASHMEM_PURGE_ALL_CACHES:
                return purge_all();
        case ASHMEM_GET_FILE_ID:
                return get_file_id(fd, st, arg);
        default:
                return -ENOTTY;
        }
}

_public_ int ioctl(int fd, unsigned long request, ...) {
        char name[MEMFD_NAME_MAX + 1];
        unsigned long arg;
        struct stat st;
        va_list ap;
        int saved_errno = errno;
        long r;

        va_start(ap, request);
        arg = va_arg(ap, unsigned long);
        va_end(ap);
        /* The kernel takes the request as 32 bits: so do we. */
        if (!ashmem_request((unsigned) request) || !ashmem_fd(fd, &st, name)) {
                errno = saved_errno;
                return fwd_ioctl(fd, request, arg);
        }
        r = ashmem_ioctl(fd, &st, name, (unsigned) request, arg);
        /* The system call's convention: -4095..-1 are errors, anything
         * else (a size of 3 GiB too) is the value, cut to int by libc. */
        if (r < 0 && r >= -4095) {
                errno = (int) -r;
                return -1;
        }
        errno = saved_errno;
        return (int) r;
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
                if (r < 0 || fstat(fd, st) < 0)
                        break;
        }
        /* The driver maps MAP_PRIVATE as anonymous memory: private pages
         * start as zeros, not as a copy of the region. */
        if ((flags & MAP_TYPE) == MAP_PRIVATE)
                return fwd_mmap(addr, len, prot, flags | MAP_ANONYMOUS, -1, 0);
        return fwd_mmap(addr, len, prot, flags, fd, off);
}

_public_ void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
        char name[MEMFD_NAME_MAX + 1];
        int saved_errno = errno;
        struct stat st;
        void *p;

        if (fd < 0 || (flags & MAP_ANONYMOUS) || !ashmem_fd(fd, &st, name)) {
                errno = saved_errno;
                return fwd_mmap(addr, len, prot, flags, fd, off);
        }
        p = ashmem_mmap(addr, len, prot, flags, fd, off, &st);
        if (p != MAP_FAILED)
                errno = saved_errno;
        return p;
}

_Static_assert(sizeof(off_t) == sizeof(off64_t), "mmap64 is mmap: a 64-bit ABI");

_public_ void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off) {
        mmap64_fn *fn;

        if (fd >= 0 && !(flags & MAP_ANONYMOUS))
                return mmap(addr, len, prot, flags, fd, (off_t) off);
        fn = next()->mmap64;
        return fn ? fn(addr, len, prot, flags, fd, off) : fwd_mmap(addr, len, prot, flags, fd, (off_t) off);
}
