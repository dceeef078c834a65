/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "crc32c.h"

#define POLY 0x82F63B78u

/* The byte-wise table and the CPU's abilities, set up once by the
 * constructor below, before any thread can call crc32c(). */
static uint32_t table[256];
#if defined(__x86_64__)
static int have_sse42;
#endif

__attribute__((constructor)) static void crc32c_init(void) {
#if defined(__x86_64__)
        __builtin_cpu_init();
        have_sse42 = __builtin_cpu_supports("sse4.2");
#endif
        for (uint32_t i = 0; i < 256; i++) {
                uint32_t c = i;

                for (int k = 0; k < 8; k++)
                        c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
                table[i] = c;
        }
}

static uint32_t crc32c_table(uint32_t crc, const unsigned char *p, size_t len) {
        while (len--)
                crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
        return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const unsigned char *p, size_t len) {
        uint64_t c = crc;

        for (; len >= 8; p += 8, len -= 8) {
                uint64_t w;

                memcpy(&w, p, 8);
                c = __builtin_ia32_crc32di(c, w);
        }
        crc = (uint32_t) c;
        for (; len > 0; p++, len--)
                crc = __builtin_ia32_crc32qi(crc, *p);
        return crc;
}
#endif

uint32_t crc32c(uint32_t crc, const void *buf, size_t len) {
        const unsigned char *p = buf;

        crc = ~crc;
#if defined(__x86_64__)
        if (have_sse42)
                return ~crc32c_sse42(crc, p, len);
#endif
        return ~crc32c_table(crc, p, len);
}
