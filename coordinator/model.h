/*
 * The coordinator's domain vocabulary: an incident's states, the kinds of its timeline events,
 * and the kinds, delivery states and channels of its notifications, as enums with one name table
 * each.
 *
 * The names are the database's: the text columns of incidents.state, incident_events.kind and
 * notifications.kind/status/channel (their CHECK constraints in coordinator/store/sql/ list the
 * same words). The store converts between the two at its boundary (the files of
 * coordinator/store/), so the rest of the coordinator compares enums, never text; the admin socket
 * turns them back into the wire's strings with *_name.
 *
 * Every enum has:
 *   const char *X_name(enum X value)                the table's text; NULL outside the enum
 *   int X_parse(const char *text, enum X *ret)      0, or -EINVAL for NULL or a name not in
 *                                                   the table (*ret untouched)
 * and a count (INCIDENT_STATES, ...) for walking every value. A new value goes into the enum,
 * its name table (model.c), and the CHECK constraint by a new migration, together.
 *
 * The channel keeps the name paging_channel it had in paging_config.h, where contacts' addresses
 * are keyed by it.
 *
 * Pure data: no I/O, no state, any thread.
 */
#ifndef COORD_MODEL_H
#define COORD_MODEL_H

#include <stdbool.h>

/* incidents.state (005_incidents.sql), in lifecycle order. */
enum incident_state {
    INCIDENT_STATE_DETECTED,
    INCIDENT_STATE_ACKNOWLEDGED,
    INCIDENT_STATE_MITIGATED,
    INCIDENT_STATE_RESOLVED,
    INCIDENT_STATE_CLOSED,
};
#define INCIDENT_STATES 5
const char *incident_state_name(enum incident_state state);
int incident_state_parse(const char *text, enum incident_state *ret);
/* Open: detected, acknowledged or mitigated (the states of the one open incident per
 * fingerprint, 005_incidents.sql's incidents_open_fingerprint). */
bool incident_state_open(enum incident_state state);

/* incident_events.kind (013_commands.sql's incident_events_kind_check). */
enum incident_event_kind {
    INCIDENT_EVENT_OPENED,
    INCIDENT_EVENT_SYMPTOM,
    INCIDENT_EVENT_SEVERITY,
    INCIDENT_EVENT_ACKNOWLEDGED,
    INCIDENT_EVENT_MITIGATED,
    INCIDENT_EVENT_RESOLVED,
    INCIDENT_EVENT_REOPENED,
    INCIDENT_EVENT_NOTE,
    INCIDENT_EVENT_ATTACHED,
    INCIDENT_EVENT_REPORT,
    INCIDENT_EVENT_CLOSED,
    INCIDENT_EVENT_ESCALATED,
    INCIDENT_EVENT_NOTIFY_FAILED,
    INCIDENT_EVENT_DEADLINE_MISSED,
    INCIDENT_EVENT_STATUS_UPDATE,
    INCIDENT_EVENT_REPORT_DUE,
    INCIDENT_EVENT_COMMAND, /* a remediation command's request, capsule or reported step */
};
#define INCIDENT_EVENT_KINDS 17
const char *incident_event_kind_name(enum incident_event_kind kind);
int incident_event_kind_parse(const char *text, enum incident_event_kind *ret);

/* notifications.kind (016_page_groups.sql): why a message is sent. */
enum notification_kind {
    NOTIFICATION_KIND_PAGE,         /* an escalation level */
    NOTIFICATION_KIND_UPDATE,       /* every status_update_interval while open */
    NOTIFICATION_KIND_RESOLVED,     /* resolved or closed */
    NOTIFICATION_KIND_ACKNOWLEDGED, /* someone is on it */
    NOTIFICATION_KIND_AUDIENCE,     /* management, partners: told at once, never escalated */
    NOTIFICATION_KIND_DEADLINE,     /* the response deadline was missed */
    NOTIFICATION_KIND_REPORT_DUE,   /* the post-incident report is due */
    NOTIFICATION_KIND_GROUPED,      /* more nodes joined a paged storm (016_page_groups.sql) */
    NOTIFICATION_KIND_SUMMARY,      /* pages held back by the per-person cap, in one message */
    NOTIFICATION_KIND_ACTION,       /* an automatic action ran: what and how it ended */
    NOTIFICATION_KIND_REMINDER,     /* the owner: no status update in the interval, post one */
    NOTIFICATION_KIND_HUMAN_UPDATE, /* an operator's status update (vigilctl update) */
};
#define NOTIFICATION_KINDS 12
const char *notification_kind_name(enum notification_kind kind);
int notification_kind_parse(const char *text, enum notification_kind *ret);

/* notifications.status (016_page_groups.sql; notify.h draws the life of a row). */
enum notification_status {
    NOTIFICATION_STATUS_PENDING,
    NOTIFICATION_STATUS_SENDING,
    NOTIFICATION_STATUS_SENT,
    NOTIFICATION_STATUS_FAILED,
    NOTIFICATION_STATUS_HELD,       /* past the per-person cap: waits for the next summary */
    NOTIFICATION_STATUS_SUMMARISED, /* told in a summary instead; never delivered itself */
};
#define NOTIFICATION_STATUSES 6
const char *notification_status_name(enum notification_status status);
int notification_status_parse(const char *text, enum notification_status *ret);

/* notifications.channel (007_notifications.sql, 025_tickets.sql): how a message reaches a
 * contact, or (ticket) an issue tracker. */
enum paging_channel {
    PAGING_CHANNEL_SLACK,
    PAGING_CHANNEL_WEBHOOK,
    PAGING_CHANNEL_EMAIL,
    PAGING_CHANNEL_PAGERDUTY,
    PAGING_CHANNEL_SMS,    /* a Twilio-compatible Messages API (025_tickets.sql) */
    PAGING_CHANNEL_TICKET, /* an issue tracker: GitHub Issues or Jira (025_tickets.sql) */
};
#define PAGING_CHANNELS 6
const char *paging_channel_name(enum paging_channel channel);
int paging_channel_parse(const char *text, enum paging_channel *ret);

#endif
