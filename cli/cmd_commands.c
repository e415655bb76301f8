/*
 * vigilctl run ACTION (--node N | --all | --cluster) [--arg K=V]... [--incident ID] [--dry-run] |
 * approve REQ | cancel REQ | commands [--incident ID] | command show REQ
 *
 * Remediation commands (docs/remediation.md, "Commands"). Approving is signing: vigilctl checks
 * that the request the coordinator shows hashes to the hash it gives (vg_command_request_hash,
 * computed here, never taken on trust), then signs that hash with the operator's Ed25519 key
 * (signing_key_file of the configuration) and sends the signature. `run` does the same for every
 * request it made, so running a command counts as the requester's approval.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capsule.h"
#include "commands.h"
#include "ctl_admin.h"
#include "evidence_view.h"
#include "sign.h"
#include "timeutil.h"

#define RUN_MAX_ARGS CTL_MAX_LIST

static void hex(const uint8_t *data, size_t len, char *out, size_t outlen)
{
    static const char digits[] = "0123456789abcdef";
    size_t i = 0;
    for (; i < len && 2 * i + 2 < outlen; i++) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 15];
    }
    out[2 * i] = '\0';
}

static json_t *command_json(const Vigil__CommandInfo *c)
{
    char sha[65] = "", req_sha[65] = "";
    hex(c->output_sha256.data, c->output_sha256.len, sha, sizeof(sha));
    hex(c->request_sha256.data, c->request_sha256.len, req_sha, sizeof(req_sha));
    json_t *approvers = json_array(), *args = json_object(), *steps = json_array();
    for (size_t i = 0; approvers && i < c->n_approvers; i++)
        json_array_append_new(approvers, output_json_string(c->approvers[i]));
    const Vigil__CommandRequest *r = c->request;
    for (size_t i = 0; args && r && i < r->n_args; i++)
        json_object_set_new(args, r->args[i]->key, output_json_string(r->args[i]->value));
    for (size_t i = 0; steps && i < c->n_steps; i++) {
        const Vigil__CommandStepInfo *s = c->steps[i];
        char ssha[65] = "";
        hex(s->output_sha256.data, s->output_sha256.len, ssha, sizeof(ssha));
        json_t *step =
            json_pack("{s:o, s:o, s:o}", "step", output_json_string(s->step), "at",
                      output_json_time(s->at_ms), "agent", output_json_string(s->agent_id));
        if (step && strcmp(s->step, "done") == 0) {
            json_object_set_new(step, "exit_status", json_integer(s->exit_status));
            json_object_set_new(step, "duration_ms", json_integer((json_int_t)s->duration_ms));
            json_object_set_new(step, "output_sha256", json_string(ssha));
            json_object_set_new(step, "output_truncated", json_boolean(s->output_truncated));
        }
        if (step && s->reason[0])
            json_object_set_new(step, "reason", output_json_string(s->reason));
        json_array_append_new(steps, step);
    }
    /* clang-format off */
    json_t *doc = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:b, s:o, s:o, s:s}",
        "id", output_json_string(c->id),
        "action", output_json_string(c->action),
        "node", output_json_string(c->node),
        "state", output_json_string(c->state),
        "mode", output_json_string(c->mode),
        "requested_by", output_json_string(c->requested_by),
        "approvers", approvers ? approvers : json_array(),
        "args", args ? args : json_object(),
        "incident", r && r->incident_id ? json_integer((json_int_t)r->incident_id) : json_null(),
        "dry_run", r ? r->dry_run : 0,
        "created_at", output_json_time(r ? r->created_at_ms : 0),
        "approve_by", output_json_time(r ? r->approve_by_ms : 0),
        "request_sha256", req_sha);
    /* clang-format on */
    if (!doc)
        return NULL;
    if (c->has_exit) {
        json_object_set_new(doc, "exit_status", json_integer(c->exit_status));
        json_object_set_new(doc, "duration_ms", json_integer((json_int_t)c->duration_ms));
        json_object_set_new(doc, "output_sha256", json_string(sha));
    }
    if (c->not_after_ms)
        json_object_set_new(doc, "not_after", output_json_time(c->not_after_ms));
    if (c->needs[0])
        json_object_set_new(doc, "needs", output_json_string(c->needs));
    if (c->reason[0])
        json_object_set_new(doc, "reason", output_json_string(c->reason));
    if (c->n_steps > 0)
        json_object_set_new(doc, "steps", steps);
    else
        json_decref(steps);
    return doc;
}

