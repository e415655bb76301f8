/*
 * What a DaemonSet needs from the agent: its status file and the --health / --ready verdicts
 * read from it (status.h), the node name from NODE_NAME when agent.yaml leaves `node` empty,
 * and the coordinator's public key from a file (a Secret) instead of the configuration.
 */
#include <setjmp.h> /* cmocka needs these first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "agent_config.h"
#include "status.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/test_agent_status.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    (void)state;
    return nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static struct agent_status sample(int64_t now)
{
    struct agent_status st = {.pid = 42,
                              .written_ms = now,
                              .interval_ms = AGENT_STATUS_INTERVAL_MS,
                              .started_ms = now - 60000,
                              .connected = true,
                              .last_contact_ms = now - 1000,
                              .heartbeat_interval_ms = 5000,
                              .spool_depth = 7,
                              .executor_ok = true};
    snprintf(st.node, sizeof(st.node), "worker-3");
    snprintf(st.agent_id, sizeof(st.agent_id), "ag-0123456789abcdef");
    snprintf(st.link, sizeof(st.link), "active");
    return st;
}

static void test_write_read_round_trip(void **state)
{
    (void)state;
    struct agent_status in = sample(1765000000000), out;
    char err[256], path[256];
    struct stat sb;

    assert_int_equal(agent_status_write(dir, &in), 0);
    snprintf(path, sizeof(path), "%s/status.part", dir);
    assert_int_equal(stat(path, &sb), -1); /* renamed, not left behind */
    snprintf(path, sizeof(path), "%s/status", dir);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(agent_status_read(dir, &out, err, sizeof(err)), 0);
    assert_int_equal(out.pid, 42);
    assert_string_equal(out.node, "worker-3");
    assert_string_equal(out.agent_id, "ag-0123456789abcdef");
    assert_string_equal(out.link, "active");
    assert_true(out.connected);
    assert_true(out.executor_ok);
    assert_int_equal(out.written_ms, in.written_ms);
    assert_int_equal(out.last_contact_ms, in.last_contact_ms);
    assert_int_equal(out.spool_depth, 7);

    assert_int_equal(agent_status_remove(dir), 0);
    assert_int_equal(agent_status_read(dir, &out, err, sizeof(err)), -ENOENT);
    assert_int_equal(agent_status_remove(dir), 0); /* already gone is fine */
}

static void test_read_refuses_what_is_not_a_status_file(void **state)
{
    (void)state;
    struct agent_status out;
    char err[256], big[AGENT_STATUS_MAX_BYTES + 64];

    write_file("status", "hello\n");
    assert_int_equal(agent_status_read(dir, &out, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "not a status line"));
    /* Without the fields the verdict needs. */
    write_file("status", "version=1\ninterval_ms=5000\nexecutor_ok=1\n");
    assert_int_equal(agent_status_read(dir, &out, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "incomplete"));
    write_file("status", "version=1\nwritten_ms=-5\ninterval_ms=5000\nexecutor_ok=1\n");
    assert_int_equal(agent_status_read(dir, &out, err, sizeof(err)), -EINVAL);
    write_file("status", "version=2\nwritten_ms=5\ninterval_ms=5000\nexecutor_ok=1\n");
    assert_int_equal(agent_status_read(dir, &out, err, sizeof(err)), -EINVAL);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    write_file("status", big);
    assert_int_equal(agent_status_read(dir, &out, err, sizeof(err)), -EINVAL);
    /* Unknown keys are a newer agent's: ignored. */
    write_file("status", "version=1\nwritten_ms=5\ninterval_ms=5000\nexecutor_ok=1\nnew_key=x\n");
    assert_int_equal(agent_status_read(dir, &out, err, sizeof(err)), 0);
}

