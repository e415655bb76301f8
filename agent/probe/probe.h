/*
 * The contract between vigil-agent and a probe module (vigil-probe-http.so,
 * vigil-probe-postgres.so, vigil-probe-redis.so).
 *
 * Why modules: libcurl, libpq and hiredis pull in TLS, Kerberos and LDAP libraries that cost
 * several MiB of memory per process whether used or not. The agent dlopen()s a module only
 * when a probe of its kind is configured (agent/probes.c), so a node that watches no HTTP
 * target never maps libcurl.
 *
 * Threading: the agent runs every configured target on a thread of its own and calls the
 * module's functions for that target from that thread only, so one hanging target never
 * delays another or the agent's loop. A module keeps no global mutable state; all of it
 * lives in the per-target state returned by open().
 *
 * Every function is bounded by options->timeout_ms: a probe that cannot finish in time
 * reports the target down with reason "timeout" and returns. Every wait also watches
 * options->cancel_fd, so stopping the agent never waits for a timeout to run out: once it is
 * readable, a module gives up at once and returns without emitting.
 *
 * ABI 2 added probe_options.cancel_fd. ABI 3 added the kubernetes module's target fields
 * (probe_target_config.kubeconfig, .context, .namespaces) and the http module's
 * probe_target_config.statuspage: a module built for ABI 2 would read past the end of the
 * struct the agent hands it. ABI 4 added probe_module.evidence_kind (the kubernetes module's
 * k8s_* evidence kinds, which take arguments): the agent would read past the end of an ABI 3
 * module's struct.
 */
#ifndef AGENT_PROBE_H
#define AGENT_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROBE_ABI_VERSION 4
#define PROBE_MODULE_SYMBOL "vigil_probe_module" /* the exported struct probe_module */

/* A list of strings owned by the target's configuration: the layout of libvigil's struct
 * vg_cfg_strings, which the config loader fills (agent/probes.c checks that they agree). */
struct probe_strings {
    char **items;
    size_t count;
};

/* One configured target, as loaded from agent.yaml (collectors.<kind>.targets[]). Each kind
 * uses the fields it documents and ignores the rest. */
struct probe_target_config {
    char *name;            /* the `target` label of every sample */
    char *address;         /* http: URL; postgres: libpq conninfo; redis: host:port or a unix
                              socket path */
    char *password_file;   /* postgres, redis: password read from this file (first line) */
    char *password_env;    /* postgres, redis: or from this environment variable */
    int64_t expect_status; /* http: the status that counts as up; 0 = any 2xx or 3xx */
    bool tls_verify;       /* http: verify the peer certificate and host name */
    char *ca_file;         /* http: CA bundle for tls_verify; "" = the system's */
    char *kubeconfig;      /* kubernetes: a kubeconfig file; "" = the in-cluster ServiceAccount */
    char *context;         /* kubernetes: the kubeconfig's context; "" = its current-context */
    struct probe_strings namespaces; /* kubernetes: the namespaces watched (may be empty) */
    bool statuspage; /* http: the body is an Atlassian Statuspage v2 status.json or summary.json
                        to read (http.statuspage.*) */
};

/* Options common to every target of a kind (collectors.<kind>.*). */
struct probe_options {
    int64_t timeout_ms;        /* bound on one probe cycle or one evidence capture */
    int64_t long_running_ms;   /* postgres: a query older than this counts as long-running */
    size_t max_artifact_bytes; /* evidence captures stop (truncated) beyond this */
    int cancel_fd; /* set by the agent: readable (POLLIN) once it is stopping; poll it with the
                      target's socket and abandon the cycle when it fires. -1 = never */
};

struct probe_label {
    const char *key;
    const char *value;
};

/* Where a probe puts what it measured. The agent adds the label target=<name> to every
 * sample itself; labels passed here come after it. Names are "<kind>.<metric>"
 * (http.time_ms, pg.connections, redis.hit_rate); see README "Signals". */
struct probe_sink {
    void (*emit)(void *sink, const char *name, double value, const char *unit,
                 const struct probe_label *labels, size_t nlabels);
    void *sink;
};

/* Where an evidence artifact's bytes go (agent/evidence.c hashes and spools them); write
 * returns 0, or a negative errno to stop the capture. */
struct artifact_writer {
    int (*write)(void *w, const void *data, size_t len);
    void *w;
};

struct probe_module {
    uint32_t abi;     /* PROBE_ABI_VERSION */
    const char *kind; /* "http", "postgres", "redis", "kubernetes" */

    /* Validates the target and prepares its state; connects lazily, never here. NULL with
     * err set when the target is unusable (bad URL, unreadable password file). */
    void *(*open)(const struct probe_target_config *target, const struct probe_options *opt,
                  char *err, size_t errlen);

    /* One cycle: connect if needed, measure, emit. Always emits <kind>.up (1 or 0); when
     * down, also <kind>.error{reason} = 1 with a short reason ("refused", "timeout",
     * "tls", "auth", "status 503", ...). Never blocks beyond opt->timeout_ms. */
    void (*run)(void *state, const struct probe_sink *sink);

    /* Evidence (vigilctl collect KIND): writes a text artifact for the target. NULL when the
     * kind has no evidence. Returns 0, or a negative errno with err set. */
    int (*evidence)(void *state, const struct artifact_writer *out, char *err, size_t errlen);

    /* Evidence of a kind of the module's own that takes arguments (vigilctl collect k8s_logs
     * pod=NAME ...): kind is the evidence kind, args its arguments but target (names checked
     * against the kind's in common/wire.c; the values are the module's to check, as hostile
     * input). NULL when the module has none. Returns 0, or a negative errno with err set:
     * -EOPNOTSUPP for a kind it does not know, -EINVAL for a refused argument. */
    int (*evidence_kind)(void *state, const char *kind, const struct probe_label *args,
                         size_t nargs, const struct artifact_writer *out, char *err, size_t errlen);

    void (*close)(void *state);
};

#endif
