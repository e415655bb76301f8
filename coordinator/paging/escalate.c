/*
 * The escalation engine (escalate.h). Each pass asks the store which incidents have something
 * due, then handles each one in its own transaction: lock the incident and its escalation row,
 * decide, insert notifications and timeline events, move the timers, commit.
 */
#include "escalate.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "incidents.h"
#include "log.h"
#include "oncall.h"
#include "page_message.h"

#define DUE_PER_PASS 100
#define MINUTE_MS (60 * INT64_C(1000))
#define RECIPIENTS_MAX 64   /* distinct (contact, channel) pairs one message goes to */
#define RESPONDERS_TEXT 512 /* "alice, bob" */
#define WARN_EVERY_MS (10 * INT64_C(1000))

struct escalate {
    const struct paging_config *paging;
    store_incidents_t *store;
    store_oncall_t *oncall;
    struct oncall_override *overrides; /* read once per pass */
    size_t noverrides;
    int64_t warned_ms; /* the last "not handled" warning: a stuck incident is retried every
                          pass, and logged at most every WARN_EVERY_MS */
    uint64_t unlogged; /* failures since that warning */
};

/* One message's recipients: each (contact, channel) once. */
struct recipient {
    const struct paging_contact *contact;
    enum paging_channel channel;
};
struct recipients {
    struct recipient r[RECIPIENTS_MAX];
    size_t n;
};

escalate_t *escalate_new(const struct paging_config *paging, const char *conninfo)
{
    escalate_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->paging = paging;
    self->store = store_incidents_new(conninfo);
    self->oncall = store_oncall_new(conninfo);
    if (!self->store || !self->oncall)
        escalate_destroy(&self);
    return self;
}

void escalate_destroy(escalate_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    escalate_t *self = *self_p;
    store_incidents_destroy(&self->store);
    store_oncall_destroy(&self->oncall);
    free(self->overrides);
    free(self);
    *self_p = NULL;
}

static const struct rb_runbook *runbook_of(const struct rb_set *set, const char *id)
{
    for (size_t i = 0; set && i < set->n; i++)
        if (strcmp(set->runbooks[i].id, id) == 0)
            return &set->runbooks[i];
    return NULL;
}

/* The runbook's own policy when it names one, else the severity's route. */
static const char *policy_name(const escalate_t *self, const struct rb_runbook *rb, int severity)
{
    if (rb && rb->policy && rb->policy[0])
        return rb->policy;
    const struct paging_route *route = paging_route_for(self->paging, severity);
    return route && route->policy && route->policy[0] ? route->policy : PAGING_POLICY_DEFAULT;
}

static void add_recipient(struct recipients *to, const struct paging_contact *c,
                          enum paging_channel ch)
{
    for (size_t i = 0; i < to->n; i++)
        if (to->r[i].contact == c && to->r[i].channel == ch)
            return;
    if (to->n < RECIPIENTS_MAX)
        to->r[to->n++] = (struct recipient){c, ch};
}

/* Every usable channel of the contact a target names at now_ms ("schedule:X": whoever is on
 * call). The name of who it reached is appended to names; a schedule with nobody on call is
 * reported in missing. */
static void add_target(escalate_t *self, const char *text, int64_t now_ms, struct recipients *to,
                       char *names, size_t names_len, char *missing, size_t missing_len)
{
    struct paging_target t;
    const struct paging_contact *c = NULL;
    if (paging_target_resolve(self->paging, text, &t) < 0)
        return; /* refused at load: only a reload race gets here */
    if (t.kind == PAGING_TARGET_CONTACT) {
        c = t.contact;
    } else {
        struct oncall_result who;
        if (oncall_who(t.schedule, self->overrides, self->noverrides, now_ms, &who) == 0 &&
            who.user)
            c = paging_contact_find(self->paging, who.user);
    }
    if (!c) {
        size_t used = strlen(missing);
        snprintf(missing + used, missing_len - used, "%s%s has nobody on call", used ? "; " : "",
                 text);
        return;
    }
    for (int ch = 0; ch < PAGING_CHANNELS; ch++)
        if (paging_channel_usable(self->paging, c, (enum paging_channel)ch))
            add_recipient(to, c, (enum paging_channel)ch);
    size_t used = strlen(names);
    if (!strstr(names, c->name))
        snprintf(names + used, names_len - used, "%s%s", used ? ", " : "", c->name);
}

