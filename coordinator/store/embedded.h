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
/*
 * For the main loop, every second: when the postmaster is gone (its pid in postmaster.pid no longer
 * runs, or no postmaster.pid), starts the cluster again without waiting for it to accept
 * connections (the store reconnects when it does), with a backoff between attempts (1 s doubling
 * to 30 s, reset after 60 s up). The death is logged once, and the cluster running again. 1 when it
 * restarted the cluster (one restart to count), 0 when there was nothing to do (yet), -EIO when
 * pg_ctl failed (logged; retried after the backoff).
 */
int embedded_pg_watch(embedded_pg_t *self);
/* The libpq connection strings for the running cluster (borrowed): the coordinator's role, and
 * the owner role's for migrations and maintenance (roles.h). */
const char *embedded_pg_conninfo(const embedded_pg_t *self);
const char *embedded_pg_owner_conninfo(const embedded_pg_t *self);
/* Stops the cluster (fast shutdown) and frees. Accepts NULL. */
void embedded_pg_stop(embedded_pg_t **self_p);

#endif
