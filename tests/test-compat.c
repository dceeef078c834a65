/* SPDX-License-Identifier: MIT */
/* The Android compat layer (<cutils/ashmem.h>, <android/sharedmem.h>,
 * <linux/ashmem.h>) against the Ashmem driver's and the NDK's semantics,
 * as DESIGN.md states them ("Android semantics in brief"). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "android/sharedmem.h"
#include "ashm.h"
#include "cutils/ashmem.h"

/* AOSP's <cutils/ashmem.h> alone gives the constants a caller compares
 * with (before <linux/ashmem.h>, which defines them again, identically). */
_Static_assert(ASHMEM_NAME_LEN == 256, "ASHMEM_NAME_LEN from <cutils/ashmem.h>");
_Static_assert(sizeof(ASHMEM_NAME_DEF) == sizeof("dev/ashmem"), "ASHMEM_NAME_DEF from <cutils/ashmem.h>");
_Static_assert(ASHMEM_NOT_PURGED == 0 && ASHMEM_WAS_PURGED == 1, "pin results from <cutils/ashmem.h>");
_Static_assert(ASHMEM_IS_UNPINNED == 0 && ASHMEM_IS_PINNED == 1, "pin status from <cutils/ashmem.h>");

#include "linux/ashmem.h"
#include "tests.h"

ASHM_SUITE(compat);

#define PROT_RWX (PROT_READ | PROT_WRITE | PROT_EXEC)

static size_t page(void) {
        return (size_t) sysconf(_SC_PAGESIZE);
}

/* ------------------------------------------------------------------ */
/* Helpers that say what went wrong, errno name included               */
/* ------------------------------------------------------------------ */

static int create_ok(const char *name, size_t size) {
        errno = 0;
        int fd = ashmem_create_region(name, size);

        cr_assert(fd >= 0, "ashmem_create_region(\"%s\", %zu) = %d errno %s", name ? name : "(null)", size, fd,
                  errname(errno));
        return fd;
}

static void assert_cloexec(int fd) {
        int flags = fcntl(fd, F_GETFD);

        cr_assert(flags >= 0, "F_GETFD on %d: %s", fd, errname(errno));
        cr_assert(flags & FD_CLOEXEC, "fd %d lacks FD_CLOEXEC", fd);
}

/* The size as every interface reports it: fstat, libcutils, the NDK. */
static void assert_size(int fd, size_t size) {
        struct stat st;

        cr_assert_eq(fstat(fd, &st), 0, "fstat: %s", errname(errno));
        cr_assert_eq((uint64_t) st.st_size, (uint64_t) size, "fstat size %jd, expected %zu", (intmax_t) st.st_size,
                     size);
        errno = 0;
        int r = ashmem_get_size_region(fd);
        cr_assert_eq(r, (int) size, "ashmem_get_size_region = %d errno %s, expected %zu", r, errname(errno), size);
        cr_assert_eq(ASharedMemory_getSize(fd), size, "ASharedMemory_getSize = %zu, expected %zu",
                     ASharedMemory_getSize(fd), size);
}

static void *mmap_ok(int fd, size_t len, int prot) {
        void *p = mmap(NULL, len, prot, MAP_SHARED, fd, 0);

        cr_assert(p != MAP_FAILED, "mmap(len %zu, prot %#x) on fd %d: %s", len, (unsigned) prot, fd, errname(errno));
        return p;
}

static void mmap_fail(int fd, size_t len, int prot, int err) {
        errno = 0;
        void *p = mmap(NULL, len, prot, MAP_SHARED, fd, 0);
        int e = errno;

        if (p != MAP_FAILED)
                munmap(p, len);
        cr_assert(p == MAP_FAILED && e == err, "mmap(prot %#x) %s errno %s, expected failure with %s", (unsigned) prot,
                  p == MAP_FAILED ? "failed" : "succeeded", errname(e), errname(err));
}

/* The protection mask as a second handle on the same region reads it. */
static int prot_of(int fd) {
        ashm_region *r;
        int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3), prot;

        cr_assert(dup_fd >= 0, "F_DUPFD_CLOEXEC: %s", errname(errno));
        assert_ok(ashm_region_adopt(dup_fd, 0, &r));
        prot = ashm_region_get_prot(r);
        ashm_region_close(r);
        cr_assert(prot >= 0, "ashm_region_get_prot: %s", errname(prot));
        return prot;
}

/* The path of the mapping that contains addr, from /proc/self/maps, with
 * the " (deleted)" the kernel appends to unlinked files removed. */
static void maps_path_at(const void *addr, char *buf, size_t len) {
        FILE *f = fopen("/proc/self/maps", "re");
        char *line = NULL;
        size_t cap = 0;
        bool found = false;

        cr_assert(f, "/proc/self/maps: %s", errname(errno));
        buf[0] = '\0';
        while (!found && getline(&line, &cap, f) > 0) {
                unsigned long start, end;
                char *path;
                size_t n;

                if (sscanf(line, "%lx-%lx", &start, &end) != 2 || (uintptr_t) addr < start ||
                    (uintptr_t) addr >= end)
                        continue;
                found = true;
                line[strcspn(line, "\n")] = '\0';
                path = strchr(line, '/');
                if (!path)
                        break;
                n = strlen(path);
                if (n > strlen(" (deleted)") && strcmp(path + n - strlen(" (deleted)"), " (deleted)") == 0)
                        path[n - strlen(" (deleted)")] = '\0';
                snprintf(buf, len, "%s", path);
        }
        free(line);
        fclose(f);
        cr_assert(found, "no mapping at %p in /proc/self/maps", addr);
}

/* Map the region and check /proc/self/maps shows it as /memfd:NAME. */
static void assert_maps_name(int fd, const char *name) {
        char want[512], got[512];
        void *p = mmap_ok(fd, page(), PROT_READ);

        snprintf(want, sizeof(want), "/memfd:%s", name);
        maps_path_at(p, got, sizeof(got));
        munmap(p, page());
        cr_assert_str_eq(got, want, "/proc/self/maps shows \"%s\", expected \"%s\"", got, want);
}

/* The name as /proc/self/fd/N shows it, "/memfd:" and " (deleted)" removed. */
static void fd_name(int fd, char *buf, size_t len) {
        char path[64], link[512];
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        n = readlink(path, link, sizeof(link) - 1);
        cr_assert(n > 0, "readlink %s: %s", path, errname(errno));
        link[n] = '\0';
        cr_assert(strncmp(link, "/memfd:", 7) == 0, "fd %d links to \"%s\", not a memfd", fd, link);
        if ((size_t) n >= 7 + 10 && strcmp(link + n - 10, " (deleted)") == 0)
                link[n - 10] = '\0';
        snprintf(buf, len, "%s", link + 7);
}

/* An fd number that is certainly closed. */
static int closed_fd(void) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

        cr_assert(fd >= 0);
        close(fd);
        return fd;
}

/* Forked children report a failed check through a pipe, so that the
 * parent's assertion message says what went wrong. */
static int child_msg_fd = -1;

