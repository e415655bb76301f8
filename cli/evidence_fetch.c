#include "evidence_fetch.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "output.h"
#include "timeutil.h"

/* A GetEvidence sent and not yet answered. */
struct piece {
    uint64_t request_id;
    uint64_t offset;
};

/* The requests in flight, oldest first (a ring). */
struct pipeline {
    struct piece pieces[EVIDENCE_FETCH_DEPTH];
    size_t head, count;
};

/* What the fetch has established so far. */
struct progress {
    bool manifest;  /* the caller gave the description: messages name the manifest */
    bool described; /* size and sha256 are known */
    uint64_t size;
    char sha256[VG_SHA256_HEX_LEN + 1];
    uint64_t offset; /* bytes checked and written */
};

static int send_piece(ctl_admin_session_t *session, int64_t timeout_ms, uint64_t id,
                      uint64_t offset, struct pipeline *p, char *err, size_t errlen)
{
    Vigil__GetEvidence body = VIGIL__GET_EVIDENCE__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;

    body.id = id;
    body.offset = offset;
    body.max_bytes = VG_MAX_EVIDENCE_READ_BYTES;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_GET_EVIDENCE;
    req.get_evidence = &body;
    int r = ctl_admin_session_send(session, &req, vg_mono_ms() + timeout_ms, err, errlen);
    if (r < 0)
        return r;
    p->pieces[(p->head + p->count) % EVIDENCE_FETCH_DEPTH] =
        (struct piece){.request_id = req.request_id, .offset = offset};
    p->count++;
    return 0;
}

/* The reply describes the artifact being fetched (the first one, unless the caller knew it). */
static bool same_artifact(const Vigil__AdminReply *reply, const struct progress *pr)
{
    if (reply->n_evidence != 1 || strlen(reply->evidence[0]->sha256) != VG_SHA256_HEX_LEN)
        return false;
    return !pr->described || (reply->evidence[0]->size == pr->size &&
                              strcmp(reply->evidence[0]->sha256, pr->sha256) == 0);
}

/* Checks one reply at pr->offset and hands its bytes on: 0, or a negative errno after printing. */
static int take_piece(const struct evidence_fetch_target *t, const Vigil__AdminReply *reply,
                      struct progress *pr, struct vg_sha256 *h)
{
    size_t len = reply->data.len;

    if (!same_artifact(reply, pr)) {
        if (pr->manifest)
            output_error("%s: the coordinator's answer does not match the manifest (%zu bytes at "
                         "offset %" PRIu64 " of %" PRIu64 ")",
                         t->subject, len, pr->offset, pr->size);
        else
            output_error("%s: the coordinator's description of the artifact is missing or "
                         "changed while it was fetched",
                         t->subject);
        return -EPROTO;
    }
    if (!pr->described) {
        pr->size = reply->evidence[0]->size;
        snprintf(pr->sha256, sizeof(pr->sha256), "%s", reply->evidence[0]->sha256);
        pr->described = true;
    }
    if ((len == 0 && pr->offset < pr->size) || len > pr->size - pr->offset) {
        if (pr->manifest)
            output_error("%s: the coordinator's answer does not match the manifest (%zu bytes at "
                         "offset %" PRIu64 " of %" PRIu64 ")",
                         t->subject, len, pr->offset, pr->size);
        else
            output_error("%s: the coordinator sent %zu bytes at offset %" PRIu64 " of %" PRIu64,
                         t->subject, len, pr->offset, pr->size);
        return -EPROTO;
    }
    if (len == 0) /* an empty artifact's one reply */
        return 0;
    vg_sha256_update(h, reply->data.data, len);
    int r = t->write(t->userdata, reply->data.data, len);
    if (r < 0)
        return r;
    pr->offset += len;
    return 0;
}

/* Waits for the oldest request's reply and takes it: 0, or a negative errno after printing. */
static int next_piece(ctl_admin_session_t *session, int64_t timeout_ms,
                      const struct evidence_fetch_target *t, struct pipeline *p,
                      struct progress *pr, struct vg_sha256 *h)
{
    Vigil__AdminReply *reply = NULL;
    char err[1024] = "";
    struct piece oldest = p->pieces[p->head];

    p->head = (p->head + 1) % EVIDENCE_FETCH_DEPTH;
    p->count--;
    int r = ctl_admin_session_recv(session, oldest.request_id, vg_mono_ms() + timeout_ms, &reply,
                                   err, sizeof(err));
    if (r == 0 && reply == NULL)
        r = -EIO;
    if (r == 0)
        r = ctl_admin_status_check(reply, "fetch evidence", t->subject, err, sizeof(err));
    if (r < 0) {
        output_error("%s", err[0] != '\0' ? err : "no reply from the coordinator");
    } else {
        r = take_piece(t, reply, pr, h);
    }
    if (reply != NULL)
        vigil__admin_reply__free_unpacked(reply, NULL);
    return r;
}

int evidence_fetch_artifact(ctl_admin_session_t *session, int64_t timeout_ms,
                            const struct evidence_fetch_target *t, uint64_t *ret_size,
                            char ret_sha[VG_SHA256_HEX_LEN + 1])
{
    struct pipeline p = {.count = 0};
    struct progress pr = {.manifest = t->sha256 != NULL, .described = t->sha256 != NULL};
    uint64_t next = 0; /* the offset the next request asks for */
    bool first_sent = false;
    char err[1024] = "";
    struct vg_sha256 h;
    int r = 0;

    if (pr.manifest) {
        pr.size = t->size;
        snprintf(pr.sha256, sizeof(pr.sha256), "%s", t->sha256);
    }
    vg_sha256_init(&h);
    do {
        /* Offset 0 once, alone until the size is known; then the pieces after it, as many as
         * the pipeline holds (none past the end). */
        while (r == 0 && p.count < EVIDENCE_FETCH_DEPTH &&
               (!first_sent || (pr.described && next < pr.size))) {
            r = send_piece(session, timeout_ms, t->id, next, &p, err, sizeof(err));
            if (r < 0)
                output_error("%s", err[0] != '\0' ? err : "no reply from the coordinator");
            first_sent = true;
            next += VG_MAX_EVIDENCE_READ_BYTES;
        }
        if (r == 0)
            r = next_piece(session, timeout_ms, t, &p, &pr, &h);
        /* Nothing in flight (offset 0 went alone), or a piece shorter than asked for, so that
         * the requests after it start at the wrong place: go on from where this one ended
         * (replies to those requests are dropped as they arrive). */
        if (r == 0 && (p.count == 0 || p.pieces[p.head].offset != pr.offset)) {
            p.count = 0;
            next = pr.offset;
        }
    } while (r == 0 && pr.offset < pr.size);

    if (r < 0) {
        vg_sha256_discard(&h);
        return r;
    }
    uint8_t digest[VG_SHA256_LEN];
    char got[VG_SHA256_HEX_LEN + 1];
    vg_sha256_final(&h, digest);
    vg_hex(digest, VG_SHA256_LEN, got);
    if (strcmp(got, pr.sha256) != 0) {
        output_error("%s: the bytes received hash to %s, but %s %s", t->subject, got,
                     pr.manifest ? "the manifest says" : "the vault recorded", pr.sha256);
        return -EBADMSG;
    }
    *ret_size = pr.size;
    snprintf(ret_sha, VG_SHA256_HEX_LEN + 1, "%s", got);
    return 0;
}
