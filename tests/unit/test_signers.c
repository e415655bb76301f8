/*
 * Unit tests for the node's signer file (agent/signers.c): a good file loads with its keys and
 * roles; a file root does not own, or that group or others may write, is refused and the
 * message says which; bad content is refused at its file:line:col. agent_config_load reads the
 * file named by signers_file (a missing one disables remediation, a bad one is an error).
 *
 * The files must be root's: the tests run as root, otherwise they are skipped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "agent_config.h"
#include "keys.h"
#include "sign.h"
#include "signers.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NOBODY_UID 65534

static char tmpdir[] = "/tmp/vigil-test-signers-XXXXXX";
static char path[512];
static char err[1024];
static struct vg_signing_key coordinator, alice, bob;

static void write_file(const char *text, mode_t mode)
{
    static int counter;
    int fd;

    snprintf(path, sizeof(path), "%s/%d-signers.yaml", tmpdir, counter++);
    fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    assert_int_equal(close(fd), 0);
}

/* The three signers of every test file, with room for one more line (extra). */
static void write_signers(const char *extra, mode_t mode)
{
    char text[2048];

    snprintf(text, sizeof(text),
             "signers:\n"
             "  - {name: coordinator, role: coordinator, public_key: \"%s\"}\n"
             "  - name: alice\n"
             "    role: admin\n"
             "    public_key: \"%s\"\n"
             "  - {name: bob, role: responder, public_key: \"%s\"}\n"
             "%s",
             coordinator.public_b64, alice.public_b64, bob.public_b64, extra);
    write_file(text, mode);
}

static void assert_err_contains(const char *needle)
{
    if (!strstr(err, needle))
        fail_msg("error \"%s\" does not contain \"%s\"", err, needle);
}

/* err starts with "path:line:col: ". */
static void assert_err_at(int line, int col)
{
    char prefix[600];

    snprintf(prefix, sizeof(prefix), "%s:%d:%d: ", path, line, col);
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        fail_msg("error \"%s\" does not start with \"%s\"", err, prefix);
}

