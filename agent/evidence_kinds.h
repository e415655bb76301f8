/*
 * The evidence kinds this agent captures (vigilctl collect KIND): thin adapters from a
 * request's arguments to the collectors' and probes' writers. They run on the evidence
 * worker thread (evidence.c), so they only call functions documented as safe to call while
 * the main loop runs the collectors.
 *
 *   netstat    the socket table with owning processes          (no arguments)
 *   processes  the process table: users, command lines, pods   (no arguments)
 *   host       a health snapshot                               (no arguments)
 *   log_tail   the end of a configured log       name=LOG lines=N | bytes=N
 *   postgres   pg_stat_activity, lock waits, replication       target=NAME
 *   redis      INFO all                                        target=NAME
 *   kubernetes kubectl get/describe/logs/top of the watched namespaces and the nodes
 *                                                              target=NAME
 *   k8s_pods, k8s_describe, k8s_logs, k8s_ingress, k8s_config, k8s_top
 *              one kubectl step each (agent/probe/kubernetes.c) target=NAME and the step's own
 *   file       a file under evidence.allow_dirs                path=/ABSOLUTE/PATH
 *   command_output  the kept output of a command run here      request=ID
 *   flight     the flight recorder's last minutes (flight.h)   (no arguments)
 */
#ifndef AGENT_EVIDENCE_KINDS_H
#define AGENT_EVIDENCE_KINDS_H

#include <stdbool.h>
#include <stddef.h>

#include "cmd_output.h"
#include "config.h"
#include "evidence.h"
#include "flight.h"
#include "logtail.h"
#include "podmap.h"
#include "probes.h"

struct evidence_sources {
    const char *proc_root;                   /* "/proc" */
    const struct vg_cfg_strings *allow_dirs; /* for kind file; empty = file is refused */
    const logtail_t *logs;                   /* NULL when no logs are configured */
    probes_t *probes;                        /* NULL when no probes are configured */
    size_t max_bytes;                        /* the artifact size cap */
    const cmd_output_t *outputs;             /* NULL: no executor, no command outputs */
    podmap_t *pods;                          /* NULL: processes and sockets name no pods */
    flight_t *flight;                        /* NULL: the flight recorder is off */
};

#define EVIDENCE_KINDS_MAX 20

/* For tests only: resolve "file" paths as on kernels without openat2 (before 5.6), where the
 * path is walked one component at a time with O_NOFOLLOW. Not thread-safe; set it before
 * captures run. */
void evidence_kinds_test_without_openat2(bool on);

/* Fills kinds (EVIDENCE_KINDS_MAX entries) for src, which must outlive them. Returns the
 * number filled. */
size_t evidence_kinds_fill(struct evidence_kind *kinds, struct evidence_sources *src);

#endif
