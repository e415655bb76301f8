/* The CRI container log format: the contract is in crilog.h. */
#include "crilog.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "timeutil.h"

#define CAP_MAX (64u * 1024 * 1024)

/* ---- One record ------------------------------------------------------------------------- */

static bool digits(const char *s, size_t n, int *ret)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *ret = v;
    return true;
}

static int days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* "2024-05-01T12:00:00.123456789Z" or "...+02:00": the whole of [s, s + n). */
static bool parse_time(const char *s, size_t n, int64_t *ret_ns)
{
    int y, mo, d, h, mi, sec;
    if (n < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
        s[16] != ':' || !digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
        !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &sec))
        return false;
    /* Years whose nanoseconds fit in 64 bits (1678..2261): a runtime writes the present. */
    if (y < 1678 || y > 2261 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 ||
        mi > 59 || sec > 60)
        return false;
    size_t i = 19;
    int64_t frac = 0;
    if (s[i] == '.') {
        size_t start = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9' && i - start < 9)
            frac = frac * 10 + (s[i++] - '0');
        if (i == start || (i < n && s[i] >= '0' && s[i] <= '9'))
            return false; /* no digit, or more than nine */
        for (size_t k = i - start; k < 9; k++)
            frac *= 10;
    }
    int offset_s = 0;
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i + 6 == n && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
        int oh, om;
        if (!digits(s + i + 1, 2, &oh) || !digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
            return false;
        offset_s = (oh * 60 + om) * 60 * (s[i] == '-' ? -1 : 1);
        i += 6;
    } else {
        return false;
    }
    if (i != n)
        return false;
    int64_t secs = vg_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset_s;
    *ret_ns = secs * 1000000000LL + frac;
    return true;
}

int crilog_parse(const char *line, size_t len, struct crilog_record *ret)
{
    if (!line || !ret)
        return -EINVAL;
    const char *sp1 = memchr(line, ' ', len < 64 ? len : 64); /* times are ~35 bytes */
    if (!sp1)
        return -EINVAL;
    struct crilog_record rec;
    if (!parse_time(line, (size_t)(sp1 - line), &rec.time_ns))
        return -EINVAL;
    const char *p = sp1 + 1, *end = line + len;
    if (end - p >= 7 && memcmp(p, "stdout ", 7) == 0)
        rec.stream = CRILOG_STDOUT;
    else if (end - p >= 7 && memcmp(p, "stderr ", 7) == 0)
        rec.stream = CRILOG_STDERR;
    else
        return -EINVAL;
    p += 7;
    if (p == end || (*p != 'P' && *p != 'F'))
        return -EINVAL;
    rec.partial = *p == 'P';
    p++;
    if (p < end && *p == ':') { /* further tags: the first one alone says partial or full */
        while (p < end && *p != ' ')
            p++;
    }
    if (p < end && *p != ' ')
        return -EINVAL; /* "Full", "PF": not a tag */
    if (p < end)
        p++;
    rec.msg = p;
    rec.msg_len = (size_t)(end - p);
    *ret = rec;
    return 0;
}

/* ---- Joining ---------------------------------------------------------------------------- */

int crilog_joiner_init(struct crilog_joiner *j, size_t cap)
{
    if (!j || cap == 0 || cap > CAP_MAX)
        return -EINVAL;
    memset(j, 0, sizeof(*j));
    j->cap = cap;
    return 0;
}

void crilog_joiner_free(struct crilog_joiner *j)
{
    if (!j)
        return;
    for (int s = 0; s < 2; s++) {
        free(j->stream[s].buf);
        j->stream[s].buf = NULL;
        j->stream[s].len = 0;
        j->stream[s].active = false;
    }
}

static void append(struct crilog_joiner *j, struct crilog_pending *p, const char *msg, size_t len,
                   bool truncated)
{
    size_t room = j->cap - p->len;
    size_t take = len < room ? len : room;
    memcpy(p->buf + p->len, msg, take);
    p->len += take;
    p->truncated |= truncated || take < len;
}

static void deliver(struct crilog_pending *p, crilog_message_fn *cb, void *userdata)
{
    if (cb)
        cb(p->buf, p->len, p->truncated, userdata);
    p->len = 0;
    p->active = false;
    p->truncated = false;
}

int crilog_joiner_add(struct crilog_joiner *j, const struct crilog_record *rec, bool truncated,
                      crilog_message_fn *cb, void *userdata)
{
    if (!j || !rec || (rec->stream != CRILOG_STDOUT && rec->stream != CRILOG_STDERR))
        return -EINVAL;
    struct crilog_pending *p = &j->stream[rec->stream];
    if (!p->active && !rec->partial) {
        /* The common case: a whole line in one record, delivered without a copy. */
        size_t len = rec->msg_len < j->cap ? rec->msg_len : j->cap;
        if (cb)
            cb(rec->msg, len, truncated || len < rec->msg_len, userdata);
        return 0;
    }
    if (!p->buf) {
        p->buf = malloc(j->cap);
        if (!p->buf) {
            size_t len = rec->msg_len < j->cap ? rec->msg_len : j->cap;
            if (cb)
                cb(rec->msg, len, true, userdata);
            return -ENOMEM;
        }
    }
    p->active = true;
    append(j, p, rec->msg, rec->msg_len, truncated);
    if (!rec->partial)
        deliver(p, cb, userdata);
    return 0;
}

void crilog_joiner_flush(struct crilog_joiner *j, crilog_message_fn *cb, void *userdata)
{
    if (!j)
        return;
    for (int s = 0; s < 2; s++) {
        if (j->stream[s].active)
            deliver(&j->stream[s], cb, userdata);
    }
}
