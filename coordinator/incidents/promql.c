#include "promql.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <curl/curl.h>

#include "curl_multi.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "rules.h"
#include "timeutil.h"

#define SIGNAL_MAX 256     /* rules_promql_signal names that do not fit are never matched */
#define BACKSTOP_MS 1000   /* past the timeout, in case curl's own timer does not fire */
#define IDLE_WAIT_MS 60000 /* no query due: sleep until woken (new queries, stop) or this */
#define OUTCOME_MAX 32

/* One PromQL symptom, copied out of the runbook set. */
struct query {
    char *signal;
    char *expr;
    int64_t interval_ms;
    int64_t next_due_ms; /* monotonic */
    /* The last outcome, so a failure is logged when it changes, not every interval. */
    char outcome[OUTCOME_MAX]; /* "" = answering (or never ran), else the failure's reason */
    char message[256];
    int64_t logged_ms; /* monotonic time the failure was last logged */
};

/* A capture for the vault, waiting, running or finished (promql_capture). */
struct capture_item {
    struct promql_capture c;
    struct capture_item *next;
};

struct sample {
    char signal[SIGNAL_MAX];
    double value;
    int64_t ts_ms;
};

struct promql {
    pthread_mutex_t lock; /* guards everything down to the queue */
    bool stop;
    struct query *queries;
    size_t nqueries;
    uint64_t generation; /* bumped by promql_set_queries: an answer for an old set is dropped */
    struct sample queue[PROMQL_QUEUE_MAX];
    size_t queue_head, queue_len;
    int64_t dropped_logged_ms;
    struct capture_item *waiting, *waiting_tail; /* captures to run, oldest first */
    struct capture_item *done, *done_tail;       /* finished, for promql_capture_drain */
    size_t ncaptures;                            /* waiting, running and done */
    int capture_fd;                              /* eventfd: done is not empty */

    /* The thread's own, set before it starts and never changed. */
    pthread_t thread;
    bool thread_started;
    bool curl_ready;
    CURL *easy;
    CURLM *multi;
    char *endpoint; /* <url>/api/v1/query */
    int64_t timeout_ms;
    struct curl_slist *headers;
    char *body;
    size_t body_len;
    size_t body_max;  /* PROMQL_MAX_BODY, or PROMQL_CAPTURE_MAX_ANSWER for a capture */
    bool keep_prefix; /* a capture: keep the first body_max bytes of a longer answer */
    bool body_too_large;
    char errbuf[CURL_ERROR_SIZE];
};

/* ---- the answer's JSON ---------------------------------------------------------------------- */

