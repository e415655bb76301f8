/*
 * Operator requests about operators: list them, add one, revoke one, and rotate one's own keys.
 *
 * An operator is a CURVE public key (what the admin socket's handshake proves) with a name, a
 * role and an Ed25519 signing public key (approvals). Each change is one statement with its audit
 * row (store_operators.c), then the registry, with registry_lock held across that statement: the
 * main loop's ZAP handler answers from the registry, so a revoked or rotated key is refused on
 * the next handshake, and admin.c looks the operator up by id for every request, so a connection
 * made before the change gets no further either.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_internal.h"
#include "log.h"
#include "sign.h"
#include "wire.h"

_Static_assert(sizeof(((struct operator*)0)->signing_key) == VG_SIGN_PUBLIC_B64_LEN + 1,
               "the registry holds a base64 signing public key");
_Static_assert(sizeof(((struct store_operator *)0)->signing_key) == VG_SIGN_PUBLIC_B64_LEN + 1,
               "the store holds a base64 signing public key");

#define OPERATOR_NAME_MAX 64 /* as admin.name in coordinator.yaml */
#define OPERATORS_LISTED_MAX 10000

/* A new operator's name: 1 to 64 letters, digits and . _ @ -, so that it reads plainly in
 * "operator:NAME", in key=value log lines and on a command line. */
static bool name_valid(const char *name)
{
    size_t len = strnlen(name, OPERATOR_NAME_MAX + 1);
    if (len == 0 || len > OPERATOR_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '@' || c == '-'))
            return false;
    }
    return true;
}

/* What is wrong with an operator's public keys as they came, or NULL. */
static const char *keys_problem(const char *public_key, const char *signing_key)
{
    unsigned char key[VG_SIGN_PUBLIC_LEN];
    if (!vg_key_z85_valid(public_key))
        return "public_key is not a CURVE public key (40 Z85 characters, as 'vigilctl keygen' "
               "prints it)";
    if (!vg_text_fits(signing_key, VG_SIGN_PUBLIC_B64_LEN) ||
        vg_sign_public_parse(signing_key, key) < 0)
        return "signing_key is not an Ed25519 public key (44 base64 characters, as 'vigilctl "
               "keygen' prints it)";
    return NULL;
}

/* A row with these keys (checked by keys_problem) and the id that follows from the CURVE key. */
static void row_with_keys(const char *public_key, const char *signing_key,
                          struct store_operator *ret)
{
    char id[OPERATOR_ID_LEN + 1];
    memset(ret, 0, sizeof(*ret));
    operator_id_from_key(public_key, id);
    snprintf(ret->id, sizeof(ret->id), "%s", id);
    snprintf(ret->public_key, sizeof(ret->public_key), "%s", public_key);
    snprintf(ret->signing_key, sizeof(ret->signing_key), "%s", signing_key);
}

/* ---- replies ---- */

/* Points info into row, which must live as long as the reply (reply_own). */
static void fill_operator_info(Vigil__OperatorInfo *info, const struct store_operator *row)
{
    vigil__operator_info__init(info);
    info->id = (char *)row->id;
    info->name = (char *)row->name;
    info->role = (char *)row->role;
    info->public_key = (char *)row->public_key;
    info->signing_key = (char *)row->signing_key;
    info->revoked = row->revoked;
    info->created_at_ms = row->created_at_ms;
}

/* The reply's operators: a copy of row, alone. */
static void reply_operator(struct reply *rep, const struct store_operator *row)
{
    struct store_operator *copy = reply_own(rep, malloc(sizeof(*copy)), free);
    Vigil__OperatorInfo *info = reply_own(rep, malloc(sizeof(*info)), free);
    Vigil__OperatorInfo **ptrs = reply_own(rep, malloc(sizeof(Vigil__OperatorInfo *)), free);
    if (!copy || !info || !ptrs) {
        reply_out_of_memory(rep);
        return;
    }
    *copy = *row;
    fill_operator_info(info, copy);
    ptrs[0] = info;
    rep->msg.operators = ptrs;
    rep->msg.n_operators = 1;
}

/* A registry entry as a row, for a reply (created_at is the store's: 0 when unknown here). */
static void row_from_operator(const struct operator* op, bool revoked, struct store_operator *ret)
{
    memset(ret, 0, sizeof(*ret));
    snprintf(ret->id, sizeof(ret->id), "%s", op->id);
    snprintf(ret->name, sizeof(ret->name), "%s", op->name);
    snprintf(ret->public_key, sizeof(ret->public_key), "%s", op->public_key);
    snprintf(ret->signing_key, sizeof(ret->signing_key), "%s", op->signing_key);
    snprintf(ret->role, sizeof(ret->role), "%s", operator_role_name(op->role));
    ret->revoked = revoked;
}

