/* Operator requests about agents: list, approve (or a rename), revoke. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_internal.h"
#include "log.h"
#include "timeutil.h"
#include "wire.h"

/* holder: for a pending agent, the agent that holds its node name (NULL = none). */
static void fill_agent_info(Vigil__AgentInfo *info, const struct agent *a,
                            const struct agent *holder)
{
    vigil__agent_info__init(info);
    info->id = (char *)a->id;
    info->node = (char *)a->node;
    info->state = a->state;
    info->agent_version = (char *)a->agent_version;
    info->last_seen_ms = a->last_seen_ms;
    info->spool_depth = a->spool_depth;
    info->dropped_messages = a->dropped_messages;
    info->public_key = (char *)a->public_key;
    info->enrolled_at_ms = a->enrolled_at_ms;
    info->state_since_ms = a->state_since_ms;
    info->requested_node = (char *)a->requested_node;
    info->node_held_by = holder ? (char *)holder->id : "";
}

#define AGENTS_PAGE_MAX 10000

static int compare_agent_ids(const void *a, const void *b)
{
    const struct agent *const *x = a, *const *y = b;
    return strcmp((*x)->id, (*y)->id);
}

/*
 * The agents in id order (only: just that one), a page at a time: those after cursor ("" = from
 * the start), at most limit (0 = all of them, as for a vigilctl from before paging); the reply's
 * next_cursor is the last id when more follow.
 */
static void reply_agents(admin_t *self, const char *only, const char *cursor, uint32_t limit,
                         struct reply *rep)
{
    size_t n = registry_agent_count(self->registry);
    Vigil__AgentInfo *infos = reply_own(rep, calloc(n ? n : 1, sizeof(*infos)), free);
    Vigil__AgentInfo **ptrs = reply_own(rep, calloc(n ? n : 1, sizeof(Vigil__AgentInfo *)), free);
    /* Copies: the reply is sent after the registry's lock is released. */
    struct agent *copies = reply_own(rep, calloc(n ? n : 1, sizeof(*copies)), free);
    const struct agent **agents = calloc(n ? n : 1, sizeof(const struct agent *));
    if (!infos || !ptrs || !copies || !agents) {
        free(agents);
        reply_out_of_memory(rep);
        return;
    }
    size_t count = 0;
    for (struct agent *a = registry_agent_next(self->registry, NULL); a && count < n;
         a = registry_agent_next(self->registry, a)) {
        copies[count] = *a;
        agents[count] = &copies[count];
        count++;
    }
    qsort(agents, count, sizeof(const struct agent *), compare_agent_ids);
    for (size_t i = 0; i < count; i++) {
        if (only && strcmp(agents[i]->id, only) != 0)
            continue;
        if (cursor && cursor[0] && strcmp(agents[i]->id, cursor) <= 0)
            continue;
        if (limit && rep->msg.n_agents == limit) {
            rep->msg.next_cursor = (char *)ptrs[limit - 1]->id; /* points into copies */
            break;
        }
        /* A pending key that claims a node another agent holds is shown with the holder. */
        const struct agent *holder = NULL;
        for (size_t k = 0; k < count && agents[i]->state == VIGIL__AGENT_STATE__AGENT_STATE_PENDING;
             k++) {
            if (k != i && agents[k]->state != VIGIL__AGENT_STATE__AGENT_STATE_REVOKED &&
                agents[k]->state != VIGIL__AGENT_STATE__AGENT_STATE_PENDING &&
                strcmp(agents[k]->node, agents[i]->node) == 0) {
                holder = agents[k];
                break;
            }
        }
        fill_agent_info(&infos[rep->msg.n_agents], agents[i], holder);
        ptrs[rep->msg.n_agents] = &infos[rep->msg.n_agents];
        rep->msg.n_agents++;
    }
    free(agents);
    rep->msg.agents = ptrs;
}

static void list_agents(admin_t *self, const struct operator* op, const Vigil__AdminRequest *req,
                        struct reply *rep)
{
    (void)op;
    registry_lock(self->registry);
    reply_agents(self, NULL, req->list_agents->cursor, req->list_agents->limit, rep);
    registry_unlock(self->registry);
}

static const char *check_list(const Vigil__AdminRequest *req)
{
    if (req->list_agents->limit > AGENTS_PAGE_MAX)
        return "at most 10000 agents per page";
    return vg_text_fits(req->list_agents->cursor, VG_MAX_NAME_LEN) ? NULL : "cursor too long";
}

/* Another agent than except reports for node and is active: the node is still up. */
static bool node_has_other_active(admin_t *self, const char *node, const struct agent *except)
{
    for (const struct agent *a = registry_agent_next(self->registry, NULL); a;
         a = registry_agent_next(self->registry, a))
        if (a != except && a->state == VIGIL__AGENT_STATE__AGENT_STATE_ACTIVE &&
            strcmp(a->node, node) == 0)
            return true;
    return false;
}

/*
 * approve of an agent that asked for another node name (router.c keeps the old one until
 * then): the name moves, unless another agent holds it. The rule engine hears the old node go
 * and the new one come.
 */
