/*
 * Inside the admin socket: the state the request handlers share, the reply they fill, and the
 * command tables.
 *
 * Each domain (agents.c, signals.c, evidence.c, incidents.c, paging.c, operators.c) exports a
 * table of struct admin_command: the request it answers, the role it needs, the check of its
 * fields and its handler. admin.c looks the request up in the tables, checks its fields and the
 * operator's role, calls the handler and sends the reply. Adding an operator request is its
 * proto message, one entry (check + handler) in one of these files, and vigilctl's command;
 * tests/unit/test_admin.c fails until the entry exists and names its role.
 *
 * A reply owns its memory through release callbacks: whatever a handler allocates for the
 * reply message to point into is registered with reply_own and released after the reply is
 * sent, in reverse order. Handlers never free what they hand to the message.
 */
#ifndef COORD_ADMIN_INTERNAL_H
#define COORD_ADMIN_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admin.h"
#include "evidence.h"
#include "checkpoint.h"
#include "evloop.h"
#include "sign.h"
#include "incidents.h"
#include "remediate.h"
#include "steps.h"
#include "store.h"

struct paging_config;

/* Signed checkpoints of the evidence chain (checkpoints.c; admin_set_checkpoints). */
struct admin_checkpoints {
    bool enabled;              /* a signing key was given */
    struct vg_signing_key key; /* the coordinator's, a copy (wiped by admin_destroy) */
    char dir[4096];            /* state_dir/checkpoints */
    int64_t interval_ms;       /* 0 = only on request */
    int64_t link_warned_ms;    /* the chain linker's last warning (monotonic) */
    bool has_published;        /* published holds the heads last written */
    struct vg_chain_head published[VG_CHAINS];
    struct checkpoint_hook *hook; /* the audit channel (borrowed); NULL = none */
};

/* A node that went up or down by an operator's hand, for the rule engine on the main loop. */
struct admin_node_change {
    char node[256];
    bool up;
    int64_t at_ms;
};

/*
 * Ownership: everything here belongs to the admin thread once admin_start returned, except
 * registry (shared, under registry_lock), paging (read-only) and the node-change queue (under
 * changes_lock; the main loop drains it with admin_node_changes).
 */
struct admin {
    void *socket;
    registry_t *registry;
    store_t *store;                 /* the admin thread's own connection */
    evidence_requester_t *evidence; /* queues CollectRequests for the router */
    pthread_t thread;
    bool running;
    int stop_fd; /* eventfd: admin_destroy wakes the thread with it */
    pthread_mutex_t changes_lock;
    struct admin_node_change *changes;
    size_t nchanges, changes_cap;
    store_incidents_t *incidents;   /* own connection, opened on first use */
    /* Borrowed (admin_set_paging); NULL = paging is off. */
    const struct paging_config *paging;
    /* Borrowed (admin_set_status_page); NULL = no components configured. */
    const struct status_page_config *status_page;
    /* On-call overrides: own connection, opened on first use. */
    store_oncall_t *oncall;
    /* Evidence vault verification: own connection, opened on first use. */
    store_verify_t *verify;
    /* Told when an approval or revocation changes whether a node is up (admin_set_observer),
     * from the main loop (admin_node_changes). */
    struct router_observer observer;
    /* Command capsules (admin_set_remediate, borrowed); NULL = commands are refused. */
    remediate_t *remediate;
    /* PromQL captures for the promql evidence kind (admin_set_promql, borrowed); NULL = no
     * Prometheus: such collections fail saying so. */
    struct promql *promql;
    /* Opened incidents' runbook steps from the main loop (admin_runbook_steps): a list under
     * changes_lock, and an eventfd that wakes the admin thread to run them. */
    struct steps_job *steps_head, *steps_tail;
    int steps_fd;
    steps_limiter_t *limiter;     /* automatic requests per (runbook, node); admin thread */
    steps_watchlist_t *watchlist; /* borrowed (admin_set_watchlist); NULL = no verify watch */
    const struct rb_set *runbooks; /* a reference to the set in force, under changes_lock */
    struct admin_checkpoints checkpoints; /* checkpoints.c */
    char request_peer[64]; /* the request being answered: its peer's address, "" = unknown */
};

/* Queues a node's change for the observer (admin_node_changes); a change that cannot be queued
 * is logged. */
void admin_node_change(admin_t *self, const char *node, bool up, int64_t at_ms);

/* The runbook's investigate entries of job, collected from its nodes for its incident
 * (admin/evidence.c): started before any step runs, never waited for. */
void admin_investigate(admin_t *self, const struct steps_job *job);
/* SEV1/SEV2: each node's flight recorder frozen and shipped (the minutes before the incident;
 * admin/evidence.c), after the automatic steps are on their way. */
void admin_freeze_flight(admin_t *self, const struct steps_job *job);
/* Runs an opened incident's runbook steps (commands.c; admin thread). */
void admin_commands_run_steps(admin_t *self, const struct steps_job *job);

struct reply_owned {
    void *ptr;
    void (*release)(void *ptr);
};

/* One request's reply: the message, what it points into, and the error text. */
struct reply {
    Vigil__AdminReply msg;
    struct reply_owned *owned;
    size_t nowned, owned_cap;
    char error[1024];
};

/*
 * Registers ptr (may be NULL: then nothing happens) to be released with release after the reply
 * is sent. Returns ptr, or NULL when it could not be registered: then ptr is already released
 * and the reply says the coordinator is out of memory.
 */
