/*
 * Checkpoints to the audit channel (evidence.checkpoint_webhook in coordinator.yaml,
 * docs/forensics.md "Checkpoints"): every checkpoint the coordinator signs — at its interval, on
 * `vigilctl evidence checkpoint`, for every export — is also POSTed to a URL outside the
 * coordinator's machine, so that a copy exists beyond the reach of root on that host.
 *
 * The body is JSON: {"kind": "vigil.checkpoint", "issued_at_ms": N, "checkpoint": "<the signed
 * text, common/checkpoint.h>"} (Content-Type application/json). A 2xx answer is delivered.
 * Anything else is a failure: logged once per streak of failures (and once when it answers
 * again), counted in vigil_checkpoint_webhook_total{result="sent"|"failed"}, and the checkpoint
 * is kept and sent again, oldest first, when the next checkpoint is issued — not before, so a
 * dead receiver costs one attempt per checkpoint interval. At most CHECKPOINT_HOOK_PENDING_MAX
 * wait; past that the oldest is dropped (logged; the files in state_dir/checkpoints keep them
 * all).
 *
 * A thread of its own sends them (libcurl through common/curl_multi.h, as the watchdog does), so
 * a slow receiver never holds the admin thread that issues checkpoints; checkpoint_hook_post
 * only queues.
 */
#ifndef COORD_CHECKPOINT_HOOK_H
#define COORD_CHECKPOINT_HOOK_H

#include <stddef.h>
#include <stdint.h>

#define CHECKPOINT_HOOK_PENDING_MAX 64
#define CHECKPOINT_HOOK_TIMEOUT_MS 10000

typedef struct checkpoint_hook checkpoint_hook_t;

/* Starts the sender (url copied). NULL with err set when it cannot. */
checkpoint_hook_t *checkpoint_hook_start(const char *url, char *err, size_t errlen);
/* Stops the thread (a request in flight is cancelled) and frees. Accepts NULL. */
void checkpoint_hook_destroy(checkpoint_hook_t **self_p);

/* Queues text (a checkpoint, copied) behind those still waiting and wakes the sender, which
 * sends them all in order. Any thread. */
void checkpoint_hook_post(checkpoint_hook_t *self, const char *text, int64_t issued_at_ms);

#endif
