/*
 * Retention and legal hold on the maintenance connection (store_retention.h). The decisions
 * and their audit rows are in 026_retention.sql's functions, each one transaction; this file
 * calls them step by step, under a lock timeout, and adds up what they did.
 */
#include "store_retention.h"
#include "store_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "timeutil.h"
#include "utf8.h"

#define DAY_MS (24 * 3600 * INT64_C(1000))
/* Default-partition days made into partitions per pass, and partitions dropped per pass: a
 * first pass after a long outage catches up over a few passes, never in one long burst. */
#define DEFAULT_DAYS_PER_PASS 32
#define DROPS_PER_PASS 64
#define EVIDENCE_BATCH 50

store_t *store_connect_maintenance(const store_t *main)
{
    return store_connect(store_owner_conninfo(main), "vigil-coordinator-maintenance");
}

/* "14d", "36h", "90m" or "45s": the policy in audit rows and logs. */
static void duration_text(int64_t ms, char *buf, size_t len)
{
    if (ms % DAY_MS == 0)
        snprintf(buf, len, "%" PRId64 "d", ms / DAY_MS);
    else if (ms % (3600 * 1000) == 0)
        snprintf(buf, len, "%" PRId64 "h", ms / (3600 * 1000));
    else if (ms % 60000 == 0)
        snprintf(buf, len, "%" PRId64 "m", ms / 60000);
    else
        snprintf(buf, len, "%.3gs", (double)ms / 1000.0);
}

/* A session ready for a pass: connected, with the lock timeout. */
static int begin_pass(store_t *self)
{
    int r = store_ensure_conn(self);
    if (r == 0)
        r = store_exec(self, "retention settings",
                       "SET lock_timeout = '" STORE_RETENTION_LOCK_TIMEOUT "'");
    return r;
}

static void ms_param(char *buf, size_t len, int64_t ms)
{
    snprintf(buf, len, "%.3f", (double)ms / 1000.0);
}

/* ---- signals ---- */

static int read_moved(const PGresult *res, int row, void *userdata)
{
    int64_t v;
    int *created = userdata;
    if (!PQgetisnull(res, row, 0) && store_parse_i64(PQgetvalue(res, row, 0), &v)) {
        created[0]++;
        created[1] += (int)(v > INT32_MAX ? INT32_MAX : v);
    }
    return 0;
}

/* day: "YYYY-MM-DD" (UTC). */
static int make_partition(store_t *self, const char *day, struct store_retention_report *rep)
{
    int got[2] = {0, 0};
    const char *params[] = {day};
    int r =
        store_query_rows(self, "retention: create a signals partition",
                         "SELECT vigil_signals_partition($1::date)", 1, params, read_moved, got);
    if (r < 0) {
        rep->failures++;
        return r;
    }
    if (got[0]) {
        rep->partitions_created++;
        rep->default_rows_moved += (uint64_t)got[1];
        vg_log(VG_LOG_INFO, "retention: signals partition created day=%s moved_from_default=%d",
               day, got[1]);
    }
    return 0;
}

struct days {
    char day[DEFAULT_DAYS_PER_PASS][16];
    size_t n;
};

static int read_day(const PGresult *res, int row, void *userdata)
{
    struct days *d = userdata;
    if (d->n < DEFAULT_DAYS_PER_PASS)
        snprintf(d->day[d->n++], sizeof(d->day[0]), "%s", PQgetvalue(res, row, 0));
    return 0;
}

struct dropped {
    char part[64], day[16];
    int64_t rows, bytes;
    bool any;
};

static int read_dropped(const PGresult *res, int row, void *userdata)
{
    struct dropped *d = userdata;
    d->any = true;
    snprintf(d->part, sizeof(d->part), "%s", PQgetvalue(res, row, 0));
    snprintf(d->day, sizeof(d->day), "%s", PQgetvalue(res, row, 1));
    if (!store_parse_i64(PQgetvalue(res, row, 2), &d->rows))
        d->rows = 0;
    if (!store_parse_i64(PQgetvalue(res, row, 3), &d->bytes))
        d->bytes = 0;
    return 0;
}

static int read_i64s(const PGresult *res, int row, void *userdata)
{
    int64_t *out = userdata;
    for (int c = 0; c < PQnfields(res) && c < 3; c++)
        if (PQgetisnull(res, row, c) || !store_parse_i64(PQgetvalue(res, row, c), &out[c]))
            out[c] = 0;
    return 0;
}

