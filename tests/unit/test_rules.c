/* Rule evaluation: levels, `for`, hysteresis, scope, ratios, absence, PromQL, reload, bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rules.h"
#include "runbook_load.h"

#define S(x) ((char *)(x))

static struct rb_label app_label[] = {{S("target"), S("app")}};
static struct rb_label class_5xx[] = {{S("class"), S("5xx")}};

/* A set of one runbook "rb" (SEV3) with one symptom "s". */
struct fixture {
    struct rb_symptom sym;
    struct rb_runbook rb;
    struct rb_set set;
};

static void fixture_init(struct fixture *f, struct rb_condition cond)
{
    memset(f, 0, sizeof *f);
    f->sym.id = S("s");
    f->sym.cond = cond;
    f->rb.id = S("rb");
    f->rb.severity = RB_SEV3;
    f->rb.symptoms = &f->sym;
    f->rb.nsymptoms = 1;
    f->set.runbooks = &f->rb;
    f->set.n = 1;
}

static struct rb_condition threshold(const char *signal, enum rb_op op, double warning,
                                     double critical, double clear, int64_t for_ms,
                                     enum rb_scope_kind scope)
{
    struct rb_condition c = {.kind = RB_COND_THRESHOLD};
    c.match.signal = S(signal);
    c.op = op;
    c.warning = warning;
    c.critical = critical;
    c.clear = clear;
    c.for_ms = for_ms;
    c.scope.kind = scope;
    return c;
}

static void put(rules_t *r, const char *node, const char *name, double v, int64_t ts)
{
    rules_observe(r, node, name, NULL, 0, v, ts);
}

static void put_app(rules_t *r, const char *node, double v, int64_t ts)
{
    rules_observe(r, node, "http.up", app_label, 1, v, ts);
}

static const char cpu[] = "host.cpu.busy_pct";

static void test_levels_and_ops(void **unused)
{
    (void)unused;
    struct fixture f;
    fixture_init(&f, threshold(cpu, RB_OP_GT, 80, 95, NAN, 0, RB_SCOPE_NODE));
    rules_t *r = rules_new(&f.set, NULL);
    assert_non_null(r);
    const struct rule_event *ev;

    put(r, "n1", cpu, 50, 1000);
    assert_int_equal(rules_evaluate(r, 1000, &ev), 0);
    put(r, "n1", cpu, 80, 2000); /* GT: at the line is not above it */
    assert_int_equal(rules_evaluate(r, 2000, &ev), 0);
    put(r, "n1", cpu, 85, 3000);
    assert_int_equal(rules_evaluate(r, 3000, &ev), 1);
    assert_int_equal(ev[0].state, RULE_WARNING);
    assert_int_equal(ev[0].previous, RULE_OK);
    assert_string_equal(ev[0].fingerprint, "rb/s/n1");
    assert_string_equal(ev[0].node, "n1");
    assert_int_equal(ev[0].severity, RB_SEV3); /* the runbook's: the symptom sets none */
    assert_true(ev[0].value == 85);
    assert_ptr_equal(ev[0].symptom, &f.sym);
    assert_ptr_equal(ev[0].runbook, &f.rb);
    assert_string_equal(ev[0].reason, "host.cpu.busy_pct = 85 above 80 on node n1");
    assert_int_equal(ev[0].since_ms, 3000);
    assert_int_equal(rules_evaluate(r, 4000, &ev), 0); /* nothing changed: nothing said */
    put(r, "n1", cpu, 96, 5000);
    assert_int_equal(rules_evaluate(r, 5000, &ev), 1);
    assert_int_equal(ev[0].state, RULE_CRITICAL);
    assert_int_equal(ev[0].previous, RULE_WARNING);
    assert_int_equal(ev[0].since_ms, 3000); /* it has held since the warning */
    put(r, "n1", cpu, 10, 6000);
    assert_int_equal(rules_evaluate(r, 6000, &ev), 1);
    assert_int_equal(ev[0].state, RULE_OK);
    assert_int_equal(ev[0].previous, RULE_CRITICAL);
    rules_destroy(&r);
    assert_null(r);

    /* Lower is worse; no critical level: never critical. GE/LE fire at the line. */
    fixture_init(&f, threshold("http.up", RB_OP_LT, 1, NAN, NAN, 0, RB_SCOPE_NODE));
    r = rules_new(&f.set, NULL);
    put(r, "n1", "http.up", -100, 1000);
    assert_int_equal(rules_evaluate(r, 1000, &ev), 1);
    assert_int_equal(ev[0].state, RULE_WARNING);
    rules_destroy(&r);

    fixture_init(&f, threshold(cpu, RB_OP_GE, 80, NAN, NAN, 0, RB_SCOPE_NODE));
    r = rules_new(&f.set, NULL);
    put(r, "n1", cpu, 80, 1000);
    assert_int_equal(rules_evaluate(r, 1000, &ev), 1);
    rules_destroy(&r);

    fixture_init(&f, threshold("redis.hit_rate", RB_OP_LE, 0.9, 0.5, NAN, 0, RB_SCOPE_NODE));
    r = rules_new(&f.set, NULL);
    put(r, "n1", "redis.hit_rate", 0.5, 1000);
    assert_int_equal(rules_evaluate(r, 1000, &ev), 1);
    assert_int_equal(ev[0].state, RULE_CRITICAL);
    assert_string_equal(ev[0].reason, "redis.hit_rate = 0.5 at most 0.5 on node n1");
    rules_destroy(&r);
}

static void test_worst_series_of_a_node(void **unused)
{
    (void)unused;
    struct fixture f;
    fixture_init(&f, threshold(cpu, RB_OP_GT, 80, NAN, NAN, 0, RB_SCOPE_NODE));
    rules_t *r = rules_new(&f.set, NULL);
    const struct rule_event *ev;
    struct rb_label cpu0[] = {{S("cpu"), S("0")}}, cpu1[] = {{S("cpu"), S("1")}};
    rules_observe(r, "n1", cpu, cpu0, 1, 90, 1000);
    rules_observe(r, "n1", cpu, cpu1, 1, 10, 1000);
    assert_int_equal(rules_evaluate(r, 1000, &ev), 1);
    assert_true(ev[0].value == 90);
    rules_observe(r, "n1", cpu, cpu0, 1, 20, 2000);
    rules_observe(r, "n1", cpu, cpu1, 1, 10, 500); /* late, older: ignored */
    assert_int_equal(rules_evaluate(r, 2000, &ev), 1);
    assert_int_equal(ev[0].state, RULE_OK);
    rules_destroy(&r);
}

