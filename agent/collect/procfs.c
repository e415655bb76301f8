/*
 * /proc parsers: the contract is in procfs.h.
 *
 * Everything works on spans (pointer + length) inside the caller's buffer, never on C strings:
 * the input need not be NUL-terminated and may contain NUL bytes. Numbers are parsed by
 * span_u64 rather than strtoull, because a token is not NUL-terminated and strtoull would
 * accept leading blanks, a sign ("-1" becomes 2^64 - 1) and "0x"; span_u64 takes digits only
 * and reports overflow. Loads are parsed as fixed point for the same reason and to stay out of
 * the locale's decimal separator.
 */
#include "procfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

/* ---- Spans, lines, tokens --------------------------------------------------------------- */

struct span {
    const char *p;
    size_t n;
};

/* The next complete ('\n'-terminated) line from buf at *pos, without its '\n'. */
static bool next_line(const char *buf, size_t len, size_t *pos, struct span *ret_line)
{
    if (*pos >= len)
        return false;
    const char *start = buf + *pos;
    const char *nl = memchr(start, '\n', len - *pos);
    if (!nl)
        return false; /* a truncated final fragment: see has_fragment */
    ret_line->p = start;
    ret_line->n = (size_t)(nl - start);
    *pos += ret_line->n + 1;
    return true;
}

