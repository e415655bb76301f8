/*
 * Fuzz target: the executor's replay cache file (agent/replay.c) read back at open, as after a
 * crash or on a damaged disk: header, 32-byte records with their SHA-256 checks, a torn last
 * record, then the cache in use (expiry, the entry bound, compaction) and reopened.
 *
 * The first input byte chooses: bit 0 = recompute every record's check before writing the file
 * (random bytes never carry a valid check, so this reaches what follows the checks: times,
 * duplicates, expiry), bits 1..3 = max_entries - 1. The rest is the file "replay.log".
 *
 * Oracles beyond "no crash, no sanitizer report" — the promises of replay.h: a record that
 * checks and whose time is after now is refused as a replay, whether the file was loaded or
 * compacted; a fresh nonce that was accepted is refused until it expires, also after the cache
 * is closed and opened again; a file with a record that does not check anywhere but at the end
 * is refused at open.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "inputfiles.h"
#include "replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HEADER "vigil-replay-v1\n"
#define HEADER_LEN 16
#define REC_LEN 32
#define NOW_MS INT64_C(1790000000000)
#define MAX_FILE (64 * 1024)

static bool record_checks(const uint8_t *rec)
{
    uint8_t digest[VG_SHA256_LEN];
    vg_sha256(rec, REPLAY_NONCE_LEN + 8, digest);
    return memcmp(digest, rec + REPLAY_NONCE_LEN + 8, 8) == 0;
}

static int64_t record_time(const uint8_t *rec)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | rec[REPLAY_NONCE_LEN + i];
    return (int64_t)v;
}

static replay_t *open_cache(const char *dir, size_t max_entries)
{
    char err[512];
    return replay_open(dir, max_entries, err, sizeof(err));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t file[MAX_FILE];
    char dir[512];

    if (size < 1 || size - 1 > MAX_FILE)
        return 0;
    bool fixup = data[0] & 1;
    size_t max_entries = 1 + ((data[0] >> 1) & 7);
    size_t len = size - 1;
    memcpy(file, data + 1, len);
    bool has_header = len >= HEADER_LEN && memcmp(file, HEADER, HEADER_LEN) == 0;
    size_t records = has_header ? (len - HEADER_LEN) / REC_LEN : 0;
    if (fixup && has_header) {
        for (size_t i = 0; i < records; i++) {
            uint8_t *rec = file + HEADER_LEN + i * REC_LEN;
            uint8_t digest[VG_SHA256_LEN];
            vg_sha256(rec, REPLAY_NONCE_LEN + 8, digest);
            memcpy(rec + REPLAY_NONCE_LEN + 8, digest, 8);
        }
    }

    inputfiles_reset();
    if (!inputfiles_write("cache/replay.log", file, len))
        abort();
    snprintf(dir, sizeof(dir), "%s/cache", inputfiles_dir());

    /* Which records must survive the open: all of them when every one checks; a last one that
     * does not check (a torn append) is cut; one elsewhere makes the open fail. */
    size_t bad_at = records;
    for (size_t i = 0; i < records; i++) {
        if (!record_checks(file + HEADER_LEN + i * REC_LEN)) {
            bad_at = i;
            break;
        }
    }
    bool whole = has_header && (len - HEADER_LEN) % REC_LEN == 0;
    bool must_fail = (len >= HEADER_LEN && !has_header) ||
                     (bad_at < records && !(bad_at + 1 == records && whole));

    replay_t *cache = open_cache(dir, max_entries);
    if (!cache) {
        if (!must_fail)
            abort();
        return 0;
    }
    if (must_fail)
        abort();

    /* Every loaded nonce that has not expired is a replay. */
    size_t kept = bad_at < records ? bad_at : records;
    for (size_t i = 0; i < kept && i < 64; i++) {
        const uint8_t *rec = file + HEADER_LEN + i * REC_LEN;
        if (record_time(rec) > NOW_MS &&
            replay_seen_or_add(cache, rec, NOW_MS + 60000, NOW_MS) != -EALREADY)
            abort();
    }

    /* Fresh nonces until the bound: each accepted one is then a replay, also after a reopen. */
    unsigned char nonce[REPLAY_NONCE_LEN];
    size_t accepted = 0;
    for (unsigned k = 0; k < 12; k++) {
        memset(nonce, 0xe0 + (int)k, sizeof(nonce));
        int r = replay_seen_or_add(cache, nonce, NOW_MS + 1000 + k, NOW_MS + k);
        if (r == 0) {
            accepted = k + 1;
            if (replay_seen_or_add(cache, nonce, NOW_MS + 1000 + k, NOW_MS + k) != -EALREADY)
                abort();
        } else if (r != -EALREADY && r != -ENOSPC) {
            abort();
        }
    }
    replay_destroy(&cache);

    cache = open_cache(dir, max_entries);
    if (!cache)
        abort();
    if (accepted > 0) {
        memset(nonce, 0xe0 + (int)(accepted - 1), sizeof(nonce));
        if (replay_seen_or_add(cache, nonce, NOW_MS + 5000, NOW_MS + 12) != -EALREADY)
            abort();
    }
    replay_destroy(&cache);
    return 0;
}
