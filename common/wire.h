/*
 * The wire: protocol constants, strict envelope decoding, and the socket options every Vigil
 * ZeroMQ socket gets.
 *
 * protobuf-c decodes structure; this module then enforces Vigil's bounds, so a decoded
 * message is safe to hand to any module: known body type, supported version, sender id of the
 * right shape, bounded string lengths and repeated-field counts.
 */
#ifndef VG_WIRE_H
#define VG_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigil.pb-c.h"

/*
 * Protocol versions. A sender stamps every envelope (and admin request/reply) with the version
 * it speaks, VG_PROTOCOL_VERSION. A receiver accepts its own version and one either side,
 * VG_PROTOCOL_VERSION_MIN..VG_PROTOCOL_VERSION_MAX, so during a rolling upgrade a peer one
 * version behind or one ahead keeps working whichever side is upgraded first; two apart is
 * refused as VG_DECODE_VERSION (the coordinator answers Refusal{REFUSAL_VERSION}).
 *
 * What this promises the next version: consecutive versions stay wire-compatible (fields and
 * body types are only added; a newer peer's unknown fields are ignored, capped, never refused;
 * a body type this build does not know is still refused as unknown_type). A change that
 * breaks the wire takes two version steps. docs/protocol.md, "Versions".
 *
 * Version 1 builds, released before this window existed, accept exactly 1.
 */
#define VG_PROTOCOL_VERSION 2
#define VG_PROTOCOL_VERSION_MIN 1 /* one version behind (plain numbers: refusals quote them) */
#define VG_PROTOCOL_VERSION_MAX 3 /* one version ahead */
_Static_assert(VG_PROTOCOL_VERSION_MIN == VG_PROTOCOL_VERSION - 1 &&
                   VG_PROTOCOL_VERSION_MAX == VG_PROTOCOL_VERSION + 1,
               "the accepted window is one version either side of VG_PROTOCOL_VERSION");
_Static_assert(VG_PROTOCOL_VERSION_MIN >= 1, "version 0 is an unset field: never accepted");

#define VG_MAX_MESSAGE_BYTES (4 * 1024 * 1024) /* larger messages are refused as oversized */
#define VG_MAX_SIGNALS_PER_BATCH 20000
#define VG_MAX_LABELS_PER_SIGNAL 16
#define VG_MAX_NAME_LEN 128              /* signal names, label keys, node names */
#define VG_MAX_VALUE_LEN 1024            /* label values, free text */
#define VG_MAX_REPORT_BYTES (256 * 1024) /* a post-incident report's text */
#define VG_MAX_ACK_RANGES 4096

/* Evidence on demand (CollectRequest, EvidenceChunk, the admin Collect/ListEvidence/GetEvidence).
 */
#define VG_MAX_EVIDENCE_CHUNK_BYTES (1024 * 1024) /* data of one EvidenceChunk */
/* Data of one GetEvidence reply: fewer round trips out of the vault, and with the artifact's
 * description still well under VG_MAX_MESSAGE_BYTES. */
#define VG_MAX_EVIDENCE_READ_BYTES (3 * 1024 * 1024)
#define VG_MAX_EVIDENCE_BYTES (INT64_C(1) << 30)  /* one artifact; agents cap theirs lower */
#define VG_MAX_EVIDENCE_ARGS 16                   /* key=value arguments of a collection */
#define VG_MAX_EVIDENCE_KIND_LEN 32               /* kinds are short names: [a-z0-9_]+ */
#define VG_SHA256_BYTES 32
/* The kinds an agent may be asked for, for messages; vg_evidence_kind_known decides. */
#define VG_EVIDENCE_KINDS_OF_STATE                                                                 \
    "netstat, processes, log_tail, host, postgres, redis, kubernetes, k8s_pods, k8s_describe, "    \
    "k8s_logs, k8s_ingress, k8s_config, k8s_top, file, flight, promql"
/* promql (query=EXPR) is captured by the coordinator itself, never by an agent: its target's
 * agent id is VG_COORDINATOR_AGENT_ID, a name no agent id ("ag-" + hex) can take. */
