/* Runbook loader: the shipped runbooks, every key of the format, and refusals with positions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "runbook_load.h"
#include "wire.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_MS INT64_C(1000)
#define M_MS (60 * S_MS)

static const char *env_dir(const char *name)
{
    const char *dir = getenv(name);
    if (!dir)
        fail_msg("%s is not set (run through ctest)", name);
    return dir;
}

/* fixtures/runbooks/<rel> */
static void fixture(char *buf, size_t len, const char *rel)
{
    int n = snprintf(buf, len, "%s/runbooks/%s", env_dir("VIGIL_FIXTURES"), rel);
    assert_true(n > 0 && (size_t)n < len);
}

static const char *label(const struct rb_label *labels, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(labels[i].key, key) == 0)
            return labels[i].value;
    return NULL;
}

static void test_shipped_runbooks(void **unused)
{
    (void)unused;
    /* The document's five runbooks, Vigil's own executor-down (documented in operations) and
     * node-lost (documented with the format; nothing to investigate on a node that is gone). */
    static const char doc_runbook[] = "docs/incident-response-runbooks.md#runbook-";
    static const char doc_operations[] = "docs/operations.md#";
    static const char doc_format[] = "docs/runbook-format.md#";
    static const struct {
        const char *id;
        enum rb_severity severity;
        size_t nsymptoms;
        bool depends_on_database;
        const char *doc_prefix;
        bool investigates;
    } want[] = {
        {"application-down", RB_SEV2, 5, true, doc_runbook, true},
        {"database-issues", RB_SEV2, 4, false, doc_runbook, true},
        {"executor-down", RB_SEV2, 1, false, doc_operations, true},
        {"high-error-rate", RB_SEV3, 4, true, doc_runbook, true},
        {"node-lost", RB_SEV3, 2, false, doc_format, false},
        {"performance-degradation", RB_SEV3, 5, false, doc_runbook, true},
        {"security-incident", RB_SEV2, 3, false, doc_runbook, true},
    };
    const size_t nwant = sizeof(want) / sizeof(want[0]);
    char err[512] = "";
    struct rb_set *set = runbooks_load_dir(env_dir("VIGIL_RUNBOOKS"), err, sizeof(err));

    if (!set)
        fail_msg("shipped runbooks refused: %s", err);
    assert_int_equal(set->n, nwant);
    for (size_t i = 0; i < nwant; i++) {
        const struct rb_runbook *rb = &set->runbooks[i];
        assert_string_equal(rb->id, want[i].id); /* sorted by file name */
        assert_ptr_equal(runbooks_find(set, want[i].id), rb);
        assert_int_equal(rb->severity, want[i].severity);
        assert_int_equal(rb->nsymptoms, want[i].nsymptoms);
        assert_true(strncmp(rb->doc, want[i].doc_prefix, strlen(want[i].doc_prefix)) == 0);
        assert_true((rb->ninvestigate > 0) == want[i].investigates);
        assert_true(rb->nresolve > 0 && rb->nverify > 0);
        for (size_t v = 0; v < rb->nverify; v++)
            assert_true(rb->verify[v].hold_ms > 0);
        int64_t longest_hold = 0;
        for (size_t v = 0; v < rb->nverify; v++)
            longest_hold =
                rb->verify[v].hold_ms > longest_hold ? rb->verify[v].hold_ms : longest_hold;
        for (size_t a = 0; a < rb->nresolve; a++) {
            const struct rb_action *act = &rb->resolve[a];
            if (act->mode != RB_MODE_AUTO)
                continue;
            /* Only what deploy/config/agent.yaml's catalog marks auto runs by itself, on one
             * node, and its verify window must leave room for the longest hold (or every
             * successful run would be judged unverified and escalate). */
            assert_string_equal(act->name, "restart-nginx");
            assert_int_equal(act->max_nodes, 1);
            assert_true(act->verify_within_ms > longest_hold);
        }
        if (want[i].depends_on_database) {
            assert_int_equal(rb->ndepends, 1);
            assert_string_equal(rb->depends_on[0], "database-issues");
        } else {
            assert_int_equal(rb->ndepends, 0);
        }
    }
    assert_null(runbooks_find(set, "no-such-runbook"));
    /* The document's PromQL investigation steps are promql evidence, query as written. */
    static const struct {
        const char *runbook, *query;
    } queries[] = {
        {"high-error-rate", "rate(http_requests_total{status=~\"5..\"}[5m])"},
        {"performance-degradation",
         "histogram_quantile(0.95, rate(http_request_duration_seconds_bucket[5m]))"},
    };
    for (size_t q = 0; q < sizeof(queries) / sizeof(queries[0]); q++) {
        const struct rb_runbook *rb = runbooks_find(set, queries[q].runbook);
        const struct rb_evidence *found = NULL;
        for (size_t e = 0; rb && e < rb->ninvestigate; e++)
            if (strcmp(rb->investigate[e].kind, "promql") == 0)
                found = &rb->investigate[e];
        assert_non_null(found);
        assert_int_equal(found->nargs, 1);
        assert_string_equal(label(found->args, 1, "query"), queries[q].query);
        assert_false(found->on_cluster);
    }

    /* Application down: partial outage SEV2, complete outage SEV1. */
    const struct rb_runbook *app = runbooks_find(set, "application-down");
    assert_string_equal(app->symptoms[0].cond.match.signal, "http.up");
    assert_int_equal(app->symptoms[0].cond.op, RB_OP_LT);
    assert_true(app->symptoms[0].cond.warning == 1);
    assert_int_equal(app->symptoms[0].cond.scope.kind, RB_SCOPE_ANY);
    assert_int_equal(app->symptoms[0].severity, RB_SEV2);
    assert_int_equal(app->symptoms[0].severity_all, RB_SEV1);

    /* High error rate: the document's 1 % / 5 % over 5 minutes of access logs. */
    const struct rb_condition *rate = &runbooks_find(set, "high-error-rate")->symptoms[0].cond;
    assert_int_equal(rate->kind, RB_COND_RATIO);
    assert_string_equal(rate->numerator.signal, "log.http.status");
    assert_string_equal(label(rate->numerator.labels, rate->numerator.nlabels, "class"), "5xx");
    assert_string_equal(rate->denominator.signal, "log.http.requests");
    assert_int_equal(rate->window_ms, 5 * M_MS);
    assert_true(rate->warning == 1 && rate->critical == 5);

    /* Performance: response time 2 s / 5 s, CPU 80 / 95 with hysteresis. */
    const struct rb_runbook *perf = runbooks_find(set, "performance-degradation");
    assert_true(perf->symptoms[0].cond.warning == 2000 && perf->symptoms[0].cond.critical == 5000);
    assert_string_equal(perf->symptoms[1].cond.match.signal, "host.cpu.busy_pct");
    assert_true(perf->symptoms[1].cond.warning == 80 && perf->symptoms[1].cond.critical == 95 &&
                perf->symptoms[1].cond.clear == 75);

    /* Executor down: one incident per node as soon as an agent reports its executor gone. */
    const struct rb_runbook *exec = runbooks_find(set, "executor-down");
    assert_string_equal(exec->symptoms[0].cond.match.signal, "agent.executor.up");
    assert_int_equal(exec->symptoms[0].cond.op, RB_OP_LT);
    assert_true(exec->symptoms[0].cond.warning == 1);
    assert_int_equal(exec->symptoms[0].cond.scope.kind, RB_SCOPE_NODE);
    assert_int_equal(exec->symptoms[0].cond.for_ms, 0);
    assert_int_equal(exec->symptoms[0].severity, RB_SEV2);
    assert_string_equal(exec->verify[0].cond.match.signal, "agent.executor.up");

    runbooks_free(&set);
    assert_null(set);
    runbooks_free(&set); /* NULL is fine */
}

