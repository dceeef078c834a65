/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>

/*
 * Shared futexes (no FUTEX_PRIVATE_FLAG): the words live in MAP_SHARED
 * mappings of memfds or files, and the kernel keys them by inode and
 * offset, so a wake in one process reaches waiters in every other.
 * Uses only the futex(2) syscall; never prints.
 */

/* Sleep while *addr == val, at most ns nanoseconds (ns < 0: no limit).
 * Returns 0 when woken (or spuriously), -EAGAIN if *addr != val already,
 * -ETIMEDOUT, -EINTR. */
int futex_wait(uint32_t *addr, uint32_t val, int64_t ns);

/* The same with an absolute CLOCK_MONOTONIC deadline in ns (< 0: none). */
int futex_wait_until(uint32_t *addr, uint32_t val, int64_t deadline_ns);

/* Wake up to n waiters (INT32_MAX: all). Returns how many were woken. */
int futex_wake(uint32_t *addr, int32_t n);

/* CLOCK_MONOTONIC now, in ns. */
int64_t clock_monotonic_ns(void);
