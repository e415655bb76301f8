/*
 * vigilctl's socket (ROUTER, CURVE server, ZAP domain VG_ZAP_DOMAIN_ADMIN): one AdminRequest
 * in, one AdminReply out. The operator is the authenticated User-Id; each request type
 * names the role it needs (viewer < responder < admin) and is refused below it: listing needs
 * viewer; collecting and fetching evidence content responder; approving and revoking admin.
 */
#ifndef COORD_ADMIN_H
#define COORD_ADMIN_H

#include <stddef.h>

#include "keys.h"
#include "registry.h"
#include "router.h"
#include "store.h"

typedef struct admin admin_t;

admin_t *admin_new(void *ctx, const char *endpoint, const struct vg_keypair *server_keys,
                   int heartbeat_ivl_ms, registry_t *registry, store_t *store, char *err,
                   size_t errlen);
void admin_destroy(admin_t **self_p);
void *admin_socket(admin_t *self);

/* Answers every waiting request. */
void admin_handle(admin_t *self);

struct paging_config;
/* The paging configuration `vigilctl oncall` reads (borrowed: it must outlive self, or be
 * replaced before it is freed); NULL = paging is off. */
void admin_set_paging(admin_t *self, const struct paging_config *paging);

/* Who hears that an operator approved (node up) or revoked (node down) an agent: the same
 * observer the router tells about enrollment and liveness, so the rule engine's node set
 * follows both (copied; only agent_state is called). A revoked agent's node stays up while
 * another agent of that node is active (a node re-enrolled with a new key). */
void admin_set_observer(admin_t *self, const struct router_observer *observer);

#endif
