/*
 * The coordinator's store: one libpq connection, used synchronously from the main loop. This
 * file owns the connection (open, reconnect, close), converts its errors, and holds the helpers
 * the statement files share (store_internal.h); the statements live by domain in store_agents.c,
 * store_ingest.c, store_evidence.c and store_signals.c. It also logs the database's outages for
 * every connection of the coordinator (store.h), and keeps the private cluster running.
 *
 * Errors are converted here: libpq's text goes to the log, the caller gets a negative errno.
 * -EIO means the connection is gone (nothing of the call was stored); the next call reconnects.
 */
#include "store.h"
#include "store_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "embedded.h"
#include "log.h"
#include "migrations.h"
#include "roles.h"
#include "timeutil.h"

#define APPLICATION_NAME "vigil-coordinator"
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 5000
/* While the database stays unreachable, one summary line per this long. */
#define OUTAGE_SUMMARY_MS 60000

/* ---- buffers and PostgreSQL array literals ---- */

bool store_buf_reserve(struct store_buf *b, size_t extra)
{
    if (b->oom)
        return false;
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1) {
        if (cap > SIZE_MAX / 2) {
            b->oom = true;
            return false;
        }
        cap *= 2;
    }
    char *data = realloc(b->data, cap);
    if (!data) {
        b->oom = true;
        return false;
    }
    b->data = data;
    b->cap = cap;
    return true;
}

void store_buf_put(struct store_buf *b, const char *s, size_t n)
{
    if (!store_buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void store_buf_puts(struct store_buf *b, const char *s)
{
    store_buf_put(b, s, strlen(s));
}

void store_buf_putc(struct store_buf *b, char c)
{
    store_buf_put(b, &c, 1);
}

void store_buf_free(struct store_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* Appends a quoted element of a PostgreSQL array literal: "..." with \ and " escaped. */
void store_array_put_text(struct store_buf *b, const char *s)
{
    store_buf_putc(b, '"');
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\')
            store_buf_putc(b, '\\');
        store_buf_putc(b, *p);
    }
    store_buf_putc(b, '"');
}

void store_array_sep(struct store_buf *b, size_t i)
{
    store_buf_putc(b, i == 0 ? '{' : ',');
}

void store_array_put_i64(struct store_buf *b, int64_t v)
{
    char num[24];
    snprintf(num, sizeof(num), "%" PRId64, v);
    store_buf_puts(b, num);
}

/* ---- small helpers ---- */

const char *store_str_or_empty(const char *s)
{
    return s ? s : "";
}

bool store_fits(const char *field, size_t size)
{
    return strnlen(field, size) < size;
}

bool store_parse_i64(const char *text, int64_t *ret)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end != '\0')
        return false;
    *ret = v;
    return true;
}

uint64_t store_parse_u64_or_zero(const char *text)
{
    int64_t v;
    return store_parse_i64(text, &v) && v > 0 ? (uint64_t)v : 0;
}

/* ---- outages (any thread) ---- */

/*
 * Every connection to the database (main, admin, incidents, on-call, verify, webhook, notifier)
 * reports its connection attempts here, so that an outage is logged for the store as a whole:
 * one warning when an attempt first fails, a summary each minute while none succeeds, one line
 * when one does. Each connection used to log each of its retries: 97 identical lines in 25 s.
 */
static struct {
    pthread_mutex_t lock;
    bool down;
    int64_t down_since_ms;  /* mono */
    int64_t summary_ms;     /* mono: the last line about this outage */
    uint64_t attempts;      /* failed connection attempts in this outage, all connections */
    uint64_t outages;       /* since start: vigil_store_outages_total */
    int64_t lost_logged_ms; /* mono: the last "connection lost" line at info; 0 = never */
    uint64_t lost_unlogged; /* connections lost since that line, logged at debug */
} outage = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void outage_connect_failed(const char *connection, const char *error)
{
    int64_t now = vg_mono_ms();
    pthread_mutex_lock(&outage.lock);
    if (!outage.down) {
        outage.down = true;
        outage.down_since_ms = outage.summary_ms = now;
        outage.attempts = 1;
        outage.outages++;
        vg_log(VG_LOG_WARN, "store: database unreachable connection=%s error=\"%s\"", connection,
               error);
    } else {
        outage.attempts++;
        if (now - outage.summary_ms >= OUTAGE_SUMMARY_MS) {
            outage.summary_ms = now;
            vg_log(VG_LOG_WARN,
                   "store: database still unreachable for=%llds attempts=%" PRIu64 " error=\"%s\"",
                   (long long)((now - outage.down_since_ms) / 1000), outage.attempts, error);
        } else {
            vg_log(VG_LOG_DEBUG, "store: connection failed connection=%s error=\"%s\"", connection,
                   error);
        }
    }
    pthread_mutex_unlock(&outage.lock);
}

