/* The log collector's parsers: access logs, kmsg/OOM, auth failures, patterns, splitter,
 * windowed counters. Inputs are passed in buffers of exactly their length (no terminator) so
 * AddressSanitizer catches any read past len. */
#include <setjmp.h> /* cmocka needs these first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "logparse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* ---- helpers ---------------------------------------------------------------------------- */

/* A heap copy of exactly n bytes, so reading past n is an ASan error. */
static char *dup_exact(const char *s, size_t n)
{
    char *p = malloc(n ? n : 1);
    assert_non_null(p);
    if (n)
        memcpy(p, s, n);
    return p;
}

static int access_exact(const char *s, size_t n, struct logparse_access *ret)
{
    char *p = dup_exact(s, n);
    int rc = logparse_access(p, n, ret);
    free(p);
    return rc;
}

static int access_str(const char *s, struct logparse_access *ret)
{
    return access_exact(s, strlen(s), ret);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static char *read_fixture(const char *name, size_t *ret_len)
{
    const char *dir = getenv("VIGIL_FIXTURES");
    char path[512];
    FILE *f;
    char *buf;
    size_t n;

    assert_non_null(dir); /* set by ctest; without it the test must not pass silently */
    snprintf(path, sizeof(path), "%s/logparse/%s", dir, name);
    f = fopen(path, "rb");
    assert_non_null(f);
    buf = malloc(1 << 20);
    assert_non_null(buf);
    n = fread(buf, 1, 1 << 20, f);
    fclose(f);
    assert_true(n > 0 && n < (1 << 20));
    *ret_len = n;
    return buf;
}

/* Records lines from the splitter as "T:" / "F:" + bytes + "\n" into a growing buffer. */
struct collected {
    char *text;
    size_t len, size;
    size_t lines;
    size_t truncated;
    size_t longest;
};

static void collect_line(const char *line, size_t len, bool truncated, void *userdata)
{
    struct collected *c = userdata;
    size_t need = len + 3;

    if (c->len + need > c->size) {
        size_t size = c->size ? c->size : 256;
        while (c->len + need > size)
            size *= 2;
        c->text = realloc(c->text, size);
        assert_non_null(c->text);
        c->size = size;
    }
    c->text[c->len++] = truncated ? 'T' : 'F';
    c->text[c->len++] = ':';
    memcpy(c->text + c->len, line, len);
    c->len += len;
    c->text[c->len++] = '\n';
    c->lines++;
    c->truncated += truncated;
    if (len > c->longest)
        c->longest = len;
}

static void collected_free(struct collected *c)
{
    free(c->text);
    memset(c, 0, sizeof(*c));
}

static const size_t no_cuts[1];

/* Feeds data through a fresh splitter in pieces cut at the given offsets, then flushes. */
static void split_feed(size_t cap, const char *data, size_t len, const size_t *cuts, size_t ncuts,
                       struct collected *out)
{
    logparse_lines_t *l = logparse_lines_new(cap);
    size_t at = 0;

    assert_non_null(l);
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : len;
        char *piece = dup_exact(data + at, to - at);
        logparse_lines_feed(l, piece, to - at, collect_line, out);
        free(piece);
        at = to;
    }
    logparse_lines_flush(l, collect_line, out);
    logparse_lines_destroy(&l);
    assert_null(l);
}

/* ---- access logs ------------------------------------------------------------------------ */

static void test_access_combined_fields(void **state)
{
    (void)state;
    struct logparse_access a;

    assert_int_equal(
        access_str("93.184.216.34 - - [10/Oct/2023:13:55:36 +0000] \"GET /index.html HTTP/1.1\" "
                   "200 612 \"-\" \"Mozilla/5.0 (X11; Linux x86_64)\"\n",
                   &a),
        0);
    assert_string_equal(a.addr, "93.184.216.34");
    assert_int_equal(a.family, AF_INET);
    assert_true(a.request_ok);
    assert_string_equal(a.method, "GET");
    assert_string_equal(a.path, "/index.html");
    assert_false(a.path_truncated);
    assert_int_equal(a.status, 200);
    assert_int_equal(a.bytes, 612);
    assert_int_equal(a.request_time_ms, -1);

    /* nginx with $request_time, CRLF */
    assert_int_equal(access_str("10.0.3.17 - - [10/Oct/2023:13:55:37 +0000] \"POST "
                                "/api/v1/orders?id=42 HTTP/1.1\" 201 87 \"https://x/\" "
                                "\"curl/8.4.0\" 0.123\r\n",
                                &a),
                     0);
    assert_string_equal(a.method, "POST");
    assert_string_equal(a.path, "/api/v1/orders?id=42");
    assert_int_equal(a.status, 201);
    assert_int_equal(a.request_time_ms, 123);

    /* IPv6 client, "-" bytes */
    assert_int_equal(access_str("2001:db8:85a3::8a2e:370:7334 - - [10/Oct/2023:13:55:38 +0000] "
                                "\"GET /healthz HTTP/2.0\" 204 - \"-\" \"kube-probe/1.28\"",
                                &a),
                     0);
    assert_string_equal(a.addr, "2001:db8:85a3::8a2e:370:7334");
    assert_int_equal(a.family, AF_INET6);
    assert_int_equal(a.status, 204);
    assert_int_equal(a.bytes, 0);

    /* Apache escapes a quote in the user agent as \" ; the field does not end there */
    assert_int_equal(access_str("198.51.100.23 - alice [10/Oct/2023:13:55:39 -0700] \"GET /admin "
                                "HTTP/1.1\" 403 153 \"-\" \"Mozilla/5.0 \\\"quoted\\\" agent\" 2",
                                &a),
                     0);
    assert_int_equal(a.status, 403);
    assert_int_equal(a.request_time_ms, 2000);

    /* rounding of the request time to ms */
    assert_int_equal(access_str("::1 - - [10/Oct/2023:13:55:44 +0000] \"HEAD / HTTP/1.0\" 301 0 "
                                "\"-\" \"x\" 0.0005",
                                &a),
                     0);
    assert_int_equal(a.request_time_ms, 1);

    /* $remote_user with a space (nginx does not escape it) */
    assert_int_equal(access_str("::1 - john doe [10/Oct/2023:13:55:44 +0000] \"GET /a HTTP/1.1\" "
                                "401 0 \"-\" \"x\"",
                                &a),
                     0);
    assert_int_equal(a.status, 401);

    /* no request: nginx logs "-"; the line still counts, the request is marked unparsed */
    assert_int_equal(
        access_str("192.0.2.1 - - [10/Oct/2023:13:55:42 +0000] \"-\" 400 0 \"-\" \"-\"", &a), 0);
    assert_false(a.request_ok);
    assert_string_equal(a.method, "");
    assert_string_equal(a.path, "");
    assert_int_equal(a.status, 400);
}

