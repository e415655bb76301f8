/*
 * Follow-up actions (023_followups.sql) on an incidents connection (store_incidents_conn.h):
 * the admin thread adds and finishes them, each change with its note on the incident's timeline
 * and its audit row in one transaction; `vigilctl followups` and the report draft list them.
 *
 * Nothing here changes a row: a follow-up is inserted once, and "done" is a row of
 * followup_events (the table's unique index allows one per follow-up). Whether one is overdue
 * is decided at read time against the day the caller names (UTC), never stored.
 */
#include "store.h"
#include "store_incidents_conn.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timeutil.h"
#include "utf8.h"

#define MS_TO_TS STORE_MS_TO_TS
#define TS_TO_MS STORE_TS_TO_MS

/* clang-format off */
#define FOLLOWUP_COLUMNS                                                                           \
    "f.id, f.incident_id, f.text, f.owner, coalesce(to_char(f.due, 'YYYY-MM-DD'), ''),"            \
    " (e.id IS NULL AND f.due IS NOT NULL AND f.due < $1::date), f.created_by, "                   \
    TS_TO_MS("f.created_at") ", e.id IS NOT NULL, coalesce(e.actor, ''), " TS_TO_MS("e.at")        \
    ", coalesce(e.note, '')"
/* clang-format on */
#define FOLLOWUP_FROM                                                                              \
    " FROM followups f LEFT JOIN followup_events e ON e.followup_id = f.id AND e.kind = 'done'"

static bool text_ok(const char *s, size_t max, bool required)
{
    return s && (!required || s[0]) && strlen(s) <= max && vg_utf8_valid(s);
}

static void row_to_followup(const PGresult *res, int row, struct store_followup_action *f)
{
    memset(f, 0, sizeof(*f));
    f->id = strtoull(PQgetvalue(res, row, 0), NULL, 10);
    f->incident_id = strtoull(PQgetvalue(res, row, 1), NULL, 10);
    snprintf(f->text, sizeof(f->text), "%s", PQgetvalue(res, row, 2));
    snprintf(f->owner, sizeof(f->owner), "%s", PQgetvalue(res, row, 3));
    snprintf(f->due, sizeof(f->due), "%s", PQgetvalue(res, row, 4));
    f->overdue = PQgetvalue(res, row, 5)[0] == 't';
    snprintf(f->created_by, sizeof(f->created_by), "%s", PQgetvalue(res, row, 6));
    f->created_at_ms = store_incidents_field_i64(res, row, 7);
    f->done = PQgetvalue(res, row, 8)[0] == 't';
    snprintf(f->done_by, sizeof(f->done_by), "%s", PQgetvalue(res, row, 9));
    f->done_at_ms = store_incidents_field_i64(res, row, 10);
    snprintf(f->done_note, sizeof(f->done_note), "%s", PQgetvalue(res, row, 11));
}

/* One follow-up, read inside the caller's transaction (locked when for_update). */
static int get_followup(store_incidents_t *self, uint64_t id, bool for_update, int64_t today_ms,
                        struct store_followup_action *ret)
{
    char today[16], idtext[24];
    vg_date_text(today_ms, today, sizeof(today));
    snprintf(idtext, sizeof(idtext), "%" PRIu64, id);
    const char *params[] = {today, idtext};
    PGresult *res = NULL;
    int r = 0;
    /* followups is append-only: the coordinator's role may not lock its rows (FOR UPDATE needs
     * UPDATE), so writers of one follow-up take a lock of its own, before the read. */
    if (for_update) {
        r = store_incidents_run(self, "SELECT pg_advisory_xact_lock(hashtext('followup:' || $1))",
                                1, params + 1, "lock follow-up", &res);
        PQclear(res);
        res = NULL;
        if (r < 0)
            return r;
    }
    r = store_incidents_run(self,
                            "SELECT " FOLLOWUP_COLUMNS FOLLOWUP_FROM " WHERE f.id = $2::bigint", 2,
                            params, "read follow-up", &res);
    if (r < 0)
        return r;
    if (PQntuples(res) == 1)
        row_to_followup(res, 0, ret);
    else
        r = -ENOENT;
    PQclear(res);
    return r;
}

