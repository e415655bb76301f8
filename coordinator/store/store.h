/*
 * The coordinator's store: PostgreSQL through libpq.
 *
 * store_open connects (to store.url, or to a private cluster it starts under the state
 * directory when no url is configured — see embedded.h), applies the numbered migrations
 * in coordinator/store/sql/ inside one transaction, and records them in schema_migrations.
 *
 * All calls are synchronous and made from the coordinator's main loop. Every function
 * returns 0 or a negative errno; on -EIO (connection lost) the next call reconnects.
 * libpq error text is logged here, at the boundary.
 */
#ifndef COORD_STORE_H
#define COORD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "digest.h"
#include "model.h"
#include "vigil.pb-c.h"
#include "wire.h"

typedef struct store store_t;

struct store_config {
    const char *url;          /* libpq connection string; NULL or "" = private embedded cluster */
    const char *owner_url;    /* the owner role's, for migrations and maintenance (roles.h);
                                 NULL or "" = url (an external store only) */
    const char *state_dir;    /* embedded cluster lives in <state_dir>/pgdata */
    const char *pg_bin_dir;   /* directory of initdb/pg_ctl; NULL = auto-detect */
    int64_t start_timeout_ms; /* keep retrying the first connection this long */
};

/* NULL on failure with err set. Exit code policy is the caller's. */
store_t *store_open(const struct store_config *cfg, char *err, size_t errlen);
/* Closes the connection and stops the embedded cluster if store_open started it. */
/* Another connection to the database store_open prepared (conninfo from store_conninfo), for a
 * thread of its own: no cluster is started and no migration runs. It connects on first use and
 * again after a failure, like the main one. application_name is borrowed (a literal). NULL when
 * out of memory. */
store_t *store_connect(const char *conninfo, const char *application_name);
void store_destroy(store_t **self_p);

/* The owner role's connection string (migrations, maintenance): store.owner_url, the private
 * cluster's owner login, or store_conninfo when there is none. Borrowed. */
const char *store_owner_conninfo(const store_t *self);
/* Connects to url once and checks its login's rights (roles_check_runtime): the number of
 * rights beyond the coordinator's needs, described in out, or -errno with the reason in out. */
int store_check_rights(const char *url, char *out, size_t outlen);

/* True when a trivial query succeeds now (reconnects if needed). */
bool store_ping(store_t *self);

/* The private cluster store_open started is the coordinator's to keep running: called from the
 * main loop every second, it starts a cluster whose postmaster died again, with a backoff
 * (embedded_pg_watch in embedded.h). 1 when it restarted it (a restart to count), else 0 or
 * -EIO (logged). Nothing to do with store.url. */
int store_embedded_watch(store_t *self);

/* ---- agents ---- */
struct store_agent {
    char id[32];
    char public_key[41];
    char node[256];
    char requested_node[256]; /* a new name the agent asked for, waiting for approval; "" = none */
    Vigil__AgentState state;
    char agent_version[64];
    int64_t enrolled_at_ms;
    int64_t state_since_ms;
    int64_t last_seen_ms; /* 0 = never */
    uint64_t spool_depth;
    uint64_t dropped_messages;
};

/* Calls cb for every agent (any state). Stops early if cb returns non-zero. */
int store_agents_load(store_t *self, int (*cb)(const struct store_agent *agent, void *userdata),
                      void *userdata);

/* Inserts a new agent, or updates the version of an existing one (its node and state are
 * changed only through store_agent_request_node / store_agent_rename / store_agent_set_state). */
int store_agent_upsert(store_t *self, const struct store_agent *agent);

/* Records the node name an agent asked for on re-enrollment ("" = none any more), waiting for
 * an operator; the agent keeps its name until then. */
int store_agent_request_node(store_t *self, const char *id, const char *requested_node);

/* Deletes an agent that is still pending (it never got in), with an audit_log row; -ENOENT
 * when it is not pending any more. Bounds what unknown keys leave behind. */
int store_agent_forget_pending(store_t *self, const char *id, const char *reason);

/* Gives the agent the node name it asked for (an operator approved it) and clears the request,
 * with an audit_log row naming actor. */
int store_agent_rename(store_t *self, const char *id, const char *node, const char *actor);

/* Records a state change with its time, and an audit_log row naming actor and reason. */
int store_agent_set_state(store_t *self, const char *id, Vigil__AgentState state, int64_t at_ms,
                          const char *actor, const char *reason);

struct store_agent_health {
    const char *id;
    int64_t last_seen_ms;
    const char *agent_version;
    uint64_t uptime_s, spool_depth, spool_bytes, dropped_messages, dropped_samples;
};
/* Writes the latest health of many agents in one statement. */
int store_agents_health(store_t *self, const struct store_agent_health *rows, size_t n);

/* ---- operators (store_operators.c) ---- */
struct store_operator {
    char id[32];
    char name[128];
    char public_key[41];
    char signing_key[45]; /* Ed25519 public key, base64; "" = none registered */
    char role[16];        /* viewer | responder | admin */
    bool revoked;
    int64_t created_at_ms; /* read back; not written */
};
/* Calls cb for every operator, revoked ones too, in id order. Stops early if cb returns
 * non-zero. */
int store_operators_load(store_t *self, int (*cb)(const struct store_operator *op, void *userdata),
                         void *userdata);
/* Inserts the operator if its key is not present; never changes an existing one, so a revoked
 * operator stays revoked, except that an active operator without a signing key gets op's (when op
 * has one): the upgrade path for operators from before signing keys. Either change writes its
 * audit_log row in the same statement. The row now stored for that key (the new one or the one
 * that was there, revoked or not) goes to *ret_stored when not NULL. -EEXIST when op's id, name
 * or signing key is taken by another key. */
int store_operator_ensure(store_t *self, const struct store_operator *op,
                          struct store_operator *ret_stored);
/* Adds an active operator (op->revoked false, a signing key given) with an audit_log row naming
 * actor, in one statement. -EEXIST when an active operator has its name or any operator, revoked
 * or not, has its id, public key or signing key: err says which. The new row goes to *ret_stored
 * (may be NULL). */
int store_operator_add(store_t *self, const struct store_operator *op, const char *actor,
                       struct store_operator *ret_stored, char *err, size_t errlen);
/* Revokes the active operator id, with an audit_log row naming actor, in one statement. -ENOENT
 * when id is not an active operator; -EBUSY when it is the last active admin (nothing changes). */
int store_operator_revoke(store_t *self, const char *id, const char *actor);
/* New keys for the active operator old_id, in one statement: old_id is revoked and a row with
 * fresh's id, public key and signing key and old_id's name and role is inserted, with an
 * audit_log row naming actor. -ENOENT when old_id is not active; -EEXIST (err says which) when
 * fresh's id or a key is any operator's. The new row goes to *ret_stored (may be NULL). */
int store_operator_rotate(store_t *self, const char *old_id, const struct store_operator *fresh,
                          const char *actor, struct store_operator *ret_stored, char *err,
                          size_t errlen);