/* After next_line returned false: was there an unterminated fragment left? */
static bool has_fragment(size_t len, size_t pos)
{
    return pos < len;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* The next run of non-blank bytes in *rest; *rest moves past it. */
static bool next_token(struct span *rest, struct span *ret_tok)
{
    size_t i = 0;
    while (i < rest->n && is_blank(rest->p[i]))
        i++;
    if (i == rest->n) {
        rest->p += i;
        rest->n = 0;
        return false;
    }
    size_t start = i;
    while (i < rest->n && !is_blank(rest->p[i]))
        i++;
    ret_tok->p = rest->p + start;
    ret_tok->n = i - start;
    rest->p += i;
    rest->n -= i;
    return true;
}

static bool span_eq(struct span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && memcmp(s.p, lit, n) == 0;
}

static bool span_starts(struct span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n >= n && memcmp(s.p, lit, n) == 0;
}

static bool span_ends(struct span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n >= n && memcmp(s.p + s.n - n, lit, n) == 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Digits only (base 10 or 16), at least one; -ERANGE on overflow, -EINVAL otherwise. */
static int span_u64(struct span s, unsigned base, uint64_t *ret)
{
    if (s.n == 0)
        return -EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < s.n; i++) {
        int d =
            base == 16 ? hex_value(s.p[i]) : (s.p[i] >= '0' && s.p[i] <= '9' ? s.p[i] - '0' : -1);
        if (d < 0)
            return -EINVAL;
        if (v > (UINT64_MAX - (uint64_t)d) / base)
            return -ERANGE;
        v = v * base + (uint64_t)d;
    }
    *ret = v;
    return 0;
}

static int span_u32(struct span s, unsigned base, uint32_t *ret)
{
    uint64_t v;
    int r = span_u64(s, base, &v);
    if (r < 0)
        return r;
    if (v > UINT32_MAX)
        return -ERANGE;
    *ret = (uint32_t)v;
    return 0;
}

/* Splits s at the first occurrence of c: false if c is absent. */
static bool span_split(struct span s, char c, struct span *ret_left, struct span *ret_right)
{
    const char *at = memchr(s.p, c, s.n);
    if (!at)
        return false;
    ret_left->p = s.p;
    ret_left->n = (size_t)(at - s.p);
    ret_right->p = at + 1;
    ret_right->n = s.n - ret_left->n - 1;
    return true;
}

/* ---- Reading ---------------------------------------------------------------------------- */

static int open_ro(int dirfd, const char *path)
{
    int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    return fd < 0 ? -errno : fd;
}

static ssize_t read_retry(int fd, char *buf, size_t cap)
{
    for (;;) {
        ssize_t n = read(fd, buf, cap);
        if (n >= 0)
            return n;
        if (errno != EINTR)
            return -errno;
    }
}

int procfs_read_at(int dirfd, const char *path, char *buf, size_t cap, size_t *ret_len)
{
    if (!path || !buf || cap == 0 || !ret_len)
        return -EINVAL;
    int fd = open_ro(dirfd, path);
    if (fd < 0)
        return fd;

    int r = 0;
    size_t fill = 0;
    for (;;) {
        if (fill == cap - 1) {
            /* Full: anything more means the file did not fit. */
            char extra;
            ssize_t n = read_retry(fd, &extra, 1);
            if (n < 0)
                r = (int)n;
            else if (n > 0)
                r = -EFBIG;
            break;
        }
        ssize_t n = read_retry(fd, buf + fill, cap - 1 - fill);
        if (n < 0) {
            r = (int)n;
            break;
        }
        if (n == 0)
            break;
        fill += (size_t)n;
    }
    close(fd);
    if (r < 0)
        return r;
    buf[fill] = '\0';
    *ret_len = fill;
    return 0;
}

int procfs_read(const char *path, char *buf, size_t cap, size_t *ret_len)
{
    return procfs_read_at(AT_FDCWD, path, buf, cap, ret_len);
}

int procfs_read_stream(int dirfd, const char *path, char *buf, size_t cap, procfs_chunk_cb cb,
                       void *userdata)
{
    if (!path || !buf || cap == 0 || !cb)
        return -EINVAL;
    int fd = open_ro(dirfd, path);
    if (fd < 0)
        return fd;

    int r = 0;
    size_t fill = 0;
    for (;;) {
        if (fill == cap) {
            r = -EFBIG; /* one line longer than the buffer */
            break;
        }
        ssize_t n = read_retry(fd, buf + fill, cap - fill);
        if (n < 0) {
            r = (int)n;
            break;
        }
        if (n == 0)
            break; /* a fragment without '\n' at EOF is dropped */
        fill += (size_t)n;
        const char *last_nl = memrchr(buf, '\n', fill);
        if (!last_nl)
            continue;
        size_t whole = (size_t)(last_nl - buf) + 1;
        r = cb(buf, whole, userdata);
        if (r < 0)
            break;
        r = 0;
        memmove(buf, buf + whole, fill - whole);
        fill -= whole;
    }
    close(fd);
    return r;
}

/* ---- CPU -------------------------------------------------------------------------------- */

int procfs_parse_stat(const char *buf, size_t len, struct procfs_cpu *ret_cpu)
{
    if (!buf || !ret_cpu)
        return -EINVAL;
    size_t pos = 0;
    struct span line;
    while (next_line(buf, len, &pos, &line)) {
        struct span tok;
        if (!next_token(&line, &tok) || !span_eq(tok, "cpu"))
            continue;
        uint64_t v[8] = {0};
        size_t got = 0;
        while (got < 8 && next_token(&line, &tok)) {
            if (span_u64(tok, 10, &v[got]) < 0)
                return -EINVAL;
            got++;
        }
        if (got < 4)
            return -EINVAL;
        *ret_cpu = (struct procfs_cpu){
            .user = v[0],
            .nice = v[1],
            .system = v[2],
            .idle = v[3],
            .iowait = v[4],
            .irq = v[5],
            .softirq = v[6],
            .steal = v[7],
        };
        return 0;
    }
    return -EINVAL;
}

static int cpu_sums(const struct procfs_cpu *c, uint64_t *ret_busy, uint64_t *ret_idle)
{
    uint64_t busy = 0, idle = 0;
    const uint64_t busy_parts[] = {c->user, c->nice, c->system, c->irq, c->softirq, c->steal};
    for (size_t i = 0; i < sizeof(busy_parts) / sizeof(busy_parts[0]); i++)
        if (__builtin_add_overflow(busy, busy_parts[i], &busy))
            return -ERANGE;
    if (__builtin_add_overflow(c->idle, c->iowait, &idle))
        return -ERANGE;
    *ret_busy = busy;
    *ret_idle = idle;
    return 0;
}

int procfs_cpu_busy_pct(const struct procfs_cpu *prev, const struct procfs_cpu *cur,
                        double *ret_pct)
{
    if (!prev || !cur || !ret_pct)
        return -EINVAL;
    uint64_t prev_busy, prev_idle, cur_busy, cur_idle;
    if (cpu_sums(prev, &prev_busy, &prev_idle) < 0 || cpu_sums(cur, &cur_busy, &cur_idle) < 0)
        return -ERANGE;
    if (cur_busy < prev_busy || cur_idle < prev_idle)
        return -ERANGE;
    uint64_t d_busy = cur_busy - prev_busy;
    uint64_t d_total;
    if (__builtin_add_overflow(d_busy, cur_idle - prev_idle, &d_total))
        return -ERANGE;
    *ret_pct = d_total == 0 ? 0.0 : 100.0 * (double)d_busy / (double)d_total;
    return 0;
}

/* ---- Memory ----------------------------------------------------------------------------- */

/* "   24683620 kB" -> bytes. */
static int meminfo_bytes(struct span rest, uint64_t *ret)
{
    struct span value, unit;
    if (!next_token(&rest, &value) || !next_token(&rest, &unit) || !span_eq(unit, "kB"))
        return -EINVAL;
    uint64_t kb;
    int r = span_u64(value, 10, &kb);
    if (r < 0)
        return r;
    if (kb > UINT64_MAX / 1024)
        return -ERANGE;
    *ret = kb * 1024;
    return 0;
}

int procfs_parse_meminfo(const char *buf, size_t len, struct procfs_mem *ret_mem)
{
    if (!buf || !ret_mem)
        return -EINVAL;
    static const char *const keys[] = {"MemTotal", "MemAvailable", "SwapTotal", "SwapFree"};
    enum { TOTAL, AVAIL, SWAP_TOTAL, SWAP_FREE, NKEYS };
    uint64_t val[NKEYS] = {0};
    bool seen[NKEYS] = {false};

    size_t pos = 0;
    struct span line;
    while (next_line(buf, len, &pos, &line)) {
        struct span key, rest;
        if (!span_split(line, ':', &key, &rest))
            continue;
        for (size_t k = 0; k < NKEYS; k++) {
            if (seen[k] || !span_eq(key, keys[k]))
                continue;
            int r = meminfo_bytes(rest, &val[k]);
            if (r < 0)
                return r == -ERANGE ? -ERANGE : -EINVAL;
            seen[k] = true;
        }
    }
    if (!seen[TOTAL] || !seen[AVAIL] || val[TOTAL] == 0)
        return -EINVAL;

    uint64_t used = val[AVAIL] >= val[TOTAL] ? 0 : val[TOTAL] - val[AVAIL];
    *ret_mem = (struct procfs_mem){
        .total_bytes = val[TOTAL],
        .available_bytes = val[AVAIL],
        .swap_total_bytes = val[SWAP_TOTAL],
        .swap_free_bytes = val[SWAP_FREE],
        .used_pct = 100.0 * (double)used / (double)val[TOTAL],
    };
    return 0;
}

/* ---- Load ------------------------------------------------------------------------------- */

/* "1.71" -> 1.71: up to 9 integer and 9 fraction digits, no sign, no exponent. */
static int span_fixed(struct span s, double *ret)
{
    struct span int_part = s, frac_part = {s.p + s.n, 0};
    const char *dot = memchr(s.p, '.', s.n);
    if (dot) {
        int_part.n = (size_t)(dot - s.p);
        frac_part.p = dot + 1;
        frac_part.n = s.n - int_part.n - 1;
        if (frac_part.n == 0)
            return -EINVAL;
    }
    if (int_part.n > 9 || frac_part.n > 9)
        return -EINVAL;
    uint64_t whole, frac = 0;
    if (span_u64(int_part, 10, &whole) < 0)
        return -EINVAL;
    if (frac_part.n > 0 && span_u64(frac_part, 10, &frac) < 0)
        return -EINVAL;
    double scale = 1.0;
    for (size_t i = 0; i < frac_part.n; i++)
        scale *= 10.0;
    *ret = (double)whole + (double)frac / scale;
    return 0;
}

int procfs_parse_loadavg(const char *buf, size_t len, struct procfs_load *ret_load)
{
    if (!buf || !ret_load)
        return -EINVAL;
    size_t pos = 0;
    struct span line, tok, runnable, threads;
    if (!next_line(buf, len, &pos, &line))
        return -EINVAL;
    double avg[3];
    for (size_t i = 0; i < 3; i++)
        if (!next_token(&line, &tok) || span_fixed(tok, &avg[i]) < 0)
            return -EINVAL;
    struct procfs_load load = {.avg1 = avg[0], .avg5 = avg[1], .avg15 = avg[2]};
    if (!next_token(&line, &tok) || !span_split(tok, '/', &runnable, &threads) ||
        span_u32(runnable, 10, &load.runnable) < 0 || span_u32(threads, 10, &load.threads) < 0)
        return -EINVAL;
    *ret_load = load;
    return 0;
}

/* ---- Network interfaces ----------------------------------------------------------------- */

/* dev_valid_name: no '/', ':' or whitespace; we also refuse control bytes. */
static bool ifname_valid(struct span name)
{
    if (name.n == 0 || name.n >= PROCFS_IFNAME_MAX)
        return false;
    for (size_t i = 0; i < name.n; i++) {
        unsigned char c = (unsigned char)name.p[i];
        if (c <= ' ' || c == 0x7f || c == '/' || c == ':')
            return false;
    }
    return true;
}

static bool parse_net_dev_line(struct span line, struct procfs_net_dev *dev)
{
    struct span name, rest;
    if (!span_split(line, ':', &name, &rest))
        return false;
    while (name.n > 0 && is_blank(name.p[0])) {
        name.p++;
        name.n--;
    }
    if (!ifname_valid(name))
        return false;
    uint64_t v[16];
    for (size_t i = 0; i < 16; i++) {
        struct span tok;
        if (!next_token(&rest, &tok) || span_u64(tok, 10, &v[i]) < 0)
            return false;
    }
    memset(dev, 0, sizeof(*dev));
    memcpy(dev->name, name.p, name.n);
    dev->rx_bytes = v[0];
    dev->rx_packets = v[1];
    dev->rx_errs = v[2];
    dev->rx_drop = v[3];
    dev->tx_bytes = v[8];
    dev->tx_packets = v[9];
    dev->tx_errs = v[10];
    dev->tx_drop = v[11];
    return true;
}

int procfs_parse_net_dev(const char *buf, size_t len, procfs_net_dev_cb cb, void *userdata)
{
    if (!buf || !cb)
        return -EINVAL;
    size_t pos = 0;
    int skipped = 0;
    unsigned lineno = 0;
    struct span line;
    while (next_line(buf, len, &pos, &line)) {
        if (++lineno <= 2)
            continue; /* "Inter-|   Receive ..." and " face |bytes ..." */
        struct procfs_net_dev dev;
        if (!parse_net_dev_line(line, &dev)) {
            skipped++;
            continue;
        }
        int r = cb(&dev, userdata);
        if (r < 0)
            return r;
    }
    return skipped + (has_fragment(len, pos) ? 1 : 0);
}

/* ---- OOM kills -------------------------------------------------------------------------- */

int procfs_parse_vmstat_oom_kill(const char *buf, size_t len, uint64_t *ret_count)
{
    if (!buf || !ret_count)
        return -EINVAL;
    size_t pos = 0;
    struct span line, tok;
    while (next_line(buf, len, &pos, &line)) {
        if (!next_token(&line, &tok) || !span_eq(tok, "oom_kill"))
            continue;
        uint64_t v;
        if (!next_token(&line, &tok) || span_u64(tok, 10, &v) < 0)
            return -EINVAL;
        *ret_count = v;
        return 0;
    }
    return -ENOENT;
}

/* ---- Mounts ----------------------------------------------------------------------------- */

/* Decodes the kernel's \ooo escapes into out (NUL-terminated). False if too long or NUL. */
static bool unescape_octal(struct span s, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < s.n; i++) {
        char c = s.p[i];
        if (c == '\\' && s.n - i > 3) {
            int d0 = s.p[i + 1] - '0', d1 = s.p[i + 2] - '0', d2 = s.p[i + 3] - '0';
            if (d0 >= 0 && d0 <= 3 && d1 >= 0 && d1 <= 7 && d2 >= 0 && d2 <= 7) {
                c = (char)(d0 * 64 + d1 * 8 + d2);
                i += 3;
            }
        }
        if (c == '\0' || o + 1 >= cap)
            return false;
        out[o++] = c;
    }
    out[o] = '\0';
    return o > 0;
}

