/* vigilctl agents [list] | approve ID | revoke ID */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "ctl_admin.h"
#include "timeutil.h"

#define AGENT_ID_MAX_LEN VG_MAX_NAME_LEN

/* The state's name, "unknown" for a value this vigilctl does not know. */
static const char *state_name(Vigil__AgentState state)
{
    const char *name = vg_agent_state_name(state);
    return name ? name : "unknown";
}

static json_int_t json_count(uint64_t count)
{
    return count > INT64_MAX ? INT64_MAX : (json_int_t)count;
}

/* Strings come from the coordinator, which had some of them from agents: lossy if not UTF-8. */
static json_t *agent_json(const Vigil__AgentInfo *a)
{
    /* One key per line reads better than a packed paragraph. */
    /* clang-format off */
    return json_pack("{s:o, s:o, s:s, s:o, s:o, s:I, s:I, s:o, s:o, s:o, s:o, s:o}",
                     "id", output_json_string(a->id),
                     "node", output_json_string(a->node),
                     "state", state_name(a->state),
                     "version", output_json_string(a->agent_version),
                     "last_seen", output_json_time(a->last_seen_ms),
                     "spool_depth", json_count(a->spool_depth),
                     "dropped_messages", json_count(a->dropped_messages),
                     "public_key", output_json_string(a->public_key),
                     "enrolled_at", output_json_time(a->enrolled_at_ms),
                     "state_since", output_json_time(a->state_since_ms),
                     "requested_node", output_json_string(a->requested_node),
                     "node_held_by", output_json_string(a->node_held_by));
    /* clang-format on */
}

static int print_agents_json(const Vigil__AdminReply *reply)
{
    json_t *list = json_array();
    if (list == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < reply->n_agents; i++) {
        if (json_array_append_new(list, agent_json(reply->agents[i])) < 0) {
            json_decref(list);
            return -ENOMEM;
        }
    }
    return output_json_print(&list, stdout);
}

static int print_agents_table(const Vigil__AdminReply *reply)
{
    static const char *const headers[] = {"ID",        "NODE",  "STATE", "VERSION",
                                          "LAST-SEEN", "SPOOL", "NOTE"};
    output_table_t *table = output_table_new(7, headers);
    int64_t now = vg_wall_ms();
    int r = 0;

    if (table == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < reply->n_agents && r == 0; i++) {
        const Vigil__AgentInfo *a = reply->agents[i];
        char seen[32], spool[64], note[320] = "-";

        output_time_ago(a->last_seen_ms, now, seen, sizeof(seen));
        if (a->dropped_messages > 0)
            snprintf(spool, sizeof(spool), "%llu (%llu dropped)",
                     (unsigned long long)a->spool_depth, (unsigned long long)a->dropped_messages);
        else
            snprintf(spool, sizeof(spool), "%llu", (unsigned long long)a->spool_depth);
        /* What waits for an operator about this agent's node name. */
        if (a->node_held_by && a->node_held_by[0])
            snprintf(note, sizeof(note), "claims the node of %s", a->node_held_by);
        else if (a->requested_node && a->requested_node[0])
            snprintf(note, sizeof(note), "asks to be renamed %s", a->requested_node);
        const char *cells[] = {
            a->id,
            a->node[0] != '\0' ? a->node : "-",
            state_name(a->state),
            a->agent_version[0] != '\0' ? a->agent_version : "-",
            seen,
            spool,
            note,
        };
        r = output_table_add_row(table, cells);
    }
    if (r == 0)
        r = output_table_print(table, stdout);
    output_table_destroy(&table);
    return r;
}

#define AGENTS_PAGE 1000 /* agents per request; the listing pages through all of them */

static int agents_list(struct ctl_context *ctx)
{
    Vigil__ListAgents body = VIGIL__LIST_AGENTS__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__AdminReply **pages = NULL;
    size_t npages = 0;

    body.limit = AGENTS_PAGE;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_LIST_AGENTS;
    req.list_agents = &body;
    int r = ctl_admin_request_pages(ctx, &req, &body.cursor, "list agents", &pages, &npages);
    if (r != CTL_EXIT_OK)
        return r;

    /* One reply's view of every page: the agents of all of them, in order. */
    size_t total = 0;
    for (size_t i = 0; i < npages; i++)
        total += pages[i]->n_agents;
    Vigil__AdminReply all = *pages[0];
    all.agents = calloc(total ? total : 1, sizeof(Vigil__AgentInfo *));
    all.n_agents = 0;
    if (!all.agents) {
        ctl_admin_pages_free(pages, npages);
        output_error("out of memory");
        return CTL_EXIT_FAILURE;
    }
    for (size_t i = 0; i < npages; i++)
        for (size_t k = 0; k < pages[i]->n_agents; k++)
            all.agents[all.n_agents++] = pages[i]->agents[k];
    r = ctx->format == OUTPUT_JSON ? print_agents_json(&all) : print_agents_table(&all);
    free(all.agents);
    ctl_admin_pages_free(pages, npages);
    if (r < 0) {
        output_error("cannot write the agent list: %s", strerror(-r));
        return CTL_EXIT_FAILURE;
    }
    return CTL_EXIT_OK;
}

