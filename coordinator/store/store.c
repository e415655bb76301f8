/*
 * The coordinator's store: one libpq connection, used synchronously from the main loop.
 *
 * Ingest is the hot path: a batch of agent messages is one transaction of a constant number
 * of round trips — BEGIN; one INSERT ... SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING
 * RETURNING the (agent, seq) pairs that were new; one COPY of the signal samples of those new
 * messages only; COMMIT. Duplicates (an agent resending what was stored but not yet
 * acknowledged) are therefore stored once and still count as stored.
 *
 * Errors are converted here: libpq's text goes to the log, the caller gets a negative errno.
 * -EIO means the connection is gone (nothing of the call was stored); the next call reconnects.
 */
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "digest.h"
#include "embedded.h"
#include "log.h"
#include "migrations.h"
#include "timeutil.h"
#include "utf8.h"
#include "wire.h"

#define APPLICATION_NAME "vigil-coordinator"
#define COPY_CHUNK (256 * 1024) /* bytes of COPY data handed to libpq at a time */
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 5000
/* Timestamps PostgreSQL and we both render plainly: 0001-01-01 .. 9999-12-31 (UTC). */
#define TS_MIN_MS (-62135596800000LL)
#define TS_MAX_MS (253402300799999LL)

/* ---- small helpers ---- */

static void notice_to_log(void *arg, const char *message)
{
    char buf[512];
    (void)arg;
    vg_log(VG_LOG_DEBUG, "store: server notice=\"%s\"", vg_log_one_line(message, buf, sizeof(buf)));
}

/* A growing byte buffer; an allocation failure is sticky and checked once at the end. */
struct buf {
    char *data;
    size_t len, cap;
    bool oom;
};

struct store {
    PGconn *conn;
    char *conninfo;    /* store.url, or the embedded cluster's */
    embedded_pg_t *pg; /* non-NULL when we started (or adopted) a private cluster */
    struct buf copy;   /* ingest's COPY data, kept between batches (at most a chunk and a row) */
};

static bool buf_reserve(struct buf *b, size_t extra)
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

