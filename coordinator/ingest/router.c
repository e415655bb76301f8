#include "router.h"

#include <arpa/inet.h>
#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <zmq.h>

#include "catalog.h"
#include "evidence.h"
#include "log.h"
#include "metrics.h"
#include "remediate.h"
#include "routes.h"
#include "series_cap.h"
#include "timeutil.h"
#include "token.h"
#include "utf8.h"
#include "wire.h"
#include "zap.h"

/* One batch stops at whichever comes first; the rest waits in the socket. At most two batches
 * are decoded at a time: the one being committed and the one being received. 256 messages:
 * decoded batches of 50 signals are ~15 KB each, and 1,024 of them held ~30 MB more at the same
 * ingest rate (tests/bench/ingest.sh). */
#define DRAIN_MAX_MESSAGES 256
#define DRAIN_MAX_BYTES (16 * 1024 * 1024)
/* router_handle keeps overlapping receive and commit this long, then lets the loop run. */
#define RECEIVE_WAITED_MS 100 /* a receive the main thread waits for stops after this */
#define HANDLE_BUDGET_MS 500
#define ROUTING_ID_MAX 255
/* Per connection: what libzmq queues before it stops reading that connection, so the rest of
 * an agent's window (link.max_inflight, 256 by default) waits in TCP and in its spool, and a
 * flooding peer costs at most this many messages. 2, not more: at 16, 5,000 agents at full
 * ingest held 143 KB each (every queued message is kept encrypted and decrypted), at 2 (with
 * 256-message batches) 69 KB, and stored more rows per second; 1 stops enrollment altogether
 * (libzmq 4.3.4). A stopped connection is why the agents' socket sends no ZMTP heartbeats
 * (VG_LIVENESS_TCP). router_config.receive_queue_messages overrides it. */
#define RCVHWM_MESSAGES 2
/* A peer that is not an active agent may only enroll, and an enrollment request is a few
 * hundred bytes: anything larger from it is refused without being decoded. */
#define UNADMITTED_MAX_BYTES 4096
#define ENROLL_WINDOW_MS 60000
#define ENROLL_WINDOWS_MAX 10000 /* addresses (IPv6: /64s) with an open rate window */

struct peer {
    uint8_t routing_id[ROUTING_ID_MAX];
    size_t routing_id_len;
    char user_id[64];                    /* from ZAP: the agent id its key maps to */
    char address[64];                    /* Peer-Address, for logs and the enrollment rate limit */
    char public_key[VG_KEY_Z85_LEN + 1]; /* from ZAP metadata (ZAP_PROPERTY_KEY) */
};

/* A received message, decoded (env) or not (error, why). */
struct inbound {
    struct peer peer;
    Vigil__Envelope *env;
    enum vg_decode_error error;
    const char *why;
    uint64_t seq;    /* what a message that could not be decoded claims (0: unknown) */
    bool multipart;  /* more than one frame: refused before anything else */
    bool unadmitted; /* too large for a peer that is not an active agent: not decoded */
    bool fresh;      /* committed and new (not a resend of a stored message) */
};

/*
 * A batch: what one receive took from the socket, then (after dispatch) the durable messages
 * of it, which are committed together and then acknowledged.
 */
struct inbox {
    struct inbound *items; /* DRAIN_MAX_MESSAGES of them */
    size_t n;
    size_t bytes; /* of every message received, for DRAIN_MAX_BYTES */
};

/*
 * The receiver thread reads and decodes every message from the agents' socket, into inbox[1]:
 * while the main thread commits the batch in inbox[0] it frees the batch acknowledged before
 * and receives the next one. receiver_start lends it the socket and inbox[1], receiver_stop
 * takes them back; in between the main thread touches neither (a ZeroMQ socket may change
 * threads across such a hand-over). Decoding and freeing on one thread also keeps the
 * envelopes' memory in one malloc arena.
 *
 * While the receiver runs, the main thread commits and does not change the registry, so the
 * receiver may look senders up in it (read only) to refuse a large message from a peer that is
 * not an active agent before decoding it: unauthenticated traffic costs no decoding memory.
 */
struct receiver {
    pthread_t thread;
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* main thread -> receiver: run is set, or exit */
    pthread_cond_t done; /* receiver -> main thread: running is cleared */
    bool run, running, exit;
    bool wait;        /* wait for more messages until stopped, or stop when none is waiting */
    atomic_bool stop; /* the main thread wants the socket back */
    int stop_fd;      /* eventfd: wakes a receiver that waits for messages */
};

struct enroll_window {
    int64_t start_mono;
    int64_t count;
};

struct router {
    void *socket;
    struct router_config cfg;
    registry_t *registry;
    store_t *store;
    struct inbox inbox[2];
    struct receiver receiver;
    zhashx_t *enroll_windows;         /* address -> struct enroll_window */
    routes_t *routes;                 /* where each agent is, what it has not answered */
    evidence_dispatcher_t *evidence;  /* CollectRequests queued by the admin side */
    remediate_dispatcher_t *commands; /* command capsules queued by the admin side */
    int64_t next_forget_mono;         /* forget_stale's next run */
    series_cap_t *series;             /* distinct signal series per agent, bounded */
};

static int receiver_init(router_t *self);
static void receiver_fini(struct receiver *rx);

static void free_entry(void **item)
{
    free(*item);
    *item = NULL;
}

static int setopt_int(void *socket, int option, int value)
{
    return zmq_setsockopt(socket, option, &value, sizeof(value));
}

router_t *router_new(void *ctx, const struct router_config *cfg, registry_t *registry,
                     store_t *store, char *err, size_t errlen)
{
    router_t *self = calloc(1, sizeof(*self));
    if (!self)
        goto err_nomem;
    self->cfg = *cfg;
    self->registry = registry;
    self->store = store;
    self->receiver.stop_fd = -1;
    for (int i = 0; i < 2; i++) {
        self->inbox[i].items = calloc(DRAIN_MAX_MESSAGES, sizeof(*self->inbox[i].items));
        if (!self->inbox[i].items)
            goto err_nomem;
    }
    self->enroll_windows = zhashx_new();
    self->routes = routes_new();
    if (!self->enroll_windows || !self->routes)
        goto err_nomem;
    zhashx_set_destructor(self->enroll_windows, free_entry);
    self->series = series_cap_new(cfg->max_series_per_agent > 0 ? (size_t)cfg->max_series_per_agent
                                                                : (size_t)-1);
    if (!self->series)
        goto err_nomem;
    self->evidence = evidence_dispatcher_new(ctx, err, errlen);
    if (self->evidence)
        self->commands = remediate_dispatcher_new(ctx, err, errlen);
    if (!self->evidence || !self->commands) {
        router_destroy(&self);
        return NULL;
    }

    self->socket = zmq_socket(ctx, ZMQ_ROUTER);
    if (!self->socket)
        goto err_zmq;
    /* A send to a vanished agent fails loudly (EHOSTUNREACH) instead of vanishing. Receive
     * high-water marks stop reading from an agent's connection rather than dropping: the
     * back-pressure lands in TCP and then in the agent's spool. */
    if (vg_zmq_common_options(self->socket, (int)cfg->heartbeat_interval_ms,
                              VG_LIVENESS_TCP) < 0 ||
        setopt_int(self->socket, ZMQ_ROUTER_MANDATORY, 1) != 0 ||
        setopt_int(self->socket, ZMQ_RCVHWM,
                   cfg->receive_queue_messages > 0 ? cfg->receive_queue_messages
                                                   : RCVHWM_MESSAGES) != 0 ||
        setopt_int(self->socket, ZMQ_SNDHWM, 100000) != 0 ||
        setopt_int(self->socket, ZMQ_CURVE_SERVER, 1) != 0 ||
        zmq_setsockopt(self->socket, ZMQ_CURVE_SECRETKEY, cfg->server_keys->secret_key,
                       VG_KEY_Z85_LEN) != 0 ||
        zmq_setsockopt(self->socket, ZMQ_ZAP_DOMAIN, VG_ZAP_DOMAIN_AGENTS,
                       strlen(VG_ZAP_DOMAIN_AGENTS)) != 0)
        goto err_zmq;
    if (zmq_bind(self->socket, cfg->endpoint) != 0) {
        snprintf(err, errlen, "cannot listen for agents on %s: %s", cfg->endpoint,
                 zmq_strerror(zmq_errno()));
        router_destroy(&self);
        return NULL;
    }
    int r = receiver_init(self);
    if (r < 0) {
        snprintf(err, errlen, "receiver thread: %s", strerror(-r));
        router_destroy(&self);
        return NULL;
    }
    return self;

err_zmq:
    snprintf(err, errlen, "agents socket: %s", zmq_strerror(zmq_errno()));
    router_destroy(&self);
    return NULL;
err_nomem:
    snprintf(err, errlen, "out of memory");
    router_destroy(&self);
    return NULL;
}

