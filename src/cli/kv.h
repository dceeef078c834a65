/* SPDX-License-Identifier: MIT */
#pragma once

/* ashm kv: the key-value store commands (kv.c), and what the MMKV
 * commands (kv-mmkv.c) share with them. */

#include <stdbool.h>
#include <stddef.h>

#include "ashm.h"

/* `ashm kv STORE check` found damage: fsck's status for "errors left
 * uncorrected". 1 stays "the command failed", 2 "called wrongly". */
#define EXIT_DAMAGED 4

/* The `kv` row of the command table: argv[0] = "kv", argv[1] = STORE,
 * argv[2] = the kv command. */
int verb_kv(int argc, char *argv[]);

/* Open a store as the command line names it: a file path; "@NAME", a
 * region published with ashmd (looked up with ASHM_LOOKUP_WRITE unless
 * flags hold ASHM_KV_RDONLY; never starts a daemon); or "PID:FD", what
 * process PID holds as fd FD (opened through /proc/PID/fd/FD, a regular
 * file or memfd only). An argument of the form DIGITS:DIGITS is always
 * PID:FD; a file of that name is reached as ./DIGITS:DIGITS. flags as
 * for ashm_kv_open(): only with ASHM_KV_CREATE is a missing file
 * created, or an empty file or region made a store.
 *
 * Prints nothing. Returns 0, or -errno: as ashm_kv_open() and
 * ashm_lookup() (-ENOENT no such name, -EACCES no write grant,
 * -ECONNREFUSED no daemon), as open(2) for PID:FD; -EINVAL a malformed
 * @NAME or PID:FD; -EMEDIUMTYPE PID:FD is not a file or memfd. */
int kv_store_open(const char *store, unsigned flags, ashm_kv **ret_kv);
