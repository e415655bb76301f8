/*
 * The notifier (notify.h): claims due rows of the notifications table, sends them all at once
 * through one libcurl multi handle, and writes each outcome back on the row.
 *
 * Everything below the "formatting" section runs on the notifier's thread only, except
 * notify_kick and the stop flag, which take the mutex. Times that decide when a row is due are
 * the database's (now() in SQL), so a coordinator whose clock differs from the database's does
 * not send early or late.
 */
#include "notify.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <sodium.h>

#include "curl_multi.h"
#include "digest.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "model.h"
#include "store.h"
#include "timeutil.h"

#define APPLICATION_NAME "vigil-coordinator-notify"
#define TICK_MS 1000           /* due rows are looked for at least this often */
#define MIN_LOOK_MS 10         /* and at most this often, unless a claim filled every slot */
#define PD_SUMMARY_MAX 1024    /* PagerDuty refuses longer summaries */
#define SUBJECT_PLAIN_MAX 900  /* longer (or non-ASCII) subjects are RFC 2047 encoded words */
#define ENCODED_CHUNK 39       /* input bytes per encoded word: 52 base64 chars, lines under 76 */
#define MAIL_LINE_MAX 998      /* RFC 5322 2.1.1 */
#define ERROR_MAX 300          /* bytes of last_error */
#define DB_LOG_REPEAT_MS 60000 /* a database that stays down is logged this often */

static const char *const verdict_names[] = {"sent", "retry", "failed"};

/* ---- formatting (pure) ---------------------------------------------------------------------- */

static int dump(json_t *root, char **ret)
{
    char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (!text)
        return -ENOMEM;
    *ret = text;
    return 0;
}

/* Sets key to a string; false if value is not UTF-8 (or memory ran out). */
static bool set_string(json_t *obj, const char *key, const char *value)
{
    json_t *s = json_string(value ? value : "");
    return s && json_object_set_new(obj, key, s) == 0;
}

/* Slack's message formatting treats <...> as a mention, channel link or URL ("<!channel>",
 * "<@U123>") and & as the start of an entity; the only escaping it defines is &amp; &lt; &gt;.
 * Everything Vigil sends is plain text built from data (node names, incident titles), so all of
 * it is escaped: nothing in a message can page a channel or hide a link. NULL = no memory. */
static char *slack_escape(const char *text)
{
    size_t len = 0;
    for (const char *c = text; *c; c++)
        len += *c == '&' ? 5 : (*c == '<' || *c == '>') ? 4 : 1;
    char *out = malloc(len + 1), *o = out;
    if (!out)
        return NULL;
    for (const char *c = text; *c; c++) {
        const char *entity = *c == '&' ? "&amp;" : *c == '<' ? "&lt;" : *c == '>' ? "&gt;" : NULL;
        if (entity) {
            size_t n = strlen(entity);
            memcpy(o, entity, n);
            o += n;
        } else {
            *o++ = *c;
        }
    }
    *o = '\0';
    return out;
}

int notify_slack_body(const char *subject, const char *body, char **ret)
{
    char *raw = NULL;
    if (asprintf(&raw, "%s\n%s", subject ? subject : "", body ? body : "") < 0)
        return -ENOMEM;
    char *text = slack_escape(raw);
    free(raw);
    if (!text)
        return -ENOMEM;
    json_t *root = json_object();
    bool ok = root && set_string(root, "text", text);
    free(text);
    if (!ok) {
        json_decref(root);
        return root ? -EINVAL : -ENOMEM;
    }
    return dump(root, ret);
}

int notify_webhook_body(const char *payload_json, const char *subject, const char *body, char **ret)
{
    json_error_t jerr;
    json_t *root = payload_json ? json_loads(payload_json, 0, &jerr) : NULL;
    if (!json_is_object(root)) {
        json_decref(root);
        return -EINVAL;
    }
    if (!set_string(root, "subject", subject) || !set_string(root, "body", body)) {
        json_decref(root);
        return -EINVAL;
    }
    return dump(root, ret);
}

void notify_webhook_signature(const void *secret, size_t secret_len, const void *body,
                              size_t body_len, char ret[NOTIFY_SIGNATURE_LEN + 1])
{
    uint8_t mac[VG_SHA256_LEN];
    vg_hmac_sha256(secret, secret_len, body, body_len, mac);
    /* vg_hex writes the terminating NUL after the digits. */
    memcpy(ret, "sha256=", 7); // NOLINT(bugprone-not-null-terminated-result)
    vg_hex(mac, sizeof(mac), ret + 7);
}

const char *notify_pagerduty_severity(const char *sev)
{
    static const char *const names[] = {"critical", "error", "warning", "info"};
    if (sev && strncmp(sev, "SEV", 3) == 0 && sev[3] >= '1' && sev[3] <= '4' && !sev[4])
        return names[sev[3] - '1'];
    return "critical";
}

/* Length of at most max bytes of s that does not end inside a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* A "links" entry for the runbook, if the payload names an http(s) one. */
static void pagerduty_links(json_t *event, const json_t *payload)
{
    const char *link = json_string_value(json_object_get(payload, "runbook_link"));
    if (!link || (strncmp(link, "https://", 8) != 0 && strncmp(link, "http://", 7) != 0))
        return;
    json_t *links = json_pack("[{s:s, s:s}]", "href", link, "text", "Runbook");
    if (links)
        json_object_set_new(event, "links", links);
}

int notify_pagerduty_body(const char *routing_key, const char *event, uint64_t incident_id,
                          const char *subject, const char *payload_json, char **ret)
{
    char dedup[48];
    if (!event || (strcmp(event, "trigger") != 0 && strcmp(event, "acknowledge") != 0 &&
                   strcmp(event, "resolve") != 0))
        return -EINVAL;
    snprintf(dedup, sizeof(dedup), "vigil-incident-%" PRIu64, incident_id);

    json_t *root = json_object();
    if (!root)
        return -ENOMEM;
    if (!set_string(root, "routing_key", routing_key) || !set_string(root, "event_action", event) ||
        !set_string(root, "dedup_key", dedup))
        goto err_invalid;
    if (strcmp(event, "trigger") == 0) {
        json_error_t jerr;
        json_t *details = payload_json ? json_loads(payload_json, 0, &jerr) : NULL;
        const char *sev = json_string_value(json_object_get(details, "severity"));
        const char *summary = subject && subject[0] ? subject : "Vigil incident";
        json_t *payload = json_object();
        if (!payload ||
            json_object_set_new(
                payload, "summary",
                json_stringn(summary, utf8_cut(summary, strlen(summary), PD_SUMMARY_MAX))) < 0 ||
            !set_string(payload, "source", "vigil") ||
            !set_string(payload, "severity", notify_pagerduty_severity(sev))) {
            json_decref(payload);
            json_decref(details);
            goto err_invalid;
        }
        pagerduty_links(root, details);
        if (details)
            json_object_set_new(payload, "custom_details", details);
        json_object_set_new(root, "payload", payload);
    }
    set_string(root, "client", "Vigil");
    return dump(root, ret);

err_invalid:
    json_decref(root);
    return -EINVAL;
}

bool notify_email_address_ok(const char *addr)
{
    if (!addr)
        return false;
    size_t len = strlen(addr);
    const char *at = strchr(addr, '@');
    if (len < 3 || len > 254 || !at || at == addr || !at[1] || strchr(at + 1, '@'))
        return false;
    for (const char *p = addr; *p; p++)
        if (*p <= ' ' || *p >= 127 || strchr("\"<>()[],;:\\", *p))
            return false;
    return true;
}

static void put_date(FILE *out, int64_t ms)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        memset(&tm, 0, sizeof(tm));
    fprintf(out, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n", days[tm.tm_wday % 7],
            tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
            tm.tm_sec);
}

