/*
 * Operator requests about remediation commands (docs/remediation.md, "Commands"): run, approve,
 * cancel, list, show.
 *
 * RunCommand finds the active agents of the node (or of every node) that declare the action
 * (registry, under its lock), takes the mode their catalog gives (the strictest when agents of
 * one node disagree), checks the arguments against the declared parameter names (the node
 * checks their types), and stores one request per node. ApproveCommand checks the signature
 * against the operator's registered signing key before it stores anything. After either, a
 * request whose approvals satisfy its mode gets its capsule (remediate_try_issue), in the same
 * transaction, and the capsule is queued for the node's agents once that committed.
 */
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_internal.h"
#include "log.h"
#include "metrics.h"
#include "timeutil.h"
#include "wire.h"

#define LIST_DEFAULT 100
#define LIST_MAX 1000
#define DECLARED_TEXT_MAX 512
/* A listing's reply stays well under the protocol's message limit (a request carries up to 32
 * arguments of 1 KiB): the page ends early and next_cursor says where to go on. */
#define LIST_MAX_BYTES (2 * 1024 * 1024)

/* ---- field checks ---- */

static bool action_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > VG_MAX_NAME_LEN)
        return false;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

static bool request_id_ok(const char *id)
{
    size_t n = strlen(id);
    return n > 0 && n <= VG_MAX_COMMAND_ID_LEN;
}

static const char *check_run(const Vigil__AdminRequest *req)
{
    const Vigil__RunCommand *run = req->run_command;
    if (!action_name_ok(run->action))
        return "the action must be 1 to 128 letters, digits, '_', '.' or '-'";
    if ((int)run->all + (int)run->cluster + (int)(run->node[0] != '\0') != 1)
        return "give exactly one of a node, all or cluster";
    if (strlen(run->node) > VG_MAX_NAME_LEN)
        return "the node name is longer than 128 bytes";
    if (run->n_args > VG_MAX_COMMAND_ARGS)
        return "more than 32 arguments";
    for (size_t i = 0; i < run->n_args; i++) {
        const Vigil__CommandArg *a = run->args[i];
        if (!a->key[0] || strlen(a->key) > VG_MAX_NAME_LEN || strlen(a->value) > VG_MAX_VALUE_LEN)
            return "an argument's name is empty or longer than 128 bytes, or its value is "
                   "longer than 1024 bytes";
        for (size_t k = 0; k < i; k++) {
            if (strcmp(a->key, run->args[k]->key) == 0)
                return "an argument is given twice";
        }
    }
    return NULL;
}

static const char *check_approve(const Vigil__AdminRequest *req)
{
    if (!request_id_ok(req->approve_command->request_id))
        return "the request id must be 1 to 64 bytes";
    if (req->approve_command->signature.len != VG_SIGNATURE_LEN)
        return "the signature must be 64 bytes (Ed25519)";
    return NULL;
}

static const char *check_cancel(const Vigil__AdminRequest *req)
{
    return request_id_ok(req->cancel_command->request_id) ? NULL
                                                          : "the request id must be 1 to 64 bytes";
}

static const char *check_show(const Vigil__AdminRequest *req)
{
    return request_id_ok(req->show_command->request_id) ? NULL
                                                        : "the request id must be 1 to 64 bytes";
}

static const char *check_list(const Vigil__AdminRequest *req)
{
    if (req->list_commands->limit > LIST_MAX)
        return "the limit is at most 1000";
    if (strlen(req->list_commands->cursor) > 20)
        return "not a cursor this coordinator gave";
    return NULL;
}

/* ---- replies ---- */

/* A CommandInfo and everything it points into. */
struct wire_command {
    Vigil__CommandInfo info;
    Vigil__CommandRequest request;
    struct store_command_info src; /* owned: the strings the message points into */
    char **approvers;
    Vigil__CommandStepInfo *steps;
    Vigil__CommandStepInfo **step_ptrs;
    char needs[384];
};

static void wire_command_free(void *ptr)
{
    struct wire_command *w = ptr;
    store_command_info_clear(&w->src);
    free(w->approvers);
    free(w->steps);
    free(w->step_ptrs);
    free(w);
}

/* What a pending request still lacks, by vg_capsule_policy_ok's rule; "" when nothing. */
static void pending_needs(const struct store_command_info *c, char *out, size_t len)
{
    enum vg_action_mode mode;
    struct vg_capsule_verdict v;
    const char *why = NULL;

    out[0] = '\0';
    if (strcmp(c->state, "pending") != 0 || agent_action_mode_parse(c->mode, &mode) < 0)
        return;
    memset(&v, 0, sizeof(v));
    v.ok = true;
    for (size_t i = 0; i < c->napprovals; i++) {
        v.approvals++;
        if (strcmp(c->approvals[i].role, "admin") == 0)
            v.admin_approvals++;
        if (strcmp(c->approvals[i].operator_name, c->requested_by) != 0)
            v.approver_not_requester = true;
    }
    if (!vg_capsule_policy_ok(&v, mode, &why))
        snprintf(out, len, "%s", why);
}

