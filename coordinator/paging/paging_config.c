/*
 * Paging configuration: the key tables and the checks the table loader cannot make
 * (see paging_config.h). Cross-reference errors are placed in the file by looking the key's
 * path up in the parsed YAML again — only when there is an error, so a good file is parsed once.
 */
#include "paging_config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libfyaml.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keys.h"
#include "log.h"
#include "runbook.h"
#include "yaml.h"

#define LEVELS_MAX 20
#define USERS_MAX 100
#define TARGETS_MAX 32
#define TIMEZONE_MAX 128
#define MINUTE_MS (60 * 1000LL)
#define DAY_MS (24 * PAGING_HOUR_MS)

#define SUB_KEY(type_, path_, t_, field_, max_, def_, req_, help_)                                 \
    {                                                                                              \
        .path = (path_), .type = (t_), .offset = offsetof(type_, field_), .max = (max_),           \
        .def = (def_), .required = (req_), .help = (help_)                                         \
    }

const struct vg_cfg_key paging_contact_keys[] = {
    SUB_KEY(struct paging_contact, "name", VG_CFG_STRING, name, PAGING_NAME_MAX, NULL, true,
            "the name targets and schedules use"),
    SUB_KEY(struct paging_contact, "slack", VG_CFG_STRING, slack, 1024, "", false,
            "Slack-compatible incoming webhook URL"),
    SUB_KEY(struct paging_contact, "email", VG_CFG_STRING, email, 254, "", false,
            "e-mail address (needs smtp.url)"),
    SUB_KEY(struct paging_contact, "webhook", VG_CFG_STRING, webhook, 1024, "", false,
            "generic JSON webhook URL"),
    SUB_KEY(struct paging_contact, "pagerduty", VG_CFG_STRING, pagerduty, 128, "", false,
            "PagerDuty Events API v2 routing key"),
    SUB_KEY(struct paging_contact, "phone", VG_CFG_STRING, phone, 16, "", false,
            "phone number in E.164 (+4915112345678) for SMS (needs sms.account_sid)"),
};
const size_t paging_contact_nkeys = sizeof(paging_contact_keys) / sizeof(paging_contact_keys[0]);

const struct vg_cfg_key paging_schedule_keys[] = {
    SUB_KEY(struct paging_schedule, "name", VG_CFG_STRING, name, PAGING_NAME_MAX, NULL, true,
            "the name targets use (schedule:NAME)"),
    SUB_KEY(struct paging_schedule, "timezone", VG_CFG_STRING, timezone, TIMEZONE_MAX, "UTC", false,
            "IANA time zone of the handover, e.g. Europe/Berlin"),
    SUB_KEY(struct paging_schedule, "handover", VG_CFG_STRING, handover, 32, "Mon 09:00", false,
            "weekday and local time of the weekly handover"),
    SUB_KEY(struct paging_schedule, "start", VG_CFG_STRING, start, 10, NULL, true,
            "YYYY-MM-DD on the handover weekday: the first user's first shift"),
    SUB_KEY(struct paging_schedule, "users", VG_CFG_STRINGS, users, USERS_MAX, NULL, true,
            "contact names in rotation order"),
    SUB_KEY(struct paging_schedule, "hours", VG_CFG_STRING, hours, PAGING_NAME_MAX, "", false,
            "business hours (a business_hours name) pages to this schedule wait for"),
};
const size_t paging_schedule_nkeys = sizeof(paging_schedule_keys) / sizeof(paging_schedule_keys[0]);

static const struct vg_cfg_key paging_level_keys[] = {
    {.path = "delay",
     .type = VG_CFG_DURATION_MS,
     .offset = offsetof(struct paging_level, delay_ms),
     .min = 0,
     .max = 7 * DAY_MS,
     .def = "0s",
     .help = "how long after the incident opened this level is paged"},
    SUB_KEY(struct paging_level, "targets", VG_CFG_STRINGS, targets, TARGETS_MAX, NULL, false,
            "schedule:NAME or contact:NAME"),
    SUB_KEY(struct paging_level, "hours", VG_CFG_STRING, hours, PAGING_NAME_MAX, "", false,
            "business hours (a business_hours name) this level waits for"),
};

const struct vg_cfg_key paging_hours_keys[] = {
    SUB_KEY(struct paging_hours, "name", VG_CFG_STRING, name, PAGING_NAME_MAX, NULL, true,
            "the name levels and schedules use (hours: NAME)"),
    SUB_KEY(struct paging_hours, "timezone", VG_CFG_STRING, timezone, TIMEZONE_MAX, "UTC", false,
            "IANA time zone of the window, e.g. Europe/Berlin"),
    SUB_KEY(struct paging_hours, "days", VG_CFG_STRINGS, days, 7, NULL, false,
            "weekdays with a window (Mon .. Sun); default Mon to Fri"),
    SUB_KEY(struct paging_hours, "start", VG_CFG_STRING, start, 5, "09:00", false,
            "local time the window opens"),
    SUB_KEY(struct paging_hours, "end", VG_CFG_STRING, end, 5, "17:00", false,
            "local time the window closes (24:00 = midnight)"),
    SUB_KEY(struct paging_hours, "holidays", VG_CFG_STRINGS, holidays, 400, NULL, false,
            "YYYY-MM-DD local dates without a window"),
};
const size_t paging_hours_nkeys = sizeof(paging_hours_keys) / sizeof(paging_hours_keys[0]);

const struct vg_cfg_key paging_policy_keys[] = {
    SUB_KEY(struct paging_policy, "name", VG_CFG_STRING, name, PAGING_NAME_MAX, NULL, true,
            "the name runbooks and routing use"),
    {.path = "repeat",
     .type = VG_CFG_INT,
     .offset = offsetof(struct paging_policy, repeat),
     .min = 0,
     .max = 100,
     .def = "0",
     .help = "times the whole policy runs again after its last level"},
    {.path = "levels",
     .type = VG_CFG_LIST,
     .offset = offsetof(struct paging_policy, levels),
     .max = LEVELS_MAX,
     .required = true,
     .help = "escalation levels in order",
     .sub = paging_level_keys,
     .nsub = sizeof(paging_level_keys) / sizeof(paging_level_keys[0]),
     .elem_size = sizeof(struct paging_level)},
};
const size_t paging_policy_nkeys = sizeof(paging_policy_keys) / sizeof(paging_policy_keys[0]);

const struct vg_cfg_key paging_config_keys[] = {
    PAGING_CONFIG_KEYS("", struct paging_config, ),
};
const size_t paging_config_nkeys = sizeof(paging_config_keys) / sizeof(paging_config_keys[0]);

/* ---- messages with positions ---- */

struct checker {
    struct paging_config *cfg;
    const char *file;
    const char *prefix; /* "paging" or "" */
    char *err;
    size_t errlen;
};

