/*
 * The socket-table collector: the contract and the signals are in netstat.h.
 *
 * One cycle:
 *   1. read the TCP, UDP and unix socket tables, counting states and totals, collecting
 *      listeners into self->cur and established remotes into the remote table. From a real
 *      procfs the tables come from NETLINK_SOCK_DIAG (sockdiag.c: one walk of the kernel's
 *      TCP hash for both families instead of one per /proc/net file); elsewhere (test trees),
 *      or when the kernel refuses netlink, net/tcp, tcp6, udp, udp6 and unix are streamed
 *      through one buffer. Both feed the same callbacks;
 *   2. sort the listeners by (proto, family, address, port, inode) and index them by inode;
 *   3. find each listener's owner: carried over from the previous cycle by inode and
 *      confirmed with one readlink of <pid>/fd/<fd>, or, for listeners not yet looked up,
 *      by walking every <pid>/fd/ until all are found;
 *   4. emit, compare the listeners with the previous cycle's (net.listen.new), and keep this
 *      cycle's set as the next baseline.
 *
 * The whole-table TCP walk costs the kernel a pass over every bucket of its connection hash
 * (262,144 on a 24 GiB machine: 1-2 ms whatever the number of sockets), the agent's largest
 * cost at a 1 s interval. Over netlink it therefore runs only when the kernel's cheap TCP
 * counters say the picture changed: /proc/net/sockstat{,6} (sockets in use, orphans,
 * TIME_WAIT) moved by more than PRESSURE_NOISE or 5 % since the last walk, or TcpExt's signs
 * of SYN pressure (SYN cookies sent, listen queue overflows and drops) grew, or the last walk
 * is FULL_WALK_MAX_MS old. In between, listeners still come from a LISTEN-only dump every
 * cycle (the kernel walks only its small listening hash), so a new listener is reported at
 * once; the per-state counts and top talkers are those of the last walk.
 */
#include "netstat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/magic.h>

#include "log.h"
#include "procfs.h"
#include "proctable.h"
#include "sockdiag.h"
#include "timeutil.h"

#define STREAM_BUF (16 * 1024) /* the kernel hands out /proc/net in pages: plenty */
#define MAX_LISTENERS 2048
#define REMOTE_MAX 2048   /* distinct remote addresses counted exactly */
#define REMOTE_SLOTS 4096 /* open-addressing index over them: a power of two > REMOTE_MAX */
#define TOP_REMOTES 10
#define COMM_MAX 16            /* TASK_COMM_LEN: what a user process's comm can hold */
#define FULL_WALK_MAX_MS 10000 /* the whole TCP table is walked at least this often */
#define PRESSURE_NOISE 8       /* socket-count changes up to this (or 5 %) are not news */

enum { PROTO_TCP = 1, PROTO_UDP = 2 };
enum table { TABLE_TCP, TABLE_UDP, TABLE_UNIX, TABLE_COUNT };
static const char *const table_names[TABLE_COUNT] = {"tcp", "udp", "unix"};

struct listener {
    uint64_t inode;
    uint8_t addr[16]; /* as in struct procfs_addr: AF_INET uses the first 4 bytes */
    uint16_t port;
    uint8_t family;
    uint8_t proto;
    bool looked_up; /* an fd walk has searched for the owner (found or not) */
    int pid;        /* 0 = no owner known */
    int fd;         /* where the owner holds it: re-checked each cycle */
    char comm[COMM_MAX];
};

struct inode_ref {
    uint64_t inode;
    uint32_t idx;
};

/* One cycle's listeners: items sorted by key once step 2 ran, by_inode indexes them. */
struct listener_set {
    struct listener *items;
    struct inode_ref *by_inode;
    size_t n, cap;
};

struct remote {
    uint8_t addr[16];
    uint32_t count;
    uint8_t family;
};

/* The kernel's cheap TCP counters, compared between cycles to decide on a full walk. */
struct tcp_pressure {
    uint64_t inuse, orphan, tw, inuse6;
    uint64_t syn_signs; /* SyncookiesSent + ListenOverflows + ListenDrops + TCPReqQFull* */
};

struct netstat_collector {
    char proc_root[PATH_MAX];
    int proc_fd; /* -1 until proc_root could be opened */
    char *buf;   /* STREAM_BUF: every /proc/net file, and <pid>/stat when comm is missing */
    struct listener_set cur, prev;
    bool have_baseline;     /* prev holds a complete set to compare with */
    struct remote *remotes; /* REMOTE_MAX, dense */
    uint16_t *slots;        /* REMOTE_SLOTS: index + 1 into remotes, 0 = empty */
    size_t nremotes;
    uint64_t seed;              /* of the remote hash: client addresses are chosen by others */
    bool diag_checked;          /* proc_root was looked at: is it a real procfs? */
    sockdiag_t *diag;           /* NULL: text only (a test tree, or netlink refused) */
    bool diag_off[TABLE_COUNT]; /* a dump of this table failed: text from then on */
    /* The last whole-table TCP walk (netlink only): when, what the counters said, what it
     * counted. */
    bool walked;
    int64_t walked_ms; /* mono */
    struct tcp_pressure walked_at;
    uint64_t walk_states[PROCFS_TCP_NEW_SYN_RECV + 1];
    uint64_t walks, skips;
    /* Listeners' owners in pods (hostNetwork pods: kubelet's neighbours, ingress, CNI): what
     * the last cycle resolved, by pid, carried to the next while the pid still owns one, so a
     * steady node reads no cgroup file. */
    podmap_t *pods; /* NULL: owners are not named */
    struct owner_pod *owner_pods, *next_owner_pods;
    size_t nowner_pods, nnext_owner_pods, owner_pods_cap, next_owner_pods_cap;
};

struct owner_pod {
    int pid;
    bool in_pod;
    struct pod_identity id;
};

/* What a cycle gathers while the files stream past. */
struct cycle {
    netstat_collector_t *self;
    struct collect_ctx *ctx;
    int family; /* of the file being read */
    uint8_t proto;
    size_t malformed;
    uint64_t tcp_states[PROCFS_TCP_NEW_SYN_RECV + 1]; /* [0]: numbers the kernel does not use */
    uint64_t udp;
    uint64_t unix_socks;
    bool listeners_full;
};

enum source { SOURCE_OK, SOURCE_ABSENT, SOURCE_FAILED };

/* ---- Lifecycle -------------------------------------------------------------------------- */

static uint64_t make_seed(const void *salt)
{
    uint64_t seed;
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t)sizeof(seed))
        return seed;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)salt;
}

/*
 * Netlink shows the socket tables of the caller's network namespace, which is what
 * <procfs>/net shows too (a link to self/net); a directory that is not procfs (a test's tree)
 * is read as text.
 */
