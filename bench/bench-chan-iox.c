/* SPDX-License-Identifier: MIT */
/* bench-chan's iceoryx 2.0.3 peers (C binding) and the private world
 * they run in.
 *
 * Why a private world: iceoryx 2.0 keeps machine-global state
 * (/dev/shm/iceoryx_mgmt, /dev/shm/<user>, /tmp/roudi, /tmp/roudi.lock,
 * /tmp/iox-unique-roudi.lock, a /tmp/<runtime-name> socket per client).
 * State left by an earlier RouDi, or another user's running one, made a
 * new RouDi's clients never connect. So the benchmark moves into a mount
 * namespace of its own (as root directly, otherwise inside a user
 * namespace) with a fresh tmpfs on /dev/shm and /tmp: nothing from
 * outside is seen, and the tmpfs goes with the last process of the
 * namespace, so nothing is left behind whatever happens (every process
 * in it dies with its parent: PR_SET_PDEATHSIG).
 *
 * Why a supervisor: at its shutdown RouDi sends SIGTERM (then SIGKILL)
 * to every client still registered, and asserts when one is already
 * gone. So the process that started the benchmark stays outside it: it
 * starts RouDi, forks the benchmark, waits for it to exit (its clients
 * unregister on exit()), and only then stops RouDi by pid. RouDi's exit
 * status is reported, never fatal.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <iceoryx_binding_c/log.h>
#include <iceoryx_binding_c/runtime.h>

#include "bench-chan.h"
#include "bench.h"
#include "futex-util.h"

#define ROUDI_CONFIG "/tmp/bench-chan-roudi.toml"
#define ROUDI_LOG "/tmp/bench-chan-roudi.log"
#define ROUDI_SOCKET "/tmp/roudi"
#define CONNECT_TIMEOUT_MS 20000

/* ---- the private world ------------------------------------------------ */

static int write_file(const char *path, const char *s) {
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        ssize_t n;

        if (fd < 0)
                return -errno;
        n = write(fd, s, strlen(s));
        n = n < 0 ? -errno : 0;
        close(fd);
        return (int) n;
}

static bool in_userns;

/* A mount namespace of our own: directly when allowed (root), else in a
 * user namespace where this uid and gid map to themselves. */
static int unshare_mounts(const char **ret_what) {
        static char why[128];
        uid_t uid = geteuid();
        gid_t gid = getegid();
        char map[64];
        int r;

        if (unshare(CLONE_NEWNS) == 0)
                return 0;
        snprintf(why, sizeof(why), "unshare(CLONE_NEWNS): %s; in a new user namespace", strerror(errno));
        *ret_what = why;
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
                return -errno;
        in_userns = true;
        snprintf(map, sizeof(map), "%u %u 1\n", (unsigned) uid, (unsigned) uid);
        r = write_file("/proc/self/uid_map", map);
        if (r == 0)
                r = write_file("/proc/self/setgroups", "deny\n");
        snprintf(map, sizeof(map), "%u %u 1\n", (unsigned) gid, (unsigned) gid);
        if (r == 0)
                r = write_file("/proc/self/gid_map", map);
        return r;
}

static int private_world(const char **ret_what) {
        int r;

        *ret_what = "unshare(CLONE_NEWNS)";
        r = unshare_mounts(ret_what);
        if (r < 0)
                return r;
        /* Nothing mounted here may propagate back out. */
        *ret_what = "mount(/, MS_REC|MS_PRIVATE)";
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return -errno;
        *ret_what = "mount(tmpfs, /dev/shm)";
        if (mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0)
                return -errno;
        *ret_what = "mount(tmpfs, /tmp)";
        if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0)
                return -errno;
        return 0;
}

/* Dies with its parent; false if the parent is already gone. */
static bool die_with(pid_t parent) {
        return prctl(PR_SET_PDEATHSIG, SIGKILL) == 0 && getppid() == parent;
}

/* RouDi with a config file of ours: mempools for 8-byte and 64 KiB
 * messages only, process monitoring off, its output in ROUDI_LOG. */
