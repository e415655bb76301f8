/*
 * PostgreSQL probe module (vigil-probe-postgres.so, libpq).
 *
 * Signals, each with target=<name> added by the agent:
 *   pg.up [bool]                       connected and answering
 *   pg.connections, pg.max_connections [connections]   client backends vs the setting
 *   pg.connections_used_pct [percent]
 *   pg.active [queries]                client backends running a query (this probe excluded)
 *   pg.long_running [queries]          of those, running longer than long_running (5 min)
 *   pg.longest_query_s [s]             the oldest running query's age (0 when none)
 *   pg.replication_lag_s{replica} [s]  on a primary, per standby (pg_stat_replication
 *                                      replay_lag; 0 when caught up and idle)
 *   pg.replication_lag_s [s]           on a standby: now() - pg_last_xact_replay_timestamp()
 *                                      (grows while the primary is idle)
 *   pg.statement_mean_ms{queryid,rank} the 5 slowest statements by mean time, when the
 *                                      pg_stat_statements extension is installed and loaded
 *   pg.error{reason} [bool]            1 when down: refused, timeout, auth, dns, tls, closed,
 *                                      or libpq's message
 * Evidence: pg_stat_activity, lock waits with the blocking pids, replication, and the 10
 * slowest statements by mean time with their text (pg_stat_statements, when installed and
 * loaded), as tab-separated tables (bounded by max_artifact_bytes).
 *
 * Reading other sessions' queries needs the pg_read_all_stats role (or pg_monitor).
 *
 * Bounds: the connection is kept between cycles and made again when it breaks. Connecting
 * uses PQconnectStartParams/PQconnectPoll, queries PQsendQueryParams, and every wait is a
 * poll() on the connection's socket and the agent's cancel_fd against one deadline per
 * cycle. On the deadline the connection is dropped rather than cancelled (PQcancel opens a
 * second, blocking connection); statement_timeout, set for the session to the same bound,
 * makes the server give up on its side too. A host name is resolved synchronously by
 * libpq: use an address (or hostaddr=) to keep slow DNS out of the bound.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "probe.h"
#include "probe_util.h"
#include "timeutil.h"

#define MAX_REPLICAS 32
#define TOP_STATEMENTS 5
#define ARTIFACT_MARGIN 128 /* room kept for the truncation note */

struct pg_probe {
    char *conninfo;
    char *password_file; /* NULL = none */
    char *password_env;  /* NULL = none */
    int64_t timeout_ms;
    int64_t long_running_ms;
    size_t max_artifact_bytes;
    int cancel_fd;
    PGconn *conn; /* NULL until connected; dropped when broken or timed out */
};

/* What went wrong, for pg.error{reason} or an evidence error. */
struct failure {
    char reason[64]; /* short: it becomes a label value */
    char text[256];
    bool cancelled;
};

/* Copies at most size - 1 bytes of the first line of text that may come from the server:
 * what is not printable ASCII becomes '?', so a label stays valid UTF-8 however it is cut. */
static void copy_printable(char *dst, size_t size, const char *src)
{
    size_t n = strnlen(src, size - 1);
    size_t line = strcspn(src, "\r\n");
    if (line < n)
        n = line;
    for (size_t i = 0; i < n; i++)
        dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? src[i] : '?';
    dst[n] = '\0';
}

static void fail(struct failure *f, const char *reason, const char *text)
{
    copy_printable(f->reason, sizeof(f->reason), reason);
    copy_printable(f->text, sizeof(f->text), text ? text : reason);
}

/* ---- Secrets ----------------------------------------------------------------------------- */

static int get_password(const struct pg_probe *self, char **ret, char *err, size_t errlen)
{
    return probe_password(self->password_file, self->password_env, ret, err, errlen);
}

/* ---- Waiting ----------------------------------------------------------------------------- */

static enum wait_result wait_fd(const struct pg_probe *self, int fd, short events, int64_t deadline)
{
    return probe_wait_fd(fd, events, self->cancel_fd, deadline);
}

