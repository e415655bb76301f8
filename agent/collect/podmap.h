/*
 * Pod identity on a node without API access: a process's pod uid and container id (read from
 * its cgroup by procfs_parse_cgroup) resolved to namespace, pod and container names through
 * the directories the kubelet keeps for logs:
 *
 *   <pod_logs_dir>/<namespace>_<pod>_<pod uid>/<container>/<restart>.log   (/var/log/pods)
 *   <container_logs_dir>/<pod>_<namespace>_<container>-<container id>.log  (/var/log/containers)
 *
 * The first names the pod of a uid; the second (symlinks, whose names alone are read, never
 * followed) names the container of a container id. A container id the second directory does
 * not list (a pod's sandbox, the "pause" process, has no log) stays unknown: the pod is named,
 * the container is "". Only when that directory cannot be read at all does a pod with a single
 * container directory give that container to every container id of the pod (the sandbox's
 * process included: better than nothing on a node that keeps no /var/log/containers).
 *
 * Namespace, pod and container names are DNS labels (or a subdomain for the pod): no '_', so
 * the three parts of a directory name are found by its two underscores. A name of any other
 * shape (a stray directory, hostile bytes, a 300-character label) is skipped and counted in
 * podmap_stats().malformed, never resolved.
 *
 * The cache: what one scan of each directory found, replaced whole by the next scan (pods that
 * went away are forgotten), at most PODMAP_PODS_MAX pods and PODMAP_CONTAINERS_MAX containers
 * (more are counted in .overflow). A scan runs only when a lookup meets a uid (or container id)
 * the cache does not know, and then at most once per PODMAP_RESCAN_MS: a process of a pod
 * that has no log directory costs one scan per interval, not one per lookup.
 *
 * Thread safety: every function may be called from any thread (the collectors on the main
 * loop, evidence writers on the evidence thread); a mutex guards the cache.
 */
#ifndef AGENT_COLLECT_PODMAP_H
#define AGENT_COLLECT_PODMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "procfs.h" /* struct procfs_cgroup_ids */

#define PODMAP_NAMESPACE_MAX 64    /* a DNS label (63) and the NUL */
#define PODMAP_POD_MAX 254         /* a DNS subdomain (253) and the NUL */
#define PODMAP_CONTAINER_MAX 64    /* a DNS label (63) and the NUL */
#define PODMAP_PODS_MAX 1024       /* a node runs 110 by default: ~0.4 MiB at most */
#define PODMAP_CONTAINERS_MAX 4096 /* ~0.6 MiB at most */
#define PODMAP_RESCAN_MS 5000
#define PODMAP_POD_LOGS_DIR "/var/log/pods"
#define PODMAP_CONTAINER_LOGS_DIR "/var/log/containers"

struct pod_identity {
    char namespace[PODMAP_NAMESPACE_MAX];
    char pod[PODMAP_POD_MAX];
    char container[PODMAP_CONTAINER_MAX]; /* "" when it could not be told */
    char uid[PROCFS_POD_UID_MAX];
};

struct podmap_stats {
    uint64_t scans;      /* directory scans (pods and containers together) */
    uint64_t malformed;  /* directory entries of the wrong shape, per scan */
    uint64_t overflow;   /* entries beyond the cache's bounds, per scan */
    uint64_t unresolved; /* lookups of a pod uid no directory names */
    size_t pods;         /* in the cache now */
    size_t containers;
};

/* ---- Names (pure: no I/O) --------------------------------------------------------------- */

/* "<namespace>_<pod>_<uid>" -> ret's namespace, pod and uid (container ""). -EINVAL for any
 * other shape; ret is then untouched. */
int podmap_parse_pod_dir(const char *name, struct pod_identity *ret);

/* A container directory's name: a DNS label, 1 to 63 of [a-z0-9-]. */
bool podmap_container_name_valid(const char *name);

/* "<pod>_<namespace>_<container>-<64 hex>.log" -> ret's pod, namespace, container and
 * ret_container_id (PROCFS_CONTAINER_ID_MAX bytes). -EINVAL otherwise, outputs untouched. */
int podmap_parse_container_link(const char *name, struct pod_identity *ret, char *ret_container_id);

/* ---- The resolver ----------------------------------------------------------------------- */

typedef struct podmap podmap_t;

/* NULL directories take the defaults above. No directory is read here. NULL on no memory. */
podmap_t *podmap_new(const char *pod_logs_dir, const char *container_logs_dir);
void podmap_destroy(podmap_t **self_p);

/*
 * The pod of ids (ids->pod_uid must be set; a container outside Kubernetes has none), with its
 * container when it can be told. now_ms is a monotonic clock (vg_mono_ms), for the rescan
 * bound. Returns 0 with *ret filled; -ENOENT when ids names no pod or no directory names that
 * pod (counted in .unresolved); -EINVAL for bad arguments. *ret is untouched on failure.
 */
int podmap_resolve(podmap_t *self, const struct procfs_cgroup_ids *ids, int64_t now_ms,
                   struct pod_identity *ret);

/* podmap_resolve for a process: reads <proc_fd>/<pid>/cgroup first. -ENOENT as above, or
 * when the process has gone or is in no pod. */
int podmap_resolve_pid(podmap_t *self, int proc_fd, int pid, int64_t now_ms,
                       struct pod_identity *ret);

/* "namespace/pod/container" ("namespace/pod/-" without a container), for text artifacts. */
void podmap_identity_text(const struct pod_identity *id, char *buf, size_t cap);

void podmap_get_stats(podmap_t *self, struct podmap_stats *ret);

#endif
