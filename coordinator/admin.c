#include "admin.h"

#include <czmq.h>
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "escalate.h"
#include "evidence.h"
#include "incidents.h"
#include "log.h"
#include "metrics.h"
#include "oncall.h"
#include "paging_config.h"
#include "timeutil.h"
#include "wire.h"

#define ROUTING_ID_MAX 255

/* ListEvidence without a collection: the latest artifacts, this many unless asked. */
#define EVIDENCE_LIST_DEFAULT 50
#define EVIDENCE_LIST_MAX 1000
/* Targets of one collection listed at most (a reply stays far below the message limit). */
#define EVIDENCE_TARGETS_MAX 10000
/* ListIncidents, TailIncidents: this many unless asked, at most the wire's limit. */
#define INCIDENT_LIST_DEFAULT 100
#define INCIDENT_LIST_MAX 1000

struct admin {
    void *socket;
    registry_t *registry;
    store_t *store;
    evidence_requester_t *evidence; /* queues CollectRequests for the router */
    store_incidents_t *incidents;   /* own connection, opened on first use */
    /* Borrowed (admin_set_paging); NULL = paging is off. */
    const struct paging_config *paging;
    /* On-call overrides: own connection, opened on first use. */
    store_oncall_t *oncall;
    /* Evidence vault verification: own connection, opened on first use. */
    store_verify_t *verify;
    /* Told when an approval or revocation changes whether a node is up (admin_set_observer). */
    struct router_observer observer;
};

admin_t *admin_new(void *ctx, const char *endpoint, const struct vg_keypair *server_keys,
                   int heartbeat_ivl_ms, registry_t *registry, store_t *store, char *err,
                   size_t errlen)
{
    int on = 1;
    admin_t *self = calloc(1, sizeof(*self));
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->registry = registry;
    self->store = store;
    self->evidence = evidence_requester_new(ctx, err, errlen);
    if (!self->evidence) {
        admin_destroy(&self);
        return NULL;
    }
    self->socket = zmq_socket(ctx, ZMQ_ROUTER);
    if (!self->socket || vg_zmq_common_options(self->socket, heartbeat_ivl_ms) < 0 ||
        zmq_setsockopt(self->socket, ZMQ_ROUTER_MANDATORY, &on, sizeof(on)) != 0 ||
        zmq_setsockopt(self->socket, ZMQ_CURVE_SERVER, &on, sizeof(on)) != 0 ||
        zmq_setsockopt(self->socket, ZMQ_CURVE_SECRETKEY, server_keys->secret_key,
                       VG_KEY_Z85_LEN) != 0 ||
        zmq_setsockopt(self->socket, ZMQ_ZAP_DOMAIN, VG_ZAP_DOMAIN_ADMIN,
                       strlen(VG_ZAP_DOMAIN_ADMIN)) != 0) {
        snprintf(err, errlen, "admin socket: %s", zmq_strerror(zmq_errno()));
        admin_destroy(&self);
        return NULL;
    }
    if (zmq_bind(self->socket, endpoint) != 0) {
        snprintf(err, errlen, "cannot listen for vigilctl on %s: %s", endpoint,
                 zmq_strerror(zmq_errno()));
        admin_destroy(&self);
        return NULL;
    }
    return self;
}

void admin_destroy(admin_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    admin_t *self = *self_p;
    if (self->socket)
        zmq_close(self->socket);
    evidence_requester_destroy(&self->evidence);
    store_incidents_destroy(&self->incidents);
    store_oncall_destroy(&self->oncall);
    store_verify_destroy(&self->verify);
    free(self);
    *self_p = NULL;
}

void *admin_socket(admin_t *self)
{
    return self->socket;
}

/* holder: for a pending agent, the agent that holds its node name (NULL = none). */
static void fill_agent_info(Vigil__AgentInfo *info, const struct agent *a,
                            const struct agent *holder)
{
    vigil__agent_info__init(info);
    info->requested_node = (char *)a->requested_node;
    info->node_held_by = holder ? (char *)holder->id : "";
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
}

/* Reply buffers that live for one request. */
struct reply {
    Vigil__AdminReply msg;
    Vigil__AgentInfo *infos;
    Vigil__AgentInfo **info_ptrs;
    zlistx_t *signals;         /* Vigil__SignalInfo, owned (freed with free_signal_info) */
    zlistx_t *evidence;        /* Vigil__EvidenceInfo, owned (freed with free_evidence_info) */
    uint8_t *data;             /* GetEvidence bytes */
    zlistx_t *incidents;       /* Vigil__IncidentInfo, owned (free_incident_info) */
    zlistx_t *incident_events; /* Vigil__IncidentEvent, owned (free_incident_event) */
    char *report;              /* GetIncidentReport text, owned */
    zlistx_t *notifications;   /* Vigil__NotificationInfo, owned (free_notification_info) */
    Vigil__OncallInfo *oncall; /* ListOncall, AddOncallOverride: one per schedule */
    Vigil__OncallInfo **oncall_ptrs;
    struct oncall_override *overrides;  /* the user names oncall points into */
    Vigil__EvidenceVerifyResult verify; /* VerifyEvidence; its strings and bytes below */
    char verify_reason[STORE_VERIFY_REASON_MAX];
    uint8_t verify_chain[VG_SHA256_LEN];
    char error[1024];
};

__attribute__((format(printf, 3, 4))) static void
reply_error(struct reply *rep, Vigil__AdminStatus status, const char *fmt, ...)
{
    va_list ap;

    rep->msg.status = status;
    va_start(ap, fmt);
    vsnprintf(rep->error, sizeof(rep->error), fmt, ap);
    va_end(ap);
    rep->msg.error = rep->error;
}

/* Replies many requests share. */
static void reply_incident_not_found(struct reply *rep, uint64_t id)
{
    reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_NOT_FOUND, "incident %" PRIu64 " not found", id);
}

/* was_change: the request would have changed something ("nothing changed"), else a read. */
static void reply_store_unavailable(struct reply *rep, bool was_change)
{
    reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_UNAVAILABLE, "%s",
                was_change ? "the store is unavailable; nothing changed"
                           : "the store is unavailable; try again");
}

static void list_agents(admin_t *self, struct reply *rep)
{
    size_t n = registry_agent_count(self->registry);
    rep->infos = calloc(n ? n : 1, sizeof(*rep->infos));
    rep->info_ptrs = calloc(n ? n : 1, sizeof(Vigil__AgentInfo *));
    const struct agent **agents = calloc(n ? n : 1, sizeof(const struct agent *));
    if (!rep->infos || !rep->info_ptrs || !agents) {
        free(agents);
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_UNAVAILABLE, "%s", "out of memory");
        return;
    }
    size_t count = 0;
    for (struct agent *a = registry_agent_next(self->registry, NULL); a && count < n;
         a = registry_agent_next(self->registry, a))
        agents[count++] = a;
    for (size_t i = 0; i < count; i++) {
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
        fill_agent_info(&rep->infos[i], agents[i], holder);
        rep->info_ptrs[i] = &rep->infos[i];
    }
    free(agents);
    rep->msg.agents = rep->info_ptrs;
    rep->msg.n_agents = count;
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

