/*
 * Ingest: durable agent messages into the store, on its main connection.
 *
 * Ingest is the hot path: a batch of agent messages is one transaction of a constant number
 * of round trips — BEGIN; one INSERT ... SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING
 * RETURNING the (agent, seq) pairs that were new; one COPY of the signal samples of those new
 * messages only; COMMIT. Duplicates (an agent resending what was stored but not yet
 * acknowledged) are therefore stored once and still count as stored. The evidence chunks of
 * the new messages go in before COMMIT, in the same transaction (store_evidence.c).
 *
 * store_ingest returns 0 only once COMMIT answered COMMIT: then every message of the batch is
 * stored and the router may acknowledge it.
 */
#include "store.h"
#include "store_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "timeutil.h"
#include "utf8.h"

#define COPY_CHUNK (256 * 1024) /* bytes of COPY data handed to libpq at a time */

/* "YYYY-MM-DD HH:MM:SS.mmm+00"; -EINVAL outside years 1..9999. */
static int render_ts(int64_t ms, char *out, size_t len)
{
    if (ms < STORE_TS_MIN_MS || ms > STORE_TS_MAX_MS)
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
    case VIGIL__ENVELOPE__BODY_COMMAND_REPORT:
        return "command_report";
    default:
        return "none";
    }
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
#define COPY_FIELDS 9 /* agent_id, seq, name, value, unit, labels, ts, state, command_id */
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
    if (!vg_utf8_valid(store_str_or_empty(s->name)) || !vg_utf8_valid(store_str_or_empty(s->unit)))
        return "a signal name or unit is not valid UTF-8";
    if (s->ts_ms < STORE_TS_MIN_MS || s->ts_ms > STORE_TS_MAX_MS)
        return "a signal's timestamp is outside years 1-9999";
    if (s->n_labels > 0 && !s->labels)
        return "a signal's labels are missing";
    for (size_t i = 0; i < s->n_labels; i++) {
        const Vigil__Label *l = s->labels[i];
        if (!l || !vg_utf8_valid(store_str_or_empty(l->key)) ||
            !vg_utf8_valid(store_str_or_empty(l->value)))
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
    if (m->sent_at_ms < STORE_TS_MIN_MS || m->sent_at_ms > STORE_TS_MAX_MS)
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
    /* A report's text goes into text columns: PostgreSQL refuses what is not UTF-8. */
    if (m->body_case == VIGIL__ENVELOPE__BODY_COMMAND_REPORT &&
        (!m->command_report || !vg_utf8_valid(store_str_or_empty(m->command_report->request_id)) ||
         !vg_utf8_valid(store_str_or_empty(m->command_report->reason))))
        return "a command report whose request id or reason is not valid UTF-8";
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
static int build_message_arrays(Vigil__Envelope *const *msgs, size_t n, struct store_buf arrays[4])
{
    for (size_t i = 0; i < n; i++) {
        const Vigil__Envelope *m = msgs[i];
        char ts[40];
        if (render_ts(m->sent_at_ms, ts, sizeof(ts)) < 0)
            return -EINVAL;
        for (int c = 0; c < 4; c++)
            store_array_sep(&arrays[c], i);
        store_array_put_text(&arrays[0], m->sender);
        store_array_put_i64(&arrays[1], (int64_t)m->seq);
        store_array_put_text(&arrays[2], kind_name(m->body_case));
        store_array_put_text(&arrays[3], ts);
    }
    bool oom = false;
    for (int c = 0; c < 4; c++) {
        store_buf_putc(&arrays[c], '}');
        oom |= arrays[c].oom;
    }
    return oom ? -ENOMEM : 0;
}

/* One COPY row: agent_id, seq, name, value, unit, labels (a JSON object), ts, state, command_id
 * (NULL unless measured while a command ran). */
static void copy_put_signal(struct store_buf *b, const Vigil__Envelope *m, size_t sender_len,
                            const Vigil__Signal *s)
{
    const char *name = store_str_or_empty(s->name), *unit = store_str_or_empty(s->unit);
    size_t name_len = strlen(name), unit_len = strlen(unit);
    size_t labels_max = 2;
    for (size_t i = 0; i < s->n_labels; i++)
        labels_max += json_string_max(store_str_or_empty(s->labels[i]->key)) +
                      json_string_max(store_str_or_empty(s->labels[i]->value)) + 2;
    const char *command = s->command_id && s->command_id[0] ? s->command_id : NULL;
    size_t command_len = command ? strlen(command) : 0;
    if (!store_buf_reserve(b, 2 + COPY_FIELDS * 4 + sender_len + 8 + name_len + 8 + unit_len + 1 +
                                  labels_max + 8 + 2 + command_len))
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
        p = json_put_string(p, store_str_or_empty(s->labels[i]->key));
        *p++ = ':';
        p = json_put_string(p, store_str_or_empty(s->labels[i]->value));
    }
    *p++ = '}';
    put_be32(labels_len, (uint32_t)(p - labels_len - 4));

    /* Microseconds since 2000-01-01; in range because message_valid checked ts_ms. */
    p = put_field_u64(p, (uint64_t)((s->ts_ms - PG_EPOCH_MS) * 1000));
    /* smallint: the threshold state the agent evaluated (0-3; anything else stored as none). */
    uint16_t state = s->state >= 0 && s->state <= 3 ? (uint16_t)s->state : 0;
    p = put_be16(put_be32(p, 2), state);
    p = command ? put_field(p, command, command_len) : put_be32(p, UINT32_MAX); /* -1: NULL */
    b->len = (size_t)(p - b->data);
}