static bool parse_mount_line(struct span line, struct procfs_mount *m)
{
    struct span device, mountpoint, fstype, options, first_opt, other_opts;
    if (!next_token(&line, &device) || !next_token(&line, &mountpoint) ||
        !next_token(&line, &fstype) || !next_token(&line, &options))
        return false;
    if (!unescape_octal(device, m->device, sizeof(m->device)) ||
        !unescape_octal(mountpoint, m->mountpoint, sizeof(m->mountpoint)) ||
        !unescape_octal(fstype, m->fstype, sizeof(m->fstype)))
        return false;
    if (!span_split(options, ',', &first_opt, &other_opts))
        first_opt = options;
    m->read_only = span_eq(first_opt, "ro");
    return true;
}

/*
 * The mount tables' shared walk: handle(line) returns 1 for a line it took, 0 for one it could
 * not parse (skipped, counted), or a negative errno that ends the walk. Returns the number of
 * lines skipped (a cut-off last line included) or that errno.
 */
static int each_mount_line(const char *buf, size_t len, int (*handle)(struct span line, void *ctx),
                           void *ctx)
{
    size_t pos = 0;
    int skipped = 0;
    struct span line;
    while (next_line(buf, len, &pos, &line)) {
        int r = handle(line, ctx);
        if (r < 0)
            return r;
        skipped += r == 0;
    }
    return skipped + (has_fragment(len, pos) ? 1 : 0);
}