static void buf_put(struct buf *b, const char *s, size_t n)
{
    if (!buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void buf_puts(struct buf *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

static void buf_putc(struct buf *b, char c)
{
    buf_put(b, &c, 1);
}

static void buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static const char *str_or_empty(const char *s)
{
    return s ? s : "";
}

/* A NUL inside the array: the fixed-size fields of the header's structs. */
static bool fits(const char *field, size_t size)
{
    return strnlen(field, size) < size;
}

/* "YYYY-MM-DD HH:MM:SS.mmm+00"; -EINVAL outside years 1..9999. */
static int render_ts(int64_t ms, char *out, size_t len)
{
    if (ms < TS_MIN_MS || ms > TS_MAX_MS)
        return -EINVAL;
    int64_t sec = ms / 1000;
    int64_t milli = ms % 1000;
    if (milli < 0) {
        milli += 1000;
        sec -= 1;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        return -EINVAL;
    int n = snprintf(out, len, "%04d-%02d-%02d %02d:%02d:%02d.%03d+00", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)milli);
    return (n < 0 || (size_t)n >= len) ? -EINVAL : 0;
}

/* PostgreSQL's bigint holds what an agent can count; clamp the rest rather than fail. */
static int64_t clamp_u64(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

static const char *state_name(Vigil__AgentState state)
{
    switch (state) {
    case VIGIL__AGENT_STATE__AGENT_STATE_PENDING:
        return "pending";
    case VIGIL__AGENT_STATE__AGENT_STATE_ACTIVE:
        return "active";
    case VIGIL__AGENT_STATE__AGENT_STATE_LOST:
        return "lost";
    case VIGIL__AGENT_STATE__AGENT_STATE_REVOKED:
        return "revoked";
    default:
        return NULL;
    }
}

static Vigil__AgentState state_parse(const char *name)
{
    static const Vigil__AgentState states[] = {
        VIGIL__AGENT_STATE__AGENT_STATE_PENDING, VIGIL__AGENT_STATE__AGENT_STATE_ACTIVE,
        VIGIL__AGENT_STATE__AGENT_STATE_LOST, VIGIL__AGENT_STATE__AGENT_STATE_REVOKED};
    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
        if (strcmp(name, state_name(states[i])) == 0)
            return states[i];
    return VIGIL__AGENT_STATE__AGENT_STATE_UNSPECIFIED;
}

static const char *kind_name(Vigil__Envelope__BodyCase body)
{
    switch (body) {
    case VIGIL__ENVELOPE__BODY_SIGNALS:
        return "signals";
    case VIGIL__ENVELOPE__BODY_ENROLL:
        return "enroll";
    case VIGIL__ENVELOPE__BODY_ENROLL_REPLY:
        return "enroll_reply";
    case VIGIL__ENVELOPE__BODY_HEARTBEAT:
        return "heartbeat";
    case VIGIL__ENVELOPE__BODY_ACK:
        return "ack";
    case VIGIL__ENVELOPE__BODY_REFUSAL:
        return "refusal";
    case VIGIL__ENVELOPE__BODY_COLLECT:
        return "collect";
    case VIGIL__ENVELOPE__BODY_EVIDENCE:
        return "evidence";
    default:
        return "none";
    }
}

static bool parse_i64(const char *text, int64_t *ret)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end != '\0')
        return false;
    *ret = v;
    return true;
}

static uint64_t parse_u64_or_zero(const char *text)
{
    int64_t v;
    return parse_i64(text, &v) && v > 0 ? (uint64_t)v : 0;
}

/* ---- connection and errors ---- */

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
    const char *const values[] = {APPLICATION_NAME, "10", "30", "10", self->conninfo, "UTF8", NULL};

    PQfinish(self->conn);
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

/* A usable connection, idle outside any transaction; reconnects when the last one broke. */
static int ensure_conn(store_t *self)
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
    if (connect_once(self, msg, sizeof(msg)) < 0) {
        vg_log(VG_LOG_WARN, "store: database connection failed error=\"%s\"", msg);
        return -EIO;
    }
    vg_log(VG_LOG_INFO, "store: database connection re-established");
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

/* Logs libpq's message for a failed step and returns its errno. */
static int failed(const store_t *self, const PGresult *res, const char *what)
{
    char buf[512];
    const char *text = res ? PQresultErrorMessage(res) : NULL;
    if (!text || !text[0])
        text = self->conn ? PQerrorMessage(self->conn) : "no connection";
    int r = result_errno(self, res);
    vg_log(VG_LOG_WARN, "store: %s failed errno=%d error=\"%s\"", what, -r,
           vg_log_one_line(text, buf, sizeof(buf)));
    return r;
}

static void rollback_if_alive(store_t *self)
{
    if (!self->conn || PQstatus(self->conn) != CONNECTION_OK ||
        PQtransactionStatus(self->conn) == PQTRANS_IDLE)
        return;
    PGresult *res = PQexec(self->conn, "ROLLBACK");
    PQclear(res);
}

/* Runs a statement that returns no rows. */
static int exec_command(store_t *self, const char *sql, const char *what)
{
    PGresult *res = PQexec(self->conn, sql);
    int r = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : failed(self, res, what);
    PQclear(res);
    return r;
}

/* ---- open / close ---- */

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
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
    if (!cfg->url || !cfg->url[0]) {
        self->pg = embedded_pg_start(cfg->state_dir, cfg->pg_bin_dir, err, errlen);
        if (!self->pg)
            goto err_free;
        self->conninfo = strdup(embedded_pg_conninfo(self->pg));
    } else {
        self->conninfo = strdup(cfg->url);
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

    r = migrations_apply(self->conn, err, errlen);
    if (r < 0)
        goto err_stop;
    vg_log(VG_LOG_INFO, "store: ready database=%s", self->pg ? "embedded" : "external");
    return self;

err_stop:
    PQfinish(self->conn);
    self->conn = NULL;
    free(self->conninfo);
    self->conninfo = NULL;
    embedded_pg_stop(&self->pg);
err_free:
    free(self);
    return NULL;
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
    embedded_pg_stop(&self->pg);
    buf_free(&self->copy);
    free(self);
    *self_p = NULL;
}

const char *store_conninfo(const store_t *self)
{
    return self ? self->conninfo : NULL;
}

bool store_ping(store_t *self)
{
    if (!self)
        return false;
    /* A connection that died while idle is only noticed by using it: try twice. */
    for (int attempt = 0; attempt < 2; attempt++) {
        if (ensure_conn(self) < 0)
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

/* ---- agents ---- */

/*
 * Times cross the boundary as Unix milliseconds: written as 'epoch' + ms * 1 millisecond (0 means
 * now()), read back as extract(epoch) * 1000. Exact both ways; no float rounding.
 */

int store_agents_load(store_t *self, int (*cb)(const struct store_agent *agent, void *userdata),
                      void *userdata)
{
    if (!self || !cb)
        return -EINVAL;
    int r = ensure_conn(self);
    if (r < 0)
        return r;
    PGresult *res =
        PQexec(self->conn, "SELECT id, public_key, node, state, agent_version,"
                           " (extract(epoch FROM enrolled_at) * 1000)::bigint,"
                           " (extract(epoch FROM state_since) * 1000)::bigint,"
                           " coalesce((extract(epoch FROM last_seen) * 1000)::bigint, 0),"
                           " spool_depth, dropped_messages, requested_node"
                           " FROM agents ORDER BY id");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        r = failed(self, res, "load agents");
        PQclear(res);
        return r;
    }
    int rows = PQntuples(res);
    for (int i = 0; i < rows; i++) {
        struct store_agent a;
        memset(&a, 0, sizeof(a));
        const char *id = PQgetvalue(res, i, 0);
        const char *key = PQgetvalue(res, i, 1);
        if (!fits(id, sizeof(a.id)) || !fits(key, sizeof(a.public_key))) {
            vg_log(VG_LOG_WARN, "store: agent row skipped: id or key too long agent=%.40s", id);
            continue;
        }
        memcpy(a.id, id, strlen(id) + 1);
        memcpy(a.public_key, key, strlen(key) + 1);
        snprintf(a.node, sizeof(a.node), "%s", PQgetvalue(res, i, 2));
        a.state = state_parse(PQgetvalue(res, i, 3));
        snprintf(a.agent_version, sizeof(a.agent_version), "%s", PQgetvalue(res, i, 4));
        if (!parse_i64(PQgetvalue(res, i, 5), &a.enrolled_at_ms) ||
            !parse_i64(PQgetvalue(res, i, 6), &a.state_since_ms) ||
            !parse_i64(PQgetvalue(res, i, 7), &a.last_seen_ms))
            vg_log(VG_LOG_WARN, "store: agent row has unreadable times agent=%s", a.id);
        a.spool_depth = parse_u64_or_zero(PQgetvalue(res, i, 8));
        a.dropped_messages = parse_u64_or_zero(PQgetvalue(res, i, 9));
        snprintf(a.requested_node, sizeof(a.requested_node), "%s", PQgetvalue(res, i, 10));
        r = cb(&a, userdata);
        if (r != 0)
            break;
    }
    PQclear(res);
    /* A callback stops the walk with non-zero; a negative value is an error to pass on. */
    return r < 0 ? r : 0;
}

int store_agent_upsert(store_t *self, const struct store_agent *agent)
{
    if (!self || !agent)
        return -EINVAL;
    const char *state = state_name(agent->state);
    if (!state || !agent->id[0] || !fits(agent->id, sizeof(agent->id)) ||
        !fits(agent->public_key, sizeof(agent->public_key)) || !agent->public_key[0] ||
        !fits(agent->node, sizeof(agent->node)) ||
        !fits(agent->agent_version, sizeof(agent->agent_version)) || !vg_utf8_valid(agent->id) ||
        !vg_utf8_valid(agent->public_key) || !vg_utf8_valid(agent->node) ||
        !vg_utf8_valid(agent->agent_version))
        return -EINVAL;
    int r = ensure_conn(self);
    if (r < 0)
        return r;

    char enrolled[24], since[24];
    snprintf(enrolled, sizeof(enrolled), "%" PRId64, agent->enrolled_at_ms);
    snprintf(since, sizeof(since), "%" PRId64, agent->state_since_ms);
    const char *params[] = {
        agent->id, agent->public_key, agent->node, state, agent->agent_version, enrolled, since};
    /* Same id with another key would be a hash collision or a bug: refuse, change nothing. */
    PGresult *res =
        PQexecParams(self->conn,
                     "INSERT INTO agents (id, public_key, node, state, agent_version, enrolled_at,"
                     " state_since) VALUES ($1, $2, $3, $4, $5,"
                     " CASE WHEN $6::bigint = 0 THEN now()"
                     "  ELSE 'epoch'::timestamptz + $6::bigint * interval '1 millisecond' END,"
                     " CASE WHEN $7::bigint = 0 THEN now()"
                     "  ELSE 'epoch'::timestamptz + $7::bigint * interval '1 millisecond' END)"
                     " ON CONFLICT (id) DO UPDATE SET agent_version = EXCLUDED.agent_version"
                     " WHERE agents.public_key = EXCLUDED.public_key",
                     7, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        r = failed(self, res, "agent upsert");
    } else if (strcmp(PQcmdTuples(res), "1") != 0) {
        vg_log(VG_LOG_WARN, "store: agent upsert refused: id exists with another key agent=%s",
               agent->id);
        r = -EEXIST;
    }
    PQclear(res);
    return r;
}

/* UPDATE agents SET <what> WHERE id = $1, expecting one row; -ENOENT when there is none. */
static int agent_update(store_t *self, const char *sql, const char *const *params, int nparams,
                        const char *what)
{
    int r = ensure_conn(self);
    if (r < 0)
        return r;
    PGresult *res = PQexecParams(self->conn, sql, nparams, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        r = failed(self, res, what);
    else if (strcmp(PQcmdTuples(res), "1") != 0)
        r = -ENOENT;
    PQclear(res);
    return r;
}

int store_agent_request_node(store_t *self, const char *id, const char *requested_node)
{
    if (!self || !id || !requested_node || !vg_utf8_valid(id) || !vg_utf8_valid(requested_node) ||
        strlen(requested_node) >= sizeof(((struct store_agent *)0)->requested_node))
        return -EINVAL;
    const char *params[] = {id, requested_node};
    return agent_update(self, "UPDATE agents SET requested_node = $2 WHERE id = $1", params, 2,
                        "agent node request");
}

int store_agent_forget_pending(store_t *self, const char *id, const char *reason)
{
    if (!self || !id || !reason || !vg_utf8_valid(id) || !vg_utf8_valid(reason))
        return -EINVAL;
    const char *params[] = {id};
    int r = agent_update(self, "DELETE FROM agents WHERE id = $1 AND state = 'pending'", params, 1,
                         "forget pending agent");
    if (r == 0)
        store_audit(self, "coordinator", "agent.forgotten", id, reason);
    return r;
}

int store_agent_rename(store_t *self, const char *id, const char *node, const char *actor)
{
    if (!self || !id || !node || !actor || !vg_utf8_valid(id) || !vg_utf8_valid(node) ||
        strlen(node) >= sizeof(((struct store_agent *)0)->node))
        return -EINVAL;
    const char *params[] = {id, node};
    int r = agent_update(self, "UPDATE agents SET node = $2, requested_node = '' WHERE id = $1",
                         params, 2, "agent rename");
    if (r == 0)
        store_audit(self, actor, "agent.rename", id, node);
    return r;
}

int store_agent_set_state(store_t *self, const char *id, Vigil__AgentState state, int64_t at_ms,
                          const char *actor, const char *reason)
{
    const char *name = state_name(state);
    if (!self || !id || !name || !vg_utf8_valid(id) || (actor && !vg_utf8_valid(actor)) ||
        (reason && !vg_utf8_valid(reason)))
        return -EINVAL;
    int r = ensure_conn(self);
    if (r < 0)
        return r;

    char at[24];
    snprintf(at, sizeof(at), "%" PRId64, at_ms);
    const char *params[] = {id, name, at, actor && actor[0] ? actor : "coordinator",
                            reason ? reason : ""};
    /* One statement: the state change and its audit row commit together or not at all. */
    PGresult *res = PQexecParams(
        self->conn,
        "WITH changed AS ("
        " UPDATE agents AS a SET state = $2::text, state_since = CASE WHEN $3::bigint = 0"
        "  THEN now() ELSE 'epoch'::timestamptz + $3::bigint * interval '1 millisecond' END"
        " FROM agents AS old WHERE a.id = $1::text AND old.id = a.id"
        " RETURNING a.id, old.state AS old_state) "
        "INSERT INTO audit_log (actor, action, subject, detail) "
        "SELECT $4::text, 'agent.state', id, "
        " format('from=%s to=%s reason=%s', old_state, $2::text, $5::text) FROM changed",
        5, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        r = failed(self, res, "agent state change");
    else if (strcmp(PQcmdTuples(res), "0") == 0)
        r = -ENOENT;
    PQclear(res);
    return r;
}

/* Appends a quoted element of a PostgreSQL array literal: "..." with \ and " escaped. */
static void array_put_text(struct buf *b, const char *s)
{
    buf_putc(b, '"');
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\')
            buf_putc(b, '\\');
        buf_putc(b, *p);
    }
    buf_putc(b, '"');
}

static void array_sep(struct buf *b, size_t i)
{
    buf_putc(b, i == 0 ? '{' : ',');
}

static void array_put_i64(struct buf *b, int64_t v)
{
    char num[24];
    snprintf(num, sizeof(num), "%" PRId64, v);
    buf_puts(b, num);
}

int store_agents_health(store_t *self, const struct store_agent_health *rows, size_t n)
{
    if (!self || (n > 0 && !rows))
        return -EINVAL;
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!rows[i].id || !vg_utf8_valid(rows[i].id) ||
            (rows[i].agent_version && !vg_utf8_valid(rows[i].agent_version)))
            return -EINVAL;
    }

    enum { ID, SEEN, VERSION, UPTIME, DEPTH, BYTES, DMSG, DSMP, NCOLS };
    struct buf cols[NCOLS];
    memset(cols, 0, sizeof(cols));
    for (size_t i = 0; i < n; i++) {
        const struct store_agent_health *h = &rows[i];
        for (int c = 0; c < NCOLS; c++)
            array_sep(&cols[c], i);
        array_put_text(&cols[ID], h->id);
        array_put_i64(&cols[SEEN], h->last_seen_ms);
        if (h->agent_version)
            array_put_text(&cols[VERSION], h->agent_version);
        else
            buf_puts(&cols[VERSION], "NULL");
        array_put_i64(&cols[UPTIME], clamp_u64(h->uptime_s));
        array_put_i64(&cols[DEPTH], clamp_u64(h->spool_depth));
        array_put_i64(&cols[BYTES], clamp_u64(h->spool_bytes));
        array_put_i64(&cols[DMSG], clamp_u64(h->dropped_messages));
        array_put_i64(&cols[DSMP], clamp_u64(h->dropped_samples));
    }
    const char *params[NCOLS];
    bool oom = false;
    for (int c = 0; c < NCOLS; c++) {
        buf_putc(&cols[c], '}');
        oom |= cols[c].oom;
        params[c] = cols[c].data;
    }

    int r = oom ? -ENOMEM : ensure_conn(self);
    if (r == 0) {
        PGresult *res = PQexecParams(
            self->conn,
            "UPDATE agents AS a SET"
            " last_seen = CASE WHEN u.seen_ms = 0 THEN a.last_seen"
            "  ELSE 'epoch'::timestamptz + u.seen_ms * interval '1 millisecond' END,"
            " agent_version = coalesce(nullif(u.version, ''), a.agent_version),"
            " uptime_s = u.uptime_s, spool_depth = u.spool_depth, spool_bytes = u.spool_bytes,"
            " dropped_messages = u.dropped_messages, dropped_samples = u.dropped_samples "
            "FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::bigint[],"
            " $6::bigint[], $7::bigint[], $8::bigint[])"
            " AS u(id, seen_ms, version, uptime_s, spool_depth, spool_bytes, dropped_messages,"
            " dropped_samples) "
            "WHERE a.id = u.id",
            NCOLS, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            r = failed(self, res, "agent health");
        PQclear(res);
    }
    for (int c = 0; c < NCOLS; c++)
        buf_free(&cols[c]);
    return r;
}

/* ---- operators ---- */

static bool role_valid(const char *role)
{
    return strcmp(role, "viewer") == 0 || strcmp(role, "responder") == 0 ||
           strcmp(role, "admin") == 0;
}

int store_operators_load(store_t *self, int (*cb)(const struct store_operator *op, void *userdata),
                         void *userdata)
{
    if (!self || !cb)
        return -EINVAL;
    int r = ensure_conn(self);
    if (r < 0)
        return r;
    PGresult *res = PQexec(self->conn, "SELECT id, name, public_key, role, revoked_at IS NOT NULL"
                                       " FROM operators ORDER BY id");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        r = failed(self, res, "load operators");
        PQclear(res);
        return r;
    }
    int rows = PQntuples(res);
    for (int i = 0; i < rows; i++) {
        struct store_operator op;
        memset(&op, 0, sizeof(op));
        const char *id = PQgetvalue(res, i, 0);
        const char *key = PQgetvalue(res, i, 2);
        const char *role = PQgetvalue(res, i, 3);
        if (!fits(id, sizeof(op.id)) || !fits(key, sizeof(op.public_key)) ||
            !fits(role, sizeof(op.role))) {
            vg_log(VG_LOG_WARN, "store: operator row skipped: field too long operator=%.40s", id);
            continue;
        }
        memcpy(op.id, id, strlen(id) + 1);
        memcpy(op.public_key, key, strlen(key) + 1);
        memcpy(op.role, role, strlen(role) + 1);
        snprintf(op.name, sizeof(op.name), "%s", PQgetvalue(res, i, 1));
        op.revoked = strcmp(PQgetvalue(res, i, 4), "t") == 0;
        r = cb(&op, userdata);
        if (r != 0)
            break;
    }
    PQclear(res);
    return r < 0 ? r : 0;
}

int store_operator_ensure(store_t *self, const struct store_operator *op,
                          struct store_operator *ret_stored)
{
    if (!self || !op || !op->id[0] || !op->public_key[0] || !fits(op->id, sizeof(op->id)) ||
        !fits(op->name, sizeof(op->name)) || !fits(op->public_key, sizeof(op->public_key)) ||
        !fits(op->role, sizeof(op->role)) || !role_valid(op->role) || !vg_utf8_valid(op->id) ||
        !vg_utf8_valid(op->name) || !vg_utf8_valid(op->public_key))
        return -EINVAL;
    int r = ensure_conn(self);
    if (r < 0)
        return r;
    const char *params[] = {op->id, op->name, op->public_key, op->role, op->revoked ? "t" : "f"};
    /* A known key changes nothing (a revoked one stays revoked); a known id with another key is a
     * conflict (-EEXIST). One row comes back either way: the inserted one, or the one that was
     * there (the outer SELECT does not see the CTE's insert). */
    PGresult *res =
        PQexecParams(self->conn,
                     "WITH ins AS (INSERT INTO operators (id, name, public_key, role, revoked_at)"
                     " VALUES ($1, $2, $3, $4, CASE WHEN $5::boolean THEN now() END)"
                     " ON CONFLICT (public_key) DO NOTHING"
                     " RETURNING id, name, public_key, role, revoked_at IS NOT NULL)"
                     " SELECT * FROM ins UNION ALL"
                     " SELECT id, name, public_key, role, revoked_at IS NOT NULL FROM operators"
                     " WHERE public_key = $3",
                     5, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        r = failed(self, res, "operator ensure");
        PQclear(res);
        return r;
    }
    if (PQntuples(res) != 1) {
        vg_log(VG_LOG_WARN, "store: operator ensure: %d rows for one key", PQntuples(res));
        PQclear(res);
        return -EIO;
    }
    if (ret_stored) {
        struct store_operator stored;
        memset(&stored, 0, sizeof(stored));
        snprintf(stored.id, sizeof(stored.id), "%s", PQgetvalue(res, 0, 0));
        snprintf(stored.name, sizeof(stored.name), "%s", PQgetvalue(res, 0, 1));
        snprintf(stored.public_key, sizeof(stored.public_key), "%s", PQgetvalue(res, 0, 2));
        snprintf(stored.role, sizeof(stored.role), "%s", PQgetvalue(res, 0, 3));
        stored.revoked = strcmp(PQgetvalue(res, 0, 4), "t") == 0;
        *ret_stored = stored;
    }
    PQclear(res);
    return 0;
}

/* ---- audit ---- */

int store_audit(store_t *self, const char *actor, const char *action, const char *subject,
                const char *detail)
{
    if (!self || !actor || !action || !vg_utf8_valid(actor) || !vg_utf8_valid(action) ||
        (subject && !vg_utf8_valid(subject)) || (detail && !vg_utf8_valid(detail)))
        return -EINVAL;
    int r = ensure_conn(self);
    if (r < 0)
        return r;
    const char *params[] = {actor, action, subject, detail}; /* NULL -> SQL NULL */
    PGresult *res = PQexecParams(self->conn,
                                 "INSERT INTO audit_log (actor, action, subject, detail)"
                                 " VALUES ($1, $2, $3, $4)",
                                 4, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        r = failed(self, res, "audit");
    PQclear(res);
    return r;
}

/* ---- ingest ---- */

/*
 * Signal samples go in with COPY's binary format (PostgreSQL manual, "COPY", "Binary Format"):
 * a signature and two zero words, then per row a 16-bit field count and each field as a 32-bit
 * length and the type's binary (send/recv) form, integers in network byte order; a field count
 * of -1 ends the data. Numbers and timestamps therefore cross as 8 bytes each instead of text
 * that both sides would format and parse; text and jsonb fields are their UTF-8 text (jsonb
 * after a version byte), which the server validates as it would in text format.
 */
static const char copy_signature[] = "PGCOPY\n\377\r\n\0"
                                     "\0\0\0\0"  /* flags */
                                     "\0\0\0\0"; /* header extension length */
#define COPY_FIELDS 8              /* agent_id, seq, name, value, unit, labels, ts, state */
#define JSONB_VERSION 1            /* the one jsonb binary format version */
#define PG_EPOCH_MS 946684800000LL /* 2000-01-01 00:00:00 UTC, where timestamptz counts from */

static char *put_be16(char *p, uint16_t v)
{
    p[0] = (char)(v >> 8);
    p[1] = (char)v;
    return p + 2;
}

static char *put_be32(char *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (char)v;
    return p + 4;
}

static char *put_be64(char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (char)v;
    return p + 8;
}

/* A field of n bytes: its length, then the bytes. */
static char *put_field(char *p, const char *data, size_t n)
{
    p = put_be32(p, (uint32_t)n);
    memcpy(p, data, n);
    return p + n;
}

static char *put_field_u64(char *p, uint64_t v)
{
    return put_be64(put_be32(p, 8), v);
}

/* The most bytes json_put_string writes for s: six per byte (a \u escape) and the quotes. */
static size_t json_string_max(const char *s)
{
    return 6 * strlen(s) + 2;
}

/* A JSON string literal (RFC 8259): quote, backslash and control characters escaped. */
static char *json_put_string(char *p, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    *p++ = '"';
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c >= 0x20 && *c != '"' && *c != '\\') {
            *p++ = (char)*c;
            continue;
        }
        *p++ = '\\';
        switch (*c) {
        case '"':
        case '\\':
            *p++ = (char)*c;
            break;
        case '\n':
            *p++ = 'n';
            break;
        case '\r':
            *p++ = 'r';
            break;
        case '\t':
            *p++ = 't';
            break;
        case '\b':
            *p++ = 'b';
            break;
        case '\f':
            *p++ = 'f';
            break;
        default:
            *p++ = 'u';
            *p++ = '0';
            *p++ = '0';
            *p++ = hex[*c >> 4];
            *p++ = hex[*c & 0xf];
        }
    }
    *p++ = '"';
    return p;
}

/* Why PostgreSQL would refuse this sample, or NULL. */
static const char *signal_problem(const Vigil__Signal *s)
{
    if (!s)
        return "an empty signal";
    if (!vg_utf8_valid(str_or_empty(s->name)) || !vg_utf8_valid(str_or_empty(s->unit)))
        return "a signal name or unit is not valid UTF-8";
    if (s->ts_ms < TS_MIN_MS || s->ts_ms > TS_MAX_MS)
        return "a signal's timestamp is outside years 1-9999";
    if (s->n_labels > 0 && !s->labels)
        return "a signal's labels are missing";
    for (size_t i = 0; i < s->n_labels; i++) {
        const Vigil__Label *l = s->labels[i];
        if (!l || !vg_utf8_valid(str_or_empty(l->key)) || !vg_utf8_valid(str_or_empty(l->value)))
            return "a signal label is not valid UTF-8";
    }
    return NULL;
}

const char *store_message_problem(const Vigil__Envelope *m)
{
    if (!m || !m->sender || !m->sender[0] || !vg_utf8_valid(m->sender))
        return "no valid sender id";
    if (m->seq < 1 || m->seq > (uint64_t)INT64_MAX)
        return "sequence number out of range";
    if (m->sent_at_ms < TS_MIN_MS || m->sent_at_ms > TS_MAX_MS)
        return "send time outside years 1-9999";
    if (m->body_case == VIGIL__ENVELOPE__BODY_SIGNALS && m->signals) {
        const Vigil__SignalBatch *batch = m->signals;
        if (batch->n_signals > 0 && !batch->signals)
            return "signals missing";
        for (size_t i = 0; i < batch->n_signals; i++) {
            const char *why = signal_problem(batch->signals[i]);
            if (why)
                return why;
        }
    }
    /* Evidence fields were bounded by the wire; text PostgreSQL would refuse (the error) is
     * cleaned on the way in, not refused: one bad byte must not block the agent's spool. */
    if (m->body_case == VIGIL__ENVELOPE__BODY_EVIDENCE &&
        (!m->evidence || !m->evidence->kind || !m->evidence->error ||
         strlen(m->sender) >= sizeof(((struct store_evidence_event *)0)->agent_id)))
        return "an evidence chunk without kind or error field";
    return NULL;
}

struct msg_key {
    const char *sender;
    uint64_t seq;
    size_t index;
};

static int msg_key_cmp(const void *a, const void *b)
{
    const struct msg_key *x = a, *y = b;
    int c = strcmp(x->sender, y->sender);
    if (c)
        return c;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return x->index < y->index ? -1 : (x->index > y->index);
}

/* The first message (lowest index) with this sender and seq, or NULL. */
static const struct msg_key *msg_key_find(const struct msg_key *keys, size_t n, const char *sender,
                                          uint64_t seq)
{
    size_t lo = 0, hi = n;
    struct msg_key probe = {sender, seq, 0};
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (msg_key_cmp(&keys[mid], &probe) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < n && keys[lo].seq == seq && strcmp(keys[lo].sender, sender) == 0)
        return &keys[lo];
    return NULL;
}

/* The four unnest() arrays of the INSERT, as PostgreSQL array literals. */
static int build_message_arrays(Vigil__Envelope *const *msgs, size_t n, struct buf arrays[4])
{
    for (size_t i = 0; i < n; i++) {
        const Vigil__Envelope *m = msgs[i];
        char ts[40];
        if (render_ts(m->sent_at_ms, ts, sizeof(ts)) < 0)
            return -EINVAL;
        for (int c = 0; c < 4; c++)
            array_sep(&arrays[c], i);
        array_put_text(&arrays[0], m->sender);
        array_put_i64(&arrays[1], (int64_t)m->seq);
        array_put_text(&arrays[2], kind_name(m->body_case));
        array_put_text(&arrays[3], ts);
    }
    bool oom = false;
    for (int c = 0; c < 4; c++) {
        buf_putc(&arrays[c], '}');
        oom |= arrays[c].oom;
    }
    return oom ? -ENOMEM : 0;
}

/* One COPY row: agent_id, seq, name, value, unit, labels (a JSON object), ts, state. */
static void copy_put_signal(struct buf *b, const Vigil__Envelope *m, size_t sender_len,
                            const Vigil__Signal *s)
{
    const char *name = str_or_empty(s->name), *unit = str_or_empty(s->unit);
    size_t name_len = strlen(name), unit_len = strlen(unit);
    size_t labels_max = 2;
    for (size_t i = 0; i < s->n_labels; i++)
        labels_max += json_string_max(str_or_empty(s->labels[i]->key)) +
                      json_string_max(str_or_empty(s->labels[i]->value)) + 2;
    if (!buf_reserve(b, 2 + COPY_FIELDS * 4 + sender_len + 8 + name_len + 8 + unit_len + 1 +
                            labels_max + 8 + 2))
        return;

    char *p = put_be16(b->data + b->len, COPY_FIELDS);
    p = put_field(p, m->sender, sender_len);
    p = put_field_u64(p, m->seq);
    p = put_field(p, name, name_len);
    double value = isnan(s->value) ? NAN : s->value; /* one NaN, as text format would store */
    uint64_t bits;
    memcpy(&bits, &value, sizeof(bits));
    p = put_field_u64(p, bits);
    p = put_field(p, unit, unit_len);

    char *labels_len = p;
    p += 4;
    *p++ = JSONB_VERSION;
    *p++ = '{';
    for (size_t i = 0; i < s->n_labels; i++) {
        if (i > 0)
            *p++ = ',';
        p = json_put_string(p, str_or_empty(s->labels[i]->key));
        *p++ = ':';
        p = json_put_string(p, str_or_empty(s->labels[i]->value));
    }
    *p++ = '}';
    put_be32(labels_len, (uint32_t)(p - labels_len - 4));

    /* Microseconds since 2000-01-01; in range because message_valid checked ts_ms. */
    p = put_field_u64(p, (uint64_t)((s->ts_ms - PG_EPOCH_MS) * 1000));
    /* smallint: the threshold state the agent evaluated (0-3; anything else stored as none). */
    uint16_t state = s->state >= 0 && s->state <= 3 ? (uint16_t)s->state : 0;
    p = put_be16(put_be32(p, 2), state);
    b->len = (size_t)(p - b->data);
}

/* Hands the buffered COPY data to libpq; false when the connection failed. */
static bool copy_flush(store_t *self, struct buf *b)
{
    if (b->len > 0 && PQputCopyData(self->conn, b->data, (int)b->len) != 1)
        return false;
    b->len = 0;
    return true;
}

/*
 * Streams the signals of the messages marked fresh with one COPY. Returns 0, or a negative
 * errno with the COPY ended (aborted) and its results consumed.
 */
static int copy_signals(store_t *self, Vigil__Envelope *const *msgs, size_t n, const bool *fresh,
                        size_t *ret_rows)
{
    struct buf *data = &self->copy;
    size_t rows = 0;
    int r = 0;

    PGresult *res =
        PQexec(self->conn, "COPY signals (agent_id, seq, name, value, unit, labels, ts, state)"
                           " FROM STDIN (FORMAT binary)");
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        r = failed(self, res, "ingest COPY");
        PQclear(res);
        return r;
    }
    PQclear(res);

    const char *abort_reason = NULL;
    data->len = 0;
    buf_put(data, copy_signature, sizeof(copy_signature) - 1);
    for (size_t i = 0; i < n && !abort_reason; i++) {
        const Vigil__Envelope *m = msgs[i];
        if (!fresh[i] || m->body_case != VIGIL__ENVELOPE__BODY_SIGNALS || !m->signals)
            continue;
        size_t sender_len = strlen(m->sender);
        for (size_t k = 0; k < m->signals->n_signals; k++) {
            copy_put_signal(data, m, sender_len, m->signals->signals[k]);
            rows++;
            if (data->oom) {
                abort_reason = "out of memory";
                r = -ENOMEM;
                break;
            }
            if (data->len >= COPY_CHUNK && !copy_flush(self, data)) {
                abort_reason = "send failed";
                r = -EIO;
                break;
            }
        }
    }
    if (!abort_reason) {
        char trailer[2];
        put_be16(trailer, 0xffff); /* field count -1: end of data */
        buf_put(data, trailer, sizeof(trailer));
        if (data->oom) {
            abort_reason = "out of memory";
            r = -ENOMEM;
        } else if (!copy_flush(self, data)) {
            abort_reason = "send failed";
            r = -EIO;
        }
    }
    data->len = 0;
    data->oom = false;

    if (PQputCopyEnd(self->conn, abort_reason) != 1 && r == 0)
        r = -EIO;
    /* Consume every result; the COPY's own is the one that says whether rows went in. */
    for (int guard = 0; guard < 16 && (res = PQgetResult(self->conn)) != NULL; guard++) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK && r == 0)
            r = failed(self, res, "ingest COPY");
        PQclear(res);
    }
    if (r < 0 && abort_reason)
        vg_log(VG_LOG_WARN, "store: ingest COPY aborted reason=\"%s\"", abort_reason);
    if (r < 0 && PQstatus(self->conn) != CONNECTION_OK)
        r = -EIO;
    if (r == 0)
        *ret_rows = rows;
    return r;
}

