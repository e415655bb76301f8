/*
 * `vigilctl evidence export INCIDENT`: the incident's offline-verifiable bundle
 * (common/bundle.h, docs/forensics.md "Export bundles").
 *
 * The coordinator issues a checkpoint for the export (written and published like every
 * checkpoint), reads what the incident holds up to that checkpoint's heads — its stored
 * artifacts with their vault rows, its timeline and its commands' reports with their chain links
 * and canonical rows, its commands — and answers with the files it wrote itself and a manifest
 * it signed. The artifacts' bytes are not in the reply: vigilctl fetches each with GetEvidence
 * in pages while it writes the tar (an artifact can be hundreds of MiB; nothing holds a whole
 * bundle in memory), and checks each against the manifest's hash as it goes.
 *
 * Chain of custody: every export is an audit row (evidence.export: who, which incident, what the
 * manifest's hash is, from which address); each artifact fetched is its own evidence.get row.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin_internal.h"
#include "bundle.h"
#include "digest.h"
#include "log.h"
#include "store_export.h"
#include "wire.h"

/* What the reply may carry besides the artifacts (which vigilctl fetches on its own). */
#define INLINE_MAX (VG_MAX_MESSAGE_BYTES - 512 * 1024)
#define NODE_IN_NAME_MAX 64

/* ---- a growing text; an allocation failure is sticky ---- */

struct text {
    char *data;
    size_t len, cap;
    bool oom;
};

static void text_put(struct text *t, const void *s, size_t n)
{
    if (t->oom)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *data = realloc(t->data, cap);
        if (!data) {
            t->oom = true;
            return;
        }
        t->data = data;
        t->cap = cap;
    }
    memcpy(t->data + t->len, s, n);
    t->len += n;
    t->data[t->len] = '\0';
}

