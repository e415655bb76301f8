/*
 * Business hours (hours.h) and what the escalation engine does with them: the window
 * computation against fixed instants (a night, a weekend, a holiday, both daylight-saving
 * changes), then the engine on a test clock against a private PostgreSQL (pg_fixture.h): a SEV3
 * opened on a Saturday night is held, on its timeline, and paged at Monday's window start; a SEV1
 * at the same moment is paged at once; a SEV4 files one ticket row, once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <time.h>

#include "escalate.h"
#include "hours.h"
#include "log.h"
#include "paging_config.h"
#include "pg_fixture.h"
#include "store.h"

#define MIN_MS (60 * INT64_C(1000))

/* Unix ms of a UTC civil time. */
static int64_t utc(int y, int mon, int d, int h, int m)
{
    struct tm tm = {
        .tm_year = y - 1900, .tm_mon = mon - 1, .tm_mday = d, .tm_hour = h, .tm_min = m};
    return (int64_t)timegm(&tm) * 1000;
}

static char *holidays_2026[] = {(char *)"2026-12-25"};

/* Mon..Fri 09:00-17:00 in zone, 2026-12-25 a holiday. */
static struct paging_hours office(const char *zone)
{
    struct paging_hours h = {
        .name = (char *)"office",
        .timezone = (char *)zone,
        .day_mask = 0x3E,
        .start_minute = 9 * 60,
        .end_minute = 17 * 60,
    };
    h.holidays.items = holidays_2026;
    h.holidays.count = 1;
    return h;
}

static int64_t next_open(const struct paging_hours *h, int64_t at)
{
    int64_t ret = -1;
    assert_int_equal(hours_next_open(h, at, &ret), 0);
    return ret;
}

static void test_night_waits_for_the_morning(void **state)
{
    (void)state;
    struct paging_hours h = office("Europe/Berlin");
    /* Tue 2026-12-08 23:00 CET (22:00 UTC) -> Wed 09:00 CET (08:00 UTC). */
    assert_int_equal(next_open(&h, utc(2026, 12, 8, 22, 0)), utc(2026, 12, 9, 8, 0));
    /* Early the same morning: today's start. */
    assert_int_equal(next_open(&h, utc(2026, 12, 9, 5, 30)), utc(2026, 12, 9, 8, 0));
    /* Inside the window: now; at its end: closed (the next day's start). */
    assert_int_equal(next_open(&h, utc(2026, 12, 9, 12, 34)), utc(2026, 12, 9, 12, 34));
    assert_true(hours_open(&h, utc(2026, 12, 9, 8, 0)));
    assert_false(hours_open(&h, utc(2026, 12, 9, 16, 0))); /* 17:00 CET */
    assert_int_equal(next_open(&h, utc(2026, 12, 9, 16, 0)), utc(2026, 12, 10, 8, 0));
    char text[HOURS_TEXT_MAX];
    hours_local_text(&h, utc(2026, 12, 9, 8, 0), text, sizeof(text));
    assert_string_equal(text, "2026-12-09 09:00 Europe/Berlin");
}

static void test_friday_evening_waits_for_monday(void **state)
{
    (void)state;
    struct paging_hours h = office("Europe/Berlin");
    /* Fri 2026-12-04 18:30 CET -> Mon 2026-12-07 09:00 CET; a Saturday night likewise. */
    assert_int_equal(next_open(&h, utc(2026, 12, 4, 17, 30)), utc(2026, 12, 7, 8, 0));
    assert_int_equal(next_open(&h, utc(2026, 12, 5, 22, 0)), utc(2026, 12, 7, 8, 0));
    /* New York's Friday evening is Saturday in UTC: the zone's weekdays count. */
    struct paging_hours ny = office("America/New_York");
    assert_int_equal(next_open(&ny, utc(2026, 12, 5, 1, 0)), utc(2026, 12, 7, 14, 0));
}

static void test_holiday_is_skipped(void **state)
{
    (void)state;
    struct paging_hours h = office("Europe/Berlin");
    /* Thu 2026-12-24 20:00 CET: Friday the 25th is a holiday, then the weekend -> Mon 28th. */
    assert_int_equal(next_open(&h, utc(2026, 12, 24, 19, 0)), utc(2026, 12, 28, 8, 0));
    /* During the holiday's would-be window, too. */
    assert_false(hours_open(&h, utc(2026, 12, 25, 10, 0)));
    /* Without the holiday, Friday opens as usual. */
    h.holidays.count = 0;
    assert_int_equal(next_open(&h, utc(2026, 12, 24, 19, 0)), utc(2026, 12, 25, 8, 0));
}

