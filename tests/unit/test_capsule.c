/*
 * Unit tests for command capsules (common/capsule.c): the canonical hashes against an encoder
 * written from docs/remediation.md, the node's verification with one test per refusal, the
 * approval policy, the signer set, and the wire bounds of the two command bodies (common/wire.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "capsule.h"
#include "digest.h"
#include "sign.h"
#include "wire.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW INT64_C(1700000000000)
#define MINUTE INT64_C(60000)

enum who { COORD, ALICE, BOB, CAROL, DAVE, EVE, NKEYS };
/* alice: admin, bob and carol: responders, dave: viewer, eve: in no signer file. */
static const char *const names[NKEYS] = {"coordinator", "alice", "bob", "carol", "dave", "eve"};
static struct vg_signing_key keys[NKEYS];
static vg_signer_set_t *signers;

struct fixture {
    Vigil__CommandRequest req;
    Vigil__CommandArg arg_store[VG_MAX_COMMAND_ARGS + 1];
    Vigil__CommandArg *args[VG_MAX_COMMAND_ARGS + 1];
    char arg_keys[VG_MAX_COMMAND_ARGS + 1][16];
    Vigil__CommandCapsule cap;
    Vigil__Approval approval_store[VG_MAX_COMMAND_APPROVALS + 1];
    Vigil__Approval *approvals[VG_MAX_COMMAND_APPROVALS + 1];
    unsigned char approval_sigs[VG_MAX_COMMAND_APPROVALS + 1][VG_SIGNATURE_LEN];
    struct vg_capsule_seal seal;
    struct vg_capsule_verdict verdict;
};

static void add_arg(struct fixture *f, const char *key, const char *value)
{
    size_t i = f->req.n_args++;
    vigil__command_arg__init(&f->arg_store[i]);
    f->arg_store[i].key = (char *)key;
    f->arg_store[i].value = (char *)value;
    f->args[i] = &f->arg_store[i];
}

static void fixture_init(struct fixture *f)
{
    memset(f, 0, sizeof(*f));
    vigil__command_request__init(&f->req);
    f->req.request_id = "req-1";
    f->req.action = "restart-nginx";
    f->req.args = f->args;
    add_arg(f, "unit", "nginx.service");
    add_arg(f, "signal", "TERM");
    f->req.node = "worker-3";
    f->req.incident_id = 42;
    f->req.requested_by = "bob";
    f->req.created_at_ms = NOW - MINUTE;
    f->req.approve_by_ms = NOW + 60 * MINUTE;
    f->req.dry_run = false;

    vigil__command_capsule__init(&f->cap);
    f->cap.request = &f->req;
    f->cap.approvals = f->approvals;
    f->cap.issued_at_ms = NOW;
    f->cap.not_after_ms = NOW + 5 * MINUTE;
}

/* who approves the request as it is now, under the operator name name. */
static void approve_as(struct fixture *f, enum who who, const char *name)
{
    unsigned char hash[VG_CAPSULE_HASH_LEN];
    size_t i = f->cap.n_approvals++;

    assert_int_equal(vg_command_request_hash(&f->req, hash), 0);
    vigil__approval__init(&f->approval_store[i]);
    f->approval_store[i].operator_ = (char *)name;
    f->approval_store[i].signing_key = keys[who].public_b64;
    vg_approval_sign(&keys[who], hash, f->approval_sigs[i]);
    f->approval_store[i].signature.data = f->approval_sigs[i];
    f->approval_store[i].signature.len = VG_SIGNATURE_LEN;
    f->approval_store[i].at_ms = NOW - 1000 + (int64_t)i;
    f->approvals[i] = &f->approval_store[i];
}

static void approve(struct fixture *f, enum who who)
{
    approve_as(f, who, names[who]);
}

static void seal_with(struct fixture *f, enum who who)
{
    assert_int_equal(vg_capsule_sign(&f->cap, &keys[who], &f->seal), 0);
}

static void seal(struct fixture *f)
{
    seal_with(f, COORD);
}

static int verify_at(struct fixture *f, const char *node, int64_t now)
{
    return vg_capsule_verify(&f->cap, signers, node, now, &f->verdict);
}

static int verify(struct fixture *f)
{
    return verify_at(f, "worker-3", NOW + 1000);
}

static void assert_refused(struct fixture *f, int r, const char *needle)
{
    assert_int_equal(r, -EPERM);
    assert_false(f->verdict.ok);
    assert_int_equal(f->verdict.approvals, 0);
    if (!strstr(f->verdict.reason, needle))
        fail_msg("reason \"%s\" does not contain \"%s\"", f->verdict.reason, needle);
}

