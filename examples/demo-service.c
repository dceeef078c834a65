/* SPDX-License-Identifier: MIT */
/*
 * ashm-demo: the service side of the ashm demo, the program you run.
 *
 * It plays the scenario that Ashmem was made for, with two unrelated
 * processes:
 *
 *  1. The service creates a 1 MiB region named "ProcessMemoryService",
 *     writes "Hello world!" into it through a mapping, and passes the
 *     region's fd to the client over a Unix socket.
 *  2. The client (ashm-demo-client, a separate program started with
 *     posix_spawn) reads the text with read() on the fd and through a
 *     mapping of its own, then writes an answer with write() on the fd.
 *     The service sees the answer in its mapping: one region, two
 *     processes.
 *  3. The service fills a "config" region, freezes it and sends it. The
 *     client checks that it is frozen, reads it, and finds that every way
 *     of writing to it is refused by the kernel.
 *  4. Ashmem's heart, purging: the service builds an 8 MiB cache in a
 *     region and unpins it, telling the system it may take the memory
 *     back. `ashm purge --all` (what memory pressure does) has ashmd
 *     reclaim it; the next pin reports ASHM_WAS_PURGED and the service
 *     rebuilds the cache. The region's resident memory is shown at each
 *     step. The demo runs a private ashmd for this, started on demand by
 *     libashm in its own directory, and stops it at the end.
 *
 * Each side prints what it sees. The last line is "demo: OK", or
 * "demo: FAILED: <why>" with exit status 1.
 *
 * Only <ashm.h> and plain POSIX are used, as in any program built with
 * `pkg-config --cflags --libs ashm`. The two processes synchronise
 * through the socket alone: each waits for the other's message.
 *
 * Protocol, one SOCK_SEQPACKET message per step:
 *   service -> client   region "ProcessMemoryService", payload "greeting"
 *   client  -> service  "written"
 *   service -> client   region "config", payload "config"
 *   client  -> service  "verified"
 * and the client answers "FAILED: <why>" instead when something is wrong.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4(), struct ucred: Linux, not POSIX */
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ashm.h>

extern char **environ;

#define REGION_NAME "ProcessMemoryService"
#define REGION_SIZE (1024 * 1024)
#define GREETING "Hello world!"
#define ANSWER "Hello from the client!" /* what the client writes back */
#define CLIENT_NAME "ashm-demo-client"
#define CACHE_NAME "frame-cache"
#define CACHE_SIZE (8 * 1024 * 1024)

/* A small INI file: the kind of read-only configuration every process of
 * a service wants to share without each keeping a copy. */
static const char config_text[] = "[service]\n"
                                  "name = ProcessMemoryService\n"
                                  "region_size = 1048576\n"
                                  "[limits]\n"
                                  "max_clients = 8\n";

/* Everything the service must release at the end, whatever happened. */
struct demo {
        char dir[PATH_MAX];      /* private temp directory, "" if none */
        struct sockaddr_un addr; /* the socket in it; sun_path "" if none */
        int listen_fd;           /* the listening socket, -1 if none */
        int conn_fd;             /* the connection to the client, -1 if none */
        pid_t client_pid;        /* 0 until the client runs */
};

/* Why the demo failed, for the summary line. */
static char failure[512];

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Record a reason the demo failed and return -1, so that callers can
 * write `return fail(...)`. Later reasons are appended: "the client hung
 * up" reads better followed by "it was killed by signal 9". */
static int fail(const char *fmt, ...) {
        size_t used = strlen(failure);
        va_list ap;

        if (used > 0 && used < sizeof(failure) - 2) {
                strcpy(failure + used, "; ");
                used += 2;
        }
        va_start(ap, fmt);
        vsnprintf(failure + used, sizeof(failure) - used, fmt, ap);
        va_end(ap);
        return -1;
}

/* ------------------------------------------------------------------ */
/* Starting and stopping the client                                    */
/* ------------------------------------------------------------------ */

/* A fresh directory only we can enter (mkdtemp makes it 0700), so no
 * other user can reach the socket, and nothing else can clash with it. */
