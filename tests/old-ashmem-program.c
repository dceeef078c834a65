/* SPDX-License-Identifier: MIT */
/*
 * A program written for Android's /dev/ashmem driver, the old way: it
 * opens the device, talks ioctl() with <linux/ashmem.h> and maps the fd.
 * It knows nothing of ashm and links no ashm library; on plain Linux it
 * runs under LD_PRELOAD=libashm-devshim.so (tests/test-devshim.c checks
 * that it links nothing of ashm). Each check is what the kernel driver
 * answers. Prints TAP; exits non-zero if any check fails.
 *
 *   old-ashmem-program [MODE]
 *
 * MODE is one of basic, errors, prot, fork, pins, other-fds, reuse, resize
 * (the default runs all of them in turn), or one that needs setting up:
 *   purge          PURGE_ALL_CACHES really purges (needs CAP_SYS_ADMIN)
 *   purge-noperm   drop CAP_SYS_ADMIN, then PURGE_ALL_CACHES fails
 *   send, recv     with a connected AF_UNIX socket as fd 3: send makes a
 *                  region and passes it, recv takes and checks it
 *   inherited FD   (run by fork mode) FD came through exec
 */
/* Built the way most old programs were, with the plain names (open, mmap)
 * rather than the large-file ones (open64, mmap64), which are called by
 * name below. */
#undef _FILE_OFFSET_BITS

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/ashmem.h>

#define SOCK 3
#define PROT_RWX (PROT_READ | PROT_WRITE | PROT_EXEC)

/* What _FORTIFY_SOURCE builds call; glibc exports it. */
int __open_2(const char *path, int flags);

static int n_tests, n_failed;
static long page;

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

static void diag(const char *fmt, ...) {
        va_list ap;

        fputs("# ", stdout);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        putchar('\n');
        fflush(stdout);
}

/* A call failed with -1 and exactly errno err. */
static void check_errno(long r, int err, const char *what) {
        int e = errno;

        check(r == -1 && e == err, "%s fails with %s", what, strerrorname_np(err));
        if (r != -1 || e != err)
                diag("got %ld, errno %s", r, e ? strerrorname_np(e) : "0");
}

static void check_map_errno(void *p, int err, const char *what) {
        int e = errno;

        check(p == MAP_FAILED && e == err, "%s fails with %s", what, strerrorname_np(err));
        if (p != MAP_FAILED || e != err)
                diag("got %p, errno %s", p, e ? strerrorname_np(e) : "0");
}

static void check_eq(long got, long want, const char *what) {
        int e = errno;

        check(got == want, "%s == %ld", what, want);
        if (got != want)
                diag("got %ld (errno %s)", got, e ? strerrorname_np(e) : "0");
}

static void check_str(const char *got, const char *want, const char *what) {
        check(strcmp(got, want) == 0, "%s is \"%s\"", what, want);
        if (strcmp(got, want) != 0)
                diag("got \"%s\"", got);
}

/* The libcutils way: open, name, size. */
static int create_region(const char *name, size_t size) {
        char buf[ASHMEM_NAME_LEN] = { 0 };
        int fd = open("/dev/ashmem", O_RDWR);

        if (fd < 0)
                return -1;
        if (name) {
                strncpy(buf, name, sizeof(buf) - 1);
                if (ioctl(fd, ASHMEM_SET_NAME, buf) < 0)
                        goto fail;
        }
        if (ioctl(fd, ASHMEM_SET_SIZE, size) < 0)
                goto fail;
        return fd;
fail:
        close(fd);
        return -1;
}

static int pin_ioctl(int fd, unsigned long cmd, uint32_t offset, uint32_t len) {
        struct ashmem_pin pin = { offset, len };

        return ioctl(fd, cmd, &pin);
}