static void parsed_fail(struct promql_parsed *ret, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void parsed_fail(struct promql_parsed *ret, const char *reason, const char *fmt, ...)
{
    va_list ap;

    ret->answer = PROMQL_FAILED;
    ret->value = NAN;
    ret->reason = reason;
    va_start(ap, fmt);
    vsnprintf(ret->message, sizeof ret->message, fmt, ap);
    va_end(ap);
}

/* A sample is [<unix seconds>, "<value>"]; values travel as strings ("1", "NaN", "+Inf"). */
static void parse_sample(const json_t *pair, struct promql_parsed *ret)
{
    const char *text;
    char *end;

    if (!json_is_array(pair) || json_array_size(pair) != 2 ||
        !json_is_number(json_array_get(pair, 0)) ||
        !(text = json_string_value(json_array_get(pair, 1)))) {
        parsed_fail(ret, "malformed", "a sample is not [time, \"value\"]");
        return;
    }
    errno = 0;
    double value = strtod(text, &end);
    if (end == text || *end != '\0' || (errno == ERANGE && value != 0 && !isinf(value))) {
        parsed_fail(ret, "malformed", "value \"%.40s\" is not a number", text);
        return;
    }
    if (isnan(value)) {
        ret->answer = PROMQL_NO_DATA;
        ret->value = NAN;
        return;
    }
    ret->answer = PROMQL_VALUE;
    ret->value = value;
}

void promql_parse_response(const char *body, size_t len, struct promql_parsed *ret)
{
    json_error_t jerr;

    memset(ret, 0, sizeof *ret);
    ret->value = NAN;
    json_t *root = body ? json_loadb(body, len, 0, &jerr) : NULL;
    if (!root) {
        parsed_fail(ret, "malformed", "not JSON: %s", body ? jerr.text : "no body");
        return;
    }
    const char *status = json_string_value(json_object_get(root, "status"));
    if (!json_is_object(root) || !status) {
        parsed_fail(ret, "malformed", "not a Prometheus API answer (no status)");
        goto out;
    }
    if (strcmp(status, "error") == 0) {
        const char *type = json_string_value(json_object_get(root, "errorType"));
        const char *error = json_string_value(json_object_get(root, "error"));
        parsed_fail(ret, "query", "Prometheus: %s: %s", type ? type : "error",
                    error ? error : "(no message)");
        goto out;
    }
    if (strcmp(status, "success") != 0) {
        parsed_fail(ret, "malformed", "status \"%.40s\" is neither success nor error", status);
        goto out;
    }
    const json_t *data = json_object_get(root, "data");
    const char *type = json_string_value(json_object_get(data, "resultType"));
    const json_t *result = json_object_get(data, "result");
    if (!json_is_object(data) || !type || !result) {
        parsed_fail(ret, "malformed", "no data.resultType and data.result");
        goto out;
    }
    if (strcmp(type, "scalar") == 0) {
        parse_sample(result, ret);
    } else if (strcmp(type, "vector") == 0) {
        if (!json_is_array(result)) {
            parsed_fail(ret, "malformed", "a vector's result is not an array");
            goto out;
        }
        size_t n = json_array_size(result);
        if (n == 0) {
            ret->answer = PROMQL_NO_DATA;
        } else if (n > 1) {
            parsed_fail(ret, "series", "query returns %zu series, a symptom needs one number", n);
        } else {
            const json_t *element = json_array_get(result, 0);
            if (!json_is_object(element))
                parsed_fail(ret, "malformed", "a vector element is not an object");
            else
                parse_sample(json_object_get(element, "value"), ret);
        }
    } else if (strcmp(type, "matrix") == 0 || strcmp(type, "string") == 0) {
        parsed_fail(ret, "result_type", "query returns a %s, a symptom needs one number", type);
    } else {
        parsed_fail(ret, "malformed", "unknown resultType \"%.40s\"", type);
    }
out:
    json_decref(root);
}

/* ---- queries -------------------------------------------------------------------------------- */

static void queries_free(struct query *queries, size_t n)
{
    for (size_t i = 0; queries && i < n; i++) {
        free(queries[i].signal);
        free(queries[i].expr);
    }
    free(queries);
}

static size_t count_promql(const struct rb_set *set)
{
    size_t n = 0;
    for (size_t r = 0; set && r < set->n; r++)
    {
        for (size_t i = 0; i < set->runbooks[r].nsymptoms; i++)
            n += set->runbooks[r].symptoms[i].cond.kind == RB_COND_PROMQL;
        for (size_t i = 0; i < set->runbooks[r].nverify; i++)
            n += set->runbooks[r].verify[i].cond.kind == RB_COND_PROMQL;
    }
    return n;
}

size_t promql_warn_unpolled(const struct rb_set *set)
{
    char names[512];
    size_t len = 0, n = 0;

    names[0] = '\0';
    for (size_t r = 0; set && r < set->n; r++) {
        const struct rb_runbook *rb = &set->runbooks[r];
        for (size_t i = 0; i < rb->nsymptoms; i++) {
            if (rb->symptoms[i].cond.kind != RB_COND_PROMQL)
                continue;
            n++;
            if (len >= sizeof names)
                continue;
            int w = snprintf(names + len, sizeof names - len, "%s%s/%s", len ? "," : "", rb->id,
                             rb->symptoms[i].id);
            len += w > 0 ? (size_t)w : 0;
        }
    }
    if (n == 0)
        return 0;
    vg_log(VG_LOG_WARN,
           "promql: %zu runbook symptom%s with a PromQL query (%s%s) never fire%s without "
           "prometheus.url",
           n, n == 1 ? "" : "s", names, len >= sizeof names ? "..." : "", n == 1 ? "s" : "");
    return n;
}

/* ---- the thread ----------------------------------------------------------------------------- */

static bool stopping(void *userdata)
{
    promql_t *self = userdata;

    pthread_mutex_lock(&self->lock);
    bool stop = self->stop;
    pthread_mutex_unlock(&self->lock);
    return stop;
}

static size_t keep_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    promql_t *self = userdata;
    size_t n = size * nmemb;

    if (n > self->body_max - self->body_len) {
        self->body_too_large = true;
        if (!self->keep_prefix)
            return 0;                        /* curl stops the transfer with CURLE_WRITE_ERROR */
        n = self->body_max - self->body_len; /* the prefix, then the same stop */
        if (n == 0)
            return 0;
    }
    char *grown = realloc(self->body, self->body_len + n + 1);
    if (!grown)
        return 0;
    self->body = grown;
    memcpy(self->body + self->body_len, data, n);
    self->body_len += n;
    self->body[self->body_len] = '\0';
    return self->body_too_large ? 0 : n;
}

