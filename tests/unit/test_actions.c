/*
 * Unit tests for the action catalog (agent/actions.c, actions_args.c) through agent_config_load,
 * as `vigil-agent -n` reads it: a good catalog loads; each bad one is refused at the right
 * file:line:col with a message that says what is wrong; hostile arguments are refused; argv
 * rendering keeps every value one element.
 *
 * The catalog must be root's (tests run as root); without root the tests are skipped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "actions.h"
#include "agent_config.h"
#include "keys.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/vigil-test-actions-XXXXXX";
static char path[512];
static char err[1024];
static char header[768];
static const char *top_keys = ""; /* top-level keys written before the header (role: cluster) */

/* Everything an agent.yaml needs, one watched process (for signal actions), then "actions:". */
static void make_header(void)
{
    struct vg_keypair kp;

    assert_int_equal(vg_keypair_generate(&kp), 0);
    snprintf(header, sizeof(header),
             "coordinator:\n"
             "  public_key: \"%s\"\n"
             "signers_file: \"\"\n"
             "collectors:\n"
             "  processes:\n"
             "    watch:\n"
             "      - {name: nginx, comm: nginx}\n"
             "  postgres:\n"
             "    targets: [{name: main, conninfo: \"host=/run/postgresql dbname=app\"}]\n"
             "  redis:\n"
             "    targets: [{name: cache, address: \"127.0.0.1:6379\"}]\n"
             "actions:\n",
             kp.public_key);
}

static void write_config(const char *actions_yaml, mode_t mode)
{
    static int counter;
    int fd;

    snprintf(path, sizeof(path), "%s/%d-agent.yaml", tmpdir, counter++);
    fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, top_keys, strlen(top_keys)), (ssize_t)strlen(top_keys));
    assert_int_equal(write(fd, header, strlen(header)), (ssize_t)strlen(header));
    assert_int_equal(write(fd, actions_yaml, strlen(actions_yaml)), (ssize_t)strlen(actions_yaml));
    assert_int_equal(fchmod(fd, mode), 0);
    assert_int_equal(close(fd), 0);
}

static int load(const char *actions_yaml, struct agent_config *cfg)
{
    write_config(actions_yaml, 0644);
    err[0] = '\0';
    return agent_config_load(path, cfg, err, sizeof(err));
}

