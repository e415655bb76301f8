/*
 * Symptoms and verify entries: the conditions of a runbook (see runbook_condition.h; format:
 * docs/runbook-format.md).
 *
 * A symptom and a verify entry are one flat mapping each: the condition's keys and the place's
 * own keys side by side. Their keys are taken once, against one table (cond_keys) whose bits say
 * which place allows which key, and get_condition reads the shared part from those fields.
 */
#include "runbook_condition.h"

#include "yaml.h"

#include <errno.h>
#include <libfyaml.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define PROMQL_MAX_LEN 4096

/* The keys a symptom or a verify entry may hold; the bits say which place allows which. */
enum cond_key {
    CK_ID,
    CK_SIGNAL,
    CK_LABELS,
    CK_RATIO,
    CK_ABSENT,
    CK_PROMQL,
    CK_ABOVE,
    CK_BELOW,
    CK_AT_LEAST,
    CK_AT_MOST,
    CK_FOR,
    CK_SCOPE,
    CK_SEVERITY,
    CK_SEVERITY_ALL,
    CK_HOLD,
    CK_COUNT
};

static const char *const cond_keys[CK_COUNT] = {
    "id",       "signal",  "labels", "ratio", "absent",   "promql",       "above", "below",
    "at_least", "at_most", "for",    "scope", "severity", "severity_all", "hold",
};

#define BIT(k) (UINT32_C(1) << (k))
#define CK_CONDITION                                                                               \
    (BIT(CK_SIGNAL) | BIT(CK_LABELS) | BIT(CK_RATIO) | BIT(CK_PROMQL) | BIT(CK_ABOVE) |            \
     BIT(CK_BELOW) | BIT(CK_AT_LEAST) | BIT(CK_AT_MOST) | BIT(CK_FOR) | BIT(CK_SCOPE))
#define CK_SYMPTOM                                                                                 \
    (CK_CONDITION | BIT(CK_ID) | BIT(CK_ABSENT) | BIT(CK_SEVERITY) | BIT(CK_SEVERITY_ALL))
#define CK_VERIFY (CK_CONDITION | BIT(CK_HOLD))

/* Signal name and labels, from the fields of whichever mapping holds them. */
static int get_match(struct rb_loader *ld, const struct rb_field *signal,
                     const struct rb_field *labels, struct rb_match *m)
{
    struct fy_mark buf;
    int r = rb_yaml_get_string(ld, signal, RB_SIGNAL_MAX_LEN, &m->signal);

    if (r < 0)
        return r;
    if (!runbook_signal_known(m->signal)) {
        char shown[VG_YAML_QUOTE_MAX + 1];
        rb_yaml_fail(ld, rb_yaml_value_mark(signal, &buf),
                     "\"%s\": unknown signal \"%s\" (see the README's \"Signals\"; alerts are "
                     "alert.<alertname>)",
                     signal->path,
                     vg_yaml_quotable(m->signal, strlen(m->signal), shown, sizeof(shown)));
        return -EINVAL;
    }
    return labels ? rb_yaml_get_labels(ld, labels, &m->labels, &m->nlabels) : 0;
}

/* {signal, labels} under a ratio. */
static int get_match_map(struct rb_loader *ld, const struct rb_field *f, struct rb_match *m)
{
    static const char *const names[] = {"signal", "labels"};
    struct rb_field fields[2];
    int r = rb_yaml_take_keys(ld, f->value, f->path, &f->key_mark, names, 2, 3, fields);

    if (r == 0)
        r = rb_yaml_need(ld, &fields[0], &f->key_mark);
    return r < 0 ? r : get_match(ld, &fields[0], &fields[1], m);
}

