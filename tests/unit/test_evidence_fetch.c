/*
 * vigilctl's pipelined artifact fetch (cli/evidence_fetch.c) on an admin session
 * (cli/ctl_admin.c), against a stand-in coordinator: a CURVE ROUTER on a thread of its own that
 * serves GetEvidence from an artifact in memory, one request at a time in arrival order as the
 * real admin thread does, and records what it was asked (offsets, connections, how many
 * requests waited at once). Faults it can play: a short piece, stale replies to earlier
 * requests, a description that changes, a wrong hash, silence.
 *
 * The endpoint is ipc:// in a private directory (libzmq runs no CURVE handshake on inproc://);
 * no ZAP handler runs in the server's context, so it admits any CURVE client.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "ctl_admin.h"
#include "digest.h"
#include "evidence_fetch.h"
#include "keys.h"
#include "timeutil.h"
#include "wire.h"

#define PIECE VG_MAX_EVIDENCE_READ_BYTES
#define QUIET_MS 50 /* the server answers once DEPTH requests wait, or none came for this long */
#define MAX_REQUESTS 64
#define ROUTE_MAX 255
#define EVIDENCE_ID 42

enum fault {
    FAULT_NONE,
    FAULT_SHORT,   /* the piece at offset PIECE comes back 1 MiB short */
    FAULT_STALE,   /* before each answer, a reply to the request answered before, with junk */
    FAULT_CHANGED, /* the third reply describes another SHA-256 */
    FAULT_HANG,    /* only the first request is answered */
};

struct request {
    uint8_t route[ROUTE_MAX];
    size_t route_len;
    uint64_t request_id;
    uint64_t offset;
};

static struct {
    char dir[64];
    char endpoint[sizeof("ipc://") + 96];
    struct vg_keypair server_keys, client_keys;
    struct ctl_config cfg;

    /* the artifact the server holds, and what it claims */
    uint8_t *data;
    size_t size;
    char sha256[VG_SHA256_HEX_LEN + 1];
    enum fault fault;

    /* the server: its socket belongs to its thread once started */
    void *zctx, *sock;
    pthread_t thread;
    atomic_bool stop;

    /* what the server saw (read after the thread is joined); cmocka's asserts belong to the
     * test's thread, so the server notes what went wrong and the test checks it */
    char server_error[256];
    uint64_t offsets[MAX_REQUESTS];
    size_t nrequests;
    size_t max_waiting; /* requests received and not yet answered, at most at once */
    size_t connections; /* distinct routing ids */

    /* what the fetch wrote */
    uint8_t *out;
    size_t out_len;
} t;

/* ---- the stand-in coordinator ---- */

static void server_fail(const char *what)
{
    if (t.server_error[0] == '\0')
        snprintf(t.server_error, sizeof(t.server_error), "%s", what);
}

static void send_reply(const struct request *rq, uint64_t request_id, const uint8_t *data,
                       size_t len, const char *sha256)
{
    Vigil__EvidenceInfo info = VIGIL__EVIDENCE_INFO__INIT;
    Vigil__EvidenceInfo *list[] = {&info};
    Vigil__AdminReply rep = VIGIL__ADMIN_REPLY__INIT;

    info.id = EVIDENCE_ID;
    info.size = t.size;
    info.sha256 = (char *)sha256;
    info.status = VIGIL__EVIDENCE_STATUS__EVIDENCE_STORED;
    rep.version = VG_PROTOCOL_VERSION;
    rep.request_id = request_id;
    rep.status = VIGIL__ADMIN_STATUS__ADMIN_OK;
    rep.evidence = list;
    rep.n_evidence = 1;
    rep.data.data = (uint8_t *)data;
    rep.data.len = len;
    size_t n = vigil__admin_reply__get_packed_size(&rep);
    uint8_t *buf = malloc(n ? n : 1);
    if (buf == NULL) {
        server_fail("out of memory");
        return;
    }
    vigil__admin_reply__pack(&rep, buf);
    if (zmq_send(t.sock, rq->route, rq->route_len, ZMQ_SNDMORE) < 0 ||
        zmq_send(t.sock, buf, n, 0) < 0)
        server_fail("a reply could not be sent");
    free(buf);
}

