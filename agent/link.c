#include "link.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <zmq.h>

#include "log.h"
#include "timeutil.h"
#include "wire.h"

#define ENROLL_RETRY_MIN_MS 1000
#define ENROLL_RETRY_MAX_MS 30000
#define REVOKED_RETRY_MS 60000
/* Requests remembered to be handled once: more than the coordinator keeps unanswered (32). */
#define LINK_SEEN_MAX 256

struct link {
    struct link_config cfg;
    spool_t *spool;
    void *socket;
    void *monitor;
    char monitor_endpoint[64];
    enum link_state state;
    bool connected;
    bool executor_ok;
    int64_t started_mono;
    int64_t heartbeat_interval_ms;
    int64_t next_heartbeat; /* mono */
    int64_t next_enroll;    /* mono; 0 = not scheduled */
    int64_t enroll_backoff_ms;
    int64_t last_heard;           /* mono: last message from the coordinator */
    int64_t last_contact;         /* wall clock of the same, for the status file; 0 = never */
    uint64_t ignored;             /* malformed or unexpected messages from the coordinator */
    uint64_t refused;             /* records the coordinator refused as invalid, discarded */
    int64_t ack_deadline;         /* mono: in-flight records are resent after this; 0 = none */
    uint64_t seen[LINK_SEEN_MAX]; /* requests acted on lately (seen_before) */
    unsigned seen_next;
    uint64_t duplicates; /* requests received again and not acted on */
};

static int setopt_int(void *socket, int option, int value)
{
    return zmq_setsockopt(socket, option, &value, sizeof(value));
}

static int64_t jitter(int64_t base_ms)
{
    uint32_t r = 0;
    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
        r = (uint32_t)vg_mono_ms();
    return base_ms + (int64_t)(r % (uint32_t)(base_ms > 0 ? base_ms : 1));
}

link_t *link_new(void *ctx, const struct link_config *cfg, spool_t *spool, char *err, size_t errlen)
{
    static int monitor_count;
    link_t *self = calloc(1, sizeof(*self));
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->cfg = *cfg;
    self->spool = spool;
    self->state = LINK_ENROLLING;
    self->executor_ok = true;
    self->started_mono = vg_mono_ms();
    self->heartbeat_interval_ms = cfg->heartbeat_interval_ms;
    self->enroll_backoff_ms = ENROLL_RETRY_MIN_MS;
    self->next_heartbeat = self->started_mono + self->heartbeat_interval_ms;

    self->socket = zmq_socket(ctx, ZMQ_DEALER);
    /* IMMEDIATE: nothing queues on a connection that is not up; the spool is the queue.
     * Reconnect delays are randomised per agent so a coordinator restart does not make every
     * agent hand-shake in the same instant. */
    if (!self->socket ||
        vg_zmq_common_options(self->socket, (int)cfg->heartbeat_interval_ms, VG_LIVENESS_TCP) < 0 ||
        vg_zmq_curve_client(self->socket, cfg->keys->public_key, cfg->keys->secret_key,
                            cfg->server_public_key) < 0 ||
        setopt_int(self->socket, ZMQ_IMMEDIATE, 1) != 0 ||
        setopt_int(self->socket, ZMQ_SNDHWM, (int)cfg->max_inflight + 16) != 0 ||
        setopt_int(self->socket, ZMQ_RECONNECT_IVL, (int)jitter(cfg->reconnect_min_ms)) != 0 ||
        setopt_int(self->socket, ZMQ_RECONNECT_IVL_MAX, (int)cfg->reconnect_max_ms) != 0) {
        snprintf(err, errlen, "coordinator socket: %s", zmq_strerror(zmq_errno()));
        link_destroy(&self);
        return NULL;
    }
    snprintf(self->monitor_endpoint, sizeof(self->monitor_endpoint), "inproc://link-monitor-%d",
             monitor_count++);
    if (zmq_socket_monitor(self->socket, self->monitor_endpoint,
                           ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED |
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) != 0 ||
        !(self->monitor = zmq_socket(ctx, ZMQ_PAIR)) ||
        zmq_connect(self->monitor, self->monitor_endpoint) != 0) {
        snprintf(err, errlen, "socket monitor: %s", zmq_strerror(zmq_errno()));
        link_destroy(&self);
        return NULL;
    }
    if (zmq_connect(self->socket, cfg->endpoint) != 0) {
        snprintf(err, errlen, "cannot connect to %s: %s", cfg->endpoint, zmq_strerror(zmq_errno()));
        link_destroy(&self);
        return NULL;
    }
    return self;
}

