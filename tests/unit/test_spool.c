/* The agent's disk spool: delivery order, restart, overflow, damage on disk. */
#include <setjmp.h> /* cmocka needs these first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "log.h"
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_RECS 4096
#define MAX_SEGS 256

struct fixture {
    char root[64];
    char dir[96];
};

/* What the test appended, to compare with what the spool gives back. */
struct sent {
    uint64_t seq;
    enum spool_kind kind;
    uint32_t samples;
    size_t len;
};

static void fill_payload(uint8_t *buf, size_t len, uint64_t seq)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(seq * 131u + i * 7u + (i >> 8));
}

static bool payload_matches(const uint8_t *data, size_t len, uint64_t seq)
{
    for (size_t i = 0; i < len; i++)
        if (data[i] != (uint8_t)(seq * 131u + i * 7u + (i >> 8)))
            return false;
    return true;
}

static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char child[512];
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(child, sizeof(child), "%s/%s", path, de->d_name);
        if (de->d_type == DT_DIR)
            remove_tree(child);
        else
            unlink(child);
    }
    closedir(d);
    rmdir(path);
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    if (!fx)
        return -1;
    snprintf(fx->root, sizeof(fx->root), "/tmp/test_spool.XXXXXX");
    if (!mkdtemp(fx->root)) {
        free(fx);
        return -1;
    }
    snprintf(fx->dir, sizeof(fx->dir), "%s/spool", fx->root);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    remove_tree(fx->root);
    free(fx);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted full paths of the segment files; returns how many. Caller frees each path. */
static size_t list_segments(const char *dir, char **paths, size_t max)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 4 || strcmp(de->d_name + len - 4, ".seg") != 0)
            continue;
        assert_true(n < max);
        char *path = malloc(strlen(dir) + len + 2);
        assert_non_null(path);
        snprintf(path, strlen(dir) + len + 2, "%s/%s", dir, de->d_name);
        paths[n++] = path;
    }
    closedir(d);
    qsort(paths, n, sizeof(*paths), cmp_str);
    return n;
}

static size_t count_segments(const char *dir)
{
    char *paths[MAX_SEGS] = {0};
    size_t n = list_segments(dir, paths, MAX_SEGS);
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    return n;
}

/* The path of segment number index (in order) in *out. */
static void segment_path(const char *dir, size_t index, char *out, size_t outlen)
{
    char *paths[MAX_SEGS] = {0};
    size_t n = list_segments(dir, paths, MAX_SEGS);
    assert_true(index < n);
    snprintf(out, outlen, "%s", paths[index]);
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
}

