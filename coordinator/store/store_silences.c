/*
 * Silences (017_silences.sql) on an incidents connection (store_incidents_conn.h): the admin
 * thread adds, lists and ends them with their audit rows; escalate.c reads those in force.
 * Whether one matches an incident is paging/silence.c's decision, not the store's.
 */
#include "store.h"
#include "store_incidents_conn.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

#define MS_TO_TS STORE_MS_TO_TS
#define TS_TO_MS STORE_TS_TO_MS

static const char *const matcher_names[] = {
    [STORE_SILENCE_RUNBOOK] = "runbook",
    [STORE_SILENCE_NODE] = "node",
    [STORE_SILENCE_LABEL] = "label",
};

const char *store_silence_matcher_name(enum store_silence_matcher m)
{
    return (unsigned)m < sizeof(matcher_names) / sizeof(matcher_names[0]) ? matcher_names[m] : NULL;
}

static int matcher_parse(const char *text, enum store_silence_matcher *ret)
{
    for (size_t i = 0; i < sizeof(matcher_names) / sizeof(matcher_names[0]); i++) {
        if (strcmp(text, matcher_names[i]) == 0) {
            *ret = (enum store_silence_matcher)i;
            return 0;
        }
    }
    return -EINVAL;
}

static bool text_ok(const char *s, size_t max)
{
    return s && s[0] && strlen(s) <= max && vg_utf8_valid(s);
}

#define SILENCE_COLUMNS                                                                            \
    "id, matcher, value, reason, created_by, " TS_TO_MS("created_at") ", " TS_TO_MS(               \
        "ends_at") ", " TS_TO_MS("ended_at") ", ended_by"

static int row_to_silence(const PGresult *res, int row, struct store_silence *s)
{
    memset(s, 0, sizeof(*s));
    s->id = strtoull(PQgetvalue(res, row, 0), NULL, 10);
    if (matcher_parse(PQgetvalue(res, row, 1), &s->matcher) < 0)
        return store_incidents_unknown("silences.matcher", PQgetvalue(res, row, 1));
    snprintf(s->value, sizeof(s->value), "%s", PQgetvalue(res, row, 2));
    snprintf(s->reason, sizeof(s->reason), "%s", PQgetvalue(res, row, 3));
    snprintf(s->created_by, sizeof(s->created_by), "%s", PQgetvalue(res, row, 4));
    s->created_at_ms = store_incidents_field_i64(res, row, 5);
    s->ends_at_ms = store_incidents_field_i64(res, row, 6);
    s->ended_at_ms = store_incidents_field_i64(res, row, 7);
    snprintf(s->ended_by, sizeof(s->ended_by), "%s", PQgetvalue(res, row, 8));
    return 0;
}

int store_silence_add(store_incidents_t *self, const struct store_silence *s, const char *actor,
                      uint64_t *ret_id)
{
    const char *matcher = store_silence_matcher_name(s->matcher);
    if (!matcher || !text_ok(s->value, STORE_SILENCE_VALUE_MAX) ||
        !text_ok(s->reason, STORE_SILENCE_REASON_MAX) ||
        !text_ok(s->created_by, sizeof(s->created_by) - 1) || s->ends_at_ms <= s->created_at_ms)
        return -EINVAL;
    char created[24], ends[24], detail[STORE_SILENCE_VALUE_MAX + 160];
    snprintf(created, sizeof(created), "%" PRId64, s->created_at_ms);
    snprintf(ends, sizeof(ends), "%" PRId64, s->ends_at_ms);
    const char *params[] = {matcher, s->value, s->reason, s->created_by, created, ends};
    PGresult *res = NULL;
    uint64_t id = 0;
    int r = store_incidents_begin(self);
    if (r < 0)
        return r;
    r = store_incidents_run(
        self,
        "INSERT INTO silences (matcher, value, reason, created_by, created_at,"
        " ends_at) VALUES ($1, $2, $3, $4, " MS_TO_TS(5) ", " MS_TO_TS(6) ")"
                                                                          " RETURNING id",
        6, params, "add silence", &res);
    if (r == 0) {
        id = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        char subject[32];
        snprintf(subject, sizeof(subject), "silence %" PRIu64, id);
        snprintf(detail, sizeof(detail), "%s=%s for %" PRId64 " s", matcher, s->value,
                 (s->ends_at_ms - s->created_at_ms) / 1000);
        r = store_incidents_audit_on_commit(self, actor, "silence_add", subject, detail);
    }
    if (r == 0)
        r = store_incidents_commit(self);
    if (r < 0)
        store_incidents_rollback(self);
    store_incidents_audit_clear(self);
    if (r == 0)
        *ret_id = id;
    return r;
}

