/*
 * The incident lifecycle on top of store_incidents: every call is one transaction, so a
 * symptom is either fully recorded (incident row and timeline event) or not at all.
 */
#include "incidents.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "timeutil.h"
#include "wire.h"

#define MINUTE_MS (INT64_C(60) * 1000)
#define HOUR_MS (60 * MINUTE_MS)
#define DAY_MS (24 * HOUR_MS)
#define BUSINESS_DAY_START_HOUR 9 /* UTC */

int64_t incidents_response_due(int severity, int64_t from_ms)
{
    switch (severity) {
    case 1:
        return from_ms + 15 * MINUTE_MS;
    case 2:
        return from_ms + HOUR_MS;
    case 3:
        return from_ms + 4 * HOUR_MS;
    default:
        break;
    }
    /* The next day, skipping Saturday and Sunday, at the start of the business day. */
    int64_t day = from_ms / DAY_MS + 1;
    for (;;) {
        time_t secs = (time_t)(day * (DAY_MS / 1000));
        struct tm tm;
        if (!gmtime_r(&secs, &tm))
            return from_ms + DAY_MS;
        if (tm.tm_wday != 0 && tm.tm_wday != 6)
            break;
        day++;
    }
    return day * DAY_MS + BUSINESS_DAY_START_HOUR * HOUR_MS;
}

