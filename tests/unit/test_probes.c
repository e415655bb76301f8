/*
 * The probe runner with the real HTTP and Redis modules (VIGIL_PROBE_DIR) against servers on
 * loopback that this test runs: a hanging target delays nobody, failures carry their reason,
 * and stopping never waits for a timeout. PostgreSQL, and Redis against a real server, are
 * covered by tests/integration/probes.sh.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "probes.h"
#include "timeutil.h"
#include "wire.h"

/* ---- Loopback servers -------------------------------------------------------------------- */

/* A TCP socket bound to 127.0.0.1 on a free port, not yet listening: connecting to it is
 * refused until listen() is called. */
static int bound_socket(int *ret_port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    *ret_port = ntohs(addr.sin_port);
    return fd;
}

/* A listener that never accepts: the kernel completes the handshake, nobody answers. */
static int hanging_listener(int *ret_port)
{
    int fd = bound_socket(ret_port);
    assert_int_equal(listen(fd, 128), 0);
    return fd;
}

/* Answers each connection: HTTP once (then closes), or Redis commands until the client goes. */
struct server {
    int fd;
    int port;
    bool redis;
    const char *http_response;
    const char *const *http_responses; /* or these in turn, the last one repeated */
    size_t nhttp, http_next;
    const char *const *info_replies; /* redis: INFO answers in turn, the last one repeated */
    size_t ninfo, info_next;
    volatile bool stop;
    pthread_t thread;
};

static void send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n <= 0)
            return;
        data += n;
        len -= (size_t)n;
    }
}

static void serve_http(struct server *s, int conn)
{
    char buf[4096];
    size_t used = 0;
    while (used < sizeof(buf) - 1) {
        ssize_t n = recv(conn, buf + used, sizeof(buf) - 1 - used, 0);
        if (n <= 0)
            return;
        used += (size_t)n;
        buf[used] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            break;
    }
    const char *response = s->http_response;
    if (s->nhttp)
        response = s->http_responses[s->http_next < s->nhttp ? s->http_next++ : s->nhttp - 1];
    send_all(conn, response, strlen(response));
}

/* Enough RESP for PING, INFO and AUTH: the command name is found in the request text. One
 * recv per request is enough for these small commands. False when the client is gone. */
