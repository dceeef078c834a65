/* SPDX-License-Identifier: MIT */
#pragma once

/* What each uid may make the daemon hold: connections, regions (holds:
 * one per connection and region), published names, and bytes of the
 * daemon's own memory (pin-state blocks and the records kept for a
 * region or a name). Every charge is made before the thing is made and
 * undone when it goes, so one uid at its quota leaves the rest to the
 * others (docs/security.md). Root (uid 0) is never limited: it can
 * restart the daemon with other limits anyway. Never prints. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum quota_kind {
        QUOTA_CONNECTIONS,
        QUOTA_REGIONS,
        QUOTA_NAMES,
        QUOTA_MEMORY,
        _QUOTA_MAX,
};

/* Per-uid state of the daemon, for the quotas and the tombs' budget. */
struct quota_user {
        uid_t uid;
        uint64_t used[_QUOTA_MAX];
        uint64_t tomb_bytes;    /* what this uid's tombs take (registry.c) */
        uint64_t tombs_lost_ns; /* born no later than this: a tomb may have been forgotten */
        struct quota_user *next;
};

/* Defaults: a desktop never reaches them (docs/security.md). */
#define QUOTA_CONNECTIONS_DEFAULT 1024
#define QUOTA_REGIONS_DEFAULT 16384
#define QUOTA_NAMES_DEFAULT 4096
#define QUOTA_MEMORY_DEFAULT (UINT64_C(256) << 20)

void quota_set_limit(enum quota_kind kind, uint64_t max);
uint64_t quota_limit(enum quota_kind kind);

/* The user's record, made on first use (NULL: out of memory). Records
 * are kept while the daemon runs: there are as many as uids that used it. */
struct quota_user *quota_user(uid_t uid);

/* Take n of kind for uid: -EDQUOT past its limit, -ENOMEM. */
int quota_charge(uid_t uid, enum quota_kind kind, uint64_t n);

/* Give n back. */
void quota_uncharge(uid_t uid, enum quota_kind kind, uint64_t n);

const char *quota_name(enum quota_kind kind);

void quota_free(void);
