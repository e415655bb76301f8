/*
 * vigil-sim: many simulated agents in one process, for the ingest benchmark and for the
 * integration tests' hostile-input cases.
 *
 *   vigil-sim ingest --endpoint E --server-key K --secret-file F [--agents N] [--seconds S]
 *                    [--signals-per-message M] [--window W] [--node-prefix P]
 *       N agents (each its own CURVE key and connection; nodes P-0 .. P-(N-1), P "sim" by
 *       default) enroll with a bootstrap token, then push signal batches for S seconds, keeping
 *       W messages in flight each. Afterwards it waits for the outstanding acknowledgements and
 *       prints one line:
 *       sim: agents=N messages=X rows=Y seconds=T rows_per_s=R lost=L version=V
 *       (lost = messages sent but never acknowledged). Exit 3 at once when the coordinator
 *       refuses the protocol version ("vigil-sim: refused code=4 reason=...").
 *
 *   vigil-sim bad KIND --endpoint E --server-key K [--secret-file F]
 *       Sends one hostile message and prints the coordinator's refusal ("refused code=N
 *       reason=..."), exit 0 when refused, 1 when it was accepted or nothing came back.
 *       KIND: unknown-key (signals from a key that never enrolled), malformed, version,
 *       unknown-type, oversized, sender (claims another agent's id), bad-token, multipart,
 *       bad-record (a signal the store cannot take, then a good one: the first refused with
 *       its seq, the second acknowledged), flood-unenrolled and flood-unknown (--messages N
 *       heartbeats of --size bytes made of unknown fields, from a key that never enrolled or
 *       from an enrolled agent; prints "flood: sent=N answered=A refused=R acked=K"),
 *       odd-node (enrolls as a node name that is not UTF-8, then heartbeats with a version
 *       cut inside a character: both must be accepted).
 *
 *   vigil-sim commands --endpoint E --server-key K --secret-file F --signing-key S
 *                      [--agents N] [--seconds S] [--action A] [--expect C] [--node-prefix P]
 *       N agents enroll declaring a catalog of one `auto` exec action A ("noop" by default) and
 *       print "sim: ready agents=N" once all are active. Then each answers every CommandCapsule
 *       it receives the way the executor does: vg_capsule_verify with a signer set holding the
 *       coordinator's Ed25519 public key S (base64, as `vigil-coordinator --print-signing-key`
 *       prints it), this agent's node and the wall clock, then vg_capsule_policy_ok for mode
 *       auto and the action name; a capsule that passes is answered ACCEPTED, STARTED, DONE
 *       (exit 0, the SHA-256 of an empty output), one that does not REFUSED with the reason,
 *       all as durable command_report messages with increasing seq. The nonce is not recorded
 *       (no replay cache: the benchmark never replays). It stops after S seconds (60 by
 *       default), or once every agent has answered C capsules (--expect, 0 = never) and all its
 *       reports are acknowledged, and prints
 *       sim: commands agents=N capsules=X refused=Y reports=Z unacked=U first_capsule_at_ms=T1
 *       last_capsule_at_ms=T2   (T1, T2: wall clock, Unix ms, when the first and last capsule
 *       arrived)
 *
 *   vigil-sim steady --endpoint E --server-key K --secret-file F [--agents N] [--seconds S]
 *                    [--interval-ms I] [--signals-per-message M] [--node-prefix P]
 *                    [--ids-file F] [--stop-file F] [--enroll-seconds T] [--ramp R]
 *       N agents that behave like real ones across faults (the fault suite's reconnect storm,
 *       the coordinator memory benchmark): each enrolls, then sends one signal batch every I ms
 *       (1000 by default, first sends spread over I) and a heartbeat at the interval the
 *       coordinator asks for, keeps every unacknowledged batch (at most 64; a full window
 *       sends nothing new, so nothing is ever given up) and sends them all again, same seq and
 *       content, when the oldest is 2 s without an ack (as the agent's spool does after a
 *       reconnect). A refusal "not enrolled" enrolls again. --ramp R opens R connections a
 *       second rather than all at once (thousands of simultaneous CURVE handshakes are a
 *       storm). Prints "sim: ready agents=N" once all are active. After S seconds, or once
 *       the stop file exists, it makes no new batch, waits up to 60 s for every outstanding
 *       ack, writes "AGENT_ID LAST_SEQ" per agent to the ids file (so the store can be checked
 *       for every seq 1..LAST_SEQ), and prints
 *       sim: steady agents=N sent=X acked=Y unacked=U resent=Z refused=R reenrolled=E
 *       (refused: refusals other than "not enrolled"). Exit 0 when unacked and refused are 0.
 *
 *   Every mode takes --protocol-version V (default: this build's VG_PROTOCOL_VERSION): every
 * envelope is stamped V, and a reply is taken only if an agent at V would take it (V-1 .. V+1, the
 *   window common/wire.h defines), so a rolling upgrade's mixed versions can be played.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <zmq.h>

#include "capsule.h"
#include "digest.h"
#include "keys.h"
#include "timeutil.h"
#include "token.h"
#include "wire.h"

struct sim_agent {
    void *socket;
    struct vg_keypair keys;
    char id[VG_AGENT_ID_LEN + 1];
    bool active;
    uint64_t next_seq;
    uint64_t inflight;
    uint64_t acked_messages;
    int64_t last_enroll;
    int enroll_attempts;    /* enroll_all: the retry interval doubles with each (1 s .. 16 s) */
    int64_t next_heartbeat; /* commands: mono ms */
    uint32_t heartbeat_ms;  /* commands: from the EnrollReply */
    int capsules;           /* commands: capsules answered */
};

