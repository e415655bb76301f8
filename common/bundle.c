/* The manifest of an incident's export bundle (bundle.h). */
#include "bundle.h"

#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strict_text.h"

#define HEADER_LINES 5 /* magic, incident, exported_at_ms, exported_by, signing_public_key */

bool vg_bundle_path_ok(const char *path, size_t len)
{
    if (!path || len == 0 || len > VG_BUNDLE_PATH_MAX || path[0] == '/' || path[len - 1] == '/')
        return false;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || path[i] == '/') {
            size_t n = i - start;
            if (n == 0 || (n == 1 && path[start] == '.') ||
                (n == 2 && path[start] == '.' && path[start + 1] == '.'))
                return false;
            start = i + 1;
            continue;
        }
        char c = path[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

__attribute__((format(printf, 4, 5))) static int fail(char *err, size_t errlen, size_t line,
                                                      const char *fmt, ...)
{
    va_list ap;
    int n = line ? snprintf(err, errlen, "MANIFEST line %zu: ", line) : 0;
    if (n < 0 || (size_t)n >= errlen)
        n = 0;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* "# key: value": value (vlen bytes) when line is that line. */
static bool header(const char *line, size_t len, const char *key, const char **value, size_t *vlen)
{
    size_t klen = strlen(key);
    if (len < klen + 4 || memcmp(line, "# ", 2) != 0 || memcmp(line + 2, key, klen) != 0 ||
        line[klen + 2] != ':' || line[klen + 3] != ' ')
        return false;
    *value = line + klen + 4;
    *vlen = len - klen - 4;
    return true;
}

/* Splits line into at most max words separated by one space each. The count, or -1 when a word
 * is empty (two spaces, a space at either end) or there are more than max. */
static int words(const char *line, size_t len, const char **w, size_t *wlen, int max)
{
    int n = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && line[i] != ' ')
            continue;
        if (i == start || n == max)
            return -1;
        w[n] = line + start;
        wlen[n] = i - start;
        n++;
        start = i + 1;
    }
    return n;
}

static int compare_files(const void *a, const void *b)
{
    return strcmp(((const struct vg_bundle_file *)a)->path,
                  ((const struct vg_bundle_file *)b)->path);
}

int vg_bundle_link_compare(const void *a, const void *b)
{
    const struct vg_bundle_link *x = a, *y = b;
    if (x->chain != y->chain)
        return x->chain < y->chain ? -1 : 1;
    return x->place < y->place ? -1 : x->place > y->place;
}

const struct vg_bundle_file *vg_bundle_manifest_file(const struct vg_bundle_manifest *m,
                                                     const char *path)
{
    if (!m || !path)
        return NULL;
    struct vg_bundle_file key = {.path = (char *)path};
    return bsearch(&key, m->files, m->nfiles, sizeof(*m->files), compare_files);
}

void vg_bundle_manifest_destroy(struct vg_bundle_manifest **self_p)
{
    if (!self_p || !*self_p)
        return;
    struct vg_bundle_manifest *m = *self_p;
    for (size_t i = 0; m->files && i < m->nfiles; i++)
        free(m->files[i].path);
    free(m->files);
    free(m->links);
    free(m);
    *self_p = NULL;
}

/* The header line i (1-based, after the magic) into m. */
static int header_line(size_t i, const char *line, size_t len, struct vg_bundle_manifest *m,
                       char *err, size_t errlen)
{
    const char *v = NULL;
    size_t vlen = 0;
    uint64_t n = 0;
    switch (i) {
    case 2:
        if (!header(line, len, "incident", &v, &vlen) ||
            !vg_strict_decimal(v, vlen, INT64_MAX, &n) || !n)
            return fail(err, errlen, i, "expected \"# incident: ID\"");
        m->incident_id = n;
        return 0;
    case 3:
        if (!header(line, len, "exported_at_ms", &v, &vlen) ||
            !vg_strict_decimal(v, vlen, INT64_MAX, &n))
            return fail(err, errlen, i, "expected \"# exported_at_ms: MILLISECONDS\"");
        m->exported_at_ms = (int64_t)n;
        return 0;
    case 4:
        if (!header(line, len, "exported_by", &v, &vlen) || vlen == 0 || vlen > VG_BUNDLE_ACTOR_MAX)
            return fail(err, errlen, i, "expected \"# exported_by: WHO\" (at most %d bytes)",
                        VG_BUNDLE_ACTOR_MAX);
        for (size_t k = 0; k < vlen; k++)
            if ((unsigned char)v[k] < 0x20 || (unsigned char)v[k] == 0x7f)
                return fail(err, errlen, i, "exported_by holds a control character");
        memcpy(m->exported_by, v, vlen);
        m->exported_by[vlen] = '\0';
        return 0;
    default:
        if (!header(line, len, "signing_public_key", &v, &vlen) || vlen != VG_SIGN_PUBLIC_B64_LEN)
            return fail(err, errlen, i,
                        "expected \"# signing_public_key: BASE64\" (44 characters)");
        memcpy(m->signing_public_b64, v, vlen);
        m->signing_public_b64[vlen] = '\0';
        if (vg_sign_public_parse(m->signing_public_b64, m->signing_public_key) < 0)
            return fail(err, errlen, i, "signing_public_key must be base64 of 32 bytes");
        return 0;
    }
}

