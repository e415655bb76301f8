/*
 * The evidence vault on the store's main connection: collections and their targets, the chunks
 * ingest brings (store_evidence_ingest, inside the batch's transaction), settling a complete
 * artifact into the vault, expiry and purge, listing and reading.
 *
 * Chunks go in during ingest, inside the batch's transaction. When an artifact's chunks are
 * complete (its last chunk is stored and the chunks cover 0..total_size with no gap or
 * overlap) the SHA-256 is re-computed over the stored bytes, streamed in offset order one
 * chunk at a time (single-row mode), and compared with the agent's. A match becomes a vault
 * row whose chain hash links it to the previous one; the chain is extended under a
 * transaction-level advisory lock, so two writers cannot read the same predecessor (and
 * prev_chain is unique, so even a writer that skipped the lock could not fork it).
 */
#include "store.h"
#include "store_incidents_conn.h"
#include "store_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "log.h"
#include "strict_text.h"
#include "timeutil.h"
#include "utf8.h"
#include "wire.h"

#define EVIDENCE_CHAIN_LOCK "7623190" /* pg_advisory_xact_lock key of the vault's chain */
#define ERROR_TEXT_MAX (VG_MAX_VALUE_LEN + 1)
#define TIMEOUT_ERROR "timed out: no complete artifact from the agent before the deadline"

void store_evidence_events_clear(struct store_evidence_events *events)
{
    if (!events)
        return;
    free(events->items);
    events->items = NULL;
    events->n = events->cap = 0;
}

struct store_evidence_event *store_evidence_event_add(struct store_evidence_events *ev,
                                                      enum store_evidence_outcome outcome,
                                                      const char *reason, const char *agent_id,
                                                      const char *kind, uint64_t collection_id,
                                                      uint64_t artifact)
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
    snprintf(e->agent_id, sizeof(e->agent_id), "%s", store_str_or_empty(agent_id));
    snprintf(e->kind, sizeof(e->kind), "%s", store_str_or_empty(kind));
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
    return vg_strict_hex32(hex, strlen(hex), out);
}

/* ---- the chain ---- */

/*
 * The chain hashes each field as "<length>:<bytes>," (numbers as decimal text). The fields go
 * through a buffer into one hash call per row: the verify walk hashes a million rows, and a
 * hash update or an snprintf per field was most of its time.
 */
struct chain_hasher {
    struct vg_sha256 h;
    bool streaming; /* the row outgrew buf: h holds what was flushed */
    size_t len;
    uint8_t buf[2048];
};

static void chain_write(struct chain_hasher *c, const void *data, size_t len)
{
    if (c->len + len > sizeof(c->buf)) {
        if (!c->streaming)
            vg_sha256_init(&c->h);
        c->streaming = true;
        vg_sha256_update(&c->h, c->buf, c->len);
        c->len = 0;
        if (len > sizeof(c->buf)) {
            vg_sha256_update(&c->h, data, len);
            return;
        }
    }
    memcpy(c->buf + c->len, data, len);
    c->len += len;
}

static void chain_final(struct chain_hasher *c, uint8_t out[VG_SHA256_LEN])
{
    if (!c->streaming) {
        vg_sha256(c->buf, c->len, out);
        return;
    }
    vg_sha256_update(&c->h, c->buf, c->len);
    vg_sha256_final(&c->h, out);
}

