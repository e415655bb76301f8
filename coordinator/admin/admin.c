/*
 * vigilctl's socket, served on a thread of its own: receives one AdminRequest, finds its entry
 * in the command tables (admin_internal.h), checks the operator's role, runs the handler and
 * sends the reply.
 */
#include "admin.h"

#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <zmq.h>

#include "admin_internal.h"
#include "evloop.h"
#include "log.h"
#include "metrics.h"
#include "promql_evidence.h"
#include "runbook_load.h"
#include "timeutil.h"
#include "wire.h"

#define ROUTING_ID_MAX 255

admin_t *admin_new(void *ctx, const char *endpoint, const struct vg_keypair *server_keys,
                   int heartbeat_ivl_ms, registry_t *registry, const char *conninfo, char *err,
                   size_t errlen)
{
    int on = 1;
    admin_t *self = calloc(1, sizeof(*self));
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&self->changes_lock, NULL);
    self->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    self->steps_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    self->registry = registry;
    self->store = store_connect(conninfo, "vigil-coordinator-admin");
    self->limiter = steps_limiter_new(STEPS_AUTO_MIN_INTERVAL_DEFAULT_MS);
    if (self->stop_fd < 0 || self->steps_fd < 0 || !self->store || !self->limiter) {
        snprintf(err, errlen, "admin: %s",
                 self->stop_fd < 0 || self->steps_fd < 0 ? strerror(errno) : "out of memory");
        admin_destroy(&self);
        return NULL;
    }
    self->evidence = evidence_requester_new(ctx, err, errlen);
    if (!self->evidence) {
        admin_destroy(&self);
        return NULL;
    }
    self->socket = zmq_socket(ctx, ZMQ_ROUTER);
    if (!self->socket ||
        vg_zmq_common_options(self->socket, heartbeat_ivl_ms, VG_LIVENESS_ZMTP) < 0 ||
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

static int serve_requests(vg_loop_t *loop, void *userdata)
{
    (void)loop;
    admin_handle(userdata);
    return 0;
}

/* Runs the runbook steps the main loop queued (admin_runbook_steps). */
static int serve_steps(vg_loop_t *loop, void *userdata)
{
    (void)loop;
    admin_t *self = userdata;
    uint64_t count;
    if (read(self->steps_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
        vg_log(VG_LOG_WARN, "admin: steps eventfd: %s", strerror(errno));
    pthread_mutex_lock(&self->changes_lock);
    struct steps_job *jobs = self->steps_head;
    self->steps_head = self->steps_tail = NULL;
    pthread_mutex_unlock(&self->changes_lock);
    while (jobs) {
        struct steps_job *next = jobs->next;
        admin_investigate(self, jobs); /* started first, not waited for */
        admin_commands_run_steps(self, jobs);
        /* The rings hold the minutes before already: frozen after the automatic steps are on
         * their way, so an action does not queue behind a ring on its node (DESIGN: fault ->
         * action), nor wait for its collection's statement here. */
        admin_freeze_flight(self, jobs);
        steps_job_destroy(&jobs);
        jobs = next;
    }
    return 0;
}

void admin_runbook_steps(admin_t *self, struct steps_job **job_p)
{
    if (!job_p || !*job_p)
        return;
    struct steps_job *job = *job_p;
    *job_p = NULL;
    job->next = NULL;
    pthread_mutex_lock(&self->changes_lock);
    if (self->steps_tail)
        self->steps_tail->next = job;
    else
        self->steps_head = job;
    self->steps_tail = job;
    pthread_mutex_unlock(&self->changes_lock);
    uint64_t one = 1;
    if (write(self->steps_fd, &one, sizeof(one)) != sizeof(one))
        vg_log(VG_LOG_ERROR, "admin: cannot wake the thread for runbook steps: %s",
               strerror(errno));
}

void admin_set_watchlist(admin_t *self, struct steps_watchlist *watchlist)
{
    self->watchlist = watchlist;
}

static void remember_auto(void *userdata, const char *runbook, const char *node,
                          int64_t created_at_ms)
{
    steps_limiter_allow(userdata, runbook, node, created_at_ms);
}

int admin_set_auto_min_interval(admin_t *self, int64_t interval_ms)
{
    steps_limiter_t *fresh = steps_limiter_new(interval_ms);
    if (!fresh)
        return -ENOMEM;
    /* What Vigil ran by itself within the interval before a restart still counts. */
    int r = store_commands_recent_auto(self->store, vg_wall_ms() - interval_ms, remember_auto,
                                       fresh);
    if (r < 0)
        vg_log(VG_LOG_WARN,
               "runbook steps: the automatic commands of the last %llds could not be read (%s): "
               "the rate limit starts empty",
               (long long)(interval_ms / 1000), strerror(-r));
    steps_limiter_destroy(&self->limiter);
    self->limiter = fresh;
    return 0;
}

/* Finished promql captures become artifacts in the vault (promql_evidence.h). */
static int serve_captures(vg_loop_t *loop, void *userdata)
{
    (void)loop;
    admin_t *self = userdata;
    promql_evidence_settle(self->promql, self->store);
    return 0;
}

static int serve_stop(vg_loop_t *loop, void *userdata)
{
    (void)userdata;
    vg_loop_stop(loop, 0);
    return 0;
}

/* The admin thread: requests until admin_destroy writes stop_fd. */
static void *admin_main(void *arg)
{
    admin_t *self = arg;
    vg_loop_t *loop = vg_loop_new();
    int r = loop ? 0 : -ENOMEM;
    if (r == 0)
        r = vg_loop_add_socket(loop, self->socket, serve_requests, self);
    if (r == 0)
        r = vg_loop_add_fd(loop, self->steps_fd, serve_steps, self);
    if (r == 0)
        r = vg_loop_add_fd(loop, self->stop_fd, serve_stop, self);
    if (r == 0 && self->promql)
        r = vg_loop_add_fd(loop, promql_capture_fd(self->promql), serve_captures, self);
    if (r == 0) {
        int timer = vg_loop_add_timer(loop, ADMIN_CHAIN_LINK_MS, admin_chain_tick, self);
        r = timer < 0 ? timer : 0;
    }
    if (r == 0 && self->checkpoints.enabled && self->checkpoints.interval_ms > 0) {
        int timer = vg_loop_add_timer(loop, self->checkpoints.interval_ms, admin_checkpoint_tick,
                                      self);
        r = timer < 0 ? timer : 0;
    }
    if (r == 0)
        r = vg_loop_run(loop);
    if (r < 0 && r != -ETERM)
        vg_log(VG_LOG_ERROR, "admin: %s; vigilctl is no longer served", zmq_strerror(-r));
    vg_loop_destroy(&loop);
    return NULL;
}

int admin_start(admin_t *self)
{
    int r = pthread_create(&self->thread, NULL, admin_main, self);
    if (r != 0)
        return -r;
    self->running = true;
    return 0;
}

void admin_destroy(admin_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    admin_t *self = *self_p;
    if (self->running) {
        uint64_t one = 1;
        if (write(self->stop_fd, &one, sizeof(one)) != sizeof(one))
            vg_log(VG_LOG_ERROR, "admin: cannot wake the thread to stop: %s", strerror(errno));
        pthread_join(self->thread, NULL);
        self->running = false;
    }
    if (self->socket)
        zmq_close(self->socket);
    evidence_requester_destroy(&self->evidence);
    store_incidents_destroy(&self->incidents);
    store_oncall_destroy(&self->oncall);
    store_verify_destroy(&self->verify);
    store_destroy(&self->store);
    if (self->stop_fd >= 0)
        close(self->stop_fd);
    if (self->steps_fd >= 0)
        close(self->steps_fd);
    while (self->steps_head) {
        struct steps_job *next = self->steps_head->next;
        steps_job_destroy(&self->steps_head);
        self->steps_head = next;
    }
    steps_limiter_destroy(&self->limiter);
    runbooks_release(&self->runbooks);
    vg_signing_key_wipe(&self->checkpoints.key);
    free(self->changes);
    pthread_mutex_destroy(&self->changes_lock);
    free(self);
    *self_p = NULL;
}

void *admin_socket(admin_t *self)
{
    return self->socket;
}

void admin_set_paging(admin_t *self, const struct paging_config *paging)
{
    self->paging = paging;
}

void admin_set_runbooks(admin_t *self, const struct rb_set *set)
{
    const struct rb_set *fresh = runbooks_ref(set);
    pthread_mutex_lock(&self->changes_lock);
    const struct rb_set *old = self->runbooks;
    self->runbooks = fresh;
    pthread_mutex_unlock(&self->changes_lock);
    runbooks_release(&old);
}

const struct rb_set *admin_runbooks(admin_t *self)
{
    pthread_mutex_lock(&self->changes_lock);
    const struct rb_set *set = runbooks_ref(self->runbooks);
    pthread_mutex_unlock(&self->changes_lock);
    return set;
}

void admin_set_status_page(admin_t *self, const struct status_page_config *status_page)
{
    self->status_page = status_page;
}

void admin_set_remediate(admin_t *self, remediate_t *remediate)
{
    self->remediate = remediate;
}

void admin_set_promql(admin_t *self, struct promql *promql)
{
    self->promql = promql;
    evidence_requester_set_promql(self->evidence, promql);
}

void admin_set_observer(admin_t *self, const struct router_observer *observer)
{
    if (observer)
        self->observer = *observer;
    else
        memset(&self->observer, 0, sizeof(self->observer));
}

void admin_node_change(admin_t *self, const char *node, bool up, int64_t at_ms)
{
    pthread_mutex_lock(&self->changes_lock);
    if (self->nchanges == self->changes_cap) {
        size_t cap = self->changes_cap ? self->changes_cap * 2 : 8;
        struct admin_node_change *grown = realloc(self->changes, cap * sizeof(*grown));
        if (!grown) {
            pthread_mutex_unlock(&self->changes_lock);
            vg_log(VG_LOG_ERROR, "admin: out of memory: node=%s %s not told to the rule engine",
                   node, up ? "up" : "down");
            return;
        }
        self->changes = grown;
        self->changes_cap = cap;
    }
    struct admin_node_change *c = &self->changes[self->nchanges++];
    snprintf(c->node, sizeof(c->node), "%s", node);
    c->up = up;
    c->at_ms = at_ms;
    pthread_mutex_unlock(&self->changes_lock);
}

void admin_node_changes(admin_t *self)
{
    struct admin_node_change *changes;
    size_t n;

    pthread_mutex_lock(&self->changes_lock);
    changes = self->changes;
    n = self->nchanges;
    self->changes = NULL;
    self->nchanges = self->changes_cap = 0;
    pthread_mutex_unlock(&self->changes_lock);
    for (size_t i = 0; i < n && self->observer.agent_state; i++)
        self->observer.agent_state(self->observer.userdata, changes[i].node, changes[i].up,
                                   changes[i].at_ms);
    free(changes);
}

/* ---- replies ---- */

void reply_error(struct reply *rep, Vigil__AdminStatus status, const char *fmt, ...)
{
    va_list ap;

    rep->msg.status = status;
    va_start(ap, fmt);
    vsnprintf(rep->error, sizeof(rep->error), fmt, ap);
    va_end(ap);
    rep->msg.error = rep->error;
}

void reply_out_of_memory(struct reply *rep)
{
    reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_UNAVAILABLE, "%s", "out of memory");
}

void reply_store_unavailable(struct reply *rep, bool was_change)
{
    reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_UNAVAILABLE, "%s",
                was_change ? "the store is unavailable; nothing changed"
                           : "the store is unavailable; try again");
}

void reply_incident_not_found(struct reply *rep, uint64_t id)
{
    reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_NOT_FOUND, "incident %" PRIu64 " not found", id);
}

