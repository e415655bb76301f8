/*
 * vigilctl collect (--node NODE | --all) KIND [--arg k=v ...]
 * vigilctl evidence [list] [--collection ID] [--node NODE] [--limit N]
 * vigilctl evidence get ID --out FILE|-
 * vigilctl evidence verify [--limit N]
 * vigilctl evidence checkpoint [--out FILE]
 * vigilctl evidence export INCIDENT --out FILE, evidence verify-bundle FILE (cmd_bundle.c)
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "checkpoint.h"
#include "cmd_bundle.h"
#include "ctl_admin.h"
#include "digest.h"
#include "evidence_fetch.h"
#include "evidence_view.h"
#include "timeutil.h"

#define COLLECT_DEFAULT_TIMEOUT_MS 60000
#define COLLECT_MIN_TIMEOUT_MS 1000
#define POLL_INTERVAL_MS 200
#define LIST_MAX 1000

/* ---- talking to the coordinator ---- */

/* One request with its own timeout: 0 with *ret_reply, or a negative errno with err set. */
static int call(struct ctl_context *ctx, Vigil__AdminRequest *req, int64_t timeout_ms,
                const char *what, const char *subject, Vigil__AdminReply **ret_reply, char *err,
                size_t errlen)
{
    const struct ctl_config *cfg;
    Vigil__AdminReply *reply = NULL;

    if (ctl_context_config(ctx, &cfg) != CTL_EXIT_OK) {
        snprintf(err, errlen, "%s", ""); /* already printed */
        return -ENOENT;
    }
    int r = ctl_admin_call(cfg, req, timeout_ms, &reply, err, errlen);
    if (r < 0 || reply == NULL)
        return r < 0 ? r : -EIO;
    r = ctl_admin_status_check(reply, what, subject, err, errlen);
    if (r < 0) {
        vigil__admin_reply__free_unpacked(reply, NULL);
        return r;
    }
    *ret_reply = reply;
    return 0;
}

