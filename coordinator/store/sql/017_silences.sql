-- 017: silences (issue 17; admin/silences.c, paging/silence.c). While a silence is in force
-- (not ended, ends_at in the future), incidents it matches open and are recorded as usual, but
-- escalate.c pages no one for them. Every silence has an expiry and a reason; adding and
-- ending one are audited (audit_log) in the same transaction.

CREATE TABLE silences (
    id         bigserial PRIMARY KEY,
    matcher    text NOT NULL CHECK (matcher IN ('runbook', 'node', 'label')),
    value      text NOT NULL CHECK (length(value) BETWEEN 1 AND 512),
    reason     text NOT NULL CHECK (length(reason) BETWEEN 1 AND 1024),
    created_by text NOT NULL,
    created_at timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    ended_at   timestamptz,                 -- ended by hand before ends_at
    ended_by   text NOT NULL DEFAULT '',
    CHECK (ends_at > created_at)
);
CREATE INDEX silences_in_force ON silences (ends_at) WHERE ended_at IS NULL;

-- A silenced incident pages on its own once its silence is over: it neither leads nor joins a
-- page group (016), so a silenced node cannot hold back the page of a storm on other nodes.
ALTER TABLE escalations ADD COLUMN silenced boolean NOT NULL DEFAULT false;
