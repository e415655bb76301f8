/*
 * Evidence on demand, the coordinator's side: an operator's Collect becomes a recorded
 * collection and one CollectRequest per target agent; the chunks agents send back are stored
 * and verified by the store during ingest (store_ingest); this module says what came of them
 * (log lines, metrics) and fails the targets that never answered before their deadline.
 *
 * The agents' socket belongs to the router, so the admin thread does not send on it: it queues
 * each CollectRequest on an inproc PAIR pipe (the requester, bound) and the router's loop
 * drains the pipe (the dispatcher, connected) and sends from the thread that owns the socket.
 * Pipe message: [agent id][collection id, 8 bytes host order][packed Envelope{collect}].
 */
#ifndef COORD_EVIDENCE_H
#define COORD_EVIDENCE_H

#include <stddef.h>
#include <stdint.h>

#include "registry.h"
#include "store.h"
#include "vigil.pb-c.h"

#define EVIDENCE_PIPE_ENDPOINT "inproc://vigil-evidence-requests"
#define EVIDENCE_DEFAULT_TIMEOUT_MS 60000
#define EVIDENCE_MIN_TIMEOUT_MS 500
#define EVIDENCE_MAX_TIMEOUT_MS (60 * 60 * 1000)

/* ---- the admin side ---- */

typedef struct evidence_requester evidence_requester_t;

evidence_requester_t *evidence_requester_new(void *zmq_ctx, char *err, size_t errlen);
void evidence_requester_destroy(evidence_requester_t **self_p);

/* Where the promql kind is captured (promql_evidence.h); borrowed, it outlives the requester.
 * NULL (the default): Prometheus is not configured, and a promql collection fails saying so. */
struct promql;
void evidence_requester_set_promql(evidence_requester_t *self, struct promql *promql);

/*
 * Validates an operator's Collect (known kind, node or all, distinct argument keys, timeout),
 * picks the active agents it names (for promql: neither node nor all, a query argument, and the
 * coordinator as the one target, captured by promql_evidence_start) (under registry_lock, released
 * before the store is written), records the collection (for incident_id's investigation when not 0)
 * and queues one CollectRequest per agent. Returns 0 with *ret_collection_id set; or a negative
 * errno with *ret_status (the AdminStatus to answer) and a message for the operator in err.
 * Refusals are counted in vigil_evidence_requests_refused_total.
 */
int evidence_collect(evidence_requester_t *self, store_t *store, registry_t *registry,
                     const char *actor, const Vigil__Collect *req, uint64_t incident_id,
                     uint64_t *ret_collection_id, Vigil__AdminStatus *ret_status, char *err,
                     size_t errlen);

/* ---- the router side ---- */

typedef struct evidence_dispatcher evidence_dispatcher_t;

evidence_dispatcher_t *evidence_dispatcher_new(void *zmq_ctx, char *err, size_t errlen);
void evidence_dispatcher_destroy(evidence_dispatcher_t **self_p);
/* The pipe's receiving end: readable when requests are queued (for the router's poll). */
void *evidence_dispatcher_socket(evidence_dispatcher_t *self);

/* Sends buf to agent_id on the agents' socket: 0, or a negative errno with why set. */
typedef int (*evidence_send_fn)(void *userdata, const char *agent_id, const void *buf, size_t len,
                                char *why, size_t whylen);

/* Sends every queued CollectRequest through send; one that cannot be delivered fails its
 * target at once with the reason. Never blocks. */
void evidence_dispatch(evidence_dispatcher_t *self, store_t *store, evidence_send_fn send,
                       void *userdata);

/* ---- outcomes ---- */

/* Logs and counts what ingest or expiry decided (after the commit that made it so). */
void evidence_report(const struct store_evidence_events *events);

/* Fails the targets past their deadline ("timed out"), and reports them. */
void evidence_expire(store_t *store);

#endif
