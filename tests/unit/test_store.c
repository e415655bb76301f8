/*
 * The store against a real PostgreSQL: the private cluster embedded.c starts under a
 * temporary state directory. Run as root, initdb/pg_ctl run as the postgres user, and the
 * second state directory (mode 0700, unreachable by postgres) exercises the
 * /var/lib/vigil/pg-<hash> fallback. Takes several seconds (two initdb runs).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <float.h>
#include <ftw.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "digest.h"
#include "embedded.h"
#include "log.h"
#include "migrations.h"
#include "store.h"
#include "timeutil.h"
#include "wire.h"

#define FALLBACK_ROOT "/var/lib/vigil-pg"

static struct {
    char dir[64];        /* state dir searchable by postgres (0711): data lives inside it */
    char crash_dir[64];  /* state dir 0700: as root, the cluster goes to the fallback place */
    char broken_dir[64]; /* state dir whose pgdata initdb refuses */
    bool fallback_root_existed;
    store_t *store;
    PGconn *check; /* our own connection, to look at what the store wrote */
} t;

/* ---- helpers ---- */

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void path_in(char *out, size_t len, const char *dir, const char *name)
{
    int n = snprintf(out, len, "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < len);
}

/* The postmaster's pid from <data>/postmaster.pid, or 0 if there is none. */
static pid_t postmaster_pid(const char *state_dir)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/pgdata/postmaster.pid", state_dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[64] = "";
    char *got = fgets(line, sizeof(line), f);
    fclose(f);
    if (!got)
        return 0;
    long pid = strtol(line, NULL, 10);
    return pid > 0 ? (pid_t)pid : 0;
}

/* Alive and not a zombie waiting for a reaper that may not exist in a container. */
static bool process_running(pid_t pid)
{
    char path[64], stat[256] = "";
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(stat, 1, sizeof(stat) - 1, f);
    fclose(f);
    stat[n] = '\0';
    const char *close_paren = strrchr(stat, ')');
    return close_paren && close_paren[1] == ' ' && close_paren[2] != 'Z' && close_paren[2] != 'X';
}

static bool process_is_postgres(pid_t pid)
{
    char path[64], comm[64] = "";
    snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char *got = fgets(comm, sizeof(comm), f);
    fclose(f);
    return got && strncmp(comm, "postgres", 8) == 0;
}

static bool wait_gone(pid_t pid, long timeout_ms)
{
    for (long waited = 0; waited < timeout_ms; waited += 50) {
        if (!process_running(pid))
            return true;
        sleep_ms(50);
    }
    return !process_running(pid);
}

/* Teardown's last resort: a cluster a failed test left running gets a fast shutdown. */
static void kill_cluster(const char *state_dir)
{
    pid_t pid = postmaster_pid(state_dir);
    if (pid <= 0 || !process_running(pid) || !process_is_postgres(pid))
        return;
    kill(pid, SIGINT);
    if (!wait_gone(pid, 30000))
        kill(pid, SIGKILL);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

static void remove_tree(const char *path)
{
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void fallback_base(const char *state_dir, char *out, size_t len)
{
    char link[PATH_MAX], target[PATH_MAX];
    out[0] = '\0';
    snprintf(link, sizeof(link), "%s/pgdata", state_dir);
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    if (n <= 0)
        return;
    target[n] = '\0';
    char *slash = strrchr(target, '/');
    if (slash)
        *slash = '\0';
    if (strncmp(target, FALLBACK_ROOT "/pg-", strlen(FALLBACK_ROOT "/pg-")) == 0)
        snprintf(out, len, "%s", target);
}

static PGconn *check_conn(void)
{
    if (t.check && PQstatus(t.check) == CONNECTION_OK)
        return t.check;
    PQfinish(t.check);
    char conninfo[256];
    snprintf(conninfo, sizeof(conninfo), "host=%s/pgsock port=5432 user=vigil dbname=vigil", t.dir);
    t.check = PQconnectdb(conninfo);
    if (PQstatus(t.check) != CONNECTION_OK)
        fail_msg("check connection: %s", PQerrorMessage(t.check));
    return t.check;
}

/* Runs a query on the check connection and fails the test unless it returns rows. */
static PGresult *query(const char *sql, int n, const char *const *params)
{
    PGresult *res = PQexecParams(check_conn(), sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res));
        PQclear(res);
        fail_msg("query %s: %s", sql, msg);
    }
    return res;
}

static long long query_int(const char *sql, int n, const char *const *params)
{
    PGresult *res = query(sql, n, params);
    assert_int_equal(PQntuples(res), 1);
    long long v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return v;
}

static struct store_config embedded_config(const char *state_dir)
{
    struct store_config cfg = {
        .url = NULL, .state_dir = state_dir, .pg_bin_dir = NULL, .start_timeout_ms = 60000};
    return cfg;
}

/* ---- envelopes ---- */

#define MAX_SIG 4
#define MAX_LAB 8

struct fx_label {
    const char *key, *value;
};

struct fx_signal {
    const char *name;
    double value;
    const char *unit;
    int64_t ts_ms;
    size_t n_labels;
    struct fx_label labels[MAX_LAB];
};

struct fx_msg {
    const char *sender;
    uint64_t seq;
    int64_t sent_at_ms;
    size_t n_signals;
    struct fx_signal signals[MAX_SIG];

    /* the protobuf-c view of the above, filled by fx_build */
    Vigil__Envelope env;
    Vigil__SignalBatch batch;
    Vigil__Signal sig[MAX_SIG];
    Vigil__Signal *sigp[MAX_SIG];
    Vigil__Label lab[MAX_SIG][MAX_LAB];
    Vigil__Label *labp[MAX_SIG][MAX_LAB];
};

static void fx_build(struct fx_msg *m)
{
    m->env = (Vigil__Envelope)VIGIL__ENVELOPE__INIT;
    m->batch = (Vigil__SignalBatch)VIGIL__SIGNAL_BATCH__INIT;
    m->env.version = 1;
    m->env.sender = (char *)m->sender;
    m->env.seq = m->seq;
    m->env.sent_at_ms = m->sent_at_ms;
    m->env.body_case = VIGIL__ENVELOPE__BODY_SIGNALS;
    m->env.signals = &m->batch;
    m->batch.n_signals = m->n_signals;
    m->batch.signals = m->sigp;
    for (size_t i = 0; i < m->n_signals; i++) {
        const struct fx_signal *s = &m->signals[i];
        m->sig[i] = (Vigil__Signal)VIGIL__SIGNAL__INIT;
        m->sig[i].name = (char *)s->name;
        m->sig[i].value = s->value;
        m->sig[i].unit = (char *)s->unit;
        m->sig[i].ts_ms = s->ts_ms;
        m->sig[i].n_labels = s->n_labels;
        m->sig[i].labels = m->labp[i];
        for (size_t k = 0; k < s->n_labels; k++) {
            m->lab[i][k] = (Vigil__Label)VIGIL__LABEL__INIT;
            m->lab[i][k].key = (char *)s->labels[k].key;
            m->lab[i][k].value = (char *)s->labels[k].value;
            m->labp[i][k] = &m->lab[i][k];
        }
        m->sigp[i] = &m->sig[i];
    }
}

