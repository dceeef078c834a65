/* SPDX-License-Identifier: MIT */
/* ashm kv STORE COMMAND: read and change a key-value store (ashm_kv_*),
 * on a file, on a region published with ashmd (@NAME), or on what another
 * process holds (PID:FD). This file finds the store, reads the command's
 * arguments, and turns values into text and back; libashm does the rest.
 *
 * Arguments are read by hand rather than with getopt: values are often
 * negative numbers ("set n -5 --type int32"), which getopt would take
 * for options. */
#include <ctype.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ashm.h"
#include "cli.h"
#include "fd-util.h"
#include "kv-mmkv.h"
#include "kv.h"
#include "macro.h"

/* ---- the store ------------------------------------------------------ */

enum store_kind { STORE_FILE, STORE_NAME, STORE_TARGET };

/* Which step of opening a store failed, to say why in the right words. */
enum store_step { STEP_LOOKUP, STEP_PROC, STEP_KV };

static enum store_kind store_kind(const char *store) {
        if (store[0] == '@')
                return STORE_NAME;
        return cli_looks_like_target(store) ? STORE_TARGET : STORE_FILE;
}

/* The file behind /proc/PID/fd/FD, if it is a regular file (memfds are).
 * stat() first: opening a FIFO can block, opening a device can have
 * side effects. */