/* The contacts already paged for the incident (any level, any round), for updates and the
 * resolution; names gets "alice, bob". */
struct paged {
    escalate_t *self;
    struct recipients *to;
    char *names;
    size_t names_len;
};

static int add_paged(const struct store_notification_row *row, void *userdata)
{
    struct paged *p = userdata;
    if (row->kind != NOTIFICATION_KIND_PAGE)
        return 0;
    const struct paging_contact *c = paging_contact_find(p->self->paging, row->target);
    if (!c)
        return 0; /* removed from the configuration since */
    add_recipient(p->to, c, row->channel);
    size_t used = strlen(p->names);
    if (!strstr(p->names, c->name))
        snprintf(p->names + used, p->names_len - used, "%s%s", used ? ", " : "", c->name);
    return 0;
}

struct context {
    escalate_t *self;
    struct store_incident *inc;
    struct store_escalation *esc;
    const struct rb_runbook *rb;
    int64_t now_ms;
    int added; /* notifications inserted */
};

/* Inserts one message of kind to every recipient. PagerDuty hears only of pages (trigger),
 * acknowledgements and resolutions. */
static int send_to(struct context *cx, enum notification_kind kind, int level, int round,
                   const struct recipients *to, const char *responders)
{
    struct page_message msg;
    bool automation_on = true;
    char *pending = NULL;
    if (store_incidents_automation(cx->self->store, cx->inc->id, &automation_on, &pending) < 0)
        pending = NULL; /* the page goes out without it */
    char *steps = page_message_steps(cx->rb, automation_on, pending);
    free(pending);
    struct page_message_in in = {
        .inc = cx->inc,
        .kind = kind,
        .level = level,
        .responders = responders,
        .runbook_link = cx->rb && cx->rb->doc ? cx->rb->doc : "",
        .steps = steps,
        .now_ms = cx->now_ms,
    };
    const char *event = kind == NOTIFICATION_KIND_PAGE           ? "trigger"
                        : kind == NOTIFICATION_KIND_ACKNOWLEDGED ? "acknowledge"
                        : kind == NOTIFICATION_KIND_RESOLVED     ? "resolve"
                                                                 : NULL;
    int r = page_message_build(&in, &msg);
    for (size_t i = 0; r == 0 && i < to->n; i++) {
        enum paging_channel ch = to->r[i].channel;
        bool pd = ch == PAGING_CHANNEL_PAGERDUTY;
        if (pd && !event)
            continue;
        struct store_notification n = {
            .incident_id = cx->inc->id,
            .kind = kind,
            .level = level,
            .round = round,
            .target = to->r[i].contact->name,
            .channel = ch,
            .address = paging_contact_address(to->r[i].contact, ch),
            .event = pd ? event : "",
            .subject = msg.subject,
            .body = msg.body,
            .payload_json = msg.payload_json,
            .created_at_ms = cx->now_ms,
        };
        bool added = false;
        r = store_notification_add(cx->self->store, &n, &added);
        cx->added += added;
    }
    page_message_free(&msg);
    free(steps);
    return r;
}

static int timeline(struct context *cx, enum incident_event_kind kind, const char *actor,
                    const char *text)
{
    return store_incident_event(cx->self->store, cx->inc->id, cx->now_ms, kind, actor, text, NULL);
}

/* Who was paged so far, into to and names. */
static int paged_so_far(struct context *cx, struct recipients *to, char *names, size_t len)
{
    struct paged p = {cx->self, to, names, len};
    names[0] = '\0';
    return store_notifications_list(cx->self->store, cx->inc->id, add_paged, &p);
}

