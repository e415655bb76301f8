/*
 * The status page's own HTTP listener (status_http.h), in the manner of http/http.c: the socket
 * is bound here so a failure names the real errno, then handed to libmicrohttpd's single polling
 * thread, with the same connection limits and timeout.
 */
#include "status_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "timeutil.h"

#define STATUS_CONNECTION_LIMIT 64u
#define STATUS_PER_CLIENT_LIMIT 8u
#define STATUS_CONNECTION_TIMEOUT_S 10u
#define STATUS_LISTEN_BACKLOG 64
#define STATUS_CACHE_MS 1000

#define CONTENT_TYPE_HTML "text/html; charset=utf-8"
#define CONTENT_TYPE_JSON "application/json; charset=utf-8"
#define CONTENT_TYPE_TEXT "text/plain; charset=utf-8"
/* The page has no script and loads nothing: say so to the browser. */
#define PAGE_CSP                                                                                   \
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

struct status_server {
    struct MHD_Daemon *daemon;
    const struct status_page_config *cfg;
    char *conninfo;
    store_incidents_t *store; /* the polling thread's alone, opened on first use */
    /* The last renderings, reused for STATUS_CACHE_MS: a public page read by many does not
     * become a query per request. The polling thread's alone. */
    char *rendered[3];
    int64_t rendered_at_mono;
};

static enum MHD_Result respond(struct MHD_Connection *connection, unsigned status,
                               const char *content_type, char *body, size_t len,
                               enum MHD_ResponseMemoryMode mode, const char *allow)
{
    struct MHD_Response *response = MHD_create_response_from_buffer(len, body, mode);
    if (!response) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    bool ok =
        MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) == MHD_YES &&
        MHD_add_response_header(response, "X-Content-Type-Options", "nosniff") == MHD_YES &&
        MHD_add_response_header(response, "Content-Security-Policy", PAGE_CSP) == MHD_YES &&
        MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache") == MHD_YES &&
        (!allow || MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, allow) == MHD_YES);
    if (!ok) {
        MHD_destroy_response(response);
        return MHD_NO;
    }
    enum MHD_Result queued = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return queued;
}

static enum MHD_Result respond_text(struct MHD_Connection *connection, unsigned status,
                                    const char *text, const char *allow)
{
    return respond(connection, status, CONTENT_TYPE_TEXT, (char *)text, strlen(text),
                   MHD_RESPMEM_PERSISTENT, allow);
}

enum page_kind { PAGE_HTML, PAGE_SUMMARY, PAGE_STATUS }; /* index of rendered[] */

static enum MHD_Result serve(status_server_t *self, struct MHD_Connection *connection,
                             enum page_kind kind)
{
    struct sp_page page;
    int64_t now = vg_wall_ms(), mono = vg_mono_ms();
    if (!self->rendered[kind] || mono - self->rendered_at_mono >= STATUS_CACHE_MS) {
        if (!self->store)
            self->store = store_incidents_new(self->conninfo);
        int r = self->store ? statuspage_load(self->store, self->cfg, now, &page) : -ENOMEM;
        if (r < 0) {
            vg_log(VG_LOG_WARN, "status page: cannot read the store: %s", strerror(-r));
            return respond_text(connection, MHD_HTTP_SERVICE_UNAVAILABLE,
                                "the status page is unavailable; try again shortly\n", NULL);
        }
        char *fresh[3] = {statuspage_html(&page, now), statuspage_summary_json(&page),
                          statuspage_status_json(&page)};
        statuspage_free(&page);
        if (!fresh[0] || !fresh[1] || !fresh[2]) {
            for (int i = 0; i < 3; i++)
                free(fresh[i]);
            return respond_text(connection, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n",
                                NULL);
        }
        for (int i = 0; i < 3; i++) {
            free(self->rendered[i]);
            self->rendered[i] = fresh[i];
        }
        self->rendered_at_mono = mono;
    }
    const char *body = self->rendered[kind];
    return respond(connection, MHD_HTTP_OK,
                   kind == PAGE_HTML ? CONTENT_TYPE_HTML : CONTENT_TYPE_JSON, (char *)body,
                   strlen(body), MHD_RESPMEM_MUST_COPY, NULL);
}

/* Answered on the first call, as soon as the headers are in: no request has a body to read. */
static enum MHD_Result handle_request(void *cls, struct MHD_Connection *connection, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **request_state)
{
    status_server_t *self = cls;
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)request_state;
    enum page_kind kind;
    if (strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0)
        kind = PAGE_HTML;
    else if (strcmp(url, "/api/v2/summary.json") == 0)
        kind = PAGE_SUMMARY;
    else if (strcmp(url, "/api/v2/status.json") == 0)
        kind = PAGE_STATUS;
    else
        return respond_text(connection, MHD_HTTP_NOT_FOUND, "not found\n", NULL);
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return respond_text(connection, MHD_HTTP_METHOD_NOT_ALLOWED,
                            "method not allowed: the status page is read-only\n", "GET, HEAD");
    return serve(self, connection, kind);
}

status_server_t *status_server_start(const struct status_page_config *cfg, const char *conninfo,
                                     char *err, size_t errlen)
{
    struct sockaddr_storage addr = {0};
    socklen_t addr_len;
    char where[INET6_ADDRSTRLEN + 16];
    const char *address = cfg->address;
    uint16_t port = (uint16_t)cfg->port;
    int one = 1;

    if (!address || !address[0]) {
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
        snprintf(err, errlen,
                 "status page: invalid listen address \"%s\": expected an IPv4 or IPv6 address",
                 address);
        return NULL;
    }
    status_server_t *self = calloc(1, sizeof(*self));
    if (!self || !(self->conninfo = strdup(conninfo ? conninfo : ""))) {
        free(self);
        snprintf(err, errlen, "status page: out of memory");
        return NULL;
    }
    self->cfg = cfg;
    int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (const struct sockaddr *)&addr, addr_len) < 0 ||
        listen(fd, STATUS_LISTEN_BACKLOG) < 0) {
        snprintf(err, errlen, "status page: cannot listen on %s: %s", where, strerror(errno));
        if (fd >= 0)
            close(fd);
        goto err_free;
    }
    /* As in http.c: libmicrohttpd closes the socket on some failure paths and not on others, so
     * it is closed after a failure only if the descriptor still refers to it. */
    struct stat listener;
    if (fstat(fd, &listener) < 0) {
        snprintf(err, errlen, "status page: cannot listen on %s: %s", where, strerror(errno));
        close(fd);
        goto err_free;
    }
    self->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, port, NULL, NULL, handle_request, self,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd, MHD_OPTION_CONNECTION_LIMIT,
        STATUS_CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT, STATUS_CONNECTION_TIMEOUT_S,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, STATUS_PER_CLIENT_LIMIT, MHD_OPTION_END);
    if (!self->daemon) {
        struct stat now;
        if (fstat(fd, &now) == 0 && now.st_dev == listener.st_dev && now.st_ino == listener.st_ino)
            close(fd);
        snprintf(err, errlen, "status page: cannot start the HTTP server on %s", where);
        goto err_free;
    }
    vg_log(VG_LOG_INFO, "status page: serving http://%s/", where);
    return self;
err_free:
    free(self->conninfo);
    free(self);
    return NULL;
}

void status_server_stop(status_server_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    status_server_t *self = *self_p;
    if (self->daemon)
        MHD_stop_daemon(self->daemon);
    store_incidents_destroy(&self->store);
    for (int i = 0; i < 3; i++)
        free(self->rendered[i]);
    free(self->conninfo);
    free(self);
    *self_p = NULL;
}