static void open_proc(netstat_collector_t *self)
{
    if (self->proc_fd < 0)
        self->proc_fd = open(self->proc_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (self->proc_fd < 0 || self->diag_checked)
        return;
    self->diag_checked = true;
    struct statfs st;
    if (fstatfs(self->proc_fd, &st) < 0 || st.f_type != PROC_SUPER_MAGIC)
        return;
    self->diag = sockdiag_new();
    if (!self->diag)
        vg_log(VG_LOG_DEBUG, "netstat: netlink sock_diag refused (%s): reading %s/net as text",
               strerror(errno), self->proc_root);
}

netstat_collector_t *netstat_collector_new(const char *proc_root)
{
    netstat_collector_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->proc_fd = -1;
    int n =
        snprintf(self->proc_root, sizeof(self->proc_root), "%s", proc_root ? proc_root : "/proc");
    if (n < 0 || (size_t)n >= sizeof(self->proc_root))
        goto err_free;
    self->buf = malloc(STREAM_BUF);
    self->remotes = calloc(REMOTE_MAX, sizeof(*self->remotes));
    self->slots = calloc(REMOTE_SLOTS, sizeof(*self->slots));
    if (!self->buf || !self->remotes || !self->slots)
        goto err_free;
    self->seed = make_seed(self);
    /* Opened now, so a later chroot or privilege drop keeps access; retried by each run. */
    open_proc(self);
    return self;

err_free:
    netstat_collector_destroy(&self);
    return NULL;
}

void netstat_collector_destroy(netstat_collector_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    netstat_collector_t *self = *self_p;
    if (self->proc_fd >= 0)
        close(self->proc_fd);
    sockdiag_destroy(&self->diag);
    free(self->buf);
    free(self->remotes);
    free(self->slots);
    free(self->cur.items);
    free(self->cur.by_inode);
    free(self->prev.items);
    free(self->prev.by_inode);
    free(self->owner_pods);
    free(self->next_owner_pods);
    free(self);
    *self_p = NULL;
}

void netstat_collector_set_pods(netstat_collector_t *self, podmap_t *pods)
{
    self->pods = pods;
}

/* ---- Addresses -------------------------------------------------------------------------- */

static bool addr_is_zero(const struct procfs_addr *a)
{
    static const uint8_t zero[16];
    return memcmp(a->addr, zero, sizeof(zero)) == 0;
}

static bool addr_is_loopback(const struct procfs_addr *a)
{
    static const uint8_t v6_loopback[16] = {[15] = 1};
    if (a->family == AF_INET)
        return a->addr[0] == 127;
    return memcmp(a->addr, v6_loopback, sizeof(v6_loopback)) == 0;
}

/* "10.1.2.3", "::": the address alone, for a label. */
static void addr_text(int family, const uint8_t *addr, char *buf, size_t cap)
{
    if (!inet_ntop(family, addr, buf, (socklen_t)cap))
        snprintf(buf, cap, "?");
}

/* ---- Remote addresses: counts per address, top N ---------------------------------------- */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static size_t remote_slot(const netstat_collector_t *self, int family, const uint8_t *addr)
{
    uint64_t lo, hi;
    memcpy(&lo, addr, sizeof(lo));
    memcpy(&hi, addr + 8, sizeof(hi));
    uint64_t h = mix64(self->seed ^ lo ^ (uint64_t)family);
    return (size_t)mix64(h ^ hi) & (REMOTE_SLOTS - 1);
}

static void remotes_reindex(netstat_collector_t *self)
{
    memset(self->slots, 0, REMOTE_SLOTS * sizeof(*self->slots));
    for (size_t j = 0; j < self->nremotes; j++) {
        size_t i = remote_slot(self, self->remotes[j].family, self->remotes[j].addr);
        while (self->slots[i] != 0)
            i = (i + 1) & (REMOTE_SLOTS - 1);
        self->slots[i] = (uint16_t)(j + 1);
    }
}

/*
 * The table is full and a new address arrived: one Misra-Gries step. Every count (and the
 * newcomer's 1) goes down by one and addresses reaching 0 leave. An address holding more
 * than 1/(REMOTE_MAX + 1) of the connections can never be dropped this way.
 */
static void remotes_decrement(netstat_collector_t *self)
{
    size_t kept = 0;
    for (size_t j = 0; j < self->nremotes; j++) {
        if (self->remotes[j].count > 1) {
            self->remotes[kept] = self->remotes[j];
            self->remotes[kept].count--;
            kept++;
        }
    }
    self->nremotes = kept;
    remotes_reindex(self);
}

static void remote_count(netstat_collector_t *self, const struct procfs_addr *a)
{
    size_t i = remote_slot(self, a->family, a->addr);
    /* Terminates: at most REMOTE_MAX of the REMOTE_SLOTS slots are ever used. */
    while (self->slots[i] != 0) {
        struct remote *r = &self->remotes[self->slots[i] - 1];
        if (r->family == a->family && memcmp(r->addr, a->addr, sizeof(r->addr)) == 0) {
            if (r->count < UINT32_MAX)
                r->count++;
            return;
        }
        i = (i + 1) & (REMOTE_SLOTS - 1);
    }
    if (self->nremotes == REMOTE_MAX) {
        remotes_decrement(self);
        return;
    }
    struct remote *r = &self->remotes[self->nremotes++];
    memcpy(r->addr, a->addr, sizeof(r->addr));
    r->family = (uint8_t)a->family;
    r->count = 1;
    self->slots[i] = (uint16_t)self->nremotes;
}

/* Larger count first; ties by address, so the same top list comes out every cycle. */
static bool remote_before(const struct remote *a, const struct remote *b)
{
    if (a->count != b->count)
        return a->count > b->count;
    if (a->family != b->family)
        return a->family < b->family;
    return memcmp(a->addr, b->addr, sizeof(a->addr)) < 0;
}

static void emit_remotes(netstat_collector_t *self, struct collect_ctx *ctx)
{
    const struct remote *top[TOP_REMOTES];
    size_t ntop = 0;

    for (size_t j = 0; j < self->nremotes; j++) {
        const struct remote *r = &self->remotes[j];
        if (ntop == TOP_REMOTES && !remote_before(r, top[ntop - 1]))
            continue;
        size_t at = ntop < TOP_REMOTES ? ntop++ : TOP_REMOTES - 1;
        while (at > 0 && remote_before(r, top[at - 1])) {
            top[at] = top[at - 1];
            at--;
        }
        top[at] = r;
    }
    for (size_t k = 0; k < ntop; k++) {
        char remote[INET6_ADDRSTRLEN];
        addr_text(top[k]->family, top[k]->addr, remote, sizeof(remote));
        struct sig_label labels[] = {{"remote", remote}};
        collect_emit(ctx, "net.connections.by_remote", (double)top[k]->count, "count", labels, 1);
    }
}

/* ---- Reading the socket tables ---------------------------------------------------------- */

static int set_grow(struct listener_set *set)
{
    size_t cap = set->cap ? set->cap * 2 : 32;
    if (cap > MAX_LISTENERS)
        cap = MAX_LISTENERS;
    struct listener *items = realloc(set->items, cap * sizeof(*items));
    if (!items)
        return -ENOMEM;
    set->items = items;
    struct inode_ref *by_inode = realloc(set->by_inode, cap * sizeof(*by_inode));
    if (!by_inode)
        return -ENOMEM; /* items is merely larger than cap says: harmless */
    set->by_inode = by_inode;
    set->cap = cap;
    return 0;
}

static void listener_add(struct cycle *c, const struct procfs_sock *s)
{
    struct listener_set *set = &c->self->cur;
    if (set->n == set->cap && (set->cap >= MAX_LISTENERS || set_grow(set) < 0)) {
        c->listeners_full = true;
        return;
    }
    struct listener *l = &set->items[set->n++];
    *l = (struct listener){
        .inode = s->inode,
        .port = s->local.port,
        .family = (uint8_t)s->local.family,
        .proto = c->proto,
    };
    memcpy(l->addr, s->local.addr, sizeof(l->addr));
}

static int tcp_sock(const struct procfs_sock *s, void *userdata)
{
    struct cycle *c = userdata;
    bool known = s->state > 0 && s->state <= PROCFS_TCP_NEW_SYN_RECV;
    c->tcp_states[known ? s->state : 0]++;
    if (s->state == PROCFS_TCP_LISTEN)
        listener_add(c, s);
    else if (s->state == PROCFS_TCP_ESTABLISHED && !addr_is_loopback(&s->remote))
        remote_count(c->self, &s->remote);
    return 0;
}

static int udp_sock(const struct procfs_sock *s, void *userdata)
{
    struct cycle *c = userdata;
    c->udp++;
    /* Bound and unconnected: receives from anyone, the UDP form of listening. */
    if (s->local.port != 0 && s->remote.port == 0 && addr_is_zero(&s->remote))
        listener_add(c, s);
    return 0;
}

static int unix_sock(const struct procfs_unix_sock *s, void *userdata)
{
    (void)s;
    struct cycle *c = userdata;
    c->unix_socks++;
    return 0;
}

static int net_chunk(const char *chunk, size_t len, void *userdata)
{
    struct cycle *c = userdata;
    int r = c->proto == PROTO_TCP ? procfs_parse_net_tcp(chunk, len, c->family, tcp_sock, c)
                                  : procfs_parse_net_tcp(chunk, len, c->family, udp_sock, c);
    if (r < 0)
        return r;
    c->malformed += (size_t)r;
    return 0;
}

static int unix_chunk(const char *chunk, size_t len, void *userdata)
{
    struct cycle *c = userdata;
    int r = procfs_parse_net_unix(chunk, len, unix_sock, c);
    if (r < 0)
        return r;
    c->malformed += (size_t)r;
    return 0;
}

/* Streams <proc_root>/<name>. optional: a missing file is a kernel without IPv6. */
static enum source read_table(struct cycle *c, const char *name, int family, uint8_t proto,
                              bool optional)
{
    netstat_collector_t *self = c->self;
    c->family = family;
    c->proto = proto;
    c->malformed = 0;
    int r = -EBADF;
    if (self->proc_fd >= 0)
        r = procfs_read_stream(self->proc_fd, name, self->buf, STREAM_BUF,
                               proto ? net_chunk : unix_chunk, c);
    if (r == -ENOENT && optional)
        return SOURCE_ABSENT;
    if (r < 0) {
        vg_log(VG_LOG_DEBUG, "netstat: %s/%s: %s", self->proc_root, name, strerror(-r));
        c->ctx->errors++;
        return SOURCE_FAILED;
    }
    if (c->malformed > 0) {
        vg_log(VG_LOG_DEBUG, "netstat: %s/%s: %zu malformed lines skipped", self->proc_root, name,
               c->malformed);
        c->ctx->errors++;
    }
    return SOURCE_OK;
}

/* A netlink dump of one table: OK, or FAILED with whatever it counted undone (text follows). */
struct undo {
    size_t listeners;
    bool listeners_full;
};

static struct undo undo_mark(const struct cycle *c)
{
    return (struct undo){c->self->cur.n, c->listeners_full};
}

static enum source diag_result(struct cycle *c, enum table table, int r, struct undo mark)
{
    netstat_collector_t *self = c->self;
    if (r >= 0) {
        if (r > 0) {
            vg_log(VG_LOG_DEBUG, "netstat: sock_diag %s: %d malformed records skipped",
                   table_names[table], r);
            c->ctx->errors++;
        }
        return SOURCE_OK;
    }
    /* Refused (no diag module, an LSM) or broken: the text has the same sockets. */
    vg_log(VG_LOG_DEBUG, "netstat: sock_diag %s: %s: reading %s/net as text from now on",
           table_names[table], strerror(-r), self->proc_root);
    self->diag_off[table] = true;
    self->cur.n = mark.listeners;
    c->listeners_full = mark.listeners_full;
    return SOURCE_FAILED;
}

static bool use_diag(const netstat_collector_t *self, enum table table)
{
    return self->diag && !self->diag_off[table];
}

static enum source read_tcp(struct cycle *c)
{
    netstat_collector_t *self = c->self;
    if (use_diag(self, TABLE_TCP)) {
        struct undo mark = undo_mark(c);
        c->proto = PROTO_TCP;
        if (diag_result(c, TABLE_TCP, sockdiag_tcp(self->diag, tcp_sock, c), mark) == SOURCE_OK)
            return SOURCE_OK;
        memset(c->tcp_states, 0, sizeof(c->tcp_states));
        self->nremotes = 0;
        memset(self->slots, 0, REMOTE_SLOTS * sizeof(*self->slots));
    }
    enum source tcp4 = read_table(c, "net/tcp", AF_INET, PROTO_TCP, false);
    enum source tcp6 = read_table(c, "net/tcp6", AF_INET6, PROTO_TCP, true);
    return tcp4 == SOURCE_OK && tcp6 != SOURCE_FAILED ? SOURCE_OK : SOURCE_FAILED;
}

/* Listening sockets only; the other states are the last walk's. */
static enum source read_tcp_listeners(struct cycle *c)
{
    netstat_collector_t *self = c->self;
    struct undo mark = undo_mark(c);
    c->proto = PROTO_TCP;
    int r = sockdiag_tcp_listeners(self->diag, tcp_sock, c);
    if (diag_result(c, TABLE_TCP, r, mark) == SOURCE_OK) {
        uint64_t listening = c->tcp_states[PROCFS_TCP_LISTEN];
        memcpy(c->tcp_states, self->walk_states, sizeof(c->tcp_states));
        c->tcp_states[PROCFS_TCP_LISTEN] = listening;
        return SOURCE_OK;
    }
    /* Netlink failed: a whole walk through the text, as read_tcp does from now on. */
    memset(c->tcp_states, 0, sizeof(c->tcp_states));
    self->nremotes = 0;
    memset(self->slots, 0, REMOTE_SLOTS * sizeof(*self->slots));
    return read_tcp(c);
}

/* The value after "key " in a sockstat line such as "TCP: inuse 5 orphan 0 tw 19". */
static bool stat_field(const char *line, const char *key, uint64_t *ret)
{
    char pattern[32];
    snprintf(pattern, sizeof(pattern), " %s ", key);
    const char *at = strstr(line, pattern);
    char *end;
    if (!at)
        return false;
    errno = 0;
    unsigned long long v = strtoull(at + strlen(pattern), &end, 10);
    if (errno || end == at + strlen(pattern))
        return false;
    *ret = v;
    return true;
}

/* Sum of the TcpExt fields named in names, from /proc/net/netstat's header and value lines. */
static uint64_t tcpext_sum(char *buf, const char *const *names)
{
    char *header = strstr(buf, "TcpExt:");
    char *values = header ? strstr(header + 7, "TcpExt:") : NULL;
    uint64_t sum = 0;
    if (!values)
        return 0;
    char *hsave = NULL, *vsave = NULL;
    char *hend = strchr(header, '\n'), *vend = strchr(values, '\n');
    if (!hend)
        return 0;
    *hend = '\0';
    if (vend)
        *vend = '\0';
    char *h = strtok_r(header + 7, " ", &hsave);
    char *v = strtok_r(values + 7, " ", &vsave);
    for (; h && v; h = strtok_r(NULL, " ", &hsave), v = strtok_r(NULL, " ", &vsave)) {
        for (const char *const *n = names; *n; n++)
            if (strcmp(h, *n) == 0)
                sum += strtoull(v, NULL, 10);
    }
    return sum;
}

static bool read_pressure(netstat_collector_t *self, struct tcp_pressure *p)
{
    static const char *const syn_signs[] = {"SyncookiesSent",       "ListenOverflows",
                                            "ListenDrops",          "TCPReqQFullDrop",
                                            "TCPReqQFullDoCookies", NULL};
    size_t len;
    const char *tcp;

    memset(p, 0, sizeof(*p));
    if (procfs_read_at(self->proc_fd, "net/sockstat", self->buf, STREAM_BUF, &len) < 0 ||
        !(tcp = strstr(self->buf, "TCP: ")) || !stat_field(tcp, "inuse", &p->inuse) ||
        !stat_field(tcp, "orphan", &p->orphan) || !stat_field(tcp, "tw", &p->tw))
        return false;
    if (procfs_read_at(self->proc_fd, "net/sockstat6", self->buf, STREAM_BUF, &len) == 0 &&
        (tcp = strstr(self->buf, "TCP6: ")))
        stat_field(tcp, "inuse", &p->inuse6);
    if (procfs_read_at(self->proc_fd, "net/netstat", self->buf, STREAM_BUF, &len) < 0)
        return false;
    p->syn_signs = tcpext_sum(self->buf, syn_signs);
    return true;
}

static bool moved(uint64_t now, uint64_t then)
{
    uint64_t diff = now > then ? now - then : then - now;
    uint64_t noise = then / 20 > PRESSURE_NOISE ? then / 20 : PRESSURE_NOISE;
    return diff > noise;
}

/* Whether this cycle walks the whole TCP table (see the top of this file). */
static bool walk_due(netstat_collector_t *self, const struct tcp_pressure *p, int64_t now)
{
    const struct tcp_pressure *w = &self->walked_at;
    return !self->walked || now - self->walked_ms >= FULL_WALK_MAX_MS ||
           moved(p->inuse, w->inuse) || moved(p->orphan, w->orphan) || moved(p->tw, w->tw) ||
           moved(p->inuse6, w->inuse6) || p->syn_signs > w->syn_signs;
}

static enum source read_udp(struct cycle *c)
{
    netstat_collector_t *self = c->self;
    if (use_diag(self, TABLE_UDP)) {
        struct undo mark = undo_mark(c);
        c->proto = PROTO_UDP;
        int r = sockdiag_udp(self->diag, AF_INET, udp_sock, c);
        if (r >= 0) {
            int r6 = sockdiag_udp(self->diag, AF_INET6, udp_sock, c);
            if (r6 == -ENOENT || r6 == -EAFNOSUPPORT)
                r6 = 0; /* a kernel without IPv6 */
            r = r6 < 0 ? r6 : r + r6;
        }
        if (diag_result(c, TABLE_UDP, r, mark) == SOURCE_OK)
            return SOURCE_OK;
        c->udp = 0;
    }
    enum source udp4 = read_table(c, "net/udp", AF_INET, PROTO_UDP, false);
    enum source udp6 = read_table(c, "net/udp6", AF_INET6, PROTO_UDP, true);
    return udp4 == SOURCE_OK && udp6 != SOURCE_FAILED ? SOURCE_OK : SOURCE_FAILED;
}

static enum source read_unix(struct cycle *c)
{
    netstat_collector_t *self = c->self;
    if (use_diag(self, TABLE_UNIX)) {
        struct undo mark = undo_mark(c);
        if (diag_result(c, TABLE_UNIX, sockdiag_unix(self->diag, unix_sock, c), mark) == SOURCE_OK)
            return SOURCE_OK;
        c->unix_socks = 0;
    }
    return read_table(c, "net/unix", AF_UNIX, 0, false);
}

/* ---- Owners: which process holds each listening socket ---------------------------------- */

static int key_cmp(const struct listener *a, const struct listener *b)
{
    if (a->proto != b->proto)
        return a->proto < b->proto ? -1 : 1;
    if (a->family != b->family)
        return a->family < b->family ? -1 : 1;
    int r = memcmp(a->addr, b->addr, sizeof(a->addr));
    if (r != 0)
        return r;
    if (a->port != b->port)
        return a->port < b->port ? -1 : 1;
    return 0;
}

static int listener_cmp(const void *pa, const void *pb)
{
    const struct listener *a = pa, *b = pb;
    int r = key_cmp(a, b);
    if (r != 0)
        return r;
    return a->inode < b->inode ? -1 : a->inode > b->inode;
}

static int inode_ref_cmp(const void *pa, const void *pb)
{
    const struct inode_ref *a = pa, *b = pb;
    return a->inode < b->inode ? -1 : a->inode > b->inode;
}

static int key_cmp_void(const void *pa, const void *pb)
{
    return key_cmp(pa, pb);
}

static struct listener *find_inode(const struct listener_set *set, uint64_t inode)
{
    struct inode_ref key = {.inode = inode};
    if (set->n == 0)
        return NULL;
    const struct inode_ref *ref =
        bsearch(&key, set->by_inode, set->n, sizeof(*set->by_inode), inode_ref_cmp);
    return ref ? &set->items[ref->idx] : NULL;
}

/* Sorts by key, drops a socket listed twice (a table read while it changed), indexes. */
static void set_index(struct listener_set *set)
{
    if (set->n == 0)
        return;
    qsort(set->items, set->n, sizeof(*set->items), listener_cmp);
    size_t kept = 1;
    for (size_t i = 1; i < set->n; i++) {
        if (listener_cmp(&set->items[i], &set->items[kept - 1]) != 0)
            set->items[kept++] = set->items[i];
    }
    set->n = kept;
    for (size_t i = 0; i < set->n; i++)
        set->by_inode[i] = (struct inode_ref){set->items[i].inode, (uint32_t)i};
    qsort(set->by_inode, set->n, sizeof(*set->by_inode), inode_ref_cmp);
}

/* The comm as a label value: printable ASCII only, and none of the series-key syntax. */
static void comm_clean(const char *raw, size_t len, char out[COMM_MAX])
{
    if (len > COMM_MAX - 1)
        len = COMM_MAX - 1;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)raw[i];
        out[i] = (ch < 0x20 || ch > 0x7e || strchr("{},=\"\\", ch)) ? '?' : (char)ch;
    }
    out[len] = '\0';
}

