/*
 * The notifier: delivers the rows of the notifications table (007_notifications.sql) that the
 * escalation engine inserts, through Slack-compatible webhooks, generic JSON webhooks, e-mail
 * over SMTP, PagerDuty's Events API v2, SMS through a Twilio-compatible Messages API and tickets
 * in an issue tracker (GitHub Issues, Jira), and records every attempt on the row.
 *
 * A ticket row (channel 'ticket', 025_tickets.sql) is sent to the tracker the configuration
 * names; the 2xx answer's issue link is stored in incident_tickets, with a timeline note
 * {"ticket": URL}, in the statement that marks the row sent. A ticket row of an incident that
 * has a stored link is marked sent without a request: one ticket per incident.
 *
 * Threads: one thread of its own, with its own PostgreSQL connection and one libcurl multi
 * handle; nothing here ever blocks the caller. notify_kick wakes it when rows were inserted;
 * otherwise it looks for due rows every second (and exactly when the next retry is due).
 *
 * A row's life:
 *   pending --claim--> sending --2xx / SMTP 250--> sent (last_code, sent_at)
 *                         |--transient failure--> pending again, next_attempt_at = now + backoff
 *                         '--permanent failure, or the last attempt--> failed (last_code/error)
 * A claim (one statement: FOR UPDATE SKIP LOCKED, status 'sending', attempts + 1) also moves
 * next_attempt_at forward by a lease (timeout + NOTIFY_LEASE_MARGIN_MS): a row left 'sending' by
 * a coordinator that died mid-send becomes due again when its lease runs out and is sent again.
 * Delivery is therefore at least once: a crash between the receiver's answer and the UPDATE
 * that records it repeats the message. PagerDuty folds repeats by dedup_key; webhook receivers
 * can by X-Vigil-Delivery; e-mail repeats carry the same Message-ID.
 *
 * What counts as what (docs/notifications.md says it for operators):
 *   HTTP 2xx                                   sent
 *   HTTP 408, 429 (Retry-After honoured), 5xx  retried
 *   HTTP 3xx (redirects are not followed), other 4xx
 *                                              failed at once: the address or the key is wrong,
 *                                              and retrying it pages nobody, just later
 *   timeout, refused, DNS, reset               retried
 *   SMTP 2xx                                   sent; 4xx retried; 5xx failed at once
 *   a row that cannot be sent as it is (bad URL or mailbox, unknown PagerDuty event, no SMTP
 *   server configured, payload not a JSON object for a webhook)
 *                                              failed at once
 * vigil_notifications_total{channel,outcome} counts sent / retry / failed per attempt outcome;
 * vigil_notifications_queued is the number of rows pending or sending.
 */
#ifndef COORD_NOTIFY_H
#define COORD_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NOTIFY_DEFAULT_PAGERDUTY_URL "https://events.pagerduty.com/v2/enqueue"
#define NOTIFY_DEFAULT_SMTP_FROM "vigil@localhost"
#define NOTIFY_DEFAULT_TIMEOUT_MS 10000
#define NOTIFY_DEFAULT_MAX_ATTEMPTS 5
#define NOTIFY_DEFAULT_BACKOFF_MS 10000
#define NOTIFY_DEFAULT_MAX_BACKOFF_MS (5 * 60 * 1000)
#define NOTIFY_DEFAULT_CONCURRENCY 16
#define NOTIFY_MAX_CONCURRENCY 256
#define NOTIFY_LEASE_MARGIN_MS                                                                     \
    5000                              /* a claimed row is due again timeout + this after its claim \
                                       */
#define NOTIFY_RESPONSE_KEEP 4096     /* bytes of a response body kept; the rest is read, dropped */
#define NOTIFY_SIGNATURE_LEN (7 + 64) /* "sha256=" + hex */
#define NOTIFY_DEFAULT_SMS_URL "https://api.twilio.com"
#define NOTIFY_DEFAULT_GITHUB_URL "https://api.github.com"
#define NOTIFY_SMS_MAX_CHARS 1600       /* Twilio refuses longer bodies */
#define NOTIFY_TICKET_TITLE_MAX 255     /* characters: Jira's summary limit (GitHub: 256) */
#define NOTIFY_ANSWER_MAX (1024 * 1024) /* bytes of an SMS or tracker answer parsed */

