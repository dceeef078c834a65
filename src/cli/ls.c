/* SPDX-License-Identifier: MIT */
/* ashm ls: every memfd region on the machine, found the only way the
 * kernel offers, through /proc: the fds each process holds, and the
 * mappings it keeps after closing them. One row per process and region
 * (or per region, --regions), with the pin state of the regions ashmd
 * tracks, if one runs. The scan is in ls-scan.c (ls.h); this file is
 * the table, the JSON and the options. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "ashm.h"
#include "cli.h"
#include "fd-util.h"
#include "ls.h"
#include "macro.h"
#include "memfd-util.h"
#include "protocol.h"

/* ---- the table: one list of columns for both views ------------------- */

enum { V_HOLDER = 1, V_REGION = 2 };
enum kind { K_TEXT, K_NUMBER, K_SIZE };

/* A cell: a name escaped (4 bytes per byte at most) fits. */
#define CELL_MAX 1100

struct column {
        const char *name;
        unsigned views;
        enum kind kind;
        /* K_NUMBER and K_SIZE: the value, -1 for "-"; K_TEXT: the text. */
        int64_t (*num)(const struct ls_row *r);
        int (*text)(const struct ls_row *r, char *buf, size_t len);
};

static int64_t c_pid(const struct ls_row *r) { return r->pid; }
static int64_t c_inode(const struct ls_row *r) { return r->inode > INT64_MAX ? INT64_MAX : (int64_t) r->inode; }
static int64_t c_holders(const struct ls_row *r) { return r->holders; }
static int64_t c_size(const struct ls_row *r) { return r->size; }
static int64_t c_resident(const struct ls_row *r) { return r->resident; }
static int64_t c_pss(const struct ls_row *r) { return r->pss; }
static int64_t c_pinned(const struct ls_row *r) { return r->pins ? ls_pin_bytes(r->pins->pinned) : -1; }
static int64_t c_unpinned(const struct ls_row *r) { return r->pins ? ls_pin_bytes(r->pins->unpinned) : -1; }
static int64_t c_purged(const struct ls_row *r) { return r->pins ? ls_pin_bytes(r->pins->purged) : -1; }

static int escaped(const char *s, char *buf, size_t len) {
        _cleanup_free_ char *e = cescape(s);

        if (!e)
                return -ENOMEM;
        snprintf(buf, len, "%s", e);
        return 0;
}

static int c_user(const struct ls_row *r, char *buf, size_t len) {
        char name[64];

        /* A process's owner, or a region's in the region view. */
        ls_user_name(r->hold == LS_HOLD_REGION ? r->region_uid : r->uid, name, sizeof(name));
        return escaped(name, buf, len);
}

static int c_comm(const struct ls_row *r, char *buf, size_t len) {
        return escaped(r->comm, buf, len);
}

static int c_name(const struct ls_row *r, char *buf, size_t len) {
        int ret = escaped(r->name, buf, len);

        if (ret >= 0 && r->channel)
                strncat(buf, " (channel)", len - strlen(buf) - 1);
        return ret;
}

static int c_hold(const struct ls_row *r, char *buf, size_t len) {
        if (r->hold == LS_HOLD_FD)
                snprintf(buf, len, "fd %d", r->fd);
        else if (r->hold == LS_HOLD_MAP)
                snprintf(buf, len, "map %lx-%lx", r->map_start, r->map_end);
        else
                snprintf(buf, len, "ashmd");
        return 0;
}

/* "1234,5678": the holders, as many as fit, then ",+N". */
static int c_pids(const struct ls_row *r, char *buf, size_t len) {
        size_t n = 0;

        buf[0] = '\0';
        for (unsigned i = 0; i < r->holders; i++) {
                char one[16];
                int w = snprintf(one, sizeof(one), "%s%d", i ? "," : "", (int) r->pids[i]);

                if (n + (size_t) w + 16 >= len) {
                        snprintf(buf + n, len - n, ",+%u", r->holders - i);
                        break;
                }
                memcpy(buf + n, one, (size_t) w + 1);
                n += (size_t) w;
        }
        return 0;
}