/* ---- evidence ---- */

/*
 * Chunks go in during ingest, inside the batch's transaction. When an artifact's chunks are
 * complete (its last chunk is stored and the chunks cover 0..total_size with no gap or
 * overlap) the SHA-256 is re-computed over the stored bytes, streamed in offset order one
 * chunk at a time (single-row mode), and compared with the agent's. A match becomes a vault
 * row whose chain hash links it to the previous one; the chain is extended under a
 * transaction-level advisory lock, so two writers cannot read the same predecessor (and
 * prev_chain is unique, so even a writer that skipped the lock could not fork it).
 */

#define EVIDENCE_CHAIN_LOCK "7623190"
#define ERROR_TEXT_MAX (VG_MAX_VALUE_LEN + 1) /* pg_advisory_xact_lock key of the vault's chain */
#define TIMEOUT_ERROR "timed out: no complete artifact from the agent before the deadline"

void store_evidence_events_clear(struct store_evidence_events *events)
{
    if (!events)
        return;
    free(events->items);
    events->items = NULL;
    events->n = events->cap = 0;
}

/* Appends an event; NULL when out of memory. */
static struct store_evidence_event *
event_add(struct store_evidence_events *ev, enum store_evidence_outcome outcome, const char *reason,
          const char *agent_id, const char *kind, uint64_t collection_id, uint64_t artifact)
{
    if (ev->n == ev->cap) {
        size_t cap = ev->cap ? ev->cap * 2 : 16;
        struct store_evidence_event *items = realloc(ev->items, cap * sizeof(*items));
        if (!items)
            return NULL;
        ev->items = items;
        ev->cap = cap;
    }
    struct store_evidence_event *e = &ev->items[ev->n++];
    memset(e, 0, sizeof(*e));
    e->outcome = outcome;
    e->reason = reason;
    snprintf(e->agent_id, sizeof(e->agent_id), "%s", str_or_empty(agent_id));
    snprintf(e->kind, sizeof(e->kind), "%s", str_or_empty(kind));
    e->collection_id = collection_id;
    e->artifact = artifact;
    return e;
}