void *reply_own(struct reply *rep, void *ptr, void (*release)(void *ptr))
{
    if (!ptr)
        return NULL;
    if (rep->nowned == rep->owned_cap) {
        size_t cap = rep->owned_cap ? rep->owned_cap * 2 : 8;
        struct reply_owned *grown = realloc(rep->owned, cap * sizeof(*grown));
        if (!grown) {
            release(ptr);
            reply_out_of_memory(rep);
            return NULL;
        }
        rep->owned = grown;
        rep->owned_cap = cap;
    }
    rep->owned[rep->nowned++] = (struct reply_owned){ptr, release};
    return ptr;
}

void reply_release(struct reply *rep)
{
    while (rep->nowned > 0) {
        struct reply_owned *o = &rep->owned[--rep->nowned];
        o->release(o->ptr);
    }
    free(rep->owned);
    rep->owned = NULL;
    rep->owned_cap = 0;
}

void reply_release_list(void *list)
{
    zlistx_t *l = list;
    zlistx_destroy(&l);
}

void admin_actor(const struct operator* op, char *out, size_t len)
{
    snprintf(out, len, "operator:%s", op->name);
}

/* ---- shared by the listings ---- */

void admin_labels_free(Vigil__Label **labels, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(labels[i]->key);
        free(labels[i]->value);
        free(labels[i]);
    }
    free(labels);
}

