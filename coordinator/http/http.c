/*
 * The coordinator's HTTP endpoints: /healthz, /metrics and the Alertmanager webhook
 * (POST /api/v1/alerts), served by libmicrohttpd from its own polling thread — one thread, so
 * requests are handled one at a time and the webhook's store connection is only ever used by it.
 *
 * At most HTTP_CONNECTION_LIMIT connections at once, and at most max_per_client of them from one
 * address (MHD_OPTION_PER_IP_CONNECTION_LIMIT; more are closed as soon as they are accepted), so
 * one slow or hostile client cannot hold every slot and starve the /healthz of a probe coming
 * from elsewhere. Idle connections are closed after HTTP_CONNECTION_TIMEOUT_S.
 *
 * The listening socket is opened here rather than by libmicrohttpd so that a failure to bind
 * reports the real errno ("cannot listen on 127.0.0.1:7480: Address already in use"); it is
 * then handed over with MHD_OPTION_LISTEN_SOCKET and libmicrohttpd closes it when stopped.
 */
#include "http.h"

#include "alertmanager.h"
#include "log.h"
#include "metrics.h"
#include "timeutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define HTTP_CONNECTION_TIMEOUT_S 10u
#define HTTP_LISTEN_BACKLOG 64
/* libmicrohttpd logs every connection it closes over a limit: a client opening connections in a
 * loop would flood the log. At most this many of its messages per window; the rest are counted,
 * and the count is logged with the first message of a later window. */
#define MHD_LOG_BURST 20
#define MHD_LOG_WINDOW_MS 60000

#define CONTENT_TYPE_TEXT "text/plain; charset=utf-8"
#define CONTENT_TYPE_METRICS "text/plain; version=0.0.4; charset=utf-8"

#define ALERTS_PATH "/api/v1/alerts"

struct http_server {
    struct MHD_Daemon *daemon;
    /* Set once by the main thread after start (the store opens after the HTTP port), read by
     * the HTTP thread; owned here and destroyed after the daemon stopped. */
    _Atomic(alertmanager_t *) alertmanager;
};

/* A webhook body being received, between libmicrohttpd's calls for one request. */
struct upload {
    char *data;
    size_t len, cap;
};

static pthread_mutex_t mhd_log_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t mhd_log_window_start; /* vg_mono_ms; under mhd_log_lock */
static unsigned mhd_log_count, mhd_log_suppressed;

/* Whether this message may be logged now (MHD_LOG_BURST per window); says how many were not. */
static bool mhd_log_allowed(void)
{
    int64_t now = vg_mono_ms();
    unsigned suppressed = 0;
    pthread_mutex_lock(&mhd_log_lock);
    if (mhd_log_count == 0 || now - mhd_log_window_start >= MHD_LOG_WINDOW_MS) {
        suppressed = mhd_log_suppressed;
        mhd_log_window_start = now;
        mhd_log_count = 0;
        mhd_log_suppressed = 0;
    }
    bool allowed = mhd_log_count < MHD_LOG_BURST;
    if (allowed)
        mhd_log_count++;
    else
        mhd_log_suppressed++;
    pthread_mutex_unlock(&mhd_log_lock);
    if (suppressed)
        vg_log(VG_LOG_WARN, "http: libmicrohttpd: %u more messages not logged in the last %d s",
               suppressed, MHD_LOG_WINDOW_MS / 1000);
    return allowed;
}

/* libmicrohttpd's own error messages, into the one logger, at most MHD_LOG_BURST a window. */
__attribute__((format(printf, 2, 0))) static void log_mhd(void *cls, const char *fmt, va_list ap)
{
    char message[512];

    (void)cls;
    if (!mhd_log_allowed())
        return;
    vsnprintf(message, sizeof(message), fmt, ap);
    size_t len = strlen(message);
    while (len > 0 && (message[len - 1] == '\n' || message[len - 1] == '\r'))
        message[--len] = '\0';
    vg_log(VG_LOG_WARN, "http: libmicrohttpd: %s", message);
}