static int get_ratio(struct rb_loader *ld, const struct rb_field *f, struct rb_condition *c)
{
    static const char *const names[] = {"numerator", "denominator", "window", "min_count"};
    struct rb_field fields[4];
    int r = rb_yaml_take_keys(ld, f->value, f->path, &f->key_mark, names, 4, 15, fields);

    for (size_t i = 0; r == 0 && i < 3; i++)
        r = rb_yaml_need(ld, &fields[i], &f->key_mark);
    if (r == 0)
        r = get_match_map(ld, &fields[0], &c->numerator);
    if (r == 0)
        r = get_match_map(ld, &fields[1], &c->denominator);
    if (r == 0)
        r = rb_yaml_get_duration(ld, &fields[2], 10 * RB_MS_PER_S, RB_MS_PER_D, &c->window_ms);
    c->min_count = 1;
    if (r == 0 && fields[3].value)
        r = rb_yaml_get_int(ld, &fields[3], 1, 1000000000, &c->min_count);
    return r;
}

static int get_absent(struct rb_loader *ld, const struct rb_field *f, struct rb_condition *c)
{
    static const char *const names[] = {"signal", "labels", "for"};
    struct rb_field fields[3];
    int r = rb_yaml_take_keys(ld, f->value, f->path, &f->key_mark, names, 3, 7, fields);

    if (r == 0)
        r = rb_yaml_need(ld, &fields[0], &f->key_mark);
    if (r == 0)
        r = rb_yaml_need(ld, &fields[2], &f->key_mark);
    if (r == 0)
        r = get_match(ld, &fields[0], &fields[1], &c->match);
    if (r == 0)
        r = rb_yaml_get_duration(ld, &fields[2], RB_MS_PER_S, RB_MS_PER_D, &c->absent_ms);
    return r;
}

static int get_promql(struct rb_loader *ld, const struct rb_field *f, struct rb_condition *c)
{
    static const char *const names[] = {"query", "interval"};
    struct rb_field fields[2];
    int r = rb_yaml_take_keys(ld, f->value, f->path, &f->key_mark, names, 2, 3, fields);

    c->interval_ms = 30 * RB_MS_PER_S;
    if (r == 0)
        r = rb_yaml_need(ld, &fields[0], &f->key_mark);
    if (r == 0)
        r = rb_yaml_get_string(ld, &fields[0], PROMQL_MAX_LEN, &c->promql);
    if (r == 0 && rb_yaml_present(&fields[1]))
        r = rb_yaml_get_duration(ld, &fields[1], RB_MS_PER_S, RB_MS_PER_H, &c->interval_ms);
    return r;
}

static const char *op_key(enum rb_op op)
{
    switch (op) {
    case RB_OP_GT:
        return "above";
    case RB_OP_GE:
        return "at_least";
    case RB_OP_LT:
        return "below";
    case RB_OP_LE:
        return "at_most";
    }
    return "?";
}

/*
 * The comparison: "above: 5" (one level: warning = critical = 5) or "above: {warning: 1,
 * critical: 5, clear: 0.8}". For above/at_least, warning <= critical and clear <= warning;
 * below/at_most mirror it.
 */
