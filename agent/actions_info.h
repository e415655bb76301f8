/*
 * The action catalog as the coordinator may know it: one ActionInfo per action (name, kind,
 * mode, parameter names, root, inverse, the evidence to collect after it — never argv), carried
 * by Enroll so the coordinator routes an action only to agents that declare it and collects
 * that evidence once it ran (docs/remediation.md).
 *
 * The mode is the signatures the action needs on this node: "destructive" when the catalog
 * marks it destructive, "auto" when it marks it auto, "approve" otherwise.
 *
 * The messages borrow every string from the catalog: free them before it. Read-only once built.
 */
#ifndef AGENT_ACTIONS_INFO_H
#define AGENT_ACTIONS_INFO_H

#include <stddef.h>

#include "actions.h"
#include "vigil.pb-c.h"

/* 0 with a malloc'd array of actions_count(catalog) messages in *ret (NULL when there are
 * none), or -ENOMEM. catalog may be NULL (no actions). */
int actions_info_build(const actions_t *catalog, Vigil__ActionInfo ***ret, size_t *ret_count);
void actions_info_free(Vigil__ActionInfo ***infos_p, size_t count);

/* "auto", "approve" or "destructive". */
const char *actions_info_mode(const struct action *a);

#endif