static bool serve_redis(struct server *s, int conn)
{
    char buf[4096];
    ssize_t n = recv(conn, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    if (strstr(buf, "PING")) {
        send_all(conn, "+PONG\r\n", 7);
    } else if (strstr(buf, "INFO")) {
        const char *info = s->info_replies[s->info_next < s->ninfo ? s->info_next++ : s->ninfo - 1];
        char head[32];
        int hn = snprintf(head, sizeof(head), "$%zu\r\n", strlen(info));
        send_all(conn, head, (size_t)hn);
        send_all(conn, info, strlen(info));
        send_all(conn, "\r\n", 2);
    } else {
        send_all(conn, "-ERR unknown command\r\n", 22);
    }
    return true;
}

#define SERVER_CONNS 8

/* HTTP connections are served one at a time; Redis connections stay open (the probe keeps
 * its connection), so they are multiplexed. */
static void *server_main(void *arg)
{
    struct server *s = arg;
    struct pollfd fds[1 + SERVER_CONNS];
    size_t nconns = 0;

    while (!s->stop) {
        fds[0] = (struct pollfd){.fd = s->fd, .events = POLLIN};
        for (size_t i = 0; i < nconns; i++)
            fds[1 + i].revents = 0;
        if (poll(fds, 1 + nconns, 50) <= 0)
            continue;
        for (size_t i = 0; i < nconns; i++) {
            if (fds[1 + i].revents && !serve_redis(s, fds[1 + i].fd)) {
                close(fds[1 + i].fd);
                fds[1 + i] = fds[nconns--];
                i--;
            }
        }
        if (!(fds[0].revents & POLLIN))
            continue;
        int conn = accept(s->fd, NULL, NULL);
        if (conn < 0)
            continue;
        if (s->redis && nconns < SERVER_CONNS) {
            fds[1 + nconns++] = (struct pollfd){.fd = conn, .events = POLLIN};
            continue;
        }
        if (!s->redis)
            serve_http(s, conn);
        close(conn);
    }
    for (size_t i = 0; i < nconns; i++)
        close(fds[1 + i].fd);
    return NULL;
}

/* Starts serving on fd (from bound_socket, listening from now on). */
static void server_start(struct server *s, int fd, int port)
{
    s->fd = fd;
    s->port = port;
    s->stop = false;
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
}

static void server_stop(struct server *s)
{
    s->stop = true;
    pthread_join(s->thread, NULL);
    close(s->fd);
}

/* ---- What the runner delivered ----------------------------------------------------------- */

struct seen_sample {
    char target[64];
    char name[64];
    char reason[64];    /* the reason label, "" without */
    char component[64]; /* the component label, "" without */
    double value;
    int64_t ts_ms;
    size_t nlabels;
    char first_label[16];
};

struct seen {
    struct seen_sample items[4096];
    size_t n;
};

/* Waits up to wait_ms for probes_fd, drains, and decodes what the main loop would send. */
static void collect_for(probes_t *p, struct seen *seen, int64_t wait_ms)
{
    int64_t deadline = vg_mono_ms() + wait_ms;
    for (;;) {
        int64_t left = deadline - vg_mono_ms();
        if (left <= 0)
            return;
        struct pollfd pfd = {.fd = probes_fd(p), .events = POLLIN};
        if (poll(&pfd, 1, (int)left) <= 0)
            continue;
        sigbuf_t *batch = sigbuf_new();
        struct collect_ctx ctx = {.batch = batch, .now_ms = 1};
        probes_drain(p, &ctx);
        assert_int_equal(ctx.now_ms, 1); /* restored after each sample's own time */
        if (sigbuf_count(batch) > 0) {
            uint8_t *buf;
            size_t len;
            Vigil__Envelope *env = NULL;
            assert_int_equal(sigbuf_encode(batch, "ag-0123456789abcdef", 1, &buf, &len), 0);
            assert_int_equal(vg_envelope_decode(buf, len, &env, NULL), VG_DECODE_OK);
            for (size_t i = 0; i < env->signals->n_signals && seen->n < 4096; i++) {
                const Vigil__Signal *sig = env->signals->signals[i];
                struct seen_sample *s = &seen->items[seen->n++];
                memset(s, 0, sizeof(*s));
                snprintf(s->name, sizeof(s->name), "%s", sig->name);
                s->value = sig->value;
                s->ts_ms = sig->ts_ms;
                s->nlabels = sig->n_labels;
                if (sig->n_labels > 0)
                    snprintf(s->first_label, sizeof(s->first_label), "%s", sig->labels[0]->key);
                for (size_t l = 0; l < sig->n_labels; l++) {
                    if (strcmp(sig->labels[l]->key, "target") == 0)
                        snprintf(s->target, sizeof(s->target), "%s", sig->labels[l]->value);
                    if (strcmp(sig->labels[l]->key, "reason") == 0)
                        snprintf(s->reason, sizeof(s->reason), "%s", sig->labels[l]->value);
                    if (strcmp(sig->labels[l]->key, "component") == 0)
                        snprintf(s->component, sizeof(s->component), "%s", sig->labels[l]->value);
                }
            }
            vg_envelope_free(env);
            free(buf);
        }
        sigbuf_destroy(&batch);
    }
}

static const struct seen_sample *find(const struct seen *seen, const char *target, const char *name,
                                      size_t nth)
{
    for (size_t i = 0; i < seen->n; i++) {
        if (strcmp(seen->items[i].target, target) == 0 && strcmp(seen->items[i].name, name) == 0 &&
            nth-- == 0)
            return &seen->items[i];
    }
    return NULL;
}

/* The nth sample of the series name{target, label=value} (label "reason" or "component"). */
static const struct seen_sample *find_labelled(const struct seen *seen, const char *target,
                                               const char *name, const char *label,
                                               const char *value, size_t nth)
{
    for (size_t i = 0; i < seen->n; i++) {
        const struct seen_sample *s = &seen->items[i];
        const char *v = strcmp(label, "reason") == 0 ? s->reason : s->component;
        if (strcmp(s->target, target) == 0 && strcmp(s->name, name) == 0 && strcmp(v, value) == 0 &&
            nth-- == 0)
            return s;
    }
    return NULL;
}

static size_t count(const struct seen *seen, const char *target, const char *name)
{
    size_t n = 0;
    while (find(seen, target, name, n))
        n++;
    return n;
}

/* ---- Runner set-up ----------------------------------------------------------------------- */

static struct probe_target_config http_target(const char *name, char *url, size_t size, int port,
                                              const char *path)
{
    snprintf(url, size, "http://127.0.0.1:%d%s", port, path);
    return (struct probe_target_config){.name = (char *)name, .address = url, .tls_verify = true};
}

static probes_t *start_http(const struct probe_target_config *targets, size_t n,
                            int64_t interval_ms, int64_t timeout_ms)
{
    char err[512] = "";
    struct probes_kind_config kind = {
        .kind = "http",
        .interval_ms = interval_ms,
        .options = {.timeout_ms = timeout_ms},
        .targets = targets,
        .ntargets = n,
    };
    probes_t *p = probes_new(&kind, 1, NULL, err, sizeof(err));
    if (!p)
        fail_msg("probes_new: %s", err);
    return p;
}

static const char HTTP_OK[] = "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok";

/* ---- Tests ------------------------------------------------------------------------------- */

static void test_missing_module_is_a_clear_error(void **unused)
{
    (void)unused;
    char dir[] = "/tmp/vigil-probes-XXXXXX";
    char url[64], err[512] = "";
    assert_non_null(mkdtemp(dir));
    struct probe_target_config t = http_target("web", url, sizeof(url), 80, "/");
    struct probes_kind_config kind = {.kind = "http",
                                      .interval_ms = 1000,
                                      .options = {.timeout_ms = 1000},
                                      .targets = &t,
                                      .ntargets = 1};

    assert_null(probes_new(&kind, 1, dir, err, sizeof(err)));
    char expected[128];
    snprintf(expected, sizeof(expected),
             "http probes are configured but %s/vigil-probe-http.so cannot be loaded: ", dir);
    if (strncmp(err, expected, strlen(expected)) != 0)
        fail_msg("unexpected error: %s", err);
    assert_int_equal(rmdir(dir), 0);
}

static bool mapped(const char *library)
{
    char line[512];
    bool found = false;
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, library) != NULL;
    fclose(f);
    return found;
}