static void test_access_fixture_good(void **state)
{
    (void)state;
    size_t len, classes[6] = {0}, lines = 0, unparsed_requests = 0, v6 = 0, with_time = 0;
    char *buf = read_fixture("access_good.log", &len);
    int64_t time_sum = 0;

    for (char *p = buf; p < buf + len;) {
        char *nl = memchr(p, '\n', (size_t)(buf + len - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(buf + len - p);
        struct logparse_access a;
        int rc = access_exact(p, n, &a);
        if (rc != 0)
            fail_msg("refused good line: %.*s", (int)n, p);
        classes[logparse_status_class(a.status)]++;
        unparsed_requests += !a.request_ok;
        v6 += a.family == AF_INET6;
        if (a.request_time_ms >= 0) {
            with_time++;
            time_sum += a.request_time_ms;
        }
        lines++;
        p += n + 1;
    }
    free(buf);
    assert_int_equal(lines, 11);
    assert_int_equal(classes[2], 3);
    assert_int_equal(classes[3], 2);
    assert_int_equal(classes[4], 4);
    assert_int_equal(classes[5], 2);
    assert_int_equal(unparsed_requests, 2);
    assert_int_equal(v6, 2);
    assert_int_equal(with_time, 4);
    assert_int_equal(time_sum, 123 + 1 + 30004 + 1500);
}

static void test_access_fixture_bad(void **state)
{
    (void)state;
    size_t len, lines = 0;
    char *buf = read_fixture("access_bad.log", &len);

    for (char *p = buf; p < buf + len;) {
        char *nl = memchr(p, '\n', (size_t)(buf + len - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(buf + len - p);
        struct logparse_access a, before;
        memset(&a, 0x5a, sizeof(a));
        before = a;
        if (access_exact(p, n, &a) != -EINVAL)
            fail_msg("accepted bad line: %.*s", (int)n, p);
        assert_memory_equal(&a, &before, sizeof(a)); /* untouched on failure */
        lines++;
        p += n + 1;
    }
    free(buf);
    assert_int_equal(lines, 25);
}

/* Every prefix of a line is refused, except those that are themselves complete lines. */
static void test_access_truncated_prefixes(void **state)
{
    (void)state;
    static const char line[] =
        "10.0.3.17 - - [10/Oct/2023:13:55:37 +0000] \"POST /api/v1/orders?id=42 HTTP/1.1\" 201 "
        "87 \"https://shop.example.com/cart\" \"curl/8.4.0\" 0.123";
    const size_t full = sizeof(line) - 1;
    const size_t bytes_at = (size_t)(strstr(line, " 87 ") - line) + 1;
    const size_t ua_end = (size_t)(strstr(line, "\" 0.123") - line) + 1;
    const size_t valid[] = {bytes_at + 1, bytes_at + 2, ua_end,    ua_end + 2,
                            ua_end + 4,   ua_end + 5,   ua_end + 6};
    size_t accepted = 0;

    assert_int_equal(ua_end + 6, full);
    for (size_t n = 0; n <= full; n++) {
        struct logparse_access a;
        bool expect = false;
        for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
            expect |= valid[i] == n;
        int rc = access_exact(line, n, &a);
        if ((rc == 0) != expect)
            fail_msg("prefix of %zu bytes: rc=%d, expected %s", n, rc,
                     expect ? "accepted" : "refused");
        accepted += rc == 0;
    }
    assert_int_equal(accepted, 7);
}

static void test_access_nul_and_binary(void **state)
{
    (void)state;
    static const char line[] = "93.184.216.34 - - [10/Oct/2023:13:55:36 +0000] \"GET / HTTP/1.1\" "
                               "200 612 \"-\" \"curl/8.4.0\"";
    const size_t n = sizeof(line) - 1;
    char buf[sizeof(line)];
    struct logparse_access a;

    /* a NUL anywhere makes the line invalid (not a shorter valid line) */
    for (size_t i = 0; i < n; i++) {
        memcpy(buf, line, n);
        buf[i] = '\0';
        if (access_exact(buf, n, &a) != -EINVAL)
            fail_msg("accepted a NUL at %zu", i);
    }

    /* random mutation: never crashes, anything accepted is sane */
    for (int iter = 0; iter < 50000; iter++) {
        memcpy(buf, line, n);
        int flips = 1 + (int)(rng() % 4);
        for (int f = 0; f < flips; f++)
            buf[rng() % n] = (char)(rng() & 0xff);
        size_t len = n - (size_t)(rng() % 8);
        memset(&a, 0, sizeof(a));
        if (access_exact(buf, len, &a) == 0) {
            unsigned char bin[16];
            assert_true(a.status >= 100 && a.status <= 599);
            assert_int_equal(inet_pton(a.family, a.addr, bin), 1);
            assert_true(strlen(a.path) < LOGPARSE_PATH_MAX);
            assert_true(strlen(a.method) < LOGPARSE_METHOD_MAX);
        }
    }

    /* random bytes from the syntax alphabet through every line parser */
    static const char alphabet[] = " \"[]\\-:/.0123456789abcGET\n\r\0(),;=";
    logparse_patterns_t *p = logparse_patterns_new();
    assert_non_null(p);
    assert_int_equal(logparse_patterns_add(p, "x", "a.*b", NULL, 0), 0);
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = (size_t)(rng() % 200);
        char *junk = malloc(len ? len : 1);
        struct logparse_kmsg k;
        struct logparse_oom o;
        char addr[LOGPARSE_ADDR_MAX], user[8];
        assert_non_null(junk);
        for (size_t i = 0; i < len; i++)
            junk[i] = (rng() & 3) ? alphabet[rng() % (sizeof(alphabet) - 1)] : (char)rng();
        (void)logparse_access(junk, len, &a);
        if (logparse_kmsg_record(junk, len, &k) == 0)
            assert_true(k.msg >= junk && k.msg + k.msg_len <= junk + len);
        (void)logparse_oom_kill(junk, len, &o);
        if (logparse_failed_login(junk, len, addr, sizeof(addr), user, sizeof(user)))
            assert_true(strlen(user) < sizeof(user));
        assert_true(logparse_patterns_match(p, junk, len, NULL, NULL) >= 0);
        free(junk);
    }
    logparse_patterns_destroy(&p);
}

static void test_access_huge_fields(void **state)
{
    (void)state;
    const size_t big = 1 << 20;
    char *line = malloc(big + 256);
    struct logparse_access a;
    size_t n = 0;

    assert_non_null(line);
    n += (size_t)snprintf(line, 256, "10.1.2.3 - - [10/Oct/2023:13:55:36 +0000] \"GET /");
    memset(line + n, 'p', big);
    n += big;
    memcpy(line + n, " HTTP/1.1\" 414 0", 16);
    n += 16;
    assert_int_equal(access_exact(line, n, &a), 0);
    assert_int_equal(a.status, 414);
    assert_true(a.path_truncated);
    assert_int_equal(strlen(a.path), LOGPARSE_PATH_MAX - 1);
    assert_int_equal(a.path[0], '/');
    assert_int_equal(a.path[LOGPARSE_PATH_MAX - 2], 'p');

    /* an exactly-fitting path is not truncated */
    char fit[LOGPARSE_PATH_MAX + 128];
    int k = snprintf(fit, sizeof(fit), "10.1.2.3 - - [10/Oct/2023:13:55:36 +0000] \"GET /");
    memset(fit + k, 'q', LOGPARSE_PATH_MAX - 2);
    k += LOGPARSE_PATH_MAX - 2;
    k += snprintf(fit + k, sizeof(fit) - (size_t)k, " HTTP/1.1\" 200 1");
    assert_int_equal(access_exact(fit, (size_t)k, &a), 0);
    assert_false(a.path_truncated);
    assert_int_equal(strlen(a.path), LOGPARSE_PATH_MAX - 1);
    free(line);
}

static void test_status_class(void **state)
{
    (void)state;
    assert_int_equal(logparse_status_class(100), 1);
    assert_int_equal(logparse_status_class(204), 2);
    assert_int_equal(logparse_status_class(399), 3);
    assert_int_equal(logparse_status_class(404), 4);
    assert_int_equal(logparse_status_class(599), 5);
    assert_int_equal(logparse_status_class(99), -EINVAL);
    assert_int_equal(logparse_status_class(600), -EINVAL);
    assert_int_equal(logparse_status_class(-200), -EINVAL);
}

/* ---- kernel --------------------------------------------------------------------------- */

static int kmsg_str(const char *s, struct logparse_kmsg *k, char **keep)
{
    *keep = dup_exact(s, strlen(s));
    return logparse_kmsg_record(*keep, strlen(s), k);
}

static void test_kmsg_records(void **state)
{
    (void)state;
    struct logparse_kmsg k, before;
    char *buf;

    assert_int_equal(kmsg_str("3,4242,5140900123,-;Memory cgroup out of memory: Killed process "
                              "1234 (nginx) total-vm:1048576kB, anon-rss:524288kB\n"
                              " SUBSYSTEM=memory\n DEVICE=+memory:pod-1\n",
                              &k, &buf),
                     0);
    assert_int_equal(k.facility, 0);
    assert_int_equal(k.level, 3);
    assert_int_equal(k.seq, 4242);
    assert_int_equal(k.usec, 5140900123ull);
    assert_int_equal(k.flag, '-');
    assert_int_equal(k.msg_len, strlen("Memory cgroup out of memory: Killed process 1234 (nginx) "
                                       "total-vm:1048576kB, anon-rss:524288kB"));
    assert_memory_equal(k.msg, "Memory cgroup out of memory: Killed process", 43);
    assert_true(k.msg[k.msg_len - 1] == 'B');
    struct logparse_oom o;
    assert_true(logparse_oom_kill(k.msg, k.msg_len, &o));
    assert_int_equal(o.pid, 1234);
    assert_string_equal(o.comm, "nginx");
    assert_true(o.memcg);
    free(buf);

    /* facility, extra comma fields (caller id), no trailing newline */
    assert_int_equal(kmsg_str("30,7,99,c,caller=T123;systemd[1]: Started foo.", &k, &buf), 0);
    assert_int_equal(k.facility, 3);
    assert_int_equal(k.level, 6);
    assert_int_equal(k.flag, 'c');
    assert_int_equal(k.msg_len, strlen("systemd[1]: Started foo."));
    free(buf);

    /* empty message */
    assert_int_equal(kmsg_str("6,1,2,-;\n", &k, &buf), 0);
    assert_int_equal(k.msg_len, 0);
    free(buf);

    static const char *const bad[] = {
        "",
        "hello world",
        "6,1,2;no flags",
        "6,1,-;missing usec",
        "6,1,2,-x;two-char flags",
        "6,1,2, ;space flag",
        "a,1,2,-;letters",
        "-6,1,2,-;negative",
        "6,99999999999999999999,2,-;seq overflow",
        "6,1,2,-;ok line\nnot a dictionary line\n",
        "6,1,2,-\n;newline in header",
        ";6,1,2,-",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&k, 0x5a, sizeof(k));
        before = k;
        if (kmsg_str(bad[i], &k, &buf) != -EINVAL)
            fail_msg("accepted kmsg record: %s", bad[i]);
        assert_memory_equal(&k, &before, sizeof(k));
        free(buf);
    }

    /* NUL inside the message; no ';' within a bounded header */
    static const char with_nul[] = "6,1,2,-;abc\0def\n";
    buf = dup_exact(with_nul, sizeof(with_nul) - 1);
    assert_int_equal(logparse_kmsg_record(buf, sizeof(with_nul) - 1, &k), -EINVAL);
    free(buf);
    char longhdr[600];
    memset(longhdr, '1', sizeof(longhdr));
    memcpy(longhdr, "6,1,2,-,", 8);
    longhdr[sizeof(longhdr) - 2] = ';';
    buf = dup_exact(longhdr, sizeof(longhdr));
    assert_int_equal(logparse_kmsg_record(buf, sizeof(longhdr), &k), -EINVAL);
    free(buf);
}

static bool oom_str(const char *s, struct logparse_oom *o)
{
    char *p = dup_exact(s, strlen(s));
    bool ok = logparse_oom_kill(p, strlen(s), o);
    free(p);
    return ok;
}

static void test_oom_forms(void **state)
{
    (void)state;
    struct logparse_oom o, before;

    assert_true(oom_str("Out of memory: Killed process 1234 (nginx) total-vm:1048576kB, "
                        "anon-rss:524288kB, file-rss:0kB, shmem-rss:0kB, UID:33 pgtables:1100kB "
                        "oom_score_adj:0",
                        &o));
    assert_int_equal(o.pid, 1234);
    assert_string_equal(o.comm, "nginx");
    assert_false(o.memcg);

    assert_true(oom_str("Memory cgroup out of memory: Killed process 5678 (postgres) "
                        "total-vm:200kB, anon-rss:100kB",
                        &o));
    assert_int_equal(o.pid, 5678);
    assert_string_equal(o.comm, "postgres");
    assert_true(o.memcg);

    assert_true(oom_str("Killed process 42 (java) total-vm:9000kB, anon-rss:8000kB", &o));
    assert_int_equal(o.pid, 42);
    assert_string_equal(o.comm, "java");

    assert_true(oom_str("Killed process 43 (redis-server)", &o)); /* 2.6-era, nothing after */
    assert_string_equal(o.comm, "redis-server");

    /* dmesg and syslog text */
    assert_true(
        oom_str("[ 8123.456789] Out of memory: Killed process 77 (python3) total-vm:1kB", &o));
    assert_int_equal(o.pid, 77);
    assert_true(oom_str("Oct 10 13:55:01 web-1 kernel: Killed process 78 (ruby) total-vm:1kB", &o));
    assert_string_equal(o.comm, "ruby");

    /* a process that names itself with ") " */
    assert_true(
        oom_str("Out of memory: Killed process 99 (evil) x) total-vm:1kB, anon-rss:1kB", &o));
    assert_int_equal(o.pid, 99);
    assert_string_equal(o.comm, "evil) x");

    /* kmsg escapes unprintable comm bytes */
    assert_true(oom_str("Out of memory: Killed process 100 (\\x01\\x02\\x03\\x04\\x05\\x06\\x07"
                        "\\x08\\x09\\x0a\\x0b\\x0c\\x0d\\x0e\\x0f) total-vm:1kB",
                        &o));
    assert_int_equal(strlen(o.comm), 60);

    static const char *const not_kills[] = {
        "Out of memory: Kill process 1234 (nginx) score 999 or sacrifice child",
        "oom_reaper: reaped process 1234 (nginx), now anon-rss:0kB, file-rss:0kB",
        "myapp: user typed Killed process 1 (init) total-vm:1kB",
        "Out of memory: Killed process abc (x) total-vm:1kB",
        "Out of memory: Killed process 0 (x) total-vm:1kB",
        "Out of memory: Killed process 99999999999 (x) total-vm:1kB",
        "Out of memory: Killed process 12 (unterminated",
        "Out of memory: Killed process 12 nginx total-vm:1kB",
        "Out of memory: Killed process 12 (nginx)total-vm:1kB",
        "Out of memory: Killed process ",
        "",
    };
    for (size_t i = 0; i < sizeof(not_kills) / sizeof(not_kills[0]); i++) {
        memset(&o, 0x5a, sizeof(o));
        before = o;
        if (oom_str(not_kills[i], &o))
            fail_msg("took as an OOM kill: %s", not_kills[i]);
        assert_memory_equal(&o, &before, sizeof(o));
    }

    /* an embedded NUL ends the message */
    static const char nul[] = "Out of memory: Killed\0process 1 (x) total-vm:1kB";
    char *p = dup_exact(nul, sizeof(nul) - 1);
    assert_false(logparse_oom_kill(p, sizeof(nul) - 1, &o));
    free(p);
}

/* ---- authentication failures ------------------------------------------------------------ */

static bool login_str(const char *s, char *addr, size_t addrlen, char *user, size_t userlen)
{
    char *p = dup_exact(s, strlen(s));
    bool ok = logparse_failed_login(p, strlen(s), addr, addrlen, user, userlen);
    free(p);
    return ok;
}

static void test_failed_login_lines(void **state)
{
    (void)state;
    char addr[LOGPARSE_ADDR_MAX], user[64];

    assert_true(login_str("Oct 10 13:55:01 web-1 sshd[2101]: Failed password for root from "
                          "203.0.113.7 port 51122 ssh2",
                          addr, sizeof(addr), user, sizeof(user)));
    assert_string_equal(addr, "203.0.113.7");
    assert_string_equal(user, "root");

    assert_true(login_str("2023-10-10T13:55:05.123+00:00 web-1 sshd-session[2111]: Failed password "
                          "for invalid user oracle from 2001:db8::5 port 40000 ssh2\n",
                          addr, sizeof(addr), user, sizeof(user)));
    assert_string_equal(addr, "2001:db8::5");
    assert_string_equal(user, "oracle");

    assert_true(login_str("sshd[9]: Invalid user admin from 198.51.100.4 port 5555", addr,
                          sizeof(addr), user, sizeof(user)));
    assert_string_equal(addr, "198.51.100.4");
    assert_string_equal(user, "admin");
    assert_true(login_str("sshd[9]: Invalid user admin from 198.51.100.5", addr, sizeof(addr), user,
                          sizeof(user))); /* older sshd: no port */
    assert_string_equal(addr, "198.51.100.5");
    assert_true(login_str("sshd[9]: Invalid user  from ::ffff:10.0.0.1 port 22", addr, sizeof(addr),
                          user, sizeof(user))); /* empty user name */
    assert_string_equal(addr, "::ffff:10.0.0.1");
    assert_string_equal(user, "");

    /* rsyslog's repeat summary */
    assert_true(login_str("sshd[9]: message repeated 3 times: [ Failed password for root from "
                          "192.0.2.8 port 22 ssh2]",
                          addr, sizeof(addr), user, sizeof(user)));
    assert_string_equal(addr, "192.0.2.8");

    /* PAM, with and without user=, IPv6 */
    assert_true(login_str("sshd[2112]: pam_unix(sshd:auth): authentication failure; logname= uid=0 "
                          "euid=0 tty=ssh ruser= rhost=2001:db8::7  user=root",
                          addr, sizeof(addr), user, sizeof(user)));
    assert_string_equal(addr, "2001:db8::7");
    assert_string_equal(user, "root");
    assert_true(login_str("sshd[2112]: pam_unix(sshd:auth): authentication failure; logname= uid=0 "
                          "euid=0 tty=ssh ruser= rhost=192.0.2.9",
                          addr, sizeof(addr), user, sizeof(user)));
    assert_string_equal(addr, "192.0.2.9");
    assert_string_equal(user, "");

    /* the user name is the client's: it cannot forge the source address */
    assert_true(login_str("sshd[1]: Failed password for invalid user x from 6.6.6.6 port 1 ssh2 "
                          "from 198.51.100.99 port 2222 ssh2",
                          addr, sizeof(addr), user, sizeof(user)));
    assert_string_equal(addr, "198.51.100.99");
    assert_string_equal(user, "x from 6.6.6.6 port 1 ssh2");
    assert_true(login_str("sshd[1]: pam_unix(sshd:auth): authentication failure; logname= uid=0 "
                          "euid=0 tty=ssh ruser= rhost=192.0.2.10  user=a rhost=6.6.6.6",
                          addr, sizeof(addr), user, sizeof(user)));
    assert_string_equal(addr, "192.0.2.10");
    assert_string_equal(user, "a rhost=6.6.6.6");
    assert_true(login_str("sshd[1]: pam_unix(sshd:auth): authentication failure; logname= uid=0 "
                          "euid=0 tty=ssh ruser= rhost=192.0.2.11  user=a user=b",
                          addr, sizeof(addr), user, sizeof(user)));
    assert_string_equal(user, "a user=b");

    /* user truncated to the buffer; address must fit or the line is refused */
    char small_user[4];
    assert_true(login_str("sshd[1]: Failed password for administrator from 192.0.2.1 port 1 ssh2",
                          addr, sizeof(addr), small_user, sizeof(small_user)));
    assert_string_equal(small_user, "adm");
    char small_addr[8] = "keep";
    snprintf(user, sizeof(user), "keep");
    assert_false(login_str("sshd[1]: Failed password for root from 192.0.2.100 port 1 ssh2",
                           small_addr, sizeof(small_addr), user, sizeof(user)));
    assert_string_equal(small_addr, "keep");
    assert_string_equal(user, "keep");
    assert_true(login_str("sshd[1]: Failed password for root from 192.0.2.100 port 1 ssh2", NULL, 0,
                          NULL, 0));

    static const char sudo_line[] = "sudo: pam_unix(sudo:auth): authentication failure; "
                                    "logname=bob uid=1000 euid=0 tty=/dev/pts/0 ruser=bob "
                                    "rhost=  user=bob";
    static const char *const not_failures[] = {
        "sshd[1]: Accepted password for root from 192.0.2.1 port 1 ssh2",
        "sshd[1]: Failed password for root from server.example.com port 1 ssh2",
        "sshd[1]: Failed password for root from 192.0.2.1 port 70000 ssh2",
        "sshd[1]: Failed password for root from 192.0.2.1 ssh2",
        "sshd[1]: Failed password for root from 192.0.2.1",
        "sshd[1]: Failed password for root",
        "myapp[3]: user said Failed password for root from 9.9.9.9 port 1 ssh2",
        sudo_line,
        "sshd[1]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh "
        "ruser= rhost=host.example.com  user=root",
        "",
    };
    for (size_t i = 0; i < sizeof(not_failures) / sizeof(not_failures[0]); i++) {
        snprintf(addr, sizeof(addr), "keep");
        if (login_str(not_failures[i], addr, sizeof(addr), user, sizeof(user)))
            fail_msg("took as a failed login: %s", not_failures[i]);
        assert_string_equal(addr, "keep");
    }

    /* NUL before the address ends the line */
    static const char nul[] = "sshd[1]: Failed password for root\0 from 192.0.2.1 port 1 ssh2";
    char *p = dup_exact(nul, sizeof(nul) - 1);
    assert_false(logparse_failed_login(p, sizeof(nul) - 1, addr, sizeof(addr), NULL, 0));
    free(p);
}

/* auth.log read through the splitter, failures counted per source in a window. */
struct auth_ctx {
    logparse_window_t *w;
    size_t failures;
};

static void count_failure(const char *line, size_t len, bool truncated, void *userdata)
{
    struct auth_ctx *ctx = userdata;
    char addr[LOGPARSE_ADDR_MAX];

    assert_false(truncated);
    if (logparse_failed_login(line, len, addr, sizeof(addr), NULL, 0)) {
        assert_int_equal(logparse_window_add(ctx->w, addr, 1000), 0);
        ctx->failures++;
    }
}

static void test_failed_logins_per_source(void **state)
{
    (void)state;
    size_t len;
    char *buf = read_fixture("auth.log", &len);
    struct auth_ctx ctx = {.w = logparse_window_new(60, 16)};
    logparse_lines_t *l = logparse_lines_new(0);
    struct logparse_window_entry top[8];

    assert_non_null(ctx.w);
    assert_non_null(l);
    logparse_lines_feed(l, buf, len, count_failure, &ctx);
    logparse_lines_flush(l, count_failure, &ctx);
    assert_int_equal(ctx.failures, 7);
    assert_int_equal(logparse_window_top(ctx.w, 1000, top, 8), 3);
    assert_string_equal(top[0].key, "203.0.113.7");
    assert_int_equal(top[0].count, 4);
    assert_string_equal(top[1].key, "2001:db8::5");
    assert_int_equal(top[1].count, 2);
    assert_string_equal(top[2].key, "198.51.100.99");
    assert_int_equal(top[2].count, 1);
    logparse_lines_destroy(&l);
    logparse_window_destroy(&ctx.w);
    assert_null(ctx.w);
    free(buf);
}

/* The kind of each failed-login line, so a counter can count one per attempt. */
static void test_failed_login_kinds(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        enum logparse_login_kind kind;
    } cases[] = {
        {"sshd[1]: Invalid user admin from 203.0.113.7 port 5000", LOGPARSE_LOGIN_INVALID_USER},
        {"sshd[1]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh "
         "ruser= rhost=203.0.113.7",
         LOGPARSE_LOGIN_PAM},
        {"sshd[1]: Failed password for invalid user admin from 203.0.113.7 port 5000 ssh2",
         LOGPARSE_LOGIN_FAILED_PASSWORD},
        {"sshd[1]: Failed password for root from 2001:db8::1 port 1 ssh2",
         LOGPARSE_LOGIN_FAILED_PASSWORD},
    };
    char addr[LOGPARSE_ADDR_MAX];
    enum logparse_login_kind kind;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *p = dup_exact(cases[i].line, strlen(cases[i].line));
        kind = 0;
        assert_true(logparse_failed_login_kind(p, strlen(cases[i].line), addr, sizeof(addr), NULL,
                                               0, &kind));
        assert_int_equal(kind, cases[i].kind);
        /* The same answer as logparse_failed_login, which it extends. */
        assert_true(logparse_failed_login(p, strlen(cases[i].line), NULL, 0, NULL, 0));
        free(p);
    }
    /* Not a failure: kind untouched. */
    static const char ok[] = "sshd[1]: Accepted password for root from 192.0.2.1 port 1 ssh2";
    char *p = dup_exact(ok, sizeof(ok) - 1);
    kind = LOGPARSE_LOGIN_PAM;
    assert_false(logparse_failed_login_kind(p, sizeof(ok) - 1, addr, sizeof(addr), NULL, 0, &kind));
    assert_int_equal(kind, LOGPARSE_LOGIN_PAM);
    free(p);
}

