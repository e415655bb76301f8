/*
 * The process table as evidence (`vigilctl collect processes`): every process with its
 * parent, user, state, threads, resident memory, CPU time, start time, Kubernetes pod and
 * container ids (from its cgroup) with their names (podmap.h) and full command line, as a text
 * artifact a responder reads as it is. Also the pieces of it that the host snapshot reuses (reading
 * one process, its command line, its user's name) and the bounded text output every evidence writer
 * of agent/collect uses (the netstat, host and processes artifacts).
 *
 * Thread safety: everything here may run on the agent's evidence thread while the collectors
 * run: no state is shared but the podmap (which locks), each call opens and allocates what it
 * uses, user names come from getpwuid_r.
 *
 * Processes come and go while they are read: one that exits half-way is left out (and
 * counted), never an error.
 */
#ifndef AGENT_COLLECT_PROCTABLE_H
#define AGENT_COLLECT_PROCTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "collect.h" /* struct artifact_writer */
#include "podmap.h"
#include "procfs.h"

/* ---- Bounded text artifacts ------------------------------------------------------------- */

#define ARTIFACT_LINE_MAX 8192 /* one formatted piece; longer ones are cut and end in "...\n" */

/*
 * Text written through an artifact_writer, never more than max_bytes in all. When a piece
 * does not fit, the line "# truncated: ..." is written instead (room for it is kept) and
 * every later piece is dropped: status becomes -EFBIG. A writer that fails stops it the same
 * way with the writer's error. Pieces are whole lines: the artifact never ends mid-line.
 */
struct artifact_text {
    const struct artifact_writer *out;
    size_t max_bytes;
    size_t used;    /* bytes written so far */
    size_t reserve; /* kept back for the truncation line */
    int status;     /* 0; -EFBIG once the cap was reached; or the writer's negative errno */
    char line[ARTIFACT_LINE_MAX];
};

void artifact_text_init(struct artifact_text *t, const struct artifact_writer *out,
                        size_t max_bytes);

/* Formats and writes one piece (normally one line ending in '\n'). Returns t->status. */
int artifact_text_printf(struct artifact_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Returns t->status with err set for a non-zero one: "<what>: output reached its cap of N
 * bytes and was cut" or "<what>: writing the artifact failed: <reason>". */
int artifact_text_finish(const struct artifact_text *t, const char *what, char *err, size_t errlen);

/* raw as printable text: bytes outside printable ASCII, the backslash and those in also
 * (NULL: none) as \xHH; stops before an escape that would not fit in cap (NUL included).
 * Returns false when it had to stop. */
bool artifact_escape(const char *raw, size_t len, const char *also, char *out, size_t cap);

/* "2025-06-01T12:00:00Z" (UTC); "?" for a time gmtime cannot show. cap >= 21. */
void artifact_time_text(int64_t unix_seconds, char *buf, size_t cap);

/* ---- One process ------------------------------------------------------------------------ */

struct proctable_proc {
    int pid;
    int ppid;
    char state; /* 'R', 'S', 'D', 'Z', 'T', 'I', ... */
    bool have_uid;
    uid_t uid; /* real uid, when have_uid */
    uint32_t threads;
    uint64_t rss_kib;
    uint64_t cpu_ticks; /* utime + stime, in clock ticks (sysconf(_SC_CLK_TCK)) */
    uint64_t starttime; /* clock ticks after boot: with pid, names one process over time */
    char comm[PROCFS_COMM_MAX];
};

/* The pids under proc_fd (a /proc directory), ascending, in a new array the caller frees.
 * 0, or a negative errno (-ENOMEM, or opendir's). At most 4,194,304 (the kernel's limit). */
int proctable_pids(int proc_fd, int **ret_pids, size_t *ret_n);

/* <pid>/stat and, for the uid, <pid>/status. -ENOENT or -ESRCH when the process exited,
 * -EINVAL when stat is malformed; a missing status only leaves have_uid false. */
int proctable_read(int proc_fd, int pid, struct proctable_proc *ret);

/*
 * <pid>/cmdline as one line of text: arguments separated by spaces, bytes outside printable
 * ASCII and the backslash as \xHH, cut to fit cap with "..." at the end. A process without a
 * command line (kernel threads, zombies) shows as "[comm]", like ps. cap >= 8.
 */
void proctable_cmdline(int proc_fd, int pid, const char *comm, char *buf, size_t cap);

/* The user's name from this process's user database (getpwuid_r: /etc/passwd, NSS), or ""
 * when it has none. Inside a container that database is the image's, not the node's. */
void proctable_user_name(uid_t uid, char *buf, size_t cap);

/* ---- The evidence ----------------------------------------------------------------------- */

/*
 * Writes the process table of proc_root ("/proc" when NULL) to out, one process per line in
 * pid order, under a header naming the columns and above a summary line. A process in a pod
 * shows its namespace, pod and container names as pods resolves them (NULL: "-"). Returns 0; -EFBIG
 * when max_bytes was reached (the artifact ends with a "# truncated" line); the writer's
 * negative errno when it failed; or -ENOENT, -EACCES, -ENOMEM when proc_root cannot be
 * listed. err says which in words.
 */
int proctable_write(const char *proc_root, podmap_t *pods, size_t max_bytes,
                    const struct artifact_writer *out, char *err, size_t errlen);

#endif
