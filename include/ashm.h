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
#define ASHM_VERSION_MINOR 3
#define ASHM_VERSION_PATCH 0
#define ASHM_VERSION_STRING "0.3.0"

/** The library's version at run time, e.g. "0.3.0". Static storage. */
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
 * ASHM_REGION_EXEC is given. A region of size > 0 is sealed
 * F_SEAL_GROW|F_SEAL_SHRINK, as AOSP seals its regions: its size is fixed
 * for every holder (ftruncate fails with EPERM). Size 0 leaves it
 * resizable, for a store that grows it (ashm_kv_open_region).
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
 * Names belong to their publisher's uid: each uid has its own, so two
 * users may publish the same name and neither takes it from the other.
 *
 * Errors: -EINVAL bad name (one starting with '~' too: that names an
 * owner, see ashm_lookup()), mode bits outside 0777 or unknown flags;
 * -EEXIST the caller's uid has published the name already; -EDQUOT the
 * caller's uid holds as many names (or as much daemon memory) as ashmd
 * allows it; -ENOSPC the daemon holds too many names; -EBADF the region
 * fd is an O_PATH fd; -ECONNREFUSED no daemon (and none may be started).
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
 * Whose name: a plain "NAME" is the caller's own, else root's (the
 * system's), never another user's, so nobody can pass a region off as
 * another's by publishing first. Another user's name is asked for by
 * owner: "~USER/NAME" or "~UID/NAME" (the user name is resolved in the
 * caller with getpwnam_r()).
 *
 * Errors: -ENOENT no such name (or no such user), or none the caller may read (whether it
 * exists is not told); -EACCES ASHM_LOOKUP_WRITE without the write grant;
 * -EINVAL bad name or flags; -ECONNREFUSED no daemon.
 */
int ashm_lookup(const char *name, unsigned flags, ashm_region **ret_region);

/**
 * Remove a name (resolved as by ashm_lookup()); the region itself lives
 * on in whoever holds it. Only the publisher's uid or root may. Errors:
 * -ENOENT, -EPERM.
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

/* ------------------------------------------------------------------ */
/* Key-value stores                                                    */
/* ------------------------------------------------------------------ */

/**
 * A key-value store shared by any number of processes and threads: on a
 * file (persistent) or on a region (anonymous, shared by fd or by broker
 * name). The whole store, index included, lives in shared memory, so
 * opening is O(1) and a write by one process is seen by every other at
 * once. Writers take a robust lock (ashm_mutex_*'s: a writer that dies
 * holding it is recovered from by the next one; no pointer in the file
 * that a peer could aim; a wait for it ends after 30 s with -ETIMEDOUT
 * and a detail, ASHM_KV_LOCK_TIMEOUT_MS in the environment changes
 * that); readers take no lock
 * and never wait for a writer. Every record carries a CRC32C. A set()
 * that returned survives the death of the process at any instant;
 * ashm_kv_sync() (or ASHM_KV_SYNC) makes it survive power loss too.
 * docs/kv.md has the format and the argument for each of these.
 *
 * A handle may be used from several threads at once. After fork() the
 * child must open its own handle (calls on an inherited one fail with
 * -ECHILD).
 */
typedef struct ashm_kv ashm_kv;

/** The longest key, in bytes. Keys are 1 to ASHM_KV_KEY_MAX bytes; any
 *  byte but NUL (they are C strings). */
#define ASHM_KV_KEY_MAX 4096
/** The largest value, in bytes. */
#define ASHM_KV_VALUE_MAX (256u << 20)

/** Value types: every value is stored with its type. */
enum ashm_kv_type {
        ASHM_KV_BOOL = 1,   /**< 1 byte, 0 or 1 */
        ASHM_KV_INT32 = 2,  /**< 4 bytes, little-endian */
        ASHM_KV_INT64 = 3,  /**< 8 bytes, little-endian */
        ASHM_KV_UINT64 = 4, /**< 8 bytes, little-endian */
        ASHM_KV_FLOAT = 5,  /**< 4 bytes, IEEE 754, little-endian */
        ASHM_KV_DOUBLE = 6, /**< 8 bytes, IEEE 754, little-endian */
        ASHM_KV_STRING = 7, /**< bytes without NUL (the NUL is not stored) */
        ASHM_KV_BYTES = 8,  /**< any bytes */
};

/**
 * More about the last failure of an ashm_kv_*() call in this thread, as
 * one line of text, e.g. "the record of key \"k7\" fails its checksum"
 * or "store format version 3, this library reads version 1"; "" if there
 * is nothing more to say than strerror(). Thread-local static storage.
 */
const char *ashm_kv_error_detail(void);

/** The type's name ("bool", "int32", ..., "bytes"), or NULL. */
const char *ashm_kv_type_name(int type);
/** The type named name, or -EINVAL. */
int ashm_kv_type_from_name(const char *name);
/** The size of every value of a fixed-size type (1 for bool, 4 for
 *  int32 and float, 8 for int64, uint64 and double); 0 for string and
 *  bytes, whose values have any length; -EINVAL for no type. */
int ashm_kv_type_size(int type);

/** Flags for the ashm_kv_open*() functions. */
enum {
        /** Create the store if the file does not exist (mode 0600), or
         *  make one in an empty file or region. */
        ASHM_KV_CREATE = 1u << 0,
        /** Read only: every write fails with -EROFS. */
        ASHM_KV_RDONLY = 1u << 1,
        /** Every write is durable before it returns (msync + fdatasync
         *  of what it wrote): slow, survives power loss. */
        ASHM_KV_SYNC = 1u << 2,
};

/**
 * Open the store in the file at path.
 *
 * Errors: -ENOENT no such file and no ASHM_KV_CREATE; -EINVAL bad
 * flags; -ENODATA the file is empty (a store being created by another
 * process, or none) and no ASHM_KV_CREATE; -EBADMSG the file is not a
 * store, or its header is damaged (ashm_kv_check() says what);
 * -EPROTONOSUPPORT a store of a newer format version; -EUCLEAN the store
 * was open when the machine went down and records written since its last
 * sync are damaged: run ashm_kv_repair(). Otherwise as open(2), mmap(2).
 */
int ashm_kv_open(const char *path, unsigned flags, ashm_kv **ret_kv);

/**
 * Open the store in the file or memfd fd (borrowed: the handle opens the
 * file again for itself, so fd may be closed afterwards). Errors as
 * ashm_kv_open(); -EBADF fd is not open.
 */
int ashm_kv_open_fd(int fd, unsigned flags, ashm_kv **ret_kv);

/** ashm_kv_open_fd() on a region's fd. The region may be closed after. */
int ashm_kv_open_region(const ashm_region *region, unsigned flags, ashm_kv **ret_kv);

/**
 * Close the handle. Writes already returned are in the store (in the
 * page cache; ashm_kv_sync() for the disk). Accepts NULL.
 */
void ashm_kv_close(ashm_kv *kv);

/** The handle's fd on the store, borrowed: to send it (a region store),
 *  fstat() it, or poll nothing. Never close it. */
int ashm_kv_fd(const ashm_kv *kv);

/*
 * Writes. Each returns 0, or -EINVAL bad key (empty or longer than
 * ASHM_KV_KEY_MAX) or value (longer than ASHM_KV_VALUE_MAX); -EROFS a
 * read-only handle; -ENOSPC, -EFBIG, -ENOMEM the store cannot grow;
 * -EIO with ASHM_KV_SYNC, the disk failed.
 */
int ashm_kv_set_bool(ashm_kv *kv, const char *key, int value);
int ashm_kv_set_int32(ashm_kv *kv, const char *key, int32_t value);
int ashm_kv_set_int64(ashm_kv *kv, const char *key, int64_t value);
int ashm_kv_set_uint64(ashm_kv *kv, const char *key, uint64_t value);
int ashm_kv_set_float(ashm_kv *kv, const char *key, float value);
int ashm_kv_set_double(ashm_kv *kv, const char *key, double value);
/** value is a NUL-terminated string. */
int ashm_kv_set_string(ashm_kv *kv, const char *key, const char *value);
int ashm_kv_set_bytes(ashm_kv *kv, const char *key, const void *value, size_t len);
/** Any type, value in the encoding documented at enum ashm_kv_type;
 *  -EINVAL if len does not fit the type (or a bool is not 0 or 1). */
int ashm_kv_set(ashm_kv *kv, const char *key, int type, const void *value, size_t len);

/** Remove key: 0, or -ENOENT it was not there. */
int ashm_kv_remove(ashm_kv *kv, const char *key);
/** Remove every key. */
int ashm_kv_clear(ashm_kv *kv);

/*
 * Reads. Each returns 0, or -ENOENT no such key; -EPROTOTYPE the value
 * has another type (ashm_kv_get() tells which); -EBADMSG the value's
 * record fails its checksum (the store is damaged: ashm_kv_check()).
 */
int ashm_kv_get_bool(ashm_kv *kv, const char *key, int *ret_value);
int ashm_kv_get_int32(ashm_kv *kv, const char *key, int32_t *ret_value);
int ashm_kv_get_int64(ashm_kv *kv, const char *key, int64_t *ret_value);
int ashm_kv_get_uint64(ashm_kv *kv, const char *key, uint64_t *ret_value);
int ashm_kv_get_float(ashm_kv *kv, const char *key, float *ret_value);
int ashm_kv_get_double(ashm_kv *kv, const char *key, double *ret_value);
/**
 * Copy the string into buf (size bytes), NUL-terminated and truncated
 * if it does not fit (when size > 0); *ret_len (may be NULL) gets the
 * full length without NUL, as snprintf() would return.
 */
int ashm_kv_get_string(ashm_kv *kv, const char *key, char *buf, size_t size, size_t *ret_len);
/** The string in a new malloc()ed buffer, NUL-terminated. */
int ashm_kv_get_string_dup(ashm_kv *kv, const char *key, char **ret_value);
/** Copy up to size bytes into buf; *ret_len (may be NULL) gets the full
 *  length. */
int ashm_kv_get_bytes(ashm_kv *kv, const char *key, void *buf, size_t size, size_t *ret_len);
/**
 * Any type: *ret_type (may be NULL) gets the type, up to size bytes of
 * the encoded value go to buf (may be NULL when size is 0), *ret_len
 * (may be NULL) gets its full length.
 */
int ashm_kv_get(ashm_kv *kv, const char *key, int *ret_type, void *buf, size_t size, size_t *ret_len);

/** 1 if key is in the store, 0 if not, or -errno. */
int ashm_kv_contains(ashm_kv *kv, const char *key);
/** The number of keys. */
int ashm_kv_count(ashm_kv *kv, uint64_t *ret_count);

/**
 * Call fn for every key of a snapshot of the store taken at one instant
 * (writes made meanwhile by anyone are not seen), in no particular
 * order. fn gets the key (NUL-terminated), its type and the value's
 * length; a negative return from fn stops the walk and is returned.
 */
typedef int ashm_kv_foreach_fn(const char *key, int type, size_t value_len, void *userdata);
int ashm_kv_foreach(ashm_kv *kv, ashm_kv_foreach_fn *fn, void *userdata);

/**
 * Make every write that returned so far durable (msync + fdatasync).
 * On a region store it is a no-op returning 0: memory has no disk.
 */
int ashm_kv_sync(ashm_kv *kv);

/**
 * Rewrite the store with live records only, online (readers and writers
 * in other processes carry on). Stores compact themselves when dead
 * records outweigh live ones; this is for `ashm kv compact`.
 */
int ashm_kv_compact(ashm_kv *kv);

/** What ashm_kv_stats() reports. */
typedef struct ashm_kv_stats {
        uint64_t keys;        /**< live keys */
        uint64_t file_size;   /**< bytes of the file or memfd */
        uint64_t allocated;   /**< bytes of it in RAM or on disk */
        uint64_t live_bytes;  /**< bytes of live records */
        uint64_t dead_bytes;  /**< bytes of overwritten or removed records */
        uint64_t log_used;    /**< bytes of the log used, live and dead */
        uint64_t log_size;    /**< bytes the log holds before it is rebuilt */
        uint64_t slots;       /**< slots of the hash index */
        uint64_t rebuilds;    /**< times the log was compacted or grown */
        uint64_t recoveries;  /**< times a dead writer was recovered from */
        uint32_t version;     /**< format version */
} ashm_kv_stats;

int ashm_kv_stats_get(ashm_kv *kv, ashm_kv_stats *ret_stats);

/** What ashm_kv_check() and ashm_kv_repair() found. */
typedef struct ashm_kv_report {
        uint64_t records;       /**< intact records in the log */
        uint64_t keys;          /**< live keys that the intact records hold */
        uint64_t damaged;       /**< damaged spans of the log */
        uint64_t damaged_bytes; /**< their total length */
        uint64_t index_errors;  /**< index entries that disagree with the log */
        int header_ok;          /**< 1 if the header is intact */
} ashm_kv_report;

/** Called once per damaged part: byte offset in the file, length, and
 *  what is wrong, e.g. "record checksum mismatch (key \"k7\")". */
typedef void ashm_kv_damage_fn(uint64_t offset, uint64_t length, const char *what, void *userdata);

/**
 * Read every record of the store in fd (borrowed; a file or memfd, open
 * or not by others) and verify it, without changing anything. fn (may
 * be NULL) hears of each damaged part. Returns 0 if the store is intact,
 * 1 if damage was found (*ret_report says how much), or -errno:
 * -EBADMSG not a store at all (no magic).
 */
int ashm_kv_check_fd(int fd, ashm_kv_damage_fn *fn, void *userdata, ashm_kv_report *ret_report);
/** ashm_kv_check_fd() on the file at path. */
int ashm_kv_check(const char *path, ashm_kv_damage_fn *fn, void *userdata, ashm_kv_report *ret_report);

/**
 * Write a new store into dst_fd (borrowed; empty file or memfd) with
 * every intact record of the store in src_fd, the newest of each key
 * winning. fn hears of each part that could not be kept. Returns 0 or
 * 1 as ashm_kv_check_fd() for the source, or -errno.
 */
int ashm_kv_repair_fd(int src_fd, int dst_fd, ashm_kv_damage_fn *fn, void *userdata, ashm_kv_report *ret_report);

/**
 * Repair the file store at path in place: the repaired store replaces
 * it (rename), and the damaged original is kept as "PATH.damaged" when
 * damage was found. -EBUSY while a process has the store open for
 * writing (readers keep their mapping of the old file). Returns
 * as ashm_kv_repair_fd().
 */
int ashm_kv_repair(const char *path, ashm_kv_damage_fn *fn, void *userdata, ashm_kv_report *ret_report);

/* ------------------------------------------------------------------ */
/* Locks and waiting on a word                                         */
/* ------------------------------------------------------------------ */

/**
 * A robust cross-process mutex that lives in a region, at an offset the
 * user picks: ASHM_MUTEX_SIZE bytes, aligned to ASHM_MUTEX_ALIGN. It holds
 * no pointer and trusts nothing in the region: the word is a futex with
 * the owner's id, and the owner's liveness is a byte lock (an OFD lock)
 * on the region that the kernel drops when the owner's process dies, so
 * a dead owner is seen by the next locker, which gets the lock with
 * ASHM_MUTEX_OWNER_DIED (the data it guards may be half-written: check
 * or repair it, then carry on; no "consistent" call is needed). A
 * process that writes garbage over the mutex causes errors (-EBADMSG),
 * a takeover, or waits that end at their timeout, never a crash or a
 * write elsewhere. Waiters sleep in the kernel (futex); they wake now and
 * then (1 ms, doubling to 100 ms) to look for a dead owner, which wakes
 * nobody. docs/locks.md has the layout, memory order and trust rules.
 *
 * Ownership belongs to the handle (ashm_mutex_open()): threads sharing a
 * handle exclude each other but may unlock each other's lock, and a
 * thread that exits holding it is not seen (its process's death is).
 * Give each thread its own handle for per-thread ownership. A handle
 * keeps an fd (its own open file description of the region) and a one-
 * or two-page mapping. After fork() the child must open its own handle
 * (calls on an inherited one fail with -ECHILD). Not recursive: locking
 * a mutex the handle holds waits until the timeout.
 */
typedef struct ashm_mutex ashm_mutex;

#define ASHM_MUTEX_SIZE 8
#define ASHM_MUTEX_ALIGN 4
/** ashm_mutex_lock()'s result when the last owner died holding the mutex. */
#define ASHM_MUTEX_OWNER_DIED 1

/**
 * Lay out a free mutex at offset in region (pwrite() on its fd: no
 * mapping needed). Nobody may be using the mutex meanwhile; a zero-filled
 * region is not yet a mutex (ashm_mutex_lock() says -EBADMSG). flags: 0.
 * -EINVAL for a misaligned offset or unknown flags, -ERANGE if the mutex
 * does not fit in the region.
 */
int ashm_mutex_init(ashm_region *region, uint64_t offset, unsigned flags);

/**
 * Open a handle on the mutex at offset in region (borrowed: the handle
 * has its own fd and mapping and outlives the region handle). Seals the
 * region against shrinking (F_SEAL_SHRINK: a peer's truncation would
 * make every holder's access fault); -EPERM if the region cannot be
 * sealed, or cannot be mapped writable. flags: 0. -EADDRINUSE if no
 * owner id could be taken (another process holds byte locks on the
 * whole id range of the region).
 */
int ashm_mutex_open(ashm_region *region, uint64_t offset, unsigned flags, ashm_mutex **ret_mutex);

/** Close a handle (NULL is accepted). A mutex it held is seen as held by a dead owner. */
void ashm_mutex_close(ashm_mutex *m);

/**
 * Take the mutex, waiting at most timeout_ns nanoseconds (< 0: no limit;
 * 0: one attempt). Returns 0, or ASHM_MUTEX_OWNER_DIED (held now; the
 * last owner died holding it); -ETIMEDOUT; -EBADMSG if the bytes are not
 * an initialized mutex (never initialized, or written over); -ECHILD
 * after fork(). Signals do not interrupt the wait.
 */
int ashm_mutex_lock(ashm_mutex *m, int64_t timeout_ns);

/** One attempt: 0, ASHM_MUTEX_OWNER_DIED, -EBUSY if held by a live owner, or errors as ashm_mutex_lock(). */
int ashm_mutex_trylock(ashm_mutex *m);

/**
 * Release the mutex. -EPERM if this handle does not hold it (or another
 * process wrote over it meanwhile: it is then left as it is).
 */
int ashm_mutex_unlock(ashm_mutex *m);

/**
 * Futex-style waiting on a 32-bit word in a region, to build one's own
 * shared structures: word is its address in a MAP_SHARED mapping of the
 * region (ashm_region_map()), 4-byte aligned. The kernel keys the wait by
 * the region and the offset, so a wake through any process's mapping
 * reaches waiters in every other.
 *
 * ashm_wait() sleeps while *word == expected, at most timeout_ns (< 0: no
 * limit): 0 when woken (or spuriously: look at the word again), -EAGAIN
 * if *word != expected already, -ETIMEDOUT, -EINVAL (NULL or misaligned),
 * -EFAULT (not mapped). Signals do not end it early. Pair it with a
 * store to the word before ashm_wake(): a wake with nobody asleep is
 * lost, and a waiter that compares first never misses a change.
 *
 * ashm_wake() wakes up to n (>= 1; INT_MAX: all) waiters and returns how
 * many it woke.
 */
int ashm_wait(const uint32_t *word, uint32_t expected, int64_t timeout_ns);
int ashm_wake(const uint32_t *word, int n);
/* Channels                                                            */
/* ------------------------------------------------------------------ */

/**
 * A channel carries messages between processes through a region of its
 * own, shared like any region (fd passing, a broker name). Two kinds:
 *
 *  - ASHM_CHAN_QUEUE: up to `peers` producers, one consumer, lossless.
 *    Each producer has a ring of `depth` messages; when its ring is full
 *    the producer waits (or gets -EAGAIN). Messages of one producer are
 *    delivered in the order they were committed, exactly once; the
 *    consumer takes the rings in turn.
 *  - ASHM_CHAN_PUBSUB: one publisher, up to `peers` subscribers, each
 *    with its own cursor. A subscriber that falls a whole ring behind
 *    either holds the publisher back (the default) or, with
 *    ASHM_CHAN_OVERWRITE, loses the oldest messages and is told how
 *    many (ashm_chan_lost()). A subscriber maps the messages read-only
 *    and writes only its own page (its cursor). With the blocking
 *    policy a killed subscriber keeps its page and its place: the
 *    publisher, once the ring is full up to that place, gets
 *    -ECONNRESET instead of waiting, and a subscriber that takes the
 *    page over carries on from it without a loss. A subscriber that
 *    closes gives its place up.
 *
 * The region holds no pointers; an endpoint reads the geometry once, at
 * open, and checks every index and length it reads later. A peer that
 * scribbles on the region makes the others fail with -EBADMSG, never
 * read or write outside it or wait for ever. Peers' deaths are seen from
 * the kernel (each endpoint holds an OFD lock on its own open file
 * description of the region): a receiver whose writers are all gone gets
 * -EPIPE once it has read everything; a queue producer whose consumer is
 * gone gets -ECONNRESET when its ring is full. A restarted endpoint
 * re-attaches where its predecessor stopped: a producer at the tail of a
 * free ring, the consumer at the heads it had released, a subscriber at
 * the cursor of the page it takes over. A message is delivered when
 * ashm_chan_recv() or ashm_chan_release() returns: a consumer that dies
 * between peek and release leaves the message to its successor. A
 * message reserved and never committed is never delivered.
 *
 * Timeouts, for every call that may wait: 0 never waits (-EAGAIN), < 0
 * waits without limit, > 0 waits that many nanoseconds (-ETIMEDOUT).
 * A call that waits first spins (ashm_chan_set_spin()), then sleeps on a
 * futex, arming no timer when it has no limit. The first sleep of a
 * handle starts a watcher thread, which waits in F_OFD_SETLKW for the
 * peers' locks and wakes the sleeper when they are gone; the first sleep
 * in a process starts a ticker thread, which every 20 ms wakes a sleeper
 * no writer woke (a scribbler may have hidden it), and parks while
 * nobody sleeps. Closing the handle ends its watcher; the ticker ends
 * when no open handle has slept.
 *
 * An endpoint handle (ashm_chan) is used by one thread at a time. After
 * fork() the child must open its own (calls on an inherited one fail
 * with -ECHILD). docs/channels.md has the layout and the rules.
 */
typedef struct ashm_chan ashm_chan;

/** Kinds, for ashm_chan_create(). */
enum {
        ASHM_CHAN_QUEUE = 1,
        ASHM_CHAN_PUBSUB = 2,
};

/** Flags for ashm_chan_create(). */
enum {
        /** Pub/sub: overwrite the oldest message rather than wait for a
         *  subscriber a whole ring behind. */
        ASHM_CHAN_OVERWRITE = 1u << 0,
};

/** Roles, for ashm_chan_open(). */
enum {
        ASHM_CHAN_PRODUCER = 1,
        ASHM_CHAN_CONSUMER = 2,
        ASHM_CHAN_PUBLISHER = 3,
        ASHM_CHAN_SUBSCRIBER = 4,
};

/** Limits of ashm_chan_create(). */
#define ASHM_CHAN_MSG_MAX (256u << 20)
#define ASHM_CHAN_DEPTH_MAX (1u << 20)
#define ASHM_CHAN_PEERS_MAX 64u
/** How long a waiting call spins before it sleeps, unless told. */
#define ASHM_CHAN_SPIN_DEFAULT_NS 5000u

/**
 * Create a channel: a new region (named name, NULL: "ashm-chan") of the
 * size the geometry needs, fixed from the start. msg_max: the largest
 * message in bytes (1 to ASHM_CHAN_MSG_MAX); depth: messages per ring, a
 * power of two from 2 to ASHM_CHAN_DEPTH_MAX; peers: producers (queue)
 * or subscribers (pub/sub), 1 to ASHM_CHAN_PEERS_MAX. The queue holds
 * peers rings, a pub/sub channel one ring and a page per subscriber.
 * The creator is no endpoint: open one with ashm_chan_open().
 *
 * Errors: -EINVAL a bad kind, geometry or flags (ASHM_CHAN_OVERWRITE is
 * for pub/sub only); as ashm_region_create().
 */
int ashm_chan_create(const char *name, int kind, uint32_t msg_max, uint32_t depth, uint32_t peers,
                     unsigned flags, ashm_region **ret_region);

/**
 * Open an endpoint of the channel in region (borrowed: the handle opens
 * the region again for itself, so region may be closed afterwards).
 * flags must be 0. A subscriber on a read-only region works with the
 * overwrite policy's view: it has no page, so the publisher neither
 * waits for it nor wakes it (it looks every 20 ms), and it has no fd.
 *
 * Errors: -EBADMSG not a channel, or a damaged header; -EPROTONOSUPPORT
 * a channel of another format version; -EPROTOTYPE a role of the other
 * kind; -EBUSY the channel already has its consumer or publisher, or
 * all its producer or subscriber places are taken (by live processes);
 * -EPERM a writing role on a read-only region; -EINVAL bad role, flags.
 */
int ashm_chan_open(const ashm_region *region, int role, unsigned flags, ashm_chan **ret_chan);

/** Close the endpoint (a peer then sees it gone). Accepts NULL. An
 *  outstanding reserve is dropped; an outstanding peek is not released. */
void ashm_chan_close(ashm_chan *ch);

/**
 * Copy a message of len bytes (at most msg_max) in. Producers and the
 * publisher. Errors: -EMSGSIZE too long; -EAGAIN, -ETIMEDOUT full;
 * -ECONNRESET full and the consumer (or, pub/sub, a subscriber that
 * holds the place) is gone; -EBADMSG the channel's
 * control words were damaged by a peer; -EPROTOTYPE not a writer.
 */
int ashm_chan_send(ashm_chan *ch, const void *data, size_t len, int64_t timeout_ns);

/**
 * Zero-copy sending: a pointer to room for len bytes (at most msg_max,
 * 16-byte aligned; 64-byte when msg_max >= 1 KiB) in the channel, valid
 * until ashm_chan_commit(), which publishes the
 * first len bytes written there (len may be less than reserved). One
 * reservation at a time. Errors as ashm_chan_send(); -EINVAL commit
 * without a reservation.
 */
int ashm_chan_reserve(ashm_chan *ch, size_t len, int64_t timeout_ns, void **ret_ptr);
int ashm_chan_commit(ashm_chan *ch, size_t len);

/**
 * Copy the next message out into buf (size bytes); *ret_len gets its
 * length. Consumer and subscribers. Errors: -EMSGSIZE the message is
 * longer than size (it stays; *ret_len says how long it is); -EAGAIN,
 * -ETIMEDOUT nothing came; -EPIPE every writer is gone and everything
 * was read; -EBADMSG damaged control words.
 */
int ashm_chan_recv(ashm_chan *ch, void *buf, size_t size, size_t *ret_len, int64_t timeout_ns);

/**
 * Zero-copy receiving: a pointer to the next message in the channel and
 * its length, valid until ashm_chan_release(), which consumes it. For a
 * subscriber the pointer is into a read-only mapping. With
 * ASHM_CHAN_OVERWRITE the publisher may write over a message while it is
 * held: then release returns -ESTALE, and the message counts as lost
 * (what was read of it may be torn). Errors as ashm_chan_recv().
 */
int ashm_chan_peek(ashm_chan *ch, int64_t timeout_ns, const void **ret_data, size_t *ret_len);
int ashm_chan_release(ashm_chan *ch);

/**
 * A pollable fd (borrowed, owned by the handle): readable when the next
 * recv/peek (consumer, subscriber) or send/reserve (producer) would not
 * wait, or would fail because the peers are gone. Call until -EAGAIN
 * after each wake-up: that also clears the fd. The first call starts a
 * thread that sleeps on the channel's futex for the handle (and, as for
 * any handle that sleeps, a watcher thread: see "Timeouts" above). The
 * publisher's fd is always readable. -EOPNOTSUPP for a read-only
 * subscriber.
 */
int ashm_chan_fd(ashm_chan *ch);

/** How long a waiting call spins before it sleeps (ns, 0: never;
 *  default ASHM_CHAN_SPIN_DEFAULT_NS). */
int ashm_chan_set_spin(ashm_chan *ch, uint64_t spin_ns);

/** Subscriber: messages lost so far (overwritten before it read them). */
int ashm_chan_lost(const ashm_chan *ch, uint64_t *ret_lost);

/**
 * The last message peeked or received: *ret_source the producer's ring
 * (queue; 0 for pub/sub), *ret_seq its position in that ring's stream
 * (0, 1, 2... for the life of the channel, kept across restarts).
 * (source, seq) names a message uniquely: a consumer that logs what it
 * got under that key before it releases is exactly-once across its own
 * crashes. For a writer: its ring (0 for the publisher) and the
 * position its next message takes.
 */
int ashm_chan_last(const ashm_chan *ch, unsigned *ret_source, uint64_t *ret_seq);

/** The producer's ring or the subscriber's page index, -ENOENT for
 *  the other roles and for a read-only subscriber. */
int ashm_chan_index(const ashm_chan *ch);

/** One producer (queue) or subscriber (pub/sub) place. */
typedef struct ashm_chan_peer {
        uint32_t index;
        uint32_t alive;     /**< a live process holds it */
        uint32_t active;    /**< pub/sub: a subscriber has used it */
        uint64_t position;  /**< queue: the ring's tail; pub/sub: the cursor */
        uint64_t lag;       /**< messages not read yet */
        uint64_t lost;      /**< pub/sub: messages it lost */
} ashm_chan_peer;

/** What ashm_chan_stat() reports. */
typedef struct ashm_chan_info {
        uint32_t kind, flags, msg_max, depth, peers;
        uint32_t producers, consumers;   /**< queue: live ones */
        uint32_t publishers, subscribers; /**< pub/sub: live ones */
        uint64_t size;   /**< bytes of the region */
        uint64_t sent;   /**< messages committed, ever */
        uint64_t queued; /**< queue: messages not consumed yet */
        uint64_t lost;   /**< pub/sub: messages lost by subscribers */
} ashm_chan_info;

/**
 * Describe the channel in region (borrowed) without joining it: into
 * *ret_info, and the first n_peers places into ret_peers (may be NULL).
 * What it reads of the region is what its peers wrote: a report, not a
 * promise. Errors: as ashm_chan_open().
 */
int ashm_chan_stat(const ashm_region *region, ashm_chan_info *ret_info, ashm_chan_peer *ret_peers, size_t n_peers);

/** 1 if region holds a channel of this library's format, 0 if not. */
int ashm_chan_is_channel(const ashm_region *region);

#ifdef __cplusplus
}
#endif

#endif /* ASHM_H */
