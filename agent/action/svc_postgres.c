/*
 * The postgres service actions of vigil-agent-action (libpq; the request is in svc.h).
 *
 * Ops (key "op"):
 *   terminate   pg_terminate_backend for every client backend whose current query has been
 *               active for more than arg.older_than (a duration: "5m"), optionally only in
 *               arg.database; never this session. One account line per backend terminated.
 *   analyze     ANALYZE in target's database, or in arg.database when given.
 *   reindex     REINDEX DATABASE arg.database (connected to that database).
 *   statement   the catalog's SQL (key statement, $1..$N bound to bind.1..bind.N as text) in
 *               one transaction; no SQL text ever comes from an argument.
 *
 * Bounds: one deadline, timeout_ms after the start, for everything. Connecting uses
 * PQconnectStartParams/PQconnectPoll, statements PQsendQueryParams, and every wait is a poll()
 * on the connection's socket against that deadline. On the deadline the connection is
 * dropped; statement_timeout, set for the session to the time left, makes the server give up
 * on its side too. A host name is resolved synchronously by libpq: use an address (or
 * hostaddr=) to keep slow DNS out of the bound.
 *
 * Terminate reads the candidates first and then signals each with a statement of its own that
 * checks again that it is the same backend running the same query (pid, backend_start,
 * query_start): one statement for all would leave no account of the backends it had already
 * signalled when a later one fails (permission denied), and a backend that moved on to a new
 * query in between is left alone.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "../probe/probe_util.h"
#include "config.h"
#include "svc.h"
#include "timeutil.h"

#define APPLICATION_NAME "vigil-agent-action"
#define BINDS_MAX SVC_REQUEST_KEYS_MAX
#define QUERY_TEXT_MAX 200 /* bytes of a terminated backend's query in the account */

struct pg_action {
    const struct svc_request *req;
    FILE *out;
    char *err;
    size_t errlen;
    PGconn *conn;     /* NULL until connected; dropped when broken or out of time */
    int64_t deadline; /* vg_mono_ms */
    int64_t timeout_ms;
};

/* ---- Errors ------------------------------------------------------------------------------ */

/* Copies text as one line into dst: runs of line breaks, tabs and spaces become one space,
 * other control characters '?', and the ends are trimmed. */
