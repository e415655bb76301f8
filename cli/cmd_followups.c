/* vigilctl followup add INCIDENT_ID TEXT [--owner NAME] [--due YYYY-MM-DD]
 *          followup done FOLLOWUP_ID [--note TEXT] | followups [--all]
 * (issue 18, the document's step 5: follow-up actions) */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "config.h"
#include "ctl_admin.h"
#include "timeutil.h"

static json_t *followup_json(const Vigil__FollowupInfo *f)
{
    /* clang-format off */
    return json_pack("{s:I, s:I, s:o, s:o, s:o, s:b, s:o, s:o, s:b, s:o, s:o, s:o}",
                     "id", (json_int_t)f->id,
                     "incident_id", (json_int_t)f->incident_id,
                     "text", output_json_string(f->text),
                     "owner", f->owner[0] ? output_json_string(f->owner) : json_null(),
                     "due", f->due[0] ? output_json_string(f->due) : json_null(),
                     "overdue", f->overdue,
                     "created_by", output_json_string(f->created_by),
                     "created_at", output_json_time(f->created_at_ms),
                     "done", f->done,
                     "done_by", f->done ? output_json_string(f->done_by) : json_null(),
                     "done_at", f->done ? output_json_time(f->done_at_ms) : json_null(),
                     "done_note", f->done && f->done_note[0] ? output_json_string(f->done_note)
                                                             : json_null());
    /* clang-format on */
}

static int print_json(const Vigil__AdminReply *reply)
{
    json_t *list = json_array();
    if (!list)
        return -ENOMEM;
    for (size_t i = 0; i < reply->n_followups; i++) {
        if (json_array_append_new(list, followup_json(reply->followups[i])) < 0) {
            json_decref(list);
            return -ENOMEM;
        }
    }
    return output_json_print(&list, stdout);
}

static int print_table(const Vigil__AdminReply *reply)
{
    static const char *const headers[] = {"ID", "INCIDENT", "STATE", "DUE", "OWNER", "AGE", "TEXT"};
    output_table_t *table = output_table_new(7, headers);
    int64_t now = vg_wall_ms();
    int r = 0;
    if (!table)
        return -ENOMEM;
    for (size_t i = 0; i < reply->n_followups && r == 0; i++) {
        const Vigil__FollowupInfo *f = reply->followups[i];
        char id[24], incident[24], age[32], state[300];
        snprintf(id, sizeof(id), "%" PRIu64, f->id);
        snprintf(incident, sizeof(incident), "%" PRIu64, f->incident_id);
        output_time_ago(f->created_at_ms, now, age, sizeof(age));
        if (f->done)
            snprintf(state, sizeof(state), "done (%s)", f->done_by);
        else
            snprintf(state, sizeof(state), "%s", f->overdue ? "OVERDUE" : "open");
        const char *cells[] = {
            id,  incident, state, f->due[0] ? f->due : "-", f->owner[0] ? f->owner : "-",
            age, f->text};
        r = output_table_add_row(table, cells);
    }
    if (r == 0)
        r = output_table_print(table, stdout);
    output_table_destroy(&table);
    return r;
}

/* Prints the reply's follow-ups (JSON: an array) and frees the reply. */
static int print_reply(struct ctl_context *ctx, Vigil__AdminReply *reply, const char *empty)
{
    int r = 0;
    if (ctx->format == OUTPUT_JSON)
        r = print_json(reply);
    else if (reply->n_followups)
        r = print_table(reply);
    else if (empty)
        r = puts(empty) < 0 ? -EIO : 0;
    vigil__admin_reply__free_unpacked(reply, NULL);
    if (r < 0) {
        output_error("cannot write the follow-ups: %s", strerror(-r));
        return CTL_EXIT_FAILURE;
    }
    return CTL_EXIT_OK;
}

static bool parse_id(const char *text, const char *what, uint64_t *ret)
{
    int64_t id = 0;
    if (vg_parse_int(text, &id) < 0 || id < 1) {
        output_error("%s must be a positive number (got \"%s\")", what, text);
        return false;
    }
    *ret = (uint64_t)id;
    return true;
}

