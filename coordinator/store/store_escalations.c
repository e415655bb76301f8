/*
 * Escalation timers and notification rows, on the incidents connection (store_incidents_conn.h)
 * so that escalate.c pages, records the timeline and moves its timers in one transaction.
 * Primitives only: escalate.c decides what is due and what to send.
 */
#include "store.h"
#include "store_incidents_conn.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS_TO_TS STORE_MS_TO_TS
#define TS_TO_MS STORE_TS_TO_MS

/* NULL for 0 (a timer that is not set), else the decimal milliseconds in buf. */
static const char *ms_param(int64_t ms, char *buf, size_t len)
{
    if (ms == 0)
        return NULL;
    snprintf(buf, len, "%" PRId64, ms);
    return buf;
}

/* clang-format off */
#define ESCALATION_COLUMNS                                                                         \
    "incident_id, policy, level, round, repeats, " TS_TO_MS("started_at") ", "                     \
    TS_TO_MS("next_level_at") ", escalate_now, escalated_by, " TS_TO_MS("next_update_at") ","      \
    " updates_sent, " TS_TO_MS("deadline_at") ", acked_told, resolved_told, "                      \
    TS_TO_MS("report_due_at") ", failures_seen, coalesce(group_leader, 0), "                       \
    TS_TO_MS("group_told_at") ", " TS_TO_MS("group_next_at") ", silenced, update_reminded"
/* clang-format on */

static void row_to_escalation(const PGresult *res, int row, struct store_escalation *e)
{
    memset(e, 0, sizeof(*e));
    e->incident_id = strtoull(PQgetvalue(res, row, 0), NULL, 10);
    snprintf(e->policy, sizeof(e->policy), "%s", PQgetvalue(res, row, 1));
    e->level = store_incidents_field_int(res, row, 2);
    e->round = store_incidents_field_int(res, row, 3);
    e->repeats = store_incidents_field_int(res, row, 4);
    e->started_at_ms = store_incidents_field_i64(res, row, 5);
    e->next_level_at_ms = store_incidents_field_i64(res, row, 6);
    e->escalate_now = PQgetvalue(res, row, 7)[0] == 't';
    snprintf(e->escalated_by, sizeof(e->escalated_by), "%s", PQgetvalue(res, row, 8));
    e->next_update_at_ms = store_incidents_field_i64(res, row, 9);
    e->updates_sent = store_incidents_field_int(res, row, 10);
    e->deadline_at_ms = store_incidents_field_i64(res, row, 11);
    e->acked_told = PQgetvalue(res, row, 12)[0] == 't';
    e->resolved_told = PQgetvalue(res, row, 13)[0] == 't';
    e->report_due_at_ms = store_incidents_field_i64(res, row, 14);
    e->failures_seen = strtoull(PQgetvalue(res, row, 15), NULL, 10);
    e->group_leader = strtoull(PQgetvalue(res, row, 16), NULL, 10);
    e->group_told_at_ms = store_incidents_field_i64(res, row, 17);
    e->group_next_at_ms = store_incidents_field_i64(res, row, 18);
    e->silenced = PQgetvalue(res, row, 19)[0] == 't';
    e->update_reminded = PQgetvalue(res, row, 20)[0] == 't';
}

int store_escalation_get(store_incidents_t *self, uint64_t incident_id, bool for_update,
                         struct store_escalation *ret)
{
    char id[24];
    snprintf(id, sizeof(id), "%" PRIu64, incident_id);
    const char *params[] = {id};
    PGresult *res = NULL;
    int r = store_incidents_run(self,
                                for_update ? "SELECT " ESCALATION_COLUMNS " FROM escalations"
                                             " WHERE incident_id = $1::bigint FOR UPDATE"
                                           : "SELECT " ESCALATION_COLUMNS " FROM escalations"
                                             " WHERE incident_id = $1::bigint",
                                1, params, "read escalation", &res);
    if (r < 0)
        return r;
    r = PQntuples(res) == 1 ? 0 : -ENOENT;
    if (r == 0)
        row_to_escalation(res, 0, ret);
    PQclear(res);
    return r;
}

