/*
 * Business hours (paging.business_hours, struct paging_hours): when a page that waits for them
 * may go out. A window is open on each of its weekdays that is not a holiday, from start to end
 * local time in its time zone; a page due while every window is closed is held until the next
 * one opens (escalate.c puts "held until ..." on the incident's timeline).
 *
 * Local times are the zone's own on each day, so a window keeps 09:00 across daylight-saving
 * changes; a start inside a spring-forward gap (02:30 on the night clocks jump 02:00 -> 03:00)
 * moves forward by the gap, as mktime does. Holidays are local dates.
 *
 * Time zones are the C library's (oncall_tz_enter): one thread only, as oncall.h says.
 */
#ifndef COORD_HOURS_H
#define COORD_HOURS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "paging_config.h"

#define HOURS_LOOKAHEAD_DAYS 400 /* a window further away than this is "never" (-ERANGE) */
#define HOURS_TEXT_MAX 200       /* "2026-12-07 09:00 Europe/Berlin" */

/* at_ms itself when a window of h is open then, else when the next one opens. h must be
 * finished (paging_config_finish parses it). 0, -EINVAL (time zone unusable, at_ms outside
 * 1970..2200) or -ERANGE (no window within HOURS_LOOKAHEAD_DAYS). */
int hours_next_open(const struct paging_hours *h, int64_t at_ms, int64_t *ret_ms);

/* True when a window of h is open at at_ms (false on any error). */
bool hours_open(const struct paging_hours *h, int64_t at_ms);

/* "YYYY-MM-DD HH:MM ZONE" of at_ms in h's time zone, for messages. */
void hours_local_text(const struct paging_hours *h, int64_t at_ms, char *buf, size_t len);

#endif
