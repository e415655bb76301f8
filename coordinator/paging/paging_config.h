/*
 * The people side of paging: contacts and their channels, weekly on-call schedules, escalation
 * policies and severity routing (issue 5), as configured under `paging:` in coordinator.yaml
 * or in the file `paging.file` names (the same keys at its top level).
 *
 * The keys are declared once, in PAGING_CONFIG_KEYS: coord_config.c puts them under
 * "paging." in coordinator.yaml's table, paging_config.c at the top level of a separate file.
 * Loading is the table loader's job (types, bounds, unknown keys); paging_config_finish then
 * checks what a table cannot: names, channels, time zones, that every target names a contact
 * or schedule that exists, and that every policy level reaches somebody through a channel
 * that works. Its messages carry "file:line:col:" like the loader's.
 *
 * Paging is off when nothing of it is configured (no contacts, schedules, policies, routing
 * targets): then no check that needs people applies and paging_enabled() is false.
 *
 * Built-in policies: when no policy named "default" is configured, "default" is the source
 * document's escalation timeline:
 *     0m   schedule:primary
 *     15m  schedule:secondary
 *     30m  contact:manager
 *     60m  contact:cto, contact:stakeholders
 * and when none named "security" is configured (the shipped security runbook's policy),
 * "security" is the same with contact:security paged at 0m beside the primary on-call.
 * A built-in policy is checked only where it is used (routing, a runbook): then the schedules
 * and contacts it names must be configured, or the check says which one is missing.
 *
 * Everything here is immutable once loaded; read it from any thread.
 */
#ifndef COORD_PAGING_CONFIG_H
#define COORD_PAGING_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "model.h"

#define PAGING_NAME_MAX 64  /* contact, schedule and policy names: [A-Za-z0-9][A-Za-z0-9_.-]* */
#define PAGING_SEVERITIES 4 /* SEV1 .. SEV4 */
#define PAGING_ZONEINFO_DIR "/usr/share/zoneinfo"
#define PAGING_POLICY_DEFAULT "default"
#define PAGING_POLICY_SECURITY "security"
/* What a drill without --live pages: drills.audience at once (or a policy of this name). */
#define PAGING_POLICY_DRILL "drill"

struct paging_contact {
    char *name;
    char *slack;     /* Slack-compatible incoming webhook URL; "" = none */
    char *email;     /* address; "" = none (needs paging.smtp.url) */
    char *webhook;   /* generic JSON webhook URL; "" = none */
    char *pagerduty; /* PagerDuty Events API v2 routing key; "" = none */
    char *phone;     /* E.164 number ("+4915112345678") for SMS (needs paging.sms); "" = none */
};

/* Working hours (issue "the people side 2 of 2"): a page that falls due outside them is held
 * until the next window opens (hours.h). Weekdays, a local time span and holiday dates, in an
 * IANA time zone. */
struct paging_hours {
    char *name;
    char *timezone;             /* IANA name; default UTC */
    struct vg_cfg_strings days; /* "Mon".."Sun" (or full names); default Mon..Fri */
    char *start, *end; /* "09:00", "17:00": local times, start < end ("24:00" = midnight) */
    struct vg_cfg_strings holidays; /* "YYYY-MM-DD" local dates without a window */
    /* Parsed by paging_config_finish. */
    unsigned day_mask;            /* bit 0 = Sunday .. bit 6 = Saturday */
    int start_minute, end_minute; /* minutes after local midnight, start < end <= 1440 */
};

/* A weekly rotation: users[k mod n] is on call from the k-th handover after start. */
struct paging_schedule {
    char *name;
    char *timezone; /* IANA name, e.g. "Europe/Berlin" */
    char *handover; /* "Mon 09:00": weekday and local time of the weekly handover */
    char *start;    /* "YYYY-MM-DD", a handover weekday: users[0]'s first shift begins then */
    struct vg_cfg_strings users; /* contact names, in rotation order */
    char *hours; /* a paging.business_hours name: pages to this schedule wait for it; "" = any
                    time (a policy level's own hours win) */
    /* Parsed from the text above by paging_schedule_prepare (paging_config_finish calls it). */
    int handover_wday; /* 0 = Sunday .. 6 = Saturday */
    int handover_hour, handover_minute;
    int start_year, start_month, start_day; /* month 1..12 */
};

/* One escalation level: its targets are paged delay_ms after the incident opened. */
struct paging_level {
    int64_t delay_ms;
    struct vg_cfg_strings targets; /* "schedule:NAME" (who is on call then) or "contact:NAME" */
    char *hours; /* a paging.business_hours name: the level waits for its window; "" = the
                    hours of the schedules it pages (all the same), else any time */
};

