/* SPDX-License-Identifier: MIT */
/* ashm names: the names published in ashmd that the caller may read,
 * from one NAMES request. Looking never starts a daemon; no daemon is
 * exit status 3, as for `ashm status`. */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ashm.h"
#include "cli.h"
#include "macro.h"

/* The cells of one row, except NAME, which goes last unpadded as in
 * `ls -l`: a name of 255 bytes must not widen every row. */
enum { C_SIZE, C_MODE, C_OWNER, C_GROUP, C_PUBLISHER, C_KEPT, C_ACCESS, N_CELLS };
static const char *const headers[N_CELLS] = { "SIZE", "MODE", "OWNER", "GROUP", "PUBLISHER", "KEPT", "ACCESS" };

/* Cells are short, except user and group names (32 bytes by
 * convention, escaped up to four times that). */
#define CELL_MAX 160

static int name_cmp(const void *a, const void *b) {
        const ashm_name_info *x = a, *y = b;

        return strcmp(x->name, y->name);
}

/* "rw-r--r--", as ls -l shows a file's mode. */
static void mode_string(uint32_t mode, char buf[10]) {
        static const char letters[] = "rwxrwxrwx";

        for (int i = 0; i < 9; i++)
                buf[i] = mode & (0400u >> i) ? letters[i] : '-';
        buf[9] = '\0';
}

/* The user's or group's name, escaped, or NULL (not known): owner is
 * false for a group. */
static char *id_name(uint32_t id, bool owner) {
        const char *name = NULL;

        if (owner) {
                struct passwd *pw = getpwuid((uid_t) id);

                name = pw ? pw->pw_name : NULL;
        } else {
                struct group *gr = getgrgid((gid_t) id);

                name = gr ? gr->gr_name : NULL;
        }
        return name ? strdup(name) : NULL;
}

static void id_cell(uint32_t id, bool owner, char *buf) {
        _cleanup_free_ char *name = id_name(id, owner);
        _cleanup_free_ char *shown = name ? cescape(name) : NULL;

        if (shown)
                snprintf(buf, CELL_MAX, "%s", shown);
        else
                snprintf(buf, CELL_MAX, "%" PRIu32, id);
}

static void row_cells(const ashm_name_info *n, char cells[N_CELLS][CELL_MAX]) {
        char rwx[10];

        format_size_u64(n->size, cells[C_SIZE], CELL_MAX);
        mode_string(n->mode, rwx);
        snprintf(cells[C_MODE], CELL_MAX, "%04" PRIo32 " %s", n->mode, rwx);
        id_cell(n->uid, true, cells[C_OWNER]);
        id_cell(n->gid, false, cells[C_GROUP]);
        if (n->pid)
                snprintf(cells[C_PUBLISHER], CELL_MAX, "%" PRIu32, n->pid);
        else
                snprintf(cells[C_PUBLISHER], CELL_MAX, "-");
        snprintf(cells[C_KEPT], CELL_MAX, "%s", n->flags & ASHM_PUBLISH_KEEP ? "yes" : "no");
        snprintf(cells[C_ACCESS], CELL_MAX, "%s", n->writable ? "rw" : "r");
}

static void print_cells(char cells[N_CELLS][CELL_MAX], const size_t *widths) {
        /* Numbers align right, text left, as in ls -l. */
        static const bool right[N_CELLS] = { [C_SIZE] = true, [C_PUBLISHER] = true };

        for (int c = 0; c < N_CELLS; c++)
                print_cell(cells[c], widths[c], right[c]);
}

static int print_table(const ashm_name_info *names, size_t n) {
        char cells[N_CELLS][CELL_MAX];
        size_t widths[N_CELLS];

        for (int c = 0; c < N_CELLS; c++) {
                snprintf(cells[c], CELL_MAX, "%s", headers[c]);
                widths[c] = strlen(headers[c]);
        }
        for (size_t i = 0; i < n; i++) {
                row_cells(&names[i], cells);
                for (int c = 0; c < N_CELLS; c++)
                        widths[c] = MAX(widths[c], text_width(cells[c]));
        }
        for (int c = 0; c < N_CELLS; c++)
                snprintf(cells[c], CELL_MAX, "%s", headers[c]);
        print_cells(cells, widths);
        puts("NAME");
        for (size_t i = 0; i < n && !ferror(stdout); i++) {
                _cleanup_free_ char *name = cescape(names[i].name);

                if (!name)
                        return -ENOMEM;
                row_cells(&names[i], cells);
                print_cells(cells, widths);
                puts(name);
        }
        return 0;
}

static void json_put_id(const char *id_key, const char *name_key, uint32_t id, bool owner) {
        _cleanup_free_ char *name = id_name(id, owner);

        printf(",\"%s\":%" PRIu32 ",\"%s\":", id_key, id, name_key);
        if (name)
                json_put_string(name, stdout);
        else
                fputs("null", stdout);
}

/* JSON has no octal numbers: the mode is a string, as people write it. */
static void json_put_name(const ashm_name_info *n) {
        fputs("{\"name\":", stdout);
        json_put_string(n->name, stdout);
        printf(",\"size\":%" PRIu64 ",\"mode\":\"%04" PRIo32 "\"", n->size, n->mode);
        json_put_id("uid", "owner", n->uid, true);
        json_put_id("gid", "group", n->gid, false);
        if (n->pid)
                printf(",\"publisher\":%" PRIu32, n->pid);
        else
                fputs(",\"publisher\":null", stdout);
        printf(",\"kept\":%s,\"access\":\"%s\"}", n->flags & ASHM_PUBLISH_KEEP ? "true" : "false",
               n->writable ? "rw" : "r");
}

/* One object per line, as `ashm ls --json`. */
static void print_json(const ashm_name_info *names, size_t n) {
        putchar('[');
        for (size_t i = 0; i < n && !ferror(stdout); i++) {
                fputs(i == 0 ? "\n  " : ",\n  ", stdout);
                json_put_name(&names[i]);
        }
        puts(n ? "\n]" : "]");
}

int verb_names(int argc, char *argv[]) {
        _cleanup_free_ ashm_name_info *names = NULL;
        bool json = false;
        size_t n = 0;
        int r;

        r = cli_json_args("names", argc, argv, &json);
        if (r >= 0)
                return r;
        cli_no_autostart();
        r = ashm_names(&names, &n);
        if (r == -ECONNREFUSED) {
                /* On stderr: stdout is for the list, which a script may
                 * be parsing as JSON. */
                _cleanup_free_ char *sock = cescape(cli_socket_path());

                fprintf(stderr, "ashmd: not running (socket %s)\n", sock ? sock : "?");
                return EXIT_NOT_RUNNING;
        }
        if (r < 0) {
                cli_daemon_error("list the published names", r);
                return EXIT_FAILURE;
        }
        if (n > 0)
                qsort(names, n, sizeof(*names), name_cmp);
        if (json)
                print_json(names, n);
        else if (print_table(names, n) < 0) {
                fputs("ashm: out of memory\n", stderr);
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}
