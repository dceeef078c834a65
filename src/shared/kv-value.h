/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The KV store's values as text, both ways: what `ashm kv set` reads
 * from a command line and `ashm kv get`/`dump` print, and what the MMKV
 * import shows. A value is the store's own encoding (ashm.h: little-
 * endian integers, IEEE 754 reals, bool one byte 0 or 1). Uses only
 * libashm's public header; never prints.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What text type takes, for "expected ..." messages. */
const char *kv_value_expected(int type);

/* The encoding of a bool or number typed as text (enum ashm_kv_type,
 * not string or bytes) into buf: true, or false if s is not one. Bools
 * are true, false, 1, 0; numbers decimal with an optional sign (reals as
 * strtod() takes them, whole; too large for the type is refused). */
bool kv_value_parse_number(int type, const char *s, uint8_t buf[8], size_t *ret_len);

/* Hex, either case, two digits a byte ("" is no bytes) into *ret
 * (malloc'd). -EINVAL if s is not that, -ENOMEM. */
int kv_value_parse_hex(const char *s, uint8_t **ret, size_t *ret_len);

/* The shortest text that reads back as the same float (single) or
 * double, in the C locale, which ashm never leaves: "0.1", not
 * "0.100000001"; "nan", "inf", "-inf". */
void kv_format_real(double v, bool single, char *buf, size_t len);

/* A bool or number (type's encoding, len bytes) as text: "true", "-3",
 * "0.1". false, buf untouched, when type is string or bytes or len is
 * not the type's size (a value to show in hex). */
bool kv_value_format_number(int type, const uint8_t *v, size_t len, char *buf, size_t size);
