/* vigilctl signals [--node NODE] [--name GLOB] */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "ctl_admin.h"
#include "timeutil.h"

#define FILTER_MAX_LEN VG_MAX_NAME_LEN

/* One row of the listing: the signal and its labels as "k=v,k=v" ("" for none). */
struct signal_row {
    const Vigil__SignalInfo *signal;
    const Vigil__Label **labels; /* sorted by key, then value */
    char *labels_text;
};

/* table: "-" for a signal without thresholds; json: "none" */
static const char *state_name(Vigil__SignalState state, bool json)
{
    switch (state) {
    case VIGIL__SIGNAL_STATE__SIGNAL_STATE_NONE:
        return json ? "none" : "-";
    case VIGIL__SIGNAL_STATE__SIGNAL_STATE_OK:
        return "ok";
    case VIGIL__SIGNAL_STATE__SIGNAL_STATE_WARNING:
        return "warning";
    case VIGIL__SIGNAL_STATE__SIGNAL_STATE_CRITICAL:
        return "critical";
    default:
        return "unknown";
    }
}

static int label_compare(const void *a, const void *b)
{
    const Vigil__Label *la = *(const Vigil__Label *const *)a;
    const Vigil__Label *lb = *(const Vigil__Label *const *)b;
    int c = strcmp(la->key, lb->key);
    return c != 0 ? c : strcmp(la->value, lb->value);
}

static int row_compare(const void *a, const void *b)
{
    const struct signal_row *ra = a, *rb = b;
    int c = strcmp(ra->signal->node, rb->signal->node);
    if (c == 0)
        c = strcmp(ra->signal->name, rb->signal->name);
    if (c == 0)
        c = strcmp(ra->labels_text, rb->labels_text);
    return c;
}

/* Fills row from s: the labels sorted by key and joined as "k=v,k=v". 0 or -ENOMEM. */
static int row_init(struct signal_row *row, const Vigil__SignalInfo *s)
{
    size_t len = 1;

    row->signal = s;
    row->labels = calloc(s->n_labels > 0 ? s->n_labels : 1, sizeof(const Vigil__Label *));
    if (row->labels == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < s->n_labels; i++) {
        row->labels[i] = s->labels[i];
        len += strlen(s->labels[i]->key) + strlen(s->labels[i]->value) + 2; /* '=' and ',' */
    }
    qsort(row->labels, s->n_labels, sizeof(const Vigil__Label *), label_compare);

    row->labels_text = malloc(len);
    if (row->labels_text == NULL)
        return -ENOMEM;
    size_t used = 0;
    row->labels_text[0] = '\0';
    for (size_t i = 0; i < s->n_labels; i++) {
        int n = snprintf(row->labels_text + used, len - used, "%s%s=%s", i > 0 ? "," : "",
                         row->labels[i]->key, row->labels[i]->value);
        used += (size_t)n;
    }
    return 0;
}

static void rows_free(struct signal_row **rows_p, size_t nrows)
{
    struct signal_row *rows = *rows_p;

    if (rows == NULL)
        return;
    for (size_t i = 0; i < nrows; i++) {
        free(rows[i].labels);
        rows[i].labels = NULL;
        free(rows[i].labels_text);
        rows[i].labels_text = NULL;
    }
    free(rows);
    *rows_p = NULL;
}

/* The reply's signals in listing order: node, name, labels. 0 or -ENOMEM. */
static int rows_sorted(const Vigil__AdminReply *reply, struct signal_row **ret_rows)
{
    size_t n = reply->n_signals;
    struct signal_row *rows = calloc(n > 0 ? n : 1, sizeof(*rows));

    if (rows == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (row_init(&rows[i], reply->signals[i]) < 0) {
            rows_free(&rows, n);
            return -ENOMEM;
        }
    }
    qsort(rows, n, sizeof(*rows), row_compare);
    *ret_rows = rows;
    return 0;
}