int store_escalation_put(store_incidents_t *self, const struct store_escalation *e)
{
    char id[24], level[16], round[16], repeats[16], started[24], next_level[24], next_update[24],
        updates[16], deadline[24], report_due[24], failures[24], leader[24], told[24],
        next_group[24];
    snprintf(id, sizeof(id), "%" PRIu64, e->incident_id);
    snprintf(level, sizeof(level), "%d", e->level);
    snprintf(round, sizeof(round), "%d", e->round);
    snprintf(repeats, sizeof(repeats), "%d", e->repeats);
    snprintf(started, sizeof(started), "%" PRId64, e->started_at_ms);
    snprintf(updates, sizeof(updates), "%d", e->updates_sent);
    snprintf(failures, sizeof(failures), "%" PRIu64, e->failures_seen);
    snprintf(leader, sizeof(leader), "%" PRIu64, e->group_leader);
    const char *params[] = {id,
                            e->policy,
                            level,
                            round,
                            started,
                            ms_param(e->next_level_at_ms, next_level, sizeof(next_level)),
                            e->escalate_now ? "true" : "false",
                            e->escalated_by,
                            ms_param(e->next_update_at_ms, next_update, sizeof(next_update)),
                            updates,
                            ms_param(e->deadline_at_ms, deadline, sizeof(deadline)),
                            e->acked_told ? "true" : "false",
                            e->resolved_told ? "true" : "false",
                            ms_param(e->report_due_at_ms, report_due, sizeof(report_due)),
                            failures,
                            repeats,
                            e->group_leader ? leader : NULL,
                            ms_param(e->group_told_at_ms, told, sizeof(told)),
                            ms_param(e->group_next_at_ms, next_group, sizeof(next_group)),
                            e->silenced ? "true" : "false",
                            e->update_reminded ? "true" : "false"};
    PGresult *res = NULL;
    /* clang-format off */
    int r = store_incidents_run(self,
        "INSERT INTO escalations (incident_id, policy, level, round, started_at, next_level_at,"
        " escalate_now, escalated_by, next_update_at, updates_sent, deadline_at, acked_told,"
        " resolved_told, report_due_at, failures_seen, repeats, group_leader, group_told_at,"
        " group_next_at, silenced, update_reminded)"
        " VALUES ($1::bigint, $2, $3::integer, $4::integer, " MS_TO_TS(5) ", " MS_TO_TS(6) ","
        " $7::boolean, $8, " MS_TO_TS(9) ", $10::integer, " MS_TO_TS(11) ", $12::boolean,"
        " $13::boolean, " MS_TO_TS(14) ", $15::bigint, $16::integer, $17::bigint,"
        " " MS_TO_TS(18) ", " MS_TO_TS(19) ", $20::boolean, $21::boolean)"
        " ON CONFLICT (incident_id) DO UPDATE SET policy = EXCLUDED.policy,"
        " level = EXCLUDED.level, round = EXCLUDED.round, started_at = EXCLUDED.started_at,"
        " next_level_at = EXCLUDED.next_level_at, escalate_now = EXCLUDED.escalate_now,"
        " escalated_by = EXCLUDED.escalated_by, next_update_at = EXCLUDED.next_update_at,"
        " updates_sent = EXCLUDED.updates_sent, deadline_at = EXCLUDED.deadline_at,"
        " acked_told = EXCLUDED.acked_told, resolved_told = EXCLUDED.resolved_told,"
        " report_due_at = EXCLUDED.report_due_at, failures_seen = EXCLUDED.failures_seen,"
        " repeats = EXCLUDED.repeats, group_leader = EXCLUDED.group_leader,"
        " group_told_at = EXCLUDED.group_told_at, group_next_at = EXCLUDED.group_next_at,"
        " silenced = EXCLUDED.silenced, update_reminded = EXCLUDED.update_reminded",
        21, params, "write escalation", &res);
    /* clang-format on */
    if (r == 0)
        PQclear(res);
    return r;
}

