/* SPDX-License-Identifier: MIT */
/* The broker's client side: publish, look up, unpublish, list. */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "ashm.h"
#include "client.h"
#include "fd-util.h"
#include "internal.h"
#include "protocol.h"

/* Copy a name into a wire field, NUL-padded; -EINVAL if it is not one. */
static int name_field(char field[PROTO_NAME_MAX + 1], const char *name) {
        if (!name || strnlen(name, PROTO_NAME_MAX + 1) > PROTO_NAME_MAX)
                return -EINVAL;
        memset(field, 0, PROTO_NAME_MAX + 1);
        strcpy(field, name);
        return proto_name_valid(field) ? 0 : -EINVAL;
}

/* A name to look up or unpublish: "~USER/NAME" becomes "~UID/NAME" on the
 * wire (the daemon knows uids, not user names); "~UID/NAME" and a plain
 * NAME go as they are. -ENOENT for an unknown user. */
static int owner_name_field(char field[PROTO_NAME_MAX + 1], const char *name) {
        char user[256], buf[4096], qualified[PROTO_NAME_MAX + 2];
        const char *slash;
        struct passwd pw, *found = NULL;
        size_t n;

        if (!name || name[0] != PROTO_NAME_OWNER_PREFIX)
                return name_field(field, name);
        slash = strchr(name, '/');
        n = slash ? (size_t) (slash - name - 1) : 0;
        if (n == 0 || n >= sizeof(user) || strspn(name + 1, "0123456789") == n)
                return name_field(field, name); /* numeric, or the daemon says no */
        memcpy(user, name + 1, n);
        user[n] = '\0';
        if (getpwnam_r(user, &pw, buf, sizeof(buf), &found) != 0 || !found)
                return -ENOENT;
        if (snprintf(qualified, sizeof(qualified), "%c%u%s", PROTO_NAME_OWNER_PREFIX, (unsigned) found->pw_uid,
                     slash) >= (int) sizeof(qualified))
                return -EINVAL;
        return name_field(field, qualified);
}

_public_ int ashm_publish(const ashm_region *region, const char *name, unsigned mode, unsigned flags) {
        struct proto_publish_req req;
        int fd, r;

        if (!region || (mode & ~0777u) || (flags & ~(unsigned) ASHM_PUBLISH_KEEP) ||
            (name && name[0] == PROTO_NAME_OWNER_PREFIX))
                return -EINVAL;
        r = name_field(req.name, name);
        if (r < 0)
                return r;
        req.mode = mode;
        req.flags = flags & ASHM_PUBLISH_KEEP ? PROTO_PUBLISH_KEEP : 0;
        fd = ashm_region_fd(region);
        return ashm__request(PROTO_PUBLISH, &req, sizeof(req), &fd, 1, NULL, 0, NULL, 0);
}

_public_ int ashm_lookup(const char *name, unsigned flags, ashm_region **ret_region) {
        struct proto_lookup_req req = { .reserved = 0 };
        struct proto_lookup_rep rep;
        int fd = -1, r;

        if (!ret_region || (flags & ~(unsigned) ASHM_LOOKUP_WRITE))
                return -EINVAL;
        r = owner_name_field(req.name, name);
        if (r < 0)
                return r;
        req.access = PROTO_ACCESS_READ | (flags & ASHM_LOOKUP_WRITE ? PROTO_ACCESS_WRITE : 0);
        r = ashm__request(PROTO_LOOKUP, &req, sizeof(req), NULL, 0, &rep, sizeof(rep), &fd, 1);
        if (r < 0)
                return r;
        if (fd < 0)
                return -EBADMSG;
        /* The daemon's word is checked like any fd's: adopt refuses a
         * non-memfd, and consumes fd either way. */
        return ashm_region_adopt(fd, 0, ret_region);
}

_public_ int ashm_unpublish(const char *name) {
        struct proto_unpublish_req req;
        int r = owner_name_field(req.name, name);

        if (r < 0)
                return r;
        return ashm__request(PROTO_UNPUBLISH, &req, sizeof(req), NULL, 0, NULL, 0, NULL, 0);
}

/* Read the daemon's sealed list of count entries into info[]. */
static int names_read(int fd, uint64_t count, ashm_name_info **ret) {
        struct proto_name_entry *e;
        ashm_name_info *info;
        size_t len = (size_t) count * sizeof(*e);
        struct stat st;

        if (count == 0) {
                *ret = NULL;
                return 0;
        }
        if (count > SIZE_MAX / sizeof(*e) || fstat(fd, &st) < 0 || (uint64_t) st.st_size != len)
                return -EBADMSG;
        e = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
        if (e == MAP_FAILED)
                return negative_errno();
        info = calloc((size_t) count, sizeof(*info));
        if (!info) {
                munmap(e, len);
                return -ENOMEM;
        }
        for (size_t i = 0; i < count; i++) {
                memcpy(info[i].name, e[i].name, sizeof(info[i].name));
                info[i].name[ASHM_PUBLISH_NAME_MAX] = '\0';
                info[i].size = e[i].size;
                info[i].mode = e[i].mode;
                info[i].uid = e[i].uid;
                info[i].gid = e[i].gid;
                info[i].pid = e[i].pid;
                info[i].flags = e[i].flags & PROTO_PUBLISH_KEEP ? ASHM_PUBLISH_KEEP : 0;
                info[i].writable = !!(e[i].access & PROTO_ACCESS_WRITE);
        }
        munmap(e, len);
        *ret = info;
        return 0;
}

_public_ int ashm_names(ashm_name_info **ret_names, size_t *ret_count) {
        struct proto_list_rep rep;
        ashm_name_info *info;
        int fd = -1, r;

        if (!ret_names || !ret_count)
                return -EINVAL;
        r = ashm__request(PROTO_NAMES, NULL, 0, NULL, 0, &rep, sizeof(rep), &fd, 1);
        if (r < 0)
                return r;
        if (fd < 0 || rep.entry_size != sizeof(struct proto_name_entry)) {
                safe_close(fd);
                return -EBADMSG;
        }
        r = names_read(fd, rep.count, &info);
        safe_close(fd);
        if (r < 0)
                return r;
        *ret_names = info;
        *ret_count = (size_t) rep.count;
        return 0;
}