static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static void flip_byte(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    uint8_t b;
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &b, 1, off), 1);
    b ^= 0x5a;
    assert_int_equal(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

static spool_t *open_spool(const char *dir, uint64_t max_bytes, uint64_t segment_bytes, bool fsync)
{
    struct spool_limits limits = {
        .max_bytes = max_bytes, .segment_bytes = segment_bytes, .fsync = fsync};
    char err[256] = "";
    spool_t *sp = spool_open(dir, &limits, err, sizeof(err));
    if (!sp)
        fail_msg("spool_open: %s", err);
    return sp;
}

/* Reserves a seq and appends a recognisable payload; records it in *out when given. */
static uint64_t append_one(spool_t *sp, enum spool_kind kind, uint32_t samples, size_t len,
                           struct sent *out)
{
    static uint8_t buf[1 << 16];
    uint64_t seq;
    assert_true(len <= sizeof(buf));
    assert_int_equal(spool_reserve_seq(sp, &seq), 0);
    fill_payload(buf, len, seq);
    assert_int_equal(spool_append(sp, seq, kind, samples, buf, len), 0);
    if (out)
        *out = (struct sent){.seq = seq, .kind = kind, .samples = samples, .len = len};
    return seq;
}

/* Takes every unsent record (marking it sent), checks its payload, returns their seqs. */
static size_t drain(spool_t *sp, uint64_t *seqs, size_t max)
{
    struct spool_entry e;
    size_t n = 0;
    uint64_t prev = 0;
    while (spool_next_unsent(sp, &e) == 0) {
        assert_true(n < max);
        assert_true(e.seq > prev); /* oldest first */
        assert_true(payload_matches(e.data, e.len, e.seq));
        prev = e.seq;
        seqs[n++] = e.seq;
        spool_mark_sent(sp, e.seq);
    }
    return n;
}

static bool contains(const uint64_t *seqs, size_t n, uint64_t seq)
{
    for (size_t i = 0; i < n; i++)
        if (seqs[i] == seq)
            return true;
    return false;
}

static void test_send_ack_order(void **state)
{
    struct fixture *fx = *state;
    spool_t *sp = open_spool(fx->dir, 1 << 20, 64 << 10, true);
    struct sent s[3];
    struct spool_entry e;
    struct spool_stats st;

    append_one(sp, SPOOL_KIND_SIGNALS, 10, 300, &s[0]);
    append_one(sp, SPOOL_KIND_EVIDENCE, 0, 0, &s[1]);
    append_one(sp, SPOOL_KIND_RESULT, 0, 40, &s[2]);
    assert_true(s[0].seq < s[1].seq && s[1].seq < s[2].seq);

    for (int i = 0; i < 3; i++) {
        assert_int_equal(spool_next_unsent(sp, &e), 0);
        assert_int_equal(e.seq, s[i].seq);
        assert_int_equal(e.kind, s[i].kind);
        assert_int_equal(e.samples, s[i].samples);
        assert_int_equal(e.len, s[i].len);
        assert_true(payload_matches(e.data, e.len, e.seq));
        if (i == 0) { /* not marked sent: offered again */
            assert_int_equal(spool_next_unsent(sp, &e), 0);
            assert_int_equal(e.seq, s[0].seq);
        }
        spool_mark_sent(sp, e.seq);
    }
    assert_int_equal(spool_next_unsent(sp, &e), -ENOENT);
    spool_stats(sp, &st);
    assert_int_equal(st.depth, 3);
    assert_int_equal(st.inflight, 3);
    assert_int_equal(st.bytes, 3 * 25 + 300 + 0 + 40);

    assert_int_equal(spool_ack(sp, s[0].seq, s[1].seq), 2);
    assert_int_equal(spool_ack(sp, s[0].seq, s[1].seq), 0); /* again: harmless */
    assert_int_equal(spool_ack(sp, 100000, UINT64_MAX), 0); /* unknown: harmless */
    spool_stats(sp, &st);
    assert_int_equal(st.depth, 1);
    assert_int_equal(st.inflight, 1);

    assert_int_equal(spool_ack(sp, 0, UINT64_MAX), 1);
    spool_stats(sp, &st);
    assert_int_equal(st.depth, 0);
    assert_int_equal(st.inflight, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(spool_next_unsent(sp, &e), -ENOENT);

    /* Appends still work after the active segment went away. */
    uint64_t seq = append_one(sp, SPOOL_KIND_RESULT, 0, 10, NULL);
    assert_true(seq > s[2].seq);
    assert_int_equal(spool_next_unsent(sp, &e), 0);
    assert_int_equal(e.seq, seq);
    /* One owner at a time. */
    struct spool_limits limits = {0};
    char err[256] = "";
    assert_null(spool_open(fx->dir, &limits, err, sizeof(err)));
    assert_non_null(strstr(err, "in use"));
    spool_destroy(&sp);
    assert_null(sp);
}

static void test_reopen_keeps_unacked_records(void **state)
{
    struct fixture *fx = *state;
    spool_t *sp = open_spool(fx->dir, 1 << 20, 1024, true);
    struct sent s[20];
    uint64_t got[64];

    /* 225-byte records: four per 1 KiB segment. */
    for (int i = 0; i < 20; i++)
        append_one(sp, i % 3 ? SPOOL_KIND_SIGNALS : SPOOL_KIND_EVIDENCE, (uint32_t)i, 200, &s[i]);
    assert_int_equal(count_segments(fx->dir), 5);
    assert_int_equal(spool_ack(sp, s[0].seq, s[9].seq), 10);
    assert_int_equal(count_segments(fx->dir), 3);
    spool_destroy(&sp);

    sp = open_spool(fx->dir, 1 << 20, 1024, true);
    struct spool_stats st;
    spool_stats(sp, &st);
    size_t n = drain(sp, got, 64);
    /* Unacked records all back with their payloads; the deleted segments' records are gone.
     * (Records 8 and 9 shared a segment with unacked ones: the contract allows a resend.) */
    for (int i = 10; i < 20; i++)
        assert_true(contains(got, n, s[i].seq));
    for (int i = 0; i < 8; i++)
        assert_false(contains(got, n, s[i].seq));
    assert_int_equal(n, 12);
    assert_int_equal(st.depth, 12);

    struct spool_entry e;
    spool_requeue_inflight(sp);
    while (spool_next_unsent(sp, &e) == 0 && e.seq != s[15].seq)
        spool_mark_sent(sp, e.seq);
    assert_int_equal(e.seq, s[15].seq);
    assert_int_equal(e.kind, s[15].kind);
    assert_int_equal(e.samples, 15);
    assert_int_equal(e.len, 200);

    uint64_t seq;
    assert_int_equal(spool_reserve_seq(sp, &seq), 0);
    assert_true(seq > s[19].seq);
    spool_destroy(&sp);
}

static void test_reopen_empty_spool_never_reuses_seq(void **state)
{
    struct fixture *fx = *state;
    spool_t *sp = open_spool(fx->dir, 1 << 20, 0, false);
    uint64_t last = 0, seq;

    for (int i = 0; i < 3; i++)
        last = append_one(sp, SPOOL_KIND_SIGNALS, 1, 50, NULL);
    assert_int_equal(spool_ack(sp, 0, last), 3);
    assert_int_equal(count_segments(fx->dir), 0);
    /* Reserved but never appended: still never to be used again. */
    assert_int_equal(spool_reserve_seq(sp, &last), 0);
    spool_destroy(&sp);

    sp = open_spool(fx->dir, 1 << 20, 0, false);
    struct spool_stats st;
    spool_stats(sp, &st);
    assert_int_equal(st.depth, 0);
    assert_int_equal(spool_reserve_seq(sp, &seq), 0);
    /* Exactly the next one: a restart leaves no hole the coordinator would read as a loss. */
    assert_int_equal(seq, last + 1);

    /* Many reservations, past any block the spool may reserve ahead. */
    for (int i = 0; i < 5000; i++) {
        uint64_t next;
        assert_int_equal(spool_reserve_seq(sp, &next), 0);
        assert_true(next > seq);
        seq = next;
    }
    spool_destroy(&sp);
    sp = open_spool(fx->dir, 1 << 20, 0, false);
    uint64_t after;
    assert_int_equal(spool_reserve_seq(sp, &after), 0);
    assert_int_equal(after, seq + 1);
    spool_stats(sp, &st);
    assert_true(st.next_seq > after);
    spool_destroy(&sp);
}

/* The inode of <dir>/next-seq, 0 when there is none: it changes at every write (tmp + rename). */
static ino_t state_inode(const char *dir)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof(path), "%s/next-seq", dir);
    return stat(path, &st) == 0 ? st.st_ino : 0;
}