/* The point of modules: a library is mapped only when a probe of its kind is configured. */
static void test_only_configured_kinds_are_loaded(void **unused)
{
    (void)unused;
    char dir[] = "/tmp/vigil-probes-XXXXXX";
    char url[64], err[512] = "";
    assert_non_null(mkdtemp(dir));
    struct probe_target_config t = http_target("web", url, sizeof(url), 80, "/");
    struct probe_target_config r = {.name = "cache", .address = "127.0.0.1:6379"};

    /* Disabled (interval 0) or without targets: not even looked for. */
    struct probes_kind_config off[] = {
        {.kind = "http",
         .interval_ms = 0,
         .options = {.timeout_ms = 1000},
         .targets = &t,
         .ntargets = 1},
        {.kind = "redis", .interval_ms = 1000, .options = {.timeout_ms = 1000}},
    };
    probes_t *p = probes_new(off, 2, dir, err, sizeof(err));
    if (!p)
        fail_msg("probes_new: %s", err);
    probes_destroy(&p);
    assert_null(p);
    assert_int_equal(rmdir(dir), 0);

    assert_false(mapped("libcurl"));
    assert_false(mapped("libhiredis"));
    struct probes_kind_config only_redis = {.kind = "redis",
                                            .interval_ms = 60000,
                                            .options = {.timeout_ms = 1000},
                                            .targets = &r,
                                            .ntargets = 1};
    p = probes_new(&only_redis, 1, NULL, err, sizeof(err));
    if (!p)
        fail_msg("probes_new: %s", err);
    assert_true(mapped("libhiredis"));
    assert_false(mapped("libcurl"));
    assert_false(mapped("libpq"));
    probes_destroy(&p);
}

/* probes_new refuses kind's targets with an error that contains needle. */
static void expect_config_error(const char *kind, const struct probe_target_config *targets,
                                size_t n, const char *needle)
{
    char err[512] = "";
    struct probes_kind_config config = {.kind = kind,
                                        .interval_ms = 1000,
                                        .options = {.timeout_ms = 1000},
                                        .targets = targets,
                                        .ntargets = n};
    probes_t *p = probes_new(&config, 1, NULL, err, sizeof(err));
    if (p || !strstr(err, needle))
        fail_msg("expected an error with \"%s\", got \"%s\"", needle, p ? "success" : err);
}

static void test_bad_targets_are_refused(void **unused)
{
    (void)unused;
    char u1[64], u2[64];
    const struct probe_target_config same_name[] = {http_target("web", u1, sizeof(u1), 80, "/"),
                                                    http_target("web", u2, sizeof(u2), 81, "/")};
    expect_config_error("http", same_name, 2, "the name \"web\" is already used by targets[0]");

    const struct probe_target_config no_url[] = {same_name[0], {.name = "api", .address = ""}};
    expect_config_error("http", no_url, 2, "targets[1] (\"api\"): the url must not be empty");

    const struct probe_target_config ftp[] = {{.name = "api", .address = "ftp://127.0.0.1/"}};
    expect_config_error("http", ftp, 1,
                        "target \"api\": url \"ftp://127.0.0.1/\": only http:// and "
                        "https:// are probed");

    const struct probe_target_config bad_port[] = {{.name = "c", .address = "127.0.0.1:99999"}};
    expect_config_error("redis", bad_port, 1, "expected host:port or a socket path");

    const struct probe_target_config no_file[] = {
        {.name = "c", .address = "127.0.0.1:6379", .password_file = "/nonexistent/vigil-pw"}};
    expect_config_error("redis", no_file, 1, "password file /nonexistent/vigil-pw: No such file");

    /* A password others can read is refused, not used. */
    char exposed[] = "/tmp/vigil-probes-pw-XXXXXX";
    int fd = mkstemp(exposed);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "secret\n", 7), 7);
    assert_int_equal(fchmod(fd, 0644), 0);
    close(fd);
    const struct probe_target_config readable[] = {
        {.name = "db", .address = "dbname=x", .password_file = exposed}};
    expect_config_error("postgres", readable, 1, "must be a regular file private to its owner");
    assert_int_equal(unlink(exposed), 0);

    const struct probe_target_config bad_conninfo[] = {{.name = "db", .address = "host=x port"}};
    expect_config_error("postgres", bad_conninfo, 1, "target \"db\": conninfo: ");
}