/* The severity's audiences and the announce list (told, never escalated). */
static void audiences(struct context *cx, struct recipients *to)
{
    char names[RESPONDERS_TEXT] = "", missing[RESPONDERS_TEXT] = "";
    const struct paging_route *route = paging_route_for(cx->self->paging, cx->inc->severity);
    for (size_t i = 0; route && i < route->also.count; i++)
        add_target(cx->self, route->also.items[i], cx->now_ms, to, names, sizeof(names), missing,
                   sizeof(missing));
    const struct vg_cfg_strings *announce = &cx->self->paging->announce;
    for (size_t i = 0; i < announce->count; i++)
        add_target(cx->self, announce->items[i], cx->now_ms, to, names, sizeof(names), missing,
                   sizeof(missing));
}

int64_t escalate_next_due(const struct paging_policy *policy, int level, int64_t started_at_ms,
                          int repeats, int64_t now_ms)
{
    size_t nlevels = policy ? policy->levels.count : 0;
    size_t next_index = level < 0 ? 0 : (size_t)level + 1;
    const struct paging_level *next = policy ? paging_policy_level(policy, next_index) : NULL;
    if (next)
        return started_at_ms + next->delay_ms;
    if (nlevels == 0 || level < 0 || repeats >= policy->repeat)
        return 0;
    /* The policy runs again one last gap after its last level (at least a minute). */
    int64_t gap = nlevels > 1 ? paging_policy_level(policy, nlevels - 1)->delay_ms -
                                    paging_policy_level(policy, nlevels - 2)->delay_ms
                              : 0;
    return now_ms + (gap > MINUTE_MS ? gap : MINUTE_MS);
}

/* The next level of the policy (wrapping for `repeat`), paged now. */
static int page_next_level(struct context *cx)
{
    struct store_escalation *esc = cx->esc;
    const struct paging_policy *policy = paging_policy_find(cx->self->paging, esc->policy);
    size_t nlevels = policy ? policy->levels.count : 0;
    char text[INCIDENT_NOTE_MAX];

    if (nlevels == 0) {
        esc->next_level_at_ms = 0;
        snprintf(text, sizeof(text), "policy %s is not configured: nobody can be paged",
                 esc->policy);
        return timeline(cx, INCIDENT_EVENT_ESCALATED, INCIDENT_ACTOR_VIGIL, text);
    }
    size_t level = esc->level < 0 ? 0 : (size_t)esc->level + 1;
    if (level >= nlevels) {
        if (esc->repeats >= policy->repeat) {
            esc->next_level_at_ms = 0;
            return timeline(cx, INCIDENT_EVENT_ESCALATED,
                            esc->escalated_by[0] ? esc->escalated_by : "vigil",
                            "every level of the policy has been paged; nobody further");
        }
        esc->repeats++;
        esc->round++;
        level = 0;
        esc->started_at_ms = cx->now_ms - paging_policy_level(policy, 0)->delay_ms;
    }
    const struct paging_level *lv = paging_policy_level(policy, level);
    struct recipients to = {.n = 0};
    char names[RESPONDERS_TEXT] = "", missing[RESPONDERS_TEXT] = "";
    for (size_t i = 0; i < lv->targets.count; i++)
        add_target(cx->self, lv->targets.items[i], cx->now_ms, &to, names, sizeof(names), missing,
                   sizeof(missing));
    int r = send_to(cx, NOTIFICATION_KIND_PAGE, (int)level, esc->round, &to, names);
    const char *actor = esc->escalated_by[0] ? esc->escalated_by : INCIDENT_ACTOR_VIGIL;
    /* A long list of names is cut in the timeline text; vigilctl notifications lists them all. */
    if (snprintf(text, sizeof(text), "level %zu of policy %s (%" PRId64 " min): paged %s%s%s%s",
                 level + 1, esc->policy, lv->delay_ms / MINUTE_MS, names[0] ? names : "nobody",
                 missing[0] ? " (" : "", missing, missing[0] ? ")" : "") >= (int)sizeof(text))
        vg_log(VG_LOG_DEBUG, "incident=%" PRIu64 " escalation text cut", cx->inc->id);
    if (r == 0)
        r = timeline(cx, INCIDENT_EVENT_ESCALATED, actor, text);
    esc->level = (int)level;
    esc->escalate_now = false;
    esc->escalated_by[0] = '\0';
    esc->next_level_at_ms =
        escalate_next_due(policy, esc->level, esc->started_at_ms, esc->repeats, cx->now_ms);
    vg_log(VG_LOG_INFO, "incident=%" PRIu64 " %s", cx->inc->id, text);
    return r;
}