/*
 * <pid>/comm, or the comm field of <pid>/stat (read through scratch), as raw bytes without
 * the newline, NUL-terminated and cut to COMM_MAX - 1. -ENOENT/-ESRCH when the process is
 * gone.
 */
static int read_comm_raw(int proc_fd, char *scratch, size_t scratch_cap, int pid,
                         char out[COMM_MAX])
{
    char path[32], raw[64];
    size_t len;

    snprintf(path, sizeof(path), "%d/comm", pid);
    int r = procfs_read_at(proc_fd, path, raw, sizeof(raw), &len);
    if (r == 0) {
        if (len > 0 && raw[len - 1] == '\n')
            len--;
        if (len > COMM_MAX - 1)
            len = COMM_MAX - 1;
        memcpy(out, raw, len);
        out[len] = '\0';
        return 0;
    }
    struct procfs_pid_stat st;
    snprintf(path, sizeof(path), "%d/stat", pid);
    r = procfs_read_at(proc_fd, path, scratch, scratch_cap, &len);
    if (r < 0)
        return r;
    r = procfs_parse_pid_stat(scratch, len, &st);
    if (r < 0)
        return r;
    size_t n = strnlen(st.comm, COMM_MAX - 1); /* a kernel thread's name can be longer */
    memcpy(out, st.comm, n);
    out[n] = '\0';
    return 0;
}

