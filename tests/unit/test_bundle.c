/* Export bundles: the manifest (common/bundle.c) and the offline check of a whole tar
 * (cli/bundle_check.c) — a bundle built here the way `vigilctl evidence export` writes one passes;
 * each way of changing it fails naming the file to blame. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "bundle_check.h"
#include "checkpoint.h"
#include "digest.h"
#include "sign.h"

static struct vg_signing_key key;

static int setup(void **unused)
{
    (void)unused;
    return vg_signing_key_generate(&key);
}

/* ---- the manifest ---- */

static void test_paths(void **unused)
{
    (void)unused;
    static const char *const good[] = {"README.txt", "artifacts/12-host-web-1", "chains/a/1.row",
                                       "a..b", ".hidden"};
    static const char *const bad[] = {"",   "/etc/passwd", "../x", "a/../b", "a/./b", "a//b",
                                      "a/", "a b",         "a\\b", "..",     "é",     "a\nb"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(vg_bundle_path_ok(good[i], strlen(good[i])));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(vg_bundle_path_ok(bad[i], strlen(bad[i])));
    char longest[VG_BUNDLE_PATH_MAX + 2];
    memset(longest, 'a', sizeof(longest));
    assert_true(vg_bundle_path_ok(longest, VG_BUNDLE_PATH_MAX));
    assert_false(vg_bundle_path_ok(longest, VG_BUNDLE_PATH_MAX + 1));
}

static void sha_hex(const void *data, size_t len, char out[65])
{
    uint8_t d[32];
    vg_sha256(data, len, d);
    vg_hex(d, 32, out);
}

static const char *header(void)
{
    static char text[512];
    snprintf(text, sizeof(text),
             "# vigil-bundle-v1\n# incident: 7\n# exported_at_ms: 1765012345678\n"
             "# exported_by: operator:rita\n# signing_public_key: %s\n",
             key.public_b64);
    return text;
}

static int parse(const char *text, struct vg_bundle_manifest **m, char *err, size_t errlen)
{
    return vg_bundle_manifest_parse(text, strlen(text), m, err, errlen);
}

static void test_manifest_parses(void **unused)
{
    (void)unused;
    char text[2048], err[512], z[65], a[65];
    memset(z, '0', 64);
    z[64] = '\0';
    sha_hex("x", 1, a);
    snprintf(text, sizeof(text),
             "%s# link timeline 3 9 %s %s chains/timeline/3.row\n"
             "# link evidence 5 5 %s %s artifacts/5-host-a chains/evidence/5.meta\n"
             "%s  README.txt\n%s  chains/timeline/3.row\n%s  artifacts/5-host-a\n"
             "%s  chains/evidence/5.meta\n",
             header(), z, a, z, a, a, a, a, a);
    struct vg_bundle_manifest *m = NULL;
    assert_int_equal(parse(text, &m, err, sizeof(err)), 0);
    assert_int_equal(m->incident_id, 7);
    assert_int_equal(m->exported_at_ms, 1765012345678);
    assert_string_equal(m->exported_by, "operator:rita");
    assert_memory_equal(m->signing_public_key, key.public_key, 32);
    assert_int_equal(m->nfiles, 4);
    assert_int_equal(m->nlinks, 2);
    assert_int_equal(m->links[0].chain, VG_CHAIN_TIMELINE);
    assert_int_equal(m->links[0].place, 3);
    assert_int_equal(m->links[0].row_id, 9);
    assert_string_equal(m->links[1].meta, "chains/evidence/5.meta");
    assert_non_null(vg_bundle_manifest_file(m, "README.txt"));
    assert_null(vg_bundle_manifest_file(m, "MANIFEST"));
    unsigned char k[32];
    assert_int_equal(vg_bundle_manifest_key(text, strlen(text), k), 0);
    assert_memory_equal(k, key.public_key, 32);
    vg_bundle_manifest_destroy(&m);
    assert_null(m);
    vg_bundle_manifest_destroy(&m); /* accepts NULL */
}

/* tmpl with every '@' replaced by hash (64 hex digits). */
static void expand(const char *tmpl, const char *hash, char *out, size_t outlen)
{
    size_t n = 0;
    for (const char *p = tmpl; *p && n + 65 < outlen; p++) {
        if (*p == '@') {
            memcpy(out + n, hash, 64);
            n += 64;
        } else {
            out[n++] = *p;
        }
    }
    out[n] = '\0';
}

/* Each broken manifest is refused, naming the line and what is wrong. */
static void test_manifest_refusals(void **unused)
{
    (void)unused;
    char z[65], text[2048], err[512];
    memset(z, '0', 64);
    z[64] = '\0';
    struct {
        const char *body, *want;
    } cases[] = {
        {"", "MANIFEST line 6: missing"},
        {"@  ../etc/passwd\n", "MANIFEST line 6: not a path inside the bundle"},
        {"@  MANIFEST\n", "MANIFEST line 6: the manifest cannot list itself"},
        {"@ README.txt\n", "MANIFEST line 6: expected \"SHA256  PATH\""},
        {"@  a\n@  a\n", "MANIFEST lists a twice"},
        {"# link timeline 1 1 @ @ b\n@  a\n", "MANIFEST line 6: names a file the manifest"},
        {"# link audit 1 1 @ @ a\n@  a\n", "the chain must be evidence, timeline or reports"},
        {"# link timeline 0 1 @ @ a\n@  a\n", "positive decimal"},
        {"# link evidence 1 2 @ @ a a\n@  a\n", "an evidence link's place is its row id"},
        {"# link timeline 1 1 @ @ a\n# link timeline 1 2 @ @ a\n@  a\n",
         "links timeline place 1 twice"},
        {"@  a\n# link timeline 1 1 @ @ a\n", "MANIFEST line 7: link lines come before"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char body[1024];
        expand(cases[i].body, z, body, sizeof(body));
        snprintf(text, sizeof(text), "%s%s", header(), body);
        struct vg_bundle_manifest *m = NULL;
        err[0] = '\0';
        assert_int_equal(parse(text, &m, err, sizeof(err)), -EINVAL);
        assert_null(m);
        if (!strstr(err, cases[i].want))
            fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err, cases[i].want);
    }
    struct vg_bundle_manifest *m = NULL;
    assert_int_equal(parse("# vigil-bundle-v2\n", &m, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "line 1: not a Vigil bundle manifest"));
    assert_int_equal(vg_bundle_manifest_parse("x", 1, &m, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "must end in a newline"));
}

static void test_public_pem(void **unused)
{
    (void)unused;
    /* RFC 8410's example key, as `openssl pkey -pubout` prints it. */
    static const unsigned char rfc8410[32] = {0x19, 0xbf, 0x44, 0x09, 0x69, 0x84, 0xcd, 0xfe,
                                              0x85, 0x41, 0xba, 0xc1, 0x67, 0xdc, 0x3b, 0x96,
                                              0xc8, 0x50, 0x86, 0xaa, 0x30, 0xb6, 0xb6, 0xcb,
                                              0x0c, 0x5c, 0x38, 0xad, 0x70, 0x31, 0x66, 0xe1};
    char pem[VG_BUNDLE_PEM_LEN];
    vg_bundle_public_pem(rfc8410, pem);
    assert_string_equal(pem, "-----BEGIN PUBLIC KEY-----\n"
                             "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n"
                             "-----END PUBLIC KEY-----\n");
}

/* ---- a whole bundle ---- */

struct file {
    const char *path;
    char *data;
    size_t len;
};

struct mem {
    char *data;
    size_t len, cap;
};

static la_ssize_t mem_write(struct archive *a, void *userdata, const void *buf, size_t n)
{
    (void)a;
    struct mem *m = userdata;
    if (m->len + n > m->cap) {
        m->cap = (m->len + n) * 2;
        m->data = realloc(m->data, m->cap);
        assert_non_null(m->data);
    }
    memcpy(m->data + m->len, buf, n);
    m->len += n;
    return (la_ssize_t)n;
}

static void put(struct archive *a, const char *path, const void *data, size_t len)
{
    char name[256];
    struct archive_entry *e = archive_entry_new();
    snprintf(name, sizeof(name), "incident-7/%s", path);
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, (la_int64_t)len);
    assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
    if (len)
        assert_int_equal(archive_write_data(a, data, len), (la_ssize_t)len);
    archive_entry_free(e);
}

