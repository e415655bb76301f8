/*
 * The CRI log format: records as containerd and CRI-O write them, partial records joined per
 * stream and bounded, and lines that only look like records.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>

#include "crilog.h"

static int parse(const char *line, struct crilog_record *rec)
{
    return crilog_parse(line, strlen(line), rec);
}

static void test_records(void **state)
{
    (void)state;
    struct crilog_record r;

    assert_int_equal(parse("2016-10-06T00:17:09.669794202Z stdout F log content 1", &r), 0);
    assert_int_equal(r.stream, CRILOG_STDOUT);
    assert_false(r.partial);
    assert_int_equal(r.msg_len, strlen("log content 1"));
    assert_memory_equal(r.msg, "log content 1", r.msg_len);
    assert_int_equal(r.time_ns, 1475713029669794202LL);

    assert_int_equal(parse("2016-10-06T00:17:09.669794202Z stderr P part", &r), 0);
    assert_int_equal(r.stream, CRILOG_STDERR);
    assert_true(r.partial);

    /* CRI-O writes a local offset; fewer fraction digits; no fraction at all. */
    assert_int_equal(parse("2016-10-06T02:17:09.5+02:00 stdout F x", &r), 0);
    assert_int_equal(r.time_ns, 1475713029500000000LL);
    assert_int_equal(parse("2016-10-05T19:17:09-05:00 stdout F x", &r), 0);
    assert_int_equal(r.time_ns, 1475713029000000000LL);
    /* Leap day, leap second as the runtime might print it */
    assert_int_equal(parse("2024-02-29T23:59:60Z stdout F x", &r), 0);

    /* An empty message, with and without the space before it */
    assert_int_equal(parse("2016-10-06T00:17:09Z stdout F ", &r), 0);
    assert_int_equal(r.msg_len, 0);
    assert_int_equal(parse("2016-10-06T00:17:09Z stdout F", &r), 0);
    assert_int_equal(r.msg_len, 0);
    /* More tags after the first; spaces inside the message are kept */
    assert_int_equal(parse("2016-10-06T00:17:09Z stdout P:x:y  two  spaces ", &r), 0);
    assert_true(r.partial);
    assert_int_equal(r.msg_len, strlen(" two  spaces "));
    /* Bytes of any kind in the message */
    const char bin[] = "2016-10-06T00:17:09Z stdout F \xff\xfe\x00z";
    assert_int_equal(crilog_parse(bin, sizeof(bin) - 1, &r), 0);
    assert_int_equal(r.msg_len, 4);
}

static void test_not_records(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "plain text line",
        "2016-10-06T00:17:09Z",
        "2016-10-06T00:17:09Z stdout",
        "2016-10-06T00:17:09Z stdout ",
        "2016-10-06T00:17:09Z stdin F x",
        "2016-10-06T00:17:09Z STDOUT F x",
        "2016-10-06T00:17:09Z stdout X x",
        "2016-10-06T00:17:09Z stdout Full x",
        "2016-10-06T00:17:09Z stdout PF x",
        "2016-10-06 00:17:09Z stdout F x",
        "2016-13-06T00:17:09Z stdout F x",
        "2023-02-29T00:17:09Z stdout F x",
        "2016-10-06T24:17:09Z stdout F x",
        "2016-10-06T00:17:09.Z stdout F x",
        "2016-10-06T00:17:09.1234567890Z stdout F x",
        "2016-10-06T00:17:09 stdout F x",
        "2016-10-06T00:17:09+0200 stdout F x",
        "2016-10-06T00:17:09Zjunk stdout F x",
        "2016-1a-06T00:17:09Z stdout F x",
        " 2016-10-06T00:17:09Z stdout F x",
        "2016-10-06T00:17:09Z  stdout F x",
        /* found by fuzz_crilog: nanoseconds since 1970 overflowed 64 bits */
        "1012-05-01T12:00:00.123456790+02:00 stderr F x",
        "2262-05-01T12:00:00Z stderr F x",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct crilog_record r;
        memset(&r, 'z', sizeof(r));
        if (parse(bad[i], &r) != -EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_int_equal(r.msg_len, 0x7a7a7a7a7a7a7a7aULL); /* untouched */
    }
    /* A time cut by the length, though the bytes after it would complete it */
    const char *line = "2016-10-06T00:17:09Z stdout F x";
    struct crilog_record r;
    assert_int_equal(crilog_parse(line, 10, &r), -EINVAL);
    assert_int_equal(crilog_parse(line, 28, &r), -EINVAL);
    assert_int_equal(crilog_parse(NULL, 0, &r), -EINVAL);
}