int incidents_fingerprint(const char *runbook, const char *node, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s/%s", runbook ? runbook : "", node ? node : "");
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

const char *incidents_fingerprint_node(const char *fingerprint)
{
    const char *slash = fingerprint ? strchr(fingerprint, '/') : NULL;
    return slash ? slash + 1 : NULL;
}

const char *incidents_severity_name(int severity)
{
    static const char *const names[] = {"SEV1", "SEV2", "SEV3", "SEV4"};
    return severity >= 1 && severity <= 4 ? names[severity - 1] : "SEV?";
}

static const char *symptom_state_name(enum incident_symptom_state state)
{
    switch (state) {
    case INCIDENT_SYMPTOM_CRITICAL:
        return "critical";
    case INCIDENT_SYMPTOM_WARNING:
        return "warning";
    default:
        return "ok";
    }
}

static bool text_ok(const char *text, size_t max)
{
    return !text || strnlen(text, max + 1) <= max;
}

static bool symptom_valid(const struct incident_symptom *s)
{
    return s->fingerprint && s->fingerprint[0] &&
           strlen(s->fingerprint) < STORE_INCIDENT_FINGERPRINT_MAX && s->runbook && s->runbook[0] &&
           strlen(s->runbook) < STORE_INCIDENT_RUNBOOK_MAX &&
           text_ok(s->title, STORE_INCIDENT_TITLE_MAX - 1) &&
           text_ok(s->reason, INCIDENT_NOTE_MAX) && s->severity >= 1 && s->severity <= 4 &&
           s->reopen_window_ms >= 0 && (s->n_nodes == 0 || s->nodes);
}

/* The symptom event's data: {"state", "severity", "nodes", "nodes_firing", "nodes_total"}.
 * Caller frees. */
static char *symptom_data(const struct incident_symptom *s)
{
    json_t *nodes = json_array();
    for (size_t i = 0; nodes && i < s->n_nodes; i++) {
        if (s->nodes[i])
            json_array_append_new(nodes, json_string(s->nodes[i]));
    }
    json_t *data =
        json_pack("{s:s, s:s, s:o*, s:I, s:I}", "state", symptom_state_name(s->state), "severity",
                  incidents_severity_name(s->severity), "nodes", nodes, "nodes_firing",
                  (json_int_t)s->nodes_firing, "nodes_total", (json_int_t)s->nodes_total);
    if (data)
        json_object_set_new(data, "runbook", json_string(s->runbook));
    if (data && s->symptom)
        json_object_set_new(data, "symptom", json_string(s->symptom));
    char *text = data ? json_dumps(data, JSON_COMPACT) : NULL;
    json_decref(data);
    return text;
}

/* Adds the symptom's nodes to the incident's scope (a JSON array of names, each once). When the
 * result would not fit, the scope stays as it was: the timeline still names every node. */
static void scope_merge(struct store_incident *inc, const struct incident_symptom *s)
{
    json_t *scope = json_loads(inc->scope_json, 0, NULL);
    if (!json_is_array(scope)) {
        json_decref(scope);
        scope = json_array();
    }
    for (size_t i = 0; scope && i < s->n_nodes; i++) {
        bool present = false;
        size_t j;
        json_t *v;
        if (!s->nodes[i])
            continue;
        json_array_foreach(scope, j, v)
        {
            if (json_is_string(v) && strcmp(json_string_value(v), s->nodes[i]) == 0)
                present = true;
        }
        if (!present)
            json_array_append_new(scope, json_string(s->nodes[i]));
    }
    char *text = scope ? json_dumps(scope, JSON_COMPACT) : NULL;
    if (text && strlen(text) < sizeof(inc->scope_json))
        snprintf(inc->scope_json, sizeof(inc->scope_json), "%s", text);
    free(text);
    json_decref(scope);
}

static bool is_open(const struct store_incident *inc)
{
    return incident_state_open(inc->state);
}

static int open_incident(store_incidents_t *store, const struct incident_symptom *s,
                         const char *data, struct incident_result *res)
{
    struct store_incident *inc = calloc(1, sizeof(*inc));
    if (!inc)
        return -ENOMEM;
    snprintf(inc->fingerprint, sizeof(inc->fingerprint), "%s", s->fingerprint);
    snprintf(inc->runbook, sizeof(inc->runbook), "%s", s->runbook);
    snprintf(inc->title, sizeof(inc->title), "%s", s->title && s->title[0] ? s->title : s->runbook);
    inc->state = INCIDENT_STATE_DETECTED;
    snprintf(inc->scope_json, sizeof(inc->scope_json), "[]");
    scope_merge(inc, s);
    inc->severity = s->severity;
    inc->opened_at_ms = s->at_ms;
    inc->updated_at_ms = s->at_ms;
    inc->response_due_ms = incidents_response_due(s->severity, s->at_ms);
    uint64_t id = 0;
    int r = store_incident_insert(store, inc, &id);
    if (r == 0)
        r = store_incident_event(store, id, s->at_ms, INCIDENT_EVENT_OPENED, INCIDENT_ACTOR_VIGIL,
                                 s->reason ? s->reason : "", data);
    if (r == 0) {
        res->id = id;
        res->outcome = INCIDENT_OPENED;
        res->severity = inc->severity;
        res->response_due_ms = inc->response_due_ms;
    }
    free(inc);
    return r;
}

/* A critical symptom with no incident of its own, explained by an open incident of a runbook it
 * depends on: recorded on that root incident, not opened (and paged) separately. 1 when
 * attached, 0 when no root incident is open, or a negative errno. */
static int attach_to_root(store_incidents_t *store, const struct incident_symptom *s,
                          const char *data, struct incident_result *res)
{
    struct store_incident *root = calloc(1, sizeof(*root));
    int r = root ? -ENOENT : -ENOMEM;

    for (size_t i = 0; i < s->n_depends && r == -ENOENT; i++)
        r = store_incident_find_open_runbook(store, s->depends_on[i], root);
    if (r == 0) {
        char text[INCIDENT_NOTE_MAX + 320];
        snprintf(text, sizeof(text), "%s (runbook %s) %s", s->title ? s->title : "", s->runbook,
                 s->reason ? s->reason : "");
        r = store_incident_event(store, root->id, s->at_ms, INCIDENT_EVENT_ATTACHED,
                                 INCIDENT_ACTOR_VIGIL, text, data);
    }
    if (r == 0) {
        res->id = root->id;
        res->outcome = INCIDENT_ATTACHED;
        res->severity = root->severity;
        res->response_due_ms = root->response_due_ms;
        r = 1;
    }
    free(root);
    return r == -ENOENT ? 0 : r;
}

/* A symptom on an incident that is open (or resolved inside the reopen window). */
static int join_incident(store_incidents_t *store, struct store_incident *inc,
                         const struct incident_symptom *s, const char *data,
                         struct incident_result *res)
{
    bool firing = s->state != INCIDENT_SYMPTOM_OK;
    bool reopen = !is_open(inc);
    int r = 0;

    if (reopen) {
        char text[128];
        snprintf(text, sizeof(text), "the symptom returned after the resolve; back to detected");
        inc->state = INCIDENT_STATE_DETECTED;
        inc->resolved_at_ms = 0;
        inc->acknowledged_at_ms = 0;
        inc->response_due_ms = incidents_response_due(inc->severity, s->at_ms);
        r = store_incident_event(store, inc->id, s->at_ms, INCIDENT_EVENT_REOPENED,
                                 INCIDENT_ACTOR_VIGIL, text, data);
    }
    if (r == 0)
        r = store_incident_event(store, inc->id, s->at_ms, INCIDENT_EVENT_SYMPTOM,
                                 INCIDENT_ACTOR_VIGIL, s->reason ? s->reason : "", data);
    /* Severity rises, never falls by itself; a clear says nothing about severity. */
    if (r == 0 && firing && s->severity < inc->severity) {
        char text[INCIDENT_NOTE_MAX + 64];
        snprintf(text, sizeof(text), "%s -> %s: %s", incidents_severity_name(inc->severity),
                 incidents_severity_name(s->severity), s->reason ? s->reason : "");
        json_t *d = json_pack("{s:s, s:s}", "from", incidents_severity_name(inc->severity), "to",
                              incidents_severity_name(s->severity));
        char *dtext = d ? json_dumps(d, JSON_COMPACT) : NULL;
        json_decref(d);
        r = store_incident_event(store, inc->id, s->at_ms, INCIDENT_EVENT_SEVERITY,
                                 INCIDENT_ACTOR_VIGIL, text, dtext);
        free(dtext);
        int64_t due = incidents_response_due(s->severity, s->at_ms);
        if (due < inc->response_due_ms)
            inc->response_due_ms = due;
        inc->severity = s->severity;
        res->severity_raised = true;
    }
    if (firing)
        scope_merge(inc, s);
    if (s->at_ms > inc->updated_at_ms)
        inc->updated_at_ms = s->at_ms;
    if (r == 0)
        r = store_incident_update(store, inc);
    if (r == 0) {
        res->id = inc->id;
        res->outcome = reopen ? INCIDENT_REOPENED : INCIDENT_UPDATED;
        res->severity = inc->severity;
        res->response_due_ms = inc->response_due_ms;
    }
    return r;
}

static int on_symptom_once(store_incidents_t *store, const struct incident_symptom *s,
                           struct incident_result *res)
{
    struct store_incident *inc = calloc(1, sizeof(*inc));
    char *data = symptom_data(s);
    int r = inc && data ? store_incidents_begin(store) : -ENOMEM;
    if (r == 0) {
        r = store_incident_find_for_symptom(store, s->fingerprint, s->at_ms - s->reopen_window_ms,
                                            inc);
        /* An open incident of its own takes the symptom. Else only a critical symptom does
         * anything: attached to an open root-cause incident if one explains it (before a
         * reopen: the root cause is what is happening now), else it reopens its recently
         * resolved incident, or opens one. */
        bool found = r == 0;
        if (found && is_open(inc)) {
            r = join_incident(store, inc, s, data, res);
        } else if ((found || r == -ENOENT) && s->state == INCIDENT_SYMPTOM_CRITICAL) {
            r = attach_to_root(store, s, data, res);
            if (r == 0)
                r = found ? join_incident(store, inc, s, data, res)
                          : open_incident(store, s, data, res);
            else if (r > 0)
                r = 0;
        } else if (found || r == -ENOENT) {
            r = 0;
        }
        if (r == 0)
            r = store_incidents_commit(store);
        if (r < 0)
            store_incidents_rollback(store);
    }
    free(data);
    free(inc);
    return r;
}

int incidents_on_symptom(store_incidents_t *store, const struct incident_symptom *s,
                         struct incident_result *ret)
{
    if (!store || !s || !ret || !symptom_valid(s))
        return -EINVAL;
    struct incident_result res = {.outcome = INCIDENT_UNCHANGED};
    int r = on_symptom_once(store, s, &res);
    /* Another connection opened the same fingerprint between our look and our insert: now it
     * is there to join. */
    if (r == -EEXIST) {
        memset(&res, 0, sizeof(res));
        r = on_symptom_once(store, s, &res);
    }
    if (r < 0) {
        vg_log(VG_LOG_WARN, "incident fingerprint=%s symptom not recorded: %s", s->fingerprint,
               strerror(-r));
        return r;
    }
    *ret = res;
    return 0;
}

/* One lifecycle transition: its target state, its timeline kind and the states it may come
 * from. A state already reached is -EALREADY; a later one -EBUSY. Sets of states are bit
 * masks. */
struct transition {
    enum incident_state to;
    enum incident_event_kind kind;
    unsigned from, later;
};

#define STATE_BIT(state) (1u << (state))
#define DETECTED STATE_BIT(INCIDENT_STATE_DETECTED)
#define ACKNOWLEDGED STATE_BIT(INCIDENT_STATE_ACKNOWLEDGED)
#define MITIGATED STATE_BIT(INCIDENT_STATE_MITIGATED)
#define RESOLVED STATE_BIT(INCIDENT_STATE_RESOLVED)
#define CLOSED STATE_BIT(INCIDENT_STATE_CLOSED)

static const struct transition TO_ACKNOWLEDGED = {INCIDENT_STATE_ACKNOWLEDGED,
                                                  INCIDENT_EVENT_ACKNOWLEDGED, DETECTED,
                                                  MITIGATED | RESOLVED | CLOSED};
static const struct transition TO_MITIGATED = {INCIDENT_STATE_MITIGATED, INCIDENT_EVENT_MITIGATED,
                                               DETECTED | ACKNOWLEDGED, RESOLVED | CLOSED};
/* Closed counts as already resolved. */
static const struct transition TO_RESOLVED = {INCIDENT_STATE_RESOLVED, INCIDENT_EVENT_RESOLVED,
                                              DETECTED | ACKNOWLEDGED | MITIGATED, 0};

static bool state_in(enum incident_state state, unsigned set)
{
    return (set & STATE_BIT(state)) != 0;
}

static int transition(store_incidents_t *store, uint64_t id, const char *actor, const char *note,
                      int64_t at_ms, const struct transition *t)
{
    if (!store || !actor || !actor[0] || !text_ok(note, INCIDENT_NOTE_MAX))
        return -EINVAL;
    struct store_incident *inc = calloc(1, sizeof(*inc));
    if (!inc)
        return -ENOMEM;
    int r = store_incidents_begin(store);
    if (r < 0) {
        free(inc);
        return r;
    }
    r = store_incident_get(store, id, true, inc);
    if (r == 0 && !state_in(inc->state, t->from))
        r = inc->state == t->to || !state_in(inc->state, t->later) ? -EALREADY : -EBUSY;
    if (r == 0) {
        inc->state = t->to;
        if (t == &TO_RESOLVED)
            inc->resolved_at_ms = at_ms;
        else if (t == &TO_ACKNOWLEDGED)
            inc->acknowledged_at_ms = at_ms;
        inc->updated_at_ms = at_ms;
        r = store_incident_update(store, inc);
    }
    if (r == 0)
        r = store_incident_event(store, id, at_ms, t->kind, actor, note ? note : "", NULL);
    if (r == 0)
        r = store_incidents_commit(store);
    if (r < 0)
        store_incidents_rollback(store);
    else
        vg_log(VG_LOG_INFO, "incident=%" PRIu64 " %s by %s", id, incident_state_name(t->to), actor);
    free(inc);
    return r;
}

int incidents_ack(store_incidents_t *store, uint64_t id, const char *actor, const char *note,
                  int64_t at_ms)
{
    return transition(store, id, actor, note, at_ms, &TO_ACKNOWLEDGED);
}

int incidents_mitigate(store_incidents_t *store, uint64_t id, const char *actor, const char *note,
                       int64_t at_ms)
{
    if (!note || !note[0])
        return -EINVAL;
    return transition(store, id, actor, note, at_ms, &TO_MITIGATED);
}

int incidents_resolve(store_incidents_t *store, uint64_t id, const char *actor, const char *note,
                      int64_t at_ms)
{
    if (!note || !note[0])
        return -EINVAL;
    return transition(store, id, actor, note, at_ms, &TO_RESOLVED);
}

int incidents_report(store_incidents_t *store, uint64_t id, const char *actor, const char *body,
                     int64_t at_ms, bool *ret_closed)
{
    if (!store || !actor || !actor[0] || !body || !body[0] ||
        strnlen(body, VG_MAX_REPORT_BYTES + 1) > VG_MAX_REPORT_BYTES)
        return -EINVAL;
    struct store_incident *inc = calloc(1, sizeof(*inc));
    if (!inc)
        return -ENOMEM;
    int r = store_incidents_begin(store);
    if (r < 0) {
        free(inc);
        return r;
    }
    r = store_incident_get(store, id, true, inc);
    if (r == 0 && is_open(inc))
        r = -EBUSY;
    bool closing = r == 0 && inc->state == INCIDENT_STATE_RESOLVED;
    if (closing)
        store_incidents_audit_detail(store, "closed"); /* an operator's audit row, if pending */
    if (r == 0)
        r = store_incident_report_put(store, id, at_ms, actor, body);
    if (r == 0 && closing) {
        inc->state = INCIDENT_STATE_CLOSED;
        inc->updated_at_ms = at_ms;
        r = store_incident_update(store, inc);
    }
    if (r == 0)
        r = store_incident_event(store, id, at_ms,
                                 closing ? INCIDENT_EVENT_CLOSED : INCIDENT_EVENT_REPORT, actor,
                                 closing ? "the post-incident report is written"
                                         : "the post-incident report was revised",
                                 NULL);
    if (r == 0)
        r = store_incidents_commit(store);
    if (r < 0)
        store_incidents_rollback(store);
    else if (ret_closed)
        *ret_closed = closing;
    free(inc);
    return r;
}

/* ---- the post-incident report ---- */

struct draft {
    char *text;
    size_t len, cap;
    bool failed;
};

static __attribute__((format(printf, 2, 3))) void draft_add(struct draft *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (d->failed || n < 0)
        return;
    if (d->len + (size_t)n + 1 > d->cap) {
        size_t cap = (d->cap ? d->cap * 2 : 4096) + (size_t)n;
        char *grown = realloc(d->text, cap);
        if (!grown) {
            d->failed = true;
            return;
        }
        d->text = grown;
        d->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(d->text + d->len, d->cap - d->len, fmt, ap);
    va_end(ap);
    d->len += (size_t)n;
}

static void utc_text(int64_t ms, char *buf, size_t size)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (ms <= 0 || !gmtime_r(&secs, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(buf, size, "-");
}

/* One of the template's timeline milestones, taken from the first (or last) event that marks
 * it; at_ms 0 = none recorded. */
struct milestone {
    int64_t at_ms;
    char what[512];
};

/* What the report draft reads from the timeline in one pass: every event as a line (events),
 * the template's milestones, and the symptoms and attached dependents for the root cause. */
struct draft_timeline {
    struct draft *d;
    struct draft events;        /* "- TIME - kind (actor): text", one per event */
    struct draft causes;        /* symptoms that fired, each once: the root cause section */
    struct draft attached_list; /* dependent symptoms attached to this incident */
    size_t attached;            /* dependent symptoms recorded on this incident */
    struct milestone investigation, root_cause, resolution, resolved;
    char symptoms[1024]; /* distinct symptom ids, comma-separated */
};

static void milestone_set(struct milestone *m, int64_t at_ms, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void milestone_set(struct milestone *m, int64_t at_ms, const char *fmt, ...)
{
    va_list ap;
    m->at_ms = at_ms;
    va_start(ap, fmt);
    vsnprintf(m->what, sizeof(m->what), fmt, ap);
    va_end(ap);
}

/* A symptom event's symptom id and state, from its data (our own JSON); false if it has none. */
static bool symptom_of(const char *data_json, char *symptom, size_t len, char *state,
                       size_t state_len)
{
    json_t *data = data_json && data_json[0] ? json_loads(data_json, 0, NULL) : NULL;
    const char *id = json_string_value(json_object_get(data, "symptom"));
    const char *st = json_string_value(json_object_get(data, "state"));
    bool ok = id != NULL;
    if (ok) {
        snprintf(symptom, len, "%s", id);
        snprintf(state, state_len, "%s", st ? st : "");
    }
    json_decref(data);
    return ok;
}

/* Adds id to a ", "-separated list of ids ([a-z0-9_-]) unless it is there already; true when
 * added. */
static bool list_add_once(char *list, size_t len, const char *id)
{
    size_t n = strlen(id), used = strlen(list);
    for (const char *p = list; *p;) {
        size_t k = strcspn(p, ",");
        if (k == n && memcmp(p, id, n) == 0)
            return false;
        p += k;
        while (*p == ',' || *p == ' ')
            p++;
    }
    if (used + (used ? 2 : 0) + n + 1 > len)
        return false; /* no room: the section lists what fits */
    snprintf(list + used, len - used, "%s%s", used ? ", " : "", id);
    return true;
}

static int draft_event(const struct store_incident_event *ev, void *userdata)
{
    struct draft_timeline *t = userdata;
    char at[40], symptom[128], state[32];
    utc_text(ev->at_ms, at, sizeof(at));
    switch (ev->kind) {
    case INCIDENT_EVENT_ATTACHED:
        t->attached++;
        draft_add(&t->attached_list, "- %s: %s\n", at, ev->text);
        if (!t->root_cause.at_ms)
            milestone_set(&t->root_cause, ev->at_ms,
                          "a dependent symptom was attached to this incident as its root cause: "
                          "%s",
                          ev->text);
        break;
    case INCIDENT_EVENT_OPENED: /* the first symptom opened it */
    case INCIDENT_EVENT_SYMPTOM:
        if (symptom_of(ev->data_json, symptom, sizeof(symptom), state, sizeof(state)) &&
            strcmp(state, "ok") != 0) {
            if (list_add_once(t->symptoms, sizeof(t->symptoms), symptom)) /* its first firing */
                draft_add(&t->causes, "- %s (%s, first at %s): %s\n", symptom, state, at, ev->text);
        }
        break;
    case INCIDENT_EVENT_ACKNOWLEDGED:
        if (!t->investigation.at_ms)
            milestone_set(&t->investigation, ev->at_ms, "acknowledged by %s", ev->actor);
        break;
    case INCIDENT_EVENT_NOTE:
        if (!t->investigation.at_ms && strncmp(ev->text, "investigating: ", 15) == 0)
            milestone_set(&t->investigation, ev->at_ms, "Vigil began collecting evidence: %s",
                          ev->text + 15);
        break;
    case INCIDENT_EVENT_MITIGATED:
        if (!t->resolution.at_ms)
            milestone_set(&t->resolution, ev->at_ms, "mitigated by %s%s%s", ev->actor,
                          ev->text[0] ? ": " : "", ev->text);
        break;
    case INCIDENT_EVENT_RESOLVED: /* the last resolution, after a reopen */
        milestone_set(&t->resolved, ev->at_ms, "resolved by %s%s%s", ev->actor,
                      ev->text[0] ? ": " : "", ev->text);
        break;
    case INCIDENT_EVENT_REOPENED: /* resolved again later, or still open */
        t->resolved.at_ms = 0;
        break;
    default:
        break;
    }
    draft_add(&t->events, "- %s - %s (%s)%s%s\n", at, incident_event_kind_name(ev->kind), ev->actor,
              ev->text[0] ? ": " : "", ev->text);
    return 0;
}

/* The template's milestone line: its time and what marked it, or the template's placeholder
 * for people to fill. */
static void draft_milestone(struct draft *d, const struct milestone *m, const char *label)
{
    char at[40];
    if (!m->at_ms) {
        draft_add(d, "- [TIME] - %s\n", label);
        return;
    }
    utc_text(m->at_ms, at, sizeof(at));
    draft_add(d, "- %s - %s (%s)\n", at, label, m->what);
}

/* The document's report template, filled with what Vigil knows; the rest is left for people. */
/* What the commands and the evidence came to, for the lessons' record. */
struct draft_tally {
    struct draft *d;
    size_t done, failed, other; /* commands: exit 0, another exit or refused, still going */
    size_t stored, not_stored;  /* artifacts */
};

/* One line per command in the draft's Resolution: what ran, who asked, how it ended. */
static int draft_command(const struct store_incident_command *c, void *userdata)
{
    struct draft_tally *tally = userdata;
    struct draft *d = tally->d;
    if (c->has_exit && c->exit_status == 0)
        tally->done++;
    else if (c->has_exit || strcmp(c->state, "refused") == 0 || strcmp(c->state, "failed") == 0 ||
             strcmp(c->state, "expired") == 0 || strcmp(c->state, "lost") == 0)
        tally->failed++;
    else
        tally->other++;
    draft_add(d, "- %s on %s (%s, %s, requested by %s): %s", c->action, c->node, c->id, c->mode,
              c->requested_by, c->state);
    if (c->has_exit)
        draft_add(d, ", exit %d", c->exit_status);
    if (c->reason[0])
        draft_add(d, " (%s)", c->reason);
    draft_add(d, "\n");
    return 0;
}

/* One line per artifact in the draft's Evidence: what was collected, where, and its vault id. */
static int draft_evidence(const struct store_incident_evidence *e, void *userdata)
{
    struct draft_tally *tally = userdata;
    struct draft *d = tally->d;
    if (e->evidence_id)
        tally->stored++;
    else
        tally->not_stored++;
    draft_add(d, "- %s from %s", e->kind, e->node);
    if (e->command_id[0])
        draft_add(d, " after command %s", e->command_id);
    if (e->evidence_id)
        draft_add(d, ": evidence %" PRIu64 ", %" PRIu64 " bytes, SHA-256 %s\n", e->evidence_id,
                  e->size, e->sha256_hex);
    else if (e->error[0])
        draft_add(d, ": %s (%s)\n", e->status, e->error);
    else
        draft_add(d, ": %s\n", e->status);
    return 0;
}

/* ---- a drill's times (README "Drills") ---- */

#define DRILL_PEOPLE_MAX 64

struct drill_times {
    struct {
        char name[128];
        int64_t paged_at_ms; /* the first page */
    } people[DRILL_PEOPLE_MAX];
    size_t n;
    char acked_by[160], resolved_by[160];
    int64_t acked_at_ms, resolved_at_ms;
};

static int drill_page(const struct store_notification_row *row, void *userdata)
{
    struct drill_times *t = userdata;
    if (row->kind != NOTIFICATION_KIND_PAGE)
        return 0;
    size_t i = 0;
    while (i < t->n && strcmp(t->people[i].name, row->target) != 0)
        i++;
    if (i == t->n) {
        if (t->n == DRILL_PEOPLE_MAX)
            return 0;
        snprintf(t->people[t->n].name, sizeof(t->people[0].name), "%s", row->target);
        t->people[t->n++].paged_at_ms = row->created_at_ms;
    } else if (row->created_at_ms < t->people[i].paged_at_ms) {
        t->people[i].paged_at_ms = row->created_at_ms;
    }
    return 0;
}

static int drill_event(const struct store_incident_event *ev, void *userdata)
{
    struct drill_times *t = userdata;
    if (ev->kind == INCIDENT_EVENT_ACKNOWLEDGED && !t->acked_at_ms) {
        t->acked_at_ms = ev->at_ms;
        snprintf(t->acked_by, sizeof(t->acked_by), "%s", ev->actor);
    } else if (ev->kind == INCIDENT_EVENT_RESOLVED) { /* the last resolution, after a reopen */
        t->resolved_at_ms = ev->at_ms;
        snprintf(t->resolved_by, sizeof(t->resolved_by), "%s", ev->actor);
    }
    return 0;
}

/* "4m 05s", "1h 02m", "12s". */
static const char *span_text(int64_t ms, char *buf, size_t size)
{
    int64_t s = ms > 0 ? ms / 1000 : 0;
    if (s >= 3600)
        snprintf(buf, size, "%" PRId64 "h %02" PRId64 "m", s / 3600, s % 3600 / 60);
    else if (s >= 60)
        snprintf(buf, size, "%" PRId64 "m %02" PRId64 "s", s / 60, s % 60);
    else
        snprintf(buf, size, "%" PRId64 "s", s);
    return buf;
}

/* A drill's section: each person paged with their time to acknowledge (an operator counts as
 * the contact of the same name) and to resolution from their first page. Nothing for a real
 * incident. */
static int draft_drill(store_incidents_t *store, const struct store_incident *inc,
                       struct draft *d)
{
    struct store_drill drill;
    int r = store_drill_get(store, inc->id, &drill);
    if (r < 0)
        return r == -ENOENT ? 0 : r;
    struct drill_times *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    r = store_notifications_list(store, inc->id, drill_page, t);
    if (r == 0)
        r = store_incident_events(store, inc->id, drill_event, t);
    if (r < 0) {
        free(t);
        return r;
    }
    char at[40], a[32], b[32];
    utc_text(drill.started_at_ms, at, sizeof(at));
    draft_add(d, "\n## Drill\n%s drill of runbook %s, started by %s at %s.\n",
              drill.live ? "A live" : "An audience-only", inc->runbook, drill.started_by, at);
    if (t->n == 0)
        draft_add(d, "- Nobody was paged.\n");
    for (size_t i = 0; i < t->n; i++) {
        utc_text(t->people[i].paged_at_ms, at, sizeof(at));
        draft_add(d, "- %s: paged %s", t->people[i].name, at);
        if (t->acked_at_ms && strcmp(t->acked_by, t->people[i].name) == 0)
            draft_add(d, "; time to acknowledge %s",
                      span_text(t->acked_at_ms - t->people[i].paged_at_ms, a, sizeof(a)));
        else
            draft_add(d, "; did not acknowledge");
        if (t->resolved_at_ms)
            draft_add(d, "; time to resolve %s",
                      span_text(t->resolved_at_ms - t->people[i].paged_at_ms, a, sizeof(a)));
        draft_add(d, "\n");
    }
    if (t->acked_at_ms)
        draft_add(d, "- Acknowledged by %s %s after the drill started.\n", t->acked_by,
                  span_text(t->acked_at_ms - inc->opened_at_ms, a, sizeof(a)));
    if (t->resolved_at_ms)
        draft_add(d, "- Resolved by %s %s after the drill started (%s after the "
                     "acknowledgement).\n",
                  t->resolved_by, span_text(t->resolved_at_ms - inc->opened_at_ms, a, sizeof(a)),
                  t->acked_at_ms ? span_text(t->resolved_at_ms - t->acked_at_ms, b, sizeof(b))
                                 : "-");
    free(t);
    return 0;
}

/* The incident's follow-up actions (vigilctl followup add) as checkboxes, oldest first; the
 * template's placeholder when there are none. */
static int draft_followups(store_incidents_t *store, uint64_t id, struct draft *d)
{
    struct store_followup_action *list = NULL;
    size_t n = 0;
    int r = store_followups_list(store, id, true, vg_wall_ms(), STORE_FOLLOWUPS_LISTED_MAX, &list,
                                 &n);
    if (r < 0)
        return r;
    if (n == 0)
        draft_add(d, "- [ ] Action item 1\n");
    for (size_t i = 0; i < n; i++) {
        const struct store_followup_action *f = &list[i];
        if (f->done) {
            char on[16];
            vg_date_text(f->done_at_ms, on, sizeof(on));
            draft_add(d, "- [x] %s (done by %s on %s)\n", f->text, f->done_by, on);
        } else {
            bool paren = f->owner[0] || f->due[0];
            draft_add(d, "- [ ] %s%s%s%s%s%s%s%s\n", f->text, paren ? " (" : "",
                      f->owner[0] ? "owner " : "", f->owner, f->owner[0] && f->due[0] ? ", " : "",
                      f->due[0] ? "due " : "", f->due, paren ? ")" : "");
        }
    }
    free(list);
    return 0;
}

/* "node-a, node-b" from the incident's scope (a JSON array of names, our own); its count. */
static size_t scope_nodes(const char *scope_json, char *buf, size_t len)
{
    json_t *scope = json_loads(scope_json, 0, NULL);
    size_t n = 0, used = 0;
    buf[0] = '\0';
    for (size_t i = 0; json_is_array(scope) && i < json_array_size(scope); i++) {
        const char *node = json_string_value(json_array_get(scope, i));
        if (!node)
            continue;
        n++;
        if (used < len) {
            int w = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", node);
            used += w > 0 ? (size_t)w : 0;
        }
    }
    json_decref(scope);
    return n;
}

/* The sections that come from the timeline: Summary's detection, Timeline, Impact, Root Cause. */
static void draft_story(struct draft *d, const struct store_incident *inc,
                        const struct draft_timeline *t)
{
    char opened[40], resolved[40], nodes[1024], span[32];
    utc_text(inc->opened_at_ms, opened, sizeof(opened));
    utc_text(inc->resolved_at_ms, resolved, sizeof(resolved));
    size_t nnodes = scope_nodes(inc->scope_json, nodes, sizeof(nodes));

    draft_add(d, "# Incident Report: %" PRIu64 "\n\n## Summary\n", inc->id);
    draft_add(d, "%s (%s, runbook %s), detected %s. State: %s.\n", inc->title,
              incidents_severity_name(inc->severity), inc->runbook, opened,
              incident_state_name(inc->state));
    if (t->symptoms[0])
        draft_add(d, "Detected by the runbook's symptoms %s on %zu node(s)%s%s.\n", t->symptoms,
                  nnodes, nnodes ? ": " : "", nodes);
    if (inc->root_id)
        draft_add(d, "Part of incident %" PRIu64 ", its root cause.\n", inc->root_id);

    /* The template's five milestones, then every event as recorded. */
    draft_add(d, "\n## Timeline\n");
    struct milestone detected = {.at_ms = inc->opened_at_ms};
    snprintf(detected.what, sizeof(detected.what), "%s, %s", inc->runbook,
             incidents_severity_name(inc->severity));
    draft_milestone(d, &detected, "Incident detected");
    draft_milestone(d, &t->investigation, "Investigation started");
    draft_milestone(d, &t->root_cause, "Root cause identified");
    draft_milestone(d, &t->resolution, "Resolution implemented");
    draft_milestone(d, &t->resolved, "Incident resolved");
    draft_add(d, "\nEvery event, in order:\n%s", t->events.text ? t->events.text : "");

    draft_add(d, "\n## Impact\n- Users affected: [NUMBER]\n");
    if (inc->resolved_at_ms > inc->opened_at_ms) {
        int64_t mins = (inc->resolved_at_ms - inc->opened_at_ms + 59999) / 60000;
        draft_add(d, "- Duration: %" PRId64 " min (%s to %s)\n", mins, opened, resolved);
    } else {
        draft_add(d, "- Duration: still open (%s since %s)\n",
                  span_text(vg_wall_ms() - inc->opened_at_ms, span, sizeof(span)), opened);
    }
    draft_add(d, "- Nodes affected: %zu%s%s%s\n", nnodes, nnodes ? " (" : "", nodes,
              nnodes ? ")" : "");
    draft_add(d, "- Services affected: %s (runbook %s)%s%s\n", inc->title, inc->runbook,
              t->symptoms[0] ? "; symptoms " : "", t->symptoms);

    draft_add(d, "\n## Root Cause\n[Detailed explanation of what caused the incident]\n");
    if (t->causes.text)
        draft_add(d, "\nWhat Vigil saw (each symptom when it first fired):\n%s", t->causes.text);
    if (t->attached) {
        draft_add(d,
                  "\nVigil attached %zu dependent symptom(s) to this incident as their root "
                  "cause (see the timeline):\n",
                  t->attached);
        draft_add(d, "%s", t->attached_list.text ? t->attached_list.text : "");
    }
}

/* The record under Lessons Learned: how fast, and what the commands and evidence came to. */
static void draft_record(struct draft *d, const struct store_incident *inc,
                         const struct draft_tally *tally)
{
    char a[32], b[32];
    draft_add(d, "\nFrom the record:\n");
    if (inc->acknowledged_at_ms > inc->opened_at_ms)
        draft_add(d, "- Acknowledged %s after detection (%s's response time: by %s)\n",
                  span_text(inc->acknowledged_at_ms - inc->opened_at_ms, a, sizeof(a)),
                  incidents_severity_name(inc->severity),
                  inc->response_due_ms > inc->opened_at_ms
                      ? span_text(inc->response_due_ms - inc->opened_at_ms, b, sizeof(b))
                      : "-");
    else
        draft_add(d, "- Not acknowledged by a person\n");
    if (inc->resolved_at_ms > inc->opened_at_ms)
        draft_add(d, "- Resolved %s after detection\n",
                  span_text(inc->resolved_at_ms - inc->opened_at_ms, a, sizeof(a)));
    draft_add(d, "- Commands: %zu succeeded, %zu failed or refused, %zu without an outcome\n",
              tally->done, tally->failed, tally->other);
    draft_add(d, "- Evidence: %zu artifact(s) in the vault, %zu not collected\n", tally->stored,
              tally->not_stored);
}

static char *report_draft(store_incidents_t *store, uint64_t id, int *ret)
{
    struct store_incident *inc = calloc(1, sizeof(*inc));
    struct draft_timeline *t = calloc(1, sizeof(*t));
    struct draft d = {0};
    struct draft_tally tally = {.d = &d};

    *ret = inc && t ? store_incident_get(store, id, false, inc) : -ENOMEM;
    if (*ret == 0) {
        t->d = &d;
        *ret = store_incident_events(store, id, draft_event, t);
    }
    if (*ret == 0) {
        draft_story(&d, inc, t);
        *ret = draft_drill(store, inc, &d);
    }
    if (*ret == 0) {
        draft_add(&d, "\n## Resolution\n[Steps taken to resolve the incident; the resolve note "
                      "is in the timeline]\n");
        if (t->resolved.at_ms)
            draft_add(&d, "Resolution: %s.\n", t->resolved.what);
        draft_add(&d, "\nCommands (runbook steps and vigilctl run), with their outcome:\n");
        *ret = store_incident_commands(store, id, draft_command, &tally);
        if (*ret == 0 && tally.done + tally.failed + tally.other == 0)
            draft_add(&d, "- none\n");
    }
    if (*ret == 0) {
        /* What the investigation and the commands left in the vault ('vigilctl evidence get'). */
        draft_add(&d, "\nEvidence (in the vault: vigilctl evidence get ID --out FILE):\n");
        *ret = store_incident_evidence(store, id, draft_evidence, &tally);
        if (*ret == 0 && tally.stored + tally.not_stored == 0)
            draft_add(&d, "- none\n");
    }
    if (*ret == 0) {
        draft_add(&d, "\n## Lessons Learned\n- What went well\n"
                      "- What could be improved\n- Action items for prevention\n");
        draft_record(&d, inc, &tally);
        draft_add(&d, "\n## Follow-up Actions\n");
        *ret = draft_followups(store, id, &d);
    }
    if (*ret == 0 &&
        (d.failed || (t && (t->events.failed || t->causes.failed || t->attached_list.failed))))
        *ret = -ENOMEM;
    if (t) {
        free(t->events.text);
        free(t->causes.text);
        free(t->attached_list.text);
    }
    free(t);
    free(inc);
    if (*ret < 0) {
        free(d.text);
        return NULL;
    }
    return d.text;
}

int incidents_report_text(store_incidents_t *store, uint64_t id, char **ret_body, bool *ret_draft)
{
    if (!store || !ret_body || !ret_draft)
        return -EINVAL;
    struct store_incident_report rep = {0};
    int r = store_incident_report_get(store, id, &rep);
    if (r == 0) {
        *ret_body = rep.body;
        *ret_draft = false;
        return 0;
    }
    if (r != -ENOENT)
        return r;
    *ret_body = report_draft(store, id, &r);
    *ret_draft = true;
    return r;
}

/* ---- auto-resolve ---- */

struct open_incident {
    uint64_t id;
    char runbook[STORE_INCIDENT_RUNBOOK_MAX];
    char node[STORE_INCIDENT_FINGERPRINT_MAX];
};

struct open_list {
    struct open_incident *items;
    size_t n, cap;
};

static int collect_open(const struct store_incident *inc, void *userdata)
{
    struct open_list *list = userdata;
    const char *node = incidents_fingerprint_node(inc->fingerprint);
    if (!node)
        return 0; /* not a runbook's incident (written by another tool) */
    if (list->n == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 16;
        struct open_incident *grown = realloc(list->items, cap * sizeof(*grown));
        if (!grown)
            return -ENOMEM;
        list->items = grown;
        list->cap = cap;
    }
    struct open_incident *o = &list->items[list->n++];
    o->id = inc->id;
    snprintf(o->runbook, sizeof(o->runbook), "%s", inc->runbook);
    snprintf(o->node, sizeof(o->node), "%s", node);
    return 0;
}

#define AUTO_RESOLVE_MAX_OPEN 1000 /* incidents looked at per pass */

int incidents_auto_resolve(store_incidents_t *store, incidents_verified_fn verified, void *userdata,
                           int64_t now_ms)
{
    if (!store || !verified)
        return -EINVAL;
    struct open_list list = {0};
    int r = store_incidents_list(store, true, 0, AUTO_RESOLVE_MAX_OPEN, collect_open, &list);
    int resolved = 0;
    for (size_t i = 0; r == 0 && i < list.n; i++) {
        char why[INCIDENT_NOTE_MAX - 16], note[INCIDENT_NOTE_MAX];
        const struct open_incident *o = &list.items[i];
        if (verified(userdata, o->runbook, o->node, now_ms, why, sizeof(why)) != 1)
            continue;
        snprintf(note, sizeof(note), "verified: %s", why);
        int t = incidents_resolve(store, o->id, INCIDENT_ACTOR_VIGIL, note, now_ms);
        if (t == 0) {
            resolved++;
            vg_log(VG_LOG_INFO, "incident=%" PRIu64 " runbook=%s resolved itself: %s", o->id,
                   o->runbook, note);
        } else if (t != -EALREADY) { /* an operator resolved it meanwhile: fine */
            r = t;
        }
    }
    free(list.items);
    return r < 0 ? r : resolved;
}

int incidents_list(store_incidents_t *store, bool open_only, uint64_t before_id, uint32_t limit,
                   int (*cb)(const struct store_incident *inc, void *userdata), void *userdata)
{
    return store_incidents_list(store, open_only, before_id, limit, cb, userdata);
}

int incidents_show(store_incidents_t *store, uint64_t id, struct store_incident *ret,
                   int (*cb)(const struct store_incident_event *ev, void *userdata), void *userdata)
{
    if (!store || !ret)
        return -EINVAL;
    int r = store_incident_get(store, id, false, ret);
    if (r == 0 && cb)
        r = store_incident_events(store, id, cb, userdata);
    return r;
}

/* ---- steering by hand (issue 18) ---- */

static bool runbook_id_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    return n > 0 && n < STORE_INCIDENT_RUNBOOK_MAX &&
           strspn(id, "abcdefghijklmnopqrstuvwxyz"
                      "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                      "0123456789_.-") == n;
}

int incidents_open_manual(store_incidents_t *store, const struct incident_manual *m, int64_t at_ms,
                          uint64_t *ret_id)
{
    const char *node = m && m->node ? m->node : "";
    if (!store || !m || !ret_id || !runbook_id_ok(m->runbook) || m->severity < 1 ||
        m->severity > 4 || !m->title || !m->title[0] ||
        strlen(m->title) >= STORE_INCIDENT_TITLE_MAX || !m->actor || !m->actor[0] ||
        strlen(node) > 200 || strpbrk(node, "/:"))
        return -EINVAL;
    struct store_incident *inc = calloc(1, sizeof(*inc));
    if (!inc)
        return -ENOMEM;
    /* No '/': not a runbook symptom's fingerprint, so no symptom joins it and the verify pass
     * leaves it to the operators (collect_open). */
    int n = snprintf(inc->fingerprint, sizeof(inc->fingerprint), "%s:%s:%s:%" PRId64,
                     m->drill ? "drill" : "manual", m->runbook, node, at_ms);
    if (n < 0 || (size_t)n >= sizeof(inc->fingerprint)) {
        free(inc);
        return -EINVAL;
    }
    snprintf(inc->runbook, sizeof(inc->runbook), "%s", m->runbook);
    snprintf(inc->title, sizeof(inc->title), "%s", m->title);
    inc->state = INCIDENT_STATE_DETECTED;
    json_t *scope = json_array();
    if (scope && node[0])
        json_array_append_new(scope, json_string(node));
    char *scope_text = scope ? json_dumps(scope, JSON_COMPACT) : NULL;
    json_t *d =
        json_pack("{s:b, s:s, s:s, s:O*}", m->drill ? "drill" : "manual", 1, "severity",
                  incidents_severity_name(m->severity), "runbook", m->runbook, "nodes", scope);
    if (d && m->drill)
        json_object_set_new(d, "live", json_boolean(m->live));
    char *data = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    json_decref(scope);
    snprintf(inc->scope_json, sizeof(inc->scope_json), "%s", scope_text ? scope_text : "[]");
    free(scope_text);
    inc->severity = m->severity;
    inc->opened_at_ms = inc->updated_at_ms = at_ms;
    inc->response_due_ms = incidents_response_due(m->severity, at_ms);
    char text[STORE_INCIDENT_TITLE_MAX + 32];
    snprintf(text, sizeof(text), "%s: %s",
             !m->drill ? "opened by hand"
             : m->live ? "live drill started"
                       : "drill started",
             m->title);
    uint64_t id = 0;
    int r = data ? store_incidents_begin(store) : -ENOMEM;
    if (r == 0) {
        r = store_incident_insert(store, inc, &id);
        if (r == 0) {
            char subject[48];
            snprintf(subject, sizeof(subject), "incident %" PRIu64, id);
            store_incidents_audit_subject(store, subject); /* an operator's audit row, if pending */
        }
        if (r == 0 && m->drill) {
            struct store_drill drill = {.incident_id = id, .live = m->live, .started_at_ms = at_ms};
            snprintf(drill.started_by, sizeof(drill.started_by), "%s", m->actor);
            r = store_drill_insert(store, &drill);
        }
        if (r == 0)
            r = store_incident_event(store, id, at_ms, INCIDENT_EVENT_OPENED, m->actor, text, data);
        if (r == 0)
            r = store_incidents_commit(store);
        if (r < 0)
            store_incidents_rollback(store);
    }
    if (r == 0) {
        *ret_id = id;
        vg_log(VG_LOG_INFO, "incident=%" PRIu64 " runbook=%s severity=%s %s by %s", id, m->runbook,
               incidents_severity_name(m->severity),
               !m->drill ? "opened by hand"
               : m->live ? "live drill started"
                         : "drill started",
               m->actor);
    }
    free(data);
    free(inc);
    return r;
}

int incidents_set_severity(store_incidents_t *store, uint64_t id, int severity, const char *actor,
                           const char *note, const struct incident_policy_change *policy,
                           int64_t at_ms, int *ret_previous)
{
    if (!store || severity < 1 || severity > 4 || !actor || !actor[0] || !note || !note[0] ||
        !text_ok(note, INCIDENT_NOTE_MAX) ||
        (policy && (!policy->from || !policy->to || strlen(policy->to) >= 128)))
        return -EINVAL;
    struct store_incident *inc = calloc(1, sizeof(*inc));
    if (!inc)
        return -ENOMEM;
    int r = store_incidents_begin(store);
    if (r < 0) {
        free(inc);
        return r;
    }
    int previous = 0;
    r = store_incident_get(store, id, true, inc);
    if (r == 0 && !is_open(inc))
        r = -EBUSY;
    if (r == 0 && inc->severity == severity)
        r = -EALREADY;
    if (r == 0) {
        previous = inc->severity;
        if (severity < previous) { /* a rise: never later than it was */
            int64_t due = incidents_response_due(severity, at_ms);
            if (due < inc->response_due_ms)
                inc->response_due_ms = due;
        } else {
            inc->response_due_ms = incidents_response_due(severity, inc->opened_at_ms);
        }
        inc->severity = severity;
        inc->updated_at_ms = at_ms;
        r = store_incident_update(store, inc);
    }
    if (r == 0) {
        char text[INCIDENT_NOTE_MAX + 64];
        snprintf(text, sizeof(text), "%s -> %s by hand: %s", incidents_severity_name(previous),
                 incidents_severity_name(severity), note);
        json_t *d = json_pack("{s:s, s:s, s:b}", "from", incidents_severity_name(previous), "to",
                              incidents_severity_name(severity), "manual", 1);
        char *dtext = d ? json_dumps(d, JSON_COMPACT) : NULL;
        json_decref(d);
        r = dtext ? store_incident_event(store, id, at_ms, INCIDENT_EVENT_SEVERITY, actor, text,
                                         dtext)
                  : -ENOMEM;
        free(dtext);
    }
    /* The escalation follows: its pending response deadline and its policy. */
    struct store_escalation esc;
    int e = r == 0 ? store_escalation_get(store, id, true, &esc) : -ENOENT;
    if (r == 0 && e == 0) {
        /* Still waiting for a response: the deadline is the new one (re-armed when a fall
         * moved it past now after the old one was missed). */
        if (inc->state == INCIDENT_STATE_DETECTED &&
            (esc.deadline_at_ms != 0 || inc->response_due_ms > at_ms))
            esc.deadline_at_ms = inc->response_due_ms;
        /* A runbook's own policy stays; the severity's route follows the severity, and while
         * nobody responded its next level comes when the new policy says. */
        if (policy && policy->to[0] && strcmp(esc.policy, policy->from) == 0 &&
            strcmp(esc.policy, policy->to) != 0) {
            snprintf(esc.policy, sizeof(esc.policy), "%s", policy->to);
            if (inc->state == INCIDENT_STATE_DETECTED && esc.level >= 0 && policy->next_due) {
                int64_t due = policy->next_due(policy->userdata, esc.level, esc.started_at_ms,
                                               esc.repeats, at_ms);
                esc.next_level_at_ms = due > 0 && due < at_ms ? at_ms : due;
            }
        }
        r = store_escalation_put(store, &esc);
    } else if (r == 0 && e != -ENOENT) {
        r = e;
    }
    if (r == 0)
        r = store_incidents_commit(store);
    if (r < 0) {
        store_incidents_rollback(store);
    } else {
        if (ret_previous)
            *ret_previous = previous;
        vg_log(VG_LOG_INFO, "incident=%" PRIu64 " severity %s -> %s by %s", id,
               incidents_severity_name(previous), incidents_severity_name(severity), actor);
    }
    free(inc);
    return r;
}

int incidents_note(store_incidents_t *store, uint64_t id, const char *actor, const char *text,
                   int64_t at_ms)
{
    if (!store || !actor || !actor[0] || !text || !text[0] || !text_ok(text, INCIDENT_NOTE_MAX))
        return -EINVAL;
    struct store_incident *inc = calloc(1, sizeof(*inc));
    if (!inc)
        return -ENOMEM;
    int r = store_incidents_begin(store);
    if (r == 0) {
        r = store_incident_get(store, id, true, inc);
        if (r == 0)
            r = store_incident_event(store, id, at_ms, INCIDENT_EVENT_NOTE, actor, text,
                                     "{\"private\":true}");
        if (r == 0)
            r = store_incidents_commit(store);
        if (r < 0)
            store_incidents_rollback(store);
    }
    free(inc);
    return r;
}

int incidents_status_update(store_incidents_t *store, uint64_t id, const char *actor,
                            const struct incident_status_update *u, int64_t at_ms)
{
    if (!store || !actor || !actor[0] || !u || !u->text || !u->text[0] ||
        !text_ok(u->text, INCIDENT_NOTE_MAX) || !u->components_json ||
        (u->title && strlen(u->title) >= STORE_INCIDENT_TITLE_MAX))
        return -EINVAL;
    json_t *components = json_loads(u->components_json, 0, NULL);
    if (!json_is_object(components)) {
        json_decref(components);
        return -EINVAL;
    }
    json_t *d = json_pack("{s:b, s:O}", "public", u->public, "components", components);
    if (d && u->title && u->title[0])
        json_object_set_new(d, "title", json_string(u->title));
    char *data = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    json_decref(components);
    struct store_incident *inc = calloc(1, sizeof(*inc));
    int r = inc && data ? store_incidents_begin(store) : -ENOMEM;
    if (r == 0) {
        r = store_incident_get(store, id, true, inc);
        if (r == 0)
            r = store_status_update_add(store, id, at_ms, actor, u->text, u->public,
                                        u->title ? u->title : "", incident_state_name(inc->state),
                                        u->components_json);
        if (r == 0)
            r = store_incident_event(store, id, at_ms, INCIDENT_EVENT_STATUS_UPDATE, actor, u->text,
                                     data);
        struct store_escalation esc;
        int e =
            r == 0 && u->next_update_at_ms ? store_escalation_get(store, id, true, &esc) : -ENOENT;
        if (e == 0 && esc.next_update_at_ms != 0 && u->next_update_at_ms < esc.next_update_at_ms) {
            /* A person gave the update: the escalation tells it (and any other posted since the
             * timer moved here) at once, and the automatic one waits a whole interval from
             * then. */
            esc.next_update_at_ms = u->next_update_at_ms;
            e = store_escalation_put(store, &esc);
        }
        if (r == 0 && e < 0 && e != -ENOENT)
            r = e;
        if (r == 0)
            r = store_incidents_commit(store);
        if (r < 0)
            store_incidents_rollback(store);
    }
    if (r == 0)
        vg_log(VG_LOG_INFO, "incident=%" PRIu64 " %s status update by %s", id,
               u->public ? "public" : "private", actor);
    free(inc);
    free(data);
    return r;
}