/* The comm as a label value (comm_clean). */
static int read_comm(netstat_collector_t *self, int pid, char out[COMM_MAX])
{
    char raw[COMM_MAX];
    int r = read_comm_raw(self->proc_fd, self->buf, STREAM_BUF, pid, raw);
    if (r < 0)
        return r;
    comm_clean(raw, strlen(raw), out);
    return 0;
}

/* The inode of the socket at dirfd/path (a /proc fd link), or 0. */
static uint64_t link_inode(int dirfd, const char *path, int *ret_errno)
{
    char target[64]; /* "socket:[18446744073709551615]" fits; longer is not a socket */
    ssize_t n = readlinkat(dirfd, path, target, sizeof(target) - 1);
    uint64_t inode;
    if (n < 0) {
        *ret_errno = errno;
        return 0;
    }
    target[n] = '\0';
    if (procfs_socket_inode(target, &inode) < 0)
        return 0;
    return inode;
}

/* Does the owner found earlier still hold the socket at the same fd? */
static bool owner_holds(const netstat_collector_t *self, const struct listener *l)
{
    char path[48];
    int err = 0;
    snprintf(path, sizeof(path), "%d/fd/%d", l->pid, l->fd);
    return link_inode(self->proc_fd, path, &err) == l->inode;
}

