/*
 * The notifier: the pure formatting (Slack, webhook and its signature, PagerDuty, e-mail,
 * backoff), then delivery end to end against a private PostgreSQL (pg_fixture.h) and real
 * receivers on loopback started here: tests/tools/http_sink.py (records requests, answers 200,
 * 500, 500-then-200 or hangs) and aiosmtpd from Debian's python3-aiosmtpd (a real SMTP server
 * writing a Maildir).
 *
 * Environment: VIGIL_SRC (the source tree, for the sink script), VIGIL_PYTHON (default
 * /usr/bin/python3: Debian's, the one python3-aiosmtpd is installed for).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <sodium.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "digest.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "pg_fixture.h"
#include "store.h"
#include "timeutil.h"

#define WAIT_MS 15000 /* how long a test waits for an outcome before it fails */
#define SECRET "webhook-secret-for-tests"
#define MAX_CHILDREN 8

struct sink {
    pid_t pid;
    int port;
    char log[PATH_MAX], mode[PATH_MAX], url[128];
};

struct smtp {
    pid_t pid;
    int port;
    char maildir[PATH_MAX], url[64];
};

static struct {
    struct pg_fixture pg;
    char work[64]; /* scratch: sink logs, maildirs, the secret */
    char secret_path[PATH_MAX];
    char python[PATH_MAX], sink_script[PATH_MAX];
    notify_t *notify;
    pid_t children[MAX_CHILDREN];
    int seq; /* makes fingerprints and directories unique */
} t;

/* ---- helpers: processes --------------------------------------------------------------------- */

static void remember_child(pid_t pid)
{
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (t.children[i] == 0) {
            t.children[i] = pid;
            return;
        }
    }
    fail_msg("too many helper processes");
}

static void stop_child(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    for (int i = 0; i < 60; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            goto forget;
        pg_fixture_sleep_ms(50);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
forget:
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (t.children[i] == pid)
            t.children[i] = 0;
}

/* fork + exec argv with stdout/stderr into errfile. */
static pid_t spawn(char *const argv[], const char *errfile)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(errfile, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    remember_child(pid);
    return pid;
}

static void write_file(const char *path, const char *text)
{
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, path), 0);
}

/* A sink answering mode, with answer (NULL = the sink's own small body) as the body of 2xx. */
static void sink_start_answer(struct sink *s, const char *mode, const char *answer)
{
    char port_file[PATH_MAX], errfile[PATH_MAX], answer_file[PATH_MAX];
    int n = ++t.seq;
    memset(s, 0, sizeof(*s));
    snprintf(s->log, sizeof(s->log), "%s/sink-%d.jsonl", t.work, n);
    snprintf(s->mode, sizeof(s->mode), "%s/sink-%d.mode", t.work, n);
    snprintf(port_file, sizeof(port_file), "%s/sink-%d.port", t.work, n);
    snprintf(errfile, sizeof(errfile), "%s/sink-%d.err", t.work, n);
    snprintf(answer_file, sizeof(answer_file), "%s/sink-%d.answer", t.work, n);
    write_file(s->mode, mode);
    write_file(answer_file, answer ? answer : "");
    char *const argv[] = {t.python,        t.sink_script, "--log",       s->log,
                          "--port-file",   port_file,     "--mode-file", s->mode,
                          "--answer-file", answer_file,   NULL};
    s->pid = spawn(argv, errfile);
    for (int i = 0; i < 200 && s->port == 0; i++) {
        FILE *f = fopen(port_file, "r");
        if (f) {
            if (fscanf(f, "%d", &s->port) != 1)
                s->port = 0;
            fclose(f);
        }
        if (s->port == 0)
            pg_fixture_sleep_ms(50);
    }
    if (s->port == 0)
        fail_msg("http_sink did not start (see %s)", errfile);
    snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d", s->port);
}

static void sink_start(struct sink *s, const char *mode)
{
    sink_start_answer(s, mode, NULL);
}

static void sink_mode(struct sink *s, const char *mode)
{
    write_file(s->mode, mode);
}

static void sink_stop(struct sink *s)
{
    stop_child(s->pid);
    s->pid = 0;
}

/* Every request recorded so far, as a JSON array (caller decrefs). */
static json_t *sink_requests(const struct sink *s)
{
    json_t *all = json_array();
    FILE *f = fopen(s->log, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    while (f && (got = getline(&line, &cap, f)) > 0) {
        json_error_t jerr;
        if (line[got - 1] != '\n') /* being written right now */
            break;
        json_t *req = json_loads(line, 0, &jerr);
        if (!req)
            fail_msg("sink log line is not JSON: %s", jerr.text);
        json_array_append_new(all, req);
    }
    free(line);
    if (f)
        fclose(f);
    return all;
}

static size_t sink_count(const struct sink *s)
{
    json_t *all = sink_requests(s);
    size_t n = json_array_size(all);
    json_decref(all);
    return n;
}

static void sink_wait(const struct sink *s, size_t n)
{
    int64_t deadline = vg_mono_ms() + WAIT_MS;
    while (sink_count(s) < n) {
        if (vg_mono_ms() > deadline)
            fail_msg("the sink saw %zu requests, expected %zu", sink_count(s), n);
        pg_fixture_sleep_ms(20);
    }
}

/* The exact bytes of a recorded request's body (caller frees). */
static char *request_body(const json_t *req, size_t *ret_len)
{
    const char *b64 = json_string_value(json_object_get(req, "body_b64"));
    assert_non_null(b64);
    size_t cap = strlen(b64) + 1;
    char *body = malloc(cap);
    assert_non_null(body);
    assert_int_equal(sodium_base642bin((unsigned char *)body, cap, b64, strlen(b64), NULL, ret_len,
                                       NULL, sodium_base64_VARIANT_ORIGINAL),
                     0);
    body[*ret_len] = '\0';
    return body;
}

static const char *request_header(const json_t *req, const char *name)
{
    const char *key;
    json_t *value;
    json_object_foreach(json_object_get(req, "headers"), key, value)
    {
        if (strcasecmp(key, name) == 0)
            return json_string_value(value);
    }
    return NULL;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static bool port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* python3 -m aiosmtpd -n -l 127.0.0.1:PORT -c aiosmtpd.handlers.Mailbox MAILDIR: a real SMTP
 * server that stores every message in a Maildir (created by it: the directory must not exist). */
static void smtp_start(struct smtp *m, bool broken)
{
    char listen[32], errfile[PATH_MAX];
    int n = ++t.seq;
    memset(m, 0, sizeof(*m));
    m->port = free_port();
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", m->port);
    snprintf(m->maildir, sizeof(m->maildir), "%s/maildir-%d", t.work, n);
    snprintf(errfile, sizeof(errfile), "%s/smtp-%d.err", t.work, n);
    snprintf(m->url, sizeof(m->url), "smtp://127.0.0.1:%d", m->port);
    /* An empty directory is not a Maildir (no tmp/ inside) and Maildir only creates missing
     * ones: every message is then answered with 500. */
    if (broken)
        assert_int_equal(mkdir(m->maildir, 0700), 0);
    char *const argv[] = {t.python,   "-m",   "aiosmtpd", "-n",
                          "-l",       listen, "-c",       "aiosmtpd.handlers.Mailbox",
                          m->maildir, NULL};
    m->pid = spawn(argv, errfile);
    for (int i = 0; i < 200 && !port_open(m->port); i++)
        pg_fixture_sleep_ms(50);
    if (!port_open(m->port))
        fail_msg("aiosmtpd did not start (see %s)", errfile);
}

/* The only message in the Maildir's new/, read whole (caller frees), or NULL. */
static char *smtp_message(const struct smtp *m, int *ret_count)
{
    char dir[PATH_MAX + 8], path[PATH_MAX * 2];
    snprintf(dir, sizeof(dir), "%s/new", m->maildir);
    DIR *d = opendir(dir);
    char *text = NULL;
    *ret_count = 0;
    if (!d)
        return NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        ++*ret_count;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "r");
        size_t len = 0;
        if (f) {
            free(text);
            text = NULL;
            FILE *out = open_memstream(&text, &len);
            int c;
            while ((c = fgetc(f)) != EOF)
                fputc(c, out);
            fclose(out);
            fclose(f);
        }
    }
    closedir(d);
    return text;
}

/* ---- helpers: the database ------------------------------------------------------------------ */

static PGresult *sql(const char *query, int n, const char *const *params)
{
    PGresult *res = PQexecParams(t.pg.check, query, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res));
        PQclear(res);
        fail_msg("%s: %s", query, msg);
    }
    return res;
}

