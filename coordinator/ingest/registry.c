#include "registry.h"

#include <czmq.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "log.h"
#include "timeutil.h"
#include "wire.h"

struct registry {
    zhashx_t *agents;    /* id -> struct agent (owned) */
    zhashx_t *operators; /* public key -> struct operator (owned) */
    /* registry_lock: a ticket lock, so that the admin thread gets its turn in order although
     * the main loop takes the lock again right after releasing it. */
    pthread_mutex_t lock;
    pthread_cond_t turn;
    unsigned long next_ticket, serving;
    /* The operators table alone: taken inside every registry_operator_* call, so that the admin
     * thread can look up who sent a request without waiting for the main loop's turn. */
    pthread_mutex_t operators_lock;
};

static void free_entry(void **item)
{
    free(*item);
    *item = NULL;
}

static void free_agent(void **item)
{
    struct agent *a = *item;
    if (a)
        free(a->actions);
    free(a);
    *item = NULL;
}

registry_t *registry_new(void)
{
    registry_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    pthread_mutex_init(&self->lock, NULL);
    pthread_cond_init(&self->turn, NULL);
    pthread_mutex_init(&self->operators_lock, NULL);
    self->agents = zhashx_new();
    self->operators = zhashx_new();
    if (!self->agents || !self->operators) {
        registry_destroy(&self);
        return NULL;
    }
    zhashx_set_destructor(self->agents, free_agent);
    zhashx_set_destructor(self->operators, free_entry);
    return self;
}

void registry_destroy(registry_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    registry_t *self = *self_p;
    zhashx_destroy(&self->agents);
    zhashx_destroy(&self->operators);
    pthread_mutex_destroy(&self->lock);
    pthread_cond_destroy(&self->turn);
    pthread_mutex_destroy(&self->operators_lock);
    free(self);
    *self_p = NULL;
}

void registry_lock(registry_t *self)
{
    pthread_mutex_lock(&self->lock);
    unsigned long mine = self->next_ticket++;
    while (self->serving != mine)
        pthread_cond_wait(&self->turn, &self->lock);
    pthread_mutex_unlock(&self->lock);
}

void registry_unlock(registry_t *self)
{
    pthread_mutex_lock(&self->lock);
    self->serving++;
    pthread_cond_broadcast(&self->turn);
    pthread_mutex_unlock(&self->lock);
}

static int load_agent(const struct store_agent *row, void *userdata)
{
    registry_t *self = userdata;
    struct agent agent = {0};

    snprintf(agent.id, sizeof(agent.id), "%s", row->id);
    snprintf(agent.public_key, sizeof(agent.public_key), "%s", row->public_key);
    snprintf(agent.node, sizeof(agent.node), "%s", row->node);
    snprintf(agent.requested_node, sizeof(agent.requested_node), "%s", row->requested_node);
    snprintf(agent.agent_version, sizeof(agent.agent_version), "%s", row->agent_version);
    agent.state = row->state;
    agent.enrolled_at_ms = row->enrolled_at_ms;
    agent.state_since_ms = row->state_since_ms;
    agent.last_seen_ms = row->last_seen_ms;
    /* After a restart every agent gets a full liveness period to show up again. */
    agent.last_seen_mono = vg_mono_ms();
    agent.spool_depth = row->spool_depth;
    agent.dropped_messages = row->dropped_messages;
    return registry_agent_add(self, &agent) ? 0 : -ENOMEM;
}

static int load_operator(const struct store_operator *row, void *userdata)
{
    registry_t *self = userdata;
    struct operator op = {0};

    if (row->revoked)
        return 0;
    if (operator_role_parse(row->role, &op.role) < 0) {
        vg_log(VG_LOG_WARN, "operator=%s role=%s: unknown role, operator ignored", row->id,
               row->role);
        return 0;
    }
    snprintf(op.id, sizeof(op.id), "%s", row->id);
    snprintf(op.name, sizeof(op.name), "%s", row->name);
    snprintf(op.public_key, sizeof(op.public_key), "%s", row->public_key);
    snprintf(op.signing_key, sizeof(op.signing_key), "%s", row->signing_key);
    return registry_operator_add(self, &op);
}

