/*
 * Runbook loader (see runbook_load.h; format: docs/runbook-format.md).
 *
 * A file is read whole (bounded), parsed into a libfyaml document and walked mapping by
 * mapping: each mapping's keys are checked against the keys that place allows (unknown keys
 * are errors, with the closest allowed key suggested), then each value is converted and
 * checked. The runbook is built directly in its final struct; on any error everything built
 * so far is freed.
 *
 * Positions: libfyaml 0.7 exposes marks for scalar tokens only, so errors about a scalar point
 * at it, and errors about a mapping or sequence point at the key that holds it (or, for a
 * mapping without a parent key, at its first key). Marks are 0-based; messages are 1-based.
 */
#include "runbook_load.h"

#include "config.h"
#include "log.h"
#include "wire.h"
#include "yaml.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libfyaml.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PATH_TEXT_MAX 160 /* "symptoms[12].ratio.numerator.labels" and the like */
#define NUMBER_TEXT_MAX 64
#define TITLE_MAX_LEN 200
#define DOC_MAX_LEN 512
#define SIGNAL_MAX_LEN 128
#define LABEL_KEY_MAX_LEN 64
#define LABEL_VALUE_MAX_LEN 256
#define PROMQL_MAX_LEN 4096

#define MS_PER_S INT64_C(1000)
#define MS_PER_M (60 * MS_PER_S)
#define MS_PER_H (60 * MS_PER_M)
#define MS_PER_D (24 * MS_PER_H)

/* Where one runbook's cross-file references sit in its file, for the set-level checks. */
struct rb_marks {
    struct fy_mark id;
    struct fy_mark depends[RB_MAX_DEPENDS];
};

struct loader {
    const char *file;
    char *err;
    size_t errlen;
    struct rb_marks marks;
    enum rb_severity severity; /* the runbook's, for its symptoms' checks */
};

/* One key of a mapping, after take_keys: NULL key = not present. */
struct field {
    struct fy_node *key;
    struct fy_node *value;
    struct fy_mark key_mark;
    const char *path; /* "symptoms[0].for", for messages */
    char path_buf[PATH_TEXT_MAX];
};

static void fail(struct loader *ld, const struct fy_mark *mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(struct loader *ld, const struct fy_mark *mark, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vg_yaml_verror(ld->err, ld->errlen, ld->file, mark, fmt, ap);
    va_end(ap);
}

/* ---- the signals agents emit ---- */

/* README "Signals"; keep sorted (bsearch). */
static const char *const known_signals[] = {
    "agent.evidence.failed",
    "agent.evidence.refused",
    "agent.evidence.requests",
    "agent.evidence.sent",
    "agent.evidence.sent_bytes",
    "agent.executor.up",
    "agent.link.ignored_messages",
    "agent.probes.dropped_samples",
    "agent.spool.bytes",
    "agent.spool.depth",
    "agent.spool.dropped_messages",
    "agent.spool.dropped_samples",
    "agent.uptime_s",
    "host.cpu.busy_pct",
    "host.disk.used_pct",
    "host.load.15m",
    "host.load.1m",
    "host.load.5m",
    "host.mem.available_bytes",
    "host.mem.used_pct",
    "host.net.errors_per_s",
    "host.net.rx_bytes_per_s",
    "host.net.tx_bytes_per_s",
    "host.oom.kills",
    "http.error",
    "http.status",
    "http.time_ms",
    "http.tls_days_left",
    "http.up",
    "log.error_rate_pct",
    "log.errors",
    "log.failed_logins",
    "log.files",
    "log.http.denied",
    "log.http.requests",
    "log.http.status",
    "log.lines",
    "log.match_count",
    "log.match_rate",
    "log.rotations",
    "log.truncations",
    "net.connections.by_remote",
    "net.listen",
    "net.listen.new",
    "net.sockets",
    "pg.active",
    "pg.connections",
    "pg.connections_used_pct",
    "pg.error",
    "pg.long_running",
    "pg.longest_query_s",
    "pg.max_connections",
    "pg.replication_lag_s",
    "pg.statement_mean_ms",
    "pg.up",
    "proc.cpu_pct",
    "proc.errors",
    "proc.pid",
    "proc.restarts",
    "proc.rss_bytes",
    "proc.up",
    "redis.clients",
    "redis.error",
    "redis.evicted_keys",
    "redis.evictions",
    "redis.hit_rate",
    "redis.maxmemory_bytes",
    "redis.mem_used_bytes",
    "redis.mem_used_pct",
    "redis.ping_ms",
    "redis.up",
};

#define ALERT_PREFIX "alert."

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

bool runbook_signal_known(const char *name)
{
    size_t n = sizeof(known_signals) / sizeof(known_signals[0]);

    if (!name)
        return false;
    if (strncmp(name, ALERT_PREFIX, strlen(ALERT_PREFIX)) == 0) {
        /* Alertmanager alert names: [a-zA-Z_:][a-zA-Z0-9_:]* (Prometheus metric-name rules). */
        const char *p = name + strlen(ALERT_PREFIX);
        size_t len = strlen(p);
        if (len == 0 || len > SIGNAL_MAX_LEN || (*p >= '0' && *p <= '9'))
            return false;
        for (; *p; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '_' || *p == ':'))
                return false;
        return true;
    }
    return bsearch(&name, known_signals, n, sizeof(known_signals[0]), cmp_name) != NULL;
}

const char *rb_severity_name(enum rb_severity s)
{
    switch (s) {
    case RB_SEV1:
        return "SEV1";
    case RB_SEV2:
        return "SEV2";
    case RB_SEV3:
        return "SEV3";
    case RB_SEV4:
        return "SEV4";
    case RB_SEV_NONE:
        break;
    }
    return "none";
}

/* ---- freeing ---- */

static void free_labels(struct rb_label **labels_p, size_t *n_p)
{
    struct rb_label *labels = *labels_p;

    for (size_t i = 0; labels && i < *n_p; i++) {
        free(labels[i].key);
        free(labels[i].value);
    }
    free(labels);
    *labels_p = NULL;
    *n_p = 0;
}

static void free_match(struct rb_match *m)
{
    free(m->signal);
    m->signal = NULL;
    free_labels(&m->labels, &m->nlabels);
}

static void free_condition(struct rb_condition *c)
{
    free_match(&c->match);
    free_match(&c->numerator);
    free_match(&c->denominator);
    free(c->promql);
    c->promql = NULL;
}

static void free_runbook(struct rb_runbook *rb)
{
    free(rb->id);
    free(rb->title);
    free(rb->doc);
    free(rb->policy);
    free(rb->file);
    for (size_t i = 0; rb->depends_on && i < rb->ndepends; i++)
        free(rb->depends_on[i]);
    free(rb->depends_on);
    for (size_t i = 0; rb->symptoms && i < rb->nsymptoms; i++) {
        free(rb->symptoms[i].id);
        free_condition(&rb->symptoms[i].cond);
    }
    free(rb->symptoms);
    for (size_t i = 0; rb->investigate && i < rb->ninvestigate; i++) {
        free(rb->investigate[i].kind);
        free_labels(&rb->investigate[i].args, &rb->investigate[i].nargs);
    }
    free(rb->investigate);
    for (size_t i = 0; rb->resolve && i < rb->nresolve; i++) {
        free(rb->resolve[i].name);
        free_labels(&rb->resolve[i].args, &rb->resolve[i].nargs);
    }
    free(rb->resolve);
    for (size_t i = 0; rb->verify && i < rb->nverify; i++)
        free_condition(&rb->verify[i].cond);
    free(rb->verify);
    memset(rb, 0, sizeof(*rb));
}

