/* Notification text and payload (page_message.h). */
#include "page_message.h"
#include "runbook.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "incidents.h"

static void utc(int64_t ms, char *buf, size_t len)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (ms <= 0 || !gmtime_r(&secs, &tm) || strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(buf, len, "-");
}

/* The scope's JSON array of node names as "web-1, web-2" ("-" for none). */
static void scope_text(const char *scope_json, char *buf, size_t len)
{
    json_t *scope = json_loads(scope_json, 0, NULL);
    size_t used = 0, i;
    json_t *v;
    buf[0] = '\0';
    json_array_foreach(scope, i, v)
    {
        int n = snprintf(buf + used, len - used, "%s%s", used ? ", " : "",
                         json_is_string(v) ? json_string_value(v) : "?");
        if (n < 0 || (size_t)n >= len - used)
            break;
        used += (size_t)n;
    }
    json_decref(scope);
    if (!buf[0])
        snprintf(buf, len, "-");
}

/* The first line's verb: what happened. */
static const char *headline(enum notification_kind kind)
{
    switch (kind) {
    case NOTIFICATION_KIND_PAGE:
        return "needs you";
    case NOTIFICATION_KIND_UPDATE:
        return "still open";
    case NOTIFICATION_KIND_RESOLVED:
        return "resolved";
    case NOTIFICATION_KIND_ACKNOWLEDGED:
        return "acknowledged";
    case NOTIFICATION_KIND_DEADLINE:
        return "missed its response deadline";
    case NOTIFICATION_KIND_REPORT_DUE:
        return "post-incident report due";
    case NOTIFICATION_KIND_GROUPED:
        return "more nodes";
    case NOTIFICATION_KIND_SUMMARY:
        return "pages held back";
    case NOTIFICATION_KIND_ACTION:
        return "automatic action";
    case NOTIFICATION_KIND_REMINDER:
        return "needs a status update";
    case NOTIFICATION_KIND_HUMAN_UPDATE:
        return "status update";
    case NOTIFICATION_KIND_AUDIENCE:
        break;
    }
    return "opened";
}

int page_message_build(const struct page_message_in *in, struct page_message *ret)
{
    const struct store_incident *inc = in->inc;
    char opened[40], due[40], scope[1024], level[32] = "", nodes[64] = "";
    char *group = NULL; /* the group's nodes, instead of the scope: no fixed bound */
    memset(ret, 0, sizeof(*ret));
    utc(inc->opened_at_ms, opened, sizeof(opened));
    utc(inc->response_due_ms, due, sizeof(due));
    scope_text(inc->scope_json, scope, sizeof(scope));
    if (in->level >= 0)
        snprintf(level, sizeof(level), ", level %d", in->level + 1);
    bool grouped = in->kind == NOTIFICATION_KIND_GROUPED || in->nodes_total > 1;
    if (grouped)
        snprintf(nodes, sizeof(nodes), ", %" PRIu32 " node%s", in->nodes_total,
                 in->nodes_total == 1 ? "" : "s");
    const char *sev = incidents_severity_name(inc->severity);
    const char *kind = notification_kind_name(in->kind), *state = incident_state_name(inc->state);
    const char *who = in->responders && in->responders[0] ? in->responders : "nobody yet";
    const char *link = in->runbook_link && in->runbook_link[0] ? in->runbook_link : "-";
    long age_min = (long)((in->now_ms - inc->opened_at_ms) / 60000);
    if (!kind || !state)
        return -EINVAL;

    /* A group names its nodes (the first few; the count says how many) instead of the
     * leader's own scope: one page stands for all of them. */
    if (grouped &&
        asprintf(&group, "%" PRIu32 " node%s%s %s%s", in->nodes_total,
                 in->nodes_total == 1 ? "" : "s",
                 in->kind == NOTIFICATION_KIND_GROUPED ? " joined:" : ":",
                 in->nodes && in->nodes[0] ? in->nodes : "-",
                 in->kind == NOTIFICATION_KIND_GROUPED ? " (incidents of their own, grouped here)"
                                                       : "") < 0)
        return -ENOMEM;
    /* A drill says so first, where a phone's lock screen cuts the subject. */
    const char *drill = in->drill ? "[DRILL] " : "";
    if (asprintf(&ret->subject, "%s[%s] %s (incident %" PRIu64 ") %s%s%s", drill, sev, inc->title,
                 inc->id, headline(in->kind), level, nodes) < 0)
        ret->subject = NULL;
    bool action = in->kind == NOTIFICATION_KIND_ACTION && in->action;
    const char *after = action ? in->action : in->note; /* after the headline */
    if (asprintf(&ret->body,
                 "%s%s %s: %s%s%s\n"
                 "Incident:   %" PRIu64 " (%s, runbook %s)\n"
                 "%s %s\n"
                 "Started:    %s (%ld min ago)\n"
                 "Respond by: %s\n"
                 "Runbook:    %s\n"
                 "On it:      %s\n"
                 "Acknowledge: vigilctl ack %" PRIu64 "\n"
                 "Details:     vigilctl incident show %" PRIu64 "\n"
                 "%s",
                 in->drill ? "DRILL: a practice run of the runbook, not a real incident. Respond "
                             "as you would; your times go into the drill's report.\n"
                           : "",
                 sev, inc->title, headline(in->kind), after ? ": " : "", after ? after : "",
                 inc->id, state, inc->runbook,
                 grouped ? "Nodes:     " : "Scope:     ", grouped ? group : scope, opened, age_min,
                 due, link, who, inc->id, inc->id, in->steps ? in->steps : "") < 0)
        ret->body = NULL;
    free(group);
    json_t *payload = json_pack(
        "{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:s, s:s, s:s, s:i}", "incident_id",
        (json_int_t)inc->id, "kind", kind, "severity", sev, "title", inc->title, "state", state,
        "runbook", inc->runbook, "runbook_link", link, "scope",
        json_loads(inc->scope_json, 0, NULL) ?: json_array(), "started_at", opened, "respond_by",
        due, "responders", in->responders ? in->responders : "", "ack_command", "vigilctl ack",
        "show_command", "vigilctl incident show", "level", in->level);
    if (payload) {
        char cmd[64];
        snprintf(cmd, sizeof(cmd), "vigilctl ack %" PRIu64, inc->id);
        json_object_set_new(payload, "ack_command", json_string(cmd));
        snprintf(cmd, sizeof(cmd), "vigilctl incident show %" PRIu64, inc->id);
        json_object_set_new(payload, "show_command", json_string(cmd));
        if (action)
            json_object_set_new(payload, "action", json_string(in->action));
        if (!action && in->note)
            json_object_set_new(payload, "update", json_string(in->note));
        if (in->drill)
            json_object_set_new(payload, "drill", json_true());
        if (grouped)
            json_object_set_new(payload, "group",
                                json_pack("{s:I, s:s}", "nodes_total", (json_int_t)in->nodes_total,
                                          "nodes", in->nodes ? in->nodes : ""));
        ret->payload_json = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(payload);
    }
    if (!ret->subject || !ret->body || !ret->payload_json) {
        page_message_free(ret);
        return -ENOMEM;
    }
    return 0;
}

