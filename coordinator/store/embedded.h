/*
 * A private PostgreSQL cluster for local use and tests: initdb on first start, pg_ctl start,
 * listening only on a Unix socket inside the state directory; stopped by embedded_pg_stop.
 * As root, initdb/pg_ctl/postgres run as the "postgres" user (PostgreSQL refuses root).
 * A cluster left running by a coordinator that was killed is adopted, not started twice.
 */
#ifndef COORD_EMBEDDED_H
#define COORD_EMBEDDED_H

#include <stddef.h>

typedef struct embedded_pg embedded_pg_t;

/* Starts (or adopts) the cluster in <state_dir>/pgdata. NULL on failure with err set. */
embedded_pg_t *embedded_pg_start(const char *state_dir, const char *pg_bin_dir, char *err,
                                 size_t errlen);
/* The libpq connection string for the running cluster (borrowed). */
const char *embedded_pg_conninfo(const embedded_pg_t *self);
/* Stops the cluster (fast shutdown) and frees. Accepts NULL. */
void embedded_pg_stop(embedded_pg_t **self_p);

#endif
