/* SPDX-License-Identifier: MIT */
/**
 * ashm.h - anonymous shared memory for Linux, Android's Ashmem in userspace.
 *
 * Conventions, for every function below:
 *  - Functions return int: 0 on success, a negative errno on failure, and
 *    a documented positive value where one is meant. strerror(-r) always
 *    describes the failure. errno itself is left unspecified.
 *  - Output parameters are named ret_*, come last, and are left untouched
 *    on failure.
 *  - Functions that take an fd say whether they borrow it (the caller
 *    still owns it) or consume it (closed by the call on every path,
 *    success or failure).
 *  - Every fd the library creates is close-on-exec.
 *  - The library never prints and never raises signals (sends use
 *    MSG_NOSIGNAL).
 *  - A region handle may be used from several threads at once. After
 *    fork() the child may keep using handles it inherited: a region is a
 *    file, and the child shares it like any other fd.
 */
#ifndef ASHM_H
#define ASHM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ASHM_VERSION_MAJOR 0
#define ASHM_VERSION_MINOR 1
#define ASHM_VERSION_PATCH 0
#define ASHM_VERSION_STRING "0.1.0"

/** The library's version at run time, e.g. "0.1.0". Static storage. */
const char *ashm_version(void);

/* ------------------------------------------------------------------ */
/* Regions                                                             */
/* ------------------------------------------------------------------ */

/**
 * A region: a memfd (anonymous shared memory that exists only as file
 * descriptors) plus what libashm remembers about it in this process.
 * Opaque; created by ashm_region_create(), ashm_region_adopt(),
 * ashm_region_dup(), ashm_region_create_from_file() or
 * ashm_region_recv(), released by ashm_region_close().
 */
typedef struct ashm_region ashm_region;

/** The longest region name, in bytes (the kernel's memfd limit). */
#define ASHM_NAME_MAX 249

/** Flags for ashm_region_create() and ashm_region_create_from_file(). */
enum {
        /**
         * Allow PROT_EXEC mappings (the protection mask starts as
         * PROT_READ|PROT_WRITE|PROT_EXEC, as with Android's ashmem).
         * Without it the memfd is created with MFD_NOEXEC_SEAL where the
         * kernel has it, and the mask starts as PROT_READ|PROT_WRITE.
         */
        ASHM_REGION_EXEC = 1u << 0,
};

/**
 * Create a region of size bytes named name (shown in /proc/PID/maps as
 * "/memfd:NAME"; NULL means "ashm"). The contents start as zeros. The
 * memfd is MFD_CLOEXEC|MFD_ALLOW_SEALING, and MFD_NOEXEC_SEAL unless
 * ASHM_REGION_EXEC is given.
 *
 * Errors: -EINVAL unknown flags; -ENAMETOOLONG name longer than
 * ASHM_NAME_MAX; -EFBIG size beyond what the kernel accepts; -EMFILE,
 * -ENFILE, -ENOMEM as from memfd_create() and ftruncate().
 */
int ashm_region_create(const char *name, uint64_t size, unsigned flags, ashm_region **ret_region);

/**
 * Take an fd received from elsewhere (SCM_RIGHTS, fork, the broker) and
 * make a region of it. Consumes fd: it is closed on failure, and owned by
 * the region on success. flags must be 0.
 *
 * Errors: -EINVAL unknown flags; -EBADF fd is not open;
 * -EMEDIUMTYPE fd is open but is not a memfd (a pipe, /dev/null, a file
 * on disk or in /dev/shm): it is not an ashm region.
 */
int ashm_region_adopt(int fd, unsigned flags, ashm_region **ret_region);

/**
 * A second handle on the same region, with its own fd (F_DUPFD_CLOEXEC).
 * Both handles see one set of contents, seals and protection mask.
 */
int ashm_region_dup(const ashm_region *region, ashm_region **ret_region);

/**
 * Close the handle and its fd. Mappings made through it stay valid until
 * ashm_region_unmap() or munmap(): like mmap(2), a mapping holds the
 * memory by itself. Accepts NULL. Returns nothing: close cannot fail in a
 * way the caller could act on.
 */
void ashm_region_close(ashm_region *region);

/**
 * The region's fd, borrowed: owned by the handle, valid until
 * ashm_region_close(). Use it with read(), write(), lseek(), poll...,
 * or to send it; never close it.
 */
int ashm_region_fd(const ashm_region *region);

/**
 * The region's size in bytes, as fstat() reports it (exact, not rounded
 * to pages). Another holder of an unsealed region may resize it with
 * ftruncate(), so this asks the kernel every time.
 */
int ashm_region_get_size(const ashm_region *region, uint64_t *ret_size);