/* A target that accepts and never answers reports a timeout within about its timeout, while
 * a healthy target next to it keeps reporting on its own schedule. */
static void test_hanging_target_delays_nobody(void **unused)
{
    (void)unused;
    static struct seen seen;
    struct server ok = {.http_response = HTTP_OK};
    int hang_port, ok_port;
    int hang_fd = hanging_listener(&hang_port);
    int ok_fd = bound_socket(&ok_port);
    server_start(&ok, ok_fd, ok_port);
    char hang_url[64], ok_url[64];
    struct probe_target_config targets[] = {
        http_target("stuck", hang_url, sizeof(hang_url), hang_port, "/"),
        http_target("fine", ok_url, sizeof(ok_url), ok_port, "/healthz"),
    };

    memset(&seen, 0, sizeof(seen));
    int64_t started = vg_wall_ms();
    probes_t *p = start_http(targets, 2, 250, 1000);
    collect_for(p, &seen, 2200);
    probes_destroy(&p);
    server_stop(&ok);
    close(hang_fd);

    const struct seen_sample *down = find(&seen, "stuck", "http.up", 0);
    const struct seen_sample *reason = find(&seen, "stuck", "http.error", 0);
    assert_non_null(down);
    assert_non_null(reason);
    assert_true(down->value == 0);
    assert_string_equal(reason->reason, "timeout");
    assert_true(reason->value == 1);
    /* Reported at about the timeout (1 s), not later. */
    assert_in_range(down->ts_ms - started, 900, 1800);
    assert_string_equal(down->first_label, "target");

    /* Meanwhile the healthy target kept its 250 ms cadence: up, status 200, a time. */
    size_t ups = count(&seen, "fine", "http.up");
    assert_in_range(ups, 6, 10);
    for (size_t i = 0; i < ups; i++) {
        assert_true(find(&seen, "fine", "http.up", i)->value == 1);
        assert_true(find(&seen, "fine", "http.status", i)->value == 200);
    }
    assert_true(find(&seen, "fine", "http.up", 2)->ts_ms < down->ts_ms);
    assert_in_range(find(&seen, "fine", "http.time_ms", 0)->value, 0, 500);
    assert_null(find(&seen, "fine", "http.error", 0));
    assert_null(find(&seen, "fine", "http.tls_days_left", 0));
}

/* Refused, then the port starts answering: up again, and the old reason is ended with 0. */
static void test_refused_then_recovered(void **unused)
{
    (void)unused;
    static struct seen seen;
    struct server srv = {.http_response = HTTP_OK};
    int port;
    int fd = bound_socket(&port); /* bound, not listening: refused */
    char url[64];
    struct probe_target_config t = http_target("api", url, sizeof(url), port, "/");

    memset(&seen, 0, sizeof(seen));
    probes_t *p = start_http(&t, 1, 200, 1000);
    collect_for(p, &seen, 300);
    const struct seen_sample *down = find(&seen, "api", "http.up", 0);
    const struct seen_sample *reason = find(&seen, "api", "http.error", 0);
    assert_non_null(down);
    assert_true(down->value == 0);
    assert_non_null(reason);
    assert_string_equal(reason->reason, "refused");
    assert_null(find(&seen, "api", "http.status", 0));

    server_start(&srv, fd, port);
    collect_for(p, &seen, 500);
    probes_destroy(&p);
    server_stop(&srv);

    size_t ups = count(&seen, "api", "http.up");
    assert_true(find(&seen, "api", "http.up", ups - 1)->value == 1);
    size_t errors = count(&seen, "api", "http.error");
    const struct seen_sample *ended = find(&seen, "api", "http.error", errors - 1);
    assert_string_equal(ended->reason, "refused");
    assert_true(ended->value == 0);
}

static void test_unexpected_status_is_down(void **unused)
{
    (void)unused;
    static struct seen seen;
    struct server srv = {.http_response = "HTTP/1.0 503 Service Unavailable\r\n\r\n"};
    struct server created = {.http_response = HTTP_OK};
    int port, port2;
    int srv_fd = bound_socket(&port);
    server_start(&srv, srv_fd, port);
    int created_fd = bound_socket(&port2);
    server_start(&created, created_fd, port2);
    char url[64], url2[64];
    struct probe_target_config t[] = {http_target("web", url, sizeof(url), port, "/"),
                                      http_target("strict", url2, sizeof(url2), port2, "/")};
    t[1].expect_status = 201;

    memset(&seen, 0, sizeof(seen));
    probes_t *p = start_http(t, 2, 1000, 1000);
    collect_for(p, &seen, 400);
    probes_destroy(&p);
    server_stop(&srv);
    server_stop(&created);

    assert_true(find(&seen, "web", "http.up", 0)->value == 0);
    assert_true(find(&seen, "web", "http.status", 0)->value == 503);
    assert_string_equal(find(&seen, "web", "http.error", 0)->reason, "status 503");
    assert_true(find(&seen, "strict", "http.up", 0)->value == 0);
    assert_string_equal(find(&seen, "strict", "http.error", 0)->reason, "status 200");
}

