/* Numbered SQL migrations compiled into the coordinator (see cmake/embed_sql.cmake). */
#ifndef COORD_MIGRATIONS_H
#define COORD_MIGRATIONS_H

#include <libpq-fe.h>
#include <stddef.h>

struct migration {
    int version;      /* from the file name: 001_init.sql -> 1 */
    const char *name; /* the file name */
    const char *sql;
};

extern const struct migration vigil_migrations[];
extern const unsigned vigil_migrations_count;

/*
 * Applies every migration newer than schema_migrations' highest version, in order, inside
 * one transaction (all or nothing), holding an advisory lock so two coordinators starting at
 * once do not race. Returns 0 or a negative errno with err set.
 */
int migrations_apply(PGconn *conn, char *err, size_t errlen);

#endif
