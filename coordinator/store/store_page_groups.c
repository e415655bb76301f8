/*
 * Page groups and the per-person page cap (016_page_groups.sql), on the incidents connection
 * (store_incidents_conn.h), so that escalate.c joins a group, pages and writes the timeline in
 * one transaction. Primitives only: escalate.c decides who leads, who follows and what is told.
 */
#include "store.h"
#include "store_incidents_conn.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS_TO_TS STORE_MS_TO_TS

#define OPEN_STATES "('detected', 'acknowledged', 'mitigated')"

/* The escalation row sql selects (its first column, an incident id), locked by the statement:
 * 0 with *ret_id, or -ENOENT when there is none. */
static int locked_id(store_incidents_t *self, const char *sql, int n, const char *const *params,
                     const char *what, uint64_t *ret_id)
{
    PGresult *res = NULL;
    int r = store_incidents_run(self, sql, n, params, what, &res);
    if (r < 0)
        return r;
    r = PQntuples(res) == 1 ? 0 : -ENOENT;
    if (r == 0)
        *ret_id = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return r;
}

int store_page_group_find(store_incidents_t *self, const char *runbook, const char *policy,
                          int severity, uint64_t exclude_id, uint64_t *ret_leader)
{
    char sev[16], exclude[24];
    snprintf(sev, sizeof(sev), "%d", severity);
    snprintf(exclude, sizeof(exclude), "%" PRIu64, exclude_id);
    const char *params[] = {runbook, policy, sev, exclude};
    /* A leader is a per-node incident (its fingerprint names a node) that follows nobody and
     * has not yet told its resolution. SEV1 < SEV3: a worse incident never hides in a milder
     * group. The oldest wins, so every joiner of one storm finds the same one. */
    /* clang-format off */
    return locked_id(self,
        "SELECT e.incident_id FROM escalations e JOIN incidents i ON i.id = e.incident_id"
        " WHERE i.runbook = $1 AND e.policy = $2 AND i.severity <= $3::integer"
        " AND i.state IN " OPEN_STATES " AND left(i.fingerprint, length(i.runbook) + 1) = i.runbook || '/'"
        " AND length(i.fingerprint) > length(i.runbook) + 1"
        " AND e.group_leader IS NULL AND NOT e.resolved_told AND NOT e.silenced"
        " AND e.incident_id <> $4::bigint"
        " ORDER BY e.incident_id LIMIT 1 FOR UPDATE OF e",
        4, params, "find page group", ret_leader);
    /* clang-format on */
}