int store_escalations_due(store_incidents_t *self, int64_t now_ms, uint64_t *ids, size_t max,
                          size_t *ret_n)
{
    char now[24], lim[24];
    snprintf(now, sizeof(now), "%" PRId64, now_ms);
    snprintf(lim, sizeof(lim), "%zu", max);
    const char *params[] = {now, lim};
    PGresult *res = NULL;
    *ret_n = 0;
    int r = store_incidents_ensure(self);
    if (r < 0)
        return r;
    /* clang-format off */
    r = store_incidents_run(self,
        "SELECT i.id FROM incidents i LEFT JOIN escalations e ON e.incident_id = i.id"
        " WHERE (e.incident_id IS NULL AND i.state IN ('detected', 'acknowledged', 'mitigated'))"
        " OR (e.escalate_now)"
        " OR (i.state = 'detected' AND (e.next_level_at <= " MS_TO_TS(1)
        "     OR e.deadline_at <= " MS_TO_TS(1) " OR e.resolved_told))"
        " OR (i.state IN ('acknowledged', 'mitigated') AND NOT e.acked_told AND e.level >= 0)"
        " OR (i.state IN ('detected', 'acknowledged', 'mitigated') AND e.next_update_at <= " MS_TO_TS(1) ")"
        " OR (i.state IN ('resolved', 'closed') AND NOT e.resolved_told)"
        " OR (i.state = 'resolved' AND e.report_due_at <= " MS_TO_TS(1) ")"
        " OR (i.state IN ('detected', 'acknowledged', 'mitigated') AND e.group_next_at <= " MS_TO_TS(1) ")"
        " OR (e.group_leader IS NOT NULL AND i.state IN ('detected', 'acknowledged', 'mitigated')"
        "     AND i.severity < (SELECT l.severity FROM incidents l WHERE l.id = e.group_leader))"
        " OR EXISTS (SELECT 1 FROM notifications n WHERE n.incident_id = i.id"
        "            AND n.id > e.failures_seen AND n.status = 'failed')"
        /* An automatic action ended and those paged have not heard (store_incident_actions_untold). */
        " OR (e.level >= 0 AND NOT e.resolved_told AND EXISTS (SELECT 1 FROM command_requests q"
        "     JOIN command_current s ON s.request_id = q.id"
        "     WHERE q.incident_id = i.id AND q.requested_by = 'vigil' AND q.mode = 'auto'"
        "       AND s.state IN ('done', 'failed', 'refused', 'lost')"
        "       AND q.created_at > now() - interval '1 hour'"
        "       AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.incident_id = i.id"
        "         AND n.kind = 'action' AND n.round = q.n)))"
        " ORDER BY i.id LIMIT $2::bigint",
        2, params, "find due escalations", &res);
    /* clang-format on */
    if (r < 0)
        return r;
    for (int i = 0; i < PQntuples(res) && (size_t)i < max; i++)
        ids[(*ret_n)++] = strtoull(PQgetvalue(res, i, 0), NULL, 10);
    PQclear(res);
    return 0;
}

int store_notification_add(store_incidents_t *self, const struct store_notification *n,
                           bool *ret_added)
{
    const char *kind = notification_kind_name(n->kind), *channel = paging_channel_name(n->channel);
    if (!kind || !channel)
        return -EINVAL;
    char id[24], level[16], round[16], created[24];
    snprintf(id, sizeof(id), "%" PRIu64, n->incident_id);
    snprintf(level, sizeof(level), "%d", n->level);
    snprintf(round, sizeof(round), "%d", n->round);
    snprintf(created, sizeof(created), "%" PRId64, n->created_at_ms);
    const char *params[] = {id,
                            kind,
                            level,
                            round,
                            n->target,
                            channel,
                            n->address,
                            n->event,
                            n->subject,
                            n->body,
                            n->payload_json,
                            created,
                            n->held ? "held" : "pending"};
    PGresult *res = NULL;
    /* clang-format off */
    int r = store_incidents_run(self,
        "INSERT INTO notifications (incident_id, kind, level, round, target, channel, address,"
        " event, subject, body, payload, next_attempt_at, created_at, status)"
        " VALUES ($1::bigint, $2, $3::integer, $4::integer, $5, $6, $7, $8, $9, $10, $11::jsonb,"
        " " MS_TO_TS(12) ", " MS_TO_TS(12) ", $13)"
        " ON CONFLICT (incident_id, kind, level, round, target, channel) DO NOTHING",
        13, params, "add notification", &res);
    /* clang-format on */
    if (r < 0)
        return r;
    if (ret_added)
        *ret_added = strcmp(PQcmdTuples(res), "1") == 0;
    PQclear(res);
    return 0;
}

