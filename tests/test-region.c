/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ashm.h"
#include "memfd-util.h"
#include "tests.h"

ASHM_SUITE(region);

#define MiB (1024 * 1024)

static ashm_region *new_region(const char *name, uint64_t size, unsigned flags) {
        ashm_region *r = NULL;

        assert_ok(ashm_region_create(name, size, flags, &r));
        cr_assert_not_null(r);
        return r;
}

/* Does /proc/self/maps show a mapping of "/memfd:NAME"? */
static bool maps_show(const char *name) {
        char line[512], want[300];
        bool found = false;
        FILE *f = fopen("/proc/self/maps", "re");

        cr_assert_not_null(f);
        snprintf(want, sizeof(want), "/memfd:%s ", name);
        while (fgets(line, sizeof(line), f))
                if (strstr(line, want))
                        found = true;
        fclose(f);
        return found;
}

ASHM_TEST(region, create_basic) {
        ashm_region *r = new_region("test-create", MiB, 0);
        uint64_t size = 0;
        int fd = ashm_region_fd(r);
        struct stat st;

        cr_assert(fd >= 0);
        cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC, "region fds must be close-on-exec");
        assert_ok(ashm_region_get_size(r, &size));
        cr_assert_eq(size, MiB);
        cr_assert_str_eq(ashm_region_name(r), "test-create");
        cr_assert(fstat(fd, &st) == 0 && memfd_stat_is_memfd(&st));
        cr_assert_eq(st.st_size, MiB);
        /* Sealing must be possible (MFD_ALLOW_SEALING): freeze works. */
        cr_assert_eq(fcntl(fd, F_GET_SEALS) & F_SEAL_SEAL, 0);
        ashm_region_close(r);
}

ASHM_TEST(region, create_exact_odd_size) {
        ashm_region *r = new_region("odd", 4097, 0);
        uint64_t size;

        assert_ok(ashm_region_get_size(r, &size));
        cr_assert_eq(size, 4097, "the size is exact, not rounded to pages");
        cr_assert_eq(lseek(ashm_region_fd(r), 0, SEEK_END), 4097);
        ashm_region_close(r);
}

ASHM_TEST(region, create_null_name_and_zero_size) {
        ashm_region *r = new_region(NULL, 0, 0);
        uint64_t size = 1;

        cr_assert_str_eq(ashm_region_name(r), "ashm");
        assert_ok(ashm_region_get_size(r, &size));
        cr_assert_eq(size, 0);
        ashm_region_close(r);
}

ASHM_TEST(region, create_errors) {
        ashm_region *r = (ashm_region *) 0x1;
        char name[ASHM_NAME_MAX + 2];

        assert_fail(ashm_region_create("x", 1, 1u << 7, &r), EINVAL);
        assert_fail(ashm_region_create("x", 1, 0, NULL), EINVAL);
        memset(name, 'n', sizeof(name) - 1);
        name[sizeof(name) - 1] = '\0';
        assert_fail(ashm_region_create(name, 1, 0, &r), ENAMETOOLONG);
        assert_fail(ashm_region_create("x", (uint64_t) INT64_MAX + 1, 0, &r), EFBIG);
        cr_assert_eq(r, (ashm_region *) 0x1, "ret_region untouched on failure");

        /* The longest name memfd accepts works. */
        name[ASHM_NAME_MAX] = '\0';
        assert_ok(ashm_region_create(name, 1, 0, &r));
        cr_assert_str_eq(ashm_region_name(r), name);
        ashm_region_close(r);
}

ASHM_TEST(region, name_in_proc_maps) {
        ashm_region *r = new_region("shown-in-maps", 8192, 0);
        void *p;

        assert_ok(ashm_region_map(r, 0, 0, PROT_READ, &p));
        cr_assert(maps_show("shown-in-maps"));
        assert_ok(ashm_region_unmap(r, p, 0));
        cr_assert(!maps_show("shown-in-maps"));
        ashm_region_close(r);
}

ASHM_TEST(region, prot_default_and_exec_flag) {
        ashm_region *plain = new_region("plain", 4096, 0);
        ashm_region *exec = new_region("exec", 4096, ASHM_REGION_EXEC);
        void *p;

        cr_assert_eq(ashm_region_get_prot(plain), PROT_READ | PROT_WRITE);
        cr_assert_eq(ashm_region_get_prot(exec), PROT_READ | PROT_WRITE | PROT_EXEC);
        assert_fail(ashm_region_map(plain, 0, 0, PROT_READ | PROT_EXEC, &p), EPERM);
        assert_ok(ashm_region_map(exec, 0, 0, PROT_READ | PROT_EXEC, &p));
        assert_ok(ashm_region_unmap(exec, p, 0));
        ashm_region_close(plain);
        ashm_region_close(exec);
}

