/*
 * The public status page's listener (issue 18): its own libmicrohttpd daemon on its own address
 * and port (status_page.address/port, default 127.0.0.1:7481), apart from /metrics and the
 * webhook. Read-only and without login: GET and HEAD of /, /index.html, /api/v2/summary.json
 * and /api/v2/status.json; other methods 405, other paths 404. Each request reads the public
 * rows through the listener's own store connection (one polling thread: used by it alone) and
 * renders the page (statuspage.h), at most once a second: meanwhile the last renderings are
 * served again, so many readers do not make a query each.
 */
#ifndef COORD_STATUS_HTTP_H
#define COORD_STATUS_HTTP_H

#include <stddef.h>

#include "statuspage.h"

typedef struct status_server status_server_t;

/* cfg is borrowed and outlives the server; conninfo is copied. NULL on failure, err set. */
status_server_t *status_server_start(const struct status_page_config *cfg, const char *conninfo,
                                     char *err, size_t errlen);
void status_server_stop(status_server_t **self_p);

#endif
