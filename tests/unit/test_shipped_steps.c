/*
 * The shipped runbooks against the shipped cluster agent's catalog: every resolve step with
 * `on: cluster` that Vigil may run (auto or approve) names an action of
 * deploy/config/cluster-agent.yaml, and its arguments pass that action's types, as the cluster
 * agent's executor will check them. A step whose action or arguments the catalog refuses would
 * sit on the timeline as "skipped" in every real incident.
 *
 * The catalog must be root's and writable by nobody else (the agent refuses it otherwise): the
 * test loads a 0644 copy, whatever the umask the tree was checked out with, and is skipped
 * without root.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "actions.h"
#include "agent_config.h"
#include "runbook_load.h"

/* A root-owned 0644 copy of path in a temporary file; its name in copy (at least 64 bytes). */
static void private_copy(const char *path, char *copy)
{
    FILE *in = fopen(path, "re");
    if (!in)
        fail_msg("%s: cannot read it", path);
    snprintf(copy, 64, "/tmp/vigil-test-shipped-XXXXXX");
    int fd = mkstemp(copy);
    assert_true(fd >= 0);
    assert_int_equal(fchmod(fd, 0644), 0);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        assert_int_equal(write(fd, buf, n), (ssize_t)n);
    fclose(in);
    assert_int_equal(close(fd), 0);
}

static void test_cluster_steps_are_in_the_catalog(void **state)
{
    const char *runbooks = getenv("VIGIL_RUNBOOKS");
    const char *catalog = getenv("VIGIL_CLUSTER_AGENT_YAML");
    struct agent_config cfg;
    char err[1024] = "";
    size_t checked = 0;

    (void)state;
    if (geteuid() != 0)
        skip();
    if (!runbooks || !catalog)
        fail_msg("VIGIL_RUNBOOKS or VIGIL_CLUSTER_AGENT_YAML is not set (run through ctest)");
    char copy[64];
    private_copy(catalog, copy);
    int r = agent_config_load_remediation(copy, &cfg, err, sizeof(err));
    unlink(copy);
    if (r < 0)
        fail_msg("%s: %s", catalog, err);
    const struct rb_set *set = runbooks_load_dir(runbooks, err, sizeof(err));
    if (!set)
        fail_msg("%s", err);

    for (size_t i = 0; i < set->n; i++) {
        const struct rb_runbook *rb = &set->runbooks[i];
        for (size_t k = 0; k < rb->nresolve; k++) {
            const struct rb_action *step = &rb->resolve[k];
            if (!step->on_cluster || step->mode == RB_MODE_MANUAL)
                continue;
            const struct action *a = actions_find(cfg.catalog, step->name);
            if (!a)
                fail_msg("runbook %s: step %s is not in %s", rb->id, step->name, catalog);
            struct action_arg args[ACTION_PARAMS_MAX];
            if (step->nargs > ACTION_PARAMS_MAX)
                fail_msg("runbook %s: step %s has %zu arguments", rb->id, step->name, step->nargs);
            for (size_t j = 0; j < step->nargs; j++)
                args[j] = (struct action_arg){step->args[j].key, step->args[j].value};
            char why[512];
            if (actions_check_args(a, args, step->nargs, NULL, why, sizeof(why)) < 0)
                fail_msg("runbook %s: step %s: %s", rb->id, step->name, why);
            checked++;
        }
    }
    /* The document's Kubernetes, PostgreSQL and Redis steps: at least one per runbook that has
     * them (application down, database, error rate, performance, security). */
    assert_true(checked >= 10);
    runbooks_release(&set);
    agent_config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cluster_steps_are_in_the_catalog),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
