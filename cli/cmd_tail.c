/*
 * vigilctl tail: follows every incident's timeline as it grows, one line per change, until
 * interrupted. It asks the coordinator for the events after the last one it printed, so a
 * coordinator restart or a lost reply loses nothing: the next request picks up from there.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "ctl_admin.h"
#include "incident_view.h"
#include "timeutil.h"

#define TAIL_POLL_MS 500
#define TAIL_BATCH 500

static volatile sig_atomic_t stop_requested;

static void on_stop(int signo)
{
    (void)signo;
    stop_requested = 1;
}

static const Vigil__IncidentInfo *incident_of(const Vigil__AdminReply *reply, uint64_t id)
{
    for (size_t i = 0; i < reply->n_incidents; i++)
        if (reply->incidents[i]->id == id)
            return reply->incidents[i];
    return NULL;
}

/* "2026-11-29T19:40:01Z incident 14 SEV2 Application down [detected] opened by vigil: ..." */
static int print_event(const Vigil__IncidentEvent *ev, const Vigil__IncidentInfo *inc,
                       enum output_format format)
{
    if (format == OUTPUT_JSON) {
        json_t *doc = incident_view_event_json(ev);
        if (doc && inc)
            json_object_set_new(doc, "incident", incident_view_json(inc));
        char *line = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(doc);
        int r = line && printf("%s\n", line) >= 0 ? 0 : -EIO;
        free(line);
        return r;
    }
    char at[40], title[300], text[2100];
    if (output_time_rfc3339(ev->at_ms, at, sizeof(at)) < 0)
        snprintf(at, sizeof(at), "-");
    output_sanitize(inc ? inc->title : "?", title, sizeof(title));
    output_sanitize(ev->text, text, sizeof(text));
    return printf("%s incident %" PRIu64 " %s %s [%s] %s by %s%s%s\n", at, ev->incident_id,
                  inc ? incident_view_severity(inc->severity) : "SEV?", title,
                  inc ? inc->state : "?", ev->kind, ev->actor, text[0] ? ": " : "", text) < 0
               ? -EIO
               : 0;
}

static int run_tail(struct ctl_context *ctx, const struct ctl_args *args)
{
    Vigil__TailIncidents body = VIGIL__TAIL_INCIDENTS__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    const struct ctl_config *cfg;
    bool reachable = true;
    char err[512];

    if (args->argc != 0) {
        output_error("usage: vigilctl tail (no arguments; Ctrl-C stops it)");
        return CTL_EXIT_USAGE;
    }
    if (ctl_context_config(ctx, &cfg) != CTL_EXIT_OK)
        return CTL_EXIT_FAILURE;
    struct sigaction sa = {.sa_handler = on_stop};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    /* The first request only learns where the timeline ends: tail shows what happens next. */
    body.from_now = true;
    body.limit = TAIL_BATCH;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_TAIL_INCIDENTS;
    req.tail_incidents = &body;
    bool started = false;
    while (!stop_requested) {
        Vigil__AdminReply *reply = NULL;
        int r = ctl_admin_call(cfg, &req, ctx->timeout_ms, &reply, err, sizeof(err));
        if (r == 0 && ctl_admin_status_check(reply, "follow incidents", NULL, err, sizeof(err)) < 0)
            r = -EIO;
        if (r < 0) {
            if (!started) { /* nothing to follow: say why and stop, like any other command */
                if (reply)
                    vigil__admin_reply__free_unpacked(reply, NULL);
                output_error("%s", err);
                return CTL_EXIT_FAILURE;
            }
            if (reachable)
                fprintf(stderr, "vigilctl: %s; still trying\n", err);
            reachable = false;
        } else {
            if (!reachable)
                fprintf(stderr, "vigilctl: the coordinator answers again\n");
            if (!started)
                fprintf(stderr, "vigilctl: following incident changes; Ctrl-C stops\n");
            reachable = true;
            started = true;
            for (size_t i = 0; i < reply->n_incident_events && r == 0; i++)
                r = print_event(reply->incident_events[i],
                                incident_of(reply, reply->incident_events[i]->incident_id),
                                ctx->format);
            if (reply->last_event_id > body.after_id)
                body.after_id = reply->last_event_id;
            body.from_now = false;
            if (r < 0 || fflush(stdout) != 0) {
                vigil__admin_reply__free_unpacked(reply, NULL);
                return CTL_EXIT_FAILURE; /* the reader went away (a closed pipe) */
            }
        }
        bool more = r == 0 && reply && reply->n_incident_events >= TAIL_BATCH;
        if (reply)
            vigil__admin_reply__free_unpacked(reply, NULL);
        if (!more && !stop_requested) {
            struct timespec ts = {0, TAIL_POLL_MS * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    return CTL_EXIT_OK;
}

/* ---- the command table ---- */

static const char tail_help[] =
    "Usage: vigilctl tail [-o table|json]\n"
    "\n"
    "Follows every incident's timeline from now on, one line per change, until Ctrl-C:\n"
    "  TIME incident ID SEV TITLE [STATE] KIND by ACTOR: TEXT\n"
    "KIND is what happened (opened, symptom, severity, attached, acknowledged, mitigated,\n"
    "resolved, reopened, report, closed); STATE is the incident's state now. The coordinator\n"
    "is asked twice a second; if it stops answering, tail says so once and keeps trying,\n"
    "then goes on from the last change it printed, so nothing is missed.\n"
    "With -o json: one compact JSON object per line (JSON Lines): the event's id, at, kind,\n"
    "actor, text, data, and \"incident\": the incident as 'vigilctl help incidents'\n"
    "describes it. The viewer role is enough.\n";

const struct ctl_command cmd_tail_table[] = {
    {
        .name = "tail",
        .forms = {{"tail", "follow incident changes as they happen"}},
        .help = tail_help,
        .run = run_tail,
    },
    {.name = NULL},
};