static const struct column columns[] = {
        { "PID", V_HOLDER, K_NUMBER, c_pid, NULL },
        { "USER", V_HOLDER | V_REGION, K_TEXT, NULL, c_user },
        { "COMM", V_HOLDER, K_TEXT, NULL, c_comm },
        { "HOLD", V_HOLDER, K_TEXT, NULL, c_hold },
        { "INODE", V_HOLDER | V_REGION, K_NUMBER, c_inode, NULL },
        { "HOLDERS", V_HOLDER | V_REGION, K_NUMBER, c_holders, NULL },
        { "PIDS", V_REGION, K_TEXT, NULL, c_pids },
        { "SIZE", V_HOLDER | V_REGION, K_SIZE, c_size, NULL },
        { "RESIDENT", V_HOLDER | V_REGION, K_SIZE, c_resident, NULL },
        { "PSS", V_HOLDER | V_REGION, K_SIZE, c_pss, NULL },
        { "PINNED", V_HOLDER | V_REGION, K_SIZE, c_pinned, NULL },
        { "UNPINNED", V_HOLDER | V_REGION, K_SIZE, c_unpinned, NULL },
        { "PURGED", V_HOLDER | V_REGION, K_SIZE, c_purged, NULL },
        { "NAME", V_HOLDER | V_REGION, K_TEXT, NULL, c_name },
};

static const char default_holder_columns[] = "PID,USER,COMM,HOLD,INODE,SIZE,RESIDENT,PSS,PINNED,UNPINNED,PURGED,NAME";
static const char default_region_columns[] = "INODE,USER,HOLDERS,PIDS,SIZE,RESIDENT,PSS,PINNED,UNPINNED,PURGED,NAME";

#define MAX_COLUMNS 32

static const struct column *column_find(const char *name, size_t len, unsigned view) {
        for (size_t i = 0; i < ELEMENTSOF(columns); i++)
                if (strlen(columns[i].name) == len && strncasecmp(columns[i].name, name, len) == 0 &&
                    (columns[i].views & view))
                        return &columns[i];
        return NULL;
}

struct ls_options {
        unsigned view;
        bool json, bytes, headings, total;
        const struct column *cols[MAX_COLUMNS];
        size_t n_cols;
        const struct column *sort;
        bool sort_desc;
        pid_t *pids;
        size_t n_pids;
        uid_t *uids;
        size_t n_uids;
        const char *glob;
};

static void cell_of(const struct ls_options *o, const struct column *c, int64_t v, char *buf, size_t len) {
        if (v < 0)
                snprintf(buf, len, "-");
        else if (c->kind == K_SIZE && !o->bytes)
                format_size(v, buf, len);
        else
                snprintf(buf, len, "%" PRIi64, v);
}

static int cell(const struct ls_options *o, const struct column *c, const struct ls_row *r, char *buf,
                size_t len) {
        if (c->text)
                return c->text(r, buf, len);
        cell_of(o, c, c->num(r), buf, len);
        return 0;
}

/* The totals line: sizes once per region, so that a region held by
 * ten processes counts once; PSS adds up over the rows, which is the
 * same sum for the regions whose holders we all saw. */
struct totals {
        int64_t v[ELEMENTSOF(columns)];
        bool known[ELEMENTSOF(columns)];
};

static int add_totals(const struct ls_scan *s, struct totals *t) {
        _cleanup_free_ size_t *idx = ls_by_region(s);

        if (!idx)
                return -ENOMEM;
        *t = (struct totals) {};
        for (size_t i = 0; i < s->n; i++) {
                const struct ls_row *r = &s->rows[idx[i]];
                bool again = i > 0 && ls_region_cmp(r, &s->rows[idx[i - 1]]) == 0;

                for (size_t c = 0; c < ELEMENTSOF(columns); c++) {
                        int64_t v;

                        if (columns[c].kind != K_SIZE || (again && columns[c].num != c_pss))
                                continue;
                        /* A region's share of one holder adds up to nothing. */
                        if (r->hold == LS_HOLD_REGION && columns[c].num == c_pss)
                                continue;
                        v = columns[c].num(r);
                        if (v < 0)
                                continue;
                        t->v[c] = v > INT64_MAX - t->v[c] ? INT64_MAX : t->v[c] + v;
                        t->known[c] = true;
                }
        }
        return 0;
}

static void total_cell(const struct ls_options *o, const struct totals *t, size_t k, char *buf, size_t len) {
        size_t c = (size_t) (o->cols[k] - columns);

        if (t->known[c])
                cell_of(o, o->cols[k], t->v[c], buf, len);
        else
                snprintf(buf, len, k == 0 ? "TOTAL" : "");
}

