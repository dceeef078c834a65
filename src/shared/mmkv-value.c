/* SPDX-License-Identifier: MIT */
/* MMKV's values (mmkv-format.h): protobuf-encoded, with no type. Import
 * takes one per key or guesses (the rule is at mmkv_value_guess()), and
 * says which it guessed. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ashm.h"
#include "kv-value.h"
#include "mmkv-codec.h"
#include "mmkv-format.h"
#include "unaligned.h"

static bool type_scalar(int type) {
        return type != ASHM_KV_STRING && type != ASHM_KV_BYTES && type != MMKV_TYPE_RAW;
}

const void *mmkv_value_data(const struct mmkv_value *it) {
        return type_scalar(it->type) ? (const void *) it->scalar : it->mmkv + it->payload;
}

const char *mmkv_type_name(int type) {
        return type == MMKV_TYPE_RAW ? "raw" : type == MMKV_TYPE_GUESS ? "guess" : ashm_kv_type_name(type);
}

int mmkv_type_from_name(const char *name, bool guess_too) {
        if (strcmp(name, "raw") == 0)
                return MMKV_TYPE_RAW;
        if (guess_too && strcmp(name, "guess") == 0)
                return MMKV_TYPE_GUESS;
        return ashm_kv_type_from_name(name);
}

/* The whole value as one varint: 0 or why not. */
static const char *whole_varint(const struct mmkv_value *it, uint64_t *ret) {
        size_t k = mmkv_varint_get(it->mmkv, it->mmkv_len, ret);

        if (k == 0)
                return "not a varint";
        if (k != it->mmkv_len)
                return "a varint followed by more bytes";
        return NULL;
}

/* A length-prefixed string or bytes, MMKV's writeData(): the payload. */
static const char *length_prefixed(struct mmkv_value *it) {
        uint32_t len;
        size_t k = mmkv_length_get(it->mmkv, it->mmkv_len, &len);

        if (k == 0)
                return "no length prefix";
        if (k + len != it->mmkv_len)
                return "its length prefix does not match its size";
        it->payload = k;
        it->len = len;
        return NULL;
}

static const char *decode_int(struct mmkv_value *it, int type) {
        uint64_t v;
        const char *why = whole_varint(it, &v);

        if (why)
                return why;
        switch (type) {
        case ASHM_KV_BOOL:
                it->scalar[0] = v != 0; /* MMKV's readBool() */
                it->len = 1;
                return NULL;
        case ASHM_KV_INT32:
                /* int32 as protobuf writes it (negatives sign-extended to
                 * 10 bytes), or a uint32 from MMKV's set(uint32_t). */
                if ((int64_t) v < INT32_MIN || ((int64_t) v > INT32_MAX && v > UINT32_MAX))
                        return "a varint beyond 32 bits";
                put_le32(it->scalar, (uint32_t) v);
                it->len = 4;
                return NULL;
        default: /* int64, uint64: the same 64 bits */
                put_le64(it->scalar, v);
                it->len = 8;
                return NULL;
        }
}

/* The value as MMKV encodes type, into it: NULL, or why it is not one. */
const char *mmkv_value_decode(struct mmkv_value *it, int type) {
        const char *why;

        it->type = type;
        it->payload = 0;
        switch (type) {
        case ASHM_KV_BOOL:
        case ASHM_KV_INT32:
        case ASHM_KV_INT64:
        case ASHM_KV_UINT64:
                return decode_int(it, type);
        case ASHM_KV_FLOAT:
        case ASHM_KV_DOUBLE:
                it->len = type == ASHM_KV_FLOAT ? 4 : 8;
                if (it->mmkv_len != it->len)
                        return type == ASHM_KV_FLOAT ? "not 4 bytes" : "not 8 bytes";
                memcpy(it->scalar, it->mmkv, it->len); /* IEEE 754 LE in both */
                return NULL;
        case ASHM_KV_STRING:
        case ASHM_KV_BYTES:
                why = length_prefixed(it);
                if (!why && type == ASHM_KV_STRING && memchr(it->mmkv + it->payload, '\0', it->len))
                        why = "it holds a NUL byte, which an ashm string cannot: take it as bytes";
                return why;
        case MMKV_TYPE_RAW:
                it->len = it->mmkv_len;
                return NULL;
        default:
                return "unknown type";
        }
}

/* A float or double that someone probably typed: zero, or normal, of a
 * likely magnitude, and the same when printed with few digits (0.1f
 * is "0.1"; an int32 of 2^21..2^28 read as a float is noise). */
static bool plausible_real(const struct mmkv_value *it) {
        char buf[40];

        if (it->mmkv_len == 4) {
                float f, back, a;

                memcpy(&f, it->scalar, 4);
                a = f < 0 ? -f : f;
                if (f == 0)
                        return true;
                if (a < 1e-6f || a > 1e12f)
                        return false;
                snprintf(buf, sizeof(buf), "%.6g", (double) f);
                back = strtof(buf, NULL);
                return memcmp(&back, &f, 4) == 0;
        } else {
                double d, back, a;

                memcpy(&d, it->scalar, 8);
                a = d < 0 ? -d : d;
                if (d == 0)
                        return true;
                if (a < 1e-9 || a > 1e15)
                        return false;
                snprintf(buf, sizeof(buf), "%.12g", d);
                back = strtod(buf, NULL);
                return memcmp(&back, &d, 8) == 0;
        }
}