/* Zero or NULL fields take the defaults above. Strings are copied by notify_new. */
struct notify_config {
    const char *conninfo;      /* libpq connection string (store_conninfo) */
    const char *smtp_url;      /* smtp://host:port or smtps://; NULL/"" = e-mail rows fail */
    const char *smtp_from;     /* envelope sender and From: address (a bare addr-spec) */
    const char *pagerduty_url; /* Events API v2 endpoint */
    /* Secret for X-Vigil-Signature (mode 0600 or stricter, like every secret file); NULL/"" =
     * webhooks go unsigned. */
    const char *webhook_secret_file;
    int64_t timeout_ms;     /* whole request, connection included */
    int max_attempts;       /* attempts before a row is failed (1 = never retried) */
    int64_t backoff_ms;     /* delay before the 2nd attempt; doubles each time, +-20% jitter */
    int64_t max_backoff_ms; /* cap of that delay */
    int concurrency;        /* sends in flight at once, 1 .. NOTIFY_MAX_CONCURRENCY */
    /* SMS (Twilio-compatible): account_sid NULL/"" = sms rows fail. */
    const char *sms_url; /* API root; POST {sms_url}/2010-04-01/Accounts/{sid}/Messages.json */
    const char *sms_account_sid;
    const char *sms_auth_token_file; /* basic auth account_sid:token */
    const char *sms_from;            /* E.164 sender */
    /* Tickets: kind NULL/"" = ticket rows fail. */
    const char *ticket_kind;    /* "github" or "jira" */
    const char *ticket_api_url; /* GitHub: POST {api_url}/repos/{owner}/{repo}/issues */
    const char *ticket_owner, *ticket_repo;
    const char *const *ticket_labels; /* GitHub */
    size_t ticket_nlabels;
    const char *ticket_base_url; /* Jira: POST {base_url}/rest/api/2/issue */
    const char *ticket_user;     /* Jira: basic auth user:token */
    const char *ticket_project, *ticket_issue_type;
    const char *ticket_token_file; /* GitHub: Authorization: Bearer; Jira: the basic auth token */
};

typedef struct notify notify_t;

/* Checks the config (URLs, sender address, secret file), starts the thread. The database is
 * connected lazily by the thread (and again after a failure), so a database that is down
 * delays notifications, not the start. NULL with err set on failure. */
notify_t *notify_new(const struct notify_config *cfg, char *err, size_t errlen);

/* Stops the thread and returns promptly even with sends in flight: they are abandoned and their
 * rows put back as due now (the receiver may have got them: at least once). Nulls *self_p. */
void notify_destroy(notify_t **self_p);

/* New rows were inserted: look for due rows now. Any thread; cheap; never blocks. */
void notify_kick(notify_t *self);

/* ---- the pure parts, for tests --------------------------------------------------------------
 * Each returns 0 or a negative errno (-EINVAL for input that cannot be sent, -ENOMEM); *ret is
 * malloc'd (the caller frees) and untouched on failure. */

/* Slack-compatible incoming webhook: {"text": "<subject>\n<body>"}, with &, < and > escaped as
 * &amp; &lt; &gt; (Slack's rule), so a node name or title such as "<!channel>" is shown, not
 * acted on. */
int notify_slack_body(const char *subject, const char *body, char **ret);

/* The generic webhook's body: the payload object with "subject" and "body" added (they replace
 * keys of those names). -EINVAL if payload_json is not a JSON object. */
int notify_webhook_body(const char *payload_json, const char *subject, const char *body,
                        char **ret);

/* "sha256=" + lowercase hex HMAC-SHA256 of body under secret, NUL-terminated. */
void notify_webhook_signature(const void *secret, size_t secret_len, const void *body,
                              size_t body_len, char ret[NOTIFY_SIGNATURE_LEN + 1]);

/* PagerDuty severity for Vigil's "SEV1".."SEV4": critical, error, warning, info. Anything else
 * is "critical": a page whose severity cannot be read errs on the loud side. */
