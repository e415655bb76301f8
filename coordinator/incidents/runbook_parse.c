/*
 * One runbook document: its top-level fields, investigate and resolve entries, and the checks
 * within one runbook (see runbook_parse.h; format: docs/runbook-format.md).
 *
 * The runbook is built directly in its final struct; on any error the caller frees everything
 * built so far. depends_on is checked here only against the runbook's own id and for
 * repetitions; whether it names a runbook of the set is runbooks_load_dir's check.
 */
#include "runbook_parse.h"

#include "runbook_condition.h"
#include "wire.h"
#include "yaml.h"

#include <errno.h>
#include <libfyaml.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TITLE_MAX_LEN 200
#define DOC_MAX_LEN 512

/* The value of key in labels, or NULL. */
static const char *label(const struct rb_label *labels, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(labels[i].key, key) == 0)
            return labels[i].value;
    return NULL;
}

/* Refuses an argument the kind does not take; for log_tail, lines and bytes together. */
static int check_evidence_args(struct rb_loader *ld, const struct rb_field *kind,
                               const struct rb_field *f, const struct rb_evidence *e)
{
    const char *const *allowed = vg_evidence_kind_args(e->kind);
    struct fy_mark buf;

    if (!allowed)
        return 0; /* a kind this table does not know yet: the agent decides */
    for (size_t a = 0; a < e->nargs; a++) {
        const char *hint = NULL;
        size_t best_d = 3;
        bool ok = false;

        for (size_t k = 0; allowed[k]; k++) {
            size_t d = vg_edit_distance(e->args[a].key, allowed[k]);
            ok = ok || d == 0;
            if (d < best_d && d < strlen(e->args[a].key)) {
                best_d = d;
                hint = allowed[k];
            }
        }
        if (ok)
            continue;
        if (!allowed[0])
            rb_yaml_fail(ld, &f->key_mark, "\"%s\": %s takes no arguments (got \"%s\")", f->path,
                         e->kind, e->args[a].key);
        else if (hint)
            rb_yaml_fail(ld, &f->key_mark,
                         "\"%s\": %s takes no argument \"%s\" (did you mean \"%s\"?)", f->path,
                         e->kind, e->args[a].key, hint);
        else
            rb_yaml_fail(ld, &f->key_mark, "\"%s\": %s takes no argument \"%s\"", f->path, e->kind,
                         e->args[a].key);
        return -EINVAL;
    }
    if (strcmp(e->kind, "log_tail") == 0 && label(e->args, e->nargs, "lines") &&
        label(e->args, e->nargs, "bytes")) {
        rb_yaml_fail(ld, &f->key_mark, "\"%s\": give lines or bytes, not both", f->path);
        return -EINVAL;
    }
    if (strcmp(e->kind, "file") == 0 && !label(e->args, e->nargs, "path")) {
        rb_yaml_fail(ld, rb_yaml_value_mark(kind, &buf), "\"%s\": file needs a path argument",
                     f->path);
        return -EINVAL;
    }
    return 0;
}

/* `on:` of a resolve or investigate entry: nodes (the default) or cluster. */
static int get_on(struct rb_loader *ld, const struct rb_field *f, bool *on_cluster)
{
    struct fy_mark buf;
    char shown[VG_YAML_QUOTE_MAX + 1];
    size_t len = 0;

    if (!rb_yaml_present(f))
        return 0;
    const char *on = rb_yaml_scalar_text(ld, f, "nodes or cluster", &len);
    if (!on)
        return -EINVAL;
    if (len == 7 && memcmp(on, "cluster", 7) == 0) {
        *on_cluster = true;
        return 0;
    }
    if (len == 5 && memcmp(on, "nodes", 5) == 0)
        return 0;
    rb_yaml_fail(ld, rb_yaml_value_mark(f, &buf),
                 "\"%s\": must be nodes (the incident's, the default) or cluster (the cluster "
                 "agent) (got \"%s\")",
                 f->path, vg_yaml_quotable(on, len, shown, sizeof(shown)));
    return -EINVAL;
}

/* `query:` of a promql entry: the PromQL expression the coordinator captures (kept as the
 * entry's one argument, query, like `vigilctl collect promql --arg query=EXPR`). Only promql
 * takes it, and promql takes nothing else: no args, and no `on:` (Prometheus is the
 * coordinator's to ask, not a node's). */
static int get_promql_query(struct rb_loader *ld, const struct rb_field *fields,
                            struct rb_evidence *e)
{
    const struct rb_field *kind = &fields[0], *args = &fields[1], *on = &fields[2],
                          *query = &fields[3];
    struct fy_mark buf;
    char *text = NULL;

