/*
 * The promql evidence kind: a runbook's investigate entry {kind: promql, query: EXPR} (or
 * `vigilctl collect promql --arg query=EXPR`) is captured by the coordinator itself, not by an
 * agent. The collection has one target whose agent id is VG_COORDINATOR_AGENT_ID (no agent id
 * can be that name) on node "coordinator"; the PromQL poller's thread asks Prometheus
 * (promql_capture), and the answer becomes that target's artifact through the vault's one
 * completion path (store_evidence_local): chunks, SHA-256 re-computed over the stored bytes,
 * then the chain. `vigilctl evidence verify` covers it like any other row.
 *
 * The artifact (docs/forensics.md): one line of JSON, then the answer's raw bytes as
 * Prometheus sent them (never parsed, at most PROMQL_CAPTURE_MAX_ANSWER of them):
 *
 *   {"format":"vigil-promql/1","query":EXPR,"time":"2026-12-07T01:02:03.456Z",
 *    "time_ms":N,"url":"http://prometheus:9090/api/v1/query?query=...&time=...",
 *    "http_status":200,"answer_bytes":N,"truncated":false}\n
 *   <answer>
 *
 * `head -n 1` is the header, `tail -n +2` the answer. A capture that gets no answer (Prometheus
 * not configured, refused, timed out, or it refused the expression) fails the target with the
 * reason, which the incident's timeline shows.
 */
#ifndef COORD_PROMQL_EVIDENCE_H
#define COORD_PROMQL_EVIDENCE_H

#include <stddef.h>
#include <stdint.h>

#include "promql.h"
#include "store.h"

#define PROMQL_EVIDENCE_NODE "coordinator" /* the node its target and artifact name */
#define PROMQL_EVIDENCE_FORMAT "vigil-promql/1"
/* Why a promql collection fails where no Prometheus is configured. */
#define PROMQL_EVIDENCE_NOT_CONFIGURED                                                             \
    "Prometheus is not configured (prometheus.url in the coordinator's configuration)"

/* Starts collection_id's capture of query: 0, or the target has failed with the reason
 * (promql NULL: not configured; the capture queue full) and a negative errno says so. */
int promql_evidence_start(promql_t *promql, store_t *store, uint64_t collection_id,
                          const char *query);

/* The finished captures: each becomes its target's artifact in the vault, or its failure;
 * logged and counted like an agent's (evidence_report). */
void promql_evidence_settle(promql_t *promql, store_t *store);

/* The artifact of a capture that got an answer (capture->reason NULL): header line and answer,
 * malloc'd. 0, -EINVAL (the query is not UTF-8) or -ENOMEM. */
int promql_evidence_artifact(const struct promql_capture *capture, uint8_t **ret_data,
                             size_t *ret_len);

#endif
