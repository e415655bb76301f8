/*
 * Who is on call: weekly rotations across daylight-saving changes (Europe/Berlin,
 * America/New_York), a rotation that has not started, overrides (inside, at the edges,
 * overlapping: the newest wins), one and three users, and TZ put back afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "oncall.h"
#include "paging_config.h"

#define HOUR_MS (3600LL * 1000)

/* "2024-03-25T08:00:00Z" -> Unix ms. */
static int64_t utc(const char *text)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    assert_non_null(strptime(text, "%Y-%m-%dT%H:%M:%SZ", &tm));
    return (int64_t)timegm(&tm) * 1000;
}

struct sched {
    struct paging_schedule s;
    char *users[3];
};

static void make(struct sched *x, const char *tz, const char *handover, const char *start,
                 size_t nusers)
{
    static char *names[] = {"alice", "bob", "carol"};
    char err[256] = "";

    memset(x, 0, sizeof(*x));
    x->s.name = "primary";
    x->s.timezone = (char *)tz;
    x->s.handover = (char *)handover;
    x->s.start = (char *)start;
    for (size_t i = 0; i < nusers; i++)
        x->users[i] = names[i];
    x->s.users.items = x->users;
    x->s.users.count = nusers;
    int r = paging_schedule_prepare(&x->s, err, sizeof(err));
    if (r != 0)
        fail_msg("prepare: %s", err);
}

static struct oncall_result who_at(const struct sched *x, const struct oncall_override *ovr,
                                   size_t n, int64_t at)
{
    struct oncall_result res;
    memset(&res, 0xa5, sizeof(res));
    assert_int_equal(oncall_who(&x->s, ovr, n, at, &res), 0);
    return res;
}

static void assert_who(struct oncall_result res, const char *user, int64_t since, int64_t until,
                       const char *next)
{
    if (user)
        assert_string_equal(res.user, user);
    else
        assert_null(res.user);
    assert_int_equal(res.since_ms, since);
    assert_int_equal(res.until_ms, until);
    if (next)
        assert_string_equal(res.next_user, next);
    else
        assert_null(res.next_user);
}

/* Europe/Berlin springs forward on 2024-03-31 (02:00 CET -> 03:00 CEST): the handover stays
 * at 09:00 local, so bob's week is 167 hours and the UTC handover moves from 08:00 to 07:00. */
static void test_berlin_spring_forward(void **state)
{
    (void)state;
    struct sched x;
    make(&x, "Europe/Berlin", "Mon 09:00", "2024-03-18", 3);

    assert_who(who_at(&x, NULL, 0, utc("2024-03-18T08:00:00Z")), "alice",
               utc("2024-03-18T08:00:00Z"), utc("2024-03-25T08:00:00Z"), "bob");
    struct oncall_result r = who_at(&x, NULL, 0, utc("2024-03-31T12:00:00Z"));
    assert_who(r, "bob", utc("2024-03-25T08:00:00Z"), utc("2024-04-01T07:00:00Z"), "carol");
    assert_int_equal(r.until_ms - r.since_ms, 167 * HOUR_MS);
    assert_false(r.override);
    assert_who(who_at(&x, NULL, 0, utc("2024-04-01T06:59:59Z")), "bob", utc("2024-03-25T08:00:00Z"),
               utc("2024-04-01T07:00:00Z"), "carol");
    assert_who(who_at(&x, NULL, 0, utc("2024-04-01T07:00:00Z")), "carol",
               utc("2024-04-01T07:00:00Z"), utc("2024-04-08T07:00:00Z"), "alice");
    /* Week 3 wraps to the first user. */
    assert_who(who_at(&x, NULL, 0, utc("2024-04-10T00:00:00Z")), "alice",
               utc("2024-04-08T07:00:00Z"), utc("2024-04-15T07:00:00Z"), "bob");
}

/* Europe/Berlin falls back on 2024-10-27 (03:00 CEST -> 02:00 CET): a 169-hour week. */
static void test_berlin_fall_back(void **state)
{
    (void)state;
    struct sched x;
    make(&x, "Europe/Berlin", "Mon 09:00", "2024-10-14", 3);

    struct oncall_result r = who_at(&x, NULL, 0, utc("2024-10-27T01:30:00Z"));
    assert_who(r, "bob", utc("2024-10-21T07:00:00Z"), utc("2024-10-28T08:00:00Z"), "carol");
    assert_int_equal(r.until_ms - r.since_ms, 169 * HOUR_MS);
    assert_who(who_at(&x, NULL, 0, utc("2024-10-28T07:59:59Z")), "bob", utc("2024-10-21T07:00:00Z"),
               utc("2024-10-28T08:00:00Z"), "carol");
    assert_who(who_at(&x, NULL, 0, utc("2024-10-28T08:00:00Z")), "carol",
               utc("2024-10-28T08:00:00Z"), utc("2024-11-04T08:00:00Z"), "alice");
}