#define VG_COORDINATOR_AGENT_ID "coordinator"
/* command_output (request=ID) is a command's kept output: collected after a command ran, never
 * by a runbook's investigate list. */
#define VG_EVIDENCE_KINDS VG_EVIDENCE_KINDS_OF_STATE ", command_output"

/* Remediation commands (CommandCapsule, CommandReport; capsule.h, docs/remediation.md). */
#define VG_MAX_COMMAND_ARGS 32        /* arguments of one request, keys unique */
#define VG_MAX_COMMAND_APPROVALS 8    /* approvals carried by one capsule */
#define VG_MAX_COMMAND_ID_LEN 64      /* request ids */
#define VG_COMMAND_NONCE_BYTES 16     /* a capsule's nonce */
#define VG_COMMAND_SIGNATURE_BYTES 64 /* Ed25519 */
#define VG_COMMAND_KEY_B64_LEN 44     /* an Ed25519 public key in base64 */

#define VG_PORT_AGENTS 7400
#define VG_PORT_ADMIN 7401
#define VG_PORT_HTTP 7480

#define VG_ZAP_DOMAIN_AGENTS "vigil-agents"
#define VG_ZAP_DOMAIN_ADMIN "vigil-admin"

/* Why decoding refused a message. Names match the coordinator's refusal metric labels. */
enum vg_decode_error {
    VG_DECODE_OK = 0,
    VG_DECODE_OVERSIZED,    /* "oversized" */
    VG_DECODE_MALFORMED,    /* "malformed": protobuf could not parse it */
    VG_DECODE_VERSION,      /* "version" */
    VG_DECODE_UNKNOWN_TYPE, /* "unknown_type": no body or a body type this build does not know */
    VG_DECODE_LIMITS,       /* "limits": parsed, but a field breaks a bound */
};

/*
 * Decodes and validates an Envelope. On success *ret is owned by the caller (free with
 * vg_envelope_free). On failure returns the error and, if reason is non-NULL, a static
 * human-readable reason ("signal 3: name longer than 128 bytes"). Unknown fields are capped,
 * not refused (pbfilter.h): past the caps they are dropped before decoding, counted in
 * vg_wire_unknown_capped.
 */
enum vg_decode_error vg_envelope_decode(const void *data, size_t len, Vigil__Envelope **ret,
                                        const char **reason);
/* Field checks the decoders use, for the coordinator's admin command tables too: text present
 * and at most max bytes; an evidence kind's shape (a-z, 0-9, _, at most 32 bytes); evidence
 * arguments within their count and sizes. */
bool vg_text_fits(const char *s, size_t max);
bool vg_evidence_kind_name_ok(const char *kind);
bool vg_evidence_args_ok(Vigil__Label *const *args, size_t n);

/* Bounds of a command request and capsule, also for the coordinator and vigilctl, which build
 * and show them outside an envelope (the envelope decoder applies them to its command body): a
 * request has an id, an action name of A-Z, a-z, 0-9, '_', '.', '-' (at most 128 bytes), a target
 * node, a requester and at most VG_MAX_COMMAND_ARGS arguments with unique non-empty keys; a
 * capsule has a request, a 32-byte request hash, a 16-byte nonce, a 64-byte signature and at most
 * VG_MAX_COMMAND_APPROVALS approvals, each with an operator, a 44-character key and a 64-byte
 * signature. VG_DECODE_OK or VG_DECODE_LIMITS with a static reason. */
enum vg_decode_error vg_command_request_check(const Vigil__CommandRequest *req,
                                              const char **reason);
enum vg_decode_error vg_command_capsule_check(const Vigil__CommandCapsule *c, const char **reason);
bool vg_command_action_name_ok(const char *action);
/* "accepted", "started", "done" or "refused" (as logs and the store spell a report's step);
 * NULL for a step this build does not know. */
const char *vg_command_step_name(Vigil__CommandStep step);

