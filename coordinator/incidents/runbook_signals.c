/*
 * The signals a runbook may name (declared in runbook_load.h): every signal the agents emit, as
 * listed in the README's "Signals", and "alert.<alertname>" for Alertmanager's alerts. A
 * runbook naming anything else is refused at load, so a typo in a signal name cannot leave a
 * symptom that never fires. A collector that emits a new signal adds it here.
 */
#include "runbook_load.h"

#include "runbook_yaml.h"

#include <stdlib.h>
#include <string.h>

/* README "Signals"; keep sorted (bsearch). */
static const char *const known_signals[] = {
    "agent.evidence.failed",
    "agent.evidence.refused",
    "agent.evidence.requests",
    "agent.evidence.sent",
    "agent.evidence.sent_bytes",
    "agent.executor.up",
    "agent.flight.bytes",
    "agent.flight.snapshots",
    "agent.link.ignored_messages",
    "agent.probes.dropped_samples",
    "agent.spool.bytes",
    "agent.spool.depth",
    "agent.spool.dropped_messages",
    "agent.spool.dropped_samples",
    "agent.uptime_s",
    "host.cpu.busy_pct",
    "host.disk.used_pct",
    "host.load.15m",
    "host.load.1m",
    "host.load.5m",
    "host.mem.available_bytes",
    "host.mem.used_pct",
    "host.net.errors_per_s",
    "host.net.rx_bytes_per_s",
    "host.net.tx_bytes_per_s",
    "host.oom.kills",
    "http.error",
    "http.status",
    "http.statuspage.component",
    "http.statuspage.indicator",
    "http.statuspage.maintenance",
    "http.time_ms",
    "http.tls_days_left",
    "http.up",
    "k8s.crashloop",
    "k8s.deployments_unavailable",
    "k8s.error",
    "k8s.node_cpu_pct",
    "k8s.node_memory_pct",
    "k8s.nodes_disk_pressure",
    "k8s.nodes_memory_pressure",
    "k8s.nodes_not_ready",
    "k8s.oomkilled",
    "k8s.pod_restarts",
    "k8s.pods_not_ready",
    "k8s.up",
    "k8s.warning_events",
    "log.error_rate_pct",
    "log.errors",
    "log.failed_logins",
    "log.files",
    "log.http.denied",
    "log.http.requests",
    "log.http.status",
    "log.lines",
    "log.match_count",
    "log.match_rate",
    "log.rotations",
    "log.truncations",
    "net.connections.by_remote",
    "net.listen",
    "net.listen.new",
    "net.sockets",
    "pg.active",
    "pg.connections",
    "pg.connections_used_pct",
    "pg.error",
    "pg.long_running",
    "pg.longest_query_s",
    "pg.max_connections",
    "pg.replication_lag_s",
    "pg.statement_mean_ms",
    "pg.up",
    "proc.cpu_pct",
    "proc.errors",
    "proc.pid",
    "proc.restarts",
    "proc.rss_bytes",
    "proc.up",
    "redis.clients",
    "redis.error",
    "redis.evicted_keys",
    "redis.evictions",
    "redis.hit_rate",
    "redis.maxmemory_bytes",
    "redis.mem_used_bytes",
    "redis.mem_used_pct",
    "redis.ping_ms",
    "redis.up",
};

#define ALERT_PREFIX "alert."

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

bool runbook_signal_known(const char *name)
{
    size_t n = sizeof(known_signals) / sizeof(known_signals[0]);

    if (!name)
        return false;
    if (strncmp(name, ALERT_PREFIX, strlen(ALERT_PREFIX)) == 0) {
        /* Alertmanager alert names: [a-zA-Z_:][a-zA-Z0-9_:]* (Prometheus metric-name rules). */
        const char *p = name + strlen(ALERT_PREFIX);
        size_t len = strlen(p);
        if (len == 0 || len > RB_SIGNAL_MAX_LEN || (*p >= '0' && *p <= '9'))
            return false;
        for (; *p; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '_' || *p == ':'))
                return false;
        return true;
    }
    return bsearch(&name, known_signals, n, sizeof(known_signals[0]), cmp_name) != NULL;
}
