/* Unit tests for the Alertmanager webhook's payload parsing (coordinator/incidents/alertmanager.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "alertmanager.h"
#include "vigil.pb-c.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW_MS 1780000000000LL

/* A notification as Alertmanager 0.25 sends it (one firing, one resolved alert). */
static const char real_v4[] =
    "{\"receiver\":\"vigil\",\"status\":\"firing\",\"alerts\":["
    "{\"status\":\"firing\",\"labels\":{\"alertname\":\"DiskFull\",\"instance\":\"node-a\","
    "\"severity\":\"warning\"},\"annotations\":{\"summary\":\"disk 95% full\"},"
    "\"startsAt\":\"2026-11-29T18:00:00.123456789Z\",\"endsAt\":\"0001-01-01T00:00:00Z\","
    "\"generatorURL\":\"http://prom:9090/graph\",\"fingerprint\":\"5d4c3b2a1f0e9d8c\"},"
    "{\"status\":\"resolved\",\"labels\":{\"alertname\":\"Down\",\"node\":\"node-b\","
    "\"instance\":\"10.0.0.2:9100\"},\"annotations\":{},"
    "\"startsAt\":\"2026-11-29T17:00:00Z\",\"endsAt\":\"2026-11-29T19:30:00+01:00\","
    "\"generatorURL\":\"\",\"fingerprint\":\"0123456789abcdef\"}],"
    "\"groupLabels\":{\"alertname\":\"DiskFull\"},\"commonLabels\":{},\"commonAnnotations\":{},"
    "\"externalURL\":\"http://am:9093\",\"version\":\"4\","
    "\"groupKey\":\"{}:{alertname=\\\"DiskFull\\\"}\",\"truncatedAlerts\":0}";

static int parse(const char *body, struct am_batch *batch, enum am_refusal *refusal, char *reason,
                 size_t reasonlen)
{
    return alertmanager_parse(body, strlen(body), NOW_MS, batch, refusal, reason, reasonlen);
}

/* Wraps one alert object into an otherwise valid payload. */
static char *payload_with(const char *alert)
{
    char *out;
    if (asprintf(&out, "{\"version\":\"4\",\"status\":\"firing\",\"alerts\":[%s]}", alert) < 0)
        return NULL;
    return out;
}

static void test_real_payload(void **state)
{
    (void)state;
    struct am_batch b;
    enum am_refusal refusal;
    char reason[256];
    int64_t ms;

    assert_int_equal(parse(real_v4, &b, &refusal, reason, sizeof(reason)), 0);
    assert_int_equal(refusal, AM_REFUSE_NONE);
    assert_int_equal(b.n, 2);

    const struct am_alert *fire = &b.alerts[0];
    assert_string_equal(fire->name, "alert.DiskFull");
    assert_string_equal(fire->fingerprint, "5d4c3b2a1f0e9d8c");
    assert_string_equal(fire->node, "node-a"); /* instance, as there is no node label */
    assert_true(fire->firing);
    assert_int_equal(fire->state, VIGIL__SIGNAL_STATE__SIGNAL_STATE_WARNING);
    assert_true(alertmanager_parse_time("2026-11-29T18:00:00.123Z", &ms));
    assert_int_equal(fire->ts_ms, ms);
    assert_int_equal(fire->payload_ms, ms);
    assert_non_null(strstr(fire->labels_json, "\"fingerprint\":\"5d4c3b2a1f0e9d8c\""));
    assert_non_null(strstr(fire->labels_json, "\"severity\":\"warning\""));
    assert_null(strstr(fire->labels_json, "summary")); /* annotations are not labels */

    const struct am_alert *res = &b.alerts[1];
    assert_string_equal(res->name, "alert.Down");
    assert_string_equal(res->node, "node-b"); /* node wins over instance */
    assert_false(res->firing);
    assert_int_equal(res->state, VIGIL__SIGNAL_STATE__SIGNAL_STATE_OK);
    assert_true(alertmanager_parse_time("2026-11-29T18:30:00Z", &ms));
    assert_int_equal(res->ts_ms, ms); /* endsAt, offset applied */
    am_batch_clear(&b);
    assert_null(b.alerts);
}

