/* The host collector against a fixed /proc tree: the values a user would see. */
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "artifact_sink.h"

#include "host.h"
#include "wire.h"

static char root[64];

static void put(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", root, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static const char *const NET_HEADER =
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "
    "drop fifo colls carrier compressed\n";

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof(root), "/tmp/vigil-host-XXXXXX");
    assert_non_null(mkdtemp(root));
    char dir[128];
    snprintf(dir, sizeof(dir), "%s/self", root);
    mkdir(dir, 0755);
    snprintf(dir, sizeof(dir), "%s/net", root);
    mkdir(dir, 0755);
    put("stat", "cpu  1000 10 500 8000 200 0 40 0 0 0\n");
    put("meminfo", "MemTotal:        4000000 kB\nMemFree:          100000 kB\n"
                   "MemAvailable:    1000000 kB\n");
    put("loadavg", "2.16 1.65 1.37 2/93 9558\n");
    put("vmstat", "nr_free_pages 12345\noom_kill 17\n");
    put("self/mounts", "/dev/root / ext4 rw,relatime 0 0\n"
                       "tmpfs /run tmpfs rw,nosuid 0 0\n"
                       "proc /proc proc rw 0 0\n"
                       "server:/export /mnt/nfs nfs4 rw 0 0\n");
    put("self/mountinfo", "27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/root rw\n"
                          "28 27 0:23 / /run rw,nosuid shared:5 - tmpfs tmpfs rw\n"
                          "29 27 0:21 / /proc rw shared:12 - proc proc rw\n"
                          "30 27 0:50 / /mnt/nfs rw - nfs4 server:/export rw\n");
    char net[1024];
    snprintf(net, sizeof(net), "%s  eth0: 1000 10 1 0 0 0 0 0 2000 20 0 0 0 0 0 0\n", NET_HEADER);
    put("net/dev", net);
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
    return nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Decodes the batch and finds one sample by name (and optional label value). */
static Vigil__Envelope *decode(sigbuf_t *b)
{
    uint8_t *buf;
    size_t len;
    Vigil__Envelope *env = NULL;
    assert_int_equal(sigbuf_encode(b, "ag-0123456789abcdef", 1, &buf, &len), 0);
    assert_int_equal(vg_envelope_decode(buf, len, &env, NULL), VG_DECODE_OK);
    free(buf);
    return env;
}

static const Vigil__Signal *find(const Vigil__Envelope *env, const char *name, const char *label)
{
    for (size_t i = 0; i < env->signals->n_signals; i++) {
        const Vigil__Signal *s = env->signals->signals[i];
        if (strcmp(s->name, name) != 0)
            continue;
        if (!label)
            return s;
        for (size_t j = 0; j < s->n_labels; j++) {
            if (strcmp(s->labels[j]->value, label) == 0)
                return s;
        }
    }
    return NULL;
}

static const char *label_of(const Vigil__Signal *s, const char *key)
{
    for (size_t j = 0; j < s->n_labels; j++) {
        if (strcmp(s->labels[j]->key, key) == 0)
            return s->labels[j]->value;
    }
    return NULL;
}

static size_t count(const Vigil__Envelope *env, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < env->signals->n_signals; i++)
        n += strcmp(env->signals->signals[i]->name, name) == 0;
    return n;
}

/* The disk sample whose mount label is mount, or NULL. */
static const Vigil__Signal *disk(const Vigil__Envelope *env, const char *mount)
{
    for (size_t i = 0; i < env->signals->n_signals; i++) {
        const Vigil__Signal *s = env->signals->signals[i];
        const char *m = label_of(s, "mount");
        if (strcmp(s->name, "host.disk.used_pct") == 0 && m && strcmp(m, mount) == 0)
            return s;
    }
    return NULL;
}

static const struct threshold_rule rules[] = {{"host.mem.used_pct", 85, 95, 5, false}};