/* Subject: as is when it is short printable ASCII, else as folded RFC 2047 encoded words. */
static int put_subject(FILE *out, const char *subject)
{
    size_t len = strlen(subject);
    char *clean = strdup(subject);
    if (!clean)
        return -ENOMEM;
    bool plain = len <= SUBJECT_PLAIN_MAX && !strstr(subject, "=?");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)clean[i];
        if (c < 0x20 || c == 0x7F) /* CR/LF would end the header: header injection */
            clean[i] = ' ';
        else if (c >= 0x80)
            plain = false;
    }
    if (plain) {
        fprintf(out, "Subject: %s\r\n", clean);
        free(clean);
        return 0;
    }
    fputs("Subject:", out);
    for (size_t off = 0; off < len;) {
        size_t n = utf8_cut(clean + off, len - off, ENCODED_CHUNK);
        if (n == 0) /* a malformed sequence longer than a chunk: cut it anyway */
            n = len - off < ENCODED_CHUNK ? len - off : ENCODED_CHUNK;
        char b64[sodium_base64_ENCODED_LEN(ENCODED_CHUNK, sodium_base64_VARIANT_ORIGINAL)];
        sodium_bin2base64(b64, sizeof(b64), (const unsigned char *)clean + off, n,
                          sodium_base64_VARIANT_ORIGINAL);
        fprintf(out, "%s=?UTF-8?B?%s?=", off ? "\r\n " : " ", b64);
        off += n;
    }
    fputs("\r\n", out);
    free(clean);
    return 0;
}

/* The body with CRLF line ends and no line over MAIL_LINE_MAX bytes. */
static void put_body(FILE *out, const char *body)
{
    size_t line = 0;
    for (const char *p = body; *p; p++) {
        if (*p == '\r' || *p == '\n') {
            if (*p == '\r' && p[1] == '\n')
                p++;
            fputs("\r\n", out);
            line = 0;
            continue;
        }
        /* Split before a byte that would make the line too long, not inside a character. */
        if (line >= MAIL_LINE_MAX - 4 && ((unsigned char)*p & 0xC0) != 0x80) {
            fputs("\r\n", out);
            line = 0;
        }
        fputc(*p, out);
        line++;
    }
    if (line > 0)
        fputs("\r\n", out);
}

int notify_email_message(const struct notify_email *mail, char **ret)
{
    if (!mail || !notify_email_address_ok(mail->from) || !notify_email_address_ok(mail->to))
        return -EINVAL;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out)
        return -ENOMEM;
    put_date(out, mail->date_ms);
    fprintf(out, "From: Vigil <%s>\r\n", mail->from);
    fprintf(out, "To: <%s>\r\n", mail->to);
    int r = put_subject(out, mail->subject ? mail->subject : "");
    fprintf(out, "Message-ID: <vigil-notification-%" PRIu64 "@%s>\r\n", mail->notification_id,
            strchr(mail->from, '@') + 1);
    fputs("MIME-Version: 1.0\r\n"
          "Content-Type: text/plain; charset=utf-8\r\n"
          "Content-Transfer-Encoding: 8bit\r\n"
          "Auto-Submitted: auto-generated\r\n",
          out);
    fprintf(out, "X-Vigil-Incident: %" PRIu64 "\r\n\r\n", mail->incident_id);
    put_body(out, mail->body ? mail->body : "");
    bool failed = ferror(out) != 0;
    if (fclose(out) != 0)
        failed = true;
    if (r < 0 || failed) {
        free(text);
        return r < 0 ? r : -ENOMEM;
    }
    *ret = text;
    return 0;
}

/* Bytes of the first max_chars UTF-8 characters of s. */
static size_t utf8_chars(const char *s, size_t max_chars)
{
    size_t i = 0, chars = 0;
    while (s[i]) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (chars == max_chars)
                break;
            chars++;
        }
        i++;
    }
    return i;
}

char *notify_sms_text(const char *subject, const char *body)
{
    char *text = NULL;
    if (asprintf(&text, "%s\n%s", subject ? subject : "", body ? body : "") < 0)
        return NULL;
    text[utf8_chars(text, NOTIFY_SMS_MAX_CHARS)] = '\0';
    return text;
}

/* application/x-www-form-urlencoded value: unreserved characters as they are, the rest %XX. */
static void put_form_value(FILE *out, const char *value)
{
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~')
            fputc(*p, out);
        else
            fprintf(out, "%%%02X", *p);
    }
}