static void print_call_error(const char *err)
{
    if (err[0] != '\0')
        output_error("%s", err);
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* ---- printing ---- */

static const char *status_name(Vigil__EvidenceStatus status)
{
    switch (status) {
    case VIGIL__EVIDENCE_STATUS__EVIDENCE_PENDING:
        return "pending";
    case VIGIL__EVIDENCE_STATUS__EVIDENCE_STORED:
        return "stored";
    case VIGIL__EVIDENCE_STATUS__EVIDENCE_FAILED:
        return "failed";
    default:
        return "unknown";
    }
}

static json_t *args_json(const Vigil__EvidenceInfo *e)
{
    json_t *obj = json_object();
    for (size_t i = 0; obj != NULL && i < e->n_args; i++) {
        json_t *key = output_json_string(e->args[i]->key);
        if (key == NULL || json_object_set_new(obj, json_string_value(key),
                                               output_json_string(e->args[i]->value)) < 0) {
            json_decref(obj);
            obj = NULL;
        }
        json_decref(key);
    }
    return obj;
}

json_t *evidence_view_json(const Vigil__EvidenceInfo *e)
{
    bool stored = e->status == VIGIL__EVIDENCE_STATUS__EVIDENCE_STORED;
    json_int_t size = e->size > INT64_MAX ? INT64_MAX : (json_int_t)e->size;

    /* clang-format off */
    return json_pack("{s:o, s:I, s:o, s:o, s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:b, s:o}",
                     "id", stored ? json_integer((json_int_t)e->id) : json_null(),
                     "collection_id", (json_int_t)e->collection_id,
                     "node", output_json_string(e->node),
                     "agent_id", output_json_string(e->agent_id),
                     "kind", output_json_string(e->kind),
                     "args", args_json(e),
                     "status", status_name(e->status),
                     "size", stored ? json_integer(size) : json_null(),
                     "sha256", stored ? output_json_string(e->sha256) : json_null(),
                     "collected_at", output_json_time(e->collected_at_ms),
                     "stored_at", output_json_time(e->stored_at_ms),
                     "truncated", e->truncated,
                     "error", e->error[0] ? output_json_string(e->error) : json_null());
    /* clang-format on */
}

static int print_json(Vigil__EvidenceInfo *const *items, size_t n)
{
    json_t *list = json_array();
    if (list == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (json_array_append_new(list, evidence_view_json(items[i])) < 0) {
            json_decref(list);
            return -ENOMEM;
        }
    }
    return output_json_print(&list, stdout);
}

/* collect: the stored artifacts. list: every row, with its status and error. */
int evidence_view_table(Vigil__EvidenceInfo *const *items, size_t n, bool stored_only)
{
    static const char *const collect_headers[] = {"ID", "NODE", "KIND", "SIZE", "SHA256"};
    static const char *const list_headers[] = {"ID",   "COLLECTION", "NODE",      "KIND", "STATUS",
                                               "SIZE", "SHA256",     "COLLECTED", "ERROR"};
    output_table_t *table =
        stored_only ? output_table_new(5, collect_headers) : output_table_new(9, list_headers);
    int64_t now = vg_wall_ms();
    int r = 0;

    if (table == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n && r == 0; i++) {
        const Vigil__EvidenceInfo *e = items[i];
        bool stored = e->status == VIGIL__EVIDENCE_STATUS__EVIDENCE_STORED;
        char id[24], coll[24], size[24], age[32];
        if (stored_only && !stored)
            continue;
        snprintf(id, sizeof(id), "%" PRIu64, e->id);
        snprintf(coll, sizeof(coll), "%" PRIu64, e->collection_id);
        snprintf(size, sizeof(size), "%" PRIu64, e->size);
        output_time_ago(e->collected_at_ms, now, age, sizeof(age));
        if (stored_only) {
            const char *cells[] = {id, e->node, e->kind, size, e->sha256};
            r = output_table_add_row(table, cells);
        } else {
            const char *cells[] = {stored ? id : NULL,
                                   coll,
                                   e->node,
                                   e->kind,
                                   status_name(e->status),
                                   stored ? size : NULL,
                                   stored ? e->sha256 : NULL,
                                   stored ? age : NULL,
                                   e->error[0] ? e->error : NULL};
            r = output_table_add_row(table, cells);
        }
    }
    if (r == 0)
        r = output_table_print(table, stdout);
    output_table_destroy(&table);
    return r;
}

/* ---- collect ---- */

_Static_assert(VG_MAX_EVIDENCE_ARGS <= CTL_MAX_LIST, "every --arg must be kept");

/* The n --arg k=v into labels; false after printing why. */
static bool parse_args(const char *const *args, size_t n, Vigil__Label *labels, Vigil__Label **ptrs,
                       char keys[][VG_MAX_NAME_LEN + 1])
{
    const char *values[VG_MAX_EVIDENCE_ARGS];
    if (!ctl_key_values(args, n, VG_MAX_EVIDENCE_ARGS, keys, values))
        return false;
    for (size_t i = 0; i < n; i++) {
        vigil__label__init(&labels[i]);
        labels[i].key = keys[i];
        labels[i].value = (char *)values[i];
        ptrs[i] = &labels[i];
    }
    return true;
}

/* The target's error; the line that prints it names the node and kind. */
static const char *error_text(const Vigil__EvidenceInfo *e)
{
    return e->error[0] ? e->error : "failed";
}

static bool any_pending(const Vigil__AdminReply *reply)
{
    for (size_t i = 0; i < reply->n_evidence; i++)
        if (reply->evidence[i]->status == VIGIL__EVIDENCE_STATUS__EVIDENCE_PENDING)
            return true;
    return false;
}

/* Polls the collection until no target is pending or the deadline passes. */
static int wait_for_collection(struct ctl_context *ctx, uint64_t collection_id, int64_t deadline,
                               Vigil__AdminReply **reply_p)
{
    char err[1024] = "";

    while (any_pending(*reply_p) && vg_mono_ms() < deadline) {
        sleep_ms(min64(POLL_INTERVAL_MS, deadline - vg_mono_ms()));
        Vigil__ListEvidence body = VIGIL__LIST_EVIDENCE__INIT;
        Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
        Vigil__AdminReply *next = NULL;
        body.collection_id = collection_id;
        req.body_case = VIGIL__ADMIN_REQUEST__BODY_LIST_EVIDENCE;
        req.list_evidence = &body;
        int64_t left = deadline - vg_mono_ms();
        int r = call(ctx, &req, min64(CTL_ADMIN_DEFAULT_TIMEOUT_MS, left > 100 ? left : 100),
                     "list the collection's evidence", NULL, &next, err, sizeof(err));
        if (r == -ETIMEDOUT)
            continue; /* the coordinator is busy or restarting: keep asking until the deadline */
        if (r < 0) {
            print_call_error(err);
            return CTL_EXIT_FAILURE;
        }
        vigil__admin_reply__free_unpacked(*reply_p, NULL);
        *reply_p = next;
    }
    return CTL_EXIT_OK;
}

static int run_collect(struct ctl_context *ctx, const struct ctl_args *args)
{
    const char *node = ctl_args_value(args, "node");
    bool all = ctl_args_has(args, "all");
    const char *const *arg_values = NULL;
    size_t nargs = ctl_args_list(args, "arg", &arg_values);
    Vigil__Label labels[VG_MAX_EVIDENCE_ARGS];
    Vigil__Label *ptrs[VG_MAX_EVIDENCE_ARGS];
    char keys[VG_MAX_EVIDENCE_ARGS][VG_MAX_NAME_LEN + 1];
    char err[1024] = "";

    if (args->argc == 0) {
        output_error("collect needs a KIND; try 'vigilctl help collect'");
        return CTL_EXIT_USAGE;
    }
    if (args->argc > 1) {
        output_error("collect takes one KIND (got \"%s\" too)", args->argv[1]);
        return CTL_EXIT_USAGE;
    }
    /* promql is captured by the coordinator from Prometheus, not from a node. */
    bool promql = strcmp(args->argv[0], "promql") == 0;
    if (promql && (node != NULL || all)) {
        output_error("collect promql asks Prometheus through the coordinator: it takes neither "
                     "--node nor --all");
        return CTL_EXIT_USAGE;
    }
    if (!promql && (node != NULL) == all) {
        output_error("collect needs --node NODE or --all (one of them)");
        return CTL_EXIT_USAGE;
    }
    if (node != NULL && (node[0] == '\0' || strlen(node) > VG_MAX_NAME_LEN)) {
        output_error("--node must be 1 to %d bytes", VG_MAX_NAME_LEN);
        return CTL_EXIT_USAGE;
    }
    if (!parse_args(arg_values, nargs, labels, ptrs, keys))
        return CTL_EXIT_USAGE;
    int64_t timeout = ctx->timeout_given ? ctx->timeout_ms : COLLECT_DEFAULT_TIMEOUT_MS;
    if (timeout < COLLECT_MIN_TIMEOUT_MS) {
        output_error("collect --timeout must be at least 1s: agents need time to answer");
        return CTL_EXIT_USAGE;
    }
    int64_t deadline = vg_mono_ms() + timeout;

    Vigil__Collect body = VIGIL__COLLECT__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__AdminReply *reply = NULL;
    body.node = node != NULL ? (char *)node : "";
    body.all = all;
    body.kind = args->argv[0];
    body.args = ptrs;
    body.n_args = nargs;
    /* The coordinator gives up a little before we do, so our last look finds its verdict
     * ("timed out") rather than a target still pending. */
    body.timeout_ms = (uint32_t)(timeout - timeout / 10);
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_COLLECT;
    req.collect = &body;
    int r = call(ctx, &req, min64(CTL_ADMIN_DEFAULT_TIMEOUT_MS, timeout), "collect evidence", NULL,
                 &reply, err, sizeof(err));
    if (r < 0) {
        print_call_error(err);
        return CTL_EXIT_FAILURE;
    }
    uint64_t collection_id = reply->collection_id;
    r = wait_for_collection(ctx, collection_id, deadline, &reply);
    if (r != CTL_EXIT_OK) {
        vigil__admin_reply__free_unpacked(reply, NULL);
        return r;
    }

    /* Every target that did not deliver: one line each on stderr. */
    int status = CTL_EXIT_OK;
    size_t stored = 0;
    for (size_t i = 0; i < reply->n_evidence; i++) {
        const Vigil__EvidenceInfo *e = reply->evidence[i];
        if (e->status == VIGIL__EVIDENCE_STATUS__EVIDENCE_STORED) {
            stored++;
            continue;
        }
        status = CTL_EXIT_PARTIAL;
        if (e->status == VIGIL__EVIDENCE_STATUS__EVIDENCE_PENDING)
            output_error("%s: %s: no artifact within %" PRId64 "s (collection %" PRIu64
                         " goes on; see 'vigilctl evidence list --collection %" PRIu64 "')",
                         e->node, e->kind, timeout / 1000, collection_id, collection_id);
        else
            output_error("%s: %s: %s", e->node, e->kind, error_text(e));
    }
    if (ctx->format == OUTPUT_JSON)
        r = print_json(reply->evidence, reply->n_evidence);
    else if (stored > 0) /* nothing stored: the lines on stderr say it all */
        r = evidence_view_table(reply->evidence, reply->n_evidence, true);
    vigil__admin_reply__free_unpacked(reply, NULL);
    if (r < 0) {
        output_error("cannot write the result: %s", strerror(-r));
        return CTL_EXIT_FAILURE;
    }
    return status;
}

/* ---- evidence list ---- */

static bool parse_u64(const char *text, uint64_t max, uint64_t *ret)
{
    char *end = NULL;
    if (text == NULL || text[0] < '0' || text[0] > '9')
        return false;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || v == 0 || v > max)
        return false;
    *ret = v;
    return true;
}

