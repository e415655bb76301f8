/*
 * Pure parsing for the agent's log collector: no I/O, no clock, no logging. Everything here
 * takes hostile input (lines from files any local process can write to, kernel messages that
 * carry process names, sshd lines that carry the names attackers typed): inputs are (pointer,
 * length), need not be NUL-terminated, may hold any byte, may be huge. Nothing reads past len,
 * allocates in proportion to the input, or keeps a pointer to it after returning (except where
 * a borrowed pointer into the caller's own buffer is returned, as stated).
 *
 * Pieces:
 *   logparse_access        one access-log line (nginx/Apache common, combined, nginx "main")
 *   logparse_status_class  HTTP status -> 1..5
 *   logparse_kmsg_record   one /dev/kmsg record -> level, seq, time, message
 *   logparse_oom_kill      kernel OOM-kill message -> pid, comm
 *   logparse_failed_login  sshd / PAM authentication failure -> source address, user
 *   logparse_patterns_t    named POSIX extended regexes matched against a line
 *   logparse_lines_t       splits a byte stream (a tailed file) into bounded lines
 *   logparse_window_t      per-key event counts over a sliding window of seconds
 *
 * The objects are not thread-safe; one collector thread owns each.
 */
#ifndef AGENT_LOGPARSE_H
#define AGENT_LOGPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOGPARSE_ADDR_MAX 46   /* IPv4/IPv6 text + NUL (INET6_ADDRSTRLEN) */
#define LOGPARSE_METHOD_MAX 16 /* HTTP method, at most 15 characters */
#define LOGPARSE_PATH_MAX 512  /* request target kept, NUL included; longer ones truncated */
#define LOGPARSE_COMM_MAX 64   /* kernel comm (15 bytes, \xNN-escaped by kmsg) + NUL */
#define LOGPARSE_NAME_MAX 64   /* pattern name + NUL */
#define LOGPARSE_KEY_MAX 64    /* window key + NUL */

#define LOGPARSE_PATTERNS_MAX 32
#define LOGPARSE_MATCH_MAX 8192 /* bytes of a line a pattern sees */
#define LOGPARSE_LINE_CAP_DEFAULT 16384
#define LOGPARSE_LINE_CAP_MAX (64u * 1024 * 1024)
#define LOGPARSE_WINDOW_KEYS_DEFAULT 1024
#define LOGPARSE_WINDOW_KEYS_MAX 65536
#define LOGPARSE_WINDOW_SECONDS_MAX 3600

/* ---- Access logs ------------------------------------------------------------------------ */

struct logparse_access {
    char addr[LOGPARSE_ADDR_MAX]; /* client address as logged, a valid IPv4 or IPv6 address */
    int family;                   /* AF_INET or AF_INET6 */
    bool request_ok;              /* request field was "METHOD TARGET[ HTTP/x]"; else method
                                     and path are "" (nginx logs "-" or raw TLS bytes for
                                     connections that never sent a request; status still counts) */
    char method[LOGPARSE_METHOD_MAX];
    char path[LOGPARSE_PATH_MAX]; /* as logged (escapes such as \x22 left as they are) */
    bool path_truncated;          /* the target was longer than LOGPARSE_PATH_MAX - 1 */
    int status;                   /* 100..599 */
    uint64_t bytes;               /* response body bytes; "-" is 0 */
    int64_t request_time_ms;      /* trailing seconds number (nginx $request_time), else -1 */
};

/*
 * Parses one line of
 *   ADDR IDENT USER [dd/Mon/yyyy:HH:MM:SS +zzzz] "REQUEST" STATUS BYTES
 * optionally followed by the combined fields ` "REFERER" "USER-AGENT"`, optionally one more
 * quoted field (nginx's default "main" format adds "$http_x_forwarded_for"), optionally a
 * trailing ` SECONDS[.FRACTION]` (nginx $request_time; rounded to ms). A final "\n" or "\r\n"
 * is allowed. Quoted fields may contain backslash escapes (\" does not end a field).
 * USER may contain spaces (nginx logs $remote_user unescaped): it runs to the first " [" that
 * starts a well-formed timestamp.
 * Returns 0, or -EINVAL for any line not wholly in that shape (embedded NUL, hostname instead of
 * an address, status outside 100..599, bytes overflowing, trailing garbage, ...).
 */
int logparse_access(const char *line, size_t len, struct logparse_access *ret);

/* 1..5 for a status in 100..599, else -EINVAL. */
int logparse_status_class(int status);

/* ---- Kernel messages -------------------------------------------------------------------- */

struct logparse_kmsg {
    int facility;    /* prio >> 3 */
    int level;       /* prio & 7 (0 emerg .. 7 debug) */
    uint64_t seq;    /* record sequence number */
    uint64_t usec;   /* CLOCK_MONOTONIC microseconds at logging */
    char flag;       /* '-', or 'c'/'+' (continuation) on older kernels */
    const char *msg; /* borrowed: points into rec; not NUL-terminated */
    size_t msg_len;  /* message without its newline and without the dictionary */
};

