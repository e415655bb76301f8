/* Operator requests about evidence: collect now, list, fetch, verify the vault. */
#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_internal.h"
#include "checkpoint.h"
#include "log.h"
#include "store_retention.h"
#include "timeutil.h"
#include "wire.h"

/* ListEvidence without a collection: the latest artifacts, this many unless asked. */
#define EVIDENCE_LIST_DEFAULT 50
#define EVIDENCE_LIST_MAX 1000
/* Targets of one collection listed at most (a reply stays far below the message limit). */
#define EVIDENCE_TARGETS_MAX 10000
/* Each request walks the vault for this long at most (past the row it is in), so a big vault
 * is checked in steps between which the main loop serves agents. */
#define VERIFY_SLICE_MS 250

static void free_evidence_info(void **item)
{
    Vigil__EvidenceInfo *info = *item;
    if (!info)
        return;
    admin_labels_free(info->args, info->n_args);
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

/* store_evidence_cb: one EvidenceInfo more in the list. */
static int add_evidence(const struct store_evidence_info *row, void *userdata)
{
    zlistx_t *list = userdata;
    Vigil__EvidenceInfo *info = calloc(1, sizeof(*info));
    if (!info)
        return -ENOMEM;
    vigil__evidence_info__init(info);
    zlistx_add_end(list, info);
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
    return admin_labels_from_json(row->args_json, &info->args, &info->n_args) == -ENOMEM ? -ENOMEM
                                                                                         : 0;
}

/* A list for add_evidence, owned by the reply; NULL (and the reply says why) on failure. */
static zlistx_t *evidence_list_start(struct reply *rep)
{
    zlistx_t *list = reply_own(rep, zlistx_new(), reply_release_list);
    if (!list) {
        reply_out_of_memory(rep);
        return NULL;
    }
    zlistx_set_destructor(list, free_evidence_info);
    return list;
}

/* Points the reply message at the list. */
static void evidence_reply(zlistx_t *list, struct reply *rep)
{
    size_t n = zlistx_size(list);
    rep->msg.evidence = reply_own(rep, calloc(n ? n : 1, sizeof(Vigil__EvidenceInfo *)), free);
    if (!rep->msg.evidence) {
        reply_out_of_memory(rep);
        return;
    }
    for (Vigil__EvidenceInfo *info = zlistx_first(list); info; info = zlistx_next(list))
        rep->msg.evidence[rep->msg.n_evidence++] = info;
}

/* The evidence linked to a command (request_id) or an incident, as the reply's entries. */
static void reply_linked_evidence(admin_t *self, struct reply *rep, const char *request_id,
                                  uint64_t incident_id)
{
    zlistx_t *list = evidence_list_start(rep);
    if (!list)
        return;
    evidence_expire(self->store); /* a target past its deadline reads as timed out at once */
    int r = request_id
                ? store_evidence_list_command(self->store, request_id, add_evidence, list)
                : store_evidence_list_incident(self->store, incident_id, add_evidence, list);
    if (r < 0) {
        reply_store_unavailable(rep, false);
        return;
    }
    evidence_reply(list, rep);
}

void admin_reply_command_evidence(admin_t *self, struct reply *rep, const char *request_id)
{
    reply_linked_evidence(self, rep, request_id, 0);
}

void admin_reply_incident_evidence(admin_t *self, struct reply *rep, uint64_t incident_id)
{
    reply_linked_evidence(self, rep, NULL, incident_id);
}

/* One investigate entry from one node; what could not even be requested goes on the
 * timeline (a recorded collection tells its own outcome, also when it fails later). */
static void investigate_on(admin_t *self, const struct steps_job *job, const struct steps_step *e,
                           Vigil__Label **labels, size_t nlabels, const char *node)
{
    Vigil__Collect req = VIGIL__COLLECT__INIT;
    Vigil__AdminStatus status;
    uint64_t collection_id = 0;
    char err[512], text[768];

    req.kind = e->action;
    req.node = (char *)node;
    req.args = labels;
    req.n_args = nlabels;
    if (evidence_collect(self->evidence, self->store, self->registry, "vigil", &req,
                         job->incident_id, &collection_id, &status, err, sizeof(err)) == 0)
        return;
    const char *from = node[0] ? node : VG_COORDINATOR_AGENT_ID; /* "": promql */
    snprintf(text, sizeof(text), "investigation: %s from %s not collected: %s", e->action, from,
             err);
    vg_log(VG_LOG_WARN, "incident=%" PRIu64 " %s", job->incident_id, text);
    store_evidence_investigation_note(self->store, job->incident_id, e->action, from, text);
}

/* The node name of an active cluster agent (role: cluster), or "" when none is connected.
 * False when no agent has ever enrolled as one since the coordinator started: a deployment
 * without a cluster agent, where the shipped runbooks' cluster entries are skipped quietly. */
static bool cluster_node(admin_t *self, char *node, size_t len)
{
    bool known = false;
    node[0] = '\0';
    registry_lock(self->registry);
    for (struct agent *a = registry_agent_next(self->registry, NULL); a;
         a = registry_agent_next(self->registry, a)) {
        known |= a->cluster;
        if (a->cluster && a->state == VIGIL__AGENT_STATE__AGENT_STATE_ACTIVE && !node[0])
            snprintf(node, len, "%s", a->node);
    }
    registry_unlock(self->registry);
    return known;
}

void admin_investigate(admin_t *self, const struct steps_job *job)
{
    /* Nodes joining an open incident: those investigated already are not asked again. A node
     * without any collection (no agent when it joined) is tried again at the next event. */
    bool *skip = calloc(job->nnodes ? job->nnodes : 1, sizeof(bool));
    if (!skip)
        return;
    size_t todo = 0;
    for (size_t n = 0; n < job->nnodes; n++) {
        if (job->joined &&
            store_evidence_investigated(self->store, job->incident_id, job->nodes[n], &skip[n]) < 0)
            skip[n] = true; /* the store is away: the next event tries again */
        todo += !skip[n];
    }
    if (job->joined && todo > 0)
        vg_log(VG_LOG_INFO, "incident=%" PRIu64 " %zu node(s) joined: investigating them",
               job->incident_id, todo);
    char cluster[sizeof(((struct agent *)0)->node)] = "";
    bool cluster_known = false;
    for (size_t i = 0; i < job->ninvestigate && !job->joined && !cluster_known; i++)
        if (job->investigate[i].on_cluster)
            cluster_known = cluster_node(self, cluster, sizeof(cluster));
    for (size_t i = 0; i < job->ninvestigate; i++) {
        const struct steps_step *e = &job->investigate[i];
        /* A promql entry is Prometheus's view, captured by the coordinator: once, when the
         * incident opens. */
        bool promql = strcmp(e->action, "promql") == 0;
        /* A cluster entry is the cluster's state: asked once, when the incident opens; not at
         * all where no cluster agent was ever seen (none is deployed). */
        if (promql ? job->joined : e->on_cluster ? job->joined || !cluster_known : todo == 0)
            continue;
        Vigil__Label labels[VG_MAX_EVIDENCE_ARGS], *label_ptrs[VG_MAX_EVIDENCE_ARGS];
        size_t nargs = e->nargs < VG_MAX_EVIDENCE_ARGS ? e->nargs : VG_MAX_EVIDENCE_ARGS;
        /* cppcheck-suppress knownConditionTrueFalse ; nargs comes from the runbook */
        for (size_t k = 0; k < nargs; k++) {
            vigil__label__init(&labels[k]);
            labels[k].key = e->args[k]->key;
            labels[k].value = e->args[k]->value;
            label_ptrs[k] = &labels[k];
        }
        if (promql) {
            investigate_on(self, job, e, label_ptrs, nargs, "");
            continue;
        }
        if (e->on_cluster) {
            investigate_on(self, job, e, label_ptrs, nargs, cluster[0] ? cluster : "cluster");
            continue;
        }
        for (size_t n = 0; n < job->nnodes; n++) {
            if (!skip[n])
                investigate_on(self, job, e, label_ptrs, nargs, job->nodes[n]);
        }
    }
    free(skip);
}

void admin_freeze_flight(admin_t *self, const struct steps_job *job)
{
    const struct steps_step flight = {.action = "flight"};
    for (size_t n = 0; job->flight && !job->joined && n < job->nnodes; n++)
        investigate_on(self, job, &flight, NULL, 0, job->nodes[n]);
}

static void collect(admin_t *self, const struct operator* op, const Vigil__AdminRequest *request,
                    struct reply *rep)
{
    const Vigil__Collect *req = request->collect;
    char actor[160], err[sizeof(rep->error)];
    Vigil__AdminStatus status = VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST;
    uint64_t collection_id = 0;

    admin_actor(op, actor, sizeof(actor));
    int r = evidence_collect(self->evidence, self->store, self->registry, actor, req, 0,
                             &collection_id, &status, err, sizeof(err));
    if (r < 0) {
        vg_log(VG_LOG_WARN, "operator=%s collect kind=%.32s refused: %s", op->name, req->kind, err);
        reply_error(rep, status, "%s", err);
        return;
    }
    rep->msg.collection_id = collection_id;
    zlistx_t *list = evidence_list_start(rep);
    if (!list)
        return;
    if (store_evidence_list(self->store, collection_id, NULL, EVIDENCE_TARGETS_MAX, add_evidence,
                            list) < 0) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_UNAVAILABLE,
                    "collection %" PRIu64 " was started, but listing its targets failed; "
                    "list it again",
                    collection_id);
        return;
    }
    evidence_reply(list, rep);
}

