/*
 * vigilctl operators [list] [--all] | operators add NAME --role R --public-key K --signing-key S |
 * operators revoke NAME | operators rotate
 *
 * rotate replaces this operator's own keys without a moment in which no key works and without
 * losing a key: the new CURVE pair goes into a copy of the configuration file and the new signing
 * key into a new file, both next to the ones in use (".new"); the coordinator is told the public
 * halves; only once it has answered that it switched are the files moved in place, the previous
 * ones kept as ".old". When the coordinator refuses, the new files are removed; when it does not
 * answer, they are kept, because it may have switched, and the message says what to do.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "ctl_admin.h"
#include "keys.h"
#include "sign.h"
#include "timeutil.h"

#define OPERATOR_NAME_MAX_LEN 64

static json_t *operator_json(const Vigil__OperatorInfo *op)
{
    /* clang-format off */
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:b, s:o}",
                     "id", output_json_string(op->id),
                     "name", output_json_string(op->name),
                     "role", output_json_string(op->role),
                     "public_key", output_json_string(op->public_key),
                     "signing_key", output_json_string(op->signing_key),
                     "revoked", op->revoked,
                     "created_at", output_json_time(op->created_at_ms));
    /* clang-format on */
}

static int print_operators_json(const Vigil__AdminReply *reply)
{
    json_t *list = json_array();
    if (list == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < reply->n_operators; i++) {
        if (json_array_append_new(list, operator_json(reply->operators[i])) < 0) {
            json_decref(list);
            return -ENOMEM;
        }
    }
    return output_json_print(&list, stdout);
}

static int print_operators_table(const Vigil__AdminReply *reply)
{
    static const char *const headers[] = {"NAME",       "ROLE",        "STATE", "ADDED",
                                          "PUBLIC-KEY", "SIGNING-KEY", "ID"};
    output_table_t *table = output_table_new(7, headers);
    int64_t now = vg_wall_ms();
    int r = 0;

    if (table == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < reply->n_operators && r == 0; i++) {
        const Vigil__OperatorInfo *op = reply->operators[i];
        char added[32];

        output_time_ago(op->created_at_ms, now, added, sizeof(added));
        const char *cells[] = {
            op->name, op->role,       op->revoked ? "revoked" : "active",
            added,    op->public_key, op->signing_key[0] != '\0' ? op->signing_key : "(none)",
            op->id,
        };
        r = output_table_add_row(table, cells);
    }
    if (r == 0)
        r = output_table_print(table, stdout);
    output_table_destroy(&table);
    return r;
}

static int operators_list(struct ctl_context *ctx, bool include_revoked)
{
    Vigil__ListOperators body = VIGIL__LIST_OPERATORS__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__AdminReply *reply = NULL;

    body.include_revoked = include_revoked;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_LIST_OPERATORS;
    req.list_operators = &body;
    int r = ctl_admin_request(ctx, &req, "list operators", NULL, &reply);
    if (r != CTL_EXIT_OK)
        return r;
    r = ctx->format == OUTPUT_JSON ? print_operators_json(reply) : print_operators_table(reply);
    vigil__admin_reply__free_unpacked(reply, NULL);
    if (r < 0) {
        output_error("cannot write the operator list: %s", strerror(-r));
        return CTL_EXIT_FAILURE;
    }
    return CTL_EXIT_OK;
}

/* The operator a change answered with: one JSON object, or line for people. */
static int print_changed(struct ctl_context *ctx, const Vigil__AdminReply *reply, const char *line)
{
    int r;
    if (ctx->format == OUTPUT_JSON) {
        json_t *doc = reply->n_operators > 0 ? operator_json(reply->operators[0]) : json_object();
        r = output_json_print(&doc, stdout);
    } else {
        r = printf("%s\n", line) < 0 ? -EIO : 0;
    }
    if (r < 0) {
        output_error("cannot write the output");
        return CTL_EXIT_FAILURE;
    }
    return CTL_EXIT_OK;
}