static int print_json_list(Vigil__CommandInfo *const *cmds, size_t n)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++) {
        if (json_array_append_new(list, command_json(cmds[i])) < 0) {
            json_decref(list);
            list = NULL;
        }
    }
    if (!list) {
        output_error("out of memory");
        return CTL_EXIT_FAILURE;
    }
    return output_json_print(&list, stdout) < 0 ? CTL_EXIT_FAILURE : CTL_EXIT_OK;
}

static int print_table(Vigil__CommandInfo *const *cmds, size_t n)
{
    static const char *const headers[] = {"ID",        "ACTION",   "NODE",     "STATE",
                                          "MODE",      "EXIT",     "DURATION", "OUTPUT-SHA256",
                                          "REQUESTER", "APPROVERS"};
    output_table_t *table = output_table_new(10, headers);
    int r = table ? 0 : -ENOMEM;
    for (size_t i = 0; r == 0 && i < n; i++) {
        const Vigil__CommandInfo *c = cmds[i];
        char exit_text[16] = "-", duration[32] = "-", sha[17] = "-", approvers[512] = "";
        if (c->has_exit) {
            snprintf(exit_text, sizeof(exit_text), "%" PRId32, c->exit_status);
            snprintf(duration, sizeof(duration), "%" PRIu64 " ms", c->duration_ms);
        }
        if (c->output_sha256.len == 32)
            hex(c->output_sha256.data, 8, sha, sizeof(sha)); /* the first 8 bytes; -o json: all */
        size_t used = 0;
        for (size_t k = 0; k < c->n_approvers && used < sizeof(approvers); k++) {
            int w = snprintf(approvers + used, sizeof(approvers) - used, "%s%s", k ? "," : "",
                             c->approvers[k]);
            used += w > 0 ? (size_t)w : 0;
        }
        const char *cells[] = {
            c->id,     c->action, c->node, c->state,        c->mode,
            exit_text, duration,  sha,     c->requested_by, approvers[0] ? approvers : "-"};
        r = output_table_add_row(table, cells);
    }
    if (r == 0)
        r = output_table_print(table, stdout);
    output_table_destroy(&table);
    if (r < 0) {
        output_error("%s", r == -ENOMEM ? "out of memory" : "cannot write the table");
        return CTL_EXIT_FAILURE;
    }
    return CTL_EXIT_OK;
}

static int print_commands(const struct ctl_context *ctx, Vigil__CommandInfo *const *cmds, size_t n)
{
    return ctx->format == OUTPUT_JSON ? print_json_list(cmds, n) : print_table(cmds, n);
}

/* The request in full, as an approver must read it before signing. */
static void print_request(FILE *out, const Vigil__CommandInfo *c)
{
    const Vigil__CommandRequest *r = c->request;
    char text[1200], when[40], by[40], sha[65];
    output_sanitize(c->id, text, sizeof(text));
    fprintf(out, "command       %s\n", text);
    output_sanitize(c->action, text, sizeof(text));
    fprintf(out, "action        %s (%s)\n", text, c->mode);
    output_sanitize(c->node, text, sizeof(text));
    fprintf(out, "node          %s\n", text);
    for (size_t i = 0; r && i < r->n_args; i++) {
        char key[200];
        output_sanitize(r->args[i]->key, key, sizeof(key));
        output_sanitize(r->args[i]->value, text, sizeof(text));
        fprintf(out, "argument      %s=%s\n", key, text);
    }
    if (r && r->incident_id)
        fprintf(out, "incident      %" PRIu64 "\n", r->incident_id);
    output_sanitize(c->requested_by, text, sizeof(text));
    fprintf(out, "requested by  %s\n", text);
    if (r && output_time_rfc3339(r->created_at_ms, when, sizeof(when)) == 0 &&
        output_time_rfc3339(r->approve_by_ms, by, sizeof(by)) == 0)
        fprintf(out, "created       %s (approvals until %s)\n", when, by);
    fprintf(out, "dry run       %s\n", r && r->dry_run ? "yes" : "no");
    fprintf(out, "state         %s\n", c->state);
    for (size_t i = 0; i < c->n_approvers; i++) {
        output_sanitize(c->approvers[i], text, sizeof(text));
        fprintf(out, "approved by   %s\n", text);
    }
    if (c->needs[0])
        fprintf(out, "needs         %s\n", c->needs);
    hex(c->request_sha256.data, c->request_sha256.len, sha, sizeof(sha));
    fprintf(out, "request hash  %s\n", sha);
}

