/* Unit tests for the table-driven YAML configuration loader (common/config.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "config.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct test_cfg {
    char *name;
    char *tag;
    char *store_url;
    int64_t store_timeout_ms;
    int64_t store_pool_size;
    int64_t heartbeat_ms;
    int64_t spool_max;
    bool tls;
};

static const struct vg_cfg_key test_keys[] = {
    {.path = "name",
     .type = VG_CFG_STRING,
     .offset = offsetof(struct test_cfg, name),
     .min = 0,
     .max = 0,
     .def = "vigil",
     .required = false,
     .help = "node name"},
    {.path = "tag",
     .type = VG_CFG_STRING,
     .offset = offsetof(struct test_cfg, tag),
     .min = 0,
     .max = 8,
     .def = NULL,
     .required = false,
     .help = "short tag"},
    {.path = "store.url",
     .type = VG_CFG_STRING,
     .offset = offsetof(struct test_cfg, store_url),
     .min = 0,
     .max = 0,
     .def = NULL,
     .required = false,
     .help = "db"},
    {.path = "store.timeout",
     .type = VG_CFG_DURATION_MS,
     .offset = offsetof(struct test_cfg, store_timeout_ms),
     .min = 100,
     .max = 60000,
     .def = "10s",
     .required = false,
     .help = "db timeout"},
    {.path = "store.pool.size",
     .type = VG_CFG_INT,
     .offset = offsetof(struct test_cfg, store_pool_size),
     .min = 1,
     .max = 64,
     .def = "4",
     .required = false,
     .help = "pool size"},
    {.path = "link.heartbeat",
     .type = VG_CFG_DURATION_MS,
     .offset = offsetof(struct test_cfg, heartbeat_ms),
     .min = 1000,
     .max = 3600000,
     .def = "5s",
     .required = false,
     .help = "heartbeat"},
    {.path = "spool.max-size",
     .type = VG_CFG_SIZE,
     .offset = offsetof(struct test_cfg, spool_max),
     .min = 1024,
     .max = 1 << 30,
     .def = "64MiB",
     .required = false,
     .help = "spool cap"},
    {.path = "tls",
     .type = VG_CFG_BOOL,
     .offset = offsetof(struct test_cfg, tls),
     .min = 0,
     .max = 0,
     .def = "false",
     .required = false,
     .help = "use TLS"},
};
#define NKEYS (sizeof(test_keys) / sizeof(test_keys[0]))

static const struct vg_cfg_key required_keys[] = {
    {.path = "name",
     .type = VG_CFG_STRING,
     .offset = offsetof(struct test_cfg, name),
     .min = 0,
     .max = 0,
     .def = "vigil",
     .required = false,
     .help = "node name"},
    {.path = "store.url",
     .type = VG_CFG_STRING,
     .offset = offsetof(struct test_cfg, store_url),
     .min = 0,
     .max = 0,
     .def = NULL,
     .required = true,
     .help = "db"},
};
#define NREQ (sizeof(required_keys) / sizeof(required_keys[0]))

static char tmpdir[] = "/tmp/vigil-test-config-XXXXXX";
static char path[512];
static char err[512];

static void write_file(const char *text)
{
    static int counter;
    FILE *fp;

    snprintf(path, sizeof(path), "%s/cfg%d.yaml", tmpdir, counter++);
    fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
}

/* Writes text, loads it with the test table, returns the loader's result. */
static int load_text(const char *text, struct test_cfg *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    err[0] = '\0';
    write_file(text);
    return vg_config_load(path, test_keys, NKEYS, cfg, err, sizeof(err));
}

/* err must be exactly "<path><suffix>". */
static void assert_err_is(const char *suffix)
{
    char expected[1024];

    snprintf(expected, sizeof(expected), "%s%s", path, suffix);
    assert_string_equal(err, expected);
}

