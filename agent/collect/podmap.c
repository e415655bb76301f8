/* Pod identity from the kubelet's log directories: the contract is in podmap.h. */
#include "podmap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define CGROUP_BUF (16 * 1024) /* /proc/PID/cgroup: one line per v1 hierarchy */

struct pod_entry {
    struct pod_identity id; /* container: the only container directory, else "" */
    unsigned ncontainers;   /* container directories seen (capped at 2: one or more) */
};

struct container_entry {
    char id[PROCFS_CONTAINER_ID_MAX];
    char container[PODMAP_CONTAINER_MAX];
    uint64_t pod_hash; /* of namespace and pod: which pod the link names, in 8 bytes */
};

struct podmap {
    pthread_mutex_t lock;
    char *pods_dir;
    char *containers_dir;
    struct pod_entry *pods;
    size_t npods;
    struct container_entry *containers;
    size_t ncontainers;
    bool containers_dir_ok; /* the last containers scan could open the directory */
    bool pods_scanned, containers_scanned;
    int64_t pods_scan_ms, containers_scan_ms;
    struct podmap_stats stats;
    bool logged_missing; /* the pods directory's absence was logged */
};

/* ---- Names ------------------------------------------------------------------------------ */

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_hex(char c)
{
    return (c >= 'a' && c <= 'f') || (c >= '0' && c <= '9');
}

/* RFC 1123 label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most max characters. */
static bool dns_label(const char *s, size_t n, size_t max)
{
    if (n == 0 || n > max || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_lower_alnum(s[i]) && s[i] != '-')
            return false;
    return true;
}

/* RFC 1123 subdomain: dot-separated labels, at most 253 characters (a pod's name). */
static bool dns_subdomain(const char *s, size_t n)
{
    if (n == 0 || n > PODMAP_POD_MAX - 1)
        return false;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '.') {
            if (!dns_label(s + start, i - start, 63))
                return false;
            start = i + 1;
        }
    }
    return true;
}

/* A UUID in its canonical lowercase form, or a static pod's 32-hex config hash. */
static bool uid_valid(const char *s, size_t n)
{
    if (n == 32) {
        for (size_t i = 0; i < n; i++)
            if (!is_hex(s[i]))
                return false;
        return true;
    }
    if (n != 36)
        return false;
    for (size_t i = 0; i < n; i++) {
        bool sep = i == 8 || i == 13 || i == 18 || i == 23;
        if (sep ? s[i] != '-' : !is_hex(s[i]))
            return false;
    }
    return true;
}

/* Splits name at its underscores into exactly three non-empty parts. */
static bool three_parts(const char *name, size_t len, const char *part[3], size_t n[3])
{
    const char *a = memchr(name, '_', len);
    if (!a)
        return false;
    const char *b = memchr(a + 1, '_', len - (size_t)(a + 1 - name));
    if (!b || memchr(b + 1, '_', len - (size_t)(b + 1 - name)))
        return false;
    part[0] = name;
    n[0] = (size_t)(a - name);
    part[1] = a + 1;
    n[1] = (size_t)(b - a - 1);
    part[2] = b + 1;
    n[2] = len - (size_t)(b + 1 - name);
    return n[0] && n[1] && n[2];
}

int podmap_parse_pod_dir(const char *name, struct pod_identity *ret)
{
    if (!name || !ret)
        return -EINVAL;
    size_t len = strnlen(name, 512);
    const char *part[3];
    size_t n[3];
    if (len >= 512 || !three_parts(name, len, part, n) ||
        !dns_label(part[0], n[0], PODMAP_NAMESPACE_MAX - 1) || !dns_subdomain(part[1], n[1]) ||
        !uid_valid(part[2], n[2]))
        return -EINVAL;
    struct pod_identity id;
    memset(&id, 0, sizeof(id));
    memcpy(id.namespace, part[0], n[0]);
    memcpy(id.pod, part[1], n[1]);
    memcpy(id.uid, part[2], n[2]);
    *ret = id;
    return 0;
}

bool podmap_container_name_valid(const char *name)
{
    return name && dns_label(name, strnlen(name, 64), PODMAP_CONTAINER_MAX - 1);
}

