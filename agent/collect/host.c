#include "host.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "procfs.h"
#include "proctable.h"
#include "timeutil.h"

#define MAX_INTERFACES 64
#define READ_BUF (64 * 1024) /* to start with: the mount table of a busy node can be more */
#define READ_BUF_MAX (4 * 1024 * 1024)

struct iface_sample {
    char name[16];
    uint64_t rx_bytes, tx_bytes, errors;
};

/* The files a cycle reads. Each stays open between cycles and is read again from offset 0:
 * /proc regenerates a file's text on every read from the start, and an open file saves the
 * path walk that is most of the cost of these small reads. */
enum host_file { F_STAT, F_MEMINFO, F_LOADAVG, F_VMSTAT, F_MOUNTINFO, F_NET_DEV, F_COUNT };
static const char *const file_names[F_COUNT] = {"stat",   "meminfo",        "loadavg",
                                                "vmstat", "self/mountinfo", "net/dev"};

/* The mount that stands for one filesystem (device) in a cycle's disk usage. */
struct disk_pick {
    uint32_t major, minor;
    uint32_t mount_id;
    bool at_slash;   /* mounted at "/" */
    bool whole;      /* its root is "/": the whole filesystem, not a bind mount of a directory */
    size_t path_len; /* of the mount point */
    bool as_slash;   /* "/" is missing from the table and lives here: reported as mount="/" */
};

struct host_collector {
    char proc_root[PATH_MAX];
    int fds[F_COUNT]; /* -1 until opened; closed again after a failed read */
    char *buf;        /* one read buffer for every /proc file, reused; grows to READ_BUF_MAX */
    size_t buf_cap;
    struct disk_pick *picks; /* one per real filesystem; kept between cycles, grows as needed */
    size_t npicks, picks_cap;
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
    self->buf_cap = READ_BUF;
    snprintf(self->proc_root, sizeof(self->proc_root), "%s", proc_root ? proc_root : "/proc");
    for (size_t i = 0; i < F_COUNT; i++)
        self->fds[i] = -1;
    return self;
}

void host_collector_destroy(host_collector_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    for (size_t i = 0; i < F_COUNT; i++) {
        if ((*self_p)->fds[i] >= 0)
            close((*self_p)->fds[i]);
    }
    free((*self_p)->buf);
    free((*self_p)->picks);
    free(*self_p);
    *self_p = NULL;
}

/* The whole of an open file from offset 0 into buf (NUL-terminated): as procfs_read. */
static int pread_whole(int fd, char *buf, size_t cap, size_t *ret_len)
{
    size_t fill = 0;
    for (;;) {
        if (fill == cap - 1) {
            char extra;
            ssize_t n = pread(fd, &extra, 1, (off_t)fill);
            if (n < 0 && errno == EINTR)
                continue;
            if (n != 0)
                return n < 0 ? -errno : -EFBIG;
            break;
        }
        ssize_t n = pread(fd, buf + fill, cap - 1 - fill, (off_t)fill);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        fill += (size_t)n;
    }
    buf[fill] = '\0';
    *ret_len = fill;
    return 0;
}

/* Reads <proc_root>/<file> into self->buf. */
static int read_proc(host_collector_t *self, enum host_file file, size_t *ret_len)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/%s", self->proc_root, file_names[file]);
    if (n < 0 || (size_t)n >= sizeof(path))
        return -ENAMETOOLONG;
    int r = 0;
    if (self->fds[file] < 0) {
        self->fds[file] = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (self->fds[file] < 0)
            r = -errno;
    }
    while (r == 0) {
        r = pread_whole(self->fds[file], self->buf, self->buf_cap, ret_len);
        if (r != -EFBIG || self->buf_cap >= READ_BUF_MAX)
            break;
        char *bigger = realloc(self->buf, self->buf_cap * 2);
        if (!bigger)
            break;
        self->buf = bigger;
        self->buf_cap *= 2;
        r = 0;
    }
    if (r < 0) {
        vg_log(VG_LOG_DEBUG, "host: %s: %s", path, strerror(-r));
        if (self->fds[file] >= 0)
            close(self->fds[file]); /* opened afresh next cycle */
        self->fds[file] = -1;
    }
    return r;
}