static int make_socket_dir(struct demo *d) {
        const char *tmp = getenv("TMPDIR");
        char dir[PATH_MAX];
        int n;

        if (!tmp || tmp[0] == '\0')
                tmp = "/tmp";
        n = snprintf(dir, sizeof(dir), "%s/ashm-demo.XXXXXX", tmp);
        if (n < 0 || (size_t) n >= sizeof(dir))
                return fail("TMPDIR is too long");
        if (!mkdtemp(dir))
                return fail("cannot create a directory in %s: %s", tmp, strerror(errno));
        memcpy(d->dir, dir, sizeof(dir));
        /* sun_path holds 108 bytes: a deep TMPDIR may not fit. */
        d->addr.sun_family = AF_UNIX;
        n = snprintf(d->addr.sun_path, sizeof(d->addr.sun_path), "%s/socket", d->dir);
        if (n < 0 || (size_t) n >= sizeof(d->addr.sun_path)) {
                d->addr.sun_path[0] = '\0';
                return fail("socket path %s/socket is too long for a Unix socket", d->dir);
        }
        return 0;
}

/* SOCK_SEQPACKET keeps message boundaries (one send, one receive) and
 * reports a peer that hangs up, like a pipe: no framing code needed. */
static int listen_on_socket(struct demo *d) {
        d->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (d->listen_fd < 0)
                return fail("socket: %s", strerror(errno));
        if (bind(d->listen_fd, (struct sockaddr *) &d->addr, sizeof(d->addr)) < 0)
                return fail("bind %s: %s", d->addr.sun_path, strerror(errno));
        if (listen(d->listen_fd, 1) < 0)
                return fail("listen: %s", strerror(errno));
        printf("[service] listening on %s\n", d->addr.sun_path);
        return 0;
}

/* A program found relative to this one (from /proc/self/exe), so that
 * it works from any working directory: the client is installed next to
 * us, the tool and the daemon are built beside us (../src/...). */
static int sibling_path(const char *rel, char *buf, size_t len) {
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        char *slash;
        int k;

        if (n < 0)
                return fail("readlink /proc/self/exe: %s", strerror(errno));
        self[n] = '\0';
        slash = strrchr(self, '/');
        if (slash)
                *slash = '\0';
        k = snprintf(buf, len, "%s/%s", self, rel);
        if (k < 0 || (size_t) k >= len)
                return fail("path of %s is too long", rel);
        return 0;
}

static int client_path(char *buf, size_t len) {
        return sibling_path(CLIENT_NAME, buf, len);
}

/* posix_spawn() runs a new program image: the client shares nothing with
 * us but what we pass it (the socket path) and stdin/stdout/stderr.
 * Every fd the service holds is close-on-exec, so none leaks into it. */
static int spawn_client(struct demo *d) {
        char path[PATH_MAX];
        char *argv[] = { path, d->addr.sun_path, NULL };
        int r;

        if (client_path(path, sizeof(path)) < 0)
                return -1;
        r = posix_spawn(&d->client_pid, path, NULL, NULL, argv, environ);
        if (r != 0) {
                d->client_pid = 0;
                return fail("cannot start %s: %s", path, strerror(r));
        }
        printf("[service] started %s, pid %d\n", CLIENT_NAME, (int) d->client_pid);
        return 0;
}

/* Wait for the client to connect. Also watch its pidfd: a client that
 * dies before connect() (a missing shared library, say) would otherwise
 * leave us in accept() for ever. Without pidfds (Linux < 5.3), just wait. */
static int wait_for_connection(struct demo *d) {
        struct pollfd p[2] = {
                { .fd = d->listen_fd, .events = POLLIN },
                { .fd = (int) syscall(SYS_pidfd_open, d->client_pid, 0), .events = POLLIN },
        };
        int n;

        if (p[1].fd < 0)
                return 0;
        do
                n = poll(p, 2, -1);
        while (n < 0 && errno == EINTR);
        close(p[1].fd);
        if (n < 0)
                return fail("poll: %s", strerror(errno));
        if (!(p[0].revents & POLLIN))
                return fail("%s exited before connecting", CLIENT_NAME);
        return 0;
}

/* The kernel tells who is at the other end (SO_PEERCRED): accept only
 * our own client, not whatever else found the socket first. */
