/*
 * The rule-evaluation engine (semantics in rules.h).
 *
 * Hot path: rules_observe looks the signal name up once in by_signal; a signal no symptom
 * reads costs that lookup only. A watched sample updates, per symptom that matches its labels,
 * one series entry (a hash lookup) or, for absence, one timestamp. rules_evaluate walks each
 * symptom's series once and its nodes once: O(series + nodes) per symptom.
 *
 * State lives in instances: one per node for scope node, one for a symptom across nodes.
 */
#include "rules.h"
#include "runbook_load.h"

#include <czmq.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SERIES_KEY_MAX 512
#define PROMQL_SIGNAL_MAX 256

enum role { ROLE_MATCH = 0, ROLE_NUMERATOR = 1, ROLE_DENOMINATOR = 2 };

struct node {
    char name[RULES_NODE_MAX];
    bool up;
    bool announced;   /* came through rules_node_up/down, not only through a sample */
    int64_t since_ms; /* up or down since */
};

struct series {
    uint32_t node;
    enum role role;
    double value;
    int64_t ts_ms;
    bool by_command; /* the latest sample was measured while a command ran */
};

/* One fingerprint's state. A verify condition uses warn_holding / warn_since only: whether it
 * holds, and since when. */
struct instance {
    enum rule_state state;
    enum rb_severity severity;
    bool warn_holding, crit_holding; /* the candidate level is at least warning / critical */
    int64_t warn_since, crit_since;
    int64_t last_active_ms; /* the last evaluation at which it was not OK (or rising to it) */
    int64_t last_fired_ms;  /* the last evaluation at which it was not OK (combinations) */
};

/* Per symptom, per node. */
struct slot {
    bool seen; /* a matching sample came (absence) */
    int64_t last_seen_ms;
    struct instance inst;  /* scope node */
    enum rule_state level; /* across nodes: this node's own level, for its own hysteresis */
};

/* A condition the engine tracks: a symptom's, or a verify entry's (s == NULL). */
struct sym {
    const struct rb_runbook *rb;
    const struct rb_symptom *s;      /* a symptom; NULL for a verify entry */
    size_t first;                    /* index in syms[] of its runbook's first symptom */
    const struct rb_verify *verify;  /* a verify entry; NULL for a symptom */
    size_t verify_index;             /* its position in rb->verify, the identity across reloads */
    const struct rb_condition *cond; /* s->cond or verify->cond */
    bool seen_any;                   /* some node ever sent a matching sample */
    zhashx_t *series;                /* series key -> struct series (owned) */
    struct slot *slots;              /* indexed by node */
    size_t nslots;
    struct instance across; /* scope any / all / fraction */
    struct rb_match promql_match;
    char promql_signal[PROMQL_SIGNAL_MAX];
};

struct watch {
    struct sym *sym;
    enum role role;
    const struct rb_match *match;
};

struct watchers {
    struct watch *w;
    size_t n, cap;
};

/* Scratch, per node, while one symptom is evaluated. */
struct member {
    bool has;
    double value;
    double num, den;
    enum rule_state level;
    bool by_command; /* what decides comes from a sample measured while a command ran */
};

struct rules {
    const struct rb_set *set;
    struct rules_limits limits;
    struct node *nodes;
    size_t nnodes, nodes_cap;
    zhashx_t *node_index; /* name -> index + 1 */
    struct sym *syms;
    size_t nsyms;
    zhashx_t *by_signal; /* signal name -> struct watchers (owned) */
    struct member *members;
    struct rule_event *events;
    size_t nevents, events_cap;
    /* The firing nodes' names of this evaluation's events (pointers into nodes[]; nodes[] only
       grows in rules_observe, after the caller is done with the events). */
    const char **firing;
    size_t nfiring, firing_cap;
    size_t *firing_off; /* per event: where its names start in firing[] */
    struct rules_stats stats;
    int64_t absence_grace_ms;
    int64_t first_evaluation_ms; /* 0 = not evaluated yet */
};

static void free_item(void **item)
{
    free(*item);
    *item = NULL;
}

static void free_watchers(void **item)
{
    struct watchers *w = *item;
    if (w)
        free(w->w);
    free(w);
    *item = NULL;
}

const char *rules_state_name(enum rule_state state)
{
    switch (state) {
    case RULE_OK:
        return "ok";
    case RULE_WARNING:
        return "warning";
    case RULE_CRITICAL:
        return "critical";
    }
    return "?";
}

