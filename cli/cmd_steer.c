/* vigilctl open --runbook R --severity SEVn --title T [--node N] | severity ID SEVn --note WHY |
 * note ID TEXT | update ID TEXT [--public] [--component NAME=STATUS]... [--title T] |
 * status-page export DIR (issue 18: steering an incident by hand, and what the public reads) */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "ctl_admin.h"
#include "incident_view.h"

#define TEXT_MAX 1024
#define TITLE_MAX 255
#define COMPONENTS_MAX 16

/* The incident the reply carries, as 'incident ID STATE' or -o json. */
static int print_incident(struct ctl_context *ctx, Vigil__AdminReply *reply, uint64_t id,
                          const char *what)
{
    int r;
    if (ctx->format == OUTPUT_JSON && reply->n_incidents == 1) {
        json_t *doc = incident_view_json(reply->incidents[0]);
        r = output_json_print(&doc, stdout);
    } else if (reply->n_incidents == 1) {
        const Vigil__IncidentInfo *inc = reply->incidents[0];
        r = printf("incident %" PRIu64 " %s (%s, %s)\n", inc->id, what,
                   incident_view_severity(inc->severity), inc->state) < 0
                ? -EIO
                : 0;
    } else {
        r = printf("incident %" PRIu64 " %s\n", id, what) < 0 ? -EIO : 0;
    }
    vigil__admin_reply__free_unpacked(reply, NULL);
    if (r < 0) {
        output_error("cannot write the output: %s", strerror(-r));
        return CTL_EXIT_FAILURE;
    }
    return CTL_EXIT_OK;
}

static int send(struct ctl_context *ctx, Vigil__AdminRequest *req, const char *what, uint64_t id,
                const char *done)
{
    char subject[48];
    Vigil__AdminReply *reply = NULL;
    snprintf(subject, sizeof(subject), "incident %" PRIu64, id);
    int r = ctl_admin_request(ctx, req, what, id ? subject : NULL, &reply);
    if (r != CTL_EXIT_OK)
        return r;
    uint64_t shown = reply->n_incidents == 1 ? reply->incidents[0]->id : id;
    return print_incident(ctx, reply, shown, done);
}

static int run_open(struct ctl_context *ctx, const struct ctl_args *args)
{
    Vigil__OpenIncident body = VIGIL__OPEN_INCIDENT__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    const char *runbook = ctl_args_value(args, "runbook");
    const char *severity = ctl_args_value(args, "severity");
    const char *title = ctl_args_value(args, "title");
    const char *node = ctl_args_value(args, "node");

    if (args->argc > 0 || !runbook || !runbook[0] || !severity || !title || !title[0]) {
        output_error("usage: vigilctl open --runbook R --severity SEV1..SEV4 --title TEXT "
                     "[--node N]");
        return CTL_EXIT_USAGE;
    }
    body.severity = incident_view_parse_severity(severity);
    if (body.severity == 0) {
        output_error("--severity must be SEV1, SEV2, SEV3 or SEV4 (got \"%s\")", severity);
        return CTL_EXIT_USAGE;
    }
    if (strlen(title) > TITLE_MAX) {
        output_error("--title is longer than %d bytes", TITLE_MAX);
        return CTL_EXIT_USAGE;
    }
    body.runbook = (char *)runbook;
    body.title = (char *)title;
    body.node = (char *)(node ? node : "");
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_OPEN_INCIDENT;
    req.open_incident = &body;
    return send(ctx, &req, "open an incident", 0, "opened");
}

