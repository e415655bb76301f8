#include "agent_config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keys.h"
#include "spool.h"
#include "log.h"
#include "token.h"

#define KEY(path_, type_, field_, min_, max_, def_, help_)                                         \
    {                                                                                              \
        .path = (path_), .type = (type_), .offset = offsetof(struct agent_config, field_),         \
        .min = (min_), .max = (max_), .def = (def_), .help = (help_)                               \
    }

#define LIST(path_, field_, sub_, elem_, max_, help_)                                              \
    {                                                                                              \
        .path = (path_), .type = VG_CFG_LIST, .offset = offsetof(struct agent_config, field_),     \
        .max = (max_), .help = (help_), .sub = (sub_), .nsub_ref = &sub_##_count,                  \
        .elem_size = sizeof(elem_)                                                                 \
    }

#define SEC_MS 1000LL
#define HOUR_MS (3600LL * SEC_MS)
#define MIB (1024LL * 1024)
#define EVIDENCE_DEFAULT_MAX (32 * MIB)
/* What an evidence chunk's message adds to its data: the envelope and the chunk's ids, kind and
 * arguments, bounded by the wire's limits with room to spare. */
#define EVIDENCE_CHUNK_OVERHEAD 8192

static const struct vg_cfg_key threshold_keys[] = {
    {.path = "signal",
     .type = VG_CFG_STRING,
     .offset = offsetof(struct threshold_config, signal),
     .max = 128,
     .required = true,
     .help = "signal name, e.g. host.cpu.busy_pct"},
    {.path = "warning",
     .type = VG_CFG_NUMBER,
     .offset = offsetof(struct threshold_config, warning),
     .required = true,
     .help = "warning level, in the signal's unit"},
    {.path = "critical",
     .type = VG_CFG_NUMBER,
     .offset = offsetof(struct threshold_config, critical),
     .required = true,
     .help = "critical level"},
    {.path = "clear",
     .type = VG_CFG_NUMBER,
     .offset = offsetof(struct threshold_config, clear),
     .def = "0",
     .help = "hysteresis: a state clears this far back past its level"},
    {.path = "below",
     .type = VG_CFG_BOOL,
     .offset = offsetof(struct threshold_config, below),
     .def = "false",
     .help = "lower is worse (a hit rate, days to certificate expiry)"},
};

/* The list element tables live with their modules; these names give LIST their sizes. */
static const size_t threshold_keys_count = sizeof(threshold_keys) / sizeof(threshold_keys[0]);
#define procwatch_keys_count procwatch_nkeys
#define logtail_file_keys_count logtail_file_nkeys
#define probe_http_target_keys_count probe_http_target_nkeys
#define probe_postgres_target_keys_count probe_postgres_target_nkeys
#define probe_redis_target_keys_count probe_redis_target_nkeys
#define probe_kubernetes_target_keys_count probe_kubernetes_target_nkeys
#define action_keys_count action_nkeys

