/* Envelope encode/decode: strict, bounded, and every refusal names its reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wire.h"

static const char *const AGENT = "ag-0123456789abcdef";

static void encode(const Vigil__Envelope *env, uint8_t **buf, size_t *len)
{
    assert_int_equal(vg_envelope_encode(env, buf, len), 0);
}

static void test_signal_batch_round_trip(void **state)
{
    (void)state;
    Vigil__Label label = VIGIL__LABEL__INIT;
    label.key = "mount";
    label.value = "/var";
    Vigil__Label *labels[] = {&label};
    Vigil__Signal sig = VIGIL__SIGNAL__INIT;
    sig.name = "host.disk.used_pct";
    sig.value = 81.5;
    sig.unit = "percent";
    sig.labels = labels;
    sig.n_labels = 1;
    sig.ts_ms = 1700000000000;
    Vigil__Signal *sigs[] = {&sig};
    Vigil__SignalBatch batch = VIGIL__SIGNAL_BATCH__INIT;
    batch.signals = sigs;
    batch.n_signals = 1;
    Vigil__Envelope env;
    vg_envelope_init(&env, AGENT, 42);
    env.body_case = VIGIL__ENVELOPE__BODY_SIGNALS;
    env.signals = &batch;

    uint8_t *buf;
    size_t len;
    encode(&env, &buf, &len);
    Vigil__Envelope *out = NULL;
    assert_int_equal(vg_envelope_decode(buf, len, &out, NULL), VG_DECODE_OK);
    assert_string_equal(out->sender, AGENT);
    assert_int_equal(out->seq, 42);
    assert_int_equal(out->version, VG_PROTOCOL_VERSION);
    assert_true(out->sent_at_ms > 0);
    assert_int_equal(out->signals->n_signals, 1);
    assert_string_equal(out->signals->signals[0]->name, "host.disk.used_pct");
    assert_string_equal(out->signals->signals[0]->labels[0]->value, "/var");
    assert_true(out->signals->signals[0]->value == 81.5);
    vg_envelope_free(out);
    free(buf);
}

static enum vg_decode_error decode_heartbeat_with(uint32_t version, const char *sender,
                                                  uint64_t seq, const char **reason)
{
    Vigil__Heartbeat hb = VIGIL__HEARTBEAT__INIT;
    Vigil__Envelope env;
    vg_envelope_init(&env, sender, seq);
    env.version = version;
    env.body_case = VIGIL__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    uint8_t *buf;
    size_t len;
    encode(&env, &buf, &len);
    Vigil__Envelope *out = NULL;
    enum vg_decode_error e = vg_envelope_decode(buf, len, &out, reason);
    vg_envelope_free(out);
    free(buf);
    return e;
}

/*
 * A rolling upgrade: a peer one version behind or one ahead is understood, whichever side was
 * upgraded first; two apart is refused with a reason that names what would be accepted.
 */
static void test_version_window(void **state)
{
    (void)state;
    const char *reason = NULL;

    assert_int_equal(VG_PROTOCOL_VERSION, 2); /* so that "one behind" (1) is a real version */
    assert_int_equal(decode_heartbeat_with(VG_PROTOCOL_VERSION, AGENT, 0, NULL), VG_DECODE_OK);
    assert_int_equal(decode_heartbeat_with(VG_PROTOCOL_VERSION - 1, AGENT, 0, NULL), VG_DECODE_OK);
    assert_int_equal(decode_heartbeat_with(VG_PROTOCOL_VERSION + 1, AGENT, 0, NULL), VG_DECODE_OK);

    assert_int_equal(decode_heartbeat_with(VG_PROTOCOL_VERSION + 2, AGENT, 0, &reason),
                     VG_DECODE_VERSION);
    assert_string_equal(reason, "protocol version too new, more than one ahead (this side "
                                "speaks 2 and accepts 1 to 3)");
    reason = NULL;
    assert_int_equal(decode_heartbeat_with(VG_PROTOCOL_VERSION - 2, AGENT, 0, &reason),
                     VG_DECODE_VERSION); /* 0: also "not set" */
    assert_non_null(reason);
    assert_int_equal(decode_heartbeat_with(99, AGENT, 0, NULL), VG_DECODE_VERSION);
    assert_int_equal(decode_heartbeat_with(UINT32_MAX, AGENT, 0, NULL), VG_DECODE_VERSION);

    assert_true(vg_protocol_version_accepted(VG_PROTOCOL_VERSION_MIN));
    assert_true(vg_protocol_version_accepted(VG_PROTOCOL_VERSION_MAX));
    assert_false(vg_protocol_version_accepted(VG_PROTOCOL_VERSION_MIN - 1));
    assert_false(vg_protocol_version_accepted(VG_PROTOCOL_VERSION_MAX + 1));
}

