/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ashm.h"
#include "fd-util.h"
#include "internal.h"
#include "memfd-util.h"

struct mapping {
        void *addr;
        size_t len;
};

/* One allocation per handle in the common case: the name given at
 * creation lives at the end of the struct, and the first mappings in it. */
struct ashm_region {
        int fd;
        /* name (filled lazily for adopted fds) and the mappings are
         * guarded by regions_lock. */
        char *name; /* name_buf, or a heap copy for an adopted fd */
        struct pinref *pins;  /* the pin state, once pins were used */
        struct mapping *maps; /* inline_maps until more are needed */
        size_t n_maps, cap_maps;
        /* Size and mask as created, while nobody else can have changed
         * them: a sealed region whose fd never left the handle (not
         * through ashm_region_fd(), a dup or set_prot) in this process
         * (fork_count). Saves map() its fstat. */
        uint64_t known_size;
        int known_prot;
        unsigned known_forks;
        bool known;
        struct mapping inline_maps[2];
        char name_buf[];
};

/* One lock for every handle's mutable fields: the work under it is a few
 * instructions, and a single lock is one pthread_atfork() handler away
 * from being safe across fork() (a child forked while another thread
 * held a per-handle lock would inherit it locked, forever). */
static pthread_mutex_t regions_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t regions_once = PTHREAD_ONCE_INIT;
/* fork()s this process has been through (in the child: a handle's fd is
 * then shared with the parent). */
static unsigned fork_count;

static void regions_lock_take(void) {
        pthread_mutex_lock(&regions_lock);
}

static void regions_lock_drop(void) {
        pthread_mutex_unlock(&regions_lock);
}

static void regions_child(void) {
        fork_count++;
        regions_lock_drop();
}

static void regions_atfork(void) {
        pthread_atfork(regions_lock_take, regions_lock_drop, regions_child);
}

static void lock_regions(void) {
        pthread_once(&regions_once, regions_atfork);
        regions_lock_take();
}

/* The prot bits recorded in a file mode (see ashm_region_set_prot). */
static int prot_from_mode(mode_t mode) {
        return (mode & S_IRUSR ? PROT_READ : 0) | (mode & S_IWUSR ? PROT_WRITE : 0) |
               (mode & S_IXUSR ? PROT_EXEC : 0);
}

static mode_t mode_from_prot(int prot) {
        return (prot & PROT_READ ? 0444 : 0) | (prot & PROT_WRITE ? 0222 : 0) |
               (prot & PROT_EXEC ? 0111 : 0);
}

int ashm__fd_create(const char *name, uint64_t size, unsigned flags) {
        bool exec = flags & ASHM__FD_EXEC;
        _cleanup_close_ int fd = -1;

        if (!name)
                name = "ashm";
        if (strlen(name) > ASHM_NAME_MAX)
                return -ENAMETOOLONG;
        if (size > (uint64_t) INT64_MAX)
                return -EFBIG;
        fd = memfd_new(name, exec);
        if (fd < 0)
                return fd;
        /* Kernels before MFD_NOEXEC_SEAL leave the x bits set: clear them
         * so the mask reads PROT_READ|PROT_WRITE. */
        if (!exec && !memfd_exec_flags_supported() && fchmod(fd, 0666) < 0)
                return negative_errno();
        if (size > 0 && ftruncate(fd, (off_t) size) < 0)
                return negative_errno();
        /* Today's AOSP seals its regions so: nobody can truncate one under
         * another holder's mapping (SIGBUS) or grow it, and ashmem_valid()
         * knows a region from any other memfd by it. */
        if ((flags & ASHM__FD_SEAL_SIZE) && fcntl(fd, F_ADD_SEALS, ASHM_SEALS_SIZE) < 0)
                return negative_errno();
        return TAKE_FD(fd);
}

int ashm__fd_get_prot(int fd) {
        struct stat st;
        int r, seals;

        r = memfd_fstat(fd, &st);
        if (r < 0)
                return r;
        seals = fcntl(fd, F_GET_SEALS);
        if (seals < 0)
                return negative_errno();
        r = prot_from_mode(st.st_mode);
        if (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE))
                r &= ~PROT_WRITE;
        if (seals & F_SEAL_EXEC)
                r &= ~PROT_EXEC;
        return r;
}

static bool is_owner(const struct stat *st) {
        return geteuid() == 0 || geteuid() == st->st_uid;
}