ASHM_TEST(region, adopt_raw_memfd) {
        int fd = memfd_create("adopted-raw", MFD_CLOEXEC);
        ashm_region *r;

        cr_assert(fd >= 0);
        cr_assert(ftruncate(fd, 12345) == 0);
        assert_ok(ashm_region_adopt(fd, 0, &r));
        cr_assert_eq(ashm_region_fd(r), fd, "adopt takes the fd itself");
        cr_assert_str_eq(ashm_region_name(r), "adopted-raw");
        ashm_region_close(r);
        cr_assert(fcntl(fd, F_GETFD) < 0 && errno == EBADF, "close closes the adopted fd");
}

ASHM_TEST(region, adopt_rejects_non_memfd_and_consumes) {
        ashm_region *r = (ashm_region *) 0x1;
        const char *paths[] = { "/dev/null", "/proc/self/status", "/" };
        int p[2];

        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                int fd = open(paths[i], O_RDONLY | O_CLOEXEC);

                cr_assert(fd >= 0);
                assert_fail(ashm_region_adopt(fd, 0, &r), EMEDIUMTYPE);
                cr_assert(fcntl(fd, F_GETFD) < 0, "%s: adopt consumes the fd on failure", paths[i]);
        }
        cr_assert(pipe2(p, O_CLOEXEC) == 0);
        assert_fail(ashm_region_adopt(p[0], 0, &r), EMEDIUMTYPE);
        assert_fail(ashm_region_adopt(p[1], 0, &r), EMEDIUMTYPE);
        assert_fail(ashm_region_adopt(-1, 0, &r), EBADF);
        assert_fail(ashm_region_adopt(INT_MAX, 0, &r), EBADF);
        cr_assert_eq(r, (ashm_region *) 0x1);
}

ASHM_TEST(region, adopt_rejects_shm_open_file) {
        char name[64];
        ashm_region *r;
        int fd;

        snprintf(name, sizeof(name), "/ashm-test-%d", getpid());
        fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        cr_assert(fd >= 0);
        shm_unlink(name);
        assert_fail(ashm_region_adopt(fd, 0, &r), EMEDIUMTYPE);
}

ASHM_TEST(region, adopt_unknown_flags_consumes) {
        int fd = memfd_create("flags", MFD_CLOEXEC);
        ashm_region *r;

        assert_fail(ashm_region_adopt(fd, 4, &r), EINVAL);
        cr_assert(fcntl(fd, F_GETFD) < 0);
}

ASHM_TEST(region, dup_shares_contents) {
        ashm_region *a = new_region("dup", 4096, 0), *b;
        char buf[6] = "";

        assert_ok(ashm_region_dup(a, &b));
        cr_assert_neq(ashm_region_fd(a), ashm_region_fd(b));
        cr_assert(fcntl(ashm_region_fd(b), F_GETFD) & FD_CLOEXEC);
        cr_assert_str_eq(ashm_region_name(b), "dup");
        assert_ok(ashm_region_write(a, 100, "hello", 5));
        ashm_region_close(a);
        assert_ok(ashm_region_read(b, 100, buf, 5));
        cr_assert_str_eq(buf, "hello");
        ashm_region_close(b);
}

ASHM_TEST(region, map_ranges) {
        long page = sysconf(_SC_PAGESIZE);
        ashm_region *r = new_region("ranges", 3 * (uint64_t) page + 10, 0);
        char *whole, *tail;

        assert_ok(ashm_region_map(r, 0, 0, PROT_READ | PROT_WRITE, (void **) &whole));
        strcpy(whole + 2 * page, "third page");
        /* The last partial page may be mapped whole, as with the driver. */
        assert_ok(ashm_region_map(r, 2 * (uint64_t) page, 2 * (size_t) page, PROT_READ, (void **) &tail));
        cr_assert_str_eq(tail, "third page");
        assert_ok(ashm_region_unmap(r, tail, 2 * (size_t) page));
        assert_ok(ashm_region_unmap(r, whole, 4 * (size_t) page));
        ashm_region_close(r);
}