static pid_t roudi_start(void) {
        pid_t self = getpid(), pid;
        FILE *f = fopen(ROUDI_CONFIG, "we");

        if (!f)
                bench_die("roudi config", errno);
        fputs("[general]\nversion = 1\n\n[[segment]]\n\n[[segment.mempool]]\nsize = 128\ncount = 1000\n\n"
              "[[segment.mempool]]\nsize = 66560\ncount = 64\n",
              f);
        if (fclose(f) != 0)
                bench_die("roudi config", errno);
        fflush(NULL);
        pid = fork();
        if (pid < 0)
                bench_die("fork", errno);
        if (pid == 0) {
                int log = open(ROUDI_LOG, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

                if (!die_with(self) || log < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0)
                        _exit(127);
                execlp("iox-roudi", "iox-roudi", "-c", ROUDI_CONFIG, "-l", "warning", "-m", "off", (char *) NULL);
                _exit(127);
        }
        return pid;
}

static void roudi_print_log(void) {
        char buf[4096];
        ssize_t n;
        int fd = open(ROUDI_LOG, O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return;
        fprintf(stderr, "bench-chan: RouDi's output:\n");
        fflush(stderr);
        while ((n = read(fd, buf, sizeof(buf))) > 0)
                if (write(2, buf, (size_t) n) < 0)
                        break;
        close(fd);
}

/* Until RouDi's socket is there (it is made last), 10 s at most. */
static int roudi_wait_ready(pid_t pid) {
        struct stat st;
        int status;

        for (int ms = 0; ms < 10000; ms += 5) {
                if (stat(ROUDI_SOCKET, &st) == 0)
                        return 0;
                if (waitpid(pid, &status, WNOHANG) == pid)
                        return -ECHILD;
                usleep(5000);
        }
        return -ETIMEDOUT;
}

/* Wait for pid (ours) to end, up to timeout_ms (< 0: no limit); its
 * wait status, or -ETIMEDOUT. */
static int wait_bounded(pid_t pid, int timeout_ms) {
        int pidfd = (int) syscall(SYS_pidfd_open, pid, 0), status;

        if (pidfd >= 0) {
                struct pollfd p = { .fd = pidfd, .events = POLLIN };

                while (poll(&p, 1, timeout_ms) < 0 && errno == EINTR)
                        ;
                close(pidfd);
                if (waitpid(pid, &status, WNOHANG) == pid)
                        return status;
                return -ETIMEDOUT;
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        return status;
}

/* SIGTERM by pid, 10 s, then SIGKILL. What it says is reported, never
 * fatal: the world it could have left state in is gone with us. */
static void roudi_stop(pid_t pid) {
        int status;

        kill(pid, SIGTERM);
        status = wait_bounded(pid, 10000);
        if (status == -ETIMEDOUT) {
                kill(pid, SIGKILL);
                status = wait_bounded(pid, -1);
                printf("bench-chan: RouDi (pid %d) did not stop in 10 s after SIGTERM: killed\n", (int) pid);
                return;
        }
        if (status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
                return;
        printf("bench-chan: RouDi (pid %d) ended badly at its shutdown (status 0x%x, ignored)\n", (int) pid,
               (unsigned) status);
        fflush(stdout);
        roudi_print_log();
}

/* The supervisor: wait for the benchmark, then stop RouDi; exit as the
 * benchmark did. */
static _Noreturn void supervise(pid_t bench, pid_t roudi) {
        int status = wait_bounded(bench, -1);

        roudi_stop(roudi);
        fflush(NULL);
        if (status >= 0 && WIFSIGNALED(status)) {
                signal(WTERMSIG(status), SIG_DFL);
                raise(WTERMSIG(status));
        }
        _exit(status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : 2);
}

bool iox_world_enter(bool want) {
        const char *env = getenv("BENCH_CHAN_ICEORYX"), *what;
        pid_t self = getpid(), roudi, bench;
        int r;

        if (!want)
                return false;
        if (env && strcmp(env, "0") == 0) {
                printf("bench-chan: iceoryx left out (BENCH_CHAN_ICEORYX=0)\n");
                return false;
        }
        r = private_world(&what);
        if (r < 0) {
                printf("bench-chan: iceoryx skipped: no private /dev/shm and /tmp for it: %s: %s\n", what,
                       strerror(-r));
                return false;
        }
        roudi = roudi_start();
        r = roudi_wait_ready(roudi);
        if (r < 0) {
                printf("bench-chan: iceoryx skipped: RouDi %s\n",
                       r == -ECHILD ? "exited at its start" : "made no socket in 10 s");
                fflush(stdout);
                roudi_print_log();
                if (r != -ECHILD) {
                        kill(roudi, SIGKILL);
                        wait_bounded(roudi, -1);
                }
                return false;
        }
        printf("bench-chan: iceoryx in a private mount namespace (%s; fresh tmpfs on /dev/shm and /tmp), "
               "RouDi pid %d\n",
               in_userns ? "inside a user namespace" : "unshared directly", (int) roudi);
        fflush(NULL);
        bench = fork();
        if (bench < 0)
                bench_die("fork", errno);
        if (bench > 0)
                supervise(bench, roudi);
        if (!die_with(self))
                _exit(2);
        return true;
}

/* ---- the peers ---------------------------------------------------------- */

static uint8_t src_buf[BIG], dst_buf[BIG];

static void wait_connected(iox_pub_t pub, iox_sub_t sub) {
        for (int ms = 0; (pub && !iox_pub_has_subscribers(pub)) ||
                         (sub && iox_sub_get_subscription_state(sub) != SubscribeState_SUBSCRIBED);
             ms++) {
                if (ms > CONNECT_TIMEOUT_MS)
                        bench_die("iceoryx: publisher and subscriber never connected", ETIMEDOUT);
                usleep(1000);
        }
}

/* ping: parent -> child, pong: child -> parent; instance = the peer's
 * id. The fan-out peer: the parent publishes, each child subscribes. */
static void open_side(struct peer *p, bool parent) {
        iox_pub_options_t po;
        iox_sub_options_t so;
        char inst[16];

        snprintf(inst, sizeof(inst), "i%u", p->iox_id);
        iox_pub_options_init(&po);
        po.historyCapacity = 0;
        po.subscriberTooSlowPolicy = ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER;
        iox_sub_options_init(&so);
        so.queueCapacity = p->fan ? FANOUT_DEPTH : RING;
        so.queueFullPolicy = QueueFullPolicy_BLOCK_PRODUCER;
        if (!p->fan || parent)
                p->pub = iox_pub_init(&p->pub_storage, "bench", inst, parent ? "ping" : "pong", &po);
        if (!p->fan || !parent)
                p->sub = iox_sub_init(&p->sub_storage, "bench", inst, parent ? "pong" : "ping", &so);
        if (p->blocking && p->sub) {
                p->ws = iox_ws_init(&p->ws_storage);
                if (iox_ws_attach_subscriber_event(p->ws, p->sub, SubscriberEvent_DATA_RECEIVED, 0, NULL) !=
                                      WaitSetResult_SUCCESS)
                        bench_die("iceoryx: iox_ws_attach_subscriber_event", EINVAL);
        }
}

static void close_side(struct peer *p) {
        if (p->ws && p->sub)
                iox_ws_detach_subscriber_event(p->ws, p->sub, SubscriberEvent_DATA_RECEIVED);
        if (p->ws)
                iox_ws_deinit(p->ws);
        if (p->sub)
                iox_sub_deinit(p->sub);
        if (p->pub)
                iox_pub_deinit(p->pub);
        p->ws = NULL;
        p->sub = NULL;
        p->pub = NULL;
}

static void child_init(struct peer *p, unsigned k) {
        char name[64];

        snprintf(name, sizeof(name), "bench-chan-child-%u-%u", p->iox_id, k);
        iox_runtime_init(name);
        open_side(p, false);
        wait_connected(p->pub, p->sub);
        __atomic_fetch_add(&p->ctl->ready, 1, __ATOMIC_RELEASE);
        futex_wake(&p->ctl->ready, INT32_MAX);
}

/* exit(), not _exit(): iceoryx's runtime unregisters from RouDi in its
 * destructor, so that RouDi's shutdown finds no client to kill. */
static void child_fini(struct peer *p) {
        close_side(p);
        exit(0);
}

static void send_msg(struct peer *p, const void *data, uint32_t len) {
        void *chunk;

        while (iox_pub_loan_chunk(p->pub, &chunk, len) != AllocationResult_SUCCESS)
                __builtin_ia32_pause();
        memcpy(chunk, data, len);
        iox_pub_publish_chunk(p->pub, chunk);
}

/* Busy-polling, or asleep in the WaitSet when the peer has one. A
 * wake-up may be for a message already taken: look again. */
static void take_msg(struct peer *p, void *buf, uint32_t len) {
        iox_notification_info_t ev[1];
        const void *chunk;
        uint64_t missed;

        while (iox_sub_take_chunk(p->sub, &chunk) != ChunkReceiveResult_SUCCESS) {
                if (p->ws)
                        iox_ws_wait(p->ws, ev, ELEMENTS(ev), &missed);
                else
                        __builtin_ia32_pause();
        }
        memcpy(buf, chunk, len);
        iox_sub_release_chunk(p->sub, chunk);
}

static void rtt_drive(struct peer *p, unsigned n) {
        uint8_t buf[MSG] = { 0 };

        for (unsigned i = 0; i < n; i++) {
                send_msg(p, buf, MSG);
                take_msg(p, buf, MSG);
        }
}

static void rtt_echo(struct peer *p, unsigned n) {
        uint8_t buf[MSG];

        for (unsigned i = 0; i < n; i++) {
                take_msg(p, buf, MSG);
                send_msg(p, buf, MSG);
        }
}

/* The same two copies as the ring and the channel: in, and out. */
static void tput_drive(struct peer *p, unsigned n) {
        uint8_t ack;

        for (unsigned i = 0; i < n; i++)
                send_msg(p, src_buf, BIG);
        take_msg(p, &ack, 1);
}

static void tput_echo(struct peer *p, unsigned n) {
        for (unsigned i = 0; i < n; i++)
                take_msg(p, dst_buf, BIG);
        send_msg(p, "", 1);
}

/* Publish n, then until every subscriber has taken all of them. */
static void fan_drive(struct peer *p, unsigned n) {
        uint8_t buf[MSG] = { 0 };
        uint32_t want = ++p->batches * SUBS, v;

        for (unsigned i = 0; i < n; i++)
                send_msg(p, buf, MSG);
        while ((v = __atomic_load_n(&p->ctl->fin, __ATOMIC_ACQUIRE)) != want)
                futex_wait(&p->ctl->fin, v, -1);
}

static void fan_echo(struct peer *p, unsigned n) {
        uint8_t buf[MSG];

        for (unsigned i = 0; i < n; i++)
                take_msg(p, buf, MSG);
        __atomic_fetch_add(&p->ctl->fin, 1, __ATOMIC_RELEASE);
        futex_wake(&p->ctl->fin, 1);
}

static struct peer make_peer(const char *name, side_fn drive, side_fn echo, bool ws, bool fan) {
        static unsigned ids;

        return (struct peer) { .name = name, .drive = drive, .echo = echo, .child_init = child_init,
                               .child_fini = child_fini, .blocking = ws, .fan = fan,
                               .iox_id = ++ids };
}

void iox_peers_start(struct peer peers[IOX_N], const int cpus[2]) {
        /* The children inherit it: warnings and errors only. */
        iox_set_loglevel(Iceoryx_LogLevel_Warn);
        peers[IOX_BUSY] = make_peer("iceoryx-busy", rtt_drive, rtt_echo, false, false);
        peers[IOX_TPUT] = make_peer("iceoryx-64k", tput_drive, tput_echo, false, false);
        peers[IOX_BLOCK_CROSS] = make_peer("iceoryx-waitset", rtt_drive, rtt_echo, true, false);
        peers[IOX_BLOCK_SAME] = make_peer("iceoryx-waitset", rtt_drive, rtt_echo, true, false);
        peers[IOX_FANOUT] = make_peer("iceoryx-1to4-waitset", fan_drive, fan_echo, true, true);
        memset(src_buf, 0x5a, sizeof(src_buf));
        fflush(NULL); /* the children exit() */
        for (size_t i = 0; i < IOX_N; i++) {
                peers[i].cpu_parent = cpus[0];
                peers[i].cpu_child = i == IOX_BLOCK_SAME ? cpus[0] : cpus[1];
                peer_start(&peers[i], i == IOX_FANOUT ? SUBS : 1);
        }
        iox_runtime_init("bench-chan-parent");
        for (size_t i = 0; i < IOX_N; i++) {
                uint32_t v;

                open_side(&peers[i], true);
                wait_connected(peers[i].fan ? NULL : peers[i].pub, peers[i].sub);
                while ((v = __atomic_load_n(&peers[i].ctl->ready, __ATOMIC_ACQUIRE)) != peers[i].n_children)
                        if (futex_wait(&peers[i].ctl->ready, v, INT64_C(20) * 1000000000) == -ETIMEDOUT)
                                bench_die("iceoryx: a child never connected", ETIMEDOUT);
        }
}

void iox_peers_stop(struct peer peers[IOX_N]) {
        for (size_t i = 0; i < IOX_N; i++) {
                peer_stop(&peers[i]);
                close_side(&peers[i]);
        }
}

/* iceoryx's setup: a publisher and a subscriber in one process, until
 * they are connected, then gone. */
uint64_t iox_setup_run(void *ctx, unsigned iters) {
        uint64_t t0 = bench_now_ns();

        for (unsigned i = 0; i < iters; i++) {
                iox_pub_storage_t pub_storage;
                iox_sub_storage_t sub_storage;
                iox_pub_options_t po;
                iox_sub_options_t so;
                iox_pub_t pub;
                iox_sub_t sub;

                iox_pub_options_init(&po);
                iox_sub_options_init(&so);
                pub = iox_pub_init(&pub_storage, "setup", "s", "e", &po);
                sub = iox_sub_init(&sub_storage, "setup", "s", "e", &so);
                while (!iox_pub_has_subscribers(pub))
                        sched_yield();
                iox_sub_deinit(sub);
                iox_pub_deinit(pub);
        }
        return bench_now_ns() - t0;
}

void iox_shm_usage(uint64_t *ret_bytes, uint64_t *ret_resident, unsigned *ret_files) {
        DIR *d = opendir("/dev/shm");
        struct dirent *e;
        uint64_t bytes = 0, resident = 0;
        unsigned files = 0;

        if (!d)
                bench_die("opendir /dev/shm", errno);
        while ((e = readdir(d))) {
                struct stat st;

                if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                        continue;
                bytes += (uint64_t) st.st_size;
                resident += (uint64_t) st.st_blocks * 512;
                files++;
        }
        closedir(d);
        *ret_bytes = bytes;
        *ret_resident = resident;
        *ret_files = files;
}