static int get_levels(struct rb_loader *ld, const struct rb_field *f, struct rb_condition *c)
{
    static const char *const names[] = {"warning", "critical", "clear"};
    struct rb_field fields[3];
    bool upward = c->op == RB_OP_GT || c->op == RB_OP_GE;
    struct fy_mark buf;
    int r;

    c->clear = NAN;
    if (!vg_yaml_is_empty(f->value) && fy_node_is_scalar(f->value)) {
        r = rb_yaml_get_number(ld, f, &c->warning);
        c->critical = c->warning;
        return r;
    }
    r = rb_yaml_take_keys(ld, f->value, f->path, &f->key_mark, names, 3, 7, fields);
    if (r < 0)
        return r;
    if (!rb_yaml_present(&fields[0]) && !rb_yaml_present(&fields[1])) {
        rb_yaml_fail(ld, &f->key_mark,
                     "\"%s\": needs a warning or a critical level (or one number)", f->path);
        return -EINVAL;
    }
    c->critical = NAN;
    if (rb_yaml_present(&fields[0]) && (r = rb_yaml_get_number(ld, &fields[0], &c->warning)) < 0)
        return r;
    if (rb_yaml_present(&fields[1]) && (r = rb_yaml_get_number(ld, &fields[1], &c->critical)) < 0)
        return r;
    if (!rb_yaml_present(&fields[0]))
        c->warning = c->critical;
    if (rb_yaml_present(&fields[2]) && (r = rb_yaml_get_number(ld, &fields[2], &c->clear)) < 0)
        return r;
    if (rb_yaml_present(&fields[0]) && rb_yaml_present(&fields[1]) &&
        (upward ? c->warning > c->critical : c->warning < c->critical)) {
        rb_yaml_fail(ld, rb_yaml_value_mark(&fields[1], &buf),
                     "\"%s\": the critical level (%g) must be %s the warning level (%g) for \"%s\"",
                     fields[1].path, c->critical, upward ? "at or above" : "at or below",
                     c->warning, op_key(c->op));
        return -EINVAL;
    }
    if (rb_yaml_present(&fields[2]) && (upward ? c->clear > c->warning : c->clear < c->warning)) {
        rb_yaml_fail(ld, rb_yaml_value_mark(&fields[2], &buf),
                     "\"%s\": the clear level (%g) must be %s the warning level (%g) for \"%s\"",
                     fields[2].path, c->clear, upward ? "at or below" : "at or above", c->warning,
                     op_key(c->op));
        return -EINVAL;
    }
    return 0;
}

static int get_scope(struct rb_loader *ld, const struct rb_field *f, struct rb_scope *scope)
{
    static const char *const names[] = {"fraction"};
    struct rb_field fraction;
    struct fy_mark buf;
    size_t len = 0;
    const char *s;

    if (!vg_yaml_is_empty(f->value) && fy_node_is_mapping(f->value)) {
        int r = rb_yaml_take_keys(ld, f->value, f->path, &f->key_mark, names, 1, 1, &fraction);
        if (r == 0)
            r = rb_yaml_need(ld, &fraction, &f->key_mark);
        if (r == 0)
            r = rb_yaml_get_number(ld, &fraction, &scope->fraction);
        if (r < 0)
            return r;
        if (!(scope->fraction > 0 && scope->fraction <= 1)) {
            rb_yaml_fail(ld, rb_yaml_value_mark(&fraction, &buf),
                         "\"%s\": must be greater than 0 and at most 1 (got %g)", fraction.path,
                         scope->fraction);
            return -ERANGE;
        }
        scope->kind = RB_SCOPE_FRACTION;
        return 0;
    }
    s = rb_yaml_scalar_text(ld, f, "node, any, all or {fraction: F}", &len);
    if (!s)
        return -EINVAL;
    if (len == 4 && memcmp(s, "node", 4) == 0)
        scope->kind = RB_SCOPE_NODE;
    else if (len == 3 && memcmp(s, "any", 3) == 0)
        scope->kind = RB_SCOPE_ANY;
    else if (len == 3 && memcmp(s, "all", 3) == 0)
        scope->kind = RB_SCOPE_ALL;
    else {
        char shown[VG_YAML_QUOTE_MAX + 1];
        rb_yaml_fail(ld, rb_yaml_value_mark(f, &buf),
                     "\"%s\": must be node, any, all or {fraction: F} (got \"%s\")", f->path,
                     vg_yaml_quotable(s, len, shown, sizeof(shown)));
        return -EINVAL;
    }
    scope->fraction = 0;
    return 0;
}

/* The last part of a field's path: its key. */
static const char *key_of(const struct rb_field *f)
{
    const char *dot = strrchr(f->path, '.');
    return dot ? dot + 1 : f->path;
}

