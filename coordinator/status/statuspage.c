/*
 * The status page's model and its three renderings (statuspage.h). Nothing here reads the
 * clock or the store except statuspage_load, so the renderings are tested on fixed models.
 */
#include "statuspage.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "runbook.h"
#include "runbook_load.h"

#define SUB_KEY(field_, path_, type_, max_, def_, req_, help_)                                     \
    {                                                                                              \
        .path = (path_), .type = (type_),                                                          \
        .offset = offsetof(struct status_component_config, field_), .max = (max_), .def = (def_),  \
        .required = (req_), .help = (help_)                                                        \
    }

const struct vg_cfg_key status_component_keys[] = {
    SUB_KEY(name, "name", VG_CFG_STRING, STATUSPAGE_NAME_MAX, NULL, true,
            "the component's public name"),
    SUB_KEY(description, "description", VG_CFG_STRING, 512, "", false, "one line under its name"),
    SUB_KEY(runbooks, "runbooks", VG_CFG_STRINGS, 64, NULL, false,
            "runbook ids whose incidents affect it"),
};
const size_t status_component_nkeys =
    sizeof(status_component_keys) / sizeof(status_component_keys[0]);

#define DAY_MS (INT64_C(24) * 3600 * 1000)
#define STATUSPAGE_ROWS_MAX 5000u

int statuspage_config_check(const struct status_page_config *cfg, const char *path, char *err,
                            size_t errlen)
{
    size_t n = cfg->components.count;
    for (size_t i = 0; i < n; i++) {
        const struct status_component_config *c =
            VG_CFG_ITEM(cfg->components, struct status_component_config, i);
        if (!c->name || !c->name[0]) {
            snprintf(err, errlen, "%s: \"status_page.components[%zu].name\": must not be empty",
                     path, i);
            return -EINVAL;
        }
        for (size_t k = 0; k < i; k++) {
            const struct status_component_config *o =
                VG_CFG_ITEM(cfg->components, struct status_component_config, k);
            if (strcmp(o->name, c->name) == 0) {
                snprintf(err, errlen,
                         "%s: \"status_page.components[%zu].name\": \"%s\" is already the name "
                         "of components[%zu]",
                         path, i, c->name, k);
                return -EINVAL;
            }
        }
    }
    return 0;
}

size_t statuspage_check_runbooks(const struct status_page_config *cfg, const struct rb_set *set)
{
    size_t unknown = 0;
    if (!set || set->n == 0)
        return 0;
    for (size_t i = 0; i < cfg->components.count; i++) {
        const struct status_component_config *c =
            VG_CFG_ITEM(cfg->components, struct status_component_config, i);
        for (size_t k = 0; k < c->runbooks.count; k++) {
            if (runbooks_find(set, c->runbooks.items[k]))
                continue;
            vg_log(VG_LOG_WARN,
                   "status page: component \"%s\" names runbook %s, which is not loaded: its "
                   "incidents will not mark the component",
                   c->name, c->runbooks.items[k]);
            unknown++;
        }
    }
    return unknown;
}

static const char *const status_names[] = {"operational", "degraded_performance", "partial_outage",
                                           "major_outage"};
static const char *const status_labels[] = {"Operational", "Degraded performance", "Partial outage",
                                            "Major outage"};

const char *statuspage_status_name(enum sp_status s)
{
    return (unsigned)s < 4 ? status_names[s] : "operational";
}

int statuspage_status_parse(const char *text, enum sp_status *ret)
{
    if (!text)
        return -EINVAL;
    if (strcmp(text, "degraded") == 0) {
        *ret = SP_DEGRADED;
        return 0;
    }
    for (unsigned i = 1; i < 4; i++) {
        if (strcmp(text, status_names[i]) == 0) {
            *ret = (enum sp_status)i;
            return 0;
        }
    }
    return -EINVAL;
}

