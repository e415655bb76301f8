/*
 * Fuzz target: an export bundle as `vigilctl evidence verify-bundle FILE` reads it — a tar from
 * anyone (cli/bundle_check.c) and the MANIFEST inside it (common/bundle.c).
 *
 * The input is tried three ways:
 *   1. as MANIFEST text on its own;
 *   2. as the tar itself;
 *   3. as the body of a manifest (after a header naming a fixed key) that this target signs and
 *      packs into a tar with its signature, the key's PEM and a checkpoint signed by the same
 *      key, plus one file for every line of the input that looks like "HEX  PATH" (its content
 *      the path itself, its HEX replaced by that content's hash): random bytes never carry a
 *      valid signature or hash, this reaches the checks behind them (files, links, heads).
 *
 * Oracles beyond "no crash, no sanitizer report": a manifest that parses lists at least one
 * file, every path in it passes vg_bundle_path_ok and every link names listed files; a bundle
 * that passes has a manifest whose incident and key are the ones reported; a failure always
 * says why.
 */
#include <archive.h>
#include <archive_entry.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "bundle.h"
#include "bundle_check.h"
#include "checkpoint.h"
#include "digest.h"
#include "sign.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUT_MAX (256 * 1024)

static struct vg_signing_key key;

static void init_key(void)
{
    static bool done;
    if (done)
        return;
    unsigned char seed[crypto_sign_SEEDBYTES] = {15};
    if (sodium_init() < 0 || crypto_sign_seed_keypair(key.public_key, key.secret_key, seed) != 0)
        abort();
    vg_sign_public_format(key.public_key, key.public_b64);
    done = true;
}

static void check_manifest(const char *text, size_t len)
{
    struct vg_bundle_manifest *m = NULL;
    char err[512];
    if (vg_bundle_manifest_parse(text, len, &m, err, sizeof(err)) != 0)
        return;
    if (m->nfiles == 0)
        abort();
    for (size_t i = 0; i < m->nfiles; i++)
        if (!vg_bundle_path_ok(m->files[i].path, strlen(m->files[i].path)) ||
            vg_bundle_manifest_file(m, m->files[i].path) != &m->files[i])
            abort();
    for (size_t i = 0; i < m->nlinks; i++)
        if (!vg_bundle_manifest_file(m, m->links[i].file) ||
            (m->links[i].meta && !vg_bundle_manifest_file(m, m->links[i].meta)))
            abort();
    vg_bundle_manifest_destroy(&m);
}

static void check_tar(const void *tar, size_t len, bool signed_by_key)
{
    struct bundle_report *rep = calloc(1, sizeof(*rep));
    if (!rep)
        return;
    int r = bundle_check_memory(tar, len, rep);
    if (r != 0 && !rep->error[0])
        abort(); /* a failure that does not say why */
    if (r == 0 && signed_by_key && strcmp(rep->key_b64, key.public_b64) != 0)
        abort();
    free(rep);
}

struct mem {
    char *data;
    size_t len, cap;
};

static la_ssize_t mem_write(struct archive *a, void *userdata, const void *buf, size_t n)
{
    (void)a;
    struct mem *m = userdata;
    if (m->len + n > m->cap) {
        size_t cap = (m->cap ? m->cap : 65536) * 2;
        while (cap < m->len + n)
            cap *= 2;
        char *data = realloc(m->data, cap);
        if (!data)
            return -1;
        m->data = data;
        m->cap = cap;
    }
    memcpy(m->data + m->len, buf, n);
    m->len += n;
    return (la_ssize_t)n;
}

static void add(struct archive *a, const char *path, const void *data, size_t len)
{
    char name[VG_BUNDLE_PATH_MAX + 32];
    struct archive_entry *e = archive_entry_new();
    snprintf(name, sizeof(name), "incident-1/%s", path);
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, (la_int64_t)len);
    if (archive_write_header(a, e) == ARCHIVE_OK && len)
        archive_write_data(a, data, len);
    archive_entry_free(e);
}