struct paging_policy {
    char *name;
    int64_t repeat;            /* times the whole policy runs again after the last level */
    struct vg_cfg_list levels; /* struct paging_level, delays increasing */
    bool builtin;              /* "default" or "security" as documented above */
};

/* What one severity does: its policy, and who else hears of it (audiences). */
struct paging_route {
    char *policy;               /* policy name; default "default" */
    struct vg_cfg_strings also; /* extra targets told of the incident (no escalation) */
};

struct paging_config {
    char *file; /* paging.file in coordinator.yaml: the keys below come from that file */
    struct vg_cfg_list contacts;  /* struct paging_contact */
    struct vg_cfg_list schedules; /* struct paging_schedule */
    struct vg_cfg_list policies;  /* struct paging_policy; built-ins appended by finish */
    struct paging_route routes[PAGING_SEVERITIES]; /* [0] = SEV1 */
    struct vg_cfg_strings announce; /* told of every incident: opened, updates, resolved */
    int64_t status_update_interval_ms;
    int64_t report_due_ms; /* post-incident report due this long after the resolution */
    int64_t notify_attempts;
    int64_t notify_backoff_ms;
    int64_t notify_max_backoff_ms;
    int64_t notify_timeout_ms;
    char *smtp_url;  /* smtp:// or smtps://host[:port]; "" = no e-mail */
    char *smtp_from; /* envelope and From: address */
    char *pagerduty_url;
    char *webhook_secret_file; /* HMAC key of the generic webhook's signature; "" = unsigned */
    /* A storm is one page (escalate.h, "Grouping"). */
    int64_t grouping_wait_ms;     /* a per-node incident's first page waits for its runbook's
                                     other nodes this long; 0 = no grouping */
    int64_t grouping_interval_ms; /* nodes joining a paged group are told at most this often */
    int64_t max_pages_per_minute; /* per person; pages past it wait for a summary; 0 = no cap */
    struct vg_cfg_strings drills_audience;  /* who a drill pages unless live (the policy "drill") */
    struct vg_cfg_list business_hours;      /* struct paging_hours */
    struct vg_cfg_strings hours_severities; /* "SEV1".."SEV4" business hours may hold; empty =
                                               SEV3 and SEV4 (paging_hours_apply) */
    /* SMS through a Twilio-compatible Messages API (notify.h); account_sid "" = no SMS. */
    char *sms_url; /* base URL, default https://api.twilio.com */
    char *sms_account_sid;
    char *sms_auth_token_file; /* mode 0600 */
    char *sms_from;            /* E.164 sender number */
    /* Tickets in an issue tracker (notify.h); kind "" = none. */
    char *tickets_kind;                       /* "github" or "jira" */
    struct vg_cfg_strings tickets_severities; /* empty = SEV4 (paging_ticket_wanted) */
    char *tickets_api_url;                    /* GitHub: REST API root, default api.github.com */
    char *tickets_owner, *tickets_repo;       /* GitHub */
    struct vg_cfg_strings tickets_labels;     /* GitHub */
    char *tickets_base_url;                   /* Jira: the site, https://example.atlassian.net */
    char *tickets_user;                       /* Jira: the account the token belongs to */
    char *tickets_project;                    /* Jira: project key, e.g. OPS */
    char *tickets_issue_type;                 /* Jira: default "Bug" */
    char *tickets_token_file;                 /* GitHub token / Jira API token, mode 0600 */
    /* Where the keys came from, for messages (set by paging_config_finish). */
    char *source;      /* the YAML file */
    char *yaml_prefix; /* "paging" when inline in coordinator.yaml, "" in a file of its own */
    bool enabled;
};

/*
 * The key table rows, for a table whose target struct is `owner` with the paging config at
 * member path `member` (written with its trailing dot, or empty): `prefix` is "paging." or "".
 */
extern const struct vg_cfg_key paging_contact_keys[];
extern const size_t paging_contact_nkeys;
extern const struct vg_cfg_key paging_schedule_keys[];
extern const size_t paging_schedule_nkeys;
extern const struct vg_cfg_key paging_policy_keys[];
extern const size_t paging_policy_nkeys;
extern const struct vg_cfg_key paging_hours_keys[];
extern const size_t paging_hours_nkeys;

#define PAGING_KEY_(p_, t_, owner_, f_, min_, max_, def_, help_)                                   \
    {                                                                                              \
        .path = (p_), .type = (t_), .offset = offsetof(owner_, f_), .min = (min_), .max = (max_),  \
        .def = (def_), .help = (help_)                                                             \
    }
