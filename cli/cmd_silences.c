/* vigilctl silence --runbook R|--node N|--match KEY=VALUE --for D --reason TEXT
 *          silence end ID | silences [--all] */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "config.h"
#include "ctl_admin.h"
#include "timeutil.h"

static json_t *silence_json(const Vigil__SilenceInfo *s)
{
    /* clang-format off */
    return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
                     "id", (json_int_t)s->id,
                     "matcher", output_json_string(s->matcher),
                     "value", output_json_string(s->value),
                     "reason", output_json_string(s->reason),
                     "created_by", output_json_string(s->created_by),
                     "created_at", output_json_time(s->created_at_ms),
                     "ends_at", output_json_time(s->ends_at_ms),
                     "ended_at", s->ended_at_ms ? output_json_time(s->ended_at_ms) : json_null(),
                     "ended_by", s->ended_by && s->ended_by[0] ? output_json_string(s->ended_by)
                                                               : json_null());
    /* clang-format on */
}

static int print_json(const Vigil__AdminReply *reply)
{
    json_t *list = json_array();
    if (!list)
        return -ENOMEM;
    for (size_t i = 0; i < reply->n_silences; i++) {
        if (json_array_append_new(list, silence_json(reply->silences[i])) < 0) {
            json_decref(list);
            return -ENOMEM;
        }
    }
    return output_json_print(&list, stdout);
}

static int print_table(const Vigil__AdminReply *reply)
{
    static const char *const headers[] = {"ID", "MATCH", "ENDS", "BY", "REASON"};
    output_table_t *table = output_table_new(5, headers);
    int64_t now = vg_wall_ms();
    int r = 0;
    if (!table)
        return -ENOMEM;
    for (size_t i = 0; i < reply->n_silences && r == 0; i++) {
        const Vigil__SilenceInfo *s = reply->silences[i];
        char id[24], match[600], ends[64];
        snprintf(id, sizeof(id), "%" PRIu64, s->id);
        snprintf(match, sizeof(match), "%s=%s", s->matcher, s->value);
        output_time_rfc3339(s->ended_at_ms ? s->ended_at_ms : s->ends_at_ms, ends, sizeof(ends));
        if (s->ended_at_ms || s->ends_at_ms <= now) {
            size_t used = strlen(ends);
            snprintf(ends + used, sizeof(ends) - used, " (%s)",
                     s->ended_at_ms ? "ended" : "expired");
        }
        const char *cells[] = {id, match, ends, s->created_by, s->reason};
        r = output_table_add_row(table, cells);
    }
    if (r == 0)
        r = output_table_print(table, stdout);
    output_table_destroy(&table);
    return r;
}

/* Prints the reply's silences (JSON: an array) and frees the reply. */
static int print_reply(struct ctl_context *ctx, Vigil__AdminReply *reply, const char *empty)
{
    int r = 0;
    if (ctx->format == OUTPUT_JSON)
        r = print_json(reply);
    else if (reply->n_silences)
        r = print_table(reply);
    else if (empty)
        r = puts(empty) < 0 ? -EIO : 0;
    vigil__admin_reply__free_unpacked(reply, NULL);
    if (r < 0) {
        output_error("cannot write the silences: %s", strerror(-r));
        return CTL_EXIT_FAILURE;
    }
    return CTL_EXIT_OK;
}

static int silence_add(struct ctl_context *ctx, const struct ctl_args *args)
{
    const char *runbook = ctl_args_value(args, "runbook"), *node = ctl_args_value(args, "node");
    const char *match = ctl_args_value(args, "match"), *duration = ctl_args_value(args, "for");
    const char *reason = ctl_args_value(args, "reason");
    Vigil__AddSilence body = VIGIL__ADD_SILENCE__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__AdminReply *reply = NULL;

    if ((runbook != NULL) + (node != NULL) + (match != NULL) != 1 || !duration || !reason) {
        output_error("usage: vigilctl silence --runbook R|--node N|--match KEY=VALUE --for "
                     "DURATION --reason TEXT (exactly one of --runbook, --node, --match)");
        return CTL_EXIT_USAGE;
    }
    if (vg_parse_duration_ms(duration, &body.duration_ms) < 0 || body.duration_ms <= 0) {
        output_error("--for must be a duration like 30m, 2h or 1d (got \"%s\")", duration);
        return CTL_EXIT_USAGE;
    }
    if (!reason[0]) {
        output_error("--reason must say why (it is shown with the silence and audited)");
        return CTL_EXIT_USAGE;
    }
    /* Bounds and shapes are the coordinator's to check: its refusal names the field. */
    body.runbook = (char *)(runbook ? runbook : "");
    body.node = (char *)(node ? node : "");
    body.label = (char *)(match ? match : "");
    body.reason = (char *)reason;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_ADD_SILENCE;
    req.add_silence = &body;
    int r = ctl_admin_request(ctx, &req, "add a silence", NULL, &reply);
    if (r != CTL_EXIT_OK)
        return r;
    return print_reply(ctx, reply, NULL);
}