#define child_check(n, cond, ...)                                              \
        do {                                                                   \
                if (!(cond)) {                                                 \
                        dprintf(child_msg_fd, "child check %d: ", n);          \
                        dprintf(child_msg_fd, __VA_ARGS__);                    \
                        _exit(n);                                              \
                }                                                              \
        } while (0)

static pid_t fork_child(int *ret_msg) {
        int p[2];
        pid_t pid;

        cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
        pid = fork();
        cr_assert(pid >= 0, "fork: %s", errname(errno));
        if (pid == 0) {
                close(p[0]);
                child_msg_fd = p[1];
                return 0;
        }
        close(p[1]);
        *ret_msg = p[0];
        return pid;
}

static void assert_child_ok(pid_t pid, int msg) {
        char buf[512];
        ssize_t n = read(msg, buf, sizeof(buf) - 1);
        int status;

        buf[n > 0 ? n : 0] = '\0';
        close(msg);
        cr_assert_eq(waitpid(pid, &status, 0), pid, "waitpid: %s", errname(errno));
        cr_assert(WIFEXITED(status), "child killed by signal %d", WTERMSIG(status));
        cr_assert_eq(WEXITSTATUS(status), 0, "%s", buf);
}

/* The mask as a forked child reads it through libashm: an adopted dup of
 * its inherited fd. */
static int child_prot(int fd) {
        ashm_region *r;
        int prot;

        if (ashm_region_adopt(fcntl(fd, F_DUPFD_CLOEXEC, 3), 0, &r) < 0)
                return -1;
        prot = ashm_region_get_prot(r);
        ashm_region_close(r);
        return prot;
}

/* ------------------------------------------------------------------ */
/* linux/ashmem.h: the driver's ABI, bit for bit                       */
/* ------------------------------------------------------------------ */

ASHM_TEST(compat, uapi_struct_and_constants) {
        cr_assert_eq(sizeof(struct ashmem_pin), 8);
        cr_assert_eq(offsetof(struct ashmem_pin, offset), 0);
        cr_assert_eq(offsetof(struct ashmem_pin, len), 4);
        cr_assert_eq(sizeof(((struct ashmem_pin *) 0)->offset), 4);
        cr_assert_eq(ASHMEM_NAME_LEN, 256);
        cr_assert_str_eq(ASHMEM_NAME_DEF, "dev/ashmem");
        cr_assert_eq(ASHMEM_NOT_PURGED, 0);
        cr_assert_eq(ASHMEM_WAS_PURGED, 1);
        cr_assert_eq(ASHMEM_IS_UNPINNED, 0);
        cr_assert_eq(ASHMEM_IS_PINNED, 1);
        cr_assert_eq(__ASHMEMIOC, 0x77);
        /* ashm's own names for the pin results agree with the driver's. */
        cr_assert_eq(ASHM_NOT_PURGED, ASHMEM_NOT_PURGED);
        cr_assert_eq(ASHM_WAS_PURGED, ASHMEM_WAS_PURGED);
}

ASHM_TEST(compat, uapi_ioctl_numbers) {
        cr_assert_eq(ASHMEM_SET_NAME, _IOW(0x77, 1, char[256]));
        cr_assert_eq(ASHMEM_GET_NAME, _IOR(0x77, 2, char[256]));
        cr_assert_eq(ASHMEM_SET_SIZE, _IOW(0x77, 3, size_t));
        cr_assert_eq(ASHMEM_GET_SIZE, _IO(0x77, 4));
        cr_assert_eq(ASHMEM_SET_PROT_MASK, _IOW(0x77, 5, unsigned long));
        cr_assert_eq(ASHMEM_GET_PROT_MASK, _IO(0x77, 6));
        cr_assert_eq(ASHMEM_PIN, _IOW(0x77, 7, struct ashmem_pin));
        cr_assert_eq(ASHMEM_UNPIN, _IOW(0x77, 8, struct ashmem_pin));
        cr_assert_eq(ASHMEM_GET_PIN_STATUS, _IO(0x77, 9));
        cr_assert_eq(ASHMEM_PURGE_ALL_CACHES, _IO(0x77, 10));
        cr_assert_eq(ASHMEM_GET_FILE_ID, _IOR(0x77, 11, unsigned long));
}

#if defined(__x86_64__)
/* The numbers an x86_64 Android binary has compiled in. */
ASHM_TEST(compat, uapi_ioctl_numbers_x86_64) {
        cr_assert_eq((unsigned long) ASHMEM_SET_NAME, 0x41007701ul);
        cr_assert_eq((unsigned long) ASHMEM_GET_NAME, 0x81007702ul);
        cr_assert_eq((unsigned long) ASHMEM_SET_SIZE, 0x40087703ul);
        cr_assert_eq((unsigned long) ASHMEM_GET_SIZE, 0x7704ul);
        cr_assert_eq((unsigned long) ASHMEM_SET_PROT_MASK, 0x40087705ul);
        cr_assert_eq((unsigned long) ASHMEM_GET_PROT_MASK, 0x7706ul);
        cr_assert_eq((unsigned long) ASHMEM_PIN, 0x40087707ul);
        cr_assert_eq((unsigned long) ASHMEM_UNPIN, 0x40087708ul);
        cr_assert_eq((unsigned long) ASHMEM_GET_PIN_STATUS, 0x7709ul);
        cr_assert_eq((unsigned long) ASHMEM_PURGE_ALL_CACHES, 0x770aul);
        cr_assert_eq((unsigned long) ASHMEM_GET_FILE_ID, 0x8008770bul);
}
#endif

/* ------------------------------------------------------------------ */
/* ashmem_valid and the fds that are not regions                       */
/* ------------------------------------------------------------------ */

ASHM_TEST(compat, valid_region) {
        int fd = create_ok("valid", 4096);

        cr_assert_eq(ashmem_valid(fd), 1);
        cr_assert_eq(fcntl(fd, F_GET_SEALS) & (F_SEAL_GROW | F_SEAL_SHRINK), F_SEAL_GROW | F_SEAL_SHRINK);
        close(fd);
}

/* A memfd made elsewhere is a region only with both of AOSP's seals, as
 * today's libcutils decides. */
ASHM_TEST(compat, valid_foreign_memfds) {
        static const struct {
                unsigned flags;
                int seals, valid;
        } cases[] = {
                { MFD_CLOEXEC, 0, 0 },
                { MFD_CLOEXEC | MFD_ALLOW_SEALING, 0, 0 },
                { MFD_CLOEXEC | MFD_ALLOW_SEALING, F_SEAL_GROW, 0 },
                { MFD_CLOEXEC | MFD_ALLOW_SEALING, F_SEAL_SHRINK, 0 },
                { MFD_CLOEXEC | MFD_ALLOW_SEALING, F_SEAL_WRITE, 0 },
                { MFD_CLOEXEC | MFD_ALLOW_SEALING, F_SEAL_GROW | F_SEAL_SHRINK, 1 },
                { MFD_CLOEXEC | MFD_ALLOW_SEALING, F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL, 1 },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                int fd = memfd_create("foreign", cases[i].flags);

                cr_assert(fd >= 0, "memfd_create: %s", errname(errno));
                cr_assert_eq(ftruncate(fd, 4096), 0);
                if (cases[i].seals)
                        cr_assert_eq(fcntl(fd, F_ADD_SEALS, cases[i].seals), 0, "seals %#x", cases[i].seals);
                cr_expect_eq(ashmem_valid(fd), cases[i].valid, "ashmem_valid(memfd with seals %#x)", cases[i].seals);
                close(fd);
        }
}