static void put_err(char *err, size_t errlen, const char *file, const struct fy_mark *mark,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void put_err(char *err, size_t errlen, const char *file, const struct fy_mark *mark,
                    const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vg_yaml_verror(err, errlen, file, mark, fmt, ap);
    va_end(ap);
}

/*
 * "file:line:col: message" for the node at ypath ("/paging/policies/0/levels/1"), or the
 * nearest ancestor below the top level that has a position; "file: message" when none has.
 */
static void error_at(char *err, size_t errlen, const char *file, const char *ypath, const char *msg)
{
    struct fy_parse_cfg pcfg = {.flags = FYPCF_QUIET};
    struct fy_document *doc = file ? fy_document_build_from_file(&pcfg, file) : NULL;
    struct fy_node *root = doc ? fy_document_root(doc) : NULL;
    const struct fy_mark *mark = NULL;
    struct fy_mark buf;
    char path[512];

    snprintf(path, sizeof(path), "%s", ypath ? ypath : "");
    while (root && path[0] && !mark) {
        struct fy_node *n = fy_node_by_path(root, path, FY_NT, FYNWF_DONT_FOLLOW);
        struct fy_node *parent = n ? fy_node_get_parent(n) : NULL;
        mark = vg_yaml_node_mark(n, &buf, NULL);
        if (!mark && parent && fy_node_is_mapping(parent)) {
            /* An empty value ("users: []") has no position of its own: its key has. */
            struct fy_node_pair *pair;
            void *iter = NULL;
            while (!mark && (pair = fy_node_mapping_iterate(parent, &iter)))
                if (fy_node_pair_value(pair) == n)
                    mark = vg_yaml_scalar_mark(fy_node_pair_key(pair), &buf);
        }
        char *slash = strrchr(path, '/');
        if (!slash || slash == path)
            break; /* the top level itself places nothing */
        *slash = '\0';
    }
    put_err(err, errlen, file ? file : "configuration", mark, "%s", msg);
    if (doc)
        fy_document_destroy(doc);
}

/* "policies[0].levels[1]" -> "/paging/policies/0/levels/1" (prefix "paging"). */
static void key_to_ypath(const char *prefix, const char *key, char *out, size_t outlen)
{
    size_t n = 0;
    int w = snprintf(out, outlen, "%s%s", prefix[0] ? "/" : "", prefix);
    if (w < 0 || (size_t)w >= outlen)
        return;
    n = (size_t)w;
    if (n + 1 < outlen)
        out[n++] = '/';
    for (const char *p = key; *p && n + 1 < outlen; p++) {
        if (*p == '.' || *p == '[')
            out[n++] = '/';
        else if (*p != ']')
            out[n++] = *p;
    }
    out[n] = '\0';
}

/* An error about key (a path below the paging keys, "" for the section itself). Returns
 * -EINVAL so callers can `return fail(...)`. */
static int fail(struct checker *ck, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct checker *ck, const char *key, const char *fmt, ...)
{
    char msg[768], shown[256], ypath[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(shown, sizeof(shown), "%s%s%s", ck->prefix, ck->prefix[0] && key[0] ? "." : "", key);
    key_to_ypath(ck->prefix, key, ypath, sizeof(ypath));
    if (shown[0]) {
        char full[1100];
        snprintf(full, sizeof(full), "\"%s\": %s", shown, msg);
        error_at(ck->err, ck->errlen, ck->file, ypath, full);
    } else {
        error_at(ck->err, ck->errlen, ck->file, NULL, msg);
    }
    return -EINVAL;
}

/* The key as the user reads it ("paging.smtp.url"), for messages that name another key. */
static const char *shown_key(const struct checker *ck, const char *key, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s%s", ck->prefix, ck->prefix[0] ? "." : "", key);
    return buf;
}

/* ---- value checks ---- */

#define QBUF (VG_YAML_QUOTE_MAX + 1)
/* Text from the file, safe to quote back in a message (bounded, no control characters). */
static const char *q(const char *s, char buf[QBUF])
{
    return vg_yaml_quotable(s ? s : "", s ? strlen(s) : 0, buf, QBUF);
}

static bool name_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > PAGING_NAME_MAX || !isalnum((unsigned char)s[0]))
        return false;
    for (size_t i = 1; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '_' && c != '.' && c != '-')
            return false;
    }
    return true;
}

static bool printable_no_space(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c >= 0x7f)
            return false;
    }
    return true;
}

static bool url_valid(const char *s)
{
    size_t skip = strncmp(s, "https://", 8) == 0 ? 8 : strncmp(s, "http://", 7) == 0 ? 7 : 0;
    return skip > 0 && s[skip] != '\0' && s[skip] != '/' && printable_no_space(s);
}

/* local@domain, printable ASCII without the characters that would break an SMTP command or a
 * header line. */
static bool email_valid(const char *s)
{
    const char *at = strchr(s, '@');
    if (!at || at == s || !at[1] || strchr(at + 1, '@') || !printable_no_space(s))
        return false;
    return strpbrk(s, "<>()[],;:\\\"") == NULL;
}

static bool routing_key_valid(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
            return false;
    }
    return true;
}

bool paging_timezone_valid(const char *name)
{
    char path[sizeof(PAGING_ZONEINFO_DIR) + TIMEZONE_MAX + 2];
    char magic[4];
    struct stat st;
    size_t n = name ? strlen(name) : 0;

    if (n == 0 || n > TIMEZONE_MAX || name[0] == '/' || strstr(name, ".."))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!isalnum(c) && c != '/' && c != '_' && c != '-' && c != '+')
            return false;
    }
    snprintf(path, sizeof(path), "%s/%s", PAGING_ZONEINFO_DIR, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ELOOP) /* Debian links a few old names (US/Eastern): fine */
        fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
              read(fd, magic, sizeof(magic)) == (ssize_t)sizeof(magic) &&
              memcmp(magic, "TZif", 4) == 0;
    close(fd);
    return ok;
}

/* Days since 1970-01-01 of a civil date (proleptic Gregorian; H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool leap_year(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static const char *const weekday_names[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                            "Thursday", "Friday", "Saturday"};

/* "Mon", "monday", ... -> 0..6 (Sunday = 0); -1 otherwise. */
static int parse_weekday(const char *s, size_t len)
{
    for (int i = 0; i < 7; i++) {
        if ((len == 3 && strncasecmp(s, weekday_names[i], 3) == 0) ||
            (len == strlen(weekday_names[i]) && strncasecmp(s, weekday_names[i], len) == 0))
            return i;
    }
    return -1;
}

static bool two_digits(const char *s, int *ret)
{
    if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]))
        return false;
    *ret = (s[0] - '0') * 10 + (s[1] - '0');
    return true;
}

