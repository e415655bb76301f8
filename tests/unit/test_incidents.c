/*
 * Incidents against a real PostgreSQL: the private cluster embedded.c starts under a temporary
 * state directory (as test_store does). Each test works on a fingerprint of its own.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "incidents.h"
#include "log.h"
#include "pg_fixture.h"
#include "store.h"

#define MINUTE_MS (INT64_C(60) * 1000)
#define HOUR_MS (60 * MINUTE_MS)
/* 2026-11-27 15:00:00 UTC, a Friday. */
#define FRIDAY_15H_MS INT64_C(1795791600000)
#define T0 FRIDAY_15H_MS
#define REOPEN_WINDOW_MS (10 * MINUTE_MS)

static struct {
    struct pg_fixture pg; /* the private cluster and the test's own connection */
    store_incidents_t *inc;
    PGconn *check; /* = pg.check */
} t;

/* ---- helpers ---- */

static long long query_int(const char *sql, const char *param)
{
    const char *params[] = {param};
    PGresult *res = PQexecParams(t.check, sql, param ? 1 : 0, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res));
        PQclear(res);
        fail_msg("query %s: %s", sql, msg);
    }
    long long v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return v;
}

static struct incident_symptom symptom(const char *fingerprint, int severity,
                                       enum incident_symptom_state state, int64_t at_ms)
{
    static const char *const nodes[] = {"web-1", "web-2"};
    struct incident_symptom s = {
        .fingerprint = fingerprint,
        .runbook = "application-down",
        .title = "Application down",
        .severity = severity,
        .state = state,
        .reason = "http.up == 0 for 1m",
        .nodes = nodes,
        .n_nodes = 2,
        .nodes_firing = 2,
        .nodes_total = 3,
        .at_ms = at_ms,
        .reopen_window_ms = REOPEN_WINDOW_MS,
    };
    return s;
}

static struct incident_result feed(const char *fingerprint, int severity,
                                   enum incident_symptom_state state, int64_t at_ms)
{
    struct incident_symptom s = symptom(fingerprint, severity, state, at_ms);
    struct incident_result res;
    memset(&res, 0xa5, sizeof(res));
    assert_int_equal(incidents_on_symptom(t.inc, &s, &res), 0);
    return res;
}

struct timeline {
    char kinds[512]; /* "opened,symptom,..." */
    char last_actor[64], last_text[256];
    int64_t prev_at;
    bool in_order;
};

static int add_event(const struct store_incident_event *ev, void *userdata)
{
    struct timeline *tl = userdata;
    size_t len = strlen(tl->kinds);
    snprintf(tl->kinds + len, sizeof(tl->kinds) - len, "%s%s", len ? "," : "",
             incident_event_kind_name(ev->kind));
    snprintf(tl->last_actor, sizeof(tl->last_actor), "%s", ev->actor);
    snprintf(tl->last_text, sizeof(tl->last_text), "%s", ev->text);
    if (ev->at_ms < tl->prev_at)
        tl->in_order = false;
    tl->prev_at = ev->at_ms;
    return 0;
}

static void show(uint64_t id, struct store_incident *inc, struct timeline *tl)
{
    memset(tl, 0, sizeof(*tl));
    tl->in_order = true;
    assert_int_equal(incidents_show(t.inc, id, inc, add_event, tl), 0);
    assert_true(tl->in_order);
}

/* ---- tests ---- */

static void test_response_due_by_severity(void **state)
{
    (void)state;
    assert_int_equal(incidents_response_due(1, T0), T0 + 15 * MINUTE_MS);
    assert_int_equal(incidents_response_due(2, T0), T0 + HOUR_MS);
    assert_int_equal(incidents_response_due(3, T0), T0 + 4 * HOUR_MS);
    /* Friday afternoon: the next business day is Monday, 09:00 UTC. */
    assert_int_equal(incidents_response_due(4, T0), T0 + 66 * HOUR_MS);
    /* Monday 09:00 -> Tuesday 09:00. */
    assert_int_equal(incidents_response_due(4, T0 + 66 * HOUR_MS), T0 + 90 * HOUR_MS);
    assert_string_equal(incidents_severity_name(1), "SEV1");
    assert_string_equal(incidents_severity_name(4), "SEV4");
}

static void test_critical_opens_then_joins(void **state)
{
    (void)state;
    struct store_incident inc;
    struct timeline tl;

    struct incident_result first = feed("application-down:web", 2, INCIDENT_SYMPTOM_CRITICAL, T0);
    assert_int_equal(first.outcome, INCIDENT_OPENED);
    assert_true(first.id > 0);
    show(first.id, &inc, &tl);
    assert_int_equal(inc.severity, 2);
    assert_int_equal(inc.state, INCIDENT_STATE_DETECTED);
    assert_string_equal(inc.runbook, "application-down");
    assert_string_equal(inc.title, "Application down");
    assert_int_equal(inc.opened_at_ms, T0);
    assert_int_equal(inc.response_due_ms, T0 + HOUR_MS);
    assert_string_equal(inc.scope_json, "[\"web-1\", \"web-2\"]");
    assert_string_equal(tl.kinds, "opened");

    struct incident_result again =
        feed("application-down:web", 2, INCIDENT_SYMPTOM_CRITICAL, T0 + 1000);
    assert_int_equal(again.outcome, INCIDENT_UPDATED);
    assert_int_equal(again.id, first.id);
    assert_false(again.severity_raised);
    assert_int_equal(
        query_int("SELECT count(*) FROM incidents WHERE fingerprint = $1", "application-down:web"),
        1);
    show(first.id, &inc, &tl);
    assert_string_equal(tl.kinds, "opened,symptom");
    assert_int_equal(inc.response_due_ms, T0 + HOUR_MS);
}

