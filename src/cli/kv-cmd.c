/* SPDX-License-Identifier: MIT */
/* ashm kv STORE COMMAND: read and change a key-value store (ashm_kv_*),
 * on a file, on a region published with ashmd (@NAME), or on what another
 * process holds (PID:FD). This file holds the table of commands, reads
 * their arguments, and runs set, get, del, count and compact; kv-store.c
 * finds the store, kv-report.c shows and checks it, kv-mmkv.c moves MMKV
 * files in and out; libashm and src/shared/ do the rest.
 *
 * Arguments are read by hand rather than with getopt: values are often
 * negative numbers ("set n -5 --type int32"), which getopt would take
 * for options. */
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

/* ---- values: text to encoding --------------------------------------- */

static int bad_value(const struct kv_cmd *c, const char *value) {
        _cleanup_free_ char *v = cescape(value);

        if (!v)
                return kv_oom();
        fprintf(stderr, "ashm kv set: '%s' is not %s%s: expected %s\n", v,
                c->type == ASHM_KV_INT32 || c->type == ASHM_KV_INT64 ? "an "
                : c->type == ASHM_KV_BYTES                          ? ""
                                                                    : "a ",
                ashm_kv_type_name(c->type), kv_value_expected(c->type));
        return EXIT_USAGE;
}

static int value_from_file(struct kv_cmd *c) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *f = NULL;
        bool in = strcmp(c->file, "-") == 0;
        int r;

        if (kv_with_word(c->file, &f) < 0)
                return kv_oom();
        fd = in ? STDIN_FILENO : open(c->file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                fprintf(stderr, "ashm: cannot open %s: %s\n", f, strerror(errno));
                return EXIT_FAILURE;
        }
        r = read_all(fd, ASHM_KV_VALUE_MAX, &c->data, &c->len);
        if (in)
                fd = -1; /* not ours to close */
        if (r == -EFBIG)
                fprintf(stderr, "ashm: %s is larger than the %u MiB a value may hold\n", in ? "standard input" : f,
                        ASHM_KV_VALUE_MAX >> 20);
        else if (r < 0)
                fprintf(stderr, "ashm: cannot read %s: %s\n", in ? "standard input" : f, strerror(-r));
        if (r < 0)
                return EXIT_FAILURE;
        if (c->type == ASHM_KV_STRING && memchr(c->data, '\0', c->len)) {
                fprintf(stderr, "ashm kv set: %s holds a NUL byte, which a string cannot; use --type bytes\n",
                        in ? "standard input" : f);
                return EXIT_USAGE;
        }
        return -1;
}

static int value_from_text(struct kv_cmd *c, const char *text) {
        int r;

        if (c->type == ASHM_KV_STRING) {
                c->data = (uint8_t *) strdup(text);
                c->len = strlen(text);
                return c->data ? -1 : kv_oom();
        }
        if (c->type == ASHM_KV_BYTES) {
                r = kv_value_parse_hex(text, &c->data, &c->len);
                if (r == -ENOMEM)
                        return kv_oom();
                return r < 0 ? bad_value(c, text) : -1;
        }
        return kv_value_parse_number(c->type, text, c->num, &c->len) ? -1 : bad_value(c, text);
}

static int check_key(const struct kv_cmd *c, const char *key) {
        size_t n = strlen(key);

        if (n >= 1 && n <= ASHM_KV_KEY_MAX)
                return -1;
        fprintf(stderr, "ashm kv %s: a key is 1 to %d bytes; this one has %zu\n", c->verb->name, ASHM_KV_KEY_MAX,
                n);
        return EXIT_USAGE;
}

static int prepare_key(struct kv_cmd *c) {
        return check_key(c, c->args[0]);
}

/* --type TYPE, for set and get: -1 to go on, or EXIT_USAGE. */
static int parse_type(struct kv_cmd *c) {
        c->type = ASHM_KV_STRING;
        if (c->type_name) {
                c->type = ashm_kv_type_from_name(c->type_name);
                if (c->type < 0) {
                        _cleanup_free_ char *t = cescape(c->type_name);

                        fprintf(stderr,
                                "ashm kv %s: unknown type '%s'; expected bool, int32, int64, uint64, float, double, "
                                "string or bytes\n",
                                c->verb->name, t ? t : "?");
                        return EXIT_USAGE;
                }
        }
        return -1;
}

static int prepare_get(struct kv_cmd *c) {
        int r = parse_type(c);

        return r >= 0 ? r : prepare_key(c);
}