#define PAGING_LIST_(p_, owner_, f_, sub_, nsub_, elem_, max_, help_)                              \
    {                                                                                              \
        .path = (p_), .type = VG_CFG_LIST, .offset = offsetof(owner_, f_), .max = (max_),          \
        .help = (help_), .sub = (sub_), .nsub_ref = &(nsub_), .elem_size = sizeof(elem_)           \
    }
#define PAGING_ROUTE_KEYS_(prefix, owner, member, i, sev)                                          \
    PAGING_KEY_(prefix "routing." sev ".policy", VG_CFG_STRING, owner, member routes[i].policy, 0, \
                PAGING_NAME_MAX, PAGING_POLICY_DEFAULT, "escalation policy of " sev " incidents"), \
        PAGING_KEY_(prefix "routing." sev ".also", VG_CFG_STRINGS, owner, member routes[i].also,   \
                    0, 32, NULL, "extra audiences told of " sev " incidents")

#define PAGING_HOUR_MS (3600LL * 1000)
#define PAGING_CONFIG_KEYS(prefix, owner, member)                                                  \
    PAGING_LIST_(prefix "contacts", owner, member contacts, paging_contact_keys,                   \
                 paging_contact_nkeys, struct paging_contact, 1000,                                \
                 "people and addresses pages go to"),                                              \
        PAGING_LIST_(prefix "schedules", owner, member schedules, paging_schedule_keys,            \
                     paging_schedule_nkeys, struct paging_schedule, 100, "weekly rotations"),      \
        PAGING_LIST_(prefix "policies", owner, member policies, paging_policy_keys,                \
                     paging_policy_nkeys, struct paging_policy, 100, "escalation policies"),       \
        PAGING_ROUTE_KEYS_(prefix, owner, member, 0, "SEV1"),                                      \
        PAGING_ROUTE_KEYS_(prefix, owner, member, 1, "SEV2"),                                      \
        PAGING_ROUTE_KEYS_(prefix, owner, member, 2, "SEV3"),                                      \
        PAGING_ROUTE_KEYS_(prefix, owner, member, 3, "SEV4"),                                      \
        PAGING_KEY_(prefix "announce", VG_CFG_STRINGS, owner, member announce, 0, 32, NULL,        \
                    "targets told of every incident (the alerts channel)"),                        \
        PAGING_KEY_(prefix "status_update_interval", VG_CFG_DURATION_MS, owner,                    \
                    member status_update_interval_ms, 1000, 24 * PAGING_HOUR_MS, "30m",            \
                    "status updates while an incident is open"),                                   \
        PAGING_KEY_(prefix "report_due", VG_CFG_DURATION_MS, owner, member report_due_ms, 1000,    \
                    30 * 24 * PAGING_HOUR_MS, "24h",                                               \
                    "post-incident report due after the resolution"),                              \
        PAGING_KEY_(prefix "notify.attempts", VG_CFG_INT, owner, member notify_attempts, 1, 100,   \
                    "5", "delivery attempts per notification"),                                    \
        PAGING_KEY_(prefix "notify.backoff", VG_CFG_DURATION_MS, owner, member notify_backoff_ms,  \
                    100, PAGING_HOUR_MS, "10s", "wait before the first retry (doubles)"),          \
        PAGING_KEY_(prefix "notify.max_backoff", VG_CFG_DURATION_MS, owner,                        \
                    member notify_max_backoff_ms, 100, 24 * PAGING_HOUR_MS, "5m",                  \
                    "longest wait between retries"),                                               \
        PAGING_KEY_(prefix "notify.timeout", VG_CFG_DURATION_MS, owner, member notify_timeout_ms,  \
                    100, 10 * 60 * 1000LL, "10s", "one delivery attempt, connection included"),    \
        PAGING_KEY_(prefix "smtp.url", VG_CFG_STRING, owner, member smtp_url, 0, 1024, "",         \
                    "smtp:// or smtps:// mail server; empty = no e-mail"),                         \
        PAGING_KEY_(prefix "smtp.from", VG_CFG_STRING, owner, member smtp_from, 0, 254, "",        \
                    "sender address of e-mails"),                                                  \
        PAGING_KEY_(prefix "pagerduty_url", VG_CFG_STRING, owner, member pagerduty_url, 0, 1024,   \
                    "https://events.pagerduty.com/v2/enqueue", "PagerDuty Events API v2"),         \
        PAGING_KEY_(prefix "webhook_secret_file", VG_CFG_STRING, owner,                            \
                    member webhook_secret_file, 0, 0, "",                                          \
                    "HMAC-SHA256 key of generic webhooks (mode 0600); empty = unsigned"),          \
        PAGING_KEY_(prefix "grouping.wait", VG_CFG_DURATION_MS, owner, member grouping_wait_ms, 0, \
                    PAGING_HOUR_MS, "30s",                                                         \
                    "per-node incidents of one runbook opened within this page once; 0 = off"),    \
        PAGING_KEY_(prefix "grouping.interval", VG_CFG_DURATION_MS, owner,                         \
                    member grouping_interval_ms, 1000, 24 * PAGING_HOUR_MS, "5m",                  \
                    "nodes joining a paged group are told at most this often"),                    \
        PAGING_KEY_(prefix "max_pages_per_minute", VG_CFG_INT, owner, member max_pages_per_minute, \
                    0, 10000, "10",                                                                \
                    "pages per person per minute; the rest in one summary; 0 = no cap"),           \
        PAGING_KEY_(prefix "drills.audience", VG_CFG_STRINGS, owner, member drills_audience, 0,    \
                    32, NULL, "who `vigilctl drill` pages (without --live); empty = nobody"),      \
        PAGING_LIST_(prefix "business_hours", owner, member business_hours, paging_hours_keys,     \
                     paging_hours_nkeys, struct paging_hours, 32,                                  \
                     "working-hours windows policy levels and schedules may name (hours:)"),       \
        PAGING_KEY_(prefix "hours_severities", VG_CFG_STRINGS, owner, member hours_severities, 0,  \
                    4, NULL, "severities business hours may hold; empty = SEV3 and SEV4"),         \
        PAGING_KEY_(prefix "sms.url", VG_CFG_STRING, owner, member sms_url, 0, 1024,               \
                    "https://api.twilio.com", "Twilio-compatible API root"),                       \
        PAGING_KEY_(prefix "sms.account_sid", VG_CFG_STRING, owner, member sms_account_sid, 0, 64, \
                    "", "account SID; empty = no SMS"),                                            \
        PAGING_KEY_(prefix "sms.auth_token_file", VG_CFG_STRING, owner,                            \
                    member sms_auth_token_file, 0, 0, "", "the account's auth token (mode 0600)"), \
        PAGING_KEY_(prefix "sms.from", VG_CFG_STRING, owner, member sms_from, 0, 16, "",           \
                    "sender number, E.164"),                                                       \
        PAGING_KEY_(prefix "tickets.kind", VG_CFG_STRING, owner, member tickets_kind, 0, 16, "",   \
                    "github or jira; empty = no tickets"),                                         \
        PAGING_KEY_(prefix "tickets.severities", VG_CFG_STRINGS, owner, member tickets_severities, \
                    0, 4, NULL, "severities that file a ticket; empty = SEV4"),                    \
        PAGING_KEY_(prefix "tickets.api_url", VG_CFG_STRING, owner, member tickets_api_url, 0,     \
                    1024, "https://api.github.com", "GitHub REST API root"),                       \
        PAGING_KEY_(prefix "tickets.owner", VG_CFG_STRING, owner, member tickets_owner, 0, 100,    \
                    "", "GitHub: the repository's owner"),                                         \
        PAGING_KEY_(prefix "tickets.repo", VG_CFG_STRING, owner, member tickets_repo, 0, 100, "",  \
                    "GitHub: the repository"),                                                     \
        PAGING_KEY_(prefix "tickets.labels", VG_CFG_STRINGS, owner, member tickets_labels, 0, 20,  \
                    NULL, "GitHub: labels of the issue"),                                          \
        PAGING_KEY_(prefix "tickets.base_url", VG_CFG_STRING, owner, member tickets_base_url, 0,   \
                    1024, "", "Jira: the site's URL"),                                             \
        PAGING_KEY_(prefix "tickets.user", VG_CFG_STRING, owner, member tickets_user, 0, 254, "",  \
                    "Jira: the account of the API token"),                                         \
        PAGING_KEY_(prefix "tickets.project", VG_CFG_STRING, owner, member tickets_project, 0, 64, \
                    "", "Jira: project key"),                                                      \
        PAGING_KEY_(prefix "tickets.issue_type", VG_CFG_STRING, owner, member tickets_issue_type,  \
                    0, 64, "Bug", "Jira: issue type"),                                             \
        PAGING_KEY_(prefix "tickets.token_file", VG_CFG_STRING, owner, member tickets_token_file,  \
                    0, 0, "", "GitHub token or Jira API token (mode 0600)")

