/* Escalation timer computation: when the next level is due, across repeats, and the message a
 * person receives. The engine's store side runs in tests/integration/escalation.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escalate.h"
#include "page_message.h"
#include "runbook.h"

#define MIN (60 * INT64_C(1000))

/* The document's timeline: 0, 15, 30, 60 minutes. */
static struct paging_level timeline[4] = {
    {.delay_ms = 0}, {.delay_ms = 15 * MIN}, {.delay_ms = 30 * MIN}, {.delay_ms = 60 * MIN}};

static struct paging_policy policy(size_t n, int64_t repeat)
{
    struct paging_policy p = {.name = (char *)"default", .repeat = repeat};
    p.levels.items = timeline;
    p.levels.count = n;
    return p;
}

static void test_levels_follow_the_timeline(void **state)
{
    (void)state;
    struct paging_policy p = policy(4, 0);
    const int64_t opened = 1000000;
    /* Nothing paged yet: the first level at its delay (0), then 15, 30, 60 min after opening,
     * whatever the time is now (a late pass after a restart does not shift them). */
    assert_int_equal(escalate_next_due(&p, -1, opened, 0, opened), opened);
    assert_int_equal(escalate_next_due(&p, 0, opened, 0, opened + 5), opened + 15 * MIN);
    assert_int_equal(escalate_next_due(&p, 1, opened, 0, opened + 40 * MIN), opened + 30 * MIN);
    assert_int_equal(escalate_next_due(&p, 2, opened, 0, opened), opened + 60 * MIN);
    /* After the last level: nothing further. */
    assert_int_equal(escalate_next_due(&p, 3, opened, 0, opened + 60 * MIN), 0);
    assert_int_equal(escalate_next_due(NULL, -1, opened, 0, opened), 0);
}

static void test_repeat_runs_the_policy_again(void **state)
{
    (void)state;
    struct paging_policy p = policy(4, 2);
    const int64_t now = 5000000;
    /* One last gap (60 - 30 = 30 min) after the last level, while repeats are left. */
    assert_int_equal(escalate_next_due(&p, 3, 0, 0, now), now + 30 * MIN);
    assert_int_equal(escalate_next_due(&p, 3, 0, 1, now), now + 30 * MIN);
    assert_int_equal(escalate_next_due(&p, 3, 0, 2, now), 0);
    /* A one-level policy repeats a minute apart at the least. */
    struct paging_policy one = policy(1, 1);
    assert_int_equal(escalate_next_due(&one, 0, 0, 0, now), now + MIN);
}

static void test_message_says_what_a_person_needs(void **state)
{
    (void)state;
    struct store_incident inc = {.id = 42, .severity = 1, .opened_at_ms = 1764400000000};
    snprintf(inc.title, sizeof(inc.title), "Application down");
    snprintf(inc.runbook, sizeof(inc.runbook), "application-down");
    inc.state = INCIDENT_STATE_DETECTED;
    snprintf(inc.scope_json, sizeof(inc.scope_json), "%s", "[\"web-1\", \"web-2\"]");
    inc.response_due_ms = inc.opened_at_ms + 15 * MIN;
    struct page_message_in in = {.inc = &inc,
                                 .kind = NOTIFICATION_KIND_PAGE,
                                 .level = 1,
                                 .responders = "alice",
                                 .runbook_link = "docs/runbook#app",
                                 .now_ms = inc.opened_at_ms + 16 * MIN};
    struct page_message msg;
    assert_int_equal(page_message_build(&in, &msg), 0);
    assert_string_equal(msg.subject, "[SEV1] Application down (incident 42) needs you, level 2");
    assert_non_null(strstr(msg.body, "Scope:      web-1, web-2\n"));
    assert_non_null(strstr(msg.body, "(16 min ago)"));
    assert_non_null(strstr(msg.body, "Runbook:    docs/runbook#app\n"));
    assert_non_null(strstr(msg.body, "On it:      alice\n"));
    assert_non_null(strstr(msg.body, "Acknowledge: vigilctl ack 42\n"));
    assert_non_null(strstr(msg.payload_json, "\"ack_command\":\"vigilctl ack 42\""));
    assert_non_null(strstr(msg.payload_json, "\"severity\":\"SEV1\""));
    assert_non_null(strstr(msg.payload_json, "\"kind\":\"page\""));
    assert_non_null(strstr(msg.payload_json, "\"state\":\"detected\""));
    assert_non_null(strstr(msg.payload_json, "\"scope\":[\"web-1\",\"web-2\"]"));
    page_message_free(&msg);

    /* A title with quotes and a newline stays one JSON string. */
    snprintf(inc.title, sizeof(inc.title), "%s", "Bad \"title\"\nsecond line");
    in.kind = NOTIFICATION_KIND_RESOLVED;
    in.level = -1;
    assert_int_equal(page_message_build(&in, &msg), 0);
    assert_non_null(strstr(msg.payload_json, "\"title\":\"Bad \\\"title\\\"\\nsecond line\""));
    page_message_free(&msg);
}

