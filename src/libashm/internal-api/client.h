/* SPDX-License-Identifier: MIT */
#pragma once

/* The library's side of the ashmd protocol: one connection per process,
 * made on first need, made anew after fork() and after the daemon went
 * away, with the daemon started on demand unless ASHM_NO_AUTOSTART=1. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Send a request of the given type with its body and fds (borrowed), wait
 * for the reply and copy its body (exactly rep_len bytes) into rep. The
 * reply's fds, if the type has any, are stored in ret_fds[] (owned by the
 * caller; up to n_ret_fds of them, the rest closed). Returns the daemon's result (0 or -errno), or a transport
 * error: -ECONNREFUSED no daemon and none may be started, -ETIMEDOUT the
 * daemon did not answer in time, -EBADMSG a malformed reply. A request
 * that fails because the daemon died is retried once on a new
 * connection. */
int ashm__request(uint16_t type, const void *body, size_t body_len, const int *fds, size_t n_fds, void *rep,
                  size_t rep_len, int *ret_fds, size_t n_ret_fds);

/* The connection's generation: bumped each time a new connection is
 * made, so that regions registered on an older one are registered again
 * (a restarted daemon then takes over their pin state). Atomic load. */
uint64_t ashm__client_generation(void);
const uint64_t *ashm__client_generation_word(void);

/* If the connection has broken (the daemon died), drop it, so that the
 * next request connects anew and bumps the generation. One poll(). */
void ashm__client_check(void);

/* Why the last start of the daemon on demand failed: the last line the
 * daemon wrote to stderr (its own error, e.g. "ashmd: error: cannot lock
 * the pid file beside /x/ashmd.sock: No such file or directory"), or why
 * it could not be run. 0 with the text in buf, -ENOENT when the last
 * start did not fail (or none was tried). For the tool's messages: the
 * library never prints. */
int ashm__autostart_error(char *buf, size_t len);