static void test_for_needs_continuous_hold(void **unused)
{
    (void)unused;
    struct fixture f;
    fixture_init(&f, threshold(cpu, RB_OP_GT, 80, 95, NAN, 10000, RB_SCOPE_NODE));
    rules_t *r = rules_new(&f.set, NULL);
    const struct rule_event *ev;
    put(r, "n1", cpu, 85, 0);
    assert_int_equal(rules_evaluate(r, 0, &ev), 0);
    assert_int_equal(rules_evaluate(r, 5000, &ev), 0);
    put(r, "n1", cpu, 70, 6000); /* a dip resets it */
    assert_int_equal(rules_evaluate(r, 6000, &ev), 0);
    put(r, "n1", cpu, 85, 7000);
    assert_int_equal(rules_evaluate(r, 7000, &ev), 0);
    assert_int_equal(rules_evaluate(r, 12000, &ev), 0); /* 10 s since 0, only 5 since 7 */
    assert_int_equal(rules_evaluate(r, 16999, &ev), 0);
    assert_int_equal(rules_evaluate(r, 17000, &ev), 1);
    assert_int_equal(ev[0].state, RULE_WARNING);
    assert_int_equal(ev[0].since_ms, 7000);
    assert_string_equal(ev[0].reason, "host.cpu.busy_pct = 85 above 80 for 10s on node n1");
    /* Critical needs its own 10 s. */
    put(r, "n1", cpu, 99, 18000);
    assert_int_equal(rules_evaluate(r, 18000, &ev), 0);
    assert_int_equal(rules_evaluate(r, 28000, &ev), 1);
    assert_int_equal(ev[0].state, RULE_CRITICAL);
    /* Falling is at once. */
    put(r, "n1", cpu, 10, 29000);
    assert_int_equal(rules_evaluate(r, 29000, &ev), 1);
    assert_int_equal(ev[0].state, RULE_OK);
    rules_destroy(&r);
}

/* Across nodes, `for` applies to the combined verdict: nodes taking turns do not reset it. */
static void test_for_across_nodes(void **unused)
{
    (void)unused;
    struct fixture f;
    fixture_init(&f, threshold("http.up", RB_OP_LT, 1, NAN, NAN, 10000, RB_SCOPE_ANY));
    rules_t *r = rules_new(&f.set, NULL);
    const struct rule_event *ev;
    put(r, "n1", "http.up", 0, 0);
    put(r, "n2", "http.up", 1, 0);
    assert_int_equal(rules_evaluate(r, 0, &ev), 0);
    put(r, "n1", "http.up", 1, 5000);
    put(r, "n2", "http.up", 0, 5000);
    assert_int_equal(rules_evaluate(r, 5000, &ev), 0);
    assert_int_equal(rules_evaluate(r, 10000, &ev), 1);
    assert_int_equal(ev[0].since_ms, 0);
    assert_string_equal(ev[0].reason, "http.up = 0 below 1 for 10s on 1 of 2 nodes");
    rules_destroy(&r);
}

static void test_hysteresis_does_not_flap(void **unused)
{
    (void)unused;
    struct fixture f;
    fixture_init(&f, threshold(cpu, RB_OP_GT, 80, 95, 75, 0, RB_SCOPE_NODE));
    rules_t *r = rules_new(&f.set, NULL);
    const struct rule_event *ev;
    const double hover[] = {79, 81, 79.5, 80.5, 79, 80.2, 76, 75, 79.9, 80.1};
    size_t transitions = 0;
    int64_t t = 0;
    for (size_t i = 0; i < sizeof hover / sizeof hover[0]; i++, t += 1000) {
        put(r, "n1", cpu, hover[i], t);
        size_t n = rules_evaluate(r, t, &ev);
        if (n) {
            assert_int_equal(ev[0].state, RULE_WARNING);
            assert_true(ev[0].value == 81);
        }
        transitions += n;
    }
    assert_int_equal(transitions, 1);
    put(r, "n1", cpu, 74.9, t);
    assert_int_equal(rules_evaluate(r, t, &ev), 1);
    assert_int_equal(ev[0].state, RULE_OK);
    assert_string_equal(ev[0].reason, "host.cpu.busy_pct = 74.9, back past 75 on node n1");
    /* Back under the line but above clear: not firing again until above 80. */
    put(r, "n1", cpu, 79, t + 1000);
    assert_int_equal(rules_evaluate(r, t + 1000, &ev), 0);
    /* Critical clears 5 below 95 (the same gap as warning/clear). */
    put(r, "n1", cpu, 96, t + 2000);
    assert_int_equal(rules_evaluate(r, t + 2000, &ev), 1);
    assert_int_equal(ev[0].state, RULE_CRITICAL);
    put(r, "n1", cpu, 91, t + 3000);
    assert_int_equal(rules_evaluate(r, t + 3000, &ev), 0);
    put(r, "n1", cpu, 89, t + 4000);
    assert_int_equal(rules_evaluate(r, t + 4000, &ev), 1);
    assert_int_equal(ev[0].state, RULE_WARNING);
    rules_destroy(&r);
}

static void test_scope_node_fingerprints(void **unused)
{
    (void)unused;
    struct fixture f;
    fixture_init(&f, threshold(cpu, RB_OP_GT, 80, NAN, NAN, 0, RB_SCOPE_NODE));
    rules_t *r = rules_new(&f.set, NULL);
    const struct rule_event *ev;
    put(r, "n1", cpu, 90, 0);
    put(r, "n2", cpu, 91, 0);
    put(r, "n3", cpu, 10, 0);
    assert_int_equal(rules_evaluate(r, 0, &ev), 2);
    assert_string_equal(ev[0].fingerprint, "rb/s/n1");
    assert_string_equal(ev[1].fingerprint, "rb/s/n2");
    assert_int_equal(ev[0].nodes_firing, 2);
    assert_int_equal(ev[0].nodes_total, 3);
    put(r, "n2", cpu, 10, 1000);
    assert_int_equal(rules_evaluate(r, 1000, &ev), 1);
    assert_string_equal(ev[0].fingerprint, "rb/s/n2");
    assert_int_equal(ev[0].state, RULE_OK);
    /* A node that is lost: no data, its per-node instance returns to OK. */
    rules_node_down(r, "n1", 2000);
    assert_int_equal(rules_evaluate(r, 2000, &ev), 1);
    assert_string_equal(ev[0].fingerprint, "rb/s/n1");
    assert_int_equal(ev[0].state, RULE_OK);
    assert_true(isnan(ev[0].value));
    assert_string_equal(ev[0].reason, "host.cpu.busy_pct: no data on node n1");
    rules_destroy(&r);
}

