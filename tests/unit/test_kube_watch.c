/*
 * The kubernetes probe's watch streams (agent/probe/kube_watch.c): a watch answer cut into
 * lines wherever the network cuts it, each line decoded into an event, the events folded into
 * the cache the k8s.* signals are computed from: the resourceVersion a watch resumes from
 * (events and bookmarks), 410 Gone (list again), other errors (resume), bounds. The probe end to
 * end, with a server that drops watches and forgets history, is
 * tests/integration/kube_watch.sh.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kube_decode.h"
#include "kube_watch.h"

static json_t *parse(const char *text)
{
    json_error_t err;
    json_t *j = json_loads(text, 0, &err);
    if (!j)
        fail_msg("bad test JSON at %d: %s", err.position, err.text);
    return j;
}

/* Lines seen by kube_watch_feed, joined with '|'. */
struct lines {
    char text[4096];
    size_t n;
};

static int collect_line(void *userdata, const char *line, size_t len)
{
    struct lines *l = userdata;
    size_t used = strlen(l->text);
    snprintf(l->text + used, sizeof(l->text) - used, "%s%.*s", l->n ? "|" : "", (int)len, line);
    l->n++;
    return 0;
}

/* The same lines whatever the chunks the bytes arrive in; blank lines skipped; the last line
 * waits for its newline. */
static void test_feed_any_split(void **state)
{
    (void)state;
    static const char stream[] = "{\"a\":1}\n\n{\"b\":2}\r\n{\"c\":3}\n{\"partial\"";
    for (size_t cut = 0; cut <= sizeof(stream) - 1; cut++) {
        for (size_t step = 1; step <= 7; step++) {
            struct kube_watch_stream s = {0};
            struct lines l = {{0}, 0};
            /* the first cut bytes in chunks of step, then the rest at once */
            for (size_t off = 0; off < cut; off += step) {
                size_t n = cut - off < step ? cut - off : step;
                assert_int_equal(kube_watch_feed(&s, stream + off, n, collect_line, &l), 0);
            }
            assert_int_equal(
                kube_watch_feed(&s, stream + cut, sizeof(stream) - 1 - cut, collect_line, &l), 0);
            assert_string_equal(l.text, "{\"a\":1}|{\"b\":2}\r|{\"c\":3}");
            assert_int_equal(s.len, strlen("{\"partial\""));
            kube_watch_stream_clear(&s);
        }
    }
}

static int stop_at_second(void *userdata, const char *line, size_t len)
{
    int *n = userdata;
    (void)line;
    (void)len;
    return ++*n == 2 ? -EPROTO : 0;
}

/* A line past the bound ends the stream (-E2BIG), whole or in pieces; a callback's error stops
 * the feed at once. */
static void test_feed_bounds(void **state)
{
    (void)state;
    struct kube_watch_stream s = {.max_line = 8};
    struct lines l = {{0}, 0};

    assert_int_equal(kube_watch_feed(&s, "12345678\n", 9, collect_line, &l), 0);
    assert_int_equal(kube_watch_feed(&s, "123456789\n", 10, collect_line, &l), -E2BIG);
    kube_watch_stream_clear(&s);
    s = (struct kube_watch_stream){.max_line = 8};
    assert_int_equal(kube_watch_feed(&s, "12345", 5, collect_line, &l), 0);
    assert_int_equal(kube_watch_feed(&s, "6789", 4, collect_line, &l), -E2BIG);
    kube_watch_stream_clear(&s);

    int n = 0;
    s = (struct kube_watch_stream){0};
    assert_int_equal(kube_watch_feed(&s, "a\nb\nc\n", 6, stop_at_second, &n), -EPROTO);
    assert_int_equal(n, 2);
    kube_watch_stream_clear(&s);
}

static void decode_ok(const char *line, struct kube_watch_event *ev)
{
    if (kube_watch_decode(line, strlen(line), ev) != 0)
        fail_msg("refused: %s", line);
}

