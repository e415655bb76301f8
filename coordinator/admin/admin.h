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

/*
 * Binds the socket and prepares the admin side; nothing is served until admin_start. The admin
 * thread keeps a PostgreSQL connection of its own to conninfo (store_connect), so an operator's
 * listing never waits behind ingest and ingest never waits behind it. registry is shared with
 * the main loop under registry_lock (registry.h).
 */
admin_t *admin_new(void *ctx, const char *endpoint, const struct vg_keypair *server_keys,
                   int heartbeat_ivl_ms, registry_t *registry, const char *conninfo, char *err,
                   size_t errlen);
/* Starts the admin thread: from now on it alone uses the socket. 0 or a negative errno. */
int admin_start(admin_t *self);
/* Stops and joins the thread (a request being answered is finished first), then frees. */
void admin_destroy(admin_t **self_p);

/* Answers every waiting request on the caller's thread: for tests that drive the socket
 * without admin_start. */
void admin_handle(admin_t *self);
void *admin_socket(admin_t *self);

typedef struct remediate remediate_t;
/* Where RunCommand and ApproveCommand issue capsules (borrowed: it must outlive self; used on
 * the admin thread only); NULL = command requests are refused. Set before admin_start. */
void admin_set_remediate(admin_t *self, remediate_t *remediate);
/* Where promql evidence is captured (borrowed, outlives the admin; NULL = no Prometheus).
 * Before admin_start: the thread watches its finished captures. */
struct promql;
void admin_set_promql(admin_t *self, struct promql *promql);

struct paging_config;
/* The paging configuration `vigilctl oncall` reads (borrowed and read-only: it must outlive
 * self); NULL = paging is off. Set before admin_start. */
void admin_set_paging(admin_t *self, const struct paging_config *paging);

struct status_page_config;
/* The status page's components (which runbooks affect which) for `vigilctl update` and
 * `vigilctl status-page export` (borrowed, read-only, outlives self). Set before admin_start. */
void admin_set_status_page(admin_t *self, const struct status_page_config *status_page);

/* Who hears that an operator approved (node up) or revoked (node down) an agent: the same
 * observer the router tells about enrollment and liveness, so the rule engine's node set
 * follows both (copied; only agent_state is called). A revoked agent's node stays up while
 * another agent of that node is active (a node re-enrolled with a new key). Set before
 * admin_start. */
void admin_set_observer(admin_t *self, const struct router_observer *observer);

struct vg_signing_key;
/* Signed checkpoints of the evidence chain (admin/checkpoints.c): the coordinator's signing
 * key (copied), the directory they are written to, and how often the admin thread issues one
 * when a chain grew (0 = only on request). Set before admin_start; without it GetCheckpoint
 * is refused. */
void admin_set_checkpoints(admin_t *self, const struct vg_signing_key *key, const char *dir,
                           int64_t interval_ms);
struct checkpoint_hook;
/* The audit channel every issued checkpoint is also posted to (borrowed; outlives the admin
 * thread). Set before admin_start; none = files only. */
void admin_set_checkpoint_hook(admin_t *self, struct checkpoint_hook *hook);

struct rb_set;
/* The runbook set in force, for drills (a reference is taken; the previous one is dropped):
 * called at start and after every reload that succeeded, from the main loop. */
void admin_set_runbooks(admin_t *self, const struct rb_set *set);

struct steps_job;

/* Hands an opened incident's runbook steps to the admin thread (takes *job_p and sets it to
 * NULL), which turns them into requests (docs/remediation.md, "Runbook steps"). Any thread;
 * never blocks on the store. */
void admin_runbook_steps(admin_t *self, struct steps_job **job_p);
/* Where automatic runbook steps go to be judged by their verify conditions (borrowed: it must
 * outlive self). Set before admin_start. */
struct steps_watchlist;
void admin_set_watchlist(admin_t *self, struct steps_watchlist *watchlist);
/* At most one automatic request per (runbook, node) per interval_ms (commands.auto_min_interval).
 * Set before admin_start. 0 or -ENOMEM. */
int admin_set_auto_min_interval(admin_t *self, int64_t interval_ms);

/* Tells the observer, on the caller's thread (the main loop), the node changes operators made
 * since the last call, in order. */
void admin_node_changes(admin_t *self);

#endif
