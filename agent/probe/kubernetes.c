/*
 * Kubernetes probe module (vigil-probe-kubernetes.so, libcurl + jansson): the runbooks' kubectl
 * investigation steps as signals and evidence, for the cluster agent (role: cluster).
 *
 * Credentials: a kubeconfig file and context, or the in-cluster ServiceAccount (token and CA
 * under /var/run/secrets/kubernetes.io/serviceaccount), loaded by agent/action/kubeconfig.c at
 * every cycle and capture, so a rotated token is picked up. The server's certificate is always
 * verified; proxies from the environment are ignored.
 *
 * Signals, each with target=<name> added by the agent (one LIST per resource and namespace per
 * cycle, all of them within one timeout):
 *   k8s.up [bool]                               1 unless a request got no answer, HTTP 401
 *                                               (the credentials) or a 5xx
 *   k8s.error{reason} [bool]                    when down: refused, timeout, dns, tls,
 *                                               unauthorized, credentials, "status 503: list
 *                                               pods", or curl's text; when up, the first
 *                                               request that failed ("forbidden: list nodes")
 *   k8s.pods_not_ready{namespace} [pods]        Running but not Ready, Pending, Failed, Unknown
 *   k8s.pod_restarts{namespace,pod} [restarts]  sum of the containers' restartCount, for pods
 *                                               that restarted (at most 50 series; a series
 *                                               whose pod is gone or back to 0 ends with 0)
 *   k8s.crashloop{namespace} [containers]       containers waiting in CrashLoopBackOff
 *   k8s.oomkilled{namespace} [containers]       containers (init ones too) whose state or
 *                                               lastState is terminated with reason OOMKilled
 *   k8s.deployments_unavailable{namespace} [deployments]  unavailableReplicas > 0 or
 *                                               readyReplicas < spec.replicas
 *   k8s.warning_events{namespace} [events]      Warning events whose lastTimestamp (else
 *                                               eventTime, else creationTimestamp) is within
 *                                               the last 5 minutes
 *   k8s.nodes_not_ready [nodes]                 nodes whose Ready condition is not True
 *   k8s.nodes_memory_pressure [nodes], k8s.nodes_disk_pressure [nodes]  nodes whose
 *                                               MemoryPressure / DiskPressure condition is True
 *   k8s.node_cpu_pct{node}, k8s.node_memory_pct{node} [percent]  usage (metrics.k8s.io) over
 *                                               allocatable, when the metrics API answers
 *
 * Evidence (vigilctl collect kubernetes target=NAME): the investigation a responder runs by
 * hand, each step under a heading naming its kubectl command: for every namespace get pods,
 * then for each pod that is not Ready or restarted (at most 10) describe pod with its events and
 * the last 100 log lines of each container (and of its previous instance when it restarted),
 * get/describe ingress, get deployments, get events (warnings first), top pods; then get and
 * describe nodes and top nodes. Bounded by max_artifact_bytes (a note marks the cut) and by
 * the timeout. Secrets are never read, and pods' environment variables are not shown.
 *
 * The JSON decoding lives in kube_decode.c (no I/O, for fuzzing).
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "curl_multi.h"
#include "kube_decode.h"
#include "kube_tls.h"
#include "kubeconfig.h"
#include "probe.h"
#include "timeutil.h"

#define BACKSTOP_MS 1000            /* past the deadline, in case curl's timer does not fire */
#define LIST_MAX (32 * 1024 * 1024) /* one LIST answer */
#define LOG_MAX (256 * 1024)        /* one container's log tail */
#define RESTART_SERIES_MAX 50       /* k8s.pod_restarts series per cycle */
#define NODE_SERIES_MAX 100         /* nodes with k8s.node_cpu_pct / memory_pct */
#define DESCRIBE_PODS_MAX 10        /* pods described per namespace in the evidence */
#define POD_EVENTS_MAX 20           /* events shown per described pod */
#define NAMESPACE_EVENTS_MAX 50     /* events shown per namespace */
#define WARNING_EVENTS_WINDOW_S 300 /* k8s.warning_events counts the last 5 minutes */
#define LOG_TAIL_LINES 100
#define ARTIFACT_MARGIN 128 /* room kept for the truncation note */

#define API_CORE "/api/v1"
#define API_APPS "/apis/apps/v1"
#define API_NET "/apis/networking.k8s.io/v1"
#define API_METRICS "/apis/metrics.k8s.io/v1beta1"

struct restart_series {
    char *ns;
    char *pod;
};

struct kube_probe {
    char *kubeconfig; /* NULL = in-cluster */
    char *context;    /* NULL = current-context */
    char **namespaces;
    size_t nnamespaces;
    int64_t timeout_ms;
    size_t max_artifact_bytes;
    int cancel_fd;
    CURLM *multi;
    /* One session (a cycle or a capture): */
    CURL *easy;
    struct curl_slist *headers;
    struct kube_creds creds;
    int64_t deadline;
    char errbuf[CURL_ERROR_SIZE];
    /* Kept between cycles: the k8s.pod_restarts series emitted last, to end vanished ones. */
    struct restart_series *restarts;
    size_t nrestarts;
};

