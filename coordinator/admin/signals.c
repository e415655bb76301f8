/* Operator requests about signals: the latest value of each series. */
#include <czmq.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "admin_internal.h"
#include "wire.h"

#define MAX_SIGNALS_PER_REPLY 50000

static void free_signal_info(void **item)
{
    Vigil__SignalInfo *info = *item;
    if (!info)
        return;
    admin_labels_free(info->labels, info->n_labels);
    free(info->agent_id);
    free(info->node);
    free(info->name);
    free(info->unit);
    free(info);
    *item = NULL;
}

struct signals_walk {
    zlistx_t *signals;
    const char *glob;
};

static int add_signal(const struct store_signal *sig, void *userdata)
{
    struct signals_walk *w = userdata;

    if (w->glob && w->glob[0] && fnmatch(w->glob, sig->name, 0) != 0)
        return 0;
    if (zlistx_size(w->signals) >= MAX_SIGNALS_PER_REPLY)
        return 1;
    Vigil__SignalInfo *info = calloc(1, sizeof(*info));
    if (!info)
        return -ENOMEM;
    vigil__signal_info__init(info);
    info->agent_id = strdup(sig->agent_id);
    info->node = strdup(sig->node);
    info->name = strdup(sig->name);
    info->unit = strdup(sig->unit);
    info->value = sig->value;
    info->state = (Vigil__SignalState)sig->state;
    info->ts_ms = sig->ts_ms;
    zlistx_add_end(w->signals, info);
    if (!info->agent_id || !info->node || !info->name || !info->unit)
        return -ENOMEM;
    return admin_labels_from_json(sig->labels_json, &info->labels, &info->n_labels) == -ENOMEM
               ? -ENOMEM
               : 0;
}

static const char *check_list(const Vigil__AdminRequest *req)
{
    return vg_text_fits(req->list_signals->node, VG_MAX_NAME_LEN) &&
                   vg_text_fits(req->list_signals->name_glob, VG_MAX_NAME_LEN)
               ? NULL
               : "node or name pattern too long";
}

static void list_signals(admin_t *self, const struct operator* op, const Vigil__AdminRequest *req,
                         struct reply *rep)
{
    (void)op;
    struct signals_walk walk = {.glob = req->list_signals->name_glob};

    walk.signals = reply_own(rep, zlistx_new(), reply_release_list);
    if (!walk.signals) {
        reply_out_of_memory(rep);
        return;
    }
    zlistx_set_destructor(walk.signals, free_signal_info);
    if (store_signals_latest(self->store, req->list_signals->node, add_signal, &walk) < 0) {
        reply_store_unavailable(rep, false);
        return;
    }
    size_t n = zlistx_size(walk.signals);
    rep->msg.signals = reply_own(rep, calloc(n ? n : 1, sizeof(Vigil__SignalInfo *)), free);
    if (!rep->msg.signals) {
        reply_out_of_memory(rep);
        return;
    }
    for (Vigil__SignalInfo *info = zlistx_first(walk.signals); info;
         info = zlistx_next(walk.signals))
        rep->msg.signals[rep->msg.n_signals++] = info;
}

const struct admin_command admin_signal_commands[] = {
    {VIGIL__ADMIN_REQUEST__BODY_LIST_SIGNALS, ROLE_VIEWER, "listing signals", check_list,
     list_signals},
    {0},
};