int page_message_summary(uint32_t count, int64_t cap, const char *subjects,
                         struct page_message *ret)
{
    memset(ret, 0, sizeof(*ret));
    if (asprintf(&ret->subject,
                 "[Vigil] %" PRIu32 " page%s held back (at most %" PRId64 " a minute)", count,
                 count == 1 ? "" : "s", cap) < 0)
        ret->subject = NULL;
    if (asprintf(&ret->body,
                 "You were paged more than %" PRId64 " times in a minute. These pages were held "
                 "back and are summarised here:\n%s\n%s"
                 "Open incidents: vigilctl incidents\n",
                 cap, subjects ? subjects : "",
                 count > 50 ? "(the first 50 are listed)\n" : "") < 0)
        ret->body = NULL;
    json_t *payload = json_pack("{s:s, s:I, s:I}", "kind", "summary", "held", (json_int_t)count,
                                "max_pages_per_minute", (json_int_t)cap);
    if (payload) {
        ret->payload_json = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(payload);
    }
    if (!ret->subject || !ret->body || !ret->payload_json) {
        page_message_free(ret);
        return -ENOMEM;
    }
    return 0;
}

void page_message_free(struct page_message *msg)
{
    free(msg->subject);
    free(msg->body);
    free(msg->payload_json);
    memset(msg, 0, sizeof(*msg));
}

char *page_message_steps(const struct rb_runbook *rb, bool automation_on, const char *pending)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (!f)
        return NULL;
    if (!automation_on)
        fprintf(f, "Automation is off: auto steps wait for approval (vigilctl automation on)\n");
    for (size_t i = 0; rb && i < rb->nresolve; i++) {
        const struct rb_action *a = &rb->resolve[i];
        const char *what = a->mode == RB_MODE_MANUAL    ? "manual: a responder does it by hand"
                           : a->mode == RB_MODE_APPROVE ? "approve: waits for vigilctl approve"
                           : automation_on              ? "auto: Vigil runs it"
                                                        : "auto: waits for vigilctl approve";
        fprintf(f, "%s %s (%s)\n", i == 0 ? "Steps:      " : "            ", a->name, what);
    }
    if (pending && pending[0])
        fprintf(f, "Approve:     %s (vigilctl approve ID)\n", pending);
    if (fclose(f) != 0) {
        free(out);
        return NULL;
    }
    return out;
}