void runbooks_free(struct rb_set **set_p)
{
    struct rb_set *set = set_p ? *set_p : NULL;

    if (!set)
        return;
    for (size_t i = 0; set->runbooks && i < set->n; i++)
        free_runbook(&set->runbooks[i]);
    free(set->runbooks);
    free(set);
    *set_p = NULL;
}

const struct rb_runbook *runbooks_find(const struct rb_set *set, const char *id)
{
    for (size_t i = 0; set && id && i < set->n; i++)
        if (strcmp(set->runbooks[i].id, id) == 0)
            return &set->runbooks[i];
    return NULL;
}

/* ---- marks and keys ---- */

/* Where a field's value is: the scalar itself, else the key that holds it. */
static const struct fy_mark *value_mark(const struct field *f, struct fy_mark *buf)
{
    const struct fy_mark *m = vg_yaml_scalar_mark(f->value, buf);
    return m ? m : &f->key_mark;
}

static void join_path(char *buf, size_t len, const char *parent, const char *key)
{
    snprintf(buf, len, "%s%s%s", parent, parent[0] ? "." : "", key);
}

/*
 * Checks map's keys against names[] (only those whose bit is set in allowed) and fills
 * fields[i] for each present key. path names the mapping in messages ("" at the top).
 */
static int take_keys(struct loader *ld, struct fy_node *map, const char *path,
                     const struct fy_mark *where, const char *const *names, size_t n,
                     uint32_t allowed, struct field *fields)
{
    struct fy_node_pair *pair;
    void *iter = NULL;

    for (size_t i = 0; i < n; i++) {
        memset(&fields[i], 0, sizeof(fields[i]));
        join_path(fields[i].path_buf, sizeof(fields[i].path_buf), path, names[i]);
        fields[i].path = fields[i].path_buf;
    }
    if (!map || !fy_node_is_mapping(map)) {
        fail(ld, where, "\"%s\": must be a mapping, not %s", path[0] ? path : "runbook",
             vg_yaml_kind_of(map));
        return -EINVAL;
    }
    while ((pair = fy_node_mapping_iterate(map, &iter))) {
        struct fy_node *key = fy_node_pair_key(pair);
        struct fy_mark kbuf;
        const struct fy_mark *km = vg_yaml_scalar_mark(key, &kbuf);
        const char *name;
        size_t len = 0, best_d = 3;
        const char *hint = NULL;
        char shown[VG_YAML_QUOTE_MAX + 1], whole[PATH_TEXT_MAX + VG_YAML_QUOTE_MAX + 2];
        bool found = false;

        if (!key || !fy_node_is_scalar(key) || fy_node_is_alias(key) ||
            !(name = fy_node_get_scalar(key, &len))) {
            fail(ld, km ? km : where, "keys must be plain strings");
            return -EINVAL;
        }
        for (size_t i = 0; i < n; i++) {
            if (!(allowed & (UINT32_C(1) << i)) || strlen(names[i]) != len ||
                memcmp(names[i], name, len) != 0)
                continue;
            fields[i].key = key;
            fields[i].value = fy_node_pair_value(pair);
            if (km)
                fields[i].key_mark = *km;
            found = true;
            break;
        }
        if (found)
            continue;
        vg_yaml_quotable(name, len, shown, sizeof(shown));
        for (size_t i = 0; i < n; i++) {
            size_t d;
            if (!(allowed & (UINT32_C(1) << i)))
                continue;
            d = vg_edit_distance(shown, names[i]);
            if (d < best_d && d < len) {
                best_d = d;
                hint = names[i];
            }
        }
        join_path(whole, sizeof(whole), path, shown);
        if (hint)
            fail(ld, km, "unknown key \"%s\" (did you mean \"%s\"?)", whole, hint);
        else
            fail(ld, km, "unknown key \"%s\"", whole);
        return -EINVAL;
    }
    return 0;
}

static bool present(const struct field *f)
{
    return f->key != NULL;
}

static int need(struct loader *ld, const struct field *f, const struct fy_mark *where)
{
    if (present(f))
        return 0;
    fail(ld, where, "\"%s\": required key is missing", f->path);
    return -EINVAL;
}

/* ---- typed values ---- */

/* The scalar text of a field; NULL (error set) when it is not a non-empty scalar. */
static const char *scalar_text(struct loader *ld, const struct field *f, const char *noun,
                               size_t *len)
{
    struct fy_mark buf;
    const char *text;

    if (vg_yaml_is_empty(f->value) || !fy_node_is_scalar(f->value) || fy_node_is_alias(f->value)) {
        fail(ld, value_mark(f, &buf), "\"%s\": must be %s, not %s", f->path, noun,
             vg_yaml_kind_of(f->value));
        return NULL;
    }
    text = fy_node_get_scalar(f->value, len);
    if (!text || *len == 0) {
        fail(ld, value_mark(f, &buf), "\"%s\": must not be empty", f->path);
        return NULL;
    }
    if (memchr(text, '\0', *len)) {
        fail(ld, value_mark(f, &buf), "\"%s\": must not contain a NUL character", f->path);
        return NULL;
    }
    return text;
}

