-- 005: incidents and their timelines. An incident is what a responder works on: one per open
-- symptom fingerprint (runbook id + scope key); the timeline says what happened to it, when and
-- who did it, and is never rewritten.

CREATE TABLE incidents (
    id               bigserial PRIMARY KEY,
    fingerprint      text NOT NULL,
    runbook          text NOT NULL,
    title            text NOT NULL,
    severity         smallint NOT NULL CHECK (severity BETWEEN 1 AND 4), -- SEV1 .. SEV4
    state            text NOT NULL
                     CHECK (state IN ('detected', 'acknowledged', 'mitigated', 'resolved', 'closed')),
    opened_at        timestamptz NOT NULL,
    response_due     timestamptz NOT NULL,
    acknowledged_at  timestamptz,
    resolved_at      timestamptz,
    updated_at       timestamptz NOT NULL,
    scope            jsonb NOT NULL DEFAULT '[]', -- the nodes involved, a JSON array of names
    root_incident_id bigint REFERENCES incidents (id)
);

-- A symptom that is already open joins its incident: at most one open incident per fingerprint.
CREATE UNIQUE INDEX incidents_open_fingerprint ON incidents (fingerprint)
    WHERE state IN ('detected', 'acknowledged', 'mitigated');
-- A symptom that returns soon after a resolve reopens the latest resolved incident.
CREATE INDEX incidents_resolved_fingerprint ON incidents (fingerprint, resolved_at DESC)
    WHERE state = 'resolved';

CREATE TABLE incident_events (
    id          bigserial PRIMARY KEY,
    incident_id bigint NOT NULL REFERENCES incidents (id),
    at          timestamptz NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('opened', 'symptom', 'severity', 'acknowledged',
                                              'mitigated', 'resolved', 'reopened', 'note',
                                              'attached')),
    actor       text NOT NULL, -- an operator's name, or 'vigil'
    text        text NOT NULL DEFAULT '',
    data        jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX incident_events_timeline ON incident_events (incident_id, id);

-- The timeline is append-only: rows are inserted, never changed or removed.
CREATE FUNCTION incident_events_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'incident_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER incident_events_append_only
    BEFORE UPDATE OR DELETE ON incident_events
    FOR EACH ROW EXECUTE FUNCTION incident_events_refuse_change();

CREATE TRIGGER incident_events_no_truncate
    BEFORE TRUNCATE ON incident_events
    FOR EACH STATEMENT EXECUTE FUNCTION incident_events_refuse_change();
