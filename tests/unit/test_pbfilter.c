/* common/pbfilter.c: unknown fields counted at every depth, stripped without touching the
 * known ones, malformed input refused. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pbfilter.h"
#include "vigil.pb-c.h"

/* Appends one unknown varint field (number 900) to buf at *len. */
static void add_unknown(uint8_t *buf, size_t *len)
{
    buf[(*len)++] = 0xa0; /* (900 << 3) | 0 as a varint: 0xa0 0x38 */
    buf[(*len)++] = 0x38;
    buf[(*len)++] = 0x01;
}

static void put_varint(uint8_t *buf, size_t *len, size_t v)
{
    do {
        buf[(*len)++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
}

/* An Envelope{signals: SignalBatch{signals: [Signal{name, unknown...}]}} with unknown fields at
 * every level, written by hand around protobuf-c's encoding of the known parts. */
static size_t build(uint8_t *out, size_t unknown_per_level)
{
    Vigil__Signal sig = VIGIL__SIGNAL__INIT;
    sig.name = "host.cpu.busy_pct";
    sig.value = 42.5;
    uint8_t inner[4096];
    size_t inner_len = vigil__signal__pack(&sig, inner);
    for (size_t i = 0; i < unknown_per_level; i++)
        add_unknown(inner, &inner_len);

    uint8_t batch[8192];
    size_t batch_len = 0;
    batch[batch_len++] = (1 << 3) | 2; /* SignalBatch.signals */
    put_varint(batch, &batch_len, inner_len);
    memcpy(batch + batch_len, inner, inner_len);
    batch_len += inner_len;
    for (size_t i = 0; i < unknown_per_level; i++)
        add_unknown(batch, &batch_len);

    Vigil__Envelope env = VIGIL__ENVELOPE__INIT;
    env.version = 1;
    env.sender = "ag-0123456789abcdef";
    env.seq = 7;
    size_t len = vigil__envelope__pack(&env, out);
    for (size_t i = 0; i < unknown_per_level; i++)
        add_unknown(out, &len);
    out[len++] = (15 << 3) | 2; /* Envelope.signals */
    put_varint(out, &len, batch_len);
    memcpy(out + len, batch, batch_len);
    return len + batch_len;
}

static void test_count_every_depth(void **unused)
{
    (void)unused;
    uint8_t buf[16384];
    struct vg_pb_unknown u;
    size_t len = build(buf, 0);
    assert_int_equal(vg_pb_count_unknown(&vigil__envelope__descriptor, buf, len, &u), 0);
    assert_int_equal(u.fields, 0);
    len = build(buf, 5);
    assert_int_equal(vg_pb_count_unknown(&vigil__envelope__descriptor, buf, len, &u), 0);
    assert_int_equal(u.fields, 15);
    assert_int_equal(u.bytes, 45);
}

static void test_strip_keeps_known(void **unused)
{
    (void)unused;
    uint8_t buf[16384];
    size_t len = build(buf, 40);
    uint8_t *out;
    size_t out_len;
    assert_int_equal(vg_pb_strip_unknown(&vigil__envelope__descriptor, buf, len, &out, &out_len),
                     0);
    assert_true(out_len < len);
    struct vg_pb_unknown u;
    assert_int_equal(vg_pb_count_unknown(&vigil__envelope__descriptor, out, out_len, &u), 0);
    assert_int_equal(u.fields, 0);

    Vigil__Envelope *env = vigil__envelope__unpack(NULL, out_len, out);
    assert_non_null(env);
    assert_int_equal(env->base.n_unknown_fields, 0);
    assert_string_equal(env->sender, "ag-0123456789abcdef");
    assert_int_equal(env->seq, 7);
    assert_int_equal(env->body_case, VIGIL__ENVELOPE__BODY_SIGNALS);
    assert_int_equal(env->signals->n_signals, 1);
    assert_string_equal(env->signals->signals[0]->name, "host.cpu.busy_pct");
    assert_true(env->signals->signals[0]->value == 42.5);
    vigil__envelope__free_unpacked(env, NULL);
    free(out);
}

static void test_malformed(void **unused)
{
    (void)unused;
    struct vg_pb_unknown u;
    uint8_t *out = NULL;
    size_t out_len;
    static const uint8_t truncated[] = {(2 << 3) | 2, 10, 'a', 'b'};     /* 10 bytes promised */
    static const uint8_t group[] = {(900 << 3 & 0x7f) | 0x80 | 3, 0x38}; /* a start-group tag */
    static const uint8_t endless[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
                                      0xff, 0xff, 0xff, 0xff, 0xff, 0xff}; /* varint > 10 bytes */
    assert_int_equal(
        vg_pb_count_unknown(&vigil__envelope__descriptor, truncated, sizeof(truncated), &u),
        -EBADMSG);
    assert_int_equal(vg_pb_count_unknown(&vigil__envelope__descriptor, group, sizeof(group), &u),
                     -EBADMSG);
    assert_int_equal(
        vg_pb_count_unknown(&vigil__envelope__descriptor, endless, sizeof(endless), &u), -EBADMSG);
    assert_int_equal(vg_pb_strip_unknown(&vigil__envelope__descriptor, truncated, sizeof(truncated),
                                         &out, &out_len),
                     -EBADMSG);
    assert_null(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_count_every_depth),
        cmocka_unit_test(test_strip_keeps_known),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
