/*
 * Verifying the evidence vault (`vigilctl evidence verify`): every row in id order, its link to
 * the row before, its chain hash recomputed with store_evidence_chain, and its content re-hashed
 * over the stored chunks against the row's size and sha256.
 *
 * The rows come from one cursor over evidence LEFT JOIN evidence_chunks ordered by id and
 * offset, inside a REPEATABLE READ READ ONLY transaction (one consistent snapshot; it takes no
 * lock ingest waits for), fetched about 4 MiB of chunks at a time in single-row mode and in
 * binary, so at most one chunk (<= 1 MiB) is in memory whatever the vault's size. The caller's
 * loop is held up for a time budget, not for the whole vault: a call stops at the first row
 * boundary past it and says where to continue (the last intact row and its chain hash).
 */
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "strict_text.h"
#include "timeutil.h"
#include "wire.h"

#define APPLICATION_NAME "vigil-coordinator-verify"
/* Rows per FETCH, sized by what the last one carried: about FETCH_BYTES of chunk data, so the
 * rows read past a stop (dropped) cost little, and a vault of small artifacts is walked in few
 * round trips (a fixed 64 rows made the walk wait on them: 66k rows/s, 82k with this). */
#define FETCH_BYTES (4 * 1024 * 1024)
#define FETCH_ROWS_MIN 16
#define FETCH_ROWS_MAX 1024
#define FETCH_ROWS_FIRST 64

/* ---- the walk: rules only ---- */

/* SHA-256 of no bytes (FIPS 180-2): the content of an empty artifact, without a hash per row. */
static const uint8_t empty_sha256[VG_SHA256_LEN] = {
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};

__attribute__((format(printf, 3, 4))) static bool broken(struct store_chain_walk *w, uint64_t id,
                                                         const char *fmt, ...)
{
    va_list ap;

    w->broken_id = id;
    w->in_row = false;
    va_start(ap, fmt);
    vsnprintf(w->reason, sizeof(w->reason), fmt, ap);
    va_end(ap);
    return false;
}

void store_chain_walk_init(struct store_chain_walk *w, const uint8_t *after_chain)
{
    memset(w, 0, sizeof(*w));
    w->at_start = after_chain == NULL;
    if (after_chain)
        memcpy(w->prev, after_chain, VG_SHA256_LEN);
}

bool store_chain_walk_row(struct store_chain_walk *w, uint64_t id,
                          const struct store_evidence_meta *meta, const uint8_t sha256[32],
                          const uint8_t prev_chain[32], const uint8_t chain[32])
{
    uint8_t expected[VG_SHA256_LEN];

    if (w->broken_id)
        return false;
    /* The row against itself first: a changed row is named, not the one after it. */
    store_evidence_chain(prev_chain, sha256, meta, expected);
    if (memcmp(expected, chain, VG_SHA256_LEN) != 0)
        return broken(w, id,
                      "chain hash differs: the row was changed after it was stored (its metadata, "
                      "sha256, prev_chain or chain)");
    if (memcmp(prev_chain, w->prev, VG_SHA256_LEN) != 0)
        return broken(w, id, "%s",
                      w->at_start ? "previous link missing: the vault does not start with this "
                                    "row (the rows before it were deleted)"
                                  : "previous link missing: the row before it was deleted or "
                                    "rewritten");
    w->in_row = true;
    w->content_removed = false;
    w->id = id;
    w->size = meta->size;
    w->content_bytes = 0;
    memcpy(w->sha256, sha256, VG_SHA256_LEN);
    memcpy(w->chain, chain, VG_SHA256_LEN);
    store_chain_walk_fini(w); /* a row that broke the walk before its end */
    return true;
}

bool store_chain_walk_content(struct store_chain_walk *w, uint64_t offset, const void *data,
                              size_t len)
{
    if (w->broken_id || !w->in_row)
        return false;
    if (offset != w->content_bytes)
        return broken(w, w->id, "content differs: %s at offset %" PRIu64,
                      offset > w->content_bytes ? "a chunk is missing" : "chunks overlap",
                      w->content_bytes);
    if (!w->content_started) /* begun here: most rows of a large vault are small */
        vg_sha256_init(&w->content);
    w->content_started = true;
    vg_sha256_update(&w->content, data, len);
    w->content_bytes += len;
    return true;
}

