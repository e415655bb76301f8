/*
 * A private PostgreSQL for a cmocka group: the cluster embedded.c starts under a temporary state
 * directory (store_open with no url), a store_t that owns it, and a plain libpq connection for
 * the test's own checks. Header-only (static inline), for the store-backed unit tests.
 *
 *     static struct pg_fixture pg;
 *     group setup:    return pg_fixture_start(&pg, "/tmp/vigil-notify-XXXXXX");
 *     group teardown: pg_fixture_stop(&pg); return 0;
 */
#ifndef TESTS_PG_FIXTURE_H
#define TESTS_PG_FIXTURE_H

#include <ftw.h>
#include <libpq-fe.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

struct pg_fixture {
    char dir[64];
    store_t *store;
    PGconn *check; /* the test's own connection */
};

static inline void pg_fixture_sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static inline pid_t pg_fixture_postmaster_pid(const char *state_dir)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/pgdata/postmaster.pid", state_dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[64] = "";
    char *got = fgets(line, sizeof(line), f);
    fclose(f);
    if (!got)
        return 0;
    long pid = strtol(line, NULL, 10);
    return pid > 0 ? (pid_t)pid : 0;
}

static inline bool pg_fixture_is_postgres(pid_t pid)
{
    char path[64], comm[64] = "";
    snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char *got = fgets(comm, sizeof(comm), f);
    fclose(f);
    return got && strncmp(comm, "postgres", 8) == 0;
}

/* Teardown's last resort: a cluster a failed test left running gets a fast shutdown. */
static inline void pg_fixture_kill_cluster(const char *state_dir)
{
    pid_t pid = pg_fixture_postmaster_pid(state_dir);
    if (pid <= 0 || !pg_fixture_is_postgres(pid))
        return;
    kill(pid, SIGINT);
    for (int i = 0; i < 600 && kill(pid, 0) == 0 && pg_fixture_is_postgres(pid); i++)
        pg_fixture_sleep_ms(50);
    if (kill(pid, 0) == 0 && pg_fixture_is_postgres(pid))
        kill(pid, SIGKILL);
}

static inline int pg_fixture_remove_entry(const char *path, const struct stat *st, int flag,
                                          struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

/* Removes a directory tree (a test's scratch directory). */
static inline void pg_fixture_rmtree(const char *dir)
{
    nftw(dir, pg_fixture_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* template: a mkdtemp pattern such as "/tmp/vigil-notify-XXXXXX". 0, or -1 with a message. */
static inline int pg_fixture_start(struct pg_fixture *f, const char *template)
{
    char err[1024] = "";
    memset(f, 0, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "%s", template);
    if (!mkdtemp(f->dir)) {
        f->dir[0] = '\0';
        return -1;
    }
    /* Searchable, not listable, by others: the postgres user can reach pgdata inside. */
    if (chmod(f->dir, 0711) < 0)
        return -1;
    struct store_config cfg = {
        .url = NULL, .state_dir = f->dir, .pg_bin_dir = NULL, .start_timeout_ms = 60000};
    f->store = store_open(&cfg, err, sizeof(err));
    if (!f->store) {
        fprintf(stderr, "store_open: %s\n", err);
        return -1;
    }
    /* The checks run as the cluster's superuser (peer: we started it), as an operator's psql
     * would: the coordinator's own login may not create test triggers or tamper with rows. */
    char check[PATH_MAX + 64] = "";
    PQconninfoOption *opts = PQconninfoParse(store_conninfo(f->store), NULL);
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (strcmp(o->keyword, "host") == 0 && o->val)
            snprintf(check, sizeof(check), "host=%s port=5432 user=vigil dbname=vigil", o->val);
    PQconninfoFree(opts);
    f->check = PQconnectdb(check);
    if (PQstatus(f->check) != CONNECTION_OK) {
        fprintf(stderr, "check connection: %s\n", PQerrorMessage(f->check));
        return -1;
    }
    return 0;
}

static inline void pg_fixture_stop(struct pg_fixture *f)
{
    PQfinish(f->check);
    f->check = NULL;
    store_destroy(&f->store);
    if (f->dir[0]) {
        pg_fixture_kill_cluster(f->dir);
        pg_fixture_rmtree(f->dir);
        f->dir[0] = '\0';
    }
}

#endif