/* One process's fds: claims the listeners it holds. Returns how many it found. */
static size_t walk_pid(netstat_collector_t *self, int pid, size_t wanted, bool *denied)
{
    char path[32], comm[COMM_MAX];
    bool have_comm = false;
    size_t found = 0;

    snprintf(path, sizeof(path), "%d/fd", pid);
    int fds_fd = openat(self->proc_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fds_fd < 0) {
        if (errno == EACCES || errno == EPERM)
            *denied = true; /* another user's process, without CAP_SYS_PTRACE */
        return 0;           /* ENOENT, ESRCH: it exited; kernel threads have none */
    }
    DIR *fds = fdopendir(fds_fd);
    if (!fds) {
        close(fds_fd);
        return 0;
    }
    struct dirent *de;
    while (found < wanted && (de = readdir(fds)) != NULL) {
        int fd, err = 0;
        if (!procfs_parse_id(de->d_name, &fd))
            continue;
        uint64_t inode = link_inode(fds_fd, de->d_name, &err);
        if (err == EACCES || err == EPERM)
            *denied = true;
        if (inode == 0)
            continue;
        struct listener *l = find_inode(&self->cur, inode);
        if (!l || l->looked_up)
            continue;
        if (!have_comm) {
            if (read_comm(self, pid, comm) < 0)
                break; /* exiting: a child holding the same socket may come later */
            have_comm = true;
        }
        l->pid = pid;
        l->fd = fd;
        memcpy(l->comm, comm, sizeof(l->comm));
        l->looked_up = true;
        found++;
    }
    closedir(fds);
    return found;
}

