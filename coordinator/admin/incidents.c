/* Operator requests about incidents: list, show, acknowledge, mitigate, resolve, reports,
 * escalation, notifications, and following changes (tail). */
#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_internal.h"
#include "escalate.h"
#include "log.h"
#include "timeutil.h"
#include "wire.h"

/* ListIncidents, TailIncidents: this many unless asked, at most the wire's limit. */
#define INCIDENT_LIST_DEFAULT 100
#define INCIDENT_LIST_MAX ADMIN_INCIDENTS_LISTED_MAX

static void free_incident_info(void **item)
{
    Vigil__IncidentInfo *info = *item;
    if (!info)
        return;
    for (size_t i = 0; i < info->n_scope; i++)
        free(info->scope[i]);
    free(info->scope);
    free(info->fingerprint);
    free(info->runbook);
    free(info->title);
    free(info->state);
    free(info);
    *item = NULL;
}

static void free_incident_event(void **item)
{
    Vigil__IncidentEvent *ev = *item;
    if (!ev)
        return;
    free(ev->kind);
    free(ev->actor);
    free(ev->text);
    free(ev->data_json);
    free(ev);
    *item = NULL;
}

/* The incidents and timeline events a reply carries, owned by the reply. */
struct incident_lists {
    struct reply *rep;
    zlistx_t *incidents; /* Vigil__IncidentInfo */
    zlistx_t *events;    /* Vigil__IncidentEvent */
};

static void release_lists(void *ptr)
{
    struct incident_lists *l = ptr;
    zlistx_destroy(&l->incidents);
    zlistx_destroy(&l->events);
    free(l);
}

/* The incidents connection (opened on first use) and empty lists; NULL (and the reply says
 * why) on failure. */
static struct incident_lists *incidents_start(admin_t *self, struct reply *rep)
{
    if (!self->incidents)
        self->incidents = store_incidents_new(store_conninfo(self->store));
    struct incident_lists *l = reply_own(rep, calloc(1, sizeof(*l)), release_lists);
    if (l) {
        l->rep = rep;
        l->incidents = zlistx_new();
        l->events = zlistx_new();
    }
    if (!self->incidents || !l || !l->incidents || !l->events) {
        reply_out_of_memory(rep);
        return NULL;
    }
    zlistx_set_destructor(l->incidents, free_incident_info);
    zlistx_set_destructor(l->events, free_incident_event);
    return l;
}

/* The scope is a JSON array of node names; anything else in it is skipped. */
static int scope_from_json(Vigil__IncidentInfo *info, const char *scope_json)
{
    json_t *scope = json_loads(scope_json, 0, NULL);
    size_t i;
    json_t *v;
    if (!json_is_array(scope)) {
        json_decref(scope);
        return 0;
    }
    info->scope = calloc(json_array_size(scope) + 1, sizeof(char *));
    if (!info->scope) {
        json_decref(scope);
        return -ENOMEM;
    }
    json_array_foreach(scope, i, v)
    {
        if (!json_is_string(v))
            continue;
        info->scope[info->n_scope] = strdup(json_string_value(v));
        if (!info->scope[info->n_scope])
            break;
        info->n_scope++;
    }
    bool complete = i >= json_array_size(scope);
    json_decref(scope);
    return complete ? 0 : -ENOMEM;
}

static int add_incident(const struct store_incident *inc, void *userdata)
{
    struct incident_lists *l = userdata;
    Vigil__IncidentInfo *info = calloc(1, sizeof(*info));
    if (!info)
        return -ENOMEM;
    vigil__incident_info__init(info);
    zlistx_add_end(l->incidents, info);
    info->id = inc->id;
    info->fingerprint = strdup(inc->fingerprint);
    info->runbook = strdup(inc->runbook);
    info->title = strdup(inc->title);
    info->severity = (uint32_t)inc->severity;
    info->state = strdup(incident_state_name(inc->state));
    info->opened_at_ms = inc->opened_at_ms;
    info->response_due_ms = inc->response_due_ms;
    info->acknowledged_at_ms = inc->acknowledged_at_ms;
    info->resolved_at_ms = inc->resolved_at_ms;
    info->updated_at_ms = inc->updated_at_ms;
    info->root_incident_id = inc->root_id;
    if (!info->fingerprint || !info->runbook || !info->title || !info->state)
        return -ENOMEM;
    return scope_from_json(info, inc->scope_json);
}

