#include "wire.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "keys.h"
#include "pbfilter.h"
#include "timeutil.h"

/* ListIncidents: a reply stays far below the message limit. */

#define STR_(x) #x
#define STR(x) STR_(x)
/* "this side speaks 2 and accepts 1 to 3": the refusal says what would be accepted. */
#define VERSION_SPOKEN "this side speaks " STR(VG_PROTOCOL_VERSION)
#define VERSION_WINDOW                                                                             \
    VERSION_SPOKEN " and accepts " STR(VG_PROTOCOL_VERSION_MIN) " to " STR(VG_PROTOCOL_VERSION_MAX)

bool vg_protocol_version_accepted(uint32_t version)
{
    return version >= VG_PROTOCOL_VERSION_MIN && version <= VG_PROTOCOL_VERSION_MAX;
}

/* Static text for a refused version, for the log line and the Refusal the peer gets. */
static const char *version_refused(uint32_t version)
{
    if (version == 0)
        return "no protocol version (" VERSION_WINDOW ")";
    if (version < VG_PROTOCOL_VERSION_MIN)
        return "protocol version too old, more than one behind (" VERSION_WINDOW ")";
    return "protocol version too new, more than one ahead (" VERSION_WINDOW ")";
}

bool vg_text_fits(const char *s, size_t max)
{
    return s != NULL && strnlen(s, max + 1) <= max;
}

static bool str_ok(const char *s, size_t max)
{
    return vg_text_fits(s, max);
}

static bool sender_ok(const char *sender)
{
    /* "coordinator" or an agent id: "ag-" followed by 16 lowercase hex digits. */
    if (strcmp(sender, "coordinator") == 0)
        return true;
    if (strlen(sender) != VG_AGENT_ID_LEN || strncmp(sender, "ag-", 3) != 0)
        return false;
    for (const char *p = sender + 3; *p; p++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    }
    return true;
}

static enum vg_decode_error check_signals(const Vigil__SignalBatch *batch, const char **reason)
{
    if (batch->n_signals == 0) {
        *reason = "signal batch is empty";
        return VG_DECODE_LIMITS;
    }
    if (batch->n_signals > VG_MAX_SIGNALS_PER_BATCH) {
        *reason = "signal batch has too many signals";
        return VG_DECODE_LIMITS;
    }
    for (size_t i = 0; i < batch->n_signals; i++) {
        const Vigil__Signal *s = batch->signals[i];
        if (s->name[0] == '\0' || !str_ok(s->name, VG_MAX_NAME_LEN)) {
            *reason = "signal name empty or too long";
            return VG_DECODE_LIMITS;
        }
        if (!str_ok(s->unit, VG_MAX_NAME_LEN)) {
            *reason = "signal unit too long";
            return VG_DECODE_LIMITS;
        }
        if (s->n_labels > VG_MAX_LABELS_PER_SIGNAL) {
            *reason = "signal has too many labels";
            return VG_DECODE_LIMITS;
        }
        for (size_t j = 0; j < s->n_labels; j++) {
            const Vigil__Label *l = s->labels[j];
            if (l->key[0] == '\0' || !str_ok(l->key, VG_MAX_NAME_LEN) ||
                !str_ok(l->value, VG_MAX_VALUE_LEN)) {
                *reason = "signal label key empty or label too long";
                return VG_DECODE_LIMITS;
            }
        }
        if (!str_ok(s->command_id, VG_MAX_COMMAND_ID_LEN)) {
            *reason = "signal command id too long";
            return VG_DECODE_LIMITS;
        }
    }
    return VG_DECODE_OK;
}

/* A kind is a short lowercase name: it becomes a metric label and a column, never a path. */
bool vg_evidence_kind_name_ok(const char *kind)
{
    size_t len = strnlen(kind, VG_MAX_EVIDENCE_KIND_LEN + 1);
    if (len == 0 || len > VG_MAX_EVIDENCE_KIND_LEN)
        return false;
    for (const char *p = kind; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    }
    return true;
}

bool vg_evidence_args_ok(Vigil__Label *const *args, size_t n)
{
    if (n > VG_MAX_EVIDENCE_ARGS)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (args[i]->key[0] == '\0' || !str_ok(args[i]->key, VG_MAX_NAME_LEN) ||
            !str_ok(args[i]->value, VG_MAX_VALUE_LEN))
            return false;
    }
    return true;
}