static void test_severity_and_missing_times(void **state)
{
    (void)state;
    struct am_batch b;
    enum am_refusal refusal;
    char reason[256];
    char *p = payload_with(
        "{\"status\":\"firing\",\"labels\":{\"alertname\":\"A\",\"severity\":\"page\"},"
        "\"fingerprint\":\"aa\"},"
        "{\"status\":\"firing\",\"labels\":{\"alertname\":\"B\",\"severity\":\"critical\"},"
        "\"fingerprint\":\"bb\",\"startsAt\":\"not a time\"}");
    assert_non_null(p);
    assert_int_equal(parse(p, &b, &refusal, reason, sizeof(reason)), 0);
    assert_int_equal(b.n, 2);
    assert_int_equal(b.alerts[0].state, VIGIL__SIGNAL_STATE__SIGNAL_STATE_CRITICAL);
    assert_int_equal(b.alerts[1].state, VIGIL__SIGNAL_STATE__SIGNAL_STATE_CRITICAL);
    assert_string_equal(b.alerts[0].node, "");
    assert_int_equal(b.alerts[0].payload_ms, 0);
    assert_int_equal(b.alerts[0].ts_ms, NOW_MS);
    assert_int_equal(b.alerts[1].ts_ms, NOW_MS);
    am_batch_clear(&b);
    free(p);
}

static void test_unknown_fields_ignored(void **state)
{
    (void)state;
    struct am_batch b;
    enum am_refusal refusal;
    char reason[256];
    const char *p =
        "{\"version\":\"4\",\"future\":{\"x\":[1,2]},\"alerts\":[{\"status\":\"firing\","
        "\"labels\":{\"alertname\":\"X\"},\"fingerprint\":\"ff\",\"extra\":true}]}";
    assert_int_equal(parse(p, &b, &refusal, reason, sizeof(reason)), 0);
    assert_int_equal(b.n, 1);
    assert_string_equal(b.alerts[0].name, "alert.X");
    am_batch_clear(&b);
}

static void expect_refused(const char *body, enum am_refusal want, const char *reason_part)
{
    struct am_batch b;
    enum am_refusal refusal = AM_REFUSE_NONE;
    char reason[256] = "";
    assert_int_equal(parse(body, &b, &refusal, reason, sizeof(reason)), -EINVAL);
    assert_int_equal(refusal, want);
    assert_non_null(strstr(reason, reason_part));
    assert_null(strchr(reason, '\n'));
    assert_int_equal(b.n, 0);
    assert_null(b.alerts);
}

static void test_payload_refusals(void **state)
{
    (void)state;
    expect_refused("", AM_REFUSE_MALFORMED, "not JSON");
    expect_refused("{\"version\":\"4\",", AM_REFUSE_MALFORMED, "not JSON");
    expect_refused("[1,2]", AM_REFUSE_MALFORMED, "not a JSON object");
    expect_refused("{\"alerts\":[]}", AM_REFUSE_MALFORMED, "version");
    expect_refused("{\"version\":4,\"alerts\":[]}", AM_REFUSE_MALFORMED, "version");
    expect_refused("{\"version\":\"3\",\"alerts\":[]}", AM_REFUSE_VERSION, "\"3\"");
    expect_refused("{\"version\":\"4\"}", AM_REFUSE_MALFORMED, "alerts");
    expect_refused("{\"version\":\"4\",\"alerts\":{}}", AM_REFUSE_MALFORMED, "alerts");
    expect_refused("{\"version\":\"4\",\"version\":\"4\",\"alerts\":[]}", AM_REFUSE_MALFORMED,
                   "not JSON");
    /* jansson refuses NUL bytes in strings (no JSON_ALLOW_NUL): a label cannot carry one. */
    expect_refused("{\"version\":\"4\",\"alerts\":[{\"labels\":{\"a\":\"x\\u0000y\"}}]}",
                   AM_REFUSE_MALFORMED, "not JSON");
}

