/*
 * Privilege separation (OpenBSD style). At start, while still root, the agent forks and execs
 * the privileged executor (vigil-agent-exec) with one end of a SOCK_SEQPACKET socketpair as its
 * fd 3, then drops its own privileges (setgroups, setgid, setuid to the configured user) before
 * it opens any network socket or parses anything from the network.
 *
 * The two talk in fixed-size, size-checked messages (struct privsep_msg). Any unexpected
 * message — wrong size, unknown type, wrong magic — is fatal to the receiver: a confused peer
 * is treated as a compromised one. Today the executor only answers PING with PONG; later
 * actions are added here.
 */
#ifndef AGENT_PRIVSEP_H
#define AGENT_PRIVSEP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define PRIVSEP_MAGIC 0x56474558u /* "VGEX" */
#define PRIVSEP_EXEC_FD 3         /* the executor's end of the socketpair */

enum privsep_type {
    PRIVSEP_PING = 1,
    PRIVSEP_PONG = 2,
};

struct privsep_msg {
    uint32_t magic;
    uint32_t type;
    uint64_t nonce; /* PONG echoes PING's nonce */
};

typedef struct privsep privsep_t;

/*
 * Forks + execs exec_path as the executor. Then, if the process runs as root and user is
 * non-empty, drops to that user: its primary group and its own supplementary groups (as
 * getgrouplist lists them, e.g. adm for /var/log/auth.log), root's supplementary groups gone;
 * running as root without a user configured is refused (-EPERM) unless allow_root.
 * When not root, no privileges change and user must be empty or the current user.
 * NULL on failure with err set.
 */
privsep_t *privsep_start(const char *exec_path, const char *user, bool allow_root, char *err,
                         size_t errlen);

/* Sends PING and waits up to timeout_ms for the matching PONG. 0, -ETIMEDOUT, -EPIPE, -EPROTO. */
int privsep_ping(privsep_t *self, int timeout_ms);

/* The executor's pid (for the parent's SIGCHLD handling). */
pid_t privsep_executor_pid(const privsep_t *self);

/* Closes the socket (the executor exits on EOF) and reaps it. Accepts NULL. */
void privsep_stop(privsep_t **self_p);

#endif