/* Stopping does not wait for a probe that hangs in a long timeout. */
static void test_destroy_while_hanging_is_prompt(void **unused)
{
    (void)unused;
    int port;
    int fd = hanging_listener(&port);
    char url[64];
    struct probe_target_config t = http_target("stuck", url, sizeof(url), port, "/");

    probes_t *p = start_http(&t, 1, 1000, 30000);
    usleep(300 * 1000); /* the request is sent and waiting */
    int64_t before = vg_mono_ms();
    probes_destroy(&p);
    int64_t took = vg_mono_ms() - before;
    close(fd);
    assert_null(p);
    assert_in_range(took, 0, 300);
}

/* Redis INFO is hostile input; the hit rate is over the last interval, evictions a delta. */
static void test_redis_info(void **unused)
{
    (void)unused;
    static struct seen seen;
    static const char *const info[] = {
        "# Stats\r\nkeyspace_hits:90\r\nkeyspace_misses:10\r\nevicted_keys:5\r\n"
        "# Memory\r\nused_memory:500\r\nmaxmemory:1000\r\n# Clients\r\nconnected_clients:3\r\n",
        /* Garbage, overlong numbers and unknown keys are skipped; known keys still count. */
        "garbage without colon\r\n:\r\nused_memory:99999999999999999999999\r\n"
        "keyspace_hits:100\r\nkeyspace_misses:30\r\nevicted_keys:8\r\nmaxmemory:0\r\n"
        "connected_clients:-1\r\nconnected_clients:4\r\nx:\xff\xfe\r\n",
    };
    struct server srv = {.redis = true, .info_replies = info, .ninfo = 2};
    int port;
    int srv_fd = bound_socket(&port);
    server_start(&srv, srv_fd, port);
    char address[32], err[512] = "";
    snprintf(address, sizeof(address), "127.0.0.1:%d", port);
    struct probe_target_config t = {.name = "cache", .address = address};
    struct probes_kind_config kind = {.kind = "redis",
                                      .interval_ms = 300,
                                      .options = {.timeout_ms = 1000},
                                      .targets = &t,
                                      .ntargets = 1};

    memset(&seen, 0, sizeof(seen));
    probes_t *p = probes_new(&kind, 1, NULL, err, sizeof(err));
    if (!p)
        fail_msg("probes_new: %s", err);
    collect_for(p, &seen, 450);
    probes_destroy(&p);
    server_stop(&srv);

    assert_true(find(&seen, "cache", "redis.up", 0)->value == 1);
    assert_in_range(find(&seen, "cache", "redis.ping_ms", 0)->value, 0, 500);
    /* First cycle: lifetime counters. */
    assert_true(find(&seen, "cache", "redis.hit_rate", 0)->value == 90.0);
    assert_true(find(&seen, "cache", "redis.evicted_keys", 0)->value == 5);
    assert_true(find(&seen, "cache", "redis.mem_used_pct", 0)->value == 50.0);
    assert_true(find(&seen, "cache", "redis.clients", 0)->value == 3);
    /* Second cycle: deltas (10 hits, 20 misses; 3 evictions), no maxmemory. */
    assert_true(find(&seen, "cache", "redis.up", 1)->value == 1);
    assert_float_equal(find(&seen, "cache", "redis.hit_rate", 1)->value, 100.0 / 3, 0.01);
    /* Evictions need a baseline: only from the second cycle on. */
    assert_int_equal(count(&seen, "cache", "redis.evictions"), 1);
    assert_true(find(&seen, "cache", "redis.evictions", 0)->value == 3);
    assert_true(find(&seen, "cache", "redis.evictions", 0)->ts_ms >=
                find(&seen, "cache", "redis.up", 1)->ts_ms);
    assert_true(find(&seen, "cache", "redis.evicted_keys", 1)->value == 8);
    assert_true(find(&seen, "cache", "redis.clients", 1)->value == 4);
    assert_int_equal(count(&seen, "cache", "redis.mem_used_bytes"), 1);
    assert_int_equal(count(&seen, "cache", "redis.mem_used_pct"), 1);
}

static void test_redis_refused(void **unused)
{
    (void)unused;
    static struct seen seen;
    int port;
    int fd = bound_socket(&port);
    char address[32], err[512] = "";
    snprintf(address, sizeof(address), "127.0.0.1:%d", port);
    struct probe_target_config t = {.name = "cache", .address = address};
    struct probes_kind_config kind = {.kind = "redis",
                                      .interval_ms = 1000,
                                      .options = {.timeout_ms = 1000},
                                      .targets = &t,
                                      .ntargets = 1};

    memset(&seen, 0, sizeof(seen));
    probes_t *p = probes_new(&kind, 1, NULL, err, sizeof(err));
    if (!p)
        fail_msg("probes_new: %s", err);
    collect_for(p, &seen, 300);
    probes_destroy(&p);
    close(fd);
    assert_true(find(&seen, "cache", "redis.up", 0)->value == 0);
    assert_string_equal(find(&seen, "cache", "redis.error", 0)->reason, "refused");
}