/* Agent states by name ("pending", "active", "lost", "revoked"): NULL for another value, and
 * UNSPECIFIED for a name that is none of them. */
const char *vg_agent_state_name(Vigil__AgentState state);
Vigil__AgentState vg_agent_state_parse(const char *name);

/* Messages decoded without their unknown fields because they had more than the caps. */
uint64_t vg_wire_unknown_capped(void);

/* The seq a message that cannot be decoded claims (read from the raw bytes), 0 if none: its
 * refusal names it, so the agent can discard a record that will never be accepted. */
uint64_t vg_envelope_peek_seq(const void *data, size_t len);

void vg_envelope_free(Vigil__Envelope *env);

/* Packs env into a malloc'd buffer. Returns 0 or -ENOMEM / -EMSGSIZE (over the size limit). */
int vg_envelope_encode(const Vigil__Envelope *env, uint8_t **ret_buf, size_t *ret_len);

/* Fills the common header: version, sender, seq, sent_at_ms = now. */
void vg_envelope_init(Vigil__Envelope *env, const char *sender, uint64_t seq);

/* Same strict treatment for the admin channel. */
enum vg_decode_error vg_admin_request_decode(const void *data, size_t len,
                                             Vigil__AdminRequest **ret, const char **reason);
enum vg_decode_error vg_admin_reply_decode(const void *data, size_t len, Vigil__AdminReply **ret,
                                           const char **reason);

const char *vg_decode_error_name(enum vg_decode_error err);

/* True for a version this build accepts from a peer: VG_PROTOCOL_VERSION_MIN..._MAX. */
bool vg_protocol_version_accepted(uint32_t version);

/* True for a kind in VG_EVIDENCE_KINDS. The wire only checks a kind's shape (a short name), so
 * a newer peer's kind decodes; whether it may be collected is this list's decision. */
bool vg_evidence_kind_known(const char *kind);

/* The argument names a kind takes (NULL-terminated; empty for none), or NULL for an unknown
 * kind. */
const char *const *vg_evidence_kind_args(const char *kind);

/* How a socket notices a dead peer (vg_zmq_common_options). */
enum vg_zmq_liveness {
    /* ZMTP PING/PONG heartbeats: interval ivl_ms, timeout and TTL 3 * ivl_ms. The operators'
     * socket and vigilctl. */
    VG_LIVENESS_ZMTP,
    /* The agents' socket, on both ends: no ZMTP PING either way. TCP keepalive probes after
     * ivl_ms of quiet, two unanswered end the connection; the agent reconnects when its
     * heartbeats go unanswered for three intervals (agent/link.c) and the coordinator sends what a lost connection took with it again
     * (coordinator/ingest/routes.h). Why: libzmq 4.3.4 aborts the process
     * (stream_engine_base.cpp:331, `!_io_error`) when it writes a PING or a PONG on a
     * connection whose input the receive high-water mark stopped and whose peer then closed
     * it — which agents reconnecting in a crowd against the coordinator's small per-agent
     * RCVHWM make happen. */
    VG_LIVENESS_TCP,
};

/*
 * Socket options every Vigil socket gets: ZMQ_MAXMSGSIZE (1.25 x VG_MAX_MESSAGE_BYTES), linger,
 * and dead-peer detection as `liveness` says, at heartbeat_ivl_ms. Returns 0 or -errno.
 */
int vg_zmq_common_options(void *socket, int heartbeat_ivl_ms, enum vg_zmq_liveness liveness);

/*
 * One end of an inproc PAIR pipe between two threads of one process (the admin thread queues,
 * the router's loop sends): bound (bind) or connected to endpoint, hwm messages each way, no
 * linger. NULL with err naming `what` on failure.
 */
void *vg_zmq_pipe_open(void *zmq_ctx, const char *endpoint, bool bind, int hwm, const char *what,
                       char *err, size_t errlen);

/* CURVE client: our key pair + the server's public key (Z85). */
int vg_zmq_curve_client(void *socket, const char *public_z85, const char *secret_z85,
                        const char *server_public_z85);

#endif
