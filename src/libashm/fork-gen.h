/* SPDX-License-Identifier: MIT */
#pragma once

/* The process's fork generation, for handles a child must not use (their
 * locks and owner bytes belong to the parent): a handle keeps what
 * ashm__fork_gen_start() returned when it was made and compares
 * ashm__fork_gen() with it on use, failing with -ECHILD in a child.
 * Every fork() bumps the generation in the child. */

extern unsigned ashm__fork_generation;

/* Watch for fork() (registered once per process); the generation now. */
unsigned ashm__fork_gen_start(void);

static inline unsigned ashm__fork_gen(void) {
        return __atomic_load_n(&ashm__fork_generation, __ATOMIC_RELAXED);
}