/* A bundle of one artifact (vault row 2, the checkpoint's head) and two timeline rows (places 4
 * and 5, 5 the head), signed with key. flip: a file whose first byte is changed after signing
 * (NULL: none). */
static struct mem bundle(const char *flip)
{
    static const char artifact[] = "hello artifact";
    static const char meta[] = "1:1,2:ag,1:1,1:1,1:a,4:host,1:0,1:1,1:2,2:14,1:0,";
    static const char row4[] = "timeline|1:8|1:7|1:1|4:note|1:x|1:y|2:{}";
    static const char row5[] = "timeline|1:9|1:7|1:2|4:note|1:x|1:z|2:{}";
    uint8_t prev_ev[32] = {1}, prev4[32] = {2}, chain[32], link4[32], link5[32], art_sha[32];
    struct vg_sha256 h;
    vg_sha256(artifact, strlen(artifact), art_sha);
    vg_sha256_init(&h);
    vg_sha256_update(&h, prev_ev, 32);
    vg_sha256_update(&h, art_sha, 32);
    vg_sha256_update(&h, meta, strlen(meta));
    vg_sha256_final(&h, chain);
    vg_sha256_init(&h);
    vg_sha256_update(&h, prev4, 32);
    vg_sha256_update(&h, row4, strlen(row4));
    vg_sha256_final(&h, link4);
    vg_sha256_init(&h);
    vg_sha256_update(&h, link4, 32);
    vg_sha256_update(&h, row5, strlen(row5));
    vg_sha256_final(&h, link5);

