/*
 * Operators on the store's main connection (or the admin thread's): who may use vigilctl, with
 * which role and which keys.
 *
 * Every change is one statement that writes its audit_log row too, so the change and its record
 * commit together or not at all. A row is never deleted and a revoked row never comes back:
 * revoking sets revoked_at, rotating keys revokes the old row and inserts a new one (same name
 * and role, new id and keys). public_key and signing_key are unique over every row, revoked ones
 * included, and a name over the active rows (012_operator_signing.sql).
 */
#include "store.h"
#include "store_internal.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "utf8.h"

/* The columns operator_from_row reads, in its order. */
#define OPERATOR_COLUMNS                                                                           \
    "id, name, public_key, role, revoked_at IS NOT NULL, signing_key,"                             \
    " (extract(epoch FROM created_at) * 1000)::bigint"

static bool role_valid(const char *role)
{
    return strcmp(role, "viewer") == 0 || strcmp(role, "responder") == 0 ||
           strcmp(role, "admin") == 0;
}

/* The fields a row is written from fit their arrays and are UTF-8; the role is known. */
static bool operator_valid(const struct store_operator *op)
{
    return op->id[0] && op->public_key[0] && store_fits(op->id, sizeof(op->id)) &&
           store_fits(op->name, sizeof(op->name)) &&
           store_fits(op->public_key, sizeof(op->public_key)) &&
           store_fits(op->signing_key, sizeof(op->signing_key)) &&
           store_fits(op->role, sizeof(op->role)) && role_valid(op->role) &&
           vg_utf8_valid(op->id) && vg_utf8_valid(op->name) && vg_utf8_valid(op->public_key) &&
           vg_utf8_valid(op->signing_key);
}

/* Columns first..first+6 of row i (OPERATOR_COLUMNS); false when a field does not fit. */
static bool operator_from_row(const PGresult *res, int i, int first, struct store_operator *ret)
{
    struct store_operator op;
    memset(&op, 0, sizeof(op));
    const char *id = PQgetvalue(res, i, first);
    const char *key = PQgetvalue(res, i, first + 2);
    const char *role = PQgetvalue(res, i, first + 3);
    const char *signing = PQgetvalue(res, i, first + 5);
    if (!store_fits(id, sizeof(op.id)) || !store_fits(key, sizeof(op.public_key)) ||
        !store_fits(role, sizeof(op.role)) || !store_fits(signing, sizeof(op.signing_key))) {
        vg_log(VG_LOG_WARN, "store: operator row skipped: field too long operator=%.40s", id);
        return false;
    }
    memcpy(op.id, id, strlen(id) + 1);
    memcpy(op.public_key, key, strlen(key) + 1);
    memcpy(op.role, role, strlen(role) + 1);
    memcpy(op.signing_key, signing, strlen(signing) + 1);
    snprintf(op.name, sizeof(op.name), "%s", PQgetvalue(res, i, first + 1));
    op.revoked = strcmp(PQgetvalue(res, i, first + 4), "t") == 0;
    if (!store_parse_i64(PQgetvalue(res, i, first + 6), &op.created_at_ms))
        op.created_at_ms = 0;
    *ret = op;
    return true;
}

struct operator_walk {
    int (*cb)(const struct store_operator *op, void *userdata);
    void *userdata;
};

static int operator_row(const PGresult *res, int i, void *userdata)
{
    const struct operator_walk *walk = userdata;
    struct store_operator op;
    if (!operator_from_row(res, i, 0, &op))
        return 0;
    return walk->cb(&op, walk->userdata);
}

int store_operators_load(store_t *self, int (*cb)(const struct store_operator *op, void *userdata),
                         void *userdata)
{
    if (!self || !cb)
        return -EINVAL;
    int r = store_ensure_conn(self);
    if (r < 0)
        return r;
    struct operator_walk walk = {cb, userdata};
    return store_query_rows(self, "load operators",
                            "SELECT " OPERATOR_COLUMNS " FROM operators ORDER BY id", 0, NULL,
                            operator_row, &walk);
}

/* One row expected back (OPERATOR_COLUMNS from column first): into *ret_stored (may be NULL).
 * -EIO when the statement did not answer one row. */
static int one_operator(store_t *self, PGresult *res, const char *what, int first,
                        struct store_operator *ret_stored)
{
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return store_failed(self, res, what);
    if (PQntuples(res) != 1) {
        vg_log(VG_LOG_WARN, "store: %s: %d rows where one was expected", what, PQntuples(res));
        return -EIO;
    }
    struct store_operator stored;
    if (!operator_from_row(res, 0, first, &stored))
        return -EIO;
    if (ret_stored)
        *ret_stored = stored;
    return 0;
}

