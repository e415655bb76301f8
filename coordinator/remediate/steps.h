/*
 * Runbook resolve steps as commands (docs/remediation.md, "Runbook steps"): which steps of an
 * incident's runbook become requests, for how many nodes, and how often Vigil may run one by
 * itself. Pure logic, no I/O: the admin thread (admin/runbook_steps.c) applies it.
 *
 * - A step in mode auto becomes a request issued at once only when the node's agents declare
 *   the action auto as well: the coordinator's signature alone can satisfy nothing stricter,
 *   so an auto step of an approve or destructive action waits for operators like an approve
 *   step. A manual step never becomes a request.
 * - An auto step reaches at most max_nodes nodes (default 1); an approve step max_nodes (0 = no
 *   limit). An auto step for several nodes runs on one first (the canary); the others are
 *   requested once the canary verified on its own node (steps_canary_judge), never after a
 *   failure or a canary that did not verify within its window.
 * - The limiter lets Vigil start at most one automatic request per (runbook, node) per interval,
 *   so a flapping incident cannot loop an action. It keeps at most STEPS_LIMITER_MAX keys; when
 *   every slot is recent it refuses (a refusal is a pending request, never a lost step).
 *
 * A steps_job is one opened incident's steps, copied from the runbook (which a reload may free)
 * on the main loop and handed to the admin thread.
 */
#ifndef COORD_STEPS_H
#define COORD_STEPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "capsule.h"
#include "runbook.h"
#include "vigil.pb-c.h"
#include "wire.h"

#define STEPS_LIMITER_MAX 4096
#define STEPS_AUTO_MIN_INTERVAL_DEFAULT_MS (10 * 60 * 1000)

enum steps_outcome {
    STEPS_MANUAL,  /* shown, never run */
    STEPS_ISSUE,   /* a request issued at once on the coordinator's signature */
    STEPS_PENDING, /* a request that waits for operators' approvals */
};

/* What becomes of a step of mode step_mode for an action the node declares as declared. */
enum steps_outcome steps_decide(enum rb_mode step_mode, enum vg_action_mode declared);

/* How many nodes a step reaches; 0 = no limit. */
size_t steps_node_limit(const struct rb_action *step);

typedef struct steps_limiter steps_limiter_t;

steps_limiter_t *steps_limiter_new(int64_t interval_ms);
void steps_limiter_destroy(steps_limiter_t **self_p);
/* True (and remembered) when no automatic request of runbook on node started within the
 * interval before now_ms; false otherwise. */
bool steps_limiter_allow(steps_limiter_t *self, const char *runbook, const char *node,
                         int64_t now_ms);

/* One resolve step, copied. */
struct steps_step {
    char *action;
    enum rb_mode mode;
    int max_nodes;
    int64_t verify_within_ms;
    bool inverse; /* the inverse of a step whose verify failed: not rate limited, not watched */
    bool after_canary;       /* the nodes after a canary reported done: no canary again */
    bool on_cluster;         /* runbook `on: cluster`: the cluster agent, not the nodes */
    Vigil__CommandArg *argv; /* nargs, strings owned */
    Vigil__CommandArg **args;
    size_t nargs;
};

struct steps_job {
    uint64_t incident_id;
    char *runbook;
    char *verify_node; /* the incident's node for its verify conditions ("" = across nodes) */
    char **nodes;
    size_t nnodes;
    struct steps_step *steps;
    size_t nsteps;
    /* The runbook's investigate entries (a new incident only): action is the evidence kind,
     * args its arguments; collected from the nodes before any step runs. */
    struct steps_step *investigate;
    size_t ninvestigate;
    bool joined; /* nodes joining an open incident: investigate those not yet, no steps */
    bool dry_run; /* a drill: each step is on the timeline as what would run, never requested */
    /* A SEV1 or SEV2: each node's flight recorder (evidence kind flight) is frozen and shipped
     * with the investigation, so the minutes before the fault are kept. */
    bool flight;
    struct steps_job *next; /* the admin thread's queue */
};

/* A copy of rb's resolve steps and investigate entries for incident_id on nodes (n of them);
 * verify_node is the incident's node ("" across nodes). NULL when out of memory. */
struct steps_job *steps_job_new(uint64_t incident_id, const struct rb_runbook *rb,
                                const char *verify_node, const char *const *nodes, size_t n);
/* The investigation of nodes joining open incident_id (its symptom fires on more nodes): rb's
 * investigate entries for those of nodes not investigated yet, and no resolve step. NULL when
 * out of memory. */
