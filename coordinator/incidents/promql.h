/*
 * The PromQL poller: runbook symptoms whose condition is a PromQL expression (RB_COND_PROMQL)
 * are evaluated against a Prometheus HTTP API (GET /api/v1/query) at their interval, and each
 * answer is handed to the rule engine as a sample of the synthetic series
 * rules_promql_signal(runbook, symptom) on node "" (rules.h).
 *
 * What an answer means (docs/runbook-format.md repeats it for runbook authors):
 * - a scalar, or a vector of exactly one series: its value is the sample;
 * - an empty vector, or the value NaN: no data, no sample (the engine keeps the last value
 *   until its stale limit, then sees no data);
 * - "+Inf" / "-Inf" are numbers like any other;
 * - a vector of several series, a matrix or a string, Prometheus's own error, an HTTP error,
 *   a timeout, a refused connection, a body that is not the API's JSON or is over
 *   PROMQL_MAX_BODY: no sample, counted in vigil_promql_errors_total{reason} and logged when a
 *   query's outcome changes (and again every PROMQL_LOG_REPEAT_MS while it persists).
 * Answers with a value or no data count in vigil_promql_queries_total.
 *
 * Threads: the poller owns one thread and its libcurl handles. promql_set_queries copies what
 * it needs from the set (the caller may free the set right after: a reload does), and
 * promql_drain hands the answers to the main loop through a bounded, mutex-protected queue.
 * Every request is bounded by the configured timeout; promql_destroy interrupts a request in
 * flight (curl_multi_wakeup) and returns promptly.
 */
#ifndef COORD_PROMQL_H
#define COORD_PROMQL_H

#include <stddef.h>
#include <stdint.h>

#include "runbook.h"

#define PROMQL_MAX_BODY (1024 * 1024)           /* larger answers are refused: too_large */
#define PROMQL_QUEUE_MAX 512                    /* answers waiting for promql_drain */
#define PROMQL_LOG_REPEAT_MS (10LL * 60 * 1000) /* a persisting failure is logged this often */

struct promql_config {
    const char *url;        /* base URL of the Prometheus HTTP API, e.g. http://127.0.0.1:9090 */
    int64_t timeout_ms;     /* per request, connection included */
    const char *token_file; /* NULL or "" = no Authorization header; else "Bearer <contents>" */
};

/* What one /api/v1/query answer says (promql_parse_response). */
enum promql_answer {
    PROMQL_VALUE,   /* one number in value (possibly +-Inf) */
    PROMQL_NO_DATA, /* an empty vector, or NaN */
    PROMQL_FAILED,  /* reason (a vigil_promql_errors_total label) and message */
};

struct promql_parsed {
    enum promql_answer answer;
    double value;
    const char *reason; /* PROMQL_FAILED: "query", "series", "result_type", "malformed" */
    char message[256];  /* PROMQL_FAILED: one line for the log */
};

/* Parses a response body of GET /api/v1/query (any HTTP status: Prometheus explains its 4xx/5xx
 * in the same JSON). Never fails to fill *ret. */
void promql_parse_response(const char *body, size_t len, struct promql_parsed *ret);

typedef struct promql promql_t;

/* Starts the poller thread (no queries yet). NULL with err set when the URL is not http(s),
 * the token file is unreadable or group/other-readable, or resources run out. */
promql_t *promql_new(const struct promql_config *cfg, char *err, size_t errlen);

/* Stops the thread (interrupting a request in flight), frees everything, nulls *self_p. */
void promql_destroy(promql_t **self_p);

/* Replaces the queries with the PromQL symptoms of set (NULL = none). Copies everything: set
 * is not referenced after the call. Every query runs at once, then at its interval. Returns
 * how many queries are polled, or -ENOMEM (the previous queries stay). */
int promql_set_queries(promql_t *self, const struct rb_set *set);

/* Hands every queued answer with a value to fn, oldest first, on the caller's thread (the main
 * loop). ts_ms is wall-clock milliseconds of the request. Returns how many were handed. */
typedef void (*promql_sample_fn)(void *userdata, const char *signal, double value, int64_t ts_ms);
size_t promql_drain(promql_t *self, promql_sample_fn fn, void *userdata);

/*
 * Captures for the evidence vault (the promql evidence kind, coordinator/evidence/
 * promql_evidence.h): one GET /api/v1/query of query at an explicit evaluation time, its raw
 * answer kept as bytes (the first PROMQL_CAPTURE_MAX_ANSWER, the rest cut off and flagged).
 * Captures wait in a bounded queue and run on the poller's thread before any due poll; a
 * finished one waits for promql_capture_drain, and promql_capture_fd turns readable.
 */
#define PROMQL_CAPTURE_MAX_ANSWER (1024 * 1024)
#define PROMQL_CAPTURES_MAX 64 /* waiting to run, or finished and not yet taken */

struct promql_capture {
    uint64_t id;      /* the caller's: the collection */
    char *query;      /* the expression */
    char *url;        /* the request's URL (the token, if any, travels in a header, not here) */
    int64_t at_ms;    /* the evaluation time sent as time= (wall clock, ms) */
    long http_status; /* 0 = no HTTP answer */
    char *answer;     /* the raw answer, answer_len bytes (untrusted, not NUL-terminated) */
    size_t answer_len;
    bool truncated;     /* the answer was longer than PROMQL_CAPTURE_MAX_ANSWER */
    const char *reason; /* NULL: Prometheus answered 200; else "refused", "timeout", "transport",
                           "http" or "query" (Prometheus refused the expression) */
    char message[384];  /* reason != NULL: one line for the timeline */
};

/* Queues a capture of query (copied) for id. 0; -ENOBUFS when PROMQL_CAPTURES_MAX wait;
 * -ENOMEM. */
int promql_capture(promql_t *self, uint64_t id, const char *query);

/* An eventfd that is readable while finished captures wait (promql_capture_drain reads it). */
int promql_capture_fd(promql_t *self);

/* Hands every finished capture to fn, oldest first, on the caller's thread; the capture is
 * borrowed for the call. Returns how many were handed. */
typedef void (*promql_capture_fn)(void *userdata, const struct promql_capture *capture);
size_t promql_capture_drain(promql_t *self, promql_capture_fn fn, void *userdata);

/* Without a Prometheus: logs one warning naming the PromQL symptoms of set (which then never
 * fire). Returns how many there are. */
size_t promql_warn_unpolled(const struct rb_set *set);

#endif