static bool e164(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 3 || n > 16 || s[0] != '+' || s[1] < '1' || s[1] > '9')
        return false;
    for (size_t i = 1; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

int notify_sms_form(const char *to, const char *from, const char *subject, const char *body,
                    char **ret)
{
    if (!e164(to) || !e164(from))
        return -EINVAL;
    char *text = notify_sms_text(subject, body), *form = NULL;
    size_t len = 0;
    FILE *out = text ? open_memstream(&form, &len) : NULL;
    if (!out) {
        free(text);
        return -ENOMEM;
    }
    fputs("To=", out);
    put_form_value(out, to);
    fputs("&From=", out);
    put_form_value(out, from);
    fputs("&Body=", out);
    put_form_value(out, text);
    free(text);
    bool failed = ferror(out) != 0;
    if (fclose(out) != 0 || failed) {
        free(form);
        return -ENOMEM;
    }
    *ret = form;
    return 0;
}

/* A JSON string of at most max characters of text; NULL if it is not UTF-8. */
static json_t *title_string(const char *text)
{
    const char *t = text && text[0] ? text : "Vigil incident";
    return json_stringn(t, utf8_chars(t, NOTIFY_TICKET_TITLE_MAX));
}

int notify_github_issue_body(const char *subject, const char *body, const char *const *labels,
                             size_t nlabels, char **ret)
{
    json_t *root = json_object(), *list = json_array();
    if (!root || !list) {
        json_decref(root);
        json_decref(list);
        return -ENOMEM;
    }
    json_t *title = title_string(subject);
    bool ok = title && json_object_set_new(root, "title", title) == 0 &&
              set_string(root, "body", body) && json_object_set_new(root, "labels", list) == 0;
    for (size_t i = 0; ok && i < nlabels; i++)
        ok = json_array_append_new(list, json_string(labels[i])) == 0;
    if (!ok) {
        json_decref(root);
        return -EINVAL;
    }
    return dump(root, ret);
}

int notify_jira_issue_body(const char *project, const char *issue_type, const char *subject,
                           const char *body, char **ret)
{
    json_t *summary = title_string(subject);
    json_t *root =
        summary ? json_pack("{s:{s:{s:s}, s:o, s:s, s:{s:s}}}", "fields", "project", "key",
                            project ? project : "", "summary", summary, "description",
                            body ? body : "", "issuetype", "name", issue_type ? issue_type : "")
                : NULL;
    if (!root)
        return -EINVAL;
    return dump(root, ret);
}

int notify_ticket_link(const char *kind, const char *base_url, const char *answer, char **ret_url,
                       char **ret_key)
{
    json_error_t jerr;
    json_t *root = answer ? json_loads(answer, 0, &jerr) : NULL;
    char *url = NULL, *key = NULL;
    int r = -EINVAL;
    if (kind && strcmp(kind, "github") == 0) {
        const char *link = json_string_value(json_object_get(root, "html_url"));
        json_int_t number = json_integer_value(json_object_get(root, "number"));
        if (link && link[0] &&
            (asprintf(&key, "%" JSON_INTEGER_FORMAT, number) < 0 || !(url = strdup(link))))
            r = -ENOMEM;
        else if (link && link[0])
            r = 0;
    } else if (kind && strcmp(kind, "jira") == 0) {
        const char *k = json_string_value(json_object_get(root, "key"));
        size_t blen = base_url ? strlen(base_url) : 0;
        while (blen > 0 && base_url[blen - 1] == '/')
            blen--;
        if (k && k[0] &&
            (asprintf(&url, "%.*s/browse/%s", (int)blen, base_url, k) < 0 || !(key = strdup(k))))
            r = -ENOMEM;
        else if (k && k[0])
            r = 0;
    }
    json_decref(root);
    if (r < 0) {
        free(url);
        free(key);
        return r;
    }
    *ret_url = url;
    *ret_key = key;
    return 0;
}

int64_t notify_backoff_ms(int64_t base_ms, int64_t max_ms, int attempt, double unit)
{
    if (base_ms < 1)
        base_ms = 1;
    if (max_ms < base_ms)
        max_ms = base_ms;
    int64_t delay = base_ms;
    for (int i = 1; i < attempt && delay < max_ms; i++)
        delay = delay > max_ms / 2 ? max_ms : delay * 2;
    if (!(unit >= 0 && unit < 1))
        unit = 0.5;
    /* Jitter, so rows that failed together (one receiver down) do not retry together. */
    int64_t jittered = (int64_t)((double)delay * (0.8 + 0.4 * unit));
    if (jittered > max_ms)
        jittered = max_ms;
    return jittered < 1 ? 1 : jittered;
}

enum notify_verdict notify_http_verdict(long status)
{
    if (status >= 200 && status <= 299)
        return NOTIFY_SENT;
    if (status == 0 || status == 408 || status == 429 || (status >= 500 && status <= 599))
        return NOTIFY_RETRY;
    return NOTIFY_FAILED;
}

enum notify_verdict notify_smtp_verdict(long code)
{
    if (code >= 200 && code <= 299)
        return NOTIFY_SENT;
    if (code >= 500 && code <= 599)
        return NOTIFY_FAILED;
    return NOTIFY_RETRY; /* 4xx, no answer, or nonsense */
}

/* ---- the object ----------------------------------------------------------------------------- */

/* One send in flight, and the row it came from. */
struct send {
    bool busy;
    uint64_t id, incident_id;
    enum paging_channel channel;
    int attempts;
    char target[64]; /* for the log */
    CURL *easy;
    struct curl_slist *list; /* HTTP headers, or the SMTP recipient */
    char *request;           /* POST body or the mail */
    size_t request_len, request_off;
    char note[200]; /* for the log line of a sent row: "sid=SM..." or "ticket=URL" */
    char *answer;   /* SMS and tickets: the whole answer (up to NOTIFY_ANSWER_MAX), to parse */
    size_t answer_len;
    bool answer_cut;
    char response[NOTIFY_RESPONSE_KEEP + 1];
    size_t response_len;
    char errbuf[CURL_ERROR_SIZE];
};

struct notify {
    pthread_mutex_t lock; /* guards stop and kicked */
    bool stop, kicked;

    /* The thread's own from here on, set before it starts. */
    pthread_t thread;
    bool thread_started, curl_ready;
    CURLM *multi;
    struct store_side db;
    char *smtp_url, *smtp_from, *pagerduty_url;
    char *secret;
    size_t secret_len;
    char *sms_url, *sms_sid, *sms_from, *sms_token;
    char *ticket_kind, *ticket_url, *ticket_base_url, *ticket_user, *ticket_project,
        *ticket_issue_type, *ticket_owner, *ticket_repo, *ticket_token;
    char **ticket_labels;
    size_t ticket_nlabels;
    int64_t timeout_ms, backoff_ms, max_backoff_ms;
    int max_attempts, concurrency;
    struct send *sends;
    int inflight;
    bool more_due;        /* the last claim filled every free slot: look again when one frees */
    bool look_now;        /* claim as soon as a slot is free (kicked while full, or more_due) */
    int64_t next_look_ms; /* monotonic: when to look for due rows next */
    int64_t db_logged_ms;
};

/* Only http(s) (or smtp(s) when smtp) with a host, for the config's URLs. */
static int check_url(const char *what, const char *url, bool smtp, char *err, size_t errlen)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int r = -EINVAL;
    if (!u) {
        vg_set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (uc != CURLUE_OK) {
        vg_set_err(err, errlen, "%s \"%s\": %s", what, url, curl_url_strerror(uc));
        goto out;
    }
    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    bool scheme_ok = scheme && (smtp ? strcmp(scheme, "smtp") == 0 || strcmp(scheme, "smtps") == 0
                                     : strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0);
    if (!scheme_ok) {
        vg_set_err(err, errlen, "%s \"%s\": must be %s", what, url,
                   smtp ? "smtp:// or smtps://" : "http:// or https://");
        goto out;
    }
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0]) {
        vg_set_err(err, errlen, "%s \"%s\": no host", what, url);
        goto out;
    }
    r = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return r;
}

static char *dup_or(const char *s, const char *fallback)
{
    return strdup(s && s[0] ? s : fallback);
}

static void *notify_thread(void *arg);

/* A token for a header or basic auth: read from its file (mode checked), printable, no ':' for
 * basic auth's password is fine but no control characters anywhere. */
static int read_token(const char *path, const char *what, char **ret, char *err, size_t errlen)
{
    char *token = NULL;
    size_t len = 0;
    if (vg_secret_file_read(path, &token, &len, err, errlen) < 0)
        return -EINVAL;
    bool ok = len > 0 && strlen(token) == len;
    for (size_t i = 0; ok && i < len; i++)
        ok = token[i] > ' ' && token[i] < 0x7F;
    if (!ok) {
        vg_set_err(err, errlen, "%s: the %s is empty or has spaces or control characters", path,
                   what);
        sodium_memzero(token, len);
        free(token);
        return -EINVAL;
    }
    *ret = token;
    return 0;
}

static void free_token(char **token_p)
{
    if (*token_p) {
        sodium_memzero(*token_p, strlen(*token_p));
        free(*token_p);
        *token_p = NULL;
    }
}