int store_operator_ensure(store_t *self, const struct store_operator *op,
                          struct store_operator *ret_stored)
{
    if (!self || !op || !operator_valid(op))
        return -EINVAL;
    int r = store_ensure_conn(self);
    if (r < 0)
        return r;
    const char *params[] = {
        op->id, op->name, op->public_key, op->role, op->revoked ? "t" : "f", op->signing_key};
    /* Exactly one row comes back: the inserted one, the one whose signing key was filled in, or
     * the one that was there. The CTEs all see the table as it was before the statement. */
    PGresult *res = PQexecParams(
        self->conn,
        "WITH existing AS (SELECT " OPERATOR_COLUMNS " FROM operators WHERE public_key = $3),"
        " ins AS (INSERT INTO operators (id, name, public_key, role, revoked_at, signing_key)"
        "  SELECT $1::text, $2::text, $3::text, $4::text, CASE WHEN $5::boolean THEN now() END,"
        "   $6::text"
        "  WHERE NOT EXISTS (SELECT 1 FROM existing)"
        "  ON CONFLICT (public_key) DO NOTHING RETURNING " OPERATOR_COLUMNS "),"
        " upd AS (UPDATE operators SET signing_key = $6 WHERE public_key = $3"
        "  AND revoked_at IS NULL AND signing_key = '' AND $6 <> ''"
        "  RETURNING " OPERATOR_COLUMNS "),"
        " audit AS (INSERT INTO audit_log (actor, action, subject, detail)"
        "  SELECT 'coordinator', 'operator.add', name,"
        "   format('id=%s role=%s public_key=%s signing_key=%s source=configuration',"
        "    id, role, public_key, signing_key) FROM ins"
        "  UNION ALL SELECT 'coordinator', 'operator.signing_key', name,"
        "   format('id=%s signing_key=%s source=configuration', id, signing_key) FROM upd)"
        " SELECT * FROM ins UNION ALL SELECT * FROM upd"
        " UNION ALL SELECT * FROM existing WHERE NOT EXISTS (SELECT 1 FROM upd)",
        6, NULL, params, NULL, NULL, 0);
    r = one_operator(self, res, "operator ensure", 0, ret_stored);
    PQclear(res);
    return r;
}

/*
 * What add and rotate share: the existing row that stands in the way of new keys (or, for add,
 * of a name), at most one. $1 id, $2 public key, $3 signing key, $4 name (NULL = not checked: a
 * rotation keeps its own name). Their statements answer one row: ('added', NULL, NULL, the new
 * row as OPERATOR_COLUMNS), or (what, the holder's name, 't' when revoked, NULLs).
 */
#define CLASH_CTE                                                                                  \
    "clash AS (SELECT CASE WHEN public_key = $2 THEN 'public key'"                                 \
    "   WHEN signing_key = $3 THEN 'signing key' WHEN id = $1 THEN 'id' ELSE 'name' END AS what,"  \
    "  name, revoked_at IS NOT NULL AS revoked FROM operators"                                     \
    "  WHERE public_key = $2 OR signing_key = $3 OR id = $1"                                       \
    "   OR (name = $4 AND revoked_at IS NULL)"                                                     \
    "  ORDER BY (public_key = $2) DESC, (signing_key = $3) DESC LIMIT 1)"

/* The answer of add and rotate, from their CTEs ins (the new row) and clash. */
#define ADDED_OR_CLASH                                                                             \
    " SELECT 'added', NULL, NULL, * FROM ins"                                                      \
    " UNION ALL SELECT what, name, CASE WHEN revoked THEN 't' ELSE 'f' END,"                       \
    "  NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM clash"

/* The clash the statement reported, as a sentence in err; -EEXIST. */
static int clash_error(const PGresult *res, char *err, size_t errlen)
{
    const char *what = PQgetvalue(res, 0, 0);
    const char *name = PQgetvalue(res, 0, 1);
    bool revoked = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
    if (strcmp(what, "name") == 0)
        snprintf(err, errlen, "an active operator is already named %s", name);
    else if (revoked)
        snprintf(err, errlen,
                 "that %s was operator %s's, now revoked: a revoked key is never registered "
                 "again (make a new one with 'vigilctl keygen')",
                 what, name);
    else
        snprintf(err, errlen, "that %s is operator %s's", what, name);
    return -EEXIST;
}

/* The answer of add or rotate: a clash (-EEXIST, err), the new row, or a failure. */
static int added_or_clash(store_t *self, PGresult *res, const char *what,
                          struct store_operator *ret_stored, char *err, size_t errlen)
{
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
        strcmp(PQgetvalue(res, 0, 0), "added") != 0)
        return clash_error(res, err, errlen);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 0)
        return -ENOENT;
    int r = one_operator(self, res, what, 3, ret_stored);
    if (r == -EEXIST) /* a clash the check did not see: another writer got there first */
        snprintf(err, errlen, "its name or one of its keys was registered meanwhile; try again");
    return r;
}

