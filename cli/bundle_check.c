/* An export bundle checked offline (bundle_check.h). */
#include "bundle_check.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"

#define READ_BLOCK (64 * 1024)
/* What archive_errno says for input that is not an archive (libarchive's internal
 * ARCHIVE_ERRNO_FILE_FORMAT: EILSEQ where the platform has no EFTYPE, as Linux). */
#define ARCHIVE_FORMAT_ERRNO EILSEQ
#define SIGNATURE_KEEP_MAX 1024 /* MANIFEST.sig is 64 bytes; more is read to say it is wrong */

struct entry {
    char *path; /* inside the top directory */
    uint8_t sha256[VG_SHA256_LEN];
    uint64_t size;
    char *data; /* kept files only (manifest, signature, checkpoint, pem, chains/) */
    size_t len;
    bool kept;
};

struct check {
    struct entry *entries;
    size_t n, cap;
    size_t kept_total;
    struct bundle_report *rep;
    uint8_t *block;
};

__attribute__((format(printf, 4, 5))) static int fail(struct bundle_report *rep, int code,
                                                      const char *file, const char *fmt, ...)
{
    va_list ap;
    snprintf(rep->file, sizeof(rep->file), "%s", file ? file : "");
    va_start(ap, fmt);
    vsnprintf(rep->error, sizeof(rep->error), fmt, ap);
    va_end(ap);
    return code;
}

static void check_free(struct check *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->entries[i].path);
        free(c->entries[i].data);
    }
    free(c->entries);
    free(c->block);
    c->entries = NULL;
    c->block = NULL;
    c->n = c->cap = 0;
}

static int compare_entries(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->path, ((const struct entry *)b)->path);
}

static const struct entry *find(const struct check *c, const char *path)
{
    struct entry key = {.path = (char *)path};
    if (!c->entries || !path)
        return NULL;
    return bsearch(&key, c->entries, c->n, sizeof(*c->entries), compare_entries);
}

/* How much of a file is kept for the checks after the pass (0 = only its hash). */
static size_t keep_limit(const char *path)
{
    if (strcmp(path, VG_BUNDLE_MANIFEST) == 0)
        return VG_BUNDLE_MANIFEST_MAX;
    if (strcmp(path, VG_BUNDLE_SIGNATURE) == 0)
        return SIGNATURE_KEEP_MAX;
    if (strcmp(path, VG_BUNDLE_CHECKPOINT) == 0 || strcmp(path, VG_BUNDLE_PUBLIC_PEM) == 0 ||
        strncmp(path, "chains/", 7) == 0)
        return BUNDLE_KEPT_FILE_MAX;
    return 0;
}

/* The entry's name split into the top directory (checked against the first one seen) and the
 * path inside it (*ret_rest). Directories: *ret_rest may be "". */
static int split_name(struct check *c, const char *name, bool dir, const char **ret_rest)
{
    struct bundle_report *rep = c->rep;
    size_t len = strlen(name);
    char copy[VG_BUNDLE_PATH_MAX * 2 + 2];
    if (len == 0 || len >= sizeof(copy))
        return fail(rep, -EINVAL, "", "an entry's name is empty or over %d bytes",
                    VG_BUNDLE_PATH_MAX * 2);
    memcpy(copy, name, len + 1);
    if (dir && copy[len - 1] == '/')
        copy[--len] = '\0';
    const char *slash = strchr(copy, '/');
    size_t top_len = slash ? (size_t)(slash - copy) : len;
    if (!vg_bundle_path_ok(copy, top_len))
        return fail(rep, -EINVAL, "", "entry \"%.200s\": not a name inside a bundle's directory",
                    name);
    if (!rep->dir[0]) {
        memcpy(rep->dir, copy, top_len);
        rep->dir[top_len] = '\0';
    } else if (strlen(rep->dir) != top_len || memcmp(rep->dir, copy, top_len) != 0) {
        return fail(rep, -EINVAL, "",
                    "entry \"%.200s\" is outside the bundle's directory %s/ (a bundle has one)",
                    name, rep->dir);
    }
    *ret_rest = slash ? name + (slash - copy) + 1 : name + len;
    if (!slash && !dir)
        return fail(rep, -EINVAL, "", "entry \"%.200s\" is outside the bundle's directory", name);
    if (slash && !vg_bundle_path_ok(slash + 1, strlen(slash + 1)))
        return fail(rep, -EINVAL, "",
                    "entry \"%.200s\": not a path inside the bundle (a-z, A-Z, 0-9, '.', '_', "
                    "'-' between '/'; no '..', at most %d bytes)",
                    name, VG_BUNDLE_PATH_MAX);
    return 0;
}