static int followup_add(struct ctl_context *ctx, const struct ctl_args *args)
{
    const char *owner = ctl_args_value(args, "owner"), *due = ctl_args_value(args, "due");
    Vigil__AddFollowup body = VIGIL__ADD_FOLLOWUP__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__AdminReply *reply = NULL;

    if (args->argc != 3 || ctl_args_has(args, "note")) {
        output_error("usage: vigilctl followup add INCIDENT_ID TEXT [--owner NAME] [--due "
                     "YYYY-MM-DD]");
        return CTL_EXIT_USAGE;
    }
    if (!parse_id(args->argv[1], "the incident id", &body.incident_id))
        return CTL_EXIT_USAGE;
    if (!args->argv[2][0]) {
        output_error("the follow-up's text must say what is to be done");
        return CTL_EXIT_USAGE;
    }
    if (due && vg_parse_date(due, NULL) < 0) {
        output_error("--due must be a calendar date YYYY-MM-DD, like 2026-12-31 (got \"%s\")", due);
        return CTL_EXIT_USAGE;
    }
    if (owner && !owner[0]) {
        output_error("--owner must name someone");
        return CTL_EXIT_USAGE;
    }
    /* Bounds and shapes are the coordinator's to check as well: its refusal names the field. */
    body.text = args->argv[2];
    body.owner = (char *)(owner ? owner : "");
    body.due = (char *)(due ? due : "");
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_ADD_FOLLOWUP;
    req.add_followup = &body;
    int r = ctl_admin_request(ctx, &req, "add a follow-up", NULL, &reply);
    if (r != CTL_EXIT_OK)
        return r;
    if (ctx->format != OUTPUT_JSON && reply->n_followups == 1) {
        const Vigil__FollowupInfo *f = reply->followups[0];
        int w =
            printf("follow-up %" PRIu64 " added to incident %" PRIu64 "\n", f->id, f->incident_id);
        vigil__admin_reply__free_unpacked(reply, NULL);
        return w < 0 ? CTL_EXIT_FAILURE : CTL_EXIT_OK;
    }
    return print_reply(ctx, reply, NULL);
}

static int followup_done(struct ctl_context *ctx, const struct ctl_args *args)
{
    const char *note = ctl_args_value(args, "note");
    Vigil__FinishFollowup body = VIGIL__FINISH_FOLLOWUP__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__AdminReply *reply = NULL;
    char what[64];

    if (args->argc != 2 || ctl_args_has(args, "owner") || ctl_args_has(args, "due")) {
        output_error("usage: vigilctl followup done FOLLOWUP_ID [--note TEXT]");
        return CTL_EXIT_USAGE;
    }
    if (!parse_id(args->argv[1], "the follow-up id", &body.id))
        return CTL_EXIT_USAGE;
    body.note = (char *)(note ? note : "");
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_FINISH_FOLLOWUP;
    req.finish_followup = &body;
    snprintf(what, sizeof(what), "finish follow-up %" PRIu64, body.id);
    int r = ctl_admin_request(ctx, &req, what, NULL, &reply);
    if (r != CTL_EXIT_OK)
        return r;
    if (ctx->format != OUTPUT_JSON && reply->n_followups == 1) {
        const Vigil__FollowupInfo *f = reply->followups[0];
        int w =
            printf("follow-up %" PRIu64 " of incident %" PRIu64 " done\n", f->id, f->incident_id);
        vigil__admin_reply__free_unpacked(reply, NULL);
        return w < 0 ? CTL_EXIT_FAILURE : CTL_EXIT_OK;
    }
    return print_reply(ctx, reply, NULL);
}

