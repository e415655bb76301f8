/*
 * vigil-agent-action without a service (agent/action: request.c, kubeconfig.c, kube_policy.c):
 * the request the executor writes on stdin, the kubeconfig contexts it names, and what the
 * kubernetes module decides from the objects the API server sends — the CIDR arithmetic, the
 * NetworkPolicy patch of block and unblock, the fields each op shows before and after.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kube_policy.h"
#include "kubeconfig.h"
#include "svc.h"

/* ---- helpers ---- */

static json_t *parse_json(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (!v)
        fail_msg("test JSON does not parse: %s (%s)", jerr.text, text);
    return v;
}

/* got equals the JSON text want (key order aside); prints both when not. */
static void assert_json(json_t *got, const char *want_text)
{
    json_t *want = parse_json(want_text);
    if (!json_equal(got, want)) {
        char *shown = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        fail_msg("got %s\nwant %s", shown ? shown : "(NULL)", want_text);
    }
    json_decref(want);
}

static char tmpdir[64];

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_svc.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes text to tmpdir/name (the directories on the way created first); returns the full path
 * (static: the next call overwrites it). */
static const char *write_file(const char *name, const char *text)
{
    static char path[256];
    for (const char *slash = strchr(name, '/'); slash; slash = strchr(slash + 1, '/')) {
        snprintf(path, sizeof(path), "%s/%.*s", tmpdir, (int)(slash - name), name);
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
            fail_msg("mkdir %s: %s", path, strerror(errno));
    }
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    return path;
}

/* ---- the request ---- */

#define REQ(s) (s), sizeof(s) - 1 /* a literal with its NULs, without the literal's own */

static void test_request_good(void **unused)
{
    (void)unused;
    struct svc_kv items[8];
    struct svc_request r = {items, 0};
    static const char buf[] = "kind\0kubernetes\0op\0scale\0target.password_file\0\0arg.x\0a b\0";

    assert_int_equal(svc_request_parse(REQ(buf), items, 8, &r.n), 0);
    assert_int_equal(r.n, 4);
    assert_string_equal(svc_get(&r, "kind"), "kubernetes");
    assert_string_equal(svc_get(&r, "op"), "scale");
    assert_string_equal(svc_get(&r, "target.password_file"), ""); /* empty is a value */
    assert_string_equal(svc_get(&r, "arg.x"), "a b");
    assert_null(svc_get(&r, "arg"));
    assert_null(svc_get(&r, "KIND"));
    assert_string_equal(svc_get_or(&r, "timeout_ms", "5000"), "5000");
    assert_string_equal(svc_get_or(&r, "op", "x"), "scale");

    /* Nothing at all is a request without keys (the caller finds kind missing). */
    assert_int_equal(svc_request_parse("", 0, items, 8, &r.n), 0);
    assert_int_equal(r.n, 0);
}

static void test_request_malformed(void **unused)
{
    (void)unused;
    struct svc_kv items[8];
    size_t n = 99;

    /* An odd number of strings: a key without its value. */
    assert_int_equal(svc_request_parse(REQ("kind\0redis\0op\0"), items, 8, &n), -EINVAL);
    assert_int_equal(n, 0);
    assert_int_equal(svc_request_parse(REQ("kind\0"), items, 8, &n), -EINVAL);
    /* No final NUL: the last value is cut. */
    assert_int_equal(svc_request_parse(REQ("kind\0redis"), items, 8, &n), -EINVAL);
    assert_int_equal(svc_request_parse(REQ("kind"), items, 8, &n), -EINVAL);
    /* An empty key, first or later. */
    assert_int_equal(svc_request_parse(REQ("\0redis\0"), items, 8, &n), -EINVAL);
    assert_int_equal(svc_request_parse(REQ("kind\0redis\0\0x\0"), items, 8, &n), -EINVAL);
    assert_int_equal(svc_request_parse(REQ("\0"), items, 8, &n), -EINVAL);
    /* A key twice, even with the same value: which one would win is not for the module to
     * guess. */
    assert_int_equal(svc_request_parse(REQ("op\0scale\0kind\0redis\0op\0scale\0"), items, 8, &n),
                     -EINVAL);
    assert_int_equal(svc_request_parse(REQ("op\0scale\0op\0restart\0"), items, 8, &n), -EINVAL);
}

