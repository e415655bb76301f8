/* The collector interface (collect.h): each module's wrapper takes ownership of its object,
 * carries the configured interval, and runs the module through run, fd and on_readable, as
 * agent/main.c drives them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host.h"
#include "logtail.h"
#include "netstat.h"
#include "probes.h"
#include "procwatch.h"
#include "wire.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/vigil-collectors-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

/* What the tests leave in dir: a log and a pidfile. */
static int teardown(void **state)
{
    const char *names[] = {"app.log", "app.pid"};
    char path[128];

    (void)state;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        unlink(path);
    }
    return rmdir(dir);
}

/* A batch to collect into, and what was collected, decoded. */
struct batch {
    sigbuf_t *buf;
    struct collect_ctx ctx;
    Vigil__Envelope *env;
};

static void batch_open(struct batch *b)
{
    memset(b, 0, sizeof(*b));
    b->buf = sigbuf_new();
    assert_non_null(b->buf);
    b->ctx = (struct collect_ctx){.batch = b->buf, .now_ms = 1000};
}

/* The value of the first sample called name (with a label of value label, unless NULL);
 * -1 when there is none. Empties the batch. */
static double value_of(struct batch *b, const char *name, const char *label)
{
    uint8_t *wire;
    size_t len;
    double value = -1;

    if (sigbuf_count(b->buf) == 0)
        return -1;
    assert_int_equal(sigbuf_encode(b->buf, "ag-0123456789abcdef", 1, &wire, &len), 0);
    assert_int_equal(vg_envelope_decode(wire, len, &b->env, NULL), VG_DECODE_OK);
    free(wire);
    for (size_t i = 0; value < 0 && i < b->env->signals->n_signals; i++) {
        const Vigil__Signal *s = b->env->signals->signals[i];
        if (strcmp(s->name, name) != 0)
            continue;
        for (size_t j = 0; label && j < s->n_labels && value < 0; j++) {
            if (strcmp(s->labels[j]->value, label) == 0)
                value = s->value;
        }
        if (!label)
            value = s->value;
    }
    vigil__envelope__free_unpacked(b->env, NULL);
    b->env = NULL;
    sigbuf_clear(b->buf);
    return value;
}

static void batch_close(struct batch *b)
{
    sigbuf_destroy(&b->buf);
}

/* What every wrapped collector promises about ownership and its destructor. */
static void destroy(struct collector *c)
{
    assert_non_null(c->destroy);
    assert_non_null(c->self);
    c->destroy(&c->self);
    assert_null(c->self);
}

static void test_host_and_netstat_run_on_their_interval(void **unused)
{
    (void)unused;
    struct batch b;
    batch_open(&b);

    host_collector_t *host = host_collector_new("/proc");
    assert_non_null(host);
    struct collector c = host_collector(&host, 10000);
    assert_null(host); /* the collector owns it now */
    assert_string_equal(c.name, "host");
    assert_int_equal(c.interval_ms, 10000);
    assert_null(c.fd);
    c.run(c.self, &b.ctx);
    assert_true(value_of(&b, "host.mem.used_pct", NULL) >= 0);
    destroy(&c);

    netstat_collector_t *netstat = netstat_collector_new("/proc");
    assert_non_null(netstat);
    c = netstat_collector(&netstat, 15000);
    assert_null(netstat);
    assert_string_equal(c.name, "netstat");
    assert_int_equal(c.interval_ms, 15000);
    assert_null(c.fd);
    c.run(c.self, &b.ctx);
    assert_true(value_of(&b, "net.sockets", "unix") >= 0);
    destroy(&c);
    batch_close(&b);
}

static void test_logtail_runs_through_the_interface(void **unused)
{
    (void)unused;
    char path[128], err[256] = "";
    snprintf(path, sizeof(path), "%s/app.log", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fclose(f), 0);
    struct logtail_file_config file = {.name = "app", .path = path};
    logtail_t *logs = logtail_new(&file, 1, NULL, NULL, err, sizeof(err));
    if (!logs)
        fail_msg("logtail_new: %s", err);

    struct collector c = logtail_collector(&logs, 5000);
    assert_null(logs);
    assert_string_equal(c.name, "logs");
    assert_int_equal(c.interval_ms, 5000);
    assert_null(c.fd);
    struct batch b;
    batch_open(&b);
    c.run(c.self, &b.ctx); /* found at start: read from its end */
    assert_true(value_of(&b, "log.lines", "app") == 0);
    f = fopen(path, "a");
    assert_non_null(f);
    fputs("one\ntwo\n", f);
    assert_int_equal(fclose(f), 0);
    c.run(c.self, &b.ctx);
    assert_true(value_of(&b, "log.lines", "app") == 2);
    destroy(&c);
    batch_close(&b);
}

static void test_procwatch_exit_arrives_through_fd(void **unused)
{
    (void)unused;
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0); /* never outlive a failed test */
        for (;;)
            pause();
    }
    char pidfile[128], text[32], err[256] = "";
    snprintf(pidfile, sizeof(pidfile), "%s/app.pid", dir);
    snprintf(text, sizeof(text), "%d\n", (int)child);
    FILE *f = fopen(pidfile, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    struct procwatch_config watch = {.name = "app", .pidfile = pidfile};
    procwatch_t *pw = procwatch_new(&watch, 1, NULL, NULL, err, sizeof(err));
    if (!pw)
        fail_msg("procwatch_new: %s", err);

    struct collector c = procwatch_collector(&pw, 2000);
    assert_null(pw);
    assert_string_equal(c.name, "processes");
    assert_int_equal(c.interval_ms, 2000);
    struct batch b;
    batch_open(&b);
    c.run(c.self, &b.ctx);
    assert_true(value_of(&b, "proc.up", "app") == 1);

    int fd = c.fd(c.self);
    kill(child, SIGKILL);
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    if (fd >= 0) {
        /* With pidfds the exit is readable at once, and on_readable reports it. */
        struct pollfd p = {.fd = fd, .events = POLLIN};
        assert_int_equal(poll(&p, 1, 2000), 1);
        c.on_readable(c.self, &b.ctx);
        assert_true(value_of(&b, "proc.up", "app") == 0);
    } else {
        c.run(c.self, &b.ctx); /* no pidfds here: the next run sees it */
        assert_true(value_of(&b, "proc.up", "app") == 0);
    }
    destroy(&c);
    batch_close(&b);
}

static void test_probes_have_an_fd_and_no_timer(void **unused)
{
    (void)unused;
    char err[256] = "";
    struct probes_kind_config off = {
        .kind = "http", .interval_ms = 0, .options = {.timeout_ms = 1000}};
    probes_t *p = probes_new(&off, 1, NULL, err, sizeof(err));
    if (!p)
        fail_msg("probes_new: %s", err);

    struct collector c = probes_collector(&p);
    assert_null(p);
    assert_string_equal(c.name, "probes");
    assert_int_equal(c.interval_ms, 0); /* each target's thread keeps its own time */
    assert_null(c.run);
    assert_true(c.fd(c.self) >= 0);
    struct batch b;
    batch_open(&b);
    c.on_readable(c.self, &b.ctx);
    assert_int_equal(sigbuf_count(b.buf), 0); /* nothing queued, nothing emitted */
    destroy(&c);
    batch_close(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_and_netstat_run_on_their_interval),
        cmocka_unit_test_setup_teardown(test_logtail_runs_through_the_interface, setup, teardown),
        cmocka_unit_test_setup_teardown(test_procwatch_exit_arrives_through_fd, setup, teardown),
        cmocka_unit_test(test_probes_have_an_fd_and_no_timer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