/* v in decimal, without a terminating NUL; returns its length (at most 20). */
static size_t decimal(uint64_t v, char out[20])
{
    char tmp[20];
    size_t n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

static void chain_put(struct chain_hasher *c, const void *data, size_t len)
{
    char head[21];
    size_t n = decimal(len, head);
    head[n++] = ':';
    chain_write(c, head, n);
    chain_write(c, data, len);
    chain_write(c, ",", 1);
}

static void chain_put_text(struct chain_hasher *c, const char *text)
{
    chain_put(c, store_str_or_empty(text), strlen(store_str_or_empty(text)));
}

static void chain_put_u64(struct chain_hasher *c, uint64_t v)
{
    char num[20];
    chain_put(c, num, decimal(v, num));
}

static void chain_put_i64(struct chain_hasher *c, int64_t v)
{
    char num[21];
    if (v >= 0) {
        chain_put_u64(c, (uint64_t)v);
        return;
    }
    num[0] = '-';
    chain_put(c, num, 1 + decimal(-(uint64_t)v, num + 1));
}

void store_evidence_chain(const uint8_t prev_chain[32], const uint8_t sha256[32],
                          const struct store_evidence_meta *meta, uint8_t ret_chain[32])
{
    struct chain_hasher h = {.streaming = false, .len = 0};

    chain_write(&h, prev_chain, VG_SHA256_LEN);
    chain_write(&h, sha256, VG_SHA256_LEN);
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
    chain_final(&h, ret_chain);
}

/* An investigation's collection (migration 018) tells its incident's timeline what became of it:
 * started, and each node that failed (its error, or the deadline). Stored ones show in
 * `vigilctl incident show`. */
#define EVIDENCE_TIMELINE_EVENT "INSERT INTO incident_events (incident_id, at, kind, actor, text, data)"
/* In target_fail's statement: failed (collection_id, agent_id, node), $3 the error. */
#define FAILED_TIMELINE_EVENT                                                                      \
    EVIDENCE_TIMELINE_EVENT                                                                        \
    " SELECT c.incident_id, now(), 'note', 'vigil',"                                               \
    "  format('investigation: %s from %s failed: %s', c.kind, f.node, $3),"                         \
    "  jsonb_build_object('collection_id', c.id, 'kind', c.kind, 'node', f.node,"                 \
    "   'state', 'failed')"                                                                         \
    " FROM failed f JOIN evidence_collections c ON c.id = f.collection_id"                          \
    " WHERE c.incident_id IS NOT NULL"
/* In the expiry's statement: expired (collection_id, agent_id, node, kind, incident_id). */
#define EXPIRED_TIMELINE_EVENT                                                                     \
    EVIDENCE_TIMELINE_EVENT                                                                        \
    " SELECT incident_id, now(), 'note', 'vigil',"                                                 \
    "  format('investigation: %s from %s failed: %s', kind, node, $1),"                             \
    "  jsonb_build_object('collection_id', collection_id, 'kind', kind, 'node', node,"            \
    "   'state', 'failed')"                                                                         \
    " FROM expired WHERE incident_id IS NOT NULL"

/* ---- targets ---- */

/* A pending target fails, with an audit row, in one statement. *ret_changed: it was pending. */
static int target_fail(store_t *self, uint64_t collection_id, const char *agent_id,
                       const char *error, const char *action, bool *ret_changed)
{
    char coll[24], clean[ERROR_TEXT_MAX];
    snprintf(coll, sizeof(coll), "%" PRIu64, collection_id);
    utf8_sanitize(error, clean, sizeof(clean));
    const char *params[] = {coll, agent_id, clean, action};
    uint64_t changed = 0;
    int r = store_command(
        self, "evidence target update",
        "WITH failed AS ("
        " UPDATE evidence_targets SET status = 'failed', error = $3, updated_at = now()"
        " WHERE collection_id = $1::bigint AND agent_id = $2 AND status = 'pending'"
        " RETURNING collection_id, agent_id, node), "
        "tl AS (" FAILED_TIMELINE_EVENT ") "
        "INSERT INTO audit_log (actor, action, subject, detail)"
        " SELECT 'coordinator', $4, format('collection=%s agent=%s', collection_id, agent_id), $3"
        " FROM failed",
        4, params, &changed);
    if (r == 0 && ret_changed)
        *ret_changed = changed != 0;
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
    struct store_evidence_event *e = store_evidence_event_add(
        ev, STORE_EVIDENCE_REJECTED, reason, m->sender, c->kind, c->collection_id, c->artifact);
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
    int r = store_ensure_conn(self);
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
 * The chunk insert is a prepared statement: PQexecParams plans every execution with its
 * parameters, and folding the data parameter into a constant copies the whole chunk (a fifth
 * of PostgreSQL's time storing an artifact). A prepared one soon runs a generic plan that
 * does not look at them.
 */
#define CHUNK_INSERT "vigil_evidence_chunk_insert"

static int chunk_insert_prepare(store_t *self)
{
    if (self->chunk_insert_prepared)
        return 0;
    PGresult *res = PQprepare(
        self->conn, CHUNK_INSERT,
        "INSERT INTO evidence_chunks (agent_id, artifact, \"offset\", collection_id, seq, data,"
        " last, total_size, sha256, truncated, collected_at)"
        " VALUES ($1, $2::bigint, $3::bigint, $4::bigint, $5::bigint, $6::bytea, $7::boolean,"
        " $8::bigint, $9::bytea, $10::boolean,"
        " 'epoch'::timestamptz + $11::bigint * interval '1 millisecond')"
        " ON CONFLICT DO NOTHING",
        11, NULL);
    int r = 0;
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        r = store_failed(self, res, "evidence chunk insert prepare");
    else
        self->chunk_insert_prepared = true;
    PQclear(res);
    return r;
}

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
        r = store_failed(self, res, "evidence target lookup");
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
        struct store_evidence_event *e = store_evidence_event_add(
            ev, STORE_EVIDENCE_FAILED, "agent", m->sender, c->kind, c->collection_id, c->artifact);
        if (!e)
            return -ENOMEM;
        utf8_sanitize(c->error, e->detail, sizeof(e->detail));
        return target_fail(self, c->collection_id, m->sender, c->error, "evidence.failed", NULL);
    }
    if (c->last && (c->collected_at_ms < STORE_TS_MIN_MS || c->collected_at_ms > STORE_TS_MAX_MS))
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
        r = store_failed(self, res, "evidence artifact check");
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
    r = chunk_insert_prepare(self);
    if (r < 0)
        return r;
    res = PQexecPrepared(self->conn, CHUNK_INSERT, 11, params, lengths, formats, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        r = store_failed(self, res, "evidence chunk insert");
        PQclear(res);
        return r;
    }
    bool inserted = strcmp(PQcmdTuples(res), "1") == 0;
    PQclear(res);
    if (!inserted)
        return reject(self, ev, "duplicate", m, true,
                      "artifact %" PRIu64 " has two different chunks at offset %" PRIu64,
                      c->artifact, c->offset);
    artifact_hash_feed(&self->uploads, m->sender, c->artifact, c->offset, c->data.data,
                       c->data.len);
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
        return store_failed(self, NULL, "evidence hash query");
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
            r = store_failed(self, res, "evidence hash");
        }
        PQclear(res);
    }
    if (r == 0)
        vg_sha256_final(&h, ret_sha);
    else
        vg_sha256_discard(&h);
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
        r = store_failed(self, res, "evidence chain lock");
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
        r = PQresultStatus(res) == PGRES_TUPLES_OK ? -EPROTO
                                                   : store_failed(self, res, "evidence chain");
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
    store_parse_i64(PQgetvalue(res, 0, 1), &agent_seq);
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
        r = PQresultStatus(res) == PGRES_TUPLES_OK ? -EPROTO
                                                   : store_failed(self, res, "evidence insert");
        PQclear(res);
        return r;
    }
    int64_t id = 0;
    store_parse_i64(PQgetvalue(res, 0, 0), &id);
    PQclear(res);

    struct store_evidence_event *e = store_evidence_event_add(
        ev, STORE_EVIDENCE_STORED, "", m->sender, kind, c->collection_id, c->artifact);
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
        r = store_failed(self, res, "evidence artifact shape");
        PQclear(res);
        return r;
    }
    int64_t lasts = 0, total = 0, collected_at = 0, sum = 0, end = 0;
    store_parse_i64(PQgetvalue(res, 0, 0), &lasts);
    store_parse_i64(PQgetvalue(res, 0, 1), &total);
    char agent_hex[VG_SHA256_HEX_LEN + 1];
    snprintf(agent_hex, sizeof(agent_hex), "%s", PQgetvalue(res, 0, 2));
    bool truncated = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
    store_parse_i64(PQgetvalue(res, 0, 4), &collected_at);
    store_parse_i64(PQgetvalue(res, 0, 5), &sum);
    bool overlap = strcmp(PQgetvalue(res, 0, 6), "t") == 0;
    bool gap = strcmp(PQgetvalue(res, 0, 7), "t") == 0;
    store_parse_i64(PQgetvalue(res, 0, 8), &end);
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

    /* The stored chunks are exactly [0, total): the bytes hashed as they were inserted are
     * theirs, when every one was hashed in order (artifact_hash.h); else read them back. */
    uint8_t stored_sha[VG_SHA256_LEN], agent_sha[VG_SHA256_LEN];
    if (!artifact_hash_take(&self->uploads, m->sender, c->artifact, (uint64_t)total, stored_sha)) {
        r = hash_artifact(self, m->sender, art, stored_sha);
        if (r < 0)
            return r;
    }
    char stored_hex[VG_SHA256_HEX_LEN + 1];
    vg_hex(stored_sha, VG_SHA256_LEN, stored_hex);
    if (!hex_decode32(agent_hex, agent_sha) ||
        vg_memcmp_ct(agent_sha, stored_sha, VG_SHA256_LEN) != 0)
        return reject(self, ev, "sha256", m, true,
                      "sha256 mismatch: agent said %s, stored bytes hash to %s", agent_hex,
                      stored_hex);
    return vault_append(self, m, art, stored_sha, (uint64_t)total, truncated, collected_at, ev);
}