/*
 * Parses one record as read(2) from /dev/kmsg: "prio,seq,usec,flag[,more...];message\n" then
 * dictionary lines " KEY=value\n", which are skipped (see Documentation/ABI/testing/dev-kmsg;
 * unknown comma fields such as "caller=T12" are ignored). Returns 0 or -EINVAL (bad header,
 * NUL in the header or message, a line after the message that does not start with a space).
 */
int logparse_kmsg_record(const char *rec, size_t len, struct logparse_kmsg *ret);

struct logparse_oom {
    int pid;
    char comm[LOGPARSE_COMM_MAX];
    bool memcg; /* "Memory cgroup out of memory: ..." (a cgroup limit, not the whole host) */
};

/*
 * Recognises a kernel OOM kill in a kernel message, a dmesg line or a syslog "kernel:" line:
 *   "Out of memory: Killed process 1234 (nginx) total-vm:..."
 *   "Memory cgroup out of memory: Killed process 1234 (nginx) total-vm:..."
 *   "Killed process 1234 (nginx) ..." (older kernels)
 * "Killed process" must start the message or follow "out of memory: ", "kernel: " or "] "
 * (a dmesg timestamp). "Kill process ... or sacrifice child" (the choice, not the kill) and
 * oom_reaper lines are not kills. comm may itself contain ") " (processes name themselves): the
 * last ')' within reach of a 15-byte (escaped) name that is followed by ' ', ',' or the end
 * closes it. An embedded NUL ends the message. ret is untouched when false.
 */
bool logparse_oom_kill(const char *msg, size_t len, struct logparse_oom *ret);

/* ---- Authentication failures ------------------------------------------------------------ */

/*
 * Recognises one failed login with a remote source address:
 *   sshd "Failed password for [invalid user ]USER from ADDR port N ssh2"
 *   sshd "Invalid user USER from ADDR[ port N]"
 *   PAM  "...: authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=ADDR  user=USER"
 * anywhere after a syslog/journal prefix (the marker must start the line or follow ": " or
 * "[ "). The user name is attacker-chosen and may contain " from ": the address is taken from
 * the last " from ", so a user name cannot forge it. ADDR must be an IPv4/IPv6 address
 * (rhost= hostnames and empty rhost= are not sources). PAM lines without user= give "".
 * Note that sshd logs several of these for one attempt (with PAM both the PAM line and the
 * "Failed password" line; "Invalid user" before the failure): count one family per source.
 * ret_addr (>= LOGPARSE_ADDR_MAX recommended; false if the address does not fit) and ret_user
 * (truncated to userlen - 1) may be NULL; both are untouched when false. An embedded NUL ends
 * the line.
 */
bool logparse_failed_login(const char *line, size_t len, char *ret_addr, size_t addrlen,
                           char *ret_user, size_t userlen);

/*
 * Which of the three kinds of line logparse_failed_login recognised. One attempt can log all
 * three ("Invalid user", then PAM's "authentication failure", then "Failed password"); later
 * attempts on the same connection log "Failed password" alone. A counter that wants one count
 * per attempt keeps, per source, the highest kind it has seen: it counts a line of that kind,
 * counts the first line from a new source, and skips lines of a lower kind and the line that
 * raises the kind (that attempt was already counted by its first line).
 */
enum logparse_login_kind {
    LOGPARSE_LOGIN_INVALID_USER = 1,    /* sshd "Invalid user USER from ADDR" */
    LOGPARSE_LOGIN_PAM = 2,             /* "authentication failure; ... rhost=ADDR" */
    LOGPARSE_LOGIN_FAILED_PASSWORD = 3, /* sshd "Failed password for USER from ADDR" */
};

/* logparse_failed_login, also telling the kind of line; ret_kind may be NULL. */
bool logparse_failed_login_kind(const char *line, size_t len, char *ret_addr, size_t addrlen,
                                char *ret_user, size_t userlen, enum logparse_login_kind *ret_kind);

/* ---- Named patterns --------------------------------------------------------------------- */

typedef struct logparse_patterns logparse_patterns_t;
typedef void logparse_match_fn(const char *name, void *userdata);

logparse_patterns_t *logparse_patterns_new(void);
void logparse_patterns_destroy(logparse_patterns_t **self_p);

/*
 * Adds a POSIX extended regex (REG_EXTENDED | REG_NOSUB) under name (1..63 bytes, unique).
 * Returns 0; -EINVAL for a bad name or regex (err gets regcomp's regerror text, or why the name
 * was refused); -EEXIST for a duplicate name; -ENOSPC past LOGPARSE_PATTERNS_MAX; -ENOMEM.
 * err may be NULL. Patterns come from configuration: glibc accepts back-references in EREs,
 * which can be slow; only trusted configuration should add patterns.
 */