static struct fx_msg fx[] = {
    {.sender = "ag-test-a",
     .seq = 1,
     .sent_at_ms = 1700000000123,
     .n_signals = 2,
     .signals =
         {
             {.name = "host.cpu.busy_pct",
              .value = 12.5,
              .unit = "%",
              .ts_ms = 1700000000001,
              .n_labels = 7,
              .labels =
                  {
                      {"path", "C:\\temp\\new\tfile\n\"quoted\""},
                      {"quote\"key", "back\\slash\\"},
                      {"unicode", "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80 \xe6\x97\xa5"},
                      {"cr", "a\rb\r\n"},
                      {"controls", "\x01\x1f\x7f\b\f"},
                      {"empty", ""},
                      {"tab\tkey\\.", "\\."},
                  }},
             {.name = "log.line\tweird\\name",
              .value = 0.1,
              .unit = "unit\nwith newline",
              .ts_ms = 1700000000002},
         }},
    {.sender = "ag-test-a",
     .seq = 2,
     .sent_at_ms = 1700000000456,
     .n_signals = 3,
     .signals =
         {
             {.name = "probe.nan",
              .value = NAN,
              .unit = "",
              .ts_ms = 1700000000003,
              .n_labels = 1,
              .labels = {{"k", "v"}}},
             {.name = "probe.inf", .value = INFINITY, .unit = "s", .ts_ms = 1700000000004},
             {.name = "probe.neginf", .value = -INFINITY, .unit = "s", .ts_ms = 1700000000005},
         }},
    {.sender = "ag-test-b",
     .seq = 1,
     .sent_at_ms = -1,
     .n_signals = 3,
     .signals =
         {
             {.name = "probe.max", .value = DBL_MAX, .unit = "B", .ts_ms = -1},
             {.name = "probe.tiny", .value = 5e-324, .unit = "B", .ts_ms = 0},
             {.name = "probe.negzero", .value = -0.0, .unit = "B", .ts_ms = 253402300799999},
         }},
    /* new in the duplicate test */
    {.sender = "ag-test-b",
     .seq = 2,
     .sent_at_ms = 1700000001000,
     .n_signals = 1,
     .signals = {{.name = "probe.late", .value = 42, .unit = "", .ts_ms = 1700000001000}}},
    /* new in the reconnect test */
    {.sender = "ag-test-b",
     .seq = 3,
     .sent_at_ms = 1700000002000,
     .n_signals = 1,
     .signals = {{.name = "probe.after_reconnect", .value = 7, .unit = "", .ts_ms = 1}}},
};

static Vigil__Envelope *fx_env(size_t i)
{
    fx_build(&fx[i]);
    return &fx[i].env;
}

static void expect_message_stored(const struct fx_msg *m)
{
    char seq[24];
    snprintf(seq, sizeof(seq), "%" PRIu64, m->seq);
    const char *p[3] = {m->sender, seq, NULL};

    PGresult *res = query("SELECT kind, (extract(epoch FROM sent_at) * 1000)::bigint"
                          " FROM agent_messages WHERE agent_id = $1 AND seq = $2",
                          2, p);
    assert_int_equal(PQntuples(res), 1);
    assert_string_equal(PQgetvalue(res, 0, 0), "signals");
    assert_int_equal(strtoll(PQgetvalue(res, 0, 1), NULL, 10), m->sent_at_ms);
    PQclear(res);

    assert_int_equal(
        query_int("SELECT count(*) FROM signals WHERE agent_id = $1 AND seq = $2", 2, p),
        (long long)m->n_signals);
    for (size_t i = 0; i < m->n_signals; i++) {
        const struct fx_signal *s = &m->signals[i];
        p[2] = s->name;
        res = query("SELECT value::text, unit, (extract(epoch FROM ts) * 1000)::bigint,"
                    " (SELECT count(*) FROM jsonb_object_keys(labels))"
                    " FROM signals WHERE agent_id = $1 AND seq = $2 AND name = $3",
                    3, p);
        assert_int_equal(PQntuples(res), 1);
        double got = strtod(PQgetvalue(res, 0, 0), NULL);
        if (isnan(s->value))
            assert_true(isnan(got));
        else
            assert_memory_equal(&got, &s->value, sizeof(got)); /* bit-exact, -0.0 included */
        assert_string_equal(PQgetvalue(res, 0, 1), s->unit);
        assert_int_equal(strtoll(PQgetvalue(res, 0, 2), NULL, 10), s->ts_ms);
        assert_int_equal(strtoll(PQgetvalue(res, 0, 3), NULL, 10), (long long)s->n_labels);
        PQclear(res);
        for (size_t k = 0; k < s->n_labels; k++) {
            const char *lp[4] = {m->sender, seq, s->name, s->labels[k].key};
            res = query("SELECT labels ->> $4 FROM signals"
                        " WHERE agent_id = $1 AND seq = $2 AND name = $3",
                        4, lp);
            assert_int_equal(PQntuples(res), 1);
            assert_false(PQgetisnull(res, 0, 0));
            assert_string_equal(PQgetvalue(res, 0, 0), s->labels[k].value);
            PQclear(res);
        }
    }
}

/* ---- tests ---- */

static void test_unreachable_url_fails_clearly(void **state)
{
    (void)state;
    struct store_config cfg = {.url = "host=/nonexistent-vigil-test port=5432 dbname=vigil",
                               .state_dir = NULL,
                               .start_timeout_ms = 300};
    char err[512] = "";
    store_t *s = store_open(&cfg, err, sizeof(err));
    assert_null(s);
    const char *prefix = "database unreachable after 0.3s: ";
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        fail_msg("unexpected error text: %s", err);
    assert_non_null(strstr(err, "/nonexistent-vigil-test")); /* libpq's own words */
}

static void test_open_twice_reuses_cluster(void **state)
{
    (void)state;
    struct store_config cfg = embedded_config(t.dir);
    char err[1024] = "";

    store_t *first = store_open(&cfg, err, sizeof(err));
    if (!first)
        fail_msg("store_open: %s", err);
    assert_int_equal(store_audit(first, "test", "test.first_open", "store", "marker"), 0);
    pid_t pid = postmaster_pid(t.dir);
    assert_true(pid > 0);
    store_destroy(&first);
    assert_null(first);
    assert_true(wait_gone(pid, 10000));
    assert_int_equal(postmaster_pid(t.dir), 0);

    t.store = store_open(&cfg, err, sizeof(err));
    if (!t.store)
        fail_msg("second store_open: %s", err);
    /* Same cluster: what the first open wrote is there. Migrations ran once. */
    assert_int_equal(
        query_int("SELECT count(*) FROM audit_log WHERE action = 'test.first_open'", 0, NULL), 1);
    PGresult *res = query("SELECT version, name FROM schema_migrations ORDER BY version", 0, NULL);
    assert_int_equal(PQntuples(res), (int)vigil_migrations_count);
    for (unsigned i = 0; i < vigil_migrations_count; i++) {
        assert_int_equal(strtol(PQgetvalue(res, (int)i, 0), NULL, 10), vigil_migrations[i].version);
        assert_string_equal(PQgetvalue(res, (int)i, 1), vigil_migrations[i].name);
    }
    PQclear(res);
    assert_true(query_int("SELECT count(*) FROM pg_stat_activity"
                          " WHERE application_name = 'vigil-coordinator'",
                          0, NULL) >= 1);
    assert_true(store_ping(t.store));
}

static void test_migrations_refuse_newer_schema(void **state)
{
    (void)state;
    PGconn *conn = check_conn();
    char err[512] = "";

    PQclear(PQexec(conn, "INSERT INTO schema_migrations (version, name) VALUES (999, 'future')"));
    int r = migrations_apply(conn, err, sizeof(err));
    PQclear(PQexec(conn, "DELETE FROM schema_migrations WHERE version = 999"));
    assert_int_equal(r, -EPROTO);
    assert_non_null(strstr(err, "version 999"));

    assert_int_equal(migrations_apply(conn, err, sizeof(err)), 0); /* nothing to do: no-op */
    assert_int_equal(query_int("SELECT count(*) FROM schema_migrations", 0, NULL),
                     (long long)vigil_migrations_count);
}

static void test_ingest_stores_exactly(void **state)
{
    (void)state;
    Vigil__Envelope *batch[] = {fx_env(0), fx_env(1), fx_env(2)};
    size_t fresh = 99;

    assert_int_equal(store_ingest(t.store, batch, 3, &fresh, NULL), 0);
    assert_int_equal(fresh, 3);
    for (size_t i = 0; i < 3; i++)
        expect_message_stored(&fx[i]);
    assert_int_equal(query_int("SELECT count(*) FROM signals", 0, NULL), 8);
}

