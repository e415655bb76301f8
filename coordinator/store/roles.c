/*
 * The database roles (roles.h): the private cluster's two logins and their passwords, the
 * runtime role's GRANTs, and the check of a login's rights.
 */
#include "roles.h"

#include <errno.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "log.h"

#define PASSWORD_BYTES 24 /* 48 hex digits */

/*
 * The tables whose rows hold current state and change in place: the running coordinator may
 * UPDATE (and lock, SELECT ... FOR UPDATE) these. Every other table it may only read and append
 * to. signal_latest is written by the trigger on signals (upsert of each series' newest sample).
 */
static const char *const updatable_tables[] = {
    "agents",        "automation", "escalations", "evidence_targets",
    "notifications", "operators",  "silences",    "signal_latest",
};
/* ... and DELETE only these (an agent record removed with `vigilctl agents remove`). */
static const char *const deletable_tables[] = {"agents"};
/* Projections a trigger keeps with the owner's rights: read only. */
static const char *const read_only_tables[] = {"command_current"};

/* The record: appended to, never changed. The check reports any right beyond INSERT and SELECT
 * on them (tables a migration has not made yet are skipped). */
static const char *const record_tables[] = {
    "audit_log",         "chain_links",
    "command_approvals", "command_capsules",
    "command_reports",   "command_requests",
    "command_states",    "drills",
    "evidence",          "evidence_chunks",
    "evidence_removals", "followup_events",
    "followups",         "holds",
    "incident_events",   "incident_reports",
    "incident_states",   "status_updates",
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void seterr_pq(char *err, size_t errlen, const char *what, PGconn *conn, const PGresult *res)
{
    char msg[512];
    vg_log_one_line(res ? PQresultErrorMessage(res) : PQerrorMessage(conn), msg, sizeof(msg));
    if (msg[0] == '\0')
        vg_log_one_line(PQerrorMessage(conn), msg, sizeof(msg));
    snprintf(err, errlen, "%s: %s", what, msg);
}

static int exec_ok(PGconn *conn, const char *sql, const char *what, char *err, size_t errlen)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    int r = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        seterr_pq(err, errlen, what, conn, res);
        r = -EIO;
    }
    PQclear(res);
    return r;
}

/* ---- the private cluster's logins ---- */

/* A libpq connection-string value in single quotes (' and \ escaped). */
static void quote_value(char *out, size_t len, const char *value)
{
    size_t n = 0;
    if (len < 3) {
        if (len)
            out[0] = '\0';
        return;
    }
    out[n++] = '\'';
    for (const char *p = value; *p && n + 3 < len; p++) {
        if (*p == '\'' || *p == '\\')
            out[n++] = '\\';
        out[n++] = *p;
    }
    out[n++] = '\'';
    out[n] = '\0';
}

/*
 * The password of role from its libpq password file "*:*:*:<role>:<password>" in state_dir,
 * made with a random one when missing. password: PASSWORD_BYTES * 2 + 1 bytes.
 */
static int role_password(const char *path, const char *role, char *password, char *err,
                         size_t errlen)
{
    char line[256];
    char *text = NULL;
    size_t len = 0;
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "*:*:*:%s:", role);

    int r = vg_secret_file_read(path, &text, &len, err, errlen);
    if (r == 0) {
        bool ok = len == strlen(prefix) + PASSWORD_BYTES * 2 &&
                  strncmp(text, prefix, strlen(prefix)) == 0 &&
                  strspn(text + strlen(prefix), "0123456789abcdef") == PASSWORD_BYTES * 2;
        if (ok)
            memcpy(password, text + strlen(prefix), PASSWORD_BYTES * 2 + 1);
        free(text);
        if (!ok) {
            snprintf(err, errlen,
                     "%s: not a password file of role %s (one line \"%s<48 hex digits>\"); "
                     "remove it and the coordinator makes a new one",
                     path, role, prefix);
            return -EINVAL;
        }
        return 0;
    }
    if (r != -ENOENT)
        return r;
    unsigned char random[PASSWORD_BYTES];
    randombytes_buf(random, sizeof(random));
    sodium_bin2hex(password, PASSWORD_BYTES * 2 + 1, random, sizeof(random));
    sodium_memzero(random, sizeof(random));
    int n = snprintf(line, sizeof(line), "%s%s\n", prefix, password);
    r = vg_secret_file_create(path, "database password file", line, (size_t)n, err, errlen);
    sodium_memzero(line, sizeof(line));
    if (r == -EEXIST) /* another coordinator made it meanwhile */
        return role_password(path, role, password, err, errlen);
    return r;
}

