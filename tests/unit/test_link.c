/*
 * agent/link.c with agent/spool.c: delivery of the spool to a coordinator. The coordinator is a
 * plain CURVE ROUTER in this test, in the link's zmq context, that reads what the link sends and
 * answers by hand (EnrollReply, Ack, Refusal); the test runs the agent's loop as agent/main.c
 * does (poll the link's DEALER and monitor, link_handle*, link_tick). A test asserts what the
 * coordinator receives (which seqs, in which order, how many at a time) and what stays in the
 * agent's spool.
 *
 * The endpoint is ipc:// in a private directory, not inproc://: libzmq runs no CURVE handshake
 * on inproc connections, so the link's monitor would never report HANDSHAKE_SUCCEEDED and the
 * link would never consider itself connected. ipc:// runs the whole handshake and needs no TCP
 * port. No ZAP handler runs in this context: the ROUTER admits any CURVE client.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "keys.h"
#include "link.h"
#include "log.h"
#include "spool.h"
#include "timeutil.h"
#include "wire.h"

#define WINDOW 4              /* link.max_inflight in these tests */
#define REPLY_TIMEOUT_MS 5000 /* anything expected that takes longer is a failure */
#define QUIET_MS 100          /* how long "nothing more is sent" is watched */
#define ROUTING_ID_MAX 255

static struct {
    char dir[64]; /* the spool and the ipc endpoint */
    char spool_dir[96];
    char socket_path[96];
    char endpoint[sizeof("ipc://") + 96];
    void *ctx;
    struct vg_keypair server, agent;
    char agent_id[VG_AGENT_ID_LEN + 1];
    spool_t *spool;
    link_t *link;
    void *peer; /* the coordinator: ROUTER, CURVE server */
    uint8_t route[ROUTING_ID_MAX];
    size_t route_len; /* the routing id of the link's connection, once it spoke */
} t;

/* ---- the spool ---- */

/* Appends n signal batches (one sample each) as agent/main.c's flush_batch does. */
static void spool_batches(size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t seq;
        uint8_t *buf;
        size_t len;
        Vigil__Signal signal = VIGIL__SIGNAL__INIT;
        Vigil__Signal *list[] = {&signal};
        Vigil__SignalBatch batch = VIGIL__SIGNAL_BATCH__INIT;
        Vigil__Envelope env;

        assert_int_equal(spool_reserve_seq(t.spool, &seq), 0);
        signal.name = "test.value";
        signal.unit = "";
        signal.value = (double)seq;
        signal.ts_ms = vg_wall_ms();
        batch.signals = list;
        batch.n_signals = 1;
        vg_envelope_init(&env, t.agent_id, seq);
        env.body_case = VIGIL__ENVELOPE__BODY_SIGNALS;
        env.signals = &batch;
        assert_int_equal(vg_envelope_encode(&env, &buf, &len), 0);
        assert_int_equal(spool_append(t.spool, seq, SPOOL_KIND_SIGNALS, 1, buf, len), 0);
        free(buf);
    }
}

static struct spool_stats stats(void)
{
    struct spool_stats st;
    spool_stats(t.spool, &st);
    return st;
}

/* ---- the coordinator's side ---- */

static void peer_bind(void)
{
    int one = 1, zero = 0;
    t.peer = zmq_socket(t.ctx, ZMQ_ROUTER);
    assert_non_null(t.peer);
    assert_int_equal(zmq_setsockopt(t.peer, ZMQ_LINGER, &zero, sizeof(zero)), 0);
    assert_int_equal(zmq_setsockopt(t.peer, ZMQ_ROUTER_MANDATORY, &one, sizeof(one)), 0);
    assert_int_equal(zmq_setsockopt(t.peer, ZMQ_CURVE_SERVER, &one, sizeof(one)), 0);
    assert_int_equal(
        zmq_setsockopt(t.peer, ZMQ_CURVE_SECRETKEY, t.server.secret_key, VG_KEY_Z85_LEN), 0);
    assert_int_equal(zmq_bind(t.peer, t.endpoint), 0);
    t.route_len = 0;
}

/* The coordinator goes away: its socket closes, and the agent's connection with it. (libzmq
 * leaves the socket file; the next bind replaces it.) */
static void peer_close(void)
{
    zmq_close(t.peer);
    t.peer = NULL;
}

/* One turn of the agent's loop (agent/main.c), waiting at most wait_ms; true when the
 * coordinator has a message to read. */