/* Write and exec removals are seals, which any holder of a writable fd
 * may add; read removal exists only in the mode bits, which only the
 * owner may change. The owner also clears the matching mode bits, before
 * the exec seal (which freezes them), so the mode tells the truth and
 * other uids cannot reopen the file through /proc for what was removed. */
int ashm__fd_set_prot(int fd, int prot) {
        struct stat st;
        int cur, remove, seals = 0, r;

        /* The fd first, as the driver's ioctl: prot & ~cur also refuses
         * bits outside PROT_READ|PROT_WRITE|PROT_EXEC. */
        cur = ashm__fd_get_prot(fd);
        if (cur < 0)
                return cur;
        if (prot & ~cur)
                return -EINVAL;
        remove = cur & ~prot;
        if (remove == 0)
                return 0;
        r = memfd_fstat(fd, &st);
        if (r < 0)
                return r;
        if ((remove & PROT_READ) && !is_owner(&st))
                return -EPERM;

        if (is_owner(&st) && fchmod(fd, st.st_mode & 07777 & ~mode_from_prot(remove)) < 0)
                return negative_errno();
        if (remove & PROT_WRITE)
                seals |= F_SEAL_FUTURE_WRITE;
        if (remove & PROT_EXEC)
                seals |= F_SEAL_EXEC;
        if (seals && fcntl(fd, F_ADD_SEALS, seals) < 0) {
                /* A kernel without F_SEAL_EXEC: the owner's mode change
                 * records the exec removal by itself. */
                if (errno != EINVAL || !(seals & F_SEAL_EXEC) || !is_owner(&st))
                        return negative_errno();
                if ((seals & F_SEAL_FUTURE_WRITE) && fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) < 0)
                        return negative_errno();
        }
        return 0;
}

/* name NULL: read lazily from the kernel (adopted fds). */
static int region_new(int fd, const char *name, ashm_region **ret) {
        size_t nlen = name ? strlen(name) + 1 : 0;
        ashm_region *r = calloc(1, sizeof(*r) + nlen);

        if (!r)
                return -ENOMEM;
        r->fd = fd;
        if (name) {
                memcpy(r->name_buf, name, nlen);
                r->name = r->name_buf;
        }
        r->maps = r->inline_maps;
        r->cap_maps = ELEMENTSOF(r->inline_maps);
        *ret = r;
        return 0;
}

_public_ int ashm_region_create(const char *name, uint64_t size, unsigned flags, ashm_region **ret_region) {
        _cleanup_close_ int fd = -1;
        int r;

        if (flags & ~(unsigned) ASHM_REGION_EXEC || !ret_region)
                return -EINVAL;
        /* Size 0 stays resizable: a store that grows (ashm_kv_open_region)
         * sizes it itself; create_from_file fills and freezes it. */
        fd = ashm__fd_create(name, size,
                             (flags & ASHM_REGION_EXEC ? ASHM__FD_EXEC : 0) | (size > 0 ? ASHM__FD_SEAL_SIZE : 0));
        if (fd < 0)
                return fd;
        r = region_new(fd, name ? name : "ashm", ret_region);
        if (r < 0)
                return r;
        if (size > 0) {
                pthread_once(&regions_once, regions_atfork);
                (*ret_region)->known_size = size;
                (*ret_region)->known_prot = PROT_READ | PROT_WRITE | (flags & ASHM_REGION_EXEC ? PROT_EXEC : 0);
                (*ret_region)->known_forks = __atomic_load_n(&fork_count, __ATOMIC_RELAXED);
                (*ret_region)->known = true;
        }
        TAKE_FD(fd);
        return 0;
}

/* The fd may now reach others, who may change the mask. */
static void region_unknown(const ashm_region *region) {
        __atomic_store_n(&((ashm_region *) region)->known, false, __ATOMIC_RELAXED);
}

/* A memfd, for sure and cheaply: only shmem and hugetlbfs files answer
 * F_GET_SEALS, and every one of those that is not a sealable memfd
 * answers exactly F_SEAL_SEAL, forever. Anything else is a memfd made
 * with MFD_ALLOW_SEALING (every ashm region); F_SEAL_SEAL alone needs the
 * fstat check (a memfd without sealing, or a /dev/shm file). */