/* The registry's entry for a row just stored (its role was checked when it was written). */
static int operator_from_row(const struct store_operator *row, struct operator* ret)
{
    struct operator op;
    memset(&op, 0, sizeof(op));
    if (operator_role_parse(row->role, &op.role) < 0)
        return -EINVAL;
    snprintf(op.id, sizeof(op.id), "%s", row->id);
    snprintf(op.name, sizeof(op.name), "%s", row->name);
    snprintf(op.public_key, sizeof(op.public_key), "%s", row->public_key);
    snprintf(op.signing_key, sizeof(op.signing_key), "%s", row->signing_key);
    *ret = op;
    return 0;
}

/* ---- list ---- */

struct operator_list {
    struct store_operator *rows;
    size_t n, cap;
    bool include_revoked;
    bool too_many;
};

static int collect_operator(const struct store_operator *op, void *userdata)
{
    struct operator_list *list = userdata;
    if (op->revoked && !list->include_revoked)
        return 0;
    if (list->n == OPERATORS_LISTED_MAX) {
        list->too_many = true;
        return 1;
    }
    if (list->n == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 16;
        struct store_operator *grown = realloc(list->rows, cap * sizeof(*grown));
        if (!grown)
            return -ENOMEM;
        list->rows = grown;
        list->cap = cap;
    }
    list->rows[list->n++] = *op;
    return 0;
}

static void list_operators(admin_t *self, const struct operator* op, const Vigil__AdminRequest *req,
                           struct reply *rep)
{
    (void)op;
    struct operator_list list = {.include_revoked = req->list_operators->include_revoked};
    int r = store_operators_load(self->store, collect_operator, &list);
    if (r < 0 || list.too_many) {
        free(list.rows);
        if (r == -ENOMEM)
            reply_out_of_memory(rep);
        else if (list.too_many)
            reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_UNAVAILABLE,
                        "more than %d operators: too many to list", OPERATORS_LISTED_MAX);
        else
            reply_store_unavailable(rep, false);
        return;
    }
    if (list.n == 0 || !list.rows) { /* an empty listing */
        free(list.rows);
        return;
    }
    if (!reply_own(rep, list.rows, free))
        return;
    Vigil__OperatorInfo *infos = reply_own(rep, calloc(list.n, sizeof(*infos)), free);
    Vigil__OperatorInfo **ptrs =
        reply_own(rep, calloc(list.n, sizeof(Vigil__OperatorInfo *)), free);
    if (!infos || !ptrs) {
        reply_out_of_memory(rep);
        return;
    }
    for (size_t i = 0; i < list.n; i++) {
        fill_operator_info(&infos[i], &list.rows[i]);
        ptrs[i] = &infos[i];
    }
    rep->msg.operators = ptrs;
    rep->msg.n_operators = list.n;
}

/* ---- add ---- */

static const char *check_add(const Vigil__AdminRequest *req)
{
    const Vigil__AddOperator *add = req->add_operator;
    enum operator_role role;
    if (!name_valid(add->name))
        return "an operator's name is 1 to 64 letters, digits, '.', '_', '@' or '-'";
    if (!vg_text_fits(add->role, 16) || operator_role_parse(add->role, &role) < 0)
        return "role must be viewer, responder or admin";
    return keys_problem(add->public_key, add->signing_key);
}

static void add_operator(admin_t *self, const struct operator* op, const Vigil__AdminRequest *req,
                         struct reply *rep)
{
    const Vigil__AddOperator *add = req->add_operator;
    struct store_operator row, stored;
    struct operator added;
    char actor[160], err[256] = "";

    row_with_keys(add->public_key, add->signing_key, &row);
    snprintf(row.name, sizeof(row.name), "%s", add->name);
    snprintf(row.role, sizeof(row.role), "%s", add->role);
    admin_actor(op, actor, sizeof(actor));

    registry_lock(self->registry);
    int r = store_operator_add(self->store, &row, actor, &stored, err, sizeof(err));
    if (r == 0) {
        r = operator_from_row(&stored, &added);
        if (r == 0)
            r = registry_operator_add(self->registry, &added);
        if (r < 0) {
            registry_unlock(self->registry);
            vg_log(VG_LOG_ERROR,
                   "operator=%s id=%s stored but not in effect: %s (it will be after a restart)",
                   stored.name, stored.id, strerror(-r));
            reply_out_of_memory(rep);
            return;
        }
    }
    registry_unlock(self->registry);
    if (r == -EEXIST) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_CONFLICT, "%s", err);
        return;
    }
    if (r < 0) {
        reply_store_unavailable(rep, true);
        return;
    }
    vg_log(VG_LOG_INFO, "operator=%s id=%s role=%s added by operator=%s", stored.name, stored.id,
           stored.role, op->name);
    reply_operator(rep, &stored);
}

