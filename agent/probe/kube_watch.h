/*
 * The Kubernetes probe's watch streams (vigil-probe-kubernetes.so, agent/probe/kubernetes.c):
 * bytes of a `?watch=1` answer in, events out, and the in-memory copy of a collection that the
 * signals are computed from. No I/O, so that a fuzz target and unit tests can drive it with any
 * bytes (links jansson only).
 *
 * A watch answer is newline-delimited JSON, one event per line:
 *   {"type": "ADDED" | "MODIFIED" | "DELETED", "object": {...the object...}}
 *   {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "RV"}}}
 *   {"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "..."}}
 * kube_watch_feed cuts the stream into lines (bounded: a line longer than its max ends the
 * watch), kube_watch_decode turns one line into an event, and kube_cache_apply folds the event
 * into the cache. The probe lists a collection once (kube_cache_replace), then watches from the
 * list's resourceVersion; the cache remembers the last resourceVersion seen (of an event or a
 * bookmark), which is where a watch that ended resumes. A watch that answers 410 Gone (as its
 * HTTP status or as an ERROR event with code 410) cannot resume: the collection is listed again.
 *
 * The cache keeps only what the signals read (kube_decode.h): metadata.name,
 * .resourceVersion and .creationTimestamp, spec.replicas, status, and an event's type,
 * lastTimestamp and eventTime, so a large pod spec or annotation costs nothing after decoding.
 */
#ifndef AGENT_PROBE_KUBE_WATCH_H
#define AGENT_PROBE_KUBE_WATCH_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define KUBE_RV_MAX 64                 /* a resourceVersion, as text */
#define KUBE_WATCH_LINE_MAX (4u << 20) /* one event: an object of a few MiB at most */
#define KUBE_CACHE_OBJECTS_MAX 50000   /* objects kept per collection */

/* ---- Lines ------------------------------------------------------------------------------- */

struct kube_watch_stream {
    char *buf; /* the incomplete last line */
    size_t len, cap;
    size_t max_line; /* 0 = KUBE_WATCH_LINE_MAX */
};

/* Called for each complete line (without its '\n'; a '\r' before it is kept, blank lines are
 * skipped). Returns 0 to go on, or a negative errno that kube_watch_feed returns at once. */
typedef int (*kube_line_fn)(void *userdata, const char *line, size_t len);

/* Appends data to the stream and calls fn for every line it completes. 0; -E2BIG when a line
 * grows past max_line (the stream is then useless: end the watch); -ENOMEM; or fn's error. */
int kube_watch_feed(struct kube_watch_stream *s, const char *data, size_t len, kube_line_fn fn,
                    void *userdata);

/* Forgets the incomplete line and frees the buffer. Accepts a zeroed struct. */
void kube_watch_stream_clear(struct kube_watch_stream *s);

/* ---- Events ------------------------------------------------------------------------------ */

enum kube_watch_type {
    KUBE_WATCH_ADDED,
    KUBE_WATCH_MODIFIED,
    KUBE_WATCH_DELETED,
    KUBE_WATCH_BOOKMARK,
    KUBE_WATCH_ERROR,
};

struct kube_watch_event {
    enum kube_watch_type type;
    json_t *object;       /* ADDED, MODIFIED, DELETED: the object, owned (json_decref) */
    char name[254];       /* its metadata.name: 1 to 253 bytes, no control character */
    char rv[KUBE_RV_MAX]; /* metadata.resourceVersion; "" when absent (ERROR) */
    int code;             /* ERROR: the Status's code (410: Gone), 0 when absent */
    char message[256];    /* ERROR: the Status's message, printable ASCII */
};

/* One line of a watch answer as an event: 0 with *ret set (kube_watch_event_clear it), or
 * -EINVAL for anything else: not JSON, not an object, an unknown type, an object event whose
 * object has no usable name or resourceVersion, a bookmark without a resourceVersion. */
int kube_watch_decode(const char *line, size_t len, struct kube_watch_event *ret);

void kube_watch_event_clear(struct kube_watch_event *ev);

/* ---- The cache --------------------------------------------------------------------------- */

struct kube_cache {
    json_t *objects;      /* name -> the trimmed object; NULL until the first list */
    char rv[KUBE_RV_MAX]; /* the last resourceVersion seen: where a watch resumes */
};

/* Replaces the contents with a List answer's items (trimmed) and its metadata.resourceVersion.
 * 0; -EINVAL when list is no list (no items array, no resourceVersion) or an item has no name;
 * -E2BIG past KUBE_CACHE_OBJECTS_MAX items; -ENOMEM. The cache is unchanged on failure. */
int kube_cache_replace(struct kube_cache *c, const json_t *list);

/* What an event means for the watch it came from. */
enum kube_apply {
    KUBE_APPLY_OK,      /* applied (or a bookmark noted): go on */
    KUBE_APPLY_GONE,    /* ERROR 410: the resourceVersion is too old, list again */
    KUBE_APPLY_RESTART, /* another ERROR, or the cache is full: watch again from c->rv */
};

/* Folds ev into the cache: ADDED/MODIFIED store the object (trimmed), DELETED removes it,
 * BOOKMARK only moves the resourceVersion, ERROR changes nothing. The cache's resourceVersion
 * follows every event that carries one. A cache never listed (objects NULL) takes nothing:
 * KUBE_APPLY_GONE. */
enum kube_apply kube_cache_apply(struct kube_cache *c, const struct kube_watch_event *ev);

/* The cached objects as a new List value {"items": [...]} sorted by name (the items are
 * shared with the cache: do not modify them), for the decoders of kube_decode.h; NULL when the
 * cache was never listed or out of memory. */
json_t *kube_cache_list(const struct kube_cache *c);

/* Number of objects cached (0 when never listed). */
size_t kube_cache_size(const struct kube_cache *c);

/* Frees the objects and forgets the resourceVersion. Accepts a zeroed struct. */
void kube_cache_clear(struct kube_cache *c);

#endif