static int setup_sms(notify_t *self, const struct notify_config *cfg, char *err, size_t errlen)
{
    if (!cfg->sms_account_sid || !cfg->sms_account_sid[0])
        return 0;
    self->sms_url = dup_or(cfg->sms_url, NOTIFY_DEFAULT_SMS_URL);
    self->sms_sid = strdup(cfg->sms_account_sid);
    self->sms_from = dup_or(cfg->sms_from, "");
    if (!self->sms_url || !self->sms_sid || !self->sms_from) {
        vg_set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    if (check_url("sms url", self->sms_url, false, err, errlen) < 0)
        return -EINVAL;
    if (!e164(self->sms_from)) {
        vg_set_err(err, errlen, "sms from \"%s\": not an E.164 number", self->sms_from);
        return -EINVAL;
    }
    return read_token(cfg->sms_auth_token_file ? cfg->sms_auth_token_file : "", "auth token",
                      &self->sms_token, err, errlen);
}

static int setup_tickets(notify_t *self, const struct notify_config *cfg, char *err, size_t errlen)
{
    if (!cfg->ticket_kind || !cfg->ticket_kind[0])
        return 0;
    bool github = strcmp(cfg->ticket_kind, "github") == 0;
    if (!github && strcmp(cfg->ticket_kind, "jira") != 0) {
        vg_set_err(err, errlen, "ticket kind \"%s\": must be github or jira", cfg->ticket_kind);
        return -EINVAL;
    }
    self->ticket_kind = strdup(cfg->ticket_kind);
    self->ticket_owner = dup_or(cfg->ticket_owner, "");
    self->ticket_repo = dup_or(cfg->ticket_repo, "");
    self->ticket_base_url = dup_or(cfg->ticket_base_url, "");
    self->ticket_user = dup_or(cfg->ticket_user, "");
    self->ticket_project = dup_or(cfg->ticket_project, "");
    self->ticket_issue_type = dup_or(cfg->ticket_issue_type, "Bug");
    self->ticket_labels = calloc(cfg->ticket_nlabels + 1, sizeof(char *));
    if (!self->ticket_kind || !self->ticket_owner || !self->ticket_repo || !self->ticket_base_url ||
        !self->ticket_user || !self->ticket_project || !self->ticket_issue_type ||
        !self->ticket_labels)
        goto err_nomem;
    for (size_t i = 0; i < cfg->ticket_nlabels; i++) {
        if (!(self->ticket_labels[i] = strdup(cfg->ticket_labels[i])))
            goto err_nomem;
        self->ticket_nlabels++;
    }
    /* The endpoint, from the root the configuration names (a trailing '/' dropped). */
    const char *root =
        github ? (cfg->ticket_api_url && cfg->ticket_api_url[0] ? cfg->ticket_api_url
                                                                : NOTIFY_DEFAULT_GITHUB_URL)
               : self->ticket_base_url;
    int n = (int)strlen(root);
    while (n > 0 && root[n - 1] == '/')
        n--;
    int w = github ? asprintf(&self->ticket_url, "%.*s/repos/%s/%s/issues", n, root,
                              self->ticket_owner, self->ticket_repo)
                   : asprintf(&self->ticket_url, "%.*s/rest/api/2/issue", n, root);
    if (w < 0) {
        self->ticket_url = NULL;
        goto err_nomem;
    }
    if (check_url("ticket url", self->ticket_url, false, err, errlen) < 0)
        return -EINVAL;
    if (github ? !self->ticket_owner[0] || !self->ticket_repo[0]
               : !self->ticket_user[0] || !self->ticket_project[0]) {
        vg_set_err(err, errlen, "tickets: %s",
                   github ? "owner and repo must be set" : "user and project must be set");
        return -EINVAL;
    }
    return read_token(cfg->ticket_token_file ? cfg->ticket_token_file : "", "ticket token",
                      &self->ticket_token, err, errlen);

err_nomem:
    vg_set_err(err, errlen, "out of memory");
    return -ENOMEM;
}

notify_t *notify_new(const struct notify_config *cfg, char *err, size_t errlen)
{
    notify_t *self = cfg ? calloc(1, sizeof(*self)) : NULL;
    if (!self) {
        vg_set_err(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&self->lock, NULL);
    if (sodium_init() < 0) { /* randombytes for the jitter */
        vg_set_err(err, errlen, "libsodium cannot initialise");
        goto err_destroy;
    }
    /* Reference-counted, and thread-safe in this libcurl ("threadsafe" feature). */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        vg_set_err(err, errlen, "libcurl cannot initialise");
        goto err_destroy;
    }
    self->curl_ready = true;

    self->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : NOTIFY_DEFAULT_TIMEOUT_MS;
    self->max_attempts = cfg->max_attempts > 0 ? cfg->max_attempts : NOTIFY_DEFAULT_MAX_ATTEMPTS;
    self->backoff_ms = cfg->backoff_ms > 0 ? cfg->backoff_ms : NOTIFY_DEFAULT_BACKOFF_MS;
    self->max_backoff_ms =
        cfg->max_backoff_ms > 0 ? cfg->max_backoff_ms : NOTIFY_DEFAULT_MAX_BACKOFF_MS;
    if (self->max_backoff_ms < self->backoff_ms)
        self->max_backoff_ms = self->backoff_ms;
    self->concurrency = cfg->concurrency > 0 ? cfg->concurrency : NOTIFY_DEFAULT_CONCURRENCY;
    if (self->concurrency > NOTIFY_MAX_CONCURRENCY) {
        vg_set_err(err, errlen, "concurrency must be at most %d (got %d)", NOTIFY_MAX_CONCURRENCY,
                   self->concurrency);
        goto err_destroy;
    }

    if (store_side_init(&self->db, cfg->conninfo) < 0)
        goto err_nomem;
    self->smtp_url = dup_or(cfg->smtp_url, "");
    self->smtp_from = dup_or(cfg->smtp_from, NOTIFY_DEFAULT_SMTP_FROM);
    self->pagerduty_url = dup_or(cfg->pagerduty_url, NOTIFY_DEFAULT_PAGERDUTY_URL);
    self->sends = calloc((size_t)self->concurrency, sizeof(*self->sends));
    if (!self->smtp_url || !self->smtp_from || !self->pagerduty_url || !self->sends)
        goto err_nomem;
    if (self->smtp_url[0] && check_url("smtp url", self->smtp_url, true, err, errlen) < 0)
        goto err_destroy;
    if (check_url("pagerduty url", self->pagerduty_url, false, err, errlen) < 0)
        goto err_destroy;
    if (!notify_email_address_ok(self->smtp_from)) {
        vg_set_err(err, errlen, "smtp from \"%s\": not a plain e-mail address", self->smtp_from);
        goto err_destroy;
    }
    if (cfg->webhook_secret_file && cfg->webhook_secret_file[0]) {
        if (vg_secret_file_read(cfg->webhook_secret_file, &self->secret, &self->secret_len, err,
                                errlen) < 0)
            goto err_destroy;
        if (self->secret_len == 0) {
            vg_set_err(err, errlen, "%s: the webhook secret is empty", cfg->webhook_secret_file);
            goto err_destroy;
        }
    }
    if (setup_sms(self, cfg, err, errlen) < 0 || setup_tickets(self, cfg, err, errlen) < 0)
        goto err_destroy;
    self->multi = curl_multi_init();
    if (!self->multi)
        goto err_nomem;
    int r = pthread_create(&self->thread, NULL, notify_thread, self);
    if (r != 0) {
        vg_set_err(err, errlen, "cannot start the notifier thread: %s", strerror(r));
        goto err_destroy;
    }
    self->thread_started = true;
    return self;

err_nomem:
    vg_set_err(err, errlen, "out of memory");
err_destroy:
    notify_destroy(&self);
    return NULL;
}

void notify_kick(notify_t *self)
{
    if (!self)
        return;
    pthread_mutex_lock(&self->lock);
    self->kicked = true;
    pthread_mutex_unlock(&self->lock);
    curl_multi_wakeup(self->multi);
}

static void send_clear(notify_t *self, struct send *s)
{
    if (s->easy) {
        curl_multi_remove_handle(self->multi, s->easy);
        curl_easy_cleanup(s->easy);
    }
    curl_slist_free_all(s->list);
    free(s->request);
    free(s->answer);
    memset(s, 0, offsetof(struct send, response));
    s->response_len = 0;
    s->errbuf[0] = '\0';
}

void notify_destroy(notify_t **self_p)
{
    notify_t *self = self_p ? *self_p : NULL;
    if (!self)
        return;
    if (self->thread_started) {
        pthread_mutex_lock(&self->lock);
        self->stop = true;
        pthread_mutex_unlock(&self->lock);
        curl_multi_wakeup(self->multi);
        pthread_join(self->thread, NULL);
    }
    for (int i = 0; self->sends && i < self->concurrency; i++)
        send_clear(self, &self->sends[i]);
    free(self->sends);
    if (self->multi)
        curl_multi_cleanup(self->multi);
    if (self->curl_ready)
        curl_global_cleanup();
    store_side_fini(&self->db);
    free(self->smtp_url);
    free(self->smtp_from);
    free(self->pagerduty_url);
    if (self->secret) {
        sodium_memzero(self->secret, self->secret_len);
        free(self->secret);
    }
    free(self->sms_url);
    free(self->sms_sid);
    free(self->sms_from);
    free_token(&self->sms_token);
    free(self->ticket_kind);
    free(self->ticket_url);
    free(self->ticket_base_url);
    free(self->ticket_user);
    free(self->ticket_project);
    free(self->ticket_issue_type);
    free(self->ticket_owner);
    free(self->ticket_repo);
    for (size_t i = 0; self->ticket_labels && i < self->ticket_nlabels; i++)
        free(self->ticket_labels[i]);
    free(self->ticket_labels);
    free_token(&self->ticket_token);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

/* ---- the database --------------------------------------------------------------------------- */

static void db_failed(notify_t *self, PGresult *res, const char *what)
{
    char buf[512];
    const char *text = res ? PQresultErrorMessage(res) : "";
    if (!text[0] && self->db.conn)
        text = PQerrorMessage(self->db.conn);
    int64_t now = vg_mono_ms();
    if (self->db_logged_ms == 0 || now - self->db_logged_ms >= DB_LOG_REPEAT_MS) {
        self->db_logged_ms = now;
        vg_log(VG_LOG_WARN, "notify: %s failed error=\"%s\"", what,
               vg_log_one_line(text, buf, sizeof(buf)));
    }
    /* A broken connection is replaced on the next use. */
    if (self->db.conn && PQstatus(self->db.conn) != CONNECTION_OK) {
        PQfinish(self->db.conn);
        self->db.conn = NULL;
    }
}

/* Runs one statement; the result (tuples or command) in *ret_res, or NULL on failure (logged). */
static PGresult *db_exec(notify_t *self, const char *sql, int n, const char *const *params,
                         const char *what)
{
    if (!self->db.conn || PQstatus(self->db.conn) != CONNECTION_OK) {
        if (store_side_connect(&self->db.conn, self->db.conninfo, APPLICATION_NAME) < 0)
            return NULL;
        self->db_logged_ms = 0;
    }
    PGresult *res = PQexecParams(self->db.conn, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        db_failed(self, res, what);
        PQclear(res);
        return NULL;
    }
    return res;
}

/* Printable ASCII only (last_error is text, and the log is one line), cut at ERROR_MAX. */
static void error_text(char *out, size_t outlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void error_text(char *out, size_t outlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, outlen, fmt, ap);
    va_end(ap);
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7F)
            *p = ' ';
}

static void record_told(const struct send *s, enum notify_verdict verdict, long code,
                        const char *delay, const char *error);

/* Writes the outcome of the attempt on the row, if the row is still the one we claimed. */
static void record(notify_t *self, const struct send *s, enum notify_verdict verdict, long code,
                   int64_t retry_in_ms, const char *error)
{
    char id[24], code_text[24], attempts[16], delay[24];
    snprintf(id, sizeof(id), "%" PRIu64, s->id);
    snprintf(code_text, sizeof(code_text), "%ld", code);
    snprintf(attempts, sizeof(attempts), "%d", s->attempts);
    snprintf(delay, sizeof(delay), "%" PRId64, retry_in_ms);
    const char *params[] = {id, attempts, code ? code_text : NULL, error, delay};
    static const char *const sql[] = {
        [NOTIFY_SENT] = "UPDATE notifications SET status = 'sent', last_code = $3,"
                        " last_error = $4, sent_at = now()"
                        " WHERE id = $1 AND attempts = $2 AND status = 'sending'",
        [NOTIFY_RETRY] = "UPDATE notifications SET status = 'pending', last_code = $3,"
                         " last_error = $4,"
                         " next_attempt_at = now() + $5::bigint * interval '1 millisecond'"
                         " WHERE id = $1 AND attempts = $2 AND status = 'sending'",
        [NOTIFY_FAILED] = "UPDATE notifications SET status = 'failed', last_code = $3,"
                          " last_error = $4"
                          " WHERE id = $1 AND attempts = $2 AND status = 'sending'",
    };
    PGresult *res = db_exec(self, sql[verdict], verdict == NOTIFY_RETRY ? 5 : 4, params,
                            "recording an attempt");
    if (res && verdict == NOTIFY_RETRY && vg_mono_ms() + retry_in_ms < self->next_look_ms)
        self->next_look_ms = vg_mono_ms() + retry_in_ms; /* be there when it is due */
    /* Not written: the lease brings the row back and it is sent again (at least once). */
    PQclear(res);
    record_told(s, verdict, code, delay, error);
}

/* The attempt's metric and log line. */
static void record_told(const struct send *s, enum notify_verdict verdict, long code,
                        const char *delay, const char *error)
{
    metrics_notification(paging_channel_name(s->channel), verdict_names[verdict]);
    if (verdict == NOTIFY_SENT)
        vg_log(VG_LOG_INFO,
               "notify id=%" PRIu64 " incident=%" PRIu64 " channel=%s target=%s sent code=%ld"
               " attempts=%d%s%s",
               s->id, s->incident_id, paging_channel_name(s->channel), s->target, code, s->attempts,
               s->note[0] ? " " : "", s->note);
    else
        vg_log(VG_LOG_WARN,
               "notify id=%" PRIu64 " incident=%" PRIu64 " channel=%s target=%s %s code=%ld"
               " attempts=%d%s%s error=\"%s\"",
               s->id, s->incident_id, paging_channel_name(s->channel), s->target,
               verdict == NOTIFY_RETRY ? "retry" : "failed", code, s->attempts,
               verdict == NOTIFY_RETRY ? " retry_in_ms=" : "", verdict == NOTIFY_RETRY ? delay : "",
               error);
}

/* The queue's depth for the gauge, and how long until the next row is due (TICK_MS at most). */
static int64_t queue_stats(notify_t *self)
{
    PGresult *res = db_exec(
        self,
        "SELECT count(*), ceil(extract(epoch FROM min(next_attempt_at) - now()) * 1000)::bigint"
        " FROM notifications WHERE status IN ('pending', 'sending')",
        0, NULL, "counting the queue");
    int64_t due_in = TICK_MS;
    if (res && PQntuples(res) == 1) {
        metrics_notifications_queued(strtoull(PQgetvalue(res, 0, 0), NULL, 10));
        if (!PQgetisnull(res, 0, 1)) {
            int64_t ms = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
            due_in = ms < 0 ? 0 : ms < TICK_MS ? ms : TICK_MS;
        }
    }
    PQclear(res);
    return due_in;
}

/* ---- sending -------------------------------------------------------------------------------- */

static size_t keep_response(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct send *s = userdata;
    size_t n = size * nmemb;
    size_t room = NOTIFY_RESPONSE_KEEP - s->response_len;
    size_t take = n < room ? n : room;
    memcpy(s->response + s->response_len, data, take);
    s->response_len += take;
    s->response[s->response_len] = '\0';
    if ((s->channel == PAGING_CHANNEL_SMS || s->channel == PAGING_CHANNEL_TICKET) &&
        !s->answer_cut) {
        /* The whole answer, to read the message's sid or the issue's link from. */
        if (s->answer_len + n > NOTIFY_ANSWER_MAX) {
            s->answer_cut = true;
            return n;
        }
        char *grown = realloc(s->answer, s->answer_len + n + 1);
        if (!grown) {
            s->answer_cut = true;
            return n;
        }
        s->answer = grown;
        memcpy(s->answer + s->answer_len, data, n);
        s->answer_len += n;
        s->answer[s->answer_len] = '\0';
    }
    return n; /* the rest is read and dropped */
}

static size_t read_mail(char *buffer, size_t size, size_t nitems, void *userdata)
{
    struct send *s = userdata;
    size_t room = size * nitems;
    size_t left = s->request_len - s->request_off;
    size_t n = left < room ? left : room;
    memcpy(buffer, s->request + s->request_off, n);
    s->request_off += n;
    return n;
}

struct row {
    uint64_t id, incident_id;
    const char *channel, *target, *address, *event, *subject, *body, *payload;
    int attempts;
};

static bool add_header(struct curl_slist **list, const char *header)
{
    struct curl_slist *grown = curl_slist_append(*list, header);
    if (!grown)
        return false;
    *list = grown;
    return true;
}

/* The request for an HTTP channel: URL, body and headers. */
static int prepare_http(notify_t *self, struct send *s, const struct row *row, const char **ret_url,
                        char *why, size_t whylen)
{
    int r;
    *ret_url = row->address;
    switch (s->channel) {
    case PAGING_CHANNEL_SLACK:
        r = notify_slack_body(row->subject, row->body, &s->request);
        break;
    case PAGING_CHANNEL_WEBHOOK:
        r = notify_webhook_body(row->payload, row->subject, row->body, &s->request);
        break;
    default:
        *ret_url = self->pagerduty_url;
        r = notify_pagerduty_body(row->address, row->event, row->incident_id, row->subject,
                                  row->payload, &s->request);
        break;
    }
    if (r == -EINVAL) {
        error_text(why, whylen, "%s",
                   s->channel == PAGING_CHANNEL_PAGERDUTY
                       ? "cannot be sent: event is not trigger, acknowledge or resolve"
                   : s->channel == PAGING_CHANNEL_WEBHOOK
                       ? "cannot be sent: payload is not a JSON object"
                       : "cannot be sent: text is not UTF-8");
        return r;
    }
    if (r < 0)
        return r;
    s->request_len = strlen(s->request);

    char header[128];
    if (!add_header(&s->list, "Content-Type: application/json") || !add_header(&s->list, "Expect:"))
        return -ENOMEM;
    if (s->channel == PAGING_CHANNEL_WEBHOOK) {
        char sig[NOTIFY_SIGNATURE_LEN + 1];
        snprintf(header, sizeof(header), "X-Vigil-Delivery: %" PRIu64, s->id);
        if (!add_header(&s->list, header))
            return -ENOMEM;
        if (self->secret) {
            notify_webhook_signature(self->secret, self->secret_len, s->request, s->request_len,
                                     sig);
            snprintf(header, sizeof(header), "X-Vigil-Signature: %s", sig);
            if (!add_header(&s->list, header))
                return -ENOMEM;
        }
    }
    if (curl_easy_setopt(s->easy, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
        curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->list) != CURLE_OK ||
        curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)s->request_len) !=
            CURLE_OK ||
        curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, s->request) != CURLE_OK)
        return -ENOMEM;
    return 0;
}