/* Moves c into a new CommandInfo for the reply (c is left zeroed). */
static Vigil__CommandInfo *command_to_wire(struct reply *rep, struct store_command_info *c)
{
    struct wire_command *w = calloc(1, sizeof(*w));
    if (!w) {
        reply_out_of_memory(rep);
        return NULL;
    }
    w->src = *c;
    memset(c, 0, sizeof(*c));
    if (!reply_own(rep, w, wire_command_free))
        return NULL;
    const struct store_command_info *s = &w->src;
    Vigil__CommandInfo *info = &w->info;
    vigil__command_info__init(info);
    info->id = (char *)s->id;
    info->action = (char *)s->action;
    info->node = (char *)s->node;
    info->state = (char *)s->state;
    info->mode = (char *)s->mode;
    info->has_exit = s->has_exit;
    info->exit_status = s->exit_status;
    info->duration_ms = s->duration_ms;
    if (s->has_output) {
        info->output_sha256.data = (uint8_t *)s->output_sha256;
        info->output_sha256.len = sizeof(s->output_sha256);
    }
    info->requested_by = (char *)s->requested_by;
    info->reason = s->reason ? s->reason : "";
    info->not_after_ms = s->issued ? s->not_after_ms : 0;
    remediate_request_from_info(s, &w->request);
    info->request = &w->request;
    info->request_sha256.data = (uint8_t *)s->request_sha256;
    info->request_sha256.len = sizeof(s->request_sha256);
    pending_needs(s, w->needs, sizeof(w->needs));
    info->needs = w->needs;
    if (s->napprovals > 0) {
        w->approvers = calloc(s->napprovals, sizeof(char *));
        if (!w->approvers) {
            reply_out_of_memory(rep);
            return NULL;
        }
        for (size_t i = 0; i < s->napprovals; i++)
            w->approvers[i] = (char *)s->approvals[i].operator_name;
        info->approvers = w->approvers;
        info->n_approvers = s->napprovals;
    }
    if (s->nsteps > 0) {
        w->steps = calloc(s->nsteps, sizeof(*w->steps));
        w->step_ptrs = calloc(s->nsteps, sizeof(Vigil__CommandStepInfo *));
        if (!w->steps || !w->step_ptrs) {
            reply_out_of_memory(rep);
            return NULL;
        }
        for (size_t i = 0; i < s->nsteps; i++) {
            const struct store_command_step *st = &s->steps[i];
            Vigil__CommandStepInfo *o = &w->steps[i];
            vigil__command_step_info__init(o);
            o->step = (char *)st->step;
            o->at_ms = st->at_ms;
            o->agent_id = (char *)st->agent_id;
            o->exit_status = st->exit_status;
            o->duration_ms = st->duration_ms;
            if (st->has_output) {
                o->output_sha256.data = (uint8_t *)st->output_sha256;
                o->output_sha256.len = sizeof(st->output_sha256);
            }
            o->output_truncated = st->truncated;
            o->reason = st->reason ? st->reason : "";
            w->step_ptrs[i] = o;
        }
        info->steps = w->step_ptrs;
        info->n_steps = s->nsteps;
    }
    return info;
}

/* Appends a CommandInfo to the reply's list (sized by the caller with reply_commands_reserve). */
static bool reply_add_command(struct reply *rep, struct store_command_info *c)
{
    Vigil__CommandInfo *info = command_to_wire(rep, c);
    if (!info)
        return false;
    rep->msg.commands[rep->msg.n_commands++] = info;
    return true;
}

static bool reply_commands_reserve(struct reply *rep, size_t n)
{
    rep->msg.commands = reply_own(rep, calloc(n ? n : 1, sizeof(Vigil__CommandInfo *)), free);
    rep->msg.n_commands = 0;
    return rep->msg.commands != NULL;
}

/* The command as it now is, as the reply's one entry. */
static void reply_with_command(admin_t *self, struct reply *rep, const char *id, bool with_steps)
{
    struct store_command_info c;
    int r = store_command_get(self->store, id, with_steps, false, &c);
    if (r == -ENOENT) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_NOT_FOUND, "command %s not found", id);
        return;
    }
    if (r < 0) {
        reply_store_unavailable(rep, false);
        return;
    }
    if (reply_commands_reserve(rep, 1))
        reply_add_command(rep, &c);
    store_command_info_clear(&c);
}

/* ---- the node's agents ---- */

/* Whether name (len bytes) is an element of a list separated by ',' (and spaces). */
static bool in_list(const char *list, const char *name, size_t len)
{
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ", ");
        if (n == len && strncmp(p, name, len) == 0)
            return true;
        p += n;
        while (*p == ',' || *p == ' ')
            p++;
    }
    return false;
}

/* One node a RunCommand reaches: its active agents that declare the action. */
struct run_target {
    char node[256];
    enum vg_action_mode mode;
    char inverse[sizeof(((struct agent_action *)0)->inverse)];
    char params[sizeof(((struct agent_action *)0)->params)];
    char (*agents)[sizeof(((struct agent *)0)->id)];
    size_t nagents;
};

static void targets_free(struct run_target *t, size_t n)
{
    for (size_t i = 0; t && i < n; i++)
        free(t[i].agents);
    free(t);
}

static struct run_target *target_for(struct run_target *t, size_t *n, size_t max, const char *node)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(t[i].node, node) == 0)
            return &t[i];
    }
    if (*n >= max)
        return NULL;
    struct run_target *fresh = &t[(*n)++];
    memset(fresh, 0, sizeof(*fresh));
    snprintf(fresh->node, sizeof(fresh->node), "%s", node);
    fresh->agents = calloc(max, sizeof(*fresh->agents));
    return fresh->agents ? fresh : NULL;
}

/*
 * Under registry_lock: the nodes the request reaches (node, or every node when it is NULL) and,
 * for one node that reaches none, what its active agents declare instead (declared). -ENOMEM.
 */
