#include "correlate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "metrics.h"
#include "runbook_load.h"

/* Labels of one sample passed to the engine; a sample with more is refused by the wire
 * limits long before, and here its extra labels would only be ignored by the match. */
#define OBSERVE_MAX_LABELS 32

struct correlate {
    char *dir;          /* "" = no runbooks */
    struct rb_set *set; /* in force; the engine borrows it */
    rules_t *rules;
    uint64_t evaluate_ns; /* time spent in rules_evaluate, for vigil_rule_evaluation_seconds */
    correlate_event_fn on_event;
    void *userdata;
};

correlate_t *correlate_new(const char *dir, char *err, size_t errlen)
{
    correlate_t *self = calloc(1, sizeof(*self));
    if (!self || !(self->dir = strdup(dir ? dir : ""))) {
        snprintf(err, errlen, "runbooks: out of memory");
        goto err_free;
    }
    if (self->dir[0]) {
        self->set = runbooks_load_dir(self->dir, err, errlen);
        if (!self->set)
            goto err_free;
    }
    self->rules = rules_new(self->set, NULL);
    if (!self->rules) {
        snprintf(err, errlen, "runbooks: out of memory for the rule engine");
        goto err_free;
    }
    metrics_runbooks_loaded(correlate_runbook_count(self));
    return self;

err_free:
    correlate_destroy(&self);
    return NULL;
}

void correlate_destroy(correlate_t **self_p)
{
    correlate_t *self = self_p ? *self_p : NULL;
    if (!self)
        return;
    rules_destroy(&self->rules); /* before the set it borrows */
    runbooks_free(&self->set);
    free(self->dir);
    free(self);
    *self_p = NULL;
}

void correlate_set_handler(correlate_t *self, correlate_event_fn fn, void *userdata)
{
    self->on_event = fn;
    self->userdata = userdata;
}

int correlate_reload(correlate_t *self, char *err, size_t errlen)
{
    if (self->dir[0] == '\0')
        return 0;
    struct rb_set *fresh = runbooks_load_dir(self->dir, err, errlen);
    if (!fresh)
        return -EINVAL;
    int r = rules_set_runbooks(self->rules, fresh);
    if (r < 0) {
        snprintf(err, errlen, "runbooks: out of memory swapping in the reloaded set");
        runbooks_free(&fresh);
        return r;
    }
    /* The engine reads the fresh set now; the old one is no longer referenced. */
    runbooks_free(&self->set);
    self->set = fresh;
    metrics_runbooks_loaded(correlate_runbook_count(self));
    return 0;
}

size_t correlate_runbook_count(const correlate_t *self)
{
    return self->set ? self->set->n : 0;
}

const char *correlate_dir(const correlate_t *self)
{
    return self->dir;
}

const struct rb_set *correlate_runbooks(const correlate_t *self)
{
    return self->set;
}

size_t correlate_observe(correlate_t *self, const char *node, const Vigil__SignalBatch *batch)
{
    struct rb_label labels[OBSERVE_MAX_LABELS];
    struct rules_stats before, after;

    if (!self->set || !batch)
        return 0;
    rules_stats(self->rules, &before);
    for (size_t i = 0; i < batch->n_signals; i++) {
        const Vigil__Signal *s = batch->signals[i];
        size_t n = s->n_labels < OBSERVE_MAX_LABELS ? s->n_labels : OBSERVE_MAX_LABELS;
        /* cppcheck-suppress knownConditionTrueFalse ; n comes from the message */
        for (size_t k = 0; k < n; k++) {
            labels[k].key = s->labels[k]->key;
            labels[k].value = s->labels[k]->value;
        }
        if (s->command_id && s->command_id[0])
            rules_observe_during_command(self->rules, node, s->name, labels, n, s->value,
                                         s->ts_ms);
        else
            rules_observe(self->rules, node, s->name, labels, n, s->value, s->ts_ms);
    }
    rules_stats(self->rules, &after);
    return (size_t)(after.samples_matched - before.samples_matched);
}

void correlate_observe_value(correlate_t *self, const char *node, const char *name, double value,
                             int64_t ts_ms)
{
    if (!self->set)
        return;
    rules_observe(self->rules, node, name, NULL, 0, value, ts_ms);
}

void correlate_node_up(correlate_t *self, const char *node, int64_t ts_ms)
{
    rules_node_up(self->rules, node, ts_ms);
}

void correlate_node_down(correlate_t *self, const char *node, int64_t ts_ms)
{
    rules_node_down(self->rules, node, ts_ms);
}

void correlate_set_absence_grace(correlate_t *self, int64_t grace_ms)
{
    rules_set_absence_grace(self->rules, grace_ms);
}

size_t correlate_evaluate(correlate_t *self, int64_t now_ms)
{
    const struct rule_event *events = NULL;

    if (!self->set)
        return 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t n = rules_evaluate(self->rules, now_ms, &events);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    self->evaluate_ns += (uint64_t)((t1.tv_sec - t0.tv_sec) * INT64_C(1000000000) +
                                    (t1.tv_nsec - t0.tv_nsec));
    struct rules_stats st;
    rules_stats(self->rules, &st);
    metrics_rule_engine(&(struct metrics_rule_engine){st.samples, st.samples_matched,
                                                      st.evaluations, st.series,
                                                      st.series_dropped, self->evaluate_ns});
    for (size_t i = 0; i < n; i++) {
        metrics_symptom_event(rules_state_name(events[i].state));
        if (self->on_event)
            self->on_event(self->userdata, &events[i]);
    }
    return n;
}

int correlate_verified(void *self, const char *runbook, const char *node, int64_t now_ms,
                       char *why, size_t whylen)
{
    const correlate_t *c = self;
    return rules_verified(c->rules, runbook, node, now_ms, why, whylen);
}

void correlate_stats(const correlate_t *self, struct rules_stats *ret_stats)
{
    rules_stats(self->rules, ret_stats);
}