/* Per-node incidents rise to severity_all when every reporting node holds. */
static void test_scope_node_severity_all(void **unused)
{
    (void)unused;
    struct fixture f;
    fixture_init(&f, threshold(cpu, RB_OP_GT, 80, NAN, NAN, 0, RB_SCOPE_NODE));
    f.sym.severity_all = RB_SEV2;
    rules_t *r = rules_new(&f.set, NULL);
    const struct rule_event *ev;
    put(r, "n1", cpu, 90, 0);
    put(r, "n2", cpu, 10, 0);
    assert_int_equal(rules_evaluate(r, 0, &ev), 1);
    assert_int_equal(ev[0].severity, RB_SEV3);
    put(r, "n2", cpu, 90, 1000);
    assert_int_equal(rules_evaluate(r, 1000, &ev), 2);
    assert_string_equal(ev[0].fingerprint, "rb/s/n1"); /* same state, severity rose */
    assert_int_equal(ev[0].state, RULE_WARNING);
    assert_int_equal(ev[0].previous, RULE_WARNING);
    assert_int_equal(ev[0].severity, RB_SEV2);
    assert_int_equal(ev[0].previous_severity, RB_SEV3);
    assert_string_equal(ev[1].fingerprint, "rb/s/n2");
    assert_int_equal(ev[1].severity, RB_SEV2);
    put(r, "n2", cpu, 10, 2000); /* back to some nodes: severity falls, reported too */
    assert_int_equal(rules_evaluate(r, 2000, &ev), 2);
    assert_int_equal(ev[0].severity, RB_SEV3);
    assert_int_equal(ev[1].state, RULE_OK);
    rules_destroy(&r);
}

static void test_scope_any_grows_to_all(void **unused)
{
    (void)unused;
    struct fixture f;
    fixture_init(&f, threshold("http.up", RB_OP_LT, 1, NAN, NAN, 0, RB_SCOPE_ANY));
    f.sym.cond.match.labels = app_label;
    f.sym.cond.match.nlabels = 1;
    f.sym.severity = RB_SEV2;
    f.sym.severity_all = RB_SEV1;
    rules_t *r = rules_new(&f.set, NULL);
    const struct rule_event *ev;
    for (int i = 1; i <= 3; i++) {
        char node[8];
        snprintf(node, sizeof node, "n%d", i);
        rules_node_up(r, node, 0);
        put_app(r, node, 1, 0);
    }
    assert_int_equal(rules_evaluate(r, 0, &ev), 0);
    put_app(r, "n2", 0, 1000);
    rules_observe(r, "n1", "http.up", NULL, 0, 0, 1000); /* no target label: not this series */
    assert_int_equal(rules_evaluate(r, 1000, &ev), 1);
    assert_int_equal(ev[0].state, RULE_WARNING);
    assert_int_equal(ev[0].severity, RB_SEV2);
    assert_string_equal(ev[0].fingerprint, "rb/s/");
    assert_string_equal(ev[0].node, "");
    assert_int_equal(ev[0].nodes_firing, 1);
    assert_int_equal(ev[0].nodes_total, 3);
    assert_string_equal(ev[0].reason, "http.up{target=app} = 0 below 1 on 1 of 3 nodes");
    /* Extra labels on the sample are fine. */
    struct rb_label extra[] = {{S("url"), S("http://x/health")}, {S("target"), S("app")}};
    rules_observe(r, "n1", "http.up", extra, 2, 0, 2000);
    put_app(r, "n3", 0, 2000);
    assert_int_equal(rules_evaluate(r, 2000, &ev), 1); /* same level, severity rises */
    assert_int_equal(ev[0].state, RULE_WARNING);
    assert_int_equal(ev[0].previous, RULE_WARNING);
    assert_int_equal(ev[0].severity, RB_SEV1);
    assert_int_equal(ev[0].previous_severity, RB_SEV2);
    assert_string_equal(ev[0].reason, "http.up{target=app} = 0 below 1 on 3 of 3 nodes");
    assert_int_equal(rules_evaluate(r, 3000, &ev), 0);
    put_app(r, "n1", 1, 4000);
    put_app(r, "n2", 1, 4000);
    put_app(r, "n3", 1, 4000);
    rules_observe(r, "n1", "http.up", extra, 2, 1, 4000);
    assert_int_equal(rules_evaluate(r, 4000, &ev), 1);
    assert_int_equal(ev[0].state, RULE_OK);
    rules_destroy(&r);
}

static void test_scope_all_and_fraction(void **unused)
{
    (void)unused;
    struct fixture f;
    fixture_init(&f, threshold("http.up", RB_OP_LT, 1, NAN, NAN, 0, RB_SCOPE_ALL));
    rules_t *r = rules_new(&f.set, NULL);
    const struct rule_event *ev;
    rules_node_up(r, "quiet", 0); /* up, never reports http.up: not counted */
    put(r, "n1", "http.up", 0, 0);
    put(r, "n2", "http.up", 0, 0);
    put(r, "n3", "http.up", 1, 0);
    assert_int_equal(rules_evaluate(r, 0, &ev), 0); /* 2 of 3 is not all */
    put(r, "n3", "http.up", 0, 1000);
    assert_int_equal(rules_evaluate(r, 1000, &ev), 1);
    assert_int_equal(ev[0].nodes_firing, 3);
    assert_int_equal(ev[0].nodes_total, 3);
    /* A lost node leaves the count: the others still all fail. */
    rules_node_down(r, "n3", 2000);
    assert_int_equal(rules_evaluate(r, 2000, &ev), 0);
    rules_destroy(&r);

    fixture_init(&f, threshold("http.up", RB_OP_LT, 1, NAN, NAN, 0, RB_SCOPE_FRACTION));
    f.sym.cond.scope.fraction = 0.5;
    r = rules_new(&f.set, NULL);
    put(r, "n1", "http.up", 0, 0);
    put(r, "n2", "http.up", 1, 0);
    put(r, "n3", "http.up", 1, 0);
    assert_int_equal(rules_evaluate(r, 0, &ev), 0); /* 1 of 3 < half */
    put(r, "n2", "http.up", 0, 1000);
    assert_int_equal(rules_evaluate(r, 1000, &ev), 1); /* 2 of 3 >= half */
    assert_int_equal(ev[0].nodes_firing, 2);
    rules_destroy(&r);

    fixture_init(&f, threshold("http.up", RB_OP_LT, 1, NAN, NAN, 0, RB_SCOPE_FRACTION));
    f.sym.cond.scope.fraction = 2.0 / 3.0;
    r = rules_new(&f.set, NULL);
    put(r, "n1", "http.up", 0, 0);
    put(r, "n2", "http.up", 0, 0);
    put(r, "n3", "http.up", 1, 0);
    assert_int_equal(rules_evaluate(r, 0, &ev), 1); /* exactly two thirds */
    rules_destroy(&r);
}

static struct rb_condition error_ratio(enum rb_scope_kind scope)
{
    struct rb_condition c = {.kind = RB_COND_RATIO};
    c.numerator.signal = S("log.http.status");
    c.numerator.labels = class_5xx;
    c.numerator.nlabels = 1;
    c.denominator.signal = S("log.http.requests");
    c.window_ms = 300000;
    c.op = RB_OP_GE;
    c.warning = 5;
    c.critical = 50;
    c.clear = NAN;
    c.scope.kind = scope;
    return c;
}

static void counts(rules_t *r, const char *node, double errors, double requests, int64_t ts)
{
    struct rb_label c5[] = {{S("class"), S("5xx")}}, c2[] = {{S("class"), S("2xx")}};
    rules_observe(r, node, "log.http.status", c5, 1, errors, ts);
    rules_observe(r, node, "log.http.status", c2, 1, requests - errors, ts);
    rules_observe(r, node, "log.http.requests", NULL, 0, requests, ts);
}