static int prepare_email(notify_t *self, struct send *s, const struct row *row, char *why,
                         size_t whylen)
{
    char rcpt[300];
    if (!self->smtp_url[0]) {
        error_text(why, whylen, "cannot be sent: no SMTP server configured");
        return -EINVAL;
    }
    struct notify_email mail = {
        .from = self->smtp_from,
        .to = row->address,
        .subject = row->subject,
        .body = row->body,
        .notification_id = row->id,
        .incident_id = row->incident_id,
        .date_ms = vg_wall_ms(),
    };
    int r = notify_email_message(&mail, &s->request);
    if (r == -EINVAL) {
        error_text(why, whylen, "cannot be sent: \"%.64s\" is not a plain e-mail address",
                   row->address);
        return r;
    }
    if (r < 0)
        return r;
    s->request_len = strlen(s->request);
    snprintf(rcpt, sizeof(rcpt), "<%s>", row->address);
    char from[300];
    snprintf(from, sizeof(from), "<%s>", self->smtp_from);
    if (!add_header(&s->list, rcpt))
        return -ENOMEM;
    if (curl_easy_setopt(s->easy, CURLOPT_PROTOCOLS_STR, "smtp,smtps") != CURLE_OK ||
        curl_easy_setopt(s->easy, CURLOPT_URL, self->smtp_url) != CURLE_OK ||
        curl_easy_setopt(s->easy, CURLOPT_MAIL_FROM, from) != CURLE_OK ||
        curl_easy_setopt(s->easy, CURLOPT_MAIL_RCPT, s->list) != CURLE_OK ||
        curl_easy_setopt(s->easy, CURLOPT_UPLOAD, 1L) != CURLE_OK ||
        curl_easy_setopt(s->easy, CURLOPT_READFUNCTION, read_mail) != CURLE_OK ||
        curl_easy_setopt(s->easy, CURLOPT_READDATA, s) != CURLE_OK ||
        curl_easy_setopt(s->easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)s->request_len) != CURLE_OK)
        return -ENOMEM;
    return 0;
}