static void fail_wait(struct failure *f, enum wait_result w)
{
    if (w == WAIT_CANCELLED) {
        f->cancelled = true;
        fail(f, "cancelled", "the agent is stopping");
    } else if (w == WAIT_TIMEOUT) {
        fail(f, "timeout", "no answer within the timeout");
    } else {
        fail(f, "poll", "cannot wait for the server's socket");
    }
}

/* ---- Connection -------------------------------------------------------------------------- */

/* libpq's message, reduced to a stable reason. */
static void classify_message(const char *message, struct failure *f)
{
    static const struct {
        const char *needle, *reason;
    } known[] = {
        {"Connection refused", "refused"},
        {"No such file or directory", "refused"}, /* no unix socket: not listening */
        {"timeout expired", "timeout"},
        {"timed out", "timeout"},
        {"canceling statement due to statement timeout", "timeout"},
        {"password authentication failed", "auth"},
        {"no password supplied", "auth"},
        {"authentication failed", "auth"},
        {"pg_hba.conf", "auth"},
        {"could not translate host name", "dns"},
        {"SSL", "tls"},
        {"server closed the connection", "closed"},
        {"too many clients", "too many connections"},
        {"remaining connection slots", "too many connections"},
        {"the database system is starting up", "starting up"},
        {"the database system is shutting down", "shutting down"},
        {"the database system is in recovery mode", "recovering"},
    };
    const char *text = message && message[0] ? message : "connection failed";

    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (strstr(text, known[i].needle)) {
            fail(f, known[i].reason, text);
            return;
        }
    }
    /* "connection to server at "h" (a), port p failed: FATAL:  database "x" does not
     * exist": the part after the place names the cause. */
    const char *cause = strstr(text, "failed: ");
    cause = cause ? cause + 8 : text;
    if (strncmp(cause, "FATAL:  ", 8) == 0)
        cause += 8;
    fail(f, cause, text);
}

static void disconnect(struct pg_probe *self)
{
    if (self->conn)
        PQfinish(self->conn);
    self->conn = NULL;
}

/* One statement and its result; on a broken connection or the deadline the connection is
 * dropped (self->conn == NULL afterwards tells the caller the server is down). */
static PGresult *query(struct pg_probe *self, int64_t deadline, const char *sql, int nparams,
                       const char *const *params, struct failure *f)
{
    PGconn *conn = self->conn;
    PGresult *first = NULL;
    enum wait_result w;

    if (!PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, 0))
        goto err_connection;
    for (;;) {
        int pending = PQflush(conn);
        if (pending < 0)
            goto err_connection;
        if (pending == 0)
            break;
        w = wait_fd(self, PQsocket(conn), POLLIN | POLLOUT, deadline);
        if (w != WAIT_READY)
            goto err_wait;
        if (!PQconsumeInput(conn))
            goto err_connection;
    }
    for (;;) {
        while (PQisBusy(conn)) {
            w = wait_fd(self, PQsocket(conn), POLLIN, deadline);
            if (w != WAIT_READY)
                goto err_wait;
            if (!PQconsumeInput(conn))
                goto err_connection;
        }
        PGresult *r = PQgetResult(conn);
        if (!r)
            break;
        if (!first)
            first = r;
        else
            PQclear(r);
    }
    if (!first)
        goto err_connection;
    ExecStatusType status = PQresultStatus(first);
    if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK)
        return first;
    classify_message(PQresultErrorMessage(first), f);
    PQclear(first);
    if (PQstatus(conn) != CONNECTION_OK)
        disconnect(self);
    return NULL;

err_wait:
    PQclear(first);
    fail_wait(f, w);
    disconnect(self);
    return NULL;
err_connection:
    PQclear(first);
    classify_message(PQerrorMessage(conn), f);
    disconnect(self);
    return NULL;
}