/* Drives one transfer to its end, the timeout or promql_destroy. */
static CURLcode transfer(promql_t *self, bool *ret_cancelled)
{
    /* curl_multi_poll returns early on curl_multi_wakeup from promql_destroy. */
    const struct vg_curl_hooks hooks = {.cancel_fd = -1, .cancelled = stopping, .userdata = self};

    return vg_curl_multi_transfer(self->multi, self->easy, &hooks,
                                  vg_mono_ms() + self->timeout_ms + BACKSTOP_MS, ret_cancelled);
}

/* A transport failure as a reason label and a message that does not vary from one attempt to
 * the next (the log compares messages to notice a change). */
static void transport_failure(promql_t *self, CURLcode code, struct promql_parsed *ret)
{
    long os_errno = 0;

    switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
        parsed_fail(ret, "timeout", "no answer within %lld ms", (long long)self->timeout_ms);
        return;
    case CURLE_COULDNT_CONNECT:
        curl_easy_getinfo(self->easy, CURLINFO_OS_ERRNO, &os_errno);
        if (os_errno == ECONNREFUSED || strstr(self->errbuf, "refused")) {
            parsed_fail(ret, "refused", "connection refused");
            return;
        }
        if (os_errno == ETIMEDOUT) {
            parsed_fail(ret, "timeout", "connect timed out");
            return;
        }
        break;
    case CURLE_WRITE_ERROR:
        if (self->body_too_large) {
            parsed_fail(ret, "too_large", "answer over %d bytes", PROMQL_MAX_BODY);
            return;
        }
        break;
    default:
        break;
    }
    parsed_fail(ret, "transport", "%s", curl_easy_strerror(code));
}

/* One GET /api/v1/query. false when cancelled by promql_destroy. */
static bool run_query(promql_t *self, const char *expr, struct promql_parsed *ret)
{
    char *url = NULL;
    bool cancelled = false;
    long status = 0;

    char *escaped = curl_easy_escape(self->easy, expr, 0);
    /* Prometheus's own evaluation timeout too, so it gives up when we do. */
    if (!escaped || asprintf(&url, "%s?query=%s&timeout=%lldms", self->endpoint, escaped,
                             (long long)self->timeout_ms) < 0) {
        url = NULL;
        parsed_fail(ret, "transport", "out of memory");
        goto out;
    }
    self->body_len = 0;
    self->body_too_large = false;
    self->errbuf[0] = '\0';
    if (curl_easy_setopt(self->easy, CURLOPT_URL, url) != CURLE_OK) {
        parsed_fail(ret, "transport", "libcurl refuses the URL");
        goto out;
    }
    CURLcode code = transfer(self, &cancelled);
    if (cancelled)
        goto out;
    if (code != CURLE_OK) {
        transport_failure(self, code, ret);
        goto out;
    }
    curl_easy_getinfo(self->easy, CURLINFO_RESPONSE_CODE, &status);
    promql_parse_response(self->body, self->body_len, ret);
    /* Prometheus explains its 400/422/503 in the API's JSON; anything else is the HTTP error. */
    if (status != 200 && !(ret->answer == PROMQL_FAILED && strcmp(ret->reason, "query") == 0))
        parsed_fail(ret, "http", "HTTP status %ld", status);
out:
    curl_free(escaped);
    free(url);
    return !cancelled;
}