/* Only the changed agent goes back in the reply. */
static void reply_one_agent(admin_t *self, const char *id, struct reply *rep)
{
    list_agents(self, rep);
    rep->msg.n_agents = 0;
    for (size_t i = 0; rep->info_ptrs && i < registry_agent_count(self->registry); i++) {
        if (rep->infos[i].id && strcmp(rep->infos[i].id, id) == 0) {
            rep->info_ptrs[0] = &rep->infos[i];
            rep->msg.n_agents = 1;
            break;
        }
    }
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
    if (self->observer.agent_state && a->state == VIGIL__AGENT_STATE__AGENT_STATE_ACTIVE) {
        if (!node_has_other_active(self, old, a))
            self->observer.agent_state(self->observer.userdata, old, false, now);
        self->observer.agent_state(self->observer.userdata, a->node, true, now);
    }
    reply_one_agent(self, a->id, rep);
}

/* approve: pending -> active; revoke: anything -> revoked (effective on the next message). */
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
    snprintf(actor, sizeof(actor), "operator:%s", op->name);
    if (target == VIGIL__AGENT_STATE__AGENT_STATE_ACTIVE &&
        a->state != VIGIL__AGENT_STATE__AGENT_STATE_PENDING) {
        if (a->requested_node[0])
            rename_agent(self, op, a, actor, rep);
        else
            reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_CONFLICT,
                        "agent %s is not pending and asks for no other name", id);
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
    if (self->observer.agent_state && was_up != is_up &&
        (is_up || !node_has_other_active(self, a->node, a)))
        self->observer.agent_state(self->observer.userdata, a->node, is_up, now);
    reply_one_agent(self, id, rep);
}

/* Label arrays built with strdup'd keys and values (signals' labels, evidence arguments). */
static void free_labels(Vigil__Label **labels, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(labels[i]->key);
        free(labels[i]->value);
        free(labels[i]);
    }
    free(labels);
}

/* ---- signals ---- */

#define MAX_SIGNALS_PER_REPLY 50000

static void free_signal_info(void **item)
{
    Vigil__SignalInfo *info = *item;
    if (!info)
        return;
    free_labels(info->labels, info->n_labels);
    free(info->agent_id);
    free(info->node);
    free(info->name);
    free(info->unit);
    free(info);
    *item = NULL;
}

/* Labels arrive as the jsonb text of a flat object of strings; *ret_labels is owned (each
 * label's key and value too) and grows as *ret_n counts, so a partial result frees cleanly. */
static int labels_from_json(const char *labels_json, Vigil__Label ***ret_labels, size_t *ret_n)
{
    json_error_t jerr;
    json_t *obj = json_loads(labels_json, 0, &jerr);
    const char *key;
    json_t *value;

    if (!json_is_object(obj)) {
        json_decref(obj);
        return -EINVAL;
    }
    *ret_labels = calloc(json_object_size(obj) + 1, sizeof(Vigil__Label *));
    if (!*ret_labels) {
        json_decref(obj);
        return -ENOMEM;
    }
    json_object_foreach(obj, key, value)
    {
        Vigil__Label *l = malloc(sizeof(*l));
        if (!l)
            break;
        vigil__label__init(l);
        l->key = strdup(key);
        l->value = strdup(json_is_string(value) ? json_string_value(value) : "");
        (*ret_labels)[(*ret_n)++] = l;
        if (!l->key || !l->value)
            break;
    }
    json_decref(obj);
    return 0;
}

static int parse_labels(Vigil__SignalInfo *info, const char *labels_json)
{
    return labels_from_json(labels_json, &info->labels, &info->n_labels);
}

struct signals_walk {
    struct reply *rep;
    const char *glob;
};

static int add_signal(const struct store_signal *sig, void *userdata)
{
    struct signals_walk *w = userdata;

    if (w->glob && w->glob[0] && fnmatch(w->glob, sig->name, 0) != 0)
        return 0;
    if (zlistx_size(w->rep->signals) >= MAX_SIGNALS_PER_REPLY)
        return 1;
    Vigil__SignalInfo *info = calloc(1, sizeof(*info));
    if (!info)
        return -ENOMEM;
    vigil__signal_info__init(info);
    info->agent_id = strdup(sig->agent_id);
    info->node = strdup(sig->node);
    info->name = strdup(sig->name);
    info->unit = strdup(sig->unit);
    info->value = sig->value;
    info->state = (Vigil__SignalState)sig->state;
    info->ts_ms = sig->ts_ms;
    zlistx_add_end(w->rep->signals, info);
    if (!info->agent_id || !info->node || !info->name || !info->unit)
        return -ENOMEM;
    return parse_labels(info, sig->labels_json) == -ENOMEM ? -ENOMEM : 0;
}

static void list_signals(admin_t *self, const Vigil__ListSignals *req, struct reply *rep)
{
    struct signals_walk walk = {.rep = rep, .glob = req->name_glob};

    rep->signals = zlistx_new();
    if (!rep->signals) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_UNAVAILABLE, "%s", "out of memory");
        return;
    }
    zlistx_set_destructor(rep->signals, free_signal_info);
    if (store_signals_latest(self->store, req->node, add_signal, &walk) < 0) {
        reply_store_unavailable(rep, false);
        return;
    }
    size_t n = zlistx_size(rep->signals);
    rep->msg.signals = calloc(n ? n : 1, sizeof(Vigil__SignalInfo *));
    if (!rep->msg.signals) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_UNAVAILABLE, "%s", "out of memory");
        return;
    }
    for (Vigil__SignalInfo *info = zlistx_first(rep->signals); info;
         info = zlistx_next(rep->signals))
        rep->msg.signals[rep->msg.n_signals++] = info;
}

/* ---- evidence ---- */

static void free_evidence_info(void **item)
{
    Vigil__EvidenceInfo *info = *item;
    if (!info)
        return;
    free_labels(info->args, info->n_args);
    free(info->agent_id);
    free(info->node);
    free(info->kind);
    free(info->sha256);
    free(info->error);
    free(info);
    *item = NULL;
}

static Vigil__EvidenceStatus evidence_status(const char *status)
{
    if (strcmp(status, "stored") == 0)
        return VIGIL__EVIDENCE_STATUS__EVIDENCE_STORED;
    if (strcmp(status, "failed") == 0)
        return VIGIL__EVIDENCE_STATUS__EVIDENCE_FAILED;
    return VIGIL__EVIDENCE_STATUS__EVIDENCE_PENDING;
}

