/*
 * On-call overrides in the store (table oncall_overrides, migration 008), through a connection
 * of their own like the incidents' (the admin socket and the escalation engine each keep one).
 * The names are checked against the configuration by the caller; here they are only bounded.
 */
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define APPLICATION_NAME "vigil-coordinator-oncall"
/* More overrides than this in force at once is not a rotation any more. */
#define OVERRIDES_MAX 10000

#define MS_TO_TS(n) "('epoch'::timestamptz + $" #n "::bigint * interval '1 millisecond')"
#define TS_TO_MS(col) "coalesce((extract(epoch FROM " col ") * 1000)::bigint, 0)"

struct store_oncall {
    struct store_side side;
};

store_oncall_t *store_oncall_new(const char *conninfo)
{
    store_oncall_t *self = calloc(1, sizeof(*self));
    if (self && store_side_init(&self->side, conninfo) < 0) {
        free(self);
        self = NULL;
    }
    return self;
}

void store_oncall_destroy(store_oncall_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    store_side_fini(&(*self_p)->side);
    free(*self_p);
    *self_p = NULL;
}

static int ensure_conn(store_oncall_t *self)
{
    if (self->side.conn && PQstatus(self->side.conn) == CONNECTION_OK)
        return 0;
    return store_side_connect(&self->side.conn, self->side.conninfo, APPLICATION_NAME);
}

/* One statement; a connection that died while idle is only noticed by using it: one retry. */
static int run(store_oncall_t *self, const char *sql, int n, const char *const *params,
               const char *what, PGresult **ret_res)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        int r = ensure_conn(self);
        if (r < 0)
            return r;
        PGresult *res = PQexecParams(self->side.conn, sql, n, NULL, params, NULL, NULL, 0);
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
            *ret_res = res;
            return 0;
        }
        const char *text = res ? PQresultErrorMessage(res) : PQerrorMessage(self->side.conn);
        store_statement_failed(self->side.conn, APPLICATION_NAME, what, text);
        PQclear(res);
        if (PQstatus(self->side.conn) == CONNECTION_OK)
            return -EINVAL;
    }
    return -EIO;
}

int store_oncall_override_add(store_oncall_t *self, const struct oncall_override *ovr,
                              const char *actor, uint64_t *ret_id)
{
    if (!self || !ovr || !actor || !ovr->schedule[0] || !ovr->user[0] ||
        ovr->to_ms <= ovr->from_ms ||
        !memchr(ovr->schedule, '\0', sizeof(ovr->schedule)) ||
        !memchr(ovr->user, '\0', sizeof(ovr->user)) ||
        !memchr(ovr->created_by, '\0', sizeof(ovr->created_by)))
        return -EINVAL;
    char from[24], to[24], created[24];
    snprintf(from, sizeof(from), "%" PRId64, ovr->from_ms);
    snprintf(to, sizeof(to), "%" PRId64, ovr->to_ms);
    snprintf(created, sizeof(created), "%" PRId64, ovr->created_ms);
    const char *params[] = {ovr->schedule, ovr->user, from, to, ovr->created_by, created, actor};
    PGresult *res = NULL;
    /* One statement: the override and its audit row commit together or not at all. */
    int r = run(self,
                "WITH added AS ("
                " INSERT INTO oncall_overrides (schedule, user_name, starts_at, ends_at,"
                " created_by, created_at) VALUES ($1, $2, " MS_TO_TS(3) ", " MS_TO_TS(
                    4) ", $5, " MS_TO_TS(6) ") RETURNING id), "
                "audited AS ("
                " INSERT INTO audit_log (actor, action, subject, detail)"
                " SELECT $7::text, 'oncall_override', $1::text,"
                "  format('override=%s user=%s from_ms=%s to_ms=%s', id, $2::text, $3::text,"
                "   $4::text) FROM added) "
                "SELECT id FROM added",
                7, params, "insert override", &res);
    if (r < 0)
        return r;
    if (ret_id)
        *ret_id = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return 0;
}

static void copy_field(char *dst, size_t size, const PGresult *res, int row, int col)
{
    snprintf(dst, size, "%s", PQgetvalue(res, row, col));
}

int store_oncall_overrides(store_oncall_t *self, int64_t ends_after_ms,
                           struct oncall_override **ret_items, size_t *ret_n)
{
    if (!self || !ret_items || !ret_n)
        return -EINVAL;
    char after[24];
    snprintf(after, sizeof(after), "%" PRId64, ends_after_ms);
    const char *params[] = {after};
    PGresult *res = NULL;
    int r = run(self,
                "SELECT id, schedule, user_name, " TS_TO_MS("starts_at") ", " TS_TO_MS(
                    "ends_at") ", " TS_TO_MS("created_at") ", created_by FROM oncall_overrides"
                                                           " WHERE ends_at > " MS_TO_TS(
                                                               1) " ORDER BY id DESC LIMIT 10000",
                1, params, "list overrides", &res);
    if (r < 0)
        return r;
    int rows = PQntuples(res);
    struct oncall_override *items = calloc(rows > 0 ? (size_t)rows : 1, sizeof(*items));
    if (!items) {
        PQclear(res);
        return -ENOMEM;
    }
    for (int i = 0; i < rows && i < OVERRIDES_MAX; i++) {
        struct oncall_override *o = &items[i];
        o->id = strtoull(PQgetvalue(res, i, 0), NULL, 10);
        copy_field(o->schedule, sizeof(o->schedule), res, i, 1);
        copy_field(o->user, sizeof(o->user), res, i, 2);
        o->from_ms = strtoll(PQgetvalue(res, i, 3), NULL, 10);
        o->to_ms = strtoll(PQgetvalue(res, i, 4), NULL, 10);
        o->created_ms = strtoll(PQgetvalue(res, i, 5), NULL, 10);
        copy_field(o->created_by, sizeof(o->created_by), res, i, 6);
    }
    PQclear(res);
    *ret_items = items;
    *ret_n = (size_t)rows;
    return 0;
}
