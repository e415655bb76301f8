/*
 * Runbooks as data: the in-memory model of the runbooks/ directory's YAML files (format:
 * docs/runbook-format.md).
 *
 * A runbook turns one section of the incident-response document into rules: symptoms
 * (conditions over signals that open an incident), what to investigate (evidence kinds to
 * collect), how to resolve (actions and their mode), how to verify (conditions that must
 * hold for a period before the incident resolves itself), and which other runbooks' incidents
 * explain this one (root cause first).
 *
 * Ownership: runbook_load.c and the parsers it calls (runbook_parse.c, runbook_condition.c)
 * build a struct rb_set and are the only code that allocates in it;
 * everything else reads it. A set is immutable once loaded; a reload builds a new set and the
 * caller swaps it in only when the whole directory loaded cleanly (the last good set stays).
 */
#ifndef COORDINATOR_RUNBOOK_H
#define COORDINATOR_RUNBOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The document's severity levels; lower is worse. RB_SEV_NONE = not set. */
enum rb_severity { RB_SEV_NONE = 0, RB_SEV1 = 1, RB_SEV2 = 2, RB_SEV3 = 3, RB_SEV4 = 4 };

/* Comparison of a value against a level: "above" fires at value > level ("at least": >=). */
enum rb_op { RB_OP_GT, RB_OP_GE, RB_OP_LT, RB_OP_LE };

/* Where a condition is evaluated and how node results combine. */
enum rb_scope_kind {
    RB_SCOPE_NODE,     /* per node: one incident per node (fingerprint includes the node) */
    RB_SCOPE_ANY,      /* across nodes: holds when it holds on at least one node */
    RB_SCOPE_ALL,      /* across nodes: holds when it holds on every node that reports it */
    RB_SCOPE_FRACTION, /* across nodes: holds on at least `fraction` of them */
};

struct rb_scope {
    enum rb_scope_kind kind;
    double fraction; /* RB_SCOPE_FRACTION: 0 < fraction <= 1 */
};

enum rb_cond_kind {
    RB_COND_THRESHOLD, /* the latest value of a signal series against levels */
    RB_COND_RATIO,     /* sum(numerator) / sum(denominator) * 100 over a window, across nodes */
    RB_COND_ABSENCE,   /* no sample of a signal (e.g. agent.uptime_s: the heartbeat) for a time */
    RB_COND_PROMQL,    /* a PromQL expression evaluated against the configured Prometheus */
};

struct rb_label {
    char *key;
    char *value;
};

/* Which series a condition reads: a signal name and label equalities (all must match). */
struct rb_match {
    char *signal;
    struct rb_label *labels;
    size_t nlabels;
};

struct rb_condition {
    enum rb_cond_kind kind;
    struct rb_match match;                  /* THRESHOLD, ABSENCE */
    struct rb_match numerator, denominator; /* RATIO */
    int64_t window_ms;                      /* RATIO: the window the sums cover */
    int min_count; /* RATIO: fewer than this in the denominator's sum = no data (a single
                      failed request out of one is not a 100 % error rate); default 1 */
    char *promql;                           /* PROMQL: the expression (a single number) */
    int64_t interval_ms;                    /* PROMQL: how often it is evaluated */
    enum rb_op op;                          /* THRESHOLD, RATIO, PROMQL */
    /* Levels. The file's one-number form ("above: 5") sets warning = critical = 5: the
       condition is critical as soon as it holds. {warning: W} alone leaves critical NAN;
       {critical: C} alone sets warning = C. Always warning <= critical for GT/GE, >= for
       LT/LE; clear on the far side of warning (<= for GT/GE, >= for LT/LE). */
    double warning;        /* level for state warning */
    double critical;       /* level for state critical; NAN = no critical level */
    double clear;          /* hysteresis: the state clears only back past this
                              level (CPU fires above 80, clears below 75); NAN =
                              the warning level itself */
    int64_t for_ms;        /* must hold this long before it fires; 0 = at once */
    int64_t absent_ms;     /* ABSENCE: silence longer than this fires */
    struct rb_scope scope; /* default NODE. RATIO: NODE = a ratio per node, any other kind =
                              sums across nodes. PROMQL: always ANY (one number). */
    int line, column;      /* where the condition starts in its file, for messages */
};

struct rb_symptom {
    char *id; /* unique within the runbook */
    struct rb_condition cond;
    enum rb_severity severity;     /* when it fires (RB_SEV_NONE: the runbook's severity) */
    enum rb_severity severity_all; /* when it holds on every node (scope grew); NONE = same */
};

/* A verification: cond must hold continuously for hold_ms before the incident resolves. */
struct rb_verify {
    struct rb_condition cond;
    int64_t hold_ms;
};

/* Evidence to collect when an incident opens (vigilctl collect KIND --arg k=v). */
struct rb_evidence {
    char *kind;
    struct rb_label *args;
    size_t nargs;
    bool on_cluster; /* `on: cluster`: collected once from the cluster agent, not the nodes */
};

enum rb_mode {
    RB_MODE_AUTO,    /* may run on the coordinator's signature alone */
    RB_MODE_APPROVE, /* needs an operator's approval */
    RB_MODE_MANUAL,  /* shown to the responder; never run by Vigil */
};

struct rb_action {
    char *name; /* an action in the agents' allow-lists */
    enum rb_mode mode;
    struct rb_label *args;
    size_t nargs;
    int max_nodes; /* blast radius: at most this many nodes per incident; 0 = no limit */
    /* After an automatic run reported done, the verify conditions must hold within this, or the
       action's inverse runs and the incident escalates (1s to 1d; default 5m). */
    int64_t verify_within_ms;
    /* `on: cluster`: requested from the cluster agent (role: cluster) that declares the action,
       once per incident, instead of from the incident's nodes (kubernetes, and database or
       cache actions the cluster agent holds). */
    bool on_cluster;
};

#define RB_DEFAULT_VERIFY_WITHIN_MS (5 * 60 * 1000)

/* Symptoms that, together on one node, are worse than each alone (the security runbook's failed
 * logins and a new listener): once every one of them has fired on the node within `within`,
 * each that is firing there carries this severity. */
struct rb_combination {
    size_t *symptoms; /* indices into the runbook's symptoms: at least 2, distinct, scope node */
    size_t nsymptoms;
    int64_t within_ms;
    enum rb_severity severity; /* more severe than each of its symptoms' own */
};

#define RB_DEFAULT_COMBINATION_WITHIN_MS (30 * 60 * 1000)

struct rb_runbook {
    char *id; /* unique across the set; the incident fingerprint starts with it */
    char *title;
    char *doc;    /* link to the human text (docs/incident-response-runbooks.md#...) */
    char *policy; /* escalation policy name; "" = the default policy */
    char *file;   /* the file it came from */
    enum rb_severity severity;
    char **depends_on; /* ids of runbooks whose open incidents explain this one's symptoms */
    size_t ndepends;
    struct rb_symptom *symptoms;
    size_t nsymptoms;
    struct rb_combination *combinations;
    size_t ncombinations;
    struct rb_evidence *investigate;
    size_t ninvestigate;
    struct rb_action *resolve;
    size_t nresolve;
    struct rb_verify *verify;
    size_t nverify;
    int64_t reopen_window_ms; /* a symptom returning within this after resolve reopens */
};

struct rb_set {
    struct rb_runbook *runbooks;
    size_t n;
    /* References (runbooks_ref): the rule engine holds the set in force, and the admin thread
       the same set for drills while it plays one; the last runbooks_free frees it. The only
       field that changes after loading; atomic. */
    int refs;
};

#endif