int paging_schedule_prepare(struct paging_schedule *s, char *err, size_t errlen)
{
    const char *h = s->handover ? s->handover : "";
    size_t wlen = strcspn(h, " \t");
    const char *t = h + wlen + strspn(h + wlen, " \t");
    int wday = parse_weekday(h, wlen), hour, minute;
    char qb[QBUF];

    if (wday < 0 || t == h + wlen || strlen(t) != 5 || t[2] != ':' || !two_digits(t, &hour) ||
        !two_digits(t + 3, &minute) || hour > 23 || minute > 59) {
        snprintf(err, errlen,
                 "handover must be a weekday and a local time, like \"Mon 09:00\" (got \"%s\")",
                 q(h, qb));
        return -EINVAL;
    }
    const char *d = s->start ? s->start : "";
    int y1, y2, month, day;
    if (strlen(d) != 10 || d[4] != '-' || d[7] != '-' || !two_digits(d, &y1) ||
        !two_digits(d + 2, &y2) || !two_digits(d + 5, &month) || !two_digits(d + 8, &day)) {
        snprintf(err, errlen, "start must be a date YYYY-MM-DD (got \"%s\")", q(d, qb));
        return -EINVAL;
    }
    int year = y1 * 100 + y2;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (year < 1970 || year > 2200 || month < 1 || month > 12 || day < 1 ||
        day > mdays[month - 1] + (month == 2 && leap_year(year))) {
        snprintf(err, errlen, "start must be a real date between 1970 and 2200 (got \"%s\")", d);
        return -EINVAL;
    }
    int start_wday = (int)(((days_from_civil(year, (unsigned)month, (unsigned)day) % 7) + 11) % 7);
    if (start_wday != wday) {
        snprintf(err, errlen,
                 "start %s is a %s, but the handover is on %ss: start the rotation on a %s", d,
                 weekday_names[start_wday], weekday_names[wday], weekday_names[wday]);
        return -EINVAL;
    }
    if (!paging_timezone_valid(s->timezone)) {
        snprintf(err, errlen,
                 "timezone \"%s\" is not a time zone in " PAGING_ZONEINFO_DIR
                 " (an IANA name such as Europe/Berlin or America/New_York)",
                 q(s->timezone, qb));
        return -EINVAL;
    }
    s->handover_wday = wday;
    s->handover_hour = hour;
    s->handover_minute = minute;
    s->start_year = year;
    s->start_month = month;
    s->start_day = day;
    return 0;
}

/* ---- reading ---- */

#define CONTACT(cfg, i) VG_CFG_ITEM((cfg)->contacts, struct paging_contact, i)
#define SCHEDULE(cfg, i) VG_CFG_ITEM((cfg)->schedules, struct paging_schedule, i)
#define POLICY(cfg, i) VG_CFG_ITEM((cfg)->policies, struct paging_policy, i)

const struct paging_contact *paging_contact_find(const struct paging_config *cfg, const char *name)
{
    for (size_t i = 0; cfg && name && i < cfg->contacts.count; i++) {
        if (strcmp(CONTACT(cfg, i)->name, name) == 0)
            return CONTACT(cfg, i);
    }
    return NULL;
}

const struct paging_schedule *paging_schedule_find(const struct paging_config *cfg,
                                                   const char *name)
{
    for (size_t i = 0; cfg && name && i < cfg->schedules.count; i++) {
        if (strcmp(SCHEDULE(cfg, i)->name, name) == 0)
            return SCHEDULE(cfg, i);
    }
    return NULL;
}

const struct paging_policy *paging_policy_find(const struct paging_config *cfg, const char *name)
{
    for (size_t i = 0; cfg && name && i < cfg->policies.count; i++) {
        if (strcmp(POLICY(cfg, i)->name, name) == 0)
            return POLICY(cfg, i);
    }
    return NULL;
}

const struct paging_level *paging_policy_level(const struct paging_policy *policy, size_t i)
{
    if (!policy || i >= policy->levels.count)
        return NULL;
    return VG_CFG_ITEM(policy->levels, struct paging_level, i);
}

const struct paging_route *paging_route_for(const struct paging_config *cfg, int severity)
{
    if (!cfg || severity < 1 || severity > PAGING_SEVERITIES)
        return NULL;
    return &cfg->routes[severity - 1];
}

int paging_target_resolve(const struct paging_config *cfg, const char *text,
                          struct paging_target *ret)
{
    struct paging_target t = {0};

    if (!text)
        return -EINVAL;
    if (strncmp(text, "contact:", 8) == 0) {
        t.kind = PAGING_TARGET_CONTACT;
        t.contact = paging_contact_find(cfg, text + 8);
        if (!name_valid(text + 8))
            return -EINVAL;
        if (!t.contact)
            return -ENOENT;
    } else if (strncmp(text, "schedule:", 9) == 0) {
        t.kind = PAGING_TARGET_SCHEDULE;
        t.schedule = paging_schedule_find(cfg, text + 9);
        if (!name_valid(text + 9))
            return -EINVAL;
        if (!t.schedule)
            return -ENOENT;
    } else {
        return -EINVAL;
    }
    *ret = t;
    return 0;
}

const char *paging_contact_address(const struct paging_contact *c, enum paging_channel ch)
{
    const char *a = NULL;
    switch (ch) {
    case PAGING_CHANNEL_SLACK:
        a = c->slack;
        break;
    case PAGING_CHANNEL_WEBHOOK:
        a = c->webhook;
        break;
    case PAGING_CHANNEL_EMAIL:
        a = c->email;
        break;
    case PAGING_CHANNEL_PAGERDUTY:
        a = c->pagerduty;
        break;
    case PAGING_CHANNEL_SMS:
        a = c->phone;
        break;
    case PAGING_CHANNEL_TICKET:
        break;
    }
    return a ? a : "";
}

bool paging_channel_usable(const struct paging_config *cfg, const struct paging_contact *c,
                           enum paging_channel ch)
{
    if (!c || !paging_contact_address(c, ch)[0])
        return false;
    if (ch == PAGING_CHANNEL_EMAIL)
        return cfg && cfg->smtp_url && cfg->smtp_url[0];
    if (ch == PAGING_CHANNEL_PAGERDUTY)
        return cfg && cfg->pagerduty_url && cfg->pagerduty_url[0];
    if (ch == PAGING_CHANNEL_SMS)
        return cfg && cfg->sms_account_sid && cfg->sms_account_sid[0];
    return true;
}

#define HOURS(cfg, i) VG_CFG_ITEM((cfg)->business_hours, struct paging_hours, i)

const struct paging_hours *paging_hours_find(const struct paging_config *cfg, const char *name)
{
    for (size_t i = 0; cfg && name && name[0] && i < cfg->business_hours.count; i++) {
        if (strcmp(HOURS(cfg, i)->name, name) == 0)
            return HOURS(cfg, i);
    }
    return NULL;
}

const struct paging_hours *paging_level_hours(const struct paging_config *cfg,
                                              const struct paging_level *lv)
{
    if (!lv)
        return NULL;
    if (lv->hours && lv->hours[0])
        return paging_hours_find(cfg, lv->hours);
    for (size_t i = 0; i < lv->targets.count; i++) {
        struct paging_target t;
        if (paging_target_resolve(cfg, lv->targets.items[i], &t) == 0 &&
            t.kind == PAGING_TARGET_SCHEDULE && t.schedule->hours && t.schedule->hours[0])
            return paging_hours_find(cfg, t.schedule->hours);
    }
    return NULL;
}

