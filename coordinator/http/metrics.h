/*
 * The coordinator's metrics, rendered in Prometheus text format by http.c.
 *
 * Counters are updated from the main loop and read by the HTTP thread, so every update and
 * the render take one mutex; per-agent gauges are replaced wholesale by the main loop once per
 * liveness tick (metrics_set_agents), never mutated field by field.
 */
#ifndef COORD_METRICS_H
#define COORD_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Why a message or handshake was refused: the "reason" label of vigil_messages_refused_total. */
enum refuse_reason {
    REFUSE_MALFORMED = 0,  /* frame structure or protobuf decoding failed */
    REFUSE_VERSION,        /* unsupported protocol version */
    REFUSE_UNKNOWN_TYPE,   /* envelope body not set / unknown message type */
    REFUSE_OVERSIZED,      /* over the size limit */
    REFUSE_LIMITS,         /* decoded, but a field is out of bounds (too many signals, ...) */
    REFUSE_SENDER,         /* sender id does not match the authenticated key */
    REFUSE_NOT_ENROLLED,   /* key not active: only enrollment is allowed */
    REFUSE_REVOKED,        /* key revoked (handshake or message) */
    REFUSE_UNKNOWN_KEY,    /* ZAP: key not known on a socket that requires it */
    REFUSE_BAD_TOKEN,      /* enrollment token present but wrong */
    REFUSE_RATE_LIMITED,   /* enrollment requests too frequent */
    REFUSE_FORBIDDEN,      /* operator lacks the role */
    REFUSE_STORE,          /* the store could not commit: not acknowledged, agent resends */
    REFUSE_INVALID_RECORD, /* a durable message the store would refuse: refused, discarded */
    REFUSE_KEY_MISMATCH,   /* the key's agent id belongs to another key (64-bit id collision) */
    REFUSE__COUNT
};
const char *refuse_reason_name(enum refuse_reason reason);

struct metrics_agent {
    char id[32];
    char node[64];
    uint64_t spool_depth;
    uint64_t dropped_messages;
};

/* Initialises the global metrics state. Call once before threads start. */
void metrics_init(void);
void metrics_fini(void);

void metrics_received(const char *type); /* label "type": enroll, heartbeat, signals, ... */
void metrics_refused(enum refuse_reason reason);
void metrics_rows_stored(uint64_t messages, uint64_t signals);
/* vigil_series_limit_dropped_samples_total: samples of series past an agent's bound. */
void metrics_series_limited(uint64_t samples);
/* vigil_agent_requests_resent_total: unanswered requests sent again on a new connection. */
void metrics_requests_resent(uint64_t n);
void metrics_store_batch(double seconds); /* histogram vigil_store_batch_seconds */
void metrics_store_up(int up);            /* 1 reachable, 0 not: drives /healthz */
int metrics_store_is_up(void);
void metrics_store_outages(uint64_t total); /* vigil_store_outages_total, from store_outages() */
void metrics_embedded_pg_restarted(void);   /* vigil_embedded_pg_restarts_total */
void metrics_watchdog_call(const char *result); /* vigil_watchdog_calls_total{ok|failed|skipped} */
/* vigil_checkpoint_webhook_total{sent|failed}: one checkpoint POSTed (checkpoint_hook.h). */
void metrics_checkpoint_post(bool sent);
/* Replaces the per-agent gauges and the count of agents by state. */
void metrics_set_agents(const struct metrics_agent *agents, size_t n, const uint64_t by_state[5]);

/*
 * Evidence on demand. Labels are bounded: kinds are the known evidence kinds, reasons the
 * store's and the coordinator's fixed reason names; anything past LABEL_SLOTS distinct values
 * is counted under "other".
 */
void metrics_evidence_requested(const char *kind);         /* vigil_evidence_requests_total{kind} */
void metrics_evidence_request_refused(const char *reason); /* ..._requests_refused_total{reason} */
void metrics_evidence_stored(uint64_t bytes); /* vigil_evidence_stored_total, ..._bytes_total */
void metrics_evidence_rejected(const char *reason); /* vigil_evidence_rejected_total{reason} */
void metrics_evidence_failed(const char *kind);     /* vigil_evidence_failed_total{kind} */
/* vigil_evidence_incomplete_removed_bytes_total: chunks of artifacts that never completed. */
void metrics_evidence_purged(uint64_t bytes);

/* One retention pass (retention.c): counters added, vigil_retention_signals_default_rows set,
 * and vigil_retention_last_success_timestamp_seconds set when pass_ok. */
struct metrics_retention {
    uint64_t partitions_created, partitions_dropped;
    uint64_t signal_rows_dropped, signal_bytes_dropped;
    uint64_t evidence_removed, evidence_bytes_removed;
    uint64_t failures;
    uint64_t default_rows;
    bool pass_ok;
};
void metrics_retention(const struct metrics_retention *pass);

/* Alertmanager webhook: vigil_alerts_received_total{status} (firing, resolved) and
 * vigil_alerts_refused_total{reason} (alertmanager.h's am_refusal names; n alerts or requests). */
void metrics_alerts_received(const char *status);
void metrics_alerts_refused(const char *reason, uint64_t n);

/* Runbooks and the rule engine (correlate.h): vigil_runbooks_loaded (gauge),
 * vigil_runbook_reload_failures_total and vigil_symptom_events_total{state} (ok, warning,
 * critical). */
void metrics_runbooks_loaded(uint64_t n);
/* The rule engine's counters, as of its last evaluation (rules_stats). */
struct metrics_rule_engine {
    uint64_t samples, samples_matched, evaluations, series, series_dropped;
    uint64_t evaluate_ns; /* time spent evaluating */
};
void metrics_rule_engine(const struct metrics_rule_engine *stats);
void metrics_runbook_reload_failed(void);
void metrics_symptom_event(const char *state);

/* The PromQL poller (promql.h), from its own thread: vigil_promql_queries_total (answered with
 * a value or no data) and vigil_promql_errors_total{reason} (promql.h's reason names). */
void metrics_promql_query(void);
void metrics_promql_error(const char *reason);

/* The notifier (notify.h), from its own thread: vigil_notifications_total{channel,outcome}, one
 * per attempt's outcome (channel: slack, webhook, email, pagerduty; outcome: sent, retry,
 * failed; other names are ignored), and vigil_notifications_queued (rows pending or sending). */
void metrics_notification(const char *channel, const char *outcome);
void metrics_notifications_queued(uint64_t n);

/* Renders everything; *ret is malloc'd (caller frees). Returns 0 or -ENOMEM. */
int metrics_render(char **ret, size_t *ret_len);

#endif
