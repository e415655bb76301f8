/*
 * The flight recorder (see flight.h): interned lines, snapshots of pointers to them, a ring of
 * snapshots, and a thread that fills it.
 *
 * Invariants, all under self->lock:
 *   - a line's refs counts the snapshots (built, in the ring or frozen) and pending log slots
 *     that point to it; at 0 it leaves its bucket and is freed;
 *   - a snapshot's refs counts the ring and the frozen copies holding it; it is immutable once
 *     pushed, so a frozen copy reads its lines without the lock;
 *   - self->bytes is the sum of line_cost over live lines, snapshot_cost over pushed snapshots,
 *     the buckets and the pending logs' slots: what max_bytes bounds.
 */
#include "flight.h"

#include "log.h"
#include "netstat.h"
#include "procfs.h"
#include "proctable.h"
#include "timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MIN_BYTES (64 * 1024)
#define BUCKETS_MIN 1024
#define RING_MAX 3600     /* window / interval at most: 1 h at 1 s */
#define MALLOC_OVERHEAD 8 /* glibc's chunk header; chunks are multiples of 16 */

struct line {
    struct line *next; /* in its bucket */
    uint64_t hash;
    uint32_t refs;
    uint32_t len;
    char text[]; /* NUL-terminated */
};

struct section {
    struct line *title;
    size_t first, count; /* in the snapshot's lines */
};

struct snapshot {
    uint32_t refs;
    int64_t taken_ms;
    size_t cost; /* snapshot_cost once pushed; 0 before */
    struct section *sections;
    size_t nsections;
    struct line **lines;
    size_t nlines;
};

struct pending_log {
    char *name;
    struct line **lines; /* a ring of cap: lines[head] is the oldest */
    size_t cap, head, count;
    size_t bytes;  /* line_cost of the lines held */
    uint64_t seen; /* lines since the last snapshot, kept or not */
};

/* What does not change while a process lives, for the processes section: looked up once per
 * (pid, starttime), so a snapshot reads one file per process (its stat). */
struct proc_fixed {
    int pid;
    uint64_t starttime;
    char *user; /* "uid(name)" */
    char *tail; /* STARTED NAMESPACE/POD/CONTAINER COMMAND */
};

#define USER_CACHE 64

struct flight {
    int64_t interval_ms, window_ms;
    size_t max_bytes;
    char *proc_root; /* NULL: no tables */
    podmap_t *pods;

    /* The recorder thread's own (flight_take): the processes section's cache. */
    int proc_fd;
    int64_t btime; /* boot time, Unix seconds; 0 when unknown */
    long tck, page;
    struct proc_fixed *procs; /* ascending pid */
    size_t nprocs;
    size_t procs_cost; /* counted in bytes */
    struct {
        uid_t uid;
        char name[64];
    } users[USER_CACHE];
    size_t nusers;

    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool thread_started;
    bool stopping;

    unsigned char key[crypto_shorthash_KEYBYTES];
    struct line **buckets;
    size_t nbuckets, nlines;

    struct snapshot **ring;
    size_t ring_cap, ring_head, ring_count;

    struct pending_log *logs[FLIGHT_LOGS_MAX];
    size_t nlogs;
    size_t pending_bytes; /* of all logs: at most max_bytes / 8 */

    size_t bytes;
    uint64_t taken, dropped_for_size, log_lines_dropped;
    int64_t last_cpu_us;
};

struct flight_frozen {
    struct flight *fl;
    struct snapshot **snaps;
    size_t n;
    int64_t interval_ms, window_ms;
    size_t max_bytes, bytes;
    uint64_t dropped_for_size, log_lines_dropped;
};

/* ---- lines (lock held) ------------------------------------------------------------------ */

static size_t line_cost(size_t len)
{
    size_t n = sizeof(struct line) + len + 1 + MALLOC_OVERHEAD;
    return (n + 15) & ~(size_t)15;
}

static uint64_t line_hash(const struct flight *self, const char *text, size_t len)
{
    uint64_t h;
    crypto_shorthash((unsigned char *)&h, (const unsigned char *)text, len, self->key);
    return h;
}

static void buckets_grow(struct flight *self)
{
    size_t n = self->nbuckets * 2;
    struct line **b = calloc(n, sizeof(*b));
    if (!b)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < self->nbuckets; i++) {
        for (struct line *l = self->buckets[i], *next; l; l = next) {
            next = l->next;
            l->next = b[l->hash & (n - 1)];
            b[l->hash & (n - 1)] = l;
        }
    }
    free(self->buckets);
    self->bytes += (n - self->nbuckets) * sizeof(*b);
    self->buckets = b;
    self->nbuckets = n;
}

/* The one copy of text, with a reference for the caller; NULL: no memory. */
static struct line *line_intern(struct flight *self, const char *text, size_t len)
{
    uint64_t h = line_hash(self, text, len);
    struct line **bucket = &self->buckets[h & (self->nbuckets - 1)];
    for (struct line *l = *bucket; l; l = l->next) {
        if (l->hash == h && l->len == len && memcmp(l->text, text, len) == 0) {
            l->refs++;
            return l;
        }
    }
    if (len > UINT32_MAX)
        return NULL;
    struct line *l = malloc(sizeof(*l) + len + 1);
    if (!l)
        return NULL;
    l->hash = h;
    l->refs = 1;
    l->len = (uint32_t)len;
    memcpy(l->text, text, len);
    l->text[len] = '\0';
    l->next = *bucket;
    *bucket = l;
    self->nlines++;
    self->bytes += line_cost(len);
    if (self->nlines > self->nbuckets)
        buckets_grow(self);
    return l;
}

