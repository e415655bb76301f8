/*
 * The coordinator's metrics registry: one global state behind one mutex, rendered in the
 * Prometheus text exposition format 0.0.4.
 *
 * Counters are plain integers updated under the mutex. The per-agent gauges are an array owned
 * by this module and replaced wholesale by metrics_set_agents; the render formats straight
 * from it while holding the mutex (a few hundred kilobytes for thousands of agents).
 */
#include "metrics.h"

#include "log.h"
#include "timeutil.h"
#include "wire.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Distinct message types counted by name; any further type is counted as "other". */
#define TYPE_SLOTS 16
#define TYPE_NAME_MAX 32

/* Index into by_state and the "state" label: the AgentState proto enum (0 is unspecified). */
#define AGENT_STATES 5

static const char *const refuse_names[REFUSE__COUNT] = {
    [REFUSE_MALFORMED] = "malformed",
    [REFUSE_VERSION] = "version",
    [REFUSE_UNKNOWN_TYPE] = "unknown_type",
    [REFUSE_OVERSIZED] = "oversized",
    [REFUSE_LIMITS] = "limits",
    [REFUSE_SENDER] = "sender_mismatch",
    [REFUSE_NOT_ENROLLED] = "not_enrolled",
    [REFUSE_REVOKED] = "revoked",
    [REFUSE_UNKNOWN_KEY] = "unknown_key",
    [REFUSE_BAD_TOKEN] = "bad_token",
    [REFUSE_RATE_LIMITED] = "rate_limited",
    [REFUSE_FORBIDDEN] = "forbidden",
    [REFUSE_STORE] = "store_error",
    [REFUSE_INVALID_RECORD] = "invalid_record",
    [REFUSE_KEY_MISMATCH] = "key_mismatch",
};

/* Upper bounds of vigil_store_batch_seconds' finite buckets, as numbers and as "le" labels. */
static const double batch_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                      0.1,   0.25,   0.5,   1,    2.5};
static const char *const batch_bound_labels[] = {
    "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5"};
#define BATCH_BUCKETS (sizeof(batch_bounds) / sizeof(batch_bounds[0]))
_Static_assert(sizeof(batch_bound_labels) / sizeof(batch_bound_labels[0]) == BATCH_BUCKETS,
               "every histogram bound has its label");

struct type_count {
    char name[TYPE_NAME_MAX];
    uint64_t count;
};

/* A counter with one bounded label: fixed slots, then "other". */
#define LABEL_SLOTS 24
struct label_counter {
    struct type_count slots[LABEL_SLOTS];
    size_t used;
    uint64_t other;
};

/* Shown at zero from the start, so a dashboard sees the series before the first event. */
static const char *const evidence_kinds[] = {
    "netstat",    "processes", "log_tail",     "host",           "postgres",    "redis",
    "kubernetes", "k8s_pods",  "k8s_describe", "k8s_logs",       "k8s_ingress", "k8s_config",
    "k8s_top",    "file",      "flight",       "command_output", "promql"};
static const char *const evidence_reject_reasons[] = {
    "sha256", "size",      "unknown_collection", "not_pending",
    "kind",   "duplicate", "artifact_reuse",     "invalid"};
static const char *const evidence_refuse_reasons[] = {"unknown_kind", "bad_request", "no_target"};
/* Alertmanager webhook: alertmanager.c's am_refusal names. */
static const char *const alert_statuses[] = {"firing", "resolved"};
static const char *const alert_refuse_reasons[] = {"unauthorized", "method",     "too_large",
                                                   "malformed",    "version",    "no_alertname",
                                                   "invalid",      "store_error"};
/* Symptom transitions: rules.h's rule_state names. */
static const char *const symptom_states[] = {"ok", "warning", "critical"};
/* Notifications: notify.c's channels and attempt outcomes, every pair shown from the start. */
static const char *const notify_channels[] = {"slack",     "webhook", "email",
                                              "pagerduty", "sms",     "ticket"};
static const char *const notify_outcomes[] = {"sent", "retry", "failed"};
#define NOTIFY_CHANNELS (sizeof(notify_channels) / sizeof(notify_channels[0]))
#define NOTIFY_OUTCOMES (sizeof(notify_outcomes) / sizeof(notify_outcomes[0]))
/* PromQL poller failures: promql.c's reason names. */
static const char *const promql_error_reasons[] = {"refused", "timeout",     "transport",
                                                   "http",    "too_large",   "query",
                                                   "series",  "result_type", "malformed"};

