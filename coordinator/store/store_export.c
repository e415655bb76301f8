/* What an incident's export bundle holds (store_export.h). */
#include "store_export.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "log.h"
#include "store_internal.h"
#include "strict_text.h"
#include "wire.h"

/* A column as one line's field for people: tabs and line breaks become spaces. */
#define FIELD(x) "translate(" x ", E'\\t\\n\\r', '   ')"
#define UTC(x) "to_char(" x " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* A SHA-256 as the database writes it (encode(..., 'hex')). */
static bool hex32(const char *hex, uint8_t out[32])
{
    return vg_strict_hex32(hex, strlen(hex), out);
}

static bool parse_u64(const char *text, uint64_t *ret)
{
    int64_t v;
    if (!store_parse_i64(text, &v) || v < 0)
        return false;
    *ret = (uint64_t)v;
    return true;
}

/* ---- the incident ---- */

struct incident_walk {
    int (*cb)(const struct store_export_incident *inc, void *userdata);
    void *userdata;
    bool found;
};

static int incident_row(const PGresult *res, int i, void *userdata)
{
    struct incident_walk *w = userdata;
    int64_t id = 0, sev = 0;
    store_parse_i64(PQgetvalue(res, i, 0), &id);
    store_parse_i64(PQgetvalue(res, i, 4), &sev);
    struct store_export_incident inc = {
        .id = (uint64_t)id,
        .title = PQgetvalue(res, i, 1),
        .runbook = PQgetvalue(res, i, 2),
        .state = PQgetvalue(res, i, 3),
        .severity = (int)sev,
        .opened_at = PQgetvalue(res, i, 5),
        .scope_json = PQgetvalue(res, i, 6),
    };
    w->found = true;
    return w->cb(&inc, w->userdata);
}

int store_export_incident(store_t *self, uint64_t incident_id,
                          int (*cb)(const struct store_export_incident *inc, void *userdata),
                          void *userdata)
{
    if (!self || !cb || incident_id == 0 || incident_id > INT64_MAX)
        return -EINVAL;
    int r = store_ensure_conn(self);
    if (r < 0)
        return r;
    char id[24];
    snprintf(id, sizeof(id), "%" PRIu64, incident_id);
    const char *params[] = {id};
    struct incident_walk w = {cb, userdata, false};
    r = store_query_rows(self, "export incident",
                         "SELECT id, " FIELD("title") ", runbook, state, severity, " UTC(
                             "opened_at") ", scope::text FROM incidents WHERE id = $1::bigint",
                         1, params, incident_row, &w);
    return r == 0 && !w.found ? -ENOENT : r;
}

/* ---- artifacts: the vault's metadata as store_evidence_chain hashes it ---- */

static void meta_put(struct store_buf *b, const char *data, size_t len)
{
    char head[24];
    int n = snprintf(head, sizeof(head), "%zu:", len);
    store_buf_put(b, head, (size_t)n);
    store_buf_put(b, data, len);
    store_buf_putc(b, ',');
}

static void meta_put_text(struct store_buf *b, const char *text)
{
    meta_put(b, text, strlen(text));
}

/* A decimal column as the chain wrote it (its own text, which PostgreSQL prints the same). */
static void meta_put_number(struct store_buf *b, const char *text)
{
    meta_put_text(b, text);
}

/* The arguments sorted by key (bytewise), a value that is not a string as "" (like
 * store_evidence_chain and the verify walk). false when args is not such an object. */
static bool meta_put_args(struct store_buf *b, const char *args_text)
{
    json_error_t jerr;
    json_t *obj = json_loads(args_text, 0, &jerr);
    if (!json_is_object(obj) || json_object_size(obj) > VG_MAX_EVIDENCE_ARGS) {
        json_decref(obj);
        return false;
    }
    char count[24];
    snprintf(count, sizeof(count), "%zu", json_object_size(obj));
    meta_put_text(b, count);
    const char *last = NULL;
    for (size_t written = 0; written < json_object_size(obj); written++) {
        const char *key, *next = NULL;
        json_t *value, *next_value = NULL;
        json_object_foreach(obj, key, value)
        {
            if ((!last || strcmp(key, last) > 0) && (!next || strcmp(key, next) < 0)) {
                next = key;
                next_value = value;
            }
        }
        if (!next)
            break;
        meta_put_text(b, next);
        meta_put_text(b, json_is_string(next_value) ? json_string_value(next_value) : "");
        last = next;
    }
    json_decref(obj);
    return true;
}

enum {
    A_ID,
    A_COLLECTION,
    A_AGENT,
    A_AGENT_SEQ,
    A_ARTIFACT,
    A_NODE,
    A_KIND,
    A_ARGS,
    A_COLLECTED,
    A_STORED,
    A_SIZE,
    A_SHA256,
    A_TRUNCATED,
    A_PREV,
    A_CHAIN,
};

struct artifact_walk {
    int (*cb)(const struct store_export_artifact *a, void *userdata);
    void *userdata;
    size_t rows;
};