/* A failed notification: on the timeline; a failed page of the current level pages the next
 * level now rather than at its time. */
static int on_failed(const struct store_notification_row *row, void *userdata)
{
    struct context *cx = userdata;
    char text[INCIDENT_NOTE_MAX], code[24] = "";
    if (row->last_code)
        snprintf(code, sizeof(code), "code %d: ", row->last_code);
    snprintf(text, sizeof(text), "%s to %s by %s failed after %d attempt%s (%s%.300s)",
             notification_kind_name(row->kind), row->target, paging_channel_name(row->channel),
             row->attempts, row->attempts == 1 ? "" : "s", code, row->last_error);
    int r = timeline(cx, INCIDENT_EVENT_NOTIFY_FAILED, INCIDENT_ACTOR_VIGIL, text);
    if (row->kind == NOTIFICATION_KIND_PAGE && row->level == cx->esc->level &&
        row->round == cx->esc->round && cx->inc->state == INCIDENT_STATE_DETECTED)
        cx->esc->next_level_at_ms = cx->now_ms;
    if (row->id > cx->esc->failures_seen)
        cx->esc->failures_seen = row->id;
    vg_log(VG_LOG_WARN, "incident=%" PRIu64 " %s", cx->inc->id, text);
    return r;
}

/* A new escalation for an open incident without one. */
static void adopt(struct context *cx)
{
    struct store_escalation *esc = cx->esc;
    memset(esc, 0, sizeof(*esc));
    esc->incident_id = cx->inc->id;
    snprintf(esc->policy, sizeof(esc->policy), "%s",
             policy_name(cx->self, cx->rb, cx->inc->severity));
    esc->level = -1;
    esc->started_at_ms = cx->inc->opened_at_ms;
    const struct paging_policy *policy = paging_policy_find(cx->self->paging, esc->policy);
    const struct paging_level *first = policy ? paging_policy_level(policy, 0) : NULL;
    esc->next_level_at_ms = first ? esc->started_at_ms + first->delay_ms : cx->now_ms;
    if (esc->next_level_at_ms == 0)
        esc->next_level_at_ms = 1; /* 0 means "not set" */
    esc->next_update_at_ms = cx->inc->opened_at_ms + cx->self->paging->status_update_interval_ms;
    esc->deadline_at_ms = cx->inc->response_due_ms;
}

