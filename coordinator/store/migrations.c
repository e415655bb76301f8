/*
 * Schema migrations: every numbered file in coordinator/store/sql/ that the database has not
 * seen yet, applied in order inside one transaction and recorded in schema_migrations.
 */
#include "migrations.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* pg_advisory_xact_lock key: "VIGL" — the same for every coordinator of this database. */
#define MIGRATION_LOCK_KEY "1447642956"

/* Runs sql; 0 when it returned `want`, otherwise -EIO with err set to "<what>: <message>". */
static int exec_expect(PGconn *conn, const char *sql, ExecStatusType want, const char *what,
                       char *err, size_t errlen)
{
    PGresult *res = PQexec(conn, sql);
    int r = 0;

    if (PQresultStatus(res) != want) {
        char msg[512];
        vg_log_one_line(res ? PQresultErrorMessage(res) : PQerrorMessage(conn), msg, sizeof(msg));
        if (msg[0] == '\0')
            vg_log_one_line(PQerrorMessage(conn), msg, sizeof(msg));
        snprintf(err, errlen, "%s: %s", what, msg);
        r = -EIO;
    }
    PQclear(res);
    return r;
}

static void rollback(PGconn *conn)
{
    if (PQstatus(conn) != CONNECTION_OK)
        return;
    PGresult *res = PQexec(conn, "ROLLBACK");
    PQclear(res);
}

/* The compiled-in list must be strictly increasing; anything else is a build mistake. */
static int check_order(char *err, size_t errlen)
{
    for (unsigned i = 0; i < vigil_migrations_count; i++) {
        if (vigil_migrations[i].version <= 0 ||
            (i > 0 && vigil_migrations[i].version <= vigil_migrations[i - 1].version)) {
            snprintf(err, errlen, "migration %s: versions must be positive and increasing",
                     vigil_migrations[i].name);
            return -EINVAL;
        }
    }
    return 0;
}

int migrations_apply(PGconn *conn, char *err, size_t errlen)
{
    int known = vigil_migrations_count ? vigil_migrations[vigil_migrations_count - 1].version : 0;
    int r = check_order(err, errlen);
    if (r < 0)
        return r;

    r = exec_expect(conn, "BEGIN", PGRES_COMMAND_OK, "migrations: BEGIN", err, errlen);
    if (r < 0)
        return r;
    /* "relation already exists, skipping" is expected on every start but the first. */
    r = exec_expect(conn, "SET LOCAL client_min_messages = warning", PGRES_COMMAND_OK,
                    "migrations: set client_min_messages", err, errlen);
    if (r < 0)
        goto err_rollback;
    r = exec_expect(conn, "SELECT pg_advisory_xact_lock(" MIGRATION_LOCK_KEY ")", PGRES_TUPLES_OK,
                    "migrations: advisory lock", err, errlen);
    if (r < 0)
        goto err_rollback;
    r = exec_expect(conn,
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version integer PRIMARY KEY,"
                    " name text NOT NULL,"
                    " applied_at timestamptz NOT NULL DEFAULT now())",
                    PGRES_COMMAND_OK, "migrations: create schema_migrations", err, errlen);
    if (r < 0)
        goto err_rollback;

    PGresult *res = PQexec(conn, "SELECT coalesce(max(version), 0) FROM schema_migrations");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        char msg[512];
        snprintf(err, errlen, "migrations: read schema version: %s",
                 vg_log_one_line(PQresultErrorMessage(res), msg, sizeof(msg)));
        PQclear(res);
        r = -EIO;
        goto err_rollback;
    }
    char *end = NULL;
    errno = 0;
    long current = strtol(PQgetvalue(res, 0, 0), &end, 10);
    bool parsed = errno == 0 && end && *end == '\0';
    PQclear(res);
    if (!parsed) {
        snprintf(err, errlen, "migrations: schema_migrations holds an unreadable version");
        r = -EPROTO;
        goto err_rollback;
    }
    if (current > known) {
        snprintf(err, errlen,
                 "database schema is at version %ld but this coordinator knows only up to %d: "
                 "run a coordinator at least as new as the one that migrated it",
                 current, known);
        r = -EPROTO;
        goto err_rollback;
    }

    unsigned applied = 0;
    for (unsigned i = 0; i < vigil_migrations_count; i++) {
        const struct migration *m = &vigil_migrations[i];
        if (m->version <= current)
            continue;
        char what[160];
        snprintf(what, sizeof(what), "migration %s", m->name);
        /* One PQexec runs every statement of the file; the first error stops it. */
        res = PQexec(conn, m->sql);
        ExecStatusType st = PQresultStatus(res);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
            char msg[512];
            snprintf(err, errlen, "%s: %s", what,
                     vg_log_one_line(res ? PQresultErrorMessage(res) : PQerrorMessage(conn), msg,
                                     sizeof(msg)));
            PQclear(res);
            r = -EIO;
            goto err_rollback;
        }
        PQclear(res);

        char version[16];
        snprintf(version, sizeof(version), "%d", m->version);
        const char *params[2] = {version, m->name};
        res = PQexecParams(conn, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2,
                           NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            char msg[512];
            snprintf(err, errlen, "%s: record: %s", what,
                     vg_log_one_line(PQresultErrorMessage(res), msg, sizeof(msg)));
            PQclear(res);
            r = -EIO;
            goto err_rollback;
        }
        PQclear(res);
        vg_log(VG_LOG_DEBUG, "store: migration applied version=%d name=%s", m->version, m->name);
        applied++;
    }

    r = exec_expect(conn, "COMMIT", PGRES_COMMAND_OK, "migrations: COMMIT", err, errlen);
    if (r < 0)
        goto err_rollback;
    vg_log(VG_LOG_DEBUG, "store: schema version=%d applied=%u", applied ? known : (int)current,
           applied);
    return 0;

err_rollback:
    rollback(conn);
    if (PQstatus(conn) != CONNECTION_OK && r != -EPROTO)
        r = -EIO;
    return r;
}