struct mounts_walk {
    procfs_mount_cb cb;
    void *userdata;
};

static int mount_line(struct span line, void *ctx)
{
    const struct mounts_walk *w = ctx;
    struct procfs_mount mount;
    if (!parse_mount_line(line, &mount))
        return 0;
    int r = w->cb(&mount, w->userdata);
    return r < 0 ? r : 1;
}

int procfs_parse_mounts(const char *buf, size_t len, procfs_mount_cb cb, void *userdata)
{
    if (!buf || !cb)
        return -EINVAL;
    struct mounts_walk w = {cb, userdata};
    return each_mount_line(buf, len, mount_line, &w);
}

static bool parse_mountinfo_line(struct span line, struct procfs_mountinfo *m)
{
    struct span id, parent, dev, major, minor, root, mountpoint, options, tok, fstype;
    if (!next_token(&line, &id) || !next_token(&line, &parent) || !next_token(&line, &dev) ||
        !next_token(&line, &root) || !next_token(&line, &mountpoint) ||
        !next_token(&line, &options))
        return false;
    if (span_u32(id, 10, &m->mount_id) < 0 || span_u32(parent, 10, &m->parent_id) < 0 ||
        !span_split(dev, ':', &major, &minor) || span_u32(major, 10, &m->major) < 0 ||
        span_u32(minor, 10, &m->minor) < 0)
        return false;
    do { /* optional fields up to the separator */
        if (!next_token(&line, &tok))
            return false;
    } while (!span_eq(tok, "-"));
    if (!next_token(&line, &fstype))
        return false;
    if (!unescape_octal(root, m->root, sizeof(m->root)) ||
        !unescape_octal(mountpoint, m->mountpoint, sizeof(m->mountpoint)) ||
        !unescape_octal(fstype, m->fstype, sizeof(m->fstype)))
        return false;
    struct span first_opt, other_opts;
    if (!span_split(options, ',', &first_opt, &other_opts))
        first_opt = options;
    m->read_only = span_eq(first_opt, "ro");
    return true;
}