/* Rows of notifications as struct store_notification_row through cb. */
static int each_notification(store_incidents_t *self, const char *sql, int n,
                             const char *const *params,
                             int (*cb)(const struct store_notification_row *row, void *userdata),
                             void *userdata)
{
    PGresult *res = NULL;
    int r = store_incidents_ensure(self);
    if (r == 0)
        r = store_incidents_run(self, sql, n, params, "list notifications", &res);
    if (r < 0)
        return r;
    for (int i = 0; i < PQntuples(res); i++) {
        struct store_notification_row row = {
            .id = strtoull(PQgetvalue(res, i, 0), NULL, 10),
            .level = store_incidents_field_int(res, i, 2),
            .round = store_incidents_field_int(res, i, 3),
            .target = PQgetvalue(res, i, 4),
            .address = PQgetvalue(res, i, 6),
            .attempts = store_incidents_field_int(res, i, 8),
            .last_code = store_incidents_field_int(res, i, 9),
            .last_error = PQgetvalue(res, i, 10),
            .created_at_ms = store_incidents_field_i64(res, i, 11),
            .sent_at_ms = store_incidents_field_i64(res, i, 12),
            .event = PQgetvalue(res, i, 13),
        };
        if (notification_kind_parse(PQgetvalue(res, i, 1), &row.kind) < 0)
            r = store_incidents_unknown("notifications.kind", PQgetvalue(res, i, 1));
        else if (paging_channel_parse(PQgetvalue(res, i, 5), &row.channel) < 0)
            r = store_incidents_unknown("notifications.channel", PQgetvalue(res, i, 5));
        else if (notification_status_parse(PQgetvalue(res, i, 7), &row.status) < 0)
            r = store_incidents_unknown("notifications.status", PQgetvalue(res, i, 7));
        if (r < 0)
            break;
        int c = cb(&row, userdata);
        if (c != 0) {
            r = c < 0 ? c : 0;
            break;
        }
    }
    PQclear(res);
    return r;
}

#define NOTIFICATION_COLUMNS                                                                       \
    "id, kind, level, round, target, channel, address, status, attempts,"                          \
    " coalesce(last_code, 0), last_error, " TS_TO_MS("created_at") ", " TS_TO_MS(                  \
        "sent_at") ", event"

int store_notifications_list(store_incidents_t *self, uint64_t incident_id,
                             int (*cb)(const struct store_notification_row *row, void *userdata),
                             void *userdata)
{
    char id[24];
    snprintf(id, sizeof(id), "%" PRIu64, incident_id);
    const char *params[] = {id};
    return each_notification(self,
                             "SELECT " NOTIFICATION_COLUMNS " FROM notifications"
                             " WHERE incident_id = $1::bigint ORDER BY id",
                             1, params, cb, userdata);
}

int store_notifications_list_group(store_incidents_t *self, uint64_t incident_id,
                                   int (*cb)(const struct store_notification_row *row,
                                             void *userdata),
                                   void *userdata)
{
    char id[24];
    snprintf(id, sizeof(id), "%" PRIu64, incident_id);
    const char *params[] = {id};
    return each_notification(
        self,
        "SELECT " NOTIFICATION_COLUMNS " FROM notifications"
        " WHERE incident_id = $1::bigint OR incident_id IN"
        " (SELECT incident_id FROM escalations WHERE group_leader = $1::bigint)"
        " ORDER BY id",
        1, params, cb, userdata);
}

int store_notifications_failed_after(
    store_incidents_t *self, uint64_t incident_id, uint64_t after_id,
    int (*cb)(const struct store_notification_row *row, void *userdata), void *userdata)
{
    char id[24], after[24];
    snprintf(id, sizeof(id), "%" PRIu64, incident_id);
    snprintf(after, sizeof(after), "%" PRIu64, after_id);
    const char *params[] = {id, after};
    return each_notification(self,
                             "SELECT " NOTIFICATION_COLUMNS " FROM notifications"
                             " WHERE incident_id = $1::bigint AND id > $2::bigint"
                             " AND status = 'failed' ORDER BY id",
                             2, params, cb, userdata);
}

int store_incidents_automation(store_incidents_t *self, uint64_t incident_id, bool *ret_enabled,
                               char **ret_pending)
{
    char id[24];
    snprintf(id, sizeof(id), "%" PRIu64, incident_id);
    const char *params[] = {id};
    PGresult *res = NULL;
    int r = store_incidents_run(
        self,
        "SELECT coalesce((SELECT enabled FROM automation), true),"
        " coalesce((SELECT string_agg(format('%s %s on %s', q.id, q.action, q.node), ', '"
        "     ORDER BY q.n)"
        "   FROM command_requests q JOIN command_current s ON s.request_id = q.id"
        "   WHERE q.incident_id = $1::bigint AND s.state = 'pending'), '')",
        1, params, "read automation", &res);
    if (r < 0)
        return r;
    char *pending = PQntuples(res) == 1 ? strdup(PQgetvalue(res, 0, 1)) : strdup("");
    bool enabled = PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "f") != 0;
    PQclear(res);
    if (!pending)
        return -ENOMEM;
    *ret_enabled = enabled;
    *ret_pending = pending;
    return 0;
}