__attribute__((format(printf, 2, 3))) static void text_printf(struct text *t, const char *fmt, ...)
{
    char small[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        t->oom = true;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        text_put(t, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        t->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    text_put(t, big, (size_t)n);
    free(big);
}

/* ---- the bundle being described ---- */

struct export_file {
    char path[VG_BUNDLE_PATH_MAX + 1];
    uint8_t *content; /* NULL for an artifact */
    size_t len;
    uint64_t evidence_id, size;
    char sha256[VG_SHA256_HEX_LEN + 1];
};

struct export
{
    uint64_t incident_id;
    struct vg_checkpoint cp;
    struct export_file *files;
    size_t nfiles, cap;
    size_t inline_bytes;
    struct text links;    /* the manifest's "# link" lines */
    struct text timeline; /* timeline.txt */
    struct text commands; /* commands.txt */
    struct text incident; /* incident.txt */
    uint64_t artifacts, artifact_bytes;
    size_t timeline_rows, report_rows;
};

static void export_free(void *ptr)
{
    struct export *x = ptr;
    if (!x)
        return;
    for (size_t i = 0; i < x->nfiles; i++)
        free(x->files[i].content);
    free(x->files);
    free(x->links.data);
    free(x->timeline.data);
    free(x->commands.data);
    free(x->incident.data);
    free(x);
}

static struct export_file *add_file(struct export *x, const char *path)
{
    if (x->nfiles == x->cap) {
        size_t cap = x->cap ? 2 * x->cap : 64;
        struct export_file *files = realloc(x->files, cap * sizeof(*files));
        if (!files)
            return NULL;
        x->files = files;
        x->cap = cap;
    }
    struct export_file *f = &x->files[x->nfiles++];
    memset(f, 0, sizeof(*f));
    snprintf(f->path, sizeof(f->path), "%s", path);
    return f;
}

/* A file of the coordinator's own making (content copied). 0, -ENOMEM or -E2BIG. */
static int add_content(struct export *x, const char *path, const void *content, size_t len)
{
    if (x->inline_bytes + len + 256 > INLINE_MAX)
        return -E2BIG;
    struct export_file *f = add_file(x, path);
    if (!f)
        return -ENOMEM;
    f->content = malloc(len ? len : 1);
    if (!f->content)
        return -ENOMEM;
    memcpy(f->content, content, len);
    f->len = f->size = len;
    uint8_t digest[VG_SHA256_LEN];
    vg_sha256(content, len, digest);
    vg_hex(digest, sizeof(digest), f->sha256);
    x->inline_bytes += len + 256;
    return 0;
}

static int add_text(struct export *x, const char *path, const struct text *t)
{
    if (t->oom)
        return -ENOMEM;
    return add_content(x, path, t->data ? t->data : "", t->len);
}

/* ---- what the store holds ---- */

static int incident_cb(const struct store_export_incident *inc, void *userdata)
{
    struct export *x = userdata;
    text_printf(&x->incident,
                "incident\t%" PRIu64 "\ntitle\t%s\nrunbook\t%s\nseverity\tSEV%d\nstate\t%s\n"
                "opened_at\t%s\nnodes\t%s\n",
                inc->id, inc->title, inc->runbook, inc->severity, inc->state, inc->opened_at,
                inc->scope_json);
    return 0;
}

/* node as a file name's part: [A-Za-z0-9._-] kept, anything else '_', at most 64 bytes. */
static void name_part(const char *node, char *out, size_t outlen)
{
    size_t n = 0;
    for (; n < NODE_IN_NAME_MAX && n + 1 < outlen && node[n]; n++) {
        char c = node[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        out[n] = ok ? c : '_';
    }
    out[n] = '\0';
    if (n == 0 || strcmp(out, ".") == 0 || strcmp(out, "..") == 0)
        snprintf(out, outlen, "%s", "node");
}

static void hex32(const uint8_t bytes[32], char out[65])
{
    vg_hex(bytes, 32, out);
}

static int artifact_cb(const struct store_export_artifact *a, void *userdata)
{
    struct export *x = userdata;
    char node[NODE_IN_NAME_MAX + 1], path[VG_BUNDLE_PATH_MAX + 1], meta[64], prev[65], chain[65];
    name_part(a->node, node, sizeof(node));
    snprintf(path, sizeof(path), "artifacts/%" PRIu64 "-%.32s-%s", a->id, a->kind, node);
    snprintf(meta, sizeof(meta), "chains/evidence/%" PRIu64 ".meta", a->id);
    if (!vg_bundle_path_ok(path, strlen(path)))
        snprintf(path, sizeof(path), "artifacts/%" PRIu64, a->id);
    int r = add_content(x, meta, a->meta, a->meta_len);
    if (r < 0)
        return r;
    struct export_file *f = add_file(x, path);
    if (!f)
        return -ENOMEM;
    f->evidence_id = a->id;
    f->size = a->size;
    hex32(a->sha256, f->sha256);
    x->inline_bytes += 256;
    x->artifacts++;
    x->artifact_bytes += a->size;
    hex32(a->prev, prev);
    hex32(a->chain, chain);
    text_printf(&x->links, "# link evidence %" PRIu64 " %" PRIu64 " %s %s %s %s\n", a->id, a->id,
                prev, chain, path, meta);
    return 0;
}

static int row_cb(struct export *x, const char *chain_name, struct text *human,
                  const struct store_export_row *row)
{
    char path[64], prev[65], link[65];
    snprintf(path, sizeof(path), "chains/%s/%" PRIu64 ".row", chain_name, row->seq);
    int r = add_content(x, path, row->canonical, row->canonical_len);
    if (r < 0)
        return r;
    hex32(row->prev, prev);
    hex32(row->link, link);
    text_printf(&x->links, "# link %s %" PRIu64 " %" PRIu64 " %s %s %s\n", chain_name, row->seq,
                row->row_id, prev, link, path);
    text_printf(human, "%s\n", row->line);
    return 0;
}

static int timeline_cb(const struct store_export_row *row, void *userdata)
{
    struct export *x = userdata;
    x->timeline_rows++;
    return row_cb(x, "timeline", &x->timeline, row);
}

static int report_cb(const struct store_export_row *row, void *userdata)
{
    struct export *x = userdata;
    x->report_rows++;
    return row_cb(x, "reports", &x->commands, row);
}

static int command_cb(const char *line, void *userdata)
{
    struct export *x = userdata;
    text_printf(&x->commands, "%s\n", line);
    return 0;
}

/* ---- the files the coordinator writes ---- */

static void utc_text(int64_t ms, char *buf, size_t size)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&secs, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, size, "%" PRId64 " ms", ms);
}

/* verify.sh: the investigator's check with sha256sum, openssl and base64 alone. */
static const char verify_sh[] =
    "#!/bin/sh\n"
    "# Checks this Vigil export bundle with sha256sum, openssl and base64 alone (README.txt).\n"
    "# Run it from anywhere: sh verify.sh. Exit 0: every file is as the coordinator signed it.\n"
    "set -eu\n"
    "cd \"$(dirname \"$0\")\"\n"
    "fail() { echo \"verify.sh: FAILED: $*\" >&2; exit 1; }\n"
    "for f in MANIFEST MANIFEST.sig coordinator.pem checkpoint.txt; do\n"
    "    [ -f \"$f\" ] || fail \"$f is missing\"\n"
    "done\n"
    "key=$(sed -n 's/^# signing_public_key: //p' MANIFEST)\n"
    "[ -n \"$key\" ] || fail \"MANIFEST names no signing key\"\n"
    "# coordinator.pem must hold that key: its last 32 bytes are the key itself.\n"
    "pem_key=$(openssl pkey -pubin -in coordinator.pem -outform DER | tail -c 32 | base64)\n"
    "[ \"$pem_key\" = \"$key\" ] || fail \"coordinator.pem does not hold the key MANIFEST names\"\n"
    "# 1. The manifest is signed by that key.\n"
    "openssl pkeyutl -verify -pubin -inkey coordinator.pem -rawin -in MANIFEST \\\n"
    "    -sigfile MANIFEST.sig >/dev/null || fail \"MANIFEST's signature does not verify\"\n"
    "# 2. Every file hashes to what the manifest says (the lines starting with # are skipped).\n"
    "sha256sum --strict --quiet -c MANIFEST ||\n"
    "    fail \"the file(s) named above differ from the signed manifest\"\n"
    "# 3. The checkpoint issued for the export is signed by the same key.\n"
    "[ \"$(sed -n 's/^signing_public_key: //p' checkpoint.txt)\" = \"$key\" ] ||\n"
    "    fail \"checkpoint.txt is signed by another key\"\n"
    "tmp=$(mktemp -d)\n"
    "trap 'rm -rf \"$tmp\"' EXIT\n"
    "head -n 11 checkpoint.txt >\"$tmp/checkpoint.msg\"\n"
    "sed -n 's/^signature: //p' checkpoint.txt | base64 -d >\"$tmp/checkpoint.sig\"\n"
    "openssl pkeyutl -verify -pubin -inkey coordinator.pem -rawin -in \"$tmp/checkpoint.msg\" \\\n"
    "    -sigfile \"$tmp/checkpoint.sig\" >/dev/null || fail \"checkpoint.txt's signature does "
    "not verify\"\n"
    "n=$(grep -c '^[0-9a-f]\\{64\\}  ' MANIFEST)\n"
    "echo \"verify.sh: OK: $n files match the manifest; the manifest and the checkpoint are signed "
    "by $key\"\n"
    "echo \"verify.sh: compare that key with the coordinator's key you have on record\"\n";

static void readme(struct text *t, const struct export *x, const char *key_b64, const char *dir)
{
    char exported[40]; /* the export's checkpoint was issued at that moment */
    utc_text(x->cp.issued_at_ms, exported, sizeof(exported));
    text_printf(
        t,
        "Vigil export bundle: incident %" PRIu64 ", exported %s\n"
        "\n"
        "This directory holds what the Vigil coordinator kept about incident %" PRIu64 ",\n"
        "signed by its Ed25519 key:\n"
        "\n"
        "  %s\n"
        "\n"
        "Before trusting anything here, compare that key with the one you have on record for\n"
        "the coordinator (its operators print it with `vigil-coordinator --print-signing-key`).\n"
        "\n"
        "  incident.txt        the incident: title, runbook, severity, state, nodes\n"
        "  timeline.txt        its timeline, one event a line: time, kind, actor, text (tabs)\n"
        "  commands.txt        its commands (id, created, requested by, node, action, arguments,\n"
        "                      mode, state), then their reports (time, command, agent, step,\n"
        "                      exit status, output SHA-256, truncated, reason)\n"
        "  artifacts/          every stored artifact of the incident and of its commands (command\n"
        "                      output included), one file each: ID-KIND-NODE\n"
        "  chains/             the rows the coordinator's hash chains link, byte for byte:\n"
        "                      timeline/SEQ.row and reports/SEQ.row (link = SHA-256(previous link\n"
        "                      || row)), evidence/ID.meta (chain = SHA-256(previous chain ||\n"
        "                      SHA-256(artifact) || meta))\n"
        "  checkpoint.txt      a checkpoint of every chain's head, signed when this bundle was\n"
        "                      made (its format: Vigil's docs/forensics.md)\n"
        "  coordinator.pem     the coordinator's public key, for openssl\n"
        "  MANIFEST            every file's SHA-256 (sha256sum's format) and, on the lines\n"
        "                      starting with '#', the chain links covering the artifacts, the\n"
        "                      timeline rows and the command reports\n"
        "  MANIFEST.sig        the coordinator's Ed25519 signature of MANIFEST (64 bytes)\n"
        "  verify.sh           the steps below as a script (POSIX sh)\n"
        "\n"
        "To check it with sha256sum and openssl alone (Debian's OpenSSL verifies Ed25519), in\n"
        "this directory (%s/):\n"
        "\n"
        "  1. the manifest is the coordinator's:\n"
        "       openssl pkeyutl -verify -pubin -inkey coordinator.pem -rawin -in MANIFEST \\\n"
        "           -sigfile MANIFEST.sig\n"
        "     prints \"Signature Verified Successfully\"; and\n"
        "       openssl pkey -pubin -in coordinator.pem -outform DER | tail -c 32 | base64\n"
        "     prints the key above.\n"
        "  2. every file is what the manifest says:\n"
        "       sha256sum --strict -c MANIFEST\n"
        "     names any file that differs (FAILED) and exits non-zero.\n"
        "  3. the checkpoint is signed by the same key:\n"
        "       head -n 11 checkpoint.txt > checkpoint.msg\n"
        "       sed -n 's/^signature: //p' checkpoint.txt | base64 -d > checkpoint.sig\n"
        "       openssl pkeyutl -verify -pubin -inkey coordinator.pem -rawin \\\n"
        "           -in checkpoint.msg -sigfile checkpoint.sig\n"
        "\n"
        "`sh verify.sh` does the three. `vigilctl evidence verify-bundle FILE.tar` does them too\n"
        "on the tar itself, and also recomputes every chain link the manifest lists from the\n"
        "files (an artifact's vault chain from its bytes) and checks that the links agree with\n"
        "each other and with the checkpoint's heads. The checkpoint's heads can be compared\n"
        "with the coordinator's database later: a chain that no longer holds them was cut or\n"
        "rewritten after this export (`vigilctl evidence verify --checkpoint checkpoint.txt`).\n",
        x->incident_id, exported, x->incident_id, key_b64, dir);
}

/* The manifest: header, links, every file. */
static void manifest(struct text *t, const struct export *x, const char *actor, const char *key)
{
    text_printf(t,
                "# " VG_BUNDLE_MAGIC "\n# incident: %" PRIu64 "\n# exported_at_ms: %" PRId64
                "\n# exported_by: %s\n# signing_public_key: %s\n",
                x->incident_id, x->cp.issued_at_ms, actor, key);
    text_put(t, x->links.data ? x->links.data : "", x->links.len);
    for (size_t i = 0; i < x->nfiles; i++)
        text_printf(t, "%s  %s\n", x->files[i].sha256, x->files[i].path);
}

/* ---- the request ---- */

static void export_error(struct reply *rep, uint64_t id, int r)
{
    if (r == -ENOENT)
        reply_incident_not_found(rep, id);
    else if (r == -E2BIG)
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_BAD_REQUEST,
                    "incident %" PRIu64 " holds more than one bundle can carry (at most %d "
                    "artifacts, timeline rows, reports and commands each, and %d MiB of "
                    "timeline, commands and chain rows)",
                    id, STORE_EXPORT_ROWS_MAX, INLINE_MAX / (1024 * 1024));
    else if (r == -EPROTO)
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_UNAVAILABLE,
                    "incident %" PRIu64 ": an artifact's vault row does not recompute its chain; "
                    "run 'vigilctl evidence verify' to find the broken link",
                    id);
    else if (r == -ENOMEM)
        reply_out_of_memory(rep);
    else
        reply_store_unavailable(rep, false);
}

