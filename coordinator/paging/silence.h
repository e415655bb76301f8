/*
 * Silences (issue 17): which incidents page no one for a while. An operator adds one with
 * `vigilctl silence --runbook R | --node N | --match KEY=VALUE --for 2h --reason TEXT`; the
 * store keeps it with its expiry (store_silence_add, 017_silences.sql), and escalate.c asks this
 * module, for every incident it would page about, whether a silence in force matches:
 *
 *   runbook R      the incident's runbook is R
 *   node N         the incident is N's: a per-node incident of N, or one across nodes whose
 *                  only node is N (one node in maintenance does not hide an outage on others;
 *                  escalate.c applies the same to a page group N's incident leads)
 *   KEY=VALUE      severity=SEV1..SEV4: the incident's severity; any other key: a label one of
 *                  the runbook's symptoms selects on (labels: {name: nginx} -> name=nginx)
 *
 * A silenced incident still opens, joins, resolves and goes on the timeline; only pages,
 * audiences, status updates and group messages are not sent while the silence is in force.
 *
 * Pure: no I/O, no state; any thread.
 */
#ifndef COORD_SILENCE_H
#define COORD_SILENCE_H

#include <stdbool.h>
#include <stddef.h>

#include "store.h"

#define SILENCE_LABEL_KEY_MAX 64
#define SILENCE_LABEL_VALUE_MAX 256

struct rb_runbook;

/* The first silence of list[0..n) that matches inc (rb: its runbook, NULL when it has none in
 * the set), or NULL. */
const struct store_silence *silence_match(const struct store_silence *list, size_t n,
                                          const struct store_incident *inc,
                                          const struct rb_runbook *rb);

/* A `--match` text: "KEY=VALUE", KEY 1..64 of [A-Za-z0-9_.-], VALUE 1..256 bytes without
 * control characters; severity=... must name SEV1..SEV4. */
bool silence_label_valid(const char *text);

#endif