static int handle(struct context *cx)
{
    struct store_escalation *esc = cx->esc;
    enum incident_state state = cx->inc->state;
    bool open = incident_state_open(state), detected = state == INCIDENT_STATE_DETECTED;
    struct recipients to = {.n = 0};
    char names[RESPONDERS_TEXT] = "";
    int r = 0;

    if (open && esc->resolved_told) { /* reopened: page again from the first level */
        int round = esc->round + 1;
        char policy[sizeof(esc->policy)];
        memcpy(policy, esc->policy, sizeof(policy));
        adopt(cx);
        memcpy(esc->policy, policy, sizeof(policy));
        esc->round = round;
        esc->started_at_ms = cx->now_ms;
        const struct paging_policy *p = paging_policy_find(cx->self->paging, esc->policy);
        const struct paging_level *first = p ? paging_policy_level(p, 0) : NULL;
        esc->next_level_at_ms = cx->now_ms + (first ? first->delay_ms : 0);
        esc->next_update_at_ms = cx->now_ms + cx->self->paging->status_update_interval_ms;
    }
    r = store_notifications_failed_after(cx->self->store, cx->inc->id, esc->failures_seen,
                                         on_failed, cx);
    if (r == 0 && detected && esc->deadline_at_ms && esc->deadline_at_ms <= cx->now_ms) {
        char text[160];
        snprintf(text, sizeof(text), "not acknowledged by the %s response deadline: escalating",
                 incidents_severity_name(cx->inc->severity));
        r = timeline(cx, INCIDENT_EVENT_DEADLINE_MISSED, INCIDENT_ACTOR_VIGIL, text);
        esc->deadline_at_ms = 0;
        if (esc->level >= 0) /* the first level is paged at its own time anyway */
            esc->next_level_at_ms = cx->now_ms;
    }
    if (r == 0 && open &&
        (esc->escalate_now ||
         (detected && esc->next_level_at_ms && esc->next_level_at_ms <= cx->now_ms)))
        r = page_next_level(cx);
    if (r == 0 && open && !detected && !esc->acked_told && esc->level >= 0) {
        r = paged_so_far(cx, &to, names, sizeof(names));
        if (r == 0)
            r = send_to(cx, NOTIFICATION_KIND_ACKNOWLEDGED, -1, esc->round, &to, names);
        esc->acked_told = true;
        esc->next_level_at_ms = 0;
        esc->deadline_at_ms = 0;
    }
    if (r == 0 && open && esc->next_update_at_ms && esc->next_update_at_ms <= cx->now_ms) {
        to.n = 0;
        r = paged_so_far(cx, &to, names, sizeof(names));
        audiences(cx, &to);
        if (r == 0)
            r = send_to(cx, NOTIFICATION_KIND_UPDATE, -1, esc->updates_sent + 1, &to, names);
        if (r == 0)
            r = timeline(cx, INCIDENT_EVENT_STATUS_UPDATE, INCIDENT_ACTOR_VIGIL,
                         "status update sent to those paged and the audiences");
        esc->updates_sent++;
        int64_t next = esc->next_update_at_ms + cx->self->paging->status_update_interval_ms;
        /* Late after a restart: one update now, the next a whole interval later. */
        esc->next_update_at_ms =
            next > cx->now_ms ? next : cx->now_ms + cx->self->paging->status_update_interval_ms;
    }
    if (r == 0 && !open && !esc->resolved_told) {
        to.n = 0;
        r = paged_so_far(cx, &to, names, sizeof(names));
        audiences(cx, &to);
        if (r == 0)
            r = send_to(cx, NOTIFICATION_KIND_RESOLVED, -1, esc->round, &to, names);
        esc->resolved_told = true;
        esc->next_level_at_ms = esc->next_update_at_ms = esc->deadline_at_ms = 0;
        esc->escalate_now = false;
        esc->report_due_at_ms = state == INCIDENT_STATE_RESOLVED
                                    ? cx->inc->resolved_at_ms + cx->self->paging->report_due_ms
                                    : 0;
    }
    if (r == 0 && state == INCIDENT_STATE_RESOLVED && esc->report_due_at_ms &&
        esc->report_due_at_ms <= cx->now_ms) {
        to.n = 0;
        r = paged_so_far(cx, &to, names, sizeof(names));
        if (r == 0)
            r = send_to(cx, NOTIFICATION_KIND_REPORT_DUE, -1, esc->round, &to, names);
        if (r == 0)
            r = timeline(cx, INCIDENT_EVENT_REPORT_DUE, INCIDENT_ACTOR_VIGIL,
                         "the post-incident report is due: vigilctl report ID --file FILE");
        esc->report_due_at_ms = 0;
    }
    if (state == INCIDENT_STATE_CLOSED)
        esc->report_due_at_ms = 0;
    return r;
}