static void test_ratio_over_windowed_counts(void **unused)
{
    (void)unused;
    struct fixture f;
    fixture_init(&f, error_ratio(RB_SCOPE_ANY));
    f.sym.severity = RB_SEV2;
    rules_t *r = rules_new(&f.set, NULL);
    const struct rule_event *ev;
    counts(r, "n1", 4, 100, 0);
    counts(r, "n2", 0, 100, 0);
    assert_int_equal(rules_evaluate(r, 0, &ev), 0); /* 4 / 200 = 2 % */
    /* The agents re-send their 60 s window's counts every interval: the same counts again
       must not add up (each series counts with its latest sample). */
    for (int64_t t = 10000; t <= 60000; t += 10000) {
        counts(r, "n1", 4, 100, t);
        counts(r, "n2", 0, 100, t);
        assert_int_equal(rules_evaluate(r, t, &ev), 0);
    }
    counts(r, "n1", 60, 100, 70000);
    assert_int_equal(rules_evaluate(r, 70000, &ev), 1); /* 60 / 200 = 30 % */
    assert_int_equal(ev[0].state, RULE_WARNING);
    assert_true(fabs(ev[0].value - 30) < 1e-9);
    assert_int_equal(ev[0].nodes_total, 2);
    assert_int_equal(ev[0].nodes_firing, 1);
    assert_string_equal(ev[0].reason, "log.http.status{class=5xx} / log.http.requests = 30% "
                                      "at least 5 over 300s on 1 of 2 nodes");
    counts(r, "n2", 50, 100, 80000);
    assert_int_equal(rules_evaluate(r, 80000, &ev), 1); /* 110 / 200 = 55 % */
    assert_int_equal(ev[0].state, RULE_CRITICAL);
    assert_int_equal(ev[0].severity, RB_SEV2);
    /* n2 stops reporting: its counts leave the sum once older than the window. */
    counts(r, "n1", 0, 100, 370000);
    assert_int_equal(rules_evaluate(r, 370000, &ev), 1); /* 0 + 50 / 200 */
    assert_int_equal(ev[0].state, RULE_WARNING);
    assert_true(fabs(ev[0].value - 25) < 1e-9);
    assert_int_equal(rules_evaluate(r, 380001, &ev), 1); /* n2's sample is 300.001 s old */
    assert_int_equal(ev[0].state, RULE_OK);
    assert_true(fabs(ev[0].value - 0) < 1e-9);
    /* No requests in the window at all: no data, stays OK. */
    assert_int_equal(rules_evaluate(r, 2000000, &ev), 0);
    rules_destroy(&r);

    /* Scope node: a ratio per node. */
    fixture_init(&f, error_ratio(RB_SCOPE_NODE));
    r = rules_new(&f.set, NULL);
    counts(r, "n1", 60, 100, 0);
    counts(r, "n2", 0, 1000, 0);
    assert_int_equal(rules_evaluate(r, 0, &ev), 1);
    assert_string_equal(ev[0].fingerprint, "rb/s/n1");
    assert_int_equal(ev[0].state, RULE_CRITICAL);
    assert_true(fabs(ev[0].value - 60) < 1e-9);
    rules_destroy(&r);
}

static void test_absence(void **unused)
{
    (void)unused;
    struct fixture f;
    struct rb_condition c = {.kind = RB_COND_ABSENCE};
    c.match.signal = S("agent.uptime_s");
    c.absent_ms = 30000;
    c.warning = c.critical = c.clear = NAN;
    c.scope.kind = RB_SCOPE_NODE;
    fixture_init(&f, c);
    f.sym.severity = RB_SEV2;
    rules_t *r = rules_new(&f.set, NULL);
    const struct rule_event *ev;
    rules_node_up(r, "n1", 0);
    rules_node_up(r, "n2", 0);
    rules_node_up(r, "n3", 0); /* never beats */
    put(r, "n1", "agent.uptime_s", 1, 0);
    put(r, "n1", "agent.uptime_s", 11, 10000);
    put(r, "n2", "agent.uptime_s", 1, 25000);
    put(r, "", "promql.x.y", 1, 0); /* the PromQL poller's node never beats: not absent */
    assert_int_equal(rules_evaluate(r, 30000, &ev), 0); /* n3: 30 s is not more than 30 s */
    assert_int_equal(rules_evaluate(r, 30001, &ev), 1);
    assert_string_equal(ev[0].fingerprint, "rb/s/n3"); /* silent since it came up at 0 */
    assert_int_equal(ev[0].state, RULE_CRITICAL);
    assert_int_equal(ev[0].severity, RB_SEV2);
    assert_int_equal(rules_evaluate(r, 40000, &ev), 0);
    assert_int_equal(rules_evaluate(r, 41000, &ev), 1);
    assert_string_equal(ev[0].fingerprint, "rb/s/n1");
    assert_true(ev[0].value == 31);
    assert_string_equal(ev[0].reason, "agent.uptime_s silent for 31s (limit 30s) on node n1");
    put(r, "n1", "agent.uptime_s", 42, 42000);
    assert_int_equal(rules_evaluate(r, 42000, &ev), 1);
    assert_string_equal(ev[0].fingerprint, "rb/s/n1");
    assert_int_equal(ev[0].state, RULE_OK);
    /* A node known down is absent at once. */
    rules_node_down(r, "n2", 43000);
    assert_int_equal(rules_evaluate(r, 43000, &ev), 1);
    assert_string_equal(ev[0].fingerprint, "rb/s/n2");
    assert_int_equal(ev[0].state, RULE_CRITICAL);
    rules_destroy(&r);
}

static void test_promql_series(void **unused)
{
    (void)unused;
    struct fixture f;
    struct rb_condition c = threshold(NULL, RB_OP_GT, 0.5, NAN, NAN, 0, RB_SCOPE_ANY);
    c.kind = RB_COND_PROMQL;
    c.promql = S("sum(rate(http_requests_total{code=~\"5..\"}[5m]))");
    fixture_init(&f, c);
    rules_t *r = rules_new(&f.set, NULL);
    const struct rule_event *ev;
    char name[128];
    assert_int_equal(rules_promql_signal("rb", "s", name, sizeof name), 0);
    assert_string_equal(name, "promql.rb.s");
    char tiny[8];
    assert_int_equal(rules_promql_signal("rb", "s", tiny, sizeof tiny), -ENAMETOOLONG);
    put(r, "", name, 0.2, 0);
    assert_int_equal(rules_evaluate(r, 0, &ev), 0);
    put(r, "", name, 0.7, 1000);
    assert_int_equal(rules_evaluate(r, 1000, &ev), 1);
    assert_int_equal(ev[0].state, RULE_WARNING);
    assert_string_equal(ev[0].reason, "promql.rb.s = 0.7 above 0.5 on 1 of 1 nodes");
    rules_destroy(&r);
}

