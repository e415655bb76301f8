/* Unit tests for the PromQL poller's answer parsing and query copying (coordinator/incidents/promql.c).
 * The bodies are what Prometheus 2.42's GET /api/v1/query returns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "metrics.h"
#include "promql.h"
#include "promql_evidence.h"
#include "rules.h"

#include <jansson.h>
#include <poll.h>
#include "timeutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct promql_parsed parse(const char *body)
{
    struct promql_parsed p;
    promql_parse_response(body, strlen(body), &p);
    return p;
}

static void assert_failed(const char *body, const char *reason, const char *message_part)
{
    struct promql_parsed p = parse(body);
    assert_int_equal(p.answer, PROMQL_FAILED);
    assert_string_equal(p.reason, reason);
    if (!strstr(p.message, message_part))
        fail_msg("message \"%s\" does not contain \"%s\"", p.message, message_part);
    assert_true(isnan(p.value));
}

static void test_scalar(void **state)
{
    (void)state;
    struct promql_parsed p = parse(
        "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1712345678.123,"
        "\"42.5\"]}}");
    assert_int_equal(p.answer, PROMQL_VALUE);
    assert_true(p.value == 42.5);
}

static void test_one_element_vector(void **state)
{
    (void)state;
    struct promql_parsed p =
        parse("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{"
              "\"metric\":{},\"value\":[1712345678.5,\"0\"]}]}}");
    assert_int_equal(p.answer, PROMQL_VALUE);
    assert_true(p.value == 0);

    /* Labels, warnings and exponent notation are fine. */
    p = parse("{\"status\":\"success\",\"warnings\":[\"x\"],\"data\":{\"resultType\":\"vector\","
              "\"result\":[{\"metric\":{\"job\":\"node\",\"instance\":\"a:9100\"},"
              "\"value\":[1712345678,\"1.5e+06\"]}]}}");
    assert_int_equal(p.answer, PROMQL_VALUE);
    assert_true(p.value == 1.5e6);
}

static void test_empty_vector_is_no_data(void **state)
{
    (void)state;
    struct promql_parsed p =
        parse("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}");
    assert_int_equal(p.answer, PROMQL_NO_DATA);
    assert_true(isnan(p.value));
}

static void test_several_series(void **state)
{
    (void)state;
    assert_failed("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
                  "{\"metric\":{\"instance\":\"a\"},\"value\":[1,\"1\"]},"
                  "{\"metric\":{\"instance\":\"b\"},\"value\":[1,\"0\"]},"
                  "{\"metric\":{\"instance\":\"c\"},\"value\":[1,\"1\"]}]}}",
                  "series", "query returns 3 series, a symptom needs one number");
}

static void test_nan_and_infinities(void **state)
{
    (void)state;
    struct promql_parsed p =
        parse("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{"
              "\"metric\":{},\"value\":[1,\"NaN\"]}]}}");
    assert_int_equal(p.answer, PROMQL_NO_DATA);
    assert_true(isnan(p.value));

    p = parse("{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1,"
              "\"+Inf\"]}}");
    assert_int_equal(p.answer, PROMQL_VALUE);
    assert_true(isinf(p.value) && p.value > 0);

    p = parse("{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1,"
              "\"-Inf\"]}}");
    assert_int_equal(p.answer, PROMQL_VALUE);
    assert_true(isinf(p.value) && p.value < 0);
}

static void test_error_status(void **state)
{
    (void)state;
    /* A syntax error: Prometheus answers 400 with this body. */
    assert_failed("{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"1:5: parse "
                  "error: unexpected end of input\"}",
                  "query", "bad_data: 1:5: parse error: unexpected end of input");
    assert_failed("{\"status\":\"error\"}", "query", "(no message)");
}