struct mountinfo_walk {
    procfs_mountinfo_cb cb;
    void *userdata;
};

static int mountinfo_line(struct span line, void *ctx)
{
    const struct mountinfo_walk *w = ctx;
    struct procfs_mountinfo mount;
    if (!parse_mountinfo_line(line, &mount))
        return 0;
    int r = w->cb(&mount, w->userdata);
    return r < 0 ? r : 1;
}

int procfs_parse_mountinfo(const char *buf, size_t len, procfs_mountinfo_cb cb, void *userdata)
{
    if (!buf || !cb)
        return -EINVAL;
    struct mountinfo_walk w = {cb, userdata};
    return each_mount_line(buf, len, mountinfo_line, &w);
}

bool procfs_fstype_is_pseudo(const char *fstype)
{
    static const char *const pseudo[] = {
        /* kernel interfaces */
        "proc", "sysfs", "cgroup", "cgroup2", "nsfs", "autofs", "mqueue", "debugfs", "tracefs",
        "securityfs", "pstore", "bpf", "configfs", "fusectl", "devpts", "binfmt_misc", "rpc_pipefs",
        "efivarfs", "selinuxfs", "cpuset", "nfsd", "sockfs", "pipefs", "anon_inodefs", "xenfs",
        "rootfs",
        /* memory-backed: their size is RAM, reported by the memory signal */
        "tmpfs", "devtmpfs", "ramfs", "hugetlbfs",
        /* read-only images, always 100% used */
        "squashfs",
        /* FUSE filesystems that only present kernel or desktop state */
        "fuse.lxcfs", "fuse.gvfsd-fuse", "fuse.portal"};
    if (!fstype)
        return true;
    for (size_t i = 0; i < sizeof(pseudo) / sizeof(pseudo[0]); i++)
        if (strcmp(fstype, pseudo[i]) == 0)
            return true;
    return false;
}

/* ---- Sockets ---------------------------------------------------------------------------- */

const char *procfs_tcp_state_name(int state)
{
    static const char *const names[] = {
        [PROCFS_TCP_ESTABLISHED] = "ESTABLISHED",
        [PROCFS_TCP_SYN_SENT] = "SYN_SENT",
        [PROCFS_TCP_SYN_RECV] = "SYN_RECV",
        [PROCFS_TCP_FIN_WAIT1] = "FIN_WAIT1",
        [PROCFS_TCP_FIN_WAIT2] = "FIN_WAIT2",
        [PROCFS_TCP_TIME_WAIT] = "TIME_WAIT",
        [PROCFS_TCP_CLOSE] = "CLOSE",
        [PROCFS_TCP_CLOSE_WAIT] = "CLOSE_WAIT",
        [PROCFS_TCP_LAST_ACK] = "LAST_ACK",
        [PROCFS_TCP_LISTEN] = "LISTEN",
        [PROCFS_TCP_CLOSING] = "CLOSING",
        [PROCFS_TCP_NEW_SYN_RECV] = "NEW_SYN_RECV",
    };
    if (state <= 0 || (size_t)state >= sizeof(names) / sizeof(names[0]))
        return "UNKNOWN";
    return names[state];
}

int procfs_addr_format(const struct procfs_addr *addr, char *buf, size_t cap)
{
    if (!addr || !buf)
        return -EINVAL;
    char host[INET6_ADDRSTRLEN];
    if (!inet_ntop(addr->family, addr->addr, host, sizeof(host)))
        return -EINVAL;
    int n = addr->family == AF_INET6 ? snprintf(buf, cap, "[%s]:%u", host, (unsigned)addr->port)
                                     : snprintf(buf, cap, "%s:%u", host, (unsigned)addr->port);
    if (n < 0 || (size_t)n >= cap)
        return -ENOSPC;
    return 0;
}

/*
 * "0100007F:1F90" (8 hex digits per 32-bit word: 1 word for AF_INET, 4 for AF_INET6). The
 * kernel prints each word as a host-order integer whose memory holds network-order bytes, so
 * copying the integer's bytes back gives the address on either byte order.
 */
