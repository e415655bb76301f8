/* Unit tests for the coordinator's metrics registry (metrics.c) and HTTP endpoints (http.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "http.h"
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------------------------- */

/* fail_msg, but known not to return (it longjmps out of the test), for the analyzers. */
__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vprint_error(fmt, ap);
    va_end(ap);
    print_error("\n");
    fail();
    abort();
}

static char *render(void)
{
    char *text = NULL;
    size_t len = 0;

    assert_int_equal(metrics_render(&text, &len), 0);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    return text;
}

/*
 * Finds the sample line "<series> <value>" (series including its labels) and returns the value
 * text, or NULL. Matching at a line start keeps "x" from matching "x_total".
 */
static const char *sample(const char *text, const char *series)
{
    size_t len = strlen(series);

    for (const char *line = text; line != NULL && *line != '\0';) {
        if (strncmp(line, series, len) == 0 && line[len] == ' ')
            return line + len + 1;
        line = strchr(line, '\n');
        if (line != NULL)
            line++;
    }
    return NULL;
}

static uint64_t sample_u64(const char *text, const char *series)
{
    const char *value = sample(text, series);
    if (value == NULL)
        die("no sample %s in:\n%s", series, text);
    char *end;
    uint64_t parsed = strtoull(value, &end, 10);
    assert_true(*end == '\n');
    return parsed;
}

static double sample_double(const char *text, const char *series)
{
    const char *value = sample(text, series);
    if (value == NULL)
        die("no sample %s in:\n%s", series, text);
    char *end;
    double parsed = strtod(value, &end);
    assert_true(*end == '\n');
    return parsed;
}

static size_t count_lines_starting(const char *text, const char *prefix)
{
    size_t count = 0;
    size_t len = strlen(prefix);

    for (const char *line = text; line != NULL && *line != '\0';) {
        if (strncmp(line, prefix, len) == 0)
            count++;
        line = strchr(line, '\n');
        if (line != NULL)
            line++;
    }
    return count;
}

static int setup(void **state)
{
    (void)state;
    metrics_init();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    metrics_fini();
    return 0;
}

/* ---- registry --------------------------------------------------------------------------- */

static void test_refuse_reasons_present_at_zero(void **state)
{
    static const char *const expected[REFUSE__COUNT] = {
        "malformed",       "version",      "unknown_type", "oversized",      "limits",
        "sender_mismatch", "not_enrolled", "revoked",      "unknown_key",    "bad_token",
        "rate_limited",    "forbidden",    "store_error",  "invalid_record", "key_mismatch",
    };
    char series[128];
    (void)state;

    char *text = render();
    assert_non_null(strstr(text, "# HELP vigil_messages_refused_total "));
    assert_non_null(strstr(text, "# TYPE vigil_messages_refused_total counter\n"));
    for (int i = 0; i < REFUSE__COUNT; i++) {
        assert_string_equal(refuse_reason_name((enum refuse_reason)i), expected[i]);
        snprintf(series, sizeof(series), "vigil_messages_refused_total{reason=\"%s\"}",
                 expected[i]);
        assert_int_equal(sample_u64(text, series), 0);
    }
    assert_int_equal(count_lines_starting(text, "vigil_messages_refused_total{"), REFUSE__COUNT);
    assert_int_equal(sample_u64(text, "vigil_store_up"), 0);
    assert_int_equal(sample_u64(text, "vigil_agents{state=\"active\"}"), 0);
    free(text);
}

