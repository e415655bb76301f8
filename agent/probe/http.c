/*
 * HTTP probe module (vigil-probe-http.so, libcurl): one GET per target and cycle.
 *
 * Signals, each with target=<name> added by the agent:
 *   http.up [bool]              1 when the request completed with the expected status
 *   http.status [code]          the response status, when a response arrived
 *   http.time_ms [ms]           total time of the attempt, failed or not (thresholds 2 s / 5 s)
 *   http.tls_days_left [days]   https: until the server certificate's "not after"
 *   http.error{reason} [bool]   1 when down: refused, timeout, dns, tls, "status <code>", or
 *                               curl's short error text; with statuspage, also while up when
 *                               the body cannot be read ("statuspage: not JSON", ...)
 *
 * With `statuspage: true` the URL is a dependency's public status page in the Atlassian
 * Statuspage v2 shape ({page}/api/v2/status.json or summary.json), and an answer with the
 * expected status is also read:
 *   http.statuspage.indicator [level]    status.indicator: 0 none, 1 minor, 2 major, 3 critical
 *                                        (maintenance counts as 0)
 *   http.statuspage.maintenance [bool]   1 when status.indicator is "maintenance" or one of
 *                                        scheduled_maintenances[] is "in_progress"
 *   http.statuspage.component{component} [level]  summary.json's components[] (the first 50
 *                                        listed, one per name): 0 operational or under_maintenance,
 *                                        1 degraded_performance, 2 partial_outage, 3 major_outage;
 *                                        a component gone from the page ends with 0
 * A body that is not that shape emits none of these (the last values stay) and
 * http.error{reason="statuspage: ..."} says why; http.up stays 1, the page did answer. The
 * body is kept up to STATUSPAGE_BODY_MAX; a larger one is "statuspage: body over 1 MiB".
 *
 * Each target keeps one easy handle (options set once) driven through a multi handle of its
 * own (vg_curl_multi_transfer, common/curl_multi.h), because curl_multi_poll can watch the
 * agent's cancel_fd next to the transfer's sockets: curl_easy_perform could not be interrupted
 * when the agent stops. Connections are not reused between cycles, so every cycle measures
 * what a new client sees (connect and TLS handshake included) and reads a fresh certificate.
 * Proxies from the environment are ignored: a probe measures the target, not a proxy. The body
 * is counted and discarded, unless the target is a status page.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "curl_multi.h"
#include "probe.h"
#include "timeutil.h"

#define BACKSTOP_MS 1000 /* past the timeout, in case curl's own timer does not fire */
#define STATUSPAGE_BODY_MAX (1024 * 1024) /* summary.json of a large page is a few 100 KiB */
#define STATUSPAGE_COMPONENTS_MAX 50      /* http.statuspage.component series per target */
#define STATUSPAGE_NAME_MAX 128           /* bytes of a component's name kept in its label */

struct http_probe {
    CURL *easy;
    CURLM *multi;
    int64_t timeout_ms;
    int cancel_fd;
    long expect_status;
    bool https;
    uint64_t body_bytes; /* of the current transfer; counted, kept only for a status page */
    char errbuf[CURL_ERROR_SIZE];
    /* statuspage: the current transfer's body, up to STATUSPAGE_BODY_MAX (body_over: more
     * came, or memory ran out), and the components emitted by the last cycle that read the
     * page, to end with 0 those that leave it. */
    bool statuspage;
    char *body;
    size_t body_len, body_cap;
    bool body_over;
    char *components[STATUSPAGE_COMPONENTS_MAX];
    size_t ncomponents;
};

static size_t take_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct http_probe *self = userdata;
    size_t n = size * nmemb;

    self->body_bytes += n;
    if (!self->statuspage || self->body_over)
        return n;
    if (n > STATUSPAGE_BODY_MAX - self->body_len) {
        self->body_over = true;
        return n; /* read to the end all the same: the transfer's time stays comparable */
    }
    if (self->body_len + n > self->body_cap) {
        size_t cap = self->body_cap ? self->body_cap : 16384;
        while (cap < self->body_len + n)
            cap *= 2;
        if (cap > STATUSPAGE_BODY_MAX)
            cap = STATUSPAGE_BODY_MAX;
        char *grown = realloc(self->body, cap);
        if (!grown) {
            self->body_over = true;
            return n;
        }
        self->body = grown;
        self->body_cap = cap;
    }
    memcpy(self->body + self->body_len, data, n);
    self->body_len += n;
    return n;
}