struct options {
    const char *endpoint;
    const char *server_key;
    const char *secret_file;
    int agents;
    int seconds;
    int signals_per_message;
    int window;
    const char *node_prefix;
    const char *signing_key; /* commands: the coordinator's signing public key, base64 */
    const char *action;      /* commands: the one action the catalog declares */
    int expect;              /* commands: stop once every agent answered this many */
    int interval_ms;         /* steady: one batch per agent per interval */
    const char *ids_file;    /* steady: "AGENT_ID LAST_SEQ" lines written at the end */
    const char *stop_file;   /* steady: stop producing once this file exists */
    int enroll_seconds;      /* how long enroll_all waits for every agent to be active */
    int ramp;                /* enroll_all: connections opened per second, 0 = all at once */
};

/* bad flood-*: how many messages, of how many bytes (--messages, --size). */
static int flood_messages = 400;
static size_t flood_size = 4 * 1024 * 1024 - 1024;

/* The version simulated agents speak (--protocol-version). */
static uint32_t protocol_version = VG_PROTOCOL_VERSION;
/* The coordinator refused our version: its reason, and how many agents it refused. */
static char version_refusal[256];
static int agents_refused_version;

static char *secret;
static size_t secret_len;

static void die(const char *what)
{
    fprintf(stderr, "vigil-sim: %s\n", what);
    exit(2);
}

static void *connect_agent(void *ctx, const struct options *o, const struct vg_keypair *keys)
{
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    if (!s || vg_zmq_common_options(s, 5000, VG_LIVENESS_TCP) < 0 ||
        vg_zmq_curve_client(s, keys->public_key, keys->secret_key, o->server_key) < 0 ||
        zmq_connect(s, o->endpoint) != 0)
        die("cannot create a socket");
    return s;
}

/* vg_envelope_init, stamped with the simulated version. */
static void init_env(Vigil__Envelope *env, const char *sender, uint64_t seq)
{
    vg_envelope_init(env, sender, seq);
    env->version = protocol_version;
}

static int send_env(void *s, Vigil__Envelope *env)
{
    uint8_t *buf;
    size_t len;
    if (vg_envelope_encode(env, &buf, &len) < 0)
        return -1;
    int r = zmq_send(s, buf, len, ZMQ_DONTWAIT);
    free(buf);
    return r < 0 ? -1 : 0;
}

/* commands: the catalog every simulated agent declares in Enroll (NULL: none). */
static Vigil__ActionInfo *sim_catalog;

static void send_enroll(struct sim_agent *a, const char *node, bool bad_token)
{
    Vigil__Enroll enroll = VIGIL__ENROLL__INIT;
    Vigil__ActionInfo *catalog[1] = {sim_catalog};
    uint8_t token[VG_TOKEN_LEN];
    Vigil__Envelope env;

    enroll.node = (char *)node;
    enroll.agent_version = "sim";
    if (sim_catalog) {
        enroll.actions = catalog;
        enroll.n_actions = 1;
    }
    if (secret) {
        vg_token_compute(secret, secret_len, a->keys.public_key, token);
        if (bad_token)
            token[0] ^= 1;
        enroll.token.data = token;
        enroll.token.len = sizeof(token);
    }
    init_env(&env, a->id, 0);
    env.body_case = VIGIL__ENVELOPE__BODY_ENROLL;
    env.enroll = &enroll;
    send_env(a->socket, &env);
    a->last_enroll = vg_mono_ms();
}

/* One signal batch shaped like a host collector's output. */
static int send_batch(struct sim_agent *a, int nsignals, const char *node)
{
    Vigil__Signal *sigs = calloc((size_t)nsignals, sizeof(*sigs));
    Vigil__Signal **ptrs = calloc((size_t)nsignals, sizeof(*ptrs));
    Vigil__Label labels[2];
    Vigil__Label *label_ptrs[2] = {&labels[0], &labels[1]};
    /* The fifth is the agents' heartbeat signal, so node-lost (absent:) sees a live node. */
    static const char *const names[] = {"host.cpu.busy_pct", "host.mem.used_pct",
                                        "host.disk.used_pct", "host.load.1m", "agent.uptime_s"};
    int64_t now = vg_wall_ms();

    vigil__label__init(&labels[0]);
    labels[0].key = "node";
    labels[0].value = (char *)node;
    vigil__label__init(&labels[1]);
    labels[1].key = "mount";
    labels[1].value = "/var";
    for (int i = 0; i < nsignals; i++) {
        vigil__signal__init(&sigs[i]);
        sigs[i].name = (char *)names[i % 5];
        sigs[i].value = (double)(i % 100) + 0.5;
        sigs[i].unit = "percent";
        sigs[i].labels = label_ptrs;
        sigs[i].n_labels = 2;
        sigs[i].ts_ms = now;
        ptrs[i] = &sigs[i];
    }
    Vigil__SignalBatch batch = VIGIL__SIGNAL_BATCH__INIT;
    batch.signals = ptrs;
    batch.n_signals = (size_t)nsignals;
    Vigil__Envelope env;
    init_env(&env, a->id, a->next_seq);
    env.body_case = VIGIL__ENVELOPE__BODY_SIGNALS;
    env.signals = &batch;
    int r = send_env(a->socket, &env);
    free(sigs);
    free(ptrs);
    if (r == 0) {
        a->next_seq++;
        a->inflight++;
    }
    return r;
}

static Vigil__Envelope *receive(void *s, int timeout_ms)
{
    zmq_pollitem_t item = {s, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, timeout_ms) <= 0)
        return NULL;
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, s, 0) < 0) {
        zmq_msg_close(&msg);
        return NULL;
    }
    Vigil__Envelope *env = NULL;
    vg_envelope_decode(zmq_msg_data(&msg), zmq_msg_size(&msg), &env, NULL);
    zmq_msg_close(&msg);
    /* The window of an agent at protocol_version: one version either side of it. Such an
     * agent would drop the reply; the sim still notes a version refusal, to report it. */
    if (env && (env->version + 1 < protocol_version || env->version > protocol_version + 1)) {
        fprintf(stderr, "vigil-sim: a reply at protocol version %u, which an agent at %u refuses\n",
                env->version, protocol_version);
        if (env->body_case == VIGIL__ENVELOPE__BODY_REFUSAL &&
            env->refusal->code == VIGIL__REFUSAL_CODE__REFUSAL_VERSION) {
            snprintf(version_refusal, sizeof(version_refusal), "%s", env->refusal->reason);
            agents_refused_version++;
        }
        vg_envelope_free(env);
        env = NULL;
    }
    return env;
}