/* Every entry point that makes a region of a size seals it. */
ASHM_TEST(compat, every_entry_point_seals) {
        ashm_region *region;
        int fd;

        fd = ASharedMemory_create("ndk", 4096);
        cr_assert(fd >= 0);
        cr_expect_eq(ashmem_valid(fd), 1, "ASharedMemory_create");
        close(fd);
        cr_assert_eq(ashm_region_create("ashm", 4096, 0, &region), 0);
        cr_expect_eq(ashmem_valid(ashm_region_fd(region)), 1, "ashm_region_create");
        cr_expect_eq(ftruncate(ashm_region_fd(region), 8192), -1);
        cr_expect_eq(errno, EPERM);
        ashm_region_close(region);
}

/* A peer holding the fd can neither shrink the region under our mapping
 * (the SIGBUS AOSP's seals end) nor grow it. */
ASHM_TEST(compat, peer_cannot_resize) {
        size_t pg = page();
        int fd = create_ok("fixed", 2 * pg), status;
        volatile char *p;
        pid_t pid;

        p = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        cr_assert(p != MAP_FAILED);
        p[pg] = 'x';
        pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
                /* Through a new open file description too, as a peer that
                 * got the fd from /proc would. */
                char path[64];
                int fd2;

                snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
                fd2 = open(path, O_RDWR);
                _exit(ftruncate(fd, 0) == -1 && errno == EPERM && ftruncate(fd, 16 * pg) == -1 && errno == EPERM &&
                      fd2 >= 0 && ftruncate(fd2, 0) == -1 && errno == EPERM &&
                      fallocate(fd2, 0, 0, 16 * pg) == -1 && errno == EPERM ? 0 : 1);
        }
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the peer resized the region");
        cr_assert_eq(p[pg], 'x'); /* no SIGBUS */
        assert_size(fd, 2 * pg);
        munmap((void *) p, 2 * pg);
        close(fd);
}

/* The pin cache follows fd numbers: a number closed and reused for another
 * region (or another file, or dup2()ed over) answers for what it is now. */
ASHM_TEST(compat, pin_cache_follows_fd_reuse) {
        size_t pg = page();
        int a = create_ok("small", pg), b, c, p[2];

        cr_assert_eq(ashmem_unpin_region(a, 0, pg), 0);
        cr_assert_eq(ashmem_pin_region(a, 0, pg), ASHMEM_NOT_PURGED);
        assert_fail_errno(ashmem_pin_region(a, 3 * pg, pg), EINVAL);
        close(a);
        b = create_ok("large", 4 * pg);
        cr_assert_eq(b, a, "the fd number is reused");
        cr_assert_eq(ashmem_pin_region(b, 3 * pg, pg), ASHMEM_NOT_PURGED, "pins of the new, larger region");
        cr_assert_eq(ashmem_unpin_region(b, 0, 0), 0);

        c = create_ok("small-again", pg);
        cr_assert_eq(dup2(c, b), b);
        assert_fail_errno(ashmem_pin_region(b, 3 * pg, pg), EINVAL);
        cr_assert_eq(ashmem_pin_region(b, 0, 0), ASHMEM_NOT_PURGED);
        close(b);
        close(c);

        cr_assert_eq(pipe(p), 0);
        if (p[0] != a)
                cr_assert_eq(dup2(p[0], a), a);
        assert_fail_errno(ashmem_pin_region(a, 0, pg), ENOTTY);
        close(a);
        assert_fail_errno(ashmem_pin_region(a, 0, pg), EBADF);
        close(p[0]);
        close(p[1]);
}

ASHM_TEST(compat, valid_size_zero_region) {
        int fd = create_ok("empty", 0);

        cr_assert_eq(ashmem_valid(fd), 1);
        close(fd);
}

/* Every function of the three headers on an fd that is not open:
 * EBADF from libcutils, 0 from the NDK's getSize. */
static void assert_all_ebadf(int fd) {
        cr_assert_eq(ashmem_valid(fd), 0, "ashmem_valid(%d)", fd);
        assert_fail_errno(ashmem_get_size_region(fd), EBADF);
        assert_fail_errno(ashmem_set_prot_region(fd, PROT_READ), EBADF);
        assert_fail_errno(ashmem_pin_region(fd, 0, 0), EBADF);
        assert_fail_errno(ashmem_unpin_region(fd, 0, 0), EBADF);
        cr_assert_eq(ASharedMemory_getSize(fd), 0);
        assert_fail_errno(ASharedMemory_setProt(fd, PROT_READ), EBADF);
}

/* ... and on an open fd that is not a region: ENOTTY, what the driver's
 * ioctls answer on any other file. */
static void assert_all_enotty(int fd, const char *what) {
        cr_assert_eq(ashmem_valid(fd), 0, "ashmem_valid(%s)", what);
        assert_fail_errno(ashmem_get_size_region(fd), ENOTTY);
        assert_fail_errno(ashmem_set_prot_region(fd, PROT_READ), ENOTTY);
        assert_fail_errno(ashmem_pin_region(fd, 0, 0), ENOTTY);
        assert_fail_errno(ashmem_unpin_region(fd, 0, 0), ENOTTY);
        cr_assert_eq(ASharedMemory_getSize(fd), 0, "ASharedMemory_getSize(%s)", what);
        assert_fail_errno(ASharedMemory_setProt(fd, PROT_READ), ENOTTY);
}

ASHM_TEST(compat, not_open_minus_one) {
        assert_all_ebadf(-1);
}

ASHM_TEST(compat, not_open_closed_fd) {
        assert_all_ebadf(closed_fd());
}

ASHM_TEST(compat, not_region_dev_null) {
        int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

        cr_assert(fd >= 0);
        assert_all_enotty(fd, "/dev/null");
        close(fd);
}

ASHM_TEST(compat, not_region_pipe) {
        int p[2];

        cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
        assert_all_enotty(p[0], "pipe read end");
        assert_all_enotty(p[1], "pipe write end");
        close(p[0]);
        close(p[1]);
}

ASHM_TEST(compat, not_region_socket) {
        int s[2];

        cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
        assert_all_enotty(s[0], "socket");
        close(s[0]);
        close(s[1]);
}

ASHM_TEST(compat, not_region_regular_file) {
        char path[] = "/tmp/ashm-test-compat-XXXXXX";
        int fd = mkostemp(path, O_CLOEXEC);

        cr_assert(fd >= 0, "mkostemp: %s", errname(errno));
        unlink(path);
        cr_assert_eq(ftruncate(fd, 4096), 0);
        assert_all_enotty(fd, "a regular file");
        close(fd);
}