void link_destroy(link_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    link_t *self = *self_p;
    if (self->monitor)
        zmq_close(self->monitor);
    if (self->socket) {
        zmq_socket_monitor(self->socket, NULL, 0);
        zmq_close(self->socket);
    }
    free(self);
    *self_p = NULL;
}

void *link_socket(link_t *self)
{
    return self->socket;
}

void *link_monitor_socket(link_t *self)
{
    return self->monitor;
}

enum link_state link_state(const link_t *self)
{
    return self->state;
}

const char *link_state_name(enum link_state state)
{
    static const char *const names[] = {"enrolling", "pending", "active", "revoked"};
    return state <= LINK_REVOKED ? names[state] : "unknown";
}

void link_set_executor_ok(link_t *self, bool ok)
{
    self->executor_ok = ok;
}

void link_get_status(const link_t *self, struct link_status *ret)
{
    *ret = (struct link_status){.state = self->state,
                                .connected = self->connected,
                                .last_contact_ms = self->last_contact,
                                .heartbeat_interval_ms = self->heartbeat_interval_ms};
}

/* ---- sending ---- */

static int send_envelope(link_t *self, Vigil__Envelope *env)
{
    uint8_t *buf;
    size_t len;
    int r = vg_envelope_encode(env, &buf, &len);
    if (r < 0)
        return r;
    r = zmq_send(self->socket, buf, len, ZMQ_DONTWAIT) < 0 ? -zmq_errno() : 0;
    free(buf);
    return r;
}

static void send_enroll(link_t *self)
{
    Vigil__Enroll enroll = VIGIL__ENROLL__INIT;
    Vigil__Envelope env;

    enroll.node = (char *)self->cfg.node;
    enroll.agent_version = VIGIL_VERSION;
    if (self->cfg.token) {
        enroll.token.data = (uint8_t *)self->cfg.token;
        enroll.token.len = VG_TOKEN_LEN;
    }
    enroll.role = (char *)(self->cfg.role ? self->cfg.role : "node");
    enroll.n_actions = self->cfg.nactions;
    enroll.actions = (Vigil__ActionInfo **)self->cfg.actions;
    vg_envelope_init(&env, self->cfg.agent_id, 0);
    env.body_case = VIGIL__ENVELOPE__BODY_ENROLL;
    env.enroll = &enroll;
    int r = send_envelope(self, &env);
    vg_log(VG_LOG_DEBUG, "enroll sent node=%s result=%s", self->cfg.node,
           r < 0 ? strerror(-r) : "ok");
    int64_t now = vg_mono_ms();
    self->next_enroll = now + jitter(self->enroll_backoff_ms);
    self->enroll_backoff_ms *= 2;
    if (self->enroll_backoff_ms > ENROLL_RETRY_MAX_MS)
        self->enroll_backoff_ms = ENROLL_RETRY_MAX_MS;
}

static void send_heartbeat(link_t *self)
{
    Vigil__Heartbeat hb = VIGIL__HEARTBEAT__INIT;
    Vigil__Envelope env;
    struct spool_stats st;

    spool_stats(self->spool, &st);
    hb.agent_version = VIGIL_VERSION;
    hb.uptime_s = (uint64_t)(vg_mono_ms() - self->started_mono) / 1000;
    hb.spool_depth = st.depth;
    hb.spool_bytes = st.bytes;
    hb.dropped_messages = st.dropped_messages;
    hb.dropped_samples = st.dropped_samples;
    hb.executor_ok = self->executor_ok;
    vg_envelope_init(&env, self->cfg.agent_id, 0);
    env.body_case = VIGIL__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    send_envelope(self, &env);
}

/* Sends spooled records while the window has room and the socket takes them. */
static void pump(link_t *self)
{
    struct spool_stats st;
    struct spool_entry entry;

    if (self->state != LINK_ACTIVE || !self->connected)
        return;
    spool_stats(self->spool, &st);
    while ((int64_t)st.inflight < self->cfg.max_inflight &&
           spool_next_unsent(self->spool, &entry) == 0) {
        if (zmq_send(self->socket, entry.data, entry.len, ZMQ_DONTWAIT) < 0) {
            if (zmq_errno() != EAGAIN)
                vg_log(VG_LOG_WARN, "send seq=%llu: %s", (unsigned long long)entry.seq,
                       zmq_strerror(zmq_errno()));
            break;
        }
        if (st.inflight == 0)
            self->ack_deadline = vg_mono_ms() + self->cfg.ack_timeout_ms;
        spool_mark_sent(self->spool, entry.seq);
        st.inflight++;
    }
}

