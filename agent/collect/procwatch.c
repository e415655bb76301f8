/*
 * Watched processes: the contract and the signals are in procwatch.h.
 *
 * Each watch holds at most one process, known by (pid, start time) and, where pidfds work, by
 * a pidfd in the epoll set (its data is the watch's index). A run re-finds every watch's
 * process: the held one is kept while it is alive and still matches (same comm, still in the
 * unit's cgroup, still named by the pidfile); otherwise the candidate found replaces it, and a
 * replacement of a process seen before counts as a restart.
 */
#include "procwatch.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "procfs.h"
#include "timeutil.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434 /* the same number on every architecture */
#endif

#define COMM_MAX 15       /* TASK_COMM_LEN - 1 */
#define PIDFILE_MAX 64    /* bytes read from a pidfile */
#define PID_LIMIT 4194304 /* PID_MAX_LIMIT */
#define UNIT_MAX 255
#define NAME_MAX_LEN 63
#define STAT_BUF 1024

enum how { BY_COMM, BY_PIDFILE, BY_UNIT };
enum reason { R_PIDFILE, R_UNREADABLE, R_COUNT };
static const char *const reason_names[R_COUNT] = {"pidfile", "unreadable"};

/* ---- Configuration table ---------------------------------------------------------------- */

const struct vg_cfg_key procwatch_keys[] = {
    {.path = "name",
     .type = VG_CFG_STRING,
     .offset = offsetof(struct procwatch_config, name),
     .max = NAME_MAX_LEN,
     .required = true,
     .help = "the name label of this process's signals; unique"},
    {.path = "comm",
     .type = VG_CFG_STRING,
     .offset = offsetof(struct procwatch_config, comm),
     .max = 64,
     .help = "find it by /proc/PID/comm (exact, at most 15 characters; the oldest match)"},
    {.path = "pidfile",
     .type = VG_CFG_STRING,
     .offset = offsetof(struct procwatch_config, pidfile),
     .max = PATH_MAX - 1,
     .help = "find it by the pid in this file"},
    {.path = "unit",
     .type = VG_CFG_STRING,
     .offset = offsetof(struct procwatch_config, unit),
     .max = UNIT_MAX,
     .help = "find it as the main (lowest) pid of this systemd unit (cgroup v2)"},
};
const size_t procwatch_nkeys = sizeof(procwatch_keys) / sizeof(procwatch_keys[0]);

/* ---- State ------------------------------------------------------------------------------ */

struct watch {
    char *name;
    enum how how;
    char *comm;    /* BY_COMM */
    char *pidfile; /* BY_PIDFILE */
    char *procs;   /* BY_UNIT: <cgroup_root>/system.slice/<unit>/cgroup.procs */

    /* The process held: pid 0 = none. */
    int pid;
    uint64_t start;
    int pidfd;
    uint64_t cpu_ticks;
    int64_t cpu_mono_ms;
    bool have_cpu;

    /* The last process seen up: a different one found later is a restart. */
    bool seen;
    int last_pid;
    uint64_t last_start;
    uint64_t restarts;

    uint64_t errors[R_COUNT];
    bool failing[R_COUNT]; /* logged; cleared when the source reads well again */

    /* The pod of the process held, looked up once per process (pid, start). */
    bool pod_checked;
    int pod_pid;
    uint64_t pod_start;
    struct pod_identity *pod; /* NULL: not in a pod (or not named) */
};

struct procwatch {
    struct watch *w;
    size_t n;
    char proc_root[PATH_MAX];
    int proc_fd; /* -1 until proc_root could be opened */
    int epfd;    /* -1: exits are polled */
    long clk_tck;
    long page_size;
    podmap_t *pods; /* NULL: proc.pod is not sent */
    char buf[STAT_BUF];
};

/* What a run learned of one process. */
struct found {
    int pid;
    struct procfs_pid_stat stat;
};

/* ---- Helpers ---------------------------------------------------------------------------- */

static bool is_set(const char *s)
{
    return s && *s;
}

