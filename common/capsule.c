/*
 * Command capsules: canonical hashes, signing, and the node's verification (see capsule.h; the
 * byte-by-byte encodings are in docs/remediation.md, and this file must match them).
 *
 * Encoding primitives, fed straight into SHA-256:
 *   u64(v)     8 bytes, big-endian; a signed value is its two's complement
 *   bytes(b)   u64(length) then the bytes; a string is bytes() of its text without the NUL
 *   bool(b)    one byte, 0 or 1
 * With a length before every variable field, two different field lists can never encode to
 * the same bytes.
 */
#include "capsule.h"

#include "digest.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

_Static_assert(VG_CAPSULE_HASH_LEN == VG_SHA256_LEN, "capsule hashes are SHA-256");
_Static_assert(VG_COMMAND_SIGNATURE_BYTES == VG_SIGNATURE_LEN, "wire and sign.h agree");
_Static_assert(VG_COMMAND_KEY_B64_LEN == VG_SIGN_PUBLIC_B64_LEN, "wire and sign.h agree");

/* ---- canonical encoding ---- */

static void put_u64(struct vg_sha256 *h, uint64_t v)
{
    unsigned char b[8];
    for (int i = 7; i >= 0; i--) {
        b[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
    vg_sha256_update(h, b, sizeof(b));
}

static void put_i64(struct vg_sha256 *h, int64_t v)
{
    put_u64(h, (uint64_t)v);
}

static void put_bytes(struct vg_sha256 *h, const void *data, size_t len)
{
    put_u64(h, (uint64_t)len);
    if (len > 0)
        vg_sha256_update(h, data, len);
}

static void put_str(struct vg_sha256 *h, const char *s)
{
    if (!s)
        s = "";
    put_bytes(h, s, strlen(s));
}

static void put_bool(struct vg_sha256 *h, bool b)
{
    unsigned char v = b ? 1 : 0;
    vg_sha256_update(h, &v, 1);
}

static const char *str_or_empty(const char *s)
{
    return s ? s : "";
}

/* Arguments by key, then by value, bytewise (strcmp compares as unsigned char). */
static int compare_args(const void *a, const void *b)
{
    const Vigil__CommandArg *x = *(const Vigil__CommandArg *const *)a;
    const Vigil__CommandArg *y = *(const Vigil__CommandArg *const *)b;
    int c = strcmp(str_or_empty(x->key), str_or_empty(y->key));
    return c != 0 ? c : strcmp(str_or_empty(x->value), str_or_empty(y->value));
}

/* Orders two byte strings as their encodings bytes() compare bytewise: length first (u64 big
 * endian compares like the number), then the bytes. */
static int compare_encoded(const void *a, size_t alen, const void *b, size_t blen)
{
    if (alen != blen)
        return alen < blen ? -1 : 1;
    return alen ? memcmp(a, b, alen) : 0;
}

static int compare_encoded_str(const char *a, const char *b)
{
    a = str_or_empty(a);
    b = str_or_empty(b);
    return compare_encoded(a, strlen(a), b, strlen(b));
}

/* Approvals in the order of their encodings (see put_approval), compared bytewise. */
static int compare_approvals(const void *a, const void *b)
{
    const Vigil__Approval *x = *(const Vigil__Approval *const *)a;
    const Vigil__Approval *y = *(const Vigil__Approval *const *)b;
    int c = compare_encoded_str(x->operator_, y->operator_);
    if (c == 0)
        c = compare_encoded_str(x->signing_key, y->signing_key);
    if (c == 0)
        c = compare_encoded(x->signature.data, x->signature.len, y->signature.data,
                            y->signature.len);
    if (c == 0 && x->at_ms != y->at_ms)
        c = (uint64_t)x->at_ms < (uint64_t)y->at_ms ? -1 : 1;
    return c;
}

static void put_approval(struct vg_sha256 *h, const Vigil__Approval *a)
{
    put_str(h, a->operator_);
    put_str(h, a->signing_key);
    put_bytes(h, a->signature.data, a->signature.len);
    put_i64(h, a->at_ms);
}

int vg_command_request_hash(const Vigil__CommandRequest *req,
                            unsigned char out[VG_CAPSULE_HASH_LEN])
{
    const Vigil__CommandArg *args[VG_MAX_COMMAND_ARGS];
    struct vg_sha256 h;

    if (!req || req->n_args > VG_MAX_COMMAND_ARGS || (req->n_args > 0 && !req->args))
        return -EINVAL;
    for (size_t i = 0; i < req->n_args; i++) {
        if (!req->args[i])
            return -EINVAL;
        args[i] = req->args[i];
    }
    if (req->n_args > 1)
        qsort(args, req->n_args, sizeof(const Vigil__CommandArg *), compare_args);

    vg_sha256_init(&h);
    put_str(&h, VG_CAPSULE_DOMAIN_REQUEST);
    put_str(&h, req->request_id);
    put_str(&h, req->action);
    put_u64(&h, req->n_args);
    for (size_t i = 0; i < req->n_args; i++) {
        put_str(&h, args[i]->key);
        put_str(&h, args[i]->value);
    }
    put_str(&h, req->node);
    put_u64(&h, req->incident_id);
    put_str(&h, req->requested_by);
    put_i64(&h, req->created_at_ms);
    put_i64(&h, req->approve_by_ms);
    put_bool(&h, req->dry_run);
    vg_sha256_final(&h, out);
    return 0;
}

int vg_capsule_hash(const Vigil__CommandCapsule *c, unsigned char out[VG_CAPSULE_HASH_LEN])
{
    const Vigil__Approval *approvals[VG_MAX_COMMAND_APPROVALS];
    struct vg_sha256 h;

    if (!c || !c->request || c->request_sha256.len != VG_CAPSULE_HASH_LEN ||
        c->n_approvals > VG_MAX_COMMAND_APPROVALS || (c->n_approvals > 0 && !c->approvals))
        return -EINVAL;
    for (size_t i = 0; i < c->n_approvals; i++) {
        if (!c->approvals[i])
            return -EINVAL;
        approvals[i] = c->approvals[i];
    }
    if (c->n_approvals > 1)
        qsort(approvals, c->n_approvals, sizeof(const Vigil__Approval *), compare_approvals);

    vg_sha256_init(&h);
    put_str(&h, VG_CAPSULE_DOMAIN_CAPSULE);
    put_bytes(&h, c->request_sha256.data, c->request_sha256.len);
    put_u64(&h, c->n_approvals);
    for (size_t i = 0; i < c->n_approvals; i++)
        put_approval(&h, approvals[i]);
    put_i64(&h, c->issued_at_ms);
    put_i64(&h, c->not_after_ms);
    put_bytes(&h, c->nonce.data, c->nonce.len);
    put_bool(&h, c->request->dry_run);
    vg_sha256_final(&h, out);
    return 0;
}

void vg_approval_sign(const struct vg_signing_key *operator_key,
                      const unsigned char request_hash[VG_CAPSULE_HASH_LEN],
                      unsigned char sig[VG_SIGNATURE_LEN])
{
    vg_sign_detached(operator_key, request_hash, VG_CAPSULE_HASH_LEN, sig);
}

int vg_capsule_sign(Vigil__CommandCapsule *c, const struct vg_signing_key *coordinator_key,
                    struct vg_capsule_seal *seal)
{
    unsigned char capsule_hash[VG_CAPSULE_HASH_LEN];
    int r;

    if (!c || !c->request)
        return -EINVAL;
    if (sodium_init() < 0)
        return -EIO;
    r = vg_command_request_hash(c->request, seal->request_sha256);
    if (r < 0)
        return r;
    randombytes_buf(seal->nonce, sizeof(seal->nonce));
    c->request_sha256.data = seal->request_sha256;
    c->request_sha256.len = sizeof(seal->request_sha256);
    c->nonce.data = seal->nonce;
    c->nonce.len = sizeof(seal->nonce);
    r = vg_capsule_hash(c, capsule_hash);
    if (r < 0)
        return r;
    vg_sign_detached(coordinator_key, capsule_hash, sizeof(capsule_hash), seal->signature);
    c->signature.data = seal->signature;
    c->signature.len = sizeof(seal->signature);
    return 0;
}

/* ---- signer set ---- */

struct signer {
    char name[VG_SIGNER_NAME_MAX + 1];
    enum vg_signer_role role;
    unsigned char public_key[VG_SIGN_PUBLIC_LEN];
};

struct vg_signer_set {
    struct signer *signers;
    size_t n;
    size_t cap;
};

static const char *const role_names[] = {
    [VG_SIGNER_COORDINATOR] = "coordinator",
    [VG_SIGNER_VIEWER] = "viewer",
    [VG_SIGNER_RESPONDER] = "responder",
    [VG_SIGNER_ADMIN] = "admin",
};
#define NROLES (sizeof(role_names) / sizeof(role_names[0]))

const char *vg_signer_role_name(enum vg_signer_role role)
{
    if ((unsigned)role >= NROLES)
        return NULL;
    return role_names[role];
}

int vg_signer_role_parse(const char *name, enum vg_signer_role *ret)
{
    for (size_t i = 0; name && i < NROLES; i++) {
        if (role_names[i] && strcmp(name, role_names[i]) == 0) {
            *ret = (enum vg_signer_role)i;
            return 0;
        }
    }
    return -EINVAL;
}

vg_signer_set_t *vg_signer_set_new(void)
{
    return calloc(1, sizeof(vg_signer_set_t));
}

void vg_signer_set_destroy(vg_signer_set_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->signers);
    (*self_p)->signers = NULL;
    free(*self_p);
    *self_p = NULL;
}

size_t vg_signer_set_count(const vg_signer_set_t *self)
{
    return self ? self->n : 0;
}

static const struct signer *signer_find(const vg_signer_set_t *self,
                                        const unsigned char public_key[VG_SIGN_PUBLIC_LEN])
{
    for (size_t i = 0; i < self->n; i++) {
        if (memcmp(self->signers[i].public_key, public_key, VG_SIGN_PUBLIC_LEN) == 0)
            return &self->signers[i];
    }
    return NULL;
}

int vg_signer_set_add(vg_signer_set_t *self, const char *name, enum vg_signer_role role,
                      const unsigned char public_key[VG_SIGN_PUBLIC_LEN])
{
    size_t len = name ? strnlen(name, VG_SIGNER_NAME_MAX + 1) : 0;

    if (!self || len == 0 || len > VG_SIGNER_NAME_MAX || !vg_signer_role_name(role))
        return -EINVAL;
    if (signer_find(self, public_key))
        return -EEXIST;
    if (self->n >= VG_SIGNERS_MAX)
        return -ENOSPC;
    if (self->n == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 8;
        struct signer *grown = realloc(self->signers, cap * sizeof(*grown));
        if (!grown)
            return -ENOMEM;
        self->signers = grown;
        self->cap = cap;
    }
    struct signer *s = &self->signers[self->n++];
    memcpy(s->name, name, len);
    s->name[len] = '\0';
    s->role = role;
    memcpy(s->public_key, public_key, VG_SIGN_PUBLIC_LEN);
    return 0;
}

/* ---- verification ---- */

static int refuse(struct vg_capsule_verdict *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int refuse(struct vg_capsule_verdict *v, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
    va_end(ap);
    v->ok = false;
    v->approvals = 0;
    v->admin_approvals = 0;
    v->approver_not_requester = false;
    return -EPERM;
}

/* The coordinator key that signed capsule_hash, or NULL; *any_coordinator says whether the set
 * holds a coordinator key at all. */
static const struct signer *
coordinator_signer(const vg_signer_set_t *signers,
                   const unsigned char capsule_hash[VG_CAPSULE_HASH_LEN],
                   const unsigned char *signature, bool *any_coordinator)
{
    *any_coordinator = false;
    for (size_t i = 0; i < signers->n; i++) {
        const struct signer *s = &signers->signers[i];
        if (s->role != VG_SIGNER_COORDINATOR)
            continue;
        *any_coordinator = true;
        if (vg_sign_verify(s->public_key, capsule_hash, VG_CAPSULE_HASH_LEN, signature))
            return s;
    }
    return NULL;
}

static int check_time(const Vigil__CommandCapsule *c, int64_t now_ms, struct vg_capsule_verdict *v)
{
    int64_t issued = c->issued_at_ms, not_after = c->not_after_ms;

    /* Differences in uint64_t: exact once the order is known, and never overflowing. */
    if (not_after <= issued)
        return refuse(v, "the capsule's not-after time is not after its issue time");
    if ((uint64_t)not_after - (uint64_t)issued > VG_CAPSULE_MAX_LIFETIME_MS)
        return refuse(v, "the capsule is valid for %" PRIu64 " ms, longer than the %d ms allowed",
                      (uint64_t)not_after - (uint64_t)issued, VG_CAPSULE_MAX_LIFETIME_MS);
    if (issued > now_ms && (uint64_t)issued - (uint64_t)now_ms > VG_CAPSULE_CLOCK_SKEW_MS)
        return refuse(v,
                      "the capsule was issued %" PRIu64 " ms in the future (more than %d s of "
                      "clock skew between the coordinator and this node)",
                      (uint64_t)issued - (uint64_t)now_ms, VG_CAPSULE_CLOCK_SKEW_MS / 1000);
    if (now_ms >= not_after)
        return refuse(v, "the capsule expired %" PRIu64 " ms ago",
                      (uint64_t)now_ms - (uint64_t)not_after);
    if (c->request->approve_by_ms > 0 && issued > c->request->approve_by_ms)
        return refuse(v, "the capsule was issued after the request's approval deadline");
    return 0;
}

static int check_approvals(const Vigil__CommandCapsule *c, const vg_signer_set_t *signers,
                           struct vg_capsule_verdict *v)
{
    const struct signer *approvers[VG_MAX_COMMAND_APPROVALS];

    for (size_t i = 0; i < c->n_approvals; i++) {
        const Vigil__Approval *a = c->approvals[i];
        unsigned char key[VG_SIGN_PUBLIC_LEN];
        const struct signer *s;

        if (vg_sign_public_parse(a->signing_key, key) < 0)
            return refuse(v,
                          "operator %s's approval carries a signing key that is not base64 of "
                          "32 bytes",
                          a->operator_);
        s = signer_find(signers, key);
        if (!s)
            return refuse(v, "operator %s's key is not in this node's signer file", a->operator_);
        if (s->role != VG_SIGNER_RESPONDER && s->role != VG_SIGNER_ADMIN)
            return refuse(v,
                          "operator %s's key has the %s role in this node's signer file, which "
                          "cannot approve",
                          a->operator_, vg_signer_role_name(s->role));
        if (strcmp(s->name, a->operator_) != 0)
            return refuse(v,
                          "the approval by operator %s is signed with the key of %s in this "
                          "node's signer file",
                          a->operator_, s->name);
        if (!vg_sign_verify(key, c->request_sha256.data, VG_CAPSULE_HASH_LEN, a->signature.data))
            return refuse(v, "operator %s's approval signature does not verify", a->operator_);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(approvers[j]->name, s->name) == 0)
                return refuse(v, "operator %s approved more than once", s->name);
        }
        approvers[i] = s;
        v->approvals++;
        if (s->role == VG_SIGNER_ADMIN)
            v->admin_approvals++;
        if (strcmp(s->name, c->request->requested_by) != 0)
            v->approver_not_requester = true;
    }
    return 0;
}