/* SMS: POST {sms_url}/2010-04-01/Accounts/{sid}/Messages.json, form-encoded, basic auth. */
static int prepare_sms(notify_t *self, struct send *s, const struct row *row, char *url,
                       size_t urllen, char *why, size_t whylen)
{
    if (!self->sms_sid) {
        error_text(why, whylen, "cannot be sent: no SMS account configured (paging.sms)");
        return -EINVAL;
    }
    int r = notify_sms_form(row->address, self->sms_from, row->subject, row->body, &s->request);
    if (r == -EINVAL) {
        error_text(why, whylen, "cannot be sent: \"%.32s\" is not an E.164 phone number",
                   row->address);
        return r;
    }
    if (r < 0)
        return r;
    s->request_len = strlen(s->request);
    size_t n = strlen(self->sms_url);
    while (n > 0 && self->sms_url[n - 1] == '/')
        n--;
    snprintf(url, urllen, "%.*s/2010-04-01/Accounts/%s/Messages.json", (int)n, self->sms_url,
             self->sms_sid);
    if (!add_header(&s->list, "Content-Type: application/x-www-form-urlencoded") ||
        !add_header(&s->list, "Accept: application/json") || !add_header(&s->list, "Expect:"))
        return -ENOMEM;
    if (curl_easy_setopt(s->easy, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
        curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->list) != CURLE_OK ||
        curl_easy_setopt(s->easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC) != CURLE_OK ||
        curl_easy_setopt(s->easy, CURLOPT_USERNAME, self->sms_sid) != CURLE_OK ||
        curl_easy_setopt(s->easy, CURLOPT_PASSWORD, self->sms_token) != CURLE_OK ||
        curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)s->request_len) !=
            CURLE_OK ||
        curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, s->request) != CURLE_OK)
        return -ENOMEM;
    return 0;
}

/* A ticket: GitHub's POST {api_url}/repos/{owner}/{repo}/issues with a bearer token, or Jira's
 * POST {base_url}/rest/api/2/issue with basic auth user:token. */
static int prepare_ticket(notify_t *self, struct send *s, const struct row *row, char *why,
                          size_t whylen)
{
    if (!self->ticket_kind) {
        error_text(why, whylen, "cannot be sent: no tracker configured (paging.tickets)");
        return -EINVAL;
    }
    bool github = strcmp(self->ticket_kind, "github") == 0;
    int r = github ? notify_github_issue_body(row->subject, row->body,
                                              (const char *const *)self->ticket_labels,
                                              self->ticket_nlabels, &s->request)
                   : notify_jira_issue_body(self->ticket_project, self->ticket_issue_type,
                                            row->subject, row->body, &s->request);
    if (r == -EINVAL) {
        error_text(why, whylen, "cannot be sent: text is not UTF-8");
        return r;
    }
    if (r < 0)
        return r;
    s->request_len = strlen(s->request);
    if (!add_header(&s->list, "Content-Type: application/json") || !add_header(&s->list, "Expect:"))
        return -ENOMEM;
    if (github) {
        char *auth = NULL;
        if (asprintf(&auth, "Authorization: Bearer %s", self->ticket_token) < 0)
            return -ENOMEM;
        bool ok = add_header(&s->list, auth) &&
                  add_header(&s->list, "Accept: application/vnd.github+json") &&
                  add_header(&s->list, "X-GitHub-Api-Version: 2022-11-28");
        sodium_memzero(auth, strlen(auth));
        free(auth);
        if (!ok)
            return -ENOMEM;
    } else {
        if (!add_header(&s->list, "Accept: application/json") ||
            curl_easy_setopt(s->easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC) != CURLE_OK ||
            curl_easy_setopt(s->easy, CURLOPT_USERNAME, self->ticket_user) != CURLE_OK ||
            curl_easy_setopt(s->easy, CURLOPT_PASSWORD, self->ticket_token) != CURLE_OK)
            return -ENOMEM;
    }
    if (curl_easy_setopt(s->easy, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
        curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->list) != CURLE_OK ||
        curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)s->request_len) !=
            CURLE_OK ||
        curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, s->request) != CURLE_OK)
        return -ENOMEM;
    return 0;
}