/* Whatever was in flight on a connection that is gone goes out again. */
static void restart_delivery(link_t *self, const char *why)
{
    struct spool_stats st;
    spool_stats(self->spool, &st);
    if (st.inflight > 0)
        vg_log(VG_LOG_INFO, "resending %llu unacknowledged messages: %s",
               (unsigned long long)st.inflight, why);
    spool_requeue_inflight(self->spool);
    self->ack_deadline = 0;
}

/* Drops the connection and dials again. zmq_disconnect ends the session without a
 * DISCONNECTED event; the next HANDSHAKE_SUCCEEDED enrolls again. */
static void reconnect(link_t *self)
{
    self->connected = false;
    restart_delivery(self, "reconnecting");
    if (zmq_disconnect(self->socket, self->cfg.endpoint) != 0)
        vg_log(VG_LOG_WARN, "disconnect from %s: %s", self->cfg.endpoint,
               zmq_strerror(zmq_errno()));
    if (zmq_connect(self->socket, self->cfg.endpoint) != 0)
        vg_log(VG_LOG_ERROR, "cannot connect to %s: %s", self->cfg.endpoint,
               zmq_strerror(zmq_errno()));
}

static void begin_enrollment(link_t *self)
{
    self->state = LINK_ENROLLING;
    self->enroll_backoff_ms = ENROLL_RETRY_MIN_MS;
    send_enroll(self);
}

/* ---- receiving ---- */

/* The coordinator sends a request again when this agent reconnects before answering it
 * (coordinator/ingest/routes.h); the copy that arrives second is not acted on. Collections are
 * known by their id (shifted: even), capsules by their random nonce (odd). */
static bool seen_before(link_t *self, uint64_t identity)
{
    for (unsigned i = 0; i < LINK_SEEN_MAX; i++)
        if (self->seen[i] == identity && identity != 0) {
            self->duplicates++;
            vg_log(VG_LOG_DEBUG, "a request the coordinator sent again was handled already");
            return true;
        }
    self->seen[self->seen_next] = identity;
    self->seen_next = (self->seen_next + 1) % LINK_SEEN_MAX;
    return false;
}

static uint64_t capsule_identity(const Vigil__CommandCapsule *capsule)
{
    uint64_t id;
    memcpy(&id, capsule->nonce.data, sizeof(id));
    return id | 1;
}

static void handle_ack(link_t *self, const Vigil__Ack *ack)
{
    uint64_t oldest = spool_oldest_inflight(self->spool);
    for (size_t i = 0; i < ack->n_ranges; i++) {
        int r = spool_ack(self->spool, ack->ranges[i]->first, ack->ranges[i]->last);
        if (r < 0)
            vg_log(VG_LOG_WARN, "spool ack %llu-%llu: %s",
                   (unsigned long long)ack->ranges[i]->first,
                   (unsigned long long)ack->ranges[i]->last, strerror(-r));
    }
    /* The deadline is the oldest in-flight record's: an Ack of later ones does not push it back.
     * A record whose batch the coordinator could not commit (its database was down) is never
     * acknowledged; it used to wait for as long as newer records kept being acknowledged. */
    uint64_t now_oldest = spool_oldest_inflight(self->spool);
    if (now_oldest == 0)
        self->ack_deadline = 0;
    else if (now_oldest != oldest)
        self->ack_deadline = vg_mono_ms() + self->cfg.ack_timeout_ms;
}

static void handle_enroll_reply(link_t *self, const Vigil__EnrollReply *reply)
{
    enum link_state before = self->state;

    if (reply->heartbeat_interval_ms >= 100)
        self->heartbeat_interval_ms = reply->heartbeat_interval_ms;
    switch (reply->state) {
    case VIGIL__AGENT_STATE__AGENT_STATE_ACTIVE:
    case VIGIL__AGENT_STATE__AGENT_STATE_LOST:
        self->state = LINK_ACTIVE;
        self->next_enroll = 0;
        /* Anything sent before this reply may have been refused: send it again. */
        restart_delivery(self, "enrolled");
        break;
    case VIGIL__AGENT_STATE__AGENT_STATE_PENDING:
        self->state = LINK_PENDING;
        self->next_enroll = vg_mono_ms() + self->heartbeat_interval_ms;
        break;
    default:
        self->state = LINK_REVOKED;
        self->next_enroll = vg_mono_ms() + REVOKED_RETRY_MS;
        break;
    }
    if (before != self->state) {
        if (self->state == LINK_PENDING)
            vg_log(VG_LOG_WARN, "agent=%s is pending: approve it with `vigilctl agents approve %s`",
                   self->cfg.agent_id, self->cfg.agent_id);
        else
            vg_log(VG_LOG_INFO, "agent=%s link=%s", self->cfg.agent_id,
                   link_state_name(self->state));
    }
}