const char *notify_pagerduty_severity(const char *sev);

/* PagerDuty Events API v2 event. event is "trigger", "acknowledge" or "resolve" (-EINVAL
 * otherwise); dedup_key is "vigil-incident-<incident_id>". Only a trigger carries "payload":
 * summary (subject, cut at 1024 bytes on a character boundary), source "vigil", severity from
 * payload_json's "severity", custom_details = the payload (omitted if it is not JSON). */
int notify_pagerduty_body(const char *routing_key, const char *event, uint64_t incident_id,
                          const char *subject, const char *payload_json, char **ret);

struct notify_email {
    const char *from;    /* addr-spec */
    const char *to;      /* addr-spec */
    const char *subject; /* any UTF-8; CR/LF become spaces; non-ASCII is RFC 2047 encoded */
    const char *body;    /* UTF-8 plain text; line ends become CRLF, lines over 998 bytes split */
    uint64_t notification_id, incident_id;
    int64_t date_ms; /* Unix ms, for Date: (UTC) */
};
/* A complete RFC 5322 message (CRLF line ends): Date, From, To, Subject, Message-ID
 * <vigil-notification-<id>@<from's domain>> (the same on every attempt), MIME-Version,
 * Content-Type text/plain; charset=utf-8, Content-Transfer-Encoding 8bit, X-Vigil-Incident,
 * a blank line and the body. -EINVAL if from or to is not a plain addr-spec. */
int notify_email_message(const struct notify_email *mail, char **ret);

/* True for a plain addr-spec we are willing to put in MAIL FROM / RCPT TO and a header: one
 * '@' with text on both sides, printable ASCII without spaces, quotes, <>, (), commas or
 * semicolons, at most 254 bytes. */
bool notify_email_address_ok(const char *addr);

/* An SMS's text: "<subject>\n<body>", cut at NOTIFY_SMS_MAX_CHARS characters (not bytes: never
 * inside a UTF-8 sequence). malloc'd, NULL when out of memory. */
char *notify_sms_text(const char *subject, const char *body);

/* The Twilio Messages request's form body: To=<to>&From=<from>&Body=<notify_sms_text>, each
 * value percent-encoded (application/x-www-form-urlencoded; space as %20). -EINVAL if to or from
 * is not E.164. */
int notify_sms_form(const char *to, const char *from, const char *subject, const char *body,
                    char **ret);

/* GitHub's create-an-issue body: {"title": subject cut at NOTIFY_TICKET_TITLE_MAX characters,
 * "body": body, "labels": [labels...]}. */
int notify_github_issue_body(const char *subject, const char *body, const char *const *labels,
                             size_t nlabels, char **ret);

/* Jira's create-issue body (REST API v2): {"fields": {"project": {"key": project}, "summary":
 * subject cut at NOTIFY_TICKET_TITLE_MAX characters, "description": body, "issuetype":
 * {"name": issue_type}}}. */
int notify_jira_issue_body(const char *project, const char *issue_type, const char *subject,
                           const char *body, char **ret);

/* The created issue from the tracker's answer: GitHub's html_url and number; Jira's
 * {base_url}/browse/{key} and key. -EINVAL when the answer names none. */
int notify_ticket_link(const char *kind, const char *base_url, const char *answer, char **ret_url,
                       char **ret_key);

/* Delay before the next attempt after attempt number `attempt` (1 = the first) failed:
 * min(max, base * 2^(attempt-1)) scaled by a factor in [0.8, 1.2) picked by unit in [0, 1),
 * then capped at max again. Never below 1 ms. */
int64_t notify_backoff_ms(int64_t base_ms, int64_t max_ms, int attempt, double unit);

enum notify_verdict {
    NOTIFY_SENT,
    NOTIFY_RETRY,
    NOTIFY_FAILED, /* permanent: not retried */
};
/* What an HTTP status (0 = no answer: transport failure) or an SMTP reply code means. */
enum notify_verdict notify_http_verdict(long status);
enum notify_verdict notify_smtp_verdict(long code);

#endif