/* America/New_York: handover on Sundays at 09:00, and both changes fall on a Sunday
 * (2024-03-10 and 2024-11-03) — the handover day itself. */
static void test_new_york_both_changes(void **state)
{
    (void)state;
    struct sched x;
    make(&x, "America/New_York", "Sun 09:00", "2024-03-03", 3);

    struct oncall_result r = who_at(&x, NULL, 0, utc("2024-03-05T00:00:00Z"));
    assert_who(r, "alice", utc("2024-03-03T14:00:00Z"), utc("2024-03-10T13:00:00Z"), "bob");
    assert_int_equal(r.until_ms - r.since_ms, 167 * HOUR_MS);
    assert_who(who_at(&x, NULL, 0, utc("2024-03-10T13:00:00Z")), "bob", utc("2024-03-10T13:00:00Z"),
               utc("2024-03-17T13:00:00Z"), "carol");

    /* 2024-10-27 is week 34 (34 mod 3 = 1: bob); the next handover is 09:00 EST. */
    r = who_at(&x, NULL, 0, utc("2024-11-02T12:00:00Z"));
    assert_who(r, "bob", utc("2024-10-27T13:00:00Z"), utc("2024-11-03T14:00:00Z"), "carol");
    assert_int_equal(r.until_ms - r.since_ms, 169 * HOUR_MS);
    assert_who(who_at(&x, NULL, 0, utc("2024-11-03T14:00:00Z")), "carol",
               utc("2024-11-03T14:00:00Z"), utc("2024-11-10T14:00:00Z"), "alice");
}

/* A handover inside the spring-forward gap (02:30 does not exist on 2024-03-10 in New York)
 * moves forward by the gap: 03:30 EDT. */
static void test_handover_in_gap(void **state)
{
    (void)state;
    struct sched x;
    int64_t h;
    make(&x, "America/New_York", "Sun 02:30", "2024-03-03", 2);

    assert_int_equal(oncall_handover(&x.s, 0, &h), 0);
    assert_int_equal(h, utc("2024-03-03T07:30:00Z")); /* 02:30 EST */
    assert_int_equal(oncall_handover(&x.s, 1, &h), 0);
    assert_int_equal(h, utc("2024-03-10T07:30:00Z")); /* 03:30 EDT */
    assert_int_equal(oncall_handover(&x.s, 2, &h), 0);
    assert_int_equal(h, utc("2024-03-17T06:30:00Z")); /* 02:30 EDT */
}

/* Far ahead: the rules past the zone file's table still apply (09:00 CEST in July 2100). */
static void test_far_future(void **state)
{
    (void)state;
    struct sched x;
    make(&x, "Europe/Berlin", "Mon 09:00", "2024-01-01", 3);
    struct oncall_result r = who_at(&x, NULL, 0, utc("2100-07-07T12:00:00Z"));
    assert_int_equal(r.since_ms, utc("2100-07-05T07:00:00Z"));
    assert_int_equal(r.until_ms, utc("2100-07-12T07:00:00Z"));
}

/* Before the start nobody is on call; the first user takes over at the first handover. */
static void test_start_in_future(void **state)
{
    (void)state;
    struct sched x;
    make(&x, "Europe/Berlin", "Wed 10:30", "2031-01-01", 3);

    struct oncall_result r = who_at(&x, NULL, 0, utc("2030-12-20T00:00:00Z"));
    assert_who(r, NULL, INT64_MIN, utc("2031-01-01T09:30:00Z"), "alice");
    assert_false(r.override);
    assert_who(who_at(&x, NULL, 0, utc("2031-01-01T09:30:00Z")), "alice",
               utc("2031-01-01T09:30:00Z"), utc("2031-01-08T09:30:00Z"), "bob");

    /* An override before the start fills the gap, and hands over to the rotation. */
    struct oncall_override o = {.id = 1, .schedule = "primary", .user = "dave"};
    o.from_ms = utc("2030-12-30T00:00:00Z");
    o.to_ms = utc("2031-01-02T00:00:00Z");
    r = who_at(&x, &o, 1, utc("2030-12-31T00:00:00Z"));
    assert_who(r, "dave", o.from_ms, o.to_ms, "alice");
    assert_true(r.override);
    assert_int_equal(r.override_id, 1);
    assert_false(r.next_override);
    assert_who(who_at(&x, &o, 1, utc("2030-12-29T00:00:00Z")), NULL, INT64_MIN, o.from_ms, "dave");
    /* After it: alice since the override ended (inside her first week). */
    assert_who(who_at(&x, &o, 1, o.to_ms), "alice", o.to_ms, utc("2031-01-08T09:30:00Z"), "bob");
}

