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
    return r < 0 ? r : netstat_write_table(src->proc_root, src->max_bytes, out, err, errlen);
}

static int capture_processes(void *userdata, const struct evidence_args *args,
                             const struct artifact_writer *out, char *err, size_t errlen)
{
    const struct evidence_sources *src = userdata;
    int r = evidence_args_check(args, vg_evidence_kind_args("processes"), err, errlen);
    return r < 0 ? r : proctable_write(src->proc_root, src->max_bytes, out, err, errlen);
}

static int capture_host(void *userdata, const struct evidence_args *args,
                        const struct artifact_writer *out, char *err, size_t errlen)
{
    const struct evidence_sources *src = userdata;
    int r = evidence_args_check(args, vg_evidence_kind_args("host"), err, errlen);
    return r < 0 ? r : host_write_snapshot(src->proc_root, src->max_bytes, out, err, errlen);
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

/*
 * Opens path read-only if it lies under dir. openat2(RESOLVE_BENEATH) resolves the rest of
 * the path inside dir in the kernel, so "..", absolute symlinks and symlinks pointing out of
 * dir fail with EXDEV, with no window between a check and the open.
 */
static int open_beneath(const char *dir, const char *rel)
{
    struct open_how how = {
        .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    int dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    int fd;

    if (dirfd < 0)
        return -errno;
    fd = (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
    if (fd < 0 && errno == ENOSYS) {
        /* Kernels before 5.6: resolve, check the prefix, then refuse any symlink at the
         * last component. */
        char realdir[PATH_MAX];
        fd = -1;
        if (realpath(dir, realdir) && fstatat(dirfd, rel, &(struct stat){0}, 0) == 0) {
            char full[PATH_MAX * 2], real[PATH_MAX];
            snprintf(full, sizeof(full), "%s/%s", dir, rel);
            if (!realpath(full, real))
                errno = ENOENT;
            else if (strncmp(real, realdir, strlen(realdir)) != 0 || real[strlen(realdir)] != '/')
                errno = EXDEV;
            else
                fd = open(real, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
        }
    }
    int saved = errno;
    close(dirfd);
    return fd < 0 ? -saved : fd;
}

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
    int fd = open_beneath(dir, path + n + 1);
    if (fd == -EXDEV || fd == -ELOOP) {
        snprintf(err, errlen, "refused, %.512s resolves outside %s", path, dir);
        return -EPERM;
    }
    if (fd < 0) {
        snprintf(err, errlen, "%.512s: %s", path, strerror(-fd));
        return fd;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "refused, %.512s is not a regular file", path);
        close(fd);
        return -EPERM;
    }
    char *buf = malloc(FILE_READ_BUF);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    r = 0;
    for (;;) {
        ssize_t got = read(fd, buf, FILE_READ_BUF);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            r = -errno;
            snprintf(err, errlen, "%.512s: %s", path, strerror(errno));
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

size_t evidence_kinds_fill(struct evidence_kind *kinds, struct evidence_sources *src)
{
    const struct evidence_kind all[] = {
        {"netstat", capture_netstat, src},   {"processes", capture_processes, src},
        {"host", capture_host, src},         {"log_tail", capture_log_tail, src},
        {"postgres", capture_postgres, src}, {"redis", capture_redis, src},
        {"file", capture_file, src},
    };
    size_t n = sizeof(all) / sizeof(all[0]);

    memcpy(kinds, all, sizeof(all));
    return n;
}