/* What a newer peer adds (a field inside a body this build knows) is skipped, not refused;
 * a newer body type is still refused as unknown_type. */
static void test_newer_peer_fields_skipped(void **state)
{
    (void)state;
    Vigil__Heartbeat hb = VIGIL__HEARTBEAT__INIT;
    hb.uptime_s = 77;
    hb.executor_ok = true;
    uint8_t hbuf[64];
    size_t hlen = vigil__heartbeat__pack(&hb, hbuf);
    /* Field 30, a varint the next version might add: tag (30 << 3) | 0 = 240 = 0xf0 0x01. */
    hbuf[hlen++] = 0xf0;
    hbuf[hlen++] = 0x01;
    hbuf[hlen++] = 0x2a;

    Vigil__Envelope env;
    vg_envelope_init(&env, AGENT, 0);
    env.version = VG_PROTOCOL_VERSION + 1;
    uint8_t *head;
    size_t head_len;
    encode(&env, &head, &head_len);
    /* Envelope field 12 (heartbeat), length-delimited: tag (12 << 3) | 2 = 98. */
    uint8_t *msg = malloc(head_len + 2 + hlen);
    memcpy(msg, head, head_len);
    msg[head_len] = 98;
    msg[head_len + 1] = (uint8_t)hlen;
    memcpy(msg + head_len + 2, hbuf, hlen);

    Vigil__Envelope *out = NULL;
    assert_int_equal(vg_envelope_decode(msg, head_len + 2 + hlen, &out, NULL), VG_DECODE_OK);
    assert_int_equal(out->version, VG_PROTOCOL_VERSION + 1);
    assert_int_equal(out->body_case, VIGIL__ENVELOPE__BODY_HEARTBEAT);
    assert_int_equal(out->heartbeat->uptime_s, 77);
    assert_true(out->heartbeat->executor_ok);
    vg_envelope_free(out);
    free(msg);
    free(head);
}

/* vigilctl and the coordinator: the same window. */
static void test_admin_version_window(void **state)
{
    (void)state;
    Vigil__ListAgents list = VIGIL__LIST_AGENTS__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__AdminReply rep = VIGIL__ADMIN_REPLY__INIT;
    uint8_t buf[64];
    size_t len;
    const char *reason = NULL;

    req.body_case = VIGIL__ADMIN_REQUEST__BODY_LIST_AGENTS;
    req.list_agents = &list;
    static const struct {
        uint32_t version;
        enum vg_decode_error want;
    } cases[] = {
        {VG_PROTOCOL_VERSION - 2, VG_DECODE_VERSION}, {VG_PROTOCOL_VERSION - 1, VG_DECODE_OK},
        {VG_PROTOCOL_VERSION, VG_DECODE_OK},          {VG_PROTOCOL_VERSION + 1, VG_DECODE_OK},
        {VG_PROTOCOL_VERSION + 2, VG_DECODE_VERSION},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        Vigil__AdminRequest *req_out = NULL;
        Vigil__AdminReply *rep_out = NULL;
        req.version = cases[i].version;
        len = vigil__admin_request__pack(&req, buf);
        assert_int_equal(vg_admin_request_decode(buf, len, &req_out, &reason), cases[i].want);
        if (req_out)
            vigil__admin_request__free_unpacked(req_out, NULL);
        rep.version = cases[i].version;
        len = vigil__admin_reply__pack(&rep, buf);
        assert_int_equal(vg_admin_reply_decode(buf, len, &rep_out, &reason), cases[i].want);
        if (rep_out)
            vigil__admin_reply__free_unpacked(rep_out, NULL);
    }
    assert_string_equal(reason, "protocol version too new, more than one ahead (this side "
                                "speaks 2 and accepts 1 to 3)");
}