/* Only http and https, with a host: the URL comes from a configuration file. */
static int check_url(const char *url, bool *ret_https, char *err, size_t errlen)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int r = -EINVAL;

    if (!u) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (uc != CURLUE_OK) {
        snprintf(err, errlen, "url \"%s\": %s", url, curl_url_strerror(uc));
        goto out;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        snprintf(err, errlen, "url \"%s\": only http:// and https:// are probed", url);
        goto out;
    }
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0]) {
        snprintf(err, errlen, "url \"%s\": no host", url);
        goto out;
    }
    *ret_https = strcmp(scheme, "https") == 0;
    r = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return r;
}

static void http_close(void *state)
{
    struct http_probe *self = state;
    if (!self)
        return;
    if (self->multi)
        curl_multi_cleanup(self->multi);
    if (self->easy)
        curl_easy_cleanup(self->easy);
    for (size_t i = 0; i < self->ncomponents; i++)
        free(self->components[i]);
    free(self->body);
    free(self);
    curl_global_cleanup();
}

#define SETOPT(opt, val)                                                                           \
    do {                                                                                           \
        if (curl_easy_setopt(self->easy, opt, val) != CURLE_OK) {                                  \
            snprintf(err, errlen, "libcurl refuses %s", #opt);                                     \
            goto err_close;                                                                        \
        }                                                                                          \
    } while (0)

static void *http_open(const struct probe_target_config *target, const struct probe_options *opt,
                       char *err, size_t errlen)
{
    bool https = false;

    if (check_url(target->address, &https, err, errlen) < 0)
        return NULL;
    /* Reference-counted, and thread-safe in this libcurl ("threadsafe" feature). */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "libcurl cannot initialise");
        return NULL;
    }
    struct http_probe *self = calloc(1, sizeof(*self));
    if (!self) {
        curl_global_cleanup();
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->timeout_ms = opt->timeout_ms;
    self->cancel_fd = opt->cancel_fd;
    self->expect_status = (long)target->expect_status;
    self->https = https;
    self->statuspage = target->statuspage;
    self->easy = curl_easy_init();
    self->multi = curl_multi_init();
    if (!self->easy || !self->multi) {
        snprintf(err, errlen, "out of memory");
        goto err_close;
    }
    SETOPT(CURLOPT_URL, target->address);
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_TIMEOUT_MS, (long)opt->timeout_ms);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, (long)opt->timeout_ms);
    SETOPT(CURLOPT_FORBID_REUSE, 1L);
    SETOPT(CURLOPT_PROXY, "");
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(CURLOPT_USERAGENT, "vigil-agent/" VIGIL_VERSION);
    SETOPT(CURLOPT_WRITEFUNCTION, take_body);
    SETOPT(CURLOPT_WRITEDATA, self);
    SETOPT(CURLOPT_ERRORBUFFER, self->errbuf);
    if (https) {
        SETOPT(CURLOPT_SSL_VERIFYPEER, target->tls_verify ? 1L : 0L);
        SETOPT(CURLOPT_SSL_VERIFYHOST, target->tls_verify ? 2L : 0L);
        if (target->ca_file && target->ca_file[0])
            SETOPT(CURLOPT_CAINFO, target->ca_file);
        SETOPT(CURLOPT_CERTINFO, 1L);
    }
    return self;

err_close:
    http_close(self);
    return NULL;
}

#undef SETOPT

static bool is_tls_error(CURLcode code)
{
    switch (code) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
        return true;
    default:
        return false;
    }
}