static void test_decode_events(void **state)
{
    (void)state;
    struct kube_watch_event ev;

    decode_ok("{\"type\":\"ADDED\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"web-1\","
              "\"resourceVersion\":\"41\"},\"status\":{\"phase\":\"Running\"}}}",
              &ev);
    assert_int_equal(ev.type, KUBE_WATCH_ADDED);
    assert_string_equal(ev.name, "web-1");
    assert_string_equal(ev.rv, "41");
    assert_non_null(ev.object);
    kube_watch_event_clear(&ev);
    assert_null(ev.object);

    decode_ok("{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"metadata\":"
              "{\"resourceVersion\":\"99\"}}}",
              &ev);
    assert_int_equal(ev.type, KUBE_WATCH_BOOKMARK);
    assert_string_equal(ev.rv, "99");
    assert_null(ev.object);
    kube_watch_event_clear(&ev);

    decode_ok("{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,\"reason\":"
              "\"Expired\",\"message\":\"too old resource version: 5 (80)\\n\"}}",
              &ev);
    assert_int_equal(ev.type, KUBE_WATCH_ERROR);
    assert_int_equal(ev.code, 410);
    /* printable only: a message cannot forge a log line */
    assert_string_equal(ev.message, "too old resource version: 5 (80)?");
    kube_watch_event_clear(&ev);

    static const char *const refused[] = {
        "",
        "not json",
        "[]",
        "{\"type\":\"ADDED\"}",
        "{\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"1\"}}}",
        "{\"type\":\"RENAMED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"1\"}}"
        "}",
        "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"resourceVersion\":\"1\"}}}",
        "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}",
        "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"a\\nb\",\"resourceVersion\":"
        "\"1\"}}}",
        "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"\",\"resourceVersion\":\"1\"}}"
        "}",
        "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{}}}",
        "{\"type\":\"ADDED\",\"object\":\"pod\"}",
        "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":"
        "\"1111111111111111111111111111111111111111111111111111111111111111111111\"}}}",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        struct kube_watch_event bad = {.type = KUBE_WATCH_DELETED, .code = 7};
        if (kube_watch_decode(refused[i], strlen(refused[i]), &bad) != -EINVAL)
            fail_msg("accepted: %s", refused[i]);
        assert_int_equal(bad.code, 7); /* untouched on failure */
    }
}

static enum kube_apply apply_line(struct kube_cache *c, const char *line)
{
    struct kube_watch_event ev;
    decode_ok(line, &ev);
    enum kube_apply a = kube_cache_apply(c, &ev);
    kube_watch_event_clear(&ev);
    return a;
}

static const char *const POD_LIST =
    "{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"100\"},\"items\":["
    "{\"metadata\":{\"name\":\"web-2\",\"resourceVersion\":\"90\",\"annotations\":{\"big\":\"x\"}},"
    "\"spec\":{\"containers\":[{\"name\":\"web\",\"env\":[{\"name\":\"PASSWORD\",\"value\":\"s\"}]}"
    "]},"
    "\"status\":{\"phase\":\"Running\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}},"
    "{\"metadata\":{\"name\":\"web-1\",\"resourceVersion\":\"95\"},"
    "\"status\":{\"phase\":\"Running\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}"
    "]}";

static void summary(const struct kube_cache *c, struct kube_pods_summary *s)
{
    json_t *list = kube_cache_list(c);
    assert_non_null(list);
    assert_int_equal(kube_decode_pods(list, s, NULL, NULL), 0);
    json_decref(list);
}

/* Listed, then changed by events: the counts follow, the resourceVersion follows every event
 * and bookmark, deleted pods leave; what the signals do not read (spec, annotations: an
 * environment's secrets) is not kept. */
