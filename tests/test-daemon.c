/* SPDX-License-Identifier: MIT */
/* ashmd itself, spoken to on raw sockets: what it answers, what it
 * refuses, and that a bad peer disturbs nobody else. */
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include "ashm.h"
#include "protocol.h"
#include "socket-util.h"
#include "tests.h"

ASHM_SUITE(daemon);

static int dial(const struct test_daemon *d) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

        cr_assert(fd >= 0);
        strcpy(sa.sun_path, d->sock);
        cr_assert(connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0, "connect: %s", strerror(errno));
        return fd;
}

/* Send a request and read the reply; returns its result, or -ECONNRESET
 * when the daemon hung up on us. */
static int ask(int fd, uint16_t type, const void *body, size_t len, const int *fds, size_t n_fds, void *rep,
               size_t rep_len, int *ret_fd) {
        char buf[PROTO_MSG_MAX];
        struct proto_hdr h;
        struct proto_msg m;
        int got[PROTO_FDS_MAX];
        size_t n_got = 0;
        ssize_t n;

        proto_header(&h, type, 1, 0, (uint32_t) n_fds);
        memcpy(buf, &h, sizeof(h));
        if (len)
                memcpy(buf + sizeof(h), body, len);
        cr_assert(send_fds(fd, buf, sizeof(h) + len, fds, n_fds) > 0);
        n = recv_fds(fd, buf, sizeof(buf), got, PROTO_FDS_MAX, &n_got);
        if (n == -ECONNRESET)
                return (int) n;
        cr_assert(n > 0, "recv: %s", strerror((int) -n));
        assert_ok(proto_decode(buf, (size_t) n, n_got, 1, &m));
        if (m.hdr.result >= 0 && rep_len)
                memcpy(rep, m.body, MIN(rep_len, m.body_len));
        if (n_got && ret_fd) {
                *ret_fd = got[0];
                close_many(got + 1, n_got - 1);
        } else
                close_many(got, n_got);
        return m.hdr.result;
}

static void status(int fd, struct proto_status_rep *st) {
        assert_ok(ask(fd, PROTO_STATUS, NULL, 0, NULL, 0, st, sizeof(*st), NULL));
}

/* Send raw bytes; the daemon must close the connection. */
static void expect_hangup(const struct test_daemon *d, const void *buf, size_t len, const int *fds, size_t n_fds) {
        int fd = dial(d), got[2];
        size_t n_got;
        char c[PROTO_MSG_MAX];

        cr_assert(send_fds(fd, buf, len, fds, n_fds) >= 0);
        cr_assert_eq(recv_fds(fd, c, sizeof(c), got, 2, &n_got), -ECONNRESET, "the daemon must hang up");
        close(fd);
}

ASHM_TEST(daemon, status_and_socket_mode) {
        struct test_daemon d;
        struct proto_status_rep st;
        struct stat s;
        int fd;

        daemon_start(&d);
        cr_assert(stat(d.sock, &s) == 0);
        cr_assert_eq(s.st_mode & 0777, 0600, "only the owner may connect");
        fd = dial(&d);
        status(fd, &st);
        cr_assert_eq(st.pid, (uint64_t) d.pid);
        cr_assert_eq(st.clients, 1);
        cr_assert_eq(st.regions, 0);
        cr_assert_neq(st.max_unpinned, 0);
        close(fd);
        daemon_stop(&d);
        cr_assert(access(d.sock, F_OK) < 0, "the socket is removed at exit");
}

ASHM_TEST(daemon, register_list_unregister) {
        struct proto_register_req req = { 0 };
        struct proto_register_rep rep;
        struct proto_list_rep list;
        struct proto_list_entry *e;
        struct proto_unregister_req un;
        struct test_daemon d;
        struct stat st;
        ashm_region *r;
        int fd, rfd, state = -1, lfd = -1;

        daemon_start(&d);
        fd = dial(&d);
        assert_ok(ashm_region_create("listed", 5 * 4096 + 1, 0, &r));
        rfd = ashm_region_fd(r);
        assert_ok(ask(fd, PROTO_REGISTER, &req, sizeof(req), &rfd, 1, &rep, sizeof(rep), &state));
        cr_assert(state >= 0);
        cr_assert_eq(rep.npages, 6);
        cr_assert_eq(rep.page_size, 4096);
        cr_assert(fstat(state, &st) == 0 && (uint64_t) st.st_size == rep.state_len);
        cr_assert(ftruncate(state, 0) < 0, "the state block is sealed against resizing");
        close(state);

        assert_ok(ask(fd, PROTO_LIST, NULL, 0, NULL, 0, &list, sizeof(list), &lfd));
        cr_assert_eq(list.count, 1);
        cr_assert_eq(list.entry_size, sizeof(*e));
        e = mmap(NULL, sizeof(*e), PROT_READ, MAP_SHARED, lfd, 0);
        cr_assert(e != MAP_FAILED);
        cr_assert_str_eq(e->name, "listed");
        cr_assert_eq(e->pinned, 6 * 4096);
        cr_assert_eq(e->holders, 1);
        munmap(e, sizeof(*e));
        close(lfd);

        cr_assert(fstat(rfd, &st) == 0);
        un = (struct proto_unregister_req) { (uint64_t) st.st_dev, (uint64_t) st.st_ino };
        assert_ok(ask(fd, PROTO_UNREGISTER, &un, sizeof(un), NULL, 0, NULL, 0, NULL));
        assert_fail(ask(fd, PROTO_UNREGISTER, &un, sizeof(un), NULL, 0, NULL, 0, NULL), ENOENT);
        ashm_region_close(r);
        close(fd);
        daemon_stop(&d);
}

