#include "host.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>

#include "log.h"
#include "procfs.h"
#include "timeutil.h"

#define MAX_INTERFACES 64
#define READ_BUF (64 * 1024)

struct iface_sample {
    char name[16];
    uint64_t rx_bytes, tx_bytes, errors;
};

struct host_collector {
    char proc_root[PATH_MAX];
    char *buf; /* one read buffer for every /proc file, reused */
    struct procfs_cpu cpu_prev;
    bool have_cpu;
    struct iface_sample ifaces[MAX_INTERFACES];
    size_t nifaces;
    int64_t net_prev_mono; /* 0 = no previous network sample */
};

host_collector_t *host_collector_new(const char *proc_root)
{
    host_collector_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->buf = malloc(READ_BUF);
    if (!self->buf) {
        free(self);
        return NULL;
    }
    snprintf(self->proc_root, sizeof(self->proc_root), "%s", proc_root ? proc_root : "/proc");
    return self;
}

void host_collector_destroy(host_collector_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->buf);
    free(*self_p);
    *self_p = NULL;
}

/* Reads <proc_root>/<name> into self->buf. */
static int read_proc(host_collector_t *self, const char *name, size_t *ret_len)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/%s", self->proc_root, name);
    if (n < 0 || (size_t)n >= sizeof(path))
        return -ENAMETOOLONG;
    int r = procfs_read(path, self->buf, READ_BUF, ret_len);
    if (r < 0)
        vg_log(VG_LOG_DEBUG, "host: %s: %s", path, strerror(-r));
    return r;
}

static void collect_cpu(host_collector_t *self, struct collect_ctx *ctx)
{
    struct procfs_cpu cur;
    size_t len;
    double busy;

    if (read_proc(self, "stat", &len) < 0 || procfs_parse_stat(self->buf, len, &cur) < 0) {
        ctx->errors++;
        return;
    }
    if (self->have_cpu && procfs_cpu_busy_pct(&self->cpu_prev, &cur, &busy) == 0)
        collect_emit(ctx, "host.cpu.busy_pct", busy, "percent", NULL, 0);
    self->cpu_prev = cur;
    self->have_cpu = true;
}

static void collect_mem_load(host_collector_t *self, struct collect_ctx *ctx)
{
    struct procfs_mem mem;
    struct procfs_load load;
    uint64_t kills;
    size_t len;

    if (read_proc(self, "meminfo", &len) == 0 && procfs_parse_meminfo(self->buf, len, &mem) == 0) {
        collect_emit(ctx, "host.mem.used_pct", mem.used_pct, "percent", NULL, 0);
        collect_emit(ctx, "host.mem.available_bytes", (double)mem.available_bytes, "bytes", NULL,
                     0);
    } else {
        ctx->errors++;
    }
    if (read_proc(self, "loadavg", &len) == 0 &&
        procfs_parse_loadavg(self->buf, len, &load) == 0) {
        collect_emit(ctx, "host.load.1m", load.avg1, "", NULL, 0);
        collect_emit(ctx, "host.load.5m", load.avg5, "", NULL, 0);
        collect_emit(ctx, "host.load.15m", load.avg15, "", NULL, 0);
    } else {
        ctx->errors++;
    }
    if (read_proc(self, "vmstat", &len) == 0 &&
        procfs_parse_vmstat_oom_kill(self->buf, len, &kills) == 0)
        collect_emit(ctx, "host.oom.kills", (double)kills, "count", NULL, 0);
}

/* Filesystems whose statfs can block on a server that is gone. */
static bool fstype_is_network(const char *fstype)
{
    static const char *const network[] = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph",
                                          "glusterfs", "9p", "afs", "fuse.sshfs"};
    for (size_t i = 0; i < sizeof(network) / sizeof(network[0]); i++) {
        if (strcmp(fstype, network[i]) == 0)
            return true;
    }
    return false;
}

