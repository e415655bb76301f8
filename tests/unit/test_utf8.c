/* common/utf8.c: strict validation, cutting on a character boundary, escaping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "utf8.h"

static void test_valid(void **unused)
{
    (void)unused;
    assert_true(vg_utf8_valid(""));
    assert_true(vg_utf8_valid("plain ascii"));
    assert_true(vg_utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\xa5"));
    assert_false(vg_utf8_valid("bad\xff"));
    assert_false(vg_utf8_valid("\xc0\xaf"));         /* overlong '/' */
    assert_false(vg_utf8_valid("\xed\xa0\x80"));     /* a surrogate */
    assert_false(vg_utf8_valid("\xf4\x90\x80\x80")); /* above U+10FFFF */
    assert_false(vg_utf8_valid("\xe2\x82"));         /* cut short */
}

static void test_cut(void **unused)
{
    (void)unused;
    const char *s = "ab\xe2\x82\xac"; /* "ab€": the euro sign is bytes 2..4 */
    assert_int_equal(vg_utf8_cut(s, 5, 10), 5);
    assert_int_equal(vg_utf8_cut(s, 5, 5), 5);
    assert_int_equal(vg_utf8_cut(s, 5, 4), 2); /* never half a character */
    assert_int_equal(vg_utf8_cut(s, 5, 3), 2);
    assert_int_equal(vg_utf8_cut(s, 5, 2), 2);
}

static void test_escape(void **unused)
{
    (void)unused;
    char out[64];
    bool escaped = true;
    assert_int_equal(vg_utf8_escape("caf\xc3\xa9", out, sizeof(out), &escaped), 5);
    assert_false(escaped);
    assert_string_equal(out, "caf\xc3\xa9");

    assert_int_equal(vg_utf8_escape("/mnt/bad\xff\xfe", out, sizeof(out), &escaped), 16);
    assert_true(escaped);
    assert_string_equal(out, "/mnt/bad\\xff\\xfe");
    assert_true(vg_utf8_valid(out));

    /* Full: stops before an escape or a character that does not fit. */
    char small[6];
    vg_utf8_escape("ab\xff", small, sizeof(small), NULL);
    assert_string_equal(small, "ab");
    vg_utf8_escape("abcd\xc3\xa9", small, sizeof(small), NULL);
    assert_string_equal(small, "abcd");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_cut),
        cmocka_unit_test(test_escape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