static uint64_t incident_new(void)
{
    char fingerprint[64];
    snprintf(fingerprint, sizeof(fingerprint), "application-down/web-%d", ++t.seq);
    const char *params[] = {fingerprint};
    PGresult *res = sql("INSERT INTO incidents (fingerprint, runbook, title, severity, state,"
                        " opened_at, response_due, updated_at, scope)"
                        " VALUES ($1, 'application-down', 'Application down', 1, 'detected',"
                        " now(), now() + interval '15 minutes', now(), '[\"web-1\"]')"
                        " RETURNING id",
                        1, params);
    uint64_t id = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return id;
}

struct note {
    uint64_t incident;
    const char *kind; /* default page */
    int level;
    const char *target, *channel, *address, *event, *subject, *body;
    const char *severity; /* payload's, default SEV1 */
    const char *status;   /* default pending */
    int attempts;
    const char *due_in; /* an interval, default '0' */
};

static uint64_t note_insert(const struct note *n)
{
    char incident[24], level[16], attempts[16];
    snprintf(incident, sizeof(incident), "%" PRIu64, n->incident);
    snprintf(level, sizeof(level), "%d", n->level);
    snprintf(attempts, sizeof(attempts), "%d", n->attempts);
    const char *params[] = {incident,
                            n->kind ? n->kind : "page",
                            level,
                            n->target ? n->target : "alice",
                            n->channel,
                            n->address,
                            n->event ? n->event : "",
                            n->subject ? n->subject : "[SEV1] Application down on web-1",
                            n->body ? n->body
                                    : "Application down on web-1 since 03:12 UTC.\n"
                                      "Runbook: https://runbooks.example/application-down\n"
                                      "Acknowledge: vigilctl ack 1\n",
                            n->severity ? n->severity : "SEV1",
                            n->status ? n->status : "pending",
                            attempts,
                            n->due_in ? n->due_in : "0"};
    PGresult *res =
        sql("INSERT INTO notifications (incident_id, kind, level, target, channel, address, event,"
            " subject, body, payload, status, attempts, next_attempt_at, created_at)"
            " VALUES ($1::bigint, $2, $3::integer, $4, $5, $6, $7, $8, $9,"
            "  jsonb_build_object('incident_id', $1::bigint, 'severity', $10::text,"
            "   'title', 'Application down', 'scope', '[\"web-1\"]'::jsonb,"
            "   'started_at', '2026-11-27T03:12:00Z', 'runbook', 'application-down',"
            "   'runbook_link', 'https://runbooks.example/application-down',"
            "   'responders', '[\"alice\"]'::jsonb, 'ack_command', 'vigilctl ack ' || $1,"
            "   'kind', $2::text, 'level', $3::integer),"
            "  $11, $12::integer, now() + $13::interval, now())"
            " RETURNING id",
            13, params);
    uint64_t id = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return id;
}

struct row_state {
    char status[16];
    int attempts;
    long last_code; /* -1 = NULL */
    char last_error[512];
    bool has_sent_at;
    bool due_now;
};

static void row_get(uint64_t id, struct row_state *r)
{
    char text[24];
    snprintf(text, sizeof(text), "%" PRIu64, id);
    const char *params[] = {text};
    PGresult *res = sql("SELECT status, attempts, coalesce(last_code, -1), last_error,"
                        " sent_at IS NOT NULL, next_attempt_at <= now()"
                        " FROM notifications WHERE id = $1::bigint",
                        1, params);
    assert_int_equal(PQntuples(res), 1);
    snprintf(r->status, sizeof(r->status), "%s", PQgetvalue(res, 0, 0));
    r->attempts = (int)strtol(PQgetvalue(res, 0, 1), NULL, 10);
    r->last_code = strtol(PQgetvalue(res, 0, 2), NULL, 10);
    snprintf(r->last_error, sizeof(r->last_error), "%s", PQgetvalue(res, 0, 3));
    r->has_sent_at = PQgetvalue(res, 0, 4)[0] == 't';
    r->due_now = PQgetvalue(res, 0, 5)[0] == 't';
    PQclear(res);
}

static void wait_status(uint64_t id, const char *status, struct row_state *r)
{
    int64_t deadline = vg_mono_ms() + WAIT_MS;
    for (;;) {
        row_get(id, r);
        if (strcmp(r->status, status) == 0)
            return;
        if (vg_mono_ms() > deadline)
            fail_msg("notification %" PRIu64 ": status %s attempts %d code %ld error \"%s\","
                     " expected %s",
                     id, r->status, r->attempts, r->last_code, r->last_error, status);
        pg_fixture_sleep_ms(20);
    }
}

static struct notify_config config(void)
{
    struct notify_config cfg = {
        .conninfo = store_conninfo(t.pg.store),
        .webhook_secret_file = t.secret_path,
        .timeout_ms = 2000,
        .max_attempts = 3,
        .backoff_ms = 100,
        .max_backoff_ms = 1000,
        .concurrency = 4,
    };
    return cfg;
}

static void notify_start(const struct notify_config *cfg)
{
    char err[512] = "";
    t.notify = notify_new(cfg, err, sizeof(err));
    if (!t.notify)
        fail_msg("notify_new: %s", err);
}

/* The value of one series in the metrics page (a counter never goes below 0: -1 = absent). */
static long long metric(const char *series)
{
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(metrics_render(&text, &len), 0);
    long long value = -1;
    size_t n = strlen(series);
    for (char *line = text; line && *line;) {
        char *end = strchr(line, '\n');
        if (strncmp(line, series, n) == 0 && line[n] == ' ')
            value = strtoll(line + n + 1, NULL, 10);
        line = end ? end + 1 : NULL;
    }
    free(text);
    return value;
}

/* ---- pure formatting ------------------------------------------------------------------------ */

static void test_slack_body(void **state)
{
    (void)state;
    char *body = NULL;
    assert_int_equal(notify_slack_body("[SEV1] down", "line 1\nline 2", &body), 0);
    assert_string_equal(body, "{\"text\":\"[SEV1] down\\nline 1\\nline 2\"}");
    free(body);

    /* Quotes, backslashes and non-ASCII survive a JSON round trip unchanged. */
    const char *subject = "\"quoted\" \\ caf\xc3\xa9 \xe2\x80\x94 web-1";
    assert_int_equal(notify_slack_body(subject, "b", &body), 0);
    json_t *root = json_loads(body, 0, NULL);
    assert_non_null(root);
    assert_int_equal(json_object_size(root), 1);
    char expect[128];
    snprintf(expect, sizeof(expect), "%s\nb", subject);
    assert_string_equal(json_string_value(json_object_get(root, "text")), expect);
    json_decref(root);
    free(body);

    /* Data that looks like Slack markup is escaped (&amp; &lt; &gt;): a node named "<!channel>"
     * or a title with "<@U123>" must not notify a channel or a person. */
    assert_int_equal(notify_slack_body("[SEV1] <!channel> down on <@U123>",
                                       "node: a&b <https://evil.example|click> >_<", &body),
                     0);
    root = json_loads(body, 0, NULL);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(root, "text")),
                        "[SEV1] &lt;!channel&gt; down on &lt;@U123&gt;\n"
                        "node: a&amp;b &lt;https://evil.example|click&gt; &gt;_&lt;");
    json_decref(root);
    free(body);

    body = (char *)"untouched";
    assert_int_equal(notify_slack_body("bad \xff utf-8", "b", &body), -EINVAL);
    assert_string_equal(body, "untouched");
}

