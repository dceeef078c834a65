/* SPDX-License-Identifier: MIT */
/*
 * ashm KV: open and close, the first writer, a new store laid out (the rules are in kv.c).
 */

#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ashm.h"
#include "crc32c.h"
#include "fd-util.h"
#include "fork-gen.h"
#include "internal.h"
#include "kv-format.h"
#include "futex-util.h"
#include "kv.h"
#include "lock.h"
#include "macro.h"
#include "memfd-util.h"

/* ---- open and close ----------------------------------------------------- */

static void read_boot_id(uint8_t id[16]) {
        char buf[64] = "";
        int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
        uint32_t a = 0, b = 0;

        if (fd >= 0) {
                ssize_t n = read(fd, buf, sizeof(buf) - 1);

                buf[n > 0 ? n : 0] = '\0';
                close(fd);
        }
        a = crc32c(0, buf, strlen(buf));
        b = crc32c(a, buf, strlen(buf));
        memset(id, 0, 16);
        memcpy(id, &a, 4);
        memcpy(id + 4, &b, 4);
        memcpy(id + 8, buf, MIN(strlen(buf), (size_t) 8));
}

uint32_t kv_header_crc(const struct kv_header *h) {
        return crc32c(0, h, offsetof(struct kv_header, static_crc));
}

/* Lay a new store out in the mapping of an empty file. */
static int init_store(ashm_kv *kv) {
        struct kv_header *h = kv->h;
        uint64_t index_bytes = ashm__kv_round_page(KV_MIN_SLOTS * 8);
        struct timespec ts;
        uint64_t seed = 0;
        uint64_t size = KV_HEADER_SIZE + index_bytes + KV_MIN_LOG;
        struct stat st;

        /* Not prepare_space(): there is no header to read the size from. */
        if (fstat(kv->fd, &st) < 0)
                return negative_errno();
        if (fallocate(kv->fd, 0, 0, (off_t) size) < 0 &&
            (errno != EOPNOTSUPP || ((uint64_t) st.st_size < size && ftruncate(kv->fd, (off_t) size) < 0))) {
                if (errno == EPERM && (uint64_t) st.st_size < size)
                        return kv_fail(-ENOSPC, "the region is sealed against growing and smaller (%jd bytes) "
                                       "than a store's %" PRIu64 ": create it larger",
                                       (intmax_t) st.st_size, size);
                return kv_fail(negative_errno(), "cannot make room for the store: %m");
        }
        if ((uint64_t) st.st_size > size)
                size = (uint64_t) st.st_size & ~(uint64_t) 7;
        memset(kv->base, 0, KV_HEADER_SIZE + index_bytes);
        clock_gettime(CLOCK_REALTIME, &ts);
        if (getentropy(&seed, sizeof(seed)) < 0)
                seed = (uint64_t) ts.tv_nsec * UINT64_C(0x9E3779B97F4A7C15) ^ (uint64_t) getpid();
        h->version = KV_VERSION;
        h->header_size = KV_HEADER_SIZE;
        h->seed = seed;
        h->created_ns = (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
        h->file_size = size;
        h->arenas[0] = (struct kv_arena) {
                .off = KV_HEADER_SIZE,
                .slots = KV_MIN_SLOTS,
                .log_off = KV_HEADER_SIZE + index_bytes,
                .log_cap = KV_MIN_LOG,
        };
        ashm__kv_init_lock(h);
        /* The magic last: a creator killed before it leaves an empty
         * file, which the next creator lays out again. */
        h->magic = KV_MAGIC;
        h->static_crc = kv_header_crc(h);
        h->magic = 0;
        store_rel(&h->magic, KV_MAGIC);
        if (kv->flags & ASHM_KV_SYNC)
                return ashm__kv_sync_range(kv, 0, KV_HEADER_SIZE);
        return 0;
}

int kv_header_check(const struct kv_header *h, uint64_t file_size) {
        if (h->magic != KV_MAGIC)
                return kv_fail(-EBADMSG, "not an ashm KV store (no magic)");
        /* Version 1 differs only in the lock: readable, and migrated by
         * the first writer (first_writer()). */
        if (h->version != KV_VERSION && h->version != KV_VERSION_PTHREAD)
                return kv_fail(h->version > KV_VERSION ? -EPROTONOSUPPORT : -EBADMSG,
                               "store format version %u, this library reads versions %u and %u", h->version,
                               KV_VERSION_PTHREAD, KV_VERSION);
        if (h->header_size != KV_HEADER_SIZE || h->static_crc != kv_header_crc(h))
                return kv_fail(-EBADMSG, "the store's header is damaged (checksum mismatch)");
        if (h->file_size > file_size)
                return kv_fail(-EBADMSG, "the store is truncated: %" PRIu64 " bytes of %" PRIu64, file_size,
                               h->file_size);
        return 0;
}

_public_ void ashm_kv_close(ashm_kv *kv) {
        if (!kv)
                return;
        if (kv->owner.id != 0)
                lock_owner_done(&kv->owner);
        if (kv->base)
                munmap(kv->base, kv->map_len);
        safe_close(kv->fd);
        free(kv);
}

static int lock_range(int fd, short type, int cmd) {
        struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };

        while (fcntl(fd, cmd, &fl) < 0)
                if (errno != EINTR)
                        return negative_errno();
        return 0;
}