static void rename_agent(admin_t *self, const struct operator* op, struct agent *a,
                         const char *actor, struct reply *rep)
{
    const struct agent *holder = registry_node_holder(self->registry, a->requested_node, a);
    if (holder) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_CONFLICT,
                    "node %s is held by agent %s (%s): revoke it first if %s replaces it",
                    a->requested_node, holder->id, agent_state_name(holder->state), a->id);
        return;
    }
    if (store_agent_rename(self->store, a->id, a->requested_node, actor) < 0) {
        reply_store_unavailable(rep, true);
        return;
    }
    char old[sizeof(a->node)];
    snprintf(old, sizeof(old), "%s", a->node);
    snprintf(a->node, sizeof(a->node), "%s", a->requested_node);
    a->requested_node[0] = '\0';
    vg_log(VG_LOG_INFO, "agent=%s renamed node=%s previous=%s by operator=%s", a->id, a->node, old,
           op->name);
    int64_t now = vg_wall_ms();
    if (a->state == VIGIL__AGENT_STATE__AGENT_STATE_ACTIVE) {
        if (!node_has_other_active(self, old, a))
            admin_node_change(self, old, false, now);
        admin_node_change(self, a->node, true, now);
    }
    reply_agents(self, a->id, NULL, 0, rep);
}

/* approve: pending -> active (or a rename); revoke: anything -> revoked (effective on the
 * agent's next message). */
static void change_agent(admin_t *self, const struct operator* op, const char *id,
                         Vigil__AgentState target, struct reply *rep)
{
    struct agent *a = registry_agent(self->registry, id);
    const char *verb = target == VIGIL__AGENT_STATE__AGENT_STATE_REVOKED ? "revoke" : "approve";
    char actor[160];

    if (!a) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_NOT_FOUND, "agent %s not found", id);
        return;
    }
    if (a->state == VIGIL__AGENT_STATE__AGENT_STATE_REVOKED) {
        reply_error(
            rep, VIGIL__ADMIN_STATUS__ADMIN_CONFLICT,
            "agent %s is revoked; a revoked key cannot come back (re-enroll with a new key)", id);
        return;
    }
    admin_actor(op, actor, sizeof(actor));
    if (target == VIGIL__AGENT_STATE__AGENT_STATE_ACTIVE &&
        a->state != VIGIL__AGENT_STATE__AGENT_STATE_PENDING) {
        if (a->requested_node[0])
            rename_agent(self, op, a, actor, rep);
        else /* already admitted (by an earlier approve, or by its token): nothing to do */
            reply_agents(self, a->id, NULL, 0, rep);
        return;
    }
    /* A node name belongs to the key that holds it: a new key for it is approved only once the
     * operator has revoked the old one (the node was rebuilt), never beside it. */
    const struct agent *holder = target == VIGIL__AGENT_STATE__AGENT_STATE_ACTIVE
                                     ? registry_node_holder(self->registry, a->node, a)
                                     : NULL;
    if (holder) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_CONFLICT,
                    "node %s is held by agent %s (%s): if this key replaces it, revoke it first "
                    "(vigilctl agents revoke %s)",
                    a->node, holder->id, agent_state_name(holder->state), holder->id);
        return;
    }
    int64_t now = vg_wall_ms();
    if (store_agent_set_state(self->store, id, target, now, actor,
                              target == VIGIL__AGENT_STATE__AGENT_STATE_REVOKED
                                  ? "revoked by operator"
                                  : "approved by operator") < 0) {
        reply_store_unavailable(rep, true);
        return;
    }
    bool was_up = a->state == VIGIL__AGENT_STATE__AGENT_STATE_ACTIVE;
    bool is_up = target == VIGIL__AGENT_STATE__AGENT_STATE_ACTIVE;
    a->state = target;
    a->state_since_ms = now;
    /* An approved agent starts its liveness period now. */
    a->last_seen_mono = vg_mono_ms();
    vg_log(VG_LOG_INFO, "agent=%s node=%s %sd by operator=%s", a->id, a->node, verb, op->name);
    /* As the router does for enrollment and liveness: only up <-> not up is news. */
    if (was_up != is_up && (is_up || !node_has_other_active(self, a->node, a)))
        admin_node_change(self, a->node, is_up, now);
    reply_agents(self, id, NULL, 0, rep);
}

static const char *check_approve(const Vigil__AdminRequest *req)
{
    return vg_text_fits(req->approve_agent->id, VG_MAX_NAME_LEN) ? NULL : "agent id too long";
}

static const char *check_revoke(const Vigil__AdminRequest *req)
{
    return vg_text_fits(req->revoke_agent->id, VG_MAX_NAME_LEN) ? NULL : "agent id too long";
}

/*
 * The registry's lock is held across the one statement an approval or a revocation writes: the
 * router changes the same agents (liveness, pending agents forgotten), and the store and the
 * registry must agree on who is revoked. The main loop waits for that statement at most; no
 * other operator request holds the lock across the database.
 */
static void approve_agent(admin_t *self, const struct operator* op, const Vigil__AdminRequest *req,
                          struct reply *rep)
{
    registry_lock(self->registry);
    change_agent(self, op, req->approve_agent->id, VIGIL__AGENT_STATE__AGENT_STATE_ACTIVE, rep);
    registry_unlock(self->registry);
}

static void revoke_agent(admin_t *self, const struct operator* op, const Vigil__AdminRequest *req,
                         struct reply *rep)
{
    registry_lock(self->registry);
    change_agent(self, op, req->revoke_agent->id, VIGIL__AGENT_STATE__AGENT_STATE_REVOKED, rep);
    registry_unlock(self->registry);
}

const struct admin_command admin_agent_commands[] = {
    {VIGIL__ADMIN_REQUEST__BODY_LIST_AGENTS, ROLE_VIEWER, "listing agents", check_list,
     list_agents},
    {VIGIL__ADMIN_REQUEST__BODY_APPROVE_AGENT, ROLE_ADMIN, "approving agents", check_approve,
     approve_agent},
    {VIGIL__ADMIN_REQUEST__BODY_REVOKE_AGENT, ROLE_ADMIN, "revoking agents", check_revoke,
     revoke_agent},
    {0},
};
