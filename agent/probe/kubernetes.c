/*
 * Kubernetes probe module (vigil-probe-kubernetes.so, libcurl + jansson): the runbooks' kubectl
 * investigation steps as signals and evidence, for the cluster agent (role: cluster).
 *
 * Credentials: a kubeconfig file and context, or the in-cluster ServiceAccount (token and CA
 * under /var/run/secrets/kubernetes.io/serviceaccount), loaded by agent/action/kubeconfig.c at
 * every cycle and capture, so a rotated token is picked up. The server's certificate is always
 * verified; proxies from the environment are ignored.
 *
 * Watches: pods, deployments and events of each namespace and the nodes are listed once and then
 * watched (?watch=1&resourceVersion=RV&allowWatchBookmarks=true&timeoutSeconds=300) into an
 * in-memory copy per collection (kube_watch.c), which the signals are computed from. The watch
 * transfers live in their own multi handle across cycles; nothing reads them between cycles
 * (the kernel and the server buffer), and each cycle (a) reads what arrived for at most
 * WATCH_PUMP_MS, (b) asks the metrics API, the one request of every cycle, so that a server
 * that stopped answering is seen even while the watches are idle, (c) looks at the watches that
 * ended: a server timeout, a dropped connection or an ERROR event resume from the last
 * resourceVersion seen (an event's or a BOOKMARK's); 410 Gone (an ERROR event with code 410 or
 * an HTTP 410) or another refusal (403, 5xx) lists that collection again, (d) emits, and (e)
 * starts the watches that are not running and lets them connect for at most WATCH_CONNECT_MS.
 * Every wait watches cancel_fd; no watch outlives timeoutSeconds plus WATCH_GRACE_S.
 *
 * Signals, each with target=<name> added by the agent (all requests of a cycle within one
 * timeout):
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
 * Evidence kinds with arguments (probe_module.evidence_kind), one kubectl step each, in the
 * namespace given or each of the target's (another is refused): k8s_pods (get pods, selector=,
 * field=), k8s_describe (kind=pod|deployment name=, or the troubled ones, with their events),
 * k8s_logs (pod= container=, or selector=, or the troubled pods; lines= 1..LOGS_LINES_MAX,
 * previous=), k8s_ingress, k8s_config (a ConfigMap's data, the names of the Secrets a
 * deployment references; never a Secret), k8s_top ("metrics API not available" without
 * metrics-server). Every value is checked before it reaches a URL: names as DNS-1123, selectors
 * equality-based from a small alphabet, and all of them escaped anyway.
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
#include "kube_watch.h"
#include "kubeconfig.h"
#include "log.h"
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
#define LOGS_LINES_MAX 5000   /* k8s_logs lines= */
#define WATCH_TIMEOUT_S 300   /* timeoutSeconds of a watch: the server ends it, the probe resumes */
#define WATCH_GRACE_S 30      /* past timeoutSeconds, libcurl ends a watch the server did not */
#define WATCH_TURN_MS 20      /* a quiet turn of this long: the watches have read what there was */
#define WATCH_PUMP_MS 500     /* reading the watches at the start of a cycle, at most */
#define WATCH_CONNECT_MS 1000 /* letting new watches connect at the end of a cycle, at most */
#define ARTIFACT_MARGIN 128   /* room kept for the truncation note */

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
    /* The watched collections: pods, deployments, events of each namespace (3 per namespace,
     * in that order), then nodes; their transfers run on watch_multi across cycles. */
    struct watch *watches;
    size_t nwatches;
    CURLM *watch_multi;
    uint64_t watch_activity; /* bytes callbacks and ended watches: watch_pump's progress */
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

/* ---- Watches ----------------------------------------------------------------------------- */

/* A collection the probe keeps a copy of: listed once, then watched. */
struct resource {
    const char *api;    /* API_CORE, API_APPS */
    const char *plural; /* "pods" */
    const char *list;   /* "list pods": names the request in reasons */
    const char *watch;  /* "watch pods" */
};

static const struct resource RES_PODS = {API_CORE, "pods", "list pods", "watch pods"};
static const struct resource RES_DEPLOYMENTS = {API_APPS, "deployments", "list deployments",
                                                "watch deployments"};
static const struct resource RES_EVENTS = {API_CORE, "events", "list events", "watch events"};
static const struct resource RES_NODES = {API_CORE, "nodes", "list nodes", "watch nodes"};

struct watch {
    struct kube_probe *self;
    const struct resource *res;
    const char *ns; /* borrowed from self->namespaces; NULL for nodes */
    struct kube_cache cache;
    bool synced; /* the cache holds a list and the events since: watch from cache.rv */
    /* The watch in flight (easy is NULL when there is none): */
    CURL *easy;
    struct curl_slist *headers;
    struct kube_watch_stream stream;
    char error_body[512]; /* the start of an answer that is not 200 */
    size_t error_len;
    /* How the last one ended, until watch_maintain looks: */
    bool ended;
    long status;     /* its HTTP status (0: none) */
    bool gone;       /* 410 Gone as an ERROR event: list again */
    bool restart;    /* an ERROR event, a full cache: watch again from cache.rv */
    bool malformed;  /* a line that is no watch event, or longer than the bound */
    CURLcode result; /* the transfer's */
};