static void list_evidence(admin_t *self, const struct operator* op,
                          const Vigil__AdminRequest *request, struct reply *rep)
{
    (void)op;
    const Vigil__ListEvidence *req = request->list_evidence;
    uint32_t limit = req->limit ? req->limit : EVIDENCE_LIST_DEFAULT;
    if (req->collection_id != 0)
        limit = EVIDENCE_TARGETS_MAX;
    else if (limit > EVIDENCE_LIST_MAX)
        limit = EVIDENCE_LIST_MAX;
    zlistx_t *list = evidence_list_start(rep);
    if (!list)
        return;
    /* A target past its deadline reads as timed out at once, not at the next tick. */
    if (req->collection_id != 0)
        evidence_expire(self->store);
    if (store_evidence_list(self->store, req->collection_id, req->node, limit, add_evidence, list) <
        0) {
        reply_store_unavailable(rep, false);
        return;
    }
    if (req->collection_id != 0 && zlistx_size(list) == 0 && !req->node[0]) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_NOT_FOUND, "collection %" PRIu64 " not found",
                    req->collection_id);
        return;
    }
    evidence_reply(list, rep);
}

static void get_evidence(admin_t *self, const struct operator* op,
                         const Vigil__AdminRequest *request, struct reply *rep)
{
    const Vigil__GetEvidence *req = request->get_evidence;
    size_t max = req->max_bytes && req->max_bytes < VG_MAX_EVIDENCE_READ_BYTES
                     ? req->max_bytes
                     : VG_MAX_EVIDENCE_READ_BYTES;
    zlistx_t *list = evidence_list_start(rep);
    if (!list)
        return;
    int r = store_evidence_get(self->store, req->id, add_evidence, list);
    if (r == -ENOENT) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_NOT_FOUND, "evidence %" PRIu64 " not found",
                    req->id);
        return;
    }
    int64_t removed_at = 0;
    uint64_t audit_id = 0;
    if (r == 0 && store_evidence_removal(self->store, req->id, &removed_at, &audit_id) == 0) {
        /* Retention took its bytes (026_retention.sql); its row, size and SHA-256 stay. */
        char day[16];
        vg_date_text(removed_at, day, sizeof(day));
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_CONFLICT,
                    "evidence %" PRIu64 ": its content was removed by retention on %s (audit row "
                    "%" PRIu64 "); its size and SHA-256 stay in the vault",
                    req->id, day, audit_id);
        return;
    }
    size_t got = 0;
    uint8_t *data = r == 0 ? reply_own(rep, malloc(max), free) : NULL;
    if (r == 0 && !data)
        r = -ENOMEM;
    if (r == 0)
        r = store_evidence_read(self->store, req->id, req->offset, data, max, &got);
    if (r < 0) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_UNAVAILABLE,
                    "cannot read evidence %" PRIu64 ": %s", req->id,
                    r == -EPROTO ? "its stored chunks are inconsistent"
                                 : "the store is unavailable");
        return;
    }
    rep->msg.data.data = data;
    rep->msg.data.len = got;
    evidence_reply(list, rep);
    if (req->offset == 0 && rep->msg.n_evidence == 1) {
        /* Chain of custody: who fetched which artifact, once per fetch (its first chunk). */
        const Vigil__EvidenceInfo *e = rep->msg.evidence[0];
        char actor[160], subject[48], detail[384];
        admin_actor(op, actor, sizeof(actor));
        snprintf(subject, sizeof(subject), "evidence=%" PRIu64, req->id);
        snprintf(detail, sizeof(detail),
                 "kind=%.32s node=%.64s sha256=%.64s size=%" PRIu64 " from=%s", e->kind, e->node,
                 e->sha256, e->size, self->request_peer[0] ? self->request_peer : "-");
        if (store_audit(self->store, actor, "evidence.get", subject, detail) < 0)
            vg_log(VG_LOG_WARN, "evidence=%" PRIu64 " fetched by %s: not audited (store)",
                   req->id, op->name);
    }
}