/* Counts an error and logs it once per episode. */
static void fail(struct watch *w, enum reason reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(struct watch *w, enum reason reason, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    if (w->failing[reason])
        return;
    w->failing[reason] = true;
    w->errors[reason]++;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    vg_log(VG_LOG_WARN, "processes: name=%s %s", w->name, msg);
}

static void recovered(struct watch *w, enum reason reason)
{
    if (!w->failing[reason])
        return;
    w->failing[reason] = false;
    vg_log(VG_LOG_INFO, "processes: name=%s %s", w->name,
           reason == R_PIDFILE ? "pidfile holds a pid again" : "readable again");
}

static bool valid_unit(const char *unit)
{
    size_t n = strlen(unit);
    if (n == 0 || n > UNIT_MAX - 8 || strcmp(unit, ".") == 0 || strcmp(unit, "..") == 0)
        return false;
    for (const char *p = unit; *p; p++) {
        if (!isalnum((unsigned char)*p) && !strchr(":_.@-\\", *p))
            return false;
    }
    return true;
}

/* "12345\n" -> 12345: digits with white space around, 1..PID_LIMIT. */
static bool parse_pid(const char *s, size_t len, int *ret_pid)
{
    size_t i = 0;
    long v = 0;
    while (i < len && isspace((unsigned char)s[i]))
        i++;
    size_t digits = i;
    while (i < len && s[i] >= '0' && s[i] <= '9' && i - digits < 8) {
        v = v * 10 + (s[i] - '0');
        i++;
    }
    if (i == digits || v < 1 || v > PID_LIMIT)
        return false;
    while (i < len && isspace((unsigned char)s[i]))
        i++;
    if (i != len)
        return false;
    *ret_pid = (int)v;
    return true;
}

/* ---- Lifecycle -------------------------------------------------------------------------- */

static int pidfd_open(int pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* pidfds refer to processes of the agent's own pid namespace: only usable when proc_root shows
 * that namespace, and when the kernel (and any seccomp filter) allows pidfd_open. */
static int open_epoll(const char *proc_root)
{
    char path[PATH_MAX + 8], target[32];
    int n = snprintf(path, sizeof(path), "%s/self", proc_root);
    ssize_t len =
        n > 0 && (size_t)n < sizeof(path) ? readlink(path, target, sizeof(target) - 1) : -1;
    if (len <= 0) {
        vg_log(VG_LOG_INFO,
               "processes: %s is not this process's /proc; exits are noticed at "
               "the next run (polling)",
               proc_root);
        return -1;
    }
    target[len] = '\0';
    int self_pid;
    if (!parse_pid(target, (size_t)len, &self_pid) || self_pid != (int)getpid()) {
        vg_log(VG_LOG_INFO,
               "processes: %s shows another pid namespace; exits are noticed at "
               "the next run (polling)",
               proc_root);
        return -1;
    }
    int probe = pidfd_open((int)getpid());
    if (probe < 0) {
        vg_log(VG_LOG_WARN,
               "processes: pidfd_open unavailable (%s); exits are noticed at the "
               "next run (polling)",
               strerror(errno));
        return -1;
    }
    close(probe);
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        vg_log(VG_LOG_WARN,
               "processes: epoll_create1: %s; exits are noticed at the next run "
               "(polling)",
               strerror(errno));
    return epfd;
}

static int init_watch(procwatch_t *self, size_t i, const struct procwatch_config *c,
                      const char *cgroup_root, char *err, size_t errlen)
{
    struct watch *w = &self->w[i];
    int ways = is_set(c->comm) + is_set(c->pidfile) + is_set(c->unit);

    w->pidfd = -1;
    if (!is_set(c->name) || strlen(c->name) > NAME_MAX_LEN) {
        vg_set_err(err, errlen, "process %zu: name must be 1 to %d characters", i + 1,
                   NAME_MAX_LEN);
        return -EINVAL;
    }
    for (size_t j = 0; j < i; j++) {
        if (strcmp(self->w[j].name, c->name) == 0) {
            vg_set_err(err, errlen, "process \"%s\": the name is used twice", c->name);
            return -EINVAL;
        }
    }
    if (ways != 1) {
        vg_set_err(err, errlen, "process \"%s\": set exactly one of comm, pidfile or unit",
                   c->name);
        return -EINVAL;
    }
    if (is_set(c->comm) && strlen(c->comm) > COMM_MAX) {
        vg_set_err(err, errlen,
                   "process \"%s\": comm must be at most %d characters, as the kernel keeps it "
                   "(got \"%s\")",
                   c->name, COMM_MAX, c->comm);
        return -EINVAL;
    }
    if (is_set(c->pidfile) && c->pidfile[0] != '/') {
        vg_set_err(err, errlen, "process \"%s\": pidfile must be an absolute path (got \"%s\")",
                   c->name, c->pidfile);
        return -EINVAL;
    }
    if (is_set(c->unit) && !valid_unit(c->unit)) {
        vg_set_err(err, errlen, "process \"%s\": \"%s\" is not a systemd unit name", c->name,
                   c->unit);
        return -EINVAL;
    }
    w->name = strdup(c->name);
    if (!w->name)
        goto err_nomem;
    if (is_set(c->comm)) {
        w->how = BY_COMM;
        w->comm = strdup(c->comm);
        if (!w->comm)
            goto err_nomem;
    } else if (is_set(c->pidfile)) {
        w->how = BY_PIDFILE;
        w->pidfile = strdup(c->pidfile);
        if (!w->pidfile)
            goto err_nomem;
    } else {
        w->how = BY_UNIT;
        bool typed = strrchr(c->unit, '.') != NULL;
        if (asprintf(&w->procs, "%s/system.slice/%s%s/cgroup.procs", cgroup_root, c->unit,
                     typed ? "" : ".service") < 0) {
            w->procs = NULL;
            goto err_nomem;
        }
    }
    return 0;

err_nomem:
    vg_set_err(err, errlen, "process \"%s\": out of memory", c->name);
    return -ENOMEM;
}

procwatch_t *procwatch_new(const struct procwatch_config *watch, size_t n, const char *proc_root,
                           const char *cgroup_root, char *err, size_t errlen)
{
    if (n > PROCWATCH_MAX || (n && !watch)) {
        vg_set_err(err, errlen, "processes: at most %d may be watched", PROCWATCH_MAX);
        return NULL;
    }
    procwatch_t *self = calloc(1, sizeof(*self));
    if (!self) {
        vg_set_err(err, errlen, "processes: out of memory");
        return NULL;
    }
    self->proc_fd = -1;
    self->epfd = -1;
    if (!proc_root)
        proc_root = "/proc";
    if (!cgroup_root)
        cgroup_root = "/sys/fs/cgroup";
    int len = snprintf(self->proc_root, sizeof(self->proc_root), "%s", proc_root);
    if (len < 0 || (size_t)len >= sizeof(self->proc_root)) {
        vg_set_err(err, errlen, "processes: proc root is too long");
        goto err_free;
    }
    self->w = calloc(n + 1, sizeof(*self->w));
    if (!self->w) {
        vg_set_err(err, errlen, "processes: out of memory");
        goto err_free;
    }
    for (size_t i = 0; i < n; i++) {
        self->n = i + 1; /* destroy frees the half-built one */
        if (init_watch(self, i, &watch[i], cgroup_root, err, errlen) < 0)
            goto err_free;
    }
    self->n = n;
    self->clk_tck = sysconf(_SC_CLK_TCK);
    self->page_size = sysconf(_SC_PAGESIZE);
    if (self->clk_tck <= 0)
        self->clk_tck = 100;
    if (self->page_size <= 0)
        self->page_size = 4096;
    /* Opened now, so a later privilege drop keeps access; retried by each run. */
    self->proc_fd = open(self->proc_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (n > 0)
        self->epfd = open_epoll(self->proc_root);
    return self;

err_free:
    procwatch_destroy(&self);
    return NULL;
}

static void release(procwatch_t *self, struct watch *w)
{
    if (w->pidfd >= 0) {
        if (self->epfd >= 0)
            epoll_ctl(self->epfd, EPOLL_CTL_DEL, w->pidfd, NULL);
        close(w->pidfd);
        w->pidfd = -1;
    }
    w->pid = 0;
    w->have_cpu = false;
}

void procwatch_destroy(procwatch_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    procwatch_t *self = *self_p;
    for (size_t i = 0; self->w && i < self->n; i++) {
        struct watch *w = &self->w[i];
        release(self, w);
        free(w->name);
        free(w->comm);
        free(w->pidfile);
        free(w->procs);
        free(w->pod);
    }
    free(self->w);
    if (self->epfd >= 0)
        close(self->epfd);
    if (self->proc_fd >= 0)
        close(self->proc_fd);
    free(self);
    *self_p = NULL;
}

void procwatch_set_pods(procwatch_t *self, podmap_t *pods)
{
    self->pods = pods;
}

int procwatch_fd(const procwatch_t *self)
{
    return self ? self->epfd : -1;
}

/* ---- Reading processes ------------------------------------------------------------------ */

/* 0 with the stat of a live process; -ESRCH when it is gone or a zombie; another negative
 * errno when its /proc entry could not be read. */
static int read_stat(procwatch_t *self, int pid, struct procfs_pid_stat *ret)
{
    char path[32];
    size_t len;

    if (self->proc_fd < 0) {
        self->proc_fd = open(self->proc_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (self->proc_fd < 0)
            return -errno;
    }
    snprintf(path, sizeof(path), "%d/stat", pid);
    int r = procfs_read_at(self->proc_fd, path, self->buf, sizeof(self->buf), &len);
    if (r == -ENOENT || r == -ESRCH || (r == 0 && len == 0))
        return -ESRCH; /* exited (between the directory listing and the read, too) */
    if (r < 0)
        return r;
    if (procfs_parse_pid_stat(self->buf, len, ret) < 0)
        return -EINVAL;
    if (ret->state == 'Z' || ret->state == 'X')
        return -ESRCH;
    return 0;
}

/* A pid named by a watch's source, checked: the process or -ESRCH, or an error counted. */
static int check_pid(procwatch_t *self, struct watch *w, int pid, struct found *ret)
{
    int r = read_stat(self, pid, &ret->stat);
    if (r == -ESRCH)
        return r;
    if (r < 0) {
        fail(w, R_UNREADABLE, "pid=%d: cannot read %s/%d/stat: %s", pid, self->proc_root, pid,
             strerror(-r));
        return r;
    }
    ret->pid = pid;
    return 0;
}

static int find_by_pidfile(procwatch_t *self, struct watch *w, struct found *ret)
{
    char text[PIDFILE_MAX + 1];
    struct stat st;
    int pid;

    int fd = open(w->pidfile, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            recovered(w, R_UNREADABLE);
            recovered(w, R_PIDFILE);
            return -ESRCH; /* no pidfile: stopped */
        }
        fail(w, R_UNREADABLE, "cannot open pidfile %s: %s", w->pidfile, strerror(errno));
        return -errno;
    }
    ssize_t n = -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        do {
            n = read(fd, text, sizeof(text));
        } while (n < 0 && errno == EINTR);
    } else {
        errno = EINVAL;
    }
    int e = errno;
    close(fd);
    if (n < 0) {
        fail(w, R_UNREADABLE, "cannot read pidfile %s: %s", w->pidfile,
             e == EINVAL ? "not a regular file" : strerror(e));
        return -e;
    }
    recovered(w, R_UNREADABLE);
    if (n == 0)
        return -ESRCH; /* created, pid not yet written */
    if ((size_t)n > PIDFILE_MAX || !parse_pid(text, (size_t)n, &pid)) {
        fail(w, R_PIDFILE, "pidfile %s does not hold a pid (%zd bytes)", w->pidfile, n);
        return -EINVAL;
    }
    recovered(w, R_PIDFILE);
    return check_pid(self, w, pid, ret);
}

struct procs_scan {
    int lowest;
    int held;
    bool held_found;
    bool malformed;
};

static int scan_procs(const char *chunk, size_t len, void *userdata)
{
    struct procs_scan *s = userdata;
    const char *p = chunk, *end = chunk + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        int pid;
        if (!nl)
            break;
        /* 0: a process of another pid namespace (invisible to us). */
        if (nl > p && !(nl - p == 1 && *p == '0')) {
            if (!parse_pid(p, (size_t)(nl - p), &pid)) {
                s->malformed = true;
            } else {
                if (s->lowest == 0 || pid < s->lowest)
                    s->lowest = pid;
                s->held_found |= pid == s->held;
            }
        }
        p = nl + 1;
    }
    return 0;
}

static int find_by_unit(procwatch_t *self, struct watch *w, struct found *ret)
{
    struct procs_scan scan = {.held = w->pid};
    int r = procfs_read_stream(AT_FDCWD, w->procs, self->buf, sizeof(self->buf), scan_procs, &scan);
    if (r == -ENOENT || r == -ENOTDIR || r == -ENODEV) {
        recovered(w, R_UNREADABLE);
        return -ESRCH; /* the unit is not running: systemd removed its cgroup */
    }
    if (r < 0 || scan.malformed) {
        fail(w, R_UNREADABLE, "cannot read %s: %s", w->procs,
             r < 0 ? strerror(-r) : "malformed contents");
        if (r < 0)
            return r;
    } else {
        recovered(w, R_UNREADABLE);
    }
    /* The process held stays while it is in the unit: a lower pid appearing is a new child. */
    if (scan.held_found && check_pid(self, w, w->pid, ret) == 0)
        return 0;
    if (scan.lowest == 0)
        return -ESRCH; /* empty: the unit's processes are gone (or all in child cgroups) */
    return check_pid(self, w, scan.lowest, ret);
}

/* One pass over <proc_root> for every comm watch whose held process is gone. */
static void find_by_comm(procwatch_t *self, struct found *found, int *results)
{
    bool any = false;
    for (size_t i = 0; i < self->n; i++) {
        if (self->w[i].how == BY_COMM && results[i] == -ESRCH)
            any = true;
    }
    if (!any || self->proc_fd < 0)
        return;
    int dfd = openat(self->proc_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!dir) {
        if (dfd >= 0)
            close(dfd);
        for (size_t i = 0; i < self->n; i++) {
            if (self->w[i].how == BY_COMM && results[i] == -ESRCH)
                fail(&self->w[i], R_UNREADABLE, "cannot list %s: %s", self->proc_root,
                     strerror(errno));
        }
        return;
    }
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        int pid;
        struct procfs_pid_stat st;
        if (de->d_name[0] < '1' || de->d_name[0] > '9' ||
            !parse_pid(de->d_name, strlen(de->d_name), &pid))
            continue;
        if (read_stat(self, pid, &st) < 0)
            continue; /* exited mid-walk, or another user's hidden process: not ours to report */
        for (size_t i = 0; i < self->n; i++) {
            const struct watch *w = &self->w[i];
            if (w->how != BY_COMM || results[i] != -ESRCH || strcmp(st.comm, w->comm) != 0)
                continue;
            struct found *f = &found[i];
            if (f->pid == 0 || st.starttime < f->stat.starttime ||
                (st.starttime == f->stat.starttime && pid < f->pid)) {
                f->pid = pid;
                f->stat = st;
            }
        }
    }
    closedir(dir);
    for (size_t i = 0; i < self->n; i++) {
        if (self->w[i].how == BY_COMM && results[i] == -ESRCH && found[i].pid > 0) {
            results[i] = 0;
            recovered(&self->w[i], R_UNREADABLE);
        }
    }
}