static void test_sender_shape_enforced(void **state)
{
    (void)state;
    assert_int_equal(decode_heartbeat_with(VG_PROTOCOL_VERSION, "ag-XYZ", 0, NULL),
                     VG_DECODE_LIMITS);
    assert_int_equal(decode_heartbeat_with(VG_PROTOCOL_VERSION, "", 0, NULL), VG_DECODE_LIMITS);
}

static void test_transient_message_with_seq_refused(void **state)
{
    (void)state;
    assert_int_equal(decode_heartbeat_with(VG_PROTOCOL_VERSION, AGENT, 7, NULL), VG_DECODE_LIMITS);
}

static void test_unknown_type_refused(void **state)
{
    (void)state;
    /* A valid envelope header followed by field 99 (a body type this build does not know). */
    Vigil__Envelope env;
    vg_envelope_init(&env, AGENT, 0);
    uint8_t *buf;
    size_t len;
    encode(&env, &buf, &len);
    uint8_t *longer = malloc(len + 4);
    memcpy(longer, buf, len);
    /* tag = (99 << 3) | 2 (length-delimited) = 794 = varint 0x9a 0x06, length 1, one byte. */
    longer[len] = 0x9a;
    longer[len + 1] = 0x06;
    longer[len + 2] = 0x01;
    longer[len + 3] = 0x00;
    Vigil__Envelope *out = NULL;
    const char *reason = NULL;
    assert_int_equal(vg_envelope_decode(longer, len + 4, &out, &reason), VG_DECODE_UNKNOWN_TYPE);
    assert_null(out);
    assert_string_equal(vg_decode_error_name(VG_DECODE_UNKNOWN_TYPE), "unknown_type");
    free(longer);
    free(buf);
}

static void test_garbage_refused(void **state)
{
    (void)state;
    const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    Vigil__Envelope *out = NULL;
    assert_int_equal(vg_envelope_decode(junk, sizeof(junk), &out, NULL), VG_DECODE_MALFORMED);
    assert_int_equal(vg_envelope_decode("", 0, &out, NULL), VG_DECODE_VERSION);
}

static void test_oversized_refused_before_parsing(void **state)
{
    (void)state;
    size_t len = VG_MAX_MESSAGE_BYTES + 1;
    uint8_t *big = calloc(1, len);
    Vigil__Envelope *out = NULL;
    assert_int_equal(vg_envelope_decode(big, len, &out, NULL), VG_DECODE_OVERSIZED);
    free(big);
}

static void test_limits_enforced(void **state)
{
    (void)state;
    Vigil__Label label = VIGIL__LABEL__INIT;
    label.key = "k";
    label.value = "v";
    Vigil__Label *labels[VG_MAX_LABELS_PER_SIGNAL + 1];
    for (size_t i = 0; i < VG_MAX_LABELS_PER_SIGNAL + 1; i++)
        labels[i] = &label;
    Vigil__Signal sig = VIGIL__SIGNAL__INIT;
    sig.name = "host.load";
    sig.labels = labels;
    sig.n_labels = VG_MAX_LABELS_PER_SIGNAL + 1;
    Vigil__Signal *sigs[] = {&sig};
    Vigil__SignalBatch batch = VIGIL__SIGNAL_BATCH__INIT;
    batch.signals = sigs;
    batch.n_signals = 1;
    Vigil__Envelope env;
    vg_envelope_init(&env, AGENT, 1);
    env.body_case = VIGIL__ENVELOPE__BODY_SIGNALS;
    env.signals = &batch;

    uint8_t *buf;
    size_t len;
    encode(&env, &buf, &len);
    Vigil__Envelope *out = NULL;
    const char *reason = NULL;
    assert_int_equal(vg_envelope_decode(buf, len, &out, &reason), VG_DECODE_LIMITS);
    assert_non_null(strstr(reason, "labels"));
    free(buf);

    /* A durable message must carry a sequence number. */
    sig.n_labels = 1;
    env.seq = 0;
    encode(&env, &buf, &len);
    assert_int_equal(vg_envelope_decode(buf, len, &out, NULL), VG_DECODE_LIMITS);
    free(buf);

    /* Enrollment tokens are exactly 32 bytes. */
    Vigil__Enroll enroll = VIGIL__ENROLL__INIT;
    uint8_t token[5] = {0};
    enroll.node = "worker-1";
    enroll.token.data = token;
    enroll.token.len = sizeof(token);
    vg_envelope_init(&env, AGENT, 0);
    env.body_case = VIGIL__ENVELOPE__BODY_ENROLL;
    env.enroll = &enroll;
    encode(&env, &buf, &len);
    assert_int_equal(vg_envelope_decode(buf, len, &out, NULL), VG_DECODE_LIMITS);
    free(buf);
}