/* A "HEX  PATH" line that names a file this target adds (content: the path itself). */
static bool file_line(const char *line, size_t len)
{
    static const char *const own[] = {VG_BUNDLE_MANIFEST, VG_BUNDLE_SIGNATURE, VG_BUNDLE_PUBLIC_PEM,
                                      VG_BUNDLE_CHECKPOINT};
    if (len <= 66 || line[64] != ' ' || line[65] != ' ' || !vg_bundle_path_ok(line + 66, len - 66))
        return false;
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
        if (len - 66 == strlen(own[i]) && memcmp(line + 66, own[i], len - 66) == 0)
            return false;
    return true;
}

/* Way 3: the input as a signed manifest's body, packed with what a bundle needs. Each file line's
 * hash is replaced by the hash of the file added for it, so that the link checks are reached. */
static void signed_bundle(const char *input, size_t size)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "# vigil-bundle-v1\n# incident: 1\n# exported_at_ms: 1\n# exported_by: fuzz\n"
                     "# signing_public_key: %s\n",
                     key.public_b64);
    char *manifest = malloc((size_t)n + size);
    if (!manifest)
        return;
    memcpy(manifest, head, (size_t)n);
    memcpy(manifest + n, input, size);
    size_t mlen = (size_t)n + size;
    for (size_t at = (size_t)n; at < mlen;) {
        char *line = manifest + at;
        char *nl = memchr(line, '\n', mlen - at);
        size_t len = nl ? (size_t)(nl - line) : mlen - at;
        at += len + 1;
        if (file_line(line, len)) {
            uint8_t digest[32];
            char hex[65];
            vg_sha256(line + 66, len - 66, digest);
            vg_hex(digest, sizeof(digest), hex);
            memcpy(line, hex, 64);
        }
    }
    unsigned char sig[VG_SIGNATURE_LEN];
    vg_sign_detached(&key, manifest, mlen, sig);
    char pem[VG_BUNDLE_PEM_LEN];
    vg_bundle_public_pem(key.public_key, pem);
    struct vg_checkpoint cp = {.issued_at_ms = 1};
    cp.chains[VG_CHAIN_EVIDENCE].head = 3;
    cp.chains[VG_CHAIN_TIMELINE].head = 3;
    cp.chains[VG_CHAIN_REPORTS].head = 3;
    char cp_text[VG_CHECKPOINT_MAX_LEN];
    if (vg_checkpoint_format(&cp, &key, cp_text, sizeof(cp_text)) != 0)
        abort();

    struct mem out = {0};
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_set_bytes_in_last_block(a, 1);
    if (archive_write_open(a, &out, NULL, mem_write, NULL) == ARCHIVE_OK) {
        add(a, VG_BUNDLE_MANIFEST, manifest, mlen);
        add(a, VG_BUNDLE_SIGNATURE, sig, sizeof(sig));
        add(a, VG_BUNDLE_PUBLIC_PEM, pem, strlen(pem));
        add(a, VG_BUNDLE_CHECKPOINT, cp_text, strlen(cp_text));
        size_t at = (size_t)n;
        for (int files = 0; at < mlen && files < 64;) {
            const char *line = manifest + at;
            const char *nl = memchr(line, '\n', mlen - at);
            size_t len = nl ? (size_t)(nl - line) : mlen - at;
            at += len + 1;
            if (file_line(line, len)) {
                char path[VG_BUNDLE_PATH_MAX + 1];
                memcpy(path, line + 66, len - 66);
                path[len - 66] = '\0';
                add(a, path, path, strlen(path));
                files++;
            }
        }
        archive_write_close(a);
        check_tar(out.data, out.len, true);
    }
    archive_write_free(a);
    free(out.data);
    free(manifest);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_key();
    if (size > INPUT_MAX)
        return 0;
    check_manifest((const char *)data, size);
    check_tar(data, size, false);
    signed_bundle((const char *)data, size);
    return 0;
}