static int accept_client(struct demo *d) {
        struct ucred cred;
        socklen_t len = sizeof(cred);

        if (wait_for_connection(d) < 0)
                return -1;
        d->conn_fd = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (d->conn_fd < 0)
                return fail("accept: %s", strerror(errno));
        if (getsockopt(d->conn_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return fail("SO_PEERCRED: %s", strerror(errno));
        if (cred.pid != d->client_pid)
                return fail("pid %d connected, not our client", (int) cred.pid);
        printf("[service] client pid %d connected\n", (int) cred.pid);
        return 0;
}

static int start_client(struct demo *d) {
        if (make_socket_dir(d) < 0 || listen_on_socket(d) < 0 || spawn_client(d) < 0)
                return -1;
        return accept_client(d);
}

/* Reap the client; when all went well so far, it must have succeeded. */
static int reap_client(struct demo *d, int r) {
        int status;
        pid_t p;

        do
                p = waitpid(d->client_pid, &status, 0);
        while (p < 0 && errno == EINTR);
        if (p < 0)
                return fail("waitpid: %s", strerror(errno));
        if (WIFEXITED(status)) {
                if (r == 0)
                        printf("[service] client exited with status %d\n", WEXITSTATUS(status));
                if (WEXITSTATUS(status) != 0)
                        return fail("%s exited with status %d", CLIENT_NAME, WEXITSTATUS(status));
                return r;
        }
        return fail("%s was killed by signal %d (%s)", CLIENT_NAME, WTERMSIG(status),
                    strsignal(WTERMSIG(status)));
}

/* Undo start_client(), from any point it reached. Closing our end of the
 * connection first means a client still waiting for a message sees the
 * hang-up and exits, so waitpid() cannot block for ever. */
static int stop_client(struct demo *d, int r) {
        if (d->conn_fd >= 0)
                close(d->conn_fd);
        if (d->listen_fd >= 0)
                close(d->listen_fd);
        if (d->client_pid > 0)
                r = reap_client(d, r);
        if (d->addr.sun_path[0] != '\0')
                unlink(d->addr.sun_path); /* ENOENT if bind() never made it: fine */
        if (d->dir[0] != '\0' && rmdir(d->dir) < 0)
                r = fail("rmdir %s: %s", d->dir, strerror(errno));
        return r;
}

/* ------------------------------------------------------------------ */
/* Talking to the client                                               */
/* ------------------------------------------------------------------ */

/* Wait for the client's answer to a step and check it is the expected
 * one. On a SOCK_SEQPACKET socket, recv() returns 0 when the peer hung up. */
static int expect_reply(struct demo *d, const char *expected) {
        char msg[512];
        ssize_t n;

        do
                n = recv(d->conn_fd, msg, sizeof(msg) - 1, 0);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return fail("recv: %s", strerror(errno));
        if (n == 0)
                return fail("%s hung up", CLIENT_NAME);
        msg[n] = '\0';
        if (strncmp(msg, "FAILED: ", 8) == 0)
                return fail("the client says: %s", msg + 8);
        if (strcmp(msg, expected) != 0)
                return fail("the client answered \"%s\", expected \"%s\"", msg, expected);
        return 0;
}

/* Steps 1 and 2: share a writable region both ways. */
static int share_greeting(struct demo *d) {
        ashm_region *region = NULL;
        void *map = NULL;
        char seen[64];
        int r;

        r = ashm_region_create(REGION_NAME, REGION_SIZE, 0, &region);
        if (r < 0)
                return fail("ashm_region_create: %s", strerror(-r));
        /* len 0: map the whole region. */
        r = ashm_region_map(region, 0, 0, PROT_READ | PROT_WRITE, &map);
        if (r < 0) {
                r = fail("ashm_region_map: %s", strerror(-r));
                goto out;
        }
        strcpy(map, GREETING);
        printf("[service] created region '%s' (%d bytes), fd %d, wrote \"%s\"\n", ashm_region_name(region),
               REGION_SIZE, ashm_region_fd(region), GREETING);

        /* The fd travels as SCM_RIGHTS: the client gets its own fd on the
         * same memory, with a number of its own choosing. */
        r = ashm_region_send(d->conn_fd, region, "greeting", strlen("greeting"));
        if (r < 0) {
                r = fail("ashm_region_send: %s", strerror(-r));
                goto out;
        }
        r = expect_reply(d, "written");
        if (r < 0)
                goto out;

        /* Our mapping shows the client's write() at once: both go to the
         * same pages. No copy, no message carried the text. */
        snprintf(seen, sizeof(seen), "%.*s", (int) strnlen(map, sizeof(seen) - 1), (const char *) map);
        printf("[service] sees: \"%s\"\n", seen);
        if (strcmp(seen, ANSWER) != 0)
                r = fail("the service sees \"%s\", not the client's \"%s\"", seen, ANSWER);
out:
        if (map)
                ashm_region_unmap(region, map, 0);
        ashm_region_close(region);
        return r;
}

/* Make the "config" region: written with ashm_region_write() rather than
 * through a mapping, because freezing fails (EBUSY) while a writable
 * shared mapping of the region exists anywhere. */
static int make_config(ashm_region **ret_region) {
        ashm_region *region;
        size_t len = strlen(config_text);
        int r;

        r = ashm_region_create("config", len, 0, &region);
        if (r < 0)
                return fail("ashm_region_create: %s", strerror(-r));
        r = ashm_region_write(region, 0, config_text, len);
        if (r < 0) {
                ashm_region_close(region);
                return fail("ashm_region_write: %s", strerror(-r));
        }
        r = ashm_region_freeze(region);
        if (r < 0) {
                ashm_region_close(region);
                return fail("ashm_region_freeze: %s", strerror(-r));
        }
        printf("[service] created region 'config' (%zu bytes), wrote it, froze it\n", len);
        *ret_region = region;
        return 0;
}

/* After the client's attempts, read the config back: a frozen region
 * cannot have changed, and here is the proof. */
static int check_config_unchanged(ashm_region *region) {
        char buf[sizeof(config_text)];
        size_t len = strlen(config_text);
        int r;

        r = ashm_region_read(region, 0, buf, len);
        if (r < 0)
                return fail("ashm_region_read: %s", strerror(-r));
        if (memcmp(buf, config_text, len) != 0)
                return fail("the frozen config changed");
        printf("[service] config unchanged\n");
        return 0;
}

/* Step 3: share a frozen region and let the client try to change it. */
static int share_config(struct demo *d) {
        ashm_region *region = NULL;
        int r;

        if (make_config(&region) < 0)
                return -1;
        r = ashm_region_send(d->conn_fd, region, "config", strlen("config"));
        if (r < 0)
                r = fail("ashm_region_send: %s", strerror(-r));
        if (r == 0)
                r = expect_reply(d, "verified");
        if (r == 0) {
                printf("[service] client confirms: config is frozen, every write was refused\n");
                r = check_config_unchanged(region);
        }
        ashm_region_close(region);
        return r;
}

/* ------------------------------------------------------------------ */
/* Act 4: a cache that the system may take back                        */
/* ------------------------------------------------------------------ */

/* What the region costs in memory now: its pages in RAM (or swap). */
static double resident_mib(const ashm_region *region) {
        struct stat st;

        if (fstat(ashm_region_fd(region), &st) < 0)
                return -1;
        return (double) st.st_blocks * 512 / (1024 * 1024);
}

/* The cache's contents: what a real service would compute (decoded
 * images, rendered tiles), cheap to make again, costly to keep. */
static int build_cache(ashm_region *region) {
        void *map;
        int r;

        r = ashm_region_map(region, 0, 0, PROT_READ | PROT_WRITE, &map);
        if (r < 0)
                return fail("ashm_region_map: %s", strerror(-r));
        for (size_t i = 0; i < CACHE_SIZE; i++)
                ((unsigned char *) map)[i] = (unsigned char) (i * 31 + 7);
        ashm_region_unmap(region, map, CACHE_SIZE);
        return 0;
}

/* A daemon of the demo's own, in its private directory: libashm starts
 * it on demand at the first pin or unpin (the one built beside us, from
 * a build tree). Nothing of the user's daemon is touched. */
static int use_private_daemon(const struct demo *d) {
        char sock[PATH_MAX], daemon[PATH_MAX];

        snprintf(sock, sizeof(sock), "%s/ashmd.sock", d->dir);
        setenv("ASHM_SOCKET", sock, 1);
        unsetenv("ASHM_NO_AUTOSTART");
        if (!getenv("ASHMD") && sibling_path("../src/ashmd/ashmd", daemon, sizeof(daemon)) == 0 &&
            access(daemon, X_OK) == 0)
                setenv("ASHMD", daemon, 1);
        return 0;
}

/* What the tool printed, each line labelled as ours are. */
static void relay(int fd) {
        char buf[512];
        FILE *f = fdopen(fd, "r");

        if (!f) {
                close(fd);
                return;
        }
        while (fgets(buf, sizeof(buf), f))
                printf("[ashm   ] %s%s", buf, strchr(buf, '\n') ? "" : "\n");
        fclose(f);
}

/* `ashm purge --all`, the command an operator types, when the tool is
 * built beside us; else the same request through the library. */
static int purge_all(void) {
        char tool[PATH_MAX];
        char *argv[] = { tool, "purge", "--all", NULL };
        posix_spawn_file_actions_t fa;
        uint64_t purged = 0;
        int r, status, out[2];
        pid_t pid;

        printf("[service] $ ashm purge --all          (what memory pressure does, now)\n");
        if (sibling_path("../src/cli/ashm", tool, sizeof(tool)) == 0 && access(tool, X_OK) == 0) {
                if (pipe2(out, O_CLOEXEC) < 0)
                        return fail("pipe: %s", strerror(errno));
                posix_spawn_file_actions_init(&fa);
                posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
                r = posix_spawn(&pid, tool, &fa, NULL, argv, environ);
                posix_spawn_file_actions_destroy(&fa);
                close(out[1]);
                if (r != 0) {
                        close(out[0]);
                        return fail("cannot run %s: %s", tool, strerror(r));
                }
                relay(out[0]);
                while (waitpid(pid, &status, 0) < 0)
                        if (errno != EINTR)
                                return fail("waitpid: %s", strerror(errno));
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                        return fail("ashm purge --all failed (status 0x%x)", status);
                return 0;
        }
        r = ashm_purge(0, 0, &purged);
        if (r < 0)
                return fail("ashm_purge: %s", strerror(-r));
        printf("[service] ashmd purged %.1f MiB\n", (double) purged / (1024 * 1024));
        return 0;
}

/* Stop the private daemon (its pid file is beside its socket) and wait,
 * with a bound, until it is gone, so its directory can go too. */
static int stop_private_daemon(const struct demo *d) {
        char path[PATH_MAX + 16], buf[32] = "";
        FILE *f;
        pid_t pid = 0;

        snprintf(path, sizeof(path), "%s/ashmd.pid", d->dir);
        f = fopen(path, "re");
        if (!f)
                return 0; /* none was started */
        if (fgets(buf, sizeof(buf), f))
                pid = (pid_t) atoi(buf);
        fclose(f);
        if (pid > 1 && kill(pid, SIGTERM) == 0)
                for (int i = 0; i < 500 && kill(pid, 0) == 0; i++)
                        usleep(10000);
        unlink(path);
        snprintf(path, sizeof(path), "%s/ashmd.sock", d->dir);
        unlink(path);
        return 0;
}

static int purge_cache(ashm_region *region) {
        double before, after;
        int r;

        if (build_cache(region) < 0)
                return -1;
        printf("[service] built an %d MiB cache in region '%s': %.1f MiB resident\n", CACHE_SIZE >> 20,
               CACHE_NAME, resident_mib(region));
        r = ashm_region_unpin(region, 0, 0);
        if (r < 0)
                return fail("ashm_region_unpin: %s", strerror(-r));
        before = resident_mib(region);
        printf("[service] unpinned it: the system may take it back when memory runs low\n");
        if (purge_all() < 0)
                return -1;
        after = resident_mib(region);
        printf("[service] the region now holds %.1f MiB (%.1f MiB before the purge)\n", after, before);
        r = ashm_region_pin(region, 0, 0);
        if (r < 0)
                return fail("ashm_region_pin: %s", strerror(-r));
        if (r != ASHM_WAS_PURGED)
                return fail("the pin after the purge says ASHM_NOT_PURGED: is ashmd running?");
        printf("[service] pinned it again: ASHM_WAS_PURGED, so the cache is rebuilt\n");
        if (build_cache(region) < 0)
                return -1;
        printf("[service] rebuilt: %.1f MiB resident\n", resident_mib(region));
        return 0;
}

static int purgeable_cache(struct demo *d) {
        ashm_region *region = NULL;
        int r;

        use_private_daemon(d);
        r = ashm_region_create(CACHE_NAME, CACHE_SIZE, 0, &region);
        if (r < 0)
                r = fail("ashm_region_create: %s", strerror(-r));
        else
                r = purge_cache(region);
        ashm_region_close(region);
        stop_private_daemon(d);
        return r;
}

int main(void) {
        struct demo d = { .listen_fd = -1, .conn_fd = -1 };
        int r;

        /* Line-buffered even into a pipe, so that our lines and the
         * client's (it does the same) come out in the order they happen. */
        setvbuf(stdout, NULL, _IOLBF, 0);

        r = start_client(&d);
        if (r == 0)
                r = share_greeting(&d);
        if (r == 0)
                r = share_config(&d);
        if (r == 0)
                r = purgeable_cache(&d);
        r = stop_client(&d, r);

        if (r < 0) {
                printf("demo: FAILED: %s\n", failure);
                return 1;
        }
        printf("demo: OK\n");
        return 0;
}
