/*
 * command-fake-agent: one agent that declares an action catalog and answers command capsules the
 * way the executor will, for testing the coordinator's command path (RunCommand, approvals,
 * capsules, reports) end to end over CURVE before the real agent's executor runs actions.
 *
 *   command-fake-agent --endpoint E --server-key K --secret-file F --node NODE
 *                      --coordinator-key B64 [--signer NAME:ROLE:B64]...
 *                      [--action NAME:MODE[:PARAM,PARAM...]]... [--exit N]
 *
 * Enrolls with a bootstrap token and the catalog, prints "ready agent=ID" and heartbeats. Each
 * capsule is checked with vg_capsule_verify against the coordinator key and the signers given
 * (the node's signer file) and vg_capsule_policy_ok with the declared mode, and answered with
 * CommandReports: accepted, started, done (exit N, default 0) when it passes, refused with the
 * verdict's reason otherwise; one line per capsule on stdout: "capsule request=ID ok" or
 * "capsule request=ID refused: REASON". Runs until killed (or 120 s).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "capsule.h"
#include "digest.h"
#include "fake_wire.h"
#include "keys.h"
#include "timeutil.h"
#include "token.h"
#include "wire.h"

#define MAX_ACTIONS 16
#define MAX_PARAMS 8

struct fake_action {
    Vigil__ActionInfo info;
    char *params[MAX_PARAMS];
    enum vg_action_mode mode;
};

static void die(const char *what)
{
    fprintf(stderr, "command-fake-agent: %s\n", what);
    exit(2);
}

static void send_env(void *s, Vigil__Envelope *env)
{
    fake_wire_send("command-fake-agent", s, env);
}

static Vigil__Envelope *receive(void *s, int timeout_ms)
{
    return fake_wire_receive("command-fake-agent", s, timeout_ms);
}

static void parse_action(char *spec, struct fake_action *a)
{
    vigil__action_info__init(&a->info);
    char *save = NULL;
    char *name = strtok_r(spec, ":", &save), *mode = strtok_r(NULL, ":", &save);
    char *params = strtok_r(NULL, ":", &save);
    if (!name || !mode)
        die("--action NAME:MODE[:PARAMS]");
    a->info.name = name;
    a->info.kind = "exec";
    a->info.mode = mode;
    if (strcmp(mode, "auto") == 0)
        a->mode = VG_ACTION_MODE_AUTO;
    else if (strcmp(mode, "destructive") == 0)
        a->mode = VG_ACTION_MODE_DESTRUCTIVE;
    else
        a->mode = VG_ACTION_MODE_APPROVE;
    size_t n = 0;
    for (char *p = params ? strtok_r(params, ",", &save) : NULL; p && n < MAX_PARAMS;
         p = strtok_r(NULL, ",", &save))
        a->params[n++] = p;
    a->info.params = a->params;
    a->info.n_params = n;
}

static void add_signer(vg_signer_set_t *set, char *spec)
{
    char *save = NULL;
    char *name = strtok_r(spec, ":", &save), *role = strtok_r(NULL, ":", &save);
    char *key = strtok_r(NULL, ":", &save);
    unsigned char pk[VG_SIGN_PUBLIC_LEN];
    enum vg_signer_role r;
    if (!name || !role || !key || vg_signer_role_parse(role, &r) < 0 ||
        vg_sign_public_parse(key, pk) < 0 || vg_signer_set_add(set, name, r, pk) < 0)
        die("--signer NAME:ROLE:BASE64");
}

/* One report; returns the seq it used. */
static uint64_t report(void *s, const char *id, uint64_t seq, const Vigil__CommandCapsule *cap,
                       Vigil__CommandStep step, int exit_status, const char *reason)
{
    Vigil__CommandReport rep = VIGIL__COMMAND_REPORT__INIT;
    Vigil__Envelope env;
    uint8_t sha[VG_SHA256_LEN];
    char output[160];
    rep.request_id = cap->request->request_id;
    rep.nonce = cap->nonce;
    rep.step = step;
    rep.at_ms = vg_wall_ms();
    if (step == VIGIL__COMMAND_STEP__COMMAND_STEP_DONE) {
        snprintf(output, sizeof(output), "ran %s\n", cap->request->action);
        vg_sha256(output, strlen(output), sha);
        rep.exit_status = exit_status;
        rep.duration_ms = 7;
        rep.output_sha256.data = sha;
        rep.output_sha256.len = sizeof(sha);
    }
    if (reason)
        rep.reason = (char *)reason;
    vg_envelope_init(&env, id, seq);
    env.body_case = VIGIL__ENVELOPE__BODY_COMMAND_REPORT;
    env.command_report = &rep;
    send_env(s, &env);
    return seq;
}

