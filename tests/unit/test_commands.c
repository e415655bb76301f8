/*
 * Remediation commands on the coordinator (coordinator/admin/commands.c, remediate/, the store's
 * command tables) against a private PostgreSQL: requests through the admin dispatch a vigilctl
 * request takes (field check, role, handler), approvals signed with operators' real Ed25519
 * keys, capsules taken off the pipe the router drains and verified as a node verifies them
 * (vg_capsule_verify with the coordinator's public key), and reports through store_ingest, the
 * router's commit path.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zmq.h>

#include "admin_internal.h"
#include "capsule.h"
#include "pg_fixture.h"
#include "remediate.h"
#include "sign.h"
#include "timeutil.h"
#include "wire.h"

#define NODE "worker-1"
#define AGENT_ID "ag-00000000000000c1"

static struct {
    struct pg_fixture pg;
    void *ctx;
    registry_t *registry;
    admin_t *admin;
    remediate_t *remediate;
    remediate_dispatcher_t *dispatcher;
    struct vg_signing_key coordinator;
    struct vg_keypair server;
    struct operator alice, bob, carol, vic; /* admin, responder, responder, viewer */
    struct vg_signing_key alice_key, bob_key, carol_key, vic_key;
    uint64_t seq;
} t;

static void add_operator(struct operator* op, struct vg_signing_key *key, const char *name,
                         enum operator_role role)
{
    struct vg_keypair kp;
    assert_int_equal(vg_keypair_generate(&kp), 0);
    assert_int_equal(vg_signing_key_generate(key), 0);
    memset(op, 0, sizeof(*op));
    snprintf(op->name, sizeof(op->name), "%s", name);
    snprintf(op->public_key, sizeof(op->public_key), "%s", kp.public_key);
    operator_id_from_key(kp.public_key, op->id);
    snprintf(op->signing_key, sizeof(op->signing_key), "%s", key->public_b64);
    op->role = role;
    assert_int_equal(registry_operator_add(t.registry, op), 0);
}

static void add_agent(void)
{
    static const struct agent_action actions[] = {
        {.name = "restart-app",
         .kind = "systemd",
         .mode = VG_ACTION_MODE_APPROVE,
         .params = "unit"},
        {.name = "isolate-node", .kind = "isolate", .mode = VG_ACTION_MODE_DESTRUCTIVE},
        {.name = "reopen-logs", .kind = "signal", .mode = VG_ACTION_MODE_AUTO},
    };
    struct agent a = {0};
    snprintf(a.id, sizeof(a.id), "%s", AGENT_ID);
    snprintf(a.public_key, sizeof(a.public_key), "%s", t.server.public_key);
    snprintf(a.node, sizeof(a.node), "%s", NODE);
    a.state = VIGIL__AGENT_STATE__AGENT_STATE_ACTIVE;
    struct agent *in = registry_agent_add(t.registry, &a);
    assert_non_null(in);
    assert_int_equal(registry_agent_set_actions(in, actions, 3), 0);

    struct store_agent row = {0};
    snprintf(row.id, sizeof(row.id), "%s", AGENT_ID);
    snprintf(row.public_key, sizeof(row.public_key), "%s", t.server.public_key);
    snprintf(row.node, sizeof(row.node), "%s", NODE);
    row.state = VIGIL__AGENT_STATE__AGENT_STATE_ACTIVE;
    assert_int_equal(store_agent_upsert(t.pg.store, &row), 0);
}

static int group_setup(void **state)
{
    (void)state;
    char err[1024];
    if (pg_fixture_start(&t.pg, "/tmp/vigil-commands-XXXXXX") != 0)
        return -1;
    t.ctx = zmq_ctx_new();
    t.registry = registry_new();
    if (!t.ctx || !t.registry || vg_keypair_generate(&t.server) < 0 ||
        vg_signing_key_generate(&t.coordinator) < 0)
        return -1;
    struct remediate_config cfg = {.key = &t.coordinator, .capsule_ttl_ms = 5 * 60 * 1000};
    t.remediate = remediate_new(t.ctx, &cfg, err, sizeof(err));
    t.dispatcher = remediate_dispatcher_new(t.ctx, err, sizeof(err));
    t.admin = admin_new(t.ctx, "tcp://127.0.0.1:*", &t.server, 1000, t.registry,
                        store_conninfo(t.pg.store), err, sizeof(err));
    if (!t.remediate || !t.dispatcher || !t.admin) {
        fprintf(stderr, "setup: %s\n", err);
        return -1;
    }
    admin_set_remediate(t.admin, t.remediate);
    add_operator(&t.alice, &t.alice_key, "alice", ROLE_ADMIN);
    add_operator(&t.bob, &t.bob_key, "bob", ROLE_RESPONDER);
    add_operator(&t.carol, &t.carol_key, "carol", ROLE_RESPONDER);
    add_operator(&t.vic, &t.vic_key, "vic", ROLE_VIEWER);
    add_agent();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    admin_destroy(&t.admin);
    remediate_dispatcher_destroy(&t.dispatcher);
    remediate_destroy(&t.remediate);
    registry_destroy(&t.registry);
    if (t.ctx)
        zmq_ctx_term(t.ctx);
    pg_fixture_stop(&t.pg);
    return 0;
}