/* Severity in a list of "SEV1".."SEV4" (case-insensitive); an empty list is fallback. */
static bool severity_listed(const struct vg_cfg_strings *list, int severity, unsigned fallback)
{
    if (severity < 1 || severity > PAGING_SEVERITIES)
        return false;
    if (list->count == 0)
        return (fallback >> severity) & 1u;
    for (size_t i = 0; i < list->count; i++) {
        const char *s = list->items[i];
        if (strncasecmp(s, "SEV", 3) == 0 && s[3] == '0' + severity && !s[4])
            return true;
    }
    return false;
}

bool paging_hours_apply(const struct paging_config *cfg, int severity)
{
    return cfg && severity_listed(&cfg->hours_severities, severity, (1u << 3) | (1u << 4));
}

bool paging_ticket_wanted(const struct paging_config *cfg, int severity)
{
    return cfg && cfg->tickets_kind && cfg->tickets_kind[0] &&
           severity_listed(&cfg->tickets_severities, severity, 1u << 4);
}

bool paging_phone_valid(const char *phone)
{
    size_t n = phone ? strlen(phone) : 0;
    if (n < 3 || n > 16 || phone[0] != '+' || phone[1] < '1' || phone[1] > '9')
        return false;
    for (size_t i = 1; i < n; i++)
        if (!isdigit((unsigned char)phone[i]))
            return false;
    return true;
}

static bool contact_reachable(const struct paging_config *cfg, const struct paging_contact *c)
{
    for (int ch = 0; ch < PAGING_CHANNELS; ch++) {
        if (paging_channel_usable(cfg, c, (enum paging_channel)ch))
            return true;
    }
    return false;
}

bool paging_enabled(const struct paging_config *cfg)
{
    return cfg && cfg->enabled;
}

/* ---- the checks ---- */

/* Why contact c cannot be reached (it has an address, but no channel that works). */
static void unreachable_why(const struct checker *ck, const struct paging_contact *c, char *buf,
                            size_t len)
{
    char key[64];
    if (c->email[0] && !ck->cfg->smtp_url[0])
        snprintf(buf, len, "contact \"%s\" has only e-mail, and %s is not set", c->name,
                 shown_key(ck, "smtp.url", key, sizeof(key)));
    else if (c->pagerduty[0] && !ck->cfg->pagerduty_url[0])
        snprintf(buf, len, "contact \"%s\" has only PagerDuty, and %s is empty", c->name,
                 shown_key(ck, "pagerduty_url", key, sizeof(key)));
    else if (c->phone[0] && !ck->cfg->sms_account_sid[0])
        snprintf(buf, len, "contact \"%s\" has only a phone, and %s is not set", c->name,
                 shown_key(ck, "sms.account_sid", key, sizeof(key)));
    else
        snprintf(buf, len, "contact \"%s\" has no channel", c->name);
}

/* A target reaches somebody at every moment: a contact with a channel that works, or a schedule
 * whose every user has one. Else why not, in buf. */
static bool target_reaches(const struct checker *ck, const struct paging_target *t, char *buf,
                           size_t len)
{
    if (t->kind == PAGING_TARGET_CONTACT) {
        if (contact_reachable(ck->cfg, t->contact))
            return true;
        unreachable_why(ck, t->contact, buf, len);
        return false;
    }
    for (size_t i = 0; i < t->schedule->users.count; i++) {
        const struct paging_contact *c = paging_contact_find(ck->cfg, t->schedule->users.items[i]);
        if (c && !contact_reachable(ck->cfg, c)) {
            char why[256];
            unreachable_why(ck, c, why, sizeof(why));
            snprintf(buf, len, "schedule \"%s\" has a week nobody is paged: %s", t->schedule->name,
                     why);
            return false;
        }
    }
    return true;
}

/*
 * targets (at key, e.g. "policies[0].levels[1].targets") must name existing contacts and
 * schedules, and at least one must reach somebody. what names the thing for "reaches nobody"
 * ("level 2 of policy \"default\""); builtin: the built-in policy's name when the targets are
 * its own (then key is where it is used, and names are not the user's typos).
 */
static int check_targets(struct checker *ck, const char *key, const struct vg_cfg_strings *targets,
                         const char *what, const char *builtin, bool must_reach)
{
    char why[512] = "", ikey[160], qb[QBUF];
    bool reached = false;

    if (targets->count == 0 && must_reach)
        return fail(ck, key, "%s reaches nobody: it has no targets", what);
    for (size_t i = 0; i < targets->count; i++) {
        struct paging_target t;
        const char *text = targets->items[i];
        int r = paging_target_resolve(ck->cfg, text, &t);

        snprintf(ikey, sizeof(ikey), "%s[%zu]", key, i);
        if (r == -EINVAL)
            return fail(ck, ikey, "must be \"schedule:NAME\" or \"contact:NAME\" (got \"%s\")",
                        q(text, qb));
        if (r == -ENOENT && builtin)
            return fail(ck, key,
                        "the built-in policy \"%s\" pages %s, which is not configured: define "
                        "the schedules primary and secondary and the contacts manager, cto and "
                        "stakeholders%s, or a policy named \"%s\" of your own",
                        builtin, text,
                        strcmp(builtin, PAGING_POLICY_SECURITY) == 0 ? " and security" : "",
                        builtin);
        if (r == -ENOENT)
            return fail(ck, ikey, "no %s named \"%s\"",
                        strncmp(text, "contact:", 8) == 0 ? "contact" : "schedule",
                        strchr(text, ':') + 1);
        char tmp[512];
        if (target_reaches(ck, &t, tmp, sizeof(tmp)))
            reached = true;
        else if (!why[0])
            snprintf(why, sizeof(why), "%s", tmp);
    }
    if (!reached && targets->count > 0)
        return fail(ck, key, "%s reaches nobody: %s", what, why);
    return 0;
}

