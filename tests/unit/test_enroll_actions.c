/*
 * The catalog an Enroll declares (Enroll.actions, ActionInfo) within the wire's bounds
 * (common/wire.c): at most 256 actions, each named like a command's action, a kind and a mode of
 * at most 32 bytes, at most 32 parameter names, an inverse that is empty or a name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wire.h"

#define ACTIONS 300

static Vigil__ActionInfo infos[ACTIONS];
static Vigil__ActionInfo *info_ptrs[ACTIONS];
static char *params[] = {"unit", "delay"};

/* Encodes an Enroll with the first n actions of infos and decodes it again. */
static enum vg_decode_error round_trip(size_t n, const char **reason)
{
    Vigil__Enroll enroll = VIGIL__ENROLL__INIT;
    Vigil__Envelope env;
    Vigil__Envelope *back = NULL;
    uint8_t *buf;
    size_t len;

    enroll.node = "node-a";
    enroll.agent_version = "0.1.0";
    enroll.n_actions = n;
    enroll.actions = info_ptrs;
    vg_envelope_init(&env, "ag-0123456789abcdef", 0);
    env.body_case = VIGIL__ENVELOPE__BODY_ENROLL;
    env.enroll = &enroll;
    assert_int_equal(vg_envelope_encode(&env, &buf, &len), 0);
    enum vg_decode_error e = vg_envelope_decode(buf, len, &back, reason);
    free(buf);
    vg_envelope_free(back);
    return e;
}

static int setup(void **state)
{
    (void)state;
    static char names[ACTIONS][16];
    for (size_t i = 0; i < ACTIONS; i++) {
        vigil__action_info__init(&infos[i]);
        snprintf(names[i], sizeof(names[i]), "action-%zu", i);
        infos[i].name = names[i];
        infos[i].kind = "exec";
        infos[i].mode = "auto";
        infos[i].n_params = 2;
        infos[i].params = params;
        info_ptrs[i] = &infos[i];
    }
    return 0;
}

static void test_catalog_within_bounds(void **state)
{
    (void)state;
    const char *why = NULL;
    assert_int_equal(round_trip(0, &why), VG_DECODE_OK);
    assert_int_equal(round_trip(256, &why), VG_DECODE_OK);
    infos[0].inverse = "action-1";
    assert_int_equal(round_trip(2, &why), VG_DECODE_OK);
    infos[0].inverse = "";
}

static void test_catalog_out_of_bounds(void **state)
{
    (void)state;
    const char *why = NULL;
    char long_word[40];
    char *many_params[33];

    assert_int_equal(round_trip(257, &why), VG_DECODE_LIMITS);
    assert_string_equal(why, "enroll: more than 256 actions");

    infos[1].name = "x; rm -rf /";
    assert_int_equal(round_trip(2, &why), VG_DECODE_LIMITS);
    infos[1].name = "";
    assert_int_equal(round_trip(2, &why), VG_DECODE_LIMITS);
    infos[1].name = "action-1";

    infos[1].inverse = "../../etc";
    assert_int_equal(round_trip(2, &why), VG_DECODE_LIMITS);
    infos[1].inverse = "";

    memset(long_word, 'a', sizeof(long_word) - 1);
    long_word[sizeof(long_word) - 1] = '\0';
    infos[1].kind = long_word;
    assert_int_equal(round_trip(2, &why), VG_DECODE_LIMITS);
    infos[1].kind = "exec";
    infos[1].mode = "";
    assert_int_equal(round_trip(2, &why), VG_DECODE_LIMITS);
    infos[1].mode = "auto";

    for (size_t i = 0; i < 33; i++)
        many_params[i] = "p";
    infos[1].n_params = 33;
    infos[1].params = many_params;
    assert_int_equal(round_trip(2, &why), VG_DECODE_LIMITS);
    infos[1].n_params = 1;
    many_params[0] = "";
    assert_int_equal(round_trip(2, &why), VG_DECODE_LIMITS);
    infos[1].n_params = 2;
    infos[1].params = params;

    assert_int_equal(round_trip(2, &why), VG_DECODE_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catalog_within_bounds),
        cmocka_unit_test(test_catalog_out_of_bounds),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
