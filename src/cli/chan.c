/* SPDX-License-Identifier: MIT */
/* ashm chan NAME send|recv|stat: a channel under a broker name in a
 * shell pipeline. Either end may start first: the first creates the
 * channel (a queue) and publishes it under NAME, kept while the daemon
 * lives; the other looks it up. recv ends when the senders have gone
 * and everything was read. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ashm.h"
#include "cli.h"
#include "macro.h"

#define DEFAULT_MSG_MAX 65536u
#define DEFAULT_DEPTH 64u
#define DEFAULT_PEERS 4u

struct chan_args {
        const char *name, *cmd;
        bool raw, json;
        uint32_t msg_max, depth, peers;
};

static void region_closep(ashm_region **r) {
        ashm_region_close(*r);
}

static void chan_closep(ashm_chan **c) {
        ashm_chan_close(*c);
}

static int parse_u32(const char *opt, const char *s, uint32_t *ret) {
        uint64_t v;

        if (parse_size(s, &v) < 0 || v == 0 || v > UINT32_MAX) {
                fprintf(stderr, "ashm chan: bad %s '%s'\n", opt, s);
                return -EINVAL;
        }
        *ret = (uint32_t) v;
        return 0;
}

static int chan_args_parse(int argc, char *argv[], struct chan_args *a) {
        static const struct option options[] = {
                { "raw", no_argument, NULL, 'r' },
                { "json", no_argument, NULL, 'j' },
                { "size", required_argument, NULL, 's' },
                { "depth", required_argument, NULL, 'd' },
                { "producers", required_argument, NULL, 'p' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;

        *a = (struct chan_args) { .msg_max = DEFAULT_MSG_MAX, .depth = DEFAULT_DEPTH, .peers = DEFAULT_PEERS };
        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0)
                switch (c) {
                case 'r':
                        a->raw = true;
                        break;
                case 'j':
                        a->json = true;
                        break;
                case 's':
                        if (parse_u32("--size", optarg, &a->msg_max) < 0)
                                return EXIT_USAGE;
                        break;
                case 'd':
                        if (parse_u32("--depth", optarg, &a->depth) < 0)
                                return EXIT_USAGE;
                        break;
                case 'p':
                        if (parse_u32("--producers", optarg, &a->peers) < 0)
                                return EXIT_USAGE;
                        break;
                case 'h':
                        cli_verb_help("chan", stdout);
                        return EXIT_SUCCESS;
                default:
                        return cli_bad_option("chan", c, argv);
                }
        if (optind + 2 != argc) {
                fputs("ashm chan: expected NAME and a command: send, recv or stat\n", stderr);
                return EXIT_USAGE;
        }
        a->name = argv[optind];
        a->cmd = argv[optind + 1];
        if (!cli_name_valid(a->name))
                return cli_bad_name("chan", a->name);
        if (strcmp(a->cmd, "send") != 0 && strcmp(a->cmd, "recv") != 0 && strcmp(a->cmd, "stat") != 0) {
                fprintf(stderr, "ashm chan: unknown command '%s': send, recv or stat\n", a->cmd);
                return EXIT_USAGE;
        }
        return -1; /* go on */
}

/* Look the channel up, or create and publish it if nobody has: a race
 * between two first ends is settled by the broker (-EEXIST: look up). */
static int open_or_create(const struct chan_args *a, bool create, ashm_region **ret) {
        for (int tries = 0; tries < 3; tries++) {
                ashm_region *region;
                int r = ashm_lookup(a->name, ASHM_LOOKUP_WRITE, &region);

                if (r != -ENOENT || !create) {
                        if (r >= 0)
                                *ret = region;
                        return r;
                }
                r = ashm_chan_create(a->name, ASHM_CHAN_QUEUE, a->msg_max, a->depth, a->peers, 0, &region);
                if (r < 0)
                        return r;
                r = ashm_publish(region, a->name, 0600, ASHM_PUBLISH_KEEP);
                if (r >= 0) {
                        *ret = region;
                        return 0;
                }
                ashm_region_close(region);
                if (r != -EEXIST)
                        return r;
        }
        return -EAGAIN;
}

