/*
 * Redis probe module (vigil-probe-redis.so, hiredis).
 *
 * Signals, each with target=<name> added by the agent:
 *   redis.up [bool]
 *   redis.ping_ms [ms]            PING round trip
 *   redis.hit_rate [percent]      keyspace_hits / (hits + misses) since the last cycle (the
 *                                 server's lifetime on the first cycle); absent without lookups
 *   redis.evicted_keys [keys]     the server's counter
 *   redis.evictions [keys]        evicted since the last cycle (from the second cycle on)
 *   redis.mem_used_bytes, redis.maxmemory_bytes [bytes]
 *   redis.mem_used_pct [percent]  only when maxmemory is set
 *   redis.clients [clients]       connected_clients
 *   redis.error{reason} [bool]    1 when down: refused, timeout, dns, auth, closed, protocol,
 *                                 or hiredis's error text
 * Evidence: INFO all, verbatim (truncated at max_artifact_bytes).
 *
 * hiredis's blocking calls bound each read or write but not a whole cycle, and cannot be
 * interrupted when the agent stops. So the context is non-blocking and every wait is a
 * poll() on its socket and the agent's cancel_fd, against one deadline per cycle. The
 * connection is kept between cycles and dropped on any error. A host name is resolved
 * synchronously by hiredis (getaddrinfo): give an address to keep slow DNS out of the bound.
 * INFO is hostile input: replies are size-bounded, unknown lines are ignored.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "probe.h"
#include "probe_util.h"
#include "timeutil.h"

#define REPLY_MAX (1024 * 1024) /* INFO is a few KiB */
#define HOST_MAX 256

struct redis_probe {
    char host[HOST_MAX];
    int port;
    bool unix_socket;    /* host holds the path */
    char *password_file; /* NULL = none */
    char *password_env;  /* NULL = none */
    int64_t timeout_ms;
    int cancel_fd;
    size_t max_artifact_bytes;
    redisContext *ctx; /* NULL until connected; dropped on any error */

    /* Counters of the previous cycle, for deltas; invalid after a restart of the server. */
    bool have_counters;
    unsigned long long hits, misses, evicted;
};

/* What went wrong, for redis.error{reason} or an evidence error. */
struct failure {
    char reason[64]; /* short: it becomes a label value */
    char text[160];
    bool cancelled;
};

/* Copies at most size - 1 bytes of text that may come from the server: what is not
 * printable ASCII becomes '?', so a label value stays valid UTF-8 however it is cut. */
static void copy_printable(char *dst, size_t size, const char *src)
{
    size_t n = strnlen(src, size - 1);
    for (size_t i = 0; i < n; i++)
        dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? src[i] : '?';
    dst[n] = '\0';
}

static void fail(struct failure *f, const char *reason, const char *text)
{
    copy_printable(f->reason, sizeof(f->reason), reason);
    copy_printable(f->text, sizeof(f->text), text ? text : reason);
}

/* ---- Secrets ----------------------------------------------------------------------------- */

static int get_password(const struct redis_probe *self, char **ret, char *err, size_t errlen)
{
    return probe_password(self->password_file, self->password_env, ret, err, errlen);
}

/* ---- Waiting ----------------------------------------------------------------------------- */

static enum wait_result wait_fd(const struct redis_probe *self, int fd, short events,
                                int64_t deadline)
{
    return probe_wait_fd(fd, events, self->cancel_fd, deadline);
}

static void fail_wait(struct failure *f, enum wait_result w)
{
    if (w == WAIT_CANCELLED) {
        f->cancelled = true;
        fail(f, "cancelled", "the agent is stopping");
    } else if (w == WAIT_TIMEOUT) {
        fail(f, "timeout", "no answer within the timeout");
    } else {
        fail(f, "poll", strerror(errno));
    }
}

/* ---- Connection -------------------------------------------------------------------------- */

static void classify_context_error(const redisContext *c, struct failure *f)
{
    const char *text = c->errstr[0] ? c->errstr : "connection error";
    if (c->err == REDIS_ERR_EOF)
        fail(f, "closed", "the server closed the connection");
    else if (c->err == REDIS_ERR_PROTOCOL)
        fail(f, "protocol", text);
    else if (strcasestr(text, "refused") || strcasestr(text, "No such file"))
        fail(f, "refused", text);
    else if (strcasestr(text, "timed out"))
        fail(f, "timeout", text);
    else if (strcasestr(text, "Name or service") || strcasestr(text, "name resolution") ||
             strcasestr(text, "nodename"))
        fail(f, "dns", text);
    else
        fail(f, text, text);
}

static void disconnect(struct redis_probe *self)
{
    if (self->ctx)
        redisFree(self->ctx);
    self->ctx = NULL;
}