static void test_webhook_body_and_signature(void **state)
{
    (void)state;
    char *body = NULL;
    assert_int_equal(notify_webhook_body("{\"incident_id\": 7, \"severity\": \"SEV2\","
                                         " \"subject\": \"overwritten\"}",
                                         "the subject", "the body", &body),
                     0);
    json_t *root = json_loads(body, 0, NULL);
    assert_non_null(root);
    assert_int_equal(json_integer_value(json_object_get(root, "incident_id")), 7);
    assert_string_equal(json_string_value(json_object_get(root, "severity")), "SEV2");
    assert_string_equal(json_string_value(json_object_get(root, "subject")), "the subject");
    assert_string_equal(json_string_value(json_object_get(root, "body")), "the body");
    json_decref(root);
    free(body);

    assert_int_equal(notify_webhook_body("[1, 2]", "s", "b", &body), -EINVAL);
    assert_int_equal(notify_webhook_body("{not json", "s", "b", &body), -EINVAL);
    assert_int_equal(notify_webhook_body(NULL, "s", "b", &body), -EINVAL);

    /* A published HMAC-SHA256 test vector, not our own code's answer. */
    char sig[NOTIFY_SIGNATURE_LEN + 1];
    const char *msg = "The quick brown fox jumps over the lazy dog";
    notify_webhook_signature("key", 3, msg, strlen(msg), sig);
    assert_string_equal(sig,
                        "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
    assert_int_equal(strlen(sig), NOTIFY_SIGNATURE_LEN);
}

static void check_pd(const char *text, const char *action, bool with_payload)
{
    json_t *root = json_loads(text, 0, NULL);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(root, "routing_key")), "R0UT1NGKEY");
    assert_string_equal(json_string_value(json_object_get(root, "event_action")), action);
    assert_string_equal(json_string_value(json_object_get(root, "dedup_key")), "vigil-incident-42");
    json_t *payload = json_object_get(root, "payload");
    if (!with_payload) {
        assert_null(payload);
        json_decref(root);
        return;
    }
    assert_non_null(payload);
    assert_string_equal(json_string_value(json_object_get(payload, "summary")),
                        "[SEV2] Database issues");
    assert_string_equal(json_string_value(json_object_get(payload, "source")), "vigil");
    assert_string_equal(json_string_value(json_object_get(payload, "severity")), "error");
    json_t *details = json_object_get(payload, "custom_details");
    assert_int_equal(json_integer_value(json_object_get(details, "incident_id")), 42);
    json_t *link = json_array_get(json_object_get(root, "links"), 0);
    assert_string_equal(json_string_value(json_object_get(link, "href")),
                        "https://runbooks.example/db");
    json_decref(root);
}

static void test_pagerduty_bodies(void **state)
{
    (void)state;
    const char *payload = "{\"incident_id\": 42, \"severity\": \"SEV2\","
                          " \"runbook_link\": \"https://runbooks.example/db\"}";
    char *body = NULL;
    assert_int_equal(notify_pagerduty_body("R0UT1NGKEY", "trigger", 42, "[SEV2] Database issues",
                                           payload, &body),
                     0);
    check_pd(body, "trigger", true);
    free(body);
    assert_int_equal(notify_pagerduty_body("R0UT1NGKEY", "acknowledge", 42, "s", payload, &body),
                     0);
    check_pd(body, "acknowledge", false);
    free(body);
    assert_int_equal(notify_pagerduty_body("R0UT1NGKEY", "resolve", 42, "s", payload, &body), 0);
    check_pd(body, "resolve", false);
    free(body);
    assert_int_equal(notify_pagerduty_body("R0UT1NGKEY", "", 42, "s", payload, &body), -EINVAL);
    assert_int_equal(notify_pagerduty_body("R0UT1NGKEY", "escalate", 42, "s", payload, &body),
                     -EINVAL);

    assert_string_equal(notify_pagerduty_severity("SEV1"), "critical");
    assert_string_equal(notify_pagerduty_severity("SEV2"), "error");
    assert_string_equal(notify_pagerduty_severity("SEV3"), "warning");
    assert_string_equal(notify_pagerduty_severity("SEV4"), "info");
    assert_string_equal(notify_pagerduty_severity("SEV5"), "critical");
    assert_string_equal(notify_pagerduty_severity("SEV1x"), "critical");
    assert_string_equal(notify_pagerduty_severity(NULL), "critical");

    /* A summary over PagerDuty's 1024 bytes is cut, never inside a character; an unreadable
     * payload still pages (without custom_details). */
    char long_subject[1100];
    memset(long_subject, 'a', 1023);
    memcpy(long_subject + 1023, "\xc3\xa9tail", 7);
    assert_int_equal(notify_pagerduty_body("K", "trigger", 1, long_subject, "{not json", &body), 0);
    json_t *root = json_loads(body, 0, NULL);
    assert_non_null(root);
    json_t *pd_payload = json_object_get(root, "payload");
    assert_int_equal(strlen(json_string_value(json_object_get(pd_payload, "summary"))), 1023);
    assert_string_equal(json_string_value(json_object_get(pd_payload, "severity")), "critical");
    assert_null(json_object_get(pd_payload, "custom_details"));
    json_decref(root);
    free(body);
}

/* The encoded words of a Subject: header decoded and joined. */
static void decode_subject(const char *header, char *out, size_t outlen)
{
    size_t len = 0;
    const char *p = header;
    out[0] = '\0';
    while ((p = strstr(p, "=?UTF-8?B?"))) {
        p += 10;
        const char *end = strstr(p, "?=");
        assert_non_null(end);
        size_t got = 0;
        assert_int_equal(sodium_base642bin((unsigned char *)out + len, outlen - len - 1, p,
                                           (size_t)(end - p), NULL, &got, NULL,
                                           sodium_base64_VARIANT_ORIGINAL),
                         0);
        len += got;
        p = end + 2;
    }
    out[len] = '\0';
}

static void test_email_message(void **state)
{
    (void)state;
    struct notify_email mail = {
        .from = "vigil@example.org",
        .to = "oncall@example.com",
        .subject = "[SEV1] Application down\r\nBcc: victim@example.net",
        .body = "line one\nline two\r\n.starts with a dot\rend",
        .notification_id = 17,
        .incident_id = 42,
        .date_ms = INT64_C(1795791600000), /* 2026-11-27 15:00:00 UTC, a Friday */
    };
    char *msg = NULL;
    assert_int_equal(notify_email_message(&mail, &msg), 0);
    assert_non_null(strstr(msg, "Date: Fri, 27 Nov 2026 15:00:00 +0000\r\n"));
    assert_non_null(strstr(msg, "\r\nFrom: Vigil <vigil@example.org>\r\n"));
    assert_non_null(strstr(msg, "\r\nTo: <oncall@example.com>\r\n"));
    /* The CR LF in the subject became spaces: no header was injected. */
    assert_non_null(
        strstr(msg, "\r\nSubject: [SEV1] Application down  Bcc: victim@example.net\r\n"));
    assert_null(strstr(msg, "\r\nBcc:"));
    assert_non_null(strstr(msg, "\r\nMessage-ID: <vigil-notification-17@example.org>\r\n"));
    assert_non_null(strstr(msg, "\r\nContent-Type: text/plain; charset=utf-8\r\n"));
    assert_non_null(strstr(msg, "\r\nMIME-Version: 1.0\r\n"));
    assert_non_null(strstr(msg, "\r\nX-Vigil-Incident: 42\r\n"));
    const char *sep = strstr(msg, "\r\n\r\n");
    assert_non_null(sep);
    assert_string_equal(sep + 4, "line one\r\nline two\r\n.starts with a dot\r\nend\r\n");
    for (const char *p = msg; *p; p++) /* every line ends in CRLF */
        if (*p == '\n')
            assert_true(p > msg && p[-1] == '\r');
    free(msg);

    /* Non-ASCII subjects are RFC 2047 encoded words, folded, decoding to the original. */
    char subject[400] = "[SEV1] Caf\xc3\xa9 down \xe2\x80\x94 ";
    for (size_t len = strlen(subject); len < 300; len = strlen(subject))
        snprintf(subject + len, sizeof(subject) - len, "\xe2\x80\x94x");
    mail.subject = subject;
    char body[3000];
    memset(body, 'b', sizeof(body) - 1);
    body[sizeof(body) - 1] = '\0';
    mail.body = body;
    assert_int_equal(notify_email_message(&mail, &msg), 0);
    const char *start = strstr(msg, "\r\nSubject:");
    assert_non_null(start);
    const char *end = strstr(start + 2, "\r\nMessage-ID:");
    assert_non_null(end);
    char header[2000], decoded[1000];
    snprintf(header, sizeof(header), "%.*s", (int)(end - start), start);
    for (const char *line = header + 2; line;) { /* folded: no line over 78 */
        const char *nl = strstr(line, "\r\n");
        assert_true((nl ? (size_t)(nl - line) : strlen(line)) <= 78);
        line = nl ? nl + 2 : NULL;
    }
    decode_subject(header, decoded, sizeof(decoded));
    assert_string_equal(decoded, subject);
    /* A 2999-byte line is split under RFC 5322's 998. */
    sep = strstr(msg, "\r\n\r\n") + 4;
    for (const char *line = sep; *line;) {
        const char *nl = strstr(line, "\r\n");
        assert_non_null(nl);
        assert_true(nl - line <= 998);
        line = nl + 2;
    }
    free(msg);

    mail.to = "Someone <x@example.com>";
    msg = (char *)"untouched";
    assert_int_equal(notify_email_message(&mail, &msg), -EINVAL);
    assert_string_equal(msg, "untouched");
    assert_true(notify_email_address_ok("a.b+c@d.example"));
    assert_false(notify_email_address_ok("a@b@c"));
    assert_false(notify_email_address_ok("@b.c"));
    assert_false(notify_email_address_ok("a@"));
    assert_false(notify_email_address_ok("a b@c.d"));
    assert_false(notify_email_address_ok("a@c.d\r\nRCPT TO:<x@y>"));
    assert_false(notify_email_address_ok(""));
}