static int check_contacts(struct checker *ck)
{
    char key[96], qb[QBUF];

    for (size_t i = 0; i < ck->cfg->contacts.count; i++) {
        const struct paging_contact *c = CONTACT(ck->cfg, i);
        snprintf(key, sizeof(key), "contacts[%zu].name", i);
        if (!name_valid(c->name))
            return fail(ck, key,
                        "must be 1 to 64 letters, digits, '_', '.' or '-', starting with a "
                        "letter or digit (got \"%s\")",
                        q(c->name, qb));
        for (size_t j = 0; j < i; j++) {
            if (strcmp(CONTACT(ck->cfg, j)->name, c->name) == 0)
                return fail(ck, key, "contact \"%s\" is defined twice (first as contacts[%zu])",
                            c->name, j);
        }
        if (!c->slack[0] && !c->email[0] && !c->webhook[0] && !c->pagerduty[0] && !c->phone[0]) {
            snprintf(key, sizeof(key), "contacts[%zu]", i);
            return fail(ck, key,
                        "contact \"%s\" has no channel: set slack, email, webhook, pagerduty or "
                        "phone",
                        c->name);
        }
        if (c->phone[0] && !paging_phone_valid(c->phone)) {
            snprintf(key, sizeof(key), "contacts[%zu].phone", i);
            return fail(ck, key,
                        "must be a number in E.164 form: '+', the country code and the number, "
                        "digits only, like +4915112345678 (got \"%s\")",
                        q(c->phone, qb));
        }
        if (c->slack[0] && !url_valid(c->slack)) {
            snprintf(key, sizeof(key), "contacts[%zu].slack", i);
            return fail(ck, key, "must be an http:// or https:// URL");
        }
        if (c->webhook[0] && !url_valid(c->webhook)) {
            snprintf(key, sizeof(key), "contacts[%zu].webhook", i);
            return fail(ck, key, "must be an http:// or https:// URL");
        }
        if (c->email[0] && !email_valid(c->email)) {
            snprintf(key, sizeof(key), "contacts[%zu].email", i);
            return fail(ck, key, "must be an address like oncall@example.com (got \"%s\")",
                        q(c->email, qb));
        }
        if (c->pagerduty[0] && !routing_key_valid(c->pagerduty)) {
            snprintf(key, sizeof(key), "contacts[%zu].pagerduty", i);
            return fail(ck, key, "must be a PagerDuty routing key (letters and digits)");
        }
    }
    return 0;
}

/* A contact's e-mail that cannot be sent is an escalation that silently fails. Checked after
 * the policies: "level 3 reaches nobody" is the clearer message when that is the effect. */
static int check_contact_channels(struct checker *ck)
{
    char key[96], smtp[64];
    for (size_t i = 0; i < ck->cfg->contacts.count; i++) {
        const struct paging_contact *c = CONTACT(ck->cfg, i);
        if (c->email[0] && !ck->cfg->smtp_url[0]) {
            snprintf(key, sizeof(key), "contacts[%zu].email", i);
            return fail(ck, key, "contact \"%s\" has an e-mail address, but %s is not set", c->name,
                        shown_key(ck, "smtp.url", smtp, sizeof(smtp)));
        }
        if (c->phone[0] && !ck->cfg->sms_account_sid[0]) {
            snprintf(key, sizeof(key), "contacts[%zu].phone", i);
            return fail(ck, key, "contact \"%s\" has a phone number, but %s is not set", c->name,
                        shown_key(ck, "sms.account_sid", smtp, sizeof(smtp)));
        }
    }
    return 0;
}

static int check_schedules(struct checker *ck)
{
    char key[96], msg[256], qb[QBUF];

    for (size_t i = 0; i < ck->cfg->schedules.count; i++) {
        struct paging_schedule *s = SCHEDULE(ck->cfg, i);
        snprintf(key, sizeof(key), "schedules[%zu].name", i);
        if (!name_valid(s->name))
            return fail(ck, key,
                        "must be 1 to 64 letters, digits, '_', '.' or '-', starting with a "
                        "letter or digit (got \"%s\")",
                        q(s->name, qb));
        for (size_t j = 0; j < i; j++) {
            if (strcmp(SCHEDULE(ck->cfg, j)->name, s->name) == 0)
                return fail(ck, key, "schedule \"%s\" is defined twice (first as schedules[%zu])",
                            s->name, j);
        }
        if (paging_schedule_prepare(s, msg, sizeof(msg)) < 0) {
            const char *field = strncmp(msg, "timezone", 8) == 0   ? "timezone"
                                : strncmp(msg, "handover", 8) == 0 ? "handover"
                                                                   : "start";
            snprintf(key, sizeof(key), "schedules[%zu].%s", i, field);
            return fail(ck, key, "%s", msg);
        }
        if (s->users.count == 0) {
            snprintf(key, sizeof(key), "schedules[%zu].users", i);
            return fail(ck, key, "schedule \"%s\" has no users: list contact names", s->name);
        }
        for (size_t u = 0; u < s->users.count; u++) {
            if (!paging_contact_find(ck->cfg, s->users.items[u])) {
                snprintf(key, sizeof(key), "schedules[%zu].users[%zu]", i, u);
                return fail(ck, key, "no contact named \"%s\"", q(s->users.items[u], qb));
            }
        }
        if (s->hours[0] && !paging_hours_find(ck->cfg, s->hours)) {
            snprintf(key, sizeof(key), "schedules[%zu].hours", i);
            return fail(ck, key, "no business_hours named \"%s\"", q(s->hours, qb));
        }
    }
    return 0;
}

/* A level without hours of its own takes its schedules': they must agree. */
static int check_level_hours(struct checker *ck, const char *key, const struct paging_level *lv,
                             const char *what)
{
    const char *seen = NULL;
    if (lv->hours && lv->hours[0])
        return 0;
    for (size_t i = 0; i < lv->targets.count; i++) {
        struct paging_target t;
        if (paging_target_resolve(ck->cfg, lv->targets.items[i], &t) < 0 ||
            t.kind != PAGING_TARGET_SCHEDULE)
            continue;
        const char *h = t.schedule->hours ? t.schedule->hours : "";
        if (seen && strcmp(seen, h) != 0)
            return fail(ck, key,
                        "%s pages schedules with different business hours (\"%s\" and \"%s\"): "
                        "give the level hours of its own, or split it",
                        what, seen[0] ? seen : "any time", h[0] ? h : "any time");
        seen = h;
    }
    return 0;
}

/* "HH:MM" (00:00 .. 24:00) as minutes after midnight; -1 otherwise. */
static int parse_clock(const char *s)
{
    int hour, minute;
    if (!s || strlen(s) != 5 || s[2] != ':' || !two_digits(s, &hour) ||
        !two_digits(s + 3, &minute) || minute > 59 || hour > 24 || (hour == 24 && minute != 0))
        return -1;
    return hour * 60 + minute;
}

static bool date_valid(const char *d)
{
    int y1, y2, month, day;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (!d || strlen(d) != 10 || d[4] != '-' || d[7] != '-' || !two_digits(d, &y1) ||
        !two_digits(d + 2, &y2) || !two_digits(d + 5, &month) || !two_digits(d + 8, &day))
        return false;
    int year = y1 * 100 + y2;
    return year >= 1970 && year <= 2200 && month >= 1 && month <= 12 && day >= 1 &&
           day <= mdays[month - 1] + (month == 2 && leap_year(year));
}