static void print_steps(FILE *out, const Vigil__CommandInfo *c)
{
    char when[40], text[1200];
    if (c->not_after_ms && output_time_rfc3339(c->not_after_ms, when, sizeof(when)) == 0)
        fprintf(out, "capsule valid until %s\n", when);
    for (size_t i = 0; i < c->n_steps; i++) {
        const Vigil__CommandStepInfo *s = c->steps[i];
        if (output_time_rfc3339(s->at_ms, when, sizeof(when)) < 0)
            snprintf(when, sizeof(when), "-");
        fprintf(out, "%s  %-8s  %s", when, s->step, s->agent_id);
        if (strcmp(s->step, "done") == 0) {
            char sha[65];
            hex(s->output_sha256.data, s->output_sha256.len, sha, sizeof(sha));
            fprintf(out, "  exit=%" PRId32 " duration=%" PRIu64 "ms output_sha256=%s%s",
                    s->exit_status, s->duration_ms, sha, s->output_truncated ? " (truncated)" : "");
        }
        if (s->reason[0]) {
            output_sanitize(s->reason, text, sizeof(text));
            fprintf(out, "  %s", text);
        }
        fputc('\n', out);
    }
}

/* ---- signing ---- */

/* The operator's signing key, from the configuration. CTL_EXIT_OK or FAILURE (printed). */
static int load_signing_key(struct ctl_context *ctx, struct vg_signing_key *ret, bool quiet_missing)
{
    const struct ctl_config *cfg = NULL;
    char *path = NULL, err[1024] = "";
    int r = ctl_context_config(ctx, &cfg);
    if (r != CTL_EXIT_OK)
        return r;
    if (ctl_config_signing_key_path(ctx->config_path, cfg, &path) < 0) {
        output_error("out of memory");
        return CTL_EXIT_FAILURE;
    }
    r = vg_signing_key_load(path, ret, err, sizeof(err));
    if (r == -ENOENT && quiet_missing) {
        free(path);
        return -ENOENT;
    }
    if (r < 0) {
        output_error("cannot sign: %s (signing_key_file in the configuration; 'vigilctl keygen' "
                     "makes one)",
                     err);
        free(path);
        return CTL_EXIT_FAILURE;
    }
    free(path);
    return CTL_EXIT_OK;
}

/* The hash the coordinator gives must be the hash of the request it shows: computed here. */
static bool hash_checked(const Vigil__CommandInfo *c, unsigned char hash[VG_CAPSULE_HASH_LEN])
{
    if (!c->request || c->request_sha256.len != VG_CAPSULE_HASH_LEN ||
        vg_command_request_hash(c->request, hash) < 0 ||
        memcmp(hash, c->request_sha256.data, VG_CAPSULE_HASH_LEN) != 0) {
        output_error("command %s: the request shown does not hash to the coordinator's request "
                     "hash; not signing",
                     c->id);
        return false;
    }
    return true;
}

/* Signs c's request and sends ApproveCommand; *ret_reply is the command as it now is. */
static int approve_one(struct ctl_context *ctx, const struct vg_signing_key *key,
                       const Vigil__CommandInfo *c, Vigil__AdminReply **ret_reply)
{
    unsigned char hash[VG_CAPSULE_HASH_LEN], sig[VG_SIGNATURE_LEN];
    char what[128];
    if (!hash_checked(c, hash))
        return CTL_EXIT_FAILURE;
    vg_approval_sign(key, hash, sig);
    Vigil__ApproveCommand body = VIGIL__APPROVE_COMMAND__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    body.request_id = c->id;
    body.signature.data = sig;
    body.signature.len = sizeof(sig);
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_APPROVE_COMMAND;
    req.approve_command = &body;
    snprintf(what, sizeof(what), "approve command %s", c->id);
    return ctl_admin_request(ctx, &req, what, NULL, ret_reply);
}