/* ---- patterns --------------------------------------------------------------------------- */

struct matches {
    char names[8][LOGPARSE_NAME_MAX];
    size_t n;
};

static void on_match(const char *name, void *userdata)
{
    struct matches *m = userdata;
    assert_true(m->n < 8);
    snprintf(m->names[m->n++], LOGPARSE_NAME_MAX, "%s", name);
}

static int match_exact(logparse_patterns_t *p, const char *s, size_t n, struct matches *m)
{
    char *copy = dup_exact(s, n);
    memset(m, 0, sizeof(*m));
    int rc = logparse_patterns_match(p, copy, n, on_match, m);
    free(copy);
    return rc;
}

static void test_patterns_add(void **state)
{
    (void)state;
    logparse_patterns_t *p = logparse_patterns_new();
    char err[256] = "", expect[256];
    regex_t re;

    assert_non_null(p);
    /* a bad regex is refused with regcomp's own message */
    assert_int_equal(logparse_patterns_add(p, "broken", "a(b", err, sizeof(err)), -EINVAL);
    int rc = regcomp(&re, "a(b", REG_EXTENDED | REG_NOSUB);
    assert_int_not_equal(rc, 0);
    regerror(rc, &re, expect, sizeof(expect));
    assert_true(strlen(err) > 0);
    assert_string_equal(err, expect);
    assert_int_equal(logparse_patterns_add(p, "broken2", "[z-a]", err, sizeof(err)), -EINVAL);
    assert_true(strlen(err) > 0);
    assert_int_equal(logparse_patterns_add(p, "broken3", "x{2,1}", NULL, 0), -EINVAL);

    assert_int_equal(logparse_patterns_add(p, "", "x", err, sizeof(err)), -EINVAL);
    char longname[LOGPARSE_NAME_MAX + 1];
    memset(longname, 'n', LOGPARSE_NAME_MAX);
    longname[LOGPARSE_NAME_MAX] = '\0';
    assert_int_equal(logparse_patterns_add(p, longname, "x", err, sizeof(err)), -EINVAL);
    longname[LOGPARSE_NAME_MAX - 1] = '\0';
    assert_int_equal(logparse_patterns_add(p, longname, "x", err, sizeof(err)), 0);
    assert_int_equal(logparse_patterns_add(p, longname, "y", err, sizeof(err)), -EEXIST);

    /* at most LOGPARSE_PATTERNS_MAX */
    for (int i = 1; i < LOGPARSE_PATTERNS_MAX; i++) {
        char name[16];
        snprintf(name, sizeof(name), "p%d", i);
        assert_int_equal(logparse_patterns_add(p, name, "^p[0-9]+$", err, sizeof(err)), 0);
    }
    assert_int_equal(logparse_patterns_add(p, "one-too-many", "x", err, sizeof(err)), -ENOSPC);

    /* bad regexes took no slot: the first good pattern is still the first one */
    struct matches m;
    assert_int_equal(match_exact(p, "x", 1, &m), 1);
    assert_string_equal(m.names[0], longname);
    logparse_patterns_destroy(&p);
    assert_null(p);
    logparse_patterns_destroy(&p); /* NULL is fine */
}