/* Sends what is appended to the context's output buffer. */
static int flush_output(struct redis_probe *self, int64_t deadline, struct failure *f)
{
    int done = 0;
    while (!done) {
        if (redisBufferWrite(self->ctx, &done) != REDIS_OK) {
            classify_context_error(self->ctx, f);
            return -EIO;
        }
        if (!done) {
            enum wait_result w = wait_fd(self, self->ctx->fd, POLLOUT, deadline);
            if (w != WAIT_READY) {
                fail_wait(f, w);
                return -ETIMEDOUT;
            }
        }
    }
    return 0;
}

/* The next reply, at most `limit` bytes of it buffered. */
static int read_reply(struct redis_probe *self, int64_t deadline, size_t limit, redisReply **ret,
                      struct failure *f)
{
    for (;;) {
        void *reply = NULL;
        if (redisGetReplyFromReader(self->ctx, &reply) != REDIS_OK) {
            classify_context_error(self->ctx, f);
            return -EPROTO;
        }
        if (reply) {
            *ret = reply;
            return 0;
        }
        if (self->ctx->reader->len > limit) {
            fail(f, "protocol", "reply larger than expected");
            return -E2BIG;
        }
        enum wait_result w = wait_fd(self, self->ctx->fd, POLLIN, deadline);
        if (w != WAIT_READY) {
            fail_wait(f, w);
            return -ETIMEDOUT;
        }
        if (redisBufferRead(self->ctx) != REDIS_OK) {
            classify_context_error(self->ctx, f);
            return -EIO;
        }
    }
}

/* One command and its reply; an error reply is a failure with the server's text. */
static int command(struct redis_probe *self, int64_t deadline, size_t limit, redisReply **ret,
                   struct failure *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = redisvAppendCommand(self->ctx, fmt, ap);
    va_end(ap);
    if (rc != REDIS_OK) {
        fail(f, "out of memory", NULL);
        return -ENOMEM;
    }
    redisReply *reply = NULL;
    int r = flush_output(self, deadline, f);
    if (r == 0)
        r = read_reply(self, deadline, limit, &reply, f);
    if (r < 0)
        return r;
    if (!reply)
        return -EIO;
    if (reply->type == REDIS_REPLY_ERROR) {
        const char *text = reply->str ? reply->str : "error";
        bool auth = strncmp(text, "NOAUTH", 6) == 0 || strncmp(text, "WRONGPASS", 9) == 0 ||
                    strcasestr(text, "invalid password") || strcasestr(text, "invalid username");
        fail(f, auth ? "auth" : "error reply", text);
        freeReplyObject(reply);
        return -EPROTO;
    }
    *ret = reply;
    return 0;
}

static int connect_and_auth(struct redis_probe *self, int64_t deadline, struct failure *f)
{
    char err[256];
    char *password = NULL;
    int soerr = 0;
    socklen_t len = sizeof(soerr);

    if (self->ctx)
        return 0;
    if (get_password(self, &password, err, sizeof(err)) < 0) {
        fail(f, "password", err);
        return -EINVAL;
    }
    self->ctx = self->unix_socket ? redisConnectUnixNonBlock(self->host)
                                  : redisConnectNonBlock(self->host, self->port);
    if (!self->ctx) {
        fail(f, "out of memory", NULL);
        goto err_free;
    }
    if (self->ctx->err) {
        classify_context_error(self->ctx, f);
        goto err_free;
    }
    /* The connect may still be in progress: wait for it and read its outcome. */
    enum wait_result w = wait_fd(self, self->ctx->fd, POLLOUT, deadline);
    if (w != WAIT_READY) {
        fail_wait(f, w);
        goto err_free;
    }
    if (getsockopt(self->ctx->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        soerr = errno;
    if (soerr != 0) {
        fail(f,
             soerr == ECONNREFUSED || soerr == ENOENT ? "refused"
             : soerr == ETIMEDOUT                     ? "timeout"
                                                      : strerror(soerr),
             strerror(soerr));
        goto err_free;
    }
    if (password) {
        redisReply *reply = NULL;
        if (command(self, deadline, 4096, &reply, f, "AUTH %s", password) < 0) {
            if (strcmp(f->reason, "error reply") == 0)
                snprintf(f->reason, sizeof(f->reason), "auth");
            goto err_free;
        }
        freeReplyObject(reply);
    }
    probe_password_free(password);
    return 0;

err_free:
    probe_password_free(password);
    disconnect(self);
    return -ECONNREFUSED;
}

/* ---- INFO -------------------------------------------------------------------------------- */

struct info {
    bool has_hits, has_misses, has_evicted, has_used, has_max, has_clients;
    unsigned long long hits, misses, evicted, used, maxmemory, clients;
};

static bool parse_u64(const char *s, size_t len, unsigned long long *ret)
{
    unsigned long long v = 0;
    if (len == 0 || len > 20)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned digit = (unsigned)(s[i] - '0');
        if (v > (ULLONG_MAX - digit) / 10)
            return false;
        v = v * 10 + digit;
    }
    *ret = v;
    return true;
}

/* "key:value\r\n" lines and "# Section" headers; anything else is skipped. */
static void parse_info(const char *text, size_t len, struct info *info)
{
    static const struct {
        const char *key;
        size_t has_offset, value_offset;
    } fields[] = {
        {"keyspace_hits", offsetof(struct info, has_hits), offsetof(struct info, hits)},
        {"keyspace_misses", offsetof(struct info, has_misses), offsetof(struct info, misses)},
        {"evicted_keys", offsetof(struct info, has_evicted), offsetof(struct info, evicted)},
        {"used_memory", offsetof(struct info, has_used), offsetof(struct info, used)},
        {"maxmemory", offsetof(struct info, has_max), offsetof(struct info, maxmemory)},
        {"connected_clients", offsetof(struct info, has_clients), offsetof(struct info, clients)},
    };
    const char *end = text + len;

    *info = (struct info){0};
    for (const char *line = text; line < end;) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        const char *next = eol ? eol + 1 : end;
        if (!eol)
            eol = end;
        if (eol > line && eol[-1] == '\r')
            eol--;
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (colon && line[0] != '#') {
            size_t key_len = (size_t)(colon - line);
            for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
                if (strlen(fields[i].key) != key_len || memcmp(fields[i].key, line, key_len) != 0)
                    continue;
                unsigned long long v;
                if (parse_u64(colon + 1, (size_t)(eol - colon - 1), &v)) {
                    *(bool *)((char *)info + fields[i].has_offset) = true;
                    *(unsigned long long *)((char *)info + fields[i].value_offset) = v;
                }
                break;
            }
        }
        line = next;
    }
}