static int add_incident_event(const struct store_incident_event *row, void *userdata)
{
    struct incident_lists *l = userdata;
    Vigil__IncidentEvent *ev = calloc(1, sizeof(*ev));
    if (!ev)
        return -ENOMEM;
    vigil__incident_event__init(ev);
    zlistx_add_end(l->events, ev);
    ev->id = row->id;
    ev->incident_id = row->incident_id;
    ev->at_ms = row->at_ms;
    ev->kind = strdup(incident_event_kind_name(row->kind));
    ev->actor = strdup(row->actor);
    ev->text = strdup(row->text);
    ev->data_json = strdup(row->data_json);
    return ev->kind && ev->actor && ev->text && ev->data_json ? 0 : -ENOMEM;
}

/* Points the reply message at the lists. */
static void incidents_reply(struct incident_lists *l)
{
    struct reply *rep = l->rep;
    size_t n = zlistx_size(l->incidents), m = zlistx_size(l->events);
    rep->msg.incidents = reply_own(rep, calloc(n ? n : 1, sizeof(Vigil__IncidentInfo *)), free);
    rep->msg.incident_events =
        reply_own(rep, calloc(m ? m : 1, sizeof(Vigil__IncidentEvent *)), free);
    if (!rep->msg.incidents || !rep->msg.incident_events) {
        reply_out_of_memory(rep);
        return;
    }
    for (Vigil__IncidentInfo *info = zlistx_first(l->incidents); info;
         info = zlistx_next(l->incidents))
        rep->msg.incidents[rep->msg.n_incidents++] = info;
    for (Vigil__IncidentEvent *ev = zlistx_first(l->events); ev; ev = zlistx_next(l->events))
        rep->msg.incident_events[rep->msg.n_incident_events++] = ev;
}

static void list_incidents(admin_t *self, const struct operator* op,
                           const Vigil__AdminRequest *request, struct reply *rep)
{
    (void)op;
    const Vigil__ListIncidents *req = request->list_incidents;
    uint32_t limit = req->limit ? req->limit : INCIDENT_LIST_DEFAULT;
    if (limit > INCIDENT_LIST_MAX)
        limit = INCIDENT_LIST_MAX;
    uint64_t before = req->cursor && req->cursor[0] ? strtoull(req->cursor, NULL, 10) : 0;
    struct incident_lists *l = incidents_start(self, rep);
    if (!l)
        return;
    if (incidents_list(self->incidents, !req->all, before, limit, add_incident, l) < 0) {
        reply_store_unavailable(rep, false);
        return;
    }
    incidents_reply(l);
    /* A full page: more may follow, from below its last (oldest) incident. */
    if (rep->msg.n_incidents == limit) {
        char *cursor = reply_own(rep, malloc(24), free);
        if (!cursor)
            return;
        snprintf(cursor, 24, "%" PRIu64, rep->msg.incidents[limit - 1]->id);
        rep->msg.next_cursor = cursor;
    }
}

/* The incident into the reply; with_timeline adds its events. */
static void show_one(admin_t *self, uint64_t id, bool with_timeline, struct incident_lists *l)
{
    struct store_incident *inc = calloc(1, sizeof(*inc));
    int r =
        inc ? incidents_show(self->incidents, id, inc, with_timeline ? add_incident_event : NULL, l)
            : -ENOMEM;
    if (r == 0)
        r = add_incident(inc, l);
    free(inc);
    if (r == -ENOENT) {
        reply_incident_not_found(l->rep, id);
        return;
    }
    if (r < 0) {
        reply_store_unavailable(l->rep, false);
        return;
    }
    incidents_reply(l);
}

static void show_incident(admin_t *self, const struct operator* op, const Vigil__AdminRequest *req,
                          struct reply *rep)
{
    (void)op;
    struct incident_lists *l = incidents_start(self, rep);
    if (l)
        show_one(self, req->show_incident->id, true, l);
    if (rep->msg.status == VIGIL__ADMIN_STATUS__ADMIN_OK && rep->msg.n_incidents == 1) {
        admin_reply_incident_evidence(self, rep, req->show_incident->id);
        admin_reply_incident_hold(self, rep, req->show_incident->id);
    }
}

