/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <sys/stat.h>

#include "ashm.h"
#include "fd-util.h"
#include "internal.h"

int ashm__pin_range_check(uint64_t size, uint64_t offset, uint64_t len) {
        uint64_t page = page_size(), end = page_align_u64(size, page);

        if ((offset | len) & (page - 1))
                return -EINVAL;
        if (offset > end)
                return -EINVAL;
        if (len == 0)
                len = end - offset;
        if (len > end - offset)
                return -EINVAL;
        return 0;
}

static int pin_check_fd(int fd, uint64_t offset, uint64_t len) {
        struct stat st;
        int r;

        r = ashm__fd_stat(fd, &st);
        if (r < 0)
                return r;
        return ashm__pin_range_check((uint64_t) st.st_size, offset, len);
}

/* Nothing is purged until the reclaimer exists, so a pin never finds a
 * purged page: ASHM_NOT_PURGED, as Android's memfd mode answers. */
int ashm__fd_pin(int fd, uint64_t offset, uint64_t len) {
        int r = pin_check_fd(fd, offset, len);

        return r < 0 ? r : ASHM_NOT_PURGED;
}

int ashm__fd_unpin(int fd, uint64_t offset, uint64_t len) {
        int r = pin_check_fd(fd, offset, len);

        return r < 0 ? r : 0;
}