static int evidence_list(struct ctl_context *ctx, const struct ctl_args *args, int argc,
                         char **argv)
{
    const char *collection_text = ctl_args_value(args, "collection");
    const char *limit_text = ctl_args_value(args, "limit");
    const char *node = ctl_args_value(args, "node");
    Vigil__ListEvidence body = VIGIL__LIST_EVIDENCE__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__AdminReply *reply = NULL;
    uint64_t collection = 0, limit = 0;

    if (argc > 0) {
        output_error("evidence list takes no arguments (got \"%s\"); filter with --collection, "
                     "--node and --limit",
                     argv[0]);
        return CTL_EXIT_USAGE;
    }
    if (collection_text != NULL && !parse_u64(collection_text, INT64_MAX, &collection)) {
        output_error("--collection must be a collection id, a positive number (got \"%s\")",
                     collection_text);
        return CTL_EXIT_USAGE;
    }
    if (limit_text != NULL && !parse_u64(limit_text, LIST_MAX, &limit)) {
        output_error("--limit must be between 1 and %d (got \"%s\")", LIST_MAX, limit_text);
        return CTL_EXIT_USAGE;
    }
    if (node != NULL && (node[0] == '\0' || strlen(node) > VG_MAX_NAME_LEN)) {
        output_error("--node must be 1 to %d bytes", VG_MAX_NAME_LEN);
        return CTL_EXIT_USAGE;
    }
    body.collection_id = collection;
    body.node = node != NULL ? (char *)node : "";
    body.limit = (uint32_t)limit;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_LIST_EVIDENCE;
    req.list_evidence = &body;
    int r = ctl_admin_request(ctx, &req, "list evidence", NULL, &reply);
    if (r != CTL_EXIT_OK)
        return r;
    r = ctx->format == OUTPUT_JSON ? print_json(reply->evidence, reply->n_evidence)
                                   : evidence_view_table(reply->evidence, reply->n_evidence, false);
    vigil__admin_reply__free_unpacked(reply, NULL);
    if (r < 0) {
        output_error("cannot write the evidence list: %s", strerror(-r));
        return CTL_EXIT_FAILURE;
    }
    return CTL_EXIT_OK;
}

/* ---- evidence get ---- */