enum incident_change { CHANGE_ACK, CHANGE_MITIGATE, CHANGE_RESOLVE };

static void change_incident(admin_t *self, const struct operator* op, uint64_t id, const char *note,
                            enum incident_change change, struct reply *rep)
{
    static const char *const verbs[] = {"acknowledge", "mitigate", "resolve"};
    static const enum incident_state done[] = {INCIDENT_STATE_ACKNOWLEDGED,
                                               INCIDENT_STATE_MITIGATED, INCIDENT_STATE_RESOLVED};
    static const char *const audit[] = {"incident.acknowledge", "incident.mitigate",
                                        "incident.resolve"};
    char actor[160], subject[64];

    struct incident_lists *l = incidents_start(self, rep);
    if (!l)
        return;
    if (change != CHANGE_ACK && (!note || !note[0])) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST,
                    "%s an incident needs a note "
                    "saying what was done",
                    change == CHANGE_RESOLVE ? "resolving" : "mitigating");
        return;
    }
    int64_t now = vg_wall_ms();
    admin_actor(op, actor, sizeof(actor));
    snprintf(subject, sizeof(subject), "incident %" PRIu64, id);
    int r = store_incidents_audit_on_commit(self->incidents, actor, audit[change], subject, note);
    if (r == 0)
        r = change == CHANGE_RESOLVE ? incidents_resolve(self->incidents, id, op->name, note, now)
            : change == CHANGE_MITIGATE
                ? incidents_mitigate(self->incidents, id, op->name, note, now)
                : incidents_ack(self->incidents, id, op->name, note, now);
    store_incidents_audit_clear(self->incidents);
    switch (r) {
    case 0:
        break;
    case -ENOENT:
        reply_incident_not_found(rep, id);
        return;
    case -EALREADY:
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_CONFLICT, "incident %" PRIu64 " is already %s",
                    id, incident_state_name(done[change]));
        return;
    case -EBUSY:
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_CONFLICT,
                    "incident %" PRIu64 " is past that: it cannot be %s now (see vigilctl incident "
                    "show %" PRIu64 ")",
                    id, incident_state_name(done[change]), id);
        return;
    case -EINVAL:
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST,
                    "the note was refused (it must be UTF-8 text of at most %d bytes)",
                    INCIDENT_NOTE_MAX);
        return;
    default:
        reply_store_unavailable(rep, true);
        return;
    }
    vg_log(VG_LOG_INFO, "incident=%" PRIu64 " %sd by operator=%s", id, verbs[change], op->name);
    show_one(self, id, false, l);
}

static void ack_incident(admin_t *self, const struct operator* op, const Vigil__AdminRequest *req,
                         struct reply *rep)
{
    change_incident(self, op, req->ack_incident->id, req->ack_incident->note, CHANGE_ACK, rep);
}

static void mitigate_incident(admin_t *self, const struct operator* op,
                              const Vigil__AdminRequest *req, struct reply *rep)
{
    change_incident(self, op, req->mitigate_incident->id, req->mitigate_incident->note,
                    CHANGE_MITIGATE, rep);
}

static void resolve_incident(admin_t *self, const struct operator* op,
                             const Vigil__AdminRequest *req, struct reply *rep)
{
    change_incident(self, op, req->resolve_incident->id, req->resolve_incident->note,
                    CHANGE_RESOLVE, rep);
}

static void put_report(admin_t *self, const struct operator* op, const Vigil__AdminRequest *request,
                       struct reply *rep)
{
    const Vigil__PutIncidentReport *req = request->put_incident_report;
    char actor[160], subject[64];
    bool closed = false;