int rules_promql_signal(const char *runbook_id, const char *symptom_id, char *buf, size_t size)
{
    int n = snprintf(buf, size, "promql.%s.%s", runbook_id, symptom_id);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int rules_promql_verify_signal(const char *runbook_id, size_t index, char *buf, size_t size)
{
    char id[32];
    snprintf(id, sizeof id, "verify-%zu", index);
    return rules_promql_signal(runbook_id, id, buf, size);
}

/* ---- symptoms and the signal index ---- */

static void syms_free(struct sym *syms, size_t n)
{
    for (size_t i = 0; syms && i < n; i++) {
        zhashx_destroy(&syms[i].series);
        free(syms[i].slots);
        syms[i].slots = NULL;
    }
    free(syms);
}

static int sym_init(struct sym *sym, const struct rb_runbook *rb)
{
    sym->rb = rb;
    sym->series = zhashx_new();
    if (!sym->series)
        return -ENOMEM;
    zhashx_set_destructor(sym->series, free_item);
    /* An id too long for the synthetic name leaves the PromQL condition unmatched. */
    int r = sym->s ? rules_promql_signal(rb->id ? rb->id : "", sym->s->id ? sym->s->id : "",
                                         sym->promql_signal, sizeof sym->promql_signal)
                   : rules_promql_verify_signal(rb->id ? rb->id : "", sym->verify_index,
                                                sym->promql_signal, sizeof sym->promql_signal);
    if (r == 0)
        sym->promql_match.signal = sym->promql_signal;
    return 0;
}

/* Every runbook's symptoms, then its verify entries, in file order. */
static int syms_build(const struct rb_set *set, struct sym **ret_syms, size_t *ret_n)
{
    size_t n = 0;
    for (size_t r = 0; set && r < set->n; r++)
        n += set->runbooks[r].nsymptoms + set->runbooks[r].nverify;
    struct sym *syms = calloc(n ? n : 1, sizeof *syms);
    if (!syms)
        return -ENOMEM;
    size_t k = 0;
    for (size_t r = 0; set && r < set->n; r++) {
        const struct rb_runbook *rb = &set->runbooks[r];
        for (size_t i = 0; i < rb->nsymptoms + rb->nverify; i++, k++) {
            struct sym *sym = &syms[k];
            sym->first = k - i;
            if (i < rb->nsymptoms) {
                sym->s = &rb->symptoms[i];
                sym->cond = &sym->s->cond;
            } else {
                sym->verify_index = i - rb->nsymptoms;
                sym->verify = &rb->verify[sym->verify_index];
                sym->cond = &sym->verify->cond;
            }
            if (sym_init(sym, rb) != 0) {
                syms_free(syms, n);
                return -ENOMEM;
            }
        }
    }
    *ret_syms = syms;
    *ret_n = n;
    return 0;
}

static int index_add(zhashx_t *index, struct sym *sym, enum role role, const struct rb_match *m)
{
    if (!m->signal)
        return 0;
    struct watchers *w = zhashx_lookup(index, m->signal);
    if (!w) {
        w = calloc(1, sizeof *w);
        if (!w || zhashx_insert(index, m->signal, w) != 0) {
            free(w);
            return -ENOMEM;
        }
    }
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 4;
        struct watch *grown = realloc(w->w, cap * sizeof *grown);
        if (!grown)
            return -ENOMEM;
        w->w = grown;
        w->cap = cap;
    }
    w->w[w->n++] = (struct watch){sym, role, m};
    return 0;
}

static zhashx_t *index_build(struct sym *syms, size_t n)
{
    zhashx_t *index = zhashx_new();
    if (!index)
        return NULL;
    zhashx_set_destructor(index, free_watchers);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const struct rb_condition *c = syms[i].cond;
        switch (c->kind) {
        case RB_COND_THRESHOLD:
        case RB_COND_ABSENCE:
            rc = index_add(index, &syms[i], ROLE_MATCH, &c->match);
            break;
        case RB_COND_RATIO:
            rc = index_add(index, &syms[i], ROLE_NUMERATOR, &c->numerator);
            if (rc == 0)
                rc = index_add(index, &syms[i], ROLE_DENOMINATOR, &c->denominator);
            break;
        case RB_COND_PROMQL:
            rc = index_add(index, &syms[i], ROLE_MATCH, &syms[i].promql_match);
            break;
        }
    }
    if (rc != 0)
        zhashx_destroy(&index);
    return index;
}

static bool str_eq(const char *a, const char *b)
{
    return (a ? a : "")[0] == (b ? b : "")[0] && strcmp(a ? a : "", b ? b : "") == 0;
}

static bool match_eq(const struct rb_match *a, const struct rb_match *b)
{
    if (!str_eq(a->signal, b->signal) || a->nlabels != b->nlabels)
        return false;
    for (size_t i = 0; i < a->nlabels; i++)
        if (!str_eq(a->labels[i].key, b->labels[i].key) ||
            !str_eq(a->labels[i].value, b->labels[i].value))
            return false;
    return true;
}

static bool same_inputs(const struct rb_condition *a, const struct rb_condition *b)
{
    if (a->kind != b->kind)
        return false;
    if (a->kind == RB_COND_RATIO)
        return match_eq(&a->numerator, &b->numerator) && match_eq(&a->denominator, &b->denominator);
    return match_eq(&a->match, &b->match);
}

/* The same symptom (runbook id, symptom id) or verify entry (runbook id, position). */
static bool same_identity(const struct sym *a, const struct sym *b)
{
    if (!str_eq(a->rb->id, b->rb->id) || !a->s != !b->s)
        return false;
    return a->s ? str_eq(a->s->id, b->s->id) : a->verify_index == b->verify_index;
}

/* ---- lifecycle ---- */

rules_t *rules_new(const struct rb_set *set, const struct rules_limits *limits)
{
    rules_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->limits = (struct rules_limits){1024, 200000, 300000};
    if (limits) {
        if (limits->max_nodes)
            self->limits.max_nodes = limits->max_nodes;
        if (limits->max_series)
            self->limits.max_series = limits->max_series;
        if (limits->stale_ms > 0)
            self->limits.stale_ms = limits->stale_ms;
    }
    self->node_index = zhashx_new();
    if (!self->node_index || syms_build(set, &self->syms, &self->nsyms) != 0)
        goto err_destroy;
    self->by_signal = index_build(self->syms, self->nsyms);
    if (!self->by_signal)
        goto err_destroy;
    self->set = set;
    return self;

err_destroy:
    rules_destroy(&self);
    return NULL;
}

void rules_destroy(rules_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rules_t *self = *self_p;
    zhashx_destroy(&self->by_signal);
    syms_free(self->syms, self->nsyms);
    self->syms = NULL;
    zhashx_destroy(&self->node_index);
    free(self->nodes);
    free(self->members);
    free(self->events);
    free(self->firing);
    free(self->firing_off);
    free(self);
    *self_p = NULL;
}

