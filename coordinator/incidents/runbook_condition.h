/*
 * Private to the runbook loader: one symptom or one verify entry of a runbook, read from its
 * YAML mapping into a struct rb_symptom or struct rb_verify (format: docs/runbook-format.md,
 * "Symptoms" and "Verify").
 *
 * Both are a condition — signal, ratio, absent or promql, exactly one; a comparison (above,
 * below, at_least or at_most, with one level or warning/critical/clear levels); for; scope —
 * plus what the place adds: a symptom's id and severities, a verify entry's hold. Every
 * combination that cannot mean anything (two kinds, two comparisons, labels outside signal, a
 * comparison on absent, a scope on promql, severity_all on a scope that cannot grow) is refused
 * with the position of the offending key. 0, or a negative errno with the loader's err set; on
 * failure the caller frees what was built (runbooks_free copes with a half-built entry).
 */
#ifndef COORDINATOR_RUNBOOK_CONDITION_H
#define COORDINATOR_RUNBOOK_CONDITION_H

#include "runbook_yaml.h"

/* The symptom at path ("symptoms[2]"); where places messages about a node without a position.
 * runbook_severity is the runbook's, the floor severity_all is checked against. */
int rb_condition_get_symptom(struct rb_loader *ld, struct fy_node *node, const char *path,
                             const struct fy_mark *where, enum rb_severity runbook_severity,
                             struct rb_symptom *s);

/* The verify entry at path ("verify[0]"): a condition and how long it must hold. */
int rb_condition_get_verify(struct rb_loader *ld, struct fy_node *node, const char *path,
                            const struct fy_mark *where, struct rb_verify *v);

#endif
