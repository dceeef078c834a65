/* SPDX-License-Identifier: MIT */
/* src/shared/kv-value.c: KV values as text, both ways. */
#include <math.h>

#include "ashm.h"
#include "kv-value.h"
#include "tests.h"
#include "unaligned.h"

ASHM_SUITE(kv_value);

static void parse_ok(int type, const char *s, size_t want_len, uint64_t want) {
        uint8_t buf[8] = {};
        size_t len = 0;

        cr_assert(kv_value_parse_number(type, s, buf, &len), "'%s' as %s refused", s, ashm_kv_type_name(type));
        cr_assert_eq(len, want_len, "'%s': %zu bytes", s, len);
        cr_assert_eq(want_len == 8 ? get_le64(buf) : want_len == 4 ? get_le32(buf) : buf[0], want, "'%s'", s);
}

static void parse_bad(int type, const char *s) {
        uint8_t buf[8] = { 0xaa };
        size_t len = 99;

        cr_assert(!kv_value_parse_number(type, s, buf, &len), "'%s' as %s taken", s, ashm_kv_type_name(type));
        cr_assert_eq(len, 99u, "a refused value leaves the length alone");
}

ASHM_TEST(kv_value, bools) {
        parse_ok(ASHM_KV_BOOL, "true", 1, 1);
        parse_ok(ASHM_KV_BOOL, "1", 1, 1);
        parse_ok(ASHM_KV_BOOL, "false", 1, 0);
        parse_ok(ASHM_KV_BOOL, "0", 1, 0);
        parse_bad(ASHM_KV_BOOL, "yes");
        parse_bad(ASHM_KV_BOOL, "TRUE");
        parse_bad(ASHM_KV_BOOL, "");
}

ASHM_TEST(kv_value, integers_and_their_bounds) {
        parse_ok(ASHM_KV_INT32, "-2147483648", 4, 0x80000000u);
        parse_ok(ASHM_KV_INT32, "2147483647", 4, 0x7fffffffu);
        parse_ok(ASHM_KV_INT32, "+7", 4, 7);
        parse_bad(ASHM_KV_INT32, "2147483648");
        parse_bad(ASHM_KV_INT32, " 1");
        parse_bad(ASHM_KV_INT32, "1 ");
        parse_bad(ASHM_KV_INT32, "0x10");
        parse_bad(ASHM_KV_INT32, "-");
        parse_ok(ASHM_KV_INT64, "-9223372036854775808", 8, 0x8000000000000000ull);
        parse_bad(ASHM_KV_INT64, "9223372036854775808");
        parse_ok(ASHM_KV_UINT64, "18446744073709551615", 8, UINT64_MAX);
        parse_bad(ASHM_KV_UINT64, "-1");
        parse_bad(ASHM_KV_UINT64, "18446744073709551616");
        parse_bad(ASHM_KV_STRING, "1");
}

ASHM_TEST(kv_value, reals) {
        uint8_t buf[8];
        size_t len;
        double d;
        float f;

        cr_assert(kv_value_parse_number(ASHM_KV_DOUBLE, "0.1", buf, &len) && len == 8);
        memcpy(&d, buf, 8);
        cr_assert_eq(d, 0.1);
        cr_assert(kv_value_parse_number(ASHM_KV_FLOAT, "-2e-3", buf, &len) && len == 4);
        memcpy(&f, buf, 4);
        cr_assert_eq(f, -2e-3f);
        cr_assert(kv_value_parse_number(ASHM_KV_FLOAT, "1e-50", buf, &len), "too small rounds to zero");
        memcpy(&f, buf, 4);
        cr_assert_eq(f, 0.0f);
        cr_assert(kv_value_parse_number(ASHM_KV_DOUBLE, "nan", buf, &len));
        parse_bad(ASHM_KV_FLOAT, "1e39");
        parse_bad(ASHM_KV_DOUBLE, "1e309");
        parse_bad(ASHM_KV_DOUBLE, " 1.5");
        parse_bad(ASHM_KV_DOUBLE, "1.5x");
}

ASHM_TEST(kv_value, hex) {
        uint8_t *b = NULL;
        size_t len = 0;

        assert_ok(kv_value_parse_hex("00fF7f", &b, &len));
        cr_assert_eq(len, 3u);
        cr_assert(b[0] == 0 && b[1] == 0xff && b[2] == 0x7f);
        free(b);
        assert_ok(kv_value_parse_hex("", &b, &len));
        cr_assert_eq(len, 0u);
        free(b);
        assert_fail(kv_value_parse_hex("abc", &b, &len), EINVAL);
        assert_fail(kv_value_parse_hex("zz", &b, &len), EINVAL);
}

ASHM_TEST(kv_value, shortest_reals) {
        char buf[64];

        kv_format_real(0.1, false, buf, sizeof(buf));
        cr_assert_str_eq(buf, "0.1");
        kv_format_real((float) 0.1, true, buf, sizeof(buf));
        cr_assert_str_eq(buf, "0.1", "a float prints as the float it is, not 0.100000001");
        kv_format_real((float) 0.1, false, buf, sizeof(buf));
        cr_assert_str_eq(buf, "0.10000000149011612");
        kv_format_real(-INFINITY, false, buf, sizeof(buf));
        cr_assert_str_eq(buf, "-inf");
        kv_format_real(NAN, true, buf, sizeof(buf));
        cr_assert_str_eq(buf, "nan");
}

ASHM_TEST(kv_value, numbers_as_text) {
        uint8_t v[8];
        char buf[64] = "untouched";
        double d = 1.5;

        put_le32(v, (uint32_t) -5);
        cr_assert(kv_value_format_number(ASHM_KV_INT32, v, 4, buf, sizeof(buf)));
        cr_assert_str_eq(buf, "-5");
        put_le64(v, UINT64_MAX);
        cr_assert(kv_value_format_number(ASHM_KV_UINT64, v, 8, buf, sizeof(buf)));
        cr_assert_str_eq(buf, "18446744073709551615");
        cr_assert(kv_value_format_number(ASHM_KV_INT64, v, 8, buf, sizeof(buf)));
        cr_assert_str_eq(buf, "-1");
        memcpy(v, &d, 8);
        cr_assert(kv_value_format_number(ASHM_KV_DOUBLE, v, 8, buf, sizeof(buf)));
        cr_assert_str_eq(buf, "1.5");
        v[0] = 1;
        cr_assert(kv_value_format_number(ASHM_KV_BOOL, v, 1, buf, sizeof(buf)));
        cr_assert_str_eq(buf, "true");
        strcpy(buf, "untouched");
        cr_assert(!kv_value_format_number(ASHM_KV_INT32, v, 3, buf, sizeof(buf)), "a value not of its size");
        cr_assert(!kv_value_format_number(ASHM_KV_STRING, v, 4, buf, sizeof(buf)));
        cr_assert(!kv_value_format_number(99, v, 4, buf, sizeof(buf)));
        cr_assert_str_eq(buf, "untouched");
}

ASHM_TEST(kv_value, type_sizes) {
        cr_assert_eq(ashm_kv_type_size(ASHM_KV_BOOL), 1);
        cr_assert_eq(ashm_kv_type_size(ASHM_KV_FLOAT), 4);
        cr_assert_eq(ashm_kv_type_size(ASHM_KV_UINT64), 8);
        cr_assert_eq(ashm_kv_type_size(ASHM_KV_STRING), 0);
        cr_assert_eq(ashm_kv_type_size(ASHM_KV_BYTES), 0);
        cr_assert_eq(ashm_kv_type_size(0), -EINVAL);
        cr_assert_eq(ashm_kv_type_size(9), -EINVAL);
}
