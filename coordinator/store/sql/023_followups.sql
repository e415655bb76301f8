-- 023: follow-up actions (issue 18, the document's step 5; admin/followups.c,
-- store/store_followups.c). `vigilctl followup add INCIDENT TEXT [--owner O] [--due DATE]` adds
-- one to an incident; `vigilctl followup done ID` finishes it; the report draft lists them as
-- checkboxes and `vigilctl followups` lists the open ones across incidents, overdue first.
-- Both tables are append-only, like the timeline: a follow-up never changes, and finishing it
-- is a row of followup_events (one 'done' per follow-up, which the unique index enforces: a
-- second one is a conflict, not a second row). Each change is audited (audit_log) and noted
-- on the incident's timeline in the same transaction.

CREATE TABLE followups (
    id          bigserial PRIMARY KEY,
    incident_id bigint NOT NULL REFERENCES incidents (id),
    text        text NOT NULL CHECK (octet_length(text) BETWEEN 1 AND 1024),
    owner       text NOT NULL DEFAULT '' CHECK (length(owner) <= 64), -- '' = nobody named
    due         date,                                                 -- NULL = no due date
    created_by  text NOT NULL CHECK (length(created_by) BETWEEN 1 AND 255), -- operator's name
    created_at  timestamptz NOT NULL
);
CREATE INDEX followups_incident ON followups (incident_id, id);

CREATE TABLE followup_events (
    id          bigserial PRIMARY KEY,
    followup_id bigint NOT NULL REFERENCES followups (id),
    kind        text NOT NULL CHECK (kind IN ('done')),
    actor       text NOT NULL CHECK (length(actor) BETWEEN 1 AND 255), -- operator's name
    at          timestamptz NOT NULL,
    note        text NOT NULL DEFAULT '' CHECK (octet_length(note) <= 1024)
);
CREATE UNIQUE INDEX followup_events_done_once ON followup_events (followup_id)
    WHERE kind = 'done';

CREATE TRIGGER followups_append_only
    BEFORE UPDATE OR DELETE ON followups
    FOR EACH ROW EXECUTE FUNCTION vigil_refuse_change();
CREATE TRIGGER followups_no_truncate
    BEFORE TRUNCATE ON followups
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_refuse_change();
CREATE TRIGGER followup_events_append_only
    BEFORE UPDATE OR DELETE ON followup_events
    FOR EACH ROW EXECUTE FUNCTION vigil_refuse_change();
CREATE TRIGGER followup_events_no_truncate
    BEFORE TRUNCATE ON followup_events
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_refuse_change();