static void test_daylight_saving_changes(void **state)
{
    (void)state;
    struct paging_hours h = office("Europe/Berlin");
    /* Spring: clocks go forward on Sun 2027-03-28. Friday 18:00 CET (17:00 UTC) waits for Monday
     * 09:00 CEST, which is 07:00 UTC, not 08:00. */
    assert_int_equal(next_open(&h, utc(2027, 3, 26, 17, 0)), utc(2027, 3, 29, 7, 0));
    /* Autumn: back on Sun 2026-10-25. Friday 18:00 CEST -> Monday 09:00 CET = 08:00 UTC. */
    assert_int_equal(next_open(&h, utc(2026, 10, 23, 16, 0)), utc(2026, 10, 26, 8, 0));
    /* A window on the change day itself: Sunday 09:00 CEST, after the jump at 02:00. */
    h.day_mask = 1u << 0;
    assert_int_equal(next_open(&h, utc(2027, 3, 27, 11, 0)), utc(2027, 3, 28, 7, 0));
    /* A start inside the jump (02:30 does not exist that day) moves forward by the gap. */
    h.start_minute = 2 * 60 + 30;
    int64_t at = next_open(&h, utc(2027, 3, 27, 11, 0));
    assert_int_equal(at, utc(2027, 3, 28, 1, 30)); /* 03:30 CEST */
}

static void test_refused_input(void **state)
{
    (void)state;
    struct paging_hours h = office("Mars/Olympus_Mons");
    int64_t ret = 42;
    assert_int_equal(hours_next_open(&h, utc(2026, 12, 9, 8, 0), &ret), -EINVAL);
    h = office("UTC");
    h.day_mask = 0;
    assert_int_equal(hours_next_open(&h, utc(2026, 12, 9, 8, 0), &ret), -EINVAL);
    assert_int_equal(ret, 42);
}

/* ---- the engine on a test clock ------------------------------------------------------------- */

static struct {
    struct pg_fixture pg;
    char work[64];
    struct paging_config paging;
    escalate_t *escalate;
} t;

static PGresult *sql(const char *query, int n, const char *const *params)
{
    PGresult *res = PQexecParams(t.pg.check, query, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res));
        PQclear(res);
        fail_msg("%s: %s", query, msg);
    }
    return res;
}

static uint64_t incident_at(const char *fingerprint, int severity, int64_t opened_ms)
{
    char sev[8], opened[24];
    snprintf(sev, sizeof(sev), "%d", severity);
    snprintf(opened, sizeof(opened), "%" PRId64, opened_ms);
    const char *params[] = {fingerprint, sev, opened};
    PGresult *res = sql("INSERT INTO incidents (fingerprint, runbook, title, severity, state,"
                        " opened_at, response_due, updated_at, scope)"
                        " VALUES ($1, 'disk-space', 'Disk filling', $2::integer, 'detected',"
                        " to_timestamp($3::bigint / 1000.0),"
                        " to_timestamp($3::bigint / 1000.0) + interval '4 hours',"
                        " to_timestamp($3::bigint / 1000.0), '[\"db-1\"]')"
                        " RETURNING id",
                        3, params);
    uint64_t id = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return id;
}

static long count(const char *query, uint64_t incident)
{
    char id[24];
    snprintf(id, sizeof(id), "%" PRIu64, incident);
    const char *params[] = {id};
    PGresult *res = sql(query, 1, params);
    long n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return n;
}

static long pages(uint64_t incident)
{
    return count("SELECT count(*) FROM notifications WHERE incident_id = $1::bigint"
                 " AND kind = 'page'",
                 incident);
}

static void tick(int64_t now_ms)
{
    int r = escalate_tick(t.escalate, NULL, now_ms);
    assert_true(r >= 0);
}

static void test_sev3_at_night_pages_at_the_window_start(void **state)
{
    (void)state;
    const int64_t opened = utc(2026, 12, 5, 22, 0); /* Saturday 23:00 in Berlin */
    const int64_t monday = utc(2026, 12, 7, 8, 0);  /* Monday 09:00 in Berlin */
    uint64_t sev3 = incident_at("disk-space/db-1", 3, opened);
    uint64_t sev1 = incident_at("disk-space/db-2", 1, opened);
    tick(opened + 1000);
    assert_int_equal(pages(sev3), 0);
    assert_int_equal(pages(sev1), 1); /* SEV1 is never held */
    assert_int_equal(
        count("SELECT count(*) FROM incident_events WHERE incident_id = $1::bigint AND kind = "
              "'note' AND text = 'paging level 1 of policy team (contact:alice) held until "
              "2026-12-07 09:00 Europe/Berlin (business hours office)'",
              sev3),
        1);
    /* The night passes: nothing, and the hold is noted once. */
    for (int64_t at = opened + 10 * MIN_MS; at < monday; at += 7 * 60 * MIN_MS)
        tick(at);
    tick(monday - MIN_MS);
    assert_int_equal(pages(sev3), 0);
    assert_int_equal(count("SELECT count(*) FROM incident_events WHERE incident_id = $1::bigint"
                           " AND text LIKE '%held until%'",
                           sev3),
                     1);
    /* The window opens: level 1 now, level 2 its 15 minutes after it (not at once). */
    tick(monday);
    assert_int_equal(pages(sev3), 1);
    tick(monday + 10 * MIN_MS);
    assert_int_equal(pages(sev3), 1);
    tick(monday + 15 * MIN_MS);
    assert_int_equal(pages(sev3), 2);
}