/* ---- run ---- */

static bool parse_run_args(const char *const *texts, size_t n, Vigil__CommandArg *args,
                           Vigil__CommandArg **ptrs, char keys[][VG_MAX_NAME_LEN + 1])
{
    const char *values[RUN_MAX_ARGS];
    if (!ctl_key_values(texts, n, RUN_MAX_ARGS, keys, values))
        return false;
    for (size_t i = 0; i < n; i++) {
        vigil__command_arg__init(&args[i]);
        args[i].key = keys[i];
        args[i].value = (char *)values[i];
        ptrs[i] = &args[i];
    }
    return true;
}

static bool parse_id(const char *text, const char *option, uint64_t *ret)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || !end || *end || text[0] == '-' || v == 0) {
        output_error("%s must be an incident id (a positive number; got \"%s\")", option, text);
        return false;
    }
    *ret = v;
    return true;
}

static int run_run(struct ctl_context *ctx, const struct ctl_args *args)
{
    const char *node = ctl_args_value(args, "node");
    bool all = ctl_args_has(args, "all");
    bool cluster = ctl_args_has(args, "cluster");
    const char *incident = ctl_args_value(args, "incident");
    const char *const *values = NULL;
    size_t nvalues = ctl_args_list(args, "arg", &values);
    Vigil__CommandArg cargs[RUN_MAX_ARGS];
    Vigil__CommandArg *ptrs[RUN_MAX_ARGS];
    char keys[RUN_MAX_ARGS][VG_MAX_NAME_LEN + 1];
    uint64_t incident_id = 0;

    if (args->argc != 1) {
        output_error(args->argc == 0 ? "run needs an ACTION; try 'vigilctl help run'"
                                     : "run takes one ACTION (got \"%s\" too)",
                     args->argc > 1 ? args->argv[1] : "");
        return CTL_EXIT_USAGE;
    }
    if ((int)(node != NULL) + (int)all + (int)cluster != 1) {
        output_error("run needs one of --node NODE, --all or --cluster");
        return CTL_EXIT_USAGE;
    }
    if (node != NULL && (node[0] == '\0' || strlen(node) > VG_MAX_NAME_LEN)) {
        output_error("--node must be 1 to %d bytes", VG_MAX_NAME_LEN);
        return CTL_EXIT_USAGE;
    }
    if (incident && !parse_id(incident, "--incident", &incident_id))
        return CTL_EXIT_USAGE;
    if (!parse_run_args(values, nvalues, cargs, ptrs, keys))
        return CTL_EXIT_USAGE;

    Vigil__RunCommand body = VIGIL__RUN_COMMAND__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__AdminReply *reply = NULL;
    body.action = args->argv[0];
    body.node = node ? (char *)node : "";
    body.all = all;
    body.cluster = cluster;
    body.args = ptrs;
    body.n_args = nvalues;
    body.incident_id = incident_id;
    body.dry_run = ctl_args_has(args, "dry-run");
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_RUN_COMMAND;
    req.run_command = &body;
    int r = ctl_admin_request(ctx, &req, "run command", NULL, &reply);
    if (r != CTL_EXIT_OK)
        return r;

    /* Running it is approving it: sign every request that waits for approvals. */
    struct vg_signing_key key;
    bool have_key = false, any_pending = false;
    for (size_t i = 0; i < reply->n_commands; i++)
        any_pending |= strcmp(reply->commands[i]->state, "pending") == 0;
    if (any_pending) {
        int k = load_signing_key(ctx, &key, true);
        if (k == -ENOENT)
            output_error("no signing key: the command waits for an approval "
                         "('vigilctl approve ID' by an operator with a signing key)");
        else if (k != CTL_EXIT_OK)
            r = CTL_EXIT_FAILURE;
        else
            have_key = true;
    }
    Vigil__CommandInfo **shown = calloc(reply->n_commands + 1, sizeof(Vigil__CommandInfo *));
    Vigil__AdminReply **approved = calloc(reply->n_commands + 1, sizeof(Vigil__AdminReply *));
    if (!shown || !approved) {
        output_error("out of memory");
        r = CTL_EXIT_FAILURE;
        goto out;
    }
    for (size_t i = 0; i < reply->n_commands; i++) {
        Vigil__CommandInfo *c = reply->commands[i];
        shown[i] = c;
        if (!have_key || strcmp(c->state, "pending") != 0)
            continue;
        if (approve_one(ctx, &key, c, &approved[i]) != CTL_EXIT_OK) {
            r = CTL_EXIT_FAILURE;
            continue;
        }
        if (approved[i]->n_commands == 1)
            shown[i] = approved[i]->commands[0];
    }
    int p = print_commands(ctx, shown, reply->n_commands);
    if (p != CTL_EXIT_OK)
        r = p;
    for (size_t i = 0; ctx->format != OUTPUT_JSON && i < reply->n_commands; i++) {
        if (strcmp(shown[i]->state, "pending") == 0 && shown[i]->needs[0])
            fprintf(stderr, "vigilctl: %s waits: %s ('vigilctl approve %s')\n", shown[i]->id,
                    shown[i]->needs, shown[i]->id);
    }
out:
    for (size_t i = 0; approved && i < reply->n_commands; i++)
        if (approved[i])
            vigil__admin_reply__free_unpacked(approved[i], NULL);
    free(approved);
    free(shown);
    if (have_key)
        vg_signing_key_wipe(&key);
    vigil__admin_reply__free_unpacked(reply, NULL);
    return r;
}

