/* SPDX-License-Identifier: MIT */
#pragma once

/* `ashm kv STORE import-mmkv` and `export-mmkv`: Tencent MMKV's data and
 * .crc files (as MMKV v1.3.3 writes them on Android) in and out of an
 * ashm store, through src/shared/mmkv-format.h. The `ashm kv` dispatcher
 * (kv-cmd.c) parses the command line and opens the store; these print their
 * results to stdout and what went wrong to stderr, and return the exit
 * status (EXIT_SUCCESS, EXIT_FAILURE, or EXIT_USAGE).
 *
 * import-mmkv MMKV_DATA_FILE [--type KEY=TYPE]... [--default-type TYPE]
 *             [--dry-run] [--force]
 *   Verifies MMKV_DATA_FILE against MMKV_DATA_FILE.crc and sets every
 *   live key in the store. MMKV keeps no types: --type gives one per key,
 *   --default-type one for the others, and without either the type is
 *   guessed and each guess is printed on stderr. TYPE: bool int32 int64
 *   uint64 float double string bytes, or raw (the value's bytes exactly
 *   as MMKV stored them, as bytes); --default-type also takes guess.
 *   --dry-run prints KEY<TAB>TYPE<TAB>VALUE per key instead of importing.
 *   --force imports what decodes when the checksum matches nothing.
 *
 * export-mmkv MMKV_DATA_FILE
 *   Writes every key of the store to MMKV_DATA_FILE and
 *   MMKV_DATA_FILE.crc, replacing both (each by rename). */

#include <stdbool.h>
#include <stddef.h>

#include "ashm.h"

struct kv_mmkv_import {
        const char *path;
        const char **types; /* each --type KEY=TYPE, as given */
        size_t n_types;
        const char *default_type; /* NULL: guess */
        bool dry_run, force;
};

/* Check the words of an import before any store is opened: -1 to go on,
 * else the exit status (the problem said). */
int kv_import_mmkv_check(const struct kv_mmkv_import *args);

int kv_import_mmkv(ashm_kv *kv, const struct kv_mmkv_import *args);
int kv_export_mmkv(ashm_kv *kv, const char *path);
