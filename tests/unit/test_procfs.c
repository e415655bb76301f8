/*
 * /proc parsers against fixed files: copies of this machine's /proc (tests/unit/fixtures/procfs,
 * plain names) and hand-written edge cases (*_hand, *_t0, cgroup_*, ...). Every parser is also
 * fed truncated, mutated and random input, in exactly sized heap buffers so that the address
 * sanitizer catches any read past the end.
 */
#include <setjmp.h> /* cmocka needs these first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "procfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

/* ---- Fixtures --------------------------------------------------------------------------- */

static void fixture_path(const char *name, char *path, size_t cap)
{
    const char *dir = getenv("VIGIL_FIXTURES");
    if (!dir)
        fail_msg("VIGIL_FIXTURES is not set");
    int n = snprintf(path, cap, "%s/procfs/%s", dir, name);
    assert_true(n > 0 && (size_t)n < cap);
}

/* The fixture's bytes in a heap block of exactly their length (no NUL): caller frees. */
static char *load(const char *name, size_t *ret_len)
{
    char path[512];
    static char buf[65536];
    size_t len = 0;
    fixture_path(name, path, sizeof(path));
    int r = procfs_read(path, buf, sizeof(buf), &len);
    if (r != 0)
        fail_msg("cannot read fixture %s: %s", path, strerror(-r));
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, buf, len);
    *ret_len = len;
    return copy;
}

/* A string literal as an exactly sized heap buffer. */
static char *dup_bytes(const char *s, size_t len)
{
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, s, len);
    return copy;
}

/* ---- Record collectors ------------------------------------------------------------------ */

#define MAX_RECORDS 64

struct socks {
    size_t n;
    struct procfs_sock s[MAX_RECORDS];
};

static int collect_sock(const struct procfs_sock *sock, void *userdata)
{
    struct socks *out = userdata;
    if (out->n == MAX_RECORDS)
        return -ENOSPC;
    out->s[out->n++] = *sock;
    return 0;
}

struct devs {
    size_t n;
    struct procfs_net_dev d[MAX_RECORDS];
};

static int collect_dev(const struct procfs_net_dev *dev, void *userdata)
{
    struct devs *out = userdata;
    if (out->n == MAX_RECORDS)
        return -ENOSPC;
    out->d[out->n++] = *dev;
    return 0;
}

static const struct procfs_net_dev *find_dev(const struct devs *devs, const char *name)
{
    for (size_t i = 0; i < devs->n; i++)
        if (strcmp(devs->d[i].name, name) == 0)
            return &devs->d[i];
    return NULL;
}

struct mount_rec {
    char device[128];
    char mountpoint[128];
    char fstype[32];
    bool read_only;
};

struct mounts {
    size_t n;
    struct mount_rec m[MAX_RECORDS];
};

/* Copies a field the test's fixtures keep short; a longer one fails the test. */
static void copy_field(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    assert_true(n < cap);
    memcpy(dst, src, n + 1);
}

static int collect_mount(const struct procfs_mount *mount, void *userdata)
{
    struct mounts *out = userdata;
    if (out->n == MAX_RECORDS)
        return -ENOSPC;
    struct mount_rec *m = &out->m[out->n++];
    copy_field(m->device, sizeof(m->device), mount->device);
    copy_field(m->mountpoint, sizeof(m->mountpoint), mount->mountpoint);
    copy_field(m->fstype, sizeof(m->fstype), mount->fstype);
    m->read_only = mount->read_only;
    return 0;
}

struct mountinfo_rec {
    uint32_t mount_id, parent_id, major, minor;
    char root[128];
    char mountpoint[128];
    char fstype[32];
    bool read_only;
};

struct mountinfos {
    size_t n;
    struct mountinfo_rec m[MAX_RECORDS];
};

static int collect_mountinfo(const struct procfs_mountinfo *mount, void *userdata)
{
    struct mountinfos *out = userdata;
    if (out->n == MAX_RECORDS)
        return -ENOSPC;
    struct mountinfo_rec *m = &out->m[out->n++];
    m->mount_id = mount->mount_id;
    m->parent_id = mount->parent_id;
    m->major = mount->major;
    m->minor = mount->minor;
    copy_field(m->root, sizeof(m->root), mount->root);
    copy_field(m->mountpoint, sizeof(m->mountpoint), mount->mountpoint);
    copy_field(m->fstype, sizeof(m->fstype), mount->fstype);
    m->read_only = mount->read_only;
    return 0;
}

struct unixes {
    size_t n;
    struct procfs_unix_sock u[MAX_RECORDS];
};

static int collect_unix(const struct procfs_unix_sock *sock, void *userdata)
{
    struct unixes *out = userdata;
    if (out->n == MAX_RECORDS)
        return -ENOSPC;
    out->u[out->n++] = *sock;
    return 0;
}

static void assert_addr(const struct procfs_addr *addr, const char *expected)
{
    char text[64];
    assert_int_equal(procfs_addr_format(addr, text, sizeof(text)), 0);
    assert_string_equal(text, expected);
}

static bool little_endian(void)
{
    const uint16_t one = 1;
    uint8_t first;
    memcpy(&first, &one, 1);
    return first == 1;
}

/* ---- Reading ---------------------------------------------------------------------------- */

static void test_read_bounds_and_errors(void **state)
{
    (void)state;
    char path[512], buf[4096];
    size_t len = 12345;
    fixture_path("loadavg", path, sizeof(path));

    assert_int_equal(procfs_read(path, buf, sizeof(buf), &len), 0);
    assert_int_equal(len, 25);
    assert_int_equal(buf[len], '\0');

    /* 25 bytes need a 26-byte buffer (the NUL); a byte less is -EFBIG, len untouched. */
    len = 999;
    assert_int_equal(procfs_read(path, buf, 26, &len), 0);
    assert_int_equal(len, 25);
    len = 999;
    assert_int_equal(procfs_read(path, buf, 25, &len), -EFBIG);
    assert_int_equal(len, 999);
    assert_int_equal(procfs_read(path, buf, 0, &len), -EINVAL);

    /* errno passes through: a vanished process, a directory. */
    assert_int_equal(procfs_read("/proc/999999999/stat", buf, sizeof(buf), &len), -ENOENT);
    fixture_path("", path, sizeof(path));
    assert_int_equal(procfs_read(path, buf, sizeof(buf), &len), -EISDIR);
    assert_int_equal(len, 999);
}