/*
 * With fsync each record is on disk before it can be sent, so it proves its own seq: appends
 * write no "next-seq" (two fsyncs and a rename each, the most of an evidence chunk's time), and
 * the ceiling is written when the newest segment goes. Sent seqs are never handed out again,
 * after a crash with records on disk or after everything was acknowledged and deleted.
 */
static void test_fsynced_records_prove_their_seqs(void **state)
{
    struct fixture *fx = *state;
    spool_t *sp = open_spool(fx->dir, 1 << 20, 1024, true);
    uint64_t got[64], last = 0, seq;

    for (int i = 0; i < 6; i++)
        last = append_one(sp, i % 2 ? SPOOL_KIND_EVIDENCE : SPOOL_KIND_SIGNALS, 1, 200, NULL);
    assert_int_equal(state_inode(fx->dir), 0); /* a new spool: nothing written yet */
    assert_int_equal(drain(sp, got, 64), 6);
    spool_destroy(&sp); /* a crash: sent, never acknowledged */

    sp = open_spool(fx->dir, 1 << 20, 1024, true);
    seq = append_one(sp, SPOOL_KIND_RESULT, 0, 20, NULL);
    assert_int_equal(seq, last + 1); /* no hole: seqs past the last record were never sent */
    last = seq;
    assert_int_equal(drain(sp, got, 64), 7);
    assert_int_equal(spool_ack(sp, 0, last), 7);
    assert_int_equal(count_segments(fx->dir), 0);
    ino_t written = state_inode(fx->dir);
    assert_true(written != 0); /* the newest segment went: its ceiling was written first */
    spool_destroy(&sp);

    sp = open_spool(fx->dir, 1 << 20, 1024, true);
    /* Older segments go without a write: the newest still holds the larger seqs. */
    uint64_t first = append_one(sp, SPOOL_KIND_SIGNALS, 1, 200, NULL);
    assert_int_equal(first, last + 1);
    for (int i = 0; i < 8; i++)
        last = append_one(sp, SPOOL_KIND_SIGNALS, 1, 200, NULL);
    assert_true(count_segments(fx->dir) > 1);
    assert_int_equal(drain(sp, got, 64), 9);
    assert_int_equal(spool_ack(sp, first, first), 1);
    assert_int_equal(state_inode(fx->dir), written);
    spool_destroy(&sp);

    /* A "next-seq" lost beside the segments (removed by hand): the records still hold. */
    char path[512];
    snprintf(path, sizeof(path), "%s/next-seq", fx->dir);
    assert_int_equal(unlink(path), 0);
    sp = open_spool(fx->dir, 1 << 20, 1024, true);
    /* All nine: the acknowledged one shared its segment with unacknowledged ones (a resend). */
    assert_int_equal(drain(sp, got, 64), 9);
    assert_int_equal(spool_ack(sp, 0, last), 9);
    assert_int_equal(count_segments(fx->dir), 0);
    spool_destroy(&sp);
    sp = open_spool(fx->dir, 1 << 20, 1024, true);
    assert_int_equal(spool_reserve_seq(sp, &seq), 0);
    assert_int_equal(seq, last + 1);
    spool_destroy(&sp);
}

