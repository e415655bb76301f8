/*
 * Unit tests for the evidence vault's chain (store_evidence_chain) and the verification walk
 * (store_chain_walk_*, coordinator/store/store_evidence_verify.c), without a database: rows are
 * built here as vault_append chains them, then changed, removed or reordered the ways someone
 * with write access to the tables could, and the walk must name the first broken row.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "digest.h"
#include "store.h"

#define NROWS 5
#define CONTENT_MAX 4096

struct row {
    uint64_t id;
    char agent_id[32], node[64], kind[16];
    struct store_evidence_arg args[2];
    size_t nargs;
    struct store_evidence_meta meta;
    uint8_t content[CONTENT_MAX];
    size_t len;
    uint8_t sha256[VG_SHA256_LEN], prev[VG_SHA256_LEN], chain[VG_SHA256_LEN];
};

static struct row rows[NROWS];

/* Row i of an intact vault: ids 10, 11, ...; content sizes 0, 1, 1000, 4096, 17. */
static void build_vault(void)
{
    static const size_t sizes[NROWS] = {0, 1, 1000, CONTENT_MAX, 17};
    uint8_t prev[VG_SHA256_LEN] = {0};

    memset(rows, 0, sizeof(rows));
    for (size_t i = 0; i < NROWS; i++) {
        struct row *r = &rows[i];
        r->id = 10 + i;
        snprintf(r->agent_id, sizeof(r->agent_id), "ag-%016zx", i % 2);
        snprintf(r->node, sizeof(r->node), "node-%zu", i % 2);
        snprintf(r->kind, sizeof(r->kind), "%s", i % 2 ? "host" : "file");
        r->args[0] = (struct store_evidence_arg){"path", "/var/log/app.log"};
        r->args[1] = (struct store_evidence_arg){"lines", "50"};
        r->nargs = i % 2 ? 0 : 2;
        r->len = sizes[i];
        for (size_t b = 0; b < r->len; b++)
            r->content[b] = (uint8_t)(b * 7 + i);
        vg_sha256(r->content, r->len, r->sha256);
        r->meta = (struct store_evidence_meta){
            .collection_id = 100 + i,
            .agent_id = r->agent_id,
            .agent_seq = i / 2 + 1,
            .artifact = 1000 + i,
            .node = r->node,
            .kind = r->kind,
            .args = r->args,
            .nargs = r->nargs,
            .collected_at_ms = 1700000000000 + (int64_t)i,
            .stored_at_ms = 1700000001000 + (int64_t)i,
            .size = r->len,
            .truncated = i == 3,
        };
        memcpy(r->prev, prev, VG_SHA256_LEN);
        store_evidence_chain(r->prev, r->sha256, &r->meta, r->chain);
        memcpy(prev, r->chain, VG_SHA256_LEN);
    }
}

static int setup(void **state)
{
    (void)state;
    build_vault();
    return 0;
}

/* Feeds row r to the walk as the cursor would: its columns, its content in chunks of chunk
 * bytes (in offset order), its end. */
static bool feed(struct store_chain_walk *w, const struct row *r, size_t chunk)
{
    if (!store_chain_walk_row(w, r->id, &r->meta, r->sha256, r->prev, r->chain))
        return false;
    for (size_t off = 0; off < r->len; off += chunk) {
        size_t n = r->len - off < chunk ? r->len - off : chunk;
        if (!store_chain_walk_content(w, off, r->content + off, n))
            return false;
    }
    return store_chain_walk_end(w);
}

/* Walks rows [from, to) from the vault's start; the index of the first row that failed, or -1. */
static int walk(struct store_chain_walk *w, size_t from, size_t to)
{
    store_chain_walk_init(w, NULL);
    for (size_t i = from; i < to; i++)
        if (!feed(w, &rows[i], 300))
            return (int)i;
    return -1;
}

static size_t total_bytes(size_t from, size_t to)
{
    size_t n = 0;
    for (size_t i = from; i < to; i++)
        n += rows[i].len;
    return n;
}

/* chain = SHA-256(prev || sha256 || netstrings of the metadata, args sorted by key), written
 * out here byte by byte: the format is the record's, and must never change by accident. */