int logparse_patterns_add(logparse_patterns_t *self, const char *name, const char *regex, char *err,
                          size_t errlen);

/*
 * Calls cb(name, userdata) for each pattern, in the order added, that matches the line.
 * The patterns see a NUL-terminated copy of at most the first LOGPARSE_MATCH_MAX bytes of the
 * line, ending at the first embedded NUL: the rest of a longer line is ignored, and '$' matches
 * at the end of that copy. Returns the number of matching patterns, or -ENOMEM if regexec ran
 * out of memory (patterns before it have been reported). cb may be NULL.
 */
int logparse_patterns_match(logparse_patterns_t *self, const char *line, size_t len,
                            logparse_match_fn *cb, void *userdata);

/* ---- Line splitter ---------------------------------------------------------------------- */

typedef struct logparse_lines logparse_lines_t;
/* line is borrowed for the call, not NUL-terminated, may contain NUL bytes. */
typedef void logparse_line_fn(const char *line, size_t len, bool truncated, void *userdata);

/*
 * cap: longest line delivered (without "\n" / "\r\n"), 0 for LOGPARSE_LINE_CAP_DEFAULT, at most
 * LOGPARSE_LINE_CAP_MAX (else NULL). The only buffer (cap + 1 bytes) is allocated here.
 */
logparse_lines_t *logparse_lines_new(size_t cap);
void logparse_lines_destroy(logparse_lines_t **self_p);

/*
 * Feeds the next chunk of the stream (any size, split anywhere). Calls cb once per complete
 * line, without the "\n" and one trailing "\r". A line longer than cap is delivered once, as
 * its first cap bytes with truncated = true, and the rest of it up to the next "\n" is
 * skipped. cb must not call back into self. Returns the number of lines delivered.
 */
size_t logparse_lines_feed(logparse_lines_t *self, const void *data, size_t len,
                           logparse_line_fn *cb, void *userdata);

/*
 * End of stream (EOF before a rotation, file truncated): delivers a pending unterminated line
 * (a trailing "\r" removed), unless it was already delivered truncated, and resets the state.
 * Returns the number of lines delivered (0 or 1).
 */
size_t logparse_lines_flush(logparse_lines_t *self, logparse_line_fn *cb, void *userdata);

/* ---- Windowed counters ------------------------------------------------------------------ */

typedef struct logparse_window logparse_window_t;

struct logparse_window_entry {
    char key[LOGPARSE_KEY_MAX];
    uint64_t count;
};

/*
 * Counts events per key over the last `seconds` seconds (1..LOGPARSE_WINDOW_SECONDS_MAX) in
 * 1 s buckets, for at most max_keys keys (0 for LOGPARSE_WINDOW_KEYS_DEFAULT, at most
 * LOGPARSE_WINDOW_KEYS_MAX). All memory is allocated here. NULL on bad arguments or no memory.
 * Times are whole seconds from a monotonic clock, 0 <= now_s <= 2^62. The window at now_s is the
 * seconds (now_s - seconds, now_s].
 */
logparse_window_t *logparse_window_new(unsigned seconds, size_t max_keys);
void logparse_window_destroy(logparse_window_t **self_p);

/*
 * Counts one event for key (1..LOGPARSE_KEY_MAX - 1 bytes, NUL-terminated). A new key when
 * max_keys are tracked replaces the least recently added-to key; that is counted as an
 * eviction only if the replaced key still had events in the window. Events may arrive slightly
 * out of order: one within the window of the newest event is counted in its own second.
 * Returns 0; -EINVAL for a bad key or time; -ERANGE for an event older than the window.
 */
int logparse_window_add(logparse_window_t *self, const char *key, int64_t now_s);

/* Events for key in the window at now_s (0 for an unknown or evicted key). O(seconds). */
uint64_t logparse_window_count(const logparse_window_t *self, const char *key, int64_t now_s);

/* Every event in the window at now_s, including those of keys evicted since. O(seconds). */
uint64_t logparse_window_total(const logparse_window_t *self, int64_t now_s);

/* Keys replaced while they still had events in the window (cumulative). */
uint64_t logparse_window_evictions(const logparse_window_t *self);

/* Keys currently tracked (some may have no events left in the window). */
size_t logparse_window_keys(const logparse_window_t *self);

/*
 * Fills ret with up to k keys having events in the window at now_s, by count descending, ties
 * by key ascending. Returns how many were filled. O(keys * (seconds + k)).
 */
size_t logparse_window_top(const logparse_window_t *self, int64_t now_s,
                           struct logparse_window_entry *ret, size_t k);

#endif /* AGENT_LOGPARSE_H */