static void line_unref(struct flight *self, struct line *l)
{
    if (!l || --l->refs > 0)
        return;
    struct line **p = &self->buckets[l->hash & (self->nbuckets - 1)];
    while (*p != l)
        p = &(*p)->next;
    *p = l->next;
    self->nlines--;
    self->bytes -= line_cost(l->len);
    free(l);
}

/* ---- snapshots (lock held) -------------------------------------------------------------- */

static size_t snapshot_cost(const struct snapshot *s)
{
    return sizeof(*s) + s->nsections * sizeof(*s->sections) + s->nlines * sizeof(*s->lines) +
           3 * MALLOC_OVERHEAD;
}

static void snapshot_unref(struct flight *self, struct snapshot *s)
{
    if (!s || --s->refs > 0)
        return;
    for (size_t i = 0; i < s->nlines; i++)
        line_unref(self, s->lines[i]);
    for (size_t i = 0; i < s->nsections; i++)
        line_unref(self, s->sections[i].title);
    self->bytes -= s->cost;
    free(s->lines);
    free(s->sections);
    free(s);
}

static struct snapshot *ring_at(const struct flight *self, size_t i)
{
    return self->ring[(self->ring_head + i) % self->ring_cap];
}

static void drop_oldest(struct flight *self)
{
    struct snapshot *s = ring_at(self, 0);
    self->ring_head = (self->ring_head + 1) % self->ring_cap;
    self->ring_count--;
    snapshot_unref(self, s);
}

/* The window first, then max_bytes; the newest snapshot stays. */
static void trim(struct flight *self)
{
    while (self->ring_count > 1) {
        const struct snapshot *newest = ring_at(self, self->ring_count - 1);
        const struct snapshot *oldest = ring_at(self, 0);
        if (oldest->taken_ms <= newest->taken_ms - self->window_ms) {
            drop_oldest(self);
        } else if (self->bytes > self->max_bytes) {
            self->dropped_for_size++;
            drop_oldest(self);
        } else {
            break;
        }
    }
}

static void push(struct flight *self, struct snapshot *s)
{
    if (self->ring_count == self->ring_cap)
        drop_oldest(self);
    s->refs = 1;
    s->cost = snapshot_cost(s);
    self->bytes += s->cost;
    self->ring[(self->ring_head + self->ring_count) % self->ring_cap] = s;
    self->ring_count++;
    self->taken++;
    trim(self);
}

/* ---- building a snapshot (one thread; the lock only around interning) -------------------- */

struct builder {
    struct flight *fl;
    struct snapshot *s;
    size_t lines_cap, sections_cap;
    int err;             /* -ENOMEM once something could not be kept: the snapshot is discarded */
    bool skip_time_wait; /* the netstat section: TIME_WAIT rows are counted, not kept */
    size_t time_wait;
    size_t part_len;
    bool part_cut;
    char part[ARTIFACT_LINE_MAX];
};

static bool lines_reserve(struct builder *b, size_t more)
{
    struct snapshot *s = b->s;
    if (s->nlines + more <= b->lines_cap)
        return true;
    size_t cap = b->lines_cap ? b->lines_cap : 256;
    while (cap < s->nlines + more)
        cap *= 2;
    struct line **l = realloc(s->lines, cap * sizeof(*l));
    if (!l)
        return false;
    s->lines = l;
    b->lines_cap = cap;
    return true;
}

static void close_section(struct builder *b)
{
    struct snapshot *s = b->s;
    if (s->nsections)
        s->sections[s->nsections - 1].count = s->nlines - s->sections[s->nsections - 1].first;
}

static void add_line(struct builder *b, const char *text, size_t len)
{
    if (b->err)
        return;
    if (!lines_reserve(b, 1)) {
        b->err = -ENOMEM;
        return;
    }
    pthread_mutex_lock(&b->fl->lock);
    struct line *l = line_intern(b->fl, text, len);
    pthread_mutex_unlock(&b->fl->lock);
    if (!l)
        b->err = -ENOMEM;
    else
        b->s->lines[b->s->nlines++] = l;
}

/* "tcp   TIME_WAIT ..." or "tcp6  TIME_WAIT ...": a row of netstat_write_table's. */
static bool is_time_wait(const char *line, size_t len)
{
    if (len < 3 || memcmp(line, "tcp", 3) != 0)
        return false;
    const char *end = line + len;
    const char *p = memchr(line, ' ', len);
    while (p && p < end && *p == ' ')
        p++;
    return p && (size_t)(end - p) > 10 && memcmp(p, "TIME_WAIT ", 10) == 0;
}

static void flush_part(struct builder *b)
{
    if (b->skip_time_wait && is_time_wait(b->part, b->part_len)) {
        b->time_wait++;
        b->part_len = 0;
        b->part_cut = false;
        return;
    }
    if (b->part_cut)
        memcpy(b->part + b->part_len - 3, "...", 3);
    add_line(b, b->part, b->part_len);
    b->part_len = 0;
    b->part_cut = false;
}