/* ---- ingest ---- */

/* What ingest (or the deadline check) decided about evidence, for the caller to log and count
 * once the transaction has committed. */
enum store_evidence_outcome {
    STORE_EVIDENCE_STORED,   /* verified (hash re-computed over the stored bytes) and chained */
    STORE_EVIDENCE_REJECTED, /* refused, never in the vault; reason says why */
    STORE_EVIDENCE_FAILED,   /* the target failed: the agent's own error, or its deadline */
};

struct store_evidence_event {
    enum store_evidence_outcome outcome;
    /* Static metric label. REJECTED: sha256, size, unknown_collection, not_pending, kind,
     * duplicate, artifact_reuse, invalid. FAILED: agent, timeout. STORED: "". */
    const char *reason;
    char agent_id[32];
    char kind[33];
    uint64_t collection_id;
    uint64_t artifact;
    uint64_t evidence_id; /* STORED */
    uint64_t size;        /* STORED: artifact bytes */
    char detail[512];     /* one line for the log, e.g. the two hashes of a mismatch */
};

/* Events of one call, malloc'd; free with store_evidence_events_clear. */
struct store_evidence_events {
    struct store_evidence_event *items;
    size_t n, cap;
};
void store_evidence_events_clear(struct store_evidence_events *events);

/*
 * Why PostgreSQL would refuse this durable message (text that is not UTF-8, a time outside
 * years 1-9999, ...), or NULL when it can be stored. The router refuses such a message to its
 * agent alone, before the batch: one bad record must not fail everyone's transaction.
 */
const char *store_message_problem(const Vigil__Envelope *m);

/*
 * Stores durable agent messages (seq >= 1) in one transaction: each (sender, seq) at most
 * once (duplicates are ignored and count as stored), signal samples written with COPY, and
 * evidence chunks of collections the coordinator issued to that agent. An artifact whose
 * chunks are complete is verified in the same transaction: SHA-256 re-computed over the stored
 * chunks in offset order, then the vault row with its chain hash, or a failed target.
 * When this returns 0 every message in msgs is committed and may be acknowledged.
 * ret_new counts messages that were not already stored; ret_events (may be NULL) gets the
 * evidence outcomes, appended, only when the transaction committed.
 */
int store_ingest(store_t *self, Vigil__Envelope *const *msgs, size_t n, size_t *ret_new,
                 struct store_evidence_events *ret_events);
/* The same; ret_fresh (n entries) says, once committed, which messages were new: a resend of
 * what was already stored is acknowledged again but must not be counted or evaluated twice. */
int store_ingest_marked(store_t *self, Vigil__Envelope *const *msgs, size_t n, bool *ret_fresh,
                        size_t *ret_new, struct store_evidence_events *ret_events);

/*
 * A collection the coordinator opened by itself in an ingest transaction — the evidence a command
 * leaves when it reports done: its kept output and its action's evidence kinds (migration 015) —
 * as the packed Envelope{collect} to send to agent_id once that transaction committed.
 */
struct store_followup {
    char agent_id[32];
    char kind[33];
    uint64_t collection_id;
    uint8_t *envelope; /* malloc'd */
    size_t len;
};
struct store_followups {
    struct store_followup *items;
    size_t n, cap;
};
void store_followups_clear(struct store_followups *f);
/* Moves the follow-ups of the ingests committed since the last call into *ret (cleared first). */
void store_followups_take(store_t *self, struct store_followups *ret);

/* ---- evidence ---- */

struct store_evidence_arg {
    const char *key, *value;
};

struct store_evidence_target {
    const char *agent_id;
    const char *node;
};

/*
 * Records a collection (who asked, kind, args, deadline), one pending target per agent and an
 * audit_log row, in one transaction. Argument keys must be distinct (-EINVAL otherwise).
 * incident_id (0 = none): an incident's investigation, linked to it and on its timeline.
 */
int store_evidence_collection_create(store_t *self, const char *actor, const char *kind,
                                     const struct store_evidence_arg *args, size_t nargs,
                                     int64_t deadline_ms,
                                     const struct store_evidence_target *targets, size_t ntargets,
                                     uint64_t incident_id, uint64_t *ret_id);

/* *ret: incident_id's investigation already has a collection from node. */
int store_evidence_investigated(store_t *self, uint64_t incident_id, const char *node,
                                bool *ret);
/* A timeline note on incident_id: its investigation could not collect kind from node (text
 * says why: no active agent there, the store). */
int store_evidence_investigation_note(store_t *self, uint64_t incident_id, const char *kind,
                                      const char *node, const char *text);

/* A pending target fails with error (an undeliverable request). -ENOENT if not pending. */
int store_evidence_target_fail(store_t *self, uint64_t collection_id, const char *agent_id,
                               const char *error);

/*
 * An artifact the coordinator made itself (kind promql) for the one target of collection_id
 * whose agent id is VG_COORDINATOR_AGENT_ID: its bytes go in as that target's chunks (artifact =
 * collection_id, at most VG_MAX_EVIDENCE_CHUNK_BYTES each, the last with its SHA-256 and size)
 * through the same path as an agent's: in one transaction, the chunks are stored, the SHA-256
 * is computed again over the stored bytes and compared, and the artifact enters the vault's one
 * chain. The outcome is appended to *ret_events (after the commit). len is at most 8 MiB.
 */
int store_evidence_local(store_t *self, uint64_t collection_id, const char *kind,
                         const uint8_t *data, size_t len, bool truncated, int64_t collected_at_ms,
                         struct store_evidence_events *ret_events);

/*
 * Deletes the chunks of artifacts that never completed (no last chunk, not in the vault) whose
 * request failed or timed out more than grace_ms ago, with an audit_log row per artifact. The
 * database refuses any other deletion (011_evidence_incomplete.sql). *ret_chunks and
 * *ret_bytes say how much went.
 */
int store_evidence_purge_incomplete(store_t *self, int64_t grace_ms, uint64_t *ret_chunks,
                                    uint64_t *ret_bytes);

/* Pending targets past their collection's deadline fail as "timed out"; one FAILED event
 * (reason "timeout") each is appended to ret_events (may be NULL). */
int store_evidence_expire(store_t *self, struct store_evidence_events *ret_events);

/* One artifact or one target of a collection, as listed. Strings are borrowed for the call. */
struct store_evidence_info {
    uint64_t id; /* 0 while not stored */
    uint64_t collection_id;
    const char *agent_id, *node, *kind;
    const char *args_json; /* a JSON object of the collection's arguments */
    uint64_t size;
    const char *sha256_hex; /* "" while not stored */
    int64_t collected_at_ms, stored_at_ms;
    const char *status; /* pending | stored | failed */
    const char *error;
    bool truncated;
};
typedef int (*store_evidence_cb)(const struct store_evidence_info *info, void *userdata);

