/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>

/*
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as iSCSI, ext4
 * and Btrfs use it: crc32c(0, "123456789", 9) == 0xE3069283. On x86-64
 * with SSE4.2 it runs on the crc32 instruction (8 bytes per cycle or
 * so); elsewhere on a table. Continue a running CRC by passing it back
 * as crc.
 */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);