int rules_set_runbooks(rules_t *self, const struct rb_set *set)
{
    struct sym *syms;
    size_t n;
    if (syms_build(set, &syms, &n) != 0)
        return -ENOMEM;
    zhashx_t *index = index_build(syms, n);
    if (!index) {
        syms_free(syms, n);
        return -ENOMEM;
    }
    /* Carry state over by (runbook id, symptom id or verify position); the series too when the
       condition still reads the same signals (otherwise they would match the wrong labels). */
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < self->nsyms; j++) {
            struct sym *old = &self->syms[j];
            if (!old->rb || !same_identity(old, &syms[i]))
                continue;
            free(syms[i].slots);
            syms[i].slots = old->slots;
            syms[i].nslots = old->nslots;
            old->slots = NULL;
            old->nslots = 0;
            syms[i].across = old->across;
            syms[i].seen_any = old->seen_any;
            if (same_inputs(old->cond, syms[i].cond)) {
                zhashx_destroy(&syms[i].series);
                syms[i].series = old->series;
                old->series = NULL;
            }
            old->rb = NULL; /* taken */
            break;
        }
    }
    for (size_t j = 0; j < self->nsyms; j++)
        if (self->syms[j].series)
            self->stats.series -= zhashx_size(self->syms[j].series);
    zhashx_destroy(&self->by_signal);
    syms_free(self->syms, self->nsyms);
    self->syms = syms;
    self->nsyms = n;
    self->by_signal = index;
    self->set = set;
    return 0;
}

/* ---- nodes ---- */

/* The node's index, registering it (up) when unknown; -1 when refused or over the limit. */
static long node_index(rules_t *self, const char *name, int64_t ts_ms)
{
    void *found = zhashx_lookup(self->node_index, name);
    if (found)
        return (long)((uintptr_t)found - 1);
    if (strlen(name) >= RULES_NODE_MAX) {
        self->stats.samples_refused++;
        return -1;
    }
    if (self->nnodes >= self->limits.max_nodes) {
        self->stats.nodes_dropped++;
        return -1;
    }
    if (self->nnodes == self->nodes_cap) {
        size_t cap = self->nodes_cap ? self->nodes_cap * 2 : 16;
        if (cap > self->limits.max_nodes)
            cap = self->limits.max_nodes;
        struct node *nodes = realloc(self->nodes, cap * sizeof *nodes);
        if (!nodes)
            return -1;
        self->nodes = nodes;
        struct member *members = realloc(self->members, cap * sizeof *members);
        if (!members)
            return -1;
        self->members = members;
        self->nodes_cap = cap;
    }
    size_t idx = self->nnodes;
    if (zhashx_insert(self->node_index, name, (void *)(uintptr_t)(idx + 1)) != 0)
        return -1;
    struct node *node = &self->nodes[idx];
    memset(node, 0, sizeof *node);
    memcpy(node->name, name, strlen(name) + 1);
    node->up = true;
    node->since_ms = ts_ms;
    self->nnodes++;
    self->stats.nodes = self->nnodes;
    return (long)idx;
}

static void node_set(rules_t *self, const char *name, bool up, int64_t ts_ms)
{
    if (!self || !name)
        return;
    long idx = node_index(self, name, ts_ms);
    if (idx < 0)
        return;
    struct node *node = &self->nodes[idx];
    if (node->up != up || !node->announced)
        node->since_ms = ts_ms;
    node->up = up;
    node->announced = true;
}

void rules_node_up(rules_t *self, const char *node, int64_t ts_ms)
{
    node_set(self, node, true, ts_ms);
}

void rules_node_down(rules_t *self, const char *node, int64_t ts_ms)
{
    node_set(self, node, false, ts_ms);
}

void rules_set_absence_grace(rules_t *self, int64_t grace_ms)
{
    if (self)
        self->absence_grace_ms = grace_ms > 0 ? grace_ms : 0;
}

/* Slots follow the node table's growth; false when memory is short. */
static bool sym_slots(rules_t *self, struct sym *sym)
{
    if (sym->nslots >= self->nnodes)
        return true;
    size_t cap = self->nodes_cap;
    struct slot *slots = realloc(sym->slots, cap * sizeof *slots);
    if (!slots)
        return false;
    memset(slots + sym->nslots, 0, (cap - sym->nslots) * sizeof *slots);
    sym->slots = slots;
    sym->nslots = cap;
    return true;
}

/* ---- observe ---- */

static bool labels_match(const struct rb_match *m, const struct rb_label *labels, size_t n)
{
    for (size_t i = 0; i < m->nlabels; i++) {
        bool found = false;
        for (size_t j = 0; j < n && !found; j++)
            found = str_eq(m->labels[i].key, labels[j].key) &&
                    str_eq(m->labels[i].value, labels[j].value);
        if (!found)
            return false;
    }
    return true;
}

/* "<role><node index>\x1f<k>\x1e<v>\x1f..." into key; false when it does not fit. */
static bool series_key(char *key, size_t size, long node, const struct rb_label *labels, size_t n)
{
    int len = snprintf(key, size, "0%ld", node);
    if (len < 0 || (size_t)len >= size)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!labels[i].key || !labels[i].value)
            return false;
        int w =
            snprintf(key + len, size - (size_t)len, "\x1f%s\x1e%s", labels[i].key, labels[i].value);
        if (w < 0 || (size_t)w >= size - (size_t)len)
            return false;
        len += w;
    }
    return true;
}

static void observe(rules_t *self, const char *node, const char *name,
                    const struct rb_label *labels, size_t nlabels, double value, int64_t ts_ms,
                    bool by_command);

void rules_observe(rules_t *self, const char *node, const char *name, const struct rb_label *labels,
                   size_t nlabels, double value, int64_t ts_ms)
{
    observe(self, node, name, labels, nlabels, value, ts_ms, false);
}

