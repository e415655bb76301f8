/*
 * The probe runner: the contract is in probes.h, the module ABI in probe/probe.h.
 *
 * Ownership: probes_t owns the loaded modules, a copy of every target's configuration and
 * the queue. Each target's thread owns the target's module state from its first cycle to its
 * close; the main thread touches the queue only under the lock and only to take it whole.
 *
 * Shutdown: probes_destroy sets `stopping` (threads asleep wake on the condition variable)
 * and makes cancel_fd readable (threads inside a module's poll() return at once), then joins.
 */
#include "probes.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "timeutil.h"
#include "wire.h"

#define QUEUE_MAX 4096        /* samples waiting for the main loop; more are dropped */
#define CYCLE_MAX_SAMPLES 512 /* from one cycle of one target */
#define MODULE_MAX_LABELS 8   /* a module's own labels on one sample (target= comes first) */
#define TARGET_NAME_MAX 64    /* the target label */
#define KIND_NAME_MAX 16      /* "postgres" and room to spare */
#define UNIT_MAX 32
#define REASON_MAX 128
#define DEFAULT_ARTIFACT_BYTES (1024 * 1024)
#define DEFAULT_LONG_RUNNING_MS (5 * 60 * 1000)
/* Modules' stack needs are modest (no recursion, buffers on the heap); the sanitizer's
 * redzones and fake frames need several times more. */
#ifdef __SANITIZE_ADDRESS__
#define THREAD_STACK_BYTES (2 * 1024 * 1024)
#else
#define THREAD_STACK_BYTES (256 * 1024)
#endif

/* ---- Configuration key tables ------------------------------------------------------------ */

#define TARGET_OFFSET(field) offsetof(struct probe_target_config, field)

const struct vg_cfg_key probe_http_target_keys[] = {
    {.path = "name",
     .type = VG_CFG_STRING,
     .offset = TARGET_OFFSET(name),
     .max = TARGET_NAME_MAX,
     .required = true,
     .help = "the target label of this probe's samples"},
    {.path = "url",
     .type = VG_CFG_STRING,
     .offset = TARGET_OFFSET(address),
     .max = 2048,
     .required = true,
     .help = "http:// or https:// URL to GET"},
    {.path = "expect_status",
     .type = VG_CFG_INT,
     .offset = TARGET_OFFSET(expect_status),
     .min = 0,
     .max = 599,
     .def = "0",
     .help = "the status that counts as up; 0 = any 2xx or 3xx"},
    {.path = "tls_verify",
     .type = VG_CFG_BOOL,
     .offset = TARGET_OFFSET(tls_verify),
     .def = "true",
     .help = "verify the server's certificate and host name"},
    {.path = "ca_file",
     .type = VG_CFG_STRING,
     .offset = TARGET_OFFSET(ca_file),
     .def = "",
     .help = "CA bundle to verify against; empty = the system's"},
    {.path = "statuspage",
     .type = VG_CFG_BOOL,
     .offset = TARGET_OFFSET(statuspage),
     .def = "false",
     .help = "the url is a Statuspage v2 status.json or summary.json: read the vendor's "
             "indicator and components (http.statuspage.*)"},
};
const size_t probe_http_target_nkeys =
    sizeof(probe_http_target_keys) / sizeof(probe_http_target_keys[0]);

const struct vg_cfg_key probe_postgres_target_keys[] = {
    {.path = "name",
     .type = VG_CFG_STRING,
     .offset = TARGET_OFFSET(name),
     .max = TARGET_NAME_MAX,
     .required = true,
     .help = "the target label of this probe's samples"},
    {.path = "conninfo",
     .type = VG_CFG_STRING,
     .offset = TARGET_OFFSET(address),
     .max = 1024,
     .required = true,
     .help = "libpq connection string or URI (host=... port=... dbname=... user=...)"},
    {.path = "password_file",
     .type = VG_CFG_STRING,
     .offset = TARGET_OFFSET(password_file),
     .def = "",
     .help = "file whose first line is the password (mode 0600)"},
    {.path = "password_env",
     .type = VG_CFG_STRING,
     .offset = TARGET_OFFSET(password_env),
     .max = 128,
     .def = "",
     .help = "environment variable holding the password"},
};
const size_t probe_postgres_target_nkeys =
    sizeof(probe_postgres_target_keys) / sizeof(probe_postgres_target_keys[0]);

