/*
 * The Alertmanager webhook: payload version 4 in, signals of the source "alertmanager" out.
 * See alertmanager.h for the mapping (name, node, state, time).
 *
 * Every input is hostile: the body is bounded by the HTTP layer, each alert's labels by
 * wire.h's limits, and an alert out of bounds is skipped and counted rather than failing the
 * whole notification (Alertmanager does not retry a 4xx, so the other alerts would be lost).
 */
#include "alertmanager.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "digest.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "timeutil.h"
#include "vigil.pb-c.h"

#define NAME_PREFIX "alert."
#define BEARER "Bearer "

static const char *const refusal_names[AM_REFUSE__COUNT] = {
    [AM_REFUSE_NONE] = "none",
    [AM_REFUSE_UNAUTHORIZED] = "unauthorized",
    [AM_REFUSE_METHOD] = "method",
    [AM_REFUSE_TOO_LARGE] = "too_large",
    [AM_REFUSE_MALFORMED] = "malformed",
    [AM_REFUSE_VERSION] = "version",
    [AM_REFUSE_NO_ALERTNAME] = "no_alertname",
    [AM_REFUSE_INVALID] = "invalid",
    [AM_REFUSE_STORE] = "store_error",
};

const char *am_refusal_name(enum am_refusal reason)
{
    return (unsigned)reason < AM_REFUSE__COUNT ? refusal_names[reason] : "other";
}

void am_batch_clear(struct am_batch *batch)
{
    if (!batch)
        return;
    for (size_t i = 0; i < batch->n; i++) {
        free(batch->alerts[i].labels_json);
        batch->alerts[i].labels_json = NULL;
    }
    free(batch->alerts);
    memset(batch, 0, sizeof(*batch));
}

/* ---- times ---- */

static bool digits(const char *p, int n, int *ret)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (p[i] - '0');
    }
    *ret = v;
    return true;
}

bool alertmanager_parse_time(const char *text, int64_t *ret_ms)
{
    int year, mon, day, hour, min, sec, off_h = 0, off_m = 0;

    if (!text || strlen(text) < 20 || !digits(text, 4, &year) || text[4] != '-' ||
        !digits(text + 5, 2, &mon) || text[7] != '-' || !digits(text + 8, 2, &day) ||
        (text[10] != 'T' && text[10] != 't' && text[10] != ' ') || !digits(text + 11, 2, &hour) ||
        text[13] != ':' || !digits(text + 14, 2, &min) || text[16] != ':' ||
        !digits(text + 17, 2, &sec))
        return false;
    if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60)
        return false;
    const char *p = text + 19;
    int64_t frac_ms = 0;
    if (*p == '.') {
        int scale = 100, n = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, n++) {
            frac_ms += (*p - '0') * scale;
            scale /= 10;
        }
        if (n == 0 || n > 9)
            return false;
    }
    int sign = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p == '+' ? 1 : -1;
        if (!digits(p + 1, 2, &off_h) || p[3] != ':' || !digits(p + 4, 2, &off_m) || off_h > 23 ||
            off_m > 59)
            return false;
        p += 6;
    } else {
        return false;
    }
    if (*p != '\0')
        return false;

    struct tm tm = {.tm_year = year - 1900,
                    .tm_mon = mon - 1,
                    .tm_mday = day,
                    .tm_hour = hour,
                    .tm_min = min,
                    .tm_sec = sec > 59 ? 59 : sec};
    time_t t = timegm(&tm);
    if (tm.tm_mday != day) /* 31 February and the like: timegm normalised it */
        return false;
    *ret_ms = (int64_t)t * 1000 + frac_ms - (int64_t)sign * (off_h * 3600 + off_m * 60) * 1000;
    return true;
}

/* ---- one alert ---- */

static bool name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

static bool hex_text(const char *s)
{
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F')))
            return false;
    return true;
}

/* Labels: an object of strings, at most VG_MAX_LABELS_PER_SIGNAL with the fingerprint. */
static int labels_check(json_t *labels, char *why, size_t whylen)
{
    const char *key;
    json_t *value;

    if (json_object_size(labels) + 1 > VG_MAX_LABELS_PER_SIGNAL) {
        snprintf(why, whylen, "%zu labels (at most %d with the fingerprint)",
                 json_object_size(labels), VG_MAX_LABELS_PER_SIGNAL - 1);
        return -EINVAL;
    }
    json_object_foreach(labels, key, value)
    {
        if (!json_is_string(value)) {
            snprintf(why, whylen, "label \"%.64s\" is not a string", key);
            return -EINVAL;
        }
        if (key[0] == '\0' || strlen(key) > VG_MAX_NAME_LEN ||
            json_string_length(value) > VG_MAX_VALUE_LEN) {
            snprintf(why, whylen, "label \"%.64s\" too long or empty", key);
            return -EINVAL;
        }
        if (strlen(json_string_value(value)) != json_string_length(value)) {
            snprintf(why, whylen, "label \"%.64s\" holds a NUL byte", key);
            return -EINVAL;
        }
    }
    return 0;
}

