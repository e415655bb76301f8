/*
 * Private to coordinator/store: the incidents connection's internals, shared by the files that
 * run statements on it (store_incidents.c, store_escalations.c) so that an escalation and the
 * incident timeline it writes are one transaction.
 */
#ifndef COORD_STORE_INCIDENTS_CONN_H
#define COORD_STORE_INCIDENTS_CONN_H

#include <libpq-fe.h>

#include "store.h"

/* The audit row the next commit writes (store_incidents_audit_on_commit); action[0] == '\0'
 * = none. */
struct store_incidents_audit {
    char actor[160], action[64], subject[128], detail[1024];
};

struct store_incidents {
    struct store_side side;
    struct store_incidents_audit audit;
};

/* Connects when needed (only between transactions). 0 or -EIO. */
int store_incidents_ensure(store_incidents_t *self);

/* Runs sql with text parameters; *ret_res (caller clears) on PGRES_TUPLES_OK/COMMAND_OK.
 * -EIO when the connection is gone, -EEXIST on a unique violation, else -EINVAL (logged). */
int store_incidents_run(store_incidents_t *self, const char *sql, int n,
                        const char *const *params, const char *what, PGresult **ret_res);

/* A bigint column (0 for NULL). */
int64_t store_incidents_field_i64(const PGresult *res, int row, int col);
/* An integer column (0 for NULL; clamped to int). */
int store_incidents_field_int(const PGresult *res, int row, int col);
/* A column's text that names no value of its enum (model.h): only a newer schema could hold it,
 * since the CHECK constraints of this one forbid it. Logged; -EPROTO. */
int store_incidents_unknown(const char *column, const char *text);

#define STORE_MS_TO_TS(n) "('epoch'::timestamptz + $" #n "::bigint * interval '1 millisecond')"
#define STORE_TS_TO_MS(col) "coalesce((extract(epoch FROM " col ") * 1000)::bigint, 0)"

#endif
