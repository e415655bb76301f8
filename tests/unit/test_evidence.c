/*
 * Unit tests for evidence on demand on the agent (agent/evidence.c): a request becomes
 * EvidenceChunk messages in the spool whose bytes and SHA-256 match what the capture wrote;
 * refusals are answered with an error chunk; the size cap truncates; nothing blocks; the
 * chunks of a capture go to the spool while it is still being written, and one that fails
 * midway ends with an error chunk. The
 * "file" kind (evidence_kinds.c) opens only regular files under the allowed directory, with
 * openat2 and with the walk used on kernels without it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "digest.h"
#include "evidence.h"
#include "evidence_kinds.h"
#include "spool.h"
#include "timeutil.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#define SENDER "ag-0123456789abcdef"

struct fixture {
    char root[64];
    char work[128];
    spool_t *spool;
};

/* Writes bytes [from, from + size) of the pattern (byte i is i * 7 + 3), 1000 at a time. */
static int write_pattern(const struct artifact_writer *out, size_t from, size_t size)
{
    uint8_t buf[1000];
    for (size_t done = 0; done < size;) {
        size_t n = sizeof(buf);
        if (n > size - done)
            n = size - done;
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)((from + done + i) * 7 + 3);
        int r = out->write(out->w, buf, n);
        if (r < 0)
            return r;
        done += n;
    }
    return 0;
}

/* A capture that writes `size=N` bytes of a pattern; `fail=1` fails with a message. */
static int capture_pattern(void *userdata, const struct evidence_args *args,
                           const struct artifact_writer *out, char *err, size_t errlen)
{
    static const char *const allowed[] = {"size", "fail", NULL};
    (void)userdata;
    int r = evidence_args_check(args, allowed, err, errlen);
    if (r < 0)
        return r;
    if (evidence_arg(args, "fail")) {
        snprintf(err, errlen, "asked to fail");
        return -EIO;
    }
    const char *size_text = evidence_arg(args, "size");
    return write_pattern(out, 0, size_text ? strtoul(size_text, NULL, 10) : 100);
}

/* A capture held at a gate, so that a test can look at the spool while it is being written:
 * it writes `first` bytes of the pattern, says so on `reached`, waits for a byte on `go`,
 * writes `second` more, then fails if `fail` is set. */
struct gate {
    int reached[2], go[2];
    size_t first, second;
    bool fail;
    int second_result; /* what writing the second part returned */
};

static int capture_gated(void *userdata, const struct evidence_args *args,
                         const struct artifact_writer *out, char *err, size_t errlen)
{
    struct gate *g = userdata;
    char byte = 1;
    (void)args;
    int r = write_pattern(out, 0, g->first);
    if (write(g->reached[1], &byte, 1) != 1 || read(g->go[0], &byte, 1) != 1)
        return -EIO;
    if (r < 0)
        return r;
    g->second_result = write_pattern(out, g->first, g->second);
    if (g->second_result < 0)
        return g->second_result;
    if (g->fail) {
        snprintf(err, errlen, "disk vanished");
        return -EIO;
    }
    return 0;
}

static void gate_open(struct gate *g, size_t first, size_t second, bool fail)
{
    memset(g, 0, sizeof(*g));
    assert_int_equal(pipe(g->reached), 0);
    assert_int_equal(pipe(g->go), 0);
    g->first = first;
    g->second = second;
    g->fail = fail;
}

/* Waits (5 s at most) until the gated capture has written its first part. */
static void gate_wait(struct gate *g)
{
    struct pollfd p = {.fd = g->reached[0], .events = POLLIN};
    char byte;
    if (poll(&p, 1, 5000) != 1)
        fail_msg("the gated capture did not reach its gate in 5 s");
    assert_int_equal(read(g->reached[0], &byte, 1), 1);
}

static void gate_release(struct gate *g)
{
    char byte = 1;
    assert_int_equal(write(g->go[1], &byte, 1), 1);
}

