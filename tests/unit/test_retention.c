/*
 * Retention and legal hold (store_retention.c, 026_retention.sql) against a real PostgreSQL:
 * the private cluster embedded.c starts under a temporary state directory. Passes are run at
 * chosen times (now, or days later), so partitions are made, moved into and dropped
 * deterministically; evidence rows are written straight into the vault's tables (their hashes
 * are placeholders: the chain is verify's business, tested in test_evidence_verify and
 * integration/retention.sh).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "store.h"
#include "store_retention.h"
#include "timeutil.h"

#define DAY_MS (24 * 3600 * INT64_C(1000))

static struct {
    char dir[64];
    store_t *store, *maint;
    PGconn *check;
} t;

static PGconn *connect_check(void)
{
    char conninfo[256];
    snprintf(conninfo, sizeof(conninfo), "host=%s/pgsock port=5432 user=vigil dbname=vigil", t.dir);
    PGconn *conn = PQconnectdb(conninfo);
    if (PQstatus(conn) != CONNECTION_OK)
        fail_msg("check connection: %s", PQerrorMessage(conn));
    return conn;
}

static void exec_ok(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(res));
    PQclear(res);
}

static long long query_int(const char *sql)
{
    PGresult *res = PQexec(t.check, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        fail_msg("%s: %s", sql, PQresultErrorMessage(res));
    long long v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return v;
}

static bool partition_exists(int days_from_today)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM vigil_signals_partitions()"
             " WHERE day = (now() AT TIME ZONE 'UTC')::date + %d",
             days_from_today);
    return query_int(sql) == 1;
}

static struct store_retention_report pass_at(int64_t now_ms, int64_t evidence_ms)
{
    struct store_retention_policy policy = {.signals_ms = 14 * DAY_MS,
                                            .evidence_ms = evidence_ms,
                                            .ahead_days = 2,
                                            .evidence_max = 100};
    struct store_retention_report rep;
    memset(&rep, 0, sizeof(rep));
    assert_int_equal(store_retention_signals(t.maint, &policy, now_ms, &rep), 0);
    assert_int_equal(store_retention_evidence(t.maint, &policy, now_ms, &rep), 0);
    return rep;
}

/* ---- signals ---- */