static void test_counters_increment(void **state)
{
    (void)state;

    for (int i = 0; i < 3; i++)
        metrics_received("heartbeat");
    metrics_received("signals");
    metrics_refused(REFUSE_REVOKED);
    metrics_refused(REFUSE_REVOKED);
    metrics_refused(REFUSE_STORE);
    metrics_rows_stored(5, 40);
    metrics_rows_stored(2, 1);

    char *text = render();
    assert_non_null(strstr(text, "# TYPE vigil_messages_received_total counter\n"));
    assert_int_equal(sample_u64(text, "vigil_messages_received_total{type=\"heartbeat\"}"), 3);
    assert_int_equal(sample_u64(text, "vigil_messages_received_total{type=\"signals\"}"), 1);
    assert_int_equal(sample_u64(text, "vigil_messages_refused_total{reason=\"revoked\"}"), 2);
    assert_int_equal(sample_u64(text, "vigil_messages_refused_total{reason=\"store_error\"}"), 1);
    assert_int_equal(sample_u64(text, "vigil_messages_refused_total{reason=\"malformed\"}"), 0);
    assert_int_equal(sample_u64(text, "vigil_stored_messages_total"), 7);
    assert_int_equal(sample_u64(text, "vigil_stored_signals_total"), 41);
    free(text);

    /* metrics_init starts over. */
    metrics_init();
    text = render();
    assert_null(sample(text, "vigil_messages_received_total{type=\"heartbeat\"}"));
    assert_int_equal(sample_u64(text, "vigil_stored_messages_total"), 0);
    free(text);
}

static void test_received_types_are_bounded(void **state)
{
    char type[32];
    (void)state;

    /* 16 distinct types get their own series; the 17th type onwards counts as "other". */
    for (int i = 0; i < 20; i++) {
        snprintf(type, sizeof(type), "type%02d", i);
        metrics_received(type);
        metrics_received(type);
    }
    metrics_received("type00");

    char *text = render();
    assert_int_equal(count_lines_starting(text, "vigil_messages_received_total{"), 17);
    assert_int_equal(sample_u64(text, "vigil_messages_received_total{type=\"type00\"}"), 3);
    assert_int_equal(sample_u64(text, "vigil_messages_received_total{type=\"type15\"}"), 2);
    assert_null(sample(text, "vigil_messages_received_total{type=\"type16\"}"));
    assert_int_equal(sample_u64(text, "vigil_messages_received_total{type=\"other\"}"), 8);
    free(text);
}

static void test_histogram_is_cumulative(void **state)
{
    static const struct {
        const char *le;
        uint64_t count;
    } expected[] = {
        {"0.001", 2}, {"0.0025", 2}, {"0.005", 4}, {"0.01", 4}, {"0.025", 4}, {"0.05", 4},
        {"0.1", 4},   {"0.25", 5},   {"0.5", 5},   {"1", 5},    {"2.5", 5},   {"+Inf", 6},
    };
    char series[96];
    (void)state;

    /* An observation equal to a bound belongs to that bucket (le is "less or equal"). */
    metrics_store_batch(0.0005);
    metrics_store_batch(0.001);
    metrics_store_batch(0.003);
    metrics_store_batch(0.004);
    metrics_store_batch(0.2);
    metrics_store_batch(3.0);

    char *text = render();
    assert_non_null(strstr(text, "# TYPE vigil_store_batch_seconds histogram\n"));
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        snprintf(series, sizeof(series), "vigil_store_batch_seconds_bucket{le=\"%s\"}",
                 expected[i].le);
        if (sample_u64(text, series) != expected[i].count)
            die("%s: expected %" PRIu64 " in:\n%s", series, expected[i].count, text);
    }
    assert_int_equal(count_lines_starting(text, "vigil_store_batch_seconds_bucket{"), 12);
    assert_int_equal(sample_u64(text, "vigil_store_batch_seconds_count"), 6);
    double sum = sample_double(text, "vigil_store_batch_seconds_sum");
    assert_true(fabs(sum - 3.2085) < 1e-12);
    free(text);
}

static void test_store_up_gauge(void **state)
{
    (void)state;

    assert_int_equal(metrics_store_is_up(), 0);
    metrics_store_up(7);
    assert_int_equal(metrics_store_is_up(), 1);
    char *text = render();
    assert_non_null(strstr(text, "# TYPE vigil_store_up gauge\n"));
    assert_int_equal(sample_u64(text, "vigil_store_up"), 1);
    free(text);
    metrics_store_up(0);
    assert_int_equal(metrics_store_is_up(), 0);
}

