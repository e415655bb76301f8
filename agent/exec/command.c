/* The executor's decision on one command: the contract and the order of checks are in
 * command.h. */
#include "command.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h"
#include "service.h"
#include "vigil.pb-c.h"

static int refuse(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int refuse(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return -EPERM;
}

/* The mode the node's catalog gives the action: what signatures it needs. */
static enum vg_action_mode action_mode(const struct action *a)
{
    if (a->destructive)
        return VG_ACTION_MODE_DESTRUCTIVE;
    if (a->auto_run)
        return VG_ACTION_MODE_AUTO;
    return VG_ACTION_MODE_APPROVE;
}

/* This node's interface addresses (read now: they change) and the coordinator's. */
static int build_deny(const struct command_env *env, struct action_deny *ret)
{
    struct action_deny deny = {0};
    if (env->ncoordinator > 0) {
        deny.nets = malloc(env->ncoordinator * sizeof(*deny.nets));
        if (!deny.nets)
            return -ENOMEM;
        memcpy(deny.nets, env->coordinator, env->ncoordinator * sizeof(*deny.nets));
        deny.count = env->ncoordinator;
    }
    int r = actions_deny_add_interfaces(&deny);
    if (r < 0) {
        actions_deny_free(&deny);
        return r;
    }
    *ret = deny;
    return 0;
}

static const char *arg_value(const struct action_arg *args, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(args[i].name, name) == 0)
            return args[i].value;
    }
    return NULL;
}

/* A service action: vigil-agent-action KIND OP as the agent's user (libpq, hiredis and libcurl
 * never in a root process), with its request on stdin. */
static int service_plan(const struct command_env *env, const struct action *a,
                        const struct action_arg *args, size_t n, struct command_plan *plan,
                        char *why, size_t whylen)
{
    if (!env->service_program || !env->cfg)
        return refuse(why, whylen,
                      "action %s: vigil-agent-action, which runs %s actions, was not found next "
                      "to the executor (set action_path)",
                      a->name, actions_kind_name(a->kind));
    if (a->precheck && a->precheck->kind != ACTION_EXEC)
        return refuse(why, whylen, "action %s: its precheck %s is not an exec action", a->name,
                      a->precheck->name);
    int r = service_request(env->cfg, a, args, n, &plan->stdin_data, &plan->stdin_len, why,
                            whylen);
    if (r < 0)
        return r == -ENOMEM ? r : -EPERM;
    plan->argv = calloc(4, sizeof(*plan->argv));
    if (!plan->argv || !(plan->argv[0] = strdup(env->service_program)) ||
        !(plan->argv[1] = strdup(actions_kind_name(a->kind))) ||
        !(plan->argv[2] = strdup(actions_op_name(a->op))))
        return -ENOMEM;
    plan->as_root = false;
    if (a->precheck) {
        r = actions_render_argv(a->precheck, args, n, &plan->precheck_argv);
        if (r < 0)
            return r == -ENOMEM ? r
                                : refuse(why, whylen, "cannot build the argv of precheck %s",
                                         a->precheck->name);
        plan->precheck_as_root = a->precheck->root;
    }
    return 0;
}

/* What a checked action runs: plan->argv (and the precheck's), or the signal to send. */
static int build_plan(const struct command_env *env, const struct action *a,
                      const struct action_arg *args, size_t n, struct command_plan *plan, char *why,
                      size_t whylen)
{
    int r;

    switch (a->kind) {
    case ACTION_EXEC:
        r = actions_render_argv(a, args, n, &plan->argv);
        if (r < 0)
            return r == -ENOMEM ? r : refuse(why, whylen, "cannot build the argv of %s", a->name);
        plan->as_root = a->root;
        if (a->precheck) {
            r = actions_render_argv(a->precheck, args, n, &plan->precheck_argv);
            if (r < 0)
                return r == -ENOMEM ? r
                                    : refuse(why, whylen, "cannot build the argv of precheck %s",
                                             a->precheck->name);
            plan->precheck_as_root = a->precheck->root;
        }
        return 0;
    case ACTION_SIGNAL: {
        const char *process = arg_value(args, n, "process");
        const char *signame = arg_value(args, n, "signal");
        plan->signal_number = builtin_signal_number(signame);
        if (!process || plan->signal_number <= 0)
            return refuse(why, whylen, "signal action %s: no process or no known signal", a->name);
        plan->process_name = strdup(process);
        plan->as_root = true;
        return plan->process_name ? 0 : -ENOMEM;
    }
    case ACTION_POSTGRES:
    case ACTION_REDIS:
    case ACTION_KUBERNETES:
        return service_plan(env, a, args, n, plan, why, whylen);
    default:
        r = builtin_argv(a, args, n, env->coordinator, env->ncoordinator, &plan->argv, why, whylen);
        plan->as_root = true;
        return r == -EINVAL ? -EPERM : r;
    }
}

int command_check(const struct command_env *env, const uint8_t *capsule, size_t len, int64_t now_ms,
                  struct command_plan *ret, char *why, size_t whylen)
{
    struct command_plan plan = {0};
    struct vg_capsule_verdict verdict;
    struct action_arg *args = NULL;
    struct action_deny deny = {0};
    const char *policy_why = NULL;
    int r;