ASHM_TEST(daemon, register_refuses_non_memfd_but_keeps_connection) {
        struct proto_register_req req = { 0 };
        struct proto_register_rep rep;
        struct proto_status_rep st;
        struct test_daemon d;
        int fd, null;

        daemon_start(&d);
        fd = dial(&d);
        null = open("/dev/null", O_RDWR | O_CLOEXEC);
        assert_fail(ask(fd, PROTO_REGISTER, &req, sizeof(req), &null, 1, &rep, sizeof(rep), NULL), EMEDIUMTYPE);
        status(fd, &st); /* still served */
        close(null);
        close(fd);
        daemon_stop(&d);
}

ASHM_TEST(daemon, malformed_messages_close_only_their_connection) {
        struct test_daemon d;
        struct proto_status_rep st;
        struct proto_hdr h;
        char buf[PROTO_MSG_MAX + 64] = { 0 };
        int bystander, fds[3];

        daemon_start(&d);
        bystander = dial(&d);
        status(bystander, &st);

        expect_hangup(&d, "garbage", 7, NULL, 0);
        proto_header(&h, PROTO_STATUS, 1, 0, 0);
        h.magic = 0x12345678;
        expect_hangup(&d, &h, sizeof(h), NULL, 0);
        proto_header(&h, PROTO_STATUS, 1, 0, 0);
        h.version = 99;
        expect_hangup(&d, &h, sizeof(h), NULL, 0);
        proto_header(&h, 42, 1, 0, 0);
        expect_hangup(&d, &h, sizeof(h), NULL, 0);
        proto_header(&h, PROTO_STATUS | PROTO_REPLY, 1, 0, 0);
        expect_hangup(&d, &h, sizeof(h), NULL, 0);
        proto_header(&h, PROTO_STATUS, 1, 0, 0);
        memcpy(buf, &h, sizeof(h));
        expect_hangup(&d, buf, sizeof(buf), NULL, 0); /* oversized */
        /* fds where none belong, and more than any message may carry */
        for (int i = 0; i < 3; i++)
                fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        expect_hangup(&d, &h, sizeof(h), fds, 1);
        expect_hangup(&d, &h, sizeof(h), fds, 3);
        close_many(fds, 3);

        status(bystander, &st);
        cr_assert_eq(st.clients, 1, "the bad connections are gone, the bystander stays");
        close(bystander);
        daemon_stop(&d);
}

ASHM_TEST(daemon, second_daemon_on_same_socket_refused) {
        struct test_daemon d;
        int status;
        pid_t pid;

        daemon_start(&d);
        pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
                int null = open("/dev/null", O_WRONLY);

                dup2(null, 2);
                execl(ASHMD, "ashmd", "--socket", d.sock, "--no-pressure", (char *) NULL);
                _exit(127);
        }
        cr_assert(waitpid(pid, &status, 0) == pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a second daemon leaves quietly");
        daemon_stop(&d);
}

ASHM_TEST(daemon, idle_exit) {
        const char *args[] = { "--idle-exit", "0", "--interval", "10", NULL };
        struct test_daemon d;
        int status;

        /* --idle-exit 0 means never; 1 second is the smallest real value. */
        args[1] = "1";
        daemon_start_args(&d, args);
        cr_assert(waitpid(d.pid, &status, 0) == d.pid, "an idle daemon exits by itself");
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        cr_assert(access(d.sock, F_OK) < 0);
        rmdir(d.dir);
}