int podmap_parse_container_link(const char *name, struct pod_identity *ret, char *ret_container_id)
{
    static const char suffix[] = ".log";
    const size_t id_len = PROCFS_CONTAINER_ID_MAX - 1;
    if (!name || !ret || !ret_container_id)
        return -EINVAL;
    size_t len = strnlen(name, 512);
    if (len >= 512 || len < id_len + 1 + sizeof(suffix) - 1 ||
        memcmp(name + len - (sizeof(suffix) - 1), suffix, sizeof(suffix) - 1) != 0)
        return -EINVAL;
    len -= sizeof(suffix) - 1;
    const char *cid = name + len - id_len;
    for (size_t i = 0; i < id_len; i++)
        if (!is_hex(cid[i]))
            return -EINVAL;
    if (cid[-1] != '-')
        return -EINVAL;
    len -= id_len + 1;
    const char *part[3];
    size_t n[3];
    if (!three_parts(name, len, part, n) || !dns_subdomain(part[0], n[0]) ||
        !dns_label(part[1], n[1], PODMAP_NAMESPACE_MAX - 1) ||
        !dns_label(part[2], n[2], PODMAP_CONTAINER_MAX - 1))
        return -EINVAL;
    struct pod_identity id;
    memset(&id, 0, sizeof(id));
    memcpy(id.pod, part[0], n[0]);
    memcpy(id.namespace, part[1], n[1]);
    memcpy(id.container, part[2], n[2]);
    *ret = id;
    memcpy(ret_container_id, cid, id_len);
    ret_container_id[id_len] = '\0';
    return 0;
}

void podmap_identity_text(const struct pod_identity *id, char *buf, size_t cap)
{
    if (cap == 0)
        return;
    snprintf(buf, cap, "%s/%s/%s", id->namespace, id->pod, id->container[0] ? id->container : "-");
}

/* FNV-1a of "namespace/pod": a link is used only for the pod it names. */
static uint64_t pod_hash(const struct pod_identity *id)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = id->namespace; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ '/') * 1099511628211ULL;
    for (const char *p = id->pod; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h;
}

/* ---- Lifecycle -------------------------------------------------------------------------- */

podmap_t *podmap_new(const char *pod_logs_dir, const char *container_logs_dir)
{
    podmap_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    if (pthread_mutex_init(&self->lock, NULL) != 0) {
        free(self);
        return NULL;
    }
    self->pods_dir = strdup(pod_logs_dir && *pod_logs_dir ? pod_logs_dir : PODMAP_POD_LOGS_DIR);
    self->containers_dir = strdup(
        container_logs_dir && *container_logs_dir ? container_logs_dir : PODMAP_CONTAINER_LOGS_DIR);
    if (!self->pods_dir || !self->containers_dir) {
        podmap_destroy(&self);
        return NULL;
    }
    return self;
}

void podmap_destroy(podmap_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    podmap_t *self = *self_p;
    pthread_mutex_destroy(&self->lock);
    free(self->pods_dir);
    free(self->containers_dir);
    free(self->pods);
    free(self->containers);
    free(self);
    *self_p = NULL;
}

/* ---- Scans (lock held) ------------------------------------------------------------------ */

/* Grows *items (of size elem) to hold one more than n; false at max or without memory. */
static bool room_for_one(void **items, size_t *cap, size_t n, size_t elem, size_t max)
{
    if (n < *cap)
        return true;
    if (n >= max)
        return false;
    size_t grown = *cap ? *cap * 2 : 16;
    if (grown > max)
        grown = max;
    void *more = realloc(*items, grown * elem);
    if (!more)
        return false;
    *items = more;
    *cap = grown;
    return true;
}

