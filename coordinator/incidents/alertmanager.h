/*
 * The Alertmanager webhook (POST /api/v1/alerts, payload version 4): each alert becomes the
 * signal "alert.<alertname>" of the source "alertmanager", value 1 while firing and 0 once
 * resolved, keyed by its fingerprint (a label, so every alert is its own series).
 *
 * Node rule: the alert's "node" label, else its "instance" label verbatim, else "".
 * State: firing = the "severity" label when it is "warning" (SIGNAL_STATE_WARNING), else
 * critical; resolved = ok. Time: startsAt (firing) / endsAt (resolved), else now.
 *
 * Parsing is separate from the request (alertmanager_parse) so it is testable without a server.
 * alertmanager_handle runs on the HTTP thread and writes through the webhook's own store
 * connection (store_alerts_t): a libpq connection is never shared between threads. What it
 * stored waits in a small locked queue for the main thread, whose rule engine takes it with
 * alertmanager_drain (so runbooks can use alert.<alertname> like any agent signal).
 */
#ifndef COORD_ALERTMANAGER_H
#define COORD_ALERTMANAGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define ALERTMANAGER_SOURCE "alertmanager" /* agent_id of the signals it stores */
#define ALERTMANAGER_FINGERPRINT_MAX 64

/* Why a request or an alert was refused: the "reason" label of vigil_alerts_refused_total. */
enum am_refusal {
    AM_REFUSE_NONE = 0,
    AM_REFUSE_UNAUTHORIZED, /* missing or wrong bearer token (401) */
    AM_REFUSE_METHOD,       /* not POST (405) */
    AM_REFUSE_TOO_LARGE,    /* body over alertmanager.max_body (413) */
    AM_REFUSE_MALFORMED,    /* not JSON, wrong types, no alerts array (400) */
    AM_REFUSE_VERSION,      /* version other than "4" (400) */
    AM_REFUSE_NO_ALERTNAME, /* one alert without an alertname label: skipped */
    AM_REFUSE_INVALID,      /* one alert out of bounds (labels, lengths, status, fingerprint) */
    AM_REFUSE_STORE,        /* the store could not commit (503: Alertmanager retries) */
    AM_REFUSE__COUNT
};
const char *am_refusal_name(enum am_refusal reason);

/* One alert as it will be stored. */
struct am_alert {
    char name[VG_MAX_NAME_LEN + 1]; /* "alert.<alertname>", sanitized */
    char fingerprint[ALERTMANAGER_FINGERPRINT_MAX + 1];
    char node[VG_MAX_NAME_LEN + 1];
    bool firing;
    int state;          /* Vigil__SignalState */
    int64_t payload_ms; /* startsAt/endsAt from the payload, 0 when absent: part of the key */
    int64_t ts_ms;      /* payload_ms, or the time of receipt */
    char *labels_json;  /* malloc'd JSON object: the alert's labels plus "fingerprint" */
};

struct am_batch {
    struct am_alert *alerts;
    size_t n;
    size_t refused[AM_REFUSE__COUNT]; /* alerts skipped, by reason */
    char first_refusal[320];          /* the first skipped alert's reason, for the log */
};
void am_batch_clear(struct am_batch *batch);

/*
 * Parses and validates a payload. now_ms stands in for absent times. Returns 0 (alerts that
 * are out of bounds are skipped and counted in ret->refused), or -EINVAL with *ret_refusal
 * (MALFORMED or VERSION) and a one-line reason; ret is then empty.
 */
int alertmanager_parse(const char *body, size_t len, int64_t now_ms, struct am_batch *ret,
                       enum am_refusal *ret_refusal, char *reason, size_t reasonlen);

/* Parses an RFC 3339 time ("2026-11-29T18:00:00.123Z", "+01:00" offsets). false if invalid. */
bool alertmanager_parse_time(const char *text, int64_t *ret_ms);

/* ---- the webhook ---- */

typedef struct alertmanager alertmanager_t;

struct alertmanager_config {
    const char *token_file;     /* file holding the bearer token (mode 0600) */
    size_t max_body;            /* bytes */
    const char *store_conninfo; /* libpq connection string of the coordinator's database */
};

/* Reads the token. NULL on failure with err set. */
alertmanager_t *alertmanager_new(const struct alertmanager_config *cfg, char *err, size_t errlen);
void alertmanager_destroy(alertmanager_t **self_p);

size_t alertmanager_max_body(const alertmanager_t *self);

/* True when authorization (the header's value, may be NULL) is "Bearer <token>". */
bool alertmanager_authorized(const alertmanager_t *self, const char *authorization);

/*
 * Handles one authorized, complete body: parses, stores durably, counts. Returns the HTTP
 * status (200, 400, 503) with a one-line text in reply.
 */
unsigned alertmanager_handle(alertmanager_t *self, const char *body, size_t len, char *reply,
                             size_t replylen);

/* Counts and logs a refusal decided by the HTTP layer (401, 405, 413). */
void alertmanager_refused(enum am_refusal reason, const char *detail);

/*
 * The alerts stored since the last call, each once, in the order received: fn(node, name,
 * value, ts_ms) for the rule engine (correlate_observe_value), as stored agent signals reach it.
 * Main thread; the HTTP thread fills the queue after each commit. NULL self: nothing.
 */
typedef void (*alertmanager_sample_fn)(void *userdata, const char *node, const char *name,
                                       double value, int64_t ts_ms);
void alertmanager_drain(alertmanager_t *self, alertmanager_sample_fn fn, void *userdata);

#endif
