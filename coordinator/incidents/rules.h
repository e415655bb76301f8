/*
 * The rule-evaluation engine: samples in, symptom state transitions out.
 *
 * Given a runbook set (runbook.h) and a stream of samples, rules decides which symptoms hold,
 * where (per node or across nodes), at which level (warning / critical), honouring `for`
 * durations, hysteresis (`clear`), scope (node / any / all / fraction), ratios over windows
 * and absence. It only reports transitions; incidents, dedup storage and paging consume them.
 *
 * Semantics (docs/runbook-format.md should repeat them for runbook authors):
 * - Series: a sample's identity is (node, signal name, labels in the order sent). A condition
 *   matches a sample when the signal name is equal and every label of the match is present
 *   with an equal value; extra labels are fine.
 * - Threshold: per node, the worst latest value of the matching series that is fresher than
 *   `stale_ms` (the highest for GT/GE, the lowest for LT/LE).
 * - Hysteresis: entering warning needs the value past `warning`; staying needs it not back past
 *   `clear` (NAN = warning). Critical clears back past critical shifted by |warning - clear|.
 * - `for`: a level is reached only after its condition held continuously for for_ms (a dip
 *   resets it); falling to a lower level or OK happens at once (hysteresis keeps it stable).
 * - Scope across nodes: the nodes counted are the up nodes with a fresh matching sample;
 *   any = at least one holds, all = every counted node holds, fraction = at least that share.
 *   severity_all applies when every counted node holds; a change of severity with the same
 *   level (some nodes -> all nodes) is a transition too.
 * - Ratio: sum(numerator) / sum(denominator) * 100. The agents send log counts *within their
 *   own 60 s window*, re-sent each interval (not monotonic counters), so each series
 *   contributes its latest sample if that sample is within `window_ms`, and series are summed
 *   across nodes. The ratio is therefore over the agents' last window; `window_ms` bounds how
 *   old a contribution may be. No denominator (0) = no data = OK. Scope node: per node ratio.
 * - Absence: per node, the silence since the last matching sample (or since rules_node_up when
 *   none came) exceeding absent_ms holds, and a node known down holds at once. Its level is
 *   critical; value = the silence in seconds. Nothing is absent during the start-up grace
 *   (rules_set_absence_grace).
 * - PromQL: not evaluated here. A poller feeds each result as a sample named
 *   "promql.<runbook id>.<symptom id>" on node "" (rules_promql_signal), and the condition is a
 *   threshold over that series.
 * - Nodes: a sample from an unknown node registers it as up. A node that is down does not
 *   count for threshold / ratio (its per-node instances return to OK: no data).
 */
#ifndef COORDINATOR_RULES_H
#define COORDINATOR_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "runbook.h"

#define RULES_NODE_MAX 64         /* node names are shorter than this (longer: refused) */
#define RULES_FINGERPRINT_MAX 320 /* runbook id + symptom id + node, '/'-separated */

enum rule_state { RULE_OK = 0, RULE_WARNING = 1, RULE_CRITICAL = 2 };

/* One transition of one symptom instance (a fingerprint). */
struct rule_event {
    const struct rb_runbook *runbook; /* borrowed from the set in force */
    const struct rb_symptom *symptom;
    char fingerprint[RULES_FINGERPRINT_MAX]; /* "<runbook>/<symptom>/<node or empty>": dedup key */
    enum rule_state state, previous;
    enum rb_severity severity, previous_severity; /* symptom severity, severity_all on all nodes */
    double value;              /* what decided: the worst node's value, a ratio in percent,
                                  seconds of silence for absence; NAN = no data */
    size_t nodes_firing;       /* nodes holding at least warning */
    size_t nodes_total;        /* nodes counted */
    char node[RULES_NODE_MAX]; /* RB_SCOPE_NODE: the node; else "" */
    const char *const *firing; /* the nodes holding at least warning (n_firing of them; the
                                  node itself for scope node), valid like the event */
    size_t n_firing;
    char reason[200];          /* one line for the incident timeline */
    int64_t since_ms;          /* when the condition started to hold (0 for OK) */
    int64_t at_ms;             /* the evaluation time */
};

