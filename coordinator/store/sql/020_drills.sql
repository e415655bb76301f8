-- 020: practice drills (issue 17; admin/drills.c, paging/escalate.c). A drill is an incident
-- opened by `vigilctl drill RUNBOOK` with a synthetic symptom; its row here is written in the
-- same transaction as the incident, so the escalation never sees a drill without knowing it is
-- one. Without live, its pages go to paging.drills.audience only (the policy "drill"), the
-- severity's audiences hear nothing, and its resolve steps are a dry run; with live, the
-- runbook's real policy is paged, every message marked [DRILL]. A drill's row never changes.

CREATE TABLE drills (
    incident_id bigint PRIMARY KEY REFERENCES incidents (id),
    live        boolean NOT NULL,
    started_by  text NOT NULL CHECK (length(started_by) BETWEEN 1 AND 255),
    started_at  timestamptz NOT NULL
);

CREATE TRIGGER drills_append_only
    BEFORE UPDATE OR DELETE ON drills
    FOR EACH ROW EXECUTE FUNCTION vigil_refuse_change();
CREATE TRIGGER drills_no_truncate
    BEFORE TRUNCATE ON drills
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_refuse_change();