int store_silence_end(store_incidents_t *self, uint64_t id, const char *actor, int64_t at_ms,
                      struct store_silence *ret)
{
    char idtext[24], at[24], subject[32];
    snprintf(idtext, sizeof(idtext), "%" PRIu64, id);
    snprintf(at, sizeof(at), "%" PRId64, at_ms);
    snprintf(subject, sizeof(subject), "silence %" PRIu64, id);
    const char *params[] = {idtext, at, actor};
    PGresult *res = NULL;
    struct store_silence s;
    int r = store_incidents_begin(self);
    if (r < 0)
        return r;
    r = store_incidents_run(self,
                            "SELECT " SILENCE_COLUMNS " FROM silences WHERE id = $1::bigint"
                            " FOR UPDATE",
                            1, params, "read silence", &res);
    if (r == 0) {
        r = PQntuples(res) == 1 ? row_to_silence(res, 0, &s) : -ENOENT;
        PQclear(res);
    }
    if (r == 0 && (s.ended_at_ms || s.ends_at_ms <= at_ms))
        r = -EALREADY;
    if (r == 0)
        r = store_incidents_run(
            self,
            "UPDATE silences SET ended_at = " MS_TO_TS(2) ", ended_by = $3"
                                                          " WHERE id = $1::bigint",
            3, params, "end silence", &res);
    if (r == 0) {
        PQclear(res);
        s.ended_at_ms = at_ms;
        snprintf(s.ended_by, sizeof(s.ended_by), "%s", actor);
        r = store_incidents_audit_on_commit(self, actor, "silence_end", subject, NULL);
    }
    if (r == 0)
        r = store_incidents_commit(self);
    if (r < 0)
        store_incidents_rollback(self);
    store_incidents_audit_clear(self);
    if (r == 0)
        *ret = s;
    return r;
}

int store_silences_list(store_incidents_t *self, bool all, int64_t now_ms, size_t max,
                        struct store_silence **ret, size_t *ret_n)
{
    char now[24], lim[24];
    snprintf(now, sizeof(now), "%" PRId64, now_ms);
    snprintf(lim, sizeof(lim), "%zu", max);
    const char *params[] = {now, lim};
    PGresult *res = NULL;
    int r = store_incidents_ensure(self);
    if (r < 0)
        return r;
    r = store_incidents_run(
        self,
        all ? "SELECT " SILENCE_COLUMNS " FROM silences WHERE $1::bigint > 0"
              " ORDER BY id DESC LIMIT $2::bigint"
            : "SELECT " SILENCE_COLUMNS " FROM silences"
              " WHERE ended_at IS NULL AND ends_at > " MS_TO_TS(1) " ORDER BY id LIMIT $2::bigint",
        2, params, "list silences", &res);
    if (r < 0)
        return r;
    size_t n = (size_t)PQntuples(res);
    struct store_silence *list = n ? calloc(n, sizeof(*list)) : NULL;
    if (n && !list)
        r = -ENOMEM;
    for (size_t i = 0; r == 0 && i < n; i++)
        r = row_to_silence(res, (int)i, &list[i]);
    PQclear(res);
    if (r < 0) {
        free(list);
        return r;
    }
    *ret = list;
    *ret_n = n;
    return 0;
}