int vg_capsule_verify(const Vigil__CommandCapsule *c, const vg_signer_set_t *signers,
                      const char *node, int64_t now_ms, struct vg_capsule_verdict *ret)
{
    unsigned char request_hash[VG_CAPSULE_HASH_LEN];
    unsigned char capsule_hash[VG_CAPSULE_HASH_LEN];
    const struct signer *coordinator;
    bool any_coordinator;
    const char *why = NULL;
    int r;

    if (!ret)
        return -EINVAL;
    memset(ret, 0, sizeof(*ret));
    if (!c || !signers || !node)
        return -EINVAL;

    if (vg_command_capsule_check(c, &why) != VG_DECODE_OK)
        return refuse(ret, "malformed capsule: %s", why);
    if (vg_command_request_hash(c->request, request_hash) < 0 ||
        vg_memcmp_ct(request_hash, c->request_sha256.data, sizeof(request_hash)) != 0)
        return refuse(ret, "the request does not match the capsule's request hash (altered "
                           "after it was approved?)");
    if (vg_capsule_hash(c, capsule_hash) < 0)
        return refuse(ret, "malformed capsule: cannot compute its hash");
    coordinator = coordinator_signer(signers, capsule_hash, c->signature.data, &any_coordinator);
    if (!any_coordinator)
        return refuse(ret, "this node's signer file has no coordinator key");
    if (!coordinator)
        return refuse(ret, "the capsule's signature does not verify with any coordinator key in "
                           "this node's signer file");
    snprintf(ret->coordinator, sizeof(ret->coordinator), "%s", coordinator->name);
    if (strcmp(c->request->node, node) != 0)
        return refuse(ret, "the capsule is for node %s, not for this node (%s)", c->request->node,
                      node);
    r = check_time(c, now_ms, ret);
    if (r < 0)
        return r;
    r = check_approvals(c, signers, ret);
    if (r < 0)
        return r;
    ret->ok = true;
    return 0;
}

bool vg_capsule_policy_ok(const struct vg_capsule_verdict *verdict, enum vg_action_mode mode,
                          const char **why)
{
    const char *no = NULL;

    if (!verdict || !verdict->ok) {
        no = "the capsule did not verify";
    } else {
        switch (mode) {
        case VG_ACTION_MODE_AUTO:
            break;
        case VG_ACTION_MODE_APPROVE:
            if (verdict->approvals < 1)
                no = "the action needs an approval by a responder or an admin; the capsule "
                     "carries none";
            break;
        case VG_ACTION_MODE_DESTRUCTIVE:
            if (verdict->approvals < 2)
                no = "the action is destructive: it needs the approvals of two different "
                     "operators";
            else if (verdict->admin_approvals < 1)
                no = "the action is destructive: one of its approvers must be an admin";
            else if (!verdict->approver_not_requester)
                no = "the action is destructive: one of its approvers must not be the requester";
            break;
        default:
            no = "unknown action mode";
            break;
        }
    }
    if (no && why)
        *why = no;
    return no == NULL;
}
