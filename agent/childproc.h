/*
 * What a forked child does to itself before execve, shared by the two places that start a
 * program: privsep.c (the executor) and exec/job.c (an action's program). Both must hand the
 * new program a clean slate: ignored signals, the signal mask and open descriptors all survive
 * execve.
 *
 * Async-signal-safe only: the parent may be multi-threaded (the agent is), so the child may call
 * nothing else before execve.
 */
#ifndef AGENT_CHILDPROC_H
#define AGENT_CHILDPROC_H

/* Closes every descriptor from first_fd up (close_range; before Linux 5.9 one by one below
 * max_fd, which the parent read before it forked). */
void childproc_close_from(int first_fd, int max_fd);

/* Every signal back to its default disposition, none blocked. */
void childproc_reset_signals(void);

#endif