static void test_label_values_are_escaped(void **state)
{
    struct metrics_agent agent = {.spool_depth = 12, .dropped_messages = 3};
    const uint64_t by_state[5] = {0, 0, 1, 0, 0};
    (void)state;

    snprintf(agent.id, sizeof(agent.id), "a1");
    snprintf(agent.node, sizeof(agent.node), "we\"ird\\node\nx");
    metrics_set_agents(&agent, 1, by_state);

    char *text = render();
    assert_int_equal(
        sample_u64(text, "vigil_agent_spool_depth{agent=\"a1\",node=\"we\\\"ird\\\\node\\nx\"}"),
        12);
    assert_int_equal(sample_u64(text, "vigil_agent_spool_dropped_messages_total{agent=\"a1\","
                                      "node=\"we\\\"ird\\\\node\\nx\"}"),
                     3);
    free(text);
}

static void test_full_length_fields_are_not_overread(void **state)
{
    struct metrics_agent agent = {0};
    const uint64_t by_state[5] = {0};
    char series[256];
    (void)state;

    /* Fixed arrays filled to the last byte, no terminator: the render must stop at the end. */
    memset(agent.id, 'i', sizeof(agent.id));
    memset(agent.node, 'n', sizeof(agent.node));
    metrics_set_agents(&agent, 1, by_state);

    char *text = render();
    snprintf(series, sizeof(series), "vigil_agent_spool_depth{agent=\"%.*s\",node=\"%.*s\"}",
             (int)sizeof(agent.id), agent.id, (int)sizeof(agent.node), agent.node);
    assert_int_equal(sample_u64(text, series), 0);
    free(text);
}

static void test_set_agents_replaces(void **state)
{
    const uint64_t by_state_many[5] = {0, 4, 1450, 45, 1};
    const uint64_t by_state_one[5] = {0, 0, 1, 0, 0};
    size_t many = 1500;
    (void)state;

    struct metrics_agent *agents = calloc(many, sizeof(*agents));
    assert_non_null(agents);
    for (size_t i = 0; i < many; i++) {
        snprintf(agents[i].id, sizeof(agents[i].id), "agent-%04zu", i);
        snprintf(agents[i].node, sizeof(agents[i].node), "node-%04zu", i);
        agents[i].spool_depth = i;
        agents[i].dropped_messages = 2 * i;
    }
    metrics_set_agents(agents, many, by_state_many);
    /* The registry keeps its own copy: the caller's array may go away (ASan checks this). */
    free(agents);

    char *text = render();
    assert_int_equal(count_lines_starting(text, "vigil_agent_spool_depth{"), many);
    assert_int_equal(count_lines_starting(text, "vigil_agent_spool_dropped_messages_total{"), many);
    assert_int_equal(
        sample_u64(text, "vigil_agent_spool_depth{agent=\"agent-1499\",node=\"node-1499\"}"), 1499);
    assert_int_equal(sample_u64(text, "vigil_agent_spool_dropped_messages_total{"
                                      "agent=\"agent-0007\",node=\"node-0007\"}"),
                     14);
    assert_int_equal(sample_u64(text, "vigil_agents{state=\"pending\"}"), 4);
    assert_int_equal(sample_u64(text, "vigil_agents{state=\"active\"}"), 1450);
    assert_int_equal(sample_u64(text, "vigil_agents{state=\"lost\"}"), 45);
    assert_int_equal(sample_u64(text, "vigil_agents{state=\"revoked\"}"), 1);
    assert_int_equal(count_lines_starting(text, "vigil_agents{"), 4);
    free(text);

    struct metrics_agent one = {.spool_depth = 9};
    snprintf(one.id, sizeof(one.id), "solo");
    snprintf(one.node, sizeof(one.node), "n1");
    metrics_set_agents(&one, 1, by_state_one);
    text = render();
    assert_int_equal(count_lines_starting(text, "vigil_agent_spool_depth{"), 1);
    assert_int_equal(sample_u64(text, "vigil_agent_spool_depth{agent=\"solo\",node=\"n1\"}"), 9);
    assert_int_equal(sample_u64(text, "vigil_agents{state=\"active\"}"), 1);
    assert_int_equal(sample_u64(text, "vigil_agents{state=\"pending\"}"), 0);
    free(text);

    metrics_set_agents(NULL, 0, by_state_one);
    text = render();
    assert_int_equal(count_lines_starting(text, "vigil_agent_spool_depth{"), 0);
    assert_non_null(strstr(text, "# TYPE vigil_agent_spool_depth gauge\n"));
    free(text);
}