static void test_severity_rises_never_falls(void **state)
{
    (void)state;
    struct store_incident inc;
    struct timeline tl;

    uint64_t id = feed("db:orders", 2, INCIDENT_SYMPTOM_CRITICAL, T0).id;
    struct incident_result up = feed("db:orders", 1, INCIDENT_SYMPTOM_CRITICAL, T0 + MINUTE_MS);
    assert_int_equal(up.id, id);
    assert_true(up.severity_raised);
    assert_int_equal(up.severity, 1);
    show(id, &inc, &tl);
    assert_int_equal(inc.severity, 1);
    /* 15 minutes from the rise, earlier than the SEV2 hour. */
    assert_int_equal(inc.response_due_ms, T0 + 16 * MINUTE_MS);
    assert_string_equal(tl.kinds, "opened,symptom,severity");
    assert_non_null(strstr(tl.last_text, "SEV2 -> SEV1"));
    assert_string_equal(tl.last_actor, "vigil");

    /* A milder symptom, even a warning, joins without lowering anything. */
    struct incident_result down =
        feed("db:orders", 3, INCIDENT_SYMPTOM_CRITICAL, T0 + 2 * MINUTE_MS);
    assert_false(down.severity_raised);
    assert_int_equal(down.severity, 1);
    feed("db:orders", 4, INCIDENT_SYMPTOM_WARNING, T0 + 3 * MINUTE_MS);
    show(id, &inc, &tl);
    assert_int_equal(inc.severity, 1);
    assert_int_equal(inc.response_due_ms, T0 + 16 * MINUTE_MS);
    assert_string_equal(tl.kinds, "opened,symptom,severity,symptom,symptom");
}

static void test_warning_or_clear_alone_opens_nothing(void **state)
{
    (void)state;
    struct incident_result w = feed("disk:quiet", 3, INCIDENT_SYMPTOM_WARNING, T0);
    assert_int_equal(w.outcome, INCIDENT_UNCHANGED);
    assert_int_equal(w.id, 0);
    struct incident_result ok = feed("disk:quiet", 3, INCIDENT_SYMPTOM_OK, T0);
    assert_int_equal(ok.outcome, INCIDENT_UNCHANGED);
    assert_int_equal(
        query_int("SELECT count(*) FROM incidents WHERE fingerprint = $1", "disk:quiet"), 0);
}

static void test_ack_and_resolve(void **state)
{
    (void)state;
    struct store_incident inc;
    struct timeline tl;
    uint64_t id = feed("cache:redis", 3, INCIDENT_SYMPTOM_CRITICAL, T0).id;

    assert_int_equal(incidents_resolve(t.inc, id, "alice", "", T0 + 1000), -EINVAL);
    assert_int_equal(incidents_ack(t.inc, id, "alice", "looking at it", T0 + 2000), 0);
    assert_int_equal(incidents_ack(t.inc, id, "bob", NULL, T0 + 2500), -EALREADY);
    show(id, &inc, &tl);
    assert_int_equal(inc.state, INCIDENT_STATE_ACKNOWLEDGED);
    assert_int_equal(inc.acknowledged_at_ms, T0 + 2000);
    assert_string_equal(tl.last_actor, "alice");
    assert_string_equal(tl.last_text, "looking at it");

    assert_int_equal(incidents_resolve(t.inc, id, "bob", "restarted redis", T0 + 3000), 0);
    assert_int_equal(incidents_resolve(t.inc, id, "bob", "again", T0 + 4000), -EALREADY);
    assert_int_equal(incidents_ack(t.inc, id, "bob", NULL, T0 + 4000), -EBUSY);
    show(id, &inc, &tl);
    assert_int_equal(inc.state, INCIDENT_STATE_RESOLVED);
    assert_int_equal(inc.resolved_at_ms, T0 + 3000);
    assert_string_equal(tl.kinds, "opened,acknowledged,resolved");
    assert_string_equal(tl.last_actor, "bob");
    assert_string_equal(tl.last_text, "restarted redis");

    assert_int_equal(incidents_ack(t.inc, 999999, "alice", NULL, T0), -ENOENT);
    assert_int_equal(incidents_resolve(t.inc, 999999, "alice", "x", T0), -ENOENT);
    assert_int_equal(incidents_show(t.inc, 999999, &inc, NULL, NULL), -ENOENT);
}