/* ---- Module functions -------------------------------------------------------------------- */

static int parse_address(struct redis_probe *self, const char *address, char *err, size_t errlen)
{
    if (address[0] == '/') {
        if (strlen(address) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
            snprintf(err, errlen, "address \"%s\": socket path too long", address);
            return -ENAMETOOLONG;
        }
        snprintf(self->host, sizeof(self->host), "%s", address);
        self->unix_socket = true;
        return 0;
    }
    const char *host = address, *port = NULL;
    size_t host_len;
    if (address[0] == '[') { /* [v6]:port */
        const char *close_bracket = strchr(address, ']');
        if (!close_bracket || (close_bracket[1] != ':' && close_bracket[1] != '\0')) {
            snprintf(err, errlen, "address \"%s\": expected [address]:port", address);
            return -EINVAL;
        }
        host = address + 1;
        host_len = (size_t)(close_bracket - host);
        port = close_bracket[1] == ':' ? close_bracket + 2 : NULL;
    } else {
        const char *colon = strrchr(address, ':');
        if (colon && strchr(address, ':') != colon) {
            snprintf(err, errlen, "address \"%s\": write IPv6 addresses as [address]:port",
                     address);
            return -EINVAL;
        }
        host_len = colon ? (size_t)(colon - address) : strlen(address);
        port = colon ? colon + 1 : NULL;
    }
    unsigned long long port_num = 6379;
    if (port && !parse_u64(port, strlen(port), &port_num))
        port_num = 0;
    if (host_len == 0 || host_len >= sizeof(self->host) || port_num < 1 || port_num > 65535) {
        snprintf(err, errlen, "address \"%s\": expected host:port or a socket path", address);
        return -EINVAL;
    }
    memcpy(self->host, host, host_len);
    self->host[host_len] = '\0';
    self->port = (int)port_num;
    return 0;
}

static void redis_close(void *state)
{
    struct redis_probe *self = state;
    if (!self)
        return;
    disconnect(self);
    free(self->password_file);
    free(self->password_env);
    free(self);
}

static void *redis_open(const struct probe_target_config *target, const struct probe_options *opt,
                        char *err, size_t errlen)
{
    struct redis_probe *self = calloc(1, sizeof(*self));

    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->timeout_ms = opt->timeout_ms;
    self->cancel_fd = opt->cancel_fd;
    self->max_artifact_bytes = opt->max_artifact_bytes;
    if (parse_address(self, target->address, err, errlen) < 0)
        goto err_close;
    if (probe_password_setup(target, &self->password_file, &self->password_env, err, errlen) < 0)
        goto err_close;
    return self;

err_close:
    redis_close(self);
    return NULL;
}

static void emit(const struct probe_sink *sink, const char *name, double value, const char *unit)
{
    sink->emit(sink->sink, name, value, unit, NULL, 0);
}