static void test_backoff_and_verdicts(void **state)
{
    (void)state;
    /* Doubling from the base, capped, jitter within [0.8, 1.2) and never past the cap. */
    int64_t expected = 1000;
    for (int attempt = 1; attempt <= 12; attempt++) {
        int64_t nominal = expected < 60000 ? expected : 60000;
        int64_t lo = notify_backoff_ms(1000, 60000, attempt, 0.0);
        int64_t hi = notify_backoff_ms(1000, 60000, attempt, 0.999999);
        assert_int_equal(lo, nominal * 8 / 10);
        assert_true(hi <= 60000);
        assert_true(hi >= nominal * 119 / 100 || hi == 60000);
        for (int i = 0; i < 200; i++) {
            double unit = (double)randombytes_uniform(1u << 24) / (double)(1u << 24);
            int64_t d = notify_backoff_ms(1000, 60000, attempt, unit);
            assert_true(d >= nominal * 8 / 10);
            assert_true(d < nominal * 12 / 10 + 1);
            assert_true(d <= 60000);
        }
        expected *= 2;
    }
    assert_true(notify_backoff_ms(0, 0, 0, 0.5) >= 1);
    assert_int_equal(notify_backoff_ms(100, 1000, 1000000, 0.5), 1000);

    assert_int_equal(notify_http_verdict(200), NOTIFY_SENT);
    assert_int_equal(notify_http_verdict(202), NOTIFY_SENT);
    assert_int_equal(notify_http_verdict(204), NOTIFY_SENT);
    assert_int_equal(notify_http_verdict(0), NOTIFY_RETRY);
    assert_int_equal(notify_http_verdict(408), NOTIFY_RETRY);
    assert_int_equal(notify_http_verdict(429), NOTIFY_RETRY);
    assert_int_equal(notify_http_verdict(500), NOTIFY_RETRY);
    assert_int_equal(notify_http_verdict(503), NOTIFY_RETRY);
    assert_int_equal(notify_http_verdict(301), NOTIFY_FAILED);
    assert_int_equal(notify_http_verdict(400), NOTIFY_FAILED);
    assert_int_equal(notify_http_verdict(403), NOTIFY_FAILED);
    assert_int_equal(notify_http_verdict(404), NOTIFY_FAILED);
    assert_int_equal(notify_smtp_verdict(250), NOTIFY_SENT);
    assert_int_equal(notify_smtp_verdict(0), NOTIFY_RETRY);
    assert_int_equal(notify_smtp_verdict(421), NOTIFY_RETRY);
    assert_int_equal(notify_smtp_verdict(451), NOTIFY_RETRY);
    assert_int_equal(notify_smtp_verdict(550), NOTIFY_FAILED);
    assert_int_equal(notify_smtp_verdict(554), NOTIFY_FAILED);
}

static void test_config_refused(void **state)
{
    (void)state;
    char err[512];
    struct notify_config cfg = config();
    cfg.smtp_url = "http://mail.example";
    assert_null(notify_new(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "smtp"));

    cfg = config();
    cfg.pagerduty_url = "ftp://events.example";
    assert_null(notify_new(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "pagerduty"));

    cfg = config();
    cfg.smtp_from = "Vigil <vigil@example.org>";
    assert_null(notify_new(&cfg, err, sizeof(err)));

    cfg = config();
    cfg.concurrency = NOTIFY_MAX_CONCURRENCY + 1;
    assert_null(notify_new(&cfg, err, sizeof(err)));

    /* A secret readable by others is refused, like every secret file. */
    char loose[PATH_MAX];
    snprintf(loose, sizeof(loose), "%s/loose-secret", t.work);
    write_file(loose, "s3cret\n");
    assert_int_equal(chmod(loose, 0644), 0);
    cfg = config();
    cfg.webhook_secret_file = loose;
    assert_null(notify_new(&cfg, err, sizeof(err)));

    cfg = config();
    notify_t *ok = notify_new(&cfg, err, sizeof(err));
    assert_non_null(ok);
    notify_destroy(&ok);
    assert_null(ok);
    notify_destroy(&ok); /* NULL is fine */
}

/* ---- delivery end to end -------------------------------------------------------------------- */

static void test_webhook_and_slack_delivered(void **state)
{
    (void)state;
    struct sink sink;
    struct row_state r;
    char url[160];
    long long sent_before =
        metric("vigil_notifications_total{channel=\"webhook\",outcome=\"sent\"}");
    sink_start(&sink, "200");
    struct notify_config cfg = config();
    notify_start(&cfg);

    uint64_t incident = incident_new();
    snprintf(url, sizeof(url), "%s/hooks/vigil", sink.url);
    uint64_t hook =
        note_insert(&(struct note){.incident = incident, .channel = "webhook", .address = url});
    snprintf(url, sizeof(url), "%s/services/T000/B000/XXXX", sink.url);
    /* A title carrying Slack markup, as a hostile node name would put it there. */
    uint64_t slack = note_insert(&(struct note){.incident = incident,
                                                .channel = "slack",
                                                .address = url,
                                                .subject = "[SEV1] Application down on <!channel>",
                                                .body = "Scope: web-1 & <@U123>\n"});
    notify_kick(t.notify);
    wait_status(hook, "sent", &r);
    assert_int_equal(r.attempts, 1);
    assert_int_equal(r.last_code, 200);
    assert_true(r.has_sent_at);
    wait_status(slack, "sent", &r);
    assert_int_equal(r.last_code, 200);

    json_t *reqs = sink_requests(&sink);
    assert_int_equal(json_array_size(reqs), 2);
    size_t i;
    json_t *req;
    bool saw_hook = false, saw_slack = false;
    json_array_foreach(reqs, i, req)
    {
        const char *path = json_string_value(json_object_get(req, "path"));
        assert_string_equal(json_string_value(json_object_get(req, "method")), "POST");
        assert_string_equal(request_header(req, "Content-Type"), "application/json");
        size_t len = 0;
        char *body = request_body(req, &len);
        json_t *root = json_loads(body, 0, NULL);
        assert_non_null(root);
        if (strcmp(path, "/hooks/vigil") == 0) {
            saw_hook = true;
            char id[24], sig[NOTIFY_SIGNATURE_LEN + 1];
            snprintf(id, sizeof(id), "%" PRIu64, hook);
            assert_string_equal(request_header(req, "X-Vigil-Delivery"), id);
            /* Recomputed here over the exact bytes received. */
            notify_webhook_signature(SECRET, strlen(SECRET), body, len, sig);
            assert_string_equal(request_header(req, "X-Vigil-Signature"), sig);
            assert_string_equal(json_string_value(json_object_get(root, "subject")),
                                "[SEV1] Application down on web-1");
            assert_non_null(
                strstr(json_string_value(json_object_get(root, "body")), "vigilctl ack"));
            assert_int_equal(json_integer_value(json_object_get(root, "incident_id")),
                             (json_int_t)incident);
            assert_string_equal(json_string_value(json_object_get(root, "severity")), "SEV1");
            assert_string_equal(json_string_value(json_object_get(root, "runbook_link")),
                                "https://runbooks.example/application-down");
        } else {
            assert_string_equal(path, "/services/T000/B000/XXXX");
            saw_slack = true;
            assert_null(request_header(req, "X-Vigil-Signature"));
            const char *text = json_string_value(json_object_get(root, "text"));
            assert_non_null(text);
            assert_string_equal(text, "[SEV1] Application down on &lt;!channel&gt;\n"
                                      "Scope: web-1 &amp; &lt;@U123&gt;\n");
        }
        json_decref(root);
        free(body);
    }
    assert_true(saw_hook && saw_slack);
    json_decref(reqs);
    assert_int_equal(metric("vigil_notifications_total{channel=\"webhook\",outcome=\"sent\"}"),
                     sent_before + 1);
    notify_destroy(&t.notify);
    sink_stop(&sink);
}

static double request_time(json_t *reqs, size_t i)
{
    return json_real_value(json_object_get(json_array_get(reqs, i), "time"));
}

