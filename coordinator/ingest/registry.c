#include "registry.h"

#include <czmq.h>
#include <errno.h>
#include <string.h>

#include "log.h"
#include "timeutil.h"
#include "wire.h"

struct registry {
    zhashx_t *agents;    /* id -> struct agent (owned) */
    zhashx_t *operators; /* public key -> struct operator (owned) */
};

static void free_entry(void **item)
{
    free(*item);
    *item = NULL;
}

registry_t *registry_new(void)
{
    registry_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->agents = zhashx_new();
    self->operators = zhashx_new();
    if (!self->agents || !self->operators) {
        registry_destroy(&self);
        return NULL;
    }
    zhashx_set_destructor(self->agents, free_entry);
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
    free(self);
    *self_p = NULL;
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
    /* zhashx_insert refuses duplicates; replacing keeps the table's one entry per id. */
    zhashx_update(self->agents, copy->id, copy);
    return copy;
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
    return zhashx_lookup(self->operators, public_z85);
}

const struct operator* registry_operator_by_id(registry_t *self, const char *id)
{
    for (struct operator* op = zhashx_first(self->operators); op;
         op = zhashx_next(self->operators)) {
        if (strcmp(op->id, id) == 0)
            return op;
    }
    return NULL;
}

int registry_operator_add(registry_t *self, const struct operator* op)
{
    struct operator* copy = malloc(sizeof(*copy));
    if (!copy)
        return -ENOMEM;
    *copy = *op;
    zhashx_update(self->operators, copy->public_key, copy);
    return 0;
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
