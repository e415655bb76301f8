/*
 * Unit tests for evidence on demand on the agent (agent/evidence.c): a request becomes
 * EvidenceChunk messages in the spool whose bytes and SHA-256 match what the capture wrote;
 * refusals are answered with an error chunk; the size cap truncates; nothing blocks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "digest.h"
#include "evidence.h"
#include "spool.h"
#include "timeutil.h"
#include "wire.h"

#include <errno.h>
#include <ftw.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SENDER "ag-0123456789abcdef"

struct fixture {
    char root[64];
    char work[128];
    spool_t *spool;
};

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
    size_t size = size_text ? strtoul(size_text, NULL, 10) : 100;
    uint8_t buf[1000];
    for (size_t done = 0; done < size;) {
        size_t n = size - done < sizeof(buf) ? size - done : sizeof(buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)((done + i) * 7 + 3);
        r = out->write(out->w, buf, n);
        if (r < 0)
            return r;
        done += n;
    }
    return 0;
}

static const struct evidence_kind kinds[] = {{"pattern", capture_pattern, NULL}};

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

static evidence_t *make(struct fixture *fx, uint64_t max_bytes, uint64_t chunk_bytes)
{
    char err[256];
    struct evidence_options opt = {
        .work_dir = fx->work, .max_bytes = max_bytes, .chunk_bytes = chunk_bytes, .sender = SENDER};
    evidence_t *ev = evidence_new(kinds, 1, &opt, err, sizeof(err));
    if (!ev)
        fail_msg("evidence_new: %s", err);
    return ev;
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

/* The spooled chunks of one artifact, reassembled. */
struct artifact {
    uint64_t collection_id;
    size_t chunks;
    uint8_t *data;
    size_t size;
    uint64_t total_size;
    uint8_t sha256[VG_SHA256_LEN];
    bool truncated;
    char error[600];
};

static void next_artifact(spool_t *spool, struct artifact *a)
{
    memset(a, 0, sizeof(*a));
    for (;;) {
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
        assert_int_equal(c->offset, a->size); /* contiguous from 0 */
        a->collection_id = c->collection_id;
        a->data = realloc(a->data, a->size + c->data.len + 1);
        if (c->data.len)
            memcpy(a->data + a->size, c->data.data, c->data.len);
        a->size += c->data.len;
        a->chunks++;
        bool last = c->last;
        if (last) {
            a->total_size = c->total_size;
            if (c->sha256.len == VG_SHA256_LEN)
                memcpy(a->sha256, c->sha256.data, VG_SHA256_LEN);
            a->truncated = c->truncated;
            snprintf(a->error, sizeof(a->error), "%s", c->error ? c->error : "");
        }
        vg_envelope_free(env);
        if (last)
            return;
    }
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_artifact_in_chunks_with_its_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_cap_truncates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals_answered_with_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_request_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_requests_all_answered, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