/* An artifact_writer into the snapshot: the text is split at newlines and each line interned. */
static int builder_write(void *w, const void *data, size_t len)
{
    struct builder *b = w;
    const char *p = data, *end = p + len;
    while (p < end && !b->err) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);
        size_t room = sizeof(b->part) - b->part_len;
        if (n > room) {
            b->part_cut = true;
            n = room;
        }
        memcpy(b->part + b->part_len, p, n);
        b->part_len += n;
        if (!nl)
            break;
        flush_part(b);
        p = nl + 1;
    }
    return b->err;
}

static bool sections_reserve(struct builder *b)
{
    struct snapshot *s = b->s;
    if (s->nsections < b->sections_cap)
        return true;
    size_t cap = b->sections_cap ? b->sections_cap * 2 : 4;
    struct section *more = realloc(s->sections, cap * sizeof(*more));
    if (!more)
        return false;
    s->sections = more;
    b->sections_cap = cap;
    return true;
}

/* A new section headed title (the lock held when locked, else taken here). */
static void open_section(struct builder *b, const char *title, bool locked)
{
    if (b->part_len)
        flush_part(b);
    if (b->err)
        return;
    if (!sections_reserve(b)) {
        b->err = -ENOMEM;
        return;
    }
    close_section(b);
    if (!locked)
        pthread_mutex_lock(&b->fl->lock);
    struct line *t = line_intern(b->fl, title, strlen(title));
    if (!locked)
        pthread_mutex_unlock(&b->fl->lock);
    if (!t) {
        b->err = -ENOMEM;
        return;
    }
    b->s->sections[b->s->nsections++] = (struct section){.title = t, .first = b->s->nlines};
}

static void add_section(struct builder *b, const char *title)
{
    open_section(b, title, false);
}

/* Moves the pending log lines into the snapshot, a section per log (lock held throughout, so
 * no line arrives between the reservation and the move). */
static void take_logs(struct builder *b)
{
    struct flight *self = b->fl;
    size_t total = 0;
    for (size_t i = 0; i < self->nlogs; i++)
        total += self->logs[i]->count;
    if (!lines_reserve(b, total)) {
        b->err = -ENOMEM;
        return;
    }
    for (size_t i = 0; i < self->nlogs && !b->err; i++) {
        struct pending_log *p = self->logs[i];
        char title[FLIGHT_LOG_LINE_MAX];
        const char *unit = p->count == 1 ? "line" : "lines";
        if (p->seen > p->count)
            snprintf(title, sizeof(title), "log %s (%zu %s, %" PRIu64 " earlier not kept)", p->name,
                     p->count, unit, p->seen - p->count);
        else
            snprintf(title, sizeof(title), "log %s (%zu %s)", p->name, p->count, unit);
        open_section(b, title, true);
        if (b->err)
            break;
        for (size_t k = 0; k < p->count; k++) /* the references move with the pointers */
            b->s->lines[b->s->nlines++] = p->lines[(p->head + k) % p->cap];
        self->pending_bytes -= p->bytes;
        p->head = p->count = p->bytes = 0;
        p->seen = 0;
    }
}

static void builder_discard(struct builder *b)
{
    pthread_mutex_lock(&b->fl->lock);
    snapshot_unref(b->fl, b->s); /* cost 0: never counted */
    pthread_mutex_unlock(&b->fl->lock);
    b->s = NULL;
}

static int builder_begin(struct builder *b, struct flight *self, int64_t wall_ms)
{
    memset(b, 0, offsetof(struct builder, part));
    b->fl = self;
    b->s = calloc(1, sizeof(*b->s));
    if (!b->s)
        return -ENOMEM;
    b->s->refs = 1;
    b->s->taken_ms = wall_ms;
    return 0;
}

/* The pending logs, then into the ring. */
static int builder_finish(struct builder *b)
{
    if (b->part_len)
        flush_part(b);
    if (!b->err) {
        pthread_mutex_lock(&b->fl->lock);
        take_logs(b);
        pthread_mutex_unlock(&b->fl->lock);
    }
    if (b->err) {
        int r = b->err;
        builder_discard(b);
        return r;
    }
    close_section(b);
    struct snapshot *s = b->s;
    if (s->nlines && s->nlines < b->lines_cap) { /* no slack kept for 5 minutes */
        struct line **fit = realloc(s->lines, s->nlines * sizeof(*fit));
        if (fit)
            s->lines = fit;
    }
    pthread_mutex_lock(&b->fl->lock);
    push(b->fl, s);
    pthread_mutex_unlock(&b->fl->lock);
    b->s = NULL;
    return 0;
}

int flight_add(flight_t *self, int64_t wall_ms, const struct flight_section *sections, size_t n)
{
    struct builder *b = malloc(sizeof(*b));
    if (!b || builder_begin(b, self, wall_ms) < 0) {
        free(b);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n && !b->err; i++) {
        add_section(b, sections[i].title);
        builder_write(b, sections[i].text, sections[i].len);
    }
    int r = builder_finish(b);
    free(b);
    return r;
}

/* ---- the processes section: proctable's readers, one stat read per process and snapshot ---- */

static void proc_fixed_free(struct proc_fixed *p)
{
    free(p->user);
    free(p->tail);
    p->user = p->tail = NULL;
}

static size_t proc_fixed_cost(const struct proc_fixed *p)
{
    return sizeof(*p) + strlen(p->user) + strlen(p->tail) + 2 + 2 * MALLOC_OVERHEAD + 32;
}

