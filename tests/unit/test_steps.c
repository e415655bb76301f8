/* Runbook resolve steps as commands: which steps run by themselves, how many nodes they reach,
 * the per-(runbook, node) rate limit, and the copy of a runbook's steps the admin thread gets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "steps.h"

#define MIN_MS (60 * 1000)

static void only_auto_on_auto_runs_alone(void **state)
{
    (void)state;
    assert_int_equal(steps_decide(RB_MODE_AUTO, VG_ACTION_MODE_AUTO), STEPS_ISSUE);
    /* The coordinator's signature alone cannot satisfy a stricter catalog mode. */
    assert_int_equal(steps_decide(RB_MODE_AUTO, VG_ACTION_MODE_APPROVE), STEPS_PENDING);
    assert_int_equal(steps_decide(RB_MODE_AUTO, VG_ACTION_MODE_DESTRUCTIVE), STEPS_PENDING);
    /* An approve step waits even for an action the node would run on its own. */
    assert_int_equal(steps_decide(RB_MODE_APPROVE, VG_ACTION_MODE_AUTO), STEPS_PENDING);
    assert_int_equal(steps_decide(RB_MODE_MANUAL, VG_ACTION_MODE_AUTO), STEPS_MANUAL);
}

static void auto_reaches_one_node_unless_told(void **state)
{
    (void)state;
    struct rb_action a = {.mode = RB_MODE_AUTO};
    assert_int_equal(steps_node_limit(&a), 1);
    a.max_nodes = 3;
    assert_int_equal(steps_node_limit(&a), 3);
    a.mode = RB_MODE_APPROVE;
    a.max_nodes = 0;
    assert_int_equal(steps_node_limit(&a), 0);
}

static void limiter_once_per_interval(void **state)
{
    (void)state;
    steps_limiter_t *lim = steps_limiter_new(10 * MIN_MS);
    assert_non_null(lim);
    assert_true(steps_limiter_allow(lim, "web-down", "web-1", 0));
    assert_false(steps_limiter_allow(lim, "web-down", "web-1", 9 * MIN_MS));
    /* Another node, another runbook: their own budget. */
    assert_true(steps_limiter_allow(lim, "web-down", "web-2", 9 * MIN_MS));
    assert_true(steps_limiter_allow(lim, "db-down", "web-1", 9 * MIN_MS));
    /* "a/b" + "c" must not be "a" + "b/c": ids cannot hold '/', nodes can, runbook first. */
    assert_true(steps_limiter_allow(lim, "web", "down/web-1", 9 * MIN_MS));
    assert_true(steps_limiter_allow(lim, "web-down", "web-1", 10 * MIN_MS));
    assert_false(steps_limiter_allow(lim, "web-down", "web-1", 11 * MIN_MS));
    steps_limiter_destroy(&lim);
    assert_null(lim);
    steps_limiter_destroy(&lim);
}

static void limiter_full_refuses_then_reuses_stale(void **state)
{
    (void)state;
    steps_limiter_t *lim = steps_limiter_new(MIN_MS);
    char node[32];
    for (int i = 0; i < STEPS_LIMITER_MAX; i++) {
        snprintf(node, sizeof(node), "n%d", i);
        assert_true(steps_limiter_allow(lim, "rb", node, 0));
    }
    /* Every slot recent: refused (the step becomes a pending request). */
    assert_false(steps_limiter_allow(lim, "rb", "one-more", 1));
    /* After the interval a stale slot is reused. */
    assert_true(steps_limiter_allow(lim, "rb", "one-more", MIN_MS));
    assert_false(steps_limiter_allow(lim, "rb", "one-more", MIN_MS + 1));
    steps_limiter_destroy(&lim);
}

static void job_copies_the_runbook(void **state)
{
    (void)state;
    struct rb_label args[] = {{"unit", "nginx.service"}, {"signal", "HUP"}};
    struct rb_action resolve[] = {
        {.name = "restart-application", .mode = RB_MODE_AUTO, .args = args, .nargs = 2},
        {.name = "scale-up", .mode = RB_MODE_MANUAL, .max_nodes = 0},
    };
    struct rb_runbook rb = {.id = "application-down", .resolve = resolve, .nresolve = 2};
    const char *nodes[] = {"web-1", "web-2"};
    struct steps_job *job = steps_job_new(42, &rb, "", nodes, 2);
    assert_non_null(job);
    /* The runbook may be freed by a reload: nothing in the job points into it. */
    args[0].value = "changed";
    resolve[0].name = "changed";
    assert_int_equal(job->incident_id, 42);
    assert_string_equal(job->runbook, "application-down");
    assert_int_equal(job->nnodes, 2);
    assert_string_equal(job->nodes[1], "web-2");
    assert_int_equal(job->nsteps, 2);
    assert_string_equal(job->steps[0].action, "restart-application");
    assert_int_equal(job->steps[0].nargs, 2);
    assert_string_equal(job->steps[0].args[0]->key, "unit");
    assert_string_equal(job->steps[0].args[0]->value, "nginx.service");
    assert_string_equal(job->steps[0].args[1]->value, "HUP");
    assert_int_equal(job->steps[1].mode, RB_MODE_MANUAL);
    assert_int_equal(job->steps[1].nargs, 0);
    steps_job_destroy(&job);
    assert_null(job);
}

