/*
 * Distinct signal series per agent, bounded.
 *
 * Every new series (a signal name with a new set of labels) is a row in signal_latest and state
 * in the rule engine for as long as the coordinator runs. An honest agent has a few hundred;
 * one that puts a counter or a request id in a label would grow both without end. The router
 * passes every signal batch through here before it is stored: samples of series an agent
 * already has always pass; new series pass until the agent has max_per_agent of them; past
 * that, samples of new series are dropped and counted.
 *
 * Series are remembered as 64-bit hashes (name, and each label pair, order-insensitive) in an
 * open-addressing table per agent: 16 bytes per series at most. The count starts again when the
 * coordinator restarts.
 */
#ifndef COORD_SERIES_CAP_H
#define COORD_SERIES_CAP_H

#include <stdbool.h>
#include <stddef.h>

#include "vigil.pb-c.h"

typedef struct series_cap series_cap_t;

series_cap_t *series_cap_new(size_t max_per_agent);
void series_cap_destroy(series_cap_t **self_p);

/* Removes (and frees) the samples of batch that would start a series past the agent's bound;
 * returns how many. *ret_first_refusal is set when this agent reached its bound just now. */
size_t series_cap_filter(series_cap_t *self, const char *agent_id, Vigil__SignalBatch *batch,
                         bool *ret_first_refusal);

/* The agent is gone (forgotten, revoked): its series are forgotten too. */
void series_cap_forget(series_cap_t *self, const char *agent_id);

#endif