static int run_severity(struct ctl_context *ctx, const struct ctl_args *args)
{
    Vigil__SetIncidentSeverity body = VIGIL__SET_INCIDENT_SEVERITY__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    const char *note = ctl_args_value(args, "note");
    char what[64];

    if (args->argc != 2) {
        output_error("usage: vigilctl severity ID SEV1..SEV4 --note WHY");
        return CTL_EXIT_USAGE;
    }
    if (incident_view_parse_id("severity", args->argv[0], &body.id) < 0)
        return CTL_EXIT_USAGE;
    body.severity = incident_view_parse_severity(args->argv[1]);
    if (body.severity == 0) {
        output_error("severity must be SEV1, SEV2, SEV3 or SEV4 (got \"%s\")", args->argv[1]);
        return CTL_EXIT_USAGE;
    }
    if (!note || !note[0]) {
        output_error("severity needs --note WHY: the reason, for the timeline");
        return CTL_EXIT_USAGE;
    }
    if (strlen(note) > TEXT_MAX) {
        output_error("--note is longer than %d bytes", TEXT_MAX);
        return CTL_EXIT_USAGE;
    }
    body.note = (char *)note;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_SET_INCIDENT_SEVERITY;
    req.set_incident_severity = &body;
    snprintf(what, sizeof(what), "set the severity of incident %" PRIu64, body.id);
    return send(ctx, &req, what, body.id, "severity set");
}

static int run_note(struct ctl_context *ctx, const struct ctl_args *args)
{
    Vigil__AddIncidentNote body = VIGIL__ADD_INCIDENT_NOTE__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    char what[64];

    if (args->argc != 2 || !args->argv[1][0]) {
        output_error("usage: vigilctl note ID TEXT");
        return CTL_EXIT_USAGE;
    }
    if (incident_view_parse_id("note", args->argv[0], &body.id) < 0)
        return CTL_EXIT_USAGE;
    if (strlen(args->argv[1]) > TEXT_MAX) {
        output_error("the note is longer than %d bytes", TEXT_MAX);
        return CTL_EXIT_USAGE;
    }
    body.text = args->argv[1];
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_ADD_INCIDENT_NOTE;
    req.add_incident_note = &body;
    snprintf(what, sizeof(what), "add a note to incident %" PRIu64, body.id);
    return send(ctx, &req, what, body.id, "noted");
}

static int run_update(struct ctl_context *ctx, const struct ctl_args *args)
{
    Vigil__PostStatusUpdate body = VIGIL__POST_STATUS_UPDATE__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__ComponentStatus cs[COMPONENTS_MAX];
    Vigil__ComponentStatus *list[COMPONENTS_MAX];
    char names[COMPONENTS_MAX][129];
    const char *const *given = NULL;
    const char *title = ctl_args_value(args, "title");
    char what[64];

    if (args->argc != 2 || !args->argv[1][0]) {
        output_error("usage: vigilctl update ID TEXT [--public] [--component NAME=STATUS]... "
                     "[--title T]");
        return CTL_EXIT_USAGE;
    }
    if (incident_view_parse_id("update", args->argv[0], &body.id) < 0)
        return CTL_EXIT_USAGE;
    if (strlen(args->argv[1]) > TEXT_MAX) {
        output_error("the update is longer than %d bytes", TEXT_MAX);
        return CTL_EXIT_USAGE;
    }
    if (title && strlen(title) > TITLE_MAX) {
        output_error("--title is longer than %d bytes", TITLE_MAX);
        return CTL_EXIT_USAGE;
    }
    size_t n = ctl_args_list(args, "component", &given);
    if (n > COMPONENTS_MAX) {
        output_error("at most %d --component options", COMPONENTS_MAX);
        return CTL_EXIT_USAGE;
    }
    for (size_t i = 0; i < n; i++) {
        const char *eq = strrchr(given[i], '=');
        const char *status = eq ? eq + 1 : "";
        size_t len = eq ? (size_t)(eq - given[i]) : 0;
        if (len == 0 || len >= sizeof(names[i]) ||
            (strcmp(status, "degraded") != 0 && strcmp(status, "degraded_performance") != 0 &&
             strcmp(status, "partial_outage") != 0 && strcmp(status, "major_outage") != 0)) {
            output_error("--component must be NAME=degraded|partial_outage|major_outage (got "
                         "\"%s\")",
                         given[i]);
            return CTL_EXIT_USAGE;
        }
        memcpy(names[i], given[i], len);
        names[i][len] = '\0';
        vigil__component_status__init(&cs[i]);
        cs[i].component = names[i];
        cs[i].status = (char *)status;
        list[i] = &cs[i];
    }
    body.text = args->argv[1];
    body.public_ = ctl_args_has(args, "public");
    body.title = (char *)(title ? title : "");
    body.components = list;
    body.n_components = n;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_POST_STATUS_UPDATE;
    req.post_status_update = &body;
    snprintf(what, sizeof(what), "post an update of incident %" PRIu64, body.id);
    return send(ctx, &req, what, body.id,
                body.public_ ? "updated (public: on the status page)" : "updated (private)");
}

