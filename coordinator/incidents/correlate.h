/*
 * Correlation: the owner of the runbook set in force and of the rule engine that reads it.
 *
 * The coordinator feeds it what it learns — signal batches once they are committed (router.c),
 * agents becoming active or lost — and evaluates it on the main loop's cadence. Every symptom
 * transition the engine reports is counted (vigil_symptom_events_total{state}) and handed to
 * one event handler: main.c's, which logs it and turns it into an incident (incidents.h).
 *
 * The set is loaded whole or not at all (runbook_load.h): a reload that fails leaves the last
 * good set running, and the caller decides how loudly to say so.
 *
 * Single-threaded: every function is called from the main loop.
 */
#ifndef COORD_CORRELATE_H
#define COORD_CORRELATE_H

#include <stddef.h>
#include <stdint.h>

#include "rules.h"
#include "vigil.pb-c.h"

typedef struct correlate correlate_t;

/*
 * The hook for whoever turns symptom transitions into incidents. Called from
 * correlate_evaluate, once per transition, in the engine's order. ev and everything it points
 * to (ev->runbook, ev->symptom) are borrowed: valid only during the call (a reload may free
 * the runbooks afterwards). Copy what must outlive it. The handler must not call back into
 * this correlate_t.
 */
typedef void (*correlate_event_fn)(void *userdata, const struct rule_event *ev);

/* Loads every runbook in dir (runbook_load.h); dir "" = no runbooks (nothing is ever
 * evaluated). NULL with err = "file:line:col: message" when the set does not load. */
correlate_t *correlate_new(const char *dir, char *err, size_t errlen);
void correlate_destroy(correlate_t **self_p);

/* Sets the one event handler (NULL = transitions are only counted). */
void correlate_set_handler(correlate_t *self, correlate_event_fn fn, void *userdata);

/* Reloads the directory given to correlate_new and swaps the new set into the engine.
 * 0, or a negative errno with err set; on failure the set in force is unchanged. */
int correlate_reload(correlate_t *self, char *err, size_t errlen);

/* Runbooks in the set in force; the directory they came from ("" = none configured). */
size_t correlate_runbook_count(const correlate_t *self);
/* The set in force (NULL = none), borrowed: valid until the next correlate_reload. */
const struct rb_set *correlate_runbooks(const correlate_t *self);
const char *correlate_dir(const correlate_t *self);

/* Every sample of a committed batch from node: one hash lookup each for signals that no
 * symptom reads. Returns how many samples a symptom stored (0: nothing to evaluate for). */
size_t correlate_observe(correlate_t *self, const char *node, const Vigil__SignalBatch *batch);

/* One sample without labels that did not come from an agent (the PromQL poller's answers, on
 * node ""). */
void correlate_observe_value(correlate_t *self, const char *node, const char *name, double value,
                             int64_t ts_ms);

/* An agent became active / was lost or revoked (wall-clock ms). */
void correlate_node_up(correlate_t *self, const char *node, int64_t ts_ms);
void correlate_node_down(correlate_t *self, const char *node, int64_t ts_ms);
/* runbooks.absence_grace: no absence symptom holds this long after the first evaluation
 * (rules_set_absence_grace), so a coordinator restart is not a fleet of lost nodes. */
void correlate_set_absence_grace(correlate_t *self, int64_t grace_ms);

/* Evaluates every symptom at now_ms (wall clock, like the samples' ts_ms), counts and hands
 * each transition to the handler. Returns how many transitions there were. */
size_t correlate_evaluate(correlate_t *self, int64_t now_ms);

/* Whether the incident of runbook on node ("" = across nodes) may resolve itself now
 * (rules_verified: 1 verified, 0 not yet, negative never; why says which). */
int correlate_verified(void *self, const char *runbook, const char *node, int64_t now_ms,
                       char *why, size_t whylen);

void correlate_stats(const correlate_t *self, struct rules_stats *ret_stats);

#endif