static void answer(const struct request *rq, size_t nth, uint64_t previous_id)
{
    size_t len = rq->offset < t.size ? t.size - rq->offset : 0;
    const char *sha = t.sha256;
    if (len > PIECE)
        len = PIECE;
    if (t.fault == FAULT_SHORT && rq->offset == PIECE)
        len -= 1024 * 1024;
    if (t.fault == FAULT_CHANGED && nth == 2)
        sha = "0000000000000000000000000000000000000000000000000000000000000000";
    if (t.fault == FAULT_STALE && previous_id != 0) {
        uint8_t *junk = malloc(len ? len : 1);
        if (junk == NULL) {
            server_fail("out of memory");
            return;
        }
        memset(junk, 0xAA, len);
        send_reply(rq, previous_id, junk, len, t.sha256);
        free(junk);
    }
    send_reply(rq, rq->request_id, t.data + rq->offset, len, sha);
}

/* Reads one request if there is one: true with *rq filled. */
static bool receive(struct request *rq)
{
    zmq_msg_t route, body;
    bool ok = false;

    zmq_msg_init(&route);
    zmq_msg_init(&body);
    if (zmq_msg_recv(&route, t.sock, ZMQ_DONTWAIT) < 0)
        goto out;
    Vigil__AdminRequest *req = NULL;
    const char *why = NULL;
    if (!zmq_msg_more(&route) || zmq_msg_recv(&body, t.sock, 0) < 0 ||
        vg_admin_request_decode(zmq_msg_data(&body), zmq_msg_size(&body), &req, &why) !=
            VG_DECODE_OK) {
        server_fail("a request that does not decode");
        goto out;
    }
    if (req->body_case != VIGIL__ADMIN_REQUEST__BODY_GET_EVIDENCE ||
        req->get_evidence->id != EVIDENCE_ID || req->get_evidence->max_bytes != PIECE) {
        server_fail("a request other than GetEvidence of evidence 42, 3 MiB at most");
        vigil__admin_request__free_unpacked(req, NULL);
        goto out;
    }
    rq->route_len = zmq_msg_size(&route) < ROUTE_MAX ? zmq_msg_size(&route) : ROUTE_MAX;
    memcpy(rq->route, zmq_msg_data(&route), rq->route_len);
    rq->request_id = req->request_id;
    rq->offset = req->get_evidence->offset;
    vigil__admin_request__free_unpacked(req, NULL);
    ok = true;
out:
    zmq_msg_close(&route);
    zmq_msg_close(&body);
    return ok;
}

static void *serve(void *arg)
{
    struct request waiting[MAX_REQUESTS];
    uint8_t first_route[ROUTE_MAX];
    size_t first_route_len = 0, nwaiting = 0, answered = 0;
    uint64_t previous_id = 0;
    int64_t last_arrival = vg_mono_ms();

    (void)arg;
    while (!atomic_load(&t.stop)) {
        zmq_pollitem_t item = {t.sock, 0, ZMQ_POLLIN, 0};
        zmq_poll(&item, 1, 5);
        struct request rq;
        while (nwaiting < MAX_REQUESTS && t.nrequests < MAX_REQUESTS && receive(&rq)) {
            if (t.connections == 0 || rq.route_len != first_route_len ||
                memcmp(rq.route, first_route, rq.route_len) != 0) {
                t.connections++;
                memcpy(first_route, rq.route, rq.route_len);
                first_route_len = rq.route_len;
            }
            t.offsets[t.nrequests++] = rq.offset;
            waiting[nwaiting++] = rq;
            last_arrival = vg_mono_ms();
        }
        if (nwaiting > t.max_waiting)
            t.max_waiting = nwaiting;
        /* One at a time, in arrival order, as coordinator/admin/admin.c serves them; held back
         * a little so that what a pipelining client sends meanwhile is seen waiting. */
        if (nwaiting == 0 || (t.fault == FAULT_HANG && answered >= 1) ||
            (nwaiting < EVIDENCE_FETCH_DEPTH && vg_mono_ms() - last_arrival < QUIET_MS))
            continue;
        answer(&waiting[0], answered++, previous_id);
        previous_id = waiting[0].request_id;
        memmove(waiting, waiting + 1, --nwaiting * sizeof(waiting[0]));
    }
    return NULL;
}

