/*
 * The agents' socket (ROUTER, CURVE server, ZAP domain VG_ZAP_DOMAIN_AGENTS): enrollment,
 * heartbeats and liveness, and ingest of durable messages.
 *
 * Every received message is checked against the registry by its authenticated User-Id (ZAP
 * runs only at the handshake, so a key revoked later is caught here) and against the sender
 * id it claims. Durable messages (signal batches, evidence chunks) are drained in batches,
 * stored in one transaction, and only then acknowledged: an ack means "committed".
 *
 * CollectRequests (evidence.h) and command capsules (remediate.h) are queued by the admin side
 * on inproc pipes and sent from here, the socket's one owner, to the connection each agent last
 * spoke on. An agent's Enroll declares its action catalog, kept in the registry and the store;
 * its CommandReports are durable messages, stored in the ingest transaction like evidence, and
 * commands whose capsule expired without a report are marked lost on the tick.
 */
#ifndef COORD_ROUTER_H
#define COORD_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keys.h"
#include "registry.h"
#include "store.h"

/*
 * Who hears what the agents' traffic means, beyond the store (the rule engine, correlate.h).
 * Called on the main thread: signals once per stored batch after its commit and ack (node is
 * the sending agent's node), agent_state when an agent becomes active (up) or is lost or
 * revoked (down), wall-clock at_ms. Either may be NULL.
 */
struct router_observer {
    void (*signals)(void *userdata, const char *node, const Vigil__SignalBatch *batch);
    void (*agent_state)(void *userdata, const char *node, bool up, int64_t at_ms);
    void *userdata;
};

struct router_config {
    const char *endpoint;
    const struct vg_keypair *server_keys;
    int64_t heartbeat_interval_ms;
    int64_t missed_heartbeats;
    const void *enroll_secret; /* NULL = no bootstrap tokens */
    size_t enroll_secret_len;
    int64_t enroll_rate_per_minute; /* 0 = unlimited */
    int64_t pending_max;            /* agents waiting for approval at once */
    int64_t max_series_per_agent;   /* distinct signal series one agent may have; 0 = no bound */
    int64_t pending_ttl_ms;         /* a pending agent older than this is forgotten */
    int64_t incomplete_evidence_grace_ms; /* chunks of a failed, incomplete artifact go after */
    struct router_observer observer;      /* copied; all NULL = nobody listens */
    /* Messages queued per agent connection before libzmq stops reading it (ZMQ_RCVHWM); 0 = the
     * default, 2, which bounds memory under full ingest. Tests that need several messages of
     * one connection in one batch set more. */
    int receive_queue_messages;
};

typedef struct router router_t;

router_t *router_new(void *ctx, const struct router_config *cfg, registry_t *registry,
                     store_t *store, char *err, size_t errlen);
void router_destroy(router_t **self_p);

void *router_socket(router_t *self);

/* Drains what is waiting in bounded batches (the next one received while the previous one is
 * committed), stores each in one transaction, and acknowledges it after its commit. */
void router_handle(router_t *self);

/* Once a second: marks silent agents lost, flushes agent health, refreshes agent metrics,
 * sends queued CollectRequests and capsules, fails evidence targets past their deadline and
 * marks commands lost or expired. */
void router_tick(router_t *self);

/* Sends what the admin thread queued for agents (collect requests) now, not at the next tick:
 * the main loop calls it when router_requests_socket is readable. */
void router_send_requests(router_t *self);
/* The inproc pipe the admin thread queues requests on (the router's end, to poll). */
void *router_requests_socket(router_t *self);
/* The same for command capsules (remediate.h): poll it too and call router_send_requests. */
void *router_commands_socket(router_t *self);

#endif