static int pg_connect(struct pg_probe *self, int64_t deadline, struct failure *f)
{
    char err[256], timeout_s[24], statement_timeout[24];
    char *password = NULL;

    if (self->conn && PQstatus(self->conn) == CONNECTION_OK)
        return 0;
    disconnect(self);
    if (get_password(self, &password, err, sizeof(err)) < 0) {
        fail(f, "password", err);
        return -EINVAL;
    }
    /* libpq's connect_timeout is whole seconds, at least 2; the deadline is the real bound. */
    int64_t seconds = (self->timeout_ms + 999) / 1000;
    snprintf(timeout_s, sizeof(timeout_s), "%lld", (long long)(seconds < 2 ? 2 : seconds));
    /* Later entries win: application_name can be overridden by the conninfo, the timeout
     * and the password file cannot. */
    const char *keys[5] = {"application_name", "dbname", "connect_timeout", NULL, NULL};
    const char *values[5] = {"vigil-agent", self->conninfo, timeout_s, NULL, NULL};
    if (password) {
        keys[3] = "password";
        values[3] = password;
    }
    self->conn = PQconnectStartParams(keys, values, 1);
    probe_password_free(password);
    if (!self->conn) {
        fail(f, "out of memory", NULL);
        return -ENOMEM;
    }
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    if (PQstatus(self->conn) == CONNECTION_BAD)
        st = PGRES_POLLING_FAILED;
    while (st != PGRES_POLLING_OK) {
        if (st == PGRES_POLLING_FAILED) {
            classify_message(PQerrorMessage(self->conn), f);
            disconnect(self);
            return -ECONNREFUSED;
        }
        enum wait_result w = wait_fd(self, PQsocket(self->conn),
                                     st == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline);
        if (w != WAIT_READY) {
            fail_wait(f, w);
            disconnect(self);
            return -ETIMEDOUT;
        }
        st = PQconnectPoll(self->conn);
    }
    if (PQsetnonblocking(self->conn, 1) != 0) {
        classify_message(PQerrorMessage(self->conn), f);
        disconnect(self);
        return -EIO;
    }
    snprintf(statement_timeout, sizeof(statement_timeout), "%lld", (long long)self->timeout_ms);
    const char *params[] = {statement_timeout};
    PGresult *r =
        query(self, deadline, "SELECT set_config('statement_timeout', $1, false)", 1, params, f);
    if (!r) {
        disconnect(self);
        return -EIO;
    }
    PQclear(r);
    return 0;
}

/* ---- Values ------------------------------------------------------------------------------ */

static bool get_double(const PGresult *r, int row, int col, double *ret)
{
    if (row >= PQntuples(r) || col >= PQnfields(r) || PQgetisnull(r, row, col))
        return false;
    const char *text = PQgetvalue(r, row, col);
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v))
        return false;
    *ret = v;
    return true;
}

static const char *get_text(const PGresult *r, int row, int col)
{
    if (row >= PQntuples(r) || col >= PQnfields(r) || PQgetisnull(r, row, col))
        return NULL;
    return PQgetvalue(r, row, col);
}

/* ---- Cycle ------------------------------------------------------------------------------- */

enum overview_col {
    COL_CONNECTIONS,
    COL_MAX_CONNECTIONS,
    COL_ACTIVE,
    COL_LONG_RUNNING,
    COL_LONGEST_S,
    COL_IN_RECOVERY,
    COL_PGSS_SCHEMA,
};

static const char OVERVIEW_SQL[] =
    "SELECT count(*),"
    "       current_setting('max_connections')::bigint,"
    "       count(*) FILTER (WHERE state = 'active' AND pid <> pg_backend_pid()),"
    "       count(*) FILTER (WHERE state = 'active' AND pid <> pg_backend_pid()"
    "                          AND now() - query_start > $1::bigint * interval '1 millisecond'),"
    "       coalesce(max(extract(epoch FROM now() - query_start))"
    "                  FILTER (WHERE state = 'active' AND pid <> pg_backend_pid()), 0),"
    "       pg_is_in_recovery(),"
    "       (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
    "         WHERE e.extname = 'pg_stat_statements')"
    "  FROM pg_stat_activity WHERE backend_type = 'client backend'";