/* Label pairs as a JSON object; keys and values came from agents, so they go through the
 * same lossy UTF-8 cleaning as every other network string. */
static json_t *labels_json(const struct signal_row *row)
{
    json_t *obj = json_object();

    for (size_t i = 0; obj != NULL && i < row->signal->n_labels; i++) {
        json_t *key = output_json_string(row->labels[i]->key);
        if (key == NULL || json_object_set_new(obj, json_string_value(key),
                                               output_json_string(row->labels[i]->value)) < 0) {
            json_decref(obj);
            obj = NULL;
        }
        json_decref(key);
    }
    return obj;
}

static json_t *signal_json(const struct signal_row *row)
{
    const Vigil__SignalInfo *s = row->signal;
    /* JSON has no NaN or infinity. */
    json_t *value = isfinite(s->value) ? json_real(s->value) : json_null();

    /* clang-format off */
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:s, s:o}",
                     "agent_id", output_json_string(s->agent_id),
                     "node", output_json_string(s->node),
                     "name", output_json_string(s->name),
                     "labels", labels_json(row),
                     "value", value,
                     "unit", output_json_string(s->unit),
                     "state", state_name(s->state, true),
                     "ts", output_json_time(s->ts_ms));
    /* clang-format on */
}

static int print_signals_json(const struct signal_row *rows, size_t nrows)
{
    json_t *list = json_array();
    if (list == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < nrows; i++) {
        if (json_array_append_new(list, signal_json(&rows[i])) < 0) {
            json_decref(list);
            return -ENOMEM;
        }
    }
    return output_json_print(&list, stdout);
}

static int print_signals_table(const struct signal_row *rows, size_t nrows)
{
    static const char *const headers[] = {"NODE", "NAME",  "LABELS", "VALUE",
                                          "UNIT", "STATE", "AGE"};
    output_table_t *table = output_table_new(7, headers);
    int64_t now = vg_wall_ms();
    int r = 0;

    if (table == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < nrows && r == 0; i++) {
        const Vigil__SignalInfo *s = rows[i].signal;
        char value[64], age[32];

        output_value(s->value, s->unit, value, sizeof(value));
        output_time_ago(s->ts_ms, now, age, sizeof(age));
        const char *cells[] = {
            s->node[0] != '\0' ? s->node : "-",
            s->name[0] != '\0' ? s->name : "-",
            rows[i].labels_text[0] != '\0' ? rows[i].labels_text : "-",
            value,
            s->unit[0] != '\0' ? s->unit : "-",
            state_name(s->state, false),
            age,
        };
        r = output_table_add_row(table, cells);
    }
    if (r == 0)
        r = output_table_print(table, stdout);
    output_table_destroy(&table);
    return r;
}

/* --node and --name: "" would mean "all" on the wire, so an empty value is a mistake. */
static bool filter_valid(const char *option, const char *value)
{
    if (value == NULL)
        return true;
    size_t len = strlen(value);
    if (len == 0) {
        output_error("--%s needs a non-empty value", option);
        return false;
    }
    if (len > FILTER_MAX_LEN) {
        output_error("--%s must be at most %d bytes (got %zu)", option, FILTER_MAX_LEN, len);
        return false;
    }
    return true;
}

/* Series per request (the wire allows 10,000): each page costs the database one pass over the
 * latest signals, so fewer, larger pages cost the ingest beside them less. */
#define SIGNALS_PAGE 10000

