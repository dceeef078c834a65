/* SPDX-License-Identifier: MIT */
/*
 * ashm-demo-client: the client side of the ashm demo. ashm-demo (the
 * service) starts it as a separate program:
 *
 *     ashm-demo-client SOCKET_PATH
 *
 * It connects to the service, receives two regions as fds, and does with
 * them what any process could do with an fd it was given: read and write
 * through the fd, map it, and check what the kernel allows. See
 * demo-service.c for the whole scenario and the protocol.
 *
 * Each step is answered with a short message; if something is not as
 * expected the answer is "FAILED: <why>" and the exit status is 1.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* strnlen(), even with -std=c11 */
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <ashm.h>

#define GREETING "Hello world!" /* what the service wrote */
#define ANSWER "Hello from the client!"

/* The first failure, for the answer to the service. */
static char failure[256];

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Record why the client failed (the first reason wins) and return -1. */
static int fail(const char *fmt, ...) {
        va_list ap;

        if (failure[0] == '\0') {
                va_start(ap, fmt);
                vsnprintf(failure, sizeof(failure), fmt, ap);
                va_end(ap);
        }
        return -1;
}

static int connect_to(const char *path) {
        struct sockaddr_un addr = { .sun_family = AF_UNIX };
        int fd;

        if (strlen(path) >= sizeof(addr.sun_path))
                return fail("socket path too long: %s", path);
        strcpy(addr.sun_path, path);
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return fail("socket: %s", strerror(errno));
        if (connect(fd, (struct sockaddr *) &addr, sizeof(addr)) < 0) {
                fail("connect %s: %s", path, strerror(errno));
                close(fd);
                return -1;
        }
        return fd;
}

/* Send a short answer. MSG_NOSIGNAL: if the service is gone we want an
 * error (EPIPE), not to be killed by SIGPIPE. */
static int answer(int sock, const char *msg) {
        if (send(sock, msg, strlen(msg), MSG_NOSIGNAL) < 0)
                return fail("send: %s", strerror(errno));
        return 0;
}

/* Receive a region and check that the message is the step we expect. */
static int receive_region(int sock, const char *expected, ashm_region **ret_region) {
        char payload[32];
        size_t len;
        int r;

        r = ashm_region_recv(sock, 0, payload, sizeof(payload) - 1, &len, ret_region);
        if (r == -ECONNRESET)
                return fail("the service hung up");
        if (r == -EMEDIUMTYPE)
                return fail("the fd received is not a memfd, so not a region");
        if (r < 0)
                return fail("ashm_region_recv: %s", strerror(-r));
        payload[len] = '\0';
        if (strcmp(payload, expected) != 0) {
                ashm_region_close(*ret_region);
                return fail("got region with \"%s\", expected \"%s\"", payload, expected);
        }
        return 0;
}

/* ------------------------------------------------------------------ */
/* Steps 1 and 2: the shared greeting                                  */
/* ------------------------------------------------------------------ */

/* The text at the start of the region, with read() on the fd. The fd we
 * received shares its file offset with the service's fd (SCM_RIGHTS
 * passes the open file, not a copy), so seek first rather than trust
 * wherever the offset stands. */
static int read_with_read(int fd, char *buf, size_t len) {
        ssize_t n;

        if (lseek(fd, 0, SEEK_SET) < 0)
                return fail("lseek: %s", strerror(errno));
        n = read(fd, buf, len - 1);
        if (n < 0)
                return fail("read: %s", strerror(errno));
        buf[n] = '\0'; /* the text and the zeros after it; a full buf still ends */
        return 0;
}

/* The same text through a read-only mapping of the whole region. */
static int read_with_mapping(ashm_region *region, char *buf, size_t len) {
        void *map;
        int r;

        r = ashm_region_map(region, 0, 0, PROT_READ, &map);
        if (r < 0)
                return fail("ashm_region_map: %s", strerror(-r));
        snprintf(buf, len, "%.*s", (int) strnlen(map, len - 1), (const char *) map);
        ashm_region_unmap(region, map, 0);
        return 0;
}

/* Write the answer with plain write() on the fd, NUL included so the
 * service sees where it ends. */
static int write_answer(int fd) {
        ssize_t n;

        if (lseek(fd, 0, SEEK_SET) < 0)
                return fail("lseek: %s", strerror(errno));
        n = write(fd, ANSWER, sizeof(ANSWER));
        if (n < 0)
                return fail("write: %s", strerror(errno));
        if ((size_t) n != sizeof(ANSWER))
                return fail("short write: %zd bytes", n);
        printf("[client ] wrote \"%s\" with write() at offset 0\n", ANSWER);
        return 0;
}

