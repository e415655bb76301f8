/*
 * How vigilctl shows incidents, shared by the incident commands (cmd_incidents.c, which owns
 * these functions), the report command and tail.
 */
#ifndef CTL_INCIDENT_VIEW_H
#define CTL_INCIDENT_VIEW_H

#include <jansson.h>
#include <stdint.h>

#include "wire.h"

/* "SEV1" .. "SEV4", "SEV?" otherwise. */
const char *incident_view_severity(uint32_t severity);

/* The incident as 'vigilctl help incidents' documents it (a new reference). */
json_t *incident_view_json(const Vigil__IncidentInfo *inc);

/* One timeline event: {id, incident (when known), at, kind, actor, text, data}. */
json_t *incident_view_event_json(const Vigil__IncidentEvent *ev);

/* "SEV1".."SEV4" (any case) or "1".."4" as 1..4; 0 when it is neither. */
uint32_t incident_view_parse_severity(const char *text);

/* An incident id: a decimal number from 1 on. 0, or -EINVAL after printing why (cmd names the
 * command for the message). */
int incident_view_parse_id(const char *cmd, const char *text, uint64_t *ret_id);

#endif
