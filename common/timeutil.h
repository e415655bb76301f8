/* Clocks: wall time for timestamps that leave the process, monotonic time for deadlines. */
#ifndef VG_TIMEUTIL_H
#define VG_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

int64_t vg_wall_ms(void); /* CLOCK_REALTIME, Unix milliseconds */
int64_t vg_mono_ms(void); /* CLOCK_MONOTONIC milliseconds */
/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant's
 * days_from_civil); m 1..12, d 1..31, not checked. */
int64_t vg_days_from_civil(int64_t y, int m, int d);

/* A calendar date "YYYY-MM-DD" (exactly that: years 1970 to 9999, a day the month has, leap
 * years counted) as days since 1970-01-01 into *ret_days. 0, or -EINVAL (*ret_days untouched). */
int vg_parse_date(const char *text, int64_t *ret_days);
/* The UTC date of unix_ms as "YYYY-MM-DD" into buf (at least 11 bytes). */
void vg_date_text(int64_t unix_ms, char *buf, size_t buflen);

#endif
