/*
 * coordinator/ingest: the router (router.c) with the ZAP handler (zap.c) and the registry
 * (registry.c), over real sockets. The router's CURVE ROUTER is bound in one zmq context, the
 * ZAP handler answers in this test's own loop (the two sockets coordinator/main.c polls), the
 * store is the private PostgreSQL of pg_fixture.h, and each agent is a plain CURVE DEALER with a
 * key pair of its own that speaks the wire protocol by hand. A test asserts what an agent or an
 * operator sees: the Ack or Refusal the agent gets back (code, seq, reason), the rows stored,
 * the refusal counted in vigil_messages_refused_total.
 *
 * The endpoints are ipc:// in a private directory, not inproc://: libzmq runs no security
 * mechanism on inproc connections (no CURVE handshake, no ZAP request, no User-Id on received
 * messages), so over inproc the router would see every agent as unauthenticated. ipc:// runs
 * the whole ZMTP handshake and needs no TCP port.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "pg_fixture.h"
#include "registry.h"
#include "router.h"
#include "store.h"
#include "timeutil.h"
#include "token.h"
#include "wire.h"
#include "zap.h"

#define ENROLL_SECRET "router-test-enrollment-secret"
#define REPLY_TIMEOUT_MS 5000 /* a reply that takes longer is a failure */
#define QUIET_MS 150          /* how long "nothing more arrives" is watched */
#define MAX_AGENTS 4

/* An agent as the router sees it: a key pair and a DEALER. */
struct fake_agent {
    struct vg_keypair keys;
    char id[VG_AGENT_ID_LEN + 1];
    char node[64];
    void *socket;
    void *monitor; /* handshake events, when asked for */
};

struct seq_range {
    uint64_t first, last;
};

/* The ipc:// endpoints' directory (apart from t: snprintf must not read what it writes into). */
static char sock_dir[64];

static struct {
    struct pg_fixture pg;
    int serial; /* one endpoint and monitor per use, never reused */
    void *ctx;
    registry_t *registry;
    zap_t *zap;
    router_t *router;
    struct vg_keypair server;
    char endpoint[128];
    struct fake_agent agents[MAX_AGENTS];
    size_t nagents;
    size_t observed_batches; /* router_observer.signals calls */
    char observed_node[64];
    int receive_queue_messages; /* router_config's; 0 = the coordinator's default */
} t;

/* ---- the store and the metrics, as an operator would look ---- */

static long count_rows(const char *table, const char *agent_id, uint64_t seq)
{
    char sql[160], seq_text[32];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM %s WHERE agent_id = $1 AND ($2::bigint = 0 OR seq = $2)", table);
    snprintf(seq_text, sizeof(seq_text), "%" PRIu64, seq);
    const char *params[] = {agent_id, seq_text};
    PGresult *res = PQexecParams(t.pg.check, sql, 2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(t.pg.check));
    long n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return n;
}

/* Messages stored for agent_id (seq 0: every seq), and their samples. */
static long stored_messages(const char *agent_id, uint64_t seq)
{
    return count_rows("agent_messages", agent_id, seq);
}

static long stored_signals(const char *agent_id, uint64_t seq)
{
    return count_rows("signals", agent_id, seq);
}

