/* SPDX-License-Identifier: MIT */
/* libashm-devshim.so: the ASHMEM_* ioctls, as the driver answers them.
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