static void test_admin_request_strict(void **state)
{
    (void)state;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    req.version = VG_PROTOCOL_VERSION;
    req.request_id = 9;
    uint8_t buf[64];
    size_t len = vigil__admin_request__pack(&req, buf);
    Vigil__AdminRequest *out = NULL;
    /* No body: refused as an unknown request type. */
    assert_int_equal(vg_admin_request_decode(buf, len, &out, NULL), VG_DECODE_UNKNOWN_TYPE);

    Vigil__ListAgents list = VIGIL__LIST_AGENTS__INIT;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_LIST_AGENTS;
    req.list_agents = &list;
    len = vigil__admin_request__pack(&req, buf);
    assert_int_equal(vg_admin_request_decode(buf, len, &out, NULL), VG_DECODE_OK);
    assert_int_equal(out->request_id, 9);
    vigil__admin_request__free_unpacked(out, NULL);
}

/* ---- evidence on demand ---- */

static const uint8_t SHA[VG_SHA256_BYTES] = {1, 2, 3};

/* A valid last chunk of 5 bytes at offset 0; tests break one field at a time. */
static void evidence_chunk(Vigil__EvidenceChunk *c, uint8_t *data, size_t len)
{
    vigil__evidence_chunk__init(c);
    c->collection_id = 7;
    c->artifact = 3;
    c->kind = "file";
    c->collected_at_ms = 1700000000000;
    c->offset = 0;
    c->data.data = data;
    c->data.len = len;
    c->last = true;
    c->total_size = len;
    c->sha256.data = (uint8_t *)SHA;
    c->sha256.len = sizeof(SHA);
}

static enum vg_decode_error decode_evidence(const Vigil__EvidenceChunk *c, uint64_t seq,
                                            const char **reason)
{
    Vigil__Envelope env;
    vg_envelope_init(&env, AGENT, seq);
    env.body_case = VIGIL__ENVELOPE__BODY_EVIDENCE;
    env.evidence = (Vigil__EvidenceChunk *)c;
    uint8_t *buf;
    size_t len;
    encode(&env, &buf, &len);
    Vigil__Envelope *out = NULL;
    enum vg_decode_error e = vg_envelope_decode(buf, len, &out, reason);
    if (e == VG_DECODE_OK) {
        assert_int_equal(out->body_case, VIGIL__ENVELOPE__BODY_EVIDENCE);
        assert_int_equal(out->evidence->data.len, c->data.len);
    } else {
        assert_null(out);
    }
    vg_envelope_free(out);
    free(buf);
    return e;
}

static void test_evidence_chunk_accepted(void **state)
{
    (void)state;
    uint8_t data[5] = "hello";
    Vigil__EvidenceChunk c;
    evidence_chunk(&c, data, sizeof(data));
    assert_int_equal(decode_evidence(&c, 12, NULL), VG_DECODE_OK);

    /* A middle chunk: no hash, no total. */
    c.last = false;
    c.total_size = 0;
    c.sha256.len = 0;
    c.offset = 1024;
    assert_int_equal(decode_evidence(&c, 13, NULL), VG_DECODE_OK);

    /* An empty artifact is one last chunk with no data. */
    evidence_chunk(&c, NULL, 0);
    assert_int_equal(decode_evidence(&c, 14, NULL), VG_DECODE_OK);

    /* A refusal: the error alone. */
    vigil__evidence_chunk__init(&c);
    c.collection_id = 7;
    c.kind = "file";
    c.error = "path /etc/shadow is outside the allowed directories";
    assert_int_equal(decode_evidence(&c, 15, NULL), VG_DECODE_OK);
}