static enum vg_decode_error check_collect(const Vigil__CollectRequest *req, const char **reason)
{
    if (req->collection_id == 0) {
        *reason = "collect: no collection id";
        return VG_DECODE_LIMITS;
    }
    if (!vg_evidence_kind_name_ok(req->kind)) {
        *reason = "collect: kind must be a short name of a-z, 0-9 and _";
        return VG_DECODE_LIMITS;
    }
    if (!vg_evidence_args_ok(req->args, req->n_args)) {
        *reason = "collect: more than 16 arguments, or an argument empty or too long";
        return VG_DECODE_LIMITS;
    }
    return VG_DECODE_OK;
}

/*
 * An artifact is chunks at contiguous offsets; the last one carries the total size and the
 * SHA-256. A chunk with an error carries nothing else. Offsets and sizes stay below
 * VG_MAX_EVIDENCE_BYTES, so offset + size never overflows anywhere downstream.
 */
static enum vg_decode_error check_evidence(const Vigil__EvidenceChunk *c, const char **reason)
{
    if (c->collection_id == 0) {
        *reason = "evidence: no collection id";
        return VG_DECODE_LIMITS;
    }
    if (!vg_evidence_kind_name_ok(c->kind)) {
        *reason = "evidence: kind must be a short name of a-z, 0-9 and _";
        return VG_DECODE_LIMITS;
    }
    if (!vg_evidence_args_ok(c->args, c->n_args)) {
        *reason = "evidence: more than 16 arguments, or an argument empty or too long";
        return VG_DECODE_LIMITS;
    }
    if (!str_ok(c->error, VG_MAX_VALUE_LEN)) {
        *reason = "evidence: error text longer than 1024 bytes";
        return VG_DECODE_LIMITS;
    }
    if (c->error[0] != '\0') {
        if (c->data.len != 0 || c->sha256.len != 0 || c->offset != 0 || c->total_size != 0) {
            *reason = "evidence: a chunk with an error carries no data, offset, size or hash";
            return VG_DECODE_LIMITS;
        }
        return VG_DECODE_OK;
    }
    if (c->artifact == 0) {
        *reason = "evidence: no artifact id";
        return VG_DECODE_LIMITS;
    }
    if (c->data.len > VG_MAX_EVIDENCE_CHUNK_BYTES) {
        *reason = "evidence: chunk data larger than 1 MiB";
        return VG_DECODE_LIMITS;
    }
    if (c->offset > (uint64_t)VG_MAX_EVIDENCE_BYTES ||
        c->data.len > (uint64_t)VG_MAX_EVIDENCE_BYTES - c->offset) {
        *reason = "evidence: chunk ends beyond the artifact size limit";
        return VG_DECODE_LIMITS;
    }
    if (c->last) {
        if (c->sha256.len != VG_SHA256_BYTES) {
            *reason = "evidence: the last chunk's sha256 must be 32 bytes";
            return VG_DECODE_LIMITS;
        }
        if (c->total_size != c->offset + c->data.len) {
            *reason = "evidence: the last chunk does not end at the total size";
            return VG_DECODE_LIMITS;
        }
    } else {
        if (c->sha256.len != 0 || c->total_size != 0) {
            *reason = "evidence: only the last chunk carries sha256 and total size";
            return VG_DECODE_LIMITS;
        }
        if (c->data.len == 0) {
            *reason = "evidence: an empty chunk that is not the last";
            return VG_DECODE_LIMITS;
        }
    }
    return VG_DECODE_OK;
}

/* Every evidence kind and the arguments it takes: the one table the agent (evidence_kinds.c),
 * the coordinator and the runbook loader check against. */