static int group_setup(void **state)
{
    (void)state;
    if (sodium_init() < 0)
        return -1;
    signers = vg_signer_set_new();
    if (!signers)
        return -1;
    for (int i = 0; i < NKEYS; i++) {
        unsigned char seed[32];
        memset(seed, i + 1, sizeof(seed));
        crypto_sign_seed_keypair(keys[i].public_key, keys[i].secret_key, seed);
        vg_sign_public_format(keys[i].public_key, keys[i].public_b64);
    }
    static const enum vg_signer_role roles[] = {VG_SIGNER_COORDINATOR, VG_SIGNER_ADMIN,
                                                VG_SIGNER_RESPONDER, VG_SIGNER_RESPONDER,
                                                VG_SIGNER_VIEWER};
    for (int i = COORD; i <= DAVE; i++) {
        if (vg_signer_set_add(signers, names[i], roles[i], keys[i].public_key) != 0)
            return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    vg_signer_set_destroy(&signers);
    return 0;
}

/* ---- the canonical encoding, written again from docs/remediation.md ---- */

struct enc {
    unsigned char buf[8192];
    size_t n;
};

static void e_u64(struct enc *e, uint64_t v)
{
    for (int i = 7; i >= 0; i--)
        e->buf[e->n++] = (unsigned char)(v >> (8 * i));
}

static void e_bytes(struct enc *e, const void *data, size_t len)
{
    e_u64(e, len);
    memcpy(e->buf + e->n, data, len);
    e->n += len;
}

static void e_str(struct enc *e, const char *s)
{
    e_bytes(e, s, strlen(s));
}

static void e_bool(struct enc *e, bool b)
{
    e->buf[e->n++] = b ? 1 : 0;
}

static void test_request_hash_matches_document(void **state)
{
    (void)state;
    struct fixture f;
    struct enc e = {.n = 0};
    unsigned char want[32], got[32];

    fixture_init(&f);
    e_str(&e, "vigil-command-request-v1");
    e_str(&e, "req-1");
    e_str(&e, "restart-nginx");
    e_u64(&e, 2);
    e_str(&e, "signal"); /* sorted by key: "signal" < "unit" */
    e_str(&e, "TERM");
    e_str(&e, "unit");
    e_str(&e, "nginx.service");
    e_str(&e, "worker-3");
    e_u64(&e, 42);
    e_str(&e, "bob");
    e_u64(&e, (uint64_t)(NOW - MINUTE));
    e_u64(&e, (uint64_t)(NOW + 60 * MINUTE));
    e_bool(&e, false);
    vg_sha256(e.buf, e.n, want);
    assert_int_equal(vg_command_request_hash(&f.req, got), 0);
    assert_memory_equal(got, want, 32);
}

/* The worked example of docs/remediation.md, byte for byte. */
static void test_request_hash_document_example(void **state)
{
    (void)state;
    Vigil__CommandRequest req = VIGIL__COMMAND_REQUEST__INIT;
    Vigil__CommandArg arg = VIGIL__COMMAND_ARG__INIT;
    Vigil__CommandArg *args[1] = {&arg};
    unsigned char got[32];
    char hex[65];

    arg.key = "unit";
    arg.value = "nginx.service";
    req.request_id = "r1";
    req.action = "restart-nginx";
    req.args = args;
    req.n_args = 1;
    req.node = "worker-3";
    req.incident_id = 42;
    req.requested_by = "bob";
    req.created_at_ms = NOW;
    req.approve_by_ms = NOW + 60 * MINUTE;
    assert_int_equal(vg_command_request_hash(&req, got), 0);
    vg_hex(got, sizeof(got), hex);
    assert_string_equal(hex, "cdcf8856edf76efe3374300b925d8fdb198a260f5a2cce00127e056e4949f29e");
}

static void test_capsule_hash_matches_document(void **state)
{
    (void)state;
    struct fixture f;
    struct enc e = {.n = 0};
    unsigned char want[32], got[32];

    fixture_init(&f);
    f.req.dry_run = true;
    approve(&f, ALICE);
    approve(&f, BOB);
    seal(&f);
    e_str(&e, "vigil-capsule-v1");
    e_bytes(&e, f.seal.request_sha256, 32);
    e_u64(&e, 2);
    /* Approvals in the order of their encodings: "bob" (length 3) before "alice" (length 5). */
    const Vigil__Approval *order[2] = {f.approvals[1], f.approvals[0]};
    for (int i = 0; i < 2; i++) {
        e_str(&e, order[i]->operator_);
        e_str(&e, order[i]->signing_key);
        e_bytes(&e, order[i]->signature.data, 64);
        e_u64(&e, (uint64_t)order[i]->at_ms);
    }
    e_u64(&e, (uint64_t)NOW);
    e_u64(&e, (uint64_t)(NOW + 5 * MINUTE));
    e_bytes(&e, f.seal.nonce, 16);
    e_bool(&e, true);
    vg_sha256(e.buf, e.n, want);
    assert_int_equal(vg_capsule_hash(&f.cap, got), 0);
    assert_memory_equal(got, want, 32);
    /* And that is what the coordinator signed. */
    assert_true(vg_sign_verify(keys[COORD].public_key, want, 32, f.seal.signature));
}

static void test_hashes_ignore_order_and_serialization(void **state)
{
    (void)state;
    struct fixture f;
    unsigned char a[32], b[32];

    fixture_init(&f);
    approve(&f, ALICE);
    approve(&f, BOB);
    seal(&f);
    assert_int_equal(vg_command_request_hash(&f.req, a), 0);
    assert_int_equal(vg_capsule_hash(&f.cap, b), 0);

    /* Arguments and approvals in another order: the same hashes, still verifies. */
    Vigil__CommandArg *t = f.args[0];
    f.args[0] = f.args[1];
    f.args[1] = t;
    Vigil__Approval *u = f.approvals[0];
    f.approvals[0] = f.approvals[1];
    f.approvals[1] = u;
    unsigned char a2[32], b2[32];
    assert_int_equal(vg_command_request_hash(&f.req, a2), 0);
    assert_int_equal(vg_capsule_hash(&f.cap, b2), 0);
    assert_memory_equal(a, a2, 32);
    assert_memory_equal(b, b2, 32);
    assert_int_equal(verify(&f), 0);

    /* Through protobuf and back: the same hashes, and it still verifies. */
    size_t len = vigil__command_capsule__get_packed_size(&f.cap);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    vigil__command_capsule__pack(&f.cap, buf);
    Vigil__CommandCapsule *copy = vigil__command_capsule__unpack(NULL, len, buf);
    free(buf);
    assert_non_null(copy);
    assert_int_equal(vg_command_request_hash(copy->request, a2), 0);
    assert_int_equal(vg_capsule_hash(copy, b2), 0);
    assert_memory_equal(a, a2, 32);
    assert_memory_equal(b, b2, 32);
    struct vg_capsule_verdict v;
    assert_int_equal(vg_capsule_verify(copy, signers, "worker-3", NOW, &v), 0);
    assert_true(v.ok);
    vigil__command_capsule__free_unpacked(copy, NULL);
}

static void test_every_request_field_counts(void **state)
{
    (void)state;
    struct fixture f;
    unsigned char base[32], h[32];

    fixture_init(&f);
    assert_int_equal(vg_command_request_hash(&f.req, base), 0);
#define CHANGED(stmt)                                                                              \
    do {                                                                                           \
        fixture_init(&f);                                                                          \
        stmt;                                                                                      \
        assert_int_equal(vg_command_request_hash(&f.req, h), 0);                                   \
        assert_memory_not_equal(h, base, 32);                                                      \
    } while (0)
    CHANGED(f.req.request_id = "req-2");
    CHANGED(f.req.action = "restart-nginy");
    CHANGED(f.arg_store[0].value = "nginx2.service");
    CHANGED(f.arg_store[1].key = "signam");
    CHANGED(f.req.n_args = 1);
    CHANGED(add_arg(&f, "extra", ""));
    CHANGED(f.req.node = "worker-4");
    CHANGED(f.req.incident_id = 43);
    CHANGED(f.req.requested_by = "alice");
    CHANGED(f.req.created_at_ms++);
    CHANGED(f.req.approve_by_ms++);
    CHANGED(f.req.dry_run = true);
#undef CHANGED

    /* Field boundaries cannot move: {a: "bc"} and {ab: "c"} differ, and so do the request ids
     * "ab" + action "c" and "a" + "bc". */
    unsigned char x[32], y[32];
    fixture_init(&f);
    f.req.n_args = 0;
    add_arg(&f, "a", "bc");
    assert_int_equal(vg_command_request_hash(&f.req, x), 0);
    fixture_init(&f);
    f.req.n_args = 0;
    add_arg(&f, "ab", "c");
    assert_int_equal(vg_command_request_hash(&f.req, y), 0);
    assert_memory_not_equal(x, y, 32);
    fixture_init(&f);
    f.req.request_id = "ab";
    f.req.action = "c";
    assert_int_equal(vg_command_request_hash(&f.req, x), 0);
    f.req.request_id = "a";
    f.req.action = "bc";
    assert_int_equal(vg_command_request_hash(&f.req, y), 0);
    assert_memory_not_equal(x, y, 32);

    /* More arguments than the encoding takes. */
    fixture_init(&f);
    f.req.n_args = 0;
    for (int i = 0; i <= VG_MAX_COMMAND_ARGS; i++) {
        snprintf(f.arg_keys[i], sizeof(f.arg_keys[i]), "k%d", i);
        add_arg(&f, f.arg_keys[i], "v");
    }
    assert_int_equal(vg_command_request_hash(&f.req, h), -EINVAL);
    assert_int_equal(vg_command_request_hash(NULL, h), -EINVAL);
}

/* ---- verification: the genuine capsule, then one test per refusal ---- */

static void test_valid_capsule_verifies(void **state)
{
    (void)state;
    struct fixture f;

    fixture_init(&f);
    seal(&f);
    assert_int_equal(verify(&f), 0);
    assert_true(f.verdict.ok);
    assert_string_equal(f.verdict.reason, "");
    assert_string_equal(f.verdict.coordinator, "coordinator");
    assert_int_equal(f.verdict.approvals, 0);

    fixture_init(&f);
    approve(&f, ALICE);
    approve(&f, BOB);
    seal(&f);
    assert_int_equal(verify(&f), 0);
    assert_int_equal(f.verdict.approvals, 2);
    assert_int_equal(f.verdict.admin_approvals, 1);
    assert_true(f.verdict.approver_not_requester);

    /* Two capsules of one request differ in their nonce. */
    unsigned char first[16];
    memcpy(first, f.seal.nonce, 16);
    seal(&f);
    assert_memory_not_equal(first, f.seal.nonce, 16);
}

static void test_refuses_changed_argument(void **state)
{
    (void)state;
    struct fixture f;

    fixture_init(&f);
    approve(&f, BOB);
    seal(&f);
    f.arg_store[0].value = "sshd.service";
    assert_refused(&f, verify(&f), "the request does not match the capsule's request hash");

    /* Changed with the request hash recomputed: the coordinator's signature no longer holds. */
    assert_int_equal(vg_command_request_hash(&f.req, f.seal.request_sha256), 0);
    assert_refused(&f, verify(&f), "signature does not verify with any coordinator key");

    /* Changed and re-signed by the coordinator (a stolen coordinator key): bob's approval was
     * for the original request. */
    seal(&f);
    assert_refused(&f, verify(&f), "operator bob's approval signature does not verify");
}

static void test_refuses_other_node(void **state)
{
    (void)state;
    struct fixture f;

    fixture_init(&f);
    seal(&f);
    assert_refused(&f, verify_at(&f, "worker-4", NOW), "is for node worker-3, not for this node");

    /* The target rewritten in transit. */
    f.req.node = "worker-4";
    assert_refused(&f, verify_at(&f, "worker-4", NOW), "does not match the capsule's request hash");
}

static void test_refuses_expired(void **state)
{
    (void)state;
    struct fixture f;

    fixture_init(&f);
    seal(&f);
    assert_int_equal(verify_at(&f, "worker-3", NOW + 5 * MINUTE - 1), 0);
    assert_refused(&f, verify_at(&f, "worker-3", NOW + 5 * MINUTE), "expired 0 ms ago");
    assert_refused(&f, verify_at(&f, "worker-3", NOW + 6 * MINUTE), "expired 60000 ms ago");
}

static void test_refuses_future_issued(void **state)
{
    (void)state;
    struct fixture f;

    fixture_init(&f);
    seal(&f);
    assert_int_equal(verify_at(&f, "worker-3", NOW - VG_CAPSULE_CLOCK_SKEW_MS), 0);
    assert_refused(&f, verify_at(&f, "worker-3", NOW - VG_CAPSULE_CLOCK_SKEW_MS - 1),
                   "issued 60001 ms in the future");
}

static void test_refuses_long_or_inverted_window(void **state)
{
    (void)state;
    struct fixture f;

    fixture_init(&f);
    f.cap.not_after_ms = NOW + VG_CAPSULE_MAX_LIFETIME_MS;
    seal(&f);
    assert_int_equal(verify(&f), 0);
    f.cap.not_after_ms = NOW + VG_CAPSULE_MAX_LIFETIME_MS + 1;
    seal(&f);
    assert_refused(&f, verify(&f), "valid for 900001 ms, longer than the 900000 ms allowed");
    f.cap.not_after_ms = NOW;
    seal(&f);
    assert_refused(&f, verify(&f), "not-after time is not after its issue time");
    /* Extremes do not overflow into a valid window. */
    f.cap.issued_at_ms = INT64_MIN;
    f.cap.not_after_ms = INT64_MAX;
    seal(&f);
    assert_refused(&f, verify(&f), "longer than the 900000 ms allowed");
}

static void test_refuses_after_approval_deadline(void **state)
{
    (void)state;
    struct fixture f;

    fixture_init(&f);
    f.req.approve_by_ms = NOW - 1;
    seal(&f);
    assert_refused(&f, verify(&f), "issued after the request's approval deadline");
    f.req.approve_by_ms = 0; /* no deadline */
    seal(&f);
    assert_int_equal(verify(&f), 0);
}

static void test_refuses_unknown_approver(void **state)
{
    (void)state;
    struct fixture f;

    fixture_init(&f);
    approve(&f, BOB);
    approve(&f, EVE);
    seal(&f);
    assert_refused(&f, verify(&f), "operator eve's key is not in this node's signer file");
}

static void test_refuses_duplicate_approver(void **state)
{
    (void)state;
    struct fixture f;

    fixture_init(&f);
    approve(&f, BOB);
    approve(&f, BOB);
    seal(&f);
    assert_refused(&f, verify(&f), "operator bob approved more than once");

    /* Two keys under one name (a rotation) are one approver. */
    vg_signer_set_t *rotating = vg_signer_set_new();
    assert_non_null(rotating);
    assert_int_equal(
        vg_signer_set_add(rotating, "coordinator", VG_SIGNER_COORDINATOR, keys[COORD].public_key),
        0);
    assert_int_equal(vg_signer_set_add(rotating, "bob", VG_SIGNER_RESPONDER, keys[BOB].public_key),
                     0);
    assert_int_equal(
        vg_signer_set_add(rotating, "bob", VG_SIGNER_RESPONDER, keys[CAROL].public_key), 0);
    fixture_init(&f);
    approve(&f, BOB);
    approve_as(&f, CAROL, "bob");
    seal(&f);
    assert_int_equal(vg_capsule_verify(&f.cap, rotating, "worker-3", NOW, &f.verdict), -EPERM);
    assert_non_null(strstr(f.verdict.reason, "operator bob approved more than once"));
    vg_signer_set_destroy(&rotating);
    assert_null(rotating);
}

static void test_refuses_approvals_that_cannot_approve(void **state)
{
    (void)state;
    struct fixture f;

    fixture_init(&f);
    approve(&f, DAVE);
    seal(&f);
    assert_refused(&f, verify(&f), "operator dave's key has the viewer role");

    fixture_init(&f);
    approve(&f, COORD);
    seal(&f);
    assert_refused(&f, verify(&f), "operator coordinator's key has the coordinator role");

    /* bob's key presented as alice's (an admin): the signer file says whose key it is. */
    fixture_init(&f);
    approve_as(&f, BOB, "alice");
    seal(&f);
    assert_refused(&f, verify(&f),
                   "the approval by operator alice is signed with the key of bob in this node's");

    /* alice's name and key, with a signature by eve. */
    fixture_init(&f);
    approve(&f, EVE);
    f.approval_store[0].operator_ = "alice";
    f.approval_store[0].signing_key = keys[ALICE].public_b64;
    seal(&f);
    assert_refused(&f, verify(&f), "operator alice's approval signature does not verify");

    /* A flipped bit in an approval the coordinator then signed. */
    fixture_init(&f);
    approve(&f, BOB);
    f.approval_sigs[0][5] ^= 0x20;
    seal(&f);
    assert_refused(&f, verify(&f), "operator bob's approval signature does not verify");

    /* A key that is not base64 of 32 bytes (44 characters, so the shape check passes). */
    fixture_init(&f);
    approve(&f, BOB);
    f.approval_store[0].signing_key = "############################################";
    seal(&f);
    assert_refused(&f, verify(&f), "not base64 of 32 bytes");
}

static void test_refuses_without_coordinator_key(void **state)
{
    (void)state;
    struct fixture f;
    vg_signer_set_t *no_coordinator = vg_signer_set_new();

    assert_non_null(no_coordinator);
    assert_int_equal(
        vg_signer_set_add(no_coordinator, "alice", VG_SIGNER_ADMIN, keys[ALICE].public_key), 0);
    fixture_init(&f);
    seal(&f);
    assert_int_equal(vg_capsule_verify(&f.cap, no_coordinator, "worker-3", NOW, &f.verdict),
                     -EPERM);
    assert_non_null(strstr(f.verdict.reason, "this node's signer file has no coordinator key"));
    vg_signer_set_destroy(&no_coordinator);

    /* Signed by a key the set knows, but not as a coordinator: an admin cannot issue capsules. */
    seal_with(&f, ALICE);
    assert_refused(&f, verify(&f), "does not verify with any coordinator key");
}

static void test_refuses_flipped_signature(void **state)
{
    (void)state;
    struct fixture f;

    fixture_init(&f);
    seal(&f);
    for (size_t bit = 0; bit < 8 * VG_SIGNATURE_LEN; bit += 37) {
        f.seal.signature[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        assert_refused(&f, verify(&f), "signature does not verify");
        f.seal.signature[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    }
    assert_int_equal(verify(&f), 0);

    /* Every other signed field: nonce, times, approvals, dry-run. */
    f.seal.nonce[0] ^= 1;
    assert_refused(&f, verify(&f), "signature does not verify");
    f.seal.nonce[0] ^= 1;
    f.cap.not_after_ms += 1;
    assert_refused(&f, verify(&f), "signature does not verify");
    f.cap.not_after_ms -= 1;
    f.cap.issued_at_ms -= 1;
    assert_refused(&f, verify(&f), "signature does not verify");
    f.cap.issued_at_ms += 1;
    assert_int_equal(verify(&f), 0);
    f.req.dry_run = true;
    assert_refused(&f, verify(&f), "does not match the capsule's request hash");
}

static void test_refuses_added_or_removed_approval(void **state)
{
    (void)state;
    struct fixture f;

    fixture_init(&f);
    approve(&f, ALICE);
    approve(&f, BOB);
    seal(&f);
    f.cap.n_approvals = 1; /* dropped in transit */
    assert_refused(&f, verify(&f), "signature does not verify");
    f.cap.n_approvals = 2;
    f.approval_store[0].at_ms++; /* the time the coordinator attested */
    assert_refused(&f, verify(&f), "signature does not verify");
    f.approval_store[0].at_ms--;
    approve(&f, CAROL); /* added after signing */
    assert_refused(&f, verify(&f), "signature does not verify");
}

static void test_refuses_malformed(void **state)
{
    (void)state;
    struct fixture f;

    fixture_init(&f);
    seal(&f);
    f.cap.nonce.len = 15;
    assert_refused(&f, verify(&f), "malformed capsule: command: nonce must be 16 bytes");
    f.cap.nonce.len = 16;
    f.cap.request = NULL;
    assert_refused(&f, verify(&f), "malformed capsule: command: no request");
    f.cap.request = &f.req;
    f.cap.signature.len = 0;
    assert_refused(&f, verify(&f), "signature must be 64 bytes");
    f.cap.signature.len = 64;
    f.arg_store[1].key = "unit";
    assert_refused(&f, verify(&f), "an argument key appears twice");

    assert_int_equal(vg_capsule_verify(&f.cap, NULL, "worker-3", NOW, &f.verdict), -EINVAL);
    assert_int_equal(vg_capsule_verify(&f.cap, signers, "worker-3", NOW, NULL), -EINVAL);
}

/* ---- the approval policy ---- */

struct policy_case {
    const char *what;
    enum who approvers[3];
    size_t n;
    bool approve_ok, destructive_ok;
    const char *destructive_why;
};

static void test_policy_matrix(void **state)
{
    (void)state;
    /* bob is the requester. */
    static const struct policy_case cases[] = {
        {"coordinator alone", {0}, 0, false, false, "two different operators"},
        {"the requester (responder)", {BOB}, 1, true, false, "two different operators"},
        {"an admin alone", {ALICE}, 1, true, false, "two different operators"},
        {"two responders", {BOB, CAROL}, 2, true, false, "must be an admin"},
        {"admin and the requester", {ALICE, BOB}, 2, true, true, NULL},
        {"admin and another responder", {ALICE, CAROL}, 2, true, true, NULL},
        {"three", {ALICE, BOB, CAROL}, 3, true, true, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct policy_case *c = &cases[i];
        struct fixture f;
        const char *why = NULL;

        fixture_init(&f);
        for (size_t j = 0; j < c->n; j++)
            approve(&f, c->approvers[j]);
        seal(&f);
        if (verify(&f) != 0)
            fail_msg("%s: %s", c->what, f.verdict.reason);
        assert_true(vg_capsule_policy_ok(&f.verdict, VG_ACTION_MODE_AUTO, &why));
        if (vg_capsule_policy_ok(&f.verdict, VG_ACTION_MODE_APPROVE, &why) != c->approve_ok)
            fail_msg("%s: approve mode should be %s", c->what, c->approve_ok ? "ok" : "refused");
        why = NULL;
        if (vg_capsule_policy_ok(&f.verdict, VG_ACTION_MODE_DESTRUCTIVE, &why) != c->destructive_ok)
            fail_msg("%s: destructive mode should be %s", c->what,
                     c->destructive_ok ? "ok" : "refused");
        if (c->destructive_why && (!why || !strstr(why, c->destructive_why)))
            fail_msg("%s: \"%s\" does not say \"%s\"", c->what, why ? why : "(null)",
                     c->destructive_why);
    }

    /* Two approvers, one an admin, but both... the requester cannot be two people, so the
     * "not the requester" rule is checked on the verdict itself. */
    struct vg_capsule_verdict v = {.ok = true, .approvals = 2, .admin_approvals = 1};
    const char *why = NULL;
    assert_false(vg_capsule_policy_ok(&v, VG_ACTION_MODE_DESTRUCTIVE, &why));
    assert_non_null(strstr(why, "must not be the requester"));
    v.approver_not_requester = true;
    assert_true(vg_capsule_policy_ok(&v, VG_ACTION_MODE_DESTRUCTIVE, NULL));
    /* A refused capsule satisfies nothing, not even auto. */
    v.ok = false;
    assert_false(vg_capsule_policy_ok(&v, VG_ACTION_MODE_AUTO, &why));
    assert_false(vg_capsule_policy_ok(NULL, VG_ACTION_MODE_AUTO, &why));

    /* The requester approving alone: counted, but not as someone else. */
    struct fixture f;
    fixture_init(&f);
    approve(&f, BOB);
    seal(&f);
    assert_int_equal(verify(&f), 0);
    assert_false(f.verdict.approver_not_requester);
    assert_int_equal(f.verdict.admin_approvals, 0);
}

/* A stolen coordinator key signs whatever it likes, but cannot make operators' approvals. */
static void test_stolen_coordinator_key(void **state)
{
    (void)state;
    struct fixture f;
    const char *why = NULL;

    /* Its signature alone: fine for auto, nothing more. */
    fixture_init(&f);
    seal(&f);
    assert_int_equal(verify(&f), 0);
    assert_false(vg_capsule_policy_ok(&f.verdict, VG_ACTION_MODE_APPROVE, &why));
    assert_false(vg_capsule_policy_ok(&f.verdict, VG_ACTION_MODE_DESTRUCTIVE, &why));

    /* Approvals it signs itself, under its own name or an admin's. */
    fixture_init(&f);
    approve(&f, COORD);
    seal(&f);
    assert_refused(&f, verify(&f), "cannot approve");
    fixture_init(&f);
    approve_as(&f, COORD, "alice");
    seal(&f);
    assert_refused(&f, verify(&f), "cannot approve");
    fixture_init(&f);
    approve(&f, COORD);
    f.approval_store[0].operator_ = "alice";
    f.approval_store[0].signing_key = keys[ALICE].public_b64;
    seal(&f);
    assert_refused(&f, verify(&f), "operator alice's approval signature does not verify");

    /* A genuine approval moved onto another request it made up. */
    fixture_init(&f);
    approve(&f, ALICE);
    f.req.action = "isolate";
    seal(&f);
    assert_refused(&f, verify(&f), "operator alice's approval signature does not verify");
}

/* ---- the signer set ---- */

static void test_signer_set(void **state)
{
    (void)state;
    vg_signer_set_t *set = vg_signer_set_new();
    unsigned char key[32];
    char name[VG_SIGNER_NAME_MAX + 2];
    enum vg_signer_role role;

    assert_non_null(set);
    assert_int_equal(vg_signer_set_add(set, "alice", VG_SIGNER_ADMIN, keys[ALICE].public_key), 0);
    assert_int_equal(vg_signer_set_add(set, "alice2", VG_SIGNER_VIEWER, keys[ALICE].public_key),
                     -EEXIST);
    assert_int_equal(vg_signer_set_add(set, "", VG_SIGNER_ADMIN, keys[BOB].public_key), -EINVAL);
    assert_int_equal(vg_signer_set_add(set, NULL, VG_SIGNER_ADMIN, keys[BOB].public_key), -EINVAL);
    assert_int_equal(vg_signer_set_add(set, "bob", (enum vg_signer_role)0, keys[BOB].public_key),
                     -EINVAL);
    assert_int_equal(vg_signer_set_add(set, "bob", (enum vg_signer_role)9, keys[BOB].public_key),
                     -EINVAL);
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    assert_int_equal(vg_signer_set_add(set, name, VG_SIGNER_ADMIN, keys[BOB].public_key), -EINVAL);
    name[VG_SIGNER_NAME_MAX] = '\0';
    assert_int_equal(vg_signer_set_add(set, name, VG_SIGNER_ADMIN, keys[BOB].public_key), 0);
    assert_int_equal(vg_signer_set_count(set), 2);

    for (size_t i = vg_signer_set_count(set); i < VG_SIGNERS_MAX; i++) {
        memset(key, 0, sizeof(key));
        memcpy(key, &i, sizeof(i));
        assert_int_equal(vg_signer_set_add(set, "many", VG_SIGNER_RESPONDER, key), 0);
    }
    memset(key, 0xff, sizeof(key));
    assert_int_equal(vg_signer_set_add(set, "one-too-many", VG_SIGNER_RESPONDER, key), -ENOSPC);
    assert_int_equal(vg_signer_set_count(set), VG_SIGNERS_MAX);
    vg_signer_set_destroy(&set);
    assert_null(set);
    vg_signer_set_destroy(&set);
    vg_signer_set_destroy(NULL);

    static const char *const role_names[] = {"coordinator", "viewer", "responder", "admin"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(vg_signer_role_parse(role_names[i], &role), 0);
        assert_string_equal(vg_signer_role_name(role), role_names[i]);
    }
    role = VG_SIGNER_ADMIN;
    assert_int_equal(vg_signer_role_parse("root", &role), -EINVAL);
    assert_int_equal(vg_signer_role_parse(NULL, &role), -EINVAL);
    assert_int_equal(role, VG_SIGNER_ADMIN);
    assert_null(vg_signer_role_name((enum vg_signer_role)0));
    assert_null(vg_signer_role_name((enum vg_signer_role)42));
}

/* ---- the envelope decoder's bounds for the two command bodies ---- */

static enum vg_decode_error decode_envelope(Vigil__Envelope *env, const char **why)
{
    uint8_t *buf;
    size_t len;
    Vigil__Envelope *out = NULL;

    assert_int_equal(vg_envelope_encode(env, &buf, &len), 0);
    enum vg_decode_error e = vg_envelope_decode(buf, len, &out, why);
    free(buf);
    if (e == VG_DECODE_OK) {
        assert_non_null(out);
        vg_envelope_free(out);
    }
    return e;
}

static void assert_capsule_limits(struct fixture *f, const char *needle)
{
    Vigil__Envelope env;
    const char *why = NULL;

    vg_envelope_init(&env, "coordinator", 0);
    env.body_case = VIGIL__ENVELOPE__BODY_COMMAND;
    env.command = &f->cap;
    assert_int_equal(decode_envelope(&env, &why), VG_DECODE_LIMITS);
    if (!why || !strstr(why, needle))
        fail_msg("reason \"%s\" does not contain \"%s\"", why ? why : "(null)", needle);
}

static void test_wire_capsule_bounds(void **state)
{
    (void)state;
    struct fixture f;
    Vigil__Envelope env;
    const char *why = NULL;

    fixture_init(&f);
    approve(&f, ALICE);
    seal(&f);
    vg_envelope_init(&env, "coordinator", 0);
    env.body_case = VIGIL__ENVELOPE__BODY_COMMAND;
    env.command = &f.cap;
    assert_int_equal(decode_envelope(&env, &why), VG_DECODE_OK);
    env.seq = 7; /* transient */
    assert_int_equal(decode_envelope(&env, &why), VG_DECODE_LIMITS);
    assert_string_equal(why, "transient message with a sequence number");

#define LIMIT(stmt, needle)                                                                        \
    do {                                                                                           \
        fixture_init(&f);                                                                          \
        approve(&f, ALICE);                                                                        \
        seal(&f);                                                                                  \
        stmt;                                                                                      \
        assert_capsule_limits(&f, needle);                                                         \
    } while (0)
    LIMIT(f.cap.request = NULL, "no request");
    LIMIT(f.cap.nonce.len = 15, "nonce must be 16 bytes");
    LIMIT(f.cap.nonce.len = 0, "nonce must be 16 bytes");
    LIMIT(f.cap.request_sha256.len = 31, "request hash must be 32 bytes");
    LIMIT(f.cap.signature.len = 63, "signature must be 64 bytes");
    LIMIT(f.approval_store[0].signature.len = 32, "approval's signature must be 64 bytes");
    LIMIT(f.approval_store[0].signing_key = "short", "44 characters");
    LIMIT(f.approval_store[0].operator_ = "", "operator empty");
    LIMIT(f.req.request_id = "", "request id empty");
    LIMIT(f.req.action = "restart nginx", "action must be a name");
    LIMIT(f.req.action = "../../bin/sh", "action must be a name");
    LIMIT(f.req.node = "", "target node or requester empty");
    LIMIT(f.req.requested_by = "", "target node or requester empty");
    LIMIT(f.arg_store[0].key = "", "argument key empty");
    LIMIT(f.arg_store[1].key = "unit", "appears twice");
    LIMIT(
        {
            for (int i = 2; i <= VG_MAX_COMMAND_ARGS; i++) {
                snprintf(f.arg_keys[i], sizeof(f.arg_keys[i]), "k%d", i);
                add_arg(&f, f.arg_keys[i], "v");
            }
        },
        "more than 32 arguments");
    LIMIT(
        {
            for (int i = 1; i <= VG_MAX_COMMAND_APPROVALS; i++)
                approve(&f, (enum who)(i % NKEYS));
        },
        "more than 8 approvals");
#undef LIMIT

    /* At the bounds: 32 arguments, 8 approvals, a 1024-byte value. */
    static char value[VG_MAX_VALUE_LEN + 1];
    memset(value, 'v', VG_MAX_VALUE_LEN);
    fixture_init(&f);
    f.arg_store[0].value = value;
    for (int i = 2; i < VG_MAX_COMMAND_ARGS; i++) {
        snprintf(f.arg_keys[i], sizeof(f.arg_keys[i]), "k%d", i);
        add_arg(&f, f.arg_keys[i], "v");
    }
    for (int i = 0; i < VG_MAX_COMMAND_APPROVALS; i++)
        approve(&f, (enum who)(i % NKEYS));
    seal(&f);
    env.seq = 0;
    env.command = &f.cap;
    assert_int_equal(decode_envelope(&env, &why), VG_DECODE_OK);
}

static void test_wire_report_bounds(void **state)
{
    (void)state;
    Vigil__Envelope env;
    Vigil__CommandReport rep;
    unsigned char nonce[16] = {1}, sha[32] = {2};
    const char *why = NULL;

    vigil__command_report__init(&rep);
    rep.request_id = "req-1";
    rep.nonce.data = nonce;
    rep.nonce.len = 16;
    rep.step = VIGIL__COMMAND_STEP__COMMAND_STEP_ACCEPTED;
    rep.at_ms = NOW;
    vg_envelope_init(&env, "ag-0123456789abcdef", 5);
    env.body_case = VIGIL__ENVELOPE__BODY_COMMAND_REPORT;
    env.command_report = &rep;
    assert_int_equal(decode_envelope(&env, &why), VG_DECODE_OK);
    env.seq = 0; /* durable */
    assert_int_equal(decode_envelope(&env, &why), VG_DECODE_LIMITS);
    assert_string_equal(why, "durable message without a sequence number");
    env.seq = 5;

    rep.step = VIGIL__COMMAND_STEP__COMMAND_STEP_DONE;
    assert_int_equal(decode_envelope(&env, &why), VG_DECODE_LIMITS);
    assert_non_null(strstr(why, "done step carries the output's 32-byte sha256"));
    rep.output_sha256.data = sha;
    rep.output_sha256.len = 32;
    rep.exit_status = 1;
    rep.duration_ms = 12;
    assert_int_equal(decode_envelope(&env, &why), VG_DECODE_OK);

    rep.step = VIGIL__COMMAND_STEP__COMMAND_STEP_STARTED;
    assert_int_equal(decode_envelope(&env, &why), VG_DECODE_LIMITS);
    assert_non_null(strstr(why, "only a done step carries an output hash"));
    rep.output_sha256.len = 0;

    rep.step = VIGIL__COMMAND_STEP__COMMAND_STEP_REFUSED;
    assert_int_equal(decode_envelope(&env, &why), VG_DECODE_LIMITS);
    assert_non_null(strstr(why, "refusal without a reason"));
    rep.reason = "the capsule expired 3 ms ago";
    assert_int_equal(decode_envelope(&env, &why), VG_DECODE_OK);

    rep.step = VIGIL__COMMAND_STEP__COMMAND_STEP_UNSPECIFIED;
    assert_int_equal(decode_envelope(&env, &why), VG_DECODE_LIMITS);
    assert_non_null(strstr(why, "unknown step"));
    rep.step = (Vigil__CommandStep)17;
    assert_int_equal(decode_envelope(&env, &why), VG_DECODE_LIMITS);
    rep.step = VIGIL__COMMAND_STEP__COMMAND_STEP_STARTED;

    rep.nonce.len = 8;
    assert_int_equal(decode_envelope(&env, &why), VG_DECODE_LIMITS);
    assert_non_null(strstr(why, "nonce must be 16 bytes"));
    rep.nonce.len = 16;
    rep.request_id = "";
    assert_int_equal(decode_envelope(&env, &why), VG_DECODE_LIMITS);
    rep.request_id = "req-1";
    static char reason[VG_MAX_VALUE_LEN + 2];
    memset(reason, 'r', VG_MAX_VALUE_LEN + 1);
    rep.reason = reason;
    assert_int_equal(decode_envelope(&env, &why), VG_DECODE_LIMITS);
    assert_non_null(strstr(why, "reason longer than 1024 bytes"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_hash_matches_document),
        cmocka_unit_test(test_request_hash_document_example),
        cmocka_unit_test(test_capsule_hash_matches_document),
        cmocka_unit_test(test_hashes_ignore_order_and_serialization),
        cmocka_unit_test(test_every_request_field_counts),
        cmocka_unit_test(test_valid_capsule_verifies),
        cmocka_unit_test(test_refuses_changed_argument),
        cmocka_unit_test(test_refuses_other_node),
        cmocka_unit_test(test_refuses_expired),
        cmocka_unit_test(test_refuses_future_issued),
        cmocka_unit_test(test_refuses_long_or_inverted_window),
        cmocka_unit_test(test_refuses_after_approval_deadline),
        cmocka_unit_test(test_refuses_unknown_approver),
        cmocka_unit_test(test_refuses_duplicate_approver),
        cmocka_unit_test(test_refuses_approvals_that_cannot_approve),
        cmocka_unit_test(test_refuses_without_coordinator_key),
        cmocka_unit_test(test_refuses_flipped_signature),
        cmocka_unit_test(test_refuses_added_or_removed_approval),
        cmocka_unit_test(test_refuses_malformed),
        cmocka_unit_test(test_policy_matrix),
        cmocka_unit_test(test_stolen_coordinator_key),
        cmocka_unit_test(test_signer_set),
        cmocka_unit_test(test_wire_capsule_bounds),
        cmocka_unit_test(test_wire_report_bounds),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
