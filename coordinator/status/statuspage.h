/*
 * The public status page (issue 18, docs/status-page.md): configured components, each mapped to
 * the runbooks whose incidents affect it; the incidents operators published (`vigilctl update
 * ID TEXT --public`) with their public updates; the last 90 days of them. Rendered three ways
 * from one model: server-side HTML and CSS without JavaScript (/), and the Atlassian Statuspage
 * v2 shapes /api/v2/summary.json and /api/v2/status.json, so existing widgets and bots read it.
 *
 * What reaches the model decides what can leak: it is built only from status_updates rows that
 * are public (store_status_rows) and the incident's state and times, never from the timeline,
 * the scope (node names), signals or evidence. Every text is HTML-escaped in the page and
 * JSON-encoded in the API.
 *
 * Rendering is pure (no store, no clock): statuspage_build fills the model from rows, and the
 * renderers take it with the time to show as "updated". Unit-tested in
 * tests/unit/test_statuspage.c.
 */
#ifndef COORD_STATUSPAGE_H
#define COORD_STATUSPAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "store.h"

#define STATUSPAGE_HISTORY_DAYS 90
#define STATUSPAGE_NAME_MAX 128
#define STATUSPAGE_COMPONENTS_MAX 64
#define STATUSPAGE_UNNAMED "Service disruption" /* an incident whose updates gave no name */

/* One configured component (coordinator.yaml status_page.components[]). */
struct status_component_config {
    char *name;
    char *description;
    struct vg_cfg_strings runbooks; /* runbook ids whose incidents affect it */
};

struct status_page_config {
    bool enabled;
    char *address; /* "" = all interfaces */
    int64_t port;
    char *name;                    /* the page's title */
    char *url;                     /* its public address ("" = none) */
    struct vg_cfg_list components; /* struct status_component_config */
};

extern const struct vg_cfg_key status_component_keys[];
extern const size_t status_component_nkeys;

/* The keys of coordinator.yaml's status_page section, for coord_config's table. */
#define STATUSPAGE_KEY_(p_, t_, owner_, f_, min_, max_, def_, help_)                               \
    {                                                                                              \
        .path = (p_), .type = (t_), .offset = offsetof(owner_, f_), .min = (min_), .max = (max_),  \
        .def = (def_), .help = (help_)                                                             \
    }
#define STATUSPAGE_CONFIG_KEYS(prefix, owner, member)                                              \
    STATUSPAGE_KEY_(prefix "enabled", VG_CFG_BOOL, owner, member enabled, 0, 0, "true",            \
                    "serve the public status page"),                                               \
        STATUSPAGE_KEY_(prefix "address", VG_CFG_STRING, owner, member address, 0, 64,             \
                        "127.0.0.1", "status page listen address; empty = all interfaces"),        \
        STATUSPAGE_KEY_(prefix "port", VG_CFG_INT, owner, member port, 1, 65535, "7481",           \
                        "status page port"),                                                       \
        STATUSPAGE_KEY_(prefix "name", VG_CFG_STRING, owner, member name, 1, STATUSPAGE_NAME_MAX,  \
                        "Service status", "the page's title"),                                     \
        STATUSPAGE_KEY_(prefix "url", VG_CFG_STRING, owner, member url, 0, 1024, "",               \
                        "the page's public URL, given in the JSON API"),                           \
    {                                                                                              \
        .path = (prefix "components"), .type = VG_CFG_LIST,                                        \
        .offset = offsetof(owner, member components), .max = STATUSPAGE_COMPONENTS_MAX,            \
        .help = "components shown on the page, each with the runbooks that affect it",             \
        .sub = status_component_keys, .nsub_ref = &status_component_nkeys,                         \
        .elem_size = sizeof(struct status_component_config)                                        \
    }

/* Cross-checks (names unique and non-empty). 0 or -EINVAL with err "path: ...". */
int statuspage_config_check(const struct status_page_config *cfg, const char *path, char *err,
                            size_t errlen);

struct rb_set;
/* Warns of each component's runbook that the set in force does not have (a typo maps nothing);
 * returns how many. Nothing when the set is empty or NULL (no runbooks loaded). */
size_t statuspage_check_runbooks(const struct status_page_config *cfg, const struct rb_set *set);

/* Component statuses, worst last. */
enum sp_status {
    SP_OPERATIONAL,
    SP_DEGRADED,       /* degraded_performance */
    SP_PARTIAL_OUTAGE, /* partial_outage */
    SP_MAJOR_OUTAGE,   /* major_outage */
};
/* "operational", "degraded_performance", "partial_outage", "major_outage". */
const char *statuspage_status_name(enum sp_status s);
/* Those names, and the CLI's "degraded" for degraded_performance. -EINVAL otherwise. */
int statuspage_status_parse(const char *text, enum sp_status *ret);

struct sp_update {
    uint64_t id;
    int64_t at_ms;
    const char *status; /* investigating, identified, monitoring, resolved */
    char *body;
    char *components_json; /* {"name": "status"} as posted */
};

struct sp_incident {
    uint64_t id;
    char *name;
    const char *status; /* of its latest update, or resolved */
    const char *impact; /* none, minor, major, critical */
    int64_t created_at_ms, updated_at_ms, resolved_at_ms;
    bool open;
    struct sp_update *updates; /* oldest first */
    size_t nupdates;
    /* Components of its latest update and their state while it is open. */
    char **component_names;
    enum sp_status *component_status;
    size_t ncomponents;
};

struct sp_component {
    const char *name, *description; /* borrowed from the config */
    enum sp_status status;
    int64_t updated_at_ms;
};

struct sp_page {
    const char *name, *url; /* borrowed */
    struct sp_component *components;
    size_t ncomponents;
    struct sp_incident *incidents; /* newest first: the open ones, then the history */
    size_t nincidents;
    int64_t updated_at_ms;
};

/* Fills *page from the store's public rows of the last STATUSPAGE_HISTORY_DAYS at now_ms. */
int statuspage_load(store_incidents_t *store, const struct status_page_config *cfg, int64_t now_ms,
                    struct sp_page *page);
/* The same from rows already read (for tests): call statuspage_begin, statuspage_add_row for
 * each row in store_status_rows' order, then statuspage_finish. */
void statuspage_begin(struct sp_page *page, const struct status_page_config *cfg);
int statuspage_add_row(const struct store_status_row *row, void *page);
void statuspage_finish(struct sp_page *page, const struct status_page_config *cfg, int64_t now_ms);
void statuspage_free(struct sp_page *page);

/* The renderings, malloc'd (caller frees), NULL when out of memory. */
char *statuspage_html(const struct sp_page *page, int64_t now_ms);
char *statuspage_summary_json(const struct sp_page *page);
char *statuspage_status_json(const struct sp_page *page);

/* Appends text HTML-escaped (& < > " ') to buf; exposed for tests. Returns the length written,
 * or the length needed when it does not fit (nothing is cut mid-entity; buf ends with NUL). */
size_t statuspage_html_escape(const char *text, char *buf, size_t size);

#endif