int store_evidence_ingest(store_t *self, Vigil__Envelope *const *msgs, size_t n, const bool *fresh,
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

/* ---- artifacts the coordinator makes ---- */

#define LOCAL_MAX_CHUNKS 8 /* 8 MiB: a promql artifact is at most 1 MiB and its header */

int store_evidence_local(store_t *self, uint64_t collection_id, const char *kind,
                         const uint8_t *data, size_t len, bool truncated, int64_t collected_at_ms,
                         struct store_evidence_events *ret_events)
{
    const size_t chunk = VG_MAX_EVIDENCE_CHUNK_BYTES;
    size_t nchunks = len ? (len + chunk - 1) / chunk : 1;

    if (!self || !kind || !vg_evidence_kind_name_ok(kind) || (len > 0 && !data) ||
        collection_id == 0 || collection_id > (uint64_t)INT64_MAX || !ret_events)
        return -EINVAL;
    if (nchunks > LOCAL_MAX_CHUNKS)
        return -EMSGSIZE;
    Vigil__EvidenceChunk chunks[LOCAL_MAX_CHUNKS];
    Vigil__Envelope envs[LOCAL_MAX_CHUNKS], *msgs[LOCAL_MAX_CHUNKS];
    bool fresh[LOCAL_MAX_CHUNKS];
    uint8_t sha[VG_SHA256_LEN];
    /* What an agent does at capture: the SHA-256 of the bytes, sent with the last chunk. */
    vg_sha256(data, len, sha);
    for (size_t i = 0; i < nchunks; i++) {
        size_t off = i * chunk;
        Vigil__EvidenceChunk *c = &chunks[i];
        vigil__evidence_chunk__init(c);
        c->collection_id = collection_id;
        c->kind = (char *)kind;
        c->artifact = collection_id; /* unique among the coordinator's artifacts */
        c->offset = off;
        c->data.data = len > 0 ? (uint8_t *)data + off : NULL;
        c->data.len = len - off < chunk ? len - off : chunk;
        c->last = i + 1 == nchunks;
        if (c->last) {
            c->total_size = len;
            c->sha256.data = sha;
            c->sha256.len = VG_SHA256_LEN;
            c->truncated = truncated;
            c->collected_at_ms = collected_at_ms;
        }
        vigil__envelope__init(&envs[i]);
        envs[i].sender = (char *)VG_COORDINATOR_AGENT_ID;
        envs[i].seq = collection_id;
        envs[i].sent_at_ms = collected_at_ms;
        envs[i].body_case = VIGIL__ENVELOPE__BODY_EVIDENCE;
        envs[i].evidence = c;
        msgs[i] = &envs[i];
        fresh[i] = true;
    }

    struct store_evidence_events events = {0};
    int r = store_ensure_conn(self);
    if (r == 0)
        r = store_exec(self, "local evidence BEGIN", "BEGIN");
    if (r < 0)
        goto out;
    r = store_evidence_ingest(self, msgs, nchunks, fresh, &events);
    if (r == 0)
        r = store_exec(self, "local evidence COMMIT", "COMMIT");
    if (r < 0) {
        store_rollback_if_alive(self);
        goto out;
    }
    for (size_t i = 0; i < events.n; i++) {
        struct store_evidence_event *e = store_evidence_event_add(
            ret_events, events.items[i].outcome, events.items[i].reason, events.items[i].agent_id,
            events.items[i].kind, events.items[i].collection_id, events.items[i].artifact);
        if (!e)
            break; /* committed all the same: only the report of it is short */
        *e = events.items[i];
    }
out:
    store_evidence_events_clear(&events);
    return r;
}

/* ---- collections ---- */

int store_evidence_collection_create(store_t *self, const char *actor, const char *kind,
                                     const struct store_evidence_arg *args, size_t nargs,
                                     int64_t deadline_ms,
                                     const struct store_evidence_target *targets, size_t ntargets,
                                     uint64_t incident_id, uint64_t *ret_id)
{
    if (!self || !actor || !kind || (nargs > 0 && !args) || (ntargets > 0 && !targets) ||
        nargs > VG_MAX_EVIDENCE_ARGS || !vg_utf8_valid(actor) || !vg_utf8_valid(kind) ||
        deadline_ms < STORE_TS_MIN_MS || deadline_ms > STORE_TS_MAX_MS)
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
    struct store_buf cols[NCOLS];
    memset(cols, 0, sizeof(cols));
    for (size_t i = 0; i < nargs; i++) {
        store_array_sep(&cols[KEYS], i);
        store_array_put_text(&cols[KEYS], args[i].key);
        store_array_sep(&cols[VALUES], i);
        store_array_put_text(&cols[VALUES], args[i].value);
    }
    for (size_t i = 0; i < ntargets; i++) {
        store_array_sep(&cols[AGENTS], i);
        store_array_put_text(&cols[AGENTS], targets[i].agent_id);
        store_array_sep(&cols[NODES], i);
        store_array_put_text(&cols[NODES], targets[i].node);
    }
    bool oom = false;
    for (int c = 0; c < NCOLS; c++) {
        if (cols[c].len == 0)
            store_buf_putc(&cols[c], '{');
        store_buf_putc(&cols[c], '}');
        oom |= cols[c].oom;
    }
    int r = oom ? -ENOMEM : store_ensure_conn(self);
    if (r < 0)
        goto out;
    r = store_exec(self, "collection BEGIN", "BEGIN");
    if (r < 0)
        goto err_rollback;

    char deadline[24], count[24], incident[24];
    snprintf(deadline, sizeof(deadline), "%" PRId64, deadline_ms);
    snprintf(count, sizeof(count), "%zu", ntargets);
    snprintf(incident, sizeof(incident), "%" PRIu64, incident_id);
    const char *params[] = {actor,    kind,  cols[KEYS].data, cols[VALUES].data,
                            deadline, count, incident,        cols[NODES].data};
    PGresult *res = PQexecParams(
        self->conn,
        "WITH c AS ("
        " INSERT INTO evidence_collections (operator, kind, args, deadline, incident_id)"
        " VALUES ($1, $2, jsonb_object($3::text[], $4::text[]),"
        "  'epoch'::timestamptz + $5::bigint * interval '1 millisecond', nullif($7::bigint, 0))"
        " RETURNING id, kind, args, incident_id), "
        "a AS (INSERT INTO audit_log (actor, action, subject, detail)"
        " SELECT $1, 'evidence.collect', 'collection=' || id,"
        "  format('kind=%s args=%s targets=%s', kind, args::text, $6::text) FROM c), "
        "tl AS (" EVIDENCE_TIMELINE_EVENT
        "  SELECT incident_id, now(), 'note', 'vigil',"
        "   format('investigating: %s from %s (collection %s)', kind,"
        "     array_to_string($8::text[], ', '), id),"
        "   jsonb_build_object('collection_id', id, 'kind', kind, 'state', 'pending')"
        "  FROM c WHERE incident_id IS NOT NULL) "
        "SELECT id FROM c",
        8, NULL, params, NULL, NULL, 0);
    int64_t id = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
        !store_parse_i64(PQgetvalue(res, 0, 0), &id)) {
        r = store_failed(self, res, "collection insert");
        PQclear(res);
        goto err_rollback;
    }
    PQclear(res);

    char id_text[24];
    snprintf(id_text, sizeof(id_text), "%" PRId64, id);
    const char *tparams[] = {id_text, cols[AGENTS].data, cols[NODES].data};
    r = store_command(self, "collection targets",
                      "INSERT INTO evidence_targets (collection_id, agent_id, node)"
                      " SELECT $1::bigint, a, n FROM unnest($2::text[], $3::text[]) AS u(a, n)",
                      3, tparams, NULL);
    if (r < 0)
        goto err_rollback;
    r = store_exec(self, "collection COMMIT", "COMMIT");
    if (r < 0)
        goto err_rollback;
    *ret_id = (uint64_t)id;
    goto out;

err_rollback:
    store_rollback_if_alive(self);
out:
    for (int c = 0; c < NCOLS; c++)
        store_buf_free(&cols[c]);
    return r;
}