ASHM_TEST(compat, not_region_directory) {
        int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        cr_assert(fd >= 0);
        assert_all_enotty(fd, "a directory");
        close(fd);
}

/* A POSIX shared memory object is a file in /dev/shm, not an anonymous
 * region: it has a name in a filesystem and outlives its holders. */
ASHM_TEST(compat, not_region_shm_open) {
        char name[64];
        int fd;

        snprintf(name, sizeof(name), "/ashm-test-compat-%d", (int) getpid());
        fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        cr_assert(fd >= 0, "shm_open: %s", errname(errno));
        shm_unlink(name);
        cr_assert_eq(ftruncate(fd, 4096), 0);
        assert_all_enotty(fd, "a /dev/shm file");
        close(fd);
}

/* The driver checks the fd (ioctl on a file that is not ashmem) before it
 * looks at the argument, so a bad prot on a bad fd still says EBADF or
 * ENOTTY. */
ASHM_TEST(compat, set_prot_checks_fd_before_prot) {
        int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

        cr_assert(fd >= 0);
        assert_fail_errno(ashmem_set_prot_region(-1, 0x10), EBADF);
        assert_fail_errno(ashmem_set_prot_region(fd, 0x10), ENOTTY);
        assert_fail_errno(ASharedMemory_setProt(fd, PROT_RWX | 0x10), ENOTTY);
        close(fd);
}

/* ------------------------------------------------------------------ */
/* ashmem_create_region                                                */
/* ------------------------------------------------------------------ */

ASHM_TEST(compat, create_cloexec) {
        int fd = create_ok("cloexec", 4096);

        assert_cloexec(fd);
        close(fd);
}

ASHM_TEST(compat, create_exact_sizes) {
        static const size_t sizes[] = { 1, 2, 4095, 4096, 4097, 8191, 8192, 5000, 1 << 20, (1 << 20) + 3 };

        for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                int fd = create_ok("sizes", sizes[i]);

                assert_size(fd, sizes[i]);
                close(fd);
        }
}

ASHM_TEST(compat, create_size_zero) {
        int fd = create_ok("zero", 0);

        assert_cloexec(fd);
        assert_size(fd, 0);
        close(fd);
}

ASHM_TEST(compat, create_size_over_int_max) {
        /* Sparse: costs no memory. libcutils' int cannot hold the size,
         * the NDK's size_t can. */
        size_t size = (size_t) INT_MAX + 4096 + 1;
        int fd = create_ok("big", size);

        assert_fail_errno(ashmem_get_size_region(fd), EOVERFLOW);
        cr_assert_eq(ASharedMemory_getSize(fd), size);
        close(fd);
}

ASHM_TEST(compat, create_size_too_big) {
        assert_fail_errno(ashmem_create_region("huge", SIZE_MAX), EFBIG);
        assert_fail_errno(ashmem_create_region("huge", (size_t) INT64_MAX + 1), EFBIG);
}

ASHM_TEST(compat, create_out_of_fds) {
        struct rlimit old, none = { 0, 0 };

        cr_assert_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
        none.rlim_max = old.rlim_max;
        cr_assert_eq(setrlimit(RLIMIT_NOFILE, &none), 0);
        errno = 0;
        int r = ashmem_create_region("nofds", 4096), e = errno;
        setrlimit(RLIMIT_NOFILE, &old);
        cr_assert(r == -1 && e == EMFILE, "ashmem_create_region = %d errno %s, expected -1 EMFILE", r, errname(e));
        cr_assert_eq(setrlimit(RLIMIT_NOFILE, &none), 0);
        errno = 0;
        r = ASharedMemory_create("nofds", 4096);
        e = errno;
        setrlimit(RLIMIT_NOFILE, &old);
        cr_assert(r == -1 && e == EMFILE, "ASharedMemory_create = %d errno %s, expected -1 EMFILE", r, errname(e));
}

ASHM_TEST(compat, create_name_in_maps) {
        char got[512];
        int fd = create_ok("my-cache", 8192);

        fd_name(fd, got, sizeof(got));
        cr_assert_str_eq(got, "my-cache");
        assert_maps_name(fd, "my-cache");
        close(fd);
}

ASHM_TEST(compat, create_null_name_is_dev_ashmem) {
        char got[512];
        int fd = create_ok(NULL, 4096);

        fd_name(fd, got, sizeof(got));
        cr_assert_str_eq(got, ASHMEM_NAME_DEF);
        assert_maps_name(fd, "dev/ashmem");
        close(fd);
}

ASHM_TEST(compat, create_empty_name) {
        char got[512];
        int fd = create_ok("", 4096);

        fd_name(fd, got, sizeof(got));
        cr_assert_str_eq(got, "");
        close(fd);
}

/* The driver keeps 255 bytes of a name, a memfd 249: longer names are
 * cut, never refused. */
ASHM_TEST(compat, create_long_name_truncated) {
        char name[301], want[ASHM_NAME_MAX + 1], got[512];
        int fd;

        for (size_t i = 0; i < sizeof(name) - 1; i++)
                name[i] = (char) ('a' + i % 26);
        name[sizeof(name) - 1] = '\0';
        memcpy(want, name, ASHM_NAME_MAX);
        want[ASHM_NAME_MAX] = '\0';
        cr_assert_eq(ASHM_NAME_MAX, 249);

        fd = create_ok(name, 4096);
        fd_name(fd, got, sizeof(got));
        cr_assert_eq(strlen(got), 249, "name kept %zu bytes, expected 249", strlen(got));
        cr_assert_str_eq(got, want);
        assert_maps_name(fd, want);
        close(fd);

        /* Exactly 249 and 250 bytes, at the edge. */
        name[249] = '\0';
        fd = create_ok(name, 4096);
        fd_name(fd, got, sizeof(got));
        cr_assert_str_eq(got, want);
        close(fd);
        name[249] = 'x';
        name[250] = '\0';
        fd = create_ok(name, 4096);
        fd_name(fd, got, sizeof(got));
        cr_assert_str_eq(got, want);
        close(fd);
}

ASHM_TEST(compat, create_initial_mask_rwx) {
        int fd = create_ok("rwx", 4096);
        void *p;

        cr_assert_eq(prot_of(fd), PROT_RWX);
        p = mmap_ok(fd, 4096, PROT_READ | PROT_EXEC);
        munmap(p, 4096);
        p = mmap_ok(fd, 4096, PROT_RWX);
        munmap(p, 4096);
        /* The same mask is what set_prot accepts unchanged. */
        cr_assert_eq(ashmem_set_prot_region(fd, PROT_RWX), 0);
        close(fd);
}

ASHM_TEST(compat, create_contents_zero_and_shared) {
        int fd = create_ok("shared", 8192);
        unsigned char *a = mmap_ok(fd, 8192, PROT_READ | PROT_WRITE);
        unsigned char *b = mmap_ok(fd, 8192, PROT_READ);

        for (size_t i = 0; i < 8192; i++)
                cr_assert_eq(a[i], 0, "byte %zu of a new region is %u", i, a[i]);
        a[8191] = 0x5a;
        cr_assert_eq(b[8191], 0x5a);
        munmap(a, 8192);
        munmap(b, 8192);
        close(fd);
}

