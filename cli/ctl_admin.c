#include "ctl_admin.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <zmq.h>

#include "commands.h"
#include "timeutil.h"

#define HEARTBEAT_IVL_MS 1000
#define MONITOR_ENDPOINT "inproc://vigilctl-monitor"
#define MONITOR_EVENTS                                                                             \
    (ZMQ_EVENT_CONNECTED | ZMQ_EVENT_CONNECT_RETRIED | ZMQ_EVENT_DISCONNECTED |                    \
     ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |                        \
     ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
#define ZAP_STATUS_DENIED 400

/* What the socket monitor has told us about the connection so far. */
struct link_state {
    bool monitored;          /* the monitor is attached; without it we know nothing */
    bool connected;          /* a TCP connection was made at least once */
    bool handshake_ok;       /* a CURVE handshake completed */
    bool lost;               /* an authenticated connection dropped: what was sent on it is gone */
    bool answered;           /* a reply arrived on this session (not from the monitor) */
    uint32_t auth_status;    /* ZAP status of the last refused handshake, 0 = none */
    uint32_t protocol_error; /* ZMQ_PROTOCOL_ERROR_* of the last failed handshake, 0 = none */
};

static const char *protocol_error_text(uint32_t code)
{
    switch (code) {
    case ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
        return "cryptographic error";
    case ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
        return "the server does not speak CURVE";
    case ZMQ_PROTOCOL_ERROR_ZMTP_KEY_EXCHANGE:
        return "key exchange failed";
    default:
        return "protocol error";
    }
}

static void format_duration(int64_t ms, char *buf, size_t buflen)
{
    if (ms < 1000)
        snprintf(buf, buflen, "%lldms", (long long)ms);
    else if (ms % 1000 == 0)
        snprintf(buf, buflen, "%llds", (long long)(ms / 1000));
    else
        snprintf(buf, buflen, "%gs", (double)ms / 1000.0);
}

/* Applies one monitor event. Returns -EACCES when the coordinator refused our key. */
static int link_state_apply(struct link_state *st, uint16_t event, uint32_t value)
{
    switch (event) {
    case ZMQ_EVENT_CONNECTED:
        st->connected = true;
        break;
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        st->handshake_ok = true;
        break;
    case ZMQ_EVENT_DISCONNECTED:
        if (st->handshake_ok)
            st->lost = true;
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        st->protocol_error = value;
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        st->auth_status = value;
        if (value == ZAP_STATUS_DENIED)
            return -EACCES;
        break;
    default:
        break;
    }
    return 0;
}

/* Reads every pending event (libzmq 4.3: frame 1 = uint16 event + uint32 value, frame 2 =
 * the endpoint). */
static int monitor_drain(void *monitor, struct link_state *st)
{
    for (;;) {
        zmq_msg_t frame;
        uint16_t event = 0;
        uint32_t value = 0;
        bool well_formed;
        bool more;

        zmq_msg_init(&frame);
        if (zmq_msg_recv(&frame, monitor, ZMQ_DONTWAIT) < 0) {
            int r = -errno;
            zmq_msg_close(&frame);
            if (r == -EAGAIN)
                return 0;
            if (r == -EINTR)
                continue;
            return r;
        }
        well_formed = zmq_msg_size(&frame) == sizeof(event) + sizeof(value);
        if (well_formed) {
            const uint8_t *data = zmq_msg_data(&frame);
            memcpy(&event, data, sizeof(event));
            memcpy(&value, data + sizeof(event), sizeof(value));
        }
        more = zmq_msg_more(&frame);
        zmq_msg_close(&frame);
        while (more) { /* the endpoint frame: not needed, we know where we connected */
            zmq_msg_init(&frame);
            if (zmq_msg_recv(&frame, monitor, 0) < 0) {
                zmq_msg_close(&frame);
                break;
            }
            more = zmq_msg_more(&frame);
            zmq_msg_close(&frame);
        }
        if (well_formed) {
            int r = link_state_apply(st, event, value);
            if (r < 0)
                return r;
        }
    }
}

static void timeout_message(const struct link_state *st, const char *endpoint, int64_t timeout_ms,
                            char *err, size_t errlen)
{
    char within[32];

    format_duration(timeout_ms, within, sizeof(within));
    if (!st->monitored || (!st->connected && !st->handshake_ok))
        snprintf(err, errlen,
                 "no reply from %s within %s (is the coordinator running, and is "
                 "coordinator_public_key right?)",
                 endpoint, within);
    else if (st->lost)
        snprintf(err, errlen,
                 "no reply from %s within %s (the connection was lost after it was "
                 "authenticated: did the coordinator stop or restart?)",
                 endpoint, within);
    else if (st->answered)
        snprintf(err, errlen,
                 "no reply from %s within %s (the coordinator answered earlier requests on this "
                 "connection, then went quiet: is it overloaded or stopped?)",
                 endpoint, within);
    else if (st->handshake_ok)
        snprintf(err, errlen,
                 "no reply from %s within %s (connected and authenticated, but the coordinator "
                 "did not answer: is that its admin socket, port %d?)",
                 endpoint, within, VG_PORT_ADMIN);
    else if (st->auth_status != 0)
        snprintf(err, errlen,
                 "no reply from %s within %s (the coordinator's authentication answered status "
                 "%u; try again)",
                 endpoint, within, (unsigned)st->auth_status);
    else if (st->protocol_error != 0)
        snprintf(err, errlen,
                 "no reply from %s within %s (the CURVE handshake failed: %s; is "
                 "coordinator_public_key right?)",
                 endpoint, within, protocol_error_text(st->protocol_error));
    else
        snprintf(err, errlen,
                 "no reply from %s within %s (connected, but the CURVE handshake did not "
                 "complete: is coordinator_public_key right?)",
                 endpoint, within);
}

static int random_request_id(uint64_t *ret_id)
{
    uint64_t id = 0;

    while (id == 0) { /* 0 reads as "unset" on the wire */
        ssize_t n = getrandom(&id, sizeof(id), 0);
        if (n < 0 && errno != EINTR)
            return -errno;
    }
    *ret_id = id;
    return 0;
}

/*
 * Receives one message and returns its payload: the last frame (empty delimiter frames in
 * front of it are tolerated). *ret_msg must be closed by the caller.
 */
static int recv_payload(void *sock, zmq_msg_t *ret_msg)
{
    zmq_msg_init(ret_msg);
    for (;;) {
        if (zmq_msg_recv(ret_msg, sock, ZMQ_DONTWAIT) < 0)
            return -errno;
        if (!zmq_msg_more(ret_msg))
            return 0;
        /* zmq_msg_recv releases the previous frame's content before reusing ret_msg. */
    }
}

/*
 * The session: one context, one CURVE DEALER socket and its monitor, connected once. Requests
 * go out as the connection takes them; each reply is matched to its request by request_id, so
 * several may be in flight (the coordinator answers one at a time, in the order they came).
 */
struct ctl_admin_session {
    void *zmq_ctx;
    void *sock;
    void *monitor; /* NULL: no monitor, vaguer errors */
    struct link_state st;
    char *endpoint;     /* cfg->coordinator, for messages */
    int64_t timeout_ms; /* what a timeout's message names */
};

void ctl_admin_session_destroy(ctl_admin_session_t **self_p)
{
    ctl_admin_session_t *self = self_p ? *self_p : NULL;

    if (self == NULL)
        return;
    if (self->monitor != NULL) {
        zmq_socket_monitor(self->sock, NULL, 0);
        zmq_close(self->monitor);
        self->monitor = NULL;
    }
    if (self->sock != NULL) {
        zmq_close(self->sock);
        self->sock = NULL;
    }
    if (self->zmq_ctx != NULL) {
        zmq_ctx_term(self->zmq_ctx);
        self->zmq_ctx = NULL;
    }
    free(self->endpoint);
    self->endpoint = NULL;
    free(self);
    *self_p = NULL;
}

int ctl_admin_session_open(const struct ctl_config *cfg, int64_t timeout_ms,
                           ctl_admin_session_t **ret_session, char *err, size_t errlen)
{
    const int zero = 0, one = 1;
    ctl_admin_session_t *self = calloc(1, sizeof(*self));
    int r;

    if (self == NULL || (self->endpoint = strdup(cfg->coordinator)) == NULL) {
        snprintf(err, errlen, "out of memory");
        r = -ENOMEM;
        goto err_destroy;
    }
    self->timeout_ms = timeout_ms;
    self->zmq_ctx = zmq_ctx_new();
    if (self->zmq_ctx == NULL) {
        r = -errno;
        snprintf(err, errlen, "cannot start ZeroMQ: %s", zmq_strerror(errno));
        goto err_destroy;
    }
    self->sock = zmq_socket(self->zmq_ctx, ZMQ_DEALER);
    if (self->sock == NULL) {
        r = -errno;
        snprintf(err, errlen, "cannot create a ZeroMQ socket: %s", zmq_strerror(errno));
        goto err_destroy;
    }

    r = vg_zmq_common_options(self->sock, HEARTBEAT_IVL_MS, VG_LIVENESS_ZMTP);
    if (r < 0) {
        snprintf(err, errlen, "cannot set socket options: %s", zmq_strerror(-r));
        goto err_destroy;
    }
    /* A command line tool must not hang on exit, and must not queue a request on a
     * connection that is not up (it would arrive after we gave up). */
    if (zmq_setsockopt(self->sock, ZMQ_LINGER, &zero, sizeof(zero)) < 0 ||
        zmq_setsockopt(self->sock, ZMQ_IMMEDIATE, &one, sizeof(one)) < 0) {
        r = -errno;
        snprintf(err, errlen, "cannot set socket options: %s", zmq_strerror(errno));
        goto err_destroy;
    }
    r = vg_zmq_curve_client(self->sock, cfg->public_key, cfg->secret_key,
                            cfg->coordinator_public_key);
    if (r < 0) {
        snprintf(err, errlen, "cannot set up CURVE: %s", zmq_strerror(-r));
        goto err_destroy;
    }

    /* The monitor is a diagnostic aid: without it we still work, with vaguer errors. */
    if (zmq_socket_monitor(self->sock, MONITOR_ENDPOINT, MONITOR_EVENTS) == 0) {
        self->monitor = zmq_socket(self->zmq_ctx, ZMQ_PAIR);
        if (self->monitor != NULL &&
            (zmq_setsockopt(self->monitor, ZMQ_LINGER, &zero, sizeof(zero)) < 0 ||
             zmq_connect(self->monitor, MONITOR_ENDPOINT) < 0)) {
            zmq_close(self->monitor);
            self->monitor = NULL;
        }
        if (self->monitor == NULL)
            zmq_socket_monitor(self->sock, NULL, 0);
        self->st.monitored = self->monitor != NULL;
    }

    if (zmq_connect(self->sock, cfg->coordinator) < 0) {
        r = -errno;
        if (r == -EINVAL || r == -EPROTONOSUPPORT)
            snprintf(err, errlen,
                     "coordinator \"%s\" is not an endpoint ZeroMQ can connect to "
                     "(expected something like tcp://host:%d)",
                     cfg->coordinator, VG_PORT_ADMIN);
        else
            snprintf(err, errlen, "cannot connect to %s: %s", cfg->coordinator,
                     zmq_strerror(errno));
        goto err_destroy;
    }
    *ret_session = self;
    return 0;

err_destroy:
    ctl_admin_session_destroy(&self);
    return r;
}

/*
 * Waits until the socket is ready for events (ZMQ_POLLIN or ZMQ_POLLOUT), reading the monitor
 * meanwhile. 0 when ready; -ETIMEDOUT at the deadline, -EACCES when the coordinator refused
 * this operator's key, or another negative errno; err says why.
 */
static int session_wait(ctl_admin_session_t *self, short events, int64_t deadline, char *err,
                        size_t errlen)
{
    for (;;) {
        zmq_pollitem_t items[2] = {
            {.socket = self->sock, .events = events},
            {.socket = self->monitor, .events = ZMQ_POLLIN},
        };
        int64_t remaining = deadline - vg_mono_ms();
        if (remaining <= 0) {
            timeout_message(&self->st, self->endpoint, self->timeout_ms, err, errlen);
            return -ETIMEDOUT;
        }

        int n = zmq_poll(items, self->monitor != NULL ? 2 : 1, (long)remaining);
        if (n < 0) {
            int r = -errno;
            if (r == -EINTR)
                continue;
            snprintf(err, errlen, "waiting for the coordinator: %s", zmq_strerror(-r));
            return r;
        }

        if (self->monitor != NULL && (items[1].revents & ZMQ_POLLIN)) {
            int r = monitor_drain(self->monitor, &self->st);
            if (r == -EACCES) {
                snprintf(err, errlen,
                         "the coordinator refused this operator key (not registered or revoked)");
                return r;
            }
        }
        if (items[0].revents & events)
            return 0;
    }
}

int ctl_admin_session_send(ctl_admin_session_t *self, Vigil__AdminRequest *req, int64_t deadline,
                           char *err, size_t errlen)
{
    uint8_t *req_buf = NULL;
    int r;

    r = random_request_id(&req->request_id);
    if (r < 0) {
        snprintf(err, errlen, "no random request id: %s", strerror(-r));
        return r;
    }
    req->version = VG_PROTOCOL_VERSION;
    size_t req_len = vigil__admin_request__get_packed_size(req);
    if (req_len > (size_t)VG_MAX_MESSAGE_BYTES) {
        snprintf(err, errlen, "request too large (%zu bytes)", req_len);
        return -EMSGSIZE;
    }
    req_buf = malloc(req_len > 0 ? req_len : 1);
    if (req_buf == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    vigil__admin_request__pack(req, req_buf);

    for (;;) {
        /* With ZMQ_IMMEDIATE the socket takes the request only once the connection is up. */
        r = session_wait(self, ZMQ_POLLOUT, deadline, err, errlen);
        if (r < 0)
            break;
        if (zmq_send(self->sock, req_buf, req_len, ZMQ_DONTWAIT) >= 0)
            break;
        r = -errno;
        if (r == -EAGAIN || r == -EINTR)
            continue;
        snprintf(err, errlen, "sending to the coordinator: %s", zmq_strerror(-r));
        break;
    }
    free(req_buf);
    req_buf = NULL;
    return r < 0 ? r : 0;
}

int ctl_admin_session_recv(ctl_admin_session_t *self, uint64_t request_id, int64_t deadline,
                           Vigil__AdminReply **ret_reply, char *err, size_t errlen)
{
    for (;;) {
        int r = session_wait(self, ZMQ_POLLIN, deadline, err, errlen);
        if (r < 0)
            return r;

        zmq_msg_t msg;
        r = recv_payload(self->sock, &msg);
        if (r < 0) {
            zmq_msg_close(&msg);
            if (r == -EAGAIN || r == -EINTR)
                continue;
            snprintf(err, errlen, "receiving from the coordinator: %s", zmq_strerror(-r));
            return r;
        }

        Vigil__AdminReply *reply = NULL;
        const char *reason = NULL;
        enum vg_decode_error derr =
            vg_admin_reply_decode(zmq_msg_data(&msg), zmq_msg_size(&msg), &reply, &reason);
        zmq_msg_close(&msg);
        if (derr == VG_DECODE_VERSION) {
            snprintf(err, errlen,
                     "the coordinator speaks another protocol version than this vigilctl "
                     "(version %d): upgrade one of them",
                     VG_PROTOCOL_VERSION);
            return -EPROTO;
        }
        if (derr != VG_DECODE_OK) {
            snprintf(err, errlen, "the coordinator sent a reply that does not decode (%s%s%s)",
                     vg_decode_error_name(derr), reason != NULL ? ": " : "",
                     reason != NULL ? reason : "");
            return -EPROTO;
        }
        self->st.answered = true;
        /* A late answer to a request given up on, or to an earlier one: never this one's. */
        if (reply->request_id != request_id) {
            vigil__admin_reply__free_unpacked(reply, NULL);
            continue;
        }
        *ret_reply = reply;
        return 0;
    }
}

int ctl_admin_call(const struct ctl_config *cfg, Vigil__AdminRequest *req, int64_t timeout_ms,
                   Vigil__AdminReply **ret_reply, char *err, size_t errlen)
{
    ctl_admin_session_t *session = NULL;

    /* Start the clock first: the whole exchange, connection included, fits in timeout_ms. */
    int64_t deadline = vg_mono_ms() + timeout_ms;

    int r = ctl_admin_session_open(cfg, timeout_ms, &session, err, errlen);
    if (r < 0)
        return r;
    r = ctl_admin_session_send(session, req, deadline, err, errlen);
    if (r == 0)
        r = ctl_admin_session_recv(session, req->request_id, deadline, ret_reply, err, errlen);
    ctl_admin_session_destroy(&session);
    return r;
}

int ctl_admin_status_check(const Vigil__AdminReply *reply, const char *what, const char *subject,
                           char *err, size_t errlen)
{
    const char *text = reply->error != NULL && reply->error[0] != '\0' ? reply->error : NULL;

    switch (reply->status) {
    case VIGIL__ADMIN_STATUS__ADMIN_OK:
        return 0;
    case VIGIL__ADMIN_STATUS__ADMIN_FORBIDDEN:
        if (text != NULL)
            snprintf(err, errlen, "permission denied: %s", text);
        else
            snprintf(err, errlen, "permission denied: this operator may not %s", what);
        return -EPERM;
    case VIGIL__ADMIN_STATUS__ADMIN_NOT_FOUND:
        if (subject != NULL)
            snprintf(err, errlen, "%s not found", subject);
        else
            snprintf(err, errlen, "cannot %s: %s", what, text != NULL ? text : "not found");
        return -ENOENT;
    case VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST:
        snprintf(err, errlen, "the coordinator rejected the request to %s: %s", what,
                 text != NULL ? text : "bad request");
        return -EINVAL;
    case VIGIL__ADMIN_STATUS__ADMIN_CONFLICT:
        snprintf(err, errlen, "cannot %s: %s", what,
                 text != NULL ? text : "it conflicts with the current state");
        return -EBUSY;
    case VIGIL__ADMIN_STATUS__ADMIN_UNAVAILABLE:
        snprintf(err, errlen, "cannot %s right now: the coordinator's store is unavailable%s%s",
                 what, text != NULL ? ": " : "", text != NULL ? text : "");
        return -EAGAIN;
    default:
        snprintf(err, errlen, "cannot %s: the coordinator answered with unknown status %d%s%s",
                 what, (int)reply->status, text != NULL ? ": " : "", text != NULL ? text : "");
        return -EPROTO;
    }
}

int ctl_admin_request(struct ctl_context *ctx, Vigil__AdminRequest *req, const char *what,
                      const char *subject, Vigil__AdminReply **ret_reply)
{
    const struct ctl_config *cfg;
    Vigil__AdminReply *reply = NULL;
    char err[1024] = "";
    int r;

    r = ctl_context_config(ctx, &cfg);
    if (r != CTL_EXIT_OK)
        return r;
    r = ctl_admin_call(cfg, req, ctx->timeout_ms, &reply, err, sizeof(err));
    if (r < 0 || reply == NULL) { /* NULL: a failing libzmq call that left errno at 0 */
        output_error("%s", err[0] != '\0' ? err : "no reply from the coordinator");
        return CTL_EXIT_FAILURE;
    }
    r = ctl_admin_status_check(reply, what, subject, err, sizeof(err));
    if (r < 0) {
        vigil__admin_reply__free_unpacked(reply, NULL);
        output_error("%s", err);
        return CTL_EXIT_FAILURE;
    }
    *ret_reply = reply;
    return CTL_EXIT_OK;
}

int ctl_admin_request_pages(struct ctl_context *ctx, Vigil__AdminRequest *req, char **cursor,
                            const char *what, Vigil__AdminReply ***ret_pages, size_t *ret_npages)
{
    Vigil__AdminReply **pages = NULL;
    size_t n = 0, cap = 0;
    char *next = NULL; /* the cursor for the next page: a copy, the reply it came from is kept */

    *cursor = "";
    for (;;) {
        Vigil__AdminReply *reply = NULL;
        int r = ctl_admin_request(ctx, req, what, NULL, &reply);
        if (r != CTL_EXIT_OK) {
            ctl_admin_pages_free(pages, n);
            free(next);
            return r;
        }
        if (n == cap) {
            size_t grown_cap = cap ? cap * 2 : 4;
            Vigil__AdminReply **grown = realloc(pages, grown_cap * sizeof(Vigil__AdminReply *));
            if (!grown) {
                vigil__admin_reply__free_unpacked(reply, NULL);
                ctl_admin_pages_free(pages, n);
                free(next);
                output_error("out of memory");
                return CTL_EXIT_FAILURE;
            }
            pages = grown;
            cap = grown_cap;
        }
        pages[n++] = reply;
        if (!reply->next_cursor || !reply->next_cursor[0])
            break;
        if (n == CTL_ADMIN_PAGES_MAX || (next && strcmp(next, reply->next_cursor) == 0)) {
            ctl_admin_pages_free(pages, n);
            free(next);
            output_error("%s: the coordinator's listing does not end (page %zu)", what, n);
            return CTL_EXIT_FAILURE;
        }
        free(next);
        next = strdup(reply->next_cursor);
        if (!next) {
            ctl_admin_pages_free(pages, n);
            output_error("out of memory");
            return CTL_EXIT_FAILURE;
        }
        *cursor = next;
    }
    free(next);
    *cursor = "";
    *ret_pages = pages;
    *ret_npages = n;
    return CTL_EXIT_OK;
}

void ctl_admin_pages_free(Vigil__AdminReply **pages, size_t npages)
{
    for (size_t i = 0; i < npages; i++)
        vigil__admin_reply__free_unpacked(pages[i], NULL);
    free(pages);
}
