/*
 * Agents and the audit log on the store's main connection (operators: store_operators.c).
 *
 * An agent's node and state change only through an operator (store_agent_rename,
 * store_agent_set_state) or the coordinator's own decisions, each with an audit_log row written
 * in the same statement.
 */
#include "store.h"
#include "store_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "utf8.h"
#include "wire.h"

/* PostgreSQL's bigint holds what an agent can count; clamp the rest rather than fail. */
static int64_t clamp_u64(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

/* ---- agents ---- */

/*
 * Times cross the boundary as Unix milliseconds: written as 'epoch' + ms * 1 millisecond (0 means
 * now()), read back as extract(epoch) * 1000. Exact both ways; no float rounding.
 */

struct agent_walk {
    int (*cb)(const struct store_agent *agent, void *userdata);
    void *userdata;
};

static int agent_row(const PGresult *res, int i, void *userdata)
{
    const struct agent_walk *walk = userdata;
    struct store_agent a;
    memset(&a, 0, sizeof(a));
    const char *id = PQgetvalue(res, i, 0);
    const char *key = PQgetvalue(res, i, 1);
    if (!store_fits(id, sizeof(a.id)) || !store_fits(key, sizeof(a.public_key))) {
        vg_log(VG_LOG_WARN, "store: agent row skipped: id or key too long agent=%.40s", id);
        return 0;
    }
    memcpy(a.id, id, strlen(id) + 1);
    memcpy(a.public_key, key, strlen(key) + 1);
    snprintf(a.node, sizeof(a.node), "%s", PQgetvalue(res, i, 2));
    a.state = vg_agent_state_parse(PQgetvalue(res, i, 3));
    snprintf(a.agent_version, sizeof(a.agent_version), "%s", PQgetvalue(res, i, 4));
    if (!store_parse_i64(PQgetvalue(res, i, 5), &a.enrolled_at_ms) ||
        !store_parse_i64(PQgetvalue(res, i, 6), &a.state_since_ms) ||
        !store_parse_i64(PQgetvalue(res, i, 7), &a.last_seen_ms))
        vg_log(VG_LOG_WARN, "store: agent row has unreadable times agent=%s", a.id);
    a.spool_depth = store_parse_u64_or_zero(PQgetvalue(res, i, 8));
    a.dropped_messages = store_parse_u64_or_zero(PQgetvalue(res, i, 9));
    snprintf(a.requested_node, sizeof(a.requested_node), "%s", PQgetvalue(res, i, 10));
    return walk->cb(&a, walk->userdata);
}

int store_agents_load(store_t *self, int (*cb)(const struct store_agent *agent, void *userdata),
                      void *userdata)
{
    if (!self || !cb)
        return -EINVAL;
    int r = store_ensure_conn(self);
    if (r < 0)
        return r;
    struct agent_walk walk = {cb, userdata};
    return store_query_rows(self, "load agents",
                            "SELECT id, public_key, node, state, agent_version,"
                            " (extract(epoch FROM enrolled_at) * 1000)::bigint,"
                            " (extract(epoch FROM state_since) * 1000)::bigint,"
                            " coalesce((extract(epoch FROM last_seen) * 1000)::bigint, 0),"
                            " spool_depth, dropped_messages, requested_node"
                            " FROM agents ORDER BY id",
                            0, NULL, agent_row, &walk);
}

int store_agent_upsert(store_t *self, const struct store_agent *agent)
{
    if (!self || !agent)
        return -EINVAL;
    const char *state = vg_agent_state_name(agent->state);
    if (!state || !agent->id[0] || !store_fits(agent->id, sizeof(agent->id)) ||
        !store_fits(agent->public_key, sizeof(agent->public_key)) || !agent->public_key[0] ||
        !store_fits(agent->node, sizeof(agent->node)) ||
        !store_fits(agent->agent_version, sizeof(agent->agent_version)) ||
        !vg_utf8_valid(agent->id) || !vg_utf8_valid(agent->public_key) ||
        !vg_utf8_valid(agent->node) || !vg_utf8_valid(agent->agent_version))
        return -EINVAL;
    int r = store_ensure_conn(self);
    if (r < 0)
        return r;

    char enrolled[24], since[24];
    snprintf(enrolled, sizeof(enrolled), "%" PRId64, agent->enrolled_at_ms);
    snprintf(since, sizeof(since), "%" PRId64, agent->state_since_ms);
    const char *params[] = {
        agent->id, agent->public_key, agent->node, state, agent->agent_version, enrolled, since};
    /* Same id with another key would be a hash collision or a bug: refuse, change nothing. */
    uint64_t changed = 0;
    r = store_command(self, "agent upsert",
                      "INSERT INTO agents (id, public_key, node, state, agent_version, enrolled_at,"
                      " state_since) VALUES ($1, $2, $3, $4, $5,"
                      " CASE WHEN $6::bigint = 0 THEN now()"
                      "  ELSE 'epoch'::timestamptz + $6::bigint * interval '1 millisecond' END,"
                      " CASE WHEN $7::bigint = 0 THEN now()"
                      "  ELSE 'epoch'::timestamptz + $7::bigint * interval '1 millisecond' END)"
                      " ON CONFLICT (id) DO UPDATE SET agent_version = EXCLUDED.agent_version"
                      " WHERE agents.public_key = EXCLUDED.public_key",
                      7, params, &changed);
    if (r == 0 && changed != 1) {
        vg_log(VG_LOG_WARN, "store: agent upsert refused: id exists with another key agent=%s",
               agent->id);
        r = -EEXIST;
    }
    return r;
}

/* UPDATE agents SET <what> WHERE id = $1, expecting one row; -ENOENT when there is none. */
static int agent_update(store_t *self, const char *sql, const char *const *params, int nparams,
                        const char *what)
{
    int r = store_ensure_conn(self);
    if (r < 0)
        return r;
    uint64_t changed = 0;
    r = store_command(self, what, sql, nparams, params, &changed);
    if (r == 0 && changed != 1)
        r = -ENOENT;
    return r;
}

int store_agent_request_node(store_t *self, const char *id, const char *requested_node)
{
    if (!self || !id || !requested_node || !vg_utf8_valid(id) || !vg_utf8_valid(requested_node) ||
        strlen(requested_node) >= sizeof(((struct store_agent *)0)->requested_node))
        return -EINVAL;
    const char *params[] = {id, requested_node};
    return agent_update(self, "UPDATE agents SET requested_node = $2 WHERE id = $1", params, 2,
                        "agent node request");
}

int store_agent_forget_pending(store_t *self, const char *id, const char *reason)
{
    if (!self || !id || !reason || !vg_utf8_valid(id) || !vg_utf8_valid(reason))
        return -EINVAL;
    const char *params[] = {id};
    int r = agent_update(self, "DELETE FROM agents WHERE id = $1 AND state = 'pending'", params, 1,
                         "forget pending agent");
    if (r == 0)
        store_audit(self, "coordinator", "agent.forgotten", id, reason);
    return r;
}

int store_agent_rename(store_t *self, const char *id, const char *node, const char *actor)
{
    if (!self || !id || !node || !actor || !vg_utf8_valid(id) || !vg_utf8_valid(node) ||
        strlen(node) >= sizeof(((struct store_agent *)0)->node))
        return -EINVAL;
    const char *params[] = {id, node, actor};
    /* One statement: the rename and its audit row commit together or not at all. */
    int r = agent_update(self,
                         "WITH renamed AS ("
                         " UPDATE agents SET node = $2, requested_node = '' WHERE id = $1"
                         " RETURNING id) "
                         "INSERT INTO audit_log (actor, action, subject, detail) "
                         "SELECT $3::text, 'agent.rename', id, $2::text FROM renamed",
                         params, 3, "agent rename");
    return r;
}

int store_agent_set_state(store_t *self, const char *id, Vigil__AgentState state, int64_t at_ms,
                          const char *actor, const char *reason)
{
    const char *name = vg_agent_state_name(state);
    if (!self || !id || !name || !vg_utf8_valid(id) || (actor && !vg_utf8_valid(actor)) ||
        (reason && !vg_utf8_valid(reason)))
        return -EINVAL;
    int r = store_ensure_conn(self);
    if (r < 0)
        return r;

    char at[24];
    snprintf(at, sizeof(at), "%" PRId64, at_ms);
    const char *params[] = {id, name, at, actor && actor[0] ? actor : "coordinator",
                            reason ? reason : ""};
    /* One statement: the state change and its audit row commit together or not at all. */
    uint64_t changed = 0;
    r = store_command(
        self, "agent state change",
        "WITH changed AS ("
        " UPDATE agents AS a SET state = $2::text, state_since = CASE WHEN $3::bigint = 0"
        "  THEN now() ELSE 'epoch'::timestamptz + $3::bigint * interval '1 millisecond' END"
        " FROM agents AS old WHERE a.id = $1::text AND old.id = a.id"
        " RETURNING a.id, old.state AS old_state) "
        "INSERT INTO audit_log (actor, action, subject, detail) "
        "SELECT $4::text, 'agent.state', id, "
        " format('from=%s to=%s reason=%s', old_state, $2::text, $5::text) FROM changed",
        5, params, &changed);
    if (r == 0 && changed == 0)
        r = -ENOENT;
    return r;
}

int store_agents_health(store_t *self, const struct store_agent_health *rows, size_t n)
{
    if (!self || (n > 0 && !rows))
        return -EINVAL;
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!rows[i].id || !vg_utf8_valid(rows[i].id) ||
            (rows[i].agent_version && !vg_utf8_valid(rows[i].agent_version)))
            return -EINVAL;
    }

    enum { ID, SEEN, VERSION, UPTIME, DEPTH, BYTES, DMSG, DSMP, NCOLS };
    struct store_buf cols[NCOLS];
    memset(cols, 0, sizeof(cols));
    for (size_t i = 0; i < n; i++) {
        const struct store_agent_health *h = &rows[i];
        for (int c = 0; c < NCOLS; c++)
            store_array_sep(&cols[c], i);
        store_array_put_text(&cols[ID], h->id);
        store_array_put_i64(&cols[SEEN], h->last_seen_ms);
        if (h->agent_version)
            store_array_put_text(&cols[VERSION], h->agent_version);
        else
            store_buf_puts(&cols[VERSION], "NULL");
        store_array_put_i64(&cols[UPTIME], clamp_u64(h->uptime_s));
        store_array_put_i64(&cols[DEPTH], clamp_u64(h->spool_depth));
        store_array_put_i64(&cols[BYTES], clamp_u64(h->spool_bytes));
        store_array_put_i64(&cols[DMSG], clamp_u64(h->dropped_messages));
        store_array_put_i64(&cols[DSMP], clamp_u64(h->dropped_samples));
    }
    const char *params[NCOLS];
    bool oom = false;
    for (int c = 0; c < NCOLS; c++) {
        store_buf_putc(&cols[c], '}');
        oom |= cols[c].oom;
        params[c] = cols[c].data;
    }

    int r = oom ? -ENOMEM : store_ensure_conn(self);
    if (r == 0)
        r = store_command(
            self, "agent health",
            "UPDATE agents AS a SET"
            " last_seen = CASE WHEN u.seen_ms = 0 THEN a.last_seen"
            "  ELSE 'epoch'::timestamptz + u.seen_ms * interval '1 millisecond' END,"
            " agent_version = coalesce(nullif(u.version, ''), a.agent_version),"
            " uptime_s = u.uptime_s, spool_depth = u.spool_depth, spool_bytes = u.spool_bytes,"
            " dropped_messages = u.dropped_messages, dropped_samples = u.dropped_samples "
            "FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::bigint[],"
            " $6::bigint[], $7::bigint[], $8::bigint[])"
            " AS u(id, seen_ms, version, uptime_s, spool_depth, spool_bytes, dropped_messages,"
            " dropped_samples) "
            "WHERE a.id = u.id",
            NCOLS, params, NULL);
    for (int c = 0; c < NCOLS; c++)
        store_buf_free(&cols[c]);
    return r;
}

/* ---- audit ---- */

int store_audit(store_t *self, const char *actor, const char *action, const char *subject,
                const char *detail)
{
    if (!self || !actor || !action || !vg_utf8_valid(actor) || !vg_utf8_valid(action) ||
        (subject && !vg_utf8_valid(subject)) || (detail && !vg_utf8_valid(detail)))
        return -EINVAL;
    int r = store_ensure_conn(self);
    if (r < 0)
        return r;
    const char *params[] = {actor, action, subject, detail}; /* NULL -> SQL NULL */
    return store_command(self, "audit",
                         "INSERT INTO audit_log (actor, action, subject, detail)"
                         " VALUES ($1, $2, $3, $4)",
                         4, params, NULL);
}
