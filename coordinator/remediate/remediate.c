#include "remediate.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "log.h"
#include "registry.h"
#include "wire.h"

#define PIPE_HWM 100000
#define AGENT_ID_MAX 64
#define EXPIRED_REPORTED_MAX 256

struct remediate {
    void *pipe; /* PAIR, bound; the admin thread's */
    struct vg_signing_key key;
    int64_t capsule_ttl_ms, approval_window_ms;
};

struct remediate_dispatcher {
    void *pipe; /* PAIR, connected; the router's loop's */
};

static void *pipe_socket(void *zmq_ctx, bool bind, char *err, size_t errlen)
{
    return vg_zmq_pipe_open(zmq_ctx, REMEDIATE_PIPE_ENDPOINT, bind, PIPE_HWM,
                            "command capsule pipe", err, errlen);
}

remediate_t *remediate_new(void *zmq_ctx, const struct remediate_config *cfg, char *err,
                           size_t errlen)
{
    remediate_t *self = calloc(1, sizeof(*self));
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->key = *cfg->key;
    self->capsule_ttl_ms =
        cfg->capsule_ttl_ms > 0 ? cfg->capsule_ttl_ms : REMEDIATE_CAPSULE_TTL_DEFAULT_MS;
    if (self->capsule_ttl_ms > VG_CAPSULE_MAX_LIFETIME_MS)
        self->capsule_ttl_ms = VG_CAPSULE_MAX_LIFETIME_MS;
    self->approval_window_ms = cfg->approval_window_ms > 0 ? cfg->approval_window_ms
                                                           : REMEDIATE_APPROVAL_WINDOW_DEFAULT_MS;
    self->pipe = pipe_socket(zmq_ctx, true, err, errlen);
    if (!self->pipe)
        remediate_destroy(&self);
    return self;
}

void remediate_destroy(remediate_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    remediate_t *self = *self_p;
    if (self->pipe)
        zmq_close(self->pipe);
    vg_signing_key_wipe(&self->key);
    free(self);
    *self_p = NULL;
}

int64_t remediate_approval_window_ms(const remediate_t *self)
{
    return self->approval_window_ms;
}

const char *remediate_public_key(const remediate_t *self)
{
    return self->key.public_b64;
}

const char *remediate_mode_needs(enum vg_action_mode mode)
{
    switch (mode) {
    case VG_ACTION_MODE_AUTO:
        return "nothing: the coordinator's signature suffices";
    case VG_ACTION_MODE_APPROVE:
        return "one approval by a responder or an admin";
    case VG_ACTION_MODE_DESTRUCTIVE:
        return "approvals by two different operators, one an admin, one not the requester";
    }
    return "an unknown mode";
}

/* The request exactly as its hash was computed when it was made (pointers into c). */
void remediate_request_from_info(const struct store_command_info *c, Vigil__CommandRequest *req)
{
    vigil__command_request__init(req);
    req->request_id = (char *)c->id;
    req->action = (char *)c->action;
    req->args = c->args;
    req->n_args = c->nargs;
    req->node = (char *)c->node;
    req->incident_id = c->incident_id;
    req->requested_by = (char *)c->requested_by;
    req->created_at_ms = c->created_at_ms;
    req->approve_by_ms = c->approve_by_ms;
    req->dry_run = c->dry_run;
}

/* The signer set a node of this request would hold: our key and each approver's, by role. */
static vg_signer_set_t *signers_for(const remediate_t *self, const struct store_command_info *c)
{
    vg_signer_set_t *set = vg_signer_set_new();
    if (!set ||
        vg_signer_set_add(set, "coordinator", VG_SIGNER_COORDINATOR, self->key.public_key) < 0) {
        vg_signer_set_destroy(&set);
        return NULL;
    }
    for (size_t i = 0; i < c->napprovals; i++) {
        const struct store_command_approval *a = &c->approvals[i];
        unsigned char pk[VG_SIGN_PUBLIC_LEN];
        enum vg_signer_role role =
            strcmp(a->role, "admin") == 0 ? VG_SIGNER_ADMIN : VG_SIGNER_RESPONDER;
        if (vg_sign_public_parse(a->signing_key, pk) < 0)
            continue;                                       /* the capsule's check names it */
        vg_signer_set_add(set, a->operator_name, role, pk); /* a key twice: one entry */
    }
    return set;
}