/* ---- captures ------------------------------------------------------------------------------ */

static void capture_fail(struct promql_capture *c, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void capture_fail(struct promql_capture *c, const char *reason, const char *fmt, ...)
{
    va_list ap;

    c->reason = reason;
    va_start(ap, fmt);
    vsnprintf(c->message, sizeof c->message, fmt, ap);
    va_end(ap);
}

static void capture_free(struct capture_item *item)
{
    if (!item)
        return;
    free(item->c.query);
    free(item->c.url);
    free(item->c.answer);
    free(item);
}

static void captures_free(struct capture_item *list)
{
    while (list) {
        struct capture_item *next = list->next;
        capture_free(list);
        list = next;
    }
}

/* One GET /api/v1/query?query=...&time=... for the vault. false when cancelled. */
static bool run_capture(promql_t *self, struct promql_capture *c)
{
    bool cancelled = false;
    long status = 0;

    c->at_ms = vg_wall_ms();
    char *escaped = curl_easy_escape(self->easy, c->query, 0);
    /* The evaluation time is explicit, so the artifact says exactly which instant it shows. */
    if (!escaped || asprintf(&c->url, "%s?query=%s&time=%lld.%03lld&timeout=%lldms", self->endpoint,
                             escaped, (long long)(c->at_ms / 1000), (long long)(c->at_ms % 1000),
                             (long long)self->timeout_ms) < 0) {
        c->url = NULL;
        capture_fail(c, "transport", "out of memory");
        goto out;
    }
    self->body_len = 0;
    self->body_too_large = false;
    self->body_max = PROMQL_CAPTURE_MAX_ANSWER;
    self->keep_prefix = true;
    self->errbuf[0] = '\0';
    CURLcode code = curl_easy_setopt(self->easy, CURLOPT_URL, c->url);
    if (code == CURLE_OK)
        code = transfer(self, &cancelled);
    self->body_max = PROMQL_MAX_BODY;
    self->keep_prefix = false;
    if (cancelled)
        goto out;
    curl_easy_getinfo(self->easy, CURLINFO_RESPONSE_CODE, &status);
    c->http_status = status;
    if (code == CURLE_WRITE_ERROR && self->body_too_large && status != 0) {
        c->truncated = true; /* the first PROMQL_CAPTURE_MAX_ANSWER bytes are the answer */
        code = CURLE_OK;
    }
    if (code != CURLE_OK) {
        struct promql_parsed failed;
        transport_failure(self, code, &failed);
        capture_fail(c, failed.reason, "%s", failed.message);
        goto out;
    }
    if (status != 200) {
        /* Prometheus explains a refused expression in its JSON (400, 422, 503): that text is
         * the reason; anything else is the HTTP status alone. */
        struct promql_parsed parsed;
        promql_parse_response(self->body, self->body_len, &parsed);
        if (!c->truncated && parsed.answer == PROMQL_FAILED && strcmp(parsed.reason, "query") == 0)
            capture_fail(c, "query", "HTTP %ld: %s", status, parsed.message);
        else
            capture_fail(c, "http", "HTTP status %ld", status);
        goto out;
    }
    c->answer = self->body; /* handed over: the next request grows a new buffer */
    c->answer_len = self->body_len;
    self->body = NULL;
    self->body_len = 0;
out:
    curl_free(escaped);
    return !cancelled;
}

int promql_capture(promql_t *self, uint64_t id, const char *query)
{
    struct capture_item *item = calloc(1, sizeof(*item));
    if (!item || !(item->c.query = strdup(query))) {
        free(item);
        return -ENOMEM;
    }
    item->c.id = id;
    pthread_mutex_lock(&self->lock);
    if (self->ncaptures >= PROMQL_CAPTURES_MAX) {
        pthread_mutex_unlock(&self->lock);
        capture_free(item);
        return -ENOBUFS;
    }
    if (self->waiting_tail)
        self->waiting_tail->next = item;
    else
        self->waiting = item;
    self->waiting_tail = item;
    self->ncaptures++;
    pthread_mutex_unlock(&self->lock);
    curl_multi_wakeup(self->multi); /* the poller may be asleep until its next query */
    return 0;
}

int promql_capture_fd(promql_t *self)
{
    return self->capture_fd;
}

size_t promql_capture_drain(promql_t *self, promql_capture_fn fn, void *userdata)
{
    uint64_t count;

    if (read(self->capture_fd, &count, sizeof count) < 0 && errno != EAGAIN)
        vg_log(VG_LOG_DEBUG, "promql: capture eventfd: %s", strerror(errno));
    pthread_mutex_lock(&self->lock);
    struct capture_item *done = self->done;
    self->done = self->done_tail = NULL;
    pthread_mutex_unlock(&self->lock);
    size_t n = 0;
    while (done) {
        struct capture_item *next = done->next;
        fn(userdata, &done->c);
        capture_free(done);
        done = next;
        n++;
    }
    pthread_mutex_lock(&self->lock);
    self->ncaptures -= n;
    pthread_mutex_unlock(&self->lock);
    return n;
}

/* A finished capture, for promql_capture_drain. */
static void capture_done(promql_t *self, struct capture_item *item)
{
    uint64_t one = 1;

    pthread_mutex_lock(&self->lock);
    if (self->done_tail)
        self->done_tail->next = item;
    else
        self->done = item;
    self->done_tail = item;
    pthread_mutex_unlock(&self->lock);
    if (write(self->capture_fd, &one, sizeof one) != sizeof one)
        vg_log(VG_LOG_WARN, "promql: cannot signal a finished capture: %s", strerror(errno));
}

struct job {
    uint64_t generation;
    size_t index;
    char signal[SIGNAL_MAX];
    char *expr;
    int64_t ts_ms;
};

/* Takes the next due query, or says how long to wait for it. The caller holds the lock. */
static bool next_job_locked(promql_t *self, struct job *job, int64_t *ret_wait_ms)
{
    int64_t now = vg_mono_ms();
    struct query *next = NULL;

    for (size_t i = 0; i < self->nqueries; i++)
        if (!next || self->queries[i].next_due_ms < next->next_due_ms)
            next = &self->queries[i];
    if (!next) {
        *ret_wait_ms = IDLE_WAIT_MS;
        return false;
    }
    if (next->next_due_ms > now) {
        *ret_wait_ms = next->next_due_ms - now;
        return false;
    }
    job->expr = strdup(next->expr);
    if (!job->expr) {
        *ret_wait_ms = 1000;
        return false;
    }
    job->generation = self->generation;
    job->index = (size_t)(next - self->queries);
    snprintf(job->signal, sizeof job->signal, "%s", next->signal);
    job->ts_ms = vg_wall_ms();
    /* Scheduled from the start of the request: a slow answer does not stretch the interval. */
    next->next_due_ms = now + next->interval_ms;
    return true;
}

static void queue_push_locked(promql_t *self, const struct job *job, double value)
{
    if (self->queue_len == PROMQL_QUEUE_MAX) { /* the main loop is stuck: drop the oldest */
        self->queue_head = (self->queue_head + 1) % PROMQL_QUEUE_MAX;
        self->queue_len--;
        metrics_promql_error("dropped");
        int64_t now = vg_mono_ms();
        if (self->dropped_logged_ms == 0 || now - self->dropped_logged_ms >= PROMQL_LOG_REPEAT_MS) {
            self->dropped_logged_ms = now;
            vg_log(VG_LOG_WARN, "promql: answers are not being taken; dropping the oldest");
        }
    }
    struct sample *s = &self->queue[(self->queue_head + self->queue_len) % PROMQL_QUEUE_MAX];
    memcpy(s->signal, job->signal, sizeof s->signal);
    s->value = value;
    s->ts_ms = job->ts_ms;
    self->queue_len++;
}

/* Counts the outcome, queues a value, and logs a failure when it is new for this query (or has
 * persisted for PROMQL_LOG_REPEAT_MS), and a recovery. */
static void finish_job(promql_t *self, const struct job *job, const struct promql_parsed *res)
{
    enum { QUIET, LOG_FAILED, LOG_RECOVERED } say = QUIET;
    char before[OUTCOME_MAX] = "";
    char line[sizeof res->message];

    if (res->answer == PROMQL_FAILED)
        metrics_promql_error(res->reason);
    else
        metrics_promql_query();

    pthread_mutex_lock(&self->lock);
    if (job->generation == self->generation && job->index < self->nqueries) {
        struct query *q = &self->queries[job->index];
        int64_t now = vg_mono_ms();
        if (res->answer == PROMQL_FAILED) {
            if (strcmp(q->outcome, res->reason) != 0 || strcmp(q->message, res->message) != 0 ||
                now - q->logged_ms >= PROMQL_LOG_REPEAT_MS) {
                say = LOG_FAILED;
                q->logged_ms = now;
            }
            snprintf(q->outcome, sizeof q->outcome, "%s", res->reason);
            snprintf(q->message, sizeof q->message, "%s", res->message);
        } else if (q->outcome[0]) {
            say = LOG_RECOVERED;
            snprintf(before, sizeof before, "%s", q->outcome);
            q->outcome[0] = '\0';
            q->message[0] = '\0';
        }
        if (res->answer == PROMQL_VALUE)
            queue_push_locked(self, job, res->value);
    }
    pthread_mutex_unlock(&self->lock);

    if (say == LOG_FAILED)
        vg_log(VG_LOG_WARN, "promql signal=%s failed reason=%s: %s", job->signal, res->reason,
               vg_log_one_line(res->message, line, sizeof line));
    else if (say == LOG_RECOVERED)
        vg_log(VG_LOG_INFO, "promql signal=%s answering again (was %s)", job->signal, before);
}

static void *poll_thread(void *arg)
{
    promql_t *self = arg;

    for (;;) {
        struct job job = {0};
        int64_t wait_ms = 0;

        pthread_mutex_lock(&self->lock);
        bool stop = self->stop;
        /* A capture first: an incident is waiting for its evidence. */
        struct capture_item *capture = stop ? NULL : self->waiting;
        if (capture) {
            self->waiting = capture->next;
            if (!self->waiting)
                self->waiting_tail = NULL;
            capture->next = NULL;
        }
        bool due = !stop && !capture && next_job_locked(self, &job, &wait_ms);
        pthread_mutex_unlock(&self->lock);
        if (stop)
            break;
        if (capture) {
            if (!run_capture(self, &capture->c)) {
                capture_free(capture);
                break;
            }
            capture_done(self, capture);
            continue;
        }
        if (!due) {
            /* Woken early by promql_set_queries and promql_destroy (curl_multi_wakeup). */
            vg_curl_multi_step(self->multi, NULL, wait_ms < IDLE_WAIT_MS ? wait_ms : IDLE_WAIT_MS,
                               NULL);
            continue;
        }
        struct promql_parsed res;
        bool finished = run_query(self, job.expr, &res);
        free(job.expr);
        if (!finished)
            break;
        finish_job(self, &job, &res);
    }
    return NULL;
}

/* ---- the object ----------------------------------------------------------------------------- */

/* Only http and https, with a host, and no query or fragment (the poller adds its own). */
static int check_url(const char *url, char *err, size_t errlen)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *query = NULL, *fragment = NULL;
    int r = -EINVAL;

    if (!u) {
        vg_set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (uc != CURLUE_OK) {
        vg_set_err(err, errlen, "url \"%s\": %s", url, curl_url_strerror(uc));
        goto out;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        vg_set_err(err, errlen, "url \"%s\": must be http:// or https://", url);
        goto out;
    }
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0]) {
        vg_set_err(err, errlen, "url \"%s\": no host", url);
        goto out;
    }
    if (curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_FRAGMENT, &fragment, 0) == CURLUE_OK) {
        vg_set_err(err, errlen, "url \"%s\": the base URL takes no ?query or #fragment", url);
        goto out;
    }
    r = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(query);
    curl_free(fragment);
    curl_url_cleanup(u);
    return r;
}

