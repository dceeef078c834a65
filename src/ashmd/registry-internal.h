/* SPDX-License-Identifier: MIT */
#pragma once

/* What registry.c shares with registry-purge.c. */

#include <stdint.h>

#include "fd-util.h"
#include "pinstate.h"

/* Runs claimed per call: a chunk can yield this many. */
#define RUNS_PER_CLAIM PINSTATE_CLAIM_RUNS_MIN

static inline uint64_t registry_page(void) {
        return page_size();
}