static void test_one_user(void **state)
{
    (void)state;
    struct sched x;
    make(&x, "UTC", "Fri 17:00", "2024-01-05", 1);

    assert_who(who_at(&x, NULL, 0, utc("2024-06-01T00:00:00Z")), "alice",
               utc("2024-05-31T17:00:00Z"), utc("2024-06-07T17:00:00Z"), "alice");
    assert_who(who_at(&x, NULL, 0, utc("2024-01-05T17:00:00Z")), "alice",
               utc("2024-01-05T17:00:00Z"), utc("2024-01-12T17:00:00Z"), "alice");
}

/* Inside an override, at its edges, around it in the same week. */
static void test_override_edges(void **state)
{
    (void)state;
    struct sched x;
    make(&x, "Europe/Berlin", "Mon 09:00", "2024-03-18", 3);
    struct oncall_override o = {.id = 7, .schedule = "primary", .user = "dave"};
    o.from_ms = utc("2024-03-27T10:00:00Z");
    o.to_ms = utc("2024-03-28T10:00:00Z");

    /* The week is bob's: before the override, until it starts, then dave. */
    assert_who(who_at(&x, &o, 1, o.from_ms - 1), "bob", utc("2024-03-25T08:00:00Z"), o.from_ms,
               "dave");
    struct oncall_result r = who_at(&x, &o, 1, o.from_ms);
    assert_who(r, "dave", o.from_ms, o.to_ms, "bob");
    assert_true(r.override);
    assert_int_equal(r.override_id, 7);
    assert_false(r.next_override);
    assert_who(who_at(&x, &o, 1, o.to_ms - 1), "dave", o.from_ms, o.to_ms, "bob");
    /* The end is exclusive: bob again, since the override ended. */
    r = who_at(&x, &o, 1, o.to_ms);
    assert_who(r, "bob", o.to_ms, utc("2024-04-01T07:00:00Z"), "carol");
    assert_false(r.override);
    assert_int_equal(r.override_id, 0);

    /* An override of another schedule changes nothing. */
    struct oncall_override other = o;
    snprintf(other.schedule, sizeof(other.schedule), "secondary");
    assert_who(who_at(&x, &other, 1, o.from_ms), "bob", utc("2024-03-25T08:00:00Z"),
               utc("2024-04-01T07:00:00Z"), "carol");
}

