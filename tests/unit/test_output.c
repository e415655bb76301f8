/* vigilctl output: signal values as the table shows them to a person. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "output.h"

static const char *value(double v, const char *unit)
{
    static char buf[64];
    output_value(v, unit, buf, sizeof(buf));
    return buf;
}

/* What `vigilctl signals` printed as 2.48748e+10 and friends. */
static void test_no_exponent_for_ordinary_values(void **state)
{
    (void)state;
    assert_string_equal(value(24874800000.0, ""), "24874800000");
    assert_string_equal(value(24874800000.0, "count"), "24874800000");
    assert_string_equal(value(1234567, "connections"), "1234567");
    assert_string_equal(value(0, "count"), "0");
    assert_string_equal(value(-0.0, "count"), "0");
    assert_string_equal(value(-3, "count"), "-3");
    assert_string_equal(value(4321, "pid"), "4321");
    assert_string_equal(value(1, "bool"), "1");
    /* Floats: at most three decimals, trailing zeros dropped. */
    assert_string_equal(value(2.16, ""), "2.16");
    assert_string_equal(value(1.5, "per_min"), "1.5");
    assert_string_equal(value(1234.56789, "errors/s"), "1234.568");
    assert_string_equal(value(-12.25, ""), "-12.25");
    /* Below 1: three significant digits, still no exponent. */
    assert_string_equal(value(0.333333, ""), "0.333");
    assert_string_equal(value(0.000123456, ""), "0.000123");
    assert_string_equal(value(0.99999, ""), "1");
    /* Extraordinary magnitudes may use one. */
    assert_non_null(strchr(value(1e20, "count"), 'e'));
    assert_non_null(strchr(value(1e-12, ""), 'e'));
    assert_string_equal(value(NAN, "percent"), "nan");
    assert_string_equal(value(INFINITY, "bytes"), "inf");
    assert_string_equal(value(-INFINITY, "ms"), "-inf");
    /* NULL unit: a plain number. */
    assert_string_equal(value(7, NULL), "7");
}

static void test_bytes(void **state)
{
    (void)state;
    assert_string_equal(value(24874800000.0, "bytes"), "23.2 GiB");
    assert_string_equal(value(0, "bytes"), "0 B");
    assert_string_equal(value(512, "bytes"), "512 B");
    assert_string_equal(value(1023, "bytes"), "1023 B");
    assert_string_equal(value(1024, "bytes"), "1 KiB");
    assert_string_equal(value(1536, "bytes"), "1.5 KiB");
    assert_string_equal(value(512.0 * 1024 * 1024, "bytes"), "512 MiB");
    assert_string_equal(value(150.4 * 1024 * 1024, "bytes"), "150 MiB");
    assert_string_equal(value(99.94 * 1024, "bytes"), "99.9 KiB");
    /* Rounding up into the next unit says so: not "1024 KiB". */
    assert_string_equal(value(1048575, "bytes"), "1 MiB");
    assert_string_equal(value(2.5 * 1024 * 1024 * 1024 * 1024, "bytes"), "2.5 TiB");
    assert_string_equal(value(3.0 * 1024 * 1024 * 1024 * 1024 * 1024, "bytes"), "3 PiB");
    assert_string_equal(value(-2048, "bytes"), "-2 KiB");
    /* Rates. */
    assert_string_equal(value(1572864, "bytes/s"), "1.5 MiB/s");
    assert_string_equal(value(12.5, "bytes/s"), "12.5 B/s");
    assert_string_equal(value(0, "bytes/s"), "0 B/s");
}

static void test_percent(void **state)
{
    (void)state;
    assert_string_equal(value(42.5, "percent"), "42.5 %");
    assert_string_equal(value(42.4649, "percent"), "42.5 %");
    assert_string_equal(value(100, "percent"), "100.0 %");
    assert_string_equal(value(0, "percent"), "0.0 %");
    assert_string_equal(value(-0.01, "percent"), "0.0 %");
    assert_string_equal(value(3.14159, "%"), "3.1 %");
}

static void test_durations(void **state)
{
    (void)state;
    /* Milliseconds. */
    assert_string_equal(value(350, "ms"), "350 ms");
    assert_string_equal(value(350.4, "ms"), "350 ms");
    assert_string_equal(value(23.46, "ms"), "23.5 ms");
    assert_string_equal(value(2.5, "ms"), "2.5 ms");
    assert_string_equal(value(2.345678, "ms"), "2.35 ms");
    assert_string_equal(value(0.1234, "ms"), "0.123 ms");
    assert_string_equal(value(0, "ms"), "0 ms");
    assert_string_equal(value(999.7, "ms"), "1 s");
    assert_string_equal(value(1234, "ms"), "1.2 s");
    assert_string_equal(value(65000, "ms"), "1 min 5 s");
    /* Seconds. */
    assert_string_equal(value(0, "s"), "0 s");
    assert_string_equal(value(0.35, "s"), "350 ms");
    assert_string_equal(value(1.234, "s"), "1.2 s");
    assert_string_equal(value(5, "seconds"), "5 s");
    assert_string_equal(value(59.94, "s"), "59.9 s");
    assert_string_equal(value(59.96, "s"), "1 min");
    assert_string_equal(value(312, "s"), "5 min 12 s");
    assert_string_equal(value(3600, "s"), "1 h");
    assert_string_equal(value(3 * 3600 + 25 * 60 + 10, "s"), "3 h 25 min");
    assert_string_equal(value(3 * 86400 + 4 * 3600 + 59, "s"), "3 d 4 h");
    assert_string_equal(value(400 * 86400.0, "s"), "400 d");
    assert_string_equal(value(-90, "s"), "-1 min 30 s");
    /* Days (a certificate's time left; negative once expired). */
    assert_string_equal(value(13.5, "days"), "13 d 12 h");
    assert_string_equal(value(0.25, "days"), "6 h");
    assert_string_equal(value(-2, "days"), "-2 d");
}

/* A small buffer is cut, never overrun, and always terminated. */
static void test_small_buffers(void **state)
{
    (void)state;
    char buf[8];
    memset(buf, 'x', sizeof(buf));
    output_value(24874800000.0, "", buf, 5);
    assert_string_equal(buf, "2487");
    assert_int_equal(buf[5], 'x');
    output_value(3 * 86400 + 4 * 3600, "s", buf, sizeof(buf));
    assert_string_equal(buf, "3 d 4 h");
    buf[0] = 'x';
    output_value(1, "s", buf, 0);
    assert_int_equal(buf[0], 'x');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_exponent_for_ordinary_values),
        cmocka_unit_test(test_bytes),
        cmocka_unit_test(test_percent),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_small_buffers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