static void test_patterns_match(void **state)
{
    (void)state;
    logparse_patterns_t *p = logparse_patterns_new();
    struct matches m;

    assert_non_null(p);
    assert_int_equal(logparse_patterns_add(p, "segv", "segfault at [0-9a-f]+", NULL, 0), 0);
    assert_int_equal(logparse_patterns_add(p, "oom", "Out of memory|oom-kill", NULL, 0), 0);
    assert_int_equal(logparse_patterns_add(p, "needle", "NEEDLE", NULL, 0), 0);
    assert_int_equal(logparse_patterns_add(p, "tail", "NEEDLE$", NULL, 0), 0);

    static const char line[] = "app[1]: segfault at 7f00 ip ... Out of memory";
    assert_int_equal(match_exact(p, line, sizeof(line) - 1, &m), 2);
    assert_int_equal(m.n, 2);
    assert_string_equal(m.names[0], "segv");
    assert_string_equal(m.names[1], "oom");
    assert_int_equal(match_exact(p, "nothing here", 12, &m), 0);
    assert_int_equal(m.n, 0);
    assert_int_equal(logparse_patterns_match(p, NULL, 0, on_match, &m), 0);

    /* only the first LOGPARSE_MATCH_MAX bytes are seen */
    const size_t big = 20000;
    char *huge = malloc(big);
    assert_non_null(huge);
    const size_t at[] = {0, 8000, LOGPARSE_MATCH_MAX - 6, LOGPARSE_MATCH_MAX - 3, 9000, big - 6};
    const bool seen[] = {true, true, true, false, false, false};
    for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
        memset(huge, 'x', big);
        memcpy(huge + at[i], "NEEDLE", 6);
        int rc = match_exact(p, huge, big, &m);
        if ((rc > 0) != seen[i])
            fail_msg("NEEDLE at %zu: rc=%d", at[i], rc);
    }
    /* '$' matches at the end of the bounded copy */
    memset(huge, 'x', big);
    memcpy(huge + LOGPARSE_MATCH_MAX - 6, "NEEDLE", 6);
    assert_int_equal(match_exact(p, huge, big, &m), 2);
    assert_string_equal(m.names[1], "tail");
    free(huge);

    /* an embedded NUL ends the line */
    static const char nul[] = "harmless\0NEEDLE segfault at 1";
    assert_int_equal(match_exact(p, nul, sizeof(nul) - 1, &m), 0);
    static const char nul2[] = "NEEDLE\0trailing";
    assert_int_equal(match_exact(p, nul2, sizeof(nul2) - 1, &m), 2);
    logparse_patterns_destroy(&p);
}