static int pick_targets(registry_t *registry, const char *action, const char *node, bool cluster,
                        struct run_target **ret, size_t *ret_n, char *declared, size_t declared_len,
                        bool *ret_node_active)
{
    size_t max = registry_agent_count(registry), n = 0, used = 0;
    struct run_target *t = calloc(max ? max : 1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    declared[0] = '\0';
    *ret_node_active = false;
    for (struct agent *a = registry_agent_next(registry, NULL); a;
         a = registry_agent_next(registry, a)) {
        if (a->state != VIGIL__AGENT_STATE__AGENT_STATE_ACTIVE)
            continue;
        if ((node && strcmp(a->node, node) != 0) || (cluster && !a->cluster))
            continue;
        *ret_node_active = true;
        const struct agent_action *act = agent_action_find(a, action);
        if (!act) {
            for (size_t i = 0; node && i < a->nactions && used < declared_len; i++) {
                const char *name = a->actions[i].name;
                if (in_list(declared, name, strlen(name)))
                    continue;
                int w = snprintf(declared + used, declared_len - used, "%s%s", used ? ", " : "",
                                 a->actions[i].name);
                used += w > 0 ? (size_t)w : 0;
            }
            continue;
        }
        struct run_target *tg = target_for(t, &n, max, a->node);
        if (!tg) {
            targets_free(t, n);
            return -ENOMEM;
        }
        /* Agents of one node that disagree: the strictest mode wins. */
        if (tg->nagents == 0 || act->mode > tg->mode) {
            tg->mode = act->mode;
            snprintf(tg->params, sizeof(tg->params), "%s", act->params);
            snprintf(tg->inverse, sizeof(tg->inverse), "%s", act->inverse);
        }
        snprintf(tg->agents[tg->nagents++], sizeof(tg->agents[0]), "%s", a->id);
    }
    *ret = t;
    *ret_n = n;
    return 0;
}

/* The arguments against the declared parameter names: each once, nothing else (the check
 * decoded the request refuses a key given twice; a runbook's args are a mapping). */
static bool args_match(const char *action, Vigil__CommandArg *const *args, size_t nargs,
                       const struct run_target *t, char *why, size_t whylen)
{
    for (const char *p = t->params; *p;) {
        size_t len = strcspn(p, ",");
        bool given = false;
        for (size_t i = 0; i < nargs; i++)
            given |= strlen(args[i]->key) == len && strncmp(args[i]->key, p, len) == 0;
        if (!given) {
            snprintf(why, whylen,
                     "action %s on node %s needs --arg %.*s=VALUE (its parameters: %s)", action,
                     t->node, (int)len, p, t->params);
            return false;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    for (size_t i = 0; i < nargs; i++) {
        const char *key = args[i]->key;
        if (!in_list(t->params, key, strlen(key))) {
            snprintf(why, whylen,
                     "action %s on node %s has no parameter \"%s\" (its parameters: %s)", action,
                     t->node, key, t->params[0] ? t->params : "none");
            return false;
        }
    }
    return true;
}

/* Queues the capsule for every agent of the target (after the commit). */
static void queue_capsule(admin_t *self, const char *request_id, const struct run_target *t,
                          const uint8_t *env, size_t len)
{
    for (size_t i = 0; i < t->nagents; i++) {
        int r = remediate_queue(self->remediate, t->agents[i], request_id, env, len);
        if (r < 0)
            vg_log(VG_LOG_WARN, "command=%s agent=%s capsule not queued: %s", request_id,
                   t->agents[i], strerror(-r));
    }
}

/* The target of one stored request, from the registry now (approve: the node's agents that
 * declare its action). */
static int target_of(admin_t *self, const struct store_command_info *c, struct run_target **ret,
                     size_t *ret_n)
{
    char declared[8];
    bool active = false;
    registry_lock(self->registry);
    int r = pick_targets(self->registry, c->action, c->node, false, ret, ret_n, declared,
                         sizeof(declared), &active);
    registry_unlock(self->registry);
    return r;
}

static void new_request_id(char *out, size_t len)
{
    unsigned char raw[8];
    randombytes_buf(raw, sizeof(raw));
    snprintf(out, len, "cmd-%02x%02x%02x%02x%02x%02x%02x%02x", raw[0], raw[1], raw[2], raw[3],
             raw[4], raw[5], raw[6], raw[7]);
}

static bool remediation_on(admin_t *self, struct reply *rep)
{
    if (self->remediate)
        return true;
    reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_UNAVAILABLE, "%s",
                "remediation commands are not available on this coordinator");
    return false;
}

/* What create_requests stores: one request per target. */
struct new_requests {
    const char *actor;        /* for the audit rows */
    const char *requested_by; /* the operator's name, or "vigil" */
    const char *action;
    Vigil__CommandArg *const *args; /* borrowed */
    size_t nargs;
    uint64_t incident_id;
    bool dry_run;
    bool issue_auto; /* issue the capsule of a target whose mode is auto at once */
};

/*
 * One request per target, and the capsules of auto targets when issue_auto, in one transaction
 * (RunCommand and runbook steps). ids[i] is target i's request id and envelopes[i] its packed
 * capsule (NULL when it waits for approvals): queue them with queued_requests after this
 * returned 0. -ENOENT: no such incident; -EINVAL: an argument is not valid text; -EPROTO: a
 * capsule failed the coordinator's own check; other negative errno: the store.
 */
/* The request for one target, hashed. */
static int request_for(admin_t *self, const struct new_requests *nr, const struct run_target *t,
                       int64_t now, const char *id, struct store_command_info *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->id, sizeof(c->id), "%s", id);
    snprintf(c->action, sizeof(c->action), "%s", nr->action);
    snprintf(c->node, sizeof(c->node), "%s", t->node);
    c->incident_id = nr->incident_id;
    snprintf(c->requested_by, sizeof(c->requested_by), "%s", nr->requested_by);
    c->created_at_ms = now;
    c->approve_by_ms = now + remediate_approval_window_ms(self->remediate);
    c->dry_run = nr->dry_run;
    snprintf(c->mode, sizeof(c->mode), "%s", agent_action_mode_name(t->mode));
    c->args = (Vigil__CommandArg **)nr->args; /* borrowed: never cleared */
    c->nargs = nr->nargs;
    Vigil__CommandRequest creq;
    remediate_request_from_info(c, &creq);
    return vg_command_request_hash(&creq, c->request_sha256);
}

/*
 * Creates one request per target in one transaction. Where the step issues auto requests at
 * once and the node declares the action auto, the capsule is sealed here and every such request
 * is stored with its capsule in one statement (store_commands_issue_auto_many): a fan-out to
 * 1,000 nodes is one round trip. Others are created pending, one statement each.
 */
static int create_requests(admin_t *self, const struct new_requests *nr,
                           const struct run_target *targets, size_t ntargets, uint8_t **envelopes,
                           size_t *lens, char (*ids)[VG_MAX_COMMAND_ID_LEN + 1])
{
    int64_t now = vg_wall_ms();
    struct store_auto_issue *batch = calloc(ntargets ? ntargets : 1, sizeof(*batch));
    struct store_command_info c;
    size_t nbatch = 0;
    int64_t issued_at = 0, not_after = 0;
    if (!batch)
        return -ENOMEM;
    int r = store_command_begin(self->store);
    for (size_t i = 0; r == 0 && i < ntargets; i++) {
        new_request_id(ids[i], sizeof(ids[i]));
        r = request_for(self, nr, &targets[i], now, ids[i], &c);
        if (r < 0)
            break;
        if (!nr->issue_auto || targets[i].mode != VG_ACTION_MODE_AUTO) {
            r = store_command_create(self->store, &c, nr->actor);
            continue;
        }
        struct remediate_sealed sealed;
        char needs[384] = "";
        r = remediate_seal(self->remediate, &c, now, &sealed, needs, sizeof(needs));
        if (r == 0 && !sealed.envelope) /* an auto request the coordinator alone cannot issue */
            r = store_command_create(self->store, &c, nr->actor);
        if (r < 0 || !sealed.envelope)
            continue;
        envelopes[i] = sealed.envelope;
        lens[i] = sealed.len;
        issued_at = sealed.issued_at_ms;
        not_after = sealed.not_after_ms;
        batch[nbatch] = (struct store_auto_issue){.id = ids[i], .node = targets[i].node};
        memcpy(batch[nbatch].request_sha256, c.request_sha256, 32);
        memcpy(batch[nbatch].nonce, sealed.nonce, 16);
        memcpy(batch[nbatch].signature, sealed.signature, 64);
        nbatch++;
    }
    if (r == 0 && nbatch > 0) {
        /* The template: what every request of the batch shares (c is the last one's). */
        r = store_commands_issue_auto_many(self->store, &c, batch, nbatch, issued_at, not_after,
                                           remediate_public_key(self->remediate), nr->actor);
    }
    if (r == 0)
        r = store_command_commit(self->store);
    else
        store_command_rollback(self->store);
    if (r < 0) { /* nothing was stored: nothing is sent */
        for (size_t i = 0; i < ntargets; i++) {
            free(envelopes[i]);
            envelopes[i] = NULL;
        }
    }
    free(batch);
    return r;
}

/* After create_requests: logs each request and queues the issued capsules for their agents. */
static void queued_requests(admin_t *self, const struct new_requests *nr,
                            const struct run_target *targets, size_t ntargets,
                            uint8_t *const *envelopes, const size_t *lens,
                            char (*ids)[VG_MAX_COMMAND_ID_LEN + 1])
{
    for (size_t i = 0; i < ntargets; i++) {
        vg_log(VG_LOG_INFO, "command=%s %s requested action=%s node=%s mode=%s%s", ids[i],
               nr->actor, nr->action, targets[i].node, agent_action_mode_name(targets[i].mode),
               envelopes[i] ? " issued" : "");
        if (envelopes[i])
            queue_capsule(self, ids[i], &targets[i], envelopes[i], lens[i]);
    }
}

/* ---- run ---- */

static void run_command(admin_t *self, const struct operator* op, const Vigil__AdminRequest *req,
                        struct reply *rep)
{
    const Vigil__RunCommand *run = req->run_command;
    struct run_target *targets = NULL;
    size_t ntargets = 0;
    char declared[DECLARED_TEXT_MAX], actor[192], why[1536];
    bool node_active = false;

    if (!remediation_on(self, rep))
        return;
    admin_actor(op, actor, sizeof(actor));
    registry_lock(self->registry);
    int r = pick_targets(self->registry, run->action, run->node[0] ? run->node : NULL,
                         run->cluster, &targets, &ntargets, declared, sizeof(declared),
                         &node_active);
    registry_unlock(self->registry);
    if (r < 0) {
        reply_out_of_memory(rep);
        return;
    }
    if (ntargets == 0) {
        if (run->all)
            reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_NOT_FOUND,
                        "no active agent declares action %s", run->action);
        else if (run->cluster)
            reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_NOT_FOUND,
                        "no active cluster agent (role: cluster) declares action %s%s",
                        run->action,
                        node_active ? "" : "; no cluster agent is connected");
        else if (!node_active)
            reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_NOT_FOUND, "no active agent on node %s",
                        run->node);
        else
            reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_NOT_FOUND,
                        "no active agent on node %s declares action %s; it declares: %s", run->node,
                        run->action, declared[0] ? declared : "no actions");
        targets_free(targets, ntargets);
        return;
    }
    for (size_t i = 0; i < ntargets; i++) {
        if (!args_match(run->action, run->args, run->n_args, &targets[i], why, sizeof(why))) {
            reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST, "%s", why);
            targets_free(targets, ntargets);
            return;
        }
    }

    /* Every node's request, and the capsules of auto actions, in one transaction. */
    uint8_t **envelopes = calloc(ntargets, sizeof(*envelopes));
    size_t *lens = calloc(ntargets, sizeof(*lens));
    char(*ids)[VG_MAX_COMMAND_ID_LEN + 1] = calloc(ntargets, sizeof(*ids));
    if (!envelopes || !lens || !ids) {
        reply_out_of_memory(rep);
        goto out;
    }
    struct new_requests nr = {
        .actor = actor,
        .requested_by = op->name,
        .action = run->action,
        .args = run->args,
        .nargs = run->n_args,
        .incident_id = run->incident_id,
        .dry_run = run->dry_run,
        .issue_auto = true,
    };
    r = create_requests(self, &nr, targets, ntargets, envelopes, lens, ids);
    if (r == -ENOENT) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_NOT_FOUND, "incident %" PRIu64 " not found",
                    run->incident_id);
        goto out;
    }
    if (r == -EINVAL) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST, "%s",
                    "an argument is not valid UTF-8 or holds a control character");
        goto out;
    }
    if (r == -EPROTO) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_CONFLICT, "%s",
                    "the capsule failed the coordinator's own check (see its log); nothing "
                    "changed");
        goto out;
    }
    if (r < 0) {
        reply_store_unavailable(rep, true);
        goto out;
    }
    queued_requests(self, &nr, targets, ntargets, envelopes, lens, ids);
    if (!reply_commands_reserve(rep, ntargets))
        goto out;
    for (size_t i = 0; i < ntargets; i++) {
        struct store_command_info c;
        if (store_command_get(self->store, ids[i], false, false, &c) < 0)
            continue;
        reply_add_command(rep, &c);
        store_command_info_clear(&c);
    }
