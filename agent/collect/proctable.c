/*
 * The process table evidence and the bounded text output of agent/collect's evidence writers:
 * the contract is in proctable.h.
 */
#include "proctable.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "timeutil.h"

#define TRUNCATED_FMT "# truncated: this artifact reached its cap of %zu bytes\n"
#define MAX_PIDS (4u << 20)     /* PID_MAX_LIMIT */
#define STAT_BUF 4096           /* <pid>/stat: 52 numbers and a comm of at most 64 bytes */
#define STATUS_HEAD 4096        /* <pid>/status: Uid is the ninth line */
#define CGROUP_BUF (16 * 1024)  /* <pid>/cgroup: one line per v1 hierarchy */
#define CMDLINE_READ 4096       /* the command line's first bytes; the rest is cut */
#define CMDLINE_TEXT 4600       /* escaped form of CMDLINE_READ bytes, bounded */
#define USER_CACHE 64           /* distinct uids remembered during one table */
#define PWBUF_MAX (1024 * 1024) /* getpwuid_r's buffer grows to this on ERANGE */

/* ---- Bounded text artifacts ------------------------------------------------------------- */

void artifact_text_init(struct artifact_text *t, const struct artifact_writer *out,
                        size_t max_bytes)
{
    t->out = out;
    t->max_bytes = max_bytes;
    t->used = 0;
    t->status = 0;
    int n = snprintf(NULL, 0, TRUNCATED_FMT, max_bytes);
    t->reserve = n > 0 ? (size_t)n : 0;
    t->line[0] = '\0';
}

static int put(struct artifact_text *t, const char *data, size_t len)
{
    int r = t->out->write(t->out->w, data, len);
    if (r < 0)
        return r;
    t->used += len;
    return 0;
}

static int write_piece(struct artifact_text *t, const char *data, size_t len)
{
    if (t->status != 0)
        return t->status;
    if (len <= t->max_bytes && t->used + t->reserve <= t->max_bytes - len) {
        int r = put(t, data, len);
        if (r < 0)
            t->status = r;
        return t->status;
    }
    /* It does not fit with the truncation line after it: the truncation line ends it. */
    t->status = -EFBIG;
    if (t->reserve > 0 && t->used + t->reserve <= t->max_bytes) {
        char marker[96];
        int n = snprintf(marker, sizeof(marker), TRUNCATED_FMT, t->max_bytes);
        if (n > 0 && (size_t)n < sizeof(marker)) {
            int r = put(t, marker, (size_t)n);
            if (r < 0)
                t->status = r;
        }
    }
    return t->status;
}

int artifact_text_printf(struct artifact_text *t, const char *fmt, ...)
{
    if (t->status != 0)
        return t->status;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->line, sizeof(t->line), fmt, ap);
    va_end(ap);
    if (n < 0)
        return t->status; /* an encoding error: nothing to write */
    size_t len = (size_t)n;
    if (len >= sizeof(t->line)) {
        len = sizeof(t->line) - 1;
        memcpy(t->line + len - 4, "...\n", 4);
    }
    return write_piece(t, t->line, len);
}

int artifact_text_finish(const struct artifact_text *t, const char *what, char *err, size_t errlen)
{
    if (t->status == -EFBIG)
        snprintf(err, errlen, "%s: output reached its cap of %zu bytes and was cut", what,
                 t->max_bytes);
    else if (t->status < 0)
        snprintf(err, errlen, "%s: writing the artifact failed: %s", what, strerror(-t->status));
    return t->status;
}

void artifact_time_text(int64_t unix_seconds, char *buf, size_t cap)
{
    struct tm tm;
    time_t when = (time_t)unix_seconds;
    if (!gmtime_r(&when, &tm) || strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, cap, "?");
}

/* ---- One process ------------------------------------------------------------------------ */

static int int_cmp(const void *pa, const void *pb)
{
    int a = *(const int *)pa, b = *(const int *)pb;
    return (a > b) - (a < b);
}

int proctable_pids(int proc_fd, int **ret_pids, size_t *ret_n)
{
    int dir_fd = openat(proc_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0)
        return -errno;
    DIR *dir = fdopendir(dir_fd);
    if (!dir) {
        int r = -errno;
        close(dir_fd);
        return r;
    }
    int *pids = NULL;
    size_t n = 0, cap = 0;
    int r = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        int pid;
        if (!procfs_parse_id(de->d_name, &pid) || pid == 0)
            continue;
        if (n == cap) {
            if (cap >= MAX_PIDS)
                break; /* more than the kernel can have: not a real /proc */
            size_t grown = cap ? cap * 2 : 256;
            int *more = realloc(pids, grown * sizeof(*pids));
            if (!more) {
                r = -ENOMEM;
                break;
            }
            pids = more;
            cap = grown;
        }
        pids[n++] = pid;
    }
    closedir(dir);
    if (r < 0) {
        free(pids);
        return r;
    }
    if (n > 0)
        qsort(pids, n, sizeof(*pids), int_cmp);
    *ret_pids = pids;
    *ret_n = n;
    return 0;
}

