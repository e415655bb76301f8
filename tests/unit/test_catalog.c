/*
 * coordinator/ingest/catalog: an agent's declared actions (Enroll.actions) are hostile input.
 * Valid entries become the registry's actions and the stored JSON; an entry with a bad name,
 * mode or parameter, a repeated name, or one past the bound is skipped and counted, never
 * fatal to the enrollment.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "catalog.h"

static Vigil__ActionInfo *action(const char *name, const char *mode, char **params, size_t n)
{
    Vigil__ActionInfo *a = calloc(1, sizeof(*a));
    assert_non_null(a);
    vigil__action_info__init(a);
    a->name = (char *)name;
    a->kind = "exec";
    a->mode = (char *)mode;
    a->params = params;
    a->n_params = n;
    a->inverse = "";
    return a;
}

static void test_valid_catalog(void **state)
{
    (void)state;
    char *params[] = {"unit", "lines"};
    Vigil__ActionInfo *list[] = {action("restart-app", "approve", params, 2),
                                 action("isolate-node", "destructive", NULL, 0)};
    Vigil__Enroll enroll = VIGIL__ENROLL__INIT;
    enroll.actions = list;
    enroll.n_actions = 2;
    struct agent_action *out = NULL;
    size_t n = 0, skipped = 9;
    char *json = NULL;
    assert_int_equal(catalog_from_enroll(&enroll, &out, &n, &json, &skipped), 0);
    assert_int_equal(n, 2);
    assert_int_equal(skipped, 0);
    assert_string_equal(out[0].name, "restart-app");
    assert_int_equal(out[0].mode, VG_ACTION_MODE_APPROVE);
    assert_string_equal(out[0].params, "unit,lines");
    assert_int_equal(out[1].mode, VG_ACTION_MODE_DESTRUCTIVE);

    json_error_t jerr;
    json_t *doc = json_loads(json, 0, &jerr);
    assert_true(json_is_array(doc));
    assert_string_equal(json_string_value(json_object_get(json_array_get(doc, 0), "mode")),
                        "approve");
    assert_int_equal(json_array_size(json_object_get(json_array_get(doc, 0), "params")), 2);
    json_decref(doc);

    struct agent agent = {0};
    assert_false(catalog_equal(&agent, out, n));
    assert_int_equal(registry_agent_set_actions(&agent, out, n), 0);
    assert_true(catalog_equal(&agent, out, n));
    assert_non_null(agent_action_find(&agent, "isolate-node"));
    assert_null(agent_action_find(&agent, "isolate"));
    out[1].mode = VG_ACTION_MODE_AUTO; /* a node that lowers a mode is a change */
    assert_false(catalog_equal(&agent, out, n));
    free(agent.actions);
    free(out);
    free(json);
    free(list[0]);
    free(list[1]);
}

static void test_hostile_entries_skipped(void **state)
{
    (void)state;
    char *bad_param[] = {"Unit; rm -rf /"};
    char *long_param[] = {"p23456789012345678901234567890123"}; /* 33 bytes */
    char long_name[200];
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    Vigil__ActionInfo *list[] = {
        action("ok", "auto", NULL, 0),
        action("", "auto", NULL, 0),
        action("x y", "approve", NULL, 0),
        action("../../etc", "approve", NULL, 0),
        action(long_name, "approve", NULL, 0),
        action("mode", "root", NULL, 0),
        action("mode2", NULL, NULL, 0),
        action("param", "approve", bad_param, 1),
        action("param2", "approve", long_param, 1),
        action("ok", "destructive", NULL, 0), /* a name twice: the first counts */
    };
    size_t given = sizeof(list) / sizeof(list[0]);
    Vigil__Enroll enroll = VIGIL__ENROLL__INIT;
    enroll.actions = list;
    enroll.n_actions = given;
    struct agent_action *out = NULL;
    size_t n = 0, skipped = 0;
    char *json = NULL;
    assert_int_equal(catalog_from_enroll(&enroll, &out, &n, &json, &skipped), 0);
    assert_int_equal(n, 1);
    assert_int_equal(skipped, given - 1);
    assert_string_equal(out[0].name, "ok");
    assert_int_equal(out[0].mode, VG_ACTION_MODE_AUTO);
    free(out);
    free(json);
    for (size_t i = 0; i < given; i++)
        free(list[i]);
}

static void test_bounded(void **state)
{
    (void)state;
    size_t given = AGENT_ACTIONS_MAX + 10;
    Vigil__ActionInfo **list = calloc(given, sizeof(Vigil__ActionInfo *));
    char(*names)[16] = calloc(given, sizeof(*names));
    assert_non_null(list);
    assert_non_null(names);
    for (size_t i = 0; i < given; i++) {
        snprintf(names[i], sizeof(names[i]), "a%zu", i);
        list[i] = action(names[i], "approve", NULL, 0);
    }
    Vigil__Enroll enroll = VIGIL__ENROLL__INIT;
    enroll.actions = list;
    enroll.n_actions = given;
    struct agent_action *out = NULL;
    size_t n = 0, skipped = 0;
    char *json = NULL;
    assert_int_equal(catalog_from_enroll(&enroll, &out, &n, &json, &skipped), 0);
    assert_int_equal(n, AGENT_ACTIONS_MAX);
    assert_int_equal(skipped, 10);
    free(out);
    free(json);
    for (size_t i = 0; i < given; i++)
        free(list[i]);
    free(list);
    free(names);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_catalog),
        cmocka_unit_test(test_hostile_entries_skipped),
        cmocka_unit_test(test_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
