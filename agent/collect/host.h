/*
 * The host collector: CPU, memory, load, disk per mounted filesystem, network per interface
 * and OOM kills, from /proc and statfs.
 *
 * Signals (units in brackets):
 *   host.cpu.busy_pct [percent]             busy share of all CPUs since the last cycle
 *   host.mem.used_pct [percent]             (MemTotal - MemAvailable) / MemTotal
 *   host.mem.available_bytes [bytes]
 *   host.load.1m, host.load.5m, host.load.15m
 *   host.disk.used_pct{mount,fstype} [percent]  per real filesystem (pseudo and network
 *                                           filesystems are skipped: statfs on a dead NFS
 *                                           server would block the agent)
 *   host.net.rx_bytes_per_s{interface}, host.net.tx_bytes_per_s{interface} [bytes/s]
 *   host.net.errors_per_s{interface} [errors/s]  receive + transmit errors
 *   host.oom.kills [count]                  OOM kills since boot (/proc/vmstat oom_kill)
 * Rates and CPU need two cycles: the first cycle reports only the instantaneous values.
 */
#ifndef AGENT_COLLECT_HOST_H
#define AGENT_COLLECT_HOST_H

#include "collect.h"

typedef struct host_collector host_collector_t;

/* proc_root is "/proc" normally; tests point it at a fixture tree. */
host_collector_t *host_collector_new(const char *proc_root);
void host_collector_destroy(host_collector_t **self_p);

/* One cycle. Unreadable sources are skipped and counted in ctx->errors; never fatal. */
void host_collector_run(host_collector_t *self, struct collect_ctx *ctx);

#endif
