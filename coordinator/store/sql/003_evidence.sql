-- 003: evidence on demand — collections (what an operator asked for), their targets (one per
-- agent asked), the chunks agents sent, and the evidence vault (verified artifacts, chained).
--
-- evidence and evidence_chunks are the record: append-only, like audit_log. Collections and
-- targets are bookkeeping of a request in progress (a target goes pending -> stored | failed),
-- so they stay mutable; every outcome that matters for an investigation is also an audit_log
-- row or an evidence row, both append-only.

CREATE TABLE evidence_collections (
    id           bigserial PRIMARY KEY,
    operator     text NOT NULL,             -- who asked: "operator:<name>"
    kind         text NOT NULL,
    args         jsonb NOT NULL DEFAULT '{}',
    requested_at timestamptz NOT NULL DEFAULT now(),
    deadline     timestamptz NOT NULL       -- a target still pending after this has failed
);

CREATE TABLE evidence_targets (
    collection_id bigint NOT NULL REFERENCES evidence_collections (id),
    agent_id      text NOT NULL,
    node          text NOT NULL,
    status        text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'stored', 'failed')),
    error         text NOT NULL DEFAULT '',
    evidence_id   bigint,                   -- set when stored
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (collection_id, agent_id)
);
-- The liveness tick looks for pending targets past their deadline every second.
CREATE INDEX evidence_targets_pending ON evidence_targets (collection_id) WHERE status = 'pending';

-- What agents sent, chunk by chunk, before and after verification. An artifact is
-- (agent_id, artifact); its last chunk carries the agent's total size and SHA-256.
-- Chunks of an artifact that failed verification stay here (append-only), never in evidence.
CREATE TABLE evidence_chunks (
    agent_id      text NOT NULL,
    artifact      bigint NOT NULL,
    "offset"      bigint NOT NULL CHECK ("offset" >= 0),
    collection_id bigint NOT NULL,
    seq           bigint NOT NULL,          -- the envelope that carried it
    data          bytea NOT NULL,
    last          boolean NOT NULL DEFAULT false,
    total_size    bigint,                   -- last chunk only
    sha256        bytea CHECK (sha256 IS NULL OR length(sha256) = 32), -- last chunk only
    truncated     boolean NOT NULL DEFAULT false,
    collected_at  timestamptz,
    PRIMARY KEY (agent_id, artifact, "offset")
);
-- Artifact bytes are mostly incompressible and read back in order: out of line, uncompressed.
ALTER TABLE evidence_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

-- The vault. chain = SHA-256(prev_chain || sha256 || metadata) over every row in id order
-- (metadata as store.c's evidence_chain_metadata spells it); the first row's prev_chain is
-- 32 zero bytes. prev_chain is unique, so the chain cannot fork even if two writers raced;
-- agent_seq numbers each agent's artifacts 1, 2, 3... so a missing row leaves a visible gap.
CREATE TABLE evidence (
    id            bigserial PRIMARY KEY,
    collection_id bigint NOT NULL,
    agent_id      text NOT NULL,
    agent_seq     bigint NOT NULL CHECK (agent_seq >= 1),
    artifact      bigint NOT NULL,
    node          text NOT NULL,
    kind          text NOT NULL,
    args          jsonb NOT NULL DEFAULT '{}',
    collected_at  timestamptz NOT NULL,
    stored_at     timestamptz NOT NULL,
    size          bigint NOT NULL CHECK (size >= 0),
    sha256        bytea NOT NULL CHECK (length(sha256) = 32),
    truncated     boolean NOT NULL,
    prev_chain    bytea NOT NULL UNIQUE CHECK (length(prev_chain) = 32),
    chain         bytea NOT NULL UNIQUE CHECK (length(chain) = 32),
    UNIQUE (agent_id, agent_seq),
    UNIQUE (agent_id, artifact)
);
CREATE INDEX evidence_collection ON evidence (collection_id);

-- Append-only: one refusal for every table that keeps the record.
CREATE FUNCTION vigil_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER evidence_append_only
    BEFORE UPDATE OR DELETE ON evidence
    FOR EACH ROW EXECUTE FUNCTION vigil_refuse_change();
CREATE TRIGGER evidence_no_truncate
    BEFORE TRUNCATE ON evidence
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_refuse_change();
CREATE TRIGGER evidence_chunks_append_only
    BEFORE UPDATE OR DELETE ON evidence_chunks
    FOR EACH ROW EXECUTE FUNCTION vigil_refuse_change();
CREATE TRIGGER evidence_chunks_no_truncate
    BEFORE TRUNCATE ON evidence_chunks
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_refuse_change();