/* ---- line splitter ---------------------------------------------------------------------- */

static void test_lines_huge_line(void **state)
{
    (void)state;
    const size_t big = 1 << 20;
    const char tail[] = "\nnext line\r\nlast";
    char *data = malloc(big + sizeof(tail));
    struct collected whole = {0}, chunked = {0};

    assert_non_null(data);
    for (size_t i = 0; i < big; i++)
        data[i] = (char)('a' + i % 26);
    memcpy(data + big, tail, sizeof(tail) - 1);
    const size_t len = big + sizeof(tail) - 1;

    /* in one piece: delivered straight from the caller's buffer */
    split_feed(0, data, len, no_cuts, 0, &whole);
    assert_int_equal(whole.lines, 3);
    assert_int_equal(whole.truncated, 1);
    assert_int_equal(whole.longest, LOGPARSE_LINE_CAP_DEFAULT);
    assert_memory_equal(whole.text, "T:", 2);
    assert_memory_equal(whole.text + 2, data, LOGPARSE_LINE_CAP_DEFAULT);
    static const char rest[] = "F:next line\nF:last\n";
    assert_int_equal(whole.len, 2 + LOGPARSE_LINE_CAP_DEFAULT + 1 + sizeof(rest) - 1);
    assert_memory_equal(whole.text + 2 + LOGPARSE_LINE_CAP_DEFAULT + 1, rest, sizeof(rest) - 1);

    /* in 4 KiB pieces: buffered, cut at the cap, the rest skipped; same lines */
    size_t cuts[(1 << 20) / 4096 + 2], n = 0;
    for (size_t at = 4096; at < len; at += 4096)
        cuts[n++] = at;
    split_feed(0, data, len, cuts, n, &chunked);
    assert_int_equal(chunked.len, whole.len);
    assert_memory_equal(chunked.text, whole.text, whole.len);

    /* one byte at a time past the cap, then the next line intact */
    logparse_lines_t *l = logparse_lines_new(1000);
    struct collected bytes = {0};
    assert_non_null(l);
    for (size_t i = 0; i < 100000; i++)
        assert_int_equal(logparse_lines_feed(l, data + i, 1, collect_line, &bytes),
                         i == 1001 ? 1 : 0); /* delivered once over cap + 1 bytes */
    assert_int_equal(bytes.lines, 1);
    assert_int_equal(logparse_lines_feed(l, "\nok\n", 4, collect_line, &bytes), 1);
    assert_int_equal(bytes.lines, 2);
    assert_int_equal(bytes.truncated, 1);
    assert_memory_equal(bytes.text + bytes.len - 5, "F:ok\n", 5);
    logparse_lines_destroy(&l);

    collected_free(&whole);
    collected_free(&chunked);
    collected_free(&bytes);
    free(data);
}