/* The collections opened after command request_id ran (its output, its action's evidence
 * kinds; migration 015), each target as in store_evidence_list, in the order they were opened. */
int store_evidence_list_command(store_t *self, const char *request_id, store_evidence_cb cb,
                                void *userdata);
/* The same for the collections of incident_id's investigation (migration 018). At most 256. */
int store_evidence_list_incident(store_t *self, uint64_t incident_id, store_evidence_cb cb,
                                 void *userdata);

/*
 * collection_id != 0: every target of that collection (pending, stored, failed) ordered by
 * node; 0: the latest limit stored artifacts, newest first. node ("" or NULL = any) filters.
 * Stops early if cb returns non-zero.
 */
int store_evidence_list(store_t *self, uint64_t collection_id, const char *node, uint32_t limit,
                        store_evidence_cb cb, void *userdata);

/* The stored artifact id: cb once, or -ENOENT. */
int store_evidence_get(store_t *self, uint64_t id, store_evidence_cb cb, void *userdata);

/* Up to max bytes of artifact id from offset, read from its chunks: *ret_len = 0 at the end. */
int store_evidence_read(store_t *self, uint64_t id, uint64_t offset, uint8_t *buf, size_t max,
                        size_t *ret_len);

/* The vault's chain step: chain = SHA-256(prev_chain || sha256 || metadata), metadata being
 * these fields as netstrings ("<len>:<bytes>,") in this order, args sorted by key. */
struct store_evidence_meta {
    uint64_t collection_id;
    const char *agent_id;
    uint64_t agent_seq, artifact;
    const char *node, *kind;
    const struct store_evidence_arg *args;
    size_t nargs;
    int64_t collected_at_ms, stored_at_ms;
    uint64_t size;
    bool truncated;
};
void store_evidence_chain(const uint8_t prev_chain[32], const uint8_t sha256[32],
                          const struct store_evidence_meta *meta, uint8_t ret_chain[32]);

/* ---- verifying the vault (store_evidence_verify.c) ---- */

#define STORE_VERIFY_REASON_MAX 192

/*
 * The walk over the vault in id order, rules only (no database), so they are tested apart from
 * the SQL that feeds them. Per row: store_chain_walk_row with its columns, then
 * store_chain_walk_content for each stored chunk in offset order, then store_chain_walk_end.
 * Each returns false once a broken link is found (broken_id, reason); later calls do nothing.
 * A row's own chain is recomputed from its stored prev_chain first, so a changed row names
 * itself; a row that is intact but does not link to the row before names a deletion.
 */
struct store_chain_walk {
    uint8_t prev[VG_SHA256_LEN]; /* what the next row's prev_chain must be */
    bool at_start;               /* prev is the vault's start (32 zero bytes), not a row's */
    uint64_t checked, bytes;     /* rows found intact, and their content bytes */
    uint64_t last_id;            /* the last row found intact; 0 = none yet */
    uint64_t broken_id;          /* 0 = no broken link found */
    char reason[STORE_VERIFY_REASON_MAX];
    uint64_t removed; /* of checked: rows whose content retention removed (026_retention.sql) */
    /* The row in progress. */
    bool in_row;
    bool content_removed; /* store_chain_walk_content_removed */
    uint64_t id, size, content_bytes;
    uint8_t sha256[VG_SHA256_LEN], chain[VG_SHA256_LEN];
    bool content_started; /* content holds a hash begun at the row's first chunk */
    struct vg_sha256 content;
};

/* after_chain NULL: the walk starts at the vault's first row; otherwise after a row already
 * checked whose chain hash this is (32 bytes). */
void store_chain_walk_init(struct store_chain_walk *w, const uint8_t *after_chain);
bool store_chain_walk_row(struct store_chain_walk *w, uint64_t id,
                          const struct store_evidence_meta *meta, const uint8_t sha256[32],
                          const uint8_t prev_chain[32], const uint8_t chain[32]);
bool store_chain_walk_content(struct store_chain_walk *w, uint64_t offset, const void *data,
                              size_t len);
bool store_chain_walk_end(struct store_chain_walk *w);
/* Frees what a row the walk stopped inside still holds; the verdict stays readable. */
void store_chain_walk_fini(struct store_chain_walk *w);
/* Between row and end: the row's content was removed by retention, as its evidence_removals
 * row and the audit row it names say. With no chunk at all its end then holds it intact (its
 * link and chain hash were checked; the sha256 it commits to stays in the row); a chunk that is
 * there anyway is checked as usual. */
void store_chain_walk_content_removed(struct store_chain_walk *w);
/* Row id cannot be read as a vault row (what: which column is wrong): it is the broken link. */
void store_chain_walk_unreadable(struct store_chain_walk *w, uint64_t id, const char *what);

/* A connection of its own for the admin socket's verifications: its read-only snapshot
 * transactions never share a connection with ingest's. Connects on first use. */
typedef struct store_verify store_verify_t;
store_verify_t *store_verify_new(const char *conninfo);
void store_verify_destroy(store_verify_t **self_p);

struct store_verify_result {
    uint64_t checked, bytes; /* rows found intact by this call, their content bytes */
    uint64_t broken_id;      /* 0 = no broken link found */
    char reason[STORE_VERIFY_REASON_MAX];
    uint64_t removed; /* of checked: rows whose content retention removed (no bytes counted) */
    bool done;        /* no broken link and no row left after last_id */
    uint64_t last_id; /* the last intact row (after_id when none): continue after it */
    uint8_t last_chain[VG_SHA256_LEN]; /* its chain hash */
};

/*
 * Checks the rows after after_id (0 = from the first row; after_chain is then NULL, else the
 * chain hash of row after_id, 32 bytes) in one REPEATABLE READ READ ONLY transaction: each
 * row's link, its chain hash, and its content (the chunks streamed one row at a time,
 * re-hashed, against the stored size and sha256). Stops at the first broken link, at the end,
 * or at the first row boundary once max_artifacts rows (0 = no limit) are checked or budget_ms
 * has passed (at least one row is always checked), so a big vault is walked in several calls
 * that do not hold up the caller's loop. 0 with *ret filled (a broken link is not an error),
 * -EIO when the database is unreachable, -EPROTO when a statement failed (logged), -EINVAL
 * for bad arguments.
 */
/* The vault's newest row and its chain hash (0 and zeros for an empty vault), for a signed
 * checkpoint; its own short query, outside any walk. 0 or -EIO. */
int store_evidence_head(store_verify_t *self, uint64_t *ret_id, uint8_t ret_chain[32]);
/* Row id's chain hash: 0, -ENOENT when the vault has no such row, -EIO. */
int store_evidence_row_chain(store_verify_t *self, uint64_t id, uint8_t ret_chain[32]);
/* The chains of 024_chains.sql, by table ("audit_log", "incident_events", "command_reports").
 * store_chains_link links every committed row not linked yet (all three chains; how many in
 * *ret_linked, may be NULL). Then: the newest place and its link (0 and zeros when empty); one
 * place's link (-ENOENT when the chain has no such place); the whole chain checked in the
 * database. */