/* DIR/path written whole: a temporary file renamed over it, so a web server never serves half. */
static int write_file(const char *dir, const char *path, const char *text)
{
    char full[4096], tmp[4200];
    if (snprintf(full, sizeof(full), "%s/%s", dir, path) >= (int)sizeof(full))
        return -ENAMETOOLONG;
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", full, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    size_t len = strlen(text), done = 0;
    while (done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w < 0) {
            int r = -errno;
            close(fd);
            unlink(tmp);
            return r;
        }
        done += (size_t)w;
    }
    if (fsync(fd) < 0 || close(fd) < 0 || rename(tmp, full) < 0) {
        int r = -errno;
        unlink(tmp);
        return r;
    }
    return 0;
}

static int make_dir(const char *path)
{
    return mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : -errno;
}

static int run_status_page(struct ctl_context *ctx, const struct ctl_args *args)
{
    Vigil__GetStatusPage body = VIGIL__GET_STATUS_PAGE__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__AdminReply *reply = NULL;
    char sub[4096];

    if (args->argc != 2 || strcmp(args->argv[0], "export") != 0 || !args->argv[1][0]) {
        output_error("usage: vigilctl status-page export DIR");
        return CTL_EXIT_USAGE;
    }
    const char *dir = args->argv[1];
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_GET_STATUS_PAGE;
    req.get_status_page = &body;
    int r = ctl_admin_request(ctx, &req, "read the status page", NULL, &reply);
    if (r != CTL_EXIT_OK)
        return r;
    int w = make_dir(dir);
    if (w == 0 && snprintf(sub, sizeof(sub), "%s/api", dir) < (int)sizeof(sub))
        w = make_dir(sub);
    if (w == 0 && snprintf(sub, sizeof(sub), "%s/api/v2", dir) < (int)sizeof(sub))
        w = make_dir(sub);
    if (w == 0)
        w = write_file(dir, "index.html", reply->status_page_html ? reply->status_page_html : "");
    if (w == 0)
        w = write_file(dir, "api/v2/summary.json",
                       reply->status_summary_json ? reply->status_summary_json : "");
    if (w == 0)
        w = write_file(dir, "api/v2/status.json",
                       reply->status_status_json ? reply->status_status_json : "");
    vigil__admin_reply__free_unpacked(reply, NULL);
    if (w < 0) {
        output_error("cannot write the status page under %s: %s", dir, strerror(-w));
        return CTL_EXIT_FAILURE;
    }
    if (ctx->format == OUTPUT_JSON) {
        json_t *doc = json_pack("{s:s, s:[s,s,s]}", "dir", dir, "files", "index.html",
                                "api/v2/summary.json", "api/v2/status.json");
        r = output_json_print(&doc, stdout);
    } else {
        r = printf("status page written to %s (index.html, api/v2/summary.json, "
                   "api/v2/status.json)\n",
                   dir) < 0
                ? -EIO
                : 0;
    }
    return r < 0 ? CTL_EXIT_FAILURE : CTL_EXIT_OK;
}

/* ---- the command table ---- */

