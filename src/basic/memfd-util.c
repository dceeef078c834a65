/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fd-util.h"
#include "memfd-util.h"

/* Whether the kernel takes MFD_EXEC/MFD_NOEXEC_SEAL: -1 until known. */
static int have_exec_flags = -1;

bool memfd_exec_flags_supported(void) {
        return __atomic_load_n(&have_exec_flags, __ATOMIC_RELAXED) == 1;
}

int memfd_new(const char *name, bool exec) {
        unsigned base = MFD_CLOEXEC | MFD_ALLOW_SEALING;
        int fd;

        if (__atomic_load_n(&have_exec_flags, __ATOMIC_RELAXED) != 0) {
                fd = memfd_create(name, base | (exec ? MFD_EXEC : MFD_NOEXEC_SEAL));
                if (fd >= 0) {
                        __atomic_store_n(&have_exec_flags, 1, __ATOMIC_RELAXED);
                        return fd;
                }
                if (errno != EINVAL)
                        return negative_errno();
                /* EINVAL may also mean a bad name: only remember the
                 * kernel's answer once the plain call succeeds. */
        }
        fd = memfd_create(name, base);
        if (fd < 0)
                return negative_errno();
        __atomic_store_n(&have_exec_flags, 0, __ATOMIC_RELAXED);
        return fd;
}

static dev_t memfd_dev(void) {
        static dev_t dev;
        static int known;

        if (!__atomic_load_n(&known, __ATOMIC_ACQUIRE)) {
                struct stat st;
                /* memfd_new: with vm.memfd_noexec=2 a plain memfd_create
                 * is refused. */
                int fd = memfd_new("ashm-probe", false);

                if (fd < 0)
                        return (dev_t) -1;
                if (fstat(fd, &st) < 0) {
                        safe_close(fd);
                        return (dev_t) -1;
                }
                safe_close(fd);
                dev = st.st_dev;
                __atomic_store_n(&known, 1, __ATOMIC_RELEASE);
        }
        return dev;
}

int memfd_fstat(int fd, struct stat *ret_st) {
        int r;

        if (fd < 0)
                return -EBADF;
        r = fd_stat_raw(fd, ret_st);
        if (r < 0)
                return r;
        if (!memfd_stat_is_memfd(ret_st))
                return -EMEDIUMTYPE;
        return 0;
}

bool memfd_stat_is_memfd(const struct stat *st) {
        return S_ISREG(st->st_mode) && st->st_dev == memfd_dev();
}

int memfd_get_name(int fd, char *buf, size_t len) {
        static const char prefix[] = "/memfd:", suffix[] = " (deleted)";
        char path[64], link[MEMFD_NAME_MAX + sizeof(prefix) + sizeof(suffix) + 1];
        ssize_t n;
        size_t nlen;

        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        n = readlink(path, link, sizeof(link) - 1);
        if (n < 0)
                return negative_errno();
        link[n] = '\0';
        if (strncmp(link, prefix, sizeof(prefix) - 1) != 0)
                return -EMEDIUMTYPE;
        nlen = (size_t) n - (sizeof(prefix) - 1);
        if (nlen >= sizeof(suffix) - 1 &&
            strcmp(link + (size_t) n - (sizeof(suffix) - 1), suffix) == 0)
                nlen -= sizeof(suffix) - 1;
        if (nlen >= len)
                return -ENAMETOOLONG;
        memcpy(buf, link + sizeof(prefix) - 1, nlen);
        buf[nlen] = '\0';
        return 0;
}
