/* The name tables of the domain's enums (model.h): one per enum, indexed by value. */
#include "model.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

static const char *const incident_state_names[] = {
    [INCIDENT_STATE_DETECTED] = "detected",   [INCIDENT_STATE_ACKNOWLEDGED] = "acknowledged",
    [INCIDENT_STATE_MITIGATED] = "mitigated", [INCIDENT_STATE_RESOLVED] = "resolved",
    [INCIDENT_STATE_CLOSED] = "closed",
};
_Static_assert(COUNT_OF(incident_state_names) == INCIDENT_STATES, "a state without a name");

static const char *const incident_event_kind_names[] = {
    [INCIDENT_EVENT_OPENED] = "opened",
    [INCIDENT_EVENT_SYMPTOM] = "symptom",
    [INCIDENT_EVENT_SEVERITY] = "severity",
    [INCIDENT_EVENT_ACKNOWLEDGED] = "acknowledged",
    [INCIDENT_EVENT_MITIGATED] = "mitigated",
    [INCIDENT_EVENT_RESOLVED] = "resolved",
    [INCIDENT_EVENT_REOPENED] = "reopened",
    [INCIDENT_EVENT_NOTE] = "note",
    [INCIDENT_EVENT_ATTACHED] = "attached",
    [INCIDENT_EVENT_REPORT] = "report",
    [INCIDENT_EVENT_CLOSED] = "closed",
    [INCIDENT_EVENT_ESCALATED] = "escalated",
    [INCIDENT_EVENT_NOTIFY_FAILED] = "notify_failed",
    [INCIDENT_EVENT_DEADLINE_MISSED] = "deadline_missed",
    [INCIDENT_EVENT_STATUS_UPDATE] = "status_update",
    [INCIDENT_EVENT_REPORT_DUE] = "report_due",
    [INCIDENT_EVENT_COMMAND] = "command",
};
_Static_assert(COUNT_OF(incident_event_kind_names) == INCIDENT_EVENT_KINDS,
               "an event kind without a name");

static const char *const notification_kind_names[] = {
    [NOTIFICATION_KIND_PAGE] = "page",
    [NOTIFICATION_KIND_UPDATE] = "update",
    [NOTIFICATION_KIND_RESOLVED] = "resolved",
    [NOTIFICATION_KIND_ACKNOWLEDGED] = "acknowledged",
    [NOTIFICATION_KIND_AUDIENCE] = "audience",
    [NOTIFICATION_KIND_DEADLINE] = "deadline",
    [NOTIFICATION_KIND_REPORT_DUE] = "report_due",
    [NOTIFICATION_KIND_GROUPED] = "grouped",
    [NOTIFICATION_KIND_SUMMARY] = "summary",
    [NOTIFICATION_KIND_ACTION] = "action",
    [NOTIFICATION_KIND_REMINDER] = "reminder",
    [NOTIFICATION_KIND_HUMAN_UPDATE] = "human_update",
};
_Static_assert(COUNT_OF(notification_kind_names) == NOTIFICATION_KINDS,
               "a notification kind without a name");

static const char *const notification_status_names[] = {
    [NOTIFICATION_STATUS_PENDING] = "pending",
    [NOTIFICATION_STATUS_SENDING] = "sending",
    [NOTIFICATION_STATUS_SENT] = "sent",
    [NOTIFICATION_STATUS_FAILED] = "failed",
    [NOTIFICATION_STATUS_HELD] = "held",
    [NOTIFICATION_STATUS_SUMMARISED] = "summarised",
};
_Static_assert(COUNT_OF(notification_status_names) == NOTIFICATION_STATUSES,
               "a notification status without a name");

static const char *const paging_channel_names[] = {
    [PAGING_CHANNEL_SLACK] = "slack",
    [PAGING_CHANNEL_WEBHOOK] = "webhook",
    [PAGING_CHANNEL_EMAIL] = "email",
    [PAGING_CHANNEL_PAGERDUTY] = "pagerduty",
    [PAGING_CHANNEL_SMS] = "sms",
    [PAGING_CHANNEL_TICKET] = "ticket",
};
_Static_assert(COUNT_OF(paging_channel_names) == PAGING_CHANNELS, "a channel without a name");

static const char *name_of(const char *const *names, size_t n, unsigned value)
{
    return value < n ? names[value] : NULL;
}

/* The index of text in names, or -EINVAL. */
static int index_of(const char *const *names, size_t n, const char *text)
{
    for (size_t i = 0; text && i < n; i++)
        if (strcmp(text, names[i]) == 0)
            return (int)i;
    return -EINVAL;
}

const char *incident_state_name(enum incident_state state)
{
    return name_of(incident_state_names, INCIDENT_STATES, (unsigned)state);
}

int incident_state_parse(const char *text, enum incident_state *ret)
{
    int i = index_of(incident_state_names, INCIDENT_STATES, text);
    if (i < 0)
        return i;
    *ret = (enum incident_state)i;
    return 0;
}

bool incident_state_open(enum incident_state state)
{
    return state == INCIDENT_STATE_DETECTED || state == INCIDENT_STATE_ACKNOWLEDGED ||
           state == INCIDENT_STATE_MITIGATED;
}

const char *incident_event_kind_name(enum incident_event_kind kind)
{
    return name_of(incident_event_kind_names, INCIDENT_EVENT_KINDS, (unsigned)kind);
}

int incident_event_kind_parse(const char *text, enum incident_event_kind *ret)
{
    int i = index_of(incident_event_kind_names, INCIDENT_EVENT_KINDS, text);
    if (i < 0)
        return i;
    *ret = (enum incident_event_kind)i;
    return 0;
}

const char *notification_kind_name(enum notification_kind kind)
{
    return name_of(notification_kind_names, NOTIFICATION_KINDS, (unsigned)kind);
}

int notification_kind_parse(const char *text, enum notification_kind *ret)
{
    int i = index_of(notification_kind_names, NOTIFICATION_KINDS, text);
    if (i < 0)
        return i;
    *ret = (enum notification_kind)i;
    return 0;
}

const char *notification_status_name(enum notification_status status)
{
    return name_of(notification_status_names, NOTIFICATION_STATUSES, (unsigned)status);
}

int notification_status_parse(const char *text, enum notification_status *ret)
{
    int i = index_of(notification_status_names, NOTIFICATION_STATUSES, text);
    if (i < 0)
        return i;
    *ret = (enum notification_status)i;
    return 0;
}

const char *paging_channel_name(enum paging_channel channel)
{
    return name_of(paging_channel_names, PAGING_CHANNELS, (unsigned)channel);
}

int paging_channel_parse(const char *text, enum paging_channel *ret)
{
    int i = index_of(paging_channel_names, PAGING_CHANNELS, text);
    if (i < 0)
        return i;
    *ret = (enum paging_channel)i;
    return 0;
}