static void test_two_cycles(void **state)
{
    (void)state;
    host_collector_t *h = host_collector_new(root);
    sigbuf_t *b = sigbuf_new();
    thresholds_t *t = thresholds_new(rules, 1);
    struct collect_ctx ctx = {.batch = b, .thresholds = t, .now_ms = 1000};

    host_collector_run(h, &ctx);
    Vigil__Envelope *env = decode(b);
    /* First cycle: no CPU or network rate yet, everything instantaneous is there. */
    assert_null(find(env, "host.cpu.busy_pct", NULL));
    assert_null(find(env, "host.net.rx_bytes_per_s", NULL));
    const Vigil__Signal *mem = find(env, "host.mem.used_pct", NULL);
    assert_non_null(mem);
    assert_true(mem->value == 75.0);
    assert_int_equal(mem->state, VIGIL__SIGNAL_STATE__SIGNAL_STATE_OK);
    assert_true(find(env, "host.load.1m", NULL)->value == 2.16);
    assert_true(find(env, "host.oom.kills", NULL)->value == 17);
    /* Real filesystems only: / is measured; tmpfs, proc and NFS are not. */
    const Vigil__Signal *disk = find(env, "host.disk.used_pct", "/");
    assert_non_null(disk);
    assert_true(disk->value >= 0 && disk->value <= 100);
    assert_null(find(env, "host.disk.used_pct", "/run"));
    assert_null(find(env, "host.disk.used_pct", "/mnt/nfs"));
    vg_envelope_free(env);
    sigbuf_clear(b);

    /* Second cycle: CPU busy = (1000 - 500 idle - 50 iowait) / 1000 jiffies = 45 %. */
    put("stat", "cpu  1300 20 600 8500 250 0 80 0 0 0\n");
    put("meminfo", "MemTotal:        4000000 kB\nMemAvailable:     400000 kB\n");
    char net[1024];
    snprintf(net, sizeof(net), "%s  eth0: 3000 10 1 0 0 0 0 0 2000 20 0 0 0 0 0 0\n", NET_HEADER);
    put("net/dev", net);
    usleep(100 * 1000);
    ctx.crossed = false;
    host_collector_run(h, &ctx);
    env = decode(b);
    const Vigil__Signal *cpu = find(env, "host.cpu.busy_pct", NULL);
    assert_non_null(cpu);
    assert_true(cpu->value > 44.99 && cpu->value < 45.01);
    const Vigil__Signal *rx = find(env, "host.net.rx_bytes_per_s", "eth0");
    assert_non_null(rx);
    assert_true(rx->value > 0);
    assert_true(find(env, "host.net.tx_bytes_per_s", "eth0")->value == 0);
    /* Memory at 90 %: a warning crossing, flagged for immediate sending. */
    mem = find(env, "host.mem.used_pct", NULL);
    assert_true(mem->value == 90.0);
    assert_int_equal(mem->state, VIGIL__SIGNAL_STATE__SIGNAL_STATE_WARNING);
    assert_true(ctx.crossed);
    vg_envelope_free(env);

    thresholds_destroy(&t);
    sigbuf_destroy(&b);
    host_collector_destroy(&h);
}

static void test_missing_sources_are_counted_not_fatal(void **state)
{
    (void)state;
    host_collector_t *h = host_collector_new("/nonexistent-proc");
    sigbuf_t *b = sigbuf_new();
    struct collect_ctx ctx = {.batch = b, .now_ms = 1};
    host_collector_run(h, &ctx);
    assert_true(ctx.errors >= 4);
    /* Nothing from /proc. The filesystem holding "/" needs only statfs: still measured. */
    assert_int_equal(sigbuf_count(b), 1);
    Vigil__Envelope *env = decode(b);
    assert_non_null(disk(env, "/"));
    vg_envelope_free(env);
    sigbuf_destroy(&b);
    host_collector_destroy(&h);
}

/* One collector cycle over this mount table ("@" in it stands for the fixture directory). */
static Vigil__Envelope *run_with_mountinfo(const char *mountinfo)
{
    char text[4096];
    size_t used = 0, rootlen = strlen(root);
    for (const char *p = mountinfo; *p; p++) {
        assert_true(used + rootlen + 1 < sizeof(text));
        if (*p == '@') {
            memcpy(text + used, root, rootlen);
            used += rootlen;
        } else {
            text[used++] = *p;
        }
    }
    text[used] = '\0';
    put("self/mountinfo", text);
    host_collector_t *h = host_collector_new(root);
    sigbuf_t *b = sigbuf_new();
    struct collect_ctx ctx = {.batch = b, .now_ms = 1000};
    host_collector_run(h, &ctx);
    Vigil__Envelope *env = decode(b);
    sigbuf_destroy(&b);
    host_collector_destroy(&h);
    return env;
}

static void make_dir(const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", root, name);
    assert_true(mkdir(path, 0755) == 0 || errno == EEXIST);
}