/* One alert out of bounds is skipped and counted; the others are kept. */
static void expect_skipped(const char *alert, enum am_refusal want)
{
    struct am_batch b;
    enum am_refusal refusal;
    char reason[256];
    char *p;
    assert_true(asprintf(&p,
                         "{\"version\":\"4\",\"alerts\":[%s,{\"status\":\"firing\","
                         "\"labels\":{\"alertname\":\"Ok\"},\"fingerprint\":\"01\"}]}",
                         alert) > 0);
    assert_int_equal(parse(p, &b, &refusal, reason, sizeof(reason)), 0);
    assert_int_equal(b.n, 1);
    assert_string_equal(b.alerts[0].name, "alert.Ok");
    assert_int_equal(b.refused[want], 1);
    assert_true(b.first_refusal[0] != '\0');
    am_batch_clear(&b);
    free(p);
}

static void test_alert_refusals(void **state)
{
    (void)state;
    expect_skipped("{\"status\":\"firing\",\"labels\":{\"job\":\"x\"},\"fingerprint\":\"aa\"}",
                   AM_REFUSE_NO_ALERTNAME);
    expect_skipped("{\"status\":\"firing\",\"labels\":{\"alertname\":\"\"},\"fingerprint\":\"aa\"}",
                   AM_REFUSE_NO_ALERTNAME);
    expect_skipped("{\"status\":\"firing\",\"labels\":{\"alertname\":\"A\"}}", AM_REFUSE_INVALID);
    expect_skipped(
        "{\"status\":\"firing\",\"labels\":{\"alertname\":\"A\"},\"fingerprint\":\"zz\"}",
        AM_REFUSE_INVALID);
    expect_skipped(
        "{\"status\":\"pending\",\"labels\":{\"alertname\":\"A\"},\"fingerprint\":\"aa\"}",
        AM_REFUSE_INVALID);
    expect_skipped("{\"status\":\"firing\",\"labels\":{\"alertname\":\"A\",\"n\":1},"
                   "\"fingerprint\":\"aa\"}",
                   AM_REFUSE_INVALID);
    expect_skipped("42", AM_REFUSE_INVALID);
}

static void test_label_bounds(void **state)
{
    (void)state;
    char labels[4096];
    char alert[8192];

    /* 15 labels + the fingerprint = 16: accepted. 16 + 1: refused. */
    for (int count = 15; count <= 16; count++) {
        size_t len = (size_t)snprintf(labels, sizeof(labels), "\"alertname\":\"A\"");
        for (int i = 1; i < count; i++)
            len += (size_t)snprintf(labels + len, sizeof(labels) - len, ",\"l%d\":\"v\"", i);
        snprintf(alert, sizeof(alert),
                 "{\"status\":\"firing\",\"labels\":{%s},\"fingerprint\":\"aa\"}", labels);
        char *p = payload_with(alert);
        struct am_batch b;
        enum am_refusal refusal;
        char reason[256];
        assert_int_equal(parse(p, &b, &refusal, reason, sizeof(reason)), 0);
        assert_int_equal(b.n, count == 15 ? 1 : 0);
        assert_int_equal(b.refused[AM_REFUSE_INVALID], count == 15 ? 0 : 1);
        am_batch_clear(&b);
        free(p);
    }

    /* A label value of VG_MAX_VALUE_LEN bytes is accepted, one more is refused. */
    for (int extra = 0; extra <= 1; extra++) {
        char value[VG_MAX_VALUE_LEN + 2];
        memset(value, 'v', sizeof(value));
        value[VG_MAX_VALUE_LEN + extra] = '\0';
        snprintf(alert, sizeof(alert),
                 "{\"status\":\"firing\",\"labels\":{\"alertname\":\"A\",\"big\":\"%s\"},"
                 "\"fingerprint\":\"aa\"}",
                 value);
        char *p = payload_with(alert);
        struct am_batch b;
        enum am_refusal refusal;
        char reason[256];
        assert_int_equal(parse(p, &b, &refusal, reason, sizeof(reason)), 0);
        assert_int_equal(b.n, extra ? 0 : 1);
        am_batch_clear(&b);
        free(p);
    }
}

