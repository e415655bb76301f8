/*
 * Incidents and their timelines in the store, through a connection of their own (like the
 * Alertmanager webhook's): the callers may live on different threads, and a libpq connection
 * must never be used by two. These are primitives; incidents.c decides what a symptom, an
 * acknowledgement or a resolve does and runs them in one transaction.
 */
#include "store.h"
#include "store_incidents_conn.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "utf8.h"

#define APPLICATION_NAME "vigil-coordinator-incidents"
#define SQL_STATE_UNIQUE_VIOLATION "23505"

#define MS_TO_TS STORE_MS_TO_TS
#define TS_TO_MS STORE_TS_TO_MS

/* Every column of struct store_incident, in the order row_to_incident reads them. */
/* clang-format off */
#define INCIDENT_COLUMNS                                                                           \
    "id, coalesce(root_incident_id, 0), fingerprint, runbook, title, severity, state, "            \
    TS_TO_MS("opened_at") ", " TS_TO_MS("response_due") ", " TS_TO_MS("updated_at") ", "          \
    TS_TO_MS("acknowledged_at") ", " TS_TO_MS("resolved_at") ", scope::text"
/* clang-format on */

store_incidents_t *store_incidents_new(const char *conninfo)
{
    store_incidents_t *self = calloc(1, sizeof(*self));
    if (self && store_side_init(&self->side, conninfo) < 0) {
        free(self);
        self = NULL;
    }
    return self;
}

void store_incidents_destroy(store_incidents_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    store_side_fini(&(*self_p)->side);
    free(*self_p);
    *self_p = NULL;
}

/* Only between transactions: a connection lost inside one fails the transaction instead. */
int store_incidents_ensure(store_incidents_t *self)
{
    if (self->side.conn && PQstatus(self->side.conn) == CONNECTION_OK)
        return 0;
    return store_side_connect(&self->side.conn, self->side.conninfo, APPLICATION_NAME);
}

/* Logs libpq's message and maps it: -EIO when the connection is gone, -EEXIST for a unique
 * violation, else -EINVAL. */
static int failed(store_incidents_t *self, const PGresult *res, const char *what)
{
    const char *text = res ? PQresultErrorMessage(res) : "";
    if (!text[0])
        text = PQerrorMessage(self->side.conn);
    const char *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (sqlstate && strcmp(sqlstate, SQL_STATE_UNIQUE_VIOLATION) == 0)
        return -EEXIST;
    store_statement_failed(self->side.conn, APPLICATION_NAME, what, text);
    return PQstatus(self->side.conn) == CONNECTION_OK ? -EINVAL : -EIO;
}

static int exec_command(store_incidents_t *self, const char *sql, const char *what)
{
    PGresult *res = PQexec(self->side.conn, sql);
    int r = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : failed(self, res, what);
    PQclear(res);
    return r;
}

/* Runs sql with text parameters; *ret_res is the result (caller clears) when it is one of
 * PGRES_TUPLES_OK / PGRES_COMMAND_OK. */
int store_incidents_run(store_incidents_t *self, const char *sql, int n, const char *const *params,
                        const char *what, PGresult **ret_res)
{
    if (!self->side.conn)
        return -EIO;
    PGresult *res = PQexecParams(self->side.conn, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        int r = failed(self, res, what);
        PQclear(res);
        return r;
    }
    *ret_res = res;
    return 0;
}

int store_incidents_begin(store_incidents_t *self)
{
    if (!self)
        return -EINVAL;
    int r = store_incidents_ensure(self);
    if (r < 0)
        return r;
    r = exec_command(self, "BEGIN", "begin");
    if (r == -EIO) {
        /* A connection that died while idle is only noticed by using it: one more try. */
        r = store_incidents_ensure(self);
        if (r == 0)
            r = exec_command(self, "BEGIN", "begin");
    }
    return r;
}

