#include "evidence.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "log.h"
#include "metrics.h"
#include "promql_evidence.h"
#include "timeutil.h"
#include "wire.h"

/* Queued requests the pipe holds before the router drains it (once a second at least). */
#define PIPE_HWM 100000
#define AGENT_ID_MAX 64

struct evidence_requester {
    void *pipe;       /* PAIR, bound; used from the admin side only */
    promql_t *promql; /* borrowed; NULL = no Prometheus configured */
};

struct evidence_dispatcher {
    void *pipe; /* PAIR, connected; used from the router's loop only */
};

static void *pipe_socket(void *zmq_ctx, bool bind, char *err, size_t errlen)
{
    return vg_zmq_pipe_open(zmq_ctx, EVIDENCE_PIPE_ENDPOINT, bind, PIPE_HWM,
                            "evidence request pipe", err, errlen);
}

evidence_requester_t *evidence_requester_new(void *zmq_ctx, char *err, size_t errlen)
{
    evidence_requester_t *self = calloc(1, sizeof(*self));
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->pipe = pipe_socket(zmq_ctx, true, err, errlen);
    if (!self->pipe)
        evidence_requester_destroy(&self);
    return self;
}

void evidence_requester_destroy(evidence_requester_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    if ((*self_p)->pipe)
        zmq_close((*self_p)->pipe);
    free(*self_p);
    *self_p = NULL;
}

void evidence_requester_set_promql(evidence_requester_t *self, struct promql *promql)
{
    self->promql = promql;
}

evidence_dispatcher_t *evidence_dispatcher_new(void *zmq_ctx, char *err, size_t errlen)
{
    evidence_dispatcher_t *self = calloc(1, sizeof(*self));
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->pipe = pipe_socket(zmq_ctx, false, err, errlen);
    if (!self->pipe)
        evidence_dispatcher_destroy(&self);
    return self;
}

void *evidence_dispatcher_socket(evidence_dispatcher_t *self)
{
    return self->pipe;
}

void evidence_dispatcher_destroy(evidence_dispatcher_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    if ((*self_p)->pipe)
        zmq_close((*self_p)->pipe);
    free(*self_p);
    *self_p = NULL;
}

/* ---- collect ---- */

static int refuse(Vigil__AdminStatus status, const char *reason, Vigil__AdminStatus *ret_status)
{
    metrics_evidence_request_refused(reason);
    *ret_status = status;
    return status == VIGIL__ADMIN_STATUS__ADMIN_NOT_FOUND ? -ENOENT : -EINVAL;
}

/* Checks what the wire cannot: a known kind, node xor all, distinct keys, the timeout. */
static int collect_valid(const Vigil__Collect *req, Vigil__AdminStatus *ret_status, char *err,
                         size_t errlen)
{
    if (!vg_evidence_kind_known(req->kind)) {
        snprintf(err, errlen, "unknown evidence kind \"%s\"; the kinds are " VG_EVIDENCE_KINDS,
                 req->kind);
        return refuse(VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST, "unknown_kind", ret_status);
    }
    bool promql = strcmp(req->kind, "promql") == 0;
    const char *query = NULL;
    for (size_t i = 0; promql && i < req->n_args; i++)
        if (strcmp(req->args[i]->key, "query") == 0)
            query = req->args[i]->value;
    if (promql && (req->all || req->node[0] != '\0')) {
        snprintf(err, errlen,
                 "promql is captured by the coordinator from Prometheus: give "
                 "neither a node nor all");
        return refuse(VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST, "bad_request", ret_status);
    }
    if (promql && (!query || query[strspn(query, " ")] == '\0')) {
        snprintf(err, errlen, "promql needs its expression: the argument query=EXPR");
        return refuse(VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST, "bad_request", ret_status);
    }
    if (!promql && req->all == (req->node[0] != '\0')) {
        snprintf(err, errlen, "%s",
                 req->all ? "give a node or all, not both"
                          : "give a node, or all for every active agent");
        return refuse(VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST, "bad_request", ret_status);
    }
    for (size_t i = 0; i < req->n_args; i++) {
        for (size_t k = 0; k < i; k++) {
            if (strcmp(req->args[i]->key, req->args[k]->key) == 0) {
                snprintf(err, errlen, "argument \"%s\" is given twice", req->args[i]->key);
                return refuse(VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST, "bad_request", ret_status);
            }
        }
    }
    if (req->timeout_ms != 0 &&
        (req->timeout_ms < EVIDENCE_MIN_TIMEOUT_MS || req->timeout_ms > EVIDENCE_MAX_TIMEOUT_MS)) {
        snprintf(err, errlen, "the timeout must be between 500ms and 1h (got %" PRIu32 "ms)",
                 req->timeout_ms);
        return refuse(VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST, "bad_request", ret_status);
    }
    return 0;
}

