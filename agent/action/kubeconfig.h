/*
 * The credentials vigil-agent-action's kubernetes module talks to the API server with: the
 * ServiceAccount the cluster agent runs as (in-cluster), or one context of a kubeconfig file.
 *
 * In-cluster: server (default https://kubernetes.default.svc), the bearer token and the CA
 * bundle. The executor reads both as root and passes them in the request (token, ca_pem): the
 * ServiceAccount's token is root's only, so the agent's network side, which runs as the same
 * user as this program, never holds the cluster's rights. Without them (a node where the executor
 * could not read them), token_file (default /var/run/secrets/kubernetes.io/serviceaccount/token;
 * read on every run, as the kubelet rotates it) and ca_file (default .../serviceaccount/ca.crt)
 * are read here.
 *
 * Kubeconfig: the context named (or current-context), its cluster's server, certificate-authority
 * (a path) or certificate-authority-data (base64 PEM), its user's token or tokenFile (tokenFile
 * wins, as in client-go) and client-certificate / client-key (paths) or their -data forms.
 * Relative paths are relative to the kubeconfig's directory, as kubectl reads them. Refused, each
 * with the reason: insecure-skip-tls-verify (the server's certificate is always verified), a
 * server that is not https, and credentials that need a program or a plugin to obtain (exec,
 * auth-provider) or a password (basic auth): the action runs nothing else and asks nobody.
 *
 * No file mode is checked: Kubernetes mounts ServiceAccount tokens and Secret volumes 0644 by
 * default, and refusing them would refuse every ordinary cluster agent.
 */
#ifndef AGENT_ACTION_KUBECONFIG_H
#define AGENT_ACTION_KUBECONFIG_H

#include <stddef.h>

#define KUBE_DEFAULT_SERVER "https://kubernetes.default.svc"
#define KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define KUBE_DEFAULT_TOKEN_FILE KUBE_SA_DIR "/token"
#define KUBE_DEFAULT_CA_FILE KUBE_SA_DIR "/ca.crt"

/* Bytes given to libcurl as a blob (PEM), owned by the creds. */
struct kube_blob {
    unsigned char *data;
    size_t len;
};

struct kube_creds {
    char *server;  /* https://host[:port][/prefix], without a trailing slash */
    char *ca_file; /* a CA bundle path, or NULL (then ca, or the system's store) */
    struct kube_blob ca;
    char *token;     /* the bearer token, or NULL */
    char *cert_file; /* client certificate path, or NULL (then cert, or none) */
    char *key_file;  /* client key path, or NULL (then key, or none) */
    struct kube_blob cert;
    struct kube_blob key;
};

/* What the request names (svc.h, kube.*): kubeconfig NULL or "" for in-cluster; context NULL or
 * "" for current-context; server, token_file, ca_file NULL or "" for the in-cluster defaults. */
struct kube_source {
    const char *kubeconfig;
    const char *context;
    const char *server;
    const char *token_file;
    const char *ca_file;
    const char *token;  /* in-cluster: the token itself, read by the executor; NULL or "" = none */
    const char *ca_pem; /* in-cluster: the CA bundle itself (PEM); NULL or "" = none */
};

/*
 * Loads the credentials src names into *ret (zeroed first; kube_creds_clear it after a success).
 * 0 on success; a negative errno with one sentence in err otherwise (-EINVAL for a kubeconfig
 * that is malformed or asks for something refused, -ENOENT for a context, cluster or user it does
 * not hold, or the error of the file that could not be read).
 */
int kube_creds_load(const struct kube_source *src, struct kube_creds *ret, char *err,
                    size_t errlen);

/* Frees what c holds (secrets wiped first) and zeroes it. Accepts a zeroed struct. */
void kube_creds_clear(struct kube_creds *c);

#endif
