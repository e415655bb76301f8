/*
 * vigil-agent-action: the service actions (kinds postgres, redis and kubernetes) of the action
 * catalog, in a program of their own (docs/remediation.md, "Service actions").
 *
 * Why a program: libpq, hiredis and libcurl must never be mapped in a root process, and the
 * executor (vigil-agent-exec) is root. The executor checks a command exactly as for any other
 * kind (capsule, catalog, arguments), then runs this program as a job (agent/exec/job.h) that
 * dropped root to the agent's user:
 *
 *   vigil-agent-action KIND OP          (argv: for ps only; the request comes on stdin)
 *
 * Its stdin is the request: "key\0value\0" pairs, at most SVC_REQUEST_MAX bytes, written by the
 * executor from its own agent.yaml and the checked arguments. Nothing in it comes unchecked from
 * the network: arguments passed the catalog's types, everything else is the node owner's
 * configuration. Keys (each at most once):
 *
 *   kind, op, action        the catalog entry: kind postgres|redis|kubernetes, its op, its name
 *   timeout_ms              the action's timeout; every wait of the module is bounded by it
 *   arg.NAME                each checked argument, by parameter name
 *
 *   postgres, redis (the probe target the catalog entry names, collectors.<kind>.targets[]):
 *   target.name, target.address (libpq conninfo | host:port or unix socket path),
 *   target.password_file ("" = none; read by the module, as the agent's user, like the probe)
 *
 *   postgres op statement:  statement (the catalog's SQL, with $1..$N), bind.1 .. bind.N (the
 *                           arguments in the catalog's parameter order), bind.count
 *
 *   kubernetes:  kube.kubeconfig ("" = in-cluster), kube.context ("" = current-context),
 *                kube.server, kube.token_file, kube.ca_file (in-cluster: default
 *                https://kubernetes.default.svc and /var/run/secrets/kubernetes.io/
 *                serviceaccount/{token,ca.crt}); in-cluster, kube.token and kube.ca_pem: the
 *                token and CA themselves, read by the executor as root (the token is root's
 *                only: the agent's network side, the same user as this program, must not
 *                hold the cluster's rights). This program is undumpable before it reads them.
 *
 * What a module writes to out (stdout, which is the command's output: it reaches the vault with
 * its SHA-256) is its account of the run, for the investigator: what it read before, what it
 * sent, what it read after. Exit status: 0 done; 1 the service refused or failed (the reason on
 * stderr, which is the same pipe); 2 a bad request (a key missing: the executor's bug, never the
 * operator's); 3 cannot reach the service (connection, TLS, timeout).
 */
#ifndef AGENT_ACTION_SVC_H
#define AGENT_ACTION_SVC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SVC_REQUEST_MAX 65536
#define SVC_REQUEST_KEYS_MAX 128

enum svc_exit {
    SVC_EXIT_OK = 0,
    SVC_EXIT_FAILED = 1,
    SVC_EXIT_BAD_REQUEST = 2,
    SVC_EXIT_UNREACHABLE = 3,
};

struct svc_kv {
    const char *key;
    const char *value;
};

struct svc_request {
    const struct svc_kv *items;
    size_t n;
};

/* The value of key, or NULL when the request has none. */
const char *svc_get(const struct svc_request *r, const char *key);
/* The value of key, or fallback when absent. */
const char *svc_get_or(const struct svc_request *r, const char *key, const char *fallback);

/*
 * Parses buf (len bytes of "key\0value\0" pairs) into items (at most max; keys point into buf).
 * 0 with *ret_n set; -EINVAL for a malformed request (an odd number of strings, no final NUL,
 * an empty or repeated key, too many keys).
 */
int svc_request_parse(const char *buf, size_t len, struct svc_kv *items, size_t max, size_t *ret_n);

/* The request's timeout_ms: every module's bound on its whole run (1 ms to a day). SVC_EXIT_OK
 * with *ret_ms set, or SVC_EXIT_BAD_REQUEST with one sentence in err. */
#define SVC_TIMEOUT_MAX_MS (24LL * 3600 * 1000)
int svc_timeout_ms(const struct svc_request *r, int64_t *ret_ms, char *err, size_t errlen);

/* Each module: runs request r (kind is its own), writes its account to out, returns an
 * enum svc_exit value with one sentence in err when not SVC_EXIT_OK. */
int svc_postgres_run(const struct svc_request *r, FILE *out, char *err, size_t errlen);
int svc_redis_run(const struct svc_request *r, FILE *out, char *err, size_t errlen);
int svc_kube_run(const struct svc_request *r, FILE *out, char *err, size_t errlen);

#endif
