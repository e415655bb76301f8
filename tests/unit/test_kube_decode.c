/*
 * The kubernetes probe's decoders (agent/probe/kube_decode.c): quantities and times, the counts
 * behind the k8s.* signals, and the kubectl-like text of the evidence, from API JSON written
 * here. The module end to end is tests/integration/kube_probe.sh.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kube_decode.h"

static json_t *parse(const char *text)
{
    json_error_t err;
    json_t *j = json_loads(text, 0, &err);
    if (!j)
        fail_msg("bad test JSON at %d: %s", err.position, err.text);
    return j;
}

static void test_quantity(void **state)
{
    (void)state;
    double v;
    assert_true(kube_quantity("250m", &v));
    assert_true(fabs(v - 0.25) < 1e-12);
    assert_true(kube_quantity("4", &v) && v == 4);
    assert_true(kube_quantity("15Gi", &v) && v == 15.0 * 1073741824.0);
    assert_true(kube_quantity("123456Ki", &v) && v == 123456.0 * 1024);
    assert_true(kube_quantity("123456789n", &v) && fabs(v - 0.123456789) < 1e-12);
    assert_true(kube_quantity("1e3", &v) && v == 1000);
    assert_true(kube_quantity("2M", &v) && v == 2e6);
    static const char *const bad[] = {"",      "0x10", "inf",  "nan",  "5Xi",
                                      "1.5.5", "Gi",   "1 Gi", "1Gi ", "-"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(kube_quantity(bad[i], &v));
    assert_false(kube_quantity(NULL, &v));
}

static void test_time(void **state)
{
    (void)state;
    time_t t;
    assert_true(kube_time("1970-01-01T00:01:00Z", &t) && t == 60);
    assert_true(kube_time("2026-01-01T10:00:00.123456Z", &t) && t == 1767261600);
    assert_true(kube_time("2026-01-01T11:00:00+01:00", &t) && t == 1767261600);
    assert_false(kube_time("2026-01-01 10:00:00", &t));
    assert_false(kube_time("2026-13-01T10:00:00Z", &t));
    assert_false(kube_time("yesterday", &t));
    assert_false(kube_time(NULL, &t));
}

static const char PODS[] =
    "{\"kind\": \"PodList\", \"items\": ["
    /* Running and Ready, restarted twice over two containers */
    "{\"metadata\": {\"name\": \"ok-1\"}, \"status\": {\"phase\": \"Running\","
    " \"conditions\": [{\"type\": \"Ready\", \"status\": \"True\"}],"
    " \"containerStatuses\": [{\"name\": \"a\", \"restartCount\": 1,"
    " \"ready\": true}, {\"name\": \"b\", \"restartCount\": 1,"
    " \"ready\": true}]}},"
    /* Running, not Ready, crash-looping */
    "{\"metadata\": {\"name\": \"crash\"}, \"spec\": {\"nodeName\": \"n1\","
    " \"containers\": [{\"name\": \"app\"}]},"
    " \"status\": {\"phase\": \"Running\","
    " \"conditions\": [{\"type\": \"Ready\", \"status\": \"False\"}],"
    " \"containerStatuses\": [{\"name\": \"app\", \"restartCount\": 7,"
    " \"state\": {\"waiting\": {\"reason\": \"CrashLoopBackOff\"}}}]}},"
    "{\"metadata\": {\"name\": \"pending\"}, \"status\": {\"phase\": \"Pending\"}},"
    "{\"metadata\": {\"name\": \"failed\"}, \"status\": {\"phase\": \"Failed\"}},"
    "{\"metadata\": {\"name\": \"done\"}, \"status\": {\"phase\": \"Succeeded\"}},"
    /* garbage is skipped, not fatal */
    "42, \"pod\", null, {\"status\": {\"containerStatuses\": \"no\"}}"
    "]}";

struct restarts_seen {
    char names[4][32];
    double values[4];
    size_t n;
};

static void on_restarts(void *userdata, const char *pod, double restarts)
{
    struct restarts_seen *s = userdata;
    assert_true(s->n < 4);
    snprintf(s->names[s->n], sizeof(s->names[0]), "%s", pod);
    s->values[s->n++] = restarts;
}

