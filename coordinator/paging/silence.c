/* Whether a silence matches an incident (silence.h). */
#include "silence.h"

#include <jansson.h>
#include <string.h>

#include "incidents.h"
#include "runbook.h"

/* The scope (a JSON array of node names) is exactly [node]. */
static bool only_node(const char *scope_json, const char *node)
{
    json_t *scope = json_loads(scope_json, 0, NULL);
    bool only = json_is_array(scope) && json_array_size(scope) == 1 &&
                json_is_string(json_array_get(scope, 0)) &&
                strcmp(json_string_value(json_array_get(scope, 0)), node) == 0;
    json_decref(scope);
    return only;
}

static bool match_selects(const struct rb_match *m, const char *key, size_t keylen,
                          const char *value)
{
    for (size_t i = 0; i < m->nlabels; i++)
        if (strlen(m->labels[i].key) == keylen && strncmp(m->labels[i].key, key, keylen) == 0 &&
            strcmp(m->labels[i].value, value) == 0)
            return true;
    return false;
}

static bool label_matches(const char *text, const struct store_incident *inc,
                          const struct rb_runbook *rb)
{
    const char *eq = strchr(text, '=');
    if (!eq)
        return false;
    size_t keylen = (size_t)(eq - text);
    const char *value = eq + 1;
    if (keylen == 8 && strncmp(text, "severity", 8) == 0)
        return strcmp(incidents_severity_name(inc->severity), value) == 0;
    for (size_t i = 0; rb && i < rb->nsymptoms; i++) {
        const struct rb_condition *c = &rb->symptoms[i].cond;
        if (match_selects(&c->match, text, keylen, value) ||
            match_selects(&c->numerator, text, keylen, value) ||
            match_selects(&c->denominator, text, keylen, value))
            return true;
    }
    return false;
}

const struct store_silence *silence_match(const struct store_silence *list, size_t n,
                                          const struct store_incident *inc,
                                          const struct rb_runbook *rb)
{
    const char *node = incidents_fingerprint_node(inc->fingerprint);
    for (size_t i = 0; i < n; i++) {
        const struct store_silence *s = &list[i];
        bool hit = false;
        switch (s->matcher) {
        case STORE_SILENCE_RUNBOOK:
            hit = strcmp(inc->runbook, s->value) == 0;
            break;
        case STORE_SILENCE_NODE:
            hit = node && node[0] ? strcmp(node, s->value) == 0
                                  : only_node(inc->scope_json, s->value);
            break;
        case STORE_SILENCE_LABEL:
            hit = label_matches(s->value, inc, rb);
            break;
        }
        if (hit)
            return s;
    }
    return NULL;
}

bool silence_label_valid(const char *text)
{
    const char *eq = text ? strchr(text, '=') : NULL;
    if (!eq || eq == text || (size_t)(eq - text) > SILENCE_LABEL_KEY_MAX)
        return false;
    for (const char *p = text; p < eq; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    const char *value = eq + 1;
    size_t len = strlen(value);
    if (len == 0 || len > SILENCE_LABEL_VALUE_MAX)
        return false;
    for (const char *p = value; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return false;
    if ((size_t)(eq - text) == 8 && strncmp(text, "severity", 8) == 0)
        return strcmp(value, "SEV1") == 0 || strcmp(value, "SEV2") == 0 ||
               strcmp(value, "SEV3") == 0 || strcmp(value, "SEV4") == 0;
    return true;
}
