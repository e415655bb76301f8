/* Silences: which incidents a silence matches, and which --match texts are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "runbook.h"
#include "silence.h"

static struct store_incident incident(const char *runbook, const char *node, const char *scope,
                                      int severity)
{
    struct store_incident inc;
    memset(&inc, 0, sizeof(inc));
    snprintf(inc.runbook, sizeof(inc.runbook), "%s", runbook);
    snprintf(inc.fingerprint, sizeof(inc.fingerprint), "%s/%s", runbook, node);
    snprintf(inc.scope_json, sizeof(inc.scope_json), "%s", scope);
    inc.severity = severity;
    return inc;
}

static struct store_silence silence(enum store_silence_matcher m, const char *value)
{
    struct store_silence s;
    memset(&s, 0, sizeof(s));
    s.id = 1;
    s.matcher = m;
    snprintf(s.value, sizeof(s.value), "%s", value);
    return s;
}

static void test_runbook_and_node(void **unused)
{
    (void)unused;
    struct store_incident per_node = incident("node-lost", "web-1", "[\"web-1\"]", 3);
    struct store_incident across = incident("app-down", "", "[\"web-1\", \"web-2\"]", 2);
    struct store_incident across_one = incident("app-down", "", "[\"web-1\"]", 2);
    struct store_silence rb = silence(STORE_SILENCE_RUNBOOK, "node-lost");
    struct store_silence node = silence(STORE_SILENCE_NODE, "web-1");

    assert_non_null(silence_match(&rb, 1, &per_node, NULL));
    assert_null(silence_match(&rb, 1, &across, NULL));
    assert_non_null(silence_match(&node, 1, &per_node, NULL));
    /* One node in maintenance does not hide an outage that spans others. */
    assert_null(silence_match(&node, 1, &across, NULL));
    assert_non_null(silence_match(&node, 1, &across_one, NULL));
    struct store_silence other = silence(STORE_SILENCE_NODE, "web-10");
    assert_null(silence_match(&other, 1, &per_node, NULL));
    /* The first that matches is named. */
    struct store_silence both[] = {other, node};
    both[1].id = 2;
    const struct store_silence *hit = silence_match(both, 2, &per_node, NULL);
    assert_non_null(hit);
    assert_int_equal(hit->id, 2);
    assert_null(silence_match(NULL, 0, &per_node, NULL));
}

static void test_labels(void **unused)
{
    (void)unused;
    struct rb_label labels[] = {{.key = "name", .value = "nginx"}};
    struct rb_symptom symptoms[] = {
        {.id = "down",
         .cond = {.kind = RB_COND_THRESHOLD,
                  .match = {.signal = "proc.up", .labels = labels, .nlabels = 1}}}};
    struct rb_runbook rb = {.id = "app-down", .symptoms = symptoms, .nsymptoms = 1};
    struct store_incident inc = incident("app-down", "web-1", "[\"web-1\"]", 2);

    struct store_silence name = silence(STORE_SILENCE_LABEL, "name=nginx");
    assert_non_null(silence_match(&name, 1, &inc, &rb));
    assert_null(silence_match(&name, 1, &inc, NULL));
    struct store_silence other = silence(STORE_SILENCE_LABEL, "name=redis");
    assert_null(silence_match(&other, 1, &inc, &rb));
    struct store_silence prefix = silence(STORE_SILENCE_LABEL, "nam=nginx");
    assert_null(silence_match(&prefix, 1, &inc, &rb));
    struct store_silence sev2 = silence(STORE_SILENCE_LABEL, "severity=SEV2");
    struct store_silence sev1 = silence(STORE_SILENCE_LABEL, "severity=SEV1");
    assert_non_null(silence_match(&sev2, 1, &inc, &rb));
    assert_null(silence_match(&sev1, 1, &inc, &rb));
}

static void test_match_text(void **unused)
{
    (void)unused;
    assert_true(silence_label_valid("name=nginx"));
    assert_true(silence_label_valid("severity=SEV3"));
    assert_true(silence_label_valid("k8s.pod-name_x=a b/c"));
    assert_false(silence_label_valid(NULL));
    assert_false(silence_label_valid("name"));
    assert_false(silence_label_valid("=nginx"));
    assert_false(silence_label_valid("name="));
    assert_false(silence_label_valid("na me=x"));
    assert_false(silence_label_valid("name=a\nb"));
    assert_false(silence_label_valid("severity=SEV5"));
    assert_false(silence_label_valid("severity=sev1"));
    char long_key[80], long_value[300];
    memset(long_key, 'k', sizeof(long_key));
    snprintf(long_key + 65, sizeof(long_key) - 65, "=v");
    assert_false(silence_label_valid(long_key));
    memset(long_value, 'v', sizeof(long_value));
    memcpy(long_value, "k=", 2);
    long_value[sizeof(long_value) - 1] = '\0';
    assert_false(silence_label_valid(long_value));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runbook_and_node),
        cmocka_unit_test(test_labels),
        cmocka_unit_test(test_match_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
