/* Unit tests for Ed25519 signing keys and signatures (common/sign.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sign.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* RFC 8032, section 7.1, TEST 1: secret seed, public key, and the signature of the empty
 * message. */
static const unsigned char rfc_seed[32] = {
    0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
    0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60};
static const unsigned char rfc_public[32] = {
    0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a,
    0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a};
static const unsigned char rfc_sig_empty[64] = {
    0xe5, 0x56, 0x43, 0x00, 0xc3, 0x60, 0xac, 0x72, 0x90, 0x86, 0xe2, 0xcc, 0x80, 0x6e, 0x82, 0x8a,
    0x84, 0x87, 0x7f, 0x1e, 0xb8, 0xe5, 0xd9, 0x74, 0xd8, 0x73, 0xe0, 0x65, 0x22, 0x49, 0x01, 0x55,
    0x5f, 0xb8, 0x82, 0x15, 0x90, 0xa3, 0x3b, 0xac, 0xc6, 0x1e, 0x39, 0x70, 0x1c, 0xf9, 0xb4, 0x6b,
    0xd2, 0x5b, 0xf5, 0xf0, 0x59, 0x5b, 0xbe, 0x24, 0x65, 0x51, 0x41, 0x43, 0x8e, 0x7a, 0x10, 0x0b};
/* printf '%s' d75a9801... | xxd -r -p | base64 */
#define RFC_PUBLIC_B64 "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="

static char tmpdir[] = "/tmp/vigil-test-sign-XXXXXX";
static char path[512];
static char err[512];

static void new_path(const char *name)
{
    static int counter;
    snprintf(path, sizeof(path), "%s/%d-%s", tmpdir, counter++, name);
}

static void write_file_mode(const char *text, mode_t mode)
{
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    assert_int_equal(close(fd), 0);
}

static void rfc_key(struct vg_signing_key *k)
{
    memset(k, 0, sizeof(*k));
    crypto_sign_seed_keypair(k->public_key, k->secret_key, rfc_seed);
    vg_sign_public_format(k->public_key, k->public_b64);
}

static void b64(const unsigned char *bin, size_t len, char *out, size_t outlen)
{
    sodium_bin2base64(out, outlen, bin, len, sodium_base64_VARIANT_ORIGINAL);
}

static void write_signing_file(const char *public_b64, const char *secret_b64, mode_t mode)
{
    char text[512];
    snprintf(text, sizeof(text), "signing-public-key: \"%s\"\nsigning-secret-key: \"%s\"\n",
             public_b64, secret_b64);
    write_file_mode(text, mode);
}