static void test_evidence_chunk_limits(void **state)
{
    (void)state;
    const char *reason = NULL;
    size_t big_len = VG_MAX_EVIDENCE_CHUNK_BYTES + 1;
    uint8_t *big = calloc(1, big_len);
    uint8_t data[5] = "hello";
    Vigil__EvidenceChunk c;

    /* Chunk data over 1 MiB, even inside the 4 MiB message limit. */
    evidence_chunk(&c, big, big_len);
    assert_int_equal(decode_evidence(&c, 1, &reason), VG_DECODE_LIMITS);
    assert_non_null(strstr(reason, "1 MiB"));
    evidence_chunk(&c, big, VG_MAX_EVIDENCE_CHUNK_BYTES);
    assert_int_equal(decode_evidence(&c, 1, NULL), VG_DECODE_OK);
    free(big);

    /* The last chunk's hash is exactly 32 bytes; other chunks carry none. */
    evidence_chunk(&c, data, sizeof(data));
    c.sha256.len = 31;
    assert_int_equal(decode_evidence(&c, 1, &reason), VG_DECODE_LIMITS);
    assert_non_null(strstr(reason, "32 bytes"));
    c.sha256.len = 0;
    assert_int_equal(decode_evidence(&c, 1, NULL), VG_DECODE_LIMITS);
    evidence_chunk(&c, data, sizeof(data));
    c.last = false;
    c.total_size = 0;
    assert_int_equal(decode_evidence(&c, 1, NULL), VG_DECODE_LIMITS);

    /* Too many arguments, an empty key. */
    Vigil__Label arg = VIGIL__LABEL__INIT;
    arg.key = "path";
    arg.value = "/var/log/app.log";
    Vigil__Label *args[VG_MAX_EVIDENCE_ARGS + 1];
    for (size_t i = 0; i < VG_MAX_EVIDENCE_ARGS + 1; i++)
        args[i] = &arg;
    evidence_chunk(&c, data, sizeof(data));
    c.args = args;
    c.n_args = VG_MAX_EVIDENCE_ARGS + 1;
    assert_int_equal(decode_evidence(&c, 1, &reason), VG_DECODE_LIMITS);
    assert_non_null(strstr(reason, "arguments"));
    c.n_args = VG_MAX_EVIDENCE_ARGS;
    assert_int_equal(decode_evidence(&c, 1, NULL), VG_DECODE_OK);
    arg.key = "";
    assert_int_equal(decode_evidence(&c, 1, NULL), VG_DECODE_LIMITS);
    c.n_args = 0;

    /* Offsets: the end must stay within the artifact limit; the total must match the end. */
    evidence_chunk(&c, data, sizeof(data));
    c.offset = UINT64_MAX - 2;
    c.total_size = 2; /* offset + len wrapped around */
    assert_int_equal(decode_evidence(&c, 1, NULL), VG_DECODE_LIMITS);
    c.offset = (uint64_t)VG_MAX_EVIDENCE_BYTES;
    c.total_size = c.offset + sizeof(data);
    assert_int_equal(decode_evidence(&c, 1, NULL), VG_DECODE_LIMITS);
    c.offset = 10;
    c.total_size = 10;
    assert_int_equal(decode_evidence(&c, 1, &reason), VG_DECODE_LIMITS);
    assert_non_null(strstr(reason, "total size"));

    /* Kinds are short names; ids are set; error text is bounded and comes alone. */
    evidence_chunk(&c, data, sizeof(data));
    c.kind = "../file";
    assert_int_equal(decode_evidence(&c, 1, NULL), VG_DECODE_LIMITS);
    c.kind = "a_kind_name_that_is_longer_than_32";
    assert_int_equal(decode_evidence(&c, 1, NULL), VG_DECODE_LIMITS);
    c.kind = "file";
    c.collection_id = 0;
    assert_int_equal(decode_evidence(&c, 1, NULL), VG_DECODE_LIMITS);
    c.collection_id = 7;
    c.artifact = 0;
    assert_int_equal(decode_evidence(&c, 1, NULL), VG_DECODE_LIMITS);
    c.artifact = 3;
    c.error = "refused";
    assert_int_equal(decode_evidence(&c, 1, NULL), VG_DECODE_LIMITS);
    char long_error[VG_MAX_VALUE_LEN + 2];
    memset(long_error, 'x', sizeof(long_error) - 1);
    long_error[sizeof(long_error) - 1] = '\0';
    vigil__evidence_chunk__init(&c);
    c.collection_id = 7;
    c.kind = "file";
    c.error = long_error;
    assert_int_equal(decode_evidence(&c, 1, NULL), VG_DECODE_LIMITS);

    /* Evidence is durable: it needs a sequence number. */
    evidence_chunk(&c, data, sizeof(data));
    assert_int_equal(decode_evidence(&c, 0, NULL), VG_DECODE_LIMITS);
}

