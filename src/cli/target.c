/* SPDX-License-Identifier: MIT */
/* PID:FD arguments, shared by `ashm cat` and `ashm kv`. */
#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include "cli.h"

/* A decimal number in [0, INT_MAX] at *p, digits only (no sign, no
 * space: "1234:5" is all we accept). Advances *p past it. */
static bool parse_number(const char **p, int *ret) {
        long v = 0;
        const char *s = *p;

        if (*s < '0' || *s > '9')
                return false;
        for (; *s >= '0' && *s <= '9'; s++) {
                v = v * 10 + (*s - '0');
                if (v > INT_MAX)
                        return false;
        }
        *p = s;
        *ret = (int) v;
        return true;
}

bool cli_looks_like_target(const char *arg) {
        size_t pid_len = strspn(arg, "0123456789"), fd_len;

        if (pid_len == 0 || arg[pid_len] != ':')
                return false;
        fd_len = strspn(arg + pid_len + 1, "0123456789");
        return fd_len > 0 && arg[pid_len + 1 + fd_len] == '\0';
}

bool cli_parse_target(const char *arg, int *ret_pid, int *ret_fd) {
        int pid, fd;

        if (!parse_number(&arg, &pid) || pid == 0 || *arg++ != ':' || !parse_number(&arg, &fd) || *arg)
                return false;
        *ret_pid = pid;
        *ret_fd = fd;
        return true;
}