struct steps_job *steps_job_joined(uint64_t incident_id, const struct rb_runbook *rb,
                                   const char *const *nodes, size_t n);
/* One inverse step: action with args on node for incident_id. NULL when out of memory. */
struct steps_job *steps_job_inverse(uint64_t incident_id, const char *runbook, const char *node,
                                    const char *action, Vigil__CommandArg *const *args,
                                    size_t nargs);
/* The rest of a canaried auto step: action with args on the nodes of rest (separated by '\n'),
 * each watched with within_ms. NULL when out of memory. */
struct steps_job *steps_job_after_canary(uint64_t incident_id, const char *runbook,
                                         const char *verify_node, const char *rest,
                                         const char *action, Vigil__CommandArg *const *args,
                                         size_t nargs, int64_t within_ms);
/* The flight recorders of an open incident's nodes, and nothing else (its severity rose to SEV2
 * or SEV1). NULL when out of memory. */
struct steps_job *steps_job_flight(uint64_t incident_id, const struct rb_runbook *rb,
                                   const char *const *nodes, size_t n);
void steps_job_destroy(struct steps_job **self_p);

const char *steps_mode_name(enum rb_mode mode);

/* ---- the canary ---- */

enum steps_canary {
    STEPS_CANARY_WAIT, /* not done, or done and its node not verified yet */
    STEPS_CANARY_GO,   /* the other nodes now */
    STEPS_CANARY_STOP, /* failed, or not verified within the window: the others are not reached */
};

/* True when rb's verify entries can judge one node: it has some, and all are per node. */
bool steps_verifies_per_node(const struct rb_runbook *rb);

/* Whether the nodes after a canary may be reached: its command's state (latest exit when
 * has_exit); when per_node (steps_verifies_per_node), node_verified is correlate_verified on the
 * canary's node (1 = holds), and it must hold within within_ms of done_at_ms. A runbook that
 * cannot judge one node (no verify entries, or entries across nodes) goes on at done, exit 0. */
enum steps_canary steps_canary_judge(const char *state, bool has_exit, int exit_status,
                                     bool per_node, int node_verified, int64_t now_ms,
                                     int64_t done_at_ms, int64_t within_ms);

/* ---- verify-then-inverse ---- */

enum steps_verdict {
    STEPS_WAIT,         /* not done yet, or done and the window still open */
    STEPS_VERIFIED,     /* done, exit 0, and the runbook's verify conditions hold */
    STEPS_FAILED,       /* exit not 0, or refused, lost, expired, cancelled: escalate now */
    STEPS_NOT_VERIFIED, /* done, exit 0, but the window passed unverified: inverse, escalate */
};

/* What to do with an automatic command in state (its latest exit when has_exit), with
 * verified as correlate_verified answered now (1 = holds), done_at_ms when it was first seen
 * done (0 = not yet) and within_ms its step's verify_within. */
enum steps_verdict steps_judge(const char *state, bool has_exit, int exit_status, int verified,
                               int64_t now_ms, int64_t done_at_ms, int64_t within_ms);

/* An automatic command being watched until its verdict. */
struct steps_watch {
    char request_id[VG_MAX_COMMAND_ID_LEN + 1];
    uint64_t incident_id;
    char runbook[128];
    char verify_node[256];
    char node[256];
    char action[VG_MAX_NAME_LEN + 1];
    char inverse[VG_MAX_NAME_LEN + 1]; /* "" = the action declares none */
    int64_t within_ms;
    int64_t done_at_ms; /* when first seen done; 0 = not yet */
    /* The verdict was failed or not verified and the inverse (if any) requested: only the
     * escalation is left, retried until this (an incident's escalation starts within a second
     * of its opening; without paging there is none). 0 = no verdict yet. */
    int64_t escalate_until_ms;
    /* A canary: the other nodes of its step ('\n'-separated), requested once it reports done
     * with exit 0; "" = none. */
    char rest[2048];
};

/* The watched commands: added by the admin thread, checked by the main loop (under a mutex). */
typedef struct steps_watchlist steps_watchlist_t;

steps_watchlist_t *steps_watchlist_new(void);
void steps_watchlist_destroy(steps_watchlist_t **self_p);
/* 0 or -ENOMEM. */
int steps_watchlist_add(steps_watchlist_t *self, const struct steps_watch *w);
/* Calls check for every watch (it may update *w); a watch for which check returns true is
 * dropped. */
void steps_watchlist_check(steps_watchlist_t *self,
                           bool (*check)(struct steps_watch *w, void *userdata), void *userdata);

#endif