int store_incident_actions_untold(store_incidents_t *self, uint64_t incident_id,
                                  int (*cb)(const struct store_incident_action *a, void *userdata),
                                  void *userdata)
{
    char id[24];
    snprintf(id, sizeof(id), "%" PRIu64, incident_id);
    const char *params[] = {id};
    PGresult *res = NULL;
    int r = store_incidents_run(
        self,
        "SELECT q.n, q.id, q.action, q.node, s.state, coalesce(d.exit_status::text, '')"
        " FROM command_requests q"
        " JOIN command_current s ON s.request_id = q.id"
        " JOIN command_capsules c ON c.request_id = q.id"
        " LEFT JOIN LATERAL (SELECT r.exit_status, r.at FROM command_reports r"
        "   WHERE r.request_id = q.id AND r.step = 'done'"
        "   ORDER BY r.at DESC, r.seq DESC LIMIT 1) d ON true"
        " WHERE q.incident_id = $1::bigint AND q.requested_by = 'vigil' AND q.mode = 'auto'"
        "   AND s.state IN ('done', 'failed', 'refused', 'lost')"
        "   AND c.issued_at > now() - interval '1 hour'"
        "   AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.incident_id = q.incident_id"
        "     AND n.kind = 'action' AND n.round = q.n)"
        " ORDER BY q.n LIMIT 16",
        1, params, "incident actions", &res);
    if (r < 0)
        return r;
    for (int i = 0; r == 0 && i < PQntuples(res); i++) {
        const char *exit_text = PQgetvalue(res, i, 5);
        struct store_incident_action a = {
            .n = (uint64_t)store_incidents_field_i64(res, i, 0),
            .id = PQgetvalue(res, i, 1),
            .action = PQgetvalue(res, i, 2),
            .node = PQgetvalue(res, i, 3),
            .state = PQgetvalue(res, i, 4),
            .has_exit = exit_text[0] != '\0',
            .exit_status = exit_text[0] ? (int)strtol(exit_text, NULL, 10) : 0,
        };
        r = cb(&a, userdata);
    }
    PQclear(res);
    return r < 0 ? r : 0;
}

int store_incident_commands(store_incidents_t *self, uint64_t incident_id,
                            int (*cb)(const struct store_incident_command *c, void *userdata),
                            void *userdata)
{
    char id[24];
    snprintf(id, sizeof(id), "%" PRIu64, incident_id);
    const char *params[] = {id};
    PGresult *res = NULL;
    int r = store_incidents_run(
        self,
        "SELECT q.id, q.action, q.node, q.mode, q.requested_by, s.state,"
        " coalesce(d.exit_status::text, ''), coalesce(d.reason, '')"
        " FROM command_requests q"
        " JOIN command_current s ON s.request_id = q.id"
        " LEFT JOIN LATERAL (SELECT r.exit_status, r.reason FROM command_reports r"
        "   WHERE r.request_id = q.id AND r.step IN ('done', 'refused')"
        "   ORDER BY r.at DESC, r.seq DESC LIMIT 1) d ON true"
        " WHERE q.incident_id = $1::bigint ORDER BY q.n",
        1, params, "incident commands", &res);
    if (r < 0)
        return r;
    for (int i = 0; r == 0 && i < PQntuples(res); i++) {
        const char *exit_text = PQgetvalue(res, i, 6);
        struct store_incident_command c = {
            .id = PQgetvalue(res, i, 0),
            .action = PQgetvalue(res, i, 1),
            .node = PQgetvalue(res, i, 2),
            .mode = PQgetvalue(res, i, 3),
            .requested_by = PQgetvalue(res, i, 4),
            .state = PQgetvalue(res, i, 5),
            .has_exit = exit_text[0] != '\0',
            .exit_status = exit_text[0] ? (int)strtol(exit_text, NULL, 10) : 0,
            .reason = PQgetvalue(res, i, 7),
        };
        r = cb(&c, userdata);
    }
    PQclear(res);
    return r < 0 ? r : 0;
}