static int get_string(struct loader *ld, const struct field *f, size_t max, char **out)
{
    struct fy_mark buf;
    size_t len = 0;
    const char *text = scalar_text(ld, f, "a string", &len);

    if (!text)
        return -EINVAL;
    if (len > max) {
        fail(ld, value_mark(f, &buf), "\"%s\": must be at most %zu characters long (got %zu)",
             f->path, max, len);
        return -ERANGE;
    }
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f) {
            fail(ld, value_mark(f, &buf), "\"%s\": must not contain control characters", f->path);
            return -EINVAL;
        }
    }
    *out = strndup(text, len);
    if (!*out) {
        fail(ld, NULL, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

static bool id_shaped(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
            return false;
    return true;
}

/* An id, a policy or an action name: [a-z0-9][a-z0-9_-]*, at most RB_ID_MAX_LEN. */
static int get_id(struct loader *ld, const struct field *f, char **out)
{
    struct fy_mark buf;
    int r = get_string(ld, f, RB_ID_MAX_LEN, out);

    if (r < 0)
        return r;
    if (!id_shaped(*out)) {
        char shown[VG_YAML_QUOTE_MAX + 1];
        fail(ld, value_mark(f, &buf),
             "\"%s\": must be lower-case letters, digits, '-' and '_' (got \"%s\")", f->path,
             vg_yaml_quotable(*out, strlen(*out), shown, sizeof(shown)));
        free(*out);
        *out = NULL;
        return -EINVAL;
    }
    return 0;
}

static int get_number(struct loader *ld, const struct field *f, double *out)
{
    struct fy_mark buf;
    char text[NUMBER_TEXT_MAX + 1], shown[VG_YAML_QUOTE_MAX + 1];
    size_t len = 0;
    const char *s = scalar_text(ld, f, "a number", &len);
    char *end;
    double v;

    if (!s)
        return -EINVAL;
    vg_yaml_quotable(s, len, shown, sizeof(shown));
    if (len > NUMBER_TEXT_MAX) {
        fail(ld, value_mark(f, &buf), "\"%s\": must be a number (got \"%s\")", f->path, shown);
        return -EINVAL;
    }
    memcpy(text, s, len);
    text[len] = '\0';
    errno = 0;
    v = strtod(text, &end);
    if (end == text || *end != '\0' || errno == ERANGE || !isfinite(v)) {
        fail(ld, value_mark(f, &buf), "\"%s\": must be a number (got \"%s\")", f->path, shown);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static void format_duration(int64_t v, char *buf, size_t len)
{
    if (v == 0)
        snprintf(buf, len, "0s");
    else if (v % MS_PER_D == 0)
        snprintf(buf, len, "%" PRId64 "d", v / MS_PER_D);
    else if (v % MS_PER_H == 0)
        snprintf(buf, len, "%" PRId64 "h", v / MS_PER_H);
    else if (v % MS_PER_M == 0)
        snprintf(buf, len, "%" PRId64 "m", v / MS_PER_M);
    else if (v % MS_PER_S == 0)
        snprintf(buf, len, "%" PRId64 "s", v / MS_PER_S);
    else
        snprintf(buf, len, "%" PRId64 "ms", v);
}

static int get_duration(struct loader *ld, const struct field *f, int64_t min, int64_t max,
                        int64_t *out)
{
    struct fy_mark buf;
    char shown[VG_YAML_QUOTE_MAX + 1], lo[32], hi[32];
    size_t len = 0;
    const char *s = scalar_text(ld, f, "a duration", &len);
    int64_t v = 0;
    int r = -EINVAL;

    if (!s)
        return -EINVAL;
    vg_yaml_quotable(s, len, shown, sizeof(shown));
    if (len <= NUMBER_TEXT_MAX) {
        char text[NUMBER_TEXT_MAX + 1];
        memcpy(text, s, len);
        text[len] = '\0';
        r = vg_parse_duration_ms(text, &v);
    }
    format_duration(min, lo, sizeof(lo));
    format_duration(max, hi, sizeof(hi));
    if (r == -EINVAL) {
        fail(ld, value_mark(f, &buf),
             "\"%s\": must be a duration such as 30s, 5m or 1h (got \"%s\")", f->path, shown);
        return r;
    }
    if (r < 0 || v < min || v > max) {
        fail(ld, value_mark(f, &buf), "\"%s\": must be between %s and %s (got \"%s\")", f->path, lo,
             hi, shown);
        return -ERANGE;
    }
    *out = v;
    return 0;
}

static int get_int(struct loader *ld, const struct field *f, int64_t min, int64_t max, int *out)
{
    struct fy_mark buf;
    char shown[VG_YAML_QUOTE_MAX + 1];
    size_t len = 0;
    const char *s = scalar_text(ld, f, "an integer", &len);
    int64_t v = 0;
    int r = -EINVAL;

    if (!s)
        return -EINVAL;
    vg_yaml_quotable(s, len, shown, sizeof(shown));
    if (len <= NUMBER_TEXT_MAX) {
        char text[NUMBER_TEXT_MAX + 1];
        memcpy(text, s, len);
        text[len] = '\0';
        r = vg_parse_int(text, &v);
    }
    if (r < 0 || v < min || v > max) {
        fail(ld, value_mark(f, &buf),
             "\"%s\": must be an integer between %" PRId64 " and %" PRId64 " (got \"%s\")", f->path,
             min, max, shown);
        return -EINVAL;
    }
    *out = (int)v;
    return 0;
}

static int get_severity(struct loader *ld, const struct field *f, enum rb_severity *out)
{
    static const enum rb_severity all[] = {RB_SEV1, RB_SEV2, RB_SEV3, RB_SEV4};
    struct fy_mark buf;
    char shown[VG_YAML_QUOTE_MAX + 1];
    size_t len = 0;
    const char *s = scalar_text(ld, f, "a severity", &len);

    if (!s)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (len == 4 && memcmp(s, rb_severity_name(all[i]), 4) == 0) {
            *out = all[i];
            return 0;
        }
    }
    fail(ld, value_mark(f, &buf), "\"%s\": must be SEV1, SEV2, SEV3 or SEV4 (got \"%s\")", f->path,
         vg_yaml_quotable(s, len, shown, sizeof(shown)));
    return -EINVAL;
}

/* A sequence of at most max items (an empty value is an empty sequence). */
static int get_sequence(struct loader *ld, const struct field *f, size_t max, size_t *count)
{
    *count = 0;
    if (vg_yaml_is_empty(f->value))
        return 0;
    if (!fy_node_is_sequence(f->value)) {
        fail(ld, &f->key_mark, "\"%s\": must be a sequence, not %s", f->path,
             vg_yaml_kind_of(f->value));
        return -EINVAL;
    }
    *count = (size_t)fy_node_sequence_item_count(f->value);
    if (*count > max) {
        fail(ld, &f->key_mark, "\"%s\": at most %zu entries (got %zu)", f->path, max, *count);
        return -ERANGE;
    }
    return 0;
}

/* The value of key in labels, or NULL. */
static const char *label(const struct rb_label *labels, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(labels[i].key, key) == 0)
            return labels[i].value;
    return NULL;
}

/* A mapping of names to scalar values (labels, args). */
static int get_labels(struct loader *ld, const struct field *f, struct rb_label **out, size_t *nout)
{
    struct fy_node_pair *pair;
    void *iter = NULL;
    size_t n;
    int r = 0;

    if (vg_yaml_is_empty(f->value))
        return 0;
    if (!fy_node_is_mapping(f->value)) {
        fail(ld, &f->key_mark, "\"%s\": must be a mapping of names to values, not %s", f->path,
             vg_yaml_kind_of(f->value));
        return -EINVAL;
    }
    n = (size_t)fy_node_mapping_item_count(f->value);
    if (n > RB_MAX_LABELS) {
        fail(ld, &f->key_mark, "\"%s\": at most %d entries (got %zu)", f->path, RB_MAX_LABELS, n);
        return -ERANGE;
    }
    if (n == 0)
        return 0;
    *out = calloc(n, sizeof(**out));
    if (!*out) {
        fail(ld, NULL, "out of memory");
        return -ENOMEM;
    }
    while (r == 0 && (pair = fy_node_mapping_iterate(f->value, &iter))) {
        struct field kf = {.value = fy_node_pair_key(pair), .key_mark = f->key_mark};
        struct field vf = {.value = fy_node_pair_value(pair), .key_mark = f->key_mark};
        struct rb_label *l = &(*out)[*nout];
        struct fy_mark buf;

        kf.path = vf.path = f->path;
        if (vg_yaml_scalar_mark(kf.value, &buf))
            vf.key_mark = buf;
        (*nout)++;
        r = get_string(ld, &kf, LABEL_KEY_MAX_LEN, &l->key);
        if (r == 0)
            r = get_string(ld, &vf, LABEL_VALUE_MAX_LEN, &l->value);
    }
    return r;
}

/* ---- conditions ---- */

/* The keys a symptom or a verify entry may hold; the bits say which place allows which. */
enum cond_key {
    CK_ID,
    CK_SIGNAL,
    CK_LABELS,
    CK_RATIO,
    CK_ABSENT,
    CK_PROMQL,
    CK_ABOVE,
    CK_BELOW,
    CK_AT_LEAST,
    CK_AT_MOST,
    CK_FOR,
    CK_SCOPE,
    CK_SEVERITY,
    CK_SEVERITY_ALL,
    CK_HOLD,
    CK_COUNT
};

static const char *const cond_keys[CK_COUNT] = {
    "id",       "signal",  "labels", "ratio", "absent",   "promql",       "above", "below",
    "at_least", "at_most", "for",    "scope", "severity", "severity_all", "hold",
};

#define BIT(k) (UINT32_C(1) << (k))
#define CK_CONDITION                                                                               \
    (BIT(CK_SIGNAL) | BIT(CK_LABELS) | BIT(CK_RATIO) | BIT(CK_PROMQL) | BIT(CK_ABOVE) |            \
     BIT(CK_BELOW) | BIT(CK_AT_LEAST) | BIT(CK_AT_MOST) | BIT(CK_FOR) | BIT(CK_SCOPE))
#define CK_SYMPTOM                                                                                 \
    (CK_CONDITION | BIT(CK_ID) | BIT(CK_ABSENT) | BIT(CK_SEVERITY) | BIT(CK_SEVERITY_ALL))
#define CK_VERIFY (CK_CONDITION | BIT(CK_HOLD))

/* Signal name and labels, from the fields of whichever mapping holds them. */
static int get_match(struct loader *ld, const struct field *signal, const struct field *labels,
                     struct rb_match *m)
{
    struct fy_mark buf;
    int r = get_string(ld, signal, SIGNAL_MAX_LEN, &m->signal);

    if (r < 0)
        return r;
    if (!runbook_signal_known(m->signal)) {
        char shown[VG_YAML_QUOTE_MAX + 1];
        fail(ld, value_mark(signal, &buf),
             "\"%s\": unknown signal \"%s\" (see the README's \"Signals\"; alerts are "
             "alert.<alertname>)",
             signal->path, vg_yaml_quotable(m->signal, strlen(m->signal), shown, sizeof(shown)));
        return -EINVAL;
    }
    return labels ? get_labels(ld, labels, &m->labels, &m->nlabels) : 0;
}

/* {signal, labels} under a ratio. */
static int get_match_map(struct loader *ld, const struct field *f, struct rb_match *m)
{
    static const char *const names[] = {"signal", "labels"};
    struct field fields[2];
    int r = take_keys(ld, f->value, f->path, &f->key_mark, names, 2, 3, fields);

    if (r == 0)
        r = need(ld, &fields[0], &f->key_mark);
    return r < 0 ? r : get_match(ld, &fields[0], &fields[1], m);
}

static int get_ratio(struct loader *ld, const struct field *f, struct rb_condition *c)
{
    static const char *const names[] = {"numerator", "denominator", "window", "min_count"};
    struct field fields[4];
    int r = take_keys(ld, f->value, f->path, &f->key_mark, names, 4, 15, fields);

    for (size_t i = 0; r == 0 && i < 3; i++)
        r = need(ld, &fields[i], &f->key_mark);
    if (r == 0)
        r = get_match_map(ld, &fields[0], &c->numerator);
    if (r == 0)
        r = get_match_map(ld, &fields[1], &c->denominator);
    if (r == 0)
        r = get_duration(ld, &fields[2], 10 * MS_PER_S, MS_PER_D, &c->window_ms);
    c->min_count = 1;
    if (r == 0 && fields[3].value)
        r = get_int(ld, &fields[3], 1, 1000000000, &c->min_count);
    return r;
}

static int get_absent(struct loader *ld, const struct field *f, struct rb_condition *c)
{
    static const char *const names[] = {"signal", "labels", "for"};
    struct field fields[3];
    int r = take_keys(ld, f->value, f->path, &f->key_mark, names, 3, 7, fields);

    if (r == 0)
        r = need(ld, &fields[0], &f->key_mark);
    if (r == 0)
        r = need(ld, &fields[2], &f->key_mark);
    if (r == 0)
        r = get_match(ld, &fields[0], &fields[1], &c->match);
    if (r == 0)
        r = get_duration(ld, &fields[2], MS_PER_S, MS_PER_D, &c->absent_ms);
    return r;
}

static int get_promql(struct loader *ld, const struct field *f, struct rb_condition *c)
{
    static const char *const names[] = {"query", "interval"};
    struct field fields[2];
    int r = take_keys(ld, f->value, f->path, &f->key_mark, names, 2, 3, fields);

    c->interval_ms = 30 * MS_PER_S;
    if (r == 0)
        r = need(ld, &fields[0], &f->key_mark);
    if (r == 0)
        r = get_string(ld, &fields[0], PROMQL_MAX_LEN, &c->promql);
    if (r == 0 && present(&fields[1]))
        r = get_duration(ld, &fields[1], MS_PER_S, MS_PER_H, &c->interval_ms);
    return r;
}

static const char *op_key(enum rb_op op)
{
    switch (op) {
    case RB_OP_GT:
        return "above";
    case RB_OP_GE:
        return "at_least";
    case RB_OP_LT:
        return "below";
    case RB_OP_LE:
        return "at_most";
    }
    return "?";
}

/*
 * The comparison: "above: 5" (one level: warning = critical = 5) or "above: {warning: 1,
 * critical: 5, clear: 0.8}". For above/at_least, warning <= critical and clear <= warning;
 * below/at_most mirror it.
 */
static int get_levels(struct loader *ld, const struct field *f, struct rb_condition *c)
{
    static const char *const names[] = {"warning", "critical", "clear"};
    struct field fields[3];
    bool upward = c->op == RB_OP_GT || c->op == RB_OP_GE;
    struct fy_mark buf;
    int r;

    c->clear = NAN;
    if (!vg_yaml_is_empty(f->value) && fy_node_is_scalar(f->value)) {
        r = get_number(ld, f, &c->warning);
        c->critical = c->warning;
        return r;
    }
    r = take_keys(ld, f->value, f->path, &f->key_mark, names, 3, 7, fields);
    if (r < 0)
        return r;
    if (!present(&fields[0]) && !present(&fields[1])) {
        fail(ld, &f->key_mark, "\"%s\": needs a warning or a critical level (or one number)",
             f->path);
        return -EINVAL;
    }
    c->critical = NAN;
    if (present(&fields[0]) && (r = get_number(ld, &fields[0], &c->warning)) < 0)
        return r;
    if (present(&fields[1]) && (r = get_number(ld, &fields[1], &c->critical)) < 0)
        return r;
    if (!present(&fields[0]))
        c->warning = c->critical;
    if (present(&fields[2]) && (r = get_number(ld, &fields[2], &c->clear)) < 0)
        return r;
    if (present(&fields[0]) && present(&fields[1]) &&
        (upward ? c->warning > c->critical : c->warning < c->critical)) {
        fail(ld, value_mark(&fields[1], &buf),
             "\"%s\": the critical level (%g) must be %s the warning level (%g) for \"%s\"",
             fields[1].path, c->critical, upward ? "at or above" : "at or below", c->warning,
             op_key(c->op));
        return -EINVAL;
    }
    if (present(&fields[2]) && (upward ? c->clear > c->warning : c->clear < c->warning)) {
        fail(ld, value_mark(&fields[2], &buf),
             "\"%s\": the clear level (%g) must be %s the warning level (%g) for \"%s\"",
             fields[2].path, c->clear, upward ? "at or below" : "at or above", c->warning,
             op_key(c->op));
        return -EINVAL;
    }
    return 0;
}

static int get_scope(struct loader *ld, const struct field *f, struct rb_scope *scope)
{
    static const char *const names[] = {"fraction"};
    struct field fraction;
    struct fy_mark buf;
    size_t len = 0;
    const char *s;

    if (!vg_yaml_is_empty(f->value) && fy_node_is_mapping(f->value)) {
        int r = take_keys(ld, f->value, f->path, &f->key_mark, names, 1, 1, &fraction);
        if (r == 0)
            r = need(ld, &fraction, &f->key_mark);
        if (r == 0)
            r = get_number(ld, &fraction, &scope->fraction);
        if (r < 0)
            return r;
        if (!(scope->fraction > 0 && scope->fraction <= 1)) {
            fail(ld, value_mark(&fraction, &buf),
                 "\"%s\": must be greater than 0 and at most 1 (got %g)", fraction.path,
                 scope->fraction);
            return -ERANGE;
        }
        scope->kind = RB_SCOPE_FRACTION;
        return 0;
    }
    s = scalar_text(ld, f, "node, any, all or {fraction: F}", &len);
    if (!s)
        return -EINVAL;
    if (len == 4 && memcmp(s, "node", 4) == 0)
        scope->kind = RB_SCOPE_NODE;
    else if (len == 3 && memcmp(s, "any", 3) == 0)
        scope->kind = RB_SCOPE_ANY;
    else if (len == 3 && memcmp(s, "all", 3) == 0)
        scope->kind = RB_SCOPE_ALL;
    else {
        char shown[VG_YAML_QUOTE_MAX + 1];
        fail(ld, value_mark(f, &buf),
             "\"%s\": must be node, any, all or {fraction: F} (got \"%s\")", f->path,
             vg_yaml_quotable(s, len, shown, sizeof(shown)));
        return -EINVAL;
    }
    scope->fraction = 0;
    return 0;
}

/* The last part of a field's path: its key. */
static const char *key_of(const struct field *f)
{
    const char *dot = strrchr(f->path, '.');
    return dot ? dot + 1 : f->path;
}

/* Two keys that exclude each other: named in file order, pointed at the later one. */
static int conflict(struct loader *ld, const char *path, const struct field *a,
                    const struct field *b)
{
    bool a_first = a->key_mark.line < b->key_mark.line || (a->key_mark.line == b->key_mark.line &&
                                                           a->key_mark.column < b->key_mark.column);
    const struct field *first = a_first ? a : b, *second = a_first ? b : a;

    fail(ld, &second->key_mark, "\"%s\": \"%s\" and \"%s\" cannot be combined", path, key_of(first),
         key_of(second));
    return -EINVAL;
}

/* The condition part of a symptom or verify mapping whose keys are in fields[]. */
static int get_condition(struct loader *ld, struct field *fields, const char *path,
                         const struct fy_mark *where, struct rb_condition *c)
{
    static const enum cond_key kinds[] = {CK_SIGNAL, CK_RATIO, CK_ABSENT, CK_PROMQL};
    static const enum cond_key ops[] = {CK_ABOVE, CK_AT_LEAST, CK_BELOW, CK_AT_MOST};
    static const enum rb_op op_of[] = {RB_OP_GT, RB_OP_GE, RB_OP_LT, RB_OP_LE};
    const struct field *kind = NULL, *op = NULL;
    int r;

    c->line = where ? where->line + 1 : 0;
    c->column = where ? where->column + 1 : 0;
    c->warning = c->critical = c->clear = NAN;
    c->scope.kind = RB_SCOPE_NODE;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (!present(&fields[kinds[i]]))
            continue;
        if (kind)
            return conflict(ld, path, kind, &fields[kinds[i]]);
        kind = &fields[kinds[i]];
        c->kind = i == 0   ? RB_COND_THRESHOLD
                  : i == 1 ? RB_COND_RATIO
                  : i == 2 ? RB_COND_ABSENCE
                           : RB_COND_PROMQL;
        c->line = kind->key_mark.line + 1;
        c->column = kind->key_mark.column + 1;
    }
    if (!kind) {
        fail(ld, where, "\"%s\": needs one of signal, ratio, absent or promql", path);
        return -EINVAL;
    }
    if (present(&fields[CK_LABELS]) && c->kind != RB_COND_THRESHOLD) {
        fail(ld, &fields[CK_LABELS].key_mark,
             "\"%s\": labels go with signal (inside ratio and absent, next to their signal)",
             fields[CK_LABELS].path);
        return -EINVAL;
    }
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (!present(&fields[ops[i]]))
            continue;
        if (op)
            return conflict(ld, path, op, &fields[ops[i]]);
        if (c->kind == RB_COND_ABSENCE) {
            fail(ld, &fields[ops[i]].key_mark, "\"%s\": absent takes no comparison",
                 fields[ops[i]].path);
            return -EINVAL;
        }
        op = &fields[ops[i]];
        c->op = op_of[i];
    }
    if (!op && c->kind != RB_COND_ABSENCE) {
        fail(ld, &kind->key_mark, "\"%s\": needs a comparison: above, below, at_least or at_most",
             path);
        return -EINVAL;
    }
    if (c->kind == RB_COND_ABSENCE && present(&fields[CK_FOR])) {
        fail(ld, &fields[CK_FOR].key_mark, "\"%s\": absent has its own \"for\" inside it",
             fields[CK_FOR].path);
        return -EINVAL;
    }
    if (c->kind == RB_COND_PROMQL && present(&fields[CK_SCOPE])) {
        fail(ld, &fields[CK_SCOPE].key_mark,
             "\"%s\": a promql query yields one number; scope does not apply",
             fields[CK_SCOPE].path);
        return -EINVAL;
    }
    if (c->kind == RB_COND_PROMQL)
        c->scope.kind = RB_SCOPE_ANY;

    switch (c->kind) {
    case RB_COND_THRESHOLD:
        r = get_match(ld, kind, &fields[CK_LABELS], &c->match);
        break;
    case RB_COND_RATIO:
        r = get_ratio(ld, kind, c);
        break;
    case RB_COND_ABSENCE:
        r = get_absent(ld, kind, c);
        break;
    default:
        r = get_promql(ld, kind, c);
        break;
    }
    if (r == 0 && op)
        r = get_levels(ld, op, c);
    if (r == 0 && present(&fields[CK_FOR]))
        r = get_duration(ld, &fields[CK_FOR], 0, MS_PER_D, &c->for_ms);
    if (r == 0 && present(&fields[CK_SCOPE]))
        r = get_scope(ld, &fields[CK_SCOPE], &c->scope);
    return r;
}

