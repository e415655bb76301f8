/* Operator requests about silences (paging/silence.h): add one, list them, end one. Each change
 * and its audit row are one transaction on admin's incidents connection. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_internal.h"
#include "log.h"
#include "silence.h"
#include "timeutil.h"
#include "utf8.h"
#include "wire.h"

/* Long enough for a maintenance window, short enough that a forgotten silence ends. */
#define SILENCE_MIN_MS (60 * INT64_C(1000))
#define SILENCE_MAX_MS (30 * 24 * 3600 * INT64_C(1000))
#define RUNBOOK_ID_MAX 64

static store_incidents_t *connection(admin_t *self)
{
    if (!self->incidents)
        self->incidents = store_incidents_new(store_conninfo(self->store));
    return self->incidents;
}

/* rep->msg.silences points into list, which the reply owns from here. */
static void reply_silences(struct reply *rep, struct store_silence *list, size_t n)
{
    if (list && !reply_own(rep, list, free))
        return;
    Vigil__SilenceInfo *infos = reply_own(rep, calloc(n ? n : 1, sizeof(*infos)), free);
    Vigil__SilenceInfo **ptrs =
        reply_own(rep, calloc(n ? n : 1, sizeof(Vigil__SilenceInfo *)), free);
    if (!infos || !ptrs)
        return;
    for (size_t i = 0; list && i < n; i++) {
        Vigil__SilenceInfo *info = &infos[i];
        vigil__silence_info__init(info);
        info->id = list[i].id;
        info->matcher = (char *)store_silence_matcher_name(list[i].matcher);
        info->value = list[i].value;
        info->reason = list[i].reason;
        info->created_by = list[i].created_by;
        info->created_at_ms = list[i].created_at_ms;
        info->ends_at_ms = list[i].ends_at_ms;
        info->ended_at_ms = list[i].ended_at_ms;
        info->ended_by = list[i].ended_by;
        ptrs[i] = info;
    }
    rep->msg.silences = ptrs;
    rep->msg.n_silences = n;
}

static bool runbook_id_ok(const char *id)
{
    size_t len = strlen(id);
    if (len == 0 || len > RUNBOOK_ID_MAX)
        return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
            return false;
    return true;
}

