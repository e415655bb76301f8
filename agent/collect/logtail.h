/*
 * The log collector: follows configured log files (a path, or a glob such as every *.log in
 * /var/log/nginx, or every container's log under /var/log/pods), counts lines and named
 * patterns per window, and turns access logs into request counts, status
 * classes and an error rate, and auth logs into failed logins per source address.
 *
 * Following files:
 *   - Globs are expanded again every run, so files that appear later (a new pod) are picked up.
 *   - A file is known by (dev, inode). When its path names another inode (rename rotation),
 *     the old file is read to its end first, then the new one from its start; a file that
 *     leaves the glob (deleted, renamed away) is read to its end and closed.
 *   - A file smaller than the offset read so far was truncated (copytruncate): it is read again
 *     from 0 and counted (log.truncations). Truncation followed by writes past the old offset
 *     before the next run cannot be told from appending (as with tail -F).
 *   - A file found at start-up starts at its end (history is not news), except one whose
 *     (dev, inode) has a saved offset, which resumes there, and one whose path had another
 *     inode when the offsets were saved (rotated while the agent was down), which starts at 0.
 *     A file that appears later starts at 0.
 *   - Pods: an entry with namespace (and pod, container) patterns instead of a path lists, every
 *     run, the <restart>.log files of matching containers under
 *     <pods_dir>/<namespace>_<pod>_<uid>/<container>/ (kubernetes.pod_logs_dir): a container's
 *     restart (a new N.log) and a new pod are picked up like a glob's new files, and the
 *     kubelet's rotation (0.log renamed 0.log.<date>, a new 0.log) like a rename rotation. Their
 *     lines are CRI records (crilog.h): decoded, partial records joined per stream (up to
 *     max_line_bytes), and only the container's line reaches patterns and formats. Directory
 *     and container names are checked (podmap.h) before a path is built from them.
 *   - Offsets are saved in offsets_path (temporary file, fsync, rename), at most once per run
 *     and only when they moved. The offset saved is the end of the last whole line, so a
 *     restart never re-reads counted lines and never counts half a line.
 *   - At most max_read_per_run bytes are read from each file per run: a flood is worked off
 *     over several runs instead of stalling the agent's loop.
 *
 * Refused input, counted in log.errors{file,reason} and logged once per path (per episode):
 *   symlink         a glob match or path that is a symbolic link (opened with O_NOFOLLOW; a
 *                   symlink could point the agent at any file it can read). The files in
 *                   Kubernetes' /var/log/containers are symlinks: use /var/log/pods.
 *   unreadable      open or read failed (permissions, I/O error), or not a regular file
 *   too_long        a line over max_line_bytes: its first max_line_bytes are counted and
 *                   matched, the rest of the line is skipped
 *   binary          a line with NUL bytes: not counted as a line, not matched
 *   too_many_files  a glob matched more files than followed (LOGTAIL_FILES_MAX in all)
 *   bad_name        pods: a <pods_dir> entry not named <namespace>_<pod>_<uid>, or a container
 *                   directory whose name is not a DNS label (once per name; at most 16 names
 *                   per run are noted, the rest skipped silently)
 *   not_cri         pods: a line that is not a CRI record (skipped, one count per line)
 *
 * Signals, per configured file name (labels file=<name>; counts are over the window, the
 * error counters since the agent started):
 *   log.files{file} [count]                      files the path matches and that are followed
 *   log.lines{file} [lines]                      lines read in the window
 *   log.match_count{file,pattern} [lines]        lines matching the named pattern in the window
 *   log.match_rate{file,pattern} [per_min]       the same per minute: count * 60 s / window
 *   log.errors{file,reason} [count]              refused input, by the reasons above
 *   log.rotations{file}, log.truncations{file} [count]
 *   log.pod{file,namespace,pod,container,pod_uid} [count]  pods: the files followed per
 *                                                container (its current and earlier runs)
 *   format "access" (nginx/Apache common and combined; lines that do not parse are counted in
 *   log.lines only):
 *   log.http.requests{file} [requests]
 *   log.http.status{file,class=2xx|3xx|4xx|5xx} [requests]
 *   log.error_rate_pct{file} [percent]           5xx / requests * 100; sent only when requests > 0
 *   log.http.denied{file} [requests]             401 and 403 responses: a burst is a scan or a
 *                                                credential-stuffing attempt
 *   format "auth" (sshd and PAM):
 *   log.failed_logins{file} [count]              failed logins from remote addresses, one per
 *                                                attempt (see logparse_failed_login_kind)
 *   log.failed_logins{file,source} [count]       the same for the 5 sources with the most
 *
 * Threading: logtail_run and everything else belong to one thread (the agent's main loop);
 * logtail_tail may run on any other thread at the same time, as it reads only the
 * configuration, which never changes after logtail_new.
 */
