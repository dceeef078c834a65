/* SPDX-License-Identifier: MIT */
#include "ashm.h"
#include "internal.h"

_public_ const char *ashm_version(void) {
        return ASHM_VERSION_STRING;
}
