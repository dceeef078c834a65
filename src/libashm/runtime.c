/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "macro.h"
#include "runtime.h"

static size_t sun_path_max(void) {
        return sizeof(((struct sockaddr_un *) NULL)->sun_path);
}

int ashm__socket_path(char *buf, size_t len) {
        const char *env = getenv("ASHM_SOCKET"), *xdg = getenv("XDG_RUNTIME_DIR");
        int n;

        if (env && *env)
                n = snprintf(buf, len, "%s", env);
        else if (xdg && *xdg == '/')
                n = snprintf(buf, len, "%s/ashm/ashmd.sock", xdg);
        else
                n = snprintf(buf, len, "/tmp/ashm-%u/ashmd.sock", (unsigned) geteuid());
        if (n < 0 || (size_t) n >= len || (size_t) n >= sun_path_max())
                return -ENAMETOOLONG;
        return 0;
}

int ashm__client_socket_path(char *buf, size_t len, bool *ret_system) {
        const char *env = getenv("ASHM_SOCKET"), *sys = getenv("ASHM_SYSTEM_SOCKET");
        struct stat st;
        int r;

        if (ret_system)
                *ret_system = false;
        r = ashm__socket_path(buf, len);
        if (r < 0 || (env && *env) || lstat(buf, &st) == 0)
                return r;
        if (!sys || !*sys)
                sys = ASHM_SYSTEM_SOCKET;
        if (lstat(sys, &st) < 0 || !S_ISSOCK(st.st_mode) || strlen(sys) >= len || strlen(sys) >= sun_path_max())
                return r;
        strcpy(buf, sys);
        if (ret_system)
                *ret_system = true;
        return 0;
}

int ashm__pid_path(const char *socket_path, char *buf, size_t len) {
        const char *slash = strrchr(socket_path, '/');
        int dir = slash ? (int) (slash - socket_path) : 1;
        int n = snprintf(buf, len, "%.*s/ashmd.pid", dir, slash ? socket_path : ".");

        return n < 0 || (size_t) n >= len ? -ENAMETOOLONG : 0;
}

int ashm__runtime_dir_prepare(const char *socket_path) {
        const char *slash = strrchr(socket_path, '/');
        char dir[108];
        struct stat st;

        /* A path the user chose is the user's business. */
        if (getenv("ASHM_SOCKET") && *getenv("ASHM_SOCKET"))
                return 0;
        if (!slash || slash == socket_path)
                return 0;
        if ((size_t) (slash - socket_path) >= sizeof(dir))
                return -ENAMETOOLONG;
        memcpy(dir, socket_path, (size_t) (slash - socket_path));
        dir[slash - socket_path] = '\0';
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return negative_errno();
        if (lstat(dir, &st) < 0)
                return negative_errno();
        if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 0077))
                return -EPERM;
        return 0;
}
