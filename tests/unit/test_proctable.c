/*
 * The process table evidence, as a responder reads it: against a fixture /proc tree
 * (tests/unit/fixtures/procfs/proc) and against this machine's /proc.
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

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proctable.h"

#include <ftw.h>
#include <sys/stat.h>

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int nftw_remove(const char *dir)
{
    return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static char fixture_root[4096];

/* VIGIL_FIXTURES when ctest sets it, else next to this source file. */
static int find_fixture(void **state)
{
    (void)state;
    const char *dir = getenv("VIGIL_FIXTURES");
    int n;
    if (dir && dir[0]) {
        n = snprintf(fixture_root, sizeof(fixture_root), "%s/procfs/proc", dir);
    } else {
        const char *slash = strrchr(__FILE__, '/');
        int len = slash ? (int)(slash - __FILE__) : 1;
        n = snprintf(fixture_root, sizeof(fixture_root), "%.*s/fixtures/procfs/proc", len,
                     slash ? __FILE__ : ".");
    }
    return n > 0 && (size_t)n < sizeof(fixture_root) ? 0 : -1;
}

static void sink_reset(struct sink *s)
{
    free(s->data);
    memset(s, 0, sizeof(*s));
}

/* The line that starts with "<pid> " (columns are padded), or NULL. Caller frees. */
static char *line_of(const struct sink *s, int pid)
{
    char prefix[16];
    int n = snprintf(prefix, sizeof(prefix), "%d ", pid);
    for (const char *p = s->data; p && *p;) {
        const char *end = strchr(p, '\n');
        assert_non_null(end); /* every line is whole */
        if (strncmp(p, prefix, (size_t)n) == 0)
            return strndup(p, (size_t)(end - p));
        p = end + 1;
    }
    return NULL;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Printable ASCII and newlines only: nothing from a process reaches the terminal raw. */
static void assert_printable(const struct sink *s)
{
    for (size_t i = 0; i < s->len; i++) {
        unsigned char ch = (unsigned char)s->data[i];
        if (ch != '\n' && (ch < 0x20 || ch > 0x7e))
            fail_msg("byte 0x%02x at %zu", ch, i);
    }
}

static int write_fixture(struct sink *s, size_t cap, char *err, size_t errlen)
{
    struct artifact_writer out = {sink_write, s};
    return proctable_write(fixture_root, NULL, cap, &out, err, errlen);
}

/* ---- Tests ------------------------------------------------------------------------------ */

static void test_fixture_table(void **state)
{
    (void)state;
    struct sink s = {0};
    char err[256] = "";
    assert_int_equal(write_fixture(&s, 1 << 20, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_printable(&s);
    assert_true(strncmp(s.data, "# processes of ", 15) == 0);
    assert_non_null(strstr(s.data, "\nPID "));
    long page_kib = sysconf(_SC_PAGESIZE) / 1024;
    assert_int_equal(sysconf(_SC_CLK_TCK), 100); /* USER_HZ on every Linux ABI */

    /* init: root, 400 ticks of CPU, started 1/100 s after btime 1700000000. */
    char *l = line_of(&s, 1);
    assert_non_null(l);
    char want[128];
    snprintf(want, sizeof(want), " %ld ", 3000 * page_kib);
    assert_non_null(strstr(l, want));
    assert_non_null(strstr(l, " 0(root) "));
    assert_non_null(strstr(l, " 4.00 "));
    assert_non_null(strstr(l, " 2023-11-14T22:13:20Z "));
    /* no pod, no container, no names */
    assert_true(ends_with(l, " -             -                       /sbin/init splash"));
    free(l);

    /* A kernel thread: no command line, its name in brackets. */
    l = line_of(&s, 2);
    assert_non_null(l);
    assert_true(ends_with(l, " [kthreadd]"));
    free(l);

    /* nginx in a pod: the pod uid and the container id from its cgroup. */
    l = line_of(&s, 1234);
    assert_non_null(l);
    assert_non_null(strstr(l, " 8f14e45f-ceea-467f-a0e6-5c1a7f2b3d4e/"
                              "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef "));
    assert_non_null(strstr(l, " 12.34 "));
    assert_non_null(strstr(l, " 2023-11-14T22:55:00Z "));
    assert_true(ends_with(l, " nginx: master process /usr/sbin/nginx -g daemon off;"));
    free(l);

    /* Its worker: parent, uid, running, threads; a hostile command line comes out escaped. */
    l = line_of(&s, 1300);
    assert_non_null(l);
    assert_true(strncmp(l, "1300    1234    101", 19) == 0);
    assert_non_null(strstr(l, " R    4 "));
    assert_true(ends_with(l, " worker --name=a b tab\\x09here nl\\x0ax \\x01\\xff\\x5cz"));
    free(l);

    /* A zombie without a status file and with a 6 KB command line: uid unknown, line cut. */
    l = line_of(&s, 4242);
    assert_non_null(l);
    assert_non_null(strstr(l, " ? "));
    assert_non_null(strstr(l, " Z "));
    assert_non_null(strstr(l, " java -Dx=yyyy"));
    assert_true(ends_with(l, "y..."));
    assert_true(strlen(l) < 4096 + 200);
    free(l);

    /* Gone (5000) or unreadable (6000), and directories that are not processes: no line. */
    assert_null(line_of(&s, 5000));
    assert_null(line_of(&s, 6000));
    assert_null(strstr(s.data, "12abc"));
    assert_null(strstr(s.data, "self"));

    /* Pid order, then the summary as the last line. */
    const char *p1 = strstr(s.data, "\n1 "), *p2 = strstr(s.data, "\n2 ");
    const char *p1234 = strstr(s.data, "\n1234 "), *p4242 = strstr(s.data, "\n4242 ");
    assert_true(p1 && p2 && p1234 && p4242 && p1 < p2 && p2 < p1234 && p1234 < p4242);
    assert_true(
        ends_with(s.data, "# 5 processes listed; 1 exited while being read; 1 unreadable\n"));
    sink_reset(&s);
}

/* With a podmap, nginx's pod and container are named; processes outside pods are not. */
static void test_pods_named(void **state)
{
    (void)state;
    char tree[] = "/tmp/test_proctable.XXXXXX", path[512];
    assert_non_null(mkdtemp(tree));
    static const char *const dirs[] = {
        "pods", "containers", "pods/web_nginx-0_8f14e45f-ceea-467f-a0e6-5c1a7f2b3d4e",
        "pods/web_nginx-0_8f14e45f-ceea-467f-a0e6-5c1a7f2b3d4e/nginx"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "%s/%s", tree, dirs[i]);
        assert_int_equal(mkdir(path, 0755), 0);
    }
    snprintf(path, sizeof(path),
             "%s/containers/nginx-0_web_nginx-"
             "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.log",
             tree);
    assert_int_equal(symlink("../pods/x/nginx/0.log", path), 0);
    char pods[256], containers[256];
    snprintf(pods, sizeof(pods), "%s/pods", tree);
    snprintf(containers, sizeof(containers), "%s/containers", tree);
    podmap_t *map = podmap_new(pods, containers);

    struct sink s = {0};
    struct artifact_writer out = {sink_write, &s};
    char err[256] = "";
    assert_int_equal(proctable_write(fixture_root, map, 1 << 20, &out, err, sizeof(err)), 0);
    assert_non_null(strstr(s.data, " NAMESPACE/POD/CONTAINER "));
    char *l = line_of(&s, 1234);
    assert_non_null(l);
    assert_non_null(strstr(l, "0123456789abcdef web/nginx-0/nginx "));
    free(l);
    l = line_of(&s, 1);
    assert_true(ends_with(l, " -             -                       /sbin/init splash"));
    free(l);
    free(s.data);
    podmap_destroy(&map);

    assert_int_equal(nftw_remove(tree), 0);
}

static void test_cap_is_respected(void **state)
{
    (void)state;
    struct sink full = {0};
    char err[256];
    assert_int_equal(write_fixture(&full, 1 << 20, err, sizeof(err)), 0);

    const size_t caps[] = {0, 10, 60, 300, 900, 1500, full.len - 1};
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        struct sink s = {0};
        err[0] = '\0';
        assert_int_equal(write_fixture(&s, caps[i], err, sizeof(err)), -EFBIG);
        assert_true(s.len <= caps[i]);
        assert_non_null(strstr(err, "cap"));
        char marker[96];
        snprintf(marker, sizeof(marker),
                 "# truncated: this artifact reached its cap of %zu bytes\n", caps[i]);
        if (caps[i] >= strlen(marker)) {
            /* Whole lines of the full table, then the truncation line. */
            assert_true(ends_with(s.data, marker));
            size_t kept = s.len - strlen(marker);
            assert_memory_equal(s.data, full.data, kept);
            assert_true(kept == 0 || s.data[kept - 1] == '\n');
        }
        sink_reset(&s);
    }
    /* Room for everything and the truncation line that was not needed: all of it. */
    struct sink s = {0};
    assert_int_equal(write_fixture(&s, full.len + 128, err, sizeof(err)), 0);
    assert_int_equal(s.len, full.len);
    sink_reset(&s);
    sink_reset(&full);
}

static void test_writer_error_stops(void **state)
{
    (void)state;
    struct sink s = {.fail_after = 3, .fail_with = -EIO};
    char err[256] = "";
    assert_int_equal(write_fixture(&s, 1 << 20, err, sizeof(err)), -EIO);
    assert_int_equal(s.calls, 3); /* nothing more was tried after the failure */
    assert_non_null(strstr(err, "processes"));
    assert_non_null(strstr(err, strerror(EIO)));
    sink_reset(&s);
}

static void test_missing_root(void **state)
{
    (void)state;
    struct sink s = {0};
    struct artifact_writer out = {sink_write, &s};
    char err[256] = "";
    assert_int_equal(proctable_write("/nonexistent-proc", NULL, 4096, &out, err, sizeof(err)),
                     -ENOENT);
    assert_non_null(strstr(err, "/nonexistent-proc"));
    assert_int_equal(s.len, 0);
    sink_reset(&s);
}

/* This machine: the test's own process is there with its command line and its user. */
static void test_live_proc_shows_self(void **state)
{
    (void)state;
    struct sink s = {0};
    struct artifact_writer out = {sink_write, &s};
    char err[256] = "";
    assert_int_equal(proctable_write(NULL, NULL, 64 << 20, &out, err, sizeof(err)), 0);
    assert_printable(&s);

    char *l = line_of(&s, getpid());
    assert_non_null(l);
    char want[4096 + 64];
    int fd_len = 0;
    FILE *f = fopen("/proc/self/cmdline", "r");
    assert_non_null(f);
    fd_len = (int)fread(want, 1, 4096, f);
    fclose(f);
    assert_true(fd_len > 0);
    for (int i = 0; i < fd_len; i++)
        if (want[i] == '\0')
            want[i] = ' ';
    while (fd_len > 0 && want[fd_len - 1] == ' ')
        fd_len--;
    want[fd_len] = '\0';
    assert_non_null(strstr(l, want)); /* paths here are plain ASCII */
    char uid[32];
    snprintf(uid, sizeof(uid), " %u", (unsigned)getuid());
    assert_non_null(strstr(l, uid));
    free(l);
    l = line_of(&s, getppid());
    assert_non_null(l);
    free(l);
    sink_reset(&s);
}

/* Processes exiting while the table is read are left out, never a failure. */
static void test_vanishing_processes(void **state)
{
    (void)state;
    pid_t spawner = fork();
    assert_true(spawner >= 0);
    if (spawner == 0) {
        for (;;) {
            pid_t child = fork();
            if (child == 0)
                _exit(0);
            if (child > 0)
                waitpid(child, NULL, 0);
        }
    }
    struct sink s = {0};
    struct artifact_writer out = {sink_write, &s};
    char err[256];
    for (int i = 0; i < 20; i++) {
        assert_int_equal(proctable_write(NULL, NULL, 64 << 20, &out, err, sizeof(err)), 0);
        assert_non_null(strstr(s.data, " processes listed; "));
        sink_reset(&s);
        out.w = &s;
    }
    kill(spawner, SIGKILL);
    waitpid(spawner, NULL, 0);
}

static void test_helpers(void **state)
{
    (void)state;
    char buf[64];
    /* Escaping: printable kept, the rest and the chosen extras as \xHH, bounded. */
    assert_true(artifact_escape("a b\\\"\x7f", 6, "\"", buf, sizeof(buf)));
    assert_string_equal(buf, "a b\\x5c\\x22\\x7f");
    assert_false(artifact_escape("\x01\x02\x03", 3, NULL, buf, 9));
    assert_string_equal(buf, "\\x01\\x02"); /* stopped before an escape that did not fit */
    artifact_time_text(0, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T00:00:00Z");
    /* A short buffer cuts the command line with "..." and stays terminated. */
    int fd = open(fixture_root, O_RDONLY | O_DIRECTORY);
    assert_true(fd >= 0);
    proctable_cmdline(fd, 1234, "nginx", buf, 16);
    assert_string_equal(buf, "nginx: maste...");
    proctable_cmdline(fd, 2, "kthreadd", buf, sizeof(buf));
    assert_string_equal(buf, "[kthreadd]");
    proctable_cmdline(fd, 99999, "gone", buf, sizeof(buf));
    assert_string_equal(buf, "[gone]");
    close(fd);
    proctable_user_name(0, buf, sizeof(buf));
    assert_string_equal(buf, "root");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_table),       cmocka_unit_test(test_pods_named),
        cmocka_unit_test(test_cap_is_respected),    cmocka_unit_test(test_writer_error_stops),
        cmocka_unit_test(test_missing_root),        cmocka_unit_test(test_live_proc_shows_self),
        cmocka_unit_test(test_vanishing_processes), cmocka_unit_test(test_helpers),
    };
    return cmocka_run_group_tests(tests, find_fixture, NULL);
}
