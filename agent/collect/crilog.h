/*
 * The CRI container log format (what containerd and CRI-O write under /var/log/pods), parsed
 * before the log collector's rules see a line:
 *
 *   <RFC 3339 time with up to 9 fraction digits> <stdout|stderr> <P|F>[:<more tags>] <message>
 *
 * A runtime cuts a long line into records tagged P (partial) and ends it with one tagged F
 * (full); crilog_joiner glues them back per stream (stdout and stderr interleave), bounded: a
 * joined message longer than its cap keeps its first cap bytes and is marked truncated.
 *
 * Pure: no I/O, no clock, no logging. Inputs are (pointer, length), need not be
 * NUL-terminated, may hold any byte. Nothing reads past len.
 */
#ifndef AGENT_COLLECT_CRILOG_H
#define AGENT_COLLECT_CRILOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum crilog_stream { CRILOG_STDOUT = 0, CRILOG_STDERR = 1 };

struct crilog_record {
    int64_t time_ns; /* Unix nanoseconds (UTC; the offset applied) */
    enum crilog_stream stream;
    bool partial;    /* tag P: the message continues in the next record */
    const char *msg; /* borrowed from the input line */
    size_t msg_len;
};

/*
 * One record (a line without its "\n"). Returns 0, or -EINVAL when the line is not in the
 * shape above (a bad time or one outside the years 1678..2261, whose nanoseconds would not fit
 * 64 bits; an unknown stream or tag; missing separators); *ret is untouched
 * then. An empty message ("... stdout F" with or without the final space) is valid.
 */
int crilog_parse(const char *line, size_t len, struct crilog_record *ret);

/* ---- Joining partial records ------------------------------------------------------------ */

struct crilog_joiner {
    size_t cap; /* bytes of a joined message kept */
    struct crilog_pending {
        char *buf; /* allocated at the first partial record of this stream, cap bytes */
        size_t len;
        bool active;    /* partial records are waiting for their F */
        bool truncated; /* more than cap bytes arrived */
    } stream[2];
};

/* cap: 1 .. 64 MiB. Nothing is allocated until a partial record arrives. -EINVAL otherwise. */
int crilog_joiner_init(struct crilog_joiner *j, size_t cap);
void crilog_joiner_free(struct crilog_joiner *j);

/*
 * Called with each whole message: borrowed for the call. truncated: the joined message was cut
 * at cap (or one record already was).
 */
typedef void crilog_message_fn(const char *msg, size_t len, bool truncated, void *userdata);

/*
 * Feeds one record (truncated: the line splitter cut the record itself). A full record calls
 * cb with the message, joined to the partial ones before it on its stream; a partial one is
 * kept. Returns -ENOMEM when a buffer could not be allocated (the message so far is then
 * delivered as it is, marked truncated, so nothing is silently lost), else 0.
 */
int crilog_joiner_add(struct crilog_joiner *j, const struct crilog_record *rec, bool truncated,
                      crilog_message_fn *cb, void *userdata);

/* End of a file: delivers what partial records are still waiting (marked as they are). */
void crilog_joiner_flush(struct crilog_joiner *j, crilog_message_fn *cb, void *userdata);

#endif
