/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>

#include "quota.h"

static uint64_t limits[_QUOTA_MAX] = {
        [QUOTA_CONNECTIONS] = QUOTA_CONNECTIONS_DEFAULT,
        [QUOTA_REGIONS] = QUOTA_REGIONS_DEFAULT,
        [QUOTA_NAMES] = QUOTA_NAMES_DEFAULT,
        [QUOTA_MEMORY] = QUOTA_MEMORY_DEFAULT,
};

static struct quota_user *users;

void quota_set_limit(enum quota_kind kind, uint64_t max) {
        limits[kind] = max;
}

uint64_t quota_limit(enum quota_kind kind) {
        return limits[kind];
}

struct quota_user *quota_user(uid_t uid) {
        struct quota_user *u;

        for (u = users; u; u = u->next)
                if (u->uid == uid)
                        return u;
        u = calloc(1, sizeof(*u));
        if (!u)
                return NULL;
        u->uid = uid;
        u->next = users;
        users = u;
        return u;
}

int quota_charge(uid_t uid, enum quota_kind kind, uint64_t n) {
        struct quota_user *u = quota_user(uid);

        if (!u)
                return -ENOMEM;
        if (uid != 0 && (u->used[kind] > limits[kind] || n > limits[kind] - u->used[kind]))
                return -EDQUOT;
        u->used[kind] += n;
        return 0;
}

void quota_uncharge(uid_t uid, enum quota_kind kind, uint64_t n) {
        struct quota_user *u = quota_user(uid);

        if (u)
                u->used[kind] -= n > u->used[kind] ? u->used[kind] : n;
}

const char *quota_name(enum quota_kind kind) {
        static const char *const names[_QUOTA_MAX] = {"connections", "regions", "names", "memory"};

        return names[kind];
}

void quota_free(void) {
        while (users) {
                struct quota_user *u = users;

                users = u->next;
                free(u);
        }
}
