/*
 * The probe runner: HTTP, PostgreSQL, Redis and Kubernetes targets (collectors.<kind> in
 * agent.yaml), each measured by a dlopen'd module (agent/probe/probe.h) on a thread of its own.
 *
 * Why threads: a probe waits on somebody else's server. One thread per target means a
 * target that hangs delays nobody: not the agent's loop, not another target. Each thread
 * sleeps until its target is due, runs one bounded cycle (options.timeout_ms) and queues
 * the samples; the main loop polls probes_fd() and drains the queue into its batch. The
 * main thread never waits on a probe.
 *
 * Why modules: libcurl, libpq and hiredis cost MiB of mapped libraries. A module is loaded
 * only for a kind that has targets and an interval > 0.
 *
 * Every sample gets the label target=<name> first, then the module's own labels. When a
 * target recovers, or fails for another reason, the runner ends the previous
 * <kind>.error{reason} series with a 0, so an old reason never stays "1" as the latest value.
 */
#ifndef AGENT_PROBES_H
#define AGENT_PROBES_H

#include <stddef.h>
#include <stdint.h>

#include "collect.h"
#include "config.h"
#include "probe.h"

/* collectors.<kind> in agent.yaml. */
struct probes_kind_config {
    const char *kind;    /* "http", "postgres", "redis", "kubernetes": vigil-probe-<kind>.so */
    int64_t interval_ms; /* 0 = disabled: the module is not even loaded */
    struct probe_options options; /* cancel_fd is the runner's own: the value here is ignored;
                                     max_artifact_bytes 0 = 1 MiB; long_running_ms 0 = 5 min */
    const struct probe_target_config *targets;
    size_t ntargets;
};

/* Key tables for one element of collectors.<kind>.targets (elements are struct
 * probe_target_config), for a VG_CFG_LIST key with .sub/.nsub/.elem_size. */
extern const struct vg_cfg_key probe_http_target_keys[];
extern const size_t probe_http_target_nkeys;
extern const struct vg_cfg_key probe_postgres_target_keys[];
extern const size_t probe_postgres_target_nkeys;
extern const struct vg_cfg_key probe_redis_target_keys[];
extern const size_t probe_redis_target_nkeys;
extern const struct vg_cfg_key probe_kubernetes_target_keys[];
extern const size_t probe_kubernetes_target_nkeys;

typedef struct probes probes_t;

/*
 * Validates the targets (names unique per kind, addresses set), loads the modules of the
 * enabled kinds, opens every target and starts its thread; the first cycle runs at once.
 * Modules come from module_dir; NULL or "" = $VIGIL_PROBE_DIR if set, else the directory of
 * the running executable. The kinds' configs are copied. With no enabled kind the runner is
 * empty (no module, no thread) but valid. NULL with err set on failure.
 */
probes_t *probes_new(const struct probes_kind_config *kinds, size_t nkinds, const char *module_dir,
                     char *err, size_t errlen);

/*
 * Maps the modules of the enabled kinds now, before the agent drops its privileges: the build or
 * install directory may be one the unprivileged user cannot search (a tree under /root), and
 * probes_new opens the same paths later (the loader finds them already mapped). Only the
 * configured kinds are mapped, so the footprint is what probes_new alone would cost. NULL or
 * "" module_dir as for probes_new. 0, or a negative errno with err set.
 */
int probes_preload(const struct probes_kind_config *kinds, size_t nkinds, const char *module_dir,
                   char *err, size_t errlen);

/* An eventfd, readable when samples wait: poll it and call probes_drain. */
int probes_fd(const probes_t *self);

/* Main thread: every queued sample into ctx (collect_emit) with its measurement time and
 * the label target=<name> first. Never blocks on a probe. */
void probes_drain(probes_t *self, struct collect_ctx *ctx);

/* The collector interface (collect.h): "probes", no interval (each target's thread keeps its
 * own), probes_fd with probes_drain; takes ownership of *self_p (set to NULL): the collector's
 * destroy frees it. */
struct collector probes_collector(probes_t **self_p);

/*
 * Evidence (vigilctl collect postgres|redis|kubernetes): opens a fresh module state for the
 * target, writes its artifact and closes it, within the kind's timeout. target NULL or "" = the
 * only target of that kind. Safe to call from another thread than the main one (the agent's
 * evidence thread), but that thread must be finished before probes_destroy. Returns 0, or
 * a negative errno with err set: -ENOENT kind not configured or no such target, -EINVAL
 * target not named while several exist, -EOPNOTSUPP the kind has no evidence.
 */
int probes_evidence(probes_t *self, const char *kind, const char *target,
                    const struct artifact_writer *out, char *err, size_t errlen);

/* The same for a module's evidence kind with arguments (probe_module.evidence_kind): kind is
 * the module's ("kubernetes"), evidence_kind the one asked for ("k8s_logs"), args its arguments
 * but target. -EOPNOTSUPP when the module has no such kinds. */
int probes_evidence_kind(probes_t *self, const char *kind, const char *evidence_kind,
                         const struct probe_label *args, size_t nargs, const char *target,
                         const struct artifact_writer *out, char *err, size_t errlen);

/* Samples lost since start: queue full, malformed samples, targets whose thread could not
 * start. Counted, never fatal. */
uint64_t probes_errors(const probes_t *self);

/* Stops every thread (a probe in the middle of a timeout is cancelled at once), closes the
 * targets and unloads the modules. Queued samples are dropped. Accepts NULL. */
void probes_destroy(probes_t **self_p);

#endif