/* " (owner alice, due 2026-12-10)", " (owner alice)", " (due ...)" or "". */
static void owner_due(const char *owner, const char *due, char *buf, size_t size)
{
    snprintf(buf, size, "%s%s%s%s%s%s", owner[0] || due[0] ? " (" : "", owner[0] ? "owner " : "",
             owner, owner[0] && due[0] ? ", " : "", due[0] ? "due " : "", due);
    if (owner[0] || due[0]) {
        size_t used = strlen(buf);
        snprintf(buf + used, size - used, ")");
    }
}

int store_followup_add(store_incidents_t *self, const struct store_followup_action *f,
                       const char *actor, int64_t at_ms, struct store_followup_action *ret)
{
    if (!self || !f || !f->incident_id || !text_ok(f->text, STORE_FOLLOWUP_TEXT_MAX, true) ||
        !text_ok(f->owner, sizeof(f->owner) - 1, false) ||
        (f->due[0] && vg_parse_date(f->due, NULL) < 0) ||
        !text_ok(f->created_by, sizeof(f->created_by) - 1, true) || !actor)
        return -EINVAL;
    char incident[24], at[24], subject[64], extra[STORE_FOLLOWUP_OWNER_MAX * 4 + 40];
    snprintf(incident, sizeof(incident), "%" PRIu64, f->incident_id);
    snprintf(at, sizeof(at), "%" PRId64, at_ms);
    const char *params[] = {incident,      f->text, f->owner, f->due[0] ? f->due : NULL,
                            f->created_by, at};
    struct store_incident *inc = calloc(1, sizeof(*inc));
    char *note = NULL;
    PGresult *res = NULL;
    uint64_t id = 0;
    int r = inc ? store_incidents_begin(self) : -ENOMEM;
    if (r < 0) {
        free(inc);
        return r;
    }
    r = store_incident_get(self, f->incident_id, true, inc); /* -ENOENT: no such incident */
    if (r == 0)
        r = store_incidents_run(
            self,
            "INSERT INTO followups (incident_id, text, owner, due, created_by,"
            " created_at) VALUES ($1::bigint, $2, $3, $4::date, $5, " MS_TO_TS(6) ") RETURNING id",
            6, params, "add follow-up", &res);
    if (r == 0) {
        id = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        owner_due(f->owner, f->due, extra, sizeof(extra));
        size_t len = strlen(f->text) + strlen(extra) + 64;
        note = malloc(len);
        if (note)
            snprintf(note, len, "follow-up %" PRIu64 " added: %s%s", id, f->text, extra);
        else
            r = -ENOMEM;
    }
    if (r == 0) {
        char data[64];
        snprintf(data, sizeof(data), "{\"private\":true,\"followup\":%" PRIu64 "}", id);
        r = store_incident_event(self, f->incident_id, at_ms, INCIDENT_EVENT_NOTE, f->created_by,
                                 note, data);
    }
    if (r == 0) {
        /* The text itself is on the timeline and in followups; the audit row names the rest. */
        char detail[STORE_FOLLOWUP_OWNER_MAX * 4 + 80];
        snprintf(subject, sizeof(subject), "incident %" PRIu64, f->incident_id);
        snprintf(detail, sizeof(detail), "follow-up %" PRIu64 "%s", id, extra);
        r = store_incidents_audit_on_commit(self, actor, "followup.add", subject, detail);
    }
    if (r == 0 && ret)
        r = get_followup(self, id, false, at_ms, ret);
    if (r == 0)
        r = store_incidents_commit(self);
    if (r < 0)
        store_incidents_rollback(self);
    store_incidents_audit_clear(self);
    free(note);
    free(inc);
    return r;
}

