/* SPDX-License-Identifier: MIT */
/* Names (memfd names, process comms) are arbitrary bytes chosen by other
 * programs: a name holding a newline or an escape sequence must not be
 * able to forge a line of output or drive the terminal. Valid UTF-8
 * passes through; everything else is escaped. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Length (2-4) of the well-formed UTF-8 sequence at s, or 0. Overlong
 * forms, surrogates and code points past U+10FFFF are not well-formed. */
static size_t utf8_len(const unsigned char *s, uint32_t *ret_cp) {
        size_t len;
        uint32_t cp, min;

        if (s[0] >= 0xc2 && s[0] <= 0xdf)
                len = 2, cp = s[0] & 0x1f, min = 0x80;
        else if (s[0] >= 0xe0 && s[0] <= 0xef)
                len = 3, cp = s[0] & 0x0f, min = 0x800;
        else if (s[0] >= 0xf0 && s[0] <= 0xf4)
                len = 4, cp = s[0] & 0x07, min = 0x10000;
        else
                return 0;
        for (size_t i = 1; i < len; i++) {
                /* The NUL terminator fails this test, so no overrun. */
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (s[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        *ret_cp = cp;
        return len;
}

/* Printable on a terminal as it is: not a C0 or C1 control. */
static size_t printable_len(const unsigned char *s) {
        uint32_t cp = 0;
        size_t len;

        if (*s >= 0x20 && *s < 0x7f)
                return 1;
        len = utf8_len(s, &cp);
        return len > 0 && cp >= 0xa0 ? len : 0;
}

/* A byte as \xNN. Returns the end of what it wrote. */
static char *put_hex(char *q, unsigned char c) {
        static const char hex[] = "0123456789abcdef";

        *q++ = '\\';
        *q++ = 'x';
        *q++ = hex[c >> 4];
        *q++ = hex[c & 0xf];
        return q;
}

char *cescape(const char *s) {
        const unsigned char *p = (const unsigned char *) s;
        char *buf = malloc(strlen(s) * 4 + 1), *q = buf;

        if (!buf)
                return NULL;
        while (*p) {
                size_t len = printable_len(p);

                if (*p == '\\') {
                        *q++ = '\\';
                        *q++ = *p++;
                } else if (len > 0) {
                        memcpy(q, p, len);
                        q += len;
                        p += len;
                } else
                        q = put_hex(q, *p++);
        }
        *q = '\0';
        return buf;
}

/* JSON strings are Unicode, names are bytes: a byte that is not part of
 * well-formed UTF-8 is written as \u00XX, the code point of the same
 * value. Lossy (a name holding the byte 0xe9 and one holding "é" print
 * the same), but every JSON parser accepts it, which a lone-surrogate
 * scheme (Python's surrogateescape) would not promise. */
void json_put_string(const char *s, FILE *f) {
        const unsigned char *p = (const unsigned char *) s;

        fputc('"', f);
        while (*p) {
                uint32_t cp;
                size_t len = *p >= 0x80 ? utf8_len(p, &cp) : 0;

                if (len > 0) {
                        fwrite(p, 1, len, f);
                        p += len;
                        continue;
                }
                if (*p == '"' || *p == '\\')
                        fprintf(f, "\\%c", *p);
                else if (*p == '\n')
                        fputs("\\n", f);
                else if (*p == '\t')
                        fputs("\\t", f);
                else if (*p < 0x20 || *p >= 0x7f)
                        fprintf(f, "\\u%04x", *p);
                else
                        fputc(*p, f);
                p++;
        }
        fputc('"', f);
}

/* Bytes a shell takes as part of a word, unquoted. */
static bool shell_safe(unsigned char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               strchr("@%+=:,./_-", c) != NULL;
}

/* What shell_word() must do with s: 0 nothing, 1 single quotes, 2 $'...'
 * (some byte is not printable: single quotes cannot spell it). */
static int shell_quoting(const char *s) {
        const unsigned char *p = (const unsigned char *) s;
        int need = *p ? 0 : 1;

        while (*p) {
                size_t len = printable_len(p);

                if (len == 0)
                        return 2;
                if (len > 1 || !shell_safe(*p))
                        need = 1;
                p += len;
        }
        return need;
}

char *shell_word(const char *s) {
        const unsigned char *p = (const unsigned char *) s;
        int how = shell_quoting(s);
        char *buf = malloc(strlen(s) * 4 + 4), *q = buf;

        if (!buf || how == 0)
                return buf ? strcpy(buf, s) : NULL;
        if (how == 2)
                *q++ = '$';
        *q++ = '\'';
        while (*p) {
                size_t len = printable_len(p);

                if (*p == '\'' && how == 1) {
                        memcpy(q, "'\\''", 4); /* end the quotes, a quoted quote, start again */
                        q += 4;
                        p++;
                } else if ((*p == '\'' || *p == '\\') && how == 2) {
                        *q++ = '\\';
                        *q++ = (char) *p++;
                } else if (len > 0) {
                        memcpy(q, p, len);
                        q += len;
                        p += len;
                } else
                        q = put_hex(q, *p++);
        }
        *q++ = '\'';
        *q = '\0';
        return buf;
}

size_t text_width(const char *s) {
        size_t w = 0;

        for (; *s; s++)
                w += ((unsigned char) *s & 0xc0) != 0x80;
        return w;
}

void print_cell(const char *cell, size_t width, bool right) {
        int pad = (int) (width - text_width(cell));

        if (right)
                printf("%*s%s ", pad, "", cell);
        else
                printf("%s%*s ", cell, pad, "");
}
