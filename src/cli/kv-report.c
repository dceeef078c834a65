/* SPDX-License-Identifier: MIT */
/* ashm kv: what shows a store (ls, dump, stats, and a value as get
 * prints it) and what checks and mends one (check, repair). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ashm.h"
#include "cli.h"
#include "fd-util.h"
#include "kv-cmd.h"
#include "kv-mmkv.h"
#include "kv-value.h"
#include "macro.h"

/* ---- values: encoding to text --------------------------------------- */

/* The value of key, whatever its type and length (which another process
 * may change between two calls: ask again until it fits). */
int kv_value_get(ashm_kv *kv, const char *key, struct value *ret) {
        size_t size = 64;

        for (;;) {
                uint8_t *buf = malloc(size + 1);
                size_t len = 0;
                int type = 0, r;

                if (!buf)
                        return -ENOMEM;
                r = ashm_kv_get(kv, key, &type, buf, size, &len);
                if (r >= 0 && len <= size) {
                        buf[len] = '\0';
                        *ret = (struct value) { .type = type, .data = buf, .len = len };
                        return 0;
                }
                free(buf);
                if (r < 0)
                        return r;
                size = len;
        }
}

static void kv_put_hex(const uint8_t *p, size_t len) {
        static const char hex[] = "0123456789abcdef";

        for (size_t i = 0; i < len && !ferror(stdout); i++) {
                putchar(hex[p[i] >> 4]);
                putchar(hex[p[i] & 0xf]);
        }
}

/* What `get` prints: numbers as text, strings as they are, bytes in hex,
 * each with a newline; with raw, the encoding as stored and no newline. */
void kv_print_value(const struct value *v, bool raw) {
        char num[64];

        if (raw)
                fwrite(v->data, 1, v->len, stdout);
        else if (v->type == ASHM_KV_STRING) {
                fwrite(v->data, 1, v->len, stdout);
                putchar('\n');
        } else if (kv_value_format_number(v->type, v->data, v->len, num, sizeof(num))) {
                puts(num);
        } else {
                kv_put_hex(v->data, v->len);
                putchar('\n');
        }
}

static void kv_json_put_value(const struct value *v) {
        char num[64];

        if (v->type == ASHM_KV_STRING)
                json_put_string((const char *) v->data, stdout);
        else if (!kv_value_format_number(v->type, v->data, v->len, num, sizeof(num))) {
                putchar('"');
                kv_put_hex(v->data, v->len);
                putchar('"');
        } else if (strcmp(num, "nan") == 0 || strcmp(num, "inf") == 0 || strcmp(num, "-inf") == 0) {
                /* JSON has no nan or inf: they go as strings, which
                 * `set --type double` reads back. */
                printf("\"%s\"", num);
        } else {
                fputs(num, stdout);
        }
}

/* ---- ls, dump -------------------------------------------------------- */

struct entry {
        char *key;
        int type;
        size_t len;
};

struct entries {
        struct entry *e;
        size_t n, cap;
};

static void entries_done(struct entries *es) {
        for (size_t i = 0; i < es->n; i++)
                free(es->e[i].key);
        free(es->e);
}

static int entry_add(const char *key, int type, size_t value_len, void *userdata) {
        struct entries *es = userdata;

        if (es->n == es->cap) {
                size_t cap = es->cap ? es->cap * 2 : 64;
                struct entry *e = reallocarray(es->e, cap, sizeof(*e));

                if (!e)
                        return -ENOMEM;
                es->e = e;
                es->cap = cap;
        }
        es->e[es->n].key = strdup(key);
        if (!es->e[es->n].key)
                return -ENOMEM;
        es->e[es->n].type = type;
        es->e[es->n].len = value_len;
        es->n++;
        return 0;
}

static int entry_cmp(const void *a, const void *b) {
        const struct entry *x = a, *y = b;

        return strcmp(x->key, y->key);
}

