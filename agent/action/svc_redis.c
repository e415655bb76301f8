/*
 * The redis service actions of vigil-agent-action (hiredis; the request is in svc.h).
 *
 * Ops (key "op"):
 *   flushall   FLUSHALL. The account lists the keys of each nonempty database before
 *              (INFO keyspace) and after.
 *   flushdb    SELECT arg.db, DBSIZE, FLUSHDB, DBSIZE.
 * With target.password_file, AUTH comes first.
 *
 * Bounds: one deadline, timeout_ms after the start, for everything: the connect is bounded by
 * the time left (redisConnectWithTimeout), and so is every command (redisSetTimeout before
 * each). On the deadline the outcome of a flush is unknown (the server may still finish it),
 * and the error says so. A host name is resolved synchronously by hiredis (getaddrinfo): give
 * an address to keep slow DNS out of the bound.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <hiredis/hiredis.h>

#include "../probe/probe_util.h"
#include "config.h"
#include "svc.h"
#include "timeutil.h"

#define HOST_MAX 256
#define DB_MAX 1000000 /* far above any server's "databases"; the server has the last word */

struct redis_action {
    const struct svc_request *req;
    FILE *out;
    char *err;
    size_t errlen;
    redisContext *ctx; /* NULL until connected */
    int64_t deadline;  /* vg_mono_ms */
    int64_t timeout_ms;
};

/* ---- Errors ------------------------------------------------------------------------------ */