/* The public name of an incident's state when an update was posted. */
static const char *update_status(enum incident_state state)
{
    switch (state) {
    case INCIDENT_STATE_ACKNOWLEDGED:
        return "identified";
    case INCIDENT_STATE_MITIGATED:
        return "monitoring";
    case INCIDENT_STATE_RESOLVED:
    case INCIDENT_STATE_CLOSED:
        return "resolved";
    default:
        return "investigating";
    }
}

static const char *impact_of(enum sp_status worst, bool any)
{
    if (!any)
        return "none";
    switch (worst) {
    case SP_MAJOR_OUTAGE:
        return "critical";
    case SP_PARTIAL_OUTAGE:
        return "major";
    default:
        return "minor";
    }
}

/* ---- the model ---- */

void statuspage_begin(struct sp_page *page, const struct status_page_config *cfg)
{
    memset(page, 0, sizeof(*page));
    page->name = cfg->name ? cfg->name : "Service status";
    page->url = cfg->url ? cfg->url : "";
}

static void free_incident(struct sp_incident *inc)
{
    for (size_t i = 0; i < inc->nupdates; i++) {
        free(inc->updates[i].body);
        free(inc->updates[i].components_json);
    }
    free(inc->updates);
    for (size_t i = 0; i < inc->ncomponents; i++)
        free(inc->component_names[i]);
    free(inc->component_names);
    free(inc->component_status);
    free(inc->name);
}

void statuspage_free(struct sp_page *page)
{
    if (!page)
        return;
    for (size_t i = 0; i < page->nincidents; i++)
        free_incident(&page->incidents[i]);
    free(page->incidents);
    free(page->components);
    memset(page, 0, sizeof(*page));
}

int statuspage_add_row(const struct store_status_row *row, void *userdata)
{
    struct sp_page *page = userdata;
    struct sp_incident *inc = page->nincidents ? &page->incidents[page->nincidents - 1] : NULL;
    if (!inc || inc->id != row->incident_id) {
        struct sp_incident *grown =
            realloc(page->incidents, (page->nincidents + 1) * sizeof(*grown));
        if (!grown)
            return -ENOMEM;
        page->incidents = grown;
        inc = &page->incidents[page->nincidents++];
        memset(inc, 0, sizeof(*inc));
        inc->id = row->incident_id;
        inc->open = incident_state_open(row->state);
        inc->created_at_ms = row->opened_at_ms;
        inc->resolved_at_ms = inc->open ? 0 : row->resolved_at_ms;
        /* Named by the operators' updates only (the first public one always carries a name:
         * admin/steer.c); never by anything internal. */
        inc->name = strdup(STATUSPAGE_UNNAMED);
        if (!inc->name)
            return -ENOMEM;
    }
    if (row->title && row->title[0]) {
        char *name = strdup(row->title);
        if (!name)
            return -ENOMEM;
        free(inc->name);
        inc->name = name;
    }
    struct sp_update *grown = realloc(inc->updates, (inc->nupdates + 1) * sizeof(*grown));
    if (!grown)
        return -ENOMEM;
    inc->updates = grown;
    struct sp_update *u = &inc->updates[inc->nupdates];
    memset(u, 0, sizeof(*u));
    u->id = row->update_id;
    u->at_ms = row->at_ms;
    u->status = update_status(row->update_state);
    u->body = strdup(row->body);
    u->components_json = strdup(row->components_json);
    if (!u->body || !u->components_json) {
        free(u->body);
        free(u->components_json);
        return -ENOMEM;
    }
    inc->nupdates++;
    if (row->at_ms > inc->updated_at_ms)
        inc->updated_at_ms = row->at_ms;
    return 0;
}

