/*
 * Follow-up actions (coordinator/admin/followups.c, common/timeutil.c): the due date's parsing
 * (a day the calendar has, nothing else) and the requests' field checks as they cross the wire,
 * where everything is hostile: text, owner, due date and ids out of bounds are refused with a
 * line that names the field. The store and the report are tested end to end by
 * tests/integration/followups.sh.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "admin_internal.h"
#include "timeutil.h"
#include "wire.h"

static void test_parse_date(void **state)
{
    (void)state;
    int64_t days = -1;
    assert_int_equal(vg_parse_date("1970-01-01", &days), 0);
    assert_int_equal(days, 0);
    assert_int_equal(vg_parse_date("2026-12-06", &days), 0);
    assert_int_equal(days, 20793);                           /* date -u -d 2026-12-06 +%s / 86400 */
    assert_int_equal(vg_parse_date("2000-02-29", &days), 0); /* divisible by 400: leap */
    assert_int_equal(days, 11016);
    assert_int_equal(vg_parse_date("2024-02-29", NULL), 0);
    assert_int_equal(vg_parse_date("9999-12-31", &days), 0);
    assert_int_equal(days, 2932896);

    days = 42;
    static const char *const bad[] = {
        "",           "2026",       "2026-1-05",   "2026-01-5",   "26-01-05",    "2026/01/05",
        "2026-00-10", "2026-13-01", "2026-01-00",  "2026-01-32",  "2026-04-31",  "2026-02-29",
        "1900-02-29", "2100-02-29", "1969-12-31",  "2026-01-05 ", " 2026-01-05", "2026-01-05T00",
        "+026-01-05", "2026-0a-05", "２026-01-05", "2026--1-05",  "tomorrow",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (vg_parse_date(bad[i], &days) != -EINVAL)
            fail_msg("\"%s\" was taken as a date", bad[i]);
    }
    assert_int_equal(days, 42); /* untouched on failure */
    assert_int_equal(vg_parse_date(NULL, &days), -EINVAL);
}

static void test_date_text(void **state)
{
    (void)state;
    char buf[16];
    vg_date_text(0, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01");
    vg_date_text(INT64_C(1796601599999), buf, sizeof(buf)); /* 2026-12-06 23:59:59.999 UTC */
    assert_string_equal(buf, "2026-12-06");
    vg_date_text(INT64_C(1796601600000), buf, sizeof(buf));
    assert_string_equal(buf, "2026-12-07");
}

/* A request as it crosses the wire: encoded, decoded and checked by its table entry. */
static enum vg_decode_error decode_admin(Vigil__AdminRequest *req, const char **reason)
{
    req->version = VG_PROTOCOL_VERSION;
    size_t len = vigil__admin_request__get_packed_size(req);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    vigil__admin_request__pack(req, buf);
    Vigil__AdminRequest *out = NULL;
    const char *why = NULL;
    enum vg_decode_error e = vg_admin_request_decode(buf, len, &out, &why);
    if (e == VG_DECODE_OK)
        e = admin_request_check(out, &why);
    if (out)
        vigil__admin_request__free_unpacked(out, NULL);
    free(buf);
    *reason = why;
    return e;
}

static enum vg_decode_error check_add(uint64_t incident, const char *text, const char *owner,
                                      const char *due, const char **reason)
{
    Vigil__AddFollowup a = VIGIL__ADD_FOLLOWUP__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    a.incident_id = incident;
    a.text = (char *)text;
    a.owner = (char *)owner;
    a.due = (char *)due;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_ADD_FOLLOWUP;
    req.add_followup = &a;
    return decode_admin(&req, reason);
}

static void test_add_checked(void **state)
{
    (void)state;
    const char *why = NULL;
    char text[1100];

    assert_int_equal(check_add(3, "rotate the TLS keys", "", "", &why), VG_DECODE_OK);
    assert_int_equal(check_add(3, "rotate the TLS keys", "alice", "2026-12-31", &why),
                     VG_DECODE_OK);
    assert_int_equal(check_add(3, "Schlüssel tauschen", "Zoë Ångström", "2028-02-29", &why),
                     VG_DECODE_OK);
    /* 64 characters of two bytes each: a name, not a byte count. */
    char owner[200];
    for (int i = 0; i < 65; i++)
        memcpy(owner + 2 * i, "\xc3\xa9", 2); /* é */
    owner[128] = '\0';
    assert_int_equal(check_add(3, "x", owner, "", &why), VG_DECODE_OK);
    owner[128] = '\xc3'; /* the 65th */
    owner[130] = '\0';
    assert_int_equal(check_add(3, "x", owner, "", &why), VG_DECODE_LIMITS);
    assert_non_null(strstr(why, "--owner"));

    memset(text, 'a', 1024);
    text[1024] = '\0';
    assert_int_equal(check_add(3, text, "", "", &why), VG_DECODE_OK);
    text[1024] = 'a';
    text[1025] = '\0';
    assert_int_equal(check_add(3, text, "", "", &why), VG_DECODE_LIMITS);
    assert_non_null(strstr(why, "1024 bytes"));

    assert_int_equal(check_add(0, "x", "", "", &why), VG_DECODE_LIMITS);
    assert_non_null(strstr(why, "incident id"));
    assert_int_equal(check_add(3, "", "", "", &why), VG_DECODE_LIMITS);
    assert_int_equal(check_add(3, "two\nlines", "", "", &why), VG_DECODE_LIMITS);
    assert_int_equal(check_add(3, "bell\a", "", "", &why), VG_DECODE_LIMITS);
    assert_int_equal(check_add(3, "not UTF-8 \xff", "", "", &why), VG_DECODE_LIMITS);
    assert_int_equal(check_add(3, "x", "\xc3", "", &why), VG_DECODE_LIMITS);
    assert_int_equal(check_add(3, "c1 \xc2\x85 next line", "", "", &why), VG_DECODE_LIMITS);
    assert_int_equal(check_add(3, "x", "   ", "", &why), VG_DECODE_LIMITS);
    assert_int_equal(check_add(3, "x", "bob\tsmith", "", &why), VG_DECODE_LIMITS);
    assert_int_equal(check_add(3, "x", "", "2026-02-30", &why), VG_DECODE_LIMITS);
    assert_non_null(strstr(why, "--due"));
    assert_int_equal(check_add(3, "x", "", "31/12/2026", &why), VG_DECODE_LIMITS);
    assert_int_equal(check_add(UINT64_MAX, "x", "", "", &why), VG_DECODE_LIMITS);
}

static void test_finish_checked(void **state)
{
    (void)state;
    const char *why = NULL;
    Vigil__FinishFollowup f = VIGIL__FINISH_FOLLOWUP__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_FINISH_FOLLOWUP;
    req.finish_followup = &f;
    f.id = 7;
    assert_int_equal(decode_admin(&req, &why), VG_DECODE_OK);
    f.note = "keys rotated in change 1234";
    assert_int_equal(decode_admin(&req, &why), VG_DECODE_OK);
    f.note = "a\rb";
    assert_int_equal(decode_admin(&req, &why), VG_DECODE_LIMITS);
    assert_non_null(strstr(why, "--note"));
    f.note = "";
    f.id = 0;
    assert_int_equal(decode_admin(&req, &why), VG_DECODE_LIMITS);
    assert_non_null(strstr(why, "follow-up id"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_date),
        cmocka_unit_test(test_date_text),
        cmocka_unit_test(test_add_checked),
        cmocka_unit_test(test_finish_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
