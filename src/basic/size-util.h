/* SPDX-License-Identifier: MIT */
#pragma once

/* Sizes as people read and type them, for the tool and the daemon alike
 * (one parser, one format: `ashm purge --bytes 1.5G` and `ashmd -m 1.5G`
 * read the same). Never prints. */

#include <stddef.h>
#include <stdint.h>

/* "4096", "4K", "4KiB", "4KB", "16M", "1.5G", "2T", "1P": a number with
 * an optional fraction (only with a unit) and K, M, G, T or P in either
 * case (powers of 1024), then an optional "iB" or "B". The fraction is
 * rounded down to a byte. -EINVAL for anything else (a sign, a space,
 * a fraction of a byte), -ERANGE past 2^64 - 1. */
int size_parse(const char *s, uint64_t *ret);

/* "0 B", "512 B", "1.5 MiB": one decimal, binary units up to EiB. */
void size_format(uint64_t v, char *buf, size_t len);

/* A buffer long enough for any size_format(). */
#define SIZE_FORMAT_MAX 16