/* The components of the incident's latest update that are configured, with their state. */
static int incident_components(struct sp_incident *inc, const struct status_page_config *cfg)
{
    if (inc->nupdates == 0)
        return 0;
    json_t *map = json_loads(inc->updates[inc->nupdates - 1].components_json, 0, NULL);
    const char *name;
    json_t *v;
    size_t n = json_is_object(map) ? json_object_size(map) : 0;
    inc->component_names = calloc(n ? n : 1, sizeof(char *));
    inc->component_status = calloc(n ? n : 1, sizeof(enum sp_status));
    if (!inc->component_names || !inc->component_status) {
        json_decref(map);
        return -ENOMEM;
    }
    json_object_foreach(map, name, v)
    {
        enum sp_status st;
        bool configured = false;
        for (size_t i = 0; i < cfg->components.count && !configured; i++)
            configured =
                strcmp(VG_CFG_ITEM(cfg->components, struct status_component_config, i)->name,
                       name) == 0;
        if (!configured || statuspage_status_parse(json_string_value(v), &st) < 0)
            continue;
        inc->component_names[inc->ncomponents] = strdup(name);
        if (!inc->component_names[inc->ncomponents])
            break;
        inc->component_status[inc->ncomponents++] = st;
    }
    json_decref(map);
    return 0;
}

static int open_first(const void *a, const void *b)
{
    const struct sp_incident *x = a, *y = b;
    if (x->open != y->open)
        return x->open ? -1 : 1;
    return x->id < y->id ? 1 : x->id > y->id ? -1 : 0;
}

void statuspage_finish(struct sp_page *page, const struct status_page_config *cfg, int64_t now_ms)
{
    if (page->nincidents > 1)
        qsort(page->incidents, page->nincidents, sizeof(*page->incidents), open_first);
    size_t nc = cfg->components.count;
    page->components = calloc(nc ? nc : 1, sizeof(*page->components));
    page->ncomponents = page->components ? nc : 0;
    for (size_t i = 0; i < page->ncomponents; i++) {
        const struct status_component_config *c =
            VG_CFG_ITEM(cfg->components, struct status_component_config, i);
        page->components[i].name = c->name;
        page->components[i].description = c->description ? c->description : "";
    }
    page->updated_at_ms = 0;
    for (size_t i = 0; i < page->nincidents; i++) {
        struct sp_incident *inc = &page->incidents[i];
        incident_components(inc, cfg);
        enum sp_status worst = SP_OPERATIONAL;
        for (size_t k = 0; k < inc->ncomponents; k++) {
            if (inc->component_status[k] > worst)
                worst = inc->component_status[k];
            for (size_t j = 0; inc->open && j < page->ncomponents; j++) {
                struct sp_component *c = &page->components[j];
                if (strcmp(c->name, inc->component_names[k]) != 0)
                    continue;
                if (inc->component_status[k] > c->status)
                    c->status = inc->component_status[k];
                if (inc->updated_at_ms > c->updated_at_ms)
                    c->updated_at_ms = inc->updated_at_ms;
            }
        }
        inc->impact = impact_of(worst, inc->ncomponents > 0);
        inc->status =
            inc->open ? (inc->nupdates ? inc->updates[inc->nupdates - 1].status : "investigating")
                      : "resolved";
        if (!inc->open && inc->resolved_at_ms > inc->updated_at_ms)
            inc->updated_at_ms = inc->resolved_at_ms;
        if (inc->updated_at_ms > page->updated_at_ms)
            page->updated_at_ms = inc->updated_at_ms;
    }
    if (page->updated_at_ms == 0)
        page->updated_at_ms = now_ms;
}

int statuspage_load(store_incidents_t *store, const struct status_page_config *cfg, int64_t now_ms,
                    struct sp_page *page)
{
    statuspage_begin(page, cfg);
    int r = store_status_rows(store, now_ms - STATUSPAGE_HISTORY_DAYS * DAY_MS, STATUSPAGE_ROWS_MAX,
                              statuspage_add_row, page);
    if (r < 0) {
        statuspage_free(page);
        return r;
    }
    statuspage_finish(page, cfg, now_ms);
    return 0;
}

/* ---- shared by the renderings ---- */

static void iso_time(int64_t ms, char *buf, size_t size)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&secs, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, size, "1970-01-01T00:00:00Z");
}

