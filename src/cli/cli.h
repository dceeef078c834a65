/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared by the ashm tool's commands. Each command lives in its own file
 * and is one row of the table in ashm.c. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct proto_list_entry;
struct proto_status_rep;

/* Exit statuses: 0 done, 1 the command failed, 2 it was called wrongly
 * (the convention of grep, diff and systemctl), 3 `ashm status` found no
 * daemon (systemctl status says 3 for an inactive unit). */
#define EXIT_USAGE 2
#define EXIT_NOT_RUNNING 3

/* A command gets argv[0] = its own name, as getopt_long() expects, and
 * returns an exit status, having printed whatever went wrong. */
int verb_ls(int argc, char *argv[]);
int verb_top(int argc, char *argv[]);
int verb_cat(int argc, char *argv[]);
int verb_purge(int argc, char *argv[]);
int verb_status(int argc, char *argv[]);
int verb_publish(int argc, char *argv[]);
int verb_unpublish(int argc, char *argv[]);
int verb_names(int argc, char *argv[]);
int verb_chan(int argc, char *argv[]);

/* Print the usage of one command (name as in the table) to f. */
void cli_verb_help(const char *name, FILE *f);

/* getopt_long() returned c, "?" or ":" (opterr = 0, optstring starting
 * with ":"): say which option was wrong, for verb (NULL: the global
 * options), and return EXIT_USAGE. */
int cli_bad_option(const char *verb, int c, char *argv[]);

/* Options of a verb that takes only --json and --help: -1 to go on, or
 * the exit status to end with (help printed, or a usage error). */
int cli_json_args(const char *verb, int argc, char *argv[], bool *ret_json);

/* Writing to stdout failed with err (an errno value). Reports it once,
 * except EPIPE: the reader went away (`ashm ls | head`), which is not an
 * error. Returns the exit status to use. */
int cli_stdout_error(int err);

/* Names are arbitrary bytes (see escape.c). cescape() returns a copy
 * safe to print on a terminal (control bytes, backslashes and invalid
 * UTF-8 as \xNN or \\), to be freed; NULL when out of memory.
 * json_put_string() writes s to f as a quoted JSON string. */
char *cescape(const char *s);

/* Terminal columns of a UTF-8 string, one per character: enough to align
 * names in tables. */
size_t text_width(const char *s);

/* One table cell padded to width (numbers right, text left), then a space. */
void print_cell(const char *cell, size_t width, bool right);
void json_put_string(const char *s, FILE *f);

/* s as one word a shell reads back as s, for commands we suggest: as it
 * is when it needs no quoting, else 'in single quotes', or $'...' with
 * \xNN when some byte is not printable. To be freed; NULL when out of
 * memory. */
char *shell_word(const char *s);

/* Sizes and durations (units.c). format_size() writes "0 B", "512 B",
 * "1.5 MiB" (one decimal, binary units), or "-" for a negative v.
 * parse_size() reads what people type: "4096", "4K", "4KiB", "16M",
 * "1.5G" (K, M, G, T, P in either case, powers of 1024; a fraction with
 * a unit), as ashmd does (src/basic/size-util.h); -EINVAL for anything
 * else, -ERANGE past 2^64 - 1. format_duration() writes the two
 * largest units of ms, as systemd does: "3d 4h", "2min 5s", "850ms". */
void format_size(int64_t v, char *buf, size_t len);
void format_size_u64(uint64_t v, char *buf, size_t len);
int parse_size(const char *s, uint64_t *ret);
void format_duration(uint64_t ms, char *buf, size_t len);

/* Published names (broker-cmd.c), for publish, cat NAME, unpublish, names.
 *
 * cli_name_valid(): what ashmd accepts as a name: 1 to
 * ASHM_PUBLISH_NAME_MAX bytes, no control character.
 * cli_bad_name(): say why name is not one, for verb; returns EXIT_USAGE.
 * cli_name_failed(): a request about name failed with r; say why on
 * stderr. -ENOENT, and -ECONNREFUSED (no daemon, so no names), read "no
 * published region NAME that you may read"; others go to
 * cli_daemon_error() with doing. Returns EXIT_FAILURE. */
bool cli_name_valid(const char *name);
int cli_bad_name(const char *verb, const char *name);
int cli_name_failed(const char *doing, const char *name, int r);

/* PID:FD arguments (target.c), for cat and kv.
 * cli_looks_like_target(): the shape alone (DIGITS:DIGITS) makes an
 * argument a PID:FD, so that a typo in one is an error, not a name.
 * cli_parse_target(): the pid (not 0) and fd, both in [0, INT_MAX]. */
bool cli_looks_like_target(const char *arg);
bool cli_parse_target(const char *arg, int *ret_pid, int *ret_fd);

/* Talking to ashmd (daemon.c), through libashm's connection.
 *
 * cli_no_autostart(): commands that only look must not start a daemon
 * to look at; call it before the first request.
 * cli_socket_path(): where libashm looks for the daemon, for messages.
 * cli_daemon_error(): a request failed with r (as from ashm__request()
 * or ashm_purge()); say why on stderr, as "ashm: cannot DOING: ...".
 * cli_daemon_status(): one STATUS request.
 * cli_daemon_list(): one LIST request: the regions the daemon tracks
 * that the caller may see (all of them for root), sorted by dev, then
 * inode; *ret to be freed. Names are NUL-terminated whatever the daemon
 * sent. Both return 0 or a negative errno.
 * cli_list_find(): the entry of dev and inode in a list from
 * cli_daemon_list(), or NULL. */
void cli_no_autostart(void);
/* cli_find_ashmd(): from a build tree, have libashm start the ashmd
 * built beside this ashm (sets $ASHMD, unless it is set). */
void cli_find_ashmd(void);
const char *cli_socket_path(void);
void cli_daemon_error(const char *doing, int r);
int cli_daemon_status(struct proto_status_rep *ret);
int cli_daemon_list(struct proto_list_entry **ret, size_t *ret_n);
const struct proto_list_entry *cli_list_find(const struct proto_list_entry *e, size_t n, uint64_t dev,
                                             uint64_t ino);