static void test_partitions_made_moved_and_dropped(void **state)
{
    (void)state;
    int64_t now = vg_wall_ms();
    /* The migration made today's partition and the next two days'. */
    for (int d = 0; d <= 2; d++)
        assert_true(partition_exists(d));
    exec_ok(t.check, "INSERT INTO signals (agent_id, seq, name, value, ts)"
                     " SELECT 'a', g, 'cpu', g, now() FROM generate_series(1, 10) g");
    /* A late sample (no partition for its day), and one from an agent 10 days ahead. */
    exec_ok(t.check, "INSERT INTO signals (agent_id, seq, name, value, ts) VALUES"
                     " ('late', 1, 'cpu', 1, now() - interval '3 days'),"
                     " ('late', 1, 'cpu', 2, now() - interval '3 days' + interval '1 minute'),"
                     " ('late', 1, 'cpu', 3, now() - interval '3 days' + interval '2 minutes'),"
                     " ('skewed', 1, 'cpu', 1, now() + interval '10 days')");
    assert_int_equal(query_int("SELECT count(*) FROM signals_default"), 4);

    struct store_retention_report r = pass_at(now, 0);
    assert_int_equal(r.failures, 0);
    assert_int_equal(r.partitions_created, 1); /* the late day's */
    assert_int_equal(r.default_rows_moved, 3);
    assert_true(partition_exists(-3));
    assert_int_equal(r.partitions_dropped, 0);
    /* The skewed sample waits, counted, with its time. */
    assert_int_equal(r.default_rows_left, 1);
    assert_true(r.default_newest_ms > now + 9 * DAY_MS);
    assert_int_equal(query_int("SELECT count(*) FROM signals WHERE agent_id = 'late'"
                               " AND tableoid::regclass::text LIKE 'signals_p%'"),
                     3);

    /* 15 days later: the late day and today are wholly older than 14 days, tomorrow is not. */
    r = pass_at(now + 15 * DAY_MS, 0);
    assert_int_equal(r.failures, 0);
    assert_int_equal(r.partitions_dropped, 2);
    assert_int_equal(r.signal_rows_dropped, 13);
    assert_true(r.signal_bytes_dropped > 0);
    assert_false(partition_exists(-3));
    assert_false(partition_exists(0));
    assert_true(partition_exists(1));
    assert_int_equal(r.partitions_created, 4); /* 15, 16 and 17 days ahead, and day 10 */
    /* The skewed sample's day (+10) is now within the days kept: it moved into its partition. */
    assert_true(partition_exists(10));
    assert_int_equal(r.default_rows_left, 0);
    assert_int_equal(query_int("SELECT count(*) FROM signals"), 1);
    assert_int_equal(query_int("SELECT count(*) FROM audit_log WHERE action = 'retention.signals'"
                               " AND actor = 'vigil:retention' AND detail LIKE 'dropped the signals"
                               " of % (UTC): rows=10 bytes=%; older than retention.signals (14d)'"),
                     1);

    /* A sample older than retention that arrives late is deleted from the default partition. */
    exec_ok(t.check, "INSERT INTO signals (agent_id, seq, name, value, ts)"
                     " VALUES ('stale', 1, 'cpu', 1, now() - interval '30 days')");
    r = pass_at(now, 0);
    assert_int_equal(r.default_rows_deleted, 1);
    assert_int_equal(query_int("SELECT count(*) FROM audit_log WHERE action = 'retention.signals'"
                               " AND subject = 'signals_default'"),
                     1);
    /* A second pass at the same time has nothing to do. */
    r = pass_at(now, 0);
    assert_int_equal(r.partitions_created + r.partitions_dropped + r.default_rows_deleted +
                         r.default_rows_moved + r.failures,
                     0);
}

/* A partition change that cannot have its lock gives up after the lock timeout and is retried
 * at the next pass: ingest (which holds such locks for a moment) is never queued behind it. */
static void test_lock_wait_is_bounded(void **state)
{
    (void)state;
    int64_t now = vg_wall_ms();
    PGconn *ingest = connect_check();
    exec_ok(ingest, "BEGIN");
    exec_ok(ingest, "LOCK TABLE signals_default IN ROW EXCLUSIVE MODE");
    int64_t started = vg_mono_ms();
    struct store_retention_policy policy = {.signals_ms = 14 * DAY_MS, .ahead_days = 2};
    struct store_retention_report r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(store_retention_signals(t.maint, &policy, now + 40 * DAY_MS, &r), 0);
    int64_t took = vg_mono_ms() - started;
    assert_true(r.failures >= 1);
    assert_int_equal(r.partitions_created, 0);
    assert_true(took < 8000);
    exec_ok(ingest, "ROLLBACK");
    PQfinish(ingest);

    memset(&r, 0, sizeof(r));
    assert_int_equal(store_retention_signals(t.maint, &policy, now + 40 * DAY_MS, &r), 0);
    assert_int_equal(r.failures, 0);
    assert_int_equal(r.partitions_created, 3);
}

/* ---- evidence and legal hold ---- */

static long long incident(const char *state, const char *resolved_at)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "INSERT INTO incidents (fingerprint, runbook, title, severity, state, opened_at,"
             " response_due, updated_at, resolved_at) VALUES ('fp-' || gen_random_uuid(),"
             " 'application-down', 'retention', 2, '%s', now() - interval '20 days',"
             " now() - interval '20 days', now(), %s) RETURNING id",
             state, resolved_at);
    return query_int(sql);
}