static int prepare_set(struct kv_cmd *c) {
        int r;

        r = parse_type(c);
        if (r >= 0)
                return r;
        if (c->file && c->nargs != 1) {
                fputs("ashm kv set: expected KEY --file FILE: the file holds the value\n", stderr);
                return EXIT_USAGE;
        }
        if (!c->file && c->nargs != 2) {
                fputs("ashm kv set: expected KEY VALUE, or KEY --file FILE; see 'ashm help kv'\n", stderr);
                return EXIT_USAGE;
        }
        if (c->file && c->type != ASHM_KV_STRING && c->type != ASHM_KV_BYTES) {
                fputs("ashm kv set: --file is for string and bytes values; give a number as VALUE\n", stderr);
                return EXIT_USAGE;
        }
        r = check_key(c, c->args[0]);
        if (r >= 0)
                return r;
        return c->file ? value_from_file(c) : value_from_text(c, c->args[1]);
}

/* "an" before int32 and int64, as one says them, else "a". */
static const char *article(int type) {
        return type == ASHM_KV_INT32 || type == ASHM_KV_INT64 ? "an" : "a";
}

/* ---- set, get, del, count, compact ---------------------------------- */

static int kv_set(struct kv_cmd *c) {
        const void *value = c->data ? (const void *) c->data : (const void *) c->num;
        int r;

        r = ashm_kv_set(c->kv, c->args[0], c->type, value, c->len);
        if (r == -ENOSPC || r == -EFBIG) {
                fprintf(stderr, "ashm: cannot set a key in %s: the store cannot grow: %s\n", c->shown, strerror(-r));
                return EXIT_FAILURE;
        }
        return r < 0 ? kv_failed(c, "set", c->args[0], r) : EXIT_SUCCESS;
}

static int kv_get(struct kv_cmd *c) {
        struct value v;
        int r;

        r = kv_value_get(c->kv, c->args[0], &v);
        if (r == -ENOMEM)
                return kv_oom();
        if (r < 0)
                return kv_failed(c, "read", c->args[0], r);
        /* --type: a script that expects an int32 must not get a string
         * it would misread. Said as libashm's typed getters say it. */
        if (c->type_name && v.type != c->type) {
                _cleanup_free_ char *k = NULL;

                free(v.data);
                if (kv_with_word(c->args[0], &k) < 0)
                        return kv_oom();
                fprintf(stderr, "ashm: key %s in %s holds %s %s, not %s %s\n", k, c->shown, article(v.type),
                        ashm_kv_type_name(v.type) ?: "?", article(c->type), ashm_kv_type_name(c->type));
                return EXIT_FAILURE;
        }
        kv_print_value(&v, c->raw);
        free(v.data);
        return EXIT_SUCCESS;
}

static int kv_del(struct kv_cmd *c) {
        int r = ashm_kv_remove(c->kv, c->args[0]);

        return r < 0 ? kv_failed(c, "remove", c->args[0], r) : EXIT_SUCCESS;
}

static int kv_count(struct kv_cmd *c) {
        uint64_t n;
        int r = ashm_kv_count(c->kv, &n);

        if (r < 0)
                return kv_failed(c, "count the keys of", NULL, r);
        printf("%" PRIu64 "\n", n);
        return EXIT_SUCCESS;
}

static int kv_compact(struct kv_cmd *c) {
        ashm_kv_stats before, after;
        char a[32], b[32];
        int r;

        r = ashm_kv_stats_get(c->kv, &before);
        if (r >= 0)
                r = ashm_kv_compact(c->kv);
        if (r >= 0)
                r = ashm_kv_stats_get(c->kv, &after);
        if (r < 0)
                return kv_failed(c, "compact", NULL, r);
        format_size_u64(before.log_used, a, sizeof(a));
        format_size_u64(after.log_used, b, sizeof(b));
        printf("compacted %s: log %s before, %s after\n", c->shown, a, b);
        return EXIT_SUCCESS;
}

/* ---- the table of commands ------------------------------------------- */

/* ---- import-mmkv, export-mmkv (kv-mmkv.c) -------------------------- */

static int prepare_import(struct kv_cmd *c) {
        c->mmkv.path = c->args[0];
        return kv_import_mmkv_check(&c->mmkv);
}

static int kv_import(struct kv_cmd *c) {
        return kv_import_mmkv(c->kv, &c->mmkv);
}

static int kv_export(struct kv_cmd *c) {
        return kv_export_mmkv(c->kv, c->args[0]);
}