static int artifact_row(const PGresult *res, int i, void *userdata)
{
    struct artifact_walk *w = userdata;
    struct store_export_artifact a = {
        .agent_id = PQgetvalue(res, i, A_AGENT),
        .node = PQgetvalue(res, i, A_NODE),
        .kind = PQgetvalue(res, i, A_KIND),
    };
    if (++w->rows > STORE_EXPORT_ROWS_MAX)
        return -E2BIG;
    if (!parse_u64(PQgetvalue(res, i, A_ID), &a.id) ||
        !parse_u64(PQgetvalue(res, i, A_SIZE), &a.size) ||
        !hex32(PQgetvalue(res, i, A_SHA256), a.sha256) ||
        !hex32(PQgetvalue(res, i, A_PREV), a.prev) || !hex32(PQgetvalue(res, i, A_CHAIN), a.chain))
        return -EPROTO;

    struct store_buf meta = {0};
    meta_put_number(&meta, PQgetvalue(res, i, A_COLLECTION));
    meta_put_text(&meta, a.agent_id);
    meta_put_number(&meta, PQgetvalue(res, i, A_AGENT_SEQ));
    meta_put_number(&meta, PQgetvalue(res, i, A_ARTIFACT));
    meta_put_text(&meta, a.node);
    meta_put_text(&meta, a.kind);
    bool args_ok = meta_put_args(&meta, PQgetvalue(res, i, A_ARGS));
    meta_put_number(&meta, PQgetvalue(res, i, A_COLLECTED));
    meta_put_number(&meta, PQgetvalue(res, i, A_STORED));
    meta_put_number(&meta, PQgetvalue(res, i, A_SIZE));
    meta_put_text(&meta, strcmp(PQgetvalue(res, i, A_TRUNCATED), "t") == 0 ? "1" : "0");
    if (meta.oom) {
        store_buf_free(&meta);
        return -ENOMEM;
    }
    /* What the bundle will claim must hold here first: the row's chain recomputes. */
    struct vg_sha256 h;
    uint8_t chain[32];
    vg_sha256_init(&h);
    vg_sha256_update(&h, a.prev, sizeof(a.prev));
    vg_sha256_update(&h, a.sha256, sizeof(a.sha256));
    vg_sha256_update(&h, meta.data, meta.len);
    vg_sha256_final(&h, chain);
    if (!args_ok || memcmp(chain, a.chain, sizeof(chain)) != 0) {
        store_buf_free(&meta);
        vg_log(VG_LOG_WARN, "store: export: evidence=%" PRIu64 " does not recompute its chain",
               a.id);
        return -EPROTO;
    }
    a.meta = meta.data;
    a.meta_len = meta.len;
    int r = w->cb(&a, w->userdata);
    store_buf_free(&meta);
    return r;
}

int store_export_artifacts(store_t *self, uint64_t incident_id, uint64_t max_id,
                           int (*cb)(const struct store_export_artifact *a, void *userdata),
                           void *userdata)
{
    if (!self || !cb || incident_id == 0 || incident_id > INT64_MAX || max_id > INT64_MAX)
        return -EINVAL;
    int r = store_ensure_conn(self);
    if (r < 0)
        return r;
    char id[24], max[24];
    snprintf(id, sizeof(id), "%" PRIu64, incident_id);
    snprintf(max, sizeof(max), "%" PRIu64, max_id);
    const char *params[] = {id, max};
    struct artifact_walk w = {cb, userdata, 0};
    /* The milliseconds as the chain saw them (store_evidence_verify.c reads them the same). */
    return store_query_rows(
        self, "export artifacts",
        "SELECT e.id, e.collection_id, e.agent_id, e.agent_seq, e.artifact, e.node, e.kind,"
        " e.args::text, (extract(epoch FROM e.collected_at) * 1000)::bigint,"
        " (extract(epoch FROM e.stored_at) * 1000)::bigint, e.size, encode(e.sha256, 'hex'),"
        " e.truncated, encode(e.prev_chain, 'hex'), encode(e.chain, 'hex')"
        " FROM evidence e WHERE e.id <= $2::bigint AND e.id IN ("
        "  SELECT t.evidence_id FROM evidence_collections c"
        "  JOIN evidence_targets t ON t.collection_id = c.id"
        "  WHERE t.evidence_id IS NOT NULL AND (c.incident_id = $1::bigint"
        "   OR c.command_id IN (SELECT id FROM command_requests WHERE incident_id = $1::bigint)))"
        " ORDER BY e.id LIMIT " STORE_EXPORT_ROWS_LIMIT_TEXT,
        2, params, artifact_row, &w);
}

/* ---- the timeline's and the reports' chain rows ---- */

struct row_walk {
    int (*cb)(const struct store_export_row *row, void *userdata);
    void *userdata;
    size_t rows;
};