/* ---- approve, cancel, show ---- */

static int show_request(struct ctl_context *ctx, const char *id, Vigil__AdminReply **ret_reply)
{
    Vigil__ShowCommand body = VIGIL__SHOW_COMMAND__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    char subject[128];
    body.request_id = (char *)id;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_SHOW_COMMAND;
    req.show_command = &body;
    snprintf(subject, sizeof(subject), "command %s", id);
    int r = ctl_admin_request(ctx, &req, "show command", subject, ret_reply);
    if (r == CTL_EXIT_OK && (*ret_reply)->n_commands != 1) {
        output_error("the coordinator answered without the command");
        vigil__admin_reply__free_unpacked(*ret_reply, NULL);
        *ret_reply = NULL;
        return CTL_EXIT_FAILURE;
    }
    return r;
}

static bool one_id(const struct ctl_args *args, const char *verb)
{
    if (args->argc != 1 || args->argv[0][0] == '\0' ||
        strlen(args->argv[0]) > VG_MAX_COMMAND_ID_LEN) {
        output_error("%s takes one command id (as 'vigilctl commands' lists them)", verb);
        return false;
    }
    return true;
}

static int run_approve(struct ctl_context *ctx, const struct ctl_args *args)
{
    Vigil__AdminReply *shown = NULL, *reply = NULL;
    struct vg_signing_key key;

    if (!one_id(args, "approve"))
        return CTL_EXIT_USAGE;
    int r = show_request(ctx, args->argv[0], &shown);
    if (r != CTL_EXIT_OK)
        return r;
    const Vigil__CommandInfo *c = shown->commands[0];
    /* What is signed, exactly, before it is signed. */
    print_request(ctx->format == OUTPUT_JSON ? stderr : stdout, c);
    if (strcmp(c->state, "pending") != 0) {
        output_error("command %s is %s: it takes no more approvals", c->id, c->state);
        vigil__admin_reply__free_unpacked(shown, NULL);
        return CTL_EXIT_FAILURE;
    }
    r = load_signing_key(ctx, &key, false);
    if (r == CTL_EXIT_OK) {
        r = approve_one(ctx, &key, c, &reply);
        vg_signing_key_wipe(&key);
    }
    if (r == CTL_EXIT_OK && reply->n_commands == 1) {
        const Vigil__CommandInfo *now = reply->commands[0];
        if (ctx->format == OUTPUT_JSON) {
            json_t *doc = command_json(now);
            r = output_json_print(&doc, stdout) < 0 ? CTL_EXIT_FAILURE : CTL_EXIT_OK;
        } else if (strcmp(now->state, "pending") == 0) {
            printf("approved; %s still needs %s\n", now->id, now->needs);
        } else {
            printf("approved; %s is %s\n", now->id, now->state);
        }
    }
    if (reply)
        vigil__admin_reply__free_unpacked(reply, NULL);
    vigil__admin_reply__free_unpacked(shown, NULL);
    return r;
}