/* Where a link line's paths point, until the files are sorted: offsets into the text. */
struct pending_link {
    size_t line;
    const char *file, *meta;
    size_t file_len, meta_len;
};

/* "# link NAME PLACE ROW_ID PREV LINK FILE [META]" into *l and *p. */
static int link_line(size_t i, const char *line, size_t len, struct vg_bundle_link *l,
                     struct pending_link *p, char *err, size_t errlen)
{
    const char *w[9];
    size_t wl[9];
    int n = words(line, len, w, wl, 9);
    if (n < 8 || wl[0] != 1 || w[0][0] != '#' || wl[1] != 4 || memcmp(w[1], "link", 4) != 0)
        return fail(err, errlen, i, "expected \"# link CHAIN PLACE ROW_ID PREV LINK FILE\"");
    static const enum vg_chain linked[] = {VG_CHAIN_EVIDENCE, VG_CHAIN_TIMELINE, VG_CHAIN_REPORTS};
    bool known = false;
    for (size_t k = 0; k < sizeof(linked) / sizeof(linked[0]) && !known; k++) {
        const char *name = vg_chain_name(linked[k]);
        if (wl[2] == strlen(name) && memcmp(w[2], name, wl[2]) == 0) {
            l->chain = linked[k];
            known = true;
        }
    }
    if (!known)
        return fail(err, errlen, i, "the chain must be evidence, timeline or reports");
    if (n != (l->chain == VG_CHAIN_EVIDENCE ? 9 : 8))
        return fail(err, errlen, i, "an %s link has %d fields", vg_chain_name(l->chain),
                    l->chain == VG_CHAIN_EVIDENCE ? 9 : 8);
    if (!vg_strict_decimal(w[3], wl[3], INT64_MAX, &l->place) || l->place == 0 ||
        !vg_strict_decimal(w[4], wl[4], INT64_MAX, &l->row_id) || l->row_id == 0)
        return fail(err, errlen, i, "the place and the row id must be positive decimal numbers");
    if (l->chain == VG_CHAIN_EVIDENCE && l->place != l->row_id)
        return fail(err, errlen, i, "an evidence link's place is its row id");
    if (!vg_strict_hex32(w[5], wl[5], l->prev) || !vg_strict_hex32(w[6], wl[6], l->link))
        return fail(err, errlen, i, "the links must be 64 lowercase hex digits");
    if (!vg_bundle_path_ok(w[7], wl[7]) ||
        (l->chain == VG_CHAIN_EVIDENCE && !vg_bundle_path_ok(w[8], wl[8])))
        return fail(err, errlen, i, "not a path inside the bundle");
    p->line = i;
    p->file = w[7];
    p->file_len = wl[7];
    p->meta = l->chain == VG_CHAIN_EVIDENCE ? w[8] : NULL;
    p->meta_len = l->chain == VG_CHAIN_EVIDENCE ? wl[8] : 0;
    return 0;
}