static void test_stale_series_are_forgotten(void **unused)
{
    (void)unused;
    struct fixture f;
    fixture_init(&f, threshold(cpu, RB_OP_GT, 80, NAN, NAN, 0, RB_SCOPE_ANY));
    struct rules_limits limits = {0, 0, 60000};
    rules_t *r = rules_new(&f.set, &limits);
    const struct rule_event *ev;
    put(r, "n1", cpu, 90, 0);
    assert_int_equal(rules_evaluate(r, 0, &ev), 1);
    assert_int_equal(rules_evaluate(r, 60000, &ev), 0);
    assert_int_equal(rules_evaluate(r, 60001, &ev), 1); /* the agent went quiet: no data */
    assert_int_equal(ev[0].state, RULE_OK);
    struct rules_stats st;
    rules_stats(r, &st);
    assert_int_equal(st.series, 0);
    rules_destroy(&r);
}

static void test_reload_keeps_state(void **unused)
{
    (void)unused;
    struct fixture f, g;
    fixture_init(&f, threshold(cpu, RB_OP_GT, 80, NAN, NAN, 0, RB_SCOPE_NODE));
    rules_t *r = rules_new(&f.set, NULL);
    const struct rule_event *ev;
    put(r, "n1", cpu, 90, 0);
    assert_int_equal(rules_evaluate(r, 0, &ev), 1);

    /* Same ids, new level: the open state stays; the series are kept. */
    fixture_init(&g, threshold(cpu, RB_OP_GT, 85, NAN, NAN, 0, RB_SCOPE_NODE));
    assert_int_equal(rules_set_runbooks(r, &g.set), 0);
    assert_int_equal(rules_evaluate(r, 1000, &ev), 0);
    put(r, "n1", cpu, 84, 2000); /* past the new level, not the old */
    assert_int_equal(rules_evaluate(r, 2000, &ev), 1);
    assert_int_equal(ev[0].state, RULE_OK);
    assert_ptr_equal(ev[0].symptom, &g.sym);

    /* A renamed symptom starts fresh; the old one's series are freed. */
    put(r, "n1", cpu, 90, 3000);
    assert_int_equal(rules_evaluate(r, 3000, &ev), 1);
    fixture_init(&f, threshold(cpu, RB_OP_GT, 80, NAN, NAN, 0, RB_SCOPE_NODE));
    f.sym.id = S("renamed");
    assert_int_equal(rules_set_runbooks(r, &f.set), 0);
    struct rules_stats st;
    rules_stats(r, &st);
    assert_int_equal(st.series, 0);
    put(r, "n1", cpu, 90, 4000);
    assert_int_equal(rules_evaluate(r, 4000, &ev), 1);
    assert_string_equal(ev[0].fingerprint, "rb/renamed/n1");
    rules_destroy(&r);
}