const struct vg_cfg_key agent_config_keys[] = {
    KEY("node", VG_CFG_STRING, node, 0, 128, "",
        "node name; empty = the NODE_NAME environment variable, else this host's name"),
    KEY("state_dir", VG_CFG_STRING, state_dir, 0, 0, "/var/lib/vigil-agent",
        "key pair and spool live here"),
    KEY("executor_state_dir", VG_CFG_STRING, executor_state_dir, 0, 0, "",
        "the executor's own directory (its replay cache); empty = state_dir + \"-exec\"; must not "
        "be writable by the agent's user"),
    KEY("user", VG_CFG_STRING, user, 0, 64, "",
        "user the network-facing process runs as when started as root"),
    KEY("allow_root", VG_CFG_BOOL, allow_root, 0, 0, "false",
        "permit running everything as root when no user is set (not recommended)"),
    KEY("executor_path", VG_CFG_STRING, executor_path, 0, 0, "",
        "the privileged executor; empty = vigil-agent-exec next to vigil-agent"),
    KEY("action_path", VG_CFG_STRING, action_path, 0, 0, "",
        "the program that runs postgres, redis and kubernetes actions as the agent's user; "
        "empty = vigil-agent-action next to vigil-agent-exec"),
    KEY("role", VG_CFG_STRING, role, 0, 16, "node",
        "node: watches this node (a DaemonSet pod); cluster: the one agent that may hold "
        "kubernetes actions (its own Deployment and ServiceAccount)"),
    KEY("coordinator.endpoint", VG_CFG_STRING, coordinator_endpoint, 0, 256, "tcp://127.0.0.1:7400",
        "the coordinator's agents endpoint"),
    KEY("coordinator.public_key", VG_CFG_STRING, coordinator_public_key, 0, 40, "",
        "the coordinator's Z85 CURVE public key (this or public_key_file is required)"),
    KEY("coordinator.public_key_file", VG_CFG_STRING, coordinator_public_key_file, 0, 0, "",
        "file holding the coordinator's public key (a Kubernetes Secret, say) instead"),
    KEY("enrollment.token", VG_CFG_STRING, enrollment_token, 0, 64, "",
        "bootstrap token (vigilctl token) for this agent's key"),
    KEY("enrollment.secret_file", VG_CFG_STRING, enrollment_secret_file, 0, 0, "",
        "file with the cluster's enrollment secret; the agent computes its own token"),
    KEY("heartbeat_interval", VG_CFG_DURATION_MS, heartbeat_interval_ms, 100, HOUR_MS, "5s",
        "how often to send a heartbeat (the coordinator's value wins once enrolled)"),
    KEY("self_signals_interval", VG_CFG_DURATION_MS, self_signals_interval_ms, 10, HOUR_MS, "10s",
        "how often to send the agent's own health as signals"),
    KEY("batch_interval", VG_CFG_DURATION_MS, batch_interval_ms, 0, HOUR_MS, "5s",
        "samples are sent together at most this long after the first (a threshold crossing "
        "is sent at once); 0 = every collection is sent on its own"),
    KEY("collectors.host.interval", VG_CFG_DURATION_MS, host_interval_ms, 0, HOUR_MS, "10s",
        "CPU, memory, load, disks, network, OOM kills; 0 = off"),
    KEY("collectors.netstat.interval", VG_CFG_DURATION_MS, netstat_interval_ms, 0, HOUR_MS, "10s",
        "socket counts by state, listeners and their processes, top talkers; 0 = off"),
    KEY("collectors.processes.interval", VG_CFG_DURATION_MS, processes_interval_ms, 0, HOUR_MS,
        "10s", "watched processes: up, restarts, memory, CPU; exits are seen at once; 0 = off"),
    LIST("collectors.processes.watch", processes_watch, procwatch_keys, struct procwatch_config, 64,
         "processes to watch: {name, comm | pidfile | unit}"),
    KEY("collectors.logs.interval", VG_CFG_DURATION_MS, logs_interval_ms, 0, HOUR_MS, "10s",
        "how often configured logs are read; 0 = off"),
    KEY("collectors.logs.window", VG_CFG_DURATION_MS, logs_window_ms, SEC_MS, HOUR_MS, "60s",
        "log counts and rates cover this window"),
    KEY("collectors.logs.max_line", VG_CFG_SIZE, logs_max_line_bytes, 256, 64 * MIB, "16KiB",
        "longer lines are counted as too_long and skipped"),
    KEY("collectors.logs.max_read", VG_CFG_SIZE, logs_max_read_bytes, 64 * 1024, 1024 * MIB, "4MiB",
        "bytes read per file per run at most (the rest next run)"),
    LIST("collectors.logs.files", logs_files, logtail_file_keys, struct logtail_file_config, 64,
         "logs to follow: {name, path (glob) or namespace + pod (+ container) patterns, "
         "format: plain | access | auth, patterns}"),
    KEY("kubernetes.pod_logs_dir", VG_CFG_STRING, pod_logs_dir, 0, 0, "/var/log/pods",
        "the kubelet's pod log directories (<namespace>_<pod>_<uid>/<container>/N.log): they "
        "name the pods of processes and sockets, and hold the logs `pod:` entries follow"),
    KEY("kubernetes.container_logs_dir", VG_CFG_STRING, container_logs_dir, 0, 0,
        "/var/log/containers",
        "the kubelet's container log links (<pod>_<namespace>_<container>-<id>.log), whose names "
        "tell a container id's container; only names are read"),
    KEY("kubernetes.kubeconfig", VG_CFG_STRING, kube_kubeconfig, 0, 0, "",
        "role cluster: the kubeconfig kubernetes actions use; empty = the in-cluster "
        "ServiceAccount"),
    KEY("kubernetes.context", VG_CFG_STRING, kube_context, 0, 256, "",
        "role cluster: the kubeconfig's context; empty = its current-context"),
    KEY("kubernetes.server", VG_CFG_STRING, kube_server, 0, 512, "",
        "role cluster, in-cluster: the API server; empty = https://kubernetes.default.svc"),
    KEY("kubernetes.token_file", VG_CFG_STRING, kube_token_file, 0, 0, "",
        "role cluster, in-cluster: the ServiceAccount token; empty = "
        "/var/run/secrets/kubernetes.io/serviceaccount/token"),
    KEY("kubernetes.ca_file", VG_CFG_STRING, kube_ca_file, 0, 0, "",
        "role cluster, in-cluster: the API server's CA; empty = "
        "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"),
    KEY("collectors.http.interval", VG_CFG_DURATION_MS, http.interval_ms, 0, HOUR_MS, "10s",
        "HTTP checks; 0 = off"),
    KEY("collectors.http.timeout", VG_CFG_DURATION_MS, http.timeout_ms, 100, 10 * 60 * SEC_MS,
        "10s", "one check's bound; a slower target is down with reason timeout"),
    LIST("collectors.http.targets", http.targets, probe_http_target_keys,
         struct probe_target_config, 64, "{name, url, expect_status, tls_verify, ca_file}"),
    KEY("collectors.postgres.interval", VG_CFG_DURATION_MS, postgres.interval_ms, 0, HOUR_MS, "15s",
        "PostgreSQL probes; 0 = off"),
    KEY("collectors.postgres.timeout", VG_CFG_DURATION_MS, postgres.timeout_ms, 100,
        10 * 60 * SEC_MS, "5s", "one probe's bound (connect and queries)"),
    KEY("collectors.postgres.long_running", VG_CFG_DURATION_MS, postgres.long_running_ms, SEC_MS,
        24 * HOUR_MS, "5m", "an active query older than this counts as long-running"),
    LIST("collectors.postgres.targets", postgres.targets, probe_postgres_target_keys,
         struct probe_target_config, 16, "{name, conninfo, password_file | password_env}"),
    KEY("collectors.redis.interval", VG_CFG_DURATION_MS, redis.interval_ms, 0, HOUR_MS, "10s",
        "Redis probes; 0 = off"),
    KEY("collectors.redis.timeout", VG_CFG_DURATION_MS, redis.timeout_ms, 100, 10 * 60 * SEC_MS,
        "2s", "one probe's bound"),
    LIST("collectors.redis.targets", redis.targets, probe_redis_target_keys,
         struct probe_target_config, 16,
         "{name, address (host:port or /socket), password_file | password_env}"),
    KEY("collectors.kubernetes.interval", VG_CFG_DURATION_MS, kubernetes.interval_ms, 0, HOUR_MS,
        "15s", "Kubernetes API probes (pods, deployments, nodes; role cluster); 0 = off"),
    KEY("collectors.kubernetes.timeout", VG_CFG_DURATION_MS, kubernetes.timeout_ms, 100,
        10 * 60 * SEC_MS, "5s", "one cycle's bound (every request of it)"),
    LIST("collectors.kubernetes.targets", kubernetes.targets, probe_kubernetes_target_keys,
         struct probe_target_config, 8,
         "{name, kubeconfig (empty = in-cluster), context, namespaces}"),
    KEY("probe_dir", VG_CFG_STRING, probe_dir, 0, 0, "",
        "where vigil-probe-<kind>.so live; empty = next to vigil-agent"),
    LIST("thresholds", thresholds, threshold_keys, struct threshold_config, 256,
         "alert levels: {signal, warning, critical, clear, below}; override the runbook's"),
    {.path = "evidence.allow_dirs",
     .type = VG_CFG_STRINGS,
     .offset = offsetof(struct agent_config, evidence_allow_dirs),
     .max = 64,
     .help = "directories `vigilctl collect file` may read under; empty = none"},
    KEY("evidence.max_size", VG_CFG_SIZE, evidence_max_bytes, 0, 1024 * MIB, "0",
        "an artifact is cut (marked truncated) at this size; 0 = the smaller of 32MiB and "
        "half of spool.max_size"),
    KEY("evidence.chunk_size", VG_CFG_SIZE, evidence_chunk_bytes, 4096, 1 * MIB, "256KiB",
        "bytes per evidence message"),
    KEY("flight_recorder.enabled", VG_CFG_BOOL, flight_enabled, 0, 0, "true",
        "keep the last minutes of sockets, processes and log lines in memory (evidence kind "
        "flight)"),
    KEY("flight_recorder.interval", VG_CFG_DURATION_MS, flight_interval_ms, SEC_MS, 60 * SEC_MS,
        "10s", "one snapshot every this long (each costs a walk of /proc and the socket table)"),
    KEY("flight_recorder.window", VG_CFG_DURATION_MS, flight_window_ms, 10 * SEC_MS, HOUR_MS, "5m",
        "snapshots older than this are dropped; at least the interval"),
    KEY("flight_recorder.max_size", VG_CFG_SIZE, flight_max_bytes, 64 * 1024, 256 * MIB, "4MiB",
        "the recorder's memory; the oldest snapshots are dropped beyond it"),
    KEY("spool.max_size", VG_CFG_SIZE, spool_max_bytes, 256 * 1024, 64LL * 1024 * MIB, "64MiB",
        "disk spool bound; oldest metric samples are dropped beyond it"),
    KEY("spool.segment_size", VG_CFG_SIZE, spool_segment_bytes, 0, 1024 * MIB, "0",
        "spool segment file size; 0 = automatic"),
    KEY("spool.fsync", VG_CFG_BOOL, spool_fsync, 0, 0, "true",
        "fsync every append (survives power loss)"),
    KEY("link.max_inflight", VG_CFG_INT, link_max_inflight, 1, 100000, "256",
        "messages sent but not yet acknowledged"),
    KEY("link.ack_timeout", VG_CFG_DURATION_MS, link_ack_timeout_ms, 100, HOUR_MS, "10s",
        "resend unacknowledged messages after this long"),
    KEY("link.reconnect_min", VG_CFG_DURATION_MS, link_reconnect_min_ms, 10, HOUR_MS, "500ms",
        "first reconnect delay (randomised up to twice this)"),
    KEY("link.reconnect_max", VG_CFG_DURATION_MS, link_reconnect_max_ms, 100, HOUR_MS, "30s",
        "reconnect backoff ceiling"),
    KEY("log.level", VG_CFG_STRING, log_level, 0, 8, "info", "debug, info, warn or error"),
    LIST("actions", actions, action_keys, struct action_config, ACTIONS_MAX,
         "the action catalog: the only things a command may run here (docs/remediation.md)"),
    KEY("signers_file", VG_CFG_STRING, signers_file, 0, 0, SIGNERS_FILE_DEFAULT,
        "root-owned file of the Ed25519 keys commands must be signed with; empty = remediation "
        "disabled"),
};
const size_t agent_config_nkeys = sizeof(agent_config_keys) / sizeof(agent_config_keys[0]);