/* detected -> mitigated -> resolved -> closed by the report; each step once, in order. */
static void test_mitigate_report_close(void **state)
{
    (void)state;
    struct store_incident inc;
    struct timeline tl;
    bool closed = true;
    uint64_t id = feed("queue:rabbit", 3, INCIDENT_SYMPTOM_CRITICAL, T0).id;

    assert_int_equal(incidents_mitigate(t.inc, id, "alice", "", T0 + 1000), -EINVAL);
    assert_int_equal(incidents_report(t.inc, id, "alice", "too early", T0 + 1000, &closed),
                     -EBUSY); /* still open */
    assert_int_equal(incidents_mitigate(t.inc, id, "alice", "traffic moved away", T0 + 2000), 0);
    assert_int_equal(incidents_mitigate(t.inc, id, "alice", "again", T0 + 2100), -EALREADY);
    assert_int_equal(incidents_ack(t.inc, id, "bob", NULL, T0 + 2200), -EBUSY);
    show(id, &inc, &tl);
    assert_int_equal(inc.state, INCIDENT_STATE_MITIGATED);

    /* A draft before any report: the template, filled from the timeline. */
    char *body = NULL;
    bool draft = false;
    assert_int_equal(incidents_resolve(t.inc, id, "bob", "queue drained", T0 + 3000), 0);
    assert_int_equal(incidents_mitigate(t.inc, id, "alice", "late", T0 + 3100), -EBUSY);
    assert_int_equal(incidents_report_text(t.inc, id, &body, &draft), 0);
    assert_true(draft);
    assert_non_null(strstr(body, "## Summary"));
    assert_non_null(strstr(body, "mitigated (alice): traffic moved away"));
    assert_non_null(strstr(body, "resolved (bob): queue drained"));
    assert_non_null(strstr(body, "- Duration: 1 min"));
    /* The template's milestones, from the timeline; what nothing recorded stays for people. */
    assert_non_null(strstr(body, " - Incident detected ("));
    assert_non_null(strstr(body, "- [TIME] - Investigation started\n"));
    assert_non_null(strstr(body, "- [TIME] - Root cause identified\n"));
    assert_non_null(strstr(body, " - Resolution implemented (mitigated by alice: traffic moved "
                                 "away)\n"));
    assert_non_null(strstr(body, " - Incident resolved (resolved by bob: queue drained)\n"));
    assert_non_null(strstr(body, "## Root Cause\n[Detailed explanation of what caused the "
                                 "incident]\n"));
    assert_non_null(strstr(body, "- Not acknowledged by a person\n- Resolved 3s after detection\n"
                                 "- Commands: 0 succeeded, 0 failed or refused, 0 without an "
                                 "outcome\n- Evidence: 0 artifact(s) in the vault, 0 not "
                                 "collected\n"));
    assert_non_null(strstr(body, "\n## Follow-up Actions\n- [ ] Action item 1\n"));
    free(body);

    assert_int_equal(incidents_report(t.inc, id, "bob", "", T0 + 4000, &closed), -EINVAL);
    assert_int_equal(
        incidents_report(t.inc, id, "bob", "# Incident Report\nv1", T0 + 4000, &closed), 0);
    assert_true(closed);
    assert_int_equal(
        incidents_report(t.inc, id, "carol", "# Incident Report\nv2", T0 + 5000, &closed), 0);
    assert_false(closed);
    assert_int_equal(incidents_resolve(t.inc, id, "bob", "again", T0 + 6000), -EALREADY);
    show(id, &inc, &tl);
    assert_int_equal(inc.state, INCIDENT_STATE_CLOSED);
    assert_string_equal(tl.kinds, "opened,mitigated,resolved,closed,report");
    assert_int_equal(incidents_report_text(t.inc, id, &body, &draft), 0);
    assert_false(draft);
    assert_string_equal(body, "# Incident Report\nv2");
    free(body);
    char idtext[24];
    snprintf(idtext, sizeof(idtext), "%" PRIu64, id);
    assert_int_equal(
        query_int("SELECT count(*) FROM incident_reports WHERE incident_id = $1", idtext),
        2); /* both versions kept */
    assert_int_equal(incidents_report(t.inc, 999999, "bob", "x", T0, &closed), -ENOENT);
}

/* What the rule engine would answer, per runbook: verified or not. */
static int fake_verified(void *userdata, const char *runbook, const char *node, int64_t now_ms,
                         char *why, size_t whylen)
{
    (void)userdata;
    (void)now_ms;
    if (strcmp(runbook, "disk-full") == 0 && strcmp(node, "web-9") == 0) {
        snprintf(why, whylen, "disk.used_pct below 80 on all nodes for 300s");
        return 1;
    }
    snprintf(why, whylen, "waiting");
    return 0;
}

static void test_auto_resolve(void **state)
{
    (void)state;
    struct store_incident inc;
    struct timeline tl;
    char fp[64];

    assert_int_equal(incidents_fingerprint("disk-full", "web-9", fp, sizeof(fp)), 0);
    assert_string_equal(fp, "disk-full/web-9");
    assert_string_equal(incidents_fingerprint_node(fp), "web-9");
    assert_int_equal(incidents_fingerprint("x", "", fp, 2), -ENAMETOOLONG);
    assert_null(incidents_fingerprint_node("no-slash"));

    struct incident_symptom s = symptom("disk-full/web-9", 3, INCIDENT_SYMPTOM_CRITICAL, T0);
    s.runbook = "disk-full";
    struct incident_result res;
    assert_int_equal(incidents_on_symptom(t.inc, &s, &res), 0);
    uint64_t verified = res.id;
    s.fingerprint = "disk-full/web-8";
    assert_int_equal(incidents_on_symptom(t.inc, &s, &res), 0);
    uint64_t waiting = res.id;

    assert_int_equal(incidents_auto_resolve(t.inc, fake_verified, NULL, T0 + 60000), 1);
    show(verified, &inc, &tl);
    assert_int_equal(inc.state, INCIDENT_STATE_RESOLVED);
    assert_string_equal(tl.last_actor, "vigil");
    assert_string_equal(tl.last_text, "verified: disk.used_pct below 80 on all nodes for 300s");
    show(waiting, &inc, &tl);
    assert_int_equal(inc.state, INCIDENT_STATE_DETECTED);
    /* Nothing more to resolve: a second pass changes nothing. */
    assert_int_equal(incidents_auto_resolve(t.inc, fake_verified, NULL, T0 + 61000), 0);
    assert_int_equal(incidents_resolve(t.inc, waiting, "alice", "done", T0 + 62000), 0);
}

