/* The Kubernetes probe's decoders: JSON in, numbers and text out (see kube_decode.h). */
#include "kube_decode.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIELD_MAX 256   /* one value in a table or a line, after cleaning */
#define MESSAGE_MAX 512 /* an event's or a condition's message */

/* ---- JSON helpers ------------------------------------------------------------------------ */

/* The value at the path keys (NULL-terminated) under v, or NULL. */
static json_t *at_path(const json_t *v, const char *const *keys)
{
    json_t *cur = (json_t *)v;
    for (; cur && *keys; keys++)
        cur = json_is_object(cur) ? json_object_get(cur, *keys) : NULL;
    return cur;
}
#define AT(v, ...) at_path((v), (const char *const[]){__VA_ARGS__, NULL})

static const char *str_at(const json_t *v)
{
    return json_is_string(v) ? json_string_value(v) : NULL;
}
#define STR(v, ...) str_at(AT((v), __VA_ARGS__))

static double num_or(const json_t *v, double def)
{
    return json_is_number(v) ? json_number_value(v) : def;
}
#define NUM(def, v, ...) num_or(AT((v), __VA_ARGS__), (def))

static const json_t *items_of(const json_t *list)
{
    const json_t *items = AT(list, "items");
    return json_is_array(items) ? items : NULL;
}

/* ---- Quantities and times ---------------------------------------------------------------- */

bool kube_quantity(const char *text, double *ret)
{
    static const struct {
        const char *suffix;
        double factor;
    } suffixes[] = {
        {"Ki", 1024.0},
        {"Mi", 1048576.0},
        {"Gi", 1073741824.0},
        {"Ti", 1099511627776.0},
        {"Pi", 1125899906842624.0},
        {"Ei", 1152921504606846976.0},
        {"n", 1e-9},
        {"u", 1e-6},
        {"m", 1e-3},
        {"k", 1e3},
        {"M", 1e6},
        {"G", 1e9},
        {"T", 1e12},
        {"P", 1e15},
        {"E", 1e18},
        {"", 1.0},
    };
    char *end;

    if (!text || !text[0] || strlen(text) > 64)
        return false;
    /* strtod would take hex, inf and nan: a quantity is decimal. */
    for (const char *p = text; *p; p++) {
        if (!((*p >= '0' && *p <= '9') || *p == '.' || *p == '+' || *p == '-' || *p == 'e' ||
              *p == 'E' || *p == 'K' || *p == 'M' || *p == 'G' || *p == 'T' || *p == 'P' ||
              *p == 'i' || *p == 'n' || *p == 'u' || *p == 'm' || *p == 'k'))
            return false;
    }
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || !isfinite(v))
        return false;
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        if (strcmp(end, suffixes[i].suffix) == 0) {
            v *= suffixes[i].factor;
            if (!isfinite(v))
                return false;
            *ret = v;
            return true;
        }
    }
    return false;
}

bool kube_time(const char *text, time_t *ret)
{
    struct tm tm = {0};
    int year, mon, day, hour, min, sec, consumed = 0;

    if (!text ||
        sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d%n", &year, &mon, &day, &hour, &min, &sec,
               &consumed) != 6 ||
        consumed == 0)
        return false;
    if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60 ||
        year < 1970 || year > 9999)
        return false;
    const char *p = text + consumed;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            ;
    long offset = 0;
    if (*p == '+' || *p == '-') {
        int oh, om;
        if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2)
            return false;
        offset = (oh * 3600L + om * 60L) * (*p == '+' ? 1 : -1);
    } else if (*p != 'Z' && *p != 'z') {
        return false;
    }
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return false;
    *ret = t - offset;
    return true;
}

/* ---- Pods -------------------------------------------------------------------------------- */

static bool condition_true(const json_t *obj, const char *type)
{
    const json_t *conds = AT(obj, "status", "conditions");
    size_t i;
    json_t *c;

    if (!json_is_array(conds))
        return false;
    json_array_foreach(conds, i, c)
    {
        const char *t = STR(c, "type");
        if (t && strcmp(t, type) == 0) {
            const char *s = STR(c, "status");
            return s && strcmp(s, "True") == 0;
        }
    }
    return false;
}

/* fn of every container status of pod (init containers too), summed. */
static double sum_statuses(const json_t *pod, double (*fn)(const json_t *cs))
{
    static const char *const lists[] = {"containerStatuses", "initContainerStatuses"};
    double sum = 0;

    for (size_t l = 0; l < 2; l++) {
        const json_t *statuses = AT(pod, "status", lists[l]);
        size_t i;
        json_t *cs;
        if (!json_is_array(statuses))
            continue;
        json_array_foreach(statuses, i, cs)
        {
            sum += fn(cs);
        }
    }
    return sum;
}

static double restart_count(const json_t *cs)
{
    double n = NUM(0, cs, "restartCount");
    return n > 0 && n < 1e9 ? n : 0;
}

static double crashlooping(const json_t *cs)
{
    const char *reason = STR(cs, "state", "waiting", "reason");
    return reason && strcmp(reason, "CrashLoopBackOff") == 0;
}

static bool terminated_oomkilled(const json_t *cs, const char *state)
{
    const char *reason = STR(cs, state, "terminated", "reason");
    return reason && strcmp(reason, "OOMKilled") == 0;
}

/* A container whose current or last instance was killed for running out of memory. */
static double oomkilled(const json_t *cs)
{
    return terminated_oomkilled(cs, "lastState") || terminated_oomkilled(cs, "state");
}

static double pod_restarts(const json_t *pod)
{
    return sum_statuses(pod, restart_count);
}

static unsigned pod_crashlooping(const json_t *pod)
{
    return (unsigned)sum_statuses(pod, crashlooping);
}

