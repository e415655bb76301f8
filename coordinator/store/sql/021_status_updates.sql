-- 021: status updates in the operators' words (issue 18, docs/status-page.md). `vigilctl update`
-- adds one; a public one puts its incident on the status page, with the components it names
-- and their state. What the page shows comes only from here (the title and text an operator
-- published), never from incident_events, signals or evidence. Append-only, like the timeline.
CREATE TABLE status_updates (
    id             bigserial PRIMARY KEY,
    incident_id    bigint NOT NULL REFERENCES incidents (id),
    at             timestamptz NOT NULL,
    author         text NOT NULL,          -- the operator's name (never shown on the page)
    body           text NOT NULL,
    public         boolean NOT NULL,
    title          text NOT NULL DEFAULT '', -- the incident's public name; '' = an earlier one
    incident_state text NOT NULL            -- the incident's state when it was posted
                   CHECK (incident_state IN ('detected', 'acknowledged', 'mitigated', 'resolved',
                                             'closed')),
    -- {"component name": "degraded_performance" | "partial_outage" | "major_outage"}
    components     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX status_updates_incident ON status_updates (incident_id, id);
CREATE INDEX status_updates_public ON status_updates (at) WHERE public;

CREATE FUNCTION status_updates_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'status_updates is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER status_updates_append_only
    BEFORE UPDATE OR DELETE ON status_updates
    FOR EACH ROW EXECUTE FUNCTION status_updates_refuse_change();