static void user_text(struct flight *self, bool have_uid, uid_t uid, char *buf, size_t cap)
{
    const char *name = NULL;
    if (!have_uid) {
        snprintf(buf, cap, "?");
        return;
    }
    for (size_t i = 0; i < self->nusers && !name; i++)
        if (self->users[i].uid == uid)
            name = self->users[i].name;
    char looked_up[sizeof(self->users[0].name)];
    if (!name) {
        proctable_user_name(uid, looked_up, sizeof(looked_up));
        name = looked_up;
        if (self->nusers < USER_CACHE) {
            self->users[self->nusers].uid = uid;
            memcpy(self->users[self->nusers].name, looked_up, sizeof(looked_up));
            self->nusers++;
        }
    }
    if (name[0])
        snprintf(buf, cap, "%u(%s)", (unsigned)uid, name);
    else
        snprintf(buf, cap, "%u", (unsigned)uid);
}

/* The fixed part of a process seen for the first time: user, start, pod, command line. */
static int proc_fixed_make(struct flight *self, const struct proctable_proc *p,
                           struct proc_fixed *ret)
{
    char user[96], started[32], pod[PODMAP_NAMESPACE_MAX + PODMAP_POD_MAX + PODMAP_CONTAINER_MAX];
    char cmdline[4700];
    struct pod_identity id;

    user_text(self, p->have_uid, p->uid, user, sizeof(user));
    if (self->btime > 0)
        artifact_time_text(self->btime + (int64_t)(p->starttime / (uint64_t)self->tck), started,
                           sizeof(started));
    else
        snprintf(started, sizeof(started), "?");
    if (self->pods && podmap_resolve_pid(self->pods, self->proc_fd, p->pid, vg_mono_ms(), &id) == 0)
        podmap_identity_text(&id, pod, sizeof(pod));
    else
        snprintf(pod, sizeof(pod), "-");
    proctable_cmdline(self->proc_fd, p->pid, p->comm, cmdline, sizeof(cmdline));
    *ret = (struct proc_fixed){.pid = p->pid, .starttime = p->starttime, .user = strdup(user)};
    if (ret->user && asprintf(&ret->tail, "%-20s %-23s %s", started, pod, cmdline) < 0)
        ret->tail = NULL;
    if (!ret->user || !ret->tail) {
        proc_fixed_free(ret);
        return -ENOMEM;
    }
    return 0;
}

