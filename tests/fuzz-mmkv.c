/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for `ashm kv import-mmkv`: src/shared/'s MMKV decoder
 * and src/cli/kv-mmkv.c's import over it, linked as the CLI links them
 * (the CLI's other files too, ashm.c with its main() renamed), and called
 * as the `ashm kv` dispatcher calls it, with a store in a memfd.
 *
 * Input: byte 0 = options (bit 0 --force, bit 1 a .crc file, bit 2 the
 * size and checksum fixed up so the decoder gets past them, bit 3
 * --dry-run, bits 4-5 the default type: guess, raw, string, none); with
 * a .crc file the next 40 bytes are its start (the rest of its 112 bytes
 * zero); the rest is the data file (its first 4 bytes the body's size).
 *
 * Built and run by tests/test-fuzz.sh (with -close_fd_mask=3: the
 * importer prints). "--seed DIR" writes a few inputs into DIR and exits.
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
#include "kv-mmkv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define META_LEN 112u
#define META_GIVEN 40u

static char dir[64] = "/tmp/ashm-fuzz-mmkv-XXXXXX", data_path[128], crc_path[128];

static uint32_t crc32_zlib(const uint8_t *p, size_t n) {
        uint32_t c = 0xffffffffu;

        while (n--) {
                c ^= *p++;
                for (int k = 0; k < 8; k++)
                        c = c >> 1 ^ (0xedb88320u & -(c & 1));
        }
        return ~c;
}

static void put_le32(uint8_t *p, uint32_t v) {
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

static void write_file(const char *path, const void *p, size_t n) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        if (fd < 0 || (n && write(fd, p, n) != (ssize_t) n))
                abort();
        close(fd);
}

static void write_seeds(const char *to) {
        /* One MMKV body: the item-size holder, then key "a" -> varint 1,
         * key "str" -> "hi" (length-prefixed inside a length-prefixed value). */
        static const uint8_t body[] = { 0xff, 0xff, 0xff, 0x07, 1, 'a', 1, 1, 3, 's', 't', 'r', 3, 2, 'h', 'i' };
        uint8_t in[1 + META_GIVEN + 4 + sizeof(body)] = { 0 };
        char path[4096];

        for (int i = 0; i < 4; i++) {
                FILE *f;
                size_t n = 0;

                in[n++] = (uint8_t) (i == 0 ? 0x06 : i == 1 ? 0x0e : i == 2 ? 0x01 : 0x16);
                if (in[0] & 2)
                        n += META_GIVEN;
                put_le32(in + n, sizeof(body));
                memcpy(in + n + 4, body, sizeof(body));
                n += 4 + sizeof(body);
                snprintf(path, sizeof(path), "%s/seed-%d", to, i);
                f = fopen(path, "we");
                if (!f || fwrite(in, 1, n, f) != n || fclose(f) != 0)
                        exit(1);
        }
}

static void cleanup(void) {
        (void) unlink(data_path);
        (void) unlink(crc_path);
        (void) rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        if (*argc >= 3 && strcmp((*argv)[1], "--seed") == 0) {
                write_seeds((*argv)[2]);
                exit(0);
        }
        if (!mkdtemp(dir))
                abort();
        snprintf(data_path, sizeof(data_path), "%s/mmkv", dir);
        snprintf(crc_path, sizeof(crc_path), "%s/mmkv.crc", dir);
        atexit(cleanup);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size) {
        static const char *const types[] = { "guess", "raw", "string", NULL };
        uint8_t meta[META_LEN] = { 0 }, *body;
        struct kv_mmkv_import args = { .path = data_path };
        size_t n = 0, len;
        int fd;
        unsigned opt;
        ashm_kv *kv;

        if (size < 1)
                return 0;
        opt = in[n++];
        if (opt & 2) {
                size_t m = size - n < META_GIVEN ? size - n : META_GIVEN;

                memcpy(meta, in + n, m);
                n += m;
        }
        len = size - n;
        body = malloc(len + 4);
        if (!body)
                abort();
        memcpy(body, in + n, len);
        if (opt & 4) {
                /* The size in the data file and the .crc's checksum of it. */
                uint32_t s = len >= 4 ? (uint32_t) (len - 4) : 0;

                if (len < 4) {
                        memset(body + len, 0, 4 - len);
                        len = 4;
                }
                put_le32(body, s);
                put_le32(meta, crc32_zlib(body + 4, s));
                put_le32(meta + 4, 3); /* version: actual size in the meta */
                put_le32(meta + 28, s);
        }
        write_file(data_path, body, len);
        free(body);
        if (opt & 2 || opt & 4)
                write_file(crc_path, meta, sizeof(meta));
        else
                (void) unlink(crc_path);
        args.force = opt & 1;
        args.dry_run = opt & 8;
        args.default_type = types[(opt >> 4) & 3];
        fd = memfd_create("fuzz-mmkv", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0 || ashm_kv_open_fd(fd, ASHM_KV_CREATE, &kv) < 0)
                abort();
        (void) kv_import_mmkv(kv, &args);
        ashm_kv_close(kv);
        close(fd);
        return 0;
}