static void test_pods(void **state)
{
    (void)state;
    json_t *list = parse(PODS);
    struct kube_pods_summary s;
    struct restarts_seen seen = {0};

    assert_int_equal(kube_decode_pods(list, &s, on_restarts, &seen), 0);
    /* 5 pods and one nameless object; crash, pending, failed and the phaseless one not ready */
    assert_int_equal(s.pods, 6);
    assert_int_equal(s.not_ready, 4);
    assert_int_equal(s.crashloop, 1);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.names[0], "ok-1");
    assert_true(seen.values[0] == 2);
    assert_string_equal(seen.names[1], "crash");
    assert_true(seen.values[1] == 7);
    json_decref(list);

    json_t *not_list = parse("{\"kind\": \"Status\", \"message\": \"forbidden\"}");
    assert_int_equal(kube_decode_pods(not_list, &s, NULL, NULL), -EINVAL);
    assert_int_equal(kube_decode_pods(NULL, &s, NULL, NULL), -EINVAL);
    json_decref(not_list);
}

static void test_deployments_and_nodes(void **state)
{
    (void)state;
    unsigned n = 99;
    struct kube_nodes_summary ns;
    json_t *deps = parse("{\"items\": ["
                         "{\"spec\": {\"replicas\": 2}, \"status\": {\"readyReplicas\": 2}},"
                         "{\"spec\": {\"replicas\": 3}, \"status\": {\"readyReplicas\": 2}},"
                         "{\"spec\": {\"replicas\": 1}, \"status\": {\"readyReplicas\": 1,"
                         " \"unavailableReplicas\": 1}},"
                         "{\"spec\": {}, \"status\": {}},"               /* 1 desired, 0 ready */
                         "{\"spec\": {\"replicas\": 0}, \"status\": {}}" /* scaled to zero */
                         "]}");
    assert_int_equal(kube_decode_deployments(deps, &n), 0);
    assert_int_equal(n, 3);
    json_decref(deps);

    json_t *nodes = parse(
        "{\"items\": ["
        "{\"metadata\": {\"name\": \"w1\"}, \"status\": {\"conditions\": [{\"type\": \"Ready\","
        " \"status\": \"True\"}], \"allocatable\": {\"cpu\": \"3800m\", \"memory\": \"15Gi\"}}},"
        "{\"metadata\": {\"name\": \"w2\"}, \"status\": {\"conditions\": [{\"type\": \"Ready\","
        " \"status\": \"Unknown\"}]}},"
        "{\"metadata\": {\"name\": \"w3\"}}"
        "]}");
    assert_int_equal(kube_decode_nodes(nodes, &ns, NULL, NULL), 0);
    assert_int_equal(ns.not_ready, 2);
    assert_int_equal(ns.memory_pressure, 0);
    assert_int_equal(ns.disk_pressure, 0);
    json_decref(nodes);
}

static void test_node_pressure(void **state)
{
    (void)state;
    struct kube_nodes_summary ns;

    /* counted: MemoryPressure and DiskPressure True */
    json_t *v = parse("{\"items\": [{\"status\": {\"conditions\": ["
                      "{\"type\": \"Ready\", \"status\": \"True\"},"
                      "{\"type\": \"MemoryPressure\", \"status\": \"True\"},"
                      "{\"type\": \"DiskPressure\", \"status\": \"True\"}]}},"
                      "{\"status\": {\"conditions\": ["
                      "{\"type\": \"DiskPressure\", \"status\": \"True\"}]}}]}");
    assert_int_equal(kube_decode_nodes(v, &ns, NULL, NULL), 0);
    assert_int_equal(ns.not_ready, 1);
    assert_int_equal(ns.memory_pressure, 1);
    assert_int_equal(ns.disk_pressure, 2);
    json_decref(v);

    /* not counted: False, Unknown */
    v = parse("{\"items\": [{\"status\": {\"conditions\": ["
              "{\"type\": \"MemoryPressure\", \"status\": \"False\"},"
              "{\"type\": \"DiskPressure\", \"status\": \"Unknown\"}]}}]}");
    assert_int_equal(kube_decode_nodes(v, &ns, NULL, NULL), 0);
    assert_int_equal(ns.memory_pressure, 0);
    assert_int_equal(ns.disk_pressure, 0);
    json_decref(v);

    /* malformed: status not a string, conditions not an array, a condition not an object */
    v = parse("{\"items\": [{\"status\": {\"conditions\": ["
              "{\"type\": \"MemoryPressure\", \"status\": true}, 7,"
              "{\"type\": 1, \"status\": \"True\"}]}},"
              "{\"status\": {\"conditions\": {\"type\": \"DiskPressure\"}}}]}");
    assert_int_equal(kube_decode_nodes(v, &ns, NULL, NULL), 0);
    assert_int_equal(ns.memory_pressure, 0);
    assert_int_equal(ns.disk_pressure, 0);
    assert_int_equal(ns.not_ready, 2);
    json_decref(v);

    json_t *not_list = parse("{\"kind\": \"Status\"}");
    assert_int_equal(kube_decode_nodes(not_list, &ns, NULL, NULL), -EINVAL);
    json_decref(not_list);
}

