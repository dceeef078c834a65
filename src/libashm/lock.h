/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A robust cross-process lock for words in shared memory that other
 * processes may scribble on (docs/locks.md). The KV store's writer lock
 * and the public ashm_mutex_* are built on it.
 *
 * The shared part is two 32-bit words and holds no pointer:
 *
 *   word   0 free; else the owner's id (bits 0-30) | LOCK_WAITERS
 *   magic  LOCK_MAGIC once initialized
 *
 * An owner id is a random number in [1, 2^31) whose byte at
 * LOCK_LIVE_BASE + id of the shared file is held write-locked with an
 * OFD lock (F_OFD_SETLK) by the owner's own open file description for
 * as long as the owner lives. The kernel drops that lock when the
 * process dies, and no write to the memory can forge or remove it: a
 * waiter that finds the owner's byte free knows the owner is gone and
 * takes the lock over with LOCK_OWNER_DIED. A forged id makes a waiter
 * either take over (id not alive) or wait until its deadline (id of a
 * live holder): errors and recovery, never a write through the word or
 * a sleep without end unless the caller asked for one.
 *
 * Uses fcntl(2) and futex(2) only; never prints.
 */

#include <stdint.h>

#define LOCK_MAGIC UINT32_C(0x4b434f4c) /* "LOCK" */
#define LOCK_WAITERS UINT32_C(0x80000000)
#define LOCK_ID_MASK UINT32_C(0x7fffffff)
#define LOCK_LIVE_BASE (INT64_C(1) << 62)

/* The lock's return when it was taken over from a dead owner. */
#define LOCK_OWNER_DIED 1

struct lock_shm {
        uint32_t word;
        uint32_t magic;
};

_Static_assert(sizeof(struct lock_shm) == 8, "lock layout");

/* One holder's identity on one file: fd is the holder's own open file
 * description (never one shared with another process: a copy passed by
 * SCM_RIGHTS or inherited by fork() shares its byte locks), borrowed,
 * open for writing. */
struct lock_owner {
        int fd;
        uint32_t id;
};

/* Pick an id no live holder of fd's file uses and hold its byte.
 * -EADDRINUSE if none was found (a peer holds the whole range). */
int lock_owner_init(struct lock_owner *o, int fd);
/* Let the id go (closing the fd does too). */
void lock_owner_done(struct lock_owner *o);

/* Lay out a free lock. Nobody may be using it. */
void lock_init(struct lock_shm *l);

/* Take the lock, waiting at most timeout_ns (< 0: no limit; 0: one
 * attempt, which still takes the lock over from a dead owner). Returns 0, LOCK_OWNER_DIED (taken; the last
 * owner died holding it), -EBUSY (timeout 0 and held), -ETIMEDOUT,
 * -EBADMSG (not an initialized lock), -EINTR is never returned. When
 * ret_holder is not NULL it receives the id that held the lock on
 * -EBUSY/-ETIMEDOUT. */
int lock_take(struct lock_shm *l, const struct lock_owner *o, int64_t timeout_ns, uint32_t *ret_holder);

/* Release the lock. -EPERM if the word does not name o (someone wrote
 * over it meanwhile): the word is then left alone. */
int lock_release(struct lock_shm *l, const struct lock_owner *o);

/* 1 if id's byte is held by a live holder other than o's own open file
 * description, 0 if not, -errno. */
int lock_owner_alive(const struct lock_owner *o, uint32_t id);