/* One series per filesystem, however many mounts show it. */
static void test_disk_once_per_filesystem(void **state)
{
    (void)state;
    make_dir("a");
    make_dir("bb");
    make_dir("cc");
    make_dir("ccc");
    /* The root filesystem bind-mounted at the fixture directory (listed before "/") and at
     * /run/netns by `ip netns`; 8:16 as a bind mount of one of its directories and whole at a
     * longer path; 8:32 whole at two paths. */
    Vigil__Envelope *env =
        run_with_mountinfo("40 27 254:0 @ @ rw,relatime - ext4 /dev/vda rw\n"
                           "27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
                           "41 27 254:0 /run/netns /run/netns rw shared:2 - ext4 /dev/vda rw\n"
                           "42 27 8:16 /sub @/a rw - xfs /dev/sdb rw\n"
                           "43 27 8:16 / @/bb rw - xfs /dev/sdb rw\n"
                           "44 27 8:32 / @/ccc rw - btrfs /dev/sdc rw\n"
                           "45 27 8:32 / @/cc rw - btrfs /dev/sdc rw\n"
                           "29 27 0:21 / /proc rw - proc proc rw\n");
    char path[256];
    assert_int_equal(count(env, "host.disk.used_pct"), 3);
    const Vigil__Signal *slash = disk(env, "/");
    assert_non_null(slash);
    assert_string_equal(label_of(slash, "fstype"), "ext4");
    assert_null(disk(env, root));
    assert_null(disk(env, "/run/netns"));
    /* The whole filesystem rather than the bind mount of a directory in it. */
    snprintf(path, sizeof(path), "%s/bb", root);
    assert_non_null(disk(env, path));
    assert_string_equal(label_of(disk(env, path), "fstype"), "xfs");
    /* Of two whole mounts, the shorter path. */
    snprintf(path, sizeof(path), "%s/cc", root);
    assert_non_null(disk(env, path));
    assert_string_equal(label_of(disk(env, path), "fstype"), "btrfs");
    vg_envelope_free(env);

    /* A chroot on a bind mount: "/" is listed, as a directory of a filesystem that is also
     * mounted whole elsewhere. The reader looks for "/": that is the name it gets. */
    env = run_with_mountinfo("60 1 8:48 /srv/chroot / rw - ext4 /dev/sdd rw\n"
                             "61 60 8:48 / @/a rw - ext4 /dev/sdd rw\n");
    assert_int_equal(count(env, "host.disk.used_pct"), 1);
    assert_non_null(disk(env, "/"));
    vg_envelope_free(env);
}

/* In a chroot, or a container whose root is no mount of its own, "/" is not in the table. */
static void test_disk_slash_missing_from_mount_table(void **state)
{
    (void)state;
    struct stat st;
    assert_int_equal(stat("/", &st), 0);
    unsigned maj = major(st.st_dev), min = minor(st.st_dev);
    char table[1024];

    /* A mount of the filesystem holding "/" is listed elsewhere: reported once, as "/", with
     * that mount's type. */
    snprintf(table, sizeof(table),
             "50 1 %u:%u /srv/chroot/x @ rw - xfs /dev/vda rw\n"
             "51 50 0:21 / /proc rw - proc proc rw\n",
             maj, min);
    Vigil__Envelope *env = run_with_mountinfo(table);
    assert_int_equal(count(env, "host.disk.used_pct"), 1);
    assert_non_null(disk(env, "/"));
    assert_string_equal(label_of(disk(env, "/"), "fstype"), "xfs");
    vg_envelope_free(env);

    /* Nothing in the table on its device: "/" is measured anyway, its type named by statfs. */
    snprintf(table, sizeof(table),
             "50 1 %u:%u / @ rw - ext4 /dev/vdb rw\n"
             "51 50 0:21 / /proc rw - proc proc rw\n",
             maj, min + 1);
    env = run_with_mountinfo(table);
    assert_int_equal(count(env, "host.disk.used_pct"), 2);
    const Vigil__Signal *slash = disk(env, "/");
    assert_non_null(slash);
    assert_true(slash->value >= 0 && slash->value <= 100);
    assert_non_null(label_of(slash, "fstype"));
    assert_true(label_of(slash, "fstype")[0] != '\0');
    assert_non_null(disk(env, root));
    vg_envelope_free(env);

    /* "/" listed as a memory-backed filesystem stays out, as every tmpfs does. */
    env = run_with_mountinfo("1 0 0:1 / / rw - rootfs rootfs rw\n"
                             "50 1 0:21 / /proc rw - proc proc rw\n");
    assert_int_equal(count(env, "host.disk.used_pct"), 0);
    vg_envelope_free(env);
}

/* ---- The evidence snapshot -------------------------------------------------------------- */

