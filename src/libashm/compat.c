/* SPDX-License-Identifier: MIT */
/* Android's libcutils and NDK shared-memory APIs on libashm regions.
 * They speak -1 and errno, so each maps ashm's -errno at the boundary. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "android/sharedmem.h"
#include "ashm.h"
#include "cutils/ashmem.h"
#include "internal.h"
#include "linux/ashmem.h"

/* -1 with errno set, for an ashm -errno; r itself otherwise. A non-region
 * fd answers ENOTTY, what the driver's ioctl says to any other file. */
static int errno_ret(int r) {
        if (r >= 0)
                return r;
        errno = r == -EMEDIUMTYPE ? ENOTTY : -r;
        return -1;
}

_public_ int ashmem_valid(int fd) {
        struct stat st;

        return ashm__fd_stat(fd, &st) >= 0;
}

_public_ int ashmem_create_region(const char *name, size_t size) {
        char buf[ASHM_NAME_MAX + 1];

        /* The driver keeps 255 bytes of a name; a memfd keeps 249. */
        snprintf(buf, sizeof(buf), "%s", name ? name : ASHMEM_NAME_DEF);
        return errno_ret(ashm__fd_create(buf, size, true));
}

_public_ int ashmem_set_prot_region(int fd, int prot) {
        return errno_ret(ashm__fd_set_prot(fd, prot));
}

_public_ int ashmem_pin_region(int fd, size_t offset, size_t len) {
        return errno_ret(ashm__fd_pin(fd, offset, len));
}

_public_ int ashmem_unpin_region(int fd, size_t offset, size_t len) {
        return errno_ret(ashm__fd_unpin(fd, offset, len));
}

_public_ int ashmem_get_size_region(int fd) {
        struct stat st;
        int r = ashm__fd_stat(fd, &st);

        if (r >= 0 && st.st_size > INT_MAX)
                r = -EOVERFLOW;
        return errno_ret(r < 0 ? r : (int) st.st_size);
}

_public_ int ASharedMemory_create(const char *name, size_t size) {
        if (size == 0)
                return -EINVAL;
        return ashmem_create_region(name, size);
}

_public_ size_t ASharedMemory_getSize(int fd) {
        struct stat st;

        return ashm__fd_stat(fd, &st) < 0 ? 0 : (size_t) st.st_size;
}

_public_ int ASharedMemory_setProt(int fd, int prot) {
        return ashmem_set_prot_region(fd, prot);
}