/* The first bytes of a file (up to cap - 1), NUL-terminated. -errno of open or read. */
static int read_head(int dir_fd, const char *path, char *buf, size_t cap, size_t *ret_len)
{
    int fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -errno;
    size_t fill = 0;
    while (fill < cap - 1) {
        ssize_t n = read(fd, buf + fill, cap - 1 - fill);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int r = -errno;
            close(fd);
            return r;
        }
        if (n == 0)
            break;
        fill += (size_t)n;
    }
    close(fd);
    buf[fill] = '\0';
    *ret_len = fill;
    return 0;
}

int proctable_read(int proc_fd, int pid, struct proctable_proc *ret)
{
    char path[48], buf[STAT_BUF];
    size_t len;
    struct procfs_pid_stat st;

    snprintf(path, sizeof(path), "%d/stat", pid);
    int r = procfs_read_at(proc_fd, path, buf, sizeof(buf), &len);
    if (r == -EFBIG)
        return -EINVAL;
    if (r < 0)
        return r;
    if (len == 0)
        return -ESRCH; /* an exiting process's stat can read empty */
    r = procfs_parse_pid_stat(buf, len, &st);
    if (r < 0)
        return r;

    long page = sysconf(_SC_PAGESIZE);
    struct proctable_proc p = {
        .pid = pid,
        .ppid = st.ppid,
        .state = st.state,
        .threads = st.num_threads,
        .rss_kib = st.rss_pages * (uint64_t)(page > 0 ? page : 4096) / 1024,
        .cpu_ticks = st.utime + st.stime,
        .starttime = st.starttime,
    };
    snprintf(p.comm, sizeof(p.comm), "%s", st.comm);

    snprintf(path, sizeof(path), "%d/status", pid);
    if (read_head(proc_fd, path, buf, STATUS_HEAD, &len) == 0 &&
        procfs_parse_pid_status_uid(buf, len, &p.uid) == 0)
        p.have_uid = true;
    *ret = p;
    return 0;
}

/* Appends raw bytes as printable text at *used; false when out (cap, NUL included) is full. */
static bool escape_into(char *out, size_t cap, size_t *used, const unsigned char *raw, size_t len,
                        const char *also)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = raw[i];
        char piece[4];
        size_t n = 1;
        if (ch >= 0x20 && ch <= 0x7e && ch != '\\' && !(also && strchr(also, ch))) {
            piece[0] = (char)ch;
        } else {
            piece[0] = '\\';
            piece[1] = 'x';
            piece[2] = hex[ch >> 4];
            piece[3] = hex[ch & 15];
            n = 4;
        }
        if (*used + n >= cap)
            return false;
        memcpy(out + *used, piece, n);
        *used += n;
        out[*used] = '\0';
    }
    return true;
}

bool artifact_escape(const char *raw, size_t len, const char *also, char *out, size_t cap)
{
    size_t used = 0;
    if (cap == 0)
        return false;
    out[0] = '\0';
    return escape_into(out, cap, &used, (const unsigned char *)raw, len, also);
}

void proctable_cmdline(int proc_fd, int pid, const char *comm, char *buf, size_t cap)
{
    char path[48];
    unsigned char raw[CMDLINE_READ + 1];
    size_t len = 0, used = 0;

    if (cap < 8) {
        if (cap > 0)
            buf[0] = '\0';
        return;
    }
    buf[0] = '\0';
    snprintf(path, sizeof(path), "%d/cmdline", pid);
    if (read_head(proc_fd, path, (char *)raw, sizeof(raw), &len) < 0)
        len = 0;
    bool cut = len == CMDLINE_READ; /* possibly more: say so */
    while (len > 0 && raw[len - 1] == '\0')
        len--;
    if (len == 0) {
        buf[used++] = '[';
        bool fits =
            escape_into(buf, cap - 1, &used, (const unsigned char *)comm, strlen(comm), NULL);
        if (fits) {
            buf[used++] = ']';
            buf[used] = '\0';
            return;
        }
        cut = true;
    } else {
        for (size_t i = 0; i < len; i++) {
            if (raw[i] == '\0')
                raw[i] = ' ';
        }
        cut |= !escape_into(buf, cap - 3, &used, raw, len, NULL);
    }
    if (cut) {
        if (used > cap - 4)
            used = cap - 4;
        memcpy(buf + used, "...", 4);
    }
}

