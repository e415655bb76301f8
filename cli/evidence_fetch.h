/*
 * An artifact's bytes out of the coordinator's vault (evidence get, and each artifact of an
 * export bundle), in GetEvidence pieces of up to VG_MAX_EVIDENCE_READ_BYTES on one admin
 * session.
 *
 * Pipelined: up to EVIDENCE_FETCH_DEPTH requests for consecutive offsets are in flight, so the
 * coordinator (one request at a time, in arrival order) reads and encrypts the next pieces while
 * this one is decrypted, checked, hashed and written. Replies are taken in offset order, each
 * waited for up to timeout_ms; each must describe the same artifact and bring bytes that fit in
 * it; at the end the bytes must hash to its recorded SHA-256. A piece shorter than asked for is
 * followed by a new request where it ended (the requests already sent are dropped with their
 * replies).
 *
 * The coordinator audits a fetch (evidence.get) on its request at offset 0: every fetch sends
 * exactly one, even for an empty artifact, and no other.
 */
#ifndef CTL_EVIDENCE_FETCH_H
#define CTL_EVIDENCE_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "ctl_admin.h"
#include "digest.h"

#define EVIDENCE_FETCH_DEPTH 3

struct evidence_fetch_target {
    uint64_t id;
    const char *subject; /* "evidence 12": how messages name it */
    /*
     * The artifact as the caller already knows it (an export's signed manifest): every reply
     * must describe this size and SHA-256 (64 hex), and messages say "the manifest". NULL: the
     * first reply's description is taken and must not change while the artifact is fetched.
     */
    const char *sha256;
    uint64_t size;
    /* Takes the next len bytes, in order: 0, or a negative errno after printing why. */
    int (*write)(void *userdata, const uint8_t *data, size_t len);
    void *userdata;
};

/*
 * Fetches t's artifact on session, timeout_ms for each reply. 0 with *ret_size and ret_sha (the
 * verified SHA-256, hex) set, or a negative errno after printing why (one "vigilctl: ..."
 * line). On failure requests may still be in flight: destroy the session, or the replies are
 * dropped by its next request's wait.
 */
int evidence_fetch_artifact(ctl_admin_session_t *session, int64_t timeout_ms,
                            const struct evidence_fetch_target *t, uint64_t *ret_size,
                            char ret_sha[VG_SHA256_HEX_LEN + 1]);

#endif
