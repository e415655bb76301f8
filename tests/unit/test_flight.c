/*
 * The flight recorder (agent/flight.h): the ring's bounds (the window and max_size drop the
 * oldest snapshots), a frozen copy that later snapshots do not change, the artifact as a
 * responder reads it, and a snapshot of this machine that still shows a listener after it
 * closed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "artifact_sink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "flight.h"

#define T0 1796593205000LL /* 2026-12-06T21:40:05Z */
#define MIB (1024 * 1024)

static flight_t *recorder(int64_t interval_ms, int64_t window_ms, size_t max_bytes,
                          const char *proc_root)
{
    static const char *const logs[] = {"web", "auth"};
    struct flight_options opt = {.interval_ms = interval_ms,
                                 .window_ms = window_ms,
                                 .max_bytes = max_bytes,
                                 .proc_root = proc_root,
                                 .log_names = logs,
                                 .nlogs = 2};
    char err[256] = "";
    flight_t *fl = flight_new(&opt, err, sizeof(err));
    assert_non_null(fl);
    return fl;
}

/* A section of n distinct lines tagged with tag. */
static char *table_text(const char *tag, int n)
{
    size_t cap = (size_t)n * 80 + 1;
    char *text = malloc(cap);
    size_t used = 0;
    assert_non_null(text);
    text[0] = '\0';
    for (int i = 0; i < n; i++)
        used +=
            (size_t)snprintf(text + used, cap - used,
                             "tcp   LISTEN 0 0 0.0.0.0:%-5d *:* %s line %d\n", 1000 + i, tag, i);
    return text;
}

static void add(flight_t *fl, int64_t when, const char *net, const char *procs)
{
    struct flight_section s[] = {{"netstat", net, strlen(net)},
                                 {"processes", procs, strlen(procs)}};
    assert_int_equal(flight_add(fl, when, s, 2), 0);
}