static void test_500_then_200_is_retried_until_sent(void **state)
{
    (void)state;
    struct sink sink;
    struct row_state r;
    long long retry_before =
        metric("vigil_notifications_total{channel=\"webhook\",outcome=\"retry\"}");
    sink_start(&sink, "500x2");
    struct notify_config cfg = config();
    notify_start(&cfg);
    uint64_t id = note_insert(
        &(struct note){.incident = incident_new(), .channel = "webhook", .address = sink.url});
    notify_kick(t.notify);
    wait_status(id, "sent", &r);
    assert_int_equal(r.attempts, 3);
    assert_int_equal(r.last_code, 200);
    assert_string_equal(r.last_error, "");

    json_t *reqs = sink_requests(&sink);
    assert_int_equal(json_array_size(reqs), 3);
    /* Backoff 100 ms then 200 ms, each at least 0.8 of that. */
    assert_true(request_time(reqs, 1) - request_time(reqs, 0) >= 0.079);
    assert_true(request_time(reqs, 2) - request_time(reqs, 1) >= 0.159);
    /* ... and not much more: a retry goes out when it is due, not at the next 1 s tick. */
    assert_true(request_time(reqs, 2) - request_time(reqs, 0) < 0.9);
    /* The same delivery each time: same id, same signature. */
    assert_string_equal(request_header(json_array_get(reqs, 0), "X-Vigil-Delivery"),
                        request_header(json_array_get(reqs, 2), "X-Vigil-Delivery"));
    json_decref(reqs);
    assert_int_equal(metric("vigil_notifications_total{channel=\"webhook\",outcome=\"retry\"}"),
                     retry_before + 2);
    notify_destroy(&t.notify);
    sink_stop(&sink);
}

static void test_hanging_receiver_times_out_and_is_retried(void **state)
{
    (void)state;
    struct sink sink;
    struct row_state r;
    sink_start(&sink, "hang");
    struct notify_config cfg = config();
    cfg.timeout_ms = 500;
    notify_start(&cfg);
    uint64_t id = note_insert(
        &(struct note){.incident = incident_new(), .channel = "webhook", .address = sink.url});
    notify_kick(t.notify);
    sink_wait(&sink, 1);
    sink_mode(&sink, "200");
    wait_status(id, "sent", &r);
    assert_int_equal(r.attempts, 2);
    json_t *reqs = sink_requests(&sink);
    assert_int_equal(json_array_size(reqs), 2);
    /* The first attempt was given its 500 ms, then backoff. */
    double gap = request_time(reqs, 1) - request_time(reqs, 0);
    assert_true(gap >= 0.5 + 0.079);
    assert_true(gap < 5);
    json_decref(reqs);
    notify_destroy(&t.notify);
    sink_stop(&sink);
}

static void test_always_500_fails_after_max_attempts(void **state)
{
    (void)state;
    struct sink sink;
    struct row_state r;
    long long failed_before =
        metric("vigil_notifications_total{channel=\"slack\",outcome=\"failed\"}");
    sink_start(&sink, "500");
    struct notify_config cfg = config();
    notify_start(&cfg);
    uint64_t id = note_insert(
        &(struct note){.incident = incident_new(), .channel = "slack", .address = sink.url});
    notify_kick(t.notify);
    wait_status(id, "failed", &r);
    assert_int_equal(r.attempts, 3);
    assert_int_equal(r.last_code, 500);
    assert_non_null(strstr(r.last_error, "HTTP 500"));
    assert_non_null(strstr(r.last_error, "after 3 attempts"));
    pg_fixture_sleep_ms(500);
    assert_int_equal(sink_count(&sink), 3);
    assert_int_equal(metric("vigil_notifications_total{channel=\"slack\",outcome=\"failed\"}"),
                     failed_before + 1);
    notify_destroy(&t.notify);
    sink_stop(&sink);
}

static void test_4xx_fails_at_once(void **state)
{
    (void)state;
    struct sink sink;
    struct row_state r;
    sink_start(&sink, "404");
    struct notify_config cfg = config();
    notify_start(&cfg);
    uint64_t incident = incident_new();
    uint64_t id = note_insert(
        &(struct note){.incident = incident, .channel = "webhook", .address = sink.url});
    /* Addresses that cannot work fail without a request. */
    uint64_t bad_url = note_insert(&(struct note){
        .incident = incident, .level = 1, .channel = "slack", .address = "ftp://example.org/x"});
    uint64_t bad_pd = note_insert(&(struct note){.incident = incident,
                                                 .level = 2,
                                                 .channel = "pagerduty",
                                                 .address = "KEY",
                                                 .event = "explode"});
    notify_kick(t.notify);
    wait_status(id, "failed", &r);
    assert_int_equal(r.attempts, 1);
    assert_int_equal(r.last_code, 404);
    wait_status(bad_url, "failed", &r);
    assert_int_equal(r.attempts, 1);
    assert_int_equal(r.last_code, -1);
    assert_true(r.last_error[0] != '\0');
    wait_status(bad_pd, "failed", &r);
    assert_int_equal(r.attempts, 1);
    assert_non_null(strstr(r.last_error, "trigger, acknowledge or resolve"));
    pg_fixture_sleep_ms(300);
    assert_int_equal(sink_count(&sink), 1);
    notify_destroy(&t.notify);
    sink_stop(&sink);
}

static void test_email_delivered(void **state)
{
    (void)state;
    struct smtp smtp;
    struct row_state r;
    smtp_start(&smtp, false);
    struct notify_config cfg = config();
    cfg.smtp_url = smtp.url;
    cfg.smtp_from = "vigil@example.org";
    notify_start(&cfg);
    uint64_t incident = incident_new();
    const char *subject = "[SEV1] Application down \xe2\x80\x94 web-1";
    uint64_t id = note_insert(&(struct note){.incident = incident,
                                             .channel = "email",
                                             .address = "oncall@example.com",
                                             .subject = subject});
    uint64_t bad = note_insert(&(struct note){.incident = incident,
                                              .level = 1,
                                              .channel = "email",
                                              .address = "oncall@example.com>\r\nRCPT TO:<x@y"});
    notify_kick(t.notify);
    wait_status(id, "sent", &r);
    assert_int_equal(r.attempts, 1);
    assert_int_equal(r.last_code, 250);
    wait_status(bad, "failed", &r);
    assert_int_equal(r.attempts, 1);
    assert_non_null(strstr(r.last_error, "not a plain e-mail address"));

    int count = 0;
    char *msg = smtp_message(&smtp, &count);
    assert_int_equal(count, 1);
    assert_non_null(msg);
    char expect[128], decoded[256];
    assert_non_null(strstr(msg, "X-MailFrom: vigil@example.org\n"));
    assert_non_null(strstr(msg, "X-RcptTo: oncall@example.com\n"));
    snprintf(expect, sizeof(expect), "Message-ID: <vigil-notification-%" PRIu64 "@example.org>",
             id);
    assert_non_null(strstr(msg, expect));
    assert_non_null(strstr(msg, "Content-Type: text/plain; charset=utf-8"));
    assert_true(strncmp(msg, "Date: ", 6) == 0 || strstr(msg, "\nDate: "));
    const char *subj = strstr(msg, "Subject:");
    assert_non_null(subj);
    char header[512];
    snprintf(header, sizeof(header), "%.*s", (int)(strstr(subj, "\nMessage-ID") - subj), subj);
    decode_subject(header, decoded, sizeof(decoded));
    assert_string_equal(decoded, subject);
    assert_non_null(strstr(msg, "\n\nApplication down on web-1 since 03:12 UTC.\n"));
    free(msg);
    notify_destroy(&t.notify);
    stop_child(smtp.pid);
}

static void test_email_refused_by_server_fails(void **state)
{
    (void)state;
    struct row_state r;
    /* aiosmtpd answers 500 when it cannot store the message. A 5xx is for good: one attempt. */
    struct smtp smtp;
    smtp_start(&smtp, true);
    struct notify_config cfg = config();
    cfg.smtp_url = smtp.url;
    notify_start(&cfg);
    uint64_t id = note_insert(&(struct note){
        .incident = incident_new(), .channel = "email", .address = "oncall@example.com"});
    notify_kick(t.notify);
    wait_status(id, "failed", &r);
    if (r.attempts != 1 || r.last_code < 500 || r.last_code > 599)
        fail_msg("attempts %d code %ld error \"%s\"", r.attempts, r.last_code, r.last_error);
    notify_destroy(&t.notify);
    stop_child(smtp.pid);
}