/* ---- the runbook ---- */

static int get_symptom(struct loader *ld, struct fy_node *node, const char *path,
                       const struct fy_mark *where, enum rb_severity runbook_severity,
                       struct rb_symptom *s)
{
    struct field fields[CK_COUNT];
    struct fy_mark buf;
    const struct fy_mark *at = vg_yaml_node_mark(node, &buf, where);
    int r = take_keys(ld, node, path, at, cond_keys, CK_COUNT, CK_SYMPTOM, fields);

    if (r == 0)
        r = need(ld, &fields[CK_ID], at);
    if (r == 0)
        r = get_id(ld, &fields[CK_ID], &s->id);
    if (r == 0)
        r = get_condition(ld, fields, path, at, &s->cond);
    if (r == 0 && present(&fields[CK_SEVERITY]))
        r = get_severity(ld, &fields[CK_SEVERITY], &s->severity);
    if (r == 0 && present(&fields[CK_SEVERITY_ALL])) {
        r = get_severity(ld, &fields[CK_SEVERITY_ALL], &s->severity_all);
        enum rb_severity base = s->severity != RB_SEV_NONE ? s->severity : runbook_severity;
        if (r == 0 && s->cond.scope.kind != RB_SCOPE_ANY &&
            s->cond.scope.kind != RB_SCOPE_FRACTION) {
            fail(ld, &fields[CK_SEVERITY_ALL].key_mark,
                 "\"%s\": needs scope any or {fraction: F} (the scope must be able to grow)",
                 fields[CK_SEVERITY_ALL].path);
            r = -EINVAL;
        } else if (r == 0 && base != RB_SEV_NONE && s->severity_all > base) {
            fail(ld, value_mark(&fields[CK_SEVERITY_ALL], &buf),
                 "\"%s\": must be at least as severe as %s (severity rises as the scope grows)",
                 fields[CK_SEVERITY_ALL].path, rb_severity_name(base));
            r = -EINVAL;
        }
    }
    return r;
}

