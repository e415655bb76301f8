/*
 * Signed checkpoints of the evidence vault's and the other chains' heads (docs/forensics.md,
 * "Checkpoints").
 *
 * The vault's rows, the audit log, the timelines and the command reports are hash-chained, so a
 * row changed in place breaks its chain; deleting the newest rows, or rewriting every row from
 * some point on, does not. A checkpoint is the coordinator's Ed25519 signature over every
 * chain's head at a time, kept outside the database (files under state_dir/checkpoints/, and
 * wherever an operator copies `vigilctl evidence checkpoint`): a chain that no longer holds its
 * head with that hash is caught by `vigilctl evidence verify --checkpoint FILE`.
 *
 * The text, every line ending in '\n':
 *     vigil-checkpoint-v1
 *     issued_at_ms: 1765012345678
 *     evidence_head: 42            the vault's newest row id (0: empty)
 *     evidence_hash: <64 lowercase hex digits>      its chain hash (zeros when empty)
 *     audit_head: 17               then the audit log's, the timelines' and the command
 *     audit_hash: <hex>            reports' chains (024_chains.sql): their newest row's
 *     timeline_head: 230           place in the chain (chain_seq) and its link
 *     timeline_hash: <hex>
 *     reports_head: 0
 *     reports_hash: <hex>
 *     signing_public_key: <base64, 44 characters>
 *     signature: <base64, 88 characters>
 * The signature covers the first eleven lines exactly as written, newlines included, so
 * `head -n 11 FILE` is the signed message for any Ed25519 tool (docs/forensics.md shows the
 * openssl commands). Nothing else may be in the file.
 */
#ifndef VG_CHECKPOINT_H
#define VG_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "sign.h"

#define VG_CHECKPOINT_MAX_LEN 1024 /* a well-formed checkpoint is about 700 bytes */

/* The chains a checkpoint vouches for, in the file's order. */
enum vg_chain { VG_CHAIN_EVIDENCE, VG_CHAIN_AUDIT, VG_CHAIN_TIMELINE, VG_CHAIN_REPORTS, VG_CHAINS };

struct vg_chain_head {
    uint64_t head;    /* evidence: the row id; the others: chain_seq. 0 = an empty chain */
    uint8_t hash[32]; /* its chain hash or link; zeros for an empty chain */
};

struct vg_checkpoint {
    int64_t issued_at_ms;
    struct vg_chain_head chains[VG_CHAINS];
    unsigned char signing_public_key[VG_SIGN_PUBLIC_LEN];
};

/* "evidence", "audit", "timeline", "reports": the lines' prefixes. */
const char *vg_chain_name(enum vg_chain chain);

/* The checkpoint's text, signed with k (cp->signing_public_key is taken from k): a string of
 * at most VG_CHECKPOINT_MAX_LEN bytes into out. 0, or -ENOSPC. */
int vg_checkpoint_format(const struct vg_checkpoint *cp, const struct vg_signing_key *k, char *out,
                         size_t outlen);

/*
 * Parses text (len bytes, not necessarily NUL-terminated) and checks the signature against the
 * key the text names. 0; -EINVAL with err naming the line and what is wrong; -EBADMSG when the
 * signature does not verify (the text was changed, or not signed by that key). The caller
 * decides whether the key is one it trusts.
 */
int vg_checkpoint_parse(const char *text, size_t len, struct vg_checkpoint *ret, char *err,
                        size_t errlen);

#endif