static void test_verdicts(void **state)
{
    (void)state;
    const int64_t now = 1765000000000;
    char why[512];
    struct agent_status st = sample(now - 2000);

    assert_true(agent_status_check(&st, now, false, why, sizeof(why)));
    assert_non_null(strstr(why, "healthy: node worker-3, link active"));
    assert_true(agent_status_check(&st, now, true, why, sizeof(why)));
    assert_non_null(strstr(why, "ready:"));

    /* Written more than three intervals ago: the loop is stuck or the agent is gone. */
    st.written_ms = now - 3 * AGENT_STATUS_INTERVAL_MS - 1;
    assert_false(agent_status_check(&st, now, false, why, sizeof(why)));
    assert_non_null(strstr(why, "stale after 15s"));
    st.written_ms = now - 3 * AGENT_STATUS_INTERVAL_MS;
    assert_true(agent_status_check(&st, now, false, why, sizeof(why)));

    st = sample(now);
    st.executor_ok = false;
    assert_false(agent_status_check(&st, now, false, why, sizeof(why)));
    assert_non_null(strstr(why, "executor"));

    /* Alive, but the coordinator has not answered for more than three heartbeats. */
    st = sample(now);
    st.last_contact_ms = now - 16000;
    assert_true(agent_status_check(&st, now, false, why, sizeof(why)));
    assert_false(agent_status_check(&st, now, true, why, sizeof(why)));
    assert_non_null(strstr(why, "not ready: no answer from the coordinator (last: 16s ago"));
    st.last_contact_ms = 0;
    assert_false(agent_status_check(&st, now, true, why, sizeof(why)));
    assert_non_null(strstr(why, "last: never"));
    /* Waiting for approval is being answered. */
    st = sample(now);
    snprintf(st.link, sizeof(st.link), "pending");
    assert_true(agent_status_check(&st, now, true, why, sizeof(why)));
    snprintf(st.link, sizeof(st.link), "revoked");
    assert_false(agent_status_check(&st, now, true, why, sizeof(why)));
    assert_non_null(strstr(why, "revoked"));
}

/* A minimal agent.yaml with the given extra lines. */
static const char *config_with(const char *extra, const char *key)
{
    static char path[256];
    char text[1024];
    snprintf(text, sizeof(text),
             "state_dir: %s/state\nsigners_file: \"\"\n%s%s%s%s", dir, key ? "coordinator:\n  public_key: \"" : "",
             key ? key : "", key ? "\"\n" : "", extra);
    write_file("agent.yaml", text);
    snprintf(path, sizeof(path), "%s/agent.yaml", dir);
    return path;
}