static int has_cloexec(int fd) {
        return (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0;
}

/* Does /proc/self/maps have a line ending in what? */
static int maps_has(const char *what) {
        char line[512];
        FILE *f = fopen("/proc/self/maps", "re");
        int found = 0;

        if (!f)
                return 0;
        while (!found && fgets(line, sizeof(line), f)) {
                line[strcspn(line, "\n")] = '\0';
                found = strlen(line) >= strlen(what) && strcmp(line + strlen(line) - strlen(what), what) == 0;
        }
        fclose(f);
        return found;
}

static int all_bytes(const unsigned char *p, size_t len, unsigned char c) {
        for (size_t i = 0; i < len; i++)
                if (p[i] != c)
                        return 0;
        return 1;
}

static int wait_child(pid_t pid) {
        int status;

        if (pid < 0 || waitpid(pid, &status, 0) != pid)
                return -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ------------------------------------------------------------------ */

static void test_basic(void) {
        char name[ASHMEM_NAME_LEN];
        size_t size = 3 * page + 100;
        unsigned long id = 0;
        struct stat st;
        char *p, *q;
        int fd, fd2;

        fd = open("/dev/ashmem", O_RDWR);
        check(fd >= 0, "open(\"/dev/ashmem\", O_RDWR)");
        if (fd < 0) {
                diag("errno %s", strerrorname_np(errno));
                return;
        }
        check(!has_cloexec(fd), "without O_CLOEXEC the fd is inherited across exec");
        fd2 = open("/dev/ashmem", O_RDWR | O_CLOEXEC);
        check(fd2 >= 0 && has_cloexec(fd2), "with O_CLOEXEC the fd has FD_CLOEXEC");
        close(fd2);
        fd2 = openat(AT_FDCWD, "/dev/ashmem", O_RDWR);
        check(fd2 >= 0 && ioctl(fd2, ASHMEM_GET_SIZE, NULL) == 0, "openat(AT_FDCWD, \"/dev/ashmem\") opens a region");
        close(fd2);
        fd2 = __open_2("/dev/ashmem", O_RDWR);
        check(fd2 >= 0 && ioctl(fd2, ASHMEM_GET_SIZE, NULL) == 0, "__open_2 (fortified open) opens a region");
        close(fd2);
        fd2 = open64("/dev/ashmem", O_RDWR | O_CLOEXEC);
        check(fd2 >= 0 && ioctl(fd2, ASHMEM_GET_SIZE, NULL) == 0, "open64 opens a region");
        close(fd2);
        fd2 = openat64(AT_FDCWD, "/dev/ashmem", O_RDWR | O_CLOEXEC);
        check(fd2 >= 0 && ioctl(fd2, ASHMEM_GET_SIZE, NULL) == 0, "openat64 opens a region");
        close(fd2);

        memset(name, 'x', sizeof(name));
        check_eq(ioctl(fd, ASHMEM_GET_NAME, name), 0, "GET_NAME");
        check_str(name, ASHMEM_NAME_DEF, "an unnamed region's name");
        check_eq(ioctl(fd, ASHMEM_GET_SIZE, NULL), 0, "GET_SIZE of a new region");
        check_eq(ioctl(fd, ASHMEM_GET_PROT_MASK, NULL), PROT_RWX, "GET_PROT_MASK of a new region");

        check_eq(ioctl(fd, ASHMEM_SET_NAME, "first-name"), 0, "SET_NAME before mmap");
        check_eq(ioctl(fd, ASHMEM_SET_NAME, "old-program"), 0, "SET_NAME again before mmap");
        ioctl(fd, ASHMEM_GET_NAME, name);
        check_str(name, "old-program", "GET_NAME after SET_NAME");
        check(!has_cloexec(fd), "SET_NAME keeps the fd's close-on-exec flag (clear)");
        fd2 = open("/dev/ashmem", O_RDWR | O_CLOEXEC);
        ioctl(fd2, ASHMEM_SET_NAME, "cloexec");
        check(has_cloexec(fd2), "SET_NAME keeps the fd's close-on-exec flag (set)");
        close(fd2);

        check_eq(ioctl(fd, ASHMEM_SET_SIZE, 5 * page), 0, "SET_SIZE before mmap");
        check_eq(ioctl(fd, ASHMEM_SET_SIZE, size), 0, "SET_SIZE again before mmap");
        check_eq(ioctl(fd, ASHMEM_GET_SIZE, NULL), (long) size, "GET_SIZE (exact, not rounded)");
        fd2 = dup(fd);
        check_eq(ioctl(fd2, ASHMEM_GET_SIZE, NULL), (long) size, "GET_SIZE through a dup()ed fd");
        close(fd2);

        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        check(p != MAP_FAILED, "mmap(size, PROT_READ|PROT_WRITE, MAP_SHARED)");
        if (p == MAP_FAILED) {
                close(fd);
                return;
        }
        strcpy(p, "hello from an old program");
        check(maps_has("/memfd:dev/ashmem/old-program (deleted)"),
              "/proc/self/maps names the mapping /memfd:dev/ashmem/old-program");
        check_errno(ioctl(fd, ASHMEM_SET_NAME, "too-late"), EINVAL, "SET_NAME after mmap");
        ioctl(fd, ASHMEM_GET_NAME, name);
        check_str(name, "old-program", "the name after a refused SET_NAME");
        check_errno(ioctl(fd, ASHMEM_SET_SIZE, page), EINVAL, "SET_SIZE after mmap");
        check_eq(ioctl(fd, ASHMEM_GET_SIZE, NULL), (long) size, "GET_SIZE after a refused SET_SIZE");
        check_eq(ioctl(fd, ASHMEM_GET_FILE_ID, &id), 0, "GET_FILE_ID after mmap");
        /* fstat() shows the device, as the driver's fd does; the backing
         * file is reached through /proc. */
        snprintf(name, sizeof(name), "/proc/self/fd/%d", fd);
        check(stat(name, &st) == 0 && id == (unsigned long) st.st_ino, "GET_FILE_ID is the backing inode number");

        q = mmap(NULL, 4 * page, PROT_READ, MAP_SHARED, fd, 0);
        check(q != MAP_FAILED && strcmp(q, p) == 0, "a second mapping of PAGE_ALIGN(size) shares the contents");
        if (q != MAP_FAILED)
                munmap(q, 4 * page);
        strcpy(p + 2 * page, "page two");
        q = mmap64(NULL, 2 * page, PROT_READ, MAP_SHARED, fd, (off64_t) (2 * page));
        check(q != MAP_FAILED && strcmp(q, "page two") == 0, "mmap64 at an offset");
        if (q != MAP_FAILED)
                munmap(q, 2 * page);
        check_map_errno(mmap64(NULL, 5 * page, PROT_READ, MAP_SHARED, fd, 0), EINVAL,
                        "mmap64 of more than PAGE_ALIGN(size)");
        q = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
        check(q != MAP_FAILED && all_bytes((unsigned char *) q, page, 0),
              "MAP_PRIVATE gives private zero-filled memory, as the driver does");
        if (q != MAP_FAILED)
                munmap(q, page);

        pid_t pid = fork();
        if (pid == 0) {
                int ok = strcmp(p, "hello from an old program") == 0;

                strcpy(p + page, "child was here");
                _exit(ok ? 0 : 1);
        }
        check(wait_child(pid) == 0 && strcmp(p + page, "child was here") == 0,
              "a forked child shares the mapping both ways");
        munmap(p, size);
        close(fd);

        fd = create_region(NULL, page);
        p = mmap(NULL, page, PROT_READ, MAP_SHARED, fd, 0);
        check(p != MAP_FAILED && maps_has("/memfd:dev/ashmem (deleted)"),
              "/proc/self/maps names an unnamed region /memfd:dev/ashmem");
        if (p != MAP_FAILED)
                munmap(p, page);
        close(fd);
}

static void test_errors(void) {
        char name[ASHMEM_NAME_LEN], longname[400];
        unsigned long id;
        char *p, *guard;
        int fd;

        fd = open("/dev/ashmem", O_RDWR);
        check_map_errno(mmap(NULL, page, PROT_READ, MAP_SHARED, fd, 0), EINVAL, "mmap before SET_SIZE");
        check_errno(ioctl(fd, ASHMEM_GET_FILE_ID, &id), EINVAL, "GET_FILE_ID before mmap");
        check_errno(pin_ioctl(fd, ASHMEM_PIN, 0, 0), EINVAL, "PIN before mmap");
        check_errno(pin_ioctl(fd, ASHMEM_UNPIN, 0, 0), EINVAL, "UNPIN before mmap");
        check_errno(pin_ioctl(fd, ASHMEM_GET_PIN_STATUS, 0, 0), EINVAL, "GET_PIN_STATUS before mmap");
        check_errno(ioctl(fd, ASHMEM_SET_NAME, NULL), EFAULT, "SET_NAME(NULL)");
        check_errno(ioctl(fd, ASHMEM_GET_NAME, NULL), EFAULT, "GET_NAME(NULL)");
        check_errno(ioctl(fd, ASHMEM_GET_NAME, (void *) 1), EFAULT, "GET_NAME(bad pointer)");

        /* A short name right before an unmapped page: the driver reads up
         * to the NUL, not a whole ASHMEM_NAME_LEN. */
        guard = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        munmap(guard + page, page);
        strcpy(guard + page - 6, "edge!");
        check_eq(ioctl(fd, ASHMEM_SET_NAME, guard + page - 6), 0, "SET_NAME of a name that ends at a page's end");
        memcpy(guard + page - 3, "abc", 3); /* no NUL before the hole */
        check_errno(ioctl(fd, ASHMEM_SET_NAME, guard + page - 3), EFAULT, "SET_NAME of a string running into a hole");
        mprotect(guard, page, PROT_READ);
        check_errno(ioctl(fd, ASHMEM_GET_NAME, guard), EFAULT, "GET_NAME into read-only memory");
        munmap(guard, page);

        memset(longname, 'n', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = '\0';
        check_eq(ioctl(fd, ASHMEM_SET_NAME, longname), 0, "SET_NAME of a 399-byte name");
        memset(name, 0, sizeof(name));
        ioctl(fd, ASHMEM_GET_NAME, name);
        /* The driver keeps 255 bytes; /proc/PID/maps shows what a memfd
         * name holds, 249 less the "dev/ashmem/" prefix (docs/devshim.md). */
        check(strlen(name) == 255 && strspn(name, "n") == 255, "a long name is cut to 255 bytes");
        if (strlen(name) != 255)
                diag("got %zu bytes", strlen(name));

        check_eq(ioctl(fd, ASHMEM_SET_SIZE, page + 1), 0, "SET_SIZE(page + 1)");
        check_map_errno(mmap(NULL, 3 * page, PROT_READ, MAP_SHARED, fd, 0), EINVAL,
                        "mmap of more than PAGE_ALIGN(size)");
        check_map_errno(mmap(NULL, 0, PROT_READ, MAP_SHARED, fd, 0), EINVAL, "mmap of length 0");
        check_eq(ioctl(fd, ASHMEM_SET_NAME, "still-unmapped"), 0, "refused mmaps do not count as the first mmap");
        p = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        check(p != MAP_FAILED, "mmap of exactly PAGE_ALIGN(size)");

        check_errno(ioctl(fd, ASHMEM_SET_NAME, NULL), EFAULT, "SET_NAME(NULL) after mmap (the copy comes first)");
        check_errno(ioctl(fd, ASHMEM_GET_FILE_ID, NULL), EFAULT, "GET_FILE_ID(NULL)");
        check_errno(ioctl(fd, ASHMEM_PIN, NULL), EFAULT, "PIN(NULL)");
        check_errno(ioctl(fd, ASHMEM_UNPIN, (void *) 8), EFAULT, "UNPIN(bad pointer)");
        check_errno(ioctl(fd, ASHMEM_GET_PIN_STATUS, NULL), EFAULT, "GET_PIN_STATUS(NULL)");
        check_errno(pin_ioctl(fd, ASHMEM_PIN, 1, page), EINVAL, "PIN at an unaligned offset");
        check_errno(pin_ioctl(fd, ASHMEM_UNPIN, 0, 100), EINVAL, "UNPIN of an unaligned length");
        check_errno(pin_ioctl(fd, ASHMEM_PIN, page, 2 * page), EINVAL, "PIN past the end");
        check_errno(pin_ioctl(fd, ASHMEM_GET_PIN_STATUS, 3 * page, 0), EINVAL, "GET_PIN_STATUS from past the end");
        check_errno(pin_ioctl(fd, ASHMEM_PIN, (uint32_t) (0x100000000 - page), 2 * page), EINVAL,
                    "PIN whose end overflows 32 bits");

        check_errno(ioctl(fd, _IO(__ASHMEMIOC, 99)), ENOTTY, "an unknown ASHMEM ioctl");
        check_errno(ioctl(fd, _IOW(__ASHMEMIOC, 1, int), name), ENOTTY, "SET_NAME's number with another size");
        check_errno(ioctl(fd, FIONREAD, &id), ENOTTY, "FIONREAD (answered by the driver, not the VFS)");
        check_errno(ioctl(fd, TCGETS, name), ENOTTY, "TCGETS");
        check_eq(ioctl(fd, FIOCLEX), 0, "FIOCLEX (the VFS answers it for any file)");
        check(has_cloexec(fd), "FIOCLEX set FD_CLOEXEC");
        if (p != MAP_FAILED)
                munmap(p, 2 * page);
        close(fd);
}

static void test_prot(void) {
        char *rw, *r, *x;
        int fd = create_region("prot", page);

        check_eq(ioctl(fd, ASHMEM_GET_PROT_MASK), PROT_RWX, "the mask starts as PROT_READ|PROT_WRITE|PROT_EXEC");
        check_errno(ioctl(fd, ASHMEM_SET_PROT_MASK, PROT_RWX | 0x8), EINVAL, "SET_PROT_MASK with a bit outside RWX");
        check_errno(ioctl(fd, ASHMEM_SET_PROT_MASK, 0x100000000UL | PROT_READ), EINVAL,
                    "SET_PROT_MASK with a high bit set");
        check_eq(ioctl(fd, ASHMEM_SET_PROT_MASK, PROT_READ | PROT_WRITE), 0, "SET_PROT_MASK(READ|WRITE)");
        check_eq(ioctl(fd, ASHMEM_GET_PROT_MASK), PROT_READ | PROT_WRITE, "GET_PROT_MASK after removing exec");
        check_errno(ioctl(fd, ASHMEM_SET_PROT_MASK, PROT_RWX), EINVAL, "SET_PROT_MASK adding exec back");
        check_map_errno(mmap(NULL, page, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0), EPERM,
                        "mmap(PROT_EXEC) outside the mask");
        rw = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        check(rw != MAP_FAILED, "mmap(PROT_READ|PROT_WRITE) inside the mask");

        check_eq(ioctl(fd, ASHMEM_SET_PROT_MASK, PROT_READ), 0, "SET_PROT_MASK(READ) after mmap");
        check_eq(ioctl(fd, ASHMEM_GET_PROT_MASK), PROT_READ, "GET_PROT_MASK after removing write");
        check_errno(ioctl(fd, ASHMEM_SET_PROT_MASK, PROT_READ | PROT_WRITE), EINVAL, "SET_PROT_MASK adding write back");
        check_map_errno(mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), EPERM,
                        "MAP_SHARED mmap(PROT_WRITE) outside the mask");
        check_map_errno(mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0), EPERM,
                        "MAP_PRIVATE mmap(PROT_WRITE) outside the mask");
        r = mmap(NULL, page, PROT_READ, MAP_SHARED, fd, 0);
        check(r != MAP_FAILED, "mmap(PROT_READ) inside the mask");
        check(r != MAP_FAILED && mprotect(r, page, PROT_READ | PROT_WRITE) < 0,
              "mprotect cannot add write to a mapping made after write was removed");
        if (rw != MAP_FAILED) {
                strcpy(rw, "still writable");
                check(r != MAP_FAILED && strcmp(r, "still writable") == 0,
                      "a mapping made before the removal keeps working");
        }
        check_eq(ioctl(fd, ASHMEM_SET_PROT_MASK, 0), 0, "SET_PROT_MASK(0)");
        check_map_errno(mmap(NULL, page, PROT_READ, MAP_SHARED, fd, 0), EPERM, "mmap(PROT_READ) with an empty mask");
        x = mmap(NULL, page, PROT_NONE, MAP_SHARED, fd, 0);
        check(x != MAP_FAILED, "mmap(PROT_NONE) with an empty mask");
        if (x != MAP_FAILED)
                munmap(x, page);
        if (r != MAP_FAILED)
                munmap(r, page);
        if (rw != MAP_FAILED)
                munmap(rw, page);
        close(fd);
}

/* Run the "inherited" mode of this very program on fd, through exec. */
static int exec_inherited(int fd) {
        char arg[16];
        pid_t pid = fork();

        if (pid == 0) {
                snprintf(arg, sizeof(arg), "%d", fd);
                execl("/proc/self/exe", "old-ashmem-program", "inherited", arg, (char *) NULL);
                _exit(127);
        }
        return wait_child(pid);
}

static void test_fork(void) {
        int fd = create_region("forked", page), r;
        pid_t pid;
        char *p;

        pid = fork();
        if (pid == 0)
                _exit(ioctl(fd, ASHMEM_SET_PROT_MASK, PROT_READ | PROT_EXEC) == 0 ? 0 : 1);
        check(wait_child(pid) == 0, "a forked child removes write from the mask");
        check_eq(ioctl(fd, ASHMEM_GET_PROT_MASK), PROT_READ | PROT_EXEC, "the parent sees the child's mask");
        check_map_errno(mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), EPERM,
                        "the parent cannot map for writing");

        check_eq(ioctl(fd, ASHMEM_SET_PROT_MASK, PROT_READ), 0, "the parent removes exec");
        pid = fork();
        if (pid == 0) {
                if (ioctl(fd, ASHMEM_GET_PROT_MASK) != PROT_READ)
                        _exit(1);
                _exit(mmap(NULL, page, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0) == MAP_FAILED && errno == EPERM ? 0 : 2);
        }
        check_eq(wait_child(pid), 0, "a child forked later sees the parent's mask");
        close(fd);

        /* The first mmap by any holder ends SET_NAME and SET_SIZE for all. */
        fd = create_region("first-map", page);
        pid = fork();
        if (pid == 0) {
                if (ioctl(fd, ASHMEM_SET_SIZE, 2 * page) < 0)
                        _exit(1);
                _exit(mmap(NULL, page, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED ? 2 : 0);
        }
        check(wait_child(pid) == 0, "a child resizes and maps the region");
        check_eq(ioctl(fd, ASHMEM_GET_SIZE), 2 * page, "the parent sees the child's SET_SIZE");
        check_errno(ioctl(fd, ASHMEM_SET_SIZE, page), EINVAL, "SET_SIZE after a child's mmap");
        check_errno(ioctl(fd, ASHMEM_SET_NAME, "late"), EINVAL, "SET_NAME after a child's mmap");
        check_eq(pin_ioctl(fd, ASHMEM_GET_PIN_STATUS, 0, 0), ASHMEM_IS_PINNED, "pins work after a child's mmap");
        close(fd);

        /* Through exec: the fd number is all the new program gets. */
        fd = create_region("inherited-region", 12345);
        p = mmap(NULL, 12345, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p != MAP_FAILED)
                strcpy(p, "across exec");
        ioctl(fd, ASHMEM_SET_PROT_MASK, PROT_READ | PROT_WRITE);
        r = exec_inherited(fd);
        check_eq(r, 0, "a program exec'd with the fd sees size, name, mask and contents");
        if (p != MAP_FAILED)
                munmap(p, 12345);
        close(fd);
}

static int run_inherited(int fd) {
        char name[ASHMEM_NAME_LEN] = "";
        char *p;

        if (ioctl(fd, ASHMEM_GET_SIZE) != 12345)
                return 1;
        if (ioctl(fd, ASHMEM_GET_NAME, name) < 0 || strcmp(name, "inherited-region") != 0)
                return 2;
        if (ioctl(fd, ASHMEM_GET_PROT_MASK) != (PROT_READ | PROT_WRITE))
                return 3;
        p = mmap(NULL, 12345, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED || strcmp(p, "across exec") != 0)
                return 4;
        munmap(p, 12345);
        return 0;
}

static void test_pins(void) {
        int fd = create_region("pins", 4 * page), r;
        unsigned char *p;
        pid_t pid;

        p = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        check(p != MAP_FAILED, "mmap a 4-page region");
        if (p == MAP_FAILED) {
                close(fd);
                return;
        }
        memset(p, 0x5a, 4 * page);
        check_eq(pin_ioctl(fd, ASHMEM_GET_PIN_STATUS, 0, 0), ASHMEM_IS_PINNED, "a new region is pinned");
        check_eq(pin_ioctl(fd, ASHMEM_PIN, 0, 0), ASHMEM_NOT_PURGED, "PIN of a pinned region");
        check_eq(pin_ioctl(fd, ASHMEM_UNPIN, page, page), 0, "UNPIN page 1");
        check_eq(pin_ioctl(fd, ASHMEM_GET_PIN_STATUS, page, page), ASHMEM_IS_UNPINNED, "page 1 is unpinned");
        check_eq(pin_ioctl(fd, ASHMEM_GET_PIN_STATUS, 0, page), ASHMEM_IS_PINNED, "page 0 is still pinned");
        check_eq(pin_ioctl(fd, ASHMEM_GET_PIN_STATUS, 2 * page, 0), ASHMEM_IS_PINNED, "pages 2-3 are still pinned");
        check_eq(pin_ioctl(fd, ASHMEM_GET_PIN_STATUS, 0, 0), ASHMEM_IS_UNPINNED,
                 "the whole region is unpinned if any page is");

        pid = fork();
        if (pid == 0) {
                if (pin_ioctl(fd, ASHMEM_GET_PIN_STATUS, page, page) != ASHMEM_IS_UNPINNED)
                        _exit(1);
                _exit(pin_ioctl(fd, ASHMEM_PIN, page, page) >= 0 ? 0 : 2);
        }
        r = wait_child(pid);
        check_eq(r, 0, "a forked child sees the parent's unpin and pins the page");
        check_eq(pin_ioctl(fd, ASHMEM_GET_PIN_STATUS, page, page), ASHMEM_IS_PINNED, "the parent sees the child's pin");

        check_eq(pin_ioctl(fd, ASHMEM_UNPIN, 0, 0), 0, "UNPIN with len 0 (to the end)");
        check_eq(pin_ioctl(fd, ASHMEM_GET_PIN_STATUS, 3 * page, page), ASHMEM_IS_UNPINNED, "the last page is unpinned");
        check_eq(pin_ioctl(fd, ASHMEM_UNPIN, page, page), 0, "UNPIN of an unpinned page");
        r = pin_ioctl(fd, ASHMEM_PIN, 0, 0);
        check(r == ASHMEM_NOT_PURGED || r == ASHMEM_WAS_PURGED, "PIN of the whole region answers NOT_PURGED or WAS_PURGED");
        if (r == ASHMEM_NOT_PURGED)
                check(all_bytes(p, 4 * page, 0x5a), "NOT_PURGED: the contents are intact");
        else
                check(1, "WAS_PURGED: memory pressure purged it # SKIP contents not compared");
        check_eq(pin_ioctl(fd, ASHMEM_GET_PIN_STATUS, 0, 0), ASHMEM_IS_PINNED, "the region is pinned again");
        munmap(p, 4 * page);
        close(fd);
}

static int cap_sys_admin(int keep) {
        struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
        struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];

        if (syscall(SYS_capget, &h, d) < 0)
                return -1;
        if (keep < 0)
                return (d[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective & CAP_TO_MASK(CAP_SYS_ADMIN)) != 0;
        d[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective &= ~CAP_TO_MASK(CAP_SYS_ADMIN);
        return (int) syscall(SYS_capset, &h, d);
}

static void test_purge(void) {
        int fd, r;
        unsigned char *p;

        if (cap_sys_admin(-1) != 1) {
                printf("1..0 # SKIP PURGE_ALL_CACHES needs CAP_SYS_ADMIN\n");
                exit(0);
        }
        fd = create_region("purge", 4 * page);
        p = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        check(p != MAP_FAILED, "mmap a 4-page region");
        if (p == MAP_FAILED)
                return;
        memset(p, 0xab, 4 * page);
        check_eq(pin_ioctl(fd, ASHMEM_UNPIN, page, 2 * page), 0, "UNPIN pages 1-2");
        r = ioctl(fd, ASHMEM_PURGE_ALL_CACHES);
        check(r >= 2, "PURGE_ALL_CACHES counts at least our 2 unpinned pages on the LRU");
        if (r < 2)
                diag("got %d (errno %s)", r, strerrorname_np(errno));
        check_eq(pin_ioctl(fd, ASHMEM_GET_PIN_STATUS, page, 2 * page), ASHMEM_IS_UNPINNED,
                 "purged pages are still unpinned");
        check_eq(pin_ioctl(fd, ASHMEM_PIN, page, 2 * page), ASHMEM_WAS_PURGED, "PIN of the purged pages: WAS_PURGED");
        check(all_bytes(p + page, 2 * page, 0), "the purged pages read back as zeros");
        check(all_bytes(p, page, 0xab) && all_bytes(p + 3 * page, page, 0xab), "the pinned pages are untouched");
        check_eq(pin_ioctl(fd, ASHMEM_PIN, 0, page), ASHMEM_NOT_PURGED, "PIN of a page that stayed pinned: NOT_PURGED");
        check(ioctl(fd, ASHMEM_PURGE_ALL_CACHES) >= 0, "PURGE_ALL_CACHES with nothing of ours unpinned");
        munmap(p, 4 * page);
        close(fd);
}

static void test_purge_noperm(void) {
        int fd = create_region("noperm", page);

        check_eq(cap_sys_admin(0), 0, "drop CAP_SYS_ADMIN from the effective set");
        check_errno(ioctl(fd, ASHMEM_PURGE_ALL_CACHES), EPERM, "PURGE_ALL_CACHES without CAP_SYS_ADMIN");
        close(fd);
}

/* ------------------------------------------------------------------ */

static int send_fd(int sock, int fd) {
        char c = 'F', buf[CMSG_SPACE(sizeof(int))] = { 0 };
        struct iovec iov = { &c, 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = buf, .msg_controllen = sizeof(buf) };
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof(int));
        return sendmsg(sock, &mh, MSG_NOSIGNAL) == 1 ? 0 : -1;
}

static int recv_fd(int sock) {
        char c, buf[CMSG_SPACE(sizeof(int))];
        struct iovec iov = { &c, 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = buf, .msg_controllen = sizeof(buf) };
        struct cmsghdr *cm;
        int fd = -1;

        if (recvmsg(sock, &mh, MSG_CMSG_CLOEXEC) != 1)
                return -1;
        cm = CMSG_FIRSTHDR(&mh);
        if (cm && cm->cmsg_type == SCM_RIGHTS)
                memcpy(&fd, CMSG_DATA(cm), sizeof(int));
        return fd;
}

static void test_send(void) {
        int fd = create_region("sent", 2 * page + 7);
        char reply = 0;
        char *p;

        p = mmap(NULL, 2 * page + 7, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        check(p != MAP_FAILED, "mmap the region to send");
        if (p == MAP_FAILED)
                return;
        strcpy(p, "from the sender");
        check_eq(ioctl(fd, ASHMEM_SET_PROT_MASK, PROT_READ | PROT_WRITE), 0, "remove exec");
        check_eq(pin_ioctl(fd, ASHMEM_UNPIN, page, page), 0, "UNPIN page 1");
        check_eq(send_fd(SOCK, fd), 0, "send the fd over the socket");
        check(read(SOCK, &reply, 1) == 1 && reply == 'D', "the receiver is done");
        check_eq(pin_ioctl(fd, ASHMEM_GET_PIN_STATUS, page, page), ASHMEM_IS_PINNED, "the receiver's PIN shows here");
        check(strcmp(p, "written by the receiver") == 0, "the receiver's write shows here");
        munmap(p, 2 * page + 7);
        close(fd);
}

static void test_recv(void) {
        char name[ASHMEM_NAME_LEN] = "";
        int fd = recv_fd(SOCK);
        char *p;

        check(fd >= 0, "receive an fd over the socket");
        check_eq(ioctl(fd, ASHMEM_GET_SIZE), 2 * page + 7, "GET_SIZE of the received region");
        check(ioctl(fd, ASHMEM_GET_NAME, name) == 0 && strcmp(name, "sent") == 0, "GET_NAME of the received region");
        check_eq(ioctl(fd, ASHMEM_GET_PROT_MASK), PROT_READ | PROT_WRITE, "the sender's mask holds here");
        check_errno(ioctl(fd, ASHMEM_SET_SIZE, page), EINVAL, "SET_SIZE: the sender's mmap counts here");
        check_map_errno(mmap(NULL, page, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0), EPERM, "mmap(PROT_EXEC)");
        p = mmap(NULL, 2 * page + 7, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        check(p != MAP_FAILED && strcmp(p, "from the sender") == 0, "the mapping shows the sender's bytes");
        check_eq(pin_ioctl(fd, ASHMEM_GET_PIN_STATUS, page, page), ASHMEM_IS_UNPINNED, "the sender's UNPIN shows here");
        check_eq(pin_ioctl(fd, ASHMEM_PIN, page, page), ASHMEM_NOT_PURGED, "PIN the page again");
        if (p != MAP_FAILED) {
                strcpy(p, "written by the receiver");
                munmap(p, 2 * page + 7);
        }
        check(write(SOCK, "D", 1) == 1, "tell the sender");
        close(fd);
}

/* ------------------------------------------------------------------ */

/* The interposed ioctl() answers exactly what the kernel answers. */
static void check_same_ioctl(int fd, unsigned long req, const char *what) {
        char a[256] = "", b[256] = "";
        long r1, r2;
        int e1, e2;

        errno = 0;
        r1 = ioctl(fd, req, a);
        e1 = errno;
        errno = 0;
        r2 = syscall(SYS_ioctl, fd, req, b);
        e2 = errno;
        check(r1 == r2 && e1 == e2 && memcmp(a, b, sizeof(a)) == 0, "%s: libc's answer", what);
        if (r1 != r2 || e1 != e2)
                diag("got %ld errno %s, the kernel says %ld errno %s", r1, strerrorname_np(e1), r2, strerrorname_np(e2));
}

static void test_other_fds(void) {
        int pfd[2], fd, pty, dirfd, seals;
        char *p;

        check(pipe(pfd) == 0 && write(pfd[1], "12345", 5) == 5, "a pipe with 5 bytes");
        check_same_ioctl(pfd[0], FIONREAD, "FIONREAD on a pipe");
        check_same_ioctl(pfd[0], ASHMEM_GET_SIZE, "ASHMEM_GET_SIZE on a pipe");
        check_same_ioctl(pfd[0], ASHMEM_SET_NAME, "ASHMEM_SET_NAME on a pipe");
        check_errno(ioctl(pfd[0], ASHMEM_GET_SIZE), ENOTTY, "ASHMEM_GET_SIZE on a pipe");
        close(pfd[0]);
        close(pfd[1]);

        pty = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (pty >= 0) {
                check_same_ioctl(pty, TCGETS, "TCGETS on a pty");
                check_same_ioctl(pty, ASHMEM_GET_SIZE, "ASHMEM_GET_SIZE on a pty");
                close(pty);
        } else {
                check(1, "TCGETS on a pty # SKIP no pty: %s", strerrorname_np(errno));
                check(1, "ASHMEM_GET_SIZE on a pty # SKIP no pty");
        }
        fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        check(fd >= 0, "open(\"/dev/null\") still works");
        check_same_ioctl(fd, ASHMEM_GET_PROT_MASK, "ASHMEM_GET_PROT_MASK on /dev/null");
        close(fd);
        check_errno(open("/dev/ashmem2", O_RDWR), ENOENT, "open(\"/dev/ashmem2\")");
        dirfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        check_errno(openat(dirfd, "dev/ashmem", O_RDWR), ENOENT, "openat(\"/\", \"dev/ashmem\") is not the device");
        close(dirfd);

        /* A Wayland-style shm pool: a plain memfd that is mapped beyond its
         * size, executable, and grown with ftruncate. */
        fd = (int) syscall(SYS_memfd_create, "wl_shm", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        check(fd >= 0 && ftruncate(fd, page) == 0, "a plain memfd of one page");
        p = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        check(p != MAP_FAILED, "mmap of a plain memfd beyond its size");
        check(ftruncate(fd, 3 * page) == 0, "the plain memfd grows after mmap");
        seals = fcntl(fd, F_GET_SEALS);
        check_eq(seals, 0, "the plain memfd has no seals");
        if (p != MAP_FAILED) {
                strcpy(p + page, "grown");
                munmap(p, 2 * page);
        }
        p = mmap(NULL, page, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
        check(p != MAP_FAILED, "mmap(PROT_EXEC) of a plain memfd");
        if (p != MAP_FAILED)
                munmap(p, page);
        check_same_ioctl(fd, FIONREAD, "FIONREAD on a plain memfd");
        check_same_ioctl(fd, ASHMEM_GET_SIZE, "ASHMEM_GET_SIZE on a plain memfd");
        close(fd);
        fd = (int) syscall(SYS_memfd_create, "dev/ashmemx", MFD_CLOEXEC);
        check_same_ioctl(fd, ASHMEM_GET_SIZE, "ASHMEM_GET_SIZE on a memfd named dev/ashmemx");
        close(fd);

        fd = create_region("errno", page);
        errno = 4242;
        check(ioctl(fd, ASHMEM_GET_SIZE) == page && errno == 4242, "a successful ashmem ioctl leaves errno alone");
        close(fd);
}

/* ------------------------------------------------------------------ */

/* A mapped region of pages pages through /dev/ashmem, pinned once through
 * its fd number (so that the shim remembers it). */
static int mapped_region(int pages, void **ret_map) {
        int fd = open("/dev/ashmem", O_RDWR | O_CLOEXEC);

        *ret_map = MAP_FAILED;
        if (fd < 0 || ioctl(fd, ASHMEM_SET_SIZE, (size_t) pages * page) < 0)
                return -1;
        *ret_map = mmap(NULL, (size_t) pages * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (*ret_map == MAP_FAILED || pin_ioctl(fd, ASHMEM_PIN, 0, 0) != ASHMEM_NOT_PURGED)
                return -1;
        return fd;
}

/* Pins without a system call rest on the shim knowing which region each
 * fd number is: a number closed and reused, or dup2()ed over, answers for
 * its new file. Region a has 4 pages, b 1: pinning page 3 through b's
 * number must fail. */
static void test_reuse(void) {
        void *ma, *mb, *mc;
        int a = mapped_region(4, &ma), b, c, p[2];

        check(a >= 0, "a mapped 4-page region, pinned");
        check_eq(pin_ioctl(a, ASHMEM_PIN, 3 * page, page), ASHMEM_NOT_PURGED, "PIN of its page 3");
        close(a);
        b = mapped_region(1, &mb);
        check_eq(b, a, "a 1-page region gets the closed fd number");
        check_errno(pin_ioctl(b, ASHMEM_PIN, 3 * page, page), EINVAL, "PIN of page 3 through the reused number");
        check_eq(pin_ioctl(b, ASHMEM_UNPIN, 0, page), 0, "UNPIN of its own page");
        check_eq(pin_ioctl(b, ASHMEM_GET_PIN_STATUS, 0, 0), ASHMEM_IS_UNPINNED, "... seen as unpinned");

        c = mapped_region(4, &mc);
        check(c >= 0, "another 4-page region");
        check_eq(dup2(c, b), b, "dup2() it over the 1-page region's number");
        check_eq(pin_ioctl(b, ASHMEM_PIN, 3 * page, page), ASHMEM_NOT_PURGED, "PIN of page 3 through the dup2()ed number");
        check_eq(pin_ioctl(b, ASHMEM_GET_PIN_STATUS, 0, 0), ASHMEM_IS_PINNED, "... the 4-page region is all pinned");
        check(pipe(p) == 0 && dup2(p[0], b) == b, "dup2() a pipe over it");
        check_errno(pin_ioctl(b, ASHMEM_PIN, 0, page), ENOTTY, "PIN through the number now a pipe");
        check_eq(syscall(SYS_close_range, (unsigned) b, (unsigned) b, 0), 0, "close_range() of the number");
        check_errno(pin_ioctl(b, ASHMEM_PIN, 0, page), EBADF, "PIN through the closed number");
        check_eq(close_range((unsigned) c, (unsigned) c, 0), 0, "close_range() through libc");
        check_errno(pin_ioctl(c, ASHMEM_PIN, 0, page), EBADF, "PIN through that closed number");
        close(p[0]);
        close(p[1]);
        munmap(ma, 4 * page);
        munmap(mb, page);
        munmap(mc, 4 * page);
}

/* After its first mmap nobody can resize a region, in any process: a peer
 * truncating a shared region can no longer make its users fault. */
static void test_resize(void) {
        void *m;
        int fd = mapped_region(2, &m), status = -1;
        pid_t pid;

        check(fd >= 0, "a mapped 2-page region");
        pid = fork();
        if (pid == 0)
                _exit(ftruncate(fd, 0) == -1 && errno == EPERM && ftruncate(fd, 8 * page) == -1 && errno == EPERM ? 0
                                                                                                          : 1);
        check(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "a forked peer can neither shrink nor grow it");
        if (m != MAP_FAILED) {
                ((volatile char *) m)[page] = 'x';
                check(((volatile char *) m)[page] == 'x', "its mapping still works (no SIGBUS)");
                munmap(m, 2 * page);
        }
        check_eq(ioctl(fd, ASHMEM_GET_SIZE), 2 * page, "GET_SIZE is unchanged");
        close(fd);
}

int main(int argc, char **argv) {
        const char *mode = argc > 1 ? argv[1] : "all";
        int all = strcmp(mode, "all") == 0;

        page = sysconf(_SC_PAGESIZE);
        if (strcmp(mode, "inherited") == 0)
                return argc > 2 ? run_inherited(atoi(argv[2])) : 127;
        if (all || strcmp(mode, "basic") == 0)
                test_basic();
        if (all || strcmp(mode, "errors") == 0)
                test_errors();
        if (all || strcmp(mode, "prot") == 0)
                test_prot();
        if (all || strcmp(mode, "fork") == 0)
                test_fork();
        if (all || strcmp(mode, "pins") == 0)
                test_pins();
        if (all || strcmp(mode, "other-fds") == 0)
                test_other_fds();
        if (all || strcmp(mode, "reuse") == 0)
                test_reuse();
        if (all || strcmp(mode, "resize") == 0)
                test_resize();
        if (strcmp(mode, "purge") == 0)
                test_purge();
        if (strcmp(mode, "purge-noperm") == 0)
                test_purge_noperm();
        if (strcmp(mode, "send") == 0)
                test_send();
        if (strcmp(mode, "recv") == 0)
                test_recv();
        if (n_tests == 0) {
                fprintf(stderr, "old-ashmem-program: unknown mode %s\n", mode);
                return 2;
        }
        printf("1..%d\n", n_tests);
        return n_failed ? 1 : 0;
}