void router_destroy(router_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    router_t *self = *self_p;
    receiver_fini(&self->receiver);
    for (int i = 0; i < 2; i++) {
        for (size_t k = 0; self->inbox[i].items && k < self->inbox[i].n; k++)
            vg_envelope_free(self->inbox[i].items[k].env);
        free(self->inbox[i].items);
    }
    zhashx_destroy(&self->enroll_windows);
    routes_destroy(&self->routes);
    evidence_dispatcher_destroy(&self->evidence);
    remediate_dispatcher_destroy(&self->commands);
    series_cap_destroy(&self->series);
    if (self->socket)
        zmq_close(self->socket);
    free(self);
    *self_p = NULL;
}

void *router_socket(router_t *self)
{
    return self->socket;
}

/* ---- replies ---- */

static void send_envelope(router_t *self, const struct peer *peer, Vigil__Envelope *env)
{
    uint8_t *buf;
    size_t len;

    if (vg_envelope_encode(env, &buf, &len) < 0)
        return;
    if (zmq_send(self->socket, peer->routing_id, peer->routing_id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) <
            0 ||
        zmq_send(self->socket, buf, len, ZMQ_DONTWAIT) < 0) {
        /* ZMQ_ROUTER_MANDATORY makes a vanished agent (EHOSTUNREACH) or a full queue (EAGAIN)
         * visible here. The agent resends whatever it does not hear back about, so nothing is
         * lost; say so and move on. */
        vg_log(VG_LOG_WARN, "agent=%s address=%s reply not delivered: %s", peer->user_id,
               peer->address, zmq_strerror(zmq_errno()));
    }
    free(buf);
}

static void send_refusal(router_t *self, const struct peer *peer, Vigil__RefusalCode code,
                         uint64_t seq, const char *reason)
{
    Vigil__Refusal refusal = VIGIL__REFUSAL__INIT;
    Vigil__Envelope env;

    refusal.code = code;
    refusal.seq = seq;
    refusal.reason = (char *)reason;
    vg_envelope_init(&env, "coordinator", 0);
    env.body_case = VIGIL__ENVELOPE__BODY_REFUSAL;
    env.refusal = &refusal;
    send_envelope(self, peer, &env);
}

static void refuse(router_t *self, const struct peer *peer, enum refuse_reason reason,
                   Vigil__RefusalCode code, uint64_t seq, const char *text)
{
    metrics_refused(reason);
    vg_log(VG_LOG_WARN, "agent=%s address=%s refused reason=%s seq=%llu: %s", peer->user_id,
           peer->address, refuse_reason_name(reason), (unsigned long long)seq, text);
    send_refusal(self, peer, code, seq, text);
}

static void send_enroll_reply(router_t *self, const struct peer *peer, const struct agent *agent)
{
    Vigil__EnrollReply reply = VIGIL__ENROLL_REPLY__INIT;
    Vigil__Envelope env;

    reply.state = agent->state;
    reply.agent_id = (char *)agent->id;
    reply.heartbeat_interval_ms = (uint32_t)self->cfg.heartbeat_interval_ms;
    vg_envelope_init(&env, "coordinator", 0);
    env.body_case = VIGIL__ENVELOPE__BODY_ENROLL_REPLY;
    env.enroll_reply = &reply;
    send_envelope(self, peer, &env);
}

static void send_ack(router_t *self, const struct peer *peer, Vigil__SeqRange **ranges,
                     size_t nranges)
{
    Vigil__Ack ack = VIGIL__ACK__INIT;
    Vigil__Envelope env;

    ack.ranges = ranges;
    ack.n_ranges = nranges;
    vg_envelope_init(&env, "coordinator", 0);
    env.body_case = VIGIL__ENVELOPE__BODY_ACK;
    env.ack = &ack;
    send_envelope(self, peer, &env);
}

/* ---- agent state ---- */

static int set_state(router_t *self, struct agent *agent, Vigil__AgentState state,
                     const char *reason)
{
    int64_t now = vg_wall_ms();
    int r = store_agent_set_state(self->store, agent->id, state, now, "coordinator", reason);
    if (r < 0)
        return r;
    vg_log(VG_LOG_INFO, "agent=%s node=%s state=%s previous=%s reason=\"%s\"", agent->id,
           agent->node, agent_state_name(state), agent_state_name(agent->state), reason);
    bool was_up = agent->state == VIGIL__AGENT_STATE__AGENT_STATE_ACTIVE;
    bool is_up = state == VIGIL__AGENT_STATE__AGENT_STATE_ACTIVE;
    agent->state = state;
    agent->state_since_ms = now;
    /* Only up <-> not up is news to whoever watches nodes (pending -> revoked is not). */
    if (self->cfg.observer.agent_state && was_up != is_up)
        self->cfg.observer.agent_state(self->cfg.observer.userdata, agent->node, is_up, now);
    return 0;
}

/* Any valid message from an agent proves it is alive. */
static void agent_seen(router_t *self, struct agent *agent)
{
    agent->last_seen_mono = vg_mono_ms();
    agent->last_seen_ms = vg_wall_ms();
    agent->health_dirty = true;
    if (agent->state == VIGIL__AGENT_STATE__AGENT_STATE_LOST)
        set_state(self, agent, VIGIL__AGENT_STATE__AGENT_STATE_ACTIVE, "heard from again");
}

static bool agent_may_send(const struct agent *agent)
{
    return agent && (agent->state == VIGIL__AGENT_STATE__AGENT_STATE_ACTIVE ||
                     agent->state == VIGIL__AGENT_STATE__AGENT_STATE_LOST);
}

/* ---- enrollment ---- */

