/*
 * Watched processes: is each configured process up, how often did it restart, what does it use.
 *
 * A process is found, every run, by one of:
 *   comm     its /proc/PID/comm, exactly (at most 15 bytes, the kernel's limit); of several
 *            matching processes the oldest, i.e. the parent of the workers
 *   pidfile  the pid written in a file (decimal, surrounding white space allowed, at most 32
 *            bytes); a missing file means the process is down, a malformed one is an error
 *   unit     a systemd service: the lowest pid in <cgroup_root>/system.slice/<unit>/cgroup.procs
 *            (cgroup v2); "nginx" means "nginx.service". A unit whose processes all live in
 *            child cgroups (Delegate=yes) is not seen.
 * A zombie is down. A process is identified by (pid, start time), so a reused pid is a new
 * process.
 *
 * Exits are noticed at once: each found process is held by a pidfd (pidfd_open, Linux 5.3)
 * in an epoll set. The agent's loop polls procwatch_fd and calls procwatch_handle when it is
 * readable, which sends proc.up = 0 in the same cycle. Without pidfds (ENOSYS, a seccomp
 * filter, or a proc_root of another pid namespace) procwatch_fd is -1 and exits are seen by
 * the next run; that is logged once.
 *
 * Signals (label name=<configured name>):
 *   proc.up{name} [bool]          1 when the process runs, else 0
 *   proc.restarts{name} [count]   since the agent started: a different process found after
 *                                 the one seen before exited or was replaced
 *   proc.pid{name} [pid]          when up
 *   proc.rss_bytes{name} [bytes]  when up
 *   proc.cpu_pct{name} [percent]  when up, CPU time since the previous run as a percentage of
 *                                 one CPU (a busy multi-threaded process can exceed 100);
 *                                 not sent on the first run for a process
 *   proc.pod{name,namespace,pod,container,pod_uid} [bool]
 *                                 1 when up and in a Kubernetes pod (procwatch_set_pods):
 *                                 which pod the process is, as a series of its own so that
 *                                 proc.up{name} stays one series across pod restarts
 *                                 (container left out when it cannot be told)
 *   proc.errors{name,reason} [count]  since the agent started, sent once one happened:
 *                                 reason=pidfile (malformed contents), unreadable (the pidfile,
 *                                 cgroup.procs or the process's /proc entries could not be read
 *                                 for another reason than the process having exited)
 * A process that exits while it is being read is simply down: no error.
 */
#ifndef AGENT_COLLECT_PROCWATCH_H
#define AGENT_COLLECT_PROCWATCH_H

#include <stddef.h>

#include "collect.h"
#include "config.h"
#include "podmap.h"

#define PROCWATCH_MAX 256 /* watched processes */

/* collectors.processes.watch[]: name and exactly one of comm, pidfile, unit. */
struct procwatch_config {
    char *name;    /* the `name` label */
    char *comm;    /* /proc/PID/comm to match exactly */
    char *pidfile; /* path of a file holding the pid */
    char *unit;    /* systemd unit */
};

extern const struct vg_cfg_key procwatch_keys[];
extern const size_t procwatch_nkeys;

typedef struct procwatch procwatch_t;

/*
 * Validates and copies the configuration. proc_root: NULL for "/proc"; cgroup_root: NULL for
 * "/sys/fs/cgroup". NULL with err set ("process \"web\": set exactly one of comm, pidfile or
 * unit") or on no memory.
 */
procwatch_t *procwatch_new(const struct procwatch_config *watch, size_t n, const char *proc_root,
                           const char *cgroup_root, char *err, size_t errlen);

/* Names the pods of watched processes through pods (borrowed; it must outlive self): proc.pod
 * is sent for each one in a pod. NULL, the default: not sent. */
void procwatch_set_pods(procwatch_t *self, podmap_t *pods);

/* An epoll fd, readable when a watched process exited; -1 when exits are only polled. */
int procwatch_fd(const procwatch_t *self);

/* Call when procwatch_fd is readable: sends proc.up = 0 for each process that exited. */
void procwatch_handle(procwatch_t *self, struct collect_ctx *ctx);

/* Every interval: find the processes, hold them by pidfd, emit. */
void procwatch_run(procwatch_t *self, struct collect_ctx *ctx);

/* The collector interface (collect.h): "processes", procwatch_run every interval_ms (0: never),
 * procwatch_fd with procwatch_handle; takes ownership of *self_p (set to NULL): the collector's
 * destroy frees it. */
struct collector procwatch_collector(procwatch_t **self_p, int64_t interval_ms);

/*
 * The pid of the watched process called name, looked up now the way its watch says (comm,
 * pidfile or unit), without changing what the collector holds: for the executor's signal
 * action, which must signal the process the agent watches and no other. 0 with *ret_pid;
 * -ENOENT when no watch has that name, -ESRCH when it is not running, another negative errno.
 */
int procwatch_find_pid(procwatch_t *self, const char *name, int *ret_pid);

void procwatch_destroy(procwatch_t **self_p);

#endif