/* "<64 hex>  PATH" into *f (path allocated). */
static int file_line(size_t i, const char *line, size_t len, struct vg_bundle_file *f, char *err,
                     size_t errlen)
{
    if (len < 67 || line[64] != ' ' || line[65] != ' ' || !vg_strict_hex32(line, 64, f->sha256))
        return fail(err, errlen, i,
                    "expected \"SHA256  PATH\" (64 lowercase hex digits, two "
                    "spaces)");
    if (!vg_bundle_path_ok(line + 66, len - 66))
        return fail(err, errlen, i,
                    "not a path inside the bundle (a-z, A-Z, 0-9, '.', '_', "
                    "'-' and '/' between names; no '..', at most %d bytes)",
                    VG_BUNDLE_PATH_MAX);
    if ((len - 66 == strlen(VG_BUNDLE_MANIFEST) &&
         memcmp(line + 66, VG_BUNDLE_MANIFEST, len - 66) == 0) ||
        (len - 66 == strlen(VG_BUNDLE_SIGNATURE) &&
         memcmp(line + 66, VG_BUNDLE_SIGNATURE, len - 66) == 0))
        return fail(err, errlen, i, "the manifest cannot list itself or its signature");
    f->path = strndup(line + 66, len - 66);
    return f->path ? 0 : -ENOMEM;
}

/* The path of a link (p, from the text) as the listed file's own path string. */
static const char *listed(const struct vg_bundle_manifest *m, const char *path, size_t len)
{
    char buf[VG_BUNDLE_PATH_MAX + 1];
    memcpy(buf, path, len);
    buf[len] = '\0';
    const struct vg_bundle_file *f = vg_bundle_manifest_file(m, buf);
    return f ? f->path : NULL;
}

static size_t count_lines(const char *text, size_t len)
{
    size_t n = 0;
    for (const char *p = text; (p = memchr(p, '\n', len - (size_t)(p - text))) != NULL; p++)
        n++;
    return n;
}

int vg_bundle_manifest_parse(const char *text, size_t len, struct vg_bundle_manifest **ret,
                             char *err, size_t errlen)
{
    if (!text || !ret)
        return -EINVAL;
    if (len > VG_BUNDLE_MANIFEST_MAX)
        return fail(err, errlen, 0, "MANIFEST is over %d bytes", VG_BUNDLE_MANIFEST_MAX);
    if (len == 0 || text[len - 1] != '\n')
        return fail(err, errlen, 0, "MANIFEST must end in a newline");
    if (memchr(text, '\0', len))
        return fail(err, errlen, 0, "MANIFEST holds a NUL byte");
    size_t nlines = count_lines(text, len); /* at least 1: text ends in a newline */
    if (nlines > VG_BUNDLE_FILES_MAX * 2 + HEADER_LINES)
        return fail(err, errlen, 0, "MANIFEST has more than %d lines",
                    VG_BUNDLE_FILES_MAX * 2 + HEADER_LINES);

    struct vg_bundle_manifest *m = calloc(1, sizeof(*m));
    struct pending_link *pending = NULL;
    int r = -ENOMEM;
    if (!m)
        return -ENOMEM;
    m->files = calloc(nlines + 1, sizeof(*m->files));
    m->links = calloc(nlines + 1, sizeof(*m->links));
    pending = calloc(nlines + 1, sizeof(*pending));
    if (!m->files || !m->links || !pending)
        goto err_free;

    size_t at = 0, i = 0;
    while (at < len) {
        const char *line = text + at;
        const char *nl = memchr(line, '\n', len - at);
        size_t line_len = (size_t)(nl - line);
        at += line_len + 1;
        i++;
        if (i == 1) {
            if (line_len != 2 + strlen(VG_BUNDLE_MAGIC) || memcmp(line, "# ", 2) != 0 ||
                memcmp(line + 2, VG_BUNDLE_MAGIC, strlen(VG_BUNDLE_MAGIC)) != 0) {
                r = fail(err, errlen, 1,
                         "not a Vigil bundle manifest: the first line must be "
                         "\"# " VG_BUNDLE_MAGIC "\"");
                goto err_free;
            }
            continue;
        }
        if (i <= HEADER_LINES) {
            r = header_line(i, line, line_len, m, err, errlen);
        } else if (line_len > 0 && line[0] == '#') {
            if (m->nfiles > 0) {
                r = fail(err, errlen, i, "link lines come before the file lines");
                goto err_free;
            }
            r = link_line(i, line, line_len, &m->links[m->nlinks], &pending[m->nlinks], err,
                          errlen);
            if (r == 0)
                m->nlinks++;
        } else {
            if (m->nfiles >= VG_BUNDLE_FILES_MAX) {
                r = fail(err, errlen, i, "more than %d files", VG_BUNDLE_FILES_MAX);
                goto err_free;
            }
            r = file_line(i, line, line_len, &m->files[m->nfiles], err, errlen);
            if (r == 0)
                m->nfiles++;
        }
        if (r < 0)
            goto err_free;
    }
    if (i < HEADER_LINES || m->nfiles == 0) {
        r = fail(err, errlen, i + 1,
                 "missing: a manifest has its %d header lines and lists at "
                 "least one file",
                 HEADER_LINES);
        goto err_free;
    }
    qsort(m->files, m->nfiles, sizeof(*m->files), compare_files);
    for (size_t k = 1; k < m->nfiles; k++) {
        if (strcmp(m->files[k - 1].path, m->files[k].path) == 0) {
            r = fail(err, errlen, 0, "MANIFEST lists %s twice", m->files[k].path);
            goto err_free;
        }
    }
    for (size_t k = 0; k < m->nlinks; k++) {
        struct vg_bundle_link *l = &m->links[k];
        l->file = listed(m, pending[k].file, pending[k].file_len);
        l->meta = pending[k].meta ? listed(m, pending[k].meta, pending[k].meta_len) : NULL;
        if (!l->file || (pending[k].meta && !l->meta)) {
            r = fail(err, errlen, pending[k].line, "names a file the manifest does not list");
            goto err_free;
        }
    }
    /* Each place once: sorted copies side by side (the order of the lines stays as it is). */
    struct vg_bundle_link *sorted = malloc((m->nlinks ? m->nlinks : 1) * sizeof(*sorted));
    if (!sorted) {
        r = -ENOMEM;
        goto err_free;
    }
    memcpy(sorted, m->links, m->nlinks * sizeof(*sorted));
    qsort(sorted, m->nlinks, sizeof(*sorted), vg_bundle_link_compare);
    for (size_t k = 1; k < m->nlinks; k++) {
        if (vg_bundle_link_compare(&sorted[k - 1], &sorted[k]) == 0) {
            r = fail(err, errlen, 0, "MANIFEST links %s place %llu twice",
                     vg_chain_name(sorted[k].chain), (unsigned long long)sorted[k].place);
            free(sorted);
            goto err_free;
        }
    }
    free(sorted);
    free(pending);
    *ret = m;
    return 0;

err_free:
    free(pending);
    vg_bundle_manifest_destroy(&m);
    return r;
}