static struct {
    pthread_mutex_t lock;
    struct type_count types[TYPE_SLOTS];
    size_t types_used;
    uint64_t received_other;
    uint64_t refused[REFUSE__COUNT];
    uint64_t stored_messages;
    uint64_t stored_signals;
    uint64_t batch_buckets[BATCH_BUCKETS + 1]; /* per bucket, not cumulative; last is +Inf */
    double batch_sum;
    uint64_t batch_count;
    int store_up;
    uint64_t store_outages;        /* as counted by the store (store_outages) */
    uint64_t watchdog_calls[3];    /* ok, failed, skipped (watchdog.h) */
    uint64_t checkpoint_posts[2];  /* sent, failed (checkpoint_hook.h) */
    uint64_t embedded_pg_restarts; /* the private cluster started again after it died */
    uint64_t agents_by_state[AGENT_STATES];
    struct metrics_agent *agents;
    size_t agents_len;
    struct label_counter evidence_requests;         /* by kind */
    struct label_counter evidence_requests_refused; /* by reason */
    struct label_counter evidence_rejected;         /* by reason */
    struct label_counter evidence_failed;           /* by kind */
    uint64_t evidence_stored;
    uint64_t evidence_bytes;
    uint64_t evidence_purged_bytes;       /* of artifacts that never completed */
    struct metrics_retention retention;   /* counters summed over passes (retention.c) */
    int64_t retention_ok_ms;              /* the last pass without a failure; 0 = none */
    uint64_t series_limited;              /* samples dropped: their agent had too many series */
    uint64_t requests_resent;             /* requests sent again on an agent's new connection */
    struct label_counter alerts_received; /* by status */
    struct label_counter alerts_refused;  /* by reason */
    uint64_t runbooks_loaded;
    struct metrics_rule_engine rules;
    uint64_t runbook_reload_failures;
    struct label_counter symptom_events; /* by state */
    uint64_t promql_queries;
    struct label_counter promql_errors; /* by reason */
    uint64_t notifications[NOTIFY_CHANNELS][NOTIFY_OUTCOMES];
    uint64_t notifications_queued;
} metrics = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Counts value under label; the caller holds the lock. add 0 only makes the series exist. */
static void label_add_locked(struct label_counter *c, const char *label, uint64_t add)
{
    if (label == NULL || strlen(label) >= TYPE_NAME_MAX) {
        c->other += add;
        return;
    }
    for (size_t i = 0; i < c->used; i++) {
        if (strcmp(c->slots[i].name, label) == 0) {
            c->slots[i].count += add;
            return;
        }
    }
    if (c->used < LABEL_SLOTS) {
        struct type_count *slot = &c->slots[c->used++];
        memcpy(slot->name, label, strlen(label) + 1);
        slot->count = add;
    } else {
        c->other += add;
    }
}

static void label_seed_locked(struct label_counter *c, const char *const *labels, size_t n)
{
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < n; i++)
        label_add_locked(c, labels[i], 0);
}

#define SEED(counter, labels)                                                                      \
    label_seed_locked(&(counter), (labels), sizeof(labels) / sizeof((labels)[0]))

const char *refuse_reason_name(enum refuse_reason reason)
{
    if ((unsigned)reason >= REFUSE__COUNT)
        return "unknown";
    return refuse_names[reason];
}

/* Clears every value; the caller holds the lock. Returns the agents array to free. */
static struct metrics_agent *reset_locked(void)
{
    struct metrics_agent *agents = metrics.agents;

    memset(metrics.types, 0, sizeof(metrics.types));
    metrics.types_used = 0;
    metrics.received_other = 0;
    memset(metrics.refused, 0, sizeof(metrics.refused));
    metrics.stored_messages = 0;
    metrics.stored_signals = 0;
    memset(metrics.batch_buckets, 0, sizeof(metrics.batch_buckets));
    metrics.batch_sum = 0;
    metrics.batch_count = 0;
    metrics.store_up = 0;
    metrics.store_outages = 0;
    memset(metrics.watchdog_calls, 0, sizeof(metrics.watchdog_calls));
    memset(metrics.checkpoint_posts, 0, sizeof(metrics.checkpoint_posts));
    metrics.embedded_pg_restarts = 0;
    memset(metrics.agents_by_state, 0, sizeof(metrics.agents_by_state));
    metrics.agents = NULL;
    metrics.agents_len = 0;
    SEED(metrics.evidence_requests, evidence_kinds);
    SEED(metrics.evidence_requests_refused, evidence_refuse_reasons);
    SEED(metrics.evidence_rejected, evidence_reject_reasons);
    SEED(metrics.evidence_failed, evidence_kinds);
    metrics.evidence_stored = 0;
    metrics.evidence_bytes = 0;
    metrics.evidence_purged_bytes = 0;
    memset(&metrics.retention, 0, sizeof(metrics.retention));
    metrics.retention_ok_ms = 0;
    metrics.series_limited = 0;
    metrics.requests_resent = 0;
    SEED(metrics.alerts_received, alert_statuses);
    SEED(metrics.alerts_refused, alert_refuse_reasons);
    metrics.runbooks_loaded = 0;
    metrics.runbook_reload_failures = 0;
    SEED(metrics.symptom_events, symptom_states);
    metrics.promql_queries = 0;
    SEED(metrics.promql_errors, promql_error_reasons);
    memset(metrics.notifications, 0, sizeof(metrics.notifications));
    metrics.notifications_queued = 0;
    return agents;
}