static void test_pagerduty_trigger_acknowledge_resolve(void **state)
{
    (void)state;
    struct sink sink;
    struct row_state r;
    char url[160];
    sink_start(&sink, "202");
    snprintf(url, sizeof(url), "%s/v2/enqueue", sink.url);
    struct notify_config cfg = config();
    cfg.pagerduty_url = url;
    notify_start(&cfg);
    uint64_t incident = incident_new();
    static const char *const kinds[] = {"page", "acknowledged", "resolved"};
    static const char *const events[] = {"trigger", "acknowledge", "resolve"};
    for (int i = 0; i < 3; i++) {
        uint64_t id = note_insert(&(struct note){.incident = incident,
                                                 .kind = kinds[i],
                                                 .channel = "pagerduty",
                                                 .address = "R0UT1NGKEY",
                                                 .event = events[i]});
        notify_kick(t.notify);
        wait_status(id, "sent", &r);
        assert_int_equal(r.last_code, 202);
    }
    json_t *reqs = sink_requests(&sink);
    assert_int_equal(json_array_size(reqs), 3);
    char dedup[48];
    snprintf(dedup, sizeof(dedup), "vigil-incident-%" PRIu64, incident);
    for (size_t i = 0; i < 3; i++) {
        json_t *req = json_array_get(reqs, i);
        assert_string_equal(json_string_value(json_object_get(req, "path")), "/v2/enqueue");
        json_t *root = json_loads(json_string_value(json_object_get(req, "body")), 0, NULL);
        assert_non_null(root);
        assert_string_equal(json_string_value(json_object_get(root, "event_action")), events[i]);
        assert_string_equal(json_string_value(json_object_get(root, "dedup_key")), dedup);
        assert_string_equal(json_string_value(json_object_get(root, "routing_key")), "R0UT1NGKEY");
        json_t *payload = json_object_get(root, "payload");
        if (i == 0) {
            assert_string_equal(json_string_value(json_object_get(payload, "severity")),
                                "critical");
            assert_string_equal(json_string_value(json_object_get(payload, "summary")),
                                "[SEV1] Application down on web-1");
            assert_int_equal(json_integer_value(json_object_get(
                                 json_object_get(payload, "custom_details"), "incident_id")),
                             (json_int_t)incident);
        } else {
            assert_null(payload);
        }
        json_decref(root);
    }
    json_decref(reqs);
    notify_destroy(&t.notify);
    sink_stop(&sink);
}

static void test_destroy_returns_promptly_with_send_in_flight(void **state)
{
    (void)state;
    struct sink sink;
    struct row_state r;
    sink_start(&sink, "hang");
    struct notify_config cfg = config();
    cfg.timeout_ms = 30000;
    notify_start(&cfg);
    uint64_t id = note_insert(
        &(struct note){.incident = incident_new(), .channel = "webhook", .address = sink.url});
    notify_kick(t.notify);
    sink_wait(&sink, 1);
    int64_t start = vg_mono_ms();
    notify_destroy(&t.notify);
    int64_t took = vg_mono_ms() - start;
    assert_null(t.notify);
    if (took > 500)
        fail_msg("notify_destroy took %" PRId64 " ms with a send in flight", took);
    /* The row is due again at once: the next notifier sends it (at least once). */
    row_get(id, &r);
    assert_string_equal(r.status, "pending");
    assert_int_equal(r.attempts, 1);
    assert_true(r.due_now);
    assert_non_null(strstr(r.last_error, "interrupted"));
    sink_mode(&sink, "200");
    notify_start(&cfg);
    wait_status(id, "sent", &r);
    assert_int_equal(r.attempts, 2);
    notify_destroy(&t.notify);
    sink_stop(&sink);
}

static void test_row_left_sending_by_a_crash_is_resent(void **state)
{
    (void)state;
    struct sink sink;
    struct row_state r;
    sink_start(&sink, "200");
    uint64_t incident = incident_new();
    /* Claimed by a notifier that died: its lease ran out. */
    uint64_t orphan = note_insert(&(struct note){.incident = incident,
                                                 .channel = "webhook",
                                                 .address = sink.url,
                                                 .status = "sending",
                                                 .attempts = 1,
                                                 .due_in = "-1 second"});
    /* Claimed by a live notifier elsewhere: its lease runs for an hour. */
    uint64_t leased = note_insert(&(struct note){.incident = incident,
                                                 .level = 1,
                                                 .channel = "webhook",
                                                 .address = sink.url,
                                                 .status = "sending",
                                                 .attempts = 1,
                                                 .due_in = "1 hour"});
    struct notify_config cfg = config();
    notify_start(&cfg);
    wait_status(orphan, "sent", &r);
    assert_int_equal(r.attempts, 2);
    pg_fixture_sleep_ms(1200); /* more than a tick */
    row_get(leased, &r);
    assert_string_equal(r.status, "sending");
    assert_int_equal(r.attempts, 1);
    assert_int_equal(sink_count(&sink), 1);
    notify_destroy(&t.notify);
    sink_stop(&sink);
}

static void test_concurrency_is_bounded(void **state)
{
    (void)state;
    struct sink sink;
    struct row_state r;
    uint64_t ids[5];
    sink_start(&sink, "hang");
    struct notify_config cfg = config();
    cfg.concurrency = 3;
    cfg.timeout_ms = 1500;
    cfg.max_attempts = 1;
    notify_start(&cfg);
    uint64_t incident = incident_new();
    for (int i = 0; i < 5; i++)
        ids[i] = note_insert(&(struct note){
            .incident = incident, .level = i, .channel = "webhook", .address = sink.url});
    notify_kick(t.notify);
    sink_wait(&sink, 3);
    pg_fixture_sleep_ms(500);
    assert_int_equal(sink_count(&sink), 3); /* all three at once, the others wait */
    for (int i = 0; i < 5; i++) {
        wait_status(ids[i], "failed", &r);
        assert_int_equal(r.attempts, 1);
        assert_int_equal(r.last_code, -1);
        assert_non_null(strstr(r.last_error, "imeout"));
    }
    assert_int_equal(sink_count(&sink), 5);
    json_t *reqs = sink_requests(&sink);
    /* The last two started when the first three timed out, not before. */
    assert_true(request_time(reqs, 3) - request_time(reqs, 0) >= 1.4);
    json_decref(reqs);
    notify_destroy(&t.notify);
    sink_stop(&sink);
}

static void test_kick_sends_without_waiting_for_the_tick(void **state)
{
    (void)state;
    struct sink sink;
    struct row_state r;
    sink_start(&sink, "200");
    struct notify_config cfg = config();
    notify_start(&cfg);
    uint64_t incident = incident_new();
    pg_fixture_sleep_ms(100); /* the thread has looked once and sleeps until its next tick */
    /* Without the kick a row waits for the next tick (uniform over 1 s); five quick ones in a
     * row would be a fluke one time in ~100 at 400 ms. */
    for (int i = 0; i < 5; i++) {
        pg_fixture_sleep_ms(150);
        uint64_t id = note_insert(&(struct note){
            .incident = incident, .level = i, .channel = "webhook", .address = sink.url});
        int64_t start = vg_mono_ms();
        notify_kick(t.notify);
        wait_status(id, "sent", &r);
        int64_t took = vg_mono_ms() - start;
        if (took > 400)
            fail_msg("kick %d: sent after %" PRId64 " ms", i, took);
    }
    notify_destroy(&t.notify);
    sink_stop(&sink);
}

/* ---- group ---------------------------------------------------------------------------------- */

/* Between tests: nothing a test left due may reach the next test's receivers. */

/* ---- SMS and tickets ------------------------------------------------------------------------ */

#define SMS_SID "AC0123456789abcdef"
#define SMS_TOKEN "twilio-auth-token"
#define TICKET_TOKEN "ghp_tickettoken123"

/* A secret file (mode 0600) under the scratch directory; its path into out. */
static void secret_file(const char *name, const char *text, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", t.work, name);
    write_file(out, text);
    assert_int_equal(chmod(out, 0600), 0);
}

/* One value of an application/x-www-form-urlencoded body, decoded (caller frees); NULL when
 * absent. */
static char *form_value(const char *form, const char *key)
{
    size_t klen = strlen(key);
    for (const char *p = form; p && *p; p = strchr(p, '&'), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, klen) != 0 || p[klen] != '=')
            continue;
        const char *v = p + klen + 1;
        size_t n = strcspn(v, "&");
        char *out = malloc(n + 1), *o = out;
        assert_non_null(out);
        for (size_t i = 0; i < n; i++) {
            if (v[i] == '%' && i + 2 < n + 1) {
                char hex[3] = {v[i + 1], v[i + 2], 0};
                *o++ = (char)strtol(hex, NULL, 16);
                i += 2;
            } else {
                *o++ = v[i] == '+' ? ' ' : v[i];
            }
        }
        *o = '\0';
        return out;
    }
    return NULL;
}

