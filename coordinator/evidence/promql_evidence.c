#include "promql_evidence.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "evidence.h"
#include "log.h"
#include "metrics.h"
#include "wire.h"

static void fail_target(store_t *store, uint64_t collection_id, const char *why)
{
    vg_log(VG_LOG_WARN, "collection=%" PRIu64 " kind=promql failed: %s", collection_id, why);
    if (store_evidence_target_fail(store, collection_id, VG_COORDINATOR_AGENT_ID, why) == 0)
        metrics_evidence_failed("promql");
}

int promql_evidence_start(promql_t *promql, store_t *store, uint64_t collection_id,
                          const char *query)
{
    if (!promql) {
        fail_target(store, collection_id, PROMQL_EVIDENCE_NOT_CONFIGURED);
        return -ENOTSUP;
    }
    int r = promql_capture(promql, collection_id, query);
    if (r == -ENOBUFS)
        fail_target(store, collection_id,
                    "not captured: too many PromQL captures are already waiting for Prometheus");
    else if (r < 0)
        fail_target(store, collection_id, "not captured: the coordinator is out of memory");
    return r;
}

/* "2026-12-07T01:02:03.456Z" */
static void iso_time(int64_t ms, char *buf, size_t len)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    char day[32];

    if (ms < 0 || !gmtime_r(&secs, &tm) ||
        strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%s.%03dZ", day, (int)(ms % 1000));
}

int promql_evidence_artifact(const struct promql_capture *c, uint8_t **ret_data, size_t *ret_len)
{
    char at[48];

    iso_time(c->at_ms, at, sizeof(at));
    json_t *head = json_object();
    if (!head)
        return -ENOMEM;
    /* json_string refuses text that is not UTF-8: the query came checked, the URL is ASCII. */
    json_t *query = json_string(c->query ? c->query : "");
    json_t *url = json_string(c->url ? c->url : "");
    if (!query || !url) {
        json_decref(query);
        json_decref(url);
        json_decref(head);
        return -EINVAL;
    }
    int r = json_object_set_new(head, "format", json_string(PROMQL_EVIDENCE_FORMAT));
    r |= json_object_set_new(head, "query", query);
    r |= json_object_set_new(head, "time", json_string(at));
    r |= json_object_set_new(head, "time_ms", json_integer((json_int_t)c->at_ms));
    r |= json_object_set_new(head, "url", url);
    r |= json_object_set_new(head, "http_status", json_integer((json_int_t)c->http_status));
    r |= json_object_set_new(head, "answer_bytes", json_integer((json_int_t)c->answer_len));
    r |= json_object_set_new(head, "truncated", json_boolean(c->truncated));
    char *line = r == 0 ? json_dumps(head, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(head);
    if (!line)
        return -ENOMEM;
    size_t line_len = strlen(line);
    uint8_t *data = malloc(line_len + 1 + c->answer_len);
    if (!data) {
        free(line);
        return -ENOMEM;
    }
    memcpy(data, line, line_len); /* NOLINT(bugprone-not-null-terminated-result): bytes */
    data[line_len] = '\n';
    if (c->answer_len > 0)
        memcpy(data + line_len + 1, c->answer, c->answer_len);
    free(line);
    *ret_data = data;
    *ret_len = line_len + 1 + c->answer_len;
    return 0;
}

struct settle {
    store_t *store;
    struct store_evidence_events events;
};

static void settle_one(void *userdata, const struct promql_capture *c)
{
    struct settle *s = userdata;
    char why[VG_MAX_VALUE_LEN];

    if (c->reason) {
        /* The endpoint without the query string: the expression is in the collection's args. */
        const char *url = c->url ? c->url : "";
        snprintf(why, sizeof(why), "Prometheus gave no answer (%s): %s (%.*s)", c->reason,
                 c->message, (int)strcspn(url, "?"), url);
        fail_target(s->store, c->id, why);
        return;
    }
    uint8_t *data = NULL;
    size_t len = 0;
    int r = promql_evidence_artifact(c, &data, &len);
    if (r == 0)
        r = store_evidence_local(s->store, c->id, "promql", data, len, c->truncated, c->at_ms,
                                 &s->events);
    free(data);
    if (r < 0) {
        snprintf(why, sizeof(why), "Prometheus answered, but the artifact was not stored: %s",
                 r == -ENOMEM   ? "out of memory"
                 : r == -EINVAL ? "invalid"
                                : "the store failed");
        fail_target(s->store, c->id, why);
    }
}

void promql_evidence_settle(promql_t *promql, store_t *store)
{
    struct settle s = {.store = store};

    if (!promql)
        return;
    promql_capture_drain(promql, settle_one, &s);
    evidence_report(&s.events);
    store_evidence_events_clear(&s.events);
}
