/*
 * vigilctl's side of the admin channel: AdminRequests out, their AdminReplies back, over a
 * CURVE DEALER socket to the coordinator's admin ROUTER (port 7401).
 *
 * A session is one connection (ZeroMQ context, socket, CURVE handshake, the coordinator's ZAP
 * check) for as many requests as its user makes; ctl_admin_call is a session for one. Each
 * reply is matched to its request by request_id, so requests may be pipelined: the coordinator
 * serves one at a time, in the order they arrived, and answers each on the same connection.
 *
 * A socket monitor watches the connection so a failure says what went wrong: no TCP
 * connection, a handshake that never completes (wrong coordinator_public_key), the
 * coordinator's ZAP handler refusing this operator's key (status 400, reported at once), an
 * authenticated connection lost (the coordinator stopped; requests sent on it are gone), or a
 * coordinator that answered earlier requests of the session and then went quiet.
 */
#ifndef CTL_ADMIN_H
#define CTL_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "ctl_config.h"
#include "wire.h"

#define CTL_ADMIN_DEFAULT_TIMEOUT_MS 5000

struct ctl_context;

typedef struct ctl_admin_session ctl_admin_session_t;

/*
 * Sets up the socket and starts connecting to cfg->coordinator; nothing waits here: the
 * connection is made while the first request waits to go out. timeout_ms is the wait callers
 * give each request, named in timeout messages ("no reply from ... within 5s (...)"). 0 with
 * *ret_session (ctl_admin_session_destroy), or a negative errno with a one-line reason in err.
 */
int ctl_admin_session_open(const struct ctl_config *cfg, int64_t timeout_ms,
                           ctl_admin_session_t **ret_session, char *err, size_t errlen);
void ctl_admin_session_destroy(ctl_admin_session_t **self_p);

/*
 * Sends req (version and a fresh request_id are filled in here), waiting until deadline
 * (vg_mono_ms) for the connection to take it. 0 once it is on its way; -ETIMEDOUT, -EACCES or
 * another negative errno with err set, as for ctl_admin_call.
 */
int ctl_admin_session_send(ctl_admin_session_t *self, Vigil__AdminRequest *req, int64_t deadline,
                           char *err, size_t errlen);

/*
 * Waits until deadline (vg_mono_ms) for the reply to request_id; replies to any other request
 * (an earlier one, or one given up on) are read and dropped. Returns as ctl_admin_call does.
 */
int ctl_admin_session_recv(ctl_admin_session_t *self, uint64_t request_id, int64_t deadline,
                           Vigil__AdminReply **ret_reply, char *err, size_t errlen);

/*
 * One request on a session of its own: sends req (version and request_id are filled in here)
 * and waits up to timeout_ms, connection included, for the reply with the same request_id;
 * other replies are ignored. On success *ret_reply is owned by the caller
 * (vigil__admin_reply__free_unpacked) and may carry any status. On failure returns -ETIMEDOUT
 * (no reply), -EACCES (operator key refused), -EPROTO (undecodable reply) or another negative
 * errno, with a one-line reason in err.
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