static void test_other_result_types(void **state)
{
    (void)state;
    assert_failed("{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[{"
                  "\"metric\":{},\"values\":[[1,\"1\"],[2,\"2\"]]}]}}",
                  "result_type", "query returns a matrix");
    assert_failed("{\"status\":\"success\",\"data\":{\"resultType\":\"string\",\"result\":[1,"
                  "\"hello\"]}}",
                  "result_type", "query returns a string");
    assert_failed("{\"status\":\"success\",\"data\":{\"resultType\":\"histogram\",\"result\":[]}}",
                  "malformed", "unknown resultType");
}

static void test_malformed_json(void **state)
{
    (void)state;
    assert_failed("", "malformed", "not JSON");
    assert_failed("{\"status\":\"success\",\"data\":", "malformed", "not JSON");
    assert_failed("<html>502 Bad Gateway</html>", "malformed", "not JSON");
    assert_failed("[1,2]", "malformed", "no status");
    assert_failed("\"success\"", "malformed", "not JSON"); /* jansson wants an array or object */

    struct promql_parsed p;
    promql_parse_response(NULL, 0, &p);
    assert_int_equal(p.answer, PROMQL_FAILED);
    assert_string_equal(p.reason, "malformed");
}

static void test_wrong_types(void **state)
{
    (void)state;
    assert_failed("{\"status\":1}", "malformed", "no status");
    assert_failed("{\"status\":\"pending\"}", "malformed", "neither success nor error");
    assert_failed("{\"status\":\"success\"}", "malformed", "no data.resultType");
    assert_failed("{\"status\":\"success\",\"data\":[]}", "malformed", "no data.resultType");
    assert_failed("{\"status\":\"success\",\"data\":{\"resultType\":7,\"result\":[]}}", "malformed",
                  "no data.resultType");
    assert_failed("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":{}}}",
                  "malformed", "not an array");
    assert_failed("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[7]}}",
                  "malformed", "not an object");
    /* The value as a JSON number rather than a string, a missing value, a short pair. */
    assert_failed("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{"
                  "\"metric\":{},\"value\":[1,1]}]}}",
                  "malformed", "not [time, \"value\"]");
    assert_failed("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{"
                  "\"metric\":{}}]}}",
                  "malformed", "not [time, \"value\"]");
    assert_failed("{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1]}}",
                  "malformed", "not [time, \"value\"]");
    assert_failed("{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":"
                  "[\"1\",\"2\"]}}",
                  "malformed", "not [time, \"value\"]");
    /* Strings that are not whole numbers. */
    assert_failed("{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1,"
                  "\"12abc\"]}}",
                  "malformed", "is not a number");
    assert_failed("{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1,"
                  "\"\"]}}",
                  "malformed", "is not a number");
}

/* ---- the poller against loopback servers ---------------------------------------------------
 * Prometheus itself is exercised by tests/integration/promql.sh; these servers give the answers
 * a healthy Prometheus never gives (oversized, hanging, not the API's JSON). */

/* A counter's value in the rendered metrics (0 when absent). */
static uint64_t metric(const char *series)
{
    char *text = NULL;
    size_t len;
    char key[160];

    assert_int_equal(metrics_render(&text, &len), 0);
    snprintf(key, sizeof key, "\n%s ", series);
    const char *line = strstr(text, key);
    uint64_t v = line ? strtoull(line + strlen(key), NULL, 10) : 0;
    free(text);
    return v;
}

static bool wait_metric(const char *series, uint64_t at_least)
{
    for (int i = 0; i < 250; i++) { /* 5 s */
        if (metric(series) >= at_least)
            return true;
        usleep(20 * 1000);
    }
    return false;
}

/* One runbook "app" with one PromQL symptom "q" (promql.app.q). */
struct one_query {
    struct rb_symptom symptom;
    struct rb_runbook rb;
    struct rb_set set;
};

static void one_query_init(struct one_query *q, const char *expr, int64_t interval_ms)
{
    memset(q, 0, sizeof *q);
    q->symptom.id = "q";
    q->symptom.cond.kind = RB_COND_PROMQL;
    q->symptom.cond.promql = (char *)expr;
    q->symptom.cond.interval_ms = interval_ms;
    q->rb.id = "app";
    q->rb.symptoms = &q->symptom;
    q->rb.nsymptoms = 1;
    q->set.runbooks = &q->rb;
    q->set.n = 1;
}

