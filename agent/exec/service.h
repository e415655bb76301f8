/*
 * The request vigil-agent-exec writes to vigil-agent-action's stdin for a service action
 * (postgres, redis, kubernetes): private to agent/exec/. The format and the keys are
 * vigil-agent-action's contract, agent/action/svc.h.
 *
 * Everything in it is the node owner's configuration (the probe target's address and password
 * file, the statement, where the API server is) or an argument that passed the catalog's types.
 * The database password itself is not in it: vigil-agent-action reads the password file as the
 * agent's user, as the probe does. The cluster agent's ServiceAccount token is (in-cluster): it
 * is root's only, so the executor reads it and passes it on (svc.h).
 */
#ifndef AGENT_EXEC_SERVICE_H
#define AGENT_EXEC_SERVICE_H

#include <stddef.h>

#include "actions.h"
#include "agent_config.h"

/*
 * The "key\0value\0" request for service action a with checked args, malloc'd into *ret (free
 * it) with its length. 0; -EINVAL with why set (the target is gone from the configuration, the
 * request would be too long); -ENOMEM.
 */
int service_request(const struct agent_config *cfg, const struct action *a,
                    const struct action_arg *args, size_t n, char **ret, size_t *ret_len, char *why,
                    size_t whylen);

/* vigil-agent-action's path: action_path, else next to this executor. malloc'd; NULL when it
 * cannot be found. */
char *service_program_path(const struct agent_config *cfg);

#endif