static void handle_reply(struct sim_agent *a, Vigil__Envelope *env)
{
    if (env->body_case == VIGIL__ENVELOPE__BODY_ENROLL_REPLY) {
        a->active = env->enroll_reply->state == VIGIL__AGENT_STATE__AGENT_STATE_ACTIVE;
        a->heartbeat_ms = env->enroll_reply->heartbeat_interval_ms;
    } else if (env->body_case == VIGIL__ENVELOPE__BODY_ACK) {
        for (size_t i = 0; i < env->ack->n_ranges; i++) {
            uint64_t n = env->ack->ranges[i]->last - env->ack->ranges[i]->first + 1;
            a->acked_messages += n;
            a->inflight -= n <= a->inflight ? n : a->inflight;
        }
    } else if (env->body_case == VIGIL__ENVELOPE__BODY_REFUSAL) {
        fprintf(stderr, "vigil-sim: agent %s refused: %s\n", a->id, env->refusal->reason);
        if (env->refusal->code == VIGIL__REFUSAL_CODE__REFUSAL_VERSION) {
            snprintf(version_refusal, sizeof(version_refusal), "%s", env->refusal->reason);
            agents_refused_version++;
        }
    }
}

static void drain(struct sim_agent *agents, int n, zmq_pollitem_t *items, int timeout_ms)
{
    if (zmq_poll(items, n, timeout_ms) <= 0)
        return;
    for (int i = 0; i < n; i++) {
        if (!(items[i].revents & ZMQ_POLLIN))
            continue;
        Vigil__Envelope *env;
        while ((env = receive(agents[i].socket, 0)) != NULL) {
            handle_reply(&agents[i], env);
            vg_envelope_free(env);
        }
    }
}

/* Closes every socket (zmq_ctx_term waits for them) and frees the arrays; returns code. */
static int ingest_end(struct sim_agent *agents, zmq_pollitem_t *items, int n, int code)
{
    for (int i = 0; i < n; i++)
        zmq_close(agents[i].socket);
    free(agents);
    free(items);
    return code;
}

static void send_heartbeat(struct sim_agent *a);

/*
 * Makes o->agents agents, each with its own key and connection, and enrolls them all as nodes
 * P-0 .. P-(N-1) (retrying while connections come up, for up to --enroll-seconds, 60 s; with
 * --ramp R, R more connections each second), heartbeating those already active. 0 when all
 * are active;
 * 3 when the coordinator refused our protocol version, 1 when some never became active (both
 * printed).
 */
static int enroll_all(void *ctx, const struct options *o, struct sim_agent *agents,
                      zmq_pollitem_t *items)
{
    char node[64];
    int created = 0;
    int64_t started = vg_mono_ms();
    int64_t deadline = started + (int64_t)o->enroll_seconds * 1000;
    int active = 0;
    while (active < o->agents && vg_mono_ms() < deadline) {
        int64_t now = vg_mono_ms();
        /* --ramp: at most R more connections each second, instead of all of them at once. */
        int allowed = o->agents;
        if (o->ramp > 0 && (int64_t)o->ramp * (1 + (now - started) / 1000) < o->agents)
            allowed = (int)((int64_t)o->ramp * (1 + (now - started) / 1000));
        for (; created < allowed; created++) {
            vg_keypair_generate(&agents[created].keys);
            vg_agent_id_from_key(agents[created].keys.public_key, agents[created].id);
            agents[created].socket = connect_agent(ctx, o, &agents[created].keys);
            agents[created].next_seq = 1;
            items[created] = (zmq_pollitem_t){agents[created].socket, 0, ZMQ_POLLIN, 0};
        }
        for (int i = 0; i < created; i++) {
            /* Retries back off: a coordinator slow to answer thousands of enrollments is not
             * helped by each agent asking again every second. */
            int shift = agents[i].enroll_attempts < 4 ? agents[i].enroll_attempts : 4;
            if (!agents[i].active && now - agents[i].last_enroll > (int64_t)1000 << shift) {
                snprintf(node, sizeof(node), "%s-%d", o->node_prefix, i);
                send_enroll(&agents[i], node, false);
                agents[i].enroll_attempts++;
            } else if (agents[i].active && agents[i].heartbeat_ms &&
                       now >= agents[i].next_heartbeat) {
                send_heartbeat(&agents[i]); /* those enrolled first stay alive meanwhile */
            }
        }
        drain(agents, created, items, 100);
        if (agents_refused_version > 0) {
            printf("vigil-sim: refused code=%d reason=%s\n", VIGIL__REFUSAL_CODE__REFUSAL_VERSION,
                   version_refusal);
            return 3;
        }
        active = 0;
        for (int i = 0; i < created; i++)
            active += agents[i].active;
    }
    /* Sockets never made stay NULL: the caller's zmq_close refuses them harmlessly. */
    if (active < o->agents) {
        fprintf(stderr, "vigil-sim: only %d of %d agents enrolled\n", active, o->agents);
        return 1;
    }
    return 0;
}