struct rules_limits {
    size_t max_nodes;  /* nodes tracked; more are dropped and counted */
    size_t max_series; /* series across all symptoms */
    int64_t stale_ms;  /* a threshold series older than this is ignored and forgotten */
};

struct rules_stats {
    uint64_t samples;           /* rules_observe calls */
    uint64_t samples_unwatched; /* no symptom reads that signal: one hash lookup */
    uint64_t samples_matched;   /* stored in at least one symptom's series */
    uint64_t samples_refused;   /* hostile input: NULL name, bad node name, NaN value */
    uint64_t series;            /* live series */
    uint64_t series_dropped;    /* new series refused by max_series */
    uint64_t nodes;             /* known nodes */
    uint64_t nodes_dropped;     /* new nodes refused by max_nodes */
    uint64_t evaluations;       /* symptom evaluations */
    uint64_t events;            /* transitions reported */
    uint64_t events_deferred;   /* transitions postponed for lack of memory */
};

typedef struct rules rules_t;

/* limits NULL = defaults (1024 nodes, 200000 series, 5 min stale). set outlives the engine. */
rules_t *rules_new(const struct rb_set *set, const struct rules_limits *limits);
void rules_destroy(rules_t **self_p);

/* Swaps in a reloaded set; state is kept for symptoms whose (runbook id, symptom id) still
   exist (and their series when the condition reads the same signals). 0 or -ENOMEM (the old
   set stays in force). */
int rules_set_runbooks(rules_t *self, const struct rb_set *set);

void rules_observe(rules_t *self, const char *node, const char *name, const struct rb_label *labels,
                   size_t nlabels, double value, int64_t ts_ms);
/* The same for a sample measured while a remediation command ran on the node (Signal.command_id):
 * it keeps the node present (absence), lets a symptom fall and a verify condition hold, but cannot
 * raise a symptom — a node whose deciding sample is such counts at most at the level it had — so
 * no rule reacts to Vigil's own action. The next untagged sample decides as usual. */
void rules_observe_during_command(rules_t *self, const char *node, const char *name,
                                  const struct rb_label *labels, size_t nlabels, double value,
                                  int64_t ts_ms);

/* The nodes that exist: an agent became active / was lost. */
void rules_node_up(rules_t *self, const char *node, int64_t ts_ms);
void rules_node_down(rules_t *self, const char *node, int64_t ts_ms);

/* Absence holds nowhere until grace_ms after the engine's first evaluation: after a coordinator
 * restart the agents need a moment to reconnect, and a node not heard from yet (or marked lost
 * before it got through) is not a lost node. 0 = no grace. Set before the first evaluation. */
void rules_set_absence_grace(rules_t *self, int64_t grace_ms);

/* Evaluates every symptom at now_ms; *ret_events points to the transitions (owned by the
   engine, valid until the next call). Returns how many. */
size_t rules_evaluate(rules_t *self, int64_t now_ms, const struct rule_event **ret_events);

/*
 * Verification: whether the incident of runbook_id on node ("" = the incident across nodes)
 * may resolve itself at now_ms. Its own symptom instances (per node for "node", the ones across
 * nodes for "") must all be OK, and every verify entry of the runbook must have held
 * continuously for its hold — counted from when the entry started to hold, and no earlier than
 * the last moment one of those symptoms was not OK. Verify entries are evaluated with the
 * symptoms, by rules_evaluate (their semantics: docs/runbook-format.md, "verify").
 * 1 = verified (why: what held), 0 = not yet (why: what is missing), -ENOENT = the runbook is
 * not in the set or has no verify entries (never resolves itself), -EINVAL.
 */
int rules_verified(const rules_t *self, const char *runbook_id, const char *node, int64_t now_ms,
                   char *why, size_t whylen);

void rules_stats(const rules_t *self, struct rules_stats *ret_stats);

/* The synthetic signal a PromQL poller feeds for a symptom: "promql.<runbook>.<symptom>".
   0, or -ENAMETOOLONG. */
int rules_promql_signal(const char *runbook_id, const char *symptom_id, char *buf, size_t size);
/* The same for the runbook's verify entry at index: "promql.<runbook>.verify-<index>". */
int rules_promql_verify_signal(const char *runbook_id, size_t index, char *buf, size_t size);

const char *rules_state_name(enum rule_state state);

#endif