static void test_bounds_and_hostile_input(void **unused)
{
    (void)unused;
    struct fixture f;
    fixture_init(&f, threshold(cpu, RB_OP_GT, 80, NAN, NAN, 0, RB_SCOPE_NODE));
    struct rules_limits limits = {2, 3, 0};
    rules_t *r = rules_new(&f.set, &limits);
    const struct rule_event *ev;
    struct rb_label l[4] = {
        {S("cpu"), S("0")}, {S("cpu"), S("1")}, {S("cpu"), S("2")}, {S("cpu"), S("3")}};
    for (int i = 0; i < 4; i++)
        rules_observe(r, "n1", cpu, &l[i], 1, 50, 0);
    put(r, "n2", cpu, 50, 0);
    put(r, "n3", cpu, 99, 0); /* over max_nodes */
    put(r, "n1", "unwatched.signal", 1, 0);
    put(r, "n1", cpu, NAN, 0);
    put(r, NULL, cpu, 1, 0);
    rules_observe(r, "n1", NULL, NULL, 0, 1, 0);
    struct rb_label bad[] = {{NULL, S("x")}};
    rules_observe(r, "n1", cpu, bad, 1, 99, 0);
    char longname[200];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    put(r, longname, cpu, 99, 0);
    char longvalue[600];
    memset(longvalue, 'v', sizeof longvalue - 1);
    longvalue[sizeof longvalue - 1] = '\0';
    struct rb_label huge[] = {{S("k"), longvalue}};
    rules_observe(r, "n1", cpu, huge, 1, 99, 0);

    struct rules_stats st;
    rules_stats(r, &st);
    assert_int_equal(st.samples, 13);
    assert_int_equal(st.series, 3);
    assert_int_equal(st.series_dropped, 2); /* cpu=3 and n2's */
    assert_int_equal(st.nodes, 2);
    assert_int_equal(st.nodes_dropped, 1);
    assert_int_equal(st.samples_unwatched, 1);
    assert_int_equal(st.samples_refused, 6);
    assert_int_equal(rules_evaluate(r, 0, &ev), 0); /* n3's 99 was never stored */
    rules_destroy(&r);
    rules_destroy(&r); /* NULL is fine */
    rules_observe(NULL, "n1", cpu, NULL, 0, 1, 0);
    assert_int_equal(rules_evaluate(NULL, 0, &ev), 0);
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Not a pass/fail check of speed (CI machines vary): prints the rates for the report. */
static void test_rate(void **unused)
{
    (void)unused;
    enum { NODES = 200, SYMPTOMS = 20 };
    struct rb_symptom syms[SYMPTOMS];
    char ids[SYMPTOMS][16], signals[SYMPTOMS][32];
    for (int i = 0; i < SYMPTOMS; i++) {
        snprintf(ids[i], sizeof ids[i], "s%d", i);
        snprintf(signals[i], sizeof signals[i], "sig.%d", i);
        memset(&syms[i], 0, sizeof syms[i]);
        syms[i].id = ids[i];
        syms[i].cond = threshold(signals[i], RB_OP_GT, 80, 95, 75, 10000,
                                 i % 2 ? RB_SCOPE_NODE : RB_SCOPE_FRACTION);
        syms[i].cond.scope.fraction = 0.5;
    }
    struct rb_runbook rb = {
        .id = S("bench"), .severity = RB_SEV3, .symptoms = syms, .nsymptoms = SYMPTOMS};
    struct rb_set set = {.runbooks = &rb, .n = 1};
    rules_t *r = rules_new(&set, NULL);
    char nodes[NODES][16];
    for (int i = 0; i < NODES; i++)
        snprintf(nodes[i], sizeof nodes[i], "node-%d", i);
    struct rb_label l[] = {{S("cpu"), S("0")}};
    const struct rule_event *ev;
    size_t observed = 0, evaluations = 0;
    double t0 = seconds(), t_eval = 0;
    for (int64_t round = 0; round < 50; round++) {
        for (int n = 0; n < NODES; n++) {
            for (int s = 0; s < SYMPTOMS; s++) {
                rules_observe(r, nodes[n], signals[s], l, 1, (double)((n + round) % 100),
                              round * 1000);
                rules_observe(r, nodes[n], "unwatched", l, 1, 1, round * 1000);
                observed += 2;
            }
        }
        double e0 = seconds();
        rules_evaluate(r, round * 1000, &ev);
        t_eval += seconds() - e0;
        evaluations += SYMPTOMS;
    }
    double total = seconds() - t0;
    print_message("rules: %.0f observes/s, %.0f symptom evaluations/s (%d nodes x %d symptoms)\n",
                  (double)observed / (total - t_eval), (double)evaluations / t_eval, NODES,
                  SYMPTOMS);
    struct rules_stats st;
    rules_stats(r, &st);
    assert_int_equal(st.series, NODES * SYMPTOMS);
    rules_destroy(&r);
}

/* The shipped runbooks' single-level symptoms (below: 1, critical = warning = 1, no clear):
 * the incident's symptom clears as soon as the service is back, and fires again when it
 * fails again. Across nodes, a healthy node never counts as failing because another did. */
static void test_single_level_clears_and_nodes_keep_their_own_level(void **unused)
{
    (void)unused;
    struct fixture f;
    const struct rule_event *ev;

    fixture_init(&f, threshold("http.up", RB_OP_LT, 1, 1, NAN, 0, RB_SCOPE_NODE));
    rules_t *r = rules_new(&f.set, NULL);
    put(r, "n1", "http.up", 0, 1000);
    assert_int_equal(rules_evaluate(r, 1000, &ev), 1);
    assert_int_equal(ev[0].state, RULE_CRITICAL);
    put(r, "n1", "http.up", 1, 2000);
    assert_int_equal(rules_evaluate(r, 2000, &ev), 1);
    assert_int_equal(ev[0].state, RULE_OK);
    assert_int_equal(ev[0].n_firing, 0);
    put(r, "n1", "http.up", 0, 3000);
    assert_int_equal(rules_evaluate(r, 3000, &ev), 1);
    assert_int_equal(ev[0].state, RULE_CRITICAL);
    rules_destroy(&r);

    /* Scope any, SEV2 on some nodes, SEV1 on all: one node down is a partial outage. */
    fixture_init(&f, threshold("http.up", RB_OP_LT, 1, 1, NAN, 0, RB_SCOPE_ANY));
    f.sym.severity = RB_SEV2;
    f.sym.severity_all = RB_SEV1;
    r = rules_new(&f.set, NULL);
    rules_node_up(r, "web1", 500);
    rules_node_up(r, "web2", 500);
    put(r, "web1", "http.up", 0, 1000);
    put(r, "web2", "http.up", 1, 1000);
    assert_int_equal(rules_evaluate(r, 1000, &ev), 1);
    assert_int_equal(ev[0].state, RULE_CRITICAL);
    assert_int_equal(ev[0].severity, RB_SEV2);
    assert_int_equal(ev[0].nodes_firing, 1);
    put(r, "web1", "http.up", 0, 1250);
    put(r, "web2", "http.up", 1, 1250);
    assert_int_equal(rules_evaluate(r, 1250, &ev), 0); /* still one of two: nothing new */
    put(r, "web2", "http.up", 0, 1500);
    assert_int_equal(rules_evaluate(r, 1500, &ev), 1);
    assert_int_equal(ev[0].severity, RB_SEV1); /* now every node */
    rules_destroy(&r);

    /* With hysteresis across nodes: web2 at 78 (between clear 75 and warning 80) never fired
     * itself, so it does not count while web1 is at 90. */
    fixture_init(&f, threshold(cpu, RB_OP_GT, 80, 95, 75, 0, RB_SCOPE_ANY));
    f.sym.severity_all = RB_SEV1;
    r = rules_new(&f.set, NULL);
    put(r, "web1", cpu, 90, 1000);
    put(r, "web2", cpu, 78, 1000);
    assert_int_equal(rules_evaluate(r, 1000, &ev), 1);
    assert_int_equal(ev[0].state, RULE_WARNING);
    assert_int_equal(ev[0].nodes_firing, 1);
    assert_int_equal(ev[0].severity, RB_SEV3);
    rules_destroy(&r);
}

/* min_count: too few requests are no data (one 5xx out of one request is not a 100 % error
 * rate); across nodes the minimum applies to the sums, per node to each node's own counts. */
static void test_ratio_min_count(void **unused)
{
    (void)unused;
    struct fixture f;
    fixture_init(&f, error_ratio(RB_SCOPE_ANY));
    f.sym.cond.min_count = 20;
    rules_t *r = rules_new(&f.set, NULL);
    const struct rule_event *ev;
    counts(r, "n1", 1, 1, 0);
    assert_int_equal(rules_evaluate(r, 0, &ev), 0); /* 1 request: no data */
    /* Five nodes with 10 requests each, half failing: 50 requests together, 50 %. */
    for (int i = 0; i < 5; i++) {
        char node[8];
        snprintf(node, sizeof node, "m%d", i);
        counts(r, node, 5, 10, 1000);
    }
    assert_int_equal(rules_evaluate(r, 1000, &ev), 1);
    assert_int_equal(ev[0].state, RULE_CRITICAL);
    rules_destroy(&r);

    fixture_init(&f, error_ratio(RB_SCOPE_NODE));
    f.sym.cond.min_count = 20;
    r = rules_new(&f.set, NULL);
    counts(r, "n1", 10, 10, 0); /* 100 % of 10: below its own minimum */
    counts(r, "n2", 30, 40, 0); /* 75 % of 40 */
    assert_int_equal(rules_evaluate(r, 0, &ev), 1);
    assert_string_equal(ev[0].node, "n2");
    rules_destroy(&r);
}

/* Verify: the incident resolves itself only when its symptoms are OK and every verify entry
 * has held for its hold, counted from the last moment a symptom was not OK. */
static void test_verify_hold(void **unused)
{
    (void)unused;
    struct fixture f;
    fixture_init(&f, threshold("http.up", RB_OP_LT, 1, 1, NAN, 0, RB_SCOPE_ANY));
    struct rb_verify verify[2] = {
        {threshold("http.up", RB_OP_GE, 1, 1, NAN, 0, RB_SCOPE_ALL), 5000},
        {{.kind = RB_COND_RATIO,
          .numerator = {S("log.http.status"), class_5xx, 1},
          .denominator = {S("log.http.requests"), NULL, 0},
          .window_ms = 60000,
          .op = RB_OP_LT,
          .warning = 1,
          .critical = 1,
          .clear = NAN,
          .scope = {RB_SCOPE_ANY, 0}},
         3000},
    };
    f.rb.verify = verify;
    f.rb.nverify = 2;
    rules_t *r = rules_new(&f.set, NULL);
    assert_non_null(r);
    const struct rule_event *ev;
    char why[256];

    put(r, "n1", "http.up", 0, 1000);
    put(r, "n2", "http.up", 1, 1000);
    assert_int_equal(rules_evaluate(r, 1000, &ev), 1);
    assert_int_equal(ev[0].state, RULE_CRITICAL);
    assert_int_equal(ev[0].n_firing, 1); /* across nodes, the event still names who fails */
    assert_string_equal(ev[0].firing[0], "n1");
    assert_int_equal(rules_verified(r, "rb", "", 1000, why, sizeof why), 0);
    assert_string_equal(why, "symptom s is critical");

    /* Back up at 2 s: the symptom clears, the hold starts. No requests = the ratio holds. */
    put(r, "n1", "http.up", 1, 2000);
    assert_int_equal(rules_evaluate(r, 2000, &ev), 1);
    assert_int_equal(ev[0].state, RULE_OK);
    assert_int_equal(ev[0].n_firing, 0);
    assert_int_equal(rules_evaluate(r, 6000, &ev), 0);
    assert_int_equal(rules_verified(r, "rb", "", 6000, why, sizeof why), 0);
    assert_string_equal(why, "waiting for http.up at least 1 on all nodes (held 4s of 5s)");

    /* 5xx at 50 % breaks the ratio's hold; it must hold 3 s again from when it recovers. */
    rules_observe(r, "n1", "log.http.status", class_5xx, 1, 5, 6500);
    put(r, "n1", "log.http.requests", 10, 6500);
    assert_int_equal(rules_evaluate(r, 6500, &ev), 0);
    assert_int_equal(rules_verified(r, "rb", "", 7000, why, sizeof why), 0);
    assert_string_equal(why, "waiting for log.http.status{class=5xx} / log.http.requests below 1%");
    rules_observe(r, "n1", "log.http.status", class_5xx, 1, 0, 7500);
    put(r, "n1", "log.http.requests", 100, 7500);
    assert_int_equal(rules_evaluate(r, 7500, &ev), 0);
    assert_int_equal(rules_verified(r, "rb", "", 10000, why, sizeof why), 0);
    assert_int_equal(rules_verified(r, "rb", "", 10500, why, sizeof why), 1);
    assert_string_equal(why, "http.up at least 1 on all nodes for 5s; "
                             "log.http.status{class=5xx} / log.http.requests below 1% for 3s");

    /* The symptom returns: not verified; once gone, the whole hold counts again from then,
     * even for an entry that never stopped holding. */
    put(r, "n2", "http.up", 0, 11000);
    assert_int_equal(rules_evaluate(r, 11000, &ev), 1);
    assert_int_equal(rules_verified(r, "rb", "", 11000, why, sizeof why), 0);
    put(r, "n2", "http.up", 1, 12000);
    rules_observe(r, "n1", "log.http.status", class_5xx, 1, 0, 12000);
    put(r, "n1", "log.http.requests", 100, 12000);
    assert_int_equal(rules_evaluate(r, 12000, &ev), 1);
    assert_int_equal(rules_evaluate(r, 16000, &ev), 0);
    assert_int_equal(rules_verified(r, "rb", "", 16000, why, sizeof why), 0);
    put(r, "n1", "http.up", 1, 17000);
    put(r, "n2", "http.up", 1, 17000);
    assert_int_equal(rules_evaluate(r, 17000, &ev), 0);
    assert_int_equal(rules_verified(r, "rb", "", 17000, why, sizeof why), 1);

    assert_int_equal(rules_verified(r, "nope", "", 17000, why, sizeof why), -ENOENT);
    rules_destroy(&r);

    /* A runbook without verify entries never resolves itself. */
    fixture_init(&f, threshold("http.up", RB_OP_LT, 1, 1, NAN, 0, RB_SCOPE_ANY));
    r = rules_new(&f.set, NULL);
    assert_int_equal(rules_verified(r, "rb", "", 1000, why, sizeof why), -ENOENT);
    assert_string_equal(why, "runbook rb has no verify conditions");
    rules_destroy(&r);
}

/* Per-node incidents verify on their own node; a signal nobody collects does not block. */
static void test_verify_per_node(void **unused)
{
    (void)unused;
    struct fixture f;
    fixture_init(&f, threshold(cpu, RB_OP_GT, 80, 95, NAN, 0, RB_SCOPE_NODE));
    struct rb_verify verify[2] = {
        {threshold(cpu, RB_OP_LT, 80, 80, NAN, 0, RB_SCOPE_NODE), 2000},
        {threshold("never.sent", RB_OP_LT, 1, 1, NAN, 0, RB_SCOPE_ALL), 2000},
    };
    f.rb.verify = verify;
    f.rb.nverify = 2;
    rules_t *r = rules_new(&f.set, NULL);
    const struct rule_event *ev;
    char why[256];

    put(r, "n1", cpu, 99, 1000);
    put(r, "n2", cpu, 99, 1000);
    assert_int_equal(rules_evaluate(r, 1000, &ev), 2);
    put(r, "n1", cpu, 10, 2000);
    put(r, "n2", cpu, 99, 2000);
    assert_int_equal(rules_evaluate(r, 2000, &ev), 1);
    put(r, "n1", cpu, 10, 4000);
    put(r, "n2", cpu, 99, 4000);
    assert_int_equal(rules_evaluate(r, 4000, &ev), 0);
    assert_int_equal(rules_verified(r, "rb", "n1", 4000, why, sizeof why), 1);
    assert_int_equal(rules_verified(r, "rb", "n2", 4000, why, sizeof why), 0);
    assert_string_equal(why, "symptom s is critical");
    rules_destroy(&r);
}

/* A sample measured while a remediation command ran never raises a symptom (no rule reacts to
 * Vigil's own action), but it lets one fall, keeps verify honest, and the next untagged sample
 * decides as usual. */
static void test_samples_during_a_command(void **unused)
{
    (void)unused;
    struct fixture f;
    fixture_init(&f, threshold("http.up", RB_OP_LT, 1, 1, NAN, 0, RB_SCOPE_NODE));
    struct rb_verify verify[1] = {{threshold("http.up", RB_OP_GE, 1, 1, NAN, 0, RB_SCOPE_NODE), 0}};
    f.rb.verify = verify;
    f.rb.nverify = 1;
    rules_t *r = rules_new(&f.set, NULL);
    const struct rule_event *ev;
    char why[256];

    /* A restart takes the service down for a moment: measured during the command, nothing. */
    put(r, "n1", "http.up", 1, 1000);
    assert_int_equal(rules_evaluate(r, 1000, &ev), 0);
    rules_observe_during_command(r, "n1", "http.up", NULL, 0, 0, 2000);
    assert_int_equal(rules_evaluate(r, 2000, &ev), 0);
    rules_observe_during_command(r, "n1", "http.up", NULL, 0, 0, 3000);
    assert_int_equal(rules_evaluate(r, 3000, &ev), 0);
    /* Still down once the command settled: the untagged sample opens it. */
    put(r, "n1", "http.up", 0, 9000);
    assert_int_equal(rules_evaluate(r, 9000, &ev), 1);
    assert_int_equal(ev[0].state, RULE_CRITICAL);
    /* The remediation runs: a tagged recovery clears it and verify sees it hold. */
    rules_observe_during_command(r, "n1", "http.up", NULL, 0, 1, 10000);
    assert_int_equal(rules_evaluate(r, 10000, &ev), 1);
    assert_int_equal(ev[0].state, RULE_OK);
    assert_int_equal(rules_verified(r, "rb", "n1", 10000, why, sizeof why), 1);

    /* Across nodes the same: a tagged node does not count as firing. */
    rules_destroy(&r);
    fixture_init(&f, threshold(cpu, RB_OP_GT, 80, 95, NAN, 0, RB_SCOPE_ANY));
    r = rules_new(&f.set, NULL);
    put(r, "n1", cpu, 10, 1000);
    rules_observe_during_command(r, "n2", cpu, NULL, 0, 99, 1000);
    assert_int_equal(rules_evaluate(r, 1000, &ev), 0);
    put(r, "n2", cpu, 99, 2000);
    assert_int_equal(rules_evaluate(r, 2000, &ev), 1);
    assert_int_equal(ev[0].state, RULE_CRITICAL);
    rules_destroy(&r);
}

/* The shipped security runbook: failed logins, then a new listener on the same node, is the
 * document's SEV1 breach; each alone, or on two different nodes, stays SEV2. */
static void test_security_combination_is_sev1(void **unused)
{
    (void)unused;
    const char *dir = getenv("VIGIL_RUNBOOKS");
    if (!dir)
        fail_msg("VIGIL_RUNBOOKS is not set (run through ctest)");
    char err[512] = "";
    struct rb_set *set = runbooks_load_dir(dir, err, sizeof err);
    if (!set)
        fail_msg("shipped runbooks refused: %s", err);
    rules_t *r = rules_new(set, NULL);
    const struct rule_event *ev;
    const int64_t minute = 60 * 1000;
    int64_t t = 1000;

    /* Each sign alone is SEV2: failed logins on web1, a new listener on web2. */
    put(r, "web1", "log.failed_logins", 60, t);
    put(r, "web2", "net.listen.new", 1, t);
    size_t n = rules_evaluate(r, t, &ev);
    size_t seen = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(ev[i].runbook->id, "security-incident") != 0)
            continue;
        seen++;
        assert_int_equal(ev[i].severity, RB_SEV2);
    }
    assert_int_equal(seen, 2);

    /* The login burst on web1 ends; ten minutes later a new port listens there: SEV1, and the
     * reason says why. */
    t += minute;
    put(r, "web1", "log.failed_logins", 0, t);
    rules_evaluate(r, t, &ev);
    t += 10 * minute;
    put(r, "web1", "net.listen.new", 1, t);
    put(r, "web2", "net.listen.new", 1, t);
    n = rules_evaluate(r, t, &ev);
    seen = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(ev[i].fingerprint, "security-incident/new-listener/web1") != 0)
            continue;
        seen++;
        assert_int_equal(ev[i].severity, RB_SEV1);
        assert_non_null(strstr(ev[i].reason, "with failed-logins on the same node within 30m: SEV1"));
    }
    assert_int_equal(seen, 1);

    /* Past the window the combination is over: a listener an hour after the logins is SEV2. */
    put(r, "web1", "net.listen.new", 0, t + minute);
    rules_evaluate(r, t + minute, &ev);
    t += 60 * minute;
    put(r, "web1", "net.listen.new", 1, t);
    n = rules_evaluate(r, t, &ev);
    seen = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(ev[i].fingerprint, "security-incident/new-listener/web1") != 0)
            continue;
        seen++;
        assert_int_equal(ev[i].state, RULE_CRITICAL);
        assert_int_equal(ev[i].severity, RB_SEV2);
    }
    assert_int_equal(seen, 1);
    rules_destroy(&r);
    runbooks_free(&set);
}