/* The agents row's state, "" when there is no row. */
static void stored_state(const char *agent_id, char *out, size_t len)
{
    const char *params[] = {agent_id};
    PGresult *res = PQexecParams(t.pg.check, "SELECT state FROM agents WHERE id = $1", 1, NULL,
                                 params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("agents: %s", PQerrorMessage(t.pg.check));
    snprintf(out, len, "%s", PQntuples(res) ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
}

/* The value of one series in /metrics, e.g. vigil_messages_refused_total{reason="version"}. */
static uint64_t metric(const char *series)
{
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(metrics_render(&text, &len), 0);
    size_t n = strlen(series);
    uint64_t value = 0;
    bool found = false;
    const char *line = text;
    while (line && *line && !found) {
        if (strncmp(line, series, n) == 0 && line[n] == ' ') {
            value = strtoull(line + n + 1, NULL, 10);
            found = true;
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    free(text);
    if (!found)
        fail_msg("no series %s in /metrics", series);
    return value;
}

static uint64_t refused(const char *reason)
{
    char series[96];
    snprintf(series, sizeof(series), "vigil_messages_refused_total{reason=\"%s\"}", reason);
    return metric(series);
}

/* ---- the coordinator's loop ---- */

/*
 * Serves ZAP and the router as coordinator/main.c does, until socket (an agent's DEALER or
 * monitor) has something to read: true, or false after timeout_ms.
 */
static bool serve_until_readable(void *socket, int64_t timeout_ms)
{
    int64_t deadline = vg_mono_ms() + timeout_ms;
    for (;;) {
        zmq_pollitem_t items[] = {
            {socket, 0, ZMQ_POLLIN, 0},
            {zap_socket(t.zap), 0, ZMQ_POLLIN, 0},
            {router_socket(t.router), 0, ZMQ_POLLIN, 0},
        };
        int64_t left = deadline - vg_mono_ms();
        if (zmq_poll(items, 3,
                     left <= 0   ? 0
                     : left > 50 ? 50
                                 : (long)left) < 0 &&
            zmq_errno() != EINTR)
            fail_msg("zmq_poll: %s", zmq_strerror(zmq_errno()));
        if (items[0].revents & ZMQ_POLLIN)
            return true;
        if (items[1].revents & ZMQ_POLLIN)
            zap_handle(t.zap);
        if (items[2].revents & ZMQ_POLLIN)
            router_handle(t.router);
        if (left <= 0)
            return false;
    }
}

/* The next message the coordinator sends a, decoded; NULL when none came within timeout_ms. */
static Vigil__Envelope *await_reply(struct fake_agent *a, int64_t timeout_ms)
{
    if (!serve_until_readable(a->socket, timeout_ms))
        return NULL;
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    assert_true(zmq_msg_recv(&msg, a->socket, 0) >= 0);
    assert_false(zmq_msg_more(&msg)); /* one frame per message */
    Vigil__Envelope *env = NULL;
    const char *why = NULL;
    enum vg_decode_error e = vg_envelope_decode(zmq_msg_data(&msg), zmq_msg_size(&msg), &env, &why);
    zmq_msg_close(&msg);
    if (e != VG_DECODE_OK)
        fail_msg("agent %s: undecodable reply: %s", a->id, why ? why : "?");
    assert_string_equal(env->sender, "coordinator");
    return env;
}

static const char *describe(const Vigil__Envelope *env, char *buf, size_t len)
{
    switch (env->body_case) {
    case VIGIL__ENVELOPE__BODY_REFUSAL:
        snprintf(buf, len, "Refusal{code=%d seq=%" PRIu64 " reason=\"%s\"}", env->refusal->code,
                 env->refusal->seq, env->refusal->reason);
        break;
    case VIGIL__ENVELOPE__BODY_ACK: {
        int n = snprintf(buf, len, "Ack{");
        for (size_t i = 0; i < env->ack->n_ranges && n > 0 && (size_t)n < len; i++)
            n += snprintf(buf + n, len - (size_t)n, " %" PRIu64 "-%" PRIu64,
                          env->ack->ranges[i]->first, env->ack->ranges[i]->last);
        if (n > 0 && (size_t)n < len)
            snprintf(buf + n, len - (size_t)n, " }");
        break;
    }
    case VIGIL__ENVELOPE__BODY_ENROLL_REPLY:
        snprintf(buf, len, "EnrollReply{state=%d}", env->enroll_reply->state);
        break;
    default:
        snprintf(buf, len, "body %d", env->body_case);
        break;
    }
    return buf;
}

static Vigil__Envelope *expect_body(struct fake_agent *a, Vigil__Envelope__BodyCase body)
{
    char what[256];
    Vigil__Envelope *env = await_reply(a, REPLY_TIMEOUT_MS);
    if (!env)
        fail_msg("agent %s: no reply within %d ms", a->id, REPLY_TIMEOUT_MS);
    if (env->body_case != body) {
        describe(env, what, sizeof(what));
        vg_envelope_free(env);
        fail_msg("agent %s: expected body %d, got %s", a->id, body, what);
    }
    return env;
}

/* The next reply is a Refusal with this code and seq whose reason contains reason_part. */
static void expect_refusal(struct fake_agent *a, Vigil__RefusalCode code, uint64_t seq,
                           const char *reason_part)
{
    char what[256];
    Vigil__Envelope *env = expect_body(a, VIGIL__ENVELOPE__BODY_REFUSAL);
    describe(env, what, sizeof(what));
    if (env->refusal->code != code || env->refusal->seq != seq ||
        !strstr(env->refusal->reason, reason_part)) {
        vg_envelope_free(env);
        fail_msg("agent %s: expected Refusal{code=%d seq=%" PRIu64 " reason~\"%s\"}, got %s", a->id,
                 code, seq, reason_part, what);
    }
    vg_envelope_free(env);
}

/* The next reply is one Ack with exactly these ranges, in this order. */
static void expect_ack(struct fake_agent *a, const struct seq_range *ranges, size_t n)
{
    char what[256];
    Vigil__Envelope *env = expect_body(a, VIGIL__ENVELOPE__BODY_ACK);
    describe(env, what, sizeof(what));
    bool same = env->ack->n_ranges == n;
    for (size_t i = 0; same && i < n; i++)
        same = env->ack->ranges[i]->first == ranges[i].first &&
               env->ack->ranges[i]->last == ranges[i].last;
    vg_envelope_free(env);
    if (!same)
        fail_msg("agent %s: unexpected %s (%zu ranges expected, the first %" PRIu64 "-%" PRIu64 ")",
                 a->id, what, n, ranges[0].first, ranges[0].last);
}

/* Nothing more arrives for a while the coordinator keeps serving. */
static void expect_quiet(struct fake_agent *a)
{
    char what[256];
    Vigil__Envelope *env = await_reply(a, QUIET_MS);
    if (env) {
        describe(env, what, sizeof(what));
        vg_envelope_free(env);
        fail_msg("agent %s: unexpected %s", a->id, what);
    }
}

/* ---- a fake agent ---- */

static void agent_connect(struct fake_agent *a)
{
    int zero = 0;
    a->socket = zmq_socket(t.ctx, ZMQ_DEALER);
    assert_non_null(a->socket);
    assert_int_equal(zmq_setsockopt(a->socket, ZMQ_LINGER, &zero, sizeof(zero)), 0);
    assert_int_equal(
        vg_zmq_curve_client(a->socket, a->keys.public_key, a->keys.secret_key, t.server.public_key),
        0);
    assert_int_equal(zmq_connect(a->socket, t.endpoint), 0);
}

/* A new agent (fresh key pair), connecting. Closed by the teardown. */
static struct fake_agent *agent_new(void)
{
    assert_true(t.nagents < MAX_AGENTS);
    struct fake_agent *a = &t.agents[t.nagents++];
    memset(a, 0, sizeof(*a));
    assert_int_equal(vg_keypair_generate(&a->keys), 0);
    vg_agent_id_from_key(a->keys.public_key, a->id);
    char node[sizeof(a->node)]; /* a node name is bound to one key: one name per agent */
    snprintf(node, sizeof(node), "node-%s", a->id);
    memcpy(a->node, node, sizeof(node));
    agent_connect(a);
    return a;
}

/* A second connection with a's key pair. */
static struct fake_agent *agent_same_key(const struct fake_agent *a)
{
    assert_true(t.nagents < MAX_AGENTS);
    struct fake_agent *b = &t.agents[t.nagents++];
    memset(b, 0, sizeof(*b));
    b->keys = a->keys;
    memcpy(b->id, a->id, sizeof(b->id));
    memcpy(b->node, a->node, sizeof(b->node));
    return b;
}

static void agent_close(struct fake_agent *a)
{
    if (a->monitor) {
        zmq_socket_monitor(a->socket, NULL, 0);
        zmq_close(a->monitor);
        a->monitor = NULL;
    }
    if (a->socket) {
        zmq_close(a->socket);
        a->socket = NULL;
    }
}

/*
 * A new connection. What is sent before the loop runs again waits in the connection's queue
 * until the handshake (and ZAP) is done, then crosses in one write: the router takes it as one
 * batch, as it does the spool an agent resends after a reconnect.
 */
static void agent_reconnect(struct fake_agent *a)
{
    agent_close(a);
    agent_connect(a);
}

static void send_envelope(struct fake_agent *a, const Vigil__Envelope *env)
{
    uint8_t *buf;
    size_t len;
    assert_int_equal(vg_envelope_encode(env, &buf, &len), 0);
    assert_int_equal(zmq_send(a->socket, buf, len, 0), (int)len);
    free(buf);
}

static void send_enroll(struct fake_agent *a, bool with_token)
{
    Vigil__Enroll enroll = VIGIL__ENROLL__INIT;
    Vigil__Envelope env;
    uint8_t token[VG_TOKEN_LEN];

    enroll.node = a->node;
    enroll.agent_version = "test";
    if (with_token) {
        assert_int_equal(
            vg_token_compute(ENROLL_SECRET, strlen(ENROLL_SECRET), a->keys.public_key, token), 0);
        enroll.token.data = token;
        enroll.token.len = sizeof(token);
    }
    vg_envelope_init(&env, a->id, 0);
    env.body_case = VIGIL__ENVELOPE__BODY_ENROLL;
    env.enroll = &enroll;
    send_envelope(a, &env);
}

/* Enrolls with a valid bootstrap token: active at once. */
static void enroll_active(struct fake_agent *a)
{
    send_enroll(a, true);
    Vigil__Envelope *env = expect_body(a, VIGIL__ENVELOPE__BODY_ENROLL_REPLY);
    assert_int_equal(env->enroll_reply->state, VIGIL__AGENT_STATE__AGENT_STATE_ACTIVE);
    assert_string_equal(env->enroll_reply->agent_id, a->id);
    vg_envelope_free(env);
}

/* Encodes a SignalBatch of nsignals samples named name, stamped with version and sender. */
static void encode_signals(const char *sender, uint64_t seq, size_t nsignals, const char *name,
                           uint32_t version, uint8_t **ret_buf, size_t *ret_len)
{
    Vigil__Signal signals[8];
    Vigil__Signal *list[8];
    Vigil__SignalBatch batch = VIGIL__SIGNAL_BATCH__INIT;
    Vigil__Envelope env;

    assert_true(nsignals <= 8);
    for (size_t i = 0; i < nsignals; i++) {
        vigil__signal__init(&signals[i]);
        signals[i].name = (char *)name;
        signals[i].value = (double)(seq * 10 + i);
        signals[i].unit = "";
        signals[i].ts_ms = vg_wall_ms();
        list[i] = &signals[i];
    }
    batch.signals = list;
    batch.n_signals = nsignals;
    vg_envelope_init(&env, sender, seq);
    env.version = version;
    env.body_case = VIGIL__ENVELOPE__BODY_SIGNALS;
    env.signals = &batch;
    assert_int_equal(vg_envelope_encode(&env, ret_buf, ret_len), 0);
}

static void send_signals_as(struct fake_agent *a, const char *sender, uint64_t seq, size_t nsignals,
                            const char *name, uint32_t version)
{
    uint8_t *buf;
    size_t len;
    encode_signals(sender, seq, nsignals, name, version, &buf, &len);
    assert_int_equal(zmq_send(a->socket, buf, len, 0), (int)len);
    free(buf);
}

static void send_signals(struct fake_agent *a, uint64_t seq, size_t nsignals)
{
    send_signals_as(a, a->id, seq, nsignals, "test.value", VG_PROTOCOL_VERSION);
}

/* ---- fixture ---- */

static void observe_signals(void *userdata, const char *node, const Vigil__SignalBatch *batch)
{
    (void)userdata;
    (void)batch;
    t.observed_batches++;
    snprintf(t.observed_node, sizeof(t.observed_node), "%s", node);
}

static int router_setup(void **state)
{
    (void)state;
    char err[256] = "";

    t.nagents = 0;
    t.observed_batches = 0;
    t.observed_node[0] = '\0';
    t.ctx = zmq_ctx_new();
    t.registry = registry_new();
    if (!t.ctx || !t.registry || registry_load(t.registry, t.pg.store) < 0)
        return -1;
    /* Before the ROUTER binds: a CURVE server socket finds its handler at bind time. */
    t.zap = zap_new(t.ctx, t.registry, err, sizeof(err));
    if (!t.zap || vg_keypair_generate(&t.server) < 0) {
        fprintf(stderr, "zap: %s\n", err);
        return -1;
    }
    snprintf(t.endpoint, sizeof(t.endpoint), "ipc://%s/agents-%d", sock_dir, t.serial++);
    struct router_config cfg = {
        .endpoint = t.endpoint,
        .server_keys = &t.server,
        .heartbeat_interval_ms = 5000,
        .missed_heartbeats = 3,
        .enroll_secret = ENROLL_SECRET,
        .enroll_secret_len = strlen(ENROLL_SECRET),
        .enroll_rate_per_minute = 0,
        .pending_max = 1000,
        .max_series_per_agent = 0,
        .pending_ttl_ms = 7LL * 24 * 3600 * 1000,
        .incomplete_evidence_grace_ms = 600000,
        .observer = {.signals = observe_signals},
        .receive_queue_messages = t.receive_queue_messages,
    };
    t.router = router_new(t.ctx, &cfg, t.registry, t.pg.store, err, sizeof(err));
    if (!t.router) {
        fprintf(stderr, "router_new: %s\n", err);
        return -1;
    }
    return 0;
}

/* Tests of what happens within one batch (acknowledgements folded, a duplicate or a bad record
 * among good ones) send several messages before the router runs and expect them in one batch:
 * the coordinator's default queue (2 per connection) would split them. */
static int router_setup_deep_queue(void **state)
{
    t.receive_queue_messages = 16;
    return router_setup(state);
}

static int router_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < t.nagents; i++)
        agent_close(&t.agents[i]);
    t.nagents = 0;
    router_destroy(&t.router);
    t.receive_queue_messages = 0;
    zap_destroy(&t.zap);
    if (t.ctx)
        zmq_ctx_term(t.ctx);
    t.ctx = NULL;
    registry_destroy(&t.registry);
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    metrics_init();
    snprintf(sock_dir, sizeof(sock_dir), "/tmp/vigil-router-sock-XXXXXX");
    if (!mkdtemp(sock_dir)) {
        sock_dir[0] = '\0';
        return -1;
    }
    return pg_fixture_start(&t.pg, "/tmp/vigil-router-XXXXXX");
}

static int group_teardown(void **state)
{
    (void)state;
    pg_fixture_stop(&t.pg);
    if (sock_dir[0])
        pg_fixture_rmtree(sock_dir);
    metrics_fini();
    return 0;
}

/* ---- acknowledgement ---- */

/* Signal batches received together are committed together and answered with one Ack, their
 * seqs folded into ranges: 1, 2, 3 and 5 are acknowledged as 1-3 and 5-5 (4 never came). The
 * Ack comes after the commit: every acknowledged batch is in the store, and only then does the
 * rule engine hear about it. */
static void test_ack_folds_batches_into_ranges(void **state)
{
    (void)state;
    struct fake_agent *a = agent_new();
    enroll_active(a);

    agent_reconnect(a);
    send_signals(a, 1, 2);
    send_signals(a, 2, 2);
    send_signals(a, 3, 2);
    send_signals(a, 5, 2);
    expect_ack(a, (const struct seq_range[]){{1, 3}, {5, 5}}, 2);
    expect_quiet(a); /* one Ack for the four, not one each */

    assert_int_equal(stored_messages(a->id, 0), 4);
    assert_int_equal(stored_signals(a->id, 0), 8);
    assert_int_equal(stored_messages(a->id, 4), 0);
    assert_int_equal(t.observed_batches, 4);
    assert_string_equal(t.observed_node, a->node);

    /* The next batch alone gets an Ack of its own. */
    send_signals(a, 4, 1);
    expect_ack(a, (const struct seq_range[]){{4, 4}}, 1);
    assert_int_equal(stored_messages(a->id, 0), 5);
}

/* An agent that did not hear its Ack resends: the record is acknowledged again and stored once,
 * whether the copy comes in a later batch or twice in the same one. */
static void test_duplicates_stored_once(void **state)
{
    (void)state;
    struct fake_agent *a = agent_new();
    enroll_active(a);

    send_signals(a, 1, 3);
    expect_ack(a, (const struct seq_range[]){{1, 1}}, 1);
    uint64_t stored_before = metric("vigil_stored_messages_total");
    uint64_t signals_before = metric("vigil_stored_signals_total");
    size_t observed_before = t.observed_batches;

    send_signals(a, 1, 3);
    expect_ack(a, (const struct seq_range[]){{1, 1}}, 1);
    assert_int_equal(stored_messages(a->id, 1), 1);
    assert_int_equal(stored_signals(a->id, 1), 3);
    assert_int_equal(metric("vigil_stored_messages_total"), stored_before); /* nothing new */
    /* A resend is not news: neither counted nor shown to the rule engine again. */
    assert_int_equal(metric("vigil_stored_signals_total"), signals_before);
    assert_int_equal(t.observed_batches, observed_before);

    agent_reconnect(a);
    send_signals(a, 2, 3);
    send_signals(a, 2, 3);
    send_signals(a, 3, 3);
    expect_ack(a, (const struct seq_range[]){{2, 3}}, 1);
    expect_quiet(a);
    assert_int_equal(stored_messages(a->id, 2), 1);
    assert_int_equal(stored_signals(a->id, 2), 3);
    assert_int_equal(stored_messages(a->id, 0), 3);
    assert_int_equal(stored_signals(a->id, 0), 9);
    assert_int_equal(metric("vigil_stored_messages_total"), stored_before + 2);
}

/* With the coordinator's shallow receive queue, an agent's whole window sent at once (more than
 * one batch holds) waits in the connection, not in memory, and is stored and acknowledged
 * exactly once, every seq. */
static void test_full_window_through_shallow_queue(void **state)
{
    (void)state;
    enum { WINDOW = 300 };
    struct fake_agent *a = agent_new();
    enroll_active(a);

    for (uint64_t seq = 1; seq <= WINDOW; seq++)
        send_signals(a, seq, 1);
    static unsigned acked[WINDOW + 1];
    memset(acked, 0, sizeof(acked));
    size_t covered = 0;
    while (covered < WINDOW) {
        Vigil__Envelope *env = expect_body(a, VIGIL__ENVELOPE__BODY_ACK);
        for (size_t i = 0; i < env->ack->n_ranges; i++) {
            const Vigil__SeqRange *r = env->ack->ranges[i];
            assert_true(r->first >= 1 && r->first <= r->last && r->last <= WINDOW);
            for (uint64_t seq = r->first; seq <= r->last; seq++)
                if (acked[seq]++ == 0)
                    covered++;
        }
        vg_envelope_free(env);
    }
    expect_quiet(a);
    for (uint64_t seq = 1; seq <= WINDOW; seq++)
        assert_int_equal(acked[seq], 1); /* each acknowledged once: nothing resent, none twice */
    assert_int_equal(stored_messages(a->id, 0), WINDOW);
    assert_int_equal(stored_signals(a->id, 0), WINDOW);
}

/* Runs sql on the test's own connection. */
static void exec_sql(const char *sql)
{
    PGresult *res = PQexec(t.pg.check, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(t.pg.check));
    PQclear(res);
}

/* An Ack means "committed": a batch the store could not commit is not acknowledged (the agent
 * keeps it and resends), and the resent copy is stored and acknowledged once the store takes
 * it again. The store's failure is a trigger refusing this agent's rows. */
static void test_no_ack_without_commit(void **state)
{
    (void)state;
    char sql[512];
    uint64_t before = refused("store_error");
    struct fake_agent *a = agent_new();
    enroll_active(a);

    exec_sql("CREATE OR REPLACE FUNCTION test_router_refuse() RETURNS trigger LANGUAGE plpgsql "
             "AS $$ BEGIN RAISE EXCEPTION 'test_router: the store refuses'; END $$");
    snprintf(sql, sizeof(sql),
             "CREATE TRIGGER test_router_refuse BEFORE INSERT ON agent_messages FOR EACH ROW "
             "WHEN (NEW.agent_id = '%s') EXECUTE FUNCTION test_router_refuse()",
             a->id);
    exec_sql(sql);
    send_signals(a, 1, 2);
    struct fake_agent *other = agent_new(); /* the router is still serving */
    enroll_active(other);
    expect_quiet(a);
    exec_sql("DROP TRIGGER test_router_refuse ON agent_messages");
    assert_int_equal(refused("store_error"), before + 1);
    assert_int_equal(stored_messages(a->id, 0), 0);

    send_signals(a, 1, 2);
    expect_ack(a, (const struct seq_range[]){{1, 1}}, 1);
    assert_int_equal(stored_messages(a->id, 1), 1);
    assert_int_equal(stored_signals(a->id, 1), 2);
}

/* ---- refusals ---- */

/* A key ZAP let in but that never enrolled may only enroll: its batch is refused with its seq
 * (the agent keeps it, enrolls and resends), its heartbeat too, and nothing about it is stored. */
static void test_unknown_key_may_only_enroll(void **state)
{
    (void)state;
    char st[16];
    uint64_t before = refused("not_enrolled");
    struct fake_agent *a = agent_new();

    send_signals(a, 1, 1);
    expect_refusal(a, VIGIL__REFUSAL_CODE__REFUSAL_NOT_ENROLLED, 1, "unknown agent: enroll first");

    Vigil__Heartbeat hb = VIGIL__HEARTBEAT__INIT;
    Vigil__Envelope env;
    hb.agent_version = "test";
    vg_envelope_init(&env, a->id, 0);
    env.body_case = VIGIL__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    send_envelope(a, &env);
    expect_refusal(a, VIGIL__REFUSAL_CODE__REFUSAL_NOT_ENROLLED, 0, "unknown agent: enroll first");

    assert_int_equal(refused("not_enrolled"), before + 2);
    assert_int_equal(stored_messages(a->id, 0), 0);
    stored_state(a->id, st, sizeof(st));
    assert_string_equal(st, "");
    assert_null(registry_agent(t.registry, a->id));

    /* Enrolling is what it may do; with a valid token it may then send. */
    enroll_active(a);
    send_signals(a, 1, 1);
    expect_ack(a, (const struct seq_range[]){{1, 1}}, 1);
}

/* An agent that enrolled without a token waits for an operator: it is told so, stored as
 * pending, and its batches are refused (kept by the agent) until it is approved. */
static void test_pending_agent_refused_until_approved(void **state)
{
    (void)state;
    char st[16];
    struct fake_agent *a = agent_new();

    send_enroll(a, false);
    Vigil__Envelope *env = expect_body(a, VIGIL__ENVELOPE__BODY_ENROLL_REPLY);
    assert_int_equal(env->enroll_reply->state, VIGIL__AGENT_STATE__AGENT_STATE_PENDING);
    assert_string_equal(env->enroll_reply->agent_id, a->id);
    vg_envelope_free(env);
    stored_state(a->id, st, sizeof(st));
    assert_string_equal(st, "pending");

    send_signals(a, 1, 1);
    expect_refusal(a, VIGIL__REFUSAL_CODE__REFUSAL_NOT_ENROLLED, 1, "agent is pending approval");
    assert_int_equal(stored_messages(a->id, 0), 0);

    /* Approval as admin/agents.c makes it: the store first, then the registry. */
    assert_int_equal(store_agent_set_state(t.pg.store, a->id,
                                           VIGIL__AGENT_STATE__AGENT_STATE_ACTIVE, vg_wall_ms(),
                                           "test", "approved by test"),
                     0);
    registry_agent(t.registry, a->id)->state = VIGIL__AGENT_STATE__AGENT_STATE_ACTIVE;
    send_signals(a, 1, 1);
    expect_ack(a, (const struct seq_range[]){{1, 1}}, 1);
    assert_int_equal(stored_messages(a->id, 1), 1);
}

/* Bytes that are no envelope are refused as invalid: with seq 0 when none can be read, with the
 * seq read from the bytes when the record is cut short (the agent discards that record), and a
 * message of two frames is refused whole. None of it is stored, and the connection still
 * carries the agent's next batch. */
static void test_malformed_envelope_refused(void **state)
{
    (void)state;
    uint64_t before = refused("malformed");
    struct fake_agent *a = agent_new();
    enroll_active(a);

    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(zmq_send(a->socket, garbage, sizeof(garbage), 0), (int)sizeof(garbage));
    expect_refusal(a, VIGIL__REFUSAL_CODE__REFUSAL_INVALID, 0, "not a valid protobuf envelope");

    uint8_t *buf;
    size_t len;
    encode_signals(a->id, 7, 2, "test.value", VG_PROTOCOL_VERSION, &buf, &len);
    assert_int_equal(zmq_send(a->socket, buf, len - 3, 0), (int)(len - 3));
    expect_refusal(a, VIGIL__REFUSAL_CODE__REFUSAL_INVALID, 7, "not a valid protobuf envelope");

    assert_int_equal(zmq_send(a->socket, buf, len, ZMQ_SNDMORE), (int)len);
    assert_int_equal(zmq_send(a->socket, buf, len, 0), (int)len);
    expect_refusal(a, VIGIL__REFUSAL_CODE__REFUSAL_INVALID, 0, "exactly one frame");
    free(buf);

    assert_int_equal(refused("malformed"), before + 3);
    assert_int_equal(stored_messages(a->id, 0), 0);

    send_signals(a, 1, 1);
    expect_ack(a, (const struct seq_range[]){{1, 1}}, 1);
}

/* A protocol version more than one away is refused with REFUSAL_VERSION and a reason naming the
 * window; one version ahead (a rolling upgrade, agents first) is stored. */
static void test_wrong_version_refused(void **state)
{
    (void)state;
    uint64_t before = refused("version");
    struct fake_agent *a = agent_new();
    enroll_active(a);

    char window[128];
    snprintf(window, sizeof(window),
             "protocol version too new, more than one ahead (this side speaks %d and accepts %d "
             "to %d)",
             VG_PROTOCOL_VERSION, VG_PROTOCOL_VERSION_MIN, VG_PROTOCOL_VERSION_MAX);
    send_signals_as(a, a->id, 1, 1, "test.value", VG_PROTOCOL_VERSION_MAX + 1);
    expect_refusal(a, VIGIL__REFUSAL_CODE__REFUSAL_VERSION, 0, window);
    send_signals_as(a, a->id, 1, 1, "test.value", 0);
    expect_refusal(a, VIGIL__REFUSAL_CODE__REFUSAL_VERSION, 0, "no protocol version");
    assert_int_equal(refused("version"), before + 2);
    assert_int_equal(stored_messages(a->id, 0), 0);

    send_signals_as(a, a->id, 1, 1, "test.value", VG_PROTOCOL_VERSION_MAX);
    expect_ack(a, (const struct seq_range[]){{1, 1}}, 1);
    assert_int_equal(stored_messages(a->id, 1), 1);
}

/* An envelope that claims another agent's id is refused; nothing is stored under either id. */
static void test_forged_sender_refused(void **state)
{
    (void)state;
    uint64_t before = refused("sender_mismatch");
    struct fake_agent *a = agent_new();
    struct fake_agent *victim = agent_new();
    enroll_active(a);
    enroll_active(victim);

    send_signals_as(a, victim->id, 1, 1, "test.value", VG_PROTOCOL_VERSION);
    expect_refusal(a, VIGIL__REFUSAL_CODE__REFUSAL_INVALID, 1,
                   "sender id does not match the authenticated key");
    assert_int_equal(refused("sender_mismatch"), before + 1);
    assert_int_equal(stored_messages(victim->id, 0), 0);
    assert_int_equal(stored_messages(a->id, 0), 0);
}

/* One record the store would refuse (a signal name that is not UTF-8) is refused to its agent
 * with its seq, to be discarded; the rest of its batch is stored and acknowledged. It used to
 * be able to fail every agent's transaction. */
static void test_invalid_record_refused_rest_stored(void **state)
{
    (void)state;
    uint64_t before = refused("invalid_record");
    struct fake_agent *a = agent_new();
    enroll_active(a);

    agent_reconnect(a);
    send_signals(a, 1, 2);
    send_signals_as(a, a->id, 2, 2, "test.\xff\xfe", VG_PROTOCOL_VERSION);
    send_signals(a, 3, 2);
    expect_refusal(a, VIGIL__REFUSAL_CODE__REFUSAL_INVALID, 2,
                   "record not stored, discard it: a signal name or unit is not valid UTF-8");
    expect_ack(a, (const struct seq_range[]){{1, 1}, {3, 3}}, 2);
    expect_quiet(a);

    assert_int_equal(refused("invalid_record"), before + 1);
    assert_int_equal(stored_messages(a->id, 1), 1);
    assert_int_equal(stored_messages(a->id, 2), 0);
    assert_int_equal(stored_messages(a->id, 3), 1);
    assert_int_equal(stored_signals(a->id, 0), 4);
}

/* ---- revocation ---- */

/* Waits for a's handshake to end, returning the monitor's event and its value. */
static uint16_t await_handshake(struct fake_agent *a, uint32_t *ret_value)
{
    for (;;) {
        if (!serve_until_readable(a->monitor, REPLY_TIMEOUT_MS))
            fail_msg("agent %s: no handshake outcome within %d ms", a->id, REPLY_TIMEOUT_MS);
        zmq_msg_t frame;
        uint16_t event = 0;
        uint32_t value = 0;
        zmq_msg_init(&frame);
        assert_true(zmq_msg_recv(&frame, a->monitor, 0) >= 6);
        memcpy(&event, zmq_msg_data(&frame), sizeof(event));
        memcpy(&value, (const uint8_t *)zmq_msg_data(&frame) + 2, sizeof(value));
        zmq_msg_close(&frame);
        zmq_msg_init(&frame);
        assert_true(zmq_msg_recv(&frame, a->monitor, 0) >= 0); /* the endpoint */
        zmq_msg_close(&frame);
        if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED || event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH ||
            event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
            event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
            *ret_value = value;
            return event;
        }
    }
}

/* A revoked agent's next message on the connection it already has is refused (ZAP ran only at
 * the handshake), re-enrolling with a valid token does not bring it back, and a new connection
 * with its key is refused by ZAP. What it stored before stays. */
static void test_revoked_agent_refused(void **state)
{
    (void)state;
    char st[16];
    uint64_t before = refused("revoked");
    struct fake_agent *a = agent_new();
    enroll_active(a);
    send_signals(a, 1, 1);
    expect_ack(a, (const struct seq_range[]){{1, 1}}, 1);

    /* Revocation as admin/agents.c makes it: the store first, then the registry. */
    assert_int_equal(store_agent_set_state(t.pg.store, a->id,
                                           VIGIL__AGENT_STATE__AGENT_STATE_REVOKED, vg_wall_ms(),
                                           "test", "revoked by test"),
                     0);
    registry_agent(t.registry, a->id)->state = VIGIL__AGENT_STATE__AGENT_STATE_REVOKED;

    send_signals(a, 2, 1);
    expect_refusal(a, VIGIL__REFUSAL_CODE__REFUSAL_REVOKED, 0, "this agent's key is revoked");
    send_enroll(a, true);
    expect_refusal(a, VIGIL__REFUSAL_CODE__REFUSAL_REVOKED, 0, "this agent's key is revoked");
    assert_int_equal(stored_messages(a->id, 2), 0);
    assert_int_equal(stored_messages(a->id, 1), 1);
    stored_state(a->id, st, sizeof(st));
    assert_string_equal(st, "revoked");

    struct fake_agent *again = agent_same_key(a);
    char monitor_endpoint[64];
    snprintf(monitor_endpoint, sizeof(monitor_endpoint), "inproc://test-router-monitor-%d",
             t.serial++);
    again->socket = zmq_socket(t.ctx, ZMQ_DEALER);
    assert_non_null(again->socket);
    int zero = 0;
    assert_int_equal(zmq_setsockopt(again->socket, ZMQ_LINGER, &zero, sizeof(zero)), 0);
    assert_int_equal(vg_zmq_curve_client(again->socket, again->keys.public_key,
                                         again->keys.secret_key, t.server.public_key),
                     0);
    assert_int_equal(zmq_socket_monitor(again->socket, monitor_endpoint, ZMQ_EVENT_ALL), 0);
    again->monitor = zmq_socket(t.ctx, ZMQ_PAIR);
    assert_non_null(again->monitor);
    assert_int_equal(zmq_connect(again->monitor, monitor_endpoint), 0);
    assert_int_equal(zmq_connect(again->socket, t.endpoint), 0);
    uint32_t status = 0;
    assert_int_equal(await_handshake(again, &status), ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
    assert_int_equal(status, 400);
    assert_int_equal(refused("revoked"), before + 3); /* two messages, one handshake */
}

int main(void)
{
    vg_log_init("test_router", VG_LOG_ERROR, false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ack_folds_batches_into_ranges,
                                        router_setup_deep_queue, router_teardown),
        cmocka_unit_test_setup_teardown(test_duplicates_stored_once, router_setup_deep_queue,
                                        router_teardown),
        cmocka_unit_test_setup_teardown(test_full_window_through_shallow_queue, router_setup,
                                        router_teardown),
        cmocka_unit_test_setup_teardown(test_no_ack_without_commit, router_setup, router_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key_may_only_enroll, router_setup,
                                        router_teardown),
        cmocka_unit_test_setup_teardown(test_pending_agent_refused_until_approved, router_setup,
                                        router_teardown),
        cmocka_unit_test_setup_teardown(test_malformed_envelope_refused, router_setup,
                                        router_teardown),
        cmocka_unit_test_setup_teardown(test_wrong_version_refused, router_setup, router_teardown),
        cmocka_unit_test_setup_teardown(test_forged_sender_refused, router_setup, router_teardown),
        cmocka_unit_test_setup_teardown(test_invalid_record_refused_rest_stored,
                                        router_setup_deep_queue, router_teardown),
        cmocka_unit_test_setup_teardown(test_revoked_agent_refused, router_setup, router_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