/* "Basic " + base64(user:password). */
static void basic_auth(const char *user, const char *password, char *out, size_t len)
{
    char plain[128], b64[200];
    snprintf(plain, sizeof(plain), "%s:%s", user, password);
    sodium_bin2base64(b64, sizeof(b64), (const unsigned char *)plain, strlen(plain),
                      sodium_base64_VARIANT_ORIGINAL);
    snprintf(out, len, "Basic %s", b64);
}

static void test_sms_and_ticket_bodies(void **state)
{
    (void)state;
    char *form = NULL;
    /* Form-encoded, every reserved character escaped: '+' must not become a space. */
    assert_int_equal(notify_sms_form("+4915112345678", "+15005550006", "[SEV1] DB down & out",
                                     "Ack: vigilctl ack 3\n", &form),
                     0);
    char *to = form_value(form, "To"), *from = form_value(form, "From");
    char *body = form_value(form, "Body");
    assert_string_equal(to, "+4915112345678");
    assert_string_equal(from, "+15005550006");
    assert_string_equal(body, "[SEV1] DB down & out\nAck: vigilctl ack 3\n");
    assert_non_null(strstr(form, "To=%2B4915112345678&From=%2B15005550006&Body="));
    free(to);
    free(from);
    free(body);
    free(form);
    form = NULL;
    assert_int_equal(notify_sms_form("004915112345678", "+15005550006", "s", "b", &form), -EINVAL);
    assert_int_equal(notify_sms_form("+4915112345678", "vigil", "s", "b", &form), -EINVAL);
    assert_null(form);

    /* 1600 characters, not bytes: 2000 "é" (2 bytes each) are cut to 1600 characters. */
    char *long_body = malloc(4001);
    assert_non_null(long_body);
    for (int i = 0; i < 2000; i++)
        memcpy(long_body + 2 * i, "\xc3\xa9", 2);
    long_body[4000] = '\0';
    char *text = notify_sms_text("S", long_body);
    assert_non_null(text);
    assert_int_equal(strlen(text), 2 + 1598 * 2); /* "S\n" and 1598 "é" */
    free(text);
    free(long_body);

    const char *labels[] = {"incident", "vigil"};
    char *gh = NULL;
    assert_int_equal(
        notify_github_issue_body("[SEV4] Disk filling (incident 9)", "Body text\n", labels, 2, &gh),
        0);
    json_t *root = json_loads(gh, 0, NULL);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(root, "title")),
                        "[SEV4] Disk filling (incident 9)");
    assert_string_equal(json_string_value(json_object_get(root, "body")), "Body text\n");
    assert_int_equal(json_array_size(json_object_get(root, "labels")), 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(root, "labels"), 1)),
                        "vigil");
    json_decref(root);
    free(gh);

    char *jira = NULL;
    assert_int_equal(notify_jira_issue_body("OPS", "Bug", "[SEV4] Disk", "Body\n", &jira), 0);
    root = json_loads(jira, 0, NULL);
    json_t *fields = json_object_get(root, "fields");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(fields, "project"), "key")), "OPS");
    assert_string_equal(json_string_value(json_object_get(fields, "summary")), "[SEV4] Disk");
    assert_string_equal(json_string_value(json_object_get(fields, "description")), "Body\n");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(fields, "issuetype"), "name")), "Bug");
    json_decref(root);
    free(jira);

    char *url = NULL, *key = NULL;
    assert_int_equal(notify_ticket_link("github", NULL,
                                        "{\"number\": 7, \"html_url\": "
                                        "\"https://github.com/acme/ops/issues/7\"}",
                                        &url, &key),
                     0);
    assert_string_equal(url, "https://github.com/acme/ops/issues/7");
    assert_string_equal(key, "7");
    free(url);
    free(key);
    assert_int_equal(notify_ticket_link("jira", "https://acme.atlassian.net/",
                                        "{\"id\": \"10000\", \"key\": \"OPS-12\"}", &url, &key),
                     0);
    assert_string_equal(url, "https://acme.atlassian.net/browse/OPS-12");
    assert_string_equal(key, "OPS-12");
    free(url);
    free(key);
    assert_int_equal(notify_ticket_link("github", NULL, "{\"message\": \"ok\"}", &url, &key),
                     -EINVAL);
}

static void test_sms_delivered(void **state)
{
    (void)state;
    struct sink sink;
    struct row_state r;
    char token_path[PATH_MAX], auth[400], path[160];
    sink_start_answer(&sink, "201",
                      "{\"sid\": \"SM0123456789abcdef0123456789abcdef\", \"status\": \"queued\"}");
    secret_file("sms.token", SMS_TOKEN "\n", token_path, sizeof(token_path));
    long long sent_before = metric("vigil_notifications_total{channel=\"sms\",outcome=\"sent\"}");
    struct notify_config cfg = config();
    cfg.sms_url = sink.url;
    cfg.sms_account_sid = SMS_SID;
    cfg.sms_auth_token_file = token_path;
    cfg.sms_from = "+15005550006";
    notify_start(&cfg);

    uint64_t incident = incident_new();
    uint64_t id = note_insert(&(struct note){.incident = incident,
                                             .channel = "sms",
                                             .address = "+4915112345678",
                                             .subject = "[SEV1] Application down on web-1"});
    notify_kick(t.notify);
    wait_status(id, "sent", &r);
    assert_int_equal(r.last_code, 201);

    json_t *reqs = sink_requests(&sink);
    assert_int_equal(json_array_size(reqs), 1);
    json_t *req = json_array_get(reqs, 0);
    assert_string_equal(json_string_value(json_object_get(req, "method")), "POST");
    snprintf(path, sizeof(path), "/2010-04-01/Accounts/%s/Messages.json", SMS_SID);
    assert_string_equal(json_string_value(json_object_get(req, "path")), path);
    basic_auth(SMS_SID, SMS_TOKEN, auth, sizeof(auth));
    assert_string_equal(request_header(req, "Authorization"), auth);
    assert_string_equal(request_header(req, "Content-Type"), "application/x-www-form-urlencoded");
    size_t len = 0;
    char *form = request_body(req, &len);
    char *to = form_value(form, "To"), *from = form_value(form, "From");
    char *body = form_value(form, "Body");
    assert_string_equal(to, "+4915112345678");
    assert_string_equal(from, "+15005550006");
    assert_non_null(body);
    assert_int_equal(strncmp(body, "[SEV1] Application down on web-1\n", 33), 0);
    assert_non_null(strstr(body, "vigilctl ack"));
    free(to);
    free(from);
    free(body);
    free(form);
    json_decref(reqs);
    assert_int_equal(metric("vigil_notifications_total{channel=\"sms\",outcome=\"sent\"}"),
                     sent_before + 1);
    notify_destroy(&t.notify);
    sink_stop(&sink);
}

/* The ticket link stored for an incident ("" when none) and how many timeline notes name it. */
static void ticket_of(uint64_t incident, char *url, size_t len, int *ret_notes)
{
    char id[24];
    snprintf(id, sizeof(id), "%" PRIu64, incident);
    const char *params[] = {id};
    PGresult *res = sql("SELECT coalesce((SELECT url FROM incident_tickets"
                        "  WHERE incident_id = $1::bigint), ''),"
                        " (SELECT count(*) FROM incident_events WHERE incident_id = $1::bigint"
                        "  AND kind = 'note' AND data ? 'ticket')",
                        1, params);
    snprintf(url, len, "%s", PQgetvalue(res, 0, 0));
    *ret_notes = (int)strtol(PQgetvalue(res, 0, 1), NULL, 10);
    PQclear(res);
}