out:
    for (size_t i = 0; envelopes && i < ntargets; i++)
        free(envelopes[i]);
    free(envelopes);
    free(lens);
    free(ids);
    targets_free(targets, ntargets);
}

/* ---- approve ---- */

static bool approved_by(const struct store_command_info *c, const char *name)
{
    for (size_t i = 0; i < c->napprovals; i++) {
        if (strcmp(c->approvals[i].operator_name, name) == 0)
            return true;
    }
    return false;
}

static void approve_command(admin_t *self, const struct operator* op,
                            const Vigil__AdminRequest *req, struct reply *rep)
{
    const Vigil__ApproveCommand *ap = req->approve_command;
    unsigned char pk[VG_SIGN_PUBLIC_LEN];
    struct store_command_info c;
    char actor[192];
    uint8_t *envelope = NULL;
    size_t len = 0;
    int64_t not_after = 0;
    char needs[384] = "";

    if (!remediation_on(self, rep))
        return;
    admin_actor(op, actor, sizeof(actor));
    if (!op->signing_key[0] || vg_sign_public_parse(op->signing_key, pk) < 0) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_FORBIDDEN,
                    "operator %s has no registered signing key, so its approvals cannot be "
                    "checked (vigilctl operators rotate registers one)",
                    op->name);
        return;
    }
    memset(&c, 0, sizeof(c));
    int r = store_command_begin(self->store);
    if (r == 0)
        r = store_command_get(self->store, ap->request_id, false, true, &c);
    if (r == -ENOENT) {
        store_command_rollback(self->store);
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_NOT_FOUND, "command %s not found",
                    ap->request_id);
        return;
    }
    if (r < 0) {
        store_command_rollback(self->store);
        reply_store_unavailable(rep, true);
        return;
    }
    int64_t now = vg_wall_ms();
    Vigil__AdminStatus refused = VIGIL__ADMIN_STATUS__ADMIN_OK;
    if (strcmp(c.state, "pending") != 0) {
        refused = VIGIL__ADMIN_STATUS__ADMIN_CONFLICT;
        reply_error(rep, refused, "command %s is %s: it takes no more approvals", c.id, c.state);
    } else if (c.approve_by_ms != 0 && now > c.approve_by_ms) {
        refused = VIGIL__ADMIN_STATUS__ADMIN_CONFLICT;
        reply_error(rep, refused,
                    "command %s's approval deadline passed %" PRId64 " s ago: approvals are "
                    "refused; run it again",
                    c.id, (now - c.approve_by_ms) / 1000);
    } else if (approved_by(&c, op->name)) {
        refused = VIGIL__ADMIN_STATUS__ADMIN_CONFLICT;
        reply_error(rep, refused, "operator %s approved command %s already", op->name, c.id);
    } else if (c.napprovals >= VG_MAX_COMMAND_APPROVALS) {
        refused = VIGIL__ADMIN_STATUS__ADMIN_CONFLICT;
        reply_error(rep, refused, "command %s has %d approvals, the most a capsule carries", c.id,
                    VG_MAX_COMMAND_APPROVALS);
    } else if (!vg_sign_verify(pk, c.request_sha256, sizeof(c.request_sha256),
                               ap->signature.data)) {
        refused = VIGIL__ADMIN_STATUS__ADMIN_FORBIDDEN;
        metrics_refused(REFUSE_FORBIDDEN);
        vg_log(VG_LOG_WARN, "command=%s operator=%s approval refused: bad signature", c.id,
               op->name);
        reply_error(rep, refused,
                    "the signature does not verify with operator %s's registered signing key "
                    "over command %s's request hash",
                    op->name, c.id);
    }
    if (refused != VIGIL__ADMIN_STATUS__ADMIN_OK) {
        store_command_rollback(self->store);
        store_command_info_clear(&c);
        return;
    }

    struct store_command_approval a;
    memset(&a, 0, sizeof(a));
    snprintf(a.operator_name, sizeof(a.operator_name), "%s", op->name);
    snprintf(a.role, sizeof(a.role), "%s", op->role == ROLE_ADMIN ? "admin" : "responder");
    snprintf(a.signing_key, sizeof(a.signing_key), "%s", op->signing_key);
    memcpy(a.signature, ap->signature.data, sizeof(a.signature));
    a.at_ms = now;
    r = store_command_approval_add(self->store, c.id, &a, actor);
    if (r == 0) {
        struct store_command_approval *grown =
            realloc(c.approvals, (c.napprovals + 1) * sizeof(*grown));
        if (!grown) {
            r = -ENOMEM;
        } else {
            c.approvals = grown;
            c.approvals[c.napprovals++] = a;
        }
    }
    if (r == 0)
        r = remediate_try_issue(self->remediate, self->store, &c, actor, now, &envelope, &len,
                                &not_after, needs, sizeof(needs));
    if (r == 0)
        r = store_command_commit(self->store);
    else
        store_command_rollback(self->store);
    if (r < 0) {
        if (r == -EEXIST)
            reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_CONFLICT,
                        "operator %s approved command %s already", op->name, c.id);
        else if (r == -EPROTO)
            reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_CONFLICT,
                        "command %s failed the coordinator's own capsule check (%s); nothing "
                        "changed",
                        c.id, needs[0] ? needs : "see the coordinator's log");
        else
            reply_store_unavailable(rep, true);
        free(envelope);
        store_command_info_clear(&c);
        return;
    }
    vg_log(VG_LOG_INFO, "command=%s approved by %s role=%s%s", c.id, actor, a.role,
           envelope ? " issued" : "");
    if (envelope) {
        struct run_target *targets = NULL;
        size_t n = 0;
        if (target_of(self, &c, &targets, &n) == 0) {
            for (size_t i = 0; i < n; i++)
                queue_capsule(self, c.id, &targets[i], envelope, len);
            if (n == 0)
                vg_log(VG_LOG_WARN,
                       "command=%s no active agent on node %s declares %s now: the capsule "
                       "waits for nobody and will be lost",
                       c.id, c.node, c.action);
        }
        targets_free(targets, n);
        free(envelope);
    }
    char id[sizeof(c.id)];
    snprintf(id, sizeof(id), "%s", c.id);
    store_command_info_clear(&c);
    reply_with_command(self, rep, id, false);
}