/**
 * The region's name as given at creation (for an adopted fd, as the
 * kernel reports it). The string belongs to the handle and lives until
 * ashm_region_close(). Never NULL.
 */
const char *ashm_region_name(const ashm_region *region);

/**
 * The protection mask: the PROT_READ, PROT_WRITE and PROT_EXEC bits that
 * mappings of the region may use. It belongs to the region, so every
 * holder in every process sees the same mask. Returns the mask (>= 0) or
 * -errno.
 */
int ashm_region_get_prot(const ashm_region *region);

/**
 * Reduce the protection mask to prot. Bits can only be removed: asking
 * for a bit the mask lacks, or for bits outside PROT_READ|PROT_WRITE|
 * PROT_EXEC, fails with -EINVAL and changes nothing. Existing mappings
 * keep their protection (as with Android's ASharedMemory_setProt).
 *
 * How each bit is enforced, honestly:
 *  - PROT_WRITE: the region is sealed with F_SEAL_FUTURE_WRITE. The
 *    kernel then refuses, to every holder in every process, new writable
 *    mappings, write(), and mprotect(PROT_WRITE) on later mappings. It
 *    cannot be undone. Any holder with a writable fd may remove it.
 *  - PROT_EXEC: the region is sealed with F_SEAL_EXEC (any holder with
 *    a writable fd may add it) and the owner also clears the file's x
 *    mode bits.
 *  - PROT_READ: the kernel has no seal for it. It is recorded in the
 *    file's mode bits (shared by every holder), so only the file's owner
 *    (or root) may remove it: -EPERM otherwise.
 *  Removed read and exec are enforced by ashm_region_map() (and by the
 *  /dev/ashmem shim's mmap), not by the kernel: a program that calls
 *  mmap() itself on the fd is not stopped, and the owner could chmod the
 *  read bits back.
 */
int ashm_region_set_prot(ashm_region *region, int prot);

/**
 * Map len bytes of the region starting at offset, shared, with
 * protection prot. offset must be page-aligned; len 0 means "to the end
 * of the region". The mapping may extend to the end of the last page of
 * the region (PAGE_ALIGN(size)), as with the ashmem driver.
 *
 * Errors: -EINVAL offset not page-aligned, range past PAGE_ALIGN(size),
 * or an empty region; -EPERM prot not within the protection mask (or the
 * region is sealed against writing and prot has PROT_WRITE); -ENOMEM.
 */
int ashm_region_map(ashm_region *region, uint64_t offset, size_t len, int prot, void **ret_addr);

/**
 * Unmap a mapping made by ashm_region_map() on this handle: addr and len
 * exactly as given and returned there (len 0 as "to the end" is
 * accepted). -EINVAL if it is not such a mapping.
 */
int ashm_region_unmap(ashm_region *region, void *addr, size_t len);

/**
 * Copy len bytes at offset out of (read) or into (write) the region,
 * without a mapping: Android's MemoryFile.readBytes()/writeBytes().
 *
 * Errors: -EINVAL offset + len past the end of the region; -EPERM write
 * to a region whose write permission was removed or that is frozen;
 * -ENODATA the range holds purged pages (see ashm_region_pin()).
 */
int ashm_region_read(const ashm_region *region, uint64_t offset, void *buf, size_t len);
int ashm_region_write(ashm_region *region, uint64_t offset, const void *buf, size_t len);

/**
 * Freeze the region: seal it F_SEAL_WRITE|F_SEAL_SHRINK|F_SEAL_GROW|
 * F_SEAL_SEAL, so nobody anywhere can change its contents or size any
 * more. A receiver checks this with ashm_region_is_frozen() before it
 * trusts the contents. Freezing a frozen region succeeds.
 *
 * Errors: -EBUSY a writable shared mapping of the region exists (in any
 * process): unmap it first; -EPERM the region was created without
 * sealing or already carries F_SEAL_SEAL without being frozen, or this
 * fd was not opened for writing.
 */
int ashm_region_freeze(ashm_region *region);

/**
 * 1 if the region is frozen (as ashm_region_freeze() leaves it), 0 if it
 * is not, or -errno.
 */
int ashm_region_is_frozen(const ashm_region *region);

/**
 * Create a frozen region holding the contents of the file at path: the
 * "large read-only configuration shared by every process" case. name
 * NULL means the file's base name (truncated to ASHM_NAME_MAX). flags as
 * for ashm_region_create().
 *
 * Errors: as open() and read() on path; -EINVAL path is not a regular
 * file or unknown flags; -EFBIG file larger than the address space.
 */
int ashm_region_create_from_file(const char *path, const char *name, unsigned flags,
                                 ashm_region **ret_region);

/* ------------------------------------------------------------------ */
/* Pins (Ashmem's pin/unpin, per page range)                           */
/* ------------------------------------------------------------------ */