static void collect_cpu(host_collector_t *self, struct collect_ctx *ctx)
{
    struct procfs_cpu cur;
    size_t len = 0;
    double busy;

    if (read_proc(self, F_STAT, &len) < 0 || procfs_parse_stat(self->buf, len, &cur) < 0) {
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
    size_t len = 0;

    if (read_proc(self, F_MEMINFO, &len) == 0 && procfs_parse_meminfo(self->buf, len, &mem) == 0) {
        collect_emit(ctx, "host.mem.used_pct", mem.used_pct, "percent", NULL, 0);
        collect_emit(ctx, "host.mem.available_bytes", (double)mem.available_bytes, "bytes", NULL,
                     0);
    } else {
        ctx->errors++;
    }
    if (read_proc(self, F_LOADAVG, &len) == 0 && procfs_parse_loadavg(self->buf, len, &load) == 0) {
        collect_emit(ctx, "host.load.1m", load.avg1, "", NULL, 0);
        collect_emit(ctx, "host.load.5m", load.avg5, "", NULL, 0);
        collect_emit(ctx, "host.load.15m", load.avg15, "", NULL, 0);
    } else {
        ctx->errors++;
    }
    if (read_proc(self, F_VMSTAT, &len) == 0 &&
        procfs_parse_vmstat_oom_kill(self->buf, len, &kills) == 0)
        collect_emit(ctx, "host.oom.kills", (double)kills, "count", NULL, 0);
}

/* Filesystems whose statfs can block on a server that is gone. */
static bool fstype_is_network(const char *fstype)
{
    static const char *const network[] = {"nfs",  "nfs4",      "cifs", "smb3", "smbfs",
                                          "ceph", "glusterfs", "9p",   "afs",  "fuse.sshfs"};
    for (size_t i = 0; i < sizeof(network) / sizeof(network[0]); i++) {
        if (strcmp(fstype, network[i]) == 0)
            return true;
    }
    return false;
}

/*
 * The name of a filesystem type from statfs's f_type, for "/" when no mount names it. ext2 and
 * ext3 share ext4's number (and the ext4 driver mounts them all today).
 */
static const char *fstype_of_magic(unsigned long magic)
{
    static const struct {
        unsigned long magic;
        const char *name;
    } types[] = {
        {0xEF53, "ext4"},        {0x58465342, "xfs"},      {0x9123683E, "btrfs"},
        {0x794C7630, "overlay"}, {0x2FC12FC1, "zfs"},      {0xF2F52010, "f2fs"},
        {0x4D44, "vfat"},        {0x65735546, "fuse"},     {0x01021994, "tmpfs"},
        {0x858458F6, "ramfs"},   {0x73717368, "squashfs"}, {0x6969, "nfs"},
        {0xFF534D42, "cifs"},    {0x01021997, "9p"},       {0x00C36400, "ceph"},
    };
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (magic == types[i].magic)
            return types[i].name;
    }
    return "unknown";
}

/* host.disk.used_pct for the filesystem holding path; fstype NULL: named from statfs. */
static void emit_disk(struct collect_ctx *ctx, const char *path, const char *fstype)
{
    struct statfs st;

    if (fstype && (procfs_fstype_is_pseudo(fstype) || fstype_is_network(fstype)))
        return;
    if (statfs(path, &st) < 0 || st.f_blocks == 0)
        return;
    if (!fstype) {
        fstype = fstype_of_magic((unsigned long)st.f_type);
        if (procfs_fstype_is_pseudo(fstype) || fstype_is_network(fstype))
            return;
    }
    /* As df computes it: used / (used + available to unprivileged users). */
    double used = (double)(st.f_blocks - st.f_bfree);
    double usable = used + (double)st.f_bavail;
    if (usable <= 0)
        return;
    struct sig_label labels[] = {{"mount", path}, {"fstype", fstype}};
    collect_emit(ctx, "host.disk.used_pct", used * 100.0 / usable, "percent", labels, 2);
}

/*
 * Disk usage is reported once per filesystem, not once per mount: bind mounts (`ip netns`
 * bind-mounts /run/netns, containers get /etc/hosts from the host's disk) and btrfs
 * subvolumes show one filesystem at several places. The first walk over the mount table picks
 * one mount per device, the second emits the picked ones in table order.
 */
