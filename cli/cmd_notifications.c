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

int cmd_escalate(struct ctl_context *ctx, int argc, char **argv)
{
    Vigil__EscalateIncident body = VIGIL__ESCALATE_INCIDENT__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__AdminReply *reply = NULL;
    char what[64], subject[48];

    if (argc != 1) {
        output_error("usage: vigilctl escalate ID");
        return CTL_EXIT_USAGE;
    }
    if (incident_view_parse_id("escalate", argv[0], &body.id) < 0)
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

int cmd_notifications(struct ctl_context *ctx, int argc, char **argv)
{
    Vigil__ListNotifications body = VIGIL__LIST_NOTIFICATIONS__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__AdminReply *reply = NULL;
    char what[64], subject[48];

    if (argc != 1) {
        output_error("usage: vigilctl notifications ID");
        return CTL_EXIT_USAGE;
    }
    if (incident_view_parse_id("notifications", argv[0], &body.id) < 0)
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
