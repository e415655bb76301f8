/* The host collector against a fixed /proc tree: the values a user would see. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

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
    char net[1024];
    snprintf(net, sizeof(net), "%s  eth0: 1000 10 1 0 0 0 0 0 2000 20 0 0 0 0 0 0\n", NET_HEADER);
    put("net/dev", net);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    const char *files[] = {"stat", "meminfo", "loadavg", "vmstat", "self/mounts", "net/dev"};
    char path[256];
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", root, files[i]);
        unlink(path);
    }
    snprintf(path, sizeof(path), "%s/self", root);
    rmdir(path);
    snprintf(path, sizeof(path), "%s/net", root);
    rmdir(path);
    rmdir(root);
    return 0;
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
    assert_int_equal(sigbuf_count(b), 0);
    assert_true(ctx.errors >= 4);
    sigbuf_destroy(&b);
    host_collector_destroy(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_cycles),
        cmocka_unit_test(test_missing_sources_are_counted_not_fatal),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