/* Each shipped file also loads alone (what `vigil-coordinator -n FILE` would check). */
static void test_shipped_files_alone(void **unused)
{
    (void)unused;
    static const char *const files[] = {"application-down", "database-issues",
                                        "executor-down",    "high-error-rate",
                                        "node-lost",        "performance-degradation",
                                        "security-incident"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char path[1024], err[512] = "";
        snprintf(path, sizeof(path), "%s/%s.yaml", env_dir("VIGIL_RUNBOOKS"), files[i]);
        struct rb_set *set = runbooks_load_file(path, err, sizeof(err));
        if (!set)
            fail_msg("%s refused: %s", path, err);
        assert_int_equal(set->n, 1);
        assert_string_equal(set->runbooks[0].id, files[i]);
        assert_string_equal(set->runbooks[0].file, path);
        runbooks_free(&set);
    }
}

static void test_every_key(void **unused)
{
    (void)unused;
    char path[1024], err[512] = "";
    fixture(path, sizeof(path), "good/full.yaml");
    struct rb_set *set = runbooks_load_file(path, err, sizeof(err));
    if (!set)
        fail_msg("good fixture refused: %s", err);
    const struct rb_runbook *rb = &set->runbooks[0];

    assert_string_equal(rb->id, "full");
    assert_string_equal(rb->title, "Every key");
    assert_string_equal(rb->doc, "docs/runbook-format.md");
    assert_int_equal(rb->severity, RB_SEV3);
    assert_string_equal(rb->policy, "oncall-db");
    assert_int_equal(rb->ndepends, 2);
    assert_string_equal(rb->depends_on[0], "other");
    assert_string_equal(rb->depends_on[1], "third");
    assert_int_equal(rb->reopen_window_ms, 45 * M_MS);
    assert_int_equal(rb->nsymptoms, 5);

    const struct rb_symptom *s = &rb->symptoms[0];
    assert_string_equal(s->id, "threshold");
    assert_int_equal(s->cond.kind, RB_COND_THRESHOLD);
    assert_string_equal(s->cond.match.signal, "host.cpu.busy_pct");
    assert_int_equal(s->cond.match.nlabels, 2);
    assert_string_equal(label(s->cond.match.labels, 2, "cpu"), "total");
    assert_string_equal(label(s->cond.match.labels, 2, "zone"), "a");
    assert_int_equal(s->cond.op, RB_OP_GT);
    assert_true(s->cond.warning == 80 && s->cond.critical == 95 && s->cond.clear == 75);
    assert_int_equal(s->cond.for_ms, 2 * M_MS);
    assert_int_equal(s->cond.scope.kind, RB_SCOPE_FRACTION);
    assert_true(s->cond.scope.fraction == 0.5);
    assert_int_equal(s->severity, RB_SEV2);
    assert_int_equal(s->severity_all, RB_SEV1);
    assert_int_equal(s->cond.line, 11); /* the "signal:" key */
    assert_int_equal(s->cond.column, 5);

    s = &rb->symptoms[1];
    assert_string_equal(s->id, "ratio");
    assert_int_equal(s->cond.kind, RB_COND_RATIO);
    assert_string_equal(s->cond.numerator.signal, "log.http.status");
    assert_int_equal(s->cond.numerator.nlabels, 1);
    assert_string_equal(s->cond.numerator.labels[0].key, "class");
    assert_string_equal(s->cond.numerator.labels[0].value, "5xx");
    assert_string_equal(s->cond.denominator.signal, "log.http.requests");
    assert_int_equal(s->cond.denominator.nlabels, 0);
    assert_int_equal(s->cond.window_ms, 5 * M_MS);
    assert_int_equal(s->cond.op, RB_OP_GE);
    assert_true(s->cond.warning == 5 && s->cond.critical == 5); /* one level: both */
    assert_true(isnan(s->cond.clear));
    assert_int_equal(s->cond.for_ms, 0);
    assert_int_equal(s->cond.scope.kind, RB_SCOPE_ALL);
    assert_int_equal(s->severity, RB_SEV_NONE); /* the runbook's */
    assert_int_equal(s->severity_all, RB_SEV_NONE);

    s = &rb->symptoms[2];
    assert_int_equal(s->cond.kind, RB_COND_ABSENCE);
    assert_string_equal(s->cond.match.signal, "agent.uptime_s");
    assert_string_equal(label(s->cond.match.labels, s->cond.match.nlabels, "role"), "db");
    assert_int_equal(s->cond.absent_ms, 30 * S_MS);
    assert_int_equal(s->cond.scope.kind, RB_SCOPE_NODE); /* the default */

    s = &rb->symptoms[3];
    assert_int_equal(s->cond.kind, RB_COND_PROMQL);
    assert_string_equal(s->cond.promql, "sum(rate(http_requests_total[5m]))");
    assert_int_equal(s->cond.interval_ms, 15 * S_MS);
    assert_int_equal(s->cond.op, RB_OP_LT);
    assert_true(s->cond.warning == 10 && s->cond.critical == 1);
    assert_int_equal(s->cond.scope.kind, RB_SCOPE_ANY);

    s = &rb->symptoms[4];
    assert_string_equal(s->cond.match.signal, "alert.HighLatency");
    assert_int_equal(s->cond.op, RB_OP_LE);
    assert_true(s->cond.warning == 3 && s->cond.critical == 3 && s->cond.clear == 4);

    assert_int_equal(rb->ninvestigate, 2);
    assert_string_equal(rb->investigate[0].kind, "log_tail");
    assert_int_equal(rb->investigate[0].nargs, 2);
    assert_string_equal(label(rb->investigate[0].args, 2, "name"), "app");
    assert_string_equal(label(rb->investigate[0].args, 2, "lines"), "200");
    assert_string_equal(rb->investigate[1].kind, "netstat");
    assert_int_equal(rb->investigate[1].nargs, 0);
    assert_false(rb->investigate[0].on_cluster);
    assert_true(rb->investigate[1].on_cluster);

    assert_int_equal(rb->nresolve, 3);
    assert_string_equal(rb->resolve[0].name, "restart-service");
    assert_int_equal(rb->resolve[0].mode, RB_MODE_APPROVE);
    assert_string_equal(label(rb->resolve[0].args, rb->resolve[0].nargs, "unit"), "app.service");
    assert_int_equal(rb->resolve[0].max_nodes, 1);
    assert_int_equal(rb->resolve[1].mode, RB_MODE_MANUAL);
    assert_int_equal(rb->resolve[1].max_nodes, 0);
    assert_int_equal(rb->resolve[2].mode, RB_MODE_AUTO);
    assert_int_equal(rb->resolve[2].verify_within_ms, 90 * S_MS);
    assert_false(rb->resolve[0].on_cluster); /* the default: the incident's nodes */
    assert_false(rb->resolve[1].on_cluster); /* on: nodes */
    assert_true(rb->resolve[2].on_cluster);
    assert_int_equal(rb->resolve[0].verify_within_ms, 5 * M_MS); /* the default */

    assert_int_equal(rb->nverify, 2);
    assert_int_equal(rb->verify[0].cond.kind, RB_COND_THRESHOLD);
    assert_string_equal(rb->verify[0].cond.match.signal, "http.up");
    assert_string_equal(rb->verify[0].cond.match.labels[0].value, "app");
    assert_int_equal(rb->verify[0].cond.op, RB_OP_GE);
    assert_true(rb->verify[0].cond.warning == 1);
    assert_int_equal(rb->verify[0].cond.scope.kind, RB_SCOPE_ALL);
    assert_int_equal(rb->verify[0].hold_ms, 2 * M_MS);
    assert_int_equal(rb->verify[1].cond.kind, RB_COND_RATIO);
    assert_int_equal(rb->verify[1].cond.op, RB_OP_LT);
    assert_int_equal(rb->verify[1].cond.for_ms, 10 * S_MS);
    assert_int_equal(rb->verify[1].hold_ms, 5 * M_MS);

    runbooks_free(&set);
}