/* ---- HTTP ------------------------------------------------------------------------------- */

/* A port nobody listens on right now: bind to port 0, read the number back, close. */
static uint16_t free_port(void)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);

    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    close(fd);
    return ntohs(addr.sin_port);
}

struct http_reply {
    int status;
    char *head; /* status line and headers */
    char *body;
};

static void http_reply_free(struct http_reply *reply)
{
    free(reply->head);
    free(reply->body);
    reply->head = NULL;
    reply->body = NULL;
}

/* A small HTTP/1.0 client: sends one request, reads until the server closes. */
static struct http_reply http_request(uint16_t port, const char *method, const char *path,
                                      const char *body)
{
    struct sockaddr_in addr = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval timeout = {.tv_sec = 5};
    struct http_reply reply = {0};
    char request[512];
    char *buf = NULL;
    size_t len = 0;
    size_t cap = 0;

    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout)), 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    int n = snprintf(request, sizeof(request),
                     "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: %zu\r\n\r\n%s", method,
                     path, body != NULL ? strlen(body) : 0, body != NULL ? body : "");
    assert_true(n > 0 && (size_t)n < sizeof(request));
    assert_int_equal(send(fd, request, (size_t)n, MSG_NOSIGNAL), n);

    for (;;) {
        if (cap - len < 4096) {
            cap = cap == 0 ? 8192 : 2 * cap;
            char *bigger = realloc(buf, cap + 1);
            if (bigger == NULL)
                die("out of memory reading a reply");
            buf = bigger;
        }
        ssize_t got = recv(fd, buf + len, cap - len, 0);
        if (got < 0)
            die("recv from port %u: %s", (unsigned)port, strerror(errno));
        if (got == 0)
            break;
        len += (size_t)got;
    }
    close(fd);
    buf[len] = '\0';

    char *end_of_head = strstr(buf, "\r\n\r\n");
    if (end_of_head == NULL)
        die("no end of headers in reply:\n%s", buf);
    *end_of_head = '\0';
    reply.head = strdup(buf);
    reply.body = strdup(end_of_head + 4);
    assert_non_null(reply.head);
    assert_non_null(reply.body);
    free(buf);

    int minor;
    if (sscanf(reply.head, "HTTP/1.%d %d ", &minor, &reply.status) != 2)
        die("bad status line: %s", reply.head);
    return reply;
}

/* Finds a header's value (case-insensitive name) in the reply head, up to the line end. */
static bool has_header(const struct http_reply *reply, const char *name, const char *value)
{
    char line[256];

    snprintf(line, sizeof(line), "\r\n%s: %s\r\n", name, value);
    /* The head had its final CRLF cut off: look at it with one put back. */
    size_t len = strlen(reply->head);
    char *head = malloc(len + 3);
    assert_non_null(head);
    memcpy(head, reply->head, len);
    memcpy(head + len, "\r\n", 3);
    bool found = strcasestr(head, line) != NULL;
    free(head);
    return found;
}

