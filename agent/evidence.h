/*
 * Evidence on demand: `vigilctl collect` reaches the agent as a CollectRequest; the agent
 * captures the artifact on a worker thread, hashing it (SHA-256) as it is written, and sends
 * it as EvidenceChunk messages through the spool (durable, never dropped by the overflow
 * policy), so the coordinator can recompute the hash before it stores it. The sending
 * overlaps the capture: each full chunk is spooled as soon as it is written; the last one,
 * with the size and the hash, once the capture is complete. A capture that fails after some
 * chunks went ends with a chunk carrying the error.
 *
 * Threads: evidence_request and evidence_poll run on the agent's main thread, the captures
 * on one worker thread (one capture at a time, a bounded queue). Kinds are capture
 * functions the caller registers (agent/evidence_kinds.c); they run on the worker thread and
 * must not touch state the main thread mutates.
 */
#ifndef AGENT_EVIDENCE_H
#define AGENT_EVIDENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "probe.h" /* struct artifact_writer */
#include "spool.h"
#include "vigil.pb-c.h"

#define EVIDENCE_MAX_ARGS 16
#define EVIDENCE_ARG_KEY_MAX 64
#define EVIDENCE_ARG_VALUE_MAX 1024

/* A request's arguments, copied out of the message: k=v pairs from `vigilctl --arg`. */
struct evidence_args {
    size_t count;
    char key[EVIDENCE_MAX_ARGS][EVIDENCE_ARG_KEY_MAX];
    char value[EVIDENCE_MAX_ARGS][EVIDENCE_ARG_VALUE_MAX];
};

/* The value of key, or NULL. */
const char *evidence_arg(const struct evidence_args *args, const char *key);

/* 0 when every argument's key is in allowed (NULL-terminated); else -EINVAL with err set. */
int evidence_args_check(const struct evidence_args *args, const char *const *allowed, char *err,
                        size_t errlen);

/* Writes the artifact to out. Returns 0, or a negative errno with err set (a refusal such as
 * a path outside the allow-list, or a failure). A write that returns -EFBIG means the size
 * limit was reached: stop and return it; the artifact is kept, marked truncated. */
typedef int (*evidence_capture_fn)(void *userdata, const struct evidence_args *args,
                                   const struct artifact_writer *out, char *err, size_t errlen);

struct evidence_kind {
    const char *name;
    evidence_capture_fn capture;
    void *userdata;
};

struct evidence_options {
    const char *work_dir; /* temporary artifact files (unlinked while open) */
    uint64_t max_bytes;   /* an artifact stops here, marked truncated */
    uint64_t chunk_bytes; /* bytes per EvidenceChunk message */
    const char *sender;   /* this agent's id, for the envelopes */
};

struct evidence_stats {
    uint64_t requests;  /* CollectRequests received */
    uint64_t refused;   /* unknown kind, bad arguments, not allowed, busy, expired */
    uint64_t failed;    /* a capture that failed while running */
    uint64_t stored;    /* artifacts handed to the spool in full */
    uint64_t bytes;     /* their bytes */
    uint64_t truncated; /* artifacts cut at max_bytes */
};

typedef struct evidence evidence_t;

evidence_t *evidence_new(const struct evidence_kind *kinds, size_t nkinds,
                         const struct evidence_options *opt, char *err, size_t errlen);
void evidence_destroy(evidence_t **self_p);

/* An eventfd for the main loop's poll set: readable when a capture has another full chunk
 * written, or finished (not on every write). */
int evidence_fd(const evidence_t *self);

/* Main thread: accept or refuse a request. A refusal is answered at once with an
 * EvidenceChunk carrying the error (through evidence_poll). */
void evidence_request(evidence_t *self, const Vigil__CollectRequest *req);

/* Main thread: moves captures into the spool, one at a time in the order they started (and
 * refusals), a bounded number of chunks per call so a large artifact does not stall the loop.
 * Returns true when more work is waiting (call again without sleeping); false when the rest
 * waits for the capture thread (evidence_fd wakes the loop). */
bool evidence_poll(evidence_t *self, spool_t *spool);

void evidence_stats(evidence_t *self, struct evidence_stats *ret);

#endif
