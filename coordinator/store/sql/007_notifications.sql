-- 007: notifications, one row per message to one person on one channel. The escalation engine
-- (escalate.c) inserts them; the notifier (notify.c) delivers them and records each attempt.
-- The unique key makes a page exactly-once per (incident, kind, level, round, target, channel),
-- across restarts: the engine inserts with ON CONFLICT DO NOTHING.

CREATE TABLE notifications (
    id              bigserial PRIMARY KEY,
    incident_id     bigint NOT NULL REFERENCES incidents (id),
    -- page (an escalation level), update (every 30 min while open), resolved, acknowledged,
    -- audience (management / partners by severity), deadline (response deadline missed),
    -- report_due (the post-incident report is due)
    kind            text NOT NULL CHECK (kind IN ('page', 'update', 'resolved', 'acknowledged',
                                                  'audience', 'deadline', 'report_due')),
    level           integer NOT NULL DEFAULT -1, -- escalation level (0 = first); -1 = none
    round           integer NOT NULL DEFAULT 0,  -- policy repeat round, or update number
    target          text NOT NULL,               -- the contact's name
    channel         text NOT NULL CHECK (channel IN ('slack', 'webhook', 'email', 'pagerduty')),
    address         text NOT NULL,               -- URL, e-mail address or PagerDuty routing key
    -- PagerDuty's event_action: trigger | acknowledge | resolve (other channels: "")
    event           text NOT NULL DEFAULT '',
    subject         text NOT NULL,               -- one line
    body            text NOT NULL,               -- plain text, what a person needs at 3 a.m.
    payload         jsonb NOT NULL,              -- the same as data (documented schema)
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_code       integer,                     -- HTTP status or SMTP reply code
    last_error      text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    sent_at         timestamptz,
    UNIQUE (incident_id, kind, level, round, target, channel)
);
-- The notifier's queue: what is due.
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status IN ('pending', 'sending');
CREATE INDEX notifications_incident ON notifications (incident_id, id);
