#include "zap.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "log.h"
#include "metrics.h"
#include "wire.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_FRAMES 7 /* version, request id, domain, address, identity, mechanism, key */
#define ZAP_FRAME_MAX 256

struct zap {
    void *socket;
    registry_t *registry;
};

zap_t *zap_new(void *ctx, registry_t *registry, char *err, size_t errlen)
{
    zap_t *self = calloc(1, sizeof(*self));
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->registry = registry;
    self->socket = zmq_socket(ctx, ZMQ_REP);
    if (!self->socket || zmq_bind(self->socket, ZAP_ENDPOINT) != 0) {
        snprintf(err, errlen, "cannot bind the ZAP handler: %s", zmq_strerror(zmq_errno()));
        zap_destroy(&self);
        return NULL;
    }
    int linger = 0;
    zmq_setsockopt(self->socket, ZMQ_LINGER, &linger, sizeof(linger));
    return self;
}

void zap_destroy(zap_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zap_t *self = *self_p;
    if (self->socket)
        zmq_close(self->socket);
    free(self);
    *self_p = NULL;
}

void *zap_socket(zap_t *self)
{
    return self->socket;
}

struct zap_request {
    char frames[ZAP_FRAMES][ZAP_FRAME_MAX + 1];
    size_t sizes[ZAP_FRAMES];
    int count;
    bool truncated;
};

/* Reads one whole multipart request; false when nothing is waiting. */
static bool read_request(void *socket, struct zap_request *req)
{
    int more = 1;
    size_t more_len = sizeof(more);

    memset(req, 0, sizeof(*req));
    while (more) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, socket, req->count == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(&msg);
            return req->count > 0;
        }
        size_t size = zmq_msg_size(&msg);
        if (req->count < ZAP_FRAMES) {
            size_t keep = size > ZAP_FRAME_MAX ? ZAP_FRAME_MAX : size;
            memcpy(req->frames[req->count], zmq_msg_data(&msg), keep);
            req->sizes[req->count] = size;
            req->truncated |= size > ZAP_FRAME_MAX;
        }
        req->count++;
        zmq_msg_close(&msg);
        zmq_getsockopt(socket, ZMQ_RCVMORE, &more, &more_len);
    }
    return true;
}

/* ZMTP metadata property carrying the agent's Z85 public key to every message it sends, so
 * the router sees the exact key behind a User-Id (zmq_msg_gets(msg, ZAP_PROPERTY_KEY)). */
static size_t encode_key_property(uint8_t *out, const char *key)
{
    size_t name_len = strlen(ZAP_PROPERTY_KEY);
    size_t key_len = strlen(key);
    size_t n = 0;

    out[n++] = (uint8_t)name_len;
    memcpy(out + n, ZAP_PROPERTY_KEY, name_len);
    n += name_len;
    out[n++] = 0;
    out[n++] = 0;
    out[n++] = 0;
    out[n++] = (uint8_t)key_len;
    memcpy(out + n, key, key_len);
    return n + key_len;
}

static void reply(void *socket, const struct zap_request *req, const char *status,
                  const char *text, const char *user_id, const char *key)
{
    uint8_t metadata[128];
    size_t metadata_len = key ? encode_key_property(metadata, key) : 0;

    zmq_send(socket, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(socket, req->frames[1], req->sizes[1] <= ZAP_FRAME_MAX ? req->sizes[1] : 0,
             ZMQ_SNDMORE);
    zmq_send(socket, status, strlen(status), ZMQ_SNDMORE);
    zmq_send(socket, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(socket, user_id, strlen(user_id), ZMQ_SNDMORE);
    zmq_send(socket, metadata, metadata_len, 0);
}

static void answer(zap_t *self, const struct zap_request *req)
{
    const char *domain = req->frames[2];
    const char *address = req->frames[3];
    char key[VG_KEY_Z85_LEN + 1];

    if (req->count != ZAP_FRAMES || req->truncated || strcmp(req->frames[0], "1.0") != 0) {
        vg_log(VG_LOG_WARN, "zap: malformed request (%d frames)", req->count);
        metrics_refused(REFUSE_MALFORMED);
        reply(self->socket, req, "500", "malformed ZAP request", "", NULL);
        return;
    }
    if (strcmp(req->frames[5], "CURVE") != 0 || req->sizes[6] != 32) {
        vg_log(VG_LOG_WARN, "zap: refused mechanism=%s address=%s", req->frames[5], address);
        metrics_refused(REFUSE_UNKNOWN_KEY);
        reply(self->socket, req, "400", "CURVE required", "", NULL);
        return;
    }
    if (!zmq_z85_encode(key, (const uint8_t *)req->frames[6], 32)) {
        reply(self->socket, req, "500", "key encoding failed", "", NULL);
        return;
    }

    if (strcmp(domain, VG_ZAP_DOMAIN_AGENTS) == 0) {
        char id[VG_AGENT_ID_LEN + 1];
        vg_agent_id_from_key(key, id);
        const struct agent *agent = registry_agent(self->registry, id);
        if (agent && agent->state == VIGIL__AGENT_STATE__AGENT_STATE_REVOKED) {
            vg_log(VG_LOG_WARN, "zap: refused agent=%s address=%s reason=revoked", id, address);
            metrics_refused(REFUSE_REVOKED);
            reply(self->socket, req, "400", "key revoked", "", NULL);
            return;
        }
        /* The id is 64 bits of the key's hash: another key with the same id is not that agent.
         * Full keys compare, so a collision (found or forged) is refused, not let in as it. */
        if (agent && strcmp(agent->public_key, key) != 0) {
            vg_log(VG_LOG_WARN, "zap: refused agent=%s address=%s reason=key_mismatch", id,
                   address);
            metrics_refused(REFUSE_KEY_MISMATCH);
            reply(self->socket, req, "400", "key does not match the agent's key", "", NULL);
            return;
        }
        /* Unknown and pending keys get in, but may only enroll (router.c). */
        vg_log(VG_LOG_DEBUG, "zap: admitted agent=%s address=%s known=%d", id, address,
               agent != NULL);
        reply(self->socket, req, "200", "OK", id, key);
        return;
    }
    if (strcmp(domain, VG_ZAP_DOMAIN_ADMIN) == 0) {
        const struct operator *op = registry_operator_by_key(self->registry, key);
        if (!op) {
            vg_log(VG_LOG_WARN, "zap: refused operator key=%s address=%s reason=unknown_key", key,
                   address);
            metrics_refused(REFUSE_UNKNOWN_KEY);
            reply(self->socket, req, "400", "unknown operator key", "", NULL);
            return;
        }
        reply(self->socket, req, "200", "OK", op->id, key);
        return;
    }
    vg_log(VG_LOG_WARN, "zap: refused unknown domain=%s address=%s", domain, address);
    metrics_refused(REFUSE_UNKNOWN_KEY);
    reply(self->socket, req, "400", "unknown domain", "", NULL);
}

void zap_handle(zap_t *self)
{
    struct zap_request req;
    while (read_request(self->socket, &req))
        answer(self, &req);
}
