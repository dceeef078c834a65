/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared by the Criterion test files: the fd-leak fixture and assertions
 * that print the errno name, after the kernel's memfd selftest. */

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "fd-util.h"

/* Every suite installs these: a test that leaves an fd open fails. */
static int tests_fd_baseline;

static inline void tests_fd_init(void) {
        tests_fd_baseline = fd_count();
}

static inline void tests_fd_fini(void) {
        int now = fd_count();

        cr_expect_eq(now, tests_fd_baseline, "fd leak: %d fds open before the test, %d after", tests_fd_baseline,
                     now);
}

#define ASHM_SUITE(name) TestSuite(name, .init = tests_fd_init, .fini = tests_fd_fini, .timeout = 60)

static inline const char *errname(int e) {
        const char *n = strerrorname_np(e < 0 ? -e : e);
        return n ? n : "?";
}

/* r must be >= 0 (success); print the errno name otherwise. */
#define assert_ok(expr)                                                                                  \
        ({                                                                                               \
                long _r = (long) (expr);                                                                 \
                cr_assert(_r >= 0, "%s failed: %ld (%s)", #expr, _r, _r < 0 ? errname((int) _r) : ""); \
                _r;                                                                                      \
        })

/* expr must fail with exactly -err. */
#define assert_fail(expr, err)                                                                                 \
        do {                                                                                                   \
                long _r = (long) (expr);                                                                       \
                cr_assert(_r == -(long) (err), "%s returned %ld (%s), expected -%s", #expr, _r,               \
                          _r < 0 ? errname((int) _r) : "success", errname(err));                               \
        } while (0)

/* A libc-style call must fail with -1 and errno err. */
#define assert_fail_errno(expr, err)                                                                         \
        do {                                                                                                 \
                errno = 0;                                                                                   \
                long _r = (long) (expr);                                                                     \
                int _e = errno;                                                                              \
                cr_assert(_r == -1 && _e == (err), "%s returned %ld errno %s, expected -1 errno %s", #expr, \
                          _r, errname(_e), errname(err));                                                    \
        } while (0)