/* Each bad fixture is refused with exactly this message after "<path>:". */
static void test_bad_files(void **unused)
{
    (void)unused;
    static const struct {
        const char *file;
        const char *message;
    } cases[] = {
        {"syntax.yaml", "4:1: flow sequence without a closing bracket"},
        {"unknown-key.yaml", "7:5: unknown key \"symptoms[0].belwo\" (did you mean \"below\"?)"},
        {"wrong-type.yaml", "8:5: \"symptoms[0].for\": must be a duration, not a sequence"},
        {"unknown-signal.yaml",
         "6:13: \"symptoms[0].signal\": unknown signal \"http.upp\" (see the README's "
         "\"Signals\"; alerts are alert.<alertname>)"},
        {"warning-above-critical.yaml",
         "7:36: \"symptoms[0].above.critical\": the critical level (80) must be at or above the "
         "warning level (95) for \"above\""},
        {"clear-wrong-side.yaml",
         "7:47: \"symptoms[0].above.clear\": the clear level (85) must be at or below the "
         "warning level (80) for \"above\""},
        {"fraction.yaml",
         "8:23: \"symptoms[0].scope.fraction\": must be greater than 0 and at most 1 (got 1.5)"},
        {"duplicate-symptom.yaml",
         "8:9: \"symptoms[1].id\": \"s\" is already the id of symptoms[0]"},
        {"evidence-kind.yaml",
         "8:12: \"investigate[1].kind\": unknown evidence kind \"coredump\" (one of "
         VG_EVIDENCE_KINDS_OF_STATE ")"},
        {"verify-no-hold.yaml",
         "7:6: \"verify[0]\": needs hold, how long the condition must hold (e.g. hold: 2m)"},
        {"action-mode.yaml",
         "7:29: \"resolve[0].mode\": must be auto, approve or manual (got \"yolo\")"},
        {"action-on.yaml", "7:42: \"resolve[0].on\": must be nodes (the incident's, the default) "
                           "or cluster (the cluster agent) (got \"everywhere\")"},
        {"verify-within.yaml",
         "7:50: \"resolve[0].verify_within\": must be between 1s and 1d (got \"0s\")"},
        {"negative-duration.yaml",
         "5:45: \"symptoms[0].for\": must be between 0s and 1d (got \"-5s\")"},
        {"depends-self.yaml", "4:14: \"depends_on[0]\": a runbook cannot depend on itself"},
        {"min-count.yaml",
         "10:18: \"symptoms[0].ratio.min_count\": must be an integer between 1 and 1000000000 "
         "(got \"0\")"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[1024], rel[128], want[1536], err[512] = "";
        snprintf(rel, sizeof(rel), "bad/%s", cases[i].file);
        fixture(path, sizeof(path), rel);
        snprintf(want, sizeof(want), "%s:%s", path, cases[i].message);
        struct rb_set *set = runbooks_load_file(path, err, sizeof(err));
        assert_null(set);
        assert_string_equal(err, want);
    }
}

static void expect_dir_refused(const char *rel, const char *file, const char *message)
{
    char dir[1024], want[1536], err[512] = "";
    fixture(dir, sizeof(dir), rel);
    snprintf(want, sizeof(want), "%s/%s:%s", dir, file, message);
    struct rb_set *set = runbooks_load_dir(dir, err, sizeof(err));
    assert_null(set);
    assert_string_equal(err, want);
}

static void test_bad_directories(void **unused)
{
    (void)unused;
    /* One good file and one bad: nothing loads, the error names the bad file. */
    expect_dir_refused("dir-bad", "b-bad.yaml",
                       "6:13: \"symptoms[0].signal\": unknown signal \"http.upp\" (see the "
                       "README's \"Signals\"; alerts are alert.<alertname>)");
    expect_dir_refused("dir-dangling", "app.yaml",
                       "4:14: \"depends_on[0]\": no runbook \"database\" in the set");

    char dir[1024], want[1536];
    fixture(dir, sizeof(dir), "dir-dup");
    snprintf(want, sizeof(want), "1:5: \"id\": runbook \"same\" is already defined in %s/a.yaml",
             dir);
    expect_dir_refused("dir-dup", "b.yaml", want);

    char err[512] = "";
    assert_null(runbooks_load_dir("/nonexistent/runbooks", err, sizeof(err)));
    assert_string_equal(err, "/nonexistent/runbooks: cannot read the runbook directory: No such "
                             "file or directory");
}

/* Writes text into dir/name; returns the path in buf. */
static void write_file(const char *dir, const char *name, const char *text, size_t len, char *buf,
                       size_t buflen)
{
    snprintf(buf, buflen, "%s/%s", dir, name);
    FILE *fp = fopen(buf, "w");
    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, len, fp), len);
    fclose(fp);
}