/* An artifact of incident (0 = none) stored days_ago, its content bytes bytes in one chunk. */
static long long artifact(long long incident_id, int days_ago, int bytes)
{
    static int n;
    char sql[1024], incident_text[24] = "NULL";
    n++;
    if (incident_id)
        snprintf(incident_text, sizeof(incident_text), "%lld", incident_id);
    snprintf(sql, sizeof(sql),
             "INSERT INTO evidence_collections (operator, kind, deadline, incident_id)"
             " VALUES ('operator:t', 'file', now(), %s) RETURNING id",
             incident_text);
    long long collection = query_int(sql);
    snprintf(
        sql, sizeof(sql),
        "INSERT INTO evidence_chunks (agent_id, artifact, \"offset\", collection_id, seq, data,"
        " last, total_size, sha256) VALUES ('ag-t', %d, 0, %lld, %d,"
        " convert_to(repeat('x', %d), 'UTF8'), true, %d, sha256(convert_to(repeat('x', %d),"
        " 'UTF8')))",
        n, collection, n, bytes, bytes, bytes);
    exec_ok(t.check, sql);
    snprintf(sql, sizeof(sql),
             "INSERT INTO evidence (collection_id, agent_id, agent_seq, artifact, node, kind,"
             " collected_at, stored_at, size, sha256, truncated, prev_chain, chain)"
             " VALUES (%lld, 'ag-t', %d, %d, 'node-a', 'file', now() - interval '%d days',"
             " now() - interval '%d days', %d, sha256(convert_to(repeat('x', %d), 'UTF8')), false,"
             " sha256(convert_to('prev%d', 'UTF8')), sha256(convert_to('chain%d', 'UTF8')))"
             " RETURNING id",
             collection, n, n, days_ago, days_ago, bytes, bytes, n, n);
    return query_int(sql);
}

static long long chunks_of(long long evidence_id)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM evidence_chunks c JOIN evidence e USING (agent_id, artifact)"
             " WHERE e.id = %lld",
             evidence_id);
    return query_int(sql);
}