static const struct kv_verb kv_verbs[] = {
        { "set", kv_set, prepare_set, ASHM_KV_CREATE, OPT_TYPE | OPT_FILE, 1, 2, "KEY VALUE, or KEY --file FILE" },
        { "get", kv_get, prepare_get, ASHM_KV_RDONLY, OPT_RAW | OPT_TYPE, 1, 1, "KEY" },
        { "del", kv_del, prepare_key, 0, 0, 1, 1, "KEY" },
        { "ls", kv_ls, NULL, ASHM_KV_RDONLY, OPT_JSON, 0, 0, NULL },
        { "dump", kv_dump, prepare_dump, ASHM_KV_RDONLY, OPT_JSON, 0, 0, NULL },
        { "count", kv_count, NULL, ASHM_KV_RDONLY, 0, 0, 0, NULL },
        { "stats", kv_stats, NULL, ASHM_KV_RDONLY, OPT_JSON, 0, 0, NULL },
        { "compact", kv_compact, NULL, 0, 0, 0, 0, NULL },
        { "check", kv_check, NULL, NO_OPEN, 0, 0, 0, NULL },
        { "repair", kv_repair, prepare_repair, NO_OPEN, OPT_OUTPUT, 0, 0, NULL },
        { "import-mmkv", kv_import, prepare_import, ASHM_KV_CREATE, OPT_HINT | OPT_DEFAULT_TYPE | OPT_DRY_RUN | OPT_FORCE,
          1, 1, "MMKV_DATA_FILE" },
        { "export-mmkv", kv_export, NULL, ASHM_KV_RDONLY, 0, 1, 1, "MMKV_DATA_FILE" },
};

static const struct kv_verb *kv_verb_find(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(kv_verbs); i++)
                if (strcmp(kv_verbs[i].name, name) == 0)
                        return &kv_verbs[i];
        return NULL;
}

/* ---- arguments -------------------------------------------------------- */

static const struct kv_option {
        const char *name;
        unsigned bit;
        bool takes_arg;
} kv_options[] = {
        { "--type", OPT_TYPE, true },
        { "--file", OPT_FILE, true },
        { "--raw", OPT_RAW, false },
        { "--json", OPT_JSON, false },
        { "--output", OPT_OUTPUT, true },
        { "--type", OPT_HINT, true },
        { "--default-type", OPT_DEFAULT_TYPE, true },
        { "--dry-run", OPT_DRY_RUN, false },
        { "--force", OPT_FORCE, false },
};