static int snapshot(struct sink *s, const char *proc_root, size_t cap, char *err, size_t errlen)
{
    struct artifact_writer out = {sink_write, s};
    err[0] = '\0';
    return host_write_snapshot(proc_root, NULL, cap, &out, err, errlen);
}

static void put_process(int pid, const char *comm, unsigned long long ticks, unsigned long rss,
                        const char *cmdline, size_t cmdline_len)
{
    char name[128], text[512];
    snprintf(name, sizeof(name), "%s/%d", root, pid);
    mkdir(name, 0755);
    snprintf(name, sizeof(name), "%d/stat", pid);
    snprintf(text, sizeof(text),
             "%d (%s) S 1 %d %d 0 -1 0 0 0 0 0 %llu 0 0 0 20 0 1 0 100 1000 %lu 0 0 0 0 0 0 0 0 "
             "0 0 0 0 0 17 0 0 0 0 0 0\n",
             pid, comm, pid, pid, ticks, rss);
    put(name, text);
    snprintf(name, sizeof(name), "%d/status", pid);
    snprintf(text, sizeof(text), "Name:\t%s\nUid:\t0\t0\t0\t0\n", comm);
    put(name, text);
    snprintf(name, sizeof(name), "%s/%d/cmdline", root, pid);
    FILE *f = fopen(name, "w");
    assert_non_null(f);
    fwrite(cmdline, 1, cmdline_len, f);
    fclose(f);
}

/* The line after the one starting with heading, and the lines below it up to the next one
 * that does not start with two spaces: a section of the snapshot. Caller frees. */
static char *section(const char *text, const char *heading)
{
    const char *at = strstr(text, heading);
    assert_non_null(at);
    const char *start = strchr(at, '\n');
    assert_non_null(start);
    start++;
    const char *end = start;
    while (strncmp(end, "  ", 2) == 0)
        end = strchr(end, '\n') + 1;
    return strndup(start, (size_t)(end - start));
}