/* The headers of a request with creds: Accept, and the bearer token when there is one. */
static struct curl_slist *request_headers(const struct kube_creds *creds)
{
    struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json, */*");
    if (h && creds->token) {
        char *auth = NULL;
        if (asprintf(&auth, "Authorization: Bearer %s", creds->token) < 0) {
            curl_slist_free_all(h);
            return NULL;
        }
        struct curl_slist *grown = curl_slist_append(h, auth);
        explicit_bzero(auth, strlen(auth));
        free(auth);
        if (!grown) {
            curl_slist_free_all(h);
            return NULL;
        }
        h = grown;
    }
    return h;
}

static int on_watch_line(void *userdata, const char *line, size_t len)
{
    struct watch *w = userdata;
    struct kube_watch_event ev;

    if (kube_watch_decode(line, len, &ev) < 0) {
        w->malformed = true;
        return -EPROTO;
    }
    enum kube_apply a = kube_cache_apply(&w->cache, &ev);
    if (ev.type == KUBE_WATCH_ERROR)
        vg_log(VG_LOG_DEBUG, "kubernetes: %s%s%s: ERROR event %d: %s", w->res->watch,
               w->ns ? " -n " : "", w->ns ? w->ns : "", ev.code, ev.message);
    kube_watch_event_clear(&ev);
    if (a == KUBE_APPLY_GONE) {
        w->gone = true;
        return -ESTALE;
    }
    if (a == KUBE_APPLY_RESTART) {
        w->restart = true;
        return -EAGAIN;
    }
    return 0;
}

static size_t on_watch_data(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct watch *w = userdata;
    size_t n = size * nmemb;
    long status = 0;

    curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        /* A Status object (410 Gone, 403...): its start, for the log. */
        size_t room = sizeof(w->error_body) - 1 - w->error_len;
        size_t take = n < room ? n : room;
        memcpy(w->error_body + w->error_len, data, take);
        w->error_len += take;
        w->error_body[w->error_len] = '\0';
        return n;
    }
    w->self->watch_activity++;
    int r = kube_watch_feed(&w->stream, data, n, on_watch_line, w);
    if (r == -E2BIG)
        w->malformed = true;
    else if (r < 0 && !w->gone && !w->malformed)
        w->restart = true;
    return r < 0 ? 0 : n; /* 0 ends the transfer */
}

/* Ends the watch in flight, if any (its outcome stays for watch_maintain). */
static void watch_stop(struct watch *w)
{
    if (w->easy) {
        curl_multi_remove_handle(w->self->watch_multi, w->easy);
        curl_easy_cleanup(w->easy);
        w->easy = NULL;
    }
    curl_slist_free_all(w->headers);
    w->headers = NULL;
    kube_watch_stream_clear(&w->stream);
}

/* vg_curl_multi_step's done hook: a watch ended (the server's timeoutSeconds, a dropped
 * connection, an error, or on_watch_data stopped it). */
static void on_watch_done(void *userdata, CURL *easy, CURLcode result)
{
    struct watch *w = NULL;
    (void)userdata;

    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&w);
    if (!w || w->easy != easy)
        return;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &w->status);
    w->self->watch_activity++;
    w->result = result;
    w->ended = true;
    watch_stop(w);
}

/* Starts watching w's collection from w->cache.rv, with the session's credentials. */
static int watch_start(struct kube_probe *self, struct watch *w)
{
    char *rv = curl_easy_escape(self->easy, w->cache.rv, 0);
    char *ns = w->ns ? curl_easy_escape(self->easy, w->ns, 0) : NULL;
    char *url = NULL;
    int r = -ENOMEM;

    w->ended = w->gone = w->restart = w->malformed = false;
    w->status = 0;
    w->result = CURLE_OK;
    w->error_len = 0;
    w->error_body[0] = '\0';
    if (!rv || (w->ns && !ns))
        goto out;
    int n = w->ns
                ? asprintf(&url,
                           "%s%s/namespaces/%s/%s?watch=1&resourceVersion=%s"
                           "&allowWatchBookmarks=true&timeoutSeconds=%d",
                           self->creds.server, w->res->api, ns, w->res->plural, rv, WATCH_TIMEOUT_S)
                : asprintf(&url,
                           "%s%s/%s?watch=1&resourceVersion=%s&allowWatchBookmarks=true"
                           "&timeoutSeconds=%d",
                           self->creds.server, w->res->api, w->res->plural, rv, WATCH_TIMEOUT_S);
    if (n < 0) {
        url = NULL;
        goto out;
    }
    w->headers = request_headers(&self->creds);
    w->easy = curl_easy_init();
    if (!w->headers || !w->easy)
        goto err_stop;
    CURL *e = w->easy;
    if (kube_tls_setup(e, &self->creds, "vigil-agent/" VIGIL_VERSION) != CURLE_OK) {
        r = -EINVAL;
        goto err_stop;
    }
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, w->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_watch_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, w);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)w);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)self->timeout_ms);
    /* The server ends the watch after timeoutSeconds; this is the backstop for one that
     * does not, so no watch outlives its usefulness. */
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(WATCH_TIMEOUT_S + WATCH_GRACE_S) * 1000L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 10L);
    if (curl_multi_add_handle(self->watch_multi, e) != CURLM_OK)
        goto err_stop;
    r = 0;
    goto out;

err_stop:
    watch_stop(w);
out:
    free(url);
    curl_free(rv);
    curl_free(ns);
    return r;
}

/* True while a watch has not had its answer's status line yet (connecting, TLS). */
static bool watch_connecting(const struct kube_probe *self)
{
    for (size_t i = 0; i < self->nwatches; i++) {
        long status = 0;
        if (!self->watches[i].easy)
            continue;
        curl_easy_getinfo(self->watches[i].easy, CURLINFO_RESPONSE_CODE, &status);
        if (status == 0)
            return true;
    }
    return false;
}

/* Lets the watches read what the server sent them, for at most budget_ms: returns as soon as
 * no watch is connecting and a turn brought nothing new. 0 or -ECANCELED. */
