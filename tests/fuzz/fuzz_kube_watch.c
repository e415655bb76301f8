/*
 * Fuzz target: a Kubernetes watch answer as the cluster agent's kubernetes probe reads it
 * (agent/probe/kube_watch.c): the bytes cut into lines (once whole, once in chunks whose sizes
 * the input's first byte picks), each line decoded into an event and folded into a cache that a
 * list seeded (the input's first line when it is a list, else a fixed one), then the cache
 * through the signals' decoders (agent/probe/kube_decode.c).
 *
 * Oracles beyond "no crash, no sanitizer report": both ways of feeding give the same lines; a
 * decoded object event has a name and a resourceVersion without control characters and an
 * object, a bookmark a resourceVersion, an error none; an applied event moves the cache's
 * resourceVersion to its own; the cache never holds more than KUBE_CACHE_OBJECTS_MAX objects;
 * its List decodes as pods, deployments, nodes and events (0, never -EINVAL), with as many pods
 * as cached objects.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kube_decode.h"
#include "kube_watch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_LINE (64 * 1024)

struct run {
    struct kube_cache cache;
    uint64_t hash; /* of the lines seen, in order */
    size_t lines;
    bool apply; /* fold the events into the cache */
};

static bool clean_token(const char *s)
{
    if (!s[0])
        return false;
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    }
    return true;
}

static int on_line(void *userdata, const char *line, size_t len)
{
    struct run *r = userdata;
    struct kube_watch_event ev;

    r->lines++;
    for (size_t i = 0; i < len; i++)
        r->hash = (r->hash ^ (unsigned char)line[i]) * 1099511628211u;
    r->hash = (r->hash ^ 0x100) * 1099511628211u;
    if (!r->apply || kube_watch_decode(line, len, &ev) < 0)
        return 0;
    switch (ev.type) {
    case KUBE_WATCH_ADDED:
    case KUBE_WATCH_MODIFIED:
    case KUBE_WATCH_DELETED:
        if (!ev.object || !clean_token(ev.name) || !clean_token(ev.rv))
            abort();
        break;
    case KUBE_WATCH_BOOKMARK:
        if (ev.object || !clean_token(ev.rv))
            abort();
        break;
    case KUBE_WATCH_ERROR:
        if (ev.object || ev.code < 0 || ev.code >= 1000)
            abort();
        break;
    }
    enum kube_apply a = kube_cache_apply(&r->cache, &ev);
    if (a == KUBE_APPLY_OK && ev.rv[0] && strcmp(r->cache.rv, ev.rv) != 0)
        abort(); /* the resourceVersion a watch resumes from did not follow the event */
    if (a == KUBE_APPLY_GONE && ev.type != KUBE_WATCH_ERROR)
        abort(); /* the cache was seeded: only a 410 says list again */
    kube_watch_event_clear(&ev);
    if (kube_cache_size(&r->cache) > KUBE_CACHE_OBJECTS_MAX)
        abort();
    return 0; /* go on past errors, to reach more of the input */
}

static void check_cache(const struct kube_cache *c)
{
    json_t *list = kube_cache_list(c);
    struct kube_pods_summary pods;
    struct kube_nodes_summary nodes;
    unsigned n;

    if (!list)
        abort(); /* seeded, so never NULL but out of memory */
    if (kube_decode_pods(list, &pods, NULL, NULL) != 0 || pods.pods != kube_cache_size(c))
        abort();
    if (kube_decode_deployments(list, &n) != 0 || n > pods.pods)
        abort();
    if (kube_decode_nodes(list, &nodes, NULL, NULL) != 0 || nodes.not_ready > pods.pods)
        abort();
    if (kube_decode_warning_events(list, 1767225600, 300, &n) != 0 || n > pods.pods)
        abort();
    json_decref(list);
}

static void seed(struct kube_cache *c, const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    json_t *list = json_loadb((const char *)data, nl ? (size_t)(nl - data) : size, 0, NULL);
    if (!list || kube_cache_replace(c, list) < 0) {
        json_decref(list);
        list = json_pack("{s:{s:s},s:[{s:{s:s}}]}", "metadata", "resourceVersion", "1", "items",
                         "metadata", "name", "seed");
        if (!list || kube_cache_replace(c, list) < 0)
            abort();
    }
    json_decref(list);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t chunk = (size_t)data[0] % 16 + 1;
    data++;
    size--;

    /* Whole, decoded and applied. */
    struct run whole = {.apply = true};
    struct kube_watch_stream s = {.max_line = MAX_LINE};
    seed(&whole.cache, data, size);
    int r1 = kube_watch_feed(&s, (const char *)data, size, on_line, &whole);
    size_t rest1 = s.len;
    kube_watch_stream_clear(&s);
    check_cache(&whole.cache);
    kube_cache_clear(&whole.cache);

    /* In chunks, only cut: the same lines, the same end. */
    struct run chunks = {.apply = false};
    int r2 = 0;
    s = (struct kube_watch_stream){.max_line = MAX_LINE};
    for (size_t off = 0; off < size && r2 == 0; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        r2 = kube_watch_feed(&s, (const char *)data + off, n, on_line, &chunks);
    }
    if (r1 != r2 ||
        (r1 == 0 && (chunks.lines != whole.lines || chunks.hash != whole.hash || s.len != rest1)))
        abort();
    if (r1 != 0 && r1 != -E2BIG)
        abort(); /* on_line never fails: only the bound can */
    kube_watch_stream_clear(&s);
    return 0;
}