static void test_http_endpoints(void **state)
{
    char err[256] = "";
    (void)state;

    uint16_t port = free_port();
    http_server_t *server = http_server_start("127.0.0.1", port, 0, err, sizeof(err));
    if (server == NULL)
        die("http_server_start: %s", err);

    struct http_reply reply = http_request(port, "GET", "/healthz", NULL);
    assert_int_equal(reply.status, 503);
    assert_string_equal(reply.body, "store unreachable\n");
    http_reply_free(&reply);

    metrics_store_up(1);
    reply = http_request(port, "GET", "/healthz", NULL);
    assert_int_equal(reply.status, 200);
    assert_string_equal(reply.body, "ok\n");
    http_reply_free(&reply);

    reply = http_request(port, "HEAD", "/healthz", NULL);
    assert_int_equal(reply.status, 200);
    assert_string_equal(reply.body, "");
    http_reply_free(&reply);

    metrics_refused(REFUSE_BAD_TOKEN);
    reply = http_request(port, "GET", "/metrics", NULL);
    assert_int_equal(reply.status, 200);
    assert_true(has_header(&reply, "Content-Type", "text/plain; version=0.0.4; charset=utf-8"));
    assert_int_equal(sample_u64(reply.body, "vigil_store_up"), 1);
    assert_int_equal(sample_u64(reply.body, "vigil_messages_refused_total{reason=\"bad_token\"}"),
                     1);
    http_reply_free(&reply);

    reply = http_request(port, "GET", "/nope", NULL);
    assert_int_equal(reply.status, 404);
    http_reply_free(&reply);

    reply = http_request(port, "POST", "/metrics", "x=1");
    assert_int_equal(reply.status, 405);
    assert_true(has_header(&reply, "Allow", "GET, HEAD"));
    http_reply_free(&reply);

    reply = http_request(port, "DELETE", "/healthz", NULL);
    assert_int_equal(reply.status, 405);
    http_reply_free(&reply);

    /* Still serving after the refused requests. */
    reply = http_request(port, "GET", "/healthz", NULL);
    assert_int_equal(reply.status, 200);
    http_reply_free(&reply);

    /* A second server on the same port says why it cannot start. */
    err[0] = '\0';
    http_server_t *second = http_server_start("127.0.0.1", port, 0, err, sizeof(err));
    assert_null(second);
    char expected[64];
    snprintf(expected, sizeof(expected), "127.0.0.1:%u", (unsigned)port);
    if (strstr(err, "Address already in use") == NULL || strstr(err, expected) == NULL)
        die("unexpected error: %s", err);

    http_server_stop(&server);
    assert_null(server);
    http_server_stop(&server); /* accepts NULL */

    /* Stopping released the port: a new server can take it. */
    server = http_server_start("127.0.0.1", port, 0, err, sizeof(err));
    if (server == NULL)
        die("restart on the same port: %s", err);
    http_server_stop(&server);
}

static void test_http_rejects_bad_address(void **state)
{
    char err[256] = "";
    (void)state;

    assert_null(http_server_start("127.0.0.300", 7480, 0, err, sizeof(err)));
    assert_non_null(strstr(err, "127.0.0.300"));
    assert_null(http_server_start("localhost", 7480, 0, err, sizeof(err)));
    assert_non_null(strstr(err, "localhost"));
}

/* A TCP connection to 127.0.0.1:port from the loopback address source (all of 127/8 is
 * loopback on Linux, so 127.0.0.2 is another client on the same machine). */
static int connect_from(const char *source, uint16_t port)
{
    struct sockaddr_in from = {.sin_family = AF_INET};
    struct sockaddr_in to = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(inet_pton(AF_INET, source, &from.sin_addr), 1);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&from, sizeof(from)), 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&to, sizeof(to)), 0);
    return fd;
}

/* GET /healthz from source: the status, or -1 when no status line came within timeout_ms (the
 * connection was closed unanswered, or nothing came). */