static int chan_failed(const char *doing, const struct chan_args *a, int r) {
        _cleanup_free_ char *word = shell_word(a->name);

        if (r == -EBADMSG)
                fprintf(stderr, "ashm chan: %s is not a channel, or it is damaged\n", word ? word : a->name);
        else if (r == -EPROTOTYPE)
                fprintf(stderr, "ashm chan: %s is a publish/subscribe channel; send and recv work on queues\n",
                        word ? word : a->name);
        else if (r == -EBUSY)
                fprintf(stderr, "ashm chan: %s has its receiver already, or all its sender places are taken\n",
                        word ? word : a->name);
        else if (r == -ENOENT || r == -ECONNREFUSED)
                return cli_name_failed(doing, a->name, r);
        else
                fprintf(stderr, "ashm chan: cannot %s %s: %s\n", doing, word ? word : a->name, strerror(-r));
        return EXIT_FAILURE;
}

static int read_raw(uint8_t *buf, size_t max, size_t *ret_len) {
        uint8_t hdr[4];
        uint32_t len;

        if (fread(hdr, 1, 4, stdin) != 4)
                return ferror(stdin) ? -EIO : 0;
        len = (uint32_t) hdr[0] | (uint32_t) hdr[1] << 8 | (uint32_t) hdr[2] << 16 | (uint32_t) hdr[3] << 24;
        if (len > max)
                return -EMSGSIZE;
        if (fread(buf, 1, len, stdin) != len)
                return -EIO;
        *ret_len = len;
        return 1;
}

static int do_send(ashm_chan *ch, const struct chan_args *a) {
        _cleanup_free_ uint8_t *buf = malloc(a->raw ? a->msg_max : 1);
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;
        int r;

        if (!buf)
                return -ENOMEM;
        for (;;) {
                const void *msg;
                size_t len;

                if (a->raw) {
                        r = read_raw(buf, a->msg_max, &len);
                        if (r <= 0)
                                return r;
                        msg = buf;
                } else {
                        ssize_t n = getline(&line, &cap, stdin);

                        if (n < 0)
                                return ferror(stdin) ? -EIO : 0;
                        len = (size_t) n - (n > 0 && line[n - 1] == '\n');
                        msg = line;
                }
                r = ashm_chan_send(ch, msg, len, -1);
                if (r < 0)
                        return r;
        }
}

static int do_recv(ashm_chan *ch, ashm_region *region, const struct chan_args *a, int *ret_out_err) {
        const void *msg;
        size_t len;
        bool got = false;
        int r;

        for (;;) {
                r = ashm_chan_peek(ch, -1, &msg, &len);
                if (r == -EPIPE && !got) {
                        /* The senders of an earlier round are gone and
                         * their messages were read: wait for a new one. */
                        ashm_chan_info info;

                        if (ashm_chan_stat(region, &info, NULL, 0) >= 0 && info.producers == 0)
                                usleep(20000);
                        continue;
                }
                if (r == -EPIPE)
                        return 0;
                if (r < 0)
                        return r;
                if (a->raw) {
                        uint8_t hdr[4] = { (uint8_t) len, (uint8_t) (len >> 8), (uint8_t) (len >> 16),
                                           (uint8_t) (len >> 24) };

                        fwrite(hdr, 1, 4, stdout);
                        fwrite(msg, 1, len, stdout);
                } else {
                        fwrite(msg, 1, len, stdout);
                        putchar('\n');
                }
                /* Out before it counts as delivered. */
                if (fflush(stdout) != 0) {
                        *ret_out_err = errno;
                        return 0;
                }
                got = true;
                r = ashm_chan_release(ch);
                if (r < 0)
                        return r;
        }
}

static const char *kind_name(uint32_t kind) {
        return kind == ASHM_CHAN_QUEUE ? "queue" : "pubsub";
}

