/*
 * Private to the runbook loader: one runbook document (the root mapping of one file) read into
 * a struct rb_runbook, with every check that needs no other file. Its top-level keys (id,
 * title, doc, severity, policy, reopen_window, depends_on), its investigate entries (evidence
 * kinds and the arguments each kind takes) and resolve entries (actions and their mode) are read
 * here; symptoms and verify entries by runbook_condition.c.
 */
#ifndef COORDINATOR_RUNBOOK_PARSE_H
#define COORDINATOR_RUNBOOK_PARSE_H

#include "runbook_yaml.h"

/* Fills rb (zeroed by the caller) from root and records in ld->marks where its id and
 * depends_on entries are, for the set-level checks. 0, or a negative errno with the loader's
 * err set; on failure rb holds what was built so far, for the caller to free. rb->file is the
 * caller's to set. */
int rb_parse_runbook(struct rb_loader *ld, struct fy_node *root, struct rb_runbook *rb);

#endif
