/*
 * vigilctl evidence export INCIDENT --out FILE
 * vigilctl evidence verify-bundle FILE
 *
 * The export asks the coordinator for the bundle's description (ExportIncident: the files it
 * wrote, the artifacts to fetch, the signed manifest), checks it against the manifest, and writes
 * the tar as it goes: the small files from the reply, then each artifact fetched in pages with
 * GetEvidence (pipelined on one connection: evidence_fetch.h) and hashed on the way, so no artifact
 * and no bundle is ever held whole. A failure removes the file. verify-bundle is bundle_check.h's,
 * offline.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bundle.h"
#include "bundle_check.h"
#include "cmd_bundle.h"
#include "ctl_admin.h"
#include "digest.h"
#include "evidence_fetch.h"

#define EXPORT_MIN_TIMEOUT_MS 30000 /* the coordinator issues a checkpoint and reads the rows */

static void utc_text(int64_t ms, char *buf, size_t size)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&secs, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, size, "%" PRId64 " ms", ms);
}

/* One request: 0 with *ret_reply (status OK), or CTL_EXIT_FAILURE after printing why. */
static int call(struct ctl_context *ctx, Vigil__AdminRequest *req, int64_t timeout_ms,
                const char *what, const char *subject, Vigil__AdminReply **ret_reply)
{
    const struct ctl_config *cfg;
    Vigil__AdminReply *reply = NULL;
    char err[1024] = "";
    if (ctl_context_config(ctx, &cfg) != CTL_EXIT_OK)
        return CTL_EXIT_FAILURE;
    int r = ctl_admin_call(cfg, req, timeout_ms, &reply, err, sizeof(err));
    if (r == 0 && reply)
        r = ctl_admin_status_check(reply, what, subject, err, sizeof(err));
    if (r < 0 || !reply) {
        if (reply)
            vigil__admin_reply__free_unpacked(reply, NULL);
        output_error("%s", err[0] ? err : "no reply from the coordinator");
        return CTL_EXIT_FAILURE;
    }
    *ret_reply = reply;
    return 0;
}

/* A session for the artifacts' fetches: 0, or a negative errno after printing why. */
static int open_session(struct ctl_context *ctx, ctl_admin_session_t **ret_session)
{
    const struct ctl_config *cfg;
    char err[1024] = "";
    if (ctl_context_config(ctx, &cfg) != CTL_EXIT_OK)
        return -ENOENT; /* already printed */
    int r = ctl_admin_session_open(cfg, ctx->timeout_ms, ret_session, err, sizeof(err));
    if (r < 0)
        output_error("%s", err);
    return r;
}

static bool parse_id(const char *text, uint64_t *ret)
{
    char *end = NULL;
    if (!text || text[0] < '1' || text[0] > '9')
        return false;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || *end || v > INT64_MAX)
        return false;
    *ret = v;
    return true;
}

/* ---- export ---- */

struct writer {
    struct archive *a;
    const char *out_path;
    const char *dir;
    int64_t mtime;
};

static int archive_fail(const struct writer *w, const char *what)
{
    output_error("%s: cannot write %s: %s", w->out_path, what,
                 archive_error_string(w->a) ? archive_error_string(w->a) : "unknown error");
    return -EIO;
}

/* A header for dir/path (a directory when path is NULL). */
static int put_header(struct writer *w, const char *path, uint64_t size, int mode)
{
    char name[2 * VG_BUNDLE_PATH_MAX + 2];
    struct archive_entry *e = archive_entry_new();
    if (!e) {
        output_error("out of memory");
        return -ENOMEM;
    }
    snprintf(name, sizeof(name), "%s/%s", w->dir, path ? path : "");
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, path ? AE_IFREG : AE_IFDIR);
    archive_entry_set_perm(e, (__LA_MODE_T)mode);
    archive_entry_set_size(e, path ? (la_int64_t)size : 0);
    archive_entry_set_mtime(e, (time_t)(w->mtime / 1000), 0);
    archive_entry_set_uname(e, "vigil");
    archive_entry_set_gname(e, "vigil");
    int ar = archive_write_header(w->a, e);
    archive_entry_free(e);
    return ar == ARCHIVE_OK ? 0 : archive_fail(w, path ? path : "the directory");
}

static int put_data(struct writer *w, const char *path, const void *data, size_t len)
{
    if (len && archive_write_data(w->a, data, len) != (la_ssize_t)len)
        return archive_fail(w, path);
    return 0;
}

