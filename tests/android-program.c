/* SPDX-License-Identifier: MIT */
/*
 * A program written the way Android code is: it knows <cutils/ashmem.h>,
 * <android/sharedmem.h> and <linux/ashmem.h> and nothing of ashm. Built
 * outside the project with nothing but `pkg-config --cflags --libs ashm`
 * (tests/test-pkgconfig.sh), it checks that such code gets Android's
 * behaviour. Prints TAP; exits non-zero if any check fails.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create() flags and F_ADD_SEALS, for the foreign memfds */
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <android/sharedmem.h>
#include <cutils/ashmem.h>

/* AOSP's <cutils/ashmem.h> alone defines what a pin's result is compared
 * with; <linux/ashmem.h> after it defines the same again. */
#if ASHMEM_NAME_LEN != 256 || ASHMEM_NOT_PURGED != 0 || ASHMEM_WAS_PURGED != 1 || ASHMEM_IS_UNPINNED != 0 || \
        ASHMEM_IS_PINNED != 1
#error "<cutils/ashmem.h> lacks AOSP's constants"
#endif
static const char cutils_name_def[] = ASHMEM_NAME_DEF;

#include <linux/ashmem.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

static int n_tests, n_failed;

static void check(int ok, const char *fmt, ...) {
        va_list ap;

        printf("%sok %d - ", ok ? "" : "not ", ++n_tests);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        putchar('\n');
        fflush(stdout);
        if (!ok)
                n_failed++;
}

/* A libc-style call failed with -1 and exactly errno err; the diagnostic
 * names what happened instead. */
static void check_errno(long r, int err, const char *what) {
        int e = errno;

        check(r == -1 && e == err, "%s fails with %s", what, strerror(err));
        if (r != -1 || e != err)
                printf("# got %ld, errno %d (%s)\n", r, e, strerror(e));
}

static void check_eq(long got, long want, const char *what) {
        int e = errno;

        check(got == want, "%s == %ld", what, want);
        if (got != want)
                printf("# got %ld (errno %d: %s)\n", got, e, strerror(e));
}

static int has_cloexec(int fd) {
        int flags = fcntl(fd, F_GETFD);

        return flags >= 0 && (flags & FD_CLOEXEC);
}

static long file_size(int fd) {
        struct stat st;

        return fstat(fd, &st) < 0 ? -1 : (long) st.st_size;
}

/* Whether the mapping at addr shows in /proc/self/maps as path. */
static int maps_shows(const void *addr, const char *path) {
        FILE *f = fopen("/proc/self/maps", "r");
        char line[1024];
        int found = 0;

        if (!f)
                return 0;
        while (!found && fgets(line, sizeof(line), f)) {
                unsigned long start, end;
                char *p = strchr(line, '/');
                size_t len = strlen(path);

                if (sscanf(line, "%lx-%lx", &start, &end) != 2 || (unsigned long) addr < start ||
                    (unsigned long) addr >= end)
                        continue;
                found = p && strncmp(p, path, len) == 0 && (p[len] == '\n' || strcmp(p + len, " (deleted)\n") == 0);
                if (!found)
                        printf("# mapping at %p is: %s", addr, line);
                break;
        }
        fclose(f);
        return found;
}

/* Map one page of fd read-only and look for its name in the maps. */
static void check_maps_name(int fd, const char *name) {
        char path[300];
        void *p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);

        snprintf(path, sizeof(path), "/memfd:%s", name);
        if (strlen(name) > 40)
                check(p != MAP_FAILED && maps_shows(p, path), "/proc/self/maps shows /memfd: and the first %zu bytes",
                      strlen(name));
        else
                check(p != MAP_FAILED && maps_shows(p, path), "/proc/self/maps shows %s", path);
        if (p != MAP_FAILED)
                munmap(p, 4096);
}

static long pin_ioctl_raw(int fd, unsigned cmd, unsigned offset, unsigned len) {
        struct ashmem_pin pin = { offset, len };

        return ioctl(fd, cmd, &pin);
}

static int mmap_errno(int fd, int prot) {
        void *p = mmap(NULL, 4096, prot, MAP_SHARED, fd, 0);

        if (p == MAP_FAILED)
                return errno;
        munmap(p, 4096);
        return 0;
}

