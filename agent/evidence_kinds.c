/* Evidence kinds: request arguments -> the collectors' and probes' writers (see .h). */
#include "evidence_kinds.h"

#include "host.h"
#include "netstat.h"
#include "proctable.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LOG_TAIL_DEFAULT_LINES 200
#define LOG_TAIL_MAX_LINES 1000000
#define FILE_READ_BUF (64 * 1024)

static int capture_netstat(void *userdata, const struct evidence_args *args,
                           const struct artifact_writer *out, char *err, size_t errlen)
{
    const struct evidence_sources *src = userdata;
    int r = evidence_args_check(args, vg_evidence_kind_args("netstat"), err, errlen);
    return r < 0 ? r
                 : netstat_write_table(src->proc_root, src->pods, src->max_bytes, out, err, errlen);
}

static int capture_processes(void *userdata, const struct evidence_args *args,
                             const struct artifact_writer *out, char *err, size_t errlen)
{
    const struct evidence_sources *src = userdata;
    int r = evidence_args_check(args, vg_evidence_kind_args("processes"), err, errlen);
    return r < 0 ? r : proctable_write(src->proc_root, src->pods, src->max_bytes, out, err, errlen);
}

static int capture_host(void *userdata, const struct evidence_args *args,
                        const struct artifact_writer *out, char *err, size_t errlen)
{
    const struct evidence_sources *src = userdata;
    int r = evidence_args_check(args, vg_evidence_kind_args("host"), err, errlen);
    return r < 0 ? r
                 : host_write_snapshot(src->proc_root, src->pods, src->max_bytes, out, err, errlen);
}

/* A decimal count argument within [1, max]; def when absent. */
static int count_arg(const struct evidence_args *args, const char *key, size_t def, size_t max,
                     size_t *ret, char *err, size_t errlen)
{
    const char *text = evidence_arg(args, key);
    char *end;

    *ret = def;
    if (!text)
        return 0;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-' || v == 0 || v > max) {
        snprintf(err, errlen, "%s: must be a number between 1 and %zu (got \"%.64s\")", key, max,
                 text);
        return -EINVAL;
    }
    *ret = (size_t)v;
    return 0;
}

static int capture_log_tail(void *userdata, const struct evidence_args *args,
                            const struct artifact_writer *out, char *err, size_t errlen)
{
    const struct evidence_sources *src = userdata;
    size_t lines = 0, bytes = 0;
    int r = evidence_args_check(args, vg_evidence_kind_args("log_tail"), err, errlen);

    if (r < 0)
        return r;
    if (!src->logs) {
        snprintf(err, errlen,
                 "no logs are configured on this node "
                 "(collectors.logs.files)");
        return -ENOENT;
    }
    if (evidence_arg(args, "lines") && evidence_arg(args, "bytes")) {
        snprintf(err, errlen, "give lines or bytes, not both");
        return -EINVAL;
    }
    r = count_arg(args, "bytes", 0, src->max_bytes, &bytes, err, errlen);
    if (r == 0)
        r = count_arg(args, "lines", bytes ? 0 : LOG_TAIL_DEFAULT_LINES, LOG_TAIL_MAX_LINES, &lines,
                      err, errlen);
    if (r < 0)
        return r;
    return logtail_tail(src->logs, evidence_arg(args, "name"), lines, bytes, out, err, errlen);
}

static int capture_probe(const struct evidence_sources *src, const char *kind,
                         const struct evidence_args *args, const struct artifact_writer *out,
                         char *err, size_t errlen)
{
    int r = evidence_args_check(args, vg_evidence_kind_args(kind), err, errlen);

    if (r < 0)
        return r;
    if (!src->probes) {
        snprintf(err, errlen, "no %s targets are configured on this node", kind);
        return -ENOENT;
    }
    return probes_evidence(src->probes, kind, evidence_arg(args, "target"), out, err, errlen);
}

static int capture_postgres(void *userdata, const struct evidence_args *args,
                            const struct artifact_writer *out, char *err, size_t errlen)
{
    return capture_probe(userdata, "postgres", args, out, err, errlen);
}