static void expect_refused(const char *dir, const char *name, const char *text, const char *message)
{
    char path[1024], want[1536], err[512] = "";
    write_file(dir, name, text, strlen(text), path, sizeof(path));
    snprintf(want, sizeof(want), "%s:%s", path, message);
    struct rb_set *set = runbooks_load_file(path, err, sizeof(err));
    assert_null(set);
    assert_string_equal(err, want);
    unlink(path);
}

#define HEAD "id: x\ntitle: X\nseverity: SEV2\n"

static void test_hostile_input(void **unused)
{
    (void)unused;
    char dir[] = "/tmp/test_runbook_load.XXXXXX";
    assert_non_null(mkdtemp(dir));

    expect_refused(dir, "empty.yaml", "# nothing\n",
                   " empty: a runbook needs at least id, title, severity and symptoms");
    expect_refused(dir, "list.yaml", "- a\n- b\n",
                   "1:3: \"runbook\": must be a mapping, not a "
                   "sequence");
    expect_refused(dir, "two.yaml",
                   HEAD "symptoms: [{id: s, signal: http.up, below: 1}]\n---\n"
                        "id: y\n",
                   "5:1: only one YAML document (one runbook) is allowed in a file");
    expect_refused(dir, "missing.yaml", "id: x\ntitle: X\nseverity: SEV2\n",
                   "1:1: \"symptoms\": required key is missing");
    expect_refused(dir, "nosym.yaml", HEAD "symptoms: []\n",
                   "4:1: \"symptoms\": needs at least one symptom");
    expect_refused(dir, "sev.yaml", "id: x\ntitle: X\nseverity: 2\nsymptoms: []\n",
                   "3:11: \"severity\": must be SEV1, SEV2, SEV3 or SEV4 (got \"2\")");
    expect_refused(dir, "id.yaml", "id: \"Bad Id\"\ntitle: X\nseverity: SEV2\nsymptoms: []\n",
                   "1:5: \"id\": must be lower-case letters, digits, '-' and '_' (got \"Bad Id\")");
    expect_refused(dir, "typo.yaml", "id: x\nsevrity: SEV2\n",
                   "2:1: unknown key \"sevrity\" (did you mean \"severity\"?)");
    expect_refused(dir, "nan.yaml", HEAD "symptoms: [{id: s, signal: http.up, below: .nan}]\n",
                   "4:44: \"symptoms[0].below\": must be a number (got \".nan\")");
    expect_refused(dir, "noop.yaml", HEAD "symptoms: [{id: s, signal: http.up}]\n",
                   "4:20: \"symptoms[0]\": needs a comparison: above, below, at_least or at_most");
    expect_refused(dir, "two-ops.yaml",
                   HEAD "symptoms: [{id: s, signal: http.up, below: 1, above: 2}]\n",
                   "4:47: \"symptoms[0]\": \"below\" and \"above\" cannot be combined");
    expect_refused(dir, "two-kinds.yaml",
                   HEAD "symptoms: [{id: s, signal: http.up, promql: {query: up}, below: 1}]\n",
                   "4:37: \"symptoms[0]\": \"signal\" and \"promql\" cannot be combined");
    expect_refused(dir, "below-levels.yaml",
                   HEAD "symptoms: [{id: s, signal: redis.hit_rate, below: {warning: 50, "
                        "critical: 90}}]\n",
                   "4:75: \"symptoms[0].below.critical\": the critical level (90) must be at or "
                   "below the warning level (50) for \"below\"");
    expect_refused(dir, "sev-all.yaml",
                   HEAD "symptoms: [{id: s, signal: http.up, below: 1, severity_all: SEV1}]\n",
                   "4:47: \"symptoms[0].severity_all\": needs scope any or {fraction: F} (the "
                   "scope must be able to grow)");
    expect_refused(dir, "window.yaml",
                   HEAD "symptoms: [{id: s, ratio: {numerator: {signal: log.http.status}, "
                        "denominator: {signal: log.http.requests}, window: 1s}, above: 5}]\n",
                   "4:116: \"symptoms[0].ratio.window\": must be between 10s and 1d (got "
                   "\"1s\")");
    expect_refused(dir, "absurd.yaml", HEAD "reopen_window: 400d\nsymptoms: []\n",
                   "4:16: \"reopen_window\": must be between 0s and 7d (got \"400d\")");

    expect_refused(dir, "args.yaml",
                   HEAD "symptoms: [{id: s, signal: http.up, below: 1}]\n"
                        "investigate: [{kind: log_tail, args: {name: app, line: \"5\"}}]\n",
                   "5:32: \"investigate[0].args\": log_tail takes no argument \"line\" (did you "
                   "mean \"lines\"?)");
    expect_refused(dir, "noargs.yaml",
                   HEAD "symptoms: [{id: s, signal: http.up, below: 1}]\n"
                        "investigate: [{kind: netstat, args: {lines: \"5\"}}]\n",
                   "5:31: \"investigate[0].args\": netstat takes no arguments (got \"lines\")");
    expect_refused(dir, "nopath.yaml",
                   HEAD "symptoms: [{id: s, signal: http.up, below: 1}]\n"
                        "investigate: [{kind: file}]\n",
                   "5:22: \"investigate[0].args\": file needs a path argument");
    /* promql: the coordinator's capture of a query (promql_evidence.h). */
    expect_refused(dir, "promql-noquery.yaml",
                   HEAD "symptoms: [{id: s, signal: http.up, below: 1}]\n"
                        "investigate: [{kind: promql}]\n",
                   "5:22: \"investigate[0].kind\": promql needs a query (the PromQL expression "
                   "to capture)");
    expect_refused(dir, "promql-empty.yaml",
                   HEAD "symptoms: [{id: s, signal: http.up, below: 1}]\n"
                        "investigate: [{kind: promql, query: '  '}]\n",
                   "5:37: \"investigate[0].query\": the query is empty");
    expect_refused(dir, "promql-other.yaml",
                   HEAD "symptoms: [{id: s, signal: http.up, below: 1}]\n"
                        "investigate: [{kind: netstat, query: up}]\n",
                   "5:31: \"investigate[0].query\": only a promql entry takes a query (this one "
                   "is netstat)");
    expect_refused(dir, "promql-on.yaml",
                   HEAD "symptoms: [{id: s, signal: http.up, below: 1}]\n"
                        "investigate: [{kind: promql, query: up, on: cluster}]\n",
                   "5:41: \"investigate[0].on\": a promql entry takes only query: the "
                   "coordinator asks Prometheus itself");

    /* Bounds: a file over the size limit, more symptoms than allowed. */
    size_t big_len = RB_FILE_MAX_BYTES + 10;
    char *big = malloc(big_len + 1);
    assert_non_null(big);
    memset(big, '#', big_len);
    big[big_len] = '\0';
    char path[1024], err[512] = "", want[1536];
    write_file(dir, "big.yaml", big, big_len, path, sizeof(path));
    assert_null(runbooks_load_file(path, err, sizeof(err)));
    snprintf(want, sizeof(want), "%s: too large (%zu bytes; at most %d)", path, big_len,
             RB_FILE_MAX_BYTES);
    assert_string_equal(err, want);
    unlink(path);

    size_t off = (size_t)snprintf(big, big_len, HEAD "symptoms:\n");
    for (int i = 0; i <= RB_MAX_SYMPTOMS; i++)
        off += (size_t)snprintf(big + off, big_len - off,
                                "  - {id: s%d, signal: http.up, below: 1}\n", i);
    expect_refused(dir, "many.yaml", big, "4:1: \"symptoms\": at most 32 entries (got 33)");
    free(big);

    rmdir(dir);
}