int remediate_seal(remediate_t *self, const struct store_command_info *c, int64_t now_ms,
                   struct remediate_sealed *ret, char *needs, size_t needslen)
{
    Vigil__CommandRequest req;
    unsigned char hash[VG_CAPSULE_HASH_LEN];
    enum vg_action_mode mode;
    int r;

    memset(ret, 0, sizeof(*ret));
    if (agent_action_mode_parse(c->mode, &mode) < 0)
        return -EPROTO;
    remediate_request_from_info(c, &req);
    if (vg_command_request_hash(&req, hash) < 0 ||
        memcmp(hash, c->request_sha256, sizeof(hash)) != 0) {
        vg_log(VG_LOG_ERROR, "command=%s the stored request does not match its hash: not issued",
               c->id);
        return -EPROTO;
    }
    if (c->napprovals > VG_MAX_COMMAND_APPROVALS) {
        snprintf(needs, needslen, "more than %d approvals", VG_MAX_COMMAND_APPROVALS);
        return -EPROTO;
    }

    Vigil__Approval approvals[VG_MAX_COMMAND_APPROVALS];
    Vigil__Approval *approval_ptrs[VG_MAX_COMMAND_APPROVALS];
    for (size_t i = 0; i < c->napprovals; i++) {
        vigil__approval__init(&approvals[i]);
        approvals[i].operator_ = (char *)c->approvals[i].operator_name;
        approvals[i].signing_key = (char *)c->approvals[i].signing_key;
        approvals[i].signature.data = (uint8_t *)c->approvals[i].signature;
        approvals[i].signature.len = VG_SIGNATURE_LEN;
        approvals[i].at_ms = c->approvals[i].at_ms;
        approval_ptrs[i] = &approvals[i];
    }
    Vigil__CommandCapsule cap = VIGIL__COMMAND_CAPSULE__INIT;
    struct vg_capsule_seal seal;
    cap.request = &req;
    cap.approvals = approval_ptrs;
    cap.n_approvals = c->napprovals;
    cap.issued_at_ms = now_ms;
    cap.not_after_ms = now_ms + self->capsule_ttl_ms;
    r = vg_capsule_sign(&cap, &self->key, &seal);
    if (r < 0)
        return r;

    /* Checked as the node will check it, with the keys the coordinator knows. */
    vg_signer_set_t *signers = signers_for(self, c);
    if (!signers)
        return -ENOMEM;
    struct vg_capsule_verdict verdict;
    r = vg_capsule_verify(&cap, signers, c->node, now_ms, &verdict);
    vg_signer_set_destroy(&signers);
    if (r < 0) {
        vg_log(VG_LOG_ERROR, "command=%s capsule refused by the coordinator's own check: %s", c->id,
               verdict.reason);
        snprintf(needs, needslen, "%s", verdict.reason);
        return -EPROTO;
    }
    const char *why = NULL;
    if (!vg_capsule_policy_ok(&verdict, mode, &why)) {
        snprintf(needs, needslen, "%s", why);
        return 0;
    }

    Vigil__Envelope env;
    vg_envelope_init(&env, "coordinator", 0);
    env.body_case = VIGIL__ENVELOPE__BODY_COMMAND;
    env.command = &cap;
    r = vg_envelope_encode(&env, &ret->envelope, &ret->len);
    if (r < 0)
        return r;
    memcpy(ret->nonce, seal.nonce, sizeof(ret->nonce));
    memcpy(ret->signature, seal.signature, sizeof(ret->signature));
    ret->issued_at_ms = cap.issued_at_ms;
    ret->not_after_ms = cap.not_after_ms;
    return 0;
}