/* Every key of one snapshot, sorted bytewise: the store keeps no order. */
static int entries_get(struct kv_cmd *c, struct entries *es) {
        int r = ashm_kv_foreach(c->kv, entry_add, es);

        if (r == -ENOMEM)
                return kv_oom();
        if (r < 0)
                return kv_failed(c, "list the keys of", NULL, r);
        if (es->n > 0)
                qsort(es->e, es->n, sizeof(*es->e), entry_cmp);
        return -1;
}

static const char *type_name(int type) {
        const char *n = ashm_kv_type_name(type);

        return n ? n : "?";
}

static int print_table(const struct entries *es) {
        size_t wtype = strlen("TYPE"), wsize = strlen("SIZE");
        char size[32];

        for (size_t i = 0; i < es->n; i++) {
                format_size_u64(es->e[i].len, size, sizeof(size));
                wtype = MAX(wtype, strlen(type_name(es->e[i].type)));
                wsize = MAX(wsize, text_width(size));
        }
        print_cell("TYPE", wtype, false);
        print_cell("SIZE", wsize, true);
        puts("KEY");
        for (size_t i = 0; i < es->n && !ferror(stdout); i++) {
                _cleanup_free_ char *key = cescape(es->e[i].key);

                if (!key)
                        return kv_oom();
                format_size_u64(es->e[i].len, size, sizeof(size));
                print_cell(type_name(es->e[i].type), wtype, false);
                print_cell(size, wsize, true);
                puts(key);
        }
        return EXIT_SUCCESS;
}

/* One object per line, so that grep still works on the output. */
static void print_entries_json(const struct entries *es) {
        putchar('[');
        for (size_t i = 0; i < es->n && !ferror(stdout); i++) {
                fputs(i == 0 ? "\n  {\"key\":" : ",\n  {\"key\":", stdout);
                json_put_string(es->e[i].key, stdout);
                printf(",\"type\":\"%s\",\"size\":%zu}", type_name(es->e[i].type), es->e[i].len);
        }
        puts(es->n ? "\n]" : "]");
}

int kv_ls(struct kv_cmd *c) {
        struct entries es = {};
        int r;

        r = entries_get(c, &es);
        if (r < 0 && c->json) {
                print_entries_json(&es);
                r = EXIT_SUCCESS;
        } else if (r < 0)
                r = print_table(&es);
        entries_done(&es);
        return r;
}

/* One key of dump: -1 if it went since the snapshot (not printed), or an
 * exit status. */
static int dump_one(struct kv_cmd *c, const char *key, bool first) {
        struct value v;
        int r;

        r = kv_value_get(c->kv, key, &v);
        if (r == -ENOENT)
                return -1;
        if (r == -ENOMEM)
                return kv_oom();
        if (r < 0)
                return kv_failed(c, "read", key, r);
        fputs(first ? "\n  {\"key\":" : ",\n  {\"key\":", stdout);
        json_put_string(key, stdout);
        printf(",\"type\":\"%s\",\"value\":", type_name(v.type));
        kv_json_put_value(&v);
        putchar('}');
        free(v.data);
        return EXIT_SUCCESS;
}

/* Keys whose record is damaged are left out, each said on stderr, and
 * the rest printed all the same: the exit status tells. */
int kv_dump(struct kv_cmd *c) {
        struct entries es = {};
        int r, status = EXIT_SUCCESS;
        bool first = true;

        r = entries_get(c, &es);
        if (r >= 0) {
                entries_done(&es);
                return r;
        }
        putchar('[');
        for (size_t i = 0; i < es.n && !ferror(stdout); i++) {
                r = dump_one(c, es.e[i].key, first);
                if (r == EXIT_SUCCESS)
                        first = false;
                else if (r >= 0)
                        status = r;
        }
        puts(first ? "]" : "\n]");
        entries_done(&es);
        return status;
}

/* ---- stats ------------------------------------------------------------ */

#define LABEL "%-12s "