static void test_node_name_from_environment(void **state)
{
    (void)state;
    char pub[41], sec[41], err[512], host[256] = "";
    struct agent_config cfg;

    assert_int_equal(zmq_curve_keypair(pub, sec), 0);
    gethostname(host, sizeof(host) - 1);

    /* node empty, NODE_NAME set: the cluster's name for the node. */
    setenv("NODE_NAME", "ip-10-0-3-7.eu-west-1.compute.internal", 1);
    assert_int_equal(agent_config_load(config_with("", pub), &cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg.node, "ip-10-0-3-7.eu-west-1.compute.internal");
    agent_config_free(&cfg);
    /* The executor reads the same file with the same rule. */
    assert_int_equal(agent_config_load_remediation(config_with("", pub), &cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg.node, "ip-10-0-3-7.eu-west-1.compute.internal");
    agent_config_free(&cfg);

    /* node set in the file wins. */
    assert_int_equal(agent_config_load(config_with("node: web-1\n", pub), &cfg, err, sizeof(err)),
                     0);
    assert_string_equal(cfg.node, "web-1");
    agent_config_free(&cfg);

    /* Not a name: refused, naming the variable. */
    setenv("NODE_NAME", "two words", 1);
    assert_int_equal(agent_config_load(config_with("", pub), &cfg, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "NODE_NAME"));
    agent_config_free(&cfg);

    /* Neither: the hostname, as before. */
    setenv("NODE_NAME", "", 1);
    assert_int_equal(agent_config_load(config_with("", pub), &cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg.node, host[0] ? host : "unknown");
    agent_config_free(&cfg);
    unsetenv("NODE_NAME");
    assert_int_equal(agent_config_load(config_with("", pub), &cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg.node, host[0] ? host : "unknown");
    agent_config_free(&cfg);
}

static void test_public_key_file(void **state)
{
    (void)state;
    char pub[41], sec[41], err[512], text[256];
    struct agent_config cfg;

    assert_int_equal(zmq_curve_keypair(pub, sec), 0);
    snprintf(text, sizeof(text), "%s\n", pub);
    write_file("coordinator.pub", text);
    snprintf(text, sizeof(text), "coordinator:\n  public_key_file: %s/coordinator.pub\n", dir);
    assert_int_equal(agent_config_load(config_with(text, NULL), &cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg.coordinator_public_key, pub);
    agent_config_free(&cfg);

    /* Both, neither, or a file without a key: refused with the key's name. */
    snprintf(text, sizeof(text), "  public_key_file: %s/coordinator.pub\n", dir);
    assert_int_equal(agent_config_load(config_with(text, pub), &cfg, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "not both"));
    agent_config_free(&cfg);
    assert_int_equal(agent_config_load(config_with("", NULL), &cfg, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "required"));
    agent_config_free(&cfg);
    write_file("coordinator.pub", "not a key\n");
    snprintf(text, sizeof(text), "coordinator:\n  public_key_file: %s/coordinator.pub\n", dir);
    assert_int_equal(agent_config_load(config_with(text, NULL), &cfg, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "does not hold a Z85 CURVE public key"));
    agent_config_free(&cfg);
    snprintf(text, sizeof(text), "coordinator:\n  public_key_file: %s/missing.pub\n", dir);
    assert_int_equal(agent_config_load(config_with(text, NULL), &cfg, err, sizeof(err)), -ENOENT);
    agent_config_free(&cfg);
}

/* An evidence chunk is one spooled message: a chunk that no segment can hold is refused at load,
 * not at the first capture (which would fail every time). */
static void test_chunk_must_fit_a_segment(void **state)
{
    (void)state;
    char pub[41], sec[41], err[512];
    struct agent_config cfg;

    assert_int_equal(zmq_curve_keypair(pub, sec), 0);
    assert_int_equal(agent_config_load(config_with("spool:\n  max_size: 1MiB\n"
                                                   "  segment_size: 128KiB\n"
                                                   "evidence:\n  chunk_size: 256KiB\n",
                                                   pub),
                                       &cfg, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "\"evidence.chunk_size\" (262144 bytes) does not fit in a spool "
                                "segment"));
    agent_config_free(&cfg);
    /* The same chunk with segments that hold it, or a chunk that fits the segments. */
    assert_int_equal(agent_config_load(config_with("spool:\n  max_size: 4MiB\n"
                                                   "  segment_size: 512KiB\n"
                                                   "evidence:\n  chunk_size: 256KiB\n",
                                                   pub),
                                       &cfg, err, sizeof(err)),
                     0);
    agent_config_free(&cfg);
    assert_int_equal(agent_config_load(config_with("spool:\n  max_size: 1MiB\n"
                                                   "  segment_size: 128KiB\n"
                                                   "evidence:\n  chunk_size: 64KiB\n",
                                                   pub),
                                       &cfg, err, sizeof(err)),
                     0);
    agent_config_free(&cfg);
    /* The defaults hold together. */
    assert_int_equal(agent_config_load(config_with("", pub), &cfg, err, sizeof(err)), 0);
    agent_config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_read_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_refuses_what_is_not_a_status_file, setup,
                                        teardown),
        cmocka_unit_test(test_verdicts),
        cmocka_unit_test_setup_teardown(test_node_name_from_environment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_public_key_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunk_must_fit_a_segment, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