/* Copies text, each byte that is not part of valid UTF-8 replaced with '?': an agent's error
 * text must not make PostgreSQL refuse the whole batch. */
static void utf8_sanitize(const char *text, char *out, size_t outlen)
{
    size_t o = 0, len = strlen(text);
    for (size_t i = 0; i < len && o + 1 < outlen;) {
        size_t n = vg_utf8_char_len(text + i, len - i);
        if (n == 0) {
            out[o++] = '?';
            i++;
            continue;
        }
        if (o + n >= outlen)
            break;
        memcpy(out + o, text + i, n);
        o += n;
        i += n;
    }
    out[o] = '\0';
}

static bool hex_decode32(const char *hex, uint8_t out[VG_SHA256_LEN])
{
    if (strlen(hex) != VG_SHA256_HEX_LEN)
        return false;
    for (size_t i = 0; i < VG_SHA256_LEN; i++) {
        unsigned v = 0;
        for (int k = 0; k < 2; k++) {
            char c = hex[2 * i + (size_t)k];
            unsigned d;
            if (c >= '0' && c <= '9')
                d = (unsigned)(c - '0');
            else if (c >= 'a' && c <= 'f')
                d = (unsigned)(c - 'a' + 10);
            else
                return false;
            v = v * 16 + d;
        }
        out[i] = (uint8_t)v;
    }
    return true;
}

/* ---- the chain ---- */

static void chain_put(struct vg_sha256 *h, const void *data, size_t len)
{
    char head[24];
    int n = snprintf(head, sizeof(head), "%zu:", len);
    vg_sha256_update(h, head, (size_t)n);
    vg_sha256_update(h, data, len);
    vg_sha256_update(h, ",", 1);
}

static void chain_put_text(struct vg_sha256 *h, const char *text)
{
    chain_put(h, str_or_empty(text), strlen(str_or_empty(text)));
}

static void chain_put_i64(struct vg_sha256 *h, int64_t v)
{
    char num[24];
    snprintf(num, sizeof(num), "%" PRId64, v);
    chain_put_text(h, num);
}

static void chain_put_u64(struct vg_sha256 *h, uint64_t v)
{
    char num[24];
    snprintf(num, sizeof(num), "%" PRIu64, v);
    chain_put_text(h, num);
}

void store_evidence_chain(const uint8_t prev_chain[32], const uint8_t sha256[32],
                          const struct store_evidence_meta *meta, uint8_t ret_chain[32])
{
    struct vg_sha256 h;

    vg_sha256_init(&h);
    vg_sha256_update(&h, prev_chain, VG_SHA256_LEN);
    vg_sha256_update(&h, sha256, VG_SHA256_LEN);
    chain_put_u64(&h, meta->collection_id);
    chain_put_text(&h, meta->agent_id);
    chain_put_u64(&h, meta->agent_seq);
    chain_put_u64(&h, meta->artifact);
    chain_put_text(&h, meta->node);
    chain_put_text(&h, meta->kind);
    chain_put_u64(&h, meta->nargs);
    /* Arguments by key (bytewise); keys are distinct, so "the next key after the last one
     * written" walks them in order without a copy to sort. */
    const char *last = NULL;
    for (size_t written = 0; written < meta->nargs; written++) {
        const struct store_evidence_arg *next = NULL;
        for (size_t i = 0; i < meta->nargs; i++) {
            const struct store_evidence_arg *a = &meta->args[i];
            if ((!last || strcmp(a->key, last) > 0) && (!next || strcmp(a->key, next->key) < 0))
                next = a;
        }
        if (!next)
            break;
        chain_put_text(&h, next->key);
        chain_put_text(&h, next->value);
        last = next->key;
    }
    chain_put_i64(&h, meta->collected_at_ms);
    chain_put_i64(&h, meta->stored_at_ms);
    chain_put_u64(&h, meta->size);
    chain_put_text(&h, meta->truncated ? "1" : "0");
    vg_sha256_final(&h, ret_chain);
}

/* ---- targets ---- */