    struct incident_lists *l = incidents_start(self, rep);
    if (!l)
        return;
    admin_actor(op, actor, sizeof(actor));
    snprintf(subject, sizeof(subject), "incident %" PRIu64, req->id);
    /* "closed" instead when the report closes the incident (decided inside its transaction). */
    int r = store_incidents_audit_on_commit(self->incidents, actor, "incident.report", subject,
                                            "revised");
    if (r == 0)
        r = incidents_report(self->incidents, req->id, op->name, req->body, vg_wall_ms(), &closed);
    store_incidents_audit_clear(self->incidents);
    switch (r) {
    case 0:
        break;
    case -ENOENT:
        reply_incident_not_found(rep, req->id);
        return;
    case -EBUSY:
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_CONFLICT,
                    "incident %" PRIu64 " is still open: resolve it before writing its report",
                    req->id);
        return;
    case -EINVAL:
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST,
                    "the report was refused (it must be non-empty UTF-8 text of at most %d bytes)",
                    VG_MAX_REPORT_BYTES);
        return;
    default:
        reply_store_unavailable(rep, true);
        return;
    }
    vg_log(VG_LOG_INFO, "incident=%" PRIu64 " report written by operator=%s%s", req->id, op->name,
           closed ? ", incident closed" : "");
    show_one(self, req->id, false, l);
}

static void get_report(admin_t *self, const struct operator* op, const Vigil__AdminRequest *req,
                       struct reply *rep)
{
    (void)op;
    uint64_t id = req->get_incident_report->id;
    bool draft = false;
    char *report = NULL;
    if (!incidents_start(self, rep))
        return;
    int r = incidents_report_text(self->incidents, id, &report, &draft);
    reply_own(rep, report, free);
    if (r == -ENOENT) {
        reply_incident_not_found(rep, id);
        return;
    }
    if (r < 0) {
        reply_store_unavailable(rep, false);
        return;
    }
    rep->msg.report = report;
    rep->msg.report_is_draft = draft;
}

static void escalate_incident(admin_t *self, const struct operator* op,
                              const Vigil__AdminRequest *req, struct reply *rep)
{
    uint64_t id = req->escalate_incident->id;
    char actor[160], subject[64];
    struct incident_lists *l = incidents_start(self, rep);
    if (!l)
        return;
    admin_actor(op, actor, sizeof(actor));
    snprintf(subject, sizeof(subject), "incident %" PRIu64, id);
    int r = store_incidents_audit_on_commit(self->incidents, actor, "incident.escalate", subject,
                                            "");
    if (r == 0)
        r = escalate_request(self->incidents, id, op->name);
    store_incidents_audit_clear(self->incidents);
    switch (r) {
    case 0:
        break;
    case -ENOENT:
        reply_incident_not_found(rep, id);
        return;
    case -EALREADY:
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_CONFLICT,
                    "incident %" PRIu64 " is resolved: nothing to escalate", id);
        return;
    case -EINPROGRESS:
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_CONFLICT,
                    "incident %" PRIu64 " is being paged for the first time; try again in a "
                    "second",
                    id);
        return;
    default:
        reply_store_unavailable(rep, true);
        return;
    }
    vg_log(VG_LOG_INFO, "incident=%" PRIu64 " escalation requested by operator=%s", id, op->name);
    show_one(self, id, false, l);
}

static void free_notification_info(void **item)
{
    Vigil__NotificationInfo *n = *item;
    if (!n)
        return;
    free(n->kind);
    free(n->target);
    free(n->channel);
    free(n->status);
    free(n->last_error);
    free(n->event);
    free(n);
    *item = NULL;
}

static int add_notification(const struct store_notification_row *row, void *userdata)
{
    zlistx_t *list = userdata;
    Vigil__NotificationInfo *n = calloc(1, sizeof(*n));
    if (!n)
        return -ENOMEM;
    vigil__notification_info__init(n);
    zlistx_add_end(list, n);
    n->id = row->id;
    n->level = row->level;
    n->round = row->round;
    n->attempts = (uint32_t)row->attempts;
    n->last_code = row->last_code;
    n->created_at_ms = row->created_at_ms;
    n->sent_at_ms = row->sent_at_ms;
    n->kind = strdup(notification_kind_name(row->kind));
    n->target = strdup(row->target);
    n->channel = strdup(paging_channel_name(row->channel));
    n->status = strdup(notification_status_name(row->status));
    n->last_error = strdup(row->last_error);
    n->event = strdup(row->event);
    return n->kind && n->target && n->channel && n->status && n->last_error && n->event ? 0
                                                                                        : -ENOMEM;
}

