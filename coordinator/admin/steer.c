/*
 * Operator requests that steer an incident by hand and speak for it (issue 18): open one, set
 * its severity up or down, add a private note, post a status update (public ones reach the
 * status page), and read the status page as it is served (`vigilctl status-page export`).
 * Each change is one store transaction with its audit row, like acknowledge and resolve.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_internal.h"
#include "escalate.h"
#include "log.h"
#include "paging_config.h"
#include "runbook.h"
#include "runbook_load.h"
#include "statuspage.h"
#include "timeutil.h"
#include "utf8.h"
#include "wire.h"

#define STEER_COMPONENTS_MAX 16

static bool text_ok(const char *s, size_t max, bool required)
{
    return s && (!required || s[0]) && vg_text_fits(s, max) && vg_utf8_valid(s);
}

/* The audit row for the change that follows; false (and the reply says why) when refused. */
static bool audit(admin_t *self, const struct operator* op, const char *action, uint64_t id,
                  const char *detail, struct reply *rep)
{
    char actor[160], subject[64];
    admin_actor(op, actor, sizeof(actor));
    snprintf(subject, sizeof(subject), "incident %" PRIu64, id);
    if (store_incidents_audit_on_commit(self->incidents, actor, action, subject, detail) < 0) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST, "%s",
                    "the text was refused (it must be UTF-8 of at most 1024 bytes)");
        return false;
    }
    return true;
}

static bool store_ready(admin_t *self, struct reply *rep)
{
    if (admin_incidents_store(self))
        return true;
    reply_out_of_memory(rep);
    return false;
}

/* A refusal common to the changes; false when r was 0. */
static bool refused(int r, uint64_t id, struct reply *rep)
{
    switch (r) {
    case 0:
        return false;
    case -ENOENT:
        reply_incident_not_found(rep, id);
        break;
    case -EINVAL:
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST, "%s",
                    "the request was refused (texts must be UTF-8 within their limits)");
        break;
    default:
        reply_store_unavailable(rep, true);
        break;
    }
    return true;
}

static void open_incident(admin_t *self, const struct operator* op, const Vigil__AdminRequest *req,
                          struct reply *rep)
{
    const Vigil__OpenIncident *o = req->open_incident;
    char actor[160], detail[STORE_INCIDENT_RUNBOOK_MAX + 16];
    uint64_t id = 0;
    if (!store_ready(self, rep))
        return;
    /* A runbook of the set in force (its policy and components apply); a coordinator running
     * without runbooks takes any id. */
    const struct rb_set *set = admin_runbooks(self);
    bool unknown = set && set->n > 0 && !runbooks_find(set, o->runbook);
    runbooks_release(&set);
    if (unknown) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_NOT_FOUND,
                    "no runbook %s in force (vigilctl opens incidents of a loaded runbook)",
                    o->runbook);
        return;
    }
    admin_actor(op, actor, sizeof(actor));
    snprintf(detail, sizeof(detail), "%s %s", o->runbook,
             incidents_severity_name((int)o->severity));
    /* The subject becomes "incident ID" inside the transaction (incidents_open_manual). */
    int r = store_incidents_audit_on_commit(self->incidents, actor, "incident.open", "incident",
                                            detail);
    struct incident_manual m = {.runbook = o->runbook,
                                .severity = (int)o->severity,
                                .title = o->title,
                                .node = o->node,
                                .actor = op->name};
    if (r == 0)
        r = incidents_open_manual(self->incidents, &m, vg_wall_ms(), &id);
    store_incidents_audit_clear(self->incidents);
    if (r == -EEXIST) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_CONFLICT, "%s",
                    "the same incident was opened in the same millisecond; try again");
        return;
    }
    if (refused(r, 0, rep))
        return;
    admin_reply_incident(self, rep, id);
}

/* When the new policy's level after `level` is due (incident_policy_change.next_due). */
static int64_t next_due(void *userdata, int level, int64_t started_at_ms, int repeats,
                        int64_t now_ms)
{
    return escalate_next_due(userdata, level, started_at_ms, repeats, now_ms);
}