/* A pending target fails, with an audit row, in one statement. *ret_changed: it was pending. */
static int target_fail(store_t *self, uint64_t collection_id, const char *agent_id,
                       const char *error, const char *action, bool *ret_changed)
{
    char coll[24], clean[ERROR_TEXT_MAX];
    snprintf(coll, sizeof(coll), "%" PRIu64, collection_id);
    utf8_sanitize(error, clean, sizeof(clean));
    const char *params[] = {coll, agent_id, clean, action};
    PGresult *res = PQexecParams(
        self->conn,
        "WITH failed AS ("
        " UPDATE evidence_targets SET status = 'failed', error = $3, updated_at = now()"
        " WHERE collection_id = $1::bigint AND agent_id = $2 AND status = 'pending'"
        " RETURNING collection_id, agent_id) "
        "INSERT INTO audit_log (actor, action, subject, detail)"
        " SELECT 'coordinator', $4, format('collection=%s agent=%s', collection_id, agent_id), $3"
        " FROM failed",
        4, NULL, params, NULL, NULL, 0);
    int r = 0;
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        r = failed(self, res, "evidence target update");
    else if (ret_changed)
        *ret_changed = strcmp(PQcmdTuples(res), "0") != 0;
    PQclear(res);
    return r;
}

/* A chunk or artifact refused: the target (if pending) fails with the reason, and an event. */
static int reject(store_t *self, struct store_evidence_events *ev, const char *reason,
                  const Vigil__Envelope *m, bool fail_the_target, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static int reject(store_t *self, struct store_evidence_events *ev, const char *reason,
                  const Vigil__Envelope *m, bool fail_the_target, const char *fmt, ...)
{
    const Vigil__EvidenceChunk *c = m->evidence;
    struct store_evidence_event *e = event_add(ev, STORE_EVIDENCE_REJECTED, reason, m->sender,
                                               c->kind, c->collection_id, c->artifact);
    if (!e)
        return -ENOMEM;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->detail, sizeof(e->detail), fmt, ap);
    va_end(ap);
    if (!fail_the_target)
        return 0;
    return target_fail(self, c->collection_id, m->sender, e->detail, "evidence.rejected", NULL);
}

int store_evidence_target_fail(store_t *self, uint64_t collection_id, const char *agent_id,
                               const char *error)
{
    if (!self || !agent_id || !error || !vg_utf8_valid(agent_id))
        return -EINVAL;
    int r = ensure_conn(self);
    if (r < 0)
        return r;
    bool changed = false;
    r = target_fail(self, collection_id, agent_id, error, "evidence.failed", &changed);
    if (r == 0 && !changed)
        r = -ENOENT;
    return r;
}

/* ---- ingest of chunks ---- */

/* An artifact that got a chunk in this batch: settled (verified or not) before COMMIT. */
struct touched_artifact {
    const Vigil__Envelope *m; /* the first message of this batch that carried one of its chunks */
};

/*
 * Stores one chunk when the coordinator asked this agent for this collection and the target is
 * still pending. *ret_stored says whether it went in (and the artifact needs settling).
 */
static int ingest_chunk(store_t *self, const Vigil__Envelope *m, struct store_evidence_events *ev,
                        bool *ret_stored)
{
    const Vigil__EvidenceChunk *c = m->evidence;
    char coll[24], art[24], off[24], seq[24], total[24], collected[24];
    int r;

    *ret_stored = false;
    snprintf(coll, sizeof(coll), "%" PRIu64, c->collection_id);
    const char *lookup[] = {coll, m->sender};
    PGresult *res = PQexecParams(self->conn,
                                 "SELECT t.status, c.kind FROM evidence_targets t"
                                 " JOIN evidence_collections c ON c.id = t.collection_id"
                                 " WHERE t.collection_id = $1::bigint AND t.agent_id = $2"
                                 " FOR UPDATE OF t",
                                 2, NULL, lookup, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        r = failed(self, res, "evidence target lookup");
        PQclear(res);
        return r;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        return reject(self, ev, "unknown_collection", m, false,
                      "collection %" PRIu64 " was never asked of this agent; chunk not stored",
                      c->collection_id);
    }
    char status[16], kind[40];
    snprintf(status, sizeof(status), "%s", PQgetvalue(res, 0, 0));
    snprintf(kind, sizeof(kind), "%s", PQgetvalue(res, 0, 1));
    PQclear(res);

    if (strcmp(status, "pending") != 0)
        return reject(self, ev, "not_pending", m, false,
                      "collection %" PRIu64 " is already %s for this agent; chunk not stored",
                      c->collection_id, status);
    if (strcmp(kind, c->kind) != 0)
        return reject(self, ev, "kind", m, true,
                      "the agent answered a %s request with a %.32s artifact", kind, c->kind);
    if (c->error[0] != '\0') {
        struct store_evidence_event *e = event_add(ev, STORE_EVIDENCE_FAILED, "agent", m->sender,
                                                   c->kind, c->collection_id, c->artifact);
        if (!e)
            return -ENOMEM;
        utf8_sanitize(c->error, e->detail, sizeof(e->detail));
        return target_fail(self, c->collection_id, m->sender, c->error, "evidence.failed", NULL);
    }
    if (c->last && (c->collected_at_ms < TS_MIN_MS || c->collected_at_ms > TS_MAX_MS))
        return reject(self, ev, "invalid", m, true,
                      "collection time %" PRId64 " ms is outside years 1..9999",
                      c->collected_at_ms);

    /* An artifact id belongs to one collection: a chunk may not splice into another's. */
    snprintf(art, sizeof(art), "%" PRIu64, c->artifact);
    const char *reuse[] = {m->sender, art, coll};
    res = PQexecParams(self->conn,
                       "SELECT 1 FROM evidence_chunks WHERE agent_id = $1"
                       " AND artifact = $2::bigint AND collection_id <> $3::bigint LIMIT 1",
                       3, NULL, reuse, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        r = failed(self, res, "evidence artifact check");
        PQclear(res);
        return r;
    }
    bool reused = PQntuples(res) > 0;
    PQclear(res);
    if (reused)
        return reject(self, ev, "artifact_reuse", m, true,
                      "artifact %" PRIu64 " already belongs to another collection", c->artifact);

    snprintf(off, sizeof(off), "%" PRIu64, c->offset);
    snprintf(seq, sizeof(seq), "%" PRIu64, m->seq);
    snprintf(total, sizeof(total), "%" PRIu64, c->total_size);
    snprintf(collected, sizeof(collected), "%" PRId64, c->collected_at_ms);
    const char *params[] = {m->sender,
                            art,
                            off,
                            coll,
                            seq,
                            (const char *)c->data.data,
                            c->last ? "t" : "f",
                            c->last ? total : NULL,
                            c->last ? (const char *)c->sha256.data : NULL,
                            c->truncated ? "t" : "f",
                            c->last ? collected : NULL};
    int lengths[11] = {0};
    int formats[11] = {0};
    lengths[5] = (int)c->data.len;
    formats[5] = 1;
    lengths[8] = (int)c->sha256.len;
    formats[8] = 1;
    static const uint8_t empty = 0;
    if (!params[5])
        params[5] = (const char *)&empty; /* an empty chunk: zero bytes, not NULL */
    res = PQexecParams(
        self->conn,
        "INSERT INTO evidence_chunks (agent_id, artifact, \"offset\", collection_id, seq, data,"
        " last, total_size, sha256, truncated, collected_at)"
        " VALUES ($1, $2::bigint, $3::bigint, $4::bigint, $5::bigint, $6::bytea, $7::boolean,"
        " $8::bigint, $9::bytea, $10::boolean,"
        " 'epoch'::timestamptz + $11::bigint * interval '1 millisecond')"
        " ON CONFLICT DO NOTHING",
        11, NULL, params, lengths, formats, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        r = failed(self, res, "evidence chunk insert");
        PQclear(res);
        return r;
    }
    bool inserted = strcmp(PQcmdTuples(res), "1") == 0;
    PQclear(res);
    if (!inserted)
        return reject(self, ev, "duplicate", m, true,
                      "artifact %" PRIu64 " has two different chunks at offset %" PRIu64,
                      c->artifact, c->offset);
    *ret_stored = true;
    return 0;
}

/* SHA-256 of the artifact's stored chunks in offset order, one row in memory at a time. */
static int hash_artifact(store_t *self, const char *agent_id, const char *artifact,
                         uint8_t ret_sha[VG_SHA256_LEN])
{
    const char *params[] = {agent_id, artifact};
    struct vg_sha256 h;
    int r = 0;

    if (!PQsendQueryParams(self->conn,
                           "SELECT data FROM evidence_chunks WHERE agent_id = $1"
                           " AND artifact = $2::bigint ORDER BY \"offset\"",
                           2, NULL, params, NULL, NULL, 1))
        return failed(self, NULL, "evidence hash query");
    if (!PQsetSingleRowMode(self->conn))
        vg_log(VG_LOG_DEBUG, "store: single-row mode refused; reading the artifact at once");
    vg_sha256_init(&h);
    PGresult *res;
    while ((res = PQgetResult(self->conn)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK) {
            for (int i = 0; i < PQntuples(res); i++)
                vg_sha256_update(&h, PQgetvalue(res, i, 0), (size_t)PQgetlength(res, i, 0));
        } else if (r == 0) {
            r = failed(self, res, "evidence hash");
        }
        PQclear(res);
    }
    if (r == 0)
        vg_sha256_final(&h, ret_sha);
    return r;
}

/* Parses the collection's arguments (a jsonb object's text) into args, pointing into *ret_json. */
static int args_from_json(const char *text, json_t **ret_json, struct store_evidence_arg *args,
                          size_t max, size_t *ret_n)
{
    json_error_t jerr;
    json_t *obj = json_loads(text, 0, &jerr);
    const char *key;
    json_t *value;
    size_t n = 0;

    if (!json_is_object(obj) || json_object_size(obj) > max) {
        json_decref(obj);
        return -EINVAL;
    }
    json_object_foreach(obj, key, value)
    {
        args[n].key = key;
        args[n].value = json_is_string(value) ? json_string_value(value) : "";
        n++;
    }
    *ret_json = obj;
    *ret_n = n;
    return 0;
}

