/* Watched processes against real child processes: up, exit noticed at once, restarts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "procwatch.h"
#include "timeutil.h"
#include "wire.h"

static char dir[64];

static void path_of(char *buf, size_t cap, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < cap);
}

static void put(const char *name, const char *text)
{
    char path[256];
    path_of(path, sizeof(path), name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static void make_dir(const char *name)
{
    char path[256];
    path_of(path, sizeof(path), name);
    assert_int_equal(mkdir(path, 0755), 0);
}

static void write_pid(const char *name, pid_t pid)
{
    char text[32];
    snprintf(text, sizeof(text), "%d\n", (int)pid);
    put(name, text);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/vigil-procwatch-XXXXXX");
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

/* ---- Children --------------------------------------------------------------------------- */

/* A child that sleeps until killed, named comm (NULL: the test's own name). */
static pid_t spawn(const char *comm)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0); /* never outlive a failed test */
        if (comm)
            prctl(PR_SET_NAME, comm, 0, 0, 0);
        for (;;)
            pause();
    }
    /* Wait until the child has its name, so a scan cannot see it half-made. */
    if (comm) {
        char path[64], got[32] = "";
        snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
        for (int i = 0; i < 200; i++) {
            FILE *f = fopen(path, "r");
            if (f) {
                if (!fgets(got, sizeof(got), f))
                    got[0] = '\0';
                fclose(f);
            }
            got[strcspn(got, "\n")] = '\0';
            if (strcmp(got, comm) == 0)
                break;
            usleep(5000);
        }
        assert_string_equal(got, comm);
    }
    return pid;
}

static void reap(pid_t pid)
{
    int status;
    kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, &status, 0), pid);
}

/* ---- Running ---------------------------------------------------------------------------- */

struct run {
    procwatch_t *pw;
    sigbuf_t *batch;
    struct collect_ctx ctx;
    Vigil__Envelope *env;
};

static void run_open(struct run *r, const struct procwatch_config *c, size_t n,
                     const char *proc_root, const char *cgroup_root)
{
    char err[256] = "";
    memset(r, 0, sizeof(*r));
    r->pw = procwatch_new(c, n, proc_root, cgroup_root, err, sizeof(err));
    if (!r->pw)
        fail_msg("procwatch_new: %s", err);
    r->batch = sigbuf_new();
    assert_non_null(r->batch);
    r->ctx = (struct collect_ctx){.batch = r->batch, .now_ms = 1000};
}

static void decode(struct run *r)
{
    uint8_t *buf;
    size_t len;
    if (r->env)
        vg_envelope_free(r->env);
    r->env = NULL;
    if (sigbuf_count(r->batch) == 0)
        return;
    assert_int_equal(sigbuf_encode(r->batch, "ag-0123456789abcdef", 1, &buf, &len), 0);
    assert_int_equal(vg_envelope_decode(buf, len, &r->env, NULL), VG_DECODE_OK);
    free(buf);
    sigbuf_clear(r->batch);
}

static void cycle(struct run *r)
{
    sigbuf_clear(r->batch);
    r->ctx.now_ms += 1000;
    procwatch_run(r->pw, &r->ctx);
    decode(r);
}

static void run_close(struct run *r)
{
    if (r->env)
        vg_envelope_free(r->env);
    sigbuf_destroy(&r->batch);
    procwatch_destroy(&r->pw);
    assert_null(r->pw);
}

static const Vigil__Signal *find(const struct run *r, const char *signal, const char *name,
                                 const char *reason)
{
    for (size_t i = 0; r->env && i < r->env->signals->n_signals; i++) {
        const Vigil__Signal *s = r->env->signals->signals[i];
        bool name_ok = false, reason_ok = reason == NULL;
        for (size_t j = 0; j < s->n_labels; j++) {
            name_ok |=
                strcmp(s->labels[j]->key, "name") == 0 && strcmp(s->labels[j]->value, name) == 0;
            reason_ok |= reason && strcmp(s->labels[j]->key, "reason") == 0 &&
                         strcmp(s->labels[j]->value, reason) == 0;
        }
        if (strcmp(s->name, signal) == 0 && name_ok && reason_ok)
            return s;
    }
    return NULL;
}