static void gate_close(struct gate *g)
{
    close(g->reached[0]);
    close(g->reached[1]);
    close(g->go[0]);
    close(g->go[1]);
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    char err[256], dir[160];
    struct spool_limits limits = {.max_bytes = 64 << 20, .segment_bytes = 0, .fsync = false};

    snprintf(fx->root, sizeof(fx->root), "/tmp/vigil-evidence-XXXXXX");
    assert_non_null(mkdtemp(fx->root));
    snprintf(fx->work, sizeof(fx->work), "%s/work", fx->root);
    snprintf(dir, sizeof(dir), "%s/spool", fx->root);
    fx->spool = spool_open(dir, &limits, err, sizeof(err));
    assert_non_null(fx->spool);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    spool_destroy(&fx->spool);
    nftw(fx->root, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

static evidence_t *make_with(struct fixture *fx, uint64_t max_bytes, uint64_t chunk_bytes,
                             struct gate *gate)
{
    const struct evidence_kind with_gate[] = {{"pattern", capture_pattern, NULL},
                                              {"gated", capture_gated, gate}};
    char err[256];
    struct evidence_options opt = {
        .work_dir = fx->work, .max_bytes = max_bytes, .chunk_bytes = chunk_bytes, .sender = SENDER};
    evidence_t *ev = evidence_new(with_gate, gate ? 2 : 1, &opt, err, sizeof(err));
    if (!ev)
        fail_msg("evidence_new: %s", err);
    return ev;
}

static evidence_t *make(struct fixture *fx, uint64_t max_bytes, uint64_t chunk_bytes)
{
    return make_with(fx, max_bytes, chunk_bytes, NULL);
}

static void request(evidence_t *ev, uint64_t id, const char *kind, const char *k, const char *v)
{
    Vigil__CollectRequest req = VIGIL__COLLECT_REQUEST__INIT;
    Vigil__Label label = VIGIL__LABEL__INIT;
    Vigil__Label *labels[] = {&label};

    req.collection_id = id;
    req.kind = (char *)kind;
    req.expires_at_ms = vg_wall_ms() + 60000;
    if (k) {
        label.key = (char *)k;
        label.value = (char *)v;
        req.n_args = 1;
        req.args = labels;
    }
    evidence_request(ev, &req);
}

/* Waits for finished captures and spools them all. */
static void drain(evidence_t *ev, spool_t *spool, int expect_artifacts)
{
    struct evidence_stats st;
    int64_t deadline = vg_mono_ms() + 5000;

    for (;;) {
        struct pollfd p = {.fd = evidence_fd(ev), .events = POLLIN};
        poll(&p, 1, 50);
        while (evidence_poll(ev, spool))
            ;
        evidence_stats(ev, &st);
        if ((int)(st.stored + st.refused + st.failed) >= expect_artifacts)
            return;
        if (vg_mono_ms() > deadline)
            fail_msg("captures did not finish in 5 s");
    }
}

/* Runs the main loop's part (5 s at most) until the spool holds want records not yet
 * acknowledged; fails when it does not, or when it holds more. */
static void spool_until(evidence_t *ev, spool_t *spool, uint64_t want)
{
    struct spool_stats st;
    int64_t deadline = vg_mono_ms() + 5000;

    for (;;) {
        struct pollfd p = {.fd = evidence_fd(ev), .events = POLLIN};
        poll(&p, 1, 50);
        while (evidence_poll(ev, spool))
            ;
        spool_stats(spool, &st);
        if (st.depth >= want)
            break;
        if (vg_mono_ms() > deadline)
            fail_msg("%llu chunks spooled in 5 s, not %llu", (unsigned long long)st.depth,
                     (unsigned long long)want);
    }
    assert_int_equal(st.depth, want);
}

/* The spooled chunks of one artifact, reassembled. */
struct artifact {
    uint64_t collection_id;
    uint64_t artifact; /* the id every chunk carries */
    size_t chunks;
    uint8_t *data;
    size_t size;
    uint64_t total_size;
    uint8_t sha256[VG_SHA256_LEN];
    bool has_sha256;
    bool truncated;
    char error[600];
};

/* Reads the next spooled chunk into a (after the chunks already there): true when it was the
 * artifact's last. */
static bool read_chunk(spool_t *spool, struct artifact *a)
{
    {
        struct spool_entry e;
        Vigil__Envelope *env = NULL;
        const char *why = NULL;

        assert_int_equal(spool_next_unsent(spool, &e), 0);
        assert_int_equal(e.kind, SPOOL_KIND_EVIDENCE);
        assert_int_equal(vg_envelope_decode(e.data, e.len, &env, &why), VG_DECODE_OK);
        spool_mark_sent(spool, e.seq);
        assert_int_equal(env->body_case, VIGIL__ENVELOPE__BODY_EVIDENCE);
        assert_string_equal(env->sender, SENDER);
        const Vigil__EvidenceChunk *c = env->evidence;
        if (c->error[0]) /* what the coordinator accepts (vg_envelope_decode checks it) */
            assert_true(c->last && c->offset == 0 && c->data.len == 0);
        else
            assert_int_equal(c->offset, a->size); /* contiguous from 0 */
        if (a->chunks > 0) {
            assert_int_equal(c->collection_id, a->collection_id);
            assert_int_equal(c->artifact, a->artifact); /* one artifact */
        }
        a->collection_id = c->collection_id;
        a->artifact = c->artifact;
        a->data = realloc(a->data, a->size + c->data.len + 1);
        if (c->data.len)
            memcpy(a->data + a->size, c->data.data, c->data.len);
        a->size += c->data.len;
        a->chunks++;
        bool last = c->last;
        if (last) {
            a->total_size = c->total_size;
            a->has_sha256 = c->sha256.len == VG_SHA256_LEN;
            if (a->has_sha256)
                memcpy(a->sha256, c->sha256.data, VG_SHA256_LEN);
            a->truncated = c->truncated;
            snprintf(a->error, sizeof(a->error), "%s", c->error ? c->error : "");
        }
        vg_envelope_free(env);
        return last;
    }
}

static void next_artifact(spool_t *spool, struct artifact *a)
{
    memset(a, 0, sizeof(*a));
    while (!read_chunk(spool, a))
        ;
}

/* The pattern's bytes, the hash of exactly them, and the size the last chunk announced. */
static void check_pattern_artifact(const struct artifact *a, size_t size)
{
    uint8_t expect[VG_SHA256_LEN];

    assert_int_equal(a->size, size);
    assert_int_equal(a->total_size, size);
    for (size_t i = 0; i < a->size; i++)
        if (a->data[i] != (uint8_t)(i * 7 + 3))
            fail_msg("byte %zu of the artifact is %u, not %u", i, a->data[i], (uint8_t)(i * 7 + 3));
    vg_sha256(a->data, a->size, expect);
    assert_true(a->has_sha256);
    assert_memory_equal(a->sha256, expect, VG_SHA256_LEN);
}

static void test_artifact_in_chunks_with_its_hash(void **state)
{
    struct fixture *fx = *state;
    evidence_t *ev = make(fx, 1 << 20, 4096);
    struct artifact a;
    uint8_t expect[VG_SHA256_LEN];

    request(ev, 42, "pattern", "size", "10000");
    drain(ev, fx->spool, 1);
    next_artifact(fx->spool, &a);
    assert_int_equal(a.collection_id, 42);
    assert_int_equal(a.chunks, 3); /* 4096 + 4096 + 1808 */
    assert_int_equal(a.size, 10000);
    assert_int_equal(a.total_size, 10000);
    assert_false(a.truncated);
    assert_string_equal(a.error, "");
    vg_sha256(a.data, a.size, expect);
    assert_memory_equal(a.sha256, expect, VG_SHA256_LEN);
    for (size_t i = 0; i < a.size; i++)
        assert_int_equal(a.data[i], (uint8_t)(i * 7 + 3));
    free(a.data);
    evidence_destroy(&ev);
}

static void test_size_cap_truncates(void **state)
{
    struct fixture *fx = *state;
    evidence_t *ev = make(fx, 2500, 1000);
    struct artifact a;
    uint8_t expect[VG_SHA256_LEN];
    struct evidence_stats st;

    request(ev, 7, "pattern", "size", "10000");
    drain(ev, fx->spool, 1);
    next_artifact(fx->spool, &a);
    assert_int_equal(a.size, 2500);
    assert_int_equal(a.total_size, 2500);
    assert_true(a.truncated);
    vg_sha256(a.data, a.size, expect);
    assert_memory_equal(a.sha256, expect, VG_SHA256_LEN); /* the hash covers what was sent */
    evidence_stats(ev, &st);
    assert_int_equal(st.truncated, 1);
    free(a.data);
    evidence_destroy(&ev);
}

static void test_refusals_answered_with_an_error(void **state)
{
    struct fixture *fx = *state;
    evidence_t *ev = make(fx, 1 << 20, 4096);
    struct artifact a;
    struct evidence_stats st;

    request(ev, 1, "nosuchkind", NULL, NULL);
    request(ev, 2, "pattern", "colour", "blue");
    request(ev, 3, "pattern", "fail", "1");
    drain(ev, fx->spool, 3);

    next_artifact(fx->spool, &a);
    assert_int_equal(a.collection_id, 1);
    assert_string_equal(a.error, "unknown kind \"nosuchkind\" (this agent collects: pattern)");
    assert_int_equal(a.size, 0);
    free(a.data);
    next_artifact(fx->spool, &a);
    assert_int_equal(a.collection_id, 2);
    assert_string_equal(a.error, "unknown argument \"colour\" (size, fail)");
    free(a.data);
    next_artifact(fx->spool, &a);
    assert_int_equal(a.collection_id, 3);
    assert_string_equal(a.error, "asked to fail");
    free(a.data);

    evidence_stats(ev, &st);
    assert_int_equal(st.requests, 3);
    assert_int_equal(st.refused, 1); /* refused before running */
    assert_int_equal(st.failed, 2);  /* ran and failed, argument check included */
    evidence_destroy(&ev);
}

static void test_expired_request_ignored(void **state)
{
    struct fixture *fx = *state;
    evidence_t *ev = make(fx, 1 << 20, 4096);
    Vigil__CollectRequest req = VIGIL__COLLECT_REQUEST__INIT;
    struct evidence_stats st;
    struct spool_entry e;

    req.collection_id = 9;
    req.kind = "pattern";
    req.expires_at_ms = vg_wall_ms() - 1000;
    evidence_request(ev, &req);
    assert_false(evidence_poll(ev, fx->spool));
    evidence_stats(ev, &st);
    assert_int_equal(st.refused, 1);
    assert_int_equal(spool_next_unsent(fx->spool, &e), -ENOENT);
    evidence_destroy(&ev);
}

static void test_many_requests_all_answered(void **state)
{
    struct fixture *fx = *state;
    evidence_t *ev = make(fx, 1 << 20, 4096);
    struct evidence_stats st;
    struct artifact a;
    int answered = 0;

    /* More than the queue holds: the excess is refused as busy, never lost silently. */
    for (int i = 0; i < 40; i++)
        request(ev, (uint64_t)(100 + i), "pattern", "size", "50000");
    drain(ev, fx->spool, 40);
    evidence_stats(ev, &st);
    assert_int_equal(st.requests, 40);
    assert_int_equal(st.stored + st.refused, 40);
    for (int i = 0; i < 40; i++) {
        next_artifact(fx->spool, &a);
        assert_true(a.error[0] == '\0' ? a.size == 50000 : strstr(a.error, "busy") != NULL);
        answered++;
        free(a.data);
    }
    assert_int_equal(answered, 40);
    evidence_destroy(&ev);
}

/* The chunks of a capture reach the spool while it is still being written: every full chunk
 * with more bytes behind it, not the rest; the last comes once it finished, with the hash of
 * all the bytes, and the artifact is cut exactly as a capture spooled after the fact. */
static void test_chunks_spooled_while_capture_runs(void **state)
{
    struct fixture *fx = *state;
    struct gate gate;
    gate_open(&gate, 3 * 4096 + 10, 5000, false);
    evidence_t *ev = make_with(fx, 1 << 20, 4096, &gate);
    struct artifact a = {0};
    struct evidence_stats st;
    struct spool_entry e;

    request(ev, 21, "gated", NULL, NULL);
    gate_wait(&gate);
    spool_until(ev, fx->spool, 3); /* 12,298 bytes written: three chunks, the tail waits */
    for (int i = 0; i < 3; i++)
        assert_false(read_chunk(fx->spool, &a));
    assert_int_equal(a.size, 3 * 4096);
    assert_int_equal(spool_next_unsent(fx->spool, &e), -ENOENT);
    evidence_stats(ev, &st);
    assert_int_equal(st.stored, 0); /* not before its last chunk */

    gate_release(&gate);
    drain(ev, fx->spool, 1);
    while (!read_chunk(fx->spool, &a))
        ;
    assert_int_equal(a.collection_id, 21);
    assert_int_equal(a.chunks, 5); /* 4 x 4096 + 914, as from the finished file */
    check_pattern_artifact(&a, 3 * 4096 + 10 + 5000);
    assert_false(a.truncated);
    assert_string_equal(a.error, "");
    evidence_stats(ev, &st);
    assert_int_equal(st.stored, 1);
    assert_int_equal(st.bytes, 3 * 4096 + 10 + 5000);
    assert_int_equal(st.failed, 0);
    free(a.data);
    evidence_destroy(&ev);
    gate_close(&gate);
}

/* A capture that fails after some of its chunks went ends with one last chunk carrying the
 * error (no size, no hash), and the next capture goes out normally. */
static void test_failure_after_chunks_ends_with_an_error(void **state)
{
    struct fixture *fx = *state;
    struct gate gate;
    gate_open(&gate, 2 * 4096 + 1, 3000, true);
    evidence_t *ev = make_with(fx, 1 << 20, 4096, &gate);
    struct artifact a = {0};
    struct evidence_stats st;

    request(ev, 22, "gated", NULL, NULL);
    request(ev, 23, "pattern", "size", "5000");
    gate_wait(&gate);
    spool_until(ev, fx->spool, 2);
    assert_false(read_chunk(fx->spool, &a));
    assert_false(read_chunk(fx->spool, &a));

    gate_release(&gate);
    drain(ev, fx->spool, 2);
    assert_true(read_chunk(fx->spool, &a));
    assert_int_equal(a.collection_id, 22);
    assert_int_equal(a.chunks, 3);
    assert_int_equal(a.size, 2 * 4096); /* the error chunk carries no data */
    assert_string_equal(a.error, "disk vanished");
    assert_false(a.has_sha256);
    assert_int_equal(a.total_size, 0);
    free(a.data);

    next_artifact(fx->spool, &a);
    assert_int_equal(a.collection_id, 23);
    assert_string_equal(a.error, "");
    check_pattern_artifact(&a, 5000);
    free(a.data);

    evidence_stats(ev, &st);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.stored, 1);
    assert_int_equal(st.bytes, 5000);
    evidence_destroy(&ev);
    gate_close(&gate);
}

/* The size cap reached after chunks were sent: the artifact is still marked truncated, and
 * its hash covers exactly the bytes sent. */
static void test_truncated_while_streaming(void **state)
{
    struct fixture *fx = *state;
    struct gate gate;
    gate_open(&gate, 2 * 4096 + 100, 5000, false);
    evidence_t *ev = make_with(fx, 10000, 4096, &gate);
    struct artifact a = {0};
    struct evidence_stats st;

    request(ev, 24, "gated", NULL, NULL);
    gate_wait(&gate);
    spool_until(ev, fx->spool, 2);
    gate_release(&gate);
    drain(ev, fx->spool, 1);
    next_artifact(fx->spool, &a);
    assert_int_equal(a.chunks, 3);
    check_pattern_artifact(&a, 10000);
    assert_true(a.truncated);
    assert_int_equal(gate.second_result, -EFBIG);
    evidence_stats(ev, &st);
    assert_int_equal(st.truncated, 1);
    assert_int_equal(st.stored, 1);
    assert_int_equal(st.bytes, 10000);
    free(a.data);
    evidence_destroy(&ev);
    gate_close(&gate);
}

/* The spool refusing a chunk of a capture still being written stops the capture (its writes
 * fail from its next chunk on) and counts one failure; the next capture is sent once there is
 * room again. */
static void test_spool_full_stops_the_capture(void **state)
{
    struct fixture *fx = *state;
    struct gate gate;
    gate_open(&gate, 6 * 4096 + 1, 1 << 20, false);
    evidence_t *ev = make_with(fx, 4 << 20, 4096, &gate);
    char err[256], dir[160];
    struct spool_limits limits = {.max_bytes = 16 << 10, .segment_bytes = 0, .fsync = false};
    struct evidence_stats st;
    struct spool_stats sst;
    struct spool_entry e;
    struct artifact a;

    snprintf(dir, sizeof(dir), "%s/small-spool", fx->root);
    spool_t *spool = spool_open(dir, &limits, err, sizeof(err));
    assert_non_null(spool);
    request(ev, 25, "gated", NULL, NULL);
    request(ev, 26, "pattern", "size", "100");
    gate_wait(&gate);
    for (int i = 0; i < 10; i++)
        while (evidence_poll(ev, spool))
            ;
    spool_stats(spool, &sst);
    assert_int_equal(sst.depth, 3); /* the chunks that fit in 16 KiB */
    evidence_stats(ev, &st);
    assert_int_equal(st.failed, 1);

    while (spool_next_unsent(spool, &e) == 0) { /* the coordinator takes what was sent */
        spool_mark_sent(spool, e.seq);
        assert_int_equal(spool_ack(spool, e.seq, e.seq), 1);
    }
    gate_release(&gate);
    drain(ev, spool, 2);
    assert_int_equal(gate.second_result, -ECANCELED); /* not the whole MiB */
    next_artifact(spool, &a);
    assert_int_equal(a.collection_id, 26);
    check_pattern_artifact(&a, 100);
    free(a.data);
    evidence_stats(ev, &st);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.stored, 1);
    evidence_destroy(&ev);
    spool_destroy(&spool);
    gate_close(&gate);
}