/* The incident's ticket link when one is stored: then it was filed, and is never filed again.
 * ret_url "" when none; -EIO when the database cannot say (the row is retried). */
static int ticket_filed(notify_t *self, uint64_t incident_id, char *ret_url, size_t len)
{
    char id[24];
    snprintf(id, sizeof(id), "%" PRIu64, incident_id);
    const char *params[] = {id};
    PGresult *res = db_exec(self, "SELECT url FROM incident_tickets WHERE incident_id = $1::bigint",
                            1, params, "looking up a ticket");
    if (!res)
        return -EIO;
    snprintf(ret_url, len, "%s", PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
    return 0;
}

/* Starts the row's send in slot s. A row that cannot be sent is recorded at once. */
static void start(notify_t *self, struct send *s, const struct row *row)
{
    char why[ERROR_MAX] = "out of memory", sms_url[1400];
    const char *url = NULL;
    int r;

    s->busy = true;
    s->id = row->id;
    s->incident_id = row->incident_id;
    s->attempts = row->attempts;
    snprintf(s->target, sizeof(s->target), "%s", row->target);
    for (char *p = s->target; *p; p++) /* a key=value log line: no spaces or quotes */
        if (*p <= ' ' || *p == '"' || *p == '=' || (unsigned char)*p >= 0x7F)
            *p = '_';
    if (paging_channel_parse(row->channel, &s->channel) < 0) { /* the table's CHECK forbids it */
        s->channel = PAGING_CHANNEL_WEBHOOK;
        error_text(why, sizeof(why), "unknown channel \"%.32s\"", row->channel);
        r = -EINVAL;
        goto err_record;
    }
    if (s->channel == PAGING_CHANNEL_TICKET) {
        char filed[1024];
        r = ticket_filed(self, row->incident_id, filed, sizeof(filed));
        if (r < 0) {
            error_text(why, sizeof(why), "cannot tell whether the ticket was filed already");
            goto err_record;
        }
        if (filed[0]) { /* the stored link says it was filed: never twice */
            error_text(why, sizeof(why), "filed already: %.200s", filed);
            record(self, s, NOTIFY_SENT, 0, 0, why);
            send_clear(self, s);
            return;
        }
    }
    s->easy = curl_easy_init();
    if (!s->easy) {
        r = -ENOMEM;
        goto err_record;
    }
    if (s->channel == PAGING_CHANNEL_EMAIL) {
        r = prepare_email(self, s, row, why, sizeof(why));
    } else if (s->channel == PAGING_CHANNEL_SMS) {
        r = prepare_sms(self, s, row, sms_url, sizeof(sms_url), why, sizeof(why));
        url = sms_url;
    } else if (s->channel == PAGING_CHANNEL_TICKET) {
        r = prepare_ticket(self, s, row, why, sizeof(why));
        url = self->ticket_url;
    } else {
        r = prepare_http(self, s, row, &url, why, sizeof(why));
    }
    if (r < 0)
        goto err_record;
    if ((url && curl_easy_setopt(s->easy, CURLOPT_URL, url) != CURLE_OK) ||
        curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, (long)self->timeout_ms) != CURLE_OK ||
        curl_easy_setopt(s->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)self->timeout_ms) != CURLE_OK ||
        curl_easy_setopt(s->easy, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
        curl_easy_setopt(s->easy, CURLOPT_USERAGENT, "vigil-coordinator/" VIGIL_VERSION) !=
            CURLE_OK ||
        curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, keep_response) != CURLE_OK ||
        curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, s) != CURLE_OK ||
        curl_easy_setopt(s->easy, CURLOPT_ERRORBUFFER, s->errbuf) != CURLE_OK ||
        curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s) != CURLE_OK ||
        curl_multi_add_handle(self->multi, s->easy) != CURLM_OK) {
        r = -ENOMEM;
        goto err_record;
    }
    self->inflight++;
    return;

err_record:
    /* Memory (or the database) may come back; anything else will not get better by waiting. */
    if (r == -ENOMEM || r == -EIO)
        record(self, s, NOTIFY_RETRY, 0,
               notify_backoff_ms(self->backoff_ms, self->max_backoff_ms, s->attempts, 0.5), why);
    else
        record(self, s, NOTIFY_FAILED, 0, 0, why);
    send_clear(self, s);
}

/* Claims up to the free slots' worth of due rows and starts them. */
static void claim(notify_t *self)
{
    int free_slots = self->concurrency - self->inflight;
    char limit[16], lease[24];
    snprintf(limit, sizeof(limit), "%d", free_slots);
    snprintf(lease, sizeof(lease), "%" PRId64, self->timeout_ms + NOTIFY_LEASE_MARGIN_MS);
    const char *params[] = {limit, lease};
    PGresult *res = db_exec(
        self,
        "WITH due AS (SELECT id FROM notifications"
        "  WHERE status IN ('pending', 'sending') AND next_attempt_at <= now()"
        "  ORDER BY next_attempt_at, id LIMIT $1::integer FOR UPDATE SKIP LOCKED)"
        " UPDATE notifications n SET status = 'sending', attempts = n.attempts + 1,"
        "  next_attempt_at = now() + $2::bigint * interval '1 millisecond'"
        " FROM due WHERE n.id = due.id"
        " RETURNING n.id, n.incident_id, n.channel, n.target, n.address, n.event, n.subject,"
        "  n.body, n.payload::text, n.attempts",
        2, params, "claiming due notifications");
    if (!res)
        return;
    int n = PQntuples(res);
    self->more_due = n == free_slots;
    for (int i = 0, slot = 0; i < n; i++) {
        while (slot < self->concurrency && self->sends[slot].busy)
            slot++;
        if (slot == self->concurrency) /* cannot happen: n <= free slots */
            break;
        struct row row = {
            .id = strtoull(PQgetvalue(res, i, 0), NULL, 10),
            .incident_id = strtoull(PQgetvalue(res, i, 1), NULL, 10),
            .channel = PQgetvalue(res, i, 2),
            .target = PQgetvalue(res, i, 3),
            .address = PQgetvalue(res, i, 4),
            .event = PQgetvalue(res, i, 5),
            .subject = PQgetvalue(res, i, 6),
            .body = PQgetvalue(res, i, 7),
            .payload = PQgetvalue(res, i, 8),
            .attempts = (int)strtol(PQgetvalue(res, i, 9), NULL, 10),
        };
        start(self, &self->sends[slot], &row);
    }
    PQclear(res);
}

/* A ticket the tracker created: the row sent, the link stored and on the timeline, in one
 * statement (a crash cannot store one without the other). An answer without a link is sent all
 * the same (the tracker has the issue), with why in last_error. */