    struct vg_checkpoint cp = {.issued_at_ms = 1765012345678};
    cp.chains[VG_CHAIN_EVIDENCE].head = 2;
    memcpy(cp.chains[VG_CHAIN_EVIDENCE].hash, chain, 32);
    cp.chains[VG_CHAIN_TIMELINE].head = 5;
    memcpy(cp.chains[VG_CHAIN_TIMELINE].hash, link5, 32);
    static char cp_text[VG_CHECKPOINT_MAX_LEN], pem[VG_BUNDLE_PEM_LEN];
    assert_int_equal(vg_checkpoint_format(&cp, &key, cp_text, sizeof(cp_text)), 0);
    vg_bundle_public_pem(key.public_key, pem);

    struct file files[] = {
        {"README.txt", strdup("read me\n"), 8},
        {VG_BUNDLE_PUBLIC_PEM, strdup(pem), strlen(pem)},
        {VG_BUNDLE_CHECKPOINT, strdup(cp_text), strlen(cp_text)},
        {"artifacts/2-host-a", strdup(artifact), strlen(artifact)},
        {"chains/evidence/2.meta", strdup(meta), strlen(meta)},
        {"chains/timeline/4.row", strdup(row4), strlen(row4)},
        {"chains/timeline/5.row", strdup(row5), strlen(row5)},
    };
    size_t nfiles = sizeof(files) / sizeof(files[0]);
    char manifest[8192], hex[3][65], sha[65];
    vg_hex(prev_ev, 32, hex[0]);
    vg_hex(chain, 32, hex[1]);
    int n = snprintf(manifest, sizeof(manifest), "%s# link evidence 2 2 %s %s %s %s\n", header(),
                     hex[0], hex[1], "artifacts/2-host-a", "chains/evidence/2.meta");
    vg_hex(prev4, 32, hex[0]);
    vg_hex(link4, 32, hex[1]);
    vg_hex(link5, 32, hex[2]);
    n += snprintf(manifest + n, sizeof(manifest) - (size_t)n,
                  "# link timeline 4 8 %s %s chains/timeline/4.row\n"
                  "# link timeline 5 9 %s %s chains/timeline/5.row\n",
                  hex[0], hex[1], hex[1], hex[2]);
    for (size_t i = 0; i < nfiles; i++) {
        sha_hex(files[i].data, files[i].len, sha);
        n += snprintf(manifest + n, sizeof(manifest) - (size_t)n, "%s  %s\n", sha, files[i].path);
    }
    unsigned char sig[VG_SIGNATURE_LEN];
    vg_sign_detached(&key, manifest, (size_t)n, sig);