const struct vg_cfg_key probe_redis_target_keys[] = {
    {.path = "name",
     .type = VG_CFG_STRING,
     .offset = TARGET_OFFSET(name),
     .max = TARGET_NAME_MAX,
     .required = true,
     .help = "the target label of this probe's samples"},
    {.path = "address",
     .type = VG_CFG_STRING,
     .offset = TARGET_OFFSET(address),
     .max = 256,
     .required = true,
     .help = "host:port, [v6addr]:port, or the path of a unix socket (/...)"},
    {.path = "password_file",
     .type = VG_CFG_STRING,
     .offset = TARGET_OFFSET(password_file),
     .def = "",
     .help = "file whose first line is the password (mode 0600)"},
    {.path = "password_env",
     .type = VG_CFG_STRING,
     .offset = TARGET_OFFSET(password_env),
     .max = 128,
     .def = "",
     .help = "environment variable holding the password"},
};
const size_t probe_redis_target_nkeys =
    sizeof(probe_redis_target_keys) / sizeof(probe_redis_target_keys[0]);

const struct vg_cfg_key probe_kubernetes_target_keys[] = {
    {.path = "name",
     .type = VG_CFG_STRING,
     .offset = TARGET_OFFSET(name),
     .max = TARGET_NAME_MAX,
     .required = true,
     .help = "the target label of this probe's samples"},
    {.path = "kubeconfig",
     .type = VG_CFG_STRING,
     .offset = TARGET_OFFSET(kubeconfig),
     .def = "",
     .help = "kubeconfig file (its token or client certificate); empty = the in-cluster "
             "ServiceAccount"},
    {.path = "context",
     .type = VG_CFG_STRING,
     .offset = TARGET_OFFSET(context),
     .max = 256,
     .def = "",
     .help = "the kubeconfig's context; empty = its current-context"},
    {.path = "namespaces",
     .type = VG_CFG_STRINGS,
     .offset = TARGET_OFFSET(namespaces),
     .max = 32,
     .help = "namespaces whose pods, deployments and events are watched"},
};
const size_t probe_kubernetes_target_nkeys =
    sizeof(probe_kubernetes_target_keys) / sizeof(probe_kubernetes_target_keys[0]);

/* The config loader fills namespaces as a struct vg_cfg_strings; the module reads it as the
 * ABI's struct probe_strings. */
_Static_assert(sizeof(struct probe_strings) == sizeof(struct vg_cfg_strings) &&
                   offsetof(struct probe_strings, items) ==
                       offsetof(struct vg_cfg_strings, items) &&
                   offsetof(struct probe_strings, count) == offsetof(struct vg_cfg_strings, count),
               "struct probe_strings must match struct vg_cfg_strings");

/* ---- State ------------------------------------------------------------------------------- */

/* One sample on its way from a probe thread to the main loop, in one allocation. */
struct queued_sample {
    struct queued_sample *next;
    const char *target; /* borrowed: the target's name outlives every queued sample */
    int64_t ts_ms;      /* wall clock when the module emitted it */
    double value;
    const char *name;
    const char *unit;
    size_t nlabels;
    struct sig_label labels[MODULE_MAX_LABELS];
    char strings[]; /* name, unit, label keys and values */
};

struct sample_list {
    struct queued_sample *head, *tail;
    size_t count;
};

struct target;

struct loaded_kind {
    char kind[KIND_NAME_MAX];
    void *dl;
    const struct probe_module *module;
    int64_t interval_ms;
    struct probe_options options;
    struct target *targets;
    size_t ntargets;
};

struct target {
    probes_t *owner;
    const struct loaded_kind *kind;
    struct probe_target_config config; /* owned copies */
    void *state;                       /* the module's; owned by the thread once started */
    pthread_t thread;
    bool started;
    /* The <kind>.error series this target last reported as 1, to end it with a 0. Only its
     * thread touches these. */
    char error_name[VG_MAX_NAME_LEN + 1];
    char error_reason[REASON_MAX];
};

struct probes {
    struct loaded_kind *kinds;
    size_t nkinds;
    pthread_mutex_t lock;
    pthread_cond_t wake;      /* on CLOCK_MONOTONIC */
    bool sync_ready;          /* lock and wake are initialised */
    bool stopping;            /* under lock */
    struct sample_list queue; /* under lock */
    atomic_uint_least64_t errors;
    int sample_fd; /* eventfd: readable while samples wait */
    int cancel_fd; /* eventfd: readable once stopping; modules poll it */
};