/*
 * Queues a response; body is static text unless mode is MHD_RESPMEM_MUST_FREE or _MUST_COPY.
 * header/value (may be NULL) is one extra header, such as Allow for a 405.
 */
static enum MHD_Result respond_with(struct MHD_Connection *connection, unsigned int status,
                                    const char *content_type, char *body, size_t len,
                                    enum MHD_ResponseMemoryMode mode, const char *header,
                                    const char *value)
{
    struct MHD_Response *response = MHD_create_response_from_buffer(len, body, mode);
    if (response == NULL) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    if (MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) != MHD_YES ||
        (header != NULL && MHD_add_response_header(response, header, value) != MHD_YES)) {
        MHD_destroy_response(response);
        return MHD_NO;
    }
    enum MHD_Result queued = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return queued;
}

static enum MHD_Result respond(struct MHD_Connection *connection, unsigned int status,
                               const char *content_type, char *body, size_t len,
                               enum MHD_ResponseMemoryMode mode)
{
    return respond_with(connection, status, content_type, body, len, mode, NULL, NULL);
}

static enum MHD_Result respond_text(struct MHD_Connection *connection, unsigned int status,
                                    const char *text)
{
    return respond(connection, status, CONTENT_TYPE_TEXT, (char *)text, strlen(text),
                   MHD_RESPMEM_PERSISTENT);
}

static enum MHD_Result serve_metrics(struct MHD_Connection *connection)
{
    char *text;
    size_t len;

    int r = metrics_render(&text, &len);
    if (r < 0) {
        vg_log(VG_LOG_WARN, "http: cannot render metrics: %s", strerror(-r));
        return respond_text(connection, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot render metrics\n");
    }
    return respond(connection, MHD_HTTP_OK, CONTENT_TYPE_METRICS, text, len, MHD_RESPMEM_MUST_FREE);
}

/*
 * POST /api/v1/alerts. Method, token and a declared Content-Length are checked on the first
 * call, before any body is read (a response queued then makes libmicrohttpd discard the body
 * and close the connection). The body is then collected up to alertmanager.max_body; a chunked
 * body that grows past it closes the connection. The last call (no more data) handles it.
 */
static enum MHD_Result handle_alerts(alertmanager_t *am, struct MHD_Connection *connection,
                                     const char *method, const char *upload_data,
                                     size_t *upload_data_size, void **request_state)
{
    struct upload *upload = *request_state;
    size_t max_body = alertmanager_max_body(am);

    if (upload == NULL) {
        if (strcmp(method, MHD_HTTP_METHOD_POST) != 0) {
            alertmanager_refused(AM_REFUSE_METHOD, method);
            const char *text = "method not allowed: POST only\n";
            return respond_with(connection, MHD_HTTP_METHOD_NOT_ALLOWED, CONTENT_TYPE_TEXT,
                                (char *)text, strlen(text), MHD_RESPMEM_PERSISTENT,
                                MHD_HTTP_HEADER_ALLOW, "POST");
        }
        const char *authorization =
            MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
        if (!alertmanager_authorized(am, authorization)) {
            alertmanager_refused(AM_REFUSE_UNAUTHORIZED,
                                 authorization ? "wrong bearer token" : "no bearer token");
            const char *text = "unauthorized: a bearer token is required\n";
            return respond_with(connection, MHD_HTTP_UNAUTHORIZED, CONTENT_TYPE_TEXT, (char *)text,
                                strlen(text), MHD_RESPMEM_PERSISTENT,
                                MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
        }
        const char *declared = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
                                                           MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (declared != NULL && strtoull(declared, NULL, 10) > max_body) {
            char detail[96];
            snprintf(detail, sizeof(detail), "Content-Length %.24s over the limit of %zu bytes",
                     declared, max_body);
            alertmanager_refused(AM_REFUSE_TOO_LARGE, detail);
            return respond_text(connection, MHD_HTTP_CONTENT_TOO_LARGE, "body too large\n");
        }
        upload = calloc(1, sizeof(*upload));
        if (upload == NULL)
            return MHD_NO;
        *request_state = upload;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (*upload_data_size > max_body - upload->len) {
            alertmanager_refused(AM_REFUSE_TOO_LARGE, "chunked body over the limit");
            return MHD_NO;
        }
        if (upload->len + *upload_data_size > upload->cap) {
            /* Doubling from 16 KiB: a small notification does not reserve max_body. */
            size_t cap = upload->cap ? upload->cap : 16384;
            while (cap < upload->len + *upload_data_size)
                cap *= 2;
            if (cap > max_body)
                cap = max_body;
            char *grown = realloc(upload->data, cap);
            if (grown == NULL)
                return MHD_NO;
            upload->data = grown;
            upload->cap = cap;
        }
        memcpy(upload->data + upload->len, upload_data, *upload_data_size);
        upload->len += *upload_data_size;
        *upload_data_size = 0;
        return MHD_YES;
    }
    char reply[512];
    unsigned status = alertmanager_handle(am, upload->data ? upload->data : "", upload->len, reply,
                                          sizeof(reply));
    return respond(connection, status, CONTENT_TYPE_TEXT, reply, strlen(reply),
                   MHD_RESPMEM_MUST_COPY);
}

static void request_completed(void *cls, struct MHD_Connection *connection, void **request_state,
                              enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)connection;
    (void)toe;
    struct upload *upload = *request_state;
    if (upload != NULL) {
        free(upload->data);
        free(upload);
        *request_state = NULL;
    }
}

/*
 * /healthz and /metrics answer on the first call, as soon as the headers are in: they take no
 * body, and a response queued before the body is read makes libmicrohttpd discard the body and
 * close the connection, so a client cannot hold a connection open by streaming one.
 */
static enum MHD_Result handle_request(void *cls, struct MHD_Connection *connection, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **request_state)
{
    http_server_t *self = cls;
    (void)version;