/* The table of a paging file of its own (top-level keys). */
extern const struct vg_cfg_key paging_config_keys[];
extern const size_t paging_config_nkeys;

/*
 * Checks a loaded paging config and completes it (built-in policies, parsed schedules).
 * source is the YAML file it was read from and yaml_prefix "paging" when the keys sit under
 * `paging:` there, "" when at the top level (both copied for messages). 0, or -EINVAL with
 * "file:line:col: message" in err.
 */
int paging_config_finish(struct paging_config *cfg, const char *source, const char *yaml_prefix,
                         char *err, size_t errlen);

/* Loads a file of its own (paging.file) and finishes it. 0 or negative errno with err. */
int paging_config_load(const char *path, struct paging_config *cfg, char *err, size_t errlen);

/* True when every key of the table still has its default (coord_config: nothing may be set
 * under paging: beside paging.file). */
bool paging_config_is_default(const struct paging_config *cfg);

/* Frees everything; cfg is zeroed (safe to call twice, and on a half-loaded config). */
void paging_config_free(struct paging_config *cfg);

/* True when a paging key that names people is set (see above). */
bool paging_enabled(const struct paging_config *cfg);

struct rb_set;
/*
 * For the coordinator after it loaded the runbooks (at start, with -n, and on SIGHUP): every
 * runbook's `policy:` ("" = "default") must name a configured or built-in policy, and a
 * built-in one must find its schedules and contacts. Does nothing when paging is off.
 * 0, or -EINVAL with "runbook-file:line:col: message" in err.
 */
