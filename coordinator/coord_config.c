#include "coord_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "keys.h"
#include "log.h"
#include "sign.h"

#define KEY(path_, type_, field_, min_, max_, def_, help_)                                         \
    {                                                                                              \
        .path = (path_), .type = (type_), .offset = offsetof(struct coord_config, field_),         \
        .min = (min_), .max = (max_), .def = (def_), .help = (help_)                               \
    }

#define HOUR_MS (3600LL * 1000)

const struct vg_cfg_key coord_config_keys[] = {
    KEY("state_dir", VG_CFG_STRING, state_dir, 0, 0, "/var/lib/vigil",
        "directory for the server key and the private PostgreSQL cluster"),
    KEY("server_key_file", VG_CFG_STRING, server_key_file, 0, 0, "",
        "CURVE key pair of the coordinator; empty = <state_dir>/coordinator.key"),
    KEY("listen.agents", VG_CFG_STRING, listen_agents, 0, 256, "tcp://*:7400",
        "ZeroMQ endpoint agents connect to"),
    KEY("listen.admin", VG_CFG_STRING, listen_admin, 0, 256, "tcp://*:7401",
        "ZeroMQ endpoint vigilctl connects to"),
    KEY("http.address", VG_CFG_STRING, http_address, 0, 64, "127.0.0.1",
        "address for /healthz, /metrics and the Alertmanager webhook; 0.0.0.0 or :: = all "
        "interfaces (Prometheus, Alertmanager or a kubelet on another host)"),
    KEY("http.port", VG_CFG_INT, http_port, 1, 65535, "7480", "HTTP port"),
    /* 64 = HTTP_CONNECTION_LIMIT, 8 = HTTP_MAX_PER_CLIENT_DEFAULT (http.h) */
    KEY("http.max_connections_per_client", VG_CFG_INT, http_max_per_client, 1, 64, "8",
        "HTTP connections one client address may hold at once (of 64 in all); more are closed "
        "at once, so a slow client cannot starve /healthz"),
    KEY("store.url", VG_CFG_STRING, store_url, 0, 1024, "",
        "libpq connection string; empty = start a private PostgreSQL under state_dir"),
    KEY("store.owner_url", VG_CFG_STRING, store_owner_url, 0, 1024, "",
        "libpq connection string of the role that owns Vigil's tables, for migrations and "
        "maintenance; empty = store.url (which then holds more rights than the running "
        "coordinator needs: a warning at start)"),
    KEY("store.pg_bin_dir", VG_CFG_STRING, store_pg_bin_dir, 0, 0, "",
        "directory holding initdb and pg_ctl; empty = newest /usr/lib/postgresql/*/bin"),
    KEY("store.start_timeout", VG_CFG_DURATION_MS, store_start_timeout_ms, 0, 24 * HOUR_MS, "60s",
        "how long to keep retrying an unreachable database at start"),
    KEY("enrollment.secret_file", VG_CFG_STRING, enrollment_secret_file, 0, 0, "",
        "file holding the enrollment secret (mode 0600); empty = every new agent is pending"),
    KEY("enrollment.rate_per_minute", VG_CFG_INT, enrollment_rate_per_minute, 0, 1000000, "60",
        "enrollment requests accepted per source address (IPv6: per /64) per minute; 0 = "
        "unlimited"),
    KEY("enrollment.pending_max", VG_CFG_INT, enrollment_pending_max, 1, 1000000, "1000",
        "agents that may wait for approval at once; more unknown keys are refused until an "
        "operator approves or revokes some"),
    KEY("enrollment.pending_ttl", VG_CFG_DURATION_MS, enrollment_pending_ttl_ms, 1000,
        365 * 24 * HOUR_MS, "7d", "an agent pending this long without approval is forgotten"),
    KEY("evidence.incomplete_grace", VG_CFG_DURATION_MS, evidence_incomplete_grace_ms, 0,
        30 * 24 * HOUR_MS, "10m",
        "chunks of an artifact that never completed are removed this long after its request "
        "failed or timed out (audited); verified artifacts are never removed"),
    KEY("evidence.checkpoint_interval", VG_CFG_DURATION_MS, evidence_checkpoint_interval_ms, 0,
        24 * HOUR_MS, "10m",
        "a signed checkpoint of every chain's head is written to <state_dir>/checkpoints this "
        "often while they grow; 0 = only on `vigilctl evidence checkpoint`"),
    KEY("evidence.checkpoint_webhook", VG_CFG_STRING, evidence_checkpoint_webhook, 0, 1024, "",
        "the audit channel: every checkpoint (interval, on demand, export) is also POSTed here as "
        "JSON; one that fails is sent again with the next; \"\" = none"),
    KEY("retention.signals", VG_CFG_DURATION_MS, retention_signals_ms, 24 * HOUR_MS,
        3650 * 24 * HOUR_MS, "14d",
        "signal samples are kept this long: signals is partitioned by day (UTC) and a day's "
        "partition is dropped once the whole day is older (audited); whole days, 1d to 3650d. "
        "About 270 bytes a sample, some 96 GB a day for 1,000 nodes at the shipped intervals "
        "(tests/bench/signals_size.sh, docs/forensics.md)"),
    KEY("retention.signals_ahead", VG_CFG_INT, retention_signals_ahead, 1, 30, "2",
        "days of signals partitions made ahead of today; samples of later days wait in the "
        "default partition (counted in vigil_retention_signals_default_rows)"),
    KEY("retention.evidence", VG_CFG_DURATION_MS, retention_evidence_ms, 0, 3650 * 24 * HOUR_MS,
        "0",
        "the content of an artifact is removed this long after it was stored and its incident "
        "resolved (never while the incident is open or on `vigilctl hold`); its vault row and "
        "chain link stay, and the removal is audited. 0 = evidence is kept forever (the "
        "runbook's \"preserve evidence\")"),
    KEY("retention.interval", VG_CFG_DURATION_MS, retention_interval_ms, 1000, 24 * HOUR_MS, "1h",
        "how often the retention pass runs (partitions made ahead, expired ones dropped, "
        "expired evidence removed), on its own database connection; also once at start"),
    KEY("commands.capsule_ttl", VG_CFG_DURATION_MS, commands_capsule_ttl_ms, 10000, 15 * 60000,
        "5m",
        "how long an issued command capsule stays valid on the node (its not_after); a capsule "
        "without a report by then is marked lost"),
    KEY("commands.approval_window", VG_CFG_DURATION_MS, commands_approval_window_ms, 60000,
        7 * 24 * HOUR_MS, "1h",
        "a command request not approved this long after it was made expires; later approvals "
        "are refused"),
    KEY("commands.auto_min_interval", VG_CFG_DURATION_MS, commands_auto_min_interval_ms, 0,
        7 * 24 * HOUR_MS, "10m",
        "at most one automatic request per runbook and node in this time; a runbook auto step "
        "within it waits for an operator's approval instead"),
    KEY("agents.heartbeat_interval", VG_CFG_DURATION_MS, heartbeat_interval_ms, 100, HOUR_MS, "5s",
        "how often agents send a heartbeat"),
    KEY("agents.missed_heartbeats", VG_CFG_INT, missed_heartbeats, 1, 100, "3",
        "heartbeats an agent may miss before it is marked lost"),
    KEY("agents.max_series", VG_CFG_INT, max_series_per_agent, 0, 10000000, "10000",
        "distinct signal series (a name with its labels) one agent may have; samples of new "
        "series past it are dropped and counted; 0 = no bound"),
    KEY("admin.public_key", VG_CFG_STRING, admin_public_key, 0, 40, "",
        "Z85 public key of the first admin operator (added at start if absent; a revoked key "
        "stays revoked)"),
    KEY("admin.name", VG_CFG_STRING, admin_name, 0, 64, "admin", "name of that operator"),
    KEY("admin.signing_public_key", VG_CFG_STRING, admin_signing_public_key, 0, 44, "",
        "base64 Ed25519 signing public key of that operator (the signing-key line of its "
        "'vigilctl keygen'); given to it at start when it has none yet"),
    KEY("alertmanager.token_file", VG_CFG_STRING, alertmanager_token_file, 0, 0, "",
        "file holding the bearer token Alertmanager sends to POST /api/v1/alerts (mode 0600); "
        "empty = the webhook is disabled (404)"),
    KEY("alertmanager.max_body", VG_CFG_SIZE, alertmanager_max_body, 4096, 16LL << 20, "1MiB",
        "largest webhook body accepted; larger ones get 413"),
    KEY("runbooks.dir", VG_CFG_STRING, runbooks_dir, 0, 0, COORD_RUNBOOKS_DIR_DEFAULT,
        "directory of runbook YAML files, loaded at start and on SIGHUP; empty = no runbooks"),
    KEY("runbooks.absence_grace", VG_CFG_DURATION_MS, runbooks_absence_grace_ms, 0,
        60 * 60 * 1000LL, "2m",
        "after a start, absent: symptoms (node-lost) hold nowhere this long, while agents "
        "reconnect; 0 = none"),
    KEY("watchdog.url", VG_CFG_STRING, watchdog_url, 0, 1024, "",
        "URL called (GET) every watchdog.interval while the coordinator and its database are "
        "healthy, so a service outside pages when Vigil itself is down; empty = none"),
    KEY("watchdog.interval", VG_CFG_DURATION_MS, watchdog_interval_ms, 1000, HOUR_MS, "1m",
        "how often the watchdog URL is called"),
    KEY("prometheus.url", VG_CFG_STRING, prometheus_url, 0, 1024, "",
        "base URL of the Prometheus HTTP API that runbooks' promql symptoms are evaluated "
        "against, e.g. http://prometheus:9090; empty = no Prometheus"),
    KEY("prometheus.timeout", VG_CFG_DURATION_MS, prometheus_timeout_ms, 100, 60 * 1000, "5s",
        "how long one query may take, connection included"),
    KEY("prometheus.token_file", VG_CFG_STRING, prometheus_token_file, 0, 0, "",
        "file holding a bearer token sent to Prometheus (mode 0600); empty = none"),
    KEY("log.level", VG_CFG_STRING, log_level, 0, 8, "info", "debug, info, warn or error"),
    KEY("paging.file", VG_CFG_STRING, paging.file, 0, 0, "",
        "YAML file holding the paging keys at its top level; empty = they are here"),
    PAGING_CONFIG_KEYS("paging.", struct coord_config, paging.),
    STATUSPAGE_CONFIG_KEYS("status_page.", struct coord_config, status_page.),
};
const size_t coord_config_nkeys = sizeof(coord_config_keys) / sizeof(coord_config_keys[0]);

