/*
 * The executor's decision on one command: private to agent/exec/ (executor.c, command.c).
 *
 * command_check takes the packed CommandCapsule exactly as the network side passed it (which
 * is not trusted and checked nothing) and decides whether it may run here, in this order,
 * refusing at the first check that fails with one sentence the REFUSED report carries:
 *   1. it decodes as a CommandCapsule (protobuf-c, at most PRIVSEP_PAYLOAD_MAX bytes), and
 *      the executor has room for it;
 *   2. vg_capsule_verify against the node's signer file, this node's name and the wall clock
 *      (shape, request hash, coordinator signature, node, validity window, approvals);
 *   3. the action is in this node's catalog;
 *   4. the capsule carries the signatures the action's mode needs (vg_capsule_policy_ok):
 *      destructive if the catalog says so, auto only if the catalog marks it auto, else approve;
 *   5. the arguments pass the action's types (actions_check_args) with the run-time deny list:
 *      this node's interface addresses (read now), loopback and the coordinator's addresses;
 *   6. what the action would run can be built (exec argv, a built-in's fixed argv, a service
 *      action's request for vigil-agent-action, which never keeps root), and a program that
 *      must not keep root has a user to run as;
 *   7. the nonce was never run (replay_seen_or_add, remembered until not_after, on disk before
 *      this returns): last, so a refused capsule does not use up its nonce.
 * Only a plan that passed all seven is returned; nothing runs before that.
 *
 * Not thread-safe: the executor's loop calls it.
 */
#ifndef AGENT_EXEC_COMMAND_H
#define AGENT_EXEC_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actions.h"
#include "agent_config.h"
#include "capsule.h"
#include "replay.h"
#include "wire.h"

#define COMMAND_REASON_MAX 1024 /* as the wire's bound on a report's reason */

/* What the executor knows and checks commands against; executor.c owns all of it. */
struct command_env {
    const char *node;                     /* this node's name */
    const actions_t *catalog;             /* NULL: no configuration, every command refused */
    const vg_signer_set_t *signers;       /* NULL or empty: no signer file, every command refused */
    replay_t *replay;                     /* NULL: no replay cache, every command refused */
    const struct action_net *coordinator; /* the coordinator's addresses */
    size_t ncoordinator;
    bool unprivileged_ok; /* a program without root: true can run (as the agent's user) */
    const struct agent_config *cfg; /* service actions: targets, the API server (service.h) */
    const char *service_program;    /* vigil-agent-action; NULL: service actions refused */
    bool busy;            /* no room for another running command: refuse */
};

/* A command that passed every check. */
struct command_plan {
    char request_id[VG_MAX_COMMAND_ID_LEN + 1];
    unsigned char nonce[VG_COMMAND_NONCE_BYTES];
    const struct action *action; /* borrowed from the catalog */
    bool dry_run;
    char **argv;          /* what runs (execve), NULL-terminated; NULL for a signal action */
    bool as_root; /* keep root (root: true, and the node built-ins); else drop to the user */
    char *stdin_data; /* a service action's request for vigil-agent-action (service.h), or NULL */
    size_t stdin_len;
    int signal_number;    /* signal actions */
    char *process_name;   /* signal actions: the watched process's name */
    char **precheck_argv; /* the precheck's argv (exec), or NULL */
    bool precheck_as_root;
};

/*
 * 0 with *ret filled (free with command_plan_free); -EPERM when refused, with the reason in why
 * and, when the capsule decoded far enough to name them, the request id and nonce in *ret (an
 * empty request_id otherwise: nothing can be reported then). -ENOMEM.
 */
int command_check(const struct command_env *env, const uint8_t *capsule, size_t len, int64_t now_ms,
                  struct command_plan *ret, char *why, size_t whylen);

void command_plan_free(struct command_plan *plan);

/* "a b c" of argv, for a dry run's report, at most buflen - 1 bytes (cut with "..."). */
void command_argv_text(char *const *argv, char *buf, size_t buflen);

#endif