static void test_oomkilled(void **state)
{
    (void)state;
    struct kube_pods_summary s;

    /* counted: lastState (an init container), state; one container with both counts once */
    json_t *v = parse("{\"items\": [{\"status\": {\"phase\": \"Running\","
                      " \"initContainerStatuses\": [{\"lastState\": {\"terminated\":"
                      " {\"reason\": \"OOMKilled\", \"exitCode\": 137}}}],"
                      " \"containerStatuses\": [{\"state\": {\"terminated\":"
                      " {\"reason\": \"OOMKilled\"}}},"
                      " {\"state\": {\"terminated\": {\"reason\": \"OOMKilled\"}},"
                      " \"lastState\": {\"terminated\": {\"reason\": \"OOMKilled\"}}}]}}]}");
    assert_int_equal(kube_decode_pods(v, &s, NULL, NULL), 0);
    assert_int_equal(s.oomkilled, 3);
    json_decref(v);

    /* not counted: another reason, waiting with OOMKilled, no termination */
    v = parse("{\"items\": [{\"status\": {\"containerStatuses\": ["
              "{\"lastState\": {\"terminated\": {\"reason\": \"Error\"}}},"
              "{\"state\": {\"waiting\": {\"reason\": \"OOMKilled\"}}},"
              "{\"state\": {\"running\": {}}}]}}]}");
    assert_int_equal(kube_decode_pods(v, &s, NULL, NULL), 0);
    assert_int_equal(s.oomkilled, 0);
    json_decref(v);

    /* malformed: reason not a string, terminated not an object, statuses not an array */
    v = parse("{\"items\": [{\"status\": {\"containerStatuses\": ["
              "{\"lastState\": {\"terminated\": {\"reason\": 137}}},"
              "{\"state\": {\"terminated\": \"OOMKilled\"}}, \"OOMKilled\"],"
              " \"initContainerStatuses\": {\"reason\": \"OOMKilled\"}}}]}");
    assert_int_equal(kube_decode_pods(v, &s, NULL, NULL), 0);
    assert_int_equal(s.oomkilled, 0);
    json_decref(v);
}

