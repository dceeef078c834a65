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
static struct next {
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

static const struct next *next(void) {
        if (resolving)
                return &no_next;
        pthread_once(&next_once, resolve);
        return &next_fns;
}

/* Resolve at load time, so that no later call (in a signal handler, say)
 * takes pthread_once's slow path. */
static void scan_inherited(void);

__attribute__((constructor)) static void devshim_init(void) {
        (void) next();
        /* close() and the dups below keep the cutils pin cache honest. */
        __atomic_store_n(&ashm__fdcache_trusted, true, __ATOMIC_RELAXED);
        scan_inherited();
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

static int fwd_close(int fd) {
        close_fn *fn = next()->close;

        return fn ? fn(fd) : (int) syscall(SYS_close, fd);
}

/* ------------------------------------------------------------------ */
/* The fds the shim made: the driver's "device" fds                     */

/* device_ino[fd]: the inode of the region fd was last seen as, if that
 * region is one of the shim's own; 0 otherwise. Checked against fstat
 * before anything is refused on its word, so a stale entry (an fd closed
 * behind our back, by a raw system call) can only make us answer as for
 * a plain memfd, never refuse another file's read or write. */
static uint64_t device_ino[FD_TABLE];

static void device_mark(int fd, uint64_t ino) {
        if (fd >= 0 && fd < FD_TABLE)
                __atomic_store_n(&device_ino[fd], ino, __ATOMIC_RELAXED);
}

static uint64_t device_marked(int fd) {
        return fd >= 0 && fd < FD_TABLE ? __atomic_load_n(&device_ino[fd], __ATOMIC_RELAXED) : 0;
}

/* Is fd one of the shim's regions? Fills *ret_st (fstat's answer). */
static bool device_fd(int fd, struct stat *ret_st) {
        uint64_t ino = device_marked(fd);

        return ino != 0 && fd_stat_raw(fd, ret_st) >= 0 && memfd_stat_is_memfd(ret_st) &&
               (uint64_t) ret_st->st_ino == ino;
}

/* fd's number now names another file, or none. */
static void fd_forget(int fd) {
        device_mark(fd, 0);
        ashm__fdcache_forget(fd);
}

static bool is_ashmem_name(const char *name);

/* Regions inherited across exec (the table starts empty in a new
 * program): mark those the shim made. */
static void scan_inherited(void) {
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
static void device_stat(struct stat *st) {
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

/* The memfd name of fd, if it is one of the shim's ("dev/ashmem...");
 * marks fd as such. */
static bool device_name(int fd, const struct stat *st, char *ret_name) {
        if (memfd_get_name(fd, ret_name, MEMFD_NAME_MAX + 1) < 0 || !is_ashmem_name(ret_name))
                return false;
        device_mark(fd, (uint64_t) st->st_ino);
        return true;
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
/* ioctl                                                                */

/* Names longer than a memfd name holds, by inode, for GET_NAME in this
 * process (and its children) where tmpfs keeps no user xattrs. */
static struct long_name {
        uint64_t ino;
        char name[ASHMEM_NAME_LEN];
} long_names[16];
static unsigned long_names_next;
static pthread_mutex_t long_names_lock = PTHREAD_MUTEX_INITIALIZER;

static void long_name_keep(int fd, const char *name) {
        struct stat st;

        (void) fsetxattr(fd, NAME_XATTR, name, strlen(name), 0);
        if (fd_stat_raw(fd, &st) < 0)
                return;
        pthread_mutex_lock(&long_names_lock);
        long_names[long_names_next].ino = (uint64_t) st.st_ino;
        snprintf(long_names[long_names_next].name, ASHMEM_NAME_LEN, "%s", name);
        long_names_next = (long_names_next + 1) % ELEMENTSOF(long_names);
        pthread_mutex_unlock(&long_names_lock);
}

/* The whole name of a region whose memfd name was cut, into buf. */
static bool long_name_find(int fd, uint64_t ino, char *buf) {
        ssize_t n = fgetxattr(fd, NAME_XATTR, buf, ASHMEM_NAME_LEN - 1);
        bool found = false;

        if (n > 0) {
                buf[n] = '\0';
                return true;
        }
        pthread_mutex_lock(&long_names_lock);
        for (size_t i = 0; i < ELEMENTSOF(long_names) && !found; i++)
                if (long_names[i].ino == ino && long_names[i].name[0]) {
                        memcpy(buf, long_names[i].name, ASHMEM_NAME_LEN);
                        found = true;
                }
        pthread_mutex_unlock(&long_names_lock);
        return found;
}

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
        if ((r = fd_stat_raw(fd, &st)) < 0 || (fd_flags = fcntl(fd, F_GETFD)) < 0) {
                r = r < 0 ? r : negative_errno();
                goto out;
        }
        prot = ashm__fd_get_prot(fd);
        if (prot < 0) {
                r = prot;
                goto out;
        }
        new_fd = ashm__fd_create(full, (uint64_t) st.st_size, prot & PROT_EXEC ? ASHM__FD_EXEC : 0);
        if (new_fd < 0) {
                r = new_fd;
                goto out;
        }
        /* The driver keeps 255 bytes; a memfd name 238 after the prefix. */
        if (strlen(name) > MEMFD_NAME_MAX - NAME_PREFIX_LEN)
                long_name_keep(new_fd, name);
        r = ashm__fd_get_prot(new_fd);
        if (r >= 0 && r != prot)
                r = ashm__fd_set_prot(new_fd, prot);
        if (r < 0)
                goto out;
        if (dup3(new_fd, fd, fd_flags & FD_CLOEXEC ? O_CLOEXEC : 0) < 0)
                r = negative_errno();
        else
                r = fd_stat_raw(fd, &st);
        if (r >= 0)
                device_mark(fd, (uint64_t) st.st_ino);
out:
        swap_lock_drop();
        return r;
}

/* The region's name: SET_NAME's (after "dev/ashmem/"), "dev/ashmem" for
 * an unnamed region of the shim, the memfd name for any other region. */
static long get_name(int fd, const struct stat *st, unsigned long arg) {
        char memfd_name[MEMFD_NAME_MAX + 1], whole[ASHMEM_NAME_LEN];
        const char *name = memfd_name;
        int r = memfd_get_name(fd, memfd_name, sizeof(memfd_name));

        if (r < 0)
                return r;
        if (is_ashmem_name(memfd_name)) {
                name = memfd_name[NAME_PREFIX_LEN - 1] == '/' && memfd_name[NAME_PREFIX_LEN] != '\0'
                               ? memfd_name + NAME_PREFIX_LEN
                               : ASHMEM_NAME_DEF;
                if (strlen(memfd_name) == MEMFD_NAME_MAX && long_name_find(fd, (uint64_t) st->st_ino, whole))
                        name = whole;
        }
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

static long ioctl_pin(int fd, unsigned cmd, unsigned long arg) {
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
                return ashm__fdcache_pin(fd, pin.offset, pin.len, PIN_OP_PIN);
        case ASHMEM_UNPIN:
                return ashm__fdcache_pin(fd, pin.offset, pin.len, PIN_OP_UNPIN);
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

static long ashmem_ioctl(int fd, const struct stat *st, unsigned cmd, unsigned long arg) {
        switch (cmd) {
        case ASHMEM_SET_NAME:
                return set_name(fd, arg);
        case ASHMEM_GET_NAME:
                return get_name(fd, st, arg);
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
                return ioctl_pin(fd, cmd, arg);
        case ASHMEM_PURGE_ALL_CACHES:
                return purge_all();
        case ASHMEM_GET_FILE_ID:
                return get_file_id(fd, st, arg);
        default:
                return -ENOTTY;
        }
}

/* The top of this thread's stack, found once per thread. */
static __thread uintptr_t stack_top __attribute__((tls_model("initial-exec")));

/* Is [p, p + len) between our own frame and the top of the stack, memory
 * that is certainly there? The common case (a struct ashmem_pin on the
 * caller's stack) then needs no process_vm_readv() to rule out EFAULT. */
static bool on_stack(unsigned long p, size_t len) {
        uintptr_t here = (uintptr_t) __builtin_frame_address(0), top = stack_top;

        if (top == 0) {
                pthread_attr_t a;
                size_t size;
                void *addr;

                if (pthread_getattr_np(pthread_self(), &a) != 0)
                        return false;
                if (pthread_attr_getstack(&a, &addr, &size) == 0)
                        top = stack_top = (uintptr_t) addr + size;
                pthread_attr_destroy(&a);
        }
        return p >= here && p + len > p && p + len <= top;
}

/* PIN and UNPIN of a region this fd number pinned before: no system call
 * (the fd table is kept by close() and the dups below). */
static bool pin_fast(int fd, unsigned cmd, unsigned long arg, long *ret) {
        struct ashmem_pin pin;
        int r;

        if ((cmd != ASHMEM_PIN && cmd != ASHMEM_UNPIN) || !on_stack(arg, sizeof(pin)))
                return false;
        memcpy(&pin, (const void *) arg, sizeof(pin));
        if (pin.len != 0 && (uint64_t) pin.offset + pin.len > UINT32_MAX)
                return false;
        if (!ashm__fdcache_try(fd, pin.offset, pin.len, cmd == ASHMEM_PIN ? PIN_OP_PIN : PIN_OP_UNPIN, &r))
                return false;
        *ret = r;
        return true;
}

/* Which fds get the driver's ioctls: every region (sealed, whoever made
 * it), and the shim's own before their first mmap. The requests the
 * kernel answers for a memfd but the driver does not (FIONREAD...) are
 * refused on the shim's own fds only. -1: not ours; else ashmem_ioctl's
 * answer. */
static long served_ioctl(int fd, unsigned cmd, unsigned long arg, bool *ret_served) {
        char name[MEMFD_NAME_MAX + 1];
        bool sealed, device;
        struct stat st;
        int seals;

        *ret_served = false;
        seals = fd < 0 ? -1 : fcntl(fd, F_GET_SEALS);
        if (seals < 0 || fd_stat_raw(fd, &st) < 0 || !memfd_stat_is_memfd(&st))
                return 0;
        sealed = (seals & SEALS_MAPPED) == SEALS_MAPPED;
        device = device_marked(fd) == (uint64_t) st.st_ino;
        if (!device && (!sealed || _IOC_TYPE(cmd) != __ASHMEMIOC))
                device = device_name(fd, &st, name);
        if (!sealed && !device)
                return 0;
        if (_IOC_TYPE(cmd) != __ASHMEMIOC && !device)
                return 0;
        *ret_served = true;
        return ashmem_ioctl(fd, &st, cmd, arg);
}

_public_ int ioctl(int fd, unsigned long request, ...) {
        unsigned long arg;
        unsigned cmd;
        va_list ap;
        int saved_errno = errno;
        bool served = true;
        long r;

        va_start(ap, request);
        arg = va_arg(ap, unsigned long);
        va_end(ap);
        /* The kernel takes the request as 32 bits: so do we. */
        cmd = (unsigned) request;
        if (!ashmem_request(cmd))
                return fwd_ioctl(fd, request, arg);
        if (!pin_fast(fd, cmd, arg, &r))
                r = served_ioctl(fd, cmd, arg, &served);
        if (!served) {
                errno = saved_errno;
                return fwd_ioctl(fd, request, arg);
        }
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