static int run_ingest(void *ctx, const struct options *o)
{
    struct sim_agent *agents = calloc((size_t)o->agents, sizeof(*agents));
    zmq_pollitem_t *items = calloc((size_t)o->agents, sizeof(*items));
    char node[64];

    if (!agents || !items)
        die("out of memory");
    /* Enroll everyone, then measure. */
    int e = enroll_all(ctx, o, agents, items);
    if (e != 0)
        return ingest_end(agents, items, o->agents, e);

    int64_t start = vg_mono_ms();
    int64_t stop = start + (int64_t)o->seconds * 1000;
    while (vg_mono_ms() < stop) {
        for (int i = 0; i < o->agents; i++) {
            snprintf(node, sizeof(node), "%s-%d", o->node_prefix, i);
            while (agents[i].inflight < (uint64_t)o->window &&
                   send_batch(&agents[i], o->signals_per_message, node) == 0)
                ;
        }
        drain(agents, o->agents, items, 10);
    }
    /* Wait for what is still in flight. */
    int64_t wait_until = vg_mono_ms() + 30000;
    for (;;) {
        uint64_t inflight = 0;
        for (int i = 0; i < o->agents; i++)
            inflight += agents[i].inflight;
        if (inflight == 0 || vg_mono_ms() > wait_until)
            break;
        drain(agents, o->agents, items, 50);
    }
    double seconds = (double)(vg_mono_ms() - start) / 1000.0;
    uint64_t messages = 0, lost = 0;
    for (int i = 0; i < o->agents; i++) {
        messages += agents[i].acked_messages;
        lost += agents[i].inflight;
        zmq_close(agents[i].socket);
    }
    uint64_t rows = messages * (uint64_t)o->signals_per_message;
    printf("sim: agents=%d messages=%llu rows=%llu seconds=%.2f rows_per_s=%.0f lost=%llu "
           "version=%u\n",
           o->agents, (unsigned long long)messages, (unsigned long long)rows, seconds,
           (double)rows / seconds, (unsigned long long)lost, protocol_version);
    free(agents);
    free(items);
    return 0;
}

/* ---- commands: answer capsules as an executor would ---- */

static int send_report(struct sim_agent *a, const Vigil__CommandCapsule *c, Vigil__CommandStep step,
                       const char *reason)
{
    static uint8_t empty_sha256[VG_SHA256_LEN];
    static bool hashed;
    Vigil__CommandReport rep = VIGIL__COMMAND_REPORT__INIT;
    Vigil__Envelope env;

    if (!hashed) {
        vg_sha256("", 0, empty_sha256);
        hashed = true;
    }
    rep.request_id = c->request->request_id;
    rep.nonce = c->nonce;
    rep.step = step;
    rep.at_ms = vg_wall_ms();
    if (step == VIGIL__COMMAND_STEP__COMMAND_STEP_DONE) {
        rep.exit_status = 0;
        rep.output_sha256.data = empty_sha256;
        rep.output_sha256.len = sizeof(empty_sha256);
    }
    if (reason)
        rep.reason = (char *)reason;
    init_env(&env, a->id, a->next_seq);
    env.body_case = VIGIL__ENVELOPE__BODY_COMMAND_REPORT;
    env.command_report = &rep;
    if (send_env(a->socket, &env) < 0)
        return -1;
    a->next_seq++;
    a->inflight++;
    return 0;
}

struct command_counts {
    uint64_t capsules, refused, reports;
    int64_t first_capsule_ms, last_capsule_ms; /* wall clock when received */
};

/* One capsule for agent a (node `node`): verified, then answered with its reports. */
static void answer_capsule(struct sim_agent *a, const char *node, const Vigil__CommandCapsule *c,
                           const vg_signer_set_t *signers, const char *action,
                           struct command_counts *n)
{
    struct vg_capsule_verdict verdict;
    const char *why = NULL;

    n->last_capsule_ms = vg_wall_ms();
    if (n->capsules++ == 0)
        n->first_capsule_ms = n->last_capsule_ms;
    a->capsules++;
    if (vg_capsule_verify(c, signers, node, vg_wall_ms(), &verdict) < 0)
        why = verdict.reason[0] ? verdict.reason : "the capsule does not verify";
    else if (strcmp(c->request->action, action) != 0)
        why = "the action is not in this node's catalog";
    else if (!vg_capsule_policy_ok(&verdict, VG_ACTION_MODE_AUTO, &why))
        why = why ? why : "the capsule lacks what the action's mode needs";
    if (why) {
        n->refused++;
        n->reports += send_report(a, c, VIGIL__COMMAND_STEP__COMMAND_STEP_REFUSED, why) == 0;
        return;
    }
    n->reports += send_report(a, c, VIGIL__COMMAND_STEP__COMMAND_STEP_ACCEPTED, NULL) == 0;
    n->reports += send_report(a, c, VIGIL__COMMAND_STEP__COMMAND_STEP_STARTED, NULL) == 0;
    n->reports += send_report(a, c, VIGIL__COMMAND_STEP__COMMAND_STEP_DONE, NULL) == 0;
}

static void send_heartbeat(struct sim_agent *a)
{
    Vigil__Heartbeat hb = VIGIL__HEARTBEAT__INIT;
    Vigil__Envelope env;
    hb.agent_version = "sim";
    init_env(&env, a->id, 0);
    env.body_case = VIGIL__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    send_env(a->socket, &env);
    a->next_heartbeat = vg_mono_ms() + (a->heartbeat_ms ? a->heartbeat_ms : 1000);
}