/* What went wrong with one request or a whole cycle. */
struct failure {
    char reason[96]; /* short: it becomes a label value */
    char text[512];  /* for the evidence and errors */
    bool down;       /* no answer at all, or the credentials refused: the server counts as down */
    bool cancelled;
};

struct body {
    char *data;
    size_t len, max;
    bool too_big;
};

/* Copies text that may come from the server: one line, printable ASCII. */
static void copy_printable(char *dst, size_t size, const char *src)
{
    size_t n = strnlen(src, size - 1);
    size_t line = strcspn(src, "\r\n");
    if (line < n)
        n = line;
    for (size_t i = 0; i < n; i++)
        dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? src[i] : '?';
    dst[n] = '\0';
}

static void fail(struct failure *f, bool down, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail(struct failure *f, bool down, const char *reason, const char *fmt, ...)
{
    char text[sizeof(f->text)];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    copy_printable(f->reason, sizeof(f->reason), reason);
    copy_printable(f->text, sizeof(f->text), text);
    f->down = down;
}

/* ---- Session ----------------------------------------------------------------------------- */

static void session_end(struct kube_probe *self)
{
    if (self->easy)
        curl_easy_cleanup(self->easy);
    self->easy = NULL;
    curl_slist_free_all(self->headers);
    self->headers = NULL;
    kube_creds_clear(&self->creds);
}

static bool append_header(struct kube_probe *self, const char *line)
{
    struct curl_slist *grown = curl_slist_append(self->headers, line);
    if (!grown)
        return false;
    self->headers = grown;
    return true;
}

/* Loads the credentials and prepares an easy handle for this session's requests. */
static int session_begin(struct kube_probe *self, struct failure *f)
{
    char err[512] = "";
    const struct kube_source src = {.kubeconfig = self->kubeconfig, .context = self->context};
    CURLcode rc = CURLE_OK;

    self->deadline = vg_mono_ms() + self->timeout_ms;
    if (kube_creds_load(&src, &self->creds, err, sizeof(err)) < 0) {
        fail(f, true, "credentials", "%s", err[0] ? err : "cannot load the credentials");
        return -EINVAL;
    }
    self->easy = curl_easy_init();
    if (!self->easy || !append_header(self, "Accept: application/json, */*")) {
        fail(f, true, "out of memory", "out of memory");
        return -ENOMEM;
    }
    if (self->creds.token) {
        char *auth = NULL;
        if (asprintf(&auth, "Authorization: Bearer %s", self->creds.token) < 0) {
            fail(f, true, "out of memory", "out of memory");
            return -ENOMEM;
        }
        bool ok = append_header(self, auth);
        explicit_bzero(auth, strlen(auth));
        free(auth);
        if (!ok) {
            fail(f, true, "out of memory", "out of memory");
            return -ENOMEM;
        }
    }
    CURL *c = self->easy;
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, self->errbuf);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, self->headers);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    rc = kube_tls_setup(c, &self->creds, "vigil-agent/" VIGIL_VERSION);
    if (rc != CURLE_OK) {
        fail(f, true, "credentials", "libcurl refused the TLS settings: %s",
             curl_easy_strerror(rc));
        return -EINVAL;
    }
    return 0;
}

/* ---- Requests ---------------------------------------------------------------------------- */

static size_t on_data(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct body *b = userdata;
    size_t n = size * nmemb;

    if (n > b->max - b->len) {
        b->too_big = true;
        n = b->max - b->len; /* keep what fits: a log tail is still worth its first part */
        if (n == 0)
            return 0;
    }
    char *grown = realloc(b->data, b->len + n + 1);
    if (!grown)
        return 0;
    b->data = grown;
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return b->too_big ? 0 : n;
}

static bool is_tls_error(CURLcode code)
{
    switch (code) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
        return true;
    default:
        return false;
    }
}

static const char *transfer_reason(const struct kube_probe *self, CURLcode code)
{
    long os_errno = 0;

    switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
        return "timeout";
    case CURLE_COULDNT_RESOLVE_HOST:
        return "dns";
    case CURLE_COULDNT_CONNECT:
        curl_easy_getinfo(self->easy, CURLINFO_OS_ERRNO, &os_errno);
        if (os_errno == ECONNREFUSED || strstr(self->errbuf, "refused"))
            return "refused";
        if (os_errno == ETIMEDOUT)
            return "timeout";
        break;
    default:
        break;
    }
    return is_tls_error(code) ? "tls" : curl_easy_strerror(code);
}

/* The message of a Status object, or the start of the answer. */
static void status_message(const struct body *b, char *buf, size_t size)
{
    json_t *j = b->data ? json_loadb(b->data, b->len, 0, NULL) : NULL;
    const char *msg = json_string_value(json_object_get(j, "message"));
    copy_printable(buf, size, msg ? msg : b->data ? b->data : "(empty answer)");
    json_decref(j);
}

