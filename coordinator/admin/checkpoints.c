/*
 * The chains' upkeep and their signed checkpoints (common/checkpoint.h, docs/forensics.md).
 *
 * Every second the rows committed to the audit log, the timelines and the command reports since
 * the last pass are linked into their chains (024_chains.sql). A checkpoint of every chain's
 * head, the vault's included, is issued on request (`vigilctl evidence checkpoint`) and every
 * evidence.checkpoint_interval while a chain grew, each written to state_dir/checkpoints/ —
 * outside the database whose tails they vouch for. `vigilctl evidence verify --checkpoint FILE`
 * then catches deleted or rewritten newest rows, which a chain alone cannot (admin/evidence.c
 * calls admin_checkpoint_check).
 *
 * Admin thread only: the verify connection, the signing key copy and the directory are its own.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "admin_internal.h"
#include "atomicfile.h"
#include "checkpoint.h"
#include "checkpoint_hook.h"
#include "digest.h"
#include "log.h"
#include "timeutil.h"

#define SUFFIX ".checkpoint"

/* The table of each chain but the vault's (024_chains.sql), by enum vg_chain. */
static const char *const chain_tables[VG_CHAINS] = {
    [VG_CHAIN_AUDIT] = "audit_log",
    [VG_CHAIN_TIMELINE] = "incident_events",
    [VG_CHAIN_REPORTS] = "command_reports",
};

const char *admin_chain_table(enum vg_chain chain)
{
    return (unsigned)chain < VG_CHAINS ? chain_tables[chain] : NULL;
}

/* Every chain's head now into heads, the rows committed so far linked first. 0 or -EIO. */
static int heads_now(admin_t *self, struct vg_chain_head heads[VG_CHAINS])
{
    int r = store_chains_link(self->verify, NULL);
    if (r == 0)
        r = store_evidence_head(self->verify, &heads[VG_CHAIN_EVIDENCE].head,
                                heads[VG_CHAIN_EVIDENCE].hash);
    for (int c = VG_CHAIN_AUDIT; r == 0 && c < VG_CHAINS; c++)
        r = store_chain_head(self->verify, chain_tables[c], &heads[c].head, heads[c].hash);
    return r;
}
#define CHECKPOINTS_KEPT 1000 /* a week at the default interval, if the chains grew all along */

void admin_set_checkpoints(admin_t *self, const struct vg_signing_key *key, const char *dir,
                           int64_t interval_ms)
{
    struct admin_checkpoints *c = &self->checkpoints;
    c->key = *key;
    c->enabled = true;
    snprintf(c->dir, sizeof(c->dir), "%s", dir);
    c->interval_ms = interval_ms;
}

void admin_set_checkpoint_hook(admin_t *self, struct checkpoint_hook *hook)
{
    self->checkpoints.hook = hook;
}

static bool store_ready(admin_t *self)
{
    if (!self->verify)
        self->verify = store_verify_new(store_conninfo(self->store));
    return self->verify != NULL;
}

/* Removes the oldest files past CHECKPOINTS_KEPT (names sort by time: zero-padded ms). */
static void prune(const char *dir)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, alphasort);
    int kept = 0;
    for (int i = n - 1; i >= 0; i--) {
        size_t len = strlen(names[i]->d_name);
        bool ours = len > strlen(SUFFIX) &&
                    strcmp(names[i]->d_name + len - strlen(SUFFIX), SUFFIX) == 0;
        char path[PATH_MAX];
        if (ours && ++kept > CHECKPOINTS_KEPT &&
            snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name) < (int)sizeof(path) &&
            unlink(path) < 0)
            vg_log(VG_LOG_WARN, "checkpoints: cannot remove %s: %s", path, strerror(errno));
        free(names[i]);
    }
    free(names);
}