static int capture_redis(void *userdata, const struct evidence_args *args,
                         const struct artifact_writer *out, char *err, size_t errlen)
{
    return capture_probe(userdata, "redis", args, out, err, errlen);
}

static int capture_kubernetes(void *userdata, const struct evidence_args *args,
                              const struct artifact_writer *out, char *err, size_t errlen)
{
    return capture_probe(userdata, "kubernetes", args, out, err, errlen);
}

/* The kubernetes probe's kubectl steps: every argument but target goes to the module, which
 * checks the values (names, line counts) before any reaches a URL. */
static int capture_k8s(const struct evidence_sources *src, const char *kind,
                       const struct evidence_args *args, const struct artifact_writer *out,
                       char *err, size_t errlen)
{
    struct probe_label labels[EVIDENCE_MAX_ARGS];
    size_t n = 0;
    int r = evidence_args_check(args, vg_evidence_kind_args(kind), err, errlen);

    if (r < 0)
        return r;
    if (!src->probes) {
        snprintf(err, errlen, "no kubernetes targets are configured on this node");
        return -ENOENT;
    }
    for (size_t i = 0; i < args->count && n < EVIDENCE_MAX_ARGS; i++) {
        if (strcmp(args->key[i], "target") != 0)
            labels[n++] = (struct probe_label){args->key[i], args->value[i]};
    }
    return probes_evidence_kind(src->probes, "kubernetes", kind, labels, n,
                                evidence_arg(args, "target"), out, err, errlen);
}

#define K8S_CAPTURE(name)                                                                          \
    static int capture_##name(void *userdata, const struct evidence_args *args,                    \
                              const struct artifact_writer *out, char *err, size_t errlen)         \
    {                                                                                              \
        return capture_k8s(userdata, #name, args, out, err, errlen);                               \
    }
K8S_CAPTURE(k8s_pods)
K8S_CAPTURE(k8s_describe)
K8S_CAPTURE(k8s_logs)
K8S_CAPTURE(k8s_ingress)
K8S_CAPTURE(k8s_config)
K8S_CAPTURE(k8s_top)

static bool without_openat2; /* evidence_kinds_test_without_openat2 */

void evidence_kinds_test_without_openat2(bool on)
{
    without_openat2 = on;
}

/* Opening a device node can have effects (a watchdog starts, a tape rewinds) and a FIFO or
 * socket is no file to collect: only regular files are opened, and checked again once open. */
static const char *type_name(mode_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFDIR:
        return "a directory";
    case S_IFCHR:
        return "a character device";
    case S_IFBLK:
        return "a block device";
    case S_IFIFO:
        return "a FIFO";
    case S_IFSOCK:
        return "a socket";
    case S_IFLNK:
        return "a symlink";
    default:
        return "a special file";
    }
}

/* With openat2: RESOLVE_BENEATH resolves rel inside dirfd in the kernel, so "..", absolute
 * symlinks and symlinks pointing out of dir fail with EXDEV, with no window between a check
 * and the open. Symlinks that stay inside are followed. An O_PATH look first, so that nothing
 * but a regular file is ever opened. */