/*
 * The action catalog (checked against the watched processes, which signal actions name) and the
 * signer file. A signer file that does not exist is not an error: there are no signers, so
 * remediation is disabled (cfg->signers stays NULL), as with an empty signers_file.
 */
static const char **target_names(const struct vg_cfg_list *targets)
{
    const char **names = calloc(targets->count + 1, sizeof(*names));
    for (size_t i = 0; names && i < targets->count; i++)
        names[i] = VG_CFG_ITEM(*targets, struct probe_target_config, i)->name;
    return names;
}

static int load_remediation(const char *path, struct agent_config *cfg, char *err, size_t errlen)
{
    const char **watched = calloc(cfg->processes_watch.count + 1, sizeof(*watched));
    const char **pg = target_names(&cfg->postgres.targets);
    const char **redis = target_names(&cfg->redis.targets);
    struct actions_context ctx = {
        .file = path,
        .watched = watched,
        .nwatched = cfg->processes_watch.count,
        .postgres_targets = pg,
        .npostgres_targets = cfg->postgres.targets.count,
        .redis_targets = redis,
        .nredis_targets = cfg->redis.targets.count,
        .cluster = agent_config_is_cluster(cfg),
    };
    int r;

    for (size_t i = 0; watched && i < cfg->processes_watch.count; i++)
        watched[i] = VG_CFG_ITEM(cfg->processes_watch, struct procwatch_config, i)->name;
    if (watched && pg && redis)
        cfg->catalog = actions_new(&cfg->actions, &ctx, err, errlen);
    free(watched);
    free(pg);
    free(redis);
    if (!cfg->catalog)
        return err[0] ? -EINVAL : -ENOMEM;

    if (!cfg->signers_file[0])
        return 0;
    if (cfg->signers_file[0] != '/') {
        snprintf(err, errlen,
                 "%s: \"signers_file\": must be an absolute path or empty (got \"%s\")", path,
                 cfg->signers_file);
        return -EINVAL;
    }
    r = signers_load(cfg->signers_file, &cfg->signers, err, errlen);
    return r == -ENOENT ? 0 : r;
}

