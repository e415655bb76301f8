/*
 * Retention (retention.* in coordinator.yaml, docs/forensics.md "Retention and legal hold"):
 * a thread of its own runs a maintenance pass at start and every retention.interval, on the
 * maintenance connection (store_connect_maintenance), so neither a partition's lock wait nor a
 * batch of evidence removals ever holds up the main loop or ingest.
 *
 * A pass (store_retention.h): signal partitions created ahead and dropped once their day is
 * older than retention.signals, the default partition emptied of what it should not keep, and
 * the content of evidence older than retention.evidence removed unless its incident is open or
 * on legal hold (`vigilctl hold`). Every removal is an audit_log row. What a pass did is logged
 * (one line per removal, at info) and counted in /metrics (vigil_retention_*).
 *
 * The same thread removes the chunks of uploads that never completed, every RETENTION_PURGE_MS
 * (evidence.incomplete_grace after their request failed; store_evidence_purge_incomplete), so
 * that deletion too is the maintenance connection's, not the running coordinator's.
 */
#ifndef COORD_RETENTION_H
#define COORD_RETENTION_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct retention_config {
    int64_t signals_ms;          /* retention.signals */
    int64_t evidence_ms;         /* retention.evidence; 0 = forever */
    int64_t interval_ms;         /* retention.interval */
    int ahead_days;              /* retention.signals_ahead */
    int64_t incomplete_grace_ms; /* evidence.incomplete_grace */
};

#define RETENTION_PURGE_MS 2000

typedef struct retention retention_t;

/* Starts the thread, whose first pass runs at once; main is the store whose database it
 * maintains (borrowed for the call). NULL with err set when it cannot. */
retention_t *retention_start(const store_t *main, const struct retention_config *cfg, char *err,
                             size_t errlen);
/* Stops the thread (a pass in progress finishes its statement first) and frees. Accepts NULL. */
void retention_destroy(retention_t **self_p);

#endif