/*
 * GET path (with its query) into *ret (the caller frees ret->data), keeping at most max bytes.
 * 0 with *ret_status for any HTTP answer (a 2xx too big for max is a failure); -ETIMEDOUT,
 * -ECONNREFUSED, -ECANCELED with f set (down) when there was none. what names the request in
 * reasons ("list pods").
 */
static int get(struct kube_probe *self, const char *path, size_t max, const char *what,
               struct body *ret, long *ret_status, struct failure *f)
{
    const struct vg_curl_hooks hooks = {.cancel_fd = self->cancel_fd};
    char *url = NULL;
    bool cancelled = false;
    long status = 0;
    int64_t left = self->deadline - vg_mono_ms();

    *ret = (struct body){.max = max};
    if (left <= 0) {
        fail(f, true, "timeout", "%s: no time left within the timeout (%lld ms)", what,
             (long long)self->timeout_ms);
        return -ETIMEDOUT;
    }
    if (asprintf(&url, "%s%s", self->creds.server, path) < 0) {
        fail(f, true, "out of memory", "out of memory");
        return -ENOMEM;
    }
    self->errbuf[0] = '\0';
    curl_easy_setopt(self->easy, CURLOPT_URL, url);
    curl_easy_setopt(self->easy, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(self->easy, CURLOPT_WRITEDATA, ret);
    curl_easy_setopt(self->easy, CURLOPT_TIMEOUT_MS, (long)left);
    curl_easy_setopt(self->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)left);
    CURLcode rc = vg_curl_multi_transfer(self->multi, self->easy, &hooks,
                                         self->deadline + BACKSTOP_MS, &cancelled);
    free(url);
    if (cancelled) {
        f->cancelled = true;
        fail(f, true, "cancelled", "the agent is stopping");
        return -ECANCELED;
    }
    curl_easy_getinfo(self->easy, CURLINFO_RESPONSE_CODE, &status);
    if (rc == CURLE_WRITE_ERROR && ret->too_big && status >= 200 && status < 300 &&
        max == LOG_MAX) {
        rc = CURLE_OK; /* a log cut at its bound: the caller says so */
    } else if (rc == CURLE_WRITE_ERROR && ret->too_big) {
        fail(f, false, "too large", "%s: the answer is larger than %zu bytes", what, max);
        *ret_status = 0;
        return 0;
    }
    if (rc != CURLE_OK) {
        const char *reason = transfer_reason(self, rc);
        if (self->errbuf[0] && strcmp(self->errbuf, reason) != 0)
            fail(f, true, reason, "%s: %s (%s)", what, reason, self->errbuf);
        else
            fail(f, true, reason, "%s: %s", what, reason);
        return rc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -ECONNREFUSED;
    }
    *ret_status = status;
    return 0;
}

/*
 * GET path as JSON: 0 with *ret (the caller's to json_decref) for a 2xx JSON object; 0 with
 * *ret NULL and f set for any other answer (unauthorized counts as down); a negative errno
 * (down) when there was no answer. *ret_status (may be NULL) gets the HTTP status.
 */
static int get_json(struct kube_probe *self, const char *path, const char *what, json_t **ret,
                    long *ret_status, struct failure *f)
{
    struct body b;
    long status = 0;
    char msg[256];

    *ret = NULL;
    int r = get(self, path, LIST_MAX, what, &b, &status, f);
    if (ret_status)
        *ret_status = status;
    if (r < 0 || status == 0) {
        free(b.data);
        return r;
    }
    if (status < 200 || status > 299) {
        status_message(&b, msg, sizeof(msg));
        if (status == 401)
            fail(f, true, "unauthorized", "%s: HTTP 401: %s", what, msg);
        else if (status == 403)
            fail(f, false, "forbidden", "%s: HTTP 403 (does the Role allow it?): %s", what, msg);
        else
            fail(f, status >= 500, "status", "%s: HTTP %ld: %s", what, status, msg);
        /* The reason names the request: "forbidden: list nodes", "status 404: list pods". */
        char reason[sizeof(f->reason)];
        if (status == 403)
            snprintf(reason, sizeof(reason), "forbidden: %s", what);
        else if (status != 401)
            snprintf(reason, sizeof(reason), "status %ld: %s", status, what);
        if (status != 401)
            copy_printable(f->reason, sizeof(f->reason), reason);
        free(b.data);
        return 0;
    }
    json_error_t jerr;
    *ret = json_loadb(b.data ? b.data : "", b.len, 0, &jerr);
    free(b.data);
    if (!json_is_object(*ret)) {
        json_decref(*ret);
        *ret = NULL;
        fail(f, false, "protocol", "%s: the answer is not a JSON object", what);
        char reason[sizeof(f->reason)];
        snprintf(reason, sizeof(reason), "protocol: %s", what);
        copy_printable(f->reason, sizeof(f->reason), reason);
    }
    return 0;
}

