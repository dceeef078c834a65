/* SPDX-License-Identifier: MIT */
#pragma once

/* ashmd's connections: accept, read one request at a time, check it with
 * the protocol decoder, answer. A malformed request closes its connection
 * and nothing else. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "broker-table.h"
#include "registry.h"

struct client {
        int fd;
        pid_t pid;
        uid_t uid;
        gid_t gid;
        gid_t *groups;           /* supplementary, from SO_PEERGROUPS */
        size_t n_groups;
        uint32_t cgroup;         /* its memory cgroup (cgroup.c id), 0: unknown */
        struct region **regions; /* registered through this connection */
        size_t n_regions, cap_regions;
        struct client *next;
};

struct daemon {
        int listen_fd;
        int epoll_fd;
        int timer_fd;
        int signal_fd;
        struct pressure *pressure;
        struct cgroups *cgroups;    /* the clients' memory cgroups (cgroup.c) */
        struct registry registry;
        struct broker broker;
        struct client *clients;
        unsigned n_clients;
        struct held_reply *held; /* LIST and NAMES replies their askers may still hold */
        uint64_t max_unpinned;      /* bytes */
        uint64_t cgroup_margin;     /* purge when the cgroup has less headroom */
        uint64_t idle_exit_usec;    /* 0: never */
        uint64_t idle_since_usec;   /* when the last client/region went */
        uint64_t start_usec;
        uint64_t pressure_events;
        uint64_t cgroup_limit, cgroup_usage;
        bool quit;
};

/* The epoll data of each fd: which kind it is. Clients use their pointer. */
enum {
        EV_LISTEN = 1,
        EV_TIMER,
        EV_SIGNAL,
        EV_PRESSURE,
        EV_CGROUPS,
        EV_CLIENT_MIN = 16, /* below this: one of the above */
};

uint64_t now_usec(void);

/* Accept every pending connection. */
void server_accept(struct daemon *d);

/* Serve one readable connection; closes it on hang-up or bad input. */
void server_client_ready(struct daemon *d, struct client *c);

/* Purge to keep unpinned memory under the cap and the cgroup limit. */
void server_enforce_limits(struct daemon *d);

void server_close_all(struct daemon *d);

/* Free the list replies their askers closed (on the timer). */
void server_sweep_replies(struct daemon *d);

/* Drop the list replies kept for their askers (at exit). */
void server_free_replies(struct daemon *d);