int store_evidence_purge_incomplete(store_t *self, int64_t grace_ms, uint64_t *ret_chunks,
                                    uint64_t *ret_bytes)
{
    if (!self || grace_ms < 0)
        return -EINVAL;
    int r = store_ensure_conn(self);
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
        r = store_failed(self, res, "evidence purge");
        PQclear(res);
        return r;
    }
    if (ret_chunks)
        *ret_chunks = store_parse_u64_or_zero(PQgetvalue(res, 0, 0));
    if (ret_bytes)
        *ret_bytes = store_parse_u64_or_zero(PQgetvalue(res, 0, 1));
    PQclear(res);
    return 0;
}

/* One target that timed out: a FAILED event, when the caller wants them. */
static int expired_row(const PGresult *res, int i, void *userdata)
{
    struct store_evidence_events *events = userdata;
    if (!events)
        return 1; /* the statement did its work; nobody asked for the events */
    int64_t coll = 0;
    store_parse_i64(PQgetvalue(res, i, 0), &coll);
    struct store_evidence_event *e =
        store_evidence_event_add(events, STORE_EVIDENCE_FAILED, "timeout", PQgetvalue(res, i, 1),
                                 PQgetvalue(res, i, 2), (uint64_t)coll, 0);
    if (!e)
        return -ENOMEM;
    snprintf(e->detail, sizeof(e->detail), "%s", TIMEOUT_ERROR);
    return 0;
}