struct capture {
    char data[8192];
    size_t len;
};

static int capture_write(void *w, const void *data, size_t len)
{
    struct capture *c = w;
    if (len > sizeof(c->data) - c->len)
        return -E2BIG;
    memcpy(c->data + c->len, data, len);
    c->len += len;
    return 0;
}

static void test_evidence(void **unused)
{
    (void)unused;
    static const char *const info[] = {"# Server\r\nredis_version:7.0.15\r\n"};
    struct server srv = {.redis = true, .info_replies = info, .ninfo = 1};
    int port, other;
    int srv_fd = bound_socket(&port);
    server_start(&srv, srv_fd, port);
    int refused_fd = bound_socket(&other);
    char a1[32], a2[32], url[64], err[512] = "";
    snprintf(a1, sizeof(a1), "127.0.0.1:%d", port);
    snprintf(a2, sizeof(a2), "127.0.0.1:%d", other);
    struct probe_target_config redis[] = {{.name = "cache", .address = a1},
                                          {.name = "gone", .address = a2}};
    struct probe_target_config http = http_target("web", url, sizeof(url), other, "/");
    struct probes_kind_config kinds[] = {
        {.kind = "redis",
         .interval_ms = 60000,
         .options = {.timeout_ms = 1000},
         .targets = redis,
         .ntargets = 2},
        {.kind = "http",
         .interval_ms = 60000,
         .options = {.timeout_ms = 1000},
         .targets = &http,
         .ntargets = 1},
    };
    probes_t *p = probes_new(kinds, 2, NULL, err, sizeof(err));
    if (!p)
        fail_msg("probes_new: %s", err);
    struct capture c = {.len = 0};
    struct artifact_writer out = {.write = capture_write, .w = &c};

    assert_int_equal(probes_evidence(p, "redis", "cache", &out, err, sizeof(err)), 0);
    assert_int_equal(c.len, strlen(info[0]));
    assert_memory_equal(c.data, info[0], c.len); /* verbatim */

    assert_int_equal(probes_evidence(p, "redis", "gone", &out, err, sizeof(err)), -EIO);
    if (!strstr(err, "redis target \"gone\": ") || !strstr(err, "refused"))
        fail_msg("unexpected error: %s", err);
    assert_int_equal(probes_evidence(p, "redis", NULL, &out, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "2 redis targets are configured: name one");
    assert_int_equal(probes_evidence(p, "redis", "nope", &out, err, sizeof(err)), -ENOENT);
    assert_int_equal(probes_evidence(p, "postgres", NULL, &out, err, sizeof(err)), -ENOENT);
    assert_string_equal(err, "no postgres probe is configured on this node");
    assert_int_equal(probes_evidence(p, "http", NULL, &out, err, sizeof(err)), -EOPNOTSUPP);
    probes_destroy(&p);
    server_stop(&srv);
    close(refused_fd);
}

/* The kubernetes module: targets have no address but a kubeconfig and namespaces (copied by the
 * runner); a server that refuses is down with reason refused, and its evidence fails. The API
 * server end to end is tests/integration/kube_probe.sh. */
static void test_kubernetes_refused(void **unused)
{
    (void)unused;
    static struct seen seen;
    char kubeconfig[] = "/tmp/vigil-probes-kube-XXXXXX";
    char err[512] = "";
    int port;
    int refused_fd = bound_socket(&port);
    int fd = mkstemp(kubeconfig);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fprintf(f,
            "apiVersion: v1\nkind: Config\ncurrent-context: test\n"
            "clusters: [{name: c, cluster: {server: \"https://127.0.0.1:%d\"}}]\n"
            "users: [{name: u, user: {token: not-a-real-token}}]\n"
            "contexts: [{name: test, context: {cluster: c, user: u}}]\n",
            port);
    fclose(f);

    char *bad_ns[] = {"Not_A_Namespace"};
    const struct probe_target_config bad[] = {
        {.name = "k8s", .kubeconfig = kubeconfig, .namespaces = {bad_ns, 1}}};
    expect_config_error("kubernetes", bad, 1, "\"Not_A_Namespace\" is not a namespace name");
    const struct probe_target_config missing[] = {
        {.name = "k8s", .kubeconfig = "/nonexistent/vigil-kubeconfig"}};
    expect_config_error("kubernetes", missing, 1, "/nonexistent/vigil-kubeconfig");

    char *namespaces[] = {"reconciliation", "shop"};
    struct probe_target_config t = {
        .name = "k8s", .kubeconfig = kubeconfig, .namespaces = {namespaces, 2}};
    struct probes_kind_config kind = {.kind = "kubernetes",
                                      .interval_ms = 1000,
                                      .options = {.timeout_ms = 1000},
                                      .targets = &t,
                                      .ntargets = 1};
    memset(&seen, 0, sizeof(seen));
    probes_t *p = probes_new(&kind, 1, NULL, err, sizeof(err));
    if (!p)
        fail_msg("probes_new: %s", err);
    collect_for(p, &seen, 300);
    assert_non_null(find(&seen, "k8s", "k8s.up", 0));
    assert_true(find(&seen, "k8s", "k8s.up", 0)->value == 0);
    assert_string_equal(find(&seen, "k8s", "k8s.error", 0)->reason, "refused");
    assert_int_equal(count(&seen, "k8s", "k8s.pods_not_ready"), 0);

    struct capture c = {.len = 0};
    struct artifact_writer out = {.write = capture_write, .w = &c};
    assert_true(probes_evidence(p, "kubernetes", "k8s", &out, err, sizeof(err)) < 0);
    if (!strstr(err, "kubernetes target \"k8s\": ") || !strstr(err, "refused"))
        fail_msg("unexpected error: %s", err);
    assert_int_equal(c.len, 0);
    probes_destroy(&p);
    close(refused_fd);
    assert_int_equal(unlink(kubeconfig), 0);
}

#define JSON_200 "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n"

/* statuspage: true reads a vendor's Statuspage v2 status.json or summary.json: the indicator,
 * maintenance and components, a component that leaves the page ended with 0; a body of another
 * shape emits none of them and says why in http.error while http.up stays 1. A target without
 * the option ignores the same body. */
static void test_statuspage(void **unused)
{
    (void)unused;
    static struct seen seen;
    static const char *const vendor_bodies[] = {
        JSON_200 "{\"page\": {\"id\": \"x\", \"name\": \"Vendor\"},"
                 " \"status\": {\"indicator\": \"none\", \"description\": \"All Systems "
                 "Operational\"}}",
        JSON_200 "{\"page\": {}, \"status\": {\"indicator\": \"major\", \"description\": \"Partial "
                 "System Outage\"}, \"components\": ["
                 "{\"name\": \"API\", \"status\": \"operational\"},"
                 "{\"name\": \"Web\", \"status\": \"partial_outage\"},"
                 "{\"name\": \"Search\", \"status\": \"degraded_performance\"},"
                 "{\"name\": \"Billing\", \"status\": \"major_outage\"},"
                 "{\"name\": \"Old\", \"status\": \"under_maintenance\"},"
                 "{\"name\": 3, \"status\": \"major_outage\"},"
                 "{\"name\": \"Odd\", \"status\": \"on_fire\"},"
                 "{\"name\": \"API\", \"status\": \"major_outage\"}],"
                 " \"scheduled_maintenances\": [{\"name\": \"db\", \"status\": \"in_progress\"}]}",
        JSON_200 "{\"status\": {\"indicator\": \"maintenance\"}, \"components\": ["
                 "{\"name\": \"API\", \"status\": \"operational\"},"
                 "{\"name\": \"Search\", \"status\": \"operational\"},"
                 "{\"name\": \"Billing\", \"status\": \"operational\"},"
                 "{\"name\": \"Old\", \"status\": \"operational\"}]}",
        JSON_200 "<html>We'll be right back</html>",
    };
    /* 60 components (50 kept), then bodies each wrong in its own way. */
    static char many[8192];
    size_t used = (size_t)snprintf(many, sizeof(many), "%s",
                                   JSON_200 "{\"status\": {\"indicator\": \"minor\"}, "
                                            "\"components\": [");
    for (int i = 0; i < 60; i++)
        used += (size_t)snprintf(many + used, sizeof(many) - used,
                                 "%s{\"name\": \"c%02d\", \"status\": \"partial_outage\"}",
                                 i ? "," : "", i);
    snprintf(many + used, sizeof(many) - used, "]}");
    size_t big_len = strlen(JSON_200) + 1100 * 1024;
    char *big = malloc(big_len + 1);
    assert_non_null(big);
    memcpy(big, JSON_200, strlen(JSON_200));
    memset(big + strlen(JSON_200), ' ', big_len - strlen(JSON_200));
    big[big_len] = '\0';
    const char *const odd_bodies[] = {
        many,
        big,
        JSON_200 "{\"status\": {\"indicator\": \"purple\"}}",
        JSON_200 "{\"page\": {}}",
        JSON_200 "{\"status\": {\"indicator\": \"none\"}, \"components\": {\"API\": 1}}",
    };

    struct server vendor = {.http_responses = vendor_bodies, .nhttp = 4};
    struct server odd = {.http_responses = odd_bodies, .nhttp = 5};
    struct server plain = {.http_responses = vendor_bodies + 1, .nhttp = 1};
    int vendor_port, odd_port, plain_port;
    int vendor_fd = bound_socket(&vendor_port), odd_fd = bound_socket(&odd_port),
        plain_fd = bound_socket(&plain_port);
    server_start(&vendor, vendor_fd, vendor_port);
    server_start(&odd, odd_fd, odd_port);
    server_start(&plain, plain_fd, plain_port);
    char u1[96], u2[96], u3[96];
    struct probe_target_config t[] = {
        http_target("vendor", u1, sizeof(u1), vendor_port, "/api/v2/summary.json"),
        http_target("odd", u2, sizeof(u2), odd_port, "/api/v2/summary.json"),
        http_target("plain", u3, sizeof(u3), plain_port, "/api/v2/summary.json"),
    };
    t[0].statuspage = true;
    t[1].statuspage = true;

    memset(&seen, 0, sizeof(seen));
    probes_t *p = start_http(t, 3, 200, 1000);
    collect_for(p, &seen, 1500);
    probes_destroy(&p);
    server_stop(&vendor);
    server_stop(&odd);
    server_stop(&plain);
    free(big);

    /* Every cycle answered: up, whatever the body said. */
    assert_in_range(count(&seen, "vendor", "http.up"), 5, 9);
    for (size_t i = 0; i < count(&seen, "vendor", "http.up"); i++)
        assert_true(find(&seen, "vendor", "http.up", i)->value == 1);
    for (size_t i = 0; i < count(&seen, "odd", "http.up"); i++)
        assert_true(find(&seen, "odd", "http.up", i)->value == 1);

    /* none, major, maintenance; then nothing for the HTML page. */
    assert_int_equal(count(&seen, "vendor", "http.statuspage.indicator"), 3);
    assert_true(find(&seen, "vendor", "http.statuspage.indicator", 0)->value == 0);
    assert_true(find(&seen, "vendor", "http.statuspage.indicator", 1)->value == 2);
    assert_true(find(&seen, "vendor", "http.statuspage.indicator", 2)->value == 0);
    assert_true(find(&seen, "vendor", "http.statuspage.maintenance", 0)->value == 0);
    assert_true(find(&seen, "vendor", "http.statuspage.maintenance", 1)->value == 1);
    assert_true(find(&seen, "vendor", "http.statuspage.maintenance", 2)->value == 1);
    assert_string_equal(find(&seen, "vendor", "http.statuspage.indicator", 0)->first_label,
                        "target");

#define COMPONENT(name, nth)                                                                       \
    find_labelled(&seen, "vendor", "http.statuspage.component", "component", name, nth)
    assert_true(COMPONENT("API", 0)->value == 0); /* the first of two entries named API */
    assert_true(COMPONENT("Web", 0)->value == 2);
    assert_true(COMPONENT("Search", 0)->value == 1);
    assert_true(COMPONENT("Billing", 0)->value == 3);
    assert_true(COMPONENT("Old", 0)->value == 0);
    assert_null(COMPONENT("Odd", 0));
    /* Next cycle: Web left the page and is ended with 0, the others are back to 0. */
    assert_true(COMPONENT("Web", 1)->value == 0);
    assert_null(COMPONENT("Web", 2));
    assert_true(COMPONENT("Billing", 1)->value == 0);
    assert_int_equal(count(&seen, "vendor", "http.statuspage.component"), 5 + 5);
#undef COMPONENT

    const struct seen_sample *html =
        find_labelled(&seen, "vendor", "http.error", "reason", "statuspage: not a JSON object", 0);
    assert_non_null(html);
    assert_true(html->value == 1);

    /* At most 50 components; then each wrong body emits nothing and says why. */
    assert_int_equal(count(&seen, "odd", "http.statuspage.indicator"), 1);
    assert_true(find(&seen, "odd", "http.statuspage.indicator", 0)->value == 1);
    assert_int_equal(count(&seen, "odd", "http.statuspage.component"), 50);
    assert_null(find_labelled(&seen, "odd", "http.statuspage.component", "component", "c50", 0));
    static const char *const reasons[] = {
        "statuspage: body over 1 MiB", "statuspage: unknown status.indicator",
        "statuspage: no status.indicator", "statuspage: components is not a list"};
    for (size_t i = 0; i < 4; i++) {
        const struct seen_sample *e =
            find_labelled(&seen, "odd", "http.error", "reason", reasons[i], 0);
        if (!e)
            fail_msg("no http.error{reason=\"%s\"}", reasons[i]);
        assert_true(e->value == 1);
    }

    /* Without the option the body is not read. */
    assert_true(find(&seen, "plain", "http.up", 0)->value == 1);
    assert_int_equal(count(&seen, "plain", "http.statuspage.indicator"), 0);
    assert_int_equal(count(&seen, "plain", "http.statuspage.component"), 0);
    assert_null(find(&seen, "plain", "http.error", 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_module_is_a_clear_error),
        cmocka_unit_test(test_only_configured_kinds_are_loaded),
        cmocka_unit_test(test_bad_targets_are_refused),
        cmocka_unit_test(test_hanging_target_delays_nobody),
        cmocka_unit_test(test_refused_then_recovered),
        cmocka_unit_test(test_unexpected_status_is_down),
        cmocka_unit_test(test_destroy_while_hanging_is_prompt),
        cmocka_unit_test(test_redis_info),
        cmocka_unit_test(test_redis_refused),
        cmocka_unit_test(test_evidence),
        cmocka_unit_test(test_statuspage),
        cmocka_unit_test(test_kubernetes_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