static int silence_end(struct ctl_context *ctx, const char *id_text)
{
    Vigil__EndSilence body = VIGIL__END_SILENCE__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__AdminReply *reply = NULL;
    int64_t id = 0;
    char what[64];

    if (vg_parse_int(id_text, &id) < 0 || id < 1) {
        output_error("silence end needs a silence id (got \"%s\"; vigilctl silences lists them)",
                     id_text);
        return CTL_EXIT_USAGE;
    }
    body.id = (uint64_t)id;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_END_SILENCE;
    req.end_silence = &body;
    snprintf(what, sizeof(what), "end silence %" PRId64, id);
    int r = ctl_admin_request(ctx, &req, what, NULL, &reply);
    if (r != CTL_EXIT_OK)
        return r;
    return print_reply(ctx, reply, NULL);
}

static int run_silence(struct ctl_context *ctx, const struct ctl_args *args)
{
    if (args->argc == 2 && strcmp(args->argv[0], "end") == 0) {
        if (ctl_args_has(args, "runbook") || ctl_args_has(args, "node") ||
            ctl_args_has(args, "match") || ctl_args_has(args, "for") ||
            ctl_args_has(args, "reason")) {
            output_error("'vigilctl silence end ID' takes no options");
            return CTL_EXIT_USAGE;
        }
        return silence_end(ctx, args->argv[1]);
    }
    if (args->argc != 0) {
        output_error("usage: vigilctl silence --runbook R|--node N|--match KEY=VALUE --for D "
                     "--reason TEXT | vigilctl silence end ID");
        return CTL_EXIT_USAGE;
    }
    return silence_add(ctx, args);
}

static int run_silences(struct ctl_context *ctx, const struct ctl_args *args)
{
    Vigil__ListSilences body = VIGIL__LIST_SILENCES__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__AdminReply *reply = NULL;
    if (args->argc != 0) {
        output_error("usage: vigilctl silences [--all]");
        return CTL_EXIT_USAGE;
    }
    body.all = ctl_args_has(args, "all");
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_LIST_SILENCES;
    req.list_silences = &body;
    int r = ctl_admin_request(ctx, &req, "list silences", NULL, &reply);
    if (r != CTL_EXIT_OK)
        return r;
    return print_reply(ctx, reply, body.all ? "no silences" : "no silences in force");
}

/* ---- the command table ---- */

static const char silence_help[] =
    "Usage: vigilctl silence --runbook R|--node N|--match KEY=VALUE --for DURATION --reason TEXT\n"
    "       vigilctl silence end ID\n"
    "\n"
    "  silence       pages no one about the incidents it matches until it ends: they still\n"
    "                open, join and resolve, and each one's timeline says which silence held\n"
    "                its page back. An incident still unacknowledged when the silence ends is\n"
    "                paged then. Exactly one matcher:\n"
    "                  --runbook R       incidents of runbook R\n"
    "                  --node N          incidents of node N (one across nodes only when N is\n"
    "                                    its only node)\n"
    "                  --match KEY=VALUE severity=SEV1..SEV4, or a label one of the runbook's\n"
    "                                    symptoms selects on (labels: {name: nginx})\n"
    "                --for (1m to 30d: 30m, 2h, 1d) and --reason are required: every silence\n"
    "                ends, and says why. Adding one is audited. Prints the silence\n"
    "                (-o json: an array of one, as 'silences' prints them).\n"
    "  silence end   ends silence ID now (audited); paging resumes for what it matched.\n"
    "\n"
    "Needs the responder role.\n";

static const char silences_help[] =
    "Usage: vigilctl silences [--all] [-o table|json]\n"
    "\n"
    "  The silences in force: ID MATCH ENDS BY REASON. --all lists ended and expired ones\n"
    "  too, newest first. With -o json: an array of {\"id\", \"matcher\" (runbook, node,\n"
    "  label), \"value\", \"reason\", \"created_by\", \"created_at\", \"ends_at\", \"ended_at\"\n"
    "  (null unless ended by hand), \"ended_by\"}.\n"
    "\n"
    "Needs the viewer role.\n";

const struct ctl_command cmd_silences_table[] = {
    {
        .name = "silence",
        .forms = {{"silence --runbook R|--node N|--match K=V --for D --reason T",
                   "page no one about matching incidents for a while"},
                  {"silence end ID", "end a silence now"}},
        .help = silence_help,
        .options = {{"runbook", CTL_OPTION_VALUE},
                    {"node", CTL_OPTION_VALUE},
                    {"match", CTL_OPTION_VALUE},
                    {"for", CTL_OPTION_VALUE},
                    {"reason", CTL_OPTION_VALUE}},
        .run = run_silence,
    },
    {
        .name = "silences",
        .forms = {{"silences [--all]", "the silences in force (--all: every one)"}},
        .help = silences_help,
        .options = {{"all", CTL_OPTION_FLAG}},
        .run = run_silences,
    },
    {.name = NULL},
};