/* Writes text as dir/<issued_at_ms>.checkpoint, durably. 0 or negative errno. */
static int publish(const char *dir, const char *text, int64_t issued_at_ms)
{
    char path[PATH_MAX];
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return -errno;
    if (snprintf(path, sizeof(path), "%s/%013" PRId64 SUFFIX, dir, issued_at_ms) >=
        (int)sizeof(path))
        return -ENAMETOOLONG;
    int r = vg_file_replace(path, text, strlen(text), 0600, true);
    if (r == 0)
        prune(dir);
    return r;
}

int admin_checkpoint_issue(admin_t *self, char *text, size_t len)
{
    struct admin_checkpoints *c = &self->checkpoints;
    struct vg_checkpoint cp = {.issued_at_ms = vg_wall_ms()};
    if (!c->enabled)
        return -ENOTSUP;
    if (!store_ready(self))
        return -ENOMEM;
    int r = heads_now(self, cp.chains);
    if (r == 0)
        r = vg_checkpoint_format(&cp, &c->key, text, len);
    /* The audit channel too, off this machine (it queues; its thread sends, and sends again
     * with the next checkpoint what failed). */
    if (r == 0)
        checkpoint_hook_post(c->hook, text, cp.issued_at_ms);
    if (r == 0 && (r = publish(c->dir, text, cp.issued_at_ms)) < 0)
        vg_log(VG_LOG_WARN, "checkpoints: not written to %s: %s", c->dir, strerror(-r));
    if (r == 0) {
        memcpy(c->published, cp.chains, sizeof(c->published));
        c->has_published = true;
        vg_log(VG_LOG_INFO,
               "checkpoint: heads evidence=%" PRIu64 " audit=%" PRIu64 " timeline=%" PRIu64
               " reports=%" PRIu64 " signed and written to %s",
               cp.chains[VG_CHAIN_EVIDENCE].head, cp.chains[VG_CHAIN_AUDIT].head,
               cp.chains[VG_CHAIN_TIMELINE].head, cp.chains[VG_CHAIN_REPORTS].head, c->dir);
    }
    return r;
}

int admin_chain_tick(vg_loop_t *loop, void *userdata)
{
    (void)loop;
    admin_t *self = userdata;
    int64_t now = vg_mono_ms();
    int r = store_ready(self) ? store_chains_link(self->verify, NULL) : -ENOMEM;
    /* The store's own outage is logged by the store; a failure of this pass alone is said
     * once a minute at most (rows wait unlinked, nothing is lost). */
    if (r < 0 && now - self->checkpoints.link_warned_ms >= 60000) {
        vg_log(VG_LOG_WARN, "chains: rows not linked yet: %s (tried again every second)",
               strerror(-r));
        self->checkpoints.link_warned_ms = now;
    }
    return 0;
}

int admin_checkpoint_tick(vg_loop_t *loop, void *userdata)
{
    (void)loop;
    admin_t *self = userdata;
    struct admin_checkpoints *c = &self->checkpoints;
    struct vg_chain_head heads[VG_CHAINS];
    char text[VG_CHECKPOINT_MAX_LEN];
    memset(heads, 0, sizeof(heads));
    if (!c->enabled || !store_ready(self) || heads_now(self, heads) < 0)
        return 0; /* the store is down: the next interval tries again */
    if (c->has_published && memcmp(heads, c->published, sizeof(heads)) == 0)
        return 0; /* nothing new to vouch for */
    int r = admin_checkpoint_issue(self, text, sizeof(text));
    if (r < 0)
        vg_log(VG_LOG_WARN, "checkpoint: not issued: %s", strerror(-r));
    return 0;
}

static void utc_text(int64_t ms, char *buf, size_t size)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&secs, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, size, "%" PRId64 " ms", ms);
}

/* The verdict on a checkpoint once a walk found the chain intact through last_id: a row it
 * names that is gone or different is the break. false with broken_id and why set. */