/* ---- helpers ---- */

static long sql_long(const char *sql)
{
    PGresult *res = PQexec(t.pg.check, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        fail_msg("%s: %s", sql, PQerrorMessage(t.pg.check));
    long v = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return v;
}

static bool sql_ok(const char *sql)
{
    PGresult *res = PQexec(t.pg.check, sql);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
    PQclear(res);
    return ok;
}

struct call {
    struct reply rep;
};

static void call(struct call *c, const struct operator* op, Vigil__AdminRequest *req)
{
    memset(c, 0, sizeof(*c));
    vigil__admin_reply__init(&c->rep.msg);
    const char *why = NULL;
    if (admin_request_check(req, &why) != VG_DECODE_OK)
        reply_error(&c->rep, VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST, "%s", why);
    else
        admin_dispatch(t.admin, op, req, &c->rep);
}

static void done(struct call *c)
{
    reply_release(&c->rep);
}

static void run(struct call *c, const struct operator* op, const char *action, const char *unit,
                uint64_t incident)
{
    static Vigil__CommandArg arg;
    static Vigil__CommandArg *args[1];
    Vigil__RunCommand body = VIGIL__RUN_COMMAND__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    body.action = (char *)action;
    body.node = NODE;
    if (unit) {
        vigil__command_arg__init(&arg);
        arg.key = "unit";
        arg.value = (char *)unit;
        args[0] = &arg;
        body.args = args;
        body.n_args = 1;
    }
    body.incident_id = incident;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_RUN_COMMAND;
    req.run_command = &body;
    call(c, op, &req);
}

/* Signs the request the reply shows (its hash checked first, as vigilctl does). */
static void approve_info(struct call *c, const struct operator* op,
                         const struct vg_signing_key *key, const Vigil__CommandInfo *info)
{
    unsigned char hash[VG_CAPSULE_HASH_LEN], sig[VG_SIGNATURE_LEN];
    assert_int_equal(vg_command_request_hash(info->request, hash), 0);
    assert_int_equal(info->request_sha256.len, sizeof(hash));
    assert_memory_equal(hash, info->request_sha256.data, sizeof(hash));
    vg_approval_sign(key, hash, sig);
    Vigil__ApproveCommand body = VIGIL__APPROVE_COMMAND__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    body.request_id = info->id;
    body.signature.data = sig;
    body.signature.len = sizeof(sig);
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_APPROVE_COMMAND;
    req.approve_command = &body;
    call(c, op, &req);
}

static void expect_ok(const struct call *c)
{
    if (c->rep.msg.status != VIGIL__ADMIN_STATUS__ADMIN_OK)
        fail_msg("status %d: %s", c->rep.msg.status, c->rep.msg.error ? c->rep.msg.error : "");
}

/* The next capsule on the pipe, for AGENT_ID; NULL when none is waiting. */
static Vigil__Envelope *next_capsule(char *request_id, size_t len)
{
    zmq_msg_t part;
    char agent[64] = "";
    int more = 0;
    size_t more_len = sizeof(more);
    void *pipe = remediate_dispatcher_socket(t.dispatcher);

    zmq_msg_init(&part);
    if (zmq_msg_recv(&part, pipe, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&part);
        return NULL;
    }
    snprintf(agent, sizeof(agent), "%.*s", (int)zmq_msg_size(&part), (char *)zmq_msg_data(&part));
    assert_string_equal(agent, AGENT_ID);
    zmq_msg_close(&part);
    zmq_msg_init(&part);
    assert_true(zmq_msg_recv(&part, pipe, 0) >= 0);
    snprintf(request_id, len, "%.*s", (int)zmq_msg_size(&part), (char *)zmq_msg_data(&part));
    zmq_msg_close(&part);
    zmq_getsockopt(pipe, ZMQ_RCVMORE, &more, &more_len);
    assert_true(more);
    zmq_msg_init(&part);
    assert_true(zmq_msg_recv(&part, pipe, 0) >= 0);
    Vigil__Envelope *env = NULL;
    const char *why = NULL;
    assert_int_equal(vg_envelope_decode(zmq_msg_data(&part), zmq_msg_size(&part), &env, &why),
                     VG_DECODE_OK);
    zmq_msg_close(&part);
    assert_int_equal(env->body_case, VIGIL__ENVELOPE__BODY_COMMAND);
    return env;
}

static void drain_capsules(void)
{
    char id[80];
    Vigil__Envelope *env;
    while ((env = next_capsule(id, sizeof(id))) != NULL)
        vg_envelope_free(env);
}

/* The node's signer file: the coordinator and every operator by role. */
static vg_signer_set_t *node_signers(void)
{
    vg_signer_set_t *set = vg_signer_set_new();
    assert_non_null(set);
    assert_int_equal(
        vg_signer_set_add(set, "coordinator", VG_SIGNER_COORDINATOR, t.coordinator.public_key), 0);
    assert_int_equal(vg_signer_set_add(set, "alice", VG_SIGNER_ADMIN, t.alice_key.public_key), 0);
    assert_int_equal(vg_signer_set_add(set, "bob", VG_SIGNER_RESPONDER, t.bob_key.public_key), 0);
    assert_int_equal(vg_signer_set_add(set, "carol", VG_SIGNER_RESPONDER, t.carol_key.public_key),
                     0);
    return set;
}

static void state_of(const char *id, char *out, size_t len)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT state FROM command_current WHERE request_id = '%s'", id);
    PGresult *res = PQexec(t.pg.check, sql);
    assert_int_equal(PQntuples(res), 1);
    snprintf(out, len, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
}

static void report(const char *request_id, const uint8_t nonce[16], Vigil__CommandStep step,
                   int exit_status, uint64_t seq)
{
    Vigil__CommandReport rep = VIGIL__COMMAND_REPORT__INIT;
    Vigil__Envelope env;
    uint8_t sha[32];
    memset(sha, 0xab, sizeof(sha));
    rep.request_id = (char *)request_id;
    rep.nonce.data = (uint8_t *)nonce;
    rep.nonce.len = 16;
    rep.step = step;
    rep.at_ms = vg_wall_ms();
    if (step == VIGIL__COMMAND_STEP__COMMAND_STEP_DONE) {
        rep.exit_status = exit_status;
        rep.duration_ms = 42;
        rep.output_sha256.data = sha;
        rep.output_sha256.len = sizeof(sha);
    }
    if (step == VIGIL__COMMAND_STEP__COMMAND_STEP_REFUSED)
        rep.reason = "the capsule expired 10 ms ago";
    vg_envelope_init(&env, AGENT_ID, seq);
    env.body_case = VIGIL__ENVELOPE__BODY_COMMAND_REPORT;
    env.command_report = &rep;
    Vigil__Envelope *msgs[] = {&env};
    size_t fresh = 0;
    assert_int_equal(store_ingest(t.pg.store, msgs, 1, &fresh, NULL), 0);
}

/* ---- tests ---- */

/* approve mode: the requester's own approval (a responder) issues the capsule; the capsule
 * verifies with the coordinator's public key on the node and satisfies the mode. */
static void test_run_approve_issue(void **state)
{
    (void)state;
    struct call c, a;
    drain_capsules();
    run(&c, &t.bob, "restart-app", "app.service", 0);
    expect_ok(&c);
    assert_int_equal(c.rep.msg.n_commands, 1);
    const Vigil__CommandInfo *info = c.rep.msg.commands[0];
    assert_string_equal(info->state, "pending");
    assert_string_equal(info->mode, "approve");
    assert_string_equal(info->requested_by, "bob");
    assert_true(info->needs[0] != '\0');
    char id[80];
    assert_null(next_capsule(id, sizeof(id))); /* nothing issued without an approval */

    approve_info(&a, &t.bob, &t.bob_key, info);
    expect_ok(&a);
    assert_string_equal(a.rep.msg.commands[0]->state, "issued");
    assert_int_equal(a.rep.msg.commands[0]->n_approvers, 1);
    assert_string_equal(a.rep.msg.commands[0]->approvers[0], "bob");

    Vigil__Envelope *env = next_capsule(id, sizeof(id));
    assert_non_null(env);
    assert_string_equal(id, info->id);
    const Vigil__CommandCapsule *cap = env->command;
    assert_string_equal(cap->request->request_id, info->id);
    assert_string_equal(cap->request->action, "restart-app");
    assert_int_equal(cap->not_after_ms - cap->issued_at_ms, 5 * 60 * 1000); /* capsule TTL */
    vg_signer_set_t *signers = node_signers();
    struct vg_capsule_verdict verdict;
    assert_int_equal(vg_capsule_verify(cap, signers, NODE, vg_wall_ms(), &verdict), 0);
    assert_true(verdict.ok);
    assert_true(vg_capsule_policy_ok(&verdict, VG_ACTION_MODE_APPROVE, NULL));
    /* On another node it is refused. */
    assert_int_equal(vg_capsule_verify(cap, signers, "worker-2", vg_wall_ms(), &verdict), -EPERM);
    vg_signer_set_destroy(&signers);
    vg_envelope_free(env);

    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM audit_log WHERE subject = '%s' AND action IN "
             "('command.request', 'command.approve', 'command.issue')",
             info->id);
    assert_int_equal(sql_long(sql), 3);
    done(&a);
    done(&c);
}

