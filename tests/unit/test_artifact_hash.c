/* Unit tests for the running SHA-256 of uploads (coordinator/store/artifact_hash.c): it gives a
 * digest only for chunks fed exactly in order from offset 0, and nothing otherwise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "artifact_hash.h"
#include "digest.h"
#include "digest_openssl.h"

#include <stdio.h>
#include <string.h>

#define CHUNK 1000
static uint8_t data[5 * CHUNK + 17];

static int setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 7 + 3);
    return 0;
}

/* Feeds data[from, to) in CHUNK pieces at their offsets. */
static void feed_range(struct artifact_hashes *t, const char *agent, uint64_t artifact, size_t from,
                       size_t to)
{
    for (size_t off = from; off < to; off += CHUNK)
        artifact_hash_feed(t, agent, artifact, off, data + off,
                           to - off < CHUNK ? to - off : CHUNK);
}

static void test_in_order_gives_the_digest(void **state)
{
    (void)state;
    struct artifact_hashes t = {0};
    uint8_t want[VG_SHA256_LEN], got[VG_SHA256_LEN];

    vg_sha256(data, sizeof(data), want);
    feed_range(&t, "agent-a", 7, 0, sizeof(data));
    assert_true(artifact_hash_take(&t, "agent-a", 7, sizeof(data), got));
    assert_memory_equal(want, got, VG_SHA256_LEN);
    /* Taken once: the entry is gone. */
    assert_false(artifact_hash_take(&t, "agent-a", 7, sizeof(data), got));
}

static void test_two_uploads_interleaved(void **state)
{
    (void)state;
    struct artifact_hashes t = {0};
    uint8_t want[VG_SHA256_LEN], got[VG_SHA256_LEN];

    for (size_t off = 0; off < sizeof(data); off += CHUNK) {
        size_t n = sizeof(data) - off < CHUNK ? sizeof(data) - off : CHUNK;
        artifact_hash_feed(&t, "agent-a", 1, off, data + off, n);
        /* The same artifact id from another agent: another upload. */
        artifact_hash_feed(&t, "agent-b", 1, off, data + off, n);
    }
    vg_sha256(data, sizeof(data), want);
    assert_true(artifact_hash_take(&t, "agent-b", 1, sizeof(data), got));
    assert_memory_equal(want, got, VG_SHA256_LEN);
    assert_true(artifact_hash_take(&t, "agent-a", 1, sizeof(data), got));
    assert_memory_equal(want, got, VG_SHA256_LEN);
}

/* A batch rolled back after its chunks were fed, then resent: the entry is dropped. */
static void test_resent_chunk_drops_it(void **state)
{
    (void)state;
    struct artifact_hashes t = {0};
    uint8_t got[VG_SHA256_LEN];

    feed_range(&t, "agent-a", 7, 0, 3 * CHUNK);
    feed_range(&t, "agent-a", 7, 2 * CHUNK, sizeof(data)); /* offset 2000 again */
    assert_false(artifact_hash_take(&t, "agent-a", 7, sizeof(data), got));
}

/* A gap (a chunk still on its way, then arriving late) or a start mid-way: no digest. */
static void test_out_of_order_and_late_start(void **state)
{
    (void)state;
    struct artifact_hashes t = {0};
    uint8_t got[VG_SHA256_LEN];

    feed_range(&t, "agent-a", 7, 0, CHUNK);
    feed_range(&t, "agent-a", 7, 2 * CHUNK, sizeof(data));
    feed_range(&t, "agent-a", 7, CHUNK, 2 * CHUNK);
    assert_false(artifact_hash_take(&t, "agent-a", 7, sizeof(data), got));

    feed_range(&t, "agent-a", 8, CHUNK, sizeof(data)); /* began before a restart */
    assert_false(artifact_hash_take(&t, "agent-a", 8, sizeof(data) - CHUNK, got));
}

/* Fewer or more bytes fed than the stored total: no digest. */
static void test_total_must_match(void **state)
{
    (void)state;
    struct artifact_hashes t = {0};
    uint8_t got[VG_SHA256_LEN];

    feed_range(&t, "agent-a", 7, 0, 2 * CHUNK);
    assert_false(artifact_hash_take(&t, "agent-a", 7, 3 * CHUNK, got));
    feed_range(&t, "agent-a", 9, 0, 2 * CHUNK);
    assert_false(artifact_hash_take(&t, "agent-a", 9, CHUNK, got));
}

/* More uploads than slots: the least recently fed is dropped, the others still give digests. */
static void test_eviction(void **state)
{
    (void)state;
    struct artifact_hashes t = {0};
    uint8_t want[VG_SHA256_LEN], got[VG_SHA256_LEN];
    char agent[32];

    for (int i = 0; i <= ARTIFACT_HASH_SLOTS; i++) {
        snprintf(agent, sizeof(agent), "agent-%d", i);
        feed_range(&t, agent, 1, 0, CHUNK);
    }
    vg_sha256(data, CHUNK, want);
    assert_false(artifact_hash_take(&t, "agent-0", 1, CHUNK, got));
    for (int i = 1; i <= ARTIFACT_HASH_SLOTS; i++) {
        snprintf(agent, sizeof(agent), "agent-%d", i);
        assert_true(artifact_hash_take(&t, agent, 1, CHUNK, got));
        assert_memory_equal(want, got, VG_SHA256_LEN);
    }
    artifact_hash_clear(&t);
}

/* An agent id longer than a slot holds is never hashed (its chunks are read back instead). */
static void test_long_agent_id(void **state)
{
    (void)state;
    struct artifact_hashes t = {0};
    char agent[ARTIFACT_HASH_AGENT_MAX + 2];
    uint8_t got[VG_SHA256_LEN];

    memset(agent, 'a', sizeof(agent) - 1);
    agent[sizeof(agent) - 1] = '\0';
    feed_range(&t, agent, 1, 0, CHUNK);
    assert_false(artifact_hash_take(&t, agent, 1, CHUNK, got));
    agent[ARTIFACT_HASH_AGENT_MAX] = '\0'; /* the longest that fits */
    feed_range(&t, agent, 1, 0, CHUNK);
    assert_true(artifact_hash_take(&t, agent, 1, CHUNK, got));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order_gives_the_digest),
        cmocka_unit_test(test_two_uploads_interleaved),
        cmocka_unit_test(test_resent_chunk_drops_it),
        cmocka_unit_test(test_out_of_order_and_late_start),
        cmocka_unit_test(test_total_must_match),
        cmocka_unit_test(test_eviction),
        cmocka_unit_test(test_long_agent_id),
    };
    /* On the coordinator's engine, as it runs (a leak of a dropped context shows under ASan). */
    vg_sha256_set_engine(vg_sha256_openssl());
    return cmocka_run_group_tests(tests, setup, NULL);
}
