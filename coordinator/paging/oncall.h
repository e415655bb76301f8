/*
 * Who is on call: a weekly rotation (struct paging_schedule) plus one-off overrides, at any
 * instant. Pure computation; the overrides come from the store (store_oncall_list).
 *
 * Rotation: the k-th handover is at the schedule's handover weekday and local time in its
 * time zone, k weeks after its start date; users[k mod n] is on call from handover k to
 * handover k+1. The handover stays at the same local time across daylight-saving changes, so
 * a shift is 167 or 169 hours long in the weeks of a change. A local time that does not exist
 * that day (inside a spring-forward gap) moves forward by the gap, as mktime does. Before
 * the first handover nobody is on call (user NULL) unless an override says so.
 *
 * Overrides: {schedule, user, [from, to)}; one that covers the instant wins over the rotation,
 * and among several the newest (the highest id; equal ids: the later in the array).
 *
 * Time zones are read by the C library: oncall_who sets TZ to the schedule's zone file, calls
 * tzset/mktime, and puts TZ back before it returns. The environment is process-wide, so call
 * these functions from one thread only (the coordinator's main loop, or vigilctl) while no
 * other thread converts local times; the coordinator's other threads (HTTP) never do. TZ
 * stays defined throughout (":/etc/localtime" stands for "not set", which glibc reads the
 * same way), so a getenv on another thread never sees the environment array move.
 */
#ifndef COORD_ONCALL_H
#define COORD_ONCALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "paging_config.h"

#define ONCALL_WEEK_MS (7 * 24 * 3600LL * 1000)
#define ONCALL_ACTOR_MAX 128

struct oncall_override {
    uint64_t id; /* store id: higher = newer */
    char schedule[PAGING_NAME_MAX + 1];
    char user[PAGING_NAME_MAX + 1];
    int64_t from_ms, to_ms; /* [from, to), Unix milliseconds */
    int64_t created_ms;
    char created_by[ONCALL_ACTOR_MAX];
};

struct oncall_result {
    const char *user; /* contact name (borrowed from the schedule or the overrides); NULL =
                         nobody */
    int64_t since_ms; /* when this assignment began; INT64_MIN = always (nobody yet) */
    int64_t until_ms; /* when it ends: the next handover, or the override's edge */
    bool override;    /* user comes from an override */
    uint64_t override_id;
    const char *next_user; /* who is on call from until_ms (NULL = nobody) */
    bool next_override;
};

/*
 * The assignment at at_ms. ovr may hold overrides of other schedules (skipped). The schedule
 * must be prepared (paging_schedule_prepare). 0, or -EINVAL (unprepared schedule, at_ms
 * outside 1970..2200, time zone unusable).
 */
int oncall_who(const struct paging_schedule *s, const struct oncall_override *ovr, size_t novr,
               int64_t at_ms, struct oncall_result *ret);

/* The C library's time zone switched to zone (an IANA name) for a computation with mktime and
 * localtime_r, and put back; same thread caveat. 0, -EINVAL (not a zone) or -ENOMEM. */
struct oncall_tz_saved {
    char *old; /* TZ before, or NULL when it was not set */
};
int oncall_tz_enter(const char *zone, struct oncall_tz_saved *sv);
void oncall_tz_leave(struct oncall_tz_saved *sv);

/* The instant of handover k (0 = the first, at start). Same rules and thread caveat. */
int oncall_handover(const struct paging_schedule *s, int64_t k, int64_t *ret_ms);

#endif
