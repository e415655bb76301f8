/* Unit tests for SHA-256 and HMAC-SHA256 (common/digest.c) against published test vectors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "digest.h"
#include "digest_openssl.h"

#include <string.h>

static void hex_of(const uint8_t *md, char *out)
{
    vg_hex(md, VG_SHA256_LEN, out);
}

/* FIPS 180-2 examples. */
static void test_sha256_vectors(void **state)
{
    (void)state;
    uint8_t md[VG_SHA256_LEN];
    char hex[VG_SHA256_HEX_LEN + 1];

    vg_sha256("abc", 3, md);
    hex_of(md, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    vg_sha256("", 0, md);
    hex_of(md, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* Streaming in uneven pieces gives the one-shot digest. */
static void test_sha256_streaming(void **state)
{
    (void)state;
    static const char text[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    uint8_t whole[VG_SHA256_LEN], parts[VG_SHA256_LEN];
    char hex[VG_SHA256_HEX_LEN + 1];
    struct vg_sha256 h;
    size_t len = strlen(text);

    vg_sha256(text, len, whole);
    vg_sha256_init(&h);
    vg_sha256_update(&h, text, 1);
    vg_sha256_update(&h, text + 1, 0);
    vg_sha256_update(&h, text + 1, 30);
    vg_sha256_update(&h, text + 31, len - 31);
    vg_sha256_final(&h, parts);
    assert_memory_equal(whole, parts, VG_SHA256_LEN);
    hex_of(whole, hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

/* RFC 4231 test cases 2 (short key) and 6 (key longer than the block). */
static void test_hmac_vectors(void **state)
{
    (void)state;
    uint8_t mac[VG_SHA256_LEN];
    char hex[VG_SHA256_HEX_LEN + 1];
    uint8_t long_key[131];
    static const char long_data[] = "Test Using Larger Than Block-Size Key - Hash Key First";

    vg_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, mac);
    hex_of(mac, hex);
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

    memset(long_key, 0xaa, sizeof(long_key));
    vg_hmac_sha256(long_key, sizeof(long_key), long_data, strlen(long_data), mac);
    hex_of(mac, hex);
    assert_string_equal(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

static void test_constant_time_compare(void **state)
{
    (void)state;
    assert_int_equal(vg_memcmp_ct("same", "same", 4), 0);
    assert_int_not_equal(vg_memcmp_ct("same", "sane", 4), 0);
}

/* Runs every test above once on libsodium and once on libcrypto's engine. */
static int on_sodium(void **state)
{
    (void)state;
    vg_sha256_set_engine(NULL);
    return 0;
}

static int on_openssl(void **state)
{
    (void)state;
    const struct vg_sha256_engine *engine = vg_sha256_openssl();
    if (!engine)
        return -1; /* libcrypto without SHA-256: the group fails */
    vg_sha256_set_engine(engine);
    return 0;
}

/* Both engines agree on every length around the block size and on any split of the input. */
static void test_engines_agree(void **state)
{
    (void)state;
    static uint8_t data[3 * 1024 * 1024 + 7];
    const struct vg_sha256_engine *openssl = vg_sha256_openssl();
    uint8_t a[VG_SHA256_LEN], b[VG_SHA256_LEN], c[VG_SHA256_LEN];
    struct vg_sha256 h;

    assert_non_null(openssl);
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 131 + (i >> 11));
    static const size_t lengths[] = {0, 1, 55, 56, 63, 64, 65, 1000, 4096, sizeof(data)};
    for (size_t k = 0; k < sizeof(lengths) / sizeof(lengths[0]); k++) {
        size_t len = lengths[k];
        vg_sha256_set_engine(NULL);
        vg_sha256(data, len, a);
        vg_sha256_set_engine(openssl);
        vg_sha256(data, len, b);
        vg_sha256_init(&h);
        for (size_t off = 0, step = 1; off < len; off += step, step = step * 3 + 1)
            vg_sha256_update(&h, data + off, step < len - off ? step : len - off);
        vg_sha256_final(&h, c);
        assert_memory_equal(a, b, VG_SHA256_LEN);
        assert_memory_equal(a, c, VG_SHA256_LEN);
    }
    /* A hash abandoned on an error path frees its context (the sanitizer build checks it). */
    vg_sha256_init(&h);
    vg_sha256_update(&h, data, 100);
    vg_sha256_discard(&h);
    vg_sha256_discard(&h); /* twice is harmless */
    vg_sha256_set_engine(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_sha256_streaming),
        cmocka_unit_test(test_hmac_vectors),
        cmocka_unit_test(test_constant_time_compare),
    };
    const struct CMUnitTest engines[] = {
        cmocka_unit_test(test_engines_agree),
    };
    int failed = cmocka_run_group_tests_name("libsodium", tests, on_sodium, NULL);
    failed += cmocka_run_group_tests_name("libcrypto", tests, on_openssl, on_sodium);
    failed += cmocka_run_group_tests_name("engines", engines, NULL, NULL);
    return failed;
}