static const char *label(json_t *labels, const char *key)
{
    const char *v = json_string_value(json_object_get(labels, key));
    return v && v[0] ? v : NULL;
}

static enum am_refusal alert_parse(json_t *in, int64_t now_ms, struct am_alert *out, char *why,
                                   size_t whylen)
{
    json_t *labels = json_object_get(in, "labels");
    const char *status = json_string_value(json_object_get(in, "status"));
    const char *fingerprint = json_string_value(json_object_get(in, "fingerprint"));

    if (!json_is_object(in) || !json_is_object(labels)) {
        snprintf(why, whylen, "alert without a labels object");
        return AM_REFUSE_INVALID;
    }
    if (!status || (strcmp(status, "firing") != 0 && strcmp(status, "resolved") != 0)) {
        snprintf(why, whylen, "status must be \"firing\" or \"resolved\"");
        return AM_REFUSE_INVALID;
    }
    const char *alertname = label(labels, "alertname");
    if (!alertname) {
        snprintf(why, whylen, "alert without an alertname label");
        return AM_REFUSE_NO_ALERTNAME;
    }
    if (!fingerprint || !fingerprint[0] || strlen(fingerprint) > ALERTMANAGER_FINGERPRINT_MAX ||
        !hex_text(fingerprint)) {
        snprintf(why, whylen, "alert \"%.64s\": fingerprint missing or not hexadecimal", alertname);
        return AM_REFUSE_INVALID;
    }
    if (labels_check(labels, why, whylen) < 0)
        return AM_REFUSE_INVALID;

    const char *node = label(labels, "node");
    if (!node)
        node = label(labels, "instance");
    if (node && strlen(node) > VG_MAX_NAME_LEN) {
        snprintf(why, whylen, "alert \"%.64s\": node longer than %d bytes", alertname,
                 VG_MAX_NAME_LEN);
        return AM_REFUSE_INVALID;
    }

    /* alertname may be any UTF-8; the signal name keeps [A-Za-z0-9_.-] and maps the rest. */
    size_t len = strlen(NAME_PREFIX);
    memcpy(out->name, NAME_PREFIX, len);
    for (const char *p = alertname; *p && len < VG_MAX_NAME_LEN; p++)
        out->name[len++] = name_char((unsigned char)*p) ? *p : '_';
    out->name[len] = '\0';
    snprintf(out->fingerprint, sizeof(out->fingerprint), "%s", fingerprint);
    snprintf(out->node, sizeof(out->node), "%s", node ? node : "");

    out->firing = strcmp(status, "firing") == 0;
    const char *severity = label(labels, "severity");
    if (!out->firing)
        out->state = VIGIL__SIGNAL_STATE__SIGNAL_STATE_OK;
    else if (severity && strcasecmp(severity, "warning") == 0)
        out->state = VIGIL__SIGNAL_STATE__SIGNAL_STATE_WARNING;
    else
        out->state = VIGIL__SIGNAL_STATE__SIGNAL_STATE_CRITICAL;

    /* Alertmanager writes the zero time 0001-01-01T00:00:00Z for "unset": treat as absent. */
    const char *when = json_string_value(json_object_get(in, out->firing ? "startsAt" : "endsAt"));
    int64_t ms;
    out->payload_ms = alertmanager_parse_time(when, &ms) && ms > 0 ? ms : 0;
    out->ts_ms = out->payload_ms ? out->payload_ms : now_ms;

    json_t *copy = json_deep_copy(labels);
    if (!copy || json_object_set_new(copy, "fingerprint", json_string(fingerprint)) < 0) {
        json_decref(copy);
        snprintf(why, whylen, "out of memory");
        return AM_REFUSE_INVALID;
    }
    out->labels_json = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(copy);
    if (!out->labels_json) {
        snprintf(why, whylen, "out of memory");
        return AM_REFUSE_INVALID;
    }
    return AM_REFUSE_NONE;
}

int alertmanager_parse(const char *body, size_t len, int64_t now_ms, struct am_batch *ret,
                       enum am_refusal *ret_refusal, char *reason, size_t reasonlen)
{
    json_error_t jerr;