/* store_evidence_cb: one EvidenceInfo more in rep->evidence. */
static int add_evidence(const struct store_evidence_info *row, void *userdata)
{
    struct reply *rep = userdata;
    Vigil__EvidenceInfo *info = calloc(1, sizeof(*info));
    if (!info)
        return -ENOMEM;
    vigil__evidence_info__init(info);
    zlistx_add_end(rep->evidence, info);
    info->id = row->id;
    info->collection_id = row->collection_id;
    info->agent_id = strdup(row->agent_id);
    info->node = strdup(row->node);
    info->kind = strdup(row->kind);
    info->size = row->size;
    info->sha256 = strdup(row->sha256_hex);
    info->collected_at_ms = row->collected_at_ms;
    info->stored_at_ms = row->stored_at_ms;
    info->status = evidence_status(row->status);
    info->error = strdup(row->error);
    info->truncated = row->truncated;
    if (!info->agent_id || !info->node || !info->kind || !info->sha256 || !info->error)
        return -ENOMEM;
    return labels_from_json(row->args_json, &info->args, &info->n_args) == -ENOMEM ? -ENOMEM : 0;
}

/* Moves rep->evidence into the reply message. */
static void evidence_reply(struct reply *rep)
{
    size_t n = zlistx_size(rep->evidence);
    rep->msg.evidence = calloc(n ? n : 1, sizeof(Vigil__EvidenceInfo *));
    if (!rep->msg.evidence) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_UNAVAILABLE, "%s", "out of memory");
        return;
    }
    for (Vigil__EvidenceInfo *info = zlistx_first(rep->evidence); info;
         info = zlistx_next(rep->evidence))
        rep->msg.evidence[rep->msg.n_evidence++] = info;
}

static bool evidence_list_start(struct reply *rep)
{
    rep->evidence = zlistx_new();
    if (!rep->evidence) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_UNAVAILABLE, "%s", "out of memory");
        return false;
    }
    zlistx_set_destructor(rep->evidence, free_evidence_info);
    return true;
}

static void collect(admin_t *self, const struct operator* op, const Vigil__Collect *req,
                    struct reply *rep)
{
    char actor[160], err[sizeof(rep->error)];
    Vigil__AdminStatus status = VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST;
    uint64_t collection_id = 0;

    snprintf(actor, sizeof(actor), "operator:%s", op->name);
    int r = evidence_collect(self->evidence, self->store, self->registry, actor, req,
                             &collection_id, &status, err, sizeof(err));
    if (r < 0) {
        vg_log(VG_LOG_WARN, "operator=%s collect kind=%.32s refused: %s", op->name, req->kind, err);
        reply_error(rep, status, "%s", err);
        return;
    }
    rep->msg.collection_id = collection_id;
    if (!evidence_list_start(rep))
        return;
    if (store_evidence_list(self->store, collection_id, NULL, EVIDENCE_TARGETS_MAX, add_evidence,
                            rep) < 0) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_UNAVAILABLE,
                    "collection %" PRIu64 " was started, but listing its targets failed; "
                    "list it again",
                    collection_id);
        rep->msg.collection_id = collection_id;
        return;
    }
    evidence_reply(rep);
}

static void list_evidence(admin_t *self, const Vigil__ListEvidence *req, struct reply *rep)
{
    uint32_t limit = req->limit ? req->limit : EVIDENCE_LIST_DEFAULT;
    if (req->collection_id != 0)
        limit = EVIDENCE_TARGETS_MAX;
    else if (limit > EVIDENCE_LIST_MAX)
        limit = EVIDENCE_LIST_MAX;
    if (!evidence_list_start(rep))
        return;
    /* A target past its deadline reads as timed out at once, not at the next tick. */
    if (req->collection_id != 0)
        evidence_expire(self->store);
    if (store_evidence_list(self->store, req->collection_id, req->node, limit, add_evidence, rep) <
        0) {
        reply_store_unavailable(rep, false);
        return;
    }
    if (req->collection_id != 0 && zlistx_size(rep->evidence) == 0 && !req->node[0]) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_NOT_FOUND, "collection %" PRIu64 " not found",
                    req->collection_id);
        return;
    }
    evidence_reply(rep);
}

static void get_evidence(admin_t *self, const Vigil__GetEvidence *req, struct reply *rep)
{
    size_t max = req->max_bytes && req->max_bytes < VG_MAX_EVIDENCE_CHUNK_BYTES
                     ? req->max_bytes
                     : VG_MAX_EVIDENCE_CHUNK_BYTES;
    if (!evidence_list_start(rep))
        return;
    int r = store_evidence_get(self->store, req->id, add_evidence, rep);
    if (r == -ENOENT) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_NOT_FOUND, "evidence %" PRIu64 " not found",
                    req->id);
        return;
    }
    size_t got = 0;
    rep->data = malloc(max);
    if (r == 0 && !rep->data)
        r = -ENOMEM;
    if (r == 0)
        r = store_evidence_read(self->store, req->id, req->offset, rep->data, max, &got);
    if (r < 0) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_UNAVAILABLE,
                    "cannot read evidence %" PRIu64 ": %s", req->id,
                    r == -EPROTO ? "its stored chunks are inconsistent"
                                 : "the store is unavailable");
        return;
    }
    rep->msg.data.data = rep->data;
    rep->msg.data.len = got;
    evidence_reply(rep);
}

/* ---- evidence vault verification ---- */

/* Each request walks the vault for this long at most (past the row it is in), so a big vault
 * is checked in steps between which the main loop serves agents. */
#define VERIFY_SLICE_MS 250