static const char PRIMARY_LAG_SQL[] =
    "SELECT coalesce(nullif(application_name, ''), host(client_addr), 'pid ' || pid),"
    "       coalesce(extract(epoch FROM replay_lag), 0)"
    "  FROM pg_stat_replication ORDER BY 1 LIMIT $1::int";

static const char STANDBY_LAG_SQL[] =
    "SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp())";

static void emit(const struct probe_sink *sink, const char *name, double value, const char *unit)
{
    sink->emit(sink->sink, name, value, unit, NULL, 0);
}

static void emit_replication(struct pg_probe *self, int64_t deadline, bool in_recovery,
                             const struct probe_sink *sink, struct failure *f)
{
    char limit[16];
    snprintf(limit, sizeof(limit), "%d", MAX_REPLICAS);
    const char *params[] = {limit};
    PGresult *r = in_recovery ? query(self, deadline, STANDBY_LAG_SQL, 0, NULL, f)
                              : query(self, deadline, PRIMARY_LAG_SQL, 1, params, f);
    if (!r)
        return;
    double lag;
    if (in_recovery) {
        if (get_double(r, 0, 0, &lag))
            emit(sink, "pg.replication_lag_s", lag, "s");
    } else {
        for (int row = 0; row < PQntuples(r) && row < MAX_REPLICAS; row++) {
            char replica[64];
            const char *name = get_text(r, row, 0);
            if (!name || !get_double(r, row, 1, &lag))
                continue;
            copy_printable(replica, sizeof(replica), name);
            struct probe_label label = {"replica", replica};
            sink->emit(sink->sink, "pg.replication_lag_s", lag, "s", &label, 1);
        }
    }
    PQclear(r);
}

/* The slowest statements by mean time; silently nothing when the extension is installed but
 * not loaded (shared_preload_libraries) or not readable. */
static void emit_statements(struct pg_probe *self, int64_t deadline, const char *schema,
                            const struct probe_sink *sink, struct failure *f)
{
    char *ident = PQescapeIdentifier(self->conn, schema, strlen(schema));
    char sql[512];
    if (!ident)
        return;
    /* The column was renamed in PostgreSQL 13. */
    const char *column = PQserverVersion(self->conn) >= 130000 ? "mean_exec_time" : "mean_time";
    int n = snprintf(sql, sizeof(sql),
                     "SELECT queryid::text, %s FROM %s.pg_stat_statements"
                     " WHERE queryid IS NOT NULL ORDER BY %s DESC LIMIT %d",
                     column, ident, column, TOP_STATEMENTS);
    PQfreemem(ident);
    if (n < 0 || (size_t)n >= sizeof(sql))
        return;
    PGresult *r = query(self, deadline, sql, 0, NULL, f);
    if (!r)
        return;
    for (int row = 0; row < PQntuples(r) && row < TOP_STATEMENTS; row++) {
        char queryid[32], rank[8];
        const char *id = get_text(r, row, 0);
        double mean_ms;
        if (!id || !get_double(r, row, 1, &mean_ms))
            continue;
        copy_printable(queryid, sizeof(queryid), id);
        snprintf(rank, sizeof(rank), "%d", row + 1);
        struct probe_label labels[] = {{"queryid", queryid}, {"rank", rank}};
        sink->emit(sink->sink, "pg.statement_mean_ms", mean_ms, "ms", labels, 2);
    }
    PQclear(r);
}