static void record_ticket(notify_t *self, struct send *s, long code)
{
    char *url = NULL, *key = NULL, why[ERROR_MAX] = "";
    char id[24], code_text[24], attempts[16];
    if (s->answer_cut ||
        notify_ticket_link(self->ticket_kind, self->ticket_base_url, s->answer, &url, &key) < 0) {
        error_text(why, sizeof(why), "filed, but the answer names no issue: %.200s", s->response);
        record(self, s, NOTIFY_SENT, code, 0, why);
        return;
    }
    snprintf(id, sizeof(id), "%" PRIu64, s->id);
    snprintf(code_text, sizeof(code_text), "%ld", code);
    snprintf(attempts, sizeof(attempts), "%d", s->attempts);
    const char *params[] = {id, attempts, code_text, self->ticket_kind, url, key};
    PGresult *res = db_exec(
        self,
        "WITH sent AS (UPDATE notifications SET status = 'sent', last_code = $3, last_error = '',"
        "   sent_at = now() WHERE id = $1 AND attempts = $2 AND status = 'sending'"
        "   RETURNING id, incident_id),"
        " filed AS (INSERT INTO incident_tickets"
        "   (incident_id, tracker, url, issue_key, notification_id, filed_at)"
        "   SELECT incident_id, $4, $5, $6, id, now() FROM sent"
        "   ON CONFLICT (incident_id) DO NOTHING RETURNING incident_id)"
        " INSERT INTO incident_events (incident_id, at, kind, actor, text, data)"
        " SELECT incident_id, now(), 'note', 'vigil', 'ticket filed: ' || $5,"
        "  jsonb_build_object('ticket', $5::text, 'tracker', $4::text, 'issue', $6::text)"
        " FROM filed",
        6, params, "recording a ticket");
    PQclear(res);
    snprintf(s->note, sizeof(s->note), "ticket=%.180s", url);
    for (char *p = s->note; *p; p++)
        if (*p <= ' ' || *p == '"' || (unsigned char)*p >= 0x7F)
            *p = '_';
    record_told(s, NOTIFY_SENT, code, "", "");
    free(url);
    free(key);
}

/* Twilio's message sid from its answer, for the log line. */
static void sms_note(struct send *s)
{
    json_error_t jerr;
    json_t *root = s->answer ? json_loads(s->answer, 0, &jerr) : NULL;
    const char *sid = json_string_value(json_object_get(root, "sid"));
    snprintf(s->note, sizeof(s->note), "sid=%.64s", sid && sid[0] ? sid : "-");
    for (char *p = s->note + 4; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
            *p = '_';
    json_decref(root);
}

/* What a finished transfer means, and records it. */
static void finish(notify_t *self, struct send *s, CURLcode result)
{
    char why[ERROR_MAX] = "";
    long code = 0;
    enum notify_verdict verdict;
    curl_off_t retry_after = 0;

    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
    if (s->channel == PAGING_CHANNEL_EMAIL) {
        /* libcurl fails the transfer on a refused MAIL, RCPT or DATA; the reply code says
         * whether that is for good (5xx) or for now (4xx). */
        verdict = result == CURLE_OK ? NOTIFY_SENT : notify_smtp_verdict(code);
        if (result == CURLE_OK && code == 0)
            code = 250;
    } else if (result == CURLE_OK) {
        verdict = notify_http_verdict(code);
        if (code == 429 || code == 503)
            curl_easy_getinfo(s->easy, CURLINFO_RETRY_AFTER, &retry_after);
    } else {
        verdict = NOTIFY_RETRY;
    }
    /* An address libcurl cannot use will not become usable by waiting. */
    if (result == CURLE_UNSUPPORTED_PROTOCOL || result == CURLE_URL_MALFORMAT)
        verdict = NOTIFY_FAILED;

    if (result != CURLE_OK)
        error_text(why, sizeof(why), "%s%s%s", curl_easy_strerror(result), s->errbuf[0] ? ": " : "",
                   s->errbuf);
    else if (verdict != NOTIFY_SENT) /* the receiver's own words, first 200 bytes */
        error_text(why, sizeof(why), "HTTP %ld%s%.200s", code, s->response_len ? ": " : "",
                   s->response);
    if (verdict == NOTIFY_RETRY && s->attempts >= self->max_attempts) {
        verdict = NOTIFY_FAILED;
        size_t len = strlen(why);
        snprintf(why + len, sizeof(why) - len, " (after %d attempts)", s->attempts);
    }
    if (verdict == NOTIFY_SENT && s->channel == PAGING_CHANNEL_TICKET) {
        record_ticket(self, s, code);
        return;
    }
    if (verdict == NOTIFY_SENT && s->channel == PAGING_CHANNEL_SMS)
        sms_note(s);
    int64_t delay = 0;
    if (verdict == NOTIFY_RETRY) {
        double unit = (double)randombytes_uniform(1u << 24) / (double)(1u << 24);
        delay = notify_backoff_ms(self->backoff_ms, self->max_backoff_ms, s->attempts, unit);
        /* A receiver that says when to come back is believed, up to the cap. */
        if (retry_after > 0 && retry_after * 1000 > delay)
            delay = retry_after * 1000 < self->max_backoff_ms ? retry_after * 1000
                                                              : self->max_backoff_ms;
    }
    record(self, s, verdict, code, delay, why);
}

/* A transfer finished (vg_curl_multi_step's done hook): records it and frees its slot. */
static void transfer_done(void *userdata, CURL *easy, CURLcode result)
{
    notify_t *self = userdata;
    char *priv = NULL;

    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
    struct send *s = (struct send *)priv;
    if (!s)
        return;
    finish(self, s, result);
    send_clear(self, s);
    self->inflight--;
    if (self->more_due) { /* look again now a slot is free */
        self->more_due = false;
        self->look_now = true;
    }
}

/* On stop: rows in flight go back as due now; whether the receiver got them is unknown. */
static void abandon(notify_t *self)
{
    char *ids = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&ids, &len);
    if (!out)
        return;
    fputc('{', out);
    int n = 0;
    for (int i = 0; i < self->concurrency; i++) {
        struct send *s = &self->sends[i];
        if (!s->busy)
            continue;
        fprintf(out, "%s%" PRIu64, n++ ? "," : "", s->id);
        send_clear(self, s);
    }
    fputc('}', out);
    if (fclose(out) == 0 && n > 0 && self->db.conn) {
        const char *params[] = {ids};
        PQclear(db_exec(self,
                        "UPDATE notifications SET status = 'pending', next_attempt_at = now(),"
                        " last_error = 'interrupted: the notifier stopped mid-send'"
                        " WHERE id = ANY($1::bigint[]) AND status = 'sending'",
                        1, params, "releasing notifications in flight"));
        vg_log(VG_LOG_INFO, "notify: stopped with %d send%s in flight; due again now", n,
               n == 1 ? "" : "s");
    }
    self->inflight = 0;
    free(ids);
}

static void *notify_thread(void *arg)
{
    notify_t *self = arg;
    const struct vg_curl_hooks hooks = {.cancel_fd = -1, .done = transfer_done, .userdata = self};

    for (;;) {
        pthread_mutex_lock(&self->lock);
        bool stop = self->stop;
        bool kicked = self->kicked;
        self->kicked = false;
        pthread_mutex_unlock(&self->lock);
        if (stop)
            break;

        int64_t now = vg_mono_ms();
        self->look_now |= kicked;
        if ((self->look_now || now >= self->next_look_ms) && self->inflight < self->concurrency) {
            self->look_now = false;
            claim(self);
            if (self->more_due) {
                self->next_look_ms = now;
            } else {
                /* Rows due but not claimable (locked by another transaction) must not spin. */
                int64_t due_in = queue_stats(self);
                self->next_look_ms = now + (due_in < MIN_LOOK_MS ? MIN_LOOK_MS : due_in);
            }
            if (!self->db.conn) /* the database is away: try again at the next tick */
                self->next_look_ms = now + TICK_MS;
        }
        int64_t wait = TICK_MS;
        if (self->inflight < self->concurrency) {
            wait = self->look_now ? 0 : self->next_look_ms - vg_mono_ms();
            wait = wait < 0 ? 0 : wait > TICK_MS ? TICK_MS : wait;
        }
        /* Sends make progress and finished ones are recorded (transfer_done). Only when none
         * finished does it wait, and returns early on traffic, on curl's own timers, and on
         * curl_multi_wakeup (notify_kick, notify_destroy). */
        vg_curl_multi_step(self->multi, &hooks, wait, NULL);
    }
    abandon(self);
    return NULL;
}