/* One regular file: hashed, kept when the checks need its bytes. */
static int read_file(struct check *c, struct archive *a, struct archive_entry *e, const char *path)
{
    struct bundle_report *rep = c->rep;
    if (!archive_entry_size_is_set(e) || archive_entry_size(e) < 0 ||
        archive_entry_size(e) > BUNDLE_ENTRY_MAX)
        return fail(rep, -EINVAL, path, "its size is missing or over %" PRId64 " bytes",
                    (int64_t)BUNDLE_ENTRY_MAX);
    uint64_t size = (uint64_t)archive_entry_size(e);
    size_t limit = keep_limit(path);
    if (limit && size > limit)
        return fail(rep, -EINVAL, path, "%" PRIu64 " bytes: more than such a file can be (%zu)",
                    size, limit);
    if (limit && c->kept_total + size > BUNDLE_KEPT_TOTAL_MAX)
        return fail(rep, -EINVAL, path, "the chain rows and metadata come to more than %d MiB",
                    BUNDLE_KEPT_TOTAL_MAX / (1024 * 1024));
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 64;
        struct entry *entries = realloc(c->entries, cap * sizeof(*entries));
        if (!entries)
            return fail(rep, -ENOMEM, path, "out of memory");
        c->entries = entries;
        c->cap = cap;
    }
    struct entry *en = &c->entries[c->n];
    memset(en, 0, sizeof(*en));
    en->path = strdup(path);
    en->size = size;
    en->kept = limit > 0;
    en->data = limit ? malloc(size ? size : 1) : NULL;
    if (!en->path || (limit && !en->data)) {
        free(en->path);
        free(en->data);
        return fail(rep, -ENOMEM, path, "out of memory");
    }
    c->n++;
    c->kept_total += limit ? size : 0;

    struct vg_sha256 h;
    uint64_t got = 0;
    vg_sha256_init(&h);
    for (;;) {
        la_ssize_t n = archive_read_data(a, c->block, READ_BLOCK);
        if (n < 0)
            return fail(rep, -EINVAL, path, "unreadable: %s", archive_error_string(a));
        if (n == 0)
            break;
        if ((uint64_t)n > size - got)
            return fail(rep, -EINVAL, path, "longer than its tar header says");
        vg_sha256_update(&h, c->block, (size_t)n);
        if (en->data)
            memcpy(en->data + got, c->block, (size_t)n);
        got += (uint64_t)n;
    }
    if (got != size)
        return fail(rep, -EINVAL, path, "cut short: %" PRIu64 " of %" PRIu64 " bytes", got, size);
    vg_sha256_final(&h, en->sha256);
    en->len = (size_t)(en->data ? size : 0);
    return 0;
}