static int watch_pump(struct kube_probe *self, int64_t budget_ms)
{
    const struct vg_curl_hooks hooks = {
        .cancel_fd = self->cancel_fd, .done = on_watch_done, .userdata = self};
    int64_t until = vg_mono_ms() + budget_ms;

    for (;;) {
        int running = 0;
        uint64_t activity = self->watch_activity;
        int r = vg_curl_multi_step(self->watch_multi, &hooks, WATCH_TURN_MS, &running);
        if (r == -ECANCELED)
            return r;
        if (r < 0 || running == 0 || vg_mono_ms() >= until)
            return 0;
        /* Quiet: every watch is connected and this turn changed nothing. */
        if (!watch_connecting(self) && self->watch_activity == activity)
            return 0;
    }
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

/* f's reason naming the request, as a label value: "protocol: watch pods". */
static void name_reason(struct failure *f, const char *prefix, const char *what)
{
    char reason[sizeof(f->reason)];
    snprintf(reason, sizeof(reason), "%s: %s", prefix, what);
    copy_printable(f->reason, sizeof(f->reason), reason);
}

static void emit1(const struct probe_sink *sink, const char *name, double value, const char *unit,
                  const char *key, const char *label_value)
{
    struct probe_label label = {key, label_value};
    sink->emit(sink->sink, name, value, unit, key ? &label : NULL, key ? 1 : 0);
}

/* How the watch that ended since the last cycle went, and whether its cache still holds. */
static void watch_outcome(struct cycle *c, struct watch *w)
{
    struct failure f = {0};
    const char *where = w->ns ? w->ns : "(cluster)";

    if (!w->ended)
        return;
    w->ended = false;
    if (w->gone || w->status == 410) {
        /* The resourceVersion is older than the server keeps: what changed since is lost. */
        vg_log(VG_LOG_DEBUG, "kubernetes: %s namespace=%s: 410 Gone, listing again", w->res->watch,
               where);
        w->synced = false;
    } else if (w->status == 401) {
        w->synced = false; /* the list says it: the credentials, the server down */
    } else if (w->status != 200 && w->status != 0) {
        char msg[256];
        const struct body b = {.data = w->error_body, .len = w->error_len};
        status_message(&b, msg, sizeof(msg));
        if (w->status == 403) {
            fail(&f, false, "forbidden", "%s: HTTP 403 (does the Role allow it?): %s",
                 w->res->watch, msg);
            name_reason(&f, "forbidden", w->res->watch);
        } else {
            fail(&f, false, "status", "%s: HTTP %ld: %s", w->res->watch, w->status, msg);
            char prefix[32];
            snprintf(prefix, sizeof(prefix), "status %ld", w->status);
            name_reason(&f, prefix, w->res->watch);
        }
        note_failure(c, &f);
        w->synced = false; /* the list tells what the watch could not */
    } else if (w->restart && kube_cache_size(&w->cache) >= KUBE_CACHE_OBJECTS_MAX) {
        fail(&f, false, "too large", "%s: more than %d objects", w->res->watch,
             KUBE_CACHE_OBJECTS_MAX);
        name_reason(&f, "too large", w->res->watch);
        note_failure(c, &f);
    } else if (w->malformed) {
        fail(&f, false, "protocol", "%s: the answer is not a watch stream", w->res->watch);
        name_reason(&f, "protocol", w->res->watch);
        note_failure(c, &f);
    } else {
        /* The server's timeoutSeconds, a dropped connection, an ERROR event: resume. */
        vg_log(VG_LOG_DEBUG, "kubernetes: %s namespace=%s ended (%s), resuming from %s",
               w->res->watch, where, curl_easy_strerror(w->result), w->cache.rv);
    }
}

/* Brings w's cache up to date for this cycle: takes the outcome of the watch that ended, and
 * lists the collection when the cache does not hold. False when the server is down. */
static bool watch_maintain(struct cycle *c, struct watch *w)
{
    struct kube_probe *self = c->self;
    struct failure f = {0};
    json_t *list = NULL;

    watch_outcome(c, w);
    if (w->synced)
        return true;
    watch_stop(w);
    char *path = w->ns ? ns_path(self, w->res->api, w->ns, w->res->plural) : NULL;
    if (!w->ns && asprintf(&path, "%s/%s", w->res->api, w->res->plural) < 0)
        path = NULL;
    int r = path ? get_json(self, path, w->res->list, &list, NULL, &f) : -ENOMEM;
    free(path);
    if (r < 0 || f.down) {
        note_failure(c, &f);
        return false;
    }
    if (f.reason[0])
        note_failure(c, &f);
    if (!list)
        return true;
    r = kube_cache_replace(&w->cache, list);
    json_decref(list);
    if (r == 0) {
        w->synced = true;
        return true;
    }
    f = (struct failure){0};
    if (r == -E2BIG)
        fail(&f, false, "too large", "%s: more than %d objects", w->res->list,
             KUBE_CACHE_OBJECTS_MAX);
    else
        fail(&f, false, "protocol", "%s: the answer is not a list", w->res->list);
    name_reason(&f, r == -E2BIG ? "too large" : "protocol", w->res->list);
    note_failure(c, &f);
    return true;
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

/* The cached collection of w as a List, or NULL (never listed, or out of memory). */
static json_t *cached(const struct watch *w)
{
    return w->synced ? kube_cache_list(&w->cache) : NULL;
}

/* Pods, deployments and events of namespace i, from the caches. */
static void emit_namespace(struct cycle *c, size_t i, bool *ret_pods_listed)
{
    struct kube_probe *self = c->self;
    const char *ns = self->namespaces[i];
    json_t *list = cached(&self->watches[i * 3]);

    *ret_pods_listed = false;
    if (list) {
        struct kube_pods_summary s;
        c->ns = ns;
        if (kube_decode_pods(list, &s, on_pod_restarts, c) == 0) {
            *ret_pods_listed = true;
            emit1(c->sink, "k8s.pods_not_ready", s.not_ready, "pods", "namespace", ns);
            emit1(c->sink, "k8s.crashloop", s.crashloop, "containers", "namespace", ns);
            emit1(c->sink, "k8s.oomkilled", s.oomkilled, "containers", "namespace", ns);
        }
        json_decref(list);
    }
    list = cached(&self->watches[i * 3 + 1]);
    if (list) {
        unsigned unavailable;
        if (kube_decode_deployments(list, &unavailable) == 0)
            emit1(c->sink, "k8s.deployments_unavailable", unavailable, "deployments", "namespace",
                  ns);
        json_decref(list);
    }
    list = cached(&self->watches[i * 3 + 2]);
    if (list) {
        unsigned warnings;
        if (kube_decode_warning_events(list, time(NULL), WARNING_EVENTS_WINDOW_S, &warnings) == 0)
            emit1(c->sink, "k8s.warning_events", warnings, "events", "namespace", ns);
        json_decref(list);
    }
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

/* Nodes from the cache, and their usage from metrics (NULL when the metrics API did not
 * answer with a list: no metrics-server is no error). */
static void emit_nodes(struct cycle *c, const json_t *metrics)
{
    struct kube_probe *self = c->self;
    json_t *list = cached(&self->watches[self->nwatches - 1]);
    struct kube_nodes_summary s;

    if (!list)
        return;
    if (kube_decode_nodes(list, &s, on_node_alloc, c) == 0) {
        emit1(c->sink, "k8s.nodes_not_ready", s.not_ready, "nodes", NULL, NULL);
        emit1(c->sink, "k8s.nodes_memory_pressure", s.memory_pressure, "nodes", NULL, NULL);
        emit1(c->sink, "k8s.nodes_disk_pressure", s.disk_pressure, "nodes", NULL, NULL);
    }
    json_decref(list);
    if (metrics)
        kube_decode_node_metrics(metrics, on_node_usage, c);
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
 * the namespaces whose pods it knows (unless some pods did not fit the bound); keeps the others
 * for the next cycle, as many as fit. Takes c->series. */
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
            /* Not known this time: still unknown, remember it. */
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

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/*
 * One cycle: read what the watches brought since the last one, ask the metrics API (the one
 * request every cycle makes, so a server that stopped answering is seen even while the
 * watches are idle), list the collections whose cache does not hold (the first cycle, after a
 * 410 Gone or a refused watch), emit the signals from the caches, and start the watches that
 * are not running, from the resourceVersion each cache last saw.
 */
static void kube_run(void *state, const struct probe_sink *sink)
{
    struct kube_probe *self = state;
    struct cycle c = {.self = self, .sink = sink};
    bool *listed = calloc(self->nnamespaces + 1, sizeof(*listed));
    struct failure f = {0};
    json_t *metrics = NULL;
    long status = 0;
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
    if (watch_pump(self, min64(WATCH_PUMP_MS, self->timeout_ms / 4)) == -ECANCELED) {
        c.first.cancelled = true;
        goto report;
    }
    int r = get_json(self, API_METRICS "/nodes", "list node metrics", &metrics, &status, &f);
    if (r < 0 || (f.down && status == 401)) {
        note_failure(&c, &f);
        goto report;
    }
    for (size_t i = 0; i < self->nwatches; i++) {
        if (!watch_maintain(&c, &self->watches[i]))
            goto report;
    }
    up = true;
    for (size_t i = 0; i < self->nnamespaces; i++)
        emit_namespace(&c, i, &listed[i]);
    emit_nodes(&c, metrics);
    end_vanished_series(&c, listed);

    for (size_t i = 0; i < self->nwatches; i++) {
        struct watch *w = &self->watches[i];
        if (w->synced && !w->easy && watch_start(self, w) < 0)
            vg_log(VG_LOG_DEBUG, "kubernetes: cannot start %s", w->res->watch);
    }
    /* Let the new watches connect while the session's time lasts. */
    int64_t left = self->deadline - vg_mono_ms();
    if (left > 0 && watch_pump(self, min64(left, WATCH_CONNECT_MS)) == -ECANCELED)
        c.first.cancelled = true;

report:
    session_end(self);
    json_decref(metrics);
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

/* An optional API (the metrics API without metrics-server answers 404 or 503). */
struct optional_api {
    const char *name, *group, *hint;
};

/* One step's JSON, or NULL with the reason written into the artifact; an optional API that is
 * not there is said to be "not available". */
static json_t *step_fetch(struct capture *cap, const char *path, const char *what,
                          const struct optional_api *absent)
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
    if (!j && absent && (status == 404 || status == 503))
        art_printf(&cap->art, "%s not available (%s answered HTTP %ld: %s)\n", absent->name,
                   absent->group, status, absent->hint);
    else if (!j)
        art_printf(&cap->art, "error: %s\n", f.text[0] ? f.text : "out of memory");
    return j;
}

static json_t *step_json(struct capture *cap, const char *path, const char *what)
{
    return step_fetch(cap, path, what, NULL);
}

static void step_log(struct capture *cap, const char *ns, const char *pod, const char *container,
                     int lines, bool previous)
{
    struct kube_probe *self = cap->self;
    char *epod = curl_easy_escape(self->easy, pod, 0);
    char *ec = curl_easy_escape(self->easy, container, 0);
    char *rest = NULL, *path = NULL;
    struct failure f = {0};
    struct body b = {0};
    long status = 0;

    heading(cap, "kubectl logs %s -n %s -c %s --tail=%d%s", pod, ns, container, lines,
            previous ? " --previous" : "");
    if (cap->is_down) {
        art_printf(&cap->art, "skipped: %s\n", cap->down.text);
        goto out;
    }
    if (!epod || !ec ||
        asprintf(&rest, "pods/%s/log?tailLines=%d&limitBytes=%d&container=%s%s", epod, lines,
                 LOG_MAX, ec, previous ? "&previous=true" : "") < 0) {
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
        step_log(cap, ns, name, cname, LOG_TAIL_LINES, false);
        if (restarts > 0)
            step_log(cap, ns, name, cname, LOG_TAIL_LINES, true);
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

/* Starts a capture: the session, a first request that tells whether the server answers at all
 * (no artifact if it does not), and the artifact's first line. 0, or a negative errno with err
 * set (the session is then ended). */
static int capture_begin(struct capture *cap, const struct artifact_writer *out, const char *what,
                         char *err, size_t errlen)
{
    struct kube_probe *self = cap->self;
    struct failure f = {0};
    size_t max = self->max_artifact_bytes;

    *cap = (struct capture){
        .self = self,
        .art = {.out = out, .max = max > ARTIFACT_MARGIN ? max - ARTIFACT_MARGIN : max},
        .now = time(NULL),
    };
    cap->text = (struct kube_text){.write = art_write, .userdata = &cap->art};
    if (session_begin(self, &f) < 0) {
        snprintf(err, errlen, "%s", f.text);
        session_end(self);
        return -EINVAL;
    }
    struct body probe_body;
    long status = 0;
    int r = get(self, "/version", 4096, "get /version", &probe_body, &status, &f);
    free(probe_body.data);
    if (r < 0 || status == 401) {
        snprintf(err, errlen, "%s", r < 0 ? f.text : "the API server refused the credentials");
        session_end(self);
        return r < 0 ? r : -EACCES;
    }
    char stamp[32];
    struct tm tm;
    gmtime_r(&cap->now, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
    art_printf(&cap->art, "# Kubernetes API %s at %s, evidence by vigil-agent%s%s\n",
               self->creds.server, stamp, what ? ": " : "", what ? what : "");
    return 0;
}

/* Ends a capture: the session, the truncation note. 0 or a negative errno with err set. */
static int capture_end(struct capture *cap, char *err, size_t errlen)
{
    session_end(cap->self);
    if (cap->down.cancelled) {
        snprintf(err, errlen, "the agent is stopping");
        return -ECANCELED;
    }
    if (cap->art.truncated && !cap->art.err) {
        char note[96];
        int n = snprintf(note, sizeof(note), "\n[truncated at %zu bytes]\n", cap->art.written);
        cap->art.err = cap->art.out->write(cap->art.out->w, note, (size_t)n);
    }
    if (cap->art.err < 0) {
        snprintf(err, errlen, "cannot write the artifact: %s", strerror(-cap->art.err));
        return cap->art.err;
    }
    return 0;
}

static int kube_evidence(void *state, const struct artifact_writer *out, char *err, size_t errlen)
{
    struct capture cap = {.self = state};
    int r = capture_begin(&cap, out, NULL, err, errlen);

    if (r < 0)
        return r;
    for (size_t i = 0; i < cap.self->nnamespaces && !art_done(&cap.art); i++)
        capture_namespace(&cap, cap.self->namespaces[i]);
    if (!art_done(&cap.art))
        capture_nodes(&cap);
    return capture_end(&cap, err, errlen);
}

/* ---- Evidence kinds with arguments: one kubectl step each ------------------------------- */

/* The arguments of a k8s_* kind, each checked before it reaches a URL. */
struct step_args {
    const char *namespaces[1]; /* namespace=, when given */
    const char *const *ns;     /* the namespaces to look in: namespaces, or the target's */
    size_t nns;
    const char *selector, *field; /* k8s_pods */
    bool deployment;              /* k8s_describe kind=deployment */
    const char *name;             /* k8s_describe, k8s_config: the object; NULL = the troubled */
    const char *pod, *container;  /* k8s_logs */
    int lines;
    bool previous;
    const char *workload; /* k8s_config */
};

static const char *arg_of(const struct probe_label *args, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (args[i].key && strcmp(args[i].key, key) == 0)
            return args[i].value;
    return NULL;
}

static bool lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* A DNS-1123 subdomain (pods, deployments, configmaps): at most 253 bytes of dot-separated
 * labels of lowercase letters, digits and '-', each starting and ending with a letter or
 * digit. */
static bool subdomain_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        bool edge = i == 0 || i == n - 1 || s[i - 1] == '.' || s[i + 1] == '.';
        if (lower_alnum(s[i]))
            continue;
        if ((s[i] == '-' || s[i] == '.') && !edge)
            continue;
        return false;
    }
    return true;
}

/* An equality-based label or field selector ("app=backend,tier!=cache"): letters, digits and
 * . _ / - = ! , only, at most 256 bytes. */
static bool selector_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 256)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!(lower_alnum(c) || (c >= 'A' && c <= 'Z') || strchr("._/-=!,", c)))
            return false;
    }
    return true;
}

/* Shown in an error: at most 64 printable bytes of a value that was refused. */
static const char *shown(const char *value, char *buf, size_t size)
{
    copy_printable(buf, size < 65 ? size : 65, value ? value : "");
    return buf;
}

static int parse_step_args(const struct kube_probe *self, const char *kind,
                           const struct probe_label *args, size_t nargs, struct step_args *ret,
                           char *err, size_t errlen)
{
    struct step_args a = {.lines = LOG_TAIL_LINES};
    const char *ns = arg_of(args, nargs, "namespace");
    const char *v;
    char q[72];

    if (ns) {
        bool watched = false;
        if (!namespace_valid(ns)) {
            snprintf(err, errlen, "namespace: \"%s\" is not a namespace name", shown(ns, q, 72));
            return -EINVAL;
        }
        for (size_t i = 0; i < self->nnamespaces && !watched; i++)
            watched = strcmp(self->namespaces[i], ns) == 0;
        if (!watched) {
            snprintf(err, errlen, "namespace: \"%s\" is not one of the target's namespaces", ns);
            return -EINVAL;
        }
        a.namespaces[0] = ns;
        a.ns = a.namespaces;
        a.nns = 1;
    } else {
        if (self->nnamespaces == 0) {
            snprintf(err, errlen, "the target watches no namespace (namespaces: [])");
            return -EINVAL;
        }
        a.ns = (const char *const *)self->namespaces;
        a.nns = self->nnamespaces;
    }
    if ((a.selector = arg_of(args, nargs, "selector")) && !selector_valid(a.selector)) {
        snprintf(err, errlen,
                 "selector: \"%s\" is not an equality-based label selector (app=backend,tier!=db)",
                 shown(a.selector, q, 72));
        return -EINVAL;
    }
    if ((a.field = arg_of(args, nargs, "field")) && !selector_valid(a.field)) {
        snprintf(err, errlen,
                 "field: \"%s\" is not an equality-based field selector (status.phase!=Running)",
                 shown(a.field, q, 72));
        return -EINVAL;
    }
    if ((v = arg_of(args, nargs, "kind"))) {
        if (strcmp(v, "deployment") == 0)
            a.deployment = true;
        else if (strcmp(v, "pod") != 0) {
            snprintf(err, errlen, "kind: must be pod or deployment (got \"%s\")", shown(v, q, 72));
            return -EINVAL;
        }
    }
    static const char *const names[] = {"name", "pod", "workload"};
    const char **dst[] = {&a.name, &a.pod, &a.workload};
    for (size_t i = 0; i < 3; i++) {
        *dst[i] = arg_of(args, nargs, names[i]);
        if (*dst[i] && !subdomain_valid(*dst[i])) {
            snprintf(err, errlen, "%s: \"%s\" is not a Kubernetes object name (DNS-1123)", names[i],
                     shown(*dst[i], q, 72));
            return -EINVAL;
        }
    }
    if ((a.container = arg_of(args, nargs, "container")) && !namespace_valid(a.container)) {
        snprintf(err, errlen, "container: \"%s\" is not a container name (DNS-1123 label)",
                 shown(a.container, q, 72));
        return -EINVAL;
    }
    if (a.pod && a.selector) {
        snprintf(err, errlen, "selector: give pod or selector, not both");
        return -EINVAL;
    }
    if (a.container && !a.pod) {
        snprintf(err, errlen, "container: give the pod too (pod=NAME)");
        return -EINVAL;
    }
    if ((v = arg_of(args, nargs, "lines"))) {
        char *end;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (errno || end == v || *end || n < 1 || n > LOGS_LINES_MAX) {
            snprintf(err, errlen, "lines: must be a number between 1 and %d (got \"%s\")",
                     LOGS_LINES_MAX, shown(v, q, 72));
            return -EINVAL;
        }
        a.lines = (int)n;
    }
    if ((v = arg_of(args, nargs, "previous"))) {
        if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0) {
            snprintf(err, errlen, "previous: must be true or false (got \"%s\")", shown(v, q, 72));
            return -EINVAL;
        }
        a.previous = strcmp(v, "true") == 0;
    }
    /* An object named in one namespace of several: which one? */
    if ((a.name || a.pod || a.workload) && a.nns > 1) {
        snprintf(err, errlen, "namespace: name the namespace of %s (the target watches %zu)",
                 a.name  ? a.name
                 : a.pod ? a.pod
                         : a.workload,
                 a.nns);
        return -EINVAL;
    }
    (void)kind;
    *ret = a;
    return 0;
}