void rules_observe_during_command(rules_t *self, const char *node, const char *name,
                                  const struct rb_label *labels, size_t nlabels, double value,
                                  int64_t ts_ms)
{
    observe(self, node, name, labels, nlabels, value, ts_ms, true);
}

static void observe(rules_t *self, const char *node, const char *name,
                    const struct rb_label *labels, size_t nlabels, double value, int64_t ts_ms,
                    bool by_command)
{
    if (!self)
        return;
    self->stats.samples++;
    if (!name || !node || (nlabels && !labels) || isnan(value)) {
        self->stats.samples_refused++;
        return;
    }
    const struct watchers *w = zhashx_lookup(self->by_signal, name);
    if (!w) {
        self->stats.samples_unwatched++;
        return;
    }
    long idx = node_index(self, node, ts_ms);
    if (idx < 0)
        return;
    char key[SERIES_KEY_MAX];
    if (!series_key(key, sizeof key, idx, labels, nlabels)) {
        self->stats.samples_refused++;
        return;
    }
    bool stored = false;
    for (size_t i = 0; i < w->n; i++) {
        const struct watch *watch = &w->w[i];
        struct sym *sym = watch->sym;
        if (!labels_match(watch->match, labels, nlabels) || !sym_slots(self, sym))
            continue;
        struct slot *slot = &sym->slots[idx];
        if (!slot->seen || ts_ms > slot->last_seen_ms)
            slot->last_seen_ms = ts_ms;
        slot->seen = true;
        stored = true;
        sym->seen_any = true;
        if (sym->cond->kind == RB_COND_ABSENCE)
            continue; /* absence needs the time only */
        key[0] = (char)('0' + watch->role);
        struct series *s = zhashx_lookup(sym->series, key);
        if (!s) {
            if (self->stats.series >= self->limits.max_series) {
                self->stats.series_dropped++;
                continue;
            }
            s = calloc(1, sizeof *s);
            if (!s || zhashx_insert(sym->series, key, s) != 0) {
                free(s);
                continue;
            }
            s->node = (uint32_t)idx;
            s->role = watch->role;
            s->ts_ms = INT64_MIN;
            self->stats.series++;
        }
        if (ts_ms >= s->ts_ms) { /* a late, older sample does not replace a newer one */
            s->value = value;
            s->ts_ms = ts_ms;
            s->by_command = by_command;
        }
    }
    if (stored)
        self->stats.samples_matched++;
}

/* ---- levels ---- */

static bool past(enum rb_op op, double value, double level)
{
    switch (op) {
    case RB_OP_GT:
        return value > level;
    case RB_OP_GE:
        return value >= level;
    case RB_OP_LT:
        return value < level;
    case RB_OP_LE:
        return value <= level;
    }
    return false;
}

/* Back past the clear level: a hovering value stays in its state. */
static bool cleared(enum rb_op op, double value, double clear)
{
    return op == RB_OP_GT || op == RB_OP_GE ? value < clear : value > clear;
}

static bool worse(enum rb_op op, double a, double b)
{
    if (isnan(b))
        return !isnan(a);
    return op == RB_OP_GT || op == RB_OP_GE ? a > b : a < b;
}

/* The level a value is at, given the confirmed state (hysteresis). */
static enum rule_state level_of(const struct rb_condition *c, double value,
                                enum rule_state confirmed)
{
    if (isnan(value))
        return RULE_OK;
    double clear = isnan(c->clear) ? c->warning : c->clear;
    if (!isnan(c->critical)) {
        /* Without a clear level, a state ends as soon as the value is no longer past its
         * level (http.up below 1 clears at 1); with one, it must go back past it. */
        double crit_clear = c->critical - (c->warning - clear);
        if (past(c->op, value, c->critical) ||
            (confirmed == RULE_CRITICAL && !isnan(c->clear) && !cleared(c->op, value, crit_clear)))
            return RULE_CRITICAL;
    }
    if (past(c->op, value, c->warning))
        return RULE_WARNING;
    if (confirmed != RULE_OK && !isnan(c->clear) && !cleared(c->op, value, clear))
        return RULE_WARNING;
    return RULE_OK;
}

/* ---- evaluation ---- */

struct verdict {
    enum rule_state candidate;
    double value;
    size_t firing, total;
    const char *node; /* scope node */
    const struct rb_combination *combination; /* scope node: the worst one the node completes */
};

static __attribute__((format(printf, 4, 5))) void append(char *buf, size_t size, size_t *len,
                                                         const char *fmt, ...)
{
    if (*len >= size)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *len, size - *len, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len = *len + (size_t)n < size ? *len + (size_t)n : size;
}

static void append_match(char *buf, size_t size, size_t *len, const struct rb_match *m)
{
    append(buf, size, len, "%s", m->signal ? m->signal : "?");
    for (size_t i = 0; i < m->nlabels; i++)
        append(buf, size, len, "%s%s=%s", i ? "," : "{", m->labels[i].key ? m->labels[i].key : "",
               m->labels[i].value ? m->labels[i].value : "");
    if (m->nlabels)
        append(buf, size, len, "}");
}

static const char *op_word(enum rb_op op)
{
    switch (op) {
    case RB_OP_GT:
        return "above";
    case RB_OP_GE:
        return "at least";
    case RB_OP_LT:
        return "below";
    case RB_OP_LE:
        return "at most";
    }
    return "?";
}