/* The container directories of one pod: the single one's name, and how many (0, 1 or 2+). */
static void scan_pod_containers(int pods_fd, const char *pod_dir, struct pod_entry *e)
{
    int fd = openat(pods_fd, pod_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    if (!dir) {
        if (fd >= 0)
            close(fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(dir)) != NULL && e->ncontainers < 2) {
        if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
            continue;
        if (!podmap_container_name_valid(de->d_name))
            continue;              /* ".", "..", or not a container's name */
        if (e->ncontainers++ == 0) /* valid: at most 63 bytes */
            memcpy(e->id.container, de->d_name, strlen(de->d_name) + 1);
    }
    closedir(dir);
    if (e->ncontainers != 1)
        e->id.container[0] = '\0';
}

static void scan_pods(podmap_t *self, int64_t now_ms)
{
    struct pod_entry *pods = NULL;
    size_t n = 0, cap = 0;

    self->pods_scanned = true;
    self->pods_scan_ms = now_ms;
    self->stats.scans++;
    int fd = open(self->pods_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    if (!dir) {
        if (fd >= 0)
            close(fd);
        if (!self->logged_missing)
            vg_log(VG_LOG_DEBUG, "pods: cannot read %s: %s; pods are not named", self->pods_dir,
                   strerror(errno));
        self->logged_missing = true;
        free(self->pods);
        self->pods = NULL;
        self->npods = 0;
        return;
    }
    self->logged_missing = false;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        struct pod_entry e;
        memset(&e, 0, sizeof(e));
        if (podmap_parse_pod_dir(de->d_name, &e.id) < 0) {
            self->stats.malformed++;
            continue;
        }
        if (!room_for_one((void **)&pods, &cap, n, sizeof(*pods), PODMAP_PODS_MAX)) {
            self->stats.overflow++;
            continue;
        }
        scan_pod_containers(dirfd(dir), de->d_name, &e);
        pods[n++] = e;
    }
    closedir(dir);
    free(self->pods);
    self->pods = pods;
    self->npods = n;
}

static void scan_containers(podmap_t *self, int64_t now_ms)
{
    struct container_entry *items = NULL;
    size_t n = 0, cap = 0;

    self->containers_scanned = true;
    self->containers_scan_ms = now_ms;
    self->stats.scans++;
    DIR *dir = opendir(self->containers_dir);
    self->containers_dir_ok = dir != NULL;
    if (dir) {
        struct dirent *de;
        while ((de = readdir(dir)) != NULL) {
            if (de->d_name[0] == '.')
                continue;
            struct pod_identity id;
            struct container_entry e;
            if (podmap_parse_container_link(de->d_name, &id, e.id) < 0) {
                self->stats.malformed++;
                continue;
            }
            if (!room_for_one((void **)&items, &cap, n, sizeof(*items), PODMAP_CONTAINERS_MAX)) {
                self->stats.overflow++;
                continue;
            }
            memcpy(e.container, id.container, sizeof(e.container));
            e.pod_hash = pod_hash(&id);
            items[n++] = e;
        }
        closedir(dir);
    }
    free(self->containers);
    self->containers = items;
    self->ncontainers = n;
}

static bool due(bool scanned, int64_t last_ms, int64_t now_ms)
{
    return !scanned || now_ms - last_ms >= PODMAP_RESCAN_MS || now_ms < last_ms;
}

static const struct pod_entry *find_pod(const podmap_t *self, const char *uid)
{
    for (size_t i = 0; i < self->npods; i++)
        if (strcmp(self->pods[i].id.uid, uid) == 0)
            return &self->pods[i];
    return NULL;
}

/* A container id listed in the containers directory for this very pod. */
static const struct container_entry *find_container(const podmap_t *self, const char *cid,
                                                    const struct pod_identity *pod)
{
    uint64_t h = pod_hash(pod);
    for (size_t i = 0; i < self->ncontainers; i++) {
        const struct container_entry *c = &self->containers[i];
        if (c->pod_hash == h && strcmp(c->id, cid) == 0)
            return c;
    }
    return NULL;
}

/* ---- Lookups ---------------------------------------------------------------------------- */

int podmap_resolve(podmap_t *self, const struct procfs_cgroup_ids *ids, int64_t now_ms,
                   struct pod_identity *ret)
{
    if (!self || !ids || !ret)
        return -EINVAL;
    if (ids->pod_uid[0] == '\0')
        return -ENOENT;
    pthread_mutex_lock(&self->lock);
    const struct pod_entry *pod = find_pod(self, ids->pod_uid);
    if (!pod && due(self->pods_scanned, self->pods_scan_ms, now_ms)) {
        scan_pods(self, now_ms);
        pod = find_pod(self, ids->pod_uid);
    }
    if (!pod) {
        self->stats.unresolved++;
        pthread_mutex_unlock(&self->lock);
        return -ENOENT;
    }
    struct pod_identity id = pod->id;
    id.container[0] = '\0';
    if (ids->container_id[0]) {
        const struct container_entry *c = find_container(self, ids->container_id, &id);
        if (!c && due(self->containers_scanned, self->containers_scan_ms, now_ms)) {
            scan_containers(self, now_ms);
            c = find_container(self, ids->container_id, &id);
        }
        if (c)
            memcpy(id.container, c->container, sizeof(id.container));
        else if (!self->containers_dir_ok)
            memcpy(id.container, pod->id.container, sizeof(id.container)); /* the only one */
    }
    pthread_mutex_unlock(&self->lock);
    *ret = id;
    return 0;
}

int podmap_resolve_pid(podmap_t *self, int proc_fd, int pid, int64_t now_ms,
                       struct pod_identity *ret)
{
    char path[32];
    size_t len;
    struct procfs_cgroup_ids ids;
    if (!self || !ret)
        return -EINVAL;
    char *buf = malloc(CGROUP_BUF);
    if (!buf)
        return -ENOMEM;
    snprintf(path, sizeof(path), "%d/cgroup", pid);
    bool found = procfs_read_at(proc_fd, path, buf, CGROUP_BUF, &len) == 0 &&
                 procfs_parse_cgroup(buf, len, &ids) == 0;
    free(buf);
    if (!found)
        return -ENOENT; /* gone, unreadable, or in no container */
    return podmap_resolve(self, &ids, now_ms, ret);
}

void podmap_get_stats(podmap_t *self, struct podmap_stats *ret)
{
    pthread_mutex_lock(&self->lock);
    *ret = self->stats;
    ret->pods = self->npods;
    ret->containers = self->ncontainers;
    pthread_mutex_unlock(&self->lock);
}