/* What a VerifyEvidence reply points into. */
struct verify_reply {
    Vigil__EvidenceVerifyResult result;
    char reason[STORE_VERIFY_REASON_MAX];
    char checkpoint_reason[512];
    /* The other chains' verdicts (the last walk step only). */
    struct store_chain_verdict verdicts[VG_CHAINS];
    Vigil__ChainVerdict chains[VG_CHAINS];
    Vigil__ChainVerdict *chain_ptrs[VG_CHAINS];
    uint8_t chain[VG_SHA256_LEN];
};

static void verify_evidence(admin_t *self, const struct operator* op,
                            const Vigil__AdminRequest *request, struct reply *rep)
{
    const Vigil__VerifyEvidence *req = request->verify_evidence;
    struct store_verify_result res;
    char actor[160], detail[128 + STORE_VERIFY_REASON_MAX + 520];

    if (!self->verify)
        self->verify = store_verify_new(store_conninfo(self->store));
    struct verify_reply *out = reply_own(rep, calloc(1, sizeof(*out)), free);
    if (!self->verify || !out) {
        reply_out_of_memory(rep);
        return;
    }
    int r = store_evidence_verify(self->verify, req->after_id,
                                  req->after_id ? req->after_chain.data : NULL, req->max_artifacts,
                                  VERIFY_SLICE_MS, &res);
    if (r < 0) {
        reply_store_unavailable(rep, false);
        return;
    }
    Vigil__EvidenceVerifyResult *v = &out->result;
    vigil__evidence_verify_result__init(v);
    v->checked = res.checked;
    v->bytes = res.bytes;
    v->removed = res.removed;
    v->ok = res.broken_id == 0;
    v->broken_id = res.broken_id;
    snprintf(out->reason, sizeof(out->reason), "%s", res.reason);
    v->reason = out->reason;
    v->done = res.done;
    v->last_id = res.last_id;
    memcpy(out->chain, res.last_chain, VG_SHA256_LEN);
    v->last_chain.data = out->chain;
    v->last_chain.len = VG_SHA256_LEN;
    v->checkpoint_reason = out->checkpoint_reason;
    rep->msg.evidence_verify = v;
    /* The walk is done: the other chains are checked whole, each in one query, once the rows
     * committed so far are linked. */
    bool chains_ok = true;
    if (res.done && store_chains_link(self->verify, NULL) < 0) {
        reply_store_unavailable(rep, false);
        return;
    }
    for (int c = VG_CHAIN_AUDIT; res.done && c < VG_CHAINS; c++) {
        struct store_chain_verdict *d = &out->verdicts[c];
        if (store_chain_verify(self->verify, admin_chain_table((enum vg_chain)c), d) < 0) {
            reply_store_unavailable(rep, false);
            return;
        }
        Vigil__ChainVerdict *cv = &out->chains[c];
        vigil__chain_verdict__init(cv);
        cv->name = (char *)vg_chain_name((enum vg_chain)c);
        cv->rows = d->rows;
        cv->ok = !d->broken;
        cv->broken_at = d->broken_seq;
        cv->reason = d->reason;
        cv->head = d->head_seq;
        out->chain_ptrs[v->n_chains++] = cv;
        chains_ok = chains_ok && cv->ok;
        if (d->broken)
            vg_log(VG_LOG_ERROR, "%s chain: broken at place %" PRIu64 " reason=\"%s\" operator=%s",
                   cv->name, d->broken_seq, d->reason, op->name);
    }
    v->chains = out->chain_ptrs;
    /* A checkpoint vouches for the tail, which the chain alone cannot: judged once the walk
     * reached the end intact (its text was checked by check_verify). */
    struct vg_checkpoint cp;
    bool with_checkpoint = req->checkpoint[0] && res.done && res.broken_id == 0 &&
                           vg_checkpoint_parse(req->checkpoint, strlen(req->checkpoint), &cp,
                                               out->checkpoint_reason,
                                               sizeof(out->checkpoint_reason)) == 0;
    if (with_checkpoint)
        v->checkpoint_ok = admin_checkpoint_check(self, &cp, res.last_id, &v->checkpoint_broken_id,
                                                  out->checkpoint_reason,
                                                  sizeof(out->checkpoint_reason));

    /* The verdict, once per walk: a walk of many steps is one audit row, at its end. */
    if (!res.done && res.broken_id == 0)
        return;
    if (with_checkpoint && !v->checkpoint_ok)
        vg_log(VG_LOG_ERROR, "evidence vault: checkpoint not held: %s operator=%s",
               out->checkpoint_reason, op->name);
    if (res.broken_id)
        vg_log(VG_LOG_ERROR,
               "evidence vault: chain broken at evidence=%" PRIu64 " reason=\"%s\" operator=%s",
               res.broken_id, res.reason, op->name);
    else
        vg_log(VG_LOG_INFO, "evidence vault: chain intact through evidence=%" PRIu64 " operator=%s",
               res.last_id, op->name);
    admin_actor(op, actor, sizeof(actor));
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
    if (res.done) {
        size_t len = strlen(detail);
        snprintf(detail + len, sizeof(detail) - len, "; other chains %s",
                 chains_ok ? "intact" : "broken");
    }
    if (with_checkpoint) {
        size_t len = strlen(detail);
        snprintf(detail + len, sizeof(detail) - len, "; checkpoint %s",
                 v->checkpoint_ok ? "held" : out->checkpoint_reason);
    }
    if (store_audit(self->store, actor, "evidence.verify", "evidence vault", detail) < 0)
        vg_log(VG_LOG_WARN, "evidence vault verification not written to the audit log");
}