static void reason_text(const struct sym *sym, const struct verdict *v, enum rule_state state,
                        char *buf, size_t size)
{
    const struct rb_condition *c = sym->cond;
    size_t len = 0;
    buf[0] = '\0';
    if (c->kind == RB_COND_ABSENCE) {
        append_match(buf, size, &len, &c->match);
        append(buf, size, &len, " %s for %gs (limit %gs)", state ? "silent" : "heard again",
               v->value, (double)c->absent_ms / 1000);
    } else {
        if (c->kind == RB_COND_RATIO) {
            append_match(buf, size, &len, &c->numerator);
            append(buf, size, &len, " / ");
            append_match(buf, size, &len, &c->denominator);
        } else if (c->kind == RB_COND_PROMQL) {
            append(buf, size, &len, "%s", sym->promql_signal);
        } else {
            append_match(buf, size, &len, &c->match);
        }
        const char *unit = c->kind == RB_COND_RATIO ? "%" : "";
        if (isnan(v->value))
            append(buf, size, &len, ": no data");
        else if (state == RULE_OK)
            append(buf, size, &len, " = %g%s, back past %g", v->value, unit,
                   isnan(c->clear) ? c->warning : c->clear);
        else
            append(buf, size, &len, " = %g%s %s %g", v->value, unit, op_word(c->op),
                   state == RULE_CRITICAL ? c->critical : c->warning);
        if (c->kind == RB_COND_RATIO)
            append(buf, size, &len, " over %gs", (double)c->window_ms / 1000);
        if (state != RULE_OK && c->for_ms > 0)
            append(buf, size, &len, " for %gs", (double)c->for_ms / 1000);
    }
    if (v->node)
        append(buf, size, &len, " on node %s", v->node[0] ? v->node : "(coordinator)");
    else
        append(buf, size, &len, " on %zu of %zu nodes", v->firing, v->total);
}

static enum rb_severity base_severity(const struct sym *sym)
{
    return sym->s->severity != RB_SEV_NONE ? sym->s->severity : sym->rb->severity;
}

static struct rule_event *event_slot(rules_t *self)
{
    if (self->nevents == self->events_cap) {
        size_t cap = self->events_cap ? self->events_cap * 2 : 16;
        struct rule_event *grown = realloc(self->events, cap * sizeof *grown);
        if (!grown)
            return NULL;
        self->events = grown;
        size_t *off = realloc(self->firing_off, cap * sizeof *off);
        if (!off)
            return NULL;
        self->firing_off = off;
        self->events_cap = cap;
    }
    return &self->events[self->nevents];
}

/* Records the names of the nodes firing for the event being built (members[] of this
 * evaluation, or the one node of a per-node instance). false when memory is short. */
static bool event_firing(rules_t *self, const struct verdict *v, enum rule_state state)
{
    size_t need = self->nfiring + (v->node ? 1 : self->nnodes);
    if (need > self->firing_cap) {
        size_t cap = need > 2 * self->firing_cap ? need : 2 * self->firing_cap;
        const char **grown = realloc(self->firing, cap * sizeof *grown);
        if (!grown)
            return false;
        self->firing = grown;
        self->firing_cap = cap;
    }
    self->firing_off[self->nevents] = self->nfiring;
    if (state == RULE_OK)
        return true; /* a clear names no node */
    if (v->node) {
        self->firing[self->nfiring++] = v->node;
        return true;
    }
    for (size_t i = 0; i < self->nnodes; i++)
        if (self->members[i].has && self->members[i].level >= RULE_WARNING)
            self->firing[self->nfiring++] = self->nodes[i].name;
    return true;
}

/* Whether inst fired (was not OK) at some evaluation in the last within_ms. */
static bool fired_within(const struct instance *inst, int64_t now_ms, int64_t within_ms)
{
    return inst->state != RULE_OK || (inst->last_fired_ms > 0 && now_ms - inst->last_fired_ms <= within_ms);
}

/* The most severe of sym's runbook's combinations that include sym's symptom and whose other
 * symptoms all fired on node (an index into nodes[]) within the combination's window; NULL when
 * none. Only the symptom evaluated now needs to be firing: the others' bursts may have ended. */
static const struct rb_combination *combination_of(const rules_t *self, const struct sym *sym,
                                                   size_t node, int64_t now_ms)
{
    const struct rb_runbook *rb = sym->rb;
    size_t own = (size_t)(sym->s - rb->symptoms);
    const struct rb_combination *worst = NULL;
    for (size_t c = 0; c < rb->ncombinations; c++) {
        const struct rb_combination *comb = &rb->combinations[c];
        bool mine = false, others = true;
        for (size_t j = 0; j < comb->nsymptoms && others; j++) {
            if (comb->symptoms[j] == own) {
                mine = true;
                continue;
            }
            const struct sym *other = &self->syms[sym->first + comb->symptoms[j]];
            others = node < other->nslots &&
                     fired_within(&other->slots[node].inst, now_ms, comb->within_ms);
        }
        if (mine && others && (!worst || comb->severity < worst->severity))
            worst = comb;
    }
    return worst;
}

/* Appends to a firing event's reason which combination raised it. */
static void combination_text(const struct sym *sym, const struct rb_combination *comb, char *buf,
                             size_t size)
{
    size_t len = strlen(buf);
    append(buf, size, &len, "; with");
    const char *sep = " ";
    for (size_t j = 0; j < comb->nsymptoms; j++) {
        const struct rb_symptom *other = &sym->rb->symptoms[comb->symptoms[j]];
        if (other == sym->s)
            continue;
        append(buf, size, &len, "%s%s", sep, other->id);
        sep = ", ";
    }
    append(buf, size, &len, " on the same node within %gm: %s", (double)comb->within_ms / 60000,
           rb_severity_name(comb->severity));
}