/* ---- cancel, list, show ---- */

static void cancel_command(admin_t *self, const struct operator* op, const Vigil__AdminRequest *req,
                           struct reply *rep)
{
    const char *id = req->cancel_command->request_id;
    char actor[192];
    struct store_command_info c;

    admin_actor(op, actor, sizeof(actor));
    int r = store_command_begin(self->store);
    if (r == 0)
        r = store_command_get(self->store, id, false, true, &c);
    if (r == 0 && strcmp(c.state, "pending") != 0) {
        store_command_rollback(self->store);
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_CONFLICT,
                    "command %s is %s: only a command waiting for approvals can be cancelled%s", id,
                    c.state,
                    strcmp(c.state, "issued") == 0 ? " (its capsule went to the node already)"
                                                   : "");
        store_command_info_clear(&c);
        return;
    }
    if (r == 0) {
        store_command_info_clear(&c);
        r = store_command_transition(self->store, id, "pending", "cancelled", actor,
                                     "command.cancel");
    }
    if (r == 0)
        r = store_command_commit(self->store);
    else
        store_command_rollback(self->store);
    if (r == -ENOENT) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_NOT_FOUND, "command %s not found", id);
        return;
    }
    if (r < 0) {
        reply_store_unavailable(rep, true);
        return;
    }
    vg_log(VG_LOG_INFO, "command=%s cancelled by %s", id, actor);
    reply_with_command(self, rep, id, false);
}

