/* SPDX-License-Identifier: MIT */
/* Android's libcutils and NDK shared-memory APIs on libashm regions.
 * They speak -1 and errno, so each maps ashm's -errno at the boundary. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "android/sharedmem.h"
#include "ashm.h"
#include "cutils/ashmem.h"
#include "internal.h"
#include "linux/ashmem.h"
#include "fd-util.h"
#include "memfd-util.h"

/* -1 with errno set, for an ashm -errno; r itself otherwise. A non-region
 * fd answers ENOTTY, what the driver's ioctl says to any other file. */
static int errno_ret(int r) {
        if (r >= 0)
                return r;
        errno = r == -EMEDIUMTYPE ? ENOTTY : -r;
        return -1;
}

/* A region of libashm-devshim.so before its first mmap: a memfd named as
 * the driver names its file, not sealed yet (the first mmap seals it). */
static bool devshim_unmapped(int fd, int seals) {
        char name[MEMFD_NAME_MAX + 1];
        size_t n = sizeof(ASHMEM_NAME_DEF) - 1;

        if (seals & F_SEAL_SEAL)
                return false;
        if (memfd_get_name(fd, name, sizeof(name)) < 0)
                return false;
        return strncmp(name, ASHMEM_NAME_DEF, n) == 0 && (name[n] == '\0' || name[n] == '/');
}

_public_ int ashmem_valid(int fd) {
        int seals;

        if (fd < 0)
                return 0;
        /* Only memfds made with MFD_ALLOW_SEALING can carry these seals
         * (any other shmem file answers F_SEAL_SEAL, anything else fails). */
        seals = fcntl(fd, F_GET_SEALS);
        if (seals < 0)
                return 0;
        if ((seals & ASHM_SEALS_SIZE) == ASHM_SEALS_SIZE)
                return 1;
        return devshim_unmapped(fd, seals);
}

_public_ int ashmem_create_region(const char *name, size_t size) {
        char buf[ASHM_NAME_MAX + 1];

        /* The driver keeps 255 bytes of a name; a memfd keeps 249. */
        snprintf(buf, sizeof(buf), "%s", name ? name : ASHMEM_NAME_DEF);
        return errno_ret(ashm__fd_create(buf, size, ASHM__FD_EXEC | ASHM__FD_SEAL_SIZE));
}

_public_ int ashmem_set_prot_region(int fd, int prot) {
        return errno_ret(ashm__fd_set_prot(fd, prot));
}

/* ------------------------------------------------------------------ */
/* The fd-based pins, as fast as the handle's                           */
/*
 * A handle keeps its region's pin-state reference; a cutils caller has
 * only the fd number, which may be closed and reused for another file at
 * any time. So each fd number below FD_SLOTS remembers the file it was
 * last pinned through (device and inode) and that file's reference.
 *
 * Plain libashm cannot see close(): every call proves the fd still is that
 * file with one fstat system call (the raw one, which is cheaper than
 * glibc's fstatat(fd, "")). Inside libashm-devshim.so, which interposes
 * close(), dup2(), dup3(), close_range() and closefrom() and forgets the
 * slot of every fd number they change, the slot is trusted as it is
 * (ashm__fdcache_trusted): no system call at all. Its region size is
 * then the one remembered, which is safe because the fast path only ever
 * remembers regions sealed against resizing.
 *
 * A slot is replaced only when its fd number now names another file,
 * that is after the program closed it: a program pinning through an fd
 * that another thread is closing has a bug of its own. The references
 * slots hold are released when they are replaced.
 */
#define FD_SLOTS 1024

struct fd_slot {
        unsigned seq; /* odd while being changed */
        uint64_t dev, ino, size;
        struct pinref *ref;
};

static struct fd_slot fd_slots[FD_SLOTS];
static pthread_mutex_t fd_slots_mutex = PTHREAD_MUTEX_INITIALIZER;
bool ashm__fdcache_trusted;

static void slots_unlock(void) {
        pthread_mutex_unlock(&fd_slots_mutex);
}

static void slots_take(void) {
        pthread_mutex_lock(&fd_slots_mutex);
}

static void slots_atfork(void) {
        pthread_atfork(slots_take, slots_unlock, slots_unlock);
}

/* The slots' lock, made safe across fork() on first use. */
static void slots_lock(void) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;

        pthread_once(&once, slots_atfork);
        slots_take();
}

/* The slot's reference if it describes (dev, ino), or NULL. */
static struct pinref *slot_ref(struct fd_slot *s, const struct stat *st, uint64_t *ret_size) {
        unsigned seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
        struct pinref *ref;
        uint64_t size;

        if (seq & 1)
                return NULL;
        ref = __atomic_load_n(&s->ref, __ATOMIC_RELAXED);
        size = __atomic_load_n(&s->size, __ATOMIC_RELAXED);
        if (st && (__atomic_load_n(&s->dev, __ATOMIC_RELAXED) != (uint64_t) st->st_dev ||
                   __atomic_load_n(&s->ino, __ATOMIC_RELAXED) != (uint64_t) st->st_ino))
                return NULL;
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&s->seq, __ATOMIC_RELAXED) != seq)
                return NULL;
        *ret_size = size;
        return ref;
}