/* Two regions with the same name are two regions (the first pitfall of
 * Android users): the name is a label, sharing goes through the fd. */
ASHM_TEST(compat, create_same_name_two_regions) {
        int a = create_ok("same", 4096), b = create_ok("same", 4096);
        struct stat sa, sb;

        cr_assert_eq(fstat(a, &sa), 0);
        cr_assert_eq(fstat(b, &sb), 0);
        cr_assert_neq(sa.st_ino, sb.st_ino);
        close(a);
        close(b);
}

/* ------------------------------------------------------------------ */
/* ashmem_set_prot_region                                              */
/* ------------------------------------------------------------------ */

ASHM_TEST(compat, set_prot_remove_write) {
        int fd = create_ok("ro", 4096);
        char c = 'x';

        cr_assert_eq(ashmem_set_prot_region(fd, PROT_READ | PROT_EXEC), 0);
        cr_assert_eq(prot_of(fd), PROT_READ | PROT_EXEC);
        mmap_fail(fd, 4096, PROT_READ | PROT_WRITE, EPERM);
        mmap_fail(fd, 4096, PROT_WRITE, EPERM);
        assert_fail_errno(write(fd, &c, 1), EPERM);
        assert_fail_errno(pwrite(fd, &c, 1, 0), EPERM);
        /* Reading and executing are still allowed. */
        munmap(mmap_ok(fd, 4096, PROT_READ), 4096);
        munmap(mmap_ok(fd, 4096, PROT_READ | PROT_EXEC), 4096);
        close(fd);
}

/* mprotect cannot add what the mask lacks to a mapping made after the
 * reduction (the driver clears VM_MAYWRITE: EACCES). */
ASHM_TEST(compat, set_prot_mprotect_cannot_add_write) {
        int fd = create_ok("mprotect", 4096);
        void *p;

        cr_assert_eq(ashmem_set_prot_region(fd, PROT_READ), 0);
        p = mmap_ok(fd, 4096, PROT_READ);
        assert_fail_errno(mprotect(p, 4096, PROT_READ | PROT_WRITE), EACCES);
        munmap(p, 4096);
        close(fd);
}

/* The NDK's contract: existing mappings keep their protection. */
ASHM_TEST(compat, set_prot_existing_mapping_keeps_working) {
        int fd = create_ok("existing", 4096);
        volatile char *rw = mmap_ok(fd, 4096, PROT_READ | PROT_WRITE);
        char c;

        rw[0] = 'a';
        cr_assert_eq(ashmem_set_prot_region(fd, PROT_READ), 0);
        rw[1] = 'b';
        rw[4095] = 'z';
        cr_assert_eq(pread(fd, &c, 1, 1), 1);
        cr_assert_eq(c, 'b');
        cr_assert_eq(pread(fd, &c, 1, 4095), 1);
        cr_assert_eq(c, 'z');
        munmap((void *) rw, 4096);
        close(fd);
}

ASHM_TEST(compat, set_prot_cannot_add_back) {
        int fd = create_ok("addback", 4096);

        cr_assert_eq(ashmem_set_prot_region(fd, PROT_READ), 0);
        assert_fail_errno(ashmem_set_prot_region(fd, PROT_READ | PROT_WRITE), EINVAL);
        assert_fail_errno(ashmem_set_prot_region(fd, PROT_READ | PROT_EXEC), EINVAL);
        assert_fail_errno(ashmem_set_prot_region(fd, PROT_RWX), EINVAL);
        /* A failed call changed nothing. */
        cr_assert_eq(prot_of(fd), PROT_READ);
        /* The same mask again, and further reduction, succeed. */
        cr_assert_eq(ashmem_set_prot_region(fd, PROT_READ), 0);
        cr_assert_eq(ashmem_set_prot_region(fd, PROT_NONE), 0);
        cr_assert_eq(prot_of(fd), PROT_NONE);
        assert_fail_errno(ashmem_set_prot_region(fd, PROT_READ), EINVAL);
        cr_assert_eq(ashmem_set_prot_region(fd, PROT_NONE), 0);
        close(fd);
}

ASHM_TEST(compat, set_prot_exec_removed_then_added) {
        int fd = create_ok("noexec", 4096);

        cr_assert_eq(ashmem_set_prot_region(fd, PROT_READ | PROT_WRITE), 0);
        cr_assert_eq(prot_of(fd), PROT_READ | PROT_WRITE);
        assert_fail_errno(ashmem_set_prot_region(fd, PROT_RWX), EINVAL);
        /* Write is still there: writable mappings and write() work. */
        munmap(mmap_ok(fd, 4096, PROT_READ | PROT_WRITE), 4096);
        cr_assert_eq(pwrite(fd, "x", 1, 0), 1);
        close(fd);
}

ASHM_TEST(compat, set_prot_bits_outside_rwx) {
        int fd = create_ok("bits", 4096);

        assert_fail_errno(ashmem_set_prot_region(fd, PROT_READ | 0x8), EINVAL);
        assert_fail_errno(ashmem_set_prot_region(fd, PROT_RWX | 0x10), EINVAL);
        assert_fail_errno(ashmem_set_prot_region(fd, -1), EINVAL);
        assert_fail_errno(ashmem_set_prot_region(fd, INT_MIN), EINVAL);
        assert_fail_errno(ashmem_set_prot_region(fd, PROT_GROWSDOWN | PROT_READ), EINVAL);
        /* Nothing was removed on the way. */
        cr_assert_eq(prot_of(fd), PROT_RWX);
        close(fd);
}

ASHM_TEST(compat, set_prot_same_mask) {
        int fd = create_ok("same-mask", 4096);

        cr_assert_eq(ashmem_set_prot_region(fd, PROT_RWX), 0);
        cr_assert_eq(prot_of(fd), PROT_RWX);
        cr_assert_eq(ashmem_set_prot_region(fd, PROT_READ | PROT_WRITE), 0);
        cr_assert_eq(ashmem_set_prot_region(fd, PROT_READ | PROT_WRITE), 0);
        cr_assert_eq(prot_of(fd), PROT_READ | PROT_WRITE);
        close(fd);
}

/* The mask belongs to the region, not to the fd: a dup sees it. */
ASHM_TEST(compat, set_prot_seen_through_dup) {
        int fd = create_ok("dup", 4096), d;

        d = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        cr_assert(d >= 0);
        cr_assert_eq(ashmem_set_prot_region(fd, PROT_READ), 0);
        mmap_fail(d, 4096, PROT_READ | PROT_WRITE, EPERM);
        assert_fail_errno(ashmem_set_prot_region(d, PROT_READ | PROT_WRITE), EINVAL);
        cr_assert_eq(prot_of(d), PROT_READ);
        close(d);
        close(fd);
}

/* A reduction made after fork() reaches the child, who holds the same
 * region through its inherited fd. */