/* A loopback HTTP server that answers every request with one canned response, or never. */
struct server {
    int fd;
    int port;
    const char *response;
    size_t response_len;
    bool hang; /* accept, read, never answer */
    pthread_t thread;
    pthread_mutex_t lock;
    char request[2048]; /* the last request's head */
    int held[8];        /* hanging connections, closed at stop */
    size_t nheld;
};

static void *serve(void *arg)
{
    struct server *srv = arg;
    for (;;) {
        int c = accept(srv->fd, NULL, NULL);
        if (c < 0)
            return NULL;
        char buf[2048];
        size_t got = 0;
        while (got < sizeof buf - 1) {
            ssize_t n = read(c, buf + got, sizeof buf - 1 - got);
            if (n <= 0)
                break;
            got += (size_t)n;
            buf[got] = '\0';
            if (strstr(buf, "\r\n\r\n"))
                break;
        }
        buf[got] = '\0';
        pthread_mutex_lock(&srv->lock);
        memcpy(srv->request, buf, got + 1);
        bool held = srv->hang && srv->nheld < sizeof srv->held / sizeof srv->held[0];
        if (held)
            srv->held[srv->nheld++] = c;
        pthread_mutex_unlock(&srv->lock);
        if (held)
            continue;
        for (size_t off = 0; off < srv->response_len;) {
            ssize_t n = write(c, srv->response + off, srv->response_len - off);
            if (n <= 0)
                break;
            off += (size_t)n;
        }
        close(c);
    }
}