/* The shipped application-down runbook on the cluster agent's kubernetes signals: a crash loop is
 * SEV2 at once; a deployment short of ready replicas only once it lasted a minute. */
static void test_kubernetes_symptoms(void **unused)
{
    (void)unused;
    const char *dir = getenv("VIGIL_RUNBOOKS");
    if (!dir)
        fail_msg("VIGIL_RUNBOOKS is not set (run through ctest)");
    char err[512] = "";
    struct rb_set *set = runbooks_load_dir(dir, err, sizeof err);
    if (!set)
        fail_msg("shipped runbooks refused: %s", err);
    rules_t *r = rules_new(set, NULL);
    const struct rule_event *ev;
    const struct rb_label ns[] = {{"namespace", "reconciliation"}};
    int64_t t = 1000;

    rules_observe(r, "cluster", "k8s.deployments_unavailable", ns, 1, 1, t);
    rules_observe(r, "cluster", "k8s.crashloop", ns, 1, 1, t);
    size_t n = rules_evaluate(r, t, &ev);
    size_t crashloop = 0, unavailable = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(ev[i].runbook->id, "application-down") != 0)
            continue;
        crashloop += strstr(ev[i].fingerprint, "/crashloop") != NULL;
        unavailable += strstr(ev[i].fingerprint, "/deployment-unavailable") != NULL;
        assert_int_equal(ev[i].severity, RB_SEV2);
    }
    assert_int_equal(crashloop, 1);
    assert_int_equal(unavailable, 0); /* for: 1m */

    t += 61 * 1000;
    rules_observe(r, "cluster", "k8s.deployments_unavailable", ns, 1, 1, t);
    n = rules_evaluate(r, t, &ev);
    unavailable = 0;
    for (size_t i = 0; i < n; i++)
        unavailable += strcmp(ev[i].runbook->id, "application-down") == 0 &&
                       strstr(ev[i].fingerprint, "/deployment-unavailable") != NULL &&
                       ev[i].severity == RB_SEV2;
    assert_int_equal(unavailable, 1);
    rules_destroy(&r);
    runbooks_free(&set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kubernetes_symptoms),
        cmocka_unit_test(test_samples_during_a_command),
        cmocka_unit_test(test_levels_and_ops),
        cmocka_unit_test(test_worst_series_of_a_node),
        cmocka_unit_test(test_for_needs_continuous_hold),
        cmocka_unit_test(test_for_across_nodes),
        cmocka_unit_test(test_hysteresis_does_not_flap),
        cmocka_unit_test(test_scope_node_fingerprints),
        cmocka_unit_test(test_scope_node_severity_all),
        cmocka_unit_test(test_single_level_clears_and_nodes_keep_their_own_level),
        cmocka_unit_test(test_scope_any_grows_to_all),
        cmocka_unit_test(test_scope_all_and_fraction),
        cmocka_unit_test(test_ratio_over_windowed_counts),
        cmocka_unit_test(test_absence),
        cmocka_unit_test(test_promql_series),
        cmocka_unit_test(test_stale_series_are_forgotten),
        cmocka_unit_test(test_reload_keeps_state),
        cmocka_unit_test(test_bounds_and_hostile_input),
        cmocka_unit_test(test_rate),
        cmocka_unit_test(test_ratio_min_count),
        cmocka_unit_test(test_verify_hold),
        cmocka_unit_test(test_verify_per_node),
        cmocka_unit_test(test_security_combination_is_sev1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