static int get_verify(struct loader *ld, struct fy_node *node, const char *path,
                      const struct fy_mark *where, struct rb_verify *v)
{
    struct field fields[CK_COUNT];
    struct fy_mark buf;
    const struct fy_mark *at = vg_yaml_node_mark(node, &buf, where);
    int r = take_keys(ld, node, path, at, cond_keys, CK_COUNT, CK_VERIFY, fields);

    if (r == 0 && !present(&fields[CK_HOLD])) {
        fail(ld, at, "\"%s\": needs hold, how long the condition must hold (e.g. hold: 2m)", path);
        r = -EINVAL;
    }
    if (r == 0)
        r = get_condition(ld, fields, path, at, &v->cond);
    if (r == 0)
        r = get_duration(ld, &fields[CK_HOLD], MS_PER_S, MS_PER_D, &v->hold_ms);
    return r;
}

/* Refuses an argument the kind does not take; for log_tail, lines and bytes together. */
static int check_evidence_args(struct loader *ld, const struct field *kind, const struct field *f,
                               const struct rb_evidence *e)
{
    const char *const *allowed = vg_evidence_kind_args(e->kind);
    struct fy_mark buf;

    if (!allowed)
        return 0; /* a kind this table does not know yet: the agent decides */
    for (size_t a = 0; a < e->nargs; a++) {
        const char *hint = NULL;
        size_t best_d = 3;
        bool ok = false;

        for (size_t k = 0; allowed[k]; k++) {
            size_t d = vg_edit_distance(e->args[a].key, allowed[k]);
            ok = ok || d == 0;
            if (d < best_d && d < strlen(e->args[a].key)) {
                best_d = d;
                hint = allowed[k];
            }
        }
        if (ok)
            continue;
        if (!allowed[0])
            fail(ld, &f->key_mark, "\"%s\": %s takes no arguments (got \"%s\")", f->path, e->kind,
                 e->args[a].key);
        else if (hint)
            fail(ld, &f->key_mark, "\"%s\": %s takes no argument \"%s\" (did you mean \"%s\"?)",
                 f->path, e->kind, e->args[a].key, hint);
        else
            fail(ld, &f->key_mark, "\"%s\": %s takes no argument \"%s\"", f->path, e->kind,
                 e->args[a].key);
        return -EINVAL;
    }
    if (strcmp(e->kind, "log_tail") == 0 && label(e->args, e->nargs, "lines") &&
        label(e->args, e->nargs, "bytes")) {
        fail(ld, &f->key_mark, "\"%s\": give lines or bytes, not both", f->path);
        return -EINVAL;
    }
    if (strcmp(e->kind, "file") == 0 && !label(e->args, e->nargs, "path")) {
        fail(ld, value_mark(kind, &buf), "\"%s\": file needs a path argument", f->path);
        return -EINVAL;
    }
    return 0;
}