static const char *failure_reason(const struct http_probe *self, CURLcode code)
{
    long os_errno = 0;

    switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
        return "timeout";
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
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

/* Days until the server certificate's "Expire date", or false when unknown. */
static bool tls_days_left(const struct http_probe *self, double *ret_days)
{
    struct curl_certinfo *certs = NULL;

    if (curl_easy_getinfo(self->easy, CURLINFO_CERTINFO, &certs) != CURLE_OK || !certs ||
        certs->num_of_certs < 1 || !certs->certinfo)
        return false;
    /* certinfo[0] is the server's own certificate; entries read "Expire date:<date>". */
    for (const struct curl_slist *e = certs->certinfo[0]; e; e = e->next) {
        static const char key[] = "Expire date:";
        if (!e->data || strncasecmp(e->data, key, sizeof(key) - 1) != 0)
            continue;
        time_t expires = curl_getdate(e->data + sizeof(key) - 1, NULL);
        if (expires == (time_t)-1)
            return false;
        *ret_days = difftime(expires, time(NULL)) / 86400.0;
        return true;
    }
    return false;
}

/* Drives the transfer to its end, the timeout or the agent's stop. */
static CURLcode transfer(struct http_probe *self, bool *ret_cancelled)
{
    const struct vg_curl_hooks hooks = {.cancel_fd = self->cancel_fd};

    self->body_bytes = 0;
    self->body_len = 0;
    self->body_over = false;
    self->errbuf[0] = '\0';
    return vg_curl_multi_transfer(self->multi, self->easy, &hooks,
                                  vg_mono_ms() + self->timeout_ms + BACKSTOP_MS, ret_cancelled);
}

static void emit(const struct probe_sink *sink, const char *name, double value, const char *unit)
{
    sink->emit(sink->sink, name, value, unit, NULL, 0);
}

/* ---- Statuspage v2 ------------------------------------------------------------------------ */

struct statuspage_component {
    char name[STATUSPAGE_NAME_MAX + 1];
    int level;
};

/* What one status.json or summary.json says. */
struct statuspage_reading {
    int indicator;
    bool maintenance;
    struct statuspage_component components[STATUSPAGE_COMPONENTS_MAX];
    size_t ncomponents;
};

/* The position of name in names (n of them), or -1. */
static int lookup(const char *name, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(name, names[i]) == 0)
            return (int)i;
    }
    return -1;
}

/* Copies a component's name (valid UTF-8: jansson checked it) into out, cut to
 * STATUSPAGE_NAME_MAX bytes on a character boundary. */
static void copy_name(char *out, const char *name)
{
    size_t len = strlen(name);
    if (len > STATUSPAGE_NAME_MAX) {
        len = STATUSPAGE_NAME_MAX;
        while (len > 0 && ((unsigned char)name[len] & 0xC0) == 0x80)
            len--;
    }
    memcpy(out, name, len);
    out[len] = '\0';
}

/* summary.json's components[]: the first STATUSPAGE_COMPONENTS_MAX with a name and a known
 * status, each name once. Entries of another shape are skipped, not fatal: the indicator is
 * still worth having. */
static void read_components(const json_t *list, struct statuspage_reading *r)
{
    static const char *const levels[] = {"operational", "degraded_performance", "partial_outage",
                                         "major_outage", "under_maintenance"};
    size_t i;
    const json_t *c;

    json_array_foreach(list, i, c)
    {
        if (r->ncomponents >= STATUSPAGE_COMPONENTS_MAX)
            break;
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *status = json_string_value(json_object_get(c, "status"));
        int level = status ? lookup(status, levels, 5) : -1;
        if (!name || !name[0] || level < 0)
            continue;
        struct statuspage_component *out = &r->components[r->ncomponents];
        copy_name(out->name, name);
        bool seen = false;
        for (size_t k = 0; k < r->ncomponents && !seen; k++)
            seen = strcmp(r->components[k].name, out->name) == 0;
        if (seen)
            continue;
        out->level = level == 4 ? 0 : level; /* under_maintenance: not an outage */
        r->ncomponents++;
    }
}

/* Reads the body as a Statuspage v2 document: 0, or -EBADMSG with *ret_why set to a short
 * reason (a fixed text: the reason label must not take arbitrary values from the network). */