    if (strcmp(e->kind, "promql") != 0) {
        if (!rb_yaml_present(query))
            return 0;
        rb_yaml_fail(ld, &query->key_mark,
                     "\"%s\": only a promql entry takes a query (this one is %s)", query->path,
                     e->kind);
        return -EINVAL;
    }
    if (rb_yaml_present(args) || rb_yaml_present(on)) {
        const struct rb_field *f = rb_yaml_present(args) ? args : on;
        rb_yaml_fail(ld, &f->key_mark,
                     "\"%s\": a promql entry takes only query: the coordinator asks "
                     "Prometheus itself",
                     f->path);
        return -EINVAL;
    }
    if (!rb_yaml_present(query)) {
        rb_yaml_fail(ld, rb_yaml_value_mark(kind, &buf),
                     "\"%s\": promql needs a query (the PromQL expression to capture)", kind->path);
        return -EINVAL;
    }
    int r = rb_yaml_get_string(ld, query, RB_PROMQL_QUERY_MAX_LEN, &text);
    if (r < 0)
        return r;
    if (strspn(text, " ") == strlen(text)) {
        rb_yaml_fail(ld, rb_yaml_value_mark(query, &buf), "\"%s\": the query is empty",
                     query->path);
        free(text);
        return -EINVAL;
    }
    e->args = calloc(1, sizeof(*e->args));
    char *key = strdup("query");
    if (!e->args || !key) {
        free(key);
        free(text);
        return -ENOMEM;
    }
    e->args[0].key = key;
    e->args[0].value = text;
    e->nargs = 1;
    return 0;
}

static int get_evidence(struct rb_loader *ld, struct fy_node *node, const char *path,
                        const struct fy_mark *where, struct rb_evidence *e)
{
    static const char *const names[] = {"kind", "args", "on", "query"};
    struct rb_field fields[4];
    struct fy_mark buf;
    const struct fy_mark *at = vg_yaml_node_mark(node, &buf, where);
    int r = rb_yaml_take_keys(ld, node, path, at, names, 4, 15, fields);

    if (r == 0)
        r = rb_yaml_need(ld, &fields[0], at);
    if (r == 0)
        r = rb_yaml_get_string(ld, &fields[0], VG_MAX_EVIDENCE_KIND_LEN, &e->kind);
    if (r == 0 && (!vg_evidence_kind_known(e->kind) || strcmp(e->kind, "command_output") == 0)) {
        char shown[VG_YAML_QUOTE_MAX + 1];
        rb_yaml_fail(ld, rb_yaml_value_mark(&fields[0], &buf),
                     "\"%s\": unknown evidence kind \"%s\" (one of %s)", fields[0].path,
                     vg_yaml_quotable(e->kind, strlen(e->kind), shown, sizeof(shown)),
                     VG_EVIDENCE_KINDS_OF_STATE);
        r = -EINVAL;
    }
    if (r == 0 && strcmp(e->kind, "promql") == 0)
        return get_promql_query(ld, fields, e);
    if (r == 0)
        r = get_promql_query(ld, fields, e); /* refuses a query on any other kind */
    if (r == 0)
        r = rb_yaml_get_labels(ld, &fields[1], &e->args, &e->nargs);
    if (r == 0)
        r = check_evidence_args(ld, &fields[0], &fields[1], e);
    if (r == 0)
        r = get_on(ld, &fields[2], &e->on_cluster);
    return r;
}

