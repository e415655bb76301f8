/* vigilctl drill RUNBOOK [--node N] [--severity SEVn] [--live] (issue 17: practice drills) */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "ctl_admin.h"
#include "incident_view.h"

static int run_drill(struct ctl_context *ctx, const struct ctl_args *args)
{
    Vigil__RunDrill body = VIGIL__RUN_DRILL__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__AdminReply *reply = NULL;
    const char *node = ctl_args_value(args, "node");
    const char *severity = ctl_args_value(args, "severity");

    if (args->argc != 1 || !args->argv[0][0]) {
        output_error("usage: vigilctl drill RUNBOOK [--node N] [--severity SEVn] [--live]");
        return CTL_EXIT_USAGE;
    }
    if (severity && (body.severity = incident_view_parse_severity(severity)) == 0) {
        output_error("--severity must be SEV1, SEV2, SEV3 or SEV4 (got \"%s\")", severity);
        return CTL_EXIT_USAGE;
    }
    body.runbook = args->argv[0];
    body.node = (char *)(node ? node : "");
    body.live = ctl_args_has(args, "live");
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_RUN_DRILL;
    req.run_drill = &body;
    int r = ctl_admin_request(ctx, &req, "start a drill", NULL, &reply);
    if (r != CTL_EXIT_OK)
        return r;
    if (reply->n_incidents != 1) {
        vigil__admin_reply__free_unpacked(reply, NULL);
        output_error("the coordinator did not say which incident the drill is");
        return CTL_EXIT_FAILURE;
    }
    const Vigil__IncidentInfo *inc = reply->incidents[0];
    int w;
    if (ctx->format == OUTPUT_JSON) {
        json_t *doc = incident_view_json(inc);
        w = output_json_print(&doc, stdout);
    } else {
        w = printf("drill started: incident %" PRIu64 " (%s, %s)\n"
                   "%s\n"
                   "Acknowledge and resolve it as you would a real one; then: vigilctl report "
                   "%" PRIu64 "\n",
                   inc->id, incident_view_severity(inc->severity), inc->runbook,
                   body.live ? "Live: the runbook's real policy is paged, every message marked "
                               "[DRILL]."
                             : "Paged: the drill audience (paging.drills.audience) only, marked "
                               "[DRILL]; steps are a dry run.",
                   inc->id) < 0
                ? -EIO
                : 0;
    }
    vigil__admin_reply__free_unpacked(reply, NULL);
    if (w < 0) {
        output_error("cannot write the output: %s", strerror(-w));
        return CTL_EXIT_FAILURE;
    }
    return CTL_EXIT_OK;
}

static const char drill_help[] =
    "Usage: vigilctl drill RUNBOOK [--node N] [--severity SEVn] [--live]\n"
    "\n"
    "Practises a runbook end to end (the document's closing line: practise these runbooks\n"
    "regularly). An incident opens with a synthetic symptom, the runbook's first one, marked as\n"
    "a drill: its investigation runs (it only reads), its resolve steps are a dry run on the\n"
    "timeline (nothing is requested of any agent), and its pages, marked [DRILL], go to\n"
    "paging.drills.audience only. Acknowledge, note and resolve it like a real incident; the\n"
    "report draft (vigilctl report ID) then lists each person's time to acknowledge and the\n"
    "time to resolve. Silences do not hold a drill back.\n"
    "\n"
    "  --node N        the node the synthetic symptom names (default: none)\n"
    "  --severity SEVn instead of the runbook's severity\n"
    "  --live          page the runbook's real escalation policy and audiences (still marked\n"
    "                  [DRILL]); needs the admin role\n"
    "\n"
    "Needs the responder role. Prints the incident (-o json: as vigilctl incident show).\n";

const struct ctl_command cmd_drills_table[] = {
    {
        .name = "drill",
        .forms = {{"drill RUNBOOK [--node N] [--severity SEVn] [--live]",
                   "practise a runbook: a drill incident paged to the drill audience"}},
        .help = drill_help,
        .options = {{"node", CTL_OPTION_VALUE},
                    {"severity", CTL_OPTION_VALUE},
                    {"live", CTL_OPTION_FLAG}},
        .run = run_drill,
    },
    {0},
};