static void test_cache_follows_events(void **state)
{
    (void)state;
    struct kube_cache c = {0};
    struct kube_pods_summary s;

    /* Nothing is taken before a list: the watch would have no base. */
    assert_int_equal(apply_line(&c, "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\","
                                    "\"resourceVersion\":\"1\"}}}"),
                     KUBE_APPLY_GONE);
    json_t *list = parse(POD_LIST);
    assert_int_equal(kube_cache_replace(&c, list), 0);
    json_decref(list);
    assert_string_equal(c.rv, "100");
    assert_int_equal(kube_cache_size(&c), 2);
    json_t *items = kube_cache_list(&c);
    const json_t *first = json_array_get(json_object_get(items, "items"), 0);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(first, "metadata"), "name")),
        "web-1"); /* sorted by name */
    char *dump = json_dumps(items, 0);
    assert_null(strstr(dump, "PASSWORD"));
    assert_null(strstr(dump, "annotations"));
    assert_non_null(strstr(dump, "Running"));
    free(dump);
    json_decref(items);
    summary(&c, &s);
    assert_int_equal(s.pods, 2);
    assert_int_equal(s.not_ready, 0);

    assert_int_equal(
        apply_line(&c, "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"web-1\","
                       "\"resourceVersion\":\"101\"},\"status\":{\"phase\":\"Running\","
                       "\"containerStatuses\":[{\"name\":\"web\",\"restartCount\":3,\"state\":"
                       "{\"waiting\":{\"reason\":\"CrashLoopBackOff\"}}}]}}}"),
        KUBE_APPLY_OK);
    assert_string_equal(c.rv, "101");
    summary(&c, &s);
    assert_int_equal(s.not_ready, 1);
    assert_int_equal(s.crashloop, 1);

    assert_int_equal(apply_line(&c, "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":"
                                    "\"web-3\",\"resourceVersion\":\"102\"},\"status\":"
                                    "{\"phase\":\"Pending\"}}}"),
                     KUBE_APPLY_OK);
    summary(&c, &s);
    assert_int_equal(s.pods, 3);
    assert_int_equal(s.not_ready, 2);

    assert_int_equal(apply_line(&c, "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":"
                                    "\"web-1\",\"resourceVersion\":\"103\"}}}"),
                     KUBE_APPLY_OK);
    summary(&c, &s);
    assert_int_equal(s.pods, 2);
    assert_int_equal(s.crashloop, 0);
    assert_string_equal(c.rv, "103");

    /* A bookmark moves the resourceVersion only. */
    assert_int_equal(apply_line(&c, "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":"
                                    "{\"resourceVersion\":\"250\"}}}"),
                     KUBE_APPLY_OK);
    assert_string_equal(c.rv, "250");
    assert_int_equal(kube_cache_size(&c), 2);

    /* 410 Gone: list again; another error: resume; neither changes the cache. */
    assert_int_equal(apply_line(&c, "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\","
                                    "\"code\":410,\"message\":\"too old\"}}"),
                     KUBE_APPLY_GONE);
    assert_int_equal(apply_line(&c, "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\","
                                    "\"code\":500,\"message\":\"etcd\"}}"),
                     KUBE_APPLY_RESTART);
    assert_string_equal(c.rv, "250");
    assert_int_equal(kube_cache_size(&c), 2);

    /* A list again replaces everything: what was deleted meanwhile is gone. */
    list = parse("{\"metadata\":{\"resourceVersion\":\"300\"},\"items\":[{\"metadata\":"
                 "{\"name\":\"web-9\"},\"status\":{\"phase\":\"Failed\"}}]}");
    assert_int_equal(kube_cache_replace(&c, list), 0);
    json_decref(list);
    summary(&c, &s);
    assert_int_equal(s.pods, 1);
    assert_int_equal(s.not_ready, 1);
    assert_string_equal(c.rv, "300");
    kube_cache_clear(&c);
    assert_null(c.objects);
    assert_string_equal(c.rv, "");
}