struct disk_walk {
    host_collector_t *self;
    struct collect_ctx *ctx;
    bool have_slash_dev; /* stat("/") worked */
    uint32_t slash_major, slash_minor;
    bool slash_listed;                    /* a mount of any type is at "/" */
    char slash_fstype[PROCFS_FSTYPE_MAX]; /* of a mount on the device of "/"; "" if none */
};

static struct disk_pick *find_pick(host_collector_t *self, uint32_t major, uint32_t minor)
{
    for (size_t i = 0; i < self->npicks; i++) {
        if (self->picks[i].major == major && self->picks[i].minor == minor)
            return &self->picks[i];
    }
    return NULL;
}

/*
 * Which mount names a filesystem: the one at "/" (where a reader looks for the root
 * filesystem), then the whole filesystem over a bind mount of a directory in it, then the
 * shortest mount point; the first listed on a tie.
 */
static bool pick_is_better(const struct disk_pick *a, const struct disk_pick *b)
{
    if (a->at_slash != b->at_slash)
        return a->at_slash;
    if (a->whole != b->whole)
        return a->whole;
    return a->path_len < b->path_len;
}

static int disk_pick_cb(const struct procfs_mountinfo *m, void *userdata)
{
    struct disk_walk *w = userdata;
    host_collector_t *self = w->self;
    bool at_slash = strcmp(m->mountpoint, "/") == 0;

    w->slash_listed = w->slash_listed || at_slash;
    if (w->have_slash_dev && m->major == w->slash_major && m->minor == w->slash_minor &&
        w->slash_fstype[0] == '\0')
        snprintf(w->slash_fstype, sizeof(w->slash_fstype), "%s", m->fstype);
    if (procfs_fstype_is_pseudo(m->fstype) || fstype_is_network(m->fstype))
        return 0;

    struct disk_pick cand = {
        .major = m->major,
        .minor = m->minor,
        .mount_id = m->mount_id,
        .at_slash = at_slash,
        .whole = strcmp(m->root, "/") == 0,
        .path_len = strlen(m->mountpoint),
    };
    struct disk_pick *p = find_pick(self, m->major, m->minor);
    if (p) {
        if (pick_is_better(&cand, p))
            *p = cand;
        return 0;
    }
    if (self->npicks == self->picks_cap) {
        size_t cap = self->picks_cap ? self->picks_cap * 2 : 16;
        struct disk_pick *grown = realloc(self->picks, cap * sizeof(*grown));
        if (!grown)
            return -ENOMEM;
        self->picks = grown;
        self->picks_cap = cap;
    }
    self->picks[self->npicks++] = cand;
    return 0;
}

static int disk_emit_cb(const struct procfs_mountinfo *m, void *userdata)
{
    struct disk_walk *w = userdata;
    const struct disk_pick *p = find_pick(w->self, m->major, m->minor);

    if (p && p->mount_id == m->mount_id)
        emit_disk(w->ctx, p->as_slash ? "/" : m->mountpoint, m->fstype);
    return 0;
}

static void collect_disks(host_collector_t *self, struct collect_ctx *ctx)
{
    struct disk_walk w = {.self = self, .ctx = ctx};
    struct stat slash;
    size_t len = 0;

    if (stat("/", &slash) == 0) {
        w.have_slash_dev = true;
        w.slash_major = major(slash.st_dev);
        w.slash_minor = minor(slash.st_dev);
    }
    self->npicks = 0;
    bool have_table = read_proc(self, F_MOUNTINFO, &len) == 0 &&
                      procfs_parse_mountinfo(self->buf, len, disk_pick_cb, &w) >= 0;
    if (!have_table) {
        ctx->errors++;
        self->npicks = 0;
    }

    /* In a chroot, or a container whose root is not a mount of its own, "/" is not in the
     * table: its filesystem is still the one the agent and most of the node's files are on. */
    if (!w.slash_listed) {
        struct disk_pick *p =
            w.have_slash_dev ? find_pick(self, w.slash_major, w.slash_minor) : NULL;
        if (p)
            p->as_slash = true;
        else
            emit_disk(ctx, "/", w.slash_fstype[0] ? w.slash_fstype : NULL);
    }
    if (have_table)
        (void)procfs_parse_mountinfo(self->buf, len, disk_emit_cb, &w);
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
        collect_emit(w->ctx, "host.net.rx_bytes_per_s",
                     (double)(s->rx_bytes - p->rx_bytes) / w->seconds, "bytes/s", labels, 1);
        collect_emit(w->ctx, "host.net.tx_bytes_per_s",
                     (double)(s->tx_bytes - p->tx_bytes) / w->seconds, "bytes/s", labels, 1);
        collect_emit(w->ctx, "host.net.errors_per_s", (double)(s->errors - p->errors) / w->seconds,
                     "errors/s", labels, 1);
    }
    return 0;
}