static void outage_connect_ok(const char *connection)
{
    pthread_mutex_lock(&outage.lock);
    if (outage.down) {
        outage.down = false;
        vg_log(VG_LOG_INFO,
               "store: database reachable again after=%.1fs attempts=%" PRIu64 " connection=%s",
               (double)(vg_mono_ms() - outage.down_since_ms) / 1000.0, outage.attempts, connection);
    } else {
        vg_log(VG_LOG_DEBUG, "store: connected connection=%s", connection);
    }
    pthread_mutex_unlock(&outage.lock);
}

/* A connection found dead by a statement: the first of a minute at info (it may be the only sign
 * of a short outage), the others at debug; a failed reconnect then starts the outage. */
static void outage_connection_lost(const char *connection, const char *what, const char *error)
{
    int64_t now = vg_mono_ms();
    pthread_mutex_lock(&outage.lock);
    if (!outage.down &&
        (outage.lost_logged_ms == 0 || now - outage.lost_logged_ms >= OUTAGE_SUMMARY_MS)) {
        vg_log(VG_LOG_INFO,
               "store: connection lost connection=%s during=\"%s\" others_lost=%" PRIu64
               " error=\"%s\"",
               connection, what, outage.lost_unlogged, error);
        outage.lost_logged_ms = now;
        outage.lost_unlogged = 0;
    } else {
        outage.lost_unlogged++;
        vg_log(VG_LOG_DEBUG, "store: connection lost connection=%s during=\"%s\" error=\"%s\"",
               connection, what, error);
    }
    pthread_mutex_unlock(&outage.lock);
}

uint64_t store_outages(void)
{
    pthread_mutex_lock(&outage.lock);
    uint64_t n = outage.outages;
    pthread_mutex_unlock(&outage.lock);
    return n;
}

void store_statement_failed(PGconn *conn, const char *connection, const char *what,
                            const char *error)
{
    char buf[512];
    vg_log_one_line(error, buf, sizeof(buf));
    if (conn && PQstatus(conn) == CONNECTION_OK)
        vg_log(VG_LOG_WARN, "store: %s failed connection=%s error=\"%s\"", what, connection, buf);
    else
        outage_connection_lost(connection, what, buf);
}

/* ---- connection and errors ---- */

static void notice_to_log(void *arg, const char *message)
{
    char buf[512];
    (void)arg;
    vg_log(VG_LOG_DEBUG, "store: server notice=\"%s\"", vg_log_one_line(message, buf, sizeof(buf)));
}

static int connect_once(store_t *self, char *msg, size_t msglen)
{
    /*
     * Keywords are applied in order and the last one wins: the first four are defaults the
     * configured connection string may override; client_encoding comes after it because
     * everything we send is UTF-8.
     */
    const char *const keys[] = {"application_name",
                                "connect_timeout",
                                "keepalives_idle",
                                "keepalives_interval",
                                "dbname",
                                "client_encoding",
                                NULL};
    const char *const values[] = {self->application_name ? self->application_name
                                                         : APPLICATION_NAME,
                                  "10",
                                  "30",
                                  "10",
                                  self->conninfo,
                                  "UTF8",
                                  NULL};

    PQfinish(self->conn);
    self->chunk_insert_prepared = false; /* prepared statements die with their session */
    self->conn = PQconnectdbParams(keys, values, 1);
    if (!self->conn) {
        snprintf(msg, msglen, "out of memory");
        return -ENOMEM;
    }
    if (PQstatus(self->conn) != CONNECTION_OK) {
        vg_log_one_line(PQerrorMessage(self->conn), msg, msglen);
        PQfinish(self->conn);
        self->conn = NULL;
        return -EIO;
    }
    PQsetNoticeProcessor(self->conn, notice_to_log, NULL);
    return 0;
}