static void set_severity(admin_t *self, const struct operator* op, const Vigil__AdminRequest *req,
                         struct reply *rep)
{
    const Vigil__SetIncidentSeverity *s = req->set_incident_severity;
    char detail[INCIDENT_NOTE_MAX + 32];
    int previous = 0;
    if (!store_ready(self, rep))
        return;
    /* The severity's route decides the policy unless the runbook named one (escalate.c). */
    struct store_incident *inc = calloc(1, sizeof(*inc));
    int r = inc ? incidents_show(self->incidents, s->id, inc, NULL, NULL) : -ENOMEM;
    struct incident_policy_change change = {.next_due = next_due};
    if (r == 0 && self->paging) {
        const struct paging_route *from = paging_route_for(self->paging, inc->severity);
        const struct paging_route *to = paging_route_for(self->paging, (int)s->severity);
        change.from = from && from->policy ? from->policy : NULL;
        change.to = to && to->policy ? to->policy : NULL;
        change.userdata = change.to ? (void *)paging_policy_find(self->paging, change.to) : NULL;
    }
    free(inc);
    snprintf(detail, sizeof(detail), "%s: %s", incidents_severity_name((int)s->severity), s->note);
    if (r == 0 && !audit(self, op, "incident.severity", s->id, detail, rep))
        return;
    if (r == 0)
        r = incidents_set_severity(self->incidents, s->id, (int)s->severity, op->name, s->note,
                                   change.from && change.to && change.userdata ? &change : NULL,
                                   vg_wall_ms(), &previous);
    store_incidents_audit_clear(self->incidents);
    if (r == -EALREADY) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_CONFLICT, "incident %" PRIu64 " is already %s",
                    s->id, incidents_severity_name((int)s->severity));
        return;
    }
    if (r == -EBUSY) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_CONFLICT,
                    "incident %" PRIu64 " is resolved: its severity is settled", s->id);
        return;
    }
    if (refused(r, s->id, rep))
        return;
    admin_reply_incident(self, rep, s->id);
}

static void add_note(admin_t *self, const struct operator* op, const Vigil__AdminRequest *req,
                     struct reply *rep)
{
    const Vigil__AddIncidentNote *n = req->add_incident_note;
    if (!store_ready(self, rep) || !audit(self, op, "incident.note", n->id, "", rep))
        return;
    int r = incidents_note(self->incidents, n->id, op->name, n->text, vg_wall_ms());
    store_incidents_audit_clear(self->incidents);
    if (refused(r, n->id, rep))
        return;
    admin_reply_incident(self, rep, n->id);
}

static const struct status_component_config *component(const struct status_page_config *cfg,
                                                       const char *name)
{
    for (size_t i = 0; cfg && i < cfg->components.count; i++) {
        const struct status_component_config *c =
            VG_CFG_ITEM(cfg->components, struct status_component_config, i);
        if (strcmp(c->name, name) == 0)
            return c;
    }
    return NULL;
}

/* The update's components as a JSON object: those given, or for a public update without any,
 * those mapped to the runbook (degraded_performance). NULL after saying why in the reply. */
static char *update_components(admin_t *self, const Vigil__PostStatusUpdate *u, const char *runbook,
                               struct reply *rep)
{
    json_t *map = json_object();
    for (size_t i = 0; map && i < u->n_components; i++) {
        const Vigil__ComponentStatus *cs = u->components[i];
        enum sp_status st;
        if (!component(self->status_page, cs->component)) {
            reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST,
                        "no component \"%.128s\" is configured (status_page.components in "
                        "coordinator.yaml)",
                        cs->component);
            json_decref(map);
            return NULL;
        }
        statuspage_status_parse(cs->status, &st); /* checked with the request */
        json_object_set_new(map, cs->component, json_string(statuspage_status_name(st)));
    }
    for (size_t i = 0; map && u->public_ && u->n_components == 0 && self->status_page &&
                       i < self->status_page->components.count;
         i++) {
        const struct status_component_config *c =
            VG_CFG_ITEM(self->status_page->components, struct status_component_config, i);
        for (size_t k = 0; k < c->runbooks.count; k++)
            if (strcmp(c->runbooks.items[k], runbook) == 0)
                json_object_set_new(map, c->name, json_string(statuspage_status_name(SP_DEGRADED)));
    }
    char *text = map ? json_dumps(map, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(map);
    if (!text)
        reply_out_of_memory(rep);
    return text;
}