int store_evidence_expire(store_t *self, struct store_evidence_events *ret_events)
{
    if (!self)
        return -EINVAL;
    int r = store_ensure_conn(self);
    if (r < 0)
        return r;
    const char *params[] = {TIMEOUT_ERROR};
    return store_query_rows(
        self, "evidence expiry",
        "WITH expired AS ("
        " UPDATE evidence_targets t SET status = 'failed', error = $1, updated_at = now()"
        " FROM evidence_collections c"
        " WHERE c.id = t.collection_id AND t.status = 'pending' AND c.deadline < now()"
        " RETURNING t.collection_id, t.agent_id, t.node, c.kind, c.incident_id), "
        "audit AS (INSERT INTO audit_log (actor, action, subject, detail)"
        " SELECT 'coordinator', 'evidence.failed',"
        "  format('collection=%s agent=%s', collection_id, agent_id), $1 FROM expired), "
        "tl AS (" EXPIRED_TIMELINE_EVENT ") "
        "SELECT collection_id, agent_id, kind FROM expired",
        1, params, expired_row, ret_events);
}

static int count_row(const PGresult *res, int row, void *userdata)
{
    *(bool *)userdata = strcmp(PQgetvalue(res, row, 0), "t") == 0;
    return 0;
}

int store_evidence_investigated(store_t *self, uint64_t incident_id, const char *node,
                                bool *ret)
{
    if (!self || !node || !vg_utf8_valid(node) || !ret)
        return -EINVAL;
    char incident[24];
    snprintf(incident, sizeof(incident), "%" PRIu64, incident_id);
    const char *params[] = {incident, node};
    *ret = false;
    int r = store_ensure_conn(self);
    if (r == 0)
        r = store_query_rows(self, "investigated",
                             "SELECT EXISTS (SELECT 1 FROM evidence_collections c"
                             " JOIN evidence_targets t ON t.collection_id = c.id"
                             " WHERE c.incident_id = $1::bigint AND t.node = $2)",
                             2, params, count_row, ret);
    return r;
}