/* cap 8: exact fits (with and without CR), over by one, far over, CR handling, empty lines. */
static const char small_input[] = "alpha\r\nbeta\n\n\r\nexactly8\r\n12345678\n123456789\n"
                                  "12345678\r\rxx\nthis line is far too long\r\nx\r\r\n\r"
                                  "\0bin\0\nlast\r";
static const char small_expect[] = "F:alpha\nF:beta\nF:\nF:\nF:exactly8\nF:12345678\nT:12345678\n"
                                   "T:12345678\nT:this lin\nF:x\r\nF:\r\0bin\0\nF:last\n";

static void test_lines_crlf_and_caps(void **state)
{
    (void)state;
    struct collected out = {0};

    split_feed(8, small_input, sizeof(small_input) - 1, no_cuts, 0, &out);
    assert_int_equal(out.len, sizeof(small_expect) - 1);
    assert_memory_equal(out.text, small_expect, out.len);
    assert_int_equal(out.lines, 12);
    assert_int_equal(out.truncated, 3);
    collected_free(&out);
}

static void test_lines_every_split(void **state)
{
    (void)state;
    const size_t len = sizeof(small_input) - 1;
    struct collected out = {0};

    /* one byte at a time */
    size_t cuts[sizeof(small_input)];
    for (size_t i = 0; i + 1 < len; i++)
        cuts[i] = i + 1;
    split_feed(8, small_input, len, cuts, len - 1, &out);
    assert_int_equal(out.len, sizeof(small_expect) - 1);
    assert_memory_equal(out.text, small_expect, out.len);
    collected_free(&out);

    /* every pair of cut points: three pieces */
    for (size_t i = 0; i <= len; i++) {
        for (size_t j = i; j <= len; j++) {
            size_t two[2] = {i, j};
            split_feed(8, small_input, len, two, 2, &out);
            if (out.len != sizeof(small_expect) - 1 || memcmp(out.text, small_expect, out.len) != 0)
                fail_msg("cuts at %zu and %zu give different lines", i, j);
            collected_free(&out);
        }
    }

    /* random splits */
    for (int iter = 0; iter < 2000; iter++) {
        size_t n = 0, at = 0;
        while (n < len) {
            at += 1 + (size_t)(rng() % 12);
            if (at >= len)
                break;
            cuts[n++] = at;
        }
        split_feed(8, small_input, len, cuts, n, &out);
        assert_int_equal(out.len, sizeof(small_expect) - 1);
        assert_memory_equal(out.text, small_expect, out.len);
        collected_free(&out);
    }
}

