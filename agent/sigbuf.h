/*
 * A batch of signal samples being gathered for one durable message.
 *
 * Collectors add samples (name, value, unit, labels, time, threshold state); the agent turns
 * the batch into one Envelope{SignalBatch} with the next spool sequence number. The batch
 * owns copies of every string, so collectors may pass stack buffers.
 */
#ifndef AGENT_SIGBUF_H
#define AGENT_SIGBUF_H

#include <stddef.h>
#include <stdint.h>

#include "vigil.pb-c.h"

struct sig_label {
    const char *key;
    const char *value;
};

typedef struct sigbuf sigbuf_t;

sigbuf_t *sigbuf_new(void);
void sigbuf_destroy(sigbuf_t **self_p);

/* Adds one sample; text that is not UTF-8 is escaped (sigbuf_escaped). Returns 0, -E2BIG when the
 * batch is full (VG_MAX_SIGNALS_PER_BATCH) or a label is too long for the protocol, -ENOMEM. */
int sigbuf_add(sigbuf_t *self, const char *name, double value, const char *unit, int64_t ts_ms,
               Vigil__SignalState state, const struct sig_label *labels, size_t nlabels);

/* Samples added from now on carry request_id as their command_id (NULL or "": none): they
 * were measured while that remediation command ran, or just after it (docs/remediation.md). */
void sigbuf_set_command(sigbuf_t *self, const char *request_id);

size_t sigbuf_count(const sigbuf_t *self);

/* Strings whose bytes were not UTF-8 and were escaped as \xNN (sigbuf_add), since
 * sigbuf_new: the agent reports it as agent.signals.escaped. */
uint64_t sigbuf_escaped(const sigbuf_t *self);

/* Packs the batch as Envelope{sender, seq, SignalBatch}; *ret is malloc'd. */
int sigbuf_encode(const sigbuf_t *self, const char *sender, uint64_t seq, uint8_t **ret,
                  size_t *ret_len);

/* Empties the batch, keeping its memory for the next one. */
void sigbuf_clear(sigbuf_t *self);

#endif