static int open_with_openat2(int dirfd, const char *rel, mode_t *ret_refused)
{
    struct open_how how = {
        .flags = O_PATH | O_CLOEXEC,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    struct stat st;
    int fd = (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
    if (fd < 0)
        return -errno;
    int r = fstat(fd, &st) < 0 ? -errno : 0;
    close(fd);
    if (r < 0)
        return r;
    if (!S_ISREG(st.st_mode)) {
        *ret_refused = st.st_mode & S_IFMT;
        return -EPERM;
    }
    how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    fd = (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
    return fd < 0 ? -errno : fd;
}

/* Without openat2 (kernels before 5.6): walk rel from dirfd one component at a time, each
 * directory opened with O_NOFOLLOW | O_DIRECTORY and the last component with O_NOFOLLOW, so a
 * symlink anywhere is refused (ELOOP), even one that stays inside dir, and ".." is refused
 * (EXDEV): nothing resolved can be swapped between a check and the open. */
static int open_by_walk(int dirfd, const char *rel, mode_t *ret_refused)
{
    char copy[PATH_MAX];
    size_t len = strlen(rel);
    if (len >= sizeof(copy))
        return -ENAMETOOLONG;
    if (len == 0 || rel[len - 1] == '/')
        return -ENOTDIR;
    memcpy(copy, rel, len + 1);

    int cur = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
    if (cur < 0)
        return -errno;
    char *name = copy;
    int r;
    for (;;) {
        char *slash = strchr(name, '/');
        if (slash)
            *slash = '\0';
        if (strcmp(name, "..") == 0) {
            r = -EXDEV;
            goto err_close_cur;
        }
        if (name[0] == '\0' || strcmp(name, ".") == 0) {
            if (!slash) {
                r = -EISDIR;
                goto err_close_cur;
            }
            name = slash + 1;
            continue;
        }
        struct stat st;
        if (fstatat(cur, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            r = -errno;
            goto err_close_cur;
        }
        if (S_ISLNK(st.st_mode)) {
            r = -ELOOP;
            goto err_close_cur;
        }
        if (!slash)
            break;
        int next = openat(cur, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0) {
            r = -errno;
            goto err_close_cur;
        }
        close(cur);
        cur = next;
        name = slash + 1;
    }

    /* The last component: refuse what is not a regular file before opening it; the caller
     * checks the open file again, which settles a swap in between. */
    struct stat st;
    if (fstatat(cur, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        r = -errno;
        goto err_close_cur;
    }
    if (!S_ISREG(st.st_mode)) {
        *ret_refused = st.st_mode & S_IFMT;
        r = -EPERM;
        goto err_close_cur;
    }
    r = openat(cur, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
    if (r < 0)
        r = -errno;
err_close_cur:
    close(cur);
    return r;
}

/*
 * Opens rel read-only if it lies under dir and is a regular file: a descriptor, -EXDEV when
 * it resolves outside dir, -ELOOP for a symlink that is not followed, -EPERM with
 * *ret_refused (0 on entry) set to its type (S_IFCHR, S_IFIFO...) when it is not a regular
 * file, or another negative errno.
 */
static int open_beneath(const char *dir, const char *rel, mode_t *ret_refused)
{
    int dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return -errno;
    int fd = without_openat2 ? -ENOSYS : open_with_openat2(dirfd, rel, ret_refused);
    /* No openat2: ENOSYS from the kernel, or EPERM from a seccomp filter that predates it (as
     * older container runtimes' default profiles do). */
    if (fd == -ENOSYS || (fd == -EPERM && !*ret_refused))
        fd = open_by_walk(dirfd, rel, ret_refused);
    close(dirfd);
    if (fd < 0)
        return fd;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int r = -errno;
        close(fd);
        return r;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        *ret_refused = st.st_mode & S_IFMT;
        return -EPERM;
    }
    return fd;
}

static int copy_fd(int fd, const char *what, const struct artifact_writer *out, char *err,
                   size_t errlen);

static int capture_file(void *userdata, const struct evidence_args *args,
                        const struct artifact_writer *out, char *err, size_t errlen)
{
    const struct evidence_sources *src = userdata;
    const char *path = evidence_arg(args, "path");
    const char *dir = NULL;
    int r = evidence_args_check(args, vg_evidence_kind_args("file"), err, errlen);

    if (r < 0)
        return r;
    if (!path || path[0] != '/') {
        snprintf(err, errlen, "needs path=/ABSOLUTE/PATH");
        return -EINVAL;
    }
    if (!src->allow_dirs || src->allow_dirs->count == 0) {
        snprintf(err, errlen,
                 "refused, no directory is allowed on this node "
                 "(evidence.allow_dirs is empty)");
        return -EPERM;
    }
    for (size_t i = 0; i < src->allow_dirs->count && !dir; i++) {
        const char *d = src->allow_dirs->items[i];
        size_t n = strlen(d);
        while (n > 1 && d[n - 1] == '/')
            n--;
        if (strncmp(path, d, n) == 0 && path[n] == '/' && path[n + 1])
            dir = d;
    }
    if (!dir) {
        snprintf(err, errlen, "refused, %.512s is outside the allowed directories", path);
        return -EPERM;
    }
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    mode_t refused = 0;
    int fd = open_beneath(dir, path + n + 1, &refused);
    if (fd == -EXDEV) {
        snprintf(err, errlen, "refused, %.512s resolves outside %s", path, dir);
        return -EPERM;
    }
    if (fd == -ELOOP) {
        snprintf(err, errlen, "refused, %.512s goes through a symlink that is not followed", path);
        return -EPERM;
    }
    if (fd == -EPERM && refused) {
        snprintf(err, errlen, "refused, %.512s is %s, not a regular file", path,
                 type_name(refused));
        return -EPERM;
    }
    if (fd < 0) {
        snprintf(err, errlen, "%.512s: %s", path, strerror(-fd));
        return fd;
    }
    return copy_fd(fd, path, out, err, errlen);
}

/* Copies fd to out, then closes it. */
static int copy_fd(int fd, const char *what, const struct artifact_writer *out, char *err,
                   size_t errlen)
{
    char *buf = malloc(FILE_READ_BUF);
    int r = 0;
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    for (;;) {
        ssize_t got = read(fd, buf, FILE_READ_BUF);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            r = -errno;
            snprintf(err, errlen, "%.512s: %s", what, strerror(errno));
            break;
        }
        if (got == 0)
            break;
        r = out->write(out->w, buf, (size_t)got);
        if (r < 0)
            break;
    }
    free(buf);
    close(fd);
    return r;
}

static int capture_command_output(void *userdata, const struct evidence_args *args,
                                  const struct artifact_writer *out, char *err, size_t errlen)
{
    const struct evidence_sources *src = userdata;
    int r = evidence_args_check(args, vg_evidence_kind_args("command_output"), err, errlen);
    if (r < 0)
        return r;
    if (!src->outputs) {
        snprintf(err, errlen, "this agent runs no commands (no executor)");
        return -ENOENT;
    }
    const char *id = evidence_arg(args, "request");
    int fd = cmd_output_open(src->outputs, id ? id : "", err, errlen);
    if (fd < 0)
        return fd;
    return copy_fd(fd, id, out, err, errlen);
}

/* The recorder's ring, frozen (flight_freeze) while snapshots go on. */
static int capture_flight(void *userdata, const struct evidence_args *args,
                          const struct artifact_writer *out, char *err, size_t errlen)
{
    const struct evidence_sources *src = userdata;
    int r = evidence_args_check(args, vg_evidence_kind_args("flight"), err, errlen);
    if (r < 0)
        return r;
    if (!src->flight) {
        snprintf(err, errlen, "the flight recorder is off on this node (flight_recorder.enabled)");
        return -ENOENT;
    }
    return flight_write(src->flight, src->max_bytes, out, err, errlen);
}

size_t evidence_kinds_fill(struct evidence_kind *kinds, struct evidence_sources *src)
{
    const struct evidence_kind all[] = {
        {"netstat", capture_netstat, src},
        {"processes", capture_processes, src},
        {"host", capture_host, src},
        {"log_tail", capture_log_tail, src},
        {"postgres", capture_postgres, src},
        {"redis", capture_redis, src},
        {"kubernetes", capture_kubernetes, src},
        {"k8s_pods", capture_k8s_pods, src},
        {"k8s_describe", capture_k8s_describe, src},
        {"k8s_logs", capture_k8s_logs, src},
        {"k8s_ingress", capture_k8s_ingress, src},
        {"k8s_config", capture_k8s_config, src},
        {"k8s_top", capture_k8s_top, src},
        {"file", capture_file, src},
        {"command_output", capture_command_output, src},
        {"flight", capture_flight, src},
    };
    size_t n = sizeof(all) / sizeof(all[0]);

    _Static_assert(sizeof(all) / sizeof(all[0]) <= EVIDENCE_KINDS_MAX, "EVIDENCE_KINDS_MAX");
    memcpy(kinds, all, sizeof(all));
    return n;
}