static int process_one(escalate_t *self, const struct rb_set *runbooks, uint64_t id, int64_t now_ms)
{
    struct store_incident *inc = calloc(1, sizeof(*inc));
    struct store_escalation esc;
    struct context cx = {self, inc, &esc, NULL, now_ms, 0};
    int r = inc ? store_incidents_begin(self->store) : -ENOMEM;
    if (r < 0) {
        free(inc);
        return r;
    }
    r = store_incident_get(self->store, id, true, inc);
    if (r == 0) {
        cx.rb = runbook_of(runbooks, inc->runbook);
        r = store_escalation_get(self->store, id, true, &esc);
        if (r == -ENOENT && !incident_state_open(inc->state)) {
            /* Resolved between the look-up and the lock, never paged: nothing to do. */
            store_incidents_rollback(self->store);
            free(inc);
            return 0;
        }
        if (r == -ENOENT) {
            adopt(&cx);
            /* Told at once: the severity's audiences and the announce list. */
            struct recipients to = {.n = 0};
            audiences(&cx, &to);
            r = send_to(&cx, NOTIFICATION_KIND_AUDIENCE, -1, 0, &to, "");
        }
    }
    if (r == 0)
        r = handle(&cx);
    if (r == 0)
        r = store_escalation_put(self->store, &esc);
    if (r == 0)
        r = store_incidents_commit(self->store);
    if (r < 0) {
        store_incidents_rollback(self->store);
        if (now_ms - self->warned_ms >= WARN_EVERY_MS) {
            vg_log(VG_LOG_WARN,
                   "escalation of incident=%" PRIu64
                   " not handled: %s (retried every pass; %" PRIu64
                   " more failures since the last warning)",
                   id, strerror(-r), self->unlogged);
            self->warned_ms = now_ms;
            self->unlogged = 0;
        } else {
            self->unlogged++;
        }
    }
    free(inc);
    return r < 0 ? r : cx.added;
}

int escalate_tick(escalate_t *self, const struct rb_set *runbooks, int64_t now_ms)
{
    uint64_t ids[DUE_PER_PASS];
    size_t n = 0;
    if (!self || !paging_enabled(self->paging))
        return 0;
    int r = store_escalations_due(self->store, now_ms, ids, DUE_PER_PASS, &n);
    if (r < 0 || n == 0)
        return r;
    /* Overrides change rarely but must count from the moment they are written. */
    free(self->overrides);
    self->overrides = NULL;
    self->noverrides = 0;
    if (store_oncall_overrides(self->oncall, now_ms, &self->overrides, &self->noverrides) < 0)
        vg_log(VG_LOG_WARN, "on-call overrides unreadable: paging by the rotation alone");
    int added = 0;
    for (size_t i = 0; i < n; i++) {
        int one = process_one(self, runbooks, ids[i], now_ms);
        if (one > 0)
            added += one;
    }
    return added;
}

int escalate_request(store_incidents_t *store, uint64_t incident_id, const char *actor)
{
    struct store_incident *inc = calloc(1, sizeof(*inc));
    struct store_escalation esc;
    int r = inc ? store_incidents_begin(store) : -ENOMEM;
    if (r < 0) {
        free(inc);
        return r;
    }
    r = store_incident_get(store, incident_id, true, inc);
    if (r == 0 && !incident_state_open(inc->state))
        r = -EALREADY;
    if (r == 0) {
        r = store_escalation_get(store, incident_id, true, &esc);
        if (r == -ENOENT) /* not adopted yet (within a second of opening) */
            r = -EINPROGRESS;
    }
    if (r == 0) {
        esc.escalate_now = true;
        snprintf(esc.escalated_by, sizeof(esc.escalated_by), "%s", actor);
        r = store_escalation_put(store, &esc);
    }
    if (r == 0)
        r = store_incidents_commit(store);
    if (r < 0)
        store_incidents_rollback(store);
    free(inc);
    return r;
}