static int run_commands(void *ctx, const struct options *o)
{
    unsigned char coordinator_key[VG_SIGN_PUBLIC_LEN];
    static Vigil__ActionInfo info = VIGIL__ACTION_INFO__INIT;
    struct command_counts n = {0};
    char node[64];

    if (!o->signing_key || vg_sign_public_parse(o->signing_key, coordinator_key) < 0)
        die("commands needs --signing-key: the coordinator's Ed25519 public key, base64");
    vg_signer_set_t *signers = vg_signer_set_new();
    if (!signers ||
        vg_signer_set_add(signers, "coordinator", VG_SIGNER_COORDINATOR, coordinator_key) < 0)
        die("cannot build the signer set");
    info.name = (char *)o->action;
    info.kind = "exec";
    info.mode = "auto";
    sim_catalog = &info;

    struct sim_agent *agents = calloc((size_t)o->agents, sizeof(*agents));
    zmq_pollitem_t *items = calloc((size_t)o->agents, sizeof(*items));
    if (!agents || !items)
        die("out of memory");
    int e = enroll_all(ctx, o, agents, items);
    if (e != 0) {
        vg_signer_set_destroy(&signers);
        return ingest_end(agents, items, o->agents, e);
    }
    printf("sim: ready agents=%d\n", o->agents);
    fflush(stdout);

    int64_t stop = vg_mono_ms() + (int64_t)o->seconds * 1000;
    while (vg_mono_ms() < stop) {
        int64_t now = vg_mono_ms();
        bool finished = o->expect > 0;
        for (int i = 0; i < o->agents; i++) {
            if (now >= agents[i].next_heartbeat)
                send_heartbeat(&agents[i]);
            finished &= agents[i].capsules >= o->expect && agents[i].inflight == 0;
        }
        if (finished)
            break;
        if (zmq_poll(items, o->agents, 10) <= 0)
            continue;
        for (int i = 0; i < o->agents; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            Vigil__Envelope *env;
            while ((env = receive(agents[i].socket, 0)) != NULL) {
                if (env->body_case == VIGIL__ENVELOPE__BODY_COMMAND) {
                    snprintf(node, sizeof(node), "%s-%d", o->node_prefix, i);
                    answer_capsule(&agents[i], node, env->command, signers, o->action, &n);
                } else {
                    handle_reply(&agents[i], env);
                }
                vg_envelope_free(env);
            }
        }
    }
    uint64_t unacked = 0;
    for (int i = 0; i < o->agents; i++)
        unacked += agents[i].inflight;
    printf("sim: commands agents=%d capsules=%llu refused=%llu reports=%llu unacked=%llu "
           "first_capsule_at_ms=%lld last_capsule_at_ms=%lld\n",
           o->agents, (unsigned long long)n.capsules, (unsigned long long)n.refused,
           (unsigned long long)n.reports, (unsigned long long)unacked,
           (long long)n.first_capsule_ms, (long long)n.last_capsule_ms);
    vg_signer_set_destroy(&signers);
    return ingest_end(agents, items, o->agents, n.refused > 0 ? 1 : 0);
}

/* ---- steady: agents that resend what was not acknowledged, across faults ---- */

#define STEADY_WINDOW 64
#define STEADY_ACK_TIMEOUT_MS 2000
#define STEADY_SIGNALS_MAX 1000

/* What one steady agent has sent and not yet had acknowledged: seqs base .. base+n-1, each
 * with the time stamped into its samples (a resend is the same message). */
struct steady_state {
    uint64_t base;                /* oldest unacknowledged seq (== next_seq when none) */
    int64_t ts_ms[STEADY_WINDOW]; /* by seq % STEADY_WINDOW */
    bool acked[STEADY_WINDOW];    /* by seq % STEADY_WINDOW, for seqs >= base */
    int64_t oldest_sent_ms;       /* mono, when the oldest outstanding one was last sent */
    int64_t next_send_ms;         /* mono */
};

struct steady_counts {
    uint64_t sent, acked, resent, refused, reenrolled;
};

/* One batch of m samples for seq, stamped ts (as send_batch, with a given seq and time). */
static int send_steady_batch(struct sim_agent *a, uint64_t seq, int64_t ts, int m, const char *node)
{
    static Vigil__Signal sigs[STEADY_SIGNALS_MAX];
    static Vigil__Signal *ptrs[STEADY_SIGNALS_MAX];
    static const char *const names[] = {"host.cpu.busy_pct", "host.mem.used_pct", "host.load.1m",
                                        "agent.uptime_s"};
    Vigil__Label label = VIGIL__LABEL__INIT;
    Vigil__Label *label_ptrs[1] = {&label};

    label.key = "node";
    label.value = (char *)node;
    for (int i = 0; i < m; i++) {
        vigil__signal__init(&sigs[i]);
        sigs[i].name = (char *)names[i % 4];
        sigs[i].value = (double)(seq % 50) + i;
        sigs[i].unit = "percent";
        sigs[i].labels = label_ptrs;
        sigs[i].n_labels = 1;
        sigs[i].ts_ms = ts;
        ptrs[i] = &sigs[i];
    }
    Vigil__SignalBatch batch = VIGIL__SIGNAL_BATCH__INIT;
    batch.signals = ptrs;
    batch.n_signals = (size_t)m;
    Vigil__Envelope env;
    init_env(&env, a->id, seq);
    env.body_case = VIGIL__ENVELOPE__BODY_SIGNALS;
    env.signals = &batch;
    return send_env(a->socket, &env);
}

static void steady_ack(struct sim_agent *a, struct steady_state *st, const Vigil__Ack *ack,
                       struct steady_counts *n)
{
    for (size_t r = 0; r < ack->n_ranges; r++) {
        uint64_t first = ack->ranges[r]->first, last = ack->ranges[r]->last;
        if (first < st->base)
            first = st->base;
        for (uint64_t seq = first; seq <= last && seq < a->next_seq; seq++) {
            if (!st->acked[seq % STEADY_WINDOW]) {
                st->acked[seq % STEADY_WINDOW] = true;
                a->acked_messages++;
                n->acked++;
            }
        }
    }
    bool moved = false;
    while (st->base < a->next_seq && st->acked[st->base % STEADY_WINDOW]) {
        st->acked[st->base % STEADY_WINDOW] = false;
        st->base++;
        moved = true;
    }
    a->inflight = a->next_seq - st->base;
    if (moved)
        st->oldest_sent_ms = vg_mono_ms();
}

static void steady_receive(struct sim_agent *a, struct steady_state *st, const char *node,
                           struct steady_counts *n)
{
    Vigil__Envelope *env;
    while ((env = receive(a->socket, 0)) != NULL) {
        if (env->body_case == VIGIL__ENVELOPE__BODY_ACK) {
            steady_ack(a, st, env->ack, n);
        } else if (env->body_case == VIGIL__ENVELOPE__BODY_ENROLL_REPLY) {
            handle_reply(a, env);
        } else if (env->body_case == VIGIL__ENVELOPE__BODY_REFUSAL) {
            if (env->refusal->code == VIGIL__REFUSAL_CODE__REFUSAL_NOT_ENROLLED) {
                /* The coordinator wants a login first: enroll again, resend after the reply. */
                if (vg_mono_ms() - a->last_enroll > 1000) {
                    n->reenrolled++;
                    send_enroll(a, node, false);
                }
            } else {
                n->refused++;
                fprintf(stderr, "vigil-sim: agent %s refused code=%d seq=%llu: %s\n", a->id,
                        env->refusal->code, (unsigned long long)env->refusal->seq,
                        env->refusal->reason);
            }
        }
        vg_envelope_free(env);
    }
}