static bool is_help(const char *arg) {
        return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

/* "-5", "-.5", "-inf", "-nan": a negative number, not an option. */
static bool looks_negative(const char *s) {
        return s[0] == '-' &&
               ((s[1] >= '0' && s[1] <= '9') || s[1] == '.' || strncasecmp(s + 1, "inf", 3) == 0 ||
                strncasecmp(s + 1, "nan", 3) == 0);
}

static int bad_option(const struct kv_cmd *c, const char *what, const char *arg, const char *hint) {
        _cleanup_free_ char *a = cescape(arg);

        fprintf(stderr, "ashm kv %s: %s '%s'%s; see 'ashm help kv'\n", c->verb->name, what, a ? a : "?", hint);
        return EXIT_USAGE;
}

static void option_set(struct kv_cmd *c, unsigned bit, const char *value) {
        switch (bit) {
        case OPT_TYPE:
                c->type_name = value;
                break;
        case OPT_FILE:
                c->file = value;
                break;
        case OPT_RAW:
                c->raw = true;
                break;
        case OPT_JSON:
                c->json = true;
                break;
        case OPT_HINT:
                c->mmkv.types[c->mmkv.n_types++] = value;
                break;
        case OPT_DEFAULT_TYPE:
                c->mmkv.default_type = value;
                break;
        case OPT_DRY_RUN:
                c->mmkv.dry_run = true;
                break;
        case OPT_FORCE:
                c->mmkv.force = true;
                break;
        default:
                c->output = value;
                break;
        }
}

/* The option at argv[*i], "--name VALUE" or "--name=VALUE". */
static int parse_option(struct kv_cmd *c, int argc, char *argv[], int *i) {
        const char *arg = argv[*i], *eq = strchr(arg, '=');
        size_t n = eq ? (size_t) (eq - arg) : strlen(arg);

        if (is_help(arg)) {
                c->help = true;
                return -1;
        }
        for (size_t k = 0; k < ELEMENTSOF(kv_options); k++) {
                const struct kv_option *o = &kv_options[k];

                if (strlen(o->name) != n || strncmp(arg, o->name, n) != 0 || !(c->verb->options & o->bit))
                        continue;
                if (!o->takes_arg && eq)
                        return bad_option(c, "no value goes with option", o->name, "");
                if (o->takes_arg && !eq && *i + 1 >= argc)
                        return bad_option(c, "missing argument to option", arg, "");
                option_set(c, o->bit, !o->takes_arg ? NULL : eq ? eq + 1 : argv[++*i]);
                return -1;
        }
        return bad_option(c, "unknown option", arg,
                          c->verb->max_args > 0 ? " (put -- before a KEY or VALUE that starts with a dash)" : "");
}

/* argv[0] is the kv command. Options may come anywhere; "--" ends them. */
static int parse_args(struct kv_cmd *c, int argc, char *argv[]) {
        bool options = true;
        int r;

        for (int i = 1; i < argc; i++) {
                const char *arg = argv[i];

                if (options && strcmp(arg, "--") == 0)
                        options = false;
                else if (options && arg[0] == '-' && arg[1] && !looks_negative(arg)) {
                        r = parse_option(c, argc, argv, &i);
                        if (r >= 0)
                                return r;
                } else if (c->nargs < c->verb->max_args)
                        c->args[c->nargs++] = arg;
                else
                        return bad_option(c, "unexpected argument", arg, "");
        }
        if (c->help || c->nargs >= c->verb->min_args)
                return -1;
        fprintf(stderr, "ashm kv %s: expected %s; see 'ashm help kv'\n", c->verb->name, c->verb->args);
        return EXIT_USAGE;
}

/* A malformed @NAME or PID:FD is a usage error, said before anything is
 * looked up. */
static int check_store(struct kv_cmd *c) {
        int pid, fd;

        if (c->kind == STORE_NAME && !cli_name_valid(c->store + 1))
                return cli_bad_name("kv", c->store + 1);
        if (c->kind == STORE_TARGET && !cli_parse_target(c->store, &pid, &fd)) {
                fprintf(stderr,
                        "ashm kv: %s is not a valid PID:FD (a process ID from 1 and an fd, each at most %d); "
                        "for a file of this name use ./%s\n",
                        c->store, INT_MAX, c->store);
                return EXIT_USAGE;
        }
        return -1;
}

/* A dry run of import-mmkv writes nothing to the store: it gets an empty
 * one in a memfd instead, so that no STORE is created by looking. The
 * region is as large as a store may be (sparse: it costs what is
 * written), as a region sealed against growing keeps its size. */
static int scratch_store(ashm_kv **ret_kv) {
        ashm_region *region = NULL;
        int r;

        r = ashm_region_create("ashm-kv-dry-run", UINT64_C(64) << 30, 0, &region);
        if (r < 0)
                return r;
        r = ashm_kv_open_region(region, ASHM_KV_CREATE, ret_kv);
        ashm_region_close(region);
        return r;
}

static int kv_run(struct kv_cmd *c, int argc, char *argv[]) {
        enum store_step step;
        int r;

        r = parse_args(c, argc, argv);
        if (r >= 0)
                return r;
        if (c->help) {
                cli_verb_help("kv", stdout);
                return EXIT_SUCCESS;
        }
        r = c->verb->prepare ? c->verb->prepare(c) : -1;
        if (r >= 0)
                return r;
        if (c->mmkv.dry_run) {
                step = STEP_KV;
                r = scratch_store(&c->kv);
                if (r < 0)
                        return kv_store_failed(c, step, r);
        } else if (c->verb->open != NO_OPEN) {
                r = kv_store_open_step(c->store, c->verb->open, &c->kv, &step);
                if (r < 0)
                        return kv_store_failed(c, step, r);
        }
        return c->verb->run(c);
}

static int kv_usage_error(int argc) {
        if (argc < 2)
                fputs("ashm kv: expected a STORE and a command, e.g. 'ashm kv app.kv ls'; see 'ashm help kv'\n",
                      stderr);
        else
                fputs("ashm kv: expected a command after STORE, e.g. ls, get KEY or set KEY VALUE; "
                      "see 'ashm help kv'\n",
                      stderr);
        return EXIT_USAGE;
}

int verb_kv(int argc, char *argv[]) {
        struct kv_cmd c = {};
        int r;

        if ((argc >= 2 && is_help(argv[1])) || (argc >= 3 && is_help(argv[2]))) {
                cli_verb_help("kv", stdout);
                return EXIT_SUCCESS;
        }
        if (argc < 3)
                return kv_usage_error(argc);
        c.store = argv[1];
        c.kind = kv_store_kind(c.store);
        c.verb = kv_verb_find(argv[2]);
        if (!c.verb) {
                _cleanup_free_ char *v = cescape(argv[2]);

                fprintf(stderr, "ashm kv: unknown command '%s'; see 'ashm help kv'\n", v ? v : "?");
                return EXIT_USAGE;
        }
        r = check_store(&c);
        if (r >= 0)
                return r;
        if (kv_with_word(c.store, &c.shown) < 0)
                return kv_oom();
        /* Room for every --type: no more than there are words. */
        c.mmkv.types = calloc((size_t) argc, sizeof(*c.mmkv.types));
        if (!c.mmkv.types)
                return kv_oom();
        r = kv_run(&c, argc - 2, argv + 2);
        free(c.mmkv.types);
        ashm_kv_close(c.kv);
        free(c.data);
        free(c.shown);
        return r;
}

