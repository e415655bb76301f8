/*
 * The executor's replay cache: every capsule nonce it accepted, remembered until the capsule's
 * not-after time, across restarts. A capsule is valid for at most 15 minutes (capsule.h) and is
 * run once: the executor verifies it (vg_capsule_verify), then asks replay_seen_or_add, and runs
 * it only on 0. Approvals may complete in any order; this, not ordering, is what stops a replay.
 *
 * Promise: a nonce that replay_seen_or_add accepted (returned 0) is refused as -EALREADY until
 * its not_after_ms, also after a crash or restart, because the record is on disk (appended and
 * fdatasync'd) before the call returns. An unexpired nonce is never forgotten to make room:
 * when max_entries unexpired nonces are held, a new one is refused (-ENOSPC) until some expire.
 * A corrupt file is refused at open rather than half-read (see replay.c for the format).
 *
 * Expiry uses the now_ms the caller passes (the executor's wall clock, the clock capsules are
 * stamped with). A clock that goes back keeps entries longer; one that jumps forward expires
 * them, and the capsules they came from with them.
 *
 * One process owns a cache directory at a time (an exclusive lock on the directory: a second
 * opener gets NULL with "in use"). Not thread-safe: the executor's loop owns it.
 */
#ifndef AGENT_REPLAY_H
#define AGENT_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#define REPLAY_NONCE_LEN 16
#define REPLAY_MAX_ENTRIES_DEFAULT 10000
#define REPLAY_MAX_ENTRIES_LIMIT 1000000

typedef struct replay replay_t;

/* Opens the cache in dir (created with mode 0700 if missing; the file is mode 0600). max_entries
 * 0 means REPLAY_MAX_ENTRIES_DEFAULT; more than REPLAY_MAX_ENTRIES_LIMIT is refused. NULL on
 * failure, with err set. */
replay_t *replay_open(const char *dir, size_t max_entries, char *err, size_t errlen);
void replay_destroy(replay_t **self_p);

/*
 * 0: nonce is new and is now remembered (durably) until not_after_ms.
 * -EALREADY: nonce was seen and has not expired: a replay.
 * -ENOSPC: max_entries unexpired nonces are held; nothing was added.
 * -EINVAL: not_after_ms <= now_ms (already expired: nothing to remember; the capsule check
 *          refuses such a capsule first).
 * -EIO or another negative errno: it could not be written; nothing was added, and the caller
 *          must not run the command.
 */
int replay_seen_or_add(replay_t *self, const unsigned char nonce[REPLAY_NONCE_LEN],
                       int64_t not_after_ms, int64_t now_ms);

/* Entries held (unexpired as of the last call, plus any loaded at open). */
size_t replay_count(const replay_t *self);

#endif