static int get_action(struct rb_loader *ld, struct fy_node *node, const char *path,
                      const struct fy_mark *where, struct rb_action *a)
{
    static const char *const names[] = {"action",        "mode", "args", "max_nodes",
                                        "verify_within", "on"};
    struct rb_field fields[6];
    struct fy_mark buf;
    char shown[VG_YAML_QUOTE_MAX + 1];
    const struct fy_mark *at = vg_yaml_node_mark(node, &buf, where);
    size_t len = 0;
    const char *mode;
    int r = rb_yaml_take_keys(ld, node, path, at, names, 6, 63, fields);

    if (r == 0)
        r = rb_yaml_need(ld, &fields[0], at);
    if (r == 0)
        r = rb_yaml_need(ld, &fields[1], at);
    if (r == 0)
        r = rb_yaml_get_id(ld, &fields[0], &a->name);
    if (r < 0)
        return r;
    mode = rb_yaml_scalar_text(ld, &fields[1], "auto, approve or manual", &len);
    if (!mode)
        return -EINVAL;
    if (len == 4 && memcmp(mode, "auto", 4) == 0) {
        a->mode = RB_MODE_AUTO;
    } else if (len == 7 && memcmp(mode, "approve", 7) == 0) {
        a->mode = RB_MODE_APPROVE;
    } else if (len == 6 && memcmp(mode, "manual", 6) == 0) {
        a->mode = RB_MODE_MANUAL;
    } else {
        rb_yaml_fail(ld, rb_yaml_value_mark(&fields[1], &buf),
                     "\"%s\": must be auto, approve or manual (got \"%s\")", fields[1].path,
                     vg_yaml_quotable(mode, len, shown, sizeof(shown)));
        return -EINVAL;
    }
    r = rb_yaml_get_labels(ld, &fields[2], &a->args, &a->nargs);
    if (r == 0 && rb_yaml_present(&fields[3]))
        r = rb_yaml_get_int(ld, &fields[3], 0, 10000, &a->max_nodes);
    a->verify_within_ms = RB_DEFAULT_VERIFY_WITHIN_MS;
    if (r == 0 && rb_yaml_present(&fields[4]))
        r = rb_yaml_get_duration(ld, &fields[4], RB_MS_PER_S, 24 * 60 * RB_MS_PER_M,
                                 &a->verify_within_ms);
    if (r == 0)
        r = get_on(ld, &fields[5], &a->on_cluster);
    return r;
}

/* A symptom named by a combination, as its index among the runbook's symptoms (parsed before
 * the combinations: ld->runbook). Only per-node symptoms combine: the combination is "on one
 * node". */
static int one_combined_symptom(struct rb_loader *ld, struct fy_node *n, const char *path,
                                const struct fy_mark *where, size_t i, void *item)
{
    struct rb_field f = {.value = n, .key_mark = *where, .path = path};
    struct fy_mark buf;
    const struct rb_runbook *rb = ld->runbook;
    char *id = NULL;
    int r = rb_yaml_get_id(ld, &f, &id);

    (void)i;
    if (r < 0)
        return r;
    size_t k = 0;
    while (k < rb->nsymptoms && strcmp(rb->symptoms[k].id, id) != 0)
        k++;
    if (k == rb->nsymptoms) {
        rb_yaml_fail(ld, rb_yaml_value_mark(&f, &buf), "\"%s\": no symptom \"%s\" in this runbook",
                     path, id);
        r = -EINVAL;
    } else if (rb->symptoms[k].cond.scope.kind != RB_SCOPE_NODE) {
        rb_yaml_fail(ld, rb_yaml_value_mark(&f, &buf),
                     "\"%s\": symptom \"%s\" is not per node (scope: node), and a combination "
                     "is of symptoms on one node",
                     path, id);
        r = -EINVAL;
    } else {
        *(size_t *)item = k;
    }
    free(id);
    return r;
}

static int get_combination(struct rb_loader *ld, struct fy_node *node, const char *path,
                           const struct fy_mark *where, struct rb_combination *c)
{
    static const char *const names[] = {"symptoms", "within", "severity"};
    struct rb_field fields[3];
    struct fy_mark buf;
    const struct fy_mark *at = vg_yaml_node_mark(node, &buf, where);
    const struct rb_runbook *rb = ld->runbook;
    void *items = NULL;
    int r = rb_yaml_take_keys(ld, node, path, at, names, 3, 7, fields);

    if (r == 0)
        r = rb_yaml_need(ld, &fields[0], at);
    if (r == 0)
        r = rb_yaml_need(ld, &fields[2], at);
    if (r == 0) {
        r = rb_yaml_get_items(ld, &fields[0], RB_MAX_SYMPTOMS, sizeof(size_t), &items,
                              &c->nsymptoms, one_combined_symptom);
        c->symptoms = items;
    }
    if (r == 0 && c->nsymptoms < 2) {
        rb_yaml_fail(ld, rb_yaml_value_mark(&fields[0], &buf),
                     "\"%s\": a combination needs at least two symptoms", fields[0].path);
        r = -EINVAL;
    }
    for (size_t i = 1; r == 0 && i < c->nsymptoms; i++)
        for (size_t j = 0; r == 0 && j < i; j++)
            if (c->symptoms[i] == c->symptoms[j]) {
                rb_yaml_fail(ld, rb_yaml_value_mark(&fields[0], &buf),
                             "\"%s\": \"%s\" is listed twice", fields[0].path,
                             rb->symptoms[c->symptoms[i]].id);
                r = -EINVAL;
            }
    c->within_ms = RB_DEFAULT_COMBINATION_WITHIN_MS;
    if (r == 0 && rb_yaml_present(&fields[1]))
        r = rb_yaml_get_duration(ld, &fields[1], RB_MS_PER_S, RB_MS_PER_D, &c->within_ms);
    if (r == 0)
        r = rb_yaml_get_severity(ld, &fields[2], &c->severity);
    /* A combination no more severe than one of its symptoms alone would change nothing. */
    for (size_t i = 0; r == 0 && i < c->nsymptoms; i++) {
        const struct rb_symptom *s = &rb->symptoms[c->symptoms[i]];
        enum rb_severity alone = s->severity != RB_SEV_NONE ? s->severity : rb->severity;
        if (c->severity >= alone) {
            rb_yaml_fail(ld, rb_yaml_value_mark(&fields[2], &buf),
                         "\"%s\": %s is not more severe than symptom \"%s\" alone (%s)",
                         fields[2].path, rb_severity_name(c->severity), s->id,
                         rb_severity_name(alone));
            r = -EINVAL;
        }
    }
    return r;
}