ASHM_TEST(compat, set_prot_seen_by_forked_child) {
        int fd = create_ok("fork", 4096), go[2], msg;
        char c;
        pid_t pid;

        cr_assert_eq(pipe2(go, O_CLOEXEC), 0);
        pid = fork_child(&msg);
        if (pid == 0) {
                void *p;

                close(go[1]);
                child_check(1, read(go[0], &c, 1) == 1, "no go from the parent");
                p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
                child_check(2, p == MAP_FAILED && errno == EPERM, "mmap(PROT_WRITE) %s, errno %s",
                            p == MAP_FAILED ? "failed" : "succeeded", errname(errno));
                child_check(3, child_prot(fd) == PROT_READ, "ashm_region_get_prot = %d", child_prot(fd));
                errno = 0;
                child_check(4, ashmem_set_prot_region(fd, PROT_READ | PROT_WRITE) == -1 && errno == EINVAL,
                            "adding PROT_WRITE back: errno %s", errname(errno));
                child_check(5, write(fd, "x", 1) == -1 && errno == EPERM, "write(): errno %s", errname(errno));
                p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
                child_check(6, p != MAP_FAILED, "mmap(PROT_READ): %s", errname(errno));
                _exit(0);
        }
        close(go[0]);
        cr_assert_eq(ashmem_set_prot_region(fd, PROT_READ), 0);
        cr_assert_eq(write(go[1], "g", 1), 1);
        close(go[1]);
        assert_child_ok(pid, msg);
        close(fd);
}

/* ... and one made by the child reaches the parent. */
ASHM_TEST(compat, set_prot_by_child_seen_by_parent) {
        int fd = create_ok("fork-back", 4096), msg;
        pid_t pid = fork_child(&msg);

        if (pid == 0) {
                errno = 0;
                child_check(1, ashmem_set_prot_region(fd, PROT_READ) == 0, "set_prot: %s", errname(errno));
                _exit(0);
        }
        assert_child_ok(pid, msg);
        mmap_fail(fd, 4096, PROT_READ | PROT_WRITE, EPERM);
        assert_fail_errno(write(fd, "x", 1), EPERM);
        cr_assert_eq(prot_of(fd), PROT_READ);
        assert_fail_errno(ashmem_set_prot_region(fd, PROT_READ | PROT_EXEC), EINVAL);
        assert_fail_errno(ashmem_set_prot_region(fd, PROT_READ | PROT_WRITE), EINVAL);
        close(fd);
}

/* The driver lets any holder of the fd reduce the mask, whoever created
 * the region (ASharedMemory_setProt: "applies to every fd in every
 * process"). Here the holder runs under another uid. */
ASHM_TEST(compat, set_prot_by_other_uid) {
        int fd = create_ok("other-uid", 4096), msg;
        pid_t pid;

        if (geteuid() != 0) {
                close(fd);
                cr_skip_test("needs root to run a child under another uid");
        }
        pid = fork_child(&msg);
        if (pid == 0) {
                child_check(1, setgid(65534) == 0 && setuid(65534) == 0, "setuid: %s", errname(errno));
                errno = 0;
                child_check(2, ashmem_set_prot_region(fd, PROT_READ | PROT_EXEC) == 0,
                            "removing PROT_WRITE as uid 65534: errno %s", errname(errno));
                errno = 0;
                child_check(3, ashmem_set_prot_region(fd, PROT_READ) == 0,
                            "removing PROT_EXEC as uid 65534: errno %s", errname(errno));
                _exit(0);
        }
        assert_child_ok(pid, msg);
        cr_assert_eq(prot_of(fd), PROT_READ);
        close(fd);
}

/* The driver refuses, for every mmap(), a protection the mask lacks;
 * reading and executing included. ashm can only enforce PROT_WRITE in
 * the kernel (a seal); PROT_READ and PROT_EXEC are recorded in the mode
 * bits, which mmap() of an already open fd does not consult (ashm.h
 * documents this). Kept as a record of the difference. */
ASHM_TEST(compat, set_prot_raw_mmap_read_exec_refused, .disabled = true,
     .description = "driver refuses mmap(PROT_READ|PROT_EXEC) outside the mask; a memfd cannot") {
        int fd = create_ok("raw-mmap", 4096);

        cr_assert_eq(ashmem_set_prot_region(fd, PROT_READ | PROT_WRITE), 0);
        mmap_fail(fd, 4096, PROT_READ | PROT_EXEC, EPERM);
        cr_assert_eq(ashmem_set_prot_region(fd, PROT_WRITE), 0);
        mmap_fail(fd, 4096, PROT_READ, EPERM);
        close(fd);
}

/* The driver refuses a writable mapping of any kind once PROT_WRITE is
 * gone, private ones included; F_SEAL_FUTURE_WRITE (like F_SEAL_WRITE)
 * lets MAP_PRIVATE mappings be writable, since their writes never reach
 * the region. Harmless, but different: kept as a record. */
ASHM_TEST(compat, set_prot_private_writable_mapping_refused, .disabled = true,
     .description = "driver refuses MAP_PRIVATE|PROT_WRITE outside the mask; a sealed memfd allows it") {
        int fd = create_ok("private", 4096);
        void *p;

        cr_assert_eq(ashmem_set_prot_region(fd, PROT_READ), 0);
        errno = 0;
        p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
        if (p != MAP_FAILED)
                munmap(p, 4096);
        cr_assert(p == MAP_FAILED && errno == EPERM, "MAP_PRIVATE|PROT_WRITE: %s",
                  p == MAP_FAILED ? errname(errno) : "succeeded");
        close(fd);
}

/* Through libashm's own mapper the whole mask is enforced. */
ASHM_TEST(compat, set_prot_read_exec_enforced_by_region_map) {
        int fd = create_ok("region-map", 4096);
        ashm_region *r;
        void *p;

        cr_assert_eq(ashmem_set_prot_region(fd, PROT_READ | PROT_WRITE), 0);
        assert_ok(ashm_region_adopt(fcntl(fd, F_DUPFD_CLOEXEC, 3), 0, &r));
        assert_fail(ashm_region_map(r, 0, 0, PROT_READ | PROT_EXEC, &p), EPERM);
        cr_assert_eq(ashmem_set_prot_region(fd, PROT_WRITE), 0);
        assert_fail(ashm_region_map(r, 0, 0, PROT_READ, &p), EPERM);
        ashm_region_close(r);
        close(fd);
}

/* ------------------------------------------------------------------ */
/* ashmem_pin_region / ashmem_unpin_region                             */
/* ------------------------------------------------------------------ */

static void pin_ok(int fd, size_t off, size_t len) {
        errno = 0;
        int r = ashmem_pin_region(fd, off, len);
        cr_assert_eq(r, ASHMEM_NOT_PURGED, "ashmem_pin_region(%zu, %zu) = %d errno %s, expected NOT_PURGED", off, len,
                     r, errname(errno));
        errno = 0;
        r = ashmem_unpin_region(fd, off, len);
        cr_assert_eq(r, 0, "ashmem_unpin_region(%zu, %zu) = %d errno %s", off, len, r, errname(errno));
        errno = 0;
        r = ashmem_pin_region(fd, off, len);
        cr_assert_eq(r, ASHMEM_NOT_PURGED, "re-pin(%zu, %zu) = %d errno %s", off, len, r, errname(errno));
}