/*
 * An empty `node`: the NODE_NAME environment variable (a DaemonSet sets it from the downward
 * API, spec.nodeName: the name the cluster knows the node by, which need not be its hostname),
 * else the hostname. The executor gets NODE_NAME from the agent (privsep.c), so both sides agree
 * on the name commands are addressed to.
 */
static int node_from_environment(const char *path, struct agent_config *cfg, char *err,
                                 size_t errlen)
{
    const char *env = getenv("NODE_NAME");
    char host[256] = "";
    const char *name;

    if (env && env[0]) {
        size_t len = strlen(env);
        bool printable = len <= 128;
        for (size_t i = 0; printable && i < len; i++)
            printable = (unsigned char)env[i] > 0x20 && (unsigned char)env[i] < 0x7f;
        if (!printable) {
            snprintf(err, errlen,
                     "%s: \"node\" is empty and the NODE_NAME environment variable is not a node "
                     "name (1 to 128 printable ASCII characters without spaces)",
                     path);
            return -EINVAL;
        }
        name = env;
    } else {
        gethostname(host, sizeof(host) - 1);
        name = host[0] ? host : "unknown";
    }
    free(cfg->node);
    cfg->node = strdup(name);
    return cfg->node ? 0 : -ENOMEM;
}

/* coordinator.public_key_file: one line, the coordinator's Z85 public key (surrounding white
 * space ignored). Not a secret, so any mode will do. */
