/* Signed checkpoints of the evidence chain (common/checkpoint.c): round trip, one spelling, and
 * every way a file can be wrong named by its line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "checkpoint.h"

static struct vg_checkpoint sample(void)
{
    struct vg_checkpoint cp = {.issued_at_ms = 1765012345678};
    for (int c = 0; c < VG_CHAINS; c++) {
        cp.chains[c].head = c == VG_CHAIN_EVIDENCE ? 42 : (uint64_t)c;
        for (size_t i = 0; i < sizeof(cp.chains[c].hash); i++)
            cp.chains[c].hash[i] = (uint8_t)(i * 7 + (size_t)c);
    }
    cp.chains[VG_CHAIN_REPORTS].head = 0; /* an empty chain */
    memset(cp.chains[VG_CHAIN_REPORTS].hash, 0, 32);
    return cp;
}

static void test_round_trip(void **unused)
{
    (void)unused;
    struct vg_signing_key k;
    struct vg_checkpoint cp = sample(), got;
    char text[VG_CHECKPOINT_MAX_LEN], err[256];
    assert_int_equal(vg_signing_key_generate(&k), 0);
    assert_int_equal(vg_checkpoint_format(&cp, &k, text, sizeof(text)), 0);
    assert_non_null(strstr(text, "vigil-checkpoint-v1\nissued_at_ms: 1765012345678\n"
                                 "evidence_head: 42\nevidence_hash: 00070e15"));
    assert_non_null(strstr(text, "\naudit_head: 1\naudit_hash: 01080f16"));
    assert_non_null(strstr(text, "\ntimeline_head: 2\ntimeline_hash: 02091017"));
    assert_non_null(strstr(text, "\nreports_head: 0\nreports_hash: 0000000000"));
    assert_int_equal(vg_checkpoint_parse(text, strlen(text), &got, err, sizeof(err)), 0);
    assert_int_equal(got.issued_at_ms, cp.issued_at_ms);
    for (int c = 0; c < VG_CHAINS; c++) {
        assert_int_equal(got.chains[c].head, cp.chains[c].head);
        assert_memory_equal(got.chains[c].hash, cp.chains[c].hash, 32);
    }
    assert_memory_equal(got.signing_public_key, k.public_key, 32);
    /* Too small a buffer is an error, not a cut checkpoint. */
    assert_int_equal(vg_checkpoint_format(&cp, &k, text, 300), -ENOSPC);
}

static void test_changes_are_refused(void **unused)
{
    (void)unused;
    struct vg_signing_key k, other;
    struct vg_checkpoint cp = sample(), got;
    char text[VG_CHECKPOINT_MAX_LEN], bad[VG_CHECKPOINT_MAX_LEN + 16], err[256];
    assert_int_equal(vg_signing_key_generate(&k), 0);
    assert_int_equal(vg_signing_key_generate(&other), 0);
    assert_int_equal(vg_checkpoint_format(&cp, &k, text, sizeof(text)), 0);
    size_t len = strlen(text);

    /* Another head id, same length: the signature no longer verifies. */
    memcpy(bad, text, len + 1);
    char *id = strstr(bad, "evidence_head: 42");
    id[strlen("evidence_head: 4")] = '3';
    assert_int_equal(vg_checkpoint_parse(bad, len, &got, err, sizeof(err)), -EBADMSG);
    assert_non_null(strstr(err, "the signature does not verify"));

    /* Another key's line over the same signature. */
    char *key_line = strstr(text, "signing_public_key: ") + strlen("signing_public_key: ");
    memcpy(bad, text, len + 1);
    memcpy(bad + (key_line - text), other.public_b64, VG_SIGN_PUBLIC_B64_LEN);
    assert_int_equal(vg_checkpoint_parse(bad, len, &got, err, sizeof(err)), -EBADMSG);

    /* Text after the signature, a missing last newline. */
    snprintf(bad, sizeof(bad), "%sx\n", text);
    assert_int_equal(vg_checkpoint_parse(bad, strlen(bad), &got, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "line 13: unexpected text after the signature");
    assert_int_equal(vg_checkpoint_parse(text, len - 1, &got, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "line 12: missing (a checkpoint has 12 lines, each ending in a newline)");

    static const struct {
        const char *text, *err;
    } cases[] = {
        {"", "line 1: missing (a checkpoint has 12 lines, each ending in a newline)"},
        {"vigil-checkpoint-v2\n", "line 1: not a checkpoint: the first line must be "
                                  "\"vigil-checkpoint-v1\""},
        {"vigil-checkpoint-v1\nissued: 1\n", "line 2: expected \"issued_at_ms: ...\""},
        {"vigil-checkpoint-v1\nissued_at_ms: -1\n",
         "line 2: issued_at_ms must be a decimal number of milliseconds"},
        {"vigil-checkpoint-v1\nissued_at_ms: 09\n",
         "line 2: issued_at_ms must be a decimal number of milliseconds"},
        {"vigil-checkpoint-v1\nissued_at_ms: 99999999999999999999\n",
         "line 2: issued_at_ms must be a decimal number of milliseconds"},
        {"vigil-checkpoint-v1\nissued_at_ms: 1\nevidence_head: 1\nevidence_hash: 00\n",
         "line 4: evidence_hash must be 64 lowercase hex digits"},
        {"vigil-checkpoint-v1\nissued_at_ms: 1\nevidence_head: 1\naudit_head: 1\n",
         "line 4: expected \"evidence_hash: ...\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(vg_checkpoint_parse(cases[i].text, strlen(cases[i].text), &got, err,
                                             sizeof(err)),
                         -EINVAL);
        assert_string_equal(err, cases[i].err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_changes_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