bool store_chain_walk_end(struct store_chain_walk *w)
{
    uint8_t digest[VG_SHA256_LEN];

    if (w->broken_id || !w->in_row)
        return false;
    w->in_row = false;
    if (w->content_removed && w->content_bytes == 0) {
        store_chain_walk_fini(w);
        memcpy(w->prev, w->chain, VG_SHA256_LEN);
        w->at_start = false;
        w->checked++;
        w->removed++;
        w->last_id = w->id;
        return true;
    }
    if (w->content_bytes != w->size)
        return broken(w, w->id, "content is %" PRIu64 " bytes, the row says %" PRIu64 " bytes",
                      w->content_bytes, w->size);
    if (w->content_started)
        vg_sha256_final(&w->content, digest);
    else
        memcpy(digest, empty_sha256, VG_SHA256_LEN);
    w->content_started = false;
    if (memcmp(digest, w->sha256, VG_SHA256_LEN) != 0)
        return broken(w, w->id, "content hash differs from the stored sha256");
    memcpy(w->prev, w->chain, VG_SHA256_LEN);
    w->at_start = false;
    w->checked++;
    w->bytes += w->size;
    w->last_id = w->id;
    return true;
}

void store_chain_walk_fini(struct store_chain_walk *w)
{
    if (w->content_started)
        vg_sha256_discard(&w->content);
    w->content_started = false;
}

void store_chain_walk_content_removed(struct store_chain_walk *w)
{
    if (!w->broken_id && w->in_row)
        w->content_removed = true;
}

void store_chain_walk_unreadable(struct store_chain_walk *w, uint64_t id, const char *what)
{
    if (!w->broken_id)
        broken(w, id, "the row cannot be read: %s", what);
}

/* ---- the connection ---- */

struct store_verify {
    struct store_side side;
};

store_verify_t *store_verify_new(const char *conninfo)
{
    store_verify_t *self = calloc(1, sizeof(*self));
    if (self && store_side_init(&self->side, conninfo) < 0) {
        free(self);
        self = NULL;
    }
    return self;
}

void store_verify_destroy(store_verify_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    store_side_fini(&(*self_p)->side);
    free(*self_p);
    *self_p = NULL;
}

static int ensure_conn(store_verify_t *self, bool force)
{
    if (!force && self->side.conn && PQstatus(self->side.conn) == CONNECTION_OK) {
        if (PQtransactionStatus(self->side.conn) == PQTRANS_IDLE)
            return 0;
        PQclear(PQexec(self->side.conn, "ROLLBACK")); /* left over from a failed call */
        if (PQtransactionStatus(self->side.conn) == PQTRANS_IDLE)
            return 0;
    }
    return store_side_connect(&self->side.conn, self->side.conninfo, APPLICATION_NAME);
}

/* Logs libpq's words; -EIO when the connection is gone, else -EPROTO. */
static int failed(store_verify_t *self, const PGresult *res, const char *what)
{
    const char *text = res ? PQresultErrorMessage(res) : "";
    if (!text[0])
        text = PQerrorMessage(self->side.conn);
    store_statement_failed(self->side.conn, APPLICATION_NAME, what, text);
    return PQstatus(self->side.conn) == CONNECTION_OK ? -EPROTO : -EIO;
}

static int command(store_verify_t *self, const char *sql, const char *what)
{
    PGresult *res = PQexec(self->side.conn, sql);
    int r = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : failed(self, res, what);
    PQclear(res);
    return r;
}

/* ---- rows ---- */

/* The cursor's columns, in binary: int8 as 8 bytes big-endian, text and bytea as their bytes,
 * bool as one byte. */
enum {
    COL_ID,
    COL_COLLECTION,
    COL_AGENT,
    COL_AGENT_SEQ,
    COL_ARTIFACT,
    COL_NODE,
    COL_KIND,
    COL_ARGS,
    COL_COLLECTED,
    COL_STORED,
    COL_SIZE,
    COL_SHA256,
    COL_TRUNCATED,
    COL_PREV,
    COL_CHAIN,
    COL_OFFSET,
    COL_DATA,
    COL_REMOVED,
    NCOLS
};