static int write_all(int fd, const uint8_t *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* evidence get's end of the fetch: the bytes into the output file (or standard output). */
struct out_file {
    int fd;
    const char *subject;
    bool flush;       /* a file of our own, fsync'ed at the end: write it back as it grows */
    uint64_t written; /* bytes so far */
};

static int write_out(void *userdata, const uint8_t *data, size_t len)
{
    struct out_file *out = userdata;
    int r = write_all(out->fd, data, len);
    if (r < 0) {
        output_error("%s: cannot write: %s", out->subject, strerror(-r));
        return r;
    }
    /* Start writing these pages back now, not all at the final fsync: the disk works while the
     * next pieces arrive. A hint: the fsync still decides, so its failure is ignored here. */
    if (out->flush)
        (void)sync_file_range(out->fd, (off_t)out->written, (off_t)len, SYNC_FILE_RANGE_WRITE);
    out->written += len;
    return 0;
}

/* Fetches the artifact into fd on a session of its own (evidence_fetch.h), hashing as it
 * writes, and checks the hash: 0, or a negative errno after printing why. */
static int fetch(struct ctl_context *ctx, uint64_t id, int fd, const char *subject,
                 uint64_t *ret_size, char ret_sha[VG_SHA256_HEX_LEN + 1])
{
    const struct ctl_config *cfg;
    ctl_admin_session_t *session = NULL;
    char err[1024] = "";

    if (ctl_context_config(ctx, &cfg) != CTL_EXIT_OK)
        return -ENOENT; /* already printed */
    int r = ctl_admin_session_open(cfg, ctx->timeout_ms, &session, err, sizeof(err));
    if (r < 0) {
        output_error("%s", err);
        return r;
    }
    struct out_file out = {.fd = fd, .subject = subject, .flush = fd != STDOUT_FILENO};
    const struct evidence_fetch_target target = {
        .id = id, .subject = subject, .write = write_out, .userdata = &out};
    r = evidence_fetch_artifact(session, ctx->timeout_ms, &target, ret_size, ret_sha);
    ctl_admin_session_destroy(&session);
    return r;
}

static int evidence_get(struct ctl_context *ctx, const struct ctl_args *args, int argc, char **argv)
{
    const char *out_path = ctl_args_value(args, "out");
    uint64_t id = 0, size = 0;
    char subject[48], sha[VG_SHA256_HEX_LEN + 1] = "";

    if (argc != 1 || !parse_u64(argv[0], INT64_MAX, &id)) {
        output_error("usage: vigilctl evidence get ID --out FILE (ID as 'vigilctl evidence list' "
                     "shows it)");
        return CTL_EXIT_USAGE;
    }
    if (out_path == NULL || out_path[0] == '\0') {
        output_error("evidence get needs --out FILE (or --out - for standard output)");
        return CTL_EXIT_USAGE;
    }
    snprintf(subject, sizeof(subject), "evidence %" PRIu64, id);
    bool to_stdout = strcmp(out_path, "-") == 0;
    /* Never over an existing file: a failed fetch removes what it wrote, and only that. */
    int fd =
        to_stdout ? STDOUT_FILENO : open(out_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        output_error("cannot create %s: %s%s", out_path, strerror(errno),
                     errno == EEXIST ? " (an existing file is never overwritten)" : "");
        return CTL_EXIT_FAILURE;
    }
    int r = fetch(ctx, id, fd, subject, &size, sha);
    if (!to_stdout) {
        if (r == 0 && fsync(fd) < 0)
            r = -errno;
        if (close(fd) < 0 && r == 0)
            r = -errno;
        if (r < 0) {
            unlink(out_path);
            output_error("%s: %s removed; nothing was kept", subject, out_path);
            return CTL_EXIT_FAILURE;
        }
    } else if (r < 0) {
        output_error("%s: what was written to standard output is incomplete or wrong; discard it",
                     subject);
        return CTL_EXIT_FAILURE;
    }
    if (to_stdout)
        return CTL_EXIT_OK;
    if (ctx->format == OUTPUT_JSON) {
        json_t *doc =
            json_pack("{s:I, s:I, s:s, s:o}", "id", (json_int_t)id, "size", (json_int_t)size,
                      "sha256", sha, "path", output_json_string(out_path));
        r = output_json_print(&doc, stdout);
    } else {
        r = printf("evidence %" PRIu64 ": %" PRIu64 " bytes, sha256 %s verified, written to %s\n",
                   id, size, sha, out_path) < 0
                ? -EIO
                : 0;
    }
    if (r < 0) {
        output_error("cannot write the output");
        return CTL_EXIT_FAILURE;
    }
    return CTL_EXIT_OK;
}

/* ---- evidence verify ---- */

/* One chain other than the vault's, as the walk's last step reported it. */
struct chain_line {
    char name[16], reason[256];
    uint64_t rows, broken_at, head;
    bool ok;
};

/* The walk's totals over all requests, and where it ended. */
struct verify_total {
    uint64_t checked, bytes;
    uint64_t removed; /* of checked: content removed by retention */
    bool ok;
    uint64_t broken_id;
    char reason[256];
    uint64_t last_id; /* the last row found intact (0 = none) and its chain hash: a copy kept */
    char last_chain[VG_SHA256_HEX_LEN + 1]; /* elsewhere shows later whether the tail was cut */
    bool checkpoint_ok; /* --checkpoint: the vault still holds what it signed */
    uint64_t checkpoint_broken_id;
    char checkpoint_reason[512];
    struct chain_line chains[VG_CHAINS]; /* the other chains, as the last step reported them */
    size_t nchains;
    bool chains_ok;
};

/* How each chain is named in the verdict's lines. */
static const char *chain_title(const char *name)
{
    return strcmp(name, "audit") == 0      ? "audit log"
           : strcmp(name, "timeline") == 0 ? "incident timelines"
           : strcmp(name, "reports") == 0  ? "command reports"
                                           : name;
}

/*
 * Asks the coordinator to walk the vault, one time slice per request, each going on after the
 * last row the one before found intact (its id and chain hash), until the end or a broken link.
 * 0 with *ret filled, or a negative errno after printing why.
 */
static int verify_walk(struct ctl_context *ctx, uint32_t per_request, const char *checkpoint,
                       struct verify_total *ret)
{
    uint64_t after_id = 0;
    uint8_t after_chain[VG_SHA256_LEN];
    char err[1024] = "";

    memset(ret, 0, sizeof(*ret));
    for (;;) {
        Vigil__VerifyEvidence body = VIGIL__VERIFY_EVIDENCE__INIT;
        Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
        Vigil__AdminReply *reply = NULL;
        body.after_id = after_id;
        if (after_id != 0) {
            body.after_chain.data = after_chain;
            body.after_chain.len = sizeof(after_chain);
        }
        body.max_artifacts = per_request;
        body.checkpoint = (char *)(checkpoint ? checkpoint : "");
        req.body_case = VIGIL__ADMIN_REQUEST__BODY_VERIFY_EVIDENCE;
        req.verify_evidence = &body;
        int r = call(ctx, &req, ctx->timeout_ms, "verify the evidence vault", NULL, &reply, err,
                     sizeof(err));
        if (r < 0) {
            print_call_error(err);
            return r;
        }
        const Vigil__EvidenceVerifyResult *v = reply->evidence_verify;
        /* A step that neither ends the walk nor moves it on would ask the same forever. */
        bool sane = v != NULL && v->last_chain.len == VG_SHA256_LEN &&
                    (v->ok ? v->done || (v->checked > 0 && v->last_id > after_id)
                           : v->broken_id > after_id);
        if (!sane) {
            vigil__admin_reply__free_unpacked(reply, NULL);
            output_error("verify the evidence vault: the coordinator's answer is missing or "
                         "does not move on (after evidence %" PRIu64 ")",
                         after_id);
            return -EPROTO;
        }
        ret->checked += v->checked;
        ret->bytes += v->bytes;
        ret->removed += v->removed;
        ret->ok = v->ok;
        bool last = !v->ok || v->done;
        if (!v->ok) {
            ret->broken_id = v->broken_id;
            snprintf(ret->reason, sizeof(ret->reason), "%s", v->reason);
        }
        if (v->done) {
            ret->chains_ok = true;
            for (size_t c = 0; c < v->n_chains && ret->nchains < VG_CHAINS; c++) {
                const Vigil__ChainVerdict *cv = v->chains[c];
                struct chain_line *out = &ret->chains[ret->nchains++];
                snprintf(out->name, sizeof(out->name), "%s", cv->name);
                snprintf(out->reason, sizeof(out->reason), "%s", cv->reason);
                out->rows = cv->rows;
                out->broken_at = cv->broken_at;
                out->head = cv->head;
                out->ok = cv->ok;
                ret->chains_ok = ret->chains_ok && cv->ok;
            }
            ret->checkpoint_ok = v->checkpoint_ok;
            ret->checkpoint_broken_id = v->checkpoint_broken_id;
            snprintf(ret->checkpoint_reason, sizeof(ret->checkpoint_reason), "%s",
                     v->checkpoint_reason);
        }
        after_id = v->last_id;
        memcpy(after_chain, v->last_chain.data, sizeof(after_chain));
        ret->last_id = after_id;
        vg_hex(after_chain, sizeof(after_chain), ret->last_chain);
        vigil__admin_reply__free_unpacked(reply, NULL);
        if (last)
            return 0;
    }
}

/* A checkpoint file into text (NUL-terminated), checked here first so a damaged or foreign file
 * is named before any walk. 0, or -1 after printing why. */
static int read_checkpoint(const char *path, char *text, size_t size)
{
    char err[256];
    struct vg_checkpoint cp;
    FILE *f = fopen(path, "re");
    if (!f) {
        output_error("--checkpoint %s: %s", path, strerror(errno));
        return -1;
    }
    size_t n = fread(text, 1, size - 1, f);
    bool more = fgetc(f) != EOF;
    fclose(f);
    text[n] = '\0';
    if (more || strlen(text) != n) {
        output_error("--checkpoint %s: not a checkpoint (over %d bytes, or binary)", path,
                     VG_CHECKPOINT_MAX_LEN);
        return -1;
    }
    if (vg_checkpoint_parse(text, n, &cp, err, sizeof(err)) < 0) {
        output_error("--checkpoint %s: %s", path, err);
        return -1;
    }
    return 0;
}

static int evidence_verify(struct ctl_context *ctx, const struct ctl_args *args, int argc,
                           char **argv)
{
    const char *limit_text = ctl_args_value(args, "limit");
    const char *checkpoint_path = ctl_args_value(args, "checkpoint");
    char checkpoint[VG_CHECKPOINT_MAX_LEN + 1] = "";
    uint64_t per_request = 0;
    struct verify_total total;

    if (argc > 0) {
        output_error("evidence verify takes no arguments (got \"%s\")", argv[0]);
        return CTL_EXIT_USAGE;
    }
    if (ctl_args_has(args, "collection") || ctl_args_has(args, "node") ||
        ctl_args_has(args, "out")) {
        output_error("evidence verify checks the whole vault and prints a verdict: --collection, "
                     "--node and --out do not apply");
        return CTL_EXIT_USAGE;
    }
    if (limit_text != NULL && !parse_u64(limit_text, UINT32_MAX, &per_request)) {
        output_error("--limit must be a number of artifacts per request, at least 1 (got \"%s\")",
                     limit_text);
        return CTL_EXIT_USAGE;
    }
    if (checkpoint_path && read_checkpoint(checkpoint_path, checkpoint, sizeof(checkpoint)) < 0)
        return CTL_EXIT_FAILURE;
    if (verify_walk(ctx, (uint32_t)per_request, checkpoint, &total) < 0)
        return CTL_EXIT_FAILURE;
    /* The chain intact but the checkpoint not held: the tail was cut or rewritten. */
    bool held = !checkpoint[0] || !total.ok || total.checkpoint_ok;
    int r;
    if (ctx->format == OUTPUT_JSON) {
        /* clang-format off */
        json_t *doc = json_pack("{s:I, s:I, s:b, s:o, s:o, s:o, s:s}",
                                "checked", (json_int_t)total.checked,
                                "bytes", (json_int_t)total.bytes,
                                "ok", total.ok,
                                "broken_id", total.ok ? json_null()
                                                      : json_integer((json_int_t)total.broken_id),
                                "reason", total.ok ? json_null() : output_json_string(total.reason),
                                "last_id", total.last_id ? json_integer((json_int_t)total.last_id)
                                                         : json_null(),
                                "last_chain", total.last_chain);
        /* clang-format on */
        if (doc)
            json_object_set_new(doc, "removed", json_integer((json_int_t)total.removed));
        json_t *chains = json_array();
        for (size_t c = 0; doc && chains && c < total.nchains; c++)
            json_array_append_new(
                chains, json_pack("{s:s, s:I, s:b, s:o, s:o, s:I}", "name", total.chains[c].name,
                                  "rows", (json_int_t)total.chains[c].rows, "ok",
                                  total.chains[c].ok, "broken_at",
                                  total.chains[c].ok ? json_null()
                                                     : json_integer((json_int_t)total.chains[c].broken_at),
                                  "reason",
                                  total.chains[c].ok ? json_null()
                                                     : output_json_string(total.chains[c].reason),
                                  "head", (json_int_t)total.chains[c].head));
        if (doc)
            json_object_set_new(doc, "chains", chains);
        else
            json_decref(chains);
        if (doc && checkpoint[0] && total.ok)
            json_object_set_new(doc, "checkpoint",
                                json_pack("{s:b, s:o, s:o}", "held", total.checkpoint_ok,
                                          "broken_id", total.checkpoint_broken_id
                                              ? json_integer((json_int_t)total.checkpoint_broken_id)
                                              : json_null(),
                                          "reason", total.checkpoint_ok
                                              ? json_null()
                                              : output_json_string(total.checkpoint_reason)));
        r = output_json_print(&doc, stdout);
    } else if (total.ok && !held) {
        char reason[sizeof(total.checkpoint_reason)];
        output_sanitize(total.checkpoint_reason, reason, sizeof(reason));
        r = printf("evidence vault: %" PRIu64 " artifacts, chain intact, but the checkpoint is "
                   "not held: %s\n",
                   total.checked, reason) < 0
                ? -EIO
                : 0;
    } else if (total.ok) {
        char removed[96] = "";
        if (total.removed)
            snprintf(removed, sizeof(removed), " (%" PRIu64 " with content removed by retention)",
                     total.removed);
        r = printf("evidence vault: %" PRIu64 " artifacts%s, %" PRIu64 " bytes, chain intact%s\n",
                   total.checked, removed, total.bytes, checkpoint[0] ? ", checkpoint held" : "") < 0
                ? -EIO
                : 0;
    } else {
        char reason[sizeof(total.reason)];
        output_sanitize(total.reason, reason, sizeof(reason));
        r = printf("evidence vault: chain broken at evidence %" PRIu64 ": %s\n", total.broken_id,
                   reason) < 0
                ? -EIO
                : 0;
    }
    for (size_t c = 0; r == 0 && ctx->format != OUTPUT_JSON && c < total.nchains; c++) {
        char reason[sizeof(total.chains[c].reason)];
        output_sanitize(total.chains[c].reason, reason, sizeof(reason));
        if (total.chains[c].ok)
            r = printf("%s: %" PRIu64 " rows, chain intact\n", chain_title(total.chains[c].name),
                       total.chains[c].rows) < 0
                    ? -EIO
                    : 0;
        else
            r = printf("%s: chain broken at place %" PRIu64 ": %s\n",
                       chain_title(total.chains[c].name), total.chains[c].broken_at, reason) < 0
                    ? -EIO
                    : 0;
    }
    if (r < 0) {
        output_error("cannot write the result");
        return CTL_EXIT_FAILURE;
    }
    bool chains_ok = !total.ok || total.chains_ok;
    return total.ok && held && chains_ok ? CTL_EXIT_OK : CTL_EXIT_FAILURE;
}

/* ---- evidence checkpoint ---- */

static int evidence_checkpoint(struct ctl_context *ctx, const struct ctl_args *args, int argc,
                               char **argv)
{
    const char *out_path = ctl_args_value(args, "out");
    Vigil__GetCheckpoint body = VIGIL__GET_CHECKPOINT__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__AdminReply *reply = NULL;
    char err[1024] = "";
    struct vg_checkpoint cp;

    if (argc > 0) {
        output_error("evidence checkpoint takes no arguments (got \"%s\")", argv[0]);
        return CTL_EXIT_USAGE;
    }
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_GET_CHECKPOINT;
    req.get_checkpoint = &body;
    if (call(ctx, &req, ctx->timeout_ms, "issue a checkpoint", NULL, &reply, err, sizeof(err)) <
        0) {
        print_call_error(err);
        return CTL_EXIT_FAILURE;
    }
    /* What is kept must verify: checked here before it is written anywhere. */
    const char *text = reply->checkpoint ? reply->checkpoint : "";
    if (vg_checkpoint_parse(text, strlen(text), &cp, err, sizeof(err)) < 0) {
        vigil__admin_reply__free_unpacked(reply, NULL);
        output_error("the coordinator's checkpoint does not verify: %s", err);
        return CTL_EXIT_FAILURE;
    }
    int fd = STDOUT_FILENO;
    if (out_path && strcmp(out_path, "-") != 0)
        fd = open(out_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    size_t len = strlen(text);
    bool ok = fd >= 0 && write(fd, text, len) == (ssize_t)len;
    if (fd >= 0 && fd != STDOUT_FILENO && close(fd) < 0)
        ok = false;
    if (!ok)
        output_error("cannot write the checkpoint to %s: %s", out_path ? out_path : "stdout",
                     strerror(errno));
    vigil__admin_reply__free_unpacked(reply, NULL);
    return ok ? CTL_EXIT_OK : CTL_EXIT_FAILURE;
}

static int run_evidence(struct ctl_context *ctx, const struct ctl_args *args)
{
    int argc = args->argc;
    char **argv = args->argv;

    if (argc == 0 || strcmp(argv[0], "list") == 0)
        return evidence_list(ctx, args, argc > 0 ? argc - 1 : 0, argv + (argc > 0));
    if (strcmp(argv[0], "get") == 0)
        return evidence_get(ctx, args, argc - 1, argv + 1);
    if (strcmp(argv[0], "verify") == 0)
        return evidence_verify(ctx, args, argc - 1, argv + 1);
    if (strcmp(argv[0], "checkpoint") == 0)
        return evidence_checkpoint(ctx, args, argc - 1, argv + 1);
    if (strcmp(argv[0], "export") == 0)
        return ctl_evidence_export(ctx, ctl_args_value(args, "out"), argc - 1, argv + 1);
    if (strcmp(argv[0], "verify-bundle") == 0)
        return ctl_evidence_verify_bundle(ctx, argc - 1, argv + 1);
    output_error("unknown evidence command \"%s\" (expected list, get, verify, checkpoint, "
                 "export or verify-bundle)",
                 argv[0]);
    return CTL_EXIT_USAGE;
}

/* ---- the command table ---- */

static const char collect_help[] =
    "Usage: vigilctl collect (--node NODE | --all) KIND [--arg KEY=VALUE ...]\n"
    "                        [--timeout DURATION] [-o table|json]\n"
    "       vigilctl collect promql --arg query=EXPR [--timeout DURATION]\n"
    "\n"
    "Asks agents for an artifact now, waits until each has answered, and prints what was\n"
    "stored: ID NODE KIND SIZE SHA256. Each agent hashes (SHA-256) what it reads; the\n"
    "coordinator hashes the bytes it received again and stores the artifact only if both\n"
    "agree. Fetch one with 'vigilctl evidence get ID --out FILE'.\n"
    "\n"
    "  KIND              netstat, processes, host, log_tail, file, postgres, redis,\n"
    "                    kubernetes (the cluster agent: target=NAME) or flight (the\n"
    "                    node's flight recorder: the last minutes of sockets, processes\n"
    "                    and log lines); promql (query=EXPR: the coordinator asks its\n"
    "                    Prometheus and stores the query, the time, the URL and the raw\n"
    "                    answer; no --node or --all)\n"
    "  --node NODE       the active agents of this node\n"
    "  --all             every active agent\n"
    "  --arg KEY=VALUE   an argument for the kind, up to 16: file needs path=/abs/path\n"
    "                    (inside the agent's evidence.allow_dirs); log_tail takes name=\n"
    "                    (a log the agent tails) and lines=N. Each key once.\n"
    "  --timeout D       how long to wait for the agents (default 60s, at least 1s); a\n"
    "                    target still without an artifact then counts as failed\n"
    "\n"
    "Every target that delivered nothing is one line on stderr, such as\n"
    "  vigilctl: node-a: file: path /etc/shadow is outside the allowed directories\n"
    "\n"
    "With -o json: an array with one object per agent asked\n"
    "  {\"id\": 12, \"collection_id\": 7, \"node\": \"...\", \"agent_id\": \"ag-...\",\n"
    "   \"kind\": \"file\", \"args\": {\"path\": \"...\"}, \"status\": \"stored\" | \"failed\" "
    "|\n"
    "   \"pending\", \"size\": 5242880, \"sha256\": \"<64 hex>\", \"collected_at\": \"...\",\n"
    "   \"stored_at\": \"...\", \"truncated\": false, \"error\": null}\n"
    "id, size and sha256 are null unless stored; error says why a target failed.\n"
    "\n"
    "Exit status: 0 every agent's artifact is stored; 3 some agent delivered nothing\n"
    "(refused, failed, hash mismatch or timed out; the others' artifacts are printed);\n"
    "1 the request itself failed (unknown kind, no active agent on the node, ...).\n"
    "Needs the responder role. Needs the configuration file (see 'vigilctl help').\n";

static const char evidence_help[] =
    "Usage: vigilctl evidence [list] [--collection ID] [--node NODE] [--limit N]\n"
    "       vigilctl evidence get ID --out FILE\n"
    "       vigilctl evidence verify [--limit N] [--checkpoint FILE] [-o table|json]\n"
    "       vigilctl evidence checkpoint [--out FILE]\n"
    "       vigilctl evidence export INCIDENT --out FILE\n"
    "       vigilctl evidence verify-bundle FILE [-o table|json]\n"
    "\n"
    "  evidence [list]   the latest stored artifacts, newest first (--limit N, default 50,\n"
    "                    at most 1000): ID COLLECTION NODE KIND STATUS SIZE SHA256\n"
    "                    COLLECTED ERROR. With --collection ID: every agent that\n"
    "                    collection asked, with its status (pending, stored, failed) and\n"
    "                    error. --node NODE keeps one node's rows. -o json prints the\n"
    "                    objects 'vigilctl help collect' describes.\n"
    "  get ID --out FILE fetch an artifact's bytes into FILE (created with mode 0600; an\n"
    "                    existing file is never overwritten; --out - writes to standard\n"
    "                    output). The bytes are hashed as they arrive: if they do not hash\n"
    "                    to the SHA-256 the vault recorded, FILE is removed and the command\n"
    "                    fails.\n"
    "  verify            check the whole vault, oldest first: every artifact's content is\n"
    "                    re-hashed from its stored chunks against its size and SHA-256, and\n"
    "                    every chain link recomputed. Prints\n"
    "                      evidence vault: N artifacts, B bytes, chain intact\n"
    "                    and exits 0, or names the first broken link and exits 1:\n"
    "                      evidence vault: chain broken at evidence ID: REASON\n"
    "                    (the artifact whose content or row was changed, or the row after\n"
    "                    a deleted one). An error talking to the coordinator exits 1 too.\n"
    "                    An artifact whose content retention.evidence removed keeps its row\n"
    "                    and link; it counts as intact when its removal is recorded and\n"
    "                    audited (\"N artifacts (K with content removed by retention)\").\n"
    "                    The coordinator checks in steps of a quarter second so ingest goes\n"
    "                    on; --limit N caps the artifacts per step, --timeout is per step.\n"
    "                    -o json: {\"checked\": N, \"bytes\": B, \"ok\": true|false,\n"
    "                    \"broken_id\": ID|null, \"reason\": \"...\"|null,\n"
    "                    \"last_id\": ID|null, \"last_chain\": \"<64 hex>\"}: the last\n"
    "                    intact row and its chain hash. Keep them elsewhere: deleting\n"
    "                    the newest rows breaks no link, but changes the last one.\n"
    "                    Also \"chains\": [{\"name\": \"audit\"|\"timeline\"|\"reports\",\n"
    "                    \"rows\", \"ok\", \"broken_at\", \"reason\", \"head\"}] and, with\n"
    "                    --checkpoint, \"checkpoint\": {\"held\", \"broken_id\", \"reason\"}.\n"
    "                    Then the audit log's, the incident timelines' and the command\n"
    "                    reports' chains, one line each (\"audit log: N rows, chain\n"
    "                    intact\", or the place that breaks it; exit 1).\n"
    "                    --checkpoint FILE: also check that every chain still holds the\n"
    "                    head FILE signed (this coordinator's key); a deleted or\n"
    "                    rewritten tail fails with\n"
    "                      evidence vault: N artifacts, chain intact, but the checkpoint\n"
    "                      is not held: REASON\n"
    "  checkpoint        a checkpoint of every chain's head now, signed by the coordinator\n"
    "                    (also written to its state_dir/checkpoints/): keep it off the\n"
    "                    machine. Printed, or with --out FILE written (mode 0600, never\n"
    "                    overwritten). Format and openssl check: docs/forensics.md.\n"
    "  export INCIDENT --out FILE\n"
    "                    write the incident's bundle for an investigator: a tar (mode\n"
    "                    0600, never over an existing file) of one directory,\n"
    "                    incident-ID/, holding every stored artifact of the incident and\n"
    "                    of its commands, its timeline, its commands with their reports,\n"
    "                    the chain rows that link them, a checkpoint issued for the\n"
    "                    export, the coordinator's public key, a MANIFEST of every\n"
    "                    file's SHA-256 and chain link signed by the coordinator\n"
    "                    (MANIFEST.sig), a README.txt and verify.sh, which checks it\n"
    "                    all with sha256sum and openssl alone. Artifacts are fetched in\n"
    "                    pages and hashed as they are written; a mismatch or any failure\n"
    "                    removes FILE. Audited (evidence.export, with the address it came\n"
    "                    from); each artifact fetched is an evidence.get row too.\n"
    "  verify-bundle FILE\n"
    "                    check a bundle offline, no coordinator needed: the manifest's\n"
    "                    signature, every file's SHA-256, the checkpoint's signature,\n"
    "                    and every chain link recomputed from the files and held against\n"
    "                    the checkpoint's heads. Exit 0 and a summary naming the signing\n"
    "                    key (compare it with the one on record); exit 1 naming the\n"
    "                    first file that fails, e.g.\n"
    "                      vigilctl: b.tar: incident-7/artifacts/12-host-web-1: SHA-256\n"
    "                      ... differs from the manifest's: the file was changed\n"
    "                    -o json: {\"ok\", \"file\", \"error\", \"incident\", \"files\",\n"
    "                    \"artifacts\", \"evidence_links\", \"timeline_links\",\n"
    "                    \"report_links\", \"signing_public_key\"}.\n"
    "\n"
    "Listing and checkpoint need the viewer role; get, verify and export the responder role.\n"
    "Needs the configuration file (see 'vigilctl help'), except verify-bundle.\n";

const struct ctl_command cmd_evidence_table[] = {
    {
        .name = "collect",
        .forms = {{"collect (--node NODE | --all) KIND [--arg KEY=VALUE ...]",
                   "ask agents for an artifact now and wait for it"}},
        .help = collect_help,
        .options = {{"node", CTL_OPTION_VALUE}, {"all", CTL_OPTION_FLAG}, {"arg", CTL_OPTION_LIST}},
        .run = run_collect,
    },
    {
        .name = "evidence",
        .forms = {{"evidence [list] [--collection ID] [--node NODE] [--limit N]",
                   "stored artifacts, or one collection's outcome per agent"},
                  {"evidence get ID --out FILE", "fetch an artifact, checking its SHA-256"},
                  {"evidence verify [--checkpoint FILE]",
                   "re-hash the vault and check its chain; exit 1 if broken"},
                  {"evidence checkpoint [--out FILE]", "a signed checkpoint of every chain's head"},
                  {"evidence export INCIDENT --out FILE",
                   "a signed, offline-verifiable bundle of an incident's evidence"},
                  {"evidence verify-bundle FILE", "check an export bundle offline; exit 1 naming "
                                                  "the file that fails"}},
        .help = evidence_help,
        .options = {{"collection", CTL_OPTION_VALUE},
                    {"node", CTL_OPTION_VALUE},
                    {"limit", CTL_OPTION_VALUE},
                    {"out", CTL_OPTION_VALUE},
                    {"checkpoint", CTL_OPTION_VALUE}},
        .run = run_evidence,
    },
    {.name = NULL},
};