static int get_evidence(struct loader *ld, struct fy_node *node, const char *path,
                        const struct fy_mark *where, struct rb_evidence *e)
{
    static const char *const names[] = {"kind", "args"};
    struct field fields[2];
    struct fy_mark buf;
    const struct fy_mark *at = vg_yaml_node_mark(node, &buf, where);
    int r = take_keys(ld, node, path, at, names, 2, 3, fields);

    if (r == 0)
        r = need(ld, &fields[0], at);
    if (r == 0)
        r = get_string(ld, &fields[0], VG_MAX_EVIDENCE_KIND_LEN, &e->kind);
    if (r == 0 && !vg_evidence_kind_known(e->kind)) {
        char shown[VG_YAML_QUOTE_MAX + 1];
        fail(ld, value_mark(&fields[0], &buf), "\"%s\": unknown evidence kind \"%s\" (one of %s)",
             fields[0].path, vg_yaml_quotable(e->kind, strlen(e->kind), shown, sizeof(shown)),
             VG_EVIDENCE_KINDS);
        r = -EINVAL;
    }
    if (r == 0)
        r = get_labels(ld, &fields[1], &e->args, &e->nargs);
    if (r == 0)
        r = check_evidence_args(ld, &fields[0], &fields[1], e);
    return r;
}

static int get_action(struct loader *ld, struct fy_node *node, const char *path,
                      const struct fy_mark *where, struct rb_action *a)
{
    static const char *const names[] = {"action", "mode", "args", "max_nodes"};
    struct field fields[4];
    struct fy_mark buf;
    char shown[VG_YAML_QUOTE_MAX + 1];
    const struct fy_mark *at = vg_yaml_node_mark(node, &buf, where);
    size_t len = 0;
    const char *mode;
    int r = take_keys(ld, node, path, at, names, 4, 15, fields);

    if (r == 0)
        r = need(ld, &fields[0], at);
    if (r == 0)
        r = need(ld, &fields[1], at);
    if (r == 0)
        r = get_id(ld, &fields[0], &a->name);
    if (r < 0)
        return r;
    mode = scalar_text(ld, &fields[1], "auto, approve or manual", &len);
    if (!mode)
        return -EINVAL;
    if (len == 4 && memcmp(mode, "auto", 4) == 0) {
        a->mode = RB_MODE_AUTO;
    } else if (len == 7 && memcmp(mode, "approve", 7) == 0) {
        a->mode = RB_MODE_APPROVE;
    } else if (len == 6 && memcmp(mode, "manual", 6) == 0) {
        a->mode = RB_MODE_MANUAL;
    } else {
        fail(ld, value_mark(&fields[1], &buf),
             "\"%s\": must be auto, approve or manual (got \"%s\")", fields[1].path,
             vg_yaml_quotable(mode, len, shown, sizeof(shown)));
        return -EINVAL;
    }
    r = get_labels(ld, &fields[2], &a->args, &a->nargs);
    if (r == 0 && present(&fields[3]))
        r = get_int(ld, &fields[3], 0, 10000, &a->max_nodes);
    return r;
}

/* Allocates and fills an array from a sequence field; *count grows as items are built so a
 * failure frees exactly what exists. */
