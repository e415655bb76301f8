/* Operator requests about legal hold (store_retention.h, 026_retention.sql): place one, release
 * one, list them, and an incident's hold for `vigilctl incident show`. A change, its audit row
 * and its timeline note are one transaction on the admin thread's connection. Placing and
 * releasing need the admin role: a hold overrides the retention the configuration sets. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_internal.h"
#include "log.h"
#include "store_retention.h"
#include "timeutil.h"
#include "utf8.h"
#include "wire.h"

#define HOLDS_LISTED_MAX 1000

/* rep->msg.holds points into list, which the reply owns from here. */
static void reply_holds(struct reply *rep, struct store_hold *list, size_t n)
{
    if (list && !reply_own(rep, list, free))
        return;
    Vigil__HoldInfo *infos = reply_own(rep, calloc(n ? n : 1, sizeof(*infos)), free);
    Vigil__HoldInfo **ptrs = reply_own(rep, calloc(n ? n : 1, sizeof(Vigil__HoldInfo *)), free);
    if (!infos || !ptrs)
        return;
    for (size_t i = 0; list && i < n; i++) {
        Vigil__HoldInfo *info = &infos[i];
        vigil__hold_info__init(info);
        info->incident_id = list[i].incident_id;
        info->held = list[i].held;
        info->actor = list[i].actor;
        info->at_ms = list[i].at_ms;
        info->reason = list[i].reason;
        info->title = list[i].title;
        info->state = list[i].state;
        info->artifacts = list[i].artifacts;
        info->bytes = list[i].bytes;
        ptrs[i] = info;
    }
    rep->msg.holds = ptrs;
    rep->msg.n_holds = n;
}

static const char *check_reason(uint64_t incident_id, const char *reason)
{
    if (incident_id == 0 || incident_id > INT64_MAX)
        return "an incident id is required (vigilctl incidents lists them)";
    if (reason && (!vg_text_fits(reason, STORE_HOLD_REASON_MAX) || !vg_utf8_valid(reason)))
        return "--reason must be at most 1024 bytes of UTF-8 text";
    return NULL;
}

static const char *check_place(const Vigil__AdminRequest *req)
{
    return check_reason(req->place_hold->incident_id, req->place_hold->reason);
}

static const char *check_release(const Vigil__AdminRequest *req)
{
    return check_reason(req->release_hold->incident_id, req->release_hold->reason);
}

/* The hold of incident_id as it now is, with its listing fields, into the reply. */
static void reply_current(admin_t *self, struct reply *rep, uint64_t incident_id)
{
    struct store_hold *list = NULL;
    size_t n = 0;
    if (store_holds_list(self->store, true, incident_id, 1, &list, &n) < 0) {
        reply_store_unavailable(rep, false);
        return;
    }
    reply_holds(rep, list, n);
}

static void set_hold(admin_t *self, const struct operator* op, uint64_t incident_id, bool held,
                     const char *reason, struct reply *rep)
{
    char actor[160];
    struct store_hold now;
    memset(&now, 0, sizeof(now));
    admin_actor(op, actor, sizeof(actor));
    int r = store_hold_set(self->store, incident_id, held, actor, op->name, reason, &now);
    if (r == -ENOENT) {
        reply_incident_not_found(rep, incident_id);
        return;
    }
    if (r == -EALREADY) {
        char since[32] = "";
        vg_date_text(now.at_ms, since, sizeof(since));
        if (held)
            reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_CONFLICT,
                        "incident %" PRIu64 " is already on hold (since %s, by %s%s%s)",
                        incident_id, since, now.actor, now.reason[0] ? ": " : "", now.reason);
        else
            reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_CONFLICT,
                        "incident %" PRIu64 " is not on hold (vigilctl holds lists those that are)",
                        incident_id);
        return;
    }
    if (r == -EINVAL) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST,
                    "--reason must be at most 1024 bytes of UTF-8 text");
        return;
    }
    if (r < 0) {
        reply_store_unavailable(rep, true);
        return;
    }
    vg_log(VG_LOG_INFO, "legal hold %s incident=%" PRIu64 " by operator=%s",
           held ? "placed" : "released", incident_id, op->name);
    reply_current(self, rep, incident_id);
}

static void place_hold(admin_t *self, const struct operator* op, const Vigil__AdminRequest *req,
                       struct reply *rep)
{
    set_hold(self, op, req->place_hold->incident_id, true, req->place_hold->reason, rep);
}

static void release_hold(admin_t *self, const struct operator* op, const Vigil__AdminRequest *req,
                         struct reply *rep)
{
    set_hold(self, op, req->release_hold->incident_id, false, req->release_hold->reason, rep);
}

static void list_holds(admin_t *self, const struct operator* op, const Vigil__AdminRequest *req,
                       struct reply *rep)
{
    (void)op;
    struct store_hold *list = NULL;
    size_t n = 0;
    if (store_holds_list(self->store, req->list_holds->all, 0, HOLDS_LISTED_MAX, &list, &n) < 0) {
        reply_store_unavailable(rep, false);
        return;
    }
    reply_holds(rep, list, n);
}

void admin_reply_incident_hold(admin_t *self, struct reply *rep, uint64_t incident_id)
{
    struct store_hold *list = NULL;
    size_t n = 0;
    /* The incident is shown without it rather than not at all. */
    if (store_holds_list(self->store, true, incident_id, 1, &list, &n) < 0) {
        vg_log(VG_LOG_WARN, "incident=%" PRIu64 ": its legal hold could not be read", incident_id);
        return;
    }
    reply_holds(rep, list, n);
}

const struct admin_command admin_hold_commands[] = {
    {VIGIL__ADMIN_REQUEST__BODY_PLACE_HOLD, ROLE_ADMIN, "placing a legal hold", check_place,
     place_hold},
    {VIGIL__ADMIN_REQUEST__BODY_RELEASE_HOLD, ROLE_ADMIN, "releasing a legal hold", check_release,
     release_hold},
    {VIGIL__ADMIN_REQUEST__BODY_LIST_HOLDS, ROLE_VIEWER, "listing legal holds", NULL, list_holds},
    {0},
};
