/*
 * The manifest of an incident's export bundle (docs/forensics.md, "Export bundles").
 *
 * `vigilctl evidence export` writes a tar with one top directory (incident-<ID>/) holding the
 * incident's artifacts, its timeline, its commands, the rows its chains link, a checkpoint issued
 * for the export, README.txt, verify.sh, coordinator.pem, and two files that make the rest
 * checkable offline: MANIFEST, signed by the coordinator's Ed25519 key into MANIFEST.sig (the 64
 * raw signature bytes, `openssl pkeyutl -verify -rawin` checks them).
 *
 * MANIFEST is text, every line ending in '\n', in this order; `sha256sum --strict -c MANIFEST`
 * reads it as it is (GNU sha256sum skips the lines that start with '#'):
 *
 *     # vigil-bundle-v1
 *     # incident: 42
 *     # exported_at_ms: 1765012345678
 *     # exported_by: operator:alice
 *     # signing_public_key: <base64 of 32 bytes, 44 characters>
 *     # link evidence 12 12 <prev> <chain> artifacts/12-host-node-a chains/evidence/12.meta
 *     # link timeline 230 1043 <prev> <link> chains/timeline/230.row
 *     # link reports 5 5 <prev> <link> chains/reports/5.row
 *     <sha256 hex>  README.txt
 *     ...
 *
 * A link line is one row a chain covers: the chain's name, the row's place in its chain (the
 * vault's row id; chain_links.seq for the others), the row's id, the link before it and its own.
 * For the vault the link is chain = SHA-256(prev ‖ SHA-256(artifact file) ‖ meta file) (the meta
 * file holds the metadata exactly as the vault hashed it); for the others link =
 * SHA-256(prev ‖ row file) (the row file is the canonical row of 024_chains.sql). Every file a
 * link line names is listed with its hash. Every file of the bundle but MANIFEST and
 * MANIFEST.sig is listed exactly once.
 *
 * Everything parsed here comes from a file someone handed over: sizes and counts are bounded, a
 * path is [A-Za-z0-9._-] components joined by '/', never absolute, never ".." or ".".
 */
#ifndef VG_BUNDLE_H
#define VG_BUNDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "checkpoint.h"
#include "sign.h"

#define VG_BUNDLE_MAGIC "vigil-bundle-v1"
#define VG_BUNDLE_MANIFEST "MANIFEST"
#define VG_BUNDLE_SIGNATURE "MANIFEST.sig"
#define VG_BUNDLE_CHECKPOINT "checkpoint.txt"
#define VG_BUNDLE_PUBLIC_PEM "coordinator.pem"
#define VG_BUNDLE_MANIFEST_MAX (16 * 1024 * 1024) /* bytes */
#define VG_BUNDLE_FILES_MAX 100000                /* files a manifest lists */
#define VG_BUNDLE_PATH_MAX 200                    /* bytes of a path inside the bundle */
#define VG_BUNDLE_ACTOR_MAX 159                   /* bytes of exported_by */

struct vg_bundle_file {
    char *path;
    uint8_t sha256[32];
};

struct vg_bundle_link {
    enum vg_chain chain; /* VG_CHAIN_EVIDENCE, VG_CHAIN_TIMELINE or VG_CHAIN_REPORTS */
    uint64_t place;      /* the vault's row id; the others' chain_links.seq */
    uint64_t row_id;
    uint8_t prev[32], link[32];
    const char *file; /* the artifact or the canonical row: a path of files[] (borrowed) */
    const char *meta; /* the vault's metadata file (files[]); NULL for the other chains */
};

struct vg_bundle_manifest {
    uint64_t incident_id;
    int64_t exported_at_ms;
    char exported_by[VG_BUNDLE_ACTOR_MAX + 1];
    unsigned char signing_public_key[VG_SIGN_PUBLIC_LEN];
    char signing_public_b64[VG_SIGN_PUBLIC_B64_LEN + 1];
    struct vg_bundle_file *files; /* sorted by path (bytewise) */
    size_t nfiles;
    struct vg_bundle_link *links; /* in the manifest's order */
    size_t nlinks;
};

/* Whether path (len bytes) may name a file inside a bundle (see above). */
bool vg_bundle_path_ok(const char *path, size_t len);

/*
 * Parses MANIFEST (len bytes, not necessarily NUL-terminated). 0 with *ret owned by the caller
 * (vg_bundle_manifest_destroy); -EINVAL with err naming the line and what is wrong; -ENOMEM.
 * The signature is not checked here (vg_bundle_manifest_verify).
 */
int vg_bundle_manifest_parse(const char *text, size_t len, struct vg_bundle_manifest **ret,
                             char *err, size_t errlen);
void vg_bundle_manifest_destroy(struct vg_bundle_manifest **self_p);

/* The key a manifest names on its header line (before anything else is parsed, so that a
 * manifest changed anywhere is reported as a bad signature). 0 or -EINVAL. */
int vg_bundle_manifest_key(const char *text, size_t len, unsigned char ret[VG_SIGN_PUBLIC_LEN]);

/* Whether sig (64 bytes) is the Ed25519 signature of text by the key the manifest names. */
bool vg_bundle_manifest_verify(const struct vg_bundle_manifest *m, const char *text, size_t len,
                               const unsigned char *sig, size_t siglen);

/* qsort order of links: by chain, then place. */
int vg_bundle_link_compare(const void *a, const void *b);

/* The listed file with this path, or NULL. */
const struct vg_bundle_file *vg_bundle_manifest_file(const struct vg_bundle_manifest *m,
                                                     const char *path);

/* The SubjectPublicKeyInfo PEM of an Ed25519 key, as openssl writes it (three lines). */
#define VG_BUNDLE_PEM_LEN 114 /* with its NUL */
void vg_bundle_public_pem(const unsigned char key[VG_SIGN_PUBLIC_LEN], char out[VG_BUNDLE_PEM_LEN]);

#endif