static void test_create_and_sizes(void) {
        static const size_t sizes[] = { 1, 4096, 4097, 123456 };
        char what[128];
        int fd;

        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                fd = ashmem_create_region("android-program", sizes[i]);
                check(fd >= 0, "ashmem_create_region(%zu)", sizes[i]);
                if (fd < 0)
                        continue;
                snprintf(what, sizeof(what), "ashmem_get_size_region of a %zu-byte region", sizes[i]);
                check_eq(ashmem_get_size_region(fd), (long) sizes[i], what);
                snprintf(what, sizeof(what), "fstat size of a %zu-byte region", sizes[i]);
                check_eq(file_size(fd), (long) sizes[i], what);
                check(has_cloexec(fd), "region fd has FD_CLOEXEC");
                check(ashmem_valid(fd) == 1, "ashmem_valid is 1 for a region");
                close(fd);
        }
        fd = ashmem_create_region("empty", 0);
        check(fd >= 0 && ashmem_get_size_region(fd) == 0, "ashmem_create_region of size 0 is allowed");
        if (fd >= 0)
                close(fd);
}

static void test_valid(void) {
        int null_fd = open("/dev/null", O_RDWR);
        int p[2];

        check(ashmem_valid(null_fd) == 0, "ashmem_valid(/dev/null) is 0");
        check(ashmem_valid(-1) == 0, "ashmem_valid(-1) is 0");
        if (pipe(p) == 0) {
                check(ashmem_valid(p[0]) == 0, "ashmem_valid(pipe) is 0");
                close(p[0]);
                close(p[1]);
        }
        errno = 0;
        check_errno(ashmem_get_size_region(null_fd), ENOTTY, "ashmem_get_size_region(/dev/null)");
        errno = 0;
        check_errno(ashmem_get_size_region(-1), EBADF, "ashmem_get_size_region(-1)");
        close(null_fd);
}

static void test_names(void) {
        char long_name[301], want[250];
        int fd;

        fd = ashmem_create_region("my-region", 8192);
        check(fd >= 0, "ashmem_create_region(\"my-region\")");
        if (fd >= 0) {
                check_maps_name(fd, "my-region");
                close(fd);
        }
        fd = ashmem_create_region(NULL, 4096);
        check(fd >= 0, "ashmem_create_region(NULL)");
        if (fd >= 0) {
                check_maps_name(fd, ASHMEM_NAME_DEF);
                close(fd);
        }
        memset(long_name, 'n', sizeof(long_name) - 1);
        long_name[sizeof(long_name) - 1] = '\0';
        memset(want, 'n', 249);
        want[249] = '\0';
        fd = ashmem_create_region(long_name, 4096);
        check(fd >= 0, "a 300-byte name is truncated, not refused");
        if (fd >= 0) {
                check_maps_name(fd, want);
                close(fd);
        }
}

static void test_fd_io(void) {
        static const char msg[] = "written with write()";
        char buf[sizeof(msg)] = "";
        int fd = ashmem_create_region("io", 4097);

        if (fd < 0) {
                check(0, "ashmem_create_region for read/write");
                return;
        }
        check_eq(write(fd, msg, sizeof(msg)), (long) sizeof(msg), "write() on the region fd");
        check_eq(lseek(fd, 0, SEEK_SET), 0, "lseek(SEEK_SET)");
        check(read(fd, buf, sizeof(buf)) == (ssize_t) sizeof(msg) && strcmp(buf, msg) == 0,
              "read() gives back what write() wrote");
        check_eq(lseek(fd, 0, SEEK_END), 4097, "lseek(SEEK_END) is the size");
        check_eq(read(fd, buf, sizeof(buf)), 0, "read() at the end is EOF");
        close(fd);
}

static void test_prot(void) {
        int fd = ashmem_create_region("prot", 4096);
        char *rw;

        if (fd < 0) {
                check(0, "ashmem_create_region for set_prot");
                return;
        }
        check(mmap_errno(fd, PROT_READ | PROT_EXEC) == 0, "a new region may be mapped PROT_EXEC");
        rw = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        check(rw != MAP_FAILED, "mmap(PROT_READ|PROT_WRITE) of a new region");
        check_eq(ashmem_set_prot_region(fd, PROT_READ), 0, "ashmem_set_prot_region(PROT_READ)");
        check_eq(mmap_errno(fd, PROT_READ | PROT_WRITE), EPERM, "errno of mmap(PROT_WRITE) after the reduction (EPERM)");
        errno = 0;
        check_errno(write(fd, "x", 1), EPERM, "then write()");
        errno = 0;
        check_errno(ashmem_set_prot_region(fd, PROT_READ | PROT_WRITE), EINVAL, "adding PROT_WRITE back");
        errno = 0;
        check_errno(ashmem_set_prot_region(fd, PROT_READ | 0x100), EINVAL, "a bit outside PROT_RWX");
        check_eq(ashmem_set_prot_region(fd, PROT_READ), 0, "setting the same mask again");
        if (rw != MAP_FAILED) {
                rw[100] = 42; /* would crash if the old mapping had lost PROT_WRITE */
                check(rw[100] == 42, "the existing writable mapping keeps working");
                munmap(rw, 4096);
        }
        close(fd);
}

