#include "catalog.h"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"
#include "wire.h"

#define PARAMS_MAX 16
#define PARAM_NAME_MAX 32

static bool name_ok(const char *s, size_t max, bool upper_and_dots)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max)
        return false;
    for (; *s; s++) {
        char c = *s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
                  (upper_and_dots && ((c >= 'A' && c <= 'Z') || c == '.' || c == '-'));
        if (!ok)
            return false;
    }
    return true;
}

/* One declared action into *out; false when it breaks a bound. */
static bool action_from_wire(const Vigil__ActionInfo *in, struct agent_action *out)
{
    memset(out, 0, sizeof(*out));
    /* The kind is free text (a newer agent's kinds pass), but it goes into the store's JSON:
     * one that is not UTF-8 made the entry vanish from agents.actions while the registry kept
     * it. */
    if (!in || !name_ok(in->name, VG_MAX_NAME_LEN, true) || !in->kind ||
        strlen(in->kind) >= sizeof(out->kind) || !vg_utf8_valid(in->kind) ||
        agent_action_mode_parse(in->mode, &out->mode) < 0 || in->n_params > PARAMS_MAX ||
        (in->inverse && in->inverse[0] && !name_ok(in->inverse, VG_MAX_NAME_LEN, true)))
        return false;
    snprintf(out->name, sizeof(out->name), "%s", in->name);
    snprintf(out->kind, sizeof(out->kind), "%s", in->kind);
    snprintf(out->inverse, sizeof(out->inverse), "%s", in->inverse ? in->inverse : "");
    out->root = in->root;
    size_t used = 0;
    for (size_t i = 0; i < in->n_params; i++) {
        if (!name_ok(in->params[i], PARAM_NAME_MAX, false))
            return false;
        int w = snprintf(out->params + used, sizeof(out->params) - used, "%s%s", i ? "," : "",
                         in->params[i]);
        if (w < 0 || (size_t)w >= sizeof(out->params) - used)
            return false;
        used += (size_t)w;
    }
    return true;
}

/* The evidence entries in, as [{kind, args{}}], leaving out kinds the coordinator cannot ask for
 * (counted in *skipped). */
static json_t *evidence_json(const Vigil__ActionInfo *in, size_t *skipped)
{
    json_t *list = json_array();
    for (size_t k = 0; list && k < in->n_evidence; k++) {
        const Vigil__ActionEvidence *e = in->evidence[k];
        bool text_ok = true; /* the JSON takes UTF-8 only: an entry with other bytes is left out */
        for (size_t j = 0; j < e->n_args; j++)
            text_ok = text_ok && vg_utf8_valid(e->args[j]->key) && vg_utf8_valid(e->args[j]->value);
        /* promql is the coordinator's own capture: never asked of an agent. */
        if (!vg_evidence_kind_known(e->kind) || strcmp(e->kind, "promql") == 0 || !text_ok) {
            (*skipped)++;
            continue;
        }
        json_t *args = json_object();
        for (size_t j = 0; args && j < e->n_args; j++)
            json_object_set_new(args, e->args[j]->key, json_string(e->args[j]->value));
        json_array_append_new(list, json_pack("{s:s, s:o}", "kind", e->kind, "args",
                                              args ? args : json_object()));
    }
    return list;
}

/* FNV-1a over text: tells a changed evidence list apart, nothing more. */
static uint64_t digest_text(const char *text)
{
    uint64_t h = 14695981039346656037ULL;
    for (const unsigned char *p = (const unsigned char *)text; p && *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

static json_t *action_json(const struct agent_action *a)
{
    json_t *params = json_array();
    const char *p = a->params;
    while (params && *p) {
        size_t len = strcspn(p, ",");
        json_array_append_new(params, json_stringn(p, len));
        p += len;
        if (*p == ',')
            p++;
    }
    return json_pack("{s:s, s:s, s:s, s:o, s:b, s:s}", "name", a->name, "kind", a->kind, "mode",
                     agent_action_mode_name(a->mode), "params", params ? params : json_array(),
                     "root", a->root, "inverse", a->inverse);
}

int catalog_from_enroll(const Vigil__Enroll *enroll, struct agent_action **ret, size_t *ret_n,
                        char **ret_json, size_t *ret_skipped)
{
    size_t given = enroll->n_actions, n = 0, skipped = 0;
    struct agent_action *actions = NULL;
    json_t *array = json_array();

    if (!array)
        return -ENOMEM;
    if (given > AGENT_ACTIONS_MAX) {
        skipped += given - AGENT_ACTIONS_MAX;
        given = AGENT_ACTIONS_MAX;
    }
    if (given > 0) {
        actions = calloc(given, sizeof(*actions));
        if (!actions) {
            json_decref(array);
            return -ENOMEM;
        }
    }
    for (size_t i = 0; i < given; i++) {
        struct agent_action a;
        bool duplicate = false;
        if (!action_from_wire(enroll->actions[i], &a)) {
            skipped++;
            continue;
        }
        for (size_t k = 0; k < n; k++)
            duplicate |= strcmp(actions[k].name, a.name) == 0;
        if (duplicate) {
            skipped++;
            continue;
        }
        json_t *evidence = evidence_json(enroll->actions[i], &skipped);
        char *evidence_text = evidence ? json_dumps(evidence, JSON_COMPACT) : NULL;
        a.evidence_digest = digest_text(evidence_text);
        free(evidence_text);
        json_t *entry = action_json(&a);
        if (entry && evidence)
            json_object_set_new(entry, "evidence", evidence);
        else
            json_decref(evidence);
        actions[n++] = a;
        json_array_append_new(array, entry);
    }
    char *json = json_dumps(array, JSON_COMPACT);
    json_decref(array);
    if (!json) {
        free(actions);
        return -ENOMEM;
    }
    *ret = actions;
    *ret_n = n;
    *ret_json = json;
    *ret_skipped = skipped;
    return 0;
}

bool catalog_equal(const struct agent *agent, const struct agent_action *actions, size_t n)
{
    if (agent->nactions != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        const struct agent_action *a = &agent->actions[i], *b = &actions[i];
        if (strcmp(a->name, b->name) != 0 || strcmp(a->kind, b->kind) != 0 || a->mode != b->mode ||
            strcmp(a->params, b->params) != 0 || a->root != b->root ||
            strcmp(a->inverse, b->inverse) != 0 || a->evidence_digest != b->evidence_digest)
            return false;
    }
    return true;
}