/* Appends the verified artifact to the vault and marks its target stored. */
static int vault_append(store_t *self, const Vigil__Envelope *m, const char *art,
                        const uint8_t sha[VG_SHA256_LEN], uint64_t size, bool truncated,
                        int64_t collected_at_ms, struct store_evidence_events *ev)
{
    const Vigil__EvidenceChunk *c = m->evidence;
    char coll[24];
    int r;

    snprintf(coll, sizeof(coll), "%" PRIu64, c->collection_id);
    PGresult *res = PQexec(self->conn, "SELECT pg_advisory_xact_lock(" EVIDENCE_CHAIN_LOCK ")");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        r = failed(self, res, "evidence chain lock");
        PQclear(res);
        return r;
    }
    PQclear(res);
    /* After the lock, so this statement's snapshot sees the chain's latest committed row. */
    const char *params[] = {coll, m->sender};
    res = PQexecParams(
        self->conn,
        "SELECT (SELECT encode(chain, 'hex') FROM evidence ORDER BY id DESC LIMIT 1),"
        " (SELECT coalesce(max(agent_seq), 0) + 1 FROM evidence WHERE agent_id = $2),"
        " c.kind, c.args::text, t.node, t.status"
        " FROM evidence_collections c JOIN evidence_targets t ON t.collection_id = c.id"
        " WHERE c.id = $1::bigint AND t.agent_id = $2",
        2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        r = PQresultStatus(res) == PGRES_TUPLES_OK ? -EPROTO : failed(self, res, "evidence chain");
        PQclear(res);
        return r;
    }
    /* Two artifacts of one target completed in the same batch: both chunks found the target
     * pending, but only the first may enter the vault. */
    if (strcmp(PQgetvalue(res, 0, 5), "pending") != 0) {
        PQclear(res);
        return reject(self, ev, "duplicate", m, false,
                      "collection %" PRIu64 " already has this agent's artifact; artifact %" PRIu64
                      " not stored",
                      c->collection_id, c->artifact);
    }
    uint8_t prev[VG_SHA256_LEN] = {0};
    if (!PQgetisnull(res, 0, 0) && !hex_decode32(PQgetvalue(res, 0, 0), prev)) {
        PQclear(res);
        vg_log(VG_LOG_WARN, "store: the vault's last chain hash is unreadable");
        return -EPROTO;
    }
    int64_t agent_seq = 0;
    parse_i64(PQgetvalue(res, 0, 1), &agent_seq);
    char kind[40], node[256];
    snprintf(kind, sizeof(kind), "%s", PQgetvalue(res, 0, 2));
    snprintf(node, sizeof(node), "%s", PQgetvalue(res, 0, 4));
    char *args_text = strdup(PQgetvalue(res, 0, 3));
    PQclear(res);
    if (!args_text)
        return -ENOMEM;

    struct store_evidence_arg args[VG_MAX_EVIDENCE_ARGS];
    size_t nargs = 0;
    json_t *args_json = NULL;
    r = args_from_json(args_text, &args_json, args, VG_MAX_EVIDENCE_ARGS, &nargs);
    if (r < 0) {
        free(args_text);
        return r;
    }
    struct store_evidence_meta meta = {
        .collection_id = c->collection_id,
        .agent_id = m->sender,
        .agent_seq = (uint64_t)agent_seq,
        .artifact = c->artifact,
        .node = node,
        .kind = kind,
        .args = args,
        .nargs = nargs,
        .collected_at_ms = collected_at_ms,
        .stored_at_ms = vg_wall_ms(),
        .size = size,
        .truncated = truncated,
    };
    uint8_t chain[VG_SHA256_LEN];
    store_evidence_chain(prev, sha, &meta, chain);
    json_decref(args_json);

    char seq_text[24], size_text[24], collected[24], stored[24];
    char sha_hex[VG_SHA256_HEX_LEN + 1], prev_hex[VG_SHA256_HEX_LEN + 1],
        chain_hex[VG_SHA256_HEX_LEN + 1];
    snprintf(seq_text, sizeof(seq_text), "%" PRId64, agent_seq);
    snprintf(size_text, sizeof(size_text), "%" PRIu64, size);
    snprintf(collected, sizeof(collected), "%" PRId64, meta.collected_at_ms);
    snprintf(stored, sizeof(stored), "%" PRId64, meta.stored_at_ms);
    vg_hex(sha, VG_SHA256_LEN, sha_hex);
    vg_hex(prev, VG_SHA256_LEN, prev_hex);
    vg_hex(chain, VG_SHA256_LEN, chain_hex);
    const char *insert[] = {coll,     m->sender, seq_text,  art,
                            node,     kind,      args_text, collected,
                            stored,   size_text, sha_hex,   truncated ? "t" : "f",
                            prev_hex, chain_hex};
    res = PQexecParams(
        self->conn,
        "WITH e AS ("
        " INSERT INTO evidence (collection_id, agent_id, agent_seq, artifact, node, kind, args,"
        "  collected_at, stored_at, size, sha256, truncated, prev_chain, chain)"
        " VALUES ($1::bigint, $2, $3::bigint, $4::bigint, $5, $6, $7::jsonb,"
        "  'epoch'::timestamptz + $8::bigint * interval '1 millisecond',"
        "  'epoch'::timestamptz + $9::bigint * interval '1 millisecond',"
        "  $10::bigint, decode($11, 'hex'), $12::boolean, decode($13, 'hex'), decode($14, 'hex'))"
        " RETURNING id, collection_id, agent_id) "
        "UPDATE evidence_targets t SET status = 'stored', evidence_id = e.id, updated_at = now()"
        " FROM e WHERE t.collection_id = e.collection_id AND t.agent_id = e.agent_id"
        " RETURNING e.id",
        14, NULL, insert, NULL, NULL, 0);
    free(args_text);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        r = PQresultStatus(res) == PGRES_TUPLES_OK ? -EPROTO : failed(self, res, "evidence insert");
        PQclear(res);
        return r;
    }
    int64_t id = 0;
    parse_i64(PQgetvalue(res, 0, 0), &id);
    PQclear(res);

    struct store_evidence_event *e =
        event_add(ev, STORE_EVIDENCE_STORED, "", m->sender, kind, c->collection_id, c->artifact);
    if (!e)
        return -ENOMEM;
    e->evidence_id = (uint64_t)id;
    e->size = size;
    snprintf(e->detail, sizeof(e->detail), "sha256=%s node=%s", sha_hex, node);
    return 0;
}

/*
 * Settles an artifact that got a chunk in this batch: nothing yet while its last chunk or a
 * gap is missing; refused when its chunks overlap or run past the declared size or when the
 * stored bytes do not hash to the agent's SHA-256; otherwise into the vault.
 */
static int settle_artifact(store_t *self, const Vigil__Envelope *m,
                           struct store_evidence_events *ev)
{
    const Vigil__EvidenceChunk *c = m->evidence;
    char art[24];
    int r;

    snprintf(art, sizeof(art), "%" PRIu64, c->artifact);
    const char *params[] = {m->sender, art};
    PGresult *res = PQexecParams(
        self->conn,
        "SELECT count(*) FILTER (WHERE last), max(total_size) FILTER (WHERE last),"
        " encode((array_agg(sha256) FILTER (WHERE last))[1], 'hex'),"
        " coalesce(bool_or(truncated) FILTER (WHERE last), false),"
        " (extract(epoch FROM max(collected_at) FILTER (WHERE last)) * 1000)::bigint,"
        " coalesce(sum(len), 0), coalesce(bool_or(off < prev_end), false),"
        " coalesce(bool_or(off > prev_end), false), coalesce(max(off + len), 0)"
        " FROM (SELECT last, total_size, sha256, truncated, collected_at,"
        "  \"offset\" AS off, length(data)::bigint AS len,"
        "  coalesce(lag(\"offset\" + length(data)) OVER (ORDER BY \"offset\"), 0) AS prev_end"
        "  FROM evidence_chunks WHERE agent_id = $1 AND artifact = $2::bigint) s",
        2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        r = failed(self, res, "evidence artifact shape");
        PQclear(res);
        return r;
    }
    int64_t lasts = 0, total = 0, collected_at = 0, sum = 0, end = 0;
    parse_i64(PQgetvalue(res, 0, 0), &lasts);
    parse_i64(PQgetvalue(res, 0, 1), &total);
    char agent_hex[VG_SHA256_HEX_LEN + 1];
    snprintf(agent_hex, sizeof(agent_hex), "%s", PQgetvalue(res, 0, 2));
    bool truncated = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
    parse_i64(PQgetvalue(res, 0, 4), &collected_at);
    parse_i64(PQgetvalue(res, 0, 5), &sum);
    bool overlap = strcmp(PQgetvalue(res, 0, 6), "t") == 0;
    bool gap = strcmp(PQgetvalue(res, 0, 7), "t") == 0;
    parse_i64(PQgetvalue(res, 0, 8), &end);
    PQclear(res);

    if (lasts == 0)
        return 0; /* more chunks to come */
    if (lasts > 1 || overlap || end > total || sum > total)
        return reject(self, ev, "size", m, true,
                      "artifact %" PRIu64 ": chunks overlap or run past the declared size of "
                      "%" PRId64 " bytes; not stored",
                      c->artifact, total);
    if (gap || sum < total)
        return 0; /* a chunk in the middle is still on its way */

    uint8_t stored_sha[VG_SHA256_LEN], agent_sha[VG_SHA256_LEN];
    r = hash_artifact(self, m->sender, art, stored_sha);
    if (r < 0)
        return r;
    char stored_hex[VG_SHA256_HEX_LEN + 1];
    vg_hex(stored_sha, VG_SHA256_LEN, stored_hex);
    if (!hex_decode32(agent_hex, agent_sha) ||
        vg_memcmp_ct(agent_sha, stored_sha, VG_SHA256_LEN) != 0)
        return reject(self, ev, "sha256", m, true,
                      "sha256 mismatch: agent said %s, stored bytes hash to %s", agent_hex,
                      stored_hex);
    return vault_append(self, m, art, stored_sha, (uint64_t)total, truncated, collected_at, ev);
}

/* The evidence of the fresh messages of a batch, inside its transaction. */
static int ingest_evidence(store_t *self, Vigil__Envelope *const *msgs, size_t n, const bool *fresh,
                           struct store_evidence_events *ev)
{
    struct touched_artifact *touched = NULL;
    size_t ntouched = 0;
    int r = 0;

    for (size_t i = 0; i < n && r == 0; i++) {
        const Vigil__Envelope *m = msgs[i];
        bool stored = false;
        if (!fresh[i] || m->body_case != VIGIL__ENVELOPE__BODY_EVIDENCE)
            continue;
        r = ingest_chunk(self, m, ev, &stored);
        if (r < 0 || !stored)
            continue;
        bool seen = false;
        for (size_t k = 0; k < ntouched && !seen; k++)
            seen = touched[k].m->evidence->artifact == m->evidence->artifact &&
                   strcmp(touched[k].m->sender, m->sender) == 0;
        if (seen)
            continue;
        if (!touched) {
            touched = calloc(n, sizeof(*touched));
            if (!touched) {
                r = -ENOMEM;
                break;
            }
        }
        touched[ntouched++].m = m;
    }
    for (size_t k = 0; k < ntouched && r == 0; k++)
        r = settle_artifact(self, touched[k].m, ev);
    free(touched);
    return r;
}

/* ---- collections ---- */