int store_incidents_audit_on_commit(store_incidents_t *self, const char *actor,
                                    const char *action, const char *subject, const char *detail)
{
    struct store_incidents_audit *a = &self->audit;
    detail = detail ? detail : "";
    if (!actor || !action || !action[0] || !subject || !vg_utf8_valid(actor) ||
        !vg_utf8_valid(subject) || !vg_utf8_valid(detail) || strlen(actor) >= sizeof(a->actor) ||
        strlen(action) >= sizeof(a->action) || strlen(subject) >= sizeof(a->subject) ||
        strlen(detail) >= sizeof(a->detail))
        return -EINVAL;
    snprintf(a->actor, sizeof(a->actor), "%s", actor);
    snprintf(a->action, sizeof(a->action), "%s", action);
    snprintf(a->subject, sizeof(a->subject), "%s", subject);
    snprintf(a->detail, sizeof(a->detail), "%s", detail);
    return 0;
}

void store_incidents_audit_detail(store_incidents_t *self, const char *detail)
{
    if (self && self->audit.action[0] && detail && vg_utf8_valid(detail))
        snprintf(self->audit.detail, sizeof(self->audit.detail), "%s", detail);
}

void store_incidents_audit_subject(store_incidents_t *self, const char *subject)
{
    if (self && self->audit.action[0] && subject && vg_utf8_valid(subject))
        snprintf(self->audit.subject, sizeof(self->audit.subject), "%s", subject);
}

void store_incidents_audit_clear(store_incidents_t *self)
{
    if (self)
        self->audit.action[0] = '\0';
}

int store_incidents_commit(store_incidents_t *self)
{
    if (!self || !self->side.conn) {
        store_incidents_audit_clear(self);
        return -EIO;
    }
    struct store_incidents_audit *a = &self->audit;
    if (a->action[0]) {
        const char *params[] = {a->actor, a->action, a->subject, a->detail};
        PGresult *res = NULL;
        int r = store_incidents_run(self,
                                    "INSERT INTO audit_log (actor, action, subject, detail)"
                                    " VALUES ($1, $2, $3, $4)",
                                    4, params, "audit", &res);
        PQclear(res);
        store_incidents_audit_clear(self);
        if (r < 0) {
            store_incidents_rollback(self);
            return r;
        }
    }
    return exec_command(self, "COMMIT", "commit");
}

void store_incidents_rollback(store_incidents_t *self)
{
    store_incidents_audit_clear(self);
    if (self && self->side.conn && PQstatus(self->side.conn) == CONNECTION_OK)
        PQclear(PQexec(self->side.conn, "ROLLBACK"));
}