/* One chain against what the checkpoint signed for it. */
static bool chain_held(admin_t *self, enum vg_chain chain, const struct vg_chain_head *signed_head,
                       uint64_t last_id, const char *issued, uint64_t *broken, char *why,
                       size_t whylen)
{
    uint8_t hash[32];
    char hex[65];
    uint64_t now_head = last_id;
    int r;
    if (signed_head->head == 0)
        return true; /* empty then: anything since extends it */
    if (chain == VG_CHAIN_EVIDENCE) {
        r = store_evidence_row_chain(self->verify, signed_head->head, hash);
        if (r == 0 && signed_head->head > last_id)
            r = -ENOENT;
    } else {
        r = store_chain_link_at(self->verify, chain_tables[chain], signed_head->head, hash);
        if (r == -ENOENT && store_chain_head(self->verify, chain_tables[chain], &now_head, hash) < 0)
            now_head = 0;
    }
    const char *name = vg_chain_name(chain);
    *broken = signed_head->head;
    if (r == -ENOENT) {
        snprintf(why, whylen,
                 "the checkpoint of %s names %s %" PRIu64 ", which the %s chain no longer has: "
                 "its newest rows were deleted (it now ends at %" PRIu64 ")",
                 issued, chain == VG_CHAIN_EVIDENCE ? "evidence" : "place", signed_head->head,
                 name, now_head);
        return false;
    }
    if (r < 0) {
        *broken = 0;
        snprintf(why, whylen, "the checkpoint could not be compared: %s", strerror(-r));
        return false;
    }
    if (memcmp(hash, signed_head->hash, sizeof(hash)) != 0) {
        vg_hex(hash, sizeof(hash), hex);
        snprintf(why, whylen,
                 "%s %" PRIu64 " of the %s chain hashes to %s, not what the checkpoint of %s "
                 "signed: the chain was rewritten from there on or before",
                 chain == VG_CHAIN_EVIDENCE ? "evidence" : "place", signed_head->head, name, hex,
                 issued);
        return false;
    }
    return true;
}

bool admin_checkpoint_check(admin_t *self, const struct vg_checkpoint *cp, uint64_t last_id,
                            uint64_t *broken_id, char *why, size_t whylen)
{
    char issued[40];
    utc_text(cp->issued_at_ms, issued, sizeof(issued));
    if (memcmp(cp->signing_public_key, self->checkpoints.key.public_key, VG_SIGN_PUBLIC_LEN) != 0) {
        char b64[VG_SIGN_PUBLIC_B64_LEN + 1];
        vg_sign_public_format(cp->signing_public_key, b64);
        *broken_id = 0;
        snprintf(why, whylen,
                 "the checkpoint of %s is signed by %s, not by this coordinator's key %s", issued,
                 b64, self->checkpoints.key.public_b64);
        return false;
    }
    for (int c = 0; c < VG_CHAINS; c++)
        if (!chain_held(self, (enum vg_chain)c, &cp->chains[c], last_id, issued, broken_id, why,
                        whylen))
            return false;
    return true;
}

static void get_checkpoint(admin_t *self, const struct operator* op, const Vigil__AdminRequest *req,
                           struct reply *rep)
{
    (void)req;
    char actor[160];
    char *text = reply_own(rep, calloc(1, VG_CHECKPOINT_MAX_LEN), free);
    if (!text)
        return;
    int r = admin_checkpoint_issue(self, text, VG_CHECKPOINT_MAX_LEN);
    if (r == -ENOTSUP) {
        reply_error(rep, VIGIL__ADMIN_STATUS__ADMIN_UNAVAILABLE, "%s",
                    "this coordinator has no signing key for checkpoints");
        return;
    }
    if (r < 0) {
        reply_store_unavailable(rep, false);
        return;
    }
    rep->msg.checkpoint = text;
    admin_actor(op, actor, sizeof(actor));
    if (store_audit(self->store, actor, "evidence.checkpoint", "evidence vault", "issued") < 0)
        vg_log(VG_LOG_WARN, "checkpoint issued to %s: not audited (store)", op->name);
}

const struct admin_command admin_checkpoint_commands[] = {
    {VIGIL__ADMIN_REQUEST__BODY_GET_CHECKPOINT, ROLE_VIEWER, "issuing a checkpoint", NULL,
     get_checkpoint},
    {0},
};