int store_evidence_collection_create(store_t *self, const char *actor, const char *kind,
                                     const struct store_evidence_arg *args, size_t nargs,
                                     int64_t deadline_ms,
                                     const struct store_evidence_target *targets, size_t ntargets,
                                     uint64_t *ret_id)
{
    if (!self || !actor || !kind || (nargs > 0 && !args) || (ntargets > 0 && !targets) ||
        nargs > VG_MAX_EVIDENCE_ARGS || !vg_utf8_valid(actor) || !vg_utf8_valid(kind) ||
        deadline_ms < TS_MIN_MS || deadline_ms > TS_MAX_MS)
        return -EINVAL;
    for (size_t i = 0; i < nargs; i++) {
        if (!args[i].key || !args[i].value || !vg_utf8_valid(args[i].key) ||
            !vg_utf8_valid(args[i].value))
            return -EINVAL;
        for (size_t k = 0; k < i; k++)
            if (strcmp(args[i].key, args[k].key) == 0)
                return -EINVAL;
    }
    for (size_t i = 0; i < ntargets; i++)
        if (!targets[i].agent_id || !targets[i].node || !vg_utf8_valid(targets[i].agent_id) ||
            !vg_utf8_valid(targets[i].node))
            return -EINVAL;

    enum { KEYS, VALUES, AGENTS, NODES, NCOLS };
    struct buf cols[NCOLS];
    memset(cols, 0, sizeof(cols));
    for (size_t i = 0; i < nargs; i++) {
        array_sep(&cols[KEYS], i);
        array_put_text(&cols[KEYS], args[i].key);
        array_sep(&cols[VALUES], i);
        array_put_text(&cols[VALUES], args[i].value);
    }
    for (size_t i = 0; i < ntargets; i++) {
        array_sep(&cols[AGENTS], i);
        array_put_text(&cols[AGENTS], targets[i].agent_id);
        array_sep(&cols[NODES], i);
        array_put_text(&cols[NODES], targets[i].node);
    }
    bool oom = false;
    for (int c = 0; c < NCOLS; c++) {
        if (cols[c].len == 0)
            buf_putc(&cols[c], '{');
        buf_putc(&cols[c], '}');
        oom |= cols[c].oom;
    }
    int r = oom ? -ENOMEM : ensure_conn(self);
    if (r < 0)
        goto out;
    r = exec_command(self, "BEGIN", "collection BEGIN");
    if (r < 0)
        goto err_rollback;

    char deadline[24], count[24];
    snprintf(deadline, sizeof(deadline), "%" PRId64, deadline_ms);
    snprintf(count, sizeof(count), "%zu", ntargets);
    const char *params[] = {actor, kind, cols[KEYS].data, cols[VALUES].data, deadline, count};
    PGresult *res =
        PQexecParams(self->conn,
                     "WITH c AS ("
                     " INSERT INTO evidence_collections (operator, kind, args, deadline)"
                     " VALUES ($1, $2, jsonb_object($3::text[], $4::text[]),"
                     "  'epoch'::timestamptz + $5::bigint * interval '1 millisecond')"
                     " RETURNING id, kind, args), "
                     "a AS (INSERT INTO audit_log (actor, action, subject, detail)"
                     " SELECT $1, 'evidence.collect', 'collection=' || id,"
                     "  format('kind=%s args=%s targets=%s', kind, args::text, $6::text) FROM c) "
                     "SELECT id FROM c",
                     6, NULL, params, NULL, NULL, 0);
    int64_t id = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
        !parse_i64(PQgetvalue(res, 0, 0), &id)) {
        r = failed(self, res, "collection insert");
        PQclear(res);
        goto err_rollback;
    }
    PQclear(res);

    char id_text[24];
    snprintf(id_text, sizeof(id_text), "%" PRId64, id);
    const char *tparams[] = {id_text, cols[AGENTS].data, cols[NODES].data};
    res = PQexecParams(self->conn,
                       "INSERT INTO evidence_targets (collection_id, agent_id, node)"
                       " SELECT $1::bigint, a, n FROM unnest($2::text[], $3::text[]) AS u(a, n)",
                       3, NULL, tparams, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        r = failed(self, res, "collection targets");
        PQclear(res);
        goto err_rollback;
    }
    PQclear(res);
    r = exec_command(self, "COMMIT", "collection COMMIT");
    if (r < 0)
        goto err_rollback;
    *ret_id = (uint64_t)id;
    goto out;

err_rollback:
    rollback_if_alive(self);
out:
    for (int c = 0; c < NCOLS; c++)
        buf_free(&cols[c]);
    return r;
}

int store_evidence_purge_incomplete(store_t *self, int64_t grace_ms, uint64_t *ret_chunks,
                                    uint64_t *ret_bytes)
{
    if (!self || grace_ms < 0)
        return -EINVAL;
    int r = ensure_conn(self);
    if (r < 0)
        return r;
    char grace[24];
    snprintf(grace, sizeof(grace), "%" PRId64, grace_ms);
    const char *params[] = {grace};
    PGresult *res = PQexecParams(
        self->conn,
        "WITH gone AS ("
        " DELETE FROM evidence_chunks ch USING evidence_targets t"
        " WHERE t.collection_id = ch.collection_id AND t.agent_id = ch.agent_id"
        "  AND t.status <> 'pending'"
        "  AND t.updated_at < now() - $1::bigint * interval '1 millisecond'"
        "  AND NOT EXISTS (SELECT 1 FROM evidence_chunks l"
        "   WHERE l.agent_id = ch.agent_id AND l.artifact = ch.artifact AND l.last)"
        "  AND NOT EXISTS (SELECT 1 FROM evidence e"
        "   WHERE e.agent_id = ch.agent_id AND e.artifact = ch.artifact)"
        " RETURNING ch.agent_id, ch.artifact, ch.collection_id, length(ch.data) AS len), "
        "audit AS (INSERT INTO audit_log (actor, action, subject, detail)"
        " SELECT 'coordinator', 'evidence.incomplete_removed',"
        "  format('collection=%s agent=%s artifact=%s', collection_id, agent_id, artifact),"
        "  format('%s chunks, %s bytes: never completed', count(*), sum(len))"
        " FROM gone GROUP BY collection_id, agent_id, artifact) "
        "SELECT count(*), coalesce(sum(len), 0) FROM gone",
        1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        r = failed(self, res, "evidence purge");
        PQclear(res);
        return r;
    }
    if (ret_chunks)
        *ret_chunks = parse_u64_or_zero(PQgetvalue(res, 0, 0));
    if (ret_bytes)
        *ret_bytes = parse_u64_or_zero(PQgetvalue(res, 0, 1));
    PQclear(res);
    return 0;
}

int store_evidence_expire(store_t *self, struct store_evidence_events *ret_events)
{
    if (!self)
        return -EINVAL;
    int r = ensure_conn(self);
    if (r < 0)
        return r;
    const char *params[] = {TIMEOUT_ERROR};
    PGresult *res = PQexecParams(
        self->conn,
        "WITH expired AS ("
        " UPDATE evidence_targets t SET status = 'failed', error = $1, updated_at = now()"
        " FROM evidence_collections c"
        " WHERE c.id = t.collection_id AND t.status = 'pending' AND c.deadline < now()"
        " RETURNING t.collection_id, t.agent_id, c.kind), "
        "audit AS (INSERT INTO audit_log (actor, action, subject, detail)"
        " SELECT 'coordinator', 'evidence.failed',"
        "  format('collection=%s agent=%s', collection_id, agent_id), $1 FROM expired) "
        "SELECT collection_id, agent_id, kind FROM expired",
        1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        r = failed(self, res, "evidence expiry");
        PQclear(res);
        return r;
    }
    for (int i = 0; ret_events && i < PQntuples(res); i++) {
        int64_t coll = 0;
        parse_i64(PQgetvalue(res, i, 0), &coll);
        struct store_evidence_event *e =
            event_add(ret_events, STORE_EVIDENCE_FAILED, "timeout", PQgetvalue(res, i, 1),
                      PQgetvalue(res, i, 2), (uint64_t)coll, 0);
        if (!e) {
            r = -ENOMEM;
            break;
        }
        snprintf(e->detail, sizeof(e->detail), "%s", TIMEOUT_ERROR);
    }
    PQclear(res);
    return r;
}

/* ---- listing and reading ---- */

#define EVIDENCE_COLUMNS                                                                           \
    "e.id, e.collection_id, e.agent_id, e.node, e.kind, e.args::text, e.size,"                     \
    " encode(e.sha256, 'hex'), (extract(epoch FROM e.collected_at) * 1000)::bigint,"               \
    " (extract(epoch FROM e.stored_at) * 1000)::bigint, 'stored', '', e.truncated"

static int evidence_rows(store_t *self, PGresult *res, store_evidence_cb cb, void *userdata)
{
    int r = 0;
    for (int i = 0; i < PQntuples(res) && r == 0; i++) {
        int64_t id = 0, coll = 0, size = 0;
        struct store_evidence_info info = {
            .agent_id = PQgetvalue(res, i, 2),
            .node = PQgetvalue(res, i, 3),
            .kind = PQgetvalue(res, i, 4),
            .args_json = PQgetvalue(res, i, 5),
            .sha256_hex = PQgetvalue(res, i, 7),
            .status = PQgetvalue(res, i, 10),
            .error = PQgetvalue(res, i, 11),
            .truncated = strcmp(PQgetvalue(res, i, 12), "t") == 0,
        };
        parse_i64(PQgetvalue(res, i, 0), &id);
        parse_i64(PQgetvalue(res, i, 1), &coll);
        parse_i64(PQgetvalue(res, i, 6), &size);
        parse_i64(PQgetvalue(res, i, 8), &info.collected_at_ms);
        parse_i64(PQgetvalue(res, i, 9), &info.stored_at_ms);
        info.id = id > 0 ? (uint64_t)id : 0;
        info.collection_id = coll > 0 ? (uint64_t)coll : 0;
        info.size = size > 0 ? (uint64_t)size : 0;
        r = cb(&info, userdata);
    }
    (void)self;
    return r < 0 ? r : 0;
}

int store_evidence_list(store_t *self, uint64_t collection_id, const char *node, uint32_t limit,
                        store_evidence_cb cb, void *userdata)
{
    if (!self || !cb || (node && !vg_utf8_valid(node)))
        return -EINVAL;
    int r = ensure_conn(self);
    if (r < 0)
        return r;
    char coll[24], lim[24];
    snprintf(coll, sizeof(coll), "%" PRIu64, collection_id);
    snprintf(lim, sizeof(lim), "%" PRIu32, limit);
    const char *params[] = {coll, node && node[0] ? node : NULL, lim};
    PGresult *res;
    if (collection_id != 0)
        res = PQexecParams(
            self->conn,
            "SELECT coalesce(e.id, 0), t.collection_id, t.agent_id, t.node, c.kind,"
            " c.args::text, coalesce(e.size, 0), coalesce(encode(e.sha256, 'hex'), ''),"
            " coalesce((extract(epoch FROM e.collected_at) * 1000)::bigint, 0),"
            " coalesce((extract(epoch FROM e.stored_at) * 1000)::bigint, 0),"
            " t.status, t.error, coalesce(e.truncated, false)"
            " FROM evidence_targets t JOIN evidence_collections c ON c.id = t.collection_id"
            " LEFT JOIN evidence e ON e.id = t.evidence_id"
            " WHERE t.collection_id = $1::bigint AND ($2::text IS NULL OR t.node = $2)"
            " ORDER BY t.node, t.agent_id LIMIT $3::bigint",
            3, NULL, params, NULL, NULL, 0);
    else
        res = PQexecParams(self->conn,
                           "SELECT " EVIDENCE_COLUMNS " FROM evidence e"
                           " WHERE $1::bigint = 0 AND ($2::text IS NULL OR e.node = $2)"
                           " ORDER BY e.id DESC LIMIT $3::bigint",
                           3, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        r = failed(self, res, "evidence list");
        PQclear(res);
        return r;
    }
    r = evidence_rows(self, res, cb, userdata);
    PQclear(res);
    return r;
}

