/*
 * The agent's link to the coordinator: a CURVE DEALER socket, enrollment, heartbeats, and
 * delivery of the spool.
 *
 * Delivery: records are sent from the spool in order, at most max_inflight unacknowledged at
 * a time; an Ack removes them from the spool. After a disconnect or an ack timeout every
 * in-flight record is sent again (the coordinator ignores duplicates), so nothing leaves the
 * spool unacknowledged. A socket monitor tells the link about (re)connections at once; ZMTP
 * heartbeats detect a dead coordinator even when nothing is being sent.
 */
#ifndef AGENT_LINK_H
#define AGENT_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keys.h"
#include "spool.h"
#include "token.h"
#include "vigil.pb-c.h"

enum link_state {
    LINK_ENROLLING, /* connected or connecting; Enroll sent, waiting for the reply */
    LINK_PENDING,   /* the coordinator knows us; an operator has not approved us yet */
    LINK_ACTIVE,    /* spool being delivered */
    LINK_REVOKED,   /* refused for good; kept trying slowly in case it was a mistake */
};

struct link_config {
    const char *endpoint;
    const char *server_public_key;
    const struct vg_keypair *keys;
    const char *agent_id;
    const char *node;
    const uint8_t *token; /* VG_TOKEN_LEN bytes, or NULL */
    int64_t heartbeat_interval_ms;
    int64_t max_inflight;
    int64_t ack_timeout_ms;
    int64_t reconnect_min_ms;
    int64_t reconnect_max_ms;
    /* A CollectRequest from the coordinator (evidence on demand); NULL = ignored. The
     * request is valid only during the call. */
    void (*on_collect)(void *userdata, const Vigil__CollectRequest *req);
    /* A CommandCapsule from the coordinator (decoded and bounded by vg_envelope_decode, nothing
     * more): the caller passes it to the executor unread; NULL = ignored. Valid only during the
     * call. */
    void (*on_command)(void *userdata, const Vigil__CommandCapsule *capsule);
    void *userdata;
    /* The node's action catalog as Enroll carries it (borrowed; nactions 0: none). */
    Vigil__ActionInfo *const *actions;
    size_t nactions;
    const char *role; /* "node" or "cluster", as Enroll carries it */
};

typedef struct link link_t;

link_t *link_new(void *ctx, const struct link_config *cfg, spool_t *spool, char *err,
                 size_t errlen);
void link_destroy(link_t **self_p);

/* Sockets for the caller's poll set. */
void *link_socket(link_t *self);
void *link_monitor_socket(link_t *self);

void link_handle(link_t *self);         /* the DEALER is readable */
/* Messages from the coordinator that were malformed or unexpected (counted, then ignored). */
uint64_t link_ignored_messages(const link_t *self);
/* Records the coordinator refused as invalid (with their seq), discarded from the spool: they
 * could never be stored. Reported as agent.link.refused_records. */
uint64_t link_refused_records(const link_t *self);
/* Requests (collections, capsules) the coordinator sent again after a reconnect and this agent
 * had acted on already: not acted on twice. Reported as agent.link.duplicate_requests. */
uint64_t link_duplicate_requests(const link_t *self);
void link_handle_monitor(link_t *self); /* the monitor is readable */

/* Timers (heartbeat, enrollment retry, ack timeout) and sending from the spool. */
void link_tick(link_t *self);
/* Milliseconds until link_tick has something to do. */
int64_t link_next_timeout(const link_t *self);

/* Health reported in heartbeats. */
void link_set_executor_ok(link_t *self, bool ok);

enum link_state link_state(const link_t *self);
const char *link_state_name(enum link_state state);

/* For the agent's status file (status.h). */
struct link_status {
    enum link_state state;
    bool connected;
    int64_t last_contact_ms;       /* wall clock of the last message from the coordinator; 0 = never */
    int64_t heartbeat_interval_ms; /* in force (the coordinator's once enrolled) */
};
void link_get_status(const link_t *self, struct link_status *ret);

#endif