/* The child reports its checks through its exit status: bit n set means
 * check n failed. */
static void test_prot_fork(void) {
        int fd = ashmem_create_region("fork", 4096), go[2], status = 0;
        pid_t pid;
        char c;

        if (fd < 0 || pipe(go) < 0) {
                check(0, "setting up the fork test");
                return;
        }
        pid = fork();
        if (pid == 0) {
                int fails = 0;

                close(go[1]);
                if (read(go[0], &c, 1) != 1)
                        _exit(0x80);
                if (mmap_errno(fd, PROT_READ | PROT_WRITE) != EPERM)
                        fails |= 1;
                if (write(fd, "x", 1) != -1 || errno != EPERM)
                        fails |= 2;
                if (ashmem_set_prot_region(fd, PROT_READ | PROT_WRITE) != -1 || errno != EINVAL)
                        fails |= 4;
                if (mmap_errno(fd, PROT_READ) != 0)
                        fails |= 8;
                /* A reduction by the child, for the parent to see. */
                if (ashmem_set_prot_region(fd, PROT_NONE) != 0)
                        fails |= 16;
                _exit(fails);
        }
        close(go[0]);
        check_eq(ashmem_set_prot_region(fd, PROT_READ), 0, "parent removes PROT_WRITE after fork()");
        if (write(go[1], "g", 1) != 1)
                check(0, "telling the child to go");
        close(go[1]);
        waitpid(pid, &status, 0);
        check(WIFEXITED(status), "the forked child exits");
        status = WIFEXITED(status) ? WEXITSTATUS(status) : 0xff;
        check(!(status & 1), "the forked child's mmap(PROT_WRITE) fails with EPERM");
        check(!(status & 2), "the forked child's write() fails with EPERM");
        check(!(status & 4), "the forked child cannot add PROT_WRITE back");
        check(!(status & 8), "the forked child may still map PROT_READ");
        check(!(status & 16), "the forked child may reduce the mask further");
        errno = 0;
        check_errno(ashmem_set_prot_region(fd, PROT_READ), EINVAL, "parent sees the child's reduction: PROT_READ");
        close(fd);
}