/* The first writer to open the store since every other left: the lock
 * word may name a thread of another boot, and a crash may have left the
 * index behind the log. */
static int first_writer(ashm_kv *kv) {
        struct kv_header *h = kv->h;
        uint8_t boot[16];
        int r;

        ashm__kv_init_lock(h);
        if (h->version == KV_VERSION_PTHREAD) {
                /* Migrate: the glibc mutex gave way to the lock above. A
                 * writer of an older ashm would hold the flock we hold
                 * alone, and refuses version 2 from now on. */
                h->version = KV_VERSION;
                h->static_crc = kv_header_crc(h);
        }
        read_boot_id(boot);
        if (memcmp(boot, h->boot_id, sizeof(boot)) != 0) {
                if (h->dirty) {
                        /* The machine went down with writes not synced:
                         * pages may have reached the disk in any order. */
                        ashm_kv_report rep;

                        r = ashm_kv_check_fd(kv->fd, NULL, NULL, &rep);
                        if (r != 0)
                                return kv_fail(r < 0 ? r : -EUCLEAN,
                                               "the store was being written when the machine went down and "
                                               "%" PRIu64 " part(s) are damaged: run ashm_kv_repair()",
                                               rep.damaged + rep.index_errors);
                }
                memcpy(h->boot_id, boot, sizeof(boot));
        }
        return ashm__kv_recover(kv);
}

/* A store on a memfd (a region) is sealed against shrinking before it is
 * mapped: a peer's ftruncate() would otherwise raise SIGBUS in every
 * process that has it mapped. Growth stays allowed unless the region
 * was sealed against it (then the store has the region's size). */
static int seal_shrink(int fd) {
        int seals = fcntl(fd, F_GET_SEALS);

        if (seals < 0 || (seals & F_SEAL_SHRINK))
                return 0; /* a file on a file system without seals */
        if (memfd_fstat(fd, &(struct stat) {}) < 0)
                return 0; /* a tmpfs file that is not a memfd: an ordinary file */
        if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) < 0)
                return kv_fail(negative_errno(), "cannot seal the store's region against shrinking (%m): "
                               "a store needs a region that allows sealing (MFD_ALLOW_SEALING)");
        return 0;
}

