/* vigilctl report ID [--file FILE]: read (or draft) and store an incident's post-incident report.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "ctl_admin.h"
#include "incident_view.h"

/* The whole of path ("-" = standard input) into *ret_text, NUL-terminated; at most max bytes. */
static int read_report(const char *path, size_t max, char **ret_text)
{
    bool stdin_wanted = strcmp(path, "-") == 0;
    FILE *f = stdin_wanted ? stdin : fopen(path, "r");
    if (!f) {
        output_error("report: cannot open %s: %s", path, strerror(errno));
        return -errno;
    }
    char *text = malloc(max + 2);
    size_t n = text ? fread(text, 1, max + 1, f) : 0;
    int r = 0;
    if (!text) {
        output_error("report: out of memory");
        r = -ENOMEM;
    } else if (ferror(f)) {
        output_error("report: cannot read %s: %s", path, strerror(errno));
        r = -EIO;
    } else if (n > max) {
        output_error("report: %s is larger than %zu bytes", path, max);
        r = -EFBIG;
    } else if (n == 0) {
        output_error("report: %s is empty", path);
        r = -EINVAL;
    } else if (memchr(text, '\0', n)) {
        output_error("report: %s holds NUL bytes; a report is text", path);
        r = -EINVAL;
    }
    if (!stdin_wanted)
        fclose(f);
    if (r < 0) {
        free(text);
        return r;
    }
    text[n] = '\0';
    *ret_text = text;
    return 0;
}

static int store_report(struct ctl_context *ctx, uint64_t id, const char *file)
{
    Vigil__PutIncidentReport body = VIGIL__PUT_INCIDENT_REPORT__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__AdminReply *reply = NULL;
    char what[64], subject[48], *text = NULL;

    if (read_report(file, VG_MAX_REPORT_BYTES, &text) < 0)
        return CTL_EXIT_FAILURE;
    body.id = id;
    body.body = text;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_PUT_INCIDENT_REPORT;
    req.put_incident_report = &body;
    snprintf(what, sizeof(what), "store the report of incident %" PRIu64, id);
    snprintf(subject, sizeof(subject), "incident %" PRIu64, id);
    int r = ctl_admin_request(ctx, &req, what, subject, &reply);
    free(text);
    if (r != CTL_EXIT_OK)
        return r;
    const char *state = reply->n_incidents == 1 ? reply->incidents[0]->state : "?";
    if (ctx->format == OUTPUT_JSON) {
        json_t *doc = reply->n_incidents == 1 ? incident_view_json(reply->incidents[0]) : NULL;
        r = doc ? output_json_print(&doc, stdout) : -ENOMEM;
    } else {
        r = printf("incident %" PRIu64 ": report stored; state %s\n", id, state) < 0 ? -EIO : 0;
    }
    vigil__admin_reply__free_unpacked(reply, NULL);
    return r < 0 ? CTL_EXIT_FAILURE : CTL_EXIT_OK;
}

static int show_report(struct ctl_context *ctx, uint64_t id)
{
    Vigil__GetIncidentReport body = VIGIL__GET_INCIDENT_REPORT__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__AdminReply *reply = NULL;
    char what[64], subject[48];

    body.id = id;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_GET_INCIDENT_REPORT;
    req.get_incident_report = &body;
    snprintf(what, sizeof(what), "read the report of incident %" PRIu64, id);
    snprintf(subject, sizeof(subject), "incident %" PRIu64, id);
    int r = ctl_admin_request(ctx, &req, what, subject, &reply);
    if (r != CTL_EXIT_OK)
        return r;
    if (ctx->format == OUTPUT_JSON) {
        json_t *doc =
            json_pack("{s:I, s:b, s:s}", "id", (json_int_t)id, "draft", reply->report_is_draft,
                      "report", reply->report ? reply->report : "");
        r = doc ? output_json_print(&doc, stdout) : -ENOMEM;
    } else {
        if (reply->report_is_draft)
            fprintf(stderr,
                    "vigilctl: incident %" PRIu64 " has no report yet; this is a draft "
                    "from its timeline. Edit it, then store it with 'vigilctl report %" PRIu64
                    " --file FILE' (that closes a resolved incident).\n",
                    id, id);
        r = fputs(reply->report ? reply->report : "", stdout) < 0 ? -EIO : 0;
    }
    vigil__admin_reply__free_unpacked(reply, NULL);
    return r < 0 ? CTL_EXIT_FAILURE : CTL_EXIT_OK;
}

static int run_report(struct ctl_context *ctx, const struct ctl_args *args)
{
    const char *file = ctl_args_value(args, "file");
    uint64_t id = 0;
    if (args->argc != 1) {
        output_error("usage: vigilctl report ID [--file FILE]");
        return CTL_EXIT_USAGE;
    }
    if (incident_view_parse_id("report", args->argv[0], &id) < 0)
        return CTL_EXIT_USAGE;
    return file ? store_report(ctx, id, file) : show_report(ctx, id);
}

/* ---- the command table ---- */

static const char report_help[] =
    "Usage: vigilctl report ID [-o table|json]\n"
    "       vigilctl report ID --file FILE\n"
    "\n"
    "The post-incident report (the incident-response document asks for one within 24 hours\n"
    "of the resolution).\n"
    "  report ID              prints the stored report; when there is none yet, a draft in\n"
    "                         the document's template, filled from the incident and its\n"
    "                         timeline (a note on stderr says it is a draft). With -o json:\n"
    "                         {\"id\": N, \"draft\": true|false, \"report\": \"...\"}.\n"
    "  report ID --file FILE  stores FILE (\"-\" = standard input; UTF-8 text, at most\n"
    "                         256 KiB) as the report. The first report of a resolved\n"
    "                         incident closes it; a later one is kept as a new version.\n"
    "                         An incident still open is refused: resolve it first.\n"
    "Reading needs the viewer role, storing the responder role.\n";

const struct ctl_command cmd_report_table[] = {
    {
        .name = "report",
        .forms = {{"report ID [--file FILE]",
                   "print (or draft) an incident's report; store one and close"}},
        .help = report_help,
        .options = {{"file", CTL_OPTION_VALUE}},
        .run = run_report,
    },
    {.name = NULL},
};
