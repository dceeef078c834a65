/* SPDX-License-Identifier: MIT */
/* The MMKV format's small pieces (mmkv-codec.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "mmkv-codec.h"

const uint8_t mmkv_holder[4] = { 0xff, 0xff, 0xff, 0x07 };

void mmkv_note(struct mmkv_notes *notes, const char *fmt, ...) {
        char **v, *s;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (r < 0)
                return;
        v = reallocarray(notes->v, notes->n + 1, sizeof(*v));
        if (!v) {
                free(s);
                return;
        }
        notes->v = v;
        notes->v[notes->n++] = s;
}

void mmkv_notes_clear(struct mmkv_notes *notes) {
        for (size_t i = 0; i < notes->n; i++)
                free(notes->v[i]);
        free(notes->v);
        *notes = (struct mmkv_notes) {};
}

uint32_t mmkv_crc32(uint32_t crc, const uint8_t *p, size_t len) {
        static uint32_t table[256];

        if (!table[1])
                for (uint32_t i = 0; i < 256; i++) {
                        uint32_t c = i;

                        for (int k = 0; k < 8; k++)
                                c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
                        table[i] = c;
                }
        crc = ~crc;
        while (len--)
                crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
        return ~crc;
}

/* The varint at p (n bytes available): its length, 1 to 10, or 0 when
 * it runs past n or past 10 bytes. Bits past 64 are dropped. */
size_t mmkv_varint_get(const uint8_t *p, size_t n, uint64_t *ret) {
        uint64_t v = 0;

        for (size_t i = 0; i < n && i < 10; i++) {
                v |= (uint64_t) (p[i] & 0x7f) << (7 * i);
                if (!(p[i] & 0x80)) {
                        *ret = v;
                        return i + 1;
                }
        }
        return 0;
}

size_t mmkv_varint_size(uint64_t v) {
        size_t n = 1;

        for (; v >= 0x80; v >>= 7)
                n++;
        return n;
}

/* A length as MMKV's readRawVarint32() reads it: bits past 32 dropped,
 * and a negative int32 refused. */
size_t mmkv_length_get(const uint8_t *p, size_t n, uint32_t *ret) {
        uint64_t v;
        size_t k = mmkv_varint_get(p, n, &v);

        if (k == 0 || (uint32_t) v > INT32_MAX)
                return 0;
        *ret = (uint32_t) v;
        return k;
}

/* Well-formed UTF-8 (no overlong forms, surrogates, or past U+10FFFF).
 * text: also no NUL, and no control character but tab, CR and LF. */
bool mmkv_utf8_ok(const uint8_t *p, size_t n, bool text) {
        size_t i = 0;

        while (i < n) {
                uint32_t cp = p[i], min;
                size_t len;

                if (cp < 0x80)
                        len = 1, min = 0;
                else if (cp >= 0xc2 && cp <= 0xdf)
                        len = 2, cp &= 0x1f, min = 0x80;
                else if (cp >= 0xe0 && cp <= 0xef)
                        len = 3, cp &= 0x0f, min = 0x800;
                else if (cp >= 0xf0 && cp <= 0xf4)
                        len = 4, cp &= 0x07, min = 0x10000;
                else
                        return false;
                if (len > n - i)
                        return false;
                for (size_t k = 1; k < len; k++) {
                        if ((p[i + k] & 0xc0) != 0x80)
                                return false;
                        cp = cp << 6 | (p[i + k] & 0x3f);
                }
                if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                if (text && (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) && cp != '\t' && cp != '\n' && cp != '\r')
                        return false;
                i += len;
        }
        return true;
}

