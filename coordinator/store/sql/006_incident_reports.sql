-- 006: the end of an incident's lifecycle. An incident is closed when its post-incident report
-- exists (the document's report template, filled in by the responders). Reports are versioned:
-- a revision is a new row, the incident's report is its latest row; nothing is rewritten.

ALTER TABLE incident_events DROP CONSTRAINT incident_events_kind_check;
ALTER TABLE incident_events ADD CONSTRAINT incident_events_kind_check
    CHECK (kind IN ('opened', 'symptom', 'severity', 'acknowledged', 'mitigated', 'resolved',
                    'reopened', 'note', 'attached', 'report', 'closed'));

CREATE TABLE incident_reports (
    id          bigserial PRIMARY KEY,
    incident_id bigint NOT NULL REFERENCES incidents (id),
    at          timestamptz NOT NULL,
    author      text NOT NULL,
    body        text NOT NULL CHECK (length(body) > 0)
);
CREATE INDEX incident_reports_latest ON incident_reports (incident_id, id DESC);

CREATE TRIGGER incident_reports_append_only
    BEFORE UPDATE OR DELETE ON incident_reports
    FOR EACH ROW EXECUTE FUNCTION incident_events_refuse_change();

CREATE TRIGGER incident_reports_no_truncate
    BEFORE TRUNCATE ON incident_reports
    FOR EACH STATEMENT EXECUTE FUNCTION incident_events_refuse_change();