static int target_open(const char *store, bool write) {
        _cleanup_close_ int fd = -1;
        char path[64];
        struct stat st;
        int pid, target;

        if (!cli_parse_target(store, &pid, &target))
                return -EINVAL;
        snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, target);
        if (stat(path, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EMEDIUMTYPE;
        fd = open(path, (write ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return negative_errno();
        /* The process may have put something else at FD since stat(). */
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return -EMEDIUMTYPE;
        return TAKE_FD(fd);
}

/* Never starts a daemon: a new one would hold no names. */
static int name_lookup(const char *store, bool write, ashm_region **ret_region) {
        if (!cli_name_valid(store + 1))
                return -EINVAL;
        cli_no_autostart();
        return ashm_lookup(store + 1, write ? ASHM_LOOKUP_WRITE : 0, ret_region);
}

static int store_open_step(const char *store, unsigned flags, ashm_kv **ret_kv, enum store_step *ret_step) {
        bool write = !(flags & ASHM_KV_RDONLY);
        _cleanup_close_ int fd = -1;
        ashm_region *region = NULL;
        int r;

        switch (store_kind(store)) {
        case STORE_NAME:
                *ret_step = STEP_LOOKUP;
                r = name_lookup(store, write, &region);
                if (r < 0)
                        return r;
                *ret_step = STEP_KV;
                r = ashm_kv_open_region(region, flags, ret_kv);
                ashm_region_close(region);
                return r;
        case STORE_TARGET:
                *ret_step = STEP_PROC;
                fd = target_open(store, write);
                if (fd < 0)
                        return fd;
                *ret_step = STEP_KV;
                return ashm_kv_open_fd(fd, flags, ret_kv);
        default:
                *ret_step = STEP_KV;
                return ashm_kv_open(store, flags, ret_kv);
        }
}

int kv_store_open(const char *store, unsigned flags, ashm_kv **ret_kv) {
        enum store_step step;

        return store_open_step(store, flags, ret_kv, &step);
}

/* A read-only fd on the store's file or region, for check and repair,
 * which read a store that may be too damaged to open. */
static int store_fd(const char *store, enum store_step *ret_step) {
        ashm_region *region = NULL;
        int fd, r;

        switch (store_kind(store)) {
        case STORE_NAME:
                *ret_step = STEP_LOOKUP;
                r = name_lookup(store, false, &region);
                if (r < 0)
                        return r;
                fd = fcntl(ashm_region_fd(region), F_DUPFD_CLOEXEC, 3);
                r = fd < 0 ? negative_errno() : fd;
                ashm_region_close(region);
                return r;
        case STORE_TARGET:
                *ret_step = STEP_PROC;
                return target_open(store, false);
        default:
                *ret_step = STEP_KV;
                fd = open(store, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
                return fd < 0 ? negative_errno() : fd;
        }
}

/* ---- the command ---------------------------------------------------- */

enum {
        OPT_TYPE = 1u << 0,
        OPT_FILE = 1u << 1,
        OPT_RAW = 1u << 2,
        OPT_JSON = 1u << 3,
        OPT_OUTPUT = 1u << 4,
};

/* Not opened by the dispatcher: check and repair read the store's fd. */
#define NO_OPEN (~0u)

struct kv_cmd;

struct kv_verb {
        const char *name;
        int (*run)(struct kv_cmd *c);
        /* Before the store is opened (which may create it): check the
         * arguments, read the value. -1 to go on, or an exit status. */
        int (*prepare)(struct kv_cmd *c);
        unsigned open; /* flags for kv_store_open(), or NO_OPEN */
        unsigned options;
        int min_args, max_args;
        const char *args; /* what the arguments are, for messages */
        /* A command of kv-mmkv.c: reads its own arguments. */
        int (*ext)(ashm_kv *kv, int argc, char *argv[]);
};

struct kv_cmd {
        const struct kv_verb *verb;
        const char *store;
        char *shown; /* store as a shell word, for messages */
        enum store_kind kind;
        ashm_kv *kv;

        const char *type_name, *file, *output;
        bool json, raw, help;
        const char *args[2];
        int nargs;

        /* set: the value, encoded as enum ashm_kv_type says. */
        int type;
        uint8_t num[8];
        uint8_t *data; /* string or bytes, or NULL: num */
        size_t len;
};

static int oom(void) {
        fputs("ashm: out of memory\n", stderr);
        return EXIT_FAILURE;
}

/* A key, or another value from the command line, as a shell word. */
static int with_word(const char *s, char **ret) {
        *ret = shell_word(s);
        return *ret ? 0 : -ENOMEM;
}

/* libashm's word on the failure just returned, as ": DETAIL", escaped
 * (it may quote a key), or "". */
static const char *detail(char *buf, size_t len) {
        _cleanup_free_ char *d = NULL;
        const char *s = ashm_kv_error_detail();

        buf[0] = '\0';
        if (s && *s && (d = cescape(s)))
                snprintf(buf, len, ": %s", d);
        return buf;
}

/* "an" before int32 and int64, as one says them, else "a". */
static const char *article(int type) {
        return type == ASHM_KV_INT32 || type == ASHM_KV_INT64 ? "an" : "a";
}

/* A request about key (NULL: about the store) failed with r. */
static int kv_failed(const struct kv_cmd *c, const char *doing, const char *key, int r) {
        _cleanup_free_ char *k = NULL;
        char d[1100];

        if (key && with_word(key, &k) < 0)
                return oom();
        if (r == -ENOENT && key)
                fprintf(stderr, "ashm: no such key %s in %s\n", k, c->shown);
        else if (r == -EBADMSG && key)
                fprintf(stderr, "ashm: the record of %s in %s is damaged%s (see 'ashm kv %s check')\n", k,
                        c->shown, detail(d, sizeof(d)), c->shown);
        else if (r == -EROFS)
                fprintf(stderr, "ashm: cannot %s: %s is read-only\n", doing, c->shown);
        else if (r == -EPROTOTYPE && key && *detail(d, sizeof(d)))
                /* libashm's words: "key "K" holds a string, not an int32". */
                fprintf(stderr, "ashm: cannot %s %s in %s%s\n", doing, k, c->shown, d);
        else if (key)
                fprintf(stderr, "ashm: cannot %s %s in %s: %s\n", doing, k, c->shown, strerror(-r));
        else
                fprintf(stderr, "ashm: cannot %s %s: %s\n", doing, c->shown, strerror(-r));
        return EXIT_FAILURE;
}

static int lookup_failed(const struct kv_cmd *c, int r) {
        if (r == -EACCES) {
                fprintf(stderr, "ashm: you may only read %s, and '%s' writes to it\n", c->shown, c->verb->name);
                return EXIT_FAILURE;
        }
        return cli_name_failed("look up", c->store + 1, r);
}

static int target_failed(const struct kv_cmd *c, int r) {
        char path[64], proc[32];
        int pid = 0, fd = 0;

        cli_parse_target(c->store, &pid, &fd);
        snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
        snprintf(proc, sizeof(proc), "/proc/%d", pid);
        if (r == -ENOENT && access(proc, F_OK) < 0)
                fprintf(stderr, "ashm: no process %d (see 'ashm ls')\n", pid);
        else if (r == -ENOENT)
                fprintf(stderr, "ashm: process %d has no fd %d (see 'ashm ls')\n", pid, fd);
        else if (r == -EMEDIUMTYPE)
                fprintf(stderr, "ashm: %s is not a file or a memfd region, so not a store\n", c->store);
        else if (r == -EACCES || r == -EPERM)
                fprintf(stderr, "ashm: cannot open %s: %s (another user's process needs that user or root)\n",
                        path, strerror(-r));
        else
                fprintf(stderr, "ashm: cannot open %s: %s\n", path, strerror(-r));
        return EXIT_FAILURE;
}

static int open_failed(const struct kv_cmd *c, int r) {
        const char *s = c->shown;
        char d[1100];

        if (r == -ENOENT && c->kind == STORE_FILE && c->verb->open != NO_OPEN &&
            (c->verb->open & ASHM_KV_CREATE))
                fprintf(stderr, "ashm: cannot create store %s: %s\n", s, strerror(-r));
        else if (r == -ENOENT && c->kind == STORE_FILE)
                fprintf(stderr, "ashm: no such store %s ('ashm kv %s set KEY VALUE' creates it)\n", s, s);
        else if (r == -ENODATA)
                fprintf(stderr, "ashm: %s is empty: not a store yet ('ashm kv %s set KEY VALUE' makes it one)\n", s,
                        s);
        else if (r == -EBADMSG && *detail(d, sizeof(d)))
                fprintf(stderr, "ashm: cannot open store %s%s (see 'ashm kv %s check')\n", s, d, s);
        else if (r == -EBADMSG)
                fprintf(stderr, "ashm: %s is not an ashm kv store, or its header is damaged (see 'ashm kv %s check')\n",
                        s, s);
        else if (r == -EUCLEAN)
                fprintf(stderr,
                        "ashm: %s was open when the machine went down, and records written since its last sync "
                        "are damaged%s: run 'ashm kv %s repair'\n",
                        s, detail(d, sizeof(d)), s);
        else if (r == -EPROTONOSUPPORT)
                fprintf(stderr, "ashm: %s is a store of a newer format than libashm %s reads%s\n", s,
                        ashm_version(), detail(d, sizeof(d)));
        else
                fprintf(stderr, "ashm: cannot open store %s: %s\n", s, strerror(-r));
        return EXIT_FAILURE;
}

static int store_failed(const struct kv_cmd *c, enum store_step step, int r) {
        if (r == -ENOMEM)
                return oom();
        if (step == STEP_LOOKUP)
                return lookup_failed(c, r);
        if (step == STEP_PROC)
                return target_failed(c, r);
        return open_failed(c, r);
}

/* ---- values: text to encoding --------------------------------------- */

static const char *expected(int type) {
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

static void put_le32(uint8_t *p, uint32_t v) {
        v = htole32(v);
        memcpy(p, &v, 4);
}

static void put_le64(uint8_t *p, uint64_t v) {
        v = htole64(v);
        memcpy(p, &v, 8);
}

/* The encoding of a bool or number typed on the command line into buf
 * (enum ashm_kv_type); false if s is not one. */
static bool encode_number(int type, const char *s, uint8_t buf[8], size_t *ret_len) {
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
        default: /* ASHM_KV_DOUBLE */
                if (!parse_real(s, false, &d))
                        return false;
                memcpy(&u, &d, 8);
                put_le64(buf, u);
                *ret_len = 8;
                return true;
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

/* Hex, either case, two digits a byte; "" is no bytes. */
static int hex_decode(const char *s, uint8_t **ret, size_t *ret_len) {
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

/* All of fd, up to the largest value a store takes: -EFBIG past it. */
static int read_all(int fd, uint8_t **ret, size_t *ret_len) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len = 0, cap = 0;

        for (;;) {
                ssize_t n;

                if (len == cap) {
                        uint8_t *p;

                        if (cap > ASHM_KV_VALUE_MAX)
                                return -EFBIG;
                        cap = cap ? cap * 2 : 65536;
                        p = realloc(buf, cap + 1);
                        if (!p)
                                return -ENOMEM;
                        buf = p;
                }
                n = read(fd, buf + len, cap - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        if (len > ASHM_KV_VALUE_MAX)
                return -EFBIG;
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

static int bad_value(const struct kv_cmd *c, const char *value) {
        _cleanup_free_ char *v = cescape(value);

        if (!v)
                return oom();
        fprintf(stderr, "ashm kv set: '%s' is not %s%s: expected %s\n", v,
                c->type == ASHM_KV_INT32 || c->type == ASHM_KV_INT64 ? "an "
                : c->type == ASHM_KV_BYTES                          ? ""
                                                                    : "a ",
                ashm_kv_type_name(c->type), expected(c->type));
        return EXIT_USAGE;
}

static int value_from_file(struct kv_cmd *c) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *f = NULL;
        bool in = strcmp(c->file, "-") == 0;
        int r;

        if (with_word(c->file, &f) < 0)
                return oom();
        fd = in ? STDIN_FILENO : open(c->file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                fprintf(stderr, "ashm: cannot open %s: %s\n", f, strerror(errno));
                return EXIT_FAILURE;
        }
        r = read_all(fd, &c->data, &c->len);
        if (in)
                fd = -1; /* not ours to close */
        if (r == -EFBIG)
                fprintf(stderr, "ashm: %s is larger than the %u MiB a value may hold\n", in ? "standard input" : f,
                        ASHM_KV_VALUE_MAX >> 20);
        else if (r < 0)
                fprintf(stderr, "ashm: cannot read %s: %s\n", in ? "standard input" : f, strerror(-r));
        if (r < 0)
                return EXIT_FAILURE;
        if (c->type == ASHM_KV_STRING && memchr(c->data, '\0', c->len)) {
                fprintf(stderr, "ashm kv set: %s holds a NUL byte, which a string cannot; use --type bytes\n",
                        in ? "standard input" : f);
                return EXIT_USAGE;
        }
        return -1;
}

static int value_from_text(struct kv_cmd *c, const char *text) {
        int r;

        if (c->type == ASHM_KV_STRING) {
                c->data = (uint8_t *) strdup(text);
                c->len = strlen(text);
                return c->data ? -1 : oom();
        }
        if (c->type == ASHM_KV_BYTES) {
                r = hex_decode(text, &c->data, &c->len);
                if (r == -ENOMEM)
                        return oom();
                return r < 0 ? bad_value(c, text) : -1;
        }
        return encode_number(c->type, text, c->num, &c->len) ? -1 : bad_value(c, text);
}

static int check_key(const struct kv_cmd *c, const char *key) {
        size_t n = strlen(key);

        if (n >= 1 && n <= ASHM_KV_KEY_MAX)
                return -1;
        fprintf(stderr, "ashm kv %s: a key is 1 to %d bytes; this one has %zu\n", c->verb->name, ASHM_KV_KEY_MAX,
                n);
        return EXIT_USAGE;
}

static int prepare_key(struct kv_cmd *c) {
        return check_key(c, c->args[0]);
}

/* --type TYPE, for set and get: -1 to go on, or EXIT_USAGE. */
static int parse_type(struct kv_cmd *c) {
        c->type = ASHM_KV_STRING;
        if (c->type_name) {
                c->type = ashm_kv_type_from_name(c->type_name);
                if (c->type < 0) {
                        _cleanup_free_ char *t = cescape(c->type_name);

                        fprintf(stderr,
                                "ashm kv %s: unknown type '%s'; expected bool, int32, int64, uint64, float, double, "
                                "string or bytes\n",
                                c->verb->name, t ? t : "?");
                        return EXIT_USAGE;
                }
        }
        return -1;
}

static int prepare_get(struct kv_cmd *c) {
        int r = parse_type(c);

        return r >= 0 ? r : prepare_key(c);
}

static int prepare_set(struct kv_cmd *c) {
        int r;

        r = parse_type(c);
        if (r >= 0)
                return r;
        if (c->file && c->nargs != 1) {
                fputs("ashm kv set: expected KEY --file FILE: the file holds the value\n", stderr);
                return EXIT_USAGE;
        }
        if (!c->file && c->nargs != 2) {
                fputs("ashm kv set: expected KEY VALUE, or KEY --file FILE; see 'ashm help kv'\n", stderr);
                return EXIT_USAGE;
        }
        if (c->file && c->type != ASHM_KV_STRING && c->type != ASHM_KV_BYTES) {
                fputs("ashm kv set: --file is for string and bytes values; give a number as VALUE\n", stderr);
                return EXIT_USAGE;
        }
        r = check_key(c, c->args[0]);
        if (r >= 0)
                return r;
        return c->file ? value_from_file(c) : value_from_text(c, c->args[1]);
}

/* ---- values: encoding to text --------------------------------------- */

struct value {
        int type;
        uint8_t *data; /* NUL-terminated past len, for strings */
        size_t len;
};

static uint32_t get_le32(const uint8_t *p) {
        uint32_t v;

        memcpy(&v, p, 4);
        return le32toh(v);
}

static uint64_t get_le64(const uint8_t *p) {
        uint64_t v;

        memcpy(&v, p, 8);
        return le64toh(v);
}

/* The value of key, whatever its type and length (which another process
 * may change between two calls: ask again until it fits). */
static int value_get(ashm_kv *kv, const char *key, struct value *ret) {
        size_t size = 64;

        for (;;) {
                uint8_t *buf = malloc(size + 1);
                size_t len = 0;
                int type = 0, r;

                if (!buf)
                        return -ENOMEM;
                r = ashm_kv_get(kv, key, &type, buf, size, &len);
                if (r >= 0 && len <= size) {
                        buf[len] = '\0';
                        *ret = (struct value) { .type = type, .data = buf, .len = len };
                        return 0;
                }
                free(buf);
                if (r < 0)
                        return r;
                size = len;
        }
}

/* The length the type's encoding has (0: any). */
static size_t type_len(int type) {
        switch (type) {
        case ASHM_KV_BOOL:
                return 1;
        case ASHM_KV_INT32:
        case ASHM_KV_FLOAT:
                return 4;
        case ASHM_KV_INT64:
        case ASHM_KV_UINT64:
        case ASHM_KV_DOUBLE:
                return 8;
        default:
                return 0;
        }
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

/* A number or bool as text, as `get` prints it and JSON takes it (but
 * for nan and inf, which JSON lacks). */
static void format_number(const struct value *v, char *buf, size_t len) {
        uint32_t u32;
        uint64_t u64;
        float f;
        double d;

        switch (v->type) {
        case ASHM_KV_BOOL:
                snprintf(buf, len, "%s", v->data[0] ? "true" : "false");
                break;
        case ASHM_KV_INT32:
                snprintf(buf, len, "%" PRId32, (int32_t) get_le32(v->data));
                break;
        case ASHM_KV_INT64:
                snprintf(buf, len, "%" PRId64, (int64_t) get_le64(v->data));
                break;
        case ASHM_KV_UINT64:
                snprintf(buf, len, "%" PRIu64, get_le64(v->data));
                break;
        case ASHM_KV_FLOAT:
                u32 = get_le32(v->data);
                memcpy(&f, &u32, 4);
                kv_format_real(f, true, buf, len);
                break;
        default: /* ASHM_KV_DOUBLE */
                u64 = get_le64(v->data);
                memcpy(&d, &u64, 8);
                kv_format_real(d, false, buf, len);
                break;
        }
}

static void put_hex(const uint8_t *p, size_t len) {
        static const char hex[] = "0123456789abcdef";

        for (size_t i = 0; i < len && !ferror(stdout); i++) {
                putchar(hex[p[i] >> 4]);
                putchar(hex[p[i] & 0xf]);
        }
}

/* What `get` prints: numbers as text, strings as they are, bytes in hex,
 * each with a newline; with raw, the encoding as stored and no newline. */
static void print_value(const struct value *v, bool raw) {
        char num[64];

        if (raw)
                fwrite(v->data, 1, v->len, stdout);
        else if (v->type == ASHM_KV_STRING) {
                fwrite(v->data, 1, v->len, stdout);
                putchar('\n');
        } else if (v->type == ASHM_KV_BYTES || type_len(v->type) != v->len) {
                put_hex(v->data, v->len);
                putchar('\n');
        } else {
                format_number(v, num, sizeof(num));
                puts(num);
        }
}

static void json_put_value(const struct value *v) {
        char num[64];

        if (v->type == ASHM_KV_STRING)
                json_put_string((const char *) v->data, stdout);
        else if (v->type == ASHM_KV_BYTES || type_len(v->type) != v->len) {
                putchar('"');
                put_hex(v->data, v->len);
                putchar('"');
        } else {
                format_number(v, num, sizeof(num));
                /* JSON has no nan or inf: they go as strings, which
                 * `set --type double` reads back. */
                if (strcmp(num, "nan") == 0 || strcmp(num, "inf") == 0 || strcmp(num, "-inf") == 0)
                        printf("\"%s\"", num);
                else
                        fputs(num, stdout);
        }
}

/* ---- set, get, del, count, compact ---------------------------------- */

static int kv_set(struct kv_cmd *c) {
        const void *value = c->data ? (const void *) c->data : (const void *) c->num;
        int r;

        r = ashm_kv_set(c->kv, c->args[0], c->type, value, c->len);
        if (r == -ENOSPC || r == -EFBIG) {
                fprintf(stderr, "ashm: cannot set a key in %s: the store cannot grow: %s\n", c->shown, strerror(-r));
                return EXIT_FAILURE;
        }
        return r < 0 ? kv_failed(c, "set", c->args[0], r) : EXIT_SUCCESS;
}

static int kv_get(struct kv_cmd *c) {
        struct value v;
        int r;

        r = value_get(c->kv, c->args[0], &v);
        if (r == -ENOMEM)
                return oom();
        if (r < 0)
                return kv_failed(c, "read", c->args[0], r);
        /* --type: a script that expects an int32 must not get a string
         * it would misread. Said as libashm's typed getters say it. */
        if (c->type_name && v.type != c->type) {
                _cleanup_free_ char *k = NULL;

                free(v.data);
                if (with_word(c->args[0], &k) < 0)
                        return oom();
                fprintf(stderr, "ashm: key %s in %s holds %s %s, not %s %s\n", k, c->shown, article(v.type),
                        ashm_kv_type_name(v.type) ?: "?", article(c->type), ashm_kv_type_name(c->type));
                return EXIT_FAILURE;
        }
        print_value(&v, c->raw);
        free(v.data);
        return EXIT_SUCCESS;
}

static int kv_del(struct kv_cmd *c) {
        int r = ashm_kv_remove(c->kv, c->args[0]);

        return r < 0 ? kv_failed(c, "remove", c->args[0], r) : EXIT_SUCCESS;
}

static int kv_count(struct kv_cmd *c) {
        uint64_t n;
        int r = ashm_kv_count(c->kv, &n);

        if (r < 0)
                return kv_failed(c, "count the keys of", NULL, r);
        printf("%" PRIu64 "\n", n);
        return EXIT_SUCCESS;
}

static int kv_compact(struct kv_cmd *c) {
        ashm_kv_stats before, after;
        char a[32], b[32];
        int r;

        r = ashm_kv_stats_get(c->kv, &before);
        if (r >= 0)
                r = ashm_kv_compact(c->kv);
        if (r >= 0)
                r = ashm_kv_stats_get(c->kv, &after);
        if (r < 0)
                return kv_failed(c, "compact", NULL, r);
        format_size_u64(before.log_used, a, sizeof(a));
        format_size_u64(after.log_used, b, sizeof(b));
        printf("compacted %s: log %s before, %s after\n", c->shown, a, b);
        return EXIT_SUCCESS;
}

/* ---- ls, dump -------------------------------------------------------- */

struct entry {
        char *key;
        int type;
        size_t len;
};

struct entries {
        struct entry *e;
        size_t n, cap;
};

static void entries_done(struct entries *es) {
        for (size_t i = 0; i < es->n; i++)
                free(es->e[i].key);
        free(es->e);
}

static int entry_add(const char *key, int type, size_t value_len, void *userdata) {
        struct entries *es = userdata;

        if (es->n == es->cap) {
                size_t cap = es->cap ? es->cap * 2 : 64;
                struct entry *e = reallocarray(es->e, cap, sizeof(*e));

                if (!e)
                        return -ENOMEM;
                es->e = e;
                es->cap = cap;
        }
        es->e[es->n].key = strdup(key);
        if (!es->e[es->n].key)
                return -ENOMEM;
        es->e[es->n].type = type;
        es->e[es->n].len = value_len;
        es->n++;
        return 0;
}

static int entry_cmp(const void *a, const void *b) {
        const struct entry *x = a, *y = b;

        return strcmp(x->key, y->key);
}

/* Every key of one snapshot, sorted bytewise: the store keeps no order. */
static int entries_get(struct kv_cmd *c, struct entries *es) {
        int r = ashm_kv_foreach(c->kv, entry_add, es);

        if (r == -ENOMEM)
                return oom();
        if (r < 0)
                return kv_failed(c, "list the keys of", NULL, r);
        if (es->n > 0)
                qsort(es->e, es->n, sizeof(*es->e), entry_cmp);
        return -1;
}

static const char *type_name(int type) {
        const char *n = ashm_kv_type_name(type);

        return n ? n : "?";
}

static int print_table(const struct entries *es) {
        size_t wtype = strlen("TYPE"), wsize = strlen("SIZE");
        char size[32];

        for (size_t i = 0; i < es->n; i++) {
                format_size_u64(es->e[i].len, size, sizeof(size));
                wtype = MAX(wtype, strlen(type_name(es->e[i].type)));
                wsize = MAX(wsize, text_width(size));
        }
        print_cell("TYPE", wtype, false);
        print_cell("SIZE", wsize, true);
        puts("KEY");
        for (size_t i = 0; i < es->n && !ferror(stdout); i++) {
                _cleanup_free_ char *key = cescape(es->e[i].key);

                if (!key)
                        return oom();
                format_size_u64(es->e[i].len, size, sizeof(size));
                print_cell(type_name(es->e[i].type), wtype, false);
                print_cell(size, wsize, true);
                puts(key);
        }
        return EXIT_SUCCESS;
}

/* One object per line, so that grep still works on the output. */
static void print_entries_json(const struct entries *es) {
        putchar('[');
        for (size_t i = 0; i < es->n && !ferror(stdout); i++) {
                fputs(i == 0 ? "\n  {\"key\":" : ",\n  {\"key\":", stdout);
                json_put_string(es->e[i].key, stdout);
                printf(",\"type\":\"%s\",\"size\":%zu}", type_name(es->e[i].type), es->e[i].len);
        }
        puts(es->n ? "\n]" : "]");
}

static int kv_ls(struct kv_cmd *c) {
        struct entries es = {};
        int r;

        r = entries_get(c, &es);
        if (r < 0 && c->json) {
                print_entries_json(&es);
                r = EXIT_SUCCESS;
        } else if (r < 0)
                r = print_table(&es);
        entries_done(&es);
        return r;
}

/* One key of dump: -1 if it went since the snapshot (not printed), or an
 * exit status. */
static int dump_one(struct kv_cmd *c, const char *key, bool first) {
        struct value v;
        int r;

        r = value_get(c->kv, key, &v);
        if (r == -ENOENT)
                return -1;
        if (r == -ENOMEM)
                return oom();
        if (r < 0)
                return kv_failed(c, "read", key, r);
        fputs(first ? "\n  {\"key\":" : ",\n  {\"key\":", stdout);
        json_put_string(key, stdout);
        printf(",\"type\":\"%s\",\"value\":", type_name(v.type));
        json_put_value(&v);
        putchar('}');
        free(v.data);
        return EXIT_SUCCESS;
}

/* Keys whose record is damaged are left out, each said on stderr, and
 * the rest printed all the same: the exit status tells. */
static int kv_dump(struct kv_cmd *c) {
        struct entries es = {};
        int r, status = EXIT_SUCCESS;
        bool first = true;

        r = entries_get(c, &es);
        if (r >= 0) {
                entries_done(&es);
                return r;
        }
        putchar('[');
        for (size_t i = 0; i < es.n && !ferror(stdout); i++) {
                r = dump_one(c, es.e[i].key, first);
                if (r == EXIT_SUCCESS)
                        first = false;
                else if (r >= 0)
                        status = r;
        }
        puts(first ? "]" : "\n]");
        entries_done(&es);
        return status;
}

/* ---- stats ------------------------------------------------------------ */

#define LABEL "%-12s "

static void print_stats(const ashm_kv_stats *s) {
        char a[32], b[32];

        printf(LABEL "%" PRIu64 "\n", "keys:", s->keys);
        format_size_u64(s->file_size, a, sizeof(a));
        format_size_u64(s->allocated, b, sizeof(b));
        printf(LABEL "%s (%s allocated)\n", "file:", a, b);
        format_size_u64(s->live_bytes, a, sizeof(a));
        format_size_u64(s->dead_bytes, b, sizeof(b));
        printf(LABEL "%s live, %s dead (overwritten or removed)\n", "records:", a, b);
        format_size_u64(s->log_used, a, sizeof(a));
        format_size_u64(s->log_size, b, sizeof(b));
        printf(LABEL "%s used of %s\n", "log:", a, b);
        printf(LABEL "%" PRIu64 " slots\n", "index:", s->slots);
        printf(LABEL "%" PRIu64 "\n", "rebuilds:", s->rebuilds);
        printf(LABEL "%" PRIu64 "\n", "recoveries:", s->recoveries);
        printf(LABEL "version %" PRIu32 "\n", "format:", s->version);
}

static void print_stats_json(const ashm_kv_stats *s) {
        printf("{\"keys\":%" PRIu64 ",\"file_size\":%" PRIu64 ",\"allocated\":%" PRIu64 ",\"live_bytes\":%" PRIu64
               ",\"dead_bytes\":%" PRIu64 ",\"log_used\":%" PRIu64 ",\"log_size\":%" PRIu64 ",\"slots\":%" PRIu64
               ",\"rebuilds\":%" PRIu64 ",\"recoveries\":%" PRIu64 ",\"version\":%" PRIu32 "}\n",
               s->keys, s->file_size, s->allocated, s->live_bytes, s->dead_bytes, s->log_used, s->log_size,
               s->slots, s->rebuilds, s->recoveries, s->version);
}

static int kv_stats(struct kv_cmd *c) {
        ashm_kv_stats s;
        int r = ashm_kv_stats_get(c->kv, &s);

        if (r < 0)
                return kv_failed(c, "read the statistics of", NULL, r);
        if (c->json)
                print_stats_json(&s);
        else
                print_stats(&s);
        return EXIT_SUCCESS;
}

/* ---- check, repair --------------------------------------------------- */

/* One damaged part, as libashm found it. */
static void damage_print(uint64_t offset, uint64_t length, const char *what, void *userdata) {
        _cleanup_free_ char *w = cescape(what);

        printf("damaged: offset %" PRIu64 ", %" PRIu64 " byte%s: %s\n", offset, length, length == 1 ? "" : "s",
               w ? w : "?");
}

static const char *plural(uint64_t n) {
        return n == 1 ? "" : "s";
}

/* "3 damaged parts of the log, 1.2 KiB; 2 index errors; the header":
 * what the report counts, those that it counts at all. */
static void print_damage(const ashm_kv_report *rep) {
        const char *sep = "";
        char size[32];

        if (rep->damaged) {
                format_size_u64(rep->damaged_bytes, size, sizeof(size));
                printf("%" PRIu64 " damaged part%s of the log, %s", rep->damaged, plural(rep->damaged), size);
                sep = "; ";
        }
        if (rep->index_errors) {
                printf("%s%" PRIu64 " index error%s", sep, rep->index_errors, plural(rep->index_errors));
                sep = "; ";
        }
        if (!rep->header_ok)
                printf("%sthe header", sep);
}

/* "12 records, 10 keys" */
static void print_kept(const ashm_kv_report *rep) {
        printf("%" PRIu64 " record%s, %" PRIu64 " key%s", rep->records, plural(rep->records), rep->keys,
               plural(rep->keys));
}

static int check_failed(const struct kv_cmd *c, enum store_step step, int r) {
        char d[1100];

        if (r == -EBADMSG && *detail(d, sizeof(d))) {
                fprintf(stderr, "ashm: cannot %s %s%s\n", c->verb->name, c->shown, d);
                return EXIT_FAILURE;
        }
        if (r == -EBADMSG) {
                fprintf(stderr, "ashm: %s is not an ashm kv store (it has no store header)\n", c->shown);
                return EXIT_FAILURE;
        }
        if (r == -ENOENT && step == STEP_KV) {
                fprintf(stderr, "ashm: no such store %s\n", c->shown);
                return EXIT_FAILURE;
        }
        if (step != STEP_KV)
                return store_failed(c, step, r);
        fprintf(stderr, "ashm: cannot %s %s: %s\n", c->verb->name, c->shown, strerror(-r));
        return EXIT_FAILURE;
}

static int kv_check(struct kv_cmd *c) {
        ashm_kv_report rep = {};
        enum store_step step;
        _cleanup_close_ int fd = -1;
        int r;

        fd = store_fd(c->store, &step);
        if (fd < 0)
                return check_failed(c, step, fd);
        r = ashm_kv_check_fd(fd, damage_print, NULL, &rep);
        if (r < 0)
                return check_failed(c, STEP_KV, r);
        if (r == 0) {
                printf("%s: intact: ", c->shown);
                print_kept(&rep);
                putchar('\n');
                return EXIT_SUCCESS;
        }
        printf("%s: damaged (", c->shown);
        print_damage(&rep);
        fputs("); intact: ", stdout);
        print_kept(&rep);
        printf(", which 'ashm kv %s repair%s' keeps\n", c->shown, c->kind == STORE_FILE ? "" : " --output FILE");
        return EXIT_DAMAGED;
}

static void print_repaired(const struct kv_cmd *c, int r, const ashm_kv_report *rep, const char *to) {
        if (r == 0)
                printf("%s: intact, nothing to repair: ", c->shown);
        else {
                printf("repaired %s (", c->shown);
                print_damage(rep);
                fputs("): kept ", stdout);
        }
        print_kept(rep);
        if (to)
                printf("; %s is the %s copy\n", to, r == 0 ? "new" : "repaired");
        else if (r > 0)
                printf("; the damaged original is %s.damaged\n", c->shown);
        else
                putchar('\n');
}

/* In place: libashm writes the repaired store beside it and renames. */
static int repair_file(struct kv_cmd *c) {
        ashm_kv_report rep = {};
        int r;

        r = ashm_kv_repair(c->store, damage_print, NULL, &rep);
        if (r == -EBUSY) {
                fprintf(stderr, "ashm: %s is open in another process; repair it once nothing uses it\n", c->shown);
                return EXIT_FAILURE;
        }
        if (r < 0)
                return check_failed(c, STEP_KV, r);
        print_repaired(c, r, &rep, NULL);
        return EXIT_SUCCESS;
}

/* A new file, never one that exists: it may be the only good copy. */
static int repair_to(struct kv_cmd *c) {
        _cleanup_close_ int src = -1, dst = -1;
        _cleanup_free_ char *out = NULL;
        ashm_kv_report rep = {};
        enum store_step step;
        int r;

        if (with_word(c->output, &out) < 0)
                return oom();
        src = store_fd(c->store, &step);
        if (src < 0)
                return check_failed(c, step, src);
        dst = open(c->output, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600);
        if (dst < 0) {
                fprintf(stderr, "ashm: cannot create %s: %s%s\n", out, strerror(errno),
                        errno == EEXIST ? " (give a new file to write the repaired store to)" : "");
                return EXIT_FAILURE;
        }
        r = ashm_kv_repair_fd(src, dst, damage_print, NULL, &rep);
        if (r >= 0 && fsync(dst) < 0)
                r = negative_errno();
        if (r < 0) {
                unlink(c->output);
                return check_failed(c, STEP_KV, r);
        }
        print_repaired(c, r, &rep, out);
        return EXIT_SUCCESS;
}

static int kv_repair(struct kv_cmd *c) {
        return c->output ? repair_to(c) : repair_file(c);
}

static int prepare_repair(struct kv_cmd *c) {
        if (c->output || c->kind == STORE_FILE)
                return -1;
        fprintf(stderr,
                "ashm kv repair: a store in a region cannot be replaced in place: give --output FILE for the "
                "repaired copy\n");
        return EXIT_USAGE;
}

static int prepare_dump(struct kv_cmd *c) {
        if (c->json)
                return -1;
        fputs("ashm kv dump: --json is the only format for now: 'ashm kv STORE dump --json'\n", stderr);
        return EXIT_USAGE;
}

/* ---- the table of commands ------------------------------------------- */

static const struct kv_verb kv_verbs[] = {
        { "set", kv_set, prepare_set, ASHM_KV_CREATE, OPT_TYPE | OPT_FILE, 1, 2, "KEY VALUE, or KEY --file FILE" },
        { "get", kv_get, prepare_get, ASHM_KV_RDONLY, OPT_RAW | OPT_TYPE, 1, 1, "KEY" },
        { "del", kv_del, prepare_key, 0, 0, 1, 1, "KEY" },
        { "ls", kv_ls, NULL, ASHM_KV_RDONLY, OPT_JSON, 0, 0, NULL },
        { "dump", kv_dump, prepare_dump, ASHM_KV_RDONLY, OPT_JSON, 0, 0, NULL },
        { "count", kv_count, NULL, ASHM_KV_RDONLY, 0, 0, 0, NULL },
        { "stats", kv_stats, NULL, ASHM_KV_RDONLY, OPT_JSON, 0, 0, NULL },
        { "compact", kv_compact, NULL, 0, 0, 0, 0, NULL },
        { "check", kv_check, NULL, NO_OPEN, 0, 0, 0, NULL },
        { "repair", kv_repair, prepare_repair, NO_OPEN, OPT_OUTPUT, 0, 0, NULL },
        { "import-mmkv", NULL, NULL, ASHM_KV_CREATE, 0, 0, 0, NULL, kv_import_mmkv },
        { "export-mmkv", NULL, NULL, ASHM_KV_RDONLY, 0, 0, 0, NULL, kv_export_mmkv },
};

static const struct kv_verb *kv_verb_find(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(kv_verbs); i++)
                if (strcmp(kv_verbs[i].name, name) == 0)
                        return &kv_verbs[i];
        return NULL;
}

/* ---- arguments -------------------------------------------------------- */

static const struct kv_option {
        const char *name;
        unsigned bit;
        bool takes_arg;
} kv_options[] = {
        { "--type", OPT_TYPE, true },
        { "--file", OPT_FILE, true },
        { "--raw", OPT_RAW, false },
        { "--json", OPT_JSON, false },
        { "--output", OPT_OUTPUT, true },
};

static bool is_help(const char *arg) {
        return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

/* "-5", "-.5", "-inf", "-nan": a negative number, not an option. */
static bool looks_negative(const char *s) {
        return s[0] == '-' &&
               ((s[1] >= '0' && s[1] <= '9') || s[1] == '.' || strncasecmp(s + 1, "inf", 3) == 0 ||
                strncasecmp(s + 1, "nan", 3) == 0);
}

static int bad_option(const struct kv_cmd *c, const char *what, const char *arg, const char *hint) {
        _cleanup_free_ char *a = cescape(arg);

        fprintf(stderr, "ashm kv %s: %s '%s'%s; see 'ashm help kv'\n", c->verb->name, what, a ? a : "?", hint);
        return EXIT_USAGE;
}

static void option_set(struct kv_cmd *c, unsigned bit, const char *value) {
        switch (bit) {
        case OPT_TYPE:
                c->type_name = value;
                break;
        case OPT_FILE:
                c->file = value;
                break;
        case OPT_RAW:
                c->raw = true;
                break;
        case OPT_JSON:
                c->json = true;
                break;
        default:
                c->output = value;
                break;
        }
}

/* The option at argv[*i], "--name VALUE" or "--name=VALUE". */
static int parse_option(struct kv_cmd *c, int argc, char *argv[], int *i) {
        const char *arg = argv[*i], *eq = strchr(arg, '=');
        size_t n = eq ? (size_t) (eq - arg) : strlen(arg);

        if (is_help(arg)) {
                c->help = true;
                return -1;
        }
        for (size_t k = 0; k < ELEMENTSOF(kv_options); k++) {
                const struct kv_option *o = &kv_options[k];

                if (strlen(o->name) != n || strncmp(arg, o->name, n) != 0 || !(c->verb->options & o->bit))
                        continue;
                if (!o->takes_arg && eq)
                        return bad_option(c, "no value goes with option", o->name, "");
                if (o->takes_arg && !eq && *i + 1 >= argc)
                        return bad_option(c, "missing argument to option", arg, "");
                option_set(c, o->bit, !o->takes_arg ? NULL : eq ? eq + 1 : argv[++*i]);
                return -1;
        }
        return bad_option(c, "unknown option", arg,
                          c->verb->max_args > 0 ? " (put -- before a KEY or VALUE that starts with a dash)" : "");
}

/* argv[0] is the kv command. Options may come anywhere; "--" ends them. */
static int parse_args(struct kv_cmd *c, int argc, char *argv[]) {
        bool options = true;
        int r;

        for (int i = 1; i < argc; i++) {
                const char *arg = argv[i];

                if (options && strcmp(arg, "--") == 0)
                        options = false;
                else if (options && arg[0] == '-' && arg[1] && !looks_negative(arg)) {
                        r = parse_option(c, argc, argv, &i);
                        if (r >= 0)
                                return r;
                } else if (c->nargs < c->verb->max_args)
                        c->args[c->nargs++] = arg;
                else
                        return bad_option(c, "unexpected argument", arg, "");
        }
        if (c->help || c->nargs >= c->verb->min_args)
                return -1;
        fprintf(stderr, "ashm kv %s: expected %s; see 'ashm help kv'\n", c->verb->name, c->verb->args);
        return EXIT_USAGE;
}

/* A malformed @NAME or PID:FD is a usage error, said before anything is
 * looked up. */
static int check_store(struct kv_cmd *c) {
        int pid, fd;

        if (c->kind == STORE_NAME && !cli_name_valid(c->store + 1))
                return cli_bad_name("kv", c->store + 1);
        if (c->kind == STORE_TARGET && !cli_parse_target(c->store, &pid, &fd)) {
                fprintf(stderr,
                        "ashm kv: %s is not a valid PID:FD (a process ID from 1 and an fd, each at most %d); "
                        "for a file of this name use ./%s\n",
                        c->store, INT_MAX, c->store);
                return EXIT_USAGE;
        }
        return -1;
}

/* A dry run of import-mmkv writes nothing to the store: it gets an empty
 * one in a memfd instead, so that no STORE is created by looking. */
static int scratch_store(ashm_kv **ret_kv) {
        ashm_region *region = NULL;
        int r;

        r = ashm_region_create("ashm-kv-dry-run", 0, 0, &region);
        if (r < 0)
                return r;
        r = ashm_kv_open_region(region, ASHM_KV_CREATE, ret_kv);
        ashm_region_close(region);
        return r;
}

static bool has_arg(int argc, char *argv[], bool (*match)(const char *arg)) {
        for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
                if (match(argv[i]))
                        return true;
        return false;
}

static bool is_dry_run(const char *arg) {
        return strcmp(arg, "--dry-run") == 0;
}

/* The MMKV commands read their own arguments, before they touch the
 * store: asked for help, they get no store, so that asking creates none. */
static int run_ext(struct kv_cmd *c, int argc, char *argv[]) {
        enum store_step step = STEP_KV;
        int r;

        if (has_arg(argc, argv, is_help))
                return c->verb->ext(NULL, argc, argv);
        if ((c->verb->open & ASHM_KV_CREATE) && has_arg(argc, argv, is_dry_run))
                r = scratch_store(&c->kv);
        else
                r = store_open_step(c->store, c->verb->open, &c->kv, &step);
        if (r < 0)
                return store_failed(c, step, r);
        optind = 0; /* glibc: start getopt afresh */
        return c->verb->ext(c->kv, argc, argv);
}

static int kv_run(struct kv_cmd *c, int argc, char *argv[]) {
        enum store_step step;
        int r;

        if (c->verb->ext)
                return run_ext(c, argc, argv);
        r = parse_args(c, argc, argv);
        if (r >= 0)
                return r;
        if (c->help) {
                cli_verb_help("kv", stdout);
                return EXIT_SUCCESS;
        }
        r = c->verb->prepare ? c->verb->prepare(c) : -1;
        if (r >= 0)
                return r;
        if (c->verb->open != NO_OPEN) {
                r = store_open_step(c->store, c->verb->open, &c->kv, &step);
                if (r < 0)
                        return store_failed(c, step, r);
        }
        return c->verb->run(c);
}

static int kv_usage_error(int argc) {
        if (argc < 2)
                fputs("ashm kv: expected a STORE and a command, e.g. 'ashm kv app.kv ls'; see 'ashm help kv'\n",
                      stderr);
        else
                fputs("ashm kv: expected a command after STORE, e.g. ls, get KEY or set KEY VALUE; "
                      "see 'ashm help kv'\n",
                      stderr);
        return EXIT_USAGE;
}

int verb_kv(int argc, char *argv[]) {
        struct kv_cmd c = {};
        int r;

        if ((argc >= 2 && is_help(argv[1])) || (argc >= 3 && is_help(argv[2]))) {
                cli_verb_help("kv", stdout);
                return EXIT_SUCCESS;
        }
        if (argc < 3)
                return kv_usage_error(argc);
        c.store = argv[1];
        c.kind = store_kind(c.store);
        c.verb = kv_verb_find(argv[2]);
        if (!c.verb) {
                _cleanup_free_ char *v = cescape(argv[2]);

                fprintf(stderr, "ashm kv: unknown command '%s'; see 'ashm help kv'\n", v ? v : "?");
                return EXIT_USAGE;
        }
        r = check_store(&c);
        if (r >= 0)
                return r;
        if (with_word(c.store, &c.shown) < 0)
                return oom();
        r = kv_run(&c, argc - 2, argv + 2);
        ashm_kv_close(c.kv);
        free(c.data);
        free(c.shown);
        return r;
}