static void pin_einval(int fd, size_t off, size_t len) {
        errno = 0;
        int r = ashmem_pin_region(fd, off, len), e = errno;
        cr_assert(r == -1 && e == EINVAL, "ashmem_pin_region(%zu, %zu) = %d errno %s, expected -1 EINVAL", off, len,
                  r, errname(e));
        errno = 0;
        r = ashmem_unpin_region(fd, off, len);
        e = errno;
        cr_assert(r == -1 && e == EINVAL, "ashmem_unpin_region(%zu, %zu) = %d errno %s, expected -1 EINVAL", off,
                  len, r, errname(e));
}

ASHM_TEST(compat, pin_whole_and_ranges) {
        size_t pg = page();
        int fd = create_ok("pin", 4 * pg);

        pin_ok(fd, 0, 0);
        pin_ok(fd, 0, 4 * pg);
        pin_ok(fd, pg, pg);
        pin_ok(fd, pg, 0);
        pin_ok(fd, 3 * pg, pg);
        pin_ok(fd, 3 * pg, 0);
        /* offset at the end and len 0: an empty range, as the driver. */
        pin_ok(fd, 4 * pg, 0);
        close(fd);
}

ASHM_TEST(compat, pin_unaligned) {
        size_t pg = page();
        int fd = create_ok("pin-unaligned", 4 * pg);

        pin_einval(fd, 1, 0);
        pin_einval(fd, 1, pg);
        pin_einval(fd, pg / 2, pg);
        pin_einval(fd, 0, 1);
        pin_einval(fd, 0, pg + 1);
        pin_einval(fd, pg, pg - 1);
        pin_einval(fd, pg - 1, pg + 1);
        close(fd);
}

ASHM_TEST(compat, pin_past_end) {
        size_t pg = page();
        int fd = create_ok("pin-end", 4 * pg);

        pin_einval(fd, 0, 5 * pg);
        pin_einval(fd, 4 * pg, pg);
        pin_einval(fd, 5 * pg, 0);
        pin_einval(fd, 5 * pg, pg);
        pin_einval(fd, 3 * pg, 2 * pg);
        /* Overflowing offset + len must not wrap into range. */
        pin_einval(fd, pg, SIZE_MAX - pg + 1);
        pin_einval(fd, SIZE_MAX - pg + 1, pg);
        pin_einval(fd, SIZE_MAX - pg + 1, 0);
        close(fd);
}

/* On a size that is not a page multiple the last, partial page counts:
 * the driver checks against PAGE_ALIGN(size). */
ASHM_TEST(compat, pin_partial_last_page) {
        size_t pg = page();
        int fd = create_ok("pin-partial", pg + 904); /* 5000 with 4 KiB pages */

        pin_ok(fd, pg, pg);
        pin_ok(fd, pg, 0);
        pin_ok(fd, 0, 2 * pg);
        pin_ok(fd, 2 * pg, 0);
        pin_einval(fd, 2 * pg, pg);
        pin_einval(fd, 0, 3 * pg);
        pin_einval(fd, pg, 2 * pg);
        close(fd);

        fd = create_ok("pin-one-byte", 1);
        pin_ok(fd, 0, pg);
        pin_ok(fd, 0, 0);
        pin_ok(fd, pg, 0);
        pin_einval(fd, pg, pg);
        close(fd);
}

ASHM_TEST(compat, pin_size_zero) {
        size_t pg = page();
        int fd = create_ok("pin-empty", 0);

        /* Nothing to pin: the whole (empty) region is fine, any page not. */
        pin_ok(fd, 0, 0);
        pin_einval(fd, 0, pg);
        pin_einval(fd, pg, 0);
        close(fd);
}

/* Pinning touches nothing a reader could see: no size change, no bytes. */
ASHM_TEST(compat, pin_leaves_file_alone) {
        size_t pg = page();
        int fd = create_ok("pin-invisible", 2 * pg + 1);
        char buf[3 * 4096 + 1];
        ssize_t n;

        cr_assert_eq(pwrite(fd, "data", 4, pg), 4);
        cr_assert_eq(ashmem_unpin_region(fd, 0, 0), 0);
        cr_assert_eq(ashmem_pin_region(fd, 0, pg), ASHMEM_NOT_PURGED);
        cr_assert_eq(ashmem_pin_region(fd, 0, 0), ASHMEM_NOT_PURGED);
        assert_size(fd, 2 * pg + 1);
        cr_assert_eq(lseek(fd, 0, SEEK_END), (off_t) (2 * pg + 1));
        n = pread(fd, buf, sizeof(buf), pg);
        cr_assert_eq(n, (ssize_t) (pg + 1));
        cr_assert_eq(memcmp(buf, "data", 4), 0);
        close(fd);
}

/* Pin state belongs to the region: a read-only region may still be
 * pinned and unpinned (the driver does not look at the mask). */
ASHM_TEST(compat, pin_after_set_prot) {
        int fd = create_ok("pin-ro", 8192);

        cr_assert_eq(ashmem_set_prot_region(fd, PROT_READ), 0);
        pin_ok(fd, 0, 0);
        pin_einval(fd, 1, 0);
        close(fd);
}

/* ------------------------------------------------------------------ */
/* read(), write() and lseek() on the region's fd                      */
/* ------------------------------------------------------------------ */

ASHM_TEST(compat, fd_read_write_lseek) {
        static const char msg[] = "hello, ashmem";
        char buf[64] = { 0 };
        int fd = create_ok("rw", 4097);

        cr_assert_eq(write(fd, msg, sizeof(msg)), (ssize_t) sizeof(msg), "write: %s", errname(errno));
        cr_assert_eq(lseek(fd, 0, SEEK_CUR), (off_t) sizeof(msg));
        cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
        cr_assert_eq(read(fd, buf, sizeof(msg)), (ssize_t) sizeof(msg));
        cr_assert_str_eq(buf, msg);
        cr_assert_eq(lseek(fd, 0, SEEK_END), 4097);
        cr_assert_eq(read(fd, buf, sizeof(buf)), 0, "read at the end is EOF");
        /* The write did not change the size. */
        assert_size(fd, 4097);

        /* A mapping sees what write() put there, and the other way round. */
        char *p = mmap_ok(fd, 8192, PROT_READ | PROT_WRITE);
        cr_assert_str_eq(p, msg);
        memcpy(p + 4000, "tail", 4);
        cr_assert_eq(lseek(fd, 4000, SEEK_SET), 4000);
        cr_assert_eq(read(fd, buf, 10), 10);
        cr_assert_eq(memcmp(buf, "tail", 4), 0);
        munmap(p, 8192);
        close(fd);
}

/* Nothing of ashm's shows in the file: a new region reads as exactly size
 * zero bytes, whatever was asked of it before. */