static void verify_evidence(admin_t *self, const struct operator* op,
                            const Vigil__VerifyEvidence *req, struct reply *rep)
{
    struct store_verify_result res;
    char actor[160], detail[128 + STORE_VERIFY_REASON_MAX];

    if (!self->verify)
        self->verify = store_verify_new(store_conninfo(self->store));
    if (!self->verify) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_UNAVAILABLE, "%s", "out of memory");
        return;
    }
    int r = store_evidence_verify(self->verify, req->after_id,
                                  req->after_id ? req->after_chain.data : NULL, req->max_artifacts,
                                  VERIFY_SLICE_MS, &res);
    if (r < 0) {
        reply_store_unavailable(rep, false);
        return;
    }
    Vigil__EvidenceVerifyResult *v = &rep->verify;
    vigil__evidence_verify_result__init(v);
    v->checked = res.checked;
    v->bytes = res.bytes;
    v->ok = res.broken_id == 0;
    v->broken_id = res.broken_id;
    snprintf(rep->verify_reason, sizeof(rep->verify_reason), "%s", res.reason);
    v->reason = rep->verify_reason;
    v->done = res.done;
    v->last_id = res.last_id;
    memcpy(rep->verify_chain, res.last_chain, VG_SHA256_LEN);
    v->last_chain.data = rep->verify_chain;
    v->last_chain.len = VG_SHA256_LEN;
    rep->msg.evidence_verify = v;

    /* The verdict, once per walk: a walk of many steps is one audit row, at its end. */
    if (!res.done && res.broken_id == 0)
        return;
    if (res.broken_id)
        vg_log(VG_LOG_ERROR,
               "evidence vault: chain broken at evidence=%" PRIu64 " reason=\"%s\" operator=%s",
               res.broken_id, res.reason, op->name);
    else
        vg_log(VG_LOG_INFO, "evidence vault: chain intact through evidence=%" PRIu64 " operator=%s",
               res.last_id, op->name);
    snprintf(actor, sizeof(actor), "operator:%s", op->name);
    if (res.broken_id)
        snprintf(detail, sizeof(detail), "chain broken at evidence %" PRIu64 ": %s", res.broken_id,
                 res.reason);
    else
        snprintf(detail, sizeof(detail), "chain intact through evidence %" PRIu64, res.last_id);
    /* The step's starting point came from the operator (the last step's reply, normally): the
     * record says so, since a made-up one breaks the first link checked. */
    if (req->after_id) {
        size_t len = strlen(detail);
        snprintf(detail + len, sizeof(detail) - len, " (a step after evidence %" PRIu64 ")",
                 req->after_id);
    }
    if (store_audit(self->store, actor, "evidence.verify", "evidence vault", detail) < 0)
        vg_log(VG_LOG_WARN, "evidence vault verification not written to the audit log");
}

/* ---- incidents ---- */

static void free_incident_info(void **item)
{
    Vigil__IncidentInfo *info = *item;
    if (!info)
        return;
    for (size_t i = 0; i < info->n_scope; i++)
        free(info->scope[i]);
    free(info->scope);
    free(info->fingerprint);
    free(info->runbook);
    free(info->title);
    free(info->state);
    free(info);
    *item = NULL;
}

static void free_incident_event(void **item)
{
    Vigil__IncidentEvent *ev = *item;
    if (!ev)
        return;
    free(ev->kind);
    free(ev->actor);
    free(ev->text);
    free(ev->data_json);
    free(ev);
    *item = NULL;
}

static bool incidents_start(admin_t *self, struct reply *rep)
{
    if (!self->incidents)
        self->incidents = store_incidents_new(store_conninfo(self->store));
    rep->incidents = zlistx_new();
    rep->incident_events = zlistx_new();
    if (!self->incidents || !rep->incidents || !rep->incident_events) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_UNAVAILABLE, "%s", "out of memory");
        return false;
    }
    zlistx_set_destructor(rep->incidents, free_incident_info);
    zlistx_set_destructor(rep->incident_events, free_incident_event);
    return true;
}

/* The scope is a JSON array of node names; anything else in it is skipped. */
static int scope_from_json(Vigil__IncidentInfo *info, const char *scope_json)
{
    json_t *scope = json_loads(scope_json, 0, NULL);
    size_t i;
    json_t *v;
    if (!json_is_array(scope)) {
        json_decref(scope);
        return 0;
    }
    info->scope = calloc(json_array_size(scope) + 1, sizeof(char *));
    if (!info->scope) {
        json_decref(scope);
        return -ENOMEM;
    }
    json_array_foreach(scope, i, v)
    {
        if (!json_is_string(v))
            continue;
        info->scope[info->n_scope] = strdup(json_string_value(v));
        if (!info->scope[info->n_scope])
            break;
        info->n_scope++;
    }
    bool complete = i >= json_array_size(scope);
    json_decref(scope);
    return complete ? 0 : -ENOMEM;
}

static int add_incident(const struct store_incident *inc, void *userdata)
{
    struct reply *rep = userdata;
    Vigil__IncidentInfo *info = calloc(1, sizeof(*info));
    if (!info)
        return -ENOMEM;
    vigil__incident_info__init(info);
    zlistx_add_end(rep->incidents, info);
    info->id = inc->id;
    info->fingerprint = strdup(inc->fingerprint);
    info->runbook = strdup(inc->runbook);
    info->title = strdup(inc->title);
    info->severity = (uint32_t)inc->severity;
    info->state = strdup(inc->state);
    info->opened_at_ms = inc->opened_at_ms;
    info->response_due_ms = inc->response_due_ms;
    info->acknowledged_at_ms = inc->acknowledged_at_ms;
    info->resolved_at_ms = inc->resolved_at_ms;
    info->updated_at_ms = inc->updated_at_ms;
    info->root_incident_id = inc->root_id;
    if (!info->fingerprint || !info->runbook || !info->title || !info->state)
        return -ENOMEM;
    return scope_from_json(info, inc->scope_json);
}

static int add_incident_event(const struct store_incident_event *row, void *userdata)
{
    struct reply *rep = userdata;
    Vigil__IncidentEvent *ev = calloc(1, sizeof(*ev));
    if (!ev)
        return -ENOMEM;
    vigil__incident_event__init(ev);
    zlistx_add_end(rep->incident_events, ev);
    ev->id = row->id;
    ev->incident_id = row->incident_id;
    ev->at_ms = row->at_ms;
    ev->kind = strdup(row->kind);
    ev->actor = strdup(row->actor);
    ev->text = strdup(row->text);
    ev->data_json = strdup(row->data_json);
    return ev->kind && ev->actor && ev->text && ev->data_json ? 0 : -ENOMEM;
}

/* Moves rep->incidents and rep->incident_events into the reply message. */
static void incidents_reply(struct reply *rep)
{
    size_t n = zlistx_size(rep->incidents), m = zlistx_size(rep->incident_events);
    rep->msg.incidents = calloc(n ? n : 1, sizeof(Vigil__IncidentInfo *));
    rep->msg.incident_events = calloc(m ? m : 1, sizeof(Vigil__IncidentEvent *));
    if (!rep->msg.incidents || !rep->msg.incident_events) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_UNAVAILABLE, "%s", "out of memory");
        return;
    }
    for (Vigil__IncidentInfo *info = zlistx_first(rep->incidents); info;
         info = zlistx_next(rep->incidents))
        rep->msg.incidents[rep->msg.n_incidents++] = info;
    for (Vigil__IncidentEvent *ev = zlistx_first(rep->incident_events); ev;
         ev = zlistx_next(rep->incident_events))
        rep->msg.incident_events[rep->msg.n_incident_events++] = ev;
}

static void list_incidents(admin_t *self, const Vigil__ListIncidents *req, struct reply *rep)
{
    uint32_t limit = req->limit ? req->limit : INCIDENT_LIST_DEFAULT;
    if (limit > INCIDENT_LIST_MAX)
        limit = INCIDENT_LIST_MAX;
    if (!incidents_start(self, rep))
        return;
    if (incidents_list(self->incidents, !req->all, limit, add_incident, rep) < 0) {
        reply_store_unavailable(rep, false);
        return;
    }
    incidents_reply(rep);
}