/* Two overrides overlap: the newest (highest id) wins where both apply, whatever the order. */
static void test_override_overlap_newest_wins(void **state)
{
    (void)state;
    struct sched x;
    make(&x, "Europe/Berlin", "Mon 09:00", "2024-03-18", 3);
    struct oncall_override o[2] = {
        {.id = 3, .schedule = "primary", .user = "dave"},
        {.id = 9, .schedule = "primary", .user = "erin"},
    };
    o[0].from_ms = utc("2024-03-26T00:00:00Z"); /* dave: Tue 00:00 .. Fri 00:00 */
    o[0].to_ms = utc("2024-03-29T00:00:00Z");
    o[1].from_ms = utc("2024-03-27T00:00:00Z"); /* erin (newer): Wed 00:00 .. Thu 00:00 */
    o[1].to_ms = utc("2024-03-28T00:00:00Z");

    for (int order = 0; order < 2; order++) {
        struct oncall_override arr[2] = {o[order], o[1 - order]};
        assert_who(who_at(&x, arr, 2, utc("2024-03-26T12:00:00Z")), "dave", o[0].from_ms,
                   o[1].from_ms, "erin");
        struct oncall_result r = who_at(&x, arr, 2, utc("2024-03-27T12:00:00Z"));
        assert_who(r, "erin", o[1].from_ms, o[1].to_ms, "dave");
        assert_int_equal(r.override_id, 9);
        assert_true(r.next_override);
        /* dave again after erin's ends, since then, until his own ends. */
        r = who_at(&x, arr, 2, utc("2024-03-28T12:00:00Z"));
        assert_who(r, "dave", o[1].to_ms, o[0].to_ms, "bob");
        assert_int_equal(r.override_id, 3);
        assert_who(who_at(&x, arr, 2, o[0].to_ms), "bob", o[0].to_ms, utc("2024-04-01T07:00:00Z"),
                   "carol");
    }

    /* An older override that starts inside a newer one shows only once the newer ends. */
    struct oncall_override hidden[2] = {
        {.id = 2, .schedule = "primary", .user = "dave"},
        {.id = 5, .schedule = "primary", .user = "erin"},
    };
    hidden[0].from_ms = utc("2024-03-27T06:00:00Z");
    hidden[0].to_ms = utc("2024-03-27T20:00:00Z");
    hidden[1].from_ms = utc("2024-03-27T00:00:00Z");
    hidden[1].to_ms = utc("2024-03-27T12:00:00Z");
    assert_who(who_at(&x, hidden, 2, utc("2024-03-27T08:00:00Z")), "erin", hidden[1].from_ms,
               hidden[1].to_ms, "dave");
}

/* An override across a handover spans it: the rotation's users do not interrupt it. */
static void test_override_across_handover(void **state)
{
    (void)state;
    struct sched x;
    make(&x, "Europe/Berlin", "Mon 09:00", "2024-03-18", 3);
    struct oncall_override o = {.id = 1, .schedule = "primary", .user = "alice"};
    o.from_ms = utc("2024-03-30T00:00:00Z");
    o.to_ms = utc("2024-04-03T00:00:00Z");
    struct oncall_result r = who_at(&x, &o, 1, utc("2024-04-01T12:00:00Z"));
    assert_who(r, "alice", o.from_ms, o.to_ms, "carol");
    assert_true(r.override);
}

/* The process's TZ is what it was: set, or not set (then the stand-in for "local"). */
static void test_tz_restored(void **state)
{
    (void)state;
    struct sched x;
    make(&x, "Asia/Tokyo", "Mon 09:00", "2024-01-01", 2);

    setenv("TZ", "America/Chicago", 1);
    who_at(&x, NULL, 0, utc("2024-05-01T00:00:00Z"));
    assert_string_equal(getenv("TZ"), "America/Chicago");
    /* localtime works in that zone again (CDT is UTC-5 in May). */
    time_t t = (time_t)(utc("2024-05-01T12:00:00Z") / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    assert_int_equal(tm.tm_hour, 7);

    unsetenv("TZ");
    who_at(&x, NULL, 0, utc("2024-05-01T00:00:00Z"));
    assert_string_equal(getenv("TZ"), ":/etc/localtime");
}

static void test_invalid(void **state)
{
    (void)state;
    struct sched x;
    struct oncall_result r;
    make(&x, "UTC", "Mon 09:00", "2024-01-01", 2);
    assert_int_equal(oncall_who(&x.s, NULL, 0, -1, &r), -EINVAL);
    assert_int_equal(oncall_who(&x.s, NULL, 0, utc("2201-01-01T00:00:00Z"), &r), -EINVAL);
    struct paging_schedule unprepared = {.name = "x", .timezone = "UTC"};
    assert_int_equal(oncall_who(&unprepared, NULL, 0, 0, &r), -EINVAL);
    x.s.timezone = "Mars/Olympus";
    assert_int_equal(oncall_who(&x.s, NULL, 0, utc("2024-05-01T00:00:00Z"), &r), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_berlin_spring_forward),
        cmocka_unit_test(test_berlin_fall_back),
        cmocka_unit_test(test_new_york_both_changes),
        cmocka_unit_test(test_handover_in_gap),
        cmocka_unit_test(test_far_future),
        cmocka_unit_test(test_start_in_future),
        cmocka_unit_test(test_one_user),
        cmocka_unit_test(test_override_edges),
        cmocka_unit_test(test_override_overlap_newest_wins),
        cmocka_unit_test(test_override_across_handover),
        cmocka_unit_test(test_tz_restored),
        cmocka_unit_test(test_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