static void test_requeue_inflight(void **state)
{
    struct fixture *fx = *state;
    spool_t *sp = open_spool(fx->dir, 1 << 20, 0, false);
    uint64_t seqs[3], got[8];
    struct spool_entry e;
    struct spool_stats st;

    for (int i = 0; i < 3; i++)
        seqs[i] = append_one(sp, SPOOL_KIND_EVIDENCE, 0, 64, NULL);
    assert_int_equal(drain(sp, got, 8), 3);
    assert_int_equal(spool_next_unsent(sp, &e), -ENOENT);

    assert_int_equal(spool_ack(sp, seqs[1], seqs[1]), 1);
    spool_requeue_inflight(sp);
    spool_stats(sp, &st);
    assert_int_equal(st.inflight, 0);
    assert_int_equal(st.depth, 2);
    assert_int_equal(drain(sp, got, 8), 2);
    assert_int_equal(got[0], seqs[0]);
    assert_int_equal(got[1], seqs[2]);

    /* Only some in flight: the oldest comes back first. */
    spool_requeue_inflight(sp);
    assert_int_equal(spool_next_unsent(sp, &e), 0);
    spool_mark_sent(sp, e.seq);
    assert_int_equal(spool_next_unsent(sp, &e), 0);
    assert_int_equal(e.seq, seqs[2]);
    spool_requeue_inflight(sp);
    assert_int_equal(spool_next_unsent(sp, &e), 0);
    assert_int_equal(e.seq, seqs[0]);
    spool_destroy(&sp);
}

/* The oldest record in flight, whose ack the link's ack deadline waits for: an ack of a newer
 * one does not change it. */