/* approve or revoke one agent */
static int agents_change(struct ctl_context *ctx, bool approve, const char *id)
{
    Vigil__ApproveAgent approve_body = VIGIL__APPROVE_AGENT__INIT;
    Vigil__RevokeAgent revoke_body = VIGIL__REVOKE_AGENT__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__AdminReply *reply = NULL;
    const char *verb = approve ? "approve" : "revoke";
    char what[AGENT_ID_MAX_LEN + 32], subject[AGENT_ID_MAX_LEN + 16];

    if (approve) {
        approve_body.id = (char *)id;
        req.body_case = VIGIL__ADMIN_REQUEST__BODY_APPROVE_AGENT;
        req.approve_agent = &approve_body;
    } else {
        revoke_body.id = (char *)id;
        req.body_case = VIGIL__ADMIN_REQUEST__BODY_REVOKE_AGENT;
        req.revoke_agent = &revoke_body;
    }
    snprintf(what, sizeof(what), "%s agent %s", verb, id);
    snprintf(subject, sizeof(subject), "agent %s", id);
    int r = ctl_admin_request(ctx, &req, what, subject, &reply);
    if (r != CTL_EXIT_OK)
        return r;

    /* The coordinator may echo the agent as it now is; otherwise report the state we asked
     * for, which an ADMIN_OK reply confirms. */
    const char *state = approve ? "active" : "revoked";
    for (size_t i = 0; i < reply->n_agents; i++) {
        if (strcmp(reply->agents[i]->id, id) == 0)
            state = state_name(reply->agents[i]->state);
    }

    if (ctx->format == OUTPUT_JSON) {
        json_t *doc = json_pack("{s:s, s:s}", "id", id, "state", state);
        r = output_json_print(&doc, stdout);
    } else {
        r = printf("agent %s %s\n", id, approve ? "approved" : "revoked") < 0 ? -EIO : 0;
    }
    vigil__admin_reply__free_unpacked(reply, NULL);
    if (r < 0) {
        output_error("cannot write the output");
        return CTL_EXIT_FAILURE;
    }
    return CTL_EXIT_OK;
}

static bool agent_id_plausible(const char *id)
{
    size_t len = strlen(id);
    if (len == 0 || len > AGENT_ID_MAX_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c <= 0x20 || c >= 0x7f)
            return false;
    }
    return true;
}

static int run_agents(struct ctl_context *ctx, const struct ctl_args *args)
{
    int argc = args->argc;
    char **argv = args->argv;

    if (argc == 0 || strcmp(argv[0], "list") == 0) {
        if (argc > 1) {
            output_error("agents list takes no arguments (got \"%s\")", argv[1]);
            return CTL_EXIT_USAGE;
        }
        return agents_list(ctx);
    }

    bool approve = strcmp(argv[0], "approve") == 0;
    if (!approve && strcmp(argv[0], "revoke") != 0) {
        output_error("unknown agents command \"%s\" (expected list, approve or revoke)", argv[0]);
        return CTL_EXIT_USAGE;
    }
    if (argc != 2) {
        output_error("usage: vigilctl agents %s ID (one agent id, as 'vigilctl agents' lists it)",
                     argv[0]);
        return CTL_EXIT_USAGE;
    }
    if (!agent_id_plausible(argv[1])) {
        output_error("\"%s\" is not an agent id (ids look like ag-0123456789abcdef)", argv[1]);
        return CTL_EXIT_USAGE;
    }
    return agents_change(ctx, approve, argv[1]);
}

/* ---- the command table ---- */

static const char agents_help[] =
    "Usage: vigilctl agents [list]\n"
    "       vigilctl agents approve ID\n"
    "       vigilctl agents revoke ID\n"
    "\n"
    "  agents [list]    list the enrolled agents: ID NODE STATE VERSION LAST-SEEN SPOOL\n"
    "                   NOTE. STATE is pending (waiting for approval), active, lost (missed\n"
    "                   its heartbeats) or revoked; SPOOL is the number of messages the\n"
    "                   agent holds unacknowledged, and how many it had to drop. A node name\n"
    "                   belongs to the key that enrolled it first: NOTE shows a new key that\n"
    "                   claims a node another agent holds (pending, beside the holder), or an\n"
    "                   agent that asked for another name (it keeps its name until approved).\n"
    "                   With -o json: an array of objects with id, node, state, version,\n"
    "                   last_seen, spool_depth, dropped_messages, public_key, enrolled_at,\n"
    "                   state_since (times in RFC 3339 UTC, null for never), requested_node,\n"
    "                   node_held_by.\n"
    "  approve ID       admit a pending agent (one that enrolled without a valid token, or\n"
    "                   a new key for a node: revoke the holder first), or give an agent the\n"
    "                   node name it asked for.\n"
    "  revoke ID        revoke an agent's key: the coordinator refuses it from then on.\n"
    "\n"
    "Needs the configuration file (see 'vigilctl help').\n";

const struct ctl_command cmd_agents_table[] = {
    {
        .name = "agents",
        .forms = {{"agents [list]", "list agents with their state, last contact and spool"},
                  {"agents approve ID", "admit a pending agent, or approve its rename"},
                  {"agents revoke ID", "revoke an agent's key"}},
        .help = agents_help,
        .run = run_agents,
    },
    {.name = NULL},
};
