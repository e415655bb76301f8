/*
 * How vigilctl shows evidence, shared by the evidence commands (cmd_evidence.c, which owns these
 * functions) and `command show` (the evidence a command left).
 */
#ifndef CTL_EVIDENCE_VIEW_H
#define CTL_EVIDENCE_VIEW_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "vigil.pb-c.h"

/* One entry as 'vigilctl help evidence' documents it (a new reference). */
json_t *evidence_view_json(const Vigil__EvidenceInfo *e);

/* A table on stdout: the stored artifacts only (stored_only), or every entry with its status
 * and error. 0 or a negative errno. */
int evidence_view_table(Vigil__EvidenceInfo *const *items, size_t n, bool stored_only);

#endif
