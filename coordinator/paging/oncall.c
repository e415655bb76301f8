/* Who is on call at an instant: rotation and overrides (see oncall.h). */
#include "oncall.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* 2200-01-01T00:00:00Z: past it (and before 1970) nothing is computed. */
#define AT_MAX_MS (7258118400LL * 1000)
#define TZ_UNSET ":/etc/localtime"

/* ---- the C library's time zone, switched for one computation ---- */

int oncall_tz_enter(const char *zone, struct oncall_tz_saved *sv)
{
    char value[sizeof(PAGING_ZONEINFO_DIR) + 160];
    const char *old = getenv("TZ");

    if (!paging_timezone_valid(zone))
        return -EINVAL;
    sv->old = NULL;
    if (old && !(sv->old = strdup(old)))
        return -ENOMEM;
    snprintf(value, sizeof(value), ":%s/%s", PAGING_ZONEINFO_DIR, zone);
    if (setenv("TZ", value, 1) != 0) {
        free(sv->old);
        sv->old = NULL;
        return -ENOMEM;
    }
    tzset();
    return 0;
}

void oncall_tz_leave(struct oncall_tz_saved *sv)
{
    setenv("TZ", sv->old ? sv->old : TZ_UNSET, 1);
    tzset();
    free(sv->old);
    sv->old = NULL;
}

/* ---- rotation ---- */

static bool prepared(const struct paging_schedule *s)
{
    return s && s->start_year >= 1970 && s->start_month >= 1 && s->start_month <= 12 &&
           s->start_day >= 1 && s->users.count > 0;
}

/* Handover k with TZ already set. */
static int handover(const struct paging_schedule *s, int64_t k, int64_t *ret_ms)
{
    struct tm tm;

    if (k < -100000 || k > 100000)
        return -ERANGE;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = s->start_year - 1900;
    tm.tm_mon = s->start_month - 1;
    tm.tm_mday = s->start_day + (int)(7 * k);
    tm.tm_hour = s->handover_hour;
    tm.tm_min = s->handover_minute;
    tm.tm_isdst = -1; /* the zone's rules decide */
    time_t t = mktime(&tm);
    if (t == (time_t)-1)
        return -ERANGE;
    *ret_ms = (int64_t)t * 1000;
    return 0;
}

/* The shift (handover index) that contains t, with t >= handover 0. */
static int shift_of(const struct paging_schedule *s, int64_t h0, int64_t t, int64_t *ret_k)
{
    int64_t k = (t - h0) / ONCALL_WEEK_MS, h;
    int r;

    /* A week is 168 h +- 1: the estimate is off by at most one shift either way. */
    for (;;) {
        if ((r = handover(s, k + 1, &h)) < 0)
            return r;
        if (h > t)
            break;
        k++;
    }
    for (;;) {
        if ((r = handover(s, k, &h)) < 0)
            return r;
        if (h <= t || k == 0)
            break;
        k--;
    }
    *ret_k = k;
    return 0;
}

/* ---- who, at an instant ---- */

enum ident_kind { IDENT_NOBODY, IDENT_ROTATION, IDENT_OVERRIDE };
struct ident {
    enum ident_kind kind;
    int64_t k;  /* IDENT_ROTATION */
    size_t ovr; /* IDENT_OVERRIDE: index into the overrides */
};

struct ctx {
    const struct paging_schedule *s;
    const struct oncall_override *ovr;
    size_t novr;
    int64_t h0;
};

static bool mine(const struct ctx *c, size_t i)
{
    return strcmp(c->ovr[i].schedule, c->s->name) == 0 && c->ovr[i].to_ms > c->ovr[i].from_ms;
}

static int ident_at(const struct ctx *c, int64_t t, struct ident *ret)
{
    bool found = false;
    size_t best = 0;

    for (size_t i = 0; i < c->novr; i++) {
        if (!mine(c, i) || t < c->ovr[i].from_ms || t >= c->ovr[i].to_ms)
            continue;
        if (!found || c->ovr[i].id >= c->ovr[best].id) {
            best = i;
            found = true;
        }
    }
    if (found) {
        *ret = (struct ident){.kind = IDENT_OVERRIDE, .ovr = best};
        return 0;
    }
    if (t < c->h0) {
        *ret = (struct ident){.kind = IDENT_NOBODY};
        return 0;
    }
    ret->kind = IDENT_ROTATION;
    ret->ovr = 0;
    return shift_of(c->s, c->h0, t, &ret->k);
}

