/* Business hours: the next instant a window is open (see hours.h). */
#include "hours.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "oncall.h"

#define AT_MAX_MS (7258118400LL * 1000) /* 2200-01-01T00:00:00Z */

static bool holiday(const struct paging_hours *h, const struct tm *day)
{
    char date[48];
    snprintf(date, sizeof(date), "%04d-%02d-%02d", day->tm_year + 1900, day->tm_mon + 1,
             day->tm_mday);
    for (size_t i = 0; i < h->holidays.count; i++)
        if (strcmp(h->holidays.items[i], date) == 0)
            return true;
    return false;
}

/* The instant of local minute `minute` (0 .. 1440) on the local date of day, TZ set. */
static int local_instant(const struct tm *day, int minute, int64_t *ret_ms)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = day->tm_year;
    tm.tm_mon = day->tm_mon;
    tm.tm_mday = day->tm_mday;
    tm.tm_hour = minute / 60; /* 24:00 is normalised to the next day's midnight */
    tm.tm_min = minute % 60;
    tm.tm_isdst = -1; /* the zone's rules decide */
    time_t t = mktime(&tm);
    if (t == (time_t)-1)
        return -ERANGE;
    *ret_ms = (int64_t)t * 1000;
    return 0;
}

/* With TZ set: the search itself. */
static int next_open(const struct paging_hours *h, int64_t at_ms, int64_t *ret_ms)
{
    time_t at = (time_t)(at_ms / 1000);
    struct tm now;
    if (!localtime_r(&at, &now))
        return -EINVAL;
    for (int k = 0; k <= HOURS_LOOKAHEAD_DAYS; k++) {
        /* Noon of the k-th local day: never inside a daylight-saving change. */
        struct tm day;
        memset(&day, 0, sizeof(day));
        day.tm_year = now.tm_year;
        day.tm_mon = now.tm_mon;
        day.tm_mday = now.tm_mday + k;
        day.tm_hour = 12;
        day.tm_isdst = -1;
        if (mktime(&day) == (time_t)-1)
            return -ERANGE;
        if (!((h->day_mask >> day.tm_wday) & 1u) || holiday(h, &day))
            continue;
        int64_t start, end;
        int r = local_instant(&day, h->start_minute, &start);
        if (r == 0)
            r = local_instant(&day, h->end_minute, &end);
        if (r < 0)
            return r;
        if (at_ms >= end)
            continue; /* today's window is over */
        *ret_ms = at_ms >= start ? at_ms : start;
        return 0;
    }
    return -ERANGE;
}

int hours_next_open(const struct paging_hours *h, int64_t at_ms, int64_t *ret_ms)
{
    struct oncall_tz_saved sv;
    int64_t found = 0;
    if (!h || at_ms < 0 || at_ms >= AT_MAX_MS || h->day_mask == 0 ||
        h->end_minute <= h->start_minute)
        return -EINVAL;
    int r = oncall_tz_enter(h->timezone, &sv);
    if (r < 0)
        return r;
    r = next_open(h, at_ms, &found);
    oncall_tz_leave(&sv);
    if (r == 0)
        *ret_ms = found;
    return r;
}

bool hours_open(const struct paging_hours *h, int64_t at_ms)
{
    int64_t next = 0;
    return hours_next_open(h, at_ms, &next) == 0 && next == at_ms;
}

void hours_local_text(const struct paging_hours *h, int64_t at_ms, char *buf, size_t len)
{
    struct oncall_tz_saved sv;
    time_t t = (time_t)(at_ms / 1000);
    struct tm tm;
    char local[32] = "";
    if (!h || oncall_tz_enter(h->timezone, &sv) < 0) {
        snprintf(buf, len, "-");
        return;
    }
    if (!localtime_r(&t, &tm) || strftime(local, sizeof(local), "%Y-%m-%d %H:%M", &tm) == 0)
        snprintf(local, sizeof(local), "-");
    oncall_tz_leave(&sv);
    snprintf(buf, len, "%s %s", local, h->timezone);
}