static int run_steady(void *ctx, const struct options *o)
{
    struct sim_agent *agents = calloc((size_t)o->agents, sizeof(*agents));
    struct steady_state *st = calloc((size_t)o->agents, sizeof(*st));
    zmq_pollitem_t *items = calloc((size_t)o->agents, sizeof(*items));
    struct steady_counts n = {0};
    char node[64];

    if (!agents || !st || !items)
        die("out of memory");
    if (o->signals_per_message > STEADY_SIGNALS_MAX)
        die("steady: at most 1000 signals per message");
    int e = enroll_all(ctx, o, agents, items);
    if (e != 0) {
        free(st);
        return ingest_end(agents, items, o->agents, e);
    }
    printf("sim: ready agents=%d\n", o->agents);
    fflush(stdout);

    int64_t start = vg_mono_ms();
    for (int i = 0; i < o->agents; i++) {
        st[i].base = agents[i].next_seq;
        st[i].next_send_ms = start + (int64_t)i * o->interval_ms / o->agents;
    }
    int64_t stop = start + (int64_t)o->seconds * 1000;
    int64_t drain_until = 0, next_stop_check = 0;
    for (;;) {
        int64_t now = vg_mono_ms();
        bool producing = drain_until == 0;
        if (producing && now >= next_stop_check) {
            next_stop_check = now + 200;
            if (now >= stop || (o->stop_file && access(o->stop_file, F_OK) == 0))
                producing = false;
        }
        if (!producing && drain_until == 0)
            drain_until = now + 60000;
        uint64_t outstanding = 0;
        for (int i = 0; i < o->agents; i++) {
            struct sim_agent *a = &agents[i];
            struct steady_state *s = &st[i];
            snprintf(node, sizeof(node), "%s-%d", o->node_prefix, i);
            if (now >= a->next_heartbeat)
                send_heartbeat(a);
            /* Resend everything outstanding when the oldest waited too long. */
            if (s->base < a->next_seq && now - s->oldest_sent_ms >= STEADY_ACK_TIMEOUT_MS) {
                for (uint64_t seq = s->base; seq < a->next_seq; seq++) {
                    if (s->acked[seq % STEADY_WINDOW])
                        continue;
                    if (send_steady_batch(a, seq, s->ts_ms[seq % STEADY_WINDOW],
                                          o->signals_per_message, node) == 0)
                        n.resent++;
                }
                s->oldest_sent_ms = now;
            }
            if (producing && now >= s->next_send_ms && a->next_seq - s->base < STEADY_WINDOW) {
                uint64_t seq = a->next_seq;
                int64_t ts = vg_wall_ms();
                s->ts_ms[seq % STEADY_WINDOW] = ts;
                s->acked[seq % STEADY_WINDOW] = false;
                /* Taken even when the socket refuses it now (no connection): it is resent. */
                send_steady_batch(a, seq, ts, o->signals_per_message, node);
                if (s->base == seq)
                    s->oldest_sent_ms = now;
                a->next_seq++;
                n.sent++;
                s->next_send_ms += o->interval_ms;
                if (s->next_send_ms < now)
                    s->next_send_ms = now + o->interval_ms;
            }
            outstanding += a->next_seq - s->base;
        }
        if (!producing && (outstanding == 0 || now >= drain_until))
            break;
        if (zmq_poll(items, o->agents, 10) > 0) {
            for (int i = 0; i < o->agents; i++) {
                if (!(items[i].revents & ZMQ_POLLIN))
                    continue;
                snprintf(node, sizeof(node), "%s-%d", o->node_prefix, i);
                steady_receive(&agents[i], &st[i], node, &n);
            }
        }
    }

    uint64_t unacked = 0;
    FILE *ids = o->ids_file ? fopen(o->ids_file, "w") : NULL;
    if (o->ids_file && !ids)
        die("cannot write the ids file");
    for (int i = 0; i < o->agents; i++) {
        unacked += agents[i].next_seq - st[i].base;
        if (ids)
            fprintf(ids, "%s %llu\n", agents[i].id, (unsigned long long)(agents[i].next_seq - 1));
    }
    if (ids && fclose(ids) != 0)
        die("cannot write the ids file");
    printf("sim: steady agents=%d sent=%llu acked=%llu unacked=%llu resent=%llu refused=%llu "
           "reenrolled=%llu\n",
           o->agents, (unsigned long long)n.sent, (unsigned long long)n.acked,
           (unsigned long long)unacked, (unsigned long long)n.resent, (unsigned long long)n.refused,
           (unsigned long long)n.reenrolled);
    free(st);
    return ingest_end(agents, items, o->agents, unacked == 0 && n.refused == 0 ? 0 : 1);
}

/* ---- hostile input ---- */

static int expect_refusal(void *s)
{
    int64_t deadline = vg_mono_ms() + 5000;
    while (vg_mono_ms() < deadline) {
        Vigil__Envelope *env = receive(s, 200);
        if (!env)
            continue;
        if (env->body_case == VIGIL__ENVELOPE__BODY_REFUSAL) {
            printf("refused code=%d reason=%s\n", env->refusal->code, env->refusal->reason);
            vg_envelope_free(env);
            return 0;
        }
        printf("answered type=%d\n", env->body_case);
        vg_envelope_free(env);
        return 1;
    }
    printf("no answer\n");
    return 1;
}

static int send_bad(struct sim_agent *a, const char *kind);