/* "/api/v1/namespaces/NS/pods" and the like, with ns escaped; NULL when out of memory. */
static char *ns_path(struct kube_probe *self, const char *api, const char *ns, const char *rest)
{
    char *esc = curl_easy_escape(self->easy, ns, 0);
    char *path = NULL;
    if (esc && asprintf(&path, "%s/namespaces/%s/%s", api, esc, rest) < 0)
        path = NULL;
    curl_free(esc);
    return path;
}

/* ---- Cycle ------------------------------------------------------------------------------- */

struct cycle {
    struct kube_probe *self;
    const struct probe_sink *sink;
    struct failure first; /* the first failure of the cycle: k8s.error's reason */
    bool failed;
    const char *ns;
    struct restart_series *series; /* emitted this cycle */
    size_t nseries;
    size_t skipped_series;
    /* allocatable per node, for the usage percentages */
    struct node_alloc {
        char *name;
        double cpu, memory;
    } * nodes;
    size_t nnodes;
};

static void note_failure(struct cycle *c, const struct failure *f)
{
    if (!c->failed) {
        c->first = *f;
        c->failed = true;
    }
}

static void emit1(const struct probe_sink *sink, const char *name, double value, const char *unit,
                  const char *key, const char *label_value)
{
    struct probe_label label = {key, label_value};
    sink->emit(sink->sink, name, value, unit, key ? &label : NULL, key ? 1 : 0);
}

static void on_pod_restarts(void *userdata, const char *pod, double restarts)
{
    struct cycle *c = userdata;
    if (c->nseries >= RESTART_SERIES_MAX) {
        c->skipped_series++;
        return;
    }
    struct restart_series s = {strdup(c->ns), strdup(pod)};
    if (!s.ns || !s.pod) {
        free(s.ns);
        free(s.pod);
        return;
    }
    c->series[c->nseries++] = s;
    struct probe_label labels[] = {{"namespace", c->ns}, {"pod", pod}};
    c->sink->emit(c->sink->sink, "k8s.pod_restarts", restarts, "restarts", labels, 2);
}

/* Pods, deployments and events of one namespace. False when the server is down. */
static bool cycle_namespace(struct cycle *c, const char *ns, bool *ret_pods_listed)
{
    struct kube_probe *self = c->self;
    struct failure f = {0};
    json_t *list = NULL;
    char *path = ns_path(self, API_CORE, ns, "pods");

    *ret_pods_listed = false;
    int r = path ? get_json(self, path, "list pods", &list, NULL, &f) : -ENOMEM;
    free(path);
    if (r < 0 || f.down) {
        note_failure(c, &f);
        return false;
    }
    if (list) {
        struct kube_pods_summary s;
        c->ns = ns;
        if (kube_decode_pods(list, &s, on_pod_restarts, c) == 0) {
            *ret_pods_listed = true;
            emit1(c->sink, "k8s.pods_not_ready", s.not_ready, "pods", "namespace", ns);
            emit1(c->sink, "k8s.crashloop", s.crashloop, "containers", "namespace", ns);
            emit1(c->sink, "k8s.oomkilled", s.oomkilled, "containers", "namespace", ns);
        } else {
            fail(&f, false, "protocol: list pods", "list pods: the answer is not a list");
        }
        json_decref(list);
    }
    if (f.reason[0])
        note_failure(c, &f);

    f = (struct failure){0};
    path = ns_path(self, API_APPS, ns, "deployments");
    r = path ? get_json(self, path, "list deployments", &list, NULL, &f) : -ENOMEM;
    free(path);
    if (r < 0 || f.down) {
        note_failure(c, &f);
        return false;
    }
    if (list) {
        unsigned unavailable;
        if (kube_decode_deployments(list, &unavailable) == 0)
            emit1(c->sink, "k8s.deployments_unavailable", unavailable, "deployments", "namespace",
                  ns);
        json_decref(list);
    }
    if (f.reason[0])
        note_failure(c, &f);

    f = (struct failure){0};
    list = NULL;
    path = ns_path(self, API_CORE, ns, "events");
    r = path ? get_json(self, path, "list events", &list, NULL, &f) : -ENOMEM;
    free(path);
    if (r < 0 || f.down) {
        note_failure(c, &f);
        return false;
    }
    if (list) {
        unsigned warnings;
        if (kube_decode_warning_events(list, time(NULL), WARNING_EVENTS_WINDOW_S, &warnings) == 0)
            emit1(c->sink, "k8s.warning_events", warnings, "events", "namespace", ns);
        json_decref(list);
    }
    if (f.reason[0])
        note_failure(c, &f);
    return true;
}

static void on_node_alloc(void *userdata, const char *node, double cpu, double memory)
{
    struct cycle *c = userdata;
    if (c->nnodes >= NODE_SERIES_MAX)
        return;
    char *name = strdup(node);
    if (!name)
        return;
    c->nodes[c->nnodes++] = (struct node_alloc){name, cpu, memory};
    /* cppcheck-suppress memleak ; the name is the cycle's now: kube_run frees it */
}

