/*
 * Escalation: who is paged, when, and what everyone else is told, for every incident, along
 * the policy its runbook or severity names (paging_config.h) — the document's timeline by
 * default: primary on-call at once, secondary at 15 min, the manager at 30, the CTO and
 * stakeholders at 60, until someone acknowledges.
 *
 * Timers are rows of `escalations` (009_escalations.sql), so a restart loses none: each pass
 * looks up what is due at the wall-clock now, and handles each incident in one transaction
 * with the notifications it inserts (unique per incident, kind, level, round, target and
 * channel) and the timeline events it writes. A late timer fires at once, and once.
 *
 * Per incident: the first level at the policy's first delay, the next ones at theirs (or at
 * once after `vigilctl escalate`, a missed response deadline, or a page that failed for good);
 * acknowledging stops the levels and tells those paged (PagerDuty: acknowledge); a status
 * update to them every status_update_interval while open; the resolution told to them and to
 * the severity's audiences (PagerDuty: resolve), then a reminder when the post-incident report
 * is due. A reopened incident is paged again from the first level.
 *
 * Grouping (016_page_groups.sql): per-node incidents of one runbook opened within
 * paging.grouping.wait are one page. The first leads: its first level waits grouping.wait, and
 * every message it sends names the group's open nodes. The others are members: they page
 * nobody, and those paged hear of nodes that joined after a page in one 'grouped' message per
 * grouping.interval. A leader that resolves hands the escalation to its oldest open member; a
 * member grown more severe than its leader leaves the group and is paged on its own.
 * Incidents across nodes are one incident already and are never grouped.
 *
 * The per-person cap: a page to a contact who had max_pages_per_minute pages (and summaries) in
 * the last minute is stored 'held'; each pass tells everything held for a contact in one
 * 'summary' once the minute has room. PagerDuty is never held.
 *
 * Silences (silence.h): a level that falls due while a silence matches pages no one and looks
 * again every few seconds until the silence is over; audiences, status updates and group
 * messages are not sent meanwhile. A silenced incident neither leads nor joins a group.
 *
 * Main loop only. The notifier (notify.h) delivers the rows.
 */
#ifndef COORD_ESCALATE_H
#define COORD_ESCALATE_H

#include <stddef.h>
#include <stdint.h>

#include "paging_config.h"
#include "runbook.h"
#include "store.h"

typedef struct escalate escalate_t;

/* paging outlives the engine. Its own store connections are opened on first use. */
escalate_t *escalate_new(const struct paging_config *paging, const char *conninfo);
void escalate_destroy(escalate_t **self_p);

/* Everything due at now_ms. runbooks (may be NULL) gives each incident's policy and link.
 * Returns how many notifications were added, or a negative errno (store unreachable). */
int escalate_tick(escalate_t *self, const struct rb_set *runbooks, int64_t now_ms);

/* When the level after `level` (-1 = none paged yet) is due: the next level's delay after
 * started_at_ms; after the last level, one last gap (at least a minute) after now_ms while
 * the policy has repeats left (repeats = done so far); 0 = nothing further. */
int64_t escalate_next_due(const struct paging_policy *policy, int level, int64_t started_at_ms,
                          int repeats, int64_t now_ms);

/* vigilctl escalate: the incident's next level is paged at the next pass, whatever its state
 * while open. On the caller's connection. -ENOENT unknown incident, -EALREADY resolved or
 * closed, -EINPROGRESS not yet picked up by the engine (it opened less than a second ago). */
int escalate_request(store_incidents_t *store, uint64_t incident_id, const char *actor);

#endif