ASHM_TEST(daemon, autostart_on_demand) {
        char dir[] = "/tmp/ashm-test-XXXXXX", sock[96], pidpath[96], buf[32] = "";
        ashm_region *r;
        int fd, pid;

        cr_assert_not_null(mkdtemp(dir));
        snprintf(sock, sizeof(sock), "%s/ashmd.sock", dir);
        snprintf(pidpath, sizeof(pidpath), "%s/ashmd.pid", dir);
        setenv("ASHM_SOCKET", sock, 1);
        setenv("ASHMD", ASHMD, 1);
        unsetenv("ASHM_NO_AUTOSTART");
        assert_ok(ashm_region_create("autostart", 4096, 0, &r));
        assert_ok(ashm_region_unpin(r, 0, 0)); /* starts the daemon */
        assert_ok(ashm_purge(0, 0, NULL));
        cr_assert_eq(ashm_region_pin(r, 0, 0), ASHM_WAS_PURGED, "a real daemon purged it");
        fd = open(pidpath, O_RDONLY | O_CLOEXEC);
        cr_assert(fd >= 0 && read(fd, buf, sizeof(buf) - 1) > 0);
        close(fd);
        pid = atoi(buf);
        cr_assert_gt(pid, 1);
        /* Not our child: a pidfd tells when it has exited. The region
         * stays open meanwhile: closed, it would be let go at once. */
        fd = (int) syscall(SYS_pidfd_open, pid, 0);
        cr_assert(fd >= 0);
        cr_assert(kill(pid, SIGTERM) == 0);
        {
                struct pollfd p = { .fd = fd, .events = POLLIN };

                cr_assert(poll(&p, 1, 10000) == 1, "the autostarted daemon stopped");
        }
        close(fd);
        setenv("ASHM_NO_AUTOSTART", "1", 1); /* the close must not start another */
        ashm_region_close(r);
        /* It exited with our region registered: the pid file stays, to
         * tell the next daemon that pin state lives on in its holders. */
        cr_assert(access(pidpath, F_OK) == 0);
        unlink(pidpath);
        rmdir(dir);
}

ASHM_TEST(daemon, purge_all_users_needs_root) {
        struct proto_purge_req req = { .flags = PROTO_PURGE_ALL_USERS };
        struct proto_purge_rep rep;
        struct test_daemon d;
        pid_t pid;
        int status;

        daemon_start(&d);
        cr_assert(chmod(d.dir, 0755) == 0 && chmod(d.sock, 0666) == 0);
        pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
                int fd;

                if (setgid(65534) < 0 || setuid(65534) < 0)
                        _exit(10);
                fd = dial(&d);
                _exit(ask(fd, PROTO_PURGE, &req, sizeof(req), NULL, 0, &rep, sizeof(rep), NULL) == -EPERM ? 0 : 11);
        }
        cr_assert(waitpid(pid, &status, 0) == pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "step %d", WEXITSTATUS(status));
        daemon_stop(&d);
}

/* Regions whose every holder has exited are purged and let go. */
ASHM_TEST(daemon, region_let_go_when_holders_exit) {
        struct test_daemon d;
        struct proto_status_rep st;
        pid_t pid;
        int fd;

        daemon_start(&d);
        pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
                ashm_region *r;

                if (ashm_region_create("short-lived", 8 * 4096, 0, &r) < 0 || ashm_region_unpin(r, 0, 0) < 0)
                        _exit(1);
                _exit(0);
        }
        cr_assert(waitpid(pid, NULL, 0) == pid);
        fd = dial(&d);
        /* The daemon sees the hang-up before our request (one queue). */
        for (int i = 0; i < 1000; i++) {
                status(fd, &st);
                if (st.regions == 0)
                        break;
                usleep(2000);
        }
        cr_assert_eq(st.regions, 0, "the region was let go");
        cr_assert_eq(st.purged_total, 8 * 4096, "its unpinned pages were purged first");
        close(fd);
        daemon_stop(&d);
}

/* A process that holds a region without ever having used its pins learns
 * of purges made before the region was let go: the daemon keeps a tomb. */
ASHM_TEST(daemon, let_go_region_remembers_purges) {
        struct test_daemon d;
        struct proto_status_rep st;
        ashm_region *r;
        char c = 0;
        int sv[2], fd, rfd;
        pid_t pid;

        daemon_start(&d);
        cr_assert(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
        pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
                ashm_region *mine;

                if (ashm_region_create("tomb", 4 * 4096, 0, &mine) < 0 || ashm_region_write(mine, 0, "data", 4) < 0 ||
                    ashm_region_unpin(mine, 0, 4096) < 0 || ashm_region_send(sv[1], mine, "r", 1) < 0)
                        _exit(1);
                _exit(0); /* the only registered holder leaves */
        }
        close(sv[1]);
        rfd = ashm_recv_fd(sv[0], &c, 1, NULL);
        cr_assert(rfd >= 0);
        cr_assert(waitpid(pid, NULL, 0) == pid);
        fd = dial(&d);
        for (int i = 0; i < 1000; i++) {
                status(fd, &st);
                if (st.regions == 0)
                        break;
                usleep(2000);
        }
        cr_assert_eq(st.regions, 0, "let go once its holder left");
        assert_ok(ashm_region_adopt(rfd, 0, &r));
        cr_assert_eq(ashm_region_pin(r, 0, 0), ASHM_WAS_PURGED, "the tomb tells of the purge");
        cr_assert_eq(ashm_region_pin(r, 0, 0), ASHM_NOT_PURGED);
        ashm_region_close(r);
        close(fd);
        close(sv[0]);
        daemon_stop(&d);
}