/* Copies text from the server as one line: control characters become spaces. */
static void one_line(char *dst, size_t size, const char *src)
{
    size_t n = 0;
    for (const char *p = src ? src : ""; *p && n + 1 < size; p++) {
        unsigned char c = (unsigned char)*p;
        dst[n++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
    }
    while (n > 0 && dst[n - 1] == ' ')
        n--;
    dst[n] = '\0';
}

static int fail(struct redis_action *a, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct redis_action *a, int code, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    one_line(a->err, a->errlen, text);
    return code;
}

static const char *need(struct redis_action *a, const char *key)
{
    const char *value = svc_get(a->req, key);
    if (!value)
        fail(a, SVC_EXIT_BAD_REQUEST, "the request has no %s", key);
    return value;
}

/* ---- Connection and commands ------------------------------------------------------------- */

static void disconnect(struct redis_action *a)
{
    if (a->ctx)
        redisFree(a->ctx);
    a->ctx = NULL;
}

/* The time left as a timeval; false once the deadline has passed. */
static bool time_left(const struct redis_action *a, struct timeval *ret)
{
    int64_t left = a->deadline - vg_mono_ms();
    if (left <= 0)
        return false;
    ret->tv_sec = (time_t)(left / 1000);
    ret->tv_usec = (suseconds_t)((left % 1000) * 1000);
    return true;
}

static bool is_timeout(const redisContext *c)
{
    return c->err == REDIS_ERR_IO &&
           (strcasestr(c->errstr, "temporarily unavailable") || strcasestr(c->errstr, "timed out"));
}

static int fail_context(struct redis_action *a, const char *what)
{
    int code;
    if (is_timeout(a->ctx))
        code = fail(a, SVC_EXIT_UNREACHABLE, "no answer within %" PRId64 " ms (%s)", a->timeout_ms,
                    what);
    else if (a->ctx->err == REDIS_ERR_EOF)
        code = fail(a, SVC_EXIT_UNREACHABLE, "the server closed the connection (%s)", what);
    else
        code = fail(a, SVC_EXIT_UNREACHABLE, "%s: %s", what,
                    a->ctx->errstr[0] ? a->ctx->errstr : "connection error");
    disconnect(a);
    return code;
}

/* One command and its reply (the caller frees it). An error reply is SVC_EXIT_FAILED with the
 * server's text, prefixed "auth:" when it is about authentication. */
static int command(struct redis_action *a, redisReply **ret, const char *what, const char *fmt, ...)
{
    struct timeval tv;
    va_list ap;

    *ret = NULL;
    if (!time_left(a, &tv)) {
        disconnect(a);
        return fail(a, SVC_EXIT_UNREACHABLE, "no answer within %" PRId64 " ms (before %s)",
                    a->timeout_ms, what);
    }
    if (redisSetTimeout(a->ctx, tv) != REDIS_OK)
        return fail_context(a, what);
    va_start(ap, fmt);
    redisReply *reply = redisvCommand(a->ctx, fmt, ap);
    va_end(ap);
    if (!reply)
        return fail_context(a, what);
    if (reply->type == REDIS_REPLY_ERROR) {
        const char *text = reply->str ? reply->str : "error";
        bool auth = strncmp(text, "NOAUTH", 6) == 0 || strncmp(text, "WRONGPASS", 9) == 0 ||
                    strcasestr(text, "invalid password") || strcasestr(text, "invalid username");
        int code = fail(a, SVC_EXIT_FAILED, "%s%s refused: %s", auth ? "auth: " : "", what, text);
        freeReplyObject(reply);
        return code;
    }
    *ret = reply;
    return SVC_EXIT_OK;
}

/* host:port, [v6]:port, host (port 6379), or a unix socket path. */
static int parse_address(struct redis_action *a, const char *address, char *host, int *port,
                         bool *unix_socket)
{
    *unix_socket = address[0] == '/';
    if (*unix_socket) {
        if (strlen(address) >= sizeof(((struct sockaddr_un *)0)->sun_path))
            return fail(a, SVC_EXIT_BAD_REQUEST, "target.address \"%s\": socket path too long",
                        address);
        snprintf(host, HOST_MAX, "%s", address);
        return SVC_EXIT_OK;
    }
    const char *start = address, *port_text = NULL;
    size_t host_len;
    if (address[0] == '[') {
        const char *close_bracket = strchr(address, ']');
        if (!close_bracket || (close_bracket[1] != ':' && close_bracket[1] != '\0'))
            return fail(a, SVC_EXIT_BAD_REQUEST, "target.address \"%s\": expected [address]:port",
                        address);
        start = address + 1;
        host_len = (size_t)(close_bracket - start);
        port_text = close_bracket[1] == ':' ? close_bracket + 2 : NULL;
    } else {
        const char *colon = strrchr(address, ':');
        if (colon && strchr(address, ':') != colon)
            return fail(a, SVC_EXIT_BAD_REQUEST,
                        "target.address \"%s\": write IPv6 addresses as [address]:port", address);
        host_len = colon ? (size_t)(colon - address) : strlen(address);
        port_text = colon ? colon + 1 : NULL;
    }
    int64_t port_num = 6379;
    if (port_text && vg_parse_int(port_text, &port_num) < 0)
        port_num = 0;
    if (host_len == 0 || host_len >= HOST_MAX || port_num < 1 || port_num > 65535 ||
        (port_text && (port_text[0] < '0' || port_text[0] > '9')))
        return fail(a, SVC_EXIT_BAD_REQUEST,
                    "target.address \"%s\": expected host:port or a socket path", address);
    memcpy(host, start, host_len);
    host[host_len] = '\0';
    *port = (int)port_num;
    return SVC_EXIT_OK;
}

static int redis_connect(struct redis_action *a)
{
    char host[HOST_MAX], err[512];
    char *password = NULL;
    int port = 0;
    bool unix_socket;
    struct timeval tv;
    const char *address = need(a, "target.address");

    if (!address)
        return SVC_EXIT_BAD_REQUEST;
    int code = parse_address(a, address, host, &port, &unix_socket);
    if (code != SVC_EXIT_OK)
        return code;
    if (probe_password(svc_get(a->req, "target.password_file"), NULL, &password, err, sizeof(err)) <
        0)
        return fail(a, SVC_EXIT_FAILED, "%s", err);
    if (!time_left(a, &tv)) {
        probe_password_free(password);
        return fail(a, SVC_EXIT_UNREACHABLE, "no time left to connect");
    }
    a->ctx = unix_socket ? redisConnectUnixWithTimeout(host, tv)
                         : redisConnectWithTimeout(host, port, tv);
    if (!a->ctx) {
        probe_password_free(password);
        return fail(a, SVC_EXIT_FAILED, "out of memory");
    }
    if (a->ctx->err) {
        probe_password_free(password);
        return fail_context(a, "cannot connect");
    }
    if (password) {
        redisReply *reply;
        code = command(a, &reply, "AUTH", "AUTH %s", password);
        probe_password_free(password);
        if (code == SVC_EXIT_FAILED && strncmp(a->err, "auth: ", 6) != 0) {
            char reason[512];
            snprintf(reason, sizeof(reason), "%s", a->err);
            fail(a, code, "auth: %s", reason);
        }
        freeReplyObject(reply);
        return code;
    }
    return SVC_EXIT_OK;
}

/* ---- Keyspace ---------------------------------------------------------------------------- */

/* Writes "PREFIX dbN K keys" for each database INFO keyspace lists; "PREFIX no keys in any
 * database" when it lists none. */
static int put_keyspace(struct redis_action *a, const char *prefix)
{
    redisReply *reply;
    int code = command(a, &reply, "INFO keyspace", "INFO keyspace");
    if (code != SVC_EXIT_OK)
        return code;
    if (reply->type != REDIS_REPLY_STRING && reply->type != REDIS_REPLY_STATUS) {
        freeReplyObject(reply);
        return fail(a, SVC_EXIT_FAILED, "unexpected answer to INFO keyspace");
    }
    int listed = 0;
    const char *end = reply->str + reply->len;
    for (const char *line = reply->str; line < end;) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        const char *next = eol ? eol + 1 : end;
        unsigned db;
        unsigned long long keys;
        /* "db3:keys=12,expires=0,avg_ttl=0" */
        if (strncmp(line, "db", 2) == 0 && sscanf(line, "db%u:keys=%llu", &db, &keys) == 2) {
            fprintf(a->out, "%s db%u %llu %s\n", prefix, db, keys, keys == 1 ? "key" : "keys");
            listed++;
        }
        line = next;
    }
    freeReplyObject(reply);
    if (!listed)
        fprintf(a->out, "%s no keys in any database\n", prefix);
    return SVC_EXIT_OK;
}