static void print_stats(const ashm_kv_stats *s) {
        char a[32], b[32];

        printf(LABEL "%" PRIu64 "\n", "keys:", s->keys);
        format_size_u64(s->file_size, a, sizeof(a));
        format_size_u64(s->allocated, b, sizeof(b));
        printf(LABEL "%s (%s allocated)\n", "file:", a, b);
        format_size_u64(s->live_bytes, a, sizeof(a));
        format_size_u64(s->dead_bytes, b, sizeof(b));
        printf(LABEL "%s live, %s dead (overwritten or removed)\n", "records:", a, b);
        format_size_u64(s->log_used, a, sizeof(a));
        format_size_u64(s->log_size, b, sizeof(b));
        printf(LABEL "%s used of %s\n", "log:", a, b);
        printf(LABEL "%" PRIu64 " slots\n", "index:", s->slots);
        printf(LABEL "%" PRIu64 "\n", "rebuilds:", s->rebuilds);
        printf(LABEL "%" PRIu64 "\n", "recoveries:", s->recoveries);
        printf(LABEL "version %" PRIu32 "\n", "format:", s->version);
}

static void print_stats_json(const ashm_kv_stats *s) {
        printf("{\"keys\":%" PRIu64 ",\"file_size\":%" PRIu64 ",\"allocated\":%" PRIu64 ",\"live_bytes\":%" PRIu64
               ",\"dead_bytes\":%" PRIu64 ",\"log_used\":%" PRIu64 ",\"log_size\":%" PRIu64 ",\"slots\":%" PRIu64
               ",\"rebuilds\":%" PRIu64 ",\"recoveries\":%" PRIu64 ",\"version\":%" PRIu32 "}\n",
               s->keys, s->file_size, s->allocated, s->live_bytes, s->dead_bytes, s->log_used, s->log_size,
               s->slots, s->rebuilds, s->recoveries, s->version);
}

int kv_stats(struct kv_cmd *c) {
        ashm_kv_stats s;
        int r = ashm_kv_stats_get(c->kv, &s);

        if (r < 0)
                return kv_failed(c, "read the statistics of", NULL, r);
        if (c->json)
                print_stats_json(&s);
        else
                print_stats(&s);
        return EXIT_SUCCESS;
}

/* ---- check, repair --------------------------------------------------- */

/* One damaged part, as libashm found it. */
static void damage_print(uint64_t offset, uint64_t length, const char *what, void *userdata) {
        _cleanup_free_ char *w = cescape(what);

        printf("damaged: offset %" PRIu64 ", %" PRIu64 " byte%s: %s\n", offset, length, length == 1 ? "" : "s",
               w ? w : "?");
}

static const char *plural(uint64_t n) {
        return n == 1 ? "" : "s";
}

/* "3 damaged parts of the log, 1.2 KiB; 2 index errors; the header":
 * what the report counts, those that it counts at all. */
static void print_damage(const ashm_kv_report *rep) {
        const char *sep = "";
        char size[32];

        if (rep->damaged) {
                format_size_u64(rep->damaged_bytes, size, sizeof(size));
                printf("%" PRIu64 " damaged part%s of the log, %s", rep->damaged, plural(rep->damaged), size);
                sep = "; ";
        }
        if (rep->index_errors) {
                printf("%s%" PRIu64 " index error%s", sep, rep->index_errors, plural(rep->index_errors));
                sep = "; ";
        }
        if (!rep->header_ok)
                printf("%sthe header", sep);
}

/* "12 records, 10 keys" */
static void print_kept(const ashm_kv_report *rep) {
        printf("%" PRIu64 " record%s, %" PRIu64 " key%s", rep->records, plural(rep->records), rep->keys,
               plural(rep->keys));
}

static int check_failed(const struct kv_cmd *c, enum store_step step, int r) {
        char d[1100];

        if (r == -EBADMSG && *kv_detail(d, sizeof(d))) {
                fprintf(stderr, "ashm: cannot %s %s%s\n", c->verb->name, c->shown, d);
                return EXIT_FAILURE;
        }
        if (r == -EBADMSG) {
                fprintf(stderr, "ashm: %s is not an ashm kv store (it has no store header)\n", c->shown);
                return EXIT_FAILURE;
        }
        if (r == -ENOENT && step == STEP_KV) {
                fprintf(stderr, "ashm: no such store %s\n", c->shown);
                return EXIT_FAILURE;
        }
        if (step != STEP_KV)
                return kv_store_failed(c, step, r);
        fprintf(stderr, "ashm: cannot %s %s: %s\n", c->verb->name, c->shown, strerror(-r));
        return EXIT_FAILURE;
}