int store_incident_evidence(store_incidents_t *self, uint64_t incident_id,
                            int (*cb)(const struct store_incident_evidence *e, void *userdata),
                            void *userdata)
{
    char id[24];
    snprintf(id, sizeof(id), "%" PRIu64, incident_id);
    const char *params[] = {id};
    PGresult *res = NULL;
    int r = store_incidents_run(
        self,
        "SELECT c.kind, t.node, coalesce(c.command_id, ''), t.status, t.error,"
        " coalesce(e.id, 0), coalesce(encode(e.sha256, 'hex'), ''), coalesce(e.size, 0)"
        " FROM evidence_collections c JOIN evidence_targets t ON t.collection_id = c.id"
        " LEFT JOIN evidence e ON e.id = t.evidence_id"
        " WHERE c.incident_id = $1::bigint"
        "    OR c.command_id IN (SELECT id FROM command_requests WHERE incident_id = $1::bigint)"
        " ORDER BY c.id, t.node LIMIT 512",
        1, params, "incident evidence", &res);
    if (r < 0)
        return r;
    for (int i = 0; r == 0 && i < PQntuples(res); i++) {
        struct store_incident_evidence e = {
            .kind = PQgetvalue(res, i, 0),
            .node = PQgetvalue(res, i, 1),
            .command_id = PQgetvalue(res, i, 2),
            .status = PQgetvalue(res, i, 3),
            .error = PQgetvalue(res, i, 4),
            .evidence_id = (uint64_t)store_incidents_field_i64(res, i, 5),
            .sha256_hex = PQgetvalue(res, i, 6),
            .size = (uint64_t)store_incidents_field_i64(res, i, 7),
        };
        r = cb(&e, userdata);
    }
    PQclear(res);
    return r < 0 ? r : 0;
}

int store_evidence_investigation_note(store_t *self, uint64_t incident_id, const char *kind,
                                      const char *node, const char *text)
{
    if (!self || incident_id == 0 || !vg_utf8_valid(kind) || !vg_utf8_valid(node) ||
        !vg_utf8_valid(text))
        return -EINVAL;
    char incident[24];
    snprintf(incident, sizeof(incident), "%" PRIu64, incident_id);
    const char *params[] = {incident, text, kind, node};
    int r = store_ensure_conn(self);
    if (r == 0)
        r = store_command(self, "investigation note",
                          EVIDENCE_TIMELINE_EVENT " SELECT id, now(), 'note', 'vigil', $2,"
                          "  jsonb_build_object('kind', $3::text, 'node', $4::text,"
                          "   'state', 'failed')"
                          " FROM incidents WHERE id = $1::bigint",
                          4, params, NULL);
    return r;
}

