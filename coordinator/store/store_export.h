/*
 * What an incident's export bundle holds, read from the store (admin/export.c,
 * docs/forensics.md "Export bundles"): its stored artifacts with the vault's chain rows, its
 * timeline and its commands' reports with their chain links and canonical rows, its commands.
 *
 * Every reader takes the heads of a checkpoint just issued: rows past them (written since) are
 * left out, so whatever the bundle holds is covered by the checkpoint it carries. Rows come in
 * chain order; a callback that returns non-zero stops the walk (negative: an error, returned).
 */
#ifndef COORD_STORE_EXPORT_H
#define COORD_STORE_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Rows of each kind one bundle holds at most; an incident with more cannot be exported whole. */
#define STORE_EXPORT_ROWS_MAX 20000
#define STORE_EXPORT_ROWS_LIMIT_TEXT "20001" /* one more: -E2BIG tells it was cut */

/* The incident's header: -ENOENT when there is none. Strings borrowed for the call. */
struct store_export_incident {
    uint64_t id;
    const char *title, *runbook, *state, *opened_at, *scope_json;
    int severity;
};
int store_export_incident(store_t *self, uint64_t incident_id,
                          int (*cb)(const struct store_export_incident *inc, void *userdata),
                          void *userdata);

/* One stored artifact: its vault row's chain and the metadata bytes it hashed. */
struct store_export_artifact {
    uint64_t id, size;
    const char *node, *kind, *agent_id;
    uint8_t sha256[32], prev[32], chain[32];
    const char *meta; /* chain = SHA-256(prev ‖ sha256 ‖ meta): checked before the call */
    size_t meta_len;
};
/* The stored artifacts of the incident's collections and of its commands', up to max_id (the
 * checkpoint's evidence head), by id. -EPROTO when a row's chain does not recompute (the vault
 * is broken there: `vigilctl evidence verify` names it). */
int store_export_artifacts(store_t *self, uint64_t incident_id, uint64_t max_id,
                           int (*cb)(const struct store_export_artifact *a, void *userdata),
                           void *userdata);

/* One linked row of the timeline or command report chains. */
struct store_export_row {
    uint64_t seq, row_id;
    uint8_t prev[32], link[32];
    const char *canonical; /* the bytes the link hashed after prev */
    size_t canonical_len;
    const char *line; /* a line for people (timeline.txt, commands.txt), tab-separated */
};
/* table: "incident_events" (the incident's timeline) or "command_reports" (the reports of its
 * commands); up to max_seq (the checkpoint's head of that chain). */
int store_export_rows(store_t *self, const char *table, uint64_t incident_id, uint64_t max_seq,
                      int (*cb)(const struct store_export_row *row, void *userdata),
                      void *userdata);

/* The incident's commands, one tab-separated line each (id, created, requested by, node,
 * action, arguments, mode, state), oldest first. */
int store_export_commands(store_t *self, uint64_t incident_id,
                          int (*cb)(const char *line, void *userdata), void *userdata);

#endif