static bool agent_turn(int64_t wait_ms)
{
    zmq_pollitem_t items[] = {
        {link_socket(t.link), 0, ZMQ_POLLIN, 0},
        {link_monitor_socket(t.link), 0, ZMQ_POLLIN, 0},
        {t.peer, 0, ZMQ_POLLIN, 0},
    };
    int n = t.peer ? 3 : 2;
    int64_t wait = link_next_timeout(t.link);
    if (wait_ms < wait)
        wait = wait_ms;
    if (zmq_poll(items, n, wait > 0 ? (long)wait : 0) < 0 && zmq_errno() != EINTR)
        fail_msg("zmq_poll: %s", zmq_strerror(zmq_errno()));
    if (items[1].revents & ZMQ_POLLIN)
        link_handle_monitor(t.link);
    if (items[0].revents & ZMQ_POLLIN)
        link_handle(t.link);
    link_tick(t.link);
    return n == 3 && (items[2].revents & ZMQ_POLLIN);
}

/* The next message the coordinator receives from the link, decoded; NULL after timeout_ms. */
static Vigil__Envelope *peer_receive(int64_t timeout_ms)
{
    int64_t deadline = vg_mono_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - vg_mono_ms();
        if (agent_turn(left > 50 ? 50 : left))
            break;
        if (left <= 0)
            return NULL;
    }
    zmq_msg_t rid, payload;
    zmq_msg_init(&rid);
    zmq_msg_init(&payload);
    assert_true(zmq_msg_recv(&rid, t.peer, 0) >= 0);
    assert_true(zmq_msg_more(&rid));
    assert_true(zmq_msg_recv(&payload, t.peer, 0) >= 0);
    assert_false(zmq_msg_more(&payload)); /* one frame per message */
    assert_true(zmq_msg_size(&rid) <= ROUTING_ID_MAX);
    t.route_len = zmq_msg_size(&rid);
    memcpy(t.route, zmq_msg_data(&rid), t.route_len);
    Vigil__Envelope *env = NULL;
    const char *why = NULL;
    enum vg_decode_error e =
        vg_envelope_decode(zmq_msg_data(&payload), zmq_msg_size(&payload), &env, &why);
    zmq_msg_close(&rid);
    zmq_msg_close(&payload);
    if (e != VG_DECODE_OK)
        fail_msg("the link sent an undecodable message: %s", why ? why : "?");
    assert_string_equal(env->sender, t.agent_id);
    return env;
}

static Vigil__Envelope *peer_expect(Vigil__Envelope__BodyCase body)
{
    Vigil__Envelope *env = peer_receive(REPLY_TIMEOUT_MS);
    if (!env)
        fail_msg("the link sent nothing within %d ms (expected body %d)", REPLY_TIMEOUT_MS, body);
    if (env->body_case != body) {
        int got = env->body_case;
        uint64_t seq = env->seq;
        vg_envelope_free(env);
        fail_msg("expected body %d, the link sent body %d seq=%" PRIu64, body, got, seq);
    }
    return env;
}

static void peer_expect_enroll(void)
{
    Vigil__Envelope *env = peer_expect(VIGIL__ENVELOPE__BODY_ENROLL);
    assert_string_equal(env->enroll->node, "test-node");
    assert_int_equal(env->seq, 0);
    vg_envelope_free(env);
}

/* The link sends the signal batches first..last, in this order. */
static void peer_expect_seqs(uint64_t first, uint64_t last)
{
    for (uint64_t seq = first; seq <= last; seq++) {
        Vigil__Envelope *env = peer_expect(VIGIL__ENVELOPE__BODY_SIGNALS);
        uint64_t got = env->seq;
        vg_envelope_free(env);
        if (got != seq)
            fail_msg("expected seq %" PRIu64 ", the link sent seq %" PRIu64, seq, got);
    }
}

/* The link sends nothing more for a while, its loop running. */
static void peer_expect_quiet(void)
{
    Vigil__Envelope *env = peer_receive(QUIET_MS);
    if (env) {
        int body = env->body_case;
        uint64_t seq = env->seq;
        vg_envelope_free(env);
        fail_msg("the link sent body %d seq=%" PRIu64 " when it should have waited", body, seq);
    }
}

static void peer_send(Vigil__Envelope *env)
{
    uint8_t *buf;
    size_t len;
    assert_true(t.route_len > 0);
    assert_int_equal(vg_envelope_encode(env, &buf, &len), 0);
    assert_int_equal(zmq_send(t.peer, t.route, t.route_len, ZMQ_SNDMORE), (int)t.route_len);
    assert_int_equal(zmq_send(t.peer, buf, len, 0), (int)len);
    free(buf);
}