static int open_internal(int fd, unsigned flags, ashm_kv **ret_kv) {
        _cleanup_close_ int owned = fd;
        ashm_kv *kv;
        struct stat st;
        bool writable = !(flags & ASHM_KV_RDONLY);
        void *p;
        int r;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return kv_fail(-EBADMSG, "not an ashm KV store (not a regular file or memfd)");
        r = lock_range(fd, writable ? F_WRLCK : F_RDLCK, F_OFD_SETLKW);
        if (r < 0)
                return kv_fail(r, "cannot lock the store: %s", strerror(-r));
        if (writable) {
                r = seal_shrink(fd);
                if (r < 0)
                        return r;
        }
        if (fstat(fd, &st) < 0)
                return negative_errno();

        kv = calloc(1, sizeof(*kv));
        if (!kv)
                return -ENOMEM;
        kv->fd = TAKE_FD(owned);
        kv->flags = flags;
        kv->writable = writable;
        kv->fork_gen = ashm__fork_gen_start();
        kv->map_len = KV_MAP_MAX;
        p = mmap(NULL, kv->map_len, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, kv->fd, 0);
        if (p == MAP_FAILED) {
                r = kv_fail(negative_errno(), "cannot map the store: %m");
                goto fail;
        }
        kv->base = p;
        kv->h = p;

        if (st.st_size == 0 || load_acq(&kv->h->magic) == 0) {
                if (!(flags & ASHM_KV_CREATE) || !writable) {
                        r = kv_fail(-ENODATA, "the file is empty: no store yet");
                        goto fail;
                }
                r = init_store(kv);
                if (r == 0 && fstat(kv->fd, &st) < 0)
                        r = negative_errno();
                if (r < 0)
                        goto fail;
        } else if (st.st_size < (off_t) KV_HEADER_SIZE) {
                r = kv_fail(-EBADMSG, "not an ashm KV store (%jd bytes)", (intmax_t) st.st_size);
                goto fail;
        }
        r = kv_header_check(kv->h, (uint64_t) st.st_size);
        if (r < 0)
                goto fail;
        kv->seed = kv->h->seed;
        kv->known_size = (uint64_t) st.st_size;

        if (writable) {
                /* Every writer holds a shared flock for its life; one that
                 * can take it exclusively is alone. Opens are serialized by
                 * the byte lock above, so nobody slips in between. */
                if (flock(kv->fd, LOCK_EX | LOCK_NB) == 0) {
                        r = first_writer(kv);
                        if (r < 0)
                                goto fail;
                }
                if (flock(kv->fd, LOCK_SH) < 0) {
                        r = negative_errno();
                        goto fail;
                }
                if (kv->h->version == KV_VERSION_PTHREAD) {
                        r = kv_fail(-EBUSY, "a writer of an older ashm (store format 1) has the store open: "
                                    "close it first");
                        goto fail;
                }
                /* Our own open file description (ashm_kv_open_fd() made
                 * one), so the lock's owner byte dies with this handle. */
                r = lock_owner_init(&kv->owner, kv->fd);
                if (r < 0) {
                        r = kv_fail(r, "cannot take a writer id on the store: %s", strerror(-r));
                        goto fail;
                }
        }
        (void) lock_range(kv->fd, F_UNLCK, F_OFD_SETLK);
        *ret_kv = kv;
        return 0;
fail:
        ashm_kv_close(kv);
        return r;
}

_public_ int ashm_kv_open(const char *path, unsigned flags, ashm_kv **ret_kv) {
        int fd, oflags = O_CLOEXEC | O_NOCTTY;

        if (!path || !ret_kv || (flags & ~(unsigned) (ASHM_KV_CREATE | ASHM_KV_RDONLY | ASHM_KV_SYNC)))
                return -EINVAL;
        ashm__kv_detail_clear();
        oflags |= flags & ASHM_KV_RDONLY ? O_RDONLY : O_RDWR;
        if ((flags & ASHM_KV_CREATE) && !(flags & ASHM_KV_RDONLY))
                oflags |= O_CREAT;
        fd = open(path, oflags, 0600);
        if (fd < 0)
                return kv_fail(negative_errno(), "cannot open %s: %m", path);
        return open_internal(fd, flags, ret_kv);
}

_public_ int ashm_kv_open_fd(int fd, unsigned flags, ashm_kv **ret_kv) {
        char path[64];
        int nfd;

        if (fd < 0 || !ret_kv || (flags & ~(unsigned) (ASHM_KV_CREATE | ASHM_KV_RDONLY | ASHM_KV_SYNC)))
                return fd < 0 ? -EBADF : -EINVAL;
        ashm__kv_detail_clear();
        if (fcntl(fd, F_GETFD) < 0)
                return -EBADF;
        /* A new open file description of our own: flock() and the byte
         * locks belong to it, not to whoever shares fd with us. */
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        nfd = open(path, (flags & ASHM_KV_RDONLY ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOCTTY);
        if (nfd < 0)
                return kv_fail(negative_errno(), "cannot open the store's fd again: %m");
        return open_internal(nfd, flags, ret_kv);
}

_public_ int ashm_kv_open_region(const ashm_region *region, unsigned flags, ashm_kv **ret_kv) {
        if (!region)
                return -EINVAL;
        return ashm_kv_open_fd(ashm_region_fd(region), flags, ret_kv);
}

_public_ int ashm_kv_fd(const ashm_kv *kv) {
        return kv ? kv->fd : -EINVAL;
}