static void test_signal_names(void **unused)
{
    (void)unused;
    assert_true(runbook_signal_known("http.up"));
    assert_true(runbook_signal_known("host.cpu.busy_pct"));
    assert_true(runbook_signal_known("net.listen.new"));
    assert_true(runbook_signal_known("redis.up"));
    assert_true(runbook_signal_known("agent.uptime_s"));
    assert_true(runbook_signal_known("alert.HighLatency"));
    assert_true(runbook_signal_known("alert.instance_down:5m"));
    assert_false(runbook_signal_known("alert."));
    assert_false(runbook_signal_known("alert.9lives"));
    assert_false(runbook_signal_known("alert.bad name"));
    assert_false(runbook_signal_known("http"));
    assert_false(runbook_signal_known("http.up.x"));
    assert_false(runbook_signal_known(""));
    assert_false(runbook_signal_known(NULL));

    assert_string_equal(rb_severity_name(RB_SEV1), "SEV1");
    assert_string_equal(rb_severity_name(RB_SEV4), "SEV4");
    assert_string_equal(rb_severity_name(RB_SEV_NONE), "none");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shipped_runbooks), cmocka_unit_test(test_shipped_files_alone),
        cmocka_unit_test(test_every_key),        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_bad_directories),  cmocka_unit_test(test_hostile_input),
        cmocka_unit_test(test_signal_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
