/*
 * The Kubernetes probe's decoders (vigil-probe-kubernetes.so, agent/probe/kubernetes.c): API
 * server JSON in, numbers and text out, with no I/O, so that a fuzz target can call each one
 * with any json_t (links jansson only).
 *
 * Every function accepts any JSON value: a missing or mistyped field counts as absent, never as
 * an error, except that a list without an "items" array is -EINVAL (the answer was not a list).
 * Strings from the server reach the text output with control characters replaced, so a pod or
 * an event cannot forge a line of the artifact; log text keeps its line breaks and tabs.
 */
#ifndef AGENT_PROBE_KUBE_DECODE_H
#define AGENT_PROBE_KUBE_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

/* A resource.Quantity ("250m", "4", "15Gi", "123456Ki", "1e3", "100n") as a number: cores for
 * CPU, bytes for memory. False for anything else. */
bool kube_quantity(const char *text, double *ret);

/* "2026-01-01T10:00:00Z" (RFC 3339, fractions and offsets allowed) as seconds since the epoch. */
bool kube_time(const char *text, time_t *ret);

/* ---- Signals ----------------------------------------------------------------------------- */

struct kube_pods_summary {
    unsigned pods;      /* items */
    unsigned not_ready; /* Running without Ready=True, Pending, Failed, Unknown */
    unsigned crashloop; /* containers (init containers too) waiting in CrashLoopBackOff */
    unsigned oomkilled; /* containers (init containers too) whose state or lastState is
                           terminated with reason OOMKilled */
};

struct kube_nodes_summary {
    unsigned not_ready;       /* no Ready condition with status True */
    unsigned memory_pressure; /* a MemoryPressure condition with status True */
    unsigned disk_pressure;   /* a DiskPressure condition with status True */
};

typedef void (*kube_pod_fn)(void *userdata, const char *pod, double restarts);
typedef void (*kube_node_fn)(void *userdata, const char *node, double cpu_cores,
                             double memory_bytes);

/* A PodList: the summary, and fn (may be NULL) for each pod whose containers restarted, with
 * the sum of their restartCount. 0 or -EINVAL. */
int kube_decode_pods(const json_t *list, struct kube_pods_summary *ret, kube_pod_fn fn,
                     void *userdata);

/* A DeploymentList: how many have status.unavailableReplicas > 0 or status.readyReplicas below
 * spec.replicas (1 when absent). 0 or -EINVAL. */
int kube_decode_deployments(const json_t *list, unsigned *ret_unavailable);

/* A NodeList: the summary (see struct kube_nodes_summary), and fn (may be NULL) for each node
 * with its allocatable CPU and memory (NAN when absent). 0 or -EINVAL. */
int kube_decode_nodes(const json_t *list, struct kube_nodes_summary *ret, kube_node_fn fn,
                      void *userdata);

/* An EventList: how many events of type Warning happened within window_s seconds before now
 * (lastTimestamp, else eventTime, else metadata.creationTimestamp; an event with none of them
 * readable is not counted; one stamped after now, a skewed clock, is). 0 or -EINVAL. */
int kube_decode_warning_events(const json_t *list, time_t now, int64_t window_s, unsigned *ret);

/* A metrics.k8s.io NodeMetricsList: fn for each node with its usage (NAN when absent). */
int kube_decode_node_metrics(const json_t *list, kube_node_fn fn, void *userdata);

/* True for a pod a responder looks at closer: not Ready (or not Running), or restarted. */
bool kube_pod_troubled(const json_t *pod);
/* True for a deployment short of replicas (as k8s.deployments_unavailable counts it). */
bool kube_deployment_troubled(const json_t *deployment);

/* ---- Text: what kubectl would print ------------------------------------------------------ */

struct kube_text {
    void (*write)(void *userdata, const char *data, size_t len);
    void *userdata;
};

/* kubectl get pods: NAME READY STATUS RESTARTS NODE AGE. */
void kube_text_pods(const struct kube_text *out, const json_t *list, time_t now);
/* kubectl describe pod (the part that explains a failure): phase, node, start, conditions,
 * each container's image, state, last state with reason and exit code, ready, restarts.
 * Environment variables are not shown (they may hold credentials). */
void kube_text_pod(const struct kube_text *out, const json_t *pod, time_t now);
/* Events, Warning first, then the most recent first; at most max of them (the rest counted). */
void kube_text_events(const struct kube_text *out, const json_t *list, time_t now, size_t max);
/* kubectl get ingress and describe ingress: class, hosts, address, each rule's paths and
 * backends, the default backend, TLS hosts. */
void kube_text_ingresses(const struct kube_text *out, const json_t *list, time_t now);
/* kubectl get deployments: NAME DESIRED READY UP-TO-DATE AVAILABLE UNAVAILABLE AGE. */
void kube_text_deployments(const struct kube_text *out, const json_t *list, time_t now);
/* kubectl top pods: NAME CPU(cores) MEMORY(bytes), from a PodMetricsList. */
void kube_text_top_pods(const struct kube_text *out, const json_t *list);
/* kubectl get nodes: NAME STATUS AGE VERSION; then for each node the conditions that are not
 * in their good state, allocatable and capacity (describe nodes). */
void kube_text_nodes(const struct kube_text *out, const json_t *list, time_t now);
/* kubectl top nodes: NAME CPU(cores) CPU% MEMORY(bytes) MEMORY% (percent of allocatable from
 * nodes, which may be NULL). */
void kube_text_top_nodes(const struct kube_text *out, const json_t *metrics, const json_t *nodes);
/* kubectl describe deployment (the part that explains a rollout): selector, replicas,
 * strategy, each container's image and resources (no environment), conditions. */
void kube_text_deployment(const struct kube_text *out, const json_t *deployment, time_t now);
/* kubectl get configmap -o yaml, the data: each key with its value indented under it (control
 * characters but line breaks and tabs replaced), binaryData keys with their size only. */
void kube_text_configmap(const struct kube_text *out, const json_t *configmap);
/* The names of the Secrets and ConfigMaps a deployment's pod template references (volumes,
 * projected volumes, imagePullSecrets, env valueFrom, envFrom), each with where: names only,
 * no Secret is read. */
void kube_text_config_refs(const struct kube_text *out, const json_t *deployment);
/* Log text as it came, with control characters other than line breaks and tabs replaced and a
 * final line break added when missing. */
void kube_text_log(const struct kube_text *out, const char *text, size_t len);

#endif