static void test_oldest_inflight(void **state)
{
    struct fixture *fx = *state;
    spool_t *sp = open_spool(fx->dir, 1 << 20, 0, false);
    uint64_t seqs[3], got[8];

    assert_int_equal(spool_oldest_inflight(sp), 0);
    for (int i = 0; i < 3; i++)
        seqs[i] = append_one(sp, SPOOL_KIND_SIGNALS, 1, 64, NULL);
    assert_int_equal(spool_oldest_inflight(sp), 0); /* nothing sent yet */
    assert_int_equal(drain(sp, got, 8), 3);
    assert_int_equal(spool_oldest_inflight(sp), seqs[0]);
    assert_int_equal(spool_ack(sp, seqs[1], seqs[1]), 1);
    assert_int_equal(spool_oldest_inflight(sp), seqs[0]);
    assert_int_equal(spool_ack(sp, seqs[0], seqs[0]), 1);
    assert_int_equal(spool_oldest_inflight(sp), seqs[2]);
    spool_requeue_inflight(sp);
    assert_int_equal(spool_oldest_inflight(sp), 0);
    spool_destroy(&sp);
}

static void test_overflow_drops_oldest_signals(void **state)
{
    struct fixture *fx = *state;
    const uint64_t max_bytes = 16 << 10;
    spool_t *sp = open_spool(fx->dir, max_bytes, 2048, false);
    static struct sent s[300];
    static uint64_t got[MAX_RECS];
    struct spool_stats st;
    struct spool_entry e;

    for (int i = 0; i < 300; i++) {
        if (i % 5 == 0)
            append_one(sp, SPOOL_KIND_EVIDENCE, 0, 100, &s[i]);
        else
            append_one(sp, SPOOL_KIND_SIGNALS, (uint32_t)i + 1, 200, &s[i]);
        if (i == 3) { /* the oldest signals are in flight when they get dropped */
            for (int k = 0; k < 3; k++) {
                assert_int_equal(spool_next_unsent(sp, &e), 0);
                spool_mark_sent(sp, e.seq);
            }
        }
        spool_stats(sp, &st);
        assert_true(st.bytes <= max_bytes);
    }

    spool_requeue_inflight(sp); /* record 0, evidence, is still in flight */
    size_t n = drain(sp, got, MAX_RECS);
    /* Every evidence record kept; signals kept are exactly the newest ones. */
    uint64_t oldest_kept_signal = UINT64_MAX;
    for (size_t i = 0; i < 300; i++) {
        if (s[i].kind == SPOOL_KIND_EVIDENCE)
            assert_true(contains(got, n, s[i].seq));
        else if (contains(got, n, s[i].seq) && s[i].seq < oldest_kept_signal)
            oldest_kept_signal = s[i].seq;
    }
    assert_true(contains(got, n, s[299].seq));
    uint64_t dropped = 0, dropped_samples = 0;
    for (size_t i = 0; i < 300; i++) {
        if (s[i].kind != SPOOL_KIND_SIGNALS)
            continue;
        if (s[i].seq < oldest_kept_signal) {
            assert_false(contains(got, n, s[i].seq));
            dropped++;
            dropped_samples += s[i].samples;
        } else {
            assert_true(contains(got, n, s[i].seq));
        }
    }
    assert_true(dropped > 100);
    spool_stats(sp, &st);
    assert_int_equal(st.dropped_messages, dropped);
    assert_int_equal(st.dropped_samples, dropped_samples);
    assert_int_equal(st.depth, n);
    assert_int_equal(st.depth, 300 - dropped);
    /* The dropped in-flight records' acks are ignored. */
    assert_int_equal(spool_ack(sp, s[1].seq, s[3].seq), 0);
    spool_stats(sp, &st);
    assert_int_equal(st.inflight, n);

    uint64_t bytes = st.bytes;
    spool_destroy(&sp);
    sp = open_spool(fx->dir, max_bytes, 2048, false);
    spool_stats(sp, &st);
    assert_int_equal(st.dropped_messages, dropped);
    assert_int_equal(st.dropped_samples, dropped_samples);
    assert_int_equal(st.bytes, bytes);
    static uint64_t again[MAX_RECS];
    assert_int_equal(drain(sp, again, MAX_RECS), n);
    assert_memory_equal(again, got, n * sizeof(*got));
    spool_destroy(&sp);
}

/* A record sent on a connection that was given up (queued again, not in flight any more) may
 * still reach the coordinator: dropped later, it counts as dropped in flight ("next-seq"). */
static uint64_t state_counter(const char *dir, const char *name)
{
    char path[160], line[128];
    uint64_t value = UINT64_MAX;
    snprintf(path, sizeof(path), "%s/next-seq", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        char key[64];
        unsigned long long v;
        if (sscanf(line, "%63s %llu", key, &v) == 2 && strcmp(key, name) == 0)
            value = v;
    }
    fclose(f);
    return value;
}