/* ---- revoke ---- */

static const char *check_revoke(const Vigil__AdminRequest *req)
{
    const char *name = req->revoke_operator->name;
    if (!vg_text_fits(name, sizeof(((struct operator*)0)->name) - 1) || !name[0])
        return "an operator's name is needed (at most 127 bytes)";
    return NULL;
}

static void revoke_operator(admin_t *self, const struct operator* op,
                            const Vigil__AdminRequest *req, struct reply *rep)
{
    const char *name = req->revoke_operator->name;
    struct operator target;
    char actor[160];

    admin_actor(op, actor, sizeof(actor));
    registry_lock(self->registry);
    const struct operator* found = registry_operator_by_name(self->registry, name);
    if (!found) {
        registry_unlock(self->registry);
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_NOT_FOUND,
                    "no active operator is named %s ('vigilctl operators --all' lists revoked "
                    "ones too)",
                    name);
        return;
    }
    target = *found;
    int r = target.role == ROLE_ADMIN && registry_operator_count(self->registry, ROLE_ADMIN) < 2
                ? -EBUSY
                : store_operator_revoke(self->store, target.id, actor);
    if (r == 0 || r == -ENOENT) /* -ENOENT: the store had it revoked already; it decides */
        registry_operator_revoke(self->registry, target.public_key);
    registry_unlock(self->registry);

    if (r == -EBUSY) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_CONFLICT,
                    "%s is the last active admin: add another admin first (vigilctl operators add "
                    "NAME --role admin ...), or nobody could manage operators any more",
                    target.name);
        return;
    }
    if (r == -ENOENT) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_NOT_FOUND, "no active operator is named %s",
                    name);
        return;
    }
    if (r < 0) {
        reply_store_unavailable(rep, true);
        return;
    }
    vg_log(VG_LOG_INFO, "operator=%s id=%s role=%s revoked by operator=%s", target.name, target.id,
           operator_role_name(target.role), op->name);
    struct store_operator row;
    row_from_operator(&target, true, &row);
    reply_operator(rep, &row);
}

/* ---- rotate ---- */

static const char *check_rotate(const Vigil__AdminRequest *req)
{
    const Vigil__RotateOperatorKeys *rot = req->rotate_operator_keys;
    return keys_problem(rot->public_key, rot->signing_key);
}

static void rotate_keys(admin_t *self, const struct operator* op, const Vigil__AdminRequest *req,
                        struct reply *rep)
{
    const Vigil__RotateOperatorKeys *rot = req->rotate_operator_keys;
    struct store_operator fresh, stored;
    struct operator next;
    char actor[160], err[256] = "";

    row_with_keys(rot->public_key, rot->signing_key, &fresh);
    admin_actor(op, actor, sizeof(actor));

    registry_lock(self->registry);
    int r = store_operator_rotate(self->store, op->id, &fresh, actor, &stored, err, sizeof(err));
    if (r == 0) {
        r = operator_from_row(&stored, &next);
        if (r == 0)
            r = registry_operator_replace(self->registry, op->public_key, &next);
        if (r < 0) {
            /* The old key must not keep working: it goes, even if the new one cannot come. */
            registry_operator_revoke(self->registry, op->public_key);
            registry_unlock(self->registry);
            vg_log(VG_LOG_ERROR,
                   "operator=%s id=%s rotated, but the new key is not in effect: %s (it will be "
                   "after a restart)",
                   stored.name, stored.id, strerror(-r));
            reply_out_of_memory(rep);
            return;
        }
    }
    registry_unlock(self->registry);
    if (r == -EEXIST) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_CONFLICT, "%s", err);
        return;
    }
    if (r == -ENOENT) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_FORBIDDEN,
                    "this operator key was revoked or replaced meanwhile");
        return;
    }
    if (r < 0) {
        reply_store_unavailable(rep, true);
        return;
    }
    vg_log(VG_LOG_INFO, "operator=%s rotated its keys id=%s previous_id=%s", stored.name, stored.id,
           op->id);
    reply_operator(rep, &stored);
}

const struct admin_command admin_operator_commands[] = {
    {VIGIL__ADMIN_REQUEST__BODY_LIST_OPERATORS, ROLE_VIEWER, "listing operators", NULL,
     list_operators},
    {VIGIL__ADMIN_REQUEST__BODY_ADD_OPERATOR, ROLE_ADMIN, "adding operators", check_add,
     add_operator},
    {VIGIL__ADMIN_REQUEST__BODY_REVOKE_OPERATOR, ROLE_ADMIN, "revoking operators", check_revoke,
     revoke_operator},
    {VIGIL__ADMIN_REQUEST__BODY_ROTATE_OPERATOR_KEYS, ROLE_VIEWER, "rotating one's own keys",
     check_rotate, rotate_keys},
    {0},
};