static const struct {
    const char *kind;
    const char *args[8];
} evidence_kinds[] = {
    {"netstat", {NULL}},
    {"processes", {NULL}},
    {"log_tail", {"name", "lines", "bytes", NULL}},
    {"host", {NULL}},
    {"postgres", {"target", NULL}},
    {"redis", {"target", NULL}},
    {"kubernetes", {"target", NULL}},
    /* The kubectl investigation steps, one each (agent/probe/kubernetes.c). */
    {"k8s_pods", {"target", "namespace", "selector", "field", NULL}},
    {"k8s_describe", {"target", "namespace", "kind", "name", NULL}},
    {"k8s_logs",
     {"target", "namespace", "pod", "container", "selector", "lines", "previous", NULL}},
    {"k8s_ingress", {"target", "namespace", NULL}},
    {"k8s_config", {"target", "namespace", "name", "workload", NULL}},
    {"k8s_top", {"target", "namespace", NULL}},
    {"file", {"path", NULL}},
    {"command_output", {"request", NULL}},
    {"flight", {NULL}},
    /* Captured by the coordinator from Prometheus (coordinator/evidence/promql_evidence.c). */
    {"promql", {"query", NULL}},
};

const char *const *vg_evidence_kind_args(const char *kind)
{
    if (!kind)
        return NULL;
    for (size_t i = 0; i < sizeof(evidence_kinds) / sizeof(evidence_kinds[0]); i++) {
        if (strcmp(kind, evidence_kinds[i].kind) == 0)
            return evidence_kinds[i].args;
    }
    return NULL;
}

bool vg_evidence_kind_known(const char *kind)
{
    return vg_evidence_kind_args(kind) != NULL;
}

/* ---- remediation commands ---- */

static bool nonempty_fits(const char *s, size_t max)
{
    return str_ok(s, max) && s[0] != '\0';
}

const char *vg_command_step_name(Vigil__CommandStep step)
{
    switch (step) {
    case VIGIL__COMMAND_STEP__COMMAND_STEP_ACCEPTED:
        return "accepted";
    case VIGIL__COMMAND_STEP__COMMAND_STEP_STARTED:
        return "started";
    case VIGIL__COMMAND_STEP__COMMAND_STEP_DONE:
        return "done";
    case VIGIL__COMMAND_STEP__COMMAND_STEP_REFUSED:
        return "refused";
    default:
        return NULL;
    }
}

/* An action name is a catalog entry's name: it becomes a log field and a metric label. */
bool vg_command_action_name_ok(const char *action)
{
    if (!nonempty_fits(action, VG_MAX_NAME_LEN))
        return false;
    for (const char *p = action; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '.' || *p == '-'))
            return false;
    }
    return true;
}

enum vg_decode_error vg_command_request_check(const Vigil__CommandRequest *req, const char **reason)
{
    if (!req) {
        *reason = "command: no request";
        return VG_DECODE_LIMITS;
    }
    if (!nonempty_fits(req->request_id, VG_MAX_COMMAND_ID_LEN)) {
        *reason = "command: request id empty or longer than 64 bytes";
        return VG_DECODE_LIMITS;
    }
    if (!vg_command_action_name_ok(req->action)) {
        *reason = "command: action must be a name of A-Z, a-z, 0-9, _, . and - (at most 128 "
                  "bytes)";
        return VG_DECODE_LIMITS;
    }
    if (!nonempty_fits(req->node, VG_MAX_NAME_LEN) ||
        !nonempty_fits(req->requested_by, VG_MAX_NAME_LEN)) {
        *reason = "command: target node or requester empty or longer than 128 bytes";
        return VG_DECODE_LIMITS;
    }
    if (req->n_args > VG_MAX_COMMAND_ARGS) {
        *reason = "command: more than 32 arguments";
        return VG_DECODE_LIMITS;
    }
    for (size_t i = 0; i < req->n_args; i++) {
        if (!req->args[i] || !nonempty_fits(req->args[i]->key, VG_MAX_NAME_LEN) ||
            !str_ok(req->args[i]->value, VG_MAX_VALUE_LEN)) {
            *reason = "command: an argument key empty or too long, or a value over 1024 bytes";
            return VG_DECODE_LIMITS;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(req->args[i]->key, req->args[j]->key) == 0) {
                *reason = "command: an argument key appears twice";
                return VG_DECODE_LIMITS;
            }
        }
    }
    return VG_DECODE_OK;
}