/** Return values, identical to the Ashmem driver's. */
#define ASHM_NOT_PURGED 0
#define ASHM_WAS_PURGED 1
#define ASHM_IS_UNPINNED 0
#define ASHM_IS_PINNED 1

/**
 * Pin, unpin or query the pages [offset, offset + len) of the region.
 * offset and len must be page-aligned; len 0 means "to the end of the
 * region" (the end of its last page). Regions start pinned. Pins are not
 * counted: pinning a pinned page, or unpinning an unpinned one, changes
 * nothing.
 *
 * Unpinned pages may be discarded (purged) by ashmd, least recently
 * unpinned first, when memory runs low or unpinned memory passes its cap;
 * purged pages read back as zeros. The pin state belongs to the region:
 * every process that holds it, however it got the fd, sees and changes
 * the same state.
 *
 * ashm_region_pin() returns ASHM_WAS_PURGED (1) if any page of the range
 * was purged while unpinned, else ASHM_NOT_PURGED (0): it never reports
 * NOT_PURGED for a page whose contents were discarded.
 * ashm_region_unpin() returns 0.
 * ashm_region_get_pin_status() returns ASHM_IS_UNPINNED (0) if any page
 * of the range is unpinned (or purged and not pinned since), else
 * ASHM_IS_PINNED (1).
 *
 * The first call on a region in a process registers it with ashmd (one
 * round trip; the daemon is started on demand unless ASHM_NO_AUTOSTART=1
 * is set). After that the calls on a handle are atomic operations on
 * shared memory: no syscall, no daemon round trip. Without a daemon the
 * state is private to the process and nothing is ever purged, as in
 * Android's memfd mode.
 *
 * Once a process has used the pins of a region through a handle,
 * ashm_region_read() and ashm_region_write() on that handle fail with
 * -ENODATA for ranges that hold purged pages (Android's MemoryFile).
 *
 * Errors: -EINVAL unaligned offset or len, or a range past the end of
 * the region's last page; -EPERM pin or unpin through an fd that cannot
 * write the region (a read-only holder may ask for the status, but not
 * make pages purgeable: that would let it destroy contents); -EMEDIUMTYPE,
 * -EBADF as for ashm_region_adopt(); -ENOMEM.
 */
int ashm_region_pin(ashm_region *region, uint64_t offset, uint64_t len);
int ashm_region_unpin(ashm_region *region, uint64_t offset, uint64_t len);
int ashm_region_get_pin_status(ashm_region *region, uint64_t offset, uint64_t len);

/** Flags for ashm_purge(). */
enum {
        /** Purge every user's regions, not only the caller's (root only). */
        ASHM_PURGE_ALL_USERS = 1u << 0,
};

/**
 * Ask ashmd to purge unpinned pages now, least recently unpinned first,
 * until bytes are gone (0: every unpinned page), in the regions the
 * caller owns (with ASHM_PURGE_ALL_USERS, in everyone's: root only).
 * *ret_purged (may be NULL) gets the bytes purged. What `ashm purge` and
 * the driver's ASHMEM_PURGE_ALL_CACHES do.
 *
 * Errors: -EINVAL unknown flags; -EPERM ASHM_PURGE_ALL_USERS without
 * root; -ECONNREFUSED no daemon runs and none may be started.
 */
int ashm_purge(uint64_t bytes, unsigned flags, uint64_t *ret_purged);

/* ------------------------------------------------------------------ */
/* Sharing by name (the broker in ashmd)                               */
/* ------------------------------------------------------------------ */

/** The longest published name, in bytes. */
#define ASHM_PUBLISH_NAME_MAX 255

/** Flags for ashm_publish(). */
enum {
        /** Keep the name when the publisher exits, while the daemon lives
         *  (what `ashm publish` uses). Without it a name lives as long as
         *  the publishing process (its connection to ashmd). */
        ASHM_PUBLISH_KEEP = 1u << 0,
};

/**
 * Publish the region under name (1 to ASHM_PUBLISH_NAME_MAX bytes, no
 * control characters) with a file-like access mode: the read (4) and
 * write (2) bits of the owner (the caller's uid; root counts as owner),
 * the group (the caller's primary gid) and others, e.g. 0640 lets the
 * caller's group read and nobody else in. The daemon keeps a reference:
 * the region lives while the name does. Write grants need the region to
 * have been published through a writable fd.
 *
 * Errors: -EINVAL bad name, mode bits outside 0777 or unknown flags;
 * -EEXIST the name is taken; -ENOSPC the daemon holds too many names;
 * -ECONNREFUSED no daemon (and none may be started).
 */
int ashm_publish(const ashm_region *region, const char *name, unsigned mode, unsigned flags);

