/* Unit tests for CURVE key files, secret files and agent ids (common/keys.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "keys.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The CURVE test vector from the libzmq documentation: the public key derives from the secret. */
#define DOC_PUBLIC "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
#define DOC_SECRET "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs"
/* printf '%s' "$DOC_PUBLIC" | sha256sum | cut -c1-16 */
#define DOC_AGENT_ID "ag-9dfd9fe13af9d0ce"

static char tmpdir[] = "/tmp/vigil-test-keys-XXXXXX";
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

static void write_key_file(const char *public_key, const char *secret_key)
{
    char text[256];
    snprintf(text, sizeof(text), "public-key: \"%s\"\nsecret-key: \"%s\"\n", public_key,
             secret_key);
    write_file_mode(text, 0600);
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
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void test_z85_valid(void **state)
{
    (void)state;
    struct vg_keypair kp;

    assert_int_equal(vg_keypair_generate(&kp), 0);
    assert_true(vg_key_z85_valid(kp.public_key));
    assert_true(vg_key_z85_valid(kp.secret_key));
    assert_true(vg_key_z85_valid(DOC_PUBLIC));
    assert_false(vg_key_z85_valid(NULL));
    assert_false(vg_key_z85_valid(""));
    assert_false(vg_key_z85_valid("Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hI"));   /* 39 */
    assert_false(vg_key_z85_valid("Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hIDx")); /* 41 */
    assert_false(vg_key_z85_valid("Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{h\"D")); /* '"' */
    assert_false(vg_key_z85_valid("Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{h D"));  /* ' ' */
    assert_false(vg_key_z85_valid("#####w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"));  /* > 2^32 */
}

static void test_save_creates_0600(void **state)
{
    (void)state;
    struct vg_keypair kp;
    struct stat st;
    char text[512] = {0};
    char expect[128];
    FILE *fp;

    assert_int_equal(vg_keypair_generate(&kp), 0);
    new_path("agent.key");
    assert_int_equal(vg_keypair_save(path, &kp, err, sizeof(err)), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);

    fp = fopen(path, "r");
    assert_non_null(fp);
    assert_true(fread(text, 1, sizeof(text) - 1, fp) > 0);
    fclose(fp);
    assert_int_equal(text[0], '#');
    snprintf(expect, sizeof(expect), "public-key: \"%s\"\n", kp.public_key);
    assert_non_null(strstr(text, expect));
    snprintf(expect, sizeof(expect), "secret-key: \"%s\"\n", kp.secret_key);
    assert_non_null(strstr(text, expect));
}

static void test_load_round_trip(void **state)
{
    (void)state;
    struct vg_keypair kp, loaded;

    assert_int_equal(vg_keypair_generate(&kp), 0);
    new_path("agent.key");
    assert_int_equal(vg_keypair_save(path, &kp, err, sizeof(err)), 0);
    memset(&loaded, 0, sizeof(loaded));
    assert_int_equal(vg_keypair_load(path, &loaded, err, sizeof(err)), 0);
    assert_string_equal(loaded.public_key, kp.public_key);
    assert_string_equal(loaded.secret_key, kp.secret_key);

    /* A hand-written file with the documented vector loads too, and 0400 is strict enough. */
    new_path("doc.key");
    write_key_file(DOC_PUBLIC, DOC_SECRET);
    assert_int_equal(chmod(path, 0400), 0);
    assert_int_equal(vg_keypair_load(path, &loaded, err, sizeof(err)), 0);
    assert_string_equal(loaded.public_key, DOC_PUBLIC);
}

static void test_load_refuses_group_or_other_access(void **state)
{
    (void)state;
    struct vg_keypair kp, loaded;
    char expect[600];

    assert_int_equal(vg_keypair_generate(&kp), 0);
    new_path("agent.key");
    assert_int_equal(vg_keypair_save(path, &kp, err, sizeof(err)), 0);

    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(vg_keypair_load(path, &loaded, err, sizeof(err)), -EPERM);
    snprintf(expect, sizeof(expect),
             "key file %s is readable by group or others (mode 0644); chmod 600 it", path);
    assert_string_equal(err, expect);

    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(vg_keypair_load(path, &loaded, err, sizeof(err)), -EPERM);
    assert_err_contains("(mode 0640)");

    assert_int_equal(chmod(path, 0620), 0);
    assert_int_equal(vg_keypair_load(path, &loaded, err, sizeof(err)), -EPERM);
    assert_err_contains("writable by group or others");

    assert_int_equal(vg_secret_file_check(tmpdir, err, sizeof(err)), -EPERM);
    assert_err_contains("not a regular file");
}

static void test_save_refuses_overwrite(void **state)
{
    (void)state;
    struct vg_keypair first, second, loaded;

    assert_int_equal(vg_keypair_generate(&first), 0);
    assert_int_equal(vg_keypair_generate(&second), 0);
    new_path("agent.key");
    assert_int_equal(vg_keypair_save(path, &first, err, sizeof(err)), 0);
    assert_int_equal(vg_keypair_save(path, &second, err, sizeof(err)), -EEXIST);
    assert_err_contains("already exists");
    assert_int_equal(vg_keypair_load(path, &loaded, err, sizeof(err)), 0);
    assert_string_equal(loaded.public_key, first.public_key);
}

static void test_corrupted_key_refused(void **state)
{
    (void)state;
    struct vg_keypair loaded;

    memset(&loaded, 0, sizeof(loaded));

    new_path("short.key");
    write_key_file("Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hI", DOC_SECRET);
    assert_int_equal(vg_keypair_load(path, &loaded, err, sizeof(err)), -EINVAL);
    assert_err_contains("public-key is not a valid Z85 CURVE key");

    new_path("badchar.key");
    write_key_file(DOC_PUBLIC, "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR% s");
    assert_int_equal(vg_keypair_load(path, &loaded, err, sizeof(err)), -EINVAL);
    assert_err_contains("secret-key is not a valid Z85 CURVE key");

    new_path("long.key");
    write_key_file(DOC_PUBLIC "x", DOC_SECRET);
    assert_int_equal(vg_keypair_load(path, &loaded, err, sizeof(err)), -ERANGE);
    assert_err_contains("\"public-key\": must be at most 40 characters long (got 41)");

    new_path("missing.key");
    write_file_mode("public-key: \"" DOC_PUBLIC "\"\n", 0600);
    assert_int_equal(vg_keypair_load(path, &loaded, err, sizeof(err)), -EINVAL);
    assert_err_contains("\"secret-key\": required key is missing");

    new_path("garbage.key");
    write_file_mode("public-key: [\n", 0600);
    assert_int_equal(vg_keypair_load(path, &loaded, err, sizeof(err)), -EINVAL);
    assert_err_contains(path);

    /* Nothing was written to the output on any failure. */
    assert_int_equal(loaded.public_key[0], '\0');
}

static void test_mismatched_pair_refused(void **state)
{
    (void)state;
    struct vg_keypair a, b, loaded;

    assert_int_equal(vg_keypair_generate(&a), 0);
    assert_int_equal(vg_keypair_generate(&b), 0);
    new_path("mixed.key");
    write_key_file(a.public_key, b.secret_key);
    assert_int_equal(vg_keypair_load(path, &loaded, err, sizeof(err)), -EINVAL);
    assert_err_contains("public-key does not match secret-key");

    /* One valid Z85 character changed in the public key. */
    char pub[VG_KEY_Z85_LEN + 1];
    memcpy(pub, DOC_PUBLIC, sizeof(pub));
    pub[5] = pub[5] == 'a' ? 'b' : 'a';
    new_path("flipped.key");
    write_key_file(pub, DOC_SECRET);
    assert_int_equal(vg_keypair_load(path, &loaded, err, sizeof(err)), -EINVAL);
    assert_err_contains("does not match");
}

static void test_load_or_create(void **state)
{
    (void)state;
    struct vg_keypair first, again;
    bool created = false;
    struct stat st;

    new_path("auto.key");
    assert_int_equal(vg_keypair_load_or_create(path, &first, &created, err, sizeof(err)), 0);
    assert_true(created);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);

    assert_int_equal(vg_keypair_load_or_create(path, &again, &created, err, sizeof(err)), 0);
    assert_false(created);
    assert_string_equal(again.public_key, first.public_key);
    assert_string_equal(again.secret_key, first.secret_key);

    /* An existing but unsafe file is refused, not replaced. */
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(vg_keypair_load_or_create(path, &again, &created, err, sizeof(err)), -EPERM);

    /* A missing directory is an error, reported with the path. */
    snprintf(path, sizeof(path), "%s/no-such-dir/agent.key", tmpdir);
    assert_int_equal(vg_keypair_load_or_create(path, &again, &created, err, sizeof(err)), -ENOENT);
    assert_err_contains(path);
}

