/*
 * What the kubernetes module (svc_kube.c) decides without talking to anyone: which fields of an
 * object the API server sent it shows in its account, the CIDR arithmetic of block and unblock,
 * and the NetworkPolicy patch those two ops write. Everything here is a pure function of the JSON
 * it is given (jansson values, as json_loadb made them from the API server's answer), so unit
 * tests and fuzz targets run it without a server.
 *
 * Nothing here trusts the JSON: any field may be missing, null or of another type than the
 * Kubernetes API says, and every function copes (it finds nothing there) rather than asserts.
 *
 * The block/unblock edit: spec.ingress is a list without a merge key, so a strategic merge patch
 * replaces it whole. Block adds the CIDR to the except list of every ipBlock whose cidr holds it
 * (an except must be a strict subset of its ipBlock's cidr, or the API server refuses the
 * policy); unblock removes it from every except list that names it. The patch also carries the
 * annotation vigil.dev/blocked (the comma-separated CIDRs Vigil blocked, in the order blocked)
 * and the resourceVersion read, so that a change made between the read and the write fails with
 * 409 instead of being lost.
 */
#ifndef AGENT_ACTION_KUBE_POLICY_H
#define AGENT_ACTION_KUBE_POLICY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define KUBE_BLOCKED_ANNOTATION "vigil.dev/blocked"
#define KUBE_RESTARTED_AT "kubectl.kubernetes.io/restartedAt"

/* The ops of svc_kube.c, for kube_fields. */
enum kube_op {
    KUBE_OP_RESTART,
    KUBE_OP_SCALE,
    KUBE_OP_SET_ENV,
    KUBE_OP_SET_RESOURCES,
    KUBE_OP_BLOCK,
    KUBE_OP_UNBLOCK,
    KUBE_OP_ISOLATE_POD,
    KUBE_OP_RELEASE_POD,
    KUBE_OP_COUNT
};

/* The value at the path keys (NULL-terminated) under v, or NULL (borrowed).
 * KUBE_AT(v, "spec", "replicas"). */
json_t *kube_at(json_t *v, const char *const *keys);
#define KUBE_AT(v, ...) kube_at((v), (const char *const[]){__VA_ARGS__, NULL})

/* The container called name in a deployment (borrowed), or NULL. When names is not NULL it gets
 * the names of the containers there are, comma-separated and cut to nameslen, for a message. */
json_t *kube_container(json_t *deployment, const char *name, char *names, size_t nameslen);

/* The env entry called name in a container (borrowed), or NULL. */
json_t *kube_env_entry(json_t *container, const char *name);

/*
 * The fields op touches in obj (what it read before its write, or the API server's answer to
 * it), as the account's "before:" and "after:" lines show them. A new reference; json null when
 * obj has none of them; NULL only when out of memory.
 *
 *   restart            {"kubectl.kubernetes.io/restartedAt": the pod template's annotation}
 *   scale              {"replicas": spec.replicas}
 *   set-env            the env entry called variable of the container called container
 *   set-resources      that container's resources
 *   block, unblock     spec.ingress
 *   isolate-pod, release-pod   metadata.labels
 */
json_t *kube_fields(enum kube_op op, json_t *obj, const char *container, const char *variable);

/* An IPv4 or IPv6 range; addr holds no bits past prefix. */
struct kube_cidr {
    int family; /* AF_INET, AF_INET6 */
    unsigned char addr[16];
    unsigned prefix;
};

/* Room for the text of a CIDR: the longest IPv6 address (45), "/128" and the NUL, rounded up. */
#define KUBE_CIDR_TEXT_MAX 56

/*
 * "a.b.c.d/n", "x::/n" or a bare address (a host: /32, /128) into *ret. 0; -EINVAL when text is
 * none of these; -EDOM, with strict only, when it has address bits set past its prefix (which a
 * NetworkPolicy refuses). Without strict such bits are cleared. *ret untouched on failure.
 */
int kube_cidr_parse(const char *text, bool strict, struct kube_cidr *ret);

/* c as text ("10.0.0.0/24", "2001:db8::/64"): the one spelling Vigil writes. */
void kube_cidr_format(const struct kube_cidr *c, char *buf, size_t buflen);

/* True when every address of inner is in outer (never across families). */
bool kube_cidr_contains(const struct kube_cidr *outer, const struct kube_cidr *inner);

/*
 * The strategic merge patch that blocks (block true) or unblocks target in policy, the
 * NetworkPolicy ns/name as read (ns and name are for msg only):
 *
 *   {"metadata": {"annotations": {"vigil.dev/blocked": list or null}, "resourceVersion": read},
 *    "spec": {"ingress": [the whole new ingress]}}
 *
 * 0 with the patch in *ret_patch (the caller's to json_decref); 0 with *ret_patch NULL when there
 * is nothing to write (already blocked / not blocked), one line in msg saying so. Refused, with
 * the sentence in msg: -EDOM (block) when an ipBlock's cidr is exactly target, which an except
 * cannot cover; -ENOENT (block) when no ipBlock holds target; -EINVAL (block) when an ipBlock
 * that holds target has an except that is not a list. -ENOMEM. policy is not changed.
 */
int kube_policy_edit(json_t *policy, const struct kube_cidr *target, bool block, const char *ns,
                     const char *name, json_t **ret_patch, char *msg, size_t msglen);

#endif
