/*
 * Alertmanager alerts into the signals tables, through a connection of their own: the webhook
 * runs on the HTTP thread, and a libpq connection must never be used by two threads.
 *
 * One transaction per notification, one statement per alert: the statement remembers the
 * alert's key in alert_notifications and, only when the key is new, inserts the signal (the
 * signals trigger keeps signal_latest current). A retried notification is therefore stored once.
 */
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define APPLICATION_NAME "vigil-coordinator-alertmanager"

struct store_alerts {
    struct store_side side;
};

static const char insert_alert_sql[] =
    "WITH fresh AS ("
    " INSERT INTO alert_notifications (fingerprint, status, at)"
    " VALUES ($1, $2, 'epoch'::timestamptz + $3::bigint * interval '1 millisecond')"
    " ON CONFLICT DO NOTHING RETURNING 1)"
    " INSERT INTO signals (agent_id, seq, name, value, unit, labels, ts, state, node)"
    " SELECT 'alertmanager', 0, $4, $5::float8, '', $6::jsonb,"
    " 'epoch'::timestamptz + $7::bigint * interval '1 millisecond', $8::smallint, $9"
    " FROM fresh";

store_alerts_t *store_alerts_new(const char *conninfo)
{
    store_alerts_t *self = calloc(1, sizeof(*self));
    if (self && store_side_init(&self->side, conninfo) < 0) {
        free(self);
        self = NULL;
    }
    return self;
}

void store_alerts_destroy(store_alerts_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    store_side_fini(&(*self_p)->side);
    free(*self_p);
    *self_p = NULL;
}

static int ensure_conn(store_alerts_t *self)
{
    if (self->side.conn && PQstatus(self->side.conn) == CONNECTION_OK &&
        PQtransactionStatus(self->side.conn) == PQTRANS_IDLE)
        return 0;
    return store_side_connect(&self->side.conn, self->side.conninfo, APPLICATION_NAME);
}

/* Logs libpq's message and maps it: -EIO when the connection is gone, else -EINVAL. */
static int failed(store_alerts_t *self, PGresult *res, const char *what)
{
    const char *text = res ? PQresultErrorMessage(res) : "";
    if (!text[0])
        text = PQerrorMessage(self->side.conn);
    store_statement_failed(self->side.conn, APPLICATION_NAME, what, text);
    return PQstatus(self->side.conn) == CONNECTION_OK ? -EINVAL : -EIO;
}

static int exec_command(store_alerts_t *self, const char *sql, const char *what)
{
    PGresult *res = PQexec(self->side.conn, sql);
    int r = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : failed(self, res, what);
    PQclear(res);
    return r;
}

static int put_once(store_alerts_t *self, const struct store_alert *alerts, size_t n,
                    size_t *ret_new)
{
    size_t fresh = 0;
    int r = ensure_conn(self);
    if (r < 0)
        return r;
    r = exec_command(self, "BEGIN", "begin");
    for (size_t i = 0; i < n && r == 0; i++) {
        const struct store_alert *a = &alerts[i];
        char payload_ms[24], ts_ms[24], state[8];
        snprintf(payload_ms, sizeof(payload_ms), "%" PRId64, a->payload_ms);
        snprintf(ts_ms, sizeof(ts_ms), "%" PRId64, a->ts_ms);
        snprintf(state, sizeof(state), "%d", a->state);
        const char *params[] = {a->fingerprint,
                                a->firing ? "firing" : "resolved",
                                payload_ms,
                                a->name,
                                a->firing ? "1" : "0",
                                a->labels_json,
                                ts_ms,
                                state,
                                a->node};
        PGresult *res =
            PQexecParams(self->side.conn, insert_alert_sql, 9, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) == PGRES_COMMAND_OK)
            fresh += strcmp(PQcmdTuples(res), "0") != 0;
        else
            r = failed(self, res, "insert alert");
        PQclear(res);
    }
    if (r == 0)
        r = exec_command(self, "COMMIT", "commit");
    if (r < 0) {
        if (PQstatus(self->side.conn) == CONNECTION_OK)
            PQclear(PQexec(self->side.conn, "ROLLBACK"));
        return r;
    }
    *ret_new = fresh;
    return 0;
}

int store_alerts_put(store_alerts_t *self, const struct store_alert *alerts, size_t n,
                     size_t *ret_new)
{
    if (!self || (n > 0 && !alerts) || !ret_new)
        return -EINVAL;
    /* A connection that died while idle is only noticed by using it: one more try. */
    int r = put_once(self, alerts, n, ret_new);
    if (r == -EIO)
        r = put_once(self, alerts, n, ret_new);
    return r;
}