static void test_sev4_files_one_ticket(void **state)
{
    (void)state;
    const int64_t opened = utc(2026, 12, 9, 10, 0); /* a Wednesday, in the window */
    uint64_t sev4 = incident_at("disk-space/db-3", 4, opened);
    uint64_t sev3 = incident_at("disk-space/db-4", 3, opened);
    tick(opened + 1000);
    tick(opened + 2000);
    tick(opened + 20 * MIN_MS);
    const char *q = "SELECT count(*) FROM notifications WHERE incident_id = $1::bigint"
                    " AND channel = 'ticket' AND target = 'tickets'"
                    " AND address = 'github:acme/ops'";
    assert_int_equal(count(q, sev4), 1);
    assert_int_equal(count(q, sev3), 0); /* tickets.severities: SEV4 only */
}

static int group_setup(void **state)
{
    (void)state;
    char path[PATH_MAX], token[PATH_MAX], err[1024] = "";
    snprintf(t.work, sizeof(t.work), "/tmp/vigil-hours-work-XXXXXX");
    if (!mkdtemp(t.work))
        return -1;
    snprintf(token, sizeof(token), "%s/github.token", t.work);
    FILE *f = fopen(token, "w");
    if (!f || fputs("ghp_test\n", f) < 0 || fclose(f) != 0 || chmod(token, 0600) < 0)
        return -1;
    snprintf(path, sizeof(path), "%s/paging.yaml", t.work);
    f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f,
            "contacts:\n"
            "  - {name: alice, webhook: \"http://127.0.0.1:9/alice\"}\n"
            "  - {name: ops, webhook: \"http://127.0.0.1:9/ops\"}\n"
            "business_hours:\n"
            "  - {name: office, timezone: Europe/Berlin, days: [Mon, Tue, Wed, Thu, Fri],\n"
            "     start: \"09:00\", end: \"17:00\", holidays: [\"2026-12-25\"]}\n"
            "policies:\n"
            "  - name: team\n"
            "    levels:\n"
            "      - {delay: 0s, targets: [\"contact:alice\"], hours: office}\n"
            "      - {delay: 15m, targets: [\"contact:ops\"], hours: office}\n"
            "  - name: default\n"
            "    levels:\n"
            "      - {delay: 0s, targets: [\"contact:alice\"]}\n"
            "routing:\n"
            "  SEV3: {policy: team}\n"
            "  SEV4: {policy: team}\n"
            "grouping: {wait: 0s}\n"
            "max_pages_per_minute: 0\n"
            "tickets: {kind: github, owner: acme, repo: ops, token_file: \"%s\"}\n",
            token);
    if (fclose(f) != 0)
        return -1;
    if (paging_config_load(path, &t.paging, err, sizeof(err)) < 0) {
        fprintf(stderr, "paging config: %s\n", err);
        return -1;
    }
    if (pg_fixture_start(&t.pg, "/tmp/vigil-hours-XXXXXX") < 0)
        return -1;
    t.escalate = escalate_new(&t.paging, store_conninfo(t.pg.store));
    return t.escalate ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    escalate_destroy(&t.escalate);
    pg_fixture_stop(&t.pg);
    paging_config_free(&t.paging);
    if (t.work[0])
        pg_fixture_rmtree(t.work);
    return 0;
}

int main(void)
{
    vg_log_init("test_business_hours", VG_LOG_ERROR, false);
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_night_waits_for_the_morning),
        cmocka_unit_test(test_friday_evening_waits_for_monday),
        cmocka_unit_test(test_holiday_is_skipped),
        cmocka_unit_test(test_daylight_saving_changes),
        cmocka_unit_test(test_refused_input),
    };
    const struct CMUnitTest engine[] = {
        cmocka_unit_test(test_sev3_at_night_pages_at_the_window_start),
        cmocka_unit_test(test_sev4_files_one_ticket),
    };
    int failed = cmocka_run_group_tests_name("hours", pure, NULL, NULL);
    return failed + cmocka_run_group_tests_name("engine", engine, group_setup, group_teardown);
}