/* Two keys that exclude each other: named in file order, pointed at the later one. */
static int conflict(struct rb_loader *ld, const char *path, const struct rb_field *a,
                    const struct rb_field *b)
{
    bool a_first = a->key_mark.line < b->key_mark.line || (a->key_mark.line == b->key_mark.line &&
                                                           a->key_mark.column < b->key_mark.column);
    const struct rb_field *first = a_first ? a : b, *second = a_first ? b : a;

    rb_yaml_fail(ld, &second->key_mark, "\"%s\": \"%s\" and \"%s\" cannot be combined", path,
                 key_of(first), key_of(second));
    return -EINVAL;
}

/* The condition part of a symptom or verify mapping whose keys are in fields[]. */
static int get_condition(struct rb_loader *ld, struct rb_field *fields, const char *path,
                         const struct fy_mark *where, struct rb_condition *c)
{
    static const enum cond_key kinds[] = {CK_SIGNAL, CK_RATIO, CK_ABSENT, CK_PROMQL};
    static const enum cond_key ops[] = {CK_ABOVE, CK_AT_LEAST, CK_BELOW, CK_AT_MOST};
    static const enum rb_op op_of[] = {RB_OP_GT, RB_OP_GE, RB_OP_LT, RB_OP_LE};
    const struct rb_field *kind = NULL, *op = NULL;
    int r;

    c->line = where ? where->line + 1 : 0;
    c->column = where ? where->column + 1 : 0;
    c->warning = c->critical = c->clear = NAN;
    c->scope.kind = RB_SCOPE_NODE;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (!rb_yaml_present(&fields[kinds[i]]))
            continue;
        if (kind)
            return conflict(ld, path, kind, &fields[kinds[i]]);
        kind = &fields[kinds[i]];
        c->kind = i == 0   ? RB_COND_THRESHOLD
                  : i == 1 ? RB_COND_RATIO
                  : i == 2 ? RB_COND_ABSENCE
                           : RB_COND_PROMQL;
        c->line = kind->key_mark.line + 1;
        c->column = kind->key_mark.column + 1;
    }
    if (!kind) {
        rb_yaml_fail(ld, where, "\"%s\": needs one of signal, ratio, absent or promql", path);
        return -EINVAL;
    }
    if (rb_yaml_present(&fields[CK_LABELS]) && c->kind != RB_COND_THRESHOLD) {
        rb_yaml_fail(
            ld, &fields[CK_LABELS].key_mark,
            "\"%s\": labels go with signal (inside ratio and absent, next to their signal)",
            fields[CK_LABELS].path);
        return -EINVAL;
    }
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (!rb_yaml_present(&fields[ops[i]]))
            continue;
        if (op)
            return conflict(ld, path, op, &fields[ops[i]]);
        if (c->kind == RB_COND_ABSENCE) {
            rb_yaml_fail(ld, &fields[ops[i]].key_mark, "\"%s\": absent takes no comparison",
                         fields[ops[i]].path);
            return -EINVAL;
        }
        op = &fields[ops[i]];
        c->op = op_of[i];
    }
    if (!op && c->kind != RB_COND_ABSENCE) {
        rb_yaml_fail(ld, &kind->key_mark,
                     "\"%s\": needs a comparison: above, below, at_least or at_most", path);
        return -EINVAL;
    }
    if (c->kind == RB_COND_ABSENCE && rb_yaml_present(&fields[CK_FOR])) {
        rb_yaml_fail(ld, &fields[CK_FOR].key_mark, "\"%s\": absent has its own \"for\" inside it",
                     fields[CK_FOR].path);
        return -EINVAL;
    }
    if (c->kind == RB_COND_PROMQL && rb_yaml_present(&fields[CK_SCOPE])) {
        rb_yaml_fail(ld, &fields[CK_SCOPE].key_mark,
                     "\"%s\": a promql query yields one number; scope does not apply",
                     fields[CK_SCOPE].path);
        return -EINVAL;
    }
    if (c->kind == RB_COND_PROMQL)
        c->scope.kind = RB_SCOPE_ANY;

    switch (c->kind) {
    case RB_COND_THRESHOLD:
        r = get_match(ld, kind, &fields[CK_LABELS], &c->match);
        break;
    case RB_COND_RATIO:
        r = get_ratio(ld, kind, c);
        break;
    case RB_COND_ABSENCE:
        r = get_absent(ld, kind, c);
        break;
    default:
        r = get_promql(ld, kind, c);
        break;
    }
    if (r == 0 && op)
        r = get_levels(ld, op, c);
    if (r == 0 && rb_yaml_present(&fields[CK_FOR]))
        r = rb_yaml_get_duration(ld, &fields[CK_FOR], 0, RB_MS_PER_D, &c->for_ms);
    if (r == 0 && rb_yaml_present(&fields[CK_SCOPE]))
        r = get_scope(ld, &fields[CK_SCOPE], &c->scope);
    return r;
}