/** Flags for ashm_lookup(). */
enum {
        /** Ask for a writable region; without it the grant is read-only. */
        ASHM_LOOKUP_WRITE = 1u << 0,
};

/**
 * Look a published name up and get its region. A read-only grant (the
 * default) can never be used to write the region, by any route: it is the
 * region itself if it is frozen; for a caller of another uid than the
 * region's owner, an fd opened read-only on an inode the caller cannot
 * reopen for writing; for a caller of the owner's own uid (whom file
 * modes cannot bind), a frozen copy of the contents as they are now.
 *
 * Errors: -ENOENT no such name, or none the caller may read (whether it
 * exists is not told); -EACCES ASHM_LOOKUP_WRITE without the write grant;
 * -EINVAL bad name or flags; -ECONNREFUSED no daemon.
 */
int ashm_lookup(const char *name, unsigned flags, ashm_region **ret_region);

/**
 * Remove a name; the region itself lives on in whoever holds it. Only
 * the publisher's uid or root may. Errors: -ENOENT, -EPERM.
 */
int ashm_unpublish(const char *name);

/** One published name, as ashm_names() reports it. */
typedef struct ashm_name_info {
        char name[ASHM_PUBLISH_NAME_MAX + 1];
        uint64_t size;
        uint32_t mode, uid, gid;
        uint32_t pid;      /**< the publisher, 0 if it has exited (a kept name) */
        unsigned flags;    /**< ASHM_PUBLISH_KEEP */
        unsigned writable; /**< 1 if the caller may look it up for writing */
} ashm_name_info;

/**
 * The names the caller may read. *ret_names is an array of *ret_count
 * entries (NULL when there are none), to be released with free().
 */
int ashm_names(ashm_name_info **ret_names, size_t *ret_count);

/* ------------------------------------------------------------------ */
/* Passing regions and fds between processes                           */
/* ------------------------------------------------------------------ */

/** The most fds one message may carry. */
#define ASHM_FDS_MAX 16

/**
 * Send n_fds fds (borrowed; at most ASHM_FDS_MAX) and a payload of len
 * bytes over the AF_UNIX socket sock, in one sendmsg() with SCM_RIGHTS.
 * At least one byte always travels: with len 0 a single NUL byte is
 * sent. SOCK_SEQPACKET or SOCK_DGRAM keep the payload's boundaries; on
 * SOCK_STREAM the receiver must ask for exactly len bytes.
 * Never raises SIGPIPE.
 *
 * Returns 0, or -errno: -EINVAL more than ASHM_FDS_MAX fds; -EPIPE the
 * peer has gone; -ENOTSOCK, -EBADF, -ETOOMANYREFS as from sendmsg().
 */
int ashm_send_fds(int sock, const int *fds, size_t n_fds, const void *data, size_t len);

/**
 * Receive one message: up to max_fds fds into fds[] (each owned by the
 * caller, close-on-exec) and up to buf_len payload bytes into buf.
 * *ret_n_fds and *ret_len are set on success. On any error every fd
 * that arrived is closed.
 *
 * Errors: -EMSGSIZE more fds than max_fds (or than ASHM_FDS_MAX), or a
 * payload larger than buf_len on a datagram socket; -EMFILE fds arrived
 * that the kernel could not install because this process is out of fds
 * (they are lost); -ECONNRESET the peer closed the connection; -EAGAIN on
 * a non-blocking socket with nothing to read.
 */
int ashm_recv_fds(int sock, int *fds, size_t max_fds, size_t *ret_n_fds, void *buf, size_t buf_len,
                  size_t *ret_len);

/** ashm_send_fds() with exactly one fd (borrowed). */
int ashm_send_fd(int sock, int fd, const void *data, size_t len);

/**
 * Receive a message carrying exactly one fd. Returns the fd (>= 0, owned
 * by the caller) or -errno; -EBADMSG if the message carried no fd or
 * several (all closed). buf may be NULL when buf_len is 0; ret_len may
 * be NULL.
 */
int ashm_recv_fd(int sock, void *buf, size_t buf_len, size_t *ret_len);

/** Send a region's fd (the handle keeps it) with a payload. */
int ashm_region_send(int sock, const ashm_region *region, const void *data, size_t len);

/**
 * Receive a region sent by ashm_region_send() (or any memfd sent with
 * SCM_RIGHTS) and adopt it. flags as for ashm_region_adopt(). Errors as
 * ashm_recv_fd() and ashm_region_adopt(): -EMEDIUMTYPE when the fd that
 * arrived is not a memfd (it is closed).
 */
int ashm_region_recv(int sock, unsigned flags, void *buf, size_t buf_len, size_t *ret_len,
                     ashm_region **ret_region);

#ifdef __cplusplus
}
#endif

#endif /* ASHM_H */
