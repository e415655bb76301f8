/*
 * The built-in action kinds as fixed argv vectors: private to agent/exec/.
 *
 * Nothing here starts anything: it builds what the executor then runs with execve, never
 * through a shell. Every value that reaches an argv was checked by actions_check_args first
 * (a unit name, an address); addresses are printed again from their parsed form, so the text
 * nft reads is ours, not the request's.
 *
 *   systemd restart: systemctl restart --no-ask-password -- UNIT
 *   nft block:       nft '<ensure table inet vigil, sets blocked4/blocked6 with timeouts, the
 *                    drop rules> ; add element inet vigil blockedN { ADDR timeout Ns }'
 *   nft unblock:     nft '<ensure ...> ; delete element inet vigil blockedN { ADDR }'
 *   isolate:         nft '<table inet vigil_isolate: input, output and forward drop all but
 *                    loopback and the coordinator's addresses>'
 *   release:         nft 'add table inet vigil_isolate ; delete table inet vigil_isolate'
 */
#ifndef AGENT_EXEC_BUILTIN_H
#define AGENT_EXEC_BUILTIN_H

#include <stddef.h>

#include "actions.h"

#define BUILTIN_NFT_PATH "/usr/sbin/nft"

/*
 * The argv for a systemd, nft or isolate action with checked args, malloc'd (free with
 * actions_argv_free). coordinator: the addresses isolate keeps reachable. 0; -EINVAL with why
 * set (a missing argument, an isolate without a coordinator address, no systemctl); -ENOMEM.
 */
int builtin_argv(const struct action *a, const struct action_arg *args, size_t n,
                 const struct action_net *coordinator, size_t ncoordinator, char ***ret_argv,
                 char *why, size_t whylen);

/* SIGTERM, SIGHUP, SIGUSR1, SIGUSR2 or SIGKILL for "TERM", "HUP", "USR1", "USR2", "KILL"; 0 for
 * anything else (the catalog allows only these). */
int builtin_signal_number(const char *name);

#endif
