/*
 * The coordinator's store: PostgreSQL through libpq.
 *
 * store_open connects (to store.url, or to a private cluster it starts under the state
 * directory when no url is configured — see embedded.h), applies the numbered migrations
 * in coordinator/store/sql/ inside one transaction, and records them in schema_migrations.
 *
 * All calls are synchronous and made from the coordinator's main loop. Every function
 * returns 0 or a negative errno; on -EIO (connection lost) the next call reconnects.
 * libpq error text is logged here, at the boundary.
 */
#ifndef COORD_STORE_H
#define COORD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigil.pb-c.h"

typedef struct store store_t;

struct store_config {
    const char *url;          /* libpq connection string; NULL or "" = private embedded cluster */
    const char *state_dir;    /* embedded cluster lives in <state_dir>/pgdata */
    const char *pg_bin_dir;   /* directory of initdb/pg_ctl; NULL = auto-detect */
    int64_t start_timeout_ms; /* keep retrying the first connection this long */
};

/* NULL on failure with err set. Exit code policy is the caller's. */
store_t *store_open(const struct store_config *cfg, char *err, size_t errlen);
/* Closes the connection and stops the embedded cluster if store_open started it. */
void store_destroy(store_t **self_p);

/* True when a trivial query succeeds now (reconnects if needed). */
bool store_ping(store_t *self);

/* ---- agents ---- */
struct store_agent {
    char id[32];
    char public_key[41];
    char node[256];
    Vigil__AgentState state;
    char agent_version[64];
    int64_t enrolled_at_ms;
    int64_t state_since_ms;
    int64_t last_seen_ms; /* 0 = never */
    uint64_t spool_depth;
    uint64_t dropped_messages;
};

/* Calls cb for every agent (any state). Stops early if cb returns non-zero. */
int store_agents_load(store_t *self, int (*cb)(const struct store_agent *agent, void *userdata),
                      void *userdata);

/* Inserts a new agent or updates node/version of an existing one (state untouched unless new). */
int store_agent_upsert(store_t *self, const struct store_agent *agent);

/* Records a state change with its time, and an audit_log row naming actor and reason. */
int store_agent_set_state(store_t *self, const char *id, Vigil__AgentState state,
                          int64_t at_ms, const char *actor, const char *reason);

struct store_agent_health {
    const char *id;
    int64_t last_seen_ms;
    const char *agent_version;
    uint64_t uptime_s, spool_depth, spool_bytes, dropped_messages, dropped_samples;
};
/* Writes the latest health of many agents in one statement. */
int store_agents_health(store_t *self, const struct store_agent_health *rows, size_t n);

/* ---- operators ---- */
struct store_operator {
    char id[32];
    char name[128];
    char public_key[41];
    char role[16]; /* viewer | responder | admin */
    bool revoked;
};
int store_operators_load(store_t *self,
                         int (*cb)(const struct store_operator *op, void *userdata),
                         void *userdata);
/* Inserts the operator if its key is not present; never changes an existing one. */
int store_operator_ensure(store_t *self, const struct store_operator *op);

/* ---- ingest ---- */
/*
 * Stores durable agent messages (seq >= 1) in one transaction: each (sender, seq) at most
 * once (duplicates are ignored and count as stored), signal samples written with COPY.
 * When this returns 0 every message in msgs is committed and may be acknowledged.
 * ret_new counts messages that were not already stored.
 */
int store_ingest(store_t *self, Vigil__Envelope *const *msgs, size_t n, size_t *ret_new);

/* ---- latest signals ---- */
struct store_signal {
    const char *agent_id;
    const char *node;
    const char *name;
    const char *labels_json; /* a JSON object of label pairs */
    const char *unit;
    double value;
    int state; /* Vigil__SignalState */
    int64_t ts_ms;
};
/*
 * Calls cb with the latest sample of every series (of agents on node, or all when node is
 * NULL or ""), ordered by node, name, labels. Stops early if cb returns non-zero.
 */
int store_signals_latest(store_t *self, const char *node,
                         int (*cb)(const struct store_signal *sig, void *userdata), void *userdata);

/* ---- audit ---- */
int store_audit(store_t *self, const char *actor, const char *action, const char *subject,
                const char *detail);

#endif
