/*
 * Alert thresholds, evaluated on the agent so a crossing leaves at once instead of waiting for
 * the next batch. Defaults are the runbook's alert table (docs/incident-response-runbooks.md):
 * CPU 80/95 %, memory 85/95 %, disk 80/90 %, response time 2/5 s, error rate 1/5 %.
 *
 * Each series (signal name + labels) remembers its state. A value at or beyond a level enters
 * that state at once; it leaves only when the value is back past the level by the rule's
 * clear margin (hysteresis), so a value hovering at the line does not flap.
 */
#ifndef AGENT_THRESHOLDS_H
#define AGENT_THRESHOLDS_H

#include <stdbool.h>
#include <stddef.h>

#include "vigil.pb-c.h"

struct threshold_rule {
    const char *signal; /* exact signal name, e.g. "host.cpu.busy_pct" */
    double warning;
    double critical;
    double clear_margin; /* hysteresis, in the signal's unit */
    bool below;          /* true: lower is worse (e.g. a hit rate) */
};

typedef struct thresholds thresholds_t;

/* Copies the rules (their signal names must outlive the object: static tables or config). */
thresholds_t *thresholds_new(const struct threshold_rule *rules, size_t nrules);
void thresholds_destroy(thresholds_t **self_p);

/*
 * The state of one sample of series_key (name + labels, as the caller renders it) and whether
 * it differs from the series' previous state (a crossing). Signals without a rule are
 * SIGNAL_STATE_NONE and never change.
 */
Vigil__SignalState thresholds_eval(thresholds_t *self, const char *name, const char *series_key,
                                   double value, bool *ret_changed);

/* The rule for a signal name, or NULL. */
const struct threshold_rule *thresholds_rule(const thresholds_t *self, const char *name);

#endif
