-- 013: remediation commands (docs/remediation.md, "Commands"): each agent's declared action
-- catalog, and every command as request -> approvals -> capsule -> reports.
--
-- Approvals, capsules and reports are the record: append-only, like the vault and the timeline.
-- A request row keeps the fields its canonical hash covers and may change in one column only,
-- state, which follows its approvals and reports (pending -> issued -> accepted -> started ->
-- done | failed, or refused, lost, cancelled, expired); everything that changed it is also an
-- append-only row (an approval, a capsule, a report) or an audit_log row.

-- The agent's catalog as it last declared it at enrollment (Enroll.actions): a JSON array of
-- {name, kind, mode, params, root, inverse}. The coordinator names an action only to agents
-- that declare it.
ALTER TABLE agents ADD COLUMN actions jsonb NOT NULL DEFAULT '[]';

CREATE TABLE command_requests (
    n              bigserial UNIQUE,           -- listing order and cursor
    id             text PRIMARY KEY,
    action         text NOT NULL,
    args           jsonb NOT NULL DEFAULT '{}', -- a flat object of strings
    node           text NOT NULL,
    incident_id    bigint NOT NULL DEFAULT 0,   -- 0 = none
    requested_by   text NOT NULL,               -- the operator's name, or 'vigil'
    created_at     timestamptz NOT NULL,
    approve_by     timestamptz NOT NULL,
    dry_run        boolean NOT NULL DEFAULT false,
    mode           text NOT NULL CHECK (mode IN ('auto', 'approve', 'destructive')),
    request_sha256 bytea NOT NULL CHECK (length(request_sha256) = 32),
    state          text NOT NULL DEFAULT 'pending'
                   CHECK (state IN ('pending', 'issued', 'accepted', 'started', 'done', 'failed',
                                    'refused', 'lost', 'cancelled', 'expired'))
);
CREATE INDEX command_requests_incident ON command_requests (incident_id, n);
CREATE INDEX command_requests_waiting ON command_requests (state) WHERE state IN ('pending', 'issued');

CREATE TABLE command_approvals (
    request_id  text NOT NULL REFERENCES command_requests (id),
    operator    text NOT NULL,
    role        text NOT NULL CHECK (role IN ('responder', 'admin')),
    signing_key text NOT NULL CHECK (signing_key ~ '^[A-Za-z0-9+/]{43}=$'),
    signature   bytea NOT NULL CHECK (length(signature) = 64),
    at          timestamptz NOT NULL,
    PRIMARY KEY (request_id, operator)
);

CREATE TABLE command_capsules (
    request_id      text PRIMARY KEY REFERENCES command_requests (id),
    nonce           bytea NOT NULL UNIQUE CHECK (length(nonce) = 16),
    issued_at       timestamptz NOT NULL,
    not_after       timestamptz NOT NULL,
    coordinator_key text NOT NULL,              -- the signing public key, base64
    signature       bytea NOT NULL CHECK (length(signature) = 64)
);
CREATE INDEX command_capsules_not_after ON command_capsules (not_after);

-- One row per CommandReport, stored in the ingest transaction: (agent_id, seq) is its message
-- in agent_messages, so a resent report is stored once. Only reports that name an issued
-- capsule (request id and nonce) from an agent of the request's node get here.
CREATE TABLE command_reports (
    agent_id      text NOT NULL,
    seq           bigint NOT NULL,
    request_id    text NOT NULL REFERENCES command_requests (id),
    nonce         bytea NOT NULL CHECK (length(nonce) = 16),
    step          text NOT NULL CHECK (step IN ('accepted', 'started', 'done', 'refused')),
    exit_status   integer,
    duration_ms   bigint,
    output_sha256 bytea CHECK (output_sha256 IS NULL OR length(output_sha256) = 32),
    truncated     boolean NOT NULL DEFAULT false,
    reason        text NOT NULL DEFAULT '',
    reported_at   timestamptz,                  -- the agent's clock
    at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, seq)
);
CREATE INDEX command_reports_request ON command_reports (request_id, at);

-- How far a request has come: a report moves it forward only (a late accepted never undoes a
-- done), and a report after the request was marked lost still counts.
CREATE FUNCTION vigil_command_state_rank(state text) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE state WHEN 'pending' THEN 0 WHEN 'issued' THEN 1 WHEN 'lost' THEN 1
                      WHEN 'accepted' THEN 2 WHEN 'started' THEN 3 ELSE 4 END
$$;

-- A request's fields are what its hash and approvals cover: only state may change.
CREATE FUNCTION vigil_command_requests_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND (NEW.n, NEW.id, NEW.action, NEW.args, NEW.node, NEW.incident_id, NEW.requested_by,
            NEW.created_at, NEW.approve_by, NEW.dry_run, NEW.mode, NEW.request_sha256)
           IS NOT DISTINCT FROM
           (OLD.n, OLD.id, OLD.action, OLD.args, OLD.node, OLD.incident_id, OLD.requested_by,
            OLD.created_at, OLD.approve_by, OLD.dry_run, OLD.mode, OLD.request_sha256) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'command_requests: only state may change: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER command_requests_guard
    BEFORE UPDATE OR DELETE ON command_requests
    FOR EACH ROW EXECUTE FUNCTION vigil_command_requests_guard();
CREATE TRIGGER command_requests_no_truncate
    BEFORE TRUNCATE ON command_requests
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_refuse_change();
CREATE TRIGGER command_approvals_append_only
    BEFORE UPDATE OR DELETE ON command_approvals
    FOR EACH ROW EXECUTE FUNCTION vigil_refuse_change();
CREATE TRIGGER command_approvals_no_truncate
    BEFORE TRUNCATE ON command_approvals
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_refuse_change();
CREATE TRIGGER command_capsules_append_only
    BEFORE UPDATE OR DELETE ON command_capsules
    FOR EACH ROW EXECUTE FUNCTION vigil_refuse_change();
CREATE TRIGGER command_capsules_no_truncate
    BEFORE TRUNCATE ON command_capsules
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_refuse_change();
CREATE TRIGGER command_reports_append_only
    BEFORE UPDATE OR DELETE ON command_reports
    FOR EACH ROW EXECUTE FUNCTION vigil_refuse_change();
CREATE TRIGGER command_reports_no_truncate
    BEFORE TRUNCATE ON command_reports
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_refuse_change();

-- Command steps go on the incident's timeline.
ALTER TABLE incident_events DROP CONSTRAINT incident_events_kind_check;
ALTER TABLE incident_events ADD CONSTRAINT incident_events_kind_check
    CHECK (kind IN ('opened', 'symptom', 'severity', 'acknowledged', 'mitigated', 'resolved',
                    'reopened', 'note', 'attached', 'report', 'closed',
                    'escalated', 'notify_failed', 'deadline_missed', 'status_update',
                    'report_due', 'command'));
