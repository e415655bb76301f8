/*
 * Remediation commands in the store (013_commands.sql): requests, approvals, capsules, the
 * steps agents report, and each agent's declared action catalog.
 *
 * An operator's change is one transaction with its audit_log row and, for a request that names
 * an incident, its timeline event: creating a request is one statement; approving and issuing
 * read the request first (under a transaction advisory lock on its id) and write in
 * store_command_begin .. store_command_commit. Reports arrive in the ingest transaction
 * (store_commands_ingest, called by store_ingest for the fresh report messages of a batch).
 * Binary values cross as hex text.
 *
 * Nothing here UPDATEs or DELETEs (027_command_states.sql): a state change is an INSERT into
 * command_states, with the state it expects (compare-and-set) or none (forward only); the
 * trigger there keeps command_current, which the reads join, and makes an INSERT that does not
 * apply insert nothing, so the audit and timeline rows chained on its RETURNING are not written.
 */
#include "store.h"
#include "store_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "timeutil.h"
#include "utf8.h"
#include "wire.h"

/* How long the agent has for the evidence a command leaves (EVIDENCE_DEFAULT_TIMEOUT_MS). */
#define FOLLOWUP_TIMEOUT_MS 60000

/* The columns command_from_row reads, in its order (q: command_requests, s: its current state,
 * c: its capsule, d: its latest done or refused report). */
#define COMMAND_COLUMNS                                                                            \
    "q.n, q.id, q.action, q.node, q.incident_id, q.requested_by,"                                  \
    " (extract(epoch FROM q.created_at) * 1000)::bigint,"                                          \
    " (extract(epoch FROM q.approve_by) * 1000)::bigint, q.dry_run, q.mode, s.state,"              \
    " encode(q.request_sha256, 'hex'), q.args::text,"                                              \
    " c.request_id IS NOT NULL, coalesce((extract(epoch FROM c.issued_at) * 1000)::bigint, 0),"    \
    " coalesce((extract(epoch FROM c.not_after) * 1000)::bigint, 0),"                              \
    " coalesce(encode(c.nonce, 'hex'), ''),"                                                       \
    " d.step IS NOT NULL AND d.step = 'done', coalesce(d.exit_status, 0),"                         \
    " coalesce(d.duration_ms, 0), coalesce(encode(d.output_sha256, 'hex'), ''), d.reason,"         \
    " coalesce((SELECT string_agg(a.operator, ',' ORDER BY a.at, a.operator)"                      \
    "           FROM command_approvals a WHERE a.request_id = q.id), '')"
#define COMMAND_FROM                                                                               \
    " FROM command_requests q"                                                                     \
    " JOIN command_current s ON s.request_id = q.id"                                               \
    " LEFT JOIN command_capsules c ON c.request_id = q.id"                                         \
    " LEFT JOIN LATERAL (SELECT r.step, r.exit_status, r.duration_ms, r.output_sha256, r.reason"   \
    "                    FROM command_reports r WHERE r.request_id = q.id"                         \
    "                      AND r.step IN ('done', 'refused')"                                      \
    "                    ORDER BY r.at DESC, r.seq DESC LIMIT 1) d ON true"

/* pg_advisory_xact_lock(class, hashtext(id)) of a request read to be changed (024 uses 7623191). */
#define COMMAND_LOCK_CLASS "7623192"