static void test_agent_id(void **state)
{
    (void)state;
    struct vg_keypair a, b;
    char id[VG_AGENT_ID_LEN + 1], id2[VG_AGENT_ID_LEN + 1];

    vg_agent_id_from_key(DOC_PUBLIC, id);
    assert_string_equal(id, DOC_AGENT_ID);

    assert_int_equal(vg_keypair_generate(&a), 0);
    assert_int_equal(vg_keypair_generate(&b), 0);
    vg_agent_id_from_key(a.public_key, id);
    assert_int_equal(strlen(id), VG_AGENT_ID_LEN);
    assert_memory_equal(id, "ag-", 3);
    for (size_t i = 3; i < VG_AGENT_ID_LEN; i++)
        assert_true(isxdigit((unsigned char)id[i]) && !isupper((unsigned char)id[i]));
    vg_agent_id_from_key(a.public_key, id2);
    assert_string_equal(id, id2);
    vg_agent_id_from_key(b.public_key, id2);
    assert_string_not_equal(id, id2);
}

static void test_secret_file_read(void **state)
{
    (void)state;
    char *secret = NULL;
    size_t len = 0;

    new_path("enroll.secret");
    write_file_mode("s3cret\r\n\n", 0600);
    assert_int_equal(vg_secret_file_read(path, &secret, &len, err, sizeof(err)), 0);
    assert_string_equal(secret, "s3cret");
    assert_int_equal(len, 6);
    free(secret);
    secret = NULL;

    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(vg_secret_file_read(path, &secret, &len, err, sizeof(err)), -EPERM);
    assert_err_contains("secret file");
    assert_err_contains("(mode 0644); chmod 600 it");
    assert_null(secret);

    new_path("empty.secret");
    write_file_mode("\n", 0600);
    assert_int_equal(vg_secret_file_read(path, &secret, &len, err, sizeof(err)), -EINVAL);
    assert_null(secret);

    new_path("big.secret");
    char *big = malloc(64 * 1024 + 2);
    assert_non_null(big);
    memset(big, 'x', 64 * 1024 + 1);
    big[64 * 1024 + 1] = '\0';
    write_file_mode(big, 0600);
    assert_int_equal(vg_secret_file_read(path, &secret, &len, err, sizeof(err)), -EFBIG);
    big[64 * 1024] = '\0'; /* exactly 64 KiB is accepted */
    new_path("max.secret");
    write_file_mode(big, 0600);
    assert_int_equal(vg_secret_file_read(path, &secret, &len, err, sizeof(err)), 0);
    assert_int_equal(len, 64 * 1024);
    free(secret);
    free(big);

    snprintf(path, sizeof(path), "%s/absent.secret", tmpdir);
    assert_int_equal(vg_secret_file_check(path, err, sizeof(err)), -ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_z85_valid),
        cmocka_unit_test(test_save_creates_0600),
        cmocka_unit_test(test_load_round_trip),
        cmocka_unit_test(test_load_refuses_group_or_other_access),
        cmocka_unit_test(test_save_refuses_overwrite),
        cmocka_unit_test(test_corrupted_key_refused),
        cmocka_unit_test(test_mismatched_pair_refused),
        cmocka_unit_test(test_load_or_create),
        cmocka_unit_test(test_agent_id),
        cmocka_unit_test(test_secret_file_read),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