int store_chains_link(store_verify_t *self, uint64_t *ret_linked);
int store_chain_head(store_verify_t *self, const char *table, uint64_t *ret_seq,
                     uint8_t ret_link[32]);
int store_chain_link_at(store_verify_t *self, const char *table, uint64_t seq,
                        uint8_t ret_link[32]);
struct store_chain_verdict {
    uint64_t rows;
    bool broken;
    uint64_t broken_seq; /* broken: the first place that breaks it (0: rows without a link) */
    char reason[256];
    uint64_t head_seq; /* the newest place (0 = empty) and its link */
    uint8_t head_link[32];
};
int store_chain_verify(store_verify_t *self, const char *table, struct store_chain_verdict *ret);
int store_evidence_verify(store_verify_t *self, uint64_t after_id, const uint8_t *after_chain,
                          uint32_t max_artifacts, int64_t budget_ms,
                          struct store_verify_result *ret);

/* ---- latest signals ---- */
struct store_signal {
    const char *agent_id;
    const char *node;
    const char *name;
    const char *labels_json; /* a JSON object of label pairs */
    const char *unit;
    double value;
    int state; /* Vigil__SignalState */
    int64_t ts_ms;
};
/* Which latest samples, and from where: one page of the listing. */
struct store_signal_page {
    const char *node;       /* NULL or "" = every node */
    const char *name_regex; /* POSIX regular expression the name matches; NULL = every name */
    /* Keyset cursor: the page starts after the series (node, name, labels text, agent id);
     * after_node NULL = from the start. */
    const char *after_node, *after_name, *after_labels, *after_agent;
    uint32_t limit; /* rows at most */
};
/*
 * Calls cb with the latest sample of each series of the page, ordered by node, name, labels
 * (as text) and agent: the database returns the page alone, never the whole table. Stops early
 * if cb returns non-zero. -EINVAL for a name_regex PostgreSQL refuses.
 */
int store_signals_latest(store_t *self, const struct store_signal_page *page,
                         int (*cb)(const struct store_signal *sig, void *userdata), void *userdata);

/* ---- remediation commands (store_commands.c, 013_commands.sql) ----
 *
 * A command is a request (its fields are what the canonical hash covers; only its state changes
 * afterwards), the operators' approvals, at most one capsule, and the steps agents reported. Each
 * operator's change and its audit_log row (and, for a request with an incident, its timeline
 * event) are written in one transaction. Any thread with its own store_t (the admin thread's
 * connection for requests and approvals, the main connection for reports and expiry).
 */
#define STORE_COMMAND_ID_MAX 64
#define STORE_COMMAND_STATE_MAX 16

struct store_command_approval {
    char operator_name[VG_MAX_NAME_LEN + 1];
    char role[16];        /* responder or admin */
    char signing_key[45]; /* base64 */
    uint8_t signature[64];
    int64_t at_ms;
};

struct store_command_step {
    char step[16]; /* accepted, started, done, refused */
    int64_t at_ms;
    char agent_id[32];
    bool has_exit;
    int32_t exit_status;
    uint64_t duration_ms;
    bool has_output;
    uint8_t output_sha256[32];
    bool truncated;
    char *reason; /* owned */
};

/* One command as stored. Arrays and reason are owned: store_command_info_clear frees them. */
struct store_command_info {
    uint64_t n; /* listing order */
    char id[STORE_COMMAND_ID_MAX + 1];
    char action[VG_MAX_NAME_LEN + 1];
    char node[256];
    uint64_t incident_id;
    char requested_by[VG_MAX_NAME_LEN + 1];
    int64_t created_at_ms, approve_by_ms;
    bool dry_run;
    char mode[16]; /* auto, approve, destructive */
    char state[STORE_COMMAND_STATE_MAX];
    uint8_t request_sha256[32];
    Vigil__CommandArg **args; /* owned, each with its key and value */
    size_t nargs;
    struct store_command_approval *approvals;
    size_t napprovals;
    bool issued; /* a capsule exists */
    int64_t issued_at_ms, not_after_ms;
    uint8_t nonce[16];
    /* The latest done or refused step, if any. */
    bool has_exit;
    int32_t exit_status;
    uint64_t duration_ms;
    bool has_output;
    uint8_t output_sha256[32];
    char *reason;                     /* owned; NULL = none */
    struct store_command_step *steps; /* store_command_get with steps only */
    size_t nsteps;
};
void store_command_info_clear(struct store_command_info *c);

/* Inserts a new request (state pending) with its audit row and, when it names an incident, a
 * timeline event. -ENOENT when incident_id is not 0 and no such incident exists; -EEXIST for a
 * request id in use; -EINVAL for text that is not UTF-8. */
int store_command_create(store_t *self, const struct store_command_info *c, const char *actor);

/* One request of store_commands_issue_auto_many: what differs between the nodes of a fan-out. */
struct store_auto_issue {
    const char *id;
    const char *node;
    uint8_t request_sha256[32];
    uint8_t nonce[16];
    uint8_t signature[64];
};

/*
 * Inside store_command_begin .. commit: n new auto requests that share template's action,
 * arguments, incident, requester, times and dry-run flag, each issued at once — request row,
 * capsule (issued_at_ms, not_after_ms, coordinator_key), both audit rows and both timeline
 * events, as store_command_create and store_command_capsule_add write them — in one statement.
 * A fan-out to 1,000 nodes is one round trip, not 2,000. -ENOENT when the incident is not there.
 */
int store_commands_issue_auto_many(store_t *self, const struct store_command_info *template_,
                                   const struct store_auto_issue *items, size_t n,
                                   int64_t issued_at_ms, int64_t not_after_ms,
                                   const char *coordinator_key, const char *actor);

/* Whether runbook auto steps run by themselves (table automation, migration 014). */
struct store_automation {
    bool enabled;
    char changed_by[192];
    int64_t changed_at_ms;
};
/* The state now (enabled when the row is missing). Outside a transaction. */
int store_automation_get(store_t *self, struct store_automation *ret);
/* An automatic command of an open incident still waiting for its verify verdict. */
struct store_unjudged_command {
    const char *id, *action, *node, *runbook, *fingerprint;
    const char *inverse; /* the node's declared inverse of the action (agents.actions), "" */
    uint64_t incident_id;
};
/* Those created since since_ms, oldest first: for the main loop to watch them again after a
 * restart (verify-then-inverse). */
int store_commands_unjudged(store_t *self, int64_t since_ms,
                            void (*cb)(void *userdata, const struct store_unjudged_command *c),
                            void *userdata);
/* The automatic requests Vigil issued for runbook steps since since_ms, oldest first: cb with
 * the incident's runbook, the node and the request's creation time. For the step limiter to
 * remember across a restart what it allowed before (commands.auto_min_interval). */