static void list_notifications(admin_t *self, const struct operator* op,
                               const Vigil__AdminRequest *req, struct reply *rep)
{
    (void)op;
    uint64_t id = req->list_notifications->id;
    if (!incidents_start(self, rep))
        return;
    struct store_incident *inc = calloc(1, sizeof(*inc));
    zlistx_t *list = reply_own(rep, zlistx_new(), reply_release_list);
    int r = inc && list ? incidents_show(self->incidents, id, inc, NULL, NULL) : -ENOMEM;
    free(inc);
    if (r == 0) {
        zlistx_set_destructor(list, free_notification_info);
        r = store_notifications_list(self->incidents, id, add_notification, list);
    }
    if (r == -ENOENT) {
        reply_incident_not_found(rep, id);
        return;
    }
    size_t n = r == 0 ? zlistx_size(list) : 0;
    rep->msg.notifications =
        r == 0 ? reply_own(rep, calloc(n ? n : 1, sizeof(Vigil__NotificationInfo *)), free) : NULL;
    if (!rep->msg.notifications) {
        reply_store_unavailable(rep, false);
        return;
    }
    for (Vigil__NotificationInfo *info = zlistx_first(list); info; info = zlistx_next(list))
        rep->msg.notifications[rep->msg.n_notifications++] = info;
}

/* Collects the ids of the incidents a batch of events belongs to (each once). */
struct tail_ids {
    uint64_t ids[INCIDENT_LIST_MAX];
    size_t n;
    uint64_t last;
    struct incident_lists *lists;
};

static int add_tail_event(const struct store_incident_event *row, void *userdata)
{
    struct tail_ids *t = userdata;
    bool known = false;
    for (size_t i = 0; i < t->n && !known; i++)
        known = t->ids[i] == row->incident_id;
    if (!known && t->n < INCIDENT_LIST_MAX)
        t->ids[t->n++] = row->incident_id;
    t->last = row->id;
    return add_incident_event(row, t->lists);
}

static void tail_incidents(admin_t *self, const struct operator* op,
                           const Vigil__AdminRequest *request, struct reply *rep)
{
    (void)op;
    const Vigil__TailIncidents *req = request->tail_incidents;
    uint32_t limit = req->limit ? req->limit : INCIDENT_LIST_DEFAULT;
    struct incident_lists *l = incidents_start(self, rep);
    if (!l)
        return;
    struct tail_ids *t = calloc(1, sizeof(*t));
    int r = t ? 0 : -ENOMEM;

    if (t && req->from_now) {
        r = store_incident_events_last(self->incidents, &t->last);
    } else if (t) {
        t->last = req->after_id;
        t->lists = l;
        r = store_incident_events_after(self->incidents, req->after_id, limit, add_tail_event, t);
    }
    /* The incidents as they are now, so each line can say which incident and how bad. */
    for (size_t i = 0; r == 0 && i < t->n; i++) {
        struct store_incident *inc = calloc(1, sizeof(*inc));
        r = inc ? store_incident_get(self->incidents, t->ids[i], false, inc) : -ENOMEM;
        if (r == 0)
            r = add_incident(inc, l);
        free(inc);
    }
    if (r < 0) {
        free(t);
        reply_store_unavailable(rep, false);
        return;
    }
    rep->msg.last_event_id = t->last;
    free(t);
    incidents_reply(l);
}

/* Field checks: an incident id where one is named, notes and reports within their size,
 * listings within ADMIN_INCIDENTS_LISTED_MAX. */
#define ID_MISSING "incident id missing"
#define NOTE_CHECK "incident id missing or note longer than 1024 bytes"

static const char *check_list(const Vigil__AdminRequest *req)
{
    const char *cursor = req->list_incidents->cursor;
    if (req->list_incidents->limit > ADMIN_INCIDENTS_LISTED_MAX)
        return "at most 1000 incidents per list";
    /* A cursor is an incident id, as the last page's next_cursor gave it. */
    if (cursor && cursor[0] &&
        (strspn(cursor, "0123456789") != strlen(cursor) || strlen(cursor) > 19 || cursor[0] == '0'))
        return "cursor is not an incident id";
    return NULL;
}