static int dbsize(struct redis_action *a, long long *ret)
{
    redisReply *reply;
    int code = command(a, &reply, "DBSIZE", "DBSIZE");
    if (code != SVC_EXIT_OK)
        return code;
    bool integer = reply->type == REDIS_REPLY_INTEGER;
    *ret = integer ? reply->integer : 0;
    freeReplyObject(reply);
    return integer ? SVC_EXIT_OK : fail(a, SVC_EXIT_FAILED, "unexpected answer to DBSIZE");
}

/* ---- Ops --------------------------------------------------------------------------------- */

static int op_flushall(struct redis_action *a)
{
    redisReply *reply;
    int code = redis_connect(a);
    if (code != SVC_EXIT_OK)
        return code;
    code = put_keyspace(a, "before:");
    if (code != SVC_EXIT_OK)
        return code;
    fprintf(a->out, "FLUSHALL\n");
    code = command(a, &reply, "FLUSHALL", "FLUSHALL");
    if (code != SVC_EXIT_OK)
        return code;
    freeReplyObject(reply);
    fprintf(a->out, "flushed all databases\n");
    return put_keyspace(a, "after:");
}

static int op_flushdb(struct redis_action *a)
{
    redisReply *reply;
    int64_t db;
    long long before, after;
    const char *db_text = need(a, "arg.db");

    if (!db_text)
        return SVC_EXIT_BAD_REQUEST;
    if (vg_parse_int(db_text, &db) < 0 || db < 0 || db > DB_MAX)
        return fail(a, SVC_EXIT_BAD_REQUEST, "arg.db: expected a database number, got \"%s\"",
                    db_text);
    int code = redis_connect(a);
    if (code != SVC_EXIT_OK)
        return code;
    code = command(a, &reply, "SELECT", "SELECT %" PRId64, db);
    if (code != SVC_EXIT_OK)
        return code;
    freeReplyObject(reply);
    if ((code = dbsize(a, &before)) != SVC_EXIT_OK)
        return code;
    fprintf(a->out, "before: db%" PRId64 " %lld %s\n", db, before, before == 1 ? "key" : "keys");
    fprintf(a->out, "FLUSHDB\n");
    code = command(a, &reply, "FLUSHDB", "FLUSHDB");
    if (code != SVC_EXIT_OK)
        return code;
    freeReplyObject(reply);
    fprintf(a->out, "flushed db%" PRId64 "\n", db);
    if ((code = dbsize(a, &after)) != SVC_EXIT_OK)
        return code;
    fprintf(a->out, "after: db%" PRId64 " %lld %s\n", db, after, after == 1 ? "key" : "keys");
    return SVC_EXIT_OK;
}

/* ---- Dispatch ---------------------------------------------------------------------------- */

static const struct {
    const char *name;
    int (*run)(struct redis_action *a);
} OPS[] = {
    {"flushall", op_flushall},
    {"flushdb", op_flushdb},
};

int svc_redis_run(const struct svc_request *r, FILE *out, char *err, size_t errlen)
{
    struct redis_action a = {.req = r, .out = out, .err = err, .errlen = errlen};
    const char *op = need(&a, "op");

    if (!op)
        return SVC_EXIT_BAD_REQUEST;
    int code = svc_timeout_ms(r, &a.timeout_ms, err, errlen);
    if (code != SVC_EXIT_OK)
        return code;
    a.deadline = vg_mono_ms() + a.timeout_ms;
    for (size_t i = 0; i < sizeof(OPS) / sizeof(OPS[0]); i++) {
        if (strcmp(op, OPS[i].name) != 0)
            continue;
        fprintf(out, "redis target %s\n", svc_get_or(r, "target.name", "?"));
        code = OPS[i].run(&a);
        disconnect(&a);
        return code;
    }
    return fail(&a, SVC_EXIT_BAD_REQUEST, "unknown op %s", op);
}
