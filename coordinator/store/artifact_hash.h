/*
 * SHA-256 of the artifacts being uploaded, kept running as their chunks are stored, so the
 * coordinator need not read a whole artifact back out of PostgreSQL to check it against the
 * agent's hash when its last chunk arrives.
 *
 * A shortcut only, never the judge of anything the store has not confirmed: a hash is fed a
 * chunk just after the chunk's INSERT inserted it, and only in offset order from 0. Anything
 * else (a chunk out of order, one fed again because its batch rolled back and the agent resent
 * it, a coordinator restart, more uploads at once than the table holds) drops or misses the
 * entry, and the caller hashes the stored chunks instead. The caller uses a digest only once
 * the store has shown the chunks to be exactly [0, total) without gap or overlap, and only when
 * the bytes fed are that total. `vigilctl evidence verify` re-reads the stored bytes either way.
 *
 * Owned by one store connection's thread; no locking.
 */
#ifndef VG_ARTIFACT_HASH_H
#define VG_ARTIFACT_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "digest.h"

/* Uploads hashed at once; the least recently fed is dropped for a new one. */
#define ARTIFACT_HASH_SLOTS 16
#define ARTIFACT_HASH_AGENT_MAX 128

struct artifact_hash_slot {
    bool used;
    char agent_id[ARTIFACT_HASH_AGENT_MAX + 1];
    uint64_t artifact;
    uint64_t next_offset; /* bytes fed so far */
    uint64_t last_fed;    /* artifact_hashes.clock when last fed */
    struct vg_sha256 hash;
};

struct artifact_hashes {
    struct artifact_hash_slot slots[ARTIFACT_HASH_SLOTS];
    uint64_t clock;
};

/* A chunk the store has just inserted. */
void artifact_hash_feed(struct artifact_hashes *t, const char *agent_id, uint64_t artifact,
                        uint64_t offset, const void *data, size_t len);

/* The digest of the first total bytes, when exactly those were fed in order: true and the
 * entry is gone. False when there is no such running hash (the caller reads the chunks). */
bool artifact_hash_take(struct artifact_hashes *t, const char *agent_id, uint64_t artifact,
                        uint64_t total, uint8_t ret_sha[VG_SHA256_LEN]);

/* Drops every running hash (the store's connection is going away). */
void artifact_hash_clear(struct artifact_hashes *t);

#endif
