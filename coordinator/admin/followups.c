/*
 * Follow-up actions (issue 18, the document's step 5): `vigilctl followup add INCIDENT TEXT
 * [--owner NAME] [--due YYYY-MM-DD]`, `vigilctl followup done ID [--note TEXT]` and `vigilctl
 * followups [--all]`. Each change, its note on the incident's timeline and its audit row are one
 * transaction (store_followups.c, 023_followups.sql); the report draft lists an incident's
 * follow-ups as checkboxes (incidents.c).
 *
 * Everything in a request is hostile until checked here: texts one line of UTF-8 within their
 * bounds, an owner a short name, a due date a day the calendar has.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_internal.h"
#include "log.h"
#include "timeutil.h"
#include "utf8.h"
#include "wire.h"

/* One line of UTF-8 of at most max bytes (at least one when required), without control
 * characters (C0, DEL, C1): it becomes one line of the report and of the timeline. */
static bool line_ok(const char *s, size_t max, bool required)
{
    if (!s || (required && !s[0]) || !vg_text_fits(s, max) || !vg_utf8_valid(s))
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return false;
        if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
            return false;
    }
    return true;
}

/* A name: 1 to STORE_FOLLOWUP_OWNER_MAX characters, one line, not only spaces. */
static bool owner_ok(const char *s)
{
    size_t chars = 0, len = strlen(s);
    bool visible = false;
    if (!line_ok(s, sizeof(((struct store_followup_action *)0)->owner) - 1, true))
        return false;
    for (size_t i = 0; i < len;) {
        size_t n = vg_utf8_char_len(s + i, len - i);
        if (n == 0)
            return false;
        visible |= s[i] != ' ';
        i += n;
        chars++;
    }
    return visible && chars <= STORE_FOLLOWUP_OWNER_MAX;
}

static const char *check_add(const Vigil__AdminRequest *req)
{
    const Vigil__AddFollowup *a = req->add_followup;
    if (a->incident_id == 0 || a->incident_id > INT64_MAX)
        return "an incident id is required (vigilctl incidents lists them)";
    if (!line_ok(a->text, STORE_FOLLOWUP_TEXT_MAX, true))
        return "the follow-up's text is required: one line of UTF-8 text of at most 1024 bytes, "
               "without control characters";
    if (a->owner && a->owner[0] && !owner_ok(a->owner))
        return "--owner must be a name of 1 to 64 characters (UTF-8, one line)";
    if (a->due && a->due[0] && vg_parse_date(a->due, NULL) < 0)
        return "--due must be a calendar date YYYY-MM-DD (a day the month has, year 1970 to "
               "9999)";
    return NULL;
}

static const char *check_finish(const Vigil__AdminRequest *req)
{
    const Vigil__FinishFollowup *f = req->finish_followup;
    if (f->id == 0 || f->id > INT64_MAX)
        return "a follow-up id is required (vigilctl followups lists them)";
    if (f->note && !line_ok(f->note, STORE_FOLLOWUP_TEXT_MAX, false))
        return "--note must be one line of UTF-8 text of at most 1024 bytes, without control "
               "characters";
    return NULL;
}

/* rep->msg.followups points into list, which the reply owns from here. */
static void reply_followups(struct reply *rep, struct store_followup_action *list, size_t n)
{
    if (list && !reply_own(rep, list, free))
        return;
    Vigil__FollowupInfo *infos = reply_own(rep, calloc(n ? n : 1, sizeof(*infos)), free);
    Vigil__FollowupInfo **ptrs =
        reply_own(rep, calloc(n ? n : 1, sizeof(Vigil__FollowupInfo *)), free);
    if (!infos || !ptrs)
        return;
    for (size_t i = 0; list && i < n; i++) {
        Vigil__FollowupInfo *info = &infos[i];
        vigil__followup_info__init(info);
        info->id = list[i].id;
        info->incident_id = list[i].incident_id;
        info->text = list[i].text;
        info->owner = list[i].owner;
        info->due = list[i].due;
        info->overdue = list[i].overdue;
        info->created_by = list[i].created_by;
        info->created_at_ms = list[i].created_at_ms;
        info->done = list[i].done;
        info->done_by = list[i].done_by;
        info->done_at_ms = list[i].done_at_ms;
        info->done_note = list[i].done_note;
        ptrs[i] = info;
    }
    rep->msg.followups = ptrs;
    rep->msg.n_followups = n;
}

