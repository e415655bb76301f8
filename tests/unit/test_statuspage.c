/* The status page's model and renderings (coordinator/status/statuspage.c): every text
 * HTML-escaped in the page and JSON-encoded in the API, the Statuspage v2 shapes, component
 * states from the open incidents' latest public updates, and the history. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "statuspage.h"

#define NOW_MS INT64_C(1780000000000)

static char *api_runbooks[] = {"application-down"};
static struct status_component_config components[] = {
    {.name = "API <v2>", .description = "The \"public\" API & more", .runbooks = {api_runbooks, 1}},
    {.name = "Website", .description = "", .runbooks = {NULL, 0}},
};
static const struct status_page_config cfg = {
    .enabled = true,
    .name = "Acme <status>",
    .url = "https://status.example.com",
    .components = {components, 2},
};

static struct store_status_row row(uint64_t incident, enum incident_state state, uint64_t id,
                                   int64_t at, const char *body, const char *title,
                                   const char *components_json, enum incident_state then)
{
    struct store_status_row r = {
        .incident_id = incident,
        .state = state,
        .opened_at_ms = NOW_MS - 3600000,
        .resolved_at_ms = incident_state_open(state) ? 0 : NOW_MS - 60000,
        .incident_updated_at_ms = at,
        .update_id = id,
        .at_ms = at,
        .body = body,
        .title = title,
        .components_json = components_json,
        .update_state = then,
    };
    return r;
}

/* One open incident (two public updates) and one resolved without a resolving update. */
static void build(struct sp_page *page)
{
    struct store_status_row rows[] = {
        row(9, INCIDENT_STATE_ACKNOWLEDGED, 20, NOW_MS - 1800000,
            "<script>alert('x')</script> & we are looking", "Checkout <b>errors</b>",
            "{\"API <v2>\": \"degraded_performance\"}", INCIDENT_STATE_DETECTED),
        row(9, INCIDENT_STATE_ACKNOWLEDGED, 21, NOW_MS - 600000, "Cause found: a \"bad\" deploy",
            "", "{\"API <v2>\": \"partial_outage\", \"Unknown\": \"major_outage\"}",
            INCIDENT_STATE_ACKNOWLEDGED),
        row(4, INCIDENT_STATE_CLOSED, 11, NOW_MS - 7200000, "Slow pages on worker-7", "",
            "{\"Website\": \"degraded_performance\"}", INCIDENT_STATE_DETECTED),
    };
    statuspage_begin(page, &cfg);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        assert_int_equal(statuspage_add_row(&rows[i], page), 0);
    statuspage_finish(page, &cfg, NOW_MS);
}

static void test_escape(void **state)
{
    (void)state;
    char buf[64];
    assert_int_equal(statuspage_html_escape("a<b>&\"'c", buf, sizeof(buf)),
                     strlen("a&lt;b&gt;&amp;&quot;&#39;c"));
    assert_string_equal(buf, "a&lt;b&gt;&amp;&quot;&#39;c");
    /* Too small: the length needed, and never half an entity. */
    char small[4];
    assert_int_equal(statuspage_html_escape("<<", small, sizeof(small)), 8);
    assert_null(strstr(small, "&l"));
    assert_int_equal(statuspage_html_escape(NULL, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "");
}

static void test_status_parse(void **state)
{
    (void)state;
    enum sp_status s;
    assert_int_equal(statuspage_status_parse("degraded", &s), 0);
    assert_int_equal(s, SP_DEGRADED);
    assert_int_equal(statuspage_status_parse("partial_outage", &s), 0);
    assert_int_equal(s, SP_PARTIAL_OUTAGE);
    assert_int_equal(statuspage_status_parse("major_outage", &s), 0);
    assert_int_equal(statuspage_status_parse("operational", &s), -EINVAL);
    assert_int_equal(statuspage_status_parse("down", &s), -EINVAL);
    assert_string_equal(statuspage_status_name(SP_DEGRADED), "degraded_performance");
}

static void test_html(void **state)
{
    (void)state;
    struct sp_page page;
    build(&page);
    char *html = statuspage_html(&page, NOW_MS);
    assert_non_null(html);
    /* Nothing executable, nothing unescaped from operators or the configuration. */
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "<b>"));
    assert_non_null(strstr(html, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; we are"));
    assert_non_null(strstr(html, "Checkout &lt;b&gt;errors&lt;/b&gt;"));
    assert_non_null(strstr(html, "<title>Acme &lt;status&gt;</title>"));
    assert_non_null(strstr(html, "API &lt;v2&gt;"));
    assert_non_null(strstr(html, "The &quot;public&quot; API &amp; more"));
    assert_non_null(strstr(html, "Cause found: a &quot;bad&quot; deploy"));
    /* The open incident's latest state; the component it names; the overall indicator. */
    assert_non_null(strstr(html, "st-partial_outage\">Partial outage"));
    assert_non_null(strstr(html, "overall-major"));
    assert_non_null(strstr(html, "<strong>Identified</strong>"));
    /* The resolved one in the history, with its resolution; the internal title never shows. */
    assert_non_null(strstr(html, "This incident has been resolved."));
    assert_non_null(strstr(html, "Past incidents (last 90 days)"));
    assert_non_null(strstr(html, "<h3>Service disruption</h3>"));
    /* A narrow screen: the viewport is declared and long words wrap. */
    assert_non_null(strstr(html, "width=device-width"));
    assert_non_null(strstr(html, "overflow-wrap:anywhere"));
    free(html);
    statuspage_free(&page);
}

static void test_html_empty(void **state)
{
    (void)state;
    struct sp_page page;
    statuspage_begin(&page, &cfg);
    statuspage_finish(&page, &cfg, NOW_MS);
    char *html = statuspage_html(&page, NOW_MS);
    assert_non_null(strstr(html, "All Systems Operational"));
    assert_non_null(strstr(html, "No active incidents."));
    assert_non_null(strstr(html, "No incidents in the last 90 days."));
    free(html);
    char *status = statuspage_status_json(&page);
    json_t *doc = json_loads(status, 0, NULL);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(doc, "status"), "indicator")), "none");
    json_decref(doc);
    free(status);
    statuspage_free(&page);
}