int paging_check_runbooks(const struct paging_config *cfg, const struct rb_set *set, char *err,
                          size_t errlen);

/* ---- reading it ---- */

const struct paging_contact *paging_contact_find(const struct paging_config *cfg, const char *name);
const struct paging_schedule *paging_schedule_find(const struct paging_config *cfg,
                                                   const char *name);
/* A configured policy, else the built-in of that name; NULL when neither. */
const struct paging_policy *paging_policy_find(const struct paging_config *cfg, const char *name);
/* Level i of policy (NULL past the last). */
const struct paging_level *paging_policy_level(const struct paging_policy *policy, size_t i);
/* The route of severity 1..4; NULL outside. */
const struct paging_route *paging_route_for(const struct paging_config *cfg, int severity);

enum paging_target_kind { PAGING_TARGET_CONTACT, PAGING_TARGET_SCHEDULE };
struct paging_target {
    enum paging_target_kind kind;
    const struct paging_contact *contact;   /* PAGING_TARGET_CONTACT */
    const struct paging_schedule *schedule; /* PAGING_TARGET_SCHEDULE */
};
/* "contact:NAME" or "schedule:NAME". 0, -EINVAL (neither form) or -ENOENT (no such name). */
int paging_target_resolve(const struct paging_config *cfg, const char *text,
                          struct paging_target *ret);

/* The channels (enum paging_channel, PAGING_CHANNELS, their names) are in model.h. */
/* The contact's address on ch (URL, e-mail address, routing key, phone); "" when it has none
 * (always on the ticket channel: tickets go to the tracker, not to a person). */
const char *paging_contact_address(const struct paging_contact *c, enum paging_channel ch);
/* The contact has an address on ch and the coordinator can deliver there (e-mail needs
 * smtp.url, SMS sms.account_sid). */
bool paging_channel_usable(const struct paging_config *cfg, const struct paging_contact *c,
                           enum paging_channel ch);

/* The business hours of that name; NULL when none. */
const struct paging_hours *paging_hours_find(const struct paging_config *cfg, const char *name);
/* The window a level waits for: its own hours, else those of the schedules it pages; NULL =
 * any time. */
const struct paging_hours *paging_level_hours(const struct paging_config *cfg,
                                              const struct paging_level *lv);
/* Business hours may hold pages of incidents of this severity (1..4): hours_severities, by
 * default SEV3 and SEV4. */
bool paging_hours_apply(const struct paging_config *cfg, int severity);
/* Incidents of this severity file a ticket: tickets.kind is set and tickets.severities (by
 * default SEV4) names it. */
bool paging_ticket_wanted(const struct paging_config *cfg, int severity);
/* A phone number in E.164: '+', then 2 to 15 digits, the first not 0. */
bool paging_phone_valid(const char *phone);
/* The target name a ticket row is stored under (it has no contact). */
#define PAGING_TICKET_TARGET "tickets"

/* Parses s->handover and s->start into the fields below them and checks s->timezone exists.
 * 0, or -EINVAL with a message (no position) in err. */
int paging_schedule_prepare(struct paging_schedule *s, char *err, size_t errlen);

/* An IANA zone name that exists under PAGING_ZONEINFO_DIR (no "..", no leading '/'). */
bool paging_timezone_valid(const char *name);

#endif
