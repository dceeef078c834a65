/* SPDX-License-Identifier: MIT */
#pragma once

/* The test message of the channel tests (test-chan*.c) and chan-peer.c:
 * it names its own place in the channel (source ring, position) and
 * carries a body that follows from it, so a reader can tell a message
 * that is whole, in its place, from one half-written, misplaced or
 * stale. */

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define TMSG_MAGIC 0x6d736774u
#define TMSG_MAX 256
/* The log region of the reader peers: one row of counters per source
 * (queue) or subscriber page (pub/sub), one byte per position. */
#define TLOG_ROWS 8
#define TLOG_COLS (1u << 20)
#define TLOG_SIZE ((uint64_t) TLOG_ROWS * TLOG_COLS)

struct tmsg {
        uint32_t magic, source;
        uint64_t seq;
};

static inline uint8_t tmsg_byte(unsigned source, uint64_t seq, size_t i) {
        return (uint8_t) (seq * 31 + i * 7 + source);
}

static inline size_t tmsg_fill(uint8_t *buf, unsigned source, uint64_t seq) {
        struct tmsg h = { TMSG_MAGIC, source, seq };
        size_t len = sizeof(h) + (size_t) (seq * 13 % 97) + 8;

        memcpy(buf, &h, sizeof(h));
        for (size_t i = sizeof(h); i < len; i++)
                buf[i] = tmsg_byte(source, seq, i);
        return len;
}

static inline bool tmsg_check(const void *p, size_t len, unsigned source, uint64_t seq) {
        const uint8_t *b = p;
        struct tmsg h;

        if (len != sizeof(h) + (size_t) (seq * 13 % 97) + 8)
                return false;
        memcpy(&h, b, sizeof(h));
        if (h.magic != TMSG_MAGIC || h.source != source || h.seq != seq)
                return false;
        for (size_t i = sizeof(h); i < len; i++)
                if (b[i] != tmsg_byte(source, seq, i))
                        return false;
        return true;
}