static void test_github_ticket_filed_once(void **state)
{
    (void)state;
    struct sink sink;
    struct row_state r;
    char token_path[PATH_MAX], url[256];
    int notes = 0;
    sink_start_answer(&sink, "201",
                      "{\"id\": 1, \"number\": 7, \"url\": "
                      "\"https://api.github.com/repos/acme/ops/issues/7\", \"html_url\": "
                      "\"https://github.com/acme/ops/issues/7\", \"title\": \"x\"}");
    secret_file("github.token", TICKET_TOKEN "\n", token_path, sizeof(token_path));
    const char *labels[] = {"incident", "vigil"};
    struct notify_config cfg = config();
    cfg.ticket_kind = "github";
    cfg.ticket_api_url = sink.url;
    cfg.ticket_owner = "acme";
    cfg.ticket_repo = "ops";
    cfg.ticket_labels = labels;
    cfg.ticket_nlabels = 2;
    cfg.ticket_token_file = token_path;
    notify_start(&cfg);

    uint64_t incident = incident_new();
    uint64_t id = note_insert(&(struct note){.incident = incident,
                                             .kind = "audience",
                                             .level = -1,
                                             .target = "tickets",
                                             .channel = "ticket",
                                             .address = "github:acme/ops",
                                             .subject = "[SEV4] Disk filling (incident 9)"});
    notify_kick(t.notify);
    wait_status(id, "sent", &r);
    assert_int_equal(r.last_code, 201);
    ticket_of(incident, url, sizeof(url), &notes);
    assert_string_equal(url, "https://github.com/acme/ops/issues/7");
    assert_int_equal(notes, 1);

    json_t *reqs = sink_requests(&sink);
    assert_int_equal(json_array_size(reqs), 1);
    json_t *req = json_array_get(reqs, 0);
    assert_string_equal(json_string_value(json_object_get(req, "method")), "POST");
    assert_string_equal(json_string_value(json_object_get(req, "path")), "/repos/acme/ops/issues");
    assert_string_equal(request_header(req, "Authorization"), "Bearer " TICKET_TOKEN);
    assert_string_equal(request_header(req, "Accept"), "application/vnd.github+json");
    assert_string_equal(request_header(req, "Content-Type"), "application/json");
    size_t len = 0;
    char *body = request_body(req, &len);
    json_t *root = json_loads(body, 0, NULL);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(root, "title")),
                        "[SEV4] Disk filling (incident 9)");
    assert_non_null(strstr(json_string_value(json_object_get(root, "body")), "vigilctl ack"));
    assert_int_equal(json_array_size(json_object_get(root, "labels")), 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(root, "labels"), 0)),
                        "incident");
    json_decref(root);
    free(body);
    json_decref(reqs);

    /* Another ticket row for the same incident (a restart, a second decision): the stored link
     * says it was filed, so it is marked sent without a request. */
    uint64_t again = note_insert(&(struct note){.incident = incident,
                                                .kind = "resolved",
                                                .level = -1,
                                                .target = "tickets",
                                                .channel = "ticket",
                                                .address = "github:acme/ops",
                                                .subject = "[SEV4] again"});
    notify_kick(t.notify);
    wait_status(again, "sent", &r);
    assert_non_null(strstr(r.last_error, "filed already"));
    assert_int_equal(sink_count(&sink), 1);
    ticket_of(incident, url, sizeof(url), &notes);
    assert_int_equal(notes, 1);
    notify_destroy(&t.notify);
    sink_stop(&sink);
}

static void test_jira_ticket_filed(void **state)
{
    (void)state;
    struct sink sink;
    struct row_state r;
    char token_path[PATH_MAX], url[256], expected[256], auth[400];
    int notes = 0;
    sink_start_answer(&sink, "201",
                      "{\"id\": \"10000\", \"key\": \"OPS-12\", \"self\": "
                      "\"https://acme.atlassian.net/rest/api/2/issue/10000\"}");
    secret_file("jira.token", "jira-api-token\n", token_path, sizeof(token_path));
    struct notify_config cfg = config();
    cfg.ticket_kind = "jira";
    cfg.ticket_base_url = sink.url;
    cfg.ticket_user = "vigil@example.com";
    cfg.ticket_project = "OPS";
    cfg.ticket_issue_type = "Task";
    cfg.ticket_token_file = token_path;
    notify_start(&cfg);

    uint64_t incident = incident_new();
    uint64_t id = note_insert(&(struct note){.incident = incident,
                                             .kind = "audience",
                                             .level = -1,
                                             .target = "tickets",
                                             .channel = "ticket",
                                             .address = "jira:OPS",
                                             .subject = "[SEV4] Disk filling (incident 9)"});
    notify_kick(t.notify);
    wait_status(id, "sent", &r);
    snprintf(expected, sizeof(expected), "%s/browse/OPS-12", sink.url);
    ticket_of(incident, url, sizeof(url), &notes);
    assert_string_equal(url, expected);
    assert_int_equal(notes, 1);

    json_t *reqs = sink_requests(&sink);
    assert_int_equal(json_array_size(reqs), 1);
    json_t *req = json_array_get(reqs, 0);
    assert_string_equal(json_string_value(json_object_get(req, "method")), "POST");
    assert_string_equal(json_string_value(json_object_get(req, "path")), "/rest/api/2/issue");
    basic_auth("vigil@example.com", "jira-api-token", auth, sizeof(auth));
    assert_string_equal(request_header(req, "Authorization"), auth);
    assert_string_equal(request_header(req, "Content-Type"), "application/json");
    size_t len = 0;
    char *body = request_body(req, &len);
    json_t *root = json_loads(body, 0, NULL);
    json_t *fields = json_object_get(root, "fields");
    assert_non_null(fields);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(fields, "project"), "key")), "OPS");
    assert_string_equal(json_string_value(json_object_get(fields, "summary")),
                        "[SEV4] Disk filling (incident 9)");
    assert_non_null(strstr(json_string_value(json_object_get(fields, "description")), "vigilctl"));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(fields, "issuetype"), "name")), "Task");
    json_decref(root);
    free(body);
    json_decref(reqs);
    notify_destroy(&t.notify);
    sink_stop(&sink);
}

static int test_teardown(void **state)
{
    (void)state;
    notify_destroy(&t.notify);
    for (int i = 0; i < MAX_CHILDREN; i++)
        stop_child(t.children[i]);
    if (t.pg.check)
        PQclear(PQexec(t.pg.check, "UPDATE notifications SET status = 'failed'"
                                   " WHERE status IN ('pending', 'sending')"));
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    const char *src = getenv("VIGIL_SRC");
    const char *python = getenv("VIGIL_PYTHON");
    if (!src) {
        fprintf(stderr, "VIGIL_SRC is not set (the source tree, for tests/tools/http_sink.py)\n");
        return -1;
    }
    snprintf(t.sink_script, sizeof(t.sink_script), "%s/tests/tools/http_sink.py", src);
    snprintf(t.python, sizeof(t.python), "%s", python && python[0] ? python : "/usr/bin/python3");
    snprintf(t.work, sizeof(t.work), "/tmp/vigil-notify-work-XXXXXX");
    if (!mkdtemp(t.work))
        return -1;
    snprintf(t.secret_path, sizeof(t.secret_path), "%s/webhook.secret", t.work);
    FILE *f = fopen(t.secret_path, "w");
    if (!f || fputs(SECRET "\n", f) < 0 || fclose(f) != 0 || chmod(t.secret_path, 0600) < 0)
        return -1;
    if (sodium_init() < 0)
        return -1;
    metrics_init();
    return pg_fixture_start(&t.pg, "/tmp/vigil-notify-XXXXXX");
}

static int group_teardown(void **state)
{
    test_teardown(state);
    pg_fixture_stop(&t.pg);
    if (t.work[0])
        pg_fixture_rmtree(t.work);
    return 0;
}

int main(void)
{
    vg_log_init("test_notify", VG_LOG_ERROR, false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slack_body),
        cmocka_unit_test(test_webhook_body_and_signature),
        cmocka_unit_test(test_pagerduty_bodies),
        cmocka_unit_test(test_email_message),
        cmocka_unit_test(test_backoff_and_verdicts),
        cmocka_unit_test_teardown(test_config_refused, test_teardown),
        cmocka_unit_test_teardown(test_webhook_and_slack_delivered, test_teardown),
        cmocka_unit_test_teardown(test_500_then_200_is_retried_until_sent, test_teardown),
        cmocka_unit_test_teardown(test_hanging_receiver_times_out_and_is_retried, test_teardown),
        cmocka_unit_test_teardown(test_always_500_fails_after_max_attempts, test_teardown),
        cmocka_unit_test_teardown(test_4xx_fails_at_once, test_teardown),
        cmocka_unit_test_teardown(test_email_delivered, test_teardown),
        cmocka_unit_test_teardown(test_email_refused_by_server_fails, test_teardown),
        cmocka_unit_test_teardown(test_pagerduty_trigger_acknowledge_resolve, test_teardown),
        cmocka_unit_test_teardown(test_destroy_returns_promptly_with_send_in_flight, test_teardown),
        cmocka_unit_test_teardown(test_row_left_sending_by_a_crash_is_resent, test_teardown),
        cmocka_unit_test_teardown(test_concurrency_is_bounded, test_teardown),
        cmocka_unit_test_teardown(test_kick_sends_without_waiting_for_the_tick, test_teardown),
        cmocka_unit_test(test_sms_and_ticket_bodies),
        cmocka_unit_test_teardown(test_sms_delivered, test_teardown),
        cmocka_unit_test_teardown(test_github_ticket_filed_once, test_teardown),
        cmocka_unit_test_teardown(test_jira_ticket_filed, test_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