ASHM_TEST(compat, fd_nothing_of_ashm_in_file) {
        static const size_t sizes[] = { 1, 4096, 4097, 12345 };
        static char buf[16384];

        for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                int fd = create_ok("clean", sizes[i]);
                ssize_t n, total = 0;

                cr_assert_eq(ashmem_set_prot_region(fd, PROT_READ | PROT_WRITE), 0);
                cr_assert_eq(ashmem_unpin_region(fd, 0, 0), 0);
                cr_assert_eq(ashmem_pin_region(fd, 0, 0), ASHMEM_NOT_PURGED);
                cr_assert_eq(lseek(fd, 0, SEEK_END), (off_t) sizes[i]);
                cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
                while ((n = read(fd, buf, sizeof(buf))) > 0) {
                        for (ssize_t j = 0; j < n; j++)
                                cr_assert_eq(buf[j], 0, "byte %zd of a new region is %d", total + j, buf[j]);
                        total += n;
                }
                cr_assert_eq(n, 0, "read: %s", errname(errno));
                cr_assert_eq(total, (ssize_t) sizes[i]);
                close(fd);
        }
}

ASHM_TEST(compat, fd_write_refused_after_prot_reduction) {
        int fd = create_ok("rw-ro", 4096);
        char c;

        cr_assert_eq(write(fd, "a", 1), 1);
        cr_assert_eq(ashmem_set_prot_region(fd, PROT_READ), 0);
        assert_fail_errno(write(fd, "b", 1), EPERM);
        /* Reading still works and sees the old contents. */
        cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
        cr_assert_eq(read(fd, &c, 1), 1);
        cr_assert_eq(c, 'a');
        close(fd);
}

/* ------------------------------------------------------------------ */
/* The NDK: ASharedMemory_*                                            */
/* ------------------------------------------------------------------ */

ASHM_TEST(compat, ndk_create_size_zero_is_einval) {
        cr_assert_eq(ASharedMemory_create("zero", 0), -EINVAL);
        cr_assert_eq(ASharedMemory_create(NULL, 0), -EINVAL);
}

ASHM_TEST(compat, ndk_create) {
        char got[512];
        int fd = ASharedMemory_create("ndk-region", 12345);

        cr_assert(fd >= 0, "ASharedMemory_create: %d errno %s", fd, errname(errno));
        assert_cloexec(fd);
        assert_size(fd, 12345);
        cr_assert_eq(ashmem_valid(fd), 1);
        fd_name(fd, got, sizeof(got));
        cr_assert_str_eq(got, "ndk-region");
        assert_maps_name(fd, "ndk-region");
        cr_assert_eq(prot_of(fd), PROT_RWX);
        munmap(mmap_ok(fd, 4096, PROT_READ | PROT_EXEC), 4096);
        close(fd);
}

ASHM_TEST(compat, ndk_create_null_name) {
        int fd = ASharedMemory_create(NULL, 4096);

        cr_assert(fd >= 0, "ASharedMemory_create(NULL): %d errno %s", fd, errname(errno));
        assert_maps_name(fd, "dev/ashmem");
        close(fd);
}

ASHM_TEST(compat, ndk_create_too_big) {
        assert_fail_errno(ASharedMemory_create("huge", SIZE_MAX), EFBIG);
}

ASHM_TEST(compat, ndk_get_size) {
        int fd = ASharedMemory_create("ndk-size", 1);
        int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

        cr_assert(fd >= 0 && null_fd >= 0);
        cr_assert_eq(ASharedMemory_getSize(fd), 1);
        cr_assert_eq(ASharedMemory_getSize(null_fd), 0);
        cr_assert_eq(ASharedMemory_getSize(-1), 0);
        cr_assert_eq(ASharedMemory_getSize(closed_fd()), 0);
        close(fd);
        close(null_fd);
}

ASHM_TEST(compat, ndk_set_prot) {
        int fd = ASharedMemory_create("ndk-prot", 8192);
        char *rw;

        cr_assert(fd >= 0);
        rw = mmap_ok(fd, 8192, PROT_READ | PROT_WRITE);
        rw[0] = 1;
        cr_assert_eq(ASharedMemory_setProt(fd, PROT_READ | PROT_WRITE), 0);
        cr_assert_eq(ASharedMemory_setProt(fd, PROT_READ), 0);
        /* Existing mappings are unaffected... */
        rw[8191] = 2;
        cr_assert_eq(rw[0], 1);
        /* ...new ones obey the mask, and access never comes back. */
        mmap_fail(fd, 8192, PROT_READ | PROT_WRITE, EPERM);
        assert_fail_errno(ASharedMemory_setProt(fd, PROT_READ | PROT_WRITE), EINVAL);
        assert_fail_errno(ASharedMemory_setProt(fd, PROT_RWX), EINVAL);
        assert_fail_errno(ASharedMemory_setProt(fd, PROT_READ | 0x20), EINVAL);
        cr_assert_eq(ASharedMemory_setProt(fd, PROT_READ), 0);
        assert_fail_errno(write(fd, "x", 1), EPERM);
        char *ro = mmap_ok(fd, 8192, PROT_READ);
        cr_assert_eq(ro[8191], 2);
        munmap(ro, 8192);
        munmap(rw, 8192);
        close(fd);
}

/* The NDK and libcutils calls work on each other's regions. */
ASHM_TEST(compat, ndk_and_cutils_interoperate) {
        int a = ASharedMemory_create("ndk", 4096), b = create_ok("cutils", 4096);

        cr_assert(a >= 0);
        cr_assert_eq(ashmem_get_size_region(a), 4096);
        cr_assert_eq(ashmem_pin_region(a, 0, 0), ASHMEM_NOT_PURGED);
        cr_assert_eq(ashmem_set_prot_region(a, PROT_READ), 0);
        assert_fail_errno(ASharedMemory_setProt(a, PROT_READ | PROT_WRITE), EINVAL);
        cr_assert_eq(ASharedMemory_getSize(b), 4096);
        cr_assert_eq(ASharedMemory_setProt(b, PROT_READ), 0);
        assert_fail_errno(ashmem_set_prot_region(b, PROT_READ | PROT_WRITE), EINVAL);
        close(a);
        close(b);
}

/* ------------------------------------------------------------------ */
/* An Android program, plainly (test-devshim runs it under the shim)    */
/* ------------------------------------------------------------------ */

ASHM_TEST(compat, android_program_runs_plainly) {
        char out[1 << 16];
        size_t n = 0;
        int status, ok = 0, not_ok = 0, plan = -1;
        FILE *f = popen(ANDROID_PROGRAM " 2>&1", "re");

        cr_assert_not_null(f);
        n = fread(out, 1, sizeof(out) - 1, f);
        out[n] = '\0';
        status = pclose(f);
        for (const char *l = out; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l)) {
                if (strncmp(l, "ok ", 3) == 0)
                        ok++;
                else if (strncmp(l, "not ok ", 7) == 0)
                        not_ok++;
                else if (strncmp(l, "1..", 3) == 0)
                        plan = atoi(l + 3);
        }
        cr_assert(plan > 0 && not_ok == 0 && ok == plan && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "android-program: %d ok, %d not ok, plan %d, status 0x%x; its output:\n%s", ok, not_ok, plan,
                  status, out);
}
