/*
 * One running program of an action: private to agent/exec/ (executor.c, job.c).
 *
 * job_start forks, and the child, before execve(argv[0], argv, env) — never a shell, no PATH
 * search — puts itself in a new session (setsid: its own process group, no terminal), gets
 * /dev/null as stdin and one pipe as stdout and stderr, closes every other descriptor, resets
 * signal dispositions and the mask (stdin is /dev/null, or a pipe holding spec->stdin_data), sets rlimits (NOFILE 256, CORE 0, CPU the timeout rounded
 * up), drops to the given user when asked (setgroups, setresgid, setresuid, then checks that
 * root cannot come back) and gets the fixed environment PATH=/usr/sbin:/usr/bin:/sbin:/bin,
 * LANG=C and nothing else. A child that cannot get there writes one line to the pipe and exits
 * 126 (setup) or 127 (execve).
 *
 * The parent reads the output as it comes: the SHA-256 covers all of it, the count goes on, and
 * output_truncated says it went past output_max; the first output_max bytes are kept (job_output)
 * for the executor to pass on, so the output reaches the vault. At the
 * timeout the process group gets SIGTERM, JOB_KILL_GRACE_MS later SIGKILL. The job is done when
 * its process exited (seen through a pidfd); what is left in the pipe is read then (16 MiB at
 * most: a descendant may hold it open), and a group that outlived a timeout gets SIGKILL.
 *
 * The executor's loop drives it: job_fds for poll, job_handle when one is readable or the
 * deadline passed. Not thread-safe.
 */
#ifndef AGENT_EXEC_JOB_H
#define AGENT_EXEC_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "digest.h"

#define JOB_KILL_GRACE_MS 2000
#define JOB_NOFILE 256
#define JOB_STDIN_MAX 65536 /* what one pipe holds: written whole before the child starts */

struct job_spec {
    char *const *argv; /* argv[0] an absolute path */
    bool drop;         /* run as uid/gid with groups instead of the executor's root */
    uid_t uid;
    gid_t gid;
    const gid_t *groups;
    size_t ngroups;
    int64_t timeout_ms;
    int64_t output_max_bytes;
    const char *stdin_data; /* NULL: stdin is /dev/null; else these bytes, then end of file */
    size_t stdin_len;       /* at most JOB_STDIN_MAX */
};

struct job_result {
    int exit_status;      /* the exit code, or -N when killed by signal N */
    bool timed_out;       /* stopped at its timeout */
    uint64_t duration_ms; /* start to exit */
    uint64_t output_bytes;
    bool output_truncated;
    uint8_t output_sha256[VG_SHA256_LEN];
};

typedef struct job job_t;

/* Starts argv. NULL with err set when it cannot fork (or no pipe): nothing started. */
job_t *job_start(const struct job_spec *spec, char *err, size_t errlen);

/* The descriptors to poll for reading (the output pipe, the pidfd): up to 2, -1 for none. */
void job_fds(const job_t *self, int fds[2]);
/* The monotonic time (ms) job_handle must be called by, even when nothing is readable. */
int64_t job_deadline(const job_t *self);
/* Reads output, signals at the deadlines, reaps. True once the job is done. */
bool job_handle(job_t *self, int64_t now_mono_ms);
/* The outcome; valid once job_handle returned true. */
void job_result(const job_t *self, struct job_result *ret);

/* The kept output (at most output_max bytes; NULL when none); valid until job_destroy. */
const unsigned char *job_output(const job_t *self, size_t *ret_len);

/* Kills a job still running (its group, SIGKILL), reaps it and frees. Accepts NULL. */
void job_destroy(job_t **self_p);

#endif
