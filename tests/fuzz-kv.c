/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the KV store's format: everything kv.c and
 * kv-check.c read from a store file. Each input patches a valid store
 * (a few keys, in a memfd) and the library then opens, reads, writes,
 * iterates, checks and repairs it. Checksums are fixed up after the
 * patches (the static header CRC, and every record's CRC the log walk
 * can reach), so the fuzzer gets past them to the counts and offsets
 * behind them.
 *
 * Input: byte 0 = how many patches go in before the store is opened
 * (the rest are written through the memfd while a writer has it open);
 * then patches of [u16 offset / 8 (little-endian)][u8 len 1..16][bytes].
 * A store must give errors, never a crash, a write outside it (ASan),
 * or a hang (libFuzzer's -timeout).
 *
 * Built and run by tests/test-fuzz.sh. Run with "--seed DIR" (first
 * argument), it writes a few inputs into DIR and exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ashm.h"
#include "crc32c.h"
#include "kv-format.h"
#include "kv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define STORE_MAX (256u << 10)

/* The store the patches apply to: built once, copied per input. */
static uint8_t *pristine;
static size_t pristine_len;

static int memfd_with(const void *p, size_t len) {
        int fd = memfd_create("fuzz-kv", MFD_CLOEXEC | MFD_ALLOW_SEALING);

        if (fd < 0 || (len && pwrite(fd, p, len, 0) != (ssize_t) len))
                abort();
        return fd;
}

static void build_pristine(void) {
        int fd = memfd_with(NULL, 0);
        char key[16];
        ashm_kv *kv;
        off_t end;

        if (ashm_kv_open_fd(fd, ASHM_KV_CREATE, &kv) < 0)
                abort();
        for (int i = 0; i < 40; i++) {
                snprintf(key, sizeof(key), "key%d", i);
                if (ashm_kv_set_int64(kv, key, i) < 0 || ashm_kv_set_string(kv, "s", key) < 0)
                        abort();
                if (i % 7 == 0 && ashm_kv_remove(kv, key) < 0)
                        abort();
        }
        ashm_kv_close(kv);
        end = lseek(fd, 0, SEEK_END);
        if (end <= 0 || (size_t) end > STORE_MAX)
                abort();
        pristine_len = (size_t) end;
        pristine = malloc(pristine_len);
        if (!pristine || pread(fd, pristine, pristine_len, 0) != (ssize_t) pristine_len)
                abort();
        close(fd);
}

/* Fix the CRCs the patches broke, where the layout still lets us find
 * them: the header's static part, and the records of both arenas' logs. */
static void fix_crcs(uint8_t *img, size_t len) {
        struct kv_header *h = (struct kv_header *) img;

        h->static_crc = kv_header_crc(h);
        for (int a = 0; a < 2; a++) {
                uint64_t lo = h->arenas[a].log_off, cap = h->arenas[a].log_cap, head = h->arenas[a].log_head;

                if (lo > len || cap > len - lo)
                        continue;
                head = head < cap ? head : cap;
                for (uint64_t pos = 0; pos + sizeof(struct kv_record) <= head;) {
                        struct kv_record rh;
                        uint64_t rs;

                        memcpy(&rh, img + lo + pos, sizeof(rh));
                        rs = kv_record_size(rh.key_len, rh.val_len);
                        if (rs > head - pos)
                                break;
                        rh.crc = kv_record_crc(img + lo + pos, rh.key_len, rh.val_len);
                        memcpy(img + lo + pos, &rh.crc, sizeof(rh.crc));
                        pos += rs;
                }
        }
}

/* Apply patches from *p; returns how many bytes were used. */
static size_t apply(uint8_t *img, size_t len, const uint8_t *p, size_t n, unsigned count, int fd) {
        size_t used = 0;

        for (unsigned i = 0; i < count && used + 3 <= n; i++) {
                size_t off = (size_t) (p[used] | p[used + 1] << 8) * 8, l = p[used + 2] % 16 + 1;

                used += 3;
                if (used + l > n)
                        l = n - used;
                if (off < len && l > 0) {
                        l = l < len - off ? l : len - off;
                        if (fd >= 0) {
                                if (pwrite(fd, p + used, l, (off_t) off) < 0)
                                        abort();
                        } else
                                memcpy(img + off, p + used, l);
                }
                used += l;
        }
        return used;
}

static int count_fn(const char *key, int type, size_t len, void *userdata) {
        (void) key;
        (void) type;
        (void) len;
        (*(unsigned *) userdata)++;
        return 0;
}

static void exercise(int fd) {
        char key[16], buf[64];
        ashm_kv_report rep;
        ashm_kv *kv = NULL;
        unsigned n = 0;
        int64_t v;

        if (ashm_kv_open_fd(fd, ASHM_KV_RDONLY, &kv) == 0) {
                for (int i = 0; i < 44; i += 3) {
                        snprintf(key, sizeof(key), "key%d", i);
                        (void) ashm_kv_get_int64(kv, key, &v);
                }
                (void) ashm_kv_get_string(kv, "s", buf, sizeof(buf), NULL);
                (void) ashm_kv_foreach(kv, count_fn, &n);
                ashm_kv_close(kv);
        }
        (void) ashm_kv_check_fd(fd, NULL, NULL, &rep);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        /* A forged live owner id costs this much per input, not 30 s. */
        setenv("ASHM_KV_LOCK_TIMEOUT_MS", "20", 1);
        if (*argc >= 3 && strcmp((*argv)[1], "--seed") == 0) {
                static const uint8_t seeds[][24] = {
                        { 0 },
                        { 1, 0x10, 0, 7, 1, 2, 3, 4, 5, 6, 7, 8 },       /* gen */
                        { 1, 0x20, 0, 7, 0xff, 0xff, 0xff, 0xff, 0xff }, /* arena 0 offset */
                        /* the key count of arena 0 and of arena 1 (finding 7) */
                        { 1, 0x26, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0x7f },
                        { 1, 0x36, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0x7f },
                        { 0, 0x08, 0, 3, 0x41, 0x42, 0x43, 0x44 },       /* the lock, while open */
                        { 2, 0x0c, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x22, 0, 3, 9, 9, 9 },
                };
                char path[4096];

                for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
                        FILE *f;

                        snprintf(path, sizeof(path), "%s/seed-%zu", (*argv)[2], i);
                        f = fopen(path, "we");
                        if (!f || fwrite(seeds[i], 1, sizeof(seeds[i]), f) != sizeof(seeds[i]) || fclose(f) != 0)
                                exit(1);
                }
                exit(0);
        }
        build_pristine();
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        uint8_t *img;
        ashm_kv *kv = NULL;
        size_t used;
        int fd, dst;
        char key[16];

        if (size < 1)
                return 0;
        img = malloc(pristine_len);
        if (!img)
                abort();
        memcpy(img, pristine, pristine_len);
        used = 1 + apply(img, pristine_len, data + 1, size - 1, data[0] % 8, -1);
        fix_crcs(img, pristine_len);
        fd = memfd_with(img, pristine_len);
        free(img);

        if (ashm_kv_open_fd(fd, 0, &kv) == 0) {
                uint64_t n;
                int64_t v;

                /* The rest of the patches land while a writer has it open. */
                (void) apply(NULL, pristine_len, data + used, size - used, 64, fd);
                for (int i = 0; i < 8; i++) {
                        snprintf(key, sizeof(key), "key%d", i * 5);
                        (void) ashm_kv_get_int64(kv, key, &v);
                        (void) ashm_kv_set_int64(kv, key, i);
                        (void) ashm_kv_set_string(kv, "new", key);
                }
                (void) ashm_kv_remove(kv, "key1");
                (void) ashm_kv_count(kv, &n);
                (void) ashm_kv_compact(kv);
                (void) ashm_kv_set_int64(kv, "after", 1);
                ashm_kv_close(kv);
        }
        exercise(fd);
        dst = memfd_with(NULL, 0);
        (void) ashm_kv_repair_fd(fd, dst, NULL, NULL, NULL);
        close(dst);
        close(fd);
        return 0;
}