static int check_hours(struct checker *ck)
{
    char key[96], qb[QBUF];
    for (size_t i = 0; i < ck->cfg->business_hours.count; i++) {
        struct paging_hours *h = HOURS(ck->cfg, i);
        snprintf(key, sizeof(key), "business_hours[%zu].name", i);
        if (!name_valid(h->name))
            return fail(ck, key,
                        "must be 1 to 64 letters, digits, '_', '.' or '-', starting with a "
                        "letter or digit (got \"%s\")",
                        q(h->name, qb));
        for (size_t j = 0; j < i; j++) {
            if (strcmp(HOURS(ck->cfg, j)->name, h->name) == 0)
                return fail(ck, key,
                            "business hours \"%s\" are defined twice (first as "
                            "business_hours[%zu])",
                            h->name, j);
        }
        snprintf(key, sizeof(key), "business_hours[%zu].timezone", i);
        if (!paging_timezone_valid(h->timezone))
            return fail(ck, key,
                        "\"%s\" is not a time zone in " PAGING_ZONEINFO_DIR
                        " (an IANA name such as Europe/Berlin or America/New_York)",
                        q(h->timezone, qb));
        h->day_mask = h->days.count ? 0 : 0x3E; /* Mon..Fri */
        for (size_t d = 0; d < h->days.count; d++) {
            const char *day = h->days.items[d];
            int w = parse_weekday(day, strlen(day));
            if (w < 0) {
                snprintf(key, sizeof(key), "business_hours[%zu].days[%zu]", i, d);
                return fail(ck, key, "must be a weekday, Mon to Sun (got \"%s\")", q(day, qb));
            }
            h->day_mask |= 1u << w;
        }
        h->start_minute = parse_clock(h->start);
        h->end_minute = parse_clock(h->end);
        if (h->start_minute < 0 || h->start_minute >= 24 * 60) {
            snprintf(key, sizeof(key), "business_hours[%zu].start", i);
            return fail(ck, key, "must be a local time HH:MM, like \"09:00\" (got \"%s\")",
                        q(h->start, qb));
        }
        snprintf(key, sizeof(key), "business_hours[%zu].end", i);
        if (h->end_minute < 0)
            return fail(ck, key, "must be a local time HH:MM, like \"17:00\" (got \"%s\")",
                        q(h->end, qb));
        if (h->end_minute <= h->start_minute)
            return fail(ck, key,
                        "must be later than start (%s); a window past midnight is two "
                        "windows: end it at 24:00 and start the next day at 00:00",
                        h->start);
        for (size_t d = 0; d < h->holidays.count; d++) {
            if (!date_valid(h->holidays.items[d])) {
                snprintf(key, sizeof(key), "business_hours[%zu].holidays[%zu]", i, d);
                return fail(ck, key, "must be a date YYYY-MM-DD (got \"%s\")",
                            q(h->holidays.items[d], qb));
            }
        }
    }
    return 0;
}

static int check_severities(struct checker *ck, const char *key, const struct vg_cfg_strings *list)
{
    char ikey[96], qb[QBUF];
    for (size_t i = 0; i < list->count; i++) {
        const char *s = list->items[i];
        if (strncasecmp(s, "SEV", 3) != 0 || s[3] < '1' || s[3] > '4' || s[4]) {
            snprintf(ikey, sizeof(ikey), "%s[%zu]", key, i);
            return fail(ck, ikey, "must be SEV1, SEV2, SEV3 or SEV4 (got \"%s\")", q(s, qb));
        }
    }
    return 0;
}

/* sms.* and tickets.*: complete when used, and their token files private. */
static int check_channels(struct checker *ck)
{
    const struct paging_config *cfg = ck->cfg;
    char msg[512] = "", qb[QBUF];
    int r;

    if ((r = check_severities(ck, "hours_severities", &cfg->hours_severities)) < 0 ||
        (r = check_severities(ck, "tickets.severities", &cfg->tickets_severities)) < 0)
        return r;
    if (cfg->sms_account_sid[0]) {
        if (!url_valid(cfg->sms_url))
            return fail(ck, "sms.url", "must be an http:// or https:// URL");
        if (!routing_key_valid(cfg->sms_account_sid))
            return fail(ck, "sms.account_sid", "must be letters and digits, like AC0123...");
        if (!paging_phone_valid(cfg->sms_from))
            return fail(ck, "sms.from",
                        "must be the sender number in E.164 form, like +15005550006 (got \"%s\")",
                        q(cfg->sms_from, qb));
        if (!cfg->sms_auth_token_file[0])
            return fail(ck, "sms.auth_token_file", "must be set when sms.account_sid is");
        if (vg_secret_file_check(cfg->sms_auth_token_file, msg, sizeof(msg)) < 0)
            return fail(ck, "sms.auth_token_file", "%s", msg);
    }
    if (!cfg->tickets_kind[0])
        return 0;
    bool github = strcmp(cfg->tickets_kind, "github") == 0;
    if (!github && strcmp(cfg->tickets_kind, "jira") != 0)
        return fail(ck, "tickets.kind", "must be github or jira (got \"%s\")",
                    q(cfg->tickets_kind, qb));
    if (github) {
        if (!url_valid(cfg->tickets_api_url))
            return fail(ck, "tickets.api_url", "must be an http:// or https:// URL");
        if (!name_valid(cfg->tickets_owner))
            return fail(ck, "tickets.owner", "must name the repository's owner (got \"%s\")",
                        q(cfg->tickets_owner, qb));
        if (!name_valid(cfg->tickets_repo))
            return fail(ck, "tickets.repo", "must name the repository (got \"%s\")",
                        q(cfg->tickets_repo, qb));
    } else {
        if (!url_valid(cfg->tickets_base_url))
            return fail(
                ck, "tickets.base_url",
                "must be the Jira site's http:// or https:// URL when tickets.kind is jira");
        if (!cfg->tickets_user[0] || !printable_no_space(cfg->tickets_user) ||
            strchr(cfg->tickets_user, ':'))
            return fail(ck, "tickets.user",
                        "must be the Jira account the API token belongs to (no spaces or ':')");
        if (!routing_key_valid(cfg->tickets_project))
            return fail(ck, "tickets.project", "must be a Jira project key, like OPS (got \"%s\")",
                        q(cfg->tickets_project, qb));
        if (!cfg->tickets_issue_type[0])
            return fail(ck, "tickets.issue_type", "must name an issue type, like Bug");
    }
    if (!cfg->tickets_token_file[0])
        return fail(ck, "tickets.token_file", "must be set when tickets.kind is");
    if (vg_secret_file_check(cfg->tickets_token_file, msg, sizeof(msg)) < 0)
        return fail(ck, "tickets.token_file", "%s", msg);
    return 0;
}