static const char *check_collect(const Vigil__AdminRequest *req)
{
    if (!vg_text_fits(req->collect->node, VG_MAX_NAME_LEN))
        return "node name longer than 128 bytes";
    if (!vg_evidence_kind_name_ok(req->collect->kind))
        return "the kind must be a short name of a-z, 0-9 and _ (at most 32 bytes)";
    if (!vg_evidence_args_ok(req->collect->args, req->collect->n_args))
        return "at most 16 arguments, each with a key of at most 128 bytes and a value of at "
               "most 1024";
    return NULL;
}

static const char *check_list(const Vigil__AdminRequest *req)
{
    return vg_text_fits(req->list_evidence->node, VG_MAX_NAME_LEN)
               ? NULL
               : "node name longer than 128 bytes";
}

static const char *check_get(const Vigil__AdminRequest *req)
{
    return req->get_evidence->offset > (uint64_t)VG_MAX_EVIDENCE_BYTES
               ? "offset beyond the artifact size limit"
               : NULL;
}

static const char *check_verify(const Vigil__AdminRequest *req)
{
    const Vigil__VerifyEvidence *v = req->verify_evidence;
    /* A place to go on from is a row id with that row's chain hash, or neither. */
    if (v->after_id > (uint64_t)INT64_MAX ||
        (v->after_id == 0 ? v->after_chain.len != 0 : v->after_chain.len != 32))
        return "after_id needs after_chain, that row's 32-byte chain hash (and only then)";
    static __thread char why[300];
    struct vg_checkpoint cp;
    char err[256];
    if (v->checkpoint[0] &&
        vg_checkpoint_parse(v->checkpoint, strlen(v->checkpoint), &cp, err, sizeof(err)) < 0) {
        snprintf(why, sizeof(why), "the checkpoint is not valid: %s", err);
        return why;
    }
    return NULL;
}

const struct admin_command admin_evidence_commands[] = {
    {VIGIL__ADMIN_REQUEST__BODY_COLLECT, ROLE_RESPONDER, "collecting evidence", check_collect,
     collect},
    {VIGIL__ADMIN_REQUEST__BODY_LIST_EVIDENCE, ROLE_VIEWER, "listing evidence", check_list,
     list_evidence},
    /* Artifacts hold file contents and process lists: more than a viewer may read. */
    {VIGIL__ADMIN_REQUEST__BODY_GET_EVIDENCE, ROLE_RESPONDER, "fetching evidence", check_get,
     get_evidence},
    /* Responder, like fetching evidence: the walk reads every artifact's content and re-hashes
     * the whole vault, work on the coordinator a read-only viewer should not be able to start
     * at will; the reply itself carries only hashes and counts. */
    {VIGIL__ADMIN_REQUEST__BODY_VERIFY_EVIDENCE, ROLE_RESPONDER, "verifying the evidence vault",
     check_verify, verify_evidence},
    {0},
};