/* The incident into the reply; with_timeline adds its events. */
static void show_incident(admin_t *self, uint64_t id, bool with_timeline, struct reply *rep)
{
    struct store_incident *inc = calloc(1, sizeof(*inc));
    int r = inc ? incidents_show(self->incidents, id, inc,
                                 with_timeline ? add_incident_event : NULL, rep)
                : -ENOMEM;
    if (r == 0)
        r = add_incident(inc, rep);
    free(inc);
    if (r == -ENOENT) {
        reply_incident_not_found(rep, id);
        return;
    }
    if (r < 0) {
        reply_store_unavailable(rep, false);
        return;
    }
    incidents_reply(rep);
}

enum incident_change { CHANGE_ACK, CHANGE_MITIGATE, CHANGE_RESOLVE };

static void change_incident(admin_t *self, const struct operator* op, uint64_t id, const char *note,
                            enum incident_change change, struct reply *rep)
{
    static const char *const verbs[] = {"acknowledge", "mitigate", "resolve"};
    static const char *const done[] = {"acknowledged", "mitigated", "resolved"};
    static const char *const audit[] = {"incident.acknowledge", "incident.mitigate",
                                        "incident.resolve"};
    char actor[160], subject[64];

    if (!incidents_start(self, rep))
        return;
    if (change != CHANGE_ACK && (!note || !note[0])) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST,
                    "%s an incident needs a note "
                    "saying what was done",
                    change == CHANGE_RESOLVE ? "resolving" : "mitigating");
        return;
    }
    int64_t now = vg_wall_ms();
    int r = change == CHANGE_RESOLVE ? incidents_resolve(self->incidents, id, op->name, note, now)
            : change == CHANGE_MITIGATE
                ? incidents_mitigate(self->incidents, id, op->name, note, now)
                : incidents_ack(self->incidents, id, op->name, note, now);
    switch (r) {
    case 0:
        break;
    case -ENOENT:
        reply_incident_not_found(rep, id);
        return;
    case -EALREADY:
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_CONFLICT, "incident %" PRIu64 " is already %s",
                    id, done[change]);
        return;
    case -EBUSY:
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_CONFLICT,
                    "incident %" PRIu64 " is past that: it cannot be %s now (see vigilctl incident "
                    "show %" PRIu64 ")",
                    id, done[change], id);
        return;
    case -EINVAL:
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST,
                    "the note was refused (it must be UTF-8 text of at most %d bytes)",
                    INCIDENT_NOTE_MAX);
        return;
    default:
        reply_store_unavailable(rep, true);
        return;
    }
    vg_log(VG_LOG_INFO, "incident=%" PRIu64 " %sd by operator=%s", id, verbs[change], op->name);
    snprintf(actor, sizeof(actor), "operator:%s", op->name);
    snprintf(subject, sizeof(subject), "incident %" PRIu64, id);
    if (store_audit(self->store, actor, audit[change], subject, note) < 0)
        vg_log(VG_LOG_WARN, "incident=%" PRIu64 " %s not written to the audit log", id,
               verbs[change]);
    show_incident(self, id, false, rep);
}

static void put_report(admin_t *self, const struct operator* op,
                       const Vigil__PutIncidentReport *req, struct reply *rep)
{
    char actor[160], subject[64];
    bool closed = false;

    if (!incidents_start(self, rep))
        return;
    int r = incidents_report(self->incidents, req->id, op->name, req->body, vg_wall_ms(), &closed);
    switch (r) {
    case 0:
        break;
    case -ENOENT:
        reply_incident_not_found(rep, req->id);
        return;
    case -EBUSY:
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_CONFLICT,
                    "incident %" PRIu64 " is still open: resolve it before writing its report",
                    req->id);
        return;
    case -EINVAL:
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST,
                    "the report was refused (it must be non-empty UTF-8 text of at most %d bytes)",
                    VG_MAX_REPORT_BYTES);
        return;
    default:
        reply_store_unavailable(rep, true);
        return;
    }
    vg_log(VG_LOG_INFO, "incident=%" PRIu64 " report written by operator=%s%s", req->id, op->name,
           closed ? ", incident closed" : "");
    snprintf(actor, sizeof(actor), "operator:%s", op->name);
    snprintf(subject, sizeof(subject), "incident %" PRIu64, req->id);
    if (store_audit(self->store, actor, "incident.report", subject, closed ? "closed" : "revised") <
        0)
        vg_log(VG_LOG_WARN, "incident=%" PRIu64 " report not written to the audit log", req->id);
    show_incident(self, req->id, false, rep);
}

static void get_report(admin_t *self, uint64_t id, struct reply *rep)
{
    bool draft = false;
    int r = incidents_report_text(self->incidents, id, &rep->report, &draft);
    if (r == -ENOENT) {
        reply_incident_not_found(rep, id);
        return;
    }
    if (r < 0) {
        reply_store_unavailable(rep, false);
        return;
    }
    rep->msg.report = rep->report;
    rep->msg.report_is_draft = draft;
}

static void escalate_incident(admin_t *self, const struct operator* op, uint64_t id,
                              struct reply *rep)
{
    char actor[160], subject[64];
    if (!incidents_start(self, rep))
        return;
    int r = escalate_request(self->incidents, id, op->name);
    switch (r) {
    case 0:
        break;
    case -ENOENT:
        reply_incident_not_found(rep, id);
        return;
    case -EALREADY:
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_CONFLICT,
                    "incident %" PRIu64 " is resolved: nothing to escalate", id);
        return;
    case -EINPROGRESS:
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_CONFLICT,
                    "incident %" PRIu64 " is being paged for the first time; try again in a "
                    "second",
                    id);
        return;
    default:
        reply_store_unavailable(rep, true);
        return;
    }
    vg_log(VG_LOG_INFO, "incident=%" PRIu64 " escalation requested by operator=%s", id, op->name);
    snprintf(actor, sizeof(actor), "operator:%s", op->name);
    snprintf(subject, sizeof(subject), "incident %" PRIu64, id);
    if (store_audit(self->store, actor, "incident.escalate", subject, "") < 0)
        vg_log(VG_LOG_WARN, "incident=%" PRIu64 " escalate not written to the audit log", id);
    show_incident(self, id, false, rep);
}

static void free_notification_info(void **item)
{
    Vigil__NotificationInfo *n = *item;
    if (!n)
        return;
    free(n->kind);
    free(n->target);
    free(n->channel);
    free(n->status);
    free(n->last_error);
    free(n->event);
    free(n);
    *item = NULL;
}

