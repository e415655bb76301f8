/*
 * The node's signer file: the Ed25519 public keys this node accepts on commands, the root of
 * trust for remediation (docs/remediation.md, "The signer file").
 *
 *   signers:
 *     - {name: coordinator, role: coordinator, public_key: "<base64 of 32 bytes>"}
 *     - {name: alice, role: admin, public_key: "..."}
 *     - {name: bob, role: responder, public_key: "..."}
 *
 * The file is local and root's alone: nothing the coordinator sends can add a key. It must be a
 * regular file owned by root and not writable by group or others (readable by all is fine: it
 * holds public keys only); on Kubernetes a ConfigMap the cluster admin manages. Every signer has
 * exactly the three keys above (unknown keys are refused), a unique name (at most
 * SIGNER_NAME_MAX characters of a-z, A-Z, 0-9, "_", ".", "@", "-"), a role — coordinator (signs
 * capsules), responder (approves `approve` actions) or admin (approves anything) — and a key
 * that is the canonical base64 of exactly 32 bytes (vg_sign_public_parse). A key may appear once.
 * Errors name the place: "signers.yaml:4:18: signer \"alice\": ...".
 *
 * agent.yaml's signers_file names the file (default /etc/vigil/signers.yaml); an empty value,
 * or no file there, means no signers: remediation is disabled on the node.
 *
 * A loaded set is read-only: share it between threads freely.
 */
#ifndef AGENT_SIGNERS_H
#define AGENT_SIGNERS_H

#include <stdbool.h>
#include <stddef.h>

#include "capsule.h"
#include "sign.h"

#define SIGNERS_MAX 256
#define SIGNER_NAME_MAX 64
#define SIGNERS_FILE_DEFAULT "/etc/vigil/signers.yaml"

struct signer {
    char *name;
    enum vg_signer_role role; /* VG_SIGNER_COORDINATOR, _RESPONDER or _ADMIN */
    unsigned char public_key[VG_SIGN_PUBLIC_LEN];
};

struct signers;

/*
 * Checks path (cfgcheck_root_owned), loads it and checks every signer. 0 with *ret set (an empty
 * list is valid: no signers); otherwise a negative errno with err set and *ret untouched:
 * -ENOENT when the file does not exist, -EPERM for its owner or mode, -EINVAL for its content.
 */
int signers_load(const char *path, struct signers **ret, char *err, size_t errlen);
void signers_destroy(struct signers **self_p);

/* Iteration: signers_get(s, i) for i below signers_count(s), in file order. */
size_t signers_count(const struct signers *self);
const struct signer *signers_get(const struct signers *self, size_t i);

/* The signer holding key, or NULL. */
const struct signer *signers_find_key(const struct signers *self,
                                      const unsigned char key[VG_SIGN_PUBLIC_LEN]);
/* The signer named name, or NULL. */
const struct signer *signers_find_name(const struct signers *self, const char *name);

#endif
