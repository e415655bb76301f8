/* agent.yaml: every key, its type, bounds and default, in one table (agent_config.c). */
#ifndef AGENT_CONFIG_H
#define AGENT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actions.h"
#include "config.h"
#include "logtail.h"
#include "probes.h"
#include "procwatch.h"
#include "signers.h"

struct agent_config {
    char *node; /* "" = the NODE_NAME environment variable, else this host's name */
    char *state_dir;
    char *executor_state_dir; /* "" = state_dir + "-exec": the executor's, out of the agent's reach */
    char *user;
    bool allow_root;
    char *executor_path; /* "" = vigil-agent-exec next to the vigil-agent binary */
    char *action_path;   /* "" = vigil-agent-action next to the executor */
    char *role;          /* "node" or "cluster" (agent_config_is_cluster) */
    /* role cluster: where kubernetes actions reach the API server (agent/action/svc.h) */
    char *kube_kubeconfig, *kube_context, *kube_server, *kube_token_file, *kube_ca_file;
    char *coordinator_endpoint;
    char *coordinator_public_key; /* from coordinator.public_key_file when that is set */
    char *coordinator_public_key_file;
    char *enrollment_token;       /* 64 hex digits, or "" */
    char *enrollment_secret_file; /* compute the token from the cluster secret, or "" */
    int64_t heartbeat_interval_ms;
    int64_t self_signals_interval_ms;
    int64_t batch_interval_ms;
    int64_t host_interval_ms;
    int64_t netstat_interval_ms;
    int64_t processes_interval_ms;
    struct vg_cfg_list processes_watch; /* of struct procwatch_config */
    int64_t logs_interval_ms;
    int64_t logs_window_ms;
    int64_t logs_max_line_bytes;
    int64_t logs_max_read_bytes;
    struct vg_cfg_list logs_files; /* of struct logtail_file_config */
    char *pod_logs_dir;            /* kubernetes.pod_logs_dir: pods named, pod logs found */
    char *container_logs_dir;      /* kubernetes.container_logs_dir: containers named */
    /* Probes, in probes_kind_config order: http, postgres, redis, kubernetes. */
    struct probe_kind_settings {
        int64_t interval_ms;
        int64_t timeout_ms;
        int64_t long_running_ms;    /* postgres only */
        struct vg_cfg_list targets; /* of struct probe_target_config */
    } http, postgres, redis, kubernetes;
    char *probe_dir;               /* "" = next to the vigil-agent binary */
    struct vg_cfg_list thresholds; /* of struct threshold_config */
    struct vg_cfg_strings evidence_allow_dirs;
    int64_t evidence_max_bytes;
    int64_t evidence_chunk_bytes;
    bool flight_enabled; /* flight_recorder.*: the in-memory ring of snapshots (flight.h) */
    int64_t flight_interval_ms;
    int64_t flight_window_ms;
    int64_t flight_max_bytes;
    int64_t spool_max_bytes;
    int64_t spool_segment_bytes;
    bool spool_fsync;
    int64_t link_max_inflight;
    int64_t link_ack_timeout_ms;
    int64_t link_reconnect_min_ms;
    int64_t link_reconnect_max_ms;
    char *log_level;
    struct vg_cfg_list actions; /* of struct action_config (actions.h), as written */
    actions_t *catalog;         /* the checked catalog built from actions; empty when none */
    char *signers_file;         /* "" = none: remediation disabled */
    struct signers *signers;    /* NULL: no signers_file, or no file there (remediation
                                   disabled); otherwise the keys this node accepts */
};

/* thresholds[]: overrides or adds to the runbook's alert table (agent/main.c). */
struct threshold_config {
    char *signal;
    double warning;
    double critical;
    double clear;
    bool below;
};

extern const struct vg_cfg_key agent_config_keys[];
extern const size_t agent_config_nkeys;

/* Loads and cross-checks. 0 or negative errno with err set. */
int agent_config_load(const char *path, struct agent_config *cfg, char *err, size_t errlen);

/* What the executor needs and checks itself (agent/exec/): every key read and typed, state_dir,
 * the action catalog, the signer file and the node name — but not the checks of what only the
 * network side uses (CURVE key, enrollment, link, evidence sizes), so the executor links no
 * ZeroMQ. agent_config_load does this first. 0 or negative errno with err set; free with
 * agent_config_free either way. */
int agent_config_load_remediation(const char *path, struct agent_config *cfg, char *err,
                                  size_t errlen);
void agent_config_free(struct agent_config *cfg);

/* role: cluster (the one agent that may hold kubernetes actions). */
bool agent_config_is_cluster(const struct agent_config *cfg);

#endif