ASHM_TEST(region, map_errors) {
        long page = sysconf(_SC_PAGESIZE);
        ashm_region *r = new_region("map-errors", 2 * (uint64_t) page, 0);
        ashm_region *empty = new_region("empty", 0, 0);
        void *p = (void *) 0x1;

        assert_fail(ashm_region_map(r, 1, 0, PROT_READ, &p), EINVAL);
        assert_fail(ashm_region_map(r, 0, 3 * (size_t) page, PROT_READ, &p), EINVAL);
        assert_fail(ashm_region_map(r, 2 * (uint64_t) page, 0, PROT_READ, &p), EINVAL);
        assert_fail(ashm_region_map(r, (uint64_t) page, 2 * (size_t) page, PROT_READ, &p), EINVAL);
        assert_fail(ashm_region_map(r, UINT64_MAX - (uint64_t) page + 1, (size_t) page, PROT_READ, &p), EINVAL);
        assert_fail(ashm_region_map(r, 0, 0, 0x40, &p), EINVAL);
        assert_fail(ashm_region_map(r, 0, 0, PROT_READ, NULL), EINVAL);
        assert_fail(ashm_region_map(empty, 0, 0, PROT_READ, &p), EINVAL);
        cr_assert_eq(p, (void *) 0x1, "ret_addr untouched on failure");
        assert_fail(ashm_region_unmap(r, &page, 0), EINVAL);
        assert_fail(ashm_region_unmap(r, NULL, 0), EINVAL);
        ashm_region_close(r);
        ashm_region_close(empty);
}

ASHM_TEST(region, unmap_needs_matching_len) {
        ashm_region *r = new_region("unmap-len", 8192, 0);
        void *p;

        assert_ok(ashm_region_map(r, 0, 0, PROT_READ, &p));
        assert_fail(ashm_region_unmap(r, p, 4096), EINVAL);
        assert_ok(ashm_region_unmap(r, p, 8192));
        assert_fail(ashm_region_unmap(r, p, 8192), EINVAL);
        ashm_region_close(r);
}

ASHM_TEST(region, many_mappings) {
        ashm_region *r = new_region("many-maps", 4096, 0);
        void *p[9];

        for (size_t i = 0; i < ELEMENTSOF(p); i++)
                assert_ok(ashm_region_map(r, 0, 0, PROT_READ, &p[i]));
        for (size_t i = 0; i < ELEMENTSOF(p); i += 2)
                assert_ok(ashm_region_unmap(r, p[i], 4096));
        for (size_t i = 1; i < ELEMENTSOF(p); i += 2)
                assert_ok(ashm_region_unmap(r, p[i], 0));
        assert_fail(ashm_region_unmap(r, p[0], 0), EINVAL);
        ashm_region_close(r);
}

ASHM_TEST(region, mapping_outlives_close) {
        ashm_region *r = new_region("outlive", 4096, 0);
        char *p;

        assert_ok(ashm_region_map(r, 0, 0, PROT_READ | PROT_WRITE, (void **) &p));
        ashm_region_close(r);
        strcpy(p, "still here");
        cr_assert_str_eq(p, "still here");
        munmap(p, 4096);
}

ASHM_TEST(region, read_write_bounds) {
        ashm_region *r = new_region("rw", 100, 0);
        char buf[16] = "";

        assert_ok(ashm_region_write(r, 90, "0123456789", 10));
        assert_ok(ashm_region_read(r, 90, buf, 10));
        cr_assert_str_eq(buf, "0123456789");
        assert_ok(ashm_region_read(r, 100, buf, 0));
        assert_fail(ashm_region_write(r, 91, "0123456789", 10), EINVAL);
        assert_fail(ashm_region_read(r, 91, buf, 10), EINVAL);
        assert_fail(ashm_region_read(r, 101, buf, 0), EINVAL);
        assert_fail(ashm_region_read(r, UINT64_MAX, buf, 2), EINVAL);
        assert_fail(ashm_region_write(r, 0, NULL, 1), EINVAL);
        cr_assert_eq(lseek(ashm_region_fd(r), 0, SEEK_END), 100, "a refused write does not grow the region");
        ashm_region_close(r);
}