void proctable_user_name(uid_t uid, char *buf, size_t cap)
{
    long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
    size_t size = hint > 0 ? (size_t)hint : 16384;
    if (cap > 0)
        buf[0] = '\0';
    for (;;) {
        char *pwbuf = malloc(size);
        if (!pwbuf)
            return;
        struct passwd pw, *found = NULL;
        int r = getpwuid_r(uid, &pw, pwbuf, size, &found);
        if (r == 0 && found && found->pw_name)
            snprintf(buf, cap, "%s", found->pw_name);
        free(pwbuf);
        if (r != ERANGE || size >= PWBUF_MAX)
            return;
        size *= 2;
    }
}

/* ---- The evidence ----------------------------------------------------------------------- */

struct user_entry {
    uid_t uid;
    char name[33]; /* useradd's limit is 32 */
};

struct table_ctx {
    struct artifact_text text;
    int proc_fd;
    podmap_t *pods; /* NULL: pods are not named */
    int64_t now_ms; /* monotonic, for podmap's rescan bound */
    int64_t btime; /* boot time, Unix seconds; 0 = unknown */
    long tck;      /* clock ticks per second */
    struct user_entry users[USER_CACHE];
    size_t nusers;
    char cgroup[CGROUP_BUF];
    char cmdline[CMDLINE_TEXT];
    char k8s[PODMAP_NAMESPACE_MAX + PODMAP_POD_MAX + PODMAP_CONTAINER_MAX + 4];
    char user[64];
};

/* "1000(alice)", "1000" without a name here, "?" without a uid. */
static void user_text(struct table_ctx *c, const struct proctable_proc *p)
{
    if (!p->have_uid) {
        snprintf(c->user, sizeof(c->user), "?");
        return;
    }
    const char *name = NULL;
    for (size_t i = 0; i < c->nusers && !name; i++) {
        if (c->users[i].uid == p->uid)
            name = c->users[i].name;
    }
    char looked_up[sizeof(c->users[0].name)];
    if (!name) {
        proctable_user_name(p->uid, looked_up, sizeof(looked_up));
        name = looked_up;
        if (c->nusers < USER_CACHE) {
            c->users[c->nusers].uid = p->uid;
            memcpy(c->users[c->nusers].name, looked_up, sizeof(looked_up));
            c->nusers++;
        }
    }
    if (name[0])
        snprintf(c->user, sizeof(c->user), "%u(%s)", (unsigned)p->uid, name);
    else
        snprintf(c->user, sizeof(c->user), "%u", (unsigned)p->uid);
}

/* "btime 1718000000" in <proc_root>/stat. */
static int64_t boot_time(int proc_fd)
{
    char *buf = malloc(64 * 1024);
    size_t len;
    int64_t btime = 0;
    if (!buf)
        return 0;
    if (procfs_read_at(proc_fd, "stat", buf, 64 * 1024, &len) == 0) {
        const char *at = strstr(buf, "\nbtime ");
        long long v;
        if (at && sscanf(at + 7, "%lld", &v) == 1 && v > 0)
            btime = v;
    }
    free(buf);
    return btime;
}

/* "-", or "<pod uid>/<container id>" with "-" for the one that is missing. */
static void ids_text(const struct procfs_cgroup_ids *ids, char *buf, size_t cap)
{
    if (!ids->pod_uid[0] && !ids->container_id[0])
        snprintf(buf, cap, "-");
    else
        snprintf(buf, cap, "%s/%s", ids->pod_uid[0] ? ids->pod_uid : "-",
                 ids->container_id[0] ? ids->container_id : "-");
}

