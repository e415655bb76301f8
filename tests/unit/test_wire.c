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

static void test_wrong_version_refused(void **state)
{
    (void)state;
    const char *reason = NULL;
    assert_int_equal(decode_heartbeat_with(2, AGENT, 0, &reason), VG_DECODE_VERSION);
    assert_non_null(reason);
    assert_int_equal(decode_heartbeat_with(VG_PROTOCOL_VERSION, AGENT, 0, NULL), VG_DECODE_OK);
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
    assert_int_equal(decode_heartbeat_with(VG_PROTOCOL_VERSION, AGENT, 7, NULL),
                     VG_DECODE_LIMITS);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signal_batch_round_trip),
        cmocka_unit_test(test_wrong_version_refused),
        cmocka_unit_test(test_sender_shape_enforced),
        cmocka_unit_test(test_transient_message_with_seq_refused),
        cmocka_unit_test(test_unknown_type_refused),
        cmocka_unit_test(test_garbage_refused),
        cmocka_unit_test(test_oversized_refused_before_parsing),
        cmocka_unit_test(test_limits_enforced),
        cmocka_unit_test(test_admin_request_strict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
