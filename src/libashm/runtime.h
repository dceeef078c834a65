/* SPDX-License-Identifier: MIT */
#pragma once

/* Where ashmd listens, shared by the library and the daemon. */

#include <stddef.h>

/* The socket: $ASHM_SOCKET, else $XDG_RUNTIME_DIR/ashm/ashmd.sock, else
 * /tmp/ashm-$UID/ashmd.sock. -ENAMETOOLONG if it does not fit sun_path. */
int ashm__socket_path(char *buf, size_t len);

/* The pid file beside a socket path: DIR/ashmd.pid. */
int ashm__pid_path(const char *socket_path, char *buf, size_t len);

/* Create the default socket directory (mode 0700) if missing, and refuse
 * one that is not a real directory owned by us and closed to others, as
 * another user could have made it first in /tmp: -EPERM then. A path set
 * with $ASHM_SOCKET is used as it is. */
int ashm__runtime_dir_prepare(const char *socket_path);