struct got {
    char text[8][256];
    bool truncated[8];
    size_t n;
};

static void collect(const char *msg, size_t len, bool truncated, void *userdata)
{
    struct got *g = userdata;
    assert_true(g->n < 8);
    assert_true(len < sizeof(g->text[0]));
    memcpy(g->text[g->n], msg, len);
    g->text[g->n][len] = '\0';
    g->truncated[g->n] = truncated;
    g->n++;
}

static void feed(struct crilog_joiner *j, const char *line, struct got *g)
{
    struct crilog_record r;
    assert_int_equal(parse(line, &r), 0);
    assert_int_equal(crilog_joiner_add(j, &r, false, collect, g), 0);
}

static void test_join(void **state)
{
    (void)state;
    struct crilog_joiner j;
    struct got g = {0};
    assert_int_equal(crilog_joiner_init(&j, 16), 0);

    feed(&j, "2024-01-01T00:00:00Z stdout F whole", &g);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.text[0], "whole");
    assert_null(j.stream[0].buf); /* nothing allocated for whole lines */

    /* stdout and stderr interleave: each joined on its own */
    feed(&j, "2024-01-01T00:00:00Z stdout P ab", &g);
    feed(&j, "2024-01-01T00:00:00Z stderr P xy", &g);
    feed(&j, "2024-01-01T00:00:00Z stdout P cd", &g);
    feed(&j, "2024-01-01T00:00:00Z stderr F z", &g);
    feed(&j, "2024-01-01T00:00:00Z stdout F ef", &g);
    assert_int_equal(g.n, 3);
    assert_string_equal(g.text[1], "xyz");
    assert_string_equal(g.text[2], "abcdef");
    assert_false(g.truncated[2]);

    /* Bounded: 16 bytes kept, marked truncated */
    feed(&j, "2024-01-01T00:00:00Z stdout P 0123456789", &g);
    feed(&j, "2024-01-01T00:00:00Z stdout P 0123456789", &g);
    feed(&j, "2024-01-01T00:00:00Z stdout F 0123456789", &g);
    assert_int_equal(g.n, 4);
    assert_string_equal(g.text[3], "0123456789012345");
    assert_true(g.truncated[3]);
    /* ... and the next message starts clean */
    feed(&j, "2024-01-01T00:00:00Z stdout P a", &g);
    feed(&j, "2024-01-01T00:00:00Z stdout F b", &g);
    assert_string_equal(g.text[4], "ab");
    assert_false(g.truncated[4]);

    /* A whole record longer than the cap is cut too */
    feed(&j, "2024-01-01T00:00:00Z stderr F 0123456789abcdefXYZ", &g);
    assert_string_equal(g.text[5], "0123456789abcdef");
    assert_true(g.truncated[5]);

    /* The container died mid-line: flush delivers what was waiting */
    feed(&j, "2024-01-01T00:00:00Z stdout P last words", &g);
    assert_int_equal(g.n, 6);
    crilog_joiner_flush(&j, collect, &g);
    assert_int_equal(g.n, 7);
    assert_string_equal(g.text[6], "last words");
    crilog_joiner_flush(&j, collect, &g);
    assert_int_equal(g.n, 7);

    crilog_joiner_free(&j);
    crilog_joiner_free(&j);
    assert_int_equal(crilog_joiner_init(&j, 0), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records),
        cmocka_unit_test(test_not_records),
        cmocka_unit_test(test_join),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