enum vg_decode_error vg_command_capsule_check(const Vigil__CommandCapsule *c, const char **reason)
{
    enum vg_decode_error e = vg_command_request_check(c->request, reason);
    if (e != VG_DECODE_OK)
        return e;
    if (c->request_sha256.len != VG_SHA256_BYTES) {
        *reason = "command: request hash must be 32 bytes";
        return VG_DECODE_LIMITS;
    }
    if (c->nonce.len != VG_COMMAND_NONCE_BYTES) {
        *reason = "command: nonce must be 16 bytes";
        return VG_DECODE_LIMITS;
    }
    if (c->signature.len != VG_COMMAND_SIGNATURE_BYTES) {
        *reason = "command: signature must be 64 bytes";
        return VG_DECODE_LIMITS;
    }
    if (c->n_approvals > VG_MAX_COMMAND_APPROVALS) {
        *reason = "command: more than 8 approvals";
        return VG_DECODE_LIMITS;
    }
    for (size_t i = 0; i < c->n_approvals; i++) {
        const Vigil__Approval *a = c->approvals[i];
        if (!a || !nonempty_fits(a->operator_, VG_MAX_NAME_LEN)) {
            *reason = "command: an approval's operator empty or longer than 128 bytes";
            return VG_DECODE_LIMITS;
        }
        if (!a->signing_key ||
            strnlen(a->signing_key, VG_COMMAND_KEY_B64_LEN + 1) != VG_COMMAND_KEY_B64_LEN) {
            *reason = "command: an approval's signing key must be 44 characters of base64";
            return VG_DECODE_LIMITS;
        }
        if (a->signature.len != VG_COMMAND_SIGNATURE_BYTES) {
            *reason = "command: an approval's signature must be 64 bytes";
            return VG_DECODE_LIMITS;
        }
    }
    return VG_DECODE_OK;
}

static enum vg_decode_error check_command_report(const Vigil__CommandReport *r, const char **reason)
{
    if (!nonempty_fits(r->request_id, VG_MAX_COMMAND_ID_LEN)) {
        *reason = "command report: request id empty or longer than 64 bytes";
        return VG_DECODE_LIMITS;
    }
    if (r->nonce.len != VG_COMMAND_NONCE_BYTES) {
        *reason = "command report: nonce must be 16 bytes";
        return VG_DECODE_LIMITS;
    }
    if (!str_ok(r->reason, VG_MAX_VALUE_LEN)) {
        *reason = "command report: reason longer than 1024 bytes";
        return VG_DECODE_LIMITS;
    }
    switch (r->step) {
    case VIGIL__COMMAND_STEP__COMMAND_STEP_ACCEPTED:
    case VIGIL__COMMAND_STEP__COMMAND_STEP_STARTED:
        break;
    case VIGIL__COMMAND_STEP__COMMAND_STEP_DONE:
        if (r->output_sha256.len != VG_SHA256_BYTES) {
            *reason = "command report: a done step carries the output's 32-byte sha256";
            return VG_DECODE_LIMITS;
        }
        return VG_DECODE_OK;
    case VIGIL__COMMAND_STEP__COMMAND_STEP_REFUSED:
        if (r->reason[0] == '\0') {
            *reason = "command report: a refusal without a reason";
            return VG_DECODE_LIMITS;
        }
        break;
    default:
        *reason = "command report: unknown step";
        return VG_DECODE_LIMITS;
    }
    if (r->output_sha256.len != 0) {
        *reason = "command report: only a done step carries an output hash";
        return VG_DECODE_LIMITS;
    }
    return VG_DECODE_OK;
}

/* The catalog an Enroll declares (ActionInfo): at most as many actions as a node's catalog
 * holds (agent/actions.h), each named like a command's action, with short kind and mode words
 * and at most VG_MAX_COMMAND_ARGS parameter names. */
#define MAX_ENROLL_ACTIONS 256
#define MAX_ACTION_WORD_LEN 32 /* kind, mode */
#define MAX_ACTION_EVIDENCE 8  /* agent/actions.h ACTION_EVIDENCE_MAX */