int store_commands_recent_auto(store_t *self, int64_t since_ms,
                               void (*cb)(void *userdata, const char *runbook, const char *node,
                                          int64_t created_at_ms),
                               void *userdata);
/* Sets it, with its audit row (automation.on / automation.off), in one statement; *ret is the
 * state as stored. */
int store_automation_set(store_t *self, bool enabled, const char *actor,
                         struct store_automation *ret);

/* A runbook step on incident_id's timeline (kind note, actor vigil, data {step, mode, state,
 * request_id}): text says what Vigil did with the step. Outside a transaction. */
int store_command_step_note(store_t *self, uint64_t incident_id, const char *action,
                            const char *mode, const char *state, const char *request_id,
                            const char *text);

/* Reads one command (approvals included; steps when with_steps). -ENOENT when absent. Inside a
 * transaction (store_command_begin), for_update locks the request's row until its end. */
int store_command_get(store_t *self, const char *id, bool with_steps, bool for_update,
                      struct store_command_info *ret);

/* Newest first, after the row numbered before_n (0 = from the newest); incident_id 0 = all.
 * cb gets each command (approvers' names, capsule and result, no steps); it may take its
 * contents, leaving *c zeroed, and otherwise they are freed after it returns. */
int store_commands_list(store_t *self, uint64_t incident_id, uint64_t before_n, uint32_t limit,
                        int (*cb)(struct store_command_info *c, void *userdata), void *userdata);

/* A transaction for a change that reads first (approve, cancel): begin, get with for_update,
 * then the changes below, then commit (0 only when COMMIT answered COMMIT) or rollback. */
int store_command_begin(store_t *self);
int store_command_commit(store_t *self);
void store_command_rollback(store_t *self);

/* Inside such a transaction: an approval and its audit row. -EEXIST when that operator approved
 * already. */
int store_command_approval_add(store_t *self, const char *request_id,
                               const struct store_command_approval *a, const char *actor);
/* Inside such a transaction: the capsule (nonce, times, signature), the request's state to
 * issued, the audit row and the timeline event. */
int store_command_capsule_add(store_t *self, const char *request_id, const uint8_t nonce[16],
                              int64_t issued_at_ms, int64_t not_after_ms,
                              const char *coordinator_key, const uint8_t signature[64],
                              const char *actor);
/* Inside such a transaction: state from -> to with an audit row (action, e.g.
 * "command.cancel") and the timeline event. -ESTALE when the state was not from. */
int store_command_transition(store_t *self, const char *request_id, const char *from,
                             const char *to, const char *actor, const char *action);

/* One request that left pending or issued by itself (store_commands_expire). */
struct store_command_expired {
    char id[STORE_COMMAND_ID_MAX + 1];
    char state[STORE_COMMAND_STATE_MAX]; /* lost or expired */
    char action[VG_MAX_NAME_LEN + 1];
    char node[256];
};
/* Issued requests whose capsule expired more than grace_ms ago with no report become lost;
 * pending ones past approve_by expired. Audited and on the timeline. Up to max reported in ret
 * (*ret_n). */
int store_commands_expire(store_t *self, int64_t grace_ms, struct store_command_expired *ret,
                          size_t max, size_t *ret_n);

/* The agent's declared catalog (a JSON array text) is stored when it changed, with an audit row.
 * *ret_changed (may be NULL) says whether it did. */
int store_agent_actions_set(store_t *self, const char *agent_id, const char *actions_json,
                            bool *ret_changed);

/* ---- audit ---- */
int store_audit(store_t *self, const char *actor, const char *action, const char *subject,
                const char *detail);

/* ---- Alertmanager alerts (store_alerts.c) ---- */

/* The libpq connection string store_open connected with (borrowed), for another thread's own
 * connection to the same database. */
const char *store_conninfo(const store_t *self);

/* (Re)connects *conn to conninfo for a module that keeps a connection of its own (the
 * Alertmanager webhook on the HTTP thread, incidents); *conn is finished first. 0, -ENOMEM, or
 * -EIO, the failure reported to the store's outage log (below) under application_name. */
typedef struct pg_conn PGconn;

/* Such a module's connection: the coordinator's conninfo, connected lazily. */
struct store_side {
    char *conninfo;
    PGconn *conn;
};
int store_side_init(struct store_side *side, const char *conninfo); /* 0 or -ENOMEM */
void store_side_fini(struct store_side *side);                      /* closes and frees */

int store_side_connect(PGconn **conn, const char *conninfo, const char *application_name);

/*
 * The database's outages, logged for the store as a whole, from any thread: every connection's
 * attempts (store_side_connect and the store's own) are reported to one tracker, which logs one
 * warning when an attempt first fails ("store: database unreachable"), a summary each minute
 * while none succeeds, and one line when one does ("store: database reachable again after=").
 */
/* A statement on conn failed with libpq's error text: a warning naming what and connection (the
 * application name) while the connection is alive; a connection found dead is logged at most once
 * a minute (at info), since the outage it is part of is logged by the tracker. */
void store_statement_failed(PGconn *conn, const char *connection, const char *what,
                            const char *error);
/* Outages since the process started (vigil_store_outages_total). */
uint64_t store_outages(void);

/* A connection of its own for the HTTP thread's webhook; connects on first use and again after
 * a failure. Never share one between threads. */
typedef struct store_alerts store_alerts_t;
store_alerts_t *store_alerts_new(const char *conninfo);
void store_alerts_destroy(store_alerts_t **self_p);

struct store_alert {
    const char *fingerprint;
    bool firing;
    int64_t payload_ms; /* startsAt/endsAt of the payload (0 = absent): with fingerprint and
                           status, the key that makes a retried notification count once */
    const char *name, *node, *labels_json;
    int state; /* Vigil__SignalState */
    int64_t ts_ms;
};
/* Stores the alerts as signals of the source "alertmanager" in one transaction; an alert whose
 * key is already stored is skipped. ret_new counts the others. 0 once committed. */
int store_alerts_put(store_alerts_t *self, const struct store_alert *alerts, size_t n,
                     size_t *ret_new);

/* ---- incidents (store_incidents.c) ---- */

/* A connection of its own for incidents (the admin socket's, the correlator's): never share one
 * between threads. Connects on first use and again after a failure. The statements below are
 * the primitives; coordinator/incidents/incidents.c decides the lifecycle and brackets them in one
 * transaction with store_incidents_begin/commit/rollback. */
typedef struct store_incidents store_incidents_t;
store_incidents_t *store_incidents_new(const char *conninfo);
void store_incidents_destroy(store_incidents_t **self_p);

int store_incidents_begin(store_incidents_t *self);
int store_incidents_commit(store_incidents_t *self);
void store_incidents_rollback(store_incidents_t *self);

/*
 * An operator's change and its audit row are one transaction: set the row right before calling
 * the change (incidents_ack, incidents_report, escalate_request, ...); the change's commit
 * writes it inside its transaction, and a rollback drops it. Clear it after the call, whatever
 * came of it (a refusal before any transaction leaves it set). Copied. 0, or -EINVAL for text
 * that is not UTF-8 or too long.
 */