static int put_file(struct writer *w, const char *path, const void *data, size_t len, int mode)
{
    int r = put_header(w, path, len, mode);
    return r < 0 ? r : put_data(w, path, data, len);
}

/* put_artifact's end of the fetch: the bytes into the tar entry. */
struct entry_data {
    struct writer *w;
    const char *path;
};

static int write_entry(void *userdata, const uint8_t *data, size_t len)
{
    const struct entry_data *e = userdata;
    return put_data(e->w, e->path, data, len);
}

/* An artifact's bytes, fetched in pages into the tar (evidence_fetch.h) and checked against the
 * manifest. */
static int put_artifact(ctl_admin_session_t *session, int64_t timeout_ms, struct writer *w,
                        const Vigil__BundleFile *f)
{
    char subject[48], sha[VG_SHA256_HEX_LEN + 1];
    uint64_t size = 0;
    snprintf(subject, sizeof(subject), "evidence %" PRIu64, f->evidence_id);
    int r = put_header(w, f->path, f->size, 0644);
    if (r < 0)
        return r;
    struct entry_data entry = {.w = w, .path = f->path};
    const struct evidence_fetch_target target = {.id = f->evidence_id,
                                                 .subject = subject,
                                                 .sha256 = f->sha256,
                                                 .size = f->size,
                                                 .write = write_entry,
                                                 .userdata = &entry};
    return evidence_fetch_artifact(session, timeout_ms, &target, &size, sha);
}

/* The reply checked against its own manifest before anything is written: what the tar will
 * hold is what the coordinator signed. */
static int check_reply(const Vigil__ExportBundle *b, uint64_t id, struct vg_bundle_manifest **ret)
{
    char dir[48], err[512];
    snprintf(dir, sizeof(dir), "incident-%" PRIu64, id);
    if (!b || !b->manifest || !b->directory || strcmp(b->directory, dir) != 0) {
        output_error("incident %" PRIu64 ": the coordinator's answer is not an export bundle", id);
        return -EPROTO;
    }
    struct vg_bundle_manifest *m = NULL;
    int r = vg_bundle_manifest_parse(b->manifest, strlen(b->manifest), &m, err, sizeof(err));
    if (r < 0) {
        output_error("incident %" PRIu64 ": the coordinator's manifest is not valid: %s", id, err);
        return r;
    }
    if (m->incident_id != id ||
        !vg_bundle_manifest_verify(m, b->manifest, strlen(b->manifest), b->manifest_signature.data,
                                   b->manifest_signature.len)) {
        output_error("incident %" PRIu64 ": the manifest is not signed by the key it names, or "
                     "is another incident's",
                     id);
        vg_bundle_manifest_destroy(&m);
        return -EBADMSG;
    }
    if (b->n_files != m->nfiles) {
        output_error("incident %" PRIu64 ": the answer holds %zu files, the manifest lists %zu", id,
                     b->n_files, m->nfiles);
        vg_bundle_manifest_destroy(&m);
        return -EPROTO;
    }
    for (size_t i = 0; i < b->n_files; i++) {
        const Vigil__BundleFile *f = b->files[i];
        const struct vg_bundle_file *listed = vg_bundle_manifest_file(m, f->path);
        char hex[VG_SHA256_HEX_LEN + 1] = "";
        uint8_t digest[VG_SHA256_LEN];
        if (listed)
            vg_hex(listed->sha256, VG_SHA256_LEN, hex);
        bool ok = listed && f->sha256 && strcmp(hex, f->sha256) == 0;
        if (ok && f->evidence_id == 0) {
            vg_sha256(f->content.data, f->content.len, digest);
            ok = f->content.len == f->size && memcmp(digest, listed->sha256, VG_SHA256_LEN) == 0;
        } else if (ok) {
            ok = f->content.len == 0 && f->size <= (uint64_t)VG_MAX_EVIDENCE_BYTES;
        }
        if (!ok) {
            output_error("incident %" PRIu64 ": %s does not match the manifest", id,
                         f->path ? f->path : "a file");
            vg_bundle_manifest_destroy(&m);
            return -EPROTO;
        }
    }
    *ret = m;
    return 0;
}

