-- 001: agents, operators, stored agent messages, signal samples, the audit log.
--
-- schema_migrations (version, name, applied_at) is created by migrations.c before any file
-- runs, because it must exist to know which files to run. This file runs inside that
-- transaction: no BEGIN/COMMIT here.

CREATE TABLE agents (
    id               text PRIMARY KEY,
    public_key       text NOT NULL UNIQUE,
    node             text NOT NULL DEFAULT '',
    state            text NOT NULL CHECK (state IN ('pending', 'active', 'lost', 'revoked')),
    agent_version    text NOT NULL DEFAULT '',
    enrolled_at      timestamptz NOT NULL DEFAULT now(),
    state_since      timestamptz NOT NULL DEFAULT now(),
    last_seen        timestamptz,                       -- NULL = never
    uptime_s         bigint NOT NULL DEFAULT 0,
    spool_depth      bigint NOT NULL DEFAULT 0,
    spool_bytes      bigint NOT NULL DEFAULT 0,
    dropped_messages bigint NOT NULL DEFAULT 0,
    dropped_samples  bigint NOT NULL DEFAULT 0
);

CREATE TABLE operators (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    public_key text NOT NULL UNIQUE,
    role       text NOT NULL CHECK (role IN ('viewer', 'responder', 'admin')),
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz                              -- NULL = active
);

-- One row per durable agent message: (agent_id, seq) is what makes ingest idempotent.
-- No foreign key to agents: a batch must never fail on a row it cannot fix by resending.
CREATE TABLE agent_messages (
    agent_id    text NOT NULL,
    seq         bigint NOT NULL CHECK (seq >= 1),
    kind        text NOT NULL,
    sent_at     timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, seq)
);

-- Signal samples, written with COPY. (agent_id, seq) names the message that carried them.
CREATE TABLE signals (
    agent_id text NOT NULL,
    seq      bigint NOT NULL,
    name     text NOT NULL,
    value    double precision NOT NULL,
    unit     text NOT NULL DEFAULT '',
    labels   jsonb NOT NULL DEFAULT '{}',
    ts       timestamptz NOT NULL
);
-- "Latest value of <name> on <agent>": an index scan of one (agent_id, name) range, newest first.
CREATE INDEX signals_agent_name_ts ON signals (agent_id, name, ts DESC);

CREATE TABLE audit_log (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text NOT NULL,
    action  text NOT NULL,
    subject text,
    detail  text
);

-- Append-only: rows are inserted, never changed or removed.
CREATE FUNCTION audit_log_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();

CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
