/* The Kubernetes probe's watch streams and cache: bytes in, events and objects out (see .h). */
#include "kube_watch.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- Lines ------------------------------------------------------------------------------- */

static int emit_line(const char *line, size_t len, kube_line_fn fn, void *userdata)
{
    if (len == 0 || (len == 1 && line[0] == '\r'))
        return 0; /* a blank line is no event */
    return fn(userdata, line, len);
}

int kube_watch_feed(struct kube_watch_stream *s, const char *data, size_t len, kube_line_fn fn,
                    void *userdata)
{
    size_t max = s->max_line ? s->max_line : KUBE_WATCH_LINE_MAX;

    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) : len;

        if (s->len == 0 && nl) {
            /* The whole line is in data: no copy. */
            if (take > max)
                return -E2BIG;
            int r = emit_line(data, take, fn, userdata);
            if (r < 0)
                return r;
        } else {
            if (take > max - s->len)
                return -E2BIG;
            if (s->len + take + 1 > s->cap) {
                size_t cap = s->cap ? s->cap : 4096;
                while (cap < s->len + take + 1)
                    cap *= 2;
                if (cap > max + 1)
                    cap = max + 1;
                char *grown = realloc(s->buf, cap);
                if (!grown)
                    return -ENOMEM;
                s->buf = grown;
                s->cap = cap;
            }
            memcpy(s->buf + s->len, data, take);
            s->len += take;
            if (nl) {
                size_t n = s->len;
                s->len = 0; /* before fn, which may clear the stream */
                int r = emit_line(s->buf, n, fn, userdata);
                if (r < 0)
                    return r;
            }
        }
        if (!nl)
            break;
        data = nl + 1;
        len -= take + 1;
    }
    return 0;
}

void kube_watch_stream_clear(struct kube_watch_stream *s)
{
    free(s->buf);
    s->buf = NULL;
    s->len = s->cap = 0;
}

/* ---- Events ------------------------------------------------------------------------------ */

static const char *str_of(const json_t *obj, const char *key)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A name or a resourceVersion as the API server sends them: non-empty, shorter than size, no
 * control character (they become label values and lines of text). */
static bool copy_token(char *dst, size_t size, const char *src)
{
    size_t n = src ? strnlen(src, size) : 0;
    if (n == 0 || n >= size)
        return false;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)src[i] < 0x20 || src[i] == 0x7f)
            return false;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
    return true;
}

static void copy_printable(char *dst, size_t size, const char *src)
{
    size_t n = 0;
    for (; src && src[n] && n + 1 < size; n++)
        dst[n] = src[n] >= 0x20 && src[n] < 0x7f ? src[n] : '?';
    dst[n] = '\0';
}

static bool parse_type(const char *text, enum kube_watch_type *ret)
{
    static const struct {
        const char *name;
        enum kube_watch_type type;
    } types[] = {
        {"ADDED", KUBE_WATCH_ADDED},     {"MODIFIED", KUBE_WATCH_MODIFIED},
        {"DELETED", KUBE_WATCH_DELETED}, {"BOOKMARK", KUBE_WATCH_BOOKMARK},
        {"ERROR", KUBE_WATCH_ERROR},
    };
    for (size_t i = 0; text && i < sizeof(types) / sizeof(types[0]); i++) {
        if (strcmp(text, types[i].name) == 0) {
            *ret = types[i].type;
            return true;
        }
    }
    return false;
}

int kube_watch_decode(const char *line, size_t len, struct kube_watch_event *ret)
{
    struct kube_watch_event ev = {0};
    json_error_t jerr;
    json_t *doc = json_loadb(line, len, 0, &jerr);
    int r = -EINVAL;

    if (!json_is_object(doc) || !parse_type(str_of(doc, "type"), &ev.type))
        goto out;
    json_t *object = json_object_get(doc, "object");
    if (!json_is_object(object))
        goto out;
    json_t *meta = json_object_get(object, "metadata");
    switch (ev.type) {
    case KUBE_WATCH_ERROR: {
        json_t *code = json_object_get(object, "code");
        if (json_is_integer(code) && json_integer_value(code) > 0 &&
            json_integer_value(code) < 1000)
            ev.code = (int)json_integer_value(code);
        copy_printable(ev.message, sizeof(ev.message), str_of(object, "message"));
        break;
    }
    case KUBE_WATCH_BOOKMARK:
        if (!copy_token(ev.rv, sizeof(ev.rv), str_of(meta, "resourceVersion")))
            goto out;
        break;
    default:
        if (!copy_token(ev.name, sizeof(ev.name), str_of(meta, "name")) ||
            !copy_token(ev.rv, sizeof(ev.rv), str_of(meta, "resourceVersion")))
            goto out;
        ev.object = json_incref(object);
        break;
    }
    *ret = ev;
    r = 0;
out:
    json_decref(doc);
    return r;
}

void kube_watch_event_clear(struct kube_watch_event *ev)
{
    json_decref(ev->object);
    *ev = (struct kube_watch_event){0};
}

/* ---- The cache --------------------------------------------------------------------------- */

