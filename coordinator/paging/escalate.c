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
#include <time.h>

#include "hours.h"
#include "incidents.h"
#include "log.h"
#include "oncall.h"
#include "page_message.h"
#include "silence.h"
#include "utf8.h"

#define DUE_PER_PASS 100
#define MINUTE_MS (60 * INT64_C(1000))
#define RECIPIENTS_MAX 64   /* distinct (contact, channel) pairs one message goes to */
#define RESPONDERS_TEXT 512 /* "alice, bob" */
#define WARN_EVERY_MS (10 * INT64_C(1000))
#define GROUP_NAMES_MAX 20 /* nodes a grouped message names; the count says how many in all */
/* Their names (each at most a fingerprint long), ", "-separated, and ", and N more". */
#define NODES_TEXT (GROUP_NAMES_MAX * (STORE_INCIDENT_FINGERPRINT_MAX + 2) + 64)
#define HELD_PER_PASS 100 /* (person, channel) pairs summarised per pass */
#define SUMMARY_EVERY_MS 1000
/* A silenced level looks again this often, so that a silence ended by hand lets it page soon. */
#define SILENCE_RECHECK_MS (10 * INT64_C(1000))

struct escalate {
    const struct paging_config *paging;
    store_incidents_t *store;
    store_oncall_t *oncall;
    struct oncall_override *overrides; /* read once per pass */
    size_t noverrides;
    int64_t warned_ms;     /* the last "not handled" warning: a stuck incident is retried every
                              pass, and logged at most every WARN_EVERY_MS */
    uint64_t unlogged;     /* failures since that warning */
    int64_t summarised_ms; /* the last look for held pages to summarise */
    struct store_silence *silences; /* in force, read once per pass */
    size_t nsilences;
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
    free(self->silences);
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
    int added;                           /* notifications inserted */
    char held[RESPONDERS_TEXT];          /* who the cap held a page back from ("alice, bob") */
    const struct store_silence *silence; /* in force and matching: page no one; NULL = none */
    const char *action;                  /* NOTIFICATION_KIND_ACTION: the line about the action */
    /* A practice drill (020_drills.sql): messages marked [DRILL]; unless live, paged along the
       policy "drill" (paging.drills.audience) and no audience is told. NULL = a real one. */
    const struct store_drill *drill;
    /* The status update rule (status_update): the line after a message's headline. */
    const char *note;
};

/* At most max bytes of text into out (max + 1 bytes), cut at a character boundary: node names
 * and reasons are UTF-8, and the timeline refuses half a character. */
static const char *cut(const char *text, char *out, size_t max)
{
    size_t n = vg_utf8_cut(text, strlen(text), max);
    memcpy(out, text, n);
    out[n] = '\0';
    return out;
}

/* Per-node incidents are grouped; one across nodes is one incident (and one page) already. */
static bool per_node(const struct context *cx)
{
    const char *node = incidents_fingerprint_node(cx->inc->fingerprint);
    return node && node[0];
}

/* May lead or join a group now. A group formed before grouping was turned off (a reload) still
 * names its nodes and hands over: per_node alone decides those. */
static bool groupable(const struct context *cx)
{
    return cx->self->paging->grouping_wait_ms > 0 && per_node(cx) && !cx->esc->silenced;
}

/* The per-person cap: whether c has had max_pages_per_minute pages (and summaries) in the last
 * minute, so this one is held for the next summary. PagerDuty groups and throttles by itself,
 * and a held trigger would never be resolved there, so it is never held. */
static int over_cap(struct context *cx, const struct paging_contact *c, enum paging_channel ch,
                    bool *ret_held)
{
    int64_t cap = cx->self->paging->max_pages_per_minute;
    uint32_t recent = 0;
    *ret_held = false;
    if (cap <= 0 || ch == PAGING_CHANNEL_PAGERDUTY)
        return 0;
    int r = store_pages_recent(cx->self->store, c->name, cx->now_ms - MINUTE_MS, &recent);
    if (r == 0 && recent >= (uint64_t)cap) {
        *ret_held = true;
        size_t used = strlen(cx->held);
        if (!strstr(cx->held, c->name))
            snprintf(cx->held + used, sizeof(cx->held) - used, "%s%s", used ? ", " : "", c->name);
    }
    return r;
}

/* The group the incident leads, for its messages: how many nodes it has open and the first
 * names. *ret_total 0 and *ret_names NULL when it leads no group. */
static int group_of(struct context *cx, uint32_t *ret_total, char **ret_names)
{
    *ret_total = 0;
    *ret_names = NULL;
    if (!per_node(cx) || cx->esc->group_leader)
        return 0;
    return store_page_group_nodes(cx->self->store, cx->inc->id, 0, GROUP_NAMES_MAX, ret_total,
                                  ret_names);
}

/* "web-1, web-2" followed by ", and 180 more" when the group has more than the store named
 * (GROUP_NAMES_MAX; node names may hold commas, so they are not counted in the text). */
static void nodes_text(const char *names, uint32_t total, char *buf, size_t len)
{
    if (total > GROUP_NAMES_MAX)
        snprintf(buf, len, "%s, and %" PRIu32 " more", names ? names : "", total - GROUP_NAMES_MAX);
    else
        snprintf(buf, len, "%s", names ? names : "");
}