/* 0, or the errno of a write that failed while printing the line: taken
 * at once, as the table can outgrow stdio's buffer and a later call
 * (a user name looked up for the next row) may change errno. */
static int print_line(FILE *f, const struct ls_options *o, char cells[][CELL_MAX], const size_t *widths) {
        errno = 0;
        for (size_t k = 0; k < o->n_cols; k++) {
                int pad = (int) (widths[k] - text_width(cells[k]));

                /* The last column goes unpadded: no trailing blanks.
                 * Numbers align right, text left, as in ps(1). */
                if (k + 1 == o->n_cols)
                        fprintf(f, "%s\n", cells[k]);
                else if (o->cols[k]->kind != K_TEXT)
                        fprintf(f, "%*s%s ", pad, "", cells[k]);
                else
                        fprintf(f, "%s%*s ", cells[k], pad, "");
        }
        return ferror(f) ? (errno > 0 ? errno : EIO) : 0;
}

/* 0, -ENOMEM, or -errno of a failed write to f (its error flag set). */
static int print_table(FILE *f, const struct ls_options *o, const struct ls_scan *s) {
        _cleanup_free_ char (*cells)[CELL_MAX] = calloc(o->n_cols, CELL_MAX);
        size_t widths[MAX_COLUMNS];
        struct totals t;
        int err;

        if (!cells || (o->total && add_totals(s, &t) < 0))
                return -ENOMEM;
        for (size_t k = 0; k < o->n_cols; k++)
                widths[k] = o->headings ? strlen(o->cols[k]->name) : 0;
        for (size_t i = 0; i < s->n; i++)
                for (size_t k = 0; k < o->n_cols; k++) {
                        if (cell(o, o->cols[k], &s->rows[i], cells[k], CELL_MAX) < 0)
                                return -ENOMEM;
                        widths[k] = MAX(widths[k], text_width(cells[k]));
                }
        if (o->total)
                for (size_t k = 0; k < o->n_cols; k++) {
                        total_cell(o, &t, k, cells[k], CELL_MAX);
                        widths[k] = MAX(widths[k], text_width(cells[k]));
                }
        if (o->headings) {
                for (size_t k = 0; k < o->n_cols; k++)
                        snprintf(cells[k], CELL_MAX, "%s", o->cols[k]->name);
                if ((err = print_line(f, o, cells, widths)))
                        return -err;
        }
        for (size_t i = 0; i < s->n; i++) {
                for (size_t k = 0; k < o->n_cols; k++)
                        if (cell(o, o->cols[k], &s->rows[i], cells[k], CELL_MAX) < 0)
                                return -ENOMEM;
                if ((err = print_line(f, o, cells, widths)))
                        return -err;
        }
        if (o->total) {
                for (size_t k = 0; k < o->n_cols; k++)
                        total_cell(o, &t, k, cells[k], CELL_MAX);
                if ((err = print_line(f, o, cells, widths)))
                        return -err;
        }
        return 0;
}

static void json_put_size(const char *key, int64_t v) {
        if (v < 0)
                printf(",\"%s\":null", key);
        else
                printf(",\"%s\":%" PRIi64, key, v);
}

static void json_put_uid(uid_t uid) {
        char name[64];

        if (uid == (uid_t) -1) {
                fputs(",\"uid\":null,\"user\":null", stdout);
                return;
        }
        ls_user_name(uid, name, sizeof(name));
        printf(",\"uid\":%u,\"user\":", (unsigned) uid);
        json_put_string(name, stdout);
}

static void json_put_sizes(const struct ls_row *r) {
        json_put_size("size", r->size);
        json_put_size("resident", r->resident);
        json_put_size("pss", r->pss);
        printf(",\"holders\":%u", r->holders);
        json_put_size("pinned", c_pinned(r));
        json_put_size("unpinned", c_unpinned(r));
        json_put_size("purged", c_purged(r));
        /* Only on channels: rows of plain regions keep the shape they
         * always had. */
        if (r->channel)
                fputs(",\"kind\":\"channel\"", stdout);
        fputs(",\"name\":", stdout);
        json_put_string(r->name, stdout);
        putchar('}');
}