static void export_incident(admin_t *self, const struct operator* op,
                            const Vigil__AdminRequest *request, struct reply *rep)
{
    uint64_t id = request->export_incident->id;
    char actor[160], cp_text[VG_CHECKPOINT_MAX_LEN], err[256], dir[48];
    struct export *x = reply_own(rep, calloc(1, sizeof(*x)), export_free);
    if (!x)
        return;
    x->incident_id = id;
    admin_actor(op, actor, sizeof(actor));
    snprintf(dir, sizeof(dir), "incident-%" PRIu64, id);

    int r = store_export_incident(self->store, id, incident_cb, x);
    if (r < 0) {
        export_error(rep, id, r);
        return;
    }
    /* The checkpoint first: it links what is committed, and everything read after it is cut at
     * its heads, so the bundle holds nothing it does not cover. */
    r = admin_checkpoint_issue(self, cp_text, sizeof(cp_text));
    if (r == -ENOTSUP) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_UNAVAILABLE, "%s",
                    "this coordinator has no signing key: it cannot sign an export");
        return;
    }
    if (r < 0 || vg_checkpoint_parse(cp_text, strlen(cp_text), &x->cp, err, sizeof(err)) < 0) {
        reply_store_unavailable(rep, false);
        return;
    }
    const struct vg_signing_key *key = &self->checkpoints.key;
    r = store_export_artifacts(self->store, id, x->cp.chains[VG_CHAIN_EVIDENCE].head, artifact_cb,
                               x);
    if (r == 0)
        r = store_export_rows(self->store, "incident_events", id,
                              x->cp.chains[VG_CHAIN_TIMELINE].head, timeline_cb, x);
    if (r == 0) {
        text_printf(&x->commands, "# commands: id, created, requested by, node, action, "
                                  "arguments, mode, state\n");
        r = store_export_commands(self->store, id, command_cb, x);
    }
    if (r == 0) {
        text_printf(&x->commands, "# reports: time, command, agent, step, exit status, output "
                                  "sha256, truncated, reason\n");
        r = store_export_rows(self->store, "command_reports", id,
                              x->cp.chains[VG_CHAIN_REPORTS].head, report_cb, x);
    }
    if (r < 0) {
        export_error(rep, id, r);
        return;
    }

    /* The coordinator's own files, ahead of the chain rows and artifacts in the bundle. */
    struct text readme_text = {0}, manifest_text = {0};
    char pem[VG_BUNDLE_PEM_LEN];
    readme(&readme_text, x, key->public_b64, dir);
    vg_bundle_public_pem(key->public_key, pem);
    size_t first = x->nfiles;
    r = add_text(x, "README.txt", &readme_text);
    if (r == 0)
        r = add_content(x, "verify.sh", verify_sh, strlen(verify_sh));
    if (r == 0)
        r = add_content(x, VG_BUNDLE_PUBLIC_PEM, pem, strlen(pem));
    if (r == 0)
        r = add_content(x, VG_BUNDLE_CHECKPOINT, cp_text, strlen(cp_text));
    if (r == 0)
        r = add_text(x, "incident.txt", &x->incident);
    if (r == 0)
        r = add_text(x, "timeline.txt", &x->timeline);
    if (r == 0)
        r = add_text(x, "commands.txt", &x->commands);
    free(readme_text.data);
    if (r < 0) {
        export_error(rep, id, r);
        return;
    }
    /* Rotate them to the front: people open the bundle at README.txt. */
    size_t ours = x->nfiles - first;
    struct export_file *tmp = malloc((ours ? ours : 1) * sizeof(*tmp));
    if (!tmp) {
        reply_out_of_memory(rep);
        return;
    }
    memcpy(tmp, x->files + first, ours * sizeof(*tmp));
    memmove(x->files + ours, x->files, first * sizeof(*tmp));
    memcpy(x->files, tmp, ours * sizeof(*tmp));
    free(tmp);

    manifest(&manifest_text, x, actor, key->public_b64);
    char *manifest_data = reply_own(rep, manifest_text.data, free);
    if (manifest_text.oom || !manifest_data) {
        if (manifest_text.oom)
            reply_out_of_memory(rep);
        return;
    }
    if (manifest_text.len + x->inline_bytes > INLINE_MAX) {
        export_error(rep, id, -E2BIG);
        return;
    }
    /* What vigilctl will check, checked here first: a manifest that does not parse is a bug. */
    struct vg_bundle_manifest *parsed = NULL;
    if (vg_bundle_manifest_parse(manifest_data, manifest_text.len, &parsed, err, sizeof(err)) < 0) {
        vg_log(VG_LOG_ERROR, "incident=%" PRIu64 " export: own manifest refused: %s", id, err);
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_UNAVAILABLE,
                    "incident %" PRIu64 ": the export's manifest is not valid (%s)", id, err);
        return;
    }
    vg_bundle_manifest_destroy(&parsed);

    uint8_t *sig = reply_own(rep, malloc(VG_SIGNATURE_LEN), free);
    Vigil__ExportBundle *bundle = reply_own(rep, calloc(1, sizeof(*bundle)), free);
    Vigil__BundleFile *files = reply_own(rep, calloc(x->nfiles + 1, sizeof(*files)), free);
    Vigil__BundleFile **file_ptrs =
        reply_own(rep, calloc(x->nfiles + 1, sizeof(Vigil__BundleFile *)), free);
    char *dir_copy = reply_own(rep, strdup(dir), free);
    if (!sig || !bundle || !files || !file_ptrs || !dir_copy)
        return;
    vg_sign_detached(key, manifest_data, manifest_text.len, sig);
    vigil__export_bundle__init(bundle);
    bundle->manifest = manifest_data;
    bundle->manifest_signature.data = sig;
    bundle->manifest_signature.len = VG_SIGNATURE_LEN;
    bundle->directory = dir_copy;
    for (size_t i = 0; i < x->nfiles; i++) {
        Vigil__BundleFile *f = &files[i];
        vigil__bundle_file__init(f);
        f->path = x->files[i].path;
        f->content.data = x->files[i].content;
        f->content.len = x->files[i].content ? x->files[i].len : 0;
        f->evidence_id = x->files[i].evidence_id;
        f->size = x->files[i].size;
        f->sha256 = x->files[i].sha256;
        file_ptrs[i] = f;
    }
    bundle->files = file_ptrs;
    bundle->n_files = x->nfiles;
    rep->msg.export_bundle = bundle;

    /* Chain of custody: who exported which incident, from where, and what they were given. */
    uint8_t digest[VG_SHA256_LEN];
    char manifest_sha[VG_SHA256_HEX_LEN + 1], subject[48], detail[512];
    vg_sha256(manifest_data, manifest_text.len, digest);
    vg_hex(digest, sizeof(digest), manifest_sha);
    snprintf(subject, sizeof(subject), "incident=%" PRIu64, id);
    snprintf(detail, sizeof(detail),
             "files=%zu artifacts=%" PRIu64 " artifact_bytes=%" PRIu64
             " timeline_rows=%zu reports=%zu manifest_sha256=%s checkpoint_ms=%" PRId64 " from=%s",
             x->nfiles, x->artifacts, x->artifact_bytes, x->timeline_rows, x->report_rows,
             manifest_sha, x->cp.issued_at_ms, self->request_peer[0] ? self->request_peer : "-");
    vg_log(VG_LOG_INFO, "incident=%" PRIu64 " exported by operator=%s %s", id, op->name, detail);
    if (store_audit(self->store, actor, "evidence.export", subject, detail) < 0)
        vg_log(VG_LOG_WARN, "incident=%" PRIu64 " exported by %s: not audited (store)", id,
               op->name);
}

static const char *check_export(const Vigil__AdminRequest *req)
{
    uint64_t id = req->export_incident->id;
    return id == 0 || id > INT64_MAX ? "the incident id must be a positive number" : NULL;
}

const struct admin_command admin_export_commands[] = {
    /* Responder, like fetching evidence: the bundle's artifacts follow. */
    {VIGIL__ADMIN_REQUEST__BODY_EXPORT_INCIDENT, ROLE_RESPONDER, "exporting an incident",
     check_export, export_incident},
    {0},
};