static int disk_cb(const struct procfs_mount *m, void *userdata)
{
    struct collect_ctx *ctx = userdata;
    struct statfs st;

    if (procfs_fstype_is_pseudo(m->fstype) || fstype_is_network(m->fstype))
        return 0;
    if (statfs(m->mountpoint, &st) < 0 || st.f_blocks == 0)
        return 0;
    /* As df computes it: used / (used + available to unprivileged users). */
    double used = (double)(st.f_blocks - st.f_bfree);
    double usable = used + (double)st.f_bavail;
    if (usable <= 0)
        return 0;
    struct sig_label labels[] = {{"mount", m->mountpoint}, {"fstype", m->fstype}};
    collect_emit(ctx, "host.disk.used_pct", used * 100.0 / usable, "percent", labels, 2);
    return 0;
}

static void collect_disks(host_collector_t *self, struct collect_ctx *ctx)
{
    size_t len;
    if (read_proc(self, "self/mounts", &len) < 0 ||
        procfs_parse_mounts(self->buf, len, disk_cb, ctx) < 0)
        ctx->errors++;
}

struct net_walk {
    host_collector_t *self;
    struct collect_ctx *ctx;
    struct iface_sample cur[MAX_INTERFACES];
    size_t ncur;
    double seconds; /* since the previous sample; 0 = none */
};

static const struct iface_sample *find_prev(const host_collector_t *self, const char *name)
{
    for (size_t i = 0; i < self->nifaces; i++) {
        if (strcmp(self->ifaces[i].name, name) == 0)
            return &self->ifaces[i];
    }
    return NULL;
}

static int net_cb(const struct procfs_net_dev *dev, void *userdata)
{
    struct net_walk *w = userdata;
    if (w->ncur >= MAX_INTERFACES)
        return 0;
    struct iface_sample *s = &w->cur[w->ncur++];
    snprintf(s->name, sizeof(s->name), "%s", dev->name);
    s->rx_bytes = dev->rx_bytes;
    s->tx_bytes = dev->tx_bytes;
    s->errors = dev->rx_errs + dev->tx_errs;

    const struct iface_sample *p = find_prev(w->self, s->name);
    /* Counters that went backwards (interface re-created) give no rate this cycle. */
    if (w->seconds > 0 && p && s->rx_bytes >= p->rx_bytes && s->tx_bytes >= p->tx_bytes &&
        s->errors >= p->errors) {
        struct sig_label labels[] = {{"interface", s->name}};
        collect_emit(w->ctx, "host.net.rx_bytes_per_s", (double)(s->rx_bytes - p->rx_bytes) /
                     w->seconds, "bytes/s", labels, 1);
        collect_emit(w->ctx, "host.net.tx_bytes_per_s", (double)(s->tx_bytes - p->tx_bytes) /
                     w->seconds, "bytes/s", labels, 1);
        collect_emit(w->ctx, "host.net.errors_per_s", (double)(s->errors - p->errors) /
                     w->seconds, "errors/s", labels, 1);
    }
    return 0;
}

static void collect_net(host_collector_t *self, struct collect_ctx *ctx)
{
    struct net_walk *w = calloc(1, sizeof(*w));
    int64_t now = vg_mono_ms();
    size_t len;

    if (!w) {
        ctx->errors++;
        return;
    }
    w->self = self;
    w->ctx = ctx;
    w->seconds = self->net_prev_mono ? (double)(now - self->net_prev_mono) / 1000.0 : 0;
    if (read_proc(self, "net/dev", &len) == 0 &&
        procfs_parse_net_dev(self->buf, len, net_cb, w) >= 0) {
        memcpy(self->ifaces, w->cur, w->ncur * sizeof(w->cur[0]));
        self->nifaces = w->ncur;
        self->net_prev_mono = now;
    } else {
        ctx->errors++;
    }
    free(w);
}

void host_collector_run(host_collector_t *self, struct collect_ctx *ctx)
{
    collect_cpu(self, ctx);
    collect_mem_load(self, ctx);
    collect_disks(self, ctx);
    collect_net(self, ctx);
}
