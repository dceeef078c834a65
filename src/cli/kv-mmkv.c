/* SPDX-License-Identifier: MIT */
/* ashm kv STORE import-mmkv / export-mmkv: Tencent MMKV's files in and
 * out of an ashm store, so that an Android app's MMKV data can be looked
 * at and moved. The format is src/shared/mmkv-format.c's; this file
 * parses the arguments, says what the format module found, and prints. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ashm.h"
#include "cli.h"
#include "kv-mmkv.h"
#include "kv-value.h"
#include "kv-cmd.h"
#include "macro.h"
#include "mmkv-format.h"

#define SHOW_BYTES_MAX 16u   /* bytes of a value shown in an error */

#define IMPORT "ashm kv import-mmkv"
#define EXPORT "ashm kv export-mmkv"

/* A message of the command called who, on stderr. */
_printf_(2, 3) static void say_as(const char *who, const char *fmt, ...) {
        va_list ap;

        fprintf(stderr, "%s: ", who);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

#define say(...) say_as(IMPORT, __VA_ARGS__)

/* Say what the format module found, and forget it. */
static void say_notes(const char *who, struct mmkv_notes *notes) {
        for (size_t i = 0; i < notes->n; i++)
                say_as(who, "%s", notes->v[i]);
        mmkv_notes_clear(notes);
}

/* Keys as bytes: memcmp() order, a prefix first. */
static int key_cmp(const void *a, size_t a_len, const void *b, size_t b_len) {
        int c = memcmp(a, b, MIN(a_len, b_len));

        return c ? c : (a_len > b_len) - (a_len < b_len);
}

static void print_hex(FILE *f, const uint8_t *p, size_t n) {
        for (size_t i = 0; i < n; i++)
                fprintf(f, "%02x", p[i]);
}

/* ------------------------------------------------------------------ */
/* import-mmkv                                                         */
/* ------------------------------------------------------------------ */

struct hint {
        const char *arg; /* "KEY=TYPE", as given */
        size_t key_len;
        size_t order; /* on the command line */
        int type;
        bool used;
};

/* By key, then by order: hints are looked up once per key of the store,
 * and a script may pass one for each of 100 000 keys. */
static int hint_cmp(const void *x, const void *y) {
        const struct hint *a = x, *b = y;
        int c = key_cmp(a->arg, a->key_len, b->arg, b->key_len);

        return c ? c : (a->order > b->order) - (a->order < b->order);
}

struct import_args {
        const char *path;
        struct hint *hints;
        size_t n_hints;
        int default_type;
        bool dry_run, force;
};

static int parse_hint(const char *arg, struct import_args *a) {
        const char *eq = strrchr(arg, '=');
        int type = eq ? mmkv_type_from_name(eq + 1, false) : -EINVAL;

        if (!eq || eq == arg || type < 0) {
                _cleanup_free_ char *shown = cescape(arg);

                say("--type takes KEY=TYPE with TYPE one of bool int32 int64 uint64 float double string bytes raw, "
                    "not '%s'", shown ? shown : "?");
                return -EINVAL;
        }
        a->hints[a->n_hints] = (struct hint) { .arg = arg, .key_len = (size_t) (eq - arg), .order = a->n_hints,
                                               .type = type };
        a->n_hints++;
        return 0;
}

/* The command line's words as the import uses them: 0, -EINVAL (said),
 * or -ENOMEM. */
static int import_args(const struct kv_mmkv_import *in, struct import_args *a) {
        *a = (struct import_args) { .path = in->path, .default_type = MMKV_TYPE_GUESS, .dry_run = in->dry_run,
                                    .force = in->force };
        if (in->default_type) {
                a->default_type = mmkv_type_from_name(in->default_type, true);
                if (a->default_type < 0) {
                        say("--default-type takes bool int32 int64 uint64 float double string bytes raw or guess, "
                            "not '%s'", in->default_type);
                        return -EINVAL;
                }
        }
        a->hints = calloc(in->n_types ? in->n_types : 1, sizeof(*a->hints));
        if (!a->hints)
                return -ENOMEM;
        for (size_t i = 0; i < in->n_types; i++)
                if (parse_hint(in->types[i], a) < 0) {
                        free(a->hints);
                        return -EINVAL;
                }
        if (a->n_hints > 1)
                qsort(a->hints, a->n_hints, sizeof(*a->hints), hint_cmp);
        return 0;
}

int kv_import_mmkv_check(const struct kv_mmkv_import *in) {
        struct import_args a;
        int r = import_args(in, &a);

        if (r == -ENOMEM)
                say("out of memory");
        else if (r >= 0)
                free(a.hints);
        return r == -EINVAL ? EXIT_USAGE : r < 0 ? EXIT_FAILURE : -1;
}

/* The --type for key, marking every one given for it as used: the last
 * one wins, as the last of an option usually does. */
static struct hint *hint_find(struct import_args *a, const char *key) {
        size_t len = strlen(key), lo = 0, hi = a->n_hints;
        struct hint *found = NULL;

        while (lo < hi) { /* the first hint not below key */
                size_t mid = lo + (hi - lo) / 2;

                if (key_cmp(a->hints[mid].arg, a->hints[mid].key_len, key, len) < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        for (; lo < a->n_hints && key_cmp(a->hints[lo].arg, a->hints[lo].key_len, key, len) == 0; lo++) {
                a->hints[lo].used = true;
                found = &a->hints[lo];
        }
        return found;
}

/* A value of the store, with its key. */
struct item {
        char *key; /* NUL-terminated */
        struct mmkv_value v;
};

/* With key expiration on, every value ends in its u32 expiry time (0:
 * never). Returns true if the key has expired (MMKV would not return
 * it), having said so. */
static bool strip_expiry(struct item *it, uint32_t now) {
        _cleanup_free_ char *shown = cescape(it->key);
        uint32_t ago = 0;
        int r = mmkv_value_strip_expiry(&it->v, now, &ago);

        if (r < 0)
                say("warning: '%s': %zu bytes, too short to end in an expiry time: taken as they are",
                    shown ? shown : "?", it->v.mmkv_len);
        else if (r > 0)
                say("'%s' expired %" PRIu32 " s ago: left out, as MMKV would", shown ? shown : "?", ago);
        return r > 0;
}

struct import {
        struct item *items;
        size_t n, expired, guessed, errors, left_out;
};

static void import_done(struct import *im) {
        for (size_t i = 0; i < im->n; i++)
                free(im->items[i].key);
        free(im->items);
}

/* A key as ashm takes it: 1 to ASHM_KV_KEY_MAX bytes, no NUL. -EINVAL,
 * said, if not. */
static int item_key(struct item *it, const struct mmkv_record *rec, bool force) {
        if (rec->key_len > ASHM_KV_KEY_MAX || memchr(rec->key, '\0', rec->key_len)) {
                say("a key of %" PRIu32 " bytes at body offset %zu %s: it cannot be an ashm key%s", rec->key_len,
                    rec->offset, rec->key_len > ASHM_KV_KEY_MAX ? "is too long" : "holds a NUL byte",
                    force ? "; left out (--force)" : "");
                return -EINVAL;
        }
        it->key = strndup((const char *) rec->key, rec->key_len);
        return it->key ? 0 : -ENOMEM;
}

/* Type one item by its hint, the default type, or a guess: 0, -EBADMSG
 * (said) when the value is not of the type named for it, or -ENOMEM. */
static int item_type(struct item *it, struct import_args *a, struct import *im) {
        struct hint *h = hint_find(a, it->key);
        int type = h ? h->type : a->default_type;
        const char *why;
        char reason[256];

        if (type == MMKV_TYPE_GUESS) {
                _cleanup_free_ char *word = NULL, *arg = NULL;

                mmkv_value_guess(&it->v, reason, sizeof(reason));
                im->guessed++;
                if (asprintf(&arg, "%s=%s", it->key, mmkv_type_name(it->v.type)) < 0 || !(word = shell_word(arg)))
                        return -ENOMEM;
                say("guessed --type %s: %s", word, reason);
                return 0;
        }
        why = mmkv_value_decode(&it->v, type);
        if (why) {
                _cleanup_free_ char *shown = cescape(it->key);
                size_t n = it->v.mmkv_len;

                fprintf(stderr, "%s: '%s' is not an MMKV %s: %s (%zu bytes: ", IMPORT, shown ? shown : "?",
                        mmkv_type_name(type), why, n);
                print_hex(stderr, it->v.mmkv, MIN(n, SHOW_BYTES_MAX));
                if (a->force)
                        fprintf(stderr, "%s); left out (--force)\n", n > SHOW_BYTES_MAX ? "..." : "");
                else
                        fprintf(stderr, "%s); --type %s=raw keeps the bytes\n", n > SHOW_BYTES_MAX ? "..." : "",
                                shown ? shown : "KEY");
                return -EBADMSG;
        }
        return 0;
}

/* Live records to typed items. A key or value that cannot be imported
 * is said and counted: in im->left_out with --force, else in
 * im->errors. -ENOMEM when out of memory. */
static int import_items(struct mmkv_records *rs, struct import_args *a, bool expiry, struct import *im) {
        uint32_t now = (uint32_t) time(NULL);
        int r;

        im->items = calloc(rs->n ? rs->n : 1, sizeof(*im->items));
        if (!im->items)
                return -ENOMEM;
        for (size_t i = 0; i < rs->n; i++) {
                struct item *it = &im->items[im->n];

                *it = (struct item) { .v = { .mmkv = rs->v[i].value, .mmkv_len = rs->v[i].value_len } };
                r = item_key(it, &rs->v[i], a->force);
                if (r == 0 && expiry && strip_expiry(it, now)) {
                        im->expired++;
                        r = 1;
                } else if (r == 0)
                        r = item_type(it, a, im);
                if (r == -ENOMEM)
                        return r;
                if (r == 0) {
                        im->n++;
                        continue;
                }
                free(it->key);
                if (r < 0 && a->force)
                        im->left_out++;
                else if (r < 0)
                        im->errors++;
        }
        return 0;
}

static void print_string(FILE *f, const uint8_t *p, size_t len) {
        _cleanup_free_ char *s = strndup((const char *) p, len), *shown = s ? cescape(s) : NULL;

        fputs(shown ? shown : "?", f);
}

/* KEY<TAB>TYPE<TAB>VALUE, the key and strings escaped as ashm prints
 * names, bytes in hex. */
static void print_item(FILE *f, const struct item *it) {
        _cleanup_free_ char *key = cescape(it->key);
        const uint8_t *v = mmkv_value_data(&it->v);
        char num[64];

        fprintf(f, "%s\t%s\t", key ? key : "?", mmkv_type_name(it->v.type));
        if (it->v.type == ASHM_KV_STRING)
                print_string(f, v, it->v.len);
        else if (kv_value_format_number(it->v.type, v, it->v.len, num, sizeof(num)))
                fputs(num, f);
        else
                print_hex(f, v, it->v.len);
        fputc('\n', f);
}

static int import_write(ashm_kv *kv, const struct import *im, const char *path) {
        for (size_t i = 0; i < im->n; i++) {
                const struct item *it = &im->items[i];
                int type = it->v.type == MMKV_TYPE_RAW ? ASHM_KV_BYTES : it->v.type;
                int r = ashm_kv_set(kv, it->key, type, mmkv_value_data(&it->v), it->v.len);

                if (r < 0) {
                        _cleanup_free_ char *shown = cescape(it->key);

                        say("cannot set '%s': %s; %zu of the %zu keys were imported", shown ? shown : "?",
                            strerror(-r), i, im->n);
                        return EXIT_FAILURE;
                }
        }
        printf("imported %zu keys from %s", im->n, path);
        if (im->guessed)
                printf(", %zu types guessed", im->guessed);
        if (im->left_out)
                printf(", %zu keys left out", im->left_out);
        if (im->expired)
                printf(", %zu expired keys left out", im->expired);
        printf("\n");
        return EXIT_SUCCESS;
}

/* After typing: unused hints, the summary of guesses, then write or
 * print. */
static int import_finish(ashm_kv *kv, struct import_args *a, struct import *im) {
        for (size_t i = 0; i < a->n_hints; i++)
                if (!a->hints[i].used) {
                        _cleanup_free_ char *shown = cescape(a->hints[i].arg);

                        say("warning: --type %s: no such key in %s", shown ? shown : "?", a->path);
                }
        if (im->errors) {
                say("%zu %s: nothing imported", im->errors, im->errors == 1 ? "problem" : "problems");
                return EXIT_FAILURE;
        }
        if (im->guessed)
                say("guessed %zu of %zu types: check them, and give --type KEY=TYPE where a guess is wrong",
                    im->guessed, im->n);
        if (a->dry_run) {
                for (size_t i = 0; i < im->n; i++)
                        print_item(stdout, &im->items[i]);
                return EXIT_SUCCESS;
        }
        return import_write(kv, im, a->path);
}

int kv_import_mmkv(ashm_kv *kv, const struct kv_mmkv_import *args) {
        struct import_args a;
        struct mmkv_image img = {};
        struct mmkv_records rs = {};
        struct mmkv_notes notes = {};
        struct import im = {};
        int r, ret = EXIT_FAILURE;

        r = import_args(args, &a);
        if (r < 0) {
                if (r == -ENOMEM)
                        say("out of memory");
                return r == -EINVAL ? EXIT_USAGE : EXIT_FAILURE;
        }
        r = mmkv_image_load(a.path, &img, &notes);
        say_notes(IMPORT, &notes);
        if (r < 0)
                goto out;
        r = mmkv_decode(&img, a.force, &rs, &notes);
        say_notes(IMPORT, &notes);
        if (r == -ENOMEM)
                say("out of memory");
        if (r < 0)
                goto out;
        if (mmkv_image_expires_keys(&img))
                say("key expiration is on in %s: each value's expiry time is dropped (ashm keys do not expire)",
                    a.path);
        r = import_items(&rs, &a, mmkv_image_expires_keys(&img), &im);
        if (r < 0) {
                say("out of memory");
                goto out;
        }
        ret = import_finish(kv, &a, &im);
out:
        import_done(&im);
        mmkv_records_done(&rs);
        mmkv_image_done(&img);
        free(a.hints);
        return ret;
}

/* ------------------------------------------------------------------ */
/* export-mmkv                                                         */
/* ------------------------------------------------------------------ */

/* ------------------------------------------------------------------ */
/* export-mmkv                                                         */
/* ------------------------------------------------------------------ */

struct export_key {
        char *key;
        size_t len; /* of the value, as foreach saw it */
};

struct export_keys {
        struct export_key *v;
        size_t n, cap;
};

static int collect_key(const char *key, int type, size_t value_len, void *userdata) {
        struct export_keys *ks = userdata;

        if (ks->n == ks->cap) {
                size_t cap = ks->cap ? ks->cap * 2 : 256;
                struct export_key *v = reallocarray(ks->v, cap, sizeof(*v));

                if (!v)
                        return -ENOMEM;
                ks->v = v;
                ks->cap = cap;
        }
        ks->v[ks->n].key = strdup(key);
        if (!ks->v[ks->n].key)
                return -ENOMEM;
        ks->v[ks->n++].len = value_len;
        return 0;
}

static int export_key_cmp(const void *a, const void *b) {
        return strcmp(((const struct export_key *) a)->key, ((const struct export_key *) b)->key);
}

/* Get one value whole, however it changed since foreach saw it. */
static int get_value(ashm_kv *kv, const char *key, size_t hint, int *ret_type, uint8_t **ret, size_t *ret_len) {
        size_t size = hint, len = 0;

        for (;;) {
                _cleanup_free_ uint8_t *v = malloc(size ? size : 1);
                int r;

                if (!v)
                        return -ENOMEM;
                r = ashm_kv_get(kv, key, ret_type, v, size, &len);
                if (r < 0)
                        return r;
                if (len <= size) {
                        *ret = TAKE_PTR(v);
                        *ret_len = len;
                        return 0;
                }
                size = len;
        }
}

/* The records of every key into w (after its header and holder). */
static int export_records(ashm_kv *kv, struct export_keys *ks, struct mmkv_writer *w, size_t *ret_n) {
        size_t n = 0;

        for (size_t i = 0; i < ks->n; i++) {
                _cleanup_free_ char *shown = NULL;
                _cleanup_free_ uint8_t *v = NULL;
                size_t len;
                int type, r;

                r = get_value(kv, ks->v[i].key, ks->v[i].len, &type, &v, &len);
                if (r == -ENOENT)
                        continue; /* removed since foreach: not in the snapshot we write */
                if (r >= 0)
                        r = mmkv_writer_add(w, ks->v[i].key, strlen(ks->v[i].key), type, v, len);
                if (r < 0) {
                        shown = cescape(ks->v[i].key);
                        say_as(EXPORT, "cannot export '%s': %s", shown ? shown : "?",
                            r == -EPROTOTYPE ? "a type MMKV has no encoding for" : strerror(-r));
                        return r;
                }
                n++;
        }
        *ret_n = n;
        return 0;
}

static void export_keys_done(struct export_keys *ks) {
        for (size_t i = 0; i < ks->n; i++)
                free(ks->v[i].key);
        free(ks->v);
}

int kv_export_mmkv(ashm_kv *kv, const char *path) {
        struct export_keys ks = {};
        struct mmkv_writer w = {};
        struct mmkv_notes notes = {};
        size_t n;
        int r, ret = EXIT_FAILURE;

        r = ashm_kv_foreach(kv, collect_key, &ks);
        if (r < 0) {
                say_as(EXPORT, "cannot list the keys of the store: %s", strerror(-r));
                goto out;
        }
        if (ks.n > 1)
                qsort(ks.v, ks.n, sizeof(*ks.v), export_key_cmp);
        if (mmkv_writer_init(&w) < 0) {
                say_as(EXPORT, "out of memory");
                goto out;
        }
        if (export_records(kv, &ks, &w, &n) < 0)
                goto out;
        r = mmkv_writer_save(&w, path, &notes);
        say_notes(EXPORT, &notes);
        if (r < 0)
                goto out;
        printf("exported %zu keys to %s and %s.crc\n", n, path, path);
        ret = EXIT_SUCCESS;
out:
        mmkv_writer_done(&w);
        export_keys_done(&ks);
        return ret;
}