int store_retention_signals(store_t *self, const struct store_retention_policy *policy,
                            int64_t now_ms, struct store_retention_report *rep)
{
    char cutoff[32], ahead_end[32], why[96], keep[24], day[16];
    int r = begin_pass(self);
    if (r < 0)
        return r;
    int64_t keep_ms = policy->signals_ms < DAY_MS ? DAY_MS : policy->signals_ms;
    duration_text(keep_ms, keep, sizeof(keep));
    snprintf(why, sizeof(why), "older than retention.signals (%s)", keep);
    ms_param(cutoff, sizeof(cutoff), now_ms - keep_ms);
    ms_param(ahead_end, sizeof(ahead_end), now_ms + (int64_t)(policy->ahead_days + 1) * DAY_MS);

    /* 1. Today's partition and those ahead (days of now_ms, UTC). */
    for (int d = 0; d <= policy->ahead_days; d++) {
        vg_date_text(now_ms + (int64_t)d * DAY_MS, day, sizeof(day));
        r = make_partition(self, day, rep);
        if (r < 0 && PQstatus(self->conn) != CONNECTION_OK)
            return r;
        if (r < 0)
            break; /* the same lock would be waited for again: next pass */
    }

    /* 2. Days the default partition holds rows of that are kept: into their partitions. */
    struct days days = {.n = 0};
    const char *window[] = {cutoff, ahead_end};
    r = store_query_rows(self, "retention: default partition days",
                         "SELECT DISTINCT (ts AT TIME ZONE 'UTC')::date FROM signals_default"
                         " WHERE ts >= to_timestamp($1::double precision)"
                         "   AND ts < to_timestamp($2::double precision) ORDER BY 1 LIMIT 32",
                         2, window, read_day, &days);
    if (r < 0)
        rep->failures++;
    for (size_t i = 0; i < days.n; i++)
        if (make_partition(self, days.day[i], rep) < 0)
            break;

    /* 3. Whole days older than retention: their partitions dropped, one per transaction. */
    const char *drop_params[] = {cutoff, STORE_RETENTION_ACTOR, why};
    for (int i = 0; i < DROPS_PER_PASS; i++) {
        struct dropped d = {.any = false};
        r = store_query_rows(self, "retention: drop a signals partition",
                             "SELECT part, day, rows, bytes FROM vigil_signals_drop_expired("
                             "to_timestamp($1::double precision), $2, $3)",
                             3, drop_params, read_dropped, &d);
        if (r < 0) {
            rep->failures++;
            break;
        }
        if (!d.any)
            break;
        rep->partitions_dropped++;
        rep->signal_rows_dropped += (uint64_t)d.rows;
        rep->signal_bytes_dropped += (uint64_t)d.bytes;
        vg_log(VG_LOG_INFO,
               "retention: signals partition dropped partition=%s day=%s rows=%" PRId64
               " bytes=%" PRId64 " retention=%s",
               d.part, d.day, d.rows, d.bytes, keep);
    }

    /* 4. The default partition's rows older than retention. */
    int64_t deleted[3] = {0, 0, 0};
    r = store_query_rows(self, "retention: expire the default partition",
                         "SELECT rows FROM vigil_signals_default_expire("
                         "to_timestamp($1::double precision), $2, $3)",
                         3, drop_params, read_i64s, deleted);
    if (r < 0) {
        rep->failures++;
    } else if (deleted[0] > 0) {
        rep->default_rows_deleted += (uint64_t)deleted[0];
        vg_log(VG_LOG_INFO,
               "retention: signals deleted from the default partition rows=%" PRId64
               " retention=%s",
               deleted[0], keep);
    }

    /* 5. What the default partition still holds: days too far ahead to have a partition. */
    int64_t left[3] = {0, 0, 0};
    r = store_query_rows(
        self, "retention: default partition contents",
        "SELECT count(*), coalesce((extract(epoch FROM min(ts)) * 1000)::bigint, 0),"
        " coalesce((extract(epoch FROM max(ts)) * 1000)::bigint, 0)"
        " FROM signals_default",
        0, NULL, read_i64s, left);
    if (r < 0) {
        rep->failures++;
    } else {
        rep->default_rows_left = (uint64_t)(left[0] > 0 ? left[0] : 0);
        rep->default_oldest_ms = left[1];
        rep->default_newest_ms = left[2];
    }
    return 0;
}

/* ---- evidence ---- */

struct removed {
    size_t n;
    struct store_retention_report *rep;
};