static void test_ingest_ignores_duplicates(void **state)
{
    (void)state;
    Vigil__Envelope *again[] = {fx_env(0), fx_env(1), fx_env(2)};
    size_t fresh = 99;

    assert_int_equal(store_ingest(t.store, again, 3, &fresh, NULL), 0);
    assert_int_equal(fresh, 0);
    assert_int_equal(query_int("SELECT count(*) FROM agent_messages", 0, NULL), 3);
    assert_int_equal(query_int("SELECT count(*) FROM signals", 0, NULL), 8);

    /* Old, new, and the new one twice in the same batch: stored once. */
    Vigil__Envelope *mixed[] = {fx_env(1), fx_env(3), fx_env(3)};
    assert_int_equal(store_ingest(t.store, mixed, 3, &fresh, NULL), 0);
    assert_int_equal(fresh, 1);
    expect_message_stored(&fx[3]);
    assert_int_equal(query_int("SELECT count(*) FROM signals", 0, NULL), 9);

    assert_int_equal(store_ingest(t.store, NULL, 0, &fresh, NULL), 0);
    assert_int_equal(fresh, 0);
}

static void test_ingest_refuses_invalid_input(void **state)
{
    (void)state;
    size_t fresh = 99;
    struct fx_msg bad = {
        .sender = "ag-test-c",
        .seq = 1,
        .sent_at_ms = 1,
        .n_signals = 1,
        .signals = {
            {.name = "x", .unit = "", .n_labels = 1, .labels = {{"k", "bad \xc3\x28 utf8"}}}}};
    fx_build(&bad);
    Vigil__Envelope *batch[] = {&bad.env};
    assert_int_equal(store_ingest(t.store, batch, 1, &fresh, NULL), -EINVAL);

    bad.signals[0].n_labels = 0;
    bad.seq = 0; /* transient messages are never stored */
    fx_build(&bad);
    assert_int_equal(store_ingest(t.store, batch, 1, &fresh, NULL), -EINVAL);

    bad.seq = 1;
    bad.signals[0].ts_ms = INT64_MAX;
    fx_build(&bad);
    assert_int_equal(store_ingest(t.store, batch, 1, &fresh, NULL), -EINVAL);
    assert_int_equal(fresh, 99); /* untouched on failure */
    assert_int_equal(
        query_int("SELECT count(*) FROM agent_messages WHERE agent_id = 'ag-test-c'", 0, NULL), 0);
}