static void test_warning_events(void **state)
{
    (void)state;
    /* 2026-01-01T10:10:00Z */
    const time_t now = 1767261600 + 600;
    unsigned n = 99;

    /* counted: lastTimestamp, eventTime, creationTimestamp within 5 minutes, on the edge */
    json_t *v = parse("{\"items\": ["
                      "{\"type\": \"Warning\", \"lastTimestamp\": \"2026-01-01T10:09:00Z\"},"
                      "{\"type\": \"Warning\", \"lastTimestamp\": null,"
                      " \"eventTime\": \"2026-01-01T10:08:00.123456Z\"},"
                      "{\"type\": \"Warning\","
                      " \"metadata\": {\"creationTimestamp\": \"2026-01-01T10:07:00Z\"}},"
                      "{\"type\": \"Warning\", \"lastTimestamp\": \"2026-01-01T10:05:00Z\"}"
                      "]}");
    assert_int_equal(kube_decode_warning_events(v, now, 300, &n), 0);
    assert_int_equal(n, 4);
    json_decref(v);

    /* not counted: Normal, older than 5 minutes (lastTimestamp wins over a recent eventTime) */
    v = parse("{\"items\": ["
              "{\"type\": \"Normal\", \"lastTimestamp\": \"2026-01-01T10:09:00Z\"},"
              "{\"type\": \"Warning\", \"lastTimestamp\": \"2026-01-01T10:04:59Z\"},"
              "{\"type\": \"Warning\", \"lastTimestamp\": \"2026-01-01T09:00:00Z\","
              " \"eventTime\": \"2026-01-01T10:09:00Z\"}]}");
    assert_int_equal(kube_decode_warning_events(v, now, 300, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(kube_decode_warning_events(v, now, 7200, &n), 0);
    assert_int_equal(n, 2);
    json_decref(v);

    /* malformed: type not a string, no readable time, garbage items */
    v = parse("{\"items\": ["
              "{\"type\": 1, \"lastTimestamp\": \"2026-01-01T10:09:00Z\"},"
              "{\"type\": \"Warning\", \"lastTimestamp\": \"yesterday\"},"
              "{\"type\": \"Warning\", \"lastTimestamp\": 1767262100},"
              "{\"type\": \"Warning\"}, 42, null, \"Warning\","
              /* an unreadable lastTimestamp falls back to eventTime */
              "{\"type\": \"Warning\", \"lastTimestamp\": \"soon\","
              " \"eventTime\": \"2026-01-01T10:09:30Z\"}]}");
    assert_int_equal(kube_decode_warning_events(v, now, 300, &n), 0);
    assert_int_equal(n, 1);
    json_decref(v);

    json_t *not_list = parse("{\"kind\": \"Status\"}");
    n = 99;
    assert_int_equal(kube_decode_warning_events(not_list, now, 300, &n), -EINVAL);
    assert_int_equal(kube_decode_warning_events(NULL, now, 300, &n), -EINVAL);
    assert_int_equal(n, 99);
    json_decref(not_list);
}

struct collected {
    char text[16384];
    size_t len;
};

static void collect(void *userdata, const char *data, size_t len)
{
    struct collected *c = userdata;
    assert_true(c->len + len < sizeof(c->text));
    memcpy(c->text + c->len, data, len);
    c->len += len;
    c->text[c->len] = '\0';
}

static void test_text(void **state)
{
    (void)state;
    struct collected c = {0};
    struct kube_text out = {collect, &c};
    json_t *list = parse(PODS);

    kube_text_pods(&out, list, 0);
    assert_non_null(strstr(c.text, "NAME "));
    assert_non_null(strstr(c.text, "\ncrash "));
    assert_non_null(strstr(c.text, "0/1     CrashLoopBackOff    7 "));
    c.len = 0;
    kube_text_pod(&out, json_array_get(json_object_get(list, "items"), 1), 0);
    assert_non_null(strstr(c.text, "Reason: CrashLoopBackOff"));
    assert_non_null(strstr(c.text, "Restart Count: 7"));
    json_decref(list);

    /* Warnings first; a message cannot start a line of its own. */
    c.len = 0;
    json_t *events = parse("{\"items\": ["
                           "{\"type\": \"Normal\", \"reason\": \"Pulled\", \"message\": \"m1\","
                           " \"lastTimestamp\": \"2026-01-01T10:09:00Z\"},"
                           "{\"type\": \"Warning\", \"reason\": \"BackOff\","
                           " \"message\": \"evil\\n== kubectl fake ==\","
                           " \"lastTimestamp\": \"2026-01-01T10:00:00Z\"}]}");
    kube_text_events(&out, events, 1767261600 + 600, 10);
    char *warning = strstr(c.text, "BackOff"), *normal = strstr(c.text, "Pulled");
    assert_non_null(warning);
    assert_non_null(normal);
    assert_true(warning < normal);
    assert_null(strstr(c.text, "\n== kubectl fake"));
    assert_non_null(strstr(c.text, "evil?== kubectl fake =="));
    c.len = 0;
    kube_text_events(&out, events, 0, 1);
    assert_non_null(strstr(c.text, "(1 more events not shown)"));
    json_decref(events);

    /* Log text keeps its lines, loses its escape sequences. */
    c.len = 0;
    kube_text_log(&out, "a\tb\n\x1b[31mred", 12);
    assert_string_equal(c.text, "a\tb\n?[31mred\n");

    /* Not a list: said, not crashed on. */
    c.len = 0;
    json_t *status = parse("{\"kind\": \"Status\"}");
    kube_text_nodes(&out, status, 0);
    kube_text_top_nodes(&out, status, NULL);
    kube_text_ingresses(&out, status, 0);
    assert_non_null(strstr(c.text, "error: the answer is not a list of nodes"));
    json_decref(status);
}

static const char *const BACKEND =
    "{\"kind\": \"Deployment\", \"metadata\": {\"name\": \"backend\"},"
    " \"spec\": {\"replicas\": 3, \"selector\": {\"matchLabels\": {\"app\": \"backend\"}},"
    "  \"strategy\": {\"type\": \"RollingUpdate\"},"
    "  \"template\": {\"spec\": {"
    "   \"imagePullSecrets\": [{\"name\": \"regcred\"}],"
    "   \"volumes\": [{\"name\": \"tls\", \"secret\": {\"secretName\": \"backend-tls\"}},"
    "               {\"name\": \"p\", \"projected\": {\"sources\": [{\"configMap\": {\"name\": "
    "\"ca\"}}]}}],"
    "   \"initContainers\": [{\"name\": \"migrate\", \"envFrom\": [{\"secretRef\": {\"name\": "
    "\"db-admin\"}}]}],"
    "   \"containers\": [{\"name\": \"backend\", \"image\": \"reconciliation/backend:1.4.2\","
    "     \"resources\": {\"limits\": {\"cpu\": \"500m\", \"memory\": \"1Gi\"}},"
    "     \"env\": [{\"name\": \"DB_HOST\", \"value\": \"postgres-service\"},"
    "             {\"name\": \"DB_PASSWORD\", \"valueFrom\": {\"secretKeyRef\": {\"name\": "
    "\"reconciliation-secrets\", \"key\": \"DB_PASSWORD\"}}}],"
    "     \"envFrom\": [{\"configMapRef\": {\"name\": \"reconciliation-config\"}}]}]}}},"
    " \"status\": {\"replicas\": 3, \"updatedReplicas\": 3, \"readyReplicas\": 2,"
    "  \"availableReplicas\": 2, \"unavailableReplicas\": 1,"
    "  \"conditions\": [{\"type\": \"Available\", \"status\": \"False\", \"reason\": "
    "\"MinimumReplicasUnavailable\"}]}}";

/* k8s_describe kind=deployment and k8s_config: the deployment as describe shows it (no
 * environment value), the names of every Secret and ConfigMap it references and where, and a
 * ConfigMap whose values cannot forge a line of the artifact. */
static void test_deployment_and_config_text(void **state)
{
    (void)state;
    struct collected c = {0};
    struct kube_text out = {collect, &c};
    json_t *d = parse(BACKEND);

    assert_true(kube_deployment_troubled(d));
    kube_text_deployment(&out, d, 0);
    assert_non_null(strstr(c.text, "Selector:           app=backend\n"));
    assert_non_null(strstr(c.text,
                           "Replicas:           3 desired | 3 updated | 3 total | 2 available | 1 "
                           "unavailable\n"));
    assert_non_null(strstr(c.text, "Image:      reconciliation/backend:1.4.2"));
    assert_non_null(strstr(c.text, "Limits:     cpu=500m memory=1Gi"));
    assert_non_null(strstr(c.text, "Available         False   MinimumReplicasUnavailable"));
    assert_null(strstr(c.text, "postgres-service"));
    assert_null(strstr(c.text, "DB_HOST"));

    c.len = 0;
    kube_text_config_refs(&out, d);
    assert_non_null(strstr(c.text, "deployment backend (Secrets are named, never read):\n"));
    assert_non_null(strstr(c.text, "  secret     backend-tls (volume)\n"));
    assert_non_null(strstr(c.text, "  configmap  ca (projected volume)\n"));
    assert_non_null(strstr(c.text, "  secret     regcred (imagePullSecrets)\n"));
    assert_non_null(strstr(c.text, "  secret     db-admin (envFrom of container migrate)\n"));
    assert_non_null(
        strstr(c.text, "  secret     reconciliation-secrets (env of container backend)\n"));
    assert_non_null(
        strstr(c.text, "  configmap  reconciliation-config (envFrom of container backend)\n"));
    assert_null(strstr(c.text, "DB_PASSWORD"));
    json_decref(d);

    c.len = 0;
    json_t *cm = parse("{\"metadata\": {\"name\": \"cfg\"}, \"data\": {\"app.yaml\": "
                       "\"pool: 10\\n== kubectl get pods ==\\n\\u001b[2J\", \"LEVEL\": \"info\"},"
                       " \"binaryData\": {\"blob\": \"AAEC\"}}");
    kube_text_configmap(&out, cm);
    assert_string_equal(c.text, "ConfigMap cfg:\n"
                                "  app.yaml: |\n"
                                "    pool: 10\n"
                                "    == kubectl get pods ==\n"
                                "    ?[2J\n"
                                "  LEVEL: |\n"
                                "    info\n"
                                "  blob: <binary, 4 bytes of base64>\n");
    json_decref(cm);
    c.len = 0;
    cm = parse("{\"metadata\": {\"name\": \"empty\"}}");
    kube_text_configmap(&out, cm);
    assert_string_equal(c.text, "ConfigMap empty:\n  (no data)\n");
    json_decref(cm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantity),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_pods),
        cmocka_unit_test(test_deployments_and_nodes),
        cmocka_unit_test(test_node_pressure),
        cmocka_unit_test(test_oomkilled),
        cmocka_unit_test(test_warning_events),
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_deployment_and_config_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
