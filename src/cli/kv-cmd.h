/* SPDX-License-Identifier: MIT */
#pragma once

/* What the files of `ashm kv` share (kv-cmd.c: the command table, arguments,
 * set, get; kv-store.c: finding the store, and failures in words;
 * kv-report.c: ls, dump, stats, check, repair). Private to src/cli/. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ashm.h"
#include "kv-mmkv.h"

enum store_kind { STORE_FILE, STORE_NAME, STORE_TARGET };

/* Which step of opening a store failed, to say why in the right words. */
enum store_step { STEP_LOOKUP, STEP_PROC, STEP_KV };

enum {
        OPT_TYPE = 1u << 0,
        OPT_FILE = 1u << 1,
        OPT_RAW = 1u << 2,
        OPT_JSON = 1u << 3,
        OPT_OUTPUT = 1u << 4,
        OPT_HINT = 1u << 5,         /* import-mmkv's --type KEY=TYPE, repeated */
        OPT_DEFAULT_TYPE = 1u << 6,
        OPT_DRY_RUN = 1u << 7,
        OPT_FORCE = 1u << 8,
};

/* Not opened by the dispatcher: check and repair read the store's fd. */
#define NO_OPEN (~0u)

struct kv_cmd;

struct kv_verb {
        const char *name;
        int (*run)(struct kv_cmd *c);
        /* Before the store is opened (which may create it): check the
         * arguments, read the value. -1 to go on, or an exit status. */
        int (*prepare)(struct kv_cmd *c);
        unsigned open; /* flags for kv_store_open(), or NO_OPEN */
        unsigned options;
        int min_args, max_args;
        const char *args; /* what the arguments are, for messages */
};

struct kv_cmd {
        const struct kv_verb *verb;
        const char *store;
        char *shown; /* store as a shell word, for messages */
        enum store_kind kind;
        ashm_kv *kv;

        const char *type_name, *file, *output;
        bool json, raw, help;
        const char *args[2];
        int nargs;
        struct kv_mmkv_import mmkv; /* import-mmkv's words */

        /* set: the value, encoded as enum ashm_kv_type says. */
        int type;
        uint8_t num[8];
        uint8_t *data; /* string or bytes, or NULL: num */
        size_t len;
};


/* kv-store.c */
enum store_kind kv_store_kind(const char *store);
int kv_store_open_step(const char *store, unsigned flags, ashm_kv **ret_kv, enum store_step *ret_step);
int kv_store_fd(const char *store, enum store_step *ret_step);
int kv_oom(void);
int kv_with_word(const char *s, char **ret);
const char *kv_detail(char *buf, size_t len);
int kv_failed(const struct kv_cmd *c, const char *doing, const char *key, int r);
int kv_store_failed(const struct kv_cmd *c, enum store_step step, int r);

/* kv-report.c */
struct value {
        int type;
        uint8_t *data; /* NUL-terminated past len, for strings */
        size_t len;
};
int kv_value_get(ashm_kv *kv, const char *key, struct value *ret);
void kv_print_value(const struct value *v, bool raw);
int kv_ls(struct kv_cmd *c);
int kv_dump(struct kv_cmd *c);
int prepare_dump(struct kv_cmd *c);
int kv_stats(struct kv_cmd *c);
int kv_check(struct kv_cmd *c);
int kv_repair(struct kv_cmd *c);
int prepare_repair(struct kv_cmd *c);

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
