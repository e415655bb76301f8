/*
 * Who may do what in Vigil's database (docs/operations.md, "Database roles").
 *
 * Two logins: the owner role owns every object, runs the migrations and the maintenance
 * (retention, expiry of incomplete uploads) on connections of their own; the runtime role, used
 * by every other connection of the running coordinator, may read everything, append to the
 * record (vault, audit log, commands, timelines, chains) and change only the operational tables
 * that hold current state. It owns nothing and is not a superuser, so it can neither switch a
 * table's append-only triggers off (ALTER TABLE ... DISABLE TRIGGER needs ownership) nor set
 * session_replication_role (a superuser's setting).
 *
 * The private cluster (embedded.c) makes both roles itself, with a password each in a file of the
 * state directory; an external PostgreSQL gets the same GRANTs from roles_grant_runtime, run on the
 * owner's connection (store.owner_url).
 */
#ifndef COORD_ROLES_H
#define COORD_ROLES_H

#include <libpq-fe.h>
#include <stddef.h>

#define ROLES_OWNER "vigil_owner"
#define ROLES_RUNTIME "vigil_coordinator"
#define ROLES_SUPERUSER "vigil" /* the private cluster's bootstrap superuser (initdb -U) */

/*
 * The private cluster's roles, on a superuser connection to its "postgres" database: creates
 * ROLES_OWNER and ROLES_RUNTIME when missing (login, no other attribute) and sets their
 * passwords from <state_dir>/pg-owner.pgpass and pg-coordinator.pgpass (made 0600 with a
 * random password when missing: libpq password files). Fills the libpq connection strings of
 * both logins for socket sock_dir. 0, or -errno with err set.
 */
int roles_embedded_create(PGconn *superuser, const char *state_dir, const char *sock_dir,
                          const char *port, char *owner_conninfo, size_t owner_len,
                          char *runtime_conninfo, size_t runtime_len, char *err, size_t errlen);

/* On a superuser connection to the "vigil" database: everything in schema public that another
 * role owns (a cluster made before the roles existed: the superuser) becomes ROLES_OWNER's. */
int roles_embedded_take_ownership(PGconn *superuser, char *err, size_t errlen);

/*
 * On the owner's connection, after the migrations: what runtime_role may do, granted afresh
 * (revoked first, so a right taken off the list is gone after the next start): SELECT and
 * INSERT on every table but the projections, sequences, UPDATE and DELETE only on the tables
 * listed in roles.c.
 * 0, or -EIO with err set.
 */
int roles_grant_runtime(PGconn *owner, const char *runtime_role, char *err, size_t errlen);

/*
 * What the login of conn may do beyond what the running coordinator needs: superuser,
 * replication or row-security bypass, owning tables of schema public, UPDATE, DELETE or
 * TRUNCATE on a table of the record. Writes a comma-separated description into out ("" when
 * nothing). The number of excess rights found, or -EIO when the check could not run.
 */
int roles_check_runtime(PGconn *conn, char *out, size_t outlen);

#endif