/*
 * Enrolls as node "odd\xff" (not UTF-8), then sends a heartbeat: the coordinator must admit
 * the agent (its name escaped) and keep answering it. Prints both answers; 0 when the agent
 * is active and its heartbeat acknowledged.
 */
static int send_odd_node(struct sim_agent *a)
{
    send_enroll(a, "odd\xff", false);
    Vigil__Envelope *env = receive(a->socket, 5000);
    bool active = env && env->body_case == VIGIL__ENVELOPE__BODY_ENROLL_REPLY &&
                  env->enroll_reply->state == VIGIL__AGENT_STATE__AGENT_STATE_ACTIVE;
    printf("enroll: %s\n", active ? "active" : env ? "not active" : "no answer");
    vg_envelope_free(env);

    Vigil__Heartbeat hb = VIGIL__HEARTBEAT__INIT;
    hb.agent_version = "sim\xe2\x82"; /* a version cut inside a character */
    Vigil__Envelope beat;
    init_env(&beat, a->id, 0);
    beat.body_case = VIGIL__ENVELOPE__BODY_HEARTBEAT;
    beat.heartbeat = &hb;
    send_env(a->socket, &beat);
    env = receive(a->socket, 5000);
    bool acked = env && env->body_case == VIGIL__ENVELOPE__BODY_ACK;
    printf("heartbeat: %s\n", acked ? "acknowledged" : "not acknowledged");
    vg_envelope_free(env);
    return active && acked ? 0 : 1;
}

/*
 * flood_messages heartbeats of flood_size bytes, nearly all of it unknown varint fields
 * (number 1000): what a hostile peer sends to make the coordinator decode and keep them. Then
 * counts the answers for up to 30 s and prints "flood: sent=N answered=A refused=R acked=K".
 */
static int send_flood(struct sim_agent *a)
{
    Vigil__Heartbeat hb = VIGIL__HEARTBEAT__INIT;
    Vigil__Envelope env;
    init_env(&env, a->id, 0);
    env.body_case = VIGIL__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    uint8_t *buf = malloc(flood_size + 16);
    if (!buf)
        die("out of memory");
    size_t len = vigil__envelope__pack(&env, buf);
    while (len + 3 <= flood_size) {
        buf[len++] = 0xc0; /* (1000 << 3) | 0 */
        buf[len++] = 0x3e;
        buf[len++] = 0x01;
    }
    int sent = 0;
    for (int i = 0; i < flood_messages; i++)
        sent += zmq_send(a->socket, buf, len, 0) >= 0;
    free(buf);

    int answered = 0, refused = 0, acked = 0;
    int64_t deadline = vg_mono_ms() + 30000; /* a sanitizer build answers slowly */
    while (answered < sent && vg_mono_ms() < deadline) {
        Vigil__Envelope *ans = receive(a->socket, 200);
        if (!ans)
            continue;
        answered++;
        refused += ans->body_case == VIGIL__ENVELOPE__BODY_REFUSAL;
        acked += ans->body_case == VIGIL__ENVELOPE__BODY_ACK;
        vg_envelope_free(ans);
    }
    printf("flood: sent=%d answered=%d refused=%d acked=%d\n", sent, answered, refused, acked);
    return answered == sent ? 0 : 1;
}

/*
 * A record the store cannot take (a label value that is not UTF-8, as a raw mount point name
 * would be), then a good one: the first must be refused with its seq, so an agent can discard
 * it, and the second acknowledged. Prints both answers; 0 when both are as they should be.
 */
static int send_bad_record(struct sim_agent *a)
{
    uint64_t bad_seq = a->next_seq;
    send_batch(a, 4, "bad\xff");
    Vigil__Envelope *env = receive(a->socket, 5000);
    bool refused = env && env->body_case == VIGIL__ENVELOPE__BODY_REFUSAL &&
                   env->refusal->code == VIGIL__REFUSAL_CODE__REFUSAL_INVALID &&
                   env->refusal->seq == bad_seq;
    if (env && env->body_case == VIGIL__ENVELOPE__BODY_REFUSAL)
        printf("refused code=%d seq=%llu reason=%s\n", env->refusal->code,
               (unsigned long long)env->refusal->seq, env->refusal->reason);
    else
        printf("bad record: %s\n", env ? "answered, not refused" : "no answer");
    vg_envelope_free(env);

    uint64_t good_seq = a->next_seq;
    send_batch(a, 4, "good");
    env = receive(a->socket, 5000);
    bool acked = false;
    if (env && env->body_case == VIGIL__ENVELOPE__BODY_ACK) {
        for (size_t i = 0; i < env->ack->n_ranges; i++)
            acked |=
                env->ack->ranges[i]->first <= good_seq && good_seq <= env->ack->ranges[i]->last;
    }
    printf("good record seq=%llu: %s\n", (unsigned long long)good_seq,
           acked ? "acknowledged" : "not acknowledged");
    vg_envelope_free(env);
    return refused && acked ? 0 : 1;
}

static int run_bad(void *ctx, const struct options *o, const char *kind)
{
    struct sim_agent a = {0};
    vg_keypair_generate(&a.keys);
    vg_agent_id_from_key(a.keys.public_key, a.id);
    a.socket = connect_agent(ctx, o, &a.keys);
    a.next_seq = 1;
    int r = send_bad(&a, kind);
    zmq_close(a.socket);
    return r;
}