void metrics_init(void)
{
    pthread_mutex_lock(&metrics.lock);
    struct metrics_agent *old = reset_locked();
    pthread_mutex_unlock(&metrics.lock);
    free(old);
}

void metrics_fini(void)
{
    metrics_init();
}

void metrics_received(const char *type)
{
    pthread_mutex_lock(&metrics.lock);
    if (type == NULL || strlen(type) >= TYPE_NAME_MAX) {
        metrics.received_other++;
        goto out;
    }
    for (size_t i = 0; i < metrics.types_used; i++) {
        if (strcmp(metrics.types[i].name, type) == 0) {
            metrics.types[i].count++;
            goto out;
        }
    }
    if (metrics.types_used < TYPE_SLOTS) {
        struct type_count *slot = &metrics.types[metrics.types_used++];
        memcpy(slot->name, type, strlen(type) + 1);
        slot->count = 1;
    } else {
        metrics.received_other++;
    }
out:
    pthread_mutex_unlock(&metrics.lock);
}

void metrics_refused(enum refuse_reason reason)
{
    if ((unsigned)reason >= REFUSE__COUNT) {
        vg_log(VG_LOG_DEBUG, "metrics: refuse reason %d out of range", (int)reason);
        return;
    }
    pthread_mutex_lock(&metrics.lock);
    metrics.refused[reason]++;
    pthread_mutex_unlock(&metrics.lock);
}

void metrics_rows_stored(uint64_t messages, uint64_t signals)
{
    pthread_mutex_lock(&metrics.lock);
    metrics.stored_messages += messages;
    metrics.stored_signals += signals;
    pthread_mutex_unlock(&metrics.lock);
}

void metrics_store_batch(double seconds)
{
    size_t bucket = 0;

    /* A clock that stepped backwards must not make the sum decrease or turn NaN. */
    if (!(seconds >= 0))
        seconds = 0;
    while (bucket < BATCH_BUCKETS && seconds > batch_bounds[bucket])
        bucket++;

    pthread_mutex_lock(&metrics.lock);
    metrics.batch_buckets[bucket]++;
    metrics.batch_sum += seconds;
    metrics.batch_count++;
    pthread_mutex_unlock(&metrics.lock);
}

void metrics_store_up(int up)
{
    pthread_mutex_lock(&metrics.lock);
    metrics.store_up = up != 0;
    pthread_mutex_unlock(&metrics.lock);
}

int metrics_store_is_up(void)
{
    pthread_mutex_lock(&metrics.lock);
    int up = metrics.store_up;
    pthread_mutex_unlock(&metrics.lock);
    return up;
}

void metrics_checkpoint_post(bool sent)
{
    pthread_mutex_lock(&metrics.lock);
    metrics.checkpoint_posts[sent ? 0 : 1]++;
    pthread_mutex_unlock(&metrics.lock);
}

static const char *const watchdog_results[3] = {"ok", "failed", "skipped"};

void metrics_watchdog_call(const char *result)
{
    pthread_mutex_lock(&metrics.lock);
    for (size_t i = 0; i < 3; i++)
        if (strcmp(result, watchdog_results[i]) == 0)
            metrics.watchdog_calls[i]++;
    pthread_mutex_unlock(&metrics.lock);
}

void metrics_store_outages(uint64_t total)
{
    pthread_mutex_lock(&metrics.lock);
    metrics.store_outages = total;
    pthread_mutex_unlock(&metrics.lock);
}

void metrics_embedded_pg_restarted(void)
{
    pthread_mutex_lock(&metrics.lock);
    metrics.embedded_pg_restarts++;
    pthread_mutex_unlock(&metrics.lock);
}