    memset(ret, 0, sizeof(*ret));
    Vigil__CommandCapsule *c = vigil__command_capsule__unpack(NULL, len, capsule);
    if (!c)
        return refuse(why, whylen, "malformed capsule: not a CommandCapsule");
    const Vigil__CommandRequest *req = c->request;
    /* Name the command in the refusal when its id and nonce have the wire's shape. */
    if (req && req->request_id && req->request_id[0] &&
        strlen(req->request_id) <= VG_MAX_COMMAND_ID_LEN &&
        c->nonce.len == VG_COMMAND_NONCE_BYTES) {
        snprintf(ret->request_id, sizeof(ret->request_id), "%s", req->request_id);
        memcpy(ret->nonce, c->nonce.data, VG_COMMAND_NONCE_BYTES);
    }

    if (env->busy) {
        r = refuse(why, whylen, "this node's executor is running as many commands as it may");
        goto out;
    }
    if (!env->catalog || !env->signers || vg_signer_set_count(env->signers) == 0 || !env->replay) {
        r = refuse(why, whylen,
                   "remediation is disabled on this node (no action catalog, signer file or "
                   "replay cache)");
        goto out;
    }
    vg_capsule_verify(c, env->signers, env->node, now_ms, &verdict);
    if (!verdict.ok || !req) { /* a verified capsule has a request: vg_command_capsule_check */
        r = refuse(why, whylen, "%s", verdict.reason);
        goto out;
    }
    const struct action *a = actions_find(env->catalog, req->action);
    if (!a) {
        r = refuse(why, whylen, "unknown action \"%s\": not in this node's catalog", req->action);
        goto out;
    }
    if (!vg_capsule_policy_ok(&verdict, action_mode(a), &policy_why)) {
        r = refuse(why, whylen, "action %s: %s", a->name, policy_why ? policy_why : "not allowed");
        goto out;
    }
    if (req->n_args > 0 && !(args = calloc(req->n_args, sizeof(*args)))) {
        r = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < req->n_args; i++)
        args[i] = (struct action_arg){req->args[i]->key, req->args[i]->value};
    r = build_deny(env, &deny);
    if (r < 0) {
        r = refuse(why, whylen, "cannot list this node's addresses to check the arguments: %s",
                   strerror(-r));
        goto out;
    }
    char argwhy[COMMAND_REASON_MAX];
    if (actions_check_args(a, args, req->n_args, &deny, argwhy, sizeof(argwhy)) < 0) {
        r = refuse(why, whylen, "action %s: %s", a->name, argwhy);
        goto out;
    }
    plan.action = a;
    plan.dry_run = req->dry_run;
    r = build_plan(env, a, args, req->n_args, &plan, why, whylen);
    if (r < 0)
        goto out;
    if (!env->unprivileged_ok &&
        ((plan.argv && !plan.as_root) || (plan.precheck_argv && !plan.precheck_as_root))) {
        r = refuse(why, whylen,
                   "action %s must not run as root (no root: true), and agent.yaml sets no user "
                   "to run it as",
                   a->name);
        goto out;
    }

    r = replay_seen_or_add(env->replay, c->nonce.data, c->not_after_ms, now_ms);
    if (r == -EALREADY) {
        r = refuse(why, whylen, "replayed capsule: its nonce was already run on this node");
        goto out;
    }
    if (r == -ENOSPC) {
        r = refuse(why, whylen,
                   "the replay cache is full of unexpired nonces: refusing new commands until "
                   "some expire");
        goto out;
    }
    if (r < 0) {
        r = refuse(why, whylen, "cannot record the nonce in the replay cache: %s", strerror(-r));
        goto out;
    }
    memcpy(plan.request_id, ret->request_id, sizeof(plan.request_id));
    memcpy(plan.nonce, ret->nonce, sizeof(plan.nonce));
    *ret = plan;
    plan = (struct command_plan){0};
    r = 0;

out:
    command_plan_free(&plan);
    actions_deny_free(&deny);
    free(args);
    vigil__command_capsule__free_unpacked(c, NULL);
    return r;
}

void command_plan_free(struct command_plan *plan)
{
    if (!plan)
        return;
    actions_argv_free(&plan->argv);
    actions_argv_free(&plan->precheck_argv);
    free(plan->process_name);
    plan->process_name = NULL;
    if (plan->stdin_data) /* it may hold the cluster's token */
        explicit_bzero(plan->stdin_data, plan->stdin_len);
    free(plan->stdin_data);
    plan->stdin_data = NULL;
    plan->stdin_len = 0;
}

void command_argv_text(char *const *argv, char *buf, size_t buflen)
{
    size_t used = 0;
    if (buflen == 0)
        return;
    buf[0] = '\0';
    for (size_t i = 0; argv && argv[i]; i++) {
        int n = snprintf(buf + used, buflen - used, "%s%s", i ? " " : "", argv[i]);
        if (n < 0 || (size_t)n >= buflen - used) {
            if (buflen >= 4)
                memcpy(buf + buflen - 4, "...", 4);
            return;
        }
        used += (size_t)n;
    }
}
