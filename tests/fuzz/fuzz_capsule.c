/*
 * Fuzz target: a command capsule as an agent receives it. The envelope decoder with its command
 * bounds (common/wire.c), the canonical hashes and the node's verification (common/capsule.c),
 * and the approval policy.
 *
 * Random bytes never carry valid Ed25519 signatures, so after verifying the capsule as it came,
 * the target plays the coordinator and the operators with fixed keys (the seed corpus is signed
 * with the same keys): it re-signs every approval that names one of their public keys, sets the
 * request hash and signs the capsule, and verifies again, for its own target node. That reaches
 * the checks behind the signatures (times, roles, names, duplicates) and the policy.
 *
 * Oracles beyond "no crash, no sanitizer report": both hashes are deterministic and survive a
 * protobuf round trip (they do not depend on serialization); a refused capsule counts no
 * approvals and satisfies no mode; a verified one's counts fit its approvals and decide the
 * policy exactly as documented; without a coordinator key nothing verifies.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "capsule.h"
#include "sign.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Seeds 1..6, as in tests/unit/test_capsule.c: coordinator, alice (admin), bob and carol
 * (responders), dave (viewer), eve (in no signer file). */
#define NKEYS 6
static const char *const names[NKEYS] = {"coordinator", "alice", "bob", "carol", "dave", "eve"};
static const enum vg_signer_role roles[NKEYS - 1] = {VG_SIGNER_COORDINATOR, VG_SIGNER_ADMIN,
                                                     VG_SIGNER_RESPONDER, VG_SIGNER_RESPONDER,
                                                     VG_SIGNER_VIEWER};
static struct vg_signing_key keys[NKEYS];
static vg_signer_set_t *signers;
static vg_signer_set_t *no_coordinator;

static void setup(void)
{
    if (signers)
        return;
    if (sodium_init() < 0)
        abort();
    signers = vg_signer_set_new();
    no_coordinator = vg_signer_set_new();
    if (!signers || !no_coordinator)
        abort();
    for (int i = 0; i < NKEYS; i++) {
        unsigned char seed[32];
        memset(seed, i + 1, sizeof(seed));
        crypto_sign_seed_keypair(keys[i].public_key, keys[i].secret_key, seed);
        vg_sign_public_format(keys[i].public_key, keys[i].public_b64);
        if (i < NKEYS - 1 &&
            vg_signer_set_add(signers, names[i], roles[i], keys[i].public_key) != 0)
            abort();
        if (i > 0 && i < NKEYS - 1 &&
            vg_signer_set_add(no_coordinator, names[i], roles[i], keys[i].public_key) != 0)
            abort();
    }
}

static void check_verdict(const Vigil__CommandCapsule *c, int r, const struct vg_capsule_verdict *v)
{
    const char *why = NULL;

    if (r != 0 && r != -EPERM)
        abort();
    if ((r == 0) != v->ok)
        abort();
    if (!v->ok) {
        if (v->approvals != 0 || v->reason[0] == '\0' ||
            vg_capsule_policy_ok(v, VG_ACTION_MODE_AUTO, &why))
            abort();
        return;
    }
    if (v->approvals > c->n_approvals || v->admin_approvals > v->approvals ||
        (v->approver_not_requester && v->approvals == 0))
        abort();
    bool approve = v->approvals >= 1;
    bool destructive = v->approvals >= 2 && v->admin_approvals >= 1 && v->approver_not_requester;
    if (!vg_capsule_policy_ok(v, VG_ACTION_MODE_AUTO, &why) ||
        vg_capsule_policy_ok(v, VG_ACTION_MODE_APPROVE, &why) != approve ||
        vg_capsule_policy_ok(v, VG_ACTION_MODE_DESTRUCTIVE, &why) != destructive)
        abort();
}

/* Both hashes twice, and again after a protobuf round trip: always the same. */
static void check_hashes(const Vigil__CommandCapsule *c)
{
    unsigned char a[VG_CAPSULE_HASH_LEN], b[VG_CAPSULE_HASH_LEN];
    unsigned char ca[VG_CAPSULE_HASH_LEN], cb[VG_CAPSULE_HASH_LEN];

    if (vg_command_request_hash(c->request, a) != 0 ||
        vg_command_request_hash(c->request, b) != 0 || memcmp(a, b, sizeof(a)) != 0)
        abort();
    if (vg_capsule_hash(c, ca) != 0)
        abort();
    size_t len = vigil__command_capsule__get_packed_size(c);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        abort();
    vigil__command_capsule__pack(c, buf);
    Vigil__CommandCapsule *copy = vigil__command_capsule__unpack(NULL, len, buf);
    free(buf);
    if (!copy || vg_command_request_hash(copy->request, b) != 0 || memcmp(a, b, sizeof(a)) != 0 ||
        vg_capsule_hash(copy, cb) != 0 || memcmp(ca, cb, sizeof(ca)) != 0)
        abort();
    vigil__command_capsule__free_unpacked(copy, NULL);
}

/* Signs the decoded capsule in place (its byte fields have their exact sizes: the decoder
 * checked them) as the coordinator and the operators whose keys it names would have. */
static void resign(Vigil__CommandCapsule *c)
{
    unsigned char capsule_hash[VG_CAPSULE_HASH_LEN];

    if (vg_command_request_hash(c->request, c->request_sha256.data) != 0)
        abort();
    for (size_t i = 0; i < c->n_approvals; i++) {
        Vigil__Approval *a = c->approvals[i];
        for (int k = 0; k < NKEYS; k++) {
            if (strcmp(a->signing_key, keys[k].public_b64) == 0)
                vg_approval_sign(&keys[k], c->request_sha256.data, a->signature.data);
        }
    }
    if (vg_capsule_hash(c, capsule_hash) != 0)
        abort();
    vg_sign_detached(&keys[0], capsule_hash, sizeof(capsule_hash), c->signature.data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Vigil__Envelope *env = NULL;
    struct vg_capsule_verdict v;
    const char *why = NULL;

    setup();
    if (vg_envelope_decode(data, size, &env, &why) != VG_DECODE_OK)
        return 0;
    if (env->body_case != VIGIL__ENVELOPE__BODY_COMMAND) {
        vg_envelope_free(env);
        return 0;
    }
    Vigil__CommandCapsule *c = env->command;
    /* What the decoder let through is a well-formed capsule. */
    if (vg_command_capsule_check(c, &why) != VG_DECODE_OK)
        abort();
    int64_t now = c->issued_at_ms < INT64_MAX - 1000 ? c->issued_at_ms + 1000 : c->issued_at_ms;

    check_hashes(c);
    check_verdict(c, vg_capsule_verify(c, signers, "worker-3", now, &v), &v);

    resign(c);
    check_hashes(c);
    check_verdict(c, vg_capsule_verify(c, signers, c->request->node, now, &v), &v);
    /* Genuine signatures, but no coordinator key on this node. */
    if (vg_capsule_verify(c, no_coordinator, c->request->node, now, &v) != -EPERM || v.ok)
        abort();
    vg_envelope_free(env);
    return 0;
}
