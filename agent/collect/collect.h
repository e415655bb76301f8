/*
 * What every collector sees: a context to emit samples into.
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

#endif