/* Adapters from rb_yaml_get_items' item callback to the typed readers. */
static int one_symptom(struct rb_loader *ld, struct fy_node *n, const char *path,
                       const struct fy_mark *where, size_t i, void *item)
{
    (void)i;
    return rb_condition_get_symptom(ld, n, path, where, ld->severity, item);
}

static int one_combination(struct rb_loader *ld, struct fy_node *n, const char *path,
                           const struct fy_mark *where, size_t i, void *item)
{
    (void)i;
    return get_combination(ld, n, path, where, item);
}

static int one_evidence(struct rb_loader *ld, struct fy_node *n, const char *path,
                        const struct fy_mark *where, size_t i, void *item)
{
    (void)i;
    return get_evidence(ld, n, path, where, item);
}

static int one_action(struct rb_loader *ld, struct fy_node *n, const char *path,
                      const struct fy_mark *where, size_t i, void *item)
{
    (void)i;
    return get_action(ld, n, path, where, item);
}

static int one_verify(struct rb_loader *ld, struct fy_node *n, const char *path,
                      const struct fy_mark *where, size_t i, void *item)
{
    (void)i;
    return rb_condition_get_verify(ld, n, path, where, item);
}

static int one_depend(struct rb_loader *ld, struct fy_node *n, const char *path,
                      const struct fy_mark *where, size_t i, void *item)
{
    struct rb_field f = {.value = n, .key_mark = *where, .path = path};
    struct fy_mark buf;
    int r = rb_yaml_get_id(ld, &f, item);

    if (r == 0)
        ld->marks.depends[i] = *rb_yaml_value_mark(&f, &buf);
    return r;
}

enum rb_key {
    RK_ID,
    RK_TITLE,
    RK_DOC,
    RK_SEVERITY,
    RK_POLICY,
    RK_DEPENDS_ON,
    RK_REOPEN_WINDOW,
    RK_SYMPTOMS,
    RK_COMBINATIONS,
    RK_INVESTIGATE,
    RK_RESOLVE,
    RK_VERIFY,
    RK_COUNT
};

static const char *const runbook_keys[RK_COUNT] = {
    "id",       "title",        "doc",         "severity", "policy", "depends_on",
    "reopen_window", "symptoms", "combinations", "investigate", "resolve", "verify",
};

#define DEFAULT_REOPEN_WINDOW_MS (30 * RB_MS_PER_M)