static int adopt_check(int fd) {
        struct stat st;
        int seals;

        if (fd < 0)
                return -EBADF;
        seals = fcntl(fd, F_GET_SEALS);
        if (seals >= 0 && seals != F_SEAL_SEAL)
                return 0;
        if (seals < 0 && errno == EBADF)
                return -EBADF;
        return memfd_fstat(fd, &st);
}

_public_ int ashm_region_adopt(int fd, unsigned flags, ashm_region **ret_region) {
        _cleanup_close_ int owned = fd;
        int r;

        if (flags != 0 || !ret_region)
                return -EINVAL;
        r = adopt_check(owned);
        if (r < 0)
                return r;
        r = region_new(owned, NULL, ret_region);
        if (r < 0)
                return r;
        TAKE_FD(owned);
        return 0;
}

_public_ int ashm_region_dup(const ashm_region *region, ashm_region **ret_region) {
        _cleanup_close_ int fd = -1;
        int r;

        if (!region || !ret_region)
                return -EINVAL;
        region_unknown(region);
        fd = fcntl(region->fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return negative_errno();
        r = region_new(fd, ashm_region_name(region), ret_region);
        if (r < 0)
                return r;
        TAKE_FD(fd);
        return 0;
}

_public_ void ashm_region_close(ashm_region *region) {
        if (!region)
                return;
        ashm__pins_release(region->pins);
        safe_close(region->fd);
        if (region->maps != region->inline_maps)
                free(region->maps);
        if (region->name != region->name_buf)
                free(region->name);
        free(region);
}

_public_ int ashm_region_fd(const ashm_region *region) {
        if (!region)
                return -EBADF;
        region_unknown(region);
        return region->fd;
}

int ashm__region_fd(const ashm_region *region, uint64_t *ret_known_size) {
        if (!region)
                return -EBADF;
        /* As map_facts(): sealed, so the size cannot have changed. */
        if (__atomic_load_n(&region->known, __ATOMIC_RELAXED) &&
            region->known_forks == __atomic_load_n(&fork_count, __ATOMIC_RELAXED))
                *ret_known_size = region->known_size;
        else
                *ret_known_size = UINT64_MAX;
        return region->fd;
}

_public_ int ashm_region_get_size(const ashm_region *region, uint64_t *ret_size) {
        struct stat st;
        int r;

        if (!region || !ret_size)
                return -EINVAL;
        r = fd_stat_raw(region->fd, &st);
        if (r < 0)
                return r;
        *ret_size = (uint64_t) st.st_size;
        return 0;
}

_public_ const char *ashm_region_name(const ashm_region *region) {
        ashm_region *r = (ashm_region *) region; /* the name is a cache */
        const char *name;

        if (!r)
                return "";
        lock_regions();
        if (!r->name) {
                char buf[ASHM_NAME_MAX + 1];

                if (memfd_get_name(r->fd, buf, sizeof(buf)) >= 0)
                        r->name = strdup(buf);
        }
        name = r->name ? r->name : "";
        regions_lock_drop();
        return name;
}

_public_ int ashm_region_get_prot(const ashm_region *region) {
        return region ? ashm__fd_get_prot(region->fd) : -EINVAL;
}

_public_ int ashm_region_set_prot(ashm_region *region, int prot) {
        if (!region)
                return -EINVAL;
        region_unknown(region);
        return ashm__fd_set_prot(region->fd, prot);
}

static int mapping_add(ashm_region *r, void *addr, size_t len) {
        int ret = 0;

        lock_regions();
        if (r->n_maps == r->cap_maps) {
                size_t cap = r->cap_maps * 2;
                struct mapping *m = malloc(cap * sizeof(*m));

                if (!m) {
                        ret = -ENOMEM;
                        goto out;
                }
                memcpy(m, r->maps, r->n_maps * sizeof(*m));
                if (r->maps != r->inline_maps)
                        free(r->maps);
                r->maps = m;
                r->cap_maps = cap;
        }
        r->maps[r->n_maps++] = (struct mapping) { addr, len };
out:
        regions_lock_drop();
        return ret;
}

/* Remove the mapping at addr (of length len, or any length if len is 0)
 * from the list; its length, or 0 if there is none. */
static size_t mapping_take(ashm_region *r, void *addr, size_t len) {
        size_t found = 0;

        lock_regions();
        for (size_t i = 0; i < r->n_maps; i++) {
                if (r->maps[i].addr != addr || (len != 0 && r->maps[i].len != len))
                        continue;
                found = r->maps[i].len;
                r->maps[i] = r->maps[--r->n_maps];
                break;
        }
        regions_lock_drop();
        return found;
}

/* Resolve a map request against the region's current size: len 0 runs to
 * the end of the last page, and nothing may pass it. */
static int map_range(const struct stat *st, uint64_t offset, size_t len, size_t *ret_len) {
        uint64_t page = page_size(), end = page_align_u64((uint64_t) st->st_size, page);

        if (st->st_size == 0 || offset % page != 0 || offset >= end)
                return -EINVAL;
        if (len == 0)
                len = (size_t) (end - offset);
        if (len > end - offset)
                return -EINVAL;
        *ret_len = len;
        return 0;
}

/* What map() checks against: the region's size and read/exec mask. */
static int map_facts(const ashm_region *region, struct stat *ret_st, int *ret_mask) {
        int r;

        if (__atomic_load_n(&region->known, __ATOMIC_RELAXED) &&
            region->known_forks == __atomic_load_n(&fork_count, __ATOMIC_RELAXED)) {
                ret_st->st_size = (off_t) region->known_size;
                *ret_mask = region->known_prot;
                return 1;
        }
        r = fd_stat_raw(region->fd, ret_st);
        if (r < 0)
                return r;
        *ret_mask = prot_from_mode(ret_st->st_mode);
        return 0;
}

_public_ int ashm_region_map(ashm_region *region, uint64_t offset, size_t len, int prot, void **ret_addr) {
        struct stat st;
        int r, mask, known;
        void *addr;

        if (!region || !ret_addr || (prot & ~ASHM_PROT_ALL))
                return -EINVAL;
        /* Size and read/exec mask from one fstat (or the creation); the
         * write bit is also enforced by the kernel through the seals. */
        known = map_facts(region, &st, &mask);
        if (known < 0)
                return known;
        r = map_range(&st, offset, len, &len);
        if (r < 0)
                return r;
        if (prot & ~mask)
                return -EPERM;
        /* Exec removed by a holder who could not change the mode. */
        if (!known && (prot & PROT_EXEC) && (fcntl(region->fd, F_GET_SEALS) & F_SEAL_EXEC))
                return -EPERM;
        addr = mmap(NULL, len, prot, MAP_SHARED, region->fd, (off_t) offset);
        if (addr == MAP_FAILED)
                return errno == EACCES ? -EPERM : negative_errno();
        r = mapping_add(region, addr, len);
        if (r < 0) {
                munmap(addr, len);
                return r;
        }
        *ret_addr = addr;
        return 0;
}

_public_ int ashm_region_unmap(ashm_region *region, void *addr, size_t len) {
        size_t found;

        if (!region || !addr)
                return -EINVAL;
        found = mapping_take(region, addr, len);
        if (found == 0)
                return -EINVAL;
        if (munmap(addr, found) < 0)
                return negative_errno();
        return 0;
}

static int io_range_check(int fd, uint64_t offset, size_t len) {
        struct stat st;
        int r = fd_stat_raw(fd, &st);

        if (r < 0)
                return r;
        if (offset > (uint64_t) st.st_size || len > (uint64_t) st.st_size - offset)
                return -EINVAL;
        return 0;
}

/* MemoryFile's rule: reading or writing pages that were purged fails.
 * Checked before and after the copy, since a purge may run meanwhile;
 * known once this process has used the region's pins. */
static int purged_check(const ashm_region *region, uint64_t offset, size_t len) {
        struct pinref *ref = __atomic_load_n(&region->pins, __ATOMIC_ACQUIRE);

        return ashm__pins_purged(ref, offset, len) > 0 ? -ENODATA : 0;
}

_public_ int ashm_region_read(const ashm_region *region, uint64_t offset, void *buf, size_t len) {
        int r;

        if (!region || (!buf && len > 0))
                return -EINVAL;
        r = io_range_check(region->fd, offset, len);
        if (r >= 0)
                r = purged_check(region, offset, len);
        if (r >= 0)
                r = pread_full(region->fd, buf, len, (off_t) offset);
        if (r >= 0)
                r = purged_check(region, offset, len);
        return r;
}

_public_ int ashm_region_write(ashm_region *region, uint64_t offset, const void *buf, size_t len) {
        int r;

        if (!region || (!buf && len > 0))
                return -EINVAL;
        r = io_range_check(region->fd, offset, len);
        if (r >= 0)
                r = purged_check(region, offset, len);
        if (r >= 0)
                r = pwrite_full(region->fd, buf, len, (off_t) offset);
        if (r >= 0)
                r = purged_check(region, offset, len);
        return r;
}

_public_ int ashm_region_freeze(ashm_region *region) {
        int seals;

        if (!region)
                return -EINVAL;
        region_unknown(region);
        seals = fcntl(region->fd, F_GET_SEALS);
        if (seals < 0)
                return negative_errno();
        if ((seals & ASHM_SEALS_FROZEN) == ASHM_SEALS_FROZEN)
                return 0;
        if (seals & F_SEAL_SEAL)
                return -EPERM;
        if (fcntl(region->fd, F_ADD_SEALS, ASHM_SEALS_FROZEN) < 0)
                return negative_errno();
        return 0;
}

_public_ int ashm_region_is_frozen(const ashm_region *region) {
        int seals;

        if (!region)
                return -EINVAL;
        seals = fcntl(region->fd, F_GET_SEALS);
        if (seals < 0)
                return negative_errno();
        return (seals & ASHM_SEALS_FROZEN) == ASHM_SEALS_FROZEN;
}

/* Copy everything src has into dst, to its end: sendfile() where it
 * works, plain read()/write() where the source refuses it. */
static int copy_to_eof(int src, int dst) {
        char buf[64 * 1024];

        for (;;) {
                ssize_t n = sendfile(dst, src, NULL, 1 << 30);

                if (n == 0)
                        return 0;
                if (n > 0)
                        continue;
                if (errno == EINTR)
                        continue;
                if (errno != EINVAL && errno != ENOSYS)
                        return negative_errno();
                break;
        }
        for (;;) {
                ssize_t n = read(src, buf, sizeof(buf));
                int r;

                if (n == 0)
                        return 0;
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                r = write_full(dst, buf, (size_t) n);
                if (r < 0)
                        return r;
        }
}

static void default_name(const char *path, char *buf, size_t len) {
        const char *base = strrchr(path, '/');

        base = base ? base + 1 : path;
        if (*base == '\0')
                base = "ashm";
        snprintf(buf, len, "%.*s", ASHM_NAME_MAX, base);
}

_public_ int ashm_region_create_from_file(const char *path, const char *name, unsigned flags,
                                          ashm_region **ret_region) {
        _cleanup_close_ int src = -1;
        char namebuf[ASHM_NAME_MAX + 1];
        ashm_region *region;
        struct stat st;
        int r;

        if (!path || !ret_region || (flags & ~(unsigned) ASHM_REGION_EXEC))
                return -EINVAL;
        /* O_NONBLOCK: a FIFO at path must not hang us before we refuse it. */
        src = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (src < 0)
                return negative_errno();
        if (fstat(src, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if (fcntl(src, F_SETFL, 0) < 0)
                return negative_errno();
        if (!name) {
                default_name(path, namebuf, sizeof(namebuf));
                name = namebuf;
        }
        r = ashm_region_create(name, 0, flags, &region);
        if (r < 0)
                return r;
        /* Copy to the end rather than st_size bytes: the file may change
         * under us, and /proc-like files report size 0. */
        r = copy_to_eof(src, region->fd);
        if (r >= 0 && lseek(region->fd, 0, SEEK_SET) < 0)
                r = negative_errno(); /* read() on the fd starts at 0 */
        if (r >= 0)
                r = ashm_region_freeze(region);
        if (r < 0) {
                ashm_region_close(region);
                return r;
        }
        *ret_region = region;
        return 0;
}

_public_ int ashm_region_pin(ashm_region *region, uint64_t offset, uint64_t len) {
        return region ? ashm__pins_op(region->fd, &region->pins, offset, len, PIN_OP_PIN) : -EINVAL;
}

_public_ int ashm_region_unpin(ashm_region *region, uint64_t offset, uint64_t len) {
        return region ? ashm__pins_op(region->fd, &region->pins, offset, len, PIN_OP_UNPIN) : -EINVAL;
}

_public_ int ashm_region_get_pin_status(ashm_region *region, uint64_t offset, uint64_t len) {
        return region ? ashm__pins_op(region->fd, &region->pins, offset, len, PIN_OP_STATUS) : -EINVAL;
}
