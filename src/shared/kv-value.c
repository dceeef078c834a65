/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ashm.h"
#include "kv-value.h"
#include "unaligned.h"

const char *kv_value_expected(int type) {
        switch (type) {
        case ASHM_KV_BOOL:
                return "true, false, 1 or 0";
        case ASHM_KV_INT32:
                return "a whole number from -2147483648 to 2147483647";
        case ASHM_KV_INT64:
                return "a whole number from -9223372036854775808 to 9223372036854775807";
        case ASHM_KV_UINT64:
                return "a whole number from 0 to 18446744073709551615";
        case ASHM_KV_FLOAT:
                return "a number such as 1.5 or -2e-3, inf or nan, at most about 3.4e38 in size";
        case ASHM_KV_DOUBLE:
                return "a number such as 1.5 or -2e-3, inf or nan, at most about 1.8e308 in size";
        default:
                return "hexadecimal digits, two per byte, such as 00ff7f (or --file FILE for raw bytes)";
        }
}

/* Decimal, an optional sign, nothing else: strtoll() alone would take
 * leading spaces, and strtoull() "-1". */
static bool parse_int(const char *s, int64_t min, int64_t max, int64_t *ret) {
        const char *digits = s + (*s == '-' || *s == '+');
        long long v;
        char *end;

        if (*digits < '0' || *digits > '9')
                return false;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno != 0 || *end || v < min || v > max)
                return false;
        *ret = v;
        return true;
}

static bool parse_uint(const char *s, uint64_t *ret) {
        const char *digits = s + (*s == '+');
        unsigned long long v;
        char *end;

        if (*digits < '0' || *digits > '9')
                return false;
        errno = 0;
        v = strtoull(digits, &end, 10);
        if (errno != 0 || *end)
                return false;
        *ret = v;
        return true;
}

/* A number in C syntax (as strtod takes it), whole; too large for the
 * type is an error, too small rounds to zero as it must. */
static bool parse_real(const char *s, bool single, double *ret) {
        char *end;
        double v;

        if (!*s || isspace((unsigned char) *s))
                return false;
        errno = 0;
        v = single ? strtof(s, &end) : strtod(s, &end);
        if (*end || (errno == ERANGE && isinf(v)))
                return false;
        *ret = v;
        return true;
}

bool kv_value_parse_number(int type, const char *s, uint8_t buf[8], size_t *ret_len) {
        uint32_t u32;
        uint64_t u;
        int64_t i;
        double d;
        float f;

        switch (type) {
        case ASHM_KV_BOOL:
                if (strcmp(s, "true") && strcmp(s, "false") && strcmp(s, "1") && strcmp(s, "0"))
                        return false;
                buf[0] = strcmp(s, "true") == 0 || strcmp(s, "1") == 0;
                *ret_len = 1;
                return true;
        case ASHM_KV_INT32:
                if (!parse_int(s, INT32_MIN, INT32_MAX, &i))
                        return false;
                put_le32(buf, (uint32_t) (int32_t) i);
                *ret_len = 4;
                return true;
        case ASHM_KV_INT64:
                if (!parse_int(s, INT64_MIN, INT64_MAX, &i))
                        return false;
                put_le64(buf, (uint64_t) i);
                *ret_len = 8;
                return true;
        case ASHM_KV_UINT64:
                if (!parse_uint(s, &u))
                        return false;
                put_le64(buf, u);
                *ret_len = 8;
                return true;
        case ASHM_KV_FLOAT:
                if (!parse_real(s, true, &d))
                        return false;
                f = (float) d;
                memcpy(&u32, &f, 4);
                put_le32(buf, u32);
                *ret_len = 4;
                return true;
        case ASHM_KV_DOUBLE:
                if (!parse_real(s, false, &d))
                        return false;
                memcpy(&u, &d, 8);
                put_le64(buf, u);
                *ret_len = 8;
                return true;
        default:
                return false;
        }
}

static int hex_digit(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int kv_value_parse_hex(const char *s, uint8_t **ret, size_t *ret_len) {
        size_t n = strlen(s);
        uint8_t *buf;

        if (n % 2)
                return -EINVAL;
        buf = malloc(n / 2 + 1);
        if (!buf)
                return -ENOMEM;
        for (size_t i = 0; i < n / 2; i++) {
                int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);

                if (hi < 0 || lo < 0) {
                        free(buf);
                        return -EINVAL;
                }
                buf[i] = (uint8_t) (hi << 4 | lo);
        }
        *ret = buf;
        *ret_len = n / 2;
        return 0;
}

void kv_format_real(double v, bool single, char *buf, size_t len) {
        if (isnan(v)) {
                snprintf(buf, len, "nan");
                return;
        }
        if (isinf(v)) {
                snprintf(buf, len, v < 0 ? "-inf" : "inf");
                return;
        }
        for (int prec = 1; prec <= (single ? 9 : 17); prec++) {
                snprintf(buf, len, "%.*g", prec, v);
                if (single ? strtof(buf, NULL) == (float) v : strtod(buf, NULL) == v)
                        return;
        }
}

bool kv_value_format_number(int type, const uint8_t *v, size_t len, char *buf, size_t size) {
        int want = ashm_kv_type_size(type);
        uint32_t u32;
        uint64_t u64;
        float f;
        double d;

        if (want <= 0 || (size_t) want != len)
                return false;
        switch (type) {
        case ASHM_KV_BOOL:
                snprintf(buf, size, "%s", v[0] ? "true" : "false");
                return true;
        case ASHM_KV_INT32:
                snprintf(buf, size, "%" PRId32, (int32_t) get_le32(v));
                return true;
        case ASHM_KV_INT64:
                snprintf(buf, size, "%" PRId64, (int64_t) get_le64(v));
                return true;
        case ASHM_KV_UINT64:
                snprintf(buf, size, "%" PRIu64, get_le64(v));
                return true;
        case ASHM_KV_FLOAT:
                u32 = get_le32(v);
                memcpy(&f, &u32, 4);
                kv_format_real(f, true, buf, size);
                return true;
        default: /* ASHM_KV_DOUBLE */
                u64 = get_le64(v);
                memcpy(&d, &u64, 8);
                kv_format_real(d, false, buf, size);
                return true;
        }
}