static enum vg_decode_error check_enroll_actions(const Vigil__Enroll *e, const char **reason)
{
    if (e->n_actions > MAX_ENROLL_ACTIONS) {
        *reason = "enroll: more than 256 actions";
        return VG_DECODE_LIMITS;
    }
    for (size_t i = 0; i < e->n_actions; i++) {
        const Vigil__ActionInfo *a = e->actions[i];
        if (!vg_command_action_name_ok(a->name) ||
            (a->inverse[0] != '\0' && !vg_command_action_name_ok(a->inverse))) {
            *reason = "enroll: an action or inverse name empty, too long or not A-Z, a-z, 0-9, _, "
                      ". and -";
            return VG_DECODE_LIMITS;
        }
        if (!nonempty_fits(a->kind, MAX_ACTION_WORD_LEN) ||
            !nonempty_fits(a->mode, MAX_ACTION_WORD_LEN)) {
            *reason = "enroll: an action's kind or mode empty or longer than 32 bytes";
            return VG_DECODE_LIMITS;
        }
        if (a->n_params > VG_MAX_COMMAND_ARGS) {
            *reason = "enroll: an action with more than 32 parameters";
            return VG_DECODE_LIMITS;
        }
        for (size_t k = 0; k < a->n_params; k++) {
            if (!nonempty_fits(a->params[k], VG_MAX_NAME_LEN)) {
                *reason = "enroll: a parameter name empty or longer than 128 bytes";
                return VG_DECODE_LIMITS;
            }
        }
        if (a->n_evidence > MAX_ACTION_EVIDENCE) {
            *reason = "enroll: an action with more than 8 evidence entries";
            return VG_DECODE_LIMITS;
        }
        for (size_t k = 0; k < a->n_evidence; k++) {
            if (!vg_evidence_kind_name_ok(a->evidence[k]->kind) ||
                !vg_evidence_args_ok(a->evidence[k]->args, a->evidence[k]->n_args)) {
                *reason = "enroll: an action's evidence kind not a short name, or its arguments "
                          "too many or too long";
                return VG_DECODE_LIMITS;
            }
        }
    }
    return VG_DECODE_OK;
}

/* Bounds that depend on the body type. Durable bodies need seq >= 1, transient ones seq 0. */
static enum vg_decode_error check_body(const Vigil__Envelope *env, const char **reason)
{
    bool durable = false;

    switch (env->body_case) {
    case VIGIL__ENVELOPE__BODY_ENROLL:
        if (!str_ok(env->enroll->node, VG_MAX_NAME_LEN) || env->enroll->node[0] == '\0' ||
            !str_ok(env->enroll->agent_version, VG_MAX_NAME_LEN)) {
            *reason = "enroll: node empty or too long, or version too long";
            return VG_DECODE_LIMITS;
        }
        if (env->enroll->token.len != 0 && env->enroll->token.len != 32) {
            *reason = "enroll: token must be 32 bytes";
            return VG_DECODE_LIMITS;
        }
        if (check_enroll_actions(env->enroll, reason) != VG_DECODE_OK)
            return VG_DECODE_LIMITS;
        break;
    case VIGIL__ENVELOPE__BODY_ENROLL_REPLY:
        if (!str_ok(env->enroll_reply->agent_id, VG_MAX_NAME_LEN)) {
            *reason = "enroll reply: agent id too long";
            return VG_DECODE_LIMITS;
        }
        break;
    case VIGIL__ENVELOPE__BODY_HEARTBEAT:
        if (!str_ok(env->heartbeat->agent_version, VG_MAX_NAME_LEN)) {
            *reason = "heartbeat: version too long";
            return VG_DECODE_LIMITS;
        }
        break;
    case VIGIL__ENVELOPE__BODY_ACK:
        if (env->ack->n_ranges > VG_MAX_ACK_RANGES) {
            *reason = "ack: too many ranges";
            return VG_DECODE_LIMITS;
        }
        for (size_t i = 0; i < env->ack->n_ranges; i++) {
            if (env->ack->ranges[i]->first == 0 ||
                env->ack->ranges[i]->first > env->ack->ranges[i]->last) {
                *reason = "ack: invalid range";
                return VG_DECODE_LIMITS;
            }
        }
        break;
    case VIGIL__ENVELOPE__BODY_REFUSAL:
        if (!str_ok(env->refusal->reason, VG_MAX_VALUE_LEN)) {
            *reason = "refusal: reason too long";
            return VG_DECODE_LIMITS;
        }
        break;
    case VIGIL__ENVELOPE__BODY_SIGNALS: {
        enum vg_decode_error e = check_signals(env->signals, reason);
        if (e != VG_DECODE_OK)
            return e;
        durable = true;
        break;
    }
    case VIGIL__ENVELOPE__BODY_COLLECT: {
        enum vg_decode_error e = check_collect(env->collect, reason);
        if (e != VG_DECODE_OK)
            return e;
        break;
    }
    case VIGIL__ENVELOPE__BODY_EVIDENCE: {
        enum vg_decode_error e = check_evidence(env->evidence, reason);
        if (e != VG_DECODE_OK)
            return e;
        durable = true;
        break;
    }
    case VIGIL__ENVELOPE__BODY_COMMAND: {
        enum vg_decode_error e = vg_command_capsule_check(env->command, reason);
        if (e != VG_DECODE_OK)
            return e;
        break;
    }
    case VIGIL__ENVELOPE__BODY_COMMAND_REPORT: {
        enum vg_decode_error e = check_command_report(env->command_report, reason);
        if (e != VG_DECODE_OK)
            return e;
        durable = true;
        break;
    }
    default:
        *reason = "unknown message type";
        return VG_DECODE_UNKNOWN_TYPE;
    }

