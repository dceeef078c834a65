/* SPDX-License-Identifier: MIT */
/*
 * A program written the way Android code is: it knows <cutils/ashmem.h>,
 * <android/sharedmem.h> and <linux/ashmem.h> and nothing of ashm. Built
 * outside the project with nothing but `pkg-config --cflags --libs ashm`
 * (tests/test-pkgconfig.sh), it checks that such code gets Android's
 * behaviour. Prints TAP; exits non-zero if any check fails.
 */
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
#include <linux/ashmem.h>

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

int main(void) {
        test_create_and_sizes();
        test_valid();
        test_names();
        test_fd_io();
        test_prot();
        test_prot_fork();
        test_ndk();
        test_pin();
        test_uapi();
        printf("1..%d\n", n_tests);
        if (n_failed)
                printf("# %d of %d checks failed\n", n_failed, n_tests);
        return n_failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