static void test_viewer_refused(void **state)
{
    (void)state;
    struct call c;
    long before = sql_long("SELECT count(*) FROM command_requests");
    run(&c, &t.vic, "restart-app", "app.service", 0);
    assert_int_equal(c.rep.msg.status, VIGIL__ADMIN_STATUS__ADMIN_FORBIDDEN);
    assert_non_null(strstr(c.rep.msg.error, "needs the responder role"));
    assert_int_equal(sql_long("SELECT count(*) FROM command_requests"), before);
    done(&c);
}

static void test_unknown_action_refused(void **state)
{
    (void)state;
    struct call c;
    run(&c, &t.bob, "format-disk", NULL, 0);
    assert_int_equal(c.rep.msg.status, VIGIL__ADMIN_STATUS__ADMIN_NOT_FOUND);
    assert_non_null(strstr(c.rep.msg.error, "declares action format-disk"));
    assert_non_null(strstr(c.rep.msg.error, "restart-app, isolate-node, reopen-logs"));
    done(&c);
    /* Missing and unknown arguments are named with the action's parameters. */
    run(&c, &t.bob, "restart-app", NULL, 0);
    assert_int_equal(c.rep.msg.status, VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST);
    assert_non_null(strstr(c.rep.msg.error, "needs --arg unit=VALUE"));
    done(&c);
}