/* "/api/v1/namespaces/NS/pods/NAME" with NAME escaped; NULL when out of memory. */
static char *object_path(struct kube_probe *self, const char *api, const char *ns,
                         const char *plural, const char *name)
{
    char *esc = curl_easy_escape(self->easy, name, 0);
    char *rest = NULL, *path = NULL;
    if (esc && asprintf(&rest, "%s/%s", plural, esc) >= 0)
        path = ns_path(self, api, ns, rest);
    free(rest);
    curl_free(esc);
    return path;
}

/* k8s_pods: kubectl get pods -n NS [-l SELECTOR] [--field-selector FIELD]. */
static void step_pods(struct capture *cap, const struct step_args *a)
{
    struct kube_probe *self = cap->self;

    for (size_t i = 0; i < a->nns && !art_done(&cap->art); i++) {
        char *sel = a->selector ? curl_easy_escape(self->easy, a->selector, 0) : NULL;
        char *field = a->field ? curl_easy_escape(self->easy, a->field, 0) : NULL;
        char *rest = NULL, *path = NULL;
        heading(cap, "kubectl get pods -n %s%s%s%s%s", a->ns[i], a->selector ? " -l " : "",
                a->selector ? a->selector : "", a->field ? " --field-selector " : "",
                a->field ? a->field : "");
        if ((!a->selector || sel) && (!a->field || field) &&
            asprintf(&rest, "pods?%s%s%s%s", sel ? "labelSelector=" : "", sel ? sel : "",
                     field ? (sel ? "&fieldSelector=" : "fieldSelector=") : "",
                     field ? field : "") >= 0)
            path = ns_path(self, API_CORE, a->ns[i], rest);
        else
            rest = NULL;
        json_t *pods = step_json(cap, path, "list pods");
        if (pods)
            kube_text_pods(&cap->text, pods, cap->now);
        json_decref(pods);
        free(path);
        free(rest);
        curl_free(sel);
        curl_free(field);
    }
}