/* The public name a first public update without --title gives: the incident's title, unless it
 * names a node of its scope (node names never reach the page). */
static void default_title(const struct store_incident *inc, char *out, size_t size)
{
    json_t *scope = json_loads(inc->scope_json, 0, NULL);
    size_t i;
    json_t *v;
    bool names_node = false;
    json_array_foreach(scope, i, v)
    {
        const char *node = json_string_value(v);
        if (node && node[0] && strstr(inc->title, node))
            names_node = true;
    }
    json_decref(scope);
    snprintf(out, size, "%s", names_node || !inc->title[0] ? STATUSPAGE_UNNAMED : inc->title);
}

static void post_update(admin_t *self, const struct operator* op, const Vigil__AdminRequest *req,
                        struct reply *rep)
{
    const Vigil__PostStatusUpdate *u = req->post_status_update;
    if (!store_ready(self, rep))
        return;
    /* A drill is practice: it never reaches the public page. */
    struct store_drill drill;
    if (u->public_ && store_drill_get(self->incidents, u->id, &drill) == 0) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_CONFLICT,
                    "incident %" PRIu64 " is a drill: it is never on the status page (post the "
                    "update without --public)",
                    u->id);
        return;
    }
    struct store_incident *inc = calloc(1, sizeof(*inc));
    int r = inc ? incidents_show(self->incidents, u->id, inc, NULL, NULL) : -ENOMEM;
    char *components = r == 0 ? update_components(self, u, inc->runbook, rep) : NULL;
    char title[STORE_INCIDENT_TITLE_MAX];
    bool published = true;
    snprintf(title, sizeof(title), "%s", u->title);
    if (r == 0 && components && u->public_ && !title[0])
        r = store_status_published(self->incidents, u->id, &published);
    if (r == 0 && components && !published)
        default_title(inc, title, sizeof(title));
    free(inc);
    if (r == 0 && !components)
        return;
    int64_t now = vg_wall_ms();
    struct incident_status_update su = {
        .text = u->text,
        .public = u->public_,
        .title = title,
        .components_json = components,
        /* Due now: the escalation sends it to those paged and the audiences (escalate.c). */
        .next_update_at_ms = now,
    };
    if (r == 0 &&
        !audit(self, op, "incident.update", u->id, u->public_ ? "public" : "private", rep)) {
        free(components);
        return;
    }
    if (r == 0)
        r = incidents_status_update(self->incidents, u->id, op->name, &su, now);
    store_incidents_audit_clear(self->incidents);
    free(components);
    if (refused(r, u->id, rep))
        return;
    admin_reply_incident(self, rep, u->id);
}

static void get_status_page(admin_t *self, const struct operator* op,
                            const Vigil__AdminRequest *req, struct reply *rep)
{
    (void)op;
    (void)req;
    static const struct status_page_config none = {.name = "Service status", .url = ""};
    const struct status_page_config *cfg = self->status_page ? self->status_page : &none;
    struct sp_page page;
    int64_t now = vg_wall_ms();
    if (!store_ready(self, rep))
        return;
    int r = statuspage_load(self->incidents, cfg, now, &page);
    if (r < 0) {
        reply_store_unavailable(rep, false);
        return;
    }
    rep->msg.status_page_html = reply_own(rep, statuspage_html(&page, now), free);
    rep->msg.status_summary_json = reply_own(rep, statuspage_summary_json(&page), free);
    rep->msg.status_status_json = reply_own(rep, statuspage_status_json(&page), free);
    statuspage_free(&page);
    if (!rep->msg.status_page_html || !rep->msg.status_summary_json || !rep->msg.status_status_json)
        reply_out_of_memory(rep);
}