static double real_value(const struct mmkv_value *it) {
        float f;
        double d;

        if (it->mmkv_len == 4) {
                memcpy(&f, it->scalar, 4);
                return f;
        }
        memcpy(&d, it->scalar, 8);
        return d;
}

/* A minimal varint filling the value: int32 when it fits (a 10-byte
 * varint of a negative int32 is how protobuf writes one), else int64. */
static bool guess_varint(struct mmkv_value *it, char *why, size_t size) {
        uint64_t v;
        int64_t s;
        size_t n = it->mmkv_len;

        if (whole_varint(it, &v) || mmkv_varint_size(v) != n)
                return false;
        s = (int64_t) v;
        if (s >= INT32_MIN && s <= INT32_MAX) {
                mmkv_value_decode(it, ASHM_KV_INT32);
                snprintf(why, size, "a %zu-byte varint, %" PRId64 "%s", n, s,
                         n == 10 ? ", as protobuf writes a negative int32 (a negative int64 or a uint64 "
                                   "past 2^63 looks the same)"
                                 : "");
        } else {
                mmkv_value_decode(it, ASHM_KV_INT64);
                snprintf(why, size, "a %zu-byte varint, %" PRId64 ", past int32%s", n, s,
                         s < 0 ? " (or the uint64 of the same bits)" : "");
        }
        return true;
}

/* A float or double: plausible, or the last fixed-size reading left. */
static bool guess_real(struct mmkv_value *it, bool plausible_only, char *why, size_t size) {
        int type = it->mmkv_len == 4 ? ASHM_KV_FLOAT : ASHM_KV_DOUBLE;
        char num[64], also[64] = "";
        uint64_t v;

        if (it->mmkv_len != 4 && it->mmkv_len != 8)
                return false;
        mmkv_value_decode(it, type);
        if (plausible_only && !plausible_real(it))
                return false;
        kv_format_real(real_value(it), type == ASHM_KV_FLOAT, num, sizeof(num));
        if (!whole_varint(it, &v) && mmkv_varint_size(v) == it->mmkv_len)
                snprintf(also, sizeof(also), "; as a varint they would be %" PRIu64, v);
        snprintf(why, size, "%zu bytes reading as %s%s%s", it->mmkv_len, num,
                 plausible_only ? "" : " (neither text nor a varint)", also);
        return true;
}

/*
 * The type of a value nobody named, in this order:
 *  1. a length-prefixed, non-empty, printable UTF-8 text: string;
 *  2. one byte, 00 or 01: bool (an int32 0 or 1, and "" for 00, look
 *     the same: MMKV writes all of them that way);
 *  3. 4 or 8 bytes that read as a plausible float or double (above);
 *  4. a minimal varint filling the value: int32 if it fits, else int64;
 *  5. length-prefixed bytes that are not text: bytes;
 *  6. 4 or 8 bytes: float or double, the only fixed-size encodings;
 *  7. anything else: raw, the bytes as MMKV stored them.
 * Every guess is printed with its reason, so a wrong one can be
 * corrected with --type.
 */
void mmkv_value_guess(struct mmkv_value *it, char *why, size_t size) {
        if (!mmkv_value_decode(it, ASHM_KV_STRING) && it->len > 0 && mmkv_utf8_ok(it->mmkv + it->payload, it->len, true)) {
                snprintf(why, size, "length-prefixed UTF-8 text, %zu bytes", it->len);
                return;
        }
        if (it->mmkv_len == 1 && it->mmkv[0] <= 1) {
                mmkv_value_decode(it, ASHM_KV_BOOL);
                snprintf(why, size, "one byte %02x: an int32 %d%s looks the same", it->mmkv[0], it->mmkv[0],
                         it->mmkv[0] ? "" : " or an empty string");
                return;
        }
        if (guess_real(it, true, why, size) || guess_varint(it, why, size))
                return;
        if (!mmkv_value_decode(it, ASHM_KV_BYTES)) {
                snprintf(why, size, "%zu length-prefixed bytes that are not text", it->len);
                return;
        }
        if (guess_real(it, false, why, size))
                return;
        mmkv_value_decode(it, MMKV_TYPE_RAW);
        snprintf(why, size, "no MMKV encoding fits these %zu bytes: kept as they are", it->mmkv_len);
}


int mmkv_value_strip_expiry(struct mmkv_value *v, uint32_t now, uint32_t *ret_ago) {
        uint32_t when;

        if (v->mmkv_len < EXPIRY_LEN)
                return -EBADMSG;
        v->mmkv_len -= EXPIRY_LEN;
        when = get_le32(v->mmkv + v->mmkv_len);
        if (when == 0 || when > now)
                return 0;
        *ret_ago = now - when;
        return 1;
}