/* ---- Samples ----------------------------------------------------------------------------- */

static bool fits(const char *s, size_t max)
{
    return s && strnlen(s, max + 1) <= max;
}

/* A copy of one emitted sample, or NULL when it is malformed (counted by the caller). */
static struct queued_sample *sample_new(const char *target, const char *name, double value,
                                        const char *unit, const struct probe_label *labels,
                                        size_t nlabels)
{
    if (!unit)
        unit = "";
    if (!fits(name, VG_MAX_NAME_LEN) || !name[0] || !fits(unit, UNIT_MAX) ||
        nlabels > MODULE_MAX_LABELS || (nlabels && !labels))
        return NULL;
    size_t size = strlen(name) + 1 + strlen(unit) + 1;
    for (size_t i = 0; i < nlabels; i++) {
        if (!fits(labels[i].key, VG_MAX_NAME_LEN) || !labels[i].key[0] ||
            !fits(labels[i].value, VG_MAX_VALUE_LEN) || strcmp(labels[i].key, "target") == 0)
            return NULL;
        size += strlen(labels[i].key) + 1 + strlen(labels[i].value) + 1;
    }
    struct queued_sample *s = malloc(sizeof(*s) + size);
    if (!s)
        return NULL;
    char *p = s->strings;
#define COPY_STRING(dst, src)                                                                      \
    do {                                                                                           \
        size_t n_ = strlen(src) + 1;                                                               \
        memcpy(p, (src), n_);                                                                      \
        (dst) = p;                                                                                 \
        p += n_;                                                                                   \
    } while (0)
    COPY_STRING(s->name, name);
    COPY_STRING(s->unit, unit);
    for (size_t i = 0; i < nlabels; i++) {
        COPY_STRING(s->labels[i].key, labels[i].key);
        COPY_STRING(s->labels[i].value, labels[i].value);
    }
#undef COPY_STRING
    s->next = NULL;
    s->target = target;
    s->ts_ms = vg_wall_ms();
    s->value = value;
    s->nlabels = nlabels;
    return s;
}

static void list_append(struct sample_list *l, struct queued_sample *s)
{
    if (l->tail)
        l->tail->next = s;
    else
        l->head = s;
    l->tail = s;
    l->count++;
}

static void list_free(struct sample_list *l)
{
    struct queued_sample *s = l->head;
    while (s) {
        struct queued_sample *next = s->next;
        free(s);
        s = next;
    }
    *l = (struct sample_list){0};
}

static const char *sample_label(const struct queued_sample *s, const char *key)
{
    for (size_t i = 0; i < s->nlabels; i++) {
        if (strcmp(s->labels[i].key, key) == 0)
            return s->labels[i].value;
    }
    return NULL;
}

/* ---- One target's thread ----------------------------------------------------------------- */

/* What one cycle of one target emitted, gathered before it is queued in one go. */
struct cycle {
    struct target *target;
    struct sample_list samples;
    uint64_t dropped;
};

static void cycle_emit(void *sink, const char *name, double value, const char *unit,
                       const struct probe_label *labels, size_t nlabels)
{
    struct cycle *c = sink;
    struct queued_sample *s = NULL;
    if (c->samples.count < CYCLE_MAX_SAMPLES)
        s = sample_new(c->target->config.name, name, value, unit, labels, nlabels);
    if (!s) {
        c->dropped++;
        return;
    }
    list_append(&c->samples, s);
}

static bool is_error_series(const struct queued_sample *s)
{
    size_t n = strlen(s->name);
    return n > 6 && strcmp(s->name + n - 6, ".error") == 0;
}

/* A reason reported as 1 stays the latest value of its series until something replaces it:
 * when the target recovers or fails differently, end the old series with a 0. */