int store_incidents_audit_on_commit(store_incidents_t *self, const char *actor,
                                    const char *action, const char *subject, const char *detail);
/* What the change decided inside its transaction replaces the pending row's detail (the report
 * that closes an incident). Nothing happens when no row is pending. */
void store_incidents_audit_detail(store_incidents_t *self, const char *detail);
/* The same for the subject (an incident opened by hand: its id is known only inside). */
void store_incidents_audit_subject(store_incidents_t *self, const char *subject);
void store_incidents_audit_clear(store_incidents_t *self);

#define STORE_INCIDENT_FINGERPRINT_MAX 256
#define STORE_INCIDENT_RUNBOOK_MAX 128
#define STORE_INCIDENT_TITLE_MAX 256
#define STORE_INCIDENT_SCOPE_MAX 8192 /* the scope's JSON text */

struct store_incident {
    uint64_t id;
    uint64_t root_id; /* 0 = none */
    char fingerprint[STORE_INCIDENT_FINGERPRINT_MAX];
    char runbook[STORE_INCIDENT_RUNBOOK_MAX];
    char title[STORE_INCIDENT_TITLE_MAX];
    int severity; /* 1 (SEV1) .. 4 (SEV4) */
    enum incident_state state;
    int64_t opened_at_ms, response_due_ms, updated_at_ms;
    int64_t acknowledged_at_ms, resolved_at_ms; /* 0 = not (or no longer) */
    char scope_json[STORE_INCIDENT_SCOPE_MAX];  /* a JSON array of node names */
};

/* Inside a transaction: locks and returns the open incident of fingerprint, else the latest one
 * resolved at or after resolved_since_ms (a candidate for reopening). -ENOENT if neither. */
int store_incident_find_for_symptom(store_incidents_t *self, const char *fingerprint,
                                    int64_t resolved_since_ms, struct store_incident *ret);

/* The oldest open incident of runbook (locked), for attaching dependent symptoms to their
 * root cause. 0, or -ENOENT when none is open. */
int store_incident_find_open_runbook(store_incidents_t *self, const char *runbook,
                                     struct store_incident *ret);
/* One incident; for_update locks it until the transaction ends. -ENOENT if there is none. */
int store_incident_get(store_incidents_t *self, uint64_t id, bool for_update,
                       struct store_incident *ret);
/* Inserts inc (its id ignored); -EEXIST if the fingerprint is already open, -EINVAL if a field
 * does not fit or is not valid UTF-8. */
int store_incident_insert(store_incidents_t *self, const struct store_incident *inc,
                          uint64_t *ret_id);
/* Writes severity, state, title, scope, response_due, acknowledged/resolved/updated times. */
int store_incident_update(store_incidents_t *self, const struct store_incident *inc);
/* Appends to the timeline. data_json: a JSON object, or NULL for {}. */
int store_incident_event(store_incidents_t *self, uint64_t incident_id, int64_t at_ms,
                         enum incident_event_kind kind, const char *actor, const char *text,
                         const char *data_json);

/* open_only: detected, acknowledged and mitigated only. Newest first, at most limit.
 * Stops early if cb returns non-zero. */
int store_incidents_list(store_incidents_t *self, bool open_only, uint64_t before_id, uint32_t limit,
                         int (*cb)(const struct store_incident *inc, void *userdata),
                         void *userdata);

struct store_incident_event {
    uint64_t id;
    uint64_t incident_id;
    int64_t at_ms;
    enum incident_event_kind kind;
    const char *actor, *text, *data_json; /* borrowed for the call */
};
/* The timeline of incident_id in order. Stops early if cb returns non-zero. */
int store_incident_events(store_incidents_t *self, uint64_t incident_id,
                          int (*cb)(const struct store_incident_event *ev, void *userdata),
                          void *userdata);
/* Every incident's timeline events with an id above after_id, oldest first, at most limit (how
 * `vigilctl tail` follows changes). */
int store_incident_events_after(store_incidents_t *self, uint64_t after_id, uint32_t limit,
                                int (*cb)(const struct store_incident_event *ev, void *userdata),
                                void *userdata);
/* The newest timeline event's id (0 when there is none). */
int store_incident_events_last(store_incidents_t *self, uint64_t *ret_id);

struct store_incident_report {
    int64_t at_ms;
    char author[128];
    char *body;        /* owned by the caller: free() */
    uint32_t versions; /* how many times it was written */
};
/* Appends a version of the incident's post-incident report. */
int store_incident_report_put(store_incidents_t *self, uint64_t incident_id, int64_t at_ms,
                              const char *author, const char *body);
/* The latest version; -ENOENT when none was written. */
int store_incident_report_get(store_incidents_t *self, uint64_t incident_id,
                              struct store_incident_report *ret);

/* ---- on-call overrides (store_oncall.c) ---- */
#include "oncall.h"

/* A connection of its own (never share one between threads); connects on first use and again
 * after a failure. */
typedef struct store_oncall store_oncall_t;
store_oncall_t *store_oncall_new(const char *conninfo);
void store_oncall_destroy(store_oncall_t **self_p);

/* Inserts ovr (its id ignored; schedule, user, from < to, created_by, created_ms used) and its
 * audit row by actor, in one transaction. The caller checked the names against the
 * configuration. 0, -EINVAL, -EIO. */
int store_oncall_override_add(store_oncall_t *self, const struct oncall_override *ovr,
                              const char *actor, uint64_t *ret_id);
/* Every override of any schedule that ends after ends_after_ms (at most 10000, the newest),
 * into a malloc'd array the caller frees. */
int store_oncall_overrides(store_oncall_t *self, int64_t ends_after_ms,
                           struct oncall_override **ret_items, size_t *ret_n);

/* ---- escalations and notifications (store_escalations.c), on the incidents connection ---- */

/* One incident's escalation timers (009_escalations.sql); times 0 = not set. */
struct store_escalation {
    uint64_t incident_id;
    char policy[128];
    int level;   /* the last level paged; -1 = none yet */
    int round;   /* policy repeats and reopens: a new round pages again */
    int repeats; /* times the policy ran again after its last level */
    int64_t started_at_ms;
    int64_t next_level_at_ms;
    bool escalate_now;
    char escalated_by[128];
    int64_t next_update_at_ms;
    int updates_sent;
    bool update_reminded; /* this interval's reminder went out (022_status_update_rule.sql) */
    int64_t deadline_at_ms;
    bool acked_told, resolved_told;
    int64_t report_due_at_ms;
    uint64_t failures_seen;
    /* Grouping (016_page_groups.sql): a member names its group's leader and pages nobody;
     * 0 = pages on its own, or leads. A leader's group_told_at_ms: members that joined at or
     * after it are not yet told; group_next_at_ms: when they may be (0 = nothing due). */
    uint64_t group_leader;
    int64_t group_told_at_ms, group_next_at_ms;
    bool silenced; /* a silence held one of its pages back: from then on it neither leads nor
                      joins a group (017_silences.sql) */
};
/* -ENOENT when the incident has none. for_update locks it until the transaction ends. */
int store_escalation_get(store_incidents_t *self, uint64_t incident_id, bool for_update,
                         struct store_escalation *ret);