static void test_summary_json(void **state)
{
    (void)state;
    struct sp_page page;
    build(&page);
    char *text = statuspage_summary_json(&page);
    json_error_t jerr;
    json_t *doc = json_loads(text, 0, &jerr);
    assert_non_null(doc);
    json_t *pg = json_object_get(doc, "page");
    assert_string_equal(json_string_value(json_object_get(pg, "name")), "Acme <status>");
    assert_string_equal(json_string_value(json_object_get(pg, "url")),
                        "https://status.example.com");
    assert_non_null(json_string_value(json_object_get(pg, "updated_at")));
    json_t *st = json_object_get(doc, "status");
    assert_string_equal(json_string_value(json_object_get(st, "indicator")), "major");
    assert_string_equal(json_string_value(json_object_get(st, "description")),
                        "Partial System Outage");
    json_t *comps = json_object_get(doc, "components");
    assert_int_equal(json_array_size(comps), 2);
    json_t *api = json_array_get(comps, 0);
    assert_string_equal(json_string_value(json_object_get(api, "name")), "API <v2>");
    assert_string_equal(json_string_value(json_object_get(api, "status")), "partial_outage");
    assert_string_equal(json_string_value(json_object_get(json_array_get(comps, 1), "status")),
                        "operational");
    assert_true(json_is_array(json_object_get(doc, "scheduled_maintenances")));
    /* Unresolved incidents only, newest update first, the text exactly as written. */
    json_t *incs = json_object_get(doc, "incidents");
    assert_int_equal(json_array_size(incs), 1);
    json_t *inc = json_array_get(incs, 0);
    assert_string_equal(json_string_value(json_object_get(inc, "id")), "9");
    assert_string_equal(json_string_value(json_object_get(inc, "name")), "Checkout <b>errors</b>");
    assert_string_equal(json_string_value(json_object_get(inc, "status")), "identified");
    assert_string_equal(json_string_value(json_object_get(inc, "impact")), "major");
    assert_true(json_is_null(json_object_get(inc, "resolved_at")));
    json_t *updates = json_object_get(inc, "incident_updates");
    assert_int_equal(json_array_size(updates), 2);
    json_t *latest = json_array_get(updates, 0);
    assert_string_equal(json_string_value(json_object_get(latest, "body")),
                        "Cause found: a \"bad\" deploy");
    assert_string_equal(json_string_value(json_object_get(latest, "status")), "identified");
    json_t *affected = json_object_get(latest, "affected_components");
    /* "Unknown" is not a configured component: shown in the update's JSON as posted, but it
     * counts for no component's state. */
    json_t *first = json_array_get(affected, 0);
    assert_string_equal(json_string_value(json_object_get(first, "name")), "API <v2>");
    assert_string_equal(json_string_value(json_object_get(first, "old_status")),
                        "degraded_performance");
    assert_string_equal(json_string_value(json_object_get(first, "new_status")), "partial_outage");
    assert_string_equal(json_string_value(json_object_get(json_array_get(updates, 1), "body")),
                        "<script>alert('x')</script> & we are looking");
    assert_int_equal(json_array_size(json_object_get(inc, "components")), 1);
    assert_null(strstr(text, "worker-7")); /* only the open incident is in summary.json */
    json_decref(doc);
    free(text);
    statuspage_free(&page);
}

static void test_resolved_frees_components(void **state)
{
    (void)state;
    struct sp_page page;
    struct store_status_row r = row(5, INCIDENT_STATE_RESOLVED, 30, NOW_MS - 1000, "Down", "Outage",
                                    "{\"API <v2>\": \"major_outage\"}", INCIDENT_STATE_DETECTED);
    statuspage_begin(&page, &cfg);
    assert_int_equal(statuspage_add_row(&r, &page), 0);
    statuspage_finish(&page, &cfg, NOW_MS);
    assert_int_equal(page.components[0].status, SP_OPERATIONAL);
    char *status = statuspage_status_json(&page);
    assert_non_null(strstr(status, "\"indicator\": \"none\""));
    free(status);
    char *summary = statuspage_summary_json(&page);
    json_t *doc = json_loads(summary, 0, NULL);
    assert_int_equal(json_array_size(json_object_get(doc, "incidents")), 0);
    json_decref(doc);
    free(summary);
    statuspage_free(&page);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),       cmocka_unit_test(test_status_parse),
        cmocka_unit_test(test_html),         cmocka_unit_test(test_html_empty),
        cmocka_unit_test(test_summary_json), cmocka_unit_test(test_resolved_frees_components),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
