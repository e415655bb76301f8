/* vigilctl hold INCIDENT [--reason TEXT] | hold release INCIDENT [--reason TEXT]
 *          holds [--all]
 * Legal hold (docs/forensics.md "Retention and legal hold"). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "config.h"
#include "ctl_admin.h"
#include "hold_view.h"
#include "timeutil.h"

json_t *hold_view_json(const Vigil__HoldInfo *h)
{
    /* clang-format off */
    return json_pack("{s:I, s:b, s:o, s:o, s:o, s:o, s:o, s:I, s:I}",
                     "incident", (json_int_t)h->incident_id,
                     "held", h->held,
                     "by", output_json_string(h->actor),
                     "at", output_json_time(h->at_ms),
                     "reason", output_json_string(h->reason),
                     "title", output_json_string(h->title),
                     "state", output_json_string(h->state),
                     "artifacts", (json_int_t)h->artifacts,
                     "bytes", (json_int_t)h->bytes);
    /* clang-format on */
}

void hold_view_line(const Vigil__HoldInfo *h, char *buf, size_t len)
{
    char at[40], actor[200], reason[1100];
    if (output_time_rfc3339(h->at_ms, at, sizeof(at)) < 0)
        snprintf(at, sizeof(at), "-");
    output_sanitize(h->actor, actor, sizeof(actor));
    output_sanitize(h->reason, reason, sizeof(reason));
    snprintf(buf, len, "%s since %s by %s%s%s", h->held ? "on hold" : "released", at, actor,
             reason[0] ? ": " : "", reason);
}

static int print_json(const Vigil__AdminReply *reply)
{
    json_t *list = json_array();
    if (!list)
        return -ENOMEM;
    for (size_t i = 0; i < reply->n_holds; i++) {
        if (json_array_append_new(list, hold_view_json(reply->holds[i])) < 0) {
            json_decref(list);
            return -ENOMEM;
        }
    }
    return output_json_print(&list, stdout);
}

static int print_table(const Vigil__AdminReply *reply)
{
    static const char *const headers[] = {"INCIDENT",  "HOLD",  "SINCE", "BY",
                                          "ARTIFACTS", "BYTES", "STATE", "REASON"};
    output_table_t *table = output_table_new(8, headers);
    int r = 0;
    if (!table)
        return -ENOMEM;
    for (size_t i = 0; i < reply->n_holds && r == 0; i++) {
        const Vigil__HoldInfo *h = reply->holds[i];
        char id[24], since[40], artifacts[24], bytes[24];
        snprintf(id, sizeof(id), "%" PRIu64, h->incident_id);
        if (output_time_rfc3339(h->at_ms, since, sizeof(since)) < 0)
            snprintf(since, sizeof(since), "-");
        snprintf(artifacts, sizeof(artifacts), "%" PRIu64, h->artifacts);
        snprintf(bytes, sizeof(bytes), "%" PRIu64, h->bytes);
        const char *cells[] = {
            id,       h->held ? "held" : "released",  since, h->actor, artifacts, bytes,
            h->state, h->reason[0] ? h->reason : NULL};
        r = output_table_add_row(table, cells);
    }
    if (r == 0)
        r = output_table_print(table, stdout);
    output_table_destroy(&table);
    return r;
}

/* Prints the reply's holds (JSON: an array) and frees the reply. */
static int print_reply(struct ctl_context *ctx, Vigil__AdminReply *reply, const char *empty)
{
    int r = 0;
    if (ctx->format == OUTPUT_JSON)
        r = print_json(reply);
    else if (reply->n_holds)
        r = print_table(reply);
    else if (empty)
        r = puts(empty) < 0 ? -EIO : 0;
    vigil__admin_reply__free_unpacked(reply, NULL);
    if (r < 0) {
        output_error("cannot write the holds: %s", strerror(-r));
        return CTL_EXIT_FAILURE;
    }
    return CTL_EXIT_OK;
}

static int parse_incident(const char *text, uint64_t *ret)
{
    int64_t id = 0;
    if (vg_parse_int(text, &id) < 0 || id < 1) {
        output_error("an incident id is a positive number (got \"%s\"; vigilctl incidents lists "
                     "them)",
                     text);
        return CTL_EXIT_USAGE;
    }
    *ret = (uint64_t)id;
    return CTL_EXIT_OK;
}