static void peer_enroll_reply(Vigil__AgentState state)
{
    Vigil__EnrollReply reply = VIGIL__ENROLL_REPLY__INIT;
    Vigil__Envelope env;
    reply.state = state;
    reply.agent_id = t.agent_id;
    vg_envelope_init(&env, "coordinator", 0);
    env.body_case = VIGIL__ENVELOPE__BODY_ENROLL_REPLY;
    env.enroll_reply = &reply;
    peer_send(&env);
}

/* One Ack with up to two ranges (second_first 0: one range). */
static void peer_ack(uint64_t first, uint64_t last, uint64_t second_first, uint64_t second_last)
{
    Vigil__SeqRange ranges[2];
    Vigil__SeqRange *list[2] = {&ranges[0], &ranges[1]};
    Vigil__Ack ack = VIGIL__ACK__INIT;
    Vigil__Envelope env;
    vigil__seq_range__init(&ranges[0]);
    vigil__seq_range__init(&ranges[1]);
    ranges[0].first = first;
    ranges[0].last = last;
    ranges[1].first = second_first;
    ranges[1].last = second_last;
    ack.ranges = list;
    ack.n_ranges = second_first ? 2 : 1;
    vg_envelope_init(&env, "coordinator", 0);
    env.body_case = VIGIL__ENVELOPE__BODY_ACK;
    env.ack = &ack;
    peer_send(&env);
}

static void peer_refuse(Vigil__RefusalCode code, uint64_t seq, const char *reason)
{
    Vigil__Refusal refusal = VIGIL__REFUSAL__INIT;
    Vigil__Envelope env;
    refusal.code = code;
    refusal.seq = seq;
    refusal.reason = (char *)reason;
    vg_envelope_init(&env, "coordinator", 0);
    env.body_case = VIGIL__ENVELOPE__BODY_REFUSAL;
    env.refusal = &refusal;
    peer_send(&env);
}

/* Runs the agent's loop until the spool has depth records of which inflight are in flight. An
 * Ack or Refusal is handled when the link reads it, not when it is sent. */
static void await_spool(uint64_t depth, uint64_t inflight)
{
    int64_t deadline = vg_mono_ms() + REPLY_TIMEOUT_MS;
    for (;;) {
        struct spool_stats st = stats();
        if (st.depth == depth && st.inflight == inflight)
            return;
        if (vg_mono_ms() > deadline)
            fail_msg("spool: depth %" PRIu64 " inflight %" PRIu64 ", expected %" PRIu64
                     " and %" PRIu64,
                     st.depth, st.inflight, depth, inflight);
        if (agent_turn(20))
            fail_msg("the link sent something while the spool was expected to settle");
    }
}

/* The handshake, Enroll first, then EnrollReply{ACTIVE}. Nothing is delivered before the reply. */
static void enroll_active(void)
{
    peer_expect_enroll();
    peer_expect_quiet();
    peer_enroll_reply(VIGIL__AGENT_STATE__AGENT_STATE_ACTIVE);
}

/* ---- fixture ---- */

static void start_link(int64_t ack_timeout_ms)
{
    char err[256] = "";
    struct link_config cfg = {
        .endpoint = t.endpoint,
        .server_public_key = t.server.public_key,
        .keys = &t.agent,
        .agent_id = t.agent_id,
        .node = "test-node",
        .token = NULL,
        .heartbeat_interval_ms = 60000, /* no heartbeat, no "coordinator silent" in a test */
        .max_inflight = WINDOW,
        .ack_timeout_ms = ack_timeout_ms,
        .reconnect_min_ms = 20,
        .reconnect_max_ms = 100,
    };
    t.link = link_new(t.ctx, &cfg, t.spool, err, sizeof(err));
    if (!t.link)
        fail_msg("link_new: %s", err);
}