static void server_start(size_t size, enum fault fault)
{
    int one = 1, zero = 0;

    t.size = size;
    t.fault = fault;
    t.data = malloc(size ? size : 1);
    assert_non_null(t.data);
    for (size_t i = 0; i < size; i++) /* no two pieces alike: a piece taken for another shows */
        t.data[i] = (uint8_t)((i * 2654435761u) >> 13);
    uint8_t digest[VG_SHA256_LEN];
    vg_sha256(t.data, size, digest);
    vg_hex(digest, VG_SHA256_LEN, t.sha256);

    t.zctx = zmq_ctx_new();
    assert_non_null(t.zctx);
    t.sock = zmq_socket(t.zctx, ZMQ_ROUTER);
    assert_non_null(t.sock);
    assert_int_equal(zmq_setsockopt(t.sock, ZMQ_LINGER, &zero, sizeof(zero)), 0);
    assert_int_equal(zmq_setsockopt(t.sock, ZMQ_CURVE_SERVER, &one, sizeof(one)), 0);
    assert_int_equal(
        zmq_setsockopt(t.sock, ZMQ_CURVE_SECRETKEY, t.server_keys.secret_key, VG_KEY_Z85_LEN), 0);
    assert_int_equal(zmq_bind(t.sock, t.endpoint), 0);
    atomic_store(&t.stop, false);
    assert_int_equal(pthread_create(&t.thread, NULL, serve, NULL), 0);
}

static void server_stop(void)
{
    atomic_store(&t.stop, true);
    pthread_join(t.thread, NULL);
    zmq_close(t.sock);
    t.sock = NULL;
    zmq_ctx_term(t.zctx);
    t.zctx = NULL;
    assert_string_equal(t.server_error, "");
}

/* ---- the client ---- */

static int collect(void *userdata, const uint8_t *data, size_t len)
{
    (void)userdata;
    uint8_t *grown = realloc(t.out, t.out_len + len + 1);
    if (grown == NULL)
        return -ENOMEM;
    t.out = grown;
    memcpy(t.out + t.out_len, data, len);
    t.out_len += len;
    return 0;
}

/* One fetch on a session of its own; manifest: give the size and SHA-256 as an export does. */
static int fetch(bool manifest, int64_t timeout_ms, uint64_t *ret_size, char *ret_sha)
{
    ctl_admin_session_t *session = NULL;
    char err[512] = "";

    assert_int_equal(ctl_admin_session_open(&t.cfg, timeout_ms, &session, err, sizeof(err)), 0);
    const struct evidence_fetch_target target = {.id = EVIDENCE_ID,
                                                 .subject = "evidence 42",
                                                 .sha256 = manifest ? t.sha256 : NULL,
                                                 .size = manifest ? t.size : 0,
                                                 .write = collect,
                                                 .userdata = NULL};
    int r = evidence_fetch_artifact(session, timeout_ms, &target, ret_size, ret_sha);
    ctl_admin_session_destroy(&session);
    assert_null(session);
    return r;
}

static size_t requests_at(uint64_t offset)
{
    size_t n = 0;
    for (size_t i = 0; i < t.nrequests; i++)
        n += t.offsets[i] == offset;
    return n;
}

static void assert_fetched_whole(void)
{
    assert_int_equal(t.out_len, t.size);
    assert_true(t.size == 0 || memcmp(t.out, t.data, t.size) == 0);
}