/* The pass over the tar. */
static int read_tar(struct check *c, struct archive *a)
{
    struct bundle_report *rep = c->rep;
    struct archive_entry *e;
    size_t entries = 0;
    int ar;
    while ((ar = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        if (++entries > VG_BUNDLE_FILES_MAX + 16)
            return fail(rep, -EINVAL, "", "more than %d entries: not a bundle Vigil writes",
                        VG_BUNDLE_FILES_MAX + 16);
        const char *name = archive_entry_pathname(e);
        if (!name)
            return fail(rep, -EINVAL, "", "an entry without a name");
        __LA_MODE_T type = archive_entry_filetype(e);
        const char *rest = "";
        if (type == AE_IFDIR) {
            int r = split_name(c, name, true, &rest);
            if (r < 0)
                return r;
            continue;
        }
        if (type != AE_IFREG || archive_entry_hardlink(e) || archive_entry_symlink(e))
            return fail(rep, -EINVAL, "",
                        "entry \"%.200s\" is not a regular file (a bundle holds no links, devices "
                        "or pipes)",
                        name);
        int r = split_name(c, name, false, &rest);
        if (r == 0)
            r = read_file(c, a, e, rest);
        if (r < 0)
            return r;
    }
    if (ar != ARCHIVE_EOF)
        return fail(rep, -EINVAL, "", "not a tar, or a damaged one: %s",
                    archive_error_string(a) ? archive_error_string(a) : "unreadable header");
    if (c->n == 0)
        return fail(rep, -EINVAL, "", "no files: not a Vigil export bundle");
    qsort(c->entries, c->n, sizeof(*c->entries), compare_entries);
    for (size_t i = 1; i < c->n; i++)
        if (strcmp(c->entries[i - 1].path, c->entries[i].path) == 0)
            return fail(rep, -EINVAL, c->entries[i].path,
                        "appears twice in the tar (which copy is meant?)");
    return 0;
}

static bool same_sha(const uint8_t a[VG_SHA256_LEN], const uint8_t b[VG_SHA256_LEN])
{
    return memcmp(a, b, VG_SHA256_LEN) == 0;
}

/* Steps 3 and 4 of bundle_check.h. */
static int check_files(const struct check *c, const struct vg_bundle_manifest *m)
{
    struct bundle_report *rep = c->rep;
    char hex[VG_SHA256_HEX_LEN + 1];
    for (size_t i = 0; i < m->nfiles; i++) {
        const struct entry *en = find(c, m->files[i].path);
        if (!en)
            return fail(rep, -EBADMSG, m->files[i].path,
                        "missing: the manifest lists it, the bundle does not hold it");
        if (!same_sha(en->sha256, m->files[i].sha256)) {
            vg_hex(en->sha256, VG_SHA256_LEN, hex);
            return fail(rep, -EBADMSG, en->path,
                        "SHA-256 %s differs from the manifest's: the file was changed", hex);
        }
        if (strncmp(en->path, "artifacts/", 10) == 0) {
            rep->artifacts++;
            rep->artifact_bytes += en->size;
        }
    }
    for (size_t i = 0; i < c->n; i++) {
        const char *p = c->entries[i].path;
        if (strcmp(p, VG_BUNDLE_MANIFEST) != 0 && strcmp(p, VG_BUNDLE_SIGNATURE) != 0 &&
            !vg_bundle_manifest_file(m, p))
            return fail(rep, -EBADMSG, p,
                        "not in the manifest: added to the bundle after it was "
                        "signed");
    }
    rep->files = m->nfiles;

    const struct entry *pem = find(c, VG_BUNDLE_PUBLIC_PEM);
    char want[VG_BUNDLE_PEM_LEN];
    vg_bundle_public_pem(m->signing_public_key, want);
    if (!pem || pem->len != strlen(want) || memcmp(pem->data, want, pem->len) != 0)
        return fail(rep, -EBADMSG, VG_BUNDLE_PUBLIC_PEM,
                    "missing, or does not hold the key the manifest names (%s)",
                    m->signing_public_b64);
    const struct entry *cp = find(c, VG_BUNDLE_CHECKPOINT);
    char err[256];
    if (!cp)
        return fail(rep, -EBADMSG, VG_BUNDLE_CHECKPOINT,
                    "missing: a bundle carries the checkpoint "
                    "issued for it");
    int r = vg_checkpoint_parse(cp->data, cp->len, &rep->checkpoint, err, sizeof(err));
    if (r < 0)
        return fail(rep, -EBADMSG, VG_BUNDLE_CHECKPOINT, "%s", err);
    if (memcmp(rep->checkpoint.signing_public_key, m->signing_public_key, VG_SIGN_PUBLIC_LEN) != 0)
        return fail(rep, -EBADMSG, VG_BUNDLE_CHECKPOINT,
                    "signed by another key than the manifest (%s)", m->signing_public_b64);
    return 0;
}

/* A link's row file (or meta), kept by the pass. */
static const struct entry *row_file(const struct check *c, const char *path)
{
    const struct entry *en = find(c, path);
    return en && en->kept ? en : NULL;
}

/* Step 5 for one link: it recomputes from the files. */
static int recompute(const struct check *c, const struct vg_bundle_link *l)
{
    struct bundle_report *rep = c->rep;
    const char *name = vg_chain_name(l->chain);
    struct vg_sha256 h;
    uint8_t got[VG_SHA256_LEN];
    const struct entry *file = find(c, l->file);
    if (!file)
        return fail(rep, -EBADMSG, l->file, "missing");
    vg_sha256_init(&h);
    vg_sha256_update(&h, l->prev, sizeof(l->prev));
    if (l->chain == VG_CHAIN_EVIDENCE) {
        const struct entry *meta = row_file(c, l->meta);
        if (!meta)
            return fail(rep, -EBADMSG, l->meta,
                        "an evidence link's meta file must be under "
                        "chains/");
        vg_sha256_update(&h, file->sha256, sizeof(file->sha256));
        vg_sha256_update(&h, meta->data, meta->len);
    } else {
        if (!file->kept)
            return fail(rep, -EBADMSG, l->file, "a %s link's row file must be under chains/", name);
        vg_sha256_update(&h, file->data, file->len);
    }
    vg_sha256_final(&h, got);
    if (!same_sha(got, l->link))
        return fail(rep, -EBADMSG, l->file,
                    "its %s chain link (place %" PRIu64 ") does not recompute from the bundle's "
                    "bytes: the file or the manifest was changed",
                    name, l->place);
    return 0;
}

static int check_links(const struct check *c, const struct vg_bundle_manifest *m)
{
    struct bundle_report *rep = c->rep;
    struct vg_bundle_link *sorted = malloc((m->nlinks ? m->nlinks : 1) * sizeof(*sorted));
    if (!sorted)
        return fail(rep, -ENOMEM, "", "out of memory");
    memcpy(sorted, m->links, m->nlinks * sizeof(*sorted));
    qsort(sorted, m->nlinks, sizeof(*sorted), vg_bundle_link_compare);
    int r = 0;
    for (size_t i = 0; r == 0 && i < m->nlinks; i++) {
        const struct vg_bundle_link *l = &sorted[i];
        const struct vg_chain_head *head = &rep->checkpoint.chains[l->chain];
        const char *name = vg_chain_name(l->chain);
        r = recompute(c, l);
        if (r < 0)
            break;
        if (l->place > head->head)
            r = fail(rep, -EBADMSG, l->file,
                     "%s place %" PRIu64 " lies past the checkpoint's head (%" PRIu64
                     "): the checkpoint does not cover it",
                     name, l->place, head->head);
        else if (l->place == head->head && !same_sha(l->link, head->hash))
            r = fail(rep, -EBADMSG, l->file,
                     "%s place %" PRIu64 " is the checkpoint's head, but its link is not the "
                     "hash the checkpoint signed",
                     name, l->place);
        else if (i > 0 && sorted[i - 1].chain == l->chain && sorted[i - 1].place + 1 == l->place &&
                 !same_sha(sorted[i - 1].link, l->prev))
            r = fail(rep, -EBADMSG, l->file,
                     "%s places %" PRIu64 " and %" PRIu64 " follow each other, but the later "
                     "does not link to the earlier",
                     name, l->place - 1, l->place);
        else
            rep->links[l->chain]++;
    }
    free(sorted);
    return r;
}

/* Steps 2 to 5, once the pass is done. */
static int check_contents(struct check *c)
{
    struct bundle_report *rep = c->rep;
    const struct entry *man = find(c, VG_BUNDLE_MANIFEST);
    const struct entry *sig = find(c, VG_BUNDLE_SIGNATURE);
    char err[512];
    if (!man)
        return fail(rep, -EINVAL, VG_BUNDLE_MANIFEST, "missing: not a Vigil export bundle");
    /* The signature first, with the key the header names: a manifest changed anywhere is a
     * bad signature, whatever the change did to its syntax. */
    unsigned char key[VG_SIGN_PUBLIC_LEN];
    if (vg_bundle_manifest_key(man->data, man->len, key) < 0)
        return fail(rep, -EINVAL, VG_BUNDLE_MANIFEST,
                    "not a Vigil bundle manifest: its fifth line must name the signing key");
    if (!sig)
        return fail(rep, -EBADMSG, VG_BUNDLE_SIGNATURE, "missing: the manifest is not signed");
    if (sig->len != VG_SIGNATURE_LEN ||
        !vg_sign_verify(key, man->data, man->len, (const unsigned char *)sig->data))
        return fail(rep, -EBADMSG, VG_BUNDLE_MANIFEST,
                    "its signature (MANIFEST.sig) does not verify with the key it names: the "
                    "manifest or the signature was changed");
    struct vg_bundle_manifest *m = NULL;
    int r = vg_bundle_manifest_parse(man->data, man->len, &m, err, sizeof(err));
    if (r < 0)
        return fail(rep, r == -ENOMEM ? -ENOMEM : -EBADMSG, VG_BUNDLE_MANIFEST, "%s", err);
    rep->incident_id = m->incident_id;
    rep->exported_at_ms = m->exported_at_ms;
    snprintf(rep->exported_by, sizeof(rep->exported_by), "%s", m->exported_by);
    snprintf(rep->key_b64, sizeof(rep->key_b64), "%s", m->signing_public_b64);
    r = check_files(c, m);
    if (r == 0)
        r = check_links(c, m);
    vg_bundle_manifest_destroy(&m);
    return r;
}

static int check_archive(struct archive *a, int opened, struct bundle_report *rep)
{
    struct check c = {.rep = rep};
    memset(rep, 0, sizeof(*rep));
    int r;
    if (opened != ARCHIVE_OK) {
        const char *why = archive_error_string(a) ? archive_error_string(a) : "unknown error";
        r = archive_errno(a) == ARCHIVE_FORMAT_ERRNO
                ? fail(rep, -EINVAL, "", "not a tar, so not a Vigil export bundle: %s", why)
                : fail(rep, -EIO, "", "cannot read: %s", why);
        goto out;
    }
    c.block = malloc(READ_BLOCK);
    if (!c.block) {
        r = fail(rep, -ENOMEM, "", "out of memory");
        goto out;
    }
    r = read_tar(&c, a);
    if (r == 0)
        r = check_contents(&c);
out:
    check_free(&c);
    archive_read_free(a);
    return r;
}

static struct archive *reader(void)
{
    struct archive *a = archive_read_new();
    if (a) {
        /* A tar and nothing else: no compression, no other format to parse. */
        archive_read_support_format_tar(a);
        archive_read_support_filter_none(a);
    }
    return a;
}

int bundle_check_path(const char *path, struct bundle_report *report)
{
    struct archive *a = reader();
    if (!a) {
        memset(report, 0, sizeof(*report));
        return fail(report, -ENOMEM, "", "out of memory");
    }
    int opened = strcmp(path, "-") == 0 ? archive_read_open_fd(a, 0, READ_BLOCK)
                                        : archive_read_open_filename(a, path, READ_BLOCK);
    return check_archive(a, opened, report);
}

int bundle_check_memory(const void *data, size_t len, struct bundle_report *report)
{
    struct archive *a = reader();
    if (!a) {
        memset(report, 0, sizeof(*report));
        return fail(report, -ENOMEM, "", "out of memory");
    }
    return check_archive(a, archive_read_open_memory(a, data, len), report);
}