/* Walks <proc_root>/<pid>/fd/ in pid order until every listener not yet looked up is found. */
static void walk_fds(netstat_collector_t *self, struct collect_ctx *ctx, size_t wanted)
{
    int dir_fd = openat(self->proc_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *procs = dir_fd >= 0 ? fdopendir(dir_fd) : NULL;
    if (!procs) {
        if (dir_fd >= 0)
            close(dir_fd);
        ctx->errors++;
        return;
    }
    bool denied = false;
    size_t pids = 0, total = wanted;
    struct dirent *de;
    while (wanted > 0 && (de = readdir(procs)) != NULL) {
        int pid;
        if (!procfs_parse_id(de->d_name, &pid) || pid == 0)
            continue;
        pids++;
        wanted -= walk_pid(self, pid, wanted, &denied);
    }
    closedir(procs);
    if (denied)
        ctx->errors++;
    vg_log(VG_LOG_DEBUG, "netstat: fd walk: %zu of %zu owners found in %zu processes%s",
           total - wanted, total, pids, denied ? ", some not readable" : "");
}

/* Step 3: carry owners over from the previous cycle, re-check them, walk for the rest. */
static void resolve_owners(netstat_collector_t *self, struct collect_ctx *ctx)
{
    size_t wanted = 0;
    for (size_t i = 0; i < self->cur.n; i++) {
        struct listener *l = &self->cur.items[i];
        const struct listener *p = find_inode(&self->prev, l->inode);
        if (p && key_cmp(p, l) == 0) {
            l->looked_up = p->looked_up;
            l->pid = p->pid;
            l->fd = p->fd;
            memcpy(l->comm, p->comm, sizeof(l->comm));
        }
        if (l->pid > 0 && !owner_holds(self, l)) {
            l->pid = 0;
            l->looked_up = false;
        }
        if (!l->looked_up)
            wanted++;
    }
    if (wanted > 0)
        walk_fds(self, ctx, wanted);
    /* Not found now means not findable (kernel socket, no permission) until it changes. */
    for (size_t i = 0; i < self->cur.n; i++)
        self->cur.items[i].looked_up = true;
}

/* ---- Emitting --------------------------------------------------------------------------- */

static void emit_states(const struct cycle *c)
{
    static const bool always[PROCFS_TCP_NEW_SYN_RECV + 1] = {
        [PROCFS_TCP_ESTABLISHED] = true,
        [PROCFS_TCP_SYN_RECV] = true,
        [PROCFS_TCP_TIME_WAIT] = true,
        [PROCFS_TCP_LISTEN] = true,
    };
    for (int st = 1; st <= PROCFS_TCP_NEW_SYN_RECV; st++) {
        if (c->tcp_states[st] == 0 && !always[st])
            continue;
        struct sig_label labels[] = {{"proto", "tcp"}, {"state", procfs_tcp_state_name(st)}};
        collect_emit(c->ctx, "net.sockets", (double)c->tcp_states[st], "count", labels, 2);
    }
    if (c->tcp_states[0] > 0) {
        struct sig_label labels[] = {{"proto", "tcp"}, {"state", "UNKNOWN"}};
        collect_emit(c->ctx, "net.sockets", (double)c->tcp_states[0], "count", labels, 2);
    }
}

/* The pod of a listener's owner: last cycle's answer for the pid, else podmap's. NULL: none. */
static const struct pod_identity *owner_pod(netstat_collector_t *self, int pid, int64_t now_ms)
{
    struct owner_pod found = {.pid = pid};
    for (size_t k = 0; k < self->nnext_owner_pods; k++) {
        if (self->next_owner_pods[k].pid == pid)
            return self->next_owner_pods[k].in_pod ? &self->next_owner_pods[k].id : NULL;
    }
    size_t k = 0;
    for (; k < self->nowner_pods && self->owner_pods[k].pid != pid; k++)
        ;
    if (k < self->nowner_pods)
        found = self->owner_pods[k];
    else
        found.in_pod = podmap_resolve_pid(self->pods, self->proc_fd, pid, now_ms, &found.id) == 0;
    if (self->nnext_owner_pods == self->next_owner_pods_cap) {
        size_t cap = self->next_owner_pods_cap ? self->next_owner_pods_cap * 2 : 8;
        struct owner_pod *more =
            cap <= MAX_LISTENERS ? realloc(self->next_owner_pods, cap * sizeof(*more)) : NULL;
        if (!more)
            return NULL; /* named next cycle, or never: a label less, not an error */
        self->next_owner_pods = more;
        self->next_owner_pods_cap = cap;
    }
    self->next_owner_pods[self->nnext_owner_pods] = found;
    struct owner_pod *kept = &self->next_owner_pods[self->nnext_owner_pods++];
    return kept->in_pod ? &kept->id : NULL;
}

/* net.listen for each key in self->cur (sorted), net.listen.new for those not in prev. */
static void emit_listeners(netstat_collector_t *self, struct collect_ctx *ctx, bool report_new)
{
    const struct listener_set *cur = &self->cur, *prev = &self->prev;
    int64_t now_ms = vg_mono_ms();
    size_t i = 0;

    self->nnext_owner_pods = 0;
    while (i < cur->n) {
        const struct listener *first = &cur->items[i], *owner = NULL;
        size_t j = i;
        for (; j < cur->n && key_cmp(&cur->items[j], first) == 0; j++) {
            const struct listener *l = &cur->items[j];
            if (l->pid > 0 && (!owner || l->pid < owner->pid))
                owner = l;
        }
        char address[INET6_ADDRSTRLEN], port[8], pid[16];
        addr_text(first->family, first->addr, address, sizeof(address));
        snprintf(port, sizeof(port), "%u", (unsigned)first->port);
        snprintf(pid, sizeof(pid), "%d", owner ? owner->pid : 0);
        const struct pod_identity *pod =
            owner && self->pods ? owner_pod(self, owner->pid, now_ms) : NULL;
        struct sig_label labels[9] = {
            {"proto", first->proto == PROTO_TCP ? "tcp" : "udp"},
            {"address", address},
            {"port", port},
            {"pid", pid},
            {"process", owner ? owner->comm : ""},
        };
        size_t nlabels = owner ? 5 : 3; /* without an owner, no pid and process */
        if (pod) {
            labels[nlabels++] = (struct sig_label){"namespace", pod->namespace};
            labels[nlabels++] = (struct sig_label){"pod", pod->pod};
            if (pod->container[0])
                labels[nlabels++] = (struct sig_label){"container", pod->container};
            labels[nlabels++] = (struct sig_label){"pod_uid", pod->uid};
        }
        collect_emit(ctx, "net.listen", (double)(j - i), "count", labels, nlabels);
        if (report_new && !(prev->n > 0 && bsearch(first, prev->items, prev->n,
                                                   sizeof(*prev->items), key_cmp_void))) {
            vg_log(VG_LOG_DEBUG, "netstat: new listener proto=%s address=%s port=%s",
                   labels[0].value, address, port);
            collect_emit(ctx, "net.listen.new", 1, "count", labels, nlabels);
        }
        i = j;
    }
    /* This cycle's owners become the cache; pids that own no listener now are forgotten. */
    struct owner_pod *old = self->owner_pods;
    size_t old_cap = self->owner_pods_cap;
    self->owner_pods = self->next_owner_pods;
    self->owner_pods_cap = self->next_owner_pods_cap;
    self->nowner_pods = self->nnext_owner_pods;
    self->next_owner_pods = old;
    self->next_owner_pods_cap = old_cap;
    self->nnext_owner_pods = 0;
}

void netstat_collector_run(netstat_collector_t *self, struct collect_ctx *ctx)
{
    struct cycle c = {.self = self, .ctx = ctx};
    struct tcp_pressure pressure;
    int64_t now = vg_mono_ms();

    open_proc(self);
    self->cur.n = 0;
    /* The text path (test trees, netlink refused) reads everything every cycle. */
    bool netlink = use_diag(self, TABLE_TCP) && read_pressure(self, &pressure);
    bool walk = !netlink || walk_due(self, &pressure, now);
    if (walk) {
        self->nremotes = 0;
        memset(self->slots, 0, REMOTE_SLOTS * sizeof(*self->slots));
    }

    bool tcp_ok = (walk ? read_tcp(&c) : read_tcp_listeners(&c)) == SOURCE_OK;
    if (tcp_ok && walk && netlink && use_diag(self, TABLE_TCP)) {
        memcpy(self->walk_states, c.tcp_states, sizeof(self->walk_states));
        self->walked_at = pressure;
        self->walked_ms = now;
        self->walked = true;
    }
    if (walk)
        self->walks++;
    else
        self->skips++;
    bool udp_ok = read_udp(&c) == SOURCE_OK;
    enum source unix_socks = read_unix(&c);

    if (tcp_ok) {
        emit_states(&c);
        emit_remotes(self, ctx);
    }
    if (udp_ok) {
        struct sig_label labels[] = {{"proto", "udp"}};
        collect_emit(ctx, "net.sockets", (double)c.udp, "count", labels, 1);
    }
    if (unix_socks == SOURCE_OK) {
        struct sig_label labels[] = {{"proto", "unix"}};
        collect_emit(ctx, "net.sockets", (double)c.unix_socks, "count", labels, 1);
    }

    if (c.listeners_full) {
        vg_log(VG_LOG_DEBUG, "netstat: more than %d listening sockets: the rest are not tracked",
               MAX_LISTENERS);
        ctx->errors++;
    }
    set_index(&self->cur);
    if (self->cur.n > 0)
        resolve_owners(self, ctx);
    bool complete = tcp_ok && udp_ok;
    emit_listeners(self, ctx, complete && self->have_baseline && !c.listeners_full);
    if (!complete)
        return; /* compare the next cycle with the last whole set */
    struct listener_set keep = self->prev;
    self->prev = self->cur;
    self->cur = keep;
    /* A truncated set depends on file order: no baseline until it fits again. */
    self->have_baseline = !c.listeners_full;
}

void netstat_collector_walks(const netstat_collector_t *self, uint64_t *ret_walks,
                             uint64_t *ret_skips)
{
    *ret_walks = self->walks;
    *ret_skips = self->skips;
}

const char *netstat_collector_source(const netstat_collector_t *self)
{
    size_t off = 0;
    for (size_t t = 0; t < TABLE_COUNT; t++)
        off += self->diag_off[t];
    if (!self->diag || off == TABLE_COUNT)
        return "procfs";
    return off == 0 ? "netlink" : "netlink+procfs";
}

/* ---- Evidence: the whole table with its owners (netstat_write_table) -------------------- */

#define OWNERS_MAX (256 * 1024) /* socket fds recorded; more are left without an owner */
#define OWNERS_SHOWN 8          /* per socket; then "+N more" */

struct sock_owner {
    uint64_t inode;
    int pid;
    int fd;
    char comm[COMM_MAX]; /* raw: escaped when written */
};

struct pid_pod {
    int pid;
    char text[PODMAP_NAMESPACE_MAX + PODMAP_POD_MAX + PODMAP_CONTAINER_MAX + 4];
};

/* One netstat_write_table call: everything it uses is its own (it runs on another thread),
 * but the podmap, which locks. */
struct table_dump {
    struct artifact_text text;
    int proc_fd;
    char *buf; /* STREAM_BUF */
    struct sock_owner *owners;
    size_t nowners, owners_cap;
    bool owners_full;
    size_t owner_pids; /* processes holding at least one socket */
    podmap_t *pods;    /* NULL: owners are not named */
    int64_t now_ms;
    struct pid_pod *pid_pods; /* owners in pods, ascending pid (pids are walked in order) */
    size_t npid_pods, pid_pods_cap;
    size_t denied;     /* processes whose fd directory could not be read */
    const char *netid; /* of the file being read: "tcp", "tcp6", "udp", "udp6" */
    bool udp;
    size_t malformed;
    uint64_t tcp_states[PROCFS_TCP_NEW_SYN_RECV + 1];
    uint64_t tcp, udp_socks, unix_socks;
    char process[1024]; /* the Process column */
};

static int owner_cmp(const void *pa, const void *pb)
{
    const struct sock_owner *a = pa, *b = pb;
    if (a->inode != b->inode)
        return a->inode < b->inode ? -1 : 1;
    if (a->pid != b->pid)
        return a->pid < b->pid ? -1 : 1;
    return (a->fd > b->fd) - (a->fd < b->fd);
}

static bool owner_add(struct table_dump *d, uint64_t inode, int pid, int fd, const char *comm)
{
    if (d->nowners == d->owners_cap) {
        size_t cap = d->owners_cap ? d->owners_cap * 2 : 256;
        if (cap > OWNERS_MAX)
            cap = OWNERS_MAX;
        struct sock_owner *more =
            cap > d->owners_cap ? realloc(d->owners, cap * sizeof(*more)) : NULL;
        if (!more) {
            d->owners_full = true;
            return false;
        }
        d->owners = more;
        d->owners_cap = cap;
    }
    struct sock_owner *o = &d->owners[d->nowners++];
    o->inode = inode;
    o->pid = pid;
    o->fd = fd;
    memcpy(o->comm, comm, sizeof(o->comm));
    return true;
}

/* Remembers the pod of an owner, if it is in one (bounded like the owners). */
static void pid_pod_add(struct table_dump *d, int pid)
{
    struct pod_identity id;
    if (!d->pods || podmap_resolve_pid(d->pods, d->proc_fd, pid, d->now_ms, &id) < 0)
        return;
    if (d->npid_pods == d->pid_pods_cap) {
        size_t cap = d->pid_pods_cap ? d->pid_pods_cap * 2 : 16;
        struct pid_pod *more = cap <= OWNERS_MAX ? realloc(d->pid_pods, cap * sizeof(*more)) : NULL;
        if (!more)
            return;
        d->pid_pods = more;
        d->pid_pods_cap = cap;
    }
    d->pid_pods[d->npid_pods].pid = pid;
    podmap_identity_text(&id, d->pid_pods[d->npid_pods].text, sizeof(d->pid_pods[0].text));
    d->npid_pods++;
}

static const char *pid_pod_text(const struct table_dump *d, int pid)
{
    size_t lo = 0, hi = d->npid_pods;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->pid_pods[mid].pid == pid)
            return d->pid_pods[mid].text;
        if (d->pid_pods[mid].pid < pid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Every socket fd of one process. Processes exiting meanwhile simply end early. */
static void dump_pid_owners(struct table_dump *d, int pid)
{
    char path[32], comm[COMM_MAX];
    bool have_comm = false;

    snprintf(path, sizeof(path), "%d/fd", pid);
    int fds_fd = openat(d->proc_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fds_fd < 0) {
        if (errno == EACCES || errno == EPERM)
            d->denied++;
        return;
    }
    DIR *fds = fdopendir(fds_fd);
    if (!fds) {
        close(fds_fd);
        return;
    }
    struct dirent *de;
    bool denied = false;
    while ((de = readdir(fds)) != NULL && !d->owners_full) {
        int fd, err = 0;
        if (!procfs_parse_id(de->d_name, &fd))
            continue;
        uint64_t inode = link_inode(fds_fd, de->d_name, &err);
        denied |= err == EACCES || err == EPERM;
        if (inode == 0)
            continue;
        if (!have_comm) {
            if (read_comm_raw(d->proc_fd, d->buf, STREAM_BUF, pid, comm) < 0)
                break; /* exited */
            have_comm = true;
            d->owner_pids++;
            pid_pod_add(d, pid);
        }
        owner_add(d, inode, pid, fd, comm);
    }
    closedir(fds);
    d->denied += denied;
}

static void dump_owners(struct table_dump *d)
{
    int *pids = NULL;
    size_t npids = 0;
    if (proctable_pids(d->proc_fd, &pids, &npids) < 0)
        return;
    for (size_t i = 0; i < npids && !d->owners_full; i++)
        dump_pid_owners(d, pids[i]);
    free(pids);
    if (d->nowners > 0)
        qsort(d->owners, d->nowners, sizeof(*d->owners), owner_cmp);
}

/* Appends text to buf at *used; false when it does not fit (buf keeps what did). */
static bool append(char *buf, size_t cap, size_t *used, const char *text)
{
    size_t n = strlen(text);
    if (*used + n >= cap)
        return false;
    memcpy(buf + *used, text, n + 1);
    *used += n;
    return true;
}

/* The Process column, as ss -p writes it: users:(("nginx",pid=1234,fd=3),...), or "-". */
static const char *process_text(struct table_dump *d, uint64_t inode)
{
    size_t lo = 0, hi = d->nowners, used = 0, shown = 0;
    while (lo < hi) { /* the first owner of inode */
        size_t mid = lo + (hi - lo) / 2;
        if (d->owners[mid].inode < inode)
            lo = mid + 1;
        else
            hi = mid;
    }
    d->process[0] = '\0';
    if (inode == 0 || lo == d->nowners || d->owners[lo].inode != inode)
        return "-";
    append(d->process, sizeof(d->process), &used, "users:(");
    size_t i = lo;
    for (; i < d->nowners && d->owners[i].inode == inode && shown < OWNERS_SHOWN; i++, shown++) {
        char comm[COMM_MAX * 4 + 1], piece[COMM_MAX * 4 + sizeof(d->pid_pods[0].text) + 56];
        artifact_escape(d->owners[i].comm, strlen(d->owners[i].comm), "\"", comm, sizeof(comm));
        const char *pod = pid_pod_text(d, d->owners[i].pid);
        snprintf(piece, sizeof(piece), "%s(\"%s\",pid=%d,fd=%d%s%s)", shown ? "," : "", comm,
                 d->owners[i].pid, d->owners[i].fd, pod ? ",pod=" : "", pod ? pod : "");
        append(d->process, sizeof(d->process), &used, piece);
    }
    size_t more = 0;
    for (; i < d->nowners && d->owners[i].inode == inode; i++)
        more++;
    if (more > 0) {
        char piece[32];
        snprintf(piece, sizeof(piece), ",+%zu more", more);
        append(d->process, sizeof(d->process), &used, piece);
    }
    append(d->process, sizeof(d->process), &used, ")");
    return d->process;
}

/* "10.0.0.5:8080", "[::]:*" (port 0: any). */
static void endpoint_text(const struct procfs_addr *a, char *buf, size_t cap)
{
    char host[INET6_ADDRSTRLEN], port[8];
    addr_text(a->family, a->addr, host, sizeof(host));
    if (a->port)
        snprintf(port, sizeof(port), "%u", (unsigned)a->port);
    else
        snprintf(port, sizeof(port), "*");
    snprintf(buf, cap, a->family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
}

static int dump_inet_sock(const struct procfs_sock *s, void *userdata)
{
    struct table_dump *d = userdata;
    char local[INET6_ADDRSTRLEN + 16], remote[INET6_ADDRSTRLEN + 16], uid[16];
    const char *state;
    if (d->udp) {
        state = s->state == PROCFS_TCP_CLOSE ? "UNCONN" : procfs_tcp_state_name(s->state);
        d->udp_socks++;
    } else {
        state = procfs_tcp_state_name(s->state);
        bool known = s->state > 0 && s->state <= PROCFS_TCP_NEW_SYN_RECV;
        d->tcp_states[known ? s->state : 0]++;
        d->tcp++;
    }
    endpoint_text(&s->local, local, sizeof(local));
    endpoint_text(&s->remote, remote, sizeof(remote));
    snprintf(uid, sizeof(uid), "%u", (unsigned)s->uid);
    return artifact_text_printf(&d->text, "%-5s %-12s %8u %8u %-40s %-40s %6s %10llu %s\n",
                                d->netid, state, s->rx_queue, s->tx_queue, local, remote, uid,
                                (unsigned long long)s->inode, process_text(d, s->inode));
}

static const char *unix_netid(uint32_t type)
{
    switch (type) {
    case SOCK_STREAM:
        return "u_str";
    case SOCK_DGRAM:
        return "u_dgr";
    case SOCK_SEQPACKET:
        return "u_seq";
    default:
        return "unix";
    }
}

static const char *unix_state(const struct procfs_unix_sock *s)
{
    if (s->listening)
        return "LISTEN";
    switch (s->state) {
    case 2:
        return "CONNECTING";
    case 3:
        return "ESTABLISHED";
    case 4:
        return "DISCONNECTING";
    default:
        return "UNCONN";
    }
}

static int dump_unix_sock(const struct procfs_unix_sock *s, void *userdata)
{
    struct table_dump *d = userdata;
    char path[PROCFS_UNIX_PATH_MAX * 4 + 1];
    d->unix_socks++;
    if (s->path[0])
        artifact_escape(s->path, strlen(s->path), " ", path, sizeof(path));
    else
        snprintf(path, sizeof(path), "*");
    return artifact_text_printf(&d->text, "%-5s %-12s %8s %8s %-40s %-40s %6s %10llu %s\n",
                                unix_netid(s->type), unix_state(s), "-", "-", path, "*", "-",
                                (unsigned long long)s->inode, process_text(d, s->inode));
}

static int dump_inet_chunk(const char *chunk, size_t len, void *userdata)
{
    struct table_dump *d = userdata;
    int family = strchr(d->netid, '6') ? AF_INET6 : AF_INET;
    int r = procfs_parse_net_tcp(chunk, len, family, dump_inet_sock, d);
    if (r < 0)
        return r;
    d->malformed += (size_t)r;
    return 0;
}

static int dump_unix_chunk(const char *chunk, size_t len, void *userdata)
{
    struct table_dump *d = userdata;
    int r = procfs_parse_net_unix(chunk, len, dump_unix_sock, d);
    if (r < 0)
        return r;
    d->malformed += (size_t)r;
    return 0;
}

/* One /proc/net file; what cannot be read is said in the artifact, not fatal. */
static void dump_table(struct table_dump *d, const char *netid, bool optional)
{
    char path[32];
    snprintf(path, sizeof(path), "net/%s", netid);
    d->netid = netid;
    d->udp = strncmp(netid, "udp", 3) == 0;
    d->malformed = 0;
    int r = procfs_read_stream(d->proc_fd, path, d->buf, STREAM_BUF,
                               strcmp(netid, "unix") == 0 ? dump_unix_chunk : dump_inet_chunk, d);
    if (d->text.status != 0 || (r == -ENOENT && optional))
        return;
    if (r < 0)
        artifact_text_printf(&d->text, "# %s: not readable: %s\n", path, strerror(-r));
    else if (d->malformed > 0)
        artifact_text_printf(&d->text, "# %s: %zu malformed lines skipped\n", path, d->malformed);
}

static int dump_diag_sock(const struct procfs_sock *s, void *userdata)
{
    struct table_dump *d = userdata;
    d->netid = s->local.family == AF_INET6 ? "tcp6" : "tcp";
    return dump_inet_sock(s, d);
}

/*
 * TCP through netlink when proc_root is a real procfs: one walk of the kernel's TCP hash for
 * both families instead of one per text file, and each read() of the text restarting that walk
 * (netstat.h, "Cost"). False when the text files are to be read instead: not procfs, netlink
 * refused, or a dump that broke off (said in the artifact when it had written rows; its counts
 * are taken back, the text tables then follow).
 */
static bool dump_tcp_diag(struct table_dump *d)
{
    struct statfs st;
    if (fstatfs(d->proc_fd, &st) < 0 || st.f_type != PROC_SUPER_MAGIC)
        return false;
    sockdiag_t *diag = sockdiag_new();
    if (!diag)
        return false;
    uint64_t states[PROCFS_TCP_NEW_SYN_RECV + 1], tcp = d->tcp;
    size_t used = d->text.used;
    memcpy(states, d->tcp_states, sizeof(states));
    d->udp = false;
    int r = sockdiag_tcp(diag, dump_diag_sock, d);
    sockdiag_destroy(&diag);
    if (r >= 0) {
        if (r > 0 && d->text.status == 0)
            artifact_text_printf(&d->text, "# tcp (netlink): %d malformed records skipped\n", r);
        return true;
    }
    if (d->text.status != 0)
        return true; /* the writer's error or the cap: nothing more is written */
    memcpy(d->tcp_states, states, sizeof(states));
    d->tcp = tcp;
    if (d->text.used != used)
        artifact_text_printf(&d->text,
                             "# tcp (netlink): the dump broke off (%s): the rows above are "
                             "partial; /proc/net/tcp and tcp6 follow\n",
                             strerror(-r));
    return false;
}

static void dump_summary(struct table_dump *d)
{
    char states[512];
    size_t used = 0;
    states[0] = '\0';
    for (int st = 0; st <= PROCFS_TCP_NEW_SYN_RECV; st++) {
        if (d->tcp_states[st] == 0)
            continue;
        char piece[48];
        snprintf(piece, sizeof(piece), "%s%s %llu", used ? ", " : "",
                 st ? procfs_tcp_state_name(st) : "UNKNOWN", (unsigned long long)d->tcp_states[st]);
        append(states, sizeof(states), &used, piece);
    }
    artifact_text_printf(&d->text, "# tcp: %llu sockets%s%s%s; udp: %llu; unix: %llu\n",
                         (unsigned long long)d->tcp, used ? " (" : "", states, used ? ")" : "",
                         (unsigned long long)d->udp_socks, (unsigned long long)d->unix_socks);
}

int netstat_write_table(const char *proc_root, podmap_t *pods, size_t max_bytes,
                        const struct artifact_writer *out, char *err, size_t errlen)
{
    const char *root = proc_root ? proc_root : "/proc";
    char now[32];

    if (!out || !out->write) {
        snprintf(err, errlen, "netstat: no artifact writer");
        return -EINVAL;
    }
    struct table_dump *d = calloc(1, sizeof(*d));
    if (!d || !(d->buf = malloc(STREAM_BUF))) {
        free(d);
        snprintf(err, errlen, "netstat: out of memory");
        return -ENOMEM;
    }
    int r = 0;
    d->proc_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d->proc_fd < 0) {
        r = -errno;
        snprintf(err, errlen, "netstat: cannot open %s: %s", root, strerror(-r));
        goto err_free;
    }
    artifact_text_init(&d->text, out, max_bytes);
    d->pods = pods;
    d->now_ms = vg_mono_ms();
    dump_owners(d);

    artifact_time_text(vg_wall_ms() / 1000, now, sizeof(now));
    artifact_text_printf(&d->text,
                         "# sockets of the network namespace of %s/net at %s, with the "
                         "processes holding them (ss -tanup and ss -xap)\n",
                         root, now);
    artifact_text_printf(&d->text,
                         "# owners from %s/PID/fd: %zu socket fds in %zu processes%s; %zu "
                         "processes' fds not readable (other users' need CAP_SYS_PTRACE)\n",
                         root, d->nowners, d->owner_pids,
                         d->owners_full ? " (the first ones only: table full)" : "", d->denied);
    artifact_text_printf(&d->text,
                         "# Recv-Q/Send-Q: bytes queued (LISTEN: connections waiting to be "
                         "accepted); TIME_WAIT and request sockets have no inode or owner; "
                         "pod=NAMESPACE/POD/CONTAINER: an owner in a Kubernetes pod (container "
                         "\"-\": not told)\n");
    artifact_text_printf(&d->text, "%-5s %-12s %8s %8s %-40s %-40s %6s %10s %s\n", "Netid", "State",
                         "Recv-Q", "Send-Q", "Local Address:Port", "Peer Address:Port", "UID",
                         "Inode", "Process");
    if (!dump_tcp_diag(d)) {
        dump_table(d, "tcp", false);
        dump_table(d, "tcp6", true);
    }
    dump_table(d, "udp", false);
    dump_table(d, "udp6", true);
    dump_table(d, "unix", false);
    dump_summary(d);
    r = artifact_text_finish(&d->text, "netstat", err, errlen);
    close(d->proc_fd);

err_free:
    free(d->owners);
    free(d->pid_pods);
    free(d->buf);
    free(d);
    return r;
}

/* ---- The collector interface (collect.h) ----------------------------------------------------- */

static void collector_run(void *self, struct collect_ctx *ctx)
{
    netstat_collector_run(self, ctx);
}

static void collector_destroy(void **self_p)
{
    netstat_collector_t *self = *self_p;
    netstat_collector_destroy(&self);
    *self_p = NULL;
}

struct collector netstat_collector(netstat_collector_t **self_p, int64_t interval_ms)
{
    struct collector c = {
        .name = "netstat",
        .interval_ms = interval_ms,
        .run = collector_run,
        .destroy = collector_destroy,
        .self = *self_p,
    };
    *self_p = NULL;
    return c;
}