static void test_lines_flush(void **state)
{
    (void)state;
    logparse_lines_t *l = logparse_lines_new(4);
    struct collected out = {0};

    assert_non_null(l);
    assert_null(logparse_lines_new(LOGPARSE_LINE_CAP_MAX + 1));
    assert_int_equal(logparse_lines_flush(l, collect_line, &out), 0); /* nothing pending */

    assert_int_equal(logparse_lines_feed(l, "ab", 2, collect_line, &out), 0);
    assert_int_equal(logparse_lines_flush(l, collect_line, &out), 1);
    assert_int_equal(logparse_lines_flush(l, collect_line, &out), 0); /* reset */

    /* a truncated line is not delivered again at flush, and the state is reset */
    assert_int_equal(logparse_lines_feed(l, "abcdefgh", 8, collect_line, &out), 1);
    assert_int_equal(logparse_lines_flush(l, collect_line, &out), 0);
    assert_int_equal(logparse_lines_feed(l, "xy\n", 3, collect_line, &out), 1);

    /* rotation: the unterminated tail of the old file, then the new file */
    assert_int_equal(logparse_lines_feed(l, "ol", 2, collect_line, &out), 0);
    assert_int_equal(logparse_lines_flush(l, collect_line, &out), 1);
    assert_int_equal(logparse_lines_feed(l, "new\n", 4, collect_line, &out), 1);

    static const char expect[] = "F:ab\nT:abcd\nF:xy\nF:ol\nF:new\n";
    assert_int_equal(out.len, sizeof(expect) - 1);
    assert_memory_equal(out.text, expect, out.len);
    logparse_lines_destroy(&l);
    assert_null(l);
    logparse_lines_destroy(&l);
    collected_free(&out);
}

/* ---- windowed counters ------------------------------------------------------------------ */

static void test_window_expiry(void **state)
{
    (void)state;
    logparse_window_t *w = logparse_window_new(10, 4);

    assert_non_null(w);
    for (int i = 0; i < 3; i++)
        assert_int_equal(logparse_window_add(w, "4xx", 100), 0);
    assert_int_equal(logparse_window_add(w, "5xx", 105), 0);
    assert_int_equal(logparse_window_count(w, "4xx", 100), 3);
    assert_int_equal(logparse_window_count(w, "4xx", 109), 3);
    assert_int_equal(logparse_window_count(w, "4xx", 110), 0); /* window is (100, 110] */
    assert_int_equal(logparse_window_count(w, "5xx", 114), 1);
    assert_int_equal(logparse_window_count(w, "5xx", 115), 0);
    assert_int_equal(logparse_window_count(w, "nope", 105), 0);
    assert_int_equal(logparse_window_total(w, 105), 4);
    assert_int_equal(logparse_window_total(w, 110), 1);
    assert_int_equal(logparse_window_total(w, 115), 0);

    /* one event a second for 25 s: 10 in the window, and the ring reuses its buckets */
    for (int64_t t = 200; t < 225; t++)
        assert_int_equal(logparse_window_add(w, "2xx", t), 0);
    assert_int_equal(logparse_window_count(w, "2xx", 224), 10);
    assert_int_equal(logparse_window_count(w, "2xx", 229), 5);
    assert_int_equal(logparse_window_total(w, 224), 10);

    /* a gap longer than the window clears the key */
    assert_int_equal(logparse_window_add(w, "2xx", 1000), 0);
    assert_int_equal(logparse_window_count(w, "2xx", 1000), 1);

    /* slightly out of order: counted in its own second; older than the window: refused */
    assert_int_equal(logparse_window_add(w, "2xx", 995), 0);
    assert_int_equal(logparse_window_count(w, "2xx", 1000), 2);
    assert_int_equal(logparse_window_count(w, "2xx", 1005), 1);
    assert_int_equal(logparse_window_add(w, "2xx", 990), -ERANGE);
    assert_int_equal(logparse_window_add(w, "new", 990), -ERANGE);
    assert_int_equal(logparse_window_total(w, 1000), 2);

    /* bad arguments */
    char longkey[LOGPARSE_KEY_MAX + 1];
    memset(longkey, 'k', LOGPARSE_KEY_MAX);
    longkey[LOGPARSE_KEY_MAX] = '\0';
    assert_int_equal(logparse_window_add(w, longkey, 1000), -EINVAL);
    longkey[LOGPARSE_KEY_MAX - 1] = '\0';
    assert_int_equal(logparse_window_add(w, longkey, 1000), 0);
    assert_int_equal(logparse_window_count(w, longkey, 1000), 1);
    assert_int_equal(logparse_window_add(w, "", 1000), -EINVAL);
    assert_int_equal(logparse_window_add(w, NULL, 1000), -EINVAL);
    assert_int_equal(logparse_window_add(w, "k", -1), -EINVAL);
    logparse_window_destroy(&w);
    assert_null(w);
    logparse_window_destroy(&w);

    assert_null(logparse_window_new(0, 10));
    assert_null(logparse_window_new(LOGPARSE_WINDOW_SECONDS_MAX + 1, 10));
    assert_null(logparse_window_new(10, LOGPARSE_WINDOW_KEYS_MAX + 1));
}