/* Creates role when missing (login, nothing else) and sets its password, sent hashed. */
static int ensure_login(PGconn *conn, const char *role, const char *password, char *err,
                        size_t errlen)
{
    char what[96];
    snprintf(what, sizeof(what), "role %s", role);
    const char *params[] = {role};
    PGresult *res = PQexecParams(conn, "SELECT 1 FROM pg_roles WHERE rolname = $1", 1, NULL, params,
                                 NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        seterr_pq(err, errlen, what, conn, res);
        PQclear(res);
        return -EIO;
    }
    bool exists = PQntuples(res) == 1;
    PQclear(res);

    char *hash = PQencryptPasswordConn(conn, password, role, "scram-sha-256");
    if (!hash) {
        seterr_pq(err, errlen, what, conn, NULL);
        return -EIO;
    }
    char sql[512];
    /* role is one of the literals of roles.h: no quoting needed, and the hash holds no quote. */
    snprintf(sql, sizeof(sql),
             "%s ROLE %s WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
             "NOBYPASSRLS PASSWORD '%s'",
             exists ? "ALTER" : "CREATE", role, hash);
    PQfreemem(hash);
    int r = exec_ok(conn, sql, what, err, errlen);
    sodium_memzero(sql, sizeof(sql));
    if (r == 0 && !exists)
        vg_log(VG_LOG_INFO, "store: created database role %s", role);
    return r;
}

static int login(PGconn *conn, const char *state_dir, const char *file, const char *role,
                 const char *sock_dir, const char *port, char *conninfo, size_t len, char *err,
                 size_t errlen)
{
    char path[4096];
    char password[PASSWORD_BYTES * 2 + 1];
    if (snprintf(path, sizeof(path), "%s/%s", state_dir, file) >= (int)sizeof(path)) {
        snprintf(err, errlen, "state directory path too long");
        return -ENAMETOOLONG;
    }
    int r = role_password(path, role, password, err, errlen);
    if (r == 0)
        r = ensure_login(conn, role, password, err, errlen);
    sodium_memzero(password, sizeof(password));
    if (r < 0)
        return r;
    char quoted[sizeof(path) * 2 + 3];
    quote_value(quoted, sizeof(quoted), path);
    if (snprintf(conninfo, len, "host=%s port=%s user=%s dbname=vigil passfile=%s", sock_dir, port,
                 role, quoted) >= (int)len) {
        snprintf(err, errlen, "connection string too long");
        return -ENAMETOOLONG;
    }
    return 0;
}

int roles_embedded_create(PGconn *superuser, const char *state_dir, const char *sock_dir,
                          const char *port, char *owner_conninfo, size_t owner_len,
                          char *runtime_conninfo, size_t runtime_len, char *err, size_t errlen)
{
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium cannot be initialised");
        return -EIO;
    }
    int r = login(superuser, state_dir, "pg-owner.pgpass", ROLES_OWNER, sock_dir, port,
                  owner_conninfo, owner_len, err, errlen);
    if (r == 0)
        r = login(superuser, state_dir, "pg-coordinator.pgpass", ROLES_RUNTIME, sock_dir, port,
                  runtime_conninfo, runtime_len, err, errlen);
    return r;
}

int roles_embedded_take_ownership(PGconn *superuser, char *err, size_t errlen)
{
    /* Sequences that belong to a column (serial, identity) follow their table. Partitions are
     * tables of their own: ALTER TABLE on the parent does not reach them. */
    static const char sql[] =
        "DO $$\n"
        "DECLARE r record;\n"
        "BEGIN\n"
        "  ALTER DATABASE vigil OWNER TO " ROLES_OWNER ";\n"
        "  ALTER SCHEMA public OWNER TO " ROLES_OWNER ";\n"
        "  FOR r IN SELECT c.oid::regclass AS name, c.relkind FROM pg_class c\n"
        "      JOIN pg_namespace n ON n.oid = c.relnamespace\n"
        "     WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')\n"
        "       AND c.relowner <> '" ROLES_OWNER "'::regrole\n"
        "       AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d\n"
        "            WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid\n"
        "              AND d.deptype IN ('a', 'i')))\n"
        "  LOOP\n"
        "    EXECUTE format('ALTER %s %s OWNER TO " ROLES_OWNER "',\n"
        "      CASE r.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'\n"
        "                     WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END, r.name);\n"
        "  END LOOP;\n"
        "  FOR r IN SELECT p.oid::regprocedure AS name, p.prokind FROM pg_proc p\n"
        "      JOIN pg_namespace n ON n.oid = p.pronamespace\n"
        "     WHERE n.nspname = 'public' AND p.proowner <> '" ROLES_OWNER "'::regrole\n"
        "  LOOP\n"
        "    EXECUTE format('ALTER %s %s OWNER TO " ROLES_OWNER "',\n"
        "      CASE r.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE'\n"
        "                     ELSE 'FUNCTION' END, r.name);\n"
        "  END LOOP;\n"
        "  FOR r IN SELECT t.oid::regtype AS name FROM pg_type t\n"
        "      JOIN pg_namespace n ON n.oid = t.typnamespace\n"
        "     WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd', 'c') AND t.typrelid = 0\n"
        "       AND t.typowner <> '" ROLES_OWNER "'::regrole\n"
        "  LOOP\n"
        "    EXECUTE format('ALTER TYPE %s OWNER TO " ROLES_OWNER "', r.name);\n"
        "  END LOOP;\n"
        "END $$";
    return exec_ok(superuser, sql, "private cluster: objects to " ROLES_OWNER, err, errlen);
}