static double value(const struct run *r, const char *signal, const char *name)
{
    const Vigil__Signal *s = find(r, signal, name, NULL);
    if (!s)
        fail_msg("no %s{name=%s}", signal, name);
    return s->value;
}

/* ---- Tests ------------------------------------------------------------------------------ */

static void test_pidfile_exit_noticed_at_once(void **state)
{
    (void)state;
    char pidfile[256];
    path_of(pidfile, sizeof(pidfile), "worker.pid");
    struct procwatch_config c = {.name = "worker", .pidfile = pidfile};
    struct run r;
    pid_t child = spawn(NULL);
    write_pid("worker.pid", child);
    run_open(&r, &c, 1, NULL, NULL);
    int fd = procwatch_fd(r.pw);
    assert_true(fd >= 0); /* this kernel has pidfds */

    cycle(&r);
    assert_true(value(&r, "proc.up", "worker") == 1);
    assert_true(value(&r, "proc.pid", "worker") == child);
    assert_true(value(&r, "proc.restarts", "worker") == 0);
    assert_true(value(&r, "proc.rss_bytes", "worker") > 0);
    assert_null(find(&r, "proc.cpu_pct", "worker", NULL)); /* no previous run yet */
    usleep(20 * 1000);
    cycle(&r);
    assert_true(value(&r, "proc.cpu_pct", "worker") >= 0);

    /* It dies: the fd is readable at once, and handle sends proc.up = 0 without a run. */
    struct pollfd p = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 0), 0);
    int64_t killed = vg_mono_ms();
    kill(child, SIGKILL);
    assert_int_equal(poll(&p, 1, 100), 1);
    assert_true(vg_mono_ms() - killed <= 100);
    procwatch_handle(r.pw, &r.ctx);
    decode(&r);
    assert_true(value(&r, "proc.up", "worker") == 0);
    assert_int_equal(poll(&p, 1, 0), 0); /* handled: not readable any more */

    /* Still a zombie (not reaped), then gone: down, no restart, no errors. */
    cycle(&r);
    assert_true(value(&r, "proc.up", "worker") == 0);
    assert_null(find(&r, "proc.pid", "worker", NULL));
    reap(child);
    cycle(&r);
    assert_true(value(&r, "proc.up", "worker") == 0);
    assert_true(value(&r, "proc.restarts", "worker") == 0);
    assert_null(find(&r, "proc.errors", "worker", NULL));

    /* A new worker writes its pid: up again, one restart. */
    pid_t again = spawn(NULL);
    write_pid("worker.pid", again);
    cycle(&r);
    assert_true(value(&r, "proc.up", "worker") == 1);
    assert_true(value(&r, "proc.pid", "worker") == again);
    assert_true(value(&r, "proc.restarts", "worker") == 1);
    cycle(&r);
    assert_true(value(&r, "proc.restarts", "worker") == 1);

    /* The pidfile removed (service stopped cleanly): down. */
    reap(again);
    assert_int_equal(unlink(pidfile), 0);
    procwatch_handle(r.pw, &r.ctx);
    cycle(&r);
    assert_true(value(&r, "proc.up", "worker") == 0);
    assert_null(find(&r, "proc.errors", "worker", NULL));
    run_close(&r);
}