int store_evidence_get(store_t *self, uint64_t id, store_evidence_cb cb, void *userdata)
{
    if (!self || !cb)
        return -EINVAL;
    int r = ensure_conn(self);
    if (r < 0)
        return r;
    char id_text[24];
    snprintf(id_text, sizeof(id_text), "%" PRIu64, id);
    const char *params[] = {id_text};
    PGresult *res = PQexecParams(
        self->conn, "SELECT " EVIDENCE_COLUMNS " FROM evidence e WHERE e.id = $1::bigint", 1, NULL,
        params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        r = failed(self, res, "evidence get");
        PQclear(res);
        return r;
    }
    r = PQntuples(res) == 0 ? -ENOENT : evidence_rows(self, res, cb, userdata);
    PQclear(res);
    return r;
}

static uint64_t get_be64(const char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | (uint8_t)p[i];
    return v;
}

int store_evidence_read(store_t *self, uint64_t id, uint64_t offset, uint8_t *buf, size_t max,
                        size_t *ret_len)
{
    if (!self || !buf || max == 0 || max > VG_MAX_EVIDENCE_CHUNK_BYTES ||
        offset > (uint64_t)VG_MAX_EVIDENCE_BYTES)
        return -EINVAL;
    int r = ensure_conn(self);
    if (r < 0)
        return r;
    char id_text[24], off[24], len[24];
    snprintf(id_text, sizeof(id_text), "%" PRIu64, id);
    snprintf(off, sizeof(off), "%" PRIu64, offset);
    snprintf(len, sizeof(len), "%zu", max);
    const char *params[] = {id_text, off, len};
    /* Only the chunks of the verified artifact (same collection), cut to the window. */
    PGresult *res =
        PQexecParams(self->conn,
                     "SELECT greatest(c.\"offset\", $2::bigint),"
                     " substring(c.data FROM (greatest($2::bigint - c.\"offset\", 0) + 1)::int"
                     "  FOR least($3::bigint, e.size - $2::bigint)::int)"
                     " FROM evidence e JOIN evidence_chunks c ON c.agent_id = e.agent_id"
                     "  AND c.artifact = e.artifact AND c.collection_id = e.collection_id"
                     " WHERE e.id = $1::bigint AND $2::bigint < e.size"
                     "  AND c.\"offset\" < $2::bigint + $3::bigint"
                     "  AND c.\"offset\" + length(c.data) > $2::bigint"
                     " ORDER BY c.\"offset\"",
                     3, NULL, params, NULL, NULL, 1);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        r = failed(self, res, "evidence read");
        PQclear(res);
        return r;
    }
    size_t got = 0;
    for (int i = 0; i < PQntuples(res) && got < max; i++) {
        if (PQgetlength(res, i, 0) != 8) {
            r = -EPROTO;
            break;
        }
        uint64_t start = get_be64(PQgetvalue(res, i, 0));
        if (start != offset + got) {
            vg_log(VG_LOG_WARN, "store: evidence=%" PRIu64 " chunks are not contiguous at %" PRIu64,
                   id, offset + got);
            r = -EPROTO;
            break;
        }
        size_t n = (size_t)PQgetlength(res, i, 1);
        if (n > max - got)
            n = max - got;
        memcpy(buf + got, PQgetvalue(res, i, 1), n);
        got += n;
    }
    PQclear(res);
    if (r == 0)
        *ret_len = got;
    return r;
}

int store_ingest(store_t *self, Vigil__Envelope *const *msgs, size_t n, size_t *ret_new,
                 struct store_evidence_events *ret_events)
{
    struct store_evidence_events events = {0};
    struct buf arrays[4];
    struct msg_key *keys = NULL;
    bool *fresh = NULL;
    size_t inserted = 0, signal_rows = 0;
    int r;

    if (!self || (n > 0 && !msgs))
        return -EINVAL;
    if (n == 0) {
        if (ret_new)
            *ret_new = 0;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (store_message_problem(msgs[i])) {
            vg_log(VG_LOG_WARN, "store: ingest refused invalid message agent=%.40s seq=%" PRIu64,
                   msgs[i] && msgs[i]->sender ? msgs[i]->sender : "?", msgs[i] ? msgs[i]->seq : 0);
            return -EINVAL;
        }
    }

    memset(arrays, 0, sizeof(arrays));
    keys = calloc(n, sizeof(*keys));
    fresh = calloc(n, sizeof(*fresh));
    if (!keys || !fresh) {
        r = -ENOMEM;
        goto out;
    }
    r = build_message_arrays(msgs, n, arrays);
    if (r < 0)
        goto out;
    for (size_t i = 0; i < n; i++)
        keys[i] = (struct msg_key){msgs[i]->sender, msgs[i]->seq, i};
    qsort(keys, n, sizeof(*keys), msg_key_cmp);

    int64_t started = vg_mono_ms();
    r = ensure_conn(self);
    if (r < 0)
        goto out;
    r = exec_command(self, "BEGIN", "ingest BEGIN");
    if (r < 0)
        goto err_rollback;

    const char *params[4] = {arrays[0].data, arrays[1].data, arrays[2].data, arrays[3].data};
    PGresult *res = PQexecParams(
        self->conn,
        "INSERT INTO agent_messages (agent_id, seq, kind, sent_at)"
        " SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::timestamptz[])"
        " ON CONFLICT DO NOTHING RETURNING agent_id, seq",
        4, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        r = failed(self, res, "ingest INSERT");
        PQclear(res);
        goto err_rollback;
    }
    bool any_signals = false, any_evidence = false;
    for (int row = 0; row < PQntuples(res); row++) {
        int64_t seq;
        const struct msg_key *k = NULL;
        if (parse_i64(PQgetvalue(res, row, 1), &seq) && seq > 0)
            k = msg_key_find(keys, n, PQgetvalue(res, row, 0), (uint64_t)seq);
        if (!k) {
            vg_log(VG_LOG_WARN, "store: ingest INSERT returned an unknown message agent=%.40s",
                   PQgetvalue(res, row, 0));
            PQclear(res);
            r = -EPROTO;
            goto err_rollback;
        }
        fresh[k->index] = true;
        inserted++;
        const Vigil__Envelope *m = msgs[k->index];
        if (m->body_case == VIGIL__ENVELOPE__BODY_SIGNALS && m->signals &&
            m->signals->n_signals > 0)
            any_signals = true;
        if (m->body_case == VIGIL__ENVELOPE__BODY_EVIDENCE)
            any_evidence = true;
    }
    PQclear(res);

    if (any_signals) {
        r = copy_signals(self, msgs, n, fresh, &signal_rows);
        if (r < 0)
            goto err_rollback;
    }
    if (any_evidence) {
        r = ingest_evidence(self, msgs, n, fresh, &events);
        if (r < 0)
            goto err_rollback;
    }

    res = PQexec(self->conn, "COMMIT");
    /* COMMIT of a transaction that failed answers "ROLLBACK": that is not a success. */
    if (PQresultStatus(res) != PGRES_COMMAND_OK || strcmp(PQcmdStatus(res), "COMMIT") != 0) {
        r = failed(self, res, "ingest COMMIT");
        if (r == 0)
            r = -EIO;
        PQclear(res);
        goto err_rollback;
    }
    PQclear(res);
    vg_log(VG_LOG_DEBUG, "store: ingest messages=%zu new=%zu signals=%zu ms=%" PRId64, n, inserted,
           signal_rows, vg_mono_ms() - started);
    if (ret_new)
        *ret_new = inserted;
    r = 0;
    if (ret_events) {
        for (size_t i = 0; i < events.n; i++) {
            struct store_evidence_event *e =
                event_add(ret_events, events.items[i].outcome, events.items[i].reason,
                          events.items[i].agent_id, events.items[i].kind,
                          events.items[i].collection_id, events.items[i].artifact);
            if (e) {
                *e = events.items[i];
                continue;
            }
            /* Committed all the same: only the report of it is short. */
            vg_log(VG_LOG_WARN, "store: out of memory reporting %zu evidence outcomes",
                   events.n - i);
            break;
        }
    }
    goto out;

err_rollback:
    rollback_if_alive(self);
    if (!self->conn || PQstatus(self->conn) != CONNECTION_OK)
        r = -EIO;
out:
    for (int c = 0; c < 4; c++)
        buf_free(&arrays[c]);
    free(keys);
    free(fresh);
    store_evidence_events_clear(&events);
    return r;
}

/* ---- latest signals ---- */

int store_signals_latest(store_t *self, const char *node,
                         int (*cb)(const struct store_signal *sig, void *userdata), void *userdata)
{
    if (!self || !cb)
        return -EINVAL;
    int r = ensure_conn(self);
    if (r < 0)
        return r;
    const char *params[] = {node && node[0] ? node : NULL};
    PGresult *res = PQexecParams(
        self->conn,
        "SELECT l.agent_id, coalesce(l.node, a.node, ''), l.name, l.labels::text, l.unit, l.value,"
        " l.state, (extract(epoch FROM l.ts) * 1000)::bigint"
        " FROM signal_latest l LEFT JOIN agents a ON a.id = l.agent_id"
        " WHERE $1::text IS NULL OR coalesce(l.node, a.node) = $1"
        " ORDER BY 2, l.name, l.labels::text",
        1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        r = failed(self, res, "list latest signals");
        PQclear(res);
        return r;
    }
    int rows = PQntuples(res);
    r = 0;
    for (int i = 0; i < rows && r == 0; i++) {
        struct store_signal sig = {
            .agent_id = PQgetvalue(res, i, 0),
            .node = PQgetvalue(res, i, 1),
            .name = PQgetvalue(res, i, 2),
            .labels_json = PQgetvalue(res, i, 3),
            .unit = PQgetvalue(res, i, 4),
            .value = strtod(PQgetvalue(res, i, 5), NULL),
            .state = (int)strtol(PQgetvalue(res, i, 6), NULL, 10),
        };
        if (!parse_i64(PQgetvalue(res, i, 7), &sig.ts_ms))
            sig.ts_ms = 0;
        r = cb(&sig, userdata);
    }
    PQclear(res);
    return r < 0 ? r : 0;
}

int store_side_connect(PGconn **conn, const char *conninfo, const char *application_name,
                       const char *what)
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
        vg_log(VG_LOG_WARN, "store: %s connection failed error=\"%s\"", what,
               vg_log_one_line(PQerrorMessage(*conn), buf, sizeof(buf)));
        PQfinish(*conn);
        *conn = NULL;
        return -EIO;
    }
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
