/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd-util.h"
#include "memfd-util.h"
#include "size-util.h"
#include "tests.h"

ASHM_SUITE(basic);

ASHM_TEST(basic, safe_close_keeps_errno) {
        int fd = memfd_create("close", MFD_CLOEXEC);

        errno = EDOM;
        cr_assert_eq(safe_close(fd), -1);
        cr_assert_eq(errno, EDOM);
        cr_assert_eq(safe_close(-1), -1);
        cr_assert(fcntl(fd, F_GETFD) < 0);
}

ASHM_TEST(basic, full_io_round_trip) {
        _cleanup_close_ int fd = memfd_create("io", MFD_CLOEXEC);
        char buf[8] = "";

        assert_ok(pwrite_full(fd, "abcdefg", 7, 1));
        assert_ok(pread_full(fd, buf, 7, 1));
        cr_assert_str_eq(buf, "abcdefg");
        assert_fail(pread_full(fd, buf, 7, 4), EIO); /* ends early */
        assert_fail(pread_full(-1, buf, 1, 0), EBADF);
        assert_ok(write_full(fd, "x", 1));
}

ASHM_TEST(basic, memfd_new_flags) {
        _cleanup_close_ int plain = memfd_new("plain", false);
        _cleanup_close_ int exec = memfd_new("exec", true);
        struct stat a, b;

        cr_assert(plain >= 0 && exec >= 0);
        cr_assert(fcntl(plain, F_GETFD) & FD_CLOEXEC);
        cr_assert(fstat(plain, &a) == 0 && fstat(exec, &b) == 0);
        cr_assert_eq(a.st_mode & 0111, 0, "noexec memfd has no x bits");
        cr_assert_eq(b.st_mode & 0111, 0111);
        cr_assert(memfd_stat_is_memfd(&a) && memfd_stat_is_memfd(&b));
        cr_assert_eq(fcntl(plain, F_GET_SEALS) & F_SEAL_SEAL, 0, "sealing allowed");
}

ASHM_TEST(basic, memfd_name) {
        _cleanup_close_ int fd = memfd_new("a name with spaces", false);
        _cleanup_close_ int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        char buf[MEMFD_NAME_MAX + 1];

        assert_ok(memfd_get_name(fd, buf, sizeof(buf)));
        cr_assert_str_eq(buf, "a name with spaces");
        assert_fail(memfd_get_name(fd, buf, 4), ENAMETOOLONG);
        assert_fail(memfd_get_name(null, buf, sizeof(buf)), EMEDIUMTYPE);
        assert_fail(memfd_get_name(-1, buf, sizeof(buf)), ENOENT);
}

ASHM_TEST(basic, memfd_new_bad_name) {
        char name[MEMFD_NAME_MAX + 2];

        memset(name, 'x', sizeof(name) - 1);
        name[sizeof(name) - 1] = '\0';
        assert_fail(memfd_new(name, false), EINVAL);
}

ASHM_TEST(basic, fd_count_sees_new_fds) {
        int before = fd_count(), fd = memfd_create("count", MFD_CLOEXEC);

        cr_assert_eq(fd_count(), before + 1);
        close(fd);
        cr_assert_eq(fd_count(), before);
        cr_assert_eq(page_size(), (size_t) sysconf(_SC_PAGESIZE));
}

/* One parser for the tool and the daemon: K to P, fractions with a unit. */
ASHM_TEST(basic, size_parse_and_format) {
        static const struct {
                const char *in;
                uint64_t want;
        } good[] = {
                { "0", 0 },           { "4096", 4096 },         { "4K", 4096 },
                { "4KiB", 4096 },     { "4kB", 4096 },          { "4096B", 4096 },
                { "16M", 16 << 20 },  { "1.5G", 3ull << 29 },   { "0.5k", 512 },
                { "2T", 2ull << 40 }, { "1P", 1ull << 50 },     { "1.0009765625K", 1025 },
                { "0.1K", 102 },      { "16383P", 16383ull << 50 },
        };
        static const char *const bad[] = { "", "-1", " 1", "1.5", "1.", ".5K", "1X", "1KiBB", "1 K", "16384P",
                                           "18446744073709551616", "1E" };
        char buf[SIZE_FORMAT_MAX];

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                uint64_t v = 1;

                cr_assert_eq(size_parse(good[i].in, &v), 0, "%s", good[i].in);
                cr_assert_eq(v, good[i].want, "%s: %llu", good[i].in, (unsigned long long) v);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                uint64_t v = 7;

                cr_assert_lt(size_parse(bad[i], &v), 0, "%s", bad[i]);
                cr_assert_eq(v, 7, "%s changed the output", bad[i]);
        }
        size_format(0, buf, sizeof(buf));
        cr_assert_str_eq(buf, "0 B");
        size_format(1536ull << 20, buf, sizeof(buf));
        cr_assert_str_eq(buf, "1.5 GiB");
        size_format(UINT64_MAX, buf, sizeof(buf));
        cr_assert_str_eq(buf, "16.0 EiB");
}