static void test_comm_finds_the_oldest(void **state)
{
    (void)state;
    struct procwatch_config c[2] = {{.name = "sleeper", .comm = "vigil-test-slp"},
                                    {.name = "absent", .comm = "vigil-no-such"}};
    struct run r;
    pid_t parent = spawn("vigil-test-slp");
    usleep(20 * 1000); /* start times are in clock ticks: make the worker clearly younger */
    pid_t worker = spawn("vigil-test-slp");
    run_open(&r, c, 2, NULL, NULL);
    cycle(&r);
    assert_true(value(&r, "proc.up", "sleeper") == 1);
    assert_true(value(&r, "proc.pid", "sleeper") == parent);
    assert_true(value(&r, "proc.up", "absent") == 0);
    assert_null(find(&r, "proc.pid", "absent", NULL));

    /* The parent dies; the worker is what remains of the service: a restart. */
    kill(parent, SIGKILL);
    struct pollfd p = {.fd = procwatch_fd(r.pw), .events = POLLIN};
    assert_int_equal(poll(&p, 1, 100), 1);
    procwatch_handle(r.pw, &r.ctx);
    decode(&r);
    assert_true(value(&r, "proc.up", "sleeper") == 0);
    reap(parent);
    cycle(&r);
    assert_true(value(&r, "proc.up", "sleeper") == 1);
    assert_true(value(&r, "proc.pid", "sleeper") == worker);
    assert_true(value(&r, "proc.restarts", "sleeper") == 1);
    reap(worker);
    cycle(&r);
    assert_true(value(&r, "proc.up", "sleeper") == 0);
    run_close(&r);
}

static void test_unit_lowest_pid_of_cgroup(void **state)
{
    (void)state;
    char root[256], procs[512];
    struct procwatch_config c = {.name = "web", .unit = "vigil-web"};
    struct run r;
    pid_t a = spawn(NULL), b = spawn(NULL);
    make_dir("cg");
    make_dir("cg/system.slice");
    make_dir("cg/system.slice/vigil-web.service");
    path_of(root, sizeof(root), "cg");
    snprintf(procs, sizeof(procs), "%d\n%d\n", (int)(a > b ? a : b), (int)(a < b ? a : b));
    put("cg/system.slice/vigil-web.service/cgroup.procs", procs);
    run_open(&r, &c, 1, NULL, root);
    cycle(&r);
    assert_true(value(&r, "proc.up", "web") == 1);
    assert_true(value(&r, "proc.pid", "web") == (a < b ? a : b));

    /* The unit stopped: systemd removed its cgroup. */
    reap(a);
    reap(b);
    char path[256];
    path_of(path, sizeof(path), "cg/system.slice/vigil-web.service/cgroup.procs");
    assert_int_equal(unlink(path), 0);
    path_of(path, sizeof(path), "cg/system.slice/vigil-web.service");
    assert_int_equal(rmdir(path), 0);
    procwatch_handle(r.pw, &r.ctx);
    cycle(&r);
    assert_true(value(&r, "proc.up", "web") == 0);
    assert_null(find(&r, "proc.errors", "web", NULL));
    run_close(&r);
}

