/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared by the ashm tool's commands. Each command lives in its own file
 * and is one row of the table in ashm.c. */

#include <stdio.h>

/* Exit statuses: 0 done, 1 the command failed, 2 it was called wrongly
 * (the convention of grep, diff and systemctl). */
#define EXIT_USAGE 2

/* A command gets argv[0] = its own name, as getopt_long() expects, and
 * returns an exit status, having printed whatever went wrong. */
int verb_ls(int argc, char *argv[]);
int verb_cat(int argc, char *argv[]);

/* Print the usage of one command (name as in the table) to f. */
void cli_verb_help(const char *name, FILE *f);

/* getopt_long() returned c, "?" or ":" (opterr = 0, optstring starting
 * with ":"): say which option was wrong, for verb (NULL: the global
 * options), and return EXIT_USAGE. */
int cli_bad_option(const char *verb, int c, char *argv[]);

/* Writing to stdout failed with err (an errno value). Reports it once,
 * except EPIPE: the reader went away (`ashm ls | head`), which is not an
 * error. Returns the exit status to use. */
int cli_stdout_error(int err);

/* Names are arbitrary bytes (see escape.c). cescape() returns a copy
 * safe to print on a terminal (control bytes, backslashes and invalid
 * UTF-8 as \xNN or \\), to be freed; NULL when out of memory.
 * json_put_string() writes s to f as a quoted JSON string. */
char *cescape(const char *s);
void json_put_string(const char *s, FILE *f);