/* Copies key of src into dst when present. 0 or -ENOMEM. */
static int keep(json_t *dst, const json_t *src, const char *key)
{
    json_t *v = json_object_get(src, key);
    if (!v)
        return 0;
    return json_object_set(dst, key, v) == 0 ? 0 : -ENOMEM;
}

/* The parts of obj the signals read, as a new object sharing obj's values; NULL if out of
 * memory. */
static json_t *trimmed(const json_t *obj)
{
    json_t *t = json_object();
    json_t *meta = json_object();
    const json_t *src_meta = json_object_get(obj, "metadata");
    const json_t *spec = json_object_get(obj, "spec");
    int r = t && meta ? 0 : -ENOMEM;

    if (r == 0 && json_is_object(src_meta)) {
        r = keep(meta, src_meta, "name");
        if (r == 0)
            r = keep(meta, src_meta, "resourceVersion");
        if (r == 0)
            r = keep(meta, src_meta, "creationTimestamp");
    }
    if (r == 0)
        r = json_object_set(t, "metadata", meta) == 0 ? 0 : -ENOMEM;
    if (r == 0 && json_is_object(spec) && json_object_get(spec, "replicas")) {
        json_t *s = json_object();
        r = s && keep(s, spec, "replicas") == 0 && json_object_set(t, "spec", s) == 0 ? 0 : -ENOMEM;
        json_decref(s);
    }
    static const char *const top[] = {"status", "type", "lastTimestamp", "eventTime"};
    for (size_t i = 0; r == 0 && i < sizeof(top) / sizeof(top[0]); i++)
        r = keep(t, obj, top[i]);
    json_decref(meta);
    if (r < 0) {
        json_decref(t);
        return NULL;
    }
    return t;
}

int kube_cache_replace(struct kube_cache *c, const json_t *list)
{
    const json_t *items = json_object_get(list, "items");
    const char *rv = str_of(json_object_get(list, "metadata"), "resourceVersion");
    char rvbuf[KUBE_RV_MAX];
    size_t i;
    json_t *item;

    if (!json_is_array(items) || !copy_token(rvbuf, sizeof(rvbuf), rv))
        return -EINVAL;
    if (json_array_size(items) > KUBE_CACHE_OBJECTS_MAX)
        return -E2BIG;
    json_t *objects = json_object();
    if (!objects)
        return -ENOMEM;
    json_array_foreach(items, i, item)
    {
        char name[254];
        if (!copy_token(name, sizeof(name), str_of(json_object_get(item, "metadata"), "name"))) {
            json_decref(objects);
            return -EINVAL;
        }
        json_t *t = trimmed(item);
        if (!t || json_object_set_new(objects, name, t) < 0) {
            json_decref(objects);
            return -ENOMEM;
        }
    }
    json_decref(c->objects);
    c->objects = objects;
    memcpy(c->rv, rvbuf, sizeof(rvbuf));
    return 0;
}

enum kube_apply kube_cache_apply(struct kube_cache *c, const struct kube_watch_event *ev)
{
    if (!c->objects)
        return KUBE_APPLY_GONE;
    switch (ev->type) {
    case KUBE_WATCH_ERROR:
        return ev->code == 410 ? KUBE_APPLY_GONE : KUBE_APPLY_RESTART;
    case KUBE_WATCH_BOOKMARK:
        break;
    case KUBE_WATCH_DELETED:
        json_object_del(c->objects, ev->name);
        break;
    case KUBE_WATCH_ADDED:
    case KUBE_WATCH_MODIFIED: {
        if (!json_object_get(c->objects, ev->name) &&
            json_object_size(c->objects) >= KUBE_CACHE_OBJECTS_MAX)
            return KUBE_APPLY_RESTART;
        json_t *t = ev->object ? trimmed(ev->object) : NULL;
        if (!t || json_object_set_new(c->objects, ev->name, t) < 0)
            return KUBE_APPLY_RESTART; /* out of memory: the event is seen again on resuming */
        break;
    }
    }
    if (ev->rv[0])
        memcpy(c->rv, ev->rv, sizeof(c->rv));
    return KUBE_APPLY_OK;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

json_t *kube_cache_list(const struct kube_cache *c)
{
    size_t n = kube_cache_size(c);
    const char **names = NULL;
    json_t *items = NULL, *list = NULL;
    const char *key;
    json_t *value;
    size_t i = 0;

    if (!c->objects)
        return NULL;
    names = calloc(n ? n : 1, sizeof(*names));
    items = json_array();
    list = json_object();
    if (!names || !items || !list)
        goto err;
    json_object_foreach(c->objects, key, value)
    {
        names[i++] = key;
    }
    qsort(names, n, sizeof(*names), by_name);
    for (i = 0; i < n; i++) {
        if (json_array_append(items, json_object_get(c->objects, names[i])) < 0)
            goto err;
    }
    if (json_object_set_new(list, "items", items) < 0) {
        items = NULL; /* set_new took it even on failure */
        goto err;
    }
    free(names);
    return list;

err:
    free(names);
    json_decref(items);
    json_decref(list);
    return NULL;
}

size_t kube_cache_size(const struct kube_cache *c)
{
    return c->objects ? json_object_size(c->objects) : 0;
}

void kube_cache_clear(struct kube_cache *c)
{
    json_decref(c->objects);
    *c = (struct kube_cache){0};
}