static void server_start(struct server *srv, const char *response, size_t len, bool hang)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof addr;

    memset(srv, 0, sizeof *srv);
    srv->response = response;
    srv->response_len = len;
    srv->hang = hang;
    pthread_mutex_init(&srv->lock, NULL);
    srv->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(srv->fd >= 0);
    assert_int_equal(bind(srv->fd, (struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal(listen(srv->fd, 16), 0);
    assert_int_equal(getsockname(srv->fd, (struct sockaddr *)&addr, &alen), 0);
    srv->port = ntohs(addr.sin_port);
    assert_int_equal(pthread_create(&srv->thread, NULL, serve, srv), 0);
}

static void server_stop(struct server *srv)
{
    shutdown(srv->fd, SHUT_RDWR); /* accept returns */
    pthread_join(srv->thread, NULL);
    close(srv->fd);
    for (size_t i = 0; i < srv->nheld; i++)
        close(srv->held[i]);
    pthread_mutex_destroy(&srv->lock);
}

static char *http_response(const char *status, const char *body, size_t body_len, size_t *ret_len)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    assert_non_null(f);
    fprintf(f,
            "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
            "Connection: close\r\n\r\n",
            status, body_len);
    fwrite(body, 1, body_len, f);
    assert_int_equal(fclose(f), 0);
    *ret_len = len;
    return out;
}

struct got_sample {
    char signal[256];
    double value;
    int64_t ts_ms;
    size_t n;
};

static void keep_sample(void *userdata, const char *signal, double value, int64_t ts_ms)
{
    struct got_sample *got = userdata;
    snprintf(got->signal, sizeof got->signal, "%s", signal);
    got->value = value;
    got->ts_ms = ts_ms;
    got->n++;
}

static void no_sample(void *userdata, const char *signal, double value, int64_t ts_ms)
{
    (void)userdata;
    fail_msg("unexpected sample %s=%g at %lld", signal, value, (long long)ts_ms);
}

static promql_t *poller_for(const struct server *srv, int64_t timeout_ms, const char *token_file)
{
    char url[64], err[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", srv->port);
    struct promql_config cfg = {.url = url, .timeout_ms = timeout_ms, .token_file = token_file};
    promql_t *p = promql_new(&cfg, err, sizeof err);
    if (!p)
        fail_msg("promql_new: %s", err);
    return p;
}

/* An answer becomes one sample of promql.<runbook>.<symptom>, stamped with the request's time;
 * the request carries the URL-encoded expression, the timeout and the bearer token. */
static void test_answer_is_drained(void **state)
{
    (void)state;
    static const char body[] =
        "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":{},"
        "\"value\":[1712345678.1,\"7\"]}]}}";
    char token_file[] = "/tmp/test_promql_token.XXXXXX";
    int tfd = mkstemp(token_file); /* mode 0600 */
    assert_true(tfd >= 0);
    assert_int_equal(write(tfd, "s3cret\n", 7), 7);
    close(tfd);

    size_t len;
    char *response = http_response("200 OK", body, sizeof body - 1, &len);
    struct server srv;
    server_start(&srv, response, len, false);
    metrics_init();
    promql_t *p = poller_for(&srv, 2000, token_file);
    struct one_query q;
    one_query_init(&q, "sum(up{job=\"node\"}) < 1", 60000);
    int64_t before = vg_wall_ms();
    assert_int_equal(promql_set_queries(p, &q.set), 1);

    struct got_sample got = {0};
    for (int i = 0; i < 250 && got.n == 0; i++) {
        promql_drain(p, keep_sample, &got);
        if (got.n == 0)
            usleep(20 * 1000);
    }
    assert_int_equal(got.n, 1);
    assert_string_equal(got.signal, "promql.app.q");
    assert_true(got.value == 7);
    assert_true(got.ts_ms >= before && got.ts_ms <= vg_wall_ms());
    assert_int_equal(metric("vigil_promql_queries_total"), 1);
    pthread_mutex_lock(&srv.lock);
    if (!strstr(srv.request, "GET /api/v1/query?query=sum%28up%7Bjob%3D%22node%22%7D%29%20%3C%201"
                             "&timeout=2000ms HTTP/1.1\r\n") ||
        !strstr(srv.request, "\r\nAuthorization: Bearer s3cret\r\n"))
        fail_msg("unexpected request: %s", srv.request);
    pthread_mutex_unlock(&srv.lock);

    promql_destroy(&p);
    server_stop(&srv);
    free(response);
    unlink(token_file);
}

/* ---- captures for the vault (the promql evidence kind) ---- */

struct got_capture {
    size_t n;
    char *query, *url, *answer, *message;
    size_t answer_len;
    long http_status;
    bool truncated;
    const char *reason;
    int64_t at_ms;
    uint8_t *artifact;
    size_t artifact_len;
};

static void keep_capture(void *userdata, const struct promql_capture *c)
{
    struct got_capture *got = userdata;
    got->n++;
    got->query = strdup(c->query);
    got->url = strdup(c->url ? c->url : "");
    got->message = strdup(c->message);
    got->answer = malloc(c->answer_len + 1);
    assert_non_null(got->answer);
    if (c->answer_len)
        memcpy(got->answer, c->answer, c->answer_len);
    got->answer_len = c->answer_len;
    got->http_status = c->http_status;
    got->truncated = c->truncated;
    got->reason = c->reason;
    got->at_ms = c->at_ms;
    if (!c->reason)
        assert_int_equal(promql_evidence_artifact(c, &got->artifact, &got->artifact_len), 0);
}

static void got_capture_free(struct got_capture *got)
{
    free(got->query);
    free(got->url);
    free(got->message);
    free(got->answer);
    free(got->artifact);
    memset(got, 0, sizeof *got);
}

/* Waits (up to 5 s) for the capture fd, then drains. */
static void wait_capture(promql_t *p, struct got_capture *got)
{
    struct pollfd pfd = {.fd = promql_capture_fd(p), .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 5000), 1);
    assert_int_equal(promql_capture_drain(p, keep_capture, got), 1);
}

/* The answer is kept byte for byte (even bytes that are not text), cut at
 * PROMQL_CAPTURE_MAX_ANSWER and flagged; the artifact is the header line, then exactly those
 * bytes; the request names the evaluation time. */
static void test_capture_keeps_the_answer(void **state)
{
    (void)state;
    size_t big_len = PROMQL_CAPTURE_MAX_ANSWER + 4096, len;
    char *big = malloc(big_len);
    assert_non_null(big);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (char)(i % 251); /* NUL, 0xff...: not JSON, never parsed */
    char *response = http_response("200 OK", big, big_len, &len);
    struct server srv;
    server_start(&srv, response, len, false);
    metrics_init();
    promql_t *p = poller_for(&srv, 2000, NULL);
    int64_t before = vg_wall_ms();
    assert_int_equal(promql_capture(p, 42, "rate(x{a=\"b\"}[5m])"), 0);
    struct got_capture got = {0};
    wait_capture(p, &got);
    assert_null(got.reason);
    assert_int_equal(got.http_status, 200);
    assert_true(got.truncated);
    assert_int_equal(got.answer_len, PROMQL_CAPTURE_MAX_ANSWER);
    assert_memory_equal(got.answer, big, PROMQL_CAPTURE_MAX_ANSWER);
    assert_true(got.at_ms >= before && got.at_ms <= vg_wall_ms());
    char want[128];
    snprintf(want, sizeof want, "&time=%lld.%03lld&timeout=2000ms",
             (long long)(got.at_ms / 1000), (long long)(got.at_ms % 1000));
    assert_non_null(strstr(got.url, want));
    pthread_mutex_lock(&srv.lock);
    if (!strstr(srv.request, "GET /api/v1/query?query=rate%28x%7Ba%3D%22b%22%7D%5B5m%5D%29&time="))
        fail_msg("unexpected request: %s", srv.request);
    pthread_mutex_unlock(&srv.lock);

    /* The artifact: one JSON line, a newline, then the answer's bytes. */
    const uint8_t *nl = memchr(got.artifact, '\n', got.artifact_len);
    assert_non_null(nl);
    size_t head_len = (size_t)(nl - got.artifact);
    assert_int_equal(got.artifact_len, head_len + 1 + PROMQL_CAPTURE_MAX_ANSWER);
    assert_memory_equal(nl + 1, big, PROMQL_CAPTURE_MAX_ANSWER);
    json_t *head = json_loadb((const char *)got.artifact, head_len, 0, NULL);
    assert_non_null(head);
    assert_string_equal(json_string_value(json_object_get(head, "format")), "vigil-promql/1");
    assert_string_equal(json_string_value(json_object_get(head, "query")), "rate(x{a=\"b\"}[5m])");
    assert_string_equal(json_string_value(json_object_get(head, "url")), got.url);
    assert_int_equal(json_integer_value(json_object_get(head, "time_ms")), got.at_ms);
    assert_int_equal(json_integer_value(json_object_get(head, "http_status")), 200);
    assert_int_equal(json_integer_value(json_object_get(head, "answer_bytes")),
                     PROMQL_CAPTURE_MAX_ANSWER);
    assert_true(json_is_true(json_object_get(head, "truncated")));
    json_decref(head);
    got_capture_free(&got);
    /* Captures do not count as the symptoms' queries. */
    assert_int_equal(metric("vigil_promql_queries_total"), 0);
    promql_destroy(&p);
    server_stop(&srv);
    free(response);
    free(big);
}

/* No answer worth keeping: Prometheus's refusal of the expression (its reason), another HTTP
 * status, a refused connection. */
static void test_capture_failures(void **state)
{
    (void)state;
    static const char bad[] = "{\"status\":\"error\",\"errorType\":\"bad_data\","
                              "\"error\":\"1:5: parse error: unclosed left brace\"}";
    size_t len;
    char *response = http_response("400 Bad Request", bad, sizeof bad - 1, &len);
    struct server srv;
    server_start(&srv, response, len, false);
    metrics_init();
    promql_t *p = poller_for(&srv, 2000, NULL);
    struct got_capture got = {0};
    assert_int_equal(promql_capture(p, 1, "sum(up{"), 0);
    wait_capture(p, &got);
    assert_string_equal(got.reason, "query");
    assert_string_equal(got.message,
                        "HTTP 400: Prometheus: bad_data: 1:5: parse error: unclosed left brace");
    assert_int_equal(got.answer_len, 0);
    got_capture_free(&got);
    promql_destroy(&p);
    server_stop(&srv);
    free(response);

    static const char gateway[] = "<html>bad gateway</html>";
    response = http_response("502 Bad Gateway", gateway, sizeof gateway - 1, &len);
    server_start(&srv, response, len, false);
    p = poller_for(&srv, 2000, NULL);
    assert_int_equal(promql_capture(p, 2, "up"), 0);
    wait_capture(p, &got);
    assert_string_equal(got.reason, "http");
    assert_string_equal(got.message, "HTTP status 502");
    got_capture_free(&got);
    promql_destroy(&p);
    int port = srv.port;
    server_stop(&srv); /* nobody listens there now */
    free(response);

    srv.port = port;
    p = poller_for(&srv, 2000, NULL);
    assert_int_equal(promql_capture(p, 3, "up"), 0);
    wait_capture(p, &got);
    assert_string_equal(got.reason, "refused");
    assert_string_equal(got.message, "connection refused");
    got_capture_free(&got);
    /* The queue is bounded. */
    int r = 0;
    for (int i = 0; i <= PROMQL_CAPTURES_MAX && r == 0; i++)
        r = promql_capture(p, (uint64_t)(10 + i), "up");
    assert_int_equal(r, -ENOBUFS);
    promql_destroy(&p); /* frees what waits */
}

/* A body over PROMQL_MAX_BODY is cut off and counted; a non-JSON 502 is an HTTP error. */
static void test_too_large_and_http_errors(void **state)
{
    (void)state;
    size_t big_len = PROMQL_MAX_BODY + 4096, len;
    char *big = malloc(big_len);
    assert_non_null(big);
    memset(big, ' ', big_len);
    big[0] = '{';
    big[big_len - 1] = '}';
    char *response = http_response("200 OK", big, big_len, &len);
    free(big);
    struct server srv;
    server_start(&srv, response, len, false);
    metrics_init();
    promql_t *p = poller_for(&srv, 2000, NULL);
    struct one_query q;
    one_query_init(&q, "1", 60000);
    assert_int_equal(promql_set_queries(p, &q.set), 1);
    assert_true(wait_metric("vigil_promql_errors_total{reason=\"too_large\"}", 1));
    assert_int_equal(promql_drain(p, no_sample, NULL), 0);
    promql_destroy(&p);
    server_stop(&srv);
    free(response);

    static const char gateway[] = "<html>bad gateway</html>";
    response = http_response("502 Bad Gateway", gateway, sizeof gateway - 1, &len);
    server_start(&srv, response, len, false);
    p = poller_for(&srv, 2000, NULL);
    assert_int_equal(promql_set_queries(p, &q.set), 1);
    assert_true(wait_metric("vigil_promql_errors_total{reason=\"http\"}", 1));
    assert_int_equal(metric("vigil_promql_errors_total{reason=\"malformed\"}"), 0);
    assert_int_equal(metric("vigil_promql_queries_total"), 0);
    assert_int_equal(promql_drain(p, no_sample, NULL), 0);
    promql_destroy(&p);
    server_stop(&srv);
    free(response);
}

/* A server that never answers: the request times out (counted), and destroy does not wait for a
 * request in flight. */
static void test_timeout_and_prompt_destroy(void **state)
{
    (void)state;
    struct server srv;
    server_start(&srv, NULL, 0, true);
    metrics_init();
    promql_t *p = poller_for(&srv, 300, NULL);
    struct one_query q;
    one_query_init(&q, "1", 1000);
    assert_int_equal(promql_set_queries(p, &q.set), 1);
    assert_true(wait_metric("vigil_promql_errors_total{reason=\"timeout\"}", 1));
    assert_int_equal(promql_drain(p, no_sample, NULL), 0);
    promql_destroy(&p);

    p = poller_for(&srv, 30000, NULL);
    assert_int_equal(promql_set_queries(p, &q.set), 1);
    for (int i = 0; i < 250; i++) { /* until the request is in flight */
        pthread_mutex_lock(&srv.lock);
        bool sent = srv.nheld >= 2;
        pthread_mutex_unlock(&srv.lock);
        if (sent)
            break;
        usleep(20 * 1000);
    }
    int64_t t0 = vg_mono_ms();
    promql_destroy(&p);
    int64_t took = vg_mono_ms() - t0;
    if (took > 1000)
        fail_msg("destroy waited %lld ms for a request in flight", (long long)took);
    server_stop(&srv);
}

/* A poller pointed at a closed port: set_queries copies the symptoms (the set may go away at
 * once), counts only PromQL ones; refused connections are counted. */
static void test_set_queries_copies(void **state)
{
    (void)state;
    char err[256];
    struct promql_config cfg = {.url = "http://127.0.0.1:1/", .timeout_ms = 500};
    promql_t *p = promql_new(&cfg, err, sizeof err);
    assert_non_null(p);

    struct rb_symptom symptoms[3] = {0};
    symptoms[0].id = strdup("nodes-down");
    symptoms[0].cond.kind = RB_COND_PROMQL;
    symptoms[0].cond.promql = strdup("sum(up{job=\"node\"})");
    symptoms[0].cond.interval_ms = 1000;
    symptoms[1].id = strdup("cpu");
    symptoms[1].cond.kind = RB_COND_THRESHOLD;
    symptoms[2].id = strdup("evictions");
    symptoms[2].cond.kind = RB_COND_PROMQL;
    symptoms[2].cond.promql = strdup("sum(rate(x[5m]))");
    struct rb_runbook rb = {.id = strdup("app"), .symptoms = symptoms, .nsymptoms = 3};
    struct rb_set set = {.runbooks = &rb, .n = 1};

    metrics_init();
    assert_int_equal(promql_set_queries(p, &set), 2);
    assert_int_equal(promql_warn_unpolled(&set), 2);
    for (size_t i = 0; i < 3; i++) {
        free(symptoms[i].id);
        free(symptoms[i].cond.promql);
    }
    free(rb.id);

    /* Both queries run at once against the closed port: refused, counted, no sample. */
    assert_true(wait_metric("vigil_promql_errors_total{reason=\"refused\"}", 2));
    assert_int_equal(promql_drain(p, no_sample, NULL), 0);
    assert_int_equal(promql_set_queries(p, NULL), 0);
    assert_int_equal(promql_warn_unpolled(NULL), 0);
    promql_destroy(&p);
    assert_null(p);
    promql_destroy(&p);
}

static void test_new_refuses_bad_urls(void **state)
{
    (void)state;
    char err[256];
    const char *bad[] = {"ftp://prom:21", "http://", "prometheus:9090/x y",
                         "http://prom:9090/?q=1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct promql_config cfg = {.url = bad[i], .timeout_ms = 1000};
        err[0] = '\0';
        promql_t *p = promql_new(&cfg, err, sizeof err);
        if (p)
            fail_msg("url \"%s\" accepted", bad[i]);
        assert_non_null(strstr(err, "url"));
    }
    struct promql_config cfg = {
        .url = "http://127.0.0.1:9090", .timeout_ms = 1000, .token_file = "/nonexistent/token"};
    assert_null(promql_new(&cfg, err, sizeof err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalar),
        cmocka_unit_test(test_one_element_vector),
        cmocka_unit_test(test_empty_vector_is_no_data),
        cmocka_unit_test(test_several_series),
        cmocka_unit_test(test_nan_and_infinities),
        cmocka_unit_test(test_error_status),
        cmocka_unit_test(test_other_result_types),
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_answer_is_drained),
        cmocka_unit_test(test_capture_keeps_the_answer),
        cmocka_unit_test(test_capture_failures),
        cmocka_unit_test(test_too_large_and_http_errors),
        cmocka_unit_test(test_timeout_and_prompt_destroy),
        cmocka_unit_test(test_set_queries_copies),
        cmocka_unit_test(test_new_refuses_bad_urls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