/* A storm's one page names how many nodes and which; a grouped message says who joined; the
 * cap's summary lists what was held back. */
static void test_message_names_a_group(void **unused)
{
    (void)unused;
    struct store_incident inc = {.id = 7, .severity = 3, .opened_at_ms = 1764400000000};
    snprintf(inc.title, sizeof(inc.title), "CPU pinned");
    snprintf(inc.runbook, sizeof(inc.runbook), "cpu");
    snprintf(inc.scope_json, sizeof(inc.scope_json), "%s", "[\"sim-0\"]");
    inc.state = INCIDENT_STATE_DETECTED;
    struct page_message_in in = {.inc = &inc,
                                 .kind = NOTIFICATION_KIND_PAGE,
                                 .level = 0,
                                 .responders = "alice",
                                 .now_ms = inc.opened_at_ms,
                                 .nodes_total = 200,
                                 .nodes = "sim-0, sim-1, and 198 more"};
    struct page_message msg;
    assert_int_equal(page_message_build(&in, &msg), 0);
    assert_string_equal(msg.subject,
                        "[SEV3] CPU pinned (incident 7) needs you, level 1, 200 nodes");
    assert_non_null(strstr(msg.body, "Nodes:      200 nodes: sim-0, sim-1, and 198 more\n"));
    assert_null(strstr(msg.body, "Scope:"));
    assert_non_null(strstr(msg.payload_json, "\"group\":{\"nodes\":\"sim-0, sim-1, and 198 more\","
                                             "\"nodes_total\":200}"));
    page_message_free(&msg);

    in.kind = NOTIFICATION_KIND_GROUPED;
    in.level = -1;
    in.nodes_total = 1;
    in.nodes = "sim-200";
    assert_int_equal(page_message_build(&in, &msg), 0);
    assert_string_equal(msg.subject, "[SEV3] CPU pinned (incident 7) more nodes, 1 node");
    assert_non_null(strstr(msg.body, "Nodes:      1 node joined: sim-200 (incidents of their own"));
    page_message_free(&msg);

    /* One node is no group: the scope as before. */
    in.kind = NOTIFICATION_KIND_PAGE;
    in.level = 0;
    in.nodes_total = 1;
    assert_int_equal(page_message_build(&in, &msg), 0);
    assert_non_null(strstr(msg.body, "Scope:      sim-0\n"));
    assert_null(strstr(msg.payload_json, "\"group\""));
    page_message_free(&msg);

    assert_int_equal(page_message_summary(12, 10, "[SEV3] a\n[SEV3] b", &msg), 0);
    assert_string_equal(msg.subject, "[Vigil] 12 pages held back (at most 10 a minute)");
    assert_non_null(strstr(msg.body, "[SEV3] a\n[SEV3] b\n"));
    assert_non_null(strstr(msg.payload_json, "\"held\":12"));
    page_message_free(&msg);
}

/* A page lists the runbook's steps with what Vigil does with each, says when automation is off,
 * and names the requests waiting for approval. */
static void test_message_lists_runbook_steps(void **unused)
{
    (void)unused;
    struct rb_action resolve[] = {
        {.name = "restart-nginx", .mode = RB_MODE_AUTO},
        {.name = "flush-cache", .mode = RB_MODE_APPROVE},
        {.name = "scale-up", .mode = RB_MODE_MANUAL},
    };
    struct rb_runbook rb = {.id = "application-down", .resolve = resolve, .nresolve = 3};
    char *on = page_message_steps(&rb, true, "");
    assert_non_null(on);
    assert_null(strstr(on, "Automation is off"));
    assert_non_null(strstr(on, "Steps:       restart-nginx (auto: Vigil runs it)\n"));
    assert_non_null(strstr(on, "flush-cache (approve: waits for vigilctl approve)\n"));
    assert_non_null(strstr(on, "scale-up (manual: a responder does it by hand)\n"));
    assert_null(strstr(on, "Approve:"));
    char *off = page_message_steps(&rb, false, "cmd-0011223344556677 flush-cache on web-1");
    assert_non_null(off);
    assert_non_null(strstr(off, "Automation is off"));
    assert_non_null(strstr(off, "restart-nginx (auto: waits for vigilctl approve)\n"));
    assert_non_null(strstr(off, "Approve:     cmd-0011223344556677 flush-cache on web-1"));
    free(on);
    free(off);
    /* No runbook, automation on: nothing to add. */
    char *none = page_message_steps(NULL, true, NULL);
    assert_string_equal(none, "");
    free(none);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_levels_follow_the_timeline),
        cmocka_unit_test(test_repeat_runs_the_policy_again),
        cmocka_unit_test(test_message_says_what_a_person_needs),
        cmocka_unit_test(test_message_lists_runbook_steps),
        cmocka_unit_test(test_message_names_a_group),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