static int add_notification(const struct store_notification_row *row, void *userdata)
{
    struct reply *rep = userdata;
    Vigil__NotificationInfo *n = calloc(1, sizeof(*n));
    if (!n)
        return -ENOMEM;
    vigil__notification_info__init(n);
    zlistx_add_end(rep->notifications, n);
    n->id = row->id;
    n->level = row->level;
    n->round = row->round;
    n->attempts = (uint32_t)row->attempts;
    n->last_code = row->last_code;
    n->created_at_ms = row->created_at_ms;
    n->sent_at_ms = row->sent_at_ms;
    n->kind = strdup(row->kind);
    n->target = strdup(row->target);
    n->channel = strdup(row->channel);
    n->status = strdup(row->status);
    n->last_error = strdup(row->last_error);
    n->event = strdup(row->event);
    return n->kind && n->target && n->channel && n->status && n->last_error && n->event ? 0
                                                                                        : -ENOMEM;
}

static void list_notifications(admin_t *self, uint64_t id, struct reply *rep)
{
    struct store_incident *inc = calloc(1, sizeof(*inc));
    rep->notifications = zlistx_new();
    int r =
        inc && rep->notifications ? incidents_show(self->incidents, id, inc, NULL, NULL) : -ENOMEM;
    free(inc);
    if (r == 0) {
        zlistx_set_destructor(rep->notifications, free_notification_info);
        r = store_notifications_list(self->incidents, id, add_notification, rep);
    }
    if (r == -ENOENT) {
        reply_incident_not_found(rep, id);
        return;
    }
    size_t n = r == 0 ? zlistx_size(rep->notifications) : 0;
    rep->msg.notifications = r == 0 ? calloc(n ? n : 1, sizeof(Vigil__NotificationInfo *)) : NULL;
    if (!rep->msg.notifications) {
        reply_store_unavailable(rep, false);
        return;
    }
    for (Vigil__NotificationInfo *info = zlistx_first(rep->notifications); info;
         info = zlistx_next(rep->notifications))
        rep->msg.notifications[rep->msg.n_notifications++] = info;
}

/* Collects the ids of the incidents a batch of events belongs to (each once). */
struct tail_ids {
    uint64_t ids[INCIDENT_LIST_MAX];
    size_t n;
    uint64_t last;
    struct reply *rep;
};

static int add_tail_event(const struct store_incident_event *row, void *userdata)
{
    struct tail_ids *t = userdata;
    bool known = false;
    for (size_t i = 0; i < t->n && !known; i++)
        known = t->ids[i] == row->incident_id;
    if (!known && t->n < INCIDENT_LIST_MAX)
        t->ids[t->n++] = row->incident_id;
    t->last = row->id;
    return add_incident_event(row, t->rep);
}

static void tail_incidents(admin_t *self, const Vigil__TailIncidents *req, struct reply *rep)
{
    uint32_t limit = req->limit ? req->limit : INCIDENT_LIST_DEFAULT;
    struct tail_ids *t = calloc(1, sizeof(*t));
    int r = t ? 0 : -ENOMEM;

    if (t && req->from_now) {
        r = store_incident_events_last(self->incidents, &t->last);
    } else if (t) {
        t->last = req->after_id;
        t->rep = rep;
        r = store_incident_events_after(self->incidents, req->after_id, limit, add_tail_event, t);
    }
    /* The incidents as they are now, so each line can say which incident and how bad. */
    for (size_t i = 0; r == 0 && i < t->n; i++) {
        struct store_incident *inc = calloc(1, sizeof(*inc));
        r = inc ? store_incident_get(self->incidents, t->ids[i], false, inc) : -ENOMEM;
        if (r == 0)
            r = add_incident(inc, rep);
        free(inc);
    }
    if (r < 0) {
        free(t);
        reply_store_unavailable(rep, false);
        return;
    }
    rep->msg.last_event_id = t->last;
    free(t);
    incidents_reply(rep);
}

/* ---- on call ---- */

void admin_set_paging(admin_t *self, const struct paging_config *paging)
{
    self->paging = paging;
}

void admin_set_observer(admin_t *self, const struct router_observer *observer)
{
    if (observer)
        self->observer = *observer;
    else
        memset(&self->observer, 0, sizeof(self->observer));
}

/* Overrides that can matter around an instant: those that end less than this before it. */
#define ONCALL_OVERRIDES_LOOKBACK_MS (31 * 24 * 3600LL * 1000)
/* An override longer than this is a new rotation, not an override. */
#define ONCALL_OVERRIDE_MAX_MS (366 * 24 * 3600LL * 1000)

static size_t schedule_count(const admin_t *self)
{
    return paging_enabled(self->paging) ? self->paging->schedules.count : 0;
}

/* Fills rep->oncall for every schedule (only: just that one) at at_ms. */
static void oncall_reply(admin_t *self, int64_t at_ms, const char *only, struct reply *rep)
{
    size_t n = schedule_count(self), nov = 0;

    if (!self->oncall && n > 0)
        self->oncall = store_oncall_new(store_conninfo(self->store));
    rep->oncall = calloc(n ? n : 1, sizeof(*rep->oncall));
    rep->oncall_ptrs = calloc(n ? n : 1, sizeof(Vigil__OncallInfo *));
    if (!rep->oncall || !rep->oncall_ptrs || (n > 0 && !self->oncall)) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_UNAVAILABLE, "%s", "out of memory");
        return;
    }
    if (n > 0 && store_oncall_overrides(self->oncall, at_ms - ONCALL_OVERRIDES_LOOKBACK_MS,
                                        &rep->overrides, &nov) < 0) {
        reply_store_unavailable(rep, false);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const struct paging_schedule *s =
            VG_CFG_ITEM(self->paging->schedules, struct paging_schedule, i);
        Vigil__OncallInfo *info = &rep->oncall[rep->msg.n_oncall];
        struct oncall_result who;

        if (only && strcmp(s->name, only) != 0)
            continue;
        if (oncall_who(s, rep->overrides, nov, at_ms, &who) < 0) {
            vg_log(VG_LOG_ERROR, "oncall: schedule=%s cannot be computed (time zone %s)", s->name,
                   s->timezone);
            reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_UNAVAILABLE,
                        "schedule %s: cannot compute who is on call (time zone %s)", s->name,
                        s->timezone);
            return;
        }
        vigil__oncall_info__init(info);
        info->schedule = s->name;
        info->timezone = s->timezone;
        info->user = (char *)(who.user ? who.user : "");
        info->since_ms = who.since_ms == INT64_MIN ? 0 : who.since_ms;
        info->until_ms = who.until_ms;
        info->override = who.override;
        info->override_id = who.override_id;
        info->next_user = (char *)(who.next_user ? who.next_user : "");
        info->next_override = who.next_override;
        rep->oncall_ptrs[rep->msg.n_oncall++] = info;
    }
    rep->msg.oncall = rep->oncall_ptrs;
}

static bool contact_reachable(const struct paging_config *cfg, const struct paging_contact *c)
{
    for (int ch = 0; ch < PAGING_CHANNELS; ch++) {
        if (paging_channel_usable(cfg, c, (enum paging_channel)ch))
            return true;
    }
    return false;
}