    struct mem out = {0};
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    assert_int_equal(archive_write_open(a, &out, NULL, mem_write, NULL), ARCHIVE_OK);
    if (flip && strcmp(flip, VG_BUNDLE_MANIFEST) == 0)
        manifest[n / 2] ^= 1;
    if (flip && strcmp(flip, VG_BUNDLE_SIGNATURE) == 0)
        sig[0] ^= 1;
    put(a, VG_BUNDLE_MANIFEST, manifest, (size_t)n);
    put(a, VG_BUNDLE_SIGNATURE, sig, sizeof(sig));
    for (size_t i = 0; i < nfiles; i++) {
        if (flip && strcmp(flip, files[i].path) == 0)
            files[i].data[0] ^= 1;
        put(a, files[i].path, files[i].data, files[i].len);
        free(files[i].data);
    }
    if (flip && strcmp(flip, "extra") == 0)
        put(a, "artifacts/extra", "x", 1);
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    return out;
}

static void test_bundle_intact(void **unused)
{
    (void)unused;
    struct mem b = bundle(NULL);
    struct bundle_report rep;
    int r = bundle_check_memory(b.data, b.len, &rep);
    if (r != 0)
        fail_msg("%s: %s", rep.file, rep.error);
    assert_string_equal(rep.dir, "incident-7");
    assert_int_equal(rep.incident_id, 7);
    assert_int_equal(rep.files, 7);
    assert_int_equal(rep.artifacts, 1);
    assert_int_equal(rep.links[VG_CHAIN_EVIDENCE], 1);
    assert_int_equal(rep.links[VG_CHAIN_TIMELINE], 2);
    assert_string_equal(rep.key_b64, key.public_b64);
    free(b.data);
}

/* One byte changed anywhere: the check fails naming what was changed. */
static void test_bundle_tampered(void **unused)
{
    (void)unused;
    struct {
        const char *flip, *file, *want;
    } cases[] = {
        {"artifacts/2-host-a", "artifacts/2-host-a", "differs from the manifest's"},
        {"chains/timeline/5.row", "chains/timeline/5.row", "differs from the manifest's"},
        {VG_BUNDLE_CHECKPOINT, VG_BUNDLE_CHECKPOINT, "differs from the manifest's"},
        {VG_BUNDLE_MANIFEST, VG_BUNDLE_MANIFEST, "signature (MANIFEST.sig) does not verify"},
        {VG_BUNDLE_SIGNATURE, VG_BUNDLE_MANIFEST, "signature (MANIFEST.sig) does not verify"},
        {"extra", "artifacts/extra", "not in the manifest"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mem b = bundle(cases[i].flip);
        struct bundle_report rep;
        assert_int_equal(bundle_check_memory(b.data, b.len, &rep), -EBADMSG);
        if (strcmp(rep.file, cases[i].file) != 0 || !strstr(rep.error, cases[i].want))
            fail_msg("flip %s: %s: %s", cases[i].flip, rep.file, rep.error);
        free(b.data);
    }
    struct bundle_report rep;
    assert_int_equal(bundle_check_memory("not a tar", 9, &rep), -EINVAL);
    assert_non_null(strstr(rep.error, "not a tar"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_manifest_parses),
        cmocka_unit_test(test_manifest_refusals),
        cmocka_unit_test(test_public_pem),
        cmocka_unit_test(test_bundle_intact),
        cmocka_unit_test(test_bundle_tampered),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