static void assert_err_contains(const char *needle)
{
    if (!strstr(err, needle))
        fail_msg("error \"%s\" does not contain \"%s\"", err, needle);
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int group_setup(void **state)
{
    (void)state;
    return sodium_init() >= 0 && mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void test_rfc8032_vector(void **state)
{
    (void)state;
    struct vg_signing_key k;
    unsigned char sig[VG_SIGNATURE_LEN];

    rfc_key(&k);
    assert_memory_equal(k.public_key, rfc_public, 32);
    assert_string_equal(k.public_b64, RFC_PUBLIC_B64);
    vg_sign_detached(&k, "", 0, sig);
    assert_memory_equal(sig, rfc_sig_empty, 64);
    assert_true(vg_sign_verify(rfc_public, "", 0, rfc_sig_empty));
}

static void test_sign_verify_and_tamper(void **state)
{
    (void)state;
    struct vg_signing_key a, b;
    unsigned char sig[VG_SIGNATURE_LEN];
    const char msg[] = "restart nginx on worker-3";

    assert_int_equal(vg_signing_key_generate(&a), 0);
    assert_int_equal(vg_signing_key_generate(&b), 0);
    assert_memory_not_equal(a.public_key, b.public_key, 32);
    assert_int_equal(strlen(a.public_b64), VG_SIGN_PUBLIC_B64_LEN);

    vg_sign_detached(&a, msg, sizeof(msg) - 1, sig);
    assert_true(vg_sign_verify(a.public_key, msg, sizeof(msg) - 1, sig));
    /* Another key, another message, a flipped bit: all refused. */
    assert_false(vg_sign_verify(b.public_key, msg, sizeof(msg) - 1, sig));
    assert_false(vg_sign_verify(a.public_key, msg, sizeof(msg) - 2, sig));
    sig[10] ^= 0x01;
    assert_false(vg_sign_verify(a.public_key, msg, sizeof(msg) - 1, sig));
    vg_signing_key_wipe(&a);
    vg_signing_key_wipe(&b);
}

static void test_public_parse(void **state)
{
    (void)state;
    unsigned char key[32], before[32];

    assert_int_equal(vg_sign_public_parse(RFC_PUBLIC_B64, key), 0);
    assert_memory_equal(key, rfc_public, 32);

    memset(before, 0xaa, sizeof(before));
    memcpy(key, before, sizeof(key));
    /* Left untouched by every refusal. */
    assert_int_equal(vg_sign_public_parse(NULL, key), -EINVAL);
    assert_int_equal(vg_sign_public_parse("", key), -EINVAL);
    /* Without padding, with a character too many, with whitespace, URL-safe alphabet. */
    assert_int_equal(vg_sign_public_parse("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo", key),
                     -EINVAL);
    assert_int_equal(vg_sign_public_parse(RFC_PUBLIC_B64 "=", key), -EINVAL);
    assert_int_equal(vg_sign_public_parse(" 11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", key),
                     -EINVAL);
    assert_int_equal(vg_sign_public_parse("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=", key),
                     -EINVAL);
    /* Non-canonical: the last character's unused bits set ('o' = 40 -> 'p' = 41). */
    assert_int_equal(vg_sign_public_parse("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURp=", key),
                     -EINVAL);
    /* Base64 of 33 bytes (44 characters, no padding) and of 31 bytes. */
    assert_int_equal(vg_sign_public_parse("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURoA", key),
                     -EINVAL);
    assert_int_equal(vg_sign_public_parse("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHUQ==", key),
                     -EINVAL);
    assert_memory_equal(key, before, sizeof(key));
}

static void test_save_load_roundtrip(void **state)
{
    (void)state;
    struct vg_signing_key k, loaded;
    struct stat st;
    unsigned char sig[VG_SIGNATURE_LEN];

    assert_int_equal(vg_signing_key_generate(&k), 0);
    new_path("sign.yaml");
    assert_int_equal(vg_signing_key_save(path, &k, err, sizeof(err)), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(vg_signing_key_load(path, &loaded, err, sizeof(err)), 0);
    assert_memory_equal(&loaded, &k, sizeof(k));
    vg_sign_detached(&loaded, "x", 1, sig);
    assert_true(vg_sign_verify(k.public_key, "x", 1, sig));

    /* Never overwritten. */
    struct vg_signing_key other;
    assert_int_equal(vg_signing_key_generate(&other), 0);
    assert_int_equal(vg_signing_key_save(path, &other, err, sizeof(err)), -EEXIST);
    assert_err_contains("already exists");
    assert_int_equal(vg_signing_key_load(path, &loaded, err, sizeof(err)), 0);
    assert_memory_equal(loaded.public_key, k.public_key, 32);
}

static void test_load_refuses_open_modes(void **state)
{
    (void)state;
    struct vg_signing_key k, ret;
    char pub[64], sec[128];
    const mode_t modes[] = {0640, 0604, 0620, 0602, 0660, 0644};

    rfc_key(&k);
    b64(k.public_key, 32, pub, sizeof(pub));
    b64(k.secret_key, 64, sec, sizeof(sec));
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        new_path("open.yaml");
        write_signing_file(pub, sec, modes[i]);
        memset(&ret, 0x5a, sizeof(ret));
        assert_int_equal(vg_signing_key_load(path, &ret, err, sizeof(err)), -EPERM);
        assert_err_contains("signing key file");
        assert_err_contains("chmod 600");
        bool created = true;
        assert_int_equal(vg_signing_key_load_or_create(path, &ret, &created, err, sizeof(err)),
                         -EPERM);
    }
    new_path("ok.yaml");
    write_signing_file(pub, sec, 0400);
    assert_int_equal(vg_signing_key_load(path, &ret, err, sizeof(err)), 0);
    assert_memory_equal(ret.public_key, rfc_public, 32);
}

static void test_load_refuses_mismatch(void **state)
{
    (void)state;
    struct vg_signing_key k, other, ret, before;
    char pub[64], sec[128], other_pub[64];

    rfc_key(&k);
    assert_int_equal(vg_signing_key_generate(&other), 0);
    b64(k.public_key, 32, pub, sizeof(pub));
    b64(k.secret_key, 64, sec, sizeof(sec));
    b64(other.public_key, 32, other_pub, sizeof(other_pub));

    memset(&before, 0x5a, sizeof(before));
    /* Someone else's public key beside this secret. */
    new_path("mismatch.yaml");
    write_signing_file(other_pub, sec, 0600);
    ret = before;
    assert_int_equal(vg_signing_key_load(path, &ret, err, sizeof(err)), -EINVAL);
    assert_err_contains("signing-public-key does not match signing-secret-key");
    assert_memory_equal(&ret, &before, sizeof(ret));

    /* The secret key's own copy of the public key replaced (seed || other public key). */
    unsigned char forged[64];
    memcpy(forged, k.secret_key, 32);
    memcpy(forged + 32, other.public_key, 32);
    char forged_b64[128];
    b64(forged, 64, forged_b64, sizeof(forged_b64));
    new_path("forged.yaml");
    write_signing_file(other_pub, forged_b64, 0600);
    assert_int_equal(vg_signing_key_load(path, &ret, err, sizeof(err)), -EINVAL);
    assert_err_contains("does not match");

    /* Not base64 of the right size. */
    new_path("short.yaml");
    write_signing_file("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHUQ==", sec, 0600);
    assert_int_equal(vg_signing_key_load(path, &ret, err, sizeof(err)), -EINVAL);
    assert_err_contains("signing-public-key is not the base64 of a 32-byte");
    new_path("badsecret.yaml");
    write_signing_file(pub, pub, 0600);
    assert_int_equal(vg_signing_key_load(path, &ret, err, sizeof(err)), -EINVAL);
    assert_err_contains("signing-secret-key is not the base64 of a 64-byte");

    /* The config loader's errors: a missing key, an unknown key. */
    new_path("missing.yaml");
    write_file_mode("signing-public-key: \"" RFC_PUBLIC_B64 "\"\n", 0600);
    assert_int_equal(vg_signing_key_load(path, &ret, err, sizeof(err)) < 0, 1);
    assert_err_contains("signing-secret-key");
    new_path("unknown.yaml");
    write_file_mode("signing-public-key: \"" RFC_PUBLIC_B64 "\"\npublic-key: \"x\"\n", 0600);
    assert_int_equal(vg_signing_key_load(path, &ret, err, sizeof(err)) < 0, 1);
    assert_err_contains("public-key");
    assert_memory_equal(&ret, &before, sizeof(ret));
}

static void test_save_refuses_inconsistent(void **state)
{
    (void)state;
    struct vg_signing_key k;

    rfc_key(&k);
    k.public_key[0] ^= 1;
    new_path("inconsistent.yaml");
    assert_int_equal(vg_signing_key_save(path, &k, err, sizeof(err)), -EINVAL);
    assert_int_equal(access(path, F_OK), -1);
}

static void test_load_or_create(void **state)
{
    (void)state;
    struct vg_signing_key first, second;
    bool created = false;

    new_path("auto.yaml");
    assert_int_equal(vg_signing_key_load_or_create(path, &first, &created, err, sizeof(err)), 0);
    assert_true(created);
    assert_int_equal(vg_signing_key_load_or_create(path, &second, &created, err, sizeof(err)), 0);
    assert_false(created);
    assert_memory_equal(&first, &second, sizeof(first));

    /* A directory that does not exist: the creation error names the file. */
    snprintf(path, sizeof(path), "%s/no/such/dir/key.yaml", tmpdir);
    assert_int_equal(vg_signing_key_load_or_create(path, &first, &created, err, sizeof(err)),
                     -ENOENT);
    assert_err_contains("signing key file");
}

static void test_wipe(void **state)
{
    (void)state;
    struct vg_signing_key k;
    unsigned char zero[sizeof(k)];

    assert_int_equal(vg_signing_key_generate(&k), 0);
    vg_signing_key_wipe(&k);
    memset(zero, 0, sizeof(zero));
    assert_memory_equal(&k, zero, sizeof(k));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc8032_vector),
        cmocka_unit_test(test_sign_verify_and_tamper),
        cmocka_unit_test(test_public_parse),
        cmocka_unit_test(test_save_load_roundtrip),
        cmocka_unit_test(test_load_refuses_open_modes),
        cmocka_unit_test(test_load_refuses_mismatch),
        cmocka_unit_test(test_save_refuses_inconsistent),
        cmocka_unit_test(test_load_or_create),
        cmocka_unit_test(test_wipe),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