/* "command.approve" and the like for the timeline's text. */
#define TIMELINE_EVENT "INSERT INTO incident_events (incident_id, at, kind, actor, text, data)"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Exactly len bytes of lower-case hex; false otherwise. */
static bool unhex(const char *text, uint8_t *out, size_t len)
{
    if (strlen(text) != 2 * len)
        return false;
    for (size_t i = 0; i < len; i++) {
        int hi = hexval(text[2 * i]), lo = hexval(text[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static void tohex(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

static void copy_field(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

void store_command_info_clear(struct store_command_info *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nargs; i++) {
        free(c->args[i]->key);
        free(c->args[i]->value);
        free(c->args[i]);
    }
    free(c->args);
    free(c->approvals);
    for (size_t i = 0; i < c->nsteps; i++)
        free(c->steps[i].reason);
    free(c->steps);
    free(c->reason);
    memset(c, 0, sizeof(*c));
}

/* args: the jsonb text of a flat object of strings, as PostgreSQL prints it. */
static int args_from_json(const char *text, struct store_command_info *c)
{
    json_error_t jerr;
    json_t *obj = json_loads(text, 0, &jerr);
    const char *key;
    json_t *value;
    int r = 0;

    if (!json_is_object(obj)) {
        json_decref(obj);
        return -EPROTO;
    }
    c->args = calloc(json_object_size(obj) + 1, sizeof(Vigil__CommandArg *));
    if (!c->args) {
        json_decref(obj);
        return -ENOMEM;
    }
    json_object_foreach(obj, key, value)
    {
        Vigil__CommandArg *a = malloc(sizeof(*a));
        if (!a) {
            r = -ENOMEM;
            break;
        }
        vigil__command_arg__init(a);
        a->key = strdup(key);
        a->value = strdup(json_is_string(value) ? json_string_value(value) : "");
        c->args[c->nargs++] = a;
        if (!a->key || !a->value) {
            r = -ENOMEM;
            break;
        }
    }
    json_decref(obj);
    return r;
}

/* Row i of a COMMAND_COLUMNS result into *c (cleared first by the caller). */
static int command_from_row(const PGresult *res, int i, struct store_command_info *c)
{
    int64_t v;
    c->n = store_parse_u64_or_zero(PQgetvalue(res, i, 0));
    copy_field(c->id, sizeof(c->id), PQgetvalue(res, i, 1));
    copy_field(c->action, sizeof(c->action), PQgetvalue(res, i, 2));
    copy_field(c->node, sizeof(c->node), PQgetvalue(res, i, 3));
    c->incident_id = store_parse_u64_or_zero(PQgetvalue(res, i, 4));
    copy_field(c->requested_by, sizeof(c->requested_by), PQgetvalue(res, i, 5));
    c->created_at_ms = store_parse_i64(PQgetvalue(res, i, 6), &v) ? v : 0;
    c->approve_by_ms = store_parse_i64(PQgetvalue(res, i, 7), &v) ? v : 0;
    c->dry_run = strcmp(PQgetvalue(res, i, 8), "t") == 0;
    copy_field(c->mode, sizeof(c->mode), PQgetvalue(res, i, 9));
    copy_field(c->state, sizeof(c->state), PQgetvalue(res, i, 10));
    if (!unhex(PQgetvalue(res, i, 11), c->request_sha256, sizeof(c->request_sha256)))
        return -EPROTO;
    int r = args_from_json(PQgetvalue(res, i, 12), c);
    if (r < 0)
        return r;
    c->issued = strcmp(PQgetvalue(res, i, 13), "t") == 0;
    c->issued_at_ms = store_parse_i64(PQgetvalue(res, i, 14), &v) ? v : 0;
    c->not_after_ms = store_parse_i64(PQgetvalue(res, i, 15), &v) ? v : 0;
    if (c->issued)
        unhex(PQgetvalue(res, i, 16), c->nonce, sizeof(c->nonce));
    c->has_exit = strcmp(PQgetvalue(res, i, 17), "t") == 0;
    c->exit_status = store_parse_i64(PQgetvalue(res, i, 18), &v) ? (int32_t)v : 0;
    c->duration_ms = store_parse_u64_or_zero(PQgetvalue(res, i, 19));
    c->has_output = unhex(PQgetvalue(res, i, 20), c->output_sha256, sizeof(c->output_sha256));
    if (!PQgetisnull(res, i, 21) && PQgetvalue(res, i, 21)[0]) {
        c->reason = strdup(PQgetvalue(res, i, 21));
        if (!c->reason)
            return -ENOMEM;
    }
    /* Column 22, the approvers' names, is for listings (command_approvers_from_names). */
    return 0;
}

/* A listing has the approvers' names only: "alice,bob". */
static int approvers_from_names(const char *names, struct store_command_info *c)
{
    size_t n = names[0] ? 1 : 0;
    for (const char *p = names; *p; p++)
        n += *p == ',';
    if (n == 0)
        return 0;
    c->approvals = calloc(n, sizeof(*c->approvals));
    if (!c->approvals)
        return -ENOMEM;
    const char *p = names;
    while (*p && c->napprovals < n) {
        size_t len = strcspn(p, ",");
        struct store_command_approval *a = &c->approvals[c->napprovals++];
        snprintf(a->operator_name, sizeof(a->operator_name), "%.*s", (int)len, p);
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* ---- create ---- */

/* The arguments as JSON text (malloc'd), or NULL when out of memory. */
static char *args_to_json(const struct store_command_info *c)
{
    json_t *obj = json_object();
    for (size_t i = 0; obj && i < c->nargs; i++) {
        if (json_object_set_new(obj, c->args[i]->key, json_string(c->args[i]->value)) < 0) {
            json_decref(obj);
            return NULL;
        }
    }
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    return text;
}

/* Runs a statement whose last part is a SELECT; *ret_rows gets how many rows it returned. */
static int count_row(const PGresult *res, int row, void *userdata)
{
    (void)res;
    (void)row;
    (*(uint64_t *)userdata)++;
    return 0;
}

static int run_counted(store_t *self, const char *what, const char *sql, int nparams,
                       const char *const *params, uint64_t *ret_rows)
{
    uint64_t rows = 0;
    int r = store_query_rows(self, what, sql, nparams, params, count_row, &rows);
    if (r == 0 && ret_rows)
        *ret_rows = rows;
    return r;
}

static bool has_control(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20)
            return true;
    }
    return false;
}

int store_command_create(store_t *self, const struct store_command_info *c, const char *actor)
{
    if (!self || !c || !actor || !vg_utf8_valid(c->id) || !vg_utf8_valid(c->action) ||
        !vg_utf8_valid(c->node) || !vg_utf8_valid(c->requested_by) || !vg_utf8_valid(actor))
        return -EINVAL;
    for (size_t i = 0; i < c->nargs; i++) {
        if (!vg_utf8_valid(c->args[i]->key) || !vg_utf8_valid(c->args[i]->value) ||
            has_control(c->args[i]->key) || has_control(c->args[i]->value))
            return -EINVAL;
    }
    char *args = args_to_json(c);
    if (!args)
        return -ENOMEM;
    char incident[24], created[24], approve_by[24], sha[65];
    snprintf(incident, sizeof(incident), "%" PRIu64, c->incident_id);
    snprintf(created, sizeof(created), "%" PRId64, c->created_at_ms);
    snprintf(approve_by, sizeof(approve_by), "%" PRId64, c->approve_by_ms);
    tohex(c->request_sha256, sizeof(c->request_sha256), sha);
    const char *params[] = {c->id,   c->action,  args,
                            c->node, incident,   c->requested_by,
                            created, approve_by, c->dry_run ? "t" : "f",
                            c->mode, sha,        actor};
    uint64_t created_rows = 0;
    int r = 0;
    if (!self->conn || PQtransactionStatus(self->conn) == PQTRANS_IDLE)
        r = store_ensure_conn(self);
    if (r == 0)
        r = run_counted(
            self, "command create",
            "WITH ins AS ("
            "  INSERT INTO command_requests (id, action, args, node, incident_id, requested_by,"
            "    created_at, approve_by, dry_run, mode, request_sha256)"
            "  SELECT $1, $2, $3::jsonb, $4, $5::bigint, $6,"
            "    timestamptz 'epoch' + $7::bigint * interval '1 millisecond',"
            "    timestamptz 'epoch' + $8::bigint * interval '1 millisecond',"
            "    $9::boolean, $10, decode($11, 'hex')"
            "  WHERE $5::bigint = 0 OR EXISTS (SELECT 1 FROM incidents WHERE id = $5::bigint)"
            "  RETURNING id, incident_id, action, node, mode, dry_run),"
            " st AS (INSERT INTO command_states (request_id, state, actor)"
            "  SELECT id, 'pending', $6 FROM ins),"
            " audit AS (INSERT INTO audit_log (actor, action, subject, detail)"
            "  SELECT $12, 'command.request', id, format('action=%s node=%s mode=%s dry_run=%s"
            " incident=%s', action, node, mode, dry_run, incident_id) FROM ins),"
            " timeline AS (" TIMELINE_EVENT "  SELECT incident_id, now(), 'command', $6,"
            "    format('command %s requested: %s on %s (%s%s)', id, action, node, mode,"
            "           CASE WHEN dry_run THEN ', dry run' ELSE '' END),"
            "    jsonb_build_object('request_id', id, 'state', 'pending')"
            "  FROM ins WHERE incident_id <> 0)"
            " SELECT 1 FROM ins",
            12, params, &created_rows);
    free(args);
    if (r < 0)
        return r;
    return created_rows == 1 ? 0 : -ENOENT; /* none: the incident was not there */
}

/* A runbook step's note on the incident's timeline (kind note, actor vigil): what Vigil did with
 * the step, or why it did not run it. */
int store_command_step_note(store_t *self, uint64_t incident_id, const char *action,
                            const char *mode, const char *state, const char *request_id,
                            const char *text)
{
    if (!self || incident_id == 0 || !vg_utf8_valid(action) || !vg_utf8_valid(text) ||
        !vg_utf8_valid(request_id))
        return -EINVAL;
    char incident[24];
    snprintf(incident, sizeof(incident), "%" PRIu64, incident_id);
    const char *params[] = {incident, text, action, mode, state, request_id};
    int r = store_ensure_conn(self);
    if (r == 0)
        r = run_counted(self, "command step note",
                        "WITH ins AS (" TIMELINE_EVENT "  SELECT id, now(), 'note', 'vigil', $2,"
                        "    jsonb_build_object('step', $3::text, 'mode', $4::text,"
                        "      'state', $5::text, 'request_id', $6::text)"
                        "  FROM incidents WHERE id = $1::bigint RETURNING 1)"
                        " SELECT 1 FROM ins",
                        6, params, NULL);
    return r;
}

/* ---- automation ---- */

static int automation_row(const PGresult *res, int row, void *userdata)
{
    struct store_automation *a = userdata;
    int64_t v = 0;
    a->enabled = strcmp(PQgetvalue(res, row, 0), "t") == 0;
    copy_field(a->changed_by, sizeof(a->changed_by), PQgetvalue(res, row, 1));
    a->changed_at_ms = store_parse_i64(PQgetvalue(res, row, 2), &v) ? v : 0;
    return 1;
}

#define AUTOMATION_COLUMNS "enabled, changed_by, (extract(epoch FROM changed_at) * 1000)::bigint"

struct unjudged {
    void (*cb)(void *userdata, const struct store_unjudged_command *c);
    void *userdata;
};

static int unjudged_row(const PGresult *res, int row, void *userdata)
{
    struct unjudged *w = userdata;
    struct store_unjudged_command c = {
        .id = PQgetvalue(res, row, 0),
        .action = PQgetvalue(res, row, 1),
        .node = PQgetvalue(res, row, 2),
        .incident_id = store_parse_u64_or_zero(PQgetvalue(res, row, 3)),
        .runbook = PQgetvalue(res, row, 4),
        .fingerprint = PQgetvalue(res, row, 5),
        .inverse = PQgetvalue(res, row, 6),
    };
    w->cb(w->userdata, &c);
    return 0;
}

int store_commands_unjudged(store_t *self, int64_t since_ms,
                            void (*cb)(void *userdata, const struct store_unjudged_command *c),
                            void *userdata)
{
    char since[24];
    snprintf(since, sizeof(since), "%" PRId64, since_ms);
    const char *params[] = {since};
    struct unjudged w = {cb, userdata};
    int r = store_ensure_conn(self);
    if (r < 0)
        return r;
    /* Issued by vigil on its own signature for an open incident, and no verdict on its
     * timeline yet (the notes the main loop writes: verified, not-verified, failed). */
    return store_query_rows(
        self, "unjudged commands",
        "SELECT q.id, q.action, q.node, q.incident_id, i.runbook, i.fingerprint,"
        " coalesce((SELECT act->>'inverse' FROM agents a, jsonb_array_elements(a.actions) act"
        "   WHERE a.node = q.node AND act->>'name' = q.action ORDER BY a.id LIMIT 1), '')"
        " FROM command_requests q JOIN incidents i ON i.id = q.incident_id"
        " JOIN command_capsules c ON c.request_id = q.id"
        " WHERE q.requested_by = 'vigil' AND q.mode = 'auto' AND NOT q.dry_run"
        "   AND q.created_at >= timestamptz 'epoch' + $1::bigint * interval '1 millisecond'"
        "   AND i.state IN ('detected', 'acknowledged', 'mitigated')"
        "   AND NOT EXISTS (SELECT 1 FROM command_approvals a WHERE a.request_id = q.id)"
        "   AND NOT EXISTS (SELECT 1 FROM incident_events e WHERE e.incident_id = q.incident_id"
        "     AND e.kind = 'note' AND e.data->>'request_id' = q.id"
        "     AND e.data->>'state' IN ('verified', 'not-verified', 'failed'))"
        " ORDER BY q.n LIMIT 4096",
        1, params, unjudged_row, &w);
}

struct recent_auto {
    void (*cb)(void *userdata, const char *runbook, const char *node, int64_t created_at_ms);
    void *userdata;
};

static int recent_auto_row(const PGresult *res, int row, void *userdata)
{
    struct recent_auto *w = userdata;
    int64_t at = 0;
    store_parse_i64(PQgetvalue(res, row, 2), &at);
    w->cb(w->userdata, PQgetvalue(res, row, 0), PQgetvalue(res, row, 1), at);
    return 0;
}

int store_commands_recent_auto(store_t *self, int64_t since_ms,
                               void (*cb)(void *userdata, const char *runbook, const char *node,
                                          int64_t created_at_ms),
                               void *userdata)
{
    char since[24];
    snprintf(since, sizeof(since), "%" PRId64, since_ms);
    const char *params[] = {since};
    struct recent_auto w = {cb, userdata};
    int r = store_ensure_conn(self);
    if (r < 0)
        return r;
    /* Issued by vigil on its signature alone: an auto request with a capsule and no approval. */
    return store_query_rows(
        self, "recent automatic commands",
        "SELECT i.runbook, q.node, (extract(epoch FROM q.created_at) * 1000)::bigint"
        " FROM command_requests q JOIN incidents i ON i.id = q.incident_id"
        " JOIN command_capsules c ON c.request_id = q.id"
        " WHERE q.requested_by = 'vigil' AND q.mode = 'auto'"
        "   AND q.created_at >= timestamptz 'epoch' + $1::bigint * interval '1 millisecond'"
        "   AND NOT EXISTS (SELECT 1 FROM command_approvals a WHERE a.request_id = q.id)"
        " ORDER BY q.created_at LIMIT 4096",
        1, params, recent_auto_row, &w);
}

int store_automation_get(store_t *self, struct store_automation *ret)
{
    struct store_automation a = {.enabled = true};
    int r = store_ensure_conn(self);
    if (r == 0)
        r = store_query_rows(self, "automation get",
                             "SELECT " AUTOMATION_COLUMNS " FROM automation", 0, NULL,
                             automation_row, &a);
    if (r == 0)
        *ret = a;
    return r;
}

int store_automation_set(store_t *self, bool enabled, const char *actor,
                         struct store_automation *ret)
{
    if (!vg_utf8_valid(actor))
        return -EINVAL;
    struct store_automation a = {.enabled = enabled};
    const char *params[] = {enabled ? "t" : "f", actor};
    int r = store_ensure_conn(self);
    if (r == 0)
        r = store_query_rows(
            self, "automation set",
            "WITH prev AS (SELECT enabled FROM automation),"
            " upd AS (INSERT INTO automation (singleton, enabled, changed_by, changed_at)"
            "  VALUES (true, $1::boolean, $2, now())"
            "  ON CONFLICT (singleton) DO UPDATE SET enabled = EXCLUDED.enabled,"
            "    changed_by = EXCLUDED.changed_by, changed_at = EXCLUDED.changed_at"
            "  RETURNING " AUTOMATION_COLUMNS "),"
            " audit AS (INSERT INTO audit_log (actor, action, subject, detail)"
            "  SELECT $2, CASE WHEN $1::boolean THEN 'automation.on' ELSE 'automation.off' END,"
            "    'automation', format('was=%s', coalesce((SELECT enabled FROM prev)::text, "
            "'unset')))"
            " SELECT * FROM upd",
            2, params, automation_row, &a);
    if (r == 0)
        *ret = a;
    return r;
}

/* ---- read ---- */

struct one_command {
    struct store_command_info *c;
    int status;
    bool found;
};

static int one_command_row(const PGresult *res, int row, void *userdata)
{
    struct one_command *one = userdata;
    one->found = true;
    one->status = command_from_row(res, row, one->c);
    return 1;
}

static int approval_row(const PGresult *res, int row, void *userdata)
{
    struct store_command_info *c = userdata;
    struct store_command_approval *grown =
        realloc(c->approvals, (c->napprovals + 1) * sizeof(*grown));
    if (!grown)
        return -ENOMEM;
    c->approvals = grown;
    struct store_command_approval *a = &c->approvals[c->napprovals];
    memset(a, 0, sizeof(*a));
    int64_t at = 0;
    copy_field(a->operator_name, sizeof(a->operator_name), PQgetvalue(res, row, 0));
    copy_field(a->role, sizeof(a->role), PQgetvalue(res, row, 1));
    copy_field(a->signing_key, sizeof(a->signing_key), PQgetvalue(res, row, 2));
    if (!unhex(PQgetvalue(res, row, 3), a->signature, sizeof(a->signature)))
        return -EPROTO;
    a->at_ms = store_parse_i64(PQgetvalue(res, row, 4), &at) ? at : 0;
    c->napprovals++;
    return 0;
}

static int step_row(const PGresult *res, int row, void *userdata)
{
    struct store_command_info *c = userdata;
    struct store_command_step *grown = realloc(c->steps, (c->nsteps + 1) * sizeof(*grown));
    if (!grown)
        return -ENOMEM;
    c->steps = grown;
    struct store_command_step *s = &c->steps[c->nsteps];
    memset(s, 0, sizeof(*s));
    int64_t v = 0;
    copy_field(s->step, sizeof(s->step), PQgetvalue(res, row, 0));
    s->at_ms = store_parse_i64(PQgetvalue(res, row, 1), &v) ? v : 0;
    copy_field(s->agent_id, sizeof(s->agent_id), PQgetvalue(res, row, 2));
    s->has_exit = !PQgetisnull(res, row, 3);
    s->exit_status = store_parse_i64(PQgetvalue(res, row, 3), &v) ? (int32_t)v : 0;
    s->duration_ms = store_parse_u64_or_zero(PQgetvalue(res, row, 4));
    s->has_output = unhex(PQgetvalue(res, row, 5), s->output_sha256, sizeof(s->output_sha256));
    s->truncated = strcmp(PQgetvalue(res, row, 6), "t") == 0;
    s->reason = strdup(PQgetvalue(res, row, 7));
    c->nsteps++;
    return s->reason ? 0 : -ENOMEM;
}

int store_command_get(store_t *self, const char *id, bool with_steps, bool for_update,
                      struct store_command_info *ret)
{
    if (!self || !id || !ret || !vg_utf8_valid(id))
        return -EINVAL;
    struct store_command_info c;
    memset(&c, 0, sizeof(c));
    struct one_command one = {.c = &c};
    const char *params[] = {id};
    int r = 0;
    if (!self->conn || PQtransactionStatus(self->conn) == PQTRANS_IDLE)
        r = store_ensure_conn(self);
    if (r < 0)
        return r;
    /* Not FOR UPDATE, which needs UPDATE on the table: a lock on the id until the transaction
     * ends, taken before the read so the read sees what the last holder committed. */
    if (for_update)
        r = run_counted(self, "command lock",
                        "SELECT pg_advisory_xact_lock(" COMMAND_LOCK_CLASS ", hashtext($1))", 1,
                        params, NULL);
    if (r == 0)
        r = store_query_rows(self, "command get",
                             "SELECT " COMMAND_COLUMNS COMMAND_FROM " WHERE q.id = $1", 1, params,
                             one_command_row, &one);
    if (r == 0 && !one.found)
        r = -ENOENT;
    if (r == 0)
        r = one.status;
    if (r == 0)
        r = store_query_rows(self, "command approvals",
                             "SELECT operator, role, signing_key, encode(signature, 'hex'),"
                             " (extract(epoch FROM at) * 1000)::bigint"
                             " FROM command_approvals WHERE request_id = $1 ORDER BY at, operator",
                             1, params, approval_row, &c);
    if (r == 0 && with_steps)
        r = store_query_rows(
            self, "command steps",
            "SELECT step, (extract(epoch FROM at) * 1000)::bigint, agent_id,"
            " exit_status, duration_ms, coalesce(encode(output_sha256, 'hex'), ''),"
            " truncated, reason"
            " FROM command_reports WHERE request_id = $1 ORDER BY at, seq",
            1, params, step_row, &c);
    if (r < 0) {
        store_command_info_clear(&c);
        return r;
    }
    *ret = c;
    return 0;
}

struct list_walk {
    int (*cb)(struct store_command_info *c, void *userdata);
    void *userdata;
};

static int list_row(const PGresult *res, int row, void *userdata)
{
    struct list_walk *walk = userdata;
    struct store_command_info c;
    memset(&c, 0, sizeof(c));
    int r = command_from_row(res, row, &c);
    if (r == 0)
        r = approvers_from_names(PQgetvalue(res, row, 22), &c);
    if (r == 0)
        r = walk->cb(&c, walk->userdata);
    store_command_info_clear(&c);
    return r;
}

int store_commands_list(store_t *self, uint64_t incident_id, uint64_t before_n, uint32_t limit,
                        int (*cb)(struct store_command_info *c, void *userdata), void *userdata)
{
    if (!self || !cb)
        return -EINVAL;
    char incident[24], before[24], lim[16];
    snprintf(incident, sizeof(incident), "%" PRIu64, incident_id);
    snprintf(before, sizeof(before), "%" PRIu64, before_n);
    snprintf(lim, sizeof(lim), "%" PRIu32, limit);
    const char *params[] = {incident, before, lim};
    struct list_walk walk = {cb, userdata};
    int r = store_ensure_conn(self);
    if (r < 0)
        return r;
    return store_query_rows(self, "command list",
                            "SELECT " COMMAND_COLUMNS COMMAND_FROM
                            " WHERE ($1::bigint = 0 OR q.incident_id = $1::bigint)"
                            "   AND ($2::bigint = 0 OR q.n < $2::bigint)"
                            " ORDER BY q.n DESC LIMIT $3::integer",
                            3, params, list_row, &walk);
}

/* ---- changes in a transaction ---- */

int store_command_begin(store_t *self)
{
    int r = store_ensure_conn(self);
    return r < 0 ? r : store_exec(self, "command BEGIN", "BEGIN");
}

int store_command_commit(store_t *self)
{
    PGresult *res = PQexec(self->conn, "COMMIT");
    int r = 0;
    if (PQresultStatus(res) != PGRES_COMMAND_OK || strcmp(PQcmdStatus(res), "COMMIT") != 0) {
        r = store_failed(self, res, "command COMMIT");
        if (r == 0)
            r = -EIO;
    }
    PQclear(res);
    if (r < 0)
        store_rollback_if_alive(self);
    return r;
}

void store_command_rollback(store_t *self)
{
    store_rollback_if_alive(self);
}

int store_command_approval_add(store_t *self, const char *request_id,
                               const struct store_command_approval *a, const char *actor)
{
    if (!vg_utf8_valid(a->operator_name) || !vg_utf8_valid(actor))
        return -EINVAL;
    char sig[129], at[24];
    tohex(a->signature, sizeof(a->signature), sig);
    snprintf(at, sizeof(at), "%" PRId64, a->at_ms);
    const char *params[] = {request_id, a->operator_name, a->role, a->signing_key, sig, at, actor};
    return run_counted(
        self, "command approve",
        "WITH ins AS ("
        "  INSERT INTO command_approvals (request_id, operator, role, signing_key, signature, at)"
        "  VALUES ($1, $2, $3, $4, decode($5, 'hex'),"
        "          timestamptz 'epoch' + $6::bigint * interval '1 millisecond')"
        "  RETURNING request_id, operator, role),"
        " audit AS (INSERT INTO audit_log (actor, action, subject, detail)"
        "  SELECT $7, 'command.approve', request_id, format('operator=%s role=%s key=%s',"
        "         operator, role, $4) FROM ins),"
        " timeline AS (" TIMELINE_EVENT "  SELECT q.incident_id, now(), 'command', ins.operator,"
        "    format('command %s approved by %s (%s)', q.id, ins.operator, ins.role),"
        "    jsonb_build_object('request_id', q.id, 'approval', ins.operator)"
        "  FROM ins JOIN command_requests q ON q.id = ins.request_id WHERE q.incident_id <> 0)"
        " SELECT 1 FROM ins",
        7, params, NULL);
}

int store_commands_issue_auto_many(store_t *self, const struct store_command_info *t,
                                   const struct store_auto_issue *items, size_t n,
                                   int64_t issued_at_ms, int64_t not_after_ms,
                                   const char *coordinator_key, const char *actor)
{
    if (!self || !t || (n && !items) || !actor || !vg_utf8_valid(t->action) ||
        !vg_utf8_valid(t->requested_by) || !vg_utf8_valid(actor))
        return -EINVAL;
    if (n == 0)
        return 0;
    for (size_t i = 0; i < t->nargs; i++) {
        if (!vg_utf8_valid(t->args[i]->key) || !vg_utf8_valid(t->args[i]->value) ||
            has_control(t->args[i]->key) || has_control(t->args[i]->value))
            return -EINVAL;
    }
    struct store_buf cols[5]; /* id, node, request_sha256, nonce, signature (hex) */
    memset(cols, 0, sizeof(cols));
    for (size_t i = 0; i < n; i++) {
        char sha[65], nonce[33], sig[129];
        if (!vg_utf8_valid(items[i].id) || !vg_utf8_valid(items[i].node)) {
            for (int c = 0; c < 5; c++)
                store_buf_free(&cols[c]);
            return -EINVAL;
        }
        tohex(items[i].request_sha256, 32, sha);
        tohex(items[i].nonce, 16, nonce);
        tohex(items[i].signature, 64, sig);
        const char *values[5] = {items[i].id, items[i].node, sha, nonce, sig};
        for (int c = 0; c < 5; c++) {
            store_array_sep(&cols[c], i);
            store_array_put_text(&cols[c], values[c]);
        }
    }
    for (int c = 0; c < 5; c++)
        store_buf_putc(&cols[c], '}');
    char *args = args_to_json(t);
    char incident[24], created[24], approve_by[24], issued[24], not_after[24];
    snprintf(incident, sizeof(incident), "%" PRIu64, t->incident_id);
    snprintf(created, sizeof(created), "%" PRId64, t->created_at_ms);
    snprintf(approve_by, sizeof(approve_by), "%" PRId64, t->approve_by_ms);
    snprintf(issued, sizeof(issued), "%" PRId64, issued_at_ms);
    snprintf(not_after, sizeof(not_after), "%" PRId64, not_after_ms);
    const char *params[] = {cols[0].data, cols[1].data, cols[2].data,
                            cols[3].data, cols[4].data, t->action,
                            args,         incident,     t->requested_by,
                            created,      approve_by,   t->dry_run ? "t" : "f",
                            issued,       not_after,    coordinator_key,
                            actor};
    uint64_t issued_rows = 0;
    int r = args && cols[0].data && cols[1].data && cols[2].data && cols[3].data && cols[4].data
                ? 0
                : -ENOMEM;
    if (r == 0)
        r = run_counted(
            self, "commands issue",
            "WITH n AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],"
            "    $5::text[]) WITH ORDINALITY AS n(id, node, sha, nonce, sig, ord)),"
            " req AS (INSERT INTO command_requests (id, action, args, node, incident_id,"
            "    requested_by, created_at, approve_by, dry_run, mode, request_sha256)"
            "  SELECT n.id, $6, $7::jsonb, n.node, $8::bigint, $9,"
            "    timestamptz 'epoch' + $10::bigint * interval '1 millisecond',"
            "    timestamptz 'epoch' + $11::bigint * interval '1 millisecond',"
            "    $12::boolean, 'auto', decode(n.sha, 'hex') FROM n"
            "  WHERE $8::bigint = 0 OR EXISTS (SELECT 1 FROM incidents WHERE id = $8::bigint)"
            "  ORDER BY n.ord RETURNING id, node),"
            /* Pending, then issued: the trigger takes a request's rows in this order. */
            " st AS (INSERT INTO command_states (request_id, state, prev_state, actor)"
            "  SELECT req.id, s.state, s.prev_state, s.actor FROM req JOIN n ON n.id = req.id,"
            "    (VALUES (1, 'pending', NULL, $9::text), (2, 'issued', 'pending', $16::text))"
            "      s(k, state, prev_state, actor)"
            "  ORDER BY n.ord, s.k),"
            " cap AS (INSERT INTO command_capsules (request_id, nonce, issued_at, not_after,"
            "    coordinator_key, signature)"
            "  SELECT req.id, decode(n.nonce, 'hex'),"
            "    timestamptz 'epoch' + $13::bigint * interval '1 millisecond',"
            "    timestamptz 'epoch' + $14::bigint * interval '1 millisecond', $15,"
            "    decode(n.sig, 'hex') FROM req JOIN n ON n.id = req.id RETURNING request_id),"
            " audit AS (INSERT INTO audit_log (actor, action, subject, detail)"
            "  SELECT $16, a.action, n.id, CASE a.action"
            "    WHEN 'command.request' THEN format('action=%s node=%s mode=auto dry_run=%s"
            " incident=%s', $6, n.node, $12::boolean, $8)"
            "    ELSE format('action=%s node=%s nonce=%s not_after=%s', $6, n.node, n.nonce,"
            "      timestamptz 'epoch' + $14::bigint * interval '1 millisecond') END"
            "  FROM n JOIN req ON req.id = n.id,"
            "    (VALUES (1, 'command.request'), (2, 'command.issue')) a(k, action)"
            "  ORDER BY n.ord, a.k),"
            " timeline AS (" TIMELINE_EVENT "  SELECT $8::bigint, now(), 'command', a.actor,"
            "    CASE a.k WHEN 1 THEN format('command %s requested: %s on %s (auto%s)', n.id, $6,"
            "      n.node, CASE WHEN $12::boolean THEN ', dry run' ELSE '' END)"
            "    ELSE format('command %s issued: %s sent to %s', n.id, $6, n.node) END,"
            "    jsonb_build_object('request_id', n.id, 'state',"
            "      CASE a.k WHEN 1 THEN 'pending' ELSE 'issued' END)"
            "  FROM n JOIN req ON req.id = n.id,"
            "    (VALUES (1, $9), (2, 'vigil')) a(k, actor)"
            "  WHERE $8::bigint <> 0 ORDER BY n.ord, a.k)"
            " SELECT 1 FROM cap",
            16, params, &issued_rows);
    free(args);
    for (int c = 0; c < 5; c++)
        store_buf_free(&cols[c]);
    if (r < 0)
        return r;
    return issued_rows == n ? 0 : -ENOENT; /* none: the incident was not there */
}

int store_command_capsule_add(store_t *self, const char *request_id, const uint8_t nonce[16],
                              int64_t issued_at_ms, int64_t not_after_ms,
                              const char *coordinator_key, const uint8_t signature[64],
                              const char *actor)
{
    char nonce_hex[33], sig[129], issued[24], not_after[24];
    tohex(nonce, 16, nonce_hex);
    tohex(signature, 64, sig);
    snprintf(issued, sizeof(issued), "%" PRId64, issued_at_ms);
    snprintf(not_after, sizeof(not_after), "%" PRId64, not_after_ms);
    const char *params[] = {request_id, nonce_hex, issued, not_after, coordinator_key, sig, actor};
    uint64_t changed = 0;
    int r = run_counted(
        self, "command issue",
        "WITH ins AS ("
        "  INSERT INTO command_capsules (request_id, nonce, issued_at, not_after, coordinator_key,"
        "    signature)"
        "  VALUES ($1, decode($2, 'hex'),"
        "    timestamptz 'epoch' + $3::bigint * interval '1 millisecond',"
        "    timestamptz 'epoch' + $4::bigint * interval '1 millisecond', $5, decode($6, 'hex'))"
        "  RETURNING request_id, not_after),"
        " moved AS (INSERT INTO command_states (request_id, state, prev_state, actor)"
        "  SELECT request_id, 'issued', 'pending', $7 FROM ins RETURNING request_id),"
        " st AS (SELECT q.id, q.incident_id, q.action, q.node, ins.not_after"
        "  FROM moved JOIN ins ON ins.request_id = moved.request_id"
        "  JOIN command_requests q ON q.id = moved.request_id),"
        " audit AS (INSERT INTO audit_log (actor, action, subject, detail)"
        "  SELECT $7, 'command.issue', id, format('action=%s node=%s nonce=%s not_after=%s',"
        "         action, node, $2, not_after) FROM st),"
        " timeline AS (" TIMELINE_EVENT "  SELECT incident_id, now(), 'command', 'vigil',"
        "    format('command %s issued: %s sent to %s', id, action, node),"
        "    jsonb_build_object('request_id', id, 'state', 'issued') FROM st WHERE incident_id <> "
        "0)"
        " SELECT 1 FROM st",
        7, params, &changed);
    if (r == 0 && changed != 1)
        r = -ESTALE;
    return r;
}

int store_command_transition(store_t *self, const char *request_id, const char *from,
                             const char *to, const char *actor, const char *action)
{
    if (!vg_utf8_valid(actor))
        return -EINVAL;
    const char *params[] = {request_id, from, to, actor, action};
    uint64_t changed = 0;
    int r = run_counted(
        self, "command transition",
        "WITH moved AS (INSERT INTO command_states (request_id, state, prev_state, actor)"
        "  VALUES ($1, $3, $2, $4) RETURNING request_id),"
        " st AS (SELECT q.id, q.incident_id, q.action, q.node"
        "  FROM moved JOIN command_requests q ON q.id = moved.request_id),"
        " audit AS (INSERT INTO audit_log (actor, action, subject, detail)"
        "  SELECT $4, $5, id, format('action=%s node=%s state=%s', action, node, $3) FROM st),"
        " timeline AS (" TIMELINE_EVENT "  SELECT incident_id, now(), 'command', $4,"
        "    format('command %s %s: %s on %s', id, $3, action, node),"
        "    jsonb_build_object('request_id', id, 'state', $3) FROM st WHERE incident_id <> 0)"
        " SELECT 1 FROM st",
        5, params, &changed);
    if (r == 0 && changed != 1)
        r = -ESTALE;
    return r;
}

/* ---- expiry ---- */

struct expired_walk {
    struct store_command_expired *items;
    size_t max, n;
};

static int expired_row(const PGresult *res, int row, void *userdata)
{
    struct expired_walk *w = userdata;
    if (w->n >= w->max)
        return 0;
    struct store_command_expired *e = &w->items[w->n++];
    copy_field(e->state, sizeof(e->state), PQgetvalue(res, row, 0));
    copy_field(e->id, sizeof(e->id), PQgetvalue(res, row, 1));
    copy_field(e->action, sizeof(e->action), PQgetvalue(res, row, 2));
    copy_field(e->node, sizeof(e->node), PQgetvalue(res, row, 3));
    return 0;
}

int store_commands_expire(store_t *self, int64_t grace_ms, struct store_command_expired *ret,
                          size_t max, size_t *ret_n)
{
    char grace[24];
    snprintf(grace, sizeof(grace), "%" PRId64, grace_ms);
    const char *params[] = {grace};
    struct expired_walk w = {ret, max, 0};
    int r = store_ensure_conn(self);
    if (r < 0)
        return r;
    r = store_query_rows(
        self, "command expiry",
        "WITH lost AS ("
        "  INSERT INTO command_states (request_id, state, prev_state, actor)"
        "  SELECT s.request_id, 'lost', 'issued', 'coordinator' FROM command_current s"
        "  JOIN command_capsules c ON c.request_id = s.request_id"
        "  WHERE s.state = 'issued'"
        "    AND c.not_after < now() - $1::bigint * interval '1 millisecond'"
        "  RETURNING request_id, state),"
        " expired AS ("
        "  INSERT INTO command_states (request_id, state, prev_state, actor)"
        "  SELECT s.request_id, 'expired', 'pending', 'coordinator' FROM command_current s"
        "  JOIN command_requests q ON q.id = s.request_id"
        "  WHERE s.state = 'pending' AND q.approve_by < now()"
        "  RETURNING request_id, state),"
        " gone AS (SELECT g.state, q.id, q.action, q.node, q.incident_id"
        "  FROM (SELECT * FROM lost UNION ALL SELECT * FROM expired) g"
        "  JOIN command_requests q ON q.id = g.request_id),"
        " audit AS (INSERT INTO audit_log (actor, action, subject, detail)"
        "  SELECT 'coordinator', 'command.' || state, id,"
        "    CASE state WHEN 'lost' THEN format('action=%s node=%s: no report before the capsule"
        " expired', action, node)"
        "    ELSE format('action=%s node=%s: not approved before its deadline', action, node) END"
        "  FROM gone),"
        " timeline AS (" TIMELINE_EVENT "  SELECT incident_id, now(), 'command', 'vigil',"
        "    CASE state WHEN 'lost' THEN format('command %s lost: %s on %s never reported before"
        " its capsule expired', id, action, node)"
        "    ELSE format('command %s expired: %s on %s was not approved in time', id, action,"
        " node) END,"
        "    jsonb_build_object('request_id', id, 'state', state) FROM gone"
        "  WHERE incident_id <> 0)"
        " SELECT state, id, action, node FROM gone",
        1, params, expired_row, &w);
    if (r == 0 && ret_n)
        *ret_n = w.n;
    return r;
}

/* ---- the agents' catalogs ---- */

int store_agent_actions_set(store_t *self, const char *agent_id, const char *actions_json,
                            bool *ret_changed)
{
    if (!self || !agent_id || !actions_json || !vg_utf8_valid(actions_json))
        return -EINVAL;
    const char *params[] = {agent_id, actions_json};
    uint64_t changed = 0;
    int r = store_ensure_conn(self);
    if (r == 0)
        r = run_counted(self, "agent actions",
                        "WITH up AS (UPDATE agents SET actions = $2::jsonb"
                        "  WHERE id = $1 AND actions <> $2::jsonb"
                        "  RETURNING id, jsonb_array_length(actions) AS n),"
                        " audit AS (INSERT INTO audit_log (actor, action, subject, detail)"
                        "  SELECT id, 'agent.actions', id,"
                        "    format('declares %s actions: %s', n, $2) FROM up)"
                        " SELECT 1 FROM up",
                        2, params, &changed);
    if (r == 0 && ret_changed)
        *ret_changed = changed > 0;
    return r;
}

/* ---- reports, in the ingest transaction ---- */

/* The request's state once this step is known. */
static const char *state_after(const Vigil__CommandReport *rep)
{
    if (rep->step == VIGIL__COMMAND_STEP__COMMAND_STEP_DONE)
        return rep->exit_status == 0 ? "done" : "failed";
    return vg_command_step_name(rep->step);
}

/* ---- the evidence a command leaves ---- */

void store_followups_clear(struct store_followups *f)
{
    for (size_t i = 0; f && i < f->n; i++)
        free(f->items[i].envelope);
    if (f) {
        free(f->items);
        *f = (struct store_followups){0};
    }
}

static struct store_followup *followup_add(struct store_followups *f)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        struct store_followup *more = realloc(f->items, cap * sizeof(*more));
        if (!more)
            return NULL;
        f->items = more;
        f->cap = cap;
    }
    struct store_followup *item = &f->items[f->n++];
    memset(item, 0, sizeof(*item));
    return item;
}

void store_followups_append(struct store_followups *to, struct store_followups *from)
{
    for (size_t i = 0; i < from->n; i++) {
        struct store_followup *item = followup_add(to);
        if (!item) {
            vg_log(VG_LOG_WARN,
                   "store: out of memory: %zu collections after commands not sent (they fail at "
                   "their deadline)",
                   from->n - i);
            for (size_t k = i; k < from->n; k++)
                free(from->items[k].envelope);
            break;
        }
        *item = from->items[i];
    }
    free(from->items);
    *from = (struct store_followups){0};
}

void store_followups_take(store_t *self, struct store_followups *ret)
{
    store_followups_clear(ret);
    *ret = self->followups;
    self->followups = (struct store_followups){0};
}

struct followup_rows {
    const char *agent_id;
    int64_t deadline_ms;
    struct store_followups *out;
};

/* One opened collection (id, kind, args as a JSON object) into a packed CollectRequest. */
static int followup_row(const PGresult *res, int row, void *userdata)
{
    struct followup_rows *w = userdata;
    json_t *args = json_loads(PQgetvalue(res, row, 2), 0, NULL);
    size_t nargs = json_is_object(args) ? json_object_size(args) : 0;
    Vigil__Label labels[VG_MAX_EVIDENCE_ARGS], *label_ptrs[VG_MAX_EVIDENCE_ARGS];
    size_t n = 0;
    const char *key;
    json_t *value;

    json_object_foreach(args, key, value)
    {
        if (n == VG_MAX_EVIDENCE_ARGS || nargs > VG_MAX_EVIDENCE_ARGS || !json_is_string(value))
            break;
        vigil__label__init(&labels[n]);
        labels[n].key = (char *)key;
        labels[n].value = (char *)json_string_value(value);
        label_ptrs[n] = &labels[n];
        n++;
    }
    Vigil__CollectRequest body = VIGIL__COLLECT_REQUEST__INIT;
    body.collection_id = store_parse_u64_or_zero(PQgetvalue(res, row, 0));
    body.kind = PQgetvalue(res, row, 1);
    body.args = label_ptrs;
    body.n_args = n;
    body.expires_at_ms = w->deadline_ms;
    Vigil__Envelope env;
    vg_envelope_init(&env, "coordinator", 0);
    env.body_case = VIGIL__ENVELOPE__BODY_COLLECT;
    env.collect = &body;

    struct store_followup *item = followup_add(w->out);
    int r = item ? vg_envelope_encode(&env, &item->envelope, &item->len) : -ENOMEM;
    json_decref(args);
    if (r < 0) {
        if (item)
            w->out->n--;
        /* Recorded all the same: the collection fails at its deadline, which says so. */
        vg_log(VG_LOG_WARN, "collection=%" PRIu64 " after a command not sent: %s",
               body.collection_id, strerror(-r));
        return 0;
    }
    snprintf(item->agent_id, sizeof(item->agent_id), "%s", w->agent_id);
    snprintf(item->kind, sizeof(item->kind), "%s", body.kind);
    item->collection_id = body.collection_id;
    return 0;
}

/*
 * A command that ran reported done: opens, in the ingest transaction, one collection for its kept
 * output (when it had any) and one for each evidence kind the node's catalog lists for the action,
 * each with one pending target (this agent), linked to the command.
 */
static int open_followups(store_t *self, const char *agent_id, const char *request_id,
                          bool had_output, struct store_followups *out)
{
    char deadline[24];
    struct followup_rows w = {agent_id, vg_wall_ms() + FOLLOWUP_TIMEOUT_MS, out};
    snprintf(deadline, sizeof(deadline), "%" PRId64, w.deadline_ms);
    const char *params[] = {agent_id, request_id, had_output ? "t" : "f", deadline};
    return store_query_rows(
        self, "command evidence",
        "WITH q AS (SELECT r.id, r.action, a.node, a.actions FROM command_requests r"
        "  JOIN agents a ON a.id = $1 WHERE r.id = $2 AND NOT r.dry_run),"
        " wanted AS ("
        "  SELECT 0::bigint AS ord, 'command_output' AS kind,"
        "    jsonb_build_object('request', q.id) AS args FROM q WHERE $3::boolean"
        "  UNION ALL"
        "  SELECT x.ord, x.e->>'kind', coalesce(x.e->'args', '{}'::jsonb) FROM q,"
        "    jsonb_array_elements(q.actions) act,"
        "    jsonb_array_elements(coalesce(act->'evidence', '[]'::jsonb)) WITH ORDINALITY x(e, ord)"
        "  WHERE act->>'name' = q.action AND jsonb_typeof(x.e->'kind') = 'string'),"
        " coll AS (INSERT INTO evidence_collections (operator, kind, args, deadline, command_id)"
        "  SELECT 'vigil', w.kind, w.args,"
        "    timestamptz 'epoch' + $4::bigint * interval '1 millisecond', q.id"
        "  FROM wanted w, q ORDER BY w.ord RETURNING id, kind, args),"
        " tgt AS (INSERT INTO evidence_targets (collection_id, agent_id, node)"
        "  SELECT coll.id, $1, q.node FROM coll, q)"
        " SELECT id, kind, args::text FROM coll ORDER BY id",
        4, params, followup_row, &w);
}

/* The report columns, as text arrays in this order ($1..$12 of REPORTS_SQL). */
enum report_column {
    RC_AGENT,
    RC_SEQ,
    RC_REQUEST,
    RC_NONCE,
    RC_STEP,
    RC_EXIT,
    RC_DURATION,
    RC_SHA,
    RC_TRUNCATED,
    RC_REASON,
    RC_AT,
    RC_STATE,
    RC_COUNT
};

/*
 * Every fresh report of a batch in one statement: only those naming an issued capsule (request
 * id and nonce) of the reporting agent's node are stored; a request moves to the highest state
 * its reports reach, forward only (prev_state NULL: the command_states trigger drops a move that
 * does not raise the rank, so a late accepted never undoes a done); each stored report is a
 * timeline event, in the order they came. Answers (ordinality, whether the node's catalog lists
 * evidence for the action) for each report stored.
 */
#define REPORTS_SQL                                                                                \
    "WITH r AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],"  \
    "    $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])"   \
    "  WITH ORDINALITY AS r(agent_id, seq, request_id, nonce, step, exit_status, duration_ms,"     \
    "    sha, truncated, reason, at_ms, state_after, ord)),"                                       \
    " q AS (SELECT r.*, q.incident_id, q.action, q.node FROM r"                                    \
    "  JOIN command_requests q ON q.id = r.request_id"                                             \
    "  JOIN command_capsules c ON c.request_id = q.id AND c.nonce = decode(r.nonce, 'hex')"        \
    "  JOIN agents a ON a.id = r.agent_id AND a.node = q.node),"                                   \
    " ins AS (INSERT INTO command_reports (agent_id, seq, request_id, nonce, step, exit_status,"   \
    "    duration_ms, output_sha256, truncated, reason, reported_at)"                              \
    "  SELECT agent_id, seq::bigint, request_id, decode(nonce, 'hex'), step,"                      \
    "    exit_status::integer, duration_ms::bigint, decode(sha, 'hex'), truncated::boolean,"       \
    "    reason, timestamptz 'epoch' + at_ms::bigint * interval '1 millisecond'"                   \
    "  FROM q ORDER BY ord),"                                                                      \
    " best AS (SELECT DISTINCT ON (request_id) request_id, state_after, agent_id FROM q"           \
    "  ORDER BY request_id, vigil_command_state_rank(state_after) DESC, ord),"                     \
    " st AS (INSERT INTO command_states (request_id, state, actor)"                                \
    "  SELECT request_id, state_after, agent_id FROM best),"                                       \
    " timeline AS (" TIMELINE_EVENT "  SELECT incident_id, now(), 'command', 'vigil',"             \
    "    format('command %s %s on %s: %s%s', request_id, action, node, state_after,"               \
    "      CASE WHEN step = 'done' THEN format(' (exit %s, %s ms)', exit_status, duration_ms)"     \
    "           WHEN reason <> '' THEN ': ' || reason ELSE '' END),"                               \
    "    jsonb_build_object('request_id', request_id, 'step', step, 'agent', agent_id)"            \
    "  FROM q WHERE incident_id <> 0 ORDER BY ord)"                                                \
    " SELECT q.ord, EXISTS (SELECT 1 FROM agents a, jsonb_array_elements(a.actions) act"           \
    "  WHERE a.id = q.agent_id AND act->>'name' = q.action"                                        \
    "    AND jsonb_array_length(coalesce(act->'evidence', '[]'::jsonb)) > 0)"                      \
    " FROM q" /* ins, st and timeline run whether read or not (data-modifying CTEs) */

/* One fresh report of the batch: its message, and what the statement answered. */
struct report_item {
    const Vigil__Envelope *m;
    bool stored;
    bool action_evidence; /* the node's catalog lists evidence for the action */
};

struct report_rows {
    struct report_item *items;
    size_t n;
};

static int report_row(const PGresult *res, int row, void *userdata)
{
    struct report_rows *w = userdata;
    uint64_t ord = store_parse_u64_or_zero(PQgetvalue(res, row, 0));
    if (ord >= 1 && ord <= w->n) {
        w->items[ord - 1].stored = true;
        w->items[ord - 1].action_evidence = strcmp(PQgetvalue(res, row, 1), "t") == 0;
    }
    return 0;
}

/* An element of a text array: the value quoted, or NULL. */
static void put_element(struct store_buf *b, size_t i, const char *value)
{
    store_array_sep(b, i);
    if (value)
        store_array_put_text(b, value);
    else
        store_buf_puts(b, "NULL");
}

/* The columns of one report, as text (NULL where the column is). */
static void report_columns(const Vigil__Envelope *m, char bufs[RC_COUNT][72],
                           const char *cols[RC_COUNT])
{
    const Vigil__CommandReport *rep = m->command_report;
    bool done = rep->step == VIGIL__COMMAND_STEP__COMMAND_STEP_DONE;
    snprintf(bufs[RC_SEQ], 72, "%" PRIu64, m->seq);
    tohex(rep->nonce.data, 16, bufs[RC_NONCE]);
    snprintf(bufs[RC_EXIT], 72, "%" PRId32, rep->exit_status);
    snprintf(bufs[RC_DURATION], 72, "%" PRIu64,
             rep->duration_ms > (uint64_t)INT64_MAX ? (uint64_t)INT64_MAX : rep->duration_ms);
    bufs[RC_SHA][0] = '\0';
    if (done && rep->output_sha256.len == 32)
        tohex(rep->output_sha256.data, 32, bufs[RC_SHA]);
    snprintf(bufs[RC_AT], 72, "%" PRId64,
             rep->at_ms >= STORE_TS_MIN_MS && rep->at_ms <= STORE_TS_MAX_MS ? rep->at_ms : 0);
    cols[RC_AGENT] = m->sender;
    cols[RC_SEQ] = bufs[RC_SEQ];
    cols[RC_REQUEST] = rep->request_id;
    cols[RC_NONCE] = bufs[RC_NONCE];
    cols[RC_STEP] = vg_command_step_name(rep->step);
    cols[RC_EXIT] = done ? bufs[RC_EXIT] : NULL;
    cols[RC_DURATION] = done ? bufs[RC_DURATION] : NULL;
    cols[RC_SHA] = bufs[RC_SHA][0] ? bufs[RC_SHA] : NULL;
    cols[RC_TRUNCATED] = done && rep->output_truncated ? "t" : "f";
    cols[RC_REASON] = store_str_or_empty(rep->reason);
    cols[RC_AT] = rep->at_ms ? bufs[RC_AT] : NULL;
    cols[RC_STATE] = state_after(rep);
}

/* Logs what became of each report and opens the collections of the done ones that left
 * something (open_followups). */
static int after_reports(store_t *self, const struct report_rows *w,
                         struct store_followups *followups)
{
    static const char empty_sha256[] =
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    for (size_t k = 0; k < w->n; k++) {
        const struct report_item *it = &w->items[k];
        const Vigil__CommandReport *rep = it->m->command_report;
        bool done = rep->step == VIGIL__COMMAND_STEP__COMMAND_STEP_DONE;
        if (!it->stored) {
            vg_log(VG_LOG_WARN,
                   "command report ignored agent=%s seq=%" PRIu64
                   " request=%.64s: no capsule with that request id and nonce for this agent's "
                   "node",
                   it->m->sender, it->m->seq, rep->request_id);
            continue;
        }
        if (done)
            vg_log(VG_LOG_INFO, "command=%s agent=%s step=done exit=%" PRId32, rep->request_id,
                   it->m->sender, rep->exit_status);
        else
            vg_log(VG_LOG_INFO, "command=%s agent=%s step=%s", rep->request_id, it->m->sender,
                   vg_command_step_name(rep->step));
        char sha[65] = "";
        if (done && rep->output_sha256.len == 32)
            tohex(rep->output_sha256.data, 32, sha);
        bool had_output = sha[0] && strcmp(sha, empty_sha256) != 0;
        if (done && (had_output || it->action_evidence)) {
            int r = open_followups(self, it->m->sender, rep->request_id, had_output, followups);
            if (r < 0)
                return r;
        }
    }
    return 0;
}

int store_commands_ingest(store_t *self, Vigil__Envelope *const *msgs, size_t n, const bool *fresh,
                          struct store_followups *followups)
{
    struct report_rows w = {calloc(n ? n : 1, sizeof(struct report_item)), 0};
    struct store_buf arrays[RC_COUNT];
    int r = 0;

    if (!w.items)
        return -ENOMEM;
    memset(arrays, 0, sizeof(arrays));
    for (size_t i = 0; i < n; i++) {
        const Vigil__Envelope *m = msgs[i];
        if (!fresh[i] || m->body_case != VIGIL__ENVELOPE__BODY_COMMAND_REPORT ||
            !m->command_report || !vg_command_step_name(m->command_report->step) ||
            m->command_report->nonce.len != 16)
            continue;
        char bufs[RC_COUNT][72];
        const char *cols[RC_COUNT];
        report_columns(m, bufs, cols);
        for (int c = 0; c < RC_COUNT; c++)
            put_element(&arrays[c], w.n, cols[c]);
        w.items[w.n++].m = m;
    }
    if (w.n > 0) {
        const char *params[RC_COUNT];
        for (int c = 0; c < RC_COUNT; c++) {
            store_buf_putc(&arrays[c], '}');
            params[c] = arrays[c].data;
        }
        for (int c = 0; c < RC_COUNT && r == 0; c++)
            if (!arrays[c].data)
                r = -ENOMEM;
        if (r == 0)
            r = store_query_rows(self, "command reports", REPORTS_SQL, RC_COUNT, params, report_row,
                                 &w);
        if (r == 0)
            r = after_reports(self, &w, followups);
    }
    for (int c = 0; c < RC_COUNT; c++)
        store_buf_free(&arrays[c]);
    free(w.items);
    return r;
}