static void assert_err_contains(const char *needle)
{
    if (!strstr(err, needle))
        fail_msg("error \"%s\" does not contain \"%s\"", err, needle);
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
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void test_empty_file_gives_defaults(void **state)
{
    (void)state;
    struct test_cfg cfg;

    assert_int_equal(load_text("", &cfg), 0);
    assert_string_equal(cfg.name, "vigil");
    assert_null(cfg.store_url);
    assert_int_equal(cfg.store_timeout_ms, 10000);
    assert_int_equal(cfg.store_pool_size, 4);
    assert_int_equal(cfg.heartbeat_ms, 5000);
    assert_int_equal(cfg.spool_max, 64 << 20);
    assert_false(cfg.tls);
    vg_config_free(test_keys, NKEYS, &cfg);

    assert_int_equal(load_text("# nothing but a comment\n\n", &cfg), 0);
    assert_string_equal(cfg.name, "vigil");
    vg_config_free(test_keys, NKEYS, &cfg);
}

static void test_nested_keys(void **state)
{
    (void)state;
    struct test_cfg cfg;

    assert_int_equal(load_text("name: worker-3\n"
                               "store:\n"
                               "  url: \"postgres://db/vigil\"\n"
                               "  timeout: 250ms\n"
                               "  pool:\n"
                               "    size: 16\n"
                               "link: {heartbeat: 2m}\n",
                               &cfg),
                     0);
    assert_string_equal(cfg.name, "worker-3");
    assert_string_equal(cfg.store_url, "postgres://db/vigil");
    assert_int_equal(cfg.store_timeout_ms, 250);
    assert_int_equal(cfg.store_pool_size, 16);
    assert_int_equal(cfg.heartbeat_ms, 120000);
    /* Keys the file did not set keep their defaults. */
    assert_int_equal(cfg.spool_max, 64 << 20);
    vg_config_free(test_keys, NKEYS, &cfg);

    /* An empty section is allowed and changes nothing. */
    assert_int_equal(load_text("store:\n  # url: x\n", &cfg), 0);
    assert_int_equal(cfg.store_timeout_ms, 10000);
    vg_config_free(test_keys, NKEYS, &cfg);
}

static void test_unknown_key_has_position(void **state)
{
    (void)state;
    struct test_cfg cfg;

    assert_int_equal(load_text("name: a\ntls: true\nbogus: 1\n", &cfg), -EINVAL);
    assert_err_is(":3:1: unknown key \"bogus\"");
    vg_config_free(test_keys, NKEYS, &cfg);

    assert_int_equal(load_text("name: a\nstore:\n  urll: x\n", &cfg), -EINVAL);
    assert_err_is(":3:3: unknown key \"store.urll\" (did you mean \"store.url\"?)");
    vg_config_free(test_keys, NKEYS, &cfg);
}

static void test_out_of_range(void **state)
{
    (void)state;
    struct test_cfg cfg;

    assert_int_equal(load_text("link:\n  heartbeat: 0s\n", &cfg), -ERANGE);
    assert_err_is(":2:14: \"link.heartbeat\": must be between 1s and 1h (got \"0s\")");
    assert_int_equal(cfg.heartbeat_ms, 5000); /* the default stays */
    vg_config_free(test_keys, NKEYS, &cfg);

    /* A quoted value is reported at its opening quote. */
    assert_int_equal(load_text("link:\n  heartbeat: \"0s\"\n", &cfg), -ERANGE);
    assert_err_is(":2:14: \"link.heartbeat\": must be between 1s and 1h (got \"0s\")");
    vg_config_free(test_keys, NKEYS, &cfg);

    assert_int_equal(load_text("store: {timeout: 2m}\n", &cfg), -ERANGE);
    assert_err_is(":1:18: \"store.timeout\": must be between 100ms and 1m (got \"2m\")");
    vg_config_free(test_keys, NKEYS, &cfg);

    assert_int_equal(load_text("spool:\n  max-size: 2GiB\n", &cfg), -ERANGE);
    assert_err_is(":2:13: \"spool.max-size\": must be between 1KiB and 1GiB (got \"2GiB\")");
    vg_config_free(test_keys, NKEYS, &cfg);

    assert_int_equal(load_text("store.pool.size: 65\n", &cfg), -ERANGE);
    assert_err_contains("\"store.pool.size\": must be between 1 and 64 (got \"65\")");
    vg_config_free(test_keys, NKEYS, &cfg);
}

static void test_bad_duration(void **state)
{
    (void)state;
    struct test_cfg cfg;
    int64_t ms = -1;

    assert_int_equal(load_text("link:\n  heartbeat: 5x\n", &cfg), -EINVAL);
    assert_err_is(":2:14: \"link.heartbeat\": must be a duration such as 250ms, 5s, 2m, 1h or 1d "
                  "(got \"5x\")");
    vg_config_free(test_keys, NKEYS, &cfg);

    assert_int_equal(load_text("link:\n  heartbeat: -5s\n", &cfg), -ERANGE);
    assert_err_contains("must be between 1s and 1h (got \"-5s\")");
    vg_config_free(test_keys, NKEYS, &cfg);

    assert_int_equal(vg_parse_duration_ms("250ms", &ms), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(vg_parse_duration_ms("5s", &ms), 0);
    assert_int_equal(ms, 5000);
    assert_int_equal(vg_parse_duration_ms("2m", &ms), 0);
    assert_int_equal(ms, 120000);
    assert_int_equal(vg_parse_duration_ms("1h", &ms), 0);
    assert_int_equal(ms, 3600000);
    assert_int_equal(vg_parse_duration_ms("1d", &ms), 0);
    assert_int_equal(ms, 86400000);
    assert_int_equal(vg_parse_duration_ms("7", &ms), 0);
    assert_int_equal(ms, 7000);

    ms = 42;
    assert_int_equal(vg_parse_duration_ms("-5s", &ms), -ERANGE);
    assert_int_equal(vg_parse_duration_ms("", &ms), -EINVAL);
    assert_int_equal(vg_parse_duration_ms("s", &ms), -EINVAL);
    assert_int_equal(vg_parse_duration_ms("5 s", &ms), -EINVAL);
    assert_int_equal(vg_parse_duration_ms("1h30m", &ms), -EINVAL);
    assert_int_equal(vg_parse_duration_ms("1.5s", &ms), -EINVAL);
    assert_int_equal(vg_parse_duration_ms("9223372036854775807s", &ms), -ERANGE);
    assert_int_equal(ms, 42); /* untouched on failure */
}

static void test_bool_forms(void **state)
{
    (void)state;
    static const char *const yes[] = {"true", "yes", "on", "True", "YES"};
    static const char *const no[] = {"false", "no", "off", "False", "OFF"};
    struct test_cfg cfg;
    bool b;

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        b = false;
        assert_int_equal(vg_parse_bool(yes[i], &b), 0);
        assert_true(b);
        assert_int_equal(vg_parse_bool(no[i], &b), 0);
        assert_false(b);
    }
    assert_int_equal(vg_parse_bool("maybe", &b), -EINVAL);
    assert_int_equal(vg_parse_bool("1", &b), -EINVAL);
    assert_int_equal(vg_parse_bool("", &b), -EINVAL);

    assert_int_equal(load_text("tls: on\n", &cfg), 0);
    assert_true(cfg.tls);
    vg_config_free(test_keys, NKEYS, &cfg);

    assert_int_equal(load_text("tls: sometimes\n", &cfg), -EINVAL);
    assert_err_is(":1:6: \"tls\": must be true/false, yes/no or on/off (got \"sometimes\")");
    vg_config_free(test_keys, NKEYS, &cfg);
}

static void test_size_units(void **state)
{
    (void)state;
    struct test_cfg cfg;
    int64_t n = 0;

    assert_int_equal(vg_parse_size("512", &n), 0);
    assert_int_equal(n, 512);
    assert_int_equal(vg_parse_size("64KiB", &n), 0);
    assert_int_equal(n, 65536);
    assert_int_equal(vg_parse_size("16MiB", &n), 0);
    assert_int_equal(n, 16 << 20);
    assert_int_equal(vg_parse_size("1GiB", &n), 0);
    assert_int_equal(n, 1 << 30);
    assert_int_equal(vg_parse_size("1KB", &n), 0);
    assert_int_equal(n, 1000);
    assert_int_equal(vg_parse_size("2MB", &n), 0);
    assert_int_equal(n, 2000000);
    assert_int_equal(vg_parse_size("1GB", &n), 0);
    assert_int_equal(n, 1000000000);
    assert_int_equal(vg_parse_size("1.5MiB", &n), -EINVAL);
    assert_int_equal(vg_parse_size("10 MiB", &n), -EINVAL);
    assert_int_equal(vg_parse_size("10XB", &n), -EINVAL);
    assert_int_equal(vg_parse_size("-1", &n), -ERANGE);
    assert_int_equal(vg_parse_size("99999999999GiB", &n), -ERANGE);
    assert_int_equal(n, 1000000000);

    assert_int_equal(load_text("spool:\n  max-size: 128KiB\n", &cfg), 0);
    assert_int_equal(cfg.spool_max, 128 * 1024);
    vg_config_free(test_keys, NKEYS, &cfg);

    assert_int_equal(load_text("spool:\n  max-size: lots\n", &cfg), -EINVAL);
    assert_err_contains("\"spool.max-size\": must be a size");
    vg_config_free(test_keys, NKEYS, &cfg);
}

static void test_int_parse(void **state)
{
    (void)state;
    int64_t n = 0;

    assert_int_equal(vg_parse_int("42", &n), 0);
    assert_int_equal(n, 42);
    assert_int_equal(vg_parse_int("-3", &n), 0);
    assert_int_equal(n, -3);
    assert_int_equal(vg_parse_int("-9223372036854775808", &n), 0);
    assert_true(n == INT64_MIN);
    assert_int_equal(vg_parse_int("9223372036854775808", &n), -ERANGE);
    assert_int_equal(vg_parse_int(" 4", &n), -EINVAL);
    assert_int_equal(vg_parse_int("4 ", &n), -EINVAL);
    assert_int_equal(vg_parse_int("0x10", &n), -EINVAL);
    assert_int_equal(vg_parse_int("", &n), -EINVAL);
    assert_int_equal(vg_parse_int("-", &n), -EINVAL);
}

static void test_required_missing(void **state)
{
    (void)state;
    struct test_cfg cfg = {0};

    write_file("name: x\n");
    assert_int_equal(vg_config_load(path, required_keys, NREQ, &cfg, err, sizeof(err)), -EINVAL);
    assert_err_is(": \"store.url\": required key is missing");
    vg_config_free(required_keys, NREQ, &cfg);

    /* An empty file sets nothing, so it is missing there too. */
    write_file("");
    assert_int_equal(vg_config_load(path, required_keys, NREQ, &cfg, err, sizeof(err)), -EINVAL);
    assert_err_contains("\"store.url\": required key is missing");
    vg_config_free(required_keys, NREQ, &cfg);

    /* Required strings may not be empty; optional ones may. */
    write_file("store:\n  url: \"\"\n");
    assert_int_equal(vg_config_load(path, required_keys, NREQ, &cfg, err, sizeof(err)), -EINVAL);
    assert_err_is(":2:8: \"store.url\": must not be empty");
    vg_config_free(required_keys, NREQ, &cfg);

    write_file("name: \"\"\nstore:\n  url: 'pg'\n");
    assert_int_equal(vg_config_load(path, required_keys, NREQ, &cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg.name, "");
    assert_string_equal(cfg.store_url, "pg");
    vg_config_free(required_keys, NREQ, &cfg);
}

static void test_yaml_syntax_error_has_position(void **state)
{
    (void)state;
    struct test_cfg cfg;

    assert_int_equal(load_text("name: a\nstore:\n  url: x\n bad: 1\n", &cfg), -EINVAL);
    assert_err_is(":4:2: invalid indentation in mapping");
    vg_config_free(test_keys, NKEYS, &cfg);

    assert_int_equal(load_text("name: a\ntag: \"abc\n", &cfg), -EINVAL);
    assert_err_is(":2:7: double-quoted scalar without closing quote");
    vg_config_free(test_keys, NKEYS, &cfg);
}

static void test_duplicate_key(void **state)
{
    (void)state;
    struct test_cfg cfg;

    assert_int_equal(load_text("name: a\nname: b\n", &cfg), -EINVAL);
    assert_err_is(":2:1: duplicate key \"name\"");
    vg_config_free(test_keys, NKEYS, &cfg);

    /* The same key spelled two ways is a duplicate too. */
    assert_int_equal(load_text("store.url: a\nstore:\n  url: b\n", &cfg), -EINVAL);
    assert_err_is(":3:3: \"store.url\": set twice (first at line 1)");
    vg_config_free(test_keys, NKEYS, &cfg);
}

static void test_string_too_long(void **state)
{
    (void)state;
    struct test_cfg cfg;

    assert_int_equal(load_text("tag: 12345678\n", &cfg), 0);
    assert_string_equal(cfg.tag, "12345678");
    vg_config_free(test_keys, NKEYS, &cfg);

    assert_int_equal(load_text("tag: 123456789\n", &cfg), -ERANGE);
    assert_err_is(":1:6: \"tag\": must be at most 8 characters long (got 9)");
    assert_null(cfg.tag);
    vg_config_free(test_keys, NKEYS, &cfg);
}

static void test_wrong_types(void **state)
{
    (void)state;
    struct test_cfg cfg;

    assert_int_equal(load_text("name: [a, b]\n", &cfg), -EINVAL);
    assert_err_is(":1:1: \"name\": must be a string, not a sequence");
    vg_config_free(test_keys, NKEYS, &cfg);

    assert_int_equal(load_text("link:\n  heartbeat:\n    every: 5s\n", &cfg), -EINVAL);
    assert_err_is(":2:3: \"link.heartbeat\": must be a duration, not a mapping");
    vg_config_free(test_keys, NKEYS, &cfg);

    assert_int_equal(load_text("store: postgres://x\n", &cfg), -EINVAL);
    assert_err_is(":1:1: \"store\": is a section and must be a mapping, not a scalar");
    vg_config_free(test_keys, NKEYS, &cfg);

    assert_int_equal(load_text("- name\n- tls\n", &cfg), -EINVAL);
    assert_err_contains("top level must be a mapping");
    vg_config_free(test_keys, NKEYS, &cfg);

    assert_int_equal(load_text("name: &n x\ntag: *n\n", &cfg), -EINVAL);
    assert_err_is(":2:1: \"tag\": must be a string, not an alias");
    vg_config_free(test_keys, NKEYS, &cfg);

    assert_int_equal(load_text("name: a\n---\nname: b\n", &cfg), -EINVAL);
    assert_err_contains(":2:1: only one YAML document");
    vg_config_free(test_keys, NKEYS, &cfg);
}

static void test_missing_file(void **state)
{
    (void)state;
    struct test_cfg cfg = {0};

    snprintf(path, sizeof(path), "%s/does-not-exist.yaml", tmpdir);
    assert_int_equal(vg_config_load(path, test_keys, NKEYS, &cfg, err, sizeof(err)), -ENOENT);
    assert_err_is(": cannot open: No such file or directory");
    vg_config_free(test_keys, NKEYS, &cfg);
}

/* Under ASan, LeakSanitizer fails the run if a replaced string leaks. */
static void test_strings_replaced_and_freed(void **state)
{
    (void)state;
    struct test_cfg cfg;

    assert_int_equal(load_text("name: first\ntag: t1\n", &cfg), 0);
    assert_string_equal(cfg.name, "first");
    /* Loading again into the same struct replaces (and frees) every string. */
    write_file("name: second\n");
    assert_int_equal(vg_config_load(path, test_keys, NKEYS, &cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg.name, "second");
    assert_string_equal(cfg.tag, "t1"); /* no default: the old value stays */
    vg_config_free(test_keys, NKEYS, &cfg);
    assert_null(cfg.name);
    assert_null(cfg.tag);
    assert_null(cfg.store_url);
    vg_config_free(test_keys, NKEYS, &cfg); /* twice is harmless */

    /* A failed load leaves allocated defaults that vg_config_free must release. */
    assert_int_equal(load_text("name: x\nbogus: 1\n", &cfg), -EINVAL);
    assert_string_equal(cfg.name, "x");
    vg_config_free(test_keys, NKEYS, &cfg);
    assert_null(cfg.name);
}

static void test_bad_default_reported(void **state)
{
    (void)state;
    static const struct vg_cfg_key bad[] = {
        {.path = "link.heartbeat",
         .type = VG_CFG_DURATION_MS,
         .min = 1000,
         .max = 3600000,
         .def = "0s",
         .help = "heartbeat"},
    };
    int64_t ms = 7;

    assert_int_equal(vg_config_defaults(bad, 1, &ms, err, sizeof(err)), -ERANGE);
    assert_err_contains("\"link.heartbeat\"");
    assert_int_equal(ms, 7);
}

/* ---- sequences: VG_CFG_STRINGS and VG_CFG_LIST ---- */

struct target_cfg {
    char *name;
    char *url;
    int64_t timeout_ms;
    struct vg_cfg_strings tags;
    double weight;
};

struct seq_cfg {
    struct vg_cfg_strings dirs;
    struct vg_cfg_list targets;
};

static const struct vg_cfg_key target_keys[] = {
    {.path = "name",
     .type = VG_CFG_STRING,
     .offset = offsetof(struct target_cfg, name),
     .max = 32,
     .required = true,
     .help = "target name"},
    {.path = "url",
     .type = VG_CFG_STRING,
     .offset = offsetof(struct target_cfg, url),
     .required = true,
     .help = "URL"},
    {.path = "timeout",
     .type = VG_CFG_DURATION_MS,
     .offset = offsetof(struct target_cfg, timeout_ms),
     .min = 100,
     .max = 60000,
     .def = "5s",
     .help = "timeout"},
    {.path = "tags",
     .type = VG_CFG_STRINGS,
     .offset = offsetof(struct target_cfg, tags),
     .max = 2,
     .help = "tags"},
    {.path = "weight",
     .type = VG_CFG_NUMBER,
     .offset = offsetof(struct target_cfg, weight),
     .def = "0.5",
     .help = "weight"},
};

static const struct vg_cfg_key seq_keys[] = {
    {.path = "evidence.dirs",
     .type = VG_CFG_STRINGS,
     .offset = offsetof(struct seq_cfg, dirs),
     .help = "directories"},
    {.path = "http.targets",
     .type = VG_CFG_LIST,
     .offset = offsetof(struct seq_cfg, targets),
     .max = 3,
     .help = "targets",
     .sub = target_keys,
     .nsub = sizeof(target_keys) / sizeof(target_keys[0]),
     .elem_size = sizeof(struct target_cfg)},
};
#define NSEQ (sizeof(seq_keys) / sizeof(seq_keys[0]))

static int load_seq(const char *text, struct seq_cfg *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    err[0] = '\0';
    write_file(text);
    return vg_config_load(path, seq_keys, NSEQ, cfg, err, sizeof(err));
}

static void test_sequences_loaded(void **state)
{
    (void)state;
    struct seq_cfg cfg;

    assert_int_equal(load_seq("evidence:\n  dirs: [/var/log, /tmp]\n"
                              "http:\n  targets:\n"
                              "    - {name: a, url: 'http://x/', tags: one}\n"
                              "    - name: b\n      url: http://y/\n      timeout: 250ms\n"
                              "      tags: [p, q]\n",
                              &cfg),
                     0);
    assert_int_equal(cfg.dirs.count, 2);
    assert_string_equal(cfg.dirs.items[1], "/tmp");
    assert_int_equal(cfg.targets.count, 2);
    struct target_cfg *a = VG_CFG_ITEM(cfg.targets, struct target_cfg, 0);
    struct target_cfg *b = VG_CFG_ITEM(cfg.targets, struct target_cfg, 1);
    assert_string_equal(a->name, "a");
    assert_int_equal(a->timeout_ms, 5000); /* element defaults applied */
    assert_int_equal(a->tags.count, 1);    /* one scalar is a one-item list */
    assert_string_equal(a->tags.items[0], "one");
    assert_int_equal(b->timeout_ms, 250);
    assert_true(a->weight == 0.5);
    assert_string_equal(b->tags.items[1], "q");
    vg_config_free(seq_keys, NSEQ, &cfg);
    assert_null(cfg.targets.items);
    assert_int_equal(cfg.dirs.count, 0);

    /* Absent or empty sequences are empty. */
    assert_int_equal(load_seq("http:\n  targets:\n", &cfg), 0);
    assert_int_equal(cfg.targets.count, 0);
    vg_config_free(seq_keys, NSEQ, &cfg);
}

static void test_sequence_errors_name_the_element(void **state)
{
    (void)state;
    struct seq_cfg cfg;

    assert_int_equal(
        load_seq("http:\n  targets:\n    - {name: a, url: u}\n    - {name: b}\n", &cfg), -EINVAL);
    assert_err_is(":4:8: \"http.targets[1].url\": required key is missing");
    vg_config_free(seq_keys, NSEQ, &cfg);

    assert_int_equal(load_seq("http:\n  targets:\n    - {name: a, urll: u}\n", &cfg), -EINVAL);
    assert_err_contains(
        "unknown key \"http.targets[0].urll\" (did you mean \"http.targets[0].url\"?)");
    vg_config_free(seq_keys, NSEQ, &cfg);

    assert_int_equal(load_seq("http:\n  targets:\n    - {name: a, url: u, timeout: 1ms}\n", &cfg),
                     -ERANGE);
    assert_err_contains("\"http.targets[0].timeout\": must be between 100ms and 1m");
    vg_config_free(seq_keys, NSEQ, &cfg);

    assert_int_equal(load_seq("http:\n  targets: {name: a}\n", &cfg), -EINVAL);
    assert_err_contains("\"http.targets\": must be a sequence of mappings, not a mapping");
    vg_config_free(seq_keys, NSEQ, &cfg);

    assert_int_equal(load_seq("http:\n  targets: [x]\n", &cfg), -EINVAL);
    assert_err_contains("\"http.targets[0]\": must be a mapping, not a scalar");
    vg_config_free(seq_keys, NSEQ, &cfg);

    assert_int_equal(load_seq("http:\n  targets: [{name: a, url: u}, {name: b, url: u}, "
                              "{name: c, url: u}, {name: d, url: u}]\n",
                              &cfg),
                     -ERANGE);
    assert_err_contains("\"http.targets\": at most 3 items (got 4)");
    vg_config_free(seq_keys, NSEQ, &cfg);

    assert_int_equal(load_seq("http:\n  targets:\n    - {name: a, url: u, weight: 1e3}\n", &cfg),
                     0);
    assert_true(VG_CFG_ITEM(cfg.targets, struct target_cfg, 0)->weight == 1000);
    vg_config_free(seq_keys, NSEQ, &cfg);
    assert_int_equal(load_seq("http:\n  targets:\n    - {name: a, url: u, weight: 1.5x}\n", &cfg),
                     -EINVAL);
    assert_err_contains("\"http.targets[0].weight\": must be a number (got \"1.5x\")");
    vg_config_free(seq_keys, NSEQ, &cfg);

    assert_int_equal(load_seq("evidence:\n  dirs: [/a, [/b]]\n", &cfg), -EINVAL);
    assert_err_contains("\"evidence.dirs[1]\": must be a string");
    vg_config_free(seq_keys, NSEQ, &cfg);

    assert_int_equal(
        load_seq("http:\n  targets:\n    - {name: a, url: u, tags: [1, 2, 3]}\n", &cfg), -ERANGE);
    assert_err_contains("\"http.targets[0].tags\": at most 2 items (got 3)");
    vg_config_free(seq_keys, NSEQ, &cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_file_gives_defaults),
        cmocka_unit_test(test_nested_keys),
        cmocka_unit_test(test_unknown_key_has_position),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_bad_duration),
        cmocka_unit_test(test_bool_forms),
        cmocka_unit_test(test_size_units),
        cmocka_unit_test(test_int_parse),
        cmocka_unit_test(test_required_missing),
        cmocka_unit_test(test_yaml_syntax_error_has_position),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_string_too_long),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_strings_replaced_and_freed),
        cmocka_unit_test(test_bad_default_reported),
        cmocka_unit_test(test_sequences_loaded),
        cmocka_unit_test(test_sequence_errors_name_the_element),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