static int do_stat(ashm_region *region, const struct chan_args *a) {
        ashm_chan_peer peers[ASHM_CHAN_PEERS_MAX];
        ashm_chan_info i;
        int r = ashm_chan_stat(region, &i, peers, ASHM_CHAN_PEERS_MAX);

        if (r < 0)
                return r;
        if (a->json) {
                printf("{\"kind\":\"%s\",\"msg_max\":%" PRIu32 ",\"depth\":%" PRIu32 ",\"size\":%" PRIu64
                       ",\"sent\":%" PRIu64 ",\"queued\":%" PRIu64 ",\"producers\":%" PRIu32 ",\"consumers\":%" PRIu32
                       ",\"publishers\":%" PRIu32 ",\"subscribers\":%" PRIu32 ",\"lost\":%" PRIu64 ",\"peers\":[",
                       kind_name(i.kind), i.msg_max, i.depth, i.size, i.sent, i.queued, i.producers, i.consumers,
                       i.publishers, i.subscribers, i.lost);
                for (uint32_t k = 0; k < i.peers; k++)
                        printf("%s{\"index\":%" PRIu32 ",\"alive\":%s,\"position\":%" PRIu64 ",\"lag\":%" PRIu64
                               ",\"lost\":%" PRIu64 "}",
                               k ? "," : "", k, peers[k].alive ? "true" : "false", peers[k].position, peers[k].lag,
                               peers[k].lost);
                printf("]}\n");
                return 0;
        }
        printf("kind:        %s%s\n", kind_name(i.kind), i.flags & ASHM_CHAN_OVERWRITE ? " (overwrite)" : "");
        printf("messages:    up to %" PRIu32 " bytes, %" PRIu32 " per ring\n", i.msg_max, i.depth);
        printf("sent:        %" PRIu64 "\n", i.sent);
        if (i.kind == ASHM_CHAN_QUEUE) {
                printf("depth:       %" PRIu64 " waiting\n", i.queued);
                printf("producers:   %" PRIu32 " of %" PRIu32 "\n", i.producers, i.peers);
                printf("consumer:    %s\n", i.consumers ? "attached" : "none");
                for (uint32_t k = 0; k < i.peers; k++)
                        if (peers[k].alive || peers[k].position)
                                printf("  producer %" PRIu32 ": %s, %" PRIu64 " sent, %" PRIu64 " waiting\n", k,
                                       peers[k].alive ? "alive" : "gone", peers[k].position, peers[k].lag);
        } else {
                printf("publisher:   %s\n", i.publishers ? "attached" : "none");
                printf("subscribers: %" PRIu32 " of %" PRIu32 "\n", i.subscribers, i.peers);
                printf("lost:        %" PRIu64 "\n", i.lost);
                for (uint32_t k = 0; k < i.peers; k++)
                        if (peers[k].alive || peers[k].active)
                                printf("  subscriber %" PRIu32 ": %s, lag %" PRIu64 ", lost %" PRIu64 "\n", k,
                                       peers[k].alive ? "alive" : "gone", peers[k].lag, peers[k].lost);
        }
        return 0;
}

int verb_chan(int argc, char *argv[]) {
        _cleanup_(region_closep) ashm_region *region = NULL;
        _cleanup_(chan_closep) ashm_chan *ch = NULL;
        struct chan_args a;
        bool send, stat;
        int r, out_err = 0;

        r = chan_args_parse(argc, argv, &a);
        if (r >= 0)
                return r;
        send = strcmp(a.cmd, "send") == 0;
        stat = strcmp(a.cmd, "stat") == 0;
        r = open_or_create(&a, !stat, &region);
        if (r < 0)
                return chan_failed("open channel", &a, r);
        if (stat) {
                r = do_stat(region, &a);
                return r < 0 ? chan_failed("read channel", &a, r) : EXIT_SUCCESS;
        }
        r = ashm_chan_open(region, send ? ASHM_CHAN_PRODUCER : ASHM_CHAN_CONSUMER, 0, &ch);
        if (r < 0)
                return chan_failed("join channel", &a, r);
        r = send ? do_send(ch, &a) : do_recv(ch, region, &a, &out_err);
        if (out_err)
                return cli_stdout_error(out_err);
        if (r == -EMSGSIZE) {
                fprintf(stderr, "ashm chan: a message is longer than the channel's largest (%s)\n",
                        a.raw ? "see --size" : "a line too long");
                return EXIT_FAILURE;
        }
        if (r < 0)
                return chan_failed(send ? "send to" : "receive from", &a, r);
        return EXIT_SUCCESS;
}