int store_followup_done(store_incidents_t *self, uint64_t id, const char *name, const char *actor,
                        const char *note, int64_t at_ms, struct store_followup_action *ret)
{
    note = note ? note : "";
    if (!self || !id || !text_ok(name, 255, true) || !actor ||
        !text_ok(note, STORE_FOLLOWUP_TEXT_MAX, false))
        return -EINVAL;
    struct store_followup_action *f = calloc(1, sizeof(*f));
    char idtext[24], at[24], subject[64], detail[64];
    snprintf(idtext, sizeof(idtext), "%" PRIu64, id);
    snprintf(at, sizeof(at), "%" PRId64, at_ms);
    const char *params[] = {idtext, name, at, note};
    char *text = NULL;
    PGresult *res = NULL;
    int r = f ? store_incidents_begin(self) : -ENOMEM;
    if (r < 0) {
        free(f);
        return r;
    }
    r = get_followup(self, id, true, at_ms, f);
    if (r == 0 && f->done)
        r = -EALREADY;
    if (r == 0) {
        r = store_incidents_run(self,
                                "INSERT INTO followup_events (followup_id, kind, actor, at, note)"
                                " VALUES ($1::bigint, 'done', $2, " MS_TO_TS(3) ", $4)",
                                4, params, "finish follow-up", &res);
        PQclear(res);
        if (r == -EEXIST) /* finished by another session since we read it */
            r = -EALREADY;
    }
    if (r == 0) {
        size_t len = strlen(name) + strlen(note) + 64;
        text = malloc(len);
        if (text)
            snprintf(text, len, "follow-up %" PRIu64 " done by %s%s%s", id, name,
                     note[0] ? ": " : "", note);
        else
            r = -ENOMEM;
    }
    if (r == 0) {
        char data[64];
        snprintf(data, sizeof(data), "{\"private\":true,\"followup\":%" PRIu64 "}", id);
        r = store_incident_event(self, f->incident_id, at_ms, INCIDENT_EVENT_NOTE, name, text,
                                 data);
    }
    if (r == 0) {
        snprintf(subject, sizeof(subject), "incident %" PRIu64, f->incident_id);
        snprintf(detail, sizeof(detail), "follow-up %" PRIu64, id);
        r = store_incidents_audit_on_commit(self, actor, "followup.done", subject, detail);
    }
    if (r == 0 && ret)
        r = get_followup(self, id, false, at_ms, ret);
    if (r == 0)
        r = store_incidents_commit(self);
    if (r < 0)
        store_incidents_rollback(self);
    store_incidents_audit_clear(self);
    free(text);
    free(f);
    return r;
}

int store_followups_list(store_incidents_t *self, uint64_t incident_id, bool all, int64_t today_ms,
                         size_t max, struct store_followup_action **ret, size_t *ret_n)
{
    if (!self || !ret || !ret_n)
        return -EINVAL;
    char today[16], incident[24], lim[24];
    vg_date_text(today_ms, today, sizeof(today));
    snprintf(incident, sizeof(incident), "%" PRIu64, incident_id);
    snprintf(lim, sizeof(lim), "%zu", max);
    const char *params[] = {today, incident, all ? "true" : "false", lim};
    PGresult *res = NULL;
    int r = store_incidents_ensure(self);
    if (r < 0)
        return r;
    r = store_incidents_run(
        self,
        incident_id ? "SELECT " FOLLOWUP_COLUMNS FOLLOWUP_FROM " WHERE f.incident_id = $2::bigint"
                      " AND $3::boolean IS NOT NULL ORDER BY f.id LIMIT $4::bigint"
                    : "SELECT " FOLLOWUP_COLUMNS FOLLOWUP_FROM " WHERE $2::bigint = 0"
                      " AND ($3::boolean OR e.id IS NULL)"
                      " ORDER BY e.id IS NOT NULL, 6 DESC, f.due ASC NULLS LAST, f.id DESC"
                      " LIMIT $4::bigint",
        4, params, "list follow-ups", &res);
    if (r < 0)
        return r;
    size_t n = (size_t)PQntuples(res);
    struct store_followup_action *list = n ? calloc(n, sizeof(*list)) : NULL;
    if (n && !list) {
        PQclear(res);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        row_to_followup(res, (int)i, &list[i]);
    PQclear(res);
    *ret = list;
    *ret_n = n;
    return 0;
}
