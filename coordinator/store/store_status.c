/*
 * Status updates (021_status_updates.sql) on the incidents connection: the rows `vigilctl
 * update` adds, and the public ones the status page is built from. The page reads nothing but
 * these rows and the incident's state and times: private notes, the timeline, node names,
 * signals and evidence are never selected here.
 */
#include "store.h"
#include "store_incidents_conn.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS_TO_TS STORE_MS_TO_TS
#define TS_TO_MS STORE_TS_TO_MS

int store_status_update_add(store_incidents_t *self, uint64_t incident_id, int64_t at_ms,
                            const char *author, const char *body, bool public_, const char *title,
                            const char *incident_state, const char *components_json)
{
    if (!self || !author || !body || !title || !incident_state || !components_json)
        return -EINVAL;
    char id[24], at[24];
    snprintf(id, sizeof(id), "%" PRIu64, incident_id);
    snprintf(at, sizeof(at), "%" PRId64, at_ms);
    const char *params[] = {
        id, at, author, body, public_ ? "true" : "false", title, incident_state, components_json};
    PGresult *res = NULL;
    int r = store_incidents_run(
        self,
        "INSERT INTO status_updates (incident_id, at, author, body, public, title,"
        " incident_state, components) VALUES ($1::bigint, " MS_TO_TS(2) ", $3, $4, $5::boolean,"
                                                                        " $6, $7, $8::jsonb)",
        8, params, "add status update", &res);
    PQclear(res);
    return r;
}

int store_status_rows(store_incidents_t *self, int64_t since_ms, uint32_t max,
                      int (*cb)(const struct store_status_row *row, void *userdata), void *userdata)
{
    if (!self || !cb)
        return -EINVAL;
    int r = store_incidents_ensure(self);
    if (r < 0)
        return r;
    char since[24], lim[16];
    snprintf(since, sizeof(since), "%" PRId64, since_ms);
    snprintf(lim, sizeof(lim), "%" PRIu32, max);
    const char *params[] = {since, lim};
    PGresult *res = NULL;
    r = store_incidents_run(
        self,
        "SELECT i.id, i.state, " TS_TO_MS("i.opened_at") ", " TS_TO_MS(
            "i."
            "resolve"
            "d_at") ", " TS_TO_MS("i.updated_at") ", '', u.id, " TS_TO_MS("u.at") ", u.body, "
                                                                                  "u.title,"
                                                                                  " u.components::"
                                                                                  "text, "
                                                                                  "u.incident_state"
                                                                                  " FROM "
                                                                                  "status_updates "
                                                                                  "u "
                                                                                  "JOIN incidents "
                                                                                  "i "
                                                                                  "ON i.id = "
                                                                                  "u.incident_id"
                                                                                  " WHERE u.public "
                                                                                  "AND (i.state IN "
                                                                                  "('detected', "
                                                                                  "'acknowledged', "
                                                                                  "'mitigated')"
                                                                                  "  OR "
                                                                                  "i.resolved_at "
                                                                                  ">= " MS_TO_TS(
                                                                                      1) ")"
                                                                                         " ORDER "
                                                                                         "BY "
                                                                                         "i.id "
                                                                                         "DESC, "
                                                                                         "u.id "
                                                                                         "LIMIT "
                                                                                         "$2::"
                                                                                         "bigint",
        2, params, "status page", &res);
    if (r < 0)
        return r;
    for (int i = 0; r == 0 && i < PQntuples(res); i++) {
        struct store_status_row row = {
            .incident_id = strtoull(PQgetvalue(res, i, 0), NULL, 10),
            .opened_at_ms = store_incidents_field_i64(res, i, 2),
            .resolved_at_ms = store_incidents_field_i64(res, i, 3),
            .incident_updated_at_ms = store_incidents_field_i64(res, i, 4),
            .update_id = strtoull(PQgetvalue(res, i, 6), NULL, 10),
            .at_ms = store_incidents_field_i64(res, i, 7),
            .body = PQgetvalue(res, i, 8),
            .title = PQgetvalue(res, i, 9),
            .components_json = PQgetvalue(res, i, 10),
        };
        if (incident_state_parse(PQgetvalue(res, i, 1), &row.state) < 0 ||
            incident_state_parse(PQgetvalue(res, i, 11), &row.update_state) < 0) {
            r = store_incidents_unknown("state", PQgetvalue(res, i, 1));
            break;
        }
        int c = cb(&row, userdata);
        if (c != 0) { /* stop: a negative errno is the caller's error */
            r = c < 0 ? c : 0;
            break;
        }
    }
    PQclear(res);
    return r;
}

int store_status_published(store_incidents_t *self, uint64_t incident_id, bool *ret)
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
                            "SELECT EXISTS (SELECT 1 FROM status_updates"
                            " WHERE incident_id = $1::bigint AND public)",
                            1, params, "status update published", &res);
    if (r < 0)
        return r;
    *ret = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    return 0;
}

int store_status_since(store_incidents_t *self, uint64_t incident_id, int64_t since_ms,
                       int (*cb)(const struct store_status_posted *u, void *userdata),
                       void *userdata)
{
    if (!self || !cb)
        return -EINVAL;
    char id[24], since[24];
    snprintf(id, sizeof(id), "%" PRIu64, incident_id);
    snprintf(since, sizeof(since), "%" PRId64, since_ms);
    const char *params[] = {id, since};
    PGresult *res = NULL;
    int r = store_incidents_run(
        self,
        "SELECT id, " TS_TO_MS("at") ", public, author, body"
                                     " FROM status_updates WHERE incident_id = $1::bigint"
                                     " AND at >= " MS_TO_TS(2) " ORDER BY id LIMIT 16",
        2, params, "status updates since", &res);
    if (r < 0)
        return r;
    for (int i = 0; r == 0 && i < PQntuples(res); i++) {
        struct store_status_posted u = {
            .id = strtoull(PQgetvalue(res, i, 0), NULL, 10),
            .at_ms = store_incidents_field_i64(res, i, 1),
            .public_ = PQgetvalue(res, i, 2)[0] == 't',
            .author = PQgetvalue(res, i, 3),
            .body = PQgetvalue(res, i, 4),
        };
        r = cb(&u, userdata);
    }
    PQclear(res);
    return r;
}

int store_incident_owner(store_incidents_t *self, uint64_t incident_id, char *buf, size_t size)
{
    if (!self || !buf || size == 0)
        return -EINVAL;
    char id[24];
    snprintf(id, sizeof(id), "%" PRIu64, incident_id);
    const char *params[] = {id};
    PGresult *res = NULL;
    int r = store_incidents_run(self,
                                "SELECT actor FROM incident_events WHERE incident_id = $1::bigint"
                                " AND kind = 'acknowledged' ORDER BY id DESC LIMIT 1",
                                1, params, "incident owner", &res);
    if (r < 0)
        return r;
    snprintf(buf, size, "%s", PQntuples(res) ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
    return 0;
}
