/* SPDX-License-Identifier: MIT */
#pragma once

/* What kv.c shares with kv-check.c. */

#include <stdbool.h>
#include <stdint.h>

#include "kv-format.h"
#include "macro.h"

/* Set the thread's error detail (ashm_kv_error_detail()); returns err. */
_printf_(2, 3) int kv_fail(int err, const char *fmt, ...);

uint64_t kv_hash(uint64_t seed, const void *key, size_t len);
uint32_t kv_record_crc(const void *rec, uint64_t key_len, uint64_t val_len);
uint32_t kv_header_crc(const struct kv_header *h);
int kv_header_check(const struct kv_header *h, uint64_t file_size);
bool kv_arena_bounds_ok(uint64_t off, uint64_t slots, uint64_t log_off, uint64_t log_cap, uint64_t file_size);
bool kv_value_valid(int type, const void *value, uint64_t len);