static void test_evidence_retention_and_hold(void **state)
{
    (void)state;
    int64_t now = vg_wall_ms();
    long long held = incident("resolved", "now() - interval '10 days'");
    long long unheld = incident("resolved", "now() - interval '10 days'");
    long long recent = incident("resolved", "now() - interval '1 day'");
    long long open = incident("detected", "NULL");
    long long a_held = artifact(held, 10, 100), a_unheld = artifact(unheld, 10, 200),
              a_none = artifact(0, 10, 300), a_recent = artifact(recent, 10, 400),
              a_open = artifact(open, 10, 500), a_new = artifact(0, 1, 600);

    struct store_hold h;
    memset(&h, 0, sizeof(h));
    assert_int_equal(
        store_hold_set(t.store, (uint64_t)held, true, "operator:alice", "alice", "case 7", &h), 0);
    assert_true(h.held);
    assert_string_equal(h.actor, "operator:alice");
    assert_string_equal(h.reason, "case 7");
    assert_int_equal(store_hold_set(t.store, (uint64_t)held, true, "operator:bob", "bob", "", &h),
                     -EALREADY);
    assert_string_equal(h.actor, "operator:alice"); /* who holds it, for the refusal */
    assert_int_equal(
        store_hold_set(t.store, (uint64_t)unheld, false, "operator:bob", "bob", "", &h), -EALREADY);
    assert_int_equal(store_hold_set(t.store, 999999, true, "operator:bob", "bob", "", &h), -ENOENT);
    char bad[] = {'\xff', '\0'};
    assert_int_equal(store_hold_set(t.store, (uint64_t)held, false, "operator:bob", "bob", bad, &h),
                     -EINVAL);

    /* Kept forever by default: nothing goes. */
    struct store_retention_report r = pass_at(now, 0);
    assert_int_equal(r.evidence_removed, 0);

    /* 7 days: the unheld incident's and the operator's go; the held, the recently resolved,
     * the open incident's and the new artifact stay. */
    r = pass_at(now, 7 * DAY_MS);
    assert_int_equal(r.failures, 0);
    assert_int_equal(r.evidence_removed, 2);
    assert_int_equal(r.evidence_bytes_removed, 500);
    assert_int_equal(chunks_of(a_unheld), 0);
    assert_int_equal(chunks_of(a_none), 0);
    assert_int_equal(chunks_of(a_held), 1);
    assert_int_equal(chunks_of(a_recent), 1);
    assert_int_equal(chunks_of(a_open), 1);
    assert_int_equal(chunks_of(a_new), 1);
    assert_int_equal(query_int("SELECT count(*) FROM evidence"), 6); /* rows stay */
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM audit_log a JOIN evidence_removals x ON x.audit_id = a.id"
             " WHERE a.action = 'retention.evidence' AND a.actor = 'vigil:retention'"
             " AND x.evidence_id = %lld AND a.subject = 'evidence:%lld'"
             " AND a.detail LIKE '%%incident %lld%%chunks=1 bytes=200; the vault row and its"
             " chain link stay; older than retention.evidence (7d)'",
             a_unheld, a_unheld, unheld);
    assert_int_equal(query_int(sql), 1);
    int64_t removed_at = 0;
    uint64_t audit_id = 0;
    assert_int_equal(store_evidence_removal(t.store, (uint64_t)a_none, &removed_at, &audit_id), 0);
    assert_true(audit_id > 0 && removed_at >= now - 60000);
    assert_int_equal(store_evidence_removal(t.store, (uint64_t)a_held, &removed_at, &audit_id),
                     -ENOENT);

    /* The listing: the held incident, its one artifact and its bytes. */
    struct store_hold *list = NULL;
    size_t n = 0;
    assert_int_equal(store_holds_list(t.store, false, 0, 100, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].incident_id, held);
    assert_int_equal(list[0].artifacts, 1);
    assert_int_equal(list[0].bytes, 100);
    assert_string_equal(list[0].state, "resolved");
    free(list);

    /* Released: its evidence follows retention again. */
    assert_int_equal(
        store_hold_set(t.store, (uint64_t)held, false, "operator:bob", "bob", "case closed", &h),
        0);
    assert_false(h.held);
    r = pass_at(now, 7 * DAY_MS);
    assert_int_equal(r.evidence_removed, 1);
    assert_int_equal(chunks_of(a_held), 0);
    list = NULL;
    assert_int_equal(store_holds_list(t.store, false, 0, 100, &list, &n), 0);
    assert_int_equal(n, 0);
    free(list);
    assert_int_equal(store_holds_list(t.store, true, 0, 100, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_false(list[0].held);
    assert_string_equal(list[0].reason, "case closed");
    free(list);
    /* Both changes are on the timeline and in the audit log. */
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM incident_events WHERE incident_id = %lld AND kind = 'note'"
             " AND data ? 'hold'",
             held);
    assert_int_equal(query_int(sql), 2);
    assert_int_equal(query_int("SELECT count(*) FROM audit_log WHERE action IN ('incident.hold',"
                               " 'incident.hold_release')"),
                     2);
    /* holds is append-only like the rest of the record. */
    PGresult *res = PQexec(t.check, "DELETE FROM holds");
    assert_int_equal(PQresultStatus(res), PGRES_FATAL_ERROR);
    assert_non_null(strstr(PQresultErrorMessage(res), "append-only"));
    PQclear(res);
}

/* ---- setup ---- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    char err[512];
    snprintf(t.dir, sizeof(t.dir), "/tmp/vigil-retention-XXXXXX");
    if (!mkdtemp(t.dir) || chmod(t.dir, 0711) < 0)
        return -1;
    struct store_config cfg = {.state_dir = t.dir, .start_timeout_ms = 60000};
    t.store = store_open(&cfg, err, sizeof(err));
    if (!t.store) {
        fprintf(stderr, "store_open: %s\n", err);
        return -1;
    }
    t.maint = store_connect_maintenance(t.store);
    if (!t.maint)
        return -1;
    t.check = connect_check();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    PQfinish(t.check);
    t.check = NULL;
    store_destroy(&t.maint);
    store_destroy(&t.store); /* stops the cluster */
    if (t.dir[0])
        nftw(t.dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

int main(void)
{
    vg_log_init("test_retention", VG_LOG_WARN, false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partitions_made_moved_and_dropped),
        cmocka_unit_test(test_lock_wait_is_bounded),
        cmocka_unit_test(test_evidence_retention_and_hold),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