static void label_count(struct label_counter *c, const char *label)
{
    pthread_mutex_lock(&metrics.lock);
    label_add_locked(c, label, 1);
    pthread_mutex_unlock(&metrics.lock);
}

void metrics_alerts_received(const char *status)
{
    label_count(&metrics.alerts_received, status);
}

void metrics_alerts_refused(const char *reason, uint64_t n)
{
    pthread_mutex_lock(&metrics.lock);
    label_add_locked(&metrics.alerts_refused, reason, n);
    pthread_mutex_unlock(&metrics.lock);
}

void metrics_runbooks_loaded(uint64_t n)
{
    pthread_mutex_lock(&metrics.lock);
    metrics.runbooks_loaded = n;
    pthread_mutex_unlock(&metrics.lock);
}

void metrics_rule_engine(const struct metrics_rule_engine *stats)
{
    pthread_mutex_lock(&metrics.lock);
    metrics.rules = *stats;
    pthread_mutex_unlock(&metrics.lock);
}

void metrics_runbook_reload_failed(void)
{
    pthread_mutex_lock(&metrics.lock);
    metrics.runbook_reload_failures++;
    pthread_mutex_unlock(&metrics.lock);
}

void metrics_symptom_event(const char *state)
{
    label_count(&metrics.symptom_events, state);
}

void metrics_promql_query(void)
{
    pthread_mutex_lock(&metrics.lock);
    metrics.promql_queries++;
    pthread_mutex_unlock(&metrics.lock);
}

void metrics_promql_error(const char *reason)
{
    label_count(&metrics.promql_errors, reason);
}

static int name_index(const char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; name && i < n; i++)
        if (strcmp(names[i], name) == 0)
            return (int)i;
    return -1;
}

void metrics_notification(const char *channel, const char *outcome)
{
    int c = name_index(notify_channels, NOTIFY_CHANNELS, channel);
    int o = name_index(notify_outcomes, NOTIFY_OUTCOMES, outcome);
    if (c < 0 || o < 0)
        return;
    pthread_mutex_lock(&metrics.lock);
    metrics.notifications[c][o]++;
    pthread_mutex_unlock(&metrics.lock);
}

void metrics_notifications_queued(uint64_t n)
{
    pthread_mutex_lock(&metrics.lock);
    metrics.notifications_queued = n;
    pthread_mutex_unlock(&metrics.lock);
}

void metrics_evidence_requested(const char *kind)
{
    label_count(&metrics.evidence_requests, kind);
}

void metrics_evidence_request_refused(const char *reason)
{
    label_count(&metrics.evidence_requests_refused, reason);
}

void metrics_evidence_rejected(const char *reason)
{
    label_count(&metrics.evidence_rejected, reason);
}

void metrics_evidence_failed(const char *kind)
{
    label_count(&metrics.evidence_failed, kind);
}

void metrics_series_limited(uint64_t samples)
{
    pthread_mutex_lock(&metrics.lock);
    metrics.series_limited += samples;
    pthread_mutex_unlock(&metrics.lock);
}

void metrics_requests_resent(uint64_t n)
{
    pthread_mutex_lock(&metrics.lock);
    metrics.requests_resent += n;
    pthread_mutex_unlock(&metrics.lock);
}

void metrics_evidence_purged(uint64_t bytes)
{
    pthread_mutex_lock(&metrics.lock);
    metrics.evidence_purged_bytes += bytes;
    pthread_mutex_unlock(&metrics.lock);
}

void metrics_retention(const struct metrics_retention *pass)
{
    pthread_mutex_lock(&metrics.lock);
    struct metrics_retention *r = &metrics.retention;
    r->partitions_created += pass->partitions_created;
    r->partitions_dropped += pass->partitions_dropped;
    r->signal_rows_dropped += pass->signal_rows_dropped;
    r->signal_bytes_dropped += pass->signal_bytes_dropped;
    r->evidence_removed += pass->evidence_removed;
    r->evidence_bytes_removed += pass->evidence_bytes_removed;
    r->failures += pass->failures;
    r->default_rows = pass->default_rows;
    if (pass->pass_ok)
        metrics.retention_ok_ms = vg_wall_ms();
    pthread_mutex_unlock(&metrics.lock);
}

void metrics_evidence_stored(uint64_t bytes)
{
    pthread_mutex_lock(&metrics.lock);
    metrics.evidence_stored++;
    metrics.evidence_bytes += bytes;
    pthread_mutex_unlock(&metrics.lock);
}

