/*
 * CRC-32C (Castagnoli, reflected), the spool records' checksum (spool.h). The state starts at
 * 0xffffffff and the checksum is the final state inverted; crc32c_update continues a state over
 * more bytes. On x86-64 with SSE4.2 the processor's crc32 instruction does the work (about
 * 20 times the table's speed: evidence passes 1 MiB chunks through the spool twice); elsewhere a
 * small table does. Both give the same values, so spools stay readable across machines.
 */
#ifndef VG_AGENT_CRC32C_H
#define VG_AGENT_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t crc32c_update(uint32_t crc, const void *data, size_t len);
/* The table version alone, for tests that compare the two. */
uint32_t crc32c_update_table(uint32_t crc, const void *data, size_t len);

#endif