static const char open_help[] =
    "Usage: vigilctl open --runbook R --severity SEV1..SEV4 --title TEXT [--node N]\n"
    "                     [-o table|json]\n"
    "\n"
    "Opens an incident by hand (a report from a person: a customer call, a colleague). It\n"
    "starts detected, with the response deadline of its severity, and is paged along the\n"
    "runbook's (or the severity's) escalation policy like a detected one; acknowledge,\n"
    "mitigate and resolve it as usual. Symptoms never join it and it never resolves itself:\n"
    "an operator resolves it. --node puts a node in its scope (never on the status page).\n"
    "Prints the new incident's id; with -o json the incident. Needs the responder role.\n";

static const char severity_help[] =
    "Usage: vigilctl severity ID SEV1..SEV4 --note WHY [-o table|json]\n"
    "\n"
    "Sets the severity of open incident ID by hand, up or down; the note (at most 1024\n"
    "bytes) says why and goes on the timeline with your name. The response deadline\n"
    "follows: a rise takes the sooner of the current deadline and the new severity's from\n"
    "now; a fall the new severity's from the opening. So does the escalation: while\n"
    "unacknowledged its deadline moves, and an incident paged along its severity's route\n"
    "moves to the new severity's policy. Audited. Needs the responder role.\n";

static const char note_help[] =
    "Usage: vigilctl note ID TEXT [-o table|json]\n"
    "\n"
    "Adds TEXT (at most 1024 bytes) to incident ID's timeline as a note with your name:\n"
    "findings, what was tried. Notes are private: they never appear on the status page or\n"
    "its JSON. Audited. Needs the responder role.\n";

static const char update_help[] =
    "Usage: vigilctl update ID TEXT [--public] [--component NAME=STATUS]... [--title T]\n"
    "                       [-o table|json]\n"
    "\n"
    "Posts a status update of incident ID in your words (at most 1024 bytes): on the\n"
    "timeline, and it restarts the status-update interval (paging.status_update_interval).\n"
    "With --public it is published: the incident appears on the status page from its\n"
    "first public update, with this text; nothing else of it (notes, nodes, signals,\n"
    "evidence) ever does. --component NAME=STATUS (STATUS degraded, partial_outage or\n"
    "major_outage; up to 16) says which configured components it affects and how; without\n"
    "any, a public update marks those mapped to the incident's runbook degraded. --title is\n"
    "the incident's public name (default: its title). Components return to operational\n"
    "when the incident resolves. Needs the responder role.\n";

static const char status_page_help[] =
    "Usage: vigilctl status-page export DIR\n"
    "\n"
    "Writes the status page exactly as the coordinator serves it as static files, for\n"
    "hosting behind any web server: DIR/index.html, DIR/api/v2/summary.json and\n"
    "DIR/api/v2/status.json (each replaced whole). The viewer role is enough.\n";

const struct ctl_command cmd_steer_table[] = {
    {
        .name = "note",
        .forms = {{"note ID TEXT", "add a private note to an incident's timeline"}},
        .help = note_help,
        .run = run_note,
    },
    {
        .name = "open",
        .forms = {{"open --runbook R --severity SEVn --title T [--node N]",
                   "open an incident by hand"}},
        .help = open_help,
        .options = {{"runbook", CTL_OPTION_VALUE},
                    {"severity", CTL_OPTION_VALUE},
                    {"title", CTL_OPTION_VALUE},
                    {"node", CTL_OPTION_VALUE}},
        .run = run_open,
    },
    {
        .name = "severity",
        .forms = {{"severity ID SEVn --note WHY", "set an incident's severity, up or down"}},
        .help = severity_help,
        .options = {{"note", CTL_OPTION_VALUE}},
        .run = run_severity,
    },
    {
        .name = "status-page",
        .forms = {{"status-page export DIR", "write the status page as static files"}},
        .help = status_page_help,
        .run = run_status_page,
    },
    {
        .name = "update",
        .forms = {{"update ID TEXT [--public] [--component NAME=STATUS]...",
                   "post a status update; --public puts it on the status page"}},
        .help = update_help,
        .options = {{"public", CTL_OPTION_FLAG},
                    {"component", CTL_OPTION_LIST},
                    {"title", CTL_OPTION_VALUE}},
        .run = run_update,
    },
    {.name = NULL},
};