/* The paging section, or the file paging.file names (relative to this file's directory). */
static int load_paging(const char *path, struct coord_config *cfg, char *err, size_t errlen)
{
    char *file = cfg->paging.file;
    int r;

    if (!file || !file[0])
        return paging_config_finish(&cfg->paging, path, "paging", err, errlen);
    if (!paging_config_is_default(&cfg->paging)) {
        snprintf(err, errlen,
                 "%s: \"paging.file\" is set, so the other paging keys belong in %s, not here",
                 path, file);
        return -EINVAL;
    }
    if (file[0] != '/' && strchr(path, '/')) {
        char *joined;
        int dir_len = (int)(strrchr(path, '/') - path);
        if (asprintf(&joined, "%.*s/%s", dir_len, path, file) < 0)
            return -ENOMEM;
        file = joined;
    } else if (!(file = strdup(file))) {
        return -ENOMEM;
    }
    paging_config_free(&cfg->paging);
    r = paging_config_load(file, &cfg->paging, err, errlen);
    free(cfg->paging.file);
    cfg->paging.file = file; /* freed with the rest, also on failure */
    return r;
}

int coord_config_load(const char *path, struct coord_config *cfg, char *err, size_t errlen)
{
    enum vg_log_level level;
    int r;

    memset(cfg, 0, sizeof(*cfg));
    r = vg_config_load(path, coord_config_keys, coord_config_nkeys, cfg, err, errlen);
    if (r < 0)
        return r;

    if (vg_log_level_parse(cfg->log_level, &level) < 0) {
        snprintf(err, errlen, "%s: \"log.level\": must be debug, info, warn or error (got \"%s\")",
                 path, cfg->log_level);
        return -EINVAL;
    }
    if (cfg->admin_public_key[0] && !vg_key_z85_valid(cfg->admin_public_key)) {
        snprintf(err, errlen, "%s: \"admin.public_key\": not a Z85 CURVE public key", path);
        return -EINVAL;
    }
    unsigned char signing_key[VG_SIGN_PUBLIC_LEN];
    if (cfg->admin_signing_public_key[0] &&
        vg_sign_public_parse(cfg->admin_signing_public_key, signing_key) < 0) {
        snprintf(err, errlen,
                 "%s: \"admin.signing_public_key\": not a base64 Ed25519 public key (44 "
                 "characters, the signing-key line of 'vigilctl keygen')",
                 path);
        return -EINVAL;
    }
    if (cfg->admin_signing_public_key[0] && !cfg->admin_public_key[0]) {
        snprintf(err, errlen,
                 "%s: \"admin.signing_public_key\": set without \"admin.public_key\", the key of "
                 "the operator it belongs to",
                 path);
        return -EINVAL;
    }
    if (cfg->state_dir[0] == '\0') {
        snprintf(err, errlen, "%s: \"state_dir\": must not be empty", path);
        return -EINVAL;
    }
    if (cfg->server_key_file[0] == '\0') {
        char *derived;
        if (asprintf(&derived, "%s/coordinator.key", cfg->state_dir) < 0)
            return -ENOMEM;
        free(cfg->server_key_file);
        cfg->server_key_file = derived;
    }
    if (cfg->enrollment_secret_file[0]) {
        r = vg_secret_file_check(cfg->enrollment_secret_file, err, errlen);
        if (r < 0)
            return r;
    }
    if (cfg->alertmanager_token_file[0]) {
        r = vg_secret_file_check(cfg->alertmanager_token_file, err, errlen);
        if (r < 0)
            return r;
    }
    if (cfg->watchdog_url[0] && strncmp(cfg->watchdog_url, "http://", 7) != 0 &&
        strncmp(cfg->watchdog_url, "https://", 8) != 0) {
        snprintf(err, errlen,
                 "%s: \"watchdog.url\": must start with http:// or https:// (got \"%s\")", path,
                 cfg->watchdog_url);
        return -EINVAL;
    }
    if (cfg->evidence_checkpoint_webhook[0] &&
        strncmp(cfg->evidence_checkpoint_webhook, "http://", 7) != 0 &&
        strncmp(cfg->evidence_checkpoint_webhook, "https://", 8) != 0) {
        snprintf(err, errlen,
                 "%s: \"evidence.checkpoint_webhook\": must start with http:// or https:// (got "
                 "\"%s\")",
                 path, cfg->evidence_checkpoint_webhook);
        return -EINVAL;
    }
    if (cfg->prometheus_url[0] && strncmp(cfg->prometheus_url, "http://", 7) != 0 &&
        strncmp(cfg->prometheus_url, "https://", 8) != 0) {
        snprintf(err, errlen,
                 "%s: \"prometheus.url\": must start with http:// or https:// (got \"%s\")", path,
                 cfg->prometheus_url);
        return -EINVAL;
    }
    if (cfg->prometheus_token_file[0]) {
        r = vg_secret_file_check(cfg->prometheus_token_file, err, errlen);
        if (r < 0)
            return r;
    }
    r = statuspage_config_check(&cfg->status_page, path, err, errlen);
    if (r < 0)
        return r;
    return load_paging(path, cfg, err, errlen);
}

void coord_config_free(struct coord_config *cfg)
{
    paging_config_free(&cfg->paging);
    vg_config_free(coord_config_keys, coord_config_nkeys, cfg);
}