/* The artifacts are fetched on one session, opened for the first of them. */
static int write_bundle(struct ctl_context *ctx, struct writer *w, const Vigil__ExportBundle *b)
{
    ctl_admin_session_t *session = NULL;
    int r = put_header(w, NULL, 0, 0755);
    if (r == 0)
        r = put_file(w, VG_BUNDLE_MANIFEST, b->manifest, strlen(b->manifest), 0644);
    if (r == 0)
        r = put_file(w, VG_BUNDLE_SIGNATURE, b->manifest_signature.data, b->manifest_signature.len,
                     0644);
    for (size_t i = 0; r == 0 && i < b->n_files; i++) {
        const Vigil__BundleFile *f = b->files[i];
        if (!f->evidence_id) {
            r = put_file(w, f->path, f->content.data, f->content.len,
                         strcmp(f->path, "verify.sh") == 0 ? 0755 : 0644);
            continue;
        }
        if (!session)
            r = open_session(ctx, &session);
        if (r == 0)
            r = put_artifact(session, ctx->timeout_ms, w, f);
    }
    ctl_admin_session_destroy(&session);
    if (r == 0 && archive_write_close(w->a) != ARCHIVE_OK)
        r = archive_fail(w, "the end of the tar");
    return r;
}

int ctl_evidence_export(struct ctl_context *ctx, const char *out_path, int argc, char **argv)
{
    uint64_t id = 0;
    if (argc != 1 || !parse_id(argv[0], &id)) {
        output_error("usage: vigilctl evidence export INCIDENT --out FILE (INCIDENT as 'vigilctl "
                     "incidents' shows it)");
        return CTL_EXIT_USAGE;
    }
    if (!out_path || !out_path[0] || strcmp(out_path, "-") == 0) {
        output_error("evidence export needs --out FILE (the bundle is a tar; it is never written "
                     "to standard output)");
        return CTL_EXIT_USAGE;
    }
    Vigil__ExportIncident body = VIGIL__EXPORT_INCIDENT__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__AdminReply *reply = NULL;
    char subject[48];
    snprintf(subject, sizeof(subject), "incident %" PRIu64, id);
    body.id = id;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_EXPORT_INCIDENT;
    req.export_incident = &body;
    /* Never over an existing file; a failed export removes what it wrote, and only that. The
     * file first: an export that cannot be written is not asked for (nor audited). */
    int fd = open(out_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        output_error("cannot create %s: %s%s", out_path, strerror(errno),
                     errno == EEXIST ? " (an existing file is never overwritten)" : "");
        return CTL_EXIT_FAILURE;
    }
    int64_t timeout =
        ctx->timeout_ms > EXPORT_MIN_TIMEOUT_MS ? ctx->timeout_ms : EXPORT_MIN_TIMEOUT_MS;
    struct vg_bundle_manifest *m = NULL;
    const Vigil__ExportBundle *b = NULL;
    if (call(ctx, &req, timeout, "export", subject, &reply) != 0 ||
        check_reply((b = reply->export_bundle), id, &m) < 0) {
        close(fd);
        unlink(out_path);
        if (reply)
            vigil__admin_reply__free_unpacked(reply, NULL);
        return CTL_EXIT_FAILURE;
    }
    struct writer w = {.a = archive_write_new(),
                       .out_path = out_path,
                       .dir = b->directory,
                       .mtime = m->exported_at_ms};
    int r = -ENOMEM;
    if (w.a && archive_write_set_format_pax_restricted(w.a) == ARCHIVE_OK &&
        archive_write_set_bytes_in_last_block(w.a, 1) == ARCHIVE_OK &&
        archive_write_open_fd(w.a, fd) == ARCHIVE_OK)
        r = write_bundle(ctx, &w, b);
    else if (w.a)
        r = archive_fail(&w, "the tar");
    else
        output_error("out of memory");
    if (w.a)
        archive_write_free(w.a);
    if (r == 0 && fsync(fd) < 0)
        r = -errno;
    if (close(fd) < 0 && r == 0)
        r = -errno;
    if (r < 0) {
        unlink(out_path);
        output_error("incident %" PRIu64 ": %s removed; nothing was kept", id, out_path);
        vg_bundle_manifest_destroy(&m);
        vigil__admin_reply__free_unpacked(reply, NULL);
        return CTL_EXIT_FAILURE;
    }

    uint64_t artifacts = 0, bytes = 0;
    for (size_t i = 0; i < b->n_files; i++) {
        if (b->files[i]->evidence_id) {
            artifacts++;
            bytes += b->files[i]->size;
        }
    }
    int ok;
    if (ctx->format == OUTPUT_JSON) {
        json_t *doc =
            json_pack("{s:I, s:o, s:s, s:I, s:I, s:I, s:s}", "incident", (json_int_t)id, "path",
                      output_json_string(out_path), "directory", b->directory, "files",
                      (json_int_t)b->n_files, "artifacts", (json_int_t)artifacts, "artifact_bytes",
                      (json_int_t)bytes, "signing_public_key", m->signing_public_b64);
        ok = output_json_print(&doc, stdout) == 0;
    } else {
        ok = printf("incident %" PRIu64 ": bundle written to %s: %zu files, %" PRIu64
                    " artifacts (%" PRIu64 " bytes), manifest signed by %s\n"
                    "check it with 'vigilctl evidence verify-bundle %s', or after 'tar xf' with "
                    "'sh %s/verify.sh' (sha256sum and openssl alone)\n",
                    id, out_path, b->n_files, artifacts, bytes, m->signing_public_b64, out_path,
                    b->directory) > 0;
    }
    vg_bundle_manifest_destroy(&m);
    vigil__admin_reply__free_unpacked(reply, NULL);
    if (!ok) {
        output_error("cannot write the output");
        return CTL_EXIT_FAILURE;
    }
    return CTL_EXIT_OK;
}

