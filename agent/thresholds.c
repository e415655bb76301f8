#include "thresholds.h"

#include <czmq.h>
#include <stdlib.h>
#include <string.h>

/* Bound on remembered series: beyond it every series is forgotten and starts over at OK. A
 * series still beyond its level reports that as a crossing again, so nothing is hidden. */
#define MAX_SERIES 8192

struct thresholds {
    struct threshold_rule *rules;
    size_t nrules;
    zhashx_t *series; /* series key -> state, stored as (void *)(uintptr_t)state */
};

thresholds_t *thresholds_new(const struct threshold_rule *rules, size_t nrules)
{
    thresholds_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->rules = calloc(nrules ? nrules : 1, sizeof(*rules));
    self->series = zhashx_new();
    if (!self->rules || !self->series) {
        thresholds_destroy(&self);
        return NULL;
    }
    memcpy(self->rules, rules, nrules * sizeof(*rules));
    self->nrules = nrules;
    return self;
}

void thresholds_destroy(thresholds_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    thresholds_t *self = *self_p;
    free(self->rules);
    zhashx_destroy(&self->series);
    free(self);
    *self_p = NULL;
}

const struct threshold_rule *thresholds_rule(const thresholds_t *self, const char *name)
{
    for (size_t i = 0; i < self->nrules; i++) {
        if (strcmp(self->rules[i].signal, name) == 0)
            return &self->rules[i];
    }
    return NULL;
}

/* "Worse than level" in the rule's direction, and "back past level by the margin". */
static bool beyond(const struct threshold_rule *r, double value, double level)
{
    return r->below ? value <= level : value >= level;
}

static bool cleared(const struct threshold_rule *r, double value, double level)
{
    return r->below ? value > level + r->clear_margin : value < level - r->clear_margin;
}

Vigil__SignalState thresholds_eval(thresholds_t *self, const char *name, const char *series_key,
                                   double value, bool *ret_changed)
{
    const struct threshold_rule *r = thresholds_rule(self, name);
    *ret_changed = false;
    if (!r)
        return VIGIL__SIGNAL_STATE__SIGNAL_STATE_NONE;

    void *stored = zhashx_lookup(self->series, series_key);
    Vigil__SignalState prev =
        stored ? (Vigil__SignalState)(uintptr_t)stored : VIGIL__SIGNAL_STATE__SIGNAL_STATE_OK;
    Vigil__SignalState next;

    if (beyond(r, value, r->critical))
        next = VIGIL__SIGNAL_STATE__SIGNAL_STATE_CRITICAL;
    else if (prev == VIGIL__SIGNAL_STATE__SIGNAL_STATE_CRITICAL && !cleared(r, value, r->critical))
        next = VIGIL__SIGNAL_STATE__SIGNAL_STATE_CRITICAL;
    else if (beyond(r, value, r->warning))
        next = VIGIL__SIGNAL_STATE__SIGNAL_STATE_WARNING;
    else if (prev >= VIGIL__SIGNAL_STATE__SIGNAL_STATE_WARNING && !cleared(r, value, r->warning))
        next = VIGIL__SIGNAL_STATE__SIGNAL_STATE_WARNING;
    else
        next = VIGIL__SIGNAL_STATE__SIGNAL_STATE_OK;

    if (next != prev || !stored) {
        if (!stored && zhashx_size(self->series) >= MAX_SERIES)
            zhashx_purge(self->series);
        zhashx_update(self->series, series_key, (void *)(uintptr_t)next);
    }
    *ret_changed = next != prev;
    return next;
}
