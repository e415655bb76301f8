/*
 * Retention and legal hold (026_retention.sql, docs/forensics.md "Retention and legal hold").
 *
 * The maintenance connection: migrations and maintenance run as the database's owner role on a
 * connection of their own, never on a connection the running coordinator reads and writes
 * with (DESIGN.md, "Store"). Until the roles land it uses the coordinator's connection string.
 *
 * Signals are partitioned by day (UTC). A pass creates the partitions of today and the next
 * ahead_days days, moves rows the default partition holds into their day's partition when that
 * day is kept, drops every partition whose whole day is older than the signals' retention and
 * deletes the default partition's rows older than it. Evidence whose retention ended and whose
 * incident is resolved and not on hold loses its content (its chunks); its vault row and chain
 * link stay, with an evidence_removals row naming the audit row written with it. Every removal
 * writes an audit_log row in its own transaction, so it is in the audit chain.
 *
 * Each step is its own short transaction under a lock timeout (STORE_RETENTION_LOCK_TIMEOUT):
 * a partition change that cannot get its lock at once waits for the next pass instead of
 * holding up ingest.
 */
#ifndef COORD_STORE_RETENTION_H
#define COORD_STORE_RETENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define STORE_RETENTION_ACTOR "vigil:retention"
#define STORE_RETENTION_LOCK_TIMEOUT "2s"

/* A connection of its own for maintenance (application_name vigil-coordinator-maintenance),
 * to the database main connects to; connects on first use. NULL when out of memory. */
store_t *store_connect_maintenance(const store_t *main);

struct store_retention_policy {
    int64_t signals_ms;    /* signals older than this go; a whole day at least */
    int64_t evidence_ms;   /* 0 = evidence is kept forever */
    int ahead_days;        /* partitions made ahead of today */
    uint32_t evidence_max; /* artifacts removed at most per pass */
};

/* What one pass did (added to), and what it found. */
struct store_retention_report {
    uint64_t partitions_created, partitions_dropped;
    uint64_t signal_rows_dropped, signal_bytes_dropped; /* rows may be the planner's estimate */
    uint64_t default_rows_moved, default_rows_deleted;
    uint64_t default_rows_left; /* rows the default partition still holds after the pass */
    int64_t default_oldest_ms, default_newest_ms; /* their times (0 when none) */
    uint64_t evidence_removed, evidence_bytes_removed;
    uint64_t failures; /* steps that failed (logged); the next pass tries again */
};

/* The signals' part of a pass at now_ms. 0, or the first step's negative errno when the
 * database is unreachable (later steps are skipped). */
int store_retention_signals(store_t *self, const struct store_retention_policy *policy,
                            int64_t now_ms, struct store_retention_report *report);
/* The evidence part. Nothing to do when policy->evidence_ms is 0. */
int store_retention_evidence(store_t *self, const struct store_retention_policy *policy,
                             int64_t now_ms, struct store_retention_report *report);

/* Whether retention removed artifact id's content: 0 with when and the audit row that says so,
 * -ENOENT when it did not (or there is no such artifact). Any connection. */
int store_evidence_removal(store_t *self, uint64_t id, int64_t *ret_removed_at_ms,
                           uint64_t *ret_audit_id);

/* ---- legal hold ---- */

#define STORE_HOLD_REASON_MAX 1024

/* An incident's hold as the newest holds row says. */
struct store_hold {
    uint64_t incident_id;
    bool held;
    char actor[192]; /* "operator:NAME" who placed or released it */
    int64_t at_ms;
    char reason[STORE_HOLD_REASON_MAX + 1];
    /* Listing only: the incident's title and state, and its artifacts in the vault with the
     * bytes they hold (removed ones not counted). */
    char title[256];
    char state[16];
    uint64_t artifacts, bytes;
};

/* Places (held) or releases incident_id's hold, with its audit row and a timeline note (name:
 * the operator's name), in one transaction; *ret (may be NULL) is the hold as it now is.
 * -ENOENT: no such incident; -EALREADY: already in that state (*ret says since when, by whom);
 * -EINVAL: reason not UTF-8 or too long. */
int store_hold_set(store_t *self, uint64_t incident_id, bool held, const char *actor,
                   const char *name, const char *reason, struct store_hold *ret);
/* Incidents on hold now (all: every incident that ever had one, with its newest row), newest
 * first, at most max: *ret malloc'd (NULL when none), *ret_n. incident_id != 0: that one only. */
int store_holds_list(store_t *self, bool all, uint64_t incident_id, size_t max,
                     struct store_hold **ret, size_t *ret_n);

#endif