static void handle_refusal(link_t *self, const Vigil__Refusal *refusal)
{
    switch (refusal->code) {
    case VIGIL__REFUSAL_CODE__REFUSAL_NOT_ENROLLED:
        vg_log(VG_LOG_INFO, "coordinator: not enrolled (%s); enrolling", refusal->reason);
        restart_delivery(self, "not enrolled");
        begin_enrollment(self);
        break;
    case VIGIL__REFUSAL_CODE__REFUSAL_REVOKED:
        if (self->state != LINK_REVOKED)
            vg_log(VG_LOG_ERROR,
                   "agent=%s: the coordinator revoked this agent's key (%s); "
                   "nothing more will be accepted from it",
                   self->cfg.agent_id, refusal->reason);
        restart_delivery(self, "revoked");
        self->state = LINK_REVOKED;
        self->next_enroll = vg_mono_ms() + REVOKED_RETRY_MS;
        break;
    case VIGIL__REFUSAL_CODE__REFUSAL_INVALID:
        vg_log(VG_LOG_ERROR, "coordinator refused seq=%llu as invalid: %s",
               (unsigned long long)refusal->seq, refusal->reason);
        /* Resending an invalid message cannot succeed; a transient one (seq 0) is simply
         * retried by its own timer. */
        if (refusal->seq > 0) {
            spool_discard(self->spool, refusal->seq);
            self->refused++;
        }
        break;
    case VIGIL__REFUSAL_CODE__REFUSAL_RATE_LIMITED:
        vg_log(VG_LOG_WARN, "coordinator: %s", refusal->reason);
        self->next_enroll = vg_mono_ms() + ENROLL_RETRY_MAX_MS;
        break;
    default:
        vg_log(VG_LOG_ERROR, "coordinator refused a message: code=%d %s", refusal->code,
               refusal->reason);
        break;
    }
}

void link_handle(link_t *self)
{
    for (int i = 0; i < 256; i++) {
        zmq_msg_t msg;
        int more = 0;
        size_t more_len = sizeof(more);
        Vigil__Envelope *env = NULL;
        const char *why = NULL;

        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, self->socket, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            break;
        }
        zmq_getsockopt(self->socket, ZMQ_RCVMORE, &more, &more_len);
        enum vg_decode_error e =
            more ? VG_DECODE_MALFORMED
                 : vg_envelope_decode(zmq_msg_data(&msg), zmq_msg_size(&msg), &env, &why);
        zmq_msg_close(&msg);
        while (more) {
            zmq_msg_init(&msg);
            zmq_msg_recv(&msg, self->socket, 0);
            zmq_msg_close(&msg);
            zmq_getsockopt(self->socket, ZMQ_RCVMORE, &more, &more_len);
        }
        if (e != VG_DECODE_OK) {
            self->ignored++;
            vg_log(VG_LOG_WARN, "ignored a message from the coordinator: %s (%s)",
                   vg_decode_error_name(e), why ? why : "multipart");
            continue;
        }
        self->last_heard = vg_mono_ms();
        self->last_contact = vg_wall_ms();
        switch (env->body_case) {
        case VIGIL__ENVELOPE__BODY_ACK:
            handle_ack(self, env->ack);
            break;
        case VIGIL__ENVELOPE__BODY_ENROLL_REPLY:
            handle_enroll_reply(self, env->enroll_reply);
            break;
        case VIGIL__ENVELOPE__BODY_REFUSAL:
            handle_refusal(self, env->refusal);
            break;
        case VIGIL__ENVELOPE__BODY_COLLECT:
            if (env->collect && seen_before(self, env->collect->collection_id << 1))
                break;
            if (self->cfg.on_collect) {
                self->cfg.on_collect(self->cfg.userdata, env->collect);
                break;
            }
            /* this agent takes no collect requests */
            goto ignored;
        case VIGIL__ENVELOPE__BODY_COMMAND:
            if (env->command && env->command->nonce.len >= sizeof(uint64_t) &&
                seen_before(self, capsule_identity(env->command)))
                break;
            if (self->cfg.on_command) {
                self->cfg.on_command(self->cfg.userdata, env->command);
                break;
            }
            /* this agent takes no commands */
            goto ignored;
        default:
        ignored:
            self->ignored++;
            vg_log(VG_LOG_WARN, "ignored a message of type %d from the coordinator",
                   env->body_case);
            break;
        }
        vg_envelope_free(env);
    }
    pump(self);
}