static int run_signals(struct ctl_context *ctx, const struct ctl_args *args)
{
    const char *node = ctl_args_value(args, "node");
    const char *name_glob = ctl_args_value(args, "name");
    Vigil__ListSignals body = VIGIL__LIST_SIGNALS__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__AdminReply **pages = NULL;
    size_t npages = 0;
    struct signal_row *rows = NULL;

    if (args->argc > 0) {
        output_error("signals takes no arguments (got \"%s\"); filter with --node and --name",
                     args->argv[0]);
        return CTL_EXIT_USAGE;
    }
    if (!filter_valid("node", node) || !filter_valid("name", name_glob))
        return CTL_EXIT_USAGE;

    if (node != NULL)
        body.node = (char *)node;
    if (name_glob != NULL)
        body.name_glob = (char *)name_glob;
    body.limit = SIGNALS_PAGE;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_LIST_SIGNALS;
    req.list_signals = &body;
    int r = ctl_admin_request_pages(ctx, &req, &body.cursor, "list signals", &pages, &npages);
    if (r != CTL_EXIT_OK)
        return r;

    /* One reply's view of every page: the signals of all of them. */
    size_t nrows = 0;
    for (size_t i = 0; i < npages; i++)
        nrows += pages[i]->n_signals;
    Vigil__AdminReply all = *pages[0];
    all.signals = calloc(nrows ? nrows : 1, sizeof(Vigil__SignalInfo *));
    all.n_signals = 0;
    r = all.signals ? 0 : -ENOMEM;
    for (size_t i = 0; r == 0 && i < npages; i++)
        for (size_t k = 0; k < pages[i]->n_signals; k++)
            all.signals[all.n_signals++] = pages[i]->signals[k];
    if (r == 0)
        r = rows_sorted(&all, &rows);
    if (r == 0)
        r = ctx->format == OUTPUT_JSON ? print_signals_json(rows, nrows)
                                       : print_signals_table(rows, nrows);
    rows_free(&rows, nrows);
    free(all.signals);
    ctl_admin_pages_free(pages, npages);
    if (r < 0) {
        output_error("cannot write the signal list: %s", strerror(-r));
        return CTL_EXIT_FAILURE;
    }
    return CTL_EXIT_OK;
}

/* ---- the command table ---- */

static const char signals_help[] =
    "Usage: vigilctl signals [--node NODE] [--name GLOB]\n"
    "\n"
    "Lists the latest value of each signal series the agents report, and where it stands\n"
    "against its alert thresholds: NODE NAME LABELS VALUE UNIT STATE AGE, sorted by node,\n"
    "then name, then labels.\n"
    "\n"
    "  LABELS   the series' labels as key=value pairs, comma-separated and sorted by key\n"
    "           (\"-\" for none)\n"
    "  VALUE    the latest sample, to 6 significant digits\n"
    "  STATE    ok, warning or critical, as the agent evaluated the signal's thresholds;\n"
    "           \"-\" for a signal without thresholds\n"
    "  AGE      how long ago the agent took the sample\n"
    "\n"
    "  --node NODE   only the signals of this node (its exact name)\n"
    "  --name GLOB   only the signals whose name matches this shell glob: * any text,\n"
    "                ? one character, [abc] one of these; e.g. 'host.cpu.*'. Quote it so\n"
    "                the shell leaves it alone. At most 128 bytes, like --node.\n"
    "\n"
    "With -o json: an array, in the same order, of objects\n"
    "  {\"agent_id\": \"ag-...\", \"node\": \"...\", \"name\": \"...\",\n"
    "   \"labels\": {\"key\": \"value\", ...}, \"value\": 0.42, \"unit\": \"...\",\n"
    "   \"state\": \"ok\" | \"warning\" | \"critical\" | \"none\",\n"
    "   \"ts\": \"2024-05-01T12:00:03Z\"}\n"
    "value is null when the sample is NaN or infinite; ts is RFC 3339 UTC, null if unknown.\n"
    "\n"
    "The viewer role is enough. Needs the configuration file (see 'vigilctl help').\n";

const struct ctl_command cmd_signals_table[] = {
    {
        .name = "signals",
        .forms = {{"signals [--node NODE] [--name GLOB]",
                   "the latest value of each signal and its threshold state"}},
        .help = signals_help,
        .options = {{"node", CTL_OPTION_VALUE}, {"name", CTL_OPTION_VALUE}},
        .run = run_signals,
    },
    {.name = NULL},
};