static void on_node_usage(void *userdata, const char *node, double cpu, double memory)
{
    struct cycle *c = userdata;
    for (size_t i = 0; i < c->nnodes; i++) {
        if (strcmp(c->nodes[i].name, node) != 0)
            continue;
        if (!isnan(cpu) && c->nodes[i].cpu > 0)
            emit1(c->sink, "k8s.node_cpu_pct", 100.0 * cpu / c->nodes[i].cpu, "percent", "node",
                  node);
        if (!isnan(memory) && c->nodes[i].memory > 0)
            emit1(c->sink, "k8s.node_memory_pct", 100.0 * memory / c->nodes[i].memory, "percent",
                  "node", node);
        return;
    }
}

/* Nodes and their usage. False when the server is down. */
static bool cycle_nodes(struct cycle *c)
{
    struct kube_probe *self = c->self;
    struct failure f = {0};
    json_t *list = NULL;
    long status = 0;

    int r = get_json(self, API_CORE "/nodes", "list nodes", &list, NULL, &f);
    if (r < 0 || f.down) {
        note_failure(c, &f);
        return false;
    }
    if (f.reason[0])
        note_failure(c, &f);
    if (!list)
        return true;
    struct kube_nodes_summary s;
    if (kube_decode_nodes(list, &s, on_node_alloc, c) == 0) {
        emit1(c->sink, "k8s.nodes_not_ready", s.not_ready, "nodes", NULL, NULL);
        emit1(c->sink, "k8s.nodes_memory_pressure", s.memory_pressure, "nodes", NULL, NULL);
        emit1(c->sink, "k8s.nodes_disk_pressure", s.disk_pressure, "nodes", NULL, NULL);
    }
    json_decref(list);

    /* metrics.k8s.io is optional: no metrics-server (404, 503) is no error. */
    f = (struct failure){0};
    r = get_json(self, API_METRICS "/nodes", "list node metrics", &list, &status, &f);
    if (r < 0 || (f.down && status == 401)) {
        note_failure(c, &f);
        return false;
    }
    if (list) {
        kube_decode_node_metrics(list, on_node_usage, c);
        json_decref(list);
    }
    return true;
}

static void free_series(struct restart_series *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(s[i].ns);
        free(s[i].pod);
    }
    free(s);
}

/* Ends (with 0) the k8s.pod_restarts series of the last cycle that this one did not emit, in
 * the namespaces it listed (unless some pods did not fit the bound); keeps the others for the
 * next cycle, as many as fit. Takes c->series. */
static void end_vanished_series(struct cycle *c, const bool *listed)
{
    struct kube_probe *self = c->self;

    for (size_t i = 0; i < self->nrestarts; i++) {
        const struct restart_series *old = &self->restarts[i];
        bool seen = false, ns_listed = false;
        for (size_t j = 0; j < c->nseries && !seen; j++)
            seen = strcmp(c->series[j].ns, old->ns) == 0 && strcmp(c->series[j].pod, old->pod) == 0;
        for (size_t n = 0; n < self->nnamespaces && !ns_listed; n++)
            ns_listed = listed[n] && strcmp(self->namespaces[n], old->ns) == 0;
        if (seen)
            continue;
        /* Past the series bound a pod may be missing only because it did not fit. */
        if (ns_listed && c->skipped_series == 0) {
            struct probe_label labels[] = {{"namespace", old->ns}, {"pod", old->pod}};
            c->sink->emit(c->sink->sink, "k8s.pod_restarts", 0, "restarts", labels, 2);
        } else if (c->nseries < RESTART_SERIES_MAX) {
            /* Not listed this time: still unknown, remember it. */
            c->series[c->nseries++] = *old;
            self->restarts[i] = (struct restart_series){0};
        }
    }
    free_series(self->restarts, self->nrestarts);
    self->restarts = c->series;
    self->nrestarts = c->nseries;
    c->series = NULL;
    c->nseries = 0;
}

static void kube_run(void *state, const struct probe_sink *sink)
{
    struct kube_probe *self = state;
    struct cycle c = {.self = self, .sink = sink};
    bool *listed = calloc(self->nnamespaces + 1, sizeof(*listed));
    bool up = false;

    c.series = calloc(RESTART_SERIES_MAX, sizeof(*c.series));
    c.nodes = calloc(NODE_SERIES_MAX, sizeof(*c.nodes));
    if (!listed || !c.series || !c.nodes) {
        fail(&c.first, true, "out of memory", "out of memory");
        c.failed = true;
        goto report;
    }
    if (session_begin(self, &c.first) < 0) {
        c.failed = true;
        goto report;
    }
    bool alive = true;
    for (size_t i = 0; i < self->nnamespaces && alive; i++)
        alive = cycle_namespace(&c, self->namespaces[i], &listed[i]);
    if (alive)
        alive = cycle_nodes(&c);
    up = alive;
    if (!alive || c.first.cancelled)
        goto report;
    end_vanished_series(&c, listed);

report:
    session_end(self);
    if (!c.first.cancelled) {
        emit1(sink, "k8s.up", up ? 1 : 0, "bool", NULL, NULL);
        if (c.failed || !up)
            emit1(sink, "k8s.error", 1, "bool", "reason",
                  c.first.reason[0] ? c.first.reason : "error");
    }
    if (c.series)
        free_series(c.series, c.nseries);
    for (size_t i = 0; c.nodes && i < c.nnodes; i++)
        free(c.nodes[i].name);
    free(c.nodes);
    free(listed);
}