static unsigned pod_oomkilled(const json_t *pod)
{
    return (unsigned)sum_statuses(pod, oomkilled);
}

static bool pod_not_ready(const json_t *pod)
{
    const char *phase = STR(pod, "status", "phase");

    if (!phase)
        return true; /* not even a phase: Pending in all but name */
    if (strcmp(phase, "Succeeded") == 0)
        return false; /* a finished job is not a problem */
    if (strcmp(phase, "Running") == 0)
        return !condition_true(pod, "Ready");
    return true; /* Pending, Failed, Unknown */
}

bool kube_pod_troubled(const json_t *pod)
{
    return pod_not_ready(pod) || pod_restarts(pod) > 0;
}

int kube_decode_pods(const json_t *list, struct kube_pods_summary *ret, kube_pod_fn fn,
                     void *userdata)
{
    const json_t *items = items_of(list);
    struct kube_pods_summary s = {0};
    size_t i;
    json_t *pod;

    if (!items)
        return -EINVAL;
    json_array_foreach(items, i, pod)
    {
        if (!json_is_object(pod))
            continue;
        s.pods++;
        s.not_ready += pod_not_ready(pod);
        s.crashloop += pod_crashlooping(pod);
        s.oomkilled += pod_oomkilled(pod);
        double restarts = pod_restarts(pod);
        const char *name = STR(pod, "metadata", "name");
        if (fn && restarts > 0 && name)
            fn(userdata, name, restarts);
    }
    *ret = s;
    return 0;
}

/* ---- Deployments ------------------------------------------------------------------------- */

static bool deployment_unavailable(const json_t *d)
{
    double desired = NUM(1, d, "spec", "replicas");
    double ready = NUM(0, d, "status", "readyReplicas");
    double unavailable = NUM(0, d, "status", "unavailableReplicas");
    return unavailable > 0 || ready < desired;
}

int kube_decode_deployments(const json_t *list, unsigned *ret_unavailable)
{
    const json_t *items = items_of(list);
    unsigned n = 0;
    size_t i;
    json_t *d;

    if (!items)
        return -EINVAL;
    json_array_foreach(items, i, d)
    {
        if (json_is_object(d))
            n += deployment_unavailable(d);
    }
    *ret_unavailable = n;
    return 0;
}

/* ---- Nodes ------------------------------------------------------------------------------- */

static double quantity_at(const json_t *v)
{
    double q;
    return kube_quantity(str_at(v), &q) ? q : NAN;
}

int kube_decode_nodes(const json_t *list, struct kube_nodes_summary *ret, kube_node_fn fn,
                      void *userdata)
{
    const json_t *items = items_of(list);
    struct kube_nodes_summary s = {0};
    size_t i;
    json_t *node;

    if (!items)
        return -EINVAL;
    json_array_foreach(items, i, node)
    {
        if (!json_is_object(node))
            continue;
        s.not_ready += !condition_true(node, "Ready");
        s.memory_pressure += condition_true(node, "MemoryPressure");
        s.disk_pressure += condition_true(node, "DiskPressure");
        const char *name = STR(node, "metadata", "name");
        if (fn && name)
            fn(userdata, name, quantity_at(AT(node, "status", "allocatable", "cpu")),
               quantity_at(AT(node, "status", "allocatable", "memory")));
    }
    *ret = s;
    return 0;
}

int kube_decode_node_metrics(const json_t *list, kube_node_fn fn, void *userdata)
{
    const json_t *items = items_of(list);
    size_t i;
    json_t *m;

    if (!items)
        return -EINVAL;
    json_array_foreach(items, i, m)
    {
        const char *name = STR(m, "metadata", "name");
        if (name && fn)
            fn(userdata, name, quantity_at(AT(m, "usage", "cpu")),
               quantity_at(AT(m, "usage", "memory")));
    }
    return 0;
}

/* ---- Events ------------------------------------------------------------------------------ */

/* When an event last happened, for the signal: lastTimestamp, else eventTime, else
 * metadata.creationTimestamp; false when none is readable. */
static bool event_last(const json_t *ev, time_t *ret)
{
    return kube_time(STR(ev, "lastTimestamp"), ret) || kube_time(STR(ev, "eventTime"), ret) ||
           kube_time(STR(ev, "metadata", "creationTimestamp"), ret);
}

int kube_decode_warning_events(const json_t *list, time_t now, int64_t window_s, unsigned *ret)
{
    const json_t *items = items_of(list);
    unsigned n = 0;
    size_t i;
    json_t *ev;

    if (!items)
        return -EINVAL;
    json_array_foreach(items, i, ev)
    {
        const char *type = STR(ev, "type");
        time_t t;
        if (!type || strcmp(type, "Warning") != 0 || !event_last(ev, &t))
            continue;
        /* t >= now - window_s, without overflowing either side */
        if (t >= now || (int64_t)now - (int64_t)t <= window_s)
            n++;
    }
    *ret = n;
    return 0;
}

/* ---- Text output ------------------------------------------------------------------------- */

/* s on one line, at most FIELD_MAX - 1 bytes (or size - 1), control characters as '?';
 * "<none>" for NULL or "". */