/* Hands the buffered COPY data to libpq; false when the connection failed. */
static bool copy_flush(store_t *self, struct store_buf *b)
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
    struct store_buf *data = &self->copy;
    size_t rows = 0;
    int r = 0;

    PGresult *res =
        PQexec(self->conn, "COPY signals (agent_id, seq, name, value, unit, labels, ts, state,"
                           " command_id) FROM STDIN (FORMAT binary)");
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        r = store_failed(self, res, "ingest COPY");
        PQclear(res);
        return r;
    }
    PQclear(res);

    const char *abort_reason = NULL;
    data->len = 0;
    store_buf_put(data, copy_signature, sizeof(copy_signature) - 1);
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
        store_buf_put(data, trailer, sizeof(trailer));
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
            r = store_failed(self, res, "ingest COPY");
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

/* What the INSERT's RETURNING says about a batch: the messages that were not stored before. */
struct fresh_marks {
    Vigil__Envelope *const *msgs;
    const struct msg_key *keys; /* sorted by msg_key_cmp */
    size_t n;
    bool *fresh; /* per message: new in this batch */
    size_t inserted;
    bool any_signals, any_evidence, any_reports;
};

/* One (agent_id, seq) the INSERT returned: that message is fresh. */
static int mark_fresh(const PGresult *res, int row, void *userdata)
{
    struct fresh_marks *marks = userdata;
    int64_t seq;
    const struct msg_key *k = NULL;
    if (store_parse_i64(PQgetvalue(res, row, 1), &seq) && seq > 0)
        k = msg_key_find(marks->keys, marks->n, PQgetvalue(res, row, 0), (uint64_t)seq);
    if (!k) {
        vg_log(VG_LOG_WARN, "store: ingest INSERT returned an unknown message agent=%.40s",
               PQgetvalue(res, row, 0));
        return -EPROTO;
    }
    marks->fresh[k->index] = true;
    marks->inserted++;
    const Vigil__Envelope *m = marks->msgs[k->index];
    if (m->body_case == VIGIL__ENVELOPE__BODY_SIGNALS && m->signals && m->signals->n_signals > 0)
        marks->any_signals = true;
    if (m->body_case == VIGIL__ENVELOPE__BODY_EVIDENCE)
        marks->any_evidence = true;
    if (m->body_case == VIGIL__ENVELOPE__BODY_COMMAND_REPORT)
        marks->any_reports = true;
    return 0;
}

int store_ingest(store_t *self, Vigil__Envelope *const *msgs, size_t n, size_t *ret_new,
                 struct store_evidence_events *ret_events)
{
    return store_ingest_marked(self, msgs, n, NULL, ret_new, ret_events);
}

int store_ingest_marked(store_t *self, Vigil__Envelope *const *msgs, size_t n, bool *ret_fresh,
                        size_t *ret_new, struct store_evidence_events *ret_events)
{
    struct store_evidence_events events = {0};
    struct store_followups followups = {0};
    struct store_buf arrays[4];
    struct msg_key *keys = NULL;
    bool *fresh = NULL;
    size_t signal_rows = 0;
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
    r = store_ensure_conn(self);
    if (r < 0)
        goto out;
    r = store_exec(self, "ingest BEGIN", "BEGIN");
    if (r < 0)
        goto err_rollback;

    const char *params[4] = {arrays[0].data, arrays[1].data, arrays[2].data, arrays[3].data};
    struct fresh_marks marks = {.msgs = msgs, .keys = keys, .n = n, .fresh = fresh};
    r = store_query_rows(self, "ingest INSERT",
                         "INSERT INTO agent_messages (agent_id, seq, kind, sent_at)"
                         " SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[],"
                         " $4::timestamptz[])"
                         " ON CONFLICT DO NOTHING RETURNING agent_id, seq",
                         4, params, mark_fresh, &marks);
    if (r < 0)
        goto err_rollback;

    if (marks.any_signals) {
        r = copy_signals(self, msgs, n, fresh, &signal_rows);
        if (r < 0)
            goto err_rollback;
    }
    if (marks.any_evidence) {
        r = store_evidence_ingest(self, msgs, n, fresh, &events);
        if (r < 0)
            goto err_rollback;
    }
    if (marks.any_reports) {
        r = store_commands_ingest(self, msgs, n, fresh, &followups);
        if (r < 0)
            goto err_rollback;
    }

    PGresult *res = PQexec(self->conn, "COMMIT");
    /* COMMIT of a transaction that failed answers "ROLLBACK": that is not a success. */
    if (PQresultStatus(res) != PGRES_COMMAND_OK || strcmp(PQcmdStatus(res), "COMMIT") != 0) {
        r = store_failed(self, res, "ingest COMMIT");
        if (r == 0)
            r = -EIO;
        PQclear(res);
        goto err_rollback;
    }
    PQclear(res);
    vg_log(VG_LOG_DEBUG, "store: ingest messages=%zu new=%zu signals=%zu ms=%" PRId64, n,
           marks.inserted, signal_rows, vg_mono_ms() - started);
    if (ret_new)
        *ret_new = marks.inserted;
    if (ret_fresh)
        memcpy(ret_fresh, fresh, n * sizeof(*fresh));
    r = 0;
    store_followups_append(&self->followups, &followups);
    if (ret_events) {
        for (size_t i = 0; i < events.n; i++) {
            struct store_evidence_event *e = store_evidence_event_add(
                ret_events, events.items[i].outcome, events.items[i].reason,
                events.items[i].agent_id, events.items[i].kind, events.items[i].collection_id,
                events.items[i].artifact);
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
    store_rollback_if_alive(self);
    if (!self->conn || PQstatus(self->conn) != CONNECTION_OK)
        r = -EIO;
out:
    for (int c = 0; c < 4; c++)
        store_buf_free(&arrays[c]);
    free(keys);
    free(fresh);
    store_evidence_events_clear(&events);
    store_followups_clear(&followups);
    return r;
}