static void cycle_end_stale_error(struct cycle *c)
{
    struct target *t = c->target;
    const struct queued_sample *now_failing = NULL;
    const char *reason = NULL;

    for (const struct queued_sample *s = c->samples.head; s; s = s->next) {
        if (s->value != 0 && is_error_series(s) && (reason = sample_label(s, "reason"))) {
            now_failing = s;
            break;
        }
    }
    if (t->error_reason[0] && (!now_failing || strcmp(t->error_name, now_failing->name) != 0 ||
                               strcmp(t->error_reason, reason) != 0)) {
        struct probe_label label = {"reason", t->error_reason};
        cycle_emit(c, t->error_name, 0, "bool", &label, 1);
    }
    t->error_name[0] = '\0';
    t->error_reason[0] = '\0';
    if (now_failing && strlen(now_failing->name) < sizeof(t->error_name) &&
        strlen(reason) < sizeof(t->error_reason)) {
        memcpy(t->error_name, now_failing->name, strlen(now_failing->name) + 1);
        memcpy(t->error_reason, reason, strlen(reason) + 1);
    }
}

/* Under self->lock: the cycle's samples join the queue, as many as fit. */
static void queue_cycle(probes_t *self, struct cycle *c)
{
    uint64_t dropped = c->dropped;
    bool added = false;

    while (c->samples.head) {
        struct queued_sample *s = c->samples.head;
        c->samples.head = s->next;
        s->next = NULL;
        if (self->stopping || self->queue.count >= QUEUE_MAX) {
            free(s);
            dropped += !self->stopping;
            continue;
        }
        list_append(&self->queue, s);
        added = true;
    }
    c->samples = (struct sample_list){0};
    if (dropped)
        atomic_fetch_add(&self->errors, dropped);
    if (added) {
        uint64_t one = 1;
        if (write(self->sample_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
            atomic_fetch_add(&self->errors, 1);
    }
}

static struct timespec mono_timespec(int64_t ms)
{
    return (struct timespec){.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
}

static void *target_main(void *arg)
{
    struct target *t = arg;
    probes_t *self = t->owner;
    const struct probe_module *module = t->kind->module;
    int64_t interval = t->kind->interval_ms;
    int64_t due = vg_mono_ms();

    pthread_mutex_lock(&self->lock);
    for (;;) {
        while (!self->stopping && vg_mono_ms() < due) {
            struct timespec until = mono_timespec(due);
            pthread_cond_timedwait(&self->wake, &self->lock, &until);
        }
        if (self->stopping)
            break;
        pthread_mutex_unlock(&self->lock);

        struct cycle c = {.target = t};
        struct probe_sink sink = {.emit = cycle_emit, .sink = &c};
        module->run(t->state, &sink);
        cycle_end_stale_error(&c);

        pthread_mutex_lock(&self->lock);
        queue_cycle(self, &c);
        /* Keep the cadence; a cycle that overran its interval skips the slots it missed. */
        int64_t now = vg_mono_ms();
        due += interval;
        if (due <= now)
            due += ((now - due) / interval + 1) * interval;
    }
    pthread_mutex_unlock(&self->lock);
    module->close(t->state);
    t->state = NULL;
    return NULL;
}

/* ---- Loading ----------------------------------------------------------------------------- */

static bool kind_name_valid(const char *kind)
{
    if (!kind || !kind[0] || strlen(kind) >= KIND_NAME_MAX)
        return false;
    for (const char *p = kind; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    }
    return true;
}

static bool target_name_valid(const char *name)
{
    if (!name || !name[0] || strlen(name) > TARGET_NAME_MAX)
        return false;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return false;
    }
    return true;
}

/* <dir>/vigil-probe-<kind>.so, dir as documented for probes_new. */
static int module_path(const char *module_dir, const char *kind, char *buf, size_t size)
{
    char exe_dir[PATH_MAX];
    const char *dir = module_dir && module_dir[0] ? module_dir : getenv("VIGIL_PROBE_DIR");

    if (!dir || !dir[0]) {
        ssize_t n = readlink("/proc/self/exe", exe_dir, sizeof(exe_dir) - 1);
        if (n <= 0)
            return -errno;
        exe_dir[n] = '\0';
        char *slash = strrchr(exe_dir, '/');
        if (!slash)
            return -ENOENT;
        *slash = '\0';
        dir = exe_dir;
    }
    int n = snprintf(buf, size, "%s/vigil-probe-%s.so", dir, kind);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int load_module(struct loaded_kind *k, const char *module_dir, char *err, size_t errlen)
{
    char path[PATH_MAX];

    if (module_path(module_dir, k->kind, path, sizeof(path)) < 0) {
        vg_set_err(err, errlen, "%s probes are configured but their module's path cannot be formed",
                   k->kind);
        return -ENAMETOOLONG;
    }
    k->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!k->dl) {
        const char *why = dlerror();
        vg_set_err(err, errlen, "%s probes are configured but %s cannot be loaded: %s", k->kind,
                   path, why ? why : "unknown error");
        return -ENOENT;
    }
    k->module = dlsym(k->dl, PROBE_MODULE_SYMBOL);
    if (!k->module) {
        vg_set_err(err, errlen, "%s is not a Vigil probe module (no %s)", path,
                   PROBE_MODULE_SYMBOL);
        return -ENOEXEC;
    }
    if (k->module->abi != PROBE_ABI_VERSION) {
        vg_set_err(err, errlen, "%s speaks probe ABI %u, this agent %u: install matching versions",
                   path, (unsigned)k->module->abi, (unsigned)PROBE_ABI_VERSION);
        return -ENOEXEC;
    }
    if (!k->module->kind || strcmp(k->module->kind, k->kind) != 0 || !k->module->open ||
        !k->module->run || !k->module->close) {
        vg_set_err(err, errlen, "%s is not the %s probe module", path, k->kind);
        return -ENOEXEC;
    }
    return 0;
}

int probes_preload(const struct probes_kind_config *kinds, size_t nkinds, const char *module_dir,
                   char *err, size_t errlen)
{
    for (size_t i = 0; i < nkinds; i++) {
        if (kinds[i].interval_ms == 0 || kinds[i].ntargets == 0 || !kind_name_valid(kinds[i].kind))
            continue;
        struct loaded_kind k = {0};
        snprintf(k.kind, sizeof(k.kind), "%s", kinds[i].kind);
        int r = load_module(&k, module_dir, err, errlen);
        if (r < 0) {
            if (k.dl)
                dlclose(k.dl);
            return r;
        }
        /* Kept mapped on purpose: probes_new's dlopen of the same path takes this mapping. */
    }
    return 0;
}

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

static int copy_target(struct probe_target_config *dst, const struct probe_target_config *src)
{
    *dst = (struct probe_target_config){
        .name = dup_or_empty(src->name),
        .address = dup_or_empty(src->address),
        .password_file = dup_or_empty(src->password_file),
        .password_env = dup_or_empty(src->password_env),
        .expect_status = src->expect_status,
        .tls_verify = src->tls_verify,
        .ca_file = dup_or_empty(src->ca_file),
        .kubeconfig = dup_or_empty(src->kubeconfig),
        .context = dup_or_empty(src->context),
        .statuspage = src->statuspage,
    };
    if (!dst->name || !dst->address || !dst->password_file || !dst->password_env || !dst->ca_file ||
        !dst->kubeconfig || !dst->context)
        return -ENOMEM;
    if (src->namespaces.count) {
        dst->namespaces.items = calloc(src->namespaces.count, sizeof(char *));
        if (!dst->namespaces.items)
            return -ENOMEM;
        for (size_t i = 0; i < src->namespaces.count; i++) {
            dst->namespaces.items[i] = dup_or_empty(src->namespaces.items[i]);
            if (!dst->namespaces.items[i])
                return -ENOMEM;
            dst->namespaces.count++;
        }
    }
    return 0;
}

static void free_target_config(struct probe_target_config *c)
{
    free(c->name);
    free(c->address);
    free(c->password_file);
    free(c->password_env);
    free(c->ca_file);
    free(c->kubeconfig);
    free(c->context);
    for (size_t i = 0; i < c->namespaces.count; i++)
        free(c->namespaces.items[i]);
    free(c->namespaces.items);
    *c = (struct probe_target_config){0};
}

static int validate_kind(const struct probes_kind_config *kc, char *err, size_t errlen)
{
    if (kc->interval_ms < 0) {
        vg_set_err(err, errlen, "collectors.%s.interval: must not be negative", kc->kind);
        return -EINVAL;
    }
    if (kc->options.timeout_ms <= 0) {
        vg_set_err(err, errlen, "collectors.%s.timeout: must be positive", kc->kind);
        return -EINVAL;
    }
    if (kc->ntargets && !kc->targets) {
        vg_set_err(err, errlen, "collectors.%s: targets missing", kc->kind);
        return -EINVAL;
    }
    for (size_t i = 0; i < kc->ntargets; i++) {
        const struct probe_target_config *t = &kc->targets[i];
        if (!target_name_valid(t->name)) {
            vg_set_err(err, errlen,
                       "collectors.%s.targets[%zu].name: must be 1 to %d printable characters",
                       kc->kind, i, TARGET_NAME_MAX);
            return -EINVAL;
        }
        /* kubernetes targets have no address: their kubeconfig ("" = in-cluster) says where. */
        if (strcmp(kc->kind, "kubernetes") != 0 && (!t->address || !t->address[0])) {
            vg_set_err(err, errlen, "collectors.%s.targets[%zu] (\"%s\"): the %s must not be empty",
                       kc->kind, i, t->name,
                       strcmp(kc->kind, "http") == 0       ? "url"
                       : strcmp(kc->kind, "postgres") == 0 ? "conninfo"
                                                           : "address");
            return -EINVAL;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(kc->targets[j].name, t->name) == 0) {
                vg_set_err(err, errlen,
                           "collectors.%s.targets[%zu]: the name \"%s\" is already used by "
                           "targets[%zu]",
                           kc->kind, i, t->name, j);
                return -EINVAL;
            }
        }
    }
    return 0;
}

static int load_kind(probes_t *self, struct loaded_kind *k, const struct probes_kind_config *kc,
                     const char *module_dir, char *err, size_t errlen)
{
    char why[512];
    int r;

    memcpy(k->kind, kc->kind, strlen(kc->kind) + 1);
    k->interval_ms = kc->interval_ms;
    k->options = kc->options;
    k->options.cancel_fd = self->cancel_fd;
    if (k->options.max_artifact_bytes == 0)
        k->options.max_artifact_bytes = DEFAULT_ARTIFACT_BYTES;
    if (k->options.long_running_ms <= 0)
        k->options.long_running_ms = DEFAULT_LONG_RUNNING_MS;
    r = load_module(k, module_dir, err, errlen);
    if (r < 0)
        return r;
    k->targets = calloc(kc->ntargets, sizeof(*k->targets));
    if (!k->targets) {
        vg_set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < kc->ntargets; i++) {
        struct target *t = &k->targets[i];
        t->owner = self;
        t->kind = k;
        k->ntargets++;
        if (copy_target(&t->config, &kc->targets[i]) < 0) {
            vg_set_err(err, errlen, "out of memory");
            return -ENOMEM;
        }
        why[0] = '\0';
        t->state = k->module->open(&t->config, &k->options, why, sizeof(why));
        if (!t->state) {
            vg_set_err(err, errlen, "collectors.%s: target \"%s\": %s", k->kind, t->config.name,
                       why[0] ? why : "cannot be set up");
            return -EINVAL;
        }
    }
    return 0;
}

static int start_threads(probes_t *self, char *err, size_t errlen)
{
    pthread_attr_t attr;
    int r = pthread_attr_init(&attr);
    if (r == 0)
        r = pthread_attr_setstacksize(&attr, THREAD_STACK_BYTES);
    if (r != 0) {
        vg_set_err(err, errlen, "probe threads: %s", strerror(r));
        return -r;
    }
    for (size_t i = 0; i < self->nkinds && r == 0; i++) {
        for (size_t j = 0; j < self->kinds[i].ntargets && r == 0; j++) {
            struct target *t = &self->kinds[i].targets[j];
            r = pthread_create(&t->thread, &attr, target_main, t);
            if (r != 0)
                vg_set_err(err, errlen, "%s probe \"%s\": cannot start its thread: %s",
                           self->kinds[i].kind, t->config.name, strerror(r));
            t->started = r == 0;
        }
    }
    pthread_attr_destroy(&attr);
    return -r;
}

probes_t *probes_new(const struct probes_kind_config *kinds, size_t nkinds, const char *module_dir,
                     char *err, size_t errlen)
{
    pthread_condattr_t cattr;
    size_t enabled = 0;

    for (size_t i = 0; i < nkinds; i++) {
        if (!kind_name_valid(kinds[i].kind)) {
            vg_set_err(err, errlen, "probe kind \"%s\": not a module name",
                       kinds[i].kind ? kinds[i].kind : "");
            return NULL;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(kinds[i].kind, kinds[j].kind) == 0) {
                vg_set_err(err, errlen, "probe kind \"%s\" is configured twice", kinds[i].kind);
                return NULL;
            }
        }
        if (validate_kind(&kinds[i], err, errlen) < 0)
            return NULL;
        enabled += kinds[i].interval_ms > 0 && kinds[i].ntargets > 0;
    }

    probes_t *self = calloc(1, sizeof(*self));
    if (!self) {
        vg_set_err(err, errlen, "out of memory");
        return NULL;
    }
    self->sample_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    self->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    atomic_init(&self->errors, 0);
    if (self->sample_fd < 0 || self->cancel_fd < 0) {
        vg_set_err(err, errlen, "eventfd: %s", strerror(errno));
        goto err_destroy;
    }
    if (pthread_condattr_init(&cattr) != 0) {
        vg_set_err(err, errlen, "out of memory");
        goto err_destroy;
    }
    pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
    int r = pthread_cond_init(&self->wake, &cattr);
    pthread_condattr_destroy(&cattr);
    if (r != 0 || pthread_mutex_init(&self->lock, NULL) != 0) {
        if (r == 0)
            pthread_cond_destroy(&self->wake);
        vg_set_err(err, errlen, "out of memory");
        goto err_destroy;
    }
    self->sync_ready = true;

    self->kinds = calloc(enabled ? enabled : 1, sizeof(*self->kinds));
    if (!self->kinds) {
        vg_set_err(err, errlen, "out of memory");
        goto err_destroy;
    }
    for (size_t i = 0; i < nkinds; i++) {
        if (kinds[i].interval_ms == 0 || kinds[i].ntargets == 0)
            continue;
        struct loaded_kind *k = &self->kinds[self->nkinds++];
        if (load_kind(self, k, &kinds[i], module_dir, err, errlen) < 0)
            goto err_destroy;
    }
    if (start_threads(self, err, errlen) < 0)
        goto err_destroy;
    for (size_t i = 0; i < self->nkinds; i++)
        vg_log(VG_LOG_DEBUG, "probes kind=%s targets=%zu interval_ms=%lld timeout_ms=%lld",
               self->kinds[i].kind, self->kinds[i].ntargets, (long long)self->kinds[i].interval_ms,
               (long long)self->kinds[i].options.timeout_ms);
    return self;

err_destroy:
    probes_destroy(&self);
    return NULL;
}