static int statuspage_read(const struct http_probe *self, struct statuspage_reading *r,
                           const char **ret_why)
{
    static const char *const indicators[] = {"none", "minor", "major", "critical", "maintenance"};
    int result = -EBADMSG;

    if (self->body_over) {
        *ret_why = "statuspage: body over 1 MiB";
        return -EBADMSG;
    }
    json_t *root = json_loadb(self->body ? self->body : "", self->body_len, 0, NULL);
    const json_t *status = json_object_get(root, "status");
    const char *indicator = json_string_value(json_object_get(status, "indicator"));
    const json_t *components = json_object_get(root, "components");
    const json_t *maintenances = json_object_get(root, "scheduled_maintenances");
    int level = indicator ? lookup(indicator, indicators, 5) : -1;

    if (!json_is_object(root))
        *ret_why = "statuspage: not a JSON object";
    else if (!json_is_object(status) || !indicator)
        *ret_why = "statuspage: no status.indicator";
    else if (level < 0)
        *ret_why = "statuspage: unknown status.indicator";
    else if (components && !json_is_array(components))
        *ret_why = "statuspage: components is not a list";
    else
        result = 0;
    if (result == 0) {
        *r = (struct statuspage_reading){.indicator = level == 4 ? 0 : level,
                                         .maintenance = level == 4};
        size_t i;
        const json_t *m;
        json_array_foreach(maintenances, i, m)
        {
            const char *state = json_string_value(json_object_get(m, "status"));
            if (state && strcmp(state, "in_progress") == 0)
                r->maintenance = true;
        }
        read_components(components, r);
    }
    json_decref(root);
    return result;
}

static void emit_component(const struct probe_sink *sink, const char *name, int level)
{
    struct probe_label label = {"component", name};
    sink->emit(sink->sink, "http.statuspage.component", level, "level", &label, 1);
}

/* Emits what the page says, ends the components that left it, and remembers this cycle's. */
static void statuspage_emit(struct http_probe *self, const struct statuspage_reading *r,
                            const struct probe_sink *sink)
{
    char *now[STATUSPAGE_COMPONENTS_MAX];
    size_t nnow = 0;

    sink->emit(sink->sink, "http.statuspage.indicator", r->indicator, "level", NULL, 0);
    sink->emit(sink->sink, "http.statuspage.maintenance", r->maintenance ? 1 : 0, "bool", NULL, 0);
    for (size_t i = 0; i < r->ncomponents; i++) {
        emit_component(sink, r->components[i].name, r->components[i].level);
        now[nnow] = strdup(r->components[i].name);
        if (now[nnow])
            nnow++;
    }
    for (size_t i = 0; i < self->ncomponents; i++) {
        if (lookup(self->components[i], (const char *const *)now, nnow) < 0)
            emit_component(sink, self->components[i], 0);
        free(self->components[i]);
        self->components[i] = NULL;
    }
    memcpy(self->components, now, nnow * sizeof(now[0]));
    self->ncomponents = nnow;
}

static void http_run(void *state, const struct probe_sink *sink)
{
    struct http_probe *self = state;
    char status_reason[32];
    const char *reason = NULL;
    bool cancelled;
    long status = 0;
    curl_off_t total_us = 0;
    int64_t started = vg_mono_ms();

    CURLcode result = transfer(self, &cancelled);
    if (cancelled)
        return;
    curl_easy_getinfo(self->easy, CURLINFO_RESPONSE_CODE, &status);
    if (result != CURLE_OK) {
        reason = failure_reason(self, result);
    } else if (self->expect_status ? status != self->expect_status
                                   : (status < 200 || status > 399)) {
        snprintf(status_reason, sizeof(status_reason), "status %ld", status);
        reason = status_reason;
    }

    emit(sink, "http.up", reason ? 0 : 1, "bool");
    if (status > 0)
        emit(sink, "http.status", (double)status, "code");
    if (curl_easy_getinfo(self->easy, CURLINFO_TOTAL_TIME_T, &total_us) != CURLE_OK ||
        total_us <= 0)
        total_us = (curl_off_t)(vg_mono_ms() - started) * 1000;
    emit(sink, "http.time_ms", (double)total_us / 1000.0, "ms");
    double days;
    if (self->https && tls_days_left(self, &days))
        emit(sink, "http.tls_days_left", days, "days");
    if (!reason && self->statuspage) {
        /* About 7 KiB: on the heap, not on the target thread's small stack. */
        struct statuspage_reading *reading = malloc(sizeof(*reading));
        if (!reading)
            reason = "statuspage: out of memory";
        else if (statuspage_read(self, reading, &reason) == 0)
            statuspage_emit(self, reading, sink);
        free(reading);
    }
    if (reason) {
        struct probe_label label = {"reason", reason};
        sink->emit(sink->sink, "http.error", 1, "bool", &label, 1);
    }
}

__attribute__((visibility("default"))) const struct probe_module vigil_probe_module = {
    .abi = PROBE_ABI_VERSION,
    .kind = "http",
    .open = http_open,
    .run = http_run,
    .evidence = NULL,
    .close = http_close,
};
