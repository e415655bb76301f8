#include "timeutil.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

static int64_t clock_ms(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t vg_wall_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

int64_t vg_mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

int64_t vg_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int vg_parse_date(const char *text, int64_t *ret_days)
{
    static const int month_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int v[3] = {0, 0, 0};
    if (!text)
        return -EINVAL;
    /* "YYYY-MM-DD": digits everywhere but the two dashes, nothing before or after. */
    for (int i = 0, field = 0; i < 10; i++) {
        char c = text[i];
        if (i == 4 || i == 7) {
            if (c != '-')
                return -EINVAL;
            field++;
        } else if (c >= '0' && c <= '9') {
            v[field] = v[field] * 10 + (c - '0');
        } else {
            return -EINVAL;
        }
    }
    if (text[10] != '\0')
        return -EINVAL;
    int year = v[0], month = v[1], day = v[2];
    if (year < 1970 || month < 1 || month > 12 || day < 1)
        return -EINVAL;
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (day > month_days[month - 1] + (month == 2 && leap))
        return -EINVAL;
    if (ret_days)
        *ret_days = vg_days_from_civil(year, month, day);
    return 0;
}

void vg_date_text(int64_t unix_ms, char *buf, size_t buflen)
{
    time_t secs = (time_t)(unix_ms / 1000);
    struct tm tm;
    if (!buf || buflen == 0)
        return;
    if (!gmtime_r(&secs, &tm) || strftime(buf, buflen, "%Y-%m-%d", &tm) == 0)
        snprintf(buf, buflen, "-");
}