/* ---- the "file" kind (agent/evidence_kinds.c) ------------------------------------------------ */

/* An allowed directory holding a regular file, a FIFO, a socket, a character device (root
 * only: mknod), symlinks inside and out, and a subdirectory. false if mknod was not allowed. */
static bool make_allowed_dir(const char *allowed)
{
    char p[256], q[256];
    assert_int_equal(mkdir(allowed, 0755), 0);
    snprintf(p, sizeof(p), "%s/good.txt", allowed);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("good evidence\n", f);
    fclose(f);
    snprintf(p, sizeof(p), "%s/sub", allowed);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/sub/deeper.txt", allowed);
    f = fopen(p, "w");
    assert_non_null(f);
    fputs("deeper\n", f);
    fclose(f);
    snprintf(p, sizeof(p), "%s/fifo", allowed);
    assert_int_equal(mkfifo(p, 0644), 0);
    assert_int_equal(symlink("fifo", (snprintf(q, sizeof(q), "%s/link-fifo", allowed), q)), 0);
    assert_int_equal(symlink("good.txt", (snprintf(q, sizeof(q), "%s/link-in", allowed), q)), 0);
    assert_int_equal(symlink("sub", (snprintf(q, sizeof(q), "%s/link-dir", allowed), q)), 0);
    assert_int_equal(symlink("/etc", (snprintf(q, sizeof(q), "%s/link-out", allowed), q)), 0);

    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/sock", allowed);
    int sock = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(sock >= 0);
    assert_int_equal(bind(sock, (struct sockaddr *)&sun, sizeof(sun)), 0);
    close(sock); /* the socket file stays */

    snprintf(p, sizeof(p), "%s/null", allowed);
    if (mknod(p, S_IFCHR | 0666, makedev(1, 3)) == 0) /* what /dev/null is */
        return true;
    fprintf(stderr, "mknod %s: %s: the device node case is not checked\n", p, strerror(errno));
    return false;
}