static void test_alertname_sanitized(void **state)
{
    (void)state;
    struct am_batch b;
    enum am_refusal refusal;
    char reason[256];
    char longname[300];
    char alert[600];

    char *p =
        payload_with("{\"status\":\"firing\",\"labels\":{\"alertname\":\"Disk full/ \\u00e9 x\"},"
                     "\"fingerprint\":\"aa\"}");
    assert_int_equal(parse(p, &b, &refusal, reason, sizeof(reason)), 0);
    assert_int_equal(b.n, 1);
    /* Space, slash, space, the two bytes of "é", space: each mapped to "_". */
    assert_string_equal(b.alerts[0].name, "alert.Disk_full_____x");
    assert_non_null(strstr(b.alerts[0].labels_json, "Disk full/")); /* the label keeps it */
    am_batch_clear(&b);
    free(p);

    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    snprintf(alert, sizeof(alert),
             "{\"status\":\"firing\",\"labels\":{\"alertname\":\"%s\"},\"fingerprint\":\"aa\"}",
             longname);
    p = payload_with(alert);
    assert_int_equal(parse(p, &b, &refusal, reason, sizeof(reason)), 0);
    assert_int_equal(b.n, 1);
    assert_int_equal(strlen(b.alerts[0].name), VG_MAX_NAME_LEN);
    assert_memory_equal(b.alerts[0].name, "alert.nnn", 9);
    am_batch_clear(&b);
    free(p);
}

static void test_rfc3339(void **state)
{
    (void)state;
    int64_t ms = -1;

    assert_true(alertmanager_parse_time("1970-01-01T00:00:00Z", &ms));
    assert_int_equal(ms, 0);
    assert_true(alertmanager_parse_time("2026-11-29T18:00:00Z", &ms));
    assert_int_equal(ms, 1795975200000LL);
    assert_true(alertmanager_parse_time("2026-11-29T18:00:00.5Z", &ms));
    assert_int_equal(ms, 1795975200500LL);
    assert_true(alertmanager_parse_time("2026-11-29T18:00:00.123456789Z", &ms));
    assert_int_equal(ms, 1795975200123LL);
    assert_true(alertmanager_parse_time("2026-11-29T19:00:00+01:00", &ms));
    assert_int_equal(ms, 1795975200000LL);
    assert_true(alertmanager_parse_time("2026-11-29T12:30:00-05:30", &ms));
    assert_int_equal(ms, 1795975200000LL);
    assert_true(alertmanager_parse_time("2024-02-29T00:00:00z", &ms));

    ms = 7;
    const char *bad[] = {"",
                         "2026-11-29",
                         "2026-11-29T18:00:00",
                         "2026-11-29T18:00:00+0100",
                         "2026-13-01T00:00:00Z",
                         "2026-02-30T00:00:00Z",
                         "2026-11-29T24:00:00Z",
                         "2026-11-29T18:00:00.Z",
                         "2026-11-29T18:00:00.1234567890Z",
                         "2026-11-29T18:00:00Zjunk",
                         "20x6-11-29T18:00:00Z"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (alertmanager_parse_time(bad[i], &ms))
            fail_msg("accepted \"%s\"", bad[i]);
    }
    assert_false(alertmanager_parse_time(NULL, &ms));
    assert_int_equal(ms, 7); /* untouched on failure */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_payload),
        cmocka_unit_test(test_severity_and_missing_times),
        cmocka_unit_test(test_unknown_fields_ignored),
        cmocka_unit_test(test_payload_refusals),
        cmocka_unit_test(test_alert_refusals),
        cmocka_unit_test(test_label_bounds),
        cmocka_unit_test(test_alertname_sanitized),
        cmocka_unit_test(test_rfc3339),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