/* ---- listing and reading ---- */

#define EVIDENCE_COLUMNS                                                                           \
    "e.id, e.collection_id, e.agent_id, e.node, e.kind, e.args::text, e.size,"                     \
    " encode(e.sha256, 'hex'), (extract(epoch FROM e.collected_at) * 1000)::bigint,"               \
    " (extract(epoch FROM e.stored_at) * 1000)::bigint, 'stored', '', e.truncated"

struct evidence_walk {
    store_evidence_cb cb;
    void *userdata;
    bool any; /* a row was seen */
};

static int evidence_row(const PGresult *res, int i, void *userdata)
{
    struct evidence_walk *walk = userdata;
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
    store_parse_i64(PQgetvalue(res, i, 0), &id);
    store_parse_i64(PQgetvalue(res, i, 1), &coll);
    store_parse_i64(PQgetvalue(res, i, 6), &size);
    store_parse_i64(PQgetvalue(res, i, 8), &info.collected_at_ms);
    store_parse_i64(PQgetvalue(res, i, 9), &info.stored_at_ms);
    info.id = id > 0 ? (uint64_t)id : 0;
    info.collection_id = coll > 0 ? (uint64_t)coll : 0;
    info.size = size > 0 ? (uint64_t)size : 0;
    walk->any = true;
    return walk->cb(&info, walk->userdata);
}

int store_evidence_list(store_t *self, uint64_t collection_id, const char *node, uint32_t limit,
                        store_evidence_cb cb, void *userdata)
{
    if (!self || !cb || (node && !vg_utf8_valid(node)))
        return -EINVAL;
    int r = store_ensure_conn(self);
    if (r < 0)
        return r;
    char coll[24], lim[24];
    snprintf(coll, sizeof(coll), "%" PRIu64, collection_id);
    snprintf(lim, sizeof(lim), "%" PRIu32, limit);
    const char *params[] = {coll, node && node[0] ? node : NULL, lim};
    struct evidence_walk walk = {cb, userdata, false};
    if (collection_id != 0)
        return store_query_rows(
            self, "evidence list",
            "SELECT coalesce(e.id, 0), t.collection_id, t.agent_id, t.node, c.kind,"
            " c.args::text, coalesce(e.size, 0), coalesce(encode(e.sha256, 'hex'), ''),"
            " coalesce((extract(epoch FROM e.collected_at) * 1000)::bigint, 0),"
            " coalesce((extract(epoch FROM e.stored_at) * 1000)::bigint, 0),"
            " t.status, t.error, coalesce(e.truncated, false)"
            " FROM evidence_targets t JOIN evidence_collections c ON c.id = t.collection_id"
            " LEFT JOIN evidence e ON e.id = t.evidence_id"
            " WHERE t.collection_id = $1::bigint AND ($2::text IS NULL OR t.node = $2)"
            " ORDER BY t.node, t.agent_id LIMIT $3::bigint",
            3, params, evidence_row, &walk);
    return store_query_rows(self, "evidence list",
                            "SELECT " EVIDENCE_COLUMNS " FROM evidence e"
                            " WHERE $1::bigint = 0 AND ($2::text IS NULL OR e.node = $2)"
                            " ORDER BY e.id DESC LIMIT $3::bigint",
                            3, params, evidence_row, &walk);
}

/* Every target of the collections that match where ($1 the one parameter), in the order they
 * were opened. */
static int list_linked(store_t *self, const char *what, const char *where, const char *param,
                       store_evidence_cb cb, void *userdata)
{
    int r = store_ensure_conn(self);
    if (r < 0)
        return r;
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "SELECT coalesce(e.id, 0), t.collection_id, t.agent_id, t.node, c.kind,"
             " c.args::text, coalesce(e.size, 0), coalesce(encode(e.sha256, 'hex'), ''),"
             " coalesce((extract(epoch FROM e.collected_at) * 1000)::bigint, 0),"
             " coalesce((extract(epoch FROM e.stored_at) * 1000)::bigint, 0),"
             " t.status, t.error, coalesce(e.truncated, false)"
             " FROM evidence_collections c JOIN evidence_targets t ON t.collection_id = c.id"
             " LEFT JOIN evidence e ON e.id = t.evidence_id"
             " WHERE %s ORDER BY c.id, t.agent_id LIMIT 256",
             where);
    const char *params[] = {param};
    struct evidence_walk walk = {cb, userdata, false};
    return store_query_rows(self, what, sql, 1, params, evidence_row, &walk);
}