ASHM_TEST(region, set_prot_remove_write) {
        ashm_region *r = new_region("no-write", 4096, 0);
        char *old, *ro;
        void *p;

        assert_ok(ashm_region_map(r, 0, 0, PROT_READ | PROT_WRITE, (void **) &old));
        assert_ok(ashm_region_set_prot(r, PROT_READ));
        cr_assert_eq(ashm_region_get_prot(r), PROT_READ);
        assert_fail(ashm_region_map(r, 0, 0, PROT_READ | PROT_WRITE, &p), EPERM);
        assert_fail(ashm_region_write(r, 0, "x", 1), EPERM);
        cr_assert(write(ashm_region_fd(r), "x", 1) < 0 && errno == EPERM);
        /* The kernel itself refuses: a raw mmap and a later mprotect. */
        cr_assert(mmap(NULL, 4096, PROT_WRITE, MAP_SHARED, ashm_region_fd(r), 0) == MAP_FAILED);
        assert_ok(ashm_region_map(r, 0, 0, PROT_READ, (void **) &ro));
        cr_assert(mprotect(ro, 4096, PROT_READ | PROT_WRITE) < 0);
        /* An existing mapping keeps its protection. */
        strcpy(old, "old mapping");
        cr_assert_str_eq(ro, "old mapping");
        /* Bits never come back. */
        assert_fail(ashm_region_set_prot(r, PROT_READ | PROT_WRITE), EINVAL);
        assert_ok(ashm_region_set_prot(r, PROT_READ));
        assert_ok(ashm_region_unmap(r, ro, 0));
        assert_ok(ashm_region_unmap(r, old, 0));
        ashm_region_close(r);
}

ASHM_TEST(region, set_prot_remove_read_and_exec) {
        ashm_region *r = new_region("no-read", 4096, ASHM_REGION_EXEC);
        void *p;

        assert_ok(ashm_region_set_prot(r, PROT_READ | PROT_WRITE));
        cr_assert_eq(ashm_region_get_prot(r), PROT_READ | PROT_WRITE);
        assert_fail(ashm_region_map(r, 0, 0, PROT_READ | PROT_EXEC, &p), EPERM);
        assert_ok(ashm_region_set_prot(r, PROT_WRITE));
        assert_fail(ashm_region_map(r, 0, 0, PROT_READ, &p), EPERM);
        assert_ok(ashm_region_set_prot(r, 0));
        cr_assert_eq(ashm_region_get_prot(r), 0);
        assert_ok(ashm_region_map(r, 0, 0, PROT_NONE, &p));
        assert_ok(ashm_region_unmap(r, p, 0));
        ashm_region_close(r);
}

ASHM_TEST(region, set_prot_errors) {
        ashm_region *r = new_region("prot-errors", 4096, 0);

        assert_fail(ashm_region_set_prot(r, PROT_READ | PROT_WRITE | PROT_EXEC), EINVAL);
        assert_fail(ashm_region_set_prot(r, 0x8), EINVAL);
        assert_fail(ashm_region_set_prot(NULL, 0), EINVAL);
        assert_ok(ashm_region_set_prot(r, PROT_READ | PROT_WRITE));
        cr_assert_eq(ashm_region_get_prot(r), PROT_READ | PROT_WRITE, "failed calls change nothing");
        ashm_region_close(r);
}

/* The mask belongs to the region: a change made through one process's
 * fd is seen through every other's. */
ASHM_TEST(region, set_prot_seen_by_other_process) {
        ashm_region *r = new_region("prot-shared", 4096, ASHM_REGION_EXEC);
        pid_t pid = fork();

        cr_assert(pid >= 0);
        if (pid == 0)
                _exit(ashm_region_set_prot(r, PROT_READ) == 0 ? 0 : 1);
        cr_assert(waitpid(pid, NULL, 0) == pid);
        cr_assert_eq(ashm_region_get_prot(r), PROT_READ);
        ashm_region_close(r);
}

/* Only the owner may remove read (it lives in the mode bits); anyone
 * holding a writable fd may remove write or exec (seals). */