static void test_bad_signature_refused(void **state)
{
    (void)state;
    struct call c, a;
    run(&c, &t.bob, "restart-app", "app.service", 0);
    expect_ok(&c);
    const Vigil__CommandInfo *info = c.rep.msg.commands[0];
    /* Carol signs with bob's key: not her registered key. */
    approve_info(&a, &t.carol, &t.bob_key, info);
    assert_int_equal(a.rep.msg.status, VIGIL__ADMIN_STATUS__ADMIN_FORBIDDEN);
    assert_non_null(strstr(a.rep.msg.error, "does not verify with operator carol's registered"));
    done(&a);
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM command_approvals WHERE request_id = '%s'",
             info->id);
    assert_int_equal(sql_long(sql), 0);
    char st[32];
    state_of(info->id, st, sizeof(st));
    assert_string_equal(st, "pending");
    /* Cancelled while pending; then nothing more is taken. */
    Vigil__CancelCommand cancel = VIGIL__CANCEL_COMMAND__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    cancel.request_id = info->id;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_CANCEL_COMMAND;
    req.cancel_command = &cancel;
    call(&a, &t.carol, &req);
    expect_ok(&a);
    assert_string_equal(a.rep.msg.commands[0]->state, "cancelled");
    done(&a);
    approve_info(&a, &t.bob, &t.bob_key, info);
    assert_int_equal(a.rep.msg.status, VIGIL__ADMIN_STATUS__ADMIN_CONFLICT);
    done(&a);
    done(&c);
}

