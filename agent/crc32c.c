/* CRC-32C (crc32c.h): the processor's instruction where there is one, a table otherwise. */
#include "crc32c.h"

#include <string.h>

/* A nibble at a time: a small table, for processors without the instruction. */
static const uint32_t crc32c_nibble[16] = {
    0x00000000u, 0x105ec76fu, 0x20bd8edeu, 0x30e349b1u, 0x417b1dbcu, 0x5125dad3u,
    0x61c69362u, 0x7198540du, 0x82f63b78u, 0x92a8fc17u, 0xa24bb5a6u, 0xb21572c9u,
    0xc38d26c4u, 0xd3d3e1abu, 0xe330a81au, 0xf36e6f75u,
};

uint32_t crc32c_update_table(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = data;

    for (size_t i = 0; i < len; i++) {
        crc = (crc >> 4) ^ crc32c_nibble[(crc ^ p[i]) & 0x0f];
        crc = (crc >> 4) ^ crc32c_nibble[(crc ^ (uint32_t)(p[i] >> 4)) & 0x0f];
    }
    return crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* SSE4.2's crc32 computes exactly this CRC, eight bytes per instruction. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const uint8_t *p,
                                                               size_t len)
{
    uint64_t c = crc;
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t v;
        memcpy(&v, p, sizeof(v)); /* unaligned, little-endian like the instruction wants */
        c = __builtin_ia32_crc32di(c, v);
    }
    uint32_t c32 = (uint32_t)c;
    for (; len > 0; p++, len--)
        c32 = __builtin_ia32_crc32qi(c32, *p);
    return c32;
}

uint32_t crc32c_update(uint32_t crc, const void *data, size_t len)
{
    /* libgcc fills the CPU model before main: a load and a test per call. */
    if (__builtin_cpu_supports("sse4.2"))
        return crc32c_sse42(crc, data, len);
    return crc32c_update_table(crc, data, len);
}
#else
uint32_t crc32c_update(uint32_t crc, const void *data, size_t len)
{
    return crc32c_update_table(crc, data, len);
}
#endif
