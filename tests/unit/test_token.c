/* Unit tests for bootstrap enrollment tokens (common/token.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "token.h"

#include <errno.h>
#include <string.h>

#define PUBLIC_KEY "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
#define SECRET "vigil-enrollment-secret"
/* printf '%s' "$PUBLIC_KEY" | openssl dgst -sha256 -hmac 'vigil-enrollment-secret' */
#define EXPECTED_HEX "6dbf7b1070fc5aad68db727d7a1546803274ad89bc68023ed56713764dd33ca9"

static void test_known_answer(void **state)
{
    (void)state;
    uint8_t token[VG_TOKEN_LEN];
    char hex[VG_TOKEN_HEX_LEN + 1];

    assert_int_equal(vg_token_compute(SECRET, strlen(SECRET), PUBLIC_KEY, token), 0);
    vg_token_to_hex(token, hex);
    assert_string_equal(hex, EXPECTED_HEX);
}

static void test_verify(void **state)
{
    (void)state;
    uint8_t token[VG_TOKEN_LEN];
    uint8_t longer[VG_TOKEN_LEN + 1];

    assert_int_equal(vg_token_from_hex(EXPECTED_HEX, token), 0);
    assert_true(vg_token_verify(SECRET, strlen(SECRET), PUBLIC_KEY, token, sizeof(token)));

    /* One flipped bit anywhere is refused. */
    for (size_t i = 0; i < VG_TOKEN_LEN; i += 31) {
        for (int bit = 0; bit < 8; bit += 7) {
            token[i] ^= (uint8_t)(1u << bit);
            assert_false(vg_token_verify(SECRET, strlen(SECRET), PUBLIC_KEY, token, sizeof(token)));
            token[i] ^= (uint8_t)(1u << bit);
        }
    }
    assert_true(vg_token_verify(SECRET, strlen(SECRET), PUBLIC_KEY, token, sizeof(token)));

    /* Wrong lengths are refused, even when the first 32 bytes are right. */
    assert_false(vg_token_verify(SECRET, strlen(SECRET), PUBLIC_KEY, token, VG_TOKEN_LEN - 1));
    memcpy(longer, token, VG_TOKEN_LEN);
    longer[VG_TOKEN_LEN] = 0;
    assert_false(vg_token_verify(SECRET, strlen(SECRET), PUBLIC_KEY, longer, sizeof(longer)));
    assert_false(vg_token_verify(SECRET, strlen(SECRET), PUBLIC_KEY, NULL, VG_TOKEN_LEN));

    /* The token is bound to the secret and to the key. */
    assert_false(vg_token_verify("other-secret", 12, PUBLIC_KEY, token, sizeof(token)));
    assert_false(vg_token_verify(SECRET, strlen(SECRET), "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7",
                                 token, sizeof(token)));
}

static void test_compute_refuses_bad_input(void **state)
{
    (void)state;
    uint8_t token[VG_TOKEN_LEN];

    assert_int_equal(vg_token_compute(SECRET, 0, PUBLIC_KEY, token), -EINVAL);
    assert_int_equal(vg_token_compute(NULL, 4, PUBLIC_KEY, token), -EINVAL);
    assert_int_equal(vg_token_compute(SECRET, strlen(SECRET), "not-a-key", token), -EINVAL);
    assert_false(vg_token_verify("", 0, PUBLIC_KEY, token, sizeof(token)));
}

static void test_hex(void **state)
{
    (void)state;
    uint8_t token[VG_TOKEN_LEN], back[VG_TOKEN_LEN];
    char hex[VG_TOKEN_HEX_LEN + 1];
    char upper[VG_TOKEN_HEX_LEN + 1];

    for (size_t i = 0; i < VG_TOKEN_LEN; i++)
        token[i] = (uint8_t)(i * 37 + 11);
    vg_token_to_hex(token, hex);
    assert_int_equal(strlen(hex), VG_TOKEN_HEX_LEN);
    assert_int_equal(vg_token_from_hex(hex, back), 0);
    assert_memory_equal(token, back, VG_TOKEN_LEN);

    for (size_t i = 0; i <= VG_TOKEN_HEX_LEN; i++)
        upper[i] = (char)(hex[i] >= 'a' && hex[i] <= 'f' ? hex[i] - 'a' + 'A' : hex[i]);
    memset(back, 0, sizeof(back));
    assert_int_equal(vg_token_from_hex(upper, back), 0);
    assert_memory_equal(token, back, VG_TOKEN_LEN);

    /* Bad hex leaves the output alone. */
    memset(back, 0xAA, sizeof(back));
    assert_int_equal(vg_token_from_hex(EXPECTED_HEX "0", back), -EINVAL); /* 65 */
    hex[VG_TOKEN_HEX_LEN - 1] = '\0';
    assert_int_equal(vg_token_from_hex(hex, back), -EINVAL); /* 63 */
    assert_int_equal(
        vg_token_from_hex("gdbf7b1070fc5aad68db727d7a1546803274ad89bc68023ed56713764dd33ca9", back),
        -EINVAL);
    assert_int_equal(
        vg_token_from_hex("6dbf7b1070fc5aad68db727d7a1546803274ad89bc68023ed56713764dd33cag", back),
        -EINVAL);
    assert_int_equal(vg_token_from_hex("", back), -EINVAL);
    assert_int_equal(vg_token_from_hex(NULL, back), -EINVAL);
    for (size_t i = 0; i < VG_TOKEN_LEN; i++)
        assert_int_equal(back[i], 0xAA);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answer),
        cmocka_unit_test(test_verify),
        cmocka_unit_test(test_compute_refuses_bad_input),
        cmocka_unit_test(test_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
