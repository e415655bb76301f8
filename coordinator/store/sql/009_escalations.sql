-- 009: escalations, the durable timers of an open incident (escalate.c). One row per incident
-- that was ever paged. Every due timer is handled in one transaction together with the
-- notifications it inserts, so a restart fires late timers at once, and only once.

ALTER TABLE incident_events DROP CONSTRAINT incident_events_kind_check;
ALTER TABLE incident_events ADD CONSTRAINT incident_events_kind_check
    CHECK (kind IN ('opened', 'symptom', 'severity', 'acknowledged', 'mitigated', 'resolved',
                    'reopened', 'note', 'attached', 'report', 'closed',
                    'escalated', 'notify_failed', 'deadline_missed', 'status_update',
                    'report_due'));

CREATE TABLE escalations (
    incident_id    bigint PRIMARY KEY REFERENCES incidents (id),
    policy         text NOT NULL,
    level          integer NOT NULL DEFAULT -1, -- the last level paged; -1 = none yet
    round          integer NOT NULL DEFAULT 0,  -- policy repeats and reopens: a new round pages again
    repeats        integer NOT NULL DEFAULT 0,  -- times the policy ran again after its last level
    started_at     timestamptz NOT NULL,        -- level delays count from here
    next_level_at  timestamptz,                 -- NULL: stopped (acknowledged, resolved, last level)
    escalate_now   boolean NOT NULL DEFAULT false, -- vigilctl escalate: the next level at once
    escalated_by   text NOT NULL DEFAULT '',
    next_update_at timestamptz,                 -- status update while open
    updates_sent   integer NOT NULL DEFAULT 0,
    deadline_at    timestamptz,                 -- response deadline; NULL once met or missed
    acked_told     boolean NOT NULL DEFAULT false,
    resolved_told  boolean NOT NULL DEFAULT false,
    report_due_at  timestamptz,                 -- NULL: not resolved yet, or already reminded
    failures_seen  bigint NOT NULL DEFAULT 0    -- notifications up to this id checked for failure
);
CREATE INDEX escalations_due_level ON escalations (next_level_at) WHERE next_level_at IS NOT NULL;