    if (durable && env->seq == 0) {
        *reason = "durable message without a sequence number";
        return VG_DECODE_LIMITS;
    }
    if (!durable && env->seq != 0) {
        *reason = "transient message with a sequence number";
        return VG_DECODE_LIMITS;
    }
    return VG_DECODE_OK;
}

/* Messages whose unknown fields were over the caps and were dropped before decoding. */
static atomic_uint_fast64_t unknown_capped;

uint64_t vg_wire_unknown_capped(void)
{
    return atomic_load(&unknown_capped);
}

/*
 * Unpacks an Envelope with its unknown fields bounded (pbfilter.h): a few are kept as
 * protobuf-c keeps them, more than the caps are dropped first (counted), so a newer peer still
 * gets through and a flood of them costs no more than the message itself. NULL when malformed.
 */
static Vigil__Envelope *unpack_capped(const void *data, size_t len)
{
    struct vg_pb_unknown unknown;
    if (vg_pb_count_unknown(&vigil__envelope__descriptor, data, len, &unknown) < 0)
        return NULL;
    if (unknown.fields <= VG_PB_UNKNOWN_FIELDS_MAX && unknown.bytes <= VG_PB_UNKNOWN_BYTES_MAX)
        return vigil__envelope__unpack(NULL, len, data);
    uint8_t *known;
    size_t known_len;
    if (vg_pb_strip_unknown(&vigil__envelope__descriptor, data, len, &known, &known_len) < 0)
        return NULL;
    atomic_fetch_add(&unknown_capped, 1);
    Vigil__Envelope *env = vigil__envelope__unpack(NULL, known_len, known);
    free(known);
    return env;
}

uint64_t vg_envelope_peek_seq(const void *data, size_t len)
{
    uint64_t seq = 0;
    const ProtobufCFieldDescriptor *field =
        protobuf_c_message_descriptor_get_field_by_name(&vigil__envelope__descriptor, "seq");
    if (!field || len > VG_MAX_MESSAGE_BYTES || vg_pb_peek_varint(data, len, field->id, &seq) < 0)
        seq = 0;
    return seq;
}

enum vg_decode_error vg_envelope_decode(const void *data, size_t len, Vigil__Envelope **ret,
                                        const char **reason)
{
    const char *why = NULL;
    enum vg_decode_error e;
    Vigil__Envelope *env;

    if (len > VG_MAX_MESSAGE_BYTES) {
        why = "message larger than the protocol limit";
        e = VG_DECODE_OVERSIZED;
        goto out;
    }
    env = unpack_capped(data, len);
    if (env == NULL) {
        why = "not a valid protobuf envelope";
        e = VG_DECODE_MALFORMED;
        goto out;
    }
    if (!vg_protocol_version_accepted(env->version)) {
        why = version_refused(env->version);
        e = VG_DECODE_VERSION;
        goto err_free;
    }
    if (!sender_ok(env->sender)) {
        why = "sender id malformed";
        e = VG_DECODE_LIMITS;
        goto err_free;
    }
    e = check_body(env, &why);
    if (e != VG_DECODE_OK)
        goto err_free;
    *ret = env;
    return VG_DECODE_OK;

err_free:
    vigil__envelope__free_unpacked(env, NULL);
out:
    if (reason)
        *reason = why;
    return e;
}

