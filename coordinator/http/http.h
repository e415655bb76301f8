/*
 * HTTP on the coordinator (libmicrohttpd, its own thread): /healthz, /metrics and, once
 * http_server_set_alertmanager was called, the Alertmanager webhook POST /api/v1/alerts
 * (404 until then; see alertmanager.h).
 * /healthz answers 200 "ok" only while the main loop's last store check succeeded
 * (metrics_store_is_up), 503 otherwise. Everything else is 404; methods other than GET/HEAD 405.
 */
#ifndef COORD_HTTP_H
#define COORD_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "alertmanager.h"

typedef struct http_server http_server_t;

/* Connections at once from all clients together; by default, at most this many from one. */
#define HTTP_CONNECTION_LIMIT 64u
#define HTTP_MAX_PER_CLIENT_DEFAULT 8u

/* Listens on address:port (address "" or NULL = all interfaces), taking at most max_per_client
 * connections at once from one client address (0 or more than HTTP_CONNECTION_LIMIT = only the
 * overall limit). NULL on failure, err set. */
http_server_t *http_server_start(const char *address, uint16_t port, unsigned max_per_client,
                                 char *err, size_t errlen);
void http_server_stop(http_server_t **self_p);

/* Enables the webhook; takes ownership of *am_p (NULLed). Call once, after start. */
void http_server_set_alertmanager(http_server_t *self, alertmanager_t **am_p);

#endif