/* Collects path=allowed/rel through the evidence pipeline; the error the user would see is
 * copied to err ("" when stored), the content to data. */
static void collect_file(struct fixture *fx, evidence_t *ev, uint64_t id, const char *allowed,
                         const char *rel, char *err, size_t errlen, char *data, size_t datalen)
{
    char path[512];
    struct artifact a;
    snprintf(path, sizeof(path), "%s/%s", allowed, rel);
    request(ev, id, "file", "path", path);
    drain(ev, fx->spool, 1);
    next_artifact(fx->spool, &a);
    assert_int_equal(a.collection_id, id);
    snprintf(err, errlen, "%s", a.error);
    snprintf(data, datalen, "%.*s", (int)a.size, a.data ? (const char *)a.data : "");
    free(a.data);
}

struct file_case {
    const char *rel;
    const char *want; /* the content, or a fragment of the refusal */
    bool refused;
    bool device; /* needs the mknod'd node */
};

static void check_file_cases(struct fixture *fx, const char *allowed, bool have_device,
                             const struct file_case *cases, size_t n)
{
    struct vg_cfg_strings dirs = {.items = (char *[]){(char *)allowed}, .count = 1};
    struct evidence_sources src = {.proc_root = "/proc", .allow_dirs = &dirs, .max_bytes = 1 << 20};
    struct evidence_kind kinds_all[EVIDENCE_KINDS_MAX];
    size_t nkinds = evidence_kinds_fill(kinds_all, &src);
    char err[256];
    struct evidence_options opt = {
        .work_dir = fx->work, .max_bytes = 1 << 20, .chunk_bytes = 4096, .sender = SENDER};
    evidence_t *ev = evidence_new(kinds_all, nkinds, &opt, err, sizeof(err));
    if (!ev)
        fail_msg("evidence_new: %s", err);

    for (size_t i = 0; i < n; i++) {
        char error[600], data[256];
        if (cases[i].device && !have_device)
            continue;
        collect_file(fx, ev, 500 + i, allowed, cases[i].rel, error, sizeof(error), data,
                     sizeof(data));
        if (cases[i].refused ? !strstr(error, cases[i].want) || data[0]
                             : error[0] || strcmp(data, cases[i].want) != 0)
            fail_msg("%s: got error \"%s\", content \"%s\"; want %s \"%s\"", cases[i].rel, error,
                     data, cases[i].refused ? "a refusal with" : "the content", cases[i].want);
    }
    evidence_destroy(&ev);
}