/* ---- symptoms and verify entries ---- */

int rb_condition_get_symptom(struct rb_loader *ld, struct fy_node *node, const char *path,
                             const struct fy_mark *where, enum rb_severity runbook_severity,
                             struct rb_symptom *s)
{
    struct rb_field fields[CK_COUNT];
    struct fy_mark buf;
    const struct fy_mark *at = vg_yaml_node_mark(node, &buf, where);
    int r = rb_yaml_take_keys(ld, node, path, at, cond_keys, CK_COUNT, CK_SYMPTOM, fields);

    if (r == 0)
        r = rb_yaml_need(ld, &fields[CK_ID], at);
    if (r == 0)
        r = rb_yaml_get_id(ld, &fields[CK_ID], &s->id);
    if (r == 0)
        r = get_condition(ld, fields, path, at, &s->cond);
    if (r == 0 && rb_yaml_present(&fields[CK_SEVERITY]))
        r = rb_yaml_get_severity(ld, &fields[CK_SEVERITY], &s->severity);
    if (r == 0 && rb_yaml_present(&fields[CK_SEVERITY_ALL])) {
        r = rb_yaml_get_severity(ld, &fields[CK_SEVERITY_ALL], &s->severity_all);
        enum rb_severity base = s->severity != RB_SEV_NONE ? s->severity : runbook_severity;
        if (r == 0 && s->cond.scope.kind != RB_SCOPE_ANY &&
            s->cond.scope.kind != RB_SCOPE_FRACTION) {
            rb_yaml_fail(
                ld, &fields[CK_SEVERITY_ALL].key_mark,
                "\"%s\": needs scope any or {fraction: F} (the scope must be able to grow)",
                fields[CK_SEVERITY_ALL].path);
            r = -EINVAL;
        } else if (r == 0 && base != RB_SEV_NONE && s->severity_all > base) {
            rb_yaml_fail(
                ld, rb_yaml_value_mark(&fields[CK_SEVERITY_ALL], &buf),
                "\"%s\": must be at least as severe as %s (severity rises as the scope grows)",
                fields[CK_SEVERITY_ALL].path, rb_severity_name(base));
            r = -EINVAL;
        }
    }
    return r;
}

int rb_condition_get_verify(struct rb_loader *ld, struct fy_node *node, const char *path,
                            const struct fy_mark *where, struct rb_verify *v)
{
    struct rb_field fields[CK_COUNT];
    struct fy_mark buf;
    const struct fy_mark *at = vg_yaml_node_mark(node, &buf, where);
    int r = rb_yaml_take_keys(ld, node, path, at, cond_keys, CK_COUNT, CK_VERIFY, fields);

    if (r == 0 && !rb_yaml_present(&fields[CK_HOLD])) {
        rb_yaml_fail(ld, at, "\"%s\": needs hold, how long the condition must hold (e.g. hold: 2m)",
                     path);
        r = -EINVAL;
    }
    if (r == 0)
        r = get_condition(ld, fields, path, at, &v->cond);
    if (r == 0)
        r = rb_yaml_get_duration(ld, &fields[CK_HOLD], RB_MS_PER_S, RB_MS_PER_D, &v->hold_ms);
    return r;
}
