/*
 * Remediation commands, the coordinator's side of the capsule (docs/remediation.md,
 * "Commands"): deciding that a request's approvals satisfy its mode, issuing the capsule signed
 * with the coordinator's key, handing it to the router, and marking commands lost when their
 * capsule expired without a report.
 *
 * The admin thread owns a remediate_t: the coordinator's signing key (a copy, wiped at destroy)
 * and the sending end of an inproc PAIR pipe. The agents' socket belongs to the router, so the
 * admin side queues each capsule on the pipe, and the router's loop drains it
 * (remediate_dispatch) and sends from the thread that owns the socket, like CollectRequests
 * (evidence.h). Pipe message: [agent id][request id][packed Envelope{command}].
 *
 * Before a capsule leaves, remediate_try_issue verifies it as a node would (vg_capsule_verify
 * against the coordinator's key and the approvers' registered keys) and asks
 * vg_capsule_policy_ok whether the approvals are enough for the mode the node declared: the
 * coordinator never sends a capsule its own check refuses.
 */
#ifndef COORD_REMEDIATE_H
#define COORD_REMEDIATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "capsule.h"
#include "sign.h"
#include "store.h"

#define REMEDIATE_PIPE_ENDPOINT "inproc://vigil-command-capsules"
#define REMEDIATE_CAPSULE_TTL_DEFAULT_MS (5 * 60 * 1000)
#define REMEDIATE_APPROVAL_WINDOW_DEFAULT_MS (60 * 60 * 1000)
/* A capsule is marked lost this long after its not_after when no report came: a report sent just
 * before the expiry may still be on its way. */
#define REMEDIATE_LOST_GRACE_MS 5000

struct remediate_config {
    const struct vg_signing_key *key; /* copied */
    int64_t capsule_ttl_ms;           /* 0 = the default */
    int64_t approval_window_ms;       /* 0 = the default */
};

/* ---- the admin side ---- */

typedef struct remediate remediate_t;

remediate_t *remediate_new(void *zmq_ctx, const struct remediate_config *cfg, char *err,
                           size_t errlen);
void remediate_destroy(remediate_t **self_p);
int64_t remediate_approval_window_ms(const remediate_t *self);
/* The coordinator's signing public key, base64 (borrowed). */
const char *remediate_public_key(const remediate_t *self);

/*
 * c: a pending command with its approvals, read inside the caller's transaction (locked). When
 * the approvals satisfy c's mode, builds and signs the capsule, checks it as a node would,
 * stores it (capsule row, state issued, audit and timeline, in the caller's transaction) and
 * returns the packed Envelope{command} in *ret_envelope (malloc'd; queue it after the commit)
 * with *ret_not_after_ms. Otherwise 0 with *ret_envelope NULL and what is missing in needs.
 * Negative errno on failure (-EPROTO: the stored request does not match its hash, or the
 * capsule does not verify; logged).
 */
int remediate_try_issue(remediate_t *self, store_t *store, const struct store_command_info *c,
                        const char *actor, int64_t now_ms, uint8_t **ret_envelope, size_t *ret_len,
                        int64_t *ret_not_after_ms, char *needs, size_t needslen);

/* A capsule built and checked, not yet stored. */
struct remediate_sealed {
    uint8_t *envelope; /* the packed Envelope{command}, malloc'd; NULL: not issued (needs says) */
    size_t len;
    uint8_t nonce[16];
    uint8_t signature[64];
    int64_t issued_at_ms, not_after_ms;
};

/* remediate_try_issue's first half: the capsule for c when its approvals satisfy its mode,
 * signed and checked as a node would, in *ret (envelope NULL and needs set when they do not),
 * nothing stored. For a caller that stores many capsules in one statement
 * (store_commands_issue_auto_many). Negative errno as remediate_try_issue. */
int remediate_seal(remediate_t *self, const struct store_command_info *c, int64_t now_ms,
                   struct remediate_sealed *ret, char *needs, size_t needslen);

/* The CommandRequest c holds (pointing into c), whose canonical hash approvers sign. */
void remediate_request_from_info(const struct store_command_info *c, Vigil__CommandRequest *req);

/* Queues one packed Envelope{command} for agent_id. 0 or a negative errno. */
int remediate_queue(remediate_t *self, const char *agent_id, const char *request_id,
                    const void *envelope, size_t len);

/* What vg_capsule_policy_ok asks for mode, before any approval: for messages. */
const char *remediate_mode_needs(enum vg_action_mode mode);

/* ---- the router side ---- */

typedef struct remediate_dispatcher remediate_dispatcher_t;

remediate_dispatcher_t *remediate_dispatcher_new(void *zmq_ctx, char *err, size_t errlen);
void remediate_dispatcher_destroy(remediate_dispatcher_t **self_p);
/* The pipe's receiving end, for the main loop's poll. */
void *remediate_dispatcher_socket(remediate_dispatcher_t *self);

/* Sends buf to agent_id on the agents' socket: 0, or a negative errno with why set. */
typedef int (*remediate_send_fn)(void *userdata, const char *agent_id, const void *buf, size_t len,
                                 char *why, size_t whylen);
/* Sends every queued capsule; one that cannot be delivered is logged (its request becomes lost
 * when the capsule expires). Never blocks. */
void remediate_dispatch(remediate_dispatcher_t *self, remediate_send_fn send, void *userdata);

/* Marks lost and expired commands (store_commands_expire) and logs them. Main loop, once a
 * second. */
void remediate_expire(store_t *store);

#endif