static void test_request_too_many_keys(void **unused)
{
    (void)unused;
    struct svc_kv items[SVC_REQUEST_KEYS_MAX];
    static char buf[SVC_REQUEST_MAX];
    size_t len = 0, n = 0;

    /* max keys fit, one more does not. */
    assert_int_equal(svc_request_parse(REQ("a\0x\0b\0y\0"), items, 2, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(svc_request_parse(REQ("a\0x\0b\0y\0c\0z\0"), items, 2, &n), -EINVAL);

    for (int i = 0; i <= SVC_REQUEST_KEYS_MAX; i++) {
        int w = snprintf(buf + len, sizeof(buf) - len, "arg.k%d", i);
        len += (size_t)w + 1; /* keep the NUL snprintf wrote */
        buf[len++] = 'v';
        buf[len++] = '\0';
    }
    assert_int_equal(svc_request_parse(buf, len, items, SVC_REQUEST_KEYS_MAX, &n), -EINVAL);
    /* Without the last pair: exactly SVC_REQUEST_KEYS_MAX. */
    size_t last = strlen("arg.k128") + 1 + 2;
    assert_int_equal(svc_request_parse(buf, len - last, items, SVC_REQUEST_KEYS_MAX, &n), 0);
    assert_int_equal(n, SVC_REQUEST_KEYS_MAX);
    assert_string_equal(items[SVC_REQUEST_KEYS_MAX - 1].key, "arg.k127");
}

/* ---- kubeconfig ---- */

#define PEM "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
/* base64 of PEM */
#define PEM_B64                                                                                    \
    "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJmYWtlCi0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K"

static int load(const char *kubeconfig, const char *context, struct kube_creds *c, char *err,
                size_t errlen)
{
    struct kube_source src = {.kubeconfig = kubeconfig, .context = context};
    err[0] = '\0';
    return kube_creds_load(&src, c, err, errlen);
}

static void test_kubeconfig_ca_data_and_token(void **unused)
{
    (void)unused;
    struct kube_creds c;
    char err[1024];
    const char *path = write_file("data.yaml", "apiVersion: v1\n"
                                               "kind: Config\n"
                                               "clusters:\n"
                                               "- name: prod\n"
                                               "  cluster:\n"
                                               "    server: https://10.0.0.1:6443//\n"
                                               "    certificate-authority-data: " PEM_B64 "\n"
                                               "users:\n"
                                               "- name: agent\n"
                                               "  user:\n"
                                               "    token: eyJhbGciOi.abc-def_123\n"
                                               "contexts:\n"
                                               "- name: prod\n"
                                               "  context: {cluster: prod, user: agent}\n"
                                               "current-context: prod\n");

    assert_int_equal(load(path, NULL, &c, err, sizeof(err)), 0);
    assert_string_equal(c.server, "https://10.0.0.1:6443"); /* trailing slashes dropped */
    assert_non_null(c.ca.data);
    assert_int_equal(c.ca.len, strlen(PEM));
    assert_memory_equal(c.ca.data, PEM, strlen(PEM));
    assert_null(c.ca_file);
    assert_string_equal(c.token, "eyJhbGciOi.abc-def_123");
    assert_null(c.cert_file);
    assert_null(c.cert.data);
    kube_creds_clear(&c);
    assert_null(c.server);
    assert_null(c.token);
    assert_null(c.ca.data);
}

static void test_kubeconfig_token_file(void **unused)
{
    (void)unused;
    struct kube_creds c;
    char err[1024];

    write_file("tf/sa-token", "tok-from-file\n");
    /* A relative tokenFile is the kubeconfig's directory's; it wins over token, as client-go. */
    const char *path = write_file("tf/kubeconfig", "clusters:\n"
                                                   "- name: c\n"
                                                   "  cluster: {server: https://kube.example}\n"
                                                   "users:\n"
                                                   "- name: u\n"
                                                   "  user:\n"
                                                   "    token: inline-token\n"
                                                   "    tokenFile: sa-token\n"
                                                   "contexts:\n"
                                                   "- {name: x, context: {cluster: c, user: u}}\n"
                                                   "current-context: x\n");
    assert_int_equal(load(path, "", &c, err, sizeof(err)), 0);
    assert_string_equal(c.token, "tok-from-file"); /* the newline trimmed */
    assert_string_equal(c.server, "https://kube.example");
    assert_null(c.ca_file); /* none given: the system's store */
    assert_null(c.ca.data);
    kube_creds_clear(&c);

    /* A tokenFile that is not there: the run fails naming the resolved path. */
    path = write_file("tf/kubeconfig-missing", "clusters:\n"
                                               "- name: c\n"
                                               "  cluster: {server: https://kube.example}\n"
                                               "users:\n"
                                               "- {name: u, user: {tokenFile: nosuch}}\n"
                                               "contexts:\n"
                                               "- {name: x, context: {cluster: c, user: u}}\n"
                                               "current-context: x\n");
    assert_int_equal(load(path, NULL, &c, err, sizeof(err)), -ENOENT);
    char want[256];
    snprintf(want, sizeof(want), "%s/tf/nosuch", tmpdir);
    assert_non_null(strstr(err, want));
    assert_null(c.token);
}

static const char two_contexts[] = "clusters:\n"
                                   "- name: one\n"
                                   "  cluster: {server: 'https://one.example:6443'}\n"
                                   "- name: two\n"
                                   "  cluster: {server: 'https://two.example:6443'}\n"
                                   "users:\n"
                                   "- {name: u1, user: {token: t1}}\n"
                                   "- {name: u2, user: {token: t2}}\n"
                                   "contexts:\n"
                                   "- {name: a, context: {cluster: one, user: u1}}\n"
                                   "- {name: b, context: {cluster: two, user: u2}}\n"
                                   "current-context: a\n";

static void test_kubeconfig_context(void **unused)
{
    (void)unused;
    struct kube_creds c;
    char err[1024];
    const char *p = write_file("contexts.yaml", two_contexts);
    char path[256];
    snprintf(path, sizeof(path), "%s", p);

    /* No kube.context: current-context. */
    assert_int_equal(load(path, NULL, &c, err, sizeof(err)), 0);
    assert_string_equal(c.server, "https://one.example:6443");
    assert_string_equal(c.token, "t1");
    kube_creds_clear(&c);
    /* kube.context names another: its cluster and its user, not current-context's. */
    assert_int_equal(load(path, "b", &c, err, sizeof(err)), 0);
    assert_string_equal(c.server, "https://two.example:6443");
    assert_string_equal(c.token, "t2");
    kube_creds_clear(&c);
    /* A context the file does not hold. */
    assert_int_equal(load(path, "c", &c, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "no context named \"c\""));
    assert_null(c.server);
}

static void test_kubeconfig_refused(void **unused)
{
    (void)unused;
    struct kube_creds c;
    char err[1024];
    const char *path;

    path = write_file("insecure.yaml",
                      "clusters:\n"
                      "- name: c\n"
                      "  cluster: {server: https://k.example, insecure-skip-tls-verify: true}\n"
                      "users: [{name: u, user: {token: t}}]\n"
                      "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
                      "current-context: x\n");
    assert_int_equal(load(path, NULL, &c, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "insecure-skip-tls-verify, which Vigil refuses"));
    assert_null(c.server);
    assert_null(c.token);

    /* Set to false, it asks for nothing and is accepted. */
    path = write_file("secure.yaml",
                      "clusters:\n"
                      "- name: c\n"
                      "  cluster: {server: https://k.example, insecure-skip-tls-verify: false}\n"
                      "users: [{name: u, user: {token: t}}]\n"
                      "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
                      "current-context: x\n");
    assert_int_equal(load(path, NULL, &c, err, sizeof(err)), 0);
    kube_creds_clear(&c);

    path = write_file("http.yaml", "clusters:\n"
                                   "- name: c\n"
                                   "  cluster: {server: 'http://k.example:8080'}\n"
                                   "users: [{name: u, user: {token: t}}]\n"
                                   "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
                                   "current-context: x\n");
    assert_int_equal(load(path, NULL, &c, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "must be an https:// URL (got \"http://k.example:8080\")"));
    assert_null(c.server);

    path = write_file("nocurrent.yaml", "clusters:\n"
                                        "- name: c\n"
                                        "  cluster: {server: 'https://k.example'}\n"
                                        "users: [{name: u, user: {token: t}}]\n"
                                        "contexts: [{name: x, context: {cluster: c, user: u}}]\n");
    assert_int_equal(load(path, NULL, &c, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "no current-context, and the request names no kube.context"));
    /* The same file with kube.context is fine. */
    assert_int_equal(load(path, "x", &c, err, sizeof(err)), 0);
    kube_creds_clear(&c);
}

static void test_kubeconfig_relative_ca(void **unused)
{
    (void)unused;
    struct kube_creds c;
    char err[1024], want[256];

    write_file("rel/pki/ca.crt", PEM);
    const char *path =
        write_file("rel/config", "clusters:\n"
                                 "- name: c\n"
                                 "  cluster:\n"
                                 "    server: https://k.example\n"
                                 "    certificate-authority: pki/ca.crt\n"
                                 "users: [{name: u, user: {token: t}}]\n"
                                 "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
                                 "current-context: x\n");
    assert_int_equal(load(path, NULL, &c, err, sizeof(err)), 0);
    snprintf(want, sizeof(want), "%s/rel/pki/ca.crt", tmpdir);
    assert_string_equal(c.ca_file, want); /* the kubeconfig's directory, not the cwd */
    assert_null(c.ca.data);
    kube_creds_clear(&c);

    /* A relative CA path that is not there is named resolved. */
    path =
        write_file("rel/config-missing", "clusters:\n"
                                         "- name: c\n"
                                         "  cluster:\n"
                                         "    server: https://k.example\n"
                                         "    certificate-authority: pki/other.crt\n"
                                         "users: [{name: u, user: {token: t}}]\n"
                                         "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
                                         "current-context: x\n");
    assert_int_equal(load(path, NULL, &c, err, sizeof(err)), -ENOENT);
    snprintf(want, sizeof(want), "%s/rel/pki/other.crt", tmpdir);
    assert_non_null(strstr(err, want));
}

/* ---- CIDRs ---- */

static struct kube_cidr cidr(const char *text)
{
    struct kube_cidr c;
    if (kube_cidr_parse(text, false, &c) != 0)
        fail_msg("test CIDR %s does not parse", text);
    return c;
}

static bool contains(const char *outer, const char *inner)
{
    struct kube_cidr o = cidr(outer), i = cidr(inner);
    return kube_cidr_contains(&o, &i);
}

static void assert_formats(const char *text, const char *want)
{
    struct kube_cidr c = cidr(text);
    char buf[KUBE_CIDR_TEXT_MAX];
    kube_cidr_format(&c, buf, sizeof(buf));
    assert_string_equal(buf, want);
}

static void test_cidr_parse(void **unused)
{
    (void)unused;
    struct kube_cidr c = {0};

    assert_int_equal(kube_cidr_parse("10.0.0.0/8", true, &c), 0);
    assert_int_equal(c.family, AF_INET);
    assert_int_equal(c.prefix, 8);
    /* Host bits: refused when strict (arg.cidr), cleared otherwise (what a policy holds). */
    assert_int_equal(kube_cidr_parse("10.0.0.1/8", true, &c), -EDOM);
    assert_formats("10.0.0.1/8", "10.0.0.0/8");
    assert_formats("10.1.2.3", "10.1.2.3/32"); /* an address is a host */
    assert_formats("2001:0DB8:0000::/32", "2001:db8::/32");
    assert_formats("::1", "::1/128");
    assert_formats("0.0.0.0/0", "0.0.0.0/0");
    assert_formats("2001:db8::ff/120", "2001:db8::/120");

    static const char *const bad[] = {
        "",
        "/8",
        "10.0.0.0/",
        "10.0.0.0/33",
        "10.0.0.0/+8",
        "10.0.0.0/-0",
        "10.0.0.0/ 8",
        "10.0.0.0/8x",
        "10.0.0.0/8/8",
        "10.0.0/8",
        "2001:db8::/129",
        "fe80::1%eth0/64",
        "host.example/32",
        "10.0.0.0 /8",
        "2001:db8:0:0:0:0:0:0:1/64",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        c.prefix = 77;
        if (kube_cidr_parse(bad[i], false, &c) != -EINVAL)
            fail_msg("\"%s\" parsed", bad[i]);
        assert_int_equal(c.prefix, 77); /* untouched */
    }
}

static void test_cidr_contains(void **unused)
{
    (void)unused;

    /* IPv4. */
    assert_true(contains("10.0.0.0/8", "10.1.0.0/16"));
    assert_true(contains("10.0.0.0/8", "10.255.255.255/32"));
    assert_false(contains("10.0.0.0/8", "11.0.0.0/16"));
    assert_false(contains("10.1.0.0/16", "10.0.0.0/8")); /* larger is not inside smaller */
    assert_true(contains("10.0.0.0/8", "10.0.0.0/8"));   /* a range holds itself */
    assert_true(contains("0.0.0.0/0", "203.0.113.7/32"));
    /* Prefix edges, on and off byte boundaries. */
    assert_true(contains("172.16.0.0/12", "172.31.255.255/32"));
    assert_false(contains("172.16.0.0/12", "172.32.0.0/32"));
    assert_false(contains("172.16.0.0/12", "172.15.255.255/32"));
    assert_true(contains("192.168.0.0/23", "192.168.1.0/24"));
    assert_false(contains("192.168.0.0/23", "192.168.2.0/24"));
    assert_false(contains("192.168.0.0/24", "192.168.0.0/23"));
    assert_true(contains("10.0.0.0/31", "10.0.0.1/32"));
    assert_false(contains("10.0.0.0/31", "10.0.0.2/32"));
    assert_true(contains("10.0.0.5/32", "10.0.0.5/32"));
    assert_false(contains("10.0.0.5/32", "10.0.0.4/32"));

    /* IPv6. */
    assert_true(contains("2001:db8::/32", "2001:db8:ffff::/48"));
    assert_false(contains("2001:db8::/32", "2001:db9::/48"));
    assert_true(contains("::/0", "2001:db8::1/128"));
    assert_true(contains("2001:db8::/127", "2001:db8::1/128"));
    assert_false(contains("2001:db8::/127", "2001:db8::2/128"));
    assert_true(contains("2001:db8::/65", "2001:db8::7fff:ffff:ffff:ffff/128"));
    assert_false(contains("2001:db8::/65", "2001:db8::8000:0:0:0/128"));

    /* Mixed: never across families, not even 0/0 or an IPv4-mapped range. */
    assert_false(contains("0.0.0.0/0", "::/128"));
    assert_false(contains("::/0", "10.0.0.1/32"));
    assert_false(contains("::ffff:10.0.0.0/104", "10.0.0.1/32"));
    assert_false(contains("10.0.0.0/8", "::ffff:10.0.0.1/128"));
}

/* ---- block, unblock ---- */

/* A policy as the API server returns it: two rules, three ipBlocks, one already with an except
 * (10.1.0.0/16, which the annotation says Vigil blocked), and peers that are not ipBlocks. */
static const char policy_text[] =
    "{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"NetworkPolicy\","
    "\"metadata\":{\"name\":\"p\",\"namespace\":\"ns\",\"resourceVersion\":\"42\","
    "\"annotations\":{\"vigil.dev/blocked\":\"10.1.0.0/16\",\"other\":\"x\"}},"
    "\"spec\":{\"podSelector\":{},\"policyTypes\":[\"Ingress\"],\"ingress\":["
    "{\"from\":[{\"ipBlock\":{\"cidr\":\"10.0.0.0/8\",\"except\":[\"10.1.0.0/16\"]}},"
    "{\"ipBlock\":{\"cidr\":\"192.168.0.0/16\"}},{\"podSelector\":{}}],\"ports\":[{\"port\":80}]},"
    "{\"from\":[{\"ipBlock\":{\"cidr\":\"10.2.0.0/16\"}},{\"namespaceSelector\":{}}]}]}}";

struct edit {
    int r;
    json_t *patch;
    char msg[1024];
};

static struct edit edit_text(const char *policy, const char *target, bool block)
{
    struct edit e = {0};
    json_t *pol = parse_json(policy);
    char *before = json_dumps(pol, JSON_SORT_KEYS);
    struct kube_cidr t;

    assert_int_equal(kube_cidr_parse(target, true, &t), 0);
    e.r = kube_policy_edit(pol, &t, block, "ns", "p", &e.patch, e.msg, sizeof(e.msg));
    char *after = json_dumps(pol, JSON_SORT_KEYS);
    assert_string_equal(before, after); /* the policy read is left as it was */
    free(before);
    free(after);
    json_decref(pol);
    if (e.r < 0 || !e.patch)
        assert_null(e.patch);
    return e;
}

static struct edit edit(const char *target, bool block)
{
    return edit_text(policy_text, target, block);
}

static void test_block_adds_to_containing_ipblocks(void **unused)
{
    (void)unused;
    struct edit e = edit("10.2.3.0/24", true);

    /* 10.0.0.0/8 and 10.2.0.0/16 hold it: both get it in except; 192.168 does not change. */
    assert_int_equal(e.r, 0);
    assert_non_null(e.patch);
    assert_json(
        e.patch,
        "{\"metadata\":{\"annotations\":{\"vigil.dev/blocked\":\"10.1.0.0/16,10.2.3.0/24\"},"
        "\"resourceVersion\":\"42\"},"
        "\"spec\":{\"ingress\":["
        "{\"from\":[{\"ipBlock\":{\"cidr\":\"10.0.0.0/8\","
        "\"except\":[\"10.1.0.0/16\",\"10.2.3.0/24\"]}},"
        "{\"ipBlock\":{\"cidr\":\"192.168.0.0/16\"}},{\"podSelector\":{}}],"
        "\"ports\":[{\"port\":80}]},"
        "{\"from\":[{\"ipBlock\":{\"cidr\":\"10.2.0.0/16\",\"except\":[\"10.2.3.0/24\"]}},"
        "{\"namespaceSelector\":{}}]}]}}");
    json_decref(e.patch);

    /* A host, written the one way Vigil spells it; only the ipBlock holding it. */
    e = edit("192.168.7.9", true);
    assert_int_equal(e.r, 0);
    assert_json(json_object_get(json_object_get(e.patch, "metadata"), "annotations"),
                "{\"vigil.dev/blocked\":\"10.1.0.0/16,192.168.7.9/32\"}");
    json_t *ingress = json_object_get(json_object_get(e.patch, "spec"), "ingress");
    assert_json(json_array_get(json_object_get(json_array_get(ingress, 0), "from"), 1),
                "{\"ipBlock\":{\"cidr\":\"192.168.0.0/16\",\"except\":[\"192.168.7.9/32\"]}}");
    assert_json(json_array_get(json_object_get(json_array_get(ingress, 0), "from"), 0),
                "{\"ipBlock\":{\"cidr\":\"10.0.0.0/8\",\"except\":[\"10.1.0.0/16\"]}}");
    assert_json(json_array_get(json_object_get(json_array_get(ingress, 1), "from"), 0),
                "{\"ipBlock\":{\"cidr\":\"10.2.0.0/16\"}}");
    json_decref(e.patch);

    /* IPv6 too. No resourceVersion read: none sent. */
    e = edit_text("{\"spec\":{\"ingress\":[{\"from\":[{\"ipBlock\":{\"cidr\":\"2001:db8::/32\"}},"
                  "{\"ipBlock\":{\"cidr\":\"10.0.0.0/8\"}}]}]}}",
                  "2001:db8:0:1::/64", true);
    assert_int_equal(e.r, 0);
    assert_json(e.patch,
                "{\"metadata\":{\"annotations\":{\"vigil.dev/blocked\":\"2001:db8:0:1::/64\"}},"
                "\"spec\":{\"ingress\":[{\"from\":[{\"ipBlock\":{\"cidr\":\"2001:db8::/32\","
                "\"except\":[\"2001:db8:0:1::/64\"]}},"
                "{\"ipBlock\":{\"cidr\":\"10.0.0.0/8\"}}]}]}}");
    json_decref(e.patch);
}

static void test_block_refused_or_nothing_to_do(void **unused)
{
    (void)unused;
    struct edit e;

    /* Already excepted, exactly or inside a larger except: nothing to write. */
    e = edit("10.1.0.0/16", true);
    assert_int_equal(e.r, 0);
    assert_null(e.patch);
    assert_string_equal(e.msg, "already blocked: 10.1.0.0/16 is already excepted from every "
                               "ipBlock that contains it in networkpolicy ns/p; nothing to change");
    e = edit("10.1.200.0/24", true);
    assert_int_equal(e.r, 0);
    assert_null(e.patch);
    assert_non_null(strstr(e.msg, "already blocked: 10.1.200.0/24"));

    /* Nothing lets it in: refused, for IPv4 and IPv6 alike. */
    e = edit("8.8.8.0/24", true);
    assert_int_equal(e.r, -ENOENT);
    assert_non_null(strstr(e.msg, "networkpolicy ns/p lets no ipBlock containing 8.8.8.0/24 in: "
                                  "there is nothing to block"));
    e = edit("2001:db8::/64", true);
    assert_int_equal(e.r, -ENOENT);
    /* A range larger than every ipBlock is in none of them. */
    e = edit("10.0.0.0/7", true);
    assert_int_equal(e.r, -ENOENT);

    /* The whole range of an ipBlock: an except cannot be all of its cidr. */
    e = edit("192.168.0.0/16", true);
    assert_int_equal(e.r, -EDOM);
    assert_non_null(strstr(e.msg, "networkpolicy ns/p lets 192.168.0.0/16 in through an ipBlock "
                                  "of exactly that range"));
    assert_non_null(strstr(e.msg, "strict subset"));
    /* ...even when another ipBlock could take the except: nothing is half done. */
    e = edit("10.2.0.0/16", true);
    assert_int_equal(e.r, -EDOM);

    /* An except that is not a list (was "out of memory"): refused, said so. */
    e = edit_text("{\"spec\":{\"ingress\":[{\"from\":[{\"ipBlock\":{\"cidr\":\"10.0.0.0/8\","
                  "\"except\":\"10.1.0.0/16\"}}]}]}}",
                  "10.3.0.0/16", true);
    assert_int_equal(e.r, -EINVAL);
    assert_non_null(strstr(e.msg, "except is not a list"));

    /* No spec.ingress at all. */
    e = edit_text("{\"spec\":{\"podSelector\":{}}}", "10.3.0.0/16", true);
    assert_int_equal(e.r, -ENOENT);
}

static void test_unblock(void **unused)
{
    (void)unused;
    struct edit e;

    /* The only except goes, and with it the except key; the annotation becomes null (removed in a
     * strategic merge patch). */
    e = edit("10.1.0.0/16", false);
    assert_int_equal(e.r, 0);
    assert_json(e.patch, "{\"metadata\":{\"annotations\":{\"vigil.dev/blocked\":null},"
                         "\"resourceVersion\":\"42\"},"
                         "\"spec\":{\"ingress\":["
                         "{\"from\":[{\"ipBlock\":{\"cidr\":\"10.0.0.0/8\"}},"
                         "{\"ipBlock\":{\"cidr\":\"192.168.0.0/16\"}},{\"podSelector\":{}}],"
                         "\"ports\":[{\"port\":80}]},"
                         "{\"from\":[{\"ipBlock\":{\"cidr\":\"10.2.0.0/16\"}},"
                         "{\"namespaceSelector\":{}}]}]}}");
    json_decref(e.patch);

    /* From every except naming it; other excepts and other annotation entries stay. */
    e = edit_text("{\"metadata\":{\"annotations\":{\"vigil.dev/blocked\":\"10.9.0.0/16, "
                  "10.1.0.0/16\"}},"
                  "\"spec\":{\"ingress\":[{\"from\":[{\"ipBlock\":{\"cidr\":\"10.0.0.0/8\","
                  "\"except\":[\"10.1.0.0/16\",\"10.9.0.0/16\"]}}]},"
                  "{\"from\":[{\"ipBlock\":{\"cidr\":\"10.1.0.0/15\","
                  "\"except\":[\"10.1.0.0/16\"]}}]}]}}",
                  "10.1.0.0/16", false);
    assert_int_equal(e.r, 0);
    assert_json(e.patch, "{\"metadata\":{\"annotations\":{\"vigil.dev/blocked\":\"10.9.0.0/16\"}},"
                         "\"spec\":{\"ingress\":[{\"from\":[{\"ipBlock\":{\"cidr\":\"10.0.0.0/8\","
                         "\"except\":[\"10.9.0.0/16\"]}}]},"
                         "{\"from\":[{\"ipBlock\":{\"cidr\":\"10.1.0.0/15\"}}]}]}}");
    json_decref(e.patch);

    /* Only the exact range: an except that merely contains it is not Vigil's to remove. */
    e = edit("10.1.2.0/24", false);
    assert_int_equal(e.r, 0);
    assert_null(e.patch);
    assert_string_equal(e.msg, "not blocked: 10.1.2.0/24 is in no except list in networkpolicy "
                               "ns/p; nothing to change");
    e = edit("2001:db8::/64", false);
    assert_int_equal(e.r, 0);
    assert_null(e.patch);
}

/* ---- the fields each op shows ---- */

static const char deployment_text[] =
    "{\"metadata\":{\"name\":\"backend\",\"labels\":{\"app\":\"backend\"}},"
    "\"spec\":{\"replicas\":2,\"template\":{\"metadata\":{\"annotations\":"
    "{\"kubectl.kubernetes.io/restartedAt\":\"2026-01-01T10:00:00Z\"}},"
    "\"spec\":{\"containers\":["
    "{\"name\":\"sidecar\",\"image\":\"s\"},"
    "{\"name\":\"backend\",\"image\":\"b\",\"env\":[{\"name\":\"DB_HOST\",\"value\":\"pg\"},"
    "{\"name\":\"LOG_LEVEL\",\"value\":\"info\"}],"
    "\"resources\":{\"limits\":{\"memory\":\"1Gi\",\"cpu\":\"500m\"}}}]}}}}";

static void assert_fields(enum kube_op op, json_t *obj, const char *container, const char *variable,
                          const char *want)
{
    json_t *got = kube_fields(op, obj, container, variable);
    assert_non_null(got);
    assert_json(got, want);
    json_decref(got);
}

static void test_fields(void **unused)
{
    (void)unused;
    json_t *dep = parse_json(deployment_text);
    json_t *bare = parse_json("{\"metadata\":{}}");
    json_t *pol = parse_json(policy_text);
    char names[64];

    assert_fields(KUBE_OP_RESTART, dep, NULL, NULL,
                  "{\"kubectl.kubernetes.io/restartedAt\":\"2026-01-01T10:00:00Z\"}");
    assert_fields(KUBE_OP_RESTART, bare, NULL, NULL,
                  "{\"kubectl.kubernetes.io/restartedAt\":null}");
    assert_fields(KUBE_OP_SCALE, dep, NULL, NULL, "{\"replicas\":2}");
    assert_fields(KUBE_OP_SCALE, bare, NULL, NULL, "{\"replicas\":null}");
    assert_fields(KUBE_OP_SET_ENV, dep, "backend", "LOG_LEVEL",
                  "{\"name\":\"LOG_LEVEL\",\"value\":\"info\"}");
    assert_fields(KUBE_OP_SET_ENV, dep, "backend", "DB_POOL_SIZE", "null");
    assert_fields(KUBE_OP_SET_ENV, dep, "sidecar", "LOG_LEVEL", "null"); /* another container's */
    assert_fields(KUBE_OP_SET_ENV, dep, "nosuch", "LOG_LEVEL", "null");
    assert_fields(KUBE_OP_SET_RESOURCES, dep, "backend", NULL,
                  "{\"limits\":{\"memory\":\"1Gi\",\"cpu\":\"500m\"}}");
    assert_fields(KUBE_OP_SET_RESOURCES, dep, "sidecar", NULL, "null");
    json_t *ingress = kube_fields(KUBE_OP_BLOCK, pol, NULL, NULL);
    assert_true(json_equal(ingress, json_object_get(json_object_get(pol, "spec"), "ingress")));
    json_decref(ingress);
    json_decref(pol);
    pol = parse_json("{\"spec\":{\"ingress\":[{\"from\":[]}]}}");
    assert_fields(KUBE_OP_BLOCK, pol, NULL, NULL, "[{\"from\":[]}]");
    assert_fields(KUBE_OP_UNBLOCK, pol, NULL, NULL, "[{\"from\":[]}]");
    assert_fields(KUBE_OP_ISOLATE_POD, dep, NULL, NULL, "{\"app\":\"backend\"}");
    assert_fields(KUBE_OP_RELEASE_POD, bare, NULL, NULL, "null");

    /* The container's names, for "has no container": all of them, in order. */
    assert_null(kube_container(dep, "nosuch", names, sizeof(names)));
    assert_string_equal(names, "sidecar, backend");
    assert_non_null(kube_container(dep, "backend", names, sizeof(names)));
    assert_null(kube_container(bare, "backend", names, sizeof(names)));
    assert_string_equal(names, "");

    json_decref(pol);
    json_decref(bare);
    json_decref(dep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_good),
        cmocka_unit_test(test_request_malformed),
        cmocka_unit_test(test_request_too_many_keys),
        cmocka_unit_test(test_kubeconfig_ca_data_and_token),
        cmocka_unit_test(test_kubeconfig_token_file),
        cmocka_unit_test(test_kubeconfig_context),
        cmocka_unit_test(test_kubeconfig_refused),
        cmocka_unit_test(test_kubeconfig_relative_ca),
        cmocka_unit_test(test_cidr_parse),
        cmocka_unit_test(test_cidr_contains),
        cmocka_unit_test(test_block_adds_to_containing_ipblocks),
        cmocka_unit_test(test_block_refused_or_nothing_to_do),
        cmocka_unit_test(test_unblock),
        cmocka_unit_test(test_fields),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