struct list_state {
    struct reply *rep;
    uint64_t last_n;
    size_t bytes; /* packed size of the commands so far */
    bool full;    /* LIST_MAX_BYTES reached: the rest is the next page's */
};

static int list_one(struct store_command_info *c, void *userdata)
{
    struct list_state *st = userdata;
    if (st->bytes >= LIST_MAX_BYTES) {
        st->full = true;
        return 1;
    }
    st->last_n = c->n;
    if (!reply_add_command(st->rep, c))
        return -ENOMEM;
    st->bytes +=
        vigil__command_info__get_packed_size(st->rep->msg.commands[st->rep->msg.n_commands - 1]);
    return 0;
}

static void list_commands(admin_t *self, const struct operator* op, const Vigil__AdminRequest *req,
                          struct reply *rep)
{
    (void)op;
    const Vigil__ListCommands *list = req->list_commands;
    uint32_t limit = list->limit ? list->limit : LIST_DEFAULT;
    uint64_t before = 0;
    if (list->cursor[0]) {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(list->cursor, &end, 10);
        if (errno || !end || *end || v == 0) {
            reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST, "%s",
                        "not a cursor this coordinator gave");
            return;
        }
        before = v;
    }
    if (!reply_commands_reserve(rep, limit))
        return;
    struct list_state st = {rep, 0, 0, false};
    int r = store_commands_list(self->store, list->incident_id, before, limit, list_one, &st);
    if (r < 0) {
        if (rep->msg.status == VIGIL__ADMIN_STATUS__ADMIN_OK)
            reply_store_unavailable(rep, false);
        return;
    }
    if (rep->msg.n_commands == limit || st.full) {
        char *cursor = reply_own(rep, malloc(24), free);
        if (!cursor)
            return;
        snprintf(cursor, 24, "%" PRIu64, st.last_n);
        rep->msg.next_cursor = cursor;
    }
}

static void show_command(admin_t *self, const struct operator* op, const Vigil__AdminRequest *req,
                         struct reply *rep)
{
    (void)op;
    reply_with_command(self, rep, req->show_command->request_id, true);
    if (rep->msg.status == VIGIL__ADMIN_STATUS__ADMIN_OK && rep->msg.n_commands == 1)
        admin_reply_command_evidence(self, rep, req->show_command->request_id);
}

/* ---- runbook steps ---- */

