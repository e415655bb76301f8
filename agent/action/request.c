/* The request vigil-agent-action reads on stdin: see svc.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "svc.h"

const char *svc_get(const struct svc_request *r, const char *key)
{
    for (size_t i = 0; i < r->n; i++) {
        if (strcmp(r->items[i].key, key) == 0)
            return r->items[i].value;
    }
    return NULL;
}

const char *svc_get_or(const struct svc_request *r, const char *key, const char *fallback)
{
    const char *v = svc_get(r, key);
    return v ? v : fallback;
}

int svc_timeout_ms(const struct svc_request *r, int64_t *ret_ms, char *err, size_t errlen)
{
    const char *text = svc_get(r, "timeout_ms");
    int64_t ms;

    if (!text) {
        snprintf(err, errlen, "the request has no timeout_ms");
        return SVC_EXIT_BAD_REQUEST;
    }
    if (vg_parse_int(text, &ms) < 0 || ms < 1 || ms > SVC_TIMEOUT_MAX_MS) {
        snprintf(err, errlen, "timeout_ms: expected 1 to %lld, got \"%.32s\"", SVC_TIMEOUT_MAX_MS,
                 text);
        return SVC_EXIT_BAD_REQUEST;
    }
    *ret_ms = ms;
    return SVC_EXIT_OK;
}

int svc_request_parse(const char *buf, size_t len, struct svc_kv *items, size_t max, size_t *ret_n)
{
    size_t n = 0, at = 0;

    *ret_n = 0;
    if (len > 0 && buf[len - 1] != '\0')
        return -EINVAL;
    while (at < len) {
        const char *key = buf + at;
        at += strlen(key) + 1;
        if (at >= len || key[0] == '\0' || n == max)
            return -EINVAL; /* a key without a value, an empty key, too many */
        const char *value = buf + at;
        at += strlen(value) + 1;
        for (size_t i = 0; i < n; i++) {
            if (strcmp(items[i].key, key) == 0)
                return -EINVAL;
        }
        items[n++] = (struct svc_kv){key, value};
    }
    *ret_n = n;
    return 0;
}