static void test_requeued_then_dropped_counts_as_in_flight(void **state)
{
    struct fixture *fx = *state;
    const uint64_t max_bytes = 16 << 10;
    spool_t *sp = open_spool(fx->dir, max_bytes, 2048, false);
    struct sent s[200];
    struct spool_entry e;

    for (int i = 0; i < 3; i++)
        append_one(sp, SPOOL_KIND_SIGNALS, 1, 200, &s[i]);
    for (int k = 0; k < 2; k++) { /* the first two go out, then their connection is given up */
        assert_int_equal(spool_next_unsent(sp, &e), 0);
        spool_mark_sent(sp, e.seq);
    }
    spool_requeue_inflight(sp);
    struct spool_stats st;
    spool_stats(sp, &st);
    assert_int_equal(st.inflight, 0);
    for (int i = 3; i < 200; i++)
        append_one(sp, SPOOL_KIND_SIGNALS, 1, 200, &s[i]);
    spool_stats(sp, &st);
    assert_true(st.dropped_messages > 3); /* the first three were among the oldest dropped */
    assert_int_equal(state_counter(fx->dir, "dropped_in_flight"), 2);
    spool_destroy(&sp);
}

static void test_full_of_evidence_is_enospc(void **state)
{
    struct fixture *fx = *state;
    spool_t *sp = open_spool(fx->dir, 8192, 1024, true);
    static uint8_t big[999];
    uint64_t evidence[15], signal, seq, got[32];
    struct spool_stats before, after;

    /* 15 x 512 bytes of evidence + one 125-byte signal: a 1 KiB record only fits if the
     * evidence shrinks, which overflow never does. */
    for (int i = 0; i < 15; i++)
        evidence[i] = append_one(sp, SPOOL_KIND_EVIDENCE, 0, 487, NULL);
    signal = append_one(sp, SPOOL_KIND_SIGNALS, 42, 100, NULL);
    spool_stats(sp, &before);
    assert_int_equal(before.bytes, 15 * 512 + 125);

    assert_int_equal(spool_reserve_seq(sp, &seq), 0);
    fill_payload(big, sizeof(big), seq);
    assert_int_equal(spool_append(sp, seq, SPOOL_KIND_RESULT, 0, big, sizeof(big)), -ENOSPC);
    spool_stats(sp, &after);
    assert_int_equal(after.depth, before.depth);
    assert_int_equal(after.bytes, before.bytes);
    assert_int_equal(after.dropped_messages, 0);
    assert_int_equal(after.dropped_samples, 0);
    size_t n = drain(sp, got, 32);
    assert_int_equal(n, 16);
    assert_true(contains(got, n, signal));

    /* Once the coordinator acks some evidence, the same record goes in. */
    assert_int_equal(spool_ack(sp, evidence[0], evidence[1]), 2);
    assert_int_equal(spool_append(sp, seq, SPOOL_KIND_RESULT, 0, big, sizeof(big)), 0);
    spool_stats(sp, &after);
    assert_true(after.bytes <= 8192);
    spool_destroy(&sp);
}