static int read_removed(const PGresult *res, int row, void *userdata)
{
    struct removed *rm = userdata;
    int64_t bytes = 0;
    if (!store_parse_i64(PQgetvalue(res, row, 3), &bytes))
        bytes = 0;
    rm->n++;
    rm->rep->evidence_removed++;
    rm->rep->evidence_bytes_removed += (uint64_t)(bytes > 0 ? bytes : 0);
    vg_log(VG_LOG_INFO,
           "retention: evidence content removed evidence=%s incident=%s chunks=%s bytes=%s",
           PQgetvalue(res, row, 0), PQgetisnull(res, row, 1) ? "none" : PQgetvalue(res, row, 1),
           PQgetvalue(res, row, 2), PQgetvalue(res, row, 3));
    return 0;
}

int store_retention_evidence(store_t *self, const struct store_retention_policy *policy,
                             int64_t now_ms, struct store_retention_report *rep)
{
    char cutoff[32], why[96], keep[24], batch[16];
    if (policy->evidence_ms <= 0)
        return 0;
    int r = begin_pass(self);
    if (r < 0)
        return r;
    duration_text(policy->evidence_ms, keep, sizeof(keep));
    snprintf(why, sizeof(why), "older than retention.evidence (%s)", keep);
    ms_param(cutoff, sizeof(cutoff), now_ms - policy->evidence_ms);
    uint32_t left = policy->evidence_max ? policy->evidence_max : UINT32_MAX;
    while (left > 0) {
        uint32_t n = left < EVIDENCE_BATCH ? left : EVIDENCE_BATCH;
        snprintf(batch, sizeof(batch), "%" PRIu32, n);
        const char *params[] = {cutoff, STORE_RETENTION_ACTOR, why, batch};
        struct removed rm = {.n = 0, .rep = rep};
        r = store_query_rows(self, "retention: expire evidence",
                             "SELECT evidence_id, incident_id, chunks, bytes FROM"
                             " vigil_evidence_expire(to_timestamp($1::double precision), $2, $3,"
                             " $4::int)",
                             4, params, read_removed, &rm);
        if (r < 0) {
            rep->failures++;
            return r;
        }
        if (rm.n < n)
            break;
        left -= n;
    }
    return 0;
}

static int read_removal(const PGresult *res, int row, void *userdata)
{
    int64_t *out = userdata;
    out[0] = 1;
    if (!store_parse_i64(PQgetvalue(res, row, 0), &out[1]))
        out[1] = 0;
    if (!store_parse_i64(PQgetvalue(res, row, 1), &out[2]))
        out[2] = 0;
    return 1;
}

int store_evidence_removal(store_t *self, uint64_t id, int64_t *ret_removed_at_ms,
                           uint64_t *ret_audit_id)
{
    char text[24];
    int64_t found[3] = {0, 0, 0};
    if (!self || id == 0 || id > INT64_MAX || !ret_removed_at_ms || !ret_audit_id)
        return -EINVAL;
    snprintf(text, sizeof(text), "%" PRIu64, id);
    const char *params[] = {text};
    int r = store_ensure_conn(self);
    if (r == 0)
        r = store_query_rows(self, "evidence removal",
                             "SELECT (extract(epoch FROM removed_at) * 1000)::bigint, audit_id"
                             " FROM evidence_removals WHERE evidence_id = $1::bigint",
                             1, params, read_removal, found);
    if (r < 0)
        return r;
    if (!found[0])
        return -ENOENT;
    *ret_removed_at_ms = found[1];
    *ret_audit_id = found[2] > 0 ? (uint64_t)found[2] : 0;
    return 0;
}

/* ---- legal hold ---- */

static bool reason_ok(const char *reason)
{
    return strlen(reason) <= STORE_HOLD_REASON_MAX && vg_utf8_valid(reason);
}

static void hold_from_row(const PGresult *res, int row, int col, struct store_hold *h)
{
    /* incident_id, held, actor, at (ms), reason from column col on. */
    int64_t v = 0;
    if (store_parse_i64(PQgetvalue(res, row, col), &v) && v > 0)
        h->incident_id = (uint64_t)v;
    h->held = PQgetvalue(res, row, col + 1)[0] == 't';
    snprintf(h->actor, sizeof(h->actor), "%s", PQgetvalue(res, row, col + 2));
    if (!store_parse_i64(PQgetvalue(res, row, col + 3), &h->at_ms))
        h->at_ms = 0;
    snprintf(h->reason, sizeof(h->reason), "%s", PQgetvalue(res, row, col + 4));
}

struct hold_set {
    char outcome[16];
    struct store_hold hold;
};

static int read_hold_set(const PGresult *res, int row, void *userdata)
{
    struct hold_set *s = userdata;
    snprintf(s->outcome, sizeof(s->outcome), "%s", PQgetvalue(res, row, 0));
    if (!PQgetisnull(res, row, 1))
        hold_from_row(res, row, 1, &s->hold);
    return 0;
}

