/* Operator requests about signals: the latest value of each series, a bounded page at a time. */
#include <czmq.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "admin_internal.h"
#include "wire.h"

/* A page without a limit (a vigilctl from before paging): the old bound, so it still sees what
 * it saw; a paging client asks for less per page. */
#define SIGNALS_PAGE_UNASKED 50000
#define SIGNALS_PAGE_MAX 10000

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

/*
 * A shell glob (fnmatch: *, ?, [...], [!...]) as an anchored POSIX regular expression, so the
 * database filters before it limits the page. NULL when it does not fit out.
 */
static char *glob_to_regex(const char *glob)
{
    size_t len = strlen(glob);
    char *out = malloc(len * 2 + 3);
    if (!out)
        return NULL;
    size_t o = 0;
    out[o++] = '^';
    bool in_class = false;
    for (size_t i = 0; i < len; i++) {
        char c = glob[i];
        if (in_class) {
            if (c == ']')
                in_class = false;
            else if (c == '\\')
                out[o++] = '\\';
            out[o++] = c;
            continue;
        }
        switch (c) {
        case '*':
            out[o++] = '.';
            out[o++] = '*';
            break;
        case '?':
            out[o++] = '.';
            break;
        case '[':
            in_class = true;
            out[o++] = '[';
            if (glob[i + 1] == '!') {
                out[o++] = '^';
                i++;
            }
            break;
        case '.':
        case '^':
        case '$':
        case '+':
        case '(':
        case ')':
        case '{':
        case '}':
        case '|':
        case '\\':
            out[o++] = '\\';
            out[o++] = c;
            break;
        default:
            out[o++] = c;
        }
    }
    out[o++] = '$';
    out[o] = '\0';
    return out;
}

/* The cursor: the last series of a page as a JSON array [node, name, labels, agent]. */
static char *cursor_encode(const Vigil__SignalInfo *last, const char *labels_text)
{
    json_t *a = json_pack("[ssss]", last->node, last->name, labels_text, last->agent_id);
    char *text = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    return text;
}

struct signals_walk {
    zlistx_t *signals;
    uint32_t limit;
    bool more;         /* a row beyond the limit exists */
    char *last_labels; /* labels text of the last row kept, for the cursor */
};

static int add_signal(const struct store_signal *sig, void *userdata)
{
    struct signals_walk *w = userdata;

    if (zlistx_size(w->signals) >= w->limit) {
        w->more = true;
        return 1;
    }
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
    free(w->last_labels);
    w->last_labels = strdup(sig->labels_json);
    if (!info->agent_id || !info->node || !info->name || !info->unit || !w->last_labels)
        return -ENOMEM;
    return admin_labels_from_json(sig->labels_json, &info->labels, &info->n_labels) == -ENOMEM
               ? -ENOMEM
               : 0;
}

static const char *check_list(const Vigil__AdminRequest *req)
{
    const Vigil__ListSignals *l = req->list_signals;
    if (!vg_text_fits(l->node, VG_MAX_NAME_LEN) || !vg_text_fits(l->name_glob, VG_MAX_NAME_LEN))
        return "node or name pattern too long";
    if (l->limit > SIGNALS_PAGE_MAX)
        return "at most 10000 signals per page";
    if (!vg_text_fits(l->cursor, 4 * VG_MAX_VALUE_LEN))
        return "cursor too long";
    return NULL;
}

static void list_signals(admin_t *self, const struct operator* op, const Vigil__AdminRequest *req,
                         struct reply *rep)
{
    (void)op;
    const Vigil__ListSignals *l = req->list_signals;
    struct signals_walk walk = {.limit = l->limit ? l->limit : SIGNALS_PAGE_UNASKED};
    struct store_signal_page page = {.node = l->node, .limit = walk.limit + 1};

    json_t *cursor = NULL;
    if (l->cursor[0]) {
        cursor = json_loads(l->cursor, 0, NULL);
        if (!json_is_array(cursor) || json_array_size(cursor) != 4 ||
            json_unpack(cursor, "[ssss]", &page.after_node, &page.after_name, &page.after_labels,
                        &page.after_agent) != 0) {
            json_decref(cursor);
            reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST, "%s",
                        "the cursor is not one this coordinator gave");
            return;
        }
    }
    char *regex = l->name_glob[0] ? reply_own(rep, glob_to_regex(l->name_glob), free) : NULL;
    walk.signals = reply_own(rep, zlistx_new(), reply_release_list);
    if ((l->name_glob[0] && !regex) || !walk.signals) {
        json_decref(cursor);
        reply_out_of_memory(rep);
        return;
    }
    page.name_regex = regex;
    zlistx_set_destructor(walk.signals, free_signal_info);
    int r = store_signals_latest(self->store, &page, add_signal, &walk);
    json_decref(cursor);
    if (r == -EINVAL) {
        free(walk.last_labels);
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST,
                    "the name pattern \"%s\" is not "
                    "a valid glob",
                    l->name_glob);
        return;
    }
    if (r < 0) {
        free(walk.last_labels);
        reply_store_unavailable(rep, false);
        return;
    }
    size_t n = zlistx_size(walk.signals);
    rep->msg.signals = reply_own(rep, calloc(n ? n : 1, sizeof(Vigil__SignalInfo *)), free);
    if (!rep->msg.signals) {
        free(walk.last_labels);
        reply_out_of_memory(rep);
        return;
    }
    for (Vigil__SignalInfo *info = zlistx_first(walk.signals); info;
         info = zlistx_next(walk.signals))
        rep->msg.signals[rep->msg.n_signals++] = info;
    if (walk.more && n > 0)
        rep->msg.next_cursor =
            reply_own(rep, cursor_encode(rep->msg.signals[n - 1], walk.last_labels), free);
    free(walk.last_labels);
}

const struct admin_command admin_signal_commands[] = {
    {VIGIL__ADMIN_REQUEST__BODY_LIST_SIGNALS, ROLE_VIEWER, "listing signals", check_list,
     list_signals},
    {0},
};