/* Inserts one message of kind to every recipient, about nodes_total nodes (a group; <= 1 =
 * the incident's own scope). PagerDuty hears only of pages (trigger), acknowledgements and
 * resolutions. A page to a contact over the per-person cap is stored held (over_cap). */
static int send_to_nodes(struct context *cx, enum notification_kind kind, int level, int round,
                         const struct recipients *to, const char *responders, uint32_t nodes_total,
                         const char *nodes)
{
    struct page_message msg;
    bool automation_on = true;
    char *pending = NULL;
    if (store_incidents_automation(cx->self->store, cx->inc->id, &automation_on, &pending) < 0)
        pending = NULL; /* the page goes out without it */
    char *steps = page_message_steps(cx->rb, automation_on, pending);
    free(pending);
    struct page_message_in in = {
        .nodes_total = nodes_total,
        .nodes = nodes,
        .inc = cx->inc,
        .kind = kind,
        .level = level,
        .responders = responders,
        .runbook_link = cx->rb && cx->rb->doc ? cx->rb->doc : "",
        .steps = steps,
        .now_ms = cx->now_ms,
        .action = cx->action,
        .drill = cx->drill != NULL,
        .note = cx->note,
    };
    const char *event = kind == NOTIFICATION_KIND_PAGE           ? "trigger"
                        : kind == NOTIFICATION_KIND_ACKNOWLEDGED ? "acknowledge"
                        : kind == NOTIFICATION_KIND_RESOLVED     ? "resolve"
                                                                 : NULL;
    const struct paging_contact *decided[RECIPIENTS_MAX];
    bool decided_held[RECIPIENTS_MAX] = {false};
    size_t ndecided = 0;
    int r = page_message_build(&in, &msg);
    for (size_t i = 0; r == 0 && i < to->n; i++) {
        enum paging_channel ch = to->r[i].channel;
        bool pd = ch == PAGING_CHANNEL_PAGERDUTY, held = false;
        if (pd && !event)
            continue;
        if (kind == NOTIFICATION_KIND_PAGE && !pd) {
            /* One decision per person and message, whatever channels reach them. */
            size_t k = 0;
            while (k < ndecided && decided[k] != to->r[i].contact)
                k++;
            if (k == ndecided) {
                r = over_cap(cx, to->r[i].contact, ch, &decided_held[k]);
                decided[ndecided++] = to->r[i].contact;
            }
            held = decided_held[k];
        }
        if (r < 0)
            break;
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
            .held = held,
        };
        bool added = false;
        r = store_notification_add(cx->self->store, &n, &added);
        cx->added += added;
    }
    page_message_free(&msg);
    free(steps);
    return r;
}

/* The same, naming the group the incident leads (if any). */
static int send_to(struct context *cx, enum notification_kind kind, int level, int round,
                   const struct recipients *to, const char *responders)
{
    uint32_t total = 0;
    char *names = NULL, nodes[NODES_TEXT];
    int r = group_of(cx, &total, &names);
    if (r < 0)
        return r;
    nodes_text(names, total, nodes, sizeof(nodes));
    free(names);
    return send_to_nodes(cx, kind, level, round, to, responders, total, nodes);
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
    /* A leader that took over its group (hand_over) counts those its predecessors paged. */
    return store_notifications_list_group(cx->self->store, cx->inc->id, add_paged, &p);
}