int registry_load(registry_t *self, store_t *store)
{
    int r = store_agents_load(store, load_agent, self);
    if (r < 0)
        return r;
    return store_operators_load(store, load_operator, self);
}

struct agent *registry_agent(registry_t *self, const char *id)
{
    return zhashx_lookup(self->agents, id);
}

void registry_agent_remove(registry_t *self, const char *id)
{
    zhashx_delete(self->agents, id);
}

struct agent *registry_node_holder(registry_t *self, const char *node, const struct agent *except)
{
    for (struct agent *a = zhashx_first(self->agents); a; a = zhashx_next(self->agents)) {
        if (a != except && a->state != VIGIL__AGENT_STATE__AGENT_STATE_REVOKED &&
            strcmp(a->node, node) == 0)
            return a;
    }
    return NULL;
}

struct agent *registry_agent_add(registry_t *self, const struct agent *agent)
{
    struct agent *copy = malloc(sizeof(*copy));
    if (!copy)
        return NULL;
    *copy = *agent;
    copy->actions = NULL;
    copy->nactions = 0;
    /* An entry replaced keeps its catalog and role (an agent's row reloaded is the same
     * agent). */
    const struct agent *old = zhashx_lookup(self->agents, agent->id);
    if (old)
        copy->cluster = old->cluster || agent->cluster;
    if (old && old->nactions > 0 &&
        registry_agent_set_actions(copy, old->actions, old->nactions) < 0) {
        free(copy);
        return NULL;
    }
    /* zhashx_insert refuses duplicates; replacing keeps the table's one entry per id. */
    zhashx_update(self->agents, copy->id, copy);
    return copy;
}

int registry_agent_set_actions(struct agent *agent, const struct agent_action *actions, size_t n)
{
    struct agent_action *copy = NULL;
    if (n > 0) {
        copy = malloc(n * sizeof(*copy));
        if (!copy)
            return -ENOMEM;
        memcpy(copy, actions, n * sizeof(*copy));
    }
    free(agent->actions);
    agent->actions = copy;
    agent->nactions = n;
    return 0;
}

const struct agent_action *agent_action_find(const struct agent *agent, const char *name)
{
    for (size_t i = 0; i < agent->nactions; i++) {
        if (strcmp(agent->actions[i].name, name) == 0)
            return &agent->actions[i];
    }
    return NULL;
}

const char *agent_action_mode_name(enum vg_action_mode mode)
{
    switch (mode) {
    case VG_ACTION_MODE_AUTO:
        return "auto";
    case VG_ACTION_MODE_APPROVE:
        return "approve";
    case VG_ACTION_MODE_DESTRUCTIVE:
        return "destructive";
    }
    return "approve";
}

int agent_action_mode_parse(const char *text, enum vg_action_mode *ret)
{
    static const enum vg_action_mode modes[] = {VG_ACTION_MODE_AUTO, VG_ACTION_MODE_APPROVE,
                                                VG_ACTION_MODE_DESTRUCTIVE};
    for (size_t i = 0; text && i < sizeof(modes) / sizeof(modes[0]); i++) {
        if (strcmp(text, agent_action_mode_name(modes[i])) == 0) {
            *ret = modes[i];
            return 0;
        }
    }
    return -EINVAL;
}

struct agent *registry_agent_next(registry_t *self, const struct agent *prev)
{
    return prev ? zhashx_next(self->agents) : zhashx_first(self->agents);
}

size_t registry_agent_count(const registry_t *self)
{
    return zhashx_size(self->agents);
}

const struct operator* registry_operator_by_key(registry_t *self, const char *public_z85)
{
    pthread_mutex_lock(&self->operators_lock);
    const struct operator* op = zhashx_lookup(self->operators, public_z85);
    pthread_mutex_unlock(&self->operators_lock);
    return op;
}