static bool parse_endpoint(struct span tok, int family, struct procfs_addr *ret)
{
    size_t words = family == AF_INET ? 1 : 4;
    struct span addr_hex, port_hex;
    if (!span_split(tok, ':', &addr_hex, &port_hex) || addr_hex.n != words * 8 || port_hex.n == 0 ||
        port_hex.n > 4)
        return false;
    struct procfs_addr a = {.family = family};
    for (size_t w = 0; w < words; w++) {
        uint32_t word;
        if (span_u32((struct span){addr_hex.p + w * 8, 8}, 16, &word) < 0)
            return false;
        memcpy(a.addr + w * 4, &word, sizeof(word));
    }
    uint32_t port;
    if (span_u32(port_hex, 16, &port) < 0)
        return false;
    a.port = (uint16_t)port;

    static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (family == AF_INET6 && memcmp(a.addr, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0) {
        a.family = AF_INET;
        memmove(a.addr, a.addr + 12, 4);
        memset(a.addr + 4, 0, 12);
    }
    *ret = a;
    return true;
}

/* "  12:" (a slot number) or "000000004edcc584:" (a kernel pointer): hex and a colon. */
static bool is_slot(struct span tok)
{
    uint64_t ignored;
    return tok.n >= 2 && tok.p[tok.n - 1] == ':' &&
           span_u64((struct span){tok.p, tok.n - 1}, 16, &ignored) == 0;
}

/*
 * "sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode"
 * and, for UDP, more columns after the inode.
 */
static bool parse_sock_line(struct span line, int family, struct procfs_sock *s)
{
    struct span tok[10];
    for (size_t i = 0; i < 10; i++)
        if (!next_token(&line, &tok[i]))
            return false;
    struct procfs_sock sock = {0};
    struct span tx, rx;
    uint32_t state, uid;
    if (!is_slot(tok[0]) || !parse_endpoint(tok[1], family, &sock.local) ||
        !parse_endpoint(tok[2], family, &sock.remote) || tok[3].n > 2 ||
        span_u32(tok[3], 16, &state) < 0 || !span_split(tok[4], ':', &tx, &rx) ||
        span_u32(tx, 16, &sock.tx_queue) < 0 || span_u32(rx, 16, &sock.rx_queue) < 0 ||
        span_u32(tok[7], 10, &uid) < 0 || uid == (uint32_t)-1 ||
        span_u64(tok[9], 10, &sock.inode) < 0)
        return false;
    sock.state = (int)state;
    sock.uid = (uid_t)uid;
    *s = sock;
    return true;
}

int procfs_parse_net_tcp(const char *buf, size_t len, int family, procfs_sock_cb cb, void *userdata)
{
    if (!buf || !cb || (family != AF_INET && family != AF_INET6))
        return -EINVAL;
    size_t pos = 0;
    int skipped = 0;
    struct span line;
    while (next_line(buf, len, &pos, &line)) {
        struct span rest = line, first;
        if (!next_token(&rest, &first) || span_eq(first, "sl"))
            continue; /* the header, wherever a chunk boundary put it; blank lines */
        struct procfs_sock sock;
        if (!parse_sock_line(line, family, &sock)) {
            skipped++;
            continue;
        }
        int r = cb(&sock, userdata);
        if (r < 0)
            return r;
    }
    return skipped + (has_fragment(len, pos) ? 1 : 0);
}

#define SO_ACCEPTCON_FLAG (1u << 16) /* __SO_ACCEPTCON: a listening socket */

/* "Num RefCount Protocol Flags Type St Inode Path": "%pK: %08X %08X %08X %04X %02X %5lu". */
static bool parse_unix_line(struct span line, struct procfs_unix_sock *s)
{
    struct span tok[7];
    for (size_t i = 0; i < 7; i++)
        if (!next_token(&line, &tok[i]))
            return false;
    uint32_t refcount, protocol;
    struct procfs_unix_sock sock = {0};
    if (!is_slot(tok[0]) || span_u32(tok[1], 16, &refcount) < 0 ||
        span_u32(tok[2], 16, &protocol) < 0 || span_u32(tok[3], 16, &sock.flags) < 0 ||
        span_u32(tok[4], 16, &sock.type) < 0 || span_u32(tok[5], 16, &sock.state) < 0 ||
        span_u64(tok[6], 10, &sock.inode) < 0)
        return false;
    /* The path is the rest of the line after one space, printed raw (spaces included). */
    if (line.n > 1) {
        struct span path = {line.p + 1, line.n - 1};
        if (line.p[0] != ' ' || path.n >= sizeof(sock.path) || memchr(path.p, '\0', path.n))
            return false;
        memcpy(sock.path, path.p, path.n);
    }
    sock.listening = (sock.flags & SO_ACCEPTCON_FLAG) != 0;
    *s = sock;
    return true;
}

int procfs_parse_net_unix(const char *buf, size_t len, procfs_unix_cb cb, void *userdata)
{
    if (!buf || !cb)
        return -EINVAL;
    size_t pos = 0;
    int skipped = 0;
    struct span line;
    while (next_line(buf, len, &pos, &line)) {
        struct span rest = line, first;
        if (!next_token(&rest, &first) || span_eq(first, "Num"))
            continue;
        struct procfs_unix_sock sock;
        if (!parse_unix_line(line, &sock)) {
            skipped++;
            continue;
        }
        int r = cb(&sock, userdata);
        if (r < 0)
            return r;
    }
    return skipped + (has_fragment(len, pos) ? 1 : 0);
}

int procfs_socket_inode(const char *link_target, uint64_t *ret_inode)
{
    static const char prefix[] = "socket:[";
    if (!link_target || !ret_inode)
        return -EINVAL;
    if (strncmp(link_target, prefix, sizeof(prefix) - 1) != 0)
        return -ENOTSOCK;
    const char *digits = link_target + sizeof(prefix) - 1;
    size_t n = 0;
    while (n <= 20 && digits[n] >= '0' && digits[n] <= '9')
        n++;
    uint64_t inode;
    if (n > 20 || digits[n] != ']' || digits[n + 1] != '\0' ||
        span_u64((struct span){digits, n}, 10, &inode) < 0)
        return -EINVAL;
    *ret_inode = inode;
    return 0;
}

/* ---- Processes -------------------------------------------------------------------------- */

static bool span_int(struct span s, int *ret)
{
    uint64_t v;
    if (span_u64(s, 10, &v) < 0 || v > INT_MAX)
        return false;
    *ret = (int)v;
    return true;
}

int procfs_parse_pid_stat(const char *buf, size_t len, struct procfs_pid_stat *ret_stat)
{
    if (!buf || !ret_stat || len == 0)
        return -EINVAL;
    /* "pid (comm) state ppid ...": comm is anything, so it ends at the last ')'. */
    const char *open = memchr(buf, '(', len);
    const char *close = memrchr(buf, ')', len);
    if (!open || !close || close < open || open == buf || open[-1] != ' ')
        return -EINVAL;
    const char *end = memchr(close, '\n', len - (size_t)(close - buf));
    if (!end || close + 1 == end || close[1] != ' ')
        return -EINVAL;

    struct procfs_pid_stat st = {0};
    if (!span_int((struct span){buf, (size_t)(open - 1 - buf)}, &st.pid) || st.pid == 0)
        return -EINVAL;
    struct span comm = {open + 1, (size_t)(close - open - 1)};
    if (memchr(comm.p, '\0', comm.n))
        return -EINVAL;
    memcpy(st.comm, comm.p, comm.n < sizeof(st.comm) ? comm.n : sizeof(st.comm) - 1);

    /* Fields 3 (state) to 24 (rss) of proc(5), counted from 0 here. */
    enum { STATE = 0, PPID = 1, UTIME = 11, STIME = 12, THREADS = 17, START = 19, RSS = 21 };
    struct span rest = {close + 1, (size_t)(end - close - 1)}, tok[RSS + 1];
    for (size_t i = 0; i <= RSS; i++)
        if (!next_token(&rest, &tok[i]))
            return -EINVAL;
    uint32_t threads;
    if (tok[STATE].n != 1 || !((tok[STATE].p[0] >= 'A' && tok[STATE].p[0] <= 'Z') ||
                               (tok[STATE].p[0] >= 'a' && tok[STATE].p[0] <= 'z')))
        return -EINVAL;
    if (!span_int(tok[PPID], &st.ppid) || span_u64(tok[UTIME], 10, &st.utime) < 0 ||
        span_u64(tok[STIME], 10, &st.stime) < 0 || span_u32(tok[THREADS], 10, &threads) < 0 ||
        span_u64(tok[START], 10, &st.starttime) < 0 || span_u64(tok[RSS], 10, &st.rss_pages) < 0)
        return -EINVAL;
    st.state = tok[STATE].p[0];
    st.num_threads = threads;
    *ret_stat = st;
    return 0;
}

int procfs_parse_pid_status_uid(const char *buf, size_t len, uid_t *ret_uid)
{
    if (!buf || !ret_uid)
        return -EINVAL;
    size_t pos = 0;
    struct span line, tok;
    while (next_line(buf, len, &pos, &line)) {
        if (!next_token(&line, &tok) || !span_eq(tok, "Uid:"))
            continue;
        uint32_t uid;
        if (!next_token(&line, &tok) || span_u32(tok, 10, &uid) < 0 || uid == (uint32_t)-1)
            return -EINVAL;
        *ret_uid = (uid_t)uid;
        return 0;
    }
    return -EINVAL;
}

static bool is_lower_hex(struct span s, size_t n)
{
    if (s.n != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s.p[i] >= '0' && s.p[i] <= '9') || (s.p[i] >= 'a' && s.p[i] <= 'f')))
            return false;
    return true;
}