static int run_cancel(struct ctl_context *ctx, const struct ctl_args *args)
{
    Vigil__CancelCommand body = VIGIL__CANCEL_COMMAND__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__AdminReply *reply = NULL;
    char subject[128];

    if (!one_id(args, "cancel"))
        return CTL_EXIT_USAGE;
    body.request_id = args->argv[0];
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_CANCEL_COMMAND;
    req.cancel_command = &body;
    snprintf(subject, sizeof(subject), "command %s", args->argv[0]);
    int r = ctl_admin_request(ctx, &req, "cancel command", subject, &reply);
    if (r != CTL_EXIT_OK)
        return r;
    r = print_commands(ctx, reply->commands, reply->n_commands);
    vigil__admin_reply__free_unpacked(reply, NULL);
    return r;
}

static int run_command_show(struct ctl_context *ctx, const struct ctl_args *args)
{
    Vigil__AdminReply *reply = NULL;
    if (args->argc != 2 || strcmp(args->argv[0], "show") != 0) {
        output_error("usage: vigilctl command show ID");
        return CTL_EXIT_USAGE;
    }
    if (args->argv[1][0] == '\0' || strlen(args->argv[1]) > VG_MAX_COMMAND_ID_LEN) {
        output_error("command show takes one command id (as 'vigilctl commands' lists them)");
        return CTL_EXIT_USAGE;
    }
    int r = show_request(ctx, args->argv[1], &reply);
    if (r != CTL_EXIT_OK)
        return r;
    const Vigil__CommandInfo *c = reply->commands[0];
    if (ctx->format == OUTPUT_JSON) {
        json_t *doc = command_json(c);
        json_t *evidence = json_array();
        for (size_t i = 0; evidence && i < reply->n_evidence; i++)
            json_array_append_new(evidence, evidence_view_json(reply->evidence[i]));
        if (doc && evidence)
            json_object_set_new(doc, "evidence", evidence);
        else
            json_decref(evidence);
        r = output_json_print(&doc, stdout) < 0 ? CTL_EXIT_FAILURE : CTL_EXIT_OK;
    } else {
        print_request(stdout, c);
        if (c->has_exit) {
            char sha[65];
            hex(c->output_sha256.data, c->output_sha256.len, sha, sizeof(sha));
            printf("exit          %" PRId32 " after %" PRIu64 " ms, output sha256 %s\n",
                   c->exit_status, c->duration_ms, sha);
        }
        if (c->reason[0]) {
            char text[1200];
            output_sanitize(c->reason, text, sizeof(text));
            printf("reason        %s\n", text);
        }
        print_steps(stdout, c);
        if (reply->n_evidence > 0) {
            /* What it left in the vault: its output and its action's evidence kinds. */
            printf("\nevidence after the command:\n");
            fflush(stdout);
            if (evidence_view_table(reply->evidence, reply->n_evidence, false) < 0)
                r = CTL_EXIT_FAILURE;
        }
    }
    vigil__admin_reply__free_unpacked(reply, NULL);
    return r;
}

/* ---- commands ---- */