static const char *clean(const char *s, char *buf, size_t size)
{
    size_t n = 0;

    if (!s || !s[0])
        s = "<none>";
    for (; *s && n + 1 < size; s++)
        buf[n++] = (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s;
    /* Never end inside a UTF-8 sequence. */
    if (*s) {
        while (n > 0 && ((unsigned char)buf[n - 1] & 0xc0) == 0x80)
            n--;
        if (n > 0 && ((unsigned char)buf[n - 1] & 0xc0) == 0xc0)
            n--;
    }
    buf[n] = '\0';
    return buf;
}

static void put(const struct kube_text *out, const char *data, size_t len)
{
    if (len)
        out->write(out->userdata, data, len);
}

static void outf(const struct kube_text *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void outf(const struct kube_text *out, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n > 0)
        put(out, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/* kubectl's age: 45s, 12m, 5h, 3d; "<unknown>" without a time. */
static const char *age(const char *stamp, time_t now, char *buf, size_t size)
{
    time_t t;

    if (!kube_time(stamp, &t)) {
        snprintf(buf, size, "<unknown>");
        return buf;
    }
    long long d = (long long)(now - t);
    if (d < 0)
        d = 0;
    if (d < 120)
        snprintf(buf, size, "%llds", d);
    else if (d < 3 * 3600)
        snprintf(buf, size, "%lldm", d / 60);
    else if (d < 2 * 86400)
        snprintf(buf, size, "%lldh", d / 3600);
    else
        snprintf(buf, size, "%lldd", d / 86400);
    return buf;
}

/* The width of the widest metadata.name in items (at least min, at most 63 + 3). */
static int name_width(const json_t *items, int min)
{
    size_t i, w = (size_t)min;
    json_t *it;

    json_array_foreach(items, i, it)
    {
        const char *name = STR(it, "metadata", "name");
        size_t n = name ? strnlen(name, 64) : 0;
        if (n + 2 > w)
            w = n + 2;
    }
    return (int)w;
}

static void no_items(const struct kube_text *out, const json_t *list, const char *what)
{
    if (!items_of(list))
        outf(out, "error: the answer is not a list of %s\n", what);
    else
        outf(out, "No resources found.\n");
}

/* The pod's STATUS column as kubectl shows it: a waiting or terminated container's reason, else
 * the phase (Terminating when deleted). */
static const char *pod_status(const json_t *pod)
{
    const json_t *statuses = AT(pod, "status", "containerStatuses");
    size_t i;
    json_t *cs;

    if (AT(pod, "metadata", "deletionTimestamp"))
        return "Terminating";
    if (json_is_array(statuses)) {
        json_array_foreach(statuses, i, cs)
        {
            const char *r = STR(cs, "state", "waiting", "reason");
            if (!r)
                r = STR(cs, "state", "terminated", "reason");
            if (r)
                return r;
        }
    }
    const char *reason = STR(pod, "status", "reason"); /* Evicted, NodeLost */
    if (reason)
        return reason;
    const char *phase = STR(pod, "status", "phase");
    return phase ? phase : "Unknown";
}

void kube_text_pods(const struct kube_text *out, const json_t *list, time_t now)
{
    const json_t *items = items_of(list);
    char b1[FIELD_MAX], b2[FIELD_MAX], b3[FIELD_MAX], b4[32];
    size_t i;
    json_t *pod;

    if (!items || json_array_size(items) == 0) {
        no_items(out, list, "pods");
        return;
    }
    int w = name_width(items, 6);
    outf(out, "%-*s%-8s%-20s%-10s%-24s%s\n", w, "NAME", "READY", "STATUS", "RESTARTS", "NODE",
         "AGE");
    json_array_foreach(items, i, pod)
    {
        const json_t *statuses = AT(pod, "status", "containerStatuses");
        const json_t *containers = AT(pod, "spec", "containers");
        size_t total = json_is_array(containers) ? json_array_size(containers) : 0;
        size_t ready = 0, j;
        json_t *cs;
        if (json_is_array(statuses)) {
            json_array_foreach(statuses, j, cs)
            {
                ready += json_is_true(json_object_get(cs, "ready"));
            }
            if (!total)
                total = json_array_size(statuses);
        }
        char readiness[32];
        snprintf(readiness, sizeof(readiness), "%zu/%zu", ready, total);
        const char *created = STR(pod, "status", "startTime");
        if (!created)
            created = STR(pod, "metadata", "creationTimestamp");
        outf(out, "%-*s%-8s%-20s%-10.0f%-24s%s\n", w,
             clean(STR(pod, "metadata", "name"), b1, sizeof(b1)), readiness,
             clean(pod_status(pod), b2, sizeof(b2)), pod_restarts(pod),
             clean(STR(pod, "spec", "nodeName"), b3, sizeof(b3)),
             age(created, now, b4, sizeof(b4)));
    }
}

static void text_state(const struct kube_text *out, const char *title, const json_t *state,
                       time_t now)
{
    char b1[FIELD_MAX], b2[MESSAGE_MAX], b3[32];
    static const char *const kinds[] = {"running", "waiting", "terminated"};

    for (size_t k = 0; k < 3; k++) {
        const json_t *s = AT(state, kinds[k]);
        if (!json_is_object(s))
            continue;
        outf(out, "    %s: %c%s\n", title, kinds[k][0] - 'a' + 'A', kinds[k] + 1);
        if (STR(s, "reason"))
            outf(out, "      Reason: %s\n", clean(STR(s, "reason"), b1, sizeof(b1)));
        if (STR(s, "message"))
            outf(out, "      Message: %s\n", clean(STR(s, "message"), b2, sizeof(b2)));
        if (json_is_number(AT(s, "exitCode")))
            outf(out, "      Exit Code: %.0f\n", NUM(0, s, "exitCode"));
        if (json_is_number(AT(s, "signal")))
            outf(out, "      Signal: %.0f\n", NUM(0, s, "signal"));
        if (STR(s, "startedAt"))
            outf(out, "      Started: %s (%s ago)\n", clean(STR(s, "startedAt"), b1, sizeof(b1)),
                 age(STR(s, "startedAt"), now, b3, sizeof(b3)));
        if (STR(s, "finishedAt"))
            outf(out, "      Finished: %s (%s ago)\n", clean(STR(s, "finishedAt"), b1, sizeof(b1)),
                 age(STR(s, "finishedAt"), now, b3, sizeof(b3)));
        return;
    }
    outf(out, "    %s: <none>\n", title);
}

void kube_text_pod(const struct kube_text *out, const json_t *pod, time_t now)
{
    char b1[FIELD_MAX], b2[MESSAGE_MAX], b3[32];
    static const char *const lists[] = {"initContainerStatuses", "containerStatuses"};
    const json_t *conds = AT(pod, "status", "conditions");
    size_t i;
    json_t *v;

    outf(out, "Name:         %s\n", clean(STR(pod, "metadata", "name"), b1, sizeof(b1)));
    outf(out, "Node:         %s\n", clean(STR(pod, "spec", "nodeName"), b1, sizeof(b1)));
    outf(out, "Start Time:   %s\n", clean(STR(pod, "status", "startTime"), b1, sizeof(b1)));
    outf(out, "Status:       %s\n", clean(STR(pod, "status", "phase"), b1, sizeof(b1)));
    if (STR(pod, "status", "reason"))
        outf(out, "Reason:       %s\n", clean(STR(pod, "status", "reason"), b1, sizeof(b1)));
    if (STR(pod, "status", "message"))
        outf(out, "Message:      %s\n", clean(STR(pod, "status", "message"), b2, sizeof(b2)));
    outf(out, "IP:           %s\n", clean(STR(pod, "status", "podIP"), b1, sizeof(b1)));
    outf(out, "Containers:\n");
    for (size_t l = 0; l < 2; l++) {
        const json_t *statuses = AT(pod, "status", lists[l]);
        if (!json_is_array(statuses))
            continue;
        json_array_foreach(statuses, i, v)
        {
            outf(out, "  %s%s:\n", l == 0 ? "(init) " : "", clean(STR(v, "name"), b1, sizeof(b1)));
            outf(out, "    Image:    %s\n", clean(STR(v, "image"), b1, sizeof(b1)));
            text_state(out, "State", AT(v, "state"), now);
            if (json_object_size(AT(v, "lastState")) > 0)
                text_state(out, "Last State", AT(v, "lastState"), now);
            outf(out, "    Ready:    %s\n", json_is_true(AT(v, "ready")) ? "True" : "False");
            outf(out, "    Restart Count: %.0f\n", NUM(0, v, "restartCount"));
        }
    }
    outf(out, "Conditions:\n  Type              Status  Reason / Message\n");
    if (json_is_array(conds)) {
        json_array_foreach(conds, i, v)
        {
            outf(out, "  %-18s%-8s", clean(STR(v, "type"), b1, sizeof(b1)),
                 clean(STR(v, "status"), b3, sizeof(b3)));
            if (STR(v, "reason") || STR(v, "message"))
                outf(out, "%s%s%s", STR(v, "reason") ? clean(STR(v, "reason"), b1, sizeof(b1)) : "",
                     STR(v, "message") ? " " : "",
                     STR(v, "message") ? clean(STR(v, "message"), b2, sizeof(b2)) : "");
            if (STR(v, "lastTransitionTime"))
                outf(out, " (%s ago)", age(STR(v, "lastTransitionTime"), now, b3, sizeof(b3)));
            outf(out, "\n");
        }
    }
}

/* For sorting events: Warnings first, then the most recent first. */
struct event_ref {
    const json_t *ev;
    bool warning;
    time_t last;
};

static time_t event_time(const json_t *ev)
{
    static const char *const fields[] = {"lastTimestamp", "eventTime", "firstTimestamp"};
    time_t t;

    for (size_t i = 0; i < 3; i++) {
        if (kube_time(STR(ev, fields[i]), &t))
            return t;
    }
    if (kube_time(STR(ev, "metadata", "creationTimestamp"), &t))
        return t;
    return 0;
}

static int event_order(const void *a, const void *b)
{
    const struct event_ref *x = a, *y = b;
    if (x->warning != y->warning)
        return x->warning ? -1 : 1;
    return x->last > y->last ? -1 : x->last < y->last ? 1 : 0;
}

void kube_text_events(const struct kube_text *out, const json_t *list, time_t now, size_t max)
{
    const json_t *items = items_of(list);
    char b1[FIELD_MAX], b2[FIELD_MAX], b3[FIELD_MAX], b4[MESSAGE_MAX];
    size_t i, n = 0;
    json_t *ev;

    if (!items || json_array_size(items) == 0) {
        no_items(out, list, "events");
        return;
    }
    struct event_ref *refs = calloc(json_array_size(items), sizeof(*refs));
    if (!refs) {
        outf(out, "error: out of memory\n");
        return;
    }
    json_array_foreach(items, i, ev)
    {
        if (!json_is_object(ev))
            continue;
        const char *type = STR(ev, "type");
        refs[n++] = (struct event_ref){ev, type && strcmp(type, "Normal") != 0, event_time(ev)};
    }
    qsort(refs, n, sizeof(*refs), event_order);
    outf(out, "%-10s%-8s%-9s%-22s%-40s%s\n", "LAST SEEN", "TYPE", "COUNT", "REASON", "OBJECT",
         "MESSAGE");
    for (i = 0; i < n && i < max; i++) {
        const json_t *e = refs[i].ev;
        char object[2 * FIELD_MAX + 2];
        char kind[FIELD_MAX];
        snprintf(object, sizeof(object), "%s/%s",
                 clean(STR(e, "involvedObject", "kind"), kind, sizeof(kind)),
                 clean(STR(e, "involvedObject", "name"), b3, sizeof(b3)));
        time_t t = refs[i].last;
        char seen[32];
        if (t) {
            char stamp[32];
            struct tm tm;
            gmtime_r(&t, &tm);
            strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
            age(stamp, now, seen, sizeof(seen));
        } else {
            snprintf(seen, sizeof(seen), "<unknown>");
        }
        double count = NUM(1, e, "count");
        outf(out, "%-10s%-8s%-9.0f%-22s%-40s%s\n", seen, clean(STR(e, "type"), b1, sizeof(b1)),
             count, clean(STR(e, "reason"), b2, sizeof(b2)), object,
             clean(STR(e, "message"), b4, sizeof(b4)));
    }
    if (n > max)
        outf(out, "(%zu more events not shown)\n", n - max);
    free(refs);
}

static void text_backend(const struct kube_text *out, const json_t *backend)
{
    char b1[FIELD_MAX], b2[FIELD_MAX];
    const json_t *svc = AT(backend, "service");

    if (json_is_object(svc)) {
        const json_t *port = AT(svc, "port");
        if (STR(port, "name"))
            outf(out, "%s:%s", clean(STR(svc, "name"), b1, sizeof(b1)),
                 clean(STR(port, "name"), b2, sizeof(b2)));
        else
            outf(out, "%s:%.0f", clean(STR(svc, "name"), b1, sizeof(b1)), NUM(0, port, "number"));
    } else if (json_is_object(AT(backend, "resource"))) {
        outf(out, "%s/%s", clean(STR(backend, "resource", "kind"), b1, sizeof(b1)),
             clean(STR(backend, "resource", "name"), b2, sizeof(b2)));
    } else {
        outf(out, "<none>");
    }
}

void kube_text_ingresses(const struct kube_text *out, const json_t *list, time_t now)
{
    const json_t *items = items_of(list);
    char b1[FIELD_MAX], b2[FIELD_MAX], b3[32];
    size_t i, j, k;
    json_t *ing, *rule, *path, *v;

    if (!items || json_array_size(items) == 0) {
        no_items(out, list, "ingresses");
        return;
    }
    int w = name_width(items, 6);
    outf(out, "%-*s%-10s%-40s%-18s%s\n", w, "NAME", "CLASS", "HOSTS", "ADDRESS", "AGE");
    json_array_foreach(items, i, ing)
    {
        char hosts[512] = "", address[256] = "";
        size_t hl = 0, al = 0;
        json_array_foreach(AT(ing, "spec", "rules"), j, rule)
        {
            const char *h = STR(rule, "host");
            int n = snprintf(hosts + hl, sizeof(hosts) - hl, "%s%s", hl ? "," : "",
                             clean(h ? h : "*", b1, sizeof(b1)));
            if (n > 0 && (size_t)n < sizeof(hosts) - hl)
                hl += (size_t)n;
        }
        json_array_foreach(AT(ing, "status", "loadBalancer", "ingress"), j, v)
        {
            const char *a = STR(v, "ip") ? STR(v, "ip") : STR(v, "hostname");
            int n = snprintf(address + al, sizeof(address) - al, "%s%s", al ? "," : "",
                             clean(a, b1, sizeof(b1)));
            if (n > 0 && (size_t)n < sizeof(address) - al)
                al += (size_t)n;
        }
        outf(out, "%-*s%-10s%-40s%-18s%s\n", w, clean(STR(ing, "metadata", "name"), b1, sizeof(b1)),
             clean(STR(ing, "spec", "ingressClassName"), b2, sizeof(b2)), hosts[0] ? hosts : "*",
             address[0] ? address : "<none>",
             age(STR(ing, "metadata", "creationTimestamp"), now, b3, sizeof(b3)));
    }
    /* describe ingress: the rules. */
    json_array_foreach(items, i, ing)
    {
        outf(out, "\nIngress %s rules:\n", clean(STR(ing, "metadata", "name"), b1, sizeof(b1)));
        if (json_is_object(AT(ing, "spec", "defaultBackend"))) {
            outf(out, "  Default backend: ");
            text_backend(out, AT(ing, "spec", "defaultBackend"));
            outf(out, "\n");
        }
        json_array_foreach(AT(ing, "spec", "tls"), j, v)
        {
            json_t *h;
            outf(out, "  TLS: secret %s terminates", clean(STR(v, "secretName"), b1, sizeof(b1)));
            json_array_foreach(AT(v, "hosts"), k, h)
            {
                outf(out, " %s", clean(str_at(h), b2, sizeof(b2)));
            }
            outf(out, "\n");
        }
        outf(out, "  %-36s%-28s%s\n", "Host", "Path", "Backends");
        json_array_foreach(AT(ing, "spec", "rules"), j, rule)
        {
            const char *h = STR(rule, "host");
            json_array_foreach(AT(rule, "http", "paths"), k, path)
            {
                const char *p = STR(path, "path");
                outf(out, "  %-36s%-28s", clean(h ? h : "*", b1, sizeof(b1)),
                     clean(p ? p : "/", b2, sizeof(b2)));
                text_backend(out, AT(path, "backend"));
                outf(out, "\n");
            }
        }
    }
}

void kube_text_deployments(const struct kube_text *out, const json_t *list, time_t now)
{
    const json_t *items = items_of(list);
    char b1[FIELD_MAX], b2[32];
    size_t i;
    json_t *d;

    if (!items || json_array_size(items) == 0) {
        no_items(out, list, "deployments");
        return;
    }
    int w = name_width(items, 6);
    outf(out, "%-*s%-9s%-7s%-12s%-11s%-13s%s\n", w, "NAME", "DESIRED", "READY", "UP-TO-DATE",
         "AVAILABLE", "UNAVAILABLE", "AGE");
    json_array_foreach(items, i, d)
    {
        outf(out, "%-*s%-9.0f%-7.0f%-12.0f%-11.0f%-13.0f%s\n", w,
             clean(STR(d, "metadata", "name"), b1, sizeof(b1)), NUM(1, d, "spec", "replicas"),
             NUM(0, d, "status", "readyReplicas"), NUM(0, d, "status", "updatedReplicas"),
             NUM(0, d, "status", "availableReplicas"), NUM(0, d, "status", "unavailableReplicas"),
             age(STR(d, "metadata", "creationTimestamp"), now, b2, sizeof(b2)));
    }
}

/* CPU in millicores and memory in MiB, as kubectl top shows them. */
static void usage_text(const json_t *usage, char *cpu, size_t cpusize, char *mem, size_t memsize)
{
    double c = quantity_at(AT(usage, "cpu")), m = quantity_at(AT(usage, "memory"));
    if (isnan(c))
        snprintf(cpu, cpusize, "<unknown>");
    else
        snprintf(cpu, cpusize, "%.0fm", c * 1000);
    if (isnan(m))
        snprintf(mem, memsize, "<unknown>");
    else
        snprintf(mem, memsize, "%.0fMi", m / 1048576.0);
}

void kube_text_top_pods(const struct kube_text *out, const json_t *list)
{
    const json_t *items = items_of(list);
    char b1[FIELD_MAX], cpu[32], mem[32];
    size_t i, j;
    json_t *pm, *c;

    if (!items || json_array_size(items) == 0) {
        no_items(out, list, "pod metrics");
        return;
    }
    int w = name_width(items, 6);
    outf(out, "%-*s%-12s%s\n", w, "NAME", "CPU(cores)", "MEMORY(bytes)");
    json_array_foreach(items, i, pm)
    {
        double cpu_sum = 0, mem_sum = 0;
        bool known = false;
        json_array_foreach(AT(pm, "containers"), j, c)
        {
            double cv = quantity_at(AT(c, "usage", "cpu")),
                   mv = quantity_at(AT(c, "usage", "memory"));
            if (!isnan(cv))
                cpu_sum += cv;
            if (!isnan(mv))
                mem_sum += mv;
            known = known || !isnan(cv) || !isnan(mv);
        }
        if (known) {
            snprintf(cpu, sizeof(cpu), "%.0fm", cpu_sum * 1000);
            snprintf(mem, sizeof(mem), "%.0fMi", mem_sum / 1048576.0);
        } else {
            snprintf(cpu, sizeof(cpu), "<unknown>");
            snprintf(mem, sizeof(mem), "<unknown>");
        }
        outf(out, "%-*s%-12s%s\n", w, clean(STR(pm, "metadata", "name"), b1, sizeof(b1)), cpu, mem);
    }
}

/* The condition types whose good state is False (pressure, unavailability); Ready is good True. */
static bool condition_ok(const json_t *c)
{
    const char *type = STR(c, "type"), *status = STR(c, "status");
    if (!type || !status)
        return false;
    if (strcmp(type, "Ready") == 0)
        return strcmp(status, "True") == 0;
    return strcmp(status, "False") == 0;
}

void kube_text_nodes(const struct kube_text *out, const json_t *list, time_t now)
{
    const json_t *items = items_of(list);
    char b1[FIELD_MAX], b2[FIELD_MAX], b3[MESSAGE_MAX], b4[32];
    size_t i, j;
    json_t *node, *c;

    if (!items || json_array_size(items) == 0) {
        no_items(out, list, "nodes");
        return;
    }
    int w = name_width(items, 6);
    outf(out, "%-*s%-28s%-8s%s\n", w, "NAME", "STATUS", "AGE", "VERSION");
    json_array_foreach(items, i, node)
    {
        char status[64];
        snprintf(status, sizeof(status), "%s%s",
                 condition_true(node, "Ready") ? "Ready" : "NotReady",
                 json_is_true(AT(node, "spec", "unschedulable")) ? ",SchedulingDisabled" : "");
        outf(out, "%-*s%-28s%-8s%s\n", w, clean(STR(node, "metadata", "name"), b1, sizeof(b1)),
             status, age(STR(node, "metadata", "creationTimestamp"), now, b4, sizeof(b4)),
             clean(STR(node, "status", "nodeInfo", "kubeletVersion"), b2, sizeof(b2)));
    }
    json_array_foreach(items, i, node)
    {
        outf(out, "\nNode %s:\n", clean(STR(node, "metadata", "name"), b1, sizeof(b1)));
        size_t bad = 0;
        json_array_foreach(AT(node, "status", "conditions"), j, c)
        {
            if (condition_ok(c))
                continue;
            if (!bad++)
                outf(out, "  Conditions not OK:\n");
            outf(out, "    %s=%s %s: %s (since %s ago)\n", clean(STR(c, "type"), b1, sizeof(b1)),
                 clean(STR(c, "status"), b4, sizeof(b4)), clean(STR(c, "reason"), b2, sizeof(b2)),
                 clean(STR(c, "message"), b3, sizeof(b3)),
                 age(STR(c, "lastTransitionTime"), now, b4, sizeof(b4)));
        }
        if (!bad)
            outf(out, "  Conditions: all OK\n");
        if (json_is_array(AT(node, "spec", "taints")) &&
            json_array_size(AT(node, "spec", "taints"))) {
            outf(out, "  Taints:");
            json_array_foreach(AT(node, "spec", "taints"), j, c)
            {
                outf(out, " %s:%s", clean(STR(c, "key"), b1, sizeof(b1)),
                     clean(STR(c, "effect"), b2, sizeof(b2)));
            }
            outf(out, "\n");
        }
        static const char *const res[] = {"cpu", "memory", "pods", "ephemeral-storage"};
        for (size_t t = 0; t < 2; t++) {
            const char *which = t ? "capacity" : "allocatable";
            outf(out, "  %s:", t ? "Capacity   " : "Allocatable");
            for (size_t r = 0; r < 4; r++) {
                const char *v = STR(node, "status", which, res[r]);
                if (v)
                    outf(out, " %s=%s", res[r], clean(v, b1, sizeof(b1)));
            }
            outf(out, "\n");
        }
    }
}

void kube_text_top_nodes(const struct kube_text *out, const json_t *metrics, const json_t *nodes)
{
    const json_t *items = items_of(metrics), *node_items = items_of(nodes);
    char b1[FIELD_MAX], cpu[32], mem[32], cpu_pct[16], mem_pct[16];
    size_t i, j;
    json_t *m, *node;

    if (!items || json_array_size(items) == 0) {
        no_items(out, metrics, "node metrics");
        return;
    }
    int w = name_width(items, 6);
    outf(out, "%-*s%-12s%-7s%-15s%s\n", w, "NAME", "CPU(cores)", "CPU%", "MEMORY(bytes)",
         "MEMORY%");
    json_array_foreach(items, i, m)
    {
        const char *name = STR(m, "metadata", "name");
        double alloc_cpu = NAN, alloc_mem = NAN;
        if (name && node_items) {
            json_array_foreach(node_items, j, node)
            {
                const char *n = STR(node, "metadata", "name");
                if (n && strcmp(n, name) == 0) {
                    alloc_cpu = quantity_at(AT(node, "status", "allocatable", "cpu"));
                    alloc_mem = quantity_at(AT(node, "status", "allocatable", "memory"));
                    break;
                }
            }
        }
        usage_text(AT(m, "usage"), cpu, sizeof(cpu), mem, sizeof(mem));
        double uc = quantity_at(AT(m, "usage", "cpu")), um = quantity_at(AT(m, "usage", "memory"));
        if (!isnan(uc) && alloc_cpu > 0)
            snprintf(cpu_pct, sizeof(cpu_pct), "%.0f%%", 100 * uc / alloc_cpu);
        else
            snprintf(cpu_pct, sizeof(cpu_pct), "?");
        if (!isnan(um) && alloc_mem > 0)
            snprintf(mem_pct, sizeof(mem_pct), "%.0f%%", 100 * um / alloc_mem);
        else
            snprintf(mem_pct, sizeof(mem_pct), "?");
        outf(out, "%-*s%-12s%-7s%-15s%s\n", w, clean(name, b1, sizeof(b1)), cpu, cpu_pct, mem,
             mem_pct);
    }
}

void kube_text_log(const struct kube_text *out, const char *text, size_t len)
{
    char chunk[1024];
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        chunk[n++] = (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f ? '?' : (char)c;
        if (n == sizeof(chunk)) {
            put(out, chunk, n);
            n = 0;
        }
    }
    put(out, chunk, n);
    if (len && text[len - 1] != '\n')
        put(out, "\n", 1);
}

/* ---- Deployments, ConfigMaps and what a workload references ------------------------------ */

bool kube_deployment_troubled(const json_t *deployment)
{
    return deployment_unavailable(deployment);
}

void kube_text_deployment(const struct kube_text *out, const json_t *d, time_t now)
{
    char b1[FIELD_MAX], b2[MESSAGE_MAX], b3[32];
    const char *key;
    json_t *v;
    size_t i;

    outf(out, "Name:               %s\n", clean(STR(d, "metadata", "name"), b1, sizeof(b1)));
    outf(out, "CreationTimestamp:  %s (%s ago)\n",
         clean(STR(d, "metadata", "creationTimestamp"), b1, sizeof(b1)),
         age(STR(d, "metadata", "creationTimestamp"), now, b3, sizeof(b3)));
    outf(out, "Selector:           ");
    const json_t *labels = AT(d, "spec", "selector", "matchLabels");
    bool any = false;
    if (json_is_object(labels)) {
        json_object_foreach((json_t *)labels, key, v)
        {
            outf(out, "%s%s=", any ? "," : "", clean(key, b1, sizeof(b1)));
            outf(out, "%s", clean(str_at(v), b1, sizeof(b1)));
            any = true;
        }
    }
    outf(out, "%s\n", any ? "" : "<none>");
    outf(out,
         "Replicas:           %.0f desired | %.0f updated | %.0f total | %.0f available | %.0f "
         "unavailable\n",
         NUM(1, d, "spec", "replicas"), NUM(0, d, "status", "updatedReplicas"),
         NUM(0, d, "status", "replicas"), NUM(0, d, "status", "availableReplicas"),
         NUM(0, d, "status", "unavailableReplicas"));
    outf(out, "StrategyType:       %s\n",
         clean(STR(d, "spec", "strategy", "type"), b1, sizeof(b1)));
    outf(out, "Pod Template:\n  Containers:\n");
    const json_t *containers = AT(d, "spec", "template", "spec", "containers");
    if (json_is_array(containers)) {
        json_array_foreach(containers, i, v)
        {
            char lim[FIELD_MAX] = "", req[FIELD_MAX] = "";
            outf(out, "   %s:\n", clean(STR(v, "name"), b1, sizeof(b1)));
            outf(out, "    Image:      %s\n", clean(STR(v, "image"), b1, sizeof(b1)));
            if (STR(v, "resources", "limits", "cpu") || STR(v, "resources", "limits", "memory"))
                outf(out, "    Limits:     cpu=%s memory=%s\n",
                     clean(STR(v, "resources", "limits", "cpu"), lim, sizeof(lim)),
                     clean(STR(v, "resources", "limits", "memory"), b1, sizeof(b1)));
            if (STR(v, "resources", "requests", "cpu") || STR(v, "resources", "requests", "memory"))
                outf(out, "    Requests:   cpu=%s memory=%s\n",
                     clean(STR(v, "resources", "requests", "cpu"), req, sizeof(req)),
                     clean(STR(v, "resources", "requests", "memory"), b1, sizeof(b1)));
        }
    }
    outf(out, "Conditions:\n  Type              Status  Reason / Message\n");
    const json_t *conds = AT(d, "status", "conditions");
    if (json_is_array(conds)) {
        json_array_foreach(conds, i, v)
        {
            char reason[FIELD_MAX];
            outf(out, "  %-18s%-8s%s%s%s\n", clean(STR(v, "type"), b1, sizeof(b1)),
                 clean(STR(v, "status"), b3, sizeof(b3)),
                 STR(v, "reason") ? clean(STR(v, "reason"), reason, sizeof(reason)) : "",
                 STR(v, "message") ? " " : "",
                 STR(v, "message") ? clean(STR(v, "message"), b2, sizeof(b2)) : "");
        }
    }
}

/* Text of a ConfigMap value: line breaks and tabs kept, other control characters as '?', every
 * line indented so that a value cannot forge a key or a heading. */
static void text_block(const struct kube_text *out, const char *text, size_t len)
{
    char chunk[1024];
    size_t n = 0;
    bool line_start = true;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (line_start) {
            if (n + 4 > sizeof(chunk)) {
                put(out, chunk, n);
                n = 0;
            }
            memcpy(chunk + n, "    ", 4);
            n += 4;
        }
        chunk[n++] = (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f ? '?' : (char)c;
        line_start = c == '\n';
        if (n == sizeof(chunk)) {
            put(out, chunk, n);
            n = 0;
        }
    }
    put(out, chunk, n);
    if (len == 0 || text[len - 1] != '\n')
        put(out, "\n", 1);
}

void kube_text_configmap(const struct kube_text *out, const json_t *cm)
{
    char b1[FIELD_MAX];
    const json_t *data = AT(cm, "data");
    const json_t *binary = AT(cm, "binaryData");
    const char *key;
    json_t *v;

    outf(out, "ConfigMap %s:\n", clean(STR(cm, "metadata", "name"), b1, sizeof(b1)));
    if (json_object_size(data) == 0 && json_object_size(binary) == 0) {
        outf(out, "  (no data)\n");
        return;
    }
    json_object_foreach((json_t *)data, key, v)
    {
        outf(out, "  %s: |\n", clean(key, b1, sizeof(b1)));
        if (json_is_string(v))
            text_block(out, json_string_value(v), json_string_length(v));
        else
            outf(out, "    <not text>\n");
    }
    json_object_foreach((json_t *)binary, key, v)
    {
        outf(out, "  %s: <binary, %zu bytes of base64>\n", clean(key, b1, sizeof(b1)),
             json_is_string(v) ? json_string_length(v) : 0);
    }
}

/* One reference: "  secret NAME (where)". */
static void text_ref(const struct kube_text *out, const char *what, const char *name,
                     const char *where, const char *container)
{
    char b1[FIELD_MAX], b2[FIELD_MAX];
    if (!name)
        return;
    if (container)
        outf(out, "  %-10s %s (%s of container %s)\n", what, clean(name, b1, sizeof(b1)), where,
             clean(container, b2, sizeof(b2)));
    else
        outf(out, "  %-10s %s (%s)\n", what, clean(name, b1, sizeof(b1)), where);
}

void kube_text_config_refs(const struct kube_text *out, const json_t *workload)
{
    static const char *const lists[] = {"initContainers", "containers"};
    const json_t *spec = AT(workload, "spec", "template", "spec");
    char b1[FIELD_MAX];
    size_t i, j, k;
    json_t *v, *c, *e;

    outf(out, "deployment %s (Secrets are named, never read):\n",
         clean(STR(workload, "metadata", "name"), b1, sizeof(b1)));
    json_array_foreach(AT(spec, "volumes"), i, v)
    {
        text_ref(out, "secret", STR(v, "secret", "secretName"), "volume", NULL);
        text_ref(out, "configmap", STR(v, "configMap", "name"), "volume", NULL);
        json_array_foreach(AT(v, "projected", "sources"), j, e)
        {
            text_ref(out, "secret", STR(e, "secret", "name"), "projected volume", NULL);
            text_ref(out, "configmap", STR(e, "configMap", "name"), "projected volume", NULL);
        }
    }
    json_array_foreach(AT(spec, "imagePullSecrets"), i, v)
    {
        text_ref(out, "secret", STR(v, "name"), "imagePullSecrets", NULL);
    }
    for (size_t l = 0; l < 2; l++) {
        json_array_foreach(AT(spec, lists[l]), j, c)
        {
            const char *cname = STR(c, "name");
            json_array_foreach(AT(c, "env"), k, e)
            {
                text_ref(out, "secret", STR(e, "valueFrom", "secretKeyRef", "name"), "env",
                         cname ? cname : "?");
                text_ref(out, "configmap", STR(e, "valueFrom", "configMapKeyRef", "name"), "env",
                         cname ? cname : "?");
            }
            json_array_foreach(AT(c, "envFrom"), k, e)
            {
                text_ref(out, "secret", STR(e, "secretRef", "name"), "envFrom",
                         cname ? cname : "?");
                text_ref(out, "configmap", STR(e, "configMapRef", "name"), "envFrom",
                         cname ? cname : "?");
            }
        }
    }
}