static void add_followup(admin_t *self, const struct operator* op, const Vigil__AdminRequest *req,
                         struct reply *rep)
{
    const Vigil__AddFollowup *a = req->add_followup;
    struct store_followup_action *f = calloc(1, sizeof(*f));
    struct store_followup_action *stored = calloc(1, sizeof(*stored));
    char actor[160];
    if (!f || !stored || !admin_incidents_store(self)) {
        free(f);
        free(stored);
        reply_out_of_memory(rep);
        return;
    }
    f->incident_id = a->incident_id;
    snprintf(f->text, sizeof(f->text), "%s", a->text);
    snprintf(f->owner, sizeof(f->owner), "%s", a->owner ? a->owner : "");
    snprintf(f->due, sizeof(f->due), "%s", a->due ? a->due : "");
    snprintf(f->created_by, sizeof(f->created_by), "%s", op->name);
    admin_actor(op, actor, sizeof(actor));
    int r = store_followup_add(self->incidents, f, actor, vg_wall_ms(), stored);
    free(f);
    if (r < 0) {
        free(stored);
        if (r == -ENOENT)
            reply_incident_not_found(rep, a->incident_id);
        else if (r == -EINVAL)
            reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST, "%s",
                        "the follow-up was refused (text, owner and due date must be within "
                        "their limits)");
        else
            reply_store_unavailable(rep, true);
        return;
    }
    vg_log(VG_LOG_INFO, "incident=%" PRIu64 " follow-up added id=%" PRIu64 " by operator=%s",
           stored->incident_id, stored->id, op->name);
    reply_followups(rep, stored, 1);
}

static void finish_followup(admin_t *self, const struct operator* op,
                            const Vigil__AdminRequest *req, struct reply *rep)
{
    const Vigil__FinishFollowup *d = req->finish_followup;
    struct store_followup_action *f = calloc(1, sizeof(*f));
    char actor[160];
    if (!f || !admin_incidents_store(self)) {
        free(f);
        reply_out_of_memory(rep);
        return;
    }
    admin_actor(op, actor, sizeof(actor));
    int r = store_followup_done(self->incidents, d->id, op->name, actor, d->note ? d->note : "",
                                vg_wall_ms(), f);
    if (r < 0) {
        free(f);
        if (r == -ENOENT)
            reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_NOT_FOUND,
                        "follow-up %" PRIu64 " not found (vigilctl followups --all lists them)",
                        d->id);
        else if (r == -EALREADY)
            reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_CONFLICT,
                        "follow-up %" PRIu64 " is done already", d->id);
        else if (r == -EINVAL)
            reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST, "%s",
                        "the note was refused (one line of UTF-8 of at most 1024 bytes)");
        else
            reply_store_unavailable(rep, true);
        return;
    }
    vg_log(VG_LOG_INFO, "incident=%" PRIu64 " follow-up done id=%" PRIu64 " by operator=%s",
           f->incident_id, f->id, op->name);
    reply_followups(rep, f, 1);
}

static void list_followups(admin_t *self, const struct operator* op, const Vigil__AdminRequest *req,
                           struct reply *rep)
{
    (void)op;
    struct store_followup_action *list = NULL;
    size_t n = 0;
    if (!admin_incidents_store(self)) {
        reply_out_of_memory(rep);
        return;
    }
    if (store_followups_list(self->incidents, 0, req->list_followups->all, vg_wall_ms(),
                             STORE_FOLLOWUPS_LISTED_MAX, &list, &n) < 0) {
        reply_store_unavailable(rep, false);
        return;
    }
    reply_followups(rep, list, n);
}

const struct admin_command admin_followup_commands[] = {
    {VIGIL__ADMIN_REQUEST__BODY_ADD_FOLLOWUP, ROLE_RESPONDER, "adding a follow-up action",
     check_add, add_followup},
    {VIGIL__ADMIN_REQUEST__BODY_FINISH_FOLLOWUP, ROLE_RESPONDER, "finishing a follow-up action",
     check_finish, finish_followup},
    {VIGIL__ADMIN_REQUEST__BODY_LIST_FOLLOWUPS, ROLE_VIEWER, "listing follow-up actions", NULL,
     list_followups},
    {0},
};