static void pg_run(void *state, const struct probe_sink *sink)
{
    struct pg_probe *self = state;
    struct failure f = {0};
    int64_t deadline = vg_mono_ms() + self->timeout_ms;
    char long_running[24];
    double v[COL_IN_RECOVERY];

    snprintf(long_running, sizeof(long_running), "%lld", (long long)self->long_running_ms);
    const char *params[] = {long_running};
    bool reused = self->conn != NULL;
    if (pg_connect(self, deadline, &f) < 0)
        goto down;
    PGresult *r = query(self, deadline, OVERVIEW_SQL, 1, params, &f);
    /* A kept connection may have died with a server restart since the last cycle: one more
     * try on a new one before calling the server down. */
    if (!r && reused && !self->conn && !f.cancelled && strcmp(f.reason, "timeout") != 0) {
        f = (struct failure){0};
        if (pg_connect(self, deadline, &f) < 0)
            goto down;
        r = query(self, deadline, OVERVIEW_SQL, 1, params, &f);
    }
    if (!r) {
        disconnect(self); /* answering nothing useful counts as down; start afresh */
        goto down;
    }
    bool complete = PQntuples(r) == 1;
    for (int col = 0; col < COL_IN_RECOVERY && complete; col++)
        complete = get_double(r, 0, col, &v[col]);
    const char *recovery = get_text(r, 0, COL_IN_RECOVERY);
    const char *schema = get_text(r, 0, COL_PGSS_SCHEMA);
    char pgss_schema[128] = "";
    if (schema)
        copy_printable(pgss_schema, sizeof(pgss_schema), schema);
    bool in_recovery = recovery && recovery[0] == 't';
    PQclear(r);
    if (!complete) {
        fail(&f, "protocol", "unexpected answer to the overview query");
        disconnect(self);
        goto down;
    }

    emit(sink, "pg.up", 1, "bool");
    emit(sink, "pg.connections", v[COL_CONNECTIONS], "connections");
    emit(sink, "pg.max_connections", v[COL_MAX_CONNECTIONS], "connections");
    if (v[COL_MAX_CONNECTIONS] > 0)
        emit(sink, "pg.connections_used_pct", 100.0 * v[COL_CONNECTIONS] / v[COL_MAX_CONNECTIONS],
             "percent");
    emit(sink, "pg.active", v[COL_ACTIVE], "queries");
    emit(sink, "pg.long_running", v[COL_LONG_RUNNING], "queries");
    emit(sink, "pg.longest_query_s", v[COL_LONGEST_S], "s");

    /* The rest is optional: a failure here leaves pg.up as it is unless the connection
     * broke, which the next cycle reports. */
    emit_replication(self, deadline, in_recovery, sink, &f);
    if (self->conn && pgss_schema[0])
        emit_statements(self, deadline, pgss_schema, sink, &f);
    return;

down:
    if (f.cancelled)
        return;
    emit(sink, "pg.up", 0, "bool");
    struct probe_label label = {"reason", f.reason[0] ? f.reason : "error"};
    sink->emit(sink->sink, "pg.error", 1, "bool", &label, 1);
}

/* ---- Evidence ---------------------------------------------------------------------------- */

/* The artifact being written, bounded: past the bound the rest is cut and a note says so. */
struct artifact {
    const struct artifact_writer *out;
    size_t written, max;
    bool truncated;
    int err;
};

static void art_write(struct artifact *a, const char *data, size_t len)
{
    if (a->err || a->truncated)
        return;
    if (len > a->max - a->written) {
        len = a->max - a->written;
        a->truncated = true;
    }
    if (len) {
        a->err = a->out->write(a->out->w, data, len);
        a->written += len;
    }
}