int store_ensure_conn(store_t *self)
{
    if (self->conn && PQstatus(self->conn) == CONNECTION_OK) {
        PGTransactionStatusType ts = PQtransactionStatus(self->conn);
        if (ts == PQTRANS_IDLE)
            return 0;
        if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
            PGresult *res = PQexec(self->conn, "ROLLBACK");
            PQclear(res);
            if (PQstatus(self->conn) == CONNECTION_OK &&
                PQtransactionStatus(self->conn) == PQTRANS_IDLE)
                return 0;
        }
    }
    char msg[512];
    const char *name = self->application_name ? self->application_name : APPLICATION_NAME;
    if (connect_once(self, msg, sizeof(msg)) < 0) {
        outage_connect_failed(name, msg);
        return -EIO;
    }
    outage_connect_ok(name);
    return 0;
}

/* Maps a failed result to a negative errno; -EIO whenever the connection is gone. */
static int result_errno(const store_t *self, const PGresult *res)
{
    if (!self->conn || PQstatus(self->conn) != CONNECTION_OK)
        return -EIO;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (!state)
        return -EIO;
    if (strcmp(state, "23505") == 0) /* unique_violation */
        return -EEXIST;
    if (strncmp(state, "23", 2) == 0 || strncmp(state, "22", 2) == 0) /* integrity, data */
        return -EINVAL;
    if (strncmp(state, "40", 2) == 0) /* serialization failure, deadlock */
        return -EAGAIN;
    if (strncmp(state, "53", 2) == 0) /* insufficient resources */
        return -ENOSPC;
    if (strcmp(state, "42501") == 0) /* insufficient_privilege */
        return -EPERM;
    return -EIO;
}

int store_failed(const store_t *self, const PGresult *res, const char *what)
{
    const char *text = res ? PQresultErrorMessage(res) : NULL;
    if (!text || !text[0])
        text = self->conn ? PQerrorMessage(self->conn) : "no connection";
    /* A statement that ran but answered other than expected (rows from a command): say so. */
    if (!text[0] && res)
        text = PQresStatus(PQresultStatus(res));
    store_statement_failed(
        self->conn, self->application_name ? self->application_name : APPLICATION_NAME, what, text);
    return result_errno(self, res);
}

void store_rollback_if_alive(store_t *self)
{
    if (!self->conn || PQstatus(self->conn) != CONNECTION_OK ||
        PQtransactionStatus(self->conn) == PQTRANS_IDLE)
        return;
    PGresult *res = PQexec(self->conn, "ROLLBACK");
    PQclear(res);
}

/* ---- running statements ---- */

int store_exec(store_t *self, const char *what, const char *sql)
{
    PGresult *res = PQexec(self->conn, sql);
    int r = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : store_failed(self, res, what);
    PQclear(res);
    return r;
}

int store_command(store_t *self, const char *what, const char *sql, int nparams,
                  const char *const *params, uint64_t *ret_changed)
{
    PGresult *res = PQexecParams(self->conn, sql, nparams, NULL, params, NULL, NULL, 0);
    int r = 0;
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        r = store_failed(self, res, what);
    else if (ret_changed)
        *ret_changed = store_parse_u64_or_zero(PQcmdTuples(res));
    PQclear(res);
    return r;
}

static int query_rows(store_t *self, const char *what, const char *sql, int nparams,
                      const char *const *params, int result_format, store_row_fn row,
                      void *userdata)
{
    PGresult *res = PQexecParams(self->conn, sql, nparams, NULL, params, NULL, NULL, result_format);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        int r = store_failed(self, res, what);
        PQclear(res);
        return r;
    }
    int r = 0;
    int rows = PQntuples(res);
    for (int i = 0; i < rows && r == 0; i++)
        r = row(res, i, userdata);
    PQclear(res);
    /* A row function stops the walk with non-zero; a negative value is an error to pass on. */
    return r < 0 ? r : 0;
}