static int load(struct signers **ret)
{
    err[0] = '\0';
    return signers_load(path, ret, err, sizeof(err));
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
    if (!mkdtemp(tmpdir) || chmod(tmpdir, 0755) != 0)
        return -1;
    if (vg_signing_key_generate(&coordinator) < 0 || vg_signing_key_generate(&alice) < 0 ||
        vg_signing_key_generate(&bob) < 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static int need_root(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip(); /* the file must be root's */
    return 0;
}

static void test_good_file(void **state)
{
    struct signers *s = NULL;
    const struct signer *found;
    unsigned char unknown[VG_SIGN_PUBLIC_LEN] = {0};
    (void)state;

    write_signers("", 0644);
    assert_int_equal(load(&s), 0);
    assert_int_equal(signers_count(s), 3);
    assert_string_equal(signers_get(s, 0)->name, "coordinator");
    assert_int_equal(signers_get(s, 0)->role, VG_SIGNER_COORDINATOR);
    assert_null(signers_get(s, 3));

    found = signers_find_key(s, alice.public_key);
    assert_non_null(found);
    assert_string_equal(found->name, "alice");
    assert_int_equal(found->role, VG_SIGNER_ADMIN);
    assert_memory_equal(found->public_key, alice.public_key, VG_SIGN_PUBLIC_LEN);
    assert_ptr_equal(signers_find_name(s, "bob"), signers_find_key(s, bob.public_key));
    assert_int_equal(signers_find_name(s, "bob")->role, VG_SIGNER_RESPONDER);
    assert_null(signers_find_key(s, unknown));
    assert_null(signers_find_name(s, "mallory"));
    signers_destroy(&s);
    assert_null(s);

    /* Readable by all is fine (public keys); an empty list is no signers. */
    write_file("signers: []\n", 0444);
    assert_int_equal(load(&s), 0);
    assert_int_equal(signers_count(s), 0);
    signers_destroy(&s);
}

static void test_group_writable_refused(void **state)
{
    struct signers *s = NULL;
    (void)state;

    write_signers("", 0644);
    assert_int_equal(chmod(path, 0664), 0); /* chmod g+w */
    assert_int_equal(load(&s), -EPERM);
    assert_null(s);
    assert_err_contains("signer file is writable by its group (mode 0664)");
    assert_err_contains("chmod go-w");

    assert_int_equal(chmod(path, 0646), 0);
    assert_int_equal(load(&s), -EPERM);
    assert_err_contains("writable by others");
}

static void test_not_root_owned_refused(void **state)
{
    struct signers *s = NULL;
    (void)state;

    write_signers("", 0644);
    assert_int_equal(chown(path, NOBODY_UID, (gid_t)-1), 0);
    assert_int_equal(load(&s), -EPERM);
    assert_null(s);
    assert_err_contains("signer file is owned by uid 65534, not by root");
}

static void test_not_a_regular_file_refused(void **state)
{
    struct signers *s = NULL;
    (void)state;

    snprintf(path, sizeof(path), "%s", tmpdir);
    assert_int_equal(load(&s), -EPERM);
    assert_err_contains("must be a regular file");

    snprintf(path, sizeof(path), "%s/no-such-file.yaml", tmpdir);
    assert_int_equal(load(&s), -ENOENT);
}

static void test_bad_key_length(void **state)
{
    struct signers *s = NULL;
    unsigned char short_key[31] = {1, 2, 3};
    char b64[64], line[160];
    (void)state;

    sodium_bin2base64(b64, sizeof(b64), short_key, sizeof(short_key),
                      sodium_base64_VARIANT_ORIGINAL);
    snprintf(line, sizeof(line), "  - {name: carol, role: responder, public_key: \"%s\"}\n", b64);
    write_signers(line, 0644);
    assert_int_equal(load(&s), -EINVAL);
    assert_null(s);
    assert_err_at(7, 48);
    assert_err_contains("signer \"carol\": public_key must be the standard base64 of a 32-byte "
                        "Ed25519 key");

    write_signers("  - {name: carol, role: responder, public_key: \"not base64!\"}\n", 0644);
    assert_int_equal(load(&s), -EINVAL);
    assert_err_at(7, 48);
}

static void test_duplicate_name(void **state)
{
    struct signers *s = NULL;
    char line[160];
    struct vg_signing_key other;
    (void)state;

    assert_int_equal(vg_signing_key_generate(&other), 0);
    snprintf(line, sizeof(line), "  - {name: alice, role: responder, public_key: \"%s\"}\n",
             other.public_b64);
    write_signers(line, 0644);
    assert_int_equal(load(&s), -EINVAL);
    assert_err_at(7, 12);
    assert_err_contains("signer \"alice\" is listed twice (first as signers[1])");

    /* One key, two names: which of them signed would be ambiguous. */
    snprintf(line, sizeof(line), "  - {name: carol, role: responder, public_key: \"%s\"}\n",
             bob.public_b64);
    write_signers(line, 0644);
    assert_int_equal(load(&s), -EINVAL);
    assert_err_contains("signer \"carol\": this key is already bob's");
}

static void test_unknown_role_and_key(void **state)
{
    struct signers *s = NULL;
    char line[160];
    (void)state;

    snprintf(line, sizeof(line), "  - {name: carol, role: root, public_key: \"%s\"}\n",
             alice.public_b64);
    write_signers(line, 0644);
    assert_int_equal(load(&s), -EINVAL);
    assert_err_at(7, 25);
    assert_err_contains(
        "signer \"carol\": the role must be coordinator, responder or admin (got \"root\")");

    /* A viewer approves nothing: it has no place here. */
    snprintf(line, sizeof(line), "  - {name: carol, role: viewer, public_key: \"%s\"}\n",
             alice.public_b64);
    write_signers(line, 0644);
    assert_int_equal(load(&s), -EINVAL);
    assert_err_contains("(got \"viewer\")");

    /* Exactly the keys given: anything else is refused by the loader. */
    snprintf(line, sizeof(line), "  - {name: carol, roles: admin, public_key: \"%s\"}\n",
             alice.public_b64);
    write_signers(line, 0644);
    assert_int_equal(load(&s), -EINVAL);
    assert_err_at(7, 19);
    assert_err_contains("unknown key \"signers[3].roles\" (did you mean \"signers[3].role\"?)");

    write_signers("  - {name: carol, role: admin}\n", 0644);
    assert_int_equal(load(&s), -EINVAL);
    assert_err_contains("\"signers[3].public_key\": required key is missing");

    write_signers("  - {name: \"carol smith\", role: admin, public_key: \"x\"}\n", 0644);
    assert_int_equal(load(&s), -EINVAL);
    assert_err_at(7, 12);
    assert_err_contains("the name \"carol smith\" must be 1 to 64 letters");
}

static void test_agent_config_reads_the_signer_file(void **state)
{
    struct agent_config cfg;
    struct vg_keypair kp;
    char signers_path[512], text[1024];
    (void)state;

    assert_int_equal(vg_keypair_generate(&kp), 0);
    write_signers("", 0644);
    snprintf(signers_path, sizeof(signers_path), "%s", path);

    snprintf(text, sizeof(text), "coordinator: {public_key: \"%s\"}\nsigners_file: %s\n",
             kp.public_key, signers_path);
    write_file(text, 0644);
    assert_int_equal(agent_config_load(path, &cfg, err, sizeof(err)), 0);
    assert_non_null(cfg.signers);
    assert_int_equal(signers_count(cfg.signers), 3);
    agent_config_free(&cfg);

    /* The same file made group-writable: -n refuses the configuration. */
    assert_int_equal(chmod(signers_path, 0664), 0);
    assert_int_equal(agent_config_load(path, &cfg, err, sizeof(err)), -EPERM);
    agent_config_free(&cfg);
    assert_err_contains("signer file is writable by its group");

    /* No file there, or signers_file empty: no signers, remediation disabled, not an error. */
    snprintf(text, sizeof(text),
             "coordinator: {public_key: \"%s\"}\nsigners_file: %s/absent.yaml\n", kp.public_key,
             tmpdir);
    write_file(text, 0644);
    assert_int_equal(agent_config_load(path, &cfg, err, sizeof(err)), 0);
    assert_null(cfg.signers);
    agent_config_free(&cfg);
    snprintf(text, sizeof(text), "coordinator: {public_key: \"%s\"}\nsigners_file: \"\"\n",
             kp.public_key);
    write_file(text, 0644);
    assert_int_equal(agent_config_load(path, &cfg, err, sizeof(err)), 0);
    assert_null(cfg.signers);
    agent_config_free(&cfg);

    snprintf(text, sizeof(text), "coordinator: {public_key: \"%s\"}\nsigners_file: signers.yaml\n",
             kp.public_key);
    write_file(text, 0644);
    assert_int_equal(agent_config_load(path, &cfg, err, sizeof(err)), -EINVAL);
    agent_config_free(&cfg);
    assert_err_contains("\"signers_file\": must be an absolute path");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_good_file, need_root),
        cmocka_unit_test_setup(test_group_writable_refused, need_root),
        cmocka_unit_test_setup(test_not_root_owned_refused, need_root),
        cmocka_unit_test_setup(test_not_a_regular_file_refused, need_root),
        cmocka_unit_test_setup(test_bad_key_length, need_root),
        cmocka_unit_test_setup(test_duplicate_name, need_root),
        cmocka_unit_test_setup(test_unknown_role_and_key, need_root),
        cmocka_unit_test_setup(test_agent_config_reads_the_signer_file, need_root),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