/* Applies `for` to the candidate level and reports a change of state or severity. */
static void step(rules_t *self, struct sym *sym, struct instance *inst, const struct verdict *v,
                 int64_t now_ms)
{
    const struct rb_condition *c = sym->cond;
    bool warn = v->candidate >= RULE_WARNING, crit = v->candidate >= RULE_CRITICAL;
    if (warn && !inst->warn_holding)
        inst->warn_since = now_ms;
    if (crit && !inst->crit_holding)
        inst->crit_since = now_ms;
    inst->warn_holding = warn;
    inst->crit_holding = crit;

    int64_t hold = c->for_ms > 0 ? c->for_ms : 0;
    enum rule_state state = RULE_OK;
    if (crit && now_ms - inst->crit_since >= hold)
        state = RULE_CRITICAL;
    else if (warn && now_ms - inst->warn_since >= hold)
        state = RULE_WARNING;
    /* `for` delays rising only: a level already reached stays until its condition ends. */
    if (state < inst->state && v->candidate >= inst->state)
        state = inst->state;
    if (state != RULE_OK || warn)
        inst->last_active_ms = now_ms;

    enum rb_severity severity = base_severity(sym);
    if (state != RULE_OK && sym->s->severity_all != RB_SEV_NONE && v->total > 0 &&
        v->firing == v->total)
        severity = sym->s->severity_all;
    if (state != RULE_OK && v->combination && v->combination->severity < severity)
        severity = v->combination->severity;
    if (state != RULE_OK)
        inst->last_fired_ms = now_ms;
    if (inst->severity == RB_SEV_NONE)
        inst->severity = base_severity(sym);
    if (state == inst->state && (state == RULE_OK || severity == inst->severity))
        return;

    struct rule_event *e = event_slot(self);
    if (!e || !event_firing(self, v, state)) {
        self->stats.events_deferred++;
        return; /* not committed: the transition is reported at the next evaluation */
    }
    memset(e, 0, sizeof *e);
    e->runbook = sym->rb;
    e->symptom = sym->s;
    const char *node = v->node ? v->node : "";
    int n = snprintf(e->fingerprint, sizeof e->fingerprint, "%s/%s/%s",
                     sym->rb->id ? sym->rb->id : "", sym->s->id ? sym->s->id : "", node);
    if (n < 0)
        e->fingerprint[0] = '\0';
    n = snprintf(e->node, sizeof e->node, "%s", node);
    if (n < 0)
        e->node[0] = '\0';
    e->state = state;
    e->previous = inst->state;
    e->severity = state == RULE_OK ? inst->severity : severity;
    e->previous_severity = inst->severity;
    e->value = v->value;
    e->nodes_firing = v->firing;
    e->nodes_total = v->total;
    e->since_ms = state != RULE_OK ? inst->warn_since : 0;
    e->at_ms = now_ms;
    reason_text(sym, v, state, e->reason, sizeof e->reason);
    if (state != RULE_OK && v->combination)
        combination_text(sym, v->combination, e->reason, sizeof e->reason);
    self->nevents++;
    self->stats.events++;
    inst->state = state;
    inst->severity = state == RULE_OK ? base_severity(sym) : severity;
}

static bool scope_holds(const struct rb_scope *scope, size_t count, size_t total)
{
    switch (scope->kind) {
    case RB_SCOPE_NODE:
    case RB_SCOPE_ANY:
        return count > 0;
    case RB_SCOPE_ALL:
        return total > 0 && count == total;
    case RB_SCOPE_FRACTION:
        /* The small slack keeps 2 of 3 at fraction 0.6667 from failing on rounding. */
        return total > 0 && count > 0 && (double)count + 1e-9 >= scope->fraction * (double)total;
    }
    return false;
}

/* A ratio's denominator below this is no data (runbook.h, min_count). */
static double ratio_min(const struct rb_condition *c)
{
    return c->min_count > 0 ? (double)c->min_count : 1;
}

/* Fills members[] from the symptom's series (threshold, PromQL, ratio) or slots (absence). */
static void gather(rules_t *self, struct sym *sym, int64_t now_ms)
{
    const struct rb_condition *c = sym->cond;
    for (size_t i = 0; i < self->nnodes; i++)
        self->members[i] = (struct member){false, NAN, 0, 0, RULE_OK, false};

    if (c->kind == RB_COND_ABSENCE) {
        bool in_grace = now_ms < self->first_evaluation_ms + self->absence_grace_ms;
        for (size_t i = 0; i < self->nnodes; i++) {
            const struct node *node = &self->nodes[i];
            const struct slot *slot = &sym->slots[i];
            if (!slot->seen && !node->announced)
                continue; /* e.g. node "" of the PromQL poller: never expected to beat */
            /* Silence counts from the last sample, or from the node's (re)start when later;
               a node known down is silent since its last sample (or since it went down). */
            int64_t from = node->since_ms;
            if (slot->seen && (!node->up || slot->last_seen_ms > node->since_ms))
                from = slot->last_seen_ms;
            struct member *m = &self->members[i];
            m->has = true;
            m->value = (double)(now_ms - from) / 1000;
            m->level =
                !in_grace && (!node->up || now_ms - from > c->absent_ms) ? RULE_CRITICAL : RULE_OK;
        }
        return;
    }

    int64_t keep_ms = self->limits.stale_ms;
    if (c->kind == RB_COND_RATIO && c->window_ms > keep_ms)
        keep_ms = c->window_ms;
    size_t stale = 0;
    for (struct series *s = zhashx_first(sym->series); s; s = zhashx_next(sym->series)) {
        if (now_ms - s->ts_ms > keep_ms) {
            stale++;
            continue;
        }
        if (s->node >= self->nnodes || !self->nodes[s->node].up)
            continue;
        struct member *m = &self->members[s->node];
        if (c->kind == RB_COND_RATIO) {
            if (now_ms - s->ts_ms > c->window_ms)
                continue;
            m->has = true;
            m->by_command |= s->by_command;
            if (s->role == ROLE_NUMERATOR)
                m->num += s->value;
            else
                m->den += s->value;
        } else if (worse(c->op, s->value, m->value)) {
            m->has = true;
            m->value = s->value;
            m->by_command = s->by_command;
        }
    }
    if (stale) { /* forget them: memory stays bounded by live series */
        const char **keys = malloc(stale * sizeof *keys);
        size_t k = 0;
        for (struct series *s = zhashx_first(sym->series); keys && s; s = zhashx_next(sym->series))
            if (now_ms - s->ts_ms > keep_ms && k < stale)
                keys[k++] = zhashx_cursor(sym->series);
        for (size_t i = 0; i < k; i++)
            zhashx_delete(sym->series, keys[i]);
        self->stats.series -= k;
        free(keys);
    }
    if (c->kind == RB_COND_RATIO)
        for (size_t i = 0; i < self->nnodes; i++) {
            struct member *m = &self->members[i];
            m->has = m->has && m->den > 0;
            m->value = m->has ? m->num / m->den * 100 : NAN;
        }
}