/* Every incident's timeline from a position on, in order: what `vigilctl tail` reads. */
static int count_after(const struct store_incident_event *ev, void *userdata)
{
    uint64_t *last = userdata;
    assert_true(ev->id > *last);
    assert_true(ev->incident_id > 0);
    *last = ev->id;
    return 0;
}

static void test_events_after(void **state)
{
    (void)state;
    uint64_t start = 0, last;
    assert_int_equal(store_incident_events_last(t.inc, &start), 0);
    uint64_t id = feed("tail:one", 3, INCIDENT_SYMPTOM_CRITICAL, T0).id;
    assert_int_equal(incidents_ack(t.inc, id, "alice", NULL, T0 + 1000), 0);
    last = start;
    assert_int_equal(store_incident_events_after(t.inc, start, 100, count_after, &last), 0);
    uint64_t end = 0;
    assert_int_equal(store_incident_events_last(t.inc, &end), 0);
    assert_int_equal(last, end);
    assert_int_equal(end - start, 2); /* opened, acknowledged */
    last = start;
    assert_int_equal(store_incident_events_after(t.inc, start, 1, count_after, &last), 0);
    assert_int_equal(last, start + 1); /* the limit holds */
}

static void test_reopen_within_window_new_after(void **state)
{
    (void)state;
    struct store_incident inc;
    struct timeline tl;
    uint64_t id = feed("net:lb", 2, INCIDENT_SYMPTOM_CRITICAL, T0).id;
    assert_int_equal(incidents_resolve(t.inc, id, "alice", "flapped", T0 + MINUTE_MS), 0);

    /* A clear after the resolve changes nothing. */
    assert_int_equal(feed("net:lb", 2, INCIDENT_SYMPTOM_OK, T0 + 2 * MINUTE_MS).outcome,
                     INCIDENT_UNCHANGED);

    int64_t back = T0 + MINUTE_MS + REOPEN_WINDOW_MS - 1000;
    struct incident_result re = feed("net:lb", 2, INCIDENT_SYMPTOM_CRITICAL, back);
    assert_int_equal(re.outcome, INCIDENT_REOPENED);
    assert_int_equal(re.id, id);
    show(id, &inc, &tl);
    assert_int_equal(inc.state, INCIDENT_STATE_DETECTED);
    assert_int_equal(inc.resolved_at_ms, 0);
    assert_int_equal(inc.response_due_ms, back + HOUR_MS);
    assert_string_equal(tl.kinds, "opened,resolved,reopened,symptom");

    int64_t resolved = back + MINUTE_MS;
    assert_int_equal(incidents_resolve(t.inc, id, "alice", "really fixed", resolved), 0);
    struct incident_result fresh =
        feed("net:lb", 2, INCIDENT_SYMPTOM_CRITICAL, resolved + REOPEN_WINDOW_MS + 1000);
    assert_int_equal(fresh.outcome, INCIDENT_OPENED);
    assert_true(fresh.id != id);
    show(id, &inc, &tl);
    assert_int_equal(inc.state, INCIDENT_STATE_RESOLVED);
    assert_int_equal(query_int("SELECT count(*) FROM incidents WHERE fingerprint = $1", "net:lb"),
                     2);
}

static void test_invalid_symptoms_refused(void **state)
{
    (void)state;
    struct incident_result res = {0};
    struct incident_symptom s = symptom("bad:sev", 0, INCIDENT_SYMPTOM_CRITICAL, T0);
    assert_int_equal(incidents_on_symptom(t.inc, &s, &res), -EINVAL);
    s = symptom("", 2, INCIDENT_SYMPTOM_CRITICAL, T0);
    assert_int_equal(incidents_on_symptom(t.inc, &s, &res), -EINVAL);
    char long_fp[STORE_INCIDENT_FINGERPRINT_MAX + 8];
    memset(long_fp, 'f', sizeof(long_fp) - 1);
    long_fp[sizeof(long_fp) - 1] = '\0';
    s = symptom(long_fp, 2, INCIDENT_SYMPTOM_CRITICAL, T0);
    assert_int_equal(incidents_on_symptom(t.inc, &s, &res), -EINVAL);
    assert_int_equal(
        query_int("SELECT count(*) FROM incidents WHERE fingerprint IN ('bad:sev', '')", NULL), 0);
}

