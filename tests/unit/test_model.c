/*
 * The domain's enums and their names (model.h): every value has the database's word for it and
 * parses back to itself; near misses, other enums' words, NULL and values outside an enum are
 * refused, and a refused parse leaves the output alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>

#include "model.h"

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Words no enum has, each near one that some enum has. */
static const char *const near_misses[] = {
    "",       "?",        "unknown",    "Detected",      "PAGE",        "sent ",
    " slack", "closed\n", "report-due", "notify-failed", "acknowledge", "resolve",
};

/*
 * Every value: name_fn gives names[i], and parse_fn gives the value back (into a variable that
 * held another value first, so a parse that writes nothing fails). The value after the last has
 * no name. Each near miss, each word in foreign[] and NULL are refused with -EINVAL, and the
 * output keeps what it had.
 */
#define CHECK_ENUM(type, name_fn, parse_fn, count, names, foreign)                                 \
    do {                                                                                           \
        assert_int_equal((count), COUNT_OF(names));                                                \
        for (int i = 0; i < (count); i++) {                                                        \
            type v = (type)((i + 1) % (count));                                                    \
            assert_non_null(name_fn((type)i));                                                     \
            assert_string_equal(name_fn((type)i), (names)[i]);                                     \
            assert_int_equal(parse_fn((names)[i], &v), 0);                                         \
            assert_int_equal(v, i);                                                                \
        }                                                                                          \
        assert_null(name_fn((type)(count)));                                                       \
        for (size_t j = 0; j < COUNT_OF(near_misses) + COUNT_OF(foreign) + 1; j++) {               \
            const char *text = j < COUNT_OF(near_misses) ? near_misses[j]                          \
                               : j < COUNT_OF(near_misses) + COUNT_OF(foreign)                     \
                                   ? (foreign)[j - COUNT_OF(near_misses)]                          \
                                   : NULL;                                                         \
            type v = (type)((count)-1);                                                            \
            assert_int_equal(parse_fn(text, &v), -EINVAL);                                         \
            assert_int_equal(v, (count)-1);                                                        \
        }                                                                                          \
    } while (0)

static void test_incident_states(void **state)
{
    (void)state;
    /* 005_incidents.sql's CHECK, in lifecycle order. */
    static const char *const names[] = {"detected", "acknowledged", "mitigated", "resolved",
                                        "closed"};
    static const char *const foreign[] = {"page", "opened", "pending", "open"};
    CHECK_ENUM(enum incident_state, incident_state_name, incident_state_parse, INCIDENT_STATES,
               names, foreign);

    /* Open is what the one-open-incident-per-fingerprint index says. */
    assert_true(incident_state_open(INCIDENT_STATE_DETECTED));
    assert_true(incident_state_open(INCIDENT_STATE_ACKNOWLEDGED));
    assert_true(incident_state_open(INCIDENT_STATE_MITIGATED));
    assert_false(incident_state_open(INCIDENT_STATE_RESOLVED));
    assert_false(incident_state_open(INCIDENT_STATE_CLOSED));
}

static void test_incident_event_kinds(void **state)
{
    (void)state;
    /* 013_commands.sql's incident_events_kind_check. */
    static const char *const names[] = {
        "opened",     "symptom",   "severity",      "acknowledged",    "mitigated",
        "resolved",   "reopened",  "note",          "attached",        "report",
        "closed",     "escalated", "notify_failed", "deadline_missed", "status_update",
        "report_due", "command"};
    static const char *const foreign[] = {"detected", "page", "update", "deadline", "failed"};
    CHECK_ENUM(enum incident_event_kind, incident_event_kind_name, incident_event_kind_parse,
               INCIDENT_EVENT_KINDS, names, foreign);
}

static void test_notification_kinds(void **state)
{
    (void)state;
    /* 022_status_update_rule.sql's notifications_kind_check. */
    static const char *const names[] = {"page",         "update",   "resolved",
                                        "acknowledged", "audience", "deadline",
                                        "report_due",   "grouped",  "summary",
                                        "action",       "reminder", "human_update"};
    static const char *const foreign[] = {"closed", "detected", "status_update", "escalated"};
    CHECK_ENUM(enum notification_kind, notification_kind_name, notification_kind_parse,
               NOTIFICATION_KINDS, names, foreign);
}

static void test_notification_statuses(void **state)
{
    (void)state;
    /* 016_page_groups.sql; "retry" is an attempt's outcome (a metric label), not a status. */
    static const char *const names[] = {"pending", "sending", "sent",
                                        "failed",  "held",    "summarised"};
    static const char *const foreign[] = {"retry", "stored", "page", "notify_failed"};
    CHECK_ENUM(enum notification_status, notification_status_name, notification_status_parse,
               NOTIFICATION_STATUSES, names, foreign);
}

static void test_paging_channels(void **state)
{
    (void)state;
    /* 007_notifications.sql and 025_tickets.sql, and the keys of a contact in paging_config.c
     * (a contact's phone is the sms channel's address; tickets have no contact). */
    static const char *const names[] = {"slack", "webhook", "email", "pagerduty", "sms", "ticket"};
    static const char *const foreign[] = {"phone", "smtp", "pager_duty", "page", "tickets"};
    CHECK_ENUM(enum paging_channel, paging_channel_name, paging_channel_parse, PAGING_CHANNELS,
               names, foreign);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_incident_states),    cmocka_unit_test(test_incident_event_kinds),
        cmocka_unit_test(test_notification_kinds), cmocka_unit_test(test_notification_statuses),
        cmocka_unit_test(test_paging_channels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