/* What is no list leaves the cache as it was. */
static void test_cache_refuses_bad_lists(void **state)
{
    (void)state;
    struct kube_cache c = {0};
    json_t *good = parse(POD_LIST);
    assert_int_equal(kube_cache_replace(&c, good), 0);
    json_decref(good);

    static const char *const bad[] = {
        "{\"items\":[]}",                                            /* no resourceVersion */
        "{\"metadata\":{\"resourceVersion\":\"5\"}}",                /* no items */
        "{\"metadata\":{\"resourceVersion\":\"5\"},\"items\":{}}",   /* items not an array */
        "{\"metadata\":{\"resourceVersion\":\"5\"},\"items\":[{}]}", /* an item without a name */
        "{\"metadata\":{\"resourceVersion\":\"\"},\"items\":[]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *j = parse(bad[i]);
        assert_int_equal(kube_cache_replace(&c, j), -EINVAL);
        json_decref(j);
        assert_string_equal(c.rv, "100");
        assert_int_equal(kube_cache_size(&c), 2);
    }

    /* More objects than the bound: refused whole. */
    json_t *big = parse("{\"metadata\":{\"resourceVersion\":\"7\"},\"items\":[]}");
    json_t *items = json_object_get(big, "items");
    for (size_t i = 0; i <= KUBE_CACHE_OBJECTS_MAX; i++) {
        char name[32];
        snprintf(name, sizeof(name), "p-%zu", i);
        json_array_append_new(items, json_pack("{s:{s:s}}", "metadata", "name", name));
    }
    assert_int_equal(kube_cache_replace(&c, big), -E2BIG);
    json_decref(big);
    assert_int_equal(kube_cache_size(&c), 2);
    kube_cache_clear(&c);
    assert_null(kube_cache_list(&c));
}

struct stream_fixture {
    struct kube_cache cache;
    int gone, restart, bad;
};

static int fold_line(void *userdata, const char *line, size_t len)
{
    struct stream_fixture *fx = userdata;
    struct kube_watch_event ev;
    if (kube_watch_decode(line, len, &ev) < 0) {
        fx->bad++;
        return -EPROTO;
    }
    enum kube_apply a = kube_cache_apply(&fx->cache, &ev);
    kube_watch_event_clear(&ev);
    fx->gone += a == KUBE_APPLY_GONE;
    fx->restart += a == KUBE_APPLY_RESTART;
    return a == KUBE_APPLY_OK ? 0 : -ESTALE;
}

/* A watch answer as the server sends it, split mid-event: the cache ends as the events say, and
 * the ERROR 410 that ends it stops the feed. */
static void test_stream_to_cache(void **state)
{
    (void)state;
    struct stream_fixture fx = {{0}, 0, 0, 0};
    json_t *list = parse(POD_LIST);
    assert_int_equal(kube_cache_replace(&fx.cache, list), 0);
    json_decref(list);

    static const char stream[] =
        "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"web-2\",\"resourceVersion\":"
        "\"120\"},\"status\":{\"phase\":\"Unknown\"}}}\n"
        "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"130\"}}}\n"
        "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410}}\n"
        "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"web-1\",\"resourceVersion\":"
        "\"140\"}}}\n";
    struct kube_watch_stream s = {0};
    size_t half = 40;
    assert_int_equal(kube_watch_feed(&s, stream, half, fold_line, &fx), 0);
    assert_int_equal(kube_watch_feed(&s, stream + half, sizeof(stream) - 1 - half, fold_line, &fx),
                     -ESTALE);
    kube_watch_stream_clear(&s);
    assert_int_equal(fx.gone, 1);
    assert_string_equal(fx.cache.rv, "130"); /* the bookmark's; the delete after 410 not seen */
    struct kube_pods_summary sum;
    summary(&fx.cache, &sum);
    assert_int_equal(sum.pods, 2);
    assert_int_equal(sum.not_ready, 1);
    kube_cache_clear(&fx.cache);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_feed_any_split),          cmocka_unit_test(test_feed_bounds),
        cmocka_unit_test(test_decode_events),           cmocka_unit_test(test_cache_follows_events),
        cmocka_unit_test(test_cache_refuses_bad_lists), cmocka_unit_test(test_stream_to_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