static void test_timeline_is_append_only(void **state)
{
    (void)state;
    feed("append:only", 2, INCIDENT_SYMPTOM_CRITICAL, T0);
    long long events = query_int("SELECT count(*) FROM incident_events", NULL);
    assert_true(events > 0);
    const char *refused[] = {
        "UPDATE incident_events SET text = 'rewritten'",
        "DELETE FROM incident_events",
        "TRUNCATE incident_events CASCADE",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        PGresult *res = PQexec(t.check, refused[i]);
        assert_int_equal(PQresultStatus(res), PGRES_FATAL_ERROR);
        if (!strstr(PQresultErrorMessage(res), "append-only"))
            fail_msg("%s: %s", refused[i], PQresultErrorMessage(res));
        PQclear(res);
    }
    assert_int_equal(query_int("SELECT count(*) FROM incident_events", NULL), events);
}

struct list_walk {
    uint64_t open_id, done_id, prev;
    long long n;
    bool saw_open, saw_done, newest_first;
};

static int list_cb(const struct store_incident *inc, void *userdata)
{
    struct list_walk *w = userdata;
    w->n++;
    w->saw_open |= inc->id == w->open_id;
    w->saw_done |= inc->id == w->done_id;
    if (inc->id >= w->prev)
        w->newest_first = false;
    w->prev = inc->id;
    return 0;
}

static void test_list_open_and_all(void **state)
{
    (void)state;
    uint64_t open_id = feed("list:open", 2, INCIDENT_SYMPTOM_CRITICAL, T0).id;
    uint64_t done_id = feed("list:done", 3, INCIDENT_SYMPTOM_CRITICAL, T0).id;
    assert_int_equal(incidents_resolve(t.inc, done_id, "alice", "done", T0 + 1000), 0);
    long long open_n =
        query_int("SELECT count(*) FROM incidents WHERE state NOT IN ('resolved', 'closed')", NULL);
    long long all_n = query_int("SELECT count(*) FROM incidents", NULL);

    for (int open_only = 1; open_only >= 0; open_only--) {
        struct list_walk w = {
            .open_id = open_id, .done_id = done_id, .prev = UINT64_MAX, .newest_first = true};
        assert_int_equal(incidents_list(t.inc, open_only, 0, 1000, list_cb, &w), 0);
        assert_int_equal(w.n, open_only ? open_n : all_n);
        assert_true(w.saw_open);
        assert_int_equal(w.saw_done, !open_only);
        assert_true(w.newest_first);
    }
}

/* A statement on the check connection (the cluster's superuser); false when it failed. */
static bool sql_ok(const char *sql)
{
    PGresult *res = PQexec(t.check, sql);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
    PQclear(res);
    return ok;
}

/* The error of a statement that must fail, for its message. */
static void expect_refused(const char *sql, const char *why)
{
    PGresult *res = PQexec(t.check, sql);
    assert_int_equal(PQresultStatus(res), PGRES_FATAL_ERROR);
    if (!strstr(PQresultErrorMessage(res), why))
        fail_msg("%s: %s", sql, PQresultErrorMessage(res));
    PQclear(res);
}

/* Incidents where the row differs from its last incident_states row, or whose rows are not
 * numbered 1..n: none, ever. */
static long long projection_mismatches(void)
{
    return query_int(
        "SELECT count(*) FROM incidents i"
        " LEFT JOIN LATERAL (SELECT * FROM incident_states s WHERE s.incident_id = i.id"
        "                    ORDER BY s.n DESC LIMIT 1) s ON true"
        " WHERE s.n IS NULL OR s.n <> (SELECT count(*) FROM incident_states c"
        "                               WHERE c.incident_id = i.id)"
        "  OR (i.severity, i.state, i.title, i.scope, i.response_due, i.acknowledged_at,"
        "      i.resolved_at, i.updated_at) IS DISTINCT FROM (s.severity, s.state, s.title,"
        "      s.scope, s.response_due, s.acknowledged_at, s.resolved_at, s.updated_at)",
        NULL);
}

/* An incident's changes are incident_states rows (028): the coordinator's role changes one
 * through the store and by appending a row, never by UPDATE or DELETE of incidents, which are
 * refused to everyone; the incidents row is its last state row. */