/* Copies by_state (NULL means all zero) into the registry; the caller holds the lock. */
static void set_by_state_locked(const uint64_t by_state[AGENT_STATES])
{
    if (by_state != NULL)
        memcpy(metrics.agents_by_state, by_state, sizeof(metrics.agents_by_state));
    else
        memset(metrics.agents_by_state, 0, sizeof(metrics.agents_by_state));
}

void metrics_set_agents(const struct metrics_agent *agents, size_t n, const uint64_t by_state[5])
{
    struct metrics_agent *copy = NULL;

    if (agents == NULL)
        n = 0;
    if (n > 0) {
        copy = calloc(n, sizeof(*copy));
        if (copy == NULL) {
            vg_log(VG_LOG_WARN,
                   "metrics: cannot copy %zu agents: out of memory, "
                   "keeping the previous per-agent gauges",
                   n);
            pthread_mutex_lock(&metrics.lock);
            set_by_state_locked(by_state);
            pthread_mutex_unlock(&metrics.lock);
            return;
        }
        memcpy(copy, agents, n * sizeof(*copy));
    }

    pthread_mutex_lock(&metrics.lock);
    set_by_state_locked(by_state);
    struct metrics_agent *old = metrics.agents;
    metrics.agents = copy;
    metrics.agents_len = n;
    pthread_mutex_unlock(&metrics.lock);
    free(old);
}

/*
 * Writes a label value escaped per the exposition format: \\, \" and \n. Reads at most size
 * bytes: struct metrics_agent's fields are fixed arrays that a full value leaves unterminated.
 */
static void put_label_value(FILE *out, const char *value, size_t size)
{
    size_t len = strnlen(value, size);

    for (const char *p = value; p < value + len; p++) {
        switch (*p) {
        case '\\':
            fputs("\\\\", out);
            break;
        case '"':
            fputs("\\\"", out);
            break;
        case '\n':
            fputs("\\n", out);
            break;
        default:
            fputc(*p, out);
            break;
        }
    }
}

static void put_agent_labels(FILE *out, const struct metrics_agent *agent)
{
    fputs("{agent=\"", out);
    put_label_value(out, agent->id, sizeof(agent->id));
    fputs("\",node=\"", out);
    put_label_value(out, agent->node, sizeof(agent->node));
    fputs("\"}", out);
}

/* Writes a float in the shortest form that reads back as the same double. */
static void put_double(FILE *out, double value)
{
    char text[40];

    if (isnan(value)) {
        fputs("NaN", out);
        return;
    }
    if (isinf(value)) {
        fputs(value > 0 ? "+Inf" : "-Inf", out);
        return;
    }
    for (int precision = 1; precision <= 17; precision++) {
        snprintf(text, sizeof(text), "%.*g", precision, value);
        if (strtod(text, NULL) == value)
            break;
    }
    fputs(text, out);
}