ASHM_TEST(region, set_prot_non_owner) {
        ashm_region *r = new_region("prot-owner", 4096, ASHM_REGION_EXEC);
        pid_t pid;
        int status;

        cr_assert(fchmod(ashm_region_fd(r), 0777) == 0);
        pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
                if (setgid(65534) < 0 || setuid(65534) < 0)
                        _exit(10);
                if (ashm_region_set_prot(r, PROT_WRITE | PROT_EXEC) != -EPERM)
                        _exit(11);
                if (ashm_region_get_prot(r) != (PROT_READ | PROT_WRITE | PROT_EXEC))
                        _exit(12);
                if (ashm_region_set_prot(r, PROT_READ | PROT_WRITE) != 0)
                        _exit(13);
                if (ashm_region_map(r, 0, 0, PROT_READ | PROT_EXEC, &(void *) { NULL }) != -EPERM)
                        _exit(14);
                _exit(ashm_region_set_prot(r, PROT_READ) == 0 ? 0 : 15);
        }
        cr_assert(waitpid(pid, &status, 0) == pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed at step %d", WEXITSTATUS(status));
        cr_assert_eq(ashm_region_get_prot(r), PROT_READ);
        ashm_region_close(r);
}

ASHM_TEST(region, freeze) {
        ashm_region *r = new_region("frozen", 4096, 0);
        void *p;

        cr_assert_eq(ashm_region_is_frozen(r), 0);
        assert_ok(ashm_region_write(r, 0, "config", 7));
        assert_ok(ashm_region_freeze(r));
        cr_assert_eq(ashm_region_is_frozen(r), 1);
        assert_ok(ashm_region_freeze(r));
        assert_fail(ashm_region_write(r, 0, "x", 1), EPERM);
        assert_fail(ashm_region_map(r, 0, 0, PROT_READ | PROT_WRITE, &p), EPERM);
        cr_assert(ftruncate(ashm_region_fd(r), 8192) < 0 && errno == EPERM);
        cr_assert(ftruncate(ashm_region_fd(r), 0) < 0 && errno == EPERM);
        cr_assert(fcntl(ashm_region_fd(r), F_ADD_SEALS, F_SEAL_EXEC) < 0, "no seal may be added or removed");
        cr_assert_eq(ashm_region_get_prot(r) & PROT_WRITE, 0);
        assert_ok(ashm_region_map(r, 0, 0, PROT_READ, &p));
        cr_assert_str_eq(p, "config");
        assert_ok(ashm_region_unmap(r, p, 0));
        ashm_region_close(r);
}

ASHM_TEST(region, freeze_busy_with_writable_mapping) {
        ashm_region *r = new_region("busy", 4096, 0);
        void *p;

        assert_ok(ashm_region_map(r, 0, 0, PROT_READ | PROT_WRITE, &p));
        assert_fail(ashm_region_freeze(r), EBUSY);
        cr_assert_eq(ashm_region_is_frozen(r), 0, "a failed freeze seals nothing");
        assert_ok(ashm_region_unmap(r, p, 0));
        assert_ok(ashm_region_freeze(r));
        ashm_region_close(r);
}

ASHM_TEST(region, freeze_refused_without_sealing) {
        int fd = memfd_create("no-sealing", MFD_CLOEXEC);
        ashm_region *r;

        assert_ok(ashm_region_adopt(fd, 0, &r));
        assert_fail(ashm_region_freeze(r), EPERM);
        cr_assert_eq(ashm_region_is_frozen(r), 0);
        ashm_region_close(r);
}

/* A receiver must be able to tell "frozen" from "only FUTURE_WRITE":
 * the latter still lets existing writable mappings change the bytes. */
ASHM_TEST(region, future_write_is_not_frozen) {
        ashm_region *r = new_region("fw", 4096, 0);

        assert_ok(ashm_region_set_prot(r, PROT_READ));
        cr_assert_eq(ashm_region_is_frozen(r), 0);
        ashm_region_close(r);
}

static char *write_temp_file(const char *contents, size_t len) {
        char *path = strdup("/tmp/ashm-test-XXXXXX");
        int fd = mkstemp(path);

        cr_assert(fd >= 0);
        cr_assert(write(fd, contents, len) == (ssize_t) len);
        close(fd);
        return path;
}