static void add_override(admin_t *self, const struct operator* op,
                         const Vigil__AddOncallOverride *req, struct reply *rep)
{
    const struct paging_schedule *s =
        schedule_count(self) ? paging_schedule_find(self->paging, req->schedule) : NULL;
    const struct paging_contact *c = s ? paging_contact_find(self->paging, req->user) : NULL;
    int64_t now = vg_wall_ms();
    struct oncall_override o;
    uint64_t id = 0;
    char actor[160], detail[256];

    if (!schedule_count(self)) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_NOT_FOUND, "%s",
                    "no on-call schedules are configured (paging.schedules)");
        return;
    }
    if (!s) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_NOT_FOUND, "no schedule named \"%s\"",
                    req->schedule);
        return;
    }
    if (!c) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_NOT_FOUND,
                    "no contact named \"%s\" (paging.contacts)", req->user);
        return;
    }
    if (!contact_reachable(self->paging, c)) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_CONFLICT,
                    "contact \"%s\" has no channel that works: pages would reach nobody",
                    req->user);
        return;
    }
    if (req->to_ms <= req->from_ms || req->to_ms <= now ||
        req->to_ms - req->from_ms > ONCALL_OVERRIDE_MAX_MS) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST, "%s",
                    req->to_ms <= req->from_ms ? "the override must end after it starts"
                    : req->to_ms <= now        ? "the override ends in the past"
                                               : "an override lasts at most 366 days");
        return;
    }
    if (!self->oncall)
        self->oncall = store_oncall_new(store_conninfo(self->store));
    memset(&o, 0, sizeof(o));
    snprintf(o.schedule, sizeof(o.schedule), "%s", s->name);
    snprintf(o.user, sizeof(o.user), "%s", c->name);
    snprintf(o.created_by, sizeof(o.created_by), "%s", op->name);
    o.from_ms = req->from_ms;
    o.to_ms = req->to_ms;
    o.created_ms = now;
    if (!self->oncall || store_oncall_override_add(self->oncall, &o, &id) < 0) {
        reply_store_unavailable(rep, true);
        return;
    }
    snprintf(actor, sizeof(actor), "operator:%s", op->name);
    snprintf(detail, sizeof(detail),
             "override=%" PRIu64 " user=%s from_ms=%" PRId64 " to_ms=%" PRId64, id, c->name,
             req->from_ms, req->to_ms);
    if (store_audit(self->store, actor, "oncall_override", s->name, detail) < 0)
        vg_log(VG_LOG_WARN, "oncall: override=%" PRIu64 " stored, audit record failed", id);
    vg_log(VG_LOG_INFO,
           "oncall: override=%" PRIu64 " schedule=%s user=%s from_ms=%" PRId64 " to_ms=%" PRId64
           " by operator=%s",
           id, s->name, c->name, req->from_ms, req->to_ms, op->name);
    rep->msg.override_id = id;
    oncall_reply(self, now, s->name, rep);
}

static bool allowed(const struct operator* op, enum operator_role needed, struct reply *rep,
                    const char *what)
{
    if (op->role >= needed)
        return true;
    metrics_refused(REFUSE_FORBIDDEN);
    vg_log(VG_LOG_WARN, "operator=%s role=%s refused: %s needs %s", op->name,
           operator_role_name(op->role), what, operator_role_name(needed));
    rep->msg.status = VIGIL__ADMIN_STATUS__ADMIN_FORBIDDEN;
    snprintf(rep->error, sizeof(rep->error), "%s needs the %s role (you are %s)", what,
             operator_role_name(needed), operator_role_name(op->role));
    rep->msg.error = rep->error;
    return false;
}

static void handle_request(admin_t *self, const struct operator* op, const Vigil__AdminRequest *req,
                           struct reply *rep)
{
    switch (req->body_case) {
    case VIGIL__ADMIN_REQUEST__BODY_LIST_AGENTS:
        if (allowed(op, ROLE_VIEWER, rep, "listing agents"))
            list_agents(self, rep);
        break;
    case VIGIL__ADMIN_REQUEST__BODY_APPROVE_AGENT:
        if (allowed(op, ROLE_ADMIN, rep, "approving agents"))
            change_agent(self, op, req->approve_agent->id, VIGIL__AGENT_STATE__AGENT_STATE_ACTIVE,
                         rep);
        break;
    case VIGIL__ADMIN_REQUEST__BODY_LIST_SIGNALS:
        if (allowed(op, ROLE_VIEWER, rep, "listing signals"))
            list_signals(self, req->list_signals, rep);
        break;
    case VIGIL__ADMIN_REQUEST__BODY_REVOKE_AGENT:
        if (allowed(op, ROLE_ADMIN, rep, "revoking agents"))
            change_agent(self, op, req->revoke_agent->id, VIGIL__AGENT_STATE__AGENT_STATE_REVOKED,
                         rep);
        break;
    case VIGIL__ADMIN_REQUEST__BODY_COLLECT:
        if (allowed(op, ROLE_RESPONDER, rep, "collecting evidence"))
            collect(self, op, req->collect, rep);
        break;
    case VIGIL__ADMIN_REQUEST__BODY_LIST_EVIDENCE:
        if (allowed(op, ROLE_VIEWER, rep, "listing evidence"))
            list_evidence(self, req->list_evidence, rep);
        break;
    case VIGIL__ADMIN_REQUEST__BODY_GET_EVIDENCE:
        /* Artifacts hold file contents and process lists: more than a viewer may read. */
        if (allowed(op, ROLE_RESPONDER, rep, "fetching evidence"))
            get_evidence(self, req->get_evidence, rep);
        break;
    case VIGIL__ADMIN_REQUEST__BODY_VERIFY_EVIDENCE:
        /* Responder, like fetching evidence: the walk reads every artifact's content and
         * re-hashes the whole vault, work on the coordinator a read-only viewer should not be
         * able to start at will; the reply itself carries only hashes and counts. */
        if (allowed(op, ROLE_RESPONDER, rep, "verifying the evidence vault"))
            verify_evidence(self, op, req->verify_evidence, rep);
        break;
    case VIGIL__ADMIN_REQUEST__BODY_LIST_INCIDENTS:
        if (allowed(op, ROLE_VIEWER, rep, "listing incidents"))
            list_incidents(self, req->list_incidents, rep);
        break;
    case VIGIL__ADMIN_REQUEST__BODY_SHOW_INCIDENT:
        if (allowed(op, ROLE_VIEWER, rep, "showing incidents") && incidents_start(self, rep))
            show_incident(self, req->show_incident->id, true, rep);
        break;
    case VIGIL__ADMIN_REQUEST__BODY_ACK_INCIDENT:
        if (allowed(op, ROLE_RESPONDER, rep, "acknowledging incidents"))
            change_incident(self, op, req->ack_incident->id, req->ack_incident->note, CHANGE_ACK,
                            rep);
        break;
    case VIGIL__ADMIN_REQUEST__BODY_MITIGATE_INCIDENT:
        if (allowed(op, ROLE_RESPONDER, rep, "mitigating incidents"))
            change_incident(self, op, req->mitigate_incident->id, req->mitigate_incident->note,
                            CHANGE_MITIGATE, rep);
        break;
    case VIGIL__ADMIN_REQUEST__BODY_RESOLVE_INCIDENT:
        if (allowed(op, ROLE_RESPONDER, rep, "resolving incidents"))
            change_incident(self, op, req->resolve_incident->id, req->resolve_incident->note,
                            CHANGE_RESOLVE, rep);
        break;
    case VIGIL__ADMIN_REQUEST__BODY_PUT_INCIDENT_REPORT:
        if (allowed(op, ROLE_RESPONDER, rep, "writing incident reports"))
            put_report(self, op, req->put_incident_report, rep);
        break;
    case VIGIL__ADMIN_REQUEST__BODY_GET_INCIDENT_REPORT:
        if (allowed(op, ROLE_VIEWER, rep, "reading incident reports") && incidents_start(self, rep))
            get_report(self, req->get_incident_report->id, rep);
        break;
    case VIGIL__ADMIN_REQUEST__BODY_ESCALATE_INCIDENT:
        if (allowed(op, ROLE_RESPONDER, rep, "escalating incidents"))
            escalate_incident(self, op, req->escalate_incident->id, rep);
        break;
    case VIGIL__ADMIN_REQUEST__BODY_LIST_NOTIFICATIONS:
        if (allowed(op, ROLE_VIEWER, rep, "listing notifications") && incidents_start(self, rep))
            list_notifications(self, req->list_notifications->id, rep);
        break;
    case VIGIL__ADMIN_REQUEST__BODY_TAIL_INCIDENTS:
        if (allowed(op, ROLE_VIEWER, rep, "following incidents") && incidents_start(self, rep))
            tail_incidents(self, req->tail_incidents, rep);
        break;
    case VIGIL__ADMIN_REQUEST__BODY_LIST_ONCALL:
        if (allowed(op, ROLE_VIEWER, rep, "listing who is on call"))
            oncall_reply(self, req->list_oncall->at_ms ? req->list_oncall->at_ms : vg_wall_ms(),
                         NULL, rep);
        break;
    case VIGIL__ADMIN_REQUEST__BODY_ADD_ONCALL_OVERRIDE:
        if (allowed(op, ROLE_RESPONDER, rep, "overriding who is on call"))
            add_override(self, op, req->add_oncall_override, rep);
        break;
    default:
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST, "%s", "unknown request");
        break;
    }
}