int64_t store_incidents_field_i64(const PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

int store_incidents_field_int(const PGresult *res, int row, int col)
{
    int64_t v = store_incidents_field_i64(res, row, col);
    return v > INT_MAX ? INT_MAX : v < INT_MIN ? INT_MIN : (int)v;
}

int store_incidents_unknown(const char *column, const char *text)
{
    vg_log(VG_LOG_WARN, "store: %s \"%.32s\" is not known to this coordinator", column, text);
    return -EPROTO;
}

/* 0, or -EPROTO for a state this coordinator does not know. */
static int row_to_incident(const PGresult *res, int row, struct store_incident *inc)
{
    memset(inc, 0, sizeof(*inc));
    inc->id = strtoull(PQgetvalue(res, row, 0), NULL, 10);
    inc->root_id = strtoull(PQgetvalue(res, row, 1), NULL, 10);
    snprintf(inc->fingerprint, sizeof(inc->fingerprint), "%s", PQgetvalue(res, row, 2));
    snprintf(inc->runbook, sizeof(inc->runbook), "%s", PQgetvalue(res, row, 3));
    snprintf(inc->title, sizeof(inc->title), "%s", PQgetvalue(res, row, 4));
    inc->severity = (int)store_incidents_field_i64(res, row, 5);
    inc->opened_at_ms = store_incidents_field_i64(res, row, 7);
    inc->response_due_ms = store_incidents_field_i64(res, row, 8);
    inc->updated_at_ms = store_incidents_field_i64(res, row, 9);
    inc->acknowledged_at_ms = store_incidents_field_i64(res, row, 10);
    inc->resolved_at_ms = store_incidents_field_i64(res, row, 11);
    const char *scope = PQgetvalue(res, row, 12);
    /* A scope too long for the buffer would be cut mid-JSON: show none rather than garbage. */
    snprintf(inc->scope_json, sizeof(inc->scope_json), "%s",
             strlen(scope) < sizeof(inc->scope_json) ? scope : "[]");
    const char *state = PQgetvalue(res, row, 6);
    return incident_state_parse(state, &inc->state) < 0
               ? store_incidents_unknown("incidents.state", state)
               : 0;
}

/* One row into *ret, or -ENOENT. */
static int one_incident(store_incidents_t *self, const char *sql, int n, const char *const *params,
                        const char *what, struct store_incident *ret)
{
    PGresult *res = NULL;
    int r = store_incidents_run(self, sql, n, params, what, &res);
    if (r < 0)
        return r;
    if (PQntuples(res) == 0)
        r = -ENOENT;
    else
        r = row_to_incident(res, 0, ret);
    PQclear(res);
    return r;
}

/* Takes the incident's lock until the transaction ends (vigil_incident_lock, 028): writers of
 * one incident lock it before they read it. Not FOR UPDATE, which needs UPDATE on incidents. */
static int lock_incident(store_incidents_t *self, uint64_t id)
{
    char idtext[24];
    snprintf(idtext, sizeof(idtext), "%" PRIu64, id);
    const char *params[] = {idtext};
    PGresult *res = NULL;
    int r = store_incidents_run(self, "SELECT vigil_incident_lock($1::bigint)", 1, params,
                                "lock incident", &res);
    PQclear(res);
    return r;
}

/* The incident sql finds, locked: found, locked, then found again (a statement of its own, so
 * it sees what the last holder committed) until the same one comes back. */
static int locked_incident(store_incidents_t *self, const char *sql, int n,
                           const char *const *params, const char *what, struct store_incident *ret)
{
    struct store_incident *inc = malloc(sizeof(*inc));
    if (!inc)
        return -ENOMEM;
    uint64_t locked = 0;
    int r = -EAGAIN;
    /* Each pass locks one more candidate, which then cannot move: a few passes at most. */
    for (int pass = 0; pass < 8; pass++) {
        r = one_incident(self, sql, n, params, what, inc);
        if (r < 0 || inc->id == locked)
            break;
        locked = inc->id;
        r = lock_incident(self, locked);
        if (r < 0)
            break;
        r = -EAGAIN;
    }
    if (r == 0)
        *ret = *inc;
    free(inc);
    return r;
}

int store_incident_find_for_symptom(store_incidents_t *self, const char *fingerprint,
                                    int64_t resolved_since_ms, struct store_incident *ret)
{
    if (!self || !fingerprint || !ret)
        return -EINVAL;
    char since[24];
    snprintf(since, sizeof(since), "%" PRId64, resolved_since_ms);
    const char *params[] = {fingerprint, since};
    PGresult *res = NULL;
    /* Symptoms of one fingerprint in turn, opening included; then the incident's own lock. */
    int r = store_incidents_run(self, "SELECT vigil_incident_fingerprint_lock($1)", 1, params,
                                "lock fingerprint", &res);
    PQclear(res);
    if (r < 0)
        return r;
    /* The open one first; else the latest resolve inside the window. */
    return locked_incident(
        self,
        "SELECT " INCIDENT_COLUMNS " FROM incidents WHERE fingerprint = $1"
        " AND (state IN ('detected', 'acknowledged', 'mitigated')"
        "  OR (state = 'resolved' AND resolved_at >= " MS_TO_TS(
            2) "))"
               " ORDER BY (state = 'resolved'), resolved_at DESC NULLS FIRST, id DESC"
               " LIMIT 1",
        2, params, "find incident", ret);
}

int store_incident_find_open_runbook(store_incidents_t *self, const char *runbook,
                                     struct store_incident *ret)
{
    if (!self || !runbook || !ret)
        return -EINVAL;
    const char *params[] = {runbook};
    /* The oldest open one: the first to be opened is the root of what followed. */
    return locked_incident(self,
                           "SELECT " INCIDENT_COLUMNS " FROM incidents WHERE runbook = $1"
                           " AND state IN ('detected', 'acknowledged', 'mitigated')"
                           " ORDER BY opened_at, id LIMIT 1",
                           1, params, "find root incident", ret);
}

int store_incident_get(store_incidents_t *self, uint64_t id, bool for_update,
                       struct store_incident *ret)
{
    if (!self || !ret)
        return -EINVAL;
    int r = store_incidents_ensure(self);
    if (r < 0)
        return r;
    /* The lock before the read, so the read sees what the last holder committed. */
    if (for_update) {
        r = lock_incident(self, id);
        if (r < 0)
            return r;
    }
    char idtext[24];
    snprintf(idtext, sizeof(idtext), "%" PRIu64, id);
    const char *params[] = {idtext};
    return one_incident(self, "SELECT " INCIDENT_COLUMNS " FROM incidents WHERE id = $1::bigint", 1,
                        params, "get incident", ret);
}

static bool fits(const char *text, size_t size)
{
    return text && strnlen(text, size) < size;
}

static bool incident_valid(const struct store_incident *inc)
{
    return fits(inc->fingerprint, sizeof(inc->fingerprint)) && inc->fingerprint[0] &&
           fits(inc->runbook, sizeof(inc->runbook)) && fits(inc->title, sizeof(inc->title)) &&
           incident_state_name(inc->state) && fits(inc->scope_json, sizeof(inc->scope_json)) &&
           inc->severity >= 1 && inc->severity <= 4;
}

/* Optional timestamps are passed as NULL parameters when 0. */
static const char *ms_or_null(int64_t ms, char *buf, size_t len)
{
    if (ms == 0)
        return NULL;
    snprintf(buf, len, "%" PRId64, ms);
    return buf;
}

int store_incident_insert(store_incidents_t *self, const struct store_incident *inc,
                          uint64_t *ret_id)
{
    if (!self || !inc || !ret_id || !incident_valid(inc))
        return -EINVAL;
    char sev[8], opened[24], due[24], updated[24], root[24];
    snprintf(sev, sizeof(sev), "%d", inc->severity);
    snprintf(opened, sizeof(opened), "%" PRId64, inc->opened_at_ms);
    snprintf(due, sizeof(due), "%" PRId64, inc->response_due_ms);
    snprintf(updated, sizeof(updated), "%" PRId64,
             inc->updated_at_ms ? inc->updated_at_ms : inc->opened_at_ms);
    snprintf(root, sizeof(root), "%" PRIu64, inc->root_id);
    const char *params[] = {inc->fingerprint,
                            inc->runbook,
                            inc->title,
                            sev,
                            incident_state_name(inc->state),
                            opened,
                            due,
                            updated,
                            inc->scope_json,
                            inc->root_id ? root : NULL};
    PGresult *res = NULL;
    int r = store_incidents_run(self,
                "INSERT INTO incidents (fingerprint, runbook, title, severity, state, opened_at,"
                " response_due, updated_at, scope, root_incident_id)"
                " VALUES ($1, $2, $3, $4::smallint, $5, " MS_TO_TS(6) ", " MS_TO_TS(
                    7) ", " MS_TO_TS(8) ", $9::jsonb, $10::bigint) RETURNING id",
                10, params, "insert incident", &res);
    if (r < 0)
        return r;
    *ret_id = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return 0;
}

int store_incident_update(store_incidents_t *self, const struct store_incident *inc)
{
    if (!self || !inc || !incident_valid(inc))
        return -EINVAL;
    char id[24], sev[8], due[24], updated[24], acked[24], resolved[24];
    snprintf(id, sizeof(id), "%" PRIu64, inc->id);
    snprintf(sev, sizeof(sev), "%d", inc->severity);
    snprintf(due, sizeof(due), "%" PRId64, inc->response_due_ms);
    snprintf(updated, sizeof(updated), "%" PRId64, inc->updated_at_ms);
    const char *params[] = {id,
                            sev,
                            incident_state_name(inc->state),
                            inc->title,
                            inc->scope_json,
                            due,
                            updated,
                            ms_or_null(inc->acknowledged_at_ms, acked, sizeof(acked)),
                            ms_or_null(inc->resolved_at_ms, resolved, sizeof(resolved))};
    PGresult *res = NULL;
    /* incidents follows incident_states (028). A missing incident inserts nothing, rather than
     * failing on the foreign key, which would abort the caller's transaction. */
    int r = store_incidents_run(
        self,
        "INSERT INTO incident_states (incident_id, severity, state, title, scope,"
        " response_due, updated_at, acknowledged_at, resolved_at)"
        " SELECT i.id, $2::smallint, $3, $4, $5::jsonb, " MS_TO_TS(6) ", " MS_TO_TS(
            7) ", " MS_TO_TS(8) ", " MS_TO_TS(9) " FROM incidents i WHERE i.id = $1::bigint",
        9, params, "update incident", &res);
    if (r < 0)
        return r;
    r = strcmp(PQcmdTuples(res), "1") == 0 ? 0 : -ENOENT;
    PQclear(res);
    return r;
}

int store_incident_event(store_incidents_t *self, uint64_t incident_id, int64_t at_ms,
                         enum incident_event_kind kind, const char *actor, const char *text,
                         const char *data_json)
{
    const char *kind_name = incident_event_kind_name(kind);
    if (!self || !kind_name || !actor)
        return -EINVAL;
    char id[24], at[24];
    snprintf(id, sizeof(id), "%" PRIu64, incident_id);
    snprintf(at, sizeof(at), "%" PRId64, at_ms);
    const char *params[] = {
        id, at, kind_name, actor, text ? text : "", data_json ? data_json : "{}"};
    PGresult *res = NULL;
    int r =
        store_incidents_run(self,
                            "INSERT INTO incident_events (incident_id, at, kind, actor, text, data)"
                            " VALUES ($1::bigint, " MS_TO_TS(2) ", $3, $4, $5, $6::jsonb)",
                            6, params, "append incident event", &res);
    if (r < 0)
        return r;
    PQclear(res);
    return 0;
}

int store_incidents_list(store_incidents_t *self, bool open_only, uint64_t before_id, uint32_t limit,
                         int (*cb)(const struct store_incident *inc, void *userdata),
                         void *userdata)
{
    if (!self || !cb)
        return -EINVAL;
    int r = store_incidents_ensure(self);
    if (r < 0)
        return r;
    char lim[16], before[24];
    snprintf(lim, sizeof(lim), "%" PRIu32, limit);
    /* Keyset paging, newest first: ids below the last one listed (0 = from the newest). */
    snprintf(before, sizeof(before), "%" PRIu64, before_id ? before_id : (uint64_t)INT64_MAX);
    const char *params[] = {lim, before};
    PGresult *res = NULL;
    r = store_incidents_run(self,
            open_only ? "SELECT " INCIDENT_COLUMNS " FROM incidents"
                        " WHERE state IN ('detected', 'acknowledged', 'mitigated')"
                        " AND id < $2::bigint ORDER BY id DESC LIMIT $1::bigint"
                      : "SELECT " INCIDENT_COLUMNS " FROM incidents WHERE id < $2::bigint"
                        " ORDER BY id DESC LIMIT $1::bigint",
            2, params, "list incidents", &res);
    if (r < 0)
        return r;
    struct store_incident *inc = malloc(sizeof(*inc));
    if (!inc) {
        PQclear(res);
        return -ENOMEM;
    }
    for (int i = 0; r == 0 && i < PQntuples(res); i++) {
        r = row_to_incident(res, i, inc);
        int c = r == 0 ? cb(inc, userdata) : 0;
        if (c != 0) {
            r = c < 0 ? c : 0;
            break;
        }
    }
    free(inc);
    PQclear(res);
    return r;
}

/* Runs a query returning (id, incident_id, at, kind, actor, text, data) and hands each row to
 * cb; stops early when cb returns non-zero. */
static int each_event(store_incidents_t *self, const char *sql, int n, const char *const *params,
                      int (*cb)(const struct store_incident_event *ev, void *userdata),
                      void *userdata)
{
    if (!self || !cb)
        return -EINVAL;
    int r = store_incidents_ensure(self);
    if (r < 0)
        return r;
    PGresult *res = NULL;
    r = store_incidents_run(self, sql, n, params, "list incident events", &res);
    if (r < 0)
        return r;
    for (int i = 0; i < PQntuples(res); i++) {
        struct store_incident_event ev = {
            .id = strtoull(PQgetvalue(res, i, 0), NULL, 10),
            .incident_id = strtoull(PQgetvalue(res, i, 1), NULL, 10),
            .at_ms = store_incidents_field_i64(res, i, 2),
            .actor = PQgetvalue(res, i, 4),
            .text = PQgetvalue(res, i, 5),
            .data_json = PQgetvalue(res, i, 6),
        };
        if (incident_event_kind_parse(PQgetvalue(res, i, 3), &ev.kind) < 0) {
            r = store_incidents_unknown("incident_events.kind", PQgetvalue(res, i, 3));
            break;
        }
        int c = cb(&ev, userdata);
        if (c != 0) {
            r = c < 0 ? c : 0;
            break;
        }
    }
    PQclear(res);
    return r;
}

#define EVENT_COLUMNS "id, incident_id, " TS_TO_MS("at") ", kind, actor, text, data::text"

int store_incident_events(store_incidents_t *self, uint64_t incident_id,
                          int (*cb)(const struct store_incident_event *ev, void *userdata),
                          void *userdata)
{
    char id[24];
    snprintf(id, sizeof(id), "%" PRIu64, incident_id);
    const char *params[] = {id};
    return each_event(self,
                      "SELECT " EVENT_COLUMNS " FROM incident_events"
                      " WHERE incident_id = $1::bigint ORDER BY id",
                      1, params, cb, userdata);
}

int store_incident_events_after(store_incidents_t *self, uint64_t after_id, uint32_t limit,
                                int (*cb)(const struct store_incident_event *ev, void *userdata),
                                void *userdata)
{
    char after[24], lim[16];
    snprintf(after, sizeof(after), "%" PRIu64, after_id);
    snprintf(lim, sizeof(lim), "%" PRIu32, limit);
    const char *params[] = {after, lim};
    return each_event(self,
                      "SELECT " EVENT_COLUMNS " FROM incident_events"
                      " WHERE id > $1::bigint ORDER BY id LIMIT $2::bigint",
                      2, params, cb, userdata);
}

int store_incident_events_last(store_incidents_t *self, uint64_t *ret_id)
{
    if (!self || !ret_id)
        return -EINVAL;
    int r = store_incidents_ensure(self);
    if (r < 0)
        return r;
    PGresult *res = NULL;
    r = store_incidents_run(self, "SELECT coalesce(max(id), 0) FROM incident_events", 0, NULL,
            "last incident event", &res);
    if (r < 0)
        return r;
    *ret_id = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return 0;
}

int store_incident_report_put(store_incidents_t *self, uint64_t incident_id, int64_t at_ms,
                              const char *author, const char *body)
{
    if (!self || !author || !body || !body[0])
        return -EINVAL;
    char id[24], at[24];
    snprintf(id, sizeof(id), "%" PRIu64, incident_id);
    snprintf(at, sizeof(at), "%" PRId64, at_ms);
    const char *params[] = {id, at, author, body};
    PGresult *res = NULL;
    int r = store_incidents_run(self,
                "INSERT INTO incident_reports (incident_id, at, author, body)"
                " VALUES ($1::bigint, " MS_TO_TS(2) ", $3, $4)",
                4, params, "store incident report", &res);
    if (r < 0)
        return r;
    PQclear(res);
    return 0;
}

int store_incident_report_get(store_incidents_t *self, uint64_t incident_id,
                              struct store_incident_report *ret)
{
    if (!self || !ret)
        return -EINVAL;
    int r = store_incidents_ensure(self);
    if (r < 0)
        return r;
    char id[24];
    snprintf(id, sizeof(id), "%" PRIu64, incident_id);
    const char *params[] = {id};
    PGresult *res = NULL;
    r = store_incidents_run(self,
            "SELECT " TS_TO_MS("at") ", author, body, (SELECT count(*) FROM incident_reports"
            " WHERE incident_id = $1::bigint) FROM incident_reports WHERE incident_id = $1::bigint"
            " ORDER BY id DESC LIMIT 1",
            1, params, "read incident report", &res);
    if (r < 0)
        return r;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return -ENOENT;
    }
    ret->at_ms = store_incidents_field_i64(res, 0, 0);
    snprintf(ret->author, sizeof(ret->author), "%s", PQgetvalue(res, 0, 1));
    ret->body = strdup(PQgetvalue(res, 0, 2));
    ret->versions = (uint32_t)strtoul(PQgetvalue(res, 0, 3), NULL, 10);
    PQclear(res);
    return ret->body ? 0 : -ENOMEM;
}