static void human_time(int64_t ms, char *buf, size_t size)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&secs, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M UTC", &tm) == 0)
        snprintf(buf, size, "-");
}

/* The overall indicator: the worst component, or minor while an incident is open. */
static void overall(const struct sp_page *page, const char **ret_indicator,
                    const char **ret_description)
{
    enum sp_status worst = SP_OPERATIONAL;
    bool open = false;
    for (size_t i = 0; i < page->ncomponents; i++)
        if (page->components[i].status > worst)
            worst = page->components[i].status;
    for (size_t i = 0; i < page->nincidents; i++)
        open = open || page->incidents[i].open;
    switch (worst) {
    case SP_MAJOR_OUTAGE:
        *ret_indicator = "critical";
        *ret_description = "Major System Outage";
        return;
    case SP_PARTIAL_OUTAGE:
        *ret_indicator = "major";
        *ret_description = "Partial System Outage";
        return;
    case SP_DEGRADED:
        *ret_indicator = "minor";
        *ret_description = "Minor Service Outage";
        return;
    default:
        break;
    }
    *ret_indicator = open ? "minor" : "none";
    *ret_description = open ? "Service Disruption" : "All Systems Operational";
}

/* A component's id: its name in lower case, anything but letters and digits as '-'. */
static void component_id(const char *name, char *buf, size_t size)
{
    size_t n = 0;
    for (const char *p = name; *p && n + 1 < size; p++) {
        char c = *p;
        buf[n++] = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ? c
                   : (c >= 'A' && c <= 'Z')                         ? (char)(c - 'A' + 'a')
                                                                    : '-';
    }
    buf[n] = '\0';
}

/* ---- HTML ---- */

size_t statuspage_html_escape(const char *text, char *buf, size_t size)
{
    size_t n = 0;
    bool fits = true;
    for (const char *p = text ? text : ""; *p; p++) {
        const char *rep = NULL;
        switch (*p) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        default:
            break;
        }
        size_t len = rep ? strlen(rep) : 1;
        if (fits && n + len < size)
            memcpy(buf + n, rep ? rep : p, len);
        else
            fits = false;
        n += len;
    }
    if (size > 0) {
        size_t end = fits ? n : 0;
        /* cut: everything or nothing, never half an entity */
        buf[end < size ? end : size - 1] = '\0';
    }
    return n;
}

struct html {
    char *text;
    size_t len, cap;
    bool failed;
};

static void grow(struct html *h, size_t more)
{
    if (h->failed || h->len + more + 1 <= h->cap)
        return;
    size_t cap = h->cap ? h->cap : 8192;
    while (cap < h->len + more + 1)
        cap *= 2;
    char *grown = realloc(h->text, cap);
    if (!grown) {
        h->failed = true;
        return;
    }
    h->text = grown;
    h->cap = cap;
}

static __attribute__((format(printf, 2, 3))) void put(struct html *h, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        h->failed = true;
        return;
    }
    grow(h, (size_t)n);
    if (h->failed)
        return;
    va_start(ap, fmt);
    vsnprintf(h->text + h->len, h->cap - h->len, fmt, ap);
    va_end(ap);
    h->len += (size_t)n;
}

/* Text from operators and configuration: always through here. */
static void put_text(struct html *h, const char *text)
{
    size_t need = statuspage_html_escape(text, NULL, 0);
    grow(h, need);
    if (h->failed)
        return;
    statuspage_html_escape(text, h->text + h->len, h->cap - h->len);
    h->len += need;
}