void *reply_own(struct reply *rep, void *ptr, void (*release)(void *ptr));
/* Releases everything registered, newest first. */
void reply_release(struct reply *rep);
/* A release callback for a zlistx_t (its destructor frees the items). */
void reply_release_list(void *list);

__attribute__((format(printf, 3, 4))) void reply_error(struct reply *rep, Vigil__AdminStatus status,
                                                       const char *fmt, ...);
void reply_out_of_memory(struct reply *rep);
/* was_change: the request would have changed something ("nothing changed"), else a read. */
void reply_store_unavailable(struct reply *rep, bool was_change);
/* The evidence collected after command request_id ran (its output, its action's kinds) as the
 * reply's evidence entries (admin/evidence.c). */
void admin_reply_command_evidence(admin_t *self, struct reply *rep, const char *request_id);
/* The evidence of incident_id's investigation, the same way (admin/evidence.c). */
void admin_reply_incident_evidence(admin_t *self, struct reply *rep, uint64_t incident_id);
void reply_incident_not_found(struct reply *rep, uint64_t id);
/* The incidents connection, opened on first use (NULL when out of memory); and the incident as
 * it now is into the reply (admin/incidents.c). */
store_incidents_t *admin_incidents_store(admin_t *self);
void admin_reply_incident(admin_t *self, struct reply *rep, uint64_t id);

/* "operator:NAME", the actor of audit rows and timelines. */
void admin_actor(const struct operator* op, char *out, size_t len);

/* Labels arrive as the jsonb text of a flat object of strings; *ret_labels is owned (each
 * label's key and value too) and grows as *ret_n counts, so a partial result frees cleanly. */
int admin_labels_from_json(const char *labels_json, Vigil__Label ***ret_labels, size_t *ret_n);
void admin_labels_free(Vigil__Label **labels, size_t n);

typedef void (*admin_handler_fn)(admin_t *self, const struct operator* op,
                                 const Vigil__AdminRequest *req, struct reply *rep);
/* What is wrong with the request's fields (bounds, required ones), or NULL. */
typedef const char *(*admin_check_fn)(const Vigil__AdminRequest *req);

struct admin_command {
    Vigil__AdminRequest__BodyCase body; /* 0 ends a table */
    enum operator_role role;            /* needed at least */
    const char *what;                   /* "listing agents": for refusals and logs */
    admin_check_fn check;               /* NULL: nothing to check */
    admin_handler_fn handle;
};

/* Listings of incidents and of timeline events: at most this many per request. */
#define ADMIN_INCIDENTS_LISTED_MAX 1000

extern const struct admin_command admin_agent_commands[];
extern const struct admin_command admin_signal_commands[];
extern const struct admin_command admin_evidence_commands[];
extern const struct admin_command admin_incident_commands[];
extern const struct admin_command admin_steer_commands[]; /* steer.c: issue 18 */
extern const struct admin_command admin_paging_commands[];
extern const struct admin_command admin_silence_commands[];
extern const struct admin_command admin_operator_commands[];
extern const struct admin_command admin_command_commands[];
extern const struct admin_command admin_drill_commands[];
extern const struct admin_command admin_followup_commands[]; /* followups.c: issue 18 */
extern const struct admin_command admin_checkpoint_commands[];
extern const struct admin_command admin_hold_commands[]; /* holds.c: issue 15, legal hold */
/* incident_id's legal hold (its newest holds row, if it ever had one) as the reply's holds. */
void admin_reply_incident_hold(admin_t *self, struct reply *rep, uint64_t incident_id);
extern const struct admin_command admin_export_commands[]; /* export.c */

struct vg_checkpoint;
/* A checkpoint of the vault's head now, signed, written to the directory: text (len bytes).
 * 0; -ENOTSUP without a signing key; -EIO store. */
int admin_checkpoint_issue(admin_t *self, char *text, size_t len);
/* The admin loop's timer: links the rows committed since the last pass (024_chains.sql). */
int admin_chain_tick(vg_loop_t *loop, void *userdata);
#define ADMIN_CHAIN_LINK_MS 1000
/* The admin loop's timer: a checkpoint when a chain grew since the last one. */
int admin_checkpoint_tick(vg_loop_t *loop, void *userdata);
/* The table of a chain other than the vault's (NULL for VG_CHAIN_EVIDENCE). */
const char *admin_chain_table(enum vg_chain chain);
/* Whether the vault (intact through last_id) and the other chains still hold what cp signed;
 * false with broken_id (the row or place to blame; 0 = none) and why. */
bool admin_checkpoint_check(admin_t *self, const struct vg_checkpoint *cp, uint64_t last_id,
                            uint64_t *broken_id, char *why, size_t whylen);

/* A reference to the runbook set in force (runbooks_release it), or NULL when none is loaded. */
const struct rb_set *admin_runbooks(admin_t *self);

/* The entry for a request, from every table; NULL when none answers it. */
const struct admin_command *admin_command_find(Vigil__AdminRequest__BodyCase body);

/* One decoded request from op: its entry's field check, the role check, then its handler, all
 * answered in rep (what the socket does for every request; tests call it directly). */
void admin_dispatch(admin_t *self, const struct operator* op, const Vigil__AdminRequest *req,
                    struct reply *rep);

/* A decoded request (vg_admin_request_decode) checked against its entry: VG_DECODE_OK, or
 * VG_DECODE_UNKNOWN_TYPE (no entry) / VG_DECODE_LIMITS with *ret_why saying why. */
enum vg_decode_error admin_request_check(const Vigil__AdminRequest *req, const char **ret_why);

#endif