static void test_read_live_self(void **state)
{
    (void)state;
    char buf[4096];
    size_t len;
    int dirfd = open("/proc/self", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(dirfd >= 0);
    assert_int_equal(procfs_read_at(dirfd, "stat", buf, sizeof(buf), &len), 0);
    close(dirfd);

    struct procfs_pid_stat st;
    assert_int_equal(procfs_parse_pid_stat(buf, len, &st), 0);
    assert_int_equal(st.pid, getpid());
    assert_int_equal(st.ppid, getppid());
    /* The kernel keeps the first 15 bytes of the executable's name. */
    assert_int_equal(strncmp(st.comm, program_invocation_short_name, 15), 0);
    assert_int_equal(st.state, 'R');
    assert_true(st.rss_pages > 0);

    assert_int_equal(procfs_read("/proc/self/status", buf, sizeof(buf), &len), 0);
    uid_t uid;
    assert_int_equal(procfs_parse_pid_status_uid(buf, len, &uid), 0);
    assert_int_equal(uid, getuid());
}

struct stream_state {
    struct socks socks;
    int skipped;
    size_t chunks;
    size_t max_chunk;
    int fail_after;
};

static int stream_chunk(const char *chunk, size_t len, void *userdata)
{
    struct stream_state *st = userdata;
    assert_int_equal(chunk[len - 1], '\n'); /* whole lines only */
    st->chunks++;
    if (len > st->max_chunk)
        st->max_chunk = len;
    if (st->fail_after && (int)st->chunks > st->fail_after)
        return -ECANCELED;
    int r = procfs_parse_net_tcp(chunk, len, AF_INET, collect_sock, &st->socks);
    if (r < 0)
        return r;
    st->skipped += r;
    return 0;
}

/* A big /proc/net/tcp read in pieces gives the same sockets as the whole file. */
static void test_read_stream(void **state)
{
    (void)state;
    char path[512], buf[400];
    fixture_path("tcp", path, sizeof(path));

    struct stream_state st = {0};
    assert_int_equal(procfs_read_stream(AT_FDCWD, path, buf, sizeof(buf), stream_chunk, &st), 0);
    assert_int_equal(st.skipped, 0);
    assert_int_equal(st.socks.n, 30);
    assert_true(st.chunks > 5);
    assert_true(st.max_chunk <= sizeof(buf));
    assert_int_equal(st.socks.s[0].state, PROCFS_TCP_LISTEN);
    assert_int_equal(st.socks.s[0].inode, 1060);
    assert_int_equal(st.socks.s[29].local.port, 0x8DD0);

    /* The callback's error stops the walk and comes back. */
    struct stream_state failing = {.fail_after = 2};
    assert_int_equal(procfs_read_stream(AT_FDCWD, path, buf, sizeof(buf), stream_chunk, &failing),
                     -ECANCELED);
    assert_int_equal(failing.chunks, 3);

    /* A line (the header is 150 bytes) longer than the buffer. */
    struct stream_state small = {0};
    assert_int_equal(procfs_read_stream(AT_FDCWD, path, buf, 100, stream_chunk, &small), -EFBIG);
    assert_int_equal(procfs_read_stream(AT_FDCWD, "/nonexistent", buf, 100, stream_chunk, &small),
                     -ENOENT);
}

/* ---- CPU -------------------------------------------------------------------------------- */

static void test_stat_live(void **state)
{
    (void)state;
    size_t len;
    char *buf = load("stat", &len);
    struct procfs_cpu cpu;
    assert_int_equal(procfs_parse_stat(buf, len, &cpu), 0);
    /* "cpu  139339 0 92014 378274 10823 0 4439 0 0 0", not the cpu0 line after it */
    assert_int_equal(cpu.user, 139339);
    assert_int_equal(cpu.nice, 0);
    assert_int_equal(cpu.system, 92014);
    assert_int_equal(cpu.idle, 378274);
    assert_int_equal(cpu.iowait, 10823);
    assert_int_equal(cpu.irq, 0);
    assert_int_equal(cpu.softirq, 4439);
    assert_int_equal(cpu.steal, 0);
    free(buf);
}

static void parse_stat_fixture(const char *name, struct procfs_cpu *cpu)
{
    size_t len;
    char *buf = load(name, &len);
    assert_int_equal(procfs_parse_stat(buf, len, cpu), 0);
    free(buf);
}

static void test_cpu_busy_pct(void **state)
{
    (void)state;
    struct procfs_cpu t0, t1, regressed, old;
    parse_stat_fixture("stat_t0", &t0);
    parse_stat_fixture("stat_t1", &t1);
    parse_stat_fixture("stat_regressed", &regressed);

    /* +450 busy (user 300, nice 10, system 100, softirq 40), +500 idle, +50 iowait. */
    double pct = -1;
    assert_int_equal(procfs_cpu_busy_pct(&t0, &t1, &pct), 0);
    assert_float_equal(pct, 45.0, 1e-9);

    /* No time passed: 0, not a division by zero. */
    pct = -1;
    assert_int_equal(procfs_cpu_busy_pct(&t1, &t1, &pct), 0);
    assert_float_equal(pct, 0.0, 0);

    /* idle + iowait went backwards: no value, pct untouched; the next interval works. */
    pct = -1;
    assert_int_equal(procfs_cpu_busy_pct(&t1, &regressed, &pct), -ERANGE);
    assert_float_equal(pct, -1, 0);
    assert_int_equal(procfs_cpu_busy_pct(&t1, &t0, &pct), -ERANGE);
    assert_float_equal(pct, -1, 0);

    /* Sums that overflow 64 bits are a regression too, never a wrong percentage. */
    struct procfs_cpu huge = t1;
    huge.user = UINT64_MAX;
    assert_int_equal(procfs_cpu_busy_pct(&t1, &huge, &pct), -ERANGE);
    assert_float_equal(pct, -1, 0);

    /* A kernel printing only user nice system idle. */
    parse_stat_fixture("stat_old", &old);
    assert_int_equal(old.idle, 4);
    assert_int_equal(old.iowait, 0);
    assert_int_equal(old.steal, 0);
}

static void test_stat_malformed(void **state)
{
    (void)state;
    struct procfs_cpu cpu = {.user = 77};
    const char *cases[] = {
        "cpu0 1 2 3 4 5 6 7 8\n",   /* no aggregate line */
        "cpu  1 2 3\n",             /* too few fields */
        "cpu  1 2 -3 4 5 6 7 8\n",  /* a sign */
        "cpu  1 2 3 4 0x5 6 7 8\n", /* not decimal */
        "cpu  99999999999999999999 2 3 4\n",
        "cpu  1 2 3 4", /* no newline: truncated */
        "",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *buf = dup_bytes(cases[i], strlen(cases[i]));
        assert_int_equal(procfs_parse_stat(buf, strlen(cases[i]), &cpu), -EINVAL);
        assert_int_equal(cpu.user, 77);
        free(buf);
    }

    /* Every cut of the file before the end of the cpu line fails; every cut after it works. */
    size_t len;
    char *buf = load("stat_t0", &len);
    size_t first_line = (size_t)((char *)memchr(buf, '\n', len) - buf) + 1;
    for (size_t cut = 0; cut <= len; cut++) {
        char *part = dup_bytes(buf, cut);
        int r = procfs_parse_stat(part, cut, &cpu);
        assert_int_equal(r, cut < first_line ? -EINVAL : 0);
        free(part);
    }
    assert_int_equal(cpu.user, 1000);
    free(buf);
}

/* ---- Memory, load, OOM ------------------------------------------------------------------ */

static void test_meminfo(void **state)
{
    (void)state;
    size_t len;
    struct procfs_mem mem;
    char *buf = load("meminfo", &len);
    assert_int_equal(procfs_parse_meminfo(buf, len, &mem), 0);
    assert_int_equal(mem.total_bytes, 24683620ULL * 1024);
    assert_int_equal(mem.available_bytes, 24056588ULL * 1024);
    assert_int_equal(mem.swap_total_bytes, 0);
    assert_float_equal(mem.used_pct, (24683620.0 - 24056588.0) / 24683620.0 * 100, 1e-9);
    free(buf);

    buf = load("meminfo_hand", &len);
    assert_int_equal(procfs_parse_meminfo(buf, len, &mem), 0);
    assert_float_equal(mem.used_pct, 75.0, 1e-9);
    assert_int_equal(mem.swap_total_bytes, 2097152ULL * 1024);
    assert_int_equal(mem.swap_free_bytes, 1048576ULL * 1024);
    free(buf);

    /* Refused, output untouched. */
    const char *refused[] = {"meminfo_no_available", "meminfo_garbled"};
    for (size_t i = 0; i < 2; i++) {
        mem.total_bytes = 42;
        buf = load(refused[i], &len);
        assert_int_equal(procfs_parse_meminfo(buf, len, &mem), -EINVAL);
        assert_int_equal(mem.total_bytes, 42);
        free(buf);
    }
    const char *zero = "MemTotal: 0 kB\nMemAvailable: 0 kB\n";
    assert_int_equal(procfs_parse_meminfo(zero, strlen(zero), &mem), -EINVAL);
    const char *no_unit = "MemTotal: 100\nMemAvailable: 50\n";
    assert_int_equal(procfs_parse_meminfo(no_unit, strlen(no_unit), &mem), -EINVAL);
    /* 2^54 kB is 2^64 bytes. */
    const char *huge = "MemTotal: 18014398509481984 kB\nMemAvailable: 1 kB\n";
    assert_int_equal(procfs_parse_meminfo(huge, strlen(huge), &mem), -ERANGE);
    assert_int_equal(mem.total_bytes, 42);
    /* MemAvailable above MemTotal (a lying container view): 0%, not negative. */
    const char *over = "MemTotal: 100 kB\nMemAvailable: 200 kB\n";
    assert_int_equal(procfs_parse_meminfo(over, strlen(over), &mem), 0);
    assert_float_equal(mem.used_pct, 0.0, 0);
}

static void test_loadavg(void **state)
{
    (void)state;
    size_t len;
    struct procfs_load load_avg;
    char *buf = load("loadavg", &len);
    assert_int_equal(procfs_parse_loadavg(buf, len, &load_avg), 0);
    assert_float_equal(load_avg.avg1, 2.16, 1e-9);
    assert_float_equal(load_avg.avg5, 1.65, 1e-9);
    assert_float_equal(load_avg.avg15, 1.37, 1e-9);
    assert_int_equal(load_avg.runnable, 2);
    assert_int_equal(load_avg.threads, 93);
    free(buf);

    const char *bad[] = {"-1.00 0.5 0.5 1/2 3\n", "1.5e3 0.5 0.5 1/2 3\n", "1. 0.5 0.5 1/2 3\n",
                         "0.5 0.5 0.5 1-2 3\n",   "0.5 0.5 0.5\n",         "0.5 0.5 0.5 1/2 3"};
    load_avg.avg1 = 9;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(procfs_parse_loadavg(bad[i], strlen(bad[i]), &load_avg), -EINVAL);
    assert_float_equal(load_avg.avg1, 9, 0);
}

static void test_vmstat_oom_kill(void **state)
{
    (void)state;
    size_t len;
    uint64_t count = 99;
    char *buf = load("vmstat", &len);
    assert_int_equal(procfs_parse_vmstat_oom_kill(buf, len, &count), 0);
    assert_int_equal(count, 0);
    free(buf);

    buf = load("vmstat_hand", &len); /* oom_kill 17, and an oom_kill_x line that is not it */
    assert_int_equal(procfs_parse_vmstat_oom_kill(buf, len, &count), 0);
    assert_int_equal(count, 17);
    free(buf);

    count = 99;
    buf = load("vmstat_old", &len);
    assert_int_equal(procfs_parse_vmstat_oom_kill(buf, len, &count), -ENOENT);
    assert_int_equal(count, 99);
    free(buf);
    const char *garbled = "oom_kill many\n";
    assert_int_equal(procfs_parse_vmstat_oom_kill(garbled, strlen(garbled), &count), -EINVAL);
    assert_int_equal(count, 99);
}

/* ---- Network interfaces ----------------------------------------------------------------- */

static void test_net_dev(void **state)
{
    (void)state;
    size_t len;
    struct devs devs = {0};
    char *buf = load("net_dev", &len);
    assert_int_equal(procfs_parse_net_dev(buf, len, collect_dev, &devs), 0);
    free(buf);
    assert_int_equal(devs.n, 4);
    const struct procfs_net_dev *lo = find_dev(&devs, "lo");
    const struct procfs_net_dev *eth0 = find_dev(&devs, "eth0");
    assert_non_null(lo);
    assert_non_null(eth0);
    assert_int_equal(lo->rx_bytes, 4121616830ULL);
    assert_int_equal(lo->rx_packets, 3315301);
    assert_int_equal(eth0->rx_bytes, 37870322);
    assert_int_equal(eth0->rx_packets, 1449);
    assert_int_equal(eth0->tx_bytes, 85754);
    assert_int_equal(eth0->tx_packets, 1096);

    /* "eth0:<u64 max>" with no space; a 15-character name; a 21-character one, a short line
     * and a negative count skipped (3). */
    memset(&devs, 0, sizeof(devs));
    buf = load("net_dev_hand", &len);
    assert_int_equal(procfs_parse_net_dev(buf, len, collect_dev, &devs), 3);
    free(buf);
    assert_int_equal(devs.n, 4);
    eth0 = find_dev(&devs, "eth0");
    assert_non_null(eth0);
    assert_int_equal(eth0->rx_bytes, UINT64_MAX);
    assert_int_equal(eth0->rx_packets, 7);
    assert_int_equal(eth0->rx_errs, 1);
    assert_int_equal(eth0->rx_drop, 2);
    assert_int_equal(eth0->tx_bytes, 900);
    assert_int_equal(eth0->tx_packets, 8);
    assert_int_equal(eth0->tx_errs, 3);
    assert_int_equal(eth0->tx_drop, 4);
    assert_non_null(find_dev(&devs, "veth1234567890a"));
    const struct procfs_net_dev *wg0 = find_dev(&devs, "wg0");
    assert_non_null(wg0);
    assert_int_equal(wg0->rx_drop, 40);
    assert_int_equal(wg0->tx_bytes, 90);
    assert_int_equal(wg0->tx_drop, 120);
}

/* ---- Mounts ----------------------------------------------------------------------------- */

static const struct mount_rec *find_mount(const struct mounts *m, const char *mountpoint)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->m[i].mountpoint, mountpoint) == 0)
            return &m->m[i];
    return NULL;
}