static const char CSS[] =
    "*{box-sizing:border-box}"
    "body{margin:0;font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;"
    "color:#1f2328;background:#f6f8fa}"
    "main{max-width:760px;margin:0 auto;padding:16px}"
    "h1{font-size:1.6rem;margin:8px 0 16px;overflow-wrap:anywhere}"
    "h2{font-size:1.15rem;margin:28px 0 8px}"
    "h3{font-size:1.05rem;margin:0 0 4px;overflow-wrap:anywhere}"
    ".overall{padding:14px 16px;border-radius:6px;color:#fff;font-weight:600;margin:0}"
    ".overall-none{background:#1a7f37}.overall-minor{background:#bf8700}"
    ".overall-major{background:#d1590b}.overall-critical{background:#cf222e}"
    "ul.components{list-style:none;margin:0;padding:0;background:#fff;border:1px solid #d0d7de;"
    "border-radius:6px}"
    "ul.components li{display:flex;flex-wrap:wrap;justify-content:space-between;gap:4px 12px;"
    "padding:12px 16px;border-top:1px solid #d0d7de}"
    "ul.components li:first-child{border-top:0}"
    ".cname{font-weight:600;overflow-wrap:anywhere;min-width:0}"
    ".desc{flex-basis:100%;margin:0;color:#59636e;font-size:.9rem;overflow-wrap:anywhere}"
    ".st{font-size:.9rem;white-space:nowrap}"
    ".st-operational{color:#1a7f37}.st-degraded_performance{color:#9a6700}"
    ".st-partial_outage{color:#bc4c00}.st-major_outage{color:#cf222e}"
    "article{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:12px 16px;"
    "margin:0 0 12px}"
    ".meta{margin:0 0 8px;color:#59636e;font-size:.9rem}"
    "ol.updates{list-style:none;margin:0;padding:0}"
    "ol.updates li{padding:8px 0;border-top:1px solid #eaeef2}"
    "ol.updates p{margin:2px 0 0;overflow-wrap:anywhere;white-space:pre-wrap}"
    "time{color:#59636e;font-size:.85rem}"
    ".none{color:#59636e}"
    "footer{margin:32px 0 8px;color:#59636e;font-size:.85rem}"
    "a{color:#0969da}";

static void put_incident(struct html *h, const struct sp_incident *inc)
{
    char at[40];
    put(h, "<article class=\"incident\" id=\"incident-%" PRIu64 "\"><h3>", inc->id);
    put_text(h, inc->name);
    put(h, "</h3><p class=\"meta\">");
    if (inc->open) {
        human_time(inc->created_at_ms, at, sizeof(at));
        put(h, "Since %s", at);
    } else {
        human_time(inc->resolved_at_ms ? inc->resolved_at_ms : inc->updated_at_ms, at, sizeof(at));
        put(h, "Resolved %s", at);
    }
    if (inc->ncomponents > 0) {
        put(h, " · Affects ");
        for (size_t k = 0; k < inc->ncomponents; k++) {
            put(h, "%s", k ? ", " : "");
            put_text(h, inc->component_names[k]);
        }
    }
    put(h, "</p><ol class=\"updates\">");
    /* Newest first, and the resolution when no update said it. */
    if (!inc->open &&
        (inc->nupdates == 0 || strcmp(inc->updates[inc->nupdates - 1].status, "resolved") != 0)) {
        human_time(inc->resolved_at_ms ? inc->resolved_at_ms : inc->updated_at_ms, at, sizeof(at));
        put(h,
            "<li><strong>Resolved</strong> <time>%s</time>"
            "<p>This incident has been resolved.</p></li>",
            at);
    }
    for (size_t k = inc->nupdates; k-- > 0;) {
        const struct sp_update *u = &inc->updates[k];
        human_time(u->at_ms, at, sizeof(at));
        char label[16];
        snprintf(label, sizeof(label), "%s", u->status);
        label[0] = (char)(label[0] - 'a' + 'A');
        put(h, "<li><strong>%s</strong> <time>%s</time><p>", label, at);
        put_text(h, u->body);
        put(h, "</p></li>");
    }
    put(h, "</ol></article>");
}