/* Ends the store's connection from the server side, as a restart of PostgreSQL would. */
static void terminate_store_connection(void)
{
    PGresult *res = query("SELECT pid FROM pg_stat_activity"
                          " WHERE application_name = 'vigil-coordinator'",
                          0, NULL);
    assert_int_equal(PQntuples(res), 1);
    char pid[24];
    snprintf(pid, sizeof(pid), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    const char *p[] = {pid};
    PQclear(query("SELECT pg_terminate_backend($1::int)", 1, p));
    for (int i = 0; i < 200; i++) {
        if (query_int("SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int", 1, p) == 0)
            break;
        sleep_ms(25);
    }
}

static void test_ingest_after_connection_loss(void **state)
{
    (void)state;
    terminate_store_connection();

    Vigil__Envelope *batch[] = {fx_env(4)};
    size_t fresh = 99;
    assert_int_equal(store_ingest(t.store, batch, 1, &fresh, NULL), -EIO);
    assert_int_equal(fresh, 99);
    /* The next call reconnects; nothing of the failed one was stored, so it is new now. */
    assert_int_equal(store_ingest(t.store, batch, 1, &fresh, NULL), 0);
    assert_int_equal(fresh, 1);
    expect_message_stored(&fx[4]);
}

struct agents_seen {
    size_t count;
    int stop_with;
    struct store_agent last;
    struct store_agent wanted;
    bool found;
};

static int collect_agent(const struct store_agent *agent, void *userdata)
{
    struct agents_seen *seen = userdata;
    seen->count++;
    seen->last = *agent;
    if (strcmp(agent->id, seen->wanted.id) == 0) {
        seen->wanted = *agent;
        seen->found = true;
    }
    return seen->stop_with;
}

static void test_agents_round_trip(void **state)
{
    (void)state;
    struct store_agent a;
    memset(&a, 0, sizeof(a));
    snprintf(a.id, sizeof(a.id), "ag-0123456789abcdef");
    snprintf(a.public_key, sizeof(a.public_key), "%s", "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7");
    snprintf(a.node, sizeof(a.node), "worker-1");
    snprintf(a.agent_version, sizeof(a.agent_version), "0.1.0");
    a.state = VIGIL__AGENT_STATE__AGENT_STATE_PENDING;
    a.enrolled_at_ms = 1700000000000;
    a.state_since_ms = 1700000000000;
    assert_int_equal(store_agent_upsert(t.store, &a), 0);

    assert_int_equal(store_agent_set_state(t.store, a.id, VIGIL__AGENT_STATE__AGENT_STATE_ACTIVE,
                                           1700000001000, "operator:alice", "approved"),
                     0);

    /* An upsert of a known agent changes its version only: the node name is bound to the key
     * and changes only through a request an operator approves. */
    struct store_agent b = a;
    snprintf(b.node, sizeof(b.node), "worker-2");
    snprintf(b.agent_version, sizeof(b.agent_version), "0.2.0");
    b.state = VIGIL__AGENT_STATE__AGENT_STATE_REVOKED;
    b.enrolled_at_ms = 1;
    assert_int_equal(store_agent_upsert(t.store, &b), 0);

    struct store_agent_health h = {.id = a.id,
                                   .last_seen_ms = 1700000002000,
                                   .agent_version = "0.2.1",
                                   .uptime_s = 60,
                                   .spool_depth = 7,
                                   .spool_bytes = 4096,
                                   .dropped_messages = 3,
                                   .dropped_samples = UINT64_MAX};
    struct store_agent_health unknown = {.id = "ag-unknown", .last_seen_ms = 5};
    struct store_agent_health rows[] = {h, unknown};
    assert_int_equal(store_agents_health(t.store, rows, 2), 0);

    struct agents_seen seen = {0};
    snprintf(seen.wanted.id, sizeof(seen.wanted.id), "%s", a.id);
    assert_int_equal(store_agents_load(t.store, collect_agent, &seen), 0);
    assert_true(seen.found);
    assert_string_equal(seen.wanted.node, "worker-1");
    assert_string_equal(seen.wanted.requested_node, "");

    assert_int_equal(store_agent_request_node(t.store, a.id, "worker-2"), 0);
    assert_int_equal(store_agents_load(t.store, collect_agent, &seen), 0);
    assert_string_equal(seen.wanted.node, "worker-1");
    assert_string_equal(seen.wanted.requested_node, "worker-2");
    assert_int_equal(store_agent_rename(t.store, a.id, "worker-2", "operator:alice"), 0);
    assert_int_equal(store_agent_rename(t.store, "ag-none", "x", "operator:alice"), -ENOENT);

    assert_int_equal(store_agents_load(t.store, collect_agent, &seen), 0);
    assert_string_equal(seen.wanted.public_key, a.public_key);
    assert_string_equal(seen.wanted.node, "worker-2");
    assert_string_equal(seen.wanted.requested_node, "");
    assert_string_equal(seen.wanted.agent_version, "0.2.1");
    assert_int_equal(seen.wanted.state, VIGIL__AGENT_STATE__AGENT_STATE_ACTIVE);
    assert_int_equal(seen.wanted.enrolled_at_ms, 1700000000000);
    assert_int_equal(seen.wanted.state_since_ms, 1700000001000);
    assert_int_equal(seen.wanted.last_seen_ms, 1700000002000);
    assert_int_equal(seen.wanted.spool_depth, 7);
    assert_int_equal(seen.wanted.dropped_messages, 3);
    assert_int_equal(
        query_int("SELECT dropped_samples FROM agents WHERE id = 'ag-0123456789abcdef'", 0, NULL),
        INT64_MAX); /* clamped, not wrapped negative */

    PGresult *res = query("SELECT actor, detail FROM audit_log"
                          " WHERE action = 'agent.state' AND subject = 'ag-0123456789abcdef'",
                          0, NULL);
    assert_int_equal(PQntuples(res), 1);
    assert_string_equal(PQgetvalue(res, 0, 0), "operator:alice");
    assert_string_equal(PQgetvalue(res, 0, 1), "from=pending to=active reason=approved");
    PQclear(res);

    assert_int_equal(store_agent_set_state(t.store, "ag-unknown",
                                           VIGIL__AGENT_STATE__AGENT_STATE_LOST, 0, NULL, NULL),
                     -ENOENT);
    assert_int_equal(store_agent_set_state(
                         t.store, a.id, VIGIL__AGENT_STATE__AGENT_STATE_UNSPECIFIED, 0, NULL, NULL),
                     -EINVAL);

    /* Same id, other key: refused. Other id, same key: refused. */
    struct store_agent c = a;
    snprintf(c.public_key, sizeof(c.public_key), "another-key");
    assert_int_equal(store_agent_upsert(t.store, &c), -EEXIST);
    struct store_agent d = a;
    snprintf(d.id, sizeof(d.id), "ag-fedcba9876543210");
    assert_int_equal(store_agent_upsert(t.store, &d), -EEXIST);

    /* A second agent, then early stop and error pass-through of the callback. */
    struct store_agent e = a;
    snprintf(e.id, sizeof(e.id), "ag-1111111111111111");
    snprintf(e.public_key, sizeof(e.public_key), "key-e");
    assert_int_equal(store_agent_upsert(t.store, &e), 0);
    struct agents_seen stop = {.stop_with = 1};
    assert_int_equal(store_agents_load(t.store, collect_agent, &stop), 0);
    assert_int_equal(stop.count, 1);
    struct agents_seen error = {.stop_with = -ECANCELED};
    assert_int_equal(store_agents_load(t.store, collect_agent, &error), -ECANCELED);
    assert_int_equal(error.count, 1);
}

static void test_audit_log_is_append_only(void **state)
{
    (void)state;
    assert_int_equal(store_audit(t.store, "test", "test.append", "subject", "detail"), 0);
    assert_int_equal(store_audit(t.store, "test", "test.append", NULL, NULL), 0);
    long long before = query_int("SELECT count(*) FROM audit_log", 0, NULL);

    static const char *const refused[] = {
        "UPDATE audit_log SET detail = 'rewritten' WHERE action = 'test.append'",
        "DELETE FROM audit_log WHERE action = 'test.append'",
        "TRUNCATE audit_log",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        PGresult *res = PQexec(check_conn(), refused[i]);
        assert_int_equal(PQresultStatus(res), PGRES_FATAL_ERROR);
        assert_non_null(strstr(PQresultErrorMessage(res), "append-only"));
        PQclear(res);
    }
    assert_int_equal(query_int("SELECT count(*) FROM audit_log", 0, NULL), before);
    assert_int_equal(
        query_int("SELECT count(*) FROM audit_log WHERE detail = 'rewritten'", 0, NULL), 0);
}

struct operators_seen {
    size_t count;
    struct store_operator last;
};

static int collect_operator(const struct store_operator *op, void *userdata)
{
    struct operators_seen *seen = userdata;
    seen->count++;
    seen->last = *op;
    return 0;
}

static void test_operator_ensure_is_idempotent(void **state)
{
    (void)state;
    struct store_operator op;
    memset(&op, 0, sizeof(op));
    snprintf(op.id, sizeof(op.id), "op-alice");
    snprintf(op.name, sizeof(op.name), "Alice O'Brien");
    snprintf(op.public_key, sizeof(op.public_key), "alice-key");
    snprintf(op.role, sizeof(op.role), "responder");

    struct store_operator stored;
    assert_int_equal(store_operator_ensure(t.store, &op, &stored), 0);
    assert_string_equal(stored.id, "op-alice");
    assert_false(stored.revoked);
    assert_int_equal(store_operator_ensure(t.store, &op, NULL), 0);
    struct store_operator other = op; /* same key: nothing changes */
    snprintf(other.name, sizeof(other.name), "Mallory");
    snprintf(other.role, sizeof(other.role), "admin");
    assert_int_equal(store_operator_ensure(t.store, &other, &stored), 0);
    assert_string_equal(stored.name, "Alice O'Brien"); /* what is stored, not what was asked */
    assert_string_equal(stored.role, "responder");

    struct operators_seen seen = {0};
    assert_int_equal(store_operators_load(t.store, collect_operator, &seen), 0);
    assert_int_equal(seen.count, 1);
    assert_string_equal(seen.last.id, "op-alice");
    assert_string_equal(seen.last.name, "Alice O'Brien");
    assert_string_equal(seen.last.public_key, "alice-key");
    assert_string_equal(seen.last.role, "responder");
    assert_false(seen.last.revoked);

    struct store_operator clash = op; /* known id, unknown key */
    snprintf(clash.public_key, sizeof(clash.public_key), "other-key");
    assert_int_equal(store_operator_ensure(t.store, &clash, NULL), -EEXIST);
    struct store_operator bad_role = op;
    snprintf(bad_role.id, sizeof(bad_role.id), "op-bob");
    snprintf(bad_role.public_key, sizeof(bad_role.public_key), "bob-key");
    snprintf(bad_role.role, sizeof(bad_role.role), "root");
    assert_int_equal(store_operator_ensure(t.store, &bad_role, NULL), -EINVAL);
    assert_int_equal(query_int("SELECT count(*) FROM operators", 0, NULL), 1);
}

/* The coordinator ensures its configured admin at every start: a revoked key must stay revoked,
 * and the caller must learn that it is (so it does not admit the key in memory). */
static void test_operator_ensure_keeps_revoked(void **state)
{
    (void)state;
    struct store_operator op, stored;
    memset(&op, 0, sizeof(op));
    snprintf(op.id, sizeof(op.id), "op-carol");
    snprintf(op.name, sizeof(op.name), "carol");
    snprintf(op.public_key, sizeof(op.public_key), "carol-key");
    snprintf(op.role, sizeof(op.role), "admin");
    assert_int_equal(store_operator_ensure(t.store, &op, &stored), 0);
    assert_false(stored.revoked);

    const char *key[] = {"carol-key"};
    assert_int_equal(query_int("WITH u AS (UPDATE operators SET revoked_at = now() - interval '1 h'"
                               " WHERE public_key = $1 RETURNING 1) SELECT count(*) FROM u",
                               1, key),
                     1);
    long long revoked_at = query_int(
        "SELECT extract(epoch FROM revoked_at)::bigint FROM operators WHERE public_key = $1", 1,
        key);

    memset(&stored, 0, sizeof(stored));
    assert_int_equal(store_operator_ensure(t.store, &op, &stored), 0); /* the next start */
    assert_true(stored.revoked);
    assert_string_equal(stored.id, "op-carol");
    assert_int_equal(query_int("SELECT extract(epoch FROM revoked_at)::bigint FROM operators"
                               " WHERE public_key = $1",
                               1, key),
                     revoked_at);
}

static void test_destroy_stops_cluster(void **state)
{
    (void)state;
    pid_t pid = postmaster_pid(t.dir);
    assert_true(pid > 0 && process_running(pid));
    PQfinish(t.check);
    t.check = NULL;
    store_destroy(&t.store);
    assert_null(t.store);
    assert_int_equal(postmaster_pid(t.dir), 0);
    assert_true(wait_gone(pid, 10000));
}

static void test_killed_coordinator_cluster_is_adopted(void **state)
{
    (void)state;
    char err[1024] = "";

    /* A coordinator that starts the cluster and is killed before it can stop it. */
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        umask(077); /* a root shell's umask must not make the fallback unreachable */
        embedded_pg_t *pg = embedded_pg_start(t.crash_dir, NULL, err, sizeof(err));
        if (!pg) {
            fprintf(stderr, "child: embedded_pg_start: %s\n", err);
            _exit(1);
        }
        kill(getpid(), SIGKILL);
        _exit(2);
    }
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    pid_t pid = postmaster_pid(t.crash_dir);
    assert_true(pid > 0 && process_running(pid));

    if (geteuid() == 0) {
        /* 0700 root-owned state dir: data under /var/lib/vigil/pg-<sha256(realpath)[:12]>. */
        char real[PATH_MAX], expect[PATH_MAX], link[PATH_MAX], target[PATH_MAX];
        uint8_t md[VG_SHA256_LEN];
        assert_non_null(realpath(t.crash_dir, real));
        vg_sha256(real, strlen(real), md);
        snprintf(expect, sizeof(expect), FALLBACK_ROOT "/pg-%02x%02x%02x%02x%02x%02x/pgdata", md[0],
                 md[1], md[2], md[3], md[4], md[5]);
        path_in(link, sizeof(link), t.crash_dir, "pgdata");
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        assert_true(n > 0);
        target[n] = '\0';
        assert_string_equal(target, expect);
        struct stat st;
        assert_int_equal(stat(FALLBACK_ROOT, &st), 0);
        assert_int_equal(st.st_uid, 0);
        assert_int_equal(st.st_mode & 07777, 0755);
    }

    embedded_pg_t *pg = embedded_pg_start(t.crash_dir, NULL, err, sizeof(err));
    if (!pg)
        fail_msg("embedded_pg_start after crash: %s", err);
    assert_int_equal(postmaster_pid(t.crash_dir), pid); /* adopted, not started again */
    PGconn *conn = PQconnectdb(embedded_pg_conninfo(pg));
    assert_int_equal(PQstatus(conn), CONNECTION_OK);
    PGresult *res = PQexec(conn, "SELECT current_database()");
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(res, 0, 0), "vigil");
    PQclear(res);
    PQfinish(conn);

    embedded_pg_stop(&pg);
    assert_null(pg);
    assert_int_equal(postmaster_pid(t.crash_dir), 0);
    assert_true(wait_gone(pid, 10000));
}

