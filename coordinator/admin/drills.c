/*
 * Practice drills (README "Drills"; the document's closing line: practise the runbooks).
 * `vigilctl drill RUNBOOK [--node N] [--live]` plays a runbook end to end with a synthetic
 * symptom: an incident opens like one detected (marked as a drill in the same transaction,
 * 020_drills.sql), its investigation runs (it only reads), its resolve steps are a dry run on
 * the timeline, and the escalation pages it with every message marked [DRILL] — to the drill
 * audience only (paging.drills.audience) unless live. People acknowledge and resolve it as they
 * would a real one; the report draft times them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_internal.h"
#include "log.h"
#include "runbook_load.h"
#include "timeutil.h"
#include "utf8.h"
#include "wire.h"

#define DRILL_NODE_MAX 200

/* "a, b, c" of the set's runbook ids, for a refusal that names what exists. */
static void runbook_ids(const struct rb_set *set, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; set && i < set->n && used < len; i++) {
        int w = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", set->runbooks[i].id);
        used += w > 0 ? (size_t)w : 0;
    }
}

/* The synthetic symptom on the timeline: what the drill pretends was measured. */
static void note_symptom(admin_t *self, uint64_t id, const struct rb_runbook *rb, const char *node,
                         const char *actor)
{
    char text[INCIDENT_NOTE_MAX];
    const struct rb_symptom *s = &rb->symptoms[0];
    snprintf(text, sizeof(text),
             "drill: synthetic symptom %s (signal %s) on %s; nothing was measured", s->id,
             s->cond.match.signal     ? s->cond.match.signal
             : s->cond.promql         ? "promql"
             : s->cond.numerator.signal ? s->cond.numerator.signal
                                      : "-",
             node[0] ? node : "no node");
    if (incidents_note(self->incidents, id, actor, text, vg_wall_ms()) < 0)
        vg_log(VG_LOG_WARN, "incident=%" PRIu64 " drill: synthetic symptom not on the timeline",
               id);
}

/* The runbook's investigate entries and its resolve steps as a dry run, on the admin thread's
 * queue (run after this reply). */
static void queue_steps(admin_t *self, uint64_t id, const struct rb_runbook *rb, const char *node)
{
    const char *one[1] = {node};
    struct steps_job *job = steps_job_new(id, rb, node, one, node[0] ? 1 : 0);
    if (!job) {
        vg_log(VG_LOG_ERROR, "incident=%" PRIu64 " drill: steps not played: out of memory", id);
        return;
    }
    job->dry_run = true;
    admin_runbook_steps(self, &job);
}

static void run_drill(admin_t *self, const struct operator* op, const Vigil__AdminRequest *req,
                      struct reply *rep)
{
    const Vigil__RunDrill *d = req->run_drill;
    char actor[160], subject[160], detail[256], ids[512];
    uint64_t id = 0;

    if (d->live && op->role < ROLE_ADMIN) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_FORBIDDEN, "%s",
                    "a live drill pages the runbook's real policy: it needs the admin role "
                    "(without --live the drill audience is paged)");
        return;
    }
    const struct rb_set *set = admin_runbooks(self);
    const struct rb_runbook *rb = runbooks_find(set, d->runbook);
    if (!rb) {
        runbook_ids(set, ids, sizeof(ids));
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_NOT_FOUND, "no runbook %s in force (%s)",
                    d->runbook, ids[0] ? ids : "no runbooks are loaded");
        runbooks_release(&set);
        return;
    }
    if (!admin_incidents_store(self)) {
        reply_out_of_memory(rep);
        runbooks_release(&set);
        return;
    }
    int severity = d->severity ? (int)d->severity : (int)rb->severity;
    char title[STORE_INCIDENT_TITLE_MAX];
    snprintf(title, sizeof(title), "Drill: %s", rb->title);
    admin_actor(op, actor, sizeof(actor));
    snprintf(subject, sizeof(subject), "runbook %s", rb->id);
    snprintf(detail, sizeof(detail), "%s drill, %s, node %s", d->live ? "live" : "audience-only",
             incidents_severity_name(severity), d->node[0] ? d->node : "-");
    int r = store_incidents_audit_on_commit(self->incidents, actor, "drill.start", subject, detail);
    struct incident_manual m = {.runbook = rb->id,
                                .severity = severity,
                                .title = title,
                                .node = d->node,
                                .actor = op->name,
                                .drill = true,
                                .live = d->live};
    if (r == 0)
        r = incidents_open_manual(self->incidents, &m, vg_wall_ms(), &id);
    store_incidents_audit_clear(self->incidents);
    if (r == 0) {
        vg_log(VG_LOG_WARN, "incident=%" PRIu64 " %s of runbook=%s started by operator=%s", id,
               d->live ? "live drill" : "drill", rb->id, op->name);
        note_symptom(self, id, rb, d->node, op->name);
        queue_steps(self, id, rb, d->node);
        admin_reply_incident(self, rep, id);
    } else if (r == -EEXIST) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_CONFLICT, "%s",
                    "a drill of this runbook started in the same millisecond; try again");
    } else if (r == -EINVAL) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST, "%s",
                    "the drill was refused (node: UTF-8, at most 200 bytes, without '/' or ':')");
    } else {
        reply_store_unavailable(rep, true);
    }
    runbooks_release(&set);
}

static bool text_ok(const char *s, size_t max, bool required)
{
    return s && (!required || s[0]) && vg_text_fits(s, max) && vg_utf8_valid(s);
}

static const char *check_drill(const Vigil__AdminRequest *req)
{
    const Vigil__RunDrill *d = req->run_drill;
    if (!text_ok(d->runbook, STORE_INCIDENT_RUNBOOK_MAX - 1, true))
        return "a runbook id is required (at most 127 bytes)";
    if (d->severity > 4)
        return "severity must be 1 (SEV1) to 4 (SEV4), or 0 for the runbook's";
    if (!text_ok(d->node, DRILL_NODE_MAX, false) || strpbrk(d->node, "/:"))
        return "node: at most 200 bytes, without '/' or ':'";
    return NULL;
}

const struct admin_command admin_drill_commands[] = {
    {VIGIL__ADMIN_REQUEST__BODY_RUN_DRILL, ROLE_RESPONDER, "running drills", check_drill,
     run_drill},
    {0},
};