static void test_chain_bytes(void **state)
{
    (void)state;
    const struct row *r = &rows[2];
    char meta[512];
    int n = snprintf(meta, sizeof(meta),
                     "3:102,19:ag-0000000000000000,1:2,4:1002,6:node-0,4:file,1:2,"
                     "5:lines,2:50,4:path,16:/var/log/app.log,"
                     "13:1700000000002,13:1700000001002,4:1000,1:0,");
    uint8_t buf[2 * VG_SHA256_LEN + sizeof(meta)], expected[VG_SHA256_LEN];
    memcpy(buf, r->prev, VG_SHA256_LEN);
    memcpy(buf + VG_SHA256_LEN, r->sha256, VG_SHA256_LEN);
    memcpy(buf + 2 * VG_SHA256_LEN, meta, (size_t)n);
    vg_sha256(buf, 2 * VG_SHA256_LEN + (size_t)n, expected);
    assert_memory_equal(r->chain, expected, VG_SHA256_LEN);

    /* The arguments' order as stored (jsonb's own) does not matter. */
    struct store_evidence_arg swapped[2] = {r->args[1], r->args[0]};
    struct store_evidence_meta m = r->meta;
    uint8_t again[VG_SHA256_LEN];
    m.args = swapped;
    store_evidence_chain(r->prev, r->sha256, &m, again);
    assert_memory_equal(again, r->chain, VG_SHA256_LEN);
    /* Every field counts: here the truncation flag. */
    m.truncated = true;
    store_evidence_chain(r->prev, r->sha256, &m, again);
    assert_memory_not_equal(again, r->chain, VG_SHA256_LEN);
}

static void test_intact_vault(void **state)
{
    (void)state;
    struct store_chain_walk w;

    assert_int_equal(walk(&w, 0, NROWS), -1);
    assert_int_equal(w.broken_id, 0);
    assert_int_equal(w.checked, NROWS);
    assert_int_equal(w.bytes, total_bytes(0, NROWS));
    assert_int_equal(w.last_id, rows[NROWS - 1].id);
    assert_memory_equal(w.prev, rows[NROWS - 1].chain, VG_SHA256_LEN);
    assert_string_equal(w.reason, "");

    /* An empty vault, and content that arrives as one chunk or byte by byte. */
    store_chain_walk_init(&w, NULL);
    assert_int_equal(w.checked, 0);
    assert_true(feed(&w, &rows[0], 1));
    assert_true(feed(&w, &rows[1], 1));
    assert_true(feed(&w, &rows[2], CONTENT_MAX));
    assert_int_equal(w.checked, 3);
}

/* Two walks, the second going on after the first's last row, add up to one walk. */
static void test_walk_in_steps(void **state)
{
    (void)state;
    struct store_chain_walk first, second;

    assert_int_equal(walk(&first, 0, 2), -1);
    store_chain_walk_init(&second, first.prev);
    for (size_t i = 2; i < NROWS; i++)
        assert_true(feed(&second, &rows[i], 512));
    assert_int_equal(first.checked + second.checked, NROWS);
    assert_int_equal(first.bytes + second.bytes, total_bytes(0, NROWS));

    /* Going on after a chain hash that is not the row before (it was deleted between steps). */
    store_chain_walk_init(&second, rows[0].chain);
    assert_false(feed(&second, &rows[2], 512));
    assert_int_equal(second.broken_id, rows[2].id);
    assert_non_null(strstr(second.reason, "previous link missing: the row before it was deleted"));
}

static void test_content_changed(void **state)
{
    (void)state;
    struct store_chain_walk w;

    rows[3].content[2000] ^= 0x01;
    assert_int_equal(walk(&w, 0, NROWS), 3);
    assert_int_equal(w.broken_id, rows[3].id);
    assert_string_equal(w.reason, "content hash differs from the stored sha256");
    assert_int_equal(w.checked, 3);
    assert_int_equal(w.bytes, total_bytes(0, 3));
    assert_int_equal(w.last_id, rows[2].id);

    /* Once broken, the walk stays at the first broken row. */
    assert_false(feed(&w, &rows[4], 300));
    assert_int_equal(w.broken_id, rows[3].id);
    assert_int_equal(w.checked, 3);
}

/* Retention removed row 2's content (026_retention.sql): with its removal recorded the row is
 * intact without content and the walk goes on; without the record the missing content breaks
 * it; a removal record does not excuse content that is there but wrong, nor a changed row. */