/* A container id in one path component, or false. */
static bool component_container_id(struct span comp, struct span *ret_id)
{
    if (is_lower_hex(comp, 64)) {
        *ret_id = comp;
        return true;
    }
    /* The systemd driver's unit is <prefix><id>.scope; CRI-O under the cgroupfs driver names
     * the directory crio-<id>, without the suffix. */
    if (span_ends(comp, ".scope"))
        comp.n -= strlen(".scope");
    /* crio-conmon-<id> and libpod-conmon-<id> (the runtime's monitor, outside the container)
     * do not match: "conmon-<id>" is not 64 hex digits. */
    static const char *const prefixes[] = {"docker-", "cri-containerd-", "crio-", "libpod-"};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        if (!span_starts(comp, prefixes[i]))
            continue;
        size_t skip = strlen(prefixes[i]);
        struct span id = {comp.p + skip, comp.n - skip};
        if (is_lower_hex(id, 64)) {
            *ret_id = id;
            return true;
        }
    }
    return false;
}

/* A UUID (with '-' or, in systemd slice names, '_') or a static pod's 32-hex config hash. */
static bool pod_uid_valid(struct span s)
{
    if (is_lower_hex(s, 32))
        return true;
    if (s.n != 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        char c = s.p[i];
        bool sep = i == 8 || i == 13 || i == 18 || i == 23;
        if (sep ? (c != '-' && c != '_') : !is_lower_hex((struct span){&s.p[i], 1}, 1))
            return false;
    }
    return true;
}