static void test_torn_tail_is_cut(void **state)
{
    struct fixture *fx = *state;
    const off_t cuts[] = {1, 5, 24, 26, 300, 324};

    for (size_t c = 0; c < sizeof(cuts) / sizeof(cuts[0]); c++) {
        char dir[160], seg[256];
        uint64_t seqs[3], got[8];
        snprintf(dir, sizeof(dir), "%s/torn%zu", fx->root, c);
        spool_t *sp = open_spool(dir, 1 << 20, 64 << 10, true);
        for (int i = 0; i < 3; i++)
            seqs[i] = append_one(sp, SPOOL_KIND_RESULT, 0, 300, NULL);
        spool_destroy(&sp);

        segment_path(dir, 0, seg, sizeof(seg));
        assert_int_equal(file_size(seg), 3 * 325);
        assert_int_equal(truncate(seg, 3 * 325 - cuts[c]), 0);

        sp = open_spool(dir, 1 << 20, 64 << 10, true);
        assert_int_equal(file_size(seg), 2 * 325);
        size_t n = drain(sp, got, 8);
        assert_int_equal(n, 2);
        assert_int_equal(got[0], seqs[0]);
        assert_int_equal(got[1], seqs[1]);
        uint64_t fresh = append_one(sp, SPOOL_KIND_RESULT, 0, 17, NULL);
        /* The torn record's append never returned, so it was never sent: its seq is free,
         * and taking it again leaves the coordinator no hole to count as a loss. */
        assert_int_equal(fresh, seqs[2]);
        spool_destroy(&sp);

        sp = open_spool(dir, 1 << 20, 64 << 10, true);
        n = drain(sp, got, 8);
        assert_int_equal(n, 3);
        assert_int_equal(got[0], seqs[0]);
        assert_int_equal(got[1], seqs[1]);
        assert_int_equal(got[2], fresh);
        spool_destroy(&sp);
    }
}

static void test_corrupt_record_detected(void **state)
{
    struct fixture *fx = *state;
    spool_t *sp = open_spool(fx->dir, 1 << 20, 1024, false);
    uint64_t seqs[12], got[16];
    char seg[256];

    /* 225-byte records, four per segment: segments hold 0-3, 4-7, 8-11. */
    for (int i = 0; i < 12; i++)
        seqs[i] = append_one(sp, SPOOL_KIND_EVIDENCE, 0, 200, NULL);
    spool_destroy(&sp);
    assert_int_equal(count_segments(fx->dir), 3);

    /* A byte of record 1's payload, in the oldest segment. */
    segment_path(fx->dir, 0, seg, sizeof(seg));
    flip_byte(seg, 225 + 25 + 10);
    sp = open_spool(fx->dir, 1 << 20, 1024, false);
    size_t n = drain(sp, got, 16);
    assert_int_equal(n, 9); /* record 0, then the two intact segments */
    assert_int_equal(got[0], seqs[0]);
    for (int i = 4; i < 12; i++)
        assert_int_equal(got[i - 3], seqs[i]);

    /* Damage while open: the record is never handed out, the others are. */
    spool_requeue_inflight(sp);
    segment_path(fx->dir, 1, seg, sizeof(seg));
    flip_byte(seg, 2 * 225 + 25 + 199);
    n = drain(sp, got, 16);
    assert_int_equal(n, 8);
    assert_false(contains(got, n, seqs[6]));
    assert_true(contains(got, n, seqs[5]));
    assert_true(contains(got, n, seqs[7]));
    struct spool_stats st;
    spool_stats(sp, &st);
    assert_int_equal(st.depth, 8);
    spool_destroy(&sp);
}

static void test_segments_deleted_after_ack(void **state)
{
    struct fixture *fx = *state;
    spool_t *sp = open_spool(fx->dir, 1 << 20, 1024, false);
    uint64_t seqs[12];
    struct spool_stats st;

    for (int i = 0; i < 12; i++)
        seqs[i] = append_one(sp, SPOOL_KIND_SIGNALS, 1, 200, NULL);
    assert_int_equal(count_segments(fx->dir), 3);

    assert_int_equal(spool_ack(sp, seqs[4], seqs[6]), 3); /* part of the middle one */
    assert_int_equal(count_segments(fx->dir), 3);
    assert_int_equal(spool_ack(sp, seqs[0], seqs[3]), 4);
    assert_int_equal(count_segments(fx->dir), 2);
    assert_int_equal(spool_ack(sp, seqs[7], seqs[7]), 1);
    assert_int_equal(count_segments(fx->dir), 1);
    assert_int_equal(spool_discard(sp, seqs[11]), 0);
    assert_int_equal(spool_ack(sp, seqs[8], seqs[10]), 3);
    assert_int_equal(count_segments(fx->dir), 0);
    spool_stats(sp, &st);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.depth, 0);

    append_one(sp, SPOOL_KIND_SIGNALS, 1, 200, NULL);
    assert_int_equal(count_segments(fx->dir), 1);
    spool_stats(sp, &st);
    assert_int_equal(st.bytes, 225);
    spool_destroy(&sp);
}