static void test_mounts(void **state)
{
    (void)state;
    size_t len;
    struct mounts mounts = {0};
    char *buf = load("mounts", &len);
    assert_int_equal(procfs_parse_mounts(buf, len, collect_mount, &mounts), 0);
    free(buf);
    assert_int_equal(mounts.n, 20);
    const struct mount_rec *root = find_mount(&mounts, "/");
    assert_non_null(root);
    assert_string_equal(root->device, "/dev/vda");
    assert_string_equal(root->fstype, "ext4");
    assert_false(procfs_fstype_is_pseudo(root->fstype));
    size_t real = 0;
    for (size_t i = 0; i < mounts.n; i++)
        real += !procfs_fstype_is_pseudo(mounts.m[i].fstype);
    assert_int_equal(real, 1); /* only / of the 20 would be reported */

    memset(&mounts, 0, sizeof(mounts));
    buf = load("mounts_hand", &len);
    /* skipped: the line decoding to a NUL byte, the line with two fields */
    assert_int_equal(procfs_parse_mounts(buf, len, collect_mount, &mounts), 2);
    free(buf);
    assert_int_equal(mounts.n, 8);
    const struct mount_rec *disk = find_mount(&mounts, "/mnt/My Disk");
    assert_non_null(disk);
    assert_true(disk->read_only);
    assert_string_equal(disk->device, "/dev/sdb1");
    assert_false(find_mount(&mounts, "/")->read_only);
    const struct mount_rec *cifs = find_mount(&mounts, "/mnt/tab\tand\\slash");
    assert_non_null(cifs);
    assert_string_equal(cifs->fstype, "cifs");
    /* Not escapes (a non-octal digit, a value above \377): kept as they are. */
    assert_non_null(find_mount(&mounts, "/mnt/bad\\9escape"));
    assert_non_null(find_mount(&mounts, "/mnt/big\\400"));
    const struct mount_rec *overlay = find_mount(&mounts, "/var/lib/docker/overlay2/abc/merged");
    assert_non_null(overlay);
    assert_false(procfs_fstype_is_pseudo(overlay->fstype));
    assert_true(procfs_fstype_is_pseudo(find_mount(&mounts, "/snap/core20/2105")->fstype));
    assert_true(procfs_fstype_is_pseudo(find_mount(&mounts, "/proc")->fstype));
}