static int read_public_key_file(const char *path, struct agent_config *cfg, char *err,
                                size_t errlen)
{
    const char *file = cfg->coordinator_public_key_file;
    char buf[128];
    FILE *f = fopen(file, "re");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "%s: \"coordinator.public_key_file\": %s: %s", path, file,
                 strerror(e));
        return -e;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *start = buf;
    while (*start == ' ' || *start == '\t' || *start == '\n' || *start == '\r')
        start++;
    char *end = start + strlen(start);
    while (end > start && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
        *--end = '\0';
    if (!vg_key_z85_valid(start)) {
        snprintf(err, errlen,
                 "%s: \"coordinator.public_key_file\": %s does not hold a Z85 CURVE public key "
                 "(40 characters)",
                 path, file);
        return -EINVAL;
    }
    free(cfg->coordinator_public_key);
    cfg->coordinator_public_key = strdup(start);
    return cfg->coordinator_public_key ? 0 : -ENOMEM;
}

bool agent_config_is_cluster(const struct agent_config *cfg)
{
    return cfg->role && strcmp(cfg->role, "cluster") == 0;
}

int agent_config_load_remediation(const char *path, struct agent_config *cfg, char *err,
                                  size_t errlen)
{
    int r;

    memset(cfg, 0, sizeof(*cfg));
    r = vg_config_load(path, agent_config_keys, agent_config_nkeys, cfg, err, errlen);
    if (r < 0)
        return r;
    if (cfg->state_dir[0] == '\0') {
        snprintf(err, errlen, "%s: \"state_dir\": must not be empty", path);
        return -EINVAL;
    }
    if (strcmp(cfg->role, "node") != 0 && strcmp(cfg->role, "cluster") != 0) {
        snprintf(err, errlen, "%s: \"role\": must be node or cluster (got \"%s\")", path,
                 cfg->role);
        return -EINVAL;
    }
    if (agent_config_is_cluster(cfg) && cfg->node[0] == '\0') {
        /* NODE_NAME is the Kubernetes node the pod landed on, whose DaemonSet agent holds that
         * name: the cluster agent must have a name of its own. */
        snprintf(err, errlen,
                 "%s: \"node\": an agent with role: cluster needs a node name of its own (say "
                 "node: cluster), not the name of the node it runs on",
                 path);
        return -EINVAL;
    }
    r = load_remediation(path, cfg, err, errlen);
    if (r < 0)
        return r;
    if (cfg->node[0] == '\0')
        return node_from_environment(path, cfg, err, errlen);
    return 0;
}