static void test_bad_pidfiles_counted(void **state)
{
    (void)state;
    char pidfile[256], gone[256];
    path_of(pidfile, sizeof(pidfile), "bad.pid");
    path_of(gone, sizeof(gone), "gone.pid");
    struct procwatch_config c[2] = {{.name = "bad", .pidfile = pidfile},
                                    {.name = "gone", .pidfile = gone}};
    struct run r;
    put("bad.pid", "12abc\n");
    /* A pid that has exited (and been reaped): simply down. */
    pid_t dead = spawn(NULL);
    reap(dead);
    write_pid("gone.pid", dead);
    run_open(&r, c, 2, NULL, NULL);
    cycle(&r);
    assert_true(value(&r, "proc.up", "bad") == 0);
    const Vigil__Signal *e = find(&r, "proc.errors", "bad", "pidfile");
    assert_non_null(e);
    assert_true(e->value == 1);
    assert_true(value(&r, "proc.up", "gone") == 0);
    assert_null(find(&r, "proc.errors", "gone", NULL));
    cycle(&r);
    assert_true(find(&r, "proc.errors", "bad", "pidfile")->value == 1); /* once per episode */

    /* Binary garbage, a huge number, a negative one: refused the same way. */
    static const char *const junk[] = {"\x01\x02\x03", "99999999999999999999\n", "-5\n", "",
                                       "1 2\n"};
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        put("bad.pid", junk[i]);
        cycle(&r);
        assert_true(value(&r, "proc.up", "bad") == 0);
    }
    assert_true(find(&r, "proc.errors", "bad", "pidfile")->value == 1); /* still one episode */

    /* Fixed: the process is found; the count stays as history. Broken again: a new episode. */
    pid_t child = spawn(NULL);
    write_pid("bad.pid", child);
    cycle(&r);
    assert_true(value(&r, "proc.up", "bad") == 1);
    assert_true(find(&r, "proc.errors", "bad", "pidfile")->value == 1);
    put("bad.pid", "garbage\n");
    cycle(&r);
    assert_true(value(&r, "proc.up", "bad") == 0);
    assert_true(find(&r, "proc.errors", "bad", "pidfile")->value == 2);
    reap(child);
    run_close(&r);
}

/* A /proc that is not this process's (a fixture): pids are polled, no pidfd. */
static void test_polling_with_a_foreign_proc(void **state)
{
    (void)state;
    char root[256], pidfile[256];
    struct procwatch_config c[2] = {{.name = "db", .comm = "postgres"},
                                    {.name = "cache", .pidfile = pidfile}};
    struct run r;
    path_of(pidfile, sizeof(pidfile), "cache.pid");
    make_dir("proc");
    make_dir("proc/700");
    make_dir("proc/701");
    make_dir("proc/702");
    put("proc/700/stat", "700 (postgres) S 1 700 700 0 -1 4194560 1 0 0 0 5 3 0 0 20 0 1 0 "
                         "5000 100000 250 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0\n");
    put("proc/701/stat", "701 (postgres) S 700 700 700 0 -1 4194560 1 0 0 0 5 3 0 0 20 0 1 0 "
                         "6000 100000 100 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0\n");
    put("proc/702/stat", "702 (redis) Z 1 702 702 0 -1 4194560 1 0 0 0 5 3 0 0 20 0 1 0 "
                         "7000 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0\n");
    put("cache.pid", "702\n");
    path_of(root, sizeof(root), "proc");
    run_open(&r, c, 2, root, NULL);
    assert_int_equal(procwatch_fd(r.pw), -1);
    procwatch_handle(r.pw, &r.ctx); /* harmless without an fd */
    cycle(&r);
    assert_true(value(&r, "proc.up", "db") == 1);
    assert_true(value(&r, "proc.pid", "db") == 700);
    assert_true(value(&r, "proc.rss_bytes", "db") == 250.0 * (double)sysconf(_SC_PAGESIZE));
    assert_true(value(&r, "proc.up", "cache") == 0); /* a zombie is down */

    /* The postmaster vanishes: noticed by the next run; its child takes over. */
    char path[256];
    path_of(path, sizeof(path), "proc/700/stat");
    assert_int_equal(unlink(path), 0);
    cycle(&r);
    assert_true(value(&r, "proc.pid", "db") == 701);
    assert_true(value(&r, "proc.restarts", "db") == 1);
    run_close(&r);
}