/* ---- field checks ---- */

static const char *check_open(const Vigil__AdminRequest *req)
{
    const Vigil__OpenIncident *o = req->open_incident;
    if (!text_ok(o->runbook, STORE_INCIDENT_RUNBOOK_MAX - 1, true))
        return "a runbook id is required (at most 127 bytes)";
    if (o->severity < 1 || o->severity > 4)
        return "severity must be 1 (SEV1) to 4 (SEV4)";
    if (!text_ok(o->title, STORE_INCIDENT_TITLE_MAX - 1, true))
        return "a title is required (UTF-8, at most 255 bytes)";
    if (!text_ok(o->node, 200, false) || strpbrk(o->node, "/:"))
        return "node: at most 200 bytes, without '/' or ':'";
    return NULL;
}

static const char *check_severity(const Vigil__AdminRequest *req)
{
    const Vigil__SetIncidentSeverity *s = req->set_incident_severity;
    if (s->id == 0)
        return "incident id missing";
    if (s->severity < 1 || s->severity > 4)
        return "severity must be 1 (SEV1) to 4 (SEV4)";
    if (!text_ok(s->note, INCIDENT_NOTE_MAX, true))
        return "a note saying why is required (UTF-8, at most 1024 bytes)";
    return NULL;
}

static const char *check_note(const Vigil__AdminRequest *req)
{
    const Vigil__AddIncidentNote *n = req->add_incident_note;
    if (n->id == 0)
        return "incident id missing";
    return text_ok(n->text, INCIDENT_NOTE_MAX, true)
               ? NULL
               : "a note's text is required (UTF-8, at most 1024 bytes)";
}

static const char *check_update(const Vigil__AdminRequest *req)
{
    const Vigil__PostStatusUpdate *u = req->post_status_update;
    enum sp_status st;
    if (u->id == 0)
        return "incident id missing";
    if (!text_ok(u->text, INCIDENT_NOTE_MAX, true))
        return "an update's text is required (UTF-8, at most 1024 bytes)";
    if (!text_ok(u->title, STORE_INCIDENT_TITLE_MAX - 1, false))
        return "title: UTF-8, at most 255 bytes";
    if (u->n_components > STEER_COMPONENTS_MAX)
        return "at most 16 components per update";
    for (size_t i = 0; i < u->n_components; i++) {
        const Vigil__ComponentStatus *cs = u->components[i];
        if (!text_ok(cs->component, STATUSPAGE_NAME_MAX, true))
            return "a component name is required (at most 128 bytes)";
        if (statuspage_status_parse(cs->status, &st) < 0)
            return "a component's status is degraded, partial_outage or major_outage";
        for (size_t k = 0; k < i; k++)
            if (strcmp(u->components[k]->component, cs->component) == 0)
                return "a component is named twice";
    }
    return NULL;
}

const struct admin_command admin_steer_commands[] = {
    {VIGIL__ADMIN_REQUEST__BODY_OPEN_INCIDENT, ROLE_RESPONDER, "opening incidents", check_open,
     open_incident},
    {VIGIL__ADMIN_REQUEST__BODY_SET_INCIDENT_SEVERITY, ROLE_RESPONDER, "setting incident severity",
     check_severity, set_severity},
    {VIGIL__ADMIN_REQUEST__BODY_ADD_INCIDENT_NOTE, ROLE_RESPONDER, "adding incident notes",
     check_note, add_note},
    {VIGIL__ADMIN_REQUEST__BODY_POST_STATUS_UPDATE, ROLE_RESPONDER, "posting status updates",
     check_update, post_update},
    {VIGIL__ADMIN_REQUEST__BODY_GET_STATUS_PAGE, ROLE_VIEWER, "reading the status page", NULL,
     get_status_page},
    {0},
};
