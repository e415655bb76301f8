/*
 * For unit tests: an artifact writer (struct artifact_writer, agent/probe/probe.h) that keeps
 * what it is given in memory, NUL-terminated, and can be told to fail from its n-th call on.
 * Include after <cmocka.h>.
 */
#ifndef TESTS_ARTIFACT_SINK_H
#define TESTS_ARTIFACT_SINK_H

#include <stdlib.h>
#include <string.h>

struct sink {
    char *data;
    size_t len, cap;
    size_t calls;
    size_t fail_after; /* 0: never fail; n: the n-th call and every later one fail */
    int fail_with;
};

static inline int sink_write(void *w, const void *data, size_t len)
{
    struct sink *s = w;
    s->calls++;
    if (s->fail_after && s->calls >= s->fail_after)
        return s->fail_with;
    if (s->len + len + 1 > s->cap) {
        size_t cap = (s->len + len + 1) * 2;
        char *more = realloc(s->data, cap);
        assert_non_null(more);
        s->data = more;
        s->cap = cap;
    }
    memcpy(s->data + s->len, data, len);
    s->len += len;
    s->data[s->len] = '\0';
    return 0;
}

#endif