static void test_state_needs_no_update(void **state)
{
    (void)state;
    char sql[512], id[24];
    struct store_incident inc;
    struct timeline tl;
    uint64_t incident = feed("states:rows", 3, INCIDENT_SYMPTOM_CRITICAL, T0).id;
    snprintf(id, sizeof(id), "%" PRIu64, incident);
    assert_non_null(strstr(store_conninfo(t.pg.store), "user=vigil_coordinator"));
    assert_int_equal(
        query_int("SELECT count(*) FROM incident_states WHERE incident_id = $1::bigint", id), 1);

    /* Through the store, on the coordinator's own login. */
    assert_int_equal(incidents_ack(t.inc, incident, "alice", "on it", T0 + 1000), 0);
    assert_int_equal(
        query_int("SELECT max(n) FROM incident_states WHERE incident_id = $1::bigint", id), 2);
    assert_int_equal(query_int("SELECT count(*) FROM incident_states WHERE incident_id = $1::bigint"
                               " AND state = 'acknowledged' AND n = 2",
                               id),
                     1);

    /* A missing incident: -ENOENT, and the transaction goes on. */
    assert_int_equal(store_incidents_begin(t.inc), 0);
    assert_int_equal(store_incident_get(t.inc, incident, true, &inc), 0);
    /* Its writer holds the incident's lock until the transaction ends. */
    assert_int_equal(query_int("SELECT pg_try_advisory_xact_lock(7623193, $1::integer)::int", id),
                     0);
    inc.id = 999999;
    assert_int_equal(store_incident_update(t.inc, &inc), -ENOENT);
    assert_int_equal(store_incident_get(t.inc, incident, false, &inc), 0);
    store_incidents_rollback(t.inc);
    assert_int_equal(query_int("SELECT pg_try_advisory_xact_lock(7623193, $1::integer)::int", id),
                     1);

    /* As the coordinator's role, by hand. */
    assert_true(sql_ok("BEGIN"));
    assert_true(sql_ok("SET LOCAL ROLE vigil_coordinator"));
    assert_int_equal(query_int("SELECT has_table_privilege('incidents', 'UPDATE')::int", NULL), 0);
    assert_true(sql_ok("SAVEPOINT s"));
    snprintf(sql, sizeof(sql), "UPDATE incidents SET title = 'rewritten' WHERE id = %s", id);
    expect_refused(sql, "permission denied");
    assert_true(sql_ok("ROLLBACK TO SAVEPOINT s"));
    snprintf(sql, sizeof(sql), "DELETE FROM incidents WHERE id = %s", id);
    expect_refused(sql, "permission denied");
    assert_true(sql_ok("ROLLBACK TO SAVEPOINT s"));
    snprintf(sql, sizeof(sql),
             "INSERT INTO incident_states (incident_id, severity, state, title, scope,"
             " response_due, acknowledged_at, resolved_at, updated_at)"
             " SELECT id, severity, 'resolved', title, scope, response_due, acknowledged_at,"
             " now(), now() FROM incidents WHERE id = %s",
             id);
    assert_true(sql_ok(sql));
    assert_true(sql_ok("COMMIT"));
    show(incident, &inc, &tl);
    assert_int_equal(inc.state, INCIDENT_STATE_RESOLVED);
    assert_int_equal(inc.acknowledged_at_ms, T0 + 1000);
    assert_int_equal(
        query_int("SELECT max(n) FROM incident_states WHERE incident_id = $1::bigint", id), 3);

    /* Not even the owner or a superuser changes the projection, or the rows, in place. */
    snprintf(sql, sizeof(sql), "UPDATE incidents SET state = 'closed' WHERE id = %s", id);
    expect_refused(sql, "incidents follows incident_states");
    snprintf(sql, sizeof(sql), "DELETE FROM incidents WHERE id = %s", id);
    expect_refused(sql, "incidents follows incident_states");
    expect_refused("TRUNCATE incidents CASCADE", "refused");
    expect_refused("UPDATE incident_states SET title = 'x'", "append-only");
    expect_refused("DELETE FROM incident_states", "append-only");
    expect_refused("TRUNCATE incident_states", "append-only");
    show(incident, &inc, &tl);
    assert_int_equal(inc.state, INCIDENT_STATE_RESOLVED);
    assert_int_equal(
        query_int("SELECT count(*) FROM incident_states WHERE incident_id = $1::bigint", id), 3);

    /* Every incident so far, opened by the store or by hand, has its complete history. */
    assert_true(sql_ok("INSERT INTO incidents (fingerprint, runbook, title, severity, state,"
                       " opened_at, response_due, updated_at)"
                       " VALUES ('states:by-hand', 'x', 'x', 4, 'detected', now(), now(), now())"));
    assert_int_equal(projection_mismatches(), 0);
}

/* ---- group ---- */

static int group_setup(void **state)
{
    (void)state;
    if (pg_fixture_start(&t.pg, "/tmp/vigil-incidents-XXXXXX") < 0)
        return -1;
    t.check = t.pg.check;
    t.inc = store_incidents_new(store_conninfo(t.pg.store));
    return t.inc ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    store_incidents_destroy(&t.inc);
    pg_fixture_stop(&t.pg);
    t.check = NULL;
    return 0;
}

/* Root cause first: with the database incident open, the application's symptom (its runbook
 * depends on database-issues) is recorded on it instead of opening an incident of its own;
 * without one open, it opens normally. */