/* Under operators_lock. */
static const struct operator* operator_by_id(registry_t *self, const char *id)
{
    for (struct operator* op = zhashx_first(self->operators); op;
         op = zhashx_next(self->operators)) {
        if (strcmp(op->id, id) == 0)
            return op;
    }
    return NULL;
}

bool registry_operator_copy_by_id(registry_t *self, const char *id, struct operator* ret)
{
    pthread_mutex_lock(&self->operators_lock);
    const struct operator* op = operator_by_id(self, id);
    if (op)
        *ret = *op;
    pthread_mutex_unlock(&self->operators_lock);
    return op != NULL;
}

/* Under operators_lock. */
static int operator_add(registry_t *self, const struct operator* op)
{
    struct operator* copy = malloc(sizeof(*copy));
    if (!copy)
        return -ENOMEM;
    *copy = *op;
    zhashx_update(self->operators, copy->public_key, copy);
    return 0;
}

int registry_operator_add(registry_t *self, const struct operator* op)
{
    pthread_mutex_lock(&self->operators_lock);
    int r = operator_add(self, op);
    pthread_mutex_unlock(&self->operators_lock);
    return r;
}

const struct operator* registry_operator_by_name(registry_t *self, const char *name)
{
    const struct operator* found = NULL;
    pthread_mutex_lock(&self->operators_lock);
    for (struct operator* op = zhashx_first(self->operators); op && !found;
         op = zhashx_next(self->operators)) {
        if (strcmp(op->name, name) == 0)
            found = op;
    }
    pthread_mutex_unlock(&self->operators_lock);
    return found;
}

size_t registry_operator_count(registry_t *self, enum operator_role role)
{
    size_t n = 0;
    pthread_mutex_lock(&self->operators_lock);
    for (struct operator* op = zhashx_first(self->operators); op; op = zhashx_next(self->operators))
        n += op->role == role;
    pthread_mutex_unlock(&self->operators_lock);
    return n;
}

int registry_operator_revoke(registry_t *self, const char *public_z85)
{
    int r = 0;
    pthread_mutex_lock(&self->operators_lock);
    if (zhashx_lookup(self->operators, public_z85))
        zhashx_delete(self->operators, public_z85);
    else
        r = -ENOENT;
    pthread_mutex_unlock(&self->operators_lock);
    return r;
}

int registry_operator_replace(registry_t *self, const char *old_public_z85,
                              const struct operator* op)
{
    pthread_mutex_lock(&self->operators_lock);
    if (!zhashx_lookup(self->operators, old_public_z85)) {
        pthread_mutex_unlock(&self->operators_lock);
        return -ENOENT;
    }
    char old[VG_KEY_Z85_LEN + 1];
    snprintf(old, sizeof(old), "%s", old_public_z85); /* may point into the entry deleted */
    int r = operator_add(self, op);
    if (r == 0 && strcmp(old, op->public_key) != 0)
        zhashx_delete(self->operators, old);
    pthread_mutex_unlock(&self->operators_lock);
    return r;
}

void operator_id_from_key(const char *public_z85, char ret_id[OPERATOR_ID_LEN + 1])
{
    char agent_id[VG_AGENT_ID_LEN + 1];
    vg_agent_id_from_key(public_z85, agent_id);
    snprintf(ret_id, OPERATOR_ID_LEN + 1, "op-%s", agent_id + 3);
}

const char *agent_state_name(Vigil__AgentState state)
{
    const char *name = vg_agent_state_name(state);
    return name ? name : "unknown";
}

static const char *const role_names[] = {NULL, "viewer", "responder", "admin"};

const char *operator_role_name(enum operator_role role)
{
    return role >= ROLE_VIEWER && role <= ROLE_ADMIN ? role_names[role] : "unknown";
}

int operator_role_parse(const char *text, enum operator_role *ret)
{
    for (int r = ROLE_VIEWER; r <= ROLE_ADMIN; r++) {
        if (strcmp(text, role_names[r]) == 0) {
            *ret = (enum operator_role)r;
            return 0;
        }
    }
    return -EINVAL;
}