static void put_header(FILE *out, const char *name, const char *type, const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render_locked(FILE *out)
{
    put_header(out, "vigil_messages_received_total", "counter",
               "Messages received from agents and operators, by message type.");
    for (size_t i = 0; i < metrics.types_used; i++) {
        fputs("vigil_messages_received_total{type=\"", out);
        put_label_value(out, metrics.types[i].name, sizeof(metrics.types[i].name));
        fprintf(out, "\"} %" PRIu64 "\n", metrics.types[i].count);
    }
    if (metrics.received_other > 0)
        fprintf(out, "vigil_messages_received_total{type=\"other\"} %" PRIu64 "\n",
                metrics.received_other);

    put_header(out, "vigil_messages_refused_total", "counter",
               "Messages and handshakes refused, by reason.");
    for (size_t i = 0; i < REFUSE__COUNT; i++)
        fprintf(out, "vigil_messages_refused_total{reason=\"%s\"} %" PRIu64 "\n", refuse_names[i],
                metrics.refused[i]);

    put_header(out, "vigil_messages_unknown_fields_capped_total", "counter",
               "Messages decoded without their unknown fields, which were over the caps.");
    fprintf(out, "vigil_messages_unknown_fields_capped_total %" PRIu64 "\n",
            vg_wire_unknown_capped());

    put_header(out, "vigil_series_limit_dropped_samples_total", "counter",
               "Samples of new signal series dropped: their agent had agents.max_series.");
    fprintf(out, "vigil_series_limit_dropped_samples_total %" PRIu64 "\n", metrics.series_limited);
    put_header(out, "vigil_agent_requests_resent_total", "counter",
               "Collection requests and command capsules sent again: their agent came back on "
               "a new connection before answering them.");
    fprintf(out, "vigil_agent_requests_resent_total %" PRIu64 "\n", metrics.requests_resent);

    put_header(out, "vigil_stored_messages_total", "counter", "Messages committed to the store.");
    fprintf(out, "vigil_stored_messages_total %" PRIu64 "\n", metrics.stored_messages);
    put_header(out, "vigil_stored_signals_total", "counter", "Signals committed to the store.");
    fprintf(out, "vigil_stored_signals_total %" PRIu64 "\n", metrics.stored_signals);

    put_header(out, "vigil_store_batch_seconds", "histogram",
               "Time to commit one batch to the store.");
    uint64_t cumulative = 0;
    for (size_t i = 0; i < BATCH_BUCKETS; i++) {
        cumulative += metrics.batch_buckets[i];
        fprintf(out, "vigil_store_batch_seconds_bucket{le=\"%s\"} %" PRIu64 "\n",
                batch_bound_labels[i], cumulative);
    }
    cumulative += metrics.batch_buckets[BATCH_BUCKETS];
    fprintf(out, "vigil_store_batch_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cumulative);
    fputs("vigil_store_batch_seconds_sum ", out);
    put_double(out, metrics.batch_sum);
    fprintf(out, "\nvigil_store_batch_seconds_count %" PRIu64 "\n", metrics.batch_count);

    put_header(out, "vigil_store_up", "gauge",
               "1 if the last check of the store succeeded, 0 otherwise.");
    fprintf(out, "vigil_store_up %d\n", metrics.store_up);
    put_header(out, "vigil_store_outages_total", "counter",
               "Times the database became unreachable (a connection attempt failed).");
    fprintf(out, "vigil_store_outages_total %" PRIu64 "\n", metrics.store_outages);
    put_header(out, "vigil_checkpoint_webhook_total", "counter",
               "Checkpoints POSTed to evidence.checkpoint_webhook: sent, or failed (sent again "
               "with the next checkpoint).");
    fprintf(out, "vigil_checkpoint_webhook_total{result=\"sent\"} %" PRIu64 "\n",
            metrics.checkpoint_posts[0]);
    fprintf(out, "vigil_checkpoint_webhook_total{result=\"failed\"} %" PRIu64 "\n",
            metrics.checkpoint_posts[1]);
    put_header(out, "vigil_watchdog_calls_total", "counter",
               "Calls of watchdog.url: ok, failed, or skipped while not healthy.");
    for (size_t i = 0; i < 3; i++)
        fprintf(out, "vigil_watchdog_calls_total{result=\"%s\"} %" PRIu64 "\n", watchdog_results[i],
                metrics.watchdog_calls[i]);
    put_header(out, "vigil_embedded_pg_restarts_total", "counter",
               "Times the private PostgreSQL cluster was started again after it died.");
    fprintf(out, "vigil_embedded_pg_restarts_total %" PRIu64 "\n", metrics.embedded_pg_restarts);

    put_header(out, "vigil_agents", "gauge", "Known agents, by state.");
    for (size_t state = 1; state < AGENT_STATES; state++)
        fprintf(out, "vigil_agents{state=\"%s\"} %" PRIu64 "\n",
                vg_agent_state_name((Vigil__AgentState)state), metrics.agents_by_state[state]);

    put_header(out, "vigil_agent_spool_depth", "gauge",
               "Messages waiting in an agent's spool, as of its last heartbeat.");
    for (size_t i = 0; i < metrics.agents_len; i++) {
        const struct metrics_agent *agent = &metrics.agents[i];
        fputs("vigil_agent_spool_depth", out);
        put_agent_labels(out, agent);
        fprintf(out, " %" PRIu64 "\n", agent->spool_depth);
    }

    put_header(out, "vigil_agent_spool_dropped_messages_total", "counter",
               "Messages an agent dropped because its spool was full.");
    for (size_t i = 0; i < metrics.agents_len; i++) {
        const struct metrics_agent *agent = &metrics.agents[i];
        fputs("vigil_agent_spool_dropped_messages_total", out);
        put_agent_labels(out, agent);
        fprintf(out, " %" PRIu64 "\n", agent->dropped_messages);
    }
}

static void put_labelled(FILE *out, const char *name, const char *label,
                         const struct label_counter *c)
{
    for (size_t i = 0; i < c->used; i++) {
        fprintf(out, "%s{%s=\"", name, label);
        put_label_value(out, c->slots[i].name, sizeof(c->slots[i].name));
        fprintf(out, "\"} %" PRIu64 "\n", c->slots[i].count);
    }
    if (c->other > 0)
        fprintf(out, "%s{%s=\"other\"} %" PRIu64 "\n", name, label, c->other);
}

static void render_evidence_locked(FILE *out)
{
    put_header(out, "vigil_evidence_requests_total", "counter",
               "Evidence collections requested by operators, by kind.");
    put_labelled(out, "vigil_evidence_requests_total", "kind", &metrics.evidence_requests);
    put_header(out, "vigil_evidence_requests_refused_total", "counter",
               "Evidence collection requests refused before any agent was asked, by reason.");
    put_labelled(out, "vigil_evidence_requests_refused_total", "reason",
                 &metrics.evidence_requests_refused);
    put_header(out, "vigil_evidence_stored_total", "counter",
               "Artifacts verified (SHA-256 re-computed) and stored in the evidence vault.");
    fprintf(out, "vigil_evidence_stored_total %" PRIu64 "\n", metrics.evidence_stored);
    put_header(out, "vigil_evidence_bytes_total", "counter", "Bytes of artifacts stored.");
    fprintf(out, "vigil_evidence_bytes_total %" PRIu64 "\n", metrics.evidence_bytes);
    put_header(out, "vigil_evidence_incomplete_removed_bytes_total", "counter",
               "Bytes of uploads that never completed, removed after their request failed.");
    fprintf(out, "vigil_evidence_incomplete_removed_bytes_total %" PRIu64 "\n",
            metrics.evidence_purged_bytes);
    {
        /* retention.c: what retention removed, and whether it keeps up. */
        static const struct {
            const char *name, *help;
            size_t offset;
        } retention_counters[] = {
            {"vigil_retention_partitions_created_total", "Daily signals partitions created.",
             offsetof(struct metrics_retention, partitions_created)},
            {"vigil_retention_partitions_dropped_total",
             "Daily signals partitions dropped by retention.signals (audited).",
             offsetof(struct metrics_retention, partitions_dropped)},
            {"vigil_retention_signal_rows_removed_total",
             "Signal samples removed by retention (a big partition's count is an estimate).",
             offsetof(struct metrics_retention, signal_rows_dropped)},
            {"vigil_retention_signal_bytes_removed_total",
             "Bytes of the signals partitions dropped by retention.",
             offsetof(struct metrics_retention, signal_bytes_dropped)},
            {"vigil_retention_evidence_removed_total",
             "Artifacts whose content retention.evidence removed (audited; rows and links stay).",
             offsetof(struct metrics_retention, evidence_removed)},
            {"vigil_retention_evidence_bytes_removed_total",
             "Bytes of artifact content removed by retention.evidence.",
             offsetof(struct metrics_retention, evidence_bytes_removed)},
            {"vigil_retention_failures_total",
             "Retention steps that failed (a lock not granted in time, the database); retried "
             "at the next pass.",
             offsetof(struct metrics_retention, failures)},
        };
        for (size_t i = 0; i < sizeof(retention_counters) / sizeof(retention_counters[0]); i++) {
            uint64_t v;
            memcpy(&v, (const char *)&metrics.retention + retention_counters[i].offset, sizeof(v));
            put_header(out, retention_counters[i].name, "counter", retention_counters[i].help);
            fprintf(out, "%s %" PRIu64 "\n", retention_counters[i].name, v);
        }
        put_header(out, "vigil_retention_signals_default_rows", "gauge",
                   "Signal samples in the default partition after the last pass: days too far "
                   "ahead to have a partition yet (an agent's clock).");
        fprintf(out, "vigil_retention_signals_default_rows %" PRIu64 "\n",
                metrics.retention.default_rows);
        put_header(out, "vigil_retention_last_success_timestamp_seconds", "gauge",
                   "When the last retention pass without a failure ended (0 = none yet).");
        fprintf(out, "vigil_retention_last_success_timestamp_seconds %.3f\n",
                (double)metrics.retention_ok_ms / 1000.0);
    }
    put_header(out, "vigil_evidence_rejected_total", "counter",
               "Evidence chunks or artifacts refused and never stored, by reason.");
    put_labelled(out, "vigil_evidence_rejected_total", "reason", &metrics.evidence_rejected);
    put_header(
        out, "vigil_evidence_failed_total", "counter",
        "Collection targets that failed (the agent refused or erred, or timed out), by kind.");
    put_labelled(out, "vigil_evidence_failed_total", "kind", &metrics.evidence_failed);
}

static void render_alerts_locked(FILE *out)
{
    put_header(out, "vigil_alerts_received_total", "counter",
               "Alerts from Alertmanager's webhook stored as signals, by status.");
    put_labelled(out, "vigil_alerts_received_total", "status", &metrics.alerts_received);
    put_header(out, "vigil_alerts_refused_total", "counter",
               "Alertmanager webhook requests or single alerts refused, by reason.");
    put_labelled(out, "vigil_alerts_refused_total", "reason", &metrics.alerts_refused);
}

static void render_correlate_locked(FILE *out)
{
    put_header(out, "vigil_runbooks_loaded", "gauge", "Runbooks in the set in force.");
    fprintf(out, "vigil_runbooks_loaded %" PRIu64 "\n", metrics.runbooks_loaded);
    put_header(out, "vigil_rule_samples_total", "counter",
               "Samples the rule engine was given (every stored sample).");
    fprintf(out, "vigil_rule_samples_total %" PRIu64 "\n", metrics.rules.samples);
    put_header(out, "vigil_rule_samples_matched_total", "counter",
               "Samples a runbook condition reads.");
    fprintf(out, "vigil_rule_samples_matched_total %" PRIu64 "\n", metrics.rules.samples_matched);
    put_header(out, "vigil_rule_evaluations_total", "counter",
               "Condition evaluations (symptoms and verify entries, four times a second).");
    fprintf(out, "vigil_rule_evaluations_total %" PRIu64 "\n", metrics.rules.evaluations);
    put_header(out, "vigil_rule_evaluation_seconds_total", "counter",
               "Time the main loop spent evaluating conditions.");
    fprintf(out, "vigil_rule_evaluation_seconds_total %.6f\n",
            (double)metrics.rules.evaluate_ns / 1e9);
    put_header(out, "vigil_rule_series", "gauge", "Series the rule engine keeps.");
    fprintf(out, "vigil_rule_series %" PRIu64 "\n", metrics.rules.series);
    put_header(out, "vigil_rule_series_dropped_total", "counter",
               "New series refused by the engine's series limit.");
    fprintf(out, "vigil_rule_series_dropped_total %" PRIu64 "\n", metrics.rules.series_dropped);
    put_header(out, "vigil_runbook_reload_failures_total", "counter",
               "Runbook reloads (SIGHUP) refused; the last good set stayed in force.");
    fprintf(out, "vigil_runbook_reload_failures_total %" PRIu64 "\n",
            metrics.runbook_reload_failures);
    put_header(out, "vigil_symptom_events_total", "counter",
               "Symptom state transitions reported by the rule engine, by new state.");
    put_labelled(out, "vigil_symptom_events_total", "state", &metrics.symptom_events);
}

static void render_promql_locked(FILE *out)
{
    put_header(out, "vigil_promql_queries_total", "counter",
               "PromQL symptom queries Prometheus answered with one number or no data.");
    fprintf(out, "vigil_promql_queries_total %" PRIu64 "\n", metrics.promql_queries);
    put_header(out, "vigil_promql_errors_total", "counter",
               "PromQL symptom queries that gave no number, by reason.");
    put_labelled(out, "vigil_promql_errors_total", "reason", &metrics.promql_errors);
}

static void render_notify_locked(FILE *out)
{
    put_header(out, "vigil_notifications_total", "counter",
               "Notification attempts by channel and outcome (sent, retry, failed).");
    for (size_t c = 0; c < NOTIFY_CHANNELS; c++)
        for (size_t o = 0; o < NOTIFY_OUTCOMES; o++)
            fprintf(out, "vigil_notifications_total{channel=\"%s\",outcome=\"%s\"} %" PRIu64 "\n",
                    notify_channels[c], notify_outcomes[o], metrics.notifications[c][o]);
    put_header(out, "vigil_notifications_queued", "gauge",
               "Notifications waiting to be sent or in flight (pending or sending).");
    fprintf(out, "vigil_notifications_queued %" PRIu64 "\n", metrics.notifications_queued);
}

int metrics_render(char **ret, size_t *ret_len)
{
    char *text = NULL;
    size_t len = 0;

    FILE *out = open_memstream(&text, &len);
    if (out == NULL)
        return -ENOMEM;

    pthread_mutex_lock(&metrics.lock);
    render_locked(out);
    render_evidence_locked(out);
    render_alerts_locked(out);
    render_correlate_locked(out);
    render_promql_locked(out);
    render_notify_locked(out);
    pthread_mutex_unlock(&metrics.lock);

    bool failed = ferror(out) != 0;
    if (fclose(out) != 0)
        failed = true;
    if (failed) {
        free(text);
        return -ENOMEM;
    }
    *ret = text;
    *ret_len = len;
    return 0;
}