char *statuspage_html(const struct sp_page *page, int64_t now_ms)
{
    struct html h = {0};
    const char *indicator, *description;
    char at[40];
    size_t open = 0;

    overall(page, &indicator, &description);
    put(&h, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<title>");
    put_text(&h, page->name);
    put(&h, "</title><style>%s</style></head><body><main><h1>", CSS);
    put_text(&h, page->name);
    put(&h, "</h1><p class=\"overall overall-%s\" id=\"overall\">%s</p>", indicator, description);

    put(&h, "<section><h2>Components</h2>");
    if (page->ncomponents == 0)
        put(&h, "<p class=\"none\">No components are configured.</p>");
    else
        put(&h, "<ul class=\"components\">");
    for (size_t i = 0; i < page->ncomponents; i++) {
        const struct sp_component *c = &page->components[i];
        put(&h, "<li><span class=\"cname\">");
        put_text(&h, c->name);
        put(&h, "</span><span class=\"st st-%s\">%s</span>", statuspage_status_name(c->status),
            status_labels[c->status]);
        if (c->description && c->description[0]) {
            put(&h, "<p class=\"desc\">");
            put_text(&h, c->description);
            put(&h, "</p>");
        }
        put(&h, "</li>");
    }
    if (page->ncomponents > 0)
        put(&h, "</ul>");
    put(&h, "</section><section id=\"active\"><h2>Active incidents</h2>");
    for (size_t i = 0; i < page->nincidents; i++) {
        if (page->incidents[i].open) {
            put_incident(&h, &page->incidents[i]);
            open++;
        }
    }
    if (open == 0)
        put(&h, "<p class=\"none\">No active incidents.</p>");
    put(&h, "</section><section id=\"history\"><h2>Past incidents (last %d days)</h2>",
        STATUSPAGE_HISTORY_DAYS);
    if (open == page->nincidents)
        put(&h, "<p class=\"none\">No incidents in the last %d days.</p>", STATUSPAGE_HISTORY_DAYS);
    for (size_t i = 0; i < page->nincidents; i++)
        if (!page->incidents[i].open)
            put_incident(&h, &page->incidents[i]);
    human_time(now_ms, at, sizeof(at));
    put(&h,
        "</section><footer>Updated %s · <a href=\"api/v2/summary.json\">JSON</a>"
        "</footer></main></body></html>\n",
        at);
    if (h.failed) {
        free(h.text);
        return NULL;
    }
    return h.text;
}

/* ---- JSON (Statuspage v2) ---- */

static json_t *time_json(int64_t ms)
{
    char buf[40];
    if (ms <= 0)
        return json_null();
    iso_time(ms, buf, sizeof(buf));
    return json_string(buf);
}

static json_t *page_json(const struct sp_page *page)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:o}", "id", "vigil", "name", page->name, "url",
                     page->url, "time_zone", "Etc/UTC", "updated_at",
                     time_json(page->updated_at_ms));
}

static json_t *status_json(const struct sp_page *page)
{
    const char *indicator, *description;
    overall(page, &indicator, &description);
    return json_pack("{s:s, s:s}", "indicator", indicator, "description", description);
}

static json_t *component_json(const struct sp_page *page, size_t i)
{
    const struct sp_component *c = &page->components[i];
    char id[STATUSPAGE_NAME_MAX + 1];
    component_id(c->name, id, sizeof(id));
    return json_pack("{s:s, s:s, s:s, s:o, s:o, s:I, s:s*, s:b, s:n, s:n, s:s, s:b, s:b}", "id", id,
                     "name", c->name, "status", statuspage_status_name(c->status), "created_at",
                     time_json(page->updated_at_ms), "updated_at",
                     time_json(c->updated_at_ms ? c->updated_at_ms : page->updated_at_ms),
                     "position", (json_int_t)i + 1, "description",
                     c->description && c->description[0] ? c->description : NULL, "showcase", 1,
                     "start_date", "group_id", "page_id", "vigil", "group", 0,
                     "only_show_if_degraded", 0);
}