/* The events of one object, most recent first. */
static void object_events(struct capture *cap, const char *ns, const char *kind, const char *name)
{
    struct kube_probe *self = cap->self;
    char *esc = curl_easy_escape(self->easy, name, 0);
    char *rest = NULL, *path = NULL;

    art_printf(&cap->art, "Events:\n");
    if (esc &&
        asprintf(&rest,
                 "events?fieldSelector=involvedObject.name%%3D%s%%2CinvolvedObject.kind%%3D%s", esc,
                 kind) >= 0)
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
}

static void describe_deployment(struct capture *cap, const char *ns, const json_t *d)
{
    const char *name = json_string_value(json_object_get(json_object_get(d, "metadata"), "name"));
    if (!name)
        return;
    heading(cap, "kubectl describe deployment %s -n %s", name, ns);
    kube_text_deployment(&cap->text, d, cap->now);
    object_events(cap, ns, "Deployment", name);
}

/* k8s_describe: one pod or deployment with its events; without a name, the pods that are not
 * ready or restarted (or the deployments short of replicas), at most DESCRIBE_PODS_MAX each. */
static void step_describe(struct capture *cap, const struct step_args *a)
{
    struct kube_probe *self = cap->self;
    const char *plural = a->deployment ? "deployments" : "pods";
    const char *api = a->deployment ? API_APPS : API_CORE;

    for (size_t i = 0; i < a->nns && !art_done(&cap->art); i++) {
        const char *ns = a->ns[i];
        if (a->name) {
            char *path = object_path(self, api, ns, plural, a->name);
            json_t *obj = step_json(cap, path, a->deployment ? "get deployment" : "get pod");
            free(path);
            if (obj && a->deployment) {
                describe_deployment(cap, ns, obj);
            } else if (obj) {
                heading(cap, "kubectl describe pod %s -n %s", a->name, ns);
                kube_text_pod(&cap->text, obj, cap->now);
                object_events(cap, ns, "Pod", a->name);
            }
            json_decref(obj);
            continue;
        }
        heading(cap, "kubectl get %s -n %s (the ones to describe)", plural, ns);
        char *path = ns_path(self, api, ns, plural);
        json_t *list = step_json(cap, path, a->deployment ? "list deployments" : "list pods");
        free(path);
        size_t idx, described = 0, troubled = 0;
        json_t *obj;
        json_array_foreach(json_object_get(list, "items"), idx, obj)
        {
            if (!json_is_object(obj) ||
                !(a->deployment ? kube_deployment_troubled(obj) : kube_pod_troubled(obj)))
                continue;
            troubled++;
            if (described >= DESCRIBE_PODS_MAX || art_done(&cap->art))
                continue;
            described++;
            if (a->deployment) {
                describe_deployment(cap, ns, obj);
            } else {
                const char *name =
                    json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
                if (!name)
                    continue;
                heading(cap, "kubectl describe pod %s -n %s", name, ns);
                kube_text_pod(&cap->text, obj, cap->now);
                object_events(cap, ns, "Pod", name);
            }
        }
        if (list && troubled == 0)
            art_printf(&cap->art, "(every %s is %s)\n", a->deployment ? "deployment" : "pod",
                       a->deployment ? "available" : "ready and never restarted");
        if (troubled > described)
            art_printf(&cap->art, "\n(%zu more not described)\n", troubled - described);
        json_decref(list);
    }
}