static void evaluate_symptom(rules_t *self, struct sym *sym, int64_t now_ms)
{
    const struct rb_condition *c = sym->cond;
    if (!sym_slots(self, sym))
        return;
    self->stats.evaluations++;
    gather(self, sym, now_ms);

    bool per_node = c->scope.kind == RB_SCOPE_NODE;
    size_t total = 0, firing = 0, firing_crit = 0;
    double worst = NAN, worst_firing = NAN;
    double num = 0, den = 0;
    bool by_command = false; /* a sample measured while a command ran counts in the sums */
    for (size_t i = 0; i < self->nnodes; i++) {
        struct member *m = &self->members[i];
        /* A ratio per node needs its own minimum count; across nodes the sums do. */
        if (per_node && c->kind == RB_COND_RATIO && m->has && m->den < ratio_min(c))
            m->has = false;
        if (!m->has)
            continue;
        if (c->kind != RB_COND_ABSENCE) {
            /* Hysteresis is each node's own: a healthy node between the clear level and the
             * level must not count as firing because another node fired. */
            enum rule_state confirmed = per_node ? sym->slots[i].inst.state : sym->slots[i].level;
            m->level = level_of(c, m->value, confirmed);
            /* Measured while a command ran: Vigil's own action does not raise anything. */
            if (m->by_command && m->level > confirmed)
                m->level = confirmed;
            sym->slots[i].level = m->level;
        }
        total++;
        num += m->num;
        den += m->den;
        by_command |= m->by_command;
        enum rb_op op = c->kind == RB_COND_ABSENCE ? RB_OP_GT : c->op;
        if (worse(op, m->value, worst))
            worst = m->value;
        if (m->level >= RULE_WARNING) {
            firing++;
            if (worse(op, m->value, worst_firing))
                worst_firing = m->value;
        }
        if (m->level >= RULE_CRITICAL)
            firing_crit++;
    }

    if (per_node) {
        for (size_t i = 0; i < self->nnodes; i++) {
            const struct member *m = &self->members[i];
            struct instance *inst = &sym->slots[i].inst;
            if (!m->has && inst->state == RULE_OK && !inst->warn_holding)
                continue;
            struct verdict v = {m->has ? m->level : RULE_OK, m->has ? m->value : NAN, firing, total,
                                self->nodes[i].name, combination_of(self, sym, i, now_ms)};
            step(self, sym, inst, &v, now_ms);
        }
        return;
    }

    struct verdict v = {RULE_OK, isnan(worst_firing) ? worst : worst_firing, firing, total, NULL,
                        NULL};
    if (c->kind == RB_COND_RATIO) {
        /* One ratio across nodes; per-node ratios only say how many nodes share it. */
        v.value = den > 0 && den >= ratio_min(c) ? num / den * 100 : NAN;
        v.candidate = level_of(c, v.value, sym->across.state);
        if (by_command && v.candidate > sym->across.state)
            v.candidate = sym->across.state;
    } else if (scope_holds(&c->scope, firing_crit, total)) {
        v.candidate = RULE_CRITICAL;
    } else if (scope_holds(&c->scope, firing, total)) {
        v.candidate = RULE_WARNING;
    }
    step(self, sym, &sym->across, &v, now_ms);
}

static void verify_holding(struct instance *inst, bool holds, int64_t now_ms)
{
    if (holds && !inst->warn_holding)
        inst->warn_since = now_ms;
    inst->warn_holding = holds;
}

/* A verify entry holds where its condition is met: the value past its level (http.up at least
 * 1), an absence condition heard from. Across nodes: its scope over the nodes that report it
 * (scope node counts as all). No data: a ratio without requests holds (nothing failed); a
 * threshold holds only while no node has ever sent its signal (not collected here at all). */
static void evaluate_verify(rules_t *self, struct sym *sym, int64_t now_ms)
{
    const struct rb_condition *c = sym->cond;
    if (!sym_slots(self, sym))
        return;
    self->stats.evaluations++;
    gather(self, sym, now_ms);

    size_t total = 0, holding = 0;
    double num = 0, den = 0;
    for (size_t i = 0; i < self->nnodes; i++) {
        struct member *m = &self->members[i];
        bool holds = false;
        if (m->has) {
            holds = c->kind == RB_COND_ABSENCE ? m->level == RULE_OK
                                               : level_of(c, m->value, RULE_OK) != RULE_OK;
            total++;
            holding += holds;
            num += m->num;
            den += m->den;
        }
        verify_holding(&sym->slots[i].inst, holds, now_ms);
    }
    bool holds;
    if (c->kind == RB_COND_RATIO)
        holds = den <= 0 || den < ratio_min(c) || level_of(c, num / den * 100, RULE_OK) != RULE_OK;
    else if (total == 0)
        holds = !sym->seen_any;
    else if (c->scope.kind == RB_SCOPE_NODE)
        holds = holding == total;
    else
        holds = scope_holds(&c->scope, holding, total);
    verify_holding(&sym->across, holds, now_ms);
}