int store_hold_set(store_t *self, uint64_t incident_id, bool held, const char *actor,
                   const char *name, const char *reason, struct store_hold *ret)
{
    char id[24];
    if (!self || incident_id == 0 || incident_id > INT64_MAX || !actor || !name)
        return -EINVAL;
    reason = reason ? reason : "";
    if (!reason_ok(reason) || !vg_utf8_valid(actor) || !vg_utf8_valid(name))
        return -EINVAL;
    snprintf(id, sizeof(id), "%" PRIu64, incident_id);
    const char *params[] = {id, held ? "t" : "f", actor, name, reason};
    struct hold_set s = {.outcome = ""};
    int r = store_ensure_conn(self);
    if (r == 0)
        r = store_query_rows(self, held ? "place a hold" : "release a hold",
                             /* already or done: the state asked for is the state now */
                             "SELECT outcome, $1::bigint, $2::boolean, actor,"
                             " (extract(epoch FROM at) * 1000)::bigint, reason"
                             " FROM vigil_hold_set($1::bigint, $2::boolean, $3, $4, $5) s",
                             5, params, read_hold_set, &s);
    if (r < 0)
        return r;
    if (strcmp(s.outcome, "unknown") == 0)
        return -ENOENT;
    if (ret)
        *ret = s.hold;
    if (strcmp(s.outcome, "already") == 0)
        return -EALREADY;
    return strcmp(s.outcome, "done") == 0 ? 0 : -EPROTO;
}

struct hold_list {
    struct store_hold *items;
    size_t n, cap;
    bool oom;
};

static int read_hold(const PGresult *res, int row, void *userdata)
{
    struct hold_list *l = userdata;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct store_hold *items = realloc(l->items, cap * sizeof(*items));
        if (!items) {
            l->oom = true;
            return -ENOMEM;
        }
        l->items = items;
        l->cap = cap;
    }
    struct store_hold *h = &l->items[l->n++];
    memset(h, 0, sizeof(*h));
    hold_from_row(res, row, 0, h);
    snprintf(h->title, sizeof(h->title), "%s", PQgetvalue(res, row, 5));
    snprintf(h->state, sizeof(h->state), "%s", PQgetvalue(res, row, 6));
    h->artifacts = store_parse_u64_or_zero(PQgetvalue(res, row, 7));
    h->bytes = store_parse_u64_or_zero(PQgetvalue(res, row, 8));
    return 0;
}

int store_holds_list(store_t *self, bool all, uint64_t incident_id, size_t max,
                     struct store_hold **ret, size_t *ret_n)
{
    char id[24], limit[24];
    if (!self || !ret || !ret_n || incident_id > INT64_MAX)
        return -EINVAL;
    snprintf(id, sizeof(id), "%" PRIu64, incident_id);
    snprintf(limit, sizeof(limit), "%zu", max);
    const char *params[] = {all ? "t" : "f", id, limit};
    struct hold_list l = {.items = NULL};
    int r = store_ensure_conn(self);
    if (r == 0)
        r = store_query_rows(
            self, "list holds",
            "SELECT h.incident_id, h.held, h.actor, (extract(epoch FROM h.at) * 1000)::bigint,"
            "  h.reason, i.title, i.state,"
            "  (SELECT count(*) FROM evidence e JOIN evidence_collections c"
            "     ON c.id = e.collection_id LEFT JOIN command_requests q ON q.id = c.command_id"
            "    WHERE coalesce(c.incident_id, nullif(q.incident_id, 0)) = h.incident_id"
            "      AND NOT EXISTS (SELECT 1 FROM evidence_removals x WHERE x.evidence_id = e.id)),"
            "  (SELECT coalesce(sum(e.size), 0) FROM evidence e JOIN evidence_collections c"
            "     ON c.id = e.collection_id LEFT JOIN command_requests q ON q.id = c.command_id"
            "    WHERE coalesce(c.incident_id, nullif(q.incident_id, 0)) = h.incident_id"
            "      AND NOT EXISTS (SELECT 1 FROM evidence_removals x WHERE x.evidence_id = e.id))"
            " FROM (SELECT DISTINCT ON (incident_id) * FROM holds"
            "        WHERE $2::bigint = 0 OR incident_id = $2::bigint"
            "        ORDER BY incident_id, id DESC) h"
            " JOIN incidents i ON i.id = h.incident_id"
            " WHERE h.held OR $1::boolean"
            " ORDER BY h.id DESC LIMIT $3::bigint",
            3, params, read_hold, &l);
    if (r < 0) {
        free(l.items);
        return l.oom ? -ENOMEM : r;
    }
    *ret = l.items;
    *ret_n = l.n;
    return 0;
}
