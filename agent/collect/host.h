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
 *                                           server would block the agent), once per device
 *                                           however many mounts show it (bind mounts): named
 *                                           by the mount at "/", else the whole filesystem's
 *                                           shortest mount point. "/" is reported even when the
 *                                           mount table does not list it (chroots)
 *   host.net.rx_bytes_per_s{interface}, host.net.tx_bytes_per_s{interface} [bytes/s]
 *   host.net.errors_per_s{interface} [errors/s]  receive + transmit errors
 *   host.oom.kills [count]                  OOM kills since boot (/proc/vmstat oom_kill)
 * Rates and CPU need two cycles: the first cycle reports only the instantaneous values.
 */
#ifndef AGENT_COLLECT_HOST_H
#define AGENT_COLLECT_HOST_H

#include "collect.h"
#include "podmap.h"

typedef struct host_collector host_collector_t;

/* proc_root is "/proc" normally; tests point it at a fixture tree. */
host_collector_t *host_collector_new(const char *proc_root);
void host_collector_destroy(host_collector_t **self_p);

/* One cycle. Unreadable sources are skipped and counted in ctx->errors; never fatal. */
void host_collector_run(host_collector_t *self, struct collect_ctx *ctx);

/* The collector interface (collect.h): "host", host_collector_run every interval_ms (0: never);
 * takes ownership of *self_p (set to NULL): the collector's destroy frees it. */
struct collector host_collector(host_collector_t **self_p, int64_t interval_ms);

/*
 * Evidence (`vigilctl collect host`): a health snapshot of the node as text: uptime, load,
 * CPU over a 200 ms sample (busy share and its parts), memory (every /proc/meminfo line),
 * OOM kills, usage of every real filesystem (as host.disk.used_pct chooses them: statfs is
 * never called on a network filesystem), every network interface's counters, and the 10
 * processes using the most resident memory and the most CPU over the sample (with their
 * namespace/pod/container as pods names them; NULL pods: "-"). Reads
 * <proc_root> ("/proc" when NULL); sleeps 200 ms; thread-safe (shares nothing with the
 * collector). A source that cannot be read is named in the artifact, not an error. Returns 0;
 * -EFBIG when max_bytes was reached (the artifact ends with a "# truncated" line); the
 * writer's negative errno when it failed; -ENOENT, -EACCES or -ENOMEM when proc_root cannot be
 * opened. err says which in words.
 */
int host_write_snapshot(const char *proc_root, podmap_t *pods, size_t max_bytes,
                        const struct artifact_writer *out, char *err, size_t errlen);

#endif