static void test_destructive_needs_two(void **state)
{
    (void)state;
    struct call c, a;
    char id[80];
    drain_capsules();
    run(&c, &t.bob, "isolate-node", NULL, 0);
    expect_ok(&c);
    const Vigil__CommandInfo *info = c.rep.msg.commands[0];
    assert_string_equal(info->mode, "destructive");
    approve_info(&a, &t.bob, &t.bob_key, info);
    expect_ok(&a);
    assert_string_equal(a.rep.msg.commands[0]->state, "pending");
    assert_non_null(strstr(a.rep.msg.commands[0]->needs, "two different operators"));
    done(&a);
    /* Two responders: still no admin. */
    approve_info(&a, &t.carol, &t.carol_key, info);
    expect_ok(&a);
    assert_string_equal(a.rep.msg.commands[0]->state, "pending");
    assert_non_null(strstr(a.rep.msg.commands[0]->needs, "admin"));
    done(&a);
    assert_null(next_capsule(id, sizeof(id)));
    /* The same operator twice counts once. */
    approve_info(&a, &t.bob, &t.bob_key, info);
    assert_int_equal(a.rep.msg.status, VIGIL__ADMIN_STATUS__ADMIN_CONFLICT);
    done(&a);
    approve_info(&a, &t.alice, &t.alice_key, info);
    expect_ok(&a);
    assert_string_equal(a.rep.msg.commands[0]->state, "issued");
    done(&a);
    Vigil__Envelope *env = next_capsule(id, sizeof(id));
    assert_non_null(env);
    vg_signer_set_t *signers = node_signers();
    struct vg_capsule_verdict verdict;
    assert_int_equal(vg_capsule_verify(env->command, signers, NODE, vg_wall_ms(), &verdict), 0);
    assert_int_equal(verdict.approvals, 3);
    assert_true(vg_capsule_policy_ok(&verdict, VG_ACTION_MODE_DESTRUCTIVE, NULL));
    vg_signer_set_destroy(&signers);
    vg_envelope_free(env);
    done(&c);
}

/* An auto action is issued by the run itself; its reports move the state and go on the
 * incident's timeline, each (agent, seq) once; a report naming another nonce is ignored. */
static void test_auto_and_reports(void **state)
{
    (void)state;
    struct call c;
    char id[80], st[32];
    drain_capsules();
    long incident = sql_long(
        "INSERT INTO incidents (fingerprint, runbook, title, severity, state, opened_at,"
        " response_due, updated_at) VALUES ('t/cmd', 't', 'test', 2, 'detected', now(), now(),"
        " now()) RETURNING id");
    run(&c, &t.bob, "reopen-logs", NULL, (uint64_t)incident);
    expect_ok(&c);
    assert_string_equal(c.rep.msg.commands[0]->state, "issued");
    assert_string_equal(c.rep.msg.commands[0]->mode, "auto");
    Vigil__Envelope *env = next_capsule(id, sizeof(id));
    assert_non_null(env);
    uint8_t nonce[16], wrong[16];
    memcpy(nonce, env->command->nonce.data, sizeof(nonce));
    memcpy(wrong, nonce, sizeof(wrong));
    wrong[0] ^= 1;
    vg_envelope_free(env);

    report(id, wrong, VIGIL__COMMAND_STEP__COMMAND_STEP_ACCEPTED, 0, ++t.seq);
    state_of(id, st, sizeof(st));
    assert_string_equal(st, "issued");
    report(id, nonce, VIGIL__COMMAND_STEP__COMMAND_STEP_ACCEPTED, 0, ++t.seq);
    state_of(id, st, sizeof(st));
    assert_string_equal(st, "accepted");
    report(id, nonce, VIGIL__COMMAND_STEP__COMMAND_STEP_STARTED, 0, ++t.seq);
    report(id, nonce, VIGIL__COMMAND_STEP__COMMAND_STEP_DONE, 3, ++t.seq);
    report(id, nonce, VIGIL__COMMAND_STEP__COMMAND_STEP_DONE, 3, t.seq); /* resent */
    state_of(id, st, sizeof(st));
    assert_string_equal(st, "failed");
    /* A late accepted is stored as a report but does not take the state back. */
    report(id, nonce, VIGIL__COMMAND_STEP__COMMAND_STEP_ACCEPTED, 0, ++t.seq);
    state_of(id, st, sizeof(st));
    assert_string_equal(st, "failed");
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT string_agg(state || '<' || coalesce(prev_state, '-'), ' ' ORDER BY n)"
             " FROM command_states WHERE request_id = '%s'",
             id);
    PGresult *res = PQexec(t.pg.check, sql);
    assert_int_equal(PQntuples(res), 1);
    assert_string_equal(PQgetvalue(res, 0, 0), "pending<- issued<pending accepted<issued "
                                               "started<accepted failed<started");
    PQclear(res);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM command_reports WHERE request_id = '%s'", id);
    assert_int_equal(sql_long(sql), 4);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM incident_events WHERE incident_id = %ld AND kind = 'command'",
             incident);
    assert_int_equal(sql_long(sql), 6); /* requested, issued, accepted, started, failed, accepted */
    done(&c);

    /* ShowCommand: the steps and the result. */
    Vigil__ShowCommand show = VIGIL__SHOW_COMMAND__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    show.request_id = id;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_SHOW_COMMAND;
    req.show_command = &show;
    call(&c, &t.vic, &req);
    expect_ok(&c);
    const Vigil__CommandInfo *info = c.rep.msg.commands[0];
    assert_int_equal(info->n_steps, 4);
    assert_true(info->has_exit);
    assert_int_equal(info->exit_status, 3);
    assert_int_equal(info->duration_ms, 42);
    assert_int_equal(info->output_sha256.len, 32);
    done(&c);

    /* ListCommands by incident. */
    Vigil__ListCommands list = VIGIL__LIST_COMMANDS__INIT;
    list.incident_id = (uint64_t)incident;
    list.cursor = "";
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_LIST_COMMANDS;
    req.list_commands = &list;
    call(&c, &t.vic, &req);
    expect_ok(&c);
    assert_int_equal(c.rep.msg.n_commands, 1);
    assert_string_equal(c.rep.msg.commands[0]->state, "failed");
    done(&c);
}