static int healthz_from(const char *source, uint16_t port, int timeout_ms)
{
    static const char request[] = "GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    char buf[256];
    size_t len = 0;
    int fd = connect_from(source, port);
    if (send(fd, request, sizeof(request) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(request) - 1) {
        close(fd);
        return -1;
    }
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    while (len < sizeof(buf) - 1 && poll(&pfd, 1, timeout_ms) == 1) {
        ssize_t got = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
        if (got <= 0)
            break;
        len += (size_t)got;
        buf[len] = '\0';
        if (strstr(buf, "\r\n"))
            break;
    }
    close(fd);
    buf[len] = '\0';
    int minor, status;
    return sscanf(buf, "HTTP/1.%d %d ", &minor, &status) == 2 ? status : -1;
}

/* Whether the server closed fd (EOF or reset) without sending anything. */
static bool closed_by_server(int fd)
{
    char c;
    ssize_t got = recv(fd, &c, 1, MSG_DONTWAIT);
    return got == 0 || (got < 0 && errno == ECONNRESET);
}

static size_t count_closed(const int *fds, size_t n)
{
    size_t closed = 0;
    for (size_t i = 0; i < n; i++)
        closed += closed_by_server(fds[i]);
    return closed;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * One client opening as many idle connections as the server takes in all (a slow or hostile
 * scraper) keeps HTTP_MAX_PER_CLIENT_DEFAULT of them; the rest are closed at once, and a probe
 * from another address still gets /healthz answered within a second. The limit is per address:
 * another connection from the greedy client's own address is refused while it holds its share.
 */
static void test_http_one_client_cannot_take_every_slot(void **state)
{
    char err[256] = "";
    (void)state;
    enum { GREEDY = HTTP_CONNECTION_LIMIT };
    int fds[GREEDY];

    uint16_t port = free_port();
    http_server_t *server =
        http_server_start("127.0.0.1", port, HTTP_MAX_PER_CLIENT_DEFAULT, err, sizeof(err));
    if (server == NULL)
        die("http_server_start: %s", err);
    metrics_store_up(1);
    assert_int_equal(healthz_from("127.0.0.2", port, 1000), 200);

    for (size_t i = 0; i < GREEDY; i++)
        fds[i] = connect_from("127.0.0.1", port);
    int64_t deadline = mono_ms() + 3000;
    while (count_closed(fds, GREEDY) < GREEDY - HTTP_MAX_PER_CLIENT_DEFAULT && mono_ms() < deadline)
        poll(NULL, 0, 20);
    size_t closed = count_closed(fds, GREEDY);
    if (closed != GREEDY - HTTP_MAX_PER_CLIENT_DEFAULT)
        die("%zu of %d idle connections from one address were closed, want %u", closed, GREEDY,
            GREEDY - HTTP_MAX_PER_CLIENT_DEFAULT);

    /* Another client is served at once, several times over. */
    for (int i = 0; i < 3; i++) {
        int64_t start = mono_ms();
        int status = healthz_from("127.0.0.2", port, 1000);
        if (status != 200)
            die("/healthz from 127.0.0.2 while 127.0.0.1 holds its share: %d (-1 = no answer "
                "within 1 s)",
                status);
        assert_true(mono_ms() - start < 1000);
    }
    /* The greedy address itself gets nothing more until it lets go. */
    assert_int_equal(healthz_from("127.0.0.1", port, 1000), -1);
    for (size_t i = 0; i < GREEDY; i++)
        close(fds[i]);
    deadline = mono_ms() + 3000;
    int status;
    while ((status = healthz_from("127.0.0.1", port, 1000)) != 200 && mono_ms() < deadline)
        poll(NULL, 0, 20);
    assert_int_equal(status, 200);

    http_server_stop(&server);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_refuse_reasons_present_at_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counters_increment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_received_types_are_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_histogram_is_cumulative, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_up_gauge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_label_values_are_escaped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_length_fields_are_not_overread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_agents_replaces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_endpoints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_rejects_bad_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_one_client_cannot_take_every_slot, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