size_t rules_evaluate(rules_t *self, int64_t now_ms, const struct rule_event **ret_events)
{
    if (!self) {
        if (ret_events)
            *ret_events = NULL;
        return 0;
    }
    self->nevents = 0;
    self->nfiring = 0;
    if (self->first_evaluation_ms == 0)
        self->first_evaluation_ms = now_ms;
    for (size_t i = 0; i < self->nsyms; i++) {
        if (self->syms[i].s)
            evaluate_symptom(self, &self->syms[i], now_ms);
        else
            evaluate_verify(self, &self->syms[i], now_ms);
    }
    /* firing[] may have moved while it grew: point the events at it now. */
    for (size_t i = 0; i < self->nevents; i++) {
        size_t end = i + 1 < self->nevents ? self->firing_off[i + 1] : self->nfiring;
        self->events[i].firing = self->firing ? self->firing + self->firing_off[i] : NULL;
        self->events[i].n_firing = end - self->firing_off[i];
    }
    if (ret_events)
        *ret_events = self->events;
    return self->nevents;
}

static const char *scope_word(const struct rb_scope *scope, char *buf, size_t size)
{
    switch (scope->kind) {
    case RB_SCOPE_ANY:
        return "on any node";
    case RB_SCOPE_FRACTION:
        snprintf(buf, size, "on %g%% of nodes", scope->fraction * 100);
        return buf;
    default:
        return "on all nodes";
    }
}

/* "http.up at least 1 on all nodes" */
static void verify_text(const struct sym *sym, char *buf, size_t size, size_t *len)
{
    const struct rb_condition *c = sym->cond;
    char frac[32];
    if (c->kind == RB_COND_ABSENCE) {
        append_match(buf, size, len, &c->match);
        append(buf, size, len, " heard within %gs", (double)c->absent_ms / 1000);
        return;
    }
    if (c->kind == RB_COND_RATIO) {
        append_match(buf, size, len, &c->numerator);
        append(buf, size, len, " / ");
        append_match(buf, size, len, &c->denominator);
    } else {
        append_match(buf, size, len, &c->match);
    }
    append(buf, size, len, " %s %g%s", op_word(c->op), c->warning,
           c->kind == RB_COND_RATIO ? "%" : "");
    if (c->kind != RB_COND_RATIO)
        append(buf, size, len, " %s", scope_word(&c->scope, frac, sizeof frac));
}

/* The instance of sym that an incident on node (index idx, -1 = across nodes) reads. */
static const struct instance *instance_for(const struct sym *sym, bool per_node, long idx)
{
    if (!per_node)
        return &sym->across;
    return idx >= 0 && (size_t)idx < sym->nslots ? &sym->slots[idx].inst : NULL;
}

int rules_verified(const rules_t *self, const char *runbook_id, const char *node, int64_t now_ms,
                   char *why, size_t whylen)
{
    size_t len = 0;
    if (!why || whylen == 0)
        return -EINVAL;
    why[0] = '\0';
    if (!self || !runbook_id || !node)
        return -EINVAL;
    void *found = node[0] ? zhashx_lookup(self->node_index, node) : NULL;
    long idx = found ? (long)((uintptr_t)found - 1) : -1;

    /* The incident's own symptom instances (its fingerprint: per node, or across nodes) must
     * be OK; the verify hold counts from the last moment one of them was not. */
    int64_t quiet_since = INT64_MIN;
    for (size_t i = 0; i < self->nsyms; i++) {
        const struct sym *sym = &self->syms[i];
        bool per_node = sym->s && sym->cond->scope.kind == RB_SCOPE_NODE;
        if (!sym->s || !str_eq(sym->rb->id, runbook_id) || per_node != (node[0] != '\0'))
            continue;
        const struct instance *inst = instance_for(sym, per_node, idx);
        if (!inst)
            continue;
        if (inst->state != RULE_OK || inst->warn_holding) {
            append(why, whylen, &len, "symptom %s is %s", sym->s->id,
                   inst->state != RULE_OK ? rules_state_name(inst->state) : "rising");
            return 0;
        }
        if (inst->last_active_ms > quiet_since)
            quiet_since = inst->last_active_ms;
    }

    size_t nverify = 0;
    for (size_t i = 0; i < self->nsyms; i++) {
        const struct sym *sym = &self->syms[i];
        if (sym->s || !str_eq(sym->rb->id, runbook_id))
            continue;
        nverify++;
        bool per_node = sym->cond->scope.kind == RB_SCOPE_NODE && idx >= 0;
        const struct instance *inst = instance_for(sym, per_node, idx);
        int64_t from = inst ? inst->warn_since : now_ms;
        if (quiet_since > from)
            from = quiet_since;
        if (!inst || !inst->warn_holding || now_ms - from < sym->verify->hold_ms) {
            len = 0;
            append(why, whylen, &len, "waiting for ");
            verify_text(sym, why, whylen, &len);
            if (inst && inst->warn_holding)
                append(why, whylen, &len, " (held %gs of %gs)", (double)(now_ms - from) / 1000,
                       (double)sym->verify->hold_ms / 1000);
            return 0;
        }
        append(why, whylen, &len, "%s", nverify > 1 ? "; " : "");
        verify_text(sym, why, whylen, &len);
        append(why, whylen, &len, " for %gs", (double)sym->verify->hold_ms / 1000);
    }
    if (nverify == 0) {
        append(why, whylen, &len, "runbook %s has no verify conditions", runbook_id);
        return -ENOENT;
    }
    return 1;
}

void rules_stats(const rules_t *self, struct rules_stats *ret_stats)
{
    if (self && ret_stats)
        *ret_stats = self->stats;
}