static const struct mountinfo_rec *find_mountinfo(const struct mountinfos *m,
                                                  const char *mountpoint)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->m[i].mountpoint, mountpoint) == 0)
            return &m->m[i];
    return NULL;
}

static void test_mountinfo(void **state)
{
    (void)state;
    size_t len;
    struct mountinfos mounts = {0};
    char *buf = load("mountinfo", &len);
    assert_int_equal(procfs_parse_mountinfo(buf, len, collect_mountinfo, &mounts), 0);
    free(buf);
    assert_int_equal(mounts.n, 20);
    const struct mountinfo_rec *root = find_mountinfo(&mounts, "/");
    assert_non_null(root);
    assert_string_equal(root->root, "/");
    assert_string_equal(root->fstype, "ext4");
    assert_int_equal(root->major, 254);
    assert_int_equal(root->minor, 0);
    assert_int_equal(find_mountinfo(&mounts, "/proc")->parent_id, root->mount_id);

    memset(&mounts, 0, sizeof(mounts));
    buf = load("mountinfo_hand", &len);
    /* skipped: a NUL byte, no "-" separator, a bad device, no type after "-", a mount id
     * beyond 32 bits */
    assert_int_equal(procfs_parse_mountinfo(buf, len, collect_mountinfo, &mounts), 5);
    free(buf);
    assert_int_equal(mounts.n, 11);
    root = find_mountinfo(&mounts, "/");
    assert_int_equal(root->mount_id, 1);
    assert_int_equal(root->major, 8);
    assert_int_equal(root->minor, 1);
    /* `ip netns` bind-mounts /run/netns: the same device, a directory of it as the root. */
    const struct mountinfo_rec *netns = find_mountinfo(&mounts, "/run/netns");
    assert_non_null(netns);
    assert_int_equal(netns->major, 8);
    assert_int_equal(netns->minor, 1);
    assert_string_equal(netns->root, "/run/netns");
    assert_string_equal(netns->fstype, "ext4");
    assert_string_equal(find_mountinfo(&mounts, "/run/netns/blue")->root, "net:[4026532281]");
    /* Two optional fields before the separator; escapes decoded. */
    const struct mountinfo_rec *disk = find_mountinfo(&mounts, "/mnt/My Disk");
    assert_non_null(disk);
    assert_true(disk->read_only);
    assert_string_equal(disk->fstype, "ext4");
    assert_int_equal(disk->minor, 17);
    assert_false(root->read_only);
    assert_string_equal(find_mountinfo(&mounts, "/mnt/tab\tand\\slash")->fstype, "cifs");
    /* An empty mount source does not shift the type. */
    assert_string_equal(find_mountinfo(&mounts, "/mnt/empty source")->fstype, "tmpfs");
    const struct mountinfo_rec *data = find_mountinfo(&mounts, "/srv/data");
    assert_string_equal(data->root, "/data");
    assert_string_equal(data->fstype, "xfs");
    assert_int_equal(data->mount_id, 64);
    assert_null(find_mountinfo(&mounts, "/mnt/nosep"));
    assert_null(find_mountinfo(&mounts, "/mnt/bigid"));
}

static void test_fstype_is_pseudo(void **state)
{
    (void)state;
    const char *pseudo[] = {"proc",     "sysfs",      "tmpfs",      "devtmpfs",   "cgroup",
                            "cgroup2",  "squashfs",   "nsfs",       "autofs",     "mqueue",
                            "debugfs",  "tracefs",    "securityfs", "pstore",     "bpf",
                            "configfs", "fusectl",    "hugetlbfs",  "devpts",     "binfmt_misc",
                            "ramfs",    "rpc_pipefs", "efivarfs",   "fuse.lxcfs", NULL};
    const char *real[] = {"ext4", "xfs",  "btrfs",      "zfs",  "overlay", "nfs4",
                          "cifs", "vfat", "fuse.sshfs", "f2fs", "",        "procfs"};
    for (size_t i = 0; i < sizeof(pseudo) / sizeof(pseudo[0]); i++)
        assert_true(procfs_fstype_is_pseudo(pseudo[i]));
    for (size_t i = 0; i < sizeof(real) / sizeof(real[0]); i++)
        assert_false(procfs_fstype_is_pseudo(real[i]));
}