static void one_line(char *dst, size_t size, const char *src)
{
    size_t n = 0;
    bool space = false;
    for (const char *p = src ? src : ""; *p && n + 1 < size; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            space = n > 0;
            continue;
        }
        if (space && n + 2 < size)
            dst[n++] = ' ';
        space = false;
        dst[n++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    dst[n] = '\0';
}

static int fail(struct pg_action *a, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct pg_action *a, int code, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    one_line(a->err, a->errlen, text);
    return code;
}

/* The server's error of result r in one line: severity, message, detail. */
static int fail_result(struct pg_action *a, const PGresult *r)
{
    const char *severity = PQresultErrorField(r, PG_DIAG_SEVERITY);
    const char *primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    const char *detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
    if (!primary)
        return fail(a, SVC_EXIT_FAILED, "%s", PQresultErrorMessage(r));
    return fail(a, SVC_EXIT_FAILED, "%s: %s%s%s%s", severity ? severity : "ERROR", primary,
                detail ? " (" : "", detail ? detail : "", detail ? ")" : "");
}

/* A required key of the request; NULL with the error set when it is absent. */
static const char *need(struct pg_action *a, const char *key)
{
    const char *value = svc_get(a->req, key);
    if (!value)
        fail(a, SVC_EXIT_BAD_REQUEST, "the request has no %s", key);
    return value;
}

/* An optional argument: NULL when absent or empty. */
static const char *optional(const struct pg_action *a, const char *key)
{
    const char *value = svc_get(a->req, key);
    return value && value[0] ? value : NULL;
}

/* ---- Connection and statements ----------------------------------------------------------- */

static void disconnect(struct pg_action *a)
{
    if (a->conn)
        PQfinish(a->conn);
    a->conn = NULL;
}

static int fail_wait(struct pg_action *a, enum wait_result w, const char *what)
{
    disconnect(a);
    if (w == WAIT_TIMEOUT)
        return fail(a, SVC_EXIT_UNREACHABLE, "no answer within %" PRId64 " ms %s", a->timeout_ms,
                    what);
    return fail(a, SVC_EXIT_UNREACHABLE, "cannot wait for the server's socket: %s",
                strerror(errno));
}

static int fail_connection(struct pg_action *a, const char *what)
{
    int r = fail(a, SVC_EXIT_UNREACHABLE, "%s: %s", what, PQerrorMessage(a->conn));
    disconnect(a);
    return r;
}

/*
 * One statement with text parameters; *ret the result (PGRES_COMMAND_OK or PGRES_TUPLES_OK),
 * which the caller clears. SVC_EXIT_FAILED with the server's message when it refused;
 * SVC_EXIT_UNREACHABLE when the connection broke or the deadline passed (the connection is
 * dropped then: the statement's outcome is unknown).
 */
static int query(struct pg_action *a, const char *sql, int nparams, const char *const *params,
                 PGresult **ret)
{
    PGconn *conn = a->conn;
    PGresult *first = NULL;
    enum wait_result w;

    *ret = NULL;
    if (!PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, 0))
        return fail_connection(a, "cannot send the statement");
    for (;;) {
        int pending = PQflush(conn);
        if (pending < 0)
            return fail_connection(a, "cannot send the statement");
        if (pending == 0)
            break;
        w = probe_wait_fd(PQsocket(conn), POLLIN | POLLOUT, -1, a->deadline);
        if (w != WAIT_READY)
            return fail_wait(a, w, "(sending the statement)");
        if (!PQconsumeInput(conn))
            return fail_connection(a, "connection lost");
    }
    for (;;) {
        while (PQisBusy(conn)) {
            w = probe_wait_fd(PQsocket(conn), POLLIN, -1, a->deadline);
            if (w != WAIT_READY) {
                PQclear(first);
                return fail_wait(a, w, "(the statement's outcome is unknown)");
            }
            if (!PQconsumeInput(conn)) {
                PQclear(first);
                return fail_connection(a, "connection lost");
            }
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
        return fail_connection(a, "no result");
    ExecStatusType status = PQresultStatus(first);
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
        *ret = first;
        return SVC_EXIT_OK;
    }
    int code = fail_result(a, first);
    /* statement_timeout is the time left: its cancel (query_canceled, near the deadline) is
     * this action running out of time, as when the deadline passes here first. */
    const char *sqlstate = PQresultErrorField(first, PG_DIAG_SQLSTATE);
    if (sqlstate && strcmp(sqlstate, "57014") == 0 && a->deadline - vg_mono_ms() < 1000)
        code = fail(a, SVC_EXIT_UNREACHABLE,
                    "no answer within %" PRId64 " ms (statement_timeout: the server cancelled it)",
                    a->timeout_ms);
    PQclear(first);
    if (PQstatus(conn) != CONNECTION_OK) {
        disconnect(a);
        code = SVC_EXIT_UNREACHABLE; /* e.g. the server terminated this session */
    }
    return code;
}

/* A statement whose result is of no interest. */
static int run_sql(struct pg_action *a, const char *sql)
{
    PGresult *r;
    int code = query(a, sql, 0, NULL, &r);
    PQclear(r);
    return code;
}

/* Connects to target.address (in database when not NULL) with target.password_file, and sets
 * statement_timeout to the time left. */
static int pg_connect(struct pg_action *a, const char *database)
{
    char err[512], connect_timeout[24], statement_timeout[24];
    char *password = NULL, *parse_error = NULL;
    const char *conninfo = need(a, "target.address");

    if (!conninfo)
        return SVC_EXIT_BAD_REQUEST;
    /* A malformed conninfo is the request's fault, not the server's. */
    PQconninfoOption *parsed = PQconninfoParse(conninfo, &parse_error);
    if (!parsed) {
        fail(a, SVC_EXIT_BAD_REQUEST, "target.address: %s",
             parse_error ? parse_error : "out of memory");
        PQfreemem(parse_error);
        return SVC_EXIT_BAD_REQUEST;
    }
    PQconninfoFree(parsed);
    if (probe_password(svc_get(a->req, "target.password_file"), NULL, &password, err, sizeof(err)) <
        0)
        return fail(a, SVC_EXIT_FAILED, "%s", err);

    /* libpq's connect_timeout is whole seconds, at least 2; the deadline is the real bound. */
    int64_t seconds = (a->timeout_ms + 999) / 1000;
    snprintf(connect_timeout, sizeof(connect_timeout), "%" PRId64, seconds < 2 ? 2 : seconds);
    /* Later entries win, and only the first dbname is expanded as a conninfo: a second one
     * names the database. application_name comes after the conninfo so that sessions of
     * actions are always recognisable as such in pg_stat_activity and the server's log. */
    const char *keys[6], *values[6];
    int n = 0;
    keys[n] = "dbname", values[n++] = conninfo;
    if (database)
        keys[n] = "dbname", values[n++] = database;
    keys[n] = "application_name", values[n++] = APPLICATION_NAME;
    keys[n] = "connect_timeout", values[n++] = connect_timeout;
    if (password)
        keys[n] = "password", values[n++] = password;
    keys[n] = NULL, values[n] = NULL;
    a->conn = PQconnectStartParams(keys, values, 1);
    probe_password_free(password);
    if (!a->conn)
        return fail(a, SVC_EXIT_FAILED, "out of memory");

    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    if (PQstatus(a->conn) == CONNECTION_BAD)
        st = PGRES_POLLING_FAILED;
    while (st != PGRES_POLLING_OK) {
        if (st == PGRES_POLLING_FAILED)
            return fail_connection(a, "cannot connect");
        enum wait_result w = probe_wait_fd(
            PQsocket(a->conn), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, -1, a->deadline);
        if (w != WAIT_READY)
            return fail_wait(a, w, "(connecting)");
        st = PQconnectPoll(a->conn);
    }
    if (PQsetnonblocking(a->conn, 1) != 0)
        return fail_connection(a, "cannot use the connection");

    int64_t left = a->deadline - vg_mono_ms();
    snprintf(statement_timeout, sizeof(statement_timeout), "%" PRId64, left > 1 ? left : 1);
    const char *params[] = {statement_timeout};
    PGresult *r;
    int code = query(a, "SELECT set_config('statement_timeout', $1, false)", 1, params, &r);
    PQclear(r);
    return code;
}

/* ---- Account ----------------------------------------------------------------------------- */

/* Writes at most max bytes of text from the server on one line: tabs, line breaks and other
 * control characters become spaces, and a cut never splits a UTF-8 sequence. */
static void put_text(FILE *out, const char *text, size_t max)
{
    size_t len = strnlen(text, max + 1);
    if (len > max) {
        len = max;
        while (len > 0 && ((unsigned char)text[len] & 0xc0) == 0x80)
            len--; /* text[len] continues a character that started before the cut */
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        fputc(c < 0x20 || c == 0x7f ? ' ' : c, out);
    }
}

static const char *plural(long long n, const char *word, const char *words)
{
    return n == 1 ? word : words;
}

static double seconds_since(int64_t start_ms)
{
    return (double)(vg_mono_ms() - start_ms) / 1000.0;
}

/* ---- terminate --------------------------------------------------------------------------- */

enum candidate_col {
    CAND_PID,
    CAND_USER,
    CAND_DATABASE,
    CAND_AGE_S,
    CAND_QUERY,
    CAND_BACKEND_START,
    CAND_QUERY_START,
};

static const char CANDIDATES_SQL[] =
    "SELECT pid, coalesce(usename, ''), coalesce(datname, ''),"
    "       floor(extract(epoch FROM now() - query_start))::bigint,"
    "       left(coalesce(query, ''), $3::int), backend_start::text, query_start::text"
    "  FROM pg_stat_activity"
    " WHERE backend_type = 'client backend' AND state = 'active' AND pid <> pg_backend_pid()"
    "   AND query_start < now() - $1::bigint * interval '1 millisecond'"
    "   AND ($2::text IS NULL OR datname = $2::text)"
    " ORDER BY query_start";

/* Signals the backend only if it is still the same one running the same query. */
static const char TERMINATE_SQL[] = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                                    " WHERE pid = $1::int AND backend_start = $2::timestamptz"
                                    "   AND query_start = $3::timestamptz AND state = 'active'";

static int op_terminate(struct pg_action *a)
{
    char threshold_ms[24], text_max[16], first_error[512] = "";
    int64_t older_than_ms;
    const char *older_than = need(a, "arg.older_than");
    const char *database = optional(a, "arg.database");

    if (!older_than)
        return SVC_EXIT_BAD_REQUEST;
    if (vg_parse_duration_ms(older_than, &older_than_ms) < 0 || older_than_ms <= 0)
        return fail(a, SVC_EXIT_BAD_REQUEST,
                    "arg.older_than: expected a duration such as 30s or 5m, got \"%s\"",
                    older_than);
    int code = pg_connect(a, NULL);
    if (code != SVC_EXIT_OK)
        return code;

    snprintf(threshold_ms, sizeof(threshold_ms), "%" PRId64, older_than_ms);
    snprintf(text_max, sizeof(text_max), "%d", QUERY_TEXT_MAX);
    const char *params[] = {threshold_ms, database, text_max};
    PGresult *candidates;
    code = query(a, CANDIDATES_SQL, 3, params, &candidates);
    if (code != SVC_EXIT_OK)
        return code;
    int rows = PQntuples(candidates);
    fprintf(a->out, "%d client %s active for more than %s%s%s\n", rows,
            plural(rows, "backend", "backends"), older_than, database ? " in database " : "",
            database ? database : "");

    long long terminated = 0, failed = 0;
    for (int row = 0; row < rows && a->conn; row++) {
        const char *pid = PQgetvalue(candidates, row, CAND_PID);
        const char *identity[] = {pid, PQgetvalue(candidates, row, CAND_BACKEND_START),
                                  PQgetvalue(candidates, row, CAND_QUERY_START)};
        PGresult *r;
        code = query(a, TERMINATE_SQL, 3, identity, &r);
        if (code != SVC_EXIT_OK) {
            fprintf(a->out, "not terminated pid=%s: %s\n", pid, a->err);
            if (!first_error[0])
                snprintf(first_error, sizeof(first_error), "pid %s: %s", pid, a->err);
            failed++;
            continue;
        }
        bool signalled = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
        PQclear(r);
        if (!signalled) {
            fprintf(a->out, "left alone pid=%s: it finished or moved on to another query\n", pid);
            continue;
        }
        terminated++;
        fprintf(a->out, "terminated pid=%s user=%s database=%s age_s=%s query=", pid,
                PQgetvalue(candidates, row, CAND_USER), PQgetvalue(candidates, row, CAND_DATABASE),
                PQgetvalue(candidates, row, CAND_AGE_S));
        put_text(a->out, PQgetvalue(candidates, row, CAND_QUERY), QUERY_TEXT_MAX);
        fputc('\n', a->out);
    }
    PQclear(candidates);
    fprintf(a->out, "terminated %lld %s active for more than %s\n", terminated,
            plural(terminated, "backend", "backends"), older_than);
    if (failed)
        return fail(a, code == SVC_EXIT_UNREACHABLE ? code : SVC_EXIT_FAILED,
                    "%lld of %d %s not terminated; %s", failed, rows,
                    plural(rows, "backend", "backends"), first_error);
    if (!a->conn) /* the connection broke in between: the rest were not tried */
        return code;
    return SVC_EXIT_OK;
}

/* ---- analyze, reindex -------------------------------------------------------------------- */

static int op_analyze(struct pg_action *a)
{
    int code = pg_connect(a, optional(a, "arg.database"));
    if (code != SVC_EXIT_OK)
        return code;
    int64_t start = vg_mono_ms();
    fprintf(a->out, "database %s: ANALYZE\n", PQdb(a->conn));
    code = run_sql(a, "ANALYZE");
    if (code != SVC_EXIT_OK)
        return code;
    fprintf(a->out, "analyzed database %s in %.3f s\n", PQdb(a->conn), seconds_since(start));
    return SVC_EXIT_OK;
}

static int op_reindex(struct pg_action *a)
{
    char sql[512];
    const char *database = need(a, "arg.database");
    if (!database)
        return SVC_EXIT_BAD_REQUEST;
    if (!database[0])
        return fail(a, SVC_EXIT_BAD_REQUEST, "arg.database is empty");
    int code = pg_connect(a, database);
    if (code != SVC_EXIT_OK)
        return code;
    char *ident = PQescapeIdentifier(a->conn, database, strlen(database));
    if (!ident)
        return fail(a, SVC_EXIT_FAILED, "%s", PQerrorMessage(a->conn));
    int n = snprintf(sql, sizeof(sql), "REINDEX DATABASE %s", ident);
    PQfreemem(ident);
    if (n < 0 || (size_t)n >= sizeof(sql))
        return fail(a, SVC_EXIT_BAD_REQUEST, "arg.database is too long");
    int64_t start = vg_mono_ms();
    fprintf(a->out, "database %s: %s\n", PQdb(a->conn), sql);
    code = run_sql(a, sql);
    if (code != SVC_EXIT_OK)
        return code;
    fprintf(a->out, "reindexed database %s in %.3f s\n", PQdb(a->conn), seconds_since(start));
    return SVC_EXIT_OK;
}

/* ---- statement --------------------------------------------------------------------------- */

static int op_statement(struct pg_action *a)
{
    char key[32];
    const char *binds[BINDS_MAX];
    int64_t count;
    const char *action = svc_get_or(a->req, "action", "?");
    const char *sql = need(a, "statement");
    const char *count_text = need(a, "bind.count");

    if (!sql || !count_text)
        return SVC_EXIT_BAD_REQUEST;
    if (vg_parse_int(count_text, &count) < 0 || count < 0 || count > BINDS_MAX)
        return fail(a, SVC_EXIT_BAD_REQUEST, "bind.count: expected 0 to %d, got \"%s\"", BINDS_MAX,
                    count_text);
    for (int64_t i = 0; i < count; i++) {
        snprintf(key, sizeof(key), "bind.%" PRId64, i + 1);
        if (!(binds[i] = need(a, key)))
            return SVC_EXIT_BAD_REQUEST;
    }
    int code = pg_connect(a, NULL);
    if (code != SVC_EXIT_OK)
        return code;

    fprintf(a->out, "statement %s (%" PRId64 " %s) in database %s\n", action, count,
            plural(count, "parameter", "parameters"), PQdb(a->conn));
    code = run_sql(a, "BEGIN");
    if (code != SVC_EXIT_OK)
        return code;
    PGresult *r;
    code = query(a, sql, (int)count, binds, &r);
    if (code != SVC_EXIT_OK) {
        if (a->conn) { /* the server refused: nothing was done */
            char reason[1024];
            snprintf(reason, sizeof(reason), "%s", a->err);
            run_sql(a, "ROLLBACK");
            snprintf(a->err, a->errlen, "%s", reason);
            fprintf(a->out, "rolled back\n");
        }
        return code;
    }
    char status[64], tuples[32];
    snprintf(status, sizeof(status), "%s", PQcmdStatus(r));
    snprintf(tuples, sizeof(tuples), "%s", PQcmdTuples(r));
    PQclear(r);
    code = run_sql(a, "COMMIT");
    if (code != SVC_EXIT_OK)
        return code;
    fprintf(a->out, "%s\n", status);
    if (tuples[0])
        fprintf(a->out, "rows affected: %s\n", tuples);
    fprintf(a->out, "committed\n");
    return SVC_EXIT_OK;
}

/* ---- Dispatch ---------------------------------------------------------------------------- */

static const struct {
    const char *name;
    int (*run)(struct pg_action *a);
} OPS[] = {
    {"terminate", op_terminate},
    {"analyze", op_analyze},
    {"reindex", op_reindex},
    {"statement", op_statement},
};

int svc_postgres_run(const struct svc_request *r, FILE *out, char *err, size_t errlen)
{
    struct pg_action a = {.req = r, .out = out, .err = err, .errlen = errlen};
    const char *op = need(&a, "op");

    if (!op)
        return SVC_EXIT_BAD_REQUEST;
    int code = svc_timeout_ms(r, &a.timeout_ms, err, errlen);
    if (code != SVC_EXIT_OK)
        return code;
    a.deadline = vg_mono_ms() + a.timeout_ms;
    for (size_t i = 0; i < sizeof(OPS) / sizeof(OPS[0]); i++) {
        if (strcmp(op, OPS[i].name) != 0)
            continue;
        fprintf(out, "postgres target %s\n", svc_get_or(r, "target.name", "?"));
        code = OPS[i].run(&a);
        disconnect(&a);
        return code;
    }
    return fail(&a, SVC_EXIT_BAD_REQUEST, "unknown op %s", op);
}
