/*
 * Practice drills (020_drills.sql) on an incidents connection (store_incidents_conn.h): the row
 * that makes an incident a drill, written in the transaction that opens it, and read by the
 * escalation in the transaction that pages it.
 */
#include "store.h"
#include "store_incidents_conn.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "utf8.h"

int store_drill_insert(store_incidents_t *self, const struct store_drill *d)
{
    if (!self || !d || d->incident_id == 0 || !d->started_by[0] || !vg_utf8_valid(d->started_by))
        return -EINVAL;
    char id[24], at[24];
    snprintf(id, sizeof(id), "%" PRIu64, d->incident_id);
    snprintf(at, sizeof(at), "%" PRId64, d->started_at_ms);
    const char *params[] = {id, d->live ? "true" : "false", d->started_by, at};
    PGresult *res = NULL;
    int r = store_incidents_run(self,
                                "INSERT INTO drills (incident_id, live, started_by, started_at) "
                                "VALUES ($1, $2, $3, " STORE_MS_TO_TS(4) ")",
                                4, params, "drill insert", &res);
    PQclear(res);
    return r;
}

int store_drill_get(store_incidents_t *self, uint64_t incident_id, struct store_drill *ret)
{
    if (!self || !ret)
        return -EINVAL;
    char id[24];
    snprintf(id, sizeof(id), "%" PRIu64, incident_id);
    const char *params[] = {id};
    PGresult *res = NULL;
    int r = store_incidents_run(self,
                                "SELECT live, started_by, " STORE_TS_TO_MS("started_at")
                                " FROM drills WHERE incident_id = $1",
                                1, params, "drill", &res);
    if (r == 0 && PQntuples(res) == 0)
        r = -ENOENT;
    if (r == 0) {
        memset(ret, 0, sizeof(*ret));
        ret->incident_id = incident_id;
        ret->live = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
        snprintf(ret->started_by, sizeof(ret->started_by), "%s", PQgetvalue(res, 0, 1));
        ret->started_at_ms = store_incidents_field_i64(res, 0, 2);
    }
    PQclear(res);
    return r;
}