int main(int argc, char **argv)
{
    const char *endpoint = NULL, *server_key = NULL, *secret_file = NULL, *node = NULL;
    const char *coordinator_key = NULL;
    struct fake_action actions[MAX_ACTIONS];
    Vigil__ActionInfo *action_ptrs[MAX_ACTIONS];
    size_t nactions = 0;
    int exit_status = 0;
    vg_signer_set_t *signers = vg_signer_set_new();
    if (!signers)
        die("out of memory");
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--endpoint") == 0)
            endpoint = argv[i + 1];
        else if (strcmp(argv[i], "--server-key") == 0)
            server_key = argv[i + 1];
        else if (strcmp(argv[i], "--secret-file") == 0)
            secret_file = argv[i + 1];
        else if (strcmp(argv[i], "--node") == 0)
            node = argv[i + 1];
        else if (strcmp(argv[i], "--coordinator-key") == 0)
            coordinator_key = argv[i + 1];
        else if (strcmp(argv[i], "--signer") == 0)
            add_signer(signers, argv[i + 1]);
        else if (strcmp(argv[i], "--exit") == 0)
            exit_status = (int)strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--action") == 0 && nactions < MAX_ACTIONS) {
            parse_action(argv[i + 1], &actions[nactions]);
            action_ptrs[nactions] = &actions[nactions].info;
            nactions++;
        } else
            die("unknown option");
    }
    unsigned char coord_pk[VG_SIGN_PUBLIC_LEN];
    if (!endpoint || !server_key || !secret_file || !node || !coordinator_key ||
        vg_sign_public_parse(coordinator_key, coord_pk) < 0 ||
        vg_signer_set_add(signers, "coordinator", VG_SIGNER_COORDINATOR, coord_pk) < 0)
        die("usage: see the comment at the top of command-fake-agent.c");

    char *secret, err[256];
    size_t secret_len;
    if (vg_secret_file_read(secret_file, &secret, &secret_len, err, sizeof(err)) < 0)
        die(err);
    struct vg_keypair keys;
    if (vg_keypair_generate(&keys) < 0)
        die("keygen failed");
    char id[VG_AGENT_ID_LEN + 1];
    vg_agent_id_from_key(keys.public_key, id);

    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    if (vg_zmq_common_options(s, 1000, VG_LIVENESS_TCP) < 0 ||
        vg_zmq_curve_client(s, keys.public_key, keys.secret_key, server_key) < 0 ||
        zmq_connect(s, endpoint) < 0)
        die("connect failed");

    Vigil__Enroll enroll = VIGIL__ENROLL__INIT;
    uint8_t token[VG_TOKEN_LEN];
    vg_token_compute(secret, secret_len, keys.public_key, token);
    enroll.node = (char *)node;
    enroll.agent_version = "fake";
    enroll.token.data = token;
    enroll.token.len = sizeof(token);
    enroll.actions = action_ptrs;
    enroll.n_actions = nactions;
    Vigil__Envelope env;
    vg_envelope_init(&env, id, 0);
    env.body_case = VIGIL__ENVELOPE__BODY_ENROLL;
    env.enroll = &enroll;
    send_env(s, &env);

    uint64_t seq = 0;
    int64_t next_heartbeat = 0, deadline = vg_mono_ms() + 120000;
    bool ready = false;
    while (vg_mono_ms() < deadline) {
        if (ready && vg_mono_ms() >= next_heartbeat) {
            Vigil__Heartbeat hb = VIGIL__HEARTBEAT__INIT;
            vg_envelope_init(&env, id, 0);
            env.body_case = VIGIL__ENVELOPE__BODY_HEARTBEAT;
            env.heartbeat = &hb;
            send_env(s, &env);
            next_heartbeat = vg_mono_ms() + 500;
        }
        Vigil__Envelope *in = receive(s, 100);
        if (!in)
            continue;
        if (in->body_case == VIGIL__ENVELOPE__BODY_ENROLL_REPLY && !ready) {
            ready = true;
            printf("ready agent=%s\n", id);
            fflush(stdout);
        } else if (in->body_case == VIGIL__ENVELOPE__BODY_COMMAND) {
            const Vigil__CommandCapsule *cap = in->command;
            struct vg_capsule_verdict verdict;
            const char *why = NULL;
            const struct fake_action *act = NULL;
            for (size_t i = 0; i < nactions; i++)
                if (strcmp(actions[i].info.name, cap->request->action) == 0)
                    act = &actions[i];
            bool ok = vg_capsule_verify(cap, signers, node, vg_wall_ms(), &verdict) == 0;
            if (ok && !act) {
                ok = false;
                why = "the action is not in this node's catalog";
            } else if (ok && !vg_capsule_policy_ok(&verdict, act->mode, &why)) {
                ok = false;
            } else if (!ok) {
                why = verdict.reason;
            }
            if (ok) {
                report(s, id, ++seq, cap, VIGIL__COMMAND_STEP__COMMAND_STEP_ACCEPTED, 0, NULL);
                report(s, id, ++seq, cap, VIGIL__COMMAND_STEP__COMMAND_STEP_STARTED, 0, NULL);
                report(s, id, ++seq, cap, VIGIL__COMMAND_STEP__COMMAND_STEP_DONE, exit_status,
                       NULL);
                printf("capsule request=%s ok approvals=%u\n", cap->request->request_id,
                       verdict.approvals);
            } else {
                report(s, id, ++seq, cap, VIGIL__COMMAND_STEP__COMMAND_STEP_REFUSED, 0, why);
                printf("capsule request=%s refused: %s\n", cap->request->request_id, why);
            }
            fflush(stdout);
        } else if (in->body_case == VIGIL__ENVELOPE__BODY_REFUSAL) {
            fprintf(stderr, "command-fake-agent: refused: %s\n", in->refusal->reason);
        }
        vg_envelope_free(in);
    }
    die("timed out");
}