int store_page_group_nodes(store_incidents_t *self, uint64_t leader_id, int64_t joined_since_ms,
                           size_t max_names, uint32_t *ret_count, char **ret_names)
{
    char id[24], since[24], max[24];
    snprintf(id, sizeof(id), "%" PRIu64, leader_id);
    snprintf(since, sizeof(since), "%" PRId64, joined_since_ms);
    snprintf(max, sizeof(max), "%zu", max_names);
    const char *params[] = {id, since, max};
    PGresult *res = NULL;
    /* A per-node fingerprint is "<runbook>/<node>": the node is what follows the runbook. A
     * member's started_at is when it joined (members are never paged, so it times nothing). */
    /* clang-format off */
    int r = store_incidents_run(self,
        "WITH g AS ("
        "  SELECT i.id, substr(i.fingerprint, length(i.runbook) + 2) AS node"
        "  FROM incidents i JOIN escalations e ON e.incident_id = i.id"
        "  WHERE CASE WHEN $2::bigint > 0"
        "    THEN e.group_leader = $1::bigint AND e.started_at >= " MS_TO_TS(2)
        "    ELSE (i.id = $1::bigint OR e.group_leader = $1::bigint)"
        "         AND i.state IN " OPEN_STATES " END)"
        " SELECT (SELECT count(*) FROM g),"
        "  coalesce((SELECT string_agg(node, ', ' ORDER BY id)"
        "            FROM (SELECT id, node FROM g ORDER BY id LIMIT $3::bigint) f), '')",
        3, params, "list page group", &res);
    /* clang-format on */
    if (r < 0)
        return r;
    char *names = PQntuples(res) == 1 ? strdup(PQgetvalue(res, 0, 1)) : strdup("");
    uint32_t count = PQntuples(res) == 1 ? (uint32_t)strtoul(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    PQclear(res);
    if (!names)
        return -ENOMEM;
    *ret_count = count;
    *ret_names = names;
    return 0;
}

int store_page_group_successor(store_incidents_t *self, uint64_t leader_id, uint64_t *ret_id)
{
    char id[24];
    snprintf(id, sizeof(id), "%" PRIu64, leader_id);
    const char *params[] = {id};
    return locked_id(self,
                     "SELECT e.incident_id FROM escalations e"
                     " JOIN incidents i ON i.id = e.incident_id"
                     " WHERE e.group_leader = $1::bigint AND i.state IN " OPEN_STATES
                     " ORDER BY e.incident_id LIMIT 1 FOR UPDATE OF e",
                     1, params, "find group successor", ret_id);
}

int store_page_group_move(store_incidents_t *self, uint64_t from_leader, uint64_t to_leader)
{
    char from[24], to[24];
    snprintf(from, sizeof(from), "%" PRIu64, from_leader);
    snprintf(to, sizeof(to), "%" PRIu64, to_leader);
    const char *params[] = {from, to};
    PGresult *res = NULL;
    int r = store_incidents_run(self,
                                "UPDATE escalations SET group_leader = $2::bigint"
                                " WHERE group_leader = $1::bigint AND incident_id <> $2::bigint",
                                2, params, "move page group", &res);
    if (r == 0)
        PQclear(res);
    return r;
}

int store_pages_recent(store_incidents_t *self, const char *target, int64_t since_ms,
                       uint32_t *ret_count)
{
    char since[24];
    snprintf(since, sizeof(since), "%" PRId64, since_ms);
    const char *params[] = {target, since};
    PGresult *res = NULL;
    int r = store_incidents_run(self,
                                "SELECT count(DISTINCT (incident_id, kind, level, round))"
                                " FROM notifications WHERE target = $1"
                                " AND kind IN ('page', 'summary') AND created_at >= " MS_TO_TS(
                                    2) " AND status NOT IN ('held', 'summarised')",
                                2, params, "count recent pages", &res);
    if (r < 0)
        return r;
    *ret_count = PQntuples(res) == 1 ? (uint32_t)strtoul(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    PQclear(res);
    return 0;
}

int store_pages_held(store_incidents_t *self, size_t max,
                     int (*cb)(const struct store_held_pages *held, void *userdata), void *userdata)
{
    char lim[24];
    snprintf(lim, sizeof(lim), "%zu", max);
    const char *params[] = {lim};
    PGresult *res = NULL;
    int r = store_incidents_ensure(self);
    if (r < 0)
        return r;
    /* The first 50 subjects are enough to act on; the count says how many there are. */
    /* clang-format off */
    r = store_incidents_run(self,
        "SELECT target, channel, min(address), max(incident_id), max(id), count(*),"
        " array_to_string((array_agg(subject ORDER BY id))[1:50], E'\\n')"
        " FROM notifications WHERE status = 'held'"
        " GROUP BY target, channel ORDER BY min(id) LIMIT $1::bigint",
        1, params, "list held pages", &res);
    /* clang-format on */
    if (r < 0)
        return r;
    for (int i = 0; r == 0 && i < PQntuples(res); i++) {
        struct store_held_pages held = {
            .target = PQgetvalue(res, i, 0),
            .address = PQgetvalue(res, i, 2),
            .newest_incident_id = strtoull(PQgetvalue(res, i, 3), NULL, 10),
            .newest_id = strtoull(PQgetvalue(res, i, 4), NULL, 10),
            .count = (uint32_t)strtoul(PQgetvalue(res, i, 5), NULL, 10),
            .subjects = PQgetvalue(res, i, 6),
        };
        if (paging_channel_parse(PQgetvalue(res, i, 1), &held.channel) < 0)
            r = store_incidents_unknown("notifications.channel", PQgetvalue(res, i, 1));
        else
            r = cb(&held, userdata);
    }
    PQclear(res);
    return r < 0 ? r : 0;
}

int store_pages_summarised(store_incidents_t *self, const char *target, enum paging_channel channel,
                           uint64_t up_to_id)
{
    const char *ch = paging_channel_name(channel);
    if (!ch)
        return -EINVAL;
    char upto[24];
    snprintf(upto, sizeof(upto), "%" PRIu64, up_to_id);
    const char *params[] = {target, ch, upto};
    PGresult *res = NULL;
    int r = store_incidents_run(self,
                                "UPDATE notifications SET status = 'summarised'"
                                " WHERE target = $1 AND channel = $2 AND status = 'held'"
                                " AND id <= $3::bigint",
                                3, params, "mark pages summarised", &res);
    if (r == 0)
        PQclear(res);
    return r;
}