static int run_commands(struct ctl_context *ctx, const struct ctl_args *args)
{
    const char *incident = ctl_args_value(args, "incident");
    Vigil__ListCommands body = VIGIL__LIST_COMMANDS__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__AdminReply **pages = NULL;
    size_t npages = 0;

    if (args->argc > 0 && !(args->argc == 1 && strcmp(args->argv[0], "list") == 0)) {
        output_error("usage: vigilctl commands [list] [--incident ID]");
        return CTL_EXIT_USAGE;
    }
    if (incident && !parse_id(incident, "--incident", &body.incident_id))
        return CTL_EXIT_USAGE;
    body.cursor = "";
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_LIST_COMMANDS;
    req.list_commands = &body;
    int r = ctl_admin_request_pages(ctx, &req, &body.cursor, "list commands", &pages, &npages);
    if (r != CTL_EXIT_OK)
        return r;
    size_t n = 0;
    for (size_t p = 0; p < npages; p++)
        n += pages[p]->n_commands;
    Vigil__CommandInfo **all = calloc(n + 1, sizeof(Vigil__CommandInfo *));
    if (!all) {
        output_error("out of memory");
        ctl_admin_pages_free(pages, npages);
        return CTL_EXIT_FAILURE;
    }
    n = 0;
    for (size_t p = 0; p < npages; p++)
        for (size_t i = 0; i < pages[p]->n_commands; i++)
            all[n++] = pages[p]->commands[i];
    r = print_commands(ctx, all, n);
    free(all);
    ctl_admin_pages_free(pages, npages);
    return r;
}

static const char run_help[] =
    "Usage: vigilctl run ACTION (--node NODE | --all | --cluster) [--arg KEY=VALUE]...\n"
    "                    [--incident ID] [--dry-run]\n"
    "\n"
    "Asks the agents of NODE (or of every node, --all; or the cluster agent, --cluster: the\n"
    "one agent with role: cluster, which alone holds kubernetes actions) to run ACTION, an\n"
    "action their own catalog declares (agent.yaml's actions:), with the given arguments: one\n"
    "request per node.\n"
    "The coordinator refuses an action no active agent of the node declares and names the ones\n"
    "it does. The request is signed here with your signing key (signing_key_file), so running\n"
    "it counts as your approval: an 'auto' action is sent at once, an 'approve' action once a\n"
    "responder or admin approved it (you, if you are one), a 'destructive' one once two\n"
    "operators did, one an admin and one not you ('vigilctl approve ID'). Prints each request:\n"
    "its id, state (pending, issued, accepted, started, done, failed, refused, lost, cancelled,\n"
    "expired) and mode. Needs the responder role.\n"
    "\n"
    "  --incident ID   the incident the command is for: its steps go on that timeline\n"
    "  --dry-run       the node checks everything and reports, but runs nothing\n";

static const char approve_help[] =
    "Usage: vigilctl approve ID\n"
    "\n"
    "Shows the exact request (action, node, arguments, requester, deadline, the approvals so\n"
    "far and its hash), checks here that the request hashes to that hash, signs the hash with\n"
    "your signing key and sends the signature. The coordinator checks it against your\n"
    "registered signing key; when the approvals are enough for the action's mode, the capsule\n"
    "is issued and sent to the node. Approvals after the request's deadline (1 h by default)\n"
    "are refused. Needs the responder role.\n";

static const char cancel_help[] =
    "Usage: vigilctl cancel ID\n"
    "\n"
    "Withdraws a request that still waits for approvals. A command whose capsule was issued\n"
    "cannot be recalled. Needs the responder role.\n";

static const char commands_help[] =
    "Usage: vigilctl commands [list] [--incident ID] [-o json]\n"
    "\n"
    "Lists remediation commands, newest first: id, action, node, state, mode, exit status,\n"
    "duration, the first bytes of the output's SHA-256 (all of it with -o json), requester and\n"
    "approvers. --incident shows one incident's commands.\n";

static const char command_help[] =
    "Usage: vigilctl command show ID [-o json]\n"
    "\n"
    "One command in full: the request, its approvals, its capsule's expiry and every step the\n"
    "agents reported (accepted, started, done with exit status, duration and output SHA-256, or\n"
    "refused with the node's reason), then the evidence it left in the vault: its output (kind\n"
    "command_output) and the evidence kinds its action lists, each with its status, size and\n"
    "SHA-256 ('vigilctl evidence get ID --out FILE' fetches one). -o json adds them as\n"
    "\"evidence\".\n";

/* ---- automation ---- */