static enum vg_decode_error decode_collect(const Vigil__CollectRequest *req, uint64_t seq)
{
    Vigil__Envelope env;
    vg_envelope_init(&env, "coordinator", seq);
    env.body_case = VIGIL__ENVELOPE__BODY_COLLECT;
    env.collect = (Vigil__CollectRequest *)req;
    uint8_t *buf;
    size_t len;
    encode(&env, &buf, &len);
    Vigil__Envelope *out = NULL;
    enum vg_decode_error e = vg_envelope_decode(buf, len, &out, NULL);
    vg_envelope_free(out);
    free(buf);
    return e;
}

static void test_collect_request_limits(void **state)
{
    (void)state;
    Vigil__Label arg = VIGIL__LABEL__INIT;
    arg.key = "lines";
    arg.value = "50";
    Vigil__Label *args[VG_MAX_EVIDENCE_ARGS + 1];
    for (size_t i = 0; i < VG_MAX_EVIDENCE_ARGS + 1; i++)
        args[i] = &arg;
    Vigil__CollectRequest req = VIGIL__COLLECT_REQUEST__INIT;
    req.collection_id = 5;
    req.kind = "log_tail";
    req.args = args;
    req.n_args = 2;
    req.expires_at_ms = 1700000060000;
    assert_int_equal(decode_collect(&req, 0), VG_DECODE_OK);
    assert_int_equal(decode_collect(&req, 1), VG_DECODE_LIMITS); /* transient: seq 0 */
    req.n_args = VG_MAX_EVIDENCE_ARGS + 1;
    assert_int_equal(decode_collect(&req, 0), VG_DECODE_LIMITS);
    req.n_args = 1;
    req.kind = "Log-Tail";
    assert_int_equal(decode_collect(&req, 0), VG_DECODE_LIMITS);
    req.kind = "log_tail";
    req.collection_id = 0;
    assert_int_equal(decode_collect(&req, 0), VG_DECODE_LIMITS);

    assert_true(vg_evidence_kind_known("file"));
    assert_true(vg_evidence_kind_known("log_tail"));
    assert_false(vg_evidence_kind_known("shadow"));
    assert_false(vg_evidence_kind_known(""));
    assert_false(vg_evidence_kind_known(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signal_batch_round_trip),
        cmocka_unit_test(test_version_window),
        cmocka_unit_test(test_newer_peer_fields_skipped),
        cmocka_unit_test(test_admin_version_window),
        cmocka_unit_test(test_sender_shape_enforced),
        cmocka_unit_test(test_transient_message_with_seq_refused),
        cmocka_unit_test(test_unknown_type_refused),
        cmocka_unit_test(test_garbage_refused),
        cmocka_unit_test(test_oversized_refused_before_parsing),
        cmocka_unit_test(test_limits_enforced),
        cmocka_unit_test(test_admin_request_strict),
        cmocka_unit_test(test_evidence_chunk_accepted),
        cmocka_unit_test(test_evidence_chunk_limits),
        cmocka_unit_test(test_collect_request_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