/* A watched process in a pod: proc.pod names it; proc.up stays the one series {name}. */
static void test_pod_named(void **state)
{
    (void)state;
    char root[256], pods[256], containers[256];
    struct procwatch_config c[2] = {{.name = "db", .comm = "postgres"},
                                    {.name = "host", .comm = "sshd"}};
    struct run r;
    make_dir("proc");
    make_dir("proc/700");
    make_dir("proc/800");
    put("proc/700/stat", "700 (postgres) S 1 700 700 0 -1 4194560 1 0 0 0 5 3 0 0 20 0 1 0 "
                         "5000 100000 250 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0\n");
    put("proc/700/cgroup", "0::/kubepods/burstable/pod8f14e45f-ceea-467f-a0e6-5c1a7f2b3d4e/"
                           "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n");
    put("proc/800/stat", "800 (sshd) S 1 800 800 0 -1 4194560 1 0 0 0 5 3 0 0 20 0 1 0 "
                         "5000 100000 250 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0\n");
    put("proc/800/cgroup", "0::/system.slice/ssh.service\n");
    make_dir("pods");
    make_dir("pods/data_pg-0_8f14e45f-ceea-467f-a0e6-5c1a7f2b3d4e");
    make_dir("pods/data_pg-0_8f14e45f-ceea-467f-a0e6-5c1a7f2b3d4e/postgres");
    make_dir("containers");
    put("containers/pg-0_data_postgres-"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.log",
        "");
    path_of(root, sizeof(root), "proc");
    path_of(pods, sizeof(pods), "pods");
    path_of(containers, sizeof(containers), "containers");
    podmap_t *map = podmap_new(pods, containers);
    run_open(&r, c, 2, root, NULL);
    procwatch_set_pods(r.pw, map);
    cycle(&r);
    const Vigil__Signal *s = find(&r, "proc.pod", "db", NULL);
    assert_non_null(s);
    assert_true(s->value == 1);
    size_t seen = 0;
    for (size_t j = 0; j < s->n_labels; j++) {
        const char *k = s->labels[j]->key, *v = s->labels[j]->value;
        seen +=
            (strcmp(k, "namespace") == 0 && strcmp(v, "data") == 0) +
            (strcmp(k, "pod") == 0 && strcmp(v, "pg-0") == 0) +
            (strcmp(k, "container") == 0 && strcmp(v, "postgres") == 0) +
            (strcmp(k, "pod_uid") == 0 && strcmp(v, "8f14e45f-ceea-467f-a0e6-5c1a7f2b3d4e") == 0);
    }
    assert_int_equal(seen, 4);
    assert_int_equal(find(&r, "proc.up", "db", NULL)->n_labels, 1);
    assert_null(find(&r, "proc.pod", "host", NULL)); /* not in a pod */
    assert_true(value(&r, "proc.up", "host") == 1);
    run_close(&r);
    podmap_destroy(&map);
}

static void expect_refused(const struct procwatch_config *c, size_t n, const char *needle)
{
    char err[256] = "";
    procwatch_t *pw = procwatch_new(c, n, NULL, NULL, err, sizeof(err));
    assert_null(pw);
    if (!strstr(err, needle))
        fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
}

static void test_bad_configuration_refused(void **state)
{
    (void)state;
    struct procwatch_config c[2] = {{.name = "a", .comm = "nginx", .pidfile = "/run/nginx.pid"},
                                    {.name = "b"}};
    expect_refused(c, 1, "process \"a\": set exactly one of comm, pidfile or unit");
    expect_refused(&c[1], 1, "process \"b\": set exactly one");
    c[0] = (struct procwatch_config){.name = "a", .comm = "a-very-long-process-name"};
    expect_refused(c, 1, "at most 15");
    c[0] = (struct procwatch_config){.name = "a", .unit = "../../etc"};
    expect_refused(c, 1, "not a systemd unit name");
    c[0] = (struct procwatch_config){.name = "a", .pidfile = "run/x.pid"};
    expect_refused(c, 1, "absolute");
    c[0] = (struct procwatch_config){.name = "a", .comm = "x"};
    c[1] = (struct procwatch_config){.name = "a", .comm = "y"};
    expect_refused(c, 2, "used twice");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pidfile_exit_noticed_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_comm_finds_the_oldest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unit_lowest_pid_of_cgroup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_pidfiles_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_polling_with_a_foreign_proc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pod_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_configuration_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
