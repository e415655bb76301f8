/*
 * The incident lifecycle: what a symptom from the rule engine, an operator's acknowledgement or
 * resolve does to an incident, each in one store transaction.
 *
 * One open incident per fingerprint (runbook id + scope key): a symptom whose incident is open
 * joins it as a timeline event; one that returns within reopen_window_ms of a resolve reopens
 * the same incident; otherwise a critical symptom opens a new one. Severity only rises while
 * open (SEV1 is the highest) and each rise tightens the response deadline. States go
 * detected -> acknowledged -> mitigated -> resolved -> closed; the timeline (incident_events)
 * records every change with its actor ("vigil" or the operator's name) and reason.
 */
#ifndef COORD_INCIDENTS_H
#define COORD_INCIDENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define INCIDENT_ACTOR_VIGIL "vigil"
#define INCIDENT_NOTE_MAX 1024 /* operator notes, symptom reasons: longer is refused */

enum incident_symptom_state {
    INCIDENT_SYMPTOM_OK,       /* cleared: recorded on an open incident, nothing else */
    INCIDENT_SYMPTOM_WARNING,  /* joins or raises an open incident; never opens one */
    INCIDENT_SYMPTOM_CRITICAL, /* opens, reopens or joins */
};

/* What a rule_event carries, without coupling to the rule engine. Strings borrowed. */
struct incident_symptom {
    const char *fingerprint; /* incidents_fingerprint(runbook, node) */
    const char *runbook;     /* runbook id */
    const char *symptom;     /* the symptom's id in its runbook (NULL: none) */
    const char *title;
    int severity; /* 1 (SEV1) .. 4 (SEV4), the runbook's */
    enum incident_symptom_state state;
    const char *reason;       /* one line: which rule, which value */
    const char *const *nodes; /* the nodes firing, n_nodes of them */
    size_t n_nodes;
    uint32_t nodes_firing, nodes_total;
    int64_t at_ms;            /* when the rule engine saw the transition */
    int64_t reopen_window_ms; /* a resolve younger than this reopens instead of a new incident */
    /* Runbooks whose open incident explains this symptom (the runbook's depends_on): a
     * critical symptom with no incident of its own attaches to the oldest such incident
     * (timeline "attached") instead of opening, and paging, one of its own. */
    const char *const *depends_on;
    size_t n_depends;
};

enum incident_outcome {
    INCIDENT_UNCHANGED, /* a clear or warning without an open incident: nothing recorded */
    INCIDENT_OPENED,    /* a new incident: the caller pages */
    INCIDENT_REOPENED,  /* a resolved incident came back */
    INCIDENT_UPDATED,   /* joined an open incident (a symptom event, maybe a severity rise) */
    INCIDENT_ATTACHED,  /* explained by an open root-cause incident (id): recorded there */
};

struct incident_result {
    uint64_t id; /* 0 when UNCHANGED */
    enum incident_outcome outcome;
    int severity;         /* the incident's severity now */
    bool severity_raised; /* this symptom raised it */
    int64_t response_due_ms;
};

/* An incident's dedup key: "<runbook id>/<node>" for a symptom evaluated per node, "<runbook
 * id>/" for one across nodes. Every symptom of a runbook with the same scope joins one incident.
 * 0 or -ENAMETOOLONG. */
int incidents_fingerprint(const char *runbook, const char *node, char *buf, size_t size);
/* The node part of a fingerprint ("" across nodes); NULL when fingerprint has no '/'. */
const char *incidents_fingerprint_node(const char *fingerprint);

/* SEV1 15 min, SEV2 1 h, SEV3 4 h after from_ms; SEV4 the next business day (Monday to
 * Friday) at 09:00 UTC. */
int64_t incidents_response_due(int severity, int64_t from_ms);

/* "SEV1" .. "SEV4", "SEV?" otherwise. */
const char *incidents_severity_name(int severity);

/* -EINVAL for a symptom without fingerprint/runbook, a severity outside 1..4, or text too long;
 * -EIO when the store is unreachable. Nothing is written unless 0 is returned. */
int incidents_on_symptom(store_incidents_t *store, const struct incident_symptom *s,
                         struct incident_result *ret);

/* detected -> acknowledged. -ENOENT unknown id, -EALREADY already acknowledged, -EBUSY in a
 * later state (mitigated, resolved, closed). note may be NULL or "". */
int incidents_ack(store_incidents_t *store, uint64_t id, const char *actor, const char *note,
                  int64_t at_ms);

/* detected | acknowledged -> mitigated (impact contained); note required. -ENOENT, -EALREADY
 * already mitigated, -EBUSY resolved or closed. */
int incidents_mitigate(store_incidents_t *store, uint64_t id, const char *actor, const char *note,
                       int64_t at_ms);

/* detected | acknowledged | mitigated -> resolved; note is required (-EINVAL when empty).
 * -ENOENT unknown id, -EALREADY resolved or closed. */
int incidents_resolve(store_incidents_t *store, uint64_t id, const char *actor, const char *note,
                      int64_t at_ms);

