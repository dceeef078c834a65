/* SPDX-License-Identifier: MIT */
#include <pthread.h>

#include "fork-gen.h"

unsigned ashm__fork_generation;
static pthread_once_t watch_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void) {
        __atomic_add_fetch(&ashm__fork_generation, 1, __ATOMIC_RELAXED);
}

static void watch(void) {
        (void) pthread_atfork(NULL, NULL, on_fork_child);
}

unsigned ashm__fork_gen_start(void) {
        pthread_once(&watch_once, watch);
        return ashm__fork_gen();
}