static int run_hold(struct ctl_context *ctx, const struct ctl_args *args)
{
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__PlaceHold place = VIGIL__PLACE_HOLD__INIT;
    Vigil__ReleaseHold release = VIGIL__RELEASE_HOLD__INIT;
    Vigil__AdminReply *reply = NULL;
    const char *reason = ctl_args_value(args, "reason");
    uint64_t id = 0;
    char what[64];
    int r;

    if (args->argc == 2 && strcmp(args->argv[0], "release") == 0) {
        if ((r = parse_incident(args->argv[1], &id)) != CTL_EXIT_OK)
            return r;
        release.incident_id = id;
        release.reason = (char *)(reason ? reason : "");
        req.body_case = VIGIL__ADMIN_REQUEST__BODY_RELEASE_HOLD;
        req.release_hold = &release;
        snprintf(what, sizeof(what), "release the hold on incident %" PRIu64, id);
    } else if (args->argc == 1) {
        if ((r = parse_incident(args->argv[0], &id)) != CTL_EXIT_OK)
            return r;
        place.incident_id = id;
        place.reason = (char *)(reason ? reason : "");
        req.body_case = VIGIL__ADMIN_REQUEST__BODY_PLACE_HOLD;
        req.place_hold = &place;
        snprintf(what, sizeof(what), "place incident %" PRIu64 " on hold", id);
    } else {
        output_error("usage: vigilctl hold INCIDENT [--reason TEXT] | vigilctl hold release "
                     "INCIDENT [--reason TEXT]");
        return CTL_EXIT_USAGE;
    }
    r = ctl_admin_request(ctx, &req, what, NULL, &reply);
    if (r != CTL_EXIT_OK)
        return r;
    return print_reply(ctx, reply, NULL);
}

static int run_holds(struct ctl_context *ctx, const struct ctl_args *args)
{
    Vigil__ListHolds body = VIGIL__LIST_HOLDS__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__AdminReply *reply = NULL;
    if (args->argc != 0) {
        output_error("usage: vigilctl holds [--all]");
        return CTL_EXIT_USAGE;
    }
    body.all = ctl_args_has(args, "all");
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_LIST_HOLDS;
    req.list_holds = &body;
    int r = ctl_admin_request(ctx, &req, "list legal holds", NULL, &reply);
    if (r != CTL_EXIT_OK)
        return r;
    return print_reply(ctx, reply, body.all ? "no incident was ever on hold" : "no legal holds");
}

/* ---- the command table ---- */

static const char hold_help[] =
    "Usage: vigilctl hold INCIDENT [--reason TEXT]\n"
    "       vigilctl hold release INCIDENT [--reason TEXT]\n"
    "\n"
    "  hold          places incident INCIDENT on legal hold: retention never removes its\n"
    "                evidence (the artifacts of its investigation and of its commands) while\n"
    "                the hold lasts, whatever retention.evidence says. --reason says why (a\n"
    "                case or ticket; at most 1024 bytes); it is kept with the hold.\n"
    "  hold release  ends the hold: its evidence follows retention.evidence again (kept that\n"
    "                long after the incident resolved; 0, the default, keeps it forever).\n"
    "\n"
    "Both are audited and noted on the incident's timeline; 'vigilctl incident show' says\n"
    "whether it is on hold. Placing a hold on a held incident, or releasing one that is not,\n"
    "fails and changes nothing. Prints the hold as 'vigilctl holds' does.\n"
    "Signals are not covered by a hold: they follow retention.signals (export what a case\n"
    "needs with 'vigilctl evidence export').\n"
    "\n"
    "Needs the admin role.\n";

static const char holds_help[] =
    "Usage: vigilctl holds [--all] [-o table|json]\n"
    "\n"
    "  The incidents on legal hold, newest hold first: INCIDENT HOLD SINCE BY ARTIFACTS\n"
    "  BYTES STATE REASON (ARTIFACTS and BYTES: its evidence in the vault, the content that\n"
    "  the hold keeps). --all adds the incidents whose hold was released, as of the release.\n"
    "  With -o json: an array of {\"incident\", \"held\", \"by\", \"at\", \"reason\", \"title\",\n"
    "  \"state\", \"artifacts\", \"bytes\"}.\n"
    "\n"
    "Needs the viewer role.\n";

const struct ctl_command cmd_holds_table[] = {
    {
        .name = "hold",
        .forms = {{"hold INCIDENT [--reason TEXT]", "keep an incident's evidence (legal hold)"},
                  {"hold release INCIDENT", "end a legal hold"}},
        .help = hold_help,
        .options = {{"reason", CTL_OPTION_VALUE}},
        .run = run_hold,
    },
    {
        .name = "holds",
        .forms = {{"holds [--all]", "incidents on legal hold (--all: released ones too)"}},
        .help = holds_help,
        .options = {{"all", CTL_OPTION_FLAG}},
        .run = run_holds,
    },
    {.name = NULL},
};