static void judge_verify_then_inverse(void **state)
{
    (void)state;
    const int64_t w = 5 * MIN_MS;
    /* Still on its way. */
    assert_int_equal(steps_judge("issued", false, 0, 0, 1000, 0, w), STEPS_WAIT);
    assert_int_equal(steps_judge("started", false, 0, 0, 1000, 0, w), STEPS_WAIT);
    /* A non-zero exit escalates at once, verified or not. */
    assert_int_equal(steps_judge("done", true, 1, 1, 1000, 1000, w), STEPS_FAILED);
    /* Never ran. */
    assert_int_equal(steps_judge("refused", false, 0, 0, 1000, 0, w), STEPS_FAILED);
    assert_int_equal(steps_judge("lost", false, 0, 0, 1000, 0, w), STEPS_FAILED);
    /* Exit 0: verified within the window, or the window passes. */
    assert_int_equal(steps_judge("done", true, 0, 1, 2000, 1000, w), STEPS_VERIFIED);
    assert_int_equal(steps_judge("done", true, 0, 0, 1000 + w - 1, 1000, w), STEPS_WAIT);
    assert_int_equal(steps_judge("done", true, 0, 0, 1000 + w, 1000, w), STEPS_NOT_VERIFIED);
    /* "Never" from the verify check (an unknown runbook) is not a pass. */
    assert_int_equal(steps_judge("done", true, 0, -1, 1000 + w, 1000, w), STEPS_NOT_VERIFIED);
}

/* The canary proves itself on its node when the runbook can judge one node; else done, exit 0. */
static void canary_waits_for_its_node(void **state)
{
    (void)state;
    const int64_t w = MIN_MS;
    struct rb_verify per_node[1] = {{.cond = {.scope = {.kind = RB_SCOPE_NODE}}}};
    struct rb_verify across[2] = {{.cond = {.scope = {.kind = RB_SCOPE_NODE}}},
                                  {.cond = {.scope = {.kind = RB_SCOPE_ALL}}}};
    struct rb_runbook rb = {.id = "rb"};
    assert_false(steps_verifies_per_node(&rb)); /* no verify entries */
    rb.verify = per_node;
    rb.nverify = 1;
    assert_true(steps_verifies_per_node(&rb));
    rb.verify = across;
    rb.nverify = 2;
    assert_false(steps_verifies_per_node(&rb));
    assert_false(steps_verifies_per_node(NULL));

    assert_int_equal(steps_canary_judge("started", false, 0, true, 0, 1000, 0, w),
                     STEPS_CANARY_WAIT);
    /* Done with exit 0 is not enough where the node can be judged... */
    assert_int_equal(steps_canary_judge("done", true, 0, true, 0, 2000, 1000, w),
                     STEPS_CANARY_WAIT);
    assert_int_equal(steps_canary_judge("done", true, 0, true, 1, 3000, 1000, w), STEPS_CANARY_GO);
    assert_int_equal(steps_canary_judge("done", true, 0, true, 0, 1000 + w, 1000, w),
                     STEPS_CANARY_STOP);
    /* ... and is where it cannot. */
    assert_int_equal(steps_canary_judge("done", true, 0, false, 0, 2000, 1000, w), STEPS_CANARY_GO);
    /* A failure stops the rest either way. */
    assert_int_equal(steps_canary_judge("done", true, 2, false, 0, 2000, 1000, w),
                     STEPS_CANARY_STOP);
    assert_int_equal(steps_canary_judge("refused", false, 0, true, 0, 2000, 0, w),
                     STEPS_CANARY_STOP);
}

static bool drop_even(struct steps_watch *w, void *userdata)
{
    int *seen = userdata;
    (*seen)++;
    return w->incident_id % 2 == 0;
}

static void watchlist_drops_what_check_finishes(void **state)
{
    (void)state;
    steps_watchlist_t *list = steps_watchlist_new();
    assert_non_null(list);
    for (uint64_t i = 1; i <= 40; i++) {
        struct steps_watch w = {.incident_id = i};
        assert_int_equal(steps_watchlist_add(list, &w), 0);
    }
    int seen = 0;
    steps_watchlist_check(list, drop_even, &seen);
    assert_int_equal(seen, 40);
    seen = 0;
    steps_watchlist_check(list, drop_even, &seen);
    assert_int_equal(seen, 20); /* the odd ones are still watched */
    steps_watchlist_destroy(&list);
    assert_null(list);
}

static void inverse_job_keeps_the_arguments(void **state)
{
    (void)state;
    Vigil__CommandArg a = VIGIL__COMMAND_ARG__INIT;
    a.key = "address";
    a.value = "192.0.2.7/32";
    Vigil__CommandArg *args[] = {&a};
    struct steps_job *job =
        steps_job_inverse(7, "security-incident", "edge-1", "unblock-source-ips", args, 1);
    assert_non_null(job);
    assert_int_equal(job->nsteps, 1);
    assert_true(job->steps[0].inverse);
    assert_int_equal(job->steps[0].mode, RB_MODE_AUTO);
    assert_string_equal(job->steps[0].action, "unblock-source-ips");
    assert_string_equal(job->steps[0].args[0]->value, "192.0.2.7/32");
    assert_string_equal(job->nodes[0], "edge-1");
    steps_job_destroy(&job);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(only_auto_on_auto_runs_alone),
        cmocka_unit_test(auto_reaches_one_node_unless_told),
        cmocka_unit_test(limiter_once_per_interval),
        cmocka_unit_test(limiter_full_refuses_then_reuses_stale),
        cmocka_unit_test(job_copies_the_runbook),
        cmocka_unit_test(judge_verify_then_inverse),
        cmocka_unit_test(canary_waits_for_its_node),
        cmocka_unit_test(watchlist_drops_what_check_finishes),
        cmocka_unit_test(inverse_job_keeps_the_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