/* ---- the tests ---- */

/* Five pieces come back byte for byte on one connection, three requests in flight, each offset
 * asked once: one request at offset 0 (the one the coordinator audits). */
static void test_pipelined_whole(void **state)
{
    uint64_t size = 0;
    char sha[VG_SHA256_HEX_LEN + 1] = "";
    bool manifest = *state != NULL;

    server_start(4 * PIECE + 12345, FAULT_NONE);
    assert_int_equal(fetch(manifest, 5000, &size, sha), 0);
    server_stop();
    assert_fetched_whole();
    assert_int_equal(size, t.size);
    assert_string_equal(sha, t.sha256);
    assert_int_equal(t.connections, 1);
    assert_int_equal(t.nrequests, 5);
    for (uint64_t off = 0; off < t.size; off += PIECE)
        assert_int_equal(requests_at(off), 1);
    assert_int_equal(t.max_waiting, EVIDENCE_FETCH_DEPTH);
}
_Static_assert(EVIDENCE_FETCH_DEPTH > 1, "a fetch keeps several requests in flight");

/* An empty artifact is still one request, at offset 0. */
static void test_empty(void **state)
{
    uint64_t size = 1;
    char sha[VG_SHA256_HEX_LEN + 1] = "";
    bool manifest = *state != NULL;

    server_start(0, FAULT_NONE);
    assert_int_equal(fetch(manifest, 5000, &size, sha), 0);
    server_stop();
    assert_int_equal(size, 0);
    assert_int_equal(t.out_len, 0);
    assert_string_equal(sha, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_int_equal(t.nrequests, 1);
    assert_int_equal(requests_at(0), 1);
}

/* A piece shorter than asked for: the fetch asks again from where it ended, and the replies to
 * the requests already sent for the old offsets are not taken for it. */
static void test_short_piece(void **state)
{
    uint64_t size = 0;
    char sha[VG_SHA256_HEX_LEN + 1] = "";

    (void)state;
    server_start(4 * PIECE + 7, FAULT_SHORT);
    assert_int_equal(fetch(false, 5000, &size, sha), 0);
    server_stop();
    assert_fetched_whole();
    assert_string_equal(sha, t.sha256);
    assert_int_equal(requests_at(0), 1);
    assert_int_equal(requests_at(2 * PIECE - 1024 * 1024), 1); /* where the short piece ended */
}

/* Replies to earlier requests, carrying other bytes, arrive before each real one: dropped. */
static void test_stale_replies_dropped(void **state)
{
    uint64_t size = 0;
    char sha[VG_SHA256_HEX_LEN + 1] = "";

    (void)state;
    server_start(3 * PIECE + 99, FAULT_STALE);
    assert_int_equal(fetch(false, 5000, &size, sha), 0);
    server_stop();
    assert_fetched_whole();
    assert_string_equal(sha, t.sha256);
}

/* The description changes mid-fetch: a protocol error, whichever side described it first. */
static void test_description_changed(void **state)
{
    uint64_t size = 0;
    char sha[VG_SHA256_HEX_LEN + 1] = "";
    bool manifest = *state != NULL;

    server_start(4 * PIECE, FAULT_CHANGED);
    assert_int_equal(fetch(manifest, 5000, &size, sha), -EPROTO);
    server_stop();
    assert_int_equal(t.out_len, 2 * PIECE); /* the caller removes what was written */
    assert_string_equal(sha, "");
}

/* Bytes that do not hash to what was described fail at the end. */
static void test_wrong_hash(void **state)
{
    uint64_t size = 0;
    char sha[VG_SHA256_HEX_LEN + 1] = "";

    (void)state;
    server_start(2 * PIECE + 1, FAULT_NONE);
    t.sha256[0] = t.sha256[0] == 'a' ? 'b' : 'a';
    assert_int_equal(fetch(false, 5000, &size, sha), -EBADMSG);
    server_stop();
    assert_int_equal(requests_at(0), 1);
}

/* A coordinator that stops answering: each reply is waited for timeout_ms, not forever. */
static void test_silence_times_out(void **state)
{
    uint64_t size = 0;
    char sha[VG_SHA256_HEX_LEN + 1] = "";

    (void)state;
    server_start(4 * PIECE, FAULT_HANG);
    int64_t start = vg_mono_ms();
    assert_int_equal(fetch(false, 300, &size, sha), -ETIMEDOUT);
    int64_t took = vg_mono_ms() - start;
    server_stop();
    assert_true(took >= 300 && took < 3000);
    assert_int_equal(t.out_len, PIECE);
    assert_int_equal(t.nrequests, 1 + EVIDENCE_FETCH_DEPTH);
}

/* ctl_admin_call on its own session still works, and its deadline covers the connection: no
 * coordinator at all is a timeout after timeout_ms, with the message saying so. */
static void test_call_without_coordinator(void **state)
{
    Vigil__ListEvidence body = VIGIL__LIST_EVIDENCE__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__AdminReply *reply = NULL;
    char err[512] = "";

    (void)state;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_LIST_EVIDENCE;
    req.list_evidence = &body;
    int64_t start = vg_mono_ms();
    assert_int_equal(ctl_admin_call(&t.cfg, &req, 200, &reply, err, sizeof(err)), -ETIMEDOUT);
    assert_true(vg_mono_ms() - start < 2000);
    assert_null(reply);
    assert_non_null(strstr(err, "within 200ms (is the coordinator running"));
}

static int setup_each(void **state)
{
    (void)state;
    free(t.data);
    free(t.out);
    t.data = t.out = NULL;
    t.out_len = t.nrequests = t.max_waiting = t.connections = 0;
    t.server_error[0] = '\0';
    return 0;
}

static int setup(void **state)
{
    (void)state;
    memset(&t, 0, sizeof(t));
    snprintf(t.dir, sizeof(t.dir), "/tmp/vigil-fetch-XXXXXX");
    if (!mkdtemp(t.dir))
        return -1;
    snprintf(t.endpoint, sizeof(t.endpoint), "ipc://%s/coordinator", t.dir);
    if (vg_keypair_generate(&t.server_keys) < 0 || vg_keypair_generate(&t.client_keys) < 0)
        return -1;
    t.cfg.coordinator = t.endpoint;
    t.cfg.coordinator_public_key = t.server_keys.public_key;
    t.cfg.public_key = t.client_keys.public_key;
    t.cfg.secret_key = t.client_keys.secret_key;
    return 0;
}

static int teardown(void **state)
{
    char path[128];
    (void)state;
    setup_each(state);
    snprintf(path, sizeof(path), "%s/coordinator", t.dir);
    unlink(path);
    rmdir(t.dir);
    return 0;
}

static char manifest_mode = 1;

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_pipelined_whole, setup_each, NULL, NULL),
        cmocka_unit_test_prestate_setup_teardown(test_pipelined_whole, setup_each, NULL,
                                                 &manifest_mode),
        cmocka_unit_test_prestate_setup_teardown(test_empty, setup_each, NULL, NULL),
        cmocka_unit_test_prestate_setup_teardown(test_empty, setup_each, NULL, &manifest_mode),
        cmocka_unit_test_setup(test_short_piece, setup_each),
        cmocka_unit_test_setup(test_stale_replies_dropped, setup_each),
        cmocka_unit_test_prestate_setup_teardown(test_description_changed, setup_each, NULL, NULL),
        cmocka_unit_test_prestate_setup_teardown(test_description_changed, setup_each, NULL,
                                                 &manifest_mode),
        cmocka_unit_test_setup(test_wrong_hash, setup_each),
        cmocka_unit_test_setup(test_silence_times_out, setup_each),
        cmocka_unit_test_setup(test_call_without_coordinator, setup_each),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