#ifndef AGENT_COLLECT_LOGTAIL_H
#define AGENT_COLLECT_LOGTAIL_H

#include <stddef.h>
#include <stdint.h>

#include "collect.h"
#include "config.h"

#define LOGTAIL_CONFIGS_MAX 64                     /* configured files */
#define LOGTAIL_FILES_MAX 1024                     /* files followed at once, all globs together */
#define LOGTAIL_TAIL_BYTES_MAX (16u * 1024 * 1024) /* evidence: bytes per file at most */
#define LOGTAIL_TAIL_FILES_MAX 64                  /* evidence: files of one glob at most */
#define LOGTAIL_TOP_SOURCES 5

/* collectors.logs.files[].patterns[] */
struct logtail_pattern_config {
    char *name;  /* the `pattern` label */
    char *regex; /* POSIX extended, matched against the first 8 KiB of each line */
};

/* collectors.logs.files[] */
struct logtail_file_config {
    char *name;                  /* the `file` label; required, unique */
    char *path;                  /* a path or a glob; or, instead: */
    char *namespace;             /* pods: fnmatch patterns of namespace, pod and container */
    char *pod;                   /* names ("" = "*"); their CRI logs under pods_dir */
    char *container;
    char *format;                /* "plain" (default), "access" (nginx/Apache), "auth" (sshd/PAM) */
    struct vg_cfg_list patterns; /* of struct logtail_pattern_config */
};

extern const struct vg_cfg_key logtail_file_keys[];
extern const size_t logtail_file_nkeys;
extern const struct vg_cfg_key logtail_pattern_keys[];
extern const size_t logtail_pattern_nkeys;

struct logtail_options {
    int64_t window_ms;        /* counting window, 1 s .. 1 h (whole seconds); 0 = 60 s */
    int64_t max_line_bytes;   /* longer lines are too_long; 0 = 16 KiB, at most 64 MiB */
    int64_t max_read_per_run; /* bytes per file per run; 0 = 4 MiB, at least 64 KiB */
    const char *pods_dir;     /* kubernetes.pod_logs_dir; NULL or "" = /var/log/pods */
};

typedef struct logtail logtail_t;

/*
 * Validates and copies the configuration (files and opt may be freed afterwards; opt may be
 * NULL for the defaults), compiles the patterns and loads the saved offsets from offsets_path
 * (NULL: offsets are not kept; a missing file is a first start; a damaged file is logged and
 * ignored). No file is opened here. NULL with err set on a bad configuration ("log file
 * \"web\": format must be plain, access or auth (got \"json\")") or no memory.
 */
logtail_t *logtail_new(const struct logtail_file_config *files, size_t nfiles,
                       const struct logtail_options *opt, const char *offsets_path, char *err,
                       size_t errlen);

/* One run: expand globs, read what was appended, emit the signals, save offsets. Never fails:
 * problems are counted (log.errors, ctx->errors) and logged. */
void logtail_run(logtail_t *self, struct collect_ctx *ctx);

/* Called with every line logtail_run reads (for a pod's log, the container's message; lines
 * with NUL bytes excepted), without its newline, on logtail_run's thread, as it is read: the
 * flight recorder keeps them (flight.h). fn NULL: none, the default. */
typedef void (*logtail_line_hook)(void *userdata, const char *name, const char *line, size_t len);
void logtail_set_line_hook(logtail_t *self, logtail_line_hook fn, void *userdata);

/* The collector interface (collect.h): "logs", logtail_run every interval_ms (0: never);
 * takes ownership of *self_p (set to NULL): the collector's destroy frees it. logtail_tail stays
 * safe to call on the object meanwhile. */
struct collector logtail_collector(logtail_t **self_p, int64_t interval_ms);

/*
 * Evidence (kind log_tail): the last `lines` lines (0: no line limit) of the configured file
 * `name`, at most `bytes` bytes of them (0 or more than LOGTAIL_TAIL_BYTES_MAX: that). A glob
 * gives every matching file (at most LOGTAIL_TAIL_FILES_MAX, in name order), each after a line
 * "==> PATH <==" (a refused file gets the header and "(refused: symlink)" or the error). Safe
 * to call from another thread while logtail_run runs. Returns 0; -ENOENT for an unknown name
 * or no matching file; -ELOOP for a plain path that is a symlink; another negative errno from
 * reading or from out->write. err gets the reason.
 */
int logtail_tail(const logtail_t *self, const char *name, size_t lines, size_t bytes,
                 const struct artifact_writer *out, char *err, size_t errlen);

void logtail_destroy(logtail_t **self_p);

#endif