static json_t *update_json(const struct sp_incident *inc, size_t k)
{
    const struct sp_update *u = &inc->updates[k];
    char id[24], inc_id[24], cid[STATUSPAGE_NAME_MAX + 1];
    snprintf(id, sizeof(id), "%" PRIu64, u->id);
    snprintf(inc_id, sizeof(inc_id), "%" PRIu64, inc->id);
    json_t *affected = json_array();
    json_t *now = json_loads(u->components_json, 0, NULL);
    json_t *before = k > 0 ? json_loads(inc->updates[k - 1].components_json, 0, NULL) : NULL;
    const char *name;
    json_t *v;
    json_object_foreach(now, name, v)
    {
        const char *old = json_string_value(json_object_get(before, name));
        enum sp_status st;
        if (statuspage_status_parse(json_string_value(v), &st) < 0)
            continue;
        component_id(name, cid, sizeof(cid));
        json_array_append_new(affected, json_pack("{s:s, s:s, s:s, s:s}", "code", cid, "name", name,
                                                  "old_status", old ? old : "operational",
                                                  "new_status", statuspage_status_name(st)));
    }
    json_decref(now);
    json_decref(before);
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:b, s:n, s:n}", "id", id, "status",
                     u->status, "body", u->body, "incident_id", inc_id, "created_at",
                     time_json(u->at_ms), "updated_at", time_json(u->at_ms), "display_at",
                     time_json(u->at_ms), "affected_components", affected, "deliver_notifications",
                     1, "custom_tweet", "tweet_id");
}

static json_t *incident_json(const struct sp_page *page, const struct sp_incident *inc)
{
    char id[24];
    snprintf(id, sizeof(id), "%" PRIu64, inc->id);
    json_t *updates = json_array();
    for (size_t k = inc->nupdates; k-- > 0;) /* newest first, as Statuspage lists them */
        json_array_append_new(updates, update_json(inc, k));
    json_t *components = json_array();
    for (size_t k = 0; k < inc->ncomponents; k++) {
        for (size_t j = 0; j < page->ncomponents; j++)
            if (strcmp(page->components[j].name, inc->component_names[k]) == 0)
                json_array_append_new(components, component_json(page, j));
    }
    int64_t monitoring = 0;
    for (size_t k = 0; k < inc->nupdates; k++)
        if (!monitoring && strcmp(inc->updates[k].status, "monitoring") == 0)
            monitoring = inc->updates[k].at_ms;
    return json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:s, s:s, s:o, s:s, s:o, s:o}", "id", id,
                     "name", inc->name, "status", inc->status, "created_at",
                     time_json(inc->created_at_ms), "updated_at", time_json(inc->updated_at_ms),
                     "monitoring_at", time_json(monitoring), "resolved_at",
                     time_json(inc->open ? 0 : inc->resolved_at_ms), "impact", inc->impact,
                     "shortlink", "", "started_at", time_json(inc->created_at_ms), "page_id",
                     "vigil", "incident_updates", updates, "components", components);
}

static char *dump(json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(doc);
    if (!text)
        return NULL;
    size_t n = strlen(text);
    char *with_newline = realloc(text, n + 2);
    if (!with_newline) {
        free(text);
        return NULL;
    }
    memcpy(with_newline + n, "\n", 2);
    return with_newline;
}

char *statuspage_summary_json(const struct sp_page *page)
{
    json_t *components = json_array();
    for (size_t i = 0; components && i < page->ncomponents; i++)
        json_array_append_new(components, component_json(page, i));
    json_t *incidents = json_array();
    for (size_t i = 0; incidents && i < page->nincidents; i++)
        if (page->incidents[i].open) /* summary.json: the unresolved ones */
            json_array_append_new(incidents, incident_json(page, &page->incidents[i]));
    return dump(json_pack("{s:o, s:o, s:o, s:o, s:o}", "page", page_json(page), "components",
                          components, "incidents", incidents, "scheduled_maintenances",
                          json_array(), "status", status_json(page)));
}

char *statuspage_status_json(const struct sp_page *page)
{
    return dump(json_pack("{s:o, s:o}", "page", page_json(page), "status", status_json(page)));
}