static int get_items(struct loader *ld, const struct field *f, size_t max, size_t elem_size,
                     void **items, size_t *count,
                     int (*one)(struct loader *, struct fy_node *, const char *,
                                const struct fy_mark *, size_t, void *))
{
    size_t n;
    void *iter = NULL;
    struct fy_node *item;
    int r = get_sequence(ld, f, max, &n);

    if (r < 0 || n == 0)
        return r;
    *items = calloc(n, elem_size);
    if (!*items) {
        fail(ld, NULL, "out of memory");
        return -ENOMEM;
    }
    while ((item = fy_node_sequence_iterate(f->value, &iter))) {
        char path[PATH_TEXT_MAX];
        size_t i = *count;

        snprintf(path, sizeof(path), "%s[%zu]", f->path, i);
        (*count)++;
        r = one(ld, item, path, &f->key_mark, i, (unsigned char *)*items + i * elem_size);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Adapters from get_items' item callback to the typed parsers. */
static int one_symptom(struct loader *ld, struct fy_node *n, const char *path,
                       const struct fy_mark *where, size_t i, void *item)
{
    (void)i;
    return get_symptom(ld, n, path, where, ld->severity, item);
}

static int one_evidence(struct loader *ld, struct fy_node *n, const char *path,
                        const struct fy_mark *where, size_t i, void *item)
{
    (void)i;
    return get_evidence(ld, n, path, where, item);
}

static int one_action(struct loader *ld, struct fy_node *n, const char *path,
                      const struct fy_mark *where, size_t i, void *item)
{
    (void)i;
    return get_action(ld, n, path, where, item);
}

static int one_verify(struct loader *ld, struct fy_node *n, const char *path,
                      const struct fy_mark *where, size_t i, void *item)
{
    (void)i;
    return get_verify(ld, n, path, where, item);
}

static int one_depend(struct loader *ld, struct fy_node *n, const char *path,
                      const struct fy_mark *where, size_t i, void *item)
{
    struct field f = {.value = n, .key_mark = *where, .path = path};
    struct fy_mark buf;
    int r = get_id(ld, &f, item);

    if (r == 0)
        ld->marks.depends[i] = *value_mark(&f, &buf);
    return r;
}

enum rb_key {
    RK_ID,
    RK_TITLE,
    RK_DOC,
    RK_SEVERITY,
    RK_POLICY,
    RK_DEPENDS_ON,
    RK_REOPEN_WINDOW,
    RK_SYMPTOMS,
    RK_INVESTIGATE,
    RK_RESOLVE,
    RK_VERIFY,
    RK_COUNT
};

static const char *const runbook_keys[RK_COUNT] = {
    "id",       "title",       "doc",     "severity", "policy", "depends_on", "reopen_window",
    "symptoms", "investigate", "resolve", "verify",
};

#define DEFAULT_REOPEN_WINDOW_MS (30 * MS_PER_M)

static int get_runbook(struct loader *ld, struct fy_node *root, struct rb_runbook *rb)
{
    struct field f[RK_COUNT];
    struct fy_mark buf;
    const struct fy_mark *at = vg_yaml_node_mark(root, &buf, NULL);
    int r = take_keys(ld, root, "", at, runbook_keys, RK_COUNT, (UINT32_C(1) << RK_COUNT) - 1, f);
    void *items;

    static const enum rb_key required[] = {RK_ID, RK_TITLE, RK_SEVERITY, RK_SYMPTOMS};
    for (size_t i = 0; r == 0 && i < sizeof(required) / sizeof(required[0]); i++)
        r = need(ld, &f[required[i]], at);
    if (r == 0 && (r = get_id(ld, &f[RK_ID], &rb->id)) == 0)
        ld->marks.id = *value_mark(&f[RK_ID], &buf);
    if (r == 0)
        r = get_string(ld, &f[RK_TITLE], TITLE_MAX_LEN, &rb->title);
    if (r == 0)
        r = present(&f[RK_DOC]) ? get_string(ld, &f[RK_DOC], DOC_MAX_LEN, &rb->doc)
                                : ((rb->doc = strdup("")) ? 0 : -ENOMEM);
    if (r == 0)
        r = get_severity(ld, &f[RK_SEVERITY], &rb->severity);
    if (r == 0)
        r = present(&f[RK_POLICY]) ? get_id(ld, &f[RK_POLICY], &rb->policy)
                                   : ((rb->policy = strdup("")) ? 0 : -ENOMEM);
    rb->reopen_window_ms = DEFAULT_REOPEN_WINDOW_MS;
    if (r == 0 && present(&f[RK_REOPEN_WINDOW]))
        r = get_duration(ld, &f[RK_REOPEN_WINDOW], 0, 7 * MS_PER_D, &rb->reopen_window_ms);
    if (r == 0) {
        items = NULL;
        r = get_items(ld, &f[RK_DEPENDS_ON], RB_MAX_DEPENDS, sizeof(char *), &items, &rb->ndepends,
                      one_depend);
        rb->depends_on = items;
    }
    for (size_t i = 0; r == 0 && i < rb->ndepends; i++) {
        if (strcmp(rb->depends_on[i], rb->id) == 0) {
            fail(ld, &ld->marks.depends[i],
                 "\"depends_on[%zu]\": a runbook cannot depend on itself", i);
            r = -EINVAL;
        }
        for (size_t j = 0; r == 0 && j < i; j++) {
            if (strcmp(rb->depends_on[i], rb->depends_on[j]) == 0) {
                fail(ld, &ld->marks.depends[i], "\"depends_on[%zu]\": \"%s\" is listed twice", i,
                     rb->depends_on[i]);
                r = -EINVAL;
            }
        }
    }
    if (r == 0) {
        items = NULL;
        ld->severity = rb->severity;
        r = get_items(ld, &f[RK_SYMPTOMS], RB_MAX_SYMPTOMS, sizeof(struct rb_symptom), &items,
                      &rb->nsymptoms, one_symptom);
        rb->symptoms = items;
    }
    if (r == 0 && rb->nsymptoms == 0) {
        fail(ld, &f[RK_SYMPTOMS].key_mark, "\"symptoms\": needs at least one symptom");
        r = -EINVAL;
    }
    for (size_t i = 1; r == 0 && i < rb->nsymptoms; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(rb->symptoms[i].id, rb->symptoms[j].id) != 0)
                continue;
            struct fy_node *item = fy_node_sequence_get_by_index(f[RK_SYMPTOMS].value, (int)i);
            struct fy_node *idn = fy_node_mapping_lookup_by_string(item, "id", 2);
            fail(ld, vg_yaml_scalar_mark(idn, &buf),
                 "\"symptoms[%zu].id\": \"%s\" is already the id of symptoms[%zu]", i,
                 rb->symptoms[i].id, j);
            r = -EINVAL;
            break;
        }
    }
    if (r == 0) {
        items = NULL;
        r = get_items(ld, &f[RK_INVESTIGATE], RB_MAX_STEPS, sizeof(struct rb_evidence), &items,
                      &rb->ninvestigate, one_evidence);
        rb->investigate = items;
    }
    if (r == 0) {
        items = NULL;
        r = get_items(ld, &f[RK_RESOLVE], RB_MAX_STEPS, sizeof(struct rb_action), &items,
                      &rb->nresolve, one_action);
        rb->resolve = items;
    }
    if (r == 0) {
        items = NULL;
        r = get_items(ld, &f[RK_VERIFY], RB_MAX_STEPS, sizeof(struct rb_verify), &items,
                      &rb->nverify, one_verify);
        rb->verify = items;
    }
    if (r == -ENOMEM)
        fail(ld, NULL, "out of memory");
    return r;
}

/* ---- files and directories ---- */