/* The log tails of one pod: the container named, or each of its containers. */
static void pod_logs(struct capture *cap, const char *ns, const json_t *pod, const char *container,
                     const struct step_args *a)
{
    const char *name = json_string_value(json_object_get(json_object_get(pod, "metadata"), "name"));
    size_t i, shown_n = 0;
    json_t *c;

    if (!name)
        return;
    json_array_foreach(json_object_get(json_object_get(pod, "spec"), "containers"), i, c)
    {
        const char *cname = json_string_value(json_object_get(c, "name"));
        if (!cname || (container && strcmp(cname, container) != 0) || art_done(&cap->art))
            continue;
        step_log(cap, ns, name, cname, a->lines, a->previous);
        shown_n++;
    }
    if (container && shown_n == 0) {
        heading(cap, "kubectl logs %s -n %s -c %s", name, ns, container);
        art_printf(&cap->art, "error: pod %s has no container named %s\n", name, container);
    }
}

/* k8s_logs: kubectl logs POD -n NS [-c CONTAINER] --tail=LINES [--previous]; without a pod, the
 * pods the selector matches, or else those that are not ready or restarted (at most
 * DESCRIBE_PODS_MAX). */
static void step_logs(struct capture *cap, const struct step_args *a)
{
    struct kube_probe *self = cap->self;

    for (size_t i = 0; i < a->nns && !art_done(&cap->art); i++) {
        const char *ns = a->ns[i];
        if (a->pod) {
            char *path = object_path(self, API_CORE, ns, "pods", a->pod);
            json_t *pod = step_json(cap, path, "get pod");
            free(path);
            if (pod)
                pod_logs(cap, ns, pod, a->container, a);
            json_decref(pod);
            continue;
        }
        char *sel = a->selector ? curl_easy_escape(self->easy, a->selector, 0) : NULL;
        char *rest = NULL, *path = NULL;
        heading(cap, "kubectl get pods -n %s%s%s (the ones whose logs to read)", ns,
                a->selector ? " -l " : "", a->selector ? a->selector : "");
        if ((!a->selector || sel) &&
            asprintf(&rest, "pods%s%s", sel ? "?labelSelector=" : "", sel ? sel : "") >= 0)
            path = ns_path(self, API_CORE, ns, rest);
        else
            rest = NULL;
        json_t *pods = step_json(cap, path, "list pods");
        free(path);
        free(rest);
        curl_free(sel);
        size_t idx, done_n = 0, troubled = 0;
        json_t *pod;
        json_array_foreach(json_object_get(pods, "items"), idx, pod)
        {
            if (!json_is_object(pod) || (!a->selector && !kube_pod_troubled(pod)))
                continue;
            troubled++;
            if (done_n < DESCRIBE_PODS_MAX && !art_done(&cap->art)) {
                done_n++;
                pod_logs(cap, ns, pod, NULL, a);
            }
        }
        if (pods && troubled == 0 && a->selector)
            art_printf(&cap->art, "No resources found in %s namespace.\n", ns);
        else if (pods && troubled == 0)
            art_printf(&cap->art, "(every pod is ready and never restarted: name one with pod= "
                                  "or selector=)\n");
        if (troubled > done_n)
            art_printf(&cap->art, "\n(%zu more pods not read)\n", troubled - done_n);
        json_decref(pods);
    }
}

