/* vigilctl incidents [--status open|all] | incident show ID | ack ID [--note T] |
 * mitigate ID --note T | resolve ID --note T */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "ctl_admin.h"
#include "evidence_view.h"
#include "hold_view.h"
#include "incident_view.h"
#include "timeutil.h"

#define NOTE_MAX_LEN VG_MAX_VALUE_LEN

const char *incident_view_severity(uint32_t severity)
{
    static const char *const names[] = {"SEV1", "SEV2", "SEV3", "SEV4"};
    return severity >= 1 && severity <= 4 ? names[severity - 1] : "SEV?";
}

static json_int_t json_id(uint64_t id)
{
    return id > INT64_MAX ? INT64_MAX : (json_int_t)id;
}

/* "web-1,web-2", or "-" for none. */
static void scope_text(const Vigil__IncidentInfo *inc, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < inc->n_scope && used + 1 < len; i++) {
        int n = snprintf(buf + used, len - used, "%s%s", i ? "," : "", inc->scope[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    if (used >= len && len > 4)
        memcpy(buf + len - 4, "...", 4);
    if (!buf[0])
        snprintf(buf, len, "-");
}

json_t *incident_view_json(const Vigil__IncidentInfo *inc)
{
    json_t *scope = json_array();
    for (size_t i = 0; scope && i < inc->n_scope; i++)
        json_array_append_new(scope, output_json_string(inc->scope[i]));
    /* clang-format off */
    return json_pack("{s:I, s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o*, s:o*}",
                     "id", json_id(inc->id),
                     "fingerprint", output_json_string(inc->fingerprint),
                     "runbook", output_json_string(inc->runbook),
                     "severity", incident_view_severity(inc->severity),
                     "state", output_json_string(inc->state),
                     "title", output_json_string(inc->title),
                     "opened_at", output_json_time(inc->opened_at_ms),
                     "response_due", output_json_time(inc->response_due_ms),
                     "acknowledged_at", output_json_time(inc->acknowledged_at_ms),
                     "resolved_at", output_json_time(inc->resolved_at_ms),
                     "updated_at", output_json_time(inc->updated_at_ms),
                     "scope", scope,
                     "root_incident_id",
                     inc->root_incident_id ? json_integer(json_id(inc->root_incident_id))
                                           : json_null());
    /* clang-format on */
}

json_t *incident_view_event_json(const Vigil__IncidentEvent *ev)
{
    json_t *data = json_loads(ev->data_json, 0, NULL);
    if (!json_is_object(data)) {
        json_decref(data);
        data = json_object();
    }
    json_t *doc = json_pack("{s:I, s:o, s:o, s:o, s:o, s:o*}", "id", json_id(ev->id), "at",
                            output_json_time(ev->at_ms), "kind", output_json_string(ev->kind),
                            "actor", output_json_string(ev->actor), "text",
                            output_json_string(ev->text), "data", data);
    if (doc && ev->incident_id)
        json_object_set_new(doc, "incident", json_integer(json_id(ev->incident_id)));
    return doc;
}

static int print_list_json(const Vigil__AdminReply *reply)
{
    json_t *list = json_array();
    if (!list)
        return -ENOMEM;
    for (size_t i = 0; i < reply->n_incidents; i++) {
        if (json_array_append_new(list, incident_view_json(reply->incidents[i])) < 0) {
            json_decref(list);
            return -ENOMEM;
        }
    }
    return output_json_print(&list, stdout);
}

/* Time left until due ("in 12m") or past it ("5m overdue"); "-" once acknowledged. */
static void due_text(const Vigil__IncidentInfo *inc, int64_t now, char *buf, size_t len)
{
    char ago[32];
    if (inc->acknowledged_at_ms != 0 || strcmp(inc->state, "detected") != 0) {
        snprintf(buf, len, "-");
        return;
    }
    if (inc->response_due_ms <= now) {
        output_time_ago(inc->response_due_ms, now, ago, sizeof(ago));
        /* "5m ago" -> "5m overdue" */
        char *sp = strchr(ago, ' ');
        if (sp)
            *sp = '\0';
        snprintf(buf, len, "%s overdue", ago);
        return;
    }
    output_time_ago(now, inc->response_due_ms, ago, sizeof(ago));
    char *sp = strchr(ago, ' ');
    if (sp)
        *sp = '\0';
    snprintf(buf, len, "in %s", ago);
}

static int print_list_table(const Vigil__AdminReply *reply)
{
    static const char *const headers[] = {"ID",    "SEV",    "STATE", "TITLE",
                                          "SCOPE", "OPENED", "AGE",   "DUE"};
    output_table_t *table = output_table_new(8, headers);
    int64_t now = vg_wall_ms();
    int r = 0;

    if (!table)
        return -ENOMEM;
    for (size_t i = 0; i < reply->n_incidents && r == 0; i++) {
        const Vigil__IncidentInfo *inc = reply->incidents[i];
        char id[24], scope[256], opened[40], age[32], due[40];
        snprintf(id, sizeof(id), "%" PRIu64, inc->id);
        scope_text(inc, scope, sizeof(scope));
        if (output_time_rfc3339(inc->opened_at_ms, opened, sizeof(opened)) < 0)
            snprintf(opened, sizeof(opened), "-");
        output_time_ago(inc->opened_at_ms, now, age, sizeof(age));
        due_text(inc, now, due, sizeof(due));
        const char *cells[] = {
            id, incident_view_severity(inc->severity), inc->state, inc->title, scope, opened, age,
            due};
        r = output_table_add_row(table, cells);
    }
    if (r == 0)
        r = output_table_print(table, stdout);
    output_table_destroy(&table);
    return r;
}

static int finish(Vigil__AdminReply *reply, int r)
{
    vigil__admin_reply__free_unpacked(reply, NULL);
    if (r < 0) {
        output_error("cannot write the output: %s", strerror(-r));
        return CTL_EXIT_FAILURE;
    }
    return CTL_EXIT_OK;
}

#define INCIDENTS_PAGE 500 /* incidents per request; the listing pages through all of them */

static int run_incidents(struct ctl_context *ctx, const struct ctl_args *args)
{
    const char *status = ctl_args_value(args, "status");
    Vigil__ListIncidents body = VIGIL__LIST_INCIDENTS__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__AdminReply **pages = NULL;
    size_t npages = 0;

    if (args->argc > 0) {
        output_error("incidents takes no arguments (got \"%s\"); see 'vigilctl incident show ID'",
                     args->argv[0]);
        return CTL_EXIT_USAGE;
    }
    if (status && strcmp(status, "open") != 0 && strcmp(status, "all") != 0) {
        output_error("--status must be open or all (got \"%s\")", status);
        return CTL_EXIT_USAGE;
    }
    body.all = status && strcmp(status, "all") == 0;
    body.limit = INCIDENTS_PAGE;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_LIST_INCIDENTS;
    req.list_incidents = &body;
    int r = ctl_admin_request_pages(ctx, &req, &body.cursor, "list incidents", &pages, &npages);
    if (r != CTL_EXIT_OK)
        return r;

    /* One reply's view of every page: the incidents of all of them, newest first. */
    size_t total = 0;
    for (size_t i = 0; i < npages; i++)
        total += pages[i]->n_incidents;
    Vigil__AdminReply all = *pages[0];
    all.incidents = calloc(total ? total : 1, sizeof(Vigil__IncidentInfo *));
    all.n_incidents = 0;
    if (!all.incidents) {
        ctl_admin_pages_free(pages, npages);
        output_error("out of memory");
        return CTL_EXIT_FAILURE;
    }
    for (size_t i = 0; i < npages; i++)
        for (size_t k = 0; k < pages[i]->n_incidents; k++)
            all.incidents[all.n_incidents++] = pages[i]->incidents[k];
    r = ctx->format == OUTPUT_JSON ? print_list_json(&all) : print_list_table(&all);
    free(all.incidents);
    ctl_admin_pages_free(pages, npages);
    if (r < 0) {
        output_error("cannot write the output: %s", strerror(-r));
        return CTL_EXIT_FAILURE;
    }
    return CTL_EXIT_OK;
}

/* An incident id: a decimal number from 1 on. */
uint32_t incident_view_parse_severity(const char *text)
{
    if (!text)
        return 0;
    if ((text[0] == 'S' || text[0] == 's') && (text[1] == 'E' || text[1] == 'e') &&
        (text[2] == 'V' || text[2] == 'v'))
        text += 3;
    return text[0] >= '1' && text[0] <= '4' && text[1] == '\0' ? (uint32_t)(text[0] - '0') : 0;
}

int incident_view_parse_id(const char *cmd, const char *text, uint64_t *ret_id)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = text[0] >= '0' && text[0] <= '9' ? strtoull(text, &end, 10) : 0;
    if (errno != 0 || v == 0 || !end || *end != '\0') {
        output_error("%s: \"%s\" is not an incident id (a number, as 'vigilctl incidents' lists "
                     "it)",
                     cmd, text);
        return -EINVAL;
    }
    *ret_id = v;
    return 0;
}

/* The runbook steps of an incident: its timeline notes whose data names a step (the admin
 * thread's runbook steps and the main loop's verify verdicts, docs/remediation.md), in order.
 * A JSON array of {step, mode, state, request_id}; NULL when out of memory. */
static json_t *incident_steps(const Vigil__AdminReply *reply)
{
    json_t *steps = json_array();
    for (size_t i = 0; steps && i < reply->n_incident_events; i++) {
        const Vigil__IncidentEvent *ev = reply->incident_events[i];
        if (strcmp(ev->kind, "note") != 0 || !ev->data_json[0])
            continue;
        json_t *data = json_loads(ev->data_json, 0, NULL);
        const char *step = json_string_value(json_object_get(data, "step"));
        if (step) {
            const char *mode = json_string_value(json_object_get(data, "mode"));
            const char *state = json_string_value(json_object_get(data, "state"));
            const char *id = json_string_value(json_object_get(data, "request_id"));
            json_array_append_new(steps, json_pack("{s:s, s:s, s:s, s:s}", "step", step, "mode",
                                                   mode ? mode : "", "state", state ? state : "",
                                                   "request_id", id ? id : ""));
        }
        json_decref(data);
    }
    return steps;
}

/* The issue filed for the incident (paging.tickets, docs/notifications.md "Tickets"): the link
 * of the timeline note whose data names a "ticket". malloc'd; NULL when none was filed. */
static char *incident_ticket(const Vigil__AdminReply *reply)
{
    char *url = NULL;
    for (size_t i = 0; !url && i < reply->n_incident_events; i++) {
        const Vigil__IncidentEvent *ev = reply->incident_events[i];
        if (strcmp(ev->kind, "note") != 0 || !ev->data_json[0] || !strstr(ev->data_json, "ticket"))
            continue;
        json_t *data = json_loads(ev->data_json, 0, NULL);
        const char *ticket = json_string_value(json_object_get(data, "ticket"));
        if (ticket && ticket[0])
            url = strdup(ticket);
        json_decref(data);
    }
    return url;
}

static int print_show_json(const Vigil__AdminReply *reply)
{
    json_t *doc = incident_view_json(reply->incidents[0]);
    json_t *timeline = json_array();
    if (!doc || !timeline) {
        json_decref(doc);
        json_decref(timeline);
        return -ENOMEM;
    }
    for (size_t i = 0; i < reply->n_incident_events; i++)
        json_array_append_new(timeline, incident_view_event_json(reply->incident_events[i]));
    json_object_set_new(doc, "timeline", timeline);
    json_t *steps = incident_steps(reply);
    if (!steps) {
        json_decref(doc);
        return -ENOMEM;
    }
    json_object_set_new(doc, "steps", steps);
    char *ticket = incident_ticket(reply);
    json_object_set_new(doc, "ticket", ticket ? output_json_string(ticket) : json_null());
    free(ticket);
    json_t *evidence = json_array();
    for (size_t i = 0; evidence && i < reply->n_evidence; i++)
        json_array_append_new(evidence, evidence_view_json(reply->evidence[i]));
    if (evidence)
        json_object_set_new(doc, "investigation", evidence);
    /* Its legal hold (cmd_holds.c): null when it never had one. */
    json_object_set_new(doc, "hold", reply->n_holds ? hold_view_json(reply->holds[0]) : json_null());
    return output_json_print(&doc, stdout);
}

static int print_show_text(const Vigil__AdminReply *reply)
{
    const Vigil__IncidentInfo *inc = reply->incidents[0];
    char title[512], scope[1024], opened[40], due[40], fp[512];
    output_sanitize(inc->title, title, sizeof(title));
    output_sanitize(inc->fingerprint, fp, sizeof(fp));
    scope_text(inc, scope, sizeof(scope));
    char safe_scope[1024];
    output_sanitize(scope, safe_scope, sizeof(safe_scope));
    if (output_time_rfc3339(inc->opened_at_ms, opened, sizeof(opened)) < 0)
        snprintf(opened, sizeof(opened), "-");
    if (output_time_rfc3339(inc->response_due_ms, due, sizeof(due)) < 0)
        snprintf(due, sizeof(due), "-");
    if (printf("incident %" PRIu64 ": %s\n"
               "  severity      %s\n"
               "  state         %s\n"
               "  runbook       %s\n"
               "  fingerprint   %s\n"
               "  scope         %s\n"
               "  opened        %s\n"
               "  response due  %s\n",
               inc->id, title, incident_view_severity(inc->severity), inc->state, inc->runbook, fp,
               safe_scope, opened, due) < 0)
        return -EIO;
    char *ticket = incident_ticket(reply);
    char safe_ticket[1024] = "";
    if (ticket)
        output_sanitize(ticket, safe_ticket, sizeof(safe_ticket));
    free(ticket);
    if (reply->n_holds > 0) {
        char hold[1400];
        hold_view_line(reply->holds[0], hold, sizeof(hold));
        if (printf("  legal hold    %s\n", hold) < 0)
            return -EIO;
    }
    if (printf("%s%s%s\n", safe_ticket[0] ? "  ticket        " : "", safe_ticket,
               safe_ticket[0] ? "\n" : "") < 0)
        return -EIO;

    json_t *steps = incident_steps(reply);
    if (!steps)
        return -ENOMEM;
    if (json_array_size(steps) > 0) {
        static const char *const step_headers[] = {"STEP", "MODE", "STATE", "REQUEST"};
        output_table_t *st = output_table_new(4, step_headers);
        int sr = st ? 0 : -ENOMEM;
        for (size_t i = 0; sr == 0 && i < json_array_size(steps); i++) {
            json_t *one = json_array_get(steps, i);
            const char *id = json_string_value(json_object_get(one, "request_id"));
            const char *cells[] = {json_string_value(json_object_get(one, "step")),
                                   json_string_value(json_object_get(one, "mode")),
                                   json_string_value(json_object_get(one, "state")),
                                   id && id[0] ? id : NULL};
            sr = output_table_add_row(st, cells);
        }
        if (sr == 0 && printf("steps\n") < 0)
            sr = -EIO;
        if (sr == 0)
            sr = output_table_print(st, stdout);
        if (sr == 0 && printf("\n") < 0)
            sr = -EIO;
        output_table_destroy(&st);
        if (sr < 0) {
            json_decref(steps);
            return sr;
        }
    }
    json_decref(steps);
    if (reply->n_evidence > 0) {
        /* The runbook's investigation: what was collected from the nodes when it opened. */
        if (printf("investigation\n") < 0)
            return -EIO;
        fflush(stdout);
        int er = evidence_view_table(reply->evidence, reply->n_evidence, false);
        if (er < 0)
            return er;
        if (printf("\n") < 0)
            return -EIO;
    }

    static const char *const headers[] = {"AT", "KIND", "ACTOR", "TEXT"};
    output_table_t *table = output_table_new(4, headers);
    int r = 0;
    if (!table)
        return -ENOMEM;
    for (size_t i = 0; i < reply->n_incident_events && r == 0; i++) {
        const Vigil__IncidentEvent *ev = reply->incident_events[i];
        char at[40];
        if (output_time_rfc3339(ev->at_ms, at, sizeof(at)) < 0)
            snprintf(at, sizeof(at), "-");
        const char *cells[] = {at, ev->kind, ev->actor, ev->text[0] ? ev->text : NULL};
        r = output_table_add_row(table, cells);
    }
    if (r == 0)
        r = output_table_print(table, stdout);
    output_table_destroy(&table);
    return r;
}

static int run_incident(struct ctl_context *ctx, const struct ctl_args *args)
{
    Vigil__ShowIncident body = VIGIL__SHOW_INCIDENT__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__AdminReply *reply = NULL;
    char what[64], subject[48];

    if (args->argc != 2 || strcmp(args->argv[0], "show") != 0) {
        output_error("usage: vigilctl incident show ID");
        return CTL_EXIT_USAGE;
    }
    if (incident_view_parse_id("incident show", args->argv[1], &body.id) < 0)
        return CTL_EXIT_USAGE;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_SHOW_INCIDENT;
    req.show_incident = &body;
    snprintf(what, sizeof(what), "show incident %" PRIu64, body.id);
    snprintf(subject, sizeof(subject), "incident %" PRIu64, body.id);
    int r = ctl_admin_request(ctx, &req, what, subject, &reply);
    if (r != CTL_EXIT_OK)
        return r;
    if (reply->n_incidents != 1) {
        vigil__admin_reply__free_unpacked(reply, NULL);
        output_error("the coordinator's answer to 'show incident' holds no incident");
        return CTL_EXIT_FAILURE;
    }
    return finish(reply,
                  ctx->format == OUTPUT_JSON ? print_show_json(reply) : print_show_text(reply));
}

enum change_kind { CHANGE_ACK, CHANGE_MITIGATE, CHANGE_RESOLVE };

/* ack ID [--note TEXT] | mitigate ID --note TEXT | resolve ID --note TEXT */
static int change(struct ctl_context *ctx, enum change_kind kind, const struct ctl_args *args)
{
    static const char *const cmds[] = {"ack", "mitigate", "resolve"};
    static const char *const verbs[] = {"acknowledge", "mitigate", "resolve"};
    static const char *const states[] = {"acknowledged", "mitigated", "resolved"};
    const char *cmd = cmds[kind];
    Vigil__AckIncident ack = VIGIL__ACK_INCIDENT__INIT;
    Vigil__MitigateIncident mit = VIGIL__MITIGATE_INCIDENT__INIT;
    Vigil__ResolveIncident res = VIGIL__RESOLVE_INCIDENT__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__AdminReply *reply = NULL;
    char what[64], subject[48];
    uint64_t id = 0;

    if (args->argc != 1) {
        output_error("usage: vigilctl %s ID %s", cmd,
                     kind == CHANGE_ACK ? "[--note TEXT]" : "--note TEXT");
        return CTL_EXIT_USAGE;
    }
    if (incident_view_parse_id(cmd, args->argv[0], &id) < 0)
        return CTL_EXIT_USAGE;
    const char *note = ctl_args_value(args, "note");
    if (note == NULL)
        note = "";
    if (kind != CHANGE_ACK && !note[0]) {
        output_error("%s needs --note TEXT: what was done, for the timeline", cmd);
        return CTL_EXIT_USAGE;
    }
    if (strlen(note) > NOTE_MAX_LEN) {
        output_error("--note is longer than %d bytes", NOTE_MAX_LEN);
        return CTL_EXIT_USAGE;
    }
    switch (kind) {
    case CHANGE_RESOLVE:
        res.id = id;
        res.note = (char *)note;
        req.body_case = VIGIL__ADMIN_REQUEST__BODY_RESOLVE_INCIDENT;
        req.resolve_incident = &res;
        break;
    case CHANGE_MITIGATE:
        mit.id = id;
        mit.note = (char *)note;
        req.body_case = VIGIL__ADMIN_REQUEST__BODY_MITIGATE_INCIDENT;
        req.mitigate_incident = &mit;
        break;
    case CHANGE_ACK:
        ack.id = id;
        ack.note = (char *)note;
        req.body_case = VIGIL__ADMIN_REQUEST__BODY_ACK_INCIDENT;
        req.ack_incident = &ack;
        break;
    }
    snprintf(what, sizeof(what), "%s incident %" PRIu64, verbs[kind], id);
    snprintf(subject, sizeof(subject), "incident %" PRIu64, id);
    int r = ctl_admin_request(ctx, &req, what, subject, &reply);
    if (r != CTL_EXIT_OK)
        return r;
    if (ctx->format == OUTPUT_JSON) {
        json_t *doc = reply->n_incidents == 1
                          ? incident_view_json(reply->incidents[0])
                          : json_pack("{s:I, s:s}", "id", json_id(id), "state", states[kind]);
        r = output_json_print(&doc, stdout);
    } else {
        r = printf("incident %" PRIu64 " %s\n", id, states[kind]) < 0 ? -EIO : 0;
    }
    return finish(reply, r);
}

static int run_ack(struct ctl_context *ctx, const struct ctl_args *args)
{
    return change(ctx, CHANGE_ACK, args);
}

static int run_mitigate(struct ctl_context *ctx, const struct ctl_args *args)
{
    return change(ctx, CHANGE_MITIGATE, args);
}

static int run_resolve(struct ctl_context *ctx, const struct ctl_args *args)
{
    return change(ctx, CHANGE_RESOLVE, args);
}

/* ---- the command table ---- */

static const char ack_help[] =
    "Usage: vigilctl ack ID [--note TEXT] [-o table|json]\n"
    "\n"
    "Acknowledges incident ID: you are on it. It moves from detected to acknowledged and\n"
    "the timeline records your operator name and the note (at most 1024 bytes). An unknown\n"
    "id fails with \"incident ID not found\"; acknowledging twice, or an incident past that\n"
    "point, fails with the reason. With -o json: the incident as it now is (the fields of\n"
    "'vigilctl help incidents'). Needs the responder role.\n";

static const char incident_help[] =
    "Usage: vigilctl incident show ID [-o table|json]\n"
    "\n"
    "Everything about incident ID: severity, state, runbook, fingerprint, scope (the nodes\n"
    "involved), when it opened and when a response is due, then its timeline in order:\n"
    "AT KIND ACTOR TEXT. KIND is opened, symptom (the rule engine saw it again, or it\n"
    "cleared), severity (a rise, with its reason), acknowledged, mitigated, resolved\n"
    "(by an operator, or by vigil once the runbook's verify conditions held: the text says\n"
    "which), reopened (the symptom returned soon after a resolve), attached (a dependent\n"
    "symptom explained by this incident), note (an operator's private note, 'vigilctl note';\n"
    "a runbook step; a drill's synthetic symptom), status_update (an operator's update,\n"
    "'vigilctl update', or the automatic one), report or closed; ACTOR is the operator's\n"
    "name or \"vigil\".\n"
    "Then the runbook's steps, and its investigation: the evidence collected from the\n"
    "incident's nodes when it opened (the runbook's investigate list), each with its status,\n"
    "size and SHA-256 ('vigilctl evidence get ID --out FILE' fetches one). \"legal hold\"\n"
    "says whether its evidence is on hold ('vigilctl hold'), since when, by whom and why.\n"
    "With -o json: the object 'vigilctl help incidents' describes, plus \"fingerprint\",\n"
    "\"scope\", \"acknowledged_at\", \"resolved_at\", \"steps\", \"ticket\" (the link of the\n"
    "issue filed in the tracker, paging.tickets; null when none), \"hold\" (as 'vigilctl\n"
    "holds -o json' shows one; null when it never had one), \"investigation\" (as\n"
    "'vigilctl evidence -o json' shows each entry) and \"timeline\": an array of\n"
    "  {\"id\": 7, \"at\": \"...\", \"kind\": \"opened\", \"actor\": \"vigil\",\n"
    "   \"text\": \"...\", \"data\": {...}}\n"
    "The viewer role is enough.\n";

static const char incidents_help[] =
    "Usage: vigilctl incidents [--status open|all] [-o table|json]\n"
    "\n"
    "Lists incidents, newest first (at most 100): ID SEV STATE TITLE SCOPE OPENED AGE DUE.\n"
    "  --status open   (default) detected, acknowledged and mitigated incidents\n"
    "  --status all    resolved and closed ones too\n"
    "SEV is SEV1 (critical, respond within 15 minutes), SEV2 (1 hour), SEV3 (4 hours) or\n"
    "SEV4 (the next business day, 09:00 UTC); DUE is the time left to acknowledge, or how\n"
    "long it is overdue (\"-\" once acknowledged).\n"
    "With -o json: an array of objects\n"
    "  {\"id\": 42, \"runbook\": \"...\", \"severity\": \"SEV2\", \"state\": \"detected\",\n"
    "   \"title\": \"...\", \"opened_at\": \"...\", \"response_due\": \"...\",\n"
    "   \"fingerprint\": \"...\", \"scope\": [\"node\", ...], \"acknowledged_at\": null, ...}\n"
    "times in RFC 3339 UTC. The viewer role is enough.\n";

static const char mitigate_help[] =
    "Usage: vigilctl mitigate ID --note TEXT [-o table|json]\n"
    "\n"
    "Marks incident ID mitigated (from detected or acknowledged): the impact is contained\n"
    "(traffic moved, a feature switched off) while the cause may remain. The note is\n"
    "required: what was done (at most 1024 bytes). The incident stays open until resolved.\n"
    "With -o json: the incident as it now is. Needs the responder role.\n";

static const char resolve_help[] =
    "Usage: vigilctl resolve ID --note TEXT [-o table|json]\n"
    "\n"
    "Resolves incident ID (from detected, acknowledged or mitigated). The note is required:\n"
    "what was done, for the timeline (at most 1024 bytes). If its symptom returns soon\n"
    "after, the same incident reopens. With -o json: the incident as it now is.\n"
    "Needs the responder role.\n";

const struct ctl_command cmd_incidents_table[] = {
    {
        .name = "ack",
        .forms = {{"ack ID [--note TEXT]", "acknowledge an incident"}},
        .help = ack_help,
        .options = {{"note", CTL_OPTION_VALUE}},
        .run = run_ack,
    },
    {
        .name = "incident",
        .forms = {{"incident show ID", "one incident and its timeline"}},
        .help = incident_help,
        .run = run_incident,
    },
    {
        .name = "incidents",
        .forms = {{"incidents [--status open|all]",
                   "open (or all) incidents with severity and response due"}},
        .help = incidents_help,
        .options = {{"status", CTL_OPTION_VALUE}},
        .run = run_incidents,
    },
    {
        .name = "mitigate",
        .forms = {{"mitigate ID --note TEXT", "mark an incident's impact contained"}},
        .help = mitigate_help,
        .options = {{"note", CTL_OPTION_VALUE}},
        .run = run_mitigate,
    },
    {
        .name = "resolve",
        .forms = {{"resolve ID --note TEXT", "resolve an incident, saying what was done"}},
        .help = resolve_help,
        .options = {{"note", CTL_OPTION_VALUE}},
        .run = run_resolve,
    },
    {.name = NULL},
};