void vg_envelope_free(Vigil__Envelope *env)
{
    if (env)
        vigil__envelope__free_unpacked(env, NULL);
}

void vg_envelope_init(Vigil__Envelope *env, const char *sender, uint64_t seq)
{
    vigil__envelope__init(env);
    env->version = VG_PROTOCOL_VERSION;
    env->sender = (char *)sender;
    env->seq = seq;
    env->sent_at_ms = vg_wall_ms();
}

int vg_envelope_encode(const Vigil__Envelope *env, uint8_t **ret_buf, size_t *ret_len)
{
    size_t len = vigil__envelope__get_packed_size(env);
    if (len > VG_MAX_MESSAGE_BYTES)
        return -EMSGSIZE;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return -ENOMEM;
    vigil__envelope__pack(env, buf);
    *ret_buf = buf;
    *ret_len = len;
    return 0;
}

enum vg_decode_error vg_admin_request_decode(const void *data, size_t len,
                                             Vigil__AdminRequest **ret, const char **reason)
{
    const char *why = NULL;
    enum vg_decode_error e = VG_DECODE_OK;
    Vigil__AdminRequest *req = NULL;

    if (len > VG_MAX_MESSAGE_BYTES) {
        why = "request larger than the protocol limit";
        e = VG_DECODE_OVERSIZED;
        goto out;
    }
    req = vigil__admin_request__unpack(NULL, len, data);
    if (!req) {
        why = "not a valid protobuf request";
        e = VG_DECODE_MALFORMED;
        goto out;
    }
    if (!vg_protocol_version_accepted(req->version)) {
        why = version_refused(req->version);
        e = VG_DECODE_VERSION;
        goto out;
    }
    /* A body this build does not know unpacks as no body at all. What each request's fields
     * may hold is checked next to its handler, in the coordinator's admin command tables. */
    if (req->body_case == VIGIL__ADMIN_REQUEST__BODY__NOT_SET) {
        why = "unknown request type";
        e = VG_DECODE_UNKNOWN_TYPE;
    }
out:
    if (e != VG_DECODE_OK) {
        if (req)
            vigil__admin_request__free_unpacked(req, NULL);
        if (reason)
            *reason = why;
        return e;
    }
    *ret = req;
    return VG_DECODE_OK;
}

enum vg_decode_error vg_admin_reply_decode(const void *data, size_t len, Vigil__AdminReply **ret,
                                           const char **reason)
{
    if (len > VG_MAX_MESSAGE_BYTES) {
        if (reason)
            *reason = "reply larger than the protocol limit";
        return VG_DECODE_OVERSIZED;
    }
    Vigil__AdminReply *rep = vigil__admin_reply__unpack(NULL, len, data);
    if (!rep) {
        if (reason)
            *reason = "not a valid protobuf reply";
        return VG_DECODE_MALFORMED;
    }
    if (!vg_protocol_version_accepted(rep->version)) {
        if (reason)
            *reason = version_refused(rep->version);
        vigil__admin_reply__free_unpacked(rep, NULL);
        return VG_DECODE_VERSION;
    }
    *ret = rep;
    return VG_DECODE_OK;
}

const char *vg_decode_error_name(enum vg_decode_error err)
{
    switch (err) {
    case VG_DECODE_OK:
        return "ok";
    case VG_DECODE_OVERSIZED:
        return "oversized";
    case VG_DECODE_MALFORMED:
        return "malformed";
    case VG_DECODE_VERSION:
        return "version";
    case VG_DECODE_UNKNOWN_TYPE:
        return "unknown_type";
    case VG_DECODE_LIMITS:
        return "limits";
    }
    return "unknown";
}

static int setopt_int(void *socket, int option, int value)
{
    return zmq_setsockopt(socket, option, &value, sizeof(value)) == 0 ? 0 : -zmq_errno();
}

void *vg_zmq_pipe_open(void *zmq_ctx, const char *endpoint, bool bind, int hwm, const char *what,
                       char *err, size_t errlen)
{
    int zero = 0;
    void *s = zmq_socket(zmq_ctx, ZMQ_PAIR);
    if (!s || zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm)) != 0 ||
        zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm)) != 0 ||
        zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
        (bind ? zmq_bind(s, endpoint) : zmq_connect(s, endpoint)) != 0) {
        snprintf(err, errlen, "%s: %s", what, zmq_strerror(zmq_errno()));
        if (s)
            zmq_close(s);
        return NULL;
    }
    return s;
}