/* Stores a version of the post-incident report. The first report of a resolved incident closes
 * it (timeline "closed"); a later one is a revision (timeline "report"). -EBUSY while the
 * incident is still open (resolve it first), -EINVAL empty or longer than VG_MAX_REPORT_BYTES,
 * -ENOENT. *ret_closed says whether this report closed it. */
int incidents_report(store_incidents_t *store, uint64_t id, const char *actor, const char *body,
                     int64_t at_ms, bool *ret_closed);

/* The latest report (*ret_draft false), or a draft in the document's template filled from the
 * incident and its timeline (*ret_draft true). Caller frees *ret_body. -ENOENT, -EIO. */
int incidents_report_text(store_incidents_t *store, uint64_t id, char **ret_body,
                          bool *ret_draft);

/* Asks whether the runbook's verify conditions hold for an incident (rules_verified's
 * contract: 1 verified with why, 0 not yet, negative never). */
typedef int (*incidents_verified_fn)(void *userdata, const char *runbook, const char *node,
                                     int64_t now_ms, char *why, size_t whylen);

/* Resolves every open incident whose runbook verifies (actor "vigil", note "verified: ...").
 * Returns how many were resolved, or a negative errno when the store is unreachable. */
int incidents_auto_resolve(store_incidents_t *store, incidents_verified_fn verified,
                           void *userdata, int64_t now_ms);

/* Newest first, at most limit; open_only keeps detected, acknowledged and mitigated. */
int incidents_list(store_incidents_t *store, bool open_only, uint64_t before_id, uint32_t limit,
                   int (*cb)(const struct store_incident *inc, void *userdata), void *userdata);

/* The incident into *ret and its timeline, in order, through cb (may be NULL). -ENOENT. */
int incidents_show(store_incidents_t *store, uint64_t id, struct store_incident *ret,
                   int (*cb)(const struct store_incident_event *ev, void *userdata),
                   void *userdata);

/* ---- steering by hand (issue 18) ---- */

/* An incident opened by an operator. Its fingerprint is "manual:<runbook>:<node>:<ms>" (no '/'):
 * symptoms never join it and it never resolves itself; an operator resolves it. */
struct incident_manual {
    const char *runbook; /* a runbook id */
    int severity;        /* 1..4 */
    const char *title;   /* non-empty, < STORE_INCIDENT_TITLE_MAX */
    const char *node;    /* NULL or "" = none; else the scope */
    const char *actor;   /* the operator's name */
    /* A practice drill (vigilctl drill, admin/drills.c): its drills row (020_drills.sql) is
       written in the same transaction, so the escalation never pages one unknowingly; live =
       the runbook's real policy is paged, marked [DRILL]. */
    bool drill, live;
};

/* Opens it (state detected, timeline "opened" by the actor); escalation picks it up like any
 * other. -EINVAL bad fields, -EEXIST the same fingerprint in the same millisecond. */
int incidents_open_manual(store_incidents_t *store, const struct incident_manual *m, int64_t at_ms,
                          uint64_t *ret_id);

/* Sets the severity by hand, up or down (note required: why). The response deadline follows
 * (a rise: the sooner of the current one and the new severity's from now; a fall: the new
 * severity's from the opening), and so does the escalation row when there is one: its pending
 * response deadline, and its policy (below). -ENOENT, -EALREADY same severity,
 * -EBUSY resolved or closed, -EINVAL. *ret_previous: the severity before. */
struct incident_policy_change {
    /* The escalation moves to `to` when it runs `from` (the old severity's route policy; a
     * runbook's own policy stays); its next level is then due when next_due says (the new
     * policy's delay after the escalation's start; 0 = nothing further). */
    const char *from, *to;
    int64_t (*next_due)(void *userdata, int level, int64_t started_at_ms, int repeats,
                        int64_t now_ms);
    void *userdata;
};
/* policy: NULL = the escalation keeps its policy. */
int incidents_set_severity(store_incidents_t *store, uint64_t id, int severity, const char *actor,
                           const char *note, const struct incident_policy_change *policy,
                           int64_t at_ms, int *ret_previous);

/* A private timeline note (kind note), in any state. -ENOENT, -EINVAL empty or too long. */
int incidents_note(store_incidents_t *store, uint64_t id, const char *actor, const char *text,
                   int64_t at_ms);

/* A status update in an operator's words: a status_updates row (021_status_updates.sql) and a
 * timeline event status_update. components_json: a JSON object {"name": "status"} ("{}" =
 * none); title: the public name ("" = keep). next_update_at_ms: the escalation's update timer
 * moves there (0 = leave it): at_ms makes the escalation tell this update to those paged and the
 * audiences at its next pass, and count the interval from then (escalate.c). -ENOENT, -EINVAL. */
struct incident_status_update {
    const char *text;
    bool public;
    const char *title;
    const char *components_json;
    int64_t next_update_at_ms;
};
int incidents_status_update(store_incidents_t *store, uint64_t id, const char *actor,
                            const struct incident_status_update *u, int64_t at_ms);

#endif