/* The active agents the request names, borrowed from the registry. */
static int pick_targets(registry_t *registry, const Vigil__Collect *req,
                        struct store_evidence_target **ret_targets, size_t *ret_n)
{
    size_t max = registry_agent_count(registry), n = 0;
    struct store_evidence_target *targets = calloc(max ? max : 1, sizeof(*targets));
    if (!targets)
        return -ENOMEM;
    for (struct agent *a = registry_agent_next(registry, NULL); a && n < max;
         a = registry_agent_next(registry, a)) {
        if (a->state != VIGIL__AGENT_STATE__AGENT_STATE_ACTIVE)
            continue;
        if (!req->all && strcmp(a->node, req->node) != 0)
            continue;
        targets[n].agent_id = a->id;
        targets[n].node = a->node;
        n++;
    }
    *ret_targets = targets;
    *ret_n = n;
    return 0;
}

/* Queues the CollectRequest for one agent. 0 or a negative errno. */
static int queue_request(evidence_requester_t *self, const char *agent_id, uint64_t collection_id,
                         const uint8_t *envelope, size_t len)
{
    if (zmq_send(self->pipe, agent_id, strlen(agent_id), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(self->pipe, &collection_id, sizeof(collection_id), ZMQ_SNDMORE | ZMQ_DONTWAIT) <
            0 ||
        zmq_send(self->pipe, envelope, len, ZMQ_DONTWAIT) < 0)
        return -zmq_errno();
    return 0;
}

int evidence_collect(evidence_requester_t *self, store_t *store, registry_t *registry,
                     const char *actor, const Vigil__Collect *req, uint64_t incident_id,
                     uint64_t *ret_collection_id, Vigil__AdminStatus *ret_status, char *err,
                     size_t errlen)
{
    struct store_evidence_target *targets = NULL;
    struct store_evidence_arg args[VG_MAX_EVIDENCE_ARGS];
    size_t ntargets = 0;
    uint64_t collection_id = 0;
    uint8_t *buf = NULL;
    size_t len = 0;
    int r;

    r = collect_valid(req, ret_status, err, errlen);
    if (r < 0)
        return r;
    bool promql = strcmp(req->kind, "promql") == 0;
    if (promql) {
        /* The coordinator's own target: it asks Prometheus itself (promql_evidence.h). */
        targets = calloc(1, sizeof(*targets));
        r = targets ? 0 : -ENOMEM;
        if (targets) {
            targets[0].agent_id = VG_COORDINATOR_AGENT_ID;
            targets[0].node = PROMQL_EVIDENCE_NODE;
            ntargets = 1;
        }
    } else {
        registry_lock(registry); /* the targets are copied: the lock is not held past this */
        r = pick_targets(registry, req, &targets, &ntargets);
        registry_unlock(registry);
    }
    if (r < 0) {
        *ret_status = VIGIL__ADMIN_STATUS__ADMIN_UNAVAILABLE;
        snprintf(err, errlen, "out of memory");
        return r;
    }
    if (ntargets == 0) {
        if (req->all)
            snprintf(err, errlen, "no active agent");
        else
            snprintf(err, errlen, "no active agent on node %s", req->node);
        free(targets);
        return refuse(VIGIL__ADMIN_STATUS__ADMIN_NOT_FOUND, "no_target", ret_status);
    }

    for (size_t i = 0; i < req->n_args && i < VG_MAX_EVIDENCE_ARGS; i++)
        args[i] = (struct store_evidence_arg){req->args[i]->key, req->args[i]->value};
    int64_t timeout = req->timeout_ms ? req->timeout_ms : EVIDENCE_DEFAULT_TIMEOUT_MS;
    int64_t deadline = vg_wall_ms() + timeout;
    r = store_evidence_collection_create(store, actor, req->kind, args, req->n_args, deadline,
                                         targets, ntargets, incident_id, &collection_id);
    if (r < 0) {
        *ret_status = r == -EINVAL ? VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST
                                   : VIGIL__ADMIN_STATUS__ADMIN_UNAVAILABLE;
        snprintf(err, errlen, "%s",
                 r == -EINVAL ? "the arguments are not valid UTF-8"
                              : "the store is unavailable; nothing was collected");
        free(targets);
        return r;
    }

    if (promql) {
        const char *query = "";
        for (size_t i = 0; i < req->n_args; i++)
            if (strcmp(req->args[i]->key, "query") == 0)
                query = req->args[i]->value;
        promql_evidence_start(self->promql, store, collection_id, query);
        metrics_evidence_requested(req->kind);
        vg_log(VG_LOG_INFO, "collection=%" PRIu64 " %s asked kind=promql timeout_ms=%" PRId64,
               collection_id, actor, timeout);
        free(targets);
        *ret_collection_id = collection_id;
        return 0;
    }

    Vigil__CollectRequest body = VIGIL__COLLECT_REQUEST__INIT;
    Vigil__Envelope env;
    body.collection_id = collection_id;
    body.kind = req->kind;
    body.args = req->args;
    body.n_args = req->n_args;
    body.expires_at_ms = deadline;
    vg_envelope_init(&env, "coordinator", 0);
    env.body_case = VIGIL__ENVELOPE__BODY_COLLECT;
    env.collect = &body;
    r = vg_envelope_encode(&env, &buf, &len);
    for (size_t i = 0; i < ntargets; i++) {
        int q = r < 0 ? r : queue_request(self, targets[i].agent_id, collection_id, buf, len);
        if (q == 0)
            continue;
        char why[160];
        snprintf(why, sizeof(why), "not sent: the coordinator could not queue the request (%s)",
                 strerror(-q));
        vg_log(VG_LOG_WARN, "collection=%" PRIu64 " agent=%s %s", collection_id,
               targets[i].agent_id, why);
        if (store_evidence_target_fail(store, collection_id, targets[i].agent_id, why) == 0)
            metrics_evidence_failed(req->kind);
    }
    free(buf);
    metrics_evidence_requested(req->kind);
    vg_log(VG_LOG_INFO,
           "collection=%" PRIu64 " %s asked kind=%s targets=%zu %s%s timeout_ms=%" PRId64,
           collection_id, actor, req->kind, ntargets,
           req->all ? "all" : "node=", req->all ? "" : req->node, timeout);
    free(targets);
    *ret_collection_id = collection_id;
    return 0;
}

/* ---- dispatch ---- */

/* Receives one frame into buf (truncated to size); its length, or -1 when none. */
static int recv_frame(void *pipe, void *buf, size_t size, bool *ret_more)
{
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, pipe, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&msg);
        return -1;
    }
    size_t n = zmq_msg_size(&msg);
    if (buf)
        memcpy(buf, zmq_msg_data(&msg), n < size ? n : size);
    *ret_more = zmq_msg_more(&msg);
    zmq_msg_close(&msg);
    return (int)(n < (size_t)INT32_MAX ? n : INT32_MAX);
}