static void test_record_larger_than_segment(void **state)
{
    struct fixture *fx = *state;
    spool_t *sp = open_spool(fx->dir, 1 << 20, 1024, false);
    static uint8_t buf[1000];
    uint64_t seq;
    struct spool_stats st;

    assert_int_equal(spool_reserve_seq(sp, &seq), 0);
    assert_int_equal(spool_append(sp, seq, SPOOL_KIND_EVIDENCE, 0, buf, 1000), -EMSGSIZE);
    assert_int_equal(spool_append(sp, seq, SPOOL_KIND_EVIDENCE, 0, buf, 999), 0);
    spool_stats(sp, &st);
    assert_int_equal(st.bytes, 1024);
    spool_destroy(&sp);

    /* Defaults: 64 MiB spool, 4 MiB segments. */
    char dir[160];
    snprintf(dir, sizeof(dir), "%s/defaults", fx->root);
    sp = open_spool(dir, 0, 0, false);
    uint8_t *huge = calloc(1, 4 << 20);
    assert_non_null(huge);
    assert_int_equal(spool_reserve_seq(sp, &seq), 0);
    assert_int_equal(spool_append(sp, seq, SPOOL_KIND_EVIDENCE, 0, huge, 4 << 20), -EMSGSIZE);
    assert_int_equal(spool_append(sp, seq, SPOOL_KIND_EVIDENCE, 0, huge, (4 << 20) - 25), 0);
    free(huge);
    spool_destroy(&sp);
}

static void test_discard(void **state)
{
    struct fixture *fx = *state;
    spool_t *sp = open_spool(fx->dir, 1 << 20, 0, false);
    uint64_t seqs[3], got[8];
    struct spool_stats st;

    for (int i = 0; i < 3; i++)
        seqs[i] = append_one(sp, SPOOL_KIND_RESULT, 0, 30, NULL);
    assert_int_equal(spool_discard(sp, seqs[1]), 0);
    assert_int_equal(spool_discard(sp, seqs[1]), -ENOENT);
    assert_int_equal(spool_discard(sp, seqs[2] + 1000), -ENOENT);
    spool_stats(sp, &st);
    assert_int_equal(st.depth, 2);
    size_t n = drain(sp, got, 8);
    assert_int_equal(n, 2);
    assert_int_equal(got[0], seqs[0]);
    assert_int_equal(got[1], seqs[2]);
    /* An in-flight record can be discarded too. */
    assert_int_equal(spool_discard(sp, seqs[0]), 0);
    spool_stats(sp, &st);
    assert_int_equal(st.inflight, 1);
    assert_int_equal(st.depth, 1);
    spool_destroy(&sp);
}

static void test_append_checks_seq_and_kind(void **state)
{
    struct fixture *fx = *state;
    spool_t *sp = open_spool(fx->dir, 1 << 20, 0, false);
    uint64_t a, b;
    uint8_t byte = 1;

    assert_int_equal(spool_reserve_seq(sp, &a), 0);
    assert_int_equal(spool_reserve_seq(sp, &b), 0);
    assert_int_equal(spool_append(sp, b + 1, SPOOL_KIND_SIGNALS, 0, &byte, 1), -EINVAL);
    assert_int_equal(spool_append(sp, a, (enum spool_kind)7, 0, &byte, 1), -EINVAL);
    assert_int_equal(spool_append(sp, b, SPOOL_KIND_SIGNALS, 0, &byte, 1), 0);
    assert_int_equal(spool_append(sp, a, SPOOL_KIND_SIGNALS, 0, &byte, 1), -EINVAL);
    assert_int_equal(spool_append(sp, b, SPOOL_KIND_SIGNALS, 0, &byte, 1), -EINVAL);
    spool_destroy(&sp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_send_ack_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_unacked_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_empty_spool_never_reuses_seq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fsynced_records_prove_their_seqs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_requeue_inflight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oldest_inflight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overflow_drops_oldest_signals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_requeued_then_dropped_counts_as_in_flight, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_full_of_evidence_is_enospc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_is_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_record_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_segments_deleted_after_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_larger_than_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_checks_seq_and_kind, setup, teardown),
    };
    vg_log_init("test_spool", VG_LOG_WARN, false);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
