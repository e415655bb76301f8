/*
 * Loading the runbooks/ directory's YAML files into a struct rb_set (format:
 * docs/runbook-format.md).
 *
 * Every file is hostile input: unknown keys, wrong types, impossible thresholds, unknown
 * signals, evidence kinds and action modes, duplicate ids and dangling depends_on are refused
 * with "file:line:col: message". A load either returns a complete set or NULL: nothing is
 * ever half-loaded, so a reload keeps the last good set on any error.
 */
#ifndef COORDINATOR_RUNBOOK_LOAD_H
#define COORDINATOR_RUNBOOK_LOAD_H

#include "runbook.h"

#include <stdbool.h>
#include <stddef.h>

/* Bounds on one file and one set; anything larger is refused at load. */
#define RB_FILE_MAX_BYTES (256 * 1024)
#define RB_SET_MAX_RUNBOOKS 64
#define RB_MAX_SYMPTOMS 32
#define RB_MAX_STEPS 16  /* investigate, resolve and verify entries each */
#define RB_MAX_LABELS 16 /* labels of a match, args of an evidence kind or action */
#define RB_MAX_DEPENDS 16
/* An investigate entry's promql query: an evidence argument's bound on the wire
 * (VG_MAX_VALUE_LEN). */
#define RB_PROMQL_QUERY_MAX_LEN 1024
#define RB_MAX_COMBINATIONS 8
#define RB_ID_MAX_LEN 64 /* ids, policy and action names: [a-z0-9][a-z0-9_-]* */

/*
 * Loads every *.yaml in dir (names starting with '.' skipped; sorted by name) into a new set,
 * then checks the set as a whole: runbook ids unique, every depends_on names another runbook
 * of the set, no dependency cycles. On any error returns NULL with err = "file:line:col:
 * message" (or "dir: message").
 */
struct rb_set *runbooks_load_dir(const char *dir, char *err, size_t errlen);

/* One file, with every check that needs no other file (depends_on is only checked against the
 * runbook's own id). Returns a set of one runbook, or NULL with err set. */
struct rb_set *runbooks_load_file(const char *path, char *err, size_t errlen);

/* Drops the caller's reference to a set from either loader (freeing it with the last one) and
 * nulls the caller's pointer; NULL is fine. */
void runbooks_free(struct rb_set **set_p);
/* One more reference to set (NULL is fine), for another thread: a set is immutable once loaded,
 * so it may be read from several threads; each drops its reference with runbooks_release. */
const struct rb_set *runbooks_ref(const struct rb_set *set);
void runbooks_release(const struct rb_set **set_p);

/* The runbook with this id, or NULL. */
const struct rb_runbook *runbooks_find(const struct rb_set *set, const char *id);

/* True for a signal name the agents emit (README "Signals") and for "alert.<alertname>", the
 * signals Alertmanager alerts become. */
bool runbook_signal_known(const char *name);

/* "SEV1".."SEV4"; "none" for RB_SEV_NONE. */
const char *rb_severity_name(enum rb_severity s);

#endif