/* Inserts or overwrites the row. */
int store_escalation_put(store_incidents_t *self, const struct store_escalation *e);
/* Incidents with something to do at now_ms (not yet escalated, a timer due, a state change not
 * yet told, a failed notification not yet seen), at most max, oldest first. */
int store_escalations_due(store_incidents_t *self, int64_t now_ms, uint64_t *ids, size_t max,
                          size_t *ret_n);

/* A message to insert (007_notifications.sql); strings borrowed. */
struct store_notification {
    uint64_t incident_id;
    enum notification_kind kind;
    int level, round;
    const char *target;
    enum paging_channel channel;
    const char *address, *event;
    const char *subject, *body, *payload_json;
    int64_t created_at_ms;
    bool held; /* past the person's cap: stored 'held', never delivered (see page groups) */
};
/* Inserts once per (incident, kind, level, round, target, channel); *ret_added false when it
 * was already there (a page is never sent twice). */
int store_notification_add(store_incidents_t *self, const struct store_notification *n,
                           bool *ret_added);

/* A stored notification, borrowed for the callback. */
struct store_notification_row {
    uint64_t id;
    enum notification_kind kind;
    int level, round;
    const char *target;
    enum paging_channel channel;
    const char *address, *event;
    enum notification_status status;
    int attempts;
    int last_code; /* HTTP status or SMTP reply; 0 = none */
    const char *last_error;
    int64_t created_at_ms, sent_at_ms; /* sent 0 = not sent */
};
/* One command of an incident, for its report (strings borrowed for the callback). */
struct store_incident_command {
    const char *id, *action, *node, *mode, *requested_by, *state;
    bool has_exit; /* a done report came */
    int exit_status;
    const char *reason; /* a refusal's reason, "" = none */
};
/* Every command of incident_id in the order they were requested. cb returns 0 or a negative
 * errno (which stops and is returned). */
int store_incident_commands(store_incidents_t *self, uint64_t incident_id,
                            int (*cb)(const struct store_incident_command *c, void *userdata),
                            void *userdata);
/* One artifact (or its failure) of an incident: its investigation's, or one a command of the
 * incident left (command_id set). Borrowed for the callback. */
struct store_incident_evidence {
    const char *kind, *node, *command_id, *status, *error, *sha256_hex;
    uint64_t evidence_id; /* 0 unless stored */
    uint64_t size;
};
/* Every artifact of incident_id in the order it was asked for (at most 512); cb as above. */
int store_incident_evidence(store_incidents_t *self, uint64_t incident_id,
                            int (*cb)(const struct store_incident_evidence *e, void *userdata),
                            void *userdata);
/* An automatic action (a runbook step Vigil issued on its own signature) that ended. */
struct store_incident_action {
    uint64_t n; /* the command's listing number: the notification's round */
    const char *id, *action, *node, *state;
    bool has_exit;
    int exit_status;
};
/* incident_id's automatic actions that ended (done, failed, refused, lost) within the last hour
 * and have no 'action' notification yet, oldest first; cb as above. */
int store_incident_actions_untold(store_incidents_t *self, uint64_t incident_id,
                                  int (*cb)(const struct store_incident_action *a, void *userdata),
                                  void *userdata);
/* For a page: whether runbook auto steps run by themselves (table automation) and the
 * incident's requests that wait for approval ("ID ACTION on NODE, ...", malloc'd, "" = none). */
int store_incidents_automation(store_incidents_t *self, uint64_t incident_id, bool *ret_enabled,
                               char **ret_pending);
int store_notifications_list(store_incidents_t *self, uint64_t incident_id,
                             int (*cb)(const struct store_notification_row *row, void *userdata),
                             void *userdata);
/* The incident's failed notifications with an id above after_id. */
int store_notifications_failed_after(
    store_incidents_t *self, uint64_t incident_id, uint64_t after_id,
    int (*cb)(const struct store_notification_row *row, void *userdata), void *userdata);

/* ---- page groups and the per-person cap (store_page_groups.c), on the incidents connection ---- */

/* Inside a transaction: the leader of an open group a per-node incident of runbook may join
 * (its own leader, open, paged along policy, at least as severe as severity, not exclude_id),
 * its escalation row locked. 0 with *ret_leader, or -ENOENT when there is none. */
int store_page_group_find(store_incidents_t *self, const char *runbook, const char *policy,
                          int severity, uint64_t exclude_id, uint64_t *ret_leader);
/* The group of leader_id: its open incidents' nodes (the leader's and its members'), or with
 * joined_since_ms > 0 only the members that joined at or after it (open or not). *ret_count is
 * how many; *ret_names (malloc'd, caller frees) the first max_names of them, ", "-separated. */
int store_page_group_nodes(store_incidents_t *self, uint64_t leader_id, int64_t joined_since_ms,
                           size_t max_names, uint32_t *ret_count, char **ret_names);
/* The oldest open member of leader_id's group, its row locked; -ENOENT when none is open. */
int store_page_group_successor(store_incidents_t *self, uint64_t leader_id, uint64_t *ret_id);
/* Every member of from_leader's group (but to_leader itself) now follows to_leader. */
int store_page_group_move(store_incidents_t *self, uint64_t from_leader, uint64_t to_leader);
/* The incident's notifications and those of its group's members (a former leader's pages),
 * in id order (store_escalations.c, beside store_notifications_list). */
int store_notifications_list_group(store_incidents_t *self, uint64_t incident_id,
                                   int (*cb)(const struct store_notification_row *row,
                                             void *userdata),
                                   void *userdata);
/* Pages and summaries delivered (or on their way) to target since since_ms, counted per
 * message (incident, level, round), not per channel. */
int store_pages_recent(store_incidents_t *self, const char *target, int64_t since_ms,
                       uint32_t *ret_count);
/* One person's held pages on one channel, borrowed for the callback. */
struct store_held_pages {
    const char *target;
    enum paging_channel channel;
    const char *address;
    uint64_t newest_incident_id, newest_id;
    uint32_t count;
    const char *subjects; /* the first subjects, one a line */
};
/* Every (target, channel) with held pages, at most max. */
int store_pages_held(store_incidents_t *self, size_t max,
                     int (*cb)(const struct store_held_pages *held, void *userdata),
                     void *userdata);
/* target's held pages on channel up to up_to_id become 'summarised'. */
int store_pages_summarised(store_incidents_t *self, const char *target,
                           enum paging_channel channel, uint64_t up_to_id);

/* ---- silences (store_silences.c, 017_silences.sql), on an incidents connection ---- */