static void test_dependent_symptom_attaches_to_root(void **state)
{
    (void)state;
    static const char *const depends[] = {"database-issues"};
    struct store_incident inc;
    struct timeline tl;
    struct incident_result res;

    struct incident_symptom db =
        symptom("database-issues/pg-down/", 2, INCIDENT_SYMPTOM_CRITICAL, T0 + 7 * HOUR_MS);
    db.runbook = "database-issues";
    db.title = "Database issues";
    assert_int_equal(incidents_on_symptom(t.inc, &db, &res), 0);
    assert_int_equal(res.outcome, INCIDENT_OPENED);
    uint64_t root = res.id;

    struct incident_symptom app =
        symptom("application-down/errors/", 2, INCIDENT_SYMPTOM_CRITICAL, T0 + 7 * HOUR_MS + 1000);
    app.symptom = "errors";
    app.depends_on = depends;
    app.n_depends = 1;
    assert_int_equal(incidents_on_symptom(t.inc, &app, &res), 0);
    assert_int_equal(res.outcome, INCIDENT_ATTACHED);
    assert_int_equal(res.id, root);
    assert_int_equal(query_int("SELECT count(*) FROM incidents WHERE fingerprint = $1",
                               "application-down/errors/"),
                     0);
    show(root, &inc, &tl);
    assert_string_equal(tl.kinds, "opened,attached");
    assert_string_equal(tl.last_text,
                        "Application down (runbook application-down) http.up == 0 for 1m");

    /* An application incident resolved a moment ago does not reopen while the database is
     * down again: the symptom attaches to the new root incident. */
    assert_int_equal(
        incidents_resolve(t.inc, root, "alice", "database restarted", T0 + 7 * HOUR_MS + 1500), 0);
    struct incident_symptom app2 =
        symptom("application-down/errors/", 2, INCIDENT_SYMPTOM_CRITICAL, T0 + 7 * HOUR_MS + 1600);
    assert_int_equal(incidents_on_symptom(t.inc, &app2, &res), 0); /* no depends_on: opens */
    assert_int_equal(res.outcome, INCIDENT_OPENED);
    uint64_t own = res.id;
    assert_int_equal(incidents_resolve(t.inc, own, "alice", "fixed", T0 + 7 * HOUR_MS + 1700), 0);
    db.at_ms = T0 + 7 * HOUR_MS + 1800;
    assert_int_equal(incidents_on_symptom(t.inc, &db, &res), 0);
    assert_int_equal(res.outcome, INCIDENT_REOPENED);
    root = res.id;
    app.at_ms = T0 + 7 * HOUR_MS + 1900;
    assert_int_equal(incidents_on_symptom(t.inc, &app, &res), 0);
    assert_int_equal(res.outcome, INCIDENT_ATTACHED);
    assert_int_equal(res.id, root);

    /* The root resolved: the same symptom now reopens its own recent incident. */
    assert_int_equal(
        incidents_resolve(t.inc, root, "alice", "database restarted", T0 + 7 * HOUR_MS + 2000), 0);
    app.at_ms = T0 + 7 * HOUR_MS + 3000;
    assert_int_equal(incidents_on_symptom(t.inc, &app, &res), 0);
    assert_int_equal(res.outcome, INCIDENT_REOPENED);
    assert_int_equal(res.id, own);
}

/* ---- issue 18: opened, steered and spoken for by hand ---- */

static int always_verified(void *userdata, const char *runbook, const char *node, int64_t now_ms,
                           char *why, size_t whylen)
{
    (void)userdata, (void)runbook, (void)node, (void)now_ms;
    snprintf(why, whylen, "everything holds");
    return 1;
}

static int64_t fixed_next_due(void *userdata, int level, int64_t started_at_ms, int repeats,
                              int64_t now_ms)
{
    (void)userdata, (void)level, (void)repeats, (void)now_ms;
    return started_at_ms + 2000; /* the new policy's next level, long past */
}

static int count_status_row(const struct store_status_row *row, void *userdata)
{
    int *n = userdata;
    assert_string_equal(row->body, "We are on it.");
    assert_string_equal(row->title, "Checkout errors");
    assert_int_equal(row->update_state, INCIDENT_STATE_DETECTED);
    (*n)++;
    return 0;
}