/* The held comm process, if it is alive and still has the comm. */
static int keep_comm(procwatch_t *self, struct watch *w, struct found *ret)
{
    if (w->pid == 0)
        return -ESRCH;
    int r = check_pid(self, w, w->pid, ret);
    if (r == 0 && strcmp(ret->stat.comm, w->comm) != 0)
        return -ESRCH;
    return r;
}

/* ---- Holding a process ------------------------------------------------------------------ */

static void attach_pidfd(procwatch_t *self, size_t i, const struct found *f)
{
    struct watch *w = &self->w[i];
    struct procfs_pid_stat again = {0};

    if (self->epfd < 0)
        return;
    int fd = pidfd_open(f->pid);
    if (fd < 0)
        return; /* ESRCH: gone already; the next run sees it */
    /* The pid may have been reused between the stat and the open: the same start time says
     * the pidfd holds the process that was read. */
    if (read_stat(self, f->pid, &again) < 0 || again.starttime != f->stat.starttime) {
        close(fd);
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = i};
    if (epoll_ctl(self->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        vg_log(VG_LOG_WARN, "processes: name=%s epoll_ctl: %s", w->name, strerror(errno));
        close(fd);
        return;
    }
    w->pidfd = fd;
}

/* Makes f the held process (a new one: possibly a restart). */
static void hold(procwatch_t *self, size_t i, const struct found *f)
{
    struct watch *w = &self->w[i];

    release(self, w);
    if (w->seen && (w->last_pid != f->pid || w->last_start != f->stat.starttime)) {
        w->restarts++;
        vg_log(VG_LOG_INFO, "processes: name=%s restarted: pid=%d (was %d) restarts=%llu", w->name,
               f->pid, w->last_pid, (unsigned long long)w->restarts);
    } else if (!w->seen) {
        vg_log(VG_LOG_INFO, "processes: name=%s up pid=%d", w->name, f->pid);
    }
    w->seen = true;
    w->last_pid = f->pid;
    w->last_start = f->stat.starttime;
    w->pid = f->pid;
    w->start = f->stat.starttime;
    attach_pidfd(self, i, f);
}

/* proc.pod{name,namespace,pod,container,pod_uid} = 1 for a process in a pod. */
static void emit_pod(const procwatch_t *self, struct watch *w, struct collect_ctx *ctx, int64_t now)
{
    if (!w->pod_checked || w->pod_pid != w->pid || w->pod_start != w->start) {
        struct pod_identity id;
        free(w->pod);
        w->pod = NULL;
        if (podmap_resolve_pid(self->pods, self->proc_fd, w->pid, now, &id) == 0 &&
            (w->pod = malloc(sizeof(*w->pod))) != NULL)
            *w->pod = id;
        w->pod_checked = true;
        w->pod_pid = w->pid;
        w->pod_start = w->start;
    }
    if (!w->pod)
        return;
    struct sig_label l[5] = {{"name", w->name},
                             {"namespace", w->pod->namespace},
                             {"pod", w->pod->pod},
                             {"pod_uid", w->pod->uid},
                             {"container", w->pod->container}};
    collect_emit(ctx, "proc.pod", 1, "bool", l, w->pod->container[0] ? 5 : 4);
}

static void emit(const procwatch_t *self, struct watch *w, const struct found *f,
                 struct collect_ctx *ctx)
{
    struct sig_label l[2] = {{"name", w->name}, {NULL, NULL}};
    bool up = f && w->pid != 0;

    collect_emit(ctx, "proc.up", up ? 1 : 0, "bool", l, 1);
    collect_emit(ctx, "proc.restarts", (double)w->restarts, "count", l, 1);
    if (up) {
        uint64_t ticks = f->stat.utime + f->stat.stime;
        int64_t now = vg_mono_ms();
        collect_emit(ctx, "proc.pid", f->pid, "pid", l, 1);
        collect_emit(ctx, "proc.rss_bytes", (double)f->stat.rss_pages * (double)self->page_size,
                     "bytes", l, 1);
        if (w->have_cpu && now > w->cpu_mono_ms && ticks >= w->cpu_ticks) {
            double cpu_s = (double)(ticks - w->cpu_ticks) / (double)self->clk_tck;
            collect_emit(ctx, "proc.cpu_pct", cpu_s * 100000.0 / (double)(now - w->cpu_mono_ms),
                         "percent", l, 1);
        }
        w->cpu_ticks = ticks;
        w->cpu_mono_ms = now;
        w->have_cpu = true;
        if (self->pods)
            emit_pod(self, w, ctx, now);
    }
    for (int r = 0; r < R_COUNT; r++) {
        if (w->errors[r] == 0)
            continue;
        l[1] = (struct sig_label){"reason", reason_names[r]};
        collect_emit(ctx, "proc.errors", (double)w->errors[r], "count", l, 2);
    }
}

/* ---- Runs and exits --------------------------------------------------------------------- */

void procwatch_handle(procwatch_t *self, struct collect_ctx *ctx)
{
    struct epoll_event ev[32];

    if (!self || self->epfd < 0 || !ctx)
        return;
    int n = epoll_wait(self->epfd, ev, (int)(sizeof(ev) / sizeof(ev[0])), 0);
    for (int k = 0; k < n; k++) {
        uint64_t i = ev[k].data.u64;
        if (i >= self->n || self->w[i].pidfd < 0)
            continue;
        struct watch *w = &self->w[i];
        struct sig_label l = {"name", w->name};
        vg_log(VG_LOG_WARN, "processes: name=%s pid=%d exited", w->name, w->pid);
        release(self, w);
        collect_emit(ctx, "proc.up", 0, "bool", &l, 1);
    }
}

void procwatch_run(procwatch_t *self, struct collect_ctx *ctx)
{
    if (!self || !ctx || self->n == 0)
        return;
    struct found *found = calloc(self->n, sizeof(*found));
    int *results = calloc(self->n, sizeof(*results));
    if (!found || !results) {
        ctx->errors++;
        free(found);
        free(results);
        return;
    }
    for (size_t i = 0; i < self->n; i++) {
        struct watch *w = &self->w[i];
        if (w->how == BY_PIDFILE)
            results[i] = find_by_pidfile(self, w, &found[i]);
        else if (w->how == BY_UNIT)
            results[i] = find_by_unit(self, w, &found[i]);
        else
            results[i] = keep_comm(self, w, &found[i]);
        if (results[i] != 0)
            found[i].pid = 0;
    }
    find_by_comm(self, found, results);

    for (size_t i = 0; i < self->n; i++) {
        struct watch *w = &self->w[i];
        if (results[i] == 0) {
            if (found[i].pid != w->pid || found[i].stat.starttime != w->start)
                hold(self, i, &found[i]);
            emit(self, w, &found[i], ctx);
            continue;
        }
        if (w->pid != 0)
            vg_log(VG_LOG_WARN, "processes: name=%s pid=%d %s", w->name, w->pid,
                   results[i] == -ESRCH ? "is gone" : "no longer known (see the error above)");
        release(self, w);
        if (results[i] != -ESRCH)
            ctx->errors++;
        emit(self, w, NULL, ctx);
    }
    free(found);
    free(results);
}

/* ---- Finding one process now (the executor's signal action) ---------------------------- */

int procwatch_find_pid(procwatch_t *self, const char *name, int *ret_pid)
{
    struct found f = {0};
    size_t i;
    int r;

    if (!self || !name)
        return -EINVAL;
    for (i = 0; i < self->n && strcmp(self->w[i].name, name) != 0; i++) {
    }
    if (i == self->n)
        return -ENOENT;
    struct watch *w = &self->w[i];
    if (w->how == BY_PIDFILE) {
        r = find_by_pidfile(self, w, &f);
    } else if (w->how == BY_UNIT) {
        r = find_by_unit(self, w, &f);
    } else {
        int *results = malloc(self->n * sizeof(*results));
        struct found *found = calloc(self->n, sizeof(*found));
        if (!results || !found) {
            free(results);
            free(found);
            return -ENOMEM;
        }
        for (size_t k = 0; k < self->n; k++)
            results[k] = k == i ? -ESRCH : 0; /* one pass, for this watch only */
        if (self->proc_fd < 0)
            self->proc_fd = open(self->proc_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        find_by_comm(self, found, results);
        r = results[i];
        f = found[i];
        free(results);
        free(found);
    }
    if (r < 0)
        return r;
    *ret_pid = f.pid;
    return 0;
}

/* ---- The collector interface (collect.h) ----------------------------------------------------- */

static void collector_run(void *self, struct collect_ctx *ctx)
{
    procwatch_run(self, ctx);
}

static int collector_fd(const void *self)
{
    return procwatch_fd(self);
}

static void collector_on_readable(void *self, struct collect_ctx *ctx)
{
    procwatch_handle(self, ctx);
}

static void collector_destroy(void **self_p)
{
    procwatch_t *self = *self_p;
    procwatch_destroy(&self);
    *self_p = NULL;
}

struct collector procwatch_collector(procwatch_t **self_p, int64_t interval_ms)
{
    struct collector c = {
        .name = "processes",
        .interval_ms = interval_ms,
        .run = collector_run,
        .fd = collector_fd,
        .on_readable = collector_on_readable,
        .destroy = collector_destroy,
        .self = *self_p,
    };
    *self_p = NULL;
    return c;
}
