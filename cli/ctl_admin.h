/*
 * vigilctl's side of the admin channel: one AdminRequest out, its AdminReply back, over a
 * CURVE DEALER socket to the coordinator's admin ROUTER (port 7401).
 *
 * A socket monitor watches the connection so a failure says what went wrong: no TCP
 * connection, a handshake that never completes (wrong coordinator_public_key), or the
 * coordinator's ZAP handler refusing this operator's key (status 400, reported at once).
 */
#ifndef CTL_ADMIN_H
#define CTL_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "ctl_config.h"
#include "wire.h"

#define CTL_ADMIN_DEFAULT_TIMEOUT_MS 5000

struct ctl_context;

/*
 * Sends req (version and request_id are filled in here) and waits up to timeout_ms for the
 * reply with the same request_id; other replies are ignored. On success *ret_reply is owned
 * by the caller (vigil__admin_reply__free_unpacked) and may carry any status. On failure
 * returns -ETIMEDOUT (no reply), -EACCES (operator key refused), -EPROTO (undecodable reply)
 * or another negative errno, with a one-line reason in err.
 */
int ctl_admin_call(const struct ctl_config *cfg, Vigil__AdminRequest *req, int64_t timeout_ms,
                   Vigil__AdminReply **ret_reply, char *err, size_t errlen);

/*
 * 0 if the reply's status is ADMIN_OK; otherwise a negative errno and a message built from
 * the status and the coordinator's error text. what names the request for messages
 * ("approve agent ag-0123"); subject, if not NULL, names the object looked up
 * ("agent ag-0123") for "... not found".
 */
int ctl_admin_status_check(const Vigil__AdminReply *reply, const char *what, const char *subject,
                           char *err, size_t errlen);

/*
 * What a command calls: loads the configuration, sends req and checks the status (what and
 * subject as for ctl_admin_status_check). Returns CTL_EXIT_OK with *ret_reply set (freed by
 * the caller), or CTL_EXIT_FAILURE after printing why.
 */
int ctl_admin_request(struct ctl_context *ctx, Vigil__AdminRequest *req, const char *what,
                      const char *subject, Vigil__AdminReply **ret_reply);

/*
 * A listing, every page of it: sends req, then again with *cursor set to each reply's
 * next_cursor until it is empty (cursor points into req's body). Returns CTL_EXIT_OK with the
 * replies in *ret_pages (free with ctl_admin_pages_free), or CTL_EXIT_FAILURE after printing
 * why. At most CTL_ADMIN_PAGES_MAX pages: a listing that does not end is an error.
 */
#define CTL_ADMIN_PAGES_MAX 10000
int ctl_admin_request_pages(struct ctl_context *ctx, Vigil__AdminRequest *req, char **cursor,
                            const char *what, Vigil__AdminReply ***ret_pages, size_t *ret_npages);
void ctl_admin_pages_free(Vigil__AdminReply **pages, size_t npages);

#endif