static int bearer_header(promql_t *self, const char *token_file, char *err, size_t errlen)
{
    char *token = NULL, *header = NULL;
    size_t token_len = 0;
    int r = vg_secret_file_read(token_file, &token, &token_len, err, errlen);
    if (r < 0)
        return r;
    if (token_len == 0 || strcspn(token, "\r\n") != token_len || strlen(token) != token_len) {
        vg_set_err(err, errlen, "%s: the token must be one non-empty line", token_file);
        r = -EINVAL;
        goto out;
    }
    if (asprintf(&header, "Authorization: Bearer %s", token) < 0) {
        header = NULL;
        r = -ENOMEM;
        vg_set_err(err, errlen, "out of memory");
        goto out;
    }
    struct curl_slist *list = curl_slist_append(NULL, header);
    if (!list) {
        r = -ENOMEM;
        vg_set_err(err, errlen, "out of memory");
        goto out;
    }
    self->headers = list;
out:
    if (header) {
        explicit_bzero(header, strlen(header));
        free(header);
    }
    explicit_bzero(token, token_len);
    free(token);
    return r;
}

#define SETOPT(opt, val)                                                                           \
    do {                                                                                           \
        if (curl_easy_setopt(self->easy, opt, val) != CURLE_OK) {                                  \
            vg_set_err(err, errlen, "libcurl refuses %s", #opt);                                   \
            goto err_destroy;                                                                      \
        }                                                                                          \
    } while (0)

promql_t *promql_new(const struct promql_config *cfg, char *err, size_t errlen)
{
    const char *url = cfg->url ? cfg->url : "";

    promql_t *self = calloc(1, sizeof(*self));
    if (!self) {
        vg_set_err(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&self->lock, NULL);
    self->body_max = PROMQL_MAX_BODY;
    self->capture_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (self->capture_fd < 0) {
        vg_set_err(err, errlen, "eventfd: %s", strerror(errno));
        goto err_destroy;
    }
    /* Reference-counted, and thread-safe in this libcurl ("threadsafe" feature). */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        vg_set_err(err, errlen, "libcurl cannot initialise");
        goto err_destroy;
    }
    self->curl_ready = true;
    if (check_url(url, err, errlen) < 0)
        goto err_destroy;
    size_t base_len = strlen(url);
    while (base_len > 0 && url[base_len - 1] == '/')
        base_len--;
    if (asprintf(&self->endpoint, "%.*s/api/v1/query", (int)base_len, url) < 0) {
        self->endpoint = NULL;
        vg_set_err(err, errlen, "out of memory");
        goto err_destroy;
    }
    self->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 5000;
    if (cfg->token_file && cfg->token_file[0] &&
        bearer_header(self, cfg->token_file, err, errlen) < 0)
        goto err_destroy;
    self->easy = curl_easy_init();
    self->multi = curl_multi_init();
    if (!self->easy || !self->multi) {
        vg_set_err(err, errlen, "out of memory");
        goto err_destroy;
    }
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_TIMEOUT_MS, (long)self->timeout_ms);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, (long)self->timeout_ms);
    /* Proxies from the environment are ignored: Prometheus is reached directly. */
    SETOPT(CURLOPT_PROXY, "");
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(CURLOPT_USERAGENT, "vigil-coordinator/" VIGIL_VERSION);
    SETOPT(CURLOPT_WRITEFUNCTION, keep_body);
    SETOPT(CURLOPT_WRITEDATA, self);
    SETOPT(CURLOPT_ERRORBUFFER, self->errbuf);
    if (self->headers)
        SETOPT(CURLOPT_HTTPHEADER, self->headers);
    int r = pthread_create(&self->thread, NULL, poll_thread, self);
    if (r != 0) {
        vg_set_err(err, errlen, "cannot start the poller thread: %s", strerror(r));
        goto err_destroy;
    }
    self->thread_started = true;
    return self;

