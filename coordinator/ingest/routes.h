/*
 * Where each agent is, and what it has been asked and not yet answered.
 *
 * An agent speaks on one connection at a time; a reconnect gives it a new routing id. Requests
 * to an agent (CollectRequests, command capsules) go to its newest connection. A request sent
 * on a connection that was dying (a partition, a middlebox holding the agent's bytes) is lost
 * with it, and the coordinator's agent socket has no ZMTP heartbeat to notice that sooner
 * (VG_LIVENESS_TTL_ONLY in wire.h says why). So every request is remembered until the agent
 * answers it (an evidence chunk of the collection, a report of the command) or it expires, and
 * sent again when the agent shows up on a new connection. The agent handles a request once
 * whatever the number of copies (agent/link.c).
 *
 * Owned by the router, used from the main loop only.
 */
#ifndef COORD_ROUTES_H
#define COORD_ROUTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Unanswered requests remembered per agent; past it the oldest is no longer resent. */
#define ROUTES_PENDING_MAX 32

typedef struct routes routes_t;

routes_t *routes_new(void);
void routes_destroy(routes_t **self_p);

/* Records that agent_id spoke on routing id rid. Returns true when that is a connection the
 * agent had not used before and an earlier one is left behind (its unanswered requests should
 * go again: routes_resend). Late bytes on a connection the agent has left do not move it back. */
bool routes_update(routes_t *self, const char *agent_id, const uint8_t *rid, size_t rid_len);

/* The agent's newest connection, or NULL when it has not spoken since the coordinator started. */
const uint8_t *routes_lookup(const routes_t *self, const char *agent_id, size_t *rid_len);

void routes_forget(routes_t *self, const char *agent_id);

/* A request's identity, to match it with its answer. */
uint64_t routes_key_collection(uint64_t collection_id);
uint64_t routes_key_command(const char *request_id);

/* Remembers a request sent to agent_id (its whole envelope), until answered or expires_wall_ms.
 * Returns 0 or -ENOMEM (then it is simply not resent). */
int routes_remember(routes_t *self, const char *agent_id, uint64_t key, const void *envelope,
                    size_t len, int64_t expires_wall_ms);

/* The agent answered the request: it is not sent again. */
void routes_answered(routes_t *self, const char *agent_id, uint64_t key);

/* Sends each unexpired unanswered request of agent_id through send (to its newest connection),
 * dropping expired ones. Returns how many were sent. */
typedef int (*routes_send_fn)(void *userdata, const uint8_t *rid, size_t rid_len,
                              const void *envelope, size_t len);
unsigned routes_resend(routes_t *self, const char *agent_id, int64_t now_wall_ms,
                       routes_send_fn send, void *userdata);

/* How many requests agent_id has unanswered (tests, logs). */
unsigned routes_pending(const routes_t *self, const char *agent_id);

#endif