static void art_printf(struct artifact *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void art_printf(struct artifact *a, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n > 0)
        art_write(a, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/* A value on one line of a tab-separated table: tabs and line breaks become spaces. */
static void art_field(struct artifact *a, const char *value)
{
    char chunk[256];
    size_t n = 0;
    for (const char *p = value; *p; p++) {
        chunk[n++] = (*p == '\t' || *p == '\n' || *p == '\r') ? ' ' : *p;
        if (n == sizeof(chunk)) {
            art_write(a, chunk, n);
            n = 0;
        }
    }
    art_write(a, chunk, n);
}

static void art_table(struct artifact *a, const PGresult *r)
{
    int rows = PQntuples(r), cols = PQnfields(r);
    for (int c = 0; c < cols; c++) {
        art_field(a, PQfname(r, c));
        art_write(a, c + 1 < cols ? "\t" : "\n", 1);
    }
    for (int row = 0; row < rows; row++) {
        for (int c = 0; c < cols; c++) {
            if (!PQgetisnull(r, row, c))
                art_field(a, PQgetvalue(r, row, c));
            art_write(a, c + 1 < cols ? "\t" : "\n", 1);
        }
    }
    art_printf(a, "(%d row%s)\n", rows, rows == 1 ? "" : "s");
}

/* One section: its title, then the table or the error. False once the connection is gone. */
static bool art_section(struct artifact *a, struct pg_probe *self, int64_t deadline,
                        const char *title, const char *sql)
{
    struct failure f = {0};
    art_printf(a, "\n## %s\n", title);
    if (!self->conn) {
        art_printf(a, "error: not connected any more\n");
        return false;
    }
    PGresult *r = query(self, deadline, sql, 0, NULL, &f);
    if (!r) {
        art_printf(a, "error: %s\n", f.text);
        return self->conn != NULL;
    }
    art_table(a, r);
    PQclear(r);
    return true;
}

static const char ACTIVITY_SQL[] =
    "SELECT pid, usename AS user, application_name AS application, host(client_addr) AS client,"
    "       backend_type, state, wait_event_type || ':' || wait_event AS wait,"
    "       round(extract(epoch FROM now() - xact_start)::numeric, 1) AS xact_s,"
    "       round(extract(epoch FROM now() - query_start)::numeric, 1) AS query_s,"
    "       left(query, 2000) AS query"
    "  FROM pg_stat_activity"
    " ORDER BY (state = 'active') IS TRUE DESC, query_start NULLS LAST LIMIT 500";

static const char LOCK_WAITS_SQL[] =
    "SELECT l.pid, pg_blocking_pids(l.pid) AS blocked_by, l.locktype, l.mode,"
    "       l.relation::regclass AS relation,"
    "       round(extract(epoch FROM now() - a.query_start)::numeric, 1) AS query_s,"
    "       left(a.query, 2000) AS query"
    "  FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE NOT l.granted ORDER BY a.query_start NULLS LAST LIMIT 200";

static const char RECOVERY_SQL[] =
    "SELECT pg_is_in_recovery() AS in_recovery,"
    "       CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() END AS receive_lsn,"
    "       CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() END AS replay_lsn,"
    "       round(extract(epoch FROM now() - pg_last_xact_replay_timestamp())::numeric, 1)"
    "         AS replay_lag_s";

static const char STANDBYS_SQL[] =
    "SELECT application_name, host(client_addr) AS client, state, sync_state, sent_lsn,"
    "       write_lsn, flush_lsn, replay_lsn, extract(epoch FROM write_lag) AS write_lag_s,"
    "       extract(epoch FROM flush_lag) AS flush_lag_s,"
    "       extract(epoch FROM replay_lag) AS replay_lag_s"
    "  FROM pg_stat_replication ORDER BY application_name LIMIT 64";

static const char SLOTS_SQL[] =
    "SELECT slot_name, slot_type, active, restart_lsn,"
    "       CASE WHEN pg_is_in_recovery() THEN NULL"
    "            ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn) END AS retained_bytes"
    "  FROM pg_replication_slots ORDER BY slot_name LIMIT 64";

static const char WAL_RECEIVER_SQL[] =
    "SELECT status, sender_host, sender_port, slot_name, last_msg_receipt_time"
    "  FROM pg_stat_wal_receiver";

#define EVIDENCE_STATEMENTS 10
#define STATEMENT_TEXT_MAX 500 /* bytes of each statement's text */

static const char PGSS_SCHEMA_SQL[] =
    "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
    " WHERE e.extname = 'pg_stat_statements'";

/* A value cut to at most max bytes, never inside a UTF-8 sequence, on one line. */
static void art_field_cut(struct artifact *a, const char *value, size_t max)
{
    char buf[STATEMENT_TEXT_MAX + 1];
    if (max > STATEMENT_TEXT_MAX)
        max = STATEMENT_TEXT_MAX;
    size_t len = strnlen(value, max + 1);
    if (len > max) {
        len = max;
        while (len > 0 && ((unsigned char)value[len] & 0xc0) == 0x80)
            len--; /* value[len] continues a character that started before the cut */
    }
    memcpy(buf, value, len);
    buf[len] = '\0';
    art_field(a, buf);
}

/*
 * The slowest statements by mean time with their text, from pg_stat_statements; one line
 * saying why not when the extension is not installed in this database or cannot be read
 * (not in shared_preload_libraries: the server's message says so). False once the connection
 * is gone.
 */
static bool art_statements(struct artifact *a, struct pg_probe *self, int64_t deadline)
{
    struct failure f = {0};
    char sql[512];

    art_printf(a, "\n## slowest statements by mean time (pg_stat_statements, top %d)\n",
               EVIDENCE_STATEMENTS);
    if (!self->conn) {
        art_printf(a, "error: not connected any more\n");
        return false;
    }
    PGresult *r = query(self, deadline, PGSS_SCHEMA_SQL, 0, NULL, &f);
    if (!r) {
        art_printf(a, "error: %s\n", f.text);
        return self->conn != NULL;
    }
    char *ident =
        PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)
            ? PQescapeIdentifier(self->conn, PQgetvalue(r, 0, 0), strlen(PQgetvalue(r, 0, 0)))
            : NULL;
    bool installed = PQntuples(r) == 1;
    PQclear(r);
    if (!installed) {
        art_printf(a, "pg_stat_statements is not installed in database %s\n", PQdb(self->conn));
        return true;
    }
    if (!ident) {
        art_printf(a, "error: out of memory\n");
        return true;
    }
    /* The columns were renamed in PostgreSQL 13. */
    bool v13 = PQserverVersion(self->conn) >= 130000;
    int n = snprintf(sql, sizeof(sql),
                     "SELECT queryid, calls, round(%s::numeric, 3) AS mean_ms,"
                     "       round(%s::numeric, 3) AS total_ms, rows, left(query, %d) AS query"
                     "  FROM %s.pg_stat_statements ORDER BY %s DESC LIMIT %d",
                     v13 ? "mean_exec_time" : "mean_time", v13 ? "total_exec_time" : "total_time",
                     STATEMENT_TEXT_MAX, ident, v13 ? "mean_exec_time" : "mean_time",
                     EVIDENCE_STATEMENTS);
    PQfreemem(ident);
    if (n < 0 || (size_t)n >= sizeof(sql)) {
        art_printf(a, "error: the extension's schema name is too long\n");
        return true;
    }
    r = query(self, deadline, sql, 0, NULL, &f);
    if (!r) {
        /* Installed but not in shared_preload_libraries: "pg_stat_statements must be loaded
         * via shared_preload_libraries". */
        art_printf(a, "pg_stat_statements is installed but cannot be read (not loaded?): %s\n",
                   f.text);
        return self->conn != NULL;
    }
    int rows = PQntuples(r), cols = PQnfields(r);
    for (int c = 0; c < cols; c++) {
        art_field(a, PQfname(r, c));
        art_write(a, c + 1 < cols ? "\t" : "\n", 1);
    }
    for (int row = 0; row < rows; row++) {
        for (int c = 0; c < cols; c++) {
            if (!PQgetisnull(r, row, c))
                art_field_cut(a, PQgetvalue(r, row, c), STATEMENT_TEXT_MAX);
            art_write(a, c + 1 < cols ? "\t" : "\n", 1);
        }
    }
    art_printf(a, "(%d row%s)\n", rows, rows == 1 ? "" : "s");
    PQclear(r);
    return true;
}

static int pg_evidence(void *state, const struct artifact_writer *out, char *err, size_t errlen)
{
    struct pg_probe *self = state;
    struct failure f = {0};
    int64_t deadline = vg_mono_ms() + self->timeout_ms;
    size_t max = self->max_artifact_bytes;
    struct artifact a = {.out = out, .max = max > ARTIFACT_MARGIN ? max - ARTIFACT_MARGIN : max};

    if (pg_connect(self, deadline, &f) < 0) {
        snprintf(err, errlen, "%s", f.text);
        if (f.cancelled)
            return -ECANCELED;
        return strcmp(f.reason, "timeout") == 0 ? -ETIMEDOUT : -ECONNREFUSED;
    }
    art_printf(&a, "# PostgreSQL %d, evidence by vigil-agent\n", PQserverVersion(self->conn));
    bool ok =
        art_section(&a, self, deadline, "pg_stat_activity", ACTIVITY_SQL) &&
        art_section(&a, self, deadline, "lock waits (blocked_by: pids holding the lock)",
                    LOCK_WAITS_SQL) &&
        art_section(&a, self, deadline, "replication: this server", RECOVERY_SQL) &&
        art_section(&a, self, deadline, "replication: standbys of this server", STANDBYS_SQL) &&
        art_section(&a, self, deadline, "replication: slots", SLOTS_SQL) &&
        art_section(&a, self, deadline, "replication: WAL receiver", WAL_RECEIVER_SQL) &&
        art_statements(&a, self, deadline);
    (void)ok; /* a section that failed says so in the artifact; what came before is kept */
    if (a.truncated && !a.err) {
        char note[96];
        int n = snprintf(note, sizeof(note), "\n[truncated at %zu bytes]\n", a.written);
        a.err = out->write(out->w, note, (size_t)n);
    }
    disconnect(self);
    if (a.err < 0) {
        snprintf(err, errlen, "cannot write the artifact: %s", strerror(-a.err));
        return a.err;
    }
    return 0;
}

/* ---- Lifecycle --------------------------------------------------------------------------- */

static void pg_close(void *state)
{
    struct pg_probe *self = state;
    if (!self)
        return;
    disconnect(self);
    free(self->conninfo);
    free(self->password_file);
    free(self->password_env);
    free(self);
}

static void *pg_open(const struct probe_target_config *target, const struct probe_options *opt,
                     char *err, size_t errlen)
{
    char *parse_error = NULL;

    /* A malformed conninfo is a configuration error, found now rather than every cycle. */
    PQconninfoOption *parsed = PQconninfoParse(target->address, &parse_error);
    if (!parsed) {
        snprintf(err, errlen, "conninfo: %s", parse_error ? parse_error : "out of memory");
        err[strcspn(err, "\n")] = '\0';
        PQfreemem(parse_error);
        return NULL;
    }
    PQconninfoFree(parsed);

    struct pg_probe *self = calloc(1, sizeof(*self));
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->timeout_ms = opt->timeout_ms;
    self->long_running_ms = opt->long_running_ms;
    self->max_artifact_bytes = opt->max_artifact_bytes;
    self->cancel_fd = opt->cancel_fd;
    if (!(self->conninfo = strdup(target->address)))
        goto err_oom;
    if (probe_password_setup(target, &self->password_file, &self->password_env, err, errlen) < 0)
        goto err_close;
    return self;

err_oom:
    snprintf(err, errlen, "out of memory");
err_close:
    pg_close(self);
    return NULL;
}

__attribute__((visibility("default"))) const struct probe_module vigil_probe_module = {
    .abi = PROBE_ABI_VERSION,
    .kind = "postgres",
    .open = pg_open,
    .run = pg_run,
    .evidence = pg_evidence,
    .close = pg_close,
};
