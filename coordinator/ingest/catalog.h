/*
 * An agent's action catalog as it declares it at enrollment (Enroll.actions, docs/remediation.md):
 * checked and turned into the registry's struct agent_action entries and the JSON the store
 * keeps (agents.actions). The agent's own file is the authority; this copy only tells the
 * coordinator which agents it may name an action to, and in which mode.
 *
 * Hostile input: at most AGENT_ACTIONS_MAX entries are taken; an entry with a name that is not
 * 1-128 of [A-Za-z0-9_.-], an unknown mode, a kind over 15 bytes or not UTF-8, more than 16
 * parameters or a parameter name that is not 1-32 of [a-z0-9_] is skipped and counted. Evidence
 * entries of a kind the coordinator does not know, or with arguments that are not UTF-8, are left
 * out of the JSON (and counted as skipped): the coordinator collects only what it can ask for after the action ran. Pure; any
 * thread.
 */
#ifndef COORD_CATALOG_H
#define COORD_CATALOG_H

#include <stdbool.h>
#include <stddef.h>

#include "registry.h"
#include "vigil.pb-c.h"

/* *ret (malloc'd, may be NULL when n is 0) and *ret_json (malloc'd JSON array) on success; 0 or
 * -ENOMEM. *ret_skipped counts the entries refused. */
int catalog_from_enroll(const Vigil__Enroll *enroll, struct agent_action **ret, size_t *ret_n,
                        char **ret_json, size_t *ret_skipped);

/* Whether the agent's registered catalog is exactly these actions, in this order. */
bool catalog_equal(const struct agent *agent, const struct agent_action *actions, size_t n);

#endif