static void write_process(struct table_ctx *c, const struct proctable_proc *p)
{
    struct procfs_cgroup_ids ids;
    char path[48], started[32], where[PROCFS_POD_UID_MAX + PROCFS_CONTAINER_ID_MAX + 2];
    size_t len;

    snprintf(path, sizeof(path), "%d/cgroup", p->pid);
    if (procfs_read_at(c->proc_fd, path, c->cgroup, sizeof(c->cgroup), &len) < 0 ||
        procfs_parse_cgroup(c->cgroup, len, &ids) < 0)
        memset(&ids, 0, sizeof(ids));
    ids_text(&ids, where, sizeof(where));
    struct pod_identity pod;
    if (c->pods && podmap_resolve(c->pods, &ids, c->now_ms, &pod) == 0)
        podmap_identity_text(&pod, c->k8s, sizeof(c->k8s));
    else
        snprintf(c->k8s, sizeof(c->k8s), "-");
    user_text(c, p);
    proctable_cmdline(c->proc_fd, p->pid, p->comm, c->cmdline, sizeof(c->cmdline));
    if (c->btime > 0)
        artifact_time_text(c->btime + (int64_t)(p->starttime / (uint64_t)c->tck), started,
                           sizeof(started));
    else
        snprintf(started, sizeof(started), "?");
    uint64_t tck = (uint64_t)c->tck;
    artifact_text_printf(
        &c->text, "%-7d %-7d %-16s %c %4u %10llu %8llu.%02llu %-20s %-13s %-23s %s\n", p->pid,
        p->ppid, c->user, p->state, p->threads, (unsigned long long)p->rss_kib,
        (unsigned long long)(p->cpu_ticks / tck),
        (unsigned long long)(p->cpu_ticks % tck * 100 / tck), started, where, c->k8s, c->cmdline);
}

int proctable_write(const char *proc_root, podmap_t *pods, size_t max_bytes,
                    const struct artifact_writer *out, char *err, size_t errlen)
{
    const char *root = proc_root ? proc_root : "/proc";
    int *pids = NULL;
    size_t npids = 0, listed = 0, vanished = 0, unreadable = 0;
    char now[32];

    if (!out || !out->write) {
        snprintf(err, errlen, "processes: no artifact writer");
        return -EINVAL;
    }
    struct table_ctx *c = malloc(sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "processes: out of memory");
        return -ENOMEM;
    }
    c->nusers = 0;
    c->pods = pods;
    c->now_ms = vg_mono_ms();
    c->tck = sysconf(_SC_CLK_TCK);
    if (c->tck <= 0)
        c->tck = 100;
    artifact_text_init(&c->text, out, max_bytes);
    c->proc_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int r = c->proc_fd < 0 ? -errno : proctable_pids(c->proc_fd, &pids, &npids);
    if (r < 0) {
        snprintf(err, errlen, "processes: cannot list %s: %s", root, strerror(-r));
        goto err_close;
    }
    c->btime = boot_time(c->proc_fd);

    artifact_time_text(vg_wall_ms() / 1000, now, sizeof(now));
    artifact_text_printf(&c->text, "# processes of %s at %s: %zu pids\n", root, now, npids);
    artifact_text_printf(
        &c->text,
        "# USER: uid(name in this agent's user database); S: R running, S sleeping, D waiting "
        "(usually I/O), Z zombie, T stopped, I idle; THR: threads; RSS_KIB: resident memory; "
        "CPU_S: user + system seconds since start; STARTED: UTC; POD/CONTAINER: the Kubernetes "
        "pod uid and container id from the cgroup (\"-\": none); NAMESPACE/POD/CONTAINER: their "
        "names, from /var/log/pods (\"-\": not a pod, or not named there; a container \"-\": "
        "the pod's sandbox or not told); COMMAND: arguments separated by "
        "spaces, other bytes as \\xHH, cut with \"...\" after %d bytes, [comm] when there is "
        "none\n",
        CMDLINE_READ);
    artifact_text_printf(&c->text, "%-7s %-7s %-16s %c %4s %10s %11s %-20s %-13s %-23s %s\n", "PID",
                         "PPID", "USER", 'S', "THR", "RSS_KIB", "CPU_S", "STARTED", "POD/CONTAINER",
                         "NAMESPACE/POD/CONTAINER", "COMMAND");
    for (size_t i = 0; i < npids && c->text.status == 0; i++) {
        struct proctable_proc p;
        r = proctable_read(c->proc_fd, pids[i], &p);
        if (r == -ENOENT || r == -ESRCH) {
            vanished++; /* exited since the directory was listed */
            continue;
        }
        if (r < 0) {
            unreadable++;
            continue;
        }
        write_process(c, &p);
        listed++;
    }
    artifact_text_printf(&c->text,
                         "# %zu processes listed; %zu exited while being read; %zu unreadable\n",
                         listed, vanished, unreadable);
    r = artifact_text_finish(&c->text, "processes", err, errlen);

err_close:
    if (c->proc_fd >= 0)
        close(c->proc_fd);
    free(pids);
    free(c);
    return r;
}