/* ---- Main thread ------------------------------------------------------------------------- */

int probes_fd(const probes_t *self)
{
    return self->sample_fd;
}

void probes_drain(probes_t *self, struct collect_ctx *ctx)
{
    uint64_t pending;
    struct sample_list taken;

    if (read(self->sample_fd, &pending, sizeof(pending)) < 0) {
        /* EAGAIN: nothing signalled, but a sample may still have arrived after a read. */
    }
    pthread_mutex_lock(&self->lock);
    taken = self->queue;
    self->queue = (struct sample_list){0};
    pthread_mutex_unlock(&self->lock);

    int64_t cycle_now = ctx->now_ms;
    for (struct queued_sample *s = taken.head; s; s = s->next) {
        struct sig_label labels[1 + MODULE_MAX_LABELS];
        labels[0] = (struct sig_label){"target", s->target};
        memcpy(&labels[1], s->labels, s->nlabels * sizeof(labels[0]));
        ctx->now_ms = s->ts_ms;
        collect_emit(ctx, s->name, s->value, s->unit, labels, 1 + s->nlabels);
    }
    ctx->now_ms = cycle_now;
    list_free(&taken);
}

uint64_t probes_errors(const probes_t *self)
{
    return atomic_load(&self->errors);
}

/* ---- Evidence ---------------------------------------------------------------------------- */