    memset(ret, 0, sizeof(*ret));
    *ret_refusal = AM_REFUSE_MALFORMED;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(reason, reasonlen, "not JSON: %s at line %d column %d", jerr.text, jerr.line,
                 jerr.column);
        return -EINVAL;
    }
    int r = -EINVAL;
    json_t *alerts = json_object_get(root, "alerts");
    const char *version = json_string_value(json_object_get(root, "version"));
    if (!json_is_object(root)) {
        snprintf(reason, reasonlen, "payload is not a JSON object");
        goto out;
    }
    if (!version) {
        snprintf(reason, reasonlen, "payload without a \"version\" string");
        goto out;
    }
    if (strcmp(version, "4") != 0) {
        *ret_refusal = AM_REFUSE_VERSION;
        snprintf(reason, reasonlen, "payload version \"%.16s\" is not supported (expected \"4\")",
                 version);
        goto out;
    }
    if (!json_is_array(alerts)) {
        snprintf(reason, reasonlen, "payload without an \"alerts\" array");
        goto out;
    }

    size_t n = json_array_size(alerts);
    ret->alerts = n ? calloc(n, sizeof(*ret->alerts)) : NULL;
    if (n && !ret->alerts) {
        snprintf(reason, reasonlen, "out of memory");
        r = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char why[256];
        struct am_alert *a = &ret->alerts[ret->n];
        enum am_refusal refusal =
            alert_parse(json_array_get(alerts, i), now_ms, a, why, sizeof(why));
        if (refusal == AM_REFUSE_NONE) {
            ret->n++;
            continue;
        }
        free(a->labels_json);
        memset(a, 0, sizeof(*a));
        if (!ret->first_refusal[0])
            snprintf(ret->first_refusal, sizeof(ret->first_refusal), "alert %zu: %s", i, why);
        ret->refused[refusal]++;
    }
    *ret_refusal = AM_REFUSE_NONE;
    r = 0;
out:
    json_decref(root);
    if (r < 0)
        am_batch_clear(ret);
    return r;
}

/* ---- the webhook ---- */

/* A stored alert on its way to the rule engine (alertmanager_drain). */
struct pending_alert {
    char node[VG_MAX_NAME_LEN + 1];
    char name[VG_MAX_NAME_LEN + 1];
    double value;
    int64_t ts_ms;
};

/* Stored alerts wait at most this many for the rule engine; past it the oldest go (counted in
 * the log): the rule engine drains every 250 ms, so only a stalled main loop fills it. */
#define PENDING_ALERTS_MAX 10000

struct alertmanager {
    char *token;
    size_t token_len;
    size_t max_body;
    store_alerts_t *store; /* this thread's own connection */
    /* Filled on the HTTP thread after each commit, drained on the main thread. */
    pthread_mutex_t lock;
    struct pending_alert *pending;
    size_t npending, pending_dropped;
};

alertmanager_t *alertmanager_new(const struct alertmanager_config *cfg, char *err, size_t errlen)
{
    alertmanager_t *self = calloc(1, sizeof(*self));
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->max_body = cfg->max_body;
    pthread_mutex_init(&self->lock, NULL);
    self->pending = calloc(PENDING_ALERTS_MAX, sizeof(*self->pending));
    if (!self->pending) {
        snprintf(err, errlen, "out of memory");
        goto err_free;
    }
    if (vg_secret_file_read(cfg->token_file, &self->token, &self->token_len, err, errlen) < 0)
        goto err_free;
    if (self->token_len == 0) {
        snprintf(err, errlen, "%s: the Alertmanager token file is empty", cfg->token_file);
        goto err_free;
    }
    self->store = store_alerts_new(cfg->store_conninfo);
    if (!self->store) {
        snprintf(err, errlen, "out of memory");
        goto err_free;
    }
    return self;

err_free:
    alertmanager_destroy(&self);
    return NULL;
}