/* ---- Evidence ---------------------------------------------------------------------------- */

/* The artifact being written, bounded: past the bound the rest is cut and a note says so. */
struct artifact {
    const struct artifact_writer *out;
    size_t written, max;
    bool truncated;
    int err;
};

static void art_write(void *userdata, const char *data, size_t len)
{
    struct artifact *a = userdata;
    if (a->err || a->truncated)
        return;
    if (len > a->max - a->written) {
        len = a->max - a->written;
        a->truncated = true;
    }
    if (len) {
        a->err = a->out->write(a->out->w, data, len);
        a->written += len;
    }
}

static void art_printf(struct artifact *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void art_printf(struct artifact *a, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n > 0)
        art_write(a, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static bool art_done(const struct artifact *a)
{
    return a->err || a->truncated;
}

struct capture {
    struct kube_probe *self;
    struct artifact art;
    struct kube_text text;
    struct failure down; /* set once the server stopped answering: every later step is skipped */
    bool is_down;
    time_t now;
};

static void heading(struct capture *cap, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void heading(struct capture *cap, const char *fmt, ...)
{
    char buf[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    art_printf(&cap->art, "\n== %s ==\n", buf);
}

/* One step's JSON, or NULL with the reason written into the artifact. */
static json_t *step_json(struct capture *cap, const char *path, const char *what)
{
    struct failure f = {0};
    json_t *j = NULL;
    long status = 0;

    if (cap->is_down) {
        art_printf(&cap->art, "skipped: %s\n", cap->down.text);
        return NULL;
    }
    int r = path ? get_json(cap->self, path, what, &j, &status, &f) : -ENOMEM;
    if (r < 0 || status == 401) {
        cap->down = f;
        cap->is_down = true;
    }
    if (!j)
        art_printf(&cap->art, "error: %s\n", f.text[0] ? f.text : "out of memory");
    return j;
}

static void step_log(struct capture *cap, const char *ns, const char *pod, const char *container,
                     bool previous)
{
    struct kube_probe *self = cap->self;
    char *epod = curl_easy_escape(self->easy, pod, 0);
    char *ec = curl_easy_escape(self->easy, container, 0);
    char *rest = NULL, *path = NULL;
    struct failure f = {0};
    struct body b = {0};
    long status = 0;

    heading(cap, "kubectl logs %s -n %s -c %s --tail=%d%s", pod, ns, container, LOG_TAIL_LINES,
            previous ? " --previous" : "");
    if (cap->is_down) {
        art_printf(&cap->art, "skipped: %s\n", cap->down.text);
        goto out;
    }
    if (!epod || !ec ||
        asprintf(&rest, "pods/%s/log?tailLines=%d&limitBytes=%d&container=%s%s", epod,
                 LOG_TAIL_LINES, LOG_MAX, ec, previous ? "&previous=true" : "") < 0) {
        rest = NULL;
        art_printf(&cap->art, "error: out of memory\n");
        goto out;
    }
    path = ns_path(self, API_CORE, ns, rest);
    int r = path ? get(self, path, LOG_MAX, "get pods/log", &b, &status, &f) : -ENOMEM;
    if (r < 0) {
        cap->down = f;
        cap->is_down = true;
        art_printf(&cap->art, "error: %s\n", f.text);
    } else if (status < 200 || status > 299) {
        char msg[256];
        status_message(&b, msg, sizeof(msg));
        art_printf(&cap->art, "error: HTTP %ld: %s\n", status, msg);
    } else if (b.len == 0) {
        art_printf(&cap->art, "(no log lines)\n");
    } else {
        kube_text_log(&cap->text, b.data, b.len);
        if (b.too_big)
            art_printf(&cap->art, "[log cut at %d bytes]\n", LOG_MAX);
    }
out:
    free(b.data);
    free(path);
    free(rest);
    curl_free(epod);
    curl_free(ec);
}

/* describe pod, its events and its containers' logs. */
static void describe_pod(struct capture *cap, const char *ns, const json_t *pod)
{
    struct kube_probe *self = cap->self;
    const char *name = json_string_value(json_object_get(json_object_get(pod, "metadata"), "name"));
    char *esc = NULL, *rest = NULL, *path = NULL;

    if (!name)
        return;
    heading(cap, "kubectl describe pod %s -n %s", name, ns);
    kube_text_pod(&cap->text, pod, cap->now);
    art_printf(&cap->art, "Events:\n");
    esc = curl_easy_escape(self->easy, name, 0);
    if (esc && asprintf(&rest, "events?fieldSelector=involvedObject.name%%3D%s", esc) >= 0)
        path = ns_path(self, API_CORE, ns, rest);
    else
        rest = NULL;
    json_t *events = step_json(cap, path, "list events");
    if (events)
        kube_text_events(&cap->text, events, cap->now, POD_EVENTS_MAX);
    json_decref(events);
    free(path);
    free(rest);
    curl_free(esc);

    /* Each container's log tail, and its previous instance's when it restarted. */
    json_t *statuses = json_object_get(json_object_get(pod, "status"), "containerStatuses");
    json_t *containers = json_object_get(json_object_get(pod, "spec"), "containers");
    size_t i;
    json_t *c;
    json_array_foreach(containers, i, c)
    {
        const char *cname = json_string_value(json_object_get(c, "name"));
        double restarts = 0;
        size_t j;
        json_t *cs;
        if (!cname || art_done(&cap->art))
            continue;
        json_array_foreach(statuses, j, cs)
        {
            const char *sname = json_string_value(json_object_get(cs, "name"));
            if (sname && strcmp(sname, cname) == 0 &&
                json_is_number(json_object_get(cs, "restartCount")))
                restarts = json_number_value(json_object_get(cs, "restartCount"));
        }
        step_log(cap, ns, name, cname, false);
        if (restarts > 0)
            step_log(cap, ns, name, cname, true);
    }
}

static void capture_namespace(struct capture *cap, const char *ns)
{
    struct kube_probe *self = cap->self;
    char *path;

    heading(cap, "kubectl get pods -n %s", ns);
    path = ns_path(self, API_CORE, ns, "pods");
    json_t *pods = step_json(cap, path, "list pods");
    free(path);
    if (pods) {
        kube_text_pods(&cap->text, pods, cap->now);
        size_t i, described = 0, troubled = 0;
        json_t *pod;
        json_array_foreach(json_object_get(pods, "items"), i, pod)
        {
            if (!json_is_object(pod) || !kube_pod_troubled(pod))
                continue;
            troubled++;
            if (described < DESCRIBE_PODS_MAX && !art_done(&cap->art)) {
                described++;
                describe_pod(cap, ns, pod);
            }
        }
        if (troubled > described)
            art_printf(&cap->art, "\n(%zu more pods not ready or restarted, not described)\n",
                       troubled - described);
        json_decref(pods);
    }

    heading(cap, "kubectl get ingress -n %s; kubectl describe ingress -n %s", ns, ns);
    path = ns_path(self, API_NET, ns, "ingresses");
    json_t *ingresses = step_json(cap, path, "list ingresses");
    free(path);
    if (ingresses)
        kube_text_ingresses(&cap->text, ingresses, cap->now);
    json_decref(ingresses);

    heading(cap, "kubectl get deployments -n %s", ns);
    path = ns_path(self, API_APPS, ns, "deployments");
    json_t *deployments = step_json(cap, path, "list deployments");
    free(path);
    if (deployments)
        kube_text_deployments(&cap->text, deployments, cap->now);
    json_decref(deployments);

    heading(cap, "kubectl get events -n %s --sort-by=.lastTimestamp (warnings first)", ns);
    path = ns_path(self, API_CORE, ns, "events");
    json_t *events = step_json(cap, path, "list events");
    free(path);
    if (events)
        kube_text_events(&cap->text, events, cap->now, NAMESPACE_EVENTS_MAX);
    json_decref(events);

    heading(cap, "kubectl top pods -n %s", ns);
    path = ns_path(self, API_METRICS, ns, "pods");
    json_t *metrics = step_json(cap, path, "list pod metrics");
    free(path);
    if (metrics)
        kube_text_top_pods(&cap->text, metrics);
    json_decref(metrics);
}

static void capture_nodes(struct capture *cap)
{
    heading(cap, "kubectl get nodes; kubectl describe nodes");
    json_t *nodes = step_json(cap, API_CORE "/nodes", "list nodes");
    if (nodes)
        kube_text_nodes(&cap->text, nodes, cap->now);
    heading(cap, "kubectl top nodes");
    json_t *metrics = step_json(cap, API_METRICS "/nodes", "list node metrics");
    if (metrics)
        kube_text_top_nodes(&cap->text, metrics, nodes);
    json_decref(metrics);
    json_decref(nodes);
}

static int kube_evidence(void *state, const struct artifact_writer *out, char *err, size_t errlen)
{
    struct kube_probe *self = state;
    struct failure f = {0};
    size_t max = self->max_artifact_bytes;
    struct capture cap = {
        .self = self,
        .art = {.out = out, .max = max > ARTIFACT_MARGIN ? max - ARTIFACT_MARGIN : max},
        .now = time(NULL),
    };
    cap.text = (struct kube_text){.write = art_write, .userdata = &cap.art};
    int r = 0;

    if (session_begin(self, &f) < 0) {
        snprintf(err, errlen, "%s", f.text);
        session_end(self);
        return -EINVAL;
    }
    /* The first request tells whether the server answers at all: no artifact if it does not. */
    struct body probe_body;
    long status = 0;
    r = get(self, "/version", 4096, "get /version", &probe_body, &status, &f);
    free(probe_body.data);
    if (r < 0 || status == 401) {
        snprintf(err, errlen, "%s", r < 0 ? f.text : "the API server refused the credentials");
        session_end(self);
        return r < 0 ? r : -EACCES;
    }
    char stamp[32];
    struct tm tm;
    gmtime_r(&cap.now, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
    art_printf(&cap.art, "# Kubernetes API %s at %s, evidence by vigil-agent\n", self->creds.server,
               stamp);
    for (size_t i = 0; i < self->nnamespaces && !art_done(&cap.art); i++)
        capture_namespace(&cap, self->namespaces[i]);
    if (!art_done(&cap.art))
        capture_nodes(&cap);
    session_end(self);

    if (cap.down.cancelled) {
        snprintf(err, errlen, "the agent is stopping");
        return -ECANCELED;
    }
    if (cap.art.truncated && !cap.art.err) {
        char note[96];
        int n = snprintf(note, sizeof(note), "\n[truncated at %zu bytes]\n", cap.art.written);
        cap.art.err = out->write(out->w, note, (size_t)n);
    }
    if (cap.art.err < 0) {
        snprintf(err, errlen, "cannot write the artifact: %s", strerror(-cap.art.err));
        return cap.art.err;
    }
    return 0;
}

/* ---- Lifecycle --------------------------------------------------------------------------- */

static void kube_close(void *state)
{
    struct kube_probe *self = state;
    if (!self)
        return;
    session_end(self);
    if (self->multi)
        curl_multi_cleanup(self->multi);
    free(self->kubeconfig);
    free(self->context);
    for (size_t i = 0; i < self->nnamespaces; i++)
        free(self->namespaces[i]);
    free(self->namespaces);
    free_series(self->restarts, self->nrestarts);
    free(self);
    curl_global_cleanup();
}

/* A namespace is a DNS label: lowercase letters, digits and '-', at most 63. */
static bool namespace_valid(const char *ns)
{
    size_t n = ns ? strlen(ns) : 0;
    if (n == 0 || n > 63 || ns[0] == '-' || ns[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!((ns[i] >= 'a' && ns[i] <= 'z') || (ns[i] >= '0' && ns[i] <= '9') || ns[i] == '-'))
            return false;
    }
    return true;
}

static void *kube_open(const struct probe_target_config *target, const struct probe_options *opt,
                       char *err, size_t errlen)
{
    struct kube_creds creds;

    for (size_t i = 0; i < target->namespaces.count; i++) {
        if (!namespace_valid(target->namespaces.items[i])) {
            snprintf(err, errlen, "namespaces[%zu]: \"%.64s\" is not a namespace name", i,
                     target->namespaces.items[i] ? target->namespaces.items[i] : "");
            return NULL;
        }
    }
    /* Unreadable or refused credentials are a configuration error, found now. */
    const struct kube_source src = {
        .kubeconfig = target->kubeconfig,
        .context = target->context,
    };
    if (kube_creds_load(&src, &creds, err, errlen) < 0)
        return NULL;
    kube_creds_clear(&creds);

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "libcurl cannot initialise");
        return NULL;
    }
    struct kube_probe *self = calloc(1, sizeof(*self));
    if (!self) {
        curl_global_cleanup();
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->timeout_ms = opt->timeout_ms;
    self->max_artifact_bytes = opt->max_artifact_bytes;
    self->cancel_fd = opt->cancel_fd;
    self->multi = curl_multi_init();
    if (!self->multi)
        goto err_oom;
    if (target->kubeconfig && target->kubeconfig[0] &&
        !(self->kubeconfig = strdup(target->kubeconfig)))
        goto err_oom;
    if (target->context && target->context[0] && !(self->context = strdup(target->context)))
        goto err_oom;
    if (target->namespaces.count) {
        self->namespaces = calloc(target->namespaces.count, sizeof(char *));
        if (!self->namespaces)
            goto err_oom;
        for (size_t i = 0; i < target->namespaces.count; i++) {
            if (!(self->namespaces[i] = strdup(target->namespaces.items[i])))
                goto err_oom;
            self->nnamespaces++;
        }
    }
    return self;

err_oom:
    snprintf(err, errlen, "out of memory");
    kube_close(self);
    return NULL;
}

__attribute__((visibility("default"))) const struct probe_module vigil_probe_module = {
    .abi = PROBE_ABI_VERSION,
    .kind = "kubernetes",
    .open = kube_open,
    .run = kube_run,
    .evidence = kube_evidence,
    .close = kube_close,
};