static int evidence_of(probes_t *self, const char *kind, const char *evidence_kind,
                       const struct probe_label *args, size_t nargs, const char *target,
                       const struct artifact_writer *out, char *err, size_t errlen);

int probes_evidence(probes_t *self, const char *kind, const char *target,
                    const struct artifact_writer *out, char *err, size_t errlen)
{
    return evidence_of(self, kind, NULL, NULL, 0, target, out, err, errlen);
}

int probes_evidence_kind(probes_t *self, const char *kind, const char *evidence_kind,
                         const struct probe_label *args, size_t nargs, const char *target,
                         const struct artifact_writer *out, char *err, size_t errlen)
{
    return evidence_of(self, kind, evidence_kind ? evidence_kind : "", args, nargs, target, out,
                       err, errlen);
}

/* evidence_kind NULL: the module's evidence; else its evidence_kind. */
static int evidence_of(probes_t *self, const char *kind, const char *evidence_kind,
                       const struct probe_label *args, size_t nargs, const char *target,
                       const struct artifact_writer *out, char *err, size_t errlen)
{
    const struct loaded_kind *k = NULL;
    const struct target *t = NULL;
    char why[512] = "";

    for (size_t i = 0; i < self->nkinds && !k; i++) {
        if (kind && strcmp(self->kinds[i].kind, kind) == 0)
            k = &self->kinds[i];
    }
    if (!k) {
        vg_set_err(err, errlen, "no %s probe is configured on this node", kind ? kind : "(null)");
        return -ENOENT;
    }
    if (evidence_kind ? !k->module->evidence_kind : !k->module->evidence) {
        vg_set_err(err, errlen, "%s probes have no %s evidence to collect", k->kind,
                   evidence_kind ? evidence_kind : "such");
        return -EOPNOTSUPP;
    }
    if (!target || !target[0]) {
        if (k->ntargets != 1) {
            vg_set_err(err, errlen, "%zu %s targets are configured: name one", k->ntargets,
                       k->kind);
            return -EINVAL;
        }
        t = &k->targets[0];
    } else {
        for (size_t i = 0; i < k->ntargets && !t; i++)
            if (strcmp(k->targets[i].config.name, target) == 0)
                t = &k->targets[i];
    }
    if (!t) {
        vg_set_err(err, errlen, "no %s target named \"%s\"", k->kind, target);
        return -ENOENT;
    }

    /* A state of its own: the target's thread may be in the middle of a cycle. */
    void *state = k->module->open(&t->config, &k->options, why, sizeof(why));
    if (!state) {
        vg_set_err(err, errlen, "%s target \"%s\": %s", k->kind, t->config.name,
                   why[0] ? why : "cannot be set up");
        return -EINVAL;
    }
    int r = evidence_kind
                ? k->module->evidence_kind(state, evidence_kind, args, nargs, out, why, sizeof(why))
                : k->module->evidence(state, out, why, sizeof(why));
    k->module->close(state);
    if (r < 0)
        vg_set_err(err, errlen, "%s target \"%s\": %s", k->kind, t->config.name,
                   why[0] ? why : strerror(-r));
    return r < 0 ? r : 0;
}