static const char *check_show(const Vigil__AdminRequest *req)
{
    return req->show_incident->id == 0 ? ID_MISSING : NULL;
}

static const char *check_ack(const Vigil__AdminRequest *req)
{
    return req->ack_incident->id == 0 || !vg_text_fits(req->ack_incident->note, VG_MAX_VALUE_LEN)
               ? NOTE_CHECK
               : NULL;
}

static const char *check_mitigate(const Vigil__AdminRequest *req)
{
    return req->mitigate_incident->id == 0 ||
                   !vg_text_fits(req->mitigate_incident->note, VG_MAX_VALUE_LEN)
               ? NOTE_CHECK
               : NULL;
}

static const char *check_resolve(const Vigil__AdminRequest *req)
{
    return req->resolve_incident->id == 0 ||
                   !vg_text_fits(req->resolve_incident->note, VG_MAX_VALUE_LEN)
               ? NOTE_CHECK
               : NULL;
}

static const char *check_put_report(const Vigil__AdminRequest *req)
{
    return req->put_incident_report->id == 0 ||
                   !vg_text_fits(req->put_incident_report->body, VG_MAX_REPORT_BYTES)
               ? "incident id missing or report longer than 256 KiB"
               : NULL;
}

static const char *check_get_report(const Vigil__AdminRequest *req)
{
    return req->get_incident_report->id == 0 ? ID_MISSING : NULL;
}

static const char *check_escalate(const Vigil__AdminRequest *req)
{
    return req->escalate_incident->id == 0 ? ID_MISSING : NULL;
}

static const char *check_notifications(const Vigil__AdminRequest *req)
{
    return req->list_notifications->id == 0 ? ID_MISSING : NULL;
}

static const char *check_tail(const Vigil__AdminRequest *req)
{
    return req->tail_incidents->limit > ADMIN_INCIDENTS_LISTED_MAX
               ? "at most 1000 events per request"
               : NULL;
}

const struct admin_command admin_incident_commands[] = {
    {VIGIL__ADMIN_REQUEST__BODY_LIST_INCIDENTS, ROLE_VIEWER, "listing incidents", check_list,
     list_incidents},
    {VIGIL__ADMIN_REQUEST__BODY_SHOW_INCIDENT, ROLE_VIEWER, "showing incidents", check_show,
     show_incident},
    {VIGIL__ADMIN_REQUEST__BODY_ACK_INCIDENT, ROLE_RESPONDER, "acknowledging incidents", check_ack,
     ack_incident},
    {VIGIL__ADMIN_REQUEST__BODY_MITIGATE_INCIDENT, ROLE_RESPONDER, "mitigating incidents",
     check_mitigate, mitigate_incident},
    {VIGIL__ADMIN_REQUEST__BODY_RESOLVE_INCIDENT, ROLE_RESPONDER, "resolving incidents",
     check_resolve, resolve_incident},
    {VIGIL__ADMIN_REQUEST__BODY_PUT_INCIDENT_REPORT, ROLE_RESPONDER, "writing incident reports",
     check_put_report, put_report},
    {VIGIL__ADMIN_REQUEST__BODY_GET_INCIDENT_REPORT, ROLE_VIEWER, "reading incident reports",
     check_get_report, get_report},
    {VIGIL__ADMIN_REQUEST__BODY_ESCALATE_INCIDENT, ROLE_RESPONDER, "escalating incidents",
     check_escalate, escalate_incident},
    {VIGIL__ADMIN_REQUEST__BODY_LIST_NOTIFICATIONS, ROLE_VIEWER, "listing notifications",
     check_notifications, list_notifications},
    {VIGIL__ADMIN_REQUEST__BODY_TAIL_INCIDENTS, ROLE_VIEWER, "following incidents", check_tail,
     tail_incidents},
    {0},
};

/* ---- for the other request files (admin_internal.h) ---- */

store_incidents_t *admin_incidents_store(admin_t *self)
{
    if (!self->incidents)
        self->incidents = store_incidents_new(store_conninfo(self->store));
    return self->incidents;
}

void admin_reply_incident(admin_t *self, struct reply *rep, uint64_t id)
{
    struct incident_lists *l = incidents_start(self, rep);
    if (l)
        show_one(self, id, false, l);
}