/* ---- verify-bundle ---- */

int ctl_evidence_verify_bundle(struct ctl_context *ctx, int argc, char **argv)
{
    if (argc != 1 || !argv[0][0]) {
        output_error("usage: vigilctl evidence verify-bundle FILE (a tar 'vigilctl evidence "
                     "export' wrote; - reads standard input)");
        return CTL_EXIT_USAGE;
    }
    const char *path = argv[0];
    struct bundle_report *rep = calloc(1, sizeof(*rep));
    if (!rep) {
        output_error("out of memory");
        return CTL_EXIT_FAILURE;
    }
    int r = bundle_check_path(path, rep);
    char issued[40], exported[40];
    utc_text(rep->checkpoint.issued_at_ms, issued, sizeof(issued));
    utc_text(rep->exported_at_ms, exported, sizeof(exported));
    int ok;
    if (ctx->format == OUTPUT_JSON) {
        json_t *doc = json_pack(
            "{s:o, s:b, s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:I}", "path", output_json_string(path),
            "ok", r == 0, "file",
            r == 0 || !rep->file[0] ? json_null() : output_json_string(rep->file), "error",
            r == 0 ? json_null() : output_json_string(rep->error), "incident",
            (json_int_t)rep->incident_id, "files", (json_int_t)rep->files, "artifacts",
            (json_int_t)rep->artifacts, "evidence_links", (json_int_t)rep->links[VG_CHAIN_EVIDENCE],
            "timeline_links", (json_int_t)rep->links[VG_CHAIN_TIMELINE], "report_links",
            (json_int_t)rep->links[VG_CHAIN_REPORTS]);
        if (doc && rep->key_b64[0])
            json_object_set_new(doc, "signing_public_key", output_json_string(rep->key_b64));
        ok = output_json_print(&doc, stdout) == 0;
    } else if (r == 0) {
        ok = printf(
                 "%s: incident %" PRIu64 ", exported %s by %s\n"
                 "files: %zu match the signed manifest (%" PRIu64 " artifacts, %" PRIu64 " bytes)\n"
                 "chains: %zu artifacts, %zu timeline rows, %zu command reports recompute and "
                 "agree with the checkpoint of %s\n"
                 "bundle intact, signed by %s: compare that key with the coordinator's key "
                 "you have on record\n",
                 path, rep->incident_id, exported, rep->exported_by, rep->files, rep->artifacts,
                 rep->artifact_bytes, rep->links[VG_CHAIN_EVIDENCE], rep->links[VG_CHAIN_TIMELINE],
                 rep->links[VG_CHAIN_REPORTS], issued, rep->key_b64) > 0;
    } else {
        ok = 1;
    }
    if (r < 0) {
        if (rep->file[0])
            output_error("%s: %s/%s: %s", path, rep->dir[0] ? rep->dir : "?", rep->file,
                         rep->error);
        else
            output_error("%s: %s", path, rep->error);
    }
    free(rep);
    if (!ok)
        output_error("cannot write the output");
    return r == 0 && ok ? CTL_EXIT_OK : CTL_EXIT_FAILURE;
}