/* Kernels with openat2: symlinks that stay inside are followed; anything that is not a
 * regular file is refused without being read, and a FIFO does not hang the capture. */
static void test_file_refuses_special_files(void **state)
{
    struct fixture *fx = *state;
    char allowed[160];
    snprintf(allowed, sizeof(allowed), "%s/allowed", fx->root);
    bool have_device = make_allowed_dir(allowed);
    const struct file_case cases[] = {
        {"good.txt", "good evidence\n", false, false},
        {"sub/deeper.txt", "deeper\n", false, false},
        {"link-in", "good evidence\n", false, false},
        {"link-dir/deeper.txt", "deeper\n", false, false},
        {"fifo", "fifo is a FIFO, not a regular file", true, false},
        {"link-fifo", "link-fifo is a FIFO, not a regular file", true, false},
        {"sock", "sock is a socket, not a regular file", true, false},
        {"null", "null is a character device, not a regular file", true, true},
        {"sub", "sub is a directory, not a regular file", true, false},
        {"link-out/passwd", "resolves outside", true, false},
        {"../allowed/good.txt", "resolves outside", true, false},
    };
    evidence_kinds_test_without_openat2(false);
    check_file_cases(fx, allowed, have_device, cases, sizeof(cases) / sizeof(cases[0]));
}

