/*
 * What every collector sees: a context to emit samples into, and the one interface
 * (struct collector) through which the agent's main loop runs them all.
 *
 * A collector measures and calls collect_emit for each sample; the context evaluates the
 * sample against the alert thresholds and adds it to the current batch. A crossing (a series
 * entering or leaving warning/critical) marks the batch for immediate sending.
 */
#ifndef AGENT_COLLECT_H
#define AGENT_COLLECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "probe.h" /* struct artifact_writer */
#include "sigbuf.h"
#include "thresholds.h"

struct collect_ctx {
    sigbuf_t *batch;
    thresholds_t *thresholds;
    int64_t now_ms;  /* wall clock time of this collection cycle */
    bool crossed;    /* set when a sample crossed a threshold: send now */
    uint64_t errors; /* samples that could not be added (counted, never fatal) */
};

/* Adds one sample. Labels are copied. Never fails the caller: errors are counted. */
void collect_emit(struct collect_ctx *ctx, const char *name, double value, const char *unit,
                  const struct sig_label *labels, size_t nlabels);

/* "name{k=v,k=v}": the key of one series, as thresholds and the coordinator see it. */
void collect_series_key(char *buf, size_t size, const char *name, const struct sig_label *labels,
                        size_t nlabels);

/*
 * A collector as the agent's main loop sees it: one interface for every source of samples,
 * after curl's protocol handlers and the probe modules' vtable (probe.h).
 *
 * Each collector module wraps its own object in one (host_collector, netstat_collector,
 * procwatch_collector, logtail_collector, probes_collector), which then owns the object.
 * agent/main.c keeps them in an array and iterates it: a timer for each one with run and an
 * interval, a handler for each one with an fd, destroy at exit. Every function is called on
 * the main thread only.
 *
 * run and on_readable return nothing on purpose: a collector never fails the agent. What it
 * could not read or emit is counted in ctx->errors (and in its own signals), and it tries
 * again next time.
 */
struct collector {
    const char *name;    /* static text: "host", "netstat", "processes", "logs", "probes" */
    int64_t interval_ms; /* run every interval_ms, the first time at once; 0 = never */
    /* One cycle: measure and collect_emit. NULL: nothing periodic (the probes' threads keep
     * their own time). */
    void (*run)(void *self, struct collect_ctx *ctx);
    /* An fd that becomes readable when samples arrive on their own (a watched process exited,
     * probe results queued), or -1. Asked once, after the collector is built. NULL: none. */
    int (*fd)(const void *self);
    /* The fd is readable: emit what arrived. Called with a context of its own, so a crossing
     * is sent at once. */
    void (*on_readable)(void *self, struct collect_ctx *ctx);
    /* Frees self and sets *self_p = NULL; accepts NULL. NULL: the collector owns nothing. */
    void (*destroy)(void **self_p);
    void *self;
};

#endif
