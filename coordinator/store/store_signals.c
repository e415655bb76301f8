/*
 * The latest sample of every series (signal_latest, kept current by the signals trigger), on the
 * store's main connection.
 */
#include "store.h"
#include "store_internal.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

struct signal_walk {
    int (*cb)(const struct store_signal *sig, void *userdata);
    void *userdata;
};

static int signal_row(const PGresult *res, int i, void *userdata)
{
    const struct signal_walk *walk = userdata;
    struct store_signal sig = {
        .agent_id = PQgetvalue(res, i, 0),
        .node = PQgetvalue(res, i, 1),
        .name = PQgetvalue(res, i, 2),
        .labels_json = PQgetvalue(res, i, 3),
        .unit = PQgetvalue(res, i, 4),
        .value = strtod(PQgetvalue(res, i, 5), NULL),
        .state = (int)strtol(PQgetvalue(res, i, 6), NULL, 10),
    };
    if (!store_parse_i64(PQgetvalue(res, i, 7), &sig.ts_ms))
        sig.ts_ms = 0;
    return walk->cb(&sig, walk->userdata);
}

int store_signals_latest(store_t *self, const struct store_signal_page *page,
                         int (*cb)(const struct store_signal *sig, void *userdata), void *userdata)
{
    if (!self || !page || !cb || page->limit == 0)
        return -EINVAL;
    int r = store_ensure_conn(self);
    if (r < 0)
        return r;
    char limit[16];
    snprintf(limit, sizeof(limit), "%u", page->limit);
    bool after = page->after_node != NULL;
    const char *params[] = {
        page->node && page->node[0] ? page->node : NULL,
        page->name_regex,
        after ? page->after_node : NULL,
        after ? page->after_name : NULL,
        after ? page->after_labels : NULL,
        after ? page->after_agent : NULL,
        limit,
    };
    struct signal_walk walk = {cb, userdata};
    return store_query_rows(
        self, "list latest signals",
        "SELECT * FROM (SELECT l.agent_id, coalesce(l.node, a.node, '') AS node, l.name,"
        "  l.labels::text AS labels, l.unit, l.value, l.state,"
        "  (extract(epoch FROM l.ts) * 1000)::bigint"
        "  FROM signal_latest l LEFT JOIN agents a ON a.id = l.agent_id"
        "  WHERE ($1::text IS NULL OR coalesce(l.node, a.node) = $1)"
        "  AND ($2::text IS NULL OR l.name ~ $2)) s"
        " WHERE $3::text IS NULL OR (s.node, s.name, s.labels, s.agent_id) > ($3, $4, $5, $6)"
        " ORDER BY s.node, s.name, s.labels, s.agent_id LIMIT $7::integer",
        7, params, signal_row, &walk);
}