/* Kernels without openat2: the path is walked component by component with O_NOFOLLOW, so no
 * symlink is followed (none can be swapped in between a check and the open), ".." is refused,
 * and special files are refused as on the openat2 path. */
static void test_file_without_openat2(void **state)
{
    struct fixture *fx = *state;
    char allowed[160];
    snprintf(allowed, sizeof(allowed), "%s/allowed", fx->root);
    bool have_device = make_allowed_dir(allowed);
    const struct file_case cases[] = {
        {"good.txt", "good evidence\n", false, false},
        {"sub/deeper.txt", "deeper\n", false, false},
        {"./sub//deeper.txt", "deeper\n", false, false},
        {"link-in", "symlink that is not followed", true, false},
        {"link-dir/deeper.txt", "symlink that is not followed", true, false},
        {"fifo", "fifo is a FIFO, not a regular file", true, false},
        {"link-fifo", "symlink that is not followed", true, false},
        {"sock", "sock is a socket, not a regular file", true, false},
        {"null", "null is a character device, not a regular file", true, true},
        {"sub", "sub is a directory, not a regular file", true, false},
        {"sub/", "Not a directory", true, false},
        {"link-out/passwd", "symlink that is not followed", true, false},
        {"sub/../good.txt", "resolves outside", true, false},
        {"missing.txt", "No such file or directory", true, false},
    };
    evidence_kinds_test_without_openat2(true);
    check_file_cases(fx, allowed, have_device, cases, sizeof(cases) / sizeof(cases[0]));
    evidence_kinds_test_without_openat2(false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_artifact_in_chunks_with_its_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_cap_truncates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals_answered_with_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_request_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_requests_all_answered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunks_spooled_while_capture_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_after_chunks_ends_with_an_error, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_truncated_while_streaming, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_full_stops_the_capture, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_refuses_special_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_without_openat2, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