/* k8s_ingress: kubectl get ingress -n NS; kubectl describe ingress -n NS. */
static void step_ingress(struct capture *cap, const struct step_args *a)
{
    for (size_t i = 0; i < a->nns && !art_done(&cap->art); i++) {
        heading(cap, "kubectl get ingress -n %s; kubectl describe ingress -n %s", a->ns[i],
                a->ns[i]);
        char *path = ns_path(cap->self, API_NET, a->ns[i], "ingresses");
        json_t *ingresses = step_json(cap, path, "list ingresses");
        free(path);
        if (ingresses)
            kube_text_ingresses(&cap->text, ingresses, cap->now);
        json_decref(ingresses);
    }
}

/* k8s_config: a ConfigMap's data, and the names of the Secrets (and ConfigMaps) a deployment
 * references; without either, every ConfigMap of the namespace and every deployment's
 * references. Secrets are never requested. */
static void step_config(struct capture *cap, const struct step_args *a)
{
    struct kube_probe *self = cap->self;

    for (size_t i = 0; i < a->nns && !art_done(&cap->art); i++) {
        const char *ns = a->ns[i];
        char *path;
        if (a->name) {
            heading(cap, "kubectl get configmap %s -n %s -o yaml", a->name, ns);
            path = object_path(self, API_CORE, ns, "configmaps", a->name);
            json_t *cm = step_json(cap, path, "get configmap");
            free(path);
            if (cm)
                kube_text_configmap(&cap->text, cm);
            json_decref(cm);
        } else if (!a->workload) {
            heading(cap, "kubectl get configmaps -n %s -o yaml", ns);
            path = ns_path(self, API_CORE, ns, "configmaps");
            json_t *list = step_json(cap, path, "list configmaps");
            free(path);
            size_t idx;
            json_t *cm;
            json_array_foreach(json_object_get(list, "items"), idx, cm)
            {
                if (!art_done(&cap->art))
                    kube_text_configmap(&cap->text, cm);
            }
            if (list && json_array_size(json_object_get(list, "items")) == 0)
                art_printf(&cap->art, "No resources found in %s namespace.\n", ns);
            json_decref(list);
        }
        if (a->workload) {
            heading(cap, "the Secrets and ConfigMaps deployment %s -n %s references (names only)",
                    a->workload, ns);
            path = object_path(self, API_APPS, ns, "deployments", a->workload);
            json_t *d = step_json(cap, path, "get deployment");
            free(path);
            if (d)
                kube_text_config_refs(&cap->text, d);
            json_decref(d);
        } else if (!a->name) {
            heading(cap, "the Secrets and ConfigMaps the deployments of %s reference (names only)",
                    ns);
            path = ns_path(self, API_APPS, ns, "deployments");
            json_t *list = step_json(cap, path, "list deployments");
            free(path);
            size_t idx;
            json_t *d;
            json_array_foreach(json_object_get(list, "items"), idx, d)
            {
                if (!art_done(&cap->art))
                    kube_text_config_refs(&cap->text, d);
            }
            json_decref(list);
        }
    }
}

