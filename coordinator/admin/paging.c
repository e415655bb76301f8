/* Operator requests about who is on call: list the schedules now, and add an override. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_internal.h"
#include "log.h"
#include "oncall.h"
#include "paging_config.h"
#include "timeutil.h"
#include "wire.h"

/* Overrides that can matter around an instant: those that end less than this before it. */
#define ONCALL_OVERRIDES_LOOKBACK_MS (31 * 24 * 3600LL * 1000)
/* An override longer than this is a new rotation, not an override. */
#define ONCALL_OVERRIDE_MAX_MS (366 * 24 * 3600LL * 1000)

static size_t schedule_count(const admin_t *self)
{
    return paging_enabled(self->paging) ? self->paging->schedules.count : 0;
}

/* Fills rep->oncall for every schedule (only: just that one) at at_ms. */
static void oncall_reply(admin_t *self, int64_t at_ms, const char *only, struct reply *rep)
{
    size_t n = schedule_count(self), nov = 0;

    if (!self->oncall && n > 0)
        self->oncall = store_oncall_new(store_conninfo(self->store));
    Vigil__OncallInfo *infos = reply_own(rep, calloc(n ? n : 1, sizeof(*infos)), free);
    Vigil__OncallInfo **ptrs = reply_own(rep, calloc(n ? n : 1, sizeof(Vigil__OncallInfo *)), free);
    struct oncall_override *overrides = NULL;
    if (!infos || !ptrs || (n > 0 && !self->oncall)) {
        reply_out_of_memory(rep);
        return;
    }
    if (n > 0 && store_oncall_overrides(self->oncall, at_ms - ONCALL_OVERRIDES_LOOKBACK_MS,
                                        &overrides, &nov) < 0) {
        reply_store_unavailable(rep, false);
        return;
    }
    /* The user names the replies point into live in the overrides. */
    if (overrides && !reply_own(rep, overrides, free))
        return;
    for (size_t i = 0; i < n; i++) {
        const struct paging_schedule *s =
            VG_CFG_ITEM(self->paging->schedules, struct paging_schedule, i);
        Vigil__OncallInfo *info = &infos[rep->msg.n_oncall];
        struct oncall_result who;

        if (only && strcmp(s->name, only) != 0)
            continue;
        if (oncall_who(s, overrides, nov, at_ms, &who) < 0) {
            vg_log(VG_LOG_ERROR, "oncall: schedule=%s cannot be computed (time zone %s)", s->name,
                   s->timezone);
            reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_UNAVAILABLE,
                        "schedule %s: cannot compute who is on call (time zone %s)", s->name,
                        s->timezone);
            return;
        }
        vigil__oncall_info__init(info);
        info->schedule = s->name;
        info->timezone = s->timezone;
        info->user = (char *)(who.user ? who.user : "");
        info->since_ms = who.since_ms == INT64_MIN ? 0 : who.since_ms;
        info->until_ms = who.until_ms;
        info->override = who.override;
        info->override_id = who.override_id;
        info->next_user = (char *)(who.next_user ? who.next_user : "");
        info->next_override = who.next_override;
        ptrs[rep->msg.n_oncall++] = info;
    }
    rep->msg.oncall = ptrs;
}

static bool contact_reachable(const struct paging_config *cfg, const struct paging_contact *c)
{
    for (int ch = 0; ch < PAGING_CHANNELS; ch++) {
        if (paging_channel_usable(cfg, c, (enum paging_channel)ch))
            return true;
    }
    return false;
}

static void add_override(admin_t *self, const struct operator* op,
                         const Vigil__AdminRequest *request, struct reply *rep)
{
    const Vigil__AddOncallOverride *req = request->add_oncall_override;
    const struct paging_schedule *s =
        schedule_count(self) ? paging_schedule_find(self->paging, req->schedule) : NULL;
    const struct paging_contact *c = s ? paging_contact_find(self->paging, req->user) : NULL;
    int64_t now = vg_wall_ms();
    struct oncall_override o;
    uint64_t id = 0;
    char actor[160];

    if (!schedule_count(self)) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_NOT_FOUND, "%s",
                    "no on-call schedules are configured (paging.schedules)");
        return;
    }
    if (!s) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_NOT_FOUND, "no schedule named \"%s\"",
                    req->schedule);
        return;
    }
    if (!c) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_NOT_FOUND,
                    "no contact named \"%s\" (paging.contacts)", req->user);
        return;
    }
    if (!contact_reachable(self->paging, c)) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_CONFLICT,
                    "contact \"%s\" has no channel that works: pages would reach nobody",
                    req->user);
        return;
    }
    if (req->to_ms <= req->from_ms || req->to_ms <= now ||
        req->to_ms - req->from_ms > ONCALL_OVERRIDE_MAX_MS) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST, "%s",
                    req->to_ms <= req->from_ms ? "the override must end after it starts"
                    : req->to_ms <= now        ? "the override ends in the past"
                                               : "an override lasts at most 366 days");
        return;
    }
    if (!self->oncall)
        self->oncall = store_oncall_new(store_conninfo(self->store));
    memset(&o, 0, sizeof(o));
    snprintf(o.schedule, sizeof(o.schedule), "%s", s->name);
    snprintf(o.user, sizeof(o.user), "%s", c->name);
    snprintf(o.created_by, sizeof(o.created_by), "%s", op->name);
    o.from_ms = req->from_ms;
    o.to_ms = req->to_ms;
    o.created_ms = now;
    admin_actor(op, actor, sizeof(actor));
    if (!self->oncall || store_oncall_override_add(self->oncall, &o, actor, &id) < 0) {
        reply_store_unavailable(rep, true);
        return;
    }
    vg_log(VG_LOG_INFO,
           "oncall: override=%" PRIu64 " schedule=%s user=%s from_ms=%" PRId64 " to_ms=%" PRId64
           " by operator=%s",
           id, s->name, c->name, req->from_ms, req->to_ms, op->name);
    rep->msg.override_id = id;
    oncall_reply(self, now, s->name, rep);
}

static void list_oncall(admin_t *self, const struct operator* op, const Vigil__AdminRequest *req,
                        struct reply *rep)
{
    (void)op;
    oncall_reply(self, req->list_oncall->at_ms ? req->list_oncall->at_ms : vg_wall_ms(), NULL, rep);
}

static const char *check_list(const Vigil__AdminRequest *req)
{
    return req->list_oncall->at_ms < 0 ? "the time must not be before 1970" : NULL;
}

static const char *check_override(const Vigil__AdminRequest *req)
{
    const Vigil__AddOncallOverride *o = req->add_oncall_override;
    if (!o->schedule || !o->schedule[0] || !vg_text_fits(o->schedule, VG_MAX_NAME_LEN) ||
        !o->user || !o->user[0] || !vg_text_fits(o->user, VG_MAX_NAME_LEN))
        return "schedule and user are required, each at most 128 bytes";
    if (o->from_ms <= 0 || o->to_ms <= o->from_ms)
        return "the override must end after it starts";
    return NULL;
}

const struct admin_command admin_paging_commands[] = {
    {VIGIL__ADMIN_REQUEST__BODY_LIST_ONCALL, ROLE_VIEWER, "listing who is on call", check_list,
     list_oncall},
    {VIGIL__ADMIN_REQUEST__BODY_ADD_ONCALL_OVERRIDE, ROLE_RESPONDER, "overriding who is on call",
     check_override, add_override},
    {0},
};