int agent_config_load(const char *path, struct agent_config *cfg, char *err, size_t errlen)
{
    enum vg_log_level level;
    uint8_t token[VG_TOKEN_LEN];
    int r;

    r = agent_config_load_remediation(path, cfg, err, errlen);
    if (r < 0)
        return r;
    if (vg_log_level_parse(cfg->log_level, &level) < 0) {
        snprintf(err, errlen, "%s: \"log.level\": must be debug, info, warn or error (got \"%s\")",
                 path, cfg->log_level);
        return -EINVAL;
    }
    if (cfg->coordinator_public_key[0] && cfg->coordinator_public_key_file[0]) {
        snprintf(err, errlen,
                 "%s: set either \"coordinator.public_key\" or \"coordinator.public_key_file\", "
                 "not both",
                 path);
        return -EINVAL;
    }
    if (!cfg->coordinator_public_key[0] && !cfg->coordinator_public_key_file[0]) {
        snprintf(err, errlen,
                 "%s: \"coordinator.public_key\" (or \"coordinator.public_key_file\"): required "
                 "key is missing",
                 path);
        return -EINVAL;
    }
    if (cfg->coordinator_public_key_file[0]) {
        r = read_public_key_file(path, cfg, err, errlen);
        if (r < 0)
            return r;
    }
    if (!vg_key_z85_valid(cfg->coordinator_public_key)) {
        snprintf(err, errlen, "%s: \"coordinator.public_key\": not a Z85 CURVE public key", path);
        return -EINVAL;
    }
    if (cfg->enrollment_token[0] && vg_token_from_hex(cfg->enrollment_token, token) < 0) {
        snprintf(err, errlen, "%s: \"enrollment.token\": must be 64 hex digits", path);
        return -EINVAL;
    }
    if (cfg->enrollment_token[0] && cfg->enrollment_secret_file[0]) {
        snprintf(err, errlen,
                 "%s: set either \"enrollment.token\" or \"enrollment.secret_file\", not both",
                 path);
        return -EINVAL;
    }
    if (cfg->enrollment_secret_file[0]) {
        r = vg_secret_file_check(cfg->enrollment_secret_file, err, errlen);
        if (r < 0)
            return r;
    }
    if (cfg->link_reconnect_max_ms < cfg->link_reconnect_min_ms) {
        snprintf(err, errlen, "%s: \"link.reconnect_max\" must not be below \"link.reconnect_min\"",
                 path);
        return -EINVAL;
    }
    /* An evidence chunk is one spooled message: it must fit in a segment, or every capture
     * fails at its first chunk. */
    struct spool_limits spool = {(uint64_t)cfg->spool_max_bytes, (uint64_t)cfg->spool_segment_bytes,
                                 cfg->spool_fsync};
    uint64_t record_max = spool_record_max(&spool);
    if ((uint64_t)cfg->evidence_chunk_bytes + EVIDENCE_CHUNK_OVERHEAD > record_max) {
        snprintf(err, errlen,
                 "%s: \"evidence.chunk_size\" (%" PRId64 " bytes) does not fit in a spool "
                 "segment, which takes messages of at most %" PRIu64 " bytes with this "
                 "spool.max_size and spool.segment_size: lower evidence.chunk_size to at most "
                 "%" PRIu64 " bytes or raise spool.segment_size",
                 path, cfg->evidence_chunk_bytes, record_max,
                 record_max > EVIDENCE_CHUNK_OVERHEAD ? record_max - EVIDENCE_CHUNK_OVERHEAD : 0);
        return -EINVAL;
    }
    if (cfg->evidence_max_bytes == 0)
        cfg->evidence_max_bytes = cfg->spool_max_bytes / 2 < EVIDENCE_DEFAULT_MAX
                                      ? cfg->spool_max_bytes / 2
                                      : EVIDENCE_DEFAULT_MAX;
    if (cfg->evidence_max_bytes > cfg->spool_max_bytes / 2) {
        snprintf(err, errlen,
                 "%s: \"evidence.max_size\" must be at most half of \"spool.max_size\" "
                 "(evidence is never dropped from the spool, so it must leave room)",
                 path);
        return -EINVAL;
    }
    if (cfg->flight_window_ms < cfg->flight_interval_ms) {
        snprintf(err, errlen,
                 "%s: \"flight_recorder.window\" must not be shorter than "
                 "\"flight_recorder.interval\" (a window holds at least one snapshot)",
                 path);
        return -EINVAL;
    }
    return 0;
}

void agent_config_free(struct agent_config *cfg)
{
    actions_destroy(&cfg->catalog);
    signers_destroy(&cfg->signers);
    vg_config_free(agent_config_keys, agent_config_nkeys, cfg);
}
