/* Command outputs kept for the vault: the contract is in cmd_output.h. */
#include "cmd_output.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "vigil.pb-c.h"
#include "wire.h"

struct cmd_output {
    char *dir;
    int dir_fd;
    /* The output being written: its request id, the .part file and the next offset. */
    char writing[VG_MAX_COMMAND_ID_LEN + 1];
    int part_fd;
    uint64_t next_offset;
};

bool cmd_output_id_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > VG_MAX_COMMAND_ID_LEN || id[0] == '.' ||
        (n > 5 && strcmp(id + n - 5, ".part") == 0))
        return false;
    for (const char *p = id; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

cmd_output_t *cmd_output_new(const char *dir, char *err, size_t errlen)
{
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return NULL;
    }
    cmd_output_t *self = calloc(1, sizeof(*self));
    if (!self || !(self->dir = strdup(dir))) {
        free(self);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->part_fd = -1;
    self->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (self->dir_fd < 0) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        cmd_output_destroy(&self);
        return NULL;
    }
    return self;
}

static void drop_part(cmd_output_t *self)
{
    char part[VG_MAX_COMMAND_ID_LEN + 8];
    if (self->part_fd >= 0) {
        close(self->part_fd);
        snprintf(part, sizeof(part), "%s.part", self->writing);
        unlinkat(self->dir_fd, part, 0);
    }
    self->part_fd = -1;
    self->writing[0] = '\0';
    self->next_offset = 0;
}

void cmd_output_destroy(cmd_output_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cmd_output_t *self = *self_p;
    if (self->dir_fd >= 0) {
        drop_part(self);
        close(self->dir_fd);
    }
    free(self->dir);
    free(self);
    *self_p = NULL;
}

struct kept {
    char name[VG_MAX_COMMAND_ID_LEN + 1];
    struct timespec mtime;
};

static int by_age(const void *a, const void *b)
{
    const struct timespec *x = &((const struct kept *)a)->mtime;
    const struct timespec *y = &((const struct kept *)b)->mtime;
    if (x->tv_sec != y->tv_sec)
        return x->tv_sec < y->tv_sec ? -1 : 1;
    return x->tv_nsec < y->tv_nsec ? -1 : x->tv_nsec > y->tv_nsec;
}

/* Removes the oldest complete outputs beyond CMD_OUTPUT_KEEP. */
static void prune(cmd_output_t *self)
{
    int fd = dup(self->dir_fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    rewinddir(d);
    struct kept *all = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        struct stat st;
        size_t len = strlen(e->d_name);
        bool part = len > 5 && strcmp(e->d_name + len - 5, ".part") == 0;
        if (part || !cmd_output_id_ok(e->d_name))
            continue;
        if (fstatat(self->dir_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            size_t want = cap ? cap * 2 : 128;
            struct kept *more = realloc(all, want * sizeof(*all));
            if (!more)
                break;
            all = more;
            cap = want;
        }
        snprintf(all[n].name, sizeof(all[n].name), "%.64s", e->d_name); /* an id: <= 64 */
        all[n].mtime = st.st_mtim;
        n++;
    }
    closedir(d);
    if (n > CMD_OUTPUT_KEEP) {
        qsort(all, n, sizeof(*all), by_age);
        for (size_t i = 0; i < n - CMD_OUTPUT_KEEP; i++)
            unlinkat(self->dir_fd, all[i].name, 0);
    }
    free(all);
}

static int write_all(int fd, const uint8_t *data, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, data, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        data += w;
        len -= (size_t)w;
    }
    return 0;
}

int cmd_output_take(cmd_output_t *self, const uint8_t *data, size_t len)
{
    Vigil__CommandOutput *out = vigil__command_output__unpack(NULL, len, data);
    char part[VG_MAX_COMMAND_ID_LEN + 8];
    int r = 0;

    if (!out || !cmd_output_id_ok(out->request_id)) {
        vg_log(VG_LOG_ERROR, "executor sent a command output that is not one: dropped");
        vigil__command_output__free_unpacked(out, NULL);
        return -EPROTO;
    }
    if (out->offset == 0) {
        drop_part(self); /* an output the executor never finished: not kept */
        snprintf(self->writing, sizeof(self->writing), "%s", out->request_id);
        snprintf(part, sizeof(part), "%s.part", out->request_id);
        self->part_fd =
            openat(self->dir_fd, part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (self->part_fd < 0) {
            r = -errno;
            vg_log(VG_LOG_ERROR, "command output request=%s not kept: %s/%s: %s", out->request_id,
                   self->dir, part, strerror(-r));
            self->writing[0] = '\0';
            goto done;
        }
    } else if (self->part_fd < 0 || strcmp(self->writing, out->request_id) != 0 ||
               out->offset != self->next_offset) {
        /* Ours was not kept (a failed open) or the executor broke its order: ignore the rest. */
        r = -EPROTO;
        goto done;
    }
    r = write_all(self->part_fd, out->data.data, out->data.len);
    if (r < 0) {
        vg_log(VG_LOG_ERROR, "command output request=%s not kept: %s", out->request_id,
               strerror(-r));
        drop_part(self);
        goto done;
    }
    self->next_offset += out->data.len;
    if (out->last) {
        snprintf(part, sizeof(part), "%s.part", self->writing);
        if (fsync(self->part_fd) < 0 || renameat(self->dir_fd, part, self->dir_fd, self->writing) < 0) {
            r = -errno;
            vg_log(VG_LOG_ERROR, "command output request=%s not kept: %s", out->request_id,
                   strerror(-r));
            drop_part(self);
            goto done;
        }
        close(self->part_fd);
        self->part_fd = -1;
        vg_log(VG_LOG_DEBUG, "command output request=%s kept bytes=%llu", self->writing,
               (unsigned long long)self->next_offset);
        self->writing[0] = '\0';
        self->next_offset = 0;
        prune(self);
    }
done:
    vigil__command_output__free_unpacked(out, NULL);
    return r;
}

int cmd_output_open(const cmd_output_t *self, const char *request_id, char *err, size_t errlen)
{
    if (!cmd_output_id_ok(request_id)) {
        snprintf(err, errlen, "needs request=ID (a command's request id)");
        return -EINVAL;
    }
    int fd = openat(self->dir_fd, request_id, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT)
            snprintf(err, errlen,
                     "no output kept for command %s on this node (it did not run here, or it is "
                     "older than the last %d)",
                     request_id, CMD_OUTPUT_KEEP);
        else
            snprintf(err, errlen, "command %s: %s", request_id, strerror(e));
        return -e;
    }
    return fd;
}