static void test_initdb_failure_explains(void **state)
{
    (void)state;
    char pgdata[PATH_MAX], junk[PATH_MAX], err[1024] = "";

    /* A non-empty data directory without PG_VERSION: initdb refuses it and says so. */
    path_in(pgdata, sizeof(pgdata), t.broken_dir, "pgdata");
    path_in(junk, sizeof(junk), pgdata, "junk");
    assert_int_equal(mkdir(pgdata, 0700), 0);
    FILE *f = fopen(junk, "w");
    assert_non_null(f);
    fclose(f);

    embedded_pg_t *pg = embedded_pg_start(t.broken_dir, NULL, err, sizeof(err));
    assert_null(pg);
    print_message("%s\n", err);
    if (!strstr(err, "initdb") || !strstr(err, "not empty"))
        fail_msg("unhelpful error: %s", err);
    assert_int_equal(access(junk, F_OK), 0); /* nothing of the user's removed */
}

static void test_bad_pg_bin_dir_is_named(void **state)
{
    (void)state;
    char err[512] = "";
    embedded_pg_t *pg = embedded_pg_start(t.broken_dir, "/nonexistent/bin", err, sizeof(err));
    assert_null(pg);
    assert_non_null(strstr(err, "/nonexistent/bin"));
}

/* ---- evidence ---- */

struct fx_chunk {
    Vigil__Envelope env;
    Vigil__EvidenceChunk chunk;
    uint8_t sha[VG_SHA256_LEN];
};

/* A chunk of artifact `artifact` at offset with data; last chunks carry total and sha. */
static void fx_chunk(struct fx_chunk *f, const char *agent, uint64_t seq, uint64_t collection,
                     uint64_t artifact, uint64_t offset, const uint8_t *data, size_t len,
                     const uint8_t *sha_of_all, uint64_t total)
{
    f->env = (Vigil__Envelope)VIGIL__ENVELOPE__INIT;
    f->chunk = (Vigil__EvidenceChunk)VIGIL__EVIDENCE_CHUNK__INIT;
    f->env.version = 1;
    f->env.sender = (char *)agent;
    f->env.seq = seq;
    f->env.sent_at_ms = 1700000000000;
    f->env.body_case = VIGIL__ENVELOPE__BODY_EVIDENCE;
    f->env.evidence = &f->chunk;
    f->chunk.collection_id = collection;
    f->chunk.artifact = artifact;
    f->chunk.kind = "file";
    f->chunk.collected_at_ms = 1700000000500;
    f->chunk.offset = offset;
    f->chunk.data.data = (uint8_t *)data;
    f->chunk.data.len = len;
    if (sha_of_all) {
        memcpy(f->sha, sha_of_all, sizeof(f->sha));
        f->chunk.last = true;
        f->chunk.total_size = total;
        f->chunk.sha256.data = f->sha;
        f->chunk.sha256.len = sizeof(f->sha);
    }
}

static uint64_t new_collection(int64_t deadline_ms)
{
    static const struct store_evidence_arg args[] = {{"path", "/var/log/app.log"}, {"lines", "50"}};
    static const struct store_evidence_target targets[] = {{"ag-ev-a", "node-a"},
                                                           {"ag-ev-b", "node-b"}};
    uint64_t id = 0;
    assert_int_equal(store_evidence_collection_create(t.store, "operator:test", "file", args, 2,
                                                      deadline_ms, targets, 2, 0, &id),
                     0);
    assert_true(id > 0);
    return id;
}

static long long count_where(const char *sql, uint64_t id)
{
    char text[24];
    snprintf(text, sizeof(text), "%" PRIu64, id);
    const char *p[] = {text};
    return query_int(sql, 1, p);
}