static void collect_net(host_collector_t *self, struct collect_ctx *ctx)
{
    struct net_walk *w = calloc(1, sizeof(*w));
    int64_t now = vg_mono_ms();
    size_t len = 0;

    if (!w) {
        ctx->errors++;
        return;
    }
    w->self = self;
    w->ctx = ctx;
    w->seconds = self->net_prev_mono ? (double)(now - self->net_prev_mono) / 1000.0 : 0;
    if (read_proc(self, F_NET_DEV, &len) == 0 &&
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

/* ---- Evidence: the host snapshot (host_write_snapshot) ---------------------------------- */

#define SAMPLE_MS 200
#define TOP_N 10
#define SNAP_BUF (64 * 1024) /* meminfo, vmstat, mounts, net/dev: a few KiB each */
#define TOP_CMDLINE 240      /* command line shown in the top lists */

struct proc_sample {
    int pid;
    uint64_t starttime;
    uint64_t cpu_ticks;
};

/* One host_write_snapshot call: nothing shared with the collector (another thread runs it). */
struct snapshot {
    struct artifact_text text;
    const char *root;
    int proc_fd;
    char *buf; /* SNAP_BUF */
    long tck;
    struct procfs_cpu cpu0, cpu1;
    bool have_cpu0, have_cpu1;
    double sample_s; /* between the two samples, measured */
    struct proc_sample *before;
    size_t nbefore;
    struct proctable_proc *procs;
    double *cpu_pct; /* per procs[i], of one CPU, over the sample */
    size_t nprocs;
    size_t *order; /* indices into procs, sorted for a top list */
    podmap_t *pods; /* NULL: the POD column shows "-" */
};

static int snap_read(struct snapshot *s, const char *name, size_t *ret_len)
{
    return procfs_read_at(s->proc_fd, name, s->buf, SNAP_BUF, ret_len);
}

static int sample_cmp(const void *pa, const void *pb)
{
    const struct proc_sample *a = pa, *b = pb;
    return (a->pid > b->pid) - (a->pid < b->pid);
}

/* Every process's CPU time now: the first sample (before) or the second (procs). */
static void sample_processes(struct snapshot *s, bool first)
{
    int *pids = NULL;
    size_t npids = 0;
    if (proctable_pids(s->proc_fd, &pids, &npids) < 0 || npids == 0) {
        free(pids);
        return;
    }
    if (first) {
        s->before = malloc(npids * sizeof(*s->before));
    } else {
        s->procs = malloc(npids * sizeof(*s->procs));
        s->cpu_pct = malloc(npids * sizeof(*s->cpu_pct));
        s->order = malloc(npids * sizeof(*s->order));
    }
    if (first ? !s->before : (!s->procs || !s->cpu_pct || !s->order)) {
        free(pids);
        return; /* out of memory: the top lists are left out */
    }
    for (size_t i = 0; i < npids; i++) {
        struct proctable_proc p;
        if (proctable_read(s->proc_fd, pids[i], &p) < 0)
            continue; /* exited meanwhile */
        if (first) {
            s->before[s->nbefore++] = (struct proc_sample){p.pid, p.starttime, p.cpu_ticks};
            continue;
        }
        struct proc_sample key = {.pid = p.pid};
        const struct proc_sample *b =
            s->nbefore ? bsearch(&key, s->before, s->nbefore, sizeof(key), sample_cmp) : NULL;
        /* Not there before (or a new process with a recycled pid): started in the sample. */
        uint64_t base =
            b && b->starttime == p.starttime && b->cpu_ticks <= p.cpu_ticks ? b->cpu_ticks : 0;
        double pct = s->sample_s > 0
                         ? (double)(p.cpu_ticks - base) / (double)s->tck / s->sample_s * 100.0
                         : 0;
        s->procs[s->nprocs] = p;
        s->cpu_pct[s->nprocs] = pct;
        s->nprocs++;
    }
    free(pids);
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static void take_samples(struct snapshot *s)
{
    size_t len = 0;
    int64_t t0 = vg_mono_ms();
    s->have_cpu0 = snap_read(s, "stat", &len) == 0 && procfs_parse_stat(s->buf, len, &s->cpu0) == 0;
    sample_processes(s, true);
    int64_t left = SAMPLE_MS - (vg_mono_ms() - t0);
    if (left > 0)
        sleep_ms(left);
    s->have_cpu1 = snap_read(s, "stat", &len) == 0 && procfs_parse_stat(s->buf, len, &s->cpu1) == 0;
    s->sample_s = (double)(vg_mono_ms() - t0) / 1000.0;
    sample_processes(s, false);
}

/* CPUs: the "cpuN" lines of stat. 0 when unreadable. */
static unsigned count_cpus(struct snapshot *s)
{
    size_t len = 0;
    unsigned n = 0;
    if (snap_read(s, "stat", &len) < 0)
        return 0;
    for (const char *p = s->buf; (p = strstr(p, "\ncpu")) != NULL; p += 4) {
        if (p[4] >= '0' && p[4] <= '9')
            n++;
    }
    return n;
}

static void write_uptime_load(struct snapshot *s)
{
    size_t len = 0;
    double up = 0;
    struct procfs_load load;
    if (snap_read(s, "uptime", &len) == 0 && sscanf(s->buf, "%lf", &up) == 1 && up >= 0) {
        uint64_t secs = (uint64_t)up;
        char booted[32];
        artifact_time_text(vg_wall_ms() / 1000 - (int64_t)secs, booted, sizeof(booted));
        artifact_text_printf(&s->text, "uptime: %llud %02llu:%02llu:%02llu (%llu s), booted %s\n",
                             (unsigned long long)(secs / 86400),
                             (unsigned long long)(secs / 3600 % 24),
                             (unsigned long long)(secs / 60 % 60), (unsigned long long)(secs % 60),
                             (unsigned long long)secs, booted);
    } else {
        artifact_text_printf(&s->text, "uptime: unknown (%s/uptime not readable)\n", s->root);
    }
    if (snap_read(s, "loadavg", &len) == 0 && procfs_parse_loadavg(s->buf, len, &load) == 0)
        artifact_text_printf(&s->text,
                             "load: %.2f %.2f %.2f (1, 5, 15 min); %u runnable of %u threads\n",
                             load.avg1, load.avg5, load.avg15, load.runnable, load.threads);
    else
        artifact_text_printf(&s->text, "load: unknown (%s/loadavg not readable)\n", s->root);
}

static void write_cpu(struct snapshot *s)
{
    unsigned cpus = count_cpus(s);
    double busy;
    if (!s->have_cpu0 || !s->have_cpu1) {
        artifact_text_printf(&s->text, "cpu: unknown (%s/stat not readable)\n", s->root);
        return;
    }
    const struct procfs_cpu *a = &s->cpu0, *b = &s->cpu1;
    if (procfs_cpu_busy_pct(a, b, &busy) < 0) {
        artifact_text_printf(&s->text, "cpu: unknown (counters went backwards)\n");
        return;
    }
    uint64_t fields[8][2] = {
        {a->user, b->user},     {a->nice, b->nice}, {a->system, b->system},   {a->idle, b->idle},
        {a->iowait, b->iowait}, {a->irq, b->irq},   {a->softirq, b->softirq}, {a->steal, b->steal}};
    double delta[8], total = 0;
    for (size_t i = 0; i < 8; i++) {
        delta[i] = fields[i][1] >= fields[i][0] ? (double)(fields[i][1] - fields[i][0]) : 0;
        total += delta[i];
    }
    if (total <= 0) {
        artifact_text_printf(&s->text, "cpu: no time counted over the %d ms sample on %u CPUs\n",
                             SAMPLE_MS, cpus);
        return;
    }
    artifact_text_printf(&s->text,
                         "cpu: %.1f%% busy over %.0f ms on %u CPUs: user %.1f%%, nice %.1f%%, "
                         "system %.1f%%, idle %.1f%%, iowait %.1f%%, irq %.1f%%, softirq %.1f%%, "
                         "steal %.1f%%\n",
                         busy, s->sample_s * 1000, cpus, delta[0] * 100 / total,
                         delta[1] * 100 / total, delta[2] * 100 / total, delta[3] * 100 / total,
                         delta[4] * 100 / total, delta[5] * 100 / total, delta[6] * 100 / total,
                         delta[7] * 100 / total);
}

static void write_memory(struct snapshot *s)
{
    size_t len = 0;
    struct procfs_mem mem;
    uint64_t kills;
    if (snap_read(s, "meminfo", &len) < 0) {
        artifact_text_printf(&s->text, "memory: unknown (%s/meminfo not readable)\n", s->root);
    } else {
        if (procfs_parse_meminfo(s->buf, len, &mem) == 0)
            artifact_text_printf(&s->text,
                                 "memory: %.1f%% used (MemTotal - MemAvailable), %llu of %llu "
                                 "MiB available; swap %llu of %llu MiB free\n",
                                 mem.used_pct, (unsigned long long)(mem.available_bytes >> 20),
                                 (unsigned long long)(mem.total_bytes >> 20),
                                 (unsigned long long)(mem.swap_free_bytes >> 20),
                                 (unsigned long long)(mem.swap_total_bytes >> 20));
        artifact_text_printf(&s->text, "meminfo:\n");
        /* Every line as the kernel wrote it: the key values a responder knows. */
        for (char *line = s->buf, *end; *line && s->text.status == 0; line = end + 1) {
            end = strchr(line, '\n');
            if (!end)
                break; /* a cut-off last line */
            char clean[256];
            artifact_escape(line, (size_t)(end - line), NULL, clean, sizeof(clean));
            artifact_text_printf(&s->text, "  %s\n", clean);
        }
    }
    if (snap_read(s, "vmstat", &len) == 0 && procfs_parse_vmstat_oom_kill(s->buf, len, &kills) == 0)
        artifact_text_printf(&s->text, "oom kills since boot: %llu\n", (unsigned long long)kills);
    else
        artifact_text_printf(&s->text, "oom kills since boot: unknown\n");
}

/* "512B", "3.9KiB", "19.6GiB": df -h's way, in binary units. */
static void size_text(double bytes, char *buf, size_t cap)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    size_t u = 0;
    while (bytes >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
        bytes /= 1024;
        u++;
    }
    snprintf(buf, cap, u ? "%.1f%s" : "%.0f%s", bytes, units[u]);
}

static int snapshot_mount(const struct procfs_mount *m, void *userdata)
{
    struct snapshot *s = userdata;
    struct statfs st;
    if (procfs_fstype_is_pseudo(m->fstype) || fstype_is_network(m->fstype))
        return 0;
    char mount[256], device[256], fstype[80];
    artifact_escape(m->mountpoint, strlen(m->mountpoint), " ", mount, sizeof(mount));
    artifact_escape(m->device, strlen(m->device), " ", device, sizeof(device));
    artifact_escape(m->fstype, strlen(m->fstype), " ", fstype, sizeof(fstype));
    if (statfs(m->mountpoint, &st) < 0) {
        artifact_text_printf(&s->text, "  %-30s %-10s %-24s statfs failed: %s\n", mount, fstype,
                             device, strerror(errno));
        return s->text.status;
    }
    double bsize = (double)st.f_frsize ? (double)st.f_frsize : (double)st.f_bsize;
    double used = (double)(st.f_blocks - st.f_bfree) * bsize;
    double avail = (double)st.f_bavail * bsize;
    double use_pct = used + avail > 0 ? used * 100 / (used + avail) : 0;
    char size[16], used_text[16], avail_text[16], inodes[16];
    size_text((double)st.f_blocks * bsize, size, sizeof(size));
    size_text(used, used_text, sizeof(used_text));
    size_text(avail, avail_text, sizeof(avail_text));
    if (st.f_files > 0)
        snprintf(inodes, sizeof(inodes), "%.0f%%",
                 (double)(st.f_files - st.f_ffree) * 100 / (double)st.f_files);
    else
        snprintf(inodes, sizeof(inodes), "-");
    artifact_text_printf(&s->text, "  %-30s %-10s %-24s %9s %9s %9s %5.0f%% %7s%s\n", mount, fstype,
                         device, size, used_text, avail_text, use_pct, inodes,
                         m->read_only ? " ro" : "");
    return s->text.status;
}

static void write_filesystems(struct snapshot *s)
{
    size_t len = 0;
    artifact_text_printf(&s->text, "filesystems (pseudo, memory-backed and network ones "
                                   "skipped; USE%% as df: used / (used + available)):\n");
    artifact_text_printf(&s->text, "  %-30s %-10s %-24s %9s %9s %9s %6s %7s\n", "MOUNT", "FSTYPE",
                         "DEVICE", "SIZE", "USED", "AVAIL", "USE%", "INODES%");
    if (snap_read(s, "self/mounts", &len) < 0 ||
        procfs_parse_mounts(s->buf, len, snapshot_mount, s) < 0) {
        if (s->text.status == 0)
            artifact_text_printf(&s->text, "  (%s/self/mounts not readable)\n", s->root);
    }
}

static int snapshot_iface(const struct procfs_net_dev *dev, void *userdata)
{
    struct snapshot *s = userdata;
    char name[PROCFS_IFNAME_MAX * 4];
    artifact_escape(dev->name, strlen(dev->name), " ", name, sizeof(name));
    return artifact_text_printf(
        &s->text, "  %-16s %15llu %12llu %8llu %8llu %15llu %12llu %8llu %8llu\n", name,
        (unsigned long long)dev->rx_bytes, (unsigned long long)dev->rx_packets,
        (unsigned long long)dev->rx_errs, (unsigned long long)dev->rx_drop,
        (unsigned long long)dev->tx_bytes, (unsigned long long)dev->tx_packets,
        (unsigned long long)dev->tx_errs, (unsigned long long)dev->tx_drop);
}

static void write_interfaces(struct snapshot *s)
{
    size_t len = 0;
    artifact_text_printf(&s->text, "network interfaces (counters since boot or creation):\n");
    artifact_text_printf(&s->text, "  %-16s %15s %12s %8s %8s %15s %12s %8s %8s\n", "IFACE",
                         "RX_BYTES", "RX_PACKETS", "RX_ERRS", "RX_DROP", "TX_BYTES", "TX_PACKETS",
                         "TX_ERRS", "TX_DROP");
    if (snap_read(s, "net/dev", &len) < 0 ||
        procfs_parse_net_dev(s->buf, len, snapshot_iface, s) < 0) {
        if (s->text.status == 0)
            artifact_text_printf(&s->text, "  (%s/net/dev not readable)\n", s->root);
    }
}

static int by_rss(const void *pa, const void *pb, void *userdata)
{
    const struct snapshot *s = userdata;
    const struct proctable_proc *a = &s->procs[*(const size_t *)pa];
    const struct proctable_proc *b = &s->procs[*(const size_t *)pb];
    if (a->rss_kib != b->rss_kib)
        return a->rss_kib > b->rss_kib ? -1 : 1;
    return (a->pid > b->pid) - (a->pid < b->pid);
}

static int by_cpu(const void *pa, const void *pb, void *userdata)
{
    const struct snapshot *s = userdata;
    size_t ia = *(const size_t *)pa, ib = *(const size_t *)pb;
    double ca = s->cpu_pct[ia], cb = s->cpu_pct[ib];
    if (ca != cb)
        return ca > cb ? -1 : 1;
    const struct proctable_proc *a = &s->procs[ia], *b = &s->procs[ib];
    if (a->cpu_ticks != b->cpu_ticks) /* ties (clock-tick steps): the busier over its life */
        return a->cpu_ticks > b->cpu_ticks ? -1 : 1;
    return (a->pid > b->pid) - (a->pid < b->pid);
}

static void write_top(struct snapshot *s, bool cpu)
{
    if (cpu)
        artifact_text_printf(&s->text,
                             "top %d processes by CPU over the sample (%% of one CPU, in steps of "
                             "%.0f%%: clock ticks):\n",
                             TOP_N, s->sample_s > 0 ? 100.0 / (double)s->tck / s->sample_s : 0);
    else
        artifact_text_printf(&s->text, "top %d processes by resident memory:\n", TOP_N);
    if (s->nprocs == 0 || !s->order) {
        artifact_text_printf(&s->text, "  (no process readable under %s)\n", s->root);
        return;
    }
    for (size_t i = 0; i < s->nprocs; i++)
        s->order[i] = i;
    qsort_r(s->order, s->nprocs, sizeof(*s->order), cpu ? by_cpu : by_rss, s);
    artifact_text_printf(&s->text, "  %-7s %-16s %6s %10s %-23s %s\n", "PID", "USER", "CPU%",
                         "RSS_KIB", "NAMESPACE/POD/CONTAINER", "COMMAND");
    for (size_t k = 0; k < s->nprocs && k < TOP_N; k++) {
        const struct proctable_proc *p = &s->procs[s->order[k]];
        char user[64], cmdline[TOP_CMDLINE];
        if (p->have_uid) {
            char name[40];
            proctable_user_name(p->uid, name, sizeof(name));
            snprintf(user, sizeof(user), name[0] ? "%u(%s)" : "%u", (unsigned)p->uid, name);
        } else {
            snprintf(user, sizeof(user), "?");
        }
        proctable_cmdline(s->proc_fd, p->pid, p->comm, cmdline, sizeof(cmdline));
        char pod[PODMAP_NAMESPACE_MAX + PODMAP_POD_MAX + PODMAP_CONTAINER_MAX + 4] = "-";
        struct pod_identity id;
        if (s->pods && podmap_resolve_pid(s->pods, s->proc_fd, p->pid, vg_mono_ms(), &id) == 0)
            podmap_identity_text(&id, pod, sizeof(pod));
        artifact_text_printf(&s->text, "  %-7d %-16s %6.1f %10llu %-23s %s\n", p->pid, user,
                             s->cpu_pct[s->order[k]], (unsigned long long)p->rss_kib, pod, cmdline);
    }
}

int host_write_snapshot(const char *proc_root, podmap_t *pods, size_t max_bytes,
                        const struct artifact_writer *out, char *err, size_t errlen)
{
    char now[32];
    if (!out || !out->write) {
        snprintf(err, errlen, "host: no artifact writer");
        return -EINVAL;
    }
    struct snapshot *s = calloc(1, sizeof(*s));
    if (!s || !(s->buf = malloc(SNAP_BUF))) {
        free(s);
        snprintf(err, errlen, "host: out of memory");
        return -ENOMEM;
    }
    int r;
    s->root = proc_root ? proc_root : "/proc";
    s->pods = pods;
    s->tck = sysconf(_SC_CLK_TCK);
    if (s->tck <= 0)
        s->tck = 100;
    s->proc_fd = open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->proc_fd < 0) {
        r = -errno;
        snprintf(err, errlen, "host: cannot open %s: %s", s->root, strerror(-r));
        goto err_free;
    }
    artifact_text_init(&s->text, out, max_bytes);
    take_samples(s);

    artifact_time_text(vg_wall_ms() / 1000, now, sizeof(now));
    artifact_text_printf(&s->text, "# host snapshot from %s at %s\n", s->root, now);
    write_uptime_load(s);
    write_cpu(s);
    write_memory(s);
    write_filesystems(s);
    write_interfaces(s);
    write_top(s, false);
    write_top(s, true);
    r = artifact_text_finish(&s->text, "host", err, errlen);
    close(s->proc_fd);

err_free:
    free(s->before);
    free(s->procs);
    free(s->cpu_pct);
    free(s->order);
    free(s->buf);
    free(s);
    return r;
}

/* ---- The collector interface (collect.h) ----------------------------------------------------- */

static void collector_run(void *self, struct collect_ctx *ctx)
{
    host_collector_run(self, ctx);
}

static void collector_destroy(void **self_p)
{
    host_collector_t *self = *self_p;
    host_collector_destroy(&self);
    *self_p = NULL;
}

struct collector host_collector(host_collector_t **self_p, int64_t interval_ms)
{
    struct collector c = {
        .name = "host",
        .interval_ms = interval_ms,
        .run = collector_run,
        .destroy = collector_destroy,
        .self = *self_p,
    };
    *self_p = NULL;
    return c;
}
