/* Signal batches: what collectors add is exactly what the coordinator decodes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sigbuf.h"
#include "wire.h"

static const char *const AGENT = "ag-0123456789abcdef";

static void test_round_trip(void **unused)
{
    (void)unused;
    sigbuf_t *b = sigbuf_new();
    char mount[32];
    snprintf(mount, sizeof(mount), "/var/lib");
    struct sig_label labels[] = {{"mount", mount}, {"fstype", "ext4"}};
    assert_int_equal(sigbuf_add(b, "host.disk.used_pct", 81.5, "percent", 1000,
                                VIGIL__SIGNAL_STATE__SIGNAL_STATE_WARNING, labels, 2),
                     0);
    /* The batch copied the strings: the caller's buffer may change. */
    snprintf(mount, sizeof(mount), "/changed");
    assert_int_equal(sigbuf_add(b, "host.load.1m", 0.5, "", 1001,
                                VIGIL__SIGNAL_STATE__SIGNAL_STATE_NONE, NULL, 0),
                     0);
    assert_int_equal(sigbuf_count(b), 2);

    uint8_t *buf;
    size_t len;
    assert_int_equal(sigbuf_encode(b, AGENT, 7, &buf, &len), 0);
    Vigil__Envelope *env = NULL;
    assert_int_equal(vg_envelope_decode(buf, len, &env, NULL), VG_DECODE_OK);
    assert_int_equal(env->seq, 7);
    assert_int_equal(env->signals->n_signals, 2);
    Vigil__Signal *s = env->signals->signals[0];
    assert_string_equal(s->name, "host.disk.used_pct");
    assert_true(s->value == 81.5);
    assert_int_equal(s->state, VIGIL__SIGNAL_STATE__SIGNAL_STATE_WARNING);
    assert_int_equal(s->n_labels, 2);
    assert_string_equal(s->labels[0]->value, "/var/lib");
    assert_string_equal(s->labels[1]->key, "fstype");
    assert_int_equal(env->signals->signals[1]->n_labels, 0);
    vg_envelope_free(env);
    free(buf);

    sigbuf_clear(b);
    assert_int_equal(sigbuf_count(b), 0);
    sigbuf_destroy(&b);
    assert_null(b);
}

static void test_bounds(void **unused)
{
    (void)unused;
    sigbuf_t *b = sigbuf_new();
    char long_value[VG_MAX_VALUE_LEN + 2];
    memset(long_value, 'x', sizeof(long_value) - 1);
    long_value[sizeof(long_value) - 1] = '\0';
    struct sig_label bad[] = {{"path", long_value}};
    assert_int_equal(sigbuf_add(b, "log.match_rate", 1, "", 0, 0, bad, 1), -E2BIG);
    /* A refused sample leaves nothing half-added behind. */
    assert_int_equal(sigbuf_count(b), 0);
    assert_int_equal(sigbuf_add(b, "ok", 1, "", 0, 0, NULL, 0), 0);
    uint8_t *buf;
    size_t len;
    assert_int_equal(sigbuf_encode(b, AGENT, 1, &buf, &len), 0);
    Vigil__Envelope *env = NULL;
    assert_int_equal(vg_envelope_decode(buf, len, &env, NULL), VG_DECODE_OK);
    assert_int_equal(env->signals->n_signals, 1);
    assert_string_equal(env->signals->signals[0]->name, "ok");
    vg_envelope_free(env);
    free(buf);
    sigbuf_destroy(&b);
}

/* A mount point's raw bytes (not UTF-8) travel escaped, so the store can take the record. */
static void test_invalid_utf8_is_escaped(void **unused)
{
    (void)unused;
    sigbuf_t *b = sigbuf_new();
    struct sig_label bad[] = {{"mount", "/mnt/bad\xff"}, {"fstype", "ext4"}};
    struct sig_label good[] = {{"mount", "/mnt/caf\xc3\xa9"}};
    assert_int_equal(sigbuf_add(b, "host.disk.used_pct", 1, "percent", 1000, 0, bad, 2), 0);
    assert_int_equal(sigbuf_escaped(b), 1);
    assert_int_equal(sigbuf_add(b, "host.disk.used_pct", 2, "percent", 1000, 0, good, 1), 0);
    assert_int_equal(sigbuf_escaped(b), 1); /* valid UTF-8 is left alone */

    uint8_t *buf;
    size_t len;
    assert_int_equal(sigbuf_encode(b, "ag-0123456789abcdef", 1, &buf, &len), 0);
    Vigil__Envelope *env = NULL;
    assert_int_equal(vg_envelope_decode(buf, len, &env, NULL), VG_DECODE_OK);
    assert_string_equal(env->signals->signals[0]->labels[0]->value, "/mnt/bad\\xff");
    assert_string_equal(env->signals->signals[1]->labels[0]->value, "/mnt/caf\xc3\xa9");
    vg_envelope_free(env);
    free(buf);

    sigbuf_clear(b);
    assert_int_equal(sigbuf_escaped(b), 1); /* a count since start, not per batch */
    sigbuf_destroy(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_invalid_utf8_is_escaped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
