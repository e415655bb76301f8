/*
 * Command capsules: what makes a remediation command runnable on a node, and the one place that
 * decides whether a capsule is genuine (docs/remediation.md, "Request, approvals and capsule").
 *
 * A CommandRequest names an action of the target agent's catalog with its arguments. Operators
 * approve it by signing its canonical hash (vg_command_request_hash) with their Ed25519 keys.
 * The coordinator then issues a CommandCapsule: the request, its hash, the approvals, a validity
 * window of at most VG_CAPSULE_MAX_LIFETIME_MS and a random 16-byte nonce, and signs the
 * capsule's canonical hash (vg_capsule_hash) with its own key (vg_capsule_sign).
 *
 * Both hashes are SHA-256 over an encoding of our own, not over protobuf bytes, so they do not
 * depend on how a protobuf library orders or packs fields: every field in a fixed order, every
 * string and byte string prefixed by its length, integers as 8 big-endian bytes, arguments
 * sorted by key and approvals by their encoding, and a domain prefix that keeps a request hash
 * from ever being taken for a capsule hash ("vigil-command-request-v1", "vigil-capsule-v1").
 *
 * On the node, vg_capsule_verify checks a capsule against a signer set: the Ed25519 public keys
 * the node accepts, each with a name and a role, which the caller loads from the node's local,
 * root-owned signer file. Nothing in a capsule can add a signer. The verdict counts the valid
 * operator approvals; whether they are enough for the action (auto, approve, destructive) is
 * vg_capsule_policy_ok's answer, with the mode the caller's action catalog gives. The nonce (run
 * once) is the replay cache's job (agent/replay.h), after verification.
 *
 * Pure functions over their arguments; a signer set is not locked: build it, then share it
 * read-only between threads.
 */
#ifndef VG_CAPSULE_H
#define VG_CAPSULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sign.h"
#include "wire.h"

#define VG_CAPSULE_HASH_LEN 32
#define VG_CAPSULE_MAX_LIFETIME_MS (15 * 60 * 1000) /* not_after_ms - issued_at_ms, at most */
#define VG_CAPSULE_CLOCK_SKEW_MS (60 * 1000)        /* issued_at_ms may be this far ahead of us */
#define VG_CAPSULE_DOMAIN_REQUEST "vigil-command-request-v1"
#define VG_CAPSULE_DOMAIN_CAPSULE "vigil-capsule-v1"
#define VG_SIGNERS_MAX 256
#define VG_SIGNER_NAME_MAX VG_MAX_NAME_LEN

/*
 * The canonical hash of a request (docs/remediation.md). 0, or -EINVAL for a request the
 * encoding cannot hold (NULL, a missing argument, more than VG_MAX_COMMAND_ARGS arguments).
 */
int vg_command_request_hash(const Vigil__CommandRequest *req,
                            unsigned char out[VG_CAPSULE_HASH_LEN]);

/*
 * The canonical hash of a capsule, over its request_sha256 field (not a recomputed one),
 * approvals, issued/not-after times, nonce and the request's dry-run flag. 0, or -EINVAL when
 * request or request_sha256 (32 bytes) is missing or there are more than
 * VG_MAX_COMMAND_APPROVALS approvals.
 */
int vg_capsule_hash(const Vigil__CommandCapsule *c, unsigned char out[VG_CAPSULE_HASH_LEN]);

/* An operator's approval signature: Ed25519 over the 32-byte request hash. */
void vg_approval_sign(const struct vg_signing_key *operator_key,
                      const unsigned char request_hash[VG_CAPSULE_HASH_LEN],
                      unsigned char sig[VG_SIGNATURE_LEN]);

/* Storage for the fields vg_capsule_sign fills; the capsule points into it, so it must live as
 * long as the capsule is used (packed, sent). */
struct vg_capsule_seal {
    unsigned char request_sha256[VG_CAPSULE_HASH_LEN];
    unsigned char nonce[VG_COMMAND_NONCE_BYTES];
    unsigned char signature[VG_SIGNATURE_LEN];
};