static void builder_printf(struct builder *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void builder_printf(struct builder *b, const char *fmt, ...)
{
    char line[ARTIFACT_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
    builder_write(b, line, len);
}

static int read_stat(int proc_fd, int pid, struct procfs_pid_stat *ret)
{
    char path[32], buf[4096];
    size_t len;
    snprintf(path, sizeof(path), "%d/stat", pid);
    int r = procfs_read_at(proc_fd, path, buf, sizeof(buf), &len);
    if (r < 0)
        return r;
    return len == 0 ? -ESRCH : procfs_parse_pid_stat(buf, len, ret);
}

/*
 * The process table, as the processes evidence shows it (the POD/CONTAINER ids column left
 * out), at most cap bytes. Only <pid>/stat is read for a process already known by its (pid,
 * starttime); status (the uid), cmdline and cgroup (the pod) once in its life.
 */
static void write_processes(struct flight *self, struct builder *b, size_t cap)
{
    int *pids = NULL;
    size_t npids = 0, listed = 0, vanished = 0, used = 0;
    char now[32];

    int r = proctable_pids(self->proc_fd, &pids, &npids);
    if (r < 0) {
        builder_printf(b, "# processes: cannot list %s: %s\n", self->proc_root, strerror(-r));
        return;
    }
    struct proc_fixed *next = calloc(npids ? npids : 1, sizeof(*next));
    if (!next) {
        free(pids);
        b->err = -ENOMEM;
        return;
    }
    size_t nnext = 0, old = 0, cost = 0;
    artifact_time_text(vg_wall_ms() / 1000, now, sizeof(now));
    builder_printf(b,
                   "# processes of %s at %s: %zu pids (columns as the processes evidence, "
                   "without POD/CONTAINER)\n",
                   self->proc_root, now, npids);
    builder_printf(b, "%-7s %-7s %-16s %c %4s %10s %11s %-20s %-23s %s\n", "PID", "PPID", "USER",
                   'S', "THR", "RSS_KIB", "CPU_S", "STARTED", "NAMESPACE/POD/CONTAINER", "COMMAND");
    for (size_t i = 0; i < npids && !b->err; i++) {
        struct procfs_pid_stat st;
        if (read_stat(self->proc_fd, pids[i], &st) < 0) {
            vanished++;
            continue;
        }
        struct proctable_proc p = {
            .pid = pids[i],
            .ppid = st.ppid,
            .state = st.state,
            .threads = st.num_threads,
            .rss_kib = st.rss_pages * (uint64_t)self->page / 1024,
            .cpu_ticks = st.utime + st.stime,
            .starttime = st.starttime,
        };
        while (old < self->nprocs && self->procs[old].pid < p.pid)
            proc_fixed_free(&self->procs[old++]);
        struct proc_fixed *f = &next[nnext];
        if (old < self->nprocs && self->procs[old].pid == p.pid &&
            self->procs[old].starttime == p.starttime) {
            *f = self->procs[old];
            self->procs[old++] = (struct proc_fixed){0};
        } else {
            struct proctable_proc full; /* the uid from status, this once */
            if (proctable_read(self->proc_fd, p.pid, &full) < 0) {
                vanished++;
                continue;
            }
            p.have_uid = full.have_uid;
            p.uid = full.uid;
            memcpy(p.comm, full.comm, sizeof(p.comm));
            if (proc_fixed_make(self, &p, f) < 0) {
                b->err = -ENOMEM;
                break;
            }
        }
        nnext++;
        cost += proc_fixed_cost(f);
        listed++;
        uint64_t tck = (uint64_t)self->tck;
        char line[ARTIFACT_LINE_MAX];
        int n = snprintf(line, sizeof(line), "%-7d %-7d %-16s %c %4u %10llu %8llu.%02llu %s\n",
                         p.pid, p.ppid, f->user, p.state, p.threads, (unsigned long long)p.rss_kib,
                         (unsigned long long)(p.cpu_ticks / tck),
                         (unsigned long long)(p.cpu_ticks % tck * 100 / tck), f->tail);
        size_t len = n < 0 ? 0 : (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
        if (used + len > cap) {
            builder_printf(b, "# truncated: the processes section reached its cap of %zu bytes\n",
                           cap);
            break;
        }
        used += len;
        builder_write(b, line, len);
    }
    /* Processes not listed (gone, or after the cap) leave the cache. */
    for (; old < self->nprocs; old++)
        proc_fixed_free(&self->procs[old]);
    free(self->procs);
    free(pids);
    self->procs = next;
    self->nprocs = nnext;
    builder_printf(b, "# %zu processes listed; %zu exited while being read\n", listed, vanished);
    cost += npids * sizeof(*next);
    pthread_mutex_lock(&self->lock);
    self->bytes += cost;
    self->bytes -= self->procs_cost;
    self->procs_cost = cost;
    pthread_mutex_unlock(&self->lock);
}

/* "btime N" of <proc>/stat: Unix seconds at boot, 0 when unknown. */
static int64_t boot_time(int proc_fd)
{
    char *buf = malloc(64 * 1024);
    size_t len;
    int64_t btime = 0;
    if (buf && procfs_read_at(proc_fd, "stat", buf, 64 * 1024, &len) == 0) {
        const char *at = strstr(buf, "\nbtime ");
        long long v;
        if (at && sscanf(at + 7, "%lld", &v) == 1 && v > 0)
            btime = v;
    }
    free(buf);
    return btime;
}

static int64_t thread_cpu_us(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int flight_take(flight_t *self, int64_t wall_ms)
{
    int64_t cpu0 = thread_cpu_us();
    struct builder *b = malloc(sizeof(*b));
    char err[256];

    if (!b || builder_begin(b, self, wall_ms) < 0) {
        free(b);
        return -ENOMEM;
    }
    if (self->proc_root) {
        struct artifact_writer out = {builder_write, b};
        size_t cap = self->max_bytes / 4;
        /* A table cut at cap ends in its "# truncated" line; one that could not be read at all
         * says why in a line of its own. */
        add_section(b, "netstat");
        b->skip_time_wait = true;
        int r = netstat_write_table(self->proc_root, self->pods, cap, &out, err, sizeof(err));
        if (b->part_len)
            flush_part(b);
        b->skip_time_wait = false;
        if (r < 0 && r != -EFBIG && !b->err) {
            char text[300];
            int n = snprintf(text, sizeof(text), "# %s\n", err);
            builder_write(b, text, n > 0 ? (size_t)n : 0);
        }
        if (b->time_wait)
            builder_printf(b,
                           "# %zu TIME_WAIT sockets left out of the recorder (no process holds "
                           "them; the summary above counts them)\n",
                           b->time_wait);
        add_section(b, "processes");
        if (self->proc_fd >= 0)
            write_processes(self, b, cap);
        else
            builder_printf(b, "# processes: cannot open %s\n", self->proc_root);
    }
    int r = builder_finish(b);
    free(b);
    int64_t spent = thread_cpu_us() - cpu0;
    pthread_mutex_lock(&self->lock);
    self->last_cpu_us = spent;
    pthread_mutex_unlock(&self->lock);
    return r;
}

/* ---- log lines ------------------------------------------------------------------------- */

/* Control bytes (but tab) as \xHH, other bytes as they are; cut at FLIGHT_LOG_LINE_MAX with
 * "...". Returns the length. */
static size_t clean_log_line(const char *line, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0, cap = FLIGHT_LOG_LINE_MAX;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        bool plain = c >= 0x20 ? c != 0x7f : c == '\t';
        size_t need = plain ? 1 : 4;
        if (o + need > cap - 3 && (i + 1 < len || o + need > cap)) {
            memcpy(out + o, "...", 3);
            return o + 3;
        }
        if (plain) {
            out[o++] = (char)c;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    return o;
}

/* The pending log named name, made when it is new (lock held); NULL past FLIGHT_LOGS_MAX. */
static struct pending_log *pending_log(struct flight *self, const char *name)
{
    for (size_t i = 0; i < self->nlogs; i++)
        if (strcmp(self->logs[i]->name, name) == 0)
            return self->logs[i];
    if (self->nlogs == FLIGHT_LOGS_MAX)
        return NULL;
    struct pending_log *p = calloc(1, sizeof(*p));
    if (!p || !(p->name = strdup(name))) {
        free(p);
        return NULL;
    }
    self->bytes += sizeof(*p) + strlen(name) + 1 + 2 * MALLOC_OVERHEAD;
    self->logs[self->nlogs++] = p;
    return p;
}

/* Twice the slots (up to FLIGHT_LOG_LINES_MAX), the oldest line first (lock held). */
static bool pending_grow(struct flight *self, struct pending_log *p)
{
    size_t cap = p->cap ? p->cap * 2 : 8;
    if (cap > FLIGHT_LOG_LINES_MAX)
        cap = FLIGHT_LOG_LINES_MAX;
    struct line **lines = malloc(cap * sizeof(*lines));
    if (!lines)
        return false;
    for (size_t k = 0; k < p->count; k++)
        lines[k] = p->lines[(p->head + k) % p->cap];
    free(p->lines);
    self->bytes += (cap - p->cap) * sizeof(*lines) + (p->cap ? 0 : MALLOC_OVERHEAD);
    p->lines = lines;
    p->cap = cap;
    p->head = 0;
    return true;
}

static void pending_drop_oldest(struct flight *self, struct pending_log *p)
{
    struct line *l = p->lines[p->head];
    size_t cost = line_cost(l->len);
    p->head = (p->head + 1) % p->cap;
    p->count--;
    p->bytes -= cost;
    self->pending_bytes -= cost;
    self->log_lines_dropped++;
    line_unref(self, l);
}

void flight_log_line(void *userdata, const char *log, const char *line, size_t len)
{
    struct flight *self = userdata;
    char text[FLIGHT_LOG_LINE_MAX];
    size_t n = clean_log_line(line, len, text);
    size_t cost = line_cost(n);

    pthread_mutex_lock(&self->lock);
    struct pending_log *p = pending_log(self, log ? log : "?");
    if (!p) {
        self->log_lines_dropped++;
        goto out_unlock;
    }
    p->seen++;
    if (p->count == p->cap && p->cap < FLIGHT_LOG_LINES_MAX)
        (void)pending_grow(self, p); /* failing, the oldest line makes room below */
    if (p->count > 0 && p->count == p->cap)
        pending_drop_oldest(self, p);
    while (p->count > 0 && self->pending_bytes + cost > self->max_bytes / 8)
        pending_drop_oldest(self, p);
    if (self->pending_bytes + cost > self->max_bytes / 8) { /* other logs hold the room */
        self->log_lines_dropped++;
        goto out_unlock;
    }
    struct line *l = line_intern(self, text, n);
    if (!l) {
        self->log_lines_dropped++;
        goto out_unlock;
    }
    if (p->cap == 0) { /* every line dropped for room, and the slots could not grow */
        line_unref(self, l);
        self->log_lines_dropped++;
        goto out_unlock;
    }
    p->lines[(p->head + p->count) % p->cap] = l;
    p->count++;
    p->bytes += cost;
    self->pending_bytes += cost;
out_unlock:
    pthread_mutex_unlock(&self->lock);
}

/* ---- freezing and the artifact --------------------------------------------------------- */

flight_frozen_t *flight_freeze(flight_t *self, int64_t now_ms)
{
    struct flight_frozen *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->fl = self;
    pthread_mutex_lock(&self->lock);
    size_t first = 0;
    while (first < self->ring_count && ring_at(self, first)->taken_ms <= now_ms - self->window_ms)
        first++;
    f->n = self->ring_count - first;
    f->snaps = calloc(f->n ? f->n : 1, sizeof(*f->snaps));
    if (!f->snaps) {
        pthread_mutex_unlock(&self->lock);
        free(f);
        return NULL;
    }
    for (size_t i = 0; i < f->n; i++) {
        f->snaps[i] = ring_at(self, first + i);
        f->snaps[i]->refs++;
    }
    f->interval_ms = self->interval_ms;
    f->window_ms = self->window_ms;
    f->max_bytes = self->max_bytes;
    f->bytes = self->bytes;
    f->dropped_for_size = self->dropped_for_size;
    f->log_lines_dropped = self->log_lines_dropped;
    pthread_mutex_unlock(&self->lock);
    return f;
}

size_t flight_frozen_count(const flight_frozen_t *frozen)
{
    return frozen->n;
}

int64_t flight_frozen_time(const flight_frozen_t *frozen, size_t i)
{
    return i < frozen->n ? frozen->snaps[i]->taken_ms : 0;
}

void flight_frozen_destroy(flight_frozen_t **frozen_p)
{
    struct flight_frozen *f = *frozen_p;
    if (!f)
        return;
    pthread_mutex_lock(&f->fl->lock);
    for (size_t i = 0; i < f->n; i++)
        snapshot_unref(f->fl, f->snaps[i]);
    pthread_mutex_unlock(&f->fl->lock);
    free(f->snaps);
    free(f);
    *frozen_p = NULL;
}

#define HEAD_RESERVE 2048 /* the artifact's comment lines and its truncation line */

/* The bytes a snapshot takes in the artifact. */
static size_t snapshot_text_size(const struct snapshot *s)
{
    size_t n = 0;
    for (size_t k = 0; k < s->nsections; k++)
        n += sizeof("== 2026-12-06T21:40:05Z  ==\n") - 1 + s->sections[k].title->len;
    for (size_t i = 0; i < s->nlines; i++)
        n += s->lines[i]->len + 1;
    return n;
}

/* "5s", "5m", "1h", "1500ms". */
static void duration_text(int64_t ms, char *buf, size_t cap)
{
    if (ms % 3600000 == 0)
        snprintf(buf, cap, "%" PRId64 "h", ms / 3600000);
    else if (ms % 60000 == 0)
        snprintf(buf, cap, "%" PRId64 "m", ms / 60000);
    else if (ms % 1000 == 0)
        snprintf(buf, cap, "%" PRId64 "s", ms / 1000);
    else
        snprintf(buf, cap, "%" PRId64 "ms", ms);
}

int flight_frozen_write(const flight_frozen_t *f, size_t max_bytes,
                        const struct artifact_writer *out, char *err, size_t errlen)
{
    struct artifact_text *t = malloc(sizeof(*t));
    char every[32], kept[32], from[32], to[32];

    if (!t) {
        snprintf(err, errlen, "flight: out of memory");
        return -ENOMEM;
    }
    artifact_text_init(t, out, max_bytes);
    duration_text(f->interval_ms, every, sizeof(every));
    duration_text(f->window_ms, kept, sizeof(kept));
    if (f->n) {
        artifact_time_text(f->snaps[0]->taken_ms / 1000, from, sizeof(from));
        artifact_time_text(f->snaps[f->n - 1]->taken_ms / 1000, to, sizeof(to));
        artifact_text_printf(t,
                             "# flight recorder: %zu snapshot%s from %s to %s, one every %s, "
                             "each kept %s\n",
                             f->n, f->n == 1 ? "" : "s", from, to, every, kept);
    } else {
        artifact_text_printf(t, "# flight recorder: no snapshot yet (one every %s, each kept %s)\n",
                             every, kept);
    }
    artifact_text_printf(t,
                         "# memory: %zu bytes of at most %zu (flight_recorder.max_size); since "
                         "the agent started %" PRIu64 " snapshots were dropped before their time "
                         "to stay within it and %" PRIu64 " log lines were not kept\n",
                         f->bytes, f->max_bytes, f->dropped_for_size, f->log_lines_dropped);
    artifact_text_printf(t,
                         "# each snapshot, oldest first: netstat (the socket table with its "
                         "processes, as the netstat evidence), processes (as the processes "
                         "evidence), log NAME (the lines the log collector read since the "
                         "snapshot before, the newest %d at most, control bytes as \\xHH)\n",
                         FLIGHT_LOG_LINES_MAX);
    /* What does not fit in max_bytes goes from the oldest end: the minutes just before the
     * request matter most. */
    size_t first = f->n, room = max_bytes > HEAD_RESERVE ? max_bytes - HEAD_RESERVE : 0;
    while (first > 0) {
        size_t size = snapshot_text_size(f->snaps[first - 1]);
        if (size > room)
            break;
        room -= size;
        first--;
    }
    if (first == f->n && f->n > 0)
        first = f->n - 1; /* the newest, cut at max_bytes */
    if (first > 0)
        artifact_text_printf(t,
                             "# the %zu oldest snapshots are left out: all of them would pass the "
                             "artifact's cap of %zu bytes (evidence.max_size)\n",
                             first, max_bytes);
    for (size_t i = first; i < f->n && t->status == 0; i++) {
        const struct snapshot *s = f->snaps[i];
        char when[32];
        artifact_time_text(s->taken_ms / 1000, when, sizeof(when));
        for (size_t k = 0; k < s->nsections && t->status == 0; k++) {
            const struct section *sec = &s->sections[k];
            artifact_text_printf(t, "== %s %s ==\n", when, sec->title->text);
            for (size_t j = 0; j < sec->count && t->status == 0; j++) {
                const struct line *l = s->lines[sec->first + j];
                artifact_text_printf(t, "%s\n", l->text);
            }
        }
    }
    int r = artifact_text_finish(t, "flight", err, errlen);
    free(t);
    return r;
}

int flight_write(flight_t *self, size_t max_bytes, const struct artifact_writer *out, char *err,
                 size_t errlen)
{
    flight_frozen_t *f = flight_freeze(self, vg_wall_ms());
    if (!f) {
        snprintf(err, errlen, "flight: out of memory");
        return -ENOMEM;
    }
    int r = flight_frozen_write(f, max_bytes, out, err, errlen);
    flight_frozen_destroy(&f);
    return r;
}

void flight_get_stats(flight_t *self, struct flight_stats *ret)
{
    pthread_mutex_lock(&self->lock);
    *ret = (struct flight_stats){
        .snapshots = self->ring_count,
        .bytes = self->bytes,
        .lines = self->nlines,
        .taken = self->taken,
        .dropped_for_size = self->dropped_for_size,
        .log_lines_dropped = self->log_lines_dropped,
        .oldest_ms = self->ring_count ? ring_at(self, 0)->taken_ms : 0,
        .newest_ms = self->ring_count ? ring_at(self, self->ring_count - 1)->taken_ms : 0,
        .last_cpu_us = self->last_cpu_us,
    };
    pthread_mutex_unlock(&self->lock);
}

/* ---- the recorder's thread and the object ---------------------------------------------- */

static void deadline(int64_t mono_ms, struct timespec *ts)
{
    ts->tv_sec = (time_t)(mono_ms / 1000);
    ts->tv_nsec = (long)(mono_ms % 1000) * 1000000L;
}

static void *recorder_main(void *arg)
{
    struct flight *self = arg;
    int64_t next = vg_mono_ms();

    pthread_mutex_lock(&self->lock);
    while (!self->stopping) {
        int64_t now = vg_mono_ms();
        if (now < next) {
            struct timespec ts;
            deadline(next, &ts);
            pthread_cond_timedwait(&self->wake, &self->lock, &ts);
            continue;
        }
        pthread_mutex_unlock(&self->lock);
        if (flight_take(self, vg_wall_ms()) < 0)
            vg_log(VG_LOG_WARN, "flight recorder: out of memory, snapshot skipped");
        /* A snapshot's transient buffers sit between lines that live for the window: give the
         * free pages among them back, or they stay in the agent's anonymous memory. */
        malloc_trim(0);
        next += self->interval_ms;
        if (next <= vg_mono_ms()) /* fell behind (a suspended VM): no burst to catch up */
            next = vg_mono_ms() + self->interval_ms;
        pthread_mutex_lock(&self->lock);
    }
    pthread_mutex_unlock(&self->lock);
    return NULL;
}

flight_t *flight_new(const struct flight_options *opt, char *err, size_t errlen)
{
    if (opt->interval_ms < 1 || opt->window_ms < opt->interval_ms || opt->max_bytes < MIN_BYTES) {
        snprintf(err, errlen,
                 "flight recorder: the interval must be positive, the window at least the "
                 "interval and the size at least %d bytes",
                 MIN_BYTES);
        return NULL;
    }
    if (opt->nlogs > FLIGHT_LOGS_MAX) {
        snprintf(err, errlen, "flight recorder: at most %d logs", FLIGHT_LOGS_MAX);
        return NULL;
    }
    if (sodium_init() < 0) {
        snprintf(err, errlen, "flight recorder: libsodium did not initialise");
        return NULL;
    }
    struct flight *self = calloc(1, sizeof(*self));
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&self->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&self->wake, &ca);
    pthread_condattr_destroy(&ca);
    self->interval_ms = opt->interval_ms;
    self->window_ms = opt->window_ms;
    self->max_bytes = opt->max_bytes;
    self->pods = opt->pods;
    self->proc_fd = -1;
    self->tck = sysconf(_SC_CLK_TCK);
    if (self->tck <= 0)
        self->tck = 100;
    self->page = sysconf(_SC_PAGESIZE);
    if (self->page <= 0)
        self->page = 4096;
    randombytes_buf(self->key, sizeof(self->key));
    int64_t slots = opt->window_ms / opt->interval_ms + 2; /* + timer jitter */
    self->ring_cap = slots > RING_MAX ? RING_MAX : (size_t)slots;
    self->nbuckets = BUCKETS_MIN;
    self->ring = calloc(self->ring_cap, sizeof(*self->ring));
    self->buckets = calloc(self->nbuckets, sizeof(*self->buckets));
    if (opt->proc_root)
        self->proc_root = strdup(opt->proc_root);
    if (!self->ring || !self->buckets || (opt->proc_root && !self->proc_root))
        goto err_nomem;
    if (opt->proc_root) { /* opened now, like the collectors: a later privilege drop keeps it */
        self->proc_fd = open(opt->proc_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (self->proc_fd >= 0)
            self->btime = boot_time(self->proc_fd);
    }
    self->bytes = sizeof(*self) + self->ring_cap * sizeof(*self->ring) +
                  self->nbuckets * sizeof(*self->buckets);
    for (size_t i = 0; i < opt->nlogs; i++)
        if (!pending_log(self, opt->log_names[i]))
            goto err_nomem;
    return self;

err_nomem:
    snprintf(err, errlen, "out of memory");
    flight_destroy(&self);
    return NULL;
}

int flight_start(flight_t *self, char *err, size_t errlen)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    /* netstat_write_table and proctable_write keep their buffers on the heap. */
    pthread_attr_setstacksize(&attr, 256 * 1024);
    int r = pthread_create(&self->thread, &attr, recorder_main, self);
    pthread_attr_destroy(&attr);
    if (r != 0) {
        snprintf(err, errlen, "flight recorder: cannot start its thread: %s", strerror(r));
        return -r;
    }
    self->thread_started = true;
    return 0;
}

void flight_destroy(flight_t **self_p)
{
    struct flight *self = *self_p;
    if (!self)
        return;
    if (self->thread_started) {
        pthread_mutex_lock(&self->lock);
        self->stopping = true;
        pthread_cond_signal(&self->wake);
        pthread_mutex_unlock(&self->lock);
        pthread_join(self->thread, NULL);
    }
    pthread_mutex_lock(&self->lock);
    while (self->ring && self->ring_count)
        drop_oldest(self);
    for (size_t i = 0; i < self->nlogs; i++) {
        struct pending_log *p = self->logs[i];
        while (p->count)
            pending_drop_oldest(self, p);
        free(p->lines);
        free(p->name);
        free(p);
    }
    pthread_mutex_unlock(&self->lock);
    for (size_t i = 0; i < self->nprocs; i++)
        proc_fixed_free(&self->procs[i]);
    free(self->procs);
    if (self->proc_fd >= 0)
        close(self->proc_fd);
    free(self->ring);
    free(self->buckets);
    free(self->proc_root);
    pthread_mutex_destroy(&self->lock);
    pthread_cond_destroy(&self->wake);
    free(self);
    *self_p = NULL;
}