void evidence_dispatch(evidence_dispatcher_t *self, store_t *store, evidence_send_fn send,
                       void *userdata)
{
    for (;;) {
        char agent_id[AGENT_ID_MAX];
        uint64_t collection_id = 0;
        bool more = false;

        int n = recv_frame(self->pipe, agent_id, sizeof(agent_id) - 1, &more);
        if (n < 0)
            return;
        agent_id[(size_t)n < sizeof(agent_id) - 1 ? (size_t)n : sizeof(agent_id) - 1] = '\0';
        if (!more ||
            recv_frame(self->pipe, &collection_id, sizeof(collection_id), &more) !=
                (int)sizeof(collection_id) ||
            !more) {
            vg_log(VG_LOG_ERROR, "evidence: malformed request on the internal pipe");
            while (more && recv_frame(self->pipe, NULL, 0, &more) >= 0)
                ;
            continue;
        }
        zmq_msg_t envelope;
        zmq_msg_init(&envelope);
        if (zmq_msg_recv(&envelope, self->pipe, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&envelope);
            continue;
        }
        char why[160] = "";
        int r = send(userdata, agent_id, zmq_msg_data(&envelope), zmq_msg_size(&envelope), why,
                     sizeof(why));
        if (r == 0) {
            zmq_msg_close(&envelope);
            vg_log(VG_LOG_DEBUG, "collection=%" PRIu64 " agent=%s request sent", collection_id,
                   agent_id);
            continue;
        }
        /* The kind, for the metric: the envelope is our own, so it decodes. */
        Vigil__Envelope *env = NULL;
        vg_envelope_decode(zmq_msg_data(&envelope), zmq_msg_size(&envelope), &env, NULL);
        zmq_msg_close(&envelope);
        vg_log(VG_LOG_WARN, "collection=%" PRIu64 " agent=%s request not delivered: %s",
               collection_id, agent_id, why);
        if (store_evidence_target_fail(store, collection_id, agent_id, why) == 0)
            metrics_evidence_failed(
                env && env->body_case == VIGIL__ENVELOPE__BODY_COLLECT ? env->collect->kind : NULL);
        vg_envelope_free(env);
    }
}