/* ---- Teardown ---------------------------------------------------------------------------- */

void probes_destroy(probes_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    probes_t *self = *self_p;

    if (self->sync_ready) {
        pthread_mutex_lock(&self->lock);
        self->stopping = true;
        pthread_cond_broadcast(&self->wake);
        pthread_mutex_unlock(&self->lock);
    }
    if (self->cancel_fd >= 0) {
        uint64_t one = 1;
        if (write(self->cancel_fd, &one, sizeof(one)) < 0)
            vg_log(VG_LOG_DEBUG, "probes: cannot signal cancellation: %s", strerror(errno));
    }
    for (size_t i = 0; i < self->nkinds; i++) {
        struct loaded_kind *k = &self->kinds[i];
        for (size_t j = 0; j < k->ntargets; j++) {
            struct target *t = &k->targets[j];
            if (t->started)
                pthread_join(t->thread, NULL);
            else if (t->state)
                k->module->close(t->state);
            t->state = NULL;
            free_target_config(&t->config);
        }
        free(k->targets);
        k->targets = NULL;
        if (k->dl)
            dlclose(k->dl);
        k->dl = NULL;
    }
    free(self->kinds);
    self->kinds = NULL;
    list_free(&self->queue);
    if (self->sync_ready) {
        pthread_cond_destroy(&self->wake);
        pthread_mutex_destroy(&self->lock);
    }
    if (self->sample_fd >= 0)
        close(self->sample_fd);
    if (self->cancel_fd >= 0)
        close(self->cancel_fd);
    free(self);
    *self_p = NULL;
}

/* ---- The collector interface (collect.h) ----------------------------------------------------- */

static int collector_fd(const void *self)
{
    return probes_fd(self);
}

static void collector_on_readable(void *self, struct collect_ctx *ctx)
{
    probes_drain(self, ctx);
}

static void collector_destroy(void **self_p)
{
    probes_t *self = *self_p;
    probes_destroy(&self);
    *self_p = NULL;
}

struct collector probes_collector(probes_t **self_p)
{
    struct collector c = {
        .name = "probes",
        .interval_ms = 0,
        .fd = collector_fd,
        .on_readable = collector_on_readable,
        .destroy = collector_destroy,
        .self = *self_p,
    };
    *self_p = NULL;
    return c;
}
