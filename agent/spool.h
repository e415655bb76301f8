/*
 * The agent's disk spool: every durable outgoing message is appended here before it is sent
 * and removed only when the coordinator acknowledges its sequence number.
 *
 * Layout: a directory of segment files "<first-seq, 16 hex>.seg", each a sequence of records
 *     [u32 magic][u32 payload length][u32 crc32c-or-crc32 of header fields + payload]
 *     [u64 seq][u8 kind][u32 samples][payload]
 * plus "next-seq" holding a ceiling of the sequence counter (so a seq once sent is never
 * reused, even when the spool is empty after a restart; spool.c, "Sequence numbers"). A segment is
 * deleted when every record in it is acked or dropped. Acks are not persisted inside a segment:
 * after a restart the unacknowledged part of a segment is resent, and the coordinator ignores
 * duplicates by (agent, seq). A torn record at the tail (crash during append) is cut off at open.
 *
 * Overflow: when an append would push the spool over max_bytes, or the filesystem under it is
 * full (ENOSPC, EDQUOT) before that, the oldest SPOOL_KIND_SIGNALS records are dropped first
 * (segments deleted, or rewritten without them); other kinds are never dropped for space — the
 * append fails with -ENOSPC instead. A signals record that finds no room even then is dropped
 * itself (its seq stays unused), counted, and the append returns 0. Exact counts of dropped
 * messages and samples are kept (and persisted in "next-seq" alongside the counter), so every
 * gap the coordinator sees in an agent's sequence is one the agent counted. Of the dropped
 * messages, those that had been sent (in flight, or sent on a connection since given up and
 * queued again) are also counted apart ("dropped_in_flight"): the coordinator may have stored
 * them all the same.
 *
 * Not thread-safe: the agent's link loop owns it.
 */
#ifndef AGENT_SPOOL_H
#define AGENT_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct spool spool_t;

enum spool_kind {
    SPOOL_KIND_SIGNALS = 1,  /* metric samples: droppable under overflow */
    SPOOL_KIND_EVIDENCE = 2, /* never dropped */
    SPOOL_KIND_RESULT = 3,   /* command results: never dropped */
};

struct spool_limits {
    uint64_t max_bytes;     /* total on-disk bytes of all segments */
    uint64_t segment_bytes; /* a segment is closed when it reaches this size */
    bool fsync;             /* fsync after every append (durable across power loss) */
};

struct spool_entry {
    uint64_t seq;
    enum spool_kind kind;
    uint32_t samples;
    const uint8_t *data; /* borrowed: valid until the next spool call */
    size_t len;
};

struct spool_stats {
    uint64_t depth;            /* records not yet acknowledged (including in flight) */
    uint64_t bytes;            /* on-disk bytes */
    uint64_t inflight;         /* sent, not yet acknowledged */
    uint64_t dropped_messages; /* cumulative, survives restart */
    uint64_t dropped_samples;  /* cumulative, survives restart */
    uint64_t next_seq;
};

/* The largest record (one message) a spool with these limits takes: a segment's size after the
 * defaults and bounds spool_open applies, less a record's header. */
uint64_t spool_record_max(const struct spool_limits *limits);

/* Opens (creating dir with 0700 if needed) and recovers. NULL on failure with err set. */
spool_t *spool_open(const char *dir, const struct spool_limits *limits, char *err, size_t errlen);
void spool_destroy(spool_t **self_p);

/* Reserves the next sequence number. It is durable once its record is appended (with
 * limits.fsync), or before it is returned (without). */
int spool_reserve_seq(spool_t *self, uint64_t *ret_seq);

/* Appends a record for a reserved seq (seqs must be appended in increasing order).
 * Returns 0 (also for a signals record dropped for want of room, counted), -ENOSPC
 * (non-droppable data does not fit), -EMSGSIZE (bigger than a segment), or another negative
 * errno on I/O failure. */
int spool_append(spool_t *self, uint64_t seq, enum spool_kind kind, uint32_t samples,
                 const void *data, size_t len);

/* The oldest record that is neither in flight nor acknowledged. 0, or -ENOENT when none. */
int spool_next_unsent(spool_t *self, struct spool_entry *ret);

/* Marks seq as in flight (sent, awaiting ack). */
void spool_mark_sent(spool_t *self, uint64_t seq);

/* Every in-flight record becomes unsent again (after a reconnect or an ack timeout). */
void spool_requeue_inflight(spool_t *self);

/* The smallest seq in flight (sent, not acknowledged), or 0 when nothing is. */
uint64_t spool_oldest_inflight(const spool_t *self);

/* Acknowledges seqs first..last (inclusive); unknown seqs are ignored. Returns the number of
 * records removed, or a negative errno if deleting a segment failed. */
int spool_ack(spool_t *self, uint64_t first, uint64_t last);

/* Removes one record without an ack (the coordinator refused it as invalid). */
int spool_discard(spool_t *self, uint64_t seq);

void spool_stats(const spool_t *self, struct spool_stats *ret);

#endif