static bool node_ok(const char *node)
{
    if (!node[0] || !vg_text_fits(node, VG_MAX_NAME_LEN) || !vg_utf8_valid(node))
        return false;
    for (const unsigned char *p = (const unsigned char *)node; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

static const char *check_add(const Vigil__AdminRequest *req)
{
    const Vigil__AddSilence *a = req->add_silence;
    bool runbook = a->runbook && a->runbook[0], node = a->node && a->node[0],
         label = a->label && a->label[0];
    if (runbook + node + label != 1)
        return "a silence matches exactly one of --runbook, --node or --match";
    if (runbook && !runbook_id_ok(a->runbook))
        return "--runbook must be a runbook id: 1 to 64 of a-z, 0-9, - and _";
    if (node && !node_ok(a->node))
        return "--node must be a node name of 1 to 128 bytes of UTF-8 text";
    if (label && !silence_label_valid(a->label))
        return "--match must be KEY=VALUE: KEY 1 to 64 of A-Z, a-z, 0-9, _, . and -; VALUE 1 to "
               "256 bytes of text; severity=SEV1 to SEV4";
    if (a->duration_ms < SILENCE_MIN_MS || a->duration_ms > SILENCE_MAX_MS)
        return "--for must be between 1m and 30d";
    if (!a->reason || !a->reason[0] || !vg_text_fits(a->reason, STORE_SILENCE_REASON_MAX) ||
        !vg_utf8_valid(a->reason))
        return "--reason is required: 1 to 1024 bytes of UTF-8 text";
    return NULL;
}

static void add_silence(admin_t *self, const struct operator* op, const Vigil__AdminRequest *req,
                        struct reply *rep)
{
    const Vigil__AddSilence *a = req->add_silence;
    struct store_silence *s = calloc(1, sizeof(*s));
    char actor[160];
    uint64_t id = 0;
    if (!s || !connection(self)) {
        free(s);
        reply_out_of_memory(rep);
        return;
    }
    s->matcher = a->runbook && a->runbook[0] ? STORE_SILENCE_RUNBOOK
                 : a->node && a->node[0]     ? STORE_SILENCE_NODE
                                             : STORE_SILENCE_LABEL;
    snprintf(s->value, sizeof(s->value), "%s",
             s->matcher == STORE_SILENCE_RUNBOOK ? a->runbook
             : s->matcher == STORE_SILENCE_NODE  ? a->node
                                                 : a->label);
    snprintf(s->reason, sizeof(s->reason), "%s", a->reason);
    snprintf(s->created_by, sizeof(s->created_by), "%s", op->name);
    s->created_at_ms = vg_wall_ms();
    s->ends_at_ms = s->created_at_ms + a->duration_ms;
    admin_actor(op, actor, sizeof(actor));
    if (store_silence_add(self->incidents, s, actor, &id) < 0) {
        free(s);
        reply_store_unavailable(rep, true);
        return;
    }
    s->id = id;
    vg_log(VG_LOG_INFO, "silence added id=%" PRIu64 " %s=\"%s\" for_ms=%" PRId64 " by operator=%s",
           id, store_silence_matcher_name(s->matcher), s->value, a->duration_ms, op->name);
    reply_silences(rep, s, 1);
}

static void list_silences(admin_t *self, const struct operator* op, const Vigil__AdminRequest *req,
                          struct reply *rep)
{
    (void)op;
    struct store_silence *list = NULL;
    size_t n = 0;
    if (!connection(self)) {
        reply_out_of_memory(rep);
        return;
    }
    if (store_silences_list(self->incidents, req->list_silences->all, vg_wall_ms(),
                            STORE_SILENCES_LISTED_MAX, &list, &n) < 0) {
        reply_store_unavailable(rep, false);
        return;
    }
    reply_silences(rep, list, n);
}

static const char *check_end(const Vigil__AdminRequest *req)
{
    return req->end_silence->id == 0 ? "a silence id is required (vigilctl silences lists them)"
                                     : NULL;
}

static void end_silence(admin_t *self, const struct operator* op, const Vigil__AdminRequest *req,
                        struct reply *rep)
{
    uint64_t id = req->end_silence->id;
    struct store_silence *s = calloc(1, sizeof(*s));
    char actor[160];
    if (!s || !connection(self)) {
        free(s);
        reply_out_of_memory(rep);
        return;
    }
    admin_actor(op, actor, sizeof(actor));
    int r = store_silence_end(self->incidents, id, actor, vg_wall_ms(), s);
    if (r < 0) {
        free(s);
        if (r == -ENOENT)
            reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_NOT_FOUND, "no silence %" PRIu64, id);
        else if (r == -EALREADY)
            reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_CONFLICT,
                        "silence %" PRIu64 " has already ended", id);
        else
            reply_store_unavailable(rep, true);
        return;
    }
    vg_log(VG_LOG_INFO, "silence ended id=%" PRIu64 " by operator=%s", id, op->name);
    reply_silences(rep, s, 1);
}

const struct admin_command admin_silence_commands[] = {
    {VIGIL__ADMIN_REQUEST__BODY_ADD_SILENCE, ROLE_RESPONDER, "adding a silence", check_add,
     add_silence},
    {VIGIL__ADMIN_REQUEST__BODY_LIST_SILENCES, ROLE_VIEWER, "listing silences", NULL,
     list_silences},
    {VIGIL__ADMIN_REQUEST__BODY_END_SILENCE, ROLE_RESPONDER, "ending a silence", check_end,
     end_silence},
    {0},
};