int store_evidence_list_command(store_t *self, const char *request_id, store_evidence_cb cb,
                                void *userdata)
{
    if (!self || !cb || !request_id || !vg_utf8_valid(request_id))
        return -EINVAL;
    return list_linked(self, "command evidence list", "c.command_id = $1", request_id, cb,
                       userdata);
}

int store_evidence_list_incident(store_t *self, uint64_t incident_id, store_evidence_cb cb,
                                 void *userdata)
{
    if (!self || !cb)
        return -EINVAL;
    char id[24];
    snprintf(id, sizeof(id), "%" PRIu64, incident_id);
    return list_linked(self, "incident evidence list", "c.incident_id = $1::bigint", id, cb,
                       userdata);
}

int store_evidence_get(store_t *self, uint64_t id, store_evidence_cb cb, void *userdata)
{
    if (!self || !cb)
        return -EINVAL;
    int r = store_ensure_conn(self);
    if (r < 0)
        return r;
    char id_text[24];
    snprintf(id_text, sizeof(id_text), "%" PRIu64, id);
    const char *params[] = {id_text};
    struct evidence_walk walk = {cb, userdata, false};
    r = store_query_rows(self, "evidence get",
                         "SELECT " EVIDENCE_COLUMNS " FROM evidence e WHERE e.id = $1::bigint", 1,
                         params, evidence_row, &walk);
    return r == 0 && !walk.any ? -ENOENT : r;
}

static uint64_t get_be64(const char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | (uint8_t)p[i];
    return v;
}

/* A window of an artifact being read, filled chunk by chunk. */
struct read_window {
    uint64_t id, offset;
    uint8_t *buf;
    size_t max, got;
};

static int read_row(const PGresult *res, int i, void *userdata)
{
    struct read_window *w = userdata;
    if (w->got >= w->max)
        return 1;
    if (PQgetlength(res, i, 0) != 8)
        return -EPROTO;
    uint64_t start = get_be64(PQgetvalue(res, i, 0));
    if (start != w->offset + w->got) {
        vg_log(VG_LOG_WARN, "store: evidence=%" PRIu64 " chunks are not contiguous at %" PRIu64,
               w->id, w->offset + w->got);
        return -EPROTO;
    }
    size_t n = (size_t)PQgetlength(res, i, 1);
    if (n > w->max - w->got)
        n = w->max - w->got;
    memcpy(w->buf + w->got, PQgetvalue(res, i, 1), n);
    w->got += n;
    return 0;
}

int store_evidence_read(store_t *self, uint64_t id, uint64_t offset, uint8_t *buf, size_t max,
                        size_t *ret_len)
{
    if (!self || !buf || max == 0 || max > VG_MAX_EVIDENCE_READ_BYTES ||
        offset > (uint64_t)VG_MAX_EVIDENCE_BYTES)
        return -EINVAL;
    int r = store_ensure_conn(self);
    if (r < 0)
        return r;
    char id_text[24], off[24], len[24];
    snprintf(id_text, sizeof(id_text), "%" PRIu64, id);
    snprintf(off, sizeof(off), "%" PRIu64, offset);
    snprintf(len, sizeof(len), "%zu", max);
    const char *params[] = {id_text, off, len};
    struct read_window window = {.id = id, .offset = offset, .buf = buf, .max = max};
    /*
     * Only the chunks of the verified artifact (same collection), cut to the window. The
     * artifact is looked up once (the CTE), so the chunks come in their primary key's order:
     * joined to evidence they came out of a sort that held every cut chunk, spilling megabytes
     * to a temporary file on each read.
     */
    r = store_query_rows_binary(
        self, "evidence read",
        "WITH e AS MATERIALIZED (SELECT agent_id, artifact, collection_id, size FROM evidence"
        "  WHERE id = $1::bigint AND $2::bigint < size)"
        " SELECT greatest(c.\"offset\", $2::bigint),"
        " substring(c.data FROM (greatest($2::bigint - c.\"offset\", 0) + 1)::int"
        "  FOR least($3::bigint, (SELECT size FROM e) - $2::bigint)::int)"
        " FROM evidence_chunks c"
        " WHERE c.agent_id = (SELECT agent_id FROM e) AND c.artifact = (SELECT artifact FROM e)"
        "  AND c.collection_id = (SELECT collection_id FROM e)"
        "  AND c.\"offset\" < $2::bigint + $3::bigint"
        "  AND c.\"offset\" + length(c.data) > $2::bigint"
        " ORDER BY c.\"offset\"",
        3, params, read_row, &window);
    if (r == 0)
        *ret_len = window.got;
    return r;
}
