/* The log collector against real files in a temporary directory: what a user would see. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "logtail.h"
#include "wire.h"

static char dir[64];

/* ---- Files ------------------------------------------------------------------------------ */

static void path_of(char *buf, size_t cap, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < cap);
}

static void write_raw(const char *name, const char *mode, const void *data, size_t len)
{
    char path[256];
    path_of(path, sizeof(path), name);
    FILE *f = fopen(path, mode);
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void append(const char *name, const char *text)
{
    write_raw(name, "a", text, strlen(text));
}

static void append_lines(const char *name, const char *prefix, int n)
{
    char line[128];
    for (int i = 0; i < n; i++) {
        snprintf(line, sizeof(line), "%s %d\n", prefix, i);
        append(name, line);
    }
}

static void move(const char *from, const char *to)
{
    char a[256], b[256];
    path_of(a, sizeof(a), from);
    path_of(b, sizeof(b), to);
    assert_int_equal(rename(a, b), 0);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/vigil-logtail-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    (void)state;
    return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- Running the collector -------------------------------------------------------------- */

static const struct threshold_rule rules[] = {{"log.error_rate_pct", 1, 5, 0.5, false}};

struct run {
    logtail_t *lt;
    sigbuf_t *batch;
    thresholds_t *thresholds;
    struct collect_ctx ctx;
    Vigil__Envelope *env;
};

static struct logtail_pattern_config error_pattern[] = {{"error", "ERROR|FATAL"}};

/* One configured file: name, path (relative to dir unless absolute), format, patterns. */
static struct logtail_file_config file_config(const char *name, const char *path,
                                              const char *format, bool with_error_pattern)
{
    static char paths[8][256];
    static int next;
    char *p = paths[next++ % 8];
    path_of(p, 256, path);
    struct logtail_file_config c = {.name = (char *)name, .path = p, .format = (char *)format};
    if (with_error_pattern)
        c.patterns = (struct vg_cfg_list){.items = error_pattern, .count = 1};
    return c;
}

static void run_open_opts(struct run *r, const struct logtail_file_config *files, size_t n,
                          const struct logtail_options *opt, const char *offsets)
{
    char err[256] = "", path[256];
    memset(r, 0, sizeof(*r));
    if (offsets)
        path_of(path, sizeof(path), offsets);
    r->lt = logtail_new(files, n, opt, offsets ? path : NULL, err, sizeof(err));
    if (!r->lt)
        fail_msg("logtail_new: %s", err);
    r->batch = sigbuf_new();
    r->thresholds = thresholds_new(rules, 1);
    assert_non_null(r->batch);
    assert_non_null(r->thresholds);
    r->ctx = (struct collect_ctx){
        .batch = r->batch, .thresholds = r->thresholds, .now_ms = 1700000000000};
}

static void run_open(struct run *r, const struct logtail_file_config *files, size_t n,
                     const char *offsets)
{
    run_open_opts(r, files, n, NULL, offsets);
}

/* One run, advance_ms after the previous one, decoded the way the coordinator sees it. */
static void cycle(struct run *r, int64_t advance_ms)
{
    uint8_t *buf;
    size_t len;
    if (r->env)
        vg_envelope_free(r->env);
    r->env = NULL;
    sigbuf_clear(r->batch);
    r->ctx.now_ms += advance_ms;
    r->ctx.crossed = false;
    logtail_run(r->lt, &r->ctx);
    assert_true(sigbuf_count(r->batch) > 0);
    assert_int_equal(sigbuf_encode(r->batch, "ag-0123456789abcdef", 1, &buf, &len), 0);
    assert_int_equal(vg_envelope_decode(buf, len, &r->env, NULL), VG_DECODE_OK);
    free(buf);
}

static void run_close(struct run *r)
{
    if (r->env)
        vg_envelope_free(r->env);
    sigbuf_destroy(&r->batch);
    thresholds_destroy(&r->thresholds);
    logtail_destroy(&r->lt);
    assert_null(r->lt);
}

static const char *label(const Vigil__Signal *s, const char *key)
{
    for (size_t j = 0; j < s->n_labels; j++) {
        if (strcmp(s->labels[j]->key, key) == 0)
            return s->labels[j]->value;
    }
    return NULL;
}

/* The signal called name with file=<file> and, if k is set, k=v; NULL if absent. */
static const Vigil__Signal *find(const struct run *r, const char *name, const char *file,
                                 const char *k, const char *v)
{
    for (size_t i = 0; r->env && i < r->env->signals->n_signals; i++) {
        const Vigil__Signal *s = r->env->signals->signals[i];
        const char *f = label(s, "file");
        const char *got = k ? label(s, k) : NULL;
        if (strcmp(s->name, name) != 0 || !f || strcmp(f, file) != 0)
            continue;
        if (k && (!got || strcmp(got, v) != 0))
            continue;
        if (!k && s->n_labels != 1)
            continue;
        return s;
    }
    return NULL;
}

static double value(const struct run *r, const char *name, const char *file, const char *k,
                    const char *v)
{
    const Vigil__Signal *s = find(r, name, file, k, v);
    if (!s)
        fail_msg("no %s{file=%s%s%s%s}", name, file, k ? "," : "", k ? k : "", k ? v : "");
    return s->value;
}

static double lines(const struct run *r, const char *file)
{
    return value(r, "log.lines", file, NULL, NULL);
}

static double errors(const struct run *r, const char *file, const char *reason)
{
    return value(r, "log.errors", file, "reason", reason);
}

/* ---- Tests ------------------------------------------------------------------------------ */

static void test_lines_and_patterns_counted(void **state)
{
    (void)state;
    struct logtail_file_config c = file_config("app", "app.log", NULL, true);
    struct run r;
    append_lines("app.log", "history ERROR", 5); /* before the agent started: not news */
    run_open(&r, &c, 1, NULL);
    cycle(&r, 0);
    assert_true(lines(&r, "app") == 0);
    assert_true(value(&r, "log.match_count", "app", "pattern", "error") == 0);
    assert_true(value(&r, "log.files", "app", NULL, NULL) == 1);

    append("app.log", "GET / ok\nERROR db timeout\nFATAL out of memory\nok again\n");
    append("app.log", "half a line ERR"); /* the writer is in the middle of a line */
    cycle(&r, 1000);
    assert_true(lines(&r, "app") == 4);
    assert_true(value(&r, "log.match_count", "app", "pattern", "error") == 2);
    assert_true(value(&r, "log.match_rate", "app", "pattern", "error") == 2); /* per minute */

    append("app.log", "OR finished\n");
    cycle(&r, 1000);
    assert_true(lines(&r, "app") == 5); /* the finished line, once */
    assert_true(value(&r, "log.match_count", "app", "pattern", "error") == 3);
    assert_true(errors(&r, "app", "too_long") == 0);

    /* The window moves on: a minute later nothing is left in it. */
    cycle(&r, 61000);
    assert_true(lines(&r, "app") == 0);
    assert_true(value(&r, "log.match_rate", "app", "pattern", "error") == 0);
    run_close(&r);
}

static void access_line(char *buf, size_t cap, int status)
{
    snprintf(buf, cap,
             "203.0.113.9 - - [10/Oct/2023:13:55:36 +0000] \"GET /api/items HTTP/1.1\" %d 512 "
             "\"-\" \"curl/8.0\"\n",
             status);
}

static void test_access_log_error_rate(void **state)
{
    (void)state;
    struct logtail_file_config c = file_config("web", "access.log", "access", false);
    char line[256];
    struct run r;
    append("access.log", "");
    run_open(&r, &c, 1, NULL);
    cycle(&r, 0);
    assert_null(find(&r, "log.error_rate_pct", "web", NULL, NULL)); /* no requests, no rate */
    assert_true(value(&r, "log.http.requests", "web", NULL, NULL) == 0);

    for (int i = 0; i < 20; i++) {
        access_line(line, sizeof(line), i < 15 ? 200 : i < 16 ? 301 : i < 18 ? 404 : 500);
        append("access.log", line);
    }
    append("access.log", "not an access log line\n");
    cycle(&r, 1000);
    assert_true(value(&r, "log.http.requests", "web", NULL, NULL) == 20);
    assert_true(lines(&r, "web") == 21);
    assert_true(value(&r, "log.http.status", "web", "class", "2xx") == 15);
    assert_true(value(&r, "log.http.status", "web", "class", "3xx") == 1);
    assert_true(value(&r, "log.http.status", "web", "class", "4xx") == 2);
    assert_true(value(&r, "log.http.status", "web", "class", "5xx") == 2);
    const Vigil__Signal *rate = find(&r, "log.error_rate_pct", "web", NULL, NULL);
    assert_non_null(rate);
    assert_true(rate->value == 10.0);
    assert_int_equal(rate->state, VIGIL__SIGNAL_STATE__SIGNAL_STATE_CRITICAL);
    assert_true(r.ctx.crossed); /* sent at once */
    assert_true(value(&r, "log.http.denied", "web", NULL, NULL) == 0);

    /* A burst of 401/403: denied counts it; the 5xx share falls below 5 % (warning). */
    for (int i = 0; i < 30; i++) {
        access_line(line, sizeof(line), i % 2 ? 401 : 403);
        append("access.log", line);
    }
    cycle(&r, 1000);
    assert_true(value(&r, "log.http.denied", "web", NULL, NULL) == 30);
    rate = find(&r, "log.error_rate_pct", "web", NULL, NULL);
    assert_true(rate->value == 4.0);
    assert_int_equal(rate->state, VIGIL__SIGNAL_STATE__SIGNAL_STATE_WARNING);
    run_close(&r);
}

static void test_rotation_by_rename(void **state)
{
    (void)state;
    struct logtail_file_config c = file_config("app", "app.log", NULL, true);
    struct run r;
    append("app.log", "");
    run_open(&r, &c, 1, NULL);
    cycle(&r, 0);
    append_lines("app.log", "before", 2);
    cycle(&r, 1000);
    assert_true(lines(&r, "app") == 2);

    /* logrotate: a last line, rename, new file; the writer still adds one line to the old one. */
    append("app.log", "last in old ERROR\n");
    move("app.log", "app.log.1");
    append_lines("app.log", "new", 3);
    append("app.log.1", "late write to old, no newline");
    cycle(&r, 1000);
    assert_true(lines(&r, "app") == 2 + 1 + 3);
    assert_true(value(&r, "log.rotations", "app", NULL, NULL) == 1);
    assert_true(value(&r, "log.match_count", "app", "pattern", "error") == 1);

    /* The old file is finished after a grace period: its unterminated last line counts. */
    append("app.log", "new 3\n");
    cycle(&r, 6000);
    assert_true(lines(&r, "app") == 2 + 1 + 3 + 1 + 1);
    assert_true(value(&r, "log.files", "app", NULL, NULL) == 1);
    cycle(&r, 1000);
    assert_true(lines(&r, "app") == 8); /* nothing counted twice */

    /* A glob whose rotated names still match: the renamed file is the same file. */
    run_close(&r);
    struct logtail_file_config g = file_config("pods", "pod-*.log", NULL, false);
    append("pod-a.log", "old\n");
    run_open(&r, &g, 1, NULL);
    cycle(&r, 0);
    append("pod-a.log", "one\n");
    move("pod-a.log", "pod-a.1.log");
    append("pod-a.log", "two\n");
    cycle(&r, 1000);
    assert_true(lines(&r, "pods") == 2);
    assert_true(value(&r, "log.files", "pods", NULL, NULL) == 2);
    assert_true(value(&r, "log.rotations", "pods", NULL, NULL) == 1);
    run_close(&r);
}

static void test_copytruncate(void **state)
{
    (void)state;
    struct logtail_file_config c = file_config("app", "app.log", NULL, false);
    char path[256];
    struct run r;
    append("app.log", "");
    run_open(&r, &c, 1, NULL);
    cycle(&r, 0);
    append_lines("app.log", "line", 10);
    cycle(&r, 1000);
    assert_true(lines(&r, "app") == 10);

    /* copytruncate: the content is copied away and the file emptied in place. */
    path_of(path, sizeof(path), "app.log");
    assert_int_equal(truncate(path, 0), 0);
    append_lines("app.log", "after", 2);
    cycle(&r, 1000);
    assert_true(lines(&r, "app") == 12);
    assert_true(value(&r, "log.truncations", "app", NULL, NULL) == 1);
    assert_true(value(&r, "log.rotations", "app", NULL, NULL) == 0);
    run_close(&r);
}

static void test_restart_resumes_from_saved_offsets(void **state)
{
    (void)state;
    struct logtail_file_config c[2] = {file_config("app", "app.log", NULL, true),
                                       file_config("rot", "rot.log", NULL, false)};
    struct run r;
    append_lines("app.log", "history", 100);
    append_lines("rot.log", "history", 100);
    run_open(&r, c, 2, "offsets");
    cycle(&r, 0);
    append_lines("app.log", "ERROR seen", 3);
    append("app.log", "half a line before the stop: ERR");
    cycle(&r, 1000);
    assert_true(lines(&r, "app") == 3);
    run_close(&r);

    /* While the agent is down: more lines, the half line finished, rot.log rotated. */
    append("app.log", "OR at its end\n");
    append_lines("app.log", "while down", 2);
    move("rot.log", "rot.log.1");
    append_lines("rot.log", "new file", 4);

    run_open(&r, c, 2, "offsets");
    cycle(&r, 0);
    assert_true(lines(&r, "app") == 3); /* the finished line and 2 more; nothing re-read */
    /* The half line was not saved as read: it is counted whole, "ERR" + "OR" matching. */
    assert_true(value(&r, "log.match_count", "app", "pattern", "error") == 1);
    assert_true(lines(&r, "rot") == 4); /* the new file from its start */
    cycle(&r, 1000);
    assert_true(lines(&r, "app") == 3);
    run_close(&r);

    /* A file name with a newline, a space and a '%' survives the offsets file. */
    struct logtail_file_config odd = file_config("odd", "odd*.log", NULL, false);
    static const char odd_name[] = "odd \n%41 name.log";
    append_lines(odd_name, "history", 10);
    run_open(&r, &odd, 1, "offsets-odd");
    cycle(&r, 0);
    append_lines(odd_name, "new", 2);
    cycle(&r, 1000);
    assert_true(lines(&r, "odd") == 2);
    run_close(&r);
    append_lines(odd_name, "while down", 3);
    run_open(&r, &odd, 1, "offsets-odd");
    cycle(&r, 0);
    assert_true(lines(&r, "odd") == 3);
    run_close(&r);

    /* A damaged offsets file is ignored: files start at their end, the agent runs. */
    write_raw("offsets", "w", "garbage\n\x01\x02 1 2\n", 15);
    run_open(&r, c, 2, "offsets");
    cycle(&r, 0);
    assert_true(lines(&r, "app") == 0);
    append_lines("app.log", "after", 1);
    cycle(&r, 1000);
    assert_true(lines(&r, "app") == 1);
    run_close(&r);
}

static void test_start_at_end_and_new_files_from_start(void **state)
{
    (void)state;
    struct logtail_file_config c = file_config("pods", "pod-*.log", NULL, false);
    struct run r;
    append_lines("pod-a.log", "old", 50);
    append("pod-a.log", "a half line at start-up");
    run_open(&r, &c, 1, NULL);
    cycle(&r, 0);
    assert_true(lines(&r, "pods") == 0);
    append("pod-a.log", " finished\n");
    cycle(&r, 1000);
    assert_true(lines(&r, "pods") == 0); /* the rest of a line that was history */

    /* A pod started after the agent: its whole log is news. */
    append_lines("pod-b.log", "new pod", 7);
    cycle(&r, 1000);
    assert_true(lines(&r, "pods") == 7);
    assert_true(value(&r, "log.files", "pods", NULL, NULL) == 2);
    run_close(&r);
}

static void test_symlink_refused(void **state)
{
    (void)state;
    struct logtail_file_config c[2] = {file_config("pods", "*.log", NULL, false),
                                       file_config("link", "plain-link.log", NULL, false)};
    char target[256], link_path[256];
    struct run r;
    append_lines("secret.txt", "root:x:0:0", 3);
    path_of(target, sizeof(target), "secret.txt");
    path_of(link_path, sizeof(link_path), "evil.log");
    assert_int_equal(symlink(target, link_path), 0);
    path_of(link_path, sizeof(link_path), "plain-link.log");
    assert_int_equal(symlink(target, link_path), 0);
    append("real.log", "");

    run_open(&r, c, 2, NULL);
    cycle(&r, 0);
    append_lines("secret.txt", "root:x:0:0", 3);
    append_lines("real.log", "real", 2);
    cycle(&r, 1000);
    /* *.log matches real.log and both links: the links are refused, each counted once. */
    assert_true(lines(&r, "pods") == 2);
    assert_true(errors(&r, "pods", "symlink") == 2);
    assert_true(value(&r, "log.files", "pods", NULL, NULL) == 1);
    assert_true(lines(&r, "link") == 0);
    assert_true(errors(&r, "link", "symlink") == 1);
    cycle(&r, 1000);
    assert_true(errors(&r, "pods", "symlink") == 2); /* once per path, not once per run */

    /* A followed file replaced by a symlink is not followed through it. */
    char real[256];
    path_of(real, sizeof(real), "real.log");
    assert_int_equal(unlink(real), 0);
    assert_int_equal(symlink(target, real), 0);
    append_lines("secret.txt", "root:x:0:0", 3);
    cycle(&r, 1000);
    assert_true(errors(&r, "pods", "symlink") == 3);
    assert_true(lines(&r, "pods") == 2);
    run_close(&r);
}

static void test_huge_and_binary_lines(void **state)
{
    (void)state;
    struct logtail_file_config c = file_config("app", "app.log", NULL, true);
    size_t huge = 1024 * 1024;
    char *big = malloc(huge);
    struct run r;
    assert_non_null(big);
    memset(big, 'x', huge);
    memcpy(big, "ERROR ", 6);
    append("app.log", "");
    run_open(&r, &c, 1, NULL);
    cycle(&r, 0);

    write_raw("app.log", "a", big, huge); /* 1 MiB, no newline yet */
    cycle(&r, 1000);
    assert_true(errors(&r, "app", "too_long") == 1);
    write_raw("app.log", "a", big, huge);
    static const char binary[] = "\nbin\0ary\0\0\nERROR good line\n";
    write_raw("app.log", "a", binary, sizeof(binary) - 1);
    cycle(&r, 1000);
    assert_true(errors(&r, "app", "too_long") == 1);
    assert_true(errors(&r, "app", "binary") == 1);
    /* The long line counts once (its start matched), the binary one not, the good one does. */
    assert_true(lines(&r, "app") == 2);
    assert_true(value(&r, "log.match_count", "app", "pattern", "error") == 2);
    run_close(&r);
    free(big);
}

static void test_flood_read_over_several_runs(void **state)
{
    (void)state;
    struct logtail_file_config c = file_config("app", "app.log", NULL, false);
    struct logtail_options opt = {.max_read_per_run = 64 * 1024};
    struct run r;
    append("app.log", "");
    run_open_opts(&r, &c, 1, &opt, NULL);
    cycle(&r, 0);
    /* 2000 lines of 100 bytes: 200 kB, more than three runs' worth. */
    char line[101];
    memset(line, 'y', 99);
    line[99] = '\n';
    line[100] = '\0';
    for (int i = 0; i < 2000; i++)
        append("app.log", line);
    cycle(&r, 1000);
    double first = lines(&r, "app");
    assert_true(first > 600 && first < 700);
    for (int i = 0; i < 3; i++)
        cycle(&r, 1000);
    assert_true(lines(&r, "app") == 2000);
    run_close(&r);
}

static void test_failed_logins_per_source(void **state)
{
    (void)state;
    struct logtail_file_config c = file_config("auth", "auth.log", "auth", false);
    struct run r;
    append("auth.log", "");
    run_open(&r, &c, 1, NULL);
    cycle(&r, 0);
    assert_true(value(&r, "log.failed_logins", "auth", NULL, NULL) == 0);

    /* 203.0.113.7: one attempt logged three ways, then 3 more passwords; 2001:db8::5: two
     * invalid users without passwords; 198.51.100.1: one PAM failure then its password line. */
    append("auth.log",
           "Oct 10 13:55:01 web sshd[1]: Invalid user admin from 203.0.113.7 port 5000\n"
           "Oct 10 13:55:01 web sshd[1]: pam_unix(sshd:auth): authentication failure; logname= "
           "uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.7\n"
           "Oct 10 13:55:02 web sshd[1]: Failed password for invalid user admin from 203.0.113.7 "
           "port 5000 ssh2\n"
           "Oct 10 13:55:03 web sshd[1]: Failed password for invalid user admin from 203.0.113.7 "
           "port 5000 ssh2\n"
           "Oct 10 13:55:04 web sshd[2]: Failed password for root from 203.0.113.7 port 5001 ssh2\n"
           "Oct 10 13:55:05 web sshd[2]: Failed password for root from 203.0.113.7 port 5001 ssh2\n"
           "Oct 10 13:55:06 web sshd[3]: Invalid user oracle from 2001:db8::5 port 6000\n"
           "Oct 10 13:55:07 web sshd[4]: Invalid user test from 2001:db8::5 port 6001\n"
           "Oct 10 13:55:08 web sshd[5]: pam_unix(sshd:auth): authentication failure; logname= "
           "uid=0 euid=0 tty=ssh ruser= rhost=198.51.100.1  user=root\n"
           "Oct 10 13:55:08 web sshd[5]: Failed password for root from 198.51.100.1 port 1 ssh2\n"
           "Oct 10 13:55:09 web sshd[6]: Accepted publickey for deploy from 10.0.0.5 port 2 ssh2\n"
           "Oct 10 13:55:10 web myapp[7]: user said Failed password for root from 9.9.9.9 port 1 "
           "ssh2\n");
    cycle(&r, 1000);
    assert_true(value(&r, "log.failed_logins", "auth", NULL, NULL) == 4 + 2 + 1);
    assert_true(value(&r, "log.failed_logins", "auth", "source", "203.0.113.7") == 4);
    assert_true(value(&r, "log.failed_logins", "auth", "source", "2001:db8::5") == 2);
    assert_true(value(&r, "log.failed_logins", "auth", "source", "198.51.100.1") == 1);
    assert_null(find(&r, "log.failed_logins", "auth", "source", "10.0.0.5"));
    assert_null(find(&r, "log.failed_logins", "auth", "source", "9.9.9.9"));

    /* Only the 5 busiest sources get a series of their own; the total keeps them all. */
    char line[160];
    for (int s = 1; s <= 8; s++) {
        for (int k = 0; k < 10 + s; k++) {
            snprintf(line, sizeof(line),
                     "sshd[9]: Failed password for root from 192.0.2.%d port 22 ssh2\n", s);
            append("auth.log", line);
        }
    }
    cycle(&r, 1000);
    size_t per_source = 0;
    for (size_t i = 0; i < r.env->signals->n_signals; i++) {
        const Vigil__Signal *s = r.env->signals->signals[i];
        per_source += strcmp(s->name, "log.failed_logins") == 0 && label(s, "source");
    }
    assert_int_equal(per_source, 5);
    assert_true(value(&r, "log.failed_logins", "auth", "source", "192.0.2.8") == 18);
    assert_null(find(&r, "log.failed_logins", "auth", "source", "203.0.113.7"));
    assert_true(value(&r, "log.failed_logins", "auth", NULL, NULL) == 7 + (11 + 18) * 8 / 2);
    run_close(&r);
}

/* ---- Evidence --------------------------------------------------------------------------- */

struct sink {
    char *data;
    size_t len;
    int fail_after; /* calls before write fails; 0 = never */
    int calls;
};

static int sink_write(void *w, const void *data, size_t len)
{
    struct sink *s = w;
    if (s->fail_after && ++s->calls > s->fail_after)
        return -EPIPE;
    char *p = realloc(s->data, s->len + len + 1);
    assert_non_null(p);
    memcpy(p + s->len, data, len);
    s->data = p;
    s->len += len;
    s->data[s->len] = '\0';
    return 0;
}

static void test_tail_evidence(void **state)
{
    (void)state;
    struct logtail_file_config c[4] = {file_config("app", "app.log", NULL, false),
                                       file_config("pods", "pod-*.log", NULL, false),
                                       file_config("link", "link.log", NULL, false),
                                       file_config("none", "absent.log", NULL, false)};
    char err[256], target[256], link_path[256];
    struct run r;
    append_lines("app.log", "line", 10);
    append("pod-a.log", "a1\na2\na3\n");
    append("pod-b.log", "b1\nb2 without newline");
    path_of(target, sizeof(target), "app.log");
    path_of(link_path, sizeof(link_path), "link.log");
    assert_int_equal(symlink(target, link_path), 0);
    run_open(&r, c, 4, NULL);

    struct sink s = {0};
    struct artifact_writer out = {.write = sink_write, .w = &s};
    assert_int_equal(logtail_tail(r.lt, "app", 3, 0, &out, err, sizeof(err)), 0);
    assert_string_equal(s.data, "line 7\nline 8\nline 9\n");
    free(s.data);
    s = (struct sink){0};

    /* A byte limit below the lines asked for: the last bytes. */
    assert_int_equal(logtail_tail(r.lt, "app", 100, 10, &out, err, sizeof(err)), 0);
    assert_string_equal(s.data, " 8\nline 9\n");
    free(s.data);
    s = (struct sink){0};

    /* More lines than the file has: all of it. */
    assert_int_equal(logtail_tail(r.lt, "app", 1000, 0, &out, err, sizeof(err)), 0);
    assert_int_equal(s.len, 70);
    free(s.data);
    s = (struct sink){0};

    /* A glob: each file with its header, in name order. */
    assert_int_equal(logtail_tail(r.lt, "pods", 2, 0, &out, err, sizeof(err)), 0);
    char expect[1024];
    snprintf(expect, sizeof(expect),
             "==> %s/pod-a.log <==\na2\na3\n==> %s/pod-b.log <==\nb1\nb2 "
             "without newline\n",
             dir, dir);
    assert_string_equal(s.data, expect);
    free(s.data);
    s = (struct sink){0};

    assert_int_equal(logtail_tail(r.lt, "link", 3, 0, &out, err, sizeof(err)), -ELOOP);
    assert_non_null(strstr(err, "symlink"));
    assert_null(s.data);
    assert_int_equal(logtail_tail(r.lt, "none", 3, 0, &out, err, sizeof(err)), -ENOENT);
    assert_int_equal(logtail_tail(r.lt, "nope", 3, 0, &out, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "nope"));
    free(s.data);
    struct sink failing = {.fail_after = 1}; /* a spool that fails after the first write */
    out.w = &failing;
    assert_int_equal(logtail_tail(r.lt, "pods", 2, 0, &out, err, sizeof(err)), -EPIPE);
    free(failing.data);
    run_close(&r);
}

/* ---- Pods' logs under /var/log/pods ------------------------------------------------------ */

#define UID1 "8f14e45f-ceea-467f-a0e6-5c1a7f2b3d4e"
#define UID2 "11111111-2222-4333-8444-555555555555"
#define UID3 "22222222-3333-4444-8555-666666666666"
#define WEB1 "pods/prod_web-1_" UID1

static void mkdirs(const char *const *names, size_t n)
{
    char path[256];
    for (size_t i = 0; i < n; i++) {
        path_of(path, sizeof(path), names[i]);
        assert_int_equal(mkdir(path, 0755), 0);
    }
}

/* One CRI record as containerd writes it. */
static void cri(const char *name, const char *stream, char tag, const char *msg)
{
    char line[1024];
    snprintf(line, sizeof(line), "2024-05-01T12:00:00.123456789Z %s %c %s\n", stream, tag, msg);
    append(name, line);
}

static struct run pods_run(struct logtail_file_config *c, const char *ns, const char *pod,
                           const char *container, const char *format)
{
    static struct logtail_pattern_config error[] = {{"error", "ERROR"}};
    static char pods_dir[256];
    path_of(pods_dir, sizeof(pods_dir), "pods");
    *c = (struct logtail_file_config){.name = "web",
                                      .namespace = (char *)ns,
                                      .pod = (char *)pod,
                                      .container = (char *)container,
                                      .format = (char *)format,
                                      .patterns = {.items = error, .count = 1}};
    struct logtail_options opt = {.pods_dir = pods_dir, .max_line_bytes = 512};
    struct run r;
    run_open_opts(&r, c, 1, &opt, NULL);
    return r;
}

static void test_pod_logs(void **state)
{
    (void)state;
    static const char *const dirs[] = {
        "pods",
        WEB1,
        WEB1 "/nginx",
        WEB1 "/sidecar",
        "pods/prod_api-1_" UID2,
        "pods/prod_api-1_" UID2 "/nginx",
        "pods/dev_web-1_" UID3,
        "pods/dev_web-1_" UID3 "/nginx",
        "pods/garbage-dir",
        "pods/prod_web-9_not-a-uid",
        WEB1 "/Bad_Container",
    };
    mkdirs(dirs, sizeof(dirs) / sizeof(dirs[0]));
    cri(WEB1 "/nginx/0.log", "stdout", 'F', "history: not news ERROR");
    cri(WEB1 "/sidecar/0.log", "stdout", 'F', "another container ERROR");
    cri("pods/prod_api-1_" UID2 "/nginx/0.log", "stdout", 'F', "another pod ERROR");
    cri("pods/dev_web-1_" UID3 "/nginx/0.log", "stdout", 'F', "another namespace ERROR");

    struct logtail_file_config c;
    struct run r = pods_run(&c, "prod", "web-*", "nginx", "access");
    cycle(&r, 0);
    assert_true(value(&r, "log.files", "web", NULL, NULL) == 1);
    assert_true(lines(&r, "web") == 0);
    assert_true(errors(&r, "web", "bad_name") == 3); /* two pod directories, one container */

    /* Whole records, a line cut into partial records with stderr between, a line that is not
     * a CRI record: the rules see the container's lines, not the runtime's. */
    char access[256];
    access_line(access, sizeof(access), 200);
    access[strlen(access) - 1] = '\0';
    cri(WEB1 "/nginx/0.log", "stdout", 'F', access);
    cri(WEB1 "/nginx/0.log", "stdout", 'P', "203.0.113.9 - - [10/Oct/2023:13:55:36 +0000] \"GET");
    cri(WEB1 "/nginx/0.log", "stderr", 'F', "ERROR upstream timed out");
    cri(WEB1 "/nginx/0.log", "stdout", 'P', " /api HTTP/1.1\" 5");
    cri(WEB1 "/nginx/0.log", "stdout", 'F', "03 12 \"-\" \"curl/8.0\"");
    append(WEB1 "/nginx/0.log", "plain text, not from a runtime\n");
    cycle(&r, 1000);
    assert_true(lines(&r, "web") == 3);
    assert_true(value(&r, "log.http.requests", "web", NULL, NULL) == 2);
    assert_true(value(&r, "log.http.status", "web", "class", "5xx") == 1);
    assert_true(value(&r, "log.match_count", "web", "pattern", "error") == 1);
    assert_true(errors(&r, "web", "not_cri") == 1);
    assert_true(errors(&r, "web", "bad_name") == 3); /* counted once, not every run */

    /* The kubelet rotates: 0.log renamed with a date, a new 0.log. The old one is finished. */
    cri(WEB1 "/nginx/0.log", "stdout", 'F', "ERROR last in the old file");
    move(WEB1 "/nginx/0.log", WEB1 "/nginx/0.log.20240501-120000");
    cri(WEB1 "/nginx/0.log", "stdout", 'F', "first in the new file");
    cycle(&r, 1000);
    assert_true(lines(&r, "web") == 5);
    assert_true(value(&r, "log.rotations", "web", NULL, NULL) == 1);
    assert_true(value(&r, "log.files", "web", NULL, NULL) == 1);

    /* The container restarts: 1.log, read from its start; the container dies mid-line. */
    cri(WEB1 "/nginx/1.log", "stdout", 'F', "ERROR restarted");
    cri(WEB1 "/nginx/1.log", "stdout", 'P', "last words, never ended");
    cycle(&r, 1000);
    assert_true(lines(&r, "web") == 6);
    assert_true(value(&r, "log.files", "web", NULL, NULL) == 2);
    /* Which pod and container those files belong to: one series per container. */
    const Vigil__Signal *pod = find(&r, "log.pod", "web", "container", "nginx");
    assert_non_null(pod);
    assert_true(pod->value == 2);
    assert_string_equal(label(pod, "namespace"), "prod");
    assert_string_equal(label(pod, "pod"), "web-1");
    assert_string_equal(label(pod, "pod_uid"), UID1);
    assert_true(value(&r, "log.match_count", "web", "pattern", "error") == 3);

    /* A new pod of the same deployment: followed from its first line. */
    static const char *const web2[] = {"pods/prod_web-2_" UID3, "pods/prod_web-2_" UID3 "/nginx"};
    mkdirs(web2, 2);
    cri("pods/prod_web-2_" UID3 "/nginx/0.log", "stdout", 'F', "web-2 up");
    cycle(&r, 1000);
    assert_true(lines(&r, "web") == 7);
    assert_true(value(&r, "log.files", "web", NULL, NULL) == 3);

    /* A line cut into more partial records than max_line holds: its start counts, marked. */
    for (int i = 0; i < 8; i++)
        cri("pods/prod_web-2_" UID3 "/nginx/0.log", "stdout", 'P',
            "0123456789012345678901234567890123456789012345678901234567890123456789012345678");
    cri("pods/prod_web-2_" UID3 "/nginx/0.log", "stdout", 'F', "end");
    cycle(&r, 1000);
    assert_true(lines(&r, "web") == 8);
    assert_true(errors(&r, "web", "too_long") == 1);

    /* The first pod is deleted: its files are finished, the partial line among them. */
    char old[256], gone[256];
    path_of(old, sizeof(old), WEB1);
    path_of(gone, sizeof(gone), "deleted-pod");
    assert_int_equal(rename(old, gone), 0);
    cycle(&r, 1000);
    cycle(&r, 6000);
    assert_true(lines(&r, "web") == 9);
    assert_true(value(&r, "log.files", "web", NULL, NULL) == 1);
    assert_true(errors(&r, "web", "not_cri") == 1);

    /* Evidence: each file under a header naming its pod. */
    struct sink s = {0};
    struct artifact_writer out = {.write = sink_write, .w = &s};
    char err[256];
    assert_int_equal(logtail_tail(r.lt, "web", 1, 0, &out, err, sizeof(err)), 0);
    char expect[1024];
    snprintf(expect, sizeof(expect),
             "==> %s/pods/prod_web-2_" UID3 "/nginx/0.log (namespace=prod pod=web-2 "
             "container=nginx) <==\n2024-05-01T12:00:00.123456789Z stdout F end\n",
             dir);
    assert_string_equal(s.data, expect);
    free(s.data);
    run_close(&r);

    /* No pod matches: nothing followed, nothing to tail; the directory may not exist at all. */
    r = pods_run(&c, "kube-*", NULL, NULL, NULL);
    cycle(&r, 0);
    assert_true(value(&r, "log.files", "web", NULL, NULL) == 0);
    s = (struct sink){0};
    assert_int_equal(logtail_tail(r.lt, "web", 1, 0, &out, err, sizeof(err)), -ENOENT);
    run_close(&r);
    struct logtail_file_config nowhere = {.name = "k", .namespace = "x"};
    struct logtail_options opt = {.pods_dir = "/nonexistent/pods"};
    run_open_opts(&r, &nowhere, 1, &opt, NULL);
    cycle(&r, 0);
    assert_true(value(&r, "log.files", "k", NULL, NULL) == 0);
    assert_true(value(&r, "log.errors", "k", "reason", "unreadable") == 0);
    run_close(&r);
}

/* Thousands of stray directories cost a bounded number of notes and log lines per run. */
static void test_pod_logs_many_bad_names(void **state)
{
    (void)state;
    char name[64];
    static const char *const pods[] = {"pods"};
    mkdirs(pods, 1);
    for (int i = 0; i < 200; i++) {
        char path[256];
        snprintf(name, sizeof(name), "pods/junk-%d", i);
        path_of(path, sizeof(path), name);
        assert_int_equal(mkdir(path, 0755), 0);
    }
    struct logtail_file_config c;
    struct run r = pods_run(&c, "*", NULL, NULL, NULL);
    cycle(&r, 0);
    assert_true(errors(&r, "web", "bad_name") == 16);
    cycle(&r, 1000);
    assert_true(errors(&r, "web", "bad_name") == 16);
    assert_true(value(&r, "log.files", "web", NULL, NULL) == 0);
    run_close(&r);
}

/* ---- Configuration ---------------------------------------------------------------------- */

static void expect_refused(const struct logtail_file_config *c, size_t n, const char *needle)
{
    char err[256] = "";
    logtail_t *lt = logtail_new(c, n, NULL, NULL, err, sizeof(err));
    assert_null(lt);
    if (!strstr(err, needle))
        fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
}

static void test_bad_configuration_refused(void **state)
{
    (void)state;
    struct logtail_file_config c[2] = {{.name = "web", .path = "/var/log/a.log"},
                                       {.name = "web", .path = "/var/log/b.log"}};
    expect_refused(c, 2, "\"web\": the name is used twice");
    c[1] = (struct logtail_file_config){.name = "x", .path = "logs/a.log"};
    expect_refused(&c[1], 1, "absolute");
    c[1] = (struct logtail_file_config){.name = "x", .path = "/a.log", .format = "json"};
    expect_refused(&c[1], 1, "format must be plain, access or auth (got \"json\")");
    struct logtail_pattern_config bad[] = {{"broken", "(unclosed"}};
    c[1] = (struct logtail_file_config){
        .name = "x", .path = "/a.log", .patterns = {.items = bad, .count = 1}};
    expect_refused(&c[1], 1, "pattern \"broken\"");
    struct logtail_pattern_config twice[] = {{"e", "a"}, {"e", "b"}};
    c[1].patterns = (struct vg_cfg_list){.items = twice, .count = 2};
    expect_refused(&c[1], 1, "pattern \"e\"");
    struct logtail_options opt = {.window_ms = 500};
    char err[256];
    assert_null(logtail_new(c, 1, &opt, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "window"));
    /* Pods: a namespace, and no path beside it. */
    c[1] = (struct logtail_file_config){.name = "x", .path = "/a.log", .namespace = "prod"};
    expect_refused(&c[1], 1, "either path, or namespace");
    c[1] = (struct logtail_file_config){.name = "x", .pod = "web-*"};
    expect_refused(&c[1], 1, "either path, or namespace");
    c[1] = (struct logtail_file_config){.name = "x"};
    expect_refused(&c[1], 1, "absolute");
}

/* The key tables, through the real loader, as agent.yaml's collectors.logs.files. */
struct files_only {
    struct vg_cfg_list files;
};

static void test_key_tables_load(void **state)
{
    (void)state;
    const struct vg_cfg_key keys[] = {{.path = "files",
                                       .type = VG_CFG_LIST,
                                       .offset = offsetof(struct files_only, files),
                                       .sub = logtail_file_keys,
                                       .nsub = logtail_file_nkeys,
                                       .elem_size = sizeof(struct logtail_file_config)}};
    char path[256], err[512] = "";
    path_of(path, sizeof(path), "logs.yaml");
    const char *yaml = "files:\n"
                       "  - {name: app, path: \"/var/log/app-*.log\", patterns: "
                       "[{name: error, regex: \"ERROR|FATAL\"}]}\n"
                       "  - {name: web, path: /var/log/nginx/access.log, format: access}\n"
                       "  - {name: pods, namespace: prod, pod: \"web-*\", format: access}\n";
    write_raw("logs.yaml", "w", yaml, strlen(yaml));
    struct files_only cfg = {0};
    int rc = vg_config_load(path, keys, 1, &cfg, err, sizeof(err));
    if (rc < 0)
        fail_msg("load: %s", err);
    assert_int_equal(cfg.files.count, 3);
    const struct logtail_file_config *pods = VG_CFG_ITEM(cfg.files, struct logtail_file_config, 2);
    assert_string_equal(pods->namespace, "prod");
    assert_string_equal(pods->pod, "web-*");
    const struct logtail_file_config *app = VG_CFG_ITEM(cfg.files, struct logtail_file_config, 0);
    const struct logtail_file_config *web = VG_CFG_ITEM(cfg.files, struct logtail_file_config, 1);
    assert_string_equal(app->format, "plain");
    assert_int_equal(app->patterns.count, 1);
    assert_string_equal(VG_CFG_ITEM(app->patterns, struct logtail_pattern_config, 0)->regex,
                        "ERROR|FATAL");
    assert_string_equal(web->format, "access");
    logtail_t *lt = logtail_new(cfg.files.items, cfg.files.count, NULL, NULL, err, sizeof(err));
    if (!lt)
        fail_msg("logtail_new: %s", err);
    logtail_destroy(&lt);
    vg_config_free(keys, 1, &cfg);

    /* A pattern without a regex is the loader's error, with the element named. */
    yaml = "files:\n  - {name: app, path: /a.log, patterns: [{name: error}]}\n";
    write_raw("logs.yaml", "w", yaml, strlen(yaml));
    cfg = (struct files_only){0};
    assert_true(vg_config_load(path, keys, 1, &cfg, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "regex"));
    vg_config_free(keys, 1, &cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lines_and_patterns_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_access_log_error_rate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_by_rename, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copytruncate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_resumes_from_saved_offsets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_at_end_and_new_files_from_start, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_symlink_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge_and_binary_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flood_read_over_several_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_logins_per_source, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tail_evidence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pod_logs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pod_logs_many_bad_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_configuration_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_tables_load, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