/* The enrollment rate limit's key for an address: IPv4 as it is, IPv6 by its /64 (one host
 * holds a whole /64, so a per-address limit would mean nothing). */
static void rate_key(const char *address, char *out, size_t len)
{
    struct in6_addr a6;
    if (strchr(address, ':') && inet_pton(AF_INET6, address, &a6) == 1) {
        memset(a6.s6_addr + 8, 0, 8);
        char text[INET6_ADDRSTRLEN];
        if (inet_ntop(AF_INET6, &a6, text, sizeof(text))) {
            snprintf(out, len, "%s/64", text);
            return;
        }
    }
    snprintf(out, len, "%s", address);
}

static bool enroll_rate_ok(router_t *self, const char *address)
{
    if (self->cfg.enroll_rate_per_minute == 0)
        return true;
    int64_t now = vg_mono_ms();
    char key[sizeof(((struct peer *)0)->address) + 8];
    rate_key(address, key, sizeof(key));
    struct enroll_window *w = zhashx_lookup(self->enroll_windows, key);
    if (!w) {
        /* Every window is pruned a minute after it opened; this many at once is a flood. */
        if (zhashx_size(self->enroll_windows) >= ENROLL_WINDOWS_MAX)
            return false;
        w = calloc(1, sizeof(*w));
        if (!w)
            return false;
        w->start_mono = now;
        zhashx_insert(self->enroll_windows, key, w);
    }
    if (now - w->start_mono >= ENROLL_WINDOW_MS) {
        w->start_mono = now;
        w->count = 0;
    }
    return ++w->count <= self->cfg.enroll_rate_per_minute;
}

/* Drops the rate windows of addresses not heard from for a whole window. */
static void enroll_windows_prune(router_t *self)
{
    int64_t now = vg_mono_ms();
    zlistx_t *stale = zlistx_new();
    if (!stale)
        return;
    for (struct enroll_window *w = zhashx_first(self->enroll_windows); w;
         w = zhashx_next(self->enroll_windows)) {
        if (now - w->start_mono >= ENROLL_WINDOW_MS)
            zlistx_add_end(stale, (void *)zhashx_cursor(self->enroll_windows));
    }
    for (const char *key = zlistx_first(stale); key; key = zlistx_next(stale))
        zhashx_delete(self->enroll_windows, key);
    zlistx_destroy(&stale);
}

/* Keys that enrolled without a valid token (or claim a held node) are bounded: past
 * cfg.pending_max an unknown key is refused (counted) until an operator approves or revokes
 * some, or they expire (forget_stale). Unknown keys must not grow the coordinator's state. */
static bool admit_pending(router_t *self, const struct peer *peer)
{
    size_t pending = 0;
    for (struct agent *a = registry_agent_next(self->registry, NULL); a;
         a = registry_agent_next(self->registry, a))
        pending += a->state == VIGIL__AGENT_STATE__AGENT_STATE_PENDING;
    if (self->cfg.pending_max <= 0 || pending < (size_t)self->cfg.pending_max)
        return true;
    refuse(self, peer, REFUSE_RATE_LIMITED, VIGIL__REFUSAL_CODE__REFUSAL_RATE_LIMITED, 0,
           "too many agents are waiting for approval; retry later");
    return false;
}

/* Bounded copy that truncates on purpose (fields of fixed size; the wire bounds them), on a
 * character boundary: half a UTF-8 character would make the store refuse the row. */
