/*
 * The ZAP handler (ZeroMQ RFC 27): decides, at every CURVE handshake, who gets in.
 *
 * Domain VG_ZAP_DOMAIN_AGENTS: a revoked key is refused (400); every other key is admitted
 * with its agent id as User-Id — an unknown or pending key may then only enroll (router.c
 * checks each message against the registry). Domain VG_ZAP_DOMAIN_ADMIN: only registered
 * operators, User-Id = operator id. Anything else (other mechanism, other domain) is refused.
 * Without this handler CURVE would encrypt but admit anyone who knows the server key.
 */
#ifndef COORD_ZAP_H
#define COORD_ZAP_H

#include <stddef.h>

#include "registry.h"

/* Message property (zmq_msg_gets) holding the peer's Z85 public key, set by this handler. */
#define ZAP_PROPERTY_KEY "X-Vigil-Key"

typedef struct zap zap_t;

/* Binds inproc://zeromq.zap.01 in ctx. Must exist before any CURVE server socket binds. */
zap_t *zap_new(void *ctx, registry_t *registry, char *err, size_t errlen);
void zap_destroy(zap_t **self_p);

/* The REP socket, for the caller's poll set. */
void *zap_socket(zap_t *self);

/* Answers every pending request without blocking. */
void zap_handle(zap_t *self);

#endif