static int check_policies(struct checker *ck)
{
    char key[96], what[128], qb[QBUF];

    for (size_t i = 0; i < ck->cfg->policies.count; i++) {
        const struct paging_policy *p = POLICY(ck->cfg, i);
        if (p->builtin)
            continue; /* checked where used */
        snprintf(key, sizeof(key), "policies[%zu].name", i);
        if (!name_valid(p->name))
            return fail(ck, key,
                        "must be 1 to 64 letters, digits, '_', '.' or '-', starting with a "
                        "letter or digit (got \"%s\")",
                        q(p->name, qb));
        for (size_t j = 0; j < i; j++) {
            if (strcmp(POLICY(ck->cfg, j)->name, p->name) == 0)
                return fail(ck, key, "policy \"%s\" is defined twice (first as policies[%zu])",
                            p->name, j);
        }
        if (p->levels.count == 0) {
            snprintf(key, sizeof(key), "policies[%zu].levels", i);
            return fail(ck, key, "policy \"%s\" has no levels", p->name);
        }
        for (size_t l = 0; l < p->levels.count; l++) {
            const struct paging_level *lv = paging_policy_level(p, l);
            if (l > 0 && lv->delay_ms <= paging_policy_level(p, l - 1)->delay_ms) {
                snprintf(key, sizeof(key), "policies[%zu].levels[%zu].delay", i, l);
                return fail(ck, key, "must be later than the delay of level %zu", l);
            }
            snprintf(key, sizeof(key), "policies[%zu].levels[%zu].targets", i, l);
            snprintf(what, sizeof(what), "level %zu of policy \"%s\"", l + 1, p->name);
            int r = check_targets(ck, key, &lv->targets, what, NULL, true);
            if (r < 0)
                return r;
            snprintf(key, sizeof(key), "policies[%zu].levels[%zu].hours", i, l);
            if (lv->hours[0] && !paging_hours_find(ck->cfg, lv->hours))
                return fail(ck, key, "no business_hours named \"%s\"", q(lv->hours, qb));
            if ((r = check_level_hours(ck, key, lv, what)) < 0)
                return r;
        }
    }
    return 0;
}

/* A built-in policy in use: its schedules and contacts must exist and reach somebody. key is
 * where it is used. */
static int check_builtin(struct checker *ck, const struct paging_policy *p, const char *key)
{
    char what[128];
    for (size_t l = 0; l < p->levels.count; l++) {
        snprintf(what, sizeof(what), "level %zu of the built-in policy \"%s\"", l + 1, p->name);
        int r = check_targets(ck, key, &paging_policy_level(p, l)->targets, what, p->name, true);
        if (r < 0)
            return r;
    }
    return 0;
}

static int check_routes(struct checker *ck)
{
    char key[96], what[96], qb[QBUF];

    for (int i = 0; i < PAGING_SEVERITIES; i++) {
        const struct paging_route *rt = &ck->cfg->routes[i];
        snprintf(key, sizeof(key), "routing.SEV%d.policy", i + 1);
        const struct paging_policy *p = paging_policy_find(ck->cfg, rt->policy);
        if (!p)
            return fail(ck, key, "no policy named \"%s\"", q(rt->policy, qb));
        if (p->builtin) {
            int r = check_builtin(ck, p, key);
            if (r < 0)
                return r;
        }
        snprintf(key, sizeof(key), "routing.SEV%d.also", i + 1);
        snprintf(what, sizeof(what), "the SEV%d audience", i + 1);
        int r = check_targets(ck, key, &rt->also, what, NULL, false);
        if (r < 0)
            return r;
    }
    return check_targets(ck, "announce", &ck->cfg->announce, "announce", NULL, false);
}

static int check_scalars(struct checker *ck)
{
    const struct paging_config *cfg = ck->cfg;
    char qb[QBUF];

    if (cfg->smtp_url[0] && ((strncmp(cfg->smtp_url, "smtp://", 7) != 0 &&
                              strncmp(cfg->smtp_url, "smtps://", 8) != 0) ||
                             !printable_no_space(cfg->smtp_url)))
        return fail(ck, "smtp.url",
                    "must be smtp://HOST[:PORT] or smtps://HOST[:PORT] (got \"%s\")",
                    q(cfg->smtp_url, qb));
    if (cfg->smtp_url[0] && !email_valid(cfg->smtp_from))
        return fail(ck, "smtp.from",
                    "must be the sender's address, like vigil@example.com, when smtp.url is set "
                    "(got \"%s\")",
                    q(cfg->smtp_from, qb));
    if (cfg->pagerduty_url[0] && !url_valid(cfg->pagerduty_url))
        return fail(ck, "pagerduty_url", "must be an http:// or https:// URL");
    if (cfg->notify_max_backoff_ms < cfg->notify_backoff_ms)
        return fail(ck, "notify.max_backoff", "must be at least notify.backoff");
    if (cfg->webhook_secret_file[0]) {
        char msg[512] = "";
        if (vg_secret_file_check(cfg->webhook_secret_file, msg, sizeof(msg)) < 0)
            return fail(ck, "webhook_secret_file", "%s", msg);
    }
    return 0;
}

/* ---- built-in policies ---- */

static char *xstrdup(const char *s, bool *oom)
{
    char *d = strdup(s);
    if (!d)
        *oom = true;
    return d;
}

/* A built-in policy named name with nlevels empty levels, appended to cfg's policies; NULL when
 * out of memory (what was allocated is cfg's to free). */
static struct paging_policy *builtin_append(struct paging_config *cfg, const char *name,
                                            size_t nlevels)
{
    struct paging_policy *items =
        realloc(cfg->policies.items, (cfg->policies.count + 1) * sizeof(*items));
    bool oom = false;

    if (!items)
        return NULL;
    cfg->policies.items = items;
    struct paging_policy *p = &items[cfg->policies.count++];
    memset(p, 0, sizeof(*p));
    p->builtin = true;
    p->name = xstrdup(name, &oom);
    p->levels.items = calloc(nlevels, sizeof(struct paging_level));
    if (!p->levels.items || oom)
        return NULL;
    p->levels.count = nlevels;
    return p;
}

/* The document's timeline; security adds contact:security at the first level. */
static int add_builtin(struct paging_config *cfg, const char *name, bool security)
{
    static const struct {
        const char *delay;
        const char *targets[3];
    } timeline[] = {
        {"0s", {"schedule:primary", "contact:security", NULL}},
        {"15m", {"schedule:secondary", NULL, NULL}},
        {"30m", {"contact:manager", NULL, NULL}},
        {"60m", {"contact:cto", "contact:stakeholders", NULL}},
    };
    const size_t nlevels = sizeof(timeline) / sizeof(timeline[0]);
    struct paging_policy *p = builtin_append(cfg, name, nlevels);
    bool oom = false;

    if (!p)
        return -ENOMEM;
    for (size_t l = 0; l < nlevels; l++) {
        struct paging_level *lv = VG_CFG_ITEM(p->levels, struct paging_level, l);
        (void)vg_parse_duration_ms(timeline[l].delay, &lv->delay_ms);
        lv->targets.items = calloc(3, sizeof(char *));
        if (!lv->targets.items)
            return -ENOMEM;
        for (size_t t = 0; t < 3 && timeline[l].targets[t]; t++) {
            if (l == 0 && t == 1 && !security)
                continue;
            lv->targets.items[lv->targets.count++] = xstrdup(timeline[l].targets[t], &oom);
        }
    }
    return oom ? -ENOMEM : 0;
}