static int run_automation(struct ctl_context *ctx, const struct ctl_args *args)
{
    Vigil__ShowAutomation show = VIGIL__SHOW_AUTOMATION__INIT;
    Vigil__SetAutomation set = VIGIL__SET_AUTOMATION__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__AdminReply *reply = NULL;

    if (args->argc > 1 || (args->argc == 1 && strcmp(args->argv[0], "on") != 0 &&
                           strcmp(args->argv[0], "off") != 0)) {
        output_error("usage: vigilctl automation [on|off]");
        return CTL_EXIT_USAGE;
    }
    if (args->argc == 1) {
        set.enabled = strcmp(args->argv[0], "on") == 0;
        req.body_case = VIGIL__ADMIN_REQUEST__BODY_SET_AUTOMATION;
        req.set_automation = &set;
    } else {
        req.body_case = VIGIL__ADMIN_REQUEST__BODY_SHOW_AUTOMATION;
        req.show_automation = &show;
    }
    int r = ctl_admin_request(ctx, &req, args->argc ? "set automation" : "show automation", NULL,
                              &reply);
    if (r != CTL_EXIT_OK)
        return r;
    const Vigil__AutomationInfo *a = reply->automation;
    if (!a) {
        output_error("the coordinator's reply holds no automation state");
        vigil__admin_reply__free_unpacked(reply, NULL);
        return CTL_EXIT_FAILURE;
    }
    char at[40] = "";
    if (a->changed_at_ms > 0)
        output_time_rfc3339(a->changed_at_ms, at, sizeof(at));
    if (ctx->format == OUTPUT_JSON) {
        json_t *doc =
            json_pack("{s:b, s:o, s:o}", "enabled", a->enabled, "changed_by",
                      output_json_string(a->changed_by), "changed_at", output_json_string(at));
        r = output_json_print(&doc, stdout) < 0 ? CTL_EXIT_FAILURE : CTL_EXIT_OK;
    } else {
        printf("automation is %s (set by %s at %s)%s\n", a->enabled ? "on" : "off", a->changed_by,
               at, a->enabled ? "" : ": runbook auto steps wait for an operator's approval");
    }
    vigil__admin_reply__free_unpacked(reply, NULL);
    return r;
}

static const char automation_help[] =
    "Usage: vigilctl automation [on|off] [-o json]\n"
    "\n"
    "Without an argument, shows whether runbook auto steps run by themselves. 'off' makes every\n"
    "auto step a request that waits for an operator's approval (vigilctl approve), and every\n"
    "page says so; 'on' lets them run again. Stored and audited; the default is on. Showing\n"
    "needs the viewer role, changing it the admin role.\n";

const struct ctl_command cmd_commands_table[] = {
    {
        .name = "run",
        .forms = {{"run ACTION (--node NODE | --all | --cluster) [--arg K=V]... [--incident ID] "
                   "[--dry-run]",
                   "ask a node's agents to run a declared action (signed: your approval)"}},
        .help = run_help,
        .options = {{"node", CTL_OPTION_VALUE},
                    {"all", CTL_OPTION_FLAG},
                    {"cluster", CTL_OPTION_FLAG},
                    {"arg", CTL_OPTION_LIST},
                    {"incident", CTL_OPTION_VALUE},
                    {"dry-run", CTL_OPTION_FLAG}},
        .run = run_run,
    },
    {
        .name = "approve",
        .forms = {{"approve ID", "show a command request, then sign it as your approval"}},
        .help = approve_help,
        .run = run_approve,
    },
    {
        .name = "cancel",
        .forms = {{"cancel ID", "withdraw a command that waits for approvals"}},
        .help = cancel_help,
        .run = run_cancel,
    },
    {
        .name = "commands",
        .forms = {{"commands [--incident ID]", "remediation commands and their outcome"}},
        .help = commands_help,
        .options = {{"incident", CTL_OPTION_VALUE}},
        .run = run_commands,
    },
    {
        .name = "command",
        .forms = {{"command show ID", "one command: request, approvals, reported steps, the evidence it left"}},
        .help = command_help,
        .run = run_command_show,
    },
    {
        .name = "automation",
        .forms = {{"automation [on|off]", "show, or switch, whether runbook auto steps run alone"}},
        .help = automation_help,
        .run = run_automation,
    },
    {.name = NULL},
};