int rb_parse_runbook(struct rb_loader *ld, struct fy_node *root, struct rb_runbook *rb)
{
    struct rb_field f[RK_COUNT];
    struct fy_mark buf;
    const struct fy_mark *at = vg_yaml_node_mark(root, &buf, NULL);
    int r = rb_yaml_take_keys(ld, root, "", at, runbook_keys, RK_COUNT,
                              (UINT32_C(1) << RK_COUNT) - 1, f);
    void *items;

    static const enum rb_key required[] = {RK_ID, RK_TITLE, RK_SEVERITY, RK_SYMPTOMS};
    for (size_t i = 0; r == 0 && i < sizeof(required) / sizeof(required[0]); i++)
        r = rb_yaml_need(ld, &f[required[i]], at);
    if (r == 0 && (r = rb_yaml_get_id(ld, &f[RK_ID], &rb->id)) == 0)
        ld->marks.id = *rb_yaml_value_mark(&f[RK_ID], &buf);
    if (r == 0)
        r = rb_yaml_get_string(ld, &f[RK_TITLE], TITLE_MAX_LEN, &rb->title);
    if (r == 0)
        r = rb_yaml_present(&f[RK_DOC]) ? rb_yaml_get_string(ld, &f[RK_DOC], DOC_MAX_LEN, &rb->doc)
                                        : ((rb->doc = strdup("")) ? 0 : -ENOMEM);
    if (r == 0)
        r = rb_yaml_get_severity(ld, &f[RK_SEVERITY], &rb->severity);
    if (r == 0)
        r = rb_yaml_present(&f[RK_POLICY]) ? rb_yaml_get_id(ld, &f[RK_POLICY], &rb->policy)
                                           : ((rb->policy = strdup("")) ? 0 : -ENOMEM);
    rb->reopen_window_ms = DEFAULT_REOPEN_WINDOW_MS;
    if (r == 0 && rb_yaml_present(&f[RK_REOPEN_WINDOW]))
        r = rb_yaml_get_duration(ld, &f[RK_REOPEN_WINDOW], 0, 7 * RB_MS_PER_D,
                                 &rb->reopen_window_ms);
    if (r == 0) {
        items = NULL;
        r = rb_yaml_get_items(ld, &f[RK_DEPENDS_ON], RB_MAX_DEPENDS, sizeof(char *), &items,
                              &rb->ndepends, one_depend);
        rb->depends_on = items;
    }
    for (size_t i = 0; r == 0 && i < rb->ndepends; i++) {
        if (strcmp(rb->depends_on[i], rb->id) == 0) {
            rb_yaml_fail(ld, &ld->marks.depends[i],
                         "\"depends_on[%zu]\": a runbook cannot depend on itself", i);
            r = -EINVAL;
        }
        for (size_t j = 0; r == 0 && j < i; j++) {
            if (strcmp(rb->depends_on[i], rb->depends_on[j]) == 0) {
                rb_yaml_fail(ld, &ld->marks.depends[i],
                             "\"depends_on[%zu]\": \"%s\" is listed twice", i, rb->depends_on[i]);
                r = -EINVAL;
            }
        }
    }
    if (r == 0) {
        items = NULL;
        ld->severity = rb->severity;
        r = rb_yaml_get_items(ld, &f[RK_SYMPTOMS], RB_MAX_SYMPTOMS, sizeof(struct rb_symptom),
                              &items, &rb->nsymptoms, one_symptom);
        rb->symptoms = items;
    }
    if (r == 0 && rb->nsymptoms == 0) {
        rb_yaml_fail(ld, &f[RK_SYMPTOMS].key_mark, "\"symptoms\": needs at least one symptom");
        r = -EINVAL;
    }
    for (size_t i = 1; r == 0 && i < rb->nsymptoms; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(rb->symptoms[i].id, rb->symptoms[j].id) != 0)
                continue;
            struct fy_node *item = fy_node_sequence_get_by_index(f[RK_SYMPTOMS].value, (int)i);
            struct fy_node *idn = fy_node_mapping_lookup_by_string(item, "id", 2);
            rb_yaml_fail(ld, vg_yaml_scalar_mark(idn, &buf),
                         "\"symptoms[%zu].id\": \"%s\" is already the id of symptoms[%zu]", i,
                         rb->symptoms[i].id, j);
            r = -EINVAL;
            break;
        }
    }
    if (r == 0) {
        items = NULL;
        ld->runbook = rb;
        r = rb_yaml_get_items(ld, &f[RK_COMBINATIONS], RB_MAX_COMBINATIONS,
                              sizeof(struct rb_combination), &items, &rb->ncombinations,
                              one_combination);
        rb->combinations = items;
        ld->runbook = NULL;
    }
    if (r == 0) {
        items = NULL;
        r = rb_yaml_get_items(ld, &f[RK_INVESTIGATE], RB_MAX_STEPS, sizeof(struct rb_evidence),
                              &items, &rb->ninvestigate, one_evidence);
        rb->investigate = items;
    }
    if (r == 0) {
        items = NULL;
        r = rb_yaml_get_items(ld, &f[RK_RESOLVE], RB_MAX_STEPS, sizeof(struct rb_action), &items,
                              &rb->nresolve, one_action);
        rb->resolve = items;
    }
    if (r == 0) {
        items = NULL;
        r = rb_yaml_get_items(ld, &f[RK_VERIFY], RB_MAX_STEPS, sizeof(struct rb_verify), &items,
                              &rb->nverify, one_verify);
        rb->verify = items;
    }
    if (r == -ENOMEM)
        rb_yaml_fail(ld, NULL, "out of memory");
    return r;
}