/* Collected and stored times as the chain saw them: the milliseconds vault_append wrote. */
static const char declare_sql[] =
    "DECLARE vigil_verify NO SCROLL CURSOR FOR"
    " SELECT e.id, e.collection_id, e.agent_id, e.agent_seq, e.artifact, e.node, e.kind,"
    "  e.args::text, (extract(epoch FROM e.collected_at) * 1000)::bigint,"
    "  (extract(epoch FROM e.stored_at) * 1000)::bigint, e.size, e.sha256, e.truncated,"
    "  e.prev_chain, e.chain, c.\"offset\", c.data,"
    /* Content removed by retention (026_retention.sql): its removal row and the audit row it
     * names, which the audit chain covers. */
    "  EXISTS (SELECT 1 FROM evidence_removals r JOIN audit_log a ON a.id = r.audit_id"
    "   WHERE r.evidence_id = e.id AND a.action = 'retention.evidence'"
    "     AND a.subject = 'evidence:' || e.id)"
    " FROM evidence e LEFT JOIN evidence_chunks c"
    "  ON c.agent_id = e.agent_id AND c.artifact = e.artifact"
    " WHERE e.id > $1::bigint ORDER BY e.id, c.\"offset\"";

static bool get_i64(const PGresult *res, int row, int col, int64_t *ret)
{
    if (PQgetisnull(res, row, col) || PQgetlength(res, row, col) != 8)
        return false;
    const unsigned char *p = (const unsigned char *)PQgetvalue(res, row, col);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    memcpy(ret, &v, sizeof(*ret));
    return true;
}

static const uint8_t *get_hash(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col) || PQgetlength(res, row, col) != VG_SHA256_LEN)
        return NULL;
    return (const uint8_t *)PQgetvalue(res, row, col);
}