/* The metrics API's answer: NULL with a line saying why when it is not there (no
 * metrics-server: 404 or 503) or failed. */
static json_t *step_metrics(struct capture *cap, const char *path, const char *what)
{
    static const struct optional_api metrics_api = {"metrics API", "metrics.k8s.io",
                                                    "is metrics-server installed?"};
    return step_fetch(cap, path, what, &metrics_api);
}

/* k8s_top: kubectl top pods -n NS; kubectl top nodes. */
static void step_top(struct capture *cap, const struct step_args *a)
{
    for (size_t i = 0; i < a->nns && !art_done(&cap->art); i++) {
        heading(cap, "kubectl top pods -n %s", a->ns[i]);
        char *path = ns_path(cap->self, API_METRICS, a->ns[i], "pods");
        json_t *metrics = step_metrics(cap, path, "list pod metrics");
        free(path);
        if (metrics)
            kube_text_top_pods(&cap->text, metrics);
        json_decref(metrics);
    }
    if (art_done(&cap->art))
        return;
    heading(cap, "kubectl top nodes");
    json_t *metrics = step_metrics(cap, API_METRICS "/nodes", "list node metrics");
    if (!metrics)
        return;
    json_t *nodes = step_json(cap, API_CORE "/nodes", "list nodes");
    kube_text_top_nodes(&cap->text, metrics, nodes);
    json_decref(nodes);
    json_decref(metrics);
}

static const struct {
    const char *kind;
    void (*step)(struct capture *cap, const struct step_args *a);
} steps[] = {
    {"k8s_pods", step_pods},       {"k8s_describe", step_describe}, {"k8s_logs", step_logs},
    {"k8s_ingress", step_ingress}, {"k8s_config", step_config},     {"k8s_top", step_top},
};

static int kube_evidence_kind(void *state, const char *kind, const struct probe_label *args,
                              size_t nargs, const struct artifact_writer *out, char *err,
                              size_t errlen)
{
    struct capture cap = {.self = state};
    struct step_args a;
    size_t i = 0;

    while (i < sizeof(steps) / sizeof(steps[0]) && (!kind || strcmp(steps[i].kind, kind) != 0))
        i++;
    if (i == sizeof(steps) / sizeof(steps[0])) {
        snprintf(err, errlen, "no evidence kind \"%.32s\" here", kind ? kind : "");
        return -EOPNOTSUPP;
    }
    int r = parse_step_args(state, kind, args, nargs, &a, err, errlen);
    if (r < 0)
        return r;
    r = capture_begin(&cap, out, kind, err, errlen);
    if (r < 0)
        return r;
    steps[i].step(&cap, &a);
    return capture_end(&cap, err, errlen);
}

/* ---- Lifecycle --------------------------------------------------------------------------- */

static void kube_close(void *state)
{
    struct kube_probe *self = state;
    if (!self)
        return;
    session_end(self);
    for (size_t i = 0; self->watches && i < self->nwatches; i++) {
        watch_stop(&self->watches[i]);
        kube_cache_clear(&self->watches[i].cache);
    }
    free(self->watches);
    if (self->watch_multi)
        curl_multi_cleanup(self->watch_multi);
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
    self->watch_multi = curl_multi_init();
    self->watches = calloc(self->nnamespaces * 3 + 1, sizeof(*self->watches));
    if (!self->watch_multi || !self->watches)
        goto err_oom;
    static const struct resource *const per_namespace[] = {&RES_PODS, &RES_DEPLOYMENTS,
                                                           &RES_EVENTS};
    for (size_t i = 0; i < self->nnamespaces; i++) {
        for (size_t k = 0; k < 3; k++)
            self->watches[i * 3 + k] =
                (struct watch){.self = self, .res = per_namespace[k], .ns = self->namespaces[i]};
    }
    self->nwatches = self->nnamespaces * 3 + 1;
    self->watches[self->nwatches - 1] = (struct watch){.self = self, .res = &RES_NODES};
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
    .evidence_kind = kube_evidence_kind,
    .close = kube_close,
};