/* Reads a whole regular file of at most RB_FILE_MAX_BYTES into a new buffer. */
static int read_file(struct loader *ld, char **ret_buf, size_t *ret_len)
{
    struct stat st;
    char *buf = NULL;
    size_t len = 0;
    int fd = open(ld->file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    int r;

    if (fd < 0) {
        r = -errno;
        fail(ld, NULL, "cannot open: %s", strerror(-r));
        return r;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        fail(ld, NULL, "not a regular file");
        r = -EINVAL;
        goto err_close;
    }
    if (st.st_size > RB_FILE_MAX_BYTES) {
        fail(ld, NULL, "too large (%lld bytes; at most %d)", (long long)st.st_size,
             RB_FILE_MAX_BYTES);
        r = -EFBIG;
        goto err_close;
    }
    buf = malloc(RB_FILE_MAX_BYTES + 1);
    if (!buf) {
        fail(ld, NULL, "out of memory");
        r = -ENOMEM;
        goto err_close;
    }
    /* Read to the bound, not to st_size: the file may grow between fstat and read. */
    for (;;) {
        ssize_t n = read(fd, buf + len, RB_FILE_MAX_BYTES + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = -errno;
            fail(ld, NULL, "cannot read: %s", strerror(-r));
            goto err_free;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > RB_FILE_MAX_BYTES) {
            fail(ld, NULL, "too large (more than %d bytes)", RB_FILE_MAX_BYTES);
            r = -EFBIG;
            goto err_free;
        }
    }
    close(fd);
    *ret_buf = buf;
    *ret_len = len;
    return 0;

err_free:
    free(buf);
err_close:
    close(fd);
    return r;
}

/* Parses one file into rb (zeroed by the caller; freed by the caller on error). */
static int load_one(struct loader *ld, struct rb_runbook *rb)
{
    struct fy_parse_cfg pcfg = {0};
    struct fy_diag *diag;
    struct fy_parser *parser = NULL;
    struct fy_document *doc = NULL, *extra = NULL;
    char *text = NULL;
    size_t len = 0;
    int r = read_file(ld, &text, &len);

    if (r < 0)
        return r;
    diag = vg_yaml_diag_new();
    if (!diag) {
        fail(ld, NULL, "cannot create the YAML diagnostics object");
        r = -ENOMEM;
        goto err_free_text;
    }
    pcfg.flags = FYPCF_QUIET;
    pcfg.diag = diag;
    parser = fy_parser_create(&pcfg);
    if (!parser || fy_parser_set_string(parser, text, len) != 0) {
        fail(ld, NULL, "cannot create the YAML parser");
        r = -ENOMEM;
        goto err_destroy_parser;
    }
    doc = fy_parse_load_document(parser);
    if (doc && (extra = fy_parse_load_document(parser))) {
        struct fy_document_state *fyds = fy_document_get_document_state(extra);
        fail(ld, fyds ? fy_document_state_start_mark(fyds) : NULL,
             "only one YAML document (one runbook) is allowed in a file");
        r = -EINVAL;
        goto err_destroy_docs;
    }
    if (fy_parser_get_stream_error(parser) || fy_diag_got_error(diag)) {
        if (!vg_yaml_parse_error(diag, ld->file, ld->err, ld->errlen))
            fail(ld, NULL, "cannot parse the YAML");
        r = -EINVAL;
        goto err_destroy_docs;
    }
    if (!doc || vg_yaml_is_empty(fy_document_root(doc))) {
        fail(ld, NULL, "empty: a runbook needs at least id, title, severity and symptoms");
        r = -EINVAL;
        goto err_destroy_docs;
    }
    r = get_runbook(ld, fy_document_root(doc), rb);
    if (r == 0 && !(rb->file = strdup(ld->file))) {
        fail(ld, NULL, "out of memory");
        r = -ENOMEM;
    }

err_destroy_docs:
    if (extra)
        fy_parse_document_destroy(parser, extra);
    if (doc)
        fy_parse_document_destroy(parser, doc);
err_destroy_parser:
    if (parser)
        fy_parser_destroy(parser);
    fy_diag_destroy(diag);
err_free_text:
    free(text);
    return r;
}

static struct rb_set *set_new(size_t capacity)
{
    struct rb_set *set = calloc(1, sizeof(*set));

    if (set && capacity > 0 && !(set->runbooks = calloc(capacity, sizeof(*set->runbooks)))) {
        free(set);
        set = NULL;
    }
    return set;
}

struct rb_set *runbooks_load_file(const char *path, char *err, size_t errlen)
{
    struct loader ld = {.file = path, .err = err, .errlen = errlen};
    struct rb_set *set = set_new(1);

    if (!set) {
        fail(&ld, NULL, "out of memory");
        return NULL;
    }
    set->n = 1;
    if (load_one(&ld, &set->runbooks[0]) < 0)
        runbooks_free(&set);
    return set;
}

static int yaml_name(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return d->d_name[0] != '.' && n > 5 && strcmp(d->d_name + n - 5, ".yaml") == 0;
}

/* Depth-first search for a depends_on cycle through runbook i; state 1 = on the path. */
static bool has_cycle(const struct rb_set *set, size_t i, unsigned char *state)
{
    if (state[i] == 1)
        return true;
    if (state[i] == 2)
        return false;
    state[i] = 1;
    for (size_t d = 0; d < set->runbooks[i].ndepends; d++) {
        const struct rb_runbook *dep = runbooks_find(set, set->runbooks[i].depends_on[d]);
        if (dep && has_cycle(set, (size_t)(dep - set->runbooks), state))
            return true;
    }
    state[i] = 2;
    return false;
}

/* The set-level checks: unique ids, depends_on resolvable, no cycles. */
static int check_set(const struct rb_set *set, const struct rb_marks *marks, char *err,
                     size_t errlen)
{
    unsigned char state[RB_SET_MAX_RUNBOOKS];

    for (size_t i = 0; i < set->n; i++) {
        const struct rb_runbook *rb = &set->runbooks[i];
        struct loader ld = {.file = rb->file, .err = err, .errlen = errlen};

        for (size_t j = 0; j < i; j++) {
            if (strcmp(rb->id, set->runbooks[j].id) == 0) {
                fail(&ld, &marks[i].id, "\"id\": runbook \"%s\" is already defined in %s", rb->id,
                     set->runbooks[j].file);
                return -EINVAL;
            }
        }
        for (size_t d = 0; d < rb->ndepends; d++) {
            if (!runbooks_find(set, rb->depends_on[d])) {
                fail(&ld, &marks[i].depends[d], "\"depends_on[%zu]\": no runbook \"%s\" in the set",
                     d, rb->depends_on[d]);
                return -EINVAL;
            }
        }
    }
    for (size_t i = 0; i < set->n; i++) {
        memset(state, 0, sizeof(state));
        if (has_cycle(set, i, state)) {
            struct loader ld = {.file = set->runbooks[i].file, .err = err, .errlen = errlen};
            fail(&ld, &marks[i].id,
                 "\"depends_on\": runbook \"%s\" depends on itself through "
                 "other runbooks",
                 set->runbooks[i].id);
            return -EINVAL;
        }
    }
    return 0;
}

struct rb_set *runbooks_load_dir(const char *dir, char *err, size_t errlen)
{
    struct dirent **names = NULL;
    struct rb_marks *marks = NULL;
    struct rb_set *set = NULL;
    int n = scandir(dir, &names, yaml_name, alphasort);
    int r = 0;

    if (n < 0) {
        vg_set_err(err, errlen, "%s: cannot read the runbook directory: %s", dir, strerror(errno));
        return NULL;
    }
    if (n > RB_SET_MAX_RUNBOOKS) {
        vg_set_err(err, errlen, "%s: too many runbooks (%d; at most %d)", dir, n,
                   RB_SET_MAX_RUNBOOKS);
        goto out;
    }
    set = set_new((size_t)n);
    marks = calloc(n > 0 ? (size_t)n : 1, sizeof(*marks));
    if (!set || !marks) {
        vg_set_err(err, errlen, "%s: out of memory", dir);
        runbooks_free(&set);
        goto out;
    }
    for (int i = 0; i < n && r == 0; i++) {
        char path[4096];
        struct loader ld = {.file = path, .err = err, .errlen = errlen};

        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name) >= sizeof(path)) {
            vg_set_err(err, errlen, "%s: path too long", dir);
            r = -ENAMETOOLONG;
            break;
        }
        set->n++;
        r = load_one(&ld, &set->runbooks[i]);
        marks[i] = ld.marks;
    }
    if (r == 0)
        r = check_set(set, marks, err, errlen);
    if (r < 0)
        runbooks_free(&set);
    else
        vg_log(VG_LOG_DEBUG, "runbooks loaded dir=%s count=%zu", dir, set->n);
out:
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(marks);
    return set;
}