static void test_content_removed(void **state)
{
    (void)state;
    struct store_chain_walk w;

    assert_int_equal(walk(&w, 0, 2), -1);
    assert_true(store_chain_walk_row(&w, rows[2].id, &rows[2].meta, rows[2].sha256, rows[2].prev,
                                     rows[2].chain));
    store_chain_walk_content_removed(&w);
    assert_true(store_chain_walk_end(&w));
    for (size_t i = 3; i < NROWS; i++)
        assert_true(feed(&w, &rows[i], 300));
    assert_int_equal(w.checked, NROWS);
    assert_int_equal(w.removed, 1);
    assert_int_equal(w.bytes, total_bytes(0, NROWS) - rows[2].len);
    assert_int_equal(w.last_id, rows[NROWS - 1].id);

    /* No removal recorded: the missing content is the broken link. */
    assert_int_equal(walk(&w, 0, 2), -1);
    assert_true(store_chain_walk_row(&w, rows[2].id, &rows[2].meta, rows[2].sha256, rows[2].prev,
                                     rows[2].chain));
    assert_false(store_chain_walk_end(&w));
    assert_int_equal(w.broken_id, rows[2].id);
    assert_int_equal(w.removed, 0);

    /* Recorded as removed, yet some bytes are there and they are not the artifact's. */
    uint8_t wrong[300];
    memset(wrong, 'x', sizeof(wrong));
    assert_int_equal(walk(&w, 0, 2), -1);
    assert_true(store_chain_walk_row(&w, rows[2].id, &rows[2].meta, rows[2].sha256, rows[2].prev,
                                     rows[2].chain));
    store_chain_walk_content_removed(&w);
    assert_true(store_chain_walk_content(&w, 0, wrong, sizeof(wrong)));
    assert_false(store_chain_walk_end(&w));
    assert_int_equal(w.broken_id, rows[2].id);

    /* A removed row whose metadata changed is still named. */
    struct store_evidence_meta changed = rows[2].meta;
    changed.size = rows[2].meta.size + 1;
    assert_int_equal(walk(&w, 0, 2), -1);
    assert_false(store_chain_walk_row(&w, rows[2].id, &changed, rows[2].sha256, rows[2].prev,
                                      rows[2].chain));
    store_chain_walk_content_removed(&w);
    assert_false(store_chain_walk_end(&w));
    assert_int_equal(w.broken_id, rows[2].id);
    assert_int_equal(w.removed, 0);
}

static void test_content_size_and_gaps(void **state)
{
    (void)state;
    struct store_chain_walk w;

    /* The last chunk gone: fewer bytes than the row says. */
    assert_int_equal(walk(&w, 0, 2), -1);
    assert_true(store_chain_walk_row(&w, rows[2].id, &rows[2].meta, rows[2].sha256, rows[2].prev,
                                     rows[2].chain));
    assert_true(store_chain_walk_content(&w, 0, rows[2].content, 600));
    assert_false(store_chain_walk_end(&w));
    assert_int_equal(w.broken_id, rows[2].id);
    assert_string_equal(w.reason, "content is 600 bytes, the row says 1000 bytes");

    /* A chunk gone from the middle. */
    assert_int_equal(walk(&w, 0, 2), -1);
    assert_true(store_chain_walk_row(&w, rows[2].id, &rows[2].meta, rows[2].sha256, rows[2].prev,
                                     rows[2].chain));
    assert_true(store_chain_walk_content(&w, 0, rows[2].content, 300));
    assert_false(store_chain_walk_content(&w, 600, rows[2].content + 600, 400));
    assert_string_equal(w.reason, "content differs: a chunk is missing at offset 300");
    assert_false(store_chain_walk_end(&w));
    assert_int_equal(w.broken_id, rows[2].id);

    /* A chunk added over another. */
    assert_int_equal(walk(&w, 0, 2), -1);
    assert_true(store_chain_walk_row(&w, rows[2].id, &rows[2].meta, rows[2].sha256, rows[2].prev,
                                     rows[2].chain));
    assert_true(store_chain_walk_content(&w, 0, rows[2].content, 300));
    assert_false(store_chain_walk_content(&w, 200, rows[2].content + 200, 100));
    assert_string_equal(w.reason, "content differs: chunks overlap at offset 300");

    /* Bytes appended: more than the row says. */
    assert_int_equal(walk(&w, 0, 1), -1);
    assert_true(store_chain_walk_row(&w, rows[1].id, &rows[1].meta, rows[1].sha256, rows[1].prev,
                                     rows[1].chain));
    assert_true(store_chain_walk_content(&w, 0, "xy", 2));
    assert_false(store_chain_walk_end(&w));
    assert_string_equal(w.reason, "content is 2 bytes, the row says 1 bytes");
}