static int run_followup(struct ctl_context *ctx, const struct ctl_args *args)
{
    if (args->argc >= 1 && strcmp(args->argv[0], "add") == 0)
        return followup_add(ctx, args);
    if (args->argc >= 1 && strcmp(args->argv[0], "done") == 0)
        return followup_done(ctx, args);
    output_error("usage: vigilctl followup add INCIDENT_ID TEXT [--owner NAME] [--due "
                 "YYYY-MM-DD] | vigilctl followup done FOLLOWUP_ID [--note TEXT]");
    return CTL_EXIT_USAGE;
}

static int run_followups(struct ctl_context *ctx, const struct ctl_args *args)
{
    Vigil__ListFollowups body = VIGIL__LIST_FOLLOWUPS__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__AdminReply *reply = NULL;
    if (args->argc != 0) {
        output_error("usage: vigilctl followups [--all]");
        return CTL_EXIT_USAGE;
    }
    body.all = ctl_args_has(args, "all");
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_LIST_FOLLOWUPS;
    req.list_followups = &body;
    int r = ctl_admin_request(ctx, &req, "list follow-ups", NULL, &reply);
    if (r != CTL_EXIT_OK)
        return r;
    return print_reply(ctx, reply, body.all ? "no follow-ups" : "no open follow-ups");
}

/* ---- the command table ---- */

static const char followup_help[] =
    "Usage: vigilctl followup add INCIDENT_ID TEXT [--owner NAME] [--due YYYY-MM-DD]\n"
    "       vigilctl followup done FOLLOWUP_ID [--note TEXT]\n"
    "\n"
    "Follow-up actions: what is to be done after an incident (the document's step 5), open or\n"
    "resolved. Each change is a note on the incident's timeline and an audit row; the report\n"
    "draft (vigilctl report ID) lists them as checkboxes under \"Follow-up Actions\".\n"
    "\n"
    "  followup add    adds one to incident INCIDENT_ID: TEXT one line of at most 1024 bytes.\n"
    "                  --owner NAME  who is to do it (at most 64 characters)\n"
    "                  --due DATE    by when, a calendar date YYYY-MM-DD; open ones past it\n"
    "                                are listed first by 'vigilctl followups'\n"
    "                  Prints \"follow-up ID added to incident N\".\n"
    "  followup done   marks FOLLOWUP_ID done (once: a second time is refused), with an\n"
    "                  optional --note. Prints \"follow-up ID of incident N done\".\n"
    "\n"
    "With -o json both print an array of one follow-up, as 'vigilctl followups' does.\n"
    "Needs the responder role.\n";

static const char followups_help[] =
    "Usage: vigilctl followups [--all] [-o table|json]\n"
    "\n"
    "  The open follow-up actions across incidents: ID INCIDENT STATE DUE OWNER AGE TEXT,\n"
    "  overdue ones first (STATE OVERDUE: due before today, UTC), then by due date (none last),\n"
    "  then newest. --all lists the done ones too, after them. With -o json: an array of\n"
    "  {\"id\", \"incident_id\", \"text\", \"owner\", \"due\" (null when none), \"overdue\",\n"
    "  \"created_by\", \"created_at\", \"done\", \"done_by\", \"done_at\", \"done_note\"}.\n"
    "\n"
    "Needs the viewer role.\n";

const struct ctl_command cmd_followups_table[] = {
    {
        .name = "followup",
        .forms = {{"followup add INCIDENT_ID TEXT [--owner N] [--due DATE]",
                   "add a follow-up action to an incident"},
                  {"followup done FOLLOWUP_ID [--note TEXT]", "mark a follow-up action done"}},
        .help = followup_help,
        .options = {{"owner", CTL_OPTION_VALUE},
                    {"due", CTL_OPTION_VALUE},
                    {"note", CTL_OPTION_VALUE}},
        .run = run_followup,
    },
    {
        .name = "followups",
        .forms = {{"followups [--all]",
                   "open follow-up actions, overdue first (--all: every one)"}},
        .help = followups_help,
        .options = {{"all", CTL_OPTION_FLAG}},
        .run = run_followups,
    },
    {.name = NULL},
};