int kv_check(struct kv_cmd *c) {
        ashm_kv_report rep = {};
        enum store_step step;
        _cleanup_close_ int fd = -1;
        int r;

        fd = kv_store_fd(c->store, &step);
        if (fd < 0)
                return check_failed(c, step, fd);
        r = ashm_kv_check_fd(fd, damage_print, NULL, &rep);
        if (r < 0)
                return check_failed(c, STEP_KV, r);
        if (r == 0) {
                printf("%s: intact: ", c->shown);
                print_kept(&rep);
                putchar('\n');
                return EXIT_SUCCESS;
        }
        printf("%s: damaged (", c->shown);
        print_damage(&rep);
        fputs("); intact: ", stdout);
        print_kept(&rep);
        printf(", which 'ashm kv %s repair%s' keeps\n", c->shown, c->kind == STORE_FILE ? "" : " --output FILE");
        return EXIT_DAMAGED;
}

static void print_repaired(const struct kv_cmd *c, int r, const ashm_kv_report *rep, const char *to) {
        if (r == 0)
                printf("%s: intact, nothing to repair: ", c->shown);
        else {
                printf("repaired %s (", c->shown);
                print_damage(rep);
                fputs("): kept ", stdout);
        }
        print_kept(rep);
        if (to)
                printf("; %s is the %s copy\n", to, r == 0 ? "new" : "repaired");
        else if (r > 0)
                printf("; the damaged original is %s.damaged\n", c->shown);
        else
                putchar('\n');
}

/* In place: libashm writes the repaired store beside it and renames. */
static int repair_file(struct kv_cmd *c) {
        ashm_kv_report rep = {};
        int r;

        r = ashm_kv_repair(c->store, damage_print, NULL, &rep);
        if (r == -EBUSY) {
                fprintf(stderr, "ashm: %s is open in another process; repair it once nothing uses it\n", c->shown);
                return EXIT_FAILURE;
        }
        if (r < 0)
                return check_failed(c, STEP_KV, r);
        print_repaired(c, r, &rep, NULL);
        return EXIT_SUCCESS;
}

/* A new file, never one that exists: it may be the only good copy. */
static int repair_to(struct kv_cmd *c) {
        _cleanup_close_ int src = -1, dst = -1;
        _cleanup_free_ char *out = NULL;
        ashm_kv_report rep = {};
        enum store_step step;
        int r;

        if (kv_with_word(c->output, &out) < 0)
                return kv_oom();
        src = kv_store_fd(c->store, &step);
        if (src < 0)
                return check_failed(c, step, src);
        dst = open(c->output, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600);
        if (dst < 0) {
                fprintf(stderr, "ashm: cannot create %s: %s%s\n", out, strerror(errno),
                        errno == EEXIST ? " (give a new file to write the repaired store to)" : "");
                return EXIT_FAILURE;
        }
        r = ashm_kv_repair_fd(src, dst, damage_print, NULL, &rep);
        if (r >= 0 && fsync(dst) < 0)
                r = negative_errno();
        if (r < 0) {
                unlink(c->output);
                return check_failed(c, STEP_KV, r);
        }
        print_repaired(c, r, &rep, out);
        return EXIT_SUCCESS;
}

int kv_repair(struct kv_cmd *c) {
        return c->output ? repair_to(c) : repair_file(c);
}

int prepare_repair(struct kv_cmd *c) {
        if (c->output || c->kind == STORE_FILE)
                return -1;
        fprintf(stderr,
                "ashm kv repair: a store in a region cannot be replaced in place: give --output FILE for the "
                "repaired copy\n");
        return EXIT_USAGE;
}

int prepare_dump(struct kv_cmd *c) {
        if (c->json)
                return -1;
        fputs("ashm kv dump: --json is the only format for now: 'ashm kv STORE dump --json'\n", stderr);
        return EXIT_USAGE;
}