int store_query_rows(store_t *self, const char *what, const char *sql, int nparams,
                     const char *const *params, store_row_fn row, void *userdata)
{
    return query_rows(self, what, sql, nparams, params, 0, row, userdata);
}

int store_query_rows_binary(store_t *self, const char *what, const char *sql, int nparams,
                            const char *const *params, store_row_fn row, void *userdata)
{
    return query_rows(self, what, sql, nparams, params, 1, row, userdata);
}

/* ---- open / close ---- */

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* The current_user of conn into role (NAMEDATALEN), or -EIO with err set. */
static int current_role(PGconn *conn, char *role, size_t len, char *err, size_t errlen)
{
    PGresult *res = PQexec(conn, "SELECT current_user");
    int r = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        char msg[512];
        snprintf(err, errlen, "current_user: %s",
                 vg_log_one_line(PQresultErrorMessage(res), msg, sizeof(msg)));
        r = -EIO;
    } else {
        snprintf(role, len, "%s", PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    return r;
}

/* Migrations on a connection of the owner role, then the coordinator's role's rights, granted
 * by the owner (unless both are the same login). */
static int migrate_as_owner(store_t *self, char *err, size_t errlen)
{
    store_t *owner = store_connect(self->owner_conninfo, "vigil-coordinator-migrations");
    if (!owner) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    char runtime[128] = "", owner_role[128] = "", msg[512];
    int r = connect_once(owner, msg, sizeof(msg));
    if (r < 0)
        snprintf(err, errlen, "the owner role's connection: %s", msg);
    if (r == 0)
        r = migrations_apply(owner->conn, err, errlen);
    if (r == 0)
        r = current_role(self->conn, runtime, sizeof(runtime), err, errlen);
    if (r == 0)
        r = current_role(owner->conn, owner_role, sizeof(owner_role), err, errlen);
    if (r == 0 && strcmp(runtime, owner_role) != 0)
        r = roles_grant_runtime(owner->conn, runtime, err, errlen);
    store_destroy(&owner);
    return r;
}

/* The coordinator's login should hold no more than it needs (roles.h): say so when it does. */
static void warn_excess_rights(store_t *self)
{
    char excess[1024];
    int n = roles_check_runtime(self->conn, excess, sizeof(excess));
    if (n < 0)
        vg_log(VG_LOG_WARN, "store: the login's rights could not be checked: %s", excess);
    else if (n > 0)
        vg_log(VG_LOG_WARN,
               "store: the coordinator's database login has more rights than it needs (%s): it "
               "could switch the append-only protection of the record off; give it a role of its "
               "own and the owner role to store.owner_url (docs/operations.md, \"Database roles\")",
               excess);
}

int store_check_rights(const char *url, char *out, size_t outlen)
{
    store_t *probe = store_connect(url, "vigil-coordinator-check");
    if (!probe) {
        snprintf(out, outlen, "out of memory");
        return -ENOMEM;
    }
    int r = connect_once(probe, out, outlen);
    if (r == 0)
        r = roles_check_runtime(probe->conn, out, outlen);
    store_destroy(&probe);
    return r;
}

store_t *store_open(const struct store_config *cfg, char *err, size_t errlen)
{
    char msg[512] = "";
    int r;

    if (!cfg) {
        snprintf(err, errlen, "no store configuration");
        return NULL;
    }
    store_t *self = calloc(1, sizeof(*self));
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    const char *owner = cfg->owner_url && cfg->owner_url[0] ? cfg->owner_url : NULL;
    if (!cfg->url || !cfg->url[0]) {
        self->pg = embedded_pg_start(cfg->state_dir, cfg->pg_bin_dir, err, errlen);
        if (!self->pg)
            goto err_free;
        self->conninfo = strdup(embedded_pg_conninfo(self->pg));
        owner = embedded_pg_owner_conninfo(self->pg);
    } else {
        self->conninfo = strdup(cfg->url);
    }
    if (owner && !(self->owner_conninfo = strdup(owner))) {
        snprintf(err, errlen, "out of memory");
        goto err_stop;
    }
    if (!self->conninfo) {
        snprintf(err, errlen, "out of memory");
        goto err_stop;
    }

    int64_t timeout = cfg->start_timeout_ms > 0 ? cfg->start_timeout_ms : 0;
    int64_t deadline = vg_mono_ms() + timeout;
    int64_t backoff = BACKOFF_FIRST_MS;
    for (int attempt = 1;; attempt++) {
        r = connect_once(self, msg, sizeof(msg));
        if (r == 0)
            break;
        vg_log(VG_LOG_WARN, "store: database connection failed attempt=%d error=\"%s\"", attempt,
               msg);
        int64_t left = deadline - vg_mono_ms();
        if (r == -ENOMEM || left <= 0) {
            snprintf(err, errlen, "database unreachable after %gs: %s", (double)timeout / 1000.0,
                     msg);
            goto err_stop;
        }
        sleep_ms(backoff < left ? backoff : left);
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }

    r = self->owner_conninfo ? migrate_as_owner(self, err, errlen)
                             : migrations_apply(self->conn, err, errlen);
    if (r < 0)
        goto err_stop;
    warn_excess_rights(self);
    vg_log(VG_LOG_INFO, "store: ready database=%s", self->pg ? "embedded" : "external");
    return self;

err_stop:
    PQfinish(self->conn);
    self->conn = NULL;
    free(self->conninfo);
    self->conninfo = NULL;
    free(self->owner_conninfo);
    self->owner_conninfo = NULL;
    embedded_pg_stop(&self->pg);
err_free:
    free(self);
    return NULL;
}

store_t *store_connect(const char *conninfo, const char *application_name)
{
    store_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->conninfo = strdup(conninfo ? conninfo : "");
    if (!self->conninfo) {
        free(self);
        return NULL;
    }
    self->application_name = application_name;
    return self;
}

void store_destroy(store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    store_t *self = *self_p;
    PQfinish(self->conn);
    self->conn = NULL;
    free(self->conninfo);
    self->conninfo = NULL;
    free(self->owner_conninfo);
    embedded_pg_stop(&self->pg);
    store_buf_free(&self->copy);
    store_followups_clear(&self->followups);
    artifact_hash_clear(&self->uploads);
    free(self);
    *self_p = NULL;
}

int store_embedded_watch(store_t *self)
{
    return self ? embedded_pg_watch(self->pg) : 0;
}

const char *store_conninfo(const store_t *self)
{
    return self ? self->conninfo : NULL;
}

const char *store_owner_conninfo(const store_t *self)
{
    if (!self)
        return NULL;
    return self->owner_conninfo ? self->owner_conninfo : self->conninfo;
}

bool store_ping(store_t *self)
{
    if (!self)
        return false;
    /* A connection that died while idle is only noticed by using it: try twice. */
    for (int attempt = 0; attempt < 2; attempt++) {
        if (store_ensure_conn(self) < 0)
            return false;
        PGresult *res = PQexec(self->conn, "SELECT 1");
        bool ok = PQresultStatus(res) == PGRES_TUPLES_OK;
        PQclear(res);
        if (ok)
            return true;
        if (PQstatus(self->conn) == CONNECTION_OK)
            return false;
    }
    return false;
}

/* ---- other modules' connections ---- */

int store_side_connect(PGconn **conn, const char *conninfo, const char *application_name)
{
    const char *const keys[] = {"application_name", "connect_timeout", "dbname", "client_encoding",
                                NULL};
    const char *const values[] = {application_name, "10", conninfo, "UTF8", NULL};

    PQfinish(*conn);
    *conn = PQconnectdbParams(keys, values, 1);
    if (!*conn)
        return -ENOMEM;
    if (PQstatus(*conn) != CONNECTION_OK) {
        char buf[512];
        outage_connect_failed(application_name,
                              vg_log_one_line(PQerrorMessage(*conn), buf, sizeof(buf)));
        PQfinish(*conn);
        *conn = NULL;
        return -EIO;
    }
    outage_connect_ok(application_name);
    return 0;
}

int store_side_init(struct store_side *side, const char *conninfo)
{
    side->conn = NULL;
    side->conninfo = strdup(conninfo ? conninfo : "");
    return side->conninfo ? 0 : -ENOMEM;
}

void store_side_fini(struct store_side *side)
{
    PQfinish(side->conn);
    side->conn = NULL;
    free(side->conninfo);
    side->conninfo = NULL;
}
