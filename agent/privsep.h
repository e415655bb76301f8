/*
 * Privilege separation (OpenBSD style). At start, while still root, the agent forks and execs
 * the privileged executor (vigil-agent-exec) with one end of a SOCK_SEQPACKET socketpair as its
 * fd 3, then drops its own privileges (setgroups, setgid, setuid to the configured user) before
 * it opens any network socket or parses anything from the network.
 *
 * The two talk in size-checked messages; SOCK_SEQPACKET keeps each one whole. PING and PONG
 * are fixed-size (struct privsep_msg). COMMAND (agent -> executor: a packed CommandCapsule,
 * passed on unread), REPORT (executor -> agent: a packed CommandReport) and OUTPUT (executor ->
 * agent: a packed CommandOutput, a command's kept output in order before its DONE) are a struct
 * privsep_hdr followed by exactly hdr.len bytes, 1 to PRIVSEP_PAYLOAD_MAX. Any unexpected
 * message — wrong size, unknown type, wrong magic, a length that is not the message's, a
 * non-zero reserved field, a type sent in the wrong direction — is fatal to the receiver: a
 * confused peer is treated as a compromised one.
 *
 * The executor runs commands while it keeps answering PING: REPORTs arrive at any time, also
 * while privsep_ping waits for its PONG; they go to the report handler in the order they came.
 *
 * The network side never verifies or interprets a capsule: it has no keys to check one with and
 * must not be trusted to. The executor does (agent/exec/).
 */
#ifndef AGENT_PRIVSEP_H
#define AGENT_PRIVSEP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define PRIVSEP_MAGIC 0x56474558u /* "VGEX" */
#define PRIVSEP_EXEC_FD 3         /* the executor's end of the socketpair */

#define PRIVSEP_PAYLOAD_MAX (64 * 1024) /* a COMMAND's capsule or a REPORT, at most */

enum privsep_type {
    PRIVSEP_PING = 1,    /* agent -> executor, struct privsep_msg */
    PRIVSEP_PONG = 2,    /* executor -> agent, struct privsep_msg */
    PRIVSEP_COMMAND = 3, /* agent -> executor, struct privsep_hdr + a packed CommandCapsule */
    PRIVSEP_REPORT = 4,  /* executor -> agent, struct privsep_hdr + a packed CommandReport */
    PRIVSEP_OUTPUT = 5,  /* executor -> agent, struct privsep_hdr + a packed CommandOutput */
};

struct privsep_msg {
    uint32_t magic;
    uint32_t type;
    uint64_t nonce; /* PONG echoes PING's nonce */
};

/* The header of COMMAND and REPORT; the payload follows it in the same message. */
struct privsep_hdr {
    uint32_t magic;
    uint32_t type;
    uint32_t len;      /* payload bytes: the message is exactly sizeof(hdr) + len */
    uint32_t reserved; /* 0 */
};

_Static_assert(sizeof(struct privsep_hdr) == 16, "privsep_hdr is 16 bytes");

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

/* As privsep_start, and the executor gets config_path (absolute; NULL = none) as its one
 * argument: it reads the action catalog and the signer file from there itself, as root, before
 * the agent drops its privileges. Without it the executor refuses every command. */
privsep_t *privsep_start_config(const char *exec_path, const char *config_path, const char *user,
                                bool allow_root, char *err, size_t errlen);

/* A REPORT from the executor: data (a packed CommandReport, not yet decoded) is valid only
 * during the call. */
typedef void privsep_report_fn(void *userdata, const uint8_t *data, size_t len);
void privsep_set_report_handler(privsep_t *self, privsep_report_fn *fn, void *userdata);
/* An OUTPUT from the executor (a packed CommandOutput), in the order it came among REPORTs. */
void privsep_set_output_handler(privsep_t *self, privsep_report_fn *fn, void *userdata);

/* Passes a packed CommandCapsule to the executor, unread. 0; -EMSGSIZE for an empty one or one
 * over PRIVSEP_PAYLOAD_MAX (nothing sent); -ETIMEDOUT, -EPIPE (the channel is then closed). */
int privsep_send_command(privsep_t *self, const void *capsule, size_t len);

/* Our end of the channel, readable when the executor sent something; -1 once closed. */
int privsep_fd(const privsep_t *self);

/* Reads what the executor sent (REPORTs go to the handler). 0; -EPIPE when the executor is
 * gone, -EPROTO for anything unexpected (an unsolicited PONG too): the channel is then closed. */
int privsep_handle(privsep_t *self);

/* Sends PING and waits up to timeout_ms for the matching PONG (REPORTs that arrive meanwhile go
 * to the handler). 0, -ETIMEDOUT, -EPIPE, -EPROTO. */
int privsep_ping(privsep_t *self, int timeout_ms);

/* The executor's pid (for the parent's SIGCHLD handling). */
pid_t privsep_executor_pid(const privsep_t *self);

/* Closes the socket (the executor exits on EOF) and reaps it. Accepts NULL. */
void privsep_stop(privsep_t **self_p);

#endif