static const char *target_text(uint64_t collection, const char *agent, const char *column)
{
    static char out[1024];
    char sql[256], coll[24];
    snprintf(sql, sizeof(sql),
             "SELECT %s FROM evidence_targets WHERE collection_id = $1 AND agent_id = $2", column);
    snprintf(coll, sizeof(coll), "%" PRIu64, collection);
    const char *p[] = {coll, agent};
    PGresult *res = query(sql, 2, p);
    assert_int_equal(PQntuples(res), 1);
    snprintf(out, sizeof(out), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return out;
}

static struct store_evidence_event *find_event(struct store_evidence_events *ev,
                                               enum store_evidence_outcome outcome)
{
    for (size_t i = 0; i < ev->n; i++)
        if (ev->items[i].outcome == outcome)
            return &ev->items[i];
    return NULL;
}

/* Recomputes a vault row's chain hash from its columns and checks it links to prev. */
static void expect_chain_row(uint64_t id, const uint8_t prev_expected[VG_SHA256_LEN])
{
    char text[24];
    snprintf(text, sizeof(text), "%" PRIu64, id);
    const char *p[] = {text};
    PGresult *res =
        query("SELECT collection_id, agent_id, agent_seq, artifact, node, kind, args::text,"
              " (extract(epoch FROM collected_at) * 1000)::bigint,"
              " (extract(epoch FROM stored_at) * 1000)::bigint, size, truncated,"
              " encode(sha256, 'hex'), encode(prev_chain, 'hex'), encode(chain, 'hex')"
              " FROM evidence WHERE id = $1",
              1, p);
    assert_int_equal(PQntuples(res), 1);
    char prev_hex[VG_SHA256_HEX_LEN + 1];
    vg_hex(prev_expected, VG_SHA256_LEN, prev_hex);
    assert_string_equal(PQgetvalue(res, 0, 12), prev_hex);
    /* The collection's args, as the test created them (jsonb orders keys its own way). */
    const struct store_evidence_arg args[] = {{"lines", "50"}, {"path", "/var/log/app.log"}};
    struct store_evidence_meta meta = {
        .collection_id = strtoull(PQgetvalue(res, 0, 0), NULL, 10),
        .agent_id = PQgetvalue(res, 0, 1),
        .agent_seq = strtoull(PQgetvalue(res, 0, 2), NULL, 10),
        .artifact = strtoull(PQgetvalue(res, 0, 3), NULL, 10),
        .node = PQgetvalue(res, 0, 4),
        .kind = PQgetvalue(res, 0, 5),
        .args = args,
        .nargs = 2,
        .collected_at_ms = strtoll(PQgetvalue(res, 0, 7), NULL, 10),
        .stored_at_ms = strtoll(PQgetvalue(res, 0, 8), NULL, 10),
        .size = strtoull(PQgetvalue(res, 0, 9), NULL, 10),
        .truncated = strcmp(PQgetvalue(res, 0, 10), "t") == 0,
    };
    uint8_t sha[VG_SHA256_LEN], chain[VG_SHA256_LEN];
    const char *sha_hex = PQgetvalue(res, 0, 11);
    for (size_t i = 0; i < VG_SHA256_LEN; i++) {
        unsigned v;
        assert_int_equal(sscanf(sha_hex + 2 * i, "%2x", &v), 1);
        sha[i] = (uint8_t)v;
    }
    store_evidence_chain(prev_expected, sha, &meta, chain);
    char chain_hex[VG_SHA256_HEX_LEN + 1];
    vg_hex(chain, VG_SHA256_LEN, chain_hex);
    assert_string_equal(PQgetvalue(res, 0, 13), chain_hex);
    PQclear(res);
}

static void chain_of(uint64_t id, uint8_t out[VG_SHA256_LEN])
{
    char text[24];
    snprintf(text, sizeof(text), "%" PRIu64, id);
    const char *p[] = {text};
    PGresult *res = query("SELECT encode(chain, 'hex') FROM evidence WHERE id = $1", 1, p);
    assert_int_equal(PQntuples(res), 1);
    for (size_t i = 0; i < VG_SHA256_LEN; i++) {
        unsigned v;
        assert_int_equal(sscanf(PQgetvalue(res, 0, 0) + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    PQclear(res);
}

struct info_seen {
    size_t count;
    char status[3][16];
    char sha[VG_SHA256_HEX_LEN + 1];
    uint64_t size, id;
    char error[512];
};

static int collect_info(const struct store_evidence_info *info, void *userdata)
{
    struct info_seen *seen = userdata;
    if (seen->count < 3)
        snprintf(seen->status[seen->count], sizeof(seen->status[0]), "%s", info->status);
    if (strcmp(info->status, "stored") == 0) {
        snprintf(seen->sha, sizeof(seen->sha), "%s", info->sha256_hex);
        seen->size = info->size;
        seen->id = info->id;
    }
    if (info->error[0])
        snprintf(seen->error, sizeof(seen->error), "%s", info->error);
    seen->count++;
    return 0;
}

#define ART_BYTES (300 * 1024 + 17)

static void test_evidence_stored_verified_and_chained(void **state)
{
    (void)state;
    uint8_t *data = malloc(ART_BYTES);
    for (size_t i = 0; i < ART_BYTES; i++)
        data[i] = (uint8_t)(i * 7 + i / 251);
    uint8_t sha[VG_SHA256_LEN];
    vg_sha256(data, ART_BYTES, sha);
    char sha_hex[VG_SHA256_HEX_LEN + 1];
    vg_hex(sha, VG_SHA256_LEN, sha_hex);

    uint64_t coll = new_collection(vg_wall_ms() + 60000);
    assert_string_equal(target_text(coll, "ag-ev-a", "status"), "pending");
    assert_int_equal(count_where("SELECT count(*) FROM audit_log WHERE action = 'evidence.collect'"
                                 " AND subject = 'collection=' || $1",
                                 coll),
                     1);

    /* Three chunks over two batches: nothing in the vault until the last one is in. */
    static struct fx_chunk c[3];
    fx_chunk(&c[0], "ag-ev-a", 10, coll, 10, 0, data, 128 * 1024, NULL, 0);
    fx_chunk(&c[1], "ag-ev-a", 11, coll, 10, 128 * 1024, data + 128 * 1024, 128 * 1024, NULL, 0);
    fx_chunk(&c[2], "ag-ev-a", 12, coll, 10, 256 * 1024, data + 256 * 1024, ART_BYTES - 256 * 1024,
             sha, ART_BYTES);
    struct store_evidence_events ev = {0};
    size_t fresh = 0;
    Vigil__Envelope *first[] = {&c[0].env, &c[1].env};
    assert_int_equal(store_ingest(t.store, first, 2, &fresh, &ev), 0);
    assert_int_equal(fresh, 2);
    assert_int_equal(ev.n, 0);
    assert_int_equal(query_int("SELECT count(*) FROM evidence", 0, NULL), 0);
    Vigil__Envelope *second[] = {&c[2].env};
    assert_int_equal(store_ingest(t.store, second, 1, &fresh, &ev), 0);
    assert_int_equal(ev.n, 1);
    assert_int_equal(ev.items[0].outcome, STORE_EVIDENCE_STORED);
    assert_int_equal(ev.items[0].size, ART_BYTES);
    uint64_t id_a = ev.items[0].evidence_id;
    assert_true(id_a > 0);
    store_evidence_events_clear(&ev);

    assert_string_equal(target_text(coll, "ag-ev-a", "status"), "stored");
    assert_int_equal(count_where("SELECT count(*) FROM evidence WHERE id = $1 AND "
                                 "size = 307217 AND agent_seq = 1 AND node = 'node-a' AND "
                                 "kind = 'file' AND args ->> 'path' = '/var/log/app.log'",
                                 id_a),
                     1);
    struct info_seen seen = {0};
    assert_int_equal(store_evidence_get(t.store, id_a, collect_info, &seen), 0);
    assert_string_equal(seen.sha, sha_hex);
    assert_int_equal(seen.size, ART_BYTES);
    assert_int_equal(store_evidence_get(t.store, 999999, collect_info, &seen), -ENOENT);

    /* Read back in windows that do not line up with the chunks. */
    uint8_t *back = malloc(ART_BYTES);
    size_t done = 0, got = 0;
    while (done < ART_BYTES) {
        assert_int_equal(store_evidence_read(t.store, id_a, done, back + done, 100000, &got), 0);
        assert_true(got > 0);
        done += got;
    }
    assert_int_equal(done, ART_BYTES);
    assert_memory_equal(back, data, ART_BYTES);
    assert_int_equal(store_evidence_read(t.store, id_a, ART_BYTES, back, 1000, &got), 0);
    assert_int_equal(got, 0);
    free(back);

    /* The first row of the vault links to 32 zero bytes. */
    const uint8_t zero[VG_SHA256_LEN] = {0};
    expect_chain_row(id_a, zero);

    /* A resend of a stored chunk is acknowledged as stored, and changes nothing. */
    assert_int_equal(store_ingest(t.store, second, 1, &fresh, &ev), 0);
    assert_int_equal(fresh, 0);
    assert_int_equal(ev.n, 0);

    /* The second agent's one-chunk artifact links to the first. */
    static struct fx_chunk b;
    uint8_t small[] = "one chunk";
    uint8_t small_sha[VG_SHA256_LEN];
    vg_sha256(small, sizeof(small), small_sha);
    fx_chunk(&b, "ag-ev-b", 3, coll, 3, 0, small, sizeof(small), small_sha, sizeof(small));
    Vigil__Envelope *third[] = {&b.env};
    assert_int_equal(store_ingest(t.store, third, 1, &fresh, &ev), 0);
    assert_int_equal(ev.n, 1);
    uint64_t id_b = ev.items[0].evidence_id;
    store_evidence_events_clear(&ev);
    uint8_t chain_a[VG_SHA256_LEN];
    chain_of(id_a, chain_a);
    expect_chain_row(id_b, chain_a);

    memset(&seen, 0, sizeof(seen));
    assert_int_equal(store_evidence_list(t.store, coll, NULL, 100, collect_info, &seen), 0);
    assert_int_equal(seen.count, 2);
    assert_string_equal(seen.status[0], "stored");
    assert_string_equal(seen.status[1], "stored");
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(store_evidence_list(t.store, 0, "node-b", 10, collect_info, &seen), 0);
    assert_int_equal(seen.count, 1);
    assert_int_equal(seen.id, id_b);
    free(data);
}

/* The chunk insert is prepared once per connection: after a reconnect it is prepared again,
 * and an artifact begun on the old connection completes on the new one. */
static void test_evidence_chunks_across_reconnect(void **state)
{
    (void)state;
    uint8_t data[2 * 4096];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 13 + 5);
    uint8_t sha[VG_SHA256_LEN];
    vg_sha256(data, sizeof(data), sha);
    uint64_t coll = new_collection(vg_wall_ms() + 60000);

    static struct fx_chunk c[2];
    fx_chunk(&c[0], "ag-ev-a", 50, coll, 50, 0, data, 4096, NULL, 0);
    fx_chunk(&c[1], "ag-ev-a", 51, coll, 50, 4096, data + 4096, 4096, sha, sizeof(data));
    struct store_evidence_events ev = {0};
    size_t fresh = 0;
    Vigil__Envelope *first[] = {&c[0].env};
    assert_int_equal(store_ingest(t.store, first, 1, &fresh, &ev), 0);
    assert_int_equal(fresh, 1);

    terminate_store_connection();
    Vigil__Envelope *second[] = {&c[1].env};
    assert_int_equal(store_ingest(t.store, second, 1, &fresh, &ev), -EIO);
    assert_int_equal(store_ingest(t.store, second, 1, &fresh, &ev), 0);
    assert_int_equal(fresh, 1);
    struct store_evidence_event *e = find_event(&ev, STORE_EVIDENCE_STORED);
    assert_non_null(e);
    assert_int_equal(e->size, sizeof(data));
    uint64_t id = e->evidence_id;
    store_evidence_events_clear(&ev);

    uint8_t back[sizeof(data)];
    size_t got = 0;
    assert_int_equal(store_evidence_read(t.store, id, 0, back, sizeof(back), &got), 0);
    assert_int_equal(got, sizeof(data));
    assert_memory_equal(back, data, sizeof(data));
}

static void test_evidence_tampered_chunk_rejected(void **state)
{
    (void)state;
    long long vault = query_int("SELECT count(*) FROM evidence", 0, NULL);
    uint64_t coll = new_collection(vg_wall_ms() + 60000);

    /* The agent hashed "original bytes", but the bytes that arrived differ. */
    uint8_t original[] = "original bytes, as read on the node";
    uint8_t tampered[] = "tampered bytes, as read on the node";
    uint8_t sha[VG_SHA256_LEN];
    vg_sha256(original, sizeof(original), sha);
    char agent_hex[VG_SHA256_HEX_LEN + 1], stored_hex[VG_SHA256_HEX_LEN + 1];
    uint8_t stored_sha[VG_SHA256_LEN];
    vg_hex(sha, VG_SHA256_LEN, agent_hex);
    vg_sha256(tampered, sizeof(tampered), stored_sha);
    vg_hex(stored_sha, VG_SHA256_LEN, stored_hex);

    static struct fx_chunk c[2];
    fx_chunk(&c[0], "ag-ev-a", 20, coll, 20, 0, tampered, 10, NULL, 0);
    fx_chunk(&c[1], "ag-ev-a", 21, coll, 20, 10, tampered + 10, sizeof(tampered) - 10, sha,
             sizeof(tampered));
    Vigil__Envelope *batch[] = {&c[0].env, &c[1].env};
    struct store_evidence_events ev = {0};
    size_t fresh = 0;
    assert_int_equal(store_ingest(t.store, batch, 2, &fresh, &ev), 0);
    struct store_evidence_event *e = find_event(&ev, STORE_EVIDENCE_REJECTED);
    assert_non_null(e);
    assert_string_equal(e->reason, "sha256");
    char expected[256];
    snprintf(expected, sizeof(expected), "sha256 mismatch: agent said %s, stored bytes hash to %s",
             agent_hex, stored_hex);
    assert_string_equal(e->detail, expected);
    assert_null(find_event(&ev, STORE_EVIDENCE_STORED));
    store_evidence_events_clear(&ev);

    assert_int_equal(query_int("SELECT count(*) FROM evidence", 0, NULL), vault);
    assert_int_equal(count_where("SELECT count(*) FROM evidence WHERE collection_id = $1", coll),
                     0);
    assert_string_equal(target_text(coll, "ag-ev-a", "status"), "failed");
    assert_string_equal(target_text(coll, "ag-ev-a", "error"), expected);
    assert_int_equal(count_where("SELECT count(*) FROM audit_log WHERE action = "
                                 "'evidence.rejected' AND subject LIKE 'collection=' || $1 || ' %'",
                                 coll),
                     1);

    /* Chunks past the declared size are refused too. */
    fx_chunk(&c[0], "ag-ev-b", 30, coll, 30, 0, original, sizeof(original), sha, 4);
    c[0].chunk.total_size = 4; /* the wire would refuse this; the store must not trust it */
    Vigil__Envelope *over[] = {&c[0].env};
    assert_int_equal(store_ingest(t.store, over, 1, &fresh, &ev), 0);
    e = find_event(&ev, STORE_EVIDENCE_REJECTED);
    assert_non_null(e);
    assert_string_equal(e->reason, "size");
    store_evidence_events_clear(&ev);
    assert_string_equal(target_text(coll, "ag-ev-b", "status"), "failed");
    assert_int_equal(query_int("SELECT count(*) FROM evidence", 0, NULL), vault);
}

static void test_evidence_refusals(void **state)
{
    (void)state;
    struct store_evidence_events ev = {0};
    size_t fresh = 0;
    uint8_t data[] = "bytes";
    uint8_t sha[VG_SHA256_LEN];
    vg_sha256(data, sizeof(data), sha);

    /* A collection never issued to this agent: counted, never stored. */
    static struct fx_chunk c;
    fx_chunk(&c, "ag-ev-a", 40, 987654, 40, 0, data, sizeof(data), sha, sizeof(data));
    Vigil__Envelope *batch[] = {&c.env};
    assert_int_equal(store_ingest(t.store, batch, 1, &fresh, &ev), 0);
    assert_int_equal(fresh, 1); /* handled: acknowledged, so the agent drops it */
    assert_int_equal(ev.n, 1);
    assert_int_equal(ev.items[0].outcome, STORE_EVIDENCE_REJECTED);
    assert_string_equal(ev.items[0].reason, "unknown_collection");
    store_evidence_events_clear(&ev);
    assert_int_equal(
        query_int("SELECT count(*) FROM evidence_chunks WHERE collection_id = 987654", 0, NULL), 0);

    /* Another agent's collection is unknown to this one too. */
    uint64_t coll = new_collection(vg_wall_ms() + 60000);
    fx_chunk(&c, "ag-ev-c", 41, coll, 41, 0, data, sizeof(data), sha, sizeof(data));
    assert_int_equal(store_ingest(t.store, batch, 1, &fresh, &ev), 0);
    assert_string_equal(ev.items[0].reason, "unknown_collection");
    store_evidence_events_clear(&ev);

    /* The agent's refusal fails its target with the agent's words. */
    fx_chunk(&c, "ag-ev-a", 42, coll, 0, 0, NULL, 0, NULL, 0);
    c.chunk.error = "path /etc/shadow is outside the allowed directories";
    assert_int_equal(store_ingest(t.store, batch, 1, &fresh, &ev), 0);
    assert_int_equal(ev.n, 1);
    assert_int_equal(ev.items[0].outcome, STORE_EVIDENCE_FAILED);
    assert_string_equal(ev.items[0].reason, "agent");
    assert_string_equal(ev.items[0].kind, "file");
    store_evidence_events_clear(&ev);
    assert_string_equal(target_text(coll, "ag-ev-a", "status"), "failed");
    assert_string_equal(target_text(coll, "ag-ev-a", "error"),
                        "path /etc/shadow is outside the allowed directories");

    /* Late chunks for a target that is already final: not stored. */
    fx_chunk(&c, "ag-ev-a", 43, coll, 43, 0, data, sizeof(data), sha, sizeof(data));
    assert_int_equal(store_ingest(t.store, batch, 1, &fresh, &ev), 0);
    assert_string_equal(ev.items[0].reason, "not_pending");
    store_evidence_events_clear(&ev);
    assert_int_equal(
        count_where("SELECT count(*) FROM evidence_chunks WHERE collection_id = $1", coll), 0);

    /* An error text that is not UTF-8 is cleaned, not a reason to refuse the batch. */
    fx_chunk(&c, "ag-ev-b", 44, coll, 0, 0, NULL, 0, NULL, 0);
    c.chunk.error = "bad \xc3\x28 bytes";
    assert_int_equal(store_ingest(t.store, batch, 1, &fresh, &ev), 0);
    store_evidence_events_clear(&ev);
    assert_string_equal(target_text(coll, "ag-ev-b", "error"), "bad ?( bytes");

    /* Deadlines: a pending target past its collection's deadline fails as timed out. */
    uint64_t late = new_collection(vg_wall_ms() - 1000);
    assert_int_equal(store_evidence_expire(t.store, &ev), 0);
    assert_int_equal(ev.n, 2);
    assert_int_equal(ev.items[0].outcome, STORE_EVIDENCE_FAILED);
    assert_string_equal(ev.items[0].reason, "timeout");
    assert_int_equal(ev.items[0].collection_id, late);
    store_evidence_events_clear(&ev);
    assert_non_null(strstr(target_text(late, "ag-ev-a", "error"), "timed out"));
    assert_int_equal(store_evidence_expire(t.store, &ev), 0);
    assert_int_equal(ev.n, 0);

    /* Undeliverable: a pending target fails once; then it is not pending any more. */
    uint64_t other = new_collection(vg_wall_ms() + 60000);
    assert_int_equal(store_evidence_target_fail(t.store, other, "ag-ev-a", "agent not connected"),
                     0);
    assert_int_equal(store_evidence_target_fail(t.store, other, "ag-ev-a", "again"), -ENOENT);
    struct info_seen seen = {0};
    assert_int_equal(store_evidence_list(t.store, other, NULL, 10, collect_info, &seen), 0);
    assert_int_equal(seen.count, 2);
    assert_string_equal(seen.status[0], "failed");
    assert_string_equal(seen.status[1], "pending");
    assert_string_equal(seen.error, "agent not connected");

    /* Duplicate argument keys are refused. */
    const struct store_evidence_arg dup[] = {{"path", "/a"}, {"path", "/b"}};
    const struct store_evidence_target target = {"ag-ev-a", "node-a"};
    uint64_t id = 0;
    assert_int_equal(store_evidence_collection_create(t.store, "operator:test", "file", dup, 2,
                                                      vg_wall_ms(), &target, 1, 0, &id),
                     -EINVAL);
}

static void test_evidence_is_append_only(void **state)
{
    (void)state;
    long long vault = query_int("SELECT count(*) FROM evidence", 0, NULL);
    long long chunks = query_int("SELECT count(*) FROM evidence_chunks", 0, NULL);
    assert_true(vault >= 2);
    static const char *const refused[] = {
        "UPDATE evidence SET size = size + 1",
        "UPDATE evidence SET sha256 = decode(repeat('00', 32), 'hex') WHERE id = (SELECT min(id) "
        "FROM evidence)",
        "DELETE FROM evidence",
        "TRUNCATE evidence",
        "UPDATE evidence_chunks SET data = 'x'",
        "DELETE FROM evidence_chunks",
        "TRUNCATE evidence_chunks",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        PGresult *res = PQexec(check_conn(), refused[i]);
        assert_int_equal(PQresultStatus(res), PGRES_FATAL_ERROR);
        if (!strstr(PQresultErrorMessage(res), "append-only"))
            fail_msg("%s: %s", refused[i], PQresultErrorMessage(res));
        PQclear(res);
    }
    assert_int_equal(query_int("SELECT count(*) FROM evidence", 0, NULL), vault);
    assert_int_equal(query_int("SELECT count(*) FROM evidence_chunks", 0, NULL), chunks);
}

/* ---- group ---- */

static int group_setup(void **state)
{
    (void)state;
    struct stat st;
    t.fallback_root_existed = stat(FALLBACK_ROOT, &st) == 0;
    snprintf(t.dir, sizeof(t.dir), "/tmp/vigil-store-XXXXXX");
    snprintf(t.crash_dir, sizeof(t.crash_dir), "/tmp/vigil-store-crash-XXXXXX");
    snprintf(t.broken_dir, sizeof(t.broken_dir), "/tmp/vigil-store-broken-XXXXXX");
    if (!mkdtemp(t.dir) || !mkdtemp(t.crash_dir) || !mkdtemp(t.broken_dir))
        return -1;
    /* Searchable, not listable, by others: the postgres user can reach pgdata inside. */
    if (chmod(t.dir, 0711) < 0 || chmod(t.broken_dir, 0711) < 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    PQfinish(t.check);
    t.check = NULL;
    store_destroy(&t.store);
    const char *dirs[] = {t.dir, t.crash_dir, t.broken_dir};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        if (!dirs[i][0])
            continue;
        kill_cluster(dirs[i]);
        char base[PATH_MAX];
        fallback_base(dirs[i], base, sizeof(base));
        remove_tree(dirs[i]);
        if (base[0])
            remove_tree(base);
    }
    if (!t.fallback_root_existed)
        rmdir(FALLBACK_ROOT); /* only if empty: another cluster may live there */
    return 0;
}

int main(void)
{
    vg_log_init("test_store", VG_LOG_INFO, false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unreachable_url_fails_clearly),
        cmocka_unit_test(test_open_twice_reuses_cluster),
        cmocka_unit_test(test_migrations_refuse_newer_schema),
        cmocka_unit_test(test_ingest_stores_exactly),
        cmocka_unit_test(test_ingest_ignores_duplicates),
        cmocka_unit_test(test_ingest_refuses_invalid_input),
        cmocka_unit_test(test_ingest_after_connection_loss),
        cmocka_unit_test(test_agents_round_trip),
        cmocka_unit_test(test_audit_log_is_append_only),
        cmocka_unit_test(test_operator_ensure_is_idempotent),
        cmocka_unit_test(test_operator_ensure_keeps_revoked),
        cmocka_unit_test(test_evidence_stored_verified_and_chained),
        cmocka_unit_test(test_evidence_chunks_across_reconnect),
        cmocka_unit_test(test_evidence_tampered_chunk_rejected),
        cmocka_unit_test(test_evidence_refusals),
        cmocka_unit_test(test_evidence_is_append_only),
        cmocka_unit_test(test_destroy_stops_cluster),
        cmocka_unit_test(test_killed_coordinator_cluster_is_adopted),
        cmocka_unit_test(test_initdb_failure_explains),
        cmocka_unit_test(test_bad_pg_bin_dir_is_named),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