static void json_put_row(const struct ls_row *r) {
        printf("{\"pid\":%d,\"comm\":", (int) r->pid);
        json_put_string(r->comm, stdout);
        json_put_uid(r->uid);
        if (r->hold == LS_HOLD_FD)
                printf(",\"fd\":%d,\"map\":null", r->fd);
        else if (r->hold == LS_HOLD_MAP)
                printf(",\"fd\":null,\"map\":\"%lx-%lx\"", r->map_start, r->map_end);
        else
                fputs(",\"fd\":null,\"map\":null", stdout);
        printf(",\"inode\":%" PRIu64, r->inode);
        json_put_sizes(r);
}

void ls_json_put_region(const struct ls_row *r) {
        printf("{\"inode\":%" PRIu64, r->inode);
        json_put_uid(r->region_uid);
        fputs(",\"pids\":[", stdout);
        for (unsigned i = 0; i < r->holders; i++)
                printf("%s%d", i ? "," : "", (int) r->pids[i]);
        putchar(']');
        json_put_sizes(r);
}

/* One object per line, so that grep still works on the output. */
static void print_json(const struct ls_scan *s) {
        putchar('[');
        for (size_t i = 0; i < s->n && !ferror(stdout); i++) {
                fputs(i == 0 ? "\n  " : ",\n  ", stdout);
                if (s->rows[i].hold == LS_HOLD_REGION)
                        ls_json_put_region(&s->rows[i]);
                else
                        json_put_row(&s->rows[i]);
        }
        puts(s->n ? "\n]" : "]");
}

/* Which processes could not be read, by name, as lsof would want. */
static void print_denied(const struct ls_scan *s) {
        enum { SHOWN = 8 };

        fprintf(stderr, "ashm: %zu process%s could not be read (permission denied):", s->n_denied,
                s->n_denied == 1 ? "" : "es");
        for (size_t i = 0; i < s->n_denied && i < SHOWN; i++) {
                _cleanup_free_ char *comm = cescape(s->denied[i].comm);

                fprintf(stderr, "%s %d", i ? "," : "", (int) s->denied[i].pid);
                if (comm && *comm)
                        fprintf(stderr, " (%s)", comm);
        }
        if (s->n_denied > SHOWN)
                fprintf(stderr, " and %zu more", s->n_denied - SHOWN);
        fputs(geteuid() == 0 ? "\n" : "; run as root to see every region\n", stderr);
}

static void print_hints(const struct ls_scan *s) {
        /* No daemon is no error: most memfds are not ashm's anyway. */
        if (s->pins_error < 0 && s->pins_error != -ECONNREFUSED)
                cli_daemon_error("read the pin state from ashmd (shown as \"-\")", s->pins_error);
        if (s->n_denied > 0)
                print_denied(s);
        if (s->sizes_denied && geteuid() != 0)
                fputs("ashm: the size of a region that is only mapped (\"-\") can be read by root only\n",
                      stderr);
}

/* ---- options, filters, order ----------------------------------------- */

static int parse_columns(struct ls_options *o, const char *list) {
        o->n_cols = 0;
        for (const char *p = list;;) {
                size_t len = strcspn(p, ",");
                const struct column *c = column_find(p, len, o->view);

                if (!c) {
                        fprintf(stderr, "ashm ls: unknown column '%.*s'%s; see 'ashm help ls'\n", (int) len, p,
                                o->view == V_REGION ? " with --regions" : "");
                        return -EINVAL;
                }
                if (o->n_cols == MAX_COLUMNS) {
                        fputs("ashm ls: too many columns\n", stderr);
                        return -EINVAL;
                }
                o->cols[o->n_cols++] = c;
                if (!p[len])
                        return 0;
                p += len + 1;
        }
}

static int parse_sort(struct ls_options *o, const char *arg) {
        /* ps(1): "-" sorts in decreasing order, "+" (or nothing) in
         * increasing order. */
        o->sort_desc = arg[0] == '-';
        if (arg[0] == '-' || arg[0] == '+')
                arg++;
        o->sort = column_find(arg, strlen(arg), o->view);
        if (!o->sort) {
                fprintf(stderr, "ashm ls: cannot sort by '%s': no such column%s; see 'ashm help ls'\n", arg,
                        o->view == V_REGION ? " with --regions" : "");
                return -EINVAL;
        }
        return 0;
}