int remediate_try_issue(remediate_t *self, store_t *store, const struct store_command_info *c,
                        const char *actor, int64_t now_ms, uint8_t **ret_envelope, size_t *ret_len,
                        int64_t *ret_not_after_ms, char *needs, size_t needslen)
{
    struct remediate_sealed sealed;
    *ret_envelope = NULL;
    int r = remediate_seal(self, c, now_ms, &sealed, needs, needslen);
    if (r < 0 || !sealed.envelope)
        return r;
    r = store_command_capsule_add(store, c->id, sealed.nonce, sealed.issued_at_ms,
                                  sealed.not_after_ms, self->key.public_b64, sealed.signature,
                                  actor);
    if (r < 0) {
        free(sealed.envelope);
        return r;
    }
    *ret_envelope = sealed.envelope;
    *ret_len = sealed.len;
    *ret_not_after_ms = sealed.not_after_ms;
    return 0;
}

int remediate_queue(remediate_t *self, const char *agent_id, const char *request_id,
                    const void *envelope, size_t len)
{
    if (zmq_send(self->pipe, agent_id, strlen(agent_id), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(self->pipe, request_id, strlen(request_id), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(self->pipe, envelope, len, ZMQ_DONTWAIT) < 0)
        return -zmq_errno();
    return 0;
}

/* ---- the router side ---- */

remediate_dispatcher_t *remediate_dispatcher_new(void *zmq_ctx, char *err, size_t errlen)
{
    remediate_dispatcher_t *self = calloc(1, sizeof(*self));
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->pipe = pipe_socket(zmq_ctx, false, err, errlen);
    if (!self->pipe)
        remediate_dispatcher_destroy(&self);
    return self;
}

void remediate_dispatcher_destroy(remediate_dispatcher_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    if ((*self_p)->pipe)
        zmq_close((*self_p)->pipe);
    free(*self_p);
    *self_p = NULL;
}

void *remediate_dispatcher_socket(remediate_dispatcher_t *self)
{
    return self->pipe;
}

/* Receives one frame as text into buf (cut to size - 1); false when none. */
static bool recv_text(void *pipe, char *buf, size_t size, bool *ret_more)
{
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, pipe, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&msg);
        return false;
    }
    size_t n = zmq_msg_size(&msg) < size - 1 ? zmq_msg_size(&msg) : size - 1;
    memcpy(buf, zmq_msg_data(&msg), n);
    buf[n] = '\0';
    *ret_more = zmq_msg_more(&msg);
    zmq_msg_close(&msg);
    return true;
}

void remediate_dispatch(remediate_dispatcher_t *self, remediate_send_fn send, void *userdata)
{
    for (;;) {
        char agent_id[AGENT_ID_MAX], request_id[VG_MAX_COMMAND_ID_LEN + 1];
        bool more = false;
        if (!recv_text(self->pipe, agent_id, sizeof(agent_id), &more))
            return;
        if (!more || !recv_text(self->pipe, request_id, sizeof(request_id), &more) || !more) {
            vg_log(VG_LOG_ERROR, "commands: malformed capsule on the internal pipe");
            char skip[8];
            while (more && recv_text(self->pipe, skip, sizeof(skip), &more))
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
        zmq_msg_close(&envelope);
        if (r == 0)
            vg_log(VG_LOG_DEBUG, "command=%s agent=%s capsule sent", request_id, agent_id);
        else
            vg_log(VG_LOG_WARN,
                   "command=%s agent=%s capsule %s; the command is lost unless another agent "
                   "of the node reports",
                   request_id, agent_id, why);
    }
}

void remediate_expire(store_t *store)
{
    struct store_command_expired gone[EXPIRED_REPORTED_MAX];
    size_t n = 0;
    if (store_commands_expire(store, REMEDIATE_LOST_GRACE_MS, gone, EXPIRED_REPORTED_MAX, &n) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(gone[i].state, "lost") == 0)
            vg_log(VG_LOG_WARN,
                   "command=%s action=%s node=%s lost: no report before its capsule expired",
                   gone[i].id, gone[i].action, gone[i].node);
        else
            vg_log(VG_LOG_INFO,
                   "command=%s action=%s node=%s expired: not approved before its deadline",
                   gone[i].id, gone[i].action, gone[i].node);
    }
}