static void test_ndk(void) {
        int null_fd = open("/dev/null", O_RDONLY);
        int fd;

        check_eq(ASharedMemory_create("ndk", 0), -EINVAL, "ASharedMemory_create of size 0");
        fd = ASharedMemory_create("ndk-region", 10000);
        check(fd >= 0, "ASharedMemory_create(\"ndk-region\", 10000)");
        if (fd >= 0) {
                check(has_cloexec(fd), "NDK region fd has FD_CLOEXEC");
                check_eq((long) ASharedMemory_getSize(fd), 10000, "ASharedMemory_getSize");
                check_maps_name(fd, "ndk-region");
                char *rw = mmap(NULL, 10000, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
                check_eq(ASharedMemory_setProt(fd, PROT_READ), 0, "ASharedMemory_setProt(PROT_READ)");
                if (rw != MAP_FAILED) {
                        rw[9999] = 7;
                        check(rw[9999] == 7, "ASharedMemory_setProt leaves existing mappings alone");
                        munmap(rw, 10000);
                }
                check_eq(mmap_errno(fd, PROT_READ | PROT_WRITE), EPERM, "errno of a new writable mapping after setProt (EPERM)");
                errno = 0;
                check_errno(ASharedMemory_setProt(fd, PROT_READ | PROT_WRITE), EINVAL,
                            "ASharedMemory_setProt adding PROT_WRITE back");
                close(fd);
        }
        check_eq((long) ASharedMemory_getSize(null_fd), 0, "ASharedMemory_getSize(/dev/null)");
        check_eq((long) ASharedMemory_getSize(-1), 0, "ASharedMemory_getSize(-1)");
        close(null_fd);
}

static void test_pin(void) {
        long pg = sysconf(_SC_PAGESIZE);
        int fd = ashmem_create_region("pin", (size_t) pg + 904);

        if (fd < 0) {
                check(0, "ashmem_create_region for pin");
                return;
        }
        check_eq(ashmem_pin_region(fd, 0, 0), ASHMEM_NOT_PURGED, "pin of the whole region is ASHMEM_NOT_PURGED");
        check_eq(ashmem_unpin_region(fd, 0, 0), 0, "unpin of the whole region");
        check_eq(ashmem_pin_region(fd, pg, pg), ASHMEM_NOT_PURGED, "pin of the partial last page");
        check_eq(ashmem_unpin_region(fd, pg, 0), 0, "unpin with len 0 runs to the end");
        check_eq(ashmem_pin_region(fd, 2 * pg, 0), ASHMEM_NOT_PURGED, "pin at PAGE_ALIGN(size), len 0 (empty)");
        errno = 0;
        check_errno(ashmem_pin_region(fd, 1, 0), EINVAL, "pin at an unaligned offset");
        errno = 0;
        check_errno(ashmem_unpin_region(fd, 0, 100), EINVAL, "unpin of an unaligned length");
        errno = 0;
        check_errno(ashmem_pin_region(fd, 2 * pg, pg), EINVAL, "pin past the end");
        errno = 0;
        check_errno(ashmem_unpin_region(fd, 0, 3 * pg), EINVAL, "unpin past the end");
        close(fd);
}

static void test_uapi(void) {
        check(sizeof(struct ashmem_pin) == 8, "sizeof(struct ashmem_pin) is 8");
        check(ASHMEM_NAME_LEN == 256, "ASHMEM_NAME_LEN is 256");
        check(ASHMEM_PIN == _IOW(0x77, 7, struct ashmem_pin), "ASHMEM_PIN is the driver's number");
#if defined(__x86_64__)
        check(ASHMEM_SET_NAME == 0x41007701, "ASHMEM_SET_NAME is 0x41007701 on x86_64");
#endif
}

/* A memfd someone else made is a region only with AOSP's two seals. */
static void test_valid_foreign(void) {
        static const int seals[] = { 0, F_SEAL_GROW, F_SEAL_SHRINK, F_SEAL_GROW | F_SEAL_SHRINK };

        check(strcmp(cutils_name_def, "dev/ashmem") == 0, "ASHMEM_NAME_DEF from <cutils/ashmem.h>");
        for (size_t i = 0; i < sizeof(seals) / sizeof(seals[0]); i++) {
                int fd = (int) syscall(SYS_memfd_create, "foreign", MFD_CLOEXEC | MFD_ALLOW_SEALING);

                if (fd < 0 || ftruncate(fd, 4096) < 0 || (seals[i] && fcntl(fd, F_ADD_SEALS, seals[i]) < 0)) {
                        check(0, "a foreign memfd with seals %#x", seals[i]);
                        continue;
                }
                check_eq(ashmem_valid(fd), seals[i] == (F_SEAL_GROW | F_SEAL_SHRINK),
                         seals[i] == 0 ? "ashmem_valid(unsealed foreign memfd)"
                                       : seals[i] == (F_SEAL_GROW | F_SEAL_SHRINK) ? "ashmem_valid(GROW|SHRINK memfd)"
                                                                                  : "ashmem_valid(half-sealed memfd)");
                close(fd);
        }
}

/* Android 9's libcutils knew an ashmem fd only by fstat(): a character
 * device whose st_rdev is the one /dev/ashmem has, learnt by opening the
 * device once. This program's own copy of that check and of the calls
 * built on it, as an unchanged old program carries them. */
static dev_t a9_rdev;

static int a9_is_ashmem(int fd) {
        struct stat st, dev;
        int dfd;

        if (fstat(fd, &st) < 0)
                return -1;
        if (S_ISCHR(st.st_mode) && st.st_rdev) {
                if (!a9_rdev) {
                        dfd = open("/dev/ashmem", O_RDWR | O_CLOEXEC);
                        if (dfd < 0)
                                return -1;
                        if (fstat(dfd, &dev) < 0 || !S_ISCHR(dev.st_mode) || !dev.st_rdev) {
                                close(dfd);
                                errno = ENOTTY;
                                return -1;
                        }
                        a9_rdev = dev.st_rdev;
                        close(dfd);
                }
                if (st.st_rdev == a9_rdev)
                        return 0;
        }
        errno = ENOTTY;
        return -1;
}

static int a9_create_region(const char *name, size_t size) {
        char buf[ASHMEM_NAME_LEN];
        int fd = open("/dev/ashmem", O_RDWR | O_CLOEXEC);

        if (fd < 0)
                return -1;
        snprintf(buf, sizeof(buf), "%s", name);
        if (ioctl(fd, ASHMEM_SET_NAME, buf) < 0 || ioctl(fd, ASHMEM_SET_SIZE, size) < 0) {
                close(fd);
                return -1;
        }
        return fd;
}

static int a9_pin(int fd, unsigned cmd, size_t offset, size_t len) {
        struct ashmem_pin pin = { (__u32) offset, (__u32) len };

        if (a9_is_ashmem(fd) < 0)
                return -1;
        return ioctl(fd, cmd, &pin);
}

static void test_android9(long pg) {
        int fd = a9_create_region("android9", (size_t) (3 * pg));
        struct stat st;
        void *p;

        check(fd >= 0, "Android 9 libcutils: ashmem_create_region through /dev/ashmem");
        if (fd < 0)
                return;
        check_eq(a9_is_ashmem(fd), 0, "Android 9's st_rdev check accepts the fd");
        check(stat("/dev/ashmem", &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == a9_rdev && st.st_size == 0,
              "stat(/dev/ashmem): the same character device, size 0");
        p = mmap(NULL, (size_t) (3 * pg), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        check(p != MAP_FAILED, "mmap the Android 9 region");
        check_eq(a9_pin(fd, ASHMEM_UNPIN, 0, 0), 0, "Android 9 ashmem_unpin_region");
        check_eq(a9_pin(fd, ASHMEM_GET_PIN_STATUS, 0, 0), ASHMEM_IS_UNPINNED, "Android 9 ASHMEM_GET_PIN_STATUS");
        check_eq(a9_pin(fd, ASHMEM_PIN, 0, 0), ASHMEM_NOT_PURGED, "Android 9 ashmem_pin_region");
        check_eq(a9_is_ashmem(fd) == 0 ? ioctl(fd, ASHMEM_GET_SIZE, NULL) : -1, 3 * pg,
                 "Android 9 ashmem_get_size_region");
        if (p != MAP_FAILED)
                munmap(p, (size_t) (3 * pg));
        close(fd);
}

/* The driver's raw ioctls on a region libcutils made: a program mixing
 * both is common. */
static void test_ioctls_on_cutils_regions(long pg) {
        int fd = ashmem_create_region("foo", (size_t) (2 * pg));
        char name[ASHMEM_NAME_LEN] = "";

        check_eq(ioctl(fd, ASHMEM_GET_SIZE), 2 * pg, "ioctl(ashmem_create_region(\"foo\"), ASHMEM_GET_SIZE)");
        check(ioctl(fd, ASHMEM_GET_NAME, name) == 0 && strcmp(name, "foo") == 0, "ASHMEM_GET_NAME of it");
        check_eq(ioctl(fd, ASHMEM_GET_PROT_MASK), PROT_READ | PROT_WRITE | PROT_EXEC, "ASHMEM_GET_PROT_MASK of it");
        check_eq(pin_ioctl_raw(fd, ASHMEM_UNPIN, (unsigned) pg, (unsigned) pg), 0, "ASHMEM_UNPIN of its 2nd page");
        check_eq(pin_ioctl_raw(fd, ASHMEM_GET_PIN_STATUS, 0, 0), ASHMEM_IS_UNPINNED, "ASHMEM_GET_PIN_STATUS");
        check_eq(ashmem_pin_region(fd, (size_t) pg, (size_t) pg), ASHMEM_NOT_PURGED,
                 "ashmem_pin_region sees the ioctl's unpin");
        check_eq(pin_ioctl_raw(fd, ASHMEM_GET_PIN_STATUS, 0, 0), ASHMEM_IS_PINNED, "ASHMEM_GET_PIN_STATUS after");
        errno = 0;
        check_errno(ioctl(fd, ASHMEM_SET_SIZE, (size_t) pg), EINVAL, "ASHMEM_SET_SIZE of a sized region");
        check_eq(ioctl(fd, ASHMEM_SET_PROT_MASK, PROT_READ | PROT_WRITE), 0, "ASHMEM_SET_PROT_MASK of it");
        check_eq(ioctl(fd, ASHMEM_GET_PROT_MASK), PROT_READ | PROT_WRITE, "the mask as libcutils sees it");
        close(fd);
}

/* read, write, lseek, fstat of /dev/ashmem fds, as the driver answers. */
static void test_device_file_ops(long pg) {
        char buf[8] = "", name[ASHMEM_NAME_LEN] = "", long_name[300], want[ASHMEM_NAME_LEN], maps[300];
        int fd = open("/dev/ashmem", O_RDWR | O_CLOEXEC);
        struct stat st;
        char *p;

        check(fd >= 0, "open(/dev/ashmem)");
        if (fd < 0)
                return;
        check_eq(access("/dev/ashmem", R_OK | W_OK), 0, "access(/dev/ashmem, R_OK|W_OK)");
        check(fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev != 0 && st.st_size == 0,
              "fstat of the fd: a character device of size 0");
        check_eq(ashmem_valid(fd), 1, "ashmem_valid of a /dev/ashmem fd before its first mmap");
        errno = 0;
        check_errno(write(fd, "x", 1), EINVAL, "write() on a new fd");
        check_eq(read(fd, buf, 1), 0, "read() of a size-0 region: 0 bytes");
        errno = 0;
        check_errno(lseek(fd, 0, SEEK_SET), EINVAL, "lseek() of a size-0 region");

        memset(long_name, 'L', sizeof(long_name) - 1);
        long_name[sizeof(long_name) - 1] = '\0';
        check_eq(ioctl(fd, ASHMEM_SET_NAME, long_name), 0, "SET_NAME of a 299-byte name");
        check_eq(ioctl(fd, ASHMEM_SET_SIZE, (size_t) pg), 0, "SET_SIZE");
        errno = 0;
        check_errno(read(fd, buf, 1), EBADF, "read() before the first mmap");
        errno = 0;
        check_errno(lseek(fd, 0, SEEK_SET), EBADF, "lseek() before the first mmap");
        memset(want, 'L', ASHMEM_NAME_LEN - 1);
        want[ASHMEM_NAME_LEN - 1] = '\0';
        check(ioctl(fd, ASHMEM_GET_NAME, name) == 0 && strcmp(name, want) == 0,
              "GET_NAME gives the 255 bytes the driver keeps");
        p = mmap(NULL, (size_t) pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        check(p != MAP_FAILED, "mmap");
        if (p == MAP_FAILED) {
                close(fd);
                return;
        }
        snprintf(maps, sizeof(maps), "/memfd:dev/ashmem/%.238s", long_name);
        check(maps_shows(p, maps), "/proc/self/maps shows what fits in a memfd name");
        memcpy(p, "hello", 6);
        check_eq(lseek(fd, 1, SEEK_SET), 1, "lseek() after the first mmap");
        check(read(fd, buf, 5) == 5 && memcmp(buf, "ello", 5) == 0, "read() after the first mmap");
        errno = 0;
        check_errno(write(fd, "x", 1), EINVAL, "write() after the first mmap");
        check(fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && st.st_size == 0, "fstat after mmap: still the device");
        munmap(p, (size_t) pg);
        close(fd);
}

/* Under libashm-devshim.so (or on a kernel with the driver): /dev/ashmem
 * and the driver's ioctls. Skipped when there is none. */
static void test_driver(void) {
        long pg = sysconf(_SC_PAGESIZE);

        if (access("/dev/ashmem", F_OK) != 0) {
                printf("# no /dev/ashmem (run under libashm-devshim.so for these): skipped\n");
                return;
        }
        test_ioctls_on_cutils_regions(pg);
        test_device_file_ops(pg);
        test_android9(pg);
}

int main(void) {
        test_valid_foreign();
        test_create_and_sizes();
        test_valid();
        test_names();
        test_fd_io();
        test_prot();
        test_prot_fork();
        test_ndk();
        test_pin();
        test_uapi();
        test_driver();
        printf("1..%d\n", n_tests);
        if (n_failed)
                printf("# %d of %d checks failed\n", n_failed, n_tests);
        return n_failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