/* An issued capsule with no report becomes lost once expired; a report after that still counts. */
static void test_lost_after_expiry(void **state)
{
    (void)state;
    struct call c;
    char id[80], st[32];
    drain_capsules();
    run(&c, &t.alice, "reopen-logs", NULL, 0);
    expect_ok(&c);
    Vigil__Envelope *env = next_capsule(id, sizeof(id));
    assert_non_null(env);
    uint8_t nonce[16];
    memcpy(nonce, env->command->nonce.data, sizeof(nonce));
    vg_envelope_free(env);
    done(&c);

    struct store_command_expired gone[8];
    size_t n = 0;
    /* Not yet: the capsule is valid for five minutes. */
    assert_int_equal(store_commands_expire(t.pg.store, 0, gone, 8, &n), 0);
    state_of(id, st, sizeof(st));
    assert_string_equal(st, "issued");
    /* As if ten minutes had passed (a negative grace moves "now" on). */
    assert_int_equal(store_commands_expire(t.pg.store, -10 * 60 * 1000, gone, 8, &n), 0);
    state_of(id, st, sizeof(st));
    assert_string_equal(st, "lost");
    bool listed = false;
    for (size_t i = 0; i < n; i++)
        listed |= strcmp(gone[i].id, id) == 0 && strcmp(gone[i].state, "lost") == 0;
    assert_true(listed);
    report(id, nonce, VIGIL__COMMAND_STEP__COMMAND_STEP_REFUSED, 0, ++t.seq);
    state_of(id, st, sizeof(st));
    assert_string_equal(st, "refused");
}

/* Approvals after the request's deadline are refused. */
static void test_approval_deadline(void **state)
{
    (void)state;
    struct store_command_info c;
    Vigil__CommandArg arg = VIGIL__COMMAND_ARG__INIT;
    Vigil__CommandArg *args[] = {&arg};
    Vigil__CommandRequest req;
    memset(&c, 0, sizeof(c));
    snprintf(c.id, sizeof(c.id), "cmd-late");
    snprintf(c.action, sizeof(c.action), "restart-app");
    snprintf(c.node, sizeof(c.node), NODE);
    snprintf(c.requested_by, sizeof(c.requested_by), "bob");
    c.created_at_ms = vg_wall_ms() - 2 * 3600 * 1000;
    c.approve_by_ms = c.created_at_ms + 3600 * 1000;
    snprintf(c.mode, sizeof(c.mode), "approve");
    arg.key = "unit";
    arg.value = "app.service";
    c.args = args;
    c.nargs = 1;
    remediate_request_from_info(&c, &req);
    assert_int_equal(vg_command_request_hash(&req, c.request_sha256), 0);
    assert_int_equal(store_command_create(t.pg.store, &c, "operator:bob"), 0);

    struct call show, a;
    Vigil__ShowCommand body = VIGIL__SHOW_COMMAND__INIT;
    Vigil__AdminRequest r = VIGIL__ADMIN_REQUEST__INIT;
    body.request_id = "cmd-late";
    r.body_case = VIGIL__ADMIN_REQUEST__BODY_SHOW_COMMAND;
    r.show_command = &body;
    call(&show, &t.bob, &r);
    expect_ok(&show);
    approve_info(&a, &t.bob, &t.bob_key, show.rep.msg.commands[0]);
    assert_int_equal(a.rep.msg.status, VIGIL__ADMIN_STATUS__ADMIN_CONFLICT);
    assert_non_null(strstr(a.rep.msg.error, "deadline passed"));
    done(&a);
    done(&show);
    assert_int_equal(sql_long("SELECT count(*) FROM command_approvals WHERE request_id = "
                              "'cmd-late'"),
                     0);
    /* The tick expires it. */
    struct store_command_expired gone[8];
    size_t n = 0;
    assert_int_equal(store_commands_expire(t.pg.store, 0, gone, 8, &n), 0);
    char st[32];
    state_of("cmd-late", st, sizeof(st));
    assert_string_equal(st, "expired");
}