/* "pod<uid>" (cgroupfs driver) or "kubepods-<qos>-pod<uid>.slice" (systemd driver). */
static bool component_pod_uid(struct span comp, struct span *ret_uid)
{
    if (span_ends(comp, ".slice"))
        comp.n -= strlen(".slice");
    struct span uid;
    if (span_starts(comp, "pod")) {
        uid = (struct span){comp.p + 3, comp.n - 3};
    } else if (span_starts(comp, "kubepods-")) {
        const char *p = NULL;
        for (size_t i = comp.n; i >= 4; i--)
            if (memcmp(comp.p + i - 4, "-pod", 4) == 0) {
                p = comp.p + i;
                break;
            }
        if (!p)
            return false;
        uid = (struct span){p, (size_t)(comp.p + comp.n - p)};
    } else {
        return false;
    }
    if (!pod_uid_valid(uid))
        return false;
    *ret_uid = uid;
    return true;
}

int procfs_parse_cgroup(const char *buf, size_t len, struct procfs_cgroup_ids *ret_ids)
{
    if (!buf || !ret_ids)
        return -EINVAL;
    struct span container = {NULL, 0}, pod = {NULL, 0};
    size_t pos = 0;
    struct span line;
    while (next_line(buf, len, &pos, &line) && (!container.p || !pod.p)) {
        /* "hierarchy-ID:controller-list:cgroup-path"; the path may itself contain ':'. */
        struct span id, rest, controllers, path;
        if (!span_split(line, ':', &id, &rest) || !span_split(rest, ':', &controllers, &path))
            continue;
        struct span line_container = {NULL, 0}, line_pod = {NULL, 0}, comp, tail;
        bool kubepods = false;
        while (path.n > 0) {
            if (!span_split(path, '/', &comp, &tail)) {
                comp = path;
                tail = (struct span){path.p + path.n, 0};
            }
            struct span found;
            if (span_starts(comp, "kubepods"))
                kubepods = true;
            if (component_container_id(comp, &found))
                line_container = found; /* the innermost wins: nested containers */
            else if (component_pod_uid(comp, &found))
                line_pod = found;
            path = tail;
        }
        if (!container.p && line_container.p)
            container = line_container;
        if (!pod.p && line_pod.p && kubepods)
            pod = line_pod;
    }
    if (!container.p && !pod.p)
        return -ENOENT;

    struct procfs_cgroup_ids ids = {{0}, {0}};
    if (container.p)
        memcpy(ids.container_id, container.p, container.n);
    for (size_t i = 0; pod.p && i < pod.n; i++)
        ids.pod_uid[i] = pod.p[i] == '_' ? '-' : pod.p[i];
    *ret_ids = ids;
    return 0;
}

bool procfs_parse_id(const char *text, int *ret)
{
    int64_t v = 0;
    size_t i = 0;
    for (; text[i] >= '0' && text[i] <= '9'; i++) {
        if (i >= 10)
            return false;
        v = v * 10 + (text[i] - '0');
    }
    if (i == 0 || text[i] != '\0' || v > INT_MAX)
        return false;
    *ret = (int)v;
    return true;
}