static bool ident_eq(const struct ident *a, const struct ident *b)
{
    if (a->kind != b->kind)
        return false;
    if (a->kind == IDENT_ROTATION)
        return a->k == b->k;
    if (a->kind == IDENT_OVERRIDE)
        return a->ovr == b->ovr;
    return true;
}

static const char *ident_user(const struct ctx *c, const struct ident *id)
{
    switch (id->kind) {
    case IDENT_ROTATION: {
        int64_t n = (int64_t)c->s->users.count;
        return c->s->users.items[((id->k % n) + n) % n];
    }
    case IDENT_OVERRIDE:
        return c->ovr[id->ovr].user;
    case IDENT_NOBODY:
        break;
    }
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/*
 * The assignment changes only at override edges and rotation handovers. until: the first such
 * instant after at where the assignment differs; since: the last one at or before at where it
 * differs from the instant before.
 */
static int compute(const struct ctx *c, int64_t at, struct oncall_result *ret)
{
    struct ident now, other;
    int64_t *edges = NULL, h;
    size_t n = 0;
    int r = ident_at(c, at, &now);

    if (r < 0)
        return r;
    edges = malloc((2 * c->novr + 2) * sizeof(*edges));
    if (!edges)
        return -ENOMEM;
    for (size_t i = 0; i < c->novr; i++) {
        if (!mine(c, i))
            continue;
        edges[n++] = c->ovr[i].from_ms;
        edges[n++] = c->ovr[i].to_ms;
    }
    if (at < c->h0) {
        edges[n++] = c->h0;
    } else {
        int64_t k;
        if ((r = shift_of(c->s, c->h0, at, &k)) < 0 || (r = handover(c->s, k, &h)) < 0)
            goto out;
        edges[n++] = h;
        if ((r = handover(c->s, k + 1, &h)) < 0)
            goto out;
        edges[n++] = h;
    }
    qsort(edges, n, sizeof(*edges), cmp_i64);

    ret->since_ms = INT64_MIN;
    for (size_t i = n; i-- > 0;) {
        if (edges[i] > at)
            continue;
        if ((r = ident_at(c, edges[i] - 1, &other)) < 0)
            goto out;
        if (!ident_eq(&other, &now)) {
            ret->since_ms = edges[i];
            break;
        }
    }
    ret->until_ms = INT64_MAX;
    for (size_t i = 0; i < n; i++) {
        if (edges[i] <= at)
            continue;
        if ((r = ident_at(c, edges[i], &other)) < 0)
            goto out;
        if (!ident_eq(&other, &now)) {
            ret->until_ms = edges[i];
            break;
        }
    }
    /* There is always a next handover among the edges, so until is set; be safe anyway. */
    if (ret->until_ms == INT64_MAX) {
        r = -ERANGE;
        goto out;
    }
    ret->user = ident_user(c, &now);
    ret->override = now.kind == IDENT_OVERRIDE && c->ovr;
    ret->override_id = ret->override ? c->ovr[now.ovr].id : 0;
    ret->next_user = ident_user(c, &other);
    ret->next_override = other.kind == IDENT_OVERRIDE;
    r = 0;
out:
    free(edges);
    return r;
}

int oncall_who(const struct paging_schedule *s, const struct oncall_override *ovr, size_t novr,
               int64_t at_ms, struct oncall_result *ret)
{
    struct oncall_tz_saved sv;
    struct oncall_result res;
    struct ctx c = {.s = s, .ovr = ovr, .novr = ovr ? novr : 0};
    int r;

    if (!prepared(s) || !ret || at_ms < 0 || at_ms > AT_MAX_MS)
        return -EINVAL;
    if ((r = oncall_tz_enter(s->timezone, &sv)) < 0)
        return r;
    memset(&res, 0, sizeof(res));
    r = handover(s, 0, &c.h0);
    if (r == 0)
        r = compute(&c, at_ms, &res);
    oncall_tz_leave(&sv);
    if (r < 0)
        return r == -ERANGE ? -EINVAL : r;
    *ret = res;
    return 0;
}

int oncall_handover(const struct paging_schedule *s, int64_t k, int64_t *ret_ms)
{
    struct oncall_tz_saved sv;
    int64_t ms = 0;
    int r;

    if (!prepared(s) || !ret_ms)
        return -EINVAL;
    if ((r = oncall_tz_enter(s->timezone, &sv)) < 0)
        return r;
    r = handover(s, k, &ms);
    oncall_tz_leave(&sv);
    if (r < 0)
        return -EINVAL;
    *ret_ms = ms;
    return 0;
}