/* Socket activation with no --socket (the user unit): the pid file is
 * locked beside the socket the daemon was handed, not beside the path
 * it would have chosen (here one whose directory does not exist). */
ASHM_TEST(daemon, activated_locks_beside_its_socket) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char dir[64], pidfile[128], buf[32] = {};
        int lfd, ready[2], status, fd;
        struct pollfd p;
        pid_t pid;
        char c;

        snprintf(dir, sizeof(dir), "/tmp/ashm-test-XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/activated.sock", dir);
        lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        cr_assert(lfd >= 0 && bind(lfd, (struct sockaddr *) &sa, sizeof(sa)) == 0 && listen(lfd, 16) == 0);
        cr_assert(pipe2(ready, O_CLOEXEC) == 0);
        pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
                char pid_s[16];

                /* As systemd hands it over: fd 3, and LISTEN_PID ours. */
                if (dup2(ready[1], 4) < 0 || dup2(lfd, 3) < 0)
                        _exit(127);
                snprintf(pid_s, sizeof(pid_s), "%d", (int) getpid());
                setenv("LISTEN_PID", pid_s, 1);
                setenv("LISTEN_FDS", "1", 1);
                setenv("ASHM_SOCKET", "/nonexistent/ashm-tests/ashmd.sock", 1);
                execl(ASHMD, ASHMD, "--ready-fd", "4", "--no-pressure", (char *) NULL);
                _exit(127);
        }
        close(ready[1]);
        p = (struct pollfd) { .fd = ready[0], .events = POLLIN };
        cr_assert(poll(&p, 1, 10000) == 1 && read(ready[0], &c, 1) == 1, "ashmd did not start");
        close(ready[0]);
        snprintf(pidfile, sizeof(pidfile), "%s/ashmd.pid", dir);
        fd = open(pidfile, O_RDONLY | O_CLOEXEC);
        cr_assert(fd >= 0, "no pid file beside the socket: %s", strerror(errno));
        cr_assert(read(fd, buf, sizeof(buf) - 1) > 0);
        close(fd);
        cr_assert_eq(atoi(buf), pid);
        cr_assert(kill(pid, SIGTERM) == 0);
        cr_assert(waitpid(pid, &status, 0) == pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x", status);
        close(lfd);
        unlink(pidfile);
        unlink(sa.sun_path);
        cr_assert(rmdir(dir) == 0);
}

/* The log speaks in sizes people read (the cap given as 1.5G, as the
 * ashm tool reads sizes), and says why the daemon exits on SIGTERM. */
ASHM_TEST(daemon, log_human_sizes_and_exit_on_sigterm) {
        char dir[64], sock[128], log[4096] = {}, pidfile[160];
        int ready[2], err[2], status;
        struct pollfd p;
        size_t used = 0;
        ssize_t n;
        pid_t pid;
        char c;

        snprintf(dir, sizeof(dir), "/tmp/ashm-test-XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
        snprintf(sock, sizeof(sock), "%s/ashmd.sock", dir);
        cr_assert(pipe2(ready, O_CLOEXEC) == 0 && pipe2(err, O_CLOEXEC) == 0);
        pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
                if (dup2(ready[1], 3) < 0 || dup2(err[1], 2) < 0)
                        _exit(127);
                execl(ASHMD, ASHMD, "--socket", sock, "--ready-fd", "3", "--no-pressure", "--max-unpinned", "1.5G",
                      (char *) NULL);
                _exit(127);
        }
        close(ready[1]);
        close(err[1]);
        p = (struct pollfd) { .fd = ready[0], .events = POLLIN };
        cr_assert(poll(&p, 1, 10000) == 1 && read(ready[0], &c, 1) == 1, "ashmd did not start");
        close(ready[0]);
        cr_assert(kill(pid, SIGTERM) == 0);
        while ((n = read(err[0], log + used, sizeof(log) - 1 - used)) > 0)
                used += (size_t) n;
        close(err[0]);
        cr_assert(waitpid(pid, &status, 0) == pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x:\n%s", status, log);
        cr_assert_not_null(strstr(log, ", unpinned cap 1.5 GiB)\n"), "%s", log);
        cr_assert_not_null(strstr(log, "ashmd: exiting on SIGTERM\n"), "%s", log);
        snprintf(pidfile, sizeof(pidfile), "%s/ashmd.pid", dir);
        unlink(pidfile);
        cr_assert(rmdir(dir) == 0, "%s", strerror(errno));
}
