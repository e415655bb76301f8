/*
 * Private to coordinator/store: the main connection's internals (struct store) and the helpers
 * shared by the files that run statements on it, one copy of each:
 *
 *   store.c           connection, open/close, errors, these helpers, other modules' connections
 *   store_agents.c    agents and the audit log
 *   store_operators.c operators: add, revoke, rotate, list (each with its audit row)
 *   store_ingest.c    the ingest transaction: message arrays, COPY of signal samples
 *   store_evidence.c  evidence: chunks, settling, the vault's chain, collections, expiry,
 *                     purge, listing and reading
 *   store_signals.c   listing the latest signals
 *
 * The other connections (incidents, escalations, on-call, Alertmanager, vault verification) keep
 * their own files and error mapping; store_incidents_conn.h is the incidents connection's.
 */
#ifndef COORD_STORE_INTERNAL_H
#define COORD_STORE_INTERNAL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "artifact_hash.h"
#include "embedded.h"
#include "store.h"

/* Timestamps PostgreSQL and we both render plainly: 0001-01-01 .. 9999-12-31 (UTC). */
#define STORE_TS_MIN_MS (-62135596800000LL)
#define STORE_TS_MAX_MS (253402300799999LL)

/* A growing byte buffer; an allocation failure is sticky and checked once at the end. */
struct store_buf {
    char *data;
    size_t len, cap;
    bool oom;
};

struct store {
    PGconn *conn;
    char *conninfo;               /* store.url, or the embedded cluster's coordinator role */
    char *owner_conninfo;         /* migrations and maintenance (roles.h); NULL = conninfo */
    embedded_pg_t *pg;            /* non-NULL when we started (or adopted) a private cluster */
    const char *application_name; /* what pg_stat_activity shows for this connection */
    struct store_buf
        copy; /* ingest's COPY data, kept between batches (at most a chunk and a row) */
    struct store_followups followups; /* committed, not yet taken (store_followups_take) */
    struct artifact_hashes uploads;   /* SHA-256 of artifacts being stored (artifact_hash.h) */
    bool chunk_insert_prepared;       /* on this connection (store_evidence.c); false after a
                                         reconnect */
};

/* ---- buffers and PostgreSQL array literals ---- */

bool store_buf_reserve(struct store_buf *b, size_t extra);
void store_buf_put(struct store_buf *b, const char *s, size_t n);
void store_buf_puts(struct store_buf *b, const char *s);
void store_buf_putc(struct store_buf *b, char c);
void store_buf_free(struct store_buf *b);

/* An array literal is built element by element: store_array_sep before element i ('{' before
 * the first, ',' before the others), then the element; the caller closes it with '}'. */
void store_array_sep(struct store_buf *b, size_t i);
/* A quoted element: "..." with \ and " escaped. */
void store_array_put_text(struct store_buf *b, const char *s);
void store_array_put_i64(struct store_buf *b, int64_t v);

/* ---- small helpers ---- */

const char *store_str_or_empty(const char *s);
/* A NUL inside the array: the fixed-size fields of the header's structs. */
bool store_fits(const char *field, size_t size);
/* A whole decimal text as int64; false (and *ret untouched) otherwise. */
bool store_parse_i64(const char *text, int64_t *ret);
/* A positive decimal text, else 0. */
uint64_t store_parse_u64_or_zero(const char *text);

/* ---- the connection and its errors ---- */

/* A usable connection, idle outside any transaction; reconnects when the last one broke. Never
 * inside a transaction: an open one is rolled back. 0 or -EIO. */
int store_ensure_conn(store_t *self);
/* Logs libpq's message for a failed step (under `what`) and returns its errno: -EIO whenever the
 * connection is gone, -EEXIST for a unique violation, -EINVAL for integrity and data errors,
 * -EAGAIN, -ENOSPC, -EPERM. */
int store_failed(const store_t *self, const PGresult *res, const char *what);
/* Ends the transaction in progress, if the connection is alive and in one. */
void store_rollback_if_alive(store_t *self);

/* Runs a statement without parameters that returns no rows (BEGIN, COMMIT). 0 or as
 * store_failed. */
int store_exec(store_t *self, const char *what, const char *sql);

/* Runs a statement with text parameters that returns no rows; *ret_changed (may be NULL) gets
 * the number of rows it inserted, updated or deleted. 0 or as store_failed. */
int store_command(store_t *self, const char *what, const char *sql, int nparams,
                  const char *const *params, uint64_t *ret_changed);

/* Reads row `row` of res; non-zero stops the walk, a negative value being an error. */
typedef int (*store_row_fn)(const PGresult *res, int row, void *userdata);

/*
 * Runs a statement with text parameters that returns rows and calls row for each of them in
 * order, then clears the result. Stops at the first non-zero return of row. 0 (also when row
 * stopped the walk with a positive value), row's negative value, or as store_failed when the
 * statement failed. Does not connect: call store_ensure_conn first outside a transaction.
 */
int store_query_rows(store_t *self, const char *what, const char *sql, int nparams,
                     const char *const *params, store_row_fn row, void *userdata);
/* The same with every column in binary: bytea as its bytes, int8 as 8 bytes big-endian. */
int store_query_rows_binary(store_t *self, const char *what, const char *sql, int nparams,
                            const char *const *params, store_row_fn row, void *userdata);

/* ---- between ingest and evidence ---- */

/* Appends an event; NULL when out of memory. */
struct store_evidence_event *store_evidence_event_add(struct store_evidence_events *ev,
                                                      enum store_evidence_outcome outcome,
                                                      const char *reason, const char *agent_id,
                                                      const char *kind, uint64_t collection_id,
                                                      uint64_t artifact);

/* The evidence chunks of the messages marked fresh, inside the ingest transaction: each stored
 * (or refused), then every artifact that got one settled. Outcomes are appended to ev. */
int store_evidence_ingest(store_t *self, Vigil__Envelope *const *msgs, size_t n, const bool *fresh,
                          struct store_evidence_events *ev);

/* The command reports of the messages marked fresh, inside the ingest transaction: each one that
 * names an issued capsule (request id and nonce) of its agent's node is stored and moves the
 * request's state; others are logged and skipped (store_commands.c). */
/* Moves every item of from to the end of to (from is left empty); what does not fit in memory is
 * dropped with a log line: the collections stay recorded and fail at their deadline. */
void store_followups_append(struct store_followups *to, struct store_followups *from);
/* Command reports of an ingest, in its transaction; a done report of a command that ran adds
 * its evidence collections to *followups (sent once the transaction committed). */
int store_commands_ingest(store_t *self, Vigil__Envelope *const *msgs, size_t n, const bool *fresh,
                          struct store_followups *followups);

#endif