err_destroy:
    promql_destroy(&self);
    return NULL;
}

#undef SETOPT

void promql_destroy(promql_t **self_p)
{
    promql_t *self = self_p ? *self_p : NULL;
    if (!self)
        return;
    if (self->thread_started) {
        pthread_mutex_lock(&self->lock);
        self->stop = true;
        pthread_mutex_unlock(&self->lock);
        curl_multi_wakeup(self->multi);
        pthread_join(self->thread, NULL);
    }
    if (self->multi)
        curl_multi_cleanup(self->multi);
    if (self->easy)
        curl_easy_cleanup(self->easy);
    for (struct curl_slist *h = self->headers; h; h = h->next)
        explicit_bzero(h->data, strlen(h->data));
    curl_slist_free_all(self->headers);
    if (self->curl_ready)
        curl_global_cleanup();
    queries_free(self->queries, self->nqueries);
    captures_free(self->waiting);
    captures_free(self->done);
    if (self->capture_fd >= 0)
        close(self->capture_fd);
    free(self->endpoint);
    free(self->body);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

int promql_set_queries(promql_t *self, const struct rb_set *set)
{
    size_t n = count_promql(set), k = 0;
    struct query *queries = calloc(n ? n : 1, sizeof *queries);
    char signal[SIGNAL_MAX];

    if (!queries)
        return -ENOMEM;
    for (size_t r = 0; set && r < set->n; r++) {
        const struct rb_runbook *rb = &set->runbooks[r];
        /* Symptoms, then verify entries (they are conditions too). */
        for (size_t i = 0; i < rb->nsymptoms + rb->nverify; i++) {
            bool symptom = i < rb->nsymptoms;
            const struct rb_condition *c = symptom ? &rb->symptoms[i].cond
                                                   : &rb->verify[i - rb->nsymptoms].cond;
            if (c->kind != RB_COND_PROMQL || !c->promql)
                continue;
            int named = symptom ? rules_promql_signal(rb->id, rb->symptoms[i].id, signal,
                                                      sizeof signal)
                                : rules_promql_verify_signal(rb->id, i - rb->nsymptoms, signal,
                                                             sizeof signal);
            if (named < 0) {
                vg_log(VG_LOG_WARN, "promql runbook=%s: ids too long, condition not polled",
                       rb->id);
                continue;
            }
            struct query *q = &queries[k];
            q->signal = strdup(signal);
            q->expr = strdup(c->promql);
            q->interval_ms = c->interval_ms > 0 ? c->interval_ms : 30000;
            if (!q->signal || !q->expr) {
                queries_free(queries, k + 1);
                return -ENOMEM;
            }
            k++;
        }
    }

    pthread_mutex_lock(&self->lock);
    struct query *old = self->queries;
    size_t nold = self->nqueries;
    /* A failure already logged stays quiet across a reload that kept its query unchanged. */
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < nold; j++)
            if (strcmp(queries[i].signal, old[j].signal) == 0 &&
                strcmp(queries[i].expr, old[j].expr) == 0) {
                memcpy(queries[i].outcome, old[j].outcome, sizeof queries[i].outcome);
                memcpy(queries[i].message, old[j].message, sizeof queries[i].message);
                queries[i].logged_ms = old[j].logged_ms;
                break;
            }
    self->queries = queries;
    self->nqueries = k;
    self->generation++;
    pthread_mutex_unlock(&self->lock);
    queries_free(old, nold);
    curl_multi_wakeup(self->multi); /* the new queries are due now */
    return (int)k;
}

size_t promql_drain(promql_t *self, promql_sample_fn fn, void *userdata)
{
    struct sample batch[64];
    size_t total = 0;

    /* In slices, so fn never runs under the lock (it may take its time in the rule engine). */
    for (;;) {
        size_t n = 0;
        pthread_mutex_lock(&self->lock);
        while (n < sizeof batch / sizeof batch[0] && self->queue_len > 0) {
            batch[n++] = self->queue[self->queue_head];
            self->queue_head = (self->queue_head + 1) % PROMQL_QUEUE_MAX;
            self->queue_len--;
        }
        pthread_mutex_unlock(&self->lock);
        for (size_t i = 0; i < n; i++)
            fn(userdata, batch[i].signal, batch[i].value, batch[i].ts_ms);
        total += n;
        if (n < sizeof batch / sizeof batch[0])
            return total;
    }
}