/* ---- TCP / UDP -------------------------------------------------------------------------- */

static void test_net_tcp_live(void **state)
{
    (void)state;
    if (!little_endian())
        skip(); /* the fixtures were written by a little-endian kernel */
    size_t len;
    struct socks socks = {0};
    char *buf = load("tcp", &len);
    assert_int_equal(procfs_parse_net_tcp(buf, len, AF_INET, collect_sock, &socks), 0);
    free(buf);
    assert_int_equal(socks.n, 30);
    assert_int_equal(socks.s[0].state, PROCFS_TCP_LISTEN);
    assert_addr(&socks.s[0].local, "0.0.0.0:2024");
    assert_int_equal(socks.s[0].inode, 1060);
    for (size_t i = 1; i < socks.n; i++) {
        assert_int_equal(socks.s[i].state, PROCFS_TCP_TIME_WAIT);
        assert_int_equal(socks.s[i].inode, 0);
    }
    assert_addr(&socks.s[1].local, "127.0.0.1:58932");
    assert_addr(&socks.s[1].remote, "127.0.0.1:29658");

    /* This machine had no IPv6 or UDP sockets: the header alone is no records, no errors. */
    const char *empty[] = {"tcp6", "udp"};
    const int family[] = {AF_INET6, AF_INET};
    for (size_t i = 0; i < 2; i++) {
        memset(&socks, 0, sizeof(socks));
        buf = load(empty[i], &len);
        assert_int_equal(procfs_parse_net_tcp(buf, len, family[i], collect_sock, &socks), 0);
        assert_int_equal(socks.n, 0);
        free(buf);
    }
}

static void test_net_tcp_ipv4(void **state)
{
    (void)state;
    if (!little_endian())
        skip();
    size_t len;
    struct socks socks = {0};
    char *buf = load("tcp_hand", &len);
    assert_int_equal(procfs_parse_net_tcp(buf, len, AF_INET, collect_sock, &socks), 0);
    assert_int_equal(socks.n, 6);
    const struct {
        const char *local, *remote;
        int state;
        uid_t uid;
        uint64_t inode;
        uint32_t tx, rx;
    } want[] = {
        {"0.0.0.0:22", "0.0.0.0:0", PROCFS_TCP_LISTEN, 0, 21001, 0, 0},
        {"127.0.0.1:5432", "0.0.0.0:0", PROCFS_TCP_LISTEN, 113, 21002, 0, 3},
        {"10.0.0.5:443", "192.168.1.20:51234", PROCFS_TCP_ESTABLISHED, 33, 21003, 0x2a0, 0},
        {"10.0.0.5:443", "192.168.1.21:40000", PROCFS_TCP_SYN_RECV, 0, 0, 0, 0},
        {"10.0.0.5:56012", "10.0.0.9:6379", PROCFS_TCP_TIME_WAIT, 0, 0, 0, 0},
        {"10.0.0.5:443", "192.168.1.20:51240", PROCFS_TCP_CLOSE_WAIT, 33, 21004, 0, 0x10},
    };
    for (size_t i = 0; i < socks.n; i++) {
        const struct procfs_sock *s = &socks.s[i];
        assert_int_equal(s->local.family, AF_INET);
        assert_addr(&s->local, want[i].local);
        assert_addr(&s->remote, want[i].remote);
        assert_int_equal(s->state, want[i].state);
        assert_int_equal(s->uid, want[i].uid);
        assert_int_equal(s->inode, want[i].inode);
        assert_int_equal(s->tx_queue, want[i].tx);
        assert_int_equal(s->rx_queue, want[i].rx);
    }
    /* Exact bytes, not only their rendering: network order in addr. */
    const uint8_t ten_0_0_5[4] = {10, 0, 0, 5};
    assert_memory_equal(socks.s[2].local.addr, ten_0_0_5, 4);

    /* The last line cut anywhere: not delivered, counted as skipped. */
    size_t last_line = (size_t)((char *)memrchr(buf, '\n', len - 1) - buf) + 1;
    for (size_t cut = last_line + 1; cut < len; cut++) {
        memset(&socks, 0, sizeof(socks));
        char *part = dup_bytes(buf, cut);
        assert_int_equal(procfs_parse_net_tcp(part, cut, AF_INET, collect_sock, &socks), 1);
        assert_int_equal(socks.n, 5);
        free(part);
    }
    free(buf);

    /* The example from the kernel's own documentation of the format. */
    const char *doc = "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 "
                      "00000000  1000        0 424242 1 0000000000000000 100 0 0 10 0\n";
    memset(&socks, 0, sizeof(socks));
    assert_int_equal(procfs_parse_net_tcp(doc, strlen(doc), AF_INET, collect_sock, &socks), 0);
    assert_int_equal(socks.n, 1);
    assert_addr(&socks.s[0].local, "127.0.0.1:8080");
    assert_int_equal(socks.s[0].uid, 1000);
}