static int setup(void **state)
{
    (void)state;
    char err[256] = "";
    memset(&t, 0, sizeof(t));
    snprintf(t.dir, sizeof(t.dir), "/tmp/vigil-link-XXXXXX");
    if (!mkdtemp(t.dir))
        return -1;
    snprintf(t.spool_dir, sizeof(t.spool_dir), "%s/spool", t.dir);
    snprintf(t.socket_path, sizeof(t.socket_path), "%s/coordinator", t.dir);
    snprintf(t.endpoint, sizeof(t.endpoint), "ipc://%s", t.socket_path);
    if (vg_keypair_generate(&t.server) < 0 || vg_keypair_generate(&t.agent) < 0)
        return -1;
    vg_agent_id_from_key(t.agent.public_key, t.agent_id);
    struct spool_limits limits = {0};
    t.spool = spool_open(t.spool_dir, &limits, err, sizeof(err));
    if (!t.spool) {
        fprintf(stderr, "spool_open: %s\n", err);
        return -1;
    }
    t.ctx = zmq_ctx_new();
    return t.ctx ? 0 : -1;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    link_destroy(&t.link);
    if (t.peer)
        zmq_close(t.peer);
    t.peer = NULL;
    if (t.ctx)
        zmq_ctx_term(t.ctx);
    t.ctx = NULL;
    spool_destroy(&t.spool);
    if (t.dir[0])
        nftw(t.dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* ---- delivery ---- */

/* The link enrolls first and delivers nothing before the coordinator accepts it; then it sends
 * the spool in order, never more than max_inflight unacknowledged: four of ten go out, and each
 * acknowledged record lets exactly one more go. */
static void test_window_bounds_inflight(void **state)
{
    (void)state;
    spool_batches(10);
    peer_bind();
    start_link(60000);

    enroll_active();
    peer_expect_seqs(1, WINDOW);
    peer_expect_quiet(); /* the window is full */
    assert_int_equal(link_state(t.link), LINK_ACTIVE);
    assert_int_equal(stats().inflight, WINDOW);
    assert_int_equal(stats().depth, 10);

    peer_ack(1, 2, 0, 0);
    peer_expect_seqs(WINDOW + 1, WINDOW + 2);
    peer_expect_quiet();
    assert_int_equal(stats().inflight, WINDOW);
    assert_int_equal(stats().depth, 8);
}

/* The coordinator's Acks remove exactly what they name from the spool (ranges, out of order,
 * several in one Ack); once all is acknowledged the spool is empty, and a restarted agent (the
 * spool opened again) has nothing left to send. */
static void test_acks_trim_spool(void **state)
{
    (void)state;
    char err[256] = "";
    spool_batches(6);
    peer_bind();
    start_link(60000);
    enroll_active();
    peer_expect_seqs(1, WINDOW);

    peer_ack(1, 2, 0, 0);
    peer_expect_seqs(5, 6);
    await_spool(4, 4);

    peer_ack(3, 3, 5, 6); /* 4 is not acknowledged yet */
    await_spool(1, 1);
    peer_expect_quiet(); /* nothing is left to send; 4 waits for its Ack */

    peer_ack(4, 4, 0, 0);
    await_spool(0, 0);
    assert_int_equal(link_refused_records(t.link), 0);

    link_destroy(&t.link);
    spool_destroy(&t.spool);
    struct spool_limits limits = {0};
    t.spool = spool_open(t.spool_dir, &limits, err, sizeof(err));
    if (!t.spool)
        fail_msg("spool_open: %s", err);
    struct spool_entry entry;
    assert_int_equal(spool_next_unsent(t.spool, &entry), -ENOENT);
    assert_int_equal(stats().depth, 0);
    assert_int_equal(stats().next_seq, 7); /* seqs are never reused */
}

/* The coordinator goes away with records in flight. The link notices, and when a coordinator is
 * back on the endpoint it reconnects by itself, enrolls first, and then resends every record
 * that was not acknowledged, oldest first, within the window; acknowledged ones never again.
 * Records spooled while it was away follow. */
static void test_reconnect_resends_unacknowledged(void **state)
{
    (void)state;
    spool_batches(6);
    peer_bind();
    start_link(60000);
    enroll_active();
    peer_expect_seqs(1, WINDOW);
    peer_ack(1, 2, 0, 0);
    peer_expect_seqs(5, 6);
    await_spool(4, 4);

    peer_close();
    await_spool(4, 0); /* in flight on a connection that is gone: to be sent again */
    spool_batches(2);  /* the agent keeps measuring */
    for (int i = 0; i < 5; i++)
        agent_turn(10); /* nowhere to send: nothing is lost */
    assert_int_equal(stats().depth, 6);
    assert_int_equal(stats().inflight, 0);

    peer_bind();
    enroll_active();
    peer_expect_seqs(3, 6);
    peer_expect_quiet();
    peer_ack(3, 6, 0, 0);
    peer_expect_seqs(7, 8);
    peer_ack(7, 8, 0, 0);
    await_spool(0, 0);
}

/* A record whose Ack does not come within link.ack_timeout is sent again on the same
 * connection, no sooner. */
static void test_ack_timeout_resends(void **state)
{
    (void)state;
    const int64_t ack_timeout_ms = 200;
    spool_batches(2);
    peer_bind();
    start_link(ack_timeout_ms);
    peer_expect_enroll();
    int64_t accepted = vg_mono_ms(); /* no sooner than the link reads this reply, it sends */
    peer_enroll_reply(VIGIL__AGENT_STATE__AGENT_STATE_ACTIVE);
    peer_expect_seqs(1, 2);

    peer_expect_seqs(1, 2);
    assert_true(vg_mono_ms() - accepted >= ack_timeout_ms);
    peer_ack(1, 2, 0, 0);
    await_spool(0, 0);
}

/* A record that is never acknowledged (the coordinator could not commit its batch: its database
 * was down) is sent again after link.ack_timeout even while newer records keep being
 * acknowledged. Every Ack used to push the deadline back, so after a database outage the backlog
 * stayed in the spool for as long as the agent kept producing. */
static void test_ack_timeout_counts_from_the_oldest(void **state)
{
    (void)state;
    const int64_t ack_timeout_ms = 200;
    spool_batches(1);
    peer_bind();
    start_link(ack_timeout_ms);
    enroll_active();
    peer_expect_seqs(1, 1); /* its batch failed: no Ack */
    int64_t sent = vg_mono_ms();
    uint64_t seq;
    for (seq = 2;; seq++) {
        spool_batches(1);
        Vigil__Envelope *env = peer_expect(VIGIL__ENVELOPE__BODY_SIGNALS);
        uint64_t got = env->seq;
        vg_envelope_free(env);
        if (got == 1)
            break; /* sent again */
        assert_int_equal(got, seq);
        peer_ack(seq, seq, 0, 0);
        /* The Ack read and the next record made a little later, as a running agent would. The
         * link may send seq 1 again in one of these turns: the next peer_expect reads it. */
        for (int turn = 0; turn < 3 || stats().depth > 1; turn++)
            (void)agent_turn(10);
        if (vg_mono_ms() - sent > 5 * ack_timeout_ms)
            fail_msg("seq 1 not sent again %d ms after it was sent, newer ones acknowledged",
                     (int)(5 * ack_timeout_ms));
    }
    assert_true(vg_mono_ms() - sent >= ack_timeout_ms);
    peer_ack(1, seq, 0, 0); /* seq 1 and whatever else went out again with it */
    for (int64_t until = vg_mono_ms() + REPLY_TIMEOUT_MS; stats().depth > 0;) {
        if (agent_turn(10))
            vg_envelope_free(peer_receive(0));
        if (vg_mono_ms() > until)
            fail_msg("the spool still holds %" PRIu64 " records", stats().depth);
    }
}

/* A record the coordinator refuses as invalid (with its seq) is dropped from the spool and
 * counted, never sent again; a NOT_ENROLLED refusal makes the link enroll again and resend what
 * was in flight, nothing dropped. */
static void test_refusals(void **state)
{
    (void)state;
    spool_batches(3);
    peer_bind();
    start_link(60000);
    enroll_active();
    peer_expect_seqs(1, 3);

    peer_refuse(VIGIL__REFUSAL_CODE__REFUSAL_INVALID, 2, "record not stored, discard it: test");
    await_spool(2, 2);
    assert_int_equal(link_refused_records(t.link), 1);

    peer_refuse(VIGIL__REFUSAL_CODE__REFUSAL_NOT_ENROLLED, 1, "unknown agent: enroll first");
    peer_expect_enroll();
    peer_expect_quiet();
    assert_int_equal(stats().depth, 2);
    peer_enroll_reply(VIGIL__AGENT_STATE__AGENT_STATE_ACTIVE);
    peer_expect_seqs(1, 1);
    peer_expect_seqs(3, 3); /* 2 is gone */
    peer_expect_quiet();
    peer_ack(1, 1, 3, 3);
    await_spool(0, 0);
    assert_int_equal(link_refused_records(t.link), 1);
}

int main(void)
{
    vg_log_init("test_link", VG_LOG_ERROR, false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_window_bounds_inflight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acks_trim_spool, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_resends_unacknowledged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_timeout_resends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_timeout_counts_from_the_oldest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