static const char *get_text(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

/* The collection's arguments as vault_append chained them: a JSON object's members, a value
 * that is not a string counting as "". NULL when the text is not such an object. */
static json_t *args_parse(const char *text, size_t len, struct store_evidence_arg *args,
                          size_t *ret_n)
{
    json_error_t jerr;
    json_t *obj = json_loadb(text, len, 0, &jerr);
    const char *key;
    json_t *value;
    size_t n = 0;

    if (!json_is_object(obj) || json_object_size(obj) > VG_MAX_EVIDENCE_ARGS) {
        json_decref(obj);
        return NULL;
    }
    json_object_foreach(obj, key, value)
    {
        args[n].key = key;
        args[n].value = json_is_string(value) ? json_string_value(value) : "";
        n++;
    }
    *ret_n = n;
    return obj;
}

/* A row's first result: its columns into the walk. */
static void row_begin(struct store_chain_walk *w, const PGresult *res, int row, uint64_t id)
{
    int64_t collection, agent_seq, artifact, collected, stored, size;
    const char *agent = get_text(res, row, COL_AGENT), *node = get_text(res, row, COL_NODE),
               *kind = get_text(res, row, COL_KIND), *args_text = get_text(res, row, COL_ARGS);
    const uint8_t *sha = get_hash(res, row, COL_SHA256), *prev = get_hash(res, row, COL_PREV),
                  *chain = get_hash(res, row, COL_CHAIN);

    if (!get_i64(res, row, COL_COLLECTION, &collection) ||
        !get_i64(res, row, COL_AGENT_SEQ, &agent_seq) ||
        !get_i64(res, row, COL_ARTIFACT, &artifact) ||
        !get_i64(res, row, COL_COLLECTED, &collected) || !get_i64(res, row, COL_STORED, &stored) ||
        !get_i64(res, row, COL_SIZE, &size) || size < 0) {
        store_chain_walk_unreadable(w, id, "a number or time is missing or out of range");
        return;
    }
    if (!sha || !prev || !chain) {
        store_chain_walk_unreadable(w, id, "sha256, prev_chain or chain is not 32 bytes");
        return;
    }
    if (!agent || !node || !kind || !args_text || PQgetisnull(res, row, COL_TRUNCATED) ||
        PQgetlength(res, row, COL_TRUNCATED) != 1) {
        store_chain_walk_unreadable(w, id, "a text column or truncated is missing");
        return;
    }
    struct store_evidence_arg args[VG_MAX_EVIDENCE_ARGS];
    size_t nargs = 0;
    json_t *args_json =
        args_parse(args_text, (size_t)PQgetlength(res, row, COL_ARGS), args, &nargs);
    if (!args_json) {
        store_chain_walk_unreadable(w, id, "args is not a JSON object of at most 16 members");
        return;
    }
    struct store_evidence_meta meta = {
        .collection_id = (uint64_t)collection,
        .agent_id = agent,
        .agent_seq = (uint64_t)agent_seq,
        .artifact = (uint64_t)artifact,
        .node = node,
        .kind = kind,
        .args = args,
        .nargs = nargs,
        .collected_at_ms = collected,
        .stored_at_ms = stored,
        .size = (uint64_t)size,
        .truncated = PQgetvalue(res, row, COL_TRUNCATED)[0] != 0,
    };
    store_chain_walk_row(w, id, &meta, sha, prev, chain);
    json_decref(args_json);
}

struct verify_run {
    struct store_chain_walk walk;
    uint32_t max_artifacts; /* 0 = no limit */
    int64_t deadline_mono;
    bool stop; /* stopped at a row boundary: rows still arriving are dropped */
    int fetch_rows; /* the next FETCH's count */
};

/* One result row (one chunk of a vault row, or a vault row without chunks). */
static int take(struct verify_run *run, const PGresult *res, int row)
{
    struct store_chain_walk *w = &run->walk;
    int64_t id;

    if (run->stop || w->broken_id)
        return 0;
    if (PQnfields(res) != NCOLS || !get_i64(res, row, COL_ID, &id) || id <= 0)
        return -EPROTO;
    if (!w->in_row || (uint64_t)id != w->id) {
        if (w->in_row && !store_chain_walk_end(w))
            return 0;
        if (w->checked > 0 && ((run->max_artifacts && w->checked >= run->max_artifacts) ||
                               vg_mono_ms() >= run->deadline_mono)) {
            run->stop = true;
            return 0;
        }
        row_begin(w, res, row, (uint64_t)id);
        if (w->broken_id)
            return 0;
        if (PQgetlength(res, row, COL_REMOVED) == 1 && PQgetvalue(res, row, COL_REMOVED)[0])
            store_chain_walk_content_removed(w);
    }
    if (PQgetisnull(res, row, COL_DATA))
        return 0; /* no chunk at all: the size check at the row's end says so */
    int64_t offset;
    if (!get_i64(res, row, COL_OFFSET, &offset) || offset < 0) {
        store_chain_walk_unreadable(w, w->id, "a chunk's offset");
        return 0;
    }
    store_chain_walk_content(w, (uint64_t)offset, PQgetvalue(res, row, COL_DATA),
                             (size_t)PQgetlength(res, row, COL_DATA));
    return 0;
}

/* One FETCH, row by row. *ret_rows: how many it returned (0 = the cursor is exhausted). */
static int fetch(store_verify_t *self, struct verify_run *run, int *ret_rows)
{
    PGconn *conn = self->side.conn;
    PGresult *res;
    int r = 0, rows = 0;
    uint64_t bytes = 0;
    char sql[64];

    snprintf(sql, sizeof(sql), "FETCH %d FROM vigil_verify", run->fetch_rows);
    if (!PQsendQueryParams(conn, sql, 0, NULL, NULL, NULL, NULL, 1))
        return failed(self, NULL, "fetch");
    if (!PQsetSingleRowMode(conn))
        vg_log(VG_LOG_DEBUG, "store: verify: single-row mode refused; reading a fetch at once");
    while ((res = PQgetResult(conn)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK) {
            for (int i = 0; i < PQntuples(res) && r == 0; i++, rows++) {
                bytes += (uint64_t)PQgetlength(res, i, COL_DATA);
                r = take(run, res, i);
            }
        } else if (r == 0) {
            r = failed(self, res, "fetch");
        }
        PQclear(res);
    }
    if (r == -EPROTO)
        vg_log(VG_LOG_WARN, "store: verify: the cursor returned a row without an id");
    if (rows > 0) {
        uint64_t per_row = bytes / (uint64_t)rows + 1;
        uint64_t next = FETCH_BYTES / per_row;
        run->fetch_rows = next < FETCH_ROWS_MIN   ? FETCH_ROWS_MIN
                          : next > FETCH_ROWS_MAX ? FETCH_ROWS_MAX
                                                  : (int)next;
    }
    *ret_rows = rows;
    return r;
}

int store_evidence_verify(store_verify_t *self, uint64_t after_id, const uint8_t *after_chain,
                          uint32_t max_artifacts, int64_t budget_ms,
                          struct store_verify_result *ret)
{
    if (!self || !ret || (after_id == 0) != (after_chain == NULL) || after_id > INT64_MAX)
        return -EINVAL;
    struct verify_run run_state = {
        .max_artifacts = max_artifacts,
        .deadline_mono = vg_mono_ms() + (budget_ms > 0 ? budget_ms : 0),
        .fetch_rows = FETCH_ROWS_FIRST,
    };
    struct verify_run *run = &run_state;
    store_chain_walk_init(&run->walk, after_chain);

    /* A connection that died while idle is only noticed by using it: one more try. */
    int r = -EIO;
    for (int attempt = 0; attempt < 2 && r == -EIO; attempt++) {
        r = ensure_conn(self, attempt > 0);
        if (r == 0)
            r = command(self, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "begin");
    }
    /* The cursor's estimated cost is the whole vault: JIT would compile it in every call, about
     * 0.1 s each time, to save nothing on a plan that is index lookups. */
    if (r == 0)
        r = command(self, "SET LOCAL jit = off", "settings");
    if (r < 0)
        return r;
    char after[24];
    snprintf(after, sizeof(after), "%" PRIu64, after_id);
    const char *params[] = {after};
    PGresult *res = PQexecParams(self->side.conn, declare_sql, 1, NULL, params, NULL, NULL, 0);
    r = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : failed(self, res, "cursor");
    PQclear(res);

    bool exhausted = false;
    while (r == 0 && !run->stop && !run->walk.broken_id && !exhausted) {
        int rows = 0;
        r = fetch(self, run, &rows);
        exhausted = r == 0 && rows == 0;
    }
    if (exhausted && run->walk.in_row)
        store_chain_walk_end(&run->walk);
    store_chain_walk_fini(&run->walk);
    if (PQstatus(self->side.conn) == CONNECTION_OK) {
        int rr = command(self, "ROLLBACK", "end"); /* read only: nothing to keep */
        if (r == 0)
            r = rr;
    }
    if (r < 0)
        return r;

    const struct store_chain_walk *w = &run->walk;
    memset(ret, 0, sizeof(*ret));
    ret->checked = w->checked;
    ret->bytes = w->bytes;
    ret->removed = w->removed;
    ret->broken_id = w->broken_id;
    snprintf(ret->reason, sizeof(ret->reason), "%s", w->reason);
    ret->done = exhausted && !w->broken_id;
    ret->last_id = w->last_id ? w->last_id : after_id;
    memcpy(ret->last_chain, w->prev, VG_SHA256_LEN);
    return 0;
}

/* ---- the chain's head and one row's link, for signed checkpoints (checkpoint.h) ---- */

static int unhex32(const char *hex, uint8_t out[VG_SHA256_LEN])
{
    return vg_strict_hex32(hex, strlen(hex), out) ? 0 : -EPROTO;
}

/* One statement returning rows, outside any walk: *ret_res on success (the caller clears it).
 * A connection that died while idle is only noticed by using it: one more try. */
static int query(store_verify_t *self, const char *sql, int n, const char *const *params,
                 const char *what, PGresult **ret_res)
{
    int r = -EIO;
    PGresult *res = NULL;
    for (int attempt = 0; attempt < 2 && r == -EIO; attempt++) {
        r = ensure_conn(self, attempt > 0);
        if (r < 0)
            continue;
        PQclear(res);
        res = PQexecParams(self->side.conn, sql, n, NULL, params, NULL, NULL, 0);
        r = PQresultStatus(res) == PGRES_TUPLES_OK ? 0 : failed(self, res, what);
    }
    if (r < 0) {
        PQclear(res);
        res = NULL;
    }
    *ret_res = res;
    return r;
}

/* One row (id, encode(chain, 'hex')) of sql with params, or -ENOENT. */
static int chain_row(store_verify_t *self, const char *sql, int n, const char *const *params,
                     uint64_t *ret_id, uint8_t ret_chain[VG_SHA256_LEN])
{
    PGresult *res = NULL;
    int r = query(self, sql, n, params, "chain head", &res);
    if (r == 0 && PQntuples(res) == 0)
        r = -ENOENT;
    if (r == 0) {
        *ret_id = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
        r = unhex32(PQgetvalue(res, 0, 1), ret_chain);
    }
    PQclear(res);
    return r;
}

int store_evidence_head(store_verify_t *self, uint64_t *ret_id, uint8_t ret_chain[32])
{
    if (!self || !ret_id || !ret_chain)
        return -EINVAL;
    int r = chain_row(self, "SELECT id, encode(chain, 'hex') FROM evidence ORDER BY id DESC LIMIT 1",
                      0, NULL, ret_id, ret_chain);
    if (r == -ENOENT) { /* an empty vault: its head is the start */
        *ret_id = 0;
        memset(ret_chain, 0, VG_SHA256_LEN);
        r = 0;
    }
    return r;
}

int store_evidence_row_chain(store_verify_t *self, uint64_t id, uint8_t ret_chain[32])
{
    if (!self || !ret_chain || id == 0 || id > INT64_MAX)
        return -EINVAL;
    char text[24];
    uint64_t got = 0;
    snprintf(text, sizeof(text), "%" PRIu64, id);
    const char *params[] = {text};
    return chain_row(self, "SELECT id, encode(chain, 'hex') FROM evidence WHERE id = $1::bigint",
                     1, params, &got, ret_chain);
}

/* ---- the other chains (024_chains.sql): the audit log, the timelines, the command reports ---- */

static bool chained_table(const char *table)
{
    return table && (strcmp(table, "audit_log") == 0 || strcmp(table, "incident_events") == 0 ||
                     strcmp(table, "command_reports") == 0);
}

int store_chains_link(store_verify_t *self, uint64_t *ret_linked)
{
    if (!self)
        return -EINVAL;
    PGresult *res = NULL;
    /* One statement, one transaction: the chains in a fixed order, so two passes (two
     * coordinators) wait for each other instead of deadlocking. */
    int r = query(self,
                  "SELECT vigil_chain_pending('audit_log') + vigil_chain_pending('incident_events')"
                  " + vigil_chain_pending('command_reports')",
                  0, NULL, "chain links", &res);
    if (r == 0 && PQntuples(res) != 1)
        r = -EPROTO;
    if (r == 0 && ret_linked)
        *ret_linked = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return r;
}

int store_chain_head(store_verify_t *self, const char *table, uint64_t *ret_seq,
                     uint8_t ret_link[32])
{
    if (!self || !chained_table(table) || !ret_seq || !ret_link)
        return -EINVAL;
    const char *params[] = {table};
    int r = chain_row(self,
                      "SELECT seq, encode(link, 'hex') FROM chain_links WHERE chain = $1"
                      " ORDER BY seq DESC LIMIT 1",
                      1, params, ret_seq, ret_link);
    if (r == -ENOENT) {
        *ret_seq = 0;
        memset(ret_link, 0, VG_SHA256_LEN);
        r = 0;
    }
    return r;
}

int store_chain_link_at(store_verify_t *self, const char *table, uint64_t seq,
                        uint8_t ret_link[32])
{
    char text[24];
    uint64_t got = 0;
    if (!self || !chained_table(table) || !ret_link || seq == 0 || seq > INT64_MAX)
        return -EINVAL;
    snprintf(text, sizeof(text), "%" PRIu64, seq);
    const char *params[] = {table, text};
    return chain_row(self,
                     "SELECT seq, encode(link, 'hex') FROM chain_links WHERE chain = $1"
                     " AND seq = $2::bigint",
                     2, params, &got, ret_link);
}

int store_chain_verify(store_verify_t *self, const char *table, struct store_chain_verdict *ret)
{
    if (!self || !chained_table(table) || !ret)
        return -EINVAL;
    const char *params[] = {table};
    PGresult *res = NULL;
    int r = query(self,
                  "SELECT rows, broken_seq, reason, head_seq, encode(head_link, 'hex')"
                  " FROM vigil_chain_verify($1)",
                  1, params, "chain verify", &res);
    if (r == 0 && PQntuples(res) != 1)
        r = -EPROTO;
    if (r == 0) {
        memset(ret, 0, sizeof(*ret));
        ret->rows = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
        ret->broken = !PQgetisnull(res, 0, 1);
        ret->broken_seq = ret->broken ? strtoull(PQgetvalue(res, 0, 1), NULL, 10) : 0;
        snprintf(ret->reason, sizeof(ret->reason), "%s", PQgetvalue(res, 0, 2));
        ret->head_seq = strtoull(PQgetvalue(res, 0, 3), NULL, 10);
        r = unhex32(PQgetvalue(res, 0, 4), ret->head_link);
    }
    PQclear(res);
    return r;
}
