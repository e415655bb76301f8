/*
 * The flight recorder: what this node looked like over the last few minutes, kept in memory so
 * that `vigilctl collect NODE flight` still shows the sockets, processes and log lines of an
 * attack or a crash after they are gone.
 *
 * Every interval (flight_recorder.interval, 5 s) a thread of its own takes a snapshot:
 *   netstat     the socket table with its owning processes, as the netstat evidence writes it
 *               (netstat_write_table: TCP through sock_diag, owners from /proc/PID/fd), but for
 *               TIME_WAIT rows (no process holds them, and a busy server has thousands that
 *               change every second): a line counts them;
 *   processes   the process table in the processes evidence's columns (without the cgroup ids),
 *               read with proctable's readers: per process and snapshot only <pid>/stat; user,
 *               start, pod and command line once per (pid, starttime), cached while it lives;
 *   log NAME    for each configured log, the lines the log collector read since the snapshot
 *               before (handed over by logtail's line hook, never read a second time): the
 *               newest FLIGHT_LOG_LINES_MAX of them, each cut at FLIGHT_LOG_LINE_MAX bytes.
 * The text is streamed line by line into the recorder: no snapshot is ever held as one buffer.
 * After each snapshot the free pages of the heap go back to the kernel (malloc_trim): the
 * snapshot's transient buffers sit between lines that live for the whole window.
 *
 * Storage: lines are interned. Every distinct line is kept once (a refcounted string in a hash
 * table keyed with a random SipHash key, so log or command-line text cannot flood a bucket), and
 * a snapshot is an array of pointers to its lines plus its section headings. Between two
 * snapshots most of both tables is unchanged (a process line changes when its CPU time or RSS
 * does, a socket line when its queues do), so a snapshot costs 8 bytes per line plus the lines
 * that changed. Memory only: nothing is written to disk (the spool is for what must survive a
 * restart; a recorder that survived one would show the previous run's machine).
 *
 * Bounds: a snapshot older than the window (flight_recorder.window, 5 m) is dropped, and the
 * oldest are dropped while the recorder's memory (lines, snapshots, hash table, pending log
 * lines: flight_stats.bytes) is above max_bytes (flight_recorder.max_size, 4 MiB); the newest
 * snapshot is always kept. One snapshot's tables are each cut at max_bytes / 4 (a "# truncated"
 * line says so) and the pending log lines of all logs together at max_bytes / 8.
 *
 * Freezing: flight_freeze copies the ring's list of snapshots under the lock, taking a reference
 * on each (snapshots and lines are immutable once added), so writing the artifact needs no lock
 * and the recorder goes on taking snapshots meanwhile. Snapshots a frozen copy still holds count
 * in flight_stats.bytes until the copy is destroyed.
 *
 * Threads: flight_log_line, flight_freeze, flight_frozen_* and flight_get_stats may be called
 * from any thread; flight_take and flight_add from one thread at a time (the recorder's own
 * once flight_start ran).
 */
#ifndef AGENT_FLIGHT_H
#define AGENT_FLIGHT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collect.h" /* struct artifact_writer */
#include "podmap.h"

#define FLIGHT_LOG_LINES_MAX 100 /* per log and snapshot: the newest are kept */
#define FLIGHT_LOG_LINE_MAX 1024 /* bytes of one log line kept; longer ones end in "..." */
#define FLIGHT_LOGS_MAX 64       /* logs with sections of their own */

struct flight_options {
    int64_t interval_ms;          /* between snapshots, 1 s .. 1 min */
    int64_t window_ms;            /* how long a snapshot is kept, >= interval_ms */
    size_t max_bytes;             /* the recorder's memory, >= 64 KiB */
    const char *proc_root;        /* "/proc"; NULL: snapshots hold log lines only (tests) */
    podmap_t *pods;               /* borrowed, may be NULL: owners and processes name their pods */
    const char *const *log_names; /* the configured logs, in order: a section each */
    size_t nlogs;
};

/* One section of a snapshot given to flight_add: a heading and its text (lines split at '\n'). */
struct flight_section {
    const char *title; /* "netstat", "processes", ... */
    const char *text;
    size_t len;
};

struct flight_stats {
    size_t snapshots;             /* in the ring */
    size_t bytes;                 /* the recorder's memory, as bounded by max_bytes */
    size_t lines;                 /* distinct lines kept */
    uint64_t taken;               /* snapshots taken since start */
    uint64_t dropped_for_size;    /* dropped before their time for max_bytes */
    uint64_t log_lines_dropped;   /* log lines not kept (over the per-snapshot bounds) */
    int64_t oldest_ms, newest_ms; /* wall clock of the ring's ends; 0 when empty */
    int64_t last_cpu_us;          /* CPU time the last flight_take spent (its thread's) */
};

typedef struct flight flight_t;
typedef struct flight_frozen flight_frozen_t;

/* NULL with err set on bad options or no memory. Takes no snapshot and starts no thread. */
flight_t *flight_new(const struct flight_options *opt, char *err, size_t errlen);

/* Starts the recorder's thread: a snapshot at once, then every interval_ms. 0 or -errno. */
int flight_start(flight_t *self, char *err, size_t errlen);

/* Stops the thread (a snapshot in progress finishes first) and frees everything. Frozen copies
 * must be destroyed before. Accepts NULL. */
void flight_destroy(flight_t **self_p);

/* logtail's line hook (logtail_set_line_hook): one line of log `log`, without its newline. Kept
 * for the next snapshot within the bounds above. Any thread; self is a flight_t. */
void flight_log_line(void *self, const char *log, const char *line, size_t len);

/* One snapshot now, stamped wall_ms: the tables of proc_root (when set) and the log lines
 * since the last snapshot. 0 or -ENOMEM (nothing added then). */
int flight_take(flight_t *self, int64_t wall_ms);

/* Adds a snapshot made of sections (then the pending log lines' sections) and drops what the
 * bounds say. 0 or -ENOMEM. */
int flight_add(flight_t *self, int64_t wall_ms, const struct flight_section *sections, size_t n);

/* The snapshots taken after now_ms - window_ms, oldest first, as they are now. NULL: no
 * memory. */
flight_frozen_t *flight_freeze(flight_t *self, int64_t now_ms);
size_t flight_frozen_count(const flight_frozen_t *frozen);
/* Wall clock of snapshot i (0 = the oldest). */
int64_t flight_frozen_time(const flight_frozen_t *frozen, size_t i);

/*
 * The artifact: a comment header (snapshots, interval, window, memory), then every snapshot,
 * oldest first, each section under a heading "== 2026-12-06T21:40:05Z netstat ==",
 * "== ... processes ==", "== ... log web (12 lines) ==" (", N earlier not kept" when the log
 * wrote more than was kept). Returns 0, -EFBIG when max_bytes cut it (a "# truncated" line
 * ends it), or the writer's negative errno, with err set.
 */
int flight_frozen_write(const flight_frozen_t *frozen, size_t max_bytes,
                        const struct artifact_writer *out, char *err, size_t errlen);
void flight_frozen_destroy(flight_frozen_t **frozen_p);

/* freeze(now) + write + destroy: the evidence kind "flight". */
int flight_write(flight_t *self, size_t max_bytes, const struct artifact_writer *out, char *err,
                 size_t errlen);

void flight_get_stats(flight_t *self, struct flight_stats *ret);

#endif