static bool name_plausible(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > OPERATOR_NAME_MAX_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= 0x20 || c >= 0x7f)
            return false;
    }
    return true;
}

static int operators_add(struct ctl_context *ctx, const struct ctl_args *args)
{
    const char *role = ctl_args_value(args, "role");
    const char *public_key = ctl_args_value(args, "public-key");
    const char *signing_key = ctl_args_value(args, "signing-key");
    unsigned char raw[VG_SIGN_PUBLIC_LEN];

    if (args->argc != 2 || !name_plausible(args->argv[1])) {
        output_error("usage: vigilctl operators add NAME --role R --public-key K --signing-key S "
                     "(NAME: one word of at most %d characters)",
                     OPERATOR_NAME_MAX_LEN);
        return CTL_EXIT_USAGE;
    }
    if (role == NULL || (strcmp(role, "viewer") != 0 && strcmp(role, "responder") != 0 &&
                         strcmp(role, "admin") != 0)) {
        output_error("operators add needs --role viewer, responder or admin");
        return CTL_EXIT_USAGE;
    }
    if (public_key == NULL || !vg_key_z85_valid(public_key)) {
        output_error("operators add needs --public-key K: the operator's CURVE public key (40 Z85 "
                     "characters, the public-key line 'vigilctl keygen' prints)");
        return CTL_EXIT_USAGE;
    }
    if (signing_key == NULL || vg_sign_public_parse(signing_key, raw) < 0) {
        output_error("operators add needs --signing-key S: the operator's signing public key (44 "
                     "base64 characters, the signing-key line 'vigilctl keygen' prints)");
        return CTL_EXIT_USAGE;
    }

    Vigil__AddOperator body = VIGIL__ADD_OPERATOR__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__AdminReply *reply = NULL;
    char what[OPERATOR_NAME_MAX_LEN + 32], line[OPERATOR_NAME_MAX_LEN + 64];

    body.name = args->argv[1];
    body.role = (char *)role;
    body.public_key = (char *)public_key;
    body.signing_key = (char *)signing_key;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_ADD_OPERATOR;
    req.add_operator = &body;
    snprintf(what, sizeof(what), "add operator %s", args->argv[1]);
    int r = ctl_admin_request(ctx, &req, what, NULL, &reply);
    if (r != CTL_EXIT_OK)
        return r;
    snprintf(line, sizeof(line), "operator %s added (%s)", args->argv[1], role);
    r = print_changed(ctx, reply, line);
    vigil__admin_reply__free_unpacked(reply, NULL);
    return r;
}

static int operators_revoke(struct ctl_context *ctx, const struct ctl_args *args)
{
    if (args->argc != 2 || args->argv[1][0] == '\0' || strlen(args->argv[1]) > 127) {
        output_error("usage: vigilctl operators revoke NAME (one operator's name, as 'vigilctl "
                     "operators' lists it)");
        return CTL_EXIT_USAGE;
    }
    Vigil__RevokeOperator body = VIGIL__REVOKE_OPERATOR__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__AdminReply *reply = NULL;
    char what[160], line[256];

    body.name = args->argv[1];
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_REVOKE_OPERATOR;
    req.revoke_operator = &body;
    snprintf(what, sizeof(what), "revoke operator %s", args->argv[1]);
    int r = ctl_admin_request(ctx, &req, what, NULL, &reply);
    if (r != CTL_EXIT_OK)
        return r;
    snprintf(line, sizeof(line), "operator %s revoked: the coordinator refuses its key from now on",
             args->argv[1]);
    r = print_changed(ctx, reply, line);
    vigil__admin_reply__free_unpacked(reply, NULL);
    return r;
}

/* ---- rotate ---- */

/* Where a line of text starts with key and optional blanks then ':', at the top level. */
static bool line_sets(const char *line, size_t len, const char *key)
{
    size_t k = strlen(key);
    if (len <= k || strncmp(line, key, k) != 0)
        return false;
    while (k < len && (line[k] == ' ' || line[k] == '\t'))
        k++;
    return k < len && line[k] == ':';
}