static void copy_text(char *dst, size_t size, const char *src)
{
    size_t n = src ? vg_utf8_cut(src, strnlen(src, size), size - 1) : 0;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

/* Text from an agent kept in memory and in the store: valid UTF-8, escaped where it is not. */
static void copy_agent_text(char *dst, size_t size, const char *src)
{
    vg_utf8_escape(src ? src : "", dst, size, NULL);
}

/*
 * A known agent re-enrolled. Its version is updated; a different node name is not taken: the
 * name stays bound to this key and the new one waits for an operator (vigilctl agents approve),
 * so a compromised node cannot start speaking for another by renaming itself.
 */
static void reenrolled(router_t *self, const struct peer *peer, struct agent *agent,
                       const Vigil__Enroll *enroll)
{
    char node[sizeof(agent->node)], version[sizeof(agent->agent_version)];
    copy_agent_text(node, sizeof(node), enroll->node);
    copy_agent_text(version, sizeof(version), enroll->agent_version);

    if (strcmp(agent->agent_version, version) != 0) {
        struct store_agent row = {0};
        copy_text(row.id, sizeof(row.id), agent->id);
        copy_text(row.public_key, sizeof(row.public_key), agent->public_key);
        copy_text(row.node, sizeof(row.node), agent->node);
        copy_text(row.agent_version, sizeof(row.agent_version), version);
        row.state = agent->state;
        if (store_agent_upsert(self->store, &row) == 0)
            copy_text(agent->agent_version, sizeof(agent->agent_version), version);
    }
    const char *wanted = strcmp(node, agent->node) == 0 ? "" : node;
    if (strcmp(agent->requested_node, wanted) == 0)
        return;
    if (store_agent_request_node(self->store, agent->id, wanted) < 0)
        return;
    copy_text(agent->requested_node, sizeof(agent->requested_node), wanted);
    if (wanted[0]) {
        vg_log(VG_LOG_WARN,
               "agent=%s node=%s address=%s asks to be node=%s; it keeps its name until an "
               "operator approves (vigilctl agents approve %s)",
               agent->id, agent->node, peer->address, wanted, agent->id);
        store_audit(self->store, peer->user_id, "agent.rename_requested", agent->id, wanted);
    }
}

/* The catalog the agent declares (Enroll.actions): stored and registered when it changed. */
static void update_catalog(router_t *self, struct agent *agent, const Vigil__Enroll *enroll)
{
    struct agent_action *actions = NULL;
    size_t n = 0, skipped = 0;
    char *json = NULL;
    bool changed = false;

    bool cluster = enroll->role && strcmp(enroll->role, "cluster") == 0;
    if (agent->cluster != cluster)
        vg_log(VG_LOG_INFO, "agent=%s node=%s role=%s", agent->id, agent->node,
               cluster ? "cluster" : "node");
    agent->cluster = cluster;
    if (catalog_from_enroll(enroll, &actions, &n, &json, &skipped) < 0)
        return;
    if (skipped > 0)
        vg_log(VG_LOG_WARN,
               "agent=%s node=%s declares %zu actions the coordinator cannot use "
               "(bad name, mode or parameters, or more than %d): ignored",
               agent->id, agent->node, skipped, AGENT_ACTIONS_MAX);
    if (!catalog_equal(agent, actions, n) &&
        store_agent_actions_set(self->store, agent->id, json, &changed) == 0 &&
        registry_agent_set_actions(agent, actions, n) == 0)
        vg_log(VG_LOG_INFO, "agent=%s node=%s declares %zu actions", agent->id, agent->node, n);
    free(actions);
    free(json);
}

static void handle_enroll(router_t *self, const struct peer *peer, struct agent *agent,
                          const Vigil__Enroll *enroll)
{
    const char *public_key = peer->public_key;

    bool has_token = enroll->token.len == VG_TOKEN_LEN;
    bool token_ok = has_token && self->cfg.enroll_secret &&
                    vg_token_verify(self->cfg.enroll_secret, self->cfg.enroll_secret_len,
                                    public_key, enroll->token.data, enroll->token.len);

    if (agent && agent->state == VIGIL__AGENT_STATE__AGENT_STATE_REVOKED) {
        refuse(self, peer, REFUSE_REVOKED, VIGIL__REFUSAL_CODE__REFUSAL_REVOKED, 0,
               "this agent's key is revoked");
        return;
    }
    /* Known, admitted agents re-enroll on every reconnect: not rate limited. */
    if (!agent_may_send(agent) && !enroll_rate_ok(self, peer->address)) {
        refuse(self, peer, REFUSE_RATE_LIMITED, VIGIL__REFUSAL_CODE__REFUSAL_RATE_LIMITED, 0,
               "too many enrollment requests from this address; retry later");
        return;
    }
    if (has_token && self->cfg.enroll_secret && !token_ok) {
        refuse(self, peer, REFUSE_BAD_TOKEN, VIGIL__REFUSAL_CODE__REFUSAL_INVALID, 0,
               "enrollment token does not match this agent's key");
        return;
    }
    if (has_token && !self->cfg.enroll_secret)
        vg_log(VG_LOG_WARN,
               "agent=%s presented a token but no enrollment secret is configured; "
               "it waits for approval",
               peer->user_id);

    metrics_received("enroll");
    if (!agent) {
        if (!admit_pending(self, peer))
            return;
        struct store_agent row = {0};
        struct agent fresh = {0};

        copy_text(fresh.id, sizeof(fresh.id), peer->user_id);
        copy_text(fresh.public_key, sizeof(fresh.public_key), public_key);
        copy_agent_text(fresh.node, sizeof(fresh.node), enroll->node);
        copy_agent_text(fresh.agent_version, sizeof(fresh.agent_version), enroll->agent_version);
        /* A node name is bound to the key that enrolled it first: another key claiming it
         * waits for an operator, token or not (a shared secret proves membership, not name). */
        const struct agent *holder = registry_node_holder(self->registry, fresh.node, NULL);
        fresh.state = token_ok && !holder ? VIGIL__AGENT_STATE__AGENT_STATE_ACTIVE
                                          : VIGIL__AGENT_STATE__AGENT_STATE_PENDING;
        fresh.enrolled_at_ms = fresh.state_since_ms = vg_wall_ms();

        copy_text(row.id, sizeof(row.id), fresh.id);
        copy_text(row.public_key, sizeof(row.public_key), fresh.public_key);
        copy_text(row.node, sizeof(row.node), fresh.node);
        copy_text(row.agent_version, sizeof(row.agent_version), fresh.agent_version);
        row.state = fresh.state;
        row.enrolled_at_ms = row.state_since_ms = fresh.enrolled_at_ms;
        if (store_agent_upsert(self->store, &row) < 0) {
            refuse(self, peer, REFUSE_STORE, VIGIL__REFUSAL_CODE__REFUSAL_NOT_ENROLLED, 0,
                   "the coordinator cannot store the enrollment now; retry");
            return;
        }
        char detail[384];
        if (holder)
            snprintf(detail, sizeof(detail), "claims node %s, held by agent %s: pending approval",
                     fresh.node, holder->id);
        else
            snprintf(detail, sizeof(detail), "%s",
                     token_ok ? "bootstrap token valid: active" : "no token: pending approval");
        store_audit(self->store, peer->user_id, "agent.enroll", fresh.id, detail);
        if (holder)
            vg_log(VG_LOG_WARN,
                   "agent=%s address=%s claims node=%s held by agent=%s: pending until an "
                   "operator decides (vigilctl agents)",
                   fresh.id, peer->address, fresh.node, holder->id);
        agent = registry_agent_add(self->registry, &fresh);
        if (!agent)
            return;
        vg_log(VG_LOG_INFO, "agent=%s node=%s address=%s enrolled state=%s", agent->id, agent->node,
               peer->address, agent_state_name(agent->state));
        if (self->cfg.observer.agent_state &&
            agent->state == VIGIL__AGENT_STATE__AGENT_STATE_ACTIVE)
            self->cfg.observer.agent_state(self->cfg.observer.userdata, agent->node, true,
                                           agent->state_since_ms);
    } else {
        if (agent->state == VIGIL__AGENT_STATE__AGENT_STATE_PENDING && token_ok &&
            !registry_node_holder(self->registry, agent->node, agent) &&
            set_state(self, agent, VIGIL__AGENT_STATE__AGENT_STATE_ACTIVE,
                      "bootstrap token valid") < 0) {
            refuse(self, peer, REFUSE_STORE, VIGIL__REFUSAL_CODE__REFUSAL_NOT_ENROLLED, 0,
                   "the coordinator cannot store the enrollment now; retry");
            return;
        }
        reenrolled(self, peer, agent, enroll);
    }
    update_catalog(self, agent, enroll);
    if (agent_may_send(agent))
        agent_seen(self, agent);
    send_enroll_reply(self, peer, agent);
}

/* ---- receiving ---- */

static void handle_heartbeat(router_t *self, const struct peer *peer, struct agent *agent,
                             const Vigil__Heartbeat *hb)
{
    if (!agent_may_send(agent)) {
        refuse(self, peer, REFUSE_NOT_ENROLLED, VIGIL__REFUSAL_CODE__REFUSAL_NOT_ENROLLED, 0,
               agent ? "agent is pending approval" : "unknown agent: enroll first");
        return;
    }
    metrics_received("heartbeat");
    copy_agent_text(agent->agent_version, sizeof(agent->agent_version), hb->agent_version);
    agent->uptime_s = hb->uptime_s;
    agent->spool_depth = hb->spool_depth;
    agent->spool_bytes = hb->spool_bytes;
    agent->dropped_messages = hb->dropped_messages;
    agent->dropped_samples = hb->dropped_samples;
    agent_seen(self, agent);
    send_ack(self, peer, NULL, 0);
}

/*
 * Reads one message: [routing id][payload]. Returns 1, 0 = nothing waiting, -1 = more than one
 * payload frame (drained). Runs on the receiver thread: touches nothing but its arguments.
 */
static int receive_one(void *socket, struct peer *peer, zmq_msg_t *payload)
{
    zmq_msg_t rid;
    int more = 0;
    size_t more_len = sizeof(more);

    zmq_msg_init(&rid);
    if (zmq_msg_recv(&rid, socket, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&rid);
        return 0;
    }
    peer->routing_id_len = zmq_msg_size(&rid);
    if (peer->routing_id_len > ROUTING_ID_MAX)
        peer->routing_id_len = ROUTING_ID_MAX;
    memcpy(peer->routing_id, zmq_msg_data(&rid), peer->routing_id_len);
    zmq_msg_close(&rid);

    zmq_msg_recv(payload, socket, 0);
    const char *user_id = zmq_msg_gets(payload, "User-Id");
    const char *address = zmq_msg_gets(payload, "Peer-Address");
    copy_text(peer->user_id, sizeof(peer->user_id), user_id);
    copy_text(peer->address, sizeof(peer->address), address);
    copy_text(peer->public_key, sizeof(peer->public_key), zmq_msg_gets(payload, ZAP_PROPERTY_KEY));

    /* Exactly one payload frame: anything more is drained and refused. */
    zmq_getsockopt(socket, ZMQ_RCVMORE, &more, &more_len);
    if (!more)
        return 1;
    while (more) {
        zmq_msg_t extra;
        zmq_msg_init(&extra);
        zmq_msg_recv(&extra, socket, 0);
        zmq_msg_close(&extra);
        zmq_getsockopt(socket, ZMQ_RCVMORE, &more, &more_len);
    }
    return -1;
}

/* Waits until the socket has a message (true) or stop_fd is readable (false). */
static bool wait_for_message(void *socket, int stop_fd)
{
    for (;;) {
        zmq_pollitem_t items[] = {
            {socket, 0, ZMQ_POLLIN, 0},
            {NULL, stop_fd, ZMQ_POLLIN, 0},
        };
        if (zmq_poll(items, 2, -1) < 0) {
            if (zmq_errno() == EINTR)
                continue;
            return false;
        }
        if (items[1].revents & ZMQ_POLLIN)
            return false;
        if (items[0].revents & ZMQ_POLLIN)
            return true;
    }
}

/*
 * Receives and decodes messages into in until a batch bound, or until no message is waiting
 * (with rx->wait: until the main thread asks for the socket back). Runs on the receiver thread
 * and touches only the socket and in.
 */
static void receive_batch(void *socket, struct inbox *in, struct receiver *rx, registry_t *registry)
{
    int64_t started = vg_mono_ms();
    while (in->n < DRAIN_MAX_MESSAGES && in->bytes < DRAIN_MAX_BYTES) {
        if (atomic_load_explicit(&rx->stop, memory_order_relaxed))
            return;
        /* The main thread waits for a receive that does not overlap a commit: keep it short,
         * so ZAP and operators get their turn even while messages are costly to decode. */
        if (!rx->wait && in->n > 0 && vg_mono_ms() - started >= RECEIVE_WAITED_MS)
            return;
        struct inbound *item = &in->items[in->n];
        zmq_msg_t payload;
        zmq_msg_init(&payload);
        int got = receive_one(socket, &item->peer, &payload);
        if (got == 0) {
            zmq_msg_close(&payload);
            if (rx->wait && wait_for_message(socket, rx->stop_fd))
                continue;
            return;
        }
        size_t size = zmq_msg_size(&payload);
        item->env = NULL;
        item->why = NULL;
        item->seq = 0;
        item->multipart = got < 0;
        item->unadmitted = false;
        item->fresh = false;
        item->error = VG_DECODE_OK;
        in->bytes += size;
        if (!item->multipart) {
            const struct agent *agent = registry_agent(registry, item->peer.user_id);
            bool admitted = agent_may_send(agent);
            if (!admitted && size > UNADMITTED_MAX_BYTES) {
                item->unadmitted = true;
            } else {
                item->error =
                    vg_envelope_decode(zmq_msg_data(&payload), size, &item->env, &item->why);
                /* An active agent's record that can never be decoded is refused with its seq,
                 * so the agent discards it; a version mismatch is not final (an upgrade). */
                if (item->error != VG_DECODE_OK && item->error != VG_DECODE_VERSION && admitted)
                    item->seq = vg_envelope_peek_seq(zmq_msg_data(&payload), size);
            }
        }
        zmq_msg_close(&payload);
        in->n++;
    }
}

static void inbox_clear(struct inbox *in)
{
    for (size_t i = 0; i < in->n; i++) {
        vg_envelope_free(in->items[i].env);
        in->items[i].env = NULL;
    }
    in->n = 0;
    in->bytes = 0;
}

static void *receiver_main(void *arg)
{
    router_t *self = arg;
    struct receiver *rx = &self->receiver;

    pthread_mutex_lock(&rx->lock);
    for (;;) {
        while (!rx->run && !rx->exit)
            pthread_cond_wait(&rx->wake, &rx->lock);
        if (rx->exit)
            break;
        rx->run = false;
        pthread_mutex_unlock(&rx->lock);

        /* Freed here, not on the main thread: the memory goes back where it came from. */
        inbox_clear(&self->inbox[1]);
        receive_batch(self->socket, &self->inbox[1], rx, self->registry);

        pthread_mutex_lock(&rx->lock);
        rx->running = false;
        pthread_cond_signal(&rx->done);
    }
    pthread_mutex_unlock(&rx->lock);
    return NULL;
}

static int receiver_init(router_t *self)
{
    struct receiver *rx = &self->receiver;
    rx->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (rx->stop_fd < 0)
        return -errno;
    pthread_mutex_init(&rx->lock, NULL);
    pthread_cond_init(&rx->wake, NULL);
    pthread_cond_init(&rx->done, NULL);
    int r = pthread_create(&rx->thread, NULL, receiver_main, self);
    if (r != 0)
        return -r;
    rx->started = true;
    return 0;
}

static void receiver_fini(struct receiver *rx)
{
    if (rx->started) {
        pthread_mutex_lock(&rx->lock);
        rx->exit = true;
        pthread_cond_signal(&rx->wake);
        pthread_mutex_unlock(&rx->lock);
        pthread_join(rx->thread, NULL);
        rx->started = false;
    }
    if (rx->stop_fd >= 0) {
        pthread_mutex_destroy(&rx->lock);
        pthread_cond_destroy(&rx->wake);
        pthread_cond_destroy(&rx->done);
        close(rx->stop_fd);
        rx->stop_fd = -1;
    }
}

/* Lends the socket and inbox[1] to the receiver thread; wait: see struct receiver. */
static void receiver_start(struct receiver *rx, bool wait)
{
    atomic_store(&rx->stop, false);
    pthread_mutex_lock(&rx->lock);
    rx->wait = wait;
    rx->run = rx->running = true;
    pthread_cond_signal(&rx->wake);
    pthread_mutex_unlock(&rx->lock);
}

/* Takes the socket and inbox[1] back: at once from a receiver that waits for messages,
 * otherwise once it has taken what was waiting. */
static void receiver_stop(struct receiver *rx)
{
    uint64_t one = 1, count;

    if (rx->wait) {
        atomic_store(&rx->stop, true);
        if (write(rx->stop_fd, &one, sizeof(one)) != sizeof(one))
            vg_log(VG_LOG_ERROR, "receiver stop: %s", strerror(errno)); /* not for an eventfd */
    }
    pthread_mutex_lock(&rx->lock);
    while (rx->running)
        pthread_cond_wait(&rx->done, &rx->lock);
    pthread_mutex_unlock(&rx->lock);
    while (read(rx->stop_fd, &count, sizeof(count)) == sizeof(count))
        ;
}

static const enum refuse_reason decode_reason[] = {
    [VG_DECODE_OVERSIZED] = REFUSE_OVERSIZED, [VG_DECODE_MALFORMED] = REFUSE_MALFORMED,
    [VG_DECODE_VERSION] = REFUSE_VERSION,     [VG_DECODE_UNKNOWN_TYPE] = REFUSE_UNKNOWN_TYPE,
    [VG_DECODE_LIMITS] = REFUSE_LIMITS,
};

static int send_on(void *userdata, const uint8_t *rid, size_t rid_len, const void *buf, size_t len)
{
    router_t *self = userdata;
    if (zmq_send(self->socket, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(self->socket, buf, len, ZMQ_DONTWAIT) < 0)
        return -zmq_errno();
    return 0;
}

/* Follows an agent to its newest connection; a new one gets what the agent has not answered. */
static void route_update(router_t *self, const struct peer *peer)
{
    if (!routes_update(self->routes, peer->user_id, peer->routing_id, peer->routing_id_len))
        return;
    unsigned n = routes_resend(self->routes, peer->user_id, vg_wall_ms(), send_on, self);
    if (n > 0) {
        metrics_requests_resent(n);
        vg_log(VG_LOG_INFO, "agent=%s reconnected: %u unanswered requests sent again",
               peer->user_id, n);
    }
}

/* What a request to an agent is, to remember it until answered: a CollectRequest or a capsule. */
static bool request_identity(const void *buf, size_t len, uint64_t *key, int64_t *expires_wall_ms)
{
    Vigil__Envelope *env = NULL;
    bool ok = false;
    if (vg_envelope_decode(buf, len, &env, NULL) != VG_DECODE_OK)
        return false;
    if (env->body_case == VIGIL__ENVELOPE__BODY_COLLECT && env->collect) {
        *key = routes_key_collection(env->collect->collection_id);
        *expires_wall_ms = env->collect->expires_at_ms;
        ok = true;
    } else if (env->body_case == VIGIL__ENVELOPE__BODY_COMMAND && env->command &&
               env->command->request && env->command->request->request_id) {
        *key = routes_key_command(env->command->request->request_id);
        *expires_wall_ms = env->command->not_after_ms;
        ok = true;
    }
    vg_envelope_free(env);
    return ok;
}

/* The agent's connection is gone but the agent spoke within its heartbeat timeout: it is
 * reconnecting (a path that held its bytes let them through with the old connection's end). */
static bool reconnecting(router_t *self, const char *agent_id)
{
    const struct agent *agent = registry_agent(self->registry, agent_id);
    return agent && agent_may_send(agent) &&
           vg_mono_ms() - agent->last_seen_mono <
               self->cfg.heartbeat_interval_ms * self->cfg.missed_heartbeats;
}

/* Sends a CollectRequest or a command capsule (evidence_send_fn, remediate_send_fn) to the
 * agent's newest connection, and remembers it until the agent answers. A request for an agent
 * that is reconnecting waits for its new connection (its deadline still holds). */
static int send_to_agent(void *userdata, const char *agent_id, const void *buf, size_t len,
                         char *why, size_t whylen)
{
    router_t *self = userdata;
    size_t rid_len = 0;
    const uint8_t *rid = routes_lookup(self->routes, agent_id, &rid_len);

    if (!rid) {
        snprintf(why, whylen,
                 "not sent: the agent has not connected since the coordinator "
                 "started");
        return -EHOSTUNREACH;
    }
    int r = send_on(self, rid, rid_len, buf, len);
    if (r < 0 && !(r == -EHOSTUNREACH && reconnecting(self, agent_id))) {
        snprintf(why, whylen, "not sent: %s",
                 r == -EHOSTUNREACH ? "the agent is not connected" : zmq_strerror(-r));
        return r;
    }
    /* Sent, or held for the connection a reconnecting agent is about to make. */
    uint64_t key;
    int64_t expires;
    if (request_identity(buf, len, &key, &expires))
        routes_remember(self->routes, agent_id, key, buf, len, expires);
    return 0;
}

/* An evidence chunk or a command report answers the request it belongs to. */
static void request_answered(router_t *self, const struct agent *agent, const Vigil__Envelope *env)
{
    if (env->body_case == VIGIL__ENVELOPE__BODY_EVIDENCE && env->evidence &&
        env->evidence->collection_id > 0)
        routes_answered(self->routes, agent->id,
                        routes_key_collection(env->evidence->collection_id));
    else if (env->body_case == VIGIL__ENVELOPE__BODY_COMMAND_REPORT && env->command_report &&
             env->command_report->request_id)
        routes_answered(self->routes, agent->id,
                        routes_key_command(env->command_report->request_id));
}

/*
 * A durable message (signals, an evidence chunk) joins the batch to be committed when its agent
 * may send and the store can take it. One the store would refuse is refused to its agent alone,
 * with its seq so the agent discards it: in the batch it would fail every agent's transaction,
 * and resent forever it would do so again after every restart. A refused evidence chunk fails
 * its collection's target at once, so the operator who asked sees why instead of a timeout.
 */
static bool accept_durable(router_t *self, const struct peer *peer, struct agent *agent,
                           Vigil__Envelope *env)
{
    bool evidence = env->body_case == VIGIL__ENVELOPE__BODY_EVIDENCE;
    bool signals = env->body_case == VIGIL__ENVELOPE__BODY_SIGNALS;
    if (agent)
        request_answered(self, agent, env);
    if (!agent_may_send(agent)) {
        refuse(self, peer, REFUSE_NOT_ENROLLED, VIGIL__REFUSAL_CODE__REFUSAL_NOT_ENROLLED, env->seq,
               agent ? "agent is pending approval" : "unknown agent: enroll first");
        return false;
    }
    const char *problem = store_message_problem(env);
    if (problem) {
        char text[160];
        snprintf(text, sizeof(text), "record not stored, discard it: %s", problem);
        refuse(self, peer, REFUSE_INVALID_RECORD, VIGIL__REFUSAL_CODE__REFUSAL_INVALID, env->seq,
               text);
        if (evidence && env->evidence && env->evidence->collection_id > 0)
            store_evidence_target_fail(self->store, env->evidence->collection_id, env->sender,
                                       text);
        agent_seen(self, agent);
        return false;
    }
    if (signals) {
        bool first = false;
        size_t dropped = series_cap_filter(self->series, agent->id, env->signals, &first);
        if (dropped)
            metrics_series_limited(dropped);
        if (first)
            vg_log(VG_LOG_WARN,
                   "agent=%s node=%s has %lld signal series: samples of new ones are dropped "
                   "(agents.max_series; counted in vigil_series_limit_dropped_samples_total)",
                   agent->id, agent->node, (long long)self->cfg.max_series_per_agent);
    }
    metrics_received(evidence ? "evidence" : signals ? "signals" : "command_report");
    agent_seen(self, agent);
    return true;
}

/* Handles one received message. Returns true when it is durable and waits for the commit. */
static bool dispatch(router_t *self, struct inbound *item)
{
    const struct peer *peer = &item->peer;
    Vigil__Envelope *env = item->env;

    if (item->multipart) {
        refuse(self, peer, REFUSE_MALFORMED, VIGIL__REFUSAL_CODE__REFUSAL_INVALID, 0,
               "a message must be exactly one frame");
        return false;
    }
    struct agent *agent = registry_agent(self->registry, peer->user_id);
    /* ZAP compared the keys at the handshake; an agent entry made since (another connection
     * enrolled that id) must be the same key too. */
    if (agent && strcmp(agent->public_key, peer->public_key) != 0) {
        refuse(self, peer, REFUSE_KEY_MISMATCH, VIGIL__REFUSAL_CODE__REFUSAL_INVALID, 0,
               "this key's agent id belongs to another key");
        goto out_free;
    }
    if (agent && agent->state == VIGIL__AGENT_STATE__AGENT_STATE_REVOKED) {
        refuse(self, peer, REFUSE_REVOKED, VIGIL__REFUSAL_CODE__REFUSAL_REVOKED, 0,
               "this agent's key is revoked");
        goto out_free;
    }
    if (item->unadmitted) {
        refuse(self, peer, REFUSE_OVERSIZED, VIGIL__REFUSAL_CODE__REFUSAL_NOT_ENROLLED, 0,
               "not an active agent: only an enrollment request (at most 4 KiB) is accepted");
        return false;
    }
    if (item->error != VG_DECODE_OK) {
        refuse(self, peer, decode_reason[item->error],
               item->error == VG_DECODE_VERSION ? VIGIL__REFUSAL_CODE__REFUSAL_VERSION
                                                : VIGIL__REFUSAL_CODE__REFUSAL_INVALID,
               item->seq, item->why);
        return false;
    }
    if (strcmp(env->sender, peer->user_id) != 0) {
        refuse(self, peer, REFUSE_SENDER, VIGIL__REFUSAL_CODE__REFUSAL_INVALID, env->seq,
               "sender id does not match the authenticated key");
        goto out_free;
    }
    if (agent)
        route_update(self, peer);

    switch (env->body_case) {
    case VIGIL__ENVELOPE__BODY_ENROLL:
        handle_enroll(self, peer, agent, env->enroll);
        break;
    case VIGIL__ENVELOPE__BODY_HEARTBEAT:
        handle_heartbeat(self, peer, agent, env->heartbeat);
        break;
    case VIGIL__ENVELOPE__BODY_SIGNALS:
    case VIGIL__ENVELOPE__BODY_EVIDENCE:
    case VIGIL__ENVELOPE__BODY_COMMAND_REPORT:
        if (accept_durable(self, peer, agent, env))
            return true;
        break;
    default:
        /* Coordinator-to-agent bodies (acks, replies) are not accepted from agents. */
        refuse(self, peer, REFUSE_UNKNOWN_TYPE, VIGIL__REFUSAL_CODE__REFUSAL_INVALID, env->seq,
               "message type not accepted from agents");
        break;
    }
out_free:
    vg_envelope_free(env);
    item->env = NULL;
    return false;
}

/* Dispatches every message of in, in order; in keeps the durable ones. */
static void dispatch_inbox(router_t *self, struct inbox *in)
{
    size_t kept = 0;
    for (size_t i = 0; i < in->n; i++) {
        if (!dispatch(self, &in->items[i]))
            continue;
        if (kept != i) {
            in->items[kept] = in->items[i];
            in->items[i].env = NULL;
        }
        kept++;
    }
    in->n = kept;
}

/* ---- batch commit and acknowledgement ---- */

static int compare_inbound(const void *a, const void *b)
{
    const struct inbound *pa = *(const struct inbound *const *)a;
    const struct inbound *pb = *(const struct inbound *const *)b;
    int c = strcmp(pa->env->sender, pb->env->sender);
    if (c != 0)
        return c;
    return pa->env->seq < pb->env->seq ? -1 : pa->env->seq > pb->env->seq;
}

/* Acknowledges the committed batch: one Ack per agent, its seqs folded into ranges. */
static void acknowledge(router_t *self, const struct inbox *in)
{
    const struct inbound **sorted = calloc(in->n, sizeof(const struct inbound *));
    Vigil__SeqRange *range_store = calloc(in->n, sizeof(*range_store));
    Vigil__SeqRange **ranges = calloc(in->n, sizeof(Vigil__SeqRange *));
    if (!sorted || !range_store || !ranges)
        goto out;

    for (size_t i = 0; i < in->n; i++)
        sorted[i] = &in->items[i];
    qsort(sorted, in->n, sizeof(const struct inbound *), compare_inbound);
    size_t i = 0;
    while (i < in->n) {
        size_t nranges = 0;
        size_t j = i;
        const struct peer *latest = &sorted[i]->peer;
        for (; j < in->n && strcmp(sorted[j]->env->sender, sorted[i]->env->sender) == 0; j++) {
            uint64_t seq = sorted[j]->env->seq;
            Vigil__SeqRange *last = nranges ? ranges[nranges - 1] : NULL;
            if (last && (seq == last->last || seq == last->last + 1)) {
                last->last = seq;
            } else {
                Vigil__SeqRange *r = &range_store[nranges];
                vigil__seq_range__init(r);
                r->first = r->last = seq;
                ranges[nranges++] = r;
            }
            latest = &sorted[j]->peer;
        }
        send_ack(self, latest, ranges, nranges);
        i = j;
    }
out:
    free(sorted);
    free(range_store);
    free(ranges);
}

/* Sends the collections the committed batch opened after commands reported done (their output
 * and their action's evidence: store_followups); one that cannot be sent fails at once. */
static void send_followups(router_t *self)
{
    struct store_followups f = {0};
    store_followups_take(self->store, &f);
    for (size_t i = 0; i < f.n; i++) {
        const struct store_followup *item = &f.items[i];
        char why[160];
        if (send_to_agent(self, item->agent_id, item->envelope, item->len, why, sizeof(why)) == 0) {
            metrics_evidence_requested(item->kind);
            continue;
        }
        vg_log(VG_LOG_WARN, "collection=%" PRIu64 " agent=%s kind=%s after a command: %s",
               item->collection_id, item->agent_id, item->kind, why);
        if (store_evidence_target_fail(self->store, item->collection_id, item->agent_id, why) == 0)
            metrics_evidence_failed(item->kind);
    }
    store_followups_clear(&f);
}

/* Stores the durable messages of in in one transaction and marks those that were new. True
 * when they are committed. */
static bool commit_inbox(router_t *self, struct inbox *in)
{
    size_t fresh = 0;
    int64_t started = vg_mono_ms();
    uint64_t signals = 0;

    Vigil__Envelope **envs = calloc(in->n, sizeof(Vigil__Envelope *));
    bool *marks = calloc(in->n, sizeof(bool));
    if (!envs || !marks) {
        free(envs);
        free(marks);
        return false;
    }
    for (size_t i = 0; i < in->n; i++)
        envs[i] = in->items[i].env;
    struct store_evidence_events events = {0};
    int r = store_ingest_marked(self->store, envs, in->n, marks, &fresh, &events);
    free(envs);
    for (size_t i = 0; i < in->n; i++) {
        const Vigil__Envelope *env = in->items[i].env;
        in->items[i].fresh = r == 0 && marks[i];
        /* body is a union: only a signals body has n_signals */
        if (in->items[i].fresh && env->body_case == VIGIL__ENVELOPE__BODY_SIGNALS && env->signals)
            signals += env->signals->n_signals;
    }
    free(marks);
    evidence_report(&events); /* empty unless the batch committed */
    store_evidence_events_clear(&events);
    metrics_store_batch((double)(vg_mono_ms() - started) / 1000.0);
    if (r < 0) {
        /* Not acknowledged: every agent still has these in its spool and resends them. */
        for (size_t i = 0; i < in->n; i++)
            metrics_refused(REFUSE_STORE);
        /* Once per outage: the store logs the outage itself (store.h), not every batch. */
        vg_log(metrics_store_is_up() ? VG_LOG_ERROR : VG_LOG_DEBUG,
               "store: batch of %zu messages not stored (%s); agents will resend", in->n,
               strerror(-r));
        metrics_store_up(0);
        return false;
    }
    metrics_rows_stored(fresh, signals);
    send_followups(self);
    return true;
}

/* Committed and acknowledged signals go to the observer, each batch with its agent's node;
 * a resend of a stored batch is not news. */
static void observe_signals(router_t *self, const struct inbox *in)
{
    if (!self->cfg.observer.signals)
        return;
    for (size_t i = 0; i < in->n; i++) {
        const Vigil__Envelope *env = in->items[i].env;
        if (!in->items[i].fresh || env->body_case != VIGIL__ENVELOPE__BODY_SIGNALS ||
            !env->signals)
            continue;
        const struct agent *agent = registry_agent(self->registry, env->sender);
        if (agent)
            self->cfg.observer.signals(self->cfg.observer.userdata, agent->node, env->signals);
    }
}

/*
 * Receive, dispatch, commit, acknowledge — with the next batch received by the receiver thread
 * while this one is committed, for up to HANDLE_BUDGET_MS. Every batch is committed before its
 * acks go out, and nothing is left in flight when this returns: what the receiver has not
 * taken is still in the socket, and the loop polls it again. Batches done with are freed by the
 * receiver when it next starts.
 */
void router_handle(router_t *self)
{
    int64_t budget_end = vg_mono_ms() + HANDLE_BUDGET_MS;
    struct inbox *batch = &self->inbox[0], *next = &self->inbox[1];

    /* Collect requests and capsules the admin side queued go out while the socket is ours. */
    evidence_dispatch(self->evidence, self->store, send_to_agent, self);
    remediate_dispatch(self->commands, send_to_agent, self);
    /* What is waiting now; the main thread has nothing to overlap with yet. */
    receiver_start(&self->receiver, false);
    receiver_stop(&self->receiver);
    for (;;) {
        /* What the receiver took becomes the batch; the batch done with goes to inbox[1]. */
        struct inbox received = *next;
        *next = *batch;
        *batch = received;
        dispatch_inbox(self, batch);
        if (batch->n == 0)
            return;
        bool overlap = vg_mono_ms() < budget_end;
        if (overlap)
            receiver_start(&self->receiver, true);
        bool committed = commit_inbox(self, batch);
        if (overlap)
            receiver_stop(&self->receiver);
        if (committed) {
            acknowledge(self, batch);
            observe_signals(self, batch);
        }
        if (!overlap)
            return;
    }
}

/* ---- liveness ---- */

void router_send_requests(router_t *self)
{
    evidence_dispatch(self->evidence, self->store, send_to_agent, self);
    remediate_dispatch(self->commands, send_to_agent, self);
}

void *router_commands_socket(router_t *self)
{
    return remediate_dispatcher_socket(self->commands);
}

void *router_requests_socket(router_t *self)
{
    return evidence_dispatcher_socket(self->evidence);
}

/*
 * Once a minute: rate windows of quiet addresses go, agents that stayed pending past
 * cfg.pending_ttl_ms are forgotten, and chunks of artifacts that never completed are removed
 * once their request failed (both audited): nothing a peer leaves behind grows without bound.
 */
static void forget_stale(router_t *self)
{
    int64_t now_mono = vg_mono_ms();
    if (now_mono < self->next_forget_mono)
        return;
    /* A grace or a pending time shorter than a minute (tests) is honoured to the second. */
    int64_t every = ENROLL_WINDOW_MS;
    if (self->cfg.incomplete_evidence_grace_ms < every)
        every = self->cfg.incomplete_evidence_grace_ms;
    if (self->cfg.pending_ttl_ms > 0 && self->cfg.pending_ttl_ms < every)
        every = self->cfg.pending_ttl_ms;
    self->next_forget_mono = now_mono + (every < 1000 ? 1000 : every);
    enroll_windows_prune(self);

    int64_t now = vg_wall_ms();
    zlistx_t *expired = zlistx_new();
    if (!expired)
        return;
    zlistx_set_destructor(expired, free_entry);
    for (struct agent *a = registry_agent_next(self->registry, NULL); a;
         a = registry_agent_next(self->registry, a)) {
        if (a->state == VIGIL__AGENT_STATE__AGENT_STATE_PENDING &&
            now - a->state_since_ms > self->cfg.pending_ttl_ms)
            zlistx_add_end(expired, strdup(a->id));
    }
    for (char *id = zlistx_first(expired); id; id = zlistx_next(expired)) {
        if (!id || store_agent_forget_pending(self->store, id, "never approved: expired") < 0)
            continue;
        vg_log(VG_LOG_INFO, "agent=%s pending too long without approval: forgotten", id);
        registry_agent_remove(self->registry, id);
        routes_forget(self->routes, id);
        series_cap_forget(self->series, id);
    }
    zlistx_destroy(&expired);
    /* Chunks of uploads that never completed are removed by the retention thread, on the
     * maintenance connection (retention.h). */
}

void router_tick(router_t *self)
{
    int64_t now = vg_mono_ms();
    int64_t lost_after = self->cfg.heartbeat_interval_ms * self->cfg.missed_heartbeats;
    size_t n = registry_agent_count(self->registry);
    struct store_agent_health *health = calloc(n ? n : 1, sizeof(*health));
    struct metrics_agent *gauges = calloc(n ? n : 1, sizeof(*gauges));
    uint64_t by_state[5] = {0};
    size_t nhealth = 0, ngauges = 0;

    for (struct agent *a = registry_agent_next(self->registry, NULL); a;
         a = registry_agent_next(self->registry, a)) {
        if (a->state == VIGIL__AGENT_STATE__AGENT_STATE_ACTIVE &&
            now - a->last_seen_mono > lost_after) {
            char reason[96];
            snprintf(reason, sizeof(reason), "missed %lld heartbeats",
                     (long long)self->cfg.missed_heartbeats);
            set_state(self, a, VIGIL__AGENT_STATE__AGENT_STATE_LOST, reason);
        }
        if ((unsigned)a->state < 5)
            by_state[a->state]++;
        if (health && a->health_dirty) {
            health[nhealth++] = (struct store_agent_health){
                .id = a->id,
                .last_seen_ms = a->last_seen_ms,
                .agent_version = a->agent_version,
                .uptime_s = a->uptime_s,
                .spool_depth = a->spool_depth,
                .spool_bytes = a->spool_bytes,
                .dropped_messages = a->dropped_messages,
                .dropped_samples = a->dropped_samples,
            };
        }
        if (gauges) {
            struct metrics_agent *g = &gauges[ngauges++];
            copy_text(g->id, sizeof(g->id), a->id);
            copy_text(g->node, sizeof(g->node), a->node);
            g->spool_depth = a->spool_depth;
            g->dropped_messages = a->dropped_messages;
        }
    }
    if (nhealth > 0 && store_agents_health(self->store, health, nhealth) == 0) {
        for (struct agent *a = registry_agent_next(self->registry, NULL); a;
             a = registry_agent_next(self->registry, a))
            a->health_dirty = false;
    }
    metrics_set_agents(gauges, ngauges, by_state);
    free(health);
    free(gauges);

    evidence_dispatch(self->evidence, self->store, send_to_agent, self);
    remediate_dispatch(self->commands, send_to_agent, self);
    evidence_expire(self->store);
    remediate_expire(self->store);
    forget_stale(self);
}