/* Listings are paged newest first: the cursor continues where the page ended, no row twice. */
static void test_list_pages(void **state)
{
    (void)state;
    struct call c;
    Vigil__ListCommands list = VIGIL__LIST_COMMANDS__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    long total = sql_long("SELECT count(*) FROM command_requests");
    assert_true(total > 3);
    list.cursor = "";
    list.limit = 2;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_LIST_COMMANDS;
    req.list_commands = &list;
    char cursor[32] = "", first_id[80] = "";
    long seen = 0;
    for (int page = 0; page < 100; page++) {
        list.cursor = cursor;
        call(&c, &t.vic, &req);
        expect_ok(&c);
        if (page == 0)
            snprintf(first_id, sizeof(first_id), "%s", c.rep.msg.commands[0]->id);
        else if (c.rep.msg.n_commands > 0) /* the page after a full one may be empty */
            assert_string_not_equal(c.rep.msg.commands[0]->id, first_id);
        seen += (long)c.rep.msg.n_commands;
        bool more = c.rep.msg.next_cursor && c.rep.msg.next_cursor[0];
        if (more)
            snprintf(cursor, sizeof(cursor), "%s", c.rep.msg.next_cursor);
        done(&c);
        if (!more)
            break;
    }
    assert_int_equal(seen, total);
    /* The newest first: the first page starts with the latest request. */
    PGresult *res = PQexec(t.pg.check, "SELECT id FROM command_requests ORDER BY n DESC LIMIT 1");
    assert_string_equal(PQgetvalue(res, 0, 0), first_id);
    PQclear(res);
    list.cursor = "x1";
    call(&c, &t.vic, &req);
    assert_int_equal(c.rep.msg.status, VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST);
    done(&c);
}

/* The record cannot be rewritten: requests, their states, approvals, capsules and reports are
 * append-only. */
static void test_append_only(void **state)
{
    (void)state;
    assert_false(sql_ok("UPDATE command_approvals SET operator = 'eve'"));
    assert_false(sql_ok("DELETE FROM command_capsules"));
    assert_false(sql_ok("UPDATE command_reports SET exit_status = 0"));
    assert_false(sql_ok("UPDATE command_requests SET action = 'isolate-node'"));
    assert_false(sql_ok("UPDATE command_requests SET n = n"));
    assert_false(sql_ok("DELETE FROM command_requests"));
    assert_false(sql_ok("TRUNCATE command_requests CASCADE"));
    assert_false(sql_ok("UPDATE command_states SET state = 'done'"));
    assert_false(sql_ok("UPDATE command_states SET actor = actor"));
    assert_false(sql_ok("DELETE FROM command_states"));
    assert_false(sql_ok("TRUNCATE command_states"));
    assert_true(sql_long("SELECT count(*) FROM command_states") > 0);
}

/* A request by bob that waits for approval; its id into id. */
static void new_pending_request(char *id, size_t len)
{
    struct call c;
    run(&c, &t.bob, "restart-app", "app.service", 0);
    expect_ok(&c);
    snprintf(id, len, "%s", c.rep.msg.commands[0]->id);
    done(&c);
}

/* A change whose expected state no longer holds inserts nothing and writes no audit row; the
 * current state is always the last state row of its request, each row following the one
 * before. */