uint64_t link_ignored_messages(const link_t *self)
{
    return self->ignored;
}

uint64_t link_refused_records(const link_t *self)
{
    return self->refused;
}

uint64_t link_duplicate_requests(const link_t *self)
{
    return self->duplicates;
}

void link_handle_monitor(link_t *self)
{
    for (;;) {
        zmq_msg_t frame;
        uint16_t event = 0;
        uint32_t value = 0;
        int more = 0;
        size_t more_len = sizeof(more);

        zmq_msg_init(&frame);
        if (zmq_msg_recv(&frame, self->monitor, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&frame);
            return;
        }
        if (zmq_msg_size(&frame) >= 6) {
            memcpy(&event, zmq_msg_data(&frame), sizeof(event));
            memcpy(&value, (uint8_t *)zmq_msg_data(&frame) + 2, sizeof(value));
        }
        zmq_msg_close(&frame);
        zmq_getsockopt(self->monitor, ZMQ_RCVMORE, &more, &more_len);
        while (more) { /* the endpoint frame */
            zmq_msg_init(&frame);
            zmq_msg_recv(&frame, self->monitor, 0);
            zmq_msg_close(&frame);
            zmq_getsockopt(self->monitor, ZMQ_RCVMORE, &more, &more_len);
        }

        switch (event) {
        case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
            vg_log(VG_LOG_INFO, "connected to %s", self->cfg.endpoint);
            self->connected = true;
            self->last_heard = vg_mono_ms();
            restart_delivery(self, "reconnected");
            begin_enrollment(self);
            break;
        case ZMQ_EVENT_DISCONNECTED:
            if (self->connected)
                vg_log(VG_LOG_WARN, "disconnected from %s; reconnecting", self->cfg.endpoint);
            self->connected = false;
            restart_delivery(self, "disconnected");
            break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
            vg_log(VG_LOG_ERROR, "the coordinator refused this agent's key (status %u): revoked?",
                   value);
            self->connected = false;
            break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
            vg_log(VG_LOG_ERROR,
                   "handshake with %s failed (protocol error %u): is "
                   "coordinator.public_key right?",
                   self->cfg.endpoint, value);
            self->connected = false;
            break;
        default:
            break;
        }
    }
}

void link_tick(link_t *self)
{
    int64_t now = vg_mono_ms();

    /* The heartbeat deadline moves on while disconnected too: link_next_timeout is the loop's
     * sleep, and a deadline left in the past made the agent poll without sleeping for as long
     * as the coordinator was unreachable (a fifth of a core). */
    if (now >= self->next_heartbeat) {
        if (self->connected && self->state == LINK_ACTIVE)
            send_heartbeat(self);
        self->next_heartbeat = now + self->heartbeat_interval_ms;
        /* Silence for three heartbeats while connected: the connection is half dead (a
         * partition, a middlebox that takes our bytes and passes nothing on; the socket has no
         * ZMTP heartbeat to see it, VG_LIVENESS_TCP says why) or the coordinator lost our
         * state. A new connection, then a new enrollment; duplicates are harmless. */
        if (self->connected && (self->state == LINK_ACTIVE || self->state == LINK_PENDING) &&
            now - self->last_heard > 3 * self->heartbeat_interval_ms) {
            vg_log(VG_LOG_WARN, "no answer from the coordinator for %lld ms; reconnecting",
                   (long long)(now - self->last_heard));
            self->last_heard = now;
            reconnect(self);
        }
    }
    if (self->connected && self->next_enroll && now >= self->next_enroll &&
        self->state != LINK_ACTIVE)
        send_enroll(self);
    if (self->ack_deadline && now >= self->ack_deadline)
        restart_delivery(self, "acknowledgement timed out");
    pump(self);
}

int64_t link_next_timeout(const link_t *self)
{
    int64_t now = vg_mono_ms();
    int64_t next = self->next_heartbeat;

    /* Enrollment is sent only while connected; a reconnection wakes the loop (the monitor). */
    if (self->connected && self->next_enroll && self->state != LINK_ACTIVE &&
        self->next_enroll < next)
        next = self->next_enroll;
    if (self->ack_deadline && self->ack_deadline < next)
        next = self->ack_deadline;
    return next > now ? next - now : 0;
}