static int add_pids(struct ls_options *o, const char *arg) {
        for (const char *p = arg;;) {
                char *end;
                long v;
                pid_t *a;

                errno = 0;
                v = strtol(p, &end, 10);
                if (errno || end == p || v <= 0 || v > INT_MAX || (*end && *end != ',')) {
                        fprintf(stderr, "ashm ls: invalid process ID in '%s'\n", arg);
                        return -EINVAL;
                }
                a = reallocarray(o->pids, o->n_pids + 1, sizeof(*a));
                if (!a)
                        return -ENOMEM;
                o->pids = a;
                o->pids[o->n_pids++] = (pid_t) v;
                if (!*end)
                        return 0;
                p = end + 1;
        }
}

static int add_user(struct ls_options *o, const char *arg) {
        struct passwd *pw = getpwnam(arg);
        uid_t *a, uid;
        char *end;

        if (pw)
                uid = pw->pw_uid;
        else {
                unsigned long v;

                errno = 0;
                v = strtoul(arg, &end, 10);
                if (errno || end == arg || *end || v >= (uid_t) -1 || arg[0] == '-') {
                        fprintf(stderr, "ashm ls: no user '%s'\n", arg);
                        return -EINVAL;
                }
                uid = (uid_t) v;
        }
        a = reallocarray(o->uids, o->n_uids + 1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        o->uids = a;
        o->uids[o->n_uids++] = uid;
        return 0;
}

static bool has_pid(const struct ls_options *o, pid_t pid) {
        for (size_t i = 0; i < o->n_pids; i++)
                if (o->pids[i] == pid)
                        return true;
        return false;
}

static bool has_uid(const struct ls_options *o, uid_t uid) {
        for (size_t i = 0; i < o->n_uids; i++)
                if (o->uids[i] == uid)
                        return true;
        return false;
}

/* The holder rows the filters keep. In the region view a region stays
 * when one of its holders passes --pid and --name; --user is then
 * matched with the region's owner, by the caller. */
static bool row_kept(const struct ls_options *o, const struct ls_row *r) {
        if (o->n_pids && !has_pid(o, r->pid))
                return false;
        if (o->view == V_HOLDER && o->n_uids && !has_uid(o, r->uid))
                return false;
        return !o->glob || fnmatch(o->glob, r->name, 0) == 0;
}

static int row_order(const void *a, const void *b, void *userdata) {
        const struct ls_options *o = userdata;
        const struct ls_row *x = a, *y = b;
        int c = 0;

        if (o->sort && o->sort->num) {
                int64_t u = o->sort->num(x), v = o->sort->num(y);

                c = u < v ? -1 : u > v;
        } else if (o->sort) {
                char p[CELL_MAX], q[CELL_MAX];

                /* Out of memory here sorts as equal: the order only. */
                if (o->sort->text(x, p, sizeof(p)) == 0 && o->sort->text(y, q, sizeof(q)) == 0)
                        c = strcmp(p, q);
        }
        if (c != 0)
                return o->sort_desc ? -c : c;
        if (x->pid != y->pid)
                return x->pid < y->pid ? -1 : 1;
        return ls_region_cmp(x, y);
}

/* Keep the rows that pass, in s, and put them in order. */
static int select_rows(const struct ls_options *o, struct ls_scan *s) {
        _cleanup_free_ bool *keep = calloc(s->n ? s->n : 1, sizeof(*keep));
        size_t n = 0;

        if (!keep)
                return -ENOMEM;
        for (size_t i = 0; i < s->n; i++)
                keep[i] = row_kept(o, &s->rows[i]);
        if (o->view == V_REGION) {
                struct ls_scan regions;
                int r = ls_regions(s, keep, &regions);

                if (r < 0)
                        return r;
                regions.denied = TAKE_PTR(s->denied);
                regions.n_denied = s->n_denied;
                /* The region rows point into the daemon's list. */
                regions.pins = TAKE_PTR(s->pins);
                regions.n_pins = s->n_pins;
                ls_scan_done(s);
                *s = regions;
                for (size_t i = 0; i < s->n; i++)
                        keep[i] = !o->n_uids || has_uid(o, s->rows[i].region_uid);
        }
        for (size_t i = 0; i < s->n; i++) {
                if (keep[i])
                        s->rows[n++] = s->rows[i];
                else {
                        free(s->rows[i].comm);
                        free(s->rows[i].name);
                        free(s->rows[i].pids);
                }
        }
        s->n = n;
        if (s->n > 1) /* with no row, s->rows may be NULL: not for qsort() */
                qsort_r(s->rows, s->n, sizeof(*s->rows), row_order, (void *) o);
        return 0;
}

static int ls_args(int argc, char *argv[], struct ls_options *o) {
        static const struct option options[] = {
                { "json", no_argument, NULL, 'j' },
                { "regions", no_argument, NULL, 'r' },
                { "pid", required_argument, NULL, 'p' },
                { "user", required_argument, NULL, 'u' },
                { "name", required_argument, NULL, 'n' },
                { "sort", required_argument, NULL, 's' },
                { "bytes", no_argument, NULL, 'b' },
                { "output", required_argument, NULL, 'o' },
                { "no-headings", no_argument, NULL, 'H' },
                { "total", no_argument, NULL, 't' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *cols = NULL, *sort = NULL;
        int c, r;

        *o = (struct ls_options) { .view = V_HOLDER, .headings = true };
        while ((c = getopt_long(argc, argv, ":hbo:tp:u:", options, NULL)) >= 0) {
                r = 0;
                switch (c) {
                case 'j': o->json = true; break;
                case 'r': o->view = V_REGION; break;
                case 'p': r = add_pids(o, optarg); break;
                case 'u': r = add_user(o, optarg); break;
                case 'n': o->glob = optarg; break;
                case 's': sort = optarg; break;
                case 'b': o->bytes = true; break;
                case 'o': cols = optarg; break;
                case 'H': o->headings = false; break;
                case 't': o->total = true; break;
                case 'h':
                        cli_verb_help("ls", stdout);
                        return EXIT_SUCCESS;
                default:
                        return cli_bad_option("ls", c, argv);
                }
                if (r == -ENOMEM) {
                        fputs("ashm: out of memory\n", stderr);
                        return EXIT_FAILURE;
                }
                if (r < 0)
                        return EXIT_USAGE;
        }
        if (optind < argc) {
                fprintf(stderr, "ashm ls: unexpected argument '%s'; see 'ashm help ls'\n", argv[optind]);
                return EXIT_USAGE;
        }
        /* The view first: it decides which columns exist. */
        if (parse_columns(o, cols ? cols : o->view == V_REGION ? default_region_columns : default_holder_columns) < 0 ||
            (sort && parse_sort(o, sort) < 0))
                return EXIT_USAGE;
        return -1; /* go on */
}

int verb_ls(int argc, char *argv[]) {
        _cleanup_(ls_scan_done) struct ls_scan s = {};
        struct ls_options o;
        int r;

        r = ls_args(argc, argv, &o);
        if (r >= 0) {
                free(o.pids);
                free(o.uids);
                return r;
        }
        r = ls_scan(&s);
        if (r >= 0)
                r = select_rows(&o, &s);
        if (r >= 0 && !o.json)
                r = print_table(stdout, &o, &s);
        else if (r >= 0)
                print_json(&s);
        free(o.pids);
        free(o.uids);
        if (r < 0 && r != -ENOMEM && ferror(stdout))
                return cli_stdout_error(-r);
        if (r == -ENOMEM) {
                fputs("ashm: out of memory\n", stderr);
                return EXIT_FAILURE;
        }
        if (r < 0) {
                fprintf(stderr, "ashm: cannot read /proc: %s%s\n", strerror(-r),
                        r == -ENOENT ? " (is procfs mounted?)" : "");
                return EXIT_FAILURE;
        }
        /* Flush now: the table comes before the hints, and fflush() knows
         * the errno of a failed write, ferror() does not. */
        errno = 0;
        if (fflush(stdout) != 0 || ferror(stdout))
                return cli_stdout_error(errno > 0 ? errno : EIO);
        print_hints(&s);
        return EXIT_SUCCESS;
}

int ls_table(FILE *f, struct ls_scan *s, bool regions, const char *cols, const char *sort, bool bytes, bool total) {
        struct ls_options o = { .view = regions ? V_REGION : V_HOLDER, .headings = true, .bytes = bytes,
                                .total = total };

        if (parse_columns(&o, cols ? cols : regions ? default_region_columns : default_holder_columns) < 0 ||
            (sort && parse_sort(&o, sort) < 0))
                return -EINVAL;
        if (s->n > 1)
                qsort_r(s->rows, s->n, sizeof(*s->rows), row_order, &o);
        return f ? print_table(f, &o, s) : 0;
}