int admin_labels_from_json(const char *labels_json, Vigil__Label ***ret_labels, size_t *ret_n)
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

/* ---- dispatch ---- */

static const struct admin_command *const tables[] = {
    admin_agent_commands,    admin_signal_commands, admin_evidence_commands,
    admin_incident_commands, admin_paging_commands, admin_operator_commands,
    admin_command_commands,  admin_silence_commands, admin_drill_commands,
    admin_checkpoint_commands, admin_export_commands,
    admin_steer_commands,    admin_followup_commands, admin_hold_commands,
};

const struct admin_command *admin_command_find(Vigil__AdminRequest__BodyCase body)
{
    for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
        for (const struct admin_command *c = tables[t]; c->body; c++) {
            if (c->body == body)
                return c;
        }
    }
    return NULL;
}

static bool allowed(const struct operator* op, const struct admin_command *cmd, struct reply *rep)
{
    if (op->role >= cmd->role)
        return true;
    metrics_refused(REFUSE_FORBIDDEN);
    vg_log(VG_LOG_WARN, "operator=%s role=%s refused: %s needs %s", op->name,
           operator_role_name(op->role), cmd->what, operator_role_name(cmd->role));
    reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_FORBIDDEN, "%s needs the %s role (you are %s)",
                cmd->what, operator_role_name(cmd->role), operator_role_name(op->role));
    return false;
}

