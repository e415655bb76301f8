/*
 * The agent's status file, <state_dir>/status: how a supervisor asks "is this agent alive, and
 * does it reach its coordinator?" without an HTTP server in the agent.
 *
 * The running agent rewrites it from its event loop every AGENT_STATUS_INTERVAL_MS (written to
 * status.part, then renamed over status, so a reader never sees half a file) and removes it when
 * it stops cleanly. `vigil-agent --health` and `--ready` (a Kubernetes exec probe, a systemd
 * check, a person) read it:
 *
 *   healthy  the file exists and was written less than AGENT_STATUS_STALE_INTERVALS intervals
 *            ago (the event loop turns), and the executor answers;
 *   ready    healthy, and the coordinator answered within AGENT_STATUS_STALE_INTERVALS
 *            heartbeat intervals (an agent waiting for approval is ready: it is answered).
 *
 * Format: text, one "key=value" per line, unknown keys ignored (a newer agent may add some):
 *
 *   version=1
 *   pid=4711
 *   node=worker-3
 *   agent=ag-0123456789abcdef
 *   written_ms=1765000000000      wall clock, ms since the epoch
 *   interval_ms=5000              how often the file is rewritten
 *   started_ms=1764999000000
 *   link=active                   enrolling, pending, active, revoked
 *   connected=1
 *   last_contact_ms=1764999998000 the last message from the coordinator; 0 = never
 *   heartbeat_interval_ms=5000
 *   spool_depth=0
 *   spool_dropped_messages=0
 *   executor_ok=1
 */
#ifndef AGENT_STATUS_H
#define AGENT_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AGENT_STATUS_FILE "status"
#define AGENT_STATUS_INTERVAL_MS 5000
#define AGENT_STATUS_STALE_INTERVALS 3
#define AGENT_STATUS_MAX_BYTES 4096 /* a reader refuses a longer file */

struct agent_status {
    long pid;
    char node[129];
    char agent_id[32];
    int64_t written_ms;
    int64_t interval_ms;
    int64_t started_ms;
    char link[16];
    bool connected;
    int64_t last_contact_ms; /* 0 = never */
    int64_t heartbeat_interval_ms;
    uint64_t spool_depth;
    uint64_t spool_dropped_messages;
    bool executor_ok;
};

/* Writes <state_dir>/status.part and renames it over <state_dir>/status. 0 or a negative errno. */
int agent_status_write(const char *state_dir, const struct agent_status *st);

/* Reads and parses <state_dir>/status. 0, or a negative errno (-ENOENT: no file, -EINVAL: not a
 * status file) with err set. */
int agent_status_read(const char *state_dir, struct agent_status *ret, char *err, size_t errlen);

/* Removes the file (a clean stop). 0, or a negative errno other than -ENOENT. */
int agent_status_remove(const char *state_dir);

/* Judges a status read at now_ms (wall clock): true when healthy (and, with ready, ready). why
 * gets one line either way: what was wrong, or what was seen. */
bool agent_status_check(const struct agent_status *st, int64_t now_ms, bool ready, char *why,
                        size_t whylen);

#endif