static void test_snapshot_of_fixture(void **state)
{
    (void)state;
    put("stat", "cpu  1000 10 500 8000 200 0 40 0 0 0\ncpu0 500 5 250 4000 100 0 20 0 0 0\n"
                "cpu1 500 5 250 4000 100 0 20 0 0 0\nbtime 1700000000\n");
    put("meminfo", "MemTotal:        4000000 kB\nMemFree:          100000 kB\n"
                   "MemAvailable:    1000000 kB\nSwapTotal:       2097148 kB\n"
                   "SwapFree:        1048574 kB\n");
    put("uptime", "5000.42 9000.00\n");
    char net[1024];
    snprintf(net, sizeof(net), "%s  eth0: 1000 10 1 0 0 0 0 0 2000 20 0 0 0 0 0 0\n", NET_HEADER);
    put("net/dev", net);
    put_process(100, "postgres", 5000, 25600, "postgres\0-D\0/var/lib/pg\0", 24);
    put_process(200, "java", 90000, 51200, "java\0-jar\0app.jar\0", 19);
    put_process(300, "kworker/0:1", 10, 0, "", 0);

    struct sink s = {0};
    char err[256];
    assert_int_equal(snapshot(&s, root, 1 << 20, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_non_null(strstr(s.data, "\nuptime: 0d 01:23:20 (5000 s), booted "));
    assert_non_null(strstr(s.data, "\nload: 2.16 1.65 1.37 (1, 5, 15 min); 2 runnable of 93 "
                                   "threads\n"));
    /* /proc/stat did not move during the sample: nothing to show, and it says so. */
    assert_non_null(strstr(s.data, "\ncpu: no time counted over the 200 ms sample on 2 CPUs\n"));
    assert_non_null(strstr(s.data, "\nmemory: 75.0% used (MemTotal - MemAvailable), 976 of 3906 "
                                   "MiB available; swap 1023 of 2047 MiB free\n"));
    assert_non_null(strstr(s.data, "\n  MemTotal:        4000000 kB\n"));
    assert_non_null(strstr(s.data, "\n  SwapFree:        1048574 kB\n"));
    assert_non_null(strstr(s.data, "\noom kills since boot: 17\n"));

    /* Real filesystems only, as host.disk.used_pct picks them. */
    char *fs = section(s.data, "filesystems (");
    assert_true(strncmp(fs, "  MOUNT ", 8) == 0);
    assert_non_null(strstr(fs, "\n  /          "));
    assert_non_null(strstr(fs, " ext4 "));
    assert_non_null(strstr(fs, " /dev/root "));
    assert_null(strstr(fs, "/run"));
    assert_null(strstr(fs, "/proc"));
    assert_null(strstr(fs, "nfs"));
    free(fs);

    char *ifaces = section(s.data, "network interfaces (");
    assert_non_null(strstr(ifaces, "\n  eth0 "));
    assert_non_null(strstr(ifaces,
                           "  eth0                        1000           10        1        0 "
                           "           2000           20        0        0\n"));
    free(ifaces);

    /* Top by memory: java (200 MiB), postgres (100 MiB), then the kernel thread. */
    long page_kib = sysconf(_SC_PAGESIZE) / 1024;
    char *top = section(s.data, "top 10 processes by resident memory");
    char want[512];
    snprintf(want, sizeof(want),
             "  PID     USER               CPU%%    RSS_KIB NAMESPACE/POD/CONTAINER COMMAND\n"
             "  200     0(root)             0.0 %10ld -                       java -jar app.jar\n"
             "  100     0(root)             0.0 %10ld -                       postgres -D "
             "/var/lib/pg\n"
             "  300     0(root)             0.0          0 -                       [kworker/0:1]\n",
             51200 * page_kib, 25600 * page_kib);
    assert_string_equal(top, want);
    free(top);
    /* Top by CPU: no tick in the sample, so the busiest over their lives come first. */
    top = section(s.data, "top 10 processes by CPU");
    assert_true(strstr(top, "  200 ") < strstr(top, "  100 "));
    assert_true(strstr(top, "  100 ") < strstr(top, "  300 "));
    free(top);
    free(s.data);
}

static void test_snapshot_cap_and_writer_errors(void **state)
{
    (void)state;
    struct sink full = {0};
    char err[256];
    assert_int_equal(snapshot(&full, root, 1 << 20, err, sizeof(err)), 0);
    const size_t caps[] = {0, 100, full.len / 2};
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        struct sink s = {0};
        assert_int_equal(snapshot(&s, root, caps[i], err, sizeof(err)), -EFBIG);
        assert_true(s.len <= caps[i]);
        assert_non_null(strstr(err, "cap"));
        if (caps[i] >= 100)
            assert_non_null(strstr(s.data, "# truncated: "));
        free(s.data);
    }
    free(full.data);

    struct sink failing = {.fail_after = 1, .fail_with = -EPIPE};
    assert_int_equal(snapshot(&failing, root, 1 << 20, err, sizeof(err)), -EPIPE);
    assert_int_equal(failing.calls, 1);
    assert_non_null(strstr(err, strerror(EPIPE)));

    struct sink none = {0};
    assert_int_equal(snapshot(&none, "/nonexistent-proc", 4096, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "/nonexistent-proc"));
    assert_int_equal(none.len, 0);
}

/* This machine: every section is there, and a process burning CPU shows in the CPU list. */
static void test_snapshot_live(void **state)
{
    (void)state;
    pid_t spinner = fork();
    assert_true(spinner >= 0);
    if (spinner == 0) {
        for (volatile unsigned long i = 0;; i++) {
        }
    }
    usleep(50 * 1000);
    struct sink s = {0};
    char err[256];
    int r = snapshot(&s, NULL, 64 << 20, err, sizeof(err));
    kill(spinner, SIGKILL);
    waitpid(spinner, NULL, 0);
    assert_int_equal(r, 0);
    const char *needles[] = {"\nuptime: ",
                             "\nload: ",
                             "% busy over ",
                             "\n  MemTotal: ",
                             "\noom kills since boot: ",
                             "\nfilesystems (",
                             "\nnetwork interfaces (",
                             "\n  lo "};
    for (size_t i = 0; i < sizeof(needles) / sizeof(needles[0]); i++) {
        if (!strstr(s.data, needles[i]))
            fail_msg("no \"%s\" in the snapshot", needles[i]);
    }
    char *top = section(s.data, "top 10 processes by CPU");
    char pid[16];
    snprintf(pid, sizeof(pid), "\n  %-7d ", (int)spinner);
    assert_non_null(strstr(top, pid));
    free(top);
    free(s.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_cycles),
        cmocka_unit_test(test_missing_sources_are_counted_not_fatal),
        cmocka_unit_test(test_disk_once_per_filesystem),
        cmocka_unit_test(test_disk_slash_missing_from_mount_table),
        cmocka_unit_test(test_snapshot_of_fixture),
        cmocka_unit_test(test_snapshot_cap_and_writer_errors),
        cmocka_unit_test(test_snapshot_live),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