/* Content and sha256 changed together (and size): the chain still names the row. */
static void test_row_changed(void **state)
{
    (void)state;
    struct store_chain_walk w;

    snprintf(rows[1].node, sizeof(rows[1].node), "%s", "elsewhere");
    assert_int_equal(walk(&w, 0, NROWS), 1);
    assert_int_equal(w.broken_id, rows[1].id);
    assert_non_null(strstr(w.reason, "chain hash differs: the row was changed"));
    assert_int_equal(w.checked, 1);
    build_vault();

    rows[2].content[0] ^= 0xff;
    vg_sha256(rows[2].content, rows[2].len, rows[2].sha256);
    assert_int_equal(walk(&w, 0, NROWS), 2);
    assert_non_null(strstr(w.reason, "chain hash differs"));
    build_vault();

    rows[4].meta.stored_at_ms++;
    assert_int_equal(walk(&w, 0, NROWS), 4);
    build_vault();

    rows[0].chain[31] ^= 1;
    assert_int_equal(walk(&w, 0, NROWS), 0);
    assert_int_equal(w.broken_id, rows[0].id);
    assert_int_equal(w.checked, 0);
}

/*
 * A row rewritten consistently (its chain recomputed over the changed metadata): the row itself
 * checks out, the next one no longer links to it.
 */
static void test_row_rewritten(void **state)
{
    (void)state;
    struct store_chain_walk w;

    rows[2].meta.size = 999;
    rows[2].len = 999;
    vg_sha256(rows[2].content, rows[2].len, rows[2].sha256);
    store_evidence_chain(rows[2].prev, rows[2].sha256, &rows[2].meta, rows[2].chain);
    assert_int_equal(walk(&w, 0, NROWS), 3);
    assert_int_equal(w.broken_id, rows[3].id);
    assert_non_null(strstr(w.reason, "the row before it was deleted or rewritten"));
}

static void test_rows_deleted(void **state)
{
    (void)state;
    struct store_chain_walk w;

    /* A middle row: the one after it is named. */
    store_chain_walk_init(&w, NULL);
    assert_true(feed(&w, &rows[0], 300));
    assert_true(feed(&w, &rows[1], 300));
    assert_false(feed(&w, &rows[3], 300));
    assert_int_equal(w.broken_id, rows[3].id);
    assert_string_equal(w.reason,
                        "previous link missing: the row before it was deleted or rewritten");
    assert_int_equal(w.checked, 2);

    /* The first row: the vault no longer starts at the chain's start. */
    assert_int_equal(walk(&w, 1, NROWS), 1);
    assert_int_equal(w.broken_id, rows[1].id);
    assert_non_null(strstr(w.reason, "the vault does not start with this row"));

    /* The newest rows: nothing is broken, but the last link is an older one. */
    assert_int_equal(walk(&w, 0, NROWS - 2), -1);
    assert_memory_not_equal(w.prev, rows[NROWS - 1].chain, VG_SHA256_LEN);
}

static void test_unreadable_row(void **state)
{
    (void)state;
    struct store_chain_walk w;

    assert_int_equal(walk(&w, 0, 2), -1);
    store_chain_walk_unreadable(&w, 42, "sha256, prev_chain or chain is not 32 bytes");
    assert_int_equal(w.broken_id, 42);
    assert_string_equal(w.reason, "the row cannot be read: sha256, prev_chain or chain is not 32 "
                                  "bytes");
    /* The first broken row stays the one named. */
    store_chain_walk_unreadable(&w, 43, "args");
    assert_int_equal(w.broken_id, 42);
    assert_false(feed(&w, &rows[2], 300));
    assert_int_equal(w.checked, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_chain_bytes, setup),
        cmocka_unit_test_setup(test_intact_vault, setup),
        cmocka_unit_test_setup(test_walk_in_steps, setup),
        cmocka_unit_test_setup(test_content_changed, setup),
        cmocka_unit_test_setup(test_content_size_and_gaps, setup),
        cmocka_unit_test_setup(test_content_removed, setup),
        cmocka_unit_test_setup(test_row_changed, setup),
        cmocka_unit_test_setup(test_row_rewritten, setup),
        cmocka_unit_test_setup(test_rows_deleted, setup),
        cmocka_unit_test_setup(test_unreadable_row, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