static void test_window_eviction(void **state)
{
    (void)state;
    logparse_window_t *w = logparse_window_new(10, 2);

    assert_non_null(w);
    assert_int_equal(logparse_window_add(w, "a", 1), 0);
    assert_int_equal(logparse_window_add(w, "b", 2), 0);
    assert_int_equal(logparse_window_add(w, "a", 3), 0); /* a is now the most recent */
    assert_int_equal(logparse_window_add(w, "c", 4), 0); /* evicts b, which still counts */
    assert_int_equal(logparse_window_evictions(w), 1);
    assert_int_equal(logparse_window_keys(w), 2);
    assert_int_equal(logparse_window_count(w, "a", 4), 2);
    assert_int_equal(logparse_window_count(w, "b", 4), 0);
    assert_int_equal(logparse_window_count(w, "c", 4), 1);
    assert_int_equal(logparse_window_total(w, 4), 4); /* b's event still in the total */

    /* replacing a key whose events have all expired is not an eviction */
    assert_int_equal(logparse_window_add(w, "c", 20), 0);
    assert_int_equal(logparse_window_add(w, "d", 20), 0); /* replaces a (last at 3) */
    assert_int_equal(logparse_window_evictions(w), 1);
    assert_int_equal(logparse_window_count(w, "d", 20), 1);
    assert_int_equal(logparse_window_count(w, "c", 20), 1);

    /* a flood of distinct sources: bounded keys, every replacement counted */
    logparse_window_t *flood = logparse_window_new(60, 1024);
    assert_non_null(flood);
    for (int i = 0; i < 5000; i++) {
        char key[32];
        snprintf(key, sizeof(key), "2001:db8::%x", (unsigned)i);
        assert_int_equal(logparse_window_add(flood, key, 500), 0);
    }
    assert_int_equal(logparse_window_keys(flood), 1024);
    assert_int_equal(logparse_window_evictions(flood), 5000 - 1024);
    assert_int_equal(logparse_window_total(flood, 500), 5000);
    assert_int_equal(logparse_window_count(flood, "2001:db8::0", 500), 0);
    assert_int_equal(logparse_window_count(flood, "2001:db8::1387", 500), 1); /* 4999 */
    logparse_window_destroy(&flood);
    logparse_window_destroy(&w);
}

static void test_window_top(void **state)
{
    (void)state;
    logparse_window_t *w = logparse_window_new(30, 0);
    struct logparse_window_entry top[4];
    static const struct {
        const char *key;
        int count;
        int64_t at;
    } events[] = {
        {"10.0.0.1", 9, 60}, /* expired by 103 */
        {"10.0.0.9", 1, 100}, {"10.0.0.3", 3, 100}, {"10.0.0.5", 5, 101},
        {"10.0.0.2", 3, 102}, {"10.0.0.7", 2, 103},
    };

    assert_non_null(w);
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
        for (int c = 0; c < events[i].count; c++)
            assert_int_equal(logparse_window_add(w, events[i].key, events[i].at), 0);

    assert_int_equal(logparse_window_top(w, 103, top, 3), 3);
    assert_string_equal(top[0].key, "10.0.0.5");
    assert_int_equal(top[0].count, 5);
    assert_string_equal(top[1].key, "10.0.0.2"); /* tie on 3: key ascending */
    assert_int_equal(top[1].count, 3);
    assert_string_equal(top[2].key, "10.0.0.3");

    /* more room than keys with events: the expired key is not listed */
    struct logparse_window_entry all[10];
    assert_int_equal(logparse_window_top(w, 103, all, 10), 5);
    assert_string_equal(all[3].key, "10.0.0.7");
    assert_string_equal(all[4].key, "10.0.0.9");
    for (size_t i = 0; i < 5; i++)
        assert_string_not_equal(all[i].key, "10.0.0.1");
    assert_int_equal(logparse_window_total(w, 103), 14);

    /* later, only the newer ones remain */
    assert_int_equal(logparse_window_top(w, 132, top, 4), 1);
    assert_string_equal(top[0].key, "10.0.0.7");
    assert_int_equal(logparse_window_top(w, 200, top, 4), 0);
    assert_int_equal(logparse_window_top(w, 103, top, 0), 0);
    logparse_window_destroy(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_access_combined_fields),
        cmocka_unit_test(test_access_fixture_good),
        cmocka_unit_test(test_access_fixture_bad),
        cmocka_unit_test(test_access_truncated_prefixes),
        cmocka_unit_test(test_access_nul_and_binary),
        cmocka_unit_test(test_access_huge_fields),
        cmocka_unit_test(test_status_class),
        cmocka_unit_test(test_kmsg_records),
        cmocka_unit_test(test_oom_forms),
        cmocka_unit_test(test_failed_login_lines),
        cmocka_unit_test(test_failed_logins_per_source),
        cmocka_unit_test(test_failed_login_kinds),
        cmocka_unit_test(test_patterns_add),
        cmocka_unit_test(test_patterns_match),
        cmocka_unit_test(test_lines_huge_line),
        cmocka_unit_test(test_lines_crlf_and_caps),
        cmocka_unit_test(test_lines_every_split),
        cmocka_unit_test(test_lines_flush),
        cmocka_unit_test(test_window_expiry),
        cmocka_unit_test(test_window_eviction),
        cmocka_unit_test(test_window_top),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