/*
 * The coordinator's side: sets a fresh random nonce, the request hash and the coordinator's
 * signature of the capsule hash, all pointing into *seal. The caller has set request,
 * approvals, issued_at_ms and not_after_ms. 0, -EINVAL (see vg_capsule_hash), or -EIO when
 * libsodium cannot be initialised.
 */
int vg_capsule_sign(Vigil__CommandCapsule *c, const struct vg_signing_key *coordinator_key,
                    struct vg_capsule_seal *seal);

/* ---- the signer set: the keys a node accepts ---- */

enum vg_signer_role {
    VG_SIGNER_COORDINATOR = 1, /* signs capsules; never counts as an approval */
    VG_SIGNER_VIEWER,          /* known, but may not approve */
    VG_SIGNER_RESPONDER,       /* approves `approve` actions */
    VG_SIGNER_ADMIN,           /* approves anything; destructive actions need one */
};

typedef struct vg_signer_set vg_signer_set_t;

vg_signer_set_t *vg_signer_set_new(void);
void vg_signer_set_destroy(vg_signer_set_t **self_p);

/*
 * Adds a key. The name is who the key belongs to (an operator name as the coordinator knows it,
 * or e.g. "coordinator"); one name may hold several keys (a rotation in progress) and counts as
 * one approver. 0; -EINVAL for an empty or over-long name or an unknown role; -EEXIST when the
 * key is already in the set; -ENOSPC past VG_SIGNERS_MAX keys.
 */
int vg_signer_set_add(vg_signer_set_t *self, const char *name, enum vg_signer_role role,
                      const unsigned char public_key[VG_SIGN_PUBLIC_LEN]);
size_t vg_signer_set_count(const vg_signer_set_t *self);

/* "coordinator", "viewer", "responder", "admin"; NULL for another value. */
const char *vg_signer_role_name(enum vg_signer_role role);
/* 0, or -EINVAL for another name. */
int vg_signer_role_parse(const char *name, enum vg_signer_role *ret);

/* ---- the node's side ---- */

struct vg_capsule_verdict {
    bool ok;
    char reason[384];            /* refused: one sentence, naming the operator where one is at
                                    fault; ok: "" */
    unsigned approvals;          /* valid approvals, each by a distinct responder or admin */
    unsigned admin_approvals;    /* of those, by admins */
    bool approver_not_requester; /* an approver is not the request's requested_by */
    char coordinator[VG_SIGNER_NAME_MAX + 1]; /* the name of the key that signed the capsule */
};

/*
 * Checks, in this order, and refuses at the first that fails (ret->reason says which):
 *   1. the capsule's shape (vg_command_capsule_check);
 *   2. request_sha256 is the request's canonical hash (an altered request);
 *   3. the capsule hash verifies with a key of role coordinator in signers;
 *   4. the request's target node is node;
 *   5. issued_at_ms < not_after_ms <= issued_at_ms + VG_CAPSULE_MAX_LIFETIME_MS,
 *      issued_at_ms <= now_ms + VG_CAPSULE_CLOCK_SKEW_MS, now_ms < not_after_ms, and
 *      issued_at_ms <= the request's approve_by_ms when that is set;
 *   6. every approval: its key is in signers (else "operator X's key is not in this node's
 *      signer file"), with role responder or admin, under the approval's operator name, its
 *      signature of the request hash verifies, and no name approves twice.
 * Returns 0 (ret->ok) or -EPERM (refused); -EINVAL for a NULL argument. *ret is filled either
 * way: the reason is what the executor reports.
 */
int vg_capsule_verify(const Vigil__CommandCapsule *c, const vg_signer_set_t *signers,
                      const char *node, int64_t now_ms, struct vg_capsule_verdict *ret);

enum vg_action_mode {
    VG_ACTION_MODE_AUTO = 1,    /* the coordinator's signature suffices */
    VG_ACTION_MODE_APPROVE,     /* and at least one approval by a responder or an admin */
    VG_ACTION_MODE_DESTRUCTIVE, /* and at least two approvers, one an admin, one not the
                                   requester */
};

/* True when a verified capsule (verdict->ok) carries what mode needs; otherwise false with a
 * static sentence in *why (why may be NULL). */
bool vg_capsule_policy_ok(const struct vg_capsule_verdict *verdict, enum vg_action_mode mode,
                          const char **why);

#endif