void alertmanager_destroy(alertmanager_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    alertmanager_t *self = *self_p;
    if (self->token) {
        explicit_bzero(self->token, self->token_len);
        free(self->token);
        self->token = NULL;
    }
    store_alerts_destroy(&self->store);
    free(self->pending);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

size_t alertmanager_max_body(const alertmanager_t *self)
{
    return self ? self->max_body : 0;
}

bool alertmanager_authorized(const alertmanager_t *self, const char *authorization)
{
    size_t prefix = strlen(BEARER);
    if (!self || !authorization || strncasecmp(authorization, BEARER, prefix) != 0)
        return false;
    const char *given = authorization + prefix;
    /* The length is not secret; the bytes are compared in constant time. */
    return strlen(given) == self->token_len &&
           vg_memcmp_ct(given, self->token, self->token_len) == 0;
}

void alertmanager_refused(enum am_refusal reason, const char *detail)
{
    metrics_alerts_refused(am_refusal_name(reason), 1);
    vg_log(VG_LOG_WARN, "alertmanager: refused reason=%s detail=\"%s\"", am_refusal_name(reason),
           detail ? detail : "");
}

/* After the commit: the alerts go to the rule engine too, as any stored signal does. */
static void queue_for_rules(alertmanager_t *self, const struct am_batch *batch)
{
    pthread_mutex_lock(&self->lock);
    for (size_t i = 0; i < batch->n; i++) {
        const struct am_alert *a = &batch->alerts[i];
        if (self->npending == PENDING_ALERTS_MAX) {
            memmove(self->pending, self->pending + 1,
                    (PENDING_ALERTS_MAX - 1) * sizeof(*self->pending));
            self->npending--;
            self->pending_dropped++;
        }
        struct pending_alert *p = &self->pending[self->npending++];
        snprintf(p->node, sizeof(p->node), "%s", a->node);
        snprintf(p->name, sizeof(p->name), "%s", a->name);
        p->value = a->firing ? 1 : 0;
        p->ts_ms = a->ts_ms;
    }
    pthread_mutex_unlock(&self->lock);
}

void alertmanager_drain(alertmanager_t *self, alertmanager_sample_fn fn, void *userdata)
{
    if (!self)
        return;
    pthread_mutex_lock(&self->lock);
    size_t n = self->npending, dropped = self->pending_dropped;
    struct pending_alert *batch = n ? malloc(n * sizeof(*batch)) : NULL;
    if (batch)
        memcpy(batch, self->pending, n * sizeof(*batch));
    if (batch || n == 0) {
        self->npending = 0;
        self->pending_dropped = 0;
    }
    pthread_mutex_unlock(&self->lock);
    if (dropped)
        vg_log(VG_LOG_WARN,
               "alertmanager: %zu alerts reached the store but not the rule engine "
               "(it did not drain them in time)",
               dropped);
    for (size_t i = 0; batch && i < n; i++)
        fn(userdata, batch[i].node, batch[i].name, batch[i].value, batch[i].ts_ms);
    free(batch);
}

unsigned alertmanager_handle(alertmanager_t *self, const char *body, size_t len, char *reply,
                             size_t replylen)
{
    struct am_batch batch;
    enum am_refusal refusal;
    char reason[256];

    if (alertmanager_parse(body, len, vg_wall_ms(), &batch, &refusal, reason, sizeof(reason)) < 0) {
        alertmanager_refused(refusal, reason);
        snprintf(reply, replylen, "%s\n", reason);
        return 400;
    }
    for (int i = 0; i < AM_REFUSE__COUNT; i++)
        if (batch.refused[i])
            metrics_alerts_refused(am_refusal_name((enum am_refusal)i), batch.refused[i]);
    if (batch.first_refusal[0])
        vg_log(VG_LOG_WARN, "alertmanager: skipped alerts=%zu first=\"%s\"",
               batch.refused[AM_REFUSE_NO_ALERTNAME] + batch.refused[AM_REFUSE_INVALID],
               batch.first_refusal);

    size_t fresh = 0;
    int r = 0;
    if (batch.n > 0) {
        struct store_alert *rows = calloc(batch.n, sizeof(*rows));
        if (!rows) {
            r = -ENOMEM;
        } else {
            for (size_t i = 0; i < batch.n; i++) {
                const struct am_alert *a = &batch.alerts[i];
                rows[i] = (struct store_alert){
                    .fingerprint = a->fingerprint,
                    .firing = a->firing,
                    .payload_ms = a->payload_ms,
                    .name = a->name,
                    .node = a->node,
                    .labels_json = a->labels_json,
                    .state = a->state,
                    .ts_ms = a->ts_ms,
                };
            }
            r = store_alerts_put(self->store, rows, batch.n, &fresh);
            free(rows);
        }
    }
    if (r < 0) {
        snprintf(reason, sizeof(reason), "store: %s", strerror(-r));
        alertmanager_refused(AM_REFUSE_STORE, reason);
        snprintf(reply, replylen, "cannot store the alerts now: %s\n", strerror(-r));
        am_batch_clear(&batch);
        return 503;
    }
    for (size_t i = 0; i < batch.n; i++)
        metrics_alerts_received(batch.alerts[i].firing ? "firing" : "resolved");
    queue_for_rules(self, &batch);
    vg_log(VG_LOG_INFO, "alertmanager: stored alerts=%zu new=%zu skipped=%zu", batch.n, fresh,
           batch.refused[AM_REFUSE_NO_ALERTNAME] + batch.refused[AM_REFUSE_INVALID]);
    snprintf(reply, replylen, "stored %zu alerts (%zu new)\n", batch.n, fresh);
    am_batch_clear(&batch);
    return 200;
}