/*
 * The configuration text with its public_key and secret_key lines set to kp's keys; every other
 * line stays as it was. Each key must be on one top-level line of its own, once (as vigilctl's
 * configuration is written): otherwise -EINVAL with err set. *ret is malloc'd (the caller wipes
 * and frees it).
 */
static int config_with_keys(const char *path, const char *text, const struct vg_keypair *kp,
                            char **ret, size_t *ret_len, char *err, size_t errlen)
{
    size_t cap = strlen(text) + 2 * (VG_KEY_Z85_LEN + 32) + 2, len = 0;
    int seen_public = 0, seen_secret = 0;
    char *out = malloc(cap);
    if (out == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (const char *line = text; *line != '\0';) {
        const char *nl = strchr(line, '\n');
        size_t n = nl != NULL ? (size_t)(nl - line) : strlen(line);
        int w = 0;
        if (line_sets(line, n, "public_key")) {
            seen_public++;
            w = snprintf(out + len, cap - len, "public_key: \"%s\"\n", kp->public_key);
        } else if (line_sets(line, n, "secret_key")) {
            seen_secret++;
            w = snprintf(out + len, cap - len, "secret_key: \"%s\"\n", kp->secret_key);
        } else if (len + n + 1 < cap) {
            memcpy(out + len, line, n);
            out[len + n] = '\n';
            w = (int)n + 1;
        } else {
            w = -1;
        }
        if (w < 0 || (size_t)w >= cap - len) {
            explicit_bzero(out, cap);
            free(out);
            snprintf(err, errlen, "%s: cannot rewrite it (a line does not fit)", path);
            return -EINVAL;
        }
        len += (size_t)w;
        line = nl != NULL ? nl + 1 : line + n;
    }
    if (seen_public != 1 || seen_secret != 1) {
        explicit_bzero(out, cap);
        free(out);
        snprintf(err, errlen,
                 "%s: cannot put the new keys in: it must set public_key and secret_key once each, "
                 "each on a line of its own at the start of the line",
                 path);
        return -EINVAL;
    }
    out[len] = '\0';
    *ret = out;
    *ret_len = len;
    return 0;
}

/* Writes the configuration at path with kp's keys into new_path (mode 0600, a new file), and
 * checks that it loads with them. */
static int write_new_config(const char *path, const char *new_path, const struct vg_keypair *kp,
                            char *err, size_t errlen)
{
    char *text = NULL, *rewritten = NULL;
    size_t text_len = 0, len = 0;
    struct ctl_config check;
    int r = vg_secret_file_read(path, &text, &text_len, err, errlen);
    if (r < 0)
        return r;
    r = config_with_keys(path, text, kp, &rewritten, &len, err, errlen);
    explicit_bzero(text, text_len);
    free(text);
    text = NULL;
    if (r < 0)
        return r;
    r = vg_secret_file_create(new_path, "configuration file", rewritten, len, err, errlen);
    explicit_bzero(rewritten, len);
    free(rewritten);
    rewritten = NULL;
    if (r < 0)
        return r;
    r = ctl_config_load(new_path, &check, err, errlen);
    if (r == 0 && strcmp(check.public_key, kp->public_key) != 0) {
        snprintf(err, errlen, "%s: the new public_key did not take (is it set twice?)", new_path);
        r = -EINVAL;
    }
    ctl_config_free(&check);
    if (r < 0)
        unlink(new_path);
    return r;
}

/* path is replaced by new_path; what was at path stays as old_path (an older old_path goes).
 * *ret_had_old: there was a file at path. */
static int swap_in(const char *path, const char *new_path, const char *old_path, bool *ret_had_old)
{
    bool had = access(path, F_OK) == 0;
    if (had) {
        if (unlink(old_path) < 0 && errno != ENOENT)
            return -errno;
        /* A hard link keeps path in place until the rename replaces it in one step. */
        if (link(path, old_path) < 0 && rename(path, old_path) < 0)
            return -errno;
    }
    if (rename(new_path, path) < 0)
        return -errno;
    *ret_had_old = had;
    return 0;
}

struct rotate_files {
    char *config, *config_new, *config_old;
    char *sign, *sign_new, *sign_old;
};

static void rotate_files_free(struct rotate_files *f)
{
    free(f->config_new);
    free(f->config_old);
    free(f->sign);
    free(f->sign_new);
    free(f->sign_old);
    memset(f, 0, sizeof(*f));
}

/* path + suffix, malloc'd; NULL when out of memory. */
static char *suffixed(const char *path, const char *suffix)
{
    char *out = NULL;
    return asprintf(&out, "%s%s", path, suffix) < 0 ? NULL : out;
}

static int rotate_files_init(struct ctl_context *ctx, const struct ctl_config *cfg,
                             struct rotate_files *ret)
{
    struct rotate_files f = {.config = ctx->config_path};
    if (ctl_config_signing_key_path(ctx->config_path, cfg, &f.sign) == 0) {
        f.config_new = suffixed(f.config, ".new");
        f.config_old = suffixed(f.config, ".old");
        f.sign_new = suffixed(f.sign, ".new");
        f.sign_old = suffixed(f.sign, ".old");
    }
    if (!f.sign || !f.config_new || !f.config_old || !f.sign_new || !f.sign_old) {
        rotate_files_free(&f);
        output_error("out of memory");
        return CTL_EXIT_FAILURE;
    }
    *ret = f;
    return CTL_EXIT_OK;
}

static int print_rotated(struct ctl_context *ctx, const Vigil__AdminReply *reply,
                         const struct rotate_files *f, bool had_config, bool had_sign)
{
    const Vigil__OperatorInfo *op = reply->n_operators > 0 ? reply->operators[0] : NULL;
    int r;
    if (ctx->format == OUTPUT_JSON) {
        json_t *doc = op != NULL ? operator_json(op) : json_object();
        json_t *files = json_pack("[{s:s, s:s?}, {s:s, s:s?}]", "path", f->config, "previous",
                                  had_config ? f->config_old : NULL, "path", f->sign, "previous",
                                  had_sign ? f->sign_old : NULL);
        if (doc != NULL && files != NULL)
            json_object_set_new(doc, "files", files);
        else
            json_decref(files);
        r = output_json_print(&doc, stdout);
    } else {
        r = printf("keys rotated for operator %s: the coordinator refuses the previous key from "
                   "now on\n"
                   "  %s  new CURVE key pair (previous: %s)\n"
                   "  %s  new signing key (previous: %s)\n"
                   "public-key:  %s\n"
                   "signing-key: %s\n",
                   op != NULL ? op->name : "?", f->config, had_config ? f->config_old : "none",
                   f->sign, had_sign ? f->sign_old : "none", op != NULL ? op->public_key : "?",
                   op != NULL ? op->signing_key : "?") < 0
                ? -EIO
                : 0;
    }
    if (r < 0) {
        output_error("cannot write the output");
        return CTL_EXIT_FAILURE;
    }
    return CTL_EXIT_OK;
}

/* The request with the new public halves; the files are swapped in only on ADMIN_OK. */
static int rotate_exchange(struct ctl_context *ctx, const struct ctl_config *cfg,
                           const struct vg_keypair *kp, const struct vg_signing_key *sk,
                           const struct rotate_files *f)
{
    Vigil__RotateOperatorKeys body = VIGIL__ROTATE_OPERATOR_KEYS__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__AdminReply *reply = NULL;
    char err[1024] = "";

    body.public_key = (char *)kp->public_key;
    body.signing_key = (char *)sk->public_b64;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_ROTATE_OPERATOR_KEYS;
    req.rotate_operator_keys = &body;
    int r = ctl_admin_call(cfg, &req, ctx->timeout_ms, &reply, err, sizeof(err));
    if (r < 0 || reply == NULL) {
        if (r == -EACCES) { /* refused at the handshake: nothing was asked */
            unlink(f->config_new);
            unlink(f->sign_new);
            output_error("%s", err);
        } else {
            output_error("%s; the coordinator may or may not have switched to the new keys. If "
                         "the current ones are refused now, move the new files in place: mv %s "
                         "%s; mv %s %s",
                         err[0] != '\0' ? err : "no reply from the coordinator", f->config_new,
                         f->config, f->sign_new, f->sign);
        }
        return CTL_EXIT_FAILURE;
    }
    r = ctl_admin_status_check(reply, "rotate this operator's keys", NULL, err, sizeof(err));
    if (r < 0) {
        vigil__admin_reply__free_unpacked(reply, NULL);
        unlink(f->config_new);
        unlink(f->sign_new);
        output_error("%s (nothing changed)", err);
        return CTL_EXIT_FAILURE;
    }

    bool had_config = false, had_sign = false;
    r = swap_in(f->config, f->config_new, f->config_old, &had_config);
    if (r == 0)
        r = swap_in(f->sign, f->sign_new, f->sign_old, &had_sign);
    if (r < 0) {
        vigil__admin_reply__free_unpacked(reply, NULL);
        output_error("the coordinator switched to the new keys, but moving them in place failed "
                     "(%s): the new configuration is %s (else %s), the new signing key %s (else "
                     "%s)",
                     strerror(-r), f->config_new, f->config, f->sign_new, f->sign);
        return CTL_EXIT_FAILURE;
    }
    r = print_rotated(ctx, reply, f, had_config, had_sign);
    vigil__admin_reply__free_unpacked(reply, NULL);
    return r;
}

static int operators_rotate(struct ctl_context *ctx, const struct ctl_args *args)
{
    const struct ctl_config *cfg;
    struct rotate_files f;
    struct vg_keypair kp;
    struct vg_signing_key sk;
    char err[1024] = "";

    if (args->argc != 1) {
        output_error("operators rotate takes no arguments (it rotates this operator's own keys)");
        return CTL_EXIT_USAGE;
    }
    int r = ctl_context_config(ctx, &cfg);
    if (r != CTL_EXIT_OK)
        return r;
    r = rotate_files_init(ctx, cfg, &f);
    if (r != CTL_EXIT_OK)
        return r;
    if (access(f.config_new, F_OK) == 0 || access(f.sign_new, F_OK) == 0) {
        output_error("%s or %s exists, from an earlier rotate that got no answer: if the current "
                     "key is refused, move them in place; otherwise remove them, then try again",
                     f.config_new, f.sign_new);
        rotate_files_free(&f);
        return CTL_EXIT_FAILURE;
    }
    if (vg_keypair_generate(&kp) < 0 || vg_signing_key_generate(&sk) < 0) {
        output_error("cannot generate new keys");
        rotate_files_free(&f);
        return CTL_EXIT_FAILURE;
    }
    r = write_new_config(f.config, f.config_new, &kp, err, sizeof(err));
    if (r == 0) {
        r = vg_signing_key_save(f.sign_new, &sk, err, sizeof(err));
        if (r < 0)
            unlink(f.config_new);
    }
    if (r < 0) {
        output_error("%s", err[0] != '\0' ? err : strerror(-r));
        r = CTL_EXIT_FAILURE;
    } else {
        r = rotate_exchange(ctx, cfg, &kp, &sk, &f);
    }
    explicit_bzero(&kp, sizeof(kp));
    vg_signing_key_wipe(&sk);
    rotate_files_free(&f);
    return r;
}

static int run_operators(struct ctl_context *ctx, const struct ctl_args *args)
{
    int argc = args->argc;
    char **argv = args->argv;
    const char *verb = argc == 0 ? "list" : argv[0];
    bool list = strcmp(verb, "list") == 0, add = strcmp(verb, "add") == 0;

    if (!list && !add && strcmp(verb, "revoke") != 0 && strcmp(verb, "rotate") != 0) {
        output_error("unknown operators command \"%s\" (expected list, add, revoke or rotate)",
                     verb);
        return CTL_EXIT_USAGE;
    }
    if (!add && (ctl_args_has(args, "role") || ctl_args_has(args, "public-key") ||
                 ctl_args_has(args, "signing-key"))) {
        output_error("--role, --public-key and --signing-key go with 'operators add'");
        return CTL_EXIT_USAGE;
    }
    if (!list && ctl_args_has(args, "all")) {
        output_error("--all goes with 'operators list'");
        return CTL_EXIT_USAGE;
    }
    if (list) {
        if (argc > 1) {
            output_error("operators list takes no arguments (got \"%s\")", argv[1]);
            return CTL_EXIT_USAGE;
        }
        return operators_list(ctx, ctl_args_has(args, "all"));
    }
    if (add)
        return operators_add(ctx, args);
    if (strcmp(verb, "revoke") == 0)
        return operators_revoke(ctx, args);
    return operators_rotate(ctx, args);
}

/* ---- the command table ---- */

static const char operators_help[] =
    "Usage: vigilctl operators [list] [--all]\n"
    "       vigilctl operators add NAME --role ROLE --public-key K --signing-key S\n"
    "       vigilctl operators revoke NAME\n"
    "       vigilctl operators rotate\n"
    "\n"
    "An operator is a CURVE public key (what vigilctl connects with) with a name, a role and an\n"
    "Ed25519 signing key (what approvals are signed with). Roles: viewer (reads), responder\n"
    "(also acts on incidents and evidence), admin (also manages agents and operators).\n"
    "\n"
    "  operators [list]  the active operators: NAME ROLE STATE ADDED PUBLIC-KEY SIGNING-KEY ID;\n"
    "                    --all: revoked ones too. With -o json: an array of objects with id,\n"
    "                    name, role, public_key, signing_key, revoked, created_at.\n"
    "  add NAME          (admin) register an operator: NAME is 1 to 64 letters, digits, '.',\n"
    "                    '_', '@' or '-', unique among active operators; K and S are the\n"
    "                    public-key and signing-key lines of the operator's 'vigilctl keygen'.\n"
    "                    A key that is, or was, another operator's is refused.\n"
    "  revoke NAME       (admin) the coordinator refuses the operator's key from then on, on\n"
    "                    open connections too. The last active admin cannot be revoked (nor\n"
    "                    can you revoke yourself unless another admin remains).\n"
    "  rotate            new keys for this operator: a new CURVE pair and signing key are written\n"
    "                    next to the configuration file and the signing key file (as .new), the\n"
    "                    coordinator is told their public halves and refuses the old key at\n"
    "                    once, and only then are the new files moved in place, the previous\n"
    "                    ones kept as .old. The signing key file is signing_key_file in the\n"
    "                    configuration (default: the configuration file's path + .sign).\n"
    "\n"
    "Every change is recorded in the coordinator's audit log. Needs the configuration file\n"
    "(see 'vigilctl help').\n";

const struct ctl_command cmd_operators_table[] = {
    {
        .name = "operators",
        .forms = {{"operators [list] [--all]", "list operators with their role and keys"},
                  {"operators add NAME --role R --public-key K --signing-key S",
                   "register an operator"},
                  {"operators revoke NAME | operators rotate",
                   "revoke an operator; replace your own keys"}},
        .help = operators_help,
        .options = {{"all", CTL_OPTION_FLAG},
                    {"role", CTL_OPTION_VALUE},
                    {"public-key", CTL_OPTION_VALUE},
                    {"signing-key", CTL_OPTION_VALUE}},
        .run = run_operators,
    },
    {.name = NULL},
};