static void test_net_tcp6(void **state)
{
    (void)state;
    if (!little_endian())
        skip();
    size_t len;
    struct socks socks = {0};
    char *buf = load("tcp6_hand", &len);
    assert_int_equal(procfs_parse_net_tcp(buf, len, AF_INET6, collect_sock, &socks), 0);
    assert_int_equal(socks.n, 4);

    assert_int_equal(socks.s[0].local.family, AF_INET6);
    assert_addr(&socks.s[0].local, "[::]:80");
    assert_int_equal(socks.s[0].state, PROCFS_TCP_LISTEN);

    assert_addr(&socks.s[1].local, "[::1]:8080");
    assert_addr(&socks.s[1].remote, "[::1]:45678");
    assert_int_equal(socks.s[1].uid, 1000);

    /* ::ffff:10.1.2.3 is reported as IPv4, so top talkers merge with /proc/net/tcp. */
    assert_int_equal(socks.s[2].local.family, AF_INET);
    assert_int_equal(socks.s[2].remote.family, AF_INET);
    assert_addr(&socks.s[2].local, "10.1.2.3:443");
    assert_addr(&socks.s[2].remote, "203.0.113.7:61000");
    assert_int_equal(socks.s[2].inode, 31003);

    assert_addr(&socks.s[3].local, "[2a00:1450:4001:82b::200e]:443");
    assert_addr(&socks.s[3].remote, "[2001:db8::1]:50000");
    assert_int_equal(socks.s[3].state, PROCFS_TCP_TIME_WAIT);
    uint8_t expect[16];
    assert_int_equal(inet_pton(AF_INET6, "2a00:1450:4001:82b::200e", expect), 1);
    assert_memory_equal(socks.s[3].local.addr, expect, 16);

    /* The wrong family for the file: every line is malformed, nothing is delivered. */
    memset(&socks, 0, sizeof(socks));
    assert_int_equal(procfs_parse_net_tcp(buf, len, AF_INET, collect_sock, &socks), 4);
    assert_int_equal(socks.n, 0);
    assert_int_equal(procfs_parse_net_tcp(buf, len, AF_UNIX, collect_sock, &socks), -EINVAL);
    free(buf);

    /* udp: same columns and then more; unconnected sockets are CLOSE. */
    memset(&socks, 0, sizeof(socks));
    buf = load("udp_hand", &len);
    assert_int_equal(procfs_parse_net_tcp(buf, len, AF_INET, collect_sock, &socks), 0);
    free(buf);
    assert_int_equal(socks.n, 2);
    assert_addr(&socks.s[0].local, "127.0.0.53:53");
    assert_int_equal(socks.s[0].state, PROCFS_TCP_CLOSE);
    assert_int_equal(socks.s[0].uid, 101);
    assert_addr(&socks.s[1].remote, "10.0.0.8:53");
    assert_int_equal(socks.s[1].state, PROCFS_TCP_ESTABLISHED);
}

static int stop_at_second(const struct procfs_sock *sock, void *userdata)
{
    (void)sock;
    int *calls = userdata;
    return ++*calls == 2 ? -EINTR : 0;
}

static void test_net_tcp_malformed(void **state)
{
    (void)state;
    const char *lines =
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid\n"
        "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 7 1\n"
        "   1: 0100007F1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 7 1\n"
        "   2: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 -1 0 7\n"
        "   3: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0\n"
        "   4: 0100007F:11F90 00000000:0000 0A 00000000:00000000 00:00000000 0 0 0 7 1\n"
        "   5: 0100007G:1F90 00000000:0000 0A 00000000:00000000 00:00000000 0 0 0 7 1\n"
        "   6: 0100007F:1F90 00000000:0000 10A 00000000:00000000 00:00000000 0 0 0 7 1\n"
        "   x: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 0 0 0 7 1\n"
        "   6: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 0 4294967295 0 7 1\n"
        "   7: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 0 0 0 8 1\n"
        "\n";
    struct socks socks = {0};
    assert_int_equal(procfs_parse_net_tcp(lines, strlen(lines), AF_INET, collect_sock, &socks), 8);
    assert_int_equal(socks.n, 2);
    assert_int_equal(socks.s[0].inode, 7);
    assert_int_equal(socks.s[1].inode, 8);

    int calls = 0;
    assert_int_equal(procfs_parse_net_tcp(lines, strlen(lines), AF_INET, stop_at_second, &calls),
                     -EINTR);
    assert_int_equal(calls, 2);
}

static void test_tcp_state_name(void **state)
{
    (void)state;
    const char *names[] = {"ESTABLISHED", "SYN_SENT",  "SYN_RECV", "FIN_WAIT1",
                           "FIN_WAIT2",   "TIME_WAIT", "CLOSE",    "CLOSE_WAIT",
                           "LAST_ACK",    "LISTEN",    "CLOSING",  "NEW_SYN_RECV"};
    for (int i = 0; i < 12; i++)
        assert_string_equal(procfs_tcp_state_name(i + 1), names[i]);
    assert_string_equal(procfs_tcp_state_name(0), "UNKNOWN");
    assert_string_equal(procfs_tcp_state_name(13), "UNKNOWN");
    assert_string_equal(procfs_tcp_state_name(-1), "UNKNOWN");
    assert_string_equal(procfs_tcp_state_name(255), "UNKNOWN");

    struct procfs_addr a = {.family = AF_INET, .addr = {10, 0, 0, 1}, .port = 65535};
    char small[8];
    assert_int_equal(procfs_addr_format(&a, small, sizeof(small)), -ENOSPC);
    a.family = AF_UNIX;
    assert_int_equal(procfs_addr_format(&a, small, sizeof(small)), -EINVAL);
}

/* ---- Unix sockets and fd links ---------------------------------------------------------- */

static void test_net_unix(void **state)
{
    (void)state;
    size_t len;
    struct unixes us = {0};
    char *buf = load("unix", &len);
    assert_int_equal(procfs_parse_net_unix(buf, len, collect_unix, &us), 0);
    free(buf);
    assert_int_equal(us.n, 2);
    assert_int_equal(us.u[1].inode, 1056);
    assert_int_equal(us.u[0].inode, 1057); /* "%5lu": "  1057" */
    assert_string_equal(us.u[0].path, "");
    assert_int_equal(us.u[0].state, 3);

    memset(&us, 0, sizeof(us));
    buf = load("unix_hand", &len);
    assert_int_equal(procfs_parse_net_unix(buf, len, collect_unix, &us), 1); /* "zzzz" flags */
    free(buf);
    assert_int_equal(us.n, 4);
    assert_false(us.u[0].listening);
    assert_true(us.u[1].listening);
    assert_int_equal(us.u[1].inode, 275419);
    assert_string_equal(us.u[1].path, "/run/postgresql/.s.PGSQL.5432");
    assert_int_equal(us.u[1].type, 1);
    assert_string_equal(us.u[2].path, "@/containerd-shim/abc.sock@");
    assert_int_equal(us.u[2].type, 5);
    assert_true(us.u[2].listening);
    assert_string_equal(us.u[3].path, "/tmp/with space/sock");
    assert_int_equal(us.u[3].type, 2);

    /* A path longer than sun_path cannot come from the kernel. */
    char line[400];
    int n = snprintf(line, sizeof(line),
                     "0000000000000000: 00000002 00000000 00000000 0001 01 5 /%0120d\n", 0);
    memset(&us, 0, sizeof(us));
    assert_int_equal(procfs_parse_net_unix(line, (size_t)n, collect_unix, &us), 1);
    assert_int_equal(us.n, 0);
}

