/*
 * Fuzz target: the /proc text parsers of agent/collect/procfs.c that the host, netstat and
 * process collectors (host.c, netstat.c, proctable.c, procwatch.c) feed with what the kernel
 * writes: /proc/stat, meminfo, loadavg, vmstat, net/dev, mounts, self/mountinfo, net/tcp(6),
 * net/udp(6), net/unix, <pid>/stat, <pid>/status, <pid>/cgroup, fd links and pid names. Every
 * parser gets the same input, unterminated (procfs.h promises not to need a NUL).
 *
 * Oracles beyond "no crash, no sanitizer report": the documented return values (0 or a negative
 * errno for single records, a count of skipped lines otherwise), text fields terminated inside
 * their arrays, percentages within 0..100, ports and families as documented.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "procfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *field, size_t cap)
{
    if (memchr(field, '\0', cap) == NULL)
        abort();
}

static int on_net_dev(const struct procfs_net_dev *dev, void *userdata)
{
    (void)userdata;
    check_text(dev->name, sizeof(dev->name));
    return 0;
}

static int on_mount(const struct procfs_mount *m, void *userdata)
{
    (void)userdata;
    check_text(m->device, sizeof(m->device));
    check_text(m->mountpoint, sizeof(m->mountpoint));
    check_text(m->fstype, sizeof(m->fstype));
    (void)procfs_fstype_is_pseudo(m->fstype);
    return 0;
}

static int on_mountinfo(const struct procfs_mountinfo *m, void *userdata)
{
    (void)userdata;
    check_text(m->root, sizeof(m->root));
    check_text(m->mountpoint, sizeof(m->mountpoint));
    check_text(m->fstype, sizeof(m->fstype));
    return 0;
}

static void check_addr(const struct procfs_addr *a)
{
    char text[64];
    if (a->family != AF_INET && a->family != AF_INET6)
        abort();
    if (procfs_addr_format(a, text, sizeof(text)) < 0)
        abort();
    check_text(text, sizeof(text));
}

static int on_sock(const struct procfs_sock *s, void *userdata)
{
    (void)userdata;
    check_addr(&s->local);
    check_addr(&s->remote);
    (void)procfs_tcp_state_name(s->state);
    return 0;
}

static int on_unix(const struct procfs_unix_sock *s, void *userdata)
{
    (void)userdata;
    check_text(s->path, sizeof(s->path));
    return 0;
}

/* A per-record parser's result: the lines it skipped, or a negative errno (never from cb). */
static void check_records(int r)
{
    if (r < 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;

    struct procfs_cpu cpu, cpu2;
    if (procfs_parse_stat(buf, size, &cpu) == 0) {
        double pct = -1;
        cpu2 = cpu;
        cpu2.user += 10;
        cpu2.idle += 30;
        if (procfs_cpu_busy_pct(&cpu, &cpu2, &pct) == 0 && (pct < 0 || pct > 100))
            abort();
        (void)procfs_cpu_busy_pct(&cpu2, &cpu, &pct);
    }
    struct procfs_mem mem;
    if (procfs_parse_meminfo(buf, size, &mem) == 0 && !(mem.used_pct >= 0 && mem.used_pct <= 100))
        abort();
    struct procfs_load load;
    (void)procfs_parse_loadavg(buf, size, &load);
    uint64_t kills;
    (void)procfs_parse_vmstat_oom_kill(buf, size, &kills);

    check_records(procfs_parse_net_dev(buf, size, on_net_dev, NULL));
    check_records(procfs_parse_mounts(buf, size, on_mount, NULL));
    check_records(procfs_parse_mountinfo(buf, size, on_mountinfo, NULL));
    check_records(procfs_parse_net_tcp(buf, size, AF_INET, on_sock, NULL));
    check_records(procfs_parse_net_tcp(buf, size, AF_INET6, on_sock, NULL));
    check_records(procfs_parse_net_unix(buf, size, on_unix, NULL));

    struct procfs_pid_stat st;
    if (procfs_parse_pid_stat(buf, size, &st) == 0)
        check_text(st.comm, sizeof(st.comm));
    uid_t uid;
    (void)procfs_parse_pid_status_uid(buf, size, &uid);
    struct procfs_cgroup_ids ids;
    if (procfs_parse_cgroup(buf, size, &ids) == 0) {
        check_text(ids.container_id, sizeof(ids.container_id));
        check_text(ids.pod_uid, sizeof(ids.pod_uid));
    }

    /* The NUL-terminated helpers: a readlink target ("socket:[123]") and a /proc entry name. */
    if (size < 256) {
        char text[256];
        memcpy(text, data, size);
        text[size] = '\0';
        uint64_t inode;
        (void)procfs_socket_inode(text, &inode);
        int id;
        if (procfs_parse_id(text, &id) && id < 0)
            abort();
    }
    return 0;
}
