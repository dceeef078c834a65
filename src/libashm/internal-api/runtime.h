/* SPDX-License-Identifier: MIT */
#pragma once

/* Where ashmd listens, shared by the library and the daemon. */

#include <stdbool.h>
#include <stddef.h>

/* Where a system-wide ashmd (the system units) listens for every user. */
#define ASHM_SYSTEM_SOCKET "/run/ashm/ashmd.sock"

/* The socket: $ASHM_SOCKET, else $XDG_RUNTIME_DIR/ashm/ashmd.sock, else
 * /tmp/ashm-$UID/ashmd.sock. -ENAMETOOLONG if it does not fit sun_path. */
int ashm__socket_path(char *buf, size_t len);

/* Where a client connects: the user's socket (as above) when it exists
 * or $ASHM_SOCKET is set, else the system daemon's socket when that
 * exists ($ASHM_SYSTEM_SOCKET, else ASHM_SYSTEM_SOCKET), else the
 * user's, where a daemon may be started on demand. *ret_system (may be
 * NULL) says whether the system's was chosen. Never the system's when
 * $ASHM_SOCKET is set: a test's private path must not reach it. */
int ashm__client_socket_path(char *buf, size_t len, bool *ret_system);

/* The pid file beside a socket path: DIR/ashmd.pid. */
int ashm__pid_path(const char *socket_path, char *buf, size_t len);

/* Create the default socket directory (mode 0700) if missing, and refuse
 * one that is not a real directory owned by us and closed to others, as
 * another user could have made it first in /tmp: -EPERM then. A path set
 * with $ASHM_SOCKET is used as it is. */
int ashm__runtime_dir_prepare(const char *socket_path);