static void test_state_rows(void **state)
{
    (void)state;
    char sql[512], st[32], id[80];
    new_pending_request(id, sizeof(id));

    assert_int_equal(store_command_begin(t.pg.store), 0);
    assert_int_equal(
        store_command_transition(t.pg.store, id, "pending", "cancelled", "bob", "command.cancel"),
        0);
    assert_int_equal(store_command_commit(t.pg.store), 0);
    /* Again: it is cancelled, not pending, so nothing applies. */
    assert_int_equal(store_command_begin(t.pg.store), 0);
    assert_int_equal(
        store_command_transition(t.pg.store, id, "pending", "cancelled", "bob", "command.cancel"),
        -ESTALE);
    assert_int_equal(
        store_command_transition(t.pg.store, id, "issued", "lost", "bob", "command.lost"), -ESTALE);
    assert_int_equal(store_command_transition(t.pg.store, "cmd-nowhere", "pending", "cancelled",
                                              "bob", "command.cancel"),
                     -ESTALE);
    assert_int_equal(store_command_commit(t.pg.store), 0);
    state_of(id, st, sizeof(st));
    assert_string_equal(st, "cancelled");
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM command_states WHERE request_id = '%s'", id);
    assert_int_equal(sql_long(sql), 2);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM audit_log WHERE subject = '%s' AND action = 'command.cancel'",
             id);
    assert_int_equal(sql_long(sql), 1);
    /* Nor does a forward-only move to a lower or equal rank, written by hand. */
    snprintf(sql, sizeof(sql),
             "INSERT INTO command_states (request_id, state, actor) VALUES ('%s', 'accepted', 'x')"
             " RETURNING n",
             id);
    PGresult *res = PQexec(t.pg.check, sql);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(res), 0);
    PQclear(res);

    assert_true(sql_long("SELECT count(*) FROM command_requests") > 3);
    assert_int_equal(
        sql_long("SELECT count(*) FROM command_requests q"
                 " LEFT JOIN command_current s ON s.request_id = q.id"
                 " LEFT JOIN LATERAL (SELECT x.n, x.state FROM command_states x"
                 "   WHERE x.request_id = q.id ORDER BY x.n DESC LIMIT 1) l ON true"
                 " WHERE s.state IS DISTINCT FROM l.state OR s.n IS DISTINCT FROM l.n"),
        0);
    assert_int_equal(sql_long("SELECT count(*) FROM command_states a JOIN command_states b"
                              " ON b.request_id = a.request_id AND b.n = a.n + 1"
                              " WHERE b.prev_state IS DISTINCT FROM a.state"),
                     0);
    assert_int_equal(sql_long("SELECT count(*) FROM command_states WHERE n = 1 AND state <> "
                              "'pending'"),
                     0);
}

/* The coordinator's own login, with INSERT and SELECT on the command tables and no UPDATE on
 * them, moves a state: the trigger writes the projection as its owner. No login writes the
 * projection itself. */
static void test_state_needs_no_update(void **state)
{
    (void)state;
    char sql[512], st[32], id[80];
    new_pending_request(id, sizeof(id));
    /* As the coordinator's own role (roles.h), which the fixture's private cluster made. */
    assert_true(sql_ok("BEGIN"));
    assert_true(sql_ok("SET LOCAL ROLE vigil_coordinator"));
    assert_int_equal(sql_long("SELECT has_table_privilege('command_current', 'UPDATE')::int"), 0);
    assert_true(sql_ok("SAVEPOINT s"));
    assert_false(sql_ok("UPDATE command_current SET n = n"));
    assert_true(sql_ok("ROLLBACK TO SAVEPOINT s"));
    assert_true(sql_ok("INSERT INTO command_requests (id, action, node, requested_by, created_at,"
                       " approve_by, mode, request_sha256) VALUES ('cmd-bare', 'x', 'n', 'eve',"
                       " now(), now(), 'auto', decode(repeat('00', 32), 'hex'))"));
    assert_false(sql_ok("INSERT INTO command_current VALUES ('cmd-bare', 'done', 1)"));
    assert_true(sql_ok("ROLLBACK TO SAVEPOINT s"));
    snprintf(sql, sizeof(sql),
             "INSERT INTO command_states (request_id, state, prev_state, actor)"
             " VALUES ('%s', 'cancelled', 'pending', 'runtime')",
             id);
    assert_true(sql_ok(sql));
    state_of(id, st, sizeof(st));
    assert_string_equal(st, "cancelled");
    assert_true(sql_ok("ROLLBACK"));
    state_of(id, st, sizeof(st));
    assert_string_equal(st, "pending");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_approve_issue),
        cmocka_unit_test(test_viewer_refused),
        cmocka_unit_test(test_unknown_action_refused),
        cmocka_unit_test(test_bad_signature_refused),
        cmocka_unit_test(test_destructive_needs_two),
        cmocka_unit_test(test_auto_and_reports),
        cmocka_unit_test(test_lost_after_expiry),
        cmocka_unit_test(test_approval_deadline),
        cmocka_unit_test(test_list_pages),
        cmocka_unit_test(test_append_only),
        cmocka_unit_test(test_state_rows),
        cmocka_unit_test(test_state_needs_no_update),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