int store_operator_add(store_t *self, const struct store_operator *op, const char *actor,
                       struct store_operator *ret_stored, char *err, size_t errlen)
{
    if (!self || !op || !actor || !operator_valid(op) || !op->name[0] || !op->signing_key[0] ||
        op->revoked || !vg_utf8_valid(actor))
        return -EINVAL;
    int r = store_ensure_conn(self);
    if (r < 0)
        return r;
    const char *params[] = {op->id, op->public_key, op->signing_key, op->name, op->role, actor};
    PGresult *res =
        PQexecParams(self->conn,
                     "WITH " CLASH_CTE ","
                     " ins AS (INSERT INTO operators (id, name, public_key, signing_key, role)"
                     "  SELECT $1::text, $4::text, $2::text, $3::text, $5::text"
                     "  WHERE NOT EXISTS (SELECT 1 FROM clash)"
                     "  RETURNING " OPERATOR_COLUMNS "),"
                     " audit AS (INSERT INTO audit_log (actor, action, subject, detail)"
                     "  SELECT $6::text, 'operator.add', name,"
                     "   format('id=%s role=%s public_key=%s signing_key=%s', id, role, public_key,"
                     "    signing_key) FROM ins)" ADDED_OR_CLASH,
                     6, NULL, params, NULL, NULL, 0);
    r = added_or_clash(self, res, "operator add", ret_stored, err, errlen);
    PQclear(res);
    return r == -ENOENT ? -EIO : r;
}

int store_operator_revoke(store_t *self, const char *id, const char *actor)
{
    if (!self || !id || !actor || !vg_utf8_valid(id) || !vg_utf8_valid(actor))
        return -EINVAL;
    int r = store_ensure_conn(self);
    if (r < 0)
        return r;
    const char *params[] = {id, actor};
    /* The last active admin stays: checked here too, so no caller can lock everyone out. */
    PGresult *res = PQexecParams(
        self->conn,
        "WITH target AS (SELECT id, role FROM operators WHERE id = $1 AND revoked_at IS NULL),"
        " admins_left AS (SELECT count(*) AS n FROM operators"
        "  WHERE role = 'admin' AND revoked_at IS NULL AND id <> $1),"
        " revoked AS (UPDATE operators AS o SET revoked_at = now() FROM target, admins_left"
        "  WHERE o.id = target.id AND (target.role <> 'admin' OR admins_left.n > 0)"
        "  RETURNING o.id, o.name, o.role),"
        " audit AS (INSERT INTO audit_log (actor, action, subject, detail)"
        "  SELECT $2::text, 'operator.revoke', name, format('id=%s role=%s', id, role) FROM "
        "revoked)"
        " SELECT (SELECT count(*) FROM target), (SELECT count(*) FROM revoked)",
        2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        r = store_failed(self, res, "operator revoke");
    } else if (PQntuples(res) != 1) {
        r = -EIO;
    } else if (strcmp(PQgetvalue(res, 0, 0), "0") == 0) {
        r = -ENOENT;
    } else if (strcmp(PQgetvalue(res, 0, 1), "0") == 0) {
        r = -EBUSY;
    }
    PQclear(res);
    return r;
}

int store_operator_rotate(store_t *self, const char *old_id, const struct store_operator *fresh,
                          const char *actor, struct store_operator *ret_stored, char *err,
                          size_t errlen)
{
    if (!self || !old_id || !fresh || !actor || !vg_utf8_valid(old_id) || !vg_utf8_valid(actor) ||
        !fresh->id[0] || !fresh->public_key[0] || !fresh->signing_key[0] ||
        !store_fits(fresh->id, sizeof(fresh->id)) ||
        !store_fits(fresh->public_key, sizeof(fresh->public_key)) ||
        !store_fits(fresh->signing_key, sizeof(fresh->signing_key)) || !vg_utf8_valid(fresh->id) ||
        !vg_utf8_valid(fresh->public_key) || !vg_utf8_valid(fresh->signing_key))
        return -EINVAL;
    int r = store_ensure_conn(self);
    if (r < 0)
        return r;
    const char *params[] = {fresh->id, fresh->public_key, fresh->signing_key, NULL, old_id, actor};
    /* The new row is inserted from the old one's RETURNING, so after the old one is revoked:
     * the name is never held by two active rows. */
    PGresult *res = PQexecParams(
        self->conn,
        "WITH " CLASH_CTE ","
        " old AS (UPDATE operators SET revoked_at = now()"
        "  WHERE id = $5 AND revoked_at IS NULL AND NOT EXISTS (SELECT 1 FROM clash)"
        "  RETURNING id, name, role, public_key, signing_key),"
        " ins AS (INSERT INTO operators (id, name, public_key, signing_key, role)"
        "  SELECT $1::text, name, $2::text, $3::text, role FROM old RETURNING " OPERATOR_COLUMNS
        "),"
        " audit AS (INSERT INTO audit_log (actor, action, subject, detail)"
        "  SELECT $6::text, 'operator.rotate', ins.name,"
        "   format('id=%s previous_id=%s public_key=%s previous_public_key=%s'"
        "    || ' signing_key=%s previous_signing_key=%s', ins.id, old.id, ins.public_key,"
        "    old.public_key, ins.signing_key, old.signing_key) FROM ins, old)" ADDED_OR_CLASH,
        6, NULL, params, NULL, NULL, 0);
    r = added_or_clash(self, res, "operator rotate", ret_stored, err, errlen);
    PQclear(res);
    return r;
}
