/* coordinator.yaml: every key, its type, bounds and default, in one table (coord_config.c). */
#ifndef COORD_CONFIG_H
#define COORD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "paging_config.h"
#include "statuspage.h"

/* Where packages install the runbooks. Unlike a directory someone configured, this one may be
 * absent: the coordinator then runs without runbooks and says so. */
#define COORD_RUNBOOKS_DIR_DEFAULT "/etc/vigil/runbooks"

struct coord_config {
    char *state_dir;
    char *server_key_file; /* "" = <state_dir>/coordinator.key, created on first start */
    char *listen_agents;
    char *listen_admin;
    char *http_address; /* "127.0.0.1"; "" = all interfaces, like 0.0.0.0 */
    int64_t http_port;
    int64_t http_max_per_client; /* connections at once from one client address */
    char *store_url;             /* "" = private PostgreSQL cluster under state_dir */
    char *store_owner_url;       /* "" = store_url */
    char *store_pg_bin_dir;
    int64_t store_start_timeout_ms;
    char *enrollment_secret_file; /* "" = no bootstrap tokens: every new agent waits as pending */
    int64_t enrollment_rate_per_minute; /* per source address; 0 = unlimited */
    int64_t enrollment_pending_max;
    int64_t enrollment_pending_ttl_ms;
    int64_t evidence_incomplete_grace_ms;
    int64_t evidence_checkpoint_interval_ms; /* 0 = checkpoints only on request */
    char *evidence_checkpoint_webhook;       /* "" = checkpoints go to files only */
    int64_t retention_signals_ms;          /* retention.signals */
    int64_t retention_signals_ahead;       /* retention.signals_ahead: days */
    int64_t retention_evidence_ms;         /* retention.evidence; 0 = forever */
    int64_t retention_interval_ms;         /* retention.interval */
    int64_t commands_capsule_ttl_ms;       /* commands.capsule_ttl */
    int64_t commands_approval_window_ms;   /* commands.approval_window */
    int64_t commands_auto_min_interval_ms; /* commands.auto_min_interval */
    int64_t heartbeat_interval_ms;
    int64_t missed_heartbeats;
    int64_t max_series_per_agent;
    char *admin_public_key; /* the first admin operator, added to the store at start */
    char *admin_name;
    /* That operator's Ed25519 signing public key, base64; "" = none. */
    char *admin_signing_public_key;
    char *alertmanager_token_file;     /* "" = no Alertmanager webhook (404) */
    int64_t alertmanager_max_body;     /* bytes */
    char *runbooks_dir;                /* "" = no runbooks: nothing is evaluated */
    int64_t runbooks_absence_grace_ms; /* no absence symptom holds this long after a start */
    char *watchdog_url;                /* "" = no dead-man's switch (paging/watchdog.h) */
    int64_t watchdog_interval_ms;
    char *prometheus_url;              /* "" = no Prometheus: PromQL symptoms never fire */
    int64_t prometheus_timeout_ms;
    char *prometheus_token_file; /* "" = no Authorization header */
    char *log_level;
    struct paging_config paging; /* paging: contacts, schedules, policies (paging_config.h) */
    struct status_page_config status_page; /* the public status page (statuspage.h) */
};

extern const struct vg_cfg_key coord_config_keys[];
extern const size_t coord_config_nkeys;

/* Loads and cross-checks (key formats, secret file permissions). 0 or negative errno + err. */
int coord_config_load(const char *path, struct coord_config *cfg, char *err, size_t errlen);
void coord_config_free(struct coord_config *cfg);

#endif
