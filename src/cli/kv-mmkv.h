/* SPDX-License-Identifier: MIT */
#pragma once

/* `ashm kv STORE import-mmkv` and `export-mmkv`: Tencent MMKV's data and
 * .crc files (as MMKV v1.3.3 writes them on Android) in and out of an
 * ashm store. The `ashm kv` dispatcher (kv.c) opens the store and calls
 * these with argv[0] = the verb's name; they print their results to
 * stdout and what went wrong to stderr, and return the exit status
 * (EXIT_SUCCESS, EXIT_FAILURE, or EXIT_USAGE when called wrongly).
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

#include "ashm.h"

int kv_import_mmkv(ashm_kv *kv, int argc, char *argv[]);
int kv_export_mmkv(ashm_kv *kv, int argc, char *argv[]);