int vg_bundle_manifest_key(const char *text, size_t len, unsigned char ret[VG_SIGN_PUBLIC_LEN])
{
    size_t at = 0;
    if (!text || !ret)
        return -EINVAL;
    for (size_t i = 1; i <= HEADER_LINES && at < len; i++) {
        const char *line = text + at;
        const char *nl = memchr(line, '\n', len - at);
        if (!nl)
            return -EINVAL;
        size_t line_len = (size_t)(nl - line);
        at += line_len + 1;
        const char *v = NULL;
        size_t vlen = 0;
        char b64[VG_SIGN_PUBLIC_B64_LEN + 1];
        if (i == HEADER_LINES && header(line, line_len, "signing_public_key", &v, &vlen) &&
            vlen == VG_SIGN_PUBLIC_B64_LEN) {
            memcpy(b64, v, vlen);
            b64[vlen] = '\0';
            return vg_sign_public_parse(b64, ret) < 0 ? -EINVAL : 0;
        }
    }
    return -EINVAL;
}

bool vg_bundle_manifest_verify(const struct vg_bundle_manifest *m, const char *text, size_t len,
                               const unsigned char *sig, size_t siglen)
{
    return m && text && sig && siglen == VG_SIGNATURE_LEN &&
           vg_sign_verify(m->signing_public_key, text, len, sig);
}

void vg_bundle_public_pem(const unsigned char key[VG_SIGN_PUBLIC_LEN], char out[VG_BUNDLE_PEM_LEN])
{
    /* SubjectPublicKeyInfo for Ed25519 (RFC 8410): a fixed 12-byte prefix, then the key. */
    static const unsigned char prefix[12] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                             0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
    unsigned char der[sizeof(prefix) + VG_SIGN_PUBLIC_LEN];
    char b64[61];
    memcpy(der, prefix, sizeof(prefix));
    memcpy(der + sizeof(prefix), key, VG_SIGN_PUBLIC_LEN);
    sodium_bin2base64(b64, sizeof(b64), der, sizeof(der), sodium_base64_VARIANT_ORIGINAL);
    snprintf(out, VG_BUNDLE_PEM_LEN, "-----BEGIN PUBLIC KEY-----\n%s\n-----END PUBLIC KEY-----\n",
             b64);
}