static char *artifact(const flight_frozen_t *f, size_t max_bytes, int want)
{
    struct sink sink = {0};
    struct artifact_writer out = {sink_write, &sink};
    char err[256] = "";
    assert_int_equal(flight_frozen_write(f, max_bytes, &out, err, sizeof(err)), want);
    return sink.data;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void test_options_refused(void **state)
{
    (void)state;
    char err[256] = "";
    struct flight_options opt = {.interval_ms = 5000, .window_ms = 1000, .max_bytes = MIB};
    assert_null(flight_new(&opt, err, sizeof(err)));
    assert_non_null(strstr(err, "window at least the interval"));
    opt = (struct flight_options){.interval_ms = 1000, .window_ms = 1000, .max_bytes = 1000};
    assert_null(flight_new(&opt, err, sizeof(err)));
}

/* Interval 1 s, window 10 s: of 25 snapshots the last 10 stay, oldest first. */
static void test_window_drops_oldest(void **state)
{
    (void)state;
    flight_t *fl = recorder(1000, 10000, 4 * MIB, NULL);
    for (int i = 0; i < 25; i++)
        add(fl, T0 + i * 1000, "netstat row\n", "process row\n");
    struct flight_stats st;
    flight_get_stats(fl, &st);
    assert_int_equal(st.snapshots, 10);
    assert_int_equal(st.taken, 25);
    assert_int_equal(st.dropped_for_size, 0);
    assert_int_equal(st.oldest_ms, T0 + 15000);
    assert_int_equal(st.newest_ms, T0 + 24000);

    /* Freezing later than the newest snapshot: what the window has passed is not shipped. */
    flight_frozen_t *f = flight_freeze(fl, T0 + 24000);
    assert_int_equal(flight_frozen_count(f), 10);
    assert_int_equal(flight_frozen_time(f, 0), T0 + 15000);
    assert_int_equal(flight_frozen_time(f, 9), T0 + 24000);
    flight_frozen_destroy(&f);
    assert_null(f);
    f = flight_freeze(fl, T0 + 30000);
    assert_int_equal(flight_frozen_count(f), 4); /* 21..24 s: taken after 30 s - 10 s */
    flight_frozen_destroy(&f);
    flight_destroy(&fl);
    assert_null(fl);
}

/* max_size 64 KiB, snapshots of about 12 KiB of new lines each: the oldest go first, the bound
 * holds after every snapshot, and the newest is kept. */
static void test_max_size_drops_oldest(void **state)
{
    (void)state;
    size_t max = 64 * 1024;
    flight_t *fl = recorder(1000, 3600 * 1000, max, NULL);
    for (int i = 0; i < 40; i++) {
        char tag[16];
        snprintf(tag, sizeof(tag), "s%d", i);
        char *net = table_text(tag, 100);
        add(fl, T0 + i * 1000, net, "same\n");
        free(net);
        struct flight_stats st;
        flight_get_stats(fl, &st);
        assert_true(st.bytes <= max);
        assert_int_equal(st.newest_ms, T0 + i * 1000);
    }
    struct flight_stats st;
    flight_get_stats(fl, &st);
    assert_true(st.snapshots >= 2 && st.snapshots < 10);
    assert_int_equal(st.dropped_for_size, 40 - st.snapshots);
    flight_frozen_t *f = flight_freeze(fl, T0 + 39000);
    char *text = artifact(f, 16 * MIB, 0);
    assert_null(strstr(text, " s0 line ")); /* the first snapshots are gone */
    assert_non_null(strstr(text, " s39 line 99\n"));
    assert_non_null(strstr(text, " s38 line 0\n"));
    free(text);
    flight_frozen_destroy(&f);
    flight_destroy(&fl);
}

/* Unchanged lines are kept once: 60 snapshots of the same 200 lines cost little more than one. */
static void test_unchanged_lines_kept_once(void **state)
{
    (void)state;
    flight_t *fl = recorder(1000, 60000, 4 * MIB, NULL);
    char *net = table_text("same", 200);
    struct flight_stats one, sixty;
    add(fl, T0, net, "p\n");
    flight_get_stats(fl, &one);
    for (int i = 1; i < 60; i++)
        add(fl, T0 + i * 1000, net, "p\n");
    flight_get_stats(fl, &sixty);
    assert_int_equal(sixty.snapshots, 60);
    assert_int_equal(sixty.lines, one.lines);
    /* Each further snapshot: its pointers (8 bytes a line) and a little bookkeeping. */
    assert_true(sixty.bytes - one.bytes < 59 * (201 * 8 + 512));
    assert_true(sixty.bytes < 60 * strlen(net) / 3);
    free(net);
    flight_destroy(&fl);
}

/* A frozen copy reads the same after the recorder went on (and dropped what it holds). */
static void test_frozen_copy_unaffected(void **state)
{
    (void)state;
    flight_t *fl = recorder(1000, 5000, 4 * MIB, NULL);
    for (int i = 0; i < 5; i++) {
        char tag[16];
        snprintf(tag, sizeof(tag), "early%d", i);
        char *net = table_text(tag, 20);
        add(fl, T0 + i * 1000, net, "p\n");
        free(net);
    }
    flight_frozen_t *f = flight_freeze(fl, T0 + 4000);
    char *before = artifact(f, 16 * MIB, 0);
    struct flight_stats held;
    flight_get_stats(fl, &held);

    for (int i = 5; i < 30; i++) {
        char tag[16];
        snprintf(tag, sizeof(tag), "late%d", i);
        char *net = table_text(tag, 20);
        add(fl, T0 + i * 1000, net, "p\n");
        free(net);
        flight_log_line(fl, "web", "GET / 200", 9);
    }
    char *after = artifact(f, 16 * MIB, 0);
    assert_string_equal(before, after);
    assert_non_null(strstr(after, "early0 line 0"));
    assert_null(strstr(after, "late"));

    /* The recorder itself has moved on: none of the early snapshots is in a new freeze. */
    flight_frozen_t *now = flight_freeze(fl, T0 + 29000);
    char *current = artifact(now, 16 * MIB, 0);
    assert_null(strstr(current, "early"));
    assert_non_null(strstr(current, "late29 line 19"));
    flight_frozen_destroy(&now);

    /* The early lines lived on only in the frozen copy: destroying it frees them. */
    struct flight_stats st0, st1;
    flight_get_stats(fl, &st0);
    flight_frozen_destroy(&f);
    flight_get_stats(fl, &st1);
    assert_true(st1.bytes < st0.bytes);
    assert_true(st1.lines + 5 * 20 <= st0.lines);
    free(before);
    free(after);
    free(current);
    flight_destroy(&fl);
}

/* The artifact: headings per snapshot and section, log lines since the snapshot before. */
static void test_artifact_format(void **state)
{
    (void)state;
    flight_t *fl = recorder(5000, 300000, 4 * MIB, NULL);
    flight_log_line(fl, "web", "GET /a 200", 10);
    flight_log_line(fl, "web", "bell\a and tab\there", 18);
    add(fl, T0, "tcp LISTEN 0.0.0.0:80\n", "1 root nginx\n");
    for (int i = 0; i < 120; i++) {
        char line[32];
        int n = snprintf(line, sizeof(line), "GET /flood/%d 500", i);
        flight_log_line(fl, "web", line, (size_t)n);
    }
    flight_log_line(fl, "auth", "Failed password for root", 24);
    add(fl, T0 + 5000, "tcp LISTEN 0.0.0.0:80\n", "1 root nginx\n");
    char long_line[3 * FLIGHT_LOG_LINE_MAX];
    memset(long_line, 'x', sizeof(long_line));
    flight_log_line(fl, "new-log", long_line, sizeof(long_line));
    add(fl, T0 + 10000, "", "");

    flight_frozen_t *f = flight_freeze(fl, T0 + 10000);
    char *text = artifact(f, 16 * MIB, 0);
    const char *head = "# flight recorder: 3 snapshots from 2026-12-06T21:40:05Z to "
                       "2026-12-06T21:40:15Z, one every 5s, each kept 5m\n";
    assert_memory_equal(text, head, strlen(head));
    const char *first = strstr(text, "== 2026-12-06T21:40:05Z netstat ==\n"
                                     "tcp LISTEN 0.0.0.0:80\n"
                                     "== 2026-12-06T21:40:05Z processes ==\n"
                                     "1 root nginx\n"
                                     "== 2026-12-06T21:40:05Z log web (2 lines) ==\n"
                                     "GET /a 200\n"
                                     "bell\\x07 and tab\there\n"
                                     "== 2026-12-06T21:40:05Z log auth (0 lines) ==\n"
                                     "== 2026-12-06T21:40:10Z netstat ==\n");
    assert_non_null(first);
    /* A flood: the newest 100 lines kept, the rest counted. */
    const char *flood = strstr(text, "== 2026-12-06T21:40:10Z log web (100 lines, 20 earlier "
                                     "not kept) ==\nGET /flood/20 500\n");
    assert_non_null(flood);
    assert_null(strstr(text, "GET /flood/19 500\n"));
    assert_non_null(strstr(flood, "GET /flood/119 500\n== 2026-12-06T21:40:10Z log auth (1 line) "
                                  "==\nFailed password for root\n"));
    /* A log the configuration did not name gets a section once it writes; long lines are cut. */
    const char *cut = strstr(text, "== 2026-12-06T21:40:15Z log new-log (1 line) ==\n");
    assert_non_null(cut);
    const char *body = strchr(cut, '\n') + 1;
    assert_int_equal(strchr(body, '\n') - body, FLIGHT_LOG_LINE_MAX);
    assert_memory_equal(body + FLIGHT_LOG_LINE_MAX - 3, "...\n", 4);
    assert_int_equal(count(text, " netstat ==\n"), 3);
    assert_int_equal(count(text, " processes ==\n"), 3);
    free(text);

    /* Cut at max_bytes: whole lines, then the truncation line. */
    text = artifact(f, 900, -EFBIG);
    assert_true(strlen(text) <= 900);
    assert_non_null(strstr(text, "# truncated"));
    free(text);
    flight_frozen_destroy(&f);

    /* An empty recorder still answers, saying so. */
    flight_t *empty = recorder(5000, 300000, 4 * MIB, NULL);
    f = flight_freeze(empty, T0);
    text = artifact(f, 16 * MIB, 0);
    assert_non_null(
        strstr(text, "# flight recorder: no snapshot yet (one every 5s, each kept 5m)"));
    free(text);
    flight_frozen_destroy(&f);
    flight_destroy(&empty);
    flight_destroy(&fl);
}

/* An artifact cap that cannot hold every snapshot leaves the oldest out, not the newest. */
static void test_artifact_cap_keeps_newest(void **state)
{
    (void)state;
    flight_t *fl = recorder(1000, 60000, 4 * MIB, NULL);
    for (int i = 0; i < 10; i++) {
        char tag[16];
        snprintf(tag, sizeof(tag), "snap%d", i);
        char *net = table_text(tag, 20); /* about 1 KiB */
        add(fl, T0 + i * 1000, net, "p\n");
        free(net);
    }
    flight_frozen_t *f = flight_freeze(fl, T0 + 9000);
    char *text = artifact(f, 2048 + 3500, 0);
    assert_non_null(strstr(text, "snap9 line 19\n"));
    assert_non_null(strstr(text, "snap8 line 0\n"));
    assert_null(strstr(text, "snap0 line"));
    assert_null(strstr(text, "# truncated"));
    assert_non_null(strstr(text, "oldest snapshots are left out"));
    free(text);
    flight_frozen_destroy(&f);
    flight_destroy(&fl);
}

/* Log lines beyond max_size / 8 pending are not kept, whatever the logs write. */
static void test_pending_logs_bounded(void **state)
{
    (void)state;
    size_t max = 64 * 1024;
    flight_t *fl = recorder(1000, 10000, max, NULL);
    char line[FLIGHT_LOG_LINE_MAX];
    memset(line, 'y', sizeof(line));
    for (int i = 0; i < 1000; i++) {
        char name[16];
        snprintf(name, sizeof(name), "log%d", i % 70);
        line[0] = (char)('a' + i % 26);
        flight_log_line(fl, name, line, sizeof(line));
    }
    struct flight_stats st;
    flight_get_stats(fl, &st);
    assert_true(st.bytes <= max);
    assert_true(st.log_lines_dropped > 900);
    flight_destroy(&fl);
}

/* This machine: a listener open at one snapshot and closed at the next is in the artifact with
 * this process as its owner, and the processes section names this process. */
static void test_live_listener_survives(void **state)
{
    (void)state;
    flight_t *fl = recorder(1000, 60000, 4 * MIB, "/proc");
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t salen = sizeof(sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &salen), 0);
    assert_int_equal(listen(fd, 4), 0);
    /* A connection this side closes first: its socket waits in TIME_WAIT, owned by nobody. */
    int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(connect(client, (struct sockaddr *)&sa, sizeof(sa)), 0);
    int accepted = accept(fd, NULL, NULL);
    assert_true(accepted >= 0);
    close(client);
    close(accepted);
    assert_int_equal(flight_take(fl, T0), 0);
    close(fd);
    assert_int_equal(flight_take(fl, T0 + 1000), 0);

    struct sink sink = {0};
    struct artifact_writer out = {sink_write, &sink};
    char err[256] = "";
    flight_frozen_t *f = flight_freeze(fl, T0 + 1000);
    assert_int_equal(flight_frozen_write(f, 64 * MIB, &out, err, sizeof(err)), 0);
    flight_frozen_destroy(&f);

    char endpoint[64], owner[64], pid[32];
    snprintf(endpoint, sizeof(endpoint), "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    char comm[32] = "";
    FILE *cf = fopen("/proc/self/comm", "r"); /* "test_flight", or valgrind's under it */
    assert_non_null(cf);
    assert_non_null(fgets(comm, sizeof(comm), cf));
    fclose(cf);
    comm[strcspn(comm, "\n")] = '\0';
    snprintf(owner, sizeof(owner), "(\"%s\",pid=%d,fd=%d)", comm, (int)getpid(), fd);
    snprintf(pid, sizeof(pid), "\n%-7d ", (int)getpid());
    const char *first = strstr(sink.data, "== 2026-12-06T21:40:05Z netstat ==\n");
    const char *first_procs = strstr(sink.data, "== 2026-12-06T21:40:05Z processes ==\n");
    const char *second = strstr(sink.data, "== 2026-12-06T21:40:06Z netstat ==\n");
    assert_non_null(first);
    assert_non_null(first_procs);
    assert_non_null(second);
    const char *listener = strstr(first, endpoint);
    assert_true(listener && listener < first_procs);
    const char *eol = strchr(listener, '\n');
    const char *who = strstr(listener, owner);
    assert_true(who && who < eol);
    const char *me = strstr(first_procs, pid);
    assert_true(me && me < second);
    assert_null(strstr(second, endpoint)); /* closed before the second snapshot */
    /* TIME_WAIT rows are counted in a line of their own, not kept. */
    assert_non_null(strstr(first, "TIME_WAIT sockets left out of the recorder"));
    for (const char *l = first; l < first_procs; l = strchr(l, '\n') + 1) {
        const char *eol_tw = strchr(l, '\n');
        const char *tw = strstr(l, " TIME_WAIT ");
        assert_false(strncmp(l, "tcp", 3) == 0 && tw && tw < eol_tw);
    }

    struct flight_stats st;
    flight_get_stats(fl, &st);
    assert_int_equal(st.snapshots, 2);
    assert_true(st.last_cpu_us >= 0);
    free(sink.data);
    flight_destroy(&fl);
}

/* The thread: a snapshot at once, then one every interval, until destroyed. */
static void test_thread_takes_snapshots(void **state)
{
    (void)state;
    flight_t *fl = recorder(50, 10000, 4 * MIB, NULL);
    char err[256] = "";
    assert_int_equal(flight_start(fl, err, sizeof(err)), 0);
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 330 * 1000 * 1000};
    nanosleep(&ts, NULL);
    struct flight_stats st;
    flight_get_stats(fl, &st);
    assert_true(st.taken >= 4 && st.taken <= 9);
    flight_destroy(&fl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options_refused),
        cmocka_unit_test(test_window_drops_oldest),
        cmocka_unit_test(test_max_size_drops_oldest),
        cmocka_unit_test(test_unchanged_lines_kept_once),
        cmocka_unit_test(test_frozen_copy_unaffected),
        cmocka_unit_test(test_artifact_format),
        cmocka_unit_test(test_artifact_cap_keeps_newest),
        cmocka_unit_test(test_pending_logs_bounded),
        cmocka_unit_test(test_live_listener_survives),
        cmocka_unit_test(test_thread_takes_snapshots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