/* The severity's audiences and the announce list (told, never escalated). */
static void audiences(struct context *cx, struct recipients *to)
{
    char names[RESPONDERS_TEXT] = "", missing[RESPONDERS_TEXT] = "";
    if (cx->drill && !cx->drill->live)
        return; /* a drill reaches its audience only */
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

/* The silence on the timeline, once: from then on the incident is out of any page group. */
static int silence_note(struct context *cx)
{
    const struct store_silence *s = cx->silence;
    char text[INCIDENT_NOTE_MAX], until[40];
    cx->esc->silenced = true;
    time_t secs = (time_t)(s->ends_at_ms / 1000);
    struct tm tm;
    if (!gmtime_r(&secs, &tm) || strftime(until, sizeof(until), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(until, sizeof(until), "-");
    char value[201], reason[401];
    snprintf(text, sizeof(text),
             "silenced by silence %" PRIu64 " (%s %s until %s: %s): nobody paged", s->id,
             store_silence_matcher_name(s->matcher), cut(s->value, value, 200), until,
             cut(s->reason, reason, 400));
    vg_log(VG_LOG_INFO, "incident=%" PRIu64 " silence=%" PRIu64 " nobody paged", cx->inc->id,
           s->id);
    return timeline(cx, INCIDENT_EVENT_NOTE, INCIDENT_ACTOR_VIGIL, text);
}

/* A level falls due while a silence matches: nobody is paged, the timeline says why (once),
 * and the level is looked at again every SILENCE_RECHECK_MS, so it pages once the silence ends
 * (or is ended by hand) while the incident is still unacknowledged. */
static int silenced(struct context *cx)
{
    const struct store_silence *s = cx->silence;
    struct store_escalation *esc = cx->esc;
    int64_t next = cx->now_ms + SILENCE_RECHECK_MS;
    esc->next_level_at_ms = s->ends_at_ms < next ? s->ends_at_ms : next;
    return esc->silenced ? 0 : silence_note(cx);
}

/*
 * Business hours (hours.h): the level that falls due now waits for its window when it has one
 * (its own `hours`, or its schedules') and the incident's severity is one hours may hold. Then
 * the policy's timeline moves to the window's start, so the levels after it keep their gaps from
 * it instead of all falling due at once; the timeline says so, once per hold. *ret_held false:
 * page it now (in the window, by hand, a drill, or a window that cannot be computed).
 */
static int hold_for_hours(struct context *cx, const struct paging_policy *policy, size_t level,
                          bool wrapping, bool *ret_held)
{
    struct store_escalation *esc = cx->esc;
    const struct paging_config *paging = cx->self->paging;
    const struct paging_level *lv = paging_policy_level(policy, level);
    const struct paging_hours *hours = paging_level_hours(paging, lv);
    int64_t open_at = 0;
    *ret_held = false;
    if (!hours || esc->escalate_now || cx->drill || !paging_hours_apply(paging, cx->inc->severity))
        return 0;
    int r = hours_next_open(hours, cx->now_ms, &open_at);
    if (r < 0) {
        vg_log(VG_LOG_WARN,
               "incident=%" PRIu64 " business hours \"%s\" cannot be computed (%s): paging now",
               cx->inc->id, hours->name, strerror(-r));
        return 0;
    }
    if (open_at <= cx->now_ms)
        return 0;
    *ret_held = true;
    bool told = esc->next_level_at_ms == open_at;
    esc->next_level_at_ms = open_at;
    if (!wrapping) /* a wrapping round restarts its timeline when it pages anyway */
        esc->started_at_ms = open_at - lv->delay_ms;
    if (told)
        return 0;
    char text[INCIDENT_NOTE_MAX], when[HOURS_TEXT_MAX], targets[300] = "";
    for (size_t i = 0; i < lv->targets.count; i++) {
        size_t used = strlen(targets);
        snprintf(targets + used, sizeof(targets) - used, "%s%s", used ? ", " : "",
                 lv->targets.items[i]);
    }
    hours_local_text(hours, open_at, when, sizeof(when));
    snprintf(text, sizeof(text),
             "paging level %zu of policy %s (%s) held until %s (business hours %s)", level + 1,
             policy->name, targets, when, hours->name);
    vg_log(VG_LOG_INFO, "incident=%" PRIu64 " %s", cx->inc->id, text);
    return timeline(cx, INCIDENT_EVENT_NOTE, INCIDENT_ACTOR_VIGIL, text);
}

/* The next level of the policy (wrapping for `repeat`), paged now. */
static int page_next_level(struct context *cx)
{
    struct store_escalation *esc = cx->esc;
    const struct paging_policy *policy = paging_policy_find(cx->self->paging, esc->policy);
    size_t nlevels = policy ? policy->levels.count : 0;
    char text[INCIDENT_NOTE_MAX];

    if (cx->silence && !esc->escalate_now) /* by hand it pages: a person asked for it */
        return silenced(cx);
    if (nlevels == 0) {
        esc->next_level_at_ms = 0;
        snprintf(text, sizeof(text), "policy %s is not configured: nobody can be paged",
                 esc->policy);
        return timeline(cx, INCIDENT_EVENT_ESCALATED, INCIDENT_ACTOR_VIGIL, text);
    }
    size_t level = esc->level < 0 ? 0 : (size_t)esc->level + 1;
    bool wrapping = level >= nlevels, held = false;
    if (wrapping && esc->repeats >= policy->repeat) {
        esc->next_level_at_ms = 0;
        return timeline(cx, INCIDENT_EVENT_ESCALATED,
                        esc->escalated_by[0] ? esc->escalated_by : "vigil",
                        "every level of the policy has been paged; nobody further");
    }
    int hr = hold_for_hours(cx, policy, wrapping ? 0 : level, wrapping, &held);
    if (hr < 0 || held)
        return hr;
    if (wrapping) {
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
    cx->held[0] = '\0';
    int r = send_to(cx, NOTIFICATION_KIND_PAGE, (int)level, esc->round, &to, names);
    const char *actor = esc->escalated_by[0] ? esc->escalated_by : INCIDENT_ACTOR_VIGIL;
    /* The page named every node of the group open now: later ones are news for the thread. */
    if (esc->group_leader == 0) {
        esc->group_told_at_ms = cx->now_ms;
        esc->group_next_at_ms = 0;
    }
    /* A long list of names is cut in the timeline text; vigilctl notifications lists them all. */
    if (snprintf(text, sizeof(text),
                 "level %zu of policy %s (%" PRId64 " min): paged %s%s%s%s%s%s%s", level + 1,
                 esc->policy, lv->delay_ms / MINUTE_MS, names[0] ? names : "nobody",
                 missing[0] ? " (" : "", missing, missing[0] ? ")" : "",
                 cx->held[0] ? " (held back for the next summary, over the per-person cap: " : "",
                 cx->held, cx->held[0] ? ")" : "") >= (int)sizeof(text))
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

/* The status update rule's timer (status_update): the owner's reminder comes a sixth of the
 * interval before the interval ends (5 of 30 min), so an interval's first stop is the reminder. */
static int64_t update_reminder_lead(const struct paging_config *paging)
{
    return paging->status_update_interval_ms / 6;
}

static int64_t update_first_due(const struct paging_config *paging)
{
    return paging->status_update_interval_ms - update_reminder_lead(paging);
}

/* A new escalation for an open incident without one. */
static void adopt(struct context *cx)
{
    struct store_escalation *esc = cx->esc;
    memset(esc, 0, sizeof(*esc));
    esc->incident_id = cx->inc->id;
    snprintf(esc->policy, sizeof(esc->policy), "%s",
             cx->drill && !cx->drill->live ? PAGING_POLICY_DRILL
                                           : policy_name(cx->self, cx->rb, cx->inc->severity));
    esc->level = -1;
    esc->started_at_ms = cx->inc->opened_at_ms;
    const struct paging_policy *policy = paging_policy_find(cx->self->paging, esc->policy);
    const struct paging_level *first = policy ? paging_policy_level(policy, 0) : NULL;
    esc->next_level_at_ms = first ? esc->started_at_ms + first->delay_ms : cx->now_ms;
    /* A storm's first page waits for the runbook's other nodes (Alertmanager's group_wait). */
    int64_t grouped_at = esc->started_at_ms + cx->self->paging->grouping_wait_ms;
    if (groupable(cx) && esc->next_level_at_ms < grouped_at)
        esc->next_level_at_ms = grouped_at;
    if (esc->next_level_at_ms == 0)
        esc->next_level_at_ms = 1; /* 0 means "not set" */
    esc->next_update_at_ms = cx->inc->opened_at_ms + update_first_due(cx->self->paging);
    esc->deadline_at_ms = cx->inc->response_due_ms;
}

/* Joins the open group of the incident's runbook when there is one: the incident then pages
 * nobody, and its leader's thread tells those paged (at most every grouping.interval). */
static int try_join(struct context *cx, bool *ret_joined)
{
    struct store_escalation *esc = cx->esc, lead = {0};
    uint64_t leader = 0;
    char text[INCIDENT_NOTE_MAX];
    *ret_joined = false;
    if (!groupable(cx))
        return 0;
    int r = store_page_group_find(cx->self->store, cx->inc->runbook, esc->policy, cx->inc->severity,
                                  cx->inc->id, &leader);
    if (r == -ENOENT)
        return 0;
    if (r == 0)
        r = store_escalation_get(cx->self->store, leader, true, &lead);
    if (r < 0)
        return r;
    if (lead.level >= 0 && lead.group_next_at_ms == 0) { /* paged already: news for the thread */
        int64_t next = lead.group_told_at_ms + cx->self->paging->grouping_interval_ms;
        lead.group_next_at_ms = next > cx->now_ms ? next : cx->now_ms;
        r = store_escalation_put(cx->self->store, &lead);
    }
    esc->group_leader = leader;
    esc->level = -1;
    esc->started_at_ms = cx->now_ms; /* when it joined: a member's started_at times nothing */
    esc->next_level_at_ms = esc->next_update_at_ms = esc->deadline_at_ms = 0;
    esc->group_told_at_ms = esc->group_next_at_ms = 0;
    snprintf(text, sizeof(text),
             "paged as one group with incident %" PRIu64 " (nodes of runbook %s within %" PRId64
             " s page once)",
             leader, cx->inc->runbook, cx->self->paging->grouping_wait_ms / 1000);
    if (r == 0)
        r = timeline(cx, INCIDENT_EVENT_NOTE, INCIDENT_ACTOR_VIGIL, text);
    if (r == 0) {
        char node[201];
        snprintf(text, sizeof(text), "node %s joined the group (incident %" PRIu64 ")",
                 cut(incidents_fingerprint_node(cx->inc->fingerprint), node, 200), cx->inc->id);
        r = store_incident_event(cx->self->store, leader, cx->now_ms, INCIDENT_EVENT_NOTE,
                                 INCIDENT_ACTOR_VIGIL, text, NULL);
    }
    *ret_joined = r == 0;
    return r;
}

/* The leader resolved while members are still open: the oldest open member leads from here,
 * with the group's escalation as it stands (level, timers, acknowledgement), so the storm is
 * neither paged again nor forgotten. *ret_handed false when no member is open. */
static int hand_over(struct context *cx, bool *ret_handed)
{
    struct store_escalation *esc = cx->esc, heir = {0};
    uint64_t heir_id = 0;
    char text[INCIDENT_NOTE_MAX];
    *ret_handed = false;
    int r = store_page_group_successor(cx->self->store, cx->inc->id, &heir_id);
    if (r == -ENOENT)
        return 0;
    if (r == 0)
        r = store_escalation_get(cx->self->store, heir_id, true, &heir);
    if (r == 0)
        r = store_page_group_move(cx->self->store, cx->inc->id, heir_id);
    if (r < 0)
        return r;
    uint64_t failures_seen = heir.failures_seen;
    heir = *esc;
    heir.incident_id = heir_id;
    heir.failures_seen = failures_seen;
    heir.group_leader = 0;
    heir.resolved_told = false;
    heir.report_due_at_ms = 0;
    r = store_escalation_put(cx->self->store, &heir);
    esc->group_leader = heir_id;
    esc->resolved_told = true; /* told with the group's resolution, by the last to resolve */
    esc->next_level_at_ms = esc->next_update_at_ms = esc->deadline_at_ms = 0;
    esc->group_told_at_ms = esc->group_next_at_ms = 0;
    esc->escalate_now = false;
    snprintf(text, sizeof(text), "the group's paging continues with incident %" PRIu64, heir_id);
    if (r == 0)
        r = timeline(cx, INCIDENT_EVENT_NOTE, INCIDENT_ACTOR_VIGIL, text);
    if (r == 0) {
        snprintf(text, sizeof(text),
                 "leads the group of runbook %s now (incident %" PRIu64 " resolved)",
                 cx->inc->runbook, cx->inc->id);
        r = store_incident_event(cx->self->store, heir_id, cx->now_ms, INCIDENT_EVENT_NOTE,
                                 INCIDENT_ACTOR_VIGIL, text, NULL);
    }
    *ret_handed = r == 0;
    return r;
}

/* A grouped message's round (unique per incident, kind, level, round, target, channel): the
 * seconds since its escalation started; messages are at least grouping.interval (>= 1 s) apart. */
static int grouped_round(const struct context *cx)
{
    int64_t s = (cx->now_ms - cx->esc->started_at_ms) / 1000;
    return s < 0 ? 0 : s > INT32_MAX ? INT32_MAX : (int)s;
}

/* The nodes that joined the group since the last page or grouped message, told to those
 * paged in one message. */
/* One automatic action that ended, told to those paged (and the round is its command's n, so
 * each is told once: the notifications' unique key). */
static int tell_action(const struct store_incident_action *a, void *userdata)
{
    struct context *cx = userdata;
    struct recipients to = {.n = 0};
    char names[RESPONDERS_TEXT] = "", line[512];
    if (a->has_exit)
        snprintf(line, sizeof(line), "Vigil ran %.128s on %.200s (%.64s): %s, exit %d", a->action,
                 a->node, a->id, a->state, a->exit_status);
    else
        snprintf(line, sizeof(line), "Vigil ran %.128s on %.200s (%.64s): %s", a->action, a->node,
                 a->id, a->state);
    int r = paged_so_far(cx, &to, names, sizeof(names));
    cx->action = line;
    if (r == 0 && to.n > 0)
        r = send_to(cx, NOTIFICATION_KIND_ACTION, -1, (int)a->n, &to, names);
    cx->action = NULL;
    return r;
}

/* The automatic actions of the incident that ended and were not told yet (docs/remediation.md):
 * those paged hear what Vigil did and how it ended, before a resolved message. */
static int tell_actions(struct context *cx)
{
    return store_incident_actions_untold(cx->self->store, cx->inc->id, tell_action, cx);
}

static int tell_joined(struct context *cx)
{
    struct store_escalation *esc = cx->esc;
    struct recipients to = {.n = 0};
    char names[RESPONDERS_TEXT] = "", nodes[NODES_TEXT], text[INCIDENT_NOTE_MAX];
    char *joined_names = NULL;
    uint32_t joined = 0;
    int64_t since = esc->group_told_at_ms > 0 ? esc->group_told_at_ms : 1;
    int r = store_page_group_nodes(cx->self->store, cx->inc->id, since, GROUP_NAMES_MAX, &joined,
                                   &joined_names);
    if (r == 0 && joined > 0) {
        nodes_text(joined_names, joined, nodes, sizeof(nodes));
        r = paged_so_far(cx, &to, names, sizeof(names));
        if (r == 0)
            r = send_to_nodes(cx, NOTIFICATION_KIND_GROUPED, -1, grouped_round(cx), &to, names,
                              joined, nodes);
        char shown[601];
        snprintf(text, sizeof(text), "%" PRIu32 " more node%s joined: %s; told %.300s", joined,
                 joined == 1 ? "" : "s", cut(nodes, shown, 600), names[0] ? names : "nobody");
        if (r == 0)
            r = timeline(cx, INCIDENT_EVENT_NOTE, INCIDENT_ACTOR_VIGIL, text);
    }
    free(joined_names);
    esc->group_told_at_ms = cx->now_ms;
    return r;
}

/* A member pages nobody: its leader does. It leaves the group when someone escalates it by
 * hand, and looks for a group again when it reopens. *ret_done false: handle it as any other. */
static int handle_member(struct context *cx, bool *ret_done)
{
    struct store_escalation *esc = cx->esc;
    bool open = incident_state_open(cx->inc->state), joined = false;
    *ret_done = true;
    if (!open) {
        esc->resolved_told = true; /* its own resolution is on its timeline; nobody is told */
        return 0;
    }
    if (esc->resolved_told || esc->escalate_now) {
        esc->group_leader = 0;
        *ret_done = false;
        if (esc->escalate_now)
            return 0;
        int r = try_join(cx, &joined); /* reopened */
        if (r == 0 && joined)
            esc->resolved_told = false;
        *ret_done = joined;
        return r;
    }
    /* Grown more severe than its group (a symptom raised it): paged on its own, so a SEV1 does
     * not hide behind a SEV3 storm's page. */
    struct store_incident *lead = calloc(1, sizeof(*lead));
    if (!lead)
        return -ENOMEM;
    int r = store_incident_get(cx->self->store, esc->group_leader, false, lead);
    if (r == 0 && cx->inc->severity < lead->severity) {
        char text[INCIDENT_NOTE_MAX];
        snprintf(text, sizeof(text),
                 "%s now, more severe than its group (incident %" PRIu64 ", %s): paged on its own",
                 incidents_severity_name(cx->inc->severity), lead->id,
                 incidents_severity_name(lead->severity));
        adopt(cx); /* out of the group, from the first level of its severity's policy */
        r = timeline(cx, INCIDENT_EVENT_NOTE, INCIDENT_ACTOR_VIGIL, text);
        *ret_done = false;
    }
    free(lead);
    return r == -ENOENT ? 0 : r;
}

/*
 * The status update rule (issue 18, docs/status-page.md). Each interval has two stops: the
 * owner's reminder (update_reminder_lead before its end) and its end. `vigilctl update` pulls the
 * timer to the update's time (incidents_status_update; the earliest untold one's), so updates
 * posted since the timer was set are operators': each goes to those paged and the audiences in
 * the operator's words, and a new interval starts. Otherwise, at the first stop the incident's
 * owner (whoever acknowledged it last, when that operator is a paging contact; else those paged)
 * is reminded to post one; at the second the automatic update says that no human update was
 * given.
 */
struct human_updates {
    struct context *cx;
    const struct recipients *to;
    const char *names;
    size_t told;
};

static int tell_human_update(const struct store_status_posted *u, void *userdata)
{
    struct human_updates *h = userdata;
    char *note = NULL;
    if (asprintf(&note, "%s (by %s)", u->body, u->author) < 0)
        return -ENOMEM;
    h->cx->note = note;
    int r = h->cx->silence
                ? 0
                : send_to(h->cx, NOTIFICATION_KIND_HUMAN_UPDATE, -1, (int)u->id, h->to, h->names);
    h->cx->note = NULL;
    free(note);
    h->told++;
    return r;
}

/* The owner, or (none reachable) those paged: reminded to post an update. */
static int remind_owner(struct context *cx, const struct recipients *paged, const char *names,
                        const char *every)
{
    struct recipients *owner = calloc(1, sizeof(*owner));
    char who[128] = "", *note = NULL;
    int r = owner ? store_incident_owner(cx->self->store, cx->inc->id, who, sizeof(who)) : -ENOMEM;
    if (r == 0 && who[0]) {
        char target[160], owner_names[RESPONDERS_TEXT] = "", missing[RESPONDERS_TEXT] = "";
        struct paging_target t;
        snprintf(target, sizeof(target), "contact:%s", who);
        /* Only an operator who is also a paging contact can be reached. */
        if (paging_target_resolve(cx->self->paging, target, &t) == 0)
            add_target(cx->self, target, cx->now_ms, owner, owner_names, sizeof(owner_names),
                       missing, sizeof(missing));
    }
    if (r == 0 && asprintf(&note,
                           "no status update was posted in the last %s: post one with "
                           "'vigilctl update %" PRIu64 " TEXT [--public]', or the automatic "
                           "update will say that none was given",
                           every, cx->inc->id) < 0) {
        note = NULL;
        r = -ENOMEM;
    }
    cx->note = note;
    if (r == 0)
        r = send_to(cx, NOTIFICATION_KIND_REMINDER, -1, cx->esc->updates_sent + 1,
                    owner->n ? owner : paged, names);
    cx->note = NULL;
    free(note);
    free(owner);
    return r;
}

static int status_update(struct context *cx)
{
    struct store_escalation *esc = cx->esc;
    const struct paging_config *paging = cx->self->paging;
    int64_t interval = paging->status_update_interval_ms, lead = update_reminder_lead(paging);
    struct recipients *to = calloc(2, sizeof(*to)), *everyone = to + 1;
    char names[RESPONDERS_TEXT] = "", every[32], since[32];
    char *note = NULL;
    int r = to ? paged_so_far(cx, to, names, sizeof(names)) : -ENOMEM;
    if (r == 0) {
        *everyone = *to;
        audiences(cx, everyone);
    }
    struct human_updates human = {cx, everyone, names, 0};
    if (r == 0)
        r = store_status_since(cx->self->store, cx->inc->id, esc->next_update_at_ms,
                               tell_human_update, &human);
    if (interval % 60000 == 0)
        snprintf(every, sizeof(every), "%" PRId64 " min", interval / 60000);
    else
        snprintf(every, sizeof(every), "%" PRId64 " s", interval / 1000);
    int64_t reminded_after = interval - lead;
    if (reminded_after % 60000 == 0)
        snprintf(since, sizeof(since), "%" PRId64 " min", reminded_after / 60000);
    else
        snprintf(since, sizeof(since), "%.1f s", (double)reminded_after / 1000);
    bool remind = human.told == 0 && !esc->update_reminded;
    if (r == 0 && remind && !cx->silence)
        r = remind_owner(cx, to, names, since);
    if (r == 0 && human.told == 0 && !remind && !cx->silence) {
        if (asprintf(&note, "no human update was given in the last %s", every) < 0)
            note = NULL;
        cx->note = note;
        r = note ? send_to(cx, NOTIFICATION_KIND_UPDATE, -1, esc->updates_sent + 1, everyone, names)
                 : -ENOMEM;
        cx->note = NULL;
        if (r == 0)
            r = timeline(cx, INCIDENT_EVENT_STATUS_UPDATE, INCIDENT_ACTOR_VIGIL,
                         "no human update was given: the automatic status update went to those "
                         "paged and the audiences (the owner had been reminded)");
    }
    free(note);
    free(to);
    if (r < 0)
        return r;
    int64_t next;
    if (human.told > 0) { /* a new interval from now */
        esc->update_reminded = false;
        esc->next_update_at_ms = cx->now_ms + update_first_due(paging);
        return 0;
    }
    if (remind) { /* the interval's end next */
        esc->update_reminded = true;
        next = esc->next_update_at_ms + lead;
        esc->next_update_at_ms = next > cx->now_ms ? next : cx->now_ms + lead;
        return 0;
    }
    esc->updates_sent++;
    esc->update_reminded = false;
    next = esc->next_update_at_ms + update_first_due(paging);
    /* Late after a restart: one update now, the next a whole interval later. */
    esc->next_update_at_ms = next > cx->now_ms ? next : cx->now_ms + update_first_due(paging);
    return 0;
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
        esc->next_update_at_ms = cx->now_ms + update_first_due(cx->self->paging);
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
    if (r == 0 && open && esc->next_update_at_ms && esc->next_update_at_ms <= cx->now_ms)
        r = status_update(cx);
    if (r == 0 && open && esc->group_next_at_ms && esc->group_next_at_ms <= cx->now_ms) {
        if (esc->level >= 0 && !cx->silence)
            r = tell_joined(cx);
        esc->group_next_at_ms = 0;
    }
    if (r == 0 && esc->level >= 0 && !cx->silence && !esc->resolved_told)
        r = tell_actions(cx);
    if (r == 0 && !open && !esc->resolved_told && esc->group_leader == 0 && per_node(cx)) {
        bool handed = false;
        r = hand_over(cx, &handed);
        if (r < 0 || handed)
            return r;
    }
    if (r == 0 && !open && !esc->resolved_told) {
        to.n = 0;
        r = paged_so_far(cx, &to, names, sizeof(names));
        if (!cx->silence) /* those paged before the silence still hear the end of it */
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

/* A node silence does not hide a group's page about its other nodes (as for an incident across
 * nodes, silence.h): it holds a leader back only while the leader's node is the group's only
 * one open. */
static int node_silence_of_group(struct context *cx)
{
    uint32_t open_nodes = 0;
    char *names = NULL;
    if (!cx->silence || cx->silence->matcher != STORE_SILENCE_NODE || !per_node(cx))
        return 0;
    int r = store_page_group_nodes(cx->self->store, cx->inc->id, 0, 0, &open_nodes, &names);
    free(names);
    if (r == 0 && open_nodes > 1)
        cx->silence = NULL;
    return r;
}

/* The address a ticket row shows ("github:owner/repo", "jira:OPS"): the notifier sends it to
 * the tracker its own configuration names. */
static void ticket_address(const struct paging_config *paging, char *buf, size_t len)
{
    if (strcmp(paging->tickets_kind, "github") == 0)
        snprintf(buf, len, "github:%s/%s", paging->tickets_owner, paging->tickets_repo);
    else
        snprintf(buf, len, "%s:%s", paging->tickets_kind, paging->tickets_project);
}

/* "Standard bug tracking process" (paging.tickets): one ticket row for the incident, inserted
 * once by the notifications' unique key; the notifier files it and stores its link (notify.h). */
static int file_ticket(struct context *cx)
{
    struct page_message msg;
    char address[300];
    bool added = false;
    struct page_message_in in = {
        .inc = cx->inc,
        .kind = NOTIFICATION_KIND_AUDIENCE,
        .level = -1,
        .responders = "",
        .runbook_link = cx->rb && cx->rb->doc ? cx->rb->doc : "",
        .now_ms = cx->now_ms,
    };
    int r = page_message_build(&in, &msg);
    if (r < 0)
        return r;
    ticket_address(cx->self->paging, address, sizeof(address));
    struct store_notification n = {
        .incident_id = cx->inc->id,
        .kind = NOTIFICATION_KIND_AUDIENCE,
        .level = -1,
        .round = 0,
        .target = PAGING_TICKET_TARGET,
        .channel = PAGING_CHANNEL_TICKET,
        .address = address,
        .event = "",
        .subject = msg.subject,
        .body = msg.body,
        .payload_json = msg.payload_json,
        .created_at_ms = cx->now_ms,
    };
    r = store_notification_add(cx->self->store, &n, &added);
    cx->added += added;
    page_message_free(&msg);
    if (r == 0 && added)
        vg_log(VG_LOG_INFO, "incident=%" PRIu64 " ticket queued tracker=%s", cx->inc->id, address);
    return r;
}

static int process_one(escalate_t *self, const struct rb_set *runbooks, uint64_t id, int64_t now_ms)
{
    struct store_incident *inc = calloc(1, sizeof(*inc));
    struct store_escalation esc;
    struct context cx = {.self = self, .inc = inc, .esc = &esc, .now_ms = now_ms};
    int r = inc ? store_incidents_begin(self->store) : -ENOMEM;
    if (r < 0) {
        free(inc);
        return r;
    }
    r = store_incident_get(self->store, id, true, inc);
    struct store_drill drill;
    if (r == 0) {
        /* Read in the transaction that pages: a drill is never paged as a real incident. */
        int d = store_drill_get(self->store, id, &drill);
        if (d == 0)
            cx.drill = &drill;
        else if (d != -ENOENT)
            r = d;
    }
    if (r == 0) {
        cx.rb = runbook_of(runbooks, inc->runbook);
        /* A drill is practice on purpose: no silence holds it back. */
        cx.silence = cx.drill ? NULL : silence_match(self->silences, self->nsilences, inc, cx.rb);
        r = store_escalation_get(self->store, id, true, &esc);
        if (r == -ENOENT && !incident_state_open(inc->state)) {
            /* Resolved between the look-up and the lock, never paged: nothing to do. */
            store_incidents_rollback(self->store);
            free(inc);
            return 0;
        }
        if (r == 0 && esc.group_leader == 0)
            r = node_silence_of_group(&cx);
        if (r == -ENOENT) {
            bool joined = false;
            adopt(&cx);
            r = cx.silence ? silence_note(&cx) : 0;
            if (r == 0)
                r = try_join(&cx, &joined);
            /* Told at once: the severity's audiences and the announce list (a group's once;
             * a silenced incident's never). */
            struct recipients to = {.n = 0};
            if (r == 0 && !joined && !cx.silence) {
                audiences(&cx, &to);
                r = send_to(&cx, NOTIFICATION_KIND_AUDIENCE, -1, 0, &to, "");
            }
            if (r == 0 && !joined && !cx.silence && !cx.drill &&
                paging_ticket_wanted(self->paging, inc->severity))
                r = file_ticket(&cx);
        }
    }
    bool done = false;
    if (r == 0 && esc.group_leader)
        r = handle_member(&cx, &done);
    if (r == 0 && !done)
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

struct summarise {
    escalate_t *self;
    int64_t now_ms;
    int added;
};

/* One person's held pages on one channel, told in one summary once the cap lets one more
 * message through (the summary counts towards the cap). */
static int summarise_one(const struct store_held_pages *held, void *userdata)
{
    struct summarise *sm = userdata;
    escalate_t *self = sm->self;
    int64_t cap = self->paging->max_pages_per_minute;
    uint32_t recent = 0;
    struct page_message msg;
    bool added = false;
    int r = store_pages_recent(self->store, held->target, sm->now_ms - MINUTE_MS, &recent);
    if (r < 0 || (cap > 0 && recent >= (uint64_t)cap))
        return r;
    r = page_message_summary(held->count, cap, held->subjects, &msg);
    if (r < 0)
        return r;
    struct store_notification n = {
        .incident_id = held->newest_incident_id,
        .kind = NOTIFICATION_KIND_SUMMARY,
        .level = -1,
        .round = (int)(held->newest_id & INT32_MAX), /* one summary per newest held row */
        .target = held->target,
        .channel = held->channel,
        .address = held->address,
        .event = "",
        .subject = msg.subject,
        .body = msg.body,
        .payload_json = msg.payload_json,
        .created_at_ms = sm->now_ms,
    };
    r = store_notification_add(self->store, &n, &added);
    if (r == 0)
        r = store_pages_summarised(self->store, held->target, held->channel, held->newest_id);
    if (r == 0) {
        sm->added += added;
        vg_log(VG_LOG_INFO, "pages summarised target=%s channel=%s held=%" PRIu32, held->target,
               paging_channel_name(held->channel), held->count);
    }
    page_message_free(&msg);
    return r;
}

/* Held pages into summaries, in one transaction, at most once a second. */
static int summarise_held(escalate_t *self, int64_t now_ms)
{
    struct summarise sm = {self, now_ms, 0};
    if (now_ms - self->summarised_ms < SUMMARY_EVERY_MS)
        return 0;
    self->summarised_ms = now_ms;
    int r = store_incidents_begin(self->store);
    if (r < 0)
        return r;
    r = store_pages_held(self->store, HELD_PER_PASS, summarise_one, &sm);
    if (r == 0)
        r = store_incidents_commit(self->store);
    if (r < 0) {
        store_incidents_rollback(self->store);
        return r;
    }
    return sm.added;
}

int escalate_tick(escalate_t *self, const struct rb_set *runbooks, int64_t now_ms)
{
    uint64_t ids[DUE_PER_PASS];
    size_t n = 0;
    if (!self || !paging_enabled(self->paging))
        return 0;
    int summaries = summarise_held(self, now_ms);
    if (summaries < 0)
        vg_log(VG_LOG_DEBUG, "held pages not summarised: %s", strerror(-summaries));
    int r = store_escalations_due(self->store, now_ms, ids, DUE_PER_PASS, &n);
    if (r < 0 || n == 0)
        return r < 0 ? r : summaries > 0 ? summaries : 0;
    /* Overrides change rarely but must count from the moment they are written. */
    free(self->overrides);
    self->overrides = NULL;
    self->noverrides = 0;
    if (store_oncall_overrides(self->oncall, now_ms, &self->overrides, &self->noverrides) < 0)
        vg_log(VG_LOG_WARN, "on-call overrides unreadable: paging by the rotation alone");
    /* Unreadable silences must not page what an operator silenced: the pass waits for them. */
    free(self->silences);
    self->silences = NULL;
    self->nsilences = 0;
    r = store_silences_list(self->store, false, now_ms, STORE_SILENCES_LISTED_MAX, &self->silences,
                            &self->nsilences);
    if (r < 0)
        return r;
    int added = summaries > 0 ? summaries : 0;
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