/* ---- the runtime role's rights ---- */

/* Appends "t1, t2, ..." of names to sql. */
static void put_list(char *sql, size_t len, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t used = strlen(sql);
        snprintf(sql + used, len - used, "%s%s", i ? ", " : "", names[i]);
    }
}

int roles_grant_runtime(PGconn *owner, const char *runtime_role, char *err, size_t errlen)
{
    char *role = PQescapeIdentifier(owner, runtime_role, strlen(runtime_role));
    if (!role) {
        seterr_pq(err, errlen, "grants", owner, NULL);
        return -EIO;
    }
    char sql[4096];
    snprintf(sql, sizeof(sql),
             "BEGIN;"
             "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM %s;"
             "REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM %s;"
             "GRANT USAGE ON SCHEMA public TO %s;"
             "GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO %s;"
             "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO %s;"
             "GRANT UPDATE ON ",
             role, role, role, role, role);
    put_list(sql, sizeof(sql), updatable_tables, COUNT(updatable_tables));
    size_t used = strlen(sql);
    snprintf(sql + used, sizeof(sql) - used, " TO %s; GRANT DELETE ON ", role);
    put_list(sql, sizeof(sql), deletable_tables, COUNT(deletable_tables));
    used = strlen(sql);
    snprintf(sql + used, sizeof(sql) - used, " TO %s; REVOKE INSERT ON ", role);
    put_list(sql, sizeof(sql), read_only_tables, COUNT(read_only_tables));
    used = strlen(sql);
    snprintf(sql + used, sizeof(sql) - used, " FROM %s; COMMIT", role);
    PQfreemem(role);

    int r = exec_ok(owner, sql, "grants to the coordinator's role", err, errlen);
    if (r < 0) {
        PGresult *res = PQexec(owner, "ROLLBACK");
        PQclear(res);
    }
    return r;
}

int roles_check_runtime(PGconn *conn, char *out, size_t outlen)
{
    char record[1024] = "";
    put_list(record, sizeof(record), record_tables, COUNT(record_tables));
    char sql[2048];
    /* One row per excess right, in words an operator can act on. */
    snprintf(sql, sizeof(sql),
             "WITH me AS (SELECT * FROM pg_roles WHERE rolname = current_user),"
             " record AS (SELECT t FROM unnest(string_to_array('%s', ', ')) t"
             "  WHERE to_regclass('public.' || t) IS NOT NULL)"
             " SELECT 'superuser' FROM me WHERE rolsuper"
             " UNION ALL SELECT 'replication' FROM me WHERE rolreplication"
             " UNION ALL SELECT 'bypasses row security' FROM me WHERE rolbypassrls"
             " UNION ALL SELECT 'may create roles' FROM me WHERE rolcreaterole"
             " UNION ALL SELECT 'owns ' || count(*) || ' tables' FROM pg_class c"
             "  JOIN pg_namespace n ON n.oid = c.relnamespace"
             "  WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
             "    AND pg_has_role(current_user, c.relowner, 'USAGE')"
             "  HAVING count(*) > 0"
             " UNION ALL SELECT string_agg(DISTINCT p, '/') || ' on ' || count(DISTINCT t)"
             "  || ' tables of the record (' || string_agg(DISTINCT t, ' ') || ')'"
             "  FROM record, unnest(ARRAY['UPDATE', 'DELETE', 'TRUNCATE']) p"
             "  WHERE has_table_privilege('public.' || t, p) HAVING count(*) > 0",
             record);
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        char msg[512];
        snprintf(out, outlen, "%s", vg_log_one_line(PQresultErrorMessage(res), msg, sizeof(msg)));
        PQclear(res);
        return -EIO;
    }
    int n = PQntuples(res);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        size_t used = strlen(out);
        snprintf(out + used, outlen - used, "%s%s", i ? ", " : "", PQgetvalue(res, i, 0));
    }
    PQclear(res);
    return n;
}