    if (strcmp(url, ALERTS_PATH) == 0) {
        alertmanager_t *am = atomic_load_explicit(&self->alertmanager, memory_order_acquire);
        if (am != NULL)
            return handle_alerts(am, connection, method, upload_data, upload_data_size,
                                 request_state);
        return respond_text(connection, MHD_HTTP_NOT_FOUND,
                            "not found: the Alertmanager webhook is not configured\n");
    }

    bool healthz = strcmp(url, "/healthz") == 0;
    bool metrics = strcmp(url, "/metrics") == 0;
    if (!healthz && !metrics)
        return respond_text(connection, MHD_HTTP_NOT_FOUND, "not found\n");
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        const char *text = "method not allowed\n";
        return respond_with(connection, MHD_HTTP_METHOD_NOT_ALLOWED, CONTENT_TYPE_TEXT,
                            (char *)text, strlen(text), MHD_RESPMEM_PERSISTENT,
                            MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    }
    if (metrics)
        return serve_metrics(connection);
    if (metrics_store_is_up())
        return respond_text(connection, MHD_HTTP_OK, "ok\n");
    return respond_text(connection, MHD_HTTP_SERVICE_UNAVAILABLE, "store unreachable\n");
}

/* Opens, binds and listens; returns the socket or a negative errno. */
static int open_listener(const struct sockaddr *addr, socklen_t addr_len)
{
    int one = 1;

    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* Restarting while old connections sit in TIME_WAIT must still work. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, addr, addr_len) < 0 || listen(fd, HTTP_LISTEN_BACKLOG) < 0) {
        int r = -errno;
        close(fd);
        return r;
    }
    return fd;
}

