/* CRC-32C (agent/crc32c.h): the standard check value, and the processor's instruction giving
 * the table's values for every length and alignment, so a spool written on one machine is read
 * on another. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crc32c.h"

static uint32_t checksum(uint32_t (*update)(uint32_t, const void *, size_t), const void *p,
                         size_t len)
{
    return ~update(UINT32_C(0xffffffff), p, len);
}

/* The check value of CRC-32C ("123456789", RFC 3720 appendix B.4). */
static void test_check_value(void **state)
{
    (void)state;
    assert_int_equal(checksum(crc32c_update, "123456789", 9), 0xe3069283u);
    assert_int_equal(checksum(crc32c_update_table, "123456789", 9), 0xe3069283u);
    assert_int_equal(checksum(crc32c_update, "", 0), 0);
}

static void test_same_as_table(void **state)
{
    (void)state;
    enum { MAX = 4096 + 64 };
    uint8_t *buf = malloc(MAX);
    assert_non_null(buf);
    uint32_t x = 12345;
    for (size_t i = 0; i < MAX; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (uint8_t)(x >> 16);
    }
    for (size_t off = 0; off < 16; off++)
        for (size_t len = 0; len + off <= 200; len++)
            assert_int_equal(checksum(crc32c_update, buf + off, len),
                             checksum(crc32c_update_table, buf + off, len));
    assert_int_equal(checksum(crc32c_update, buf + 3, 4096),
                     checksum(crc32c_update_table, buf + 3, 4096));
    /* A state carried across calls, as the spool does (header, then payload in pieces). */
    uint32_t split = crc32c_update(UINT32_C(0xffffffff), buf, 13);
    split = crc32c_update(split, buf + 13, 1000);
    assert_int_equal(~split, checksum(crc32c_update_table, buf, 1013));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_value),
        cmocka_unit_test(test_same_as_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