static int check_greeting(int sock) {
        ashm_region *region;
        char by_read[64], by_map[64];
        uint64_t size;
        int r;

        if (receive_region(sock, "greeting", &region) < 0)
                return -1;
        r = ashm_region_get_size(region, &size);
        if (r < 0) {
                ashm_region_close(region);
                return fail("ashm_region_get_size: %s", strerror(-r));
        }
        printf("[client ] received region '%s', %llu bytes, as fd %d\n", ashm_region_name(region),
               (unsigned long long) size, ashm_region_fd(region));

        r = read_with_read(ashm_region_fd(region), by_read, sizeof(by_read));
        if (r == 0) {
                printf("[client ] read() on the fd: \"%s\"\n", by_read);
                r = read_with_mapping(region, by_map, sizeof(by_map));
        }
        if (r == 0) {
                printf("[client ] through a mapping: \"%s\"\n", by_map);
                if (strcmp(by_read, GREETING) != 0 || strcmp(by_map, GREETING) != 0)
                        r = fail("expected \"%s\" both ways", GREETING);
        }
        if (r == 0)
                r = write_answer(ashm_region_fd(region));
        ashm_region_close(region);
        if (r == 0)
                r = answer(sock, "written");
        return r;
}

/* ------------------------------------------------------------------ */
/* Step 3: the frozen config                                           */
/* ------------------------------------------------------------------ */

/* One write attempt on the frozen region: r is 0 if it went through,
 * else -errno. The only acceptable outcome is EPERM, from the kernel. */
static int expect_refused(const char *how, int r) {
        if (r == 0)
                return fail("%s succeeded on a frozen region", how);
        if (r != -EPERM)
                return fail("%s failed with \"%s\", expected EPERM", how, strerror(-r));
        printf("[client ] %s: refused: %s\n", how, strerror(-r));
        return 0;
}

/* Try every way to write: write() on the fd, a writable mapping through
 * libashm, and a writable mmap() of our own, behind libashm's back. The
 * seals are in the kernel, so all three must fail. */
static int try_to_write(ashm_region *region, uint64_t size) {
        int fd = ashm_region_fd(region);
        void *p;
        int r;

        r = write(fd, "x", 1) < 0 ? -errno : 0;
        if (expect_refused("write() on the fd", r) < 0)
                return -1;

        r = ashm_region_map(region, 0, 0, PROT_READ | PROT_WRITE, &p);
        if (r == 0)
                ashm_region_unmap(region, p, 0);
        if (expect_refused("ashm_region_map(PROT_WRITE)", r) < 0)
                return -1;

        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        r = p == MAP_FAILED ? -errno : 0;
        if (r == 0)
                munmap(p, size);
        return expect_refused("mmap(PROT_WRITE, MAP_SHARED)", r);
}

/* Print the config, one "[client ]" line per line of it. A frozen
 * region can still be mapped for reading. */
static int print_config(ashm_region *region, uint64_t size) {
        const char *text, *end, *nl;
        void *map;
        int r;

        r = ashm_region_map(region, 0, 0, PROT_READ, &map);
        if (r < 0)
                return fail("ashm_region_map(PROT_READ): %s", strerror(-r));
        printf("[client ] config, through a read-only mapping:\n");
        for (text = map, end = text + size; text < end; text = nl + 1) {
                nl = memchr(text, '\n', (size_t) (end - text));
                if (!nl)
                        nl = end;
                printf("[client ]     %.*s\n", (int) (nl - text), text);
        }
        ashm_region_unmap(region, map, 0);
        return 0;
}

/* Trust the contents only once the kernel says nobody can change them
 * any more: not us, not the service, not anyone it shares them with. */
static int check_frozen(ashm_region *region, uint64_t *ret_size) {
        int r;

        r = ashm_region_get_size(region, ret_size);
        if (r < 0)
                return fail("ashm_region_get_size: %s", strerror(-r));
        printf("[client ] received region '%s', %llu bytes, as fd %d\n", ashm_region_name(region),
               (unsigned long long) *ret_size, ashm_region_fd(region));
        r = ashm_region_is_frozen(region);
        if (r < 0)
                return fail("ashm_region_is_frozen: %s", strerror(-r));
        if (r != 1)
                return fail("region '%s' is not frozen", ashm_region_name(region));
        printf("[client ] ashm_region_is_frozen() = 1: nobody can change it any more\n");
        return 0;
}

static int check_config(int sock) {
        ashm_region *region;
        uint64_t size;
        int r;

        if (receive_region(sock, "config", &region) < 0)
                return -1;
        r = check_frozen(region, &size);
        if (r == 0)
                r = print_config(region, size);
        if (r == 0)
                r = try_to_write(region, size);
        ashm_region_close(region);
        if (r == 0)
                r = answer(sock, "verified");
        return r;
}

int main(int argc, char **argv) {
        int sock, r;

        /* Line-buffered even into a pipe: see demo-service.c. */
        setvbuf(stdout, NULL, _IOLBF, 0);
        if (argc != 2) {
                fprintf(stderr, "usage: %s SOCKET_PATH (ashm-demo starts it)\n", argv[0]);
                return 2;
        }
        sock = connect_to(argv[1]);
        if (sock < 0) {
                printf("[client ] FAILED: %s\n", failure);
                return 1;
        }
        r = check_greeting(sock);
        if (r == 0)
                r = check_config(sock);
        if (r < 0) {
                char msg[sizeof(failure) + 16];

                printf("[client ] FAILED: %s\n", failure);
                snprintf(msg, sizeof(msg), "FAILED: %s", failure);
                (void) send(sock, msg, strlen(msg), MSG_NOSIGNAL);
        }
        close(sock);
        return r < 0;
}
