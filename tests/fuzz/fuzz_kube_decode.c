/*
 * Fuzz target: what a Kubernetes API server answers the cluster agent's kubernetes probe with
 * (agent/probe/kube_decode.c), parsed as the probe parses it (json_loadb, no flags), through
 * every decoder and every text section, and the input's bytes as a quantity, a time and a log.
 *
 * Oracles beyond "no crash, no sanitizer report": a decoder answers 0 or -EINVAL and nothing
 * else, -EINVAL exactly when the value has no "items" array; counts never exceed the items
 * (OOMKilled containers: the items' container statuses; a wider window of Warning events
 * never counts fewer);
 * the text sections never write a control character but line breaks (and tabs in a log or a
 * ConfigMap's values), so a pod, an event or a log line cannot forge a line of the artifact's
 * headings; the log section ends with a line break; a ConfigMap's text indents every line but
 * its title, so a value cannot forge one either.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kube_decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sink {
    bool log;   /* tabs allowed */
    char last;  /* the last byte written */
    size_t len; /* bytes written */
    char *copy; /* when set (copy_cap > 0): what was written, up to copy_cap bytes */
    size_t copy_len, copy_cap;
};

static void check_write(void *userdata, const char *data, size_t len)
{
    struct sink *s = userdata;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)data[i];
        if (c < 0x20 && c != '\n' && !(s->log && c == '\t'))
            abort(); /* a control character reached the artifact */
        if (c == 0x7f)
            abort();
    }
    if (len > 0)
        s->last = data[len - 1];
    s->len += len;
    if (s->copy_cap > s->copy_len) {
        size_t n = len < s->copy_cap - s->copy_len ? len : s->copy_cap - s->copy_len;
        memcpy(s->copy + s->copy_len, data, n);
        s->copy_len += n;
    }
}

/* A ConfigMap's text: every line but its title is indented, so a value cannot forge a title or
 * a heading of the artifact. */
static void check_configmap(const json_t *v)
{
    static char buf[65536]; /* filled by check_write */
    struct sink s = {.log = true, .copy = buf, .copy_cap = sizeof(buf)};
    struct kube_text out = {check_write, &s};
    kube_text_configmap(&out, v);
    if (s.len == 0 || s.last != '\n')
        abort();
    if (s.copy_len < 10 || memcmp(buf, "ConfigMap ", 10) != 0)
        abort();
    for (size_t i = 0; i + 1 < s.copy_len; i++) {
        if (buf[i] == '\n' && buf[i + 1] != ' ')
            abort();
    }
}

static void count_pod(void *userdata, const char *pod, double restarts)
{
    size_t *n = userdata;
    if (!pod || !(restarts > 0))
        abort(); /* only pods that restarted are reported, by name */
    (*n)++;
}

static void count_node(void *userdata, const char *node, double cpu, double memory)
{
    size_t *n = userdata;
    (void)cpu;
    (void)memory;
    if (!node)
        abort();
    (*n)++;
}

/* The container statuses (init ones too) of the items: what k8s.oomkilled may count. */
static size_t container_statuses(const json_t *items)
{
    static const char *const lists[] = {"containerStatuses", "initContainerStatuses"};
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(items); i++) {
        json_t *status = json_object_get(json_array_get(items, i), "status");
        for (size_t l = 0; l < 2; l++) {
            json_t *statuses = json_object_get(status, lists[l]);
            if (json_is_array(statuses))
                n += json_array_size(statuses);
        }
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The raw bytes: a quantity, a time, a log. */
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    double q;
    time_t t;
    if (kube_quantity(text, &q) && isnan(q))
        abort();
    (void)kube_time(text, &t);
    struct sink log = {.log = true};
    struct kube_text log_out = {check_write, &log};
    kube_text_log(&log_out, text, size);
    if (size > 0 && log.last != '\n')
        abort(); /* the section always ends its last line */
    free(text);

    json_t *v = json_loadb((const char *)data, size, 0, NULL);
    if (!v)
        return 0;
    json_t *items = json_is_object(v) ? json_object_get(v, "items") : NULL;
    bool is_list = json_is_array(items);
    size_t nitems = is_list ? json_array_size(items) : 0;

    struct kube_pods_summary pods;
    size_t restarted = 0;
    int r = kube_decode_pods(v, &pods, count_pod, &restarted);
    if (r != (is_list ? 0 : -EINVAL))
        abort();
    if (r == 0 && (pods.pods != nitems || pods.not_ready > nitems || restarted > nitems))
        abort();
    /* a container counts once, however many of its states say OOMKilled */
    if (r == 0 && pods.oomkilled > container_statuses(items))
        abort();
    unsigned unavailable = 0;
    r = kube_decode_deployments(v, &unavailable);
    if (r != (is_list ? 0 : -EINVAL) || (r == 0 && unavailable > nitems))
        abort();
    size_t nodes = 0, metrics = 0;
    struct kube_nodes_summary ns = {0};
    r = kube_decode_nodes(v, &ns, count_node, &nodes);
    if (r != (is_list ? 0 : -EINVAL) ||
        (r == 0 && (ns.not_ready > nitems || ns.memory_pressure > nitems ||
                    ns.disk_pressure > nitems || nodes > nitems)))
        abort();
    r = kube_decode_node_metrics(v, count_node, &metrics);
    if ((r != 0 && r != -EINVAL) || metrics > nitems)
        abort();
    unsigned warnings = 0;
    r = kube_decode_warning_events(v, 1796000000, 300, &warnings);
    if (r != (is_list ? 0 : -EINVAL) || (r == 0 && warnings > nitems))
        abort();
    /* a wider window never counts fewer */
    unsigned wider = 0;
    if (r == 0 && (kube_decode_warning_events(v, 1796000000, INT64_MAX, &wider) != 0 ||
                   wider < warnings || wider > nitems))
        abort();
    (void)kube_pod_troubled(v);

    struct sink s = {.log = false};
    struct kube_text out = {check_write, &s};
    time_t now = 1796000000;
    kube_text_pods(&out, v, now);
    kube_text_pod(&out, v, now);
    kube_text_events(&out, v, now, 50);
    kube_text_ingresses(&out, v, now);
    kube_text_deployments(&out, v, now);
    kube_text_top_pods(&out, v);
    kube_text_nodes(&out, v, now);
    kube_text_top_nodes(&out, v, v);
    kube_text_top_nodes(&out, v, NULL);
    kube_text_deployment(&out, v, now);
    kube_text_config_refs(&out, v);
    (void)kube_deployment_troubled(v);
    check_configmap(v);
    for (size_t i = 0; i < nitems; i++) {
        json_t *item = json_array_get(items, i);
        (void)kube_pod_troubled(item);
        (void)kube_deployment_troubled(item);
        kube_text_pod(&out, item, now);
        kube_text_deployment(&out, item, now);
        kube_text_config_refs(&out, item);
        check_configmap(item);
    }
    json_decref(v);
    return 0;
}