static void test_steered_by_hand(void **state)
{
    (void)state;
    struct store_incident inc;
    struct timeline tl;
    uint64_t id = 0;
    struct incident_manual m = {.runbook = "checkout-down",
                                .severity = 2,
                                .title = "Checkout errors",
                                .node = "web-1",
                                .actor = "alice"};

    /* Opened by hand: detected, its severity's deadline, the node in its scope. */
    assert_int_equal(incidents_open_manual(t.inc, &m, T0, &id), 0);
    show(id, &inc, &tl);
    assert_int_equal(inc.state, INCIDENT_STATE_DETECTED);
    assert_int_equal(inc.response_due_ms, T0 + HOUR_MS);
    assert_string_equal(inc.scope_json, "[\"web-1\"]");
    assert_null(strchr(inc.fingerprint, '/'));
    assert_string_equal(tl.kinds, "opened");
    assert_string_equal(tl.last_actor, "alice");
    /* A symptom of the same runbook and node opens its own incident; verification never
     * resolves one opened by hand. */
    struct incident_result res = feed("checkout-down/web-1", 2, INCIDENT_SYMPTOM_CRITICAL, T0);
    assert_int_equal(res.outcome, INCIDENT_OPENED);
    assert_true(res.id != id);
    assert_true(incidents_auto_resolve(t.inc, always_verified, NULL, T0 + 1000) >= 1);
    show(id, &inc, &tl);
    assert_int_equal(inc.state, INCIDENT_STATE_DETECTED);
    m.title = "";
    assert_int_equal(incidents_open_manual(t.inc, &m, T0, &id), -EINVAL);
    m.title = "Checkout errors";
    m.node = "a/b";
    assert_int_equal(incidents_open_manual(t.inc, &m, T0, &id), -EINVAL);

    /* An escalation already under way along the SEV2 route's policy. */
    struct store_escalation esc = {.incident_id = id,
                                   .level = 0,
                                   .started_at_ms = T0,
                                   .next_level_at_ms = T0 + HOUR_MS,
                                   .next_update_at_ms = T0 + 30 * MINUTE_MS,
                                   .deadline_at_ms = T0 + HOUR_MS};
    snprintf(esc.policy, sizeof(esc.policy), "slow");
    assert_int_equal(store_escalation_put(t.inc, &esc), 0);

    /* Down: the deadline is the new severity's from the opening. */
    struct incident_policy_change to_slow = {.from = "fast", .to = "slow"};
    int previous = 0;
    assert_int_equal(incidents_set_severity(t.inc, id, 3, "alice", "some users only", &to_slow,
                                            T0 + 10 * MINUTE_MS, &previous),
                     0);
    assert_int_equal(previous, 2);
    show(id, &inc, &tl);
    assert_int_equal(inc.severity, 3);
    assert_int_equal(inc.response_due_ms, T0 + 4 * HOUR_MS);
    assert_string_equal(tl.last_text, "SEV2 -> SEV3 by hand: some users only");
    assert_int_equal(store_escalation_get(t.inc, id, false, &esc), 0);
    assert_string_equal(esc.policy, "slow"); /* it ran "slow", not the old route "fast" */
    assert_int_equal(esc.deadline_at_ms, T0 + 4 * HOUR_MS);
    assert_int_equal(incidents_set_severity(t.inc, id, 3, "alice", "again", NULL, T0, NULL),
                     -EALREADY);
    assert_int_equal(incidents_set_severity(t.inc, id, 1, "alice", "", NULL, T0, NULL), -EINVAL);

    /* Up: the sooner deadline, the new route's policy and its next level. */
    struct incident_policy_change to_fast = {
        .from = "slow", .to = "fast", .next_due = fixed_next_due};
    assert_int_equal(incidents_set_severity(t.inc, id, 1, "bob", "all checkouts fail", &to_fast,
                                            T0 + 20 * MINUTE_MS, NULL),
                     0);
    show(id, &inc, &tl);
    assert_int_equal(inc.response_due_ms, T0 + 35 * MINUTE_MS);
    assert_string_equal(tl.kinds, "opened,severity,severity");
    assert_int_equal(store_escalation_get(t.inc, id, false, &esc), 0);
    assert_string_equal(esc.policy, "fast");
    assert_int_equal(esc.next_level_at_ms, T0 + 20 * MINUTE_MS); /* past: at once */
    assert_int_equal(esc.deadline_at_ms, T0 + 35 * MINUTE_MS);

    /* A private note. */
    assert_int_equal(incidents_note(t.inc, id, "bob", "eu-west only", T0 + 21 * MINUTE_MS), 0);
    assert_int_equal(incidents_note(t.inc, id, "bob", "", T0), -EINVAL);
    assert_int_equal(incidents_note(t.inc, 999999, "bob", "x", T0), -ENOENT);
    show(id, &inc, &tl);
    assert_string_equal(tl.last_text, "eu-west only");

    /* Updates: only the public one is on the page; the escalation's update timer comes to the
     * update's time so that it is told at once. */
    struct incident_status_update priv = {.text = "digging on web-1",
                                          .title = "",
                                          .components_json = "{}",
                                          .next_update_at_ms = T0 + 22 * MINUTE_MS};
    assert_int_equal(incidents_status_update(t.inc, id, "bob", &priv, T0 + 22 * MINUTE_MS), 0);
    bool published = true;
    assert_int_equal(store_status_published(t.inc, id, &published), 0);
    assert_false(published);
    struct incident_status_update pub = {.text = "We are on it.",
                                         .public = true,
                                         .title = "Checkout errors",
                                         .components_json = "{\"API\": \"partial_outage\"}",
                                         .next_update_at_ms = T0 + 23 * MINUTE_MS};
    assert_int_equal(incidents_status_update(t.inc, id, "bob", &pub, T0 + 23 * MINUTE_MS), 0);
    assert_int_equal(store_status_published(t.inc, id, &published), 0);
    assert_true(published);
    assert_int_equal(store_escalation_get(t.inc, id, false, &esc), 0);
    assert_int_equal(esc.next_update_at_ms, T0 + 22 * MINUTE_MS); /* the earliest untold */
    int rows = 0;
    assert_int_equal(store_status_rows(t.inc, T0 - HOUR_MS, 100, count_status_row, &rows), 0);
    assert_int_equal(rows, 1);
    pub.components_json = "[]";
    assert_int_equal(incidents_status_update(t.inc, id, "bob", &pub, T0), -EINVAL);
    show(id, &inc, &tl);
    assert_string_equal(tl.kinds, "opened,severity,severity,note,status_update,status_update");

    /* Resolved: its severity is settled. */
    assert_int_equal(incidents_resolve(t.inc, id, "bob", "rolled back", T0 + HOUR_MS), 0);
    assert_int_equal(incidents_set_severity(t.inc, id, 2, "bob", "late", NULL, T0, NULL), -EBUSY);
}

int main(void)
{
    vg_log_init("test_incidents", VG_LOG_ERROR, false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_response_due_by_severity),
        cmocka_unit_test(test_critical_opens_then_joins),
        cmocka_unit_test(test_severity_rises_never_falls),
        cmocka_unit_test(test_warning_or_clear_alone_opens_nothing),
        cmocka_unit_test(test_ack_and_resolve),
        cmocka_unit_test(test_mitigate_report_close),
        cmocka_unit_test(test_auto_resolve),
        cmocka_unit_test(test_events_after),
        cmocka_unit_test(test_reopen_within_window_new_after),
        cmocka_unit_test(test_invalid_symptoms_refused),
        cmocka_unit_test(test_timeline_is_append_only),
        cmocka_unit_test(test_list_open_and_all),
        cmocka_unit_test(test_dependent_symptom_attaches_to_root),
        cmocka_unit_test(test_steered_by_hand),
        cmocka_unit_test(test_state_needs_no_update),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