#define STORE_SILENCE_VALUE_MAX 512
#define STORE_SILENCE_REASON_MAX 1024
#define STORE_SILENCES_LISTED_MAX 1000

enum store_silence_matcher { STORE_SILENCE_RUNBOOK, STORE_SILENCE_NODE, STORE_SILENCE_LABEL };

struct store_silence {
    uint64_t id;
    enum store_silence_matcher matcher;
    char value[STORE_SILENCE_VALUE_MAX + 1];   /* runbook id, node name or "KEY=VALUE" */
    char reason[STORE_SILENCE_REASON_MAX + 1];
    char created_by[160]; /* the operator's name */
    int64_t created_at_ms, ends_at_ms;
    int64_t ended_at_ms; /* 0 = not ended by hand */
    char ended_by[160];  /* the actor, "operator:NAME" */
};
/* "runbook", "node", "label"; NULL outside the enum. */
const char *store_silence_matcher_name(enum store_silence_matcher m);

/* Inserts s (id, ended_* ignored) and its audit row (actor), one transaction. -EINVAL when a
 * field does not fit, is empty or is not UTF-8, or ends_at is not after created_at. */
int store_silence_add(store_incidents_t *self, const struct store_silence *s, const char *actor,
                      uint64_t *ret_id);
/* Ends silence id at at_ms, with its audit row, one transaction; *ret holds it as it now is.
 * -ENOENT unknown id, -EALREADY ended or expired already. */
int store_silence_end(store_incidents_t *self, uint64_t id, const char *actor, int64_t at_ms,
                      struct store_silence *ret);
/* Silences in force at now_ms (all: every silence, newest first), at most max, into *ret
 * (malloc'd, caller frees; NULL when none) and *ret_n. */
int store_silences_list(store_incidents_t *self, bool all, int64_t now_ms, size_t max,
                        struct store_silence **ret, size_t *ret_n);

/* ---- practice drills (store_drills.c, 020_drills.sql), on an incidents connection ---- */

struct store_drill {
    uint64_t incident_id;
    bool live;            /* the runbook's real policy is paged (every message marked [DRILL]) */
    char started_by[160]; /* the actor, "operator:NAME" */
    int64_t started_at_ms;
};
/* Inside the caller's transaction (the one that inserts the incident). */
int store_drill_insert(store_incidents_t *self, const struct store_drill *d);
/* -ENOENT when incident_id is not a drill. */
int store_drill_get(store_incidents_t *self, uint64_t incident_id, struct store_drill *ret);

/* ---- follow-up actions (store_followups.c, 023_followups.sql), on an incidents connection.
 * The people's action items after an incident (issue 18, step 5) — not struct store_followup
 * above, which is the evidence a command leaves. ---- */

#define STORE_FOLLOWUP_TEXT_MAX 1024  /* bytes of UTF-8: the text and a done note */
#define STORE_FOLLOWUP_OWNER_MAX 64   /* characters */
#define STORE_FOLLOWUPS_LISTED_MAX 1000

struct store_followup_action {
    uint64_t id, incident_id;
    char text[STORE_FOLLOWUP_TEXT_MAX + 1];
    char owner[STORE_FOLLOWUP_OWNER_MAX * 4 + 1]; /* "" = nobody named */
    char due[11];                                 /* "YYYY-MM-DD", "" = none */
    bool overdue;          /* open and due before the listing's day (UTC) */
    char created_by[256];  /* the operator's name */
    int64_t created_at_ms;
    bool done;
    char done_by[256];     /* the operator's name */
    int64_t done_at_ms;
    char done_note[STORE_FOLLOWUP_TEXT_MAX + 1];
};

/* Adds f (its incident_id, text, owner, due and created_by; the rest ignored) at at_ms, with a
 * note on the incident's timeline and an audit row (actor, "operator:NAME"), one transaction.
 * *ret (may be NULL) holds it as stored. -ENOENT unknown incident, -EINVAL a field that does
 * not fit or is not UTF-8. */
int store_followup_add(store_incidents_t *self, const struct store_followup_action *f,
                       const char *actor, int64_t at_ms, struct store_followup_action *ret);
/* Marks follow-up id done by name (note may be "") at at_ms, with the timeline note and the
 * audit row, one transaction; *ret (may be NULL) holds it as it now is. -ENOENT unknown id,
 * -EALREADY done already. */
int store_followup_done(store_incidents_t *self, uint64_t id, const char *name, const char *actor,
                        const char *note, int64_t at_ms, struct store_followup_action *ret);
/* Follow-ups into *ret (malloc'd, caller frees; NULL when none) and *ret_n, at most max.
 * incident_id 0: every incident's, open ones overdue first, then by due date, then newest;
 * all adds the done ones after them. Else that incident's, done or not, oldest first.
 * today_ms: the day (UTC) that decides what is overdue. */
int store_followups_list(store_incidents_t *self, uint64_t incident_id, bool all, int64_t today_ms,
                         size_t max, struct store_followup_action **ret, size_t *ret_n);

/* ---- status updates and the status page (store_status.c, 021_status_updates.sql), on an
 * incidents connection ---- */

/* Inside the caller's transaction: one status update. components_json a JSON object. */
int store_status_update_add(store_incidents_t *self, uint64_t incident_id, int64_t at_ms,
                            const char *author, const char *body, bool public_,
                            const char *title, const char *incident_state,
                            const char *components_json);

/* One public update with its incident, for the status page (strings borrowed for the
 * callback). Nothing else of the incident is read: no scope, no timeline, no author. */
struct store_status_row {
    uint64_t incident_id;
    enum incident_state state;      /* the incident's state now */
    int64_t opened_at_ms, resolved_at_ms, incident_updated_at_ms;
    uint64_t update_id;
    int64_t at_ms;
    const char *body, *title, *components_json;
    enum incident_state update_state; /* the incident's state when it was posted */
};
/* The public updates of every incident that has one and is open or resolved at or after
 * since_ms: incidents newest first, each one's updates oldest first; at most max rows. */
int store_status_rows(store_incidents_t *self, int64_t since_ms, uint32_t max,
                      int (*cb)(const struct store_status_row *row, void *userdata),
                      void *userdata);
/* *ret: incident_id has a public update already. */
int store_status_published(store_incidents_t *self, uint64_t incident_id, bool *ret);

/* An incident's status update (public or not), for the status update rule. */
struct store_status_posted {
    uint64_t id;
    int64_t at_ms;
    bool public_;
    const char *author, *body; /* borrowed for the callback */
};
/* Its updates posted at or after since_ms, oldest first (at most 16). cb returns 0 or a
 * negative errno (which stops and is returned). */
int store_status_since(store_incidents_t *self, uint64_t incident_id, int64_t since_ms,
                       int (*cb)(const struct store_status_posted *u, void *userdata),
                       void *userdata);
/* Who acknowledged incident_id last (its owner), into buf; "" when nobody did. */
int store_incident_owner(store_incidents_t *self, uint64_t incident_id, char *buf, size_t size);

#endif