static void emit_info(struct redis_probe *self, const struct info *info,
                      const struct probe_sink *sink)
{
    if (info->has_hits && info->has_misses) {
        unsigned long long hits = info->hits, misses = info->misses;
        if (self->have_counters && hits >= self->hits && misses >= self->misses) {
            hits -= self->hits;
            misses -= self->misses;
        }
        if (hits + misses > 0)
            emit(sink, "redis.hit_rate", 100.0 * (double)hits / (double)(hits + misses), "percent");
    }
    if (info->has_evicted) {
        emit(sink, "redis.evicted_keys", (double)info->evicted, "keys");
        if (self->have_counters && info->evicted >= self->evicted)
            emit(sink, "redis.evictions", (double)(info->evicted - self->evicted), "keys");
    }
    if (info->has_used)
        emit(sink, "redis.mem_used_bytes", (double)info->used, "bytes");
    if (info->has_max)
        emit(sink, "redis.maxmemory_bytes", (double)info->maxmemory, "bytes");
    if (info->has_used && info->has_max && info->maxmemory > 0)
        emit(sink, "redis.mem_used_pct", 100.0 * (double)info->used / (double)info->maxmemory,
             "percent");
    if (info->has_clients)
        emit(sink, "redis.clients", (double)info->clients, "clients");

    /* A counter that went down means the server restarted: this cycle is the new baseline. */
    self->have_counters = info->has_hits && info->has_misses && info->has_evicted;
    self->hits = info->hits;
    self->misses = info->misses;
    self->evicted = info->evicted;
}

static void redis_run(void *state, const struct probe_sink *sink)
{
    struct redis_probe *self = state;
    struct failure f = {0};
    int64_t deadline = vg_mono_ms() + self->timeout_ms;
    redisReply *reply = NULL;
    struct info info;

    if (connect_and_auth(self, deadline, &f) < 0)
        goto down;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (command(self, deadline, 4096, &reply, &f, "PING") < 0)
        goto down_disconnect;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    freeReplyObject(reply);
    reply = NULL;
    double ping_ms =
        (double)(t1.tv_sec - t0.tv_sec) * 1000.0 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;

    if (command(self, deadline, REPLY_MAX, &reply, &f, "INFO") < 0)
        goto down_disconnect;
    emit(sink, "redis.up", 1, "bool");
    emit(sink, "redis.ping_ms", ping_ms, "ms");
    if (reply->type == REDIS_REPLY_STRING && reply->str) {
        parse_info(reply->str, reply->len, &info);
        emit_info(self, &info, sink);
    }
    freeReplyObject(reply);
    return;

down_disconnect:
    disconnect(self);
down:
    if (f.cancelled)
        return;
    self->have_counters = false;
    emit(sink, "redis.up", 0, "bool");
    struct probe_label label = {"reason", f.reason[0] ? f.reason : "error"};
    sink->emit(sink->sink, "redis.error", 1, "bool", &label, 1);
}

static int redis_evidence(void *state, const struct artifact_writer *out, char *err, size_t errlen)
{
    struct redis_probe *self = state;
    struct failure f = {0};
    int64_t deadline = vg_mono_ms() + self->timeout_ms;
    redisReply *reply = NULL;
    size_t limit = self->max_artifact_bytes > REPLY_MAX ? self->max_artifact_bytes : REPLY_MAX;
    int r;

    if (connect_and_auth(self, deadline, &f) < 0 ||
        command(self, deadline, limit + 64 * 1024, &reply, &f, "INFO all") < 0) {
        snprintf(err, errlen, "%s", f.text);
        disconnect(self);
        if (f.cancelled)
            return -ECANCELED;
        return strcmp(f.reason, "timeout") == 0 ? -ETIMEDOUT : -EIO;
    }
    if (reply->type != REDIS_REPLY_STRING || !reply->str) {
        snprintf(err, errlen, "INFO all did not answer with text");
        freeReplyObject(reply);
        return -EPROTO;
    }
    size_t len = reply->len;
    bool truncated = len > self->max_artifact_bytes;
    if (truncated)
        len = self->max_artifact_bytes;
    r = out->write(out->w, reply->str, len);
    if (r == 0 && truncated) {
        char note[96];
        int n =
            snprintf(note, sizeof(note), "\n[truncated at %zu of %zu bytes]\n", len, reply->len);
        r = out->write(out->w, note, (size_t)n);
    }
    freeReplyObject(reply);
    if (r < 0)
        snprintf(err, errlen, "cannot write the artifact: %s", strerror(-r));
    return r;
}

__attribute__((visibility("default"))) const struct probe_module vigil_probe_module = {
    .abi = PROBE_ABI_VERSION,
    .kind = "redis",
    .open = redis_open,
    .run = redis_run,
    .evidence = redis_evidence,
    .close = redis_close,
};