static void step_note(admin_t *self, const struct steps_job *job, const struct steps_step *st,
                      const char *state, const char *request_id, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* The step on the incident's timeline, and in the log. */
static void step_note(admin_t *self, const struct steps_job *job, const struct steps_step *st,
                      const char *state, const char *request_id, const char *fmt, ...)
{
    char text[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    vg_log(VG_LOG_INFO, "incident=%" PRIu64 " runbook=%s step=%s mode=%s state=%s%s%s: %s",
           job->incident_id, job->runbook, st->action, steps_mode_name(st->mode), state,
           request_id[0] ? " command=" : "", request_id, text);
    int r = store_command_step_note(self->store, job->incident_id, st->action,
                                    steps_mode_name(st->mode), state, request_id, text);
    if (r < 0)
        vg_log(VG_LOG_WARN, "incident=%" PRIu64 " step=%s not on the timeline: %s",
               job->incident_id, st->action, strerror(-r));
}

/* One step on one node: a request, issued at once or waiting for approvals. rest: the nodes
 * to request once this one (the canary) reported done with exit 0 ("" = none). True when the
 * request was issued and is watched (a canary that will request the rest itself). */
static bool run_step_on(admin_t *self, const struct steps_job *job, const struct steps_step *st,
                        const char *node, const char *rest)
{
    struct run_target *targets = NULL;
    size_t ntargets = 0;
    char declared[DECLARED_TEXT_MAX], why[1536];
    bool node_active = false;

    registry_lock(self->registry);
    int r = pick_targets(self->registry, st->action, node, false, &targets, &ntargets, declared,
                         sizeof(declared), &node_active);
    registry_unlock(self->registry);
    if (r < 0 || ntargets == 0) {
        step_note(self, job, st, "skipped", "", "runbook step %s (%s) not run on %s: %s",
                  st->action, steps_mode_name(st->mode), node,
                  r < 0          ? "out of memory"
                  : !node_active ? "no active agent on the node"
                                 : "no active agent of the node declares the action");
        targets_free(targets, ntargets);
        return false;
    }
    if (!args_match(st->action, st->args, st->nargs, &targets[0], why, sizeof(why))) {
        step_note(self, job, st, "skipped", "", "runbook step %s (%s) not run: %s", st->action,
                  steps_mode_name(st->mode), why);
        targets_free(targets, ntargets);
        return false;
    }
    enum steps_outcome out = steps_decide(st->mode, targets[0].mode);
    const char *limited = "";
    struct store_automation automation = {.enabled = true};
    if (out == STEPS_ISSUE && store_automation_get(self->store, &automation) < 0) {
        automation.enabled = false; /* unknown: an operator decides */
        vg_log(VG_LOG_WARN, "incident=%" PRIu64 " step=%s automation state unknown: waits",
               job->incident_id, st->action);
    }
    if (out == STEPS_ISSUE && !automation.enabled) {
        out = STEPS_PENDING;
        limited = " (automation is off)";
    } else if (out == STEPS_ISSUE && !st->inverse &&
               !steps_limiter_allow(self->limiter, job->runbook, node, vg_wall_ms())) {
        out = STEPS_PENDING;
        limited = " (Vigil ran it on this node less than commands.auto_min_interval ago)";
    }
    uint8_t *envelope = NULL;
    size_t len = 0;
    bool watched = false;
    char id[1][VG_MAX_COMMAND_ID_LEN + 1];
    struct new_requests nr = {
        .actor = "vigil",
        .requested_by = "vigil",
        .action = st->action,
        .args = st->args,
        .nargs = st->nargs,
        .incident_id = job->incident_id,
        .issue_auto = out == STEPS_ISSUE,
    };
    r = create_requests(self, &nr, targets, 1, &envelope, &len, id);
    if (r < 0) {
        step_note(self, job, st, "skipped", "", "runbook step %s (%s) not run on %s: %s",
                  st->action, steps_mode_name(st->mode), node,
                  r == -EINVAL   ? "an argument is not valid text"
                  : r == -EPROTO ? "the capsule failed the coordinator's own check"
                                 : "the store is unavailable");
        targets_free(targets, ntargets);
        return false;
    }
    queued_requests(self, &nr, targets, 1, &envelope, &len, id);
    if (envelope && st->inverse)
        step_note(self, job, st, "issued", id[0], "inverse %s ran automatically on %s as %s",
                  st->action, node, id[0]);
    else if (envelope)
        step_note(self, job, st, "issued", id[0], "runbook step %s ran automatically on %s as %s",
                  st->action, node, id[0]);
    if (envelope && !st->inverse && self->watchlist) {
        /* Verify-then-inverse: the main loop judges it once it reports (steps.h). */
        struct steps_watch w = {.incident_id = job->incident_id,
                                .within_ms = st->verify_within_ms > 0
                                                 ? st->verify_within_ms
                                                 : RB_DEFAULT_VERIFY_WITHIN_MS};
        snprintf(w.request_id, sizeof(w.request_id), "%s", id[0]);
        snprintf(w.runbook, sizeof(w.runbook), "%s", job->runbook);
        snprintf(w.verify_node, sizeof(w.verify_node), "%s", job->verify_node);
        snprintf(w.node, sizeof(w.node), "%s", node);
        snprintf(w.action, sizeof(w.action), "%s", st->action);
        snprintf(w.inverse, sizeof(w.inverse), "%s", targets[0].inverse);
        snprintf(w.rest, sizeof(w.rest), "%s", rest);
        if (steps_watchlist_add(self->watchlist, &w) < 0)
            vg_log(VG_LOG_WARN, "command=%s not watched for its verify: out of memory", id[0]);
        else
            watched = true;
    }
    if (!envelope)
        step_note(self, job, st, "pending", id[0],
                  "runbook step %s on %s waits for approval%s: vigilctl approve %s", st->action,
                  node, limited, id[0]);
    free(envelope);
    targets_free(targets, ntargets);
    return watched;
}

/* The node name of the cluster agent (role: cluster) that declares action: 0, or -ENOENT when
 * none is active. Several (a second one during a move): the first. */
static int cluster_node_for(admin_t *self, const char *action, char *node, size_t len)
{
    struct run_target *targets = NULL;
    size_t ntargets = 0;
    char declared[8];
    bool active = false;

    registry_lock(self->registry);
    int r = pick_targets(self->registry, action, NULL, true, &targets, &ntargets, declared,
                         sizeof(declared), &active);
    registry_unlock(self->registry);
    if (r == 0 && ntargets == 0)
        r = -ENOENT;
    if (r == 0)
        snprintf(node, len, "%s", targets[0].node);
    targets_free(targets, ntargets);
    return r;
}

/* A step with `on: cluster`: once, on the cluster agent, whatever nodes the incident has. */
static void run_step_on_cluster(admin_t *self, const struct steps_job *job,
                                const struct steps_step *st)
{
    char node[sizeof(((struct run_target *)0)->node)];
    if (cluster_node_for(self, st->action, node, sizeof(node)) < 0) {
        step_note(self, job, st, "skipped", "",
                  "runbook step %s (%s) not run: no active cluster agent (role: cluster) "
                  "declares it",
                  st->action, steps_mode_name(st->mode));
        return;
    }
    run_step_on(self, job, st, node, "");
}

void admin_commands_run_steps(admin_t *self, const struct steps_job *job)
{
    for (size_t i = 0; i < job->nsteps; i++) {
        const struct steps_step *st = &job->steps[i];
        if (job->dry_run) {
            char nodes[512] = "";
            for (size_t n = 0, used = 0; n < job->nnodes && used < sizeof(nodes); n++) {
                int w = snprintf(nodes + used, sizeof(nodes) - used, "%s%s", used ? ", " : "",
                                 job->nodes[n]);
                used += w > 0 ? (size_t)w : 0;
            }
            step_note(self, job, st, "dry_run", "",
                      "drill: runbook step %s (%s) would %s on %s; a dry run, nothing was requested",
                      st->action, steps_mode_name(st->mode),
                      st->mode == RB_MODE_MANUAL    ? "be shown to the responder"
                      : st->mode == RB_MODE_APPROVE ? "wait for approvals"
                                                    : "run at once",
                      nodes[0] ? nodes : "no node");
            continue;
        }
        if (st->mode == RB_MODE_MANUAL) {
            step_note(self, job, st, "manual", "",
                      "runbook step %s (manual): Vigil does not run it; a responder does",
                      st->action);
            continue;
        }
        if (!self->remediate) {
            step_note(self, job, st, "skipped", "",
                      "runbook step %s (%s) not run: remediation commands are not available on "
                      "this coordinator",
                      st->action, steps_mode_name(st->mode));
            continue;
        }
        if (st->on_cluster) {
            run_step_on_cluster(self, job, st);
            continue;
        }
        struct rb_action limits = {.mode = st->mode, .max_nodes = st->max_nodes};
        size_t limit = steps_node_limit(&limits);
        size_t reach = limit == 0 || job->nnodes < limit ? job->nnodes : limit;
        size_t k = 0;
        if (st->mode == RB_MODE_AUTO && !st->inverse && !st->after_canary && reach > 1) {
            /* Canary: one node first; the others once it verified on its node (steps.h). */
            char rest[sizeof(((struct steps_watch *)0)->rest)] = "";
            size_t used = 0;
            for (size_t n = 1; n < reach; n++) {
                int w = snprintf(rest + used, sizeof(rest) - used, "%s%s", used ? "\n" : "",
                                 job->nodes[n]);
                if (w < 0 || (size_t)w >= sizeof(rest) - used) {
                    rest[used] = '\0';
                    break;
                }
                used += (size_t)w;
            }
            k = 1; /* a canary not issued alone (pending, skipped): the others decide below */
            if (run_step_on(self, job, st, job->nodes[0], rest)) {
                step_note(self, job, st, "canary", "",
                          "runbook step %s runs on %s first; the other %zu node(s) once it "
                          "verified there",
                          st->action, job->nodes[0], reach - 1);
                k = reach; /* the canary's watch requests the others */
            }
        }
        for (; k < reach; k++)
            run_step_on(self, job, st, job->nodes[k], "");
        if (limit != 0 && job->nnodes > limit)
            step_note(self, job, st, "limited", "",
                      "runbook step %s (%s) reached %zu of %zu nodes (max_nodes)", st->action,
                      steps_mode_name(st->mode), limit, job->nnodes);
    }
}

/* ---- automation ---- */

struct wire_automation {
    Vigil__AutomationInfo info;
    struct store_automation src;
};

static void reply_with_automation(struct reply *rep, const struct store_automation *a)
{
    struct wire_automation *w = reply_own(rep, calloc(1, sizeof(*w)), free);
    if (!w)
        return;
    w->src = *a;
    vigil__automation_info__init(&w->info);
    w->info.enabled = w->src.enabled;
    w->info.changed_by = w->src.changed_by;
    w->info.changed_at_ms = w->src.changed_at_ms;
    rep->msg.automation = &w->info;
}

static void show_automation(admin_t *self, const struct operator* op,
                            const Vigil__AdminRequest *req, struct reply *rep)
{
    (void)op;
    (void)req;
    struct store_automation a;
    if (store_automation_get(self->store, &a) < 0) {
        reply_store_unavailable(rep, false);
        return;
    }
    reply_with_automation(rep, &a);
}

static void set_automation(admin_t *self, const struct operator* op, const Vigil__AdminRequest *req,
                           struct reply *rep)
{
    char actor[192];
    struct store_automation a;
    admin_actor(op, actor, sizeof(actor));
    if (store_automation_set(self->store, req->set_automation->enabled, op->name, &a) < 0) {
        reply_store_unavailable(rep, true);
        return;
    }
    vg_log(VG_LOG_WARN, "automation %s by %s: runbook auto steps %s", a.enabled ? "on" : "off",
           actor, a.enabled ? "run by themselves" : "wait for an operator's approval");
    reply_with_automation(rep, &a);
}

static const char *check_nothing(const Vigil__AdminRequest *req)
{
    (void)req;
    return NULL;
}

const struct admin_command admin_command_commands[] = {
    {VIGIL__ADMIN_REQUEST__BODY_RUN_COMMAND, ROLE_RESPONDER, "running commands", check_run,
     run_command},
    {VIGIL__ADMIN_REQUEST__BODY_APPROVE_COMMAND, ROLE_RESPONDER, "approving commands",
     check_approve, approve_command},
    {VIGIL__ADMIN_REQUEST__BODY_CANCEL_COMMAND, ROLE_RESPONDER, "cancelling commands", check_cancel,
     cancel_command},
    {VIGIL__ADMIN_REQUEST__BODY_LIST_COMMANDS, ROLE_VIEWER, "listing commands", check_list,
     list_commands},
    {VIGIL__ADMIN_REQUEST__BODY_SHOW_COMMAND, ROLE_VIEWER, "showing commands", check_show,
     show_command},
    {VIGIL__ADMIN_REQUEST__BODY_SHOW_AUTOMATION, ROLE_VIEWER, "showing automation", check_nothing,
     show_automation},
    {VIGIL__ADMIN_REQUEST__BODY_SET_AUTOMATION, ROLE_ADMIN, "turning automation on or off",
     check_nothing, set_automation},
    {0},
};