static int chain_row(const PGresult *res, int i, void *userdata)
{
    struct row_walk *w = userdata;
    struct store_export_row row = {
        .canonical = PQgetvalue(res, i, 4),
        .canonical_len = (size_t)PQgetlength(res, i, 4),
        .line = PQgetvalue(res, i, 5),
    };
    if (++w->rows > STORE_EXPORT_ROWS_MAX)
        return -E2BIG;
    if (!parse_u64(PQgetvalue(res, i, 0), &row.seq) ||
        !parse_u64(PQgetvalue(res, i, 1), &row.row_id) || !hex32(PQgetvalue(res, i, 2), row.prev) ||
        !hex32(PQgetvalue(res, i, 3), row.link))
        return -EPROTO;
    return w->cb(&row, w->userdata);
}

int store_export_rows(store_t *self, const char *table, uint64_t incident_id, uint64_t max_seq,
                      int (*cb)(const struct store_export_row *row, void *userdata), void *userdata)
{
    if (!self || !cb || !table || incident_id == 0 || incident_id > INT64_MAX ||
        max_seq > INT64_MAX)
        return -EINVAL;
    const char *sql;
    if (strcmp(table, "incident_events") == 0)
        sql =
            "SELECT l.seq, l.row_id, encode(l.prev_link, 'hex'), encode(l.link, 'hex'),"
            " convert_from(vigil_chain_incident_events(t), 'UTF8'),"
            " " UTC("t.at") " || E'\\t' || t.kind || E'\\t' || " FIELD(
                "t.actor") " || E'\\t' || " FIELD("t.text") ""
                                                            " FROM incident_events t"
                                                            " JOIN chain_links l ON l.chain = "
                                                            "'incident_events' AND l.row_id = t.id"
                                                            " WHERE t.incident_id = $1::bigint AND "
                                                            "l.seq <= $2::bigint"
                                                            " ORDER BY l.seq "
                                                            "LIMIT " STORE_EXPORT_ROWS_LIMIT_TEXT;
    else if (strcmp(table, "command_reports") == 0)
        sql =
            "SELECT l.seq, l.row_id, encode(l.prev_link, 'hex'), encode(l.link, 'hex'),"
            " convert_from(vigil_chain_command_reports(r), 'UTF8'),"
            " " UTC(
                "r.at") " || E'\\t' || r.request_id || E'\\t' || r.agent_id || E'\\t' ||"
                        " r.step || E'\\t' || coalesce(r.exit_status::text, '-') || E'\\t' ||"
                        " coalesce(encode(r.output_sha256, 'hex'), '-') || E'\\t' ||"
                        " CASE WHEN r.truncated THEN 'truncated' ELSE '-' END || E'\\t' || " FIELD(
                            "r.reason") ""
                                        " FROM command_reports r JOIN command_requests q ON q.id = "
                                        "r.request_id"
                                        " JOIN chain_links l ON l.chain = 'command_reports' AND "
                                        "l.row_id = r.chain_id"
                                        " WHERE q.incident_id = $1::bigint AND l.seq <= $2::bigint"
                                        " ORDER BY l.seq LIMIT " STORE_EXPORT_ROWS_LIMIT_TEXT;
    else
        return -EINVAL;
    int r = store_ensure_conn(self);
    if (r < 0)
        return r;
    char id[24], max[24];
    snprintf(id, sizeof(id), "%" PRIu64, incident_id);
    snprintf(max, sizeof(max), "%" PRIu64, max_seq);
    const char *params[] = {id, max};
    struct row_walk w = {cb, userdata, 0};
    return store_query_rows(self, "export chain rows", sql, 2, params, chain_row, &w);
}

/* ---- commands ---- */

struct command_walk {
    int (*cb)(const char *line, void *userdata);
    void *userdata;
    size_t rows;
};

static int command_row(const PGresult *res, int i, void *userdata)
{
    struct command_walk *w = userdata;
    if (++w->rows > STORE_EXPORT_ROWS_MAX)
        return -E2BIG;
    return w->cb(PQgetvalue(res, i, 0), w->userdata);
}

int store_export_commands(store_t *self, uint64_t incident_id,
                          int (*cb)(const char *line, void *userdata), void *userdata)
{
    if (!self || !cb || incident_id == 0 || incident_id > INT64_MAX)
        return -EINVAL;
    int r = store_ensure_conn(self);
    if (r < 0)
        return r;
    char id[24];
    snprintf(id, sizeof(id), "%" PRIu64, incident_id);
    const char *params[] = {id};
    struct command_walk w = {cb, userdata, 0};
    /* clang-format off */
    return store_query_rows(
        self, "export commands",
        "SELECT q.id || E'\\t' || " UTC("q.created_at") " || E'\\t' ||"
        " " FIELD("q.requested_by") " || E'\\t' || " FIELD("q.node") " || E'\\t' ||"
        " " FIELD("q.action") " || E'\\t' || " FIELD("q.args::text") " || E'\\t' ||"
        " q.mode || CASE WHEN q.dry_run THEN ' (dry run)' ELSE '' END || E'\\t' || s.state"
        " FROM command_requests q JOIN command_current s ON s.request_id = q.id"
        " WHERE q.incident_id = $1::bigint ORDER BY q.n LIMIT " STORE_EXPORT_ROWS_LIMIT_TEXT,
        1, params, command_row, &w);
    /* clang-format on */
}