static void test_socket_inode(void **state)
{
    (void)state;
    uint64_t inode = 5;
    assert_int_equal(procfs_socket_inode("socket:[12345]", &inode), 0);
    assert_int_equal(inode, 12345);
    assert_int_equal(procfs_socket_inode("socket:[18446744073709551615]", &inode), 0);
    assert_int_equal(inode, UINT64_MAX);

    inode = 5;
    assert_int_equal(procfs_socket_inode("pipe:[12345]", &inode), -ENOTSOCK);
    assert_int_equal(procfs_socket_inode("anon_inode:[eventfd]", &inode), -ENOTSOCK);
    assert_int_equal(procfs_socket_inode("/dev/null", &inode), -ENOTSOCK);
    assert_int_equal(procfs_socket_inode("", &inode), -ENOTSOCK);
    assert_int_equal(procfs_socket_inode("socket:", &inode), -ENOTSOCK);
    const char *bad[] = {"socket:[]",
                         "socket:[12a]",
                         "socket:[123",
                         "socket:[1]x",
                         "socket:[-1]",
                         "socket:[ 1]",
                         "socket:[18446744073709551616]",
                         "socket:[000000000000000000000001]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(procfs_socket_inode(bad[i], &inode), -EINVAL);
    assert_int_equal(inode, 5);
}

/* ---- Processes -------------------------------------------------------------------------- */

static void test_pid_stat(void **state)
{
    (void)state;
    size_t len;
    struct procfs_pid_stat st;
    char *buf = load("pid_stat", &len);
    assert_int_equal(procfs_parse_pid_stat(buf, len, &st), 0);
    free(buf);
    assert_int_equal(st.pid, 9566);
    assert_string_equal(st.comm, "cat");
    assert_int_equal(st.state, 'R');
    assert_int_equal(st.ppid, 9553);
    assert_int_equal(st.num_threads, 1);
    assert_int_equal(st.starttime, 313007);
    assert_int_equal(st.rss_pages, 394);

    buf = load("pid_stat_paren", &len); /* "4242 (evil) (x) S 1 ..." */
    assert_int_equal(procfs_parse_pid_stat(buf, len, &st), 0);
    assert_int_equal(st.pid, 4242);
    assert_string_equal(st.comm, "evil) (x");
    assert_int_equal(st.state, 'S');
    assert_int_equal(st.ppid, 1);
    assert_int_equal(st.utime, 250);
    assert_int_equal(st.stime, 75);
    assert_int_equal(st.num_threads, 3);
    assert_int_equal(st.starttime, 987654);
    assert_int_equal(st.rss_pages, 1234);

    /* Every strict prefix is truncated: refused, output untouched. */
    for (size_t cut = 0; cut < len; cut++) {
        char *part = dup_bytes(buf, cut);
        assert_int_equal(procfs_parse_pid_stat(part, cut, &st), -EINVAL);
        free(part);
    }
    assert_int_equal(st.pid, 4242);
    free(buf);

    buf = load("pid_stat_empty_comm", &len);
    assert_int_equal(procfs_parse_pid_stat(buf, len, &st), 0);
    assert_string_equal(st.comm, "");
    assert_int_equal(st.state, 'Z');
    free(buf);

    buf = load("pid_stat_long_comm", &len);
    assert_int_equal(procfs_parse_pid_stat(buf, len, &st), 0);
    assert_int_equal(strlen(st.comm), PROCFS_COMM_MAX - 1);
    assert_memory_equal(st.comm, "kworker/u8:3-events_unbound", 27);
    assert_int_equal(st.state, 'I');
    assert_int_equal(st.ppid, 2);
    assert_int_equal(st.stime, 9);
    free(buf);

    const char *bad[] = {
        "(x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22\n",
        "-5 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22\n",
        "5 (x) 1 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22\n",
        "5 (x)S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22\n",
        "5 )x( S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22\n",
        "5 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 -21 22\n",
        "5 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20\n",
        "0 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22\n",
    };
    st.pid = 31337;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(procfs_parse_pid_stat(bad[i], strlen(bad[i]), &st), -EINVAL);
    assert_int_equal(st.pid, 31337);
}

static void test_pid_status_uid(void **state)
{
    (void)state;
    size_t len;
    uid_t uid = 77;
    char *buf = load("pid_status", &len);
    assert_int_equal(procfs_parse_pid_status_uid(buf, len, &uid), 0);
    assert_int_equal(uid, 0);
    free(buf);

    const char *user = "Name:\tnginx\nUmask:\t0022\nUid:\t101\t0\t101\t101\nGid:\t101\n";
    assert_int_equal(procfs_parse_pid_status_uid(user, strlen(user), &uid), 0);
    assert_int_equal(uid, 101); /* real, not effective */

    uid = 77;
    const char *bad[] = {"Name:\tx\nGid:\t1\n", "Uid:\t-1\t0\n", "Uid:\t4294967295\n",
                         "Uid:\t4294967296\n",  "Uid:\n",        "Uid:\t1000"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(procfs_parse_pid_status_uid(bad[i], strlen(bad[i]), &uid), -EINVAL);
    assert_int_equal(uid, 77);
}

static void check_cgroup(const char *fixture, int want_r, const char *want_container,
                         const char *want_pod)
{
    size_t len;
    char *buf = load(fixture, &len);
    struct procfs_cgroup_ids ids;
    memset(&ids, 'z', sizeof(ids));
    int r = procfs_parse_cgroup(buf, len, &ids);
    free(buf);
    if (r != want_r)
        fail_msg("%s: got %d, want %d", fixture, r, want_r);
    if (r < 0) {
        assert_int_equal(ids.container_id[0], 'z'); /* untouched */
        return;
    }
    assert_string_equal(ids.container_id, want_container);
    assert_string_equal(ids.pod_uid, want_pod);
}

static void test_cgroup(void **state)
{
    (void)state;
    const char *a = "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899";
    const char *b = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const char *pod = "8f14e45f-ceea-467f-a0e6-5c1a7f2b3d4e";

    check_cgroup("cgroup_docker_v1", 0, a, "");
    check_cgroup("cgroup_docker_v2", 0, a, "");
    check_cgroup("cgroup_containerd_k8s_v2", 0, b, pod);
    check_cgroup("cgroup_crio_k8s_v1", 0, b, pod);
    check_cgroup("cgroup_kubepods_cgroupfs_v1", 0, a, pod);
    check_cgroup("cgroup_kubepods_cgroupfs_v2", 0, b, pod);
    check_cgroup("cgroup_static_pod", 0, "", "d41d8cd98f00b204e9800998ecf8427e");
    check_cgroup("cgroup_nested", 0, b, ""); /* the innermost container */
    check_cgroup("cgroup_conmon", -ENOENT, NULL, NULL);
    check_cgroup("cgroup_lookalikes", -ENOENT, NULL, NULL);
    check_cgroup("cgroup", -ENOENT, NULL, NULL); /* this machine: a 32-hex non-container */

    /* A truncated line is not used, even if the id in it looks complete. */
    char line[128];
    int n = snprintf(line, sizeof(line), "0::/docker/%s", a);
    struct procfs_cgroup_ids ids;
    assert_int_equal(procfs_parse_cgroup(line, (size_t)n, &ids), -ENOENT);
}

/* ---- Hostile input ---------------------------------------------------------------------- */

static int ignore_sock(const struct procfs_sock *s, void *u)
{
    (void)s;
    (void)u;
    return 0;
}

static int ignore_dev(const struct procfs_net_dev *d, void *u)
{
    (void)d;
    (void)u;
    return 0;
}

static int ignore_mount(const struct procfs_mount *m, void *u)
{
    (void)u;
    /* Whatever came in, what goes out is a terminated string within its field. */
    assert_true(memchr(m->mountpoint, '\0', sizeof(m->mountpoint)) != NULL);
    return 0;
}

static int ignore_mountinfo(const struct procfs_mountinfo *m, void *u)
{
    (void)u;
    assert_true(memchr(m->root, '\0', sizeof(m->root)) != NULL);
    assert_true(memchr(m->mountpoint, '\0', sizeof(m->mountpoint)) != NULL);
    assert_true(memchr(m->fstype, '\0', sizeof(m->fstype)) != NULL);
    return 0;
}

static int ignore_unix(const struct procfs_unix_sock *s, void *u)
{
    (void)u;
    assert_true(memchr(s->path, '\0', sizeof(s->path)) != NULL);
    return 0;
}

/* Runs every parser on buf; the only requirement is that none misbehaves. */
static void parse_everything(const char *buf, size_t len)
{
    struct procfs_cpu cpu;
    struct procfs_mem mem;
    struct procfs_load ld;
    struct procfs_pid_stat st;
    struct procfs_cgroup_ids ids;
    uint64_t count;
    uid_t uid;
    (void)procfs_parse_stat(buf, len, &cpu);
    (void)procfs_parse_meminfo(buf, len, &mem);
    (void)procfs_parse_loadavg(buf, len, &ld);
    (void)procfs_parse_vmstat_oom_kill(buf, len, &count);
    (void)procfs_parse_pid_status_uid(buf, len, &uid);
    if (procfs_parse_pid_stat(buf, len, &st) == 0)
        assert_true(memchr(st.comm, '\0', sizeof(st.comm)) != NULL);
    if (procfs_parse_cgroup(buf, len, &ids) == 0) {
        assert_true(strlen(ids.container_id) == 0 || strlen(ids.container_id) == 64);
        assert_true(strlen(ids.pod_uid) < sizeof(ids.pod_uid));
    }
    assert_true(procfs_parse_net_dev(buf, len, ignore_dev, NULL) >= 0);
    assert_true(procfs_parse_mounts(buf, len, ignore_mount, NULL) >= 0);
    assert_true(procfs_parse_mountinfo(buf, len, ignore_mountinfo, NULL) >= 0);
    assert_true(procfs_parse_net_tcp(buf, len, AF_INET, ignore_sock, NULL) >= 0);
    assert_true(procfs_parse_net_tcp(buf, len, AF_INET6, ignore_sock, NULL) >= 0);
    assert_true(procfs_parse_net_unix(buf, len, ignore_unix, NULL) >= 0);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void test_garbage(void **state)
{
    (void)state;
    /* Random bytes, and random text drawn from the characters /proc files are made of. */
    static const char alphabet[] = "0123456789abcdefABCDEF :()/\\\n\t-._@[]kBcpu\0";
    for (int iter = 0; iter < 3000; iter++) {
        size_t len = (size_t)(rng() % 600);
        char *buf = malloc(len ? len : 1);
        assert_non_null(buf);
        bool text = iter % 2;
        for (size_t i = 0; i < len; i++)
            buf[i] = text ? alphabet[rng() % (sizeof(alphabet) - 1)] : (char)rng();
        parse_everything(buf, len);
        free(buf);
    }

    /* Every fixture: cut at every length, then with bytes flipped. */
    static const char *fixtures[] = {"stat",
                                     "meminfo",
                                     "loadavg",
                                     "net_dev",
                                     "net_dev_hand",
                                     "vmstat",
                                     "mounts_hand",
                                     "mountinfo_hand",
                                     "tcp_hand",
                                     "tcp6_hand",
                                     "udp_hand",
                                     "unix_hand",
                                     "pid_stat",
                                     "pid_stat_paren",
                                     "pid_status",
                                     "cgroup_containerd_k8s_v2",
                                     "cgroup_crio_k8s_v1"};
    for (size_t f = 0; f < sizeof(fixtures) / sizeof(fixtures[0]); f++) {
        size_t len;
        char *whole = load(fixtures[f], &len);
        for (size_t cut = 0; cut <= len; cut++) {
            char *part = dup_bytes(whole, cut);
            parse_everything(part, cut);
            free(part);
        }
        for (int iter = 0; iter < 200; iter++) {
            char *mutated = dup_bytes(whole, len);
            for (int flips = 0; flips < 4 && len > 0; flips++)
                mutated[rng() % len] = (char)rng();
            parse_everything(mutated, len);
            free(mutated);
        }
        free(whole);
    }

    /* NULL and empty input are refused or empty, never a crash. */
    struct procfs_cpu cpu;
    assert_int_equal(procfs_parse_stat(NULL, 10, &cpu), -EINVAL);
    assert_int_equal(procfs_parse_mountinfo(NULL, 0, ignore_mountinfo, NULL), -EINVAL);
    assert_int_equal(procfs_parse_mountinfo("", 0, NULL, NULL), -EINVAL);
    assert_int_equal(procfs_parse_net_tcp(NULL, 0, AF_INET, ignore_sock, NULL), -EINVAL);
    assert_int_equal(procfs_parse_net_tcp("", 0, AF_INET, ignore_sock, NULL), 0);
    assert_int_equal(procfs_socket_inode(NULL, &(uint64_t){0}), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_bounds_and_errors),
        cmocka_unit_test(test_read_live_self),
        cmocka_unit_test(test_read_stream),
        cmocka_unit_test(test_stat_live),
        cmocka_unit_test(test_cpu_busy_pct),
        cmocka_unit_test(test_stat_malformed),
        cmocka_unit_test(test_meminfo),
        cmocka_unit_test(test_loadavg),
        cmocka_unit_test(test_vmstat_oom_kill),
        cmocka_unit_test(test_net_dev),
        cmocka_unit_test(test_mounts),
        cmocka_unit_test(test_mountinfo),
        cmocka_unit_test(test_fstype_is_pseudo),
        cmocka_unit_test(test_net_tcp_live),
        cmocka_unit_test(test_net_tcp_ipv4),
        cmocka_unit_test(test_net_tcp6),
        cmocka_unit_test(test_net_tcp_malformed),
        cmocka_unit_test(test_tcp_state_name),
        cmocka_unit_test(test_net_unix),
        cmocka_unit_test(test_socket_inode),
        cmocka_unit_test(test_pid_stat),
        cmocka_unit_test(test_pid_status_uid),
        cmocka_unit_test(test_cgroup),
        cmocka_unit_test(test_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
