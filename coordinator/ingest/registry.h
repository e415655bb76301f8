/*
 * Who may talk to the coordinator: the in-memory view of the agents and operators tables.
 *
 * The registry is loaded from the store at start and is the one owner of agent and operator
 * state afterwards; every change goes to the store first and then here, so the ZAP handler and
 * the per-message checks answer from memory without a database round trip.
 *
 * Two threads use it: the main loop (ZAP, the router) and the admin thread (vigilctl). Whoever
 * reads or changes it holds registry_lock for that whole step, and never across a database
 * call it could avoid: the main loop around serving its sockets and its tick, the admin thread
 * around the in-memory part of a request. Pointers into the registry are valid only while the
 * lock is held; copy what must outlive it.
 */
#ifndef COORD_REGISTRY_H
#define COORD_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "capsule.h"
#include "keys.h"
#include "store.h"

/* One action of an agent's catalog, as it declared it at enrollment (Enroll.actions). */
#define AGENT_ACTIONS_MAX 256
struct agent_action {
    char name[VG_MAX_NAME_LEN + 1];
    char kind[16];
    enum vg_action_mode mode;
    char params[16 * 34]; /* parameter names, comma-separated, in catalog order */
    bool root;
    char inverse[VG_MAX_NAME_LEN + 1];
    uint64_t evidence_digest; /* of the evidence entries' JSON (agents.actions): a change shows */
};

struct agent {
    char id[32]; /* VG_AGENT_ID_LEN used; sized like struct store_agent's */
    char public_key[VG_KEY_Z85_LEN + 1];
    char node[256];
    char requested_node[256]; /* a rename waiting for an operator; "" = none */
    char agent_version[64];
    Vigil__AgentState state;
    int64_t enrolled_at_ms;
    int64_t state_since_ms;
    int64_t last_seen_ms;   /* wall clock, for people */
    int64_t last_seen_mono; /* monotonic, for liveness */
    uint64_t uptime_s, spool_depth, spool_bytes, dropped_messages, dropped_samples;
    bool health_dirty; /* health changed since the last flush to the store */
    /* The catalog from its latest enrollment (owned by the registry's entry: registry_agent_add
     * does not take a caller's array; set it with registry_agent_set_actions). */
    struct agent_action *actions;
    size_t nactions;
    bool cluster; /* role: cluster in its latest enrollment (kept like the catalog) */
};

enum operator_role {
    ROLE_VIEWER = 1,
    ROLE_RESPONDER = 2,
    ROLE_ADMIN = 3,
};

/* An active operator (revoked ones are not in the registry). */
struct operator
{
    char id[32];
    char name[128];
    char public_key[VG_KEY_Z85_LEN + 1];
    char signing_key[45]; /* Ed25519 public key, base64; "" = none registered */
    enum operator_role role;
};

typedef struct registry registry_t;

registry_t *registry_new(void);
void registry_destroy(registry_t **self_p);

/* The registry's lock (see above): fair, in the order it was asked for. Not recursive. */
void registry_lock(registry_t *self);
void registry_unlock(registry_t *self);

/* Loads agents and operators from the store (replacing nothing: call once, at start). */
int registry_load(registry_t *self, store_t *store);

struct agent *registry_agent(registry_t *self, const char *id);
/* Adds a new agent entry (copied). NULL on allocation failure. */
struct agent *registry_agent_add(registry_t *self, const struct agent *agent);
/* Removes and frees the entry (after its store row is gone); no walk may be under way. */
void registry_agent_remove(registry_t *self, const char *id);
/* Iteration: pass NULL to start. The table must not change during a walk. */
/* Replaces the agent's catalog with a copy of actions. 0 or -ENOMEM (the old one kept). */
int registry_agent_set_actions(struct agent *agent, const struct agent_action *actions, size_t n);
/* The agent's action called name, or NULL. */
const struct agent_action *agent_action_find(const struct agent *agent, const char *name);
/* "auto", "approve", "destructive"; and back (0 or -EINVAL). */
const char *agent_action_mode_name(enum vg_action_mode mode);
int agent_action_mode_parse(const char *text, enum vg_action_mode *ret);
struct agent *registry_agent_next(registry_t *self, const struct agent *prev);
size_t registry_agent_count(const registry_t *self);
/* The agent other than except (may be NULL) that holds node: the first one not revoked. A node
 * name belongs to the key that enrolled it first until an operator says otherwise. */
struct agent *registry_node_holder(registry_t *self, const char *node, const struct agent *except);

const struct operator* registry_operator_by_key(registry_t *self, const char *public_z85);
/* The operator with that id copied into *ret (false: none). The one operator lookup that needs
 * no registry_lock: the admin thread finds who sent a request without waiting for the main
 * loop. Every registry_operator_* call takes the operators table's own lock inside; a pointer
 * one returns stays valid only under registry_lock, which every change holds. */
bool registry_operator_copy_by_id(registry_t *self, const char *id, struct operator* ret);
/* Adds the operator (copied), or replaces the entry with its public key. 0 or -ENOMEM. */
int registry_operator_add(registry_t *self, const struct operator* op);
/* The active operator called name, or NULL. */
const struct operator* registry_operator_by_name(registry_t *self, const char *name);
/* How many active operators have role. */
size_t registry_operator_count(registry_t *self, enum operator_role role);
/* Removes the operator with that public key (revoked in the store): ZAP refuses the key from
 * then on, and requests on its open connections find no operator. -ENOENT when absent. */
int registry_operator_revoke(registry_t *self, const char *public_z85);
/* The operator with old_public_z85 (rotated in the store) gives way to op: the old key is
 * refused at once. Nothing changes on failure (-ENOMEM; -ENOENT when old is absent). */
int registry_operator_replace(registry_t *self, const char *old_public_z85,
                              const struct operator* op);
/* An operator's id, from its CURVE public key: "op-" and 16 hex digits of its SHA-256 (as an
 * agent's id is; vg_agent_id_from_key). */
#define OPERATOR_ID_LEN VG_AGENT_ID_LEN
void operator_id_from_key(const char *public_z85, char ret_id[OPERATOR_ID_LEN + 1]);

const char *agent_state_name(Vigil__AgentState state);
const char *operator_role_name(enum operator_role role);
int operator_role_parse(const char *text, enum operator_role *ret);

#endif