/* The 1-based line and column of marker's first occurrence in the whole file, plus offset. */
static void position_of(const char *actions_yaml, const char *marker, size_t offset, int *ret_line,
                        int *ret_col)
{
    char *text;
    const char *hit;
    int line = 1, col = 1;

    assert_int_not_equal(asprintf(&text, "%s%s%s", top_keys, header, actions_yaml), -1);
    hit = strstr(text, marker);
    if (!hit)
        fail_msg("marker \"%s\" is not in the test's YAML", marker);
    hit += offset;
    for (const char *p = text; p < hit; p++) {
        if (*p == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    free(text);
    *ret_line = line;
    *ret_col = col;
}

/* The catalog must be refused with "file:line:col: " at marker (+ offset) and needle in it. */
static void expect_refused_at(const char *actions_yaml, const char *marker, size_t offset,
                              const char *needle)
{
    struct agent_config cfg;
    char prefix[600];
    int line, col;

    assert_int_not_equal(load(actions_yaml, &cfg), 0);
    agent_config_free(&cfg);
    position_of(actions_yaml, marker, offset, &line, &col);
    snprintf(prefix, sizeof(prefix), "%s:%d:%d: ", path, line, col);
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        fail_msg("error \"%s\" does not start with \"%s\"", err, prefix);
    if (!strstr(err, needle))
        fail_msg("error \"%s\" does not contain \"%s\"", err, needle);
}

static void expect_refused(const char *actions_yaml, const char *marker, const char *needle)
{
    expect_refused_at(actions_yaml, marker, 0, needle);
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int group_setup(void **state)
{
    (void)state;
    if (!mkdtemp(tmpdir))
        return -1;
    chmod(tmpdir, 0755);
    make_header();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static int need_root(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip(); /* the catalog's file must be root's */
    return 0;
}

/* ---- a good catalog: the runbooks' actions ---- */

static const char good_catalog[] =
    "  - name: restart-nginx\n"
    "    kind: exec\n"
    "    argv: [/bin/echo, restart, \"{unit}\"]\n"
    "    params:\n"
    "      - {name: unit, identifier: {pattern: \"[a-z0-9@._-]+\", max_length: 64}}\n"
    "    auto: true\n"
    "    evidence: [processes, \"log_tail name=web lines=50\"]\n"
    "  - name: say\n"
    "    kind: exec\n"
    "    argv: [/bin/echo, \"{words}\", \"{count}\", --wait, \"{wait}\"]\n"
    "    params:\n"
    "      - {name: words, enum: [\"hello world\", \"a b; c\"]}\n"
    "      - {name: count, int: {min: 1, max: 10}}\n"
    "      - {name: wait, duration: {min: 1s, max: 5m}}\n"
    "    timeout: 5s\n"
    "    output_max: 1KiB\n"
    "  - name: restart-unit\n"
    "    kind: systemd\n"
    "    params:\n"
    "      - {name: unit, enum: [nginx.service, php-fpm.service]}\n"
    "    precheck: check-unit\n"
    "  - name: check-unit\n"
    "    kind: exec\n"
    "    argv: [/bin/true, \"{unit}\"]\n"
    "    params:\n"
    "      - {name: unit, enum: [nginx.service, php-fpm.service]}\n"
    "  - name: hup-nginx\n"
    "    kind: signal\n"
    "    params:\n"
    "      - {name: process, enum: [nginx]}\n"
    "      - {name: signal, enum: [HUP, TERM]}\n"
    "  - name: block-source\n"
    "    kind: nft\n"
    "    op: block\n"
    "    params:\n"
    "      - name: address\n"
    "        cidr: {prefix4: {min: 16, max: 32}, deny: [192.0.2.0/24]}\n"
    "      - {name: expires, duration: {min: 1m, max: 24h}}\n"
    "    inverse: unblock-source\n"
    "  - name: unblock-source\n"
    "    kind: nft\n"
    "    op: unblock\n"
    "    params:\n"
    "      - {name: address, cidr: {prefix4: {min: 16}}}\n"
    "  - name: isolate-node\n"
    "    kind: isolate\n"
    "    destructive: true\n"
    "    inverse: release-node\n"
    "  - name: release-node\n"
    "    kind: isolate\n"
    "    op: release\n"
    "  - name: peer\n"
    "    kind: exec\n"
    "    argv: [/bin/echo, \"{ip}\"]\n"
    "    params:\n"
    "      - name: ip\n"
    "        ip:\n";

static struct agent_config good;

static int load_good(void **state)
{
    (void)state;
    if (geteuid() != 0)
        return 0; /* every test of the group is skipped */
    if (load(good_catalog, &good) != 0)
        fail_msg("the good catalog was refused: %s", err);
    return 0;
}

static int free_good(void **state)
{
    (void)state;
    agent_config_free(&good);
    return 0;
}

static void test_good_catalog_loads(void **state)
{
    const struct action *a, *b;
    (void)state;

    assert_int_equal(actions_count(good.catalog), 10);
    assert_null(actions_find(good.catalog, "no-such-action"));

    a = actions_find(good.catalog, "restart-nginx");
    assert_non_null(a);
    assert_int_equal(a->kind, ACTION_EXEC);
    assert_true(a->auto_run);
    assert_false(a->destructive);
    assert_int_equal(a->timeout_ms, 60000);           /* the default */
    assert_int_equal(a->output_max_bytes, 64 * 1024); /* the default */
    assert_int_equal(a->argc, 3);
    assert_string_equal(a->argv[0], "/bin/echo");
    assert_int_equal(a->argv_param[0], -1);
    assert_int_equal(a->argv_param[2], 0);
    assert_int_equal(a->params[0].type, ACTION_PARAM_IDENTIFIER);
    assert_int_equal(a->nevidence, 2);
    assert_string_equal(a->evidence[1].kind, "log_tail");
    assert_int_equal(a->evidence[1].nargs, 2);
    assert_string_equal(a->evidence[1].keys[1], "lines");
    assert_string_equal(a->evidence[1].values[1], "50");

    a = actions_find(good.catalog, "say");
    assert_int_equal(a->timeout_ms, 5000);
    assert_int_equal(a->output_max_bytes, 1024);
    assert_int_equal(a->params[1].type, ACTION_PARAM_INT);
    assert_int_equal(a->params[2].type, ACTION_PARAM_DURATION);
    assert_int_equal(a->params[2].max, 5 * 60 * 1000);

    a = actions_find(good.catalog, "restart-unit");
    assert_int_equal(a->kind, ACTION_SYSTEMD);
    assert_int_equal(a->op, ACTION_OP_RESTART);
    assert_ptr_equal(a->precheck, actions_find(good.catalog, "check-unit"));

    a = actions_find(good.catalog, "block-source");
    b = actions_find(good.catalog, "unblock-source");
    assert_int_equal(a->op, ACTION_OP_BLOCK);
    assert_int_equal(b->op, ACTION_OP_UNBLOCK);
    assert_ptr_equal(a->inverse, b);
    assert_int_equal(a->params[0].type, ACTION_PARAM_CIDR);
    assert_int_equal(a->params[0].ndeny, 3); /* 127.0.0.0/8, ::1, then the file's */

    a = actions_find(good.catalog, "isolate-node");
    assert_int_equal(a->op, ACTION_OP_ISOLATE);
    assert_true(a->destructive);
    assert_int_equal(actions_find(good.catalog, "release-node")->op, ACTION_OP_RELEASE);
    assert_int_equal(actions_find(good.catalog, "peer")->params[0].type, ACTION_PARAM_IP);
}

static void test_no_catalog_is_an_empty_one(void **state)
{
    struct agent_config cfg;
    (void)state;

    /* "actions:" with nothing under it, as the shipped config leaves it. */
    assert_int_equal(load("", &cfg), 0);
    assert_non_null(cfg.catalog);
    assert_int_equal(actions_count(cfg.catalog), 0);
    agent_config_free(&cfg);
}

/* ---- bad catalogs: each refused where the mistake is ---- */

static void test_placeholder_mixed_with_text(void **state)
{
    (void)state;
    expect_refused("  - name: restart-unit\n"
                   "    kind: exec\n"
                   "    argv: [/bin/echo, \"--unit={unit}\"]\n"
                   "    params:\n"
                   "      - {name: unit, enum: [nginx.service]}\n",
                   "\"--unit={unit}\"", "mixes text and a placeholder");
}

static void test_relative_program(void **state)
{
    (void)state;
    expect_refused_at("  - name: reload-nginx\n"
                      "    kind: exec\n"
                      "    argv: [nginx, -s, reload]\n",
                      "[nginx", 1, "must be an absolute path");
}

static void test_shell_program(void **state)
{
    (void)state;
    expect_refused("  - name: via-shell\n"
                   "    kind: exec\n"
                   "    argv: [/bin/sh, -c, \"echo hi\"]\n",
                   "/bin/sh", "is a shell");
}

static void test_placeholder_names_no_parameter(void **state)
{
    (void)state;
    expect_refused("  - name: echo-it\n"
                   "    kind: exec\n"
                   "    argv: [/bin/echo, \"{nope}\"]\n",
                   "\"{nope}\"", "names no parameter");
}

static void test_parameter_not_used(void **state)
{
    (void)state;
    expect_refused("  - name: echo-it\n"
                   "    kind: exec\n"
                   "    argv: [/bin/echo, hi]\n"
                   "    params:\n"
                   "      - {name: unused, int: {min: 1, max: 2}}\n",
                   "unused", "is not used in argv");
}

static void test_unknown_key(void **state)
{
    (void)state;
    expect_refused("  - name: echo-it\n"
                   "    kind: exec\n"
                   "    argv: [/bin/echo, hi]\n"
                   "    rot: true\n",
                   "rot:", "unknown key \"actions[0].rot\" (did you mean \"actions[0].root\"?)");
}

static void test_duplicate_name(void **state)
{
    (void)state;
    expect_refused("  - {name: echo-it, kind: exec, argv: [/bin/echo, a]}\n"
                   "  - {name: echo-it, kind: exec, argv: [/bin/echo, b]}\n",
                   "echo-it, kind: exec, argv: [/bin/echo, b]",
                   "action \"echo-it\" is defined twice (first as actions[0])");
}

static void test_inverse_missing(void **state)
{
    (void)state;
    expect_refused("  - name: block-it\n"
                   "    kind: nft\n"
                   "    op: block\n"
                   "    params:\n"
                   "      - {name: address, ip: {}}\n"
                   "      - {name: expires, duration: {min: 1m, max: 1h}}\n"
                   "    inverse: unblock-it\n",
                   "unblock-it", "inverse \"unblock-it\" is not an action of this catalog");
}

static void test_own_inverse(void **state)
{
    (void)state;
    expect_refused_at("  - name: echo-it\n"
                      "    kind: exec\n"
                      "    argv: [/bin/echo, hi]\n"
                      "    inverse: echo-it\n",
                      "inverse: echo-it", 9, "cannot be its own inverse");
}

static void test_auto_and_destructive(void **state)
{
    (void)state;
    expect_refused_at("  - name: isolate-node\n"
                      "    kind: isolate\n"
                      "    auto: true\n"
                      "    destructive: true\n",
                      "auto: true", 6, "both auto and destructive");
}

static void test_bad_regex(void **state)
{
    (void)state;
    expect_refused("  - name: echo-it\n"
                   "    kind: exec\n"
                   "    argv: [/bin/echo, \"{name}\"]\n"
                   "    params:\n"
                   "      - {name: name, identifier: {pattern: \"[a-z\"}}\n",
                   "\"[a-z\"", "is not a valid POSIX extended regular expression");
}

static void test_bad_types(void **state)
{
    (void)state;
    /* A value the loader cannot convert. */
    expect_refused("  - name: echo-it\n"
                   "    kind: exec\n"
                   "    argv: [/bin/echo, \"{n}\"]\n"
                   "    params:\n"
                   "      - {name: n, int: {min: one, max: 5}}\n",
                   "one", "\"actions[0].params[0].int.min\": must be an integer");
    /* No type, two types, an unknown one. */
    expect_refused("  - name: echo-it\n"
                   "    kind: exec\n"
                   "    argv: [/bin/echo, \"{n}\"]\n"
                   "    params:\n"
                   "      - {name: n}\n",
                   "name: n}", "parameter \"n\" needs a type");
    expect_refused("  - name: echo-it\n"
                   "    kind: exec\n"
                   "    argv: [/bin/echo, \"{n}\"]\n"
                   "    params:\n"
                   "      - {name: n, enum: [a], int: {min: 1, max: 2}}\n",
                   "name: n,", "has more than one type (enum and int)");
    expect_refused("  - name: echo-it\n"
                   "    kind: exec\n"
                   "    argv: [/bin/echo, \"{n}\"]\n"
                   "    params:\n"
                   "      - {name: n, float: {min: 1}}\n",
                   "float", "unknown key \"actions[0].params[0].float\"");
    expect_refused("  - name: echo-it\n"
                   "    kind: exec\n"
                   "    argv: [/bin/echo, \"{n}\"]\n"
                   "    params:\n"
                   "      - {name: n, int: {min: 1}}\n",
                   "min: 1}", "int needs both min and max");
    expect_refused("  - name: echo-it\n"
                   "    kind: rm\n",
                   "rm", "kind must be exec, systemd, signal, nft, isolate, postgres, redis or kubernetes");
}

static void test_builtin_parameters(void **state)
{
    (void)state;
    expect_refused("  - name: hup-it\n"
                   "    kind: signal\n"
                   "    params:\n"
                   "      - {name: process, enum: [sshd]}\n"
                   "      - {name: signal, enum: [HUP]}\n",
                   "sshd", "\"sshd\" is not a watched process");
    expect_refused("  - name: stop-it\n"
                   "    kind: signal\n"
                   "    params:\n"
                   "      - {name: process, enum: [nginx]}\n"
                   "      - {name: signal, enum: [STOP]}\n",
                   "STOP", "\"STOP\" is not one of TERM, HUP, USR1, USR2, KILL");
    expect_refused("  - name: block-it\n"
                   "    kind: nft\n"
                   "    params:\n"
                   "      - {name: address, ip: {}}\n",
                   "nft", "an nft action needs op: block or unblock");
    expect_refused("  - name: restart-it\n"
                   "    kind: systemd\n"
                   "    argv: [/bin/systemctl, restart, nginx]\n"
                   "    params:\n"
                   "      - {name: unit, enum: [nginx.service]}\n",
                   "/bin/systemctl", "argv is for exec actions");
    expect_refused("  - name: evidence-it\n"
                   "    kind: isolate\n"
                   "    destructive: true\n"
                   "    evidence: [\"shell cmd=id\"]\n",
                   "\"shell cmd=id\"", "must start with an evidence kind");
}

/* postgres, redis and kubernetes: fixed parameter names and types, a configured target, the
 * statement's placeholders, destructive where nothing undoes it, kubernetes on the cluster agent
 * only. */
static void test_service_kinds(void **state)
{
    struct agent_config cfg;
    (void)state;

    assert_int_equal(load("  - name: terminate-long-queries\n"
                          "    kind: postgres\n"
                          "    op: terminate\n"
                          "    target: main\n"
                          "    params:\n"
                          "      - {name: older_than, duration: {min: 1m, max: 1h}}\n"
                          "      - {name: database, enum: [app]}\n"
                          "  - name: purge-sessions\n"
                          "    kind: postgres\n"
                          "    op: statement\n"
                          "    target: main\n"
                          "    statement: \"DELETE FROM sessions WHERE created_at < now() - "
                          "$1::interval\"\n"
                          "    params: [{name: age, enum: [1 hour]}]\n"
                          "  - {name: flush-cache, kind: redis, op: flushall, target: cache, "
                          "destructive: true}\n",
                          &cfg),
                     0);
    assert_int_equal(actions_find(cfg.catalog, "terminate-long-queries")->kind, ACTION_POSTGRES);
    assert_int_equal(actions_find(cfg.catalog, "purge-sessions")->op, ACTION_OP_STATEMENT);
    assert_string_equal(actions_find(cfg.catalog, "flush-cache")->target, "cache");
    agent_config_free(&cfg);

    expect_refused("  - name: restart-backend\n"
                   "    kind: kubernetes\n"
                   "    op: restart\n"
                   "    params:\n"
                   "      - {name: namespace, enum: [app]}\n"
                   "      - {name: deployment, enum: [backend]}\n",
                   "kubernetes",
                   "kubernetes actions run only on the cluster agent (role: cluster)");
    expect_refused("  - {name: reindex, kind: postgres, op: reindex, target: main, params: [{name: "
                   "database, enum: [app]}]}\n",
                   "reindex, target", "postgres reindex cannot be undone, so it must be destructive");
    expect_refused("  - {name: flush, kind: redis, op: flushall, target: nowhere, destructive: "
                   "true}\n",
                   "nowhere", "target \"nowhere\" is not a name in collectors.redis.targets");
    expect_refused_at("  - {name: analyze, kind: postgres, op: analyze}\n", "kind: postgres", 6,
                      "a postgres action needs target");
    expect_refused("  - name: purge\n"
                   "    kind: postgres\n"
                   "    op: statement\n"
                   "    target: main\n"
                   "    statement: \"DELETE FROM t WHERE a = $2\"\n"
                   "    params: [{name: a, enum: [x]}]\n",
                   "\"DELETE", "the statement uses $2 but the action has 1 parameter");
    expect_refused("  - name: purge\n"
                   "    kind: postgres\n"
                   "    op: statement\n"
                   "    target: main\n"
                   "    statement: \"DELETE FROM t\"\n"
                   "    params: [{name: a, enum: [x]}]\n",
                   "\"DELETE", "parameter \"a\" is $1, which the statement never uses");
    expect_refused_at("  - {name: purge, kind: postgres, op: statement, target: main}\n",
                      "{name: purge", 1, "needs statement");
    expect_refused("  - name: kill-queries\n"
                   "    kind: postgres\n"
                   "    op: terminate\n"
                   "    target: main\n"
                   "    params:\n"
                   "      - {name: older_than, duration: {min: 1m, max: 1h}}\n"
                   "      - {name: database, identifier: {pattern: \"[a-z]+\"}}\n",
                   "name: database", "parameter \"database\" must be an enum of database names");
    expect_refused("  - {name: flush, kind: redis, op: flushdb, target: cache}\n", "flushdb",
                   "a redis flushdb action takes db; \"db\" is missing");
    expect_refused("  - {name: flush, kind: redis, op: flush, target: cache}\n", "flush, target",
                   "a redis action needs op: flushall or flushdb");

    /* The cluster agent: kubernetes actions load, with their fixed parameters. */
    top_keys = "node: cluster\nrole: cluster\n";
    assert_int_equal(load("  - name: scale-backend\n"
                          "    kind: kubernetes\n"
                          "    op: scale\n"
                          "    params:\n"
                          "      - {name: namespace, enum: [reconciliation]}\n"
                          "      - {name: deployment, enum: [backend]}\n"
                          "      - {name: replicas, int: {min: 1, max: 10}}\n",
                          &cfg),
                     0);
    assert_int_equal(actions_find(cfg.catalog, "scale-backend")->op, ACTION_OP_SCALE);
    agent_config_free(&cfg);
    expect_refused("  - name: scale-backend\n"
                   "    kind: kubernetes\n"
                   "    op: scale\n"
                   "    params:\n"
                   "      - {name: namespace, enum: [reconciliation]}\n"
                   "      - {name: deployment, identifier: {pattern: \"[a-z]+\"}}\n"
                   "      - {name: replicas, int: {min: 1, max: 10}}\n",
                   "name: deployment", "\"deployment\" must be an enum of deployment names");
    top_keys = "role: cluster\n";
    assert_int_equal(load("", &cfg), -EINVAL);
    assert_non_null(strstr(err, "an agent with role: cluster needs a node name of its own"));
    agent_config_free(&cfg);
    top_keys = "role: leader\n";
    assert_int_equal(load("", &cfg), -EINVAL);
    assert_non_null(strstr(err, "\"role\": must be node or cluster"));
    agent_config_free(&cfg);
    top_keys = "";
}

static void test_catalog_file_must_be_roots(void **state)
{
    struct agent_config cfg;
    (void)state;

    write_config("  - {name: echo-it, kind: exec, argv: [/bin/echo, hi]}\n", 0664);
    assert_int_equal(agent_config_load(path, &cfg, err, sizeof(err)), -EINVAL);
    agent_config_free(&cfg);
    if (!strstr(err, "writable by its group"))
        fail_msg("unexpected error: %s", err);
}

/* ---- arguments ---- */

static int check(const char *action, const struct action_arg *args, size_t n,
                 const struct action_deny *deny)
{
    const struct action *a = actions_find(good.catalog, action);
    assert_non_null(a);
    err[0] = '\0';
    return actions_check_args(a, args, n, deny, err, sizeof(err));
}

static void expect_arg_refused(const char *action, const struct action_arg *args, size_t n,
                               const struct action_deny *deny, const char *needle)
{
    if (check(action, args, n, deny) != -EINVAL)
        fail_msg("action %s: arguments accepted; expected \"%s\"", action, needle);
    if (!strstr(err, needle))
        fail_msg("reason \"%s\" does not contain \"%s\"", err, needle);
}

static void test_identifier_arguments(void **state)
{
    struct action_arg arg = {"unit", "nginx.service"};
    (void)state;

    assert_int_equal(check("restart-nginx", &arg, 1, NULL), 0);
    arg.value = "x; rm -rf /";
    expect_arg_refused("restart-nginx", &arg, 1, NULL, "argument \"unit\": \"x; rm -rf /\"");
    arg.value = "../../etc/shadow";
    expect_arg_refused("restart-nginx", &arg, 1, NULL, "\"../../etc/shadow\"");
    arg.value = "..";
    expect_arg_refused("restart-nginx", &arg, 1, NULL, "is not a name");
    arg.value = "-rf";
    expect_arg_refused("restart-nginx", &arg, 1, NULL, "could be read as an option");
    arg.value = "NGINX";
    expect_arg_refused("restart-nginx", &arg, 1, NULL, "does not match ^([a-z0-9@._-]+)$");
    arg.value = "a\nb";
    expect_arg_refused("restart-nginx", &arg, 1, NULL, "outside printable ASCII");
    arg.value = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"; /* 65 */
    expect_arg_refused("restart-nginx", &arg, 1, NULL, "longer than 64 characters");
}

static void test_typed_arguments(void **state)
{
    struct action_arg args[] = {{"words", "hello world"}, {"count", "3"}, {"wait", "30s"}};
    struct action_arg extra[] = {
        {"words", "hello world"}, {"count", "3"}, {"wait", "30s"}, {"shell", "yes"}};
    struct action_arg twice[] = {{"words", "hello world"}, {"count", "3"}, {"count", "4"}};
    (void)state;

    assert_int_equal(check("say", args, 3, NULL), 0);
    args[1].value = "11";
    expect_arg_refused("say", args, 3, NULL, "\"11\" is out of range: 1 to 10");
    args[1].value = "0";
    expect_arg_refused("say", args, 3, NULL, "out of range");
    args[1].value = "+5";
    expect_arg_refused("say", args, 3, NULL, "is not written plainly (write 5)");
    args[1].value = "3 ";
    expect_arg_refused("say", args, 3, NULL, "is not an integer");
    args[1].value = "3";
    args[2].value = "10m";
    expect_arg_refused("say", args, 3, NULL, "\"10m\" is out of range: 1s to 5m");
    args[2].value = "soon";
    expect_arg_refused("say", args, 3, NULL, "is not a duration");
    args[2].value = "30s";
    args[0].value = "goodbye";
    expect_arg_refused("say", args, 3, NULL, "\"goodbye\" is not one of the 2 values allowed");
    args[0].value = "hello world";

    expect_arg_refused("say", extra, 4, NULL,
                       "unknown argument \"shell\": action \"say\" takes words, count, wait");
    expect_arg_refused("say", args, 2, NULL, "missing argument \"wait\" (duration)");
    expect_arg_refused("say", twice, 3, NULL, "argument \"count\" is given twice");
    expect_arg_refused("isolate-node", args, 1, NULL,
                       "unknown argument \"words\": action \"isolate-node\" takes no arguments");
    assert_int_equal(check("isolate-node", NULL, 0, NULL), 0);
}

static void test_network_arguments(void **state)
{
    struct action_arg args[] = {{"address", "198.51.100.0/24"}, {"expires", "10m"}};
    struct action_deny deny = {0};
    struct action_arg ip = {"ip", "203.0.113.9"};
    (void)state;

    /* At run time: the coordinator's address and this node's own. */
    assert_int_equal(actions_deny_add(&deny, "10.1.2.3"), 0);
    assert_int_equal(actions_deny_add(&deny, "2001:db8:1::7"), 0);
    assert_int_equal(actions_deny_add(&deny, "not-an-address"), -EINVAL);
    assert_int_equal(actions_deny_add_interfaces(&deny), 0);

    assert_int_equal(check("block-source", args, 2, &deny), 0);
    args[0].value = "198.51.100.7"; /* a single address is a /32 */
    assert_int_equal(check("block-source", args, 2, &deny), 0);

    args[0].value = "10.1.0.0/16"; /* covers the coordinator */
    expect_arg_refused("block-source", args, 2, &deny, "covers 10.1.2.3, which is never accepted");
    args[0].value = "::ffff:10.1.2.3"; /* the coordinator, spelt as IPv6 */
    expect_arg_refused("block-source", args, 2, &deny, "covers 10.1.2.3");
    args[0].value = "2001:db8:1::/48";
    expect_arg_refused("block-source", args, 2, &deny, "covers 2001:db8:1::7");
    args[0].value = "127.0.0.0/16"; /* loopback, always */
    expect_arg_refused("block-source", args, 2, NULL, "covers 127.0.0.0/8");
    args[0].value = "192.0.2.128/25"; /* the parameter's own deny list */
    expect_arg_refused("block-source", args, 2, NULL, "covers 192.0.2.0/24");
    args[0].value = "10.0.0.0/8"; /* wider than the prefix bounds allow */
    expect_arg_refused("block-source", args, 2, NULL, "IPv4 prefixes from /16 to /32");
    args[0].value = "198.51.100.1/24"; /* host bits set */
    expect_arg_refused("block-source", args, 2, NULL, "host bits clear");
    args[0].value = "198.51.100.0/24; flush ruleset";
    expect_arg_refused("block-source", args, 2, NULL, "is not an IP address or a network");
    args[0].value = "198.51.100.0/24";
    args[1].value = "30s";
    expect_arg_refused("block-source", args, 2, NULL, "out of range: 1m to 24h");

    assert_int_equal(check("peer", &ip, 1, &deny), 0);
    ip.value = "127.0.0.1";
    expect_arg_refused("peer", &ip, 1, &deny, "covers 127.0.0.0/8");
    ip.value = "203.0.113.0/24"; /* ip takes an address, not a network */
    expect_arg_refused("peer", &ip, 1, &deny, "is not an IP address");

    actions_deny_free(&deny);
}

static void test_net_overlap_across_families(void **state)
{
    struct action_net all6, lo, net;
    char buf[64];
    (void)state;

    assert_int_equal(actions_net_parse("::/0", true, &all6), 0);
    assert_int_equal(actions_net_parse("127.0.0.1", false, &lo), 0);
    assert_true(actions_net_overlap(&all6, &lo));
    assert_int_equal(actions_net_parse("::ffff:192.0.2.0/120", true, &net), 0);
    assert_int_equal(net.family, AF_INET);
    assert_string_equal(actions_net_format(&net, buf, sizeof(buf)), "192.0.2.0/24");
    assert_int_equal(actions_net_parse("fe80::1%eth0", false, &net), -EINVAL);
    assert_int_equal(actions_net_parse("10.0.0.0/08", true, &net), -EINVAL);
    assert_int_equal(actions_net_parse("10.0.0.0/33", true, &net), -EINVAL);
}

static void test_render_keeps_each_value_one_element(void **state)
{
    struct action_arg args[] = {{"wait", "10s"}, {"words", "a b; c"}, {"count", "3"}};
    const struct action *a = actions_find(good.catalog, "say");
    char **argv = NULL;
    (void)state;

    assert_int_equal(check("say", args, 3, NULL), 0);
    assert_int_equal(actions_render_argv(a, args, 3, &argv), 0);
    assert_string_equal(argv[0], "/bin/echo");
    assert_string_equal(argv[1], "a b; c");
    assert_string_equal(argv[2], "3");
    assert_string_equal(argv[3], "--wait");
    assert_string_equal(argv[4], "10s");
    assert_null(argv[5]);
    actions_argv_free(&argv);
    assert_null(argv);

    /* A placeholder without its argument, and a built-in, render nothing. */
    assert_int_equal(actions_render_argv(a, args, 2, &argv), -EINVAL);
    assert_null(argv);
    assert_int_equal(
        actions_render_argv(actions_find(good.catalog, "restart-unit"), args, 3, &argv), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest loads[] = {
        cmocka_unit_test_setup(test_no_catalog_is_an_empty_one, need_root),
        cmocka_unit_test_setup(test_placeholder_mixed_with_text, need_root),
        cmocka_unit_test_setup(test_relative_program, need_root),
        cmocka_unit_test_setup(test_shell_program, need_root),
        cmocka_unit_test_setup(test_placeholder_names_no_parameter, need_root),
        cmocka_unit_test_setup(test_parameter_not_used, need_root),
        cmocka_unit_test_setup(test_unknown_key, need_root),
        cmocka_unit_test_setup(test_duplicate_name, need_root),
        cmocka_unit_test_setup(test_inverse_missing, need_root),
        cmocka_unit_test_setup(test_own_inverse, need_root),
        cmocka_unit_test_setup(test_auto_and_destructive, need_root),
        cmocka_unit_test_setup(test_bad_regex, need_root),
        cmocka_unit_test_setup(test_bad_types, need_root),
        cmocka_unit_test_setup(test_builtin_parameters, need_root),
        cmocka_unit_test_setup(test_service_kinds, need_root),
        cmocka_unit_test_setup(test_catalog_file_must_be_roots, need_root),
        cmocka_unit_test(test_net_overlap_across_families),
    };
    const struct CMUnitTest good_tests[] = {
        cmocka_unit_test_setup(test_good_catalog_loads, need_root),
        cmocka_unit_test_setup(test_identifier_arguments, need_root),
        cmocka_unit_test_setup(test_typed_arguments, need_root),
        cmocka_unit_test_setup(test_network_arguments, need_root),
        cmocka_unit_test_setup(test_render_keeps_each_value_one_element, need_root),
    };
    int failed;

    if (group_setup(NULL) != 0)
        return 1;
    failed = cmocka_run_group_tests_name("catalog", loads, NULL, NULL);
    failed += cmocka_run_group_tests_name("good catalog", good_tests, load_good, free_good);
    group_teardown(NULL);
    return failed;
}