http_server_t *http_server_start(const char *address, uint16_t port, unsigned max_per_client,
                                 char *err, size_t errlen)
{
    struct sockaddr_storage addr = {0};
    socklen_t addr_len;
    char where[INET6_ADDRSTRLEN + 16];

    if (err == NULL)
        errlen = 0;
    if (max_per_client == 0 || max_per_client > HTTP_CONNECTION_LIMIT)
        max_per_client = HTTP_CONNECTION_LIMIT;
    if (address == NULL || address[0] == '\0') {
        struct sockaddr_in *in = (struct sockaddr_in *)&addr;
        in->sin_family = AF_INET;
        in->sin_addr.s_addr = htonl(INADDR_ANY);
        in->sin_port = htons(port);
        addr_len = sizeof(*in);
        snprintf(where, sizeof(where), "*:%u", (unsigned)port);
    } else if (strlen(address) < INET6_ADDRSTRLEN &&
               inet_pton(AF_INET, address, &((struct sockaddr_in *)&addr)->sin_addr) == 1) {
        struct sockaddr_in *in = (struct sockaddr_in *)&addr;
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        addr_len = sizeof(*in);
        snprintf(where, sizeof(where), "%s:%u", address, (unsigned)port);
    } else if (strlen(address) < INET6_ADDRSTRLEN &&
               inet_pton(AF_INET6, address, &((struct sockaddr_in6 *)&addr)->sin6_addr) == 1) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&addr;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        addr_len = sizeof(*in6);
        snprintf(where, sizeof(where), "[%s]:%u", address, (unsigned)port);
    } else {
        snprintf(err, errlen, "invalid listen address \"%s\": expected an IPv4 or IPv6 address",
                 address);
        return NULL;
    }

    http_server_t *self = calloc(1, sizeof(*self));
    if (self == NULL) {
        snprintf(err, errlen, "cannot start HTTP server on %s: %s", where, strerror(ENOMEM));
        return NULL;
    }

    int fd = open_listener((const struct sockaddr *)&addr, addr_len);
    if (fd < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", where, strerror(-fd));
        goto err_free;
    }

    /*
     * libmicrohttpd closes a socket handed to it in MHD_stop_daemon, but when MHD_start_daemon
     * fails it closes it on some paths (thread creation) and not on others (epoll setup), as
     * 0.9.75 behaves. Remember which socket it is, so that after a failure it is closed only if
     * the descriptor still refers to it and not to something another thread opened since.
     */
    struct stat listener;
    if (fstat(fd, &listener) < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", where, strerror(errno));
        close(fd);
        goto err_free;
    }
    /* The logger comes first: libmicrohttpd warns when it is set after other options, whose
     * own messages would have gone to stderr. */
    self->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG, port, NULL, NULL,
        handle_request, self, MHD_OPTION_EXTERNAL_LOGGER, log_mhd, NULL,
        MHD_OPTION_NOTIFY_COMPLETED, request_completed, NULL, MHD_OPTION_LISTEN_SOCKET,
        (MHD_socket)fd, MHD_OPTION_CONNECTION_LIMIT, HTTP_CONNECTION_LIMIT,
        MHD_OPTION_CONNECTION_TIMEOUT, HTTP_CONNECTION_TIMEOUT_S,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, max_per_client, MHD_OPTION_END);
    if (self->daemon == NULL) {
        struct stat now;
        if (fstat(fd, &now) == 0 && now.st_dev == listener.st_dev && now.st_ino == listener.st_ino)
            close(fd);
        snprintf(err, errlen, "cannot start HTTP server on %s (libmicrohttpd logged why)", where);
        goto err_free;
    }
    vg_log(VG_LOG_DEBUG, "http: listening on %s connections=%u per_client=%u", where,
           HTTP_CONNECTION_LIMIT, max_per_client);
    return self;

err_free:
    free(self);
    return NULL;
}

void http_server_set_alertmanager(http_server_t *self, alertmanager_t **am_p)
{
    if (self == NULL || am_p == NULL || *am_p == NULL)
        return;
    /* Set once: replacing it would free what a request on the HTTP thread may be using. */
    alertmanager_t *unset = NULL;
    if (!atomic_compare_exchange_strong(&self->alertmanager, &unset, *am_p)) {
        vg_log(VG_LOG_WARN, "http: the Alertmanager webhook is already set; keeping the first");
        alertmanager_destroy(am_p);
    }
    *am_p = NULL;
}

void http_server_stop(http_server_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    http_server_t *self = *self_p;
    if (self->daemon != NULL)
        MHD_stop_daemon(self->daemon);
    self->daemon = NULL;
    alertmanager_t *am = atomic_exchange(&self->alertmanager, NULL);
    alertmanager_destroy(&am);
    free(self);
    *self_p = NULL;
}
