/* vigilctl escalate ID | notifications ID: move an incident's escalation up by hand, and see
 * every message it sent with its outcome. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "ctl_admin.h"
#include "incident_view.h"
#include "timeutil.h"

static int run_escalate(struct ctl_context *ctx, const struct ctl_args *args)
{
    Vigil__EscalateIncident body = VIGIL__ESCALATE_INCIDENT__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__AdminReply *reply = NULL;
    char what[64], subject[48];

    if (args->argc != 1) {
        output_error("usage: vigilctl escalate ID");
        return CTL_EXIT_USAGE;
    }
    if (incident_view_parse_id("escalate", args->argv[0], &body.id) < 0)
        return CTL_EXIT_USAGE;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_ESCALATE_INCIDENT;
    req.escalate_incident = &body;
    snprintf(what, sizeof(what), "escalate incident %" PRIu64, body.id);
    snprintf(subject, sizeof(subject), "incident %" PRIu64, body.id);
    int r = ctl_admin_request(ctx, &req, what, subject, &reply);
    if (r != CTL_EXIT_OK)
        return r;
    if (ctx->format == OUTPUT_JSON) {
        json_t *doc = reply->n_incidents == 1 ? incident_view_json(reply->incidents[0]) : NULL;
        r = doc ? output_json_print(&doc, stdout) : -ENOMEM;
    } else {
        r = printf("incident %" PRIu64 ": the next escalation level is being paged\n", body.id) < 0
                ? -EIO
                : 0;
    }
    vigil__admin_reply__free_unpacked(reply, NULL);
    return r < 0 ? CTL_EXIT_FAILURE : CTL_EXIT_OK;
}

static json_t *notification_json(const Vigil__NotificationInfo *n)
{
    /* clang-format off */
    return json_pack("{s:I, s:o, s:i, s:i, s:o, s:o, s:o, s:o, s:i, s:o*, s:o, s:o, s:o}",
                     "id", (json_int_t)n->id,
                     "kind", output_json_string(n->kind),
                     "level", n->level,
                     "round", n->round,
                     "channel", output_json_string(n->channel),
                     "target", output_json_string(n->target),
                     "event", output_json_string(n->event),
                     "status", output_json_string(n->status),
                     "attempts", (int)n->attempts,
                     "code", n->last_code ? json_integer(n->last_code) : json_null(),
                     "error", output_json_string(n->last_error),
                     "created_at", output_json_time(n->created_at_ms),
                     "sent_at", output_json_time(n->sent_at_ms));
    /* clang-format on */
}

static int print_table(const Vigil__AdminReply *reply)
{
    static const char *const headers[] = {"ID",     "KIND",     "LEVEL", "CHANNEL", "TARGET",
                                          "STATUS", "ATTEMPTS", "CODE",  "SENT",    "ERROR"};
    output_table_t *table = output_table_new(10, headers);
    int r = table ? 0 : -ENOMEM;
    for (size_t i = 0; r == 0 && i < reply->n_notifications; i++) {
        const Vigil__NotificationInfo *n = reply->notifications[i];
        char id[24], level[16], attempts[16], code[16], sent[40];
        snprintf(id, sizeof(id), "%" PRIu64, n->id);
        if (n->level >= 0)
            snprintf(level, sizeof(level), "%d", n->level + 1);
        else
            snprintf(level, sizeof(level), "-");
        snprintf(attempts, sizeof(attempts), "%u", n->attempts);
        if (n->last_code)
            snprintf(code, sizeof(code), "%d", n->last_code);
        else
            snprintf(code, sizeof(code), "-");
        if (!n->sent_at_ms || output_time_rfc3339(n->sent_at_ms, sent, sizeof(sent)) < 0)
            snprintf(sent, sizeof(sent), "-");
        const char *cells[] = {
            id,        n->kind,  level, n->channel, n->target,
            n->status, attempts, code,  sent,       n->last_error[0] ? n->last_error : NULL};
        r = output_table_add_row(table, cells);
    }
    if (r == 0)
        r = output_table_print(table, stdout);
    output_table_destroy(&table);
    return r;
}

static int run_notifications(struct ctl_context *ctx, const struct ctl_args *args)
{
    Vigil__ListNotifications body = VIGIL__LIST_NOTIFICATIONS__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__AdminReply *reply = NULL;
    char what[64], subject[48];

    if (args->argc != 1) {
        output_error("usage: vigilctl notifications ID");
        return CTL_EXIT_USAGE;
    }
    if (incident_view_parse_id("notifications", args->argv[0], &body.id) < 0)
        return CTL_EXIT_USAGE;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_LIST_NOTIFICATIONS;
    req.list_notifications = &body;
    snprintf(what, sizeof(what), "list the notifications of incident %" PRIu64, body.id);
    snprintf(subject, sizeof(subject), "incident %" PRIu64, body.id);
    int r = ctl_admin_request(ctx, &req, what, subject, &reply);
    if (r != CTL_EXIT_OK)
        return r;
    if (ctx->format == OUTPUT_JSON) {
        json_t *list = json_array();
        for (size_t i = 0; list && i < reply->n_notifications; i++)
            json_array_append_new(list, notification_json(reply->notifications[i]));
        r = list ? output_json_print(&list, stdout) : -ENOMEM;
    } else {
        r = print_table(reply);
    }
    vigil__admin_reply__free_unpacked(reply, NULL);
    return r < 0 ? CTL_EXIT_FAILURE : CTL_EXIT_OK;
}

/* ---- the command table ---- */

static const char escalate_help[] =
    "Usage: vigilctl escalate ID [-o table|json]\n"
    "\n"
    "Pages incident ID's next escalation level now instead of at its time (also after an\n"
    "acknowledgement: asking for help). The timeline records who asked. Fails for a\n"
    "resolved incident. Needs the responder role.\n";

static const char notifications_help[] =
    "Usage: vigilctl notifications ID [-o table|json]\n"
    "\n"
    "Every message incident ID sent, oldest first: ID KIND LEVEL CHANNEL TARGET STATUS\n"
    "ATTEMPTS CODE SENT ERROR. KIND is page (an escalation level), audience (told of the\n"
    "opening by severity), update (every status_update_interval while open), acknowledged,\n"
    "resolved or report_due; STATUS is pending, sending, sent or failed (after the last\n"
    "retry); CODE the HTTP status or SMTP reply of the last attempt.\n"
    "With -o json: an array of {\"id\", \"kind\", \"level\" (0 = first; -1 = not a page),\n"
    "\"round\", \"channel\", \"target\", \"event\", \"status\", \"attempts\", \"code\",\n"
    "\"error\", \"created_at\", \"sent_at\"}. The viewer role is enough.\n";

const struct ctl_command cmd_notifications_table[] = {
    {
        .name = "escalate",
        .forms = {{"escalate ID", "page an incident's next escalation level now"}},
        .help = escalate_help,
        .run = run_escalate,
    },
    {
        .name = "notifications",
        .forms = {{"notifications ID", "every message an incident sent, with its outcome"}},
        .help = notifications_help,
        .run = run_notifications,
    },
    {.name = NULL},
};