/* ---- outcomes ---- */

void evidence_report(const struct store_evidence_events *events)
{
    for (size_t i = 0; events && i < events->n; i++) {
        const struct store_evidence_event *e = &events->items[i];
        switch (e->outcome) {
        case STORE_EVIDENCE_STORED:
            metrics_evidence_stored(e->size);
            vg_log(VG_LOG_INFO,
                   "evidence=%" PRIu64 " collection=%" PRIu64 " agent=%s kind=%s size=%" PRIu64
                   " stored %s",
                   e->evidence_id, e->collection_id, e->agent_id, e->kind, e->size, e->detail);
            break;
        case STORE_EVIDENCE_REJECTED:
            metrics_evidence_rejected(e->reason);
            /* A hash mismatch means bytes changed between the node and the vault: loud. */
            vg_log(strcmp(e->reason, "sha256") == 0 ? VG_LOG_ERROR : VG_LOG_WARN,
                   "collection=%" PRIu64 " agent=%s kind=%s artifact=%" PRIu64
                   " evidence refused reason=%s: %s",
                   e->collection_id, e->agent_id, e->kind, e->artifact, e->reason, e->detail);
            break;
        case STORE_EVIDENCE_FAILED:
            metrics_evidence_failed(e->kind);
            vg_log(VG_LOG_WARN, "collection=%" PRIu64 " agent=%s kind=%s failed reason=%s: %s",
                   e->collection_id, e->agent_id, e->kind, e->reason, e->detail);
            break;
        }
    }
}

void evidence_expire(store_t *store)
{
    struct store_evidence_events events = {0};
    if (store_evidence_expire(store, &events) == 0)
        evidence_report(&events);
    store_evidence_events_clear(&events);
}