static int send_bad(struct sim_agent *sa, const char *kind)
{
    struct sim_agent a = *sa;

    if (strcmp(kind, "bad-token") == 0) {
        send_enroll(&a, "sim-bad-token", true);
        return expect_refusal(a.socket);
    }
    if (strcmp(kind, "flood-unenrolled") == 0)
        return send_flood(&a);
    if (strcmp(kind, "odd-node") == 0)
        return send_odd_node(&a);
    if (strcmp(kind, "unknown-key") == 0) {
        send_batch(&a, 4, "sim-unknown");
        return expect_refusal(a.socket);
    }

    /* The rest come from an enrolled agent, so only the message itself is at fault. */
    if (secret)
        send_enroll(&a, "sim-hostile", false);
    Vigil__Envelope *reply = receive(a.socket, 5000);
    vg_envelope_free(reply);
    if (strcmp(kind, "bad-record") == 0)
        return send_bad_record(&a);
    if (strcmp(kind, "flood-unknown") == 0)
        return send_flood(&a);

    Vigil__Heartbeat hb = VIGIL__HEARTBEAT__INIT;
    Vigil__Envelope env;
    init_env(&env, a.id, 0);
    env.body_case = VIGIL__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    if (strcmp(kind, "malformed") == 0) {
        static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
        zmq_send(a.socket, junk, sizeof(junk), 0);
    } else if (strcmp(kind, "version") == 0) {
        env.version = 99;
        send_env(a.socket, &env);
    } else if (strcmp(kind, "unknown-type") == 0) {
        env.body_case = VIGIL__ENVELOPE__BODY__NOT_SET;
        send_env(a.socket, &env);
    } else if (strcmp(kind, "sender") == 0) {
        env.sender = "ag-0000000000000000";
        send_env(a.socket, &env);
    } else if (strcmp(kind, "multipart") == 0) {
        zmq_send(a.socket, "a", 1, ZMQ_SNDMORE);
        zmq_send(a.socket, "b", 1, 0);
    } else if (strcmp(kind, "oversized") == 0) {
        size_t len = VG_MAX_MESSAGE_BYTES + 1024;
        uint8_t *big = calloc(1, len);
        zmq_send(a.socket, big, len, 0);
        free(big);
    } else {
        die("unknown KIND");
    }
    return expect_refusal(a.socket);
}

static void usage(void)
{
    fprintf(stderr, "usage: vigil-sim ingest|commands|steady|bad KIND --endpoint E --server-key K "
                    "[--secret-file F] [--agents N] [--seconds S] [--signals-per-message M] "
                    "[--window W] [--node-prefix P] [--protocol-version V] "
                    "[--signing-key S] [--action A] [--expect C] [--interval-ms I] "
                    "[--ids-file F] [--stop-file F] [--enroll-seconds T] [--ramp R]\n");
    exit(64);
}

int main(int argc, char **argv)
{
    struct options o = {
        .endpoint = "tcp://127.0.0.1:7400",
        .agents = 1000,
        .seconds = 10,
        .signals_per_message = 50,
        .window = 4,
        .node_prefix = "sim",
        .action = "noop",
        .interval_ms = 1000,
        .enroll_seconds = 60,
    };
    const char *mode, *kind = NULL;
    char err[256];

    if (argc < 2)
        usage();
    mode = argv[1];
    int i = 2;
    if (strcmp(mode, "bad") == 0) {
        if (argc < 3)
            usage();
        kind = argv[2];
        i = 3;
    } else if (strcmp(mode, "ingest") != 0 && strcmp(mode, "commands") != 0 &&
               strcmp(mode, "steady") != 0) {
        usage();
    }
    if (strcmp(mode, "commands") == 0)
        o.seconds = 60;
    for (; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--endpoint") == 0)
            o.endpoint = v;
        else if (strcmp(k, "--server-key") == 0)
            o.server_key = v;
        else if (strcmp(k, "--secret-file") == 0)
            o.secret_file = v;
        else if (strcmp(k, "--agents") == 0)
            o.agents = (int)strtol(v, NULL, 10);
        else if (strcmp(k, "--seconds") == 0)
            o.seconds = (int)strtol(v, NULL, 10);
        else if (strcmp(k, "--messages") == 0)
            flood_messages = (int)strtol(v, NULL, 10);
        else if (strcmp(k, "--size") == 0)
            flood_size = (size_t)strtoull(v, NULL, 10);
        else if (strcmp(k, "--signals-per-message") == 0)
            o.signals_per_message = (int)strtol(v, NULL, 10);
        else if (strcmp(k, "--window") == 0)
            o.window = (int)strtol(v, NULL, 10);
        else if (strcmp(k, "--node-prefix") == 0)
            o.node_prefix = v;
        else if (strcmp(k, "--signing-key") == 0)
            o.signing_key = v;
        else if (strcmp(k, "--action") == 0)
            o.action = v;
        else if (strcmp(k, "--expect") == 0)
            o.expect = (int)strtol(v, NULL, 10);
        else if (strcmp(k, "--interval-ms") == 0)
            o.interval_ms = (int)strtol(v, NULL, 10);
        else if (strcmp(k, "--ids-file") == 0)
            o.ids_file = v;
        else if (strcmp(k, "--stop-file") == 0)
            o.stop_file = v;
        else if (strcmp(k, "--enroll-seconds") == 0)
            o.enroll_seconds = (int)strtol(v, NULL, 10);
        else if (strcmp(k, "--ramp") == 0)
            o.ramp = (int)strtol(v, NULL, 10);
        else if (strcmp(k, "--protocol-version") == 0)
            protocol_version = (uint32_t)strtoul(v, NULL, 10);
        else
            usage();
    }
    if (i != argc || !o.server_key || !vg_key_z85_valid(o.server_key) || o.agents < 1 ||
        o.signals_per_message < 1 || o.window < 1 || o.interval_ms < 1 || o.enroll_seconds < 1)
        usage();
    if (o.secret_file &&
        vg_secret_file_read(o.secret_file, &secret, &secret_len, err, sizeof(err)) < 0)
        die(err);

    /* Thousands of connections: lift the descriptor and socket limits. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    void *ctx = zmq_ctx_new();
    zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, o.agents + 64);
    zmq_ctx_set(ctx, ZMQ_IO_THREADS, 1);
    int r = kind                            ? run_bad(ctx, &o, kind)
            : strcmp(mode, "commands") == 0 ? run_commands(ctx, &o)
            : strcmp(mode, "steady") == 0   ? run_steady(ctx, &o)
                                            : run_ingest(ctx, &o);
    zmq_ctx_term(ctx);
    free(secret);
    return r;
}