ASHM_TEST(region, create_from_file) {
        static const char conf[] = "[server]\nport = 8080\n";
        char *path = write_temp_file(conf, sizeof(conf) - 1);
        ashm_region *r;
        char buf[64] = "";
        uint64_t size;

        assert_ok(ashm_region_create_from_file(path, NULL, 0, &r));
        cr_assert_str_eq(ashm_region_name(r), strrchr(path, '/') + 1);
        cr_assert_eq(ashm_region_is_frozen(r), 1);
        assert_ok(ashm_region_get_size(r, &size));
        cr_assert_eq(size, sizeof(conf) - 1);
        /* read() on the fd starts at the beginning. */
        cr_assert_eq(read(ashm_region_fd(r), buf, sizeof(buf)), (ssize_t) sizeof(conf) - 1);
        cr_assert_str_eq(buf, conf);
        ashm_region_close(r);

        assert_ok(ashm_region_create_from_file(path, "my-config", 0, &r));
        cr_assert_str_eq(ashm_region_name(r), "my-config");
        ashm_region_close(r);
        unlink(path);
        free(path);
}

ASHM_TEST(region, create_from_proc_file) {
        ashm_region *r;
        uint64_t size = 0;

        /* Reports st_size 0 but has contents: copied to its end. */
        assert_ok(ashm_region_create_from_file("/proc/self/status", NULL, 0, &r));
        assert_ok(ashm_region_get_size(r, &size));
        cr_assert_gt(size, 0);
        ashm_region_close(r);
}

ASHM_TEST(region, create_from_file_errors) {
        ashm_region *r = (ashm_region *) 0x1;

        assert_fail(ashm_region_create_from_file("/nonexistent/file", NULL, 0, &r), ENOENT);
        assert_fail(ashm_region_create_from_file("/tmp", NULL, 0, &r), EINVAL);
        assert_fail(ashm_region_create_from_file("/dev/null", NULL, 0, &r), EINVAL);
        {
                char fifo[64] = "/tmp/ashm-test-fifo-XXXXXX";

                cr_assert(mkdtemp(fifo) != NULL);
                strcat(fifo, "/f");
                cr_assert(mkfifo(fifo, 0600) == 0);
                assert_fail(ashm_region_create_from_file(fifo, NULL, 0, &r), EINVAL); /* and does not hang */
                unlink(fifo);
                *strrchr(fifo, '/') = '\0';
                rmdir(fifo);
        }
        assert_fail(ashm_region_create_from_file("/etc/hostname", NULL, 0x80, &r), EINVAL);
        assert_fail(ashm_region_create_from_file(NULL, NULL, 0, &r), EINVAL);
        cr_assert_eq(r, (ashm_region *) 0x1);
}

ASHM_TEST(region, pin_unpin_arguments) {
        long page = sysconf(_SC_PAGESIZE);
        ashm_region *r = new_region("pins", 2 * (uint64_t) page + 1, 0);

        cr_assert_eq(assert_ok(ashm_region_unpin(r, 0, 0)), 0);
        cr_assert_eq(assert_ok(ashm_region_pin(r, 0, 0)), ASHM_NOT_PURGED);
        cr_assert_eq(assert_ok(ashm_region_pin(r, 2 * (uint64_t) page, (uint64_t) page)), ASHM_NOT_PURGED);
        assert_ok(ashm_region_pin(r, 3 * (uint64_t) page, 0)); /* empty range at the end */
        assert_fail(ashm_region_pin(r, 1, 0), EINVAL);
        assert_fail(ashm_region_pin(r, 0, 100), EINVAL);
        assert_fail(ashm_region_pin(r, 0, 4 * (uint64_t) page), EINVAL);
        assert_fail(ashm_region_unpin(r, 4 * (uint64_t) page, 0), EINVAL);
        assert_fail(ashm_region_unpin(r, (uint64_t) page, UINT64_MAX - (uint64_t) page + 1), EINVAL);
        assert_fail(ashm_region_pin(NULL, 0, 0), EINVAL);
        ashm_region_close(r);
}

ASHM_TEST(region, null_handles) {
        uint64_t size;
        char c;

        ashm_region_close(NULL);
        assert_fail(ashm_region_fd(NULL), EBADF);
        assert_fail(ashm_region_get_size(NULL, &size), EINVAL);
        assert_fail(ashm_region_get_prot(NULL), EINVAL);
        assert_fail(ashm_region_read(NULL, 0, &c, 1), EINVAL);
        assert_fail(ashm_region_write(NULL, 0, &c, 1), EINVAL);
        assert_fail(ashm_region_freeze(NULL), EINVAL);
        assert_fail(ashm_region_is_frozen(NULL), EINVAL);
        cr_assert_str_eq(ashm_region_name(NULL), "");
}

ASHM_TEST(region, version) {
        cr_assert_str_eq(ashm_version(), ASHM_VERSION_STRING);
}