/* The policy "drill": the drill audience, paged at once, once (drills.audience). */
static int add_drill_policy(struct paging_config *cfg)
{
    struct paging_policy *p = builtin_append(cfg, PAGING_POLICY_DRILL, 1);
    const struct vg_cfg_strings *audience = &cfg->drills_audience;
    bool oom = false;

    if (!p)
        return -ENOMEM;
    struct paging_level *lv = VG_CFG_ITEM(p->levels, struct paging_level, 0);
    lv->targets.items = calloc(audience->count ? audience->count : 1, sizeof(char *));
    if (!lv->targets.items)
        return -ENOMEM;
    for (size_t t = 0; t < audience->count; t++)
        lv->targets.items[lv->targets.count++] = xstrdup(audience->items[t], &oom);
    return oom ? -ENOMEM : 0;
}

bool paging_config_is_default(const struct paging_config *cfg)
{
    struct paging_config def;
    char err[256];
    bool same = true;

    memset(&def, 0, sizeof(def));
    if (vg_config_defaults(paging_config_keys, paging_config_nkeys, &def, err, sizeof(err)) < 0) {
        vg_config_free(paging_config_keys, paging_config_nkeys, &def);
        return false;
    }
    for (size_t i = 0; i < paging_config_nkeys && same; i++) {
        const struct vg_cfg_key *k = &paging_config_keys[i];
        const unsigned char *a = (const unsigned char *)cfg + k->offset;
        const unsigned char *b = (const unsigned char *)&def + k->offset;
        if (k->type == VG_CFG_STRING) {
            const char *sa, *sb;
            memcpy(&sa, a, sizeof(sa));
            memcpy(&sb, b, sizeof(sb));
            same = strcmp(sa ? sa : "", sb ? sb : "") == 0;
        } else if (k->type == VG_CFG_LIST || k->type == VG_CFG_STRINGS) {
            size_t count;
            memcpy(&count,
                   a + (k->type == VG_CFG_LIST ? offsetof(struct vg_cfg_list, count)
                                               : offsetof(struct vg_cfg_strings, count)),
                   sizeof(count));
            same = count == 0;
        } else {
            same = memcmp(a, b, sizeof(int64_t)) == 0;
        }
    }
    vg_config_free(paging_config_keys, paging_config_nkeys, &def);
    return same;
}

int paging_config_finish(struct paging_config *cfg, const char *source, const char *yaml_prefix,
                         char *err, size_t errlen)
{
    struct checker ck = {
        .cfg = cfg,
        .file = source,
        .prefix = yaml_prefix ? yaml_prefix : "",
        .err = err,
        .errlen = errlen,
    };
    int r;

    free(cfg->source);
    free(cfg->yaml_prefix);
    cfg->source = strdup(source ? source : "");
    cfg->yaml_prefix = strdup(ck.prefix);
    if (!cfg->source || !cfg->yaml_prefix) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    r = check_scalars(&ck);
    if (r < 0)
        return r;

    cfg->enabled = cfg->contacts.count > 0 || cfg->schedules.count > 0 || cfg->policies.count > 0 ||
                   cfg->announce.count > 0 || cfg->drills_audience.count > 0;
    for (int i = 0; i < PAGING_SEVERITIES; i++)
        cfg->enabled = cfg->enabled || cfg->routes[i].also.count > 0 ||
                       strcmp(cfg->routes[i].policy, PAGING_POLICY_DEFAULT) != 0;
    if (!cfg->enabled)
        return 0;

    if (!paging_policy_find(cfg, PAGING_POLICY_DEFAULT) &&
        (r = add_builtin(cfg, PAGING_POLICY_DEFAULT, false)) < 0)
        goto err_oom;
    if (!paging_policy_find(cfg, PAGING_POLICY_SECURITY) &&
        (r = add_builtin(cfg, PAGING_POLICY_SECURITY, true)) < 0)
        goto err_oom;
    if (!paging_policy_find(cfg, PAGING_POLICY_DRILL) && (r = add_drill_policy(cfg)) < 0)
        goto err_oom;

    if ((r = check_hours(&ck)) < 0 || (r = check_channels(&ck)) < 0 ||
        (r = check_contacts(&ck)) < 0 || (r = check_schedules(&ck)) < 0 ||
        (r = check_policies(&ck)) < 0 || (r = check_routes(&ck)) < 0 ||
        (r = check_contact_channels(&ck)) < 0)
        return r;
    return check_targets(&ck, "drills.audience", &cfg->drills_audience, "the drill audience", NULL,
                         false);

err_oom:
    snprintf(err, errlen, "out of memory");
    return r;
}

int paging_config_load(const char *path, struct paging_config *cfg, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof(*cfg));
    int r = vg_config_load(path, paging_config_keys, paging_config_nkeys, cfg, err, errlen);
    if (r < 0)
        return r;
    return paging_config_finish(cfg, path, "", err, errlen);
}

void paging_config_free(struct paging_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->file);
    free(cfg->source);
    free(cfg->yaml_prefix);
    vg_config_free(paging_config_keys, paging_config_nkeys, cfg);
    memset(cfg, 0, sizeof(*cfg));
}

int paging_check_runbooks(const struct paging_config *cfg, const struct rb_set *set, char *err,
                          size_t errlen)
{
    if (!paging_enabled(cfg) || !set)
        return 0;
    for (size_t i = 0; i < set->n; i++) {
        const struct rb_runbook *rb = &set->runbooks[i];
        const char *name = rb->policy && rb->policy[0] ? rb->policy : PAGING_POLICY_DEFAULT;
        const struct paging_policy *p = paging_policy_find(cfg, name);
        char msg[512] = "";

        if (!p) {
            snprintf(msg, sizeof(msg),
                     "\"policy\": runbook \"%s\" names the escalation policy \"%s\", which is "
                     "neither in %s%spolicies nor built in (default, security)",
                     rb->id, name, cfg->yaml_prefix, cfg->yaml_prefix[0] ? "." : "");
            error_at(err, errlen, rb->file, "/policy", msg);
            return -EINVAL;
        }
        if (p->builtin) {
            struct checker ck = {
                .cfg = (struct paging_config *)cfg, /* check_* only read */
                .file = rb->file,
                .prefix = "",
                .err = msg,
                .errlen = sizeof(msg),
            };
            char what[128];
            for (size_t l = 0; l < p->levels.count; l++) {
                snprintf(what, sizeof(what), "level %zu of the built-in policy \"%s\"", l + 1,
                         p->name);
                if (check_targets(&ck, "policy", &paging_policy_level(p, l)->targets, what, p->name,
                                  true) < 0) {
                    snprintf(err, errlen, "%s (runbook \"%s\")", msg, rb->id);
                    return -EINVAL;
                }
            }
        }
    }
    return 0;
}