/* Point the slot at st's file with ref (NULL: forget it). Locked. */
static void slot_set(struct fd_slot *s, const struct stat *st, struct pinref *ref) {
        struct pinref *old;

        __atomic_store_n(&s->seq, s->seq + 1, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_RELEASE);
        old = s->ref;
        __atomic_store_n(&s->dev, st ? (uint64_t) st->st_dev : 0, __ATOMIC_RELAXED);
        __atomic_store_n(&s->ino, st ? (uint64_t) st->st_ino : 0, __ATOMIC_RELAXED);
        __atomic_store_n(&s->size, st ? (uint64_t) st->st_size : 0, __ATOMIC_RELAXED);
        __atomic_store_n(&s->ref, ref, __ATOMIC_RELAXED);
        __atomic_store_n(&s->seq, s->seq + 1, __ATOMIC_RELEASE);
        if (old && old != ref)
                ashm__pins_release(old);
}

void ashm__fdcache_forget(int fd) {
        if (fd < 0 || fd >= FD_SLOTS || !__atomic_load_n(&fd_slots[fd].ref, __ATOMIC_RELAXED))
                return;
        slots_lock();
        slot_set(&fd_slots[fd], NULL, NULL);
        slots_unlock();
}

void ashm__fdcache_forget_from(unsigned first, unsigned last) {
        for (unsigned fd = first; fd <= last && fd < FD_SLOTS; fd++)
                ashm__fdcache_forget((int) fd);
}

static int fd_op_slow(int fd, uint64_t offset, uint64_t len, enum pin_op op) {
        switch (op) {
        case PIN_OP_PIN:
                return ashm__fd_pin(fd, offset, len);
        case PIN_OP_UNPIN:
                return ashm__fd_unpin(fd, offset, len);
        default:
                return ashm__fd_get_pin_status(fd, offset, len);
        }
}

/* Register fd's region in its slot (first pin through this fd number, or
 * the number now names another file), then do op. Sealed regions only:
 * the slot remembers their size. */
static int slot_fill(int fd, const struct stat *st, uint64_t offset, uint64_t len, enum pin_op op) {
        struct pinref *ref = NULL;
        int seals = fcntl(fd, F_GET_SEALS), r;

        if (seals < 0 || (seals & ASHM_SEALS_SIZE) != ASHM_SEALS_SIZE)
                return fd_op_slow(fd, offset, len, op);
        r = ashm__pin_range_check((uint64_t) st->st_size, offset, len);
        if (r < 0)
                return r;
        r = ashm__pins_op(fd, &ref, offset, len, op);
        if (!ref)
                return r;
        slots_lock();
        slot_set(&fd_slots[fd], st, ref);
        slots_unlock();
        return r;
}

/* The trusted fast path alone: true (and *ret set) if it served the call. */
bool ashm__fdcache_try(int fd, uint64_t offset, uint64_t len, enum pin_op op, int *ret) {
        struct pinref *ref;
        uint64_t size;

        if (fd < 0 || fd >= FD_SLOTS || op == PIN_OP_STATUS)
                return false;
        ref = slot_ref(&fd_slots[fd], NULL, &size);
        if (!ref || ashm__pin_range_check(size, offset, len) < 0)
                return false;
        if (len == 0)
                len = page_align_u64(size, page_size()) - offset;
        *ret = ashm__pins_op(fd, &ref, offset, len, op);
        return *ret != -EPERM;
}

int ashm__fdcache_pin(int fd, uint64_t offset, uint64_t len, enum pin_op op) {
        struct pinref *ref;
        struct stat st;
        uint64_t size;
        int r;

        if (fd < 0 || fd >= FD_SLOTS)
                return fd_op_slow(fd, offset, len, op);
        if (__atomic_load_n(&ashm__fdcache_trusted, __ATOMIC_RELAXED)) {
                ref = slot_ref(&fd_slots[fd], NULL, &size);
                if (ref)
                        goto fast;
        }
        r = fd_stat_raw(fd, &st);
        if (r < 0)
                return r;
        if (!memfd_stat_is_memfd(&st))
                return -EMEDIUMTYPE;
        ref = slot_ref(&fd_slots[fd], &st, &size);
        if (!ref)
                return slot_fill(fd, &st, offset, len, op);
fast:
        r = ashm__pin_range_check(size, offset, len);
        if (r < 0)
                return r;
        /* "To the end", resolved here so that it takes the fast path. */
        if (len == 0 && op != PIN_OP_STATUS)
                len = page_align_u64(size, page_size()) - offset;
        r = ashm__pins_op(fd, &ref, offset, len, op);
        /* A reference registered through a read-only fd refuses pins,
         * though this fd may now be a writable one: ask again. */
        if (r == -EPERM)
                r = fd_op_slow(fd, offset, len, op);
        return r;
}

_public_ int ashmem_pin_region(int fd, size_t offset, size_t len) {
        return errno_ret(ashm__fdcache_pin(fd, offset, len, PIN_OP_PIN));
}

_public_ int ashmem_unpin_region(int fd, size_t offset, size_t len) {
        return errno_ret(ashm__fdcache_pin(fd, offset, len, PIN_OP_UNPIN));
}

_public_ int ashmem_get_size_region(int fd) {
        struct stat st;
        int r = memfd_fstat(fd, &st);

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

        return memfd_fstat(fd, &st) < 0 ? 0 : (size_t) st.st_size;
}

_public_ int ASharedMemory_setProt(int fd, int prot) {
        return ashmem_set_prot_region(fd, prot);
}