static void send_reply(admin_t *self, const uint8_t *rid, size_t rid_len, struct reply *rep)
{
    size_t len = vigil__admin_reply__get_packed_size(&rep->msg);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return;
    vigil__admin_reply__pack(&rep->msg, buf);
    if (zmq_send(self->socket, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(self->socket, buf, len, ZMQ_DONTWAIT) < 0)
        vg_log(VG_LOG_WARN, "admin: reply not delivered: %s", zmq_strerror(zmq_errno()));
    free(buf);
}

/* One request: [routing id][AdminRequest]. */
static bool handle_one(admin_t *self)
{
    uint8_t rid[ROUTING_ID_MAX];
    size_t rid_len;
    int more = 0;
    size_t more_len = sizeof(more);
    zmq_msg_t msg;
    struct reply rep;

    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, self->socket, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&msg);
        return false;
    }
    rid_len = zmq_msg_size(&msg) < ROUTING_ID_MAX ? zmq_msg_size(&msg) : ROUTING_ID_MAX;
    memcpy(rid, zmq_msg_data(&msg), rid_len);
    zmq_msg_close(&msg);
    zmq_msg_init(&msg);
    zmq_msg_recv(&msg, self->socket, 0);

    memset(&rep, 0, sizeof(rep));
    vigil__admin_reply__init(&rep.msg);
    rep.msg.version = VG_PROTOCOL_VERSION;

    zmq_getsockopt(self->socket, ZMQ_RCVMORE, &more, &more_len);
    const char *user_id = zmq_msg_gets(&msg, "User-Id");
    const struct operator* op = user_id ? registry_operator_by_id(self->registry, user_id) : NULL;
    Vigil__AdminRequest *req = NULL;
    const char *why = NULL;

    if (more) {
        while (more) {
            zmq_msg_t extra;
            zmq_msg_init(&extra);
            zmq_msg_recv(&extra, self->socket, 0);
            zmq_msg_close(&extra);
            zmq_getsockopt(self->socket, ZMQ_RCVMORE, &more, &more_len);
        }
        metrics_refused(REFUSE_MALFORMED);
        reply_error(&rep, VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST, "%s",
                    "a request must be exactly one frame");
    } else if (!op) {
        /* The operator was removed after its handshake. */
        metrics_refused(REFUSE_UNKNOWN_KEY);
        reply_error(&rep, VIGIL__ADMIN_STATUS__ADMIN_FORBIDDEN, "%s", "unknown operator");
    } else {
        enum vg_decode_error e =
            vg_admin_request_decode(zmq_msg_data(&msg), zmq_msg_size(&msg), &req, &why);
        if (e != VG_DECODE_OK) {
            metrics_refused(e == VG_DECODE_VERSION  ? REFUSE_VERSION
                            : e == VG_DECODE_LIMITS ? REFUSE_LIMITS
                                                    : REFUSE_MALFORMED);
            vg_log(VG_LOG_WARN, "admin: operator=%s request refused: %s", op->name, why);
            reply_error(&rep, VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST, "%s", why);
        } else {
            metrics_received("admin");
            rep.msg.request_id = req->request_id;
            handle_request(self, op, req, &rep);
        }
    }
    zmq_msg_close(&msg);
    send_reply(self, rid, rid_len, &rep);
    if (req)
        vigil__admin_request__free_unpacked(req, NULL);
    free(rep.infos);
    free(rep.info_ptrs);
    free(rep.msg.signals);
    zlistx_destroy(&rep.signals);
    free(rep.msg.evidence);
    zlistx_destroy(&rep.evidence);
    free(rep.data);
    free(rep.msg.incidents);
    zlistx_destroy(&rep.incidents);
    free(rep.msg.incident_events);
    zlistx_destroy(&rep.incident_events);
    free(rep.report);
    free(rep.msg.notifications);
    zlistx_destroy(&rep.notifications);
    free(rep.oncall);
    free(rep.oncall_ptrs);
    free(rep.overrides);
    return true;
}

void admin_handle(admin_t *self)
{
    /* Bounded, so a flood of requests cannot starve the agents' socket. */
    for (int i = 0; i < 64 && handle_one(self); i++)
        ;
}