/* A peer that stopped answering is gone after about 3 * ivl_ms of quiet: keepalive probes start
 * after ivl_ms, one every ivl_ms, two unanswered end the connection. No TCP user timeout: it
 * also ends a connection whose peer is alive but not reading (a zero window for that long),
 * which is every agent's connection while the coordinator holds back for its database. */
static int tcp_liveness(void *socket, int ivl_ms)
{
    int ivl_s = ivl_ms >= 2000 ? ivl_ms / 1000 : 1;
    int r;

    if ((r = setopt_int(socket, ZMQ_TCP_KEEPALIVE, 1)) < 0 ||
        (r = setopt_int(socket, ZMQ_TCP_KEEPALIVE_IDLE, ivl_s)) < 0 ||
        (r = setopt_int(socket, ZMQ_TCP_KEEPALIVE_INTVL, ivl_s)) < 0)
        return r;
    return setopt_int(socket, ZMQ_TCP_KEEPALIVE_CNT, 2);
}

int vg_zmq_common_options(void *socket, int heartbeat_ivl_ms, enum vg_zmq_liveness liveness)
{
    /* The transport limit sits a quarter above the protocol limit: a message just over the
     * protocol limit still arrives and is refused with its reason and a metric; anything far
     * beyond is cut off by libzmq (connection dropped) before it is buffered. */
    int64_t maxmsg = VG_MAX_MESSAGE_BYTES + VG_MAX_MESSAGE_BYTES / 4;
    int r;

    if (zmq_setsockopt(socket, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) != 0)
        return -zmq_errno();
    if ((r = setopt_int(socket, ZMQ_LINGER, 0)) < 0)
        return r;
    if (liveness == VG_LIVENESS_TCP)
        return tcp_liveness(socket, heartbeat_ivl_ms);
    if ((r = setopt_int(socket, ZMQ_HEARTBEAT_IVL, heartbeat_ivl_ms)) < 0)
        return r;
    if ((r = setopt_int(socket, ZMQ_HEARTBEAT_TIMEOUT, 3 * heartbeat_ivl_ms)) < 0)
        return r;
    /* TTL is carried in the PING in units of 100 ms, capped by the protocol at 6553.5 s. */
    return setopt_int(socket, ZMQ_HEARTBEAT_TTL, 3 * heartbeat_ivl_ms);
}

int vg_zmq_curve_client(void *socket, const char *public_z85, const char *secret_z85,
                        const char *server_public_z85)
{
    if (zmq_setsockopt(socket, ZMQ_CURVE_SERVERKEY, server_public_z85, VG_KEY_Z85_LEN) != 0 ||
        zmq_setsockopt(socket, ZMQ_CURVE_PUBLICKEY, public_z85, VG_KEY_Z85_LEN) != 0 ||
        zmq_setsockopt(socket, ZMQ_CURVE_SECRETKEY, secret_z85, VG_KEY_Z85_LEN) != 0)
        return -zmq_errno();
    return 0;
}

/* The one table of agent state names: the store's column, logs, metrics, vigilctl. */
static const char *const agent_state_names[] = {
    [VIGIL__AGENT_STATE__AGENT_STATE_PENDING] = "pending",
    [VIGIL__AGENT_STATE__AGENT_STATE_ACTIVE] = "active",
    [VIGIL__AGENT_STATE__AGENT_STATE_LOST] = "lost",
    [VIGIL__AGENT_STATE__AGENT_STATE_REVOKED] = "revoked",
};

const char *vg_agent_state_name(Vigil__AgentState state)
{
    if ((unsigned)state >= sizeof(agent_state_names) / sizeof(agent_state_names[0]))
        return NULL;
    return agent_state_names[state];
}

Vigil__AgentState vg_agent_state_parse(const char *name)
{
    for (size_t i = 0; name && i < sizeof(agent_state_names) / sizeof(agent_state_names[0]); i++) {
        if (agent_state_names[i] && strcmp(name, agent_state_names[i]) == 0)
            return (Vigil__AgentState)i;
    }
    return VIGIL__AGENT_STATE__AGENT_STATE_UNSPECIFIED;
}