enum vg_decode_error admin_request_check(const Vigil__AdminRequest *req, const char **ret_why)
{
    const struct admin_command *cmd = admin_command_find(req->body_case);
    if (!cmd) {
        *ret_why = "unknown request type";
        return VG_DECODE_UNKNOWN_TYPE;
    }
    const char *why = cmd->check ? cmd->check(req) : NULL;
    if (why) {
        *ret_why = why;
        return VG_DECODE_LIMITS;
    }
    return VG_DECODE_OK;
}

void admin_dispatch(admin_t *self, const struct operator* op, const Vigil__AdminRequest *req,
                    struct reply *rep)
{
    const char *why = NULL;
    enum vg_decode_error e = admin_request_check(req, &why);
    if (e != VG_DECODE_OK) {
        metrics_refused(e == VG_DECODE_LIMITS ? REFUSE_LIMITS : REFUSE_UNKNOWN_TYPE);
        vg_log(VG_LOG_WARN, "admin: operator=%s request refused: %s", op->name, why);
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST, "%s", why);
        return;
    }
    const struct admin_command *cmd = admin_command_find(req->body_case);
    if (allowed(op, cmd, rep))
        cmd->handle(self, op, req, rep);
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
    /* Where the request came from, for audit rows that record it (export.c). */
    const char *peer = zmq_msg_gets(&msg, "Peer-Address");
    snprintf(self->request_peer, sizeof(self->request_peer), "%s", peer ? peer : "");
    /* A copy, without registry_lock: a listing never waits for the main loop's turn. */
    struct operator op_copy;
    const struct operator* op =
        user_id && registry_operator_copy_by_id(self->registry, user_id, &op_copy) ? &op_copy
                                                                                    : NULL;
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
        /* The operator was revoked, or rotated its keys, after its handshake. */
        metrics_refused(REFUSE_UNKNOWN_KEY);
        reply_error(&rep, VIGIL__ADMIN_STATUS__ADMIN_FORBIDDEN, "%s",
                    "this operator key was revoked or replaced since the connection was made");
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
            admin_dispatch(self, op, req, &rep);
        }
    }
    zmq_msg_close(&msg);
    send_reply(self, rid, rid_len, &rep);
    if (req)
        vigil__admin_request__free_unpacked(req, NULL);
    reply_release(&rep);
    return true;
}

void admin_handle(admin_t *self)
{
    /* Bounded, so a flood of requests cannot starve the agents' socket. */
    for (int i = 0; i < 64 && handle_one(self); i++)
        ;
}
