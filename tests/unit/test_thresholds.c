/* Alert thresholds: levels, hysteresis, direction, crossings reported once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "thresholds.h"

#define OK VIGIL__SIGNAL_STATE__SIGNAL_STATE_OK
#define WARNING VIGIL__SIGNAL_STATE__SIGNAL_STATE_WARNING
#define CRITICAL VIGIL__SIGNAL_STATE__SIGNAL_STATE_CRITICAL
#define NONE VIGIL__SIGNAL_STATE__SIGNAL_STATE_NONE

static const struct threshold_rule rules[] = {
    {"host.cpu.busy_pct", 80, 95, 5, false},
    {"redis.hit_rate", 0.9, 0.5, 0.05, true},
};

static void expect(thresholds_t *t, const char *name, const char *key, double v,
                   Vigil__SignalState state, bool changed)
{
    bool c;
    assert_int_equal(thresholds_eval(t, name, key, v, &c), state);
    assert_int_equal(c, changed);
}

static void test_cpu_levels_and_hysteresis(void **unused)
{
    (void)unused;
    thresholds_t *t = thresholds_new(rules, 2);
    const char *cpu = "host.cpu.busy_pct";
    expect(t, cpu, cpu, 50, OK, false);
    expect(t, cpu, cpu, 80, WARNING, true);  /* at the line: warning */
    expect(t, cpu, cpu, 79, WARNING, false); /* hovering under it: still warning */
    expect(t, cpu, cpu, 76, WARNING, false);
    expect(t, cpu, cpu, 74.9, OK, true);      /* cleared only below 75 */
    expect(t, cpu, cpu, 96, CRITICAL, true);  /* straight to critical */
    expect(t, cpu, cpu, 92, CRITICAL, false); /* above 90: stays critical */
    expect(t, cpu, cpu, 89, WARNING, true);   /* below 90 but above 75: warning */
    expect(t, cpu, cpu, 10, OK, true);
    thresholds_destroy(&t);
    assert_null(t);
}

static void test_series_are_independent(void **unused)
{
    (void)unused;
    thresholds_t *t = thresholds_new(rules, 2);
    expect(t, "host.cpu.busy_pct", "host.cpu.busy_pct{cpu=0}", 85, WARNING, true);
    expect(t, "host.cpu.busy_pct", "host.cpu.busy_pct{cpu=1}", 10, OK, false);
    expect(t, "host.cpu.busy_pct", "host.cpu.busy_pct{cpu=0}", 85, WARNING, false);
    thresholds_destroy(&t);
}

static void test_lower_is_worse(void **unused)
{
    (void)unused;
    thresholds_t *t = thresholds_new(rules, 2);
    const char *hr = "redis.hit_rate";
    expect(t, hr, hr, 0.99, OK, false);
    expect(t, hr, hr, 0.9, WARNING, true);
    expect(t, hr, hr, 0.93, WARNING, false); /* needs to rise above 0.95 */
    expect(t, hr, hr, 0.4, CRITICAL, true);
    expect(t, hr, hr, 0.96, OK, true);
    thresholds_destroy(&t);
}

static void test_signal_without_rule(void **unused)
{
    (void)unused;
    thresholds_t *t = thresholds_new(rules, 2);
    expect(t, "host.load.1m", "host.load.1m", 1e9, NONE, false);
    assert_null(thresholds_rule(t, "host.load.1m"));
    assert_non_null(thresholds_rule(t, "redis.hit_rate"));
    thresholds_destroy(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpu_levels_and_hysteresis),
        cmocka_unit_test(test_series_are_independent),
        cmocka_unit_test(test_lower_is_worse),
        cmocka_unit_test(test_signal_without_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
